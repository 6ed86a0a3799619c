"""The MCP server: the agent's steps as six read-only tools, each call audited exactly once.

A call goes: who is calling (the stdio session's role, or the HTTP request's verified
credential) -> arguments checked against the tool's schema -> the agent step, in a worker
thread -> one audit event -> the JSON result, or a tool error (``isError``) with a message a
model can act on. ``validate_sql``, ``run_sql`` and ``ask`` are audited by the agent itself
(events ``validate``, ``run_sql``, ``ask``); the other tools, and every call that fails before
reaching the agent (an unknown tool, bad arguments), record one event named ``mcp``. Each event's
``extra`` holds ``interface: "mcp"``, the tool, the transport and the MCP client's name.

Built on the SDK's low-level server rather than FastMCP: the schemas are our own pydantic
models, and nothing here reads ``FASTMCP_*`` variables or a ``.env`` file, or configures
logging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from io import TextIOWrapper
from typing import IO, TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread
import pydantic
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from sqlagent.audit import AuditEvent, new_request_id
from sqlagent.errors import AuditError, ConfigError, SQLAgentError
from sqlagent.mcp._tools import (
    DEFAULT_MAX_QUESTION_CHARS,
    DEFAULT_MAX_ROWS,
    TOOLS,
    AskArgs,
    DescribeTableArgs,
    RunSQLArgs,
    SearchSchemaArgs,
    SQLArgs,
    ToolError,
    ToolSpec,
    answer_result,
    describe,
    query_result,
    schema_search,
    table_list,
    tool_definitions,
    validation,
)

if TYPE_CHECKING:
    from sqlagent.agent import SQLAgent

__all__ = ["SERVER_NAME", "Caller", "Identify", "build_server", "create_server", "run_stdio"]

_log = logging.getLogger("sqlagent.mcp")

SERVER_NAME = "sqlagent"
_INSTRUCTIONS = (
    "Read-only SQL over one database, for one role. Start with list_tables or search_schema, "
    "check SQL with validate_sql, run it with run_sql (one SELECT; refused SQL comes back as an "
    "error that says what to use instead). Hidden tables and columns are never shown; masked "
    "columns may be selected (they read '***') but never filtered, joined or sorted on."
)
_UNAUDITED = "the call could not be audited, so its result is withheld"

Transport = Literal["stdio", "http"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who one tool call runs as: ``role`` for the policy (``None``: the policy's default role,
    or single-user mode), ``name`` and ``via`` for the audit trail (HTTP credentials)."""

    role: str | None
    name: str | None = None
    via: str | None = None


#: Finds the caller of one request from the HTTP request that carried it (``None`` over stdio);
#: raises :class:`ToolError` when there is none, so a call without an identity fails closed.
Identify = Callable[[Any], Caller]


def create_server(
    agent: SQLAgent, *, role: str | None = None, ask_unavailable: str | None = None
) -> Server[Any, Any]:
    """An MCP server over ``agent`` in which every call runs as ``role`` (the stdio case: one
    user, one role for the whole session; ``None``: the policy's default role).

    ``ask_unavailable`` is the error the ``ask`` tool answers with instead of asking (the
    configured model cannot answer anything); the tool stays listed either way. Raises
    :class:`~sqlagent.errors.ConfigError` when ``role`` is not a role of the policy, or when a
    role is given and the agent has no policy. Run it with :func:`run_stdio`, or with any MCP
    transport (``server.run(read, write, server.create_initialization_options())``).
    """
    caller = Caller(resolve_role(agent, role))
    return build_server(
        agent, lambda _request: caller, transport="stdio", ask_unavailable=ask_unavailable
    )


def resolve_role(agent: SQLAgent, role: str | None) -> str | None:
    """``role`` checked against the policy; ``None`` becomes the policy's default role."""
    policy = agent.policy
    if policy is None:
        if role is not None:
            raise ConfigError(
                f"role {role!r} given, but the agent has no role policy (configure 'policy:')"
            )
        return None
    if role is None:
        return policy.default_role
    if role not in policy.roles:
        raise ConfigError(
            f"role {role!r} is not defined in the policy (roles: {', '.join(sorted(policy.roles))})"
        )
    return role


