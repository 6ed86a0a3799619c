"""MockLLM: mapping, function and nearest-example modes; deterministic and offline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from sqlagent.errors import ConfigError, LLMError
from sqlagent.llm import LLM, Message, MockLLM, extract_first_sql

EXAMPLES = [
    ("How many employees are there?", "SELECT COUNT(*) FROM employees"),
    ("List the names of all departments.", "SELECT name FROM departments"),
    ("What is the average salary of employees?", "SELECT AVG(salary) FROM employees"),
    (
        "Which projects have a budget over 100000?",
        "SELECT name FROM projects WHERE budget > 100000",
    ),
    (
        "Show each department with its number of employees.",
        "SELECT d.name, COUNT(*) FROM departments d JOIN employees e "
        "ON e.department_id = d.id GROUP BY d.name",
    ),
    ("Who is the highest paid employee?", "SELECT first_name FROM employees ORDER BY salary DESC"),
    ("List employees hired after 2020.", "SELECT * FROM employees WHERE hire_date > '2020-12-31'"),
    (
        "What is the total payroll amount for March?",
        "SELECT SUM(amount) FROM payroll WHERE month = 3",
    ),
    ("Which employees work on the Apollo project?", "SELECT e.first_name FROM assignments a"),
    ("How many projects does each department run?", "SELECT department_id, COUNT(*) FROM projects"),
]


def ask(llm: LLM, question: str) -> str:
    return extract_first_sql(
        llm.complete([Message.system("You write SQL."), Message.user(question)])
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how many employees do we have", EXAMPLES[0][1]),
        ("Give me the department names", EXAMPLES[1][1]),
        ("average employee salary?", EXAMPLES[2][1]),
        ("projects whose budget is over 100000", EXAMPLES[3][1]),
        ("number of employees in each department", EXAMPLES[4][1]),
        ("Who earns the most? The highest paid one.", EXAMPLES[5][1]),
        ("employees hired after 2020", EXAMPLES[6][1]),
        ("total payroll for March", EXAMPLES[7][1]),
        ("who works on Apollo", EXAMPLES[8][1]),
        ("how many projects per department", EXAMPLES[9][1]),
    ],
)
def test_most_similar_example_answers(question: str, expected: str) -> None:
    assert ask(MockLLM(examples=EXAMPLES), question) == expected


def test_examples_are_deterministic_and_ties_go_to_the_first() -> None:
    tied = [("count the rows", "SELECT 1"), ("count the rows", "SELECT 2"), ("other", "SELECT 3")]
    answers = {ask(MockLLM(examples=tied), "please count the rows") for _ in range(5)}
    assert answers == {"SELECT 1"}
    first = [ask(MockLLM(examples=EXAMPLES), q) for q, _ in EXAMPLES]
    again = [ask(MockLLM(examples=list(EXAMPLES)), q) for q, _ in EXAMPLES]
    assert first == again == [sql for _, sql in EXAMPLES]


def test_no_similar_example_uses_the_default_or_raises() -> None:
    assert ask(MockLLM(examples=EXAMPLES, default="SELECT 0"), "zzz qqq") == "SELECT 0"
    with pytest.raises(LLMError, match="no stored answer matches the question 'zzz qqq'"):
        MockLLM(examples=EXAMPLES).complete([Message.user("zzz qqq")])
    with pytest.raises(LLMError, match="no stored answer"):
        MockLLM(examples=[]).complete([Message.user("how many employees")])


def test_responses_exact_then_longest_contained_key() -> None:
    llm = MockLLM(
        responses={
            "How many employees?": "SELECT COUNT(*) FROM employees",
            "employees": "SELECT * FROM employees",
            "employees in sales": "SELECT * FROM employees WHERE department_id = 2",
        }
    )
    assert ask(llm, "  how MANY   employees? ") == "SELECT COUNT(*) FROM employees"
    assert ask(llm, "Schema: ...\nQuestion: list employees in Sales") == (
        "SELECT * FROM employees WHERE department_id = 2"
    )
    assert ask(llm, "all employees please") == "SELECT * FROM employees"
    with pytest.raises(LLMError, match="no stored answer"):
        llm.complete([Message.user("departments")])


def test_function_mode_returns_the_text_as_is() -> None:
    def model(messages: Sequence[Message]) -> str:
        return f"Sure! SQL: SELECT {len(messages)};"

    llm = MockLLM(function=model)
    assert llm.complete([Message.user("q")]) == "Sure! SQL: SELECT 1;"
    assert extract_first_sql(llm.complete([Message.system("s"), Message.user("q")])) == "SELECT 2"


def test_answers_come_in_a_sql_fence_and_calls_are_recorded() -> None:
    llm = MockLLM(responses={"q": "SELECT 1"}, name="fixture")
    messages = [Message.system("s"), Message.user("q")]
    assert llm.complete(messages) == "```sql\nSELECT 1\n```"
    assert asyncio.run(llm.acomplete(messages)) == "```sql\nSELECT 1\n```"
    assert list(llm.calls) == [messages, messages]
    assert llm.name == "fixture"
    assert isinstance(llm, LLM)


def test_call_history_is_bounded() -> None:
    llm = MockLLM(function=lambda messages: "SELECT 1", history=3)
    for n in range(10):
        llm.complete([Message("user", str(n))])
    assert [call[0].content for call in llm.calls] == ["7", "8", "9"]


def test_the_question_is_the_last_user_message() -> None:
    llm = MockLLM(responses={"first": "SELECT 1", "second": "SELECT 2"})
    messages = [Message.user("first"), Message.assistant("SELECT 1"), Message.user("second")]
    assert extract_first_sql(llm.complete(messages)) == "SELECT 2"
    with pytest.raises(LLMError, match="no user message"):
        llm.complete([Message.system("first")])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"default": "SELECT 1"}, {"responses": {}, "examples": []}],
)
def test_exactly_one_source(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="exactly one of"):
        MockLLM(**kwargs)  # type: ignore[arg-type]
