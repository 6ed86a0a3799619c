"""Multi-turn training records: follow-up questions rendered with their conversation, in the
runtime's own prompt format, identified by history and question together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sqlagent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.evaluation import load_suite
from sqlagent.llm import MockLLM
from sqlagent.prompt import render_answer
from sqlagent.training import (
    DEFAULT_AGENT,
    TrainConfig,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    load_training_data,
    prepare,
    suite_row,
)
from sqlagent.types import Turn
from tests.conftest import ROOT

FOLLOWUPS = ROOT / "eval" / "demo" / "followups.jsonl"
HEADING = "### Conversation so far\n"


@pytest.fixture(scope="module")
def followup_records() -> list[dict[str, Any]]:
    return build_records(items_from_suite("jsonl", FOLLOWUPS))


def _agent(url: str) -> SQLAgent:
    config = AgentConfig.from_mapping({**DEFAULT_AGENT, "database": url})
    return SQLAgent(config, llm=MockLLM(responses={}), audit=MemoryAuditSink())


def test_suite_items_carry_their_history() -> None:
    items = items_from_suite("jsonl", FOLLOWUPS)
    assert [i.history for i in items] == [i.history for i in load_suite("jsonl", FOLLOWUPS)]
    assert all(i.history for i in items)


def test_followup_records_are_the_runtime_prompt_after_the_history(
    followup_records: list[dict[str, Any]],
) -> None:
    items = items_from_suite("jsonl", FOLLOWUPS)
    assert len(followup_records) == len(items)
    with _agent(items[0].url) as agent:
        for item, record in zip(items, followup_records, strict=True):
            expected = agent.prompt_for(item.question, history=item.history)
            assert record["messages"] == [m.to_dict() for m in expected]
            assert record["history"] == [t.to_dict() for t in item.history]
            assert record["completion"] == render_answer(item.sql)
            # and that prompt differs from the question asked on its own
            alone = agent.prompt_for(item.question)
            assert record["messages"] != [m.to_dict() for m in alone]
            user = record["messages"][1]["content"]
            section = user.partition(HEADING)[2].partition("\n\n### Question\n")[0]
            for turn in item.history:
                assert f"Question: {turn.question}\n{render_answer(turn.sql or '')}" in section
            assert user.endswith(f"### Question\n{item.question}")


def test_single_turn_records_have_an_empty_history(demo_db: Path) -> None:
    item = TrainItem("How many departments are there?", "SELECT COUNT(*) FROM departments", "hr",
                     f"sqlite:///{demo_db}")  # fmt: skip
    (record,) = build_records([item])
    assert record["history"] == []
    assert HEADING not in record["messages"][1]["content"]


def test_a_turn_without_sql_renders_as_no_query(demo_db: Path) -> None:
    history = (Turn("Show everyone's national ID.", None),)
    item = TrainItem("Then just their names?", "SELECT first_name, last_name FROM employees",
                     "hr", f"sqlite:///{demo_db}", history=history)  # fmt: skip
    (record,) = build_records([item])
    assert record["history"] == [{"question": "Show everyone's national ID.", "sql": None}]
    assert (
        f"{HEADING}Question: Show everyone's national ID.\n(no query ran)"
        in record["messages"][1]["content"]
    )


def test_examples_store_items_are_single_turn(demo_db: Path, tmp_path: Path) -> None:
    store = tmp_path / "examples.jsonl"
    store.write_text(
        json.dumps({"question": "How many projects?", "sql": "SELECT COUNT(*) FROM projects"})
        + "\n",
        encoding="utf-8",
    )
    (item,) = items_from_examples(store, f"sqlite:///{demo_db}")
    assert item.history == ()


def test_dedup_identifies_items_by_history_and_question(demo_db: Path) -> None:
    url = f"sqlite:///{demo_db}"
    first = Turn("How many employees are in each department?", "SELECT 1")
    other = Turn("How many projects does each department run?", "SELECT 2")
    items = [
        TrainItem("And only for Engineering?", "SELECT 3", "hr", url, history=(first,)),
        TrainItem("And only for Engineering?", "SELECT 4", "hr", url, history=(other,)),
        TrainItem("and only for engineering", "SELECT 3", "hr", url,
                  history=(Turn("how many employees are in each  department", "SELECT  1"),)),
        TrainItem("And only for Engineering?", "SELECT 5", "hr", url),
    ]  # fmt: skip
    data = prepare(build_records(items), validation=0)
    assert data.report.duplicates == 1  # the third repeats the first, up to case and spacing
    assert [r["sql"] for r in data.train] == ["SELECT 3", "SELECT 4", "SELECT 5"]
    # records written before multi-turn (no "history" key) are questions on their own
    legacy = {k: v for k, v in build_records(items[3:])[0].items() if k != "history"}
    assert prepare([legacy, *data.train], validation=0).report.duplicates == 1


def test_records_go_back_to_a_suite_with_their_history(
    followup_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    """What ``sqlagent train --eval`` writes as validation.jsonl loads as the same items."""
    suite = tmp_path / "validation.jsonl"
    suite.write_text(
        "".join(json.dumps(suite_row(r)) + "\n" for r in followup_records), encoding="utf-8"
    )
    again = load_suite("jsonl", suite)
    original = load_suite("jsonl", FOLLOWUPS)
    assert [(i.question, i.gold, i.history) for i in again] == [
        (i.question, i.gold, i.history) for i in original
    ]
    assert "history" not in suite_row({**followup_records[0], "history": []})


@pytest.mark.slow
def test_load_training_data_keeps_the_history(tmp_path: Path) -> None:
    config = TrainConfig.from_mapping(
        {"base_model": "m", "data": [{"kind": "jsonl", "path": str(FOLLOWUPS)}], "validation": 0}
    )
    data = load_training_data(config)
    assert len(data.train) == len(load_suite("jsonl", FOLLOWUPS))
    assert all(r["history"] and HEADING in r["messages"][1]["content"] for r in data.train)
