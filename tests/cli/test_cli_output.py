"""What the CLI prints for people is the data, verbatim: Rich markup and emoji codes are never
interpreted, control characters are escaped, and nothing raises.

Real SQLite databases hold the awkward values; every command runs through click's CliRunner.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sqlagent.cli import main
from sqlagent.cli._ask import _print_answer
from sqlagent.cli._output import clean, console, line, table, text
from sqlagent.demo import write_demo
from sqlagent.types import Answer, Attempt, ReusedExample

ESC = "\x1b"
#: Values a terminal or Rich would not print as they are.
AWKWARD = [
    "Legal [/b] :x:",  # a closing tag with nothing open: rich.errors.MarkupError
    "Sales [red]",  # a style tag: swallowed
    ":x: and :thumbs_up:",  # emoji codes
    f"{ESC}[31mred{ESC}[0m",  # an ANSI colour
    "two\nlines",  # a newline inside a value
    "bell\x07 cr\r rlo\u202e end",  # BEL, carriage return, right-to-left override
]
#: How each prints: the same characters, control characters escaped as Python writes them.
SHOWN = [
    "Legal [/b] :x:",
    "Sales [red]",
    ":x: and :thumbs_up:",
    "\\x1b[31mred\\x1b[0m",
    "two\\nlines",
    "bell\\x07 cr\\r rlo\\u202e end",
]
QUESTION = "List the [red] departments :x: [/b]"


def invoke(*args: str, width: int = 80) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(width)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_clean(output: str) -> None:
    """No terminal control character and no emoji made from a code reached the output."""
    assert ESC not in output
    assert "\x07" not in output
    assert "\r" not in output
    assert "\u202e" not in output
    assert "❌" not in output
    assert "👍" not in output
    assert "Traceback" not in output


@pytest.fixture
def awkward(tmp_path: Path) -> Path:
    """A folder with a SQLite database of awkward values, an example asking for them, and an
    agent config (mock model, dependency-free retrieval)."""
    folder = tmp_path / "data [red] :x:"
    folder.mkdir()
    with sqlite3.connect(folder / "t.sqlite") as db:
        db.execute("CREATE TABLE depts (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.executemany("INSERT INTO depts VALUES (?, ?)", enumerate(AWKWARD, start=1))
    db.close()
    sql = "SELECT name AS \"[b]name :x:\" FROM depts WHERE name <> ':x: [/b]' ORDER BY id"
    (folder / "examples.jsonl").write_text(json.dumps({"question": QUESTION, "sql": sql}) + "\n")
    config = {
        "database": "sqlite:///t.sqlite",
        "examples": "examples.jsonl",
        "audit_log": "audit.jsonl",
        "retrieval": {"embedder": "hashing", "store": "memory"},
    }
    (folder / "sqlagent.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


# -- the helper ---------------------------------------------------------------------------------


def test_clean_escapes_control_characters_and_keeps_everything_else() -> None:
    assert [clean(v) for v in AWKWARD] == SHOWN
    assert clean("a\nb\tc", multiline=True) == "a\nb\tc"
    assert clean("a\nb\tc") == "a\\nb\\tc"
    assert clean("C:\\temp [x] \u00e9\u4e2d \U0001f600") == "C:\\temp [x] \u00e9\u4e2d \U0001f600"
    assert clean("\x9b\x00\x7f\u2028") == "\\x9b\\x00\\x7f\\u2028"
    assert clean(None) == "None"
    assert clean(12.5) == "12.5"


def test_console_text_line_and_table_print_verbatim() -> None:
    out = console()
    with out.capture() as captured:
        out.print("[bold]plain strings too[/] :x:")  # markup and emoji are off altogether
        out.print(text("Legal [/b] :x:", "bold"))
        out.print(line(("OK", "green"), " ", f"{ESC}[2J", " [red]"))
        grid = table("[b]", "n", title="t [/i]", right=("n",))
        grid.add_row(text("two\nlines"), text(3))
        out.print(grid)
    shown = captured.get()
    assert "[bold]plain strings too[/] :x:" in shown
    assert "Legal [/b] :x:" in shown
    assert "OK \\x1b[2J [red]" in shown
    assert "t [/i]" in shown
    assert "two\\nlines" in shown
    assert_clean(shown)


def test_answer_printing_with_an_awkward_model_name_and_error() -> None:
    name = f"m[/b] :x: {ESC}[31m"
    reused = ReusedExample("Who [red] is :x:?", "SELECT 1", 0.93)
    attempt = Attempt(1, "SELECT 1", "SELECT 1", model=name, reused=reused)
    answers = [
        Answer(QUESTION, "answered", sql="SELECT ':x:'", columns=("[b]",), rows=(("[/b]",),),
               attempts=(attempt,), model=name, reused_example=reused),
        Answer(QUESTION, "failed", attempts=(attempt,), model=name, reused_example=reused,
               error=f"{name} failed [/i]\nsecond line"),
    ]  # fmt: skip
    out = console()
    for answer in answers:
        with out.capture() as captured:
            _print_answer(answer, out)
        shown = captured.get()
        assert "model: m[/b] :x: \\x1b[31m" in shown
        assert '"Who [red] is :x:?" (similarity 0.93)' in shown
        assert_clean(shown)
    assert "failed [/i]\nsecond line" in shown  # an error keeps its lines


# -- the commands ---------------------------------------------------------------------------------


def test_ask_prints_rows_sql_and_columns_verbatim(awkward: Path) -> None:
    code, out, err = invoke("ask", "--config", str(awkward / "sqlagent.yaml"), QUESTION)
    assert code == 0, out + err
    for shown in SHOWN[:4] + SHOWN[5:]:  # the newline one is tested below (a table may fold)
        assert shown in out
    assert "two\\nlines" in out
    assert "[b]name :x:" in out  # the column header
    assert "':x: [/b]'" in out  # the SQL
    assert f'stored question "{QUESTION}"' in out
    assert "6 row(s)" in out
    assert_clean(out)
    code, out, _ = invoke("ask", "--config", str(awkward / "sqlagent.yaml"), "--json", QUESTION)
    assert code == 0
    assert [row[0] for row in json.loads(out)["rows"]] == AWKWARD  # JSON carries the raw values


def test_ask_errors_and_failures_print_verbatim(awkward: Path) -> None:
    config = str(awkward / "sqlagent.yaml")
    code, out, err = invoke("ask", "--config", config, f"weather [/b] :x: {ESC}[5m?")
    assert code == 1
    assert "FAILED" in out
    assert "'weather [/b] :x: \\x1b[5m?'" in out
    assert_clean(out)
    code, out, err = invoke("ask", "--db", f"sqlite:///{awkward}/no [/b] {ESC}[1m.db", QUESTION)
    assert code == 2
    assert "no [/b] \\x1b[1m.db" in err
    assert_clean(err)
    code, out, err = invoke("ask", "--config", config, "--role", f"x[/b]{ESC}", QUESTION)
    assert code == 0
    assert "--role x[/b]\\x1b has no effect" in err  # no policy: single-user mode
    assert_clean(err)


def test_ask_names_an_awkward_model_that_fails(awkward: Path) -> None:
    pytest.importorskip("httpx")
    model = f"m[/b]:x:{ESC}[31m"
    code, out, _ = invoke(
        "ask", "--config", str(awkward / "sqlagent.yaml"),
        "--llm", "openai:http://127.0.0.1:9/v1", "--model", model, QUESTION,
    )  # fmt: skip
    assert code == 1
    assert "FAILED" in out
    assert "m[/b]:x:\\x1b[31m" in out  # nothing listens on port 9: the error names the model
    assert_clean(out)


def test_validate_prints_sql_and_violations_verbatim(awkward: Path) -> None:
    db = f"sqlite:///{awkward / 't.sqlite'}"
    sql = f"SELECT ':x:' AS \"[/b]\", '[red]', '{ESC}[31m' FROM depts"
    code, out, _ = invoke("validate", "--db", db, sql)
    assert code == 0, out
    assert "SELECT ':x:' AS \"[/b]\", '[red]', '\\x1b[31m' FROM depts" in out
    assert_clean(out)
    code, out, _ = invoke("validate", "--db", db, 'SELECT depts."nam [/b] :x:" FROM depts')
    assert code == 1
    assert "unknown_column: Column nam [/b] :x: does not exist in table depts." in out
    assert_clean(out)
    code, out, _ = invoke("validate", "SELECT ':x: [/b]' FROM t WHERE")
    assert code == 1
    assert "parse_error" in out
    assert_clean(out)


def test_eval_and_compare_print_questions_and_paths_verbatim(awkward: Path) -> None:
    suite = awkward / "suite.jsonl"
    items = [
        {"question": QUESTION, "sql": "SELECT name FROM depts", "database": "t.sqlite"},
        {"question": f"{ESC}[31m:x: count", "sql": "SELECT COUNT(*) FROM depts",
         "database": "t.sqlite"},
    ]  # fmt: skip
    suite.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    runs = []
    for name, predictions in (
        ("a [red]", "SELECT 1\nSELECT 1\n"),
        ("b :x:", "SELECT name FROM depts\nSELECT COUNT(*) FROM depts\n"),
    ):
        pred = awkward / f"{name}.sql"
        pred.write_text(predictions, encoding="utf-8")
        out_dir = awkward / f"run {name}"
        code, out, err = invoke(
            "eval", "--suite", "jsonl", "--data", str(suite), "--predictions", str(pred),
            "--workers", "1", "--out", str(out_dir),
        )  # fmt: skip
        assert code == 0, out + err
        assert f"-> {out_dir}" in out
        assert_clean(out)
        runs.append(out_dir)
    code, out, err = invoke("eval", "compare", str(runs[0]), str(runs[1]))
    assert code == 0, out + err
    assert "2 item(s) changed: 2 now correct" in out
    assert f"+ {QUESTION}" in out
    assert "+ \\x1b[31m:x: count" in out
    assert "A=" in out
    assert_clean(out)


@pytest.mark.slow
def test_doctor_check_prints_paths_and_details_verbatim(awkward: Path) -> None:
    config = awkward / "sqlagent.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["policy"] = "policy [b] :x:.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    (awkward / "policy [b] :x:.yaml").write_text(
        "default_role: r\nroles:\n  r:\n    tables:\n      'dept [red]': ['*']\n"
        "      depts: ['nme :x:', nam]\n",
        encoding="utf-8",
    )
    code, out, err = invoke("doctor", "check", "--config", str(config), width=400)
    assert code == 0, out + err
    assert str(config) in out
    assert "role 'r' (tables) names table 'dept [red]', which is not in the catalog" in out
    assert "names column 'nme :x:' of table 'depts'" in out
    assert (
        "names column 'nam' of table 'depts', which is not in the catalog; did you mean 'name'?"
        in out
    )
    assert_clean(out)
    missing = f"sqlite:///{awkward}/no{ESC}[1m [/b].db"
    code, out, err = invoke("doctor", "check", "--config", str(config), "--db", missing, width=400)
    assert code == 1
    assert "\\x1b[1m [/b].db" in out
    assert_clean(out)


def test_demo_init_prints_paths_verbatim(tmp_path: Path) -> None:
    target = tmp_path / f"demo [/b] :x: {ESC}[1m"
    code, out, err = invoke("demo", "init", str(target))
    assert code == 0, out + err
    assert "demo [/b] :x: \\x1b[1m" in out
    assert_clean(out)
    assert (target / "hr.sqlite").is_file()


def test_the_demo_runs_unchanged(tmp_path: Path) -> None:
    paths = write_demo(tmp_path / "demo")
    code, out, _ = invoke("validate", "--db", paths.url, "SELECT name FROM departments")
    assert code == 0
    assert "ALLOWED" in out
