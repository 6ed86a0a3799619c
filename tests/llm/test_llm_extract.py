"""extract_sql over messy model answers (tests/llm/extract_cases.yaml) and extract_first_sql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlagent.errors import LLMError, NoSQLFoundError
from sqlagent.llm import extract_first_sql, extract_sql

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "extract_cases.yaml").read_text(encoding="utf-8")
)


def test_the_case_file_is_substantial() -> None:
    assert len(CASES) >= 20
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_extract_sql(case: dict[str, Any]) -> None:
    assert extract_sql(case["answer"]) == case["expected"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expected"]], ids=lambda c: c["name"])
def test_first_candidate(case: dict[str, Any]) -> None:
    assert extract_first_sql(case["answer"]) == case["expected"][0]


def test_no_sql_raises_with_an_excerpt_and_feedback() -> None:
    answer = "I'm sorry, I cannot answer that.\n" + "Really " * 50
    with pytest.raises(NoSQLFoundError) as caught:
        extract_first_sql(answer)
    error = caught.value
    assert isinstance(error, LLMError)
    assert str(error).startswith("no SQL found in the model's answer: \"I'm sorry, I cannot")
    assert len(str(error)) < 200
    assert error.answer == answer
    assert "```sql" in error.send_to_llm


@pytest.mark.parametrize("text", ["", "   ", "```sql\n```", "SELECT", "Answer: select"])
def test_empty_answers(text: str) -> None:
    assert extract_sql(text) == []
