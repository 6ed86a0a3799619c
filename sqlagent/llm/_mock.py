"""MockLLM: a deterministic, offline model for tests, demos and CI.

Like httpx's ``MockTransport(handler)`` and pydantic-ai's ``FunctionModel``/``TestModel``, it is
configured with plain data or a plain function, so a test states exactly what the "model" says.
"""

from __future__ import annotations

import collections
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from sqlagent.errors import ConfigError, LLMError
from sqlagent.llm._base import Message, last_user_message
from sqlagent.types import Example, ReusedExample

__all__ = ["ExampleSource", "MockLLM"]


@runtime_checkable
class ExampleSource(Protocol):
    """Where stored examples live (:class:`sqlagent.memory.ExampleStore`): read on every
    question, so an example added to the store is answered from at once."""

    @property
    def examples(self) -> Sequence[Example]: ...


_WORD = re.compile(r"\w+")


class MockLLM:
    """Answers from a mapping, a function, or a sufficiently similar stored example; never a
    network.

    Configure it with exactly one of:

    - ``responses``: question -> SQL. The question is the last user message: an exact match
      (ignoring case and spacing) wins, else the longest key contained in the message (ties go
      to the key listed first).
    - ``function``: called with the messages; its return value is the answer, as is (so tests
      can feed messy model output to the extractor).
    - ``examples``: ``(question, sql)`` pairs, or an :class:`ExampleSource` (the agent's example
      store, read on each question: an example added later is answered from); the answer is
      the SQL of the example whose question is most similar to the asked one, **only when that
      similarity reaches** ``min_similarity``
      (default :attr:`DEFAULT_MIN_SIMILARITY`, 0.9); otherwise the mock refuses
      (:class:`~sqlagent.errors.LLMError` naming the nearest example and its similarity) rather
      than answer a question it has no SQL for. See :meth:`nearest` for the measure.

    ``question`` reads the question out of the messages (default: the last user message);
    :func:`sqlagent.prompt.question_of` reads it out of a rendered sqlagent prompt, so the mock
    matches on the question rather than on the schema around it.

    ``default`` answers when nothing matches (a mapping without a matching key, no example close
    enough); without it, :class:`~sqlagent.errors.LLMError` is raised. Mapping, example and
    default answers come back in a ```` ```sql ```` fence, as a real model writes them, so the
    extraction step is exercised; :meth:`explain` tells which stored example an answer repeated.
    The messages of the last ``history`` calls are kept in ``calls`` (oldest first), so a
    long-running server stays bounded.
    """

    #: The similarity (0 to 1) a stored question must reach for ``examples`` mode to answer.
    #: Measured on the demo's 13 stored questions (``sqlagent demo init``): the 18 questions of
    #: ``eval/demo/suite.jsonl`` (none of which a stored example answers) reach at most 0.62,
    #: off-topic ones 0.42, a stored question against the other stored ones 0.59, and rewordings
    #: that change one content word ("each project" -> "each employee", "no employees" ->
    #: "employees") at most 0.86; the stored questions with other case, punctuation or
    #: function words ("per" for "for each", "are there in") reach 0.93 and above.
    DEFAULT_MIN_SIMILARITY: float = 0.9

    def __init__(
        self,
        *,
        responses: Mapping[str, str] | None = None,
        function: Callable[[Sequence[Message]], str] | None = None,
        examples: Sequence[tuple[str, str]] | ExampleSource | None = None,
        default: str | None = None,
        question: Callable[[Sequence[Message]], str] | None = None,
        name: str = "mock",
        history: int = 1000,
        min_similarity: float | None = None,
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
        threshold = self.DEFAULT_MIN_SIMILARITY if min_similarity is None else min_similarity
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"MockLLM: min_similarity must be between 0 and 1, not {threshold}")
        self.name = name
        self.default = default
        #: The similarity an example must reach to be answered with (``examples`` mode).
        self.min_similarity = threshold
        self._question = question or last_user_message
        self.calls: collections.deque[list[Message]] = collections.deque(maxlen=history)
        self._function = function
        self._responses = (
            None if responses is None else {_normalize(k): v for k, v in responses.items()}
        )
        self._source: ExampleSource | None = None
        pairs: Sequence[tuple[str, str]] = ()
        if isinstance(examples, ExampleSource):
            self._source = examples
        elif examples is not None:
            pairs = examples
        self._source_seen: tuple[Example, ...] = ()
        self._source_lock = threading.Lock()
        self._index_cache = None if examples is None else _ExampleIndex(list(pairs))

    def __repr__(self) -> str:
        return f"MockLLM(name={self.name!r})"

    @property
    def example_count(self) -> int | None:
        """How many stored examples ``examples`` mode answers from (``None`` in other modes)."""
        index = self._index
        return None if index is None else len(index)

    def complete(self, messages: Sequence[Message]) -> str:
        self.calls.append(list(messages))
        if self._function is not None:
            return self._function(messages)
        question = self._question(messages)
        index = self._index
        if index is not None:
            match = index.nearest(question)
            usable = self._usable(match)
            if usable is not None:
                return _fenced(usable.sql)
            if self.default is not None:
                return _fenced(self.default)
            raise LLMError(self._no_example_message(question, match))
        sql = self._lookup(question)
        if sql is None:
            sql = self.default
        if sql is None:
            raise LLMError(
                f"{self.name}: no stored answer matches the question {_excerpt(question)!r}"
            )
        return _fenced(sql)

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return self.complete(messages)

    def nearest(self, question: str) -> ReusedExample | None:
        """The stored example most similar to ``question``, whatever its similarity (``None``
        outside ``examples`` mode, or when no example shares a word with the question).

        The measure is the cosine of TF-IDF vectors over lower-case word tokens: a word weighs
        ``ln((1 + n) / (1 + df)) + 1`` for ``n`` examples, ``df`` of them containing it (so a word
        no example uses weighs most, and counts against every example), and English function
        words (articles, auxiliaries, prepositions, question words such
        as "what"/"which") a quarter of that, so rewording them moves the score little while a
        changed content word or negation ("no", "not" are content words here) moves it a lot.
        Ties go to the example listed first. It sees words, not meaning: "Which projects have
        finished?" and "Which projects are not finished?" differ by a word or two whatever the
        threshold, which is why the threshold is high.
        """
        index = self._index
        return None if index is None else index.nearest(question)

    def explain(self, messages: Sequence[Message], output: str) -> ReusedExample | None:
        """The stored example ``output`` repeats, when ``output`` is exactly what this mock
        answers ``messages`` with from its examples (``None`` otherwise: another backend's answer,
        a mapping, function or default answer). Pure: the same computation as :meth:`complete`,
        so it is safe with concurrent callers."""
        index = self._index
        if index is None:
            return None
        usable = self._usable(index.nearest(self._question(messages)))
        return usable if usable is not None and output == _fenced(usable.sql) else None

    @property
    def _index(self) -> _ExampleIndex | None:
        """The TF-IDF index of the examples, rebuilt when the example source changed."""
        if self._source is None:
            return self._index_cache
        current = tuple(self._source.examples)
        with self._source_lock:
            if current != self._source_seen:
                self._index_cache = _ExampleIndex([(e.question, e.sql) for e in current])
                self._source_seen = current
            return self._index_cache

    def _usable(self, match: ReusedExample | None) -> ReusedExample | None:
        """``match`` when ``examples`` mode answers with it (the one threshold test)."""
        return match if match is not None and match.similarity >= self.min_similarity else None

    def _no_example_message(self, question: str, match: ReusedExample | None) -> str:
        asked = _excerpt(question)
        index = self._index
        if index is not None and not len(index):
            found = "no stored example matches: there are none to answer from"
        elif match is None:
            found = f"no stored example matches {asked!r} (none shares a word with it)"
        else:
            found = (
                f"no stored example matches {asked!r} closely enough (nearest: "
                f"{_excerpt(match.question)!r}, similarity {match.similarity:.2f}, needs "
                f"{self.min_similarity:.2f})"
            )
        return (
            f"{self.name}: {found}. The mock model only repeats the SQL of stored examples; to "
            "answer new questions, configure a real model: --llm transformers:PATH[@ADAPTER], "
            "--llm openai:BASE_URL --model NAME or --llm smollm2 (or 'llm:' in the config file). "
            "Or store this question with its SQL (`sqlagent examples add`), or lower "
            "'mock_min_similarity'"
        )

    def _lookup(self, question: str) -> str | None:
        assert self._responses is not None
        key = _normalize(question)
        if key in self._responses:
            return self._responses[key]
        contained = [k for k in self._responses if k and k in key]
        return self._responses[max(contained, key=len)] if contained else None


