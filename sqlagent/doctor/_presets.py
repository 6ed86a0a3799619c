"""Built-in architectures of common open models, from their published ``config.json`` files.

Numbers are copied from each model's Hugging Face ``config.json`` (the instruct variant where
one exists; base and instruct share the shape). ``published_params`` is the total the model card
states, kept only to check the derivation in :meth:`ModelArch.param_counts`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlagent.doctor._arch import ModelArch
from sqlagent.errors import ConfigError

__all__ = ["PRESETS", "find_preset"]

_QWEN25_SMALL: dict[str, Any] = {"vocab_size": 151936, "tie_embeddings": True, "qkv_bias": True}
_QWEN25_LARGE: dict[str, Any] = {"vocab_size": 152064, "tie_embeddings": False, "qkv_bias": True}
_QWEN3: dict[str, Any] = {
    "vocab_size": 151936,
    "head_dim": 128,
    "qk_norm": True,
    "max_position_embeddings": 40960,
}
_LLAMA3: dict[str, Any] = {"vocab_size": 128256, "max_position_embeddings": 131072}
_SMOLLM2: dict[str, Any] = {
    "vocab_size": 49152,
    "tie_embeddings": True,
    "max_position_embeddings": 8192,
}

PRESETS: tuple[ModelArch, ...] = (
    # Qwen2.5 (Qwen/Qwen2.5-*-Instruct): q/k/v biases; 0.5B-3B tie their embeddings.
    ModelArch(name="qwen2.5-0.5b", hf_id="Qwen/Qwen2.5-0.5B-Instruct", hidden_size=896,
              num_layers=24, num_heads=14, num_kv_heads=2, head_dim=64, intermediate_size=4864,
              max_position_embeddings=32768, published_params=0.49e9, **_QWEN25_SMALL),
    ModelArch(name="qwen2.5-1.5b", hf_id="Qwen/Qwen2.5-1.5B-Instruct", hidden_size=1536,
              num_layers=28, num_heads=12, num_kv_heads=2, head_dim=128, intermediate_size=8960,
              max_position_embeddings=32768, published_params=1.54e9, **_QWEN25_SMALL),
    ModelArch(name="qwen2.5-3b", hf_id="Qwen/Qwen2.5-3B-Instruct", hidden_size=2048,
              num_layers=36, num_heads=16, num_kv_heads=2, head_dim=128, intermediate_size=11008,
              max_position_embeddings=32768, published_params=3.09e9, **_QWEN25_SMALL),
    ModelArch(name="qwen2.5-7b", hf_id="Qwen/Qwen2.5-7B-Instruct", hidden_size=3584,
              num_layers=28, num_heads=28, num_kv_heads=4, head_dim=128, intermediate_size=18944,
              max_position_embeddings=32768, published_params=7.61e9, **_QWEN25_LARGE),
    ModelArch(name="qwen2.5-14b", hf_id="Qwen/Qwen2.5-14B-Instruct", hidden_size=5120,
              num_layers=48, num_heads=40, num_kv_heads=8, head_dim=128, intermediate_size=13824,
              max_position_embeddings=32768, published_params=14.7e9, **_QWEN25_LARGE),
    ModelArch(name="qwen2.5-32b", hf_id="Qwen/Qwen2.5-32B-Instruct", hidden_size=5120,
              num_layers=64, num_heads=40, num_kv_heads=8, head_dim=128, intermediate_size=27648,
              max_position_embeddings=32768, published_params=32.5e9, **_QWEN25_LARGE),
    ModelArch(name="qwen2.5-72b", hf_id="Qwen/Qwen2.5-72B-Instruct", hidden_size=8192,
              num_layers=80, num_heads=64, num_kv_heads=8, head_dim=128, intermediate_size=29568,
              max_position_embeddings=32768, published_params=72.7e9, **_QWEN25_LARGE),
    # Qwen3 (Qwen/Qwen3-*): explicit head_dim 128, q/k RMSNorms, no biases, untied above 4B.
    ModelArch(name="qwen3-8b", hf_id="Qwen/Qwen3-8B", hidden_size=4096, num_layers=36,
              num_heads=32, num_kv_heads=8, intermediate_size=12288, tie_embeddings=False,
              published_params=8.2e9, **_QWEN3),
    ModelArch(name="qwen3-14b", hf_id="Qwen/Qwen3-14B", hidden_size=5120, num_layers=40,
              num_heads=40, num_kv_heads=8, intermediate_size=17408, tie_embeddings=False,
              published_params=14.8e9, **_QWEN3),
    ModelArch(name="qwen3-32b", hf_id="Qwen/Qwen3-32B", hidden_size=5120, num_layers=64,
              num_heads=64, num_kv_heads=8, intermediate_size=25600, tie_embeddings=False,
              published_params=32.8e9, **_QWEN3),
    ModelArch(name="qwen3-30b-a3b", hf_id="Qwen/Qwen3-30B-A3B", hidden_size=2048, num_layers=48,
              num_heads=32, num_kv_heads=4, intermediate_size=6144, tie_embeddings=False,
              num_experts=128, experts_per_token=8, moe_intermediate_size=768,
              published_params=30.5e9, **_QWEN3),
    ModelArch(name="qwen3-235b-a22b", hf_id="Qwen/Qwen3-235B-A22B", hidden_size=4096,
              num_layers=94, num_heads=64, num_kv_heads=4, intermediate_size=12288,
              tie_embeddings=False, num_experts=128, experts_per_token=8,
              moe_intermediate_size=1536, published_params=235e9, **_QWEN3),
    # Llama 3.x (meta-llama/*): 3.2 1B/3B tie their embeddings.
    ModelArch(name="llama-3.2-1b", hf_id="meta-llama/Llama-3.2-1B-Instruct", hidden_size=2048,
              num_layers=16, num_heads=32, num_kv_heads=8, head_dim=64, intermediate_size=8192,
              tie_embeddings=True, published_params=1.24e9, **_LLAMA3),
    ModelArch(name="llama-3.2-3b", hf_id="meta-llama/Llama-3.2-3B-Instruct", hidden_size=3072,
              num_layers=28, num_heads=24, num_kv_heads=8, head_dim=128, intermediate_size=8192,
              tie_embeddings=True, published_params=3.21e9, **_LLAMA3),
    ModelArch(name="llama-3.1-8b", hf_id="meta-llama/Llama-3.1-8B-Instruct", hidden_size=4096,
              num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=14336,
              tie_embeddings=False, published_params=8.03e9, aliases=("llama-3-8b",), **_LLAMA3),
    ModelArch(name="llama-3.1-70b", hf_id="meta-llama/Llama-3.1-70B-Instruct", hidden_size=8192,
              num_layers=80, num_heads=64, num_kv_heads=8, head_dim=128, intermediate_size=28672,
              tie_embeddings=False, published_params=70.6e9,
              aliases=("llama-3.3-70b", "llama-3-70b"), **_LLAMA3),
    # Mistral (mistralai/*): v0.3 has a 32768 vocabulary; Mixtral keeps 8 experts, 2 per token.
    ModelArch(name="mistral-7b", hf_id="mistralai/Mistral-7B-Instruct-v0.3", hidden_size=4096,
              num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=14336,
              vocab_size=32768, tie_embeddings=False, max_position_embeddings=32768,
              published_params=7.25e9),
    ModelArch(name="mixtral-8x7b", hf_id="mistralai/Mixtral-8x7B-Instruct-v0.1",
              hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128,
              intermediate_size=14336, vocab_size=32000, tie_embeddings=False,
              max_position_embeddings=32768, num_experts=8, experts_per_token=2,
              moe_intermediate_size=14336, published_params=46.7e9),
    # SmolLM2 (HuggingFaceTB/SmolLM2-*-Instruct): Llama shape, tied embeddings.
    ModelArch(name="smollm2-135m", hf_id="HuggingFaceTB/SmolLM2-135M-Instruct", hidden_size=576,
              num_layers=30, num_heads=9, num_kv_heads=3, head_dim=64, intermediate_size=1536,
              published_params=134.5e6, aliases=("smollm2",), **_SMOLLM2),
    ModelArch(name="smollm2-360m", hf_id="HuggingFaceTB/SmolLM2-360M-Instruct", hidden_size=960,
              num_layers=32, num_heads=15, num_kv_heads=5, head_dim=64, intermediate_size=2560,
              published_params=361.8e6, **_SMOLLM2),
    ModelArch(name="smollm2-1.7b", hf_id="HuggingFaceTB/SmolLM2-1.7B-Instruct", hidden_size=2048,
              num_layers=24, num_heads=32, num_kv_heads=32, head_dim=64, intermediate_size=8192,
              published_params=1.71e9, **_SMOLLM2),
)  # fmt: skip


def _key(name: str) -> str:
    """``Qwen/Qwen2.5-7B-Instruct`` -> ``qwen2.5-7b``: no organisation, no -instruct/-it."""
    key = name.strip().lower().rsplit("/", 1)[-1]
    key = re.sub(r"[-_](instruct|chat|it|base)(-v[\d.]+)?$", "", key)
    return re.sub(r"-v0\.\d$", "", key).replace("_", "-")


def find_preset(name: str) -> ModelArch:
    """The preset named ``name``: its short name (``qwen2.5-7b``), an alias, or its Hugging Face
    id in any case (``Qwen/Qwen2.5-7B-Instruct``). Unknown names raise
    :class:`~sqlagent.errors.ConfigError` listing the presets."""
    wanted = _key(name)
    for arch in PRESETS:
        names = {arch.name, *arch.aliases, _key(arch.hf_id)}
        if wanted in names or name.strip().lower() == arch.hf_id.lower():
            return arch
    raise ConfigError(
        f"unknown model {name!r}: give a config.json (or a model directory holding one) or "
        f"one of the presets: {', '.join(a.name for a in PRESETS)}"
    )
