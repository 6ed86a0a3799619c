"""A decoder-only transformer's shape, and the parameter counts that follow from it.

:class:`ModelArch` holds the few numbers of a Hugging Face ``config.json`` that decide memory:
sizes, layer and head counts, vocabulary, tied embeddings, and the mixture-of-experts settings.
Parameter counts are derived from them, module by module, rather than taken from a model card,
so a local ``config.json`` gets the same treatment as a built-in preset (and the tests check the
derivation against the published totals).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlagent.errors import ConfigError

__all__ = [
    "DEFAULT_LORA_TARGETS",
    "Linear",
    "ModelArch",
    "ParamCounts",
    "arch_from_config",
    "load_config_json",
]

#: The projections a LoRA adapter targets by default: every linear layer of a block.
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# model_type values whose attention has q/k/v biases but no o bias (Qwen1.5/2/2.5 and Qwen2-MoE).
_QKV_BIAS_TYPES = frozenset({"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"})
# model_type values with a per-head RMSNorm on queries and keys (Qwen3, Qwen3-MoE).
_QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe"})


@dataclass(frozen=True, slots=True)
class Linear:
    """One kind of linear layer: ``count`` instances of ``in_features -> out_features`` in the
    whole model (an expert projection counts once per expert per layer)."""

    name: str
    in_features: int
    out_features: int
    count: int

    @property
    def params(self) -> int:
        return self.in_features * self.out_features * self.count


@dataclass(frozen=True, slots=True)
class ParamCounts:
    """Parameters by how loaders store them.

    ``linear`` is what a quantizer quantizes (attention and MLP/expert projections);
    ``embedding`` and ``lm_head`` stay in 16-bit under every quantization sqlagent models;
    ``small`` is norms, biases and MoE routers (16-bit, replicated under tensor parallelism).
    """

    embedding: int
    lm_head: int
    linear: int
    small: int
    active: int

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.linear + self.small


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelArch:
    """The shape of a decoder-only transformer (Llama/Qwen/Mistral family), as in ``config.json``.

    ``head_dim`` is explicit (Qwen3 sets 128 whatever ``hidden_size / num_heads`` is).
    ``num_experts > 0`` makes ``moe_layers`` of the layers mixture-of-experts blocks of
    ``moe_intermediate_size`` experts (all experts are held in memory; ``experts_per_token`` of
    them run per token), plus an optional shared expert. ``published_params`` is the total a model
    card states, for reference only: every figure is computed from the shape.
    """

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    max_position_embeddings: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    moe_layers: int | None = None  # None: every layer, when num_experts > 0
    hf_id: str = ""
    published_params: float | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "vocab_size",
            "max_position_embeddings",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{self.name}: {field} must be a positive integer, not {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"{self.name}: {self.num_heads} attention heads are not a multiple of "
                f"{self.num_kv_heads} key/value heads"
            )
        if self.num_experts and (self.experts_per_token < 1 or self.moe_intermediate_size < 1):
            raise ConfigError(
                f"{self.name}: a mixture of experts needs experts_per_token and "
                "moe_intermediate_size"
            )

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def num_moe_layers(self) -> int:
        if not self.is_moe:
            return 0
        return self.num_layers if self.moe_layers is None else self.moe_layers

    def lora_parameters(self, r: int, targets: Iterable[str]) -> int:
        """Parameters of a rank-``r`` LoRA on the linear layers named in ``targets``:
        ``r x (in + out)`` each (expert projections counted per expert)."""
        names = set(targets)
        return sum(
            r * (m.in_features + m.out_features) * m.count
            for m in self.linears()
            if m.name in names
        )

    def linears(self) -> tuple[Linear, ...]:
        """Every linear layer kind, with its count in the whole model (lm_head excluded)."""
        h, layers = self.hidden_size, self.num_layers
        q_out = self.num_heads * self.head_dim
        kv_out = self.num_kv_heads * self.head_dim
        found = [
            Linear("q_proj", h, q_out, layers),
            Linear("k_proj", h, kv_out, layers),
            Linear("v_proj", h, kv_out, layers),
            Linear("o_proj", q_out, h, layers),
        ]
        dense = layers - self.num_moe_layers
        if dense:
            inter = self.intermediate_size
            found += [
                Linear("gate_proj", h, inter, dense),
                Linear("up_proj", h, inter, dense),
                Linear("down_proj", inter, h, dense),
            ]
        moe = self.num_moe_layers
        if moe:
            inter, experts = self.moe_intermediate_size, moe * self.num_experts
            found += [
                Linear("gate_proj", h, inter, experts),
                Linear("up_proj", h, inter, experts),
                Linear("down_proj", inter, h, experts),
            ]
            shared = self.shared_expert_intermediate_size
            if shared:
                found += [
                    Linear("gate_proj", h, shared, moe),
                    Linear("up_proj", h, shared, moe),
                    Linear("down_proj", shared, h, moe),
                ]
        return tuple(found)

    def param_counts(self) -> ParamCounts:
        h, layers = self.hidden_size, self.num_layers
        embedding = self.vocab_size * h
        lm_head = 0 if self.tie_embeddings else self.vocab_size * h
        linear = sum(m.params for m in self.linears())
        q_out = self.num_heads * self.head_dim
        kv_out = self.num_kv_heads * self.head_dim
        small = layers * 2 * h + h  # two RMSNorms per block, one final norm
        if self.qkv_bias:
            small += layers * (q_out + 2 * kv_out)
        if self.o_bias:
            small += layers * h
        if self.qk_norm:
            small += layers * 2 * self.head_dim
        moe = self.num_moe_layers
        small += moe * h * self.num_experts  # routers
        if self.shared_expert_intermediate_size:
            small += moe * h  # the shared expert's gate (hidden -> 1)
        idle = 0
        if moe:
            per_expert = 3 * h * self.moe_intermediate_size
            idle = moe * (self.num_experts - self.experts_per_token) * per_expert
        total = embedding + lm_head + linear + small
        return ParamCounts(embedding, lm_head, linear, small, total - idle)

    def kv_bytes_per_token(self, bytes_per_element: float, *, kv_heads: int | None = None) -> int:
        """Keys and values of one token in every layer: 2 x layers x KV heads x head_dim x bytes.

        (Not ``hidden_size x kv_heads``: each KV head is ``head_dim`` wide, and grouped-query
        attention keeps far fewer KV heads than query heads.)
        """
        heads = self.num_kv_heads if kv_heads is None else kv_heads
        return round(2 * self.num_layers * heads * self.head_dim * bytes_per_element)

    def summary(self) -> dict[str, Any]:
        counts = self.param_counts()
        data: dict[str, Any] = {
            "name": self.name,
            "hf_id": self.hf_id or None,
            "params": counts.total,
            "active_params": counts.active,
            "hidden_size": self.hidden_size,
            "layers": self.num_layers,
            "attention_heads": self.num_heads,
            "kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "tied_embeddings": self.tie_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
        }
        if self.is_moe:
            data.update(
                experts=self.num_experts,
                experts_per_token=self.experts_per_token,
                moe_intermediate_size=self.moe_intermediate_size,
                moe_layers=self.num_moe_layers,
            )
        return data


def load_config_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a Hugging Face ``config.json``: the file itself, or a model directory holding one."""
    p = Path(path).expanduser()
    file = p / "config.json" if p.is_dir() else p
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no config.json at '{p}'") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read '{file}' as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"'{file}' does not hold a JSON object")
    return data


