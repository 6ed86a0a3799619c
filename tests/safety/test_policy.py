"""The policy file format (a public contract) and how roles resolve against a catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlagent import Catalog, Policy, PolicyError

EXAMPLE = """
default_role: viewer          # used for requests with no role or an unknown role: deny by default
roles:
  viewer:
    tables:                   # table -> readable columns; "*" = all columns
      employees: [id, name, department_id]
      departments: ["*"]
  analyst:
    inherits: [viewer]        # union of the parents' grants plus this role's own
    tables:
      employees: [salary]
    masked:                   # readable only as a masked value
      employees: [salary]
  admin:
    tables:
      "*": ["*"]
"""

CATALOG = Catalog.from_mapping(
    {
        "employees": {"id": "INT", "name": "TEXT", "salary": "INT", "department_id": "INT",
                      "national_id": "TEXT"},
        "departments": {"id": "INT", "name": "TEXT"},
        "payroll": {"employee_id": "INT", "gross_pay": "INT"},
    }
)  # fmt: skip


def test_issue_example_parses_and_resolves() -> None:
    policy = Policy.from_text(EXAMPLE)
    viewer = policy.access("viewer", CATALOG, "sqlite")
    assert viewer.visible == {
        "employees": frozenset({"id", "name", "department_id"}),
        "departments": frozenset({"id", "name"}),
    }
    assert not viewer.masked
    analyst = policy.access("analyst", CATALOG, "sqlite")
    assert analyst.visible["employees"] == {"id", "name", "department_id", "salary"}
    assert analyst.masked == {("employees", "salary")}
    admin = policy.access("admin", CATALOG, "sqlite")
    assert set(admin.visible) == {"employees", "departments", "payroll"}
    assert admin.visible["employees"] == set(CATALOG.table("employees").column_names)  # type: ignore[union-attr]


def test_unknown_or_missing_role_gets_default_role() -> None:
    policy = Policy.from_text(EXAMPLE)
    assert policy.resolve_role(None) == "viewer"
    assert policy.resolve_role("root") == "viewer"
    assert policy.access("root", CATALOG, "sqlite").role == "viewer"


def test_role_filtered_catalog_hides_everything_not_granted() -> None:
    policy = Policy.from_text(EXAMPLE)
    filtered = policy.access("viewer", CATALOG, "sqlite").catalog(CATALOG)
    assert filtered.table_names == ("employees", "departments")
    assert filtered.table("employees").column_names == ("id", "name", "department_id")  # type: ignore[union-attr]


def test_masks_are_inherited_and_stay_masked() -> None:
    policy = Policy.from_mapping(
        {
            "default_role": "a",
            "roles": {
                "a": {"masked": {"employees": ["salary"]}},
                "b": {"inherits": ["a"], "tables": {"employees": ["salary", "id"]}},
            },
        }
    )
    b = policy.access("b", CATALOG, "sqlite")
    assert ("employees", "salary") in b.masked
    assert b.visible["employees"] == {"salary", "id"}


def test_masked_only_column_is_readable_masked() -> None:
    policy = Policy.from_mapping(
        {"default_role": "r", "roles": {"r": {"masked": {"employees": ["national_id"]}}}}
    )
    access = policy.access("r", CATALOG, "sqlite")
    assert access.visible == {"employees": frozenset({"national_id"})}
    assert access.masked == {("employees", "national_id")}


def test_star_table_never_grants_system_catalogs() -> None:
    policy = Policy.from_text(EXAMPLE)
    admin = policy.access("admin", CATALOG, "sqlite")
    assert "sqlite_master" not in admin.visible
    assert not admin.system
    explicit = Policy.from_mapping(
        {"default_role": "r", "roles": {"r": {"tables": {"sqlite_master": ["name"]}}}}
    ).access("r", CATALOG, "sqlite")
    assert explicit.system == {"sqlite_master": frozenset({"name"})}


def test_names_follow_dialect_case_rules() -> None:
    catalog = Catalog.from_mapping({"Invoice": {"Total": "NUMERIC", "id": "INT"}})
    policy = Policy.from_mapping(
        {"default_role": "r", "roles": {"r": {"tables": {"invoice": ["total"]}}}}
    )
    # SQLite ignores case: the grant matches the real spelling.
    assert policy.access("r", catalog, "sqlite").visible == {"Invoice": frozenset({"Total"})}
    # PostgreSQL names are exact: "invoice" is another table, so nothing is granted.
    pg = policy.access("r", catalog, "postgres")
    assert pg.visible == {}
    assert any("invoice" in note for note in pg.notes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "mapping"),
        ({"roles": {"a": {}}}, "default_role"),
        ({"default_role": "x", "roles": {"a": {}}}, "not defined"),
        ({"default_role": "a", "roles": {}}, "roles"),
        ({"default_role": "a", "roles": {"a": {"inherit": ["b"]}}}, "unknown key"),
        ({"default_role": "a", "roles": {"a": {"inherits": ["b"]}}}, "unknown role"),
        ({"default_role": "a", "roles": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}},
         "cycle"),
        ({"default_role": "a", "roles": {"a": {"tables": ["employees"]}}}, "map table names"),
        ({"default_role": "a", "roles": {"a": {"tables": {"employees": [1]}}}}, "list of column"),
        ({"default_role": "a", "roles": {"a": []}}, "must be a mapping"),
        ({"default_role": "a", "roles": {"a": {}}, "version": 2}, "unknown policy key"),
    ],
)  # fmt: skip
def test_invalid_policies_are_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_mapping(data)


def test_policy_files_yaml_and_json(tmp_path: Path) -> None:
    yml = tmp_path / "p.yaml"
    yml.write_text(EXAMPLE)
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"default_role": "v", "roles": {"v": {"tables": {"t": ["*"]}}}}))
    assert Policy.from_file(yml).default_role == "viewer"
    assert Policy.from_file(js).roles["v"].tables == {"t": ("*",)}
    with pytest.raises(PolicyError, match="not found"):
        Policy.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles: [unclosed")
    with pytest.raises(PolicyError, match="not valid"):
        Policy.from_file(bad)
