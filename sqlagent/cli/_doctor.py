"""``sqlagent doctor plan`` (will a model fit a GPU?) and ``sqlagent doctor check`` (is this
machine and configuration ready?).

Exit codes: ``plan`` 0 (the verdicts are information, not failures), 2 for an unknown model or
bad settings; ``check`` 0 when nothing blocking failed, 1 when a blocking check failed, 2 for a
usage or configuration error. ``--json`` prints exactly one object.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors
from sqlagent.cli._output import console, line, table, text

if TYPE_CHECKING:
    from sqlagent.doctor import Check

__all__ = ["doctor"]

DEFAULT_CONFIG = "sqlagent.yaml"
_SHORT_TARGETS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
                  "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}  # fmt: skip
_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@click.group()
def doctor() -> None:
    """Plan GPU memory for a model, and check that this machine can run sqlagent."""


@doctor.command("plan")
@click.option("--model", metavar="NAME|PATH", help="A preset (see --list-models) or a config.json.")
@click.option(
    "--quant",
    type=click.Choice(["none", "bf16", "fp16", "fp8", "int8", "nf4", "awq", "gptq"]),
    help="Weight quantization. Default: what config.json declares, else bf16.",
)
@click.option("--group-size", type=click.IntRange(min=1), help="awq/gptq group size (default 128).")
@click.option(
    "--max-seq-len",
    type=click.IntRange(min=1),
    help="Tokens per sequence, prompt and answer (default 4096, or the model's limit).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Concurrent sequences.",
)
@click.option(
    "--kv-dtype",
    type=click.Choice(["bf16", "fp16", "fp8"]),
    default="bf16",
    show_default=True,
    help="KV-cache element type.",
)
@click.option(
    "--tp", type=click.IntRange(min=1), default=1, show_default=True, help="Tensor-parallel GPUs."
)
@click.option(
    "--gpu",
    "gpu_names",
    multiple=True,
    metavar="NAME",
    help="Verdicts for this GPU only (repeatable).",
)
@click.option(
    "--lora-r",
    type=click.IntRange(min=0),
    default=16,
    show_default=True,
    help="LoRA rank; 0 for no adapter.",
)
@click.option(
    "--lora-targets",
    default="q,k,v,o,gate,up,down",
    show_default=True,
    help="Comma-separated projections (q or q_proj ...), or all-linear.",
)
@click.option(
    "--adapter-dtype",
    type=click.Choice(["bf16", "fp16", "fp32"]),
    default="bf16",
    show_default=True,
    help="Adapter weights' type (PEFT, i.e. the transformers backend, upcasts to fp32).",
)
@click.option(
    "--prefill-chunk",
    type=click.IntRange(min=1),
    help="Tokens per forward pass (vLLM chunked prefill); default: whole prompts at once.",
)
@click.option("--list-models", is_flag=True, help="List the built-in model presets and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def plan(
    model: str | None,
    quant: str | None,
    group_size: int | None,
    max_seq_len: int | None,
    batch: int,
    kv_dtype: str,
    tp: int,
    gpu_names: tuple[str, ...],
    lora_r: int,
    lora_targets: str,
    adapter_dtype: str,
    prefill_chunk: int | None,
    list_models: bool,
    as_json: bool,
) -> None:
    """GPU memory budget for serving MODEL: weights, adapter, KV cache, overheads, and whether
    it fits each GPU (with the longest context that does). Nothing is loaded or downloaded."""
    from sqlagent.doctor import (
        arch_from_config,
        find_gpu,
        find_preset,
        load_config_json,
        plan_memory,
        quant_from_config,
    )

    if list_models:
        _print_presets(as_json)
        return
    if model is None:
        raise click.UsageError("--model is required (a preset name or a config.json)")
    declared = None
    if Path(model).expanduser().exists():
        config = load_config_json(model)
        arch = arch_from_config(config, name=Path(model).name)
        declared = quant_from_config(config)
    else:
        arch = find_preset(model)
    chosen_quant = quant or (declared[0] if declared else "bf16")
    chosen_group = group_size or (declared[1] if declared else 128)
    targets = [_SHORT_TARGETS.get(t.strip(), t.strip()) for t in lora_targets.split(",")]
    result = plan_memory(
        arch,
        quant=chosen_quant,
        group_size=chosen_group,
        max_seq_len=max_seq_len,
        batch=batch,
        kv_dtype=kv_dtype,
        tp=tp,
        lora_r=lora_r,
        lora_targets=targets,
        adapter_dtype=adapter_dtype,
        prefill_chunk=prefill_chunk,
        gpus=[find_gpu(g) for g in gpu_names] if gpu_names else None,
    )
    data = result.to_dict()
    if as_json:
        click.echo(json.dumps(data))
        return
    out = console()
    m = data["model"]
    size = f"{m['params'] / 1e9:.2f}B params"
    if m["active_params"] != m["params"]:
        size += f", {m['active_params'] / 1e9:.2f}B active"
    title = (
        f"{arch.name}: {size}, {data['quant']}, {data['max_seq_len']} tokens x {data['batch']}"
        + (f", tp={tp}" if tp > 1 else "")
    )
    out.print(text(title))
    memory = table("memory per GPU", "GiB", right=("GiB",))
    rows = [
        ("weights", data["weights_gib"]),
        (f"LoRA adapter (r={lora_r})" if lora_r else "LoRA adapter (none)", data["adapter_gib"]),
        (f"KV cache ({data['kv_bytes_per_token']:,} B/token)", data["kv_cache_gib"]),
        ("activations", data["activations_gib"]),
        ("framework / allocator", data["framework_gib"]),
        ("CUDA context", data["cuda_context_gib"]),
    ]
    for label, value in rows:
        memory.add_row(text(label), text(f"{value:.2f}"))
    memory.add_row(text("total", "bold"), text(f"{data['total_gib']:.2f}", "bold"))
    out.print(memory)
    verdicts = table(
        "GPU",
        "usable GiB",
        "verdict",
        "headroom",
        "max context",
        "notes",
        title="verdict per GPU" + (f" (x{tp} each)" if tp > 1 else ""),
        right=("usable GiB", "headroom", "max context"),
    )
    for name, v in data["gpus"].items():
        style = {"fits": "green", "tight": "yellow"}.get(v["verdict"], "red")
        verdicts.add_row(
            text(name),
            text(f"{v['usable_gib']:.1f}"),
            text(v["verdict"], style),
            text(f"{v['headroom_gib']:+.2f}"),
            text(f"{v['max_context_tokens']:,}"),
            text("; ".join(v["notes"])),
        )
    out.print(verdicts)
    out.print(
        line(
            f"max context: {data['max_context_tokens']:,} tokens per sequence on ",
            data["max_context_gpu"],
        )
    )
    for assumption in data["assumptions"]:
        out.print(line("  - ", assumption))


def _print_presets(as_json: bool) -> None:
    from sqlagent.doctor import PRESETS

    if as_json:
        click.echo(json.dumps({"models": [a.summary() for a in PRESETS]}))
        return
    presets = table(
        "name",
        "Hugging Face id",
        "params",
        "layers",
        "KV heads x dim",
        "context",
        title="built-in model presets",
        right=("params", "layers", "context"),
        no_wrap=("name",),
    )
    for a in PRESETS:
        counts = a.param_counts()
        size = f"{counts.total / 1e9:.2f}B" + (
            f" ({counts.active / 1e9:.1f}B active)" if a.is_moe else ""
        )
        cells = (
            a.name,
            a.hf_id,
            size,
            str(a.num_layers),
            f"{a.num_kv_heads} x {a.head_dim}",
            f"{a.max_position_embeddings:,}",
        )
        presets.add_row(*(text(cell) for cell in cells))
    console().print(presets)


@doctor.command("check")
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Agent config (YAML/JSON). Default: ./{DEFAULT_CONFIG} when it exists.",
)
@click.option("--db", "db_url", metavar="URL", help="Database URL (overrides the config's).")
@click.option(
    "--serve-config",
    "serve_config",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve config: also check that its Redis (redis_url, or $SQLAGENT_REDIS_URL) answers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--report",
    "report_file",
    metavar="FILE.md",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a Markdown report.",
)
@handle_errors
def check(
    config_file: Path | None,
    db_url: str | None,
    serve_config: Path | None,
    as_json: bool,
    report_file: Path | None,
) -> None:
    """Check the environment and configuration: Python, torch/CUDA, package pins, model files,
    chromadb path, database reachability and read-only enforcement, audit sink (a JSONL file
    or a database), and the serve replicas' Redis when a serve config (or $SQLAGENT_REDIS_URL)
    names one.

    Exit status: 0 nothing blocking failed, 1 a blocking check failed, 2 usage or config error.
    """
    from sqlagent.config import AgentConfig
    from sqlagent.doctor import CHECKS, run_checks

    if config_file is None and Path(DEFAULT_CONFIG).is_file():
        config_file = Path(DEFAULT_CONFIG)
    config = AgentConfig.from_file(config_file) if config_file is not None else None
    to_run = list(CHECKS)
    redis_url = _redis_url(serve_config)
    if redis_url is not None:
        to_run.append(_redis_check(redis_url))
    report = run_checks(config, database=db_url, config_path=config_file, checks=to_run)
    if report_file is not None:
        report_file.write_text(report.to_markdown(), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        out = console()
        checks = table("check", "status", "detail", title="sqlagent doctor check")
        for c in report.checks:
            status = c.status + (" (blocking)" if c.blocking and c.status == "fail" else "")
            checks.add_row(text(c.name), text(status, _STATUS_STYLE[c.status]), text(c.detail))
        out.print(checks)
        if report_file is not None:
            out.print(line("report written to ", report_file))
        if report.ok:
            out.print(text("ready: no blocking failure", "green"))
        else:
            out.print(
                line(("blocked:", "bold red"), " ", ", ".join(c.name for c in report.blocking))
            )
    sys.exit(EXIT_OK if report.ok else EXIT_REJECTED)


def _redis_url(serve_config: Path | None) -> str | None:
    """The Redis the serve replicas share: the serve config's (with $SQLAGENT_REDIS_URL
    winning, as in ``sqlagent serve``), or $SQLAGENT_REDIS_URL alone."""
    if serve_config is None:
        return os.environ.get("SQLAGENT_REDIS_URL") or None
    try:
        from sqlagent.serve import ServeSettings
    except ImportError as exc:
        raise click.UsageError(
            f"--serve-config needs the serve extra: pip install 'sqlagent[serve]' ({exc})"
        ) from None
    return ServeSettings.from_file(serve_config, environ=os.environ).redis_url


def _redis_check(url: str) -> Check:
    """A doctor check row: the Redis at ``url`` answers and runs scripts (blocking: replicas
    refuse every request with 503 without it)."""
    from sqlagent.doctor import CheckContext, CheckResult
    from sqlagent.errors import SQLAgentError
    from sqlagent.serve import probe_redis

    def check_redis(ctx: CheckContext) -> list[CheckResult]:
        try:
            version = probe_redis(url, timeout_s=2.0)
        except SQLAgentError as exc:
            return [CheckResult("redis", "fail", str(exc), blocking=True)]
        return [CheckResult("redis", "pass", f"answers, scripts run (Redis {version})")]

    return check_redis
