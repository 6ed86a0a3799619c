"""Execution-match throughput on the 1034 Spider dev predictions in perturbed_seed1.txt.

Scores the official-verdicts predictions with ``exec_match_many`` (all CPU cores, a fresh process
pool each run) and reports the median wall time of the runs, with the agreement against the
official evaluator's verdicts when ``--compat spider``.

    python benchmarks/eval_bench.py [--data ../shared/data/spider-dev] [--runs 5]
                                    [--compat spider|strict] [--workers N] [--json]

Prints a table; with --json the last line is one JSON object of the headline figures.
Target: >= 3x faster than the official evaluator's execution (about 10 s here), i.e. <= 3.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sqlagent.evaluation._execmatch import ExecItem, exec_match_many

# The official evaluator (taoyds/test-suite-sql-eval exec_eval.eval_exec_match, default flags),
# execution only, on the same 1034 perturbed predictions and databases, timed on this 2-core
# machine on 2026-11-23: median 4.2 s over 8 runs (2.8-4.7 s), verdicts identical to the
# official file. The issue quoted ~10 s; the measured figure is the stricter baseline.
OFFICIAL_S = 4.2
TARGET_SPEEDUP = 3.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spider-dev"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spider dev folder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compat", choices=["spider", "strict"], default="spider")
    parser.add_argument("--workers", type=int, default=None)
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
    result = {
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
        "official_baseline_s": OFFICIAL_S,
        "speedup_vs_official": round(OFFICIAL_S / wall, 1),
        "target_met": OFFICIAL_S / wall >= TARGET_SPEEDUP,
    }

    table = Table(title=f"execution match, Spider dev ({args.compat}, median of {args.runs})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)
    if args.json:
        print(json.dumps(result))
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
