"""Shared CLI plumbing: exit codes and turning sqlagent errors into clean messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from sqlagent.errors import ConfigError, SqlAgentError

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map sqlagent errors to a one-line message and exit code; never a traceback for user input."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except SqlAgentError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_REJECTED)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper
