"""The training run behind ``sqlagent train``: data -> tokens -> (Q)LoRA -> adapter + manifest.

:func:`train` reads the data (:mod:`._encode`), picks and loads the model (:mod:`._backends`:
unsloth on a CUDA GPU when installed, else transformers + peft, QLoRA on a GPU and plain LoRA
over fp32 weights on the CPU), runs trl's ``SFTTrainer`` (:mod:`._loop`) and writes the adapter.
:func:`dry_run` plans the same run without loading weights.

The output directory holds the PEFT adapter, the tokenizer with the chat template used, the
``sqlagent-adapter.json`` manifest (:func:`~sqlagent.llm.write_adapter_manifest`: base model
name and fingerprint, prompt format, plus data hash and counts, the config, metrics and library
versions), ``train_log.jsonl`` and, when asked for, an ``eval/`` report on the validation split.

*The unsloth and 4-bit paths were not run during development (no GPU was lent); they follow the
libraries' documented APIs and are exercised with stand-ins in the tests.*
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import platform
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape

from sqlagent.dialects import sqlite_file
from sqlagent.errors import ConfigError, SQLAgentError
from sqlagent.llm import write_adapter_manifest
from sqlagent.llm.local import cuda_capability, import_extra
from sqlagent.training._backends import (
    NEEDED_BY,
    TRAIN_EXTRA,
    Backend,
    check_trl,
    choices,
    count_parameters,
    load_peft,
    load_tokenizer,
    load_unsloth,
    located,
    model_config,
)
from sqlagent.training._config import TrainConfig
from sqlagent.training._data import DataReport, suite_row
from sqlagent.training._encode import (
    TrainData,
    data_hash,
    encode_split,
    load_training_data,
)
from sqlagent.training._loop import (
    LOG_FILE,
    make_trainer,
    peak_memory,
    progress_callback,
    quiet_libraries,
    versions,
)
from sqlagent.training._plan import TrainPlan, plan

__all__ = ["DryRun", "TrainResult", "dry_run", "train"]

_log = logging.getLogger("sqlagent.train")


@dataclass(frozen=True, slots=True)
class TrainResult:
    output_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    report: DataReport
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_summary: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DryRun:
    """What ``sqlagent train --dry-run`` prints: the counts, the plan, and the choices made."""

    report: DataReport
    plan: TrainPlan
    exact_tokens: bool  # counted with the model's tokenizer (else approximated)
    backend: Backend
    four_bit: bool
    dtype: str
    device: str


def dry_run(config: TrainConfig, *, progress: Callable[[int], None] | None = None) -> DryRun:
    """The plan without loading the model's weights: examples and tokens counted with the
    model's own tokenizer when it loads (approximated otherwise), steps, a memory estimate."""
    config = located(config)
    data = load_training_data(config, progress=progress)
    report, exact = data.report, False
    try:
        import_extra("transformers", TRAIN_EXTRA, needed_by=NEEDED_BY)
        tokenizer = load_tokenizer(config.base_model)
    except Exception as exc:  # no extra, or tokenizer files transformers cannot read
        _log.warning("no tokenizer (%s): token counts are approximate", exc)
    else:
        report, exact = encode_split(data, tokenizer, config.max_length)[2], True
    capability = None
    if importlib.util.find_spec("torch") is not None:
        capability = cuda_capability(importlib.import_module("torch"), config.device)
    run = choices(config, capability)
    o = config.optim
    estimate = plan(
        data.train,
        data.validation,
        batch_size=o.batch_size,
        grad_accum=o.grad_accum,
        parameters=count_parameters(config.base_model),
        dtype="4bit" if run.four_bit else run.dtype,
        config=model_config(config.base_model),
        lora_r=config.lora.r,
        target_modules=config.lora.target_modules,
    )
    steps = o.max_steps or math.ceil(report.train * o.epochs / (o.batch_size * o.grad_accum))
    estimate = replace(
        estimate,
        train_examples=report.train,
        validation_examples=report.validation,
        train_tokens=report.train_tokens,
        epochs=o.epochs,
        steps=steps,
    )
    return DryRun(report, estimate, exact, run.backend, run.four_bit, run.dtype, run.device)


