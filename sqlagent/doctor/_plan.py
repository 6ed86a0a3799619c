"""The memory budget of serving a model: weights, adapter, KV cache, activations and overheads.

Everything here is arithmetic over a :class:`~sqlagent.doctor.ModelArch`; nothing is loaded.
The figures are per GPU (under tensor parallelism the weights and the KV heads are split), in
bytes internally and GiB (2**30 bytes) in reports. ``docs/doctor.md`` gives the formulas and
the assumptions; :attr:`MemoryPlan.assumptions` repeats the ones that shaped a given plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlagent.doctor._arch import DEFAULT_LORA_TARGETS, ModelArch
from sqlagent.doctor._gpus import GPU, GPUS
from sqlagent.errors import ConfigError

__all__ = [
    "KV_DTYPES",
    "QUANTS",
    "GpuVerdict",
    "KVDType",
    "MemoryPlan",
    "Quant",
    "plan_memory",
    "quant_from_config",
]

GIB = 1024**3
MIB = 1024**2

Quant = Literal["bf16", "fp16", "fp8", "int8", "nf4", "awq", "gptq"]
KVDType = Literal["bf16", "fp16", "fp8"]
QUANTS: tuple[str, ...] = ("none", *get_args(Quant))
KV_DTYPES: tuple[str, ...] = get_args(KVDType)
_KV_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1}
_ADAPTER_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}

#: Memory the CUDA context of one process takes on a GPU (outside PyTorch's allocator).
CUDA_CONTEXT_BYTES = 512 * MIB
#: Allocator and runtime slack: a fixed part (cuBLAS workspaces, kernels) plus a share of the rest.
FRAMEWORK_FIXED_BYTES = 256 * MIB
FRAMEWORK_SHARE = 0.05
#: A verdict is "tight" when less than this share of the usable memory would stay free.
TIGHT_SHARE = 0.10
DEFAULT_SEQ_LEN = 4096

_QUANT_NOTES = {
    "bf16": "weights in bf16 (2 bytes per parameter)",
    "fp16": "weights in fp16 (2 bytes per parameter)",
    "fp8": "linear weights in fp8 (1 byte) with one fp32 scale per output channel",
    "int8": "linear weights in int8 (bitsandbytes LLM.int8: 1 byte) with one fp32 scale per "
    "output row; outlier columns are computed in 16-bit but not stored twice",
    "nf4": "linear weights in NF4 (bitsandbytes, 4 bits) with double quantization: an 8-bit "
    "absmax per 64 weights and an fp32 constant per 256 absmax values (~4.13 bits/weight)",
    "awq": "linear weights in 4 bits (AWQ) with an fp16 scale and a 4-bit zero point per group "
    "of {group} input weights",
    "gptq": "linear weights in 4 bits (GPTQ) with an fp16 scale and a 4-bit zero point per group "
    "of {group} input weights, plus an int32 g_idx per input feature",
}


def quant_from_config(config: dict[str, Any]) -> tuple[Quant, int] | None:
    """The quantization a ``config.json`` declares (``quantization_config``) and its group size,
    or ``None`` for an unquantized checkpoint."""
    q = config.get("quantization_config")
    if not isinstance(q, dict):
        return None
    method = str(q.get("quant_method", "")).lower()
    group = q.get("group_size") or q.get("q_group_size") or 128
    group = int(group) if isinstance(group, int) and group > 0 else 128
    if method in ("awq", "gptq", "fp8"):
        return method, group  # type: ignore[return-value]
    if method == "bitsandbytes":
        if q.get("load_in_4bit"):
            return "nf4", group
        if q.get("load_in_8bit"):
            return "int8", group
    return None


@dataclass(frozen=True, slots=True)
class GpuVerdict:
    """Whether the plan fits one GPU kind (``tp`` of them under tensor parallelism)."""

    gpu: GPU
    fits: bool
    tight: bool
    headroom_bytes: int
    max_context_tokens: int
    notes: tuple[str, ...]

    @property
    def verdict(self) -> str:
        if not self.fits:
            return "does not fit"
        return "tight" if self.tight else "fits"

    def to_dict(self, tp: int) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "verdict": self.verdict,
            "gpus": tp,
            "memory_gb": self.gpu.memory_gb,
            "usable_gib": self.gpu.usable_gib,
            "headroom_gib": _gib(self.headroom_bytes),
            "max_context_tokens": self.max_context_tokens,
            "bf16": self.gpu.bf16,
            "fp8": self.gpu.fp8,
            "compute_capability": f"{self.gpu.capability[0]}.{self.gpu.capability[1]}",
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Budget:
    """Bytes per GPU for one sequence length."""

    weights: int
    adapter: int
    kv_cache: int
    activations: int
    framework: int
    cuda_context: int

    @property
    def overhead(self) -> int:
        return self.activations + self.framework + self.cuda_context

    @property
    def total(self) -> int:
        return self.weights + self.adapter + self.kv_cache + self.overhead


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPlan:
    """A memory budget: per-GPU figures for ``max_seq_len`` tokens x ``batch`` sequences, and a
    verdict (with the longest context that fits) for each GPU asked about."""

    arch: ModelArch
    quant: Quant
    group_size: int
    kv_dtype: KVDType
    max_seq_len: int
    batch: int
    tp: int
    lora_r: int
    lora_targets: tuple[str, ...]
    lora_params: int
    prefill_chunk: int | None
    kv_bytes_per_token: int
    budget: _Budget
    verdicts: tuple[GpuVerdict, ...]
    context_gpu: GpuVerdict
    assumptions: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return self.budget.total

    @property
    def max_context_tokens(self) -> int:
        return self.context_gpu.max_context_tokens

    def to_dict(self) -> dict[str, Any]:
        b = self.budget
        return {
            "model": self.arch.summary(),
            "quant": self.quant,
            "group_size": self.group_size if self.quant in ("awq", "gptq") else None,
            "kv_dtype": self.kv_dtype,
            "max_seq_len": self.max_seq_len,
            "batch": self.batch,
            "tp": self.tp,
            "prefill_chunk": self.prefill_chunk,
            "lora": (
                {"r": self.lora_r, "targets": list(self.lora_targets), "params": self.lora_params}
                if self.lora_r
                else None
            ),
            "weights_gib": _gib(b.weights),
            "adapter_gib": _gib(b.adapter),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_cache_gib": _gib(b.kv_cache),
            "activations_gib": _gib(b.activations),
            "framework_gib": _gib(b.framework),
            "cuda_context_gib": _gib(b.cuda_context),
            "overhead_gib": _gib(b.overhead),
            "total_gib": _gib(b.total),
            "total_all_gpus_gib": _gib(b.total * self.tp),
            "max_context_tokens": self.max_context_tokens,
            "max_context_gpu": self.context_gpu.gpu.name,
            "gpus": {v.gpu.name: v.to_dict(self.tp) for v in self.verdicts},
            "assumptions": list(self.assumptions),
        }


def _gib(n: int) -> float:
    return round(n / GIB, 3)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Setup:
    arch: ModelArch
    quant: Quant
    group_size: int
    kv_bytes: int
    batch: int
    tp: int
    kv_heads: int
    lora_r: int
    lora_targets: tuple[str, ...]
    adapter_bytes: int
    prefill_chunk: int | None


def plan_memory(
    arch: ModelArch,
    *,
    quant: str = "bf16",
    group_size: int = 128,
    max_seq_len: int | None = None,
    batch: int = 1,
    kv_dtype: str = "bf16",
    tp: int = 1,
    lora_r: int = 16,
    lora_targets: Sequence[str] = DEFAULT_LORA_TARGETS,
    adapter_dtype: str = "bf16",
    prefill_chunk: int | None = None,
    gpus: Iterable[GPU] | None = None,
) -> MemoryPlan:
    """The memory budget for serving ``arch`` under these settings.

    ``max_seq_len`` is the total context (prompt and answer) of each of ``batch`` concurrent
    sequences (default: 4096, or the model's limit when lower). ``lora_r=0`` means no adapter;
    ``adapter_dtype`` is ``"bf16"``/``"fp16"`` (vLLM, merged serving) or ``"fp32"`` (PEFT, which
    upcasts 16-bit adapters to fp32 on load by default: sqlagent's transformers backend).
    ``prefill_chunk`` caps the tokens processed in one forward pass (vLLM's chunked prefill);
    ``None`` processes every prompt at once, as transformers' ``generate`` does. ``gpus``
    restricts the verdicts (default: every known GPU); the plan's ``max_context_tokens`` is for
    the largest of them. Bad settings raise :class:`~sqlagent.errors.ConfigError`.
    """
    q: Quant = "bf16" if quant == "none" else quant  # type: ignore[assignment]
    if q not in get_args(Quant):
        raise ConfigError(f"unknown quantization {quant!r}: expected one of {', '.join(QUANTS)}")
    if kv_dtype not in _KV_BYTES:
        raise ConfigError(f"unknown KV-cache dtype {kv_dtype!r}: expected bf16, fp16 or fp8")
    for label, value in (("batch", batch), ("tp", tp), ("group_size", group_size)):
        if value < 1:
            raise ConfigError(f"{label} must be at least 1, not {value}")
    if adapter_dtype not in _ADAPTER_BYTES:
        raise ConfigError(f"unknown adapter dtype {adapter_dtype!r}: expected bf16, fp16 or fp32")
    if lora_r < 0:
        raise ConfigError(f"lora_r must be 0 (no adapter) or more, not {lora_r}")
    if prefill_chunk is not None and prefill_chunk < 1:
        raise ConfigError(f"prefill_chunk must be at least 1, not {prefill_chunk}")
    seq = (
        max_seq_len
        if max_seq_len is not None
        else min(DEFAULT_SEQ_LEN, arch.max_position_embeddings)
    )
    if seq < 1:
        raise ConfigError(f"max_seq_len must be at least 1, not {seq}")
    if arch.num_heads % tp:
        raise ConfigError(
            f"tensor parallelism over {tp} GPUs needs the {arch.num_heads} attention heads "
            f"to divide evenly by {tp}"
        )
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        raise ConfigError(
            f"tensor parallelism over {tp} GPUs cannot split {arch.num_kv_heads} key/value heads "
            "(one must divide the other)"
        )
    targets = _lora_targets(arch, lora_targets) if lora_r else ()
    chosen = tuple(GPUS if gpus is None else gpus)
    if not chosen:
        raise ConfigError("no GPU to plan for")
    setup = _Setup(
        arch=arch,
        quant=q,
        group_size=group_size,
        kv_bytes=_KV_BYTES[kv_dtype],
        batch=batch,
        tp=tp,
        kv_heads=math.ceil(arch.num_kv_heads / tp),  # replicated when tp > KV heads
        lora_r=lora_r,
        lora_targets=targets,
        adapter_bytes=_ADAPTER_BYTES[adapter_dtype],
        prefill_chunk=prefill_chunk,
    )
    verdicts = tuple(_verdict(setup, gpu, seq, q, kv_dtype) for gpu in chosen)
    context_gpu = max(verdicts, key=lambda v: v.gpu.usable_gib)
    lora_params = arch.lora_parameters(lora_r, targets)
    return MemoryPlan(
        arch=arch,
        quant=q,
        group_size=group_size,
        kv_dtype=kv_dtype,  # type: ignore[arg-type]
        max_seq_len=seq,
        batch=batch,
        tp=tp,
        lora_r=lora_r,
        lora_targets=targets,
        lora_params=lora_params,
        prefill_chunk=prefill_chunk,
        kv_bytes_per_token=arch.kv_bytes_per_token(setup.kv_bytes, kv_heads=setup.kv_heads),
        budget=_budget(setup, seq),
        verdicts=verdicts,
        context_gpu=context_gpu,
        assumptions=_assumptions(setup, seq, context_gpu, explicit_gpus=gpus is not None),
    )


def _lora_targets(arch: ModelArch, targets: Sequence[str]) -> tuple[str, ...]:
    known = tuple(dict.fromkeys(m.name for m in arch.linears()))
    wanted = tuple(dict.fromkeys(t.strip() for t in targets if t.strip()))
    if wanted in (("all-linear",), ("all",)):
        return known
    unknown = [t for t in wanted if t not in known]
    if unknown or not wanted:
        raise ConfigError(
            f"unknown LoRA target module(s) {', '.join(unknown) or '(none)'}: expected some of "
            f"{', '.join(known)} (or all-linear)"
        )
    return wanted


def _weight_bytes(setup: _Setup) -> int:
    """Bytes of the weights on one GPU under ``setup``'s quantization."""
    arch, q, tp = setup.arch, setup.quant, setup.tp
    counts = arch.param_counts()
    sharded = 2 * (counts.embedding + counts.lm_head)  # vocab-parallel, kept in 16-bit
    for m in arch.linears():
        n = m.params
        if q in ("bf16", "fp16"):
            sharded += 2 * n
        elif q in ("int8", "fp8"):
            sharded += n + 4 * m.out_features * m.count
        elif q == "nf4":
            sharded += n // 2 + math.ceil(n / 64) + 4 * math.ceil(n / (64 * 256))
        else:  # awq, gptq: 4-bit weights, fp16 scale + 4-bit zero per group of inputs
            groups = math.ceil(m.in_features / setup.group_size) * m.out_features * m.count
            sharded += n // 2 + 2 * groups + math.ceil(groups / 2)
            if q == "gptq":
                sharded += 4 * m.in_features * m.count
    return math.ceil(sharded / tp) + 2 * counts.small  # norms, biases and routers replicated


def _adapter_bytes(setup: _Setup) -> int:
    if not setup.lora_r:
        return 0
    params = sum(
        setup.lora_r * (m.in_features + m.out_features) * m.count
        for m in setup.arch.linears()
        if m.name in setup.lora_targets
    )
    return math.ceil(setup.adapter_bytes * params / setup.tp)


def _activation_bytes(setup: _Setup, seq: int) -> int:
    """Peak transient memory of one forward pass over the prompt (the prefill), per GPU.

    Per token in flight: the residual stream and the normed input (2 x hidden) plus the MLP's
    gate, up and product (3 x intermediate, split by TP; for a mixture of experts the routed
    experts' widths), in 16-bit; plus fp32 logits of the last position of each sequence and, for
    bitsandbytes, one dequantized weight matrix. Attention is assumed to use a fused kernel
    (SDPA/flash): no sequence x sequence score matrix.
    """
    arch, tp = setup.arch, setup.tp
    tokens = setup.batch * seq
    if setup.prefill_chunk is not None:
        tokens = min(tokens, setup.prefill_chunk)
    widths = []
    if arch.num_layers > arch.num_moe_layers:
        widths.append(arch.intermediate_size)
    if arch.is_moe:
        widths.append(
            arch.moe_intermediate_size * arch.experts_per_token
            + arch.shared_expert_intermediate_size
        )
    per_token = 2 * (2 * arch.hidden_size + math.ceil(3 * max(widths) / tp))
    logits = 4 * setup.batch * math.ceil(arch.vocab_size / tp)
    dequant = 0
    if setup.quant in ("nf4", "int8"):
        dequant = 2 * max(m.in_features * m.out_features for m in arch.linears()) // tp
    return tokens * per_token + logits + dequant


def _budget(setup: _Setup, seq: int) -> _Budget:
    weights = _weight_bytes(setup)
    adapter = _adapter_bytes(setup)
    kv_tok = setup.arch.kv_bytes_per_token(setup.kv_bytes, kv_heads=setup.kv_heads)
    kv_cache = kv_tok * seq * setup.batch
    activations = _activation_bytes(setup, seq)
    framework = FRAMEWORK_FIXED_BYTES + math.ceil(
        FRAMEWORK_SHARE * (weights + adapter + kv_cache + activations)
    )
    return _Budget(
        weights=weights,
        adapter=adapter,
        kv_cache=kv_cache,
        activations=activations,
        framework=framework,
        cuda_context=CUDA_CONTEXT_BYTES,
    )


def _max_context(setup: _Setup, usable: int) -> int:
    """The longest per-sequence context (at ``setup.batch``) whose budget fits ``usable`` bytes,
    capped by the model's ``max_position_embeddings``; 0 when not even one token fits."""
    limit = setup.arch.max_position_embeddings
    if _budget(setup, 1).total > usable:
        return 0
    if _budget(setup, limit).total <= usable:
        return limit
    low, high = 1, limit  # fits at low, not at high
    while high - low > 1:
        mid = (low + high) // 2
        if _budget(setup, mid).total <= usable:
            low = mid
        else:
            high = mid
    return low


def _verdict(setup: _Setup, gpu: GPU, seq: int, quant: Quant, kv_dtype: str) -> GpuVerdict:
    usable = int(gpu.usable_gib * GIB)
    total = _budget(setup, seq).total
    notes = []
    if not gpu.bf16 and (quant == "bf16" or kv_dtype == "bf16"):
        notes.append("no bf16: fp16 instead (same size)")
    if not gpu.fp8 and (quant == "fp8" or kv_dtype == "fp8"):
        notes.append("no native fp8 (needs compute capability 8.9)")
    if setup.tp > 1:
        notes.append(f"per GPU, {setup.tp} GPUs")
    headroom = usable - total
    return GpuVerdict(
        gpu=gpu,
        fits=headroom >= 0,
        tight=0 <= headroom < TIGHT_SHARE * usable,
        headroom_bytes=headroom,
        max_context_tokens=_max_context(setup, usable),
        notes=tuple(notes),
    )


def _assumptions(
    setup: _Setup, seq: int, context_gpu: GpuVerdict, *, explicit_gpus: bool
) -> tuple[str, ...]:
    arch = setup.arch
    found = [
        _QUANT_NOTES[setup.quant].format(group=setup.group_size),
        "embeddings and lm_head stay in 16-bit; norms, biases and MoE routers in 16-bit",
        "inference only: no gradients or optimizer states (training needs more)",
        f"KV cache: 2 x {arch.num_layers} layers x {setup.kv_heads} KV heads"
        f"{' per GPU' if setup.tp > 1 else ''} x {arch.head_dim} head_dim x "
        f"{setup.kv_bytes} bytes per token, for {seq} tokens x {setup.batch} sequence(s), "
        "allocated in full",
        "activations: one unchunked prefill of every sequence"
        if setup.prefill_chunk is None
        else f"activations: prefill in chunks of {setup.prefill_chunk} tokens",
        f"framework: {FRAMEWORK_FIXED_BYTES // MIB} MiB + {FRAMEWORK_SHARE:.0%} of the rest; "
        f"CUDA context: {CUDA_CONTEXT_BYTES // MIB} MiB per GPU",
    ]
    if setup.lora_r:
        found.append(
            f"LoRA adapter r={setup.lora_r} on {', '.join(setup.lora_targets)}, "
            + (
                "in 16-bit (PEFT upcasts to fp32 by default: --adapter-dtype fp32)"
                if setup.adapter_bytes == 2
                else "in fp32 (PEFT's default on load)"
            )
            + (" (expert projections counted per expert)" if arch.is_moe else "")
        )
    if arch.is_moe:
        found.append(
            f"mixture of experts: all {arch.num_experts} experts of every MoE layer are in memory "
            f"({arch.experts_per_token} run per token)"
        )
    if setup.tp > 1:
        found.append(
            f"tensor parallelism over {setup.tp} GPUs: weights, adapter and KV heads split "
            "evenly, norms and routers replicated; figures are per GPU"
        )
    if seq > arch.max_position_embeddings:
        found.append(
            f"max_seq_len {seq} exceeds the model's max_position_embeddings "
            f"({arch.max_position_embeddings}): only with RoPE scaling"
        )
    which = "chosen" if explicit_gpus else "largest listed"
    found.append(
        f"max_context_tokens is for the {which} GPU ({context_gpu.gpu.name}), per sequence at "
        f"batch {setup.batch}, capped at max_position_embeddings ({arch.max_position_embeddings})"
    )
    return tuple(found)
