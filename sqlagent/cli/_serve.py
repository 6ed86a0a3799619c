"""``sqlagent serve``: the agent behind an HTTP API, with uvicorn (the ``serve`` extra).

FastAPI and uvicorn are imported when the command runs, never when the CLI loads, so the core
install keeps working; without them the command exits 2 and says what to install.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from sqlagent.cli._ask import agent_options, load_agent_config, model_options, require_a_model
from sqlagent.cli._common import EXIT_USAGE, handle_errors
from sqlagent.cli._output import echo

if TYPE_CHECKING:
    from sqlagent.serve import ServeSettings

__all__ = ["serve", "serve_settings"]

_INSTALL = "pip install 'sqlagent[serve]'"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@click.command()
@agent_options
@model_options
@click.option(
    "--serve-config",
    "serve_config",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Serve config (YAML/JSON): API keys, JWT, limits. Plain keys: $SQLAGENT_API_KEYS.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@handle_errors
def serve(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None,
    model: str | None,
    serve_config: str | None,
    host: str,
    port: int,
    log_level: str,
) -> None:
    """Serve the agent over HTTP: POST /v1/chat, POST /v1/chat/completions (OpenAI-compatible),
    GET /health, /ready and /metrics.

    Each request's role comes from its API key or JWT, never from the request. One process
    serves one agent; run more replicas to scale. Exit status 2 on a configuration error.
    """
    try:
        import uvicorn

        from sqlagent.serve import create_app
    except ImportError as exc:
        echo(f"error: sqlagent serve needs the serve extra: {_INSTALL} ({exc})", err=True)
        sys.exit(EXIT_USAGE)
    from sqlagent.agent import SQLAgent

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    config = load_agent_config(config_file, db_url, policy_file, llm_spec, model)
    settings = serve_settings(serve_config, host)
    agent = SQLAgent(config)
    try:
        require_a_model(agent.llm)
        app = create_app(agent, settings)
    except BaseException:
        agent.close()
        raise
    # The app's lifespan closes the agent (and its audit sinks) when uvicorn shuts down.
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def serve_settings(serve_config: str | None, host: str) -> ServeSettings:
    """The serve settings (the file, plus ``$SQLAGENT_API_KEYS`` and the other variables), with
    a warning on stderr when every request would be refused, or when requests without a
    credential are let in on an interface other than loopback. Shared by ``sqlagent serve``
    and ``sqlagent mcp --transport http``; needs the serve extra."""
    from sqlagent.serve import ServeSettings

    if serve_config is not None:
        settings = ServeSettings.from_file(serve_config, environ=os.environ)
    else:
        settings = ServeSettings.from_mapping({}, environ=os.environ)
    if not settings.keys and settings.jwt is None and settings.default_role is None:
        echo(
            "warning: no API keys, JWT or default_role configured: every request will get 401",
            err=True,
        )
    if settings.default_role is not None and host not in _LOOPBACK:
        echo(
            f"warning: requests without a credential get role {settings.default_role!r} on {host}",
            err=True,
        )
    return settings
