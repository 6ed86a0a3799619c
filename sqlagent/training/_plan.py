"""``sqlagent train --dry-run``: what a run would do, computed without loading a model.

The memory figure is a rough *estimate* for LoRA fine-tuning: frozen weights at their storage
size (2 bytes a parameter in 16-bit, about 0.5 in 4-bit), plus the LoRA parameters in fp32 with
two Adam moments and a gradient (16 bytes each). Activations, the CUDA context and allocator
slack are not counted; plan for more.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlagent.doctor import arch_from_config
from sqlagent.errors import ConfigError
from sqlagent.prompt import count_tokens
from sqlagent.training._config import DEFAULT_TARGETS
from sqlagent.training._data import TokenCounter, record_tokens

__all__ = ["TrainPlan", "lora_parameters", "plan"]

WeightDtype = Literal["float32", "bfloat16", "float16", "4bit"]
_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "4bit": 0.5}
_LORA_BYTES = 16  # fp32 weight + gradient + two Adam moments


@dataclass(frozen=True, slots=True)
class TrainPlan:
    train_examples: int
    validation_examples: int
    train_tokens: int
    epochs: float
    batch_size: int
    grad_accum: int
    steps: int
    weight_bytes: int | None  # estimate; None without a parameter count
    lora_params: int | None  # None without a config.json
    memory_estimate_bytes: int | None  # estimate: weights + LoRA training state only


def lora_parameters(
    config: dict[str, Any] | str | os.PathLike[str],
    r: int,
    target_modules: Sequence[str] = DEFAULT_TARGETS,
) -> int:
    """LoRA parameters ``r * (in + out)`` per adapted linear layer of a ``config.json`` (a
    mapping or a path), counted from the model's shape by :mod:`sqlagent.doctor` (grouped-query
    attention, MoE experts per expert); names the model does not have are ignored."""
    cfg = config if isinstance(config, dict) else json.loads(Path(config).read_text("utf-8"))
    return arch_from_config(cfg).lora_parameters(r, target_modules)


def plan(
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]] = (),
    *,
    epochs: int = 1,
    batch_size: int = 1,
    grad_accum: int = 1,
    count: TokenCounter = count_tokens,
    parameters: int | None = None,
    dtype: WeightDtype = "bfloat16",
    config: dict[str, Any] | str | os.PathLike[str] | None = None,
    lora_r: int = 16,
    target_modules: Sequence[str] = DEFAULT_TARGETS,
) -> TrainPlan:
    """Examples, tokens and optimizer steps of a run, and a rough memory estimate.

    ``steps = ceil(len(train) * epochs / (batch_size * grad_accum))``. ``parameters`` is the
    model's parameter count (for the weights' size); ``config`` its ``config.json`` (for the
    LoRA parameter count).
    """
    if min(epochs, batch_size, grad_accum) < 1:
        raise ConfigError("epochs, batch_size and grad_accum must be at least 1")
    steps = math.ceil(len(train) * epochs / (batch_size * grad_accum))
    weights = None if parameters is None else int(parameters * _BYTES[dtype])
    lora = None if config is None else lora_parameters(config, lora_r, target_modules)
    memory = None
    if weights is not None:
        memory = weights + (lora or 0) * _LORA_BYTES
    return TrainPlan(
        train_examples=len(train),
        validation_examples=len(validation),
        train_tokens=sum(record_tokens(r, count) for r in train),
        epochs=epochs,
        batch_size=batch_size,
        grad_accum=grad_accum,
        steps=steps,
        weight_bytes=weights,
        lora_params=lora,
        memory_estimate_bytes=memory,
    )
