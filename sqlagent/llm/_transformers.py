"""TransformersLLM: a local causal language model, loaded through transformers.

The backend for one machine: a Hugging Face model directory (safetensors) or a GGUF file
(dequantized by transformers through the ``gguf`` package), optionally with a PEFT/LoRA adapter
trained by ``sqlagent train``. Everything heavy is optional (``pip install 'sqlagent[local]'``)
and imported on the first load, never at import time; nothing touches the network
(``local_files_only`` everywhere, and paths are checked before transformers or peft see them, so
a typo is a :class:`~sqlagent.errors.ConfigError`, not a download attempt or a deep traceback).

Adapters carry a manifest, ``sqlagent-adapter.json`` (:func:`write_adapter_manifest`), naming the
prompt format they were trained on and the fingerprint (:func:`model_fingerprint`) of their base
model; an adapter that does not match the running prompt format or the loaded base is refused.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError, SqlAgentError
from sqlagent.llm._base import Message, SyncLLM
from sqlagent.llm._compose import SerializedLLM

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADAPTER_MANIFEST",
    "FALLBACK_CHAT_TEMPLATE",
    "DType",
    "TransformersLLM",
    "auto_dtype",
    "model_fingerprint",
    "write_adapter_manifest",
]

_log = logging.getLogger("sqlagent.llm")

DType = Literal["auto", "float32", "float16", "bfloat16"]
_DTYPES: frozenset[str] = frozenset(get_args(DType))

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

_FINGERPRINT_FORMAT = "sqlagent-fingerprint/1"
_SAMPLES = 8
_SAMPLE_BYTES = 64 * 1024
#: config.json keys that change when a model is merely re-saved, not when its weights change.
_VOLATILE_CONFIG_KEYS = frozenset({"_name_or_path", "transformers_version"})

_LOCAL_EXTRA = "pip install 'sqlagent[local]'"
_GPU_EXTRA = "pip install 'sqlagent[gpu]'"


def auto_dtype(
    cuda_capability: tuple[int, int] | None,
) -> Literal["bfloat16", "float16", "float32"]:
    """The dtype ``dtype="auto"`` picks: bf16 on a CUDA GPU of compute capability 8.0 or newer
    (Ampere and later, where bf16 is native), fp16 on older GPUs, fp32 on the CPU
    (``cuda_capability is None``), where half precision is slow or unsupported."""
    if cuda_capability is None:
        return "float32"
    return "bfloat16" if cuda_capability >= (8, 0) else "float16"


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
    location = _model_location(Path(path).expanduser())
    document: dict[str, Any] = {"format": _FINGERPRINT_FORMAT}
    try:
        if location.gguf is not None:
            size = location.gguf.stat().st_size
            document["gguf"] = [size, _sampled_digest(location.gguf, size)]
        else:
            document["config"] = _canonical_config(location.directory / "config.json")
            files = []
            for weights in _weight_files(location.directory):
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
    :class:`TransformersLLM` checks before it loads the adapter. ``extra`` adds top-level keys
    (training settings, data set names) that the check ignores.
    """
    from sqlagent.prompt import PROMPT_FORMAT_VERSION

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


@dataclass(frozen=True, slots=True)
class _Location:
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


