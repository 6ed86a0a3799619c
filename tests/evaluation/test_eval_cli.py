"""``sqlagent eval`` and ``sqlagent eval compare`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.cli import main
from sqlagent.evaluation import load_suite
from tests.conftest import SPIDER
from tests.evaluation.conftest import needs_spider


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@needs_spider
@pytest.mark.slow
def test_spider_limit_20_with_gold_predictions_is_100_percent(tmp_path: Path) -> None:
    dev = json.loads((SPIDER / "dev.json").read_text(encoding="utf-8"))
    pred = tmp_path / "pred.sql"
    pred.write_text("".join(e["query"] + "\n" for e in dev[:20]), encoding="utf-8")
    out = tmp_path / "out"
    code, output = run(
        "eval", "--suite", "spider", "--data", str(SPIDER), "--predictions", str(pred),
        "--limit", "20", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(data["items"]) == 20
    assert data["summary"]["overall"]["exec_match"] == 1.0
    assert data["summary"]["overall"]["exec_match_spider"] == 1.0
    assert data["meta"]["mode"] == "predictions"
    assert {"easy", "medium"} <= set(data["summary"]["by_difficulty"])
    assert (out / "summary.md").is_file()
    assert (out / "report.html").is_file()


@needs_spider
@pytest.mark.slow
def test_spider_compat_flag_sets_the_headline(tmp_path: Path) -> None:
    pred = tmp_path / "pred.sql"
    pred.write_text("SELECT count(*) FROM singer\nSELECT 1\n", encoding="utf-8")
    out = tmp_path / "o"
    code, _ = run(
        "eval", "--suite", "spider", "--data", str(SPIDER), "--predictions", str(pred),
        "--limit", "2", "--compat", "spider", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["compat"] == "spider"
    assert [i["exec_match"] for i in data["items"]] == [True, False]


@pytest.mark.slow
def test_demo_oracle_run_and_compare(demo_suite: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.sql"
    gold.write_text("".join(i.gold + "\n" for i in load_suite("jsonl", demo_suite)), "utf-8")
    a, b = tmp_path / "a", tmp_path / "b"
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--predictions", str(gold),
        "--out", str(a),
    )  # fmt: skip
    assert code == 0, output
    assert "exec 100.0%" in output
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--llm", "mock", "--out", str(b)
    )
    assert code == 0, output
    assert json.loads((b / "results.json").read_text(encoding="utf-8"))["meta"]["oracle"] is True
    code, output = run("eval", "compare", str(a), str(b / "results.json"))
    assert code == 0
    assert "overall" in output
    assert "changed" in output


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--suite", "jsonl", "--data", "x.jsonl"],
        ["--suite", "jsonl", "--data", "x.jsonl", "--out", "o"],
        ["--suite", "xml", "--data", "x", "--out", "o", "--llm", "mock"],
        ["--suite", "jsonl", "--data", "x", "--out", "o", "--llm", "mock", "--predictions", "p"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, output = run("eval", *args)
    assert code == 2
    assert "Traceback" not in output


def test_bad_files_exit_2_without_traceback(tmp_path: Path, demo_suite: Path) -> None:
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(tmp_path / "none.jsonl"), "--llm", "mock",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "cannot read suite" in output
    short = tmp_path / "p.sql"
    short.write_text("SELECT 1\n", encoding="utf-8")
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--predictions", str(short),
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "predictions for" in output
    (tmp_path / "junk.json").write_text("[]", encoding="utf-8")
    code, output = run("eval", "compare", str(tmp_path / "junk.json"), str(tmp_path / "junk.json"))
    assert code == 2
    assert "not an eval results file" in output


def test_items_that_could_not_run_exit_1(tmp_path: Path, demo_suite: Path) -> None:
    # nothing listens on port 9: the agent gets no SQL for any item
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--limit", "2",
        "--llm", "openai:http://127.0.0.1:9/v1", "--model", "m", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 1, output
    assert "2 item(s) could not be run" in output
    data = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    assert all(i["predicted"] is None and i["error"] for i in data["items"])


@needs_spider
@pytest.mark.slow
def test_spider_oracle_agent_run(tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, output = run(
        "eval", "--suite", "spider", "--data", str(SPIDER), "--llm", "mock", "--limit", "20",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    assert "oracle sanity run" in output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["overall"]["exec_match"] == 1.0
    assert data["summary"]["table_recall"] == 1.0
    assert all(i["tokens"] > 0 and i["validated"] for i in data["items"])


@pytest.mark.slow
def test_the_demo_mock_over_stored_examples_answers_no_suite_question(
    demo_suite: Path, tmp_path: Path
) -> None:
    # The demo's model: the mock over the demo's stored examples. None of them answers a suite
    # question, so every item fails (exit 1) rather than get a wrong query; with no threshold
    # (the mock as it was) every item got some stored query, and none was right.
    from sqlagent.demo import write_demo

    examples = write_demo(tmp_path / "demo").examples
    honest, guessing = tmp_path / "honest", tmp_path / "guessing"
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--llm", "mock",
        "--examples", str(examples), "--workers", "1", "--out", str(honest),
    )  # fmt: skip
    assert code == 1, output
    assert "18 item(s) could not be run" in output
    data = json.loads((honest / "results.json").read_text(encoding="utf-8"))
    assert data["meta"]["oracle"] is False
    assert data["meta"]["mock_min_similarity"] == 0.9
    assert all(i["predicted"] is None for i in data["items"])
    assert all("no stored example matches" in i["error"] for i in data["items"])
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--llm", "mock",
        "--examples", str(examples), "--mock-min-similarity", "0", "--workers", "1",
        "--out", str(guessing),
    )  # fmt: skip
    assert code == 0, output
    data = json.loads((guessing / "results.json").read_text(encoding="utf-8"))
    assert all(i["predicted"] for i in data["items"])
    assert data["summary"]["overall"]["exec_match"] == 0.0


@pytest.mark.parametrize(
    "args",
    [
        ["--predictions", "p.sql", "--examples", "e.jsonl"],
        ["--llm", "openai:http://127.0.0.1:9/v1", "--examples", "e.jsonl"],
        ["--llm", "mock", "--mock-min-similarity", "0.5"],
        ["--llm", "mock", "--examples", "e.jsonl", "--mock-min-similarity", "2"],
    ],
)
def test_examples_options_go_with_the_mock(args: list[str], tmp_path: Path) -> None:
    code, output = run(
        "eval", "--suite", "jsonl", "--data", "x.jsonl", "--out", str(tmp_path / "o"), *args
    )
    assert code == 2, output


def test_summary_md_says_n_a_never_none(demo_suite: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.sql"
    gold.write_text("".join(i.gold + "\n" for i in load_suite("jsonl", demo_suite)), "utf-8")
    out = tmp_path / "o"
    code, output = run(
        "eval", "--suite", "jsonl", "--data", str(demo_suite), "--predictions", str(gold),
        "--workers", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "None" not in summary
    assert "- latency p50/p95 (ms): n/a / n/a" in summary  # predictions: nothing was timed
    assert "- tokens: n/a" in summary
    assert "- retrieval recall of gold tables: n/a" in summary
    assert "- outcome categories: correct 18" in summary
    assert "- gold sanity flags: none" in summary