def build_server(
    agent: SQLAgent,
    identify: Identify,
    *,
    transport: Transport,
    ask_unavailable: str | None = None,
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
    ask_concurrency: int = 1,
) -> Server[Any, Any]:
    """The low-level server with the six tools; ``identify`` says who each call runs as.

    ``ask`` calls run ``ask_concurrency`` at a time (a local model answers one prompt at a
    time); the other tools run in worker threads without a limit of their own.
    """
    tools = _Tools(
        agent,
        identify,
        transport=transport,
        ask_unavailable=ask_unavailable,
        max_question_chars=max_question_chars,
        ask_limiter=anyio.CapacityLimiter(ask_concurrency),
    )
    server: Server[Any, Any] = Server(SERVER_NAME, version=_version(), instructions=_INSTRUCTIONS)
    definitions = tool_definitions()

    # Registered as plain request handlers: the SDK's decorators are untyped, and its call_tool
    # decorator would validate arguments itself, answering bad ones without an audit event.
    async def list_tools(_request: types.ListToolsRequest) -> types.ServerResult:
        return types.ServerResult(types.ListToolsResult(tools=definitions))

    async def call_tool(request: types.CallToolRequest) -> types.ServerResult:
        params = request.params
        context = server.request_context
        try:
            # Shielded: a client that cancels or hangs up does not stop a call halfway, which
            # could leave it without its audit event; it finishes, and the reply is dropped.
            with anyio.CancelScope(shield=True):
                result = await tools.call(params.name, params.arguments or {}, context)
        except Exception as exc:  # a bug: answer in the documented shape, log the details
            result = _error(_describe(exc))
        return types.ServerResult(result)

    server.request_handlers[types.ListToolsRequest] = list_tools
    server.request_handlers[types.CallToolRequest] = call_tool
    return server


async def run_stdio(
    server: Server[Any, Any], *, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None
) -> None:
    """Serve ``server`` over stdio until the client closes stdin.

    ``stdout`` is where protocol messages go (default: the process's stdout); nothing else may
    be written there, which is why ``sqlagent mcp`` hands over a duplicate of file descriptor
    1 and points 1 at stderr before anything else runs.
    """
    wrapped_in = None
    if stdin is not None:
        wrapped_in = anyio.wrap_file(TextIOWrapper(stdin, encoding="utf-8", errors="replace"))
    wrapped_out = anyio.wrap_file(TextIOWrapper(stdout, encoding="utf-8")) if stdout else None
    async with stdio_server(wrapped_in, wrapped_out) as (read, write):
        await server.run(read, write, server.create_initialization_options())


@dataclass(slots=True)
class _Call:
    """One tool call while it runs: what its audit event needs. ``caller`` is ``None`` until
    the call's identity is known (and stays so when there is none)."""

    tool: str
    context: dict[str, Any]  # the audit fields every event of this call carries
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    caller: Caller | None = None


