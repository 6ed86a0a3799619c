"""Supervised examples for ``sqlagent train``, rendered by the runtime itself.

An adapter learns the prompt it is trained on, so every record here is the very first prompt a
:class:`sqlagent.SQLAgent` sends the model (:meth:`SQLAgent.prompt_for`): the role's view of the
catalog with sample values, its masked columns marked, the tables, few-shot examples and notes
that retrieval picks, rendered by :mod:`sqlagent.prompt`. The target is
:func:`~sqlagent.prompt.render_answer` of the gold SQL. A follow-up question (an eval suite
item with a ``history``) is rendered with its conversation section, as the runtime renders it
for :meth:`SQLAgent.ask` with that history, so multi-turn records need no format of their own.
Each record carries :data:`~sqlagent.prompt.PROMPT_FORMAT_VERSION` so a trained adapter can
record it.

The agent settings come from ``agent`` (an :class:`~sqlagent.config.AgentConfig` or a mapping of
its fields without ``database``); the default, :data:`DEFAULT_AGENT`, is what ``sqlagent eval``
uses for its agents (retrieval with the hashing embedder in memory, 5 sample values), so an
adapter trained with the defaults is evaluated on the prompts it learned.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError
from sqlagent.evaluation import SuiteKind, load_suite
from sqlagent.llm import MockLLM
from sqlagent.memory import read_examples
from sqlagent.prompt import PROMPT_FORMAT_VERSION, count_tokens, render_answer
from sqlagent.safety import Policy
from sqlagent.types import Turn

__all__ = [
    "DEFAULT_AGENT",
    "DataReport",
    "PreparedData",
    "SplitBy",
    "TokenCounter",
    "TrainItem",
    "build_records",
    "items_from_examples",
    "items_from_suite",
    "prepare",
    "record_tokens",
    "suite_row",
]

SplitBy = Literal["item", "database"]
#: ``count(text) -> tokens``: a model tokenizer for exact counts; default
#: :func:`sqlagent.prompt.count_tokens` (an approximation).
TokenCounter = Callable[[str], int]
#: The agent settings records are rendered with by default: ``sqlagent eval``'s.
DEFAULT_AGENT: Mapping[str, Any] = {"retrieval": {"embedder": "hashing", "store": "memory"}}


@dataclass(frozen=True, slots=True)
class TrainItem:
    """One question with its gold SQL and the database (a SQLAlchemy URL) it is asked of.

    ``history`` holds the earlier turns of the conversation the question follows up on,
    oldest first (empty for a question on its own); an item is identified by its history
    and its question together."""

    question: str
    sql: str
    db_id: str
    url: str
    role: str | None = None
    history: tuple[Turn, ...] = ()


def items_from_suite(
    kind: SuiteKind, path: str | os.PathLike[str], *, limit: int | None = None
) -> list[TrainItem]:
    """Spider-format data or an eval JSONL suite, read by :func:`sqlagent.evaluation.load_suite`;
    a JSONL item's ``history`` comes along (Spider items have none)."""
    return [
        TrainItem(item.question, item.gold, item.db_id, item.url, item.role, item.history)
        for item in load_suite(kind, Path(path), limit=limit)
    ]


def items_from_examples(
    path: str | os.PathLike[str],
    url: str,
    *,
    db_id: str | None = None,
    role: str | None = None,
) -> list[TrainItem]:
    """The agent's example store (JSONL of ``{"question", "sql"}``) for the database at ``url``;
    stored examples are questions on their own, so these items have no history."""
    name = db_id or Path(url.rpartition("/")[2]).stem or "db"
    return [TrainItem(e.question, e.sql, name, url, role) for e in read_examples(path)]


