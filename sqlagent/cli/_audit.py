"""``sqlagent audit``: commands over audit logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from sqlagent.audit import verify_chain
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors
from sqlagent.cli._output import echo

__all__ = ["audit"]

_HASH = re.compile(r"[0-9a-f]{64}")


def _check_head(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _HASH.fullmatch(value.lower()):
        raise click.BadParameter("must be 64 hexadecimal digits (a head printed by verify)")
    return value.lower() if value is not None else None


@click.group()
def audit() -> None:
    """Inspect audit logs."""


@audit.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--expect-head",
    metavar="HASH",
    callback=_check_head,
    help="A head recorded earlier; report 'truncated' if it is no longer in the file.",
)
@click.pass_context
@handle_errors
def verify(ctx: click.Context, file: Path, as_json: bool, expect_head: str | None) -> None:
    """Verify the hash chain of a JSONL audit log written by JsonlAuditSink.

    Exits 0 when every line is intact and in place, 1 when a problem is found (one line per
    problem: line number, kind, explanation), 2 when FILE cannot be read.
    """
    report = verify_chain(file, expected_head=expect_head)
    if as_json:
        payload = {
            "ok": report.ok,
            "lines": report.lines,
            "head": report.head,
            "problems": [
                {"line": p.line, "kind": p.kind, "message": p.message} for p in report.problems
            ],
        }
        click.echo(json.dumps(payload))
    elif report.ok:
        echo(f"OK: {report.lines} lines, head {report.head}")
    else:
        for problem in report.problems:
            echo(f"line {problem.line}: {problem.kind}: {problem.message}")
        echo(f"FAILED: {len(report.problems)} problem(s) in {report.lines} lines", err=True)
    ctx.exit(EXIT_OK if report.ok else EXIT_REJECTED)
