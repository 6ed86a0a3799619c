"""The code behind ``sqlagent train``: supervised data in the runtime's prompt format, and plans.

:func:`items_from_suite` / :func:`items_from_examples` read questions, :func:`build_records`
renders them exactly as the agent prompts, :func:`prepare` deduplicates, filters and splits, and
:func:`plan` sizes a run for ``--dry-run``. The training loop itself is not here yet.
"""

from sqlagent.training._data import (
    DataReport,
    PreparedData,
    SplitBy,
    TableSelector,
    TokenCounter,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    prepare,
    record_tokens,
)
from sqlagent.training._plan import TrainPlan, lora_parameters, plan

__all__ = [
    "DataReport",
    "PreparedData",
    "SplitBy",
    "TableSelector",
    "TokenCounter",
    "TrainItem",
    "TrainPlan",
    "build_records",
    "items_from_examples",
    "items_from_suite",
    "lora_parameters",
    "plan",
    "prepare",
    "record_tokens",
]
