"""Does a model answer the demo questions? Execution accuracy of the full agent on the HR demo.

Each of the demo's questions goes through the whole agent (retrieval, prompt, model, validation,
self-correction, read-only execution) as the ``admin`` role, WITHOUT the bundled examples (the
examples are these very questions: a model shown them could copy the answers). A question counts
as correct when its result rows equal the gold SQL's rows as a multiset.

    python benchmarks/demo_model_check.py --llm smollm2 [--limit N] [--json]
    python benchmarks/demo_model_check.py --llm transformers:/path/to/model[@/path/to/adapter]

This is how the demo's default model was chosen: see docs/llm.md, "Which model answers by
default".
With --json the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from sqlagent.agent import SQLAgent
from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import DEMO_QUESTIONS, write_demo
from sqlagent.execution import ReadOnlyExecutor
from sqlagent.llm import parse_llm_spec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default="smollm2", help="an LLM spec (not 'mock')")
    parser.add_argument("--model", default=None, help="served model name for openai:URL")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument(
        "--max-new-tokens", type=int, default=256, help="for local models (SQL fits in 256)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    console = Console(stderr=args.json)
    questions = DEMO_QUESTIONS[: args.limit] if args.limit else DEMO_QUESTIONS

    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        config = AgentConfig.from_mapping(
            {
                "database": demo.url,
                "policy": demo.policy,
                "docs": [demo.glossary],
                "max_attempts": args.max_attempts,
                "retrieval": {"store": "memory"},
            }
        )
        start = time.perf_counter()
        llm = parse_llm_spec(args.llm, model=args.model)
        if hasattr(llm, "max_new_tokens"):
            llm.max_new_tokens = args.max_new_tokens
        load = getattr(llm, "load", None)
        if callable(load):
            load()
        load_s = time.perf_counter() - start
        rows = []
        with (
            SQLAgent(config, llm=llm, audit=MemoryAuditSink()) as agent,
            ReadOnlyExecutor(demo.url) as gold_runner,
        ):
            for q in track(questions, description="questions", console=console):
                answer = agent.ask(q.question, role="admin")
                gold = Counter(gold_runner.run(q.sql).rows)
                correct = answer.ok and Counter(answer.rows) == gold
                llm_ms = (answer.timings or {}).get("llm", 0.0)
                rows.append((q.question, answer.status, correct, len(answer.attempts), llm_ms))

    table = Table(title=f"{args.llm} on the demo questions (role admin, no examples)")
    for name in ("question", "status", "correct", "attempts", "model ms"):
        table.add_column(name)
    for question, status, correct, attempts, llm_ms in rows:
        table.add_row(question, status, "yes" if correct else "no", str(attempts), f"{llm_ms:.0f}")
    console.print(table)
    answered = sum(1 for r in rows if r[1] == "answered")
    correct_n = sum(1 for r in rows if r[2])
    console.print(
        f"correct {correct_n}/{len(rows)}, answered (valid SQL that ran) {answered}/{len(rows)}, "
        f"model load {load_s:.1f} s"
    )
    if args.json:
        figures = {
            "llm": args.llm,
            "questions": len(rows),
            "correct": correct_n,
            "answered": answered,
            "execution_accuracy": round(correct_n / len(rows), 3),
            "model_load_s": round(load_s, 1),
            "p50_model_ms_per_question": round(statistics.median(r[4] for r in rows), 1),
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
