"""Validation throughput on the 1034 Spider dev gold queries, against plain sqlglot in the same run.

Measures parse + read-only rules + grounding + policy + rendering + the parse-back check
(``Guard.check``) per statement, pinned to one CPU core, in three modes:

* ``single_user``: catalog grounding, no policy;
* ``policy``: an all-access role, so every statement is also qualified, star-expanded and
  rewritten (the headline figure);
* ``policy_masked``: every table granted, with one column per table masked (one no gold query
  names, so the statements stay allowed): each table is then read through the role's derived
  table of granted columns, the cost a restricted role adds.

The baseline, timed in the same run on the same core, is plain sqlglot: ``parse_one`` plus
``qualify`` against the same catalog. Catalog preparation happens once per database, before
timing, as it does in a long-running application.

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
from collections.abc import Callable
from pathlib import Path

import sqlglot
from rich.console import Console
from rich.table import Table
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from sqlagent import Catalog, Guard, Policy, reflect_catalog

TARGET = 1000.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spider-dev"


def _masked_policy(catalog: Catalog, queries: list[str]) -> Policy:
    """All tables granted; per table, one column no query names is masked."""
    named: set[str] = set()
    for sql in queries:
        named |= {
            c.name.lower() for c in sqlglot.parse_one(sql, read="sqlite").find_all(exp.Column)
        }
    masked = {}
    for table in catalog:
        spare = [c for c in table.column_names if c.lower() not in named]
        if spare:
            masked[table.name] = [spare[0]]
    return Policy.from_mapping(
        {"default_role": "r", "roles": {"r": {"tables": {"*": ["*"]}, "masked": masked}}}
    )


def _rates(run: Callable[[], int], runs: int, count: int) -> tuple[list[float], int]:
    rates, ok = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        ok = run()
        rates.append(count / (time.perf_counter() - start))
    return rates, ok


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
    guards: dict[str, dict[str, Guard]] = {"single_user": {}, "policy": {}, "policy_masked": {}}
    schemas: dict[str, MappingSchema] = {}
    for db_id in sorted({i["db_id"] for i in items}):
        path = args.data / "database" / db_id / f"{db_id}.sqlite"
        catalog = reflect_catalog(f"sqlite:///{path}")
        queries = [i["query"] for i in items if i["db_id"] == db_id]
        # The figure is the judgement itself (the guard records nothing; sinks are measured by
        # their own tests).
        guards["single_user"][db_id] = Guard(catalog=catalog)
        guards["policy"][db_id] = Guard(catalog=catalog, policy=admin)
        guards["policy_masked"][db_id] = Guard(
            catalog=catalog, policy=_masked_policy(catalog, queries)
        )
        for by_db in guards.values():
            by_db[db_id].check("SELECT 1")  # build the role's prepared schema once
        schemas[db_id] = MappingSchema(
            {t.name: dict.fromkeys(t.column_names, "UNKNOWN") for t in catalog}, dialect="sqlite"
        )

    def baseline() -> int:
        done = 0
        for item in items:
            try:
                qualify(
                    sqlglot.parse_one(item["query"], read="sqlite"),
                    schema=schemas[item["db_id"]],
                    dialect="sqlite",
                )
                done += 1
            except sqlglot.errors.SqlglotError:
                pass  # timed all the same: the work was done
        return done

    results: dict[str, list[float]] = {}
    allowed: dict[str, int] = {}
    results["sqlglot parse+qualify"], allowed["sqlglot parse+qualify"] = _rates(
        baseline, args.runs, len(items)
    )
    for mode, by_db in guards.items():

        def check(by_db: dict[str, Guard] = by_db) -> int:
            return sum(by_db[i["db_id"]].check(i["query"]).allowed for i in items)

        results[mode], allowed[mode] = _rates(check, args.runs, len(items))
        if mode != "policy_masked" and allowed[mode] != len(items):
            print(f"{mode}: {len(items) - allowed[mode]} gold queries rejected", file=sys.stderr)
            return 1

    base = statistics.median(results["sqlglot parse+qualify"])
    table = Table(title=f"Guard.check on {len(items)} Spider dev gold queries, 1 core")
    for col in ("mode", "median stmts/s", "min", "max", "median ms/stmt", "vs sqlglot", "ok"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, rates in results.items():
        med = statistics.median(rates)
        table.add_row(
            mode, f"{med:,.0f}", f"{min(rates):,.0f}", f"{max(rates):,.0f}",
            f"{1000 / med:.3f}", f"{med / base:.2f}", f"{allowed[mode]}/{len(items)}",
        )  # fmt: skip
    Console().print(table)
    policy = statistics.median(results["policy"])
    single = statistics.median(results["single_user"])
    masked = statistics.median(results["policy_masked"])
    if args.json:
        print(json.dumps({
            "statements": len(items), "runs": args.runs,
            "policy_stmts_per_s": round(policy, 1), "single_user_stmts_per_s": round(single, 1),
            "policy_masked_stmts_per_s": round(masked, 1),
            "sqlglot_parse_qualify_stmts_per_s": round(base, 1),
            "policy_vs_sqlglot_ratio": round(policy / base, 3),
            "policy_vs_single_ratio": round(policy / single, 3), "target_stmts_per_s": TARGET,
            "meets_target": policy >= TARGET,
        }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
