"""``sqlagent mcp``: the guarded database as a Model Context Protocol server (the ``mcp`` extra).

    import anyio
    from sqlagent import SQLAgent
    from sqlagent.mcp import create_server, run_stdio

    agent = SQLAgent.from_file("sqlagent.yaml")
    anyio.run(run_stdio, create_server(agent, role="analyst"))

Six read-only tools (``list_tables``, ``describe_table``, ``search_schema``, ``validate_sql``,
``run_sql``, ``ask``) over the agent's own steps, so an MCP client gets exactly what the role's
policy allows: hidden tables and columns never appear, masked ones read as a mask, only SQL the
guard allows runs, on a read-only connection. Each tool call records exactly one audit event.
Over stdio one role serves the whole session; over HTTP (:func:`create_http_app`) the role of
each request comes from its API key or JWT, as in ``sqlagent serve``. See docs/mcp.md.

Importing this package imports the MCP SDK; ``sqlagent`` and ``sqlagent.cli`` never import it.
"""

from sqlagent.mcp._http import MCP_PATH, create_http_app
from sqlagent.mcp._server import SERVER_NAME, create_server, run_stdio
from sqlagent.mcp._tools import DEFAULT_MAX_ROWS, TOOL_NAMES

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MCP_PATH",
    "SERVER_NAME",
    "TOOL_NAMES",
    "create_http_app",
    "create_server",
    "run_stdio",
]
