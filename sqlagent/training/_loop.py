"""The training loop: trl's ``SFTTrainer`` over tokenized records, with a rich progress bar,
one log line (and ``train_log.jsonl`` row) per logging step, and the libraries' own progress
bars silenced for the run."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlagent.llm.local import import_extra
from sqlagent.prompt import PROMPT_FORMAT_VERSION
from sqlagent.training._backends import NEEDED_BY, TRAIN_EXTRA
from sqlagent.training._config import TrainConfig
from sqlagent.training._encode import Encoded

__all__ = [
    "LOG_FILE",
    "make_trainer",
    "peak_memory",
    "progress_callback",
    "quiet_libraries",
    "versions",
]

_log = logging.getLogger("sqlagent.train")

LOG_FILE = "train_log.jsonl"
_VERSIONED = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes")


def peak_memory(torch: Any, cuda: bool) -> tuple[str, int]:
    if cuda:
        return "cuda_max_allocated", int(torch.cuda.max_memory_allocated())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return "process_max_rss", int(rss if sys.platform == "darwin" else rss * 1024)


def progress_callback(
    console: Any, show: bool, log_path: Path, torch: Any, cuda: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """A transformers callback: a rich progress bar and one log line (and JSONL row) per log
    step with loss, learning rate, tokens/s and memory."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    history: list[dict[str, Any]] = []

    class _Callback(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.task: Any = None
            self.started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()
            if show:
                self.bar = Progress(
                    TextColumn("[bold]training"),
                    BarColumn(),
                    TextColumn("{task.completed}/{task.total} steps"),
                    TextColumn("{task.description}"),
                    TimeRemainingColumn(),
                    console=console,
                    transient=False,
                )
                self.bar.start()
                self.task = self.bar.add_task("", total=state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            elapsed = time.perf_counter() - self.started
            kind, peak = peak_memory(torch, cuda)
            row = {
                "step": state.global_step,
                **{k: v for k, v in (logs or {}).items() if isinstance(v, int | float)},
                "tokens_seen": state.num_input_tokens_seen,
                "tokens_per_s": round(state.num_input_tokens_seen / elapsed, 1)
                if elapsed
                else None,
                "elapsed_s": round(elapsed, 2),
                kind: peak,
            }
            history.append(row)
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            parts = [f"step {row['step']}"]
            for key in ("loss", "eval_loss", "learning_rate", "grad_norm"):
                if key in row:
                    parts.append(f"{key} {row[key]:.4g}")
            parts.append(f"{row['tokens_per_s']} tok/s")
            parts.append(f"{kind} {peak / 2**20:.0f} MiB")
            message = " · ".join(parts)
            if self.bar is not None:
                if "loss" in row:
                    self.bar.update(self.task, description=f"loss {row['loss']:.4g}")
                self.bar.console.print(message, markup=False, emoji=False)
            _log.info(message)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.stop()

    return _Callback(), history


def make_trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    train_enc: Sequence[Encoded],
    val_enc: Sequence[Encoded],
    dtype_name: str,
    cuda: bool,
    out: Path,
    callbacks: list[Any],
) -> Any:
    from datasets import Dataset

    trl = import_extra("trl", TRAIN_EXTRA, needed_by=NEEDED_BY)

    def dataset(rows: Sequence[Encoded]) -> Any:
        return Dataset.from_dict(
            {"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]}
        )

    o = config.optim
    evaluate = bool(val_enc) and o.eval_steps is not None
    args = trl.SFTConfig(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=o.batch_size,
        per_device_eval_batch_size=o.batch_size,
        gradient_accumulation_steps=o.grad_accum,
        learning_rate=o.learning_rate,
        num_train_epochs=o.epochs,
        max_steps=o.max_steps if o.max_steps is not None else -1,
        lr_scheduler_type=o.lr_scheduler,
        warmup_steps=o.warmup_ratio,
        weight_decay=o.weight_decay,
        optim=o.optim,
        logging_steps=o.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=o.eval_steps if evaluate else None,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        bf16=cuda and dtype_name == "bfloat16",
        fp16=cuda and dtype_name == "float16",
        use_cpu=not cuda,
        gradient_checkpointing=o.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        max_length=config.max_length,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_pin_memory=cuda,
        remove_unused_columns=True,
    )
    from transformers import PrinterCallback

    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset(train_enc),
        eval_dataset=dataset(val_enc) if val_enc else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # our callback prints a readable line instead
    return trainer


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Turn the libraries' own tqdm bars off for the run (ours is the rich bar), then back."""
    import datasets
    from transformers.utils import logging as transformers_logging

    restore_datasets = datasets.is_progress_bar_enabled()
    restore_transformers = transformers_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if restore_datasets:
            datasets.enable_progress_bars()
        if restore_transformers:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def versions() -> dict[str, str | None]:
    """The versions of Python, sqlagent and the training stack, and the prompt format, as the
    adapter manifest records them (``None`` for a package that is not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("sqlagent", *_VERSIONED, "unsloth"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["prompt_format"] = PROMPT_FORMAT_VERSION
    return found
