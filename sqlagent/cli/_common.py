"""Shared CLI plumbing: exit codes and turning sqlagent errors into clean messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sqlagent.cli._output import echo
from sqlagent.errors import ConfigError, SQLAgentError

if TYPE_CHECKING:
    from sqlagent.safety import Policy

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map sqlagent errors to a message (printed verbatim, control characters escaped) and an
    exit code; never a traceback for user input."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except SQLAgentError as exc:
            echo(f"error: {exc}", err=True)
            sys.exit(EXIT_REJECTED)
        except OSError as exc:
            echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def warn_about_role(role: str | None, policy: Policy | None) -> None:
    """On stderr: ``role`` is not one of the policy's, so the default role answers (or there is
    no policy, so roles mean nothing)."""
    if role is None:
        return
    if policy is None:
        echo(f"warning: no policy is configured, so --role {role} has no effect", err=True)
    elif role not in policy.roles:
        echo(
            f"warning: role {role!r} is not defined in the policy; using the default role "
            f"{policy.default_role!r}",
            err=True,
        )
