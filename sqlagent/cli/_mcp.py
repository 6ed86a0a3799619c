"""``sqlagent mcp``: the guarded database as an MCP server, over stdio or streamable HTTP.

The MCP SDK (the ``mcp`` extra) is imported when the command runs, never when the CLI loads;
without it the command exits 2 and says what to install. Over stdio, standard output carries
protocol messages only: before anything else runs, file descriptor 1 is kept for the protocol
and everything else that would write there (``print``, a native library) goes to stderr.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import IO

import click

from sqlagent.cli._ask import agent_options, load_agent_config, model_options, require_a_model
from sqlagent.cli._common import EXIT_USAGE, handle_errors
from sqlagent.cli._output import echo
from sqlagent.cli._serve import serve_settings
from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError

__all__ = ["mcp"]

_INSTALL = "pip install 'sqlagent[mcp]'"


@click.command()
@agent_options
@model_options
@click.option(
    "--role",
    "-r",
    help="stdio: the role of the whole session (default: the policy's default role). "
    "Not with --transport http, where each request's credential decides.",
)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio for a local client (Claude Desktop, Cursor); http for streamable HTTP.",
)
@click.option(
    "--serve-config",
    "serve_config",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="http: the serve config (API keys, JWT, limits), as for `sqlagent serve`. "
    "Plain keys: $SQLAGENT_API_KEYS.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: where to listen.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="http: the port (0: a free one, printed on stderr).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Logging on stderr.",
)
@handle_errors
def mcp(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None,
    model: str | None,
    role: str | None,
    transport: str,
    serve_config: str | None,
    host: str,
    port: int,
    log_level: str,
) -> None:
    """Serve the database to MCP clients: list_tables, describe_table, search_schema,
    validate_sql, run_sql and ask, all read-only and checked by the guard.

    stdio: one role for the session (--role). http: streamable HTTP at /mcp, each request's
    role from its API key or JWT (as `sqlagent serve`); no credential gets 401. Every tool call
    records one audit event. Exit status 2 on a configuration error.
    """
    if transport == "http" and role is not None:
        raise click.UsageError(
            "--role is for stdio: over http each request's role comes from its credential"
        )
    if transport == "stdio" and serve_config is not None:
        raise click.UsageError("--serve-config is for --transport http")
    try:
        import sqlagent.mcp  # noqa: F401
    except ImportError as exc:
        echo(f"error: sqlagent mcp needs the mcp extra: {_INSTALL} ({exc})", err=True)
        sys.exit(EXIT_USAGE)
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(), format="%(name)s: %(message)s")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    config = load_agent_config(config_file, db_url, policy_file, llm_spec, model)
    if transport == "stdio":
        with _protocol_stdout() as protocol:
            _serve_stdio(config, role, protocol)
    else:
        _serve_http(config, serve_config, host, port, log_level)


def _serve_stdio(config: AgentConfig, role: str | None, protocol: IO[bytes]) -> None:
    import anyio

    from sqlagent.agent import SQLAgent
    from sqlagent.mcp import create_server, run_stdio

    with SQLAgent(config) as agent:
        if agent.policy is None:
            echo("warning: no role policy: MCP clients may read every table", err=True)
        server = create_server(agent, role=role, ask_unavailable=_ask_unavailable(agent.llm))
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(functools.partial(run_stdio, server, stdout=protocol))


def _serve_http(
    config: AgentConfig, serve_config: str | None, host: str, port: int, log_level: str
) -> None:
    try:
        import uvicorn

        import sqlagent.serve  # noqa: F401  (the serve extra: FastAPI, for the credentials)
    except ImportError as exc:
        echo(f"error: sqlagent mcp --transport http needs: {_INSTALL} ({exc})", err=True)
        sys.exit(EXIT_USAGE)
    from sqlagent.agent import SQLAgent
    from sqlagent.mcp import MCP_PATH, create_http_app

    settings = serve_settings(serve_config, host)
    # mcp 1.30 logs a traceback at ERROR each time a client ends its session (DELETE) while its
    # GET event stream is open: routine, so it is kept out of the operator's log.
    logging.getLogger("mcp.server.streamable_http").addFilter(_SessionEndNoise())
    agent = SQLAgent(config)
    try:
        app = create_http_app(
            agent, settings, host=host, ask_unavailable=_ask_unavailable(agent.llm)
        )
        sock = _listen(host, port)
    except BaseException:
        agent.close()
        raise
    # The app's lifespan closes the agent (and its audit sinks) when uvicorn shuts down.
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    echo(f"sqlagent mcp: streamable HTTP on http://{shown}:{bound}{MCP_PATH}", err=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=5)
    )
    with sock:
        server.run(sockets=[sock])


class _SessionEndNoise(logging.Filter):
    """Drops the SDK's "Error in standalone SSE writer" when the error is only the stream
    being closed at the end of a session."""

    def filter(self, record: logging.LogRecord) -> bool:
        import anyio

        error = record.exc_info[1] if record.exc_info else None
        closed = isinstance(error, anyio.ClosedResourceError | anyio.BrokenResourceError)
        return not (closed and record.getMessage() == "Error in standalone SSE writer")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening now: a client that reads the printed URL and connects before uvicorn has
        # started waits in the backlog instead of being refused.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _ask_unavailable(llm: object) -> str | None:
    """Why ``ask`` cannot answer anything (a lone mock with nothing to repeat), or ``None``:
    the tool stays listed and answers with this error."""
    try:
        require_a_model(llm)
    except ConfigError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def _protocol_stdout() -> Iterator[IO[bytes]]:
    """Keep file descriptor 1 for protocol messages; point 1 (and ``sys.stdout``) at stderr.

    Yields the protocol channel. Where stdout is no real file (a test runner's capture) it is
    yielded as it is.
    """
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        err = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield sys.stdout.buffer
        return
    channel = os.dup(fd)
    os.dup2(err, fd)
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        with open(channel, "wb", closefd=False) as protocol:
            yield protocol
    finally:
        sys.stdout = saved
        os.dup2(channel, fd)
        os.close(channel)
