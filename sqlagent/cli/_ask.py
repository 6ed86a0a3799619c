"""``sqlagent ask``, ``sqlagent index`` and ``sqlagent examples``: the agent from the shell.

``ask`` contract (scripts depend on it): exit 0 answered, 1 refused or failed, 2 usage or
configuration error; ``--json`` prints exactly one object with at least ``sql``, ``columns``,
``rows``, ``verdict``, ``violations``, ``attempts`` and ``audit_id``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from sqlagent.agent import SQLAgent
from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors
from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError
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
            help=f"Agent config (YAML/JSON). Default: ./{DEFAULT_CONFIG} when it exists.",
        ),
        click.option("--db", "db_url", metavar="URL", help="SQLAlchemy database URL."),
        click.option(
            "--policy",
            "policy_file",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="Role policy (YAML or JSON).",
        ),
        click.option(
            "--llm",
            "llm_spec",
            metavar="SPEC",
            help="mock | transformers:PATH[@ADAPTER] | openai:BASE_URL (with --model).",
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
    llm_spec: str | None,
    model: str | None,
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


def _print_answer(answer: Answer, console: Console) -> None:
    role = f" (role {answer.role})" if answer.role else ""
    tries = len(answer.attempts)
    note = f", {tries} attempts" if tries > 1 else ""
    if answer.ok:
        console.print(f"[bold green]ANSWERED[/]{role}{note}")
        console.print(answer.sql or "", highlight=False, markup=False, soft_wrap=True)
        table = Table(*answer.columns, show_lines=False)
        for row in answer.rows[:50]:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(table)
        more = " (truncated by the row cap)" if answer.truncated else ""
        console.print(
            f"{answer.row_count} row(s){more}" + (" — no rows matched" if answer.no_rows else "")
        )
        if answer.masked_columns:
            console.print(f"masked for this role: {', '.join(answer.masked_columns)}")
    elif answer.status == "rejected":
        label = "DENIED" if answer.denied else "REJECTED"
        console.print(f"[bold red]{label}[/]{role}{note}")
        assert answer.verdict is not None
        for v in answer.verdict.violations:
            console.print(f"  [yellow]{v.code}[/]: {v.message}", highlight=False)
    else:
        console.print(f"[bold red]FAILED[/]{role}{note}: {answer.error}", highlight=False)
    console.print(f"audit id: {answer.audit_id}", style="dim")


@click.command()
@click.argument("question")
@agent_options
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
    config = load_agent_config(
        config_file, db_url, policy_file, llm_spec, model, max_attempts=max_attempts
    )
    with SQLAgent(config) as agent:
        answer = agent.ask(question, role=role)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, default=str))
    else:
        _print_answer(answer, Console(soft_wrap=True))
    sys.exit(EXIT_OK if answer.ok else EXIT_REJECTED)


@click.command()
@agent_options
@click.option("--role", "-r", "roles", multiple=True, help="Index only these roles' views.")
@handle_errors
def index(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None,
    model: str | None,
    roles: tuple[str, ...],
) -> None:
    """Build or refresh the retrieval index: one view per role, with a progress bar."""
    config = load_agent_config(config_file, db_url, policy_file, llm_spec, model)
    with SQLAgent(config) as agent:
        for line in agent.build_index(roles=roles or None, progress=True):
            click.echo(line)


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
    llm_spec: str | None,
    model: str | None,
) -> None:
    """Store QUESTION with its SQL after checking the SQL is read-only and grounded."""
    config = load_agent_config(config_file, db_url, policy_file, llm_spec, model)
    with SQLAgent(config) as agent:
        agent.add_example(question, sql)
        where = config.examples or "memory only (set 'examples:' in the config to keep it)"
        click.echo(f"stored in {where}; {len(agent.examples)} example(s)")


@examples.command("list")
@agent_options
@handle_errors
def examples_list(
    config_file: str | None,
    db_url: str | None,
    policy_file: str | None,
    llm_spec: str | None,
    model: str | None,
) -> None:
    """Print the stored examples as JSON lines."""
    config = load_agent_config(config_file, db_url, policy_file, llm_spec, model)
    if config.examples is None:
        raise ConfigError("no examples file configured ('examples:' in the config)")
    from sqlagent.memory import read_examples

    for example in read_examples(config.examples) if config.examples.exists() else []:
        click.echo(json.dumps(example.to_dict(), ensure_ascii=False))
