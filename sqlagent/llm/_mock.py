"""MockLLM: a deterministic, offline model for tests, demos and CI.

Like httpx's ``MockTransport(handler)`` and pydantic-ai's ``FunctionModel``/``TestModel``, it is
configured with plain data or a plain function, so a test states exactly what the "model" says.
"""

from __future__ import annotations

import collections
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from sqlagent.errors import ConfigError, LLMError
from sqlagent.llm._base import Message, last_user_message

__all__ = ["MockLLM"]

_WORD = re.compile(r"\w+")


class MockLLM:
    """Answers from a mapping, a function, or the most similar stored example; never a network.

    Configure it with exactly one of:

    - ``responses``: question -> SQL. The question is the last user message: an exact match
      (ignoring case and spacing) wins, else the longest key contained in the message (ties go
      to the key listed first).
    - ``function``: called with the messages; its return value is the answer, as is (so tests
      can feed messy model output to the extractor).
    - ``examples``: ``(question, sql)`` pairs; the answer is the SQL of the example whose question
      is most similar to the last user message, by TF-IDF cosine over lower-case word tokens
      (IDF from the examples, smoothed), ties going to the example listed first. Deterministic
      and dependency-free; it finds paraphrases that share the telling words, nothing more.

    ``question`` reads the question out of the messages (default: the last user message);
    :func:`sqlagent.prompt.question_of` reads it out of a rendered sqlagent prompt, so the mock
    matches on the question rather than on the schema around it.

    ``default`` answers when nothing matches (a mapping without a matching key, examples that
    share no word with the question); without it, :class:`~sqlagent.errors.LLMError` is raised.
    Mapping, example and default answers come back in a ```` ```sql ```` fence, as a real model
    writes them, so the extraction step is exercised. The messages of the last ``history``
    calls are kept in ``calls`` (oldest first), so a long-running server stays bounded.
    """

    def __init__(
        self,
        *,
        responses: Mapping[str, str] | None = None,
        function: Callable[[Sequence[Message]], str] | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
        default: str | None = None,
        question: Callable[[Sequence[Message]], str] | None = None,
        name: str = "mock",
        history: int = 1000,
    ) -> None:
        given = [
            label
            for label, value in (
                ("responses", responses),
                ("function", function),
                ("examples", examples),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ConfigError(
                "MockLLM needs exactly one of responses=, function= or examples=, "
                f"got {', '.join(given) if given else 'none'}"
            )
        self.name = name
        self.default = default
        self._question = question or last_user_message
        self.calls: collections.deque[list[Message]] = collections.deque(maxlen=history)
        self._function = function
        self._responses = (
            None if responses is None else {_normalize(k): v for k, v in responses.items()}
        )
        self._index = None if examples is None else _ExampleIndex(examples)

    def __repr__(self) -> str:
        return f"MockLLM(name={self.name!r})"

    def complete(self, messages: Sequence[Message]) -> str:
        self.calls.append(list(messages))
        if self._function is not None:
            return self._function(messages)
        question = self._question(messages)
        sql = self._lookup(question)
        if sql is None:
            sql = self.default
        if sql is None:
            excerpt = " ".join(question.split())[:80]
            raise LLMError(f"{self.name}: no stored answer matches the question {excerpt!r}")
        return f"```sql\n{sql}\n```"

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return self.complete(messages)

    def _lookup(self, question: str) -> str | None:
        if self._index is not None:
            return self._index.most_similar(question)
        assert self._responses is not None
        key = _normalize(question)
        if key in self._responses:
            return self._responses[key]
        contained = [k for k in self._responses if k and k in key]
        return self._responses[max(contained, key=len)] if contained else None


class _ExampleIndex:
    """TF-IDF vectors of the example questions, built once."""

    def __init__(self, examples: Sequence[tuple[str, str]]) -> None:
        self._sql = [sql for _, sql in examples]
        counts = [Counter(_tokens(question)) for question, _ in examples]
        documents = len(counts)
        frequency = Counter(token for count in counts for token in count)
        self._idf = {
            token: math.log((1 + documents) / (1 + df)) + 1.0 for token, df in frequency.items()
        }
        self._vectors = [self._unit({t: n * self._idf[t] for t, n in c.items()}) for c in counts]

    def most_similar(self, question: str) -> str | None:
        query = self._unit(
            {t: n * self._idf[t] for t, n in Counter(_tokens(question)).items() if t in self._idf}
        )
        best, best_score = None, 0.0
        for index, vector in enumerate(self._vectors):
            score = sum(weight * vector.get(token, 0.0) for token, weight in query.items())
            if score > best_score:  # strict: ties keep the example listed first
                best, best_score = index, score
        return None if best is None else self._sql[best]

    @staticmethod
    def _unit(vector: dict[str, float]) -> dict[str, float]:
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {t: w / norm for t, w in vector.items()} if norm else {}


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split())