def arch_from_config(config: Mapping[str, Any], *, name: str = "config.json") -> ModelArch:
    """The :class:`ModelArch` of a Hugging Face ``config.json`` mapping.

    Multimodal configs are read through their ``text_config``. Defaults follow the transformers
    classes of the Llama/Qwen/Mistral families where a key is absent: ``num_key_value_heads`` =
    ``num_attention_heads``, ``head_dim`` = ``hidden_size / num_attention_heads``,
    ``tie_word_embeddings`` false. Qwen2 models have q/k/v biases, Qwen3 models q/k norms; a
    true ``attention_bias`` adds biases to all four projections.
    """
    text = config.get("text_config")
    cfg: dict[str, Any] = {**config, **text} if isinstance(text, Mapping) else dict(config)
    model_type = str(cfg.get("model_type", ""))

    def need(*keys: str) -> int:
        for key in keys:
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        raise ConfigError(f"{name}: missing integer {' / '.join(keys)} in config.json")

    def opt(key: str, default: int) -> int:
        value = cfg.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name}: {key} must be a non-negative integer, not {value!r}")
        return value

    hidden = need("hidden_size", "n_embd", "d_model")
    heads = need("num_attention_heads", "n_head")
    layers = need("num_hidden_layers", "n_layer")
    intermediate = opt("intermediate_size", 4 * hidden)
    experts = opt("num_experts", 0) or opt("num_local_experts", 0)
    moe_layers: int | None = None
    if experts:
        step = opt("decoder_sparse_step", 1) or 1
        dense_only = set(cfg.get("mlp_only_layers") or ())
        moe_layers = sum(1 for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
    attention_bias = bool(cfg.get("attention_bias", False))
    return ModelArch(
        name=name,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=opt("num_key_value_heads", 0) or heads,
        head_dim=opt("head_dim", 0) or hidden // heads,
        intermediate_size=intermediate,
        vocab_size=need("vocab_size"),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_position_embeddings=opt("max_position_embeddings", 0) or 2048,
        qkv_bias=attention_bias or model_type in _QKV_BIAS_TYPES,
        o_bias=attention_bias,
        qk_norm=model_type in _QK_NORM_TYPES,
        num_experts=experts,
        experts_per_token=opt("num_experts_per_tok", 0),
        moe_intermediate_size=opt("moe_intermediate_size", 0) or (intermediate if experts else 0),
        shared_expert_intermediate_size=opt("shared_expert_intermediate_size", 0),
        moe_layers=moe_layers,
    )
