"""The memory planner: formulas, the issue's anchors, presets against published sizes, and
how quantization, tensor parallelism, batch and GPU size move the figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlagent.doctor import (
    GPU,
    GPUS,
    PRESETS,
    ModelArch,
    arch_from_config,
    find_gpu,
    find_preset,
    load_config_json,
    plan_memory,
    quant_from_config,
)
from sqlagent.errors import ConfigError

GIB = 1024**3
MIB = 1024**2


# --- the two anchors from the issue -------------------------------------------------------------


def test_anchor_qwen3_235b_kv_per_token() -> None:
    arch = find_preset("qwen3-235b-a22b")
    expected = 94 * 4 * 128 * 2 * 2  # layers x KV heads x head_dim x (K and V) x bf16 bytes
    assert expected == 192_512
    assert arch.kv_bytes_per_token(2) == expected
    plan = plan_memory(arch, quant="nf4", gpus=[find_gpu("H200")])
    assert plan.kv_bytes_per_token == expected
    assert round(expected / 1024) == 188  # ~188 KiB per token


def test_anchor_qwen25_7b_kv_at_2048_tokens() -> None:
    arch = find_preset("qwen2.5-7b")
    assert arch.kv_bytes_per_token(2) == 28 * 4 * 128 * 2 * 2 == 57_344
    plan = plan_memory(arch, max_seq_len=2048)
    assert plan.budget.kv_cache == 57_344 * 2048 == 112 * MIB
    assert plan.to_dict()["kv_cache_gib"] == round(112 / 1024, 3)


def test_kv_is_not_hidden_size_times_kv_heads() -> None:
    arch = find_preset("qwen2.5-7b")
    wrong = 2 * arch.num_layers * arch.hidden_size * arch.num_kv_heads * 2
    assert arch.kv_bytes_per_token(2) != wrong
    assert arch.kv_bytes_per_token(2) * arch.hidden_size // arch.head_dim == wrong


def test_kv_scales_with_dtype_and_batch() -> None:
    arch = find_preset("llama-3.1-8b")
    assert arch.kv_bytes_per_token(1) * 2 == arch.kv_bytes_per_token(2) == 131_072
    one = plan_memory(arch, max_seq_len=1000, kv_dtype="fp8")
    four = plan_memory(arch, max_seq_len=1000, batch=4, kv_dtype="fp8")
    assert one.kv_bytes_per_token == 65_536
    assert four.budget.kv_cache == 4 * one.budget.kv_cache == 4 * 65_536 * 1000


# --- parameter counts ---------------------------------------------------------------------------

PUBLISHED = {  # model cards' totals, independent of the presets' own published_params field
    "qwen2.5-0.5b": 0.49e9,
    "qwen2.5-1.5b": 1.54e9,
    "qwen2.5-3b": 3.09e9,
    "qwen2.5-7b": 7.62e9,
    "qwen2.5-14b": 14.7e9,
    "qwen2.5-32b": 32.5e9,
    "qwen2.5-72b": 72.7e9,
    "qwen3-8b": 8.2e9,
    "qwen3-14b": 14.8e9,
    "qwen3-32b": 32.8e9,
    "qwen3-30b-a3b": 30.5e9,
    "qwen3-235b-a22b": 235e9,
    "llama-3.1-8b": 8.03e9,
    "llama-3.1-70b": 70.6e9,
    "mistral-7b": 7.25e9,
    "mixtral-8x7b": 46.7e9,
    "smollm2-135m": 135e6,
    "smollm2-360m": 362e6,
    "smollm2-1.7b": 1.71e9,
}


@pytest.mark.parametrize(("name", "published"), sorted(PUBLISHED.items()))
def test_presets_match_published_totals(name: str, published: float) -> None:
    total = find_preset(name).param_counts().total
    assert abs(total / published - 1) < 0.02, f"{name}: {total / 1e9:.3f}B"


@pytest.mark.parametrize("arch", PRESETS, ids=lambda a: a.name)
def test_every_preset_is_within_two_percent_of_its_card(arch: ModelArch) -> None:
    assert arch.published_params is not None
    assert abs(arch.param_counts().total / arch.published_params - 1) < 0.02


def test_exact_counts_derived_by_hand() -> None:
    # Qwen2.5-7B: untied 152064 x 3584 embeddings twice; per layer q/k/v/o with q/k/v biases,
    # SwiGLU MLP, two RMSNorms; one final norm.
    layer = (3584 * 3584 + 3584) + 2 * (3584 * 512 + 512) + 3584 * 3584
    layer += 3 * 3584 * 18944 + 2 * 3584
    assert find_preset("qwen2.5-7b").param_counts().total == 2 * 152064 * 3584 + 28 * layer + 3584
    assert find_preset("llama-3.1-8b").param_counts().total == 8_030_261_248


@pytest.mark.parametrize(
    ("name", "active"),
    [("qwen3-30b-a3b", 3.3e9), ("qwen3-235b-a22b", 22e9), ("mixtral-8x7b", 12.9e9)],
)
def test_moe_active_params(name: str, active: float) -> None:
    counts = find_preset(name).param_counts()
    assert abs(counts.active / active - 1) < 0.03
    assert counts.total > 2 * counts.active


def test_moe_weights_count_every_expert() -> None:
    arch = find_preset("mixtral-8x7b")
    bf16 = plan_memory(arch, lora_r=0).budget.weights
    assert abs(bf16 - 2 * arch.param_counts().total) < 0.001 * bf16


def test_presets_are_found_by_hf_id_and_alias() -> None:
    assert find_preset("Qwen/Qwen2.5-7B-Instruct").name == "qwen2.5-7b"
    assert find_preset("QWEN3-8B").name == "qwen3-8b"
    assert find_preset("meta-llama/Llama-3.3-70B-Instruct").name == "llama-3.1-70b"
    assert find_preset("mistralai/Mixtral-8x7B-Instruct-v0.1").name == "mixtral-8x7b"
    assert find_preset("smollm2").name == "smollm2-135m"
    with pytest.raises(ConfigError, match=r"unknown model .*qwen2\.5-7b"):
        find_preset("gpt-5")


def test_qwen3_uses_its_explicit_head_dim() -> None:
    arch = find_preset("qwen3-32b")
    assert arch.head_dim == 128 != arch.hidden_size // arch.num_heads


# --- quantization -------------------------------------------------------------------------------


def _weights(name: str, quant: str) -> int:
    return plan_memory(find_preset(name), quant=quant, lora_r=0).budget.weights


def test_quantization_shrinks_weights_in_order() -> None:
    sizes = {q: _weights("llama-3.1-8b", q) for q in ("bf16", "fp16", "int8", "nf4", "awq", "gptq")}
    assert sizes["bf16"] == sizes["fp16"] == _weights("llama-3.1-8b", "none")
    assert sizes["bf16"] == 2 * find_preset("llama-3.1-8b").param_counts().total
    assert sizes["bf16"] > sizes["int8"] > sizes["gptq"] > sizes["awq"] > sizes["nf4"]
    assert 5.0 * GIB < sizes["nf4"] < 5.7 * GIB  # bitsandbytes reports ~5.6 GB for this model
    assert abs(sizes["awq"] / sizes["nf4"] - 1) < 0.02


def test_quantization_keeps_embeddings_and_lm_head_in_16_bit() -> None:
    arch = find_preset("llama-3.1-8b")
    counts = arch.param_counts()
    nf4 = _weights("llama-3.1-8b", "nf4")
    sixteen_bit = 2 * (counts.embedding + counts.lm_head + counts.small)
    assert nf4 > sixteen_bit + counts.linear // 2
    assert nf4 < sixteen_bit + counts.linear * 0.52  # ~4.13 bits per quantized weight


def test_group_size_changes_awq_overhead() -> None:
    arch = find_preset("qwen2.5-7b")
    g32 = plan_memory(arch, quant="awq", group_size=32, lora_r=0).budget.weights
    g128 = plan_memory(arch, quant="awq", group_size=128, lora_r=0).budget.weights
    assert g32 > g128


def test_unknown_settings_are_config_errors() -> None:
    arch = find_preset("qwen2.5-7b")
    with pytest.raises(ConfigError, match="quantization"):
        plan_memory(arch, quant="int3")
    with pytest.raises(ConfigError, match="KV-cache"):
        plan_memory(arch, kv_dtype="int4")
    with pytest.raises(ConfigError, match="LoRA target"):
        plan_memory(arch, lora_targets=["qkv"])
    with pytest.raises(ConfigError, match="batch"):
        plan_memory(arch, batch=0)


# --- LoRA ---------------------------------------------------------------------------------------


def test_lora_default_targets_and_size() -> None:
    plan = plan_memory(find_preset("qwen2.5-7b"))
    per_layer = 16 * ((3584 + 3584) * 2 + (3584 + 512) * 2 + (3584 + 18944) * 3)
    assert plan.lora_params == 28 * per_layer == 40_370_176
    assert plan.budget.adapter == 2 * plan.lora_params
    assert len(plan.lora_targets) == 7
    assert plan_memory(find_preset("qwen2.5-7b"), lora_r=0).budget.adapter == 0
    attention_only = plan_memory(find_preset("qwen2.5-7b"), lora_targets=["q_proj", "v_proj"])
    assert 0 < attention_only.budget.adapter < plan.budget.adapter
    doubled = plan_memory(find_preset("qwen2.5-7b"), lora_r=32)
    assert doubled.budget.adapter == 2 * plan.budget.adapter
    fp32 = plan_memory(find_preset("qwen2.5-7b"), adapter_dtype="fp32")
    assert fp32.budget.adapter == 4 * plan.lora_params
    with pytest.raises(ConfigError, match="adapter dtype"):
        plan_memory(find_preset("qwen2.5-7b"), adapter_dtype="int8")


# --- tensor parallelism -------------------------------------------------------------------------


def test_tp_splits_weights_and_kv_heads() -> None:
    arch = find_preset("qwen2.5-72b")
    one = plan_memory(arch, lora_r=0)
    two = plan_memory(arch, tp=2, lora_r=0)
    small = 2 * arch.param_counts().small  # norms and biases are replicated
    assert abs((two.budget.weights - small) * 2 - (one.budget.weights - small)) <= 2
    assert two.kv_bytes_per_token * 2 == one.kv_bytes_per_token
    assert two.to_dict()["total_all_gpus_gib"] == pytest.approx(2 * two.to_dict()["total_gib"])


def test_tp_beyond_kv_heads_replicates_them() -> None:
    arch = find_preset("qwen3-235b-a22b")  # 4 KV heads
    plan = plan_memory(arch, tp=8, quant="fp8")
    assert plan.kv_bytes_per_token == 2 * 94 * 1 * 128 * 2


def test_tp_must_divide_heads() -> None:
    with pytest.raises(ConfigError, match="28 attention heads"):
        plan_memory(find_preset("qwen2.5-7b"), tp=3)


def test_tp_lets_a_large_model_fit() -> None:
    arch = find_preset("qwen2.5-72b")
    h100 = [find_gpu("H100")]
    assert not plan_memory(arch, gpus=h100).verdicts[0].fits
    assert plan_memory(arch, tp=2, gpus=h100).verdicts[0].fits


# --- max context and verdicts -------------------------------------------------------------------


def test_max_context_grows_with_gpu_memory() -> None:
    arch = find_preset("qwen2.5-14b")
    plan = plan_memory(arch, quant="nf4")
    by_memory = sorted(plan.verdicts, key=lambda v: v.gpu.usable_gib)
    contexts = [v.max_context_tokens for v in by_memory]
    assert contexts == sorted(contexts)
    assert plan.max_context_tokens == max(contexts)
    assert plan.context_gpu.gpu.name == "H200 141GB"


def test_max_context_shrinks_with_batch_and_grows_with_fp8_kv() -> None:
    arch = find_preset("llama-3.1-8b")
    l4 = [find_gpu("L4")]
    contexts = [plan_memory(arch, batch=b, gpus=l4).max_context_tokens for b in (1, 2, 4, 8)]
    assert contexts == sorted(contexts, reverse=True)
    assert contexts[0] > contexts[-1] > 0
    bf16 = plan_memory(arch, batch=8, gpus=l4).max_context_tokens
    fp8 = plan_memory(arch, batch=8, kv_dtype="fp8", gpus=l4).max_context_tokens
    assert fp8 > bf16


def test_max_context_is_the_exact_boundary() -> None:
    from sqlagent.doctor._plan import _budget, _Setup

    arch = find_preset("llama-3.1-8b")
    gpu = find_gpu("A10")
    plan = plan_memory(arch, batch=4, gpus=[gpu])
    n = plan.max_context_tokens
    assert 0 < n < arch.max_position_embeddings
    setup = _Setup(
        arch=arch,
        quant="bf16",
        group_size=128,
        kv_bytes=2,
        batch=4,
        tp=1,
        kv_heads=8,
        lora_r=16,
        lora_targets=plan.lora_targets,
        adapter_bytes=2,
        prefill_chunk=None,
    )
    usable = int(gpu.usable_gib * GIB)
    assert _budget(setup, n).total <= usable < _budget(setup, n + 1).total


def test_max_context_is_capped_by_the_model() -> None:
    plan = plan_memory(find_preset("smollm2-135m"), gpus=[find_gpu("H200")])
    assert plan.max_context_tokens == 8192


def test_max_context_is_zero_when_weights_do_not_fit() -> None:
    plan = plan_memory(find_preset("qwen2.5-72b"), gpus=[find_gpu("T4")])
    assert plan.max_context_tokens == 0
    assert not plan.verdicts[0].fits
    assert plan.verdicts[0].verdict == "does not fit"


def test_prefill_chunk_lowers_activations() -> None:
    arch = find_preset("llama-3.1-8b")
    whole = plan_memory(arch, max_seq_len=32768)
    chunked = plan_memory(arch, max_seq_len=32768, prefill_chunk=2048)
    assert chunked.budget.activations < whole.budget.activations
    assert chunked.budget.kv_cache == whole.budget.kv_cache


@pytest.mark.parametrize(
    ("model", "quant", "gpu", "fits"),
    [
        ("qwen2.5-7b", "bf16", "T4", False),
        ("qwen2.5-7b", "nf4", "T4", True),
        ("qwen2.5-7b", "bf16", "L4", True),
        ("qwen2.5-7b", "bf16", "RTX 4090", True),
        ("qwen2.5-32b", "bf16", "A100 80GB", True),
        ("qwen2.5-32b", "bf16", "A100 40GB", False),
        ("qwen2.5-32b", "awq", "L40S", True),
        ("llama-3.1-70b", "bf16", "H100", False),
        ("llama-3.1-70b", "nf4", "H100", True),
        ("qwen3-235b-a22b", "nf4", "H200", True),
        ("qwen3-235b-a22b", "bf16", "H200", False),
        ("smollm2-135m", "bf16", "T4", True),
    ],
)
def test_gpu_verdicts(model: str, quant: str, gpu: str, fits: bool) -> None:
    plan = plan_memory(find_preset(model), quant=quant, gpus=[find_gpu(gpu)])
    assert plan.verdicts[0].fits is fits


def test_gpus_usable_memory_and_bf16() -> None:
    assert len(GPUS) >= 11
    for gpu in GPUS:
        assert 0.9 * gpu.memory_gb < gpu.usable_gib < gpu.memory_gb  # nominal sizes are GiB
        assert gpu.bf16 is (gpu.name != "T4")
    plan = plan_memory(find_preset("qwen2.5-0.5b"), gpus=[find_gpu("t4"), find_gpu("a10")])
    notes = {v.gpu.name: v.notes for v in plan.verdicts}
    assert any("bf16" in n for n in notes["T4"])
    assert notes["A10"] == ()
    with pytest.raises(ConfigError, match="unknown GPU"):
        find_gpu("V100")


def test_tight_verdict() -> None:
    arch = find_preset("qwen2.5-7b")
    plan = plan_memory(arch, quant="bf16", max_seq_len=8192, gpus=[find_gpu("L4")])
    verdict = plan.verdicts[0]
    assert verdict.fits
    assert verdict.tight == (verdict.headroom_bytes < 0.1 * find_gpu("L4").usable_gib * GIB)


def test_plan_dict_is_json_and_complete() -> None:
    data = plan_memory(find_preset("qwen2.5-7b")).to_dict()
    json.dumps(data)
    for key in ("weights_gib", "adapter_gib", "kv_bytes_per_token", "kv_cache_gib",
                "overhead_gib", "total_gib", "max_context_tokens", "gpus"):  # fmt: skip
        assert key in data
    parts = ("weights_gib", "adapter_gib", "kv_cache_gib", "overhead_gib")
    assert data["total_gib"] == pytest.approx(sum(data[k] for k in parts), abs=0.005)
    assert set(data["gpus"]) == {g.name for g in GPUS}
    assert all(isinstance(v["fits"], bool) for v in data["gpus"].values())


# --- config.json --------------------------------------------------------------------------------

TINY_QWEN2: dict[str, Any] = {
    "model_type": "qwen2",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1000,
    "tie_word_embeddings": False,
    "max_position_embeddings": 512,
}


def test_config_json_from_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_QWEN2), encoding="utf-8")
    from_dir = arch_from_config(load_config_json(tmp_path))
    from_file = arch_from_config(load_config_json(tmp_path / "config.json"))
    assert from_dir == from_file
    assert from_dir.head_dim == 16
    assert from_dir.qkv_bias
    assert not from_dir.qk_norm
    layer = (64 * 64 + 64) + 2 * (64 * 32 + 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64
    assert from_dir.param_counts().total == 2 * 1000 * 64 + 2 * layer + 64 == 202_304
    assert from_dir.kv_bytes_per_token(2) == 2 * 2 * 2 * 16 * 2


def test_config_json_moe_and_text_config(tmp_path: Path) -> None:
    moe = {
        **TINY_QWEN2,
        "model_type": "qwen3_moe",
        "head_dim": 32,
        "num_experts": 8,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 48,
        "mlp_only_layers": [1],
    }
    arch = arch_from_config({"model_type": "wrapper", "text_config": moe})
    assert arch.num_experts == 8
    assert arch.num_moe_layers == 1
    assert arch.qk_norm
    assert not arch.qkv_bias
    assert arch.param_counts().total == 276_416  # what transformers builds (test below)


def test_config_json_quantization_is_detected() -> None:
    awq = {**TINY_QWEN2, "quantization_config": {"quant_method": "awq", "group_size": 64}}
    assert quant_from_config(awq) == ("awq", 64)
    bnb = {"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}
    assert quant_from_config(bnb) == ("nf4", 128)
    assert quant_from_config(TINY_QWEN2) is None


def test_config_json_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        load_config_json(tmp_path)
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON"):
        load_config_json(tmp_path)
    with pytest.raises(ConfigError, match="hidden_size"):
        arch_from_config({"vocab_size": 10})
    with pytest.raises(ConfigError, match="num_key_value_heads"):
        arch_from_config({**TINY_QWEN2, "num_key_value_heads": "two"})


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30,
         "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536,
         "vocab_size": 49152, "tie_word_embeddings": True},
        TINY_QWEN2,
        {**TINY_QWEN2, "model_type": "qwen3", "head_dim": 32},
        {**TINY_QWEN2, "model_type": "qwen3_moe", "head_dim": 32, "num_experts": 8,
         "num_experts_per_tok": 2, "moe_intermediate_size": 48, "mlp_only_layers": [1]},
        {**TINY_QWEN2, "model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2},
        {**TINY_QWEN2, "model_type": "qwen2_moe", "num_experts": 4, "num_experts_per_tok": 2,
         "moe_intermediate_size": 32, "shared_expert_intermediate_size": 80},
    ],
    ids=["smollm2-135m", "qwen2", "qwen3", "qwen3_moe", "mixtral", "qwen2_moe"],
)  # fmt: skip
def test_counts_match_transformers(config: dict[str, Any]) -> None:
    """The derivation against the models transformers builds (on the meta device: no memory)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf)
    expected = sum(p.numel() for p in model.parameters())
    assert arch_from_config(hf.to_dict()).param_counts().total == expected
    assert math.isclose(expected, arch_from_config(config).param_counts().total)


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from([a.name for a in PRESETS]),
    quant=st.sampled_from(["bf16", "int8", "nf4", "awq"]),
    batch=st.integers(1, 16),
    small=st.floats(4, 200),
    extra=st.floats(0, 100),
)
@pytest.mark.slow
def test_max_context_is_monotone_in_memory(
    model: str, quant: str, batch: int, small: float, extra: float
) -> None:
    arch = find_preset(model)
    gpus = [GPU("small", 0, small, (9, 0)), GPU("large", 0, small + extra, (9, 0))]
    plan = plan_memory(arch, quant=quant, batch=batch, gpus=gpus)
    low, high = (v.max_context_tokens for v in plan.verdicts)
    assert 0 <= low <= high <= arch.max_position_embeddings
    assert plan.max_context_tokens == high
    if plan.verdicts[0].fits:  # what fits a smaller GPU fits a larger one
        assert plan.verdicts[1].fits
        assert low >= min(plan.max_seq_len, arch.max_position_embeddings)
