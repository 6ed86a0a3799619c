"""Value types shared across sqlagent: violations and verdicts.

They are frozen and JSON-friendly (:meth:`Verdict.to_dict`): the CLI's ``--json`` output, the
audit events and the self-correction feedback are all rendered from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

from sqlagent.errors import ConfigError

__all__ = [
    "Answer",
    "Attempt",
    "Example",
    "Message",
    "ReusedExample",
    "Role",
    "Status",
    "Turn",
    "Verdict",
    "Violation",
    "ViolationCode",
]


class ViolationCode(StrEnum):
    """Why a statement was refused. The values are a public contract (CLI ``--json``)."""

    PARSE_ERROR = "parse_error"
    MULTIPLE_STATEMENTS = "multiple_statements"
    NOT_READ_ONLY = "not_read_only"
    FORBIDDEN_FUNCTION = "forbidden_function"
    UNKNOWN_TABLE = "unknown_table"
    UNKNOWN_COLUMN = "unknown_column"
    AMBIGUOUS_COLUMN = "ambiguous_column"
    TABLE_DENIED = "table_denied"
    COLUMN_DENIED = "column_denied"
    MASKED_COLUMN_MISUSE = "masked_column_misuse"


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason for a rejection; ``message`` is written so a model can act on it."""

    code: ViolationCode
    message: str
    suggestions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "message": self.message,
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The safety core's decision on one statement.

    ``sql`` is the statement that would run: regenerated from the validated syntax tree (comments
    dropped), with ``*`` expanded to the granted columns, masked columns replaced by a mask and the
    row cap applied. It is ``None`` when the statement is rejected. ``tables`` and ``columns``
    name the catalog objects the statement reads (``"table.column"``), in first-seen order.
    """

    allowed: bool
    sql: str | None
    original_sql: str
    dialect: str
    violations: tuple[Violation, ...] = ()
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    masked_columns: tuple[str, ...] = ()
    role: str | None = None
    policy_mode: str = "single_user"

    @property
    def codes(self) -> tuple[ViolationCode, ...]:
        return tuple(v.code for v in self.violations)

    def summary(self) -> str:
        if self.allowed:
            return "allowed"
        return "; ".join(f"{v.code}: {v.message}" for v in self.violations) or "rejected"

    def feedback(self) -> str:
        """Text for a model: what was wrong and how to fix it (the self-correction loop)."""
        if self.allowed:
            return ""
        lines = ["The SQL was rejected:"]
        for v in self.violations:
            line = f"- {v.message}"
            if v.suggestions:
                line += " Did you mean: " + ", ".join(v.suggestions) + "?"
            lines.append(line)
        lines.append(
            "Write one read-only SELECT statement that uses only the tables and columns shown."
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object (a public contract) plus a few extra keys."""
        return {
            "allowed": self.allowed,
            "sql": self.sql,
            "violations": [v.to_dict() for v in self.violations],
            "tables": list(self.tables),
            "columns": list(self.columns),
            "masked_columns": list(self.masked_columns),
            "role": self.role,
            "policy_mode": self.policy_mode,
            "dialect": self.dialect,
        }


@dataclass(frozen=True, slots=True)
class Example:
    """A question with the SQL that answers it: few-shot memory, training data, eval items."""

    question: str
    sql: str

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "sql": self.sql}


@dataclass(frozen=True, slots=True)
class ReusedExample:
    """A stored example whose SQL a model answered with, rather than SQL it wrote.

    :class:`~sqlagent.llm.MockLLM` answers this way: ``question`` is the stored question it
    matched, ``sql`` its SQL, ``similarity`` how close the asked question is to it (0 to 1,
    see :class:`~sqlagent.llm.MockLLM`), so a reader can tell a recalled answer from a new one.
    """

    question: str
    sql: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "sql": self.sql, "similarity": round(self.similarity, 4)}


