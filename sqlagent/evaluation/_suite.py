"""Evaluation suites: Spider's format and sqlagent's JSONL format, loaded into :class:`EvalItem`.

Spider: a questions file (``dev.json``) beside ``tables.json`` and
``database/<db_id>/<db_id>.sqlite``.
JSONL: one object a line, ``{"question", "sql", "database", "role"?, "tags"?, "db_id"?,
"history"?}``; ``database`` is a path relative to the file, a SQLAlchemy URL, or ``demo`` (the
bundled demo database, built into a temporary directory once per load); ``history`` makes the
question a follow-up: the earlier turns of its conversation, oldest first, each
``{"question", "sql"?}`` or a bare question string (a turn where no query ran).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.dialects import sqlite_file
from sqlagent.errors import ConfigError
from sqlagent.types import Turn

__all__ = ["EvalItem", "SuiteKind", "load_predictions", "load_suite"]

SuiteKind = Literal["spider", "jsonl"]


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question of a suite, with its gold SQL and the database it runs on; ``history`` is
    the conversation it follows up on, oldest first (empty: a question on its own), which the
    agent is given with the question."""

    index: int
    question: str
    gold: str
    db_id: str
    db_path: str  # a SQLite file path (what the exec-match engine runs on)
    role: str | None = None
    tags: tuple[str, ...] = ()
    hardness: str | None = None  # Spider's easy/medium/hard/extra, when the suite has parses
    history: tuple[Turn, ...] = ()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db_path}"


def load_suite(kind: SuiteKind, path: str | Path, *, limit: int | None = None) -> list[EvalItem]:
    """Load a suite; ``limit`` keeps the first N questions. Raises :class:`ConfigError`."""
    p = Path(path)
    items = _load_spider(p) if kind == "spider" else _load_jsonl(p)
    if not items:
        raise ConfigError(f"suite {p} holds no questions")
    return items[:limit] if limit is not None else items


def _load_spider(path: Path) -> list[EvalItem]:
    from sqlagent.evaluation._metrics import spider_hardness

    questions = path / "dev.json" if path.is_dir() else path
    root = questions.parent
    data = _read_json(questions)
    if not isinstance(data, list):
        raise ConfigError(f"{questions}: a Spider questions file holds a JSON list")
    items = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not {"db_id", "question", "query"} <= entry.keys():
            raise ConfigError(f"{questions}: entry {i} lacks db_id, question or query")
        db = root / "database" / entry["db_id"] / f"{entry['db_id']}.sqlite"
        if not db.is_file():
            raise ConfigError(f"{questions}: entry {i}: database {db} not found")
        parsed = entry.get("sql")
        items.append(
            EvalItem(
                index=i,
                question=str(entry["question"]),
                gold=str(entry["query"]),
                db_id=str(entry["db_id"]),
                db_path=str(db.resolve()),
                hardness=spider_hardness(parsed) if isinstance(parsed, dict) else None,
            )
        )
    return items


def _load_jsonl(path: Path) -> list[EvalItem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read suite {path}: {exc}") from exc
    items: list[EvalItem] = []
    demo: list[str] = []  # the demo database, built on first use
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}:{number}: each line must be a JSON object")
        missing = [k for k in ("question", "sql", "database") if not entry.get(k)]
        if missing:
            raise ConfigError(f"{path}:{number}: missing {', '.join(missing)}")
        tags = entry.get("tags") or []
        if not isinstance(tags, list):
            raise ConfigError(f"{path}:{number}: tags must be a list")
        history = _history(entry.get("history"), f"{path}:{number}")
        db_path = _database(str(entry["database"]), path.parent, demo, f"{path}:{number}")
        items.append(
            EvalItem(
                index=len(items),
                question=str(entry["question"]),
                gold=str(entry["sql"]),
                db_id=str(entry.get("db_id") or Path(db_path).stem),
                db_path=db_path,
                role=entry.get("role"),
                tags=tuple(str(t) for t in tags),
                history=history,
            )
        )
    return items


def _history(value: Any, where: str) -> tuple[Turn, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(
            f'{where}: history must be a list of turns ({{"question", "sql"}} or strings)'
        )
    turns = []
    for n, entry in enumerate(value, 1):
        try:
            turns.append(Turn.from_dict(entry))
        except ValueError as exc:
            raise ConfigError(f"{where}: history turn {n}: {exc}") from exc
    return tuple(turns)


def _database(value: str, base: Path, demo: list[str], where: str) -> str:
    if value == "demo":
        if not demo:
            from sqlagent.demo import build_demo_database

            tmp = Path(tempfile.mkdtemp(prefix="sqlagent-eval-demo-"))
            demo.append(str(build_demo_database(tmp / "hr.sqlite")))
        return demo[0]
    if "://" in value:
        try:
            path = sqlite_file(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if path is None:
            raise ConfigError(
                f"{where}: only SQLite database files can be evaluated, got {value!r}"
            )
        value = path
    p = Path(value) if Path(value).is_absolute() else base / value
    if not p.is_file():
        raise ConfigError(f"{where}: database {p} not found")
    return str(p.resolve())


def load_predictions(path: str | Path, expected: int) -> list[str]:
    """One SQL per line in question order (Spider's format; a tab and a db_id may follow)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read predictions {p}: {exc}") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    preds = [line.split("\t", 1)[0].strip() for line in lines]
    if len(preds) < expected:
        raise ConfigError(f"{p} holds {len(preds)} predictions for {expected} questions")
    return preds[:expected]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