def build_records(
    items: Iterable[TrainItem],
    *,
    agent: AgentConfig | Mapping[str, Any] | None = None,
    policy: Policy | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One chat record per item: the prompt the agent would send, and the gold answer.

    One agent is built per database (``agent``'s settings with that database; an
    :class:`AgentConfig` for another database lends its settings, and its own examples and notes
    only to items of its own database). With a ``policy`` (or one named in ``agent``) an item's
    prompt shows only its role's view (an item without a role gets the policy's default role);
    an unknown role fails like it would at run time. Retrieved examples asking the item's own
    question are left out. An item's ``history`` is rendered as :meth:`SQLAgent.ask` renders
    it (bounded by the agent's ``history_turns``/``history_tokens``; retrieval reads the recent
    questions too). ``progress(n)`` is called after each record.

    Records: ``{"messages", "completion", "db_id", "question", "sql", "role", "url",
    "history", "prompt_format"}``; ``history`` is the item's turns as
    :meth:`Turn.to_dict` gives them (``[]`` for a question on its own). Raises
    :class:`sqlagent.errors.ConfigError` (or ``CatalogError``) for bad settings or an
    unreadable database.
    """
    from sqlagent.agent import SQLAgent

    base = _agent_settings(agent)
    agents: dict[str, SQLAgent] = {}
    records = []
    try:
        for item in items:
            runtime = agents.get(item.url)
            if runtime is None:
                runtime = agents[item.url] = SQLAgent(
                    _config_for(base, agent, item.url),
                    llm=MockLLM(responses={}),  # never called: prompts only
                    policy=policy,
                    audit=MemoryAuditSink(),
                )
            access = runtime.guard.access(item.role)
            messages = runtime.prompt_for(
                item.question, role=item.role, leave_out=item.question, history=item.history
            )
            records.append(
                {
                    "messages": [m.to_dict() for m in messages],
                    "completion": render_answer(item.sql),
                    "db_id": item.db_id,
                    "question": item.question,
                    "sql": item.sql,
                    "role": access.role if access is not None else None,
                    "url": item.url,
                    "history": [turn.to_dict() for turn in item.history],
                    "prompt_format": PROMPT_FORMAT_VERSION,
                }
            )
            if progress is not None:
                progress(1)
    finally:
        for runtime in agents.values():
            runtime.close()
    return records


def _agent_settings(agent: AgentConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if agent is None:
        return dict(DEFAULT_AGENT)
    if isinstance(agent, AgentConfig):
        # Its examples, notes, policy and audit log belong to its own database.
        own = {"database", "examples", "docs", "policy", "audit_log"}
        return agent.model_dump(exclude=own)
    return {k: v for k, v in agent.items() if k != "database"}


def _config_for(
    base: dict[str, Any], agent: AgentConfig | Mapping[str, Any] | None, url: str
) -> AgentConfig:
    if isinstance(agent, AgentConfig) and agent.database == url:
        return agent
    return AgentConfig.from_mapping({**base, "database": url, "audit_log": None})


def record_tokens(record: dict[str, Any], count: TokenCounter = count_tokens) -> int:
    """Prompt plus completion tokens of a record (approximate unless ``count`` is a tokenizer)."""
    prompt = sum(count(m["content"]) for m in record["messages"])
    return prompt + count(record["completion"])


def _chars(record: dict[str, Any]) -> int:
    return sum(len(m["content"]) for m in record["messages"]) + len(record["completion"])


def _norm(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?.! ")


def _identity(record: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """A record's database, history and question, each question normalized like
    :func:`_norm` and each turn's SQL with whitespace collapsed (records written before
    multi-turn, without ``history``, are questions on their own)."""
    turns = tuple(
        (_norm(str(turn.get("question", ""))), " ".join(str(turn.get("sql") or "").split()))
        for turn in record.get("history") or ()
    )
    return (record["db_id"], turns, _norm(record["question"]))


def suite_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a line of an eval JSONL suite (:func:`sqlagent.evaluation.load_suite`):
    its question, gold SQL, database URL, ``db_id``, and its ``role`` and ``history`` when it
    has them, so a follow-up is evaluated after the same conversation it was trained on."""
    row: dict[str, Any] = {
        "question": record["question"],
        "sql": record["sql"],
        "database": record["url"],
        "db_id": record["db_id"],
    }
    if record.get("role"):
        row["role"] = record["role"]
    if record.get("history"):
        row["history"] = list(record["history"])
    return row


