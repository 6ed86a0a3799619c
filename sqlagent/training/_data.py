"""Supervised examples for ``sqlagent train``, rendered with the runtime's own prompt.

An adapter learns the prompt it is trained on, so every record here is built by
:mod:`sqlagent.prompt` exactly as :class:`sqlagent.Agent` builds its first prompt: the role's view
of the catalog (:meth:`sqlagent.Guard.catalog_for`), its masked columns marked, rendered by
:func:`~sqlagent.prompt.render_schema` and :func:`~sqlagent.prompt.build_messages`; the target is
:func:`~sqlagent.prompt.render_answer` of the gold SQL. Each record carries
:data:`~sqlagent.prompt.PROMPT_FORMAT_VERSION` so a trained adapter can record it.

Not yet done: sample values in the schema (the runtime adds them when sampling is configured),
retrieval-based table selection (the ``tables`` hook), glossary notes and few-shot examples.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.catalog import Catalog, reflect_catalog
from sqlagent.evaluation import SuiteKind, load_suite
from sqlagent.memory import read_examples
from sqlagent.prompt import (
    PROMPT_FORMAT_VERSION,
    build_messages,
    count_tokens,
    render_answer,
    render_schema,
)
from sqlagent.safety import Guard, Policy

__all__ = [
    "DataReport",
    "PreparedData",
    "SplitBy",
    "TableSelector",
    "TokenCounter",
    "TrainItem",
    "build_records",
    "items_from_examples",
    "items_from_suite",
    "prepare",
    "record_tokens",
]

SplitBy = Literal["item", "database"]
#: ``tables(question, catalog) -> table names`` for the schema section; ``None``: the whole view.
#: The hook for retrieval-based schema selection (the runtime's retriever), a later step.
TableSelector = Callable[[str, Catalog], Sequence[str]]
#: ``count(text) -> tokens``: a model tokenizer for exact counts; default
#: :func:`sqlagent.prompt.count_tokens` (an approximation).
TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class TrainItem:
    """One question with its gold SQL and the database (a SQLAlchemy URL) it is asked of."""

    question: str
    sql: str
    db_id: str
    url: str
    role: str | None = None


def items_from_suite(
    kind: SuiteKind, path: str | os.PathLike[str], *, limit: int | None = None
) -> list[TrainItem]:
    """Spider-format data or an eval JSONL suite, read by :func:`sqlagent.evaluation.load_suite`."""
    return [
        TrainItem(item.question, item.gold, item.db_id, item.url, item.role)
        for item in load_suite(kind, Path(path), limit=limit)
    ]


def items_from_examples(
    path: str | os.PathLike[str],
    url: str,
    *,
    db_id: str | None = None,
    role: str | None = None,
) -> list[TrainItem]:
    """The agent's example store (JSONL of ``{"question", "sql"}``) for the database at ``url``."""
    name = db_id or Path(url.rpartition("/")[2]).stem or "db"
    return [TrainItem(e.question, e.sql, name, url, role) for e in read_examples(path)]


def build_records(
    items: Iterable[TrainItem],
    *,
    dialect: str = "sqlite",
    policy: Policy | None = None,
    tables: TableSelector | None = None,
) -> list[dict[str, Any]]:
    """One chat record per item, in the runtime's prompt format.

    Each database is reflected once. With a ``policy``, an item's prompt shows only its role's
    view (an item without a role gets the policy's default role), masked columns marked; without
    one, the whole catalog. Records: ``{"messages", "completion", "db_id", "question", "sql",
    "prompt_format"}``. Raises :class:`sqlagent.errors.CatalogError` for an unreadable database.
    """
    guards: dict[str, Guard] = {}
    records = []
    for item in items:
        guard = guards.get(item.url)
        if guard is None:
            catalog = reflect_catalog(item.url)
            guard = guards[item.url] = Guard(
                dialect=dialect, catalog=catalog, policy=policy, audit=None
            )
        view = guard.catalog_for(item.role)
        assert view is not None  # the guard always has a catalog here
        access = guard.access(item.role)
        masked = access.masked if access is not None else frozenset()
        names = None if tables is None else tables(item.question, view)
        schema = render_schema(view, dialect, tables=names, masked=masked)
        messages = build_messages(item.question, schema=schema, dialect=dialect)
        records.append(
            {
                "messages": [m.to_dict() for m in messages],
                "completion": render_answer(item.sql),
                "db_id": item.db_id,
                "question": item.question,
                "sql": item.sql,
                "prompt_format": PROMPT_FORMAT_VERSION,
            }
        )
    return records


def record_tokens(record: dict[str, Any], count: TokenCounter = count_tokens) -> int:
    """Prompt plus completion tokens of a record (approximate unless ``count`` is a tokenizer)."""
    prompt = sum(count(m["content"]) for m in record["messages"])
    return prompt + count(record["completion"])


def _chars(record: dict[str, Any]) -> int:
    return sum(len(m["content"]) for m in record["messages"]) + len(record["completion"])


def _norm(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?.! ")


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

    A duplicate is a record whose question (lower-cased, whitespace collapsed, end punctuation
    dropped) and database match an earlier one; the first is kept. ``max_tokens`` counts prompt
    plus completion with ``count``. The split is deterministic for a given ``seed`` and input:
    by ``"item"`` a shuffled ``validation`` fraction of records; by ``"database"`` a shuffled
    fraction of the databases (rounded, at least one when there are two or more), so no
    validation database is seen in training.
    """
    if not 0 <= validation < 1:
        raise ValueError("validation must be a fraction in [0, 1)")
    seen: set[tuple[str, str]] = set()
    unique = []
    for record in records:
        key = (record["db_id"], _norm(record["question"]))
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
