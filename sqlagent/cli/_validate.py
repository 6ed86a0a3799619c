"""``sqlagent validate``: judge one statement and print the verdict.

Contract (scripts depend on it): exit 0 allowed, 1 rejected, 2 usage or configuration error;
``--json`` prints exactly one object ``{"allowed", "sql", "violations", "tables", "columns", ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

import click
from rich.console import Console

from sqlagent.audit import Auditor, AuditSink, LoggingAuditSink, open_audit_sink, verdict_event
from sqlagent.catalog import Catalog, reflect_catalog
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors, warn_about_role
from sqlagent.cli._output import console, line, text
from sqlagent.dialects import dialect_from_url, resolve_dialect
from sqlagent.errors import ConfigError
from sqlagent.safety import Guard, Policy, SafetyConfig
from sqlagent.settings import read_config_file
from sqlagent.types import Verdict

__all__ = ["validate"]


def _load_config(
    path: str | None, allow: tuple[str, ...], max_rows: int | None, dialect: str
) -> SafetyConfig:
    """The safety options of ``path`` (its ``safety:`` section, or the whole file), with the
    command line's on top."""
    config = SafetyConfig()
    if path:
        loaded = read_config_file(path)
        if "database" in loaded:  # an agent config: the options are its safety section
            section = loaded.get("safety") or {}
        else:
            section = loaded.get("safety", loaded)
        if not isinstance(section, Mapping):
            raise ConfigError(f"config file {path}: 'safety' must be a mapping")
        config = SafetyConfig.from_mapping(section)
    funcs = dict(config.allowed_functions)
    funcs[dialect] = funcs.get(dialect, frozenset()) | {a.lower() for a in allow}
    return config.model_copy(
        update={
            "max_rows": max_rows if max_rows is not None else config.max_rows,
            "allowed_functions": funcs,
        }
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
    help="Safety options (YAML, JSON or TOML): an agent config's safety section, or the file.",
)
@click.option(
    "--audit-log",
    metavar="FILE_OR_URL",
    help="Append the decision to this hash-chained audit log: a JSONL file, or a database URL "
    "(one chain in a table).",
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
        sinks.append(open_audit_sink(audit_log))
    with Auditor(sinks, on_sink_error="fail" if on_audit_error == "fail" else "warn") as auditor:
        guard = Guard(dialect=dialect, catalog=catalog, policy=policy, config=config)
        start = time.perf_counter()
        verdict = guard.check(sql, role=role)
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        auditor.emit(verdict_event(verdict, role=role, latency_ms=latency_ms))

    if as_json:
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        _print_human(verdict, console())
    sys.exit(EXIT_OK if verdict.allowed else EXIT_REJECTED)
