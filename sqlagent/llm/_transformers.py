"""TransformersLLM: a local causal language model, loaded through transformers.

The backend for one machine: a Hugging Face model directory (safetensors) or a GGUF file
(dequantized by transformers through the ``gguf`` package), optionally with a PEFT/LoRA adapter
trained by ``sqlagent train``. Everything heavy is optional (``pip install 'sqlagent[local]'``)
and imported on the first load, never at import time; nothing touches the network
(``local_files_only`` everywhere, and paths are checked before transformers or peft see them, so
a typo is a :class:`~sqlagent.errors.ConfigError`, not a download attempt or a deep traceback).

Adapters carry a manifest, ``sqlagent-adapter.json``
(:func:`~sqlagent.llm.write_adapter_manifest`), naming the prompt format they were trained on and
the fingerprint (:func:`~sqlagent.llm.model_fingerprint`) of their base model; an adapter that
does not match the running prompt format or the loaded base is refused. What this backend knows
about model files (paths, weights, adapters, the manifest, unsloth and 4-bit loading) lives in
:mod:`sqlagent.llm.local`, shared with ``sqlagent train`` and ``sqlagent doctor``.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError, SQLAgentError
from sqlagent.llm._base import Message, SyncLLM
from sqlagent.llm._compose import SerializedLLM
from sqlagent.llm.local import (
    GPU_EXTRA,
    LOCAL_EXTRA,
    ModelLocation,
    adapter_directory,
    auto_dtype,
    check_adapter_manifest,
    cuda_capability,
    import_extra,
    load_unsloth,
    model_location,
    nf4_options,
    prepare_tokenizer,
)

if TYPE_CHECKING:
    import torch

__all__ = ["DType", "TransformersLLM"]

_log = logging.getLogger("sqlagent.llm")

DType = Literal["auto", "float32", "float16", "bfloat16"]
_DTYPES: frozenset[str] = frozenset(get_args(DType))
_NEEDED_BY = "TransformersLLM"


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
        self._location = model_location(self.path)
        self.adapter = None if adapter is None else adapter_directory(Path(adapter).expanduser())
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
        location = model_location(self.path)  # again: files may have moved since __init__
        adapter = None if self.adapter is None else adapter_directory(self.adapter)
        if adapter is not None:
            check_adapter_manifest(adapter, self.path)
        torch = import_extra("torch", LOCAL_EXTRA, needed_by=_NEEDED_BY)
        import_extra("transformers", LOCAL_EXTRA, needed_by=_NEEDED_BY)
        if adapter is not None:
            import_extra("peft", LOCAL_EXTRA, needed_by=_NEEDED_BY)
        capability = cuda_capability(torch, self.device)
        device = self.device or ("cuda" if capability is not None else "cpu")
        dtype_name = auto_dtype(capability) if self.dtype == "auto" else self.dtype
        if self.load_in_4bit:
            if capability is None:
                raise ConfigError(
                    "load_in_4bit needs a CUDA GPU (bitsandbytes NF4); none is available: "
                    "load without it"
                )
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ConfigError(f"load_in_4bit needs bitsandbytes: {GPU_EXTRA}")
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
                model, tokenizer = load_unsloth(
                    location.directory,
                    getattr(torch, dtype_name),
                    load_in_4bit=self.load_in_4bit,
                    needed_by=_NEEDED_BY,
                )
            else:
                model, tokenizer = self._load_transformers(
                    location, getattr(torch, dtype_name), device
                )
            if adapter is not None:
                model, tokenizer = _apply_adapter(model, tokenizer, adapter)
            if use_unsloth:
                fast = import_extra("unsloth", GPU_EXTRA, needed_by=_NEEDED_BY).FastLanguageModel
                fast.for_inference(model)
            model.eval()
        except SQLAgentError:
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
        prepare_tokenizer(tokenizer)
        generation = _generation_config(model, tokenizer, self.max_new_tokens)
        return _Loaded(model, tokenizer, generation, _context(model))

    def _load_transformers(
        self, location: ModelLocation, dtype: torch.dtype, device: str
    ) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        source = location.source()
        options: dict[str, Any] = {"dtype": dtype, "device_map": {"": device}}
        if self.load_in_4bit:
            options["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
                **nf4_options(dtype)
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


def _choose_unsloth(setting: bool | None, *, installed: bool, cuda: bool, gguf: bool) -> bool:
    """Whether to load through unsloth: ``None`` means when it is installed, a CUDA GPU is
    present and the model is a directory; ``True`` insists (and says why it cannot)."""
    if setting is None:
        return installed and cuda and not gguf
    if setting:
        if not installed:
            raise ConfigError(f"unsloth=True, but unsloth is not installed: {GPU_EXTRA}")
        if not cuda:
            raise ConfigError("unsloth=True needs a CUDA GPU; none is available")
    return setting


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
