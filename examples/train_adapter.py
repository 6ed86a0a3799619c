"""Fine-tune an adapter with `sqlagent.training`, then answer with it through the agent.

The base model here is a tiny Llama with random weights, built offline (`random_model`), so the
example runs on one CPU thread in seconds; point `base_model` at a real model folder, a .gguf
file or `smollm2` for a real run (`training/*.yaml` has recipes). The records are the agent's own
first prompts, the adapter carries a manifest the runtime checks, and `TransformersLLM` loads it.
Run: python examples/train_adapter.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sqlagent import SQLAgent
from sqlagent.config import AgentConfig
from sqlagent.llm import TransformersLLM
from sqlagent.training import (
    DEFAULT_AGENT,
    TINY_LLAMA,
    TrainConfig,
    load_training_data,
    random_model,
    train,
)

ROOT = Path(__file__).resolve().parents[1]

with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp)
    suite = ROOT / "eval" / "demo" / "suite.jsonl"
    first_two = suite.read_text("utf-8").splitlines()[:2]
    (work / "suite.jsonl").write_text("\n".join(first_two) + "\n", encoding="utf-8")
    config = TrainConfig.from_mapping(
        {
            "base_model": str(work / "base"),
            "data": [{"kind": "jsonl", "path": str(work / "suite.jsonl")}],
            "output_dir": str(work / "adapter"),
            "validation": 0.0,
            "threads": 1,
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "optim": {
                "learning_rate": 1e-2,
                "max_steps": 25,
                "batch_size": 2,
                "grad_accum": 1,
                "lr_scheduler": "constant",
                "warmup_ratio": 0.0,
                "gradient_checkpointing": False,
            },
        }
    )
    data = load_training_data(config)  # rendered by the agent itself: SQLAgent.prompt_for
    texts = [m["content"] for r in data.train for m in r["messages"]]
    random_model(
        work / "base", config=TINY_LLAMA, corpus=texts + [r["completion"] for r in data.train]
    )

    result = train(config, data=data, progress=False)
    metrics = result.metrics
    print(f"loss {metrics['first_logged_loss']:.2f} -> {metrics['last_logged_loss']:.2f}")
    manifest = json.loads((result.output_dir / "sqlagent-adapter.json").read_text("utf-8"))
    print("manifest:", manifest["prompt_format"], manifest["base_model"]["fingerprint"][:19], "...")

    llm = TransformersLLM(work / "base", adapter=result.output_dir, max_new_tokens=40)
    agent_config = AgentConfig.from_mapping({**DEFAULT_AGENT, "database": data.train[0]["url"]})
    with SQLAgent(agent_config, llm=llm) as agent:
        for record in data.train:
            answer = agent.ask(record["question"])
            print(f"{answer.status}: {record['question']} -> {answer.attempts[-1].sql}")
            assert answer.status == "answered"