#: Words that carry little of a question's meaning; they weigh a quarter of other words.
#: Negations ("no", "not", "without") and counting words ("how", "many") are not among them.
# fmt: off
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did",
    "done", "has", "have", "had", "of", "in", "on", "at", "for", "per", "to", "by", "with", "from",
    "into", "and", "or", "what", "which", "who", "whom", "whose", "there", "that", "this",
    "these", "those", "it", "its", "s", "me", "my", "our", "us", "we", "you", "your", "i", "please",
})
# fmt: on
_FUNCTION_WORD_WEIGHT = 0.25


class _ExampleIndex:
    """TF-IDF vectors of the example questions, built once."""

    def __init__(self, examples: Sequence[tuple[str, str]]) -> None:
        self._examples = list(examples)
        counts = [Counter(_tokens(question)) for question, _ in examples]
        self._documents = len(counts)
        self._frequency = Counter(token for count in counts for token in count)
        self._vectors = [self._unit(count) for count in counts]

    def __len__(self) -> int:
        return self._documents

    def nearest(self, question: str) -> ReusedExample | None:
        query = self._unit(Counter(_tokens(question)))
        best, best_score = None, 0.0
        for index, vector in enumerate(self._vectors):
            score = sum(weight * vector.get(token, 0.0) for token, weight in query.items())
            if score > best_score + 1e-12:  # ties (and rounding noise) keep the first listed
                best, best_score = index, score
        if best is None:
            return None
        stored, sql = self._examples[best]
        return ReusedExample(stored, sql, min(best_score, 1.0))

    def _weight(self, token: str) -> float:
        idf = math.log((1 + self._documents) / (1 + self._frequency.get(token, 0))) + 1.0
        return idf * (_FUNCTION_WORD_WEIGHT if token in _FUNCTION_WORDS else 1.0)

    def _unit(self, counts: Counter[str]) -> dict[str, float]:
        vector = {token: n * self._weight(token) for token, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {t: w / norm for t, w in vector.items()} if norm else {}


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split())


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:80]


def _fenced(sql: str) -> str:
    return f"```sql\n{sql}\n```"
