"""``sqlagent ask``, ``sqlagent index`` and ``sqlagent examples``: the agent from the shell.

``ask`` contract (scripts depend on it): exit 0 answered, 1 refused or failed, 2 usage or
configuration error (an empty question, no model to answer with); ``--json`` prints exactly one
object with at least ``sql``, ``columns``, ``rows``, ``verdict``, ``violations``, ``attempts``,
``audit_id``, ``model`` (the backend that answered) and ``reused_example`` (the stored question
a mock repeated, with its similarity). Human output is printed verbatim (:mod:`._output`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from sqlagent.agent import SQLAgent
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors, warn_about_role
from sqlagent.cli._output import console, echo, line, table, text
from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError
from sqlagent.llm import MockLLM
from sqlagent.types import Answer

__all__ = ["ask", "examples", "index"]

DEFAULT_CONFIG = "sqlagent.yaml"
F = TypeVar("F", bound=Callable[..., Any])


def agent_options(func: F) -> F:
    """The options every agent command shares: where the config is and what to override."""
    options = [
        click.option(
            "--config",
            "config_file",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help=f"Agent config (YAML, JSON or TOML). Default: ./{DEFAULT_CONFIG} if present.",
        ),
        click.option("--db", "db_url", metavar="URL", help="SQLAlchemy database URL."),
        click.option(
            "--policy",
            "policy_file",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="Role policy (YAML or JSON).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def model_options(func: F) -> F:
    """``--llm`` and ``--model``, for the commands that ask a model."""
    options = [
        click.option(
            "--llm",
            "llm_spec",
            metavar="SPEC",
            help="mock | transformers:PATH[@ADAPTER] | openai:BASE_URL (with --model) | smollm2.",
        ),
        click.option("--model", metavar="NAME", help="Model name for openai:BASE_URL backends."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_agent_config(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None = None,
    model: str | None = None,
    **more: Any,
) -> AgentConfig:
    """The config file (if any) with the command-line overrides applied."""
    if config_file is None and Path(DEFAULT_CONFIG).is_file():
        config_file = DEFAULT_CONFIG
    base: dict[str, Any] = {}
    if config_file is not None:
        base = AgentConfig.from_file(config_file).model_dump(exclude_unset=True)
    overrides = {
        "database": db_url,
        "policy": policy_file,
        "llm": llm_spec,
        "model": model,
        **more,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    if "database" not in base:
        raise ConfigError(
            f"no database: pass --db URL or --config FILE (or run where ./{DEFAULT_CONFIG} is)"
        )
    return AgentConfig.from_mapping(base)


#: Why ``ask`` stops before asking when the only model is a mock with nothing to repeat.
NO_MODEL = (
    "no model to answer with: the 'mock' model (the default when no 'llm:' is configured) only "
    "repeats the SQL of stored examples, and there are none. Choose a model with --llm: "
    "transformers:PATH[@ADAPTER] (a local model), openai:BASE_URL --model NAME (a served one) "
    "or smollm2; or set 'llm:' in a config file (--config FILE; `sqlagent demo init DIR` "
    "writes one). Or give the mock examples: 'examples: FILE' in the config, then "
    "`sqlagent examples add QUESTION SQL`"
)


def require_a_model(llm: object) -> None:
    """Raise :class:`ConfigError` (:data:`NO_MODEL`) when ``llm`` is a lone mock with no stored
    example and no default: it could only refuse every question."""
    if isinstance(llm, MockLLM) and llm.example_count == 0 and llm.default is None:
        raise ConfigError(NO_MODEL)


def _model_line(answer: Answer) -> Text | None:
    if answer.model is None:
        return None
    reused = answer.reused_example
    if reused is None:
        return line("model: ", (answer.model, "bold"))
    return line(
        "model: ",
        (answer.model, "bold"),
        ", repeating the SQL of the stored question ",
        ('"' + reused.question + '"', "italic"),
        f" (similarity {reused.similarity:.2f})",
    )


def _print_answer(answer: Answer, out: Console) -> None:
    role = f" (role {answer.role})" if answer.role else ""
    tries = len(answer.attempts)
    note = f", {tries} attempts" if tries > 1 else ""
    model = _model_line(answer)
    if answer.ok:
        out.print(line(("ANSWERED", "bold green"), role, note))
        if model is not None:
            out.print(model)
        out.print(text(answer.sql or "", multiline=True))
        grid = table(*answer.columns)
        for row in answer.rows[:_SHOWN_ROWS]:
            grid.add_row(*(text("NULL" if v is None else v) for v in row))
        out.print(grid)
        more = " (truncated by the row cap)" if answer.truncated else ""
        if answer.row_count > _SHOWN_ROWS:
            more += f"; the first {_SHOWN_ROWS} shown (--json for all)"
        out.print(
            line(f"{answer.row_count} row(s){more}", " — no rows matched" if answer.no_rows else "")
        )
        if answer.masked_columns:
            out.print(line("masked for this role: ", ", ".join(answer.masked_columns)))
    elif answer.status == "rejected":
        label = "DENIED" if answer.denied else "REJECTED"
        out.print(line((label, "bold red"), role, note))
        if model is not None:
            out.print(model)
        assert answer.verdict is not None
        for v in answer.verdict.violations:
            out.print(line("  ", (v.code, "yellow"), ": ", v.message))
    else:
        out.print(line(("FAILED", "bold red"), role, note, ": ", answer.error, multiline=True))
        if model is not None:
            out.print(model)
    out.print(line((f"audit id: {answer.audit_id}", "dim")))


_SHOWN_ROWS = 50


@click.command()
@click.argument("question")
@agent_options
@model_options
@click.option("--role", "-r", help="Ask as this role (absent: the policy's default role).")
@click.option("--max-attempts", type=click.IntRange(1, 10), help="Self-correction rounds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@handle_errors
def ask(
    question: str,
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None,
    model: str | None,
    role: str | None,
    max_attempts: int | None,
    as_json: bool,
) -> None:
    """Answer QUESTION with SQL written by the model, validated for ROLE and run read-only.

    Exit status: 0 answered, 1 refused or failed, 2 usage or configuration error.
    """
    if not question.strip():
        raise click.UsageError("QUESTION is empty: ask a question in words")
    config = load_agent_config(
        config_file, db_url, policy_file, llm_spec, model, max_attempts=max_attempts
    )
    with SQLAgent(config) as agent:  # reflects the database first: a bad one is reported first
        require_a_model(agent.llm)
        warn_about_role(role, agent.policy)
        answer = agent.ask(question, role=role)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, default=str))
    else:
        _print_answer(answer, console())
    sys.exit(EXIT_OK if answer.ok else EXIT_REJECTED)


@click.command()
@agent_options
@click.option("--role", "-r", "roles", multiple=True, help="Index only these roles' views.")
@handle_errors
def index(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    roles: tuple[str, ...],
) -> None:
    """Build or refresh the retrieval index: one view per role, with a progress bar."""
    config = load_agent_config(config_file, db_url, policy_file)
    with SQLAgent(config) as agent:
        for message in agent.build_index(roles=roles or None, progress=True):
            echo(message)


@click.group()
def examples() -> None:
    """Few-shot memory: question/SQL pairs retrieval brings into prompts."""


@examples.command("add")
@click.argument("question")
@click.argument("sql")
@agent_options
@handle_errors
def examples_add(
    question: str,
    sql: str,
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
) -> None:
    """Store QUESTION with its SQL after checking the SQL is read-only and grounded."""
    if not question.strip():
        raise click.UsageError("QUESTION is empty")
    config = load_agent_config(config_file, db_url, policy_file)
    with SQLAgent(config) as agent:
        agent.add_example(question, sql)
        where = config.examples or "memory only (set 'examples:' in the config to keep it)"
        echo(f"stored in {where}; {len(agent.examples)} example(s)")


@examples.command("list")
@agent_options
@handle_errors
def examples_list(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
) -> None:
    """Print the stored examples as JSON lines."""
    config = load_agent_config(config_file, db_url, policy_file)
    if config.examples is None:
        raise ConfigError("no examples file configured ('examples:' in the config)")
    from sqlagent.memory import read_examples

    for example in read_examples(config.examples) if config.examples.exists() else []:
        click.echo(json.dumps(example.to_dict(), ensure_ascii=False))
