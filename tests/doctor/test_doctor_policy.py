"""``doctor check`` reads the role policy: a broken one blocks, naming the file and the line, and
names the catalog lacks are reported with "did you mean"; ``Policy.check_names`` underneath."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sqlagent.catalog import Catalog
from sqlagent.cli import main
from sqlagent.config import AgentConfig
from sqlagent.demo import write_demo
from sqlagent.doctor import CheckContext, run_checks
from sqlagent.doctor._check import check_policy
from sqlagent.safety import Policy


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write_demo(tmp_path / "demo").config


def policy_rows(
    config: Path, policy_text: str, name: str = "policy.yaml"
) -> list[tuple[str, str, str, bool]]:
    (config.parent / name).write_text(policy_text, encoding="utf-8")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["policy"] = name
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    agent_config = AgentConfig.from_file(config)
    ctx = CheckContext(config=agent_config, config_path=config, database=agent_config.database)
    return [(r.name, r.status, r.detail, r.blocking) for r in check_policy(ctx)]


GOOD = """\
default_role: viewer
roles:
  viewer:
    tables:
      departments: ["*"]
      employees: [id, first_name]
"""


def test_a_sound_policy_passes_and_its_names_are_checked(demo: Path) -> None:
    rows = policy_rows(demo, GOOD)
    assert rows[0][:2] == ("policy", "pass")
    assert "1 role(s), default viewer" in rows[0][2]
    assert rows[1][:2] == ("policy names", "pass")
    assert "(5 tables)" in rows[1][2]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # YAML syntax: the parser's position.
        (
            "default_role: viewer\nroles:\n  viewer:\n    tables: [departments\n",
            5,
            "not valid YAML",
        ),
        ("default_role: viewer\nroles:\n  viewer:\n   tables:\n  bad indent\n", 6, "not valid"),
        # The format: the line of the key the message names.
        (GOOD.replace("    tables:", "    tabels:"), 4, "unknown key(s) tabels"),
        (
            GOOD.replace("first_name]", "first_name]\n    inherits: [boss]"),
            7,
            "unknown role 'boss'",
        ),
        (GOOD.replace("default_role: viewer", "default_role: root"), 1, "'root' is not defined"),
        (GOOD.replace("employees: [id, first_name]", "employees: {id: 1}"), 6, "employees must be"),
        (GOOD + "surprise: 1\n", 7, "unknown policy key(s): surprise"),
    ],
)
def test_a_broken_policy_blocks_naming_file_and_line(
    demo: Path, text: str, line: int, words: str
) -> None:
    rows = policy_rows(demo, text)
    assert len(rows) == 1
    name, status, detail, blocking = rows[0]
    assert (name, status, blocking) == ("policy", "fail", True)
    assert detail.startswith(f"{demo.parent / 'policy.yaml'}, line {line}: ")
    assert words in detail


def test_a_broken_json_policy_names_its_line(demo: Path) -> None:
    rows = policy_rows(demo, '{"default_role": "viewer",\n "roles": {\n  "viewer": }\n}', "p.json")
    assert (rows[0][1], rows[0][3]) == ("fail", True)
    assert rows[0][2].startswith(f"{demo.parent / 'p.json'}, line 3: ")


def test_a_missing_policy_file_blocks(demo: Path) -> None:
    data = yaml.safe_load(demo.read_text(encoding="utf-8"))
    data["policy"] = "gone.yaml"
    demo.write_text(yaml.safe_dump(data), encoding="utf-8")
    report = run_checks(AgentConfig.from_file(demo), config_path=demo)
    assert not report.ok
    assert [c.name for c in report.blocking] == ["policy"]
    assert "gone.yaml" in report.blocking[0].detail


def test_unknown_names_are_warnings_with_their_line_and_suggestions(demo: Path) -> None:
    text = GOOD.replace(
        "employees: [id, first_name]",
        "employes: [id]\n      employees:\n        - id\n        - frist_name",
    )
    text += "    masked:\n      payrol: [bonus]\n      employees: [salry]\n"
    rows = policy_rows(demo, text)
    assert rows[0][:2] == ("policy", "pass")
    names = [r for r in rows if r[0] == "policy names"]
    assert all(r[1] == "warn" and not r[3] for r in names)
    path = demo.parent / "policy.yaml"
    assert [r[2] for r in names] == [
        f"{path}, line 6: role 'viewer' (tables) names table 'employes', which is not in the "
        "catalog; did you mean 'employees'?",
        f"{path}, line 9: role 'viewer' (tables) names column 'frist_name' of table "
        "'employees', which is not in the catalog; did you mean 'first_name', 'last_name'?",
        f"{path}, line 11: role 'viewer' (masked) names table 'payrol', which is not in the "
        "catalog; did you mean 'payroll'?",
        f"{path}, line 12: role 'viewer' (masked) names column 'salry' of table 'employees', "
        "which is not in the catalog; did you mean 'salary'?",
    ]
    report = run_checks(AgentConfig.from_file(demo), config_path=demo)
    assert report.ok  # a misspelt grant grants nothing: worth a warning, not a blocker


def test_without_a_database_the_names_are_not_checked(demo: Path) -> None:
    config = AgentConfig.from_file(demo)
    rows = check_policy(CheckContext(config=config, config_path=demo, database=None))
    assert [(r.name, r.status) for r in rows] == [("policy", "pass"), ("policy names", "skip")]
    assert check_policy(CheckContext())[0].status == "skip"
    single = config.model_copy(update={"policy": None})
    assert "single-user" in check_policy(CheckContext(config=single))[0].detail


def test_doctor_check_cli_exit_status_follows_the_policy(demo: Path) -> None:
    (demo.parent / "policy.yaml").write_text("default_role: x\nroles: [\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["doctor", "check", "--config", str(demo), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    row = next(c for c in data["checks"] if c["check"] == "policy")
    assert row["status"] == "fail"
    assert row["blocking"]
    assert "policy.yaml, line 3" in row["detail"]


def test_check_names_follows_the_dialects_rules() -> None:
    catalog = Catalog.from_mapping(
        {"Orders": {"Id": "integer", "Total": "numeric"}, "items": {"id": "integer"}}
    )
    policy = Policy.from_mapping(
        {
            "default_role": "r",
            "roles": {
                "r": {
                    "tables": {
                        "orders": ["id", "totl"],
                        "items": ["*"],
                        "*": ["id", "nothing"],
                        "information_schema.tables": ["table_name"],
                        "pg_class": ["relname"],
                    }
                }
            },
        }
    )
    mysql = [(i.table, i.column, i.suggestions) for i in policy.check_names(catalog, "mysql")]
    assert mysql == [  # names compare case-insensitively; pg_class is no MySQL relation
        ("orders", "totl", ("Total",)),
        ("*", "nothing", ()),
        ("pg_class", None, ()),
    ]
    sqlite = [(i.table, i.column) for i in policy.check_names(catalog, "sqlite")]
    assert sqlite == [("orders", "totl"), ("*", "nothing"), ("pg_class", None)]
    postgres = [(i.table, i.column) for i in policy.check_names(catalog, "postgres")]
    assert ("orders", None) in postgres  # quoted "Orders" is not orders; pg_class is a system view
    assert all(i[0] != "pg_class" for i in postgres)
