"""GPUs the memory plan gives a verdict for: nominal memory, what a process can use, features.

``usable_gib`` is the device memory CUDA reports as total to a process (``torch.cuda
.get_device_properties(0).total_memory``), which is below the nominal size: ECC, the driver and
the firmware keep the rest. These are typical figures for current drivers (approximate to about
0.2 GiB; they vary with driver version and ECC setting). The CUDA context of the process itself
comes out of ``usable_gib`` and is counted in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlagent.errors import ConfigError

__all__ = ["GPU", "GPUS", "find_gpu"]


@dataclass(frozen=True, slots=True)
class GPU:
    """One GPU model. ``capability`` is the CUDA compute capability: bf16 needs 8.0 (Ampere),
    native fp8 needs 8.9 (Ada, Hopper, Blackwell)."""

    name: str
    memory_gb: int
    usable_gib: float
    capability: tuple[int, int]
    aliases: tuple[str, ...] = ()

    @property
    def bf16(self) -> bool:
        return self.capability >= (8, 0)

    @property
    def fp8(self) -> bool:
        return self.capability >= (8, 9)


GPUS: tuple[GPU, ...] = (
    GPU("T4", 16, 14.74, (7, 5)),
    GPU("L4", 24, 21.96, (8, 9)),
    GPU("A10", 24, 22.07, (8, 6), aliases=("a10g",)),
    GPU("RTX 3090", 24, 23.69, (8, 6), aliases=("3090", "rtx3090")),
    GPU("RTX 4090", 24, 23.65, (8, 9), aliases=("4090", "rtx4090")),
    GPU("RTX 5090", 32, 31.36, (12, 0), aliases=("5090", "rtx5090")),
    GPU("A100 40GB", 40, 39.39, (8, 0), aliases=("a100-40", "a100-40gb", "a100_40gb")),
    GPU("L40S", 48, 44.39, (8, 9)),
    GPU("A100 80GB", 80, 79.15, (8, 0), aliases=("a100", "a100-80", "a100-80gb", "a100_80gb")),
    GPU("H100 80GB", 80, 79.19, (9, 0), aliases=("h100", "h100-80gb")),
    GPU("H200 141GB", 141, 139.8, (9, 0), aliases=("h200",)),
)


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def find_gpu(name: str) -> GPU:
    """A GPU by name or alias, ignoring case, spaces and dashes (``h100``, ``A100-40GB``)."""
    wanted = _norm(name)
    for gpu in GPUS:
        if wanted in {_norm(gpu.name), *(_norm(a) for a in gpu.aliases)}:
            return gpu
    raise ConfigError(f"unknown GPU {name!r}: expected one of {', '.join(g.name for g in GPUS)}")