#: Violations that mean "the role may not read this", as opposed to a wrong or unsafe query.
DENIAL_CODES = frozenset(
    {ViolationCode.TABLE_DENIED, ViolationCode.COLUMN_DENIED, ViolationCode.MASKED_COLUMN_MISUSE}
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One round of the self-correction loop: what the model said and what became of it.

    ``sql`` is the statement extracted from ``output`` (``None`` when none was found);
    ``verdict`` the safety core's decision on it; ``error`` what went wrong otherwise (no SQL,
    an execution error, a timeout). An attempt with an allowed verdict and no error ran.
    ``model`` names the backend that wrote ``output`` (:func:`~sqlagent.llm.llm_name`), and
    ``reused`` is the stored example it repeated when it answered from memory (the mock).
    """

    number: int
    output: str
    sql: str | None = None
    verdict: Verdict | None = None
    error: str | None = None
    llm_ms: float = 0.0
    model: str | None = None
    reused: ReusedExample | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.verdict is not None and self.verdict.allowed

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "sql": self.sql,
            "verdict": None
            if self.verdict is None
            else ("allowed" if self.verdict.allowed else "rejected"),
            "violations": []
            if self.verdict is None
            else [v.to_dict() for v in self.verdict.violations],
            "error": self.error,
            "llm_ms": self.llm_ms,
            "model": self.model,
            "reused_example": None if self.reused is None else self.reused.to_dict(),
        }


Status = Literal["answered", "rejected", "failed"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a conversation, as the next question's prompt shows it: the question
    and the SQL that answered it (``None`` when no query ran). Never its rows: a follow-up is
    answered by new SQL, and rows read under one role never reach a prompt."""

    question: str
    sql: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "sql": self.sql}

    @classmethod
    def from_dict(cls, data: Any) -> Turn:
        """A turn from ``{"question", "sql"?}`` (or a bare question string); raises
        :class:`ValueError` naming what is wrong."""
        if isinstance(data, str):
            data = {"question": data}
        if not isinstance(data, dict):
            raise ValueError("a history turn is an object with 'question' (and 'sql')")
        question, sql = data.get("question"), data.get("sql")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("a history turn needs a non-empty 'question'")
        if sql is not None and not isinstance(sql, str):
            raise ValueError("a history turn's 'sql' must be a string or null")
        unknown = set(data) - {"question", "sql"}
        if unknown:
            raise ValueError(f"unknown key(s) in a history turn: {', '.join(sorted(unknown))}")
        return cls(question.strip(), sql.strip() if sql and sql.strip() else None)


@dataclass(frozen=True, slots=True)
class Answer:
    """The agent's answer to one question.

    ``status`` is ``"answered"`` (a validated query ran; ``rows`` may be empty), ``"rejected"``
    (every attempt was refused by the safety core; see ``verdict``) or ``"failed"`` (the model,
    retrieval or database failed; see ``error``). :attr:`no_rows`, :attr:`denied` and
    :attr:`masked` tell "nothing matched" apart from "not allowed" and "shown masked".
    ``sql`` is the statement that ran (the validated rewrite), ``audit_id`` the request id of the
    one audit event recorded for this question, ``timings`` milliseconds per pipeline stage.
    ``model`` names the backend that wrote the last attempt (``None`` when no model answered);
    ``reused_example`` is set when that answer repeated a stored example (the mock) rather than
    being written for this question.
    """

    question: str
    status: Status
    role: str | None = None
    sql: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    truncated: bool = False
    verdict: Verdict | None = None
    attempts: tuple[Attempt, ...] = ()
    masked_columns: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    timings: dict[str, float] | None = None
    audit_id: str | None = None
    error: str | None = None
    model: str | None = None
    reused_example: ReusedExample | None = None

    @property
    def ok(self) -> bool:
        return self.status == "answered"

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def no_rows(self) -> bool:
        """Answered, and the query matched nothing (as opposed to being refused)."""
        return self.ok and not self.rows

    @property
    def denied(self) -> bool:
        """Refused because the role may not read what the query needs."""
        return (
            self.status == "rejected"
            and self.verdict is not None
            and any(code in DENIAL_CODES for code in self.verdict.codes)
        )

    @property
    def masked(self) -> bool:
        """Answered with some columns masked for this role."""
        return self.ok and bool(self.masked_columns)

    def as_turn(self) -> Turn:
        """This answer as a conversation turn: its question and, when a query ran, that query
        as the model wrote it (the guard allowed it; :attr:`sql` is the rewrite that ran, with
        the role's derived tables and masks, which is no help to a model reading history)."""
        if not self.ok:
            return Turn(self.question, None)
        written = self.attempts[-1].sql if self.attempts else None
        return Turn(self.question, written or self.sql)

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "question": self.question,
            "status": self.status,
            "role": self.role,
            "sql": self.sql,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "row_count": self.row_count,
            "truncated": self.truncated,
            "verdict": None if verdict is None else ("allowed" if verdict.allowed else "rejected"),
            "violations": [] if verdict is None else [v.to_dict() for v in verdict.violations],
            "denied": self.denied,
            "masked_columns": list(self.masked_columns),
            "tables": list(self.tables),
            "attempts": [a.to_dict() for a in self.attempts],
            "timings": dict(self.timings or {}),
            "audit_id": self.audit_id,
            "error": self.error,
            "model": self.model,
            "reused_example": None
            if self.reused_example is None
            else self.reused_example.to_dict(),
        }


Role = Literal["system", "user", "assistant"]
_ROLES: frozenset[str] = frozenset(get_args(Role))


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, as every chat template and OpenAI-compatible server understands it.

    Defined here, below both, because :mod:`sqlagent.prompt` renders messages and
    :mod:`sqlagent.llm` sends them (``from sqlagent.llm import Message`` is the same class).
    """

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ConfigError(
                f"unknown message role {self.role!r}: expected one of {', '.join(sorted(_ROLES))}"
            )
        if not isinstance(self.content, str):
            raise ConfigError(
                f"message content must be a string, not {type(self.content).__name__}"
            )

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls("assistant", content)

    def to_dict(self) -> dict[str, str]:
        """The message in the OpenAI chat format (``{"role": ..., "content": ...}``)."""
        return {"role": self.role, "content": self.content}
