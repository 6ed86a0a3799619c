"""``sqlagent doctor``: will a model fit this GPU, and is this machine ready to run sqlagent?

:func:`plan_memory` budgets the GPU memory of serving a model (a built-in preset from
:data:`PRESETS` or a local ``config.json``) under a quantization, a LoRA adapter, a context
length, a batch and tensor parallelism, with a verdict per :data:`GPUS` entry. It is arithmetic
over the model's shape: nothing is loaded or downloaded.

:func:`run_checks` inspects the environment and an :class:`~sqlagent.config.AgentConfig`:
versions against the tested pins, CUDA, model files, the retrieval path, the database and the
database-side read-only enforcement (:func:`probe_read_only`), the database login's privileges
(:func:`probe_privileges`: a login that can do more than read), and the audit sink.
"""

from sqlagent.doctor._arch import (
    DEFAULT_LORA_TARGETS,
    Linear,
    ModelArch,
    ParamCounts,
    arch_from_config,
    load_config_json,
)
from sqlagent.doctor._check import (
    CHECKS,
    PROBE_TABLE,
    Check,
    CheckContext,
    CheckResult,
    CudaDevice,
    DoctorReport,
    Status,
    probe_privileges,
    probe_read_only,
    run_checks,
)
from sqlagent.doctor._gpus import GPU, GPUS, find_gpu
from sqlagent.doctor._plan import (
    KV_DTYPES,
    QUANTS,
    GpuVerdict,
    KVDType,
    MemoryPlan,
    Quant,
    plan_memory,
    quant_from_config,
)
from sqlagent.doctor._presets import PRESETS, find_preset

__all__ = [
    "CHECKS",
    "Check",
    "CheckContext",
    "CheckResult",
    "CudaDevice",
    "DEFAULT_LORA_TARGETS",
    "DoctorReport",
    "GPU",
    "GPUS",
    "GpuVerdict",
    "KVDType",
    "KV_DTYPES",
    "Linear",
    "MemoryPlan",
    "ModelArch",
    "PRESETS",
    "PROBE_TABLE",
    "ParamCounts",
    "QUANTS",
    "Quant",
    "Status",
    "arch_from_config",
    "find_gpu",
    "find_preset",
    "load_config_json",
    "plan_memory",
    "probe_privileges",
    "probe_read_only",
    "quant_from_config",
    "run_checks",
]
