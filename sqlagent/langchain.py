"""The agent inside LangChain: a tool (and so a Runnable) that answers database questions.

    from sqlagent.langchain import as_tool
    tool = as_tool(agent, role="analyst")      # role from YOUR authentication, fixed here
    tool.invoke({"question": "How many employees are in each department?"})

The tool's only argument is the question. The role is bound when the tool is made, from the
caller's verified identity: a model choosing tool arguments can never pick a wider role. Every
call goes through :meth:`SQLAgent.ask`, so validation, policy, read-only execution and the audit
event all apply. Needs the ``langchain`` extra (langchain-core), imported only when called.

For the other direction (any LangChain chat model as sqlagent's LLM) see
:class:`sqlagent.llm.LangChainLLM`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlagent.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from sqlagent.agent import SQLAgent
    from sqlagent.types import Answer

__all__ = ["as_tool", "tool_result"]

_DESCRIPTION = (
    "Answers a question about the {dialect} database by writing and running one read-only SQL "
    "query. Input: the question in plain language. Output: JSON with the SQL that ran, the "
    "columns and rows, or why the question was refused."
)


def tool_result(answer: Answer, *, max_rows: int = 50) -> str:
    """The JSON text a tool returns to a model: enough to answer, small enough for a context."""
    data: dict[str, Any] = {"status": answer.status, "sql": answer.sql}
    if answer.ok:
        data["columns"] = list(answer.columns)
        data["rows"] = [list(r) for r in answer.rows[:max_rows]]
        data["row_count"] = answer.row_count
        if answer.row_count > max_rows or answer.truncated:
            data["note"] = "more rows exist than are shown"
        if answer.masked_columns:
            data["masked_columns"] = list(answer.masked_columns)
    elif answer.verdict is not None and not answer.verdict.allowed:
        data["refused"] = [v.message for v in answer.verdict.violations]
        data["denied"] = answer.denied
    else:
        data["error"] = answer.error
    return json.dumps(data, ensure_ascii=False, default=str)


def as_tool(
    agent: SQLAgent,
    *,
    role: str | None,
    name: str = "query_database",
    description: str | None = None,
    max_rows: int = 50,
) -> BaseTool:
    """A LangChain ``StructuredTool`` answering questions through ``agent`` as ``role``.

    ``role`` is required (``None`` explicitly means the policy's default role) so that binding
    it is a decision, not an accident.
    """
    try:
        from langchain_core.tools import StructuredTool
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "the LangChain tool needs langchain-core: pip install 'sqlagent[langchain]'"
        ) from exc

    def query_database(question: str) -> str:
        return tool_result(agent.ask(question, role=role), max_rows=max_rows)

    async def aquery_database(question: str) -> str:
        return tool_result(await agent.aask(question, role=role), max_rows=max_rows)

    return StructuredTool.from_function(
        func=query_database,
        coroutine=aquery_database,
        name=name,
        description=description or _DESCRIPTION.format(dialect=agent.dialect),
    )
