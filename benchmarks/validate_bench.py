"""Validation throughput on the 1034 Spider dev gold queries.

Measures parse + read-only rules + grounding + policy (``Guard.check``) per statement, pinned to
one CPU core, in single-user mode (catalog grounding) and in policy mode (an all-access role, so
every statement is also qualified, star-expanded and rewritten). Catalog preparation happens once
per database, before timing, as it does in a long-running application.

    python benchmarks/validate_bench.py [--data ../shared/data/spider-dev] [--runs 5] [--json]

Prints a table; with --json the last line is one JSON object of the headline figures.
Target: >= 1,000 statements/s on one core (median of the runs, policy mode).
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

from sqlagent import Guard, Policy, reflect_catalog

TARGET = 1000.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spider-dev"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spider dev folder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    if not (args.data / "dev.json").exists():
        print(f"Spider dev data not found at {args.data}", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    items = json.loads((args.data / "dev.json").read_text())
    admin = Policy.from_mapping(
        {"default_role": "admin", "roles": {"admin": {"tables": {"*": ["*"]}}}}
    )
    guards: dict[str, dict[str, Guard]] = {"single_user": {}, "policy": {}}
    for db_id in sorted({i["db_id"] for i in items}):
        path = args.data / "database" / db_id / f"{db_id}.sqlite"
        catalog = reflect_catalog(f"sqlite:///{path}")
        # audit=None: the figure is the judgement itself (sinks are measured by their own tests)
        guards["single_user"][db_id] = Guard(catalog=catalog, audit=None)
        guards["policy"][db_id] = Guard(catalog=catalog, policy=admin, audit=None)
        guards["policy"][db_id].check("SELECT 1")  # build the role's prepared schema once

    results: dict[str, list[float]] = {}
    for mode, by_db in guards.items():
        rates = []
        for _ in range(args.runs):
            start = time.perf_counter()
            allowed = sum(by_db[i["db_id"]].check(i["query"]).allowed for i in items)
            elapsed = time.perf_counter() - start
            if allowed != len(items):
                print(f"{mode}: {len(items) - allowed} gold queries rejected", file=sys.stderr)
                return 1
            rates.append(len(items) / elapsed)
        results[mode] = rates

    table = Table(title=f"Guard.check on {len(items)} Spider dev gold queries, 1 core")
    for col in ("mode", "median stmts/s", "min", "max", "median ms/stmt", "target"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, rates in results.items():
        med = statistics.median(rates)
        table.add_row(mode, f"{med:,.0f}", f"{min(rates):,.0f}", f"{max(rates):,.0f}",
                      f"{1000 / med:.3f}", "ok" if med >= TARGET else "MISSED")  # fmt: skip
    Console().print(table)
    policy = statistics.median(results["policy"])
    single = statistics.median(results["single_user"])
    if args.json:
        print(json.dumps({
            "statements": len(items), "runs": args.runs,
            "policy_stmts_per_s": round(policy, 1), "single_user_stmts_per_s": round(single, 1),
            "policy_vs_single_ratio": round(policy / single, 3), "target_stmts_per_s": TARGET,
            "meets_target": policy >= TARGET,
        }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
