"""Config files: relative paths resolve against the file's folder, absolute ones stay as given.

A regression guard: an absolute ``policy:`` once resolved to ``None``, which silently turned a
role-restricted agent into a single-user one.
"""

from __future__ import annotations

from pathlib import Path

from sqlagent.config import AgentConfig
from sqlagent.training import TrainConfig


def test_agent_config_keeps_absolute_paths_and_resolves_relative_ones(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere"
    (tmp_path / "agent.yaml").write_text(
        "database: sqlite:///hr.sqlite\n"
        f"policy: {absolute / 'policy.yaml'}\n"
        f"examples: {absolute / 'examples.jsonl'}\n"
        f"audit_log: {absolute / 'audit.jsonl'}\n"
        f"docs: [{absolute / 'glossary.md'}, notes.md]\n"
        f"retrieval: {{path: {absolute / 'index'}}}\n",
        encoding="utf-8",
    )
    config = AgentConfig.from_file(tmp_path / "agent.yaml")
    assert config.policy == absolute / "policy.yaml"
    assert config.examples == absolute / "examples.jsonl"
    assert config.audit_log == absolute / "audit.jsonl"
    assert config.docs == (absolute / "glossary.md", tmp_path / "notes.md")
    assert config.retrieval.path == absolute / "index"
    assert config.database == f"sqlite:///{tmp_path / 'hr.sqlite'}"

    (tmp_path / "relative.yaml").write_text(
        "database: sqlite:///hr.sqlite\npolicy: policy.yaml\naudit_log: logs/audit.jsonl\n",
        encoding="utf-8",
    )
    relative = AgentConfig.from_file(tmp_path / "relative.yaml")
    assert relative.policy == tmp_path / "policy.yaml"
    assert relative.audit_log == tmp_path / "logs" / "audit.jsonl"
    assert relative.examples is None


def test_train_config_keeps_absolute_paths(tmp_path: Path) -> None:
    absolute = tmp_path / "models" / "base"
    (tmp_path / "train.yaml").write_text(
        f"base_model: {absolute}\nagent: {tmp_path / 'a' / 'agent.yaml'}\n"
        f"output_dir: {tmp_path / 'out'}\n"
        f"data: [{{kind: jsonl, path: {tmp_path / 'suite.jsonl'}}}]\n",
        encoding="utf-8",
    )
    config = TrainConfig.from_file(tmp_path / "train.yaml")
    assert config.base_model == absolute
    assert config.agent == tmp_path / "a" / "agent.yaml"
    assert config.output_dir == tmp_path / "out"
    assert config.data[0].path == tmp_path / "suite.jsonl"
