"""Training data: the runtime's prompt, role views, dedup/length/split counts, plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sqlagent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import demo_policy_text
from sqlagent.errors import ConfigError
from sqlagent.llm import MockLLM
from sqlagent.prompt import PROMPT_FORMAT_VERSION, count_tokens, render_answer
from sqlagent.safety import Policy
from sqlagent.training import (
    DEFAULT_AGENT,
    DataReport,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    lora_parameters,
    plan,
    prepare,
    record_tokens,
)
from tests.conftest import ROOT, SPIDER

DEMO_SUITE = ROOT / "eval" / "demo" / "suite.jsonl"
needs_spider = pytest.mark.skipif(
    not (SPIDER / "dev.json").is_file(), reason="../shared/data/spider-dev is absent"
)


@pytest.fixture(scope="module")
def demo_records() -> list[dict[str, Any]]:
    return build_records(items_from_suite("jsonl", DEMO_SUITE))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _agent(url: str, policy: Policy | None = None, **settings: Any) -> SQLAgent:
    config = AgentConfig.from_mapping({**DEFAULT_AGENT, **settings, "database": url})
    return SQLAgent(config, llm=MockLLM(responses={}), policy=policy, audit=MemoryAuditSink())


def test_demo_suite_records_use_the_runtime_prompt(demo_records: list[dict[str, Any]]) -> None:
    items = items_from_suite("jsonl", DEMO_SUITE)
    assert len(demo_records) == len(items) > 0
    with _agent(items[0].url) as agent:
        for item, record in zip(items, demo_records, strict=True):
            expected = agent.prompt_for(item.question)
            assert record["messages"] == [m.to_dict() for m in expected]
            assert record["completion"] == render_answer(item.sql)
            assert record["prompt_format"] == PROMPT_FORMAT_VERSION
            assert (record["db_id"], record["question"], record["sql"]) == (
                "hr",
                item.question,
                item.sql,
            )
            assert record["url"].endswith("/hr.sqlite")
    # the runtime's defaults: sample values of low-cardinality columns are in the schema
    assert "-- e.g. 'Engineering'" in demo_records[0]["messages"][1]["content"]


def test_role_view_hides_columns_and_marks_masked_ones(demo_db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{demo_db}"
    suite = _write_jsonl(
        tmp_path / "suite.jsonl",
        [
            {"question": "How many employees?", "sql": "SELECT COUNT(*) FROM employees",
             "database": str(demo_db), "role": role}
            for role in ("viewer", "analyst", "admin")
        ],
    )  # fmt: skip
    policy = Policy.from_text(demo_policy_text())
    viewer, analyst, admin = (
        r["messages"][1]["content"]
        for r in build_records(items_from_suite("jsonl", suite), policy=policy)
    )
    assert "national_id" not in viewer
    assert "salary" not in viewer
    assert "payroll" not in viewer
    assert "salary" in analyst
    assert "masked for you" in analyst
    assert "national_id" not in analyst
    assert "national_id" in admin
    assert "masked for you" not in admin
    # exactly what the agent prompts for that role
    with _agent(url, policy) as agent:
        expected = agent.prompt_for("How many employees?", role="analyst")
    assert analyst == expected[1].content


def test_example_store_items_never_see_their_own_answer(demo_db: Path, tmp_path: Path) -> None:
    store = _write_jsonl(
        tmp_path / "examples.jsonl",
        [
            {"question": "How many projects?", "sql": "SELECT COUNT(*) FROM projects"},
            {"question": "How many departments?", "sql": "SELECT COUNT(*) FROM departments"},
        ],
    )
    url = f"sqlite:///{demo_db}"
    items = items_from_examples(store, url)
    assert items[0] == TrainItem("How many projects?", "SELECT COUNT(*) FROM projects", "hr", url)
    agent = AgentConfig.from_mapping(
        {"database": url, "examples": str(store), "retrieval": DEFAULT_AGENT["retrieval"]}
    )
    projects, departments = build_records(items, agent=agent)
    # few-shot examples come from the store, as at run time, minus the item's own question
    assert "How many departments?" in projects["messages"][1]["content"]
    assert "SELECT COUNT(*) FROM projects" not in projects["messages"][1]["content"]
    assert "How many projects?" in departments["messages"][1]["content"]
    assert "SELECT COUNT(*) FROM departments" not in departments["messages"][1]["content"]
    with _agent(url, examples=str(store)) as runtime:
        assert (
            runtime.prompt_for("How many projects?")[1].content
            != projects["messages"][1]["content"]
        )  # at run time the stored answer is shown; training leaves it out


def test_dedup_length_and_split_counts(demo_records: list[dict[str, Any]]) -> None:
    first = demo_records[0]
    dup = {**first, "question": "  " + first["question"].upper().rstrip("?") + " "}
    other_db = {**first, "db_id": "elsewhere"}  # same question, another database: kept
    records = [*demo_records, dup, other_db]
    sizes = sorted(record_tokens(r) for r in demo_records)
    limit = sizes[len(sizes) // 2]
    too_long = sum(1 for r in records if record_tokens(r) > limit) - (
        record_tokens(first) > limit  # the dropped duplicate is not counted twice
    )
    data = prepare(records, max_tokens=limit, validation=0.25, seed=1)
    report = data.report
    assert report.loaded == len(records)
    assert report.duplicates == 1
    assert report.too_long == too_long > 0
    kept = len(records) - 1 - too_long
    assert report.train + report.validation == kept
    assert report.validation == int(kept * 0.25)
    assert all(record_tokens(r) <= limit for r in data.train + data.validation)
    assert report.train_tokens == sum(record_tokens(r) for r in data.train)
    chars = prepare(records, max_chars=1, validation=0).report
    assert chars.too_long == len(records) - 1
    assert chars.train == 0
    # an exact tokenizer replaces the approximation
    by_chars = prepare(records, max_tokens=10**9, count=len, validation=0)
    assert by_chars.report.train_tokens == sum(record_tokens(r, len) for r in by_chars.train)


def test_split_is_deterministic_by_seed(demo_records: list[dict[str, Any]]) -> None:
    def questions(seed: int) -> list[str]:
        return [r["question"] for r in prepare(demo_records, validation=0.3, seed=seed).validation]

    assert questions(7) == questions(7)
    assert any(questions(7) != questions(s) for s in range(8, 12))


def test_split_by_database_keeps_databases_apart(demo_records: list[dict[str, Any]]) -> None:
    records = [{**r, "db_id": f"db{i % 4}"} for i, r in enumerate(demo_records)]
    data = prepare(records, validation=0.25, split_by="database", seed=3)
    train_dbs = {r["db_id"] for r in data.train}
    val_dbs = {r["db_id"] for r in data.validation}
    assert len(val_dbs) == 1
    assert not train_dbs & val_dbs
    assert len(data.train) + len(data.validation) == len(records)
    again = prepare(records, validation=0.25, split_by="database", seed=3)
    assert again.validation == data.validation


def test_report_prints_a_table() -> None:
    from rich.console import Console

    console = Console(record=True, width=80)
    DataReport(10, 2, 1, 6, 1, 1234).print(console)
    text = console.export_text()
    assert "duplicates dropped" in text
    assert "1234" in text


def test_plan_arithmetic(demo_records: list[dict[str, Any]]) -> None:
    p = plan(demo_records[:10], demo_records[10:12], epochs=3, batch_size=4, grad_accum=2)
    assert p.steps == 4  # ceil(10 * 3 / 8)
    assert (p.train_examples, p.validation_examples) == (10, 2)
    assert p.train_tokens == sum(
        count_tokens(m["content"]) for r in demo_records[:10] for m in r["messages"]
    ) + sum(count_tokens(r["completion"]) for r in demo_records[:10])
    assert p.weight_bytes is None
    assert p.memory_estimate_bytes is None
    config = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 100,
    }
    # q: 8*(64+64), k and v: 8*(64+32), o: 8*(64+64) per layer
    attention = ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert lora_parameters(config, 8, attention) == 2 * 8 * (128 + 96 + 96 + 128)
    # the default: the 7 projections, gate/up 8*(64+128) and down 8*(128+64) more
    assert lora_parameters(config, 8) == 2 * 8 * (128 + 96 + 96 + 128 + 3 * 192)
    q = plan(demo_records, parameters=1_000_000, dtype="4bit", config=config, lora_r=8)
    assert q.weight_bytes == 500_000
    assert q.memory_estimate_bytes == 500_000 + 16 * lora_parameters(config, 8)
    with pytest.raises(ConfigError, match="at least 1"):
        plan(demo_records, batch_size=0)


@needs_spider
def test_spider_dev_records() -> None:
    items = items_from_suite("spider", SPIDER, limit=40)
    records = build_records(items)
    assert len(records) == 40
    with _agent(items[0].url) as agent:
        expected = agent.prompt_for(items[0].question)
    assert records[0]["messages"] == [m.to_dict() for m in expected]
    data = prepare(records, validation=0.2, split_by="database", seed=0)
    assert data.report.train + data.report.validation + data.report.duplicates == 40
