"""LLM backends: one small protocol, a mock, an OpenAI-compatible client, and two combinators.

Every backend is an :class:`LLM`: ``complete(messages) -> str`` and its async twin
``acomplete``. That is the whole plug-in point, like httpx's ``BaseTransport``:

- :class:`MockLLM` answers offline from a mapping, a function, or the most similar stored
  example; the default for tests and demos.
- :class:`OpenAICompatibleLLM` talks to vLLM, SGLang, llama.cpp or Ollama over HTTP (the
  ``openai`` extra), including LoRA adapters that vLLM serves by name.
- :class:`FallbackLLM` asks backends in order (local model, then mock) when one is unavailable.
- :class:`SerializedLLM` lets one call at a time into a backend that must not be raced, such as
  a local model on one GPU.
- :func:`extract_sql` finds the SQL in a model's answer; :func:`extract_first_sql` takes the
  preferred candidate or raises :class:`~sqlagent.errors.NoSQLFoundError`.

Blocking-only backends subclass :class:`SyncLLM` for a correct async twin. Nothing here imports
httpx, loads a model or opens a connection at import time.
"""

from sqlagent.llm._base import LLM, Message, Role, SyncLLM, llm_name
from sqlagent.llm._compose import FallbackLLM, SerializedLLM
from sqlagent.llm._extract import extract_first_sql, extract_sql
from sqlagent.llm._mock import MockLLM
from sqlagent.llm._openai import OpenAICompatibleLLM
from sqlagent.llm._spec import parse_llm_spec

__all__ = [
    "FallbackLLM",
    "LLM",
    "Message",
    "MockLLM",
    "OpenAICompatibleLLM",
    "Role",
    "SerializedLLM",
    "SyncLLM",
    "extract_first_sql",
    "extract_sql",
    "llm_name",
    "parse_llm_spec",
]
