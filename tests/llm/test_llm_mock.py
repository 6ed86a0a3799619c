"""MockLLM: mapping, function and nearest-example modes; deterministic and offline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

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
def test_nearest_example_answers_with_no_threshold(question: str, expected: str) -> None:
    # min_similarity=0: the nearest example sharing a word answers (the pre-threshold mock).
    assert ask(MockLLM(examples=EXAMPLES, min_similarity=0.0), question) == expected
    match = MockLLM(examples=EXAMPLES).nearest(question)
    assert match is not None
    assert match.sql == expected
    assert 0.0 < match.similarity <= 1.0


def test_by_default_only_a_close_question_is_answered() -> None:
    llm = MockLLM(examples=EXAMPLES)
    for question, sql in EXAMPLES:
        assert ask(llm, question) == sql
        assert ask(llm, f"  {question.upper().rstrip('?.')}  ") == sql
    # Function words reworded: still the same question.
    assert ask(llm, "How many employees are there") == EXAMPLES[0][1]
    assert ask(llm, "who are the employees that work on the Apollo project?") == EXAMPLES[8][1]
    # One content word changed, a negation added, or off topic: refused, naming the nearest.
    for question in (
        "How many departments are there?",
        "Which projects have no budget over 100000?",
        "What is the weather in Paris tomorrow?",
    ):
        with pytest.raises(LLMError, match=r"no stored example matches .* closely enough") as info:
            ask(llm, question)
        message = str(info.value)
        assert "similarity 0." in message
        assert "needs 0.90" in message
        assert "--llm openai:BASE_URL --model NAME" in message
        assert "sqlagent examples add" in message


def test_the_threshold_is_configurable_and_checked() -> None:
    question = "How many departments are there?"
    match = MockLLM(examples=EXAMPLES).nearest(question)
    assert match is not None
    assert match.question == EXAMPLES[0][0]
    below = MockLLM(examples=EXAMPLES, min_similarity=match.similarity)
    assert ask(below, question) == EXAMPLES[0][1]
    above = MockLLM(examples=EXAMPLES, min_similarity=min(1.0, match.similarity + 0.01))
    with pytest.raises(LLMError, match="closely enough"):
        ask(above, question)
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            MockLLM(examples=EXAMPLES, min_similarity=bad)


def test_words_no_example_uses_count_against_the_match() -> None:
    # Before, words unknown to the examples were dropped, so "What is the weather in Paris
    # tomorrow?" looked like the examples' "What is ..." questions alone.
    llm = MockLLM(examples=EXAMPLES)
    plain = llm.nearest("What is the total payroll amount?")
    padded = llm.nearest("What is the total payroll amount in Paris tomorrow?")
    assert plain is not None
    assert padded is not None
    assert padded.similarity < plain.similarity


def test_explain_names_the_reused_example_only_for_its_own_answers() -> None:
    llm = MockLLM(examples=EXAMPLES)
    messages = [Message.user("how many employees are there")]
    output = llm.complete(messages)
    reused = llm.explain(messages, output)
    assert reused is not None
    assert (reused.question, reused.sql) == EXAMPLES[0]
    assert 0.9 <= reused.similarity <= 1.0
    assert reused.to_dict()["question"] == EXAMPLES[0][0]
    assert llm.explain(messages, "```sql\nSELECT 2\n```") is None  # another backend's answer
    assert llm.explain([Message.user("weather in Paris")], output) is None
    assert MockLLM(responses={"q": "SELECT 1"}).explain([Message.user("q")], output) is None


def test_examples_are_deterministic_and_ties_go_to_the_first() -> None:
    tied = [("count the rows", "SELECT 1"), ("count the rows", "SELECT 2"), ("other", "SELECT 3")]
    answers = {ask(MockLLM(examples=tied), "please count the rows") for _ in range(5)}
    assert answers == {"SELECT 1"}
    first = [ask(MockLLM(examples=EXAMPLES), q) for q, _ in EXAMPLES]
    again = [ask(MockLLM(examples=list(EXAMPLES)), q) for q, _ in EXAMPLES]
    assert first == again == [sql for _, sql in EXAMPLES]


def test_no_similar_example_uses_the_default_or_raises() -> None:
    assert ask(MockLLM(examples=EXAMPLES, default="SELECT 0"), "zzz qqq") == "SELECT 0"
    with pytest.raises(LLMError, match=r"no stored example matches 'zzz qqq' \(none shares a word"):
        MockLLM(examples=EXAMPLES).complete([Message.user("zzz qqq")])
    empty = MockLLM(examples=[])
    assert empty.example_count == 0
    with pytest.raises(LLMError, match="no stored example matches: there are none"):
        empty.complete([Message.user("how many employees")])
    assert MockLLM(examples=EXAMPLES).example_count == len(EXAMPLES)
    assert MockLLM(responses={}).example_count is None


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


def test_examples_from_a_store_are_read_on_every_question(tmp_path: Path) -> None:
    """The mock reads the example store it is given: an example added later answers at once,
    with no new model built."""
    from sqlagent.llm import ExampleSource
    from sqlagent.memory import ExampleStore
    from sqlagent.types import Example

    store = ExampleStore(path=tmp_path / "examples.jsonl")
    assert isinstance(store, ExampleSource)
    mock = MockLLM(examples=store)
    asked = [Message.user("How many projects are there?")]
    with pytest.raises(LLMError, match="there are none to answer from"):
        mock.complete(asked)
    store.add(Example("How many projects are there?", "SELECT COUNT(*) FROM projects"))
    assert mock.complete(asked) == "```sql\nSELECT COUNT(*) FROM projects\n```"
    assert mock.example_count == 1
    store.add(Example("How many projects are there?", "SELECT COUNT(id) FROM projects"))
    assert mock.complete(asked) == "```sql\nSELECT COUNT(id) FROM projects\n```"
