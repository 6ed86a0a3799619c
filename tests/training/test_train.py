"""``sqlagent train``: config files and flags, backends, tokenization, and a real CPU run.

The end-to-end test fine-tunes a small random Llama (byte-level BPE tokenizer built offline
from the training prompts) on three demo questions with trl's SFTTrainer, one torch thread:
its loss must fall, its adapter must carry the manifest, load into TransformersLLM and answer
through the full agent, and be refused on another base model.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sqlagent import SQLAgent
from sqlagent.cli import main
from sqlagent.config import AgentConfig
from sqlagent.errors import ConfigError
from sqlagent.llm import ADAPTER_MANIFEST, TransformersLLM, model_fingerprint
from sqlagent.prompt import PROMPT_FORMAT_VERSION
from sqlagent.training import (
    DEFAULT_AGENT,
    DEFAULT_TARGETS,
    TINY_LLAMA,
    TrainConfig,
    TrainResult,
    choose_backend,
    encode_record,
    load_training_data,
    random_model,
    train,
)
from sqlagent.training._backends import load_unsloth, use_4bit
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # training loads torch, transformers, peft and trl

# Found, not imported (importing trl and peft here would slow every collection).
for _extra in ("trl", "peft"):
    if importlib.util.find_spec(_extra) is None:
        pytest.skip(f"the train extra ({_extra}) is not installed", allow_module_level=True)

DEMO_SUITE = ROOT / "eval" / "demo" / "suite.jsonl"
TRAINED = 3  # demo questions the tiny model learns


def _suite(path: Path, count: int) -> Path:
    lines = [line for line in DEMO_SUITE.read_text("utf-8").splitlines() if line.strip()]
    path.write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
    return path


def _config(tmp: Path, **extra: Any) -> dict[str, Any]:
    optim = {
        "learning_rate": 1e-2,
        "max_steps": 30,
        "batch_size": TRAINED,
        "grad_accum": 1,
        "logging_steps": 5,
        "gradient_checkpointing": False,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
    }
    return {
        "base_model": "base",
        "data": [{"kind": "jsonl", "path": "suite.jsonl"}],
        "output_dir": "adapter",
        "validation": 0.0,
        "max_length": 4096,
        "threads": 1,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "optim": optim,
        **extra,
    }


def _write_config(tmp: Path, data: dict[str, Any], name: str = "train.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite of three demo questions and a tiny model whose tokenizer knows their prompts."""
    tmp = tmp_path_factory.mktemp("train")
    _suite(tmp / "suite.jsonl", TRAINED)
    config = TrainConfig.from_file(_write_config(tmp, _config(tmp)))
    data = load_training_data(config)
    corpus = [m["content"] for r in data.train for m in r["messages"]]
    corpus += [r["completion"] for r in data.train]
    random_model(tmp / "base", config=TINY_LLAMA, corpus=corpus)
    random_model(tmp / "other-base", config=TINY_LLAMA, corpus=corpus, seed=7)
    return tmp


@pytest.fixture(scope="module")
def trained(workdir: Path) -> TrainResult:
    config = TrainConfig.from_file(_write_config(workdir, _config(workdir)))
    return train(config, progress=False)


