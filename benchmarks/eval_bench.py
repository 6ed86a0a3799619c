"""Execution-match throughput on the 1034 Spider dev predictions in perturbed_seed1.txt.

Scores the official-verdicts predictions with ``exec_match_many`` (all CPU cores, a fresh process
pool each run) and reports the median wall time of the runs, with the agreement against the
official evaluator's verdicts when ``--compat spider``.

    python benchmarks/eval_bench.py [--data ../shared/data/spider-dev] [--runs 5]
                                    [--compat spider|strict] [--workers N]
                                    [--official PATH] [--json]

The baseline is the official evaluator itself (taoyds/test-suite-sql-eval: ``exec_eval.py`` and
its ``parse.py``), timed in the same run on the same items (``eval_exec_match`` with its default
flags, one process, as its own script runs it), when ``--official`` names a checkout of it. Without
one, only absolute figures are printed: no speed-up is ever computed against a number recorded
elsewhere. Target: >= 3x faster than the official evaluator's execution.

Prints a table; with --json the last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sqlagent.evaluation._execmatch import ExecItem, exec_match_many

TARGET_SPEEDUP = 3.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spider-dev"


def _official(path: Path) -> Callable[..., Any]:
    """``eval_exec_match`` from a checkout of the official evaluator (imported from ``path``)."""
    if not (path / "exec_eval.py").is_file():
        raise SystemExit(
            f"--official {path}: no exec_eval.py there (a test-suite-sql-eval checkout)"
        )
    sys.path.insert(0, str(path))
    module = importlib.import_module("exec_eval")
    return module.eval_exec_match  # type: ignore[no-any-return]


def _time_official(
    evaluate: Callable[..., Any], items: list[ExecItem], runs: int
) -> tuple[list[float], int]:
    walls, matches = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        matches = sum(
            evaluate(item.db_path, item.predicted, item.gold, False, False, False) for item in items
        )
        walls.append(time.perf_counter() - start)
    return walls, matches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spider dev folder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compat", choices=["spider", "strict"], default="spider")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--official", type=Path, default=None, help="checkout of test-suite-sql-eval (baseline)"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    verdicts_dir = args.data / "official-verdicts"
    if not (args.data / "dev.json").exists() or not (verdicts_dir / "perturbed_seed1.txt").exists():
        print(f"Spider dev data not found at {args.data}", file=sys.stderr)
        return 2

    dev = json.loads((args.data / "dev.json").read_text())
    predictions = (verdicts_dir / "perturbed_seed1.txt").read_text().split("\n")[: len(dev)]
    official = json.loads((verdicts_dir / "perturbed_seed1.exec.json").read_text())
    items = [
        ExecItem(
            i, str(args.data / "database" / e["db_id"] / f"{e['db_id']}.sqlite"), e["query"], p
        )
        for i, (e, p) in enumerate(zip(dev, predictions, strict=True))
    ]

    walls: list[float] = []
    matches = 0
    agree = 0
    for _ in range(args.runs):
        start = time.perf_counter()
        verdicts = exec_match_many(items, compat=args.compat, workers=args.workers)
        walls.append(time.perf_counter() - start)
        matches = sum(v.match for v in verdicts)
        agree = sum(int(v.match) == o for v, o in zip(verdicts, official, strict=True))

    wall = statistics.median(walls)
    baseline: float | None = None
    official_matches_timed: int | None = None
    if args.official is not None:
        official_walls, official_matches_timed = _time_official(
            _official(args.official), items, args.runs
        )
        baseline = statistics.median(official_walls)
    result: dict[str, Any] = {
        "items": len(items),
        "compat": args.compat,
        "workers": args.workers or os.cpu_count(),
        "runs": args.runs,
        "wall_s": round(wall, 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "items_per_s": round(len(items) / wall, 1),
        "matches": matches,
        "official_matches": sum(official),
        "agree_with_official": agree,
        "official_baseline_s": None if baseline is None else round(baseline, 3),
        "official_matches_timed": official_matches_timed,
        "speedup_vs_official": None if baseline is None else round(baseline / wall, 1),
        "target_met": None if baseline is None else baseline / wall >= TARGET_SPEEDUP,
    }

    table = Table(title=f"execution match, Spider dev ({args.compat}, median of {args.runs})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, "n/a" if value is None else str(value))
    Console().print(table)
    if args.json:
        print(json.dumps(result))
    return 1 if result["target_met"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
