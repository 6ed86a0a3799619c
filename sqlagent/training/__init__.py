"""The code behind ``sqlagent train``: supervised data in the runtime's prompt format, the
(Q)LoRA training run, and plans.

:func:`items_from_suite` / :func:`items_from_examples` read questions, :func:`build_records`
renders them exactly as :class:`sqlagent.SQLAgent` prompts, :func:`prepare` deduplicates and
splits, :func:`train` fine-tunes an adapter (the ``train`` extra: transformers, peft, trl) and
writes its manifest, and :func:`dry_run` / :func:`plan` size a run for ``--dry-run``.
"""

from sqlagent.training._backends import Backend, choose_backend, count_parameters
from sqlagent.training._config import (
    DEFAULT_TARGETS,
    DataSource,
    EvalSettings,
    LoraSettings,
    OptimSettings,
    QuantSettings,
    TrainConfig,
)
from sqlagent.training._data import (
    DEFAULT_AGENT,
    DataReport,
    PreparedData,
    SplitBy,
    TokenCounter,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    prepare,
    record_tokens,
    suite_row,
)
from sqlagent.training._encode import Encoded, TrainData, encode_record, load_training_data
from sqlagent.training._plan import TrainPlan, lora_parameters, plan
from sqlagent.training._random import CHATML_TEMPLATE, TINY_LLAMA, random_model
from sqlagent.training._train import DryRun, TrainResult, dry_run, train

__all__ = [
    "Backend",
    "CHATML_TEMPLATE",
    "DEFAULT_AGENT",
    "DEFAULT_TARGETS",
    "DataReport",
    "DataSource",
    "DryRun",
    "Encoded",
    "EvalSettings",
    "LoraSettings",
    "OptimSettings",
    "PreparedData",
    "QuantSettings",
    "SplitBy",
    "TINY_LLAMA",
    "TokenCounter",
    "TrainConfig",
    "TrainData",
    "TrainItem",
    "TrainPlan",
    "TrainResult",
    "build_records",
    "choose_backend",
    "count_parameters",
    "dry_run",
    "encode_record",
    "items_from_examples",
    "items_from_suite",
    "load_training_data",
    "lora_parameters",
    "plan",
    "prepare",
    "random_model",
    "record_tokens",
    "suite_row",
    "train",
]
