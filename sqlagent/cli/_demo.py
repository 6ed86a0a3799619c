"""``sqlagent demo``: write the HR demo database and its policy, to try sqlagent in a minute."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from sqlagent.cli._common import handle_errors
from sqlagent.cli._output import echo
from sqlagent.demo import write_demo
from sqlagent.errors import ConfigError

__all__ = ["demo"]

_EXAMPLE_SQL = "SELECT first_name, last_name, salary FROM employees"
_EXAMPLE_QUESTION = "How many employees are in each department?"


@click.group()
def demo() -> None:
    """A small company/HR database with a role policy, for trying sqlagent."""


@demo.command("init")
@click.argument(
    "directory",
    default="demo",
    type=click.Path(file_okay=False, dir_okay=True, path_type=Path),
)
@click.option("--force", is_flag=True, help="Replace the demo files if they already exist.")
@handle_errors
def init(directory: Path, force: bool) -> None:
    """Write the demo into DIRECTORY (default ./demo): hr.sqlite, policy.yaml, sqlagent.yaml
    (an agent config), examples.jsonl and glossary.md."""
    try:
        paths = write_demo(directory, overwrite=force)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (use --force to replace the demo files)") from exc
    command = shlex.join(
        [
            "sqlagent",
            "validate",
            "--db",
            paths.url,
            "--policy",
            str(paths.policy),
            "--role",
            "analyst",
            _EXAMPLE_SQL,
        ]
    )
    echo(f"database: {paths.database}")
    echo(f"policy:   {paths.policy}")
    echo(f"url:      {paths.url}")
    echo("")
    ask = shlex.join(
        ["sqlagent", "ask", "--config", str(paths.config), "--role", "analyst", _EXAMPLE_QUESTION]
    )
    echo(f"config:   {paths.config}")
    echo("")
    echo("Try it (roles: viewer, analyst, hr, admin; analyst sees salary masked):")
    echo(f"  {ask}")
    echo(f"  {command}")
