"""Config files: one base model, one reader, typed sections; relative paths resolve against the
file's folder, absolute ones stay as given.

A regression guard: an absolute ``policy:`` once resolved to ``None``, which silently turned a
role-restricted agent into a single-user one.
"""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from sqlagent import ConfigError, Policy, PolicyError, RetrievalSettings, SafetyConfig
from sqlagent.config import AgentConfig
from sqlagent.config import RetrievalSettings as AgentConfigRetrieval
from sqlagent.settings import ConfigModel, read_config_file
from sqlagent.training import LoraSettings, TrainConfig


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


def test_every_section_is_typed_and_a_misspelt_key_is_named(tmp_path: Path) -> None:
    """One ConfigError at load, listing every problem with its dotted location."""
    (tmp_path / "agent.yaml").write_text(
        "database: sqlite:///hr.sqlite\n"
        "max_attempts: 0\n"
        "safety: {max_row: 5, pure_builtins: true}\n"
        "retrieval: {k_doc: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        AgentConfig.from_file(tmp_path / "agent.yaml")
    message = str(info.value)
    assert message.startswith("invalid agent configuration: ")
    for problem in (
        "max_attempts: Input should be greater than or equal to 1",
        "safety.max_row: unknown key",
        "retrieval.k_doc: unknown key",
    ):
        assert problem in message
    with pytest.raises(ConfigError, match=r"safety\.allowed_functions: .*unsupported dialect"):
        AgentConfig(database="sqlite://", safety={"allowed_functions": {"db2": ["f"]}})  # type: ignore[arg-type]


def test_the_safety_section_is_a_safety_config(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(
        'database = "sqlite:///hr.sqlite"\nmax_rows = 50\n'
        '[safety]\npure_builtins = false\nallowed_functions = {postgresql = ["F"]}\n',
        encoding="utf-8",
    )
    config = AgentConfig.from_file(tmp_path / "agent.toml")
    assert isinstance(config.safety, SafetyConfig)
    assert config.safety.allowed_functions == {"postgres": frozenset({"f"})}
    # The row cap the guard injects is the agent's max_rows unless the section sets its own.
    assert config.safety_config().max_rows == 50
    assert config.safety_config().pure_builtins is False
    own = AgentConfig(database="sqlite://", safety=SafetyConfig(max_rows=7))
    assert own.safety_config().max_rows == 7
    # A dump (as `sqlagent ask`'s overrides make) reads back to the same configuration.
    assert AgentConfig.from_mapping(config.model_dump()) == config


def test_one_retrieval_settings_class_with_one_set_of_names() -> None:
    assert RetrievalSettings is AgentConfigRetrieval
    defaults = RetrievalSettings()
    assert (defaults.k_tables, defaults.k_examples, defaults.k_docs) == (5, 3, 2)
    config = AgentConfig.from_mapping(
        {"database": "sqlite://", "retrieval": {"k_docs": 0, "lexical_weight": 0.5}}
    )
    assert (config.retrieval.k_docs, config.retrieval.lexical_weight) == (0, 0.5)
    with pytest.raises(ConfigError, match=r"retrieval\.docs: unknown key"):
        AgentConfig.from_mapping({"database": "sqlite://", "retrieval": {"docs": 3}})


def test_one_reader_for_yaml_json_and_toml(tmp_path: Path) -> None:
    texts = {
        "a.yaml": "database: sqlite:///hr.sqlite\nllm: mock\n",
        "a.json": '{"database": "sqlite:///hr.sqlite", "llm": "mock"}',
        "a.toml": 'database = "sqlite:///hr.sqlite"\nllm = "mock"\n',
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert read_config_file(tmp_path / name) == {
            "database": "sqlite:///hr.sqlite",
            "llm": "mock",
        }
        assert AgentConfig.from_file(tmp_path / name).database.endswith("/hr.sqlite")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert read_config_file(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="database: Field required"):
        AgentConfig.from_file(tmp_path / "empty.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_config_file(tmp_path / "list.yaml")
    (tmp_path / "bad.toml").write_text("database = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        AgentConfig.from_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="agent configuration file not found"):
        AgentConfig.from_file(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="policy file not found"):
        Policy.from_file(tmp_path / "missing.toml")


def test_every_configuration_is_a_frozen_config_model() -> None:
    for model in (AgentConfig, SafetyConfig, RetrievalSettings, TrainConfig, LoraSettings):
        assert issubclass(model, ConfigModel)
    safety = SafetyConfig()
    with pytest.raises(pydantic.ValidationError):
        safety.max_rows = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="invalid safety configuration: max_rows: "):
        SafetyConfig(max_rows=0)
    with pytest.raises(ConfigError, match=r"invalid training configuration: .*data: name at"):
        TrainConfig.from_mapping({"base_model": "m", "data": []})
