"""What a training run learns from: records read and split (:func:`load_training_data`), then
tokenized exactly as :class:`~sqlagent.llm.TransformersLLM` tokenizes at inference
(:func:`encode_record`): the tokenizer's chat template with the generation prompt, no extra
special tokens; the loss covers the answer and the end-of-sequence token only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError
from sqlagent.safety import Policy
from sqlagent.training._config import TrainConfig
from sqlagent.training._data import (
    DataReport,
    TrainItem,
    build_records,
    items_from_examples,
    items_from_suite,
    prepare,
)

__all__ = [
    "Encoded",
    "TrainData",
    "data_hash",
    "encode_record",
    "encode_split",
    "load_training_data",
]


@dataclass(frozen=True, slots=True)
class TrainData:
    """Records split for a run, with the counts and the hash of what was trained on."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    report: DataReport
    agent: AgentConfig | None
    policy: Policy | None


def _items(config: TrainConfig, agent: AgentConfig | None) -> list[TrainItem]:
    items: list[TrainItem] = []
    for source in config.data:
        if source.kind == "examples":
            path = source.path or (agent.examples if agent is not None else None)
            url = source.database or (agent.database if agent is not None else None)
            if path is None or url is None:
                raise ConfigError(
                    "an 'examples' data source needs path and database, or an agent config "
                    "with examples"
                )
            found = items_from_examples(path, url, role=source.role)
            items.extend(found[: source.limit] if source.limit else found)
        else:
            if source.path is None:
                raise ConfigError(f"a {source.kind!r} data source needs a path")
            found = items_from_suite(source.kind, source.path, limit=source.limit)
            if source.role is not None:
                found = [replace(item, role=item.role or source.role) for item in found]
            items.extend(found)
    if not items:
        raise ConfigError("the data sources hold no questions")
    return items


def load_training_data(
    config: TrainConfig, *, progress: Callable[[int], None] | None = None
) -> TrainData:
    """Read the sources, render every record with the runtime's prompt, dedup and split.

    The length filter in tokens happens later, with the model's tokenizer (:func:`train`,
    :func:`dry_run`).
    """
    agent = AgentConfig.from_file(config.agent) if config.agent is not None else None
    policy = Policy.from_file(agent.policy) if agent is not None and agent.policy else None
    items = _items(config, agent)
    records = build_records(items, agent=agent, policy=policy, progress=progress)
    data = prepare(
        records, validation=config.validation, split_by=config.split_by, seed=config.seed
    )
    return TrainData(data.train, data.validation, data.report, agent, policy)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A tokenized record: ``labels`` is ``-100`` over the prompt."""

    input_ids: list[int]
    labels: list[int]

    @property
    def completion_tokens(self) -> int:
        return sum(1 for label in self.labels if label != -100)


def encode_record(record: Mapping[str, Any], tokenizer: Any) -> Encoded:
    """Tokenize a record as the runtime will see it, and the answer as the chat template closes
    an assistant turn.

    The prompt is the chat template applied to the messages with the generation prompt,
    tokenized without added special tokens: what :class:`~sqlagent.llm.TransformersLLM` feeds
    ``generate()``. The answer is the gold completion followed by the template's end of the
    assistant turn (``<|im_end|>`` in ChatML), or the end-of-sequence token when the template
    has none, so the model learns to stop. Only the answer's tokens have a loss.
    """
    messages = list(record["messages"])
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": record["completion"]}], tokenize=False
    )
    answer = full[len(prompt) :] if full.startswith(prompt) else record["completion"]
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    special = set(tokenizer.all_special_ids)
    eos = tokenizer.eos_token_id
    if eos is not None and not special.intersection(answer_ids):
        answer_ids.append(int(eos))
    return Encoded(prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids)


def _encode_all(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[Encoded], int]:
    encoded = [encode_record(r, tokenizer) for r in records]
    kept = [e for e in encoded if len(e.input_ids) <= max_length]
    return kept, len(encoded) - len(kept)


def encode_split(
    data: TrainData, tokenizer: Any, max_length: int
) -> tuple[list[Encoded], list[Encoded], DataReport]:
    """Both splits tokenized, records over ``max_length`` dropped, the counts updated."""
    train, too_long = _encode_all(data.train, tokenizer, max_length)
    validation, val_long = _encode_all(data.validation, tokenizer, max_length)
    report = replace(
        data.report,
        too_long=data.report.too_long + too_long + val_long,
        train=len(train),
        validation=len(validation),
        train_tokens=sum(len(e.input_ids) for e in train),
    )
    return train, validation, report


def data_hash(records: Sequence[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for record in records:
        payload = {"messages": record["messages"], "completion": record["completion"]}
        digest.update(json.dumps(payload, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
