"""Per-question overhead of the agent, everything but the model: retrieve, render, validate,
execute, audit (plus role view lookup), on Spider dev.

The "model" is a mock that returns each question's gold SQL instantly, so what is measured is
the pipeline around the model. One agent per Spider database (single-user mode, no policy),
retrieval with the configured embedder (default MiniLM, which the agent runs through onnxruntime
from an ONNX export; made once per run in a temporary folder unless --embedder-cache names a
folder to keep it in) over an in-memory or chroma store, audit to a hash-chained JSONL file.
Index building, model loading (and the export) and sample queries happen in a warm-up pass per
database and are excluded. Targets: p50 <= 30 ms with MiniLM retrieval (issue 12: <= 10 ms).

    python benchmarks/agent_overhead.py [--limit N] [--embedder minilm|hashing]
        [--store memory|chroma] [--data DIR] [--threads N] [--embedder-cache DIR] [--json]

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
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import track
from rich.table import Table

from sqlagent.agent import SQLAgent
from sqlagent.audit import JsonlAuditSink
from sqlagent.config import AgentConfig
from sqlagent.llm import Message, MockLLM
from sqlagent.prompt import question_of

SPIDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spider-dev"
STAGES = ("authorize", "retrieve", "render", "validate", "execute", "audit")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SPIDER)
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--embedder", choices=("minilm", "hashing"), default="minilm")
    parser.add_argument("--store", choices=("memory", "chroma"), default="memory")
    parser.add_argument(
        "--threads", type=int, default=None, help="embedder threads (retrieval.threads)"
    )
    parser.add_argument(
        "--embedder-cache", type=Path, default=None, help="keep the ONNX export here"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    console = Console(stderr=args.json)

    dev = json.loads((args.data / "dev.json").read_text(encoding="utf-8"))
    items = dev[: args.limit] if args.limit else dev
    by_db: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_db[item["db_id"]].append(item)

    overhead: list[float] = []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    answered = 0
    warmup_s = 0.0
    embedder_name = ""
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.embedder_cache or Path(tmp) / "embedders"
        for db_id, questions in track(
            sorted(by_db.items()), description="databases", console=console
        ):
            gold = {" ".join(q["question"].split()): q["query"] for q in questions}

            def model(messages: Sequence[Message], gold: dict[str, str] = gold) -> str:
                return gold[question_of(messages)]

            config = AgentConfig.from_mapping(
                {
                    "database": f"sqlite:///{args.data / 'database' / db_id / (db_id + '.sqlite')}",
                    "retrieval": {
                        "embedder": args.embedder,
                        "store": args.store,
                        "path": str(Path(tmp) / "index"),
                        "embedder_path": str(cache),
                        "threads": args.threads,
                    },
                    "max_attempts": 1,
                }
            )
            audit = JsonlAuditSink(Path(tmp) / f"{db_id}.jsonl")
            with SQLAgent(config, llm=MockLLM(function=model), audit=audit) as agent:
                start = time.perf_counter()
                agent.ask(questions[0]["question"])  # warm-up: index, model, samples
                warmup_s += time.perf_counter() - start
                if agent.retrieval is not None:
                    embedder_name = agent.retrieval.embedder.name
                for q in questions:
                    answer = agent.ask(q["question"])
                    answered += answer.ok
                    t = answer.timings or {}
                    overhead.append(t["total"] - t.get("llm", 0.0) + t.get("audit", 0.0))
                    for stage in STAGES:
                        stages[stage].append(t.get(stage, 0.0))

    total_median_sum = sum(statistics.median(v) for v in stages.values()) or 1.0
    table = Table(title=f"agent overhead on Spider dev ({len(overhead)} questions)")
    table.add_column("stage")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("share of p50s", justify="right")
    for stage, values in stages.items():
        med = statistics.median(values)
        table.add_row(
            stage, f"{med:.2f}", f"{_percentile(values, 0.95):.2f}", f"{med / total_median_sum:.0%}"
        )
    p50, p95 = statistics.median(overhead), _percentile(overhead, 0.95)
    table.add_row("[bold]all but the model[/]", f"{p50:.2f}", f"{p95:.2f}", "")
    console.print(table)
    console.print(
        f"answered {answered}/{len(overhead)}; embedder {embedder_name}, store {args.store}; "
        f"warm-up (index, model load, samples) {warmup_s:.1f} s over {len(by_db)} databases; "
        f"target p50 <= 30 ms: {'met' if p50 <= 30 else 'NOT met'}; "
        f"issue 12's p50 <= 10 ms: {'met' if p50 <= 10 else 'NOT met'}"
    )
    if args.json:
        figures = {
            "questions": len(overhead),
            "answered": answered,
            "embedder": embedder_name,
            "store": args.store,
            "threads": args.threads,
            "p50_ms": round(p50, 3),
            "p95_ms": round(p95, 3),
            "stage_p50_ms": {s: round(statistics.median(v), 3) for s, v in stages.items()},
            "stage_share": {
                s: round(statistics.median(v) / total_median_sum, 3) for s, v in stages.items()
            },
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
