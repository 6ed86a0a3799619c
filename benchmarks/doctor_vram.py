"""Does ``sqlagent doctor plan`` predict real GPU memory? Estimated vs measured, per component.

For each model, a model with *random* weights is built from the preset's architecture
(transformers ``AutoConfig.for_model`` + ``AutoModelForCausalLM.from_config``, bf16, directly on
the GPU: nothing is downloaded), optionally wrapped in a LoRA adapter (peft) or loaded in NF4
(bitsandbytes, through a temporary checkpoint: small models only). One forward pass over
``--seq-len`` tokens x ``--batch`` sequences fills a KV cache, as the prefill of ``generate``
does. Measured: the weights (allocated after the build), the KV cache (the cache's own tensors),
the peak allocated and reserved memory (``torch.cuda.max_memory_*``) and what the device reports
as used (``mem_get_info``, which includes the CUDA context). Estimated: the same components from
:func:`sqlagent.doctor.plan_memory`.

    python benchmarks/doctor_vram.py [--models smollm2-135m,qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-7b]
        [--seq-len 2048] [--batch 1] [--quant bf16|nf4] [--lora-r 0] [--json]

Without CUDA it prints "skipped: no CUDA" and exits 0 (with --json, the last line is
``{"skipped": "no CUDA"}``); ``--cpu-smoke`` runs the build and forward pass on the CPU for the
smallest models, to check the script itself (no memory statistics there). With --json the last
line is one JSON object: ``{"device": ..., "rows": [...]}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from sqlagent.doctor import GPU, ModelArch, find_preset, plan_memory

GIB = 1024**3
DEFAULT_MODELS = "smollm2-135m,qwen2.5-0.5b,qwen2.5-1.5b,qwen2.5-7b"


def hf_config(arch: ModelArch) -> dict[str, Any]:
    """A transformers config for a preset's shape (model_type chosen by its features)."""
    if arch.qk_norm:
        model_type = "qwen3_moe" if arch.is_moe else "qwen3"
    elif arch.qkv_bias:
        model_type = "qwen2"
    else:
        model_type = "mixtral" if arch.is_moe else "llama"
    config: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": arch.hidden_size,
        "num_hidden_layers": arch.num_layers,
        "num_attention_heads": arch.num_heads,
        "num_key_value_heads": arch.num_kv_heads,
        "head_dim": arch.head_dim,
        "intermediate_size": arch.intermediate_size,
        "vocab_size": arch.vocab_size,
        "tie_word_embeddings": arch.tie_embeddings,
        "max_position_embeddings": arch.max_position_embeddings,
    }
    if arch.is_moe:
        key = "num_local_experts" if model_type == "mixtral" else "num_experts"
        config.update({key: arch.num_experts, "num_experts_per_tok": arch.experts_per_token})
        if model_type != "mixtral":
            config["moe_intermediate_size"] = arch.moe_intermediate_size
    return config


def build(arch: ModelArch, *, quant: str, lora_r: int, device: str, tmp: str) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**hf_config(arch))
    if quant == "nf4":
        from transformers import BitsAndBytesConfig

        with torch.device("cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(tmp)
        del model
        gc.collect()
        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            tmp, quantization_config=bnb, dtype=torch.bfloat16, device_map={"": device}
        )
    else:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    if lora_r:
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=lora_r, target_modules=targets))
    return model.eval()


