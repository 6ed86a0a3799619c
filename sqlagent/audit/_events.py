"""Audit events: one small, JSON-friendly record per request, success or failure."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlagent.types import Verdict

__all__ = ["AuditEvent", "new_request_id", "verdict_event"]


def new_request_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened to one request.

    ``name`` says which entry point made the decision (``"validate"`` now, ``"ask"`` for the
    agent). ``verdict`` is ``"allowed"``, ``"rejected"`` or ``"error"``; ``policy_mode`` is
    ``"policy"`` when a role policy was enforced and ``"single_user"`` when none was configured.
    ``violations`` are ``{"code", "message", "suggestions"}`` dicts; ``columns`` are
    ``"table.column"`` strings. ``row_count`` is ``None`` when nothing was executed.
    """

    name: str
    verdict: str
    request_id: str = field(default_factory=new_request_id)
    created: str = field(default_factory=_now)
    role: str | None = None
    policy_mode: str = "single_user"
    dialect: str | None = None
    question: str | None = None
    sql_in: str | None = None
    sql_out: str | None = None
    violations: tuple[dict[str, Any], ...] = ()
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    masked_columns: tuple[str, ...] = ()
    row_count: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("violations", "tables", "columns", "masked_columns"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("violations", "tables", "columns", "masked_columns"):
            if key in known and known[key] is not None:
                known[key] = tuple(known[key])
        return cls(**known)


def verdict_event(
    verdict: Verdict,
    *,
    role: str | None = None,
    latency_ms: float | None = None,
    request_id: str | None = None,
    question: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """The ``"validate"`` audit event of a guard's ``verdict`` on SQL checked for ``role``.

    The safety core records nothing; a caller that acts on a verdict alone (``sqlagent
    validate``, :meth:`sqlagent.SQLAgent.check_sql`, a server's check endpoint) records it with this
    event. The event's role is the role the verdict was judged as (the policy's default role
    for an unknown one, with ``extra["requested_role"]`` saying what was asked) or, in
    single-user mode, ``role`` as given. ``extra`` is the caller's context (e.g.
    ``{"interface": "mcp"}``); ``request_id`` defaults to a new one.
    """
    info: dict[str, Any] = dict(extra or {})
    policy = verdict.policy_mode == "policy"
    if policy and role is not None and role != verdict.role:
        info["requested_role"] = role
    event = AuditEvent(
        name="validate",
        verdict="allowed" if verdict.allowed else "rejected",
        role=verdict.role if policy else role,
        policy_mode=verdict.policy_mode,
        dialect=verdict.dialect,
        question=question,
        sql_in=verdict.original_sql,
        sql_out=verdict.sql,
        violations=tuple(v.to_dict() for v in verdict.violations),
        tables=verdict.tables,
        columns=verdict.columns,
        masked_columns=verdict.masked_columns,
        latency_ms=latency_ms,
        extra=info,
    )
    return dataclasses.replace(event, request_id=request_id) if request_id else event
