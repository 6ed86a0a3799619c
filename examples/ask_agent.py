"""The agent end to end on the demo HR database: roles, masking, self-correction, one audit event
per question, and the agent as a LangChain tool.

Run: python examples/ask_agent.py
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlagent import AgentConfig, SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import write_demo
from sqlagent.llm import Message, MockLLM


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))  # hr.sqlite, policy.yaml, sqlagent.yaml, examples, glossary
        # What demo/sqlagent.yaml says, with the dependency-free retrieval for a fast start (the
        # default, "auto", uses MiniLM and chromadb when the retrieval extra is installed).
        config = AgentConfig.from_mapping(
            {
                "database": demo.url,
                "policy": demo.policy,
                "examples": demo.examples,
                "docs": [demo.glossary],
                "retrieval": {"embedder": "hashing", "store": "memory"},
            }
        )
        audit = MemoryAuditSink()

        # 1. The bundled mock answers with the SQL of the most similar stored example.
        with SQLAgent(config, audit=audit) as agent:
            for role in ("hr", "analyst", "viewer"):
                answer = agent.ask("Who are the five highest-paid employees?", role=role)
                print(f"{role}: {answer.status}", end="")
                if answer.ok:
                    print(f", masked {answer.masked_columns}: {answer.rows[0]}")
                else:
                    print(f", denied={answer.denied}: {answer.verdict.summary()}")  # type: ignore[union-attr]

        # 2. Self-correction: a model that misspells a column first, then reads the feedback.
        def model(messages: Sequence[Message]) -> str:
            if messages[-1].role == "user" and "cannot be used" in messages[-1].content:
                return "```sql\nSELECT name, location FROM departments ORDER BY name\n```"
            return "SELECT nmae, location FROM departments"

        with SQLAgent(config, llm=MockLLM(function=model), audit=audit) as agent:
            answer = agent.ask("Where is each department?", role="viewer")
            for attempt in answer.attempts:
                codes = [str(c) for c in attempt.verdict.codes] if attempt.verdict else []
                print(f"attempt {attempt.number}: {attempt.sql!r} -> {codes or 'ran'}")
            print(f"{answer.row_count} rows; audit id {answer.audit_id}")

            # 3. The same agent as a LangChain tool; the role is bound here, never by the model.
            try:
                from sqlagent.langchain import as_tool

                tool = as_tool(agent, role="viewer")
                print(
                    "tool:",
                    json.loads(tool.invoke({"question": "Where is each department?"}))["status"],
                )
            except ImportError:
                print("langchain-core is not installed: skipping the tool")

        # Exactly one audit event per question, whatever happened.
        print(f"{len(audit.events)} audit events:", [e.verdict for e in audit.events])


if __name__ == "__main__":
    main()