def cache_bytes(cache: Any) -> int:
    """Bytes held by a transformers cache's key and value tensors."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        tensors = [t for layer in layers for t in (layer.keys, layer.values) if t is not None]
    else:  # older caches: key_cache / value_cache lists
        tensors = [*getattr(cache, "key_cache", []), *getattr(cache, "value_cache", [])]
    return sum(int(t.numel() * t.element_size()) for t in tensors)


def measure(arch: ModelArch, args: argparse.Namespace, device: str) -> dict[str, Any]:
    import torch

    cuda = device == "cuda"
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    with tempfile.TemporaryDirectory() as tmp:
        model = build(arch, quant=args.quant, lora_r=args.lora_r, device=device, tmp=tmp)
    if cuda:
        weights = torch.cuda.memory_allocated() - base
    else:  # no allocator statistics: the bytes of the parameters themselves (tied ones once)
        unique = {id(p): p for p in model.parameters()}.values()
        weights = sum(int(p.numel() * p.element_size()) for p in unique)
    ids = torch.randint(0, arch.vocab_size, (args.batch, args.seq_len), device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    kv = cache_bytes(out.past_key_values)
    row: dict[str, Any] = {"model": arch.name, "measured_weights": weights, "measured_kv": kv}
    if cuda:
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        row.update(
            measured_peak_allocated=torch.cuda.max_memory_allocated() - base,
            measured_peak_reserved=torch.cuda.max_memory_reserved(),
            measured_device_used=total - free,
        )
    del out, model, ids
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def estimate(arch: ModelArch, args: argparse.Namespace) -> dict[str, Any]:
    gpu = GPU("measured", 0, 10_000.0, (9, 0))  # the verdict is not compared, only components
    plan = plan_memory(
        arch,
        quant=args.quant,
        max_seq_len=args.seq_len,
        batch=args.batch,
        lora_r=args.lora_r,
        adapter_dtype="fp32",  # what peft's get_peft_model/from_pretrained hold by default
        gpus=[gpu],
    )
    b = plan.budget
    return {
        "estimated_weights": b.weights + b.adapter,
        "estimated_kv": b.kv_cache,
        "estimated_allocated": b.weights + b.adapter + b.kv_cache + b.activations,
        "estimated_reserved": b.total - b.cuda_context,
        "estimated_total": b.total,
    }


PAIRS = (
    ("weights (+adapter)", "estimated_weights", "measured_weights"),
    ("KV cache", "estimated_kv", "measured_kv"),
    ("peak allocated", "estimated_allocated", "measured_peak_allocated"),
    ("peak reserved", "estimated_reserved", "measured_peak_reserved"),
    ("device used (with CUDA context)", "estimated_total", "measured_device_used"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated presets")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--quant", choices=["bf16", "nf4"], default="bf16")
    parser.add_argument("--lora-r", type=int, default=0, help="wrap in a LoRA adapter (peft)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="run on the CPU (script check; no memory stats)"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=args.json)
    try:
        import torch
    except ImportError:
        return _skip(args.json, "no torch (pip install 'sqlagent[local]')", console)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.cpu_smoke:
        return _skip(args.json, "no CUDA", console)
    if args.quant == "nf4" and device == "cpu":
        return _skip(args.json, "nf4 needs CUDA", console)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke run)"
    rows = []
    for model in (m.strip() for m in args.models.split(",") if m.strip()):
        arch = find_preset(model)
        if device == "cpu" and arch.param_counts().total > 600e6:
            console.print(f"[dim]{arch.name}: skipped on the CPU[/]")
            continue
        row = {**estimate(arch, args), **measure(arch, args, device)}
        rows.append(row)
    table = Table(
        title=f"doctor plan vs measured on {name}: {args.seq_len} tokens x {args.batch}, "
        f"{args.quant}" + (f", LoRA r={args.lora_r}" if args.lora_r else "")
    )
    for col in ("model", "component", "estimated GiB", "measured GiB", "est/meas"):
        table.add_column(col, justify="left" if col in ("model", "component") else "right")
    for row in rows:
        for label, est_key, meas_key in PAIRS:
            if meas_key not in row:
                continue
            est, meas = row[est_key], row[meas_key]
            ratio = f"{est / meas:.2f}" if meas else "-"
            table.add_row(row["model"], label, f"{est / GIB:.3f}", f"{meas / GIB:.3f}", ratio)
    console.print(table)
    if args.json:
        print(json.dumps({"device": name, "seq_len": args.seq_len, "batch": args.batch,
                          "quant": args.quant, "lora_r": args.lora_r, "rows": rows}))  # fmt: skip
    return 0


def _skip(as_json: bool, why: str, console: Console) -> int:
    console.print(f"skipped: {why}")
    if as_json:
        print(json.dumps({"skipped": why}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
