"""``sqlagent train``: fine-tune a LoRA/QLoRA adapter that ``TransformersLLM`` loads as it is.

Exit codes: 0 trained (or planned, with ``--dry-run``), 1 the run failed, 2 a usage or
configuration error (a bad config file or flag, a missing extra, an unreadable model).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sqlagent.cli._common import handle_errors
from sqlagent.cli._output import console, echo, table, text

__all__ = ["train"]


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _parse_source(value: str) -> dict[str, Any]:
    kind, sep, path = value.partition(":")
    if not sep or kind not in ("spider", "jsonl", "examples") or not path:
        raise click.BadParameter(
            f"{value!r}: expected spider:PATH, jsonl:PATH or examples:PATH", param_hint="--data"
        )
    return {"kind": kind, "path": path}


@click.command("train")
@click.argument("config_file", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--base-model", metavar="PATH", help="Model directory or .gguf file.")
@click.option("--output-dir", metavar="DIR", help="Where the adapter is written.")
@click.option(
    "--data",
    "sources",
    metavar="KIND:PATH",
    multiple=True,
    help="Replace the config's data: spider:DIR, jsonl:FILE, examples:FILE (repeatable).",
)
@click.option("--agent", metavar="FILE", help="Agent config whose prompt settings to train on.")
@click.option("--lora-r", type=int, help="LoRA rank.")
@click.option("--lora-alpha", type=int, help="LoRA alpha.")
@click.option("--lora-dropout", type=float, help="LoRA dropout.")
@click.option("--target-modules", metavar="A,B,...", help="Modules LoRA adapts.")
@click.option(
    "--load-in-4bit",
    type=click.Choice(["auto", "true", "false"]),
    help="NF4 4-bit base weights (auto: on a CUDA GPU).",
)
@click.option("--lr", "learning_rate", type=float, help="Learning rate.")
@click.option("--epochs", type=float, help="Epochs (ignored when --max-steps is set).")
@click.option("--max-steps", type=int, help="Optimizer steps.")
@click.option("--batch-size", type=int, help="Per-device batch size.")
@click.option("--grad-accum", type=int, help="Gradient accumulation steps.")
@click.option("--max-length", type=int, help="Longest record in tokens; longer ones are dropped.")
@click.option("--seed", type=int, help="Seed for the split, the LoRA init and the data order.")
@click.option("--backend", type=click.Choice(["auto", "unsloth", "peft"]), help="Training stack.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]))
@click.option("--device", metavar="DEVICE", help="cpu, cuda, cuda:1 ...")
@click.option("--threads", type=int, help="torch CPU threads.")
@click.option(
    "--eval/--no-eval", "run_eval", default=None, help="Evaluate on the validation split."
)
@click.option("--dry-run", is_flag=True, help="Print the plan (data, tokens, steps, memory) only.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan or the manifest as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def train(
    config_file: str,
    base_model: str | None,
    output_dir: str | None,
    sources: tuple[str, ...],
    agent: str | None,
    lora_r: int | None,
    lora_alpha: int | None,
    lora_dropout: float | None,
    target_modules: str | None,
    load_in_4bit: str | None,
    learning_rate: float | None,
    epochs: float | None,
    max_steps: int | None,
    batch_size: int | None,
    grad_accum: int | None,
    max_length: int | None,
    seed: int | None,
    backend: str | None,
    dtype: str | None,
    device: str | None,
    threads: int | None,
    run_eval: bool | None,
    dry_run: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Fine-tune an adapter on Spider data, eval suites or the example store.

    CONFIG is a YAML or TOML training config (see training/*.yaml); flags override it. The
    adapter directory gets the PEFT weights, the tokenizer and sqlagent-adapter.json, and loads
    with --llm transformers:BASE@ADAPTER.
    """
    from sqlagent import training

    config = training.TrainConfig.from_file(config_file)
    four_bit = {"auto": "auto", "true": True, "false": False}.get(load_in_4bit or "")
    overrides: dict[str, Any] = {
        "base_model": base_model,
        "output_dir": output_dir,
        "agent": agent,
        "lora.r": lora_r,
        "lora.alpha": lora_alpha,
        "lora.dropout": lora_dropout,
        "lora.target_modules": (
            [m.strip() for m in target_modules.split(",") if m.strip()] if target_modules else None
        ),
        "quantization.load_in_4bit": four_bit,
        "optim.learning_rate": learning_rate,
        "optim.epochs": epochs,
        "optim.max_steps": max_steps,
        "optim.batch_size": batch_size,
        "optim.grad_accum": grad_accum,
        "max_length": max_length,
        "seed": seed,
        "backend": backend,
        "dtype": dtype,
        "device": device,
        "threads": threads,
        "eval.enabled": run_eval,
        "data": [_parse_source(s) for s in sources] or None,
    }
    config = config.with_overrides(overrides)
    # training's own progress lines use Rich markup; what the CLI prints itself is verbatim
    progress_console = Console(stderr=True, quiet=quiet and not dry_run)
    if dry_run:
        result = training.dry_run(config)
        if as_json:
            payload = {
                "data": dataclasses.asdict(result.report),
                "plan": dataclasses.asdict(result.plan),
                "exact_tokens": result.exact_tokens,
                "backend": result.backend,
                "four_bit": result.four_bit,
                "dtype": result.dtype,
                "device": result.device,
            }
            click.echo(json.dumps(payload, default=str))
            return
        out = console()
        result.report.print(out)
        out.print(_plan_table(result))
        return
    done = training.train(config, console=progress_console, progress=not quiet)
    if as_json:
        click.echo(json.dumps(done.manifest, default=str))
    else:
        echo(done.output_dir)


def _plan_table(result: Any) -> Table:
    plan = result.plan
    grid = table("item", "value", title="Plan", right=("value",))
    tokens = f"{plan.train_tokens:,}" + ("" if result.exact_tokens else " (approx.)")
    rows = [
        ("train examples", f"{plan.train_examples:,}"),
        ("validation examples", f"{plan.validation_examples:,}"),
        ("train tokens", tokens),
        ("epochs", f"{plan.epochs:g}"),
        ("batch x grad accum", f"{plan.batch_size} x {plan.grad_accum}"),
        ("optimizer steps", f"{plan.steps:,}"),
        ("backend", result.backend),
        ("weights", "NF4 4-bit" if result.four_bit else result.dtype),
        ("device", result.device),
        ("LoRA parameters", "-" if plan.lora_params is None else f"{plan.lora_params:,}"),
        ("weights memory (est.)", _gib(plan.weight_bytes)),
        ("weights + LoRA state (est.)", _gib(plan.memory_estimate_bytes)),
    ]
    for label, value in rows:
        grid.add_row(text(label), text(value))
    grid.caption = "Estimate: activations, CUDA context and allocator slack come on top."
    return grid