# -- configuration ---------------------------------------------------------------------------------
def test_yaml_and_toml_configs_resolve_paths_and_take_overrides(tmp_path: Path) -> None:
    (tmp_path / "train.yaml").write_text(
        "base_model: models/base\n"
        "data:\n  - {kind: spider, path: data/spider}\n"
        "  - {kind: examples, path: ex.jsonl, database: 'sqlite:///hr.sqlite'}\n"
        "lora: {r: 8}\n",
        encoding="utf-8",
    )
    (tmp_path / "train.toml").write_text(
        'base_model = "smollm2"\n[[data]]\nkind = "jsonl"\npath = "suite.jsonl"\n'
        "[optim]\nlearning_rate = 1e-4\n",
        encoding="utf-8",
    )
    yaml_config = TrainConfig.from_file(tmp_path / "train.yaml")
    assert yaml_config.base_model == tmp_path / "models" / "base"
    assert yaml_config.data[0].path == tmp_path / "data" / "spider"
    assert yaml_config.data[1].database == f"sqlite:///{tmp_path / 'hr.sqlite'}"
    assert yaml_config.output_dir == tmp_path / "runs" / "adapter"
    assert (yaml_config.lora.r, yaml_config.lora.alpha) == (8, 32)
    assert yaml_config.lora.target_modules == DEFAULT_TARGETS
    assert len(DEFAULT_TARGETS) == 7
    assert yaml_config.quantization.load_in_4bit == "auto"
    assert yaml_config.quantization.double_quant
    toml_config = TrainConfig.from_file(tmp_path / "train.toml")
    assert str(toml_config.base_model) == "smollm2"  # a named model stays a name
    assert toml_config.optim.learning_rate == 1e-4
    patched = yaml_config.with_overrides(
        {"lora.r": 4, "optim.max_steps": 7, "output_dir": "elsewhere", "seed": None}
    )
    assert (patched.lora.r, patched.optim.max_steps, patched.seed) == (4, 7, 0)
    assert patched.output_dir == Path("elsewhere")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base_model: m\n", "data"),
        ("base_model: m\ndata: []\n", "at least one source"),
        ("base_model: m\ndata: [{kind: csv, path: x}]\n", "kind"),
        ("base_model: m\ndata: [{kind: jsonl, path: x}]\nlora: {r: 0}\n", "lora.r"),
        ("base_model: m\ndata: [{kind: jsonl, path: x}]\nlearning_rate: 1\n", "learning_rate"),
        ("- just a list\n", "mapping"),
    ],
)
def test_bad_configs_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_file(path)


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    config = TrainConfig.from_mapping({"base_model": "m", "data": [{"kind": "jsonl", "path": "x"}]})
    with pytest.raises(ConfigError, match=r"unknown setting 'lora\.rank'"):
        config.with_overrides({"lora.rank": 4})


def test_recipes_under_training_parse() -> None:
    recipes = sorted((ROOT / "training").glob("*.y*ml")) + sorted(
        (ROOT / "training").glob("*.toml")
    )
    assert len(recipes) >= 3
    for recipe in recipes:
        config = TrainConfig.from_file(recipe)
        assert config.lora.r == 16
        assert config.lora.target_modules == DEFAULT_TARGETS


# -- backends --------------------------------------------------------------------------------------
def test_backend_choice() -> None:
    assert choose_backend("auto", cuda=True, unsloth_installed=True, gguf=False) == "unsloth"
    assert choose_backend("auto", cuda=False, unsloth_installed=True, gguf=False) == "peft"
    assert choose_backend("auto", cuda=True, unsloth_installed=False, gguf=False) == "peft"
    assert choose_backend("auto", cuda=True, unsloth_installed=True, gguf=True) == "peft"
    assert choose_backend("peft", cuda=True, unsloth_installed=True, gguf=False) == "peft"
    with pytest.raises(ConfigError, match="not installed"):
        choose_backend("unsloth", cuda=True, unsloth_installed=False, gguf=False)
    with pytest.raises(ConfigError, match="CUDA"):
        choose_backend("unsloth", cuda=False, unsloth_installed=True, gguf=False)
    with pytest.raises(ConfigError, match="GGUF"):
        choose_backend("unsloth", cuda=True, unsloth_installed=True, gguf=True)


def test_four_bit_needs_a_gpu() -> None:
    assert use_4bit("auto", cuda=False, gguf=False) is False
    assert use_4bit(False, cuda=True, gguf=False) is False
    with pytest.raises(ConfigError, match="CUDA GPU"):
        use_4bit(True, cuda=False, gguf=False)


def test_unsloth_path_passes_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stand-in for unsloth (no GPU here): the documented calls get the config's values."""
    calls: dict[str, Any] = {}
    tokenizer = types.SimpleNamespace(chat_template=None, pad_token=None, eos_token="</s>")

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(**kwargs: Any) -> tuple[str, Any]:
            calls["load"] = kwargs
            return "model", tokenizer

        @staticmethod
        def get_peft_model(model: str, **kwargs: Any) -> str:
            calls["peft"] = kwargs
            return model + "+lora"

    monkeypatch.setitem(
        sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FastLanguageModel)
    )
    config = TrainConfig.from_mapping(
        {"base_model": str(tmp_path), "data": [{"kind": "jsonl", "path": "x"}], "seed": 3}
    )
    model, tok = load_unsloth(config, "bf16", True)
    assert model == "model+lora"
    assert calls["load"] == {
        "model_name": str(tmp_path),
        "max_seq_length": 2048,
        "dtype": "bf16",
        "load_in_4bit": True,
        "local_files_only": True,
    }
    assert calls["peft"]["r"] == 16
    assert calls["peft"]["lora_alpha"] == 32
    assert calls["peft"]["target_modules"] == list(DEFAULT_TARGETS)
    assert calls["peft"]["use_gradient_checkpointing"] == "unsloth"
    assert calls["peft"]["random_state"] == 3
    assert tok.chat_template is not None
    assert tok.pad_token == "</s>"


