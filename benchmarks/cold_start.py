"""Cold start: wall time and peak memory of one-shot ``sqlagent`` commands, as a user runs them.

Each command runs in a fresh process (the installed ``sqlagent`` console script, or
``python -c`` for the imports), so every figure includes the interpreter's start-up, every import
and the shutdown. Measured, interleaved round by round so that load on the machine hits every
command alike:

* ``python -c pass`` — the interpreter alone (the floor);
* ``import sqlagent`` — the public API;
* ``sqlagent validate`` — judge one statement against the demo database and policy;
* ``sqlagent ask`` — the whole agent on the demo (role analyst, the demo's mock model), with the
  retrieval index (and the embedder's ONNX export) built beforehand by ``sqlagent index`` and one
  ask that is not timed.

Peak RSS is each process's own ``ru_maxrss`` (``os.wait4``, from a small runner process).
Figures are medians with the range over ``--runs`` runs; the ratio ask/validate divides medians
measured in this same invocation. One extra, untimed ``sqlagent ask`` under
``python -X importtime`` lists the slowest top-level imports and says whether torch, transformers
or sentence-transformers were imported at all.

    python benchmarks/cold_start.py [--runs 7] [--question TEXT] [--role analyst] [--json]

Prints a table; with --json the last line is one JSON object of the figures.
Targets (issue 12): cold ask <= 2.0 s wall and <= 300 MiB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_ASK_S = 2.0
TARGET_ASK_MIB = 300.0
HEAVY = ("torch", "transformers", "sentence_transformers")
QUESTION = "How many employees are in each department?"
VALIDATE_SQL = "SELECT first_name, last_name, salary FROM employees"


def _cli() -> list[str]:
    """The ``sqlagent`` console script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("sqlagent")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from sqlagent.cli import main; sys.exit(main())"]


# Runs one command and reports its wall time and peak RSS. It runs in a small interpreter of its
# own because a child's ru_maxrss starts from the RSS of the process that spawned it: measured
# from this (larger) process, even ``python -c pass`` would show this process's size.
_RUNNER = """
import json, os, sys, time
argv = json.loads(sys.argv[1])
start = time.perf_counter()
with open(os.devnull, "wb") as null:
    out = [(os.POSIX_SPAWN_DUP2, null.fileno(), 1)]
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=out)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(json.dumps([os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss]))
"""


def measure(argv: Sequence[str], *, cwd: Path, expect: int = 0) -> tuple[float, float]:
    """Run ``argv`` once: (wall seconds, peak RSS in MiB) of that process alone."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", _RUNNER, json.dumps(list(argv))],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    code, wall, max_rss_kib = json.loads(done.stdout)
    if code != expect:
        raise SystemExit(f"{' '.join(argv)} exited {code} (expected {expect}):\n{done.stderr}")
    return float(wall), max_rss_kib / 1024.0  # ru_maxrss is in KiB on Linux


def import_profile(argv: Sequence[str], *, cwd: Path, top: int) -> dict[str, Any]:
    """One run under ``-X importtime``: the slowest top-level imports and the heavy ones seen."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, capture_output=True, text=True
    )
    cumulative: dict[str, int] = {}
    seen: set[str] = set()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", line)
        if not match:
            continue
        micros, indent, module = int(match[1]), len(match[2]), match[3]
        seen.add(module.split(".")[0])
        if indent == 1:  # imported by the program itself, not by another module
            root = module.split(".")[0]
            cumulative[root] = cumulative.get(root, 0) + micros
    slowest = sorted(cumulative.items(), key=lambda kv: -kv[1])[:top]
    return {
        "slowest_imports_ms": {name: round(us / 1000.0, 1) for name, us in slowest},
        "heavy_imported": sorted(m for m in HEAVY if m in seen),
    }


def summary(values: Sequence[float], digits: int) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--role", default="analyst")
    parser.add_argument("--top", type=int, default=8, help="slowest imports to list")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    console = Console(stderr=args.json)
    python, cli = sys.executable, _cli()

    with tempfile.TemporaryDirectory(prefix="sqlagent-cold-") as tmp:
        folder = Path(tmp)
        from sqlagent.demo import write_demo

        paths = write_demo(folder / "demo")
        config = str(paths.config)
        validate = ["validate", "--db", paths.url, "--policy", str(paths.policy)]
        commands: dict[str, tuple[list[str], int]] = {
            "python -c pass": ([python, "-c", "pass"], 0),
            "import sqlagent": ([python, "-c", "import sqlagent"], 0),
            "sqlagent validate": ([*cli, *validate, "--role", args.role, VALIDATE_SQL], 0),
            "sqlagent ask": (
                [*cli, "ask", "--config", config, "--role", args.role, args.question],
                0,
            ),
        }
        start = time.perf_counter()
        measure([*cli, "index", "--config", config], cwd=folder)
        measure(commands["sqlagent ask"][0], cwd=folder)  # untimed: first use after indexing
        setup_s = time.perf_counter() - start

        walls: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (command, expect) in commands.items():
                wall, peak = measure(command, cwd=folder, expect=expect)
                walls[name].append(wall)
                peaks[name].append(peak)
        profile = import_profile(commands["sqlagent ask"][0], cwd=folder, top=args.top)

    ask_s = statistics.median(walls["sqlagent ask"])
    ask_mib = statistics.median(peaks["sqlagent ask"])
    result: dict[str, Any] = {
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "question": args.question,
        "role": args.role,
        "setup_s": round(setup_s, 2),
        "wall_s": {name: summary(v, 3) for name, v in walls.items()},
        "peak_rss_mib": {name: summary(v, 1) for name, v in peaks.items()},
        "ratio_ask_validate": round(ask_s / statistics.median(walls["sqlagent validate"]), 2),
        "target_ask_wall_s": TARGET_ASK_S,
        "target_ask_rss_mib": TARGET_ASK_MIB,
        "ask_targets_met": ask_s <= TARGET_ASK_S and ask_mib <= TARGET_ASK_MIB,
        **profile,
    }

    table = Table(title=f"cold start, {args.runs} runs each ({os.cpu_count()} CPUs)")
    for column in ("command", "wall s median", "wall s range", "peak RSS MiB", "RSS range"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name in commands:
        w, m = result["wall_s"][name], result["peak_rss_mib"][name]
        table.add_row(
            name,
            f"{w['median']:.3f}",
            f"{w['min']:.3f}-{w['max']:.3f}",
            f"{m['median']:.0f}",
            f"{m['min']:.0f}-{m['max']:.0f}",
        )
    console.print(table)
    console.print(
        f"ask/validate (medians, this run): {result['ratio_ask_validate']:.2f}x; "
        f"target ask <= {TARGET_ASK_S} s and <= {TARGET_ASK_MIB:.0f} MiB: "
        + ("met" if result["ask_targets_met"] else "NOT met")
    )
    slowest = ", ".join(f"{k} {v} ms" for k, v in result["slowest_imports_ms"].items())
    heavy = ", ".join(result["heavy_imported"]) or "none"
    console.print(f"slowest imports in a cold ask (-X importtime): {slowest}")
    console.print(f"torch/transformers/sentence-transformers imported by ask: {heavy}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
