"""Fixtures for the eval tests: the project's demo suite and a fake exec-match engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sqlagent.evaluation._execmatch import ExecItem, ExecVerdict
from tests.conftest import ROOT, SPIDER

DEMO_SUITE = ROOT / "eval" / "demo" / "suite.jsonl"

needs_spider = pytest.mark.skipif(
    not (SPIDER / "dev.json").is_file(), reason="../shared/data/spider-dev is absent"
)


def _fake_many(items: list[ExecItem], **_: Any) -> list[ExecVerdict]:
    """Set comparison of result rows, in this process: enough to test the scoring around it."""
    out = []
    for it in items:
        con = sqlite3.connect(f"file:{it.db_path}?mode=ro", uri=True)
        gold = set(con.execute(it.gold).fetchall())
        try:
            pred: set[Any] | None = set(con.execute(it.predicted).fetchall())
            error = None
        except sqlite3.Error as exc:
            pred, error = None, str(exc)
        con.close()
        out.append(
            ExecVerdict(
                it.index,
                pred == gold,
                error,
                None,
                len(gold),
                None if pred is None else len(pred),
                ("gold_empty",) if not gold else (),
                0.1,
            )
        )
    return out


@pytest.fixture
def fake_engine() -> SimpleNamespace:
    return SimpleNamespace(ExecItem=ExecItem, exec_match_many=_fake_many)


@pytest.fixture
def demo_suite() -> Path:
    return DEMO_SUITE
