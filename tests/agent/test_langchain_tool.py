"""The agent as a LangChain tool: the role is bound by the caller, the model only asks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import DemoPaths
from tests.agent.conftest import config_for

pytest.importorskip("langchain_core")

from sqlagent.langchain import as_tool

pytestmark = pytest.mark.slow  # LangChain itself takes ~2.5 s to import


@pytest.fixture(scope="module")
def agent(demo: DemoPaths) -> Iterator[SQLAgent]:
    with SQLAgent(config_for(demo), audit=MemoryAuditSink()) as built:
        yield built


def test_tool_answers_and_exposes_only_the_question(agent: SQLAgent) -> None:
    tool = as_tool(agent, role="analyst")
    assert set(tool.args) == {"question"}  # no way for a model to choose a role
    result = json.loads(tool.invoke({"question": "How many employees are in each department?"}))
    assert result["status"] == "answered"
    assert result["columns"] == ["name", "employee_count"]
    assert ["Engineering", 18] in result["rows"]


def test_tool_reports_refusals_and_runs_async(agent: SQLAgent) -> None:
    tool = as_tool(agent, role="viewer", max_rows=2)
    refused = json.loads(tool.invoke({"question": "Who are the five highest-paid employees?"}))
    assert refused["status"] == "rejected"
    assert refused["denied"] is True
    assert "salary" in refused["refused"][0]
    text = asyncio.run(tool.ainvoke({"question": "Which projects are still ongoing?"}))
    result = json.loads(text)
    assert result["status"] == "answered"
    assert len(result["rows"]) == 2
    assert result["note"] == "more rows exist than are shown"
