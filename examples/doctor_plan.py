"""Will a model fit? Memory budgets from the model's shape, and an environment check.

Nothing is loaded or downloaded: `plan_memory` is arithmetic over a preset's architecture (or
any local config.json), and `run_checks` inspects this machine and an agent configuration.
Run: python examples/doctor_plan.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlagent.config import AgentConfig
from sqlagent.demo import build_demo_database
from sqlagent.doctor import find_gpu, find_preset, plan_memory, run_checks

qwen = find_preset("qwen2.5-7b")
for quant in ("bf16", "nf4"):
    plan = plan_memory(qwen, quant=quant, max_seq_len=8192, gpus=[find_gpu("L4")])
    budget = plan.to_dict()
    verdict = budget["gpus"]["L4"]
    print(
        f"Qwen2.5-7B {quant:>4}: weights {budget['weights_gib']:.1f} GiB, KV cache "
        f"{plan.kv_bytes_per_token:,} B/token ({budget['kv_cache_gib']:.2f} GiB at 8K), "
        f"total {budget['total_gib']:.1f} GiB -> L4: {verdict['verdict']}, "
        f"longest context {verdict['max_context_tokens']:,}"
    )

# The KV cache is 2 x layers x KV heads x head_dim x bytes, per token:
assert plan_memory(qwen).kv_bytes_per_token == 2 * 28 * 4 * 128 * 2

with tempfile.TemporaryDirectory() as tmp:
    db = build_demo_database(Path(tmp) / "hr.sqlite")
    report = run_checks(AgentConfig(database=f"sqlite:///{db}"))
    for row in report.checks:
        if row.name in ("database", "read-only"):
            print(f"{row.name}: {row.status} - {row.detail}")
    assert report.ok, report.blocking