def _model_location(path: Path) -> _Location:
    expected = "a model directory with config.json and safetensors weights, or a .gguf file"
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(f"'{path}' is a file but not a .gguf file: expected {expected}")
        return _Location(path.parent, path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            hint = " (for GGUF, name the .gguf file itself)" if any(path.glob("*.gguf")) else ""
            raise ConfigError(f"'{path}' has no config.json: expected {expected}{hint}")
        return _Location(path)
    raise ConfigError(f"no model at '{path}': expected {expected}")


def _adapter_directory(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigError(f"no adapter at '{path}': expected a PEFT adapter directory")
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(
            f"'{path}' is not a PEFT adapter directory: it has no adapter_config.json"
        )
    if not any((path / name).is_file() for name in _ADAPTER_WEIGHTS):
        raise ConfigError(f"the adapter at '{path}' has no {' or '.join(_ADAPTER_WEIGHTS)}")
    return path


def _weight_files(directory: Path) -> list[Path]:
    found = {*directory.glob("*.safetensors"), *directory.glob("pytorch_model*.bin")}
    files = sorted(p for p in found if p.is_file())
    if not files:
        raise ConfigError(f"the model directory '{directory}' holds no *.safetensors weights")
    return files


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


def _check_adapter_manifest(adapter: Path, base: Path) -> None:
    """Refuse an adapter trained on another prompt format or another base model."""
    from sqlagent.prompt import COMPATIBLE_PROMPT_FORMATS, PROMPT_FORMAT_VERSION

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


@dataclass(frozen=True, slots=True)
class _Loaded:
    model: Any
    tokenizer: Any
    generation_config: Any
    context: int | None


class TransformersLLM(SyncLLM):
    """A local causal LM: a model directory or a GGUF file, with an optional LoRA adapter.

    ``path`` is a Hugging Face model directory (``config.json``, tokenizer, ``*.safetensors``)
    or a ``.gguf`` file, which transformers dequantizes to ``dtype`` on load (slow to load,
    and as large in memory as the unquantized model: GGUF is a file format here, not a
    quantized runtime). ``adapter`` is a PEFT adapter directory; when it holds a tokenizer
    (``tokenizer_config.json``) that tokenizer and its chat template are used, as in training.
    An adapter with a ``sqlagent-adapter.json`` manifest is refused unless it was trained on
    the current prompt format and on this very base model (:func:`model_fingerprint`); one
    without is loaded with a warning on the ``sqlagent.llm`` logger.

    Nothing loads here: the model loads on the first :meth:`complete` or on :meth:`load`, once.
    Paths are checked here already, so a wrong one fails at once with
    :class:`~sqlagent.errors.ConfigError` (as does a missing ``sqlagent[local]`` extra, or a
    model transformers cannot read, on load).

    - ``dtype``: ``"auto"`` is :func:`auto_dtype` (bf16 on GPUs of compute capability >= 8,
      fp16 on older GPUs, fp32 on CPU), or ``"float32"``, ``"float16"``, ``"bfloat16"``.
    - ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available.
    - ``load_in_4bit``: NF4 with double quantization through bitsandbytes (the ``gpu`` extra),
      compute in ``dtype``; CUDA only, and not for GGUF files.
    - ``unsloth``: load through unsloth's ``FastLanguageModel``; ``None`` (default) uses it
      when it is installed, a CUDA GPU is present and ``path`` is a directory (unsloth then
      places the model itself; ``device`` is not used). *Not run during development: this path
      was only exercised with a stand-in for unsloth, never on a GPU with unsloth installed;
      neither was ``load_in_4bit`` (no GPU, no bitsandbytes).*

    Answers use the tokenizer's chat template (:data:`FALLBACK_CHAT_TEMPLATE` when it has
    none) and greedy decoding of at most ``max_new_tokens`` tokens; only the new text is
    returned. Generation is serialized: whatever mix of threads, tasks and event loops calls
    :meth:`complete` and :meth:`acomplete`, one ``generate()`` runs at a time, and async callers
    wait on their event loop, not in worker threads (through
    :class:`~sqlagent.llm.SerializedLLM`). Requests are not batched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        adapter: str | os.PathLike[str] | None = None,
        max_new_tokens: int = 512,
        dtype: DType = "auto",
        device: str | None = None,
        load_in_4bit: bool = False,
        unsloth: bool | None = None,
        name: str | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if dtype not in _DTYPES:
            raise ConfigError(
                f"unknown dtype {dtype!r}: expected one of {', '.join(sorted(_DTYPES))}"
            )
        self.path = Path(path).expanduser()
        self._location = _model_location(self.path)
        self.adapter = None if adapter is None else _adapter_directory(Path(adapter).expanduser())
        if load_in_4bit and self._location.gguf is not None:
            raise ConfigError(
                "load_in_4bit applies to safetensors models: a GGUF file is dequantized on load"
            )
        if unsloth and self._location.gguf is not None:
            raise ConfigError("unsloth loads model directories, not GGUF files")
        self.max_new_tokens = max_new_tokens
        self.dtype: DType = dtype
        self.device = device
        self.load_in_4bit = load_in_4bit
        self.unsloth = unsloth
        default = self.path.name + (f"@{self.adapter.name}" if self.adapter else "")
        self.name = name or f"transformers:{default}"
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._serial = SerializedLLM(_Generation(self))

    def __repr__(self) -> str:
        adapter = f", adapter={str(self.adapter)!r}" if self.adapter else ""
        return f"TransformersLLM({str(self.path)!r}{adapter})"

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._loaded is not None

    def load(self) -> None:
        """Load the model now (it otherwise loads on the first call); a no-op once loaded."""
        self._load()

    def complete(self, messages: Sequence[Message]) -> str:
        return self._serial.complete(messages)

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return await self._serial.acomplete(messages)

    def _load(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load_now()
            return self._loaded

    def _load_now(self) -> _Loaded:
        location = _model_location(self.path)  # again: files may have moved since __init__
        adapter = None if self.adapter is None else _adapter_directory(self.adapter)
        if adapter is not None:
            _check_adapter_manifest(adapter, self.path)
        torch = _import("torch", _LOCAL_EXTRA)
        _import("transformers", _LOCAL_EXTRA)
        if adapter is not None:
            _import("peft", _LOCAL_EXTRA)
        capability = _cuda_capability(torch, self.device)
        device = self.device or ("cuda" if capability is not None else "cpu")
        dtype_name = auto_dtype(capability) if self.dtype == "auto" else self.dtype
        if self.load_in_4bit:
            if capability is None:
                raise ConfigError(
                    "load_in_4bit needs a CUDA GPU (bitsandbytes NF4); none is available: "
                    "load without it"
                )
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ConfigError(f"load_in_4bit needs bitsandbytes: {_GPU_EXTRA}")
        use_unsloth = _choose_unsloth(
            self.unsloth,
            installed=importlib.util.find_spec("unsloth") is not None,
            cuda=capability is not None,
            gguf=location.gguf is not None,
        )
        _log.info(
            "loading %s on %s as %s%s%s",
            self.path,
            device,
            "nf4" if self.load_in_4bit else dtype_name,
            f" with adapter {adapter}" if adapter else "",
            " through unsloth" if use_unsloth else "",
        )
        try:
            if use_unsloth:
                model, tokenizer = _load_unsloth(
                    location, getattr(torch, dtype_name), load_in_4bit=self.load_in_4bit
                )
            else:
                model, tokenizer = self._load_transformers(
                    location, getattr(torch, dtype_name), device
                )
            if adapter is not None:
                model, tokenizer = _apply_adapter(model, tokenizer, adapter)
            if use_unsloth:
                _import("unsloth", _GPU_EXTRA).FastLanguageModel.for_inference(model)
            model.eval()
        except SqlAgentError:
            raise
        except torch.cuda.OutOfMemoryError as exc:
            message = f"{self.name}: out of GPU memory while loading {self.path}"
            raise LLMUnavailableError(message) from exc
        except Exception as exc:  # transformers, peft and unsloth raise many kinds of errors
            raise ConfigError(
                f"cannot load the model at '{self.path}'"
                + (f" with the adapter at '{adapter}'" if adapter else "")
                + f": {type(exc).__name__}: {exc}"
            ) from exc
        if tokenizer.chat_template is None:
            tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        generation = _generation_config(model, tokenizer, self.max_new_tokens)
        return _Loaded(model, tokenizer, generation, _context(model))

    def _load_transformers(
        self, location: _Location, dtype: torch.dtype, device: str
    ) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        source = location.source()
        options: dict[str, Any] = {"dtype": dtype, "device_map": {"": device}}
        if self.load_in_4bit:
            options["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
                **_nf4_options(dtype)
            )
        tokenizer = AutoTokenizer.from_pretrained(location.directory, **source)
        model = AutoModelForCausalLM.from_pretrained(location.directory, **source, **options)
        return model, tokenizer

    def _generate(self, messages: Sequence[Message]) -> str:
        """One generation; only ever called under the serializer's lock."""
        loaded = self._load()
        import torch

        tokenizer, model = loaded.tokenizer, loaded.model
        try:
            prompt = tokenizer.apply_chat_template(
                [m.to_dict() for m in messages], tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja2 errors: a template that refuses these roles
            raise LLMError(f"{self.name}: the chat template rejected the messages: {exc}") from exc
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        max_new_tokens = self.max_new_tokens
        if loaded.context is not None:
            room = loaded.context - prompt_tokens
            if room < 1:
                raise LLMError(
                    f"{self.name}: the prompt has {prompt_tokens} tokens, the model's context "
                    f"holds {loaded.context}"
                )
            max_new_tokens = min(max_new_tokens, room)
        config = loaded.generation_config
        if config.max_new_tokens != max_new_tokens:
            config = copy.deepcopy(config)
            config.max_new_tokens = max_new_tokens
        try:
            with torch.inference_mode():
                output = model.generate(**inputs, generation_config=config)
        except torch.cuda.OutOfMemoryError as exc:
            raise LLMUnavailableError(f"{self.name}: out of GPU memory while generating") from exc
        except (RuntimeError, ValueError) as exc:
            raise LLMError(f"{self.name}: generation failed: {exc}") from exc
        text: str = tokenizer.decode(
            output[0, prompt_tokens:], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text.strip()


class _Generation(SyncLLM):
    """The bare model call that :class:`TransformersLLM` wraps in its SerializedLLM.

    It holds its owner weakly, so dropping the last reference to a TransformersLLM frees the
    model (and its GPU memory) at once rather than at the next cycle collection.
    """

    def __init__(self, owner: TransformersLLM) -> None:
        self._owner = weakref.ref(owner)
        self.name = owner.name

    def complete(self, messages: Sequence[Message]) -> str:
        owner = self._owner()
        if owner is None:  # pragma: no cover - the owner is alive while it calls in here
            raise LLMError(f"{self.name}: the model was released")
        return owner._generate(messages)


def _import(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"TransformersLLM needs {module}: {extra}") from exc


def _cuda_capability(torch: Any, device: str | None) -> tuple[int, int] | None:
    """The compute capability of the CUDA device to use, or ``None`` when running on the CPU."""
    if device is not None and not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        if device is not None:
            raise ConfigError(f"device {device!r} was asked for, but no CUDA GPU is available")
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def _choose_unsloth(setting: bool | None, *, installed: bool, cuda: bool, gguf: bool) -> bool:
    """Whether to load through unsloth: ``None`` means when it is installed, a CUDA GPU is
    present and the model is a directory; ``True`` insists (and says why it cannot)."""
    if setting is None:
        return installed and cuda and not gguf
    if setting:
        if not installed:
            raise ConfigError(f"unsloth=True, but unsloth is not installed: {_GPU_EXTRA}")
        if not cuda:
            raise ConfigError("unsloth=True needs a CUDA GPU; none is available")
    return setting


def _nf4_options(
    compute_dtype: torch.dtype, *, quant_type: str = "nf4", double_quant: bool = True
) -> dict[str, Any]:
    """bitsandbytes 4-bit weights, by default NormalFloat with double quantization (QLoRA's
    setting), computing in ``compute_dtype``."""
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": quant_type,
        "bnb_4bit_use_double_quant": double_quant,
        "bnb_4bit_compute_dtype": compute_dtype,
    }


def _load_unsloth(
    location: _Location, dtype: torch.dtype, *, load_in_4bit: bool
) -> tuple[Any, Any]:
    """Unsloth's fast path (it places the model on the GPU itself).

    NOT RUN HERE: sqlagent was developed without a GPU, so this was only exercised with a
    stand-in for unsloth (tests/llm/test_transformers.py), never with unsloth itself.
    """
    fast = _import("unsloth", _GPU_EXTRA).FastLanguageModel
    model, tokenizer = fast.from_pretrained(
        model_name=str(location.directory),
        dtype=dtype,
        load_in_4bit=load_in_4bit,
        local_files_only=True,
    )
    return model, tokenizer


def _apply_adapter(model: Any, tokenizer: Any, adapter: Path) -> tuple[Any, Any]:
    from peft import PeftModel

    if (adapter / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(adapter, local_files_only=True)
    return PeftModel.from_pretrained(model, adapter, local_files_only=True), tokenizer


def _generation_config(model: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    """Greedy decoding, built fresh so a model's sampling defaults cannot leak in."""
    from transformers import GenerationConfig

    defaults = model.generation_config
    eos = defaults.eos_token_id if defaults.eos_token_id is not None else tokenizer.eos_token_id
    pad = defaults.pad_token_id if defaults.pad_token_id is not None else tokenizer.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    return GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        bos_token_id=defaults.bos_token_id,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def _context(model: Any) -> int | None:
    value = getattr(model.config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None
