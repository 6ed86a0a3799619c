"""The ``sqlagent`` command line: thin click commands over the public API.

Exit codes everywhere: 0 ok, 1 rejected or failed, 2 usage or configuration error.
"""

from __future__ import annotations

import logging

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sqlagent")
def main() -> None:
    """sqlagent: safe text-to-SQL, enforced on the SQL syntax tree."""
    # sqlglot logs a warning for every statement it cannot parse fully ("falling back to a
    # Command"); the verdict already says why such SQL is refused, so keep the terminal clean.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)


def _register() -> None:
    from sqlagent.cli._ask import ask, examples, index
    from sqlagent.cli._audit import audit
    from sqlagent.cli._demo import demo
    from sqlagent.cli._doctor import doctor
    from sqlagent.cli._eval import eval_group
    from sqlagent.cli._mcp import mcp
    from sqlagent.cli._serve import serve
    from sqlagent.cli._train import train
    from sqlagent.cli._validate import validate

    main.add_command(ask)
    main.add_command(index)
    main.add_command(examples)
    main.add_command(validate)
    main.add_command(audit)
    main.add_command(demo)
    main.add_command(eval_group)
    main.add_command(train)
    main.add_command(doctor)
    main.add_command(serve)
    main.add_command(mcp)


_register()
