"""Models with a real architecture and random weights, built offline.

For what needs a model's *shape* but not its knowledge: throughput and memory benchmarks of
``sqlagent train`` (``benchmarks/train_bench.py``: Qwen2.5-7B's architecture with random
weights), the doctor's memory estimates against measurement, and the CPU test that trains a tiny
model for a few steps and answers through the agent. Nothing is downloaded: the tokenizer is a
byte-level BPE trained on the given texts (any text round-trips exactly), with a ChatML chat
template, and its ids fit any vocabulary of the architecture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CHATML_TEMPLATE", "TINY_LLAMA", "random_model"]

#: The chat template of the tokenizers built here (Qwen's and SmolLM2's format).
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: A Llama small enough to train for a few steps on one CPU thread in seconds.
TINY_LLAMA: Mapping[str, Any] = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "initializer_range": 0.2,  # sharp logits: a few steps make the loss fall visibly
}


def random_model(
    directory: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    corpus: Sequence[str],
    vocab_size: int = 1000,
    seed: int = 0,
    device: str | None = None,
) -> Path:
    """Write a tokenizer trained on ``corpus`` and a model of architecture ``config`` (a
    ``config.json`` mapping with ``model_type``) with random weights into ``directory``.

    Weights are bf16 on a CUDA device (built there directly: fast even at 7B) and fp32 on the
    CPU. Needs the ``local`` extra (torch, transformers).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    target = Path(directory)
    spec = dict(config)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        list(corpus),
        trainer=trainers.BpeTrainer(
            vocab_size=min(vocab_size, int(spec["vocab_size"])),
            special_tokens=list(_SPECIAL),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(target)
    model_type = spec.pop("model_type")
    spec.update(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    architecture = AutoConfig.for_model(model_type, **spec)
    place = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    with torch.device(place):
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            architecture, dtype=torch.bfloat16 if place.startswith("cuda") else torch.float32
        )
    model.save_pretrained(target)
    del model
    if place.startswith("cuda"):
        torch.cuda.empty_cache()
    return target
