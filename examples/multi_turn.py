"""A follow-up question: a two-turn conversation on the demo HR database as the analyst role,
and the conversation section the second prompt carries.

Run: python examples/multi_turn.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlagent import AgentConfig, SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.demo import write_demo
from sqlagent.llm import MockLLM
from sqlagent.prompt import question_of

FIRST = "How many employees are in each department?"
FOLLOW_UP = "And only for Engineering?"

# The offline mock cannot read a conversation: it only recalls the SQL stored for a question
# (matched on the prompt's question section, `question_of`). So it is given the answer to the
# follow-up up front. A real model (`llm: transformers:...` or `openai:...`) is shown the same
# prompt, earlier turn included, and writes the follow-up's SQL from that history itself.
ANSWERS = {
    FIRST: (
        "SELECT d.name, COUNT(e.id) AS employees FROM departments AS d "
        "LEFT JOIN employees AS e ON e.department_id = d.id GROUP BY d.id, d.name ORDER BY d.name"
    ),
    FOLLOW_UP: (
        "SELECT d.name, COUNT(e.id) AS employees FROM departments AS d "
        "JOIN employees AS e ON e.department_id = d.id WHERE d.name = 'Engineering' "
        "GROUP BY d.id, d.name"
    ),
}


def conversation_section(prompt: str) -> str:
    """The '### Conversation so far' section of a rendered prompt ('' when it has none)."""
    heading = "### Conversation so far\n"
    if heading not in prompt:
        return ""
    return heading + prompt.partition(heading)[2].partition("\n\n### Question\n")[0]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))  # what `sqlagent demo init` writes
        config = AgentConfig.from_mapping(
            {
                "database": demo.url,
                "policy": demo.policy,
                "retrieval": {"embedder": "hashing", "store": "memory"},  # no model download
            }
        )
        model = MockLLM(responses=ANSWERS, question=question_of)
        with SQLAgent(config, llm=model, audit=MemoryAuditSink()) as agent:
            talk = agent.conversation(role="analyst")  # one role for the whole conversation
            for question in (FIRST, FOLLOW_UP):
                answer = talk.ask(question)
                if not answer.ok:
                    raise SystemExit(f"unexpected: {answer.error or answer.status}")
                # The turn keeps the SQL as the model wrote it; `answer.sql` is the guard's
                # rewrite that ran (the analyst's view of employees, a row cap).
                print(f"Q: {question}\n   wrote: {talk.turns[-1].sql}\n   ran:   {answer.sql}")
                for row in answer.rows:
                    print("  ", row)

            # What the model was shown for the follow-up: the first turn's question and SQL
            # (never its rows), then the new question.
            sent = model.calls[-1]
            print("\nThe follow-up's prompt carried:\n" + conversation_section(sent[1].content))
            print(f"\nconversation {talk.id}: {len(talk.turns)} turns")
            # The same prompt, without a model call (what `sqlagent train` trains on):
            again = agent.prompt_for(FOLLOW_UP, role="analyst", history=talk.turns[:1])
            print("prompt_for renders the same prompt:", again == sent)


if __name__ == "__main__":
    main()