class _Tools:
    def __init__(
        self,
        agent: SQLAgent,
        identify: Identify,
        *,
        transport: Transport,
        ask_unavailable: str | None,
        max_question_chars: int,
        ask_limiter: anyio.CapacityLimiter,
    ) -> None:
        self.agent = agent
        self.identify = identify
        self.transport = transport
        self.ask_unavailable = ask_unavailable
        self.max_question_chars = max_question_chars
        self.ask_limiter = ask_limiter
        self.specs = {spec.name: spec for spec in TOOLS}
        self.handlers: dict[str, Callable[[_Call, Any], Awaitable[types.CallToolResult]]] = {
            "list_tables": self._list_tables,
            "describe_table": self._describe_table,
            "search_schema": self._search_schema,
            "validate_sql": self._validate_sql,
            "run_sql": self._run_sql,
            "ask": self._ask,
        }

    async def call(
        self, name: str, arguments: Mapping[str, Any], request_context: Any
    ) -> types.CallToolResult:
        """One tool call, start to finish: exactly one audit event, then the result (or, when
        that event could not be recorded, an error instead of the result)."""
        call = _Call(name, _context(name, self.transport, request_context), new_request_id())
        try:
            return await self._dispatch(call, arguments, getattr(request_context, "request", None))
        except AuditError as exc:
            _log.error("audit failed: result withheld", exc_info=exc)
            return _error(_UNAUDITED)

    async def _dispatch(
        self, call: _Call, arguments: Mapping[str, Any], request: Any
    ) -> types.CallToolResult:
        try:
            call.caller = self.identify(request)
        except ToolError as exc:
            return await self._refuse(call, str(exc), {})
        if call.caller.name is not None:
            call.context["caller"] = call.caller.name
            call.context["via"] = call.caller.via
        spec = self.specs.get(call.tool)
        if spec is None:
            known = ", ".join(self.specs)
            return await self._refuse(
                call, f"unknown tool {call.tool!r} (tools: {known})", arguments
            )
        try:
            args = _parse(spec, arguments)
        except ToolError as exc:
            return await self._refuse(call, str(exc), arguments)
        return await self.handlers[call.tool](call, args)

    # -- the tools ---------------------------------------------------------------------------------
    async def _list_tables(self, call: _Call, _args: Any) -> types.CallToolResult:
        return await self._own(call, {}, lambda: table_list(self.agent.view(_role(call))))

    async def _describe_table(self, call: _Call, args: DescribeTableArgs) -> types.CallToolResult:
        def work() -> pydantic.BaseModel:
            return describe(self.agent.view(_role(call)), args.table, self.agent.dialect)

        return await self._own(call, {"table": args.table}, work)

    async def _search_schema(self, call: _Call, args: SearchSchemaArgs) -> types.CallToolResult:
        arguments = {"question": args.question, "k": args.k}

        def work() -> pydantic.BaseModel:
            self._check_question(args.question)
            view = self.agent.view(_role(call))
            found = self.agent.search_schema(args.question, role=_role(call), k=args.k)
            return schema_search(view, found, self.agent.dialect)

        return await self._own(call, arguments, work, question=args.question)

    async def _validate_sql(self, call: _Call, args: SQLArgs) -> types.CallToolResult:
        try:
            verdict = await anyio.to_thread.run_sync(
                lambda: self.agent.check_sql(
                    args.sql,
                    role=_role(call),
                    request_id=call.request_id,
                    audit_context=call.context,
                )
            )
        except AuditError:
            raise
        except Exception as exc:  # check_sql audits once it has a verdict; this is before that
            return await self._refuse(call, _describe(exc), {}, sql=args.sql)
        return _result(validation(verdict, call.request_id))

    async def _run_sql(self, call: _Call, args: RunSQLArgs) -> types.CallToolResult:
        max_rows = args.max_rows if args.max_rows is not None else DEFAULT_MAX_ROWS
        context = {**call.context, "max_rows": max_rows}
        answer = await anyio.to_thread.run_sync(
            lambda: self.agent.run_sql(
                args.sql,
                role=_role(call),
                max_rows=max_rows,
                request_id=call.request_id,
                audit_context=context,
            )
        )
        if answer.status == "rejected" and answer.verdict is not None:
            return _error(answer.verdict.feedback())
        if answer.status == "failed":
            return _error(f"The database could not run the query: {answer.error}")
        return _result(query_result(answer))

    async def _ask(self, call: _Call, args: AskArgs) -> types.CallToolResult:
        if self.ask_unavailable is not None:
            return await self._refuse(call, self.ask_unavailable, {}, question=args.question)
        try:
            self._check_question(args.question)
        except ToolError as exc:
            return await self._refuse(call, str(exc), {}, question=args.question)
        answer = await anyio.to_thread.run_sync(
            lambda: self.agent.ask(
                args.question,
                role=_role(call),
                request_id=call.request_id,
                audit_context=call.context,
            ),
            limiter=self.ask_limiter,
        )
        if answer.status == "rejected" and answer.verdict is not None:
            who = f" for role {answer.role!r}" if answer.role else ""
            lines = [f"Refused{who}: every SQL the model wrote broke the rules."]
            lines += [f"- {v.message}" for v in answer.verdict.violations]
            return _error("\n".join(lines))
        if answer.status == "failed":
            return _error(f"The question could not be answered: {answer.error}")
        return _result(answer_result(answer))

    # -- checks and the mcp event -----------------------------------------------------------------
    def _check_question(self, question: str) -> None:
        if not question.strip():
            raise ToolError("the question is empty: ask something")
        if len(question) > self.max_question_chars:
            raise ToolError(f"the question is longer than {self.max_question_chars} characters")

    async def _own(
        self,
        call: _Call,
        arguments: dict[str, Any],
        work: Callable[[], pydantic.BaseModel],
        *,
        question: str | None = None,
    ) -> types.CallToolResult:
        """Run ``work`` in a thread and record the call's one event (name ``mcp``)."""
        try:
            out = await anyio.to_thread.run_sync(work)
        except (ToolError, SQLAgentError) as exc:
            return await self._refuse(call, str(exc), arguments, question=question)
        except Exception as exc:  # a bug: still one event, and an error in the documented shape
            return await self._refuse(call, _describe(exc), arguments, question=question)
        await self._emit(call, "allowed", arguments, question=question)
        return _result(out)

    async def _refuse(
        self,
        call: _Call,
        message: str,
        arguments: Mapping[str, Any],
        *,
        question: str | None = None,
        sql: str | None = None,
    ) -> types.CallToolResult:
        """The call's one event for a call that ends in a tool error outside the agent."""
        await self._emit(call, "error", arguments, question=question, sql=sql, error=message)
        return _error(message)

    async def _emit(
        self,
        call: _Call,
        verdict: str,
        arguments: Mapping[str, Any],
        *,
        question: str | None = None,
        sql: str | None = None,
        error: str | None = None,
    ) -> None:
        extra = dict(call.context)
        if arguments:
            extra["arguments"] = _bounded(arguments)
        agent = self.agent
        role = _role(call)
        if call.caller is not None and agent.policy is not None:
            role = agent.policy.resolve_role(role)  # the role the call ran as
        event = AuditEvent(
            name="mcp",
            verdict=verdict,
            request_id=call.request_id,
            role=role,
            policy_mode="policy" if agent.policy is not None else "single_user",
            dialect=agent.dialect,
            question=question,
            sql_in=sql,
            latency_ms=round((time.perf_counter() - call.started) * 1000, 3),
            error=error,
            extra=extra,
        )
        await anyio.to_thread.run_sync(agent.auditor.emit, event)