def train(
    config: TrainConfig,
    *,
    console: Any = None,
    progress: bool = True,
    data: TrainData | None = None,
) -> TrainResult:
    """Fine-tune ``config.base_model`` with LoRA (QLoRA on a GPU) and write the adapter.

    Raises :class:`~sqlagent.errors.ConfigError` for a wrong setting, a missing extra or a model
    that cannot be loaded; nothing is written to ``output_dir`` before the data is ready.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    torch = import_extra("torch", TRAIN_EXTRA, needed_by=NEEDED_BY)
    import_extra("transformers", TRAIN_EXTRA, needed_by=NEEDED_BY)
    import_extra("peft", TRAIN_EXTRA, needed_by=NEEDED_BY)
    import_extra("datasets", TRAIN_EXTRA, needed_by=NEEDED_BY)
    with quiet_libraries():
        return _train(located(config), console, progress, data, torch)


def _train(
    config: TrainConfig, console: Any, progress: bool, data: TrainData | None, torch: Any
) -> TrainResult:
    base = config.base_model
    if not base.exists():
        raise ConfigError(f"no base model at '{base}'")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    run = choices(config, cuda_capability(torch, config.device))
    cuda, backend, four_bit, dtype_name, device = (
        run.cuda,
        run.backend,
        run.four_bit,
        run.dtype,
        run.device,
    )
    check_trl(cuda)
    if not cuda:
        console.print(
            "[yellow]no CUDA GPU: plain LoRA over fp32 weights on the CPU (no 4-bit "
            "quantization, no unsloth)[/yellow]"
        )
    console.print(
        f"backend {backend} · {'NF4 4-bit (QLoRA)' if four_bit else dtype_name} · {device} · "
        f"LoRA r={config.lora.r} alpha={config.lora.alpha} on "
        + ", ".join(config.lora.target_modules),
        markup=False,
        emoji=False,
    )

    if data is None:
        data = load_training_data(config)
    if backend == "unsloth":  # unsloth patches transformers and trl: import it first
        model, tokenizer = load_unsloth(config, getattr(torch, dtype_name), four_bit)
    else:
        tokenizer = load_tokenizer(base)
    train_enc, val_enc, report = encode_split(data, tokenizer, config.max_length)
    if not train_enc:
        raise ConfigError(
            f"no training example fits max_length={config.max_length} tokens "
            f"({report.too_long} too long): raise max_length"
        )
    report.print(console)
    if backend == "peft":
        try:
            model = load_peft(config, getattr(torch, dtype_name), device, four_bit, tokenizer)
        except SQLAgentError:
            raise
        except Exception as exc:  # transformers raises many kinds for unreadable models
            message = f"cannot load the model at '{base}': {type(exc).__name__}: {exc}"
            raise ConfigError(message) from exc
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    out = config.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_FILE
    log_path.write_text("", encoding="utf-8")
    callback, history = progress_callback(console, progress, log_path, torch, cuda)
    trainer = make_trainer(
        config, model, tokenizer, train_enc, val_enc, dtype_name, cuda, out, [callback]
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        output = trainer.train()
    except torch.cuda.OutOfMemoryError as exc:
        raise ConfigError(
            "out of GPU memory: lower optim.batch_size or max_length, or enable 4-bit"
        ) from exc
    seconds = time.perf_counter() - started
    memory_kind, peak = peak_memory(torch, cuda)
    losses = [row["loss"] for row in history if "loss" in row]
    metrics: dict[str, Any] = {
        "steps": int(trainer.state.global_step),
        "epochs": round(float(trainer.state.epoch or 0), 3),
        "train_loss": round(float(output.training_loss), 5),
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "train_seconds": round(seconds, 2),
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "tokens_per_s": round(trainer.state.num_input_tokens_seen / seconds, 1),
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        memory_kind: peak,
    }
    if val_enc:
        evaluated = trainer.evaluate()
        metrics["eval_loss"] = round(float(evaluated["eval_loss"]), 5)
    with warnings.catch_warnings():
        # peft looks for the base's config.json beside a GGUF file to see whether the
        # vocabulary changed; it did not (no embedding is trained)
        warnings.filterwarnings("ignore", message="Could not find a config file")
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)

    extra = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": backend,
        "quantization": "nf4-double" if four_bit else None,
        "dtype": dtype_name,
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "data": {
            "hash": data_hash(data.train),
            "validation_hash": data_hash(data.validation),
            "sources": [s.model_dump(mode="json") for s in config.data],
            "counts": {
                "loaded": report.loaded,
                "duplicates": report.duplicates,
                "too_long": report.too_long,
                "train": report.train,
                "validation": report.validation,
                "train_tokens": report.train_tokens,
            },
        },
        "training": config.model_dump(mode="json"),
        "metrics": metrics,
        "versions": versions(),
    }
    manifest_path = write_adapter_manifest(
        out, base_model=base, base_model_name=config.base_model_name, extra=extra
    )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    console.print(
        f"[green]adapter written to {escape(str(out))}[/green] · loss "
        f"{metrics['first_logged_loss']} -> "
        f"{metrics['last_logged_loss']} · {metrics['tokens_per_s']} tok/s · "
        f"{peak / 2**20:.0f} MiB ({memory_kind})"
    )
    eval_summary = None
    if config.eval.enabled:
        del trainer, model
        eval_summary = _evaluate(config, data, out, console, progress)
    return TrainResult(out, manifest, metrics, report, history, eval_summary)


def _evaluate(
    config: TrainConfig, data: TrainData, out: Path, console: Any, progress: bool
) -> dict[str, Any] | None:
    """``sqlagent eval`` of the fresh adapter on the validation split (SQLite items only)."""
    from sqlagent.evaluation import agent_predictor, load_suite, run_eval, write_report
    from sqlagent.llm import TransformersLLM

    rows = [r for r in data.validation if r.get("url") and sqlite_file(r["url"]) is not None]
    rows = [suite_row(r) for r in rows]
    if config.eval.limit is not None:
        rows = rows[: config.eval.limit]
    if not rows:
        console.print("[yellow]eval skipped: no SQLite validation items[/yellow]")
        return None
    suite = out / "validation.jsonl"
    suite.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    items = load_suite("jsonl", suite)
    llm = TransformersLLM(
        config.base_model,
        adapter=out,
        max_new_tokens=config.eval.max_new_tokens,
        device=config.device,
    )
    # An agent config lends its retrieval settings (in memory: the user's index is left alone);
    # its examples and notes are not used, so the store's answers to held-out questions stay
    # out of the prompts.
    retrieval = None
    if data.agent is not None:
        retrieval = data.agent.retrieval.model_copy(update={"store": "memory", "path": None})
    predictor, close = agent_predictor(
        llm, policy=data.policy, max_attempts=config.eval.max_attempts, retrieval=retrieval
    )
    try:
        run = run_eval(items, predictor=predictor, policy=data.policy, progress=progress)
    finally:
        close()
    run.meta.update({"llm": llm.name, "suite": str(suite), "adapter": str(out)})
    write_report(run, out / "eval")
    summary = run.summary
    accuracy = summary["overall"].get("exec_match")
    console.print(
        f"eval on {len(items)} validation questions: exec match {accuracy} · "
        f"report {out / 'eval' / 'report.html'}",
        markup=False,
        emoji=False,
    )
    return summary
