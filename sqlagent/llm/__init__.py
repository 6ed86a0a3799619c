"""LLM backends: one small protocol, a mock, local and remote models, and two combinators.

Every backend is an :class:`LLM`: ``complete(messages) -> str`` and its async twin
``acomplete``. That is the whole plug-in point, like httpx's ``BaseTransport``:

- :class:`MockLLM` answers offline from a mapping, a function, or the most similar stored
  example; the default for tests and demos.
- :class:`OpenAICompatibleLLM` talks to vLLM, SGLang, llama.cpp or Ollama over HTTP (the
  ``openai`` extra), including LoRA adapters that vLLM serves by name.
- :class:`TransformersLLM` runs a local model (a safetensors directory or a GGUF file) through
  transformers, with an optional LoRA adapter whose manifest (:func:`write_adapter_manifest`)
  ties it to its prompt format and base model (:func:`model_fingerprint`); the ``local`` extra.
- :class:`LangChainLLM` wraps any LangChain chat model (the ``langchain`` extra).
- :class:`FallbackLLM` asks backends in order (local model, then mock) when one is unavailable.
- :class:`SerializedLLM` lets one call at a time into a backend that must not be raced, such as
  a local model on one GPU.
- :func:`extract_sql` finds the SQL in a model's answer; :func:`extract_first_sql` takes the
  preferred candidate or raises :class:`~sqlagent.errors.NoSQLFoundError`.

Blocking-only backends subclass :class:`SyncLLM` for a correct async twin. :class:`LLMSpec`
reads a short backend string (``mock``, ``openai:URL``, ``transformers:PATH[@ADAPTER]``,
``smollm2``) and :func:`parse_llm_spec` builds the backend it names. :class:`Message` is
:class:`sqlagent.types.Message`. What the local backend, ``sqlagent train`` and
``sqlagent doctor`` share about model files is in :mod:`sqlagent.llm.local`. Nothing here imports
httpx, torch, transformers or langchain-core, loads a model or opens a connection at import time.
"""

from sqlagent.llm._base import LLM, SyncLLM, llm_name
from sqlagent.llm._compose import FallbackLLM, SerializedLLM
from sqlagent.llm._extract import extract_first_sql, extract_sql
from sqlagent.llm._langchain import LangChainLLM
from sqlagent.llm._mock import ExampleSource, MockLLM
from sqlagent.llm._openai import OpenAICompatibleLLM
from sqlagent.llm._spec import LLMKind, LLMSpec, parse_llm_spec
from sqlagent.llm._transformers import TransformersLLM
from sqlagent.llm.local import (
    ADAPTER_MANIFEST,
    FALLBACK_CHAT_TEMPLATE,
    auto_dtype,
    model_fingerprint,
    write_adapter_manifest,
)
from sqlagent.types import Message, Role

__all__ = [
    "ADAPTER_MANIFEST",
    "ExampleSource",
    "FALLBACK_CHAT_TEMPLATE",
    "FallbackLLM",
    "LLM",
    "LLMKind",
    "LLMSpec",
    "LangChainLLM",
    "Message",
    "MockLLM",
    "OpenAICompatibleLLM",
    "Role",
    "SerializedLLM",
    "SyncLLM",
    "TransformersLLM",
    "auto_dtype",
    "extract_first_sql",
    "extract_sql",
    "llm_name",
    "model_fingerprint",
    "parse_llm_spec",
    "write_adapter_manifest",
]