# -- tokenization ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_records_tokenize_exactly_as_the_runtime_prompts(workdir: Path) -> None:
    from transformers import AutoTokenizer

    config = TrainConfig.from_file(_write_config(workdir, _config(workdir)))
    record = load_training_data(config).train[0]
    tokenizer = AutoTokenizer.from_pretrained(workdir / "base", local_files_only=True)
    encoded = encode_record(record, tokenizer)
    # what TransformersLLM._generate feeds generate()
    prompt = tokenizer.apply_chat_template(
        record["messages"], tokenize=False, add_generation_prompt=True
    )
    runtime = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert encoded.input_ids[: len(runtime)] == runtime
    assert encoded.labels[: len(runtime)] == [-100] * len(runtime)
    answer = encoded.input_ids[len(runtime) :]
    assert encoded.labels[len(runtime) :] == answer
    # the answer, then the template's end of the assistant turn (<|im_end|>): the model
    # learns to stop
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == record["completion"]
    assert tokenizer.eos_token_id in answer
    assert encoded.completion_tokens == len(answer)


def test_answers_end_with_eos_when_the_template_has_no_end_of_turn(workdir: Path) -> None:
    from transformers import AutoTokenizer

    from sqlagent.llm import FALLBACK_CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(workdir / "base", local_files_only=True)
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE  # "### Assistant\n...": no stop token
    record = {
        "messages": [{"role": "user", "content": "How many employees?"}],
        "completion": "```sql\nSELECT COUNT(*) FROM employees\n```",
    }
    encoded = encode_record(record, tokenizer)
    assert encoded.input_ids[-1] == tokenizer.eos_token_id
    assert encoded.labels[-1] == tokenizer.eos_token_id


# -- a real run ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_model_trains_and_answers_through_the_agent(
    workdir: Path, trained: TrainResult
) -> None:
    metrics = trained.metrics
    assert metrics["steps"] == 30
    assert metrics["first_logged_loss"] > 4 * metrics["last_logged_loss"]  # the loss falls
    assert metrics["tokens_per_s"] > 0
    assert metrics["process_max_rss"] > 0
    assert 0 < metrics["trainable_parameters"] < metrics["total_parameters"]
    rows = [
        json.loads(line)
        for line in (trained.output_dir / "train_log.jsonl").read_text("utf-8").splitlines()
    ]
    assert [r["step"] for r in rows][:2] == [1, 5]
    assert all("tokens_per_s" in r for r in rows)

    out = trained.output_dir
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert (out / "tokenizer_config.json").is_file()
    assert not (out / "checkpoints").exists()
    manifest = json.loads((out / ADAPTER_MANIFEST).read_text("utf-8"))
    assert manifest["prompt_format"] == PROMPT_FORMAT_VERSION
    assert manifest["base_model"] == {
        "name": "base",
        "fingerprint": model_fingerprint(workdir / "base"),
    }
    assert manifest["backend"] == "peft"
    assert manifest["quantization"] is None
    assert manifest["data"]["counts"]["train"] == TRAINED
    assert manifest["data"]["hash"].startswith("sha256:")
    assert manifest["training"]["lora"]["r"] == 8
    assert manifest["metrics"] == metrics
    assert manifest["versions"]["trl"] == "1.16.0"
    assert manifest["versions"]["prompt_format"] == PROMPT_FORMAT_VERSION

    # the adapter loads into the runtime and answers through the whole agent
    llm = TransformersLLM(workdir / "base", adapter=out, max_new_tokens=48, device="cpu")
    questions = [
        json.loads(line) for line in (workdir / "suite.jsonl").read_text("utf-8").splitlines()
    ]
    data = load_training_data(TrainConfig.from_file(workdir / "train.json"))
    config = AgentConfig.from_mapping({**DEFAULT_AGENT, "database": data.train[0]["url"]})
    with SQLAgent(config, llm=llm) as agent:
        for question in questions:
            answer = agent.ask(question["question"])
            assert answer.status == "answered", answer.attempts
            assert answer.attempts[0].sql == question["sql"]  # what the model wrote, verbatim


