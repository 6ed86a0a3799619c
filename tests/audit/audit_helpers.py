"""Helpers for the audit tests: real events and real chained files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlagent.audit import AuditEvent, JsonlAuditSink


def make_event(i: int) -> AuditEvent:
    return AuditEvent(
        name="validate",
        verdict="allowed" if i % 3 else "rejected",
        role="analyst",
        question=f"question {i} — naïve ünïcode",
        sql_in=f"SELECT {i}",
        tables=("orders",),
        columns=("orders.id",),
        extra={"i": i},
    )


def write_chain(path: Path, count: int) -> None:
    with JsonlAuditSink(path) as sink:
        for i in range(count):
            sink.emit(make_event(i))


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_lines(path)]
