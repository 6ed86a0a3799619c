"""Backends named by a short string, for the CLI and configuration files."""

from __future__ import annotations

from collections.abc import Sequence

from sqlagent.errors import ConfigError
from sqlagent.llm._base import LLM
from sqlagent.llm._mock import MockLLM
from sqlagent.llm._openai import OpenAICompatibleLLM

__all__ = ["parse_llm_spec"]

_SUPPORTED = "'mock' or 'openai:BASE_URL' (e.g. openai:http://127.0.0.1:8000/v1)"


def parse_llm_spec(
    spec: str,
    *,
    model: str | None = None,
    examples: Sequence[tuple[str, str]] | None = None,
) -> LLM:
    """Build the backend a spec names.

    - ``mock``: a :class:`~sqlagent.llm.MockLLM` answering with the SQL of the most similar of
      ``examples`` (``(question, sql)`` pairs, such as a training set). A mock with nothing to
      answer from would fail on every question, so ``examples`` is required: without it this
      raises :class:`~sqlagent.errors.ConfigError` saying so.
    - ``openai:BASE_URL``: an :class:`~sqlagent.llm.OpenAICompatibleLLM` for the API root
      ``BASE_URL`` serving ``model`` (required; a base model or a LoRA adapter served by vLLM).
      The API key comes from ``OPENAI_API_KEY`` when that is set.

    Any other scheme raises :class:`~sqlagent.errors.ConfigError` listing the supported ones.
    """
    scheme, _, rest = spec.strip().partition(":")
    scheme = scheme.lower()
    if scheme == "mock" and not rest:
        if not examples:
            raise ConfigError(
                "the 'mock' backend answers with the SQL of the most similar stored example: "
                "pass examples=[(question, sql), ...]"
            )
        return MockLLM(examples=examples)
    if scheme == "openai" and rest:
        if not model:
            raise ConfigError(
                f"the 'openai' backend needs the served model's name: {spec!r} given without model"
            )
        return OpenAICompatibleLLM(rest, model)
    raise ConfigError(f"unknown LLM backend {spec!r}: expected {_SUPPORTED}")
