"""Tiny models built offline for the local backend's tests: a random Llama, its tokenizer, a LoRA.

Everything is made here from a handful of words (no download): a word-level tokenizer with a
simple chat template, a one-layer Llama with random weights saved as safetensors, and a LoRA
adapter with random (non-zero) weights, so it visibly changes the model's output.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "SELECT COUNT(*) FROM employees ;",
    "SELECT name , salary FROM employees WHERE salary > 1000 ;",
    "how many employees are there ?",
    "You write SQL that answers questions about a database",
    "```sql ```",
]
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
CONTEXT = 128


def build_tiny_model(
    directory: Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0
) -> Path:
    """A one-layer Llama (hidden size 16) and its tokenizer, saved into ``directory``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.decoder = decoders.WordPiece()  # joins words with spaces
    words.train_from_iterator(CORPUS, trainer=trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=CONTEXT,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def build_tiny_adapter(base: Path, directory: Path, *, seed: int = 1) -> Path:
    """A rank-2 LoRA on the attention projections of ``base``, with random weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(directory)
    return directory
