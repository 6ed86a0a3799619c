"""Loading suites (Spider and JSONL) and predictions files, and their errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sqlagent.errors import ConfigError
from sqlagent.evaluation import load_predictions, load_suite
from tests.conftest import SPIDER
from tests.evaluation.conftest import needs_spider


def _write(path: Path, *rows: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@needs_spider
@pytest.mark.slow
def test_spider_suite_loads_with_hardness() -> None:
    items = load_suite("spider", SPIDER, limit=5)
    assert [i.index for i in items] == [0, 1, 2, 3, 4]
    assert items[0].db_id == "concert_singer"
    assert items[0].gold == "SELECT count(*) FROM singer"
    assert Path(items[0].db_path).is_file()
    assert items[0].hardness == "easy"
    assert load_suite("spider", SPIDER / "dev.json", limit=1)[0].question == items[0].question


def test_jsonl_suite_resolves_paths_relative_to_the_file(tmp_path: Path, demo_db: Path) -> None:
    (tmp_path / "dbs").mkdir()
    db = tmp_path / "dbs" / "hr.sqlite"
    db.write_bytes(demo_db.read_bytes())
    suite = _write(
        tmp_path / "s.jsonl",
        {"question": "q1", "sql": "SELECT 1", "database": "dbs/hr.sqlite", "tags": ["a"]},
        {"question": "q2", "sql": "SELECT 2", "database": f"sqlite:///{db}", "role": "analyst"},
    )
    items = load_suite("jsonl", suite)
    assert [i.db_path for i in items] == [str(db.resolve())] * 2
    assert items[0].tags == ("a",)
    assert items[0].db_id == "hr"
    assert items[1].role == "analyst"
    assert items[1].index == 1


def test_demo_database_is_built_once(demo_suite: Path) -> None:
    items = load_suite("jsonl", demo_suite)
    assert 15 <= len(items) <= 20
    assert len({i.db_path for i in items}) == 1
    assert Path(items[0].db_path).is_file()


def test_demo_suite_gold_runs_with_rows(demo_suite: Path) -> None:
    items = load_suite("jsonl", demo_suite)
    con = sqlite3.connect(items[0].db_path)
    try:
        for item in items:
            assert con.execute(item.gold).fetchall(), item.question
    finally:
        con.close()


def test_demo_suite_paraphrases_the_demo_questions(demo_suite: Path) -> None:
    from sqlagent.demo import DEMO_QUESTIONS

    asked = {q.question.lower() for q in DEMO_QUESTIONS}
    assert not asked & {i.question.lower() for i in load_suite("jsonl", demo_suite)}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"question": "q", "sql": "SELECT 1"}', "missing database"),
        ('{"question": "q", "sql": "SELECT 1", "database": "nope.sqlite"}', "not found"),
        ('{"question": "q", "sql": "S", "database": "postgresql://h/db"}', "only SQLite"),
        ('{"question": "q", "sql": "S", "database": "demo", "tags": "x"}', "tags"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    suite = tmp_path / "s.jsonl"
    suite.write_text("# comment\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_suite("jsonl", suite)
    assert "s.jsonl:2" in str(info.value)


def test_empty_and_missing_suites(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no questions"):
        load_suite("jsonl", tmp_path / "e.jsonl")
    with pytest.raises(ConfigError, match="cannot read"):
        load_suite("jsonl", tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="cannot read"):
        load_suite("spider", tmp_path)
    (tmp_path / "dev.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON list"):
        load_suite("spider", tmp_path)
    (tmp_path / "dev.json").write_text(
        json.dumps([{"db_id": "x", "question": "q", "query": "SELECT 1"}]), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="not found"):
        load_suite("spider", tmp_path)


def test_predictions_file(tmp_path: Path) -> None:
    p = tmp_path / "pred.sql"
    p.write_text("SELECT 1\tdb\nSELECT 2\n\n", encoding="utf-8")
    assert load_predictions(p, 2) == ["SELECT 1", "SELECT 2"]
    assert load_predictions(p, 1) == ["SELECT 1"]
    with pytest.raises(ConfigError, match="2 predictions for 3"):
        load_predictions(p, 3)
    with pytest.raises(ConfigError, match="cannot read"):
        load_predictions(tmp_path / "none.sql", 1)
