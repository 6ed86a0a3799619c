"""``sqlagent audit``: commands over audit logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from sqlagent.audit import ChainReport, is_audit_url, verify_chain, verify_sql_chain
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, handle_errors
from sqlagent.cli._output import echo
from sqlagent.errors import AuditError

__all__ = ["audit"]

_HASH = re.compile(r"[0-9a-f]{64}")


def _check_head(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _HASH.fullmatch(value.lower()):
        raise click.BadParameter("must be 64 hexadecimal digits (a head printed by verify)")
    return value.lower() if value is not None else None


def _check_target(ctx: click.Context, param: click.Parameter, value: str) -> Path | str:
    """A database URL stays a string; anything else must be a readable file."""
    if is_audit_url(value):
        return value
    file = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
    path: Path = file.convert(value, param, ctx)
    return path


@click.group()
def audit() -> None:
    """Inspect audit logs."""


@audit.command()
@click.argument("target", metavar="FILE_OR_URL", callback=_check_target)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--expect-head",
    metavar="HASH",
    callback=_check_head,
    help="A head recorded earlier; report 'truncated' if it is no longer in the log.",
)
@click.pass_context
@handle_errors
def verify(ctx: click.Context, target: Path | str, as_json: bool, expect_head: str | None) -> None:
    """Verify the hash chain of an audit log: a JSONL file written by JsonlAuditSink, or a
    database URL whose table SQLAuditSink wrote (tables from the URL's audit_table and
    audit_head_table keys; default sqlagent_audit and sqlagent_audit_head).

    Exits 0 when every record is intact and in place, 1 when a problem is found (one line per
    problem: the file's line number or the table's row seq, kind, explanation), 2 when the log
    cannot be read.
    """
    if isinstance(target, Path):
        report = verify_chain(target, expected_head=expect_head)
        unit = "line"
    else:
        try:
            report = verify_sql_chain(target, expected_head=expect_head)
        except AuditError as exc:  # unreachable, no such table: the log cannot be read
            echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        unit = "row"
    _print(report, unit, as_json)
    ctx.exit(EXIT_OK if report.ok else EXIT_REJECTED)


def _print(report: ChainReport, unit: str, as_json: bool) -> None:
    """Text or JSON; a table's rows are named by their seq column (``row 5`` is seq 5)."""
    if as_json:
        payload = {
            "ok": report.ok,
            f"{unit}s": report.lines,
            "head": report.head,
            "problems": [
                {unit: p.line, "kind": p.kind, "message": p.message} for p in report.problems
            ],
        }
        click.echo(json.dumps(payload))
    elif report.ok:
        echo(f"OK: {report.lines} {unit}s, head {report.head}")
    else:
        for problem in report.problems:
            echo(f"{unit} {problem.line}: {problem.kind}: {problem.message}")
        echo(f"FAILED: {len(report.problems)} problem(s) in {report.lines} {unit}s", err=True)
