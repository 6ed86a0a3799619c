"""``sqlagent validate``: judge one statement and print the verdict.

Contract (scripts depend on it): exit 0 allowed, 1 rejected, 2 usage or configuration error;
``--json`` prints exactly one object ``{"allowed", "sql", "violations", "tables", "columns", ...}``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click
import yaml
from rich.console import Console

from sqlagent.audit import Auditor, AuditSink, JsonlAuditSink, LoggingAuditSink
from sqlagent.catalog import Catalog, reflect_catalog
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors, warn_about_role
from sqlagent.cli._output import console, line, text
from sqlagent.config import SafetyConfig
from sqlagent.dialects import dialect_from_url, resolve_dialect
from sqlagent.errors import ConfigError
from sqlagent.safety import Guard, Policy
from sqlagent.types import Verdict

__all__ = ["validate"]


def _load_config(
    path: str | None, allow: tuple[str, ...], max_rows: int | None, dialect: str
) -> SafetyConfig:
    data: dict[str, object] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        section = loaded.get("safety", loaded)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {path}: 'safety' must be a mapping")
        data.update(section)
    config = SafetyConfig.from_mapping(data)
    funcs = dict(config.allowed_functions)
    funcs[dialect] = funcs.get(dialect, frozenset()) | {a.lower() for a in allow}
    return dataclasses.replace(
        config,
        max_rows=max_rows if max_rows is not None else config.max_rows,
        allowed_functions=funcs,
    )


def _print_human(verdict: Verdict, out: Console) -> None:
    if verdict.allowed:
        out.print(
            line(
                ("ALLOWED", "bold green"),
                f" (role {verdict.role})" if verdict.role else " (single-user mode: no policy)",
            )
        )
        assert verdict.sql is not None
        out.print(text(verdict.sql, multiline=True))
        if verdict.masked_columns:
            out.print(line("masked: ", ", ".join(verdict.masked_columns)))
        return
    out.print(line(("REJECTED", "bold red"), f" (role {verdict.role})" if verdict.role else ""))
    for v in verdict.violations:
        hint = f" Did you mean: {', '.join(v.suggestions)}?" if v.suggestions else ""
        out.print(line("  ", (v.code, "yellow"), ": ", v.message, hint))


@click.command()
@click.argument("sql")
@click.option(
    "--dialect",
    "-d",
    help="sqlite, postgres, mysql (mariadb) or oracle. Default: from --db, else sqlite.",
)
@click.option("--db", "db_url", metavar="URL", help="SQLAlchemy URL whose catalog grounds the SQL.")
@click.option(
    "--schema",
    "schema_file",
    metavar="FILE.json",
    type=click.Path(dir_okay=False),
    help='JSON schema {"table": {"column": "type"}}.',
)
@click.option(
    "--policy",
    "policy_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Role policy (YAML or JSON). Without one: single-user mode.",
)
@click.option("--role", "-r", help="Role to check as (unknown or absent: the default role).")
@click.option("--max-rows", type=click.IntRange(min=1), help="Cap the result with LIMIT/FETCH.")
@click.option(
    "--allow-function",
    "allow",
    multiple=True,
    metavar="NAME",
    help="Extra function name to allow for this dialect (repeatable).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="YAML with safety options (max_rows, allowed_functions, mask_value).",
)
@click.option(
    "--audit-log",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Append the decision to this hash-chained JSONL audit log.",
)
@click.option(
    "--on-audit-error",
    type=click.Choice(["fail", "warn"]),
    default="fail",
    show_default=True,
    help="What to do when the audit log cannot be written.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def validate(
    sql: str,
    dialect: str | None,
    db_url: str | None,
    schema_file: str | None,
    policy_file: str | None,
    role: str | None,
    max_rows: int | None,
    allow: tuple[str, ...],
    config_file: str | None,
    audit_log: str | None,
    on_audit_error: str,
    as_json: bool,
) -> None:
    """Check that SQL is one read-only query, grounded in the catalog and allowed for ROLE.

    SQL is the statement, or - to read it from standard input.
    Exit status: 0 allowed, 1 rejected, 2 usage or configuration error.
    """
    if sql == "-":
        sql = sys.stdin.read()
    if db_url and schema_file:
        raise ConfigError("use either --db or --schema, not both")
    if db_url:
        url_dialect = dialect_from_url(db_url)
        if dialect and resolve_dialect(dialect) != url_dialect:
            raise ConfigError(f"--dialect {dialect} does not match the --db URL ({url_dialect})")
        dialect = url_dialect
    dialect = resolve_dialect(dialect or "sqlite")
    catalog: Catalog | None = None
    if db_url:
        catalog = reflect_catalog(db_url)
    elif schema_file:
        catalog = Catalog.from_json(schema_file)
    policy = Policy.from_file(policy_file) if policy_file else None
    config = _load_config(config_file, allow, max_rows, dialect)
    warn_about_role(role, policy)

    sinks: list[AuditSink] = [LoggingAuditSink()]
    if audit_log:
        sinks.append(JsonlAuditSink(audit_log))
    with Auditor(sinks, on_sink_error="fail" if on_audit_error == "fail" else "warn") as auditor:
        guard = Guard(dialect=dialect, catalog=catalog, policy=policy, config=config, audit=auditor)
        verdict = guard.check(sql, role=role)

    if as_json:
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        _print_human(verdict, console())
    sys.exit(EXIT_OK if verdict.allowed else EXIT_REJECTED)
