"""The retrieval benchmark's contract on Spider (the package surface: tests/test_public_api.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SPIDER


@pytest.mark.spider
@pytest.mark.skipif(not (SPIDER / "tables.json").exists(), reason="needs ../shared/data/spider-dev")
@pytest.mark.slow
def test_benchmark_runs_on_spider_and_ends_with_json() -> None:
    """A short run of the real benchmark (hashing embedder, 40 questions, all 876 tables)."""
    script = ROOT / "benchmarks" / "retrieval_bench.py"
    command = [sys.executable, str(script), "--embedder", "hashing", "--limit", "40",
               "--data", str(SPIDER), "--json"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("table_recall_at_3", "table_recall_at_5", "table_recall_at_10",
                "token_reduction", "p50_ms", "p95_ms"):  # fmt: skip
        assert key in figures
    assert figures["questions"] == 40
    assert figures["tables"] == 876
    assert figures["table_recall_at_10"] >= 0.8
    assert figures["token_reduction"] >= 0.9