@dataclass(frozen=True, slots=True)
class DataReport:
    """Counts at each step of :func:`prepare`, in order."""

    loaded: int
    duplicates: int
    too_long: int
    train: int
    validation: int
    train_tokens: int

    def table(self) -> Any:
        """A :class:`rich.table.Table` of the counts (needs ``rich``, the CLI extra)."""
        from rich.table import Table

        table = Table(title="Training data")
        table.add_column("step")
        table.add_column("count", justify="right")
        for label, value in (
            ("loaded", self.loaded),
            ("duplicates dropped", self.duplicates),
            ("too long dropped", self.too_long),
            ("train", self.train),
            ("validation", self.validation),
            ("train tokens", self.train_tokens),
        ):
            table.add_row(label, str(value))
        return table

    def print(self, console: Any = None) -> None:
        """Print :meth:`table` to ``console`` (default: a new :class:`rich.console.Console`)."""
        from rich.console import Console

        (console or Console()).print(self.table())


@dataclass(frozen=True, slots=True)
class PreparedData:
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    report: DataReport


def prepare(
    records: Sequence[dict[str, Any]],
    *,
    validation: float = 0.1,
    split_by: SplitBy = "item",
    seed: int = 0,
    max_tokens: int | None = None,
    max_chars: int | None = None,
    count: TokenCounter = count_tokens,
) -> PreparedData:
    """Deduplicate, drop over-long records, and split into train and validation.

    A duplicate is a record whose database, question (lower-cased, whitespace collapsed, end
    punctuation dropped) and history (each turn's question so normalized, its SQL with
    whitespace collapsed) match an earlier one; the first is kept. The same follow-up after
    two different conversations is two items. ``max_tokens`` counts prompt
    plus completion with ``count``. The split is deterministic for a given ``seed`` and input:
    by ``"item"`` a shuffled ``validation`` fraction of records; by ``"database"`` a shuffled
    fraction of the databases (rounded, at least one when there are two or more), so no
    validation database is seen in training.
    """
    if not 0 <= validation < 1:
        raise ConfigError("validation must be a fraction in [0, 1)")
    seen: set[tuple[str, tuple[tuple[str, str], ...], str]] = set()
    unique = []
    for record in records:
        key = _identity(record)
        if key not in seen:
            seen.add(key)
            unique.append(record)
    kept = [
        r
        for r in unique
        if (max_chars is None or _chars(r) <= max_chars)
        and (max_tokens is None or record_tokens(r, count) <= max_tokens)
    ]
    rng = random.Random(seed)
    if split_by == "database":
        dbs = sorted({r["db_id"] for r in kept})
        rng.shuffle(dbs)
        n = round(len(dbs) * validation)
        if validation > 0 and len(dbs) > 1:
            n = min(max(n, 1), len(dbs) - 1)
        held = set(dbs[:n])
        val = [r for r in kept if r["db_id"] in held]
        train = [r for r in kept if r["db_id"] not in held]
    else:
        order = list(range(len(kept)))
        rng.shuffle(order)
        n = math.floor(len(kept) * validation)
        held_idx = set(order[:n])
        val = [r for i, r in enumerate(kept) if i in held_idx]
        train = [r for i, r in enumerate(kept) if i not in held_idx]
    report = DataReport(
        loaded=len(records),
        duplicates=len(records) - len(unique),
        too_long=len(unique) - len(kept),
        train=len(train),
        validation=len(val),
        train_tokens=sum(record_tokens(r, count) for r in train),
    )
    return PreparedData(train, val, report)
