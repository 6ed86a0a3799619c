"""Noninterference at scale: does any allowed statement's result depend on protected values?

For each engine, builds the pair of databases of ``tests/safety/noninterference`` (identical but
for the values the roles may not read), then judges and runs the hand-written attack corpus and
``--examples`` Hypothesis-generated statements per engine (random grammar and attack moves, all
roles; no shrinking). Every allowed statement runs on both databases through the real read-only
executor; a reproducible difference is a leak. See ``tests/safety/noninterference/harness.py``
for the property and how differences are kept real.

    python benchmarks/noninterference.py --examples 5000 [--engines sqlite,postgres,mysql]
        [--seed 0] [--out FILE] [--json]

Prints a table per engine (statements tried, allowed, rejected, executed, errored (both sides
failed the same way), leaks, unstable,
timeouts, truncated, time); leaking statements, if any, are written to a JSON-lines file whose
path is printed (``--out``, default ``noninterference-leaks.jsonl`` in the current folder).
With --json the last line is one JSON object of the headline figures. Exit status 0 when no leak
was found, 1 when some were, 2 when nothing could run. PostgreSQL/MariaDB databases are named with
``SQLAGENT_TEST_DB_SUFFIX`` (see ``tests/dbservers.py``) and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.safety.noninterference.corpus import load_corpus  # noqa: E402
from tests.safety.noninterference.harness import (  # noqa: E402
    CATALOG_MODES,
    Finding,
    Kind,
    Pair,
    ServerUnavailable,
    build_pair,
)
from tests.safety.noninterference.schema import ENGINES, ROLES  # noqa: E402
from tests.safety.noninterference.strategies import Generated, statements  # noqa: E402


@dataclass
class Tally:
    """What one engine's run found, for one source of statements (corpus or generated)."""

    kinds: Counter[str] = field(default_factory=Counter)
    leaks: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    errored: int = 0  # executed, and both sides failed with the same error

    def add(self, finding: Finding) -> None:
        self.kinds[str(finding.kind)] += 1
        if finding.kind is Kind.SAME and finding.outcomes and finding.outcomes[0].error:
            self.errored += 1
        if finding.kind is Kind.LEAK:
            self.leaks.append(finding)

    @property
    def tried(self) -> int:
        return sum(self.kinds.values())

    @property
    def executed(self) -> int:
        ran = (Kind.SAME, Kind.LEAK, Kind.UNSTABLE, Kind.TIMEOUT, Kind.TRUNCATED)
        return sum(self.kinds[str(k)] for k in ran)

    def figures(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "allowed": self.tried - self.kinds[str(Kind.REJECTED)],
            "rejected": self.kinds[str(Kind.REJECTED)],
            "executed": self.executed,
            "errored": self.errored,
            "leaks": len(self.leaks),
            "unstable": self.kinds[str(Kind.UNSTABLE)],
            "timeouts": self.kinds[str(Kind.TIMEOUT)],
            "truncated": self.kinds[str(Kind.TRUNCATED)],
            "verdict_differs": self.kinds[str(Kind.VERDICT_DIFFERS)],
            "seconds": round(self.seconds, 2),
        }


def run_corpus(pair: Pair) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    for case in load_corpus(pair.engine):
        for mode in CATALOG_MODES[pair.engine]:
            for role in case.roles:
                tally.add(pair.judge(case.sql, role, catalog=mode))
    tally.seconds = time.perf_counter() - start
    return tally


def run_generated(pair: Pair, examples: int, seed_value: int) -> Tally:
    tally = Tally()

    @seed(seed_value)
    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=False,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(
        generated=statements(pair.engine, ROLES), mode=st.sampled_from(CATALOG_MODES[pair.engine])
    )
    def run(generated: Generated, mode: str) -> None:
        tally.add(pair.judge(generated.template, generated.role, catalog=mode))

    start = time.perf_counter()
    run()
    tally.seconds = time.perf_counter() - start
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="generated statements/engine")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("noninterference-leaks.jsonl"))
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or args.examples < 0:
        parser.error(f"engines must be among {', '.join(ENGINES)}; examples >= 0")
    logging.getLogger("sqlagent").setLevel(logging.ERROR)  # the guard logs analysis failures

    console = Console(width=max(Console().width, 110))
    results: dict[str, Any] = {}
    leaks: list[Finding] = []
    for engine in engines:
        try:
            pair = build_pair(engine)
        except ServerUnavailable as exc:
            console.print(f"[yellow]{engine}: skipped ({exc})[/yellow]")
            results[engine] = {"skipped": str(exc)}
            continue
        try:
            tallies = {"corpus": run_corpus(pair)}
            tallies["generated"] = run_generated(pair, args.examples, args.seed)
        finally:
            pair.close()
        table = Table(title=f"{engine}: noninterference (seed {args.seed})")
        columns = ("source", "tried", "allowed", "rejected", "executed", "errored", "leaks",
                   "unstable", "timeouts", "truncated", "time s", "stmts/s")  # fmt: skip
        for col in columns:
            table.add_column(col, justify="left" if col == "source" else "right")
        for source, tally in tallies.items():
            f = tally.figures()
            rate = f["tried"] / tally.seconds if tally.seconds else 0.0
            table.add_row(
                source, str(f["tried"]), str(f["allowed"]), str(f["rejected"]),
                str(f["executed"]), str(f["errored"]), str(f["leaks"]), str(f["unstable"]),
                str(f["timeouts"]), str(f["truncated"]), f"{tally.seconds:.1f}", f"{rate:,.0f}",
            )  # fmt: skip
            leaks.extend(tally.leaks)
        console.print(table)
        results[engine] = {source: tally.figures() for source, tally in tallies.items()}

    ran = [e for e in engines if "skipped" not in results[e]]
    leaks_file: str | None = None
    if leaks:
        with args.out.open("w", encoding="utf-8") as out:
            for finding in leaks:
                assert finding.outcomes is not None
                out.write(json.dumps({
                    "engine": finding.engine, "role": finding.role,
                    "statement": finding.template, "ran": finding.sql,
                    "a": finding.outcomes[0].brief(), "b": finding.outcomes[1].brief(),
                }) + "\n")  # fmt: skip
        leaks_file = str(args.out.resolve())
        console.print(f"[red]{len(leaks)} leaking statement(s) written to {leaks_file}[/red]")
    else:
        console.print("no leak found" if ran else "[red]no engine could run[/red]")
    if args.json:
        print(json.dumps({
            "examples_per_engine": args.examples, "seed": args.seed, "engines": results,
            "leaks": len(leaks), "leaks_file": leaks_file,
        }))  # fmt: skip
    if not ran:
        return 2
    return 1 if leaks else 0


if __name__ == "__main__":
    raise SystemExit(main())
