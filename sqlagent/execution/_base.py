"""What every dialect backend shares: the result type, the executor protocol, the backend seam."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlagent.errors import ResultTooLargeError

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "ExecutionResult", "Executor"]

#: Error messages go to a model: one line, and not a page of it.
_MAX_MESSAGE = 500
#: The default cap on a result's size in memory: far above any answer a person reads, far below
#: what would strain a server process running several questions at once.
DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The rows a read-only run returned.

    ``rows`` holds at most the executor's ``max_rows`` rows; ``truncated`` says the query had
    more (the rest were never fetched). ``elapsed_ms`` is the wall time of the run on the
    database connection, setup and rollback included.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    row_count: int
    truncated: bool
    elapsed_ms: float


@runtime_checkable
class Executor(Protocol):
    """Runs one SQL statement and returns its rows; the plug-in point for the agent.

    ``run`` raises :class:`~sqlagent.errors.ExecutionError` (or a subclass) when the statement
    fails; its message is meant to be shown to the model that wrote the SQL.
    """

    def run(self, sql: str) -> ExecutionResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_s: float
    max_rows: int
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    @property
    def timeout_ms(self) -> int:
        return max(1, round(self.timeout_s * 1000))


def value_bytes(value: object) -> int:
    """The memory a fetched value takes, as Python holds it: strings and binary values by their
    size, containers (PostgreSQL arrays, JSON, records) by their items too, anything else by
    ``sys.getsizeof``."""
    size = _sizeof(value)
    if isinstance(value, dict):
        size += sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(value_bytes(v) for v in value)
    return size


def row_bytes(row: tuple[Any, ...]) -> int:
    """:func:`value_bytes` of a row, summed in C when it holds no containers (the common case)."""
    size = _sizeof(row) + sum(map(_sizeof, row))
    if not _CONTAINERS.isdisjoint(map(type, row)):
        size += sum(value_bytes(v) - _sizeof(v) for v in row)
    return size


_sizeof = sys.getsizeof
_CONTAINERS = frozenset({list, tuple, dict})


class ResultMeter:
    """Counts the bytes of the rows fetched so far and stops the run once they pass the cap.

    Backends call :meth:`add` on each row as it arrives, before keeping it, so a result never
    grows more than one row past ``max_result_bytes`` in the process.
    """

    __slots__ = ("_limits", "total")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.total = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.total += row_bytes(row)
        if self.total > self._limits.max_result_bytes:
            raise ResultTooLargeError(too_large_message(self._limits))


def take_rows(
    rows: Iterable[tuple[Any, ...]], limits: Limits
) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows as they arrive from a cursor: each counted by a :class:`ResultMeter` before it is
    kept, and at most ``max_rows + 1`` kept (the extra one says the result was truncated).

    Returns the rows kept and whether ``rows`` ran out (``False``: stopped at the cap, with rows
    left unread on the connection).
    """
    meter = ResultMeter(limits)
    kept: list[tuple[Any, ...]] = []
    for row in rows:
        meter.add(row)
        kept.append(row)
        if len(kept) > limits.max_rows:
            return kept, False
    return kept, True


def too_large_message(limits: Limits, *, what: str = "the result") -> str:
    return (
        f"{what} grew past the {_size(limits.max_result_bytes)} limit (max_result_bytes) and "
        "the query was stopped; return fewer or narrower columns, aggregate, or add a LIMIT, "
        "and do not build very long strings"
    )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True, slots=True)
class Fetched:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool


class Session:
    """Per-run bookkeeping a backend shares with the executor.

    ``spoiled`` asks the executor to discard the connection instead of returning it to the pool:
    its cleanup failed, or it was left mid-result on purpose (a truncated streaming result).
    """

    __slots__ = ("spoiled",)

    def __init__(self) -> None:
        self.spoiled = False

    def quietly(self, step: Any, *args: Any) -> None:
        """Run a cleanup step; a failure spoils the connection instead of hiding the real error."""
        try:
            step(*args)
        except Exception:
            self.spoiled = True


class Backend(Protocol):
    """One dialect's read-only run on a raw DB-API connection.

    A backend is built for one engine (``Backend(engine)``) and may install what it needs on it.
    ``run`` must leave no transaction open and no session setting changed that it does not
    document, raise :class:`~sqlagent.errors.ExecutionError` (or a subclass) for every driver
    error, and set ``session.spoiled`` when the connection must not be reused.
    """

    def run(self, conn: Any, sql: str, limits: Limits, session: Session) -> Fetched: ...


def one_line(text: object) -> str:
    """A database message on one clean line (first non-empty line, whitespace collapsed)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    message = re.sub(r"\s+", " ", lines[0]) if lines else "unknown database error"
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return message


def timeout_message(limits: Limits) -> str:
    return (
        f"the query ran longer than the {limits.timeout_s:g} s time limit and was stopped; "
        "make it cheaper (filter earlier, aggregate, avoid cross joins) or add a LIMIT"
    )


def read_only_message(detail: str) -> str:
    return f"the database refused a write on the read-only connection: {detail}"


def not_a_query_message(detail: str) -> str:
    return f"only a single plain query can run on the read-only connection; {detail}"
