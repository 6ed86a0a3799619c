"""``sqlagent eval``: score predictions or an agent on a suite; ``sqlagent eval compare A B``.

Exit codes: 0 the run completed (wrong answers included), 1 some items could not be run (the
agent or the database failed before any SQL came back), 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sqlagent.cli._common import EXIT_OK, EXIT_REJECTED, handle_errors
from sqlagent.cli._output import console, echo, line, table, text

if TYPE_CHECKING:
    from sqlagent.types import Message

__all__ = ["eval_group"]

#: Joins a conversation's questions into the oracle's lookup key.
_ORACLE_SEP = " \u241e "


@click.group(name="eval", invoke_without_command=True)
@click.option("--suite", type=click.Choice(["spider", "jsonl"]), help="Suite format.")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Spider folder/questions file, or a JSONL suite.",
)
@click.option(
    "--predictions", type=click.Path(path_type=Path), help="One SQL per line, in question order."
)
@click.option(
    "--llm", "llm_spec", help="Run the agent with this LLM spec (mock = oracle sanity run)."
)
@click.option("--model", help="Served model name, for openai: specs.")
@click.option(
    "--examples",
    "examples_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --llm mock: answer from these stored examples (JSONL), as the agent's mock "
    "does, instead of the suite's gold SQL.",
)
@click.option(
    "--mock-min-similarity",
    type=click.FloatRange(0.0, 1.0),
    help="With --llm mock --examples: the similarity a stored question must reach (default 0.9).",
)
@click.option(
    "--policy", type=click.Path(path_type=Path), help="Role policy for items with a role."
)
@click.option(
    "--compat",
    type=click.Choice(["strict", "spider"]),
    default="strict",
    show_default=True,
    help="Headline execution comparison (both are recorded).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N questions.")
@click.option("--workers", type=click.IntRange(min=1), help="Exec-match processes (default: CPUs).")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds per query.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write results.json, summary.md, report.html here.",
)
@click.pass_context
@handle_errors
def eval_group(
    ctx: click.Context,
    suite: str | None,
    data: Path | None,
    predictions: Path | None,
    llm_spec: str | None,
    model: str | None,
    examples_file: Path | None,
    mock_min_similarity: float | None,
    policy: Path | None,
    compat: str,
    limit: int | None,
    workers: int | None,
    timeout_s: float,
    out: Path | None,
) -> None:
    """Evaluate on a suite: `sqlagent eval --suite spider --data DIR --predictions FILE --out DIR`.

    Give --predictions (one SQL per line) or --llm (run the agent). `--llm mock` answers from the
    suite's own gold SQL: an oracle sanity run of the pipeline, not a score; `--llm mock
    --examples FILE` is the agent's mock over stored examples (what the demo answers with).
    """
    if ctx.invoked_subcommand is not None:
        return
    from sqlagent.evaluation import (
        agent_predictor,
        load_predictions,
        load_suite,
        run_eval,
        write_report,
    )

    if suite is None or data is None or out is None:
        raise click.UsageError("--suite, --data and --out are required (or use `eval compare`)")
    if (predictions is None) == (llm_spec is None):
        raise click.UsageError("give exactly one of --predictions and --llm")
    if (examples_file is not None or mock_min_similarity is not None) and llm_spec != "mock":
        raise click.UsageError("--examples and --mock-min-similarity go with --llm mock")
    if mock_min_similarity is not None and examples_file is None:
        raise click.UsageError("--mock-min-similarity needs --examples FILE")
    items = load_suite(suite, data, limit=limit)  # type: ignore[arg-type]
    err = console(stderr=True)
    close = None
    oracle = False
    if predictions is not None:
        run = run_eval(
            items,
            predictions=load_predictions(predictions, len(items)),
            compat=compat,  # type: ignore[arg-type]
            workers=workers,
            timeout_s=timeout_s,
            progress=True,
        )
    else:
        from sqlagent.llm import LLM, LLMSpec, MockLLM, parse_llm_spec
        from sqlagent.prompt import conversation_of, question_of
        from sqlagent.safety import Policy

        oracle = LLMSpec.parse(str(llm_spec)).kind == "mock" and examples_file is None
        llm: LLM | dict[str, LLM]
        if examples_file is not None:
            from sqlagent.memory import read_examples

            stored = [(e.question, e.sql) for e in read_examples(examples_file)]
            llm = MockLLM(examples=stored, question=question_of, min_similarity=mock_min_similarity)
            mock_min_similarity = llm.min_similarity  # recorded as used
        elif oracle:
            err.print(
                text("--llm mock answers from the suite's gold SQL: oracle sanity run", "yellow")
            )
            by_db: dict[str, dict[str, str]] = {}
            for i in items:  # exact conversation (earlier questions, question) -> gold, per db
                key = _ORACLE_SEP.join([*(t.question for t in i.history), i.question])
                by_db.setdefault(i.db_path, {}).setdefault(key, i.gold)

            def asked(messages: Sequence[Message]) -> str:
                return _ORACLE_SEP.join([*conversation_of(messages), question_of(messages)])

            llm = {
                db: MockLLM(responses=answers, question=asked, name="oracle")
                for db, answers in by_db.items()
            }
        else:
            llm = parse_llm_spec(str(llm_spec), model=model)
        pol = Policy.from_file(policy) if policy is not None else None
        predictor, close = agent_predictor(llm, policy=pol)
        try:
            run = run_eval(
                items,
                predictor=predictor,
                compat=compat,  # type: ignore[arg-type]
                workers=workers,
                timeout_s=timeout_s,
                policy=pol,
                progress=True,
            )
        finally:
            close()
    run.meta = {
        "suite": suite,
        "data": str(data),
        "mode": "predictions" if predictions is not None else "agent",
        "predictions": str(predictions) if predictions is not None else None,
        "llm": llm_spec,
        "model": model,
        "examples": None if examples_file is None else str(examples_file),
        "mock_min_similarity": mock_min_similarity,
        "oracle": oracle,
        "compat": compat,
        "limit": limit,
    }
    write_report(run, out)
    s = run.summary
    echo(
        f"{s['overall']['count']} questions: exec {_pct(s['overall']['exec_match'])} ({compat}), "
        f"exact set {_pct(s['overall']['exact_match'])}, valid {_pct(s['overall']['valid'])}, "
        f"{s['elapsed_s']} s -> {out}"
    )
    failed = sum(1 for i in run.items if i["predicted"] is None and i["error"])
    if failed:
        echo(f"error: {failed} item(s) could not be run", err=True)
        sys.exit(EXIT_REJECTED)
    sys.exit(EXIT_OK)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


@eval_group.command("compare")
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@handle_errors
def compare(a: Path, b: Path) -> None:
    """Show two runs side by side (A and B: --out folders or results.json files)."""
    from sqlagent.evaluation import compare_runs, load_results

    diff = compare_runs(load_results(a), load_results(b))
    grid = table(
        "group", "name", "A", "B", "Δ", title=f"exec accuracy: A={a}  B={b}", right=("A", "B", "Δ")
    )
    for row in diff["groups"]:
        delta = (
            f"{100 * (row['b'] - row['a']):+.1f}"
            if row["a"] is not None and row["b"] is not None
            else ""
        )
        cells = (row["group"], row["name"], _pct(row["a"]), _pct(row["b"]), delta)
        grid.add_row(*(text(cell) for cell in cells))
    out = console()
    out.print(grid)
    changed = diff["changed"]
    fixed = sum(1 for c in changed if c["b"])
    out.print(
        line(
            f"{len(changed)} item(s) changed: {fixed} now correct, {len(changed) - fixed} now wrong"
        )
    )
    for c in changed[:20]:
        out.print(line(f"  #{c['index']} {'+' if c['b'] else '-'} ", c["question"]))
