"""LLM backends behind one small protocol: a mock answering from stored examples, SQL extraction
from a messy answer, a fallback chain from an unreachable server to the mock, and a LangChain chat
model as a backend — the SQL then goes through the safety core like any model output.

Run: python examples/llm_backends.py  (no network: the "server" is a closed local port)
"""

from __future__ import annotations

import socket

from sqlagent import Catalog, check_sql
from sqlagent.llm import FallbackLLM, Message, MockLLM, OpenAICompatibleLLM, extract_sql


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    catalog = Catalog.from_mapping({"employees": {"id": "INT", "name": "TEXT", "dept": "TEXT"}})
    mock = MockLLM(
        examples=[
            ("How many employees are there?", "SELECT count(*) FROM employees"),
            ("List employees in sales", "SELECT name FROM employees WHERE dept = 'sales'"),
        ]
    )
    print(
        extract_sql("Sure! Here it is:\n```sql\nSELECT name FROM employees;\n```\nHope it helps.")
    )

    server = OpenAICompatibleLLM(f"http://127.0.0.1:{closed_port()}/v1", "qwen", timeout_s=1)
    with server:
        chain = FallbackLLM(server, mock)
        answer = chain.complete([Message.user("how many employees do we have")])
        print(f"answered by {chain.last_used}: {answer!r}")
        assert chain.last_used == "mock"
        (sql,) = extract_sql(answer)
        verdict = check_sql(sql, catalog=catalog)
        print(verdict.summary(), "->", verdict.sql)
        assert verdict.allowed

    # Any LangChain chat model is a backend too (here LangChain's own fake model).
    try:
        from langchain_core.language_models.fake_chat_models import FakeListChatModel

        from sqlagent.llm import LangChainLLM
    except ImportError:
        print("langchain-core is not installed: skipping LangChainLLM")
        return
    chat = LangChainLLM(FakeListChatModel(responses=["```sql\nSELECT dept FROM employees\n```"]))
    print("langchain:", extract_sql(chat.complete([Message.user("Which departments?")])))
    # TransformersLLM("/path/to/model-or.gguf", adapter="/path/to/adapter") loads a local model
    # the same way (the `local` extra); `sqlagent ask --llm transformers:PATH@ADAPTER` from the CLI.


if __name__ == "__main__":
    main()