@pytest.mark.slow
def test_adapter_is_refused_on_another_base_model(workdir: Path, trained: TrainResult) -> None:
    llm = TransformersLLM(workdir / "other-base", adapter=trained.output_dir, device="cpu")
    with pytest.raises(ConfigError, match="was trained on base model 'base'"):
        llm.load()


# -- the command -----------------------------------------------------------------------------------
def test_cli_dry_run_prints_the_plan(workdir: Path) -> None:
    config = _write_config(workdir, _config(workdir), "cli.json")
    result = CliRunner().invoke(main, ["train", str(config), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["data"]["train"] == TRAINED
    assert payload["exact_tokens"] is True
    assert payload["plan"]["steps"] == 30  # max_steps wins
    assert payload["plan"]["lora_params"] > 0
    assert payload["backend"] == "peft"
    assert payload["device"] == "cpu"
    table = CliRunner().invoke(main, ["train", str(config), "--dry-run", "--max-steps", "9"])
    assert table.exit_code == 0, table.output
    assert "optimizer steps" in table.stdout
    assert "9" in table.stdout


@pytest.mark.slow
def test_cli_trains_with_flags_and_evaluates(workdir: Path) -> None:
    suite = _suite(workdir / "suite5.jsonl", TRAINED + 2)
    data = _config(workdir, validation=0.4, eval={"enabled": False, "max_new_tokens": 8})
    config = _write_config(workdir, data, "cli-train.json")
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(config),
            "--data",
            f"jsonl:{suite}",
            "--output-dir",
            str(workdir / "cli-adapter"),
            "--max-steps",
            "2",
            "--lora-r",
            "4",
            "--eval",
            "--quiet",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout.strip().splitlines()[-1])
    assert manifest["metrics"]["steps"] == 2
    assert manifest["training"]["lora"]["r"] == 4
    out = workdir / "cli-adapter"
    assert (out / ADAPTER_MANIFEST).is_file()
    assert manifest["data"]["counts"]["validation"] == 2
    report = json.loads((out / "eval" / "results.json").read_text("utf-8"))
    assert report["summary"]["overall"]["count"] == 2  # --eval: the validation split
    assert (out / "eval" / "report.html").is_file()
    suite_rows = [
        json.loads(line) for line in (out / "validation.jsonl").read_text("utf-8").splitlines()
    ]
    assert {r["question"] for r in suite_rows} <= {
        json.loads(line)["question"] for line in suite.read_text("utf-8").splitlines()
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.yaml"], "not found"),
        (["train", "{config}", "--data", "csv:x"], "expected spider:PATH"),
        (["train", "{config}", "--lora-r", "0"], "lora.r"),
        (["train", "{config}", "--load-in-4bit", "true"], "CUDA GPU"),
        (["train", "{config}", "--base-model", "{tmp}/nowhere"], "no base model"),
    ],
)
def test_cli_usage_errors_exit_2(workdir: Path, args: list[str], message: str) -> None:
    config = _write_config(workdir, _config(workdir), "errors.json")
    argv = [a.format(config=config, tmp=workdir) for a in args]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_train_bench_runs_and_ends_with_json() -> None:
    """The GPU throughput benchmark, on the CPU with a random tiny model for two steps."""
    import subprocess

    script = ROOT / "benchmarks" / "train_bench.py"
    command = [sys.executable, str(script), "--model", "random:tiny", "--steps", "2",
               "--threads", "1", "--batch-size", "2", "--json"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["steps"] == 2
    assert figures["backend"] == "peft"
    assert figures["tokens_per_s"] > 0
    assert figures["peak_memory_kind"] == "process_max_rss"
    assert figures["trainable_parameters"] > 0
