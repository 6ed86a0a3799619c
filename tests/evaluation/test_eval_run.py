"""run_eval on the demo suite (fake and real exec-match engines), reports, the agent predictor."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sqlagent.errors import ConfigError
from sqlagent.evaluation import (
    EvalItem,
    agent_predictor,
    compare_runs,
    function_predictor,
    load_results,
    load_suite,
    run_eval,
    write_report,
)
from sqlagent.llm import MockLLM
from sqlagent.prompt import question_of


def _demo(suite: Path) -> list[EvalItem]:
    return load_suite("jsonl", suite)[:4]


def test_scoring_with_a_fake_engine(demo_suite: Path, fake_engine: SimpleNamespace) -> None:
    items = _demo(demo_suite)
    preds = [
        items[0].gold,
        "SELECT wage FROM employees",
        "DELETE FROM departments",
        "",
    ]
    run = run_eval(items, predictions=preds, engine=fake_engine)
    got = run.items
    assert [i["index"] for i in got] == [0, 1, 2, 3]
    assert got[0]["category"] == "correct"
    assert got[0]["exact_match"] is True
    assert got[1]["category"] == "hallucination"
    assert got[1]["hallucinated"] == ["wage"]
    assert got[1]["valid"] is False
    assert got[1]["error"]
    assert got[2]["category"] == "read_only_rejected"
    assert got[2]["read_only_rejected"]
    assert got[3]["category"] == "no_prediction"
    assert got[3]["predicted"] is None
    assert run.summary["overall"]["exec_match"] == 0.25
    assert run.summary["read_only_rejections"] == 1
    assert run.summary["hallucination_rate"] == 0.25


def test_exactly_one_source_of_predictions(demo_suite: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        run_eval(_demo(demo_suite))


def test_function_predictor_and_report(demo_suite: Path, tmp_path: Path) -> None:
    items = load_suite("jsonl", demo_suite)
    run = run_eval(items, predictor=function_predictor(lambda i: i.gold), workers=1)
    assert run.summary["overall"]["exec_match"] == 1.0
    assert run.summary["overall"]["exec_match_spider"] == 1.0
    assert run.summary["latency_ms"]["p50"] is not None
    assert run.summary["by_tag"]["join"]["count"] >= 3
    out = write_report(run, tmp_path / "out")
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [i["index"] for i in data["items"]] == list(range(len(items)))
    for key in ("index", "db_id", "question", "predicted", "gold", "exec_match"):
        assert key in data["items"][0]
    for key in ("exact_match", "valid", "hallucinated", "error"):
        assert key in data["items"][0]
    assert "| overall | all |" in (out / "summary.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert not re.search(r"https?://|<script|<link|<img", page)
    assert load_results(out) == load_results(out / "results.json")


def test_compare_runs(demo_suite: Path, tmp_path: Path) -> None:
    items = _demo(demo_suite)
    a = run_eval(items, predictions=[i.gold for i in items]).to_dict()
    b = run_eval(items, predictions=[items[0].gold] * 4).to_dict()
    diff = compare_runs(a, b)
    assert diff["groups"][0] == {"group": "overall", "name": "all", "a": 1.0, "b": 0.25}
    assert [c["index"] for c in diff["changed"]] == [1, 2, 3]


def test_agent_predictor_records_sql_tokens_and_recall(demo_suite: Path) -> None:
    items = _demo(demo_suite)
    # The mock reads the question out of the rendered prompt (question_of): it answers only
    # questions close to a stored one, and the whole prompt is close to none.
    llm = MockLLM(examples=[(i.question, i.gold) for i in items], question=question_of)
    predictor, close = agent_predictor(llm)
    try:
        run = run_eval(items, predictor=predictor)
    finally:
        close()
    first = run.items[0]
    assert first["predicted"] == items[0].gold
    assert first["validated"]
    assert first["tokens"] > 0
    assert first["latency_ms"] > 0
    assert first["table_recall"] == 1.0
    assert run.summary["tokens"]["total"] > 0


def test_policy_rejections_for_items_with_a_role(demo_db: Path) -> None:
    from sqlagent.demo import demo_policy_text
    from sqlagent.safety import Policy

    policy = Policy.from_mapping(yaml.safe_load(demo_policy_text()))
    sql = "SELECT first_name, national_id FROM employees"
    items = [
        EvalItem(0, "q", sql, "hr", str(demo_db), role="viewer"),
        EvalItem(1, "q", sql, "hr", str(demo_db), role="hr"),
        EvalItem(2, "q", sql, "hr", str(demo_db)),  # no role: single-user
    ]
    run = run_eval(items, predictions=[sql] * 3, policy=policy)
    assert [i["policy_rejected"] for i in run.items] == [True, False, False]
    assert run.items[0]["category"] == "policy_rejected"
    assert run.summary["policy_rejections"] == 1