def _parse(spec: ToolSpec, arguments: Mapping[str, Any]) -> Any:
    if "role" in arguments:
        raise ToolError(
            "'role' is not an argument: the role comes from the server's session or credential"
        )
    try:
        return spec.args.model_validate(dict(arguments))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        raise ToolError(f"invalid arguments for {spec.name}: {problems}") from None


def _context(tool: str, transport: Transport, request_context: Any) -> dict[str, Any]:
    """The audit fields every event of this call carries."""
    session = getattr(request_context, "session", None)
    params = getattr(session, "client_params", None)
    info = getattr(params, "clientInfo", None)
    context: dict[str, Any] = {
        "interface": "mcp",
        "tool": tool,
        "transport": transport,
        "client": getattr(info, "name", None),
    }
    version = getattr(info, "version", None)
    if version:
        context["client_version"] = version
    return context


def _role(call: _Call) -> str | None:
    return call.caller.role if call.caller is not None else None


def _result(out: pydantic.BaseModel) -> types.CallToolResult:
    data = out.model_dump(mode="json")
    text = pydantic.TypeAdapter(dict[str, Any]).dump_json(data).decode()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structuredContent=data
    )


def _error(message: str) -> types.CallToolResult:
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=message)]
    return types.CallToolResult(content=content, isError=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SQLAgentError):
        return str(exc)
    _log.error("unexpected error in an MCP tool", exc_info=exc)
    return f"internal error: {type(exc).__name__}"


def _bounded(arguments: Mapping[str, Any], limit: int = 2000) -> dict[str, Any]:
    """The call's arguments for the audit event, long strings cut to ``limit`` characters."""
    out: dict[str, Any] = {}
    for key, value in list(arguments.items())[:20]:
        if isinstance(value, str) and len(value) > limit:
            value = value[:limit] + "..."
        elif not isinstance(value, str | int | float | bool | None):
            value = repr(value)[:limit]
        out[str(key)[:100]] = value
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sqlagent")
    except PackageNotFoundError:  # pragma: no cover - a source checkout that was not installed
        return "0"
