"""``sqlagent doctor plan`` and ``sqlagent doctor check`` through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlagent.cli._doctor import doctor
from sqlagent.demo import write_demo
from sqlagent.doctor import GPUS, PRESETS

PLAN_KEYS = {"weights_gib", "adapter_gib", "kv_bytes_per_token", "kv_cache_gib", "overhead_gib",
             "total_gib", "max_context_tokens", "gpus"}  # fmt: skip


def _json(output: str) -> dict[str, object]:
    data = json.loads(output.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


# --- plan ---------------------------------------------------------------------------------------


def test_plan_json_keys_and_anchor() -> None:
    result = CliRunner().invoke(
        doctor, ["plan", "--model", "qwen2.5-7b", "--max-seq-len", "2048", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = _json(result.output)
    assert set(data) >= PLAN_KEYS
    assert data["kv_bytes_per_token"] == 57_344
    assert data["kv_cache_gib"] == 0.109  # 112 MiB
    gpus = data["gpus"]
    assert isinstance(gpus, dict)
    assert set(gpus) == {g.name for g in GPUS}
    assert gpus["A10"]["fits"] is True
    assert gpus["T4"]["fits"] is False
    assert data["max_context_gpu"] == "H200 141GB"


def test_plan_options() -> None:
    args = ["plan", "--model", "Qwen/Qwen3-235B-A22B", "--quant", "nf4", "--tp", "2",
            "--kv-dtype", "fp8", "--batch", "4", "--gpu", "h200", "--gpu", "H100",
            "--lora-r", "8", "--lora-targets", "q,v", "--json"]  # fmt: skip
    result = CliRunner().invoke(doctor, args)
    assert result.exit_code == 0, result.output
    data = _json(result.output)
    assert set(data["gpus"]) == {"H200 141GB", "H100 80GB"}  # type: ignore[arg-type]
    assert data["kv_bytes_per_token"] == 2 * 94 * 2 * 128 * 1
    assert data["lora"] == {
        "r": 8,
        "targets": ["q_proj", "v_proj"],
        "params": data["lora"]["params"],
    }  # type: ignore[index]
    assert data["tp"] == 2
    assert data["batch"] == 4
    assert data["max_context_gpu"] == "H200 141GB"


def test_plan_table() -> None:
    result = CliRunner().invoke(doctor, ["plan", "--model", "llama-3.1-8b", "--gpu", "T4"])
    assert result.exit_code == 0, result.output
    for text in ("weights", "KV cache", "verdict per GPU", "T4", "max context"):
        assert text in result.output


def test_plan_from_config_json(tmp_path: Path) -> None:
    config = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
              "vocab_size": 151936, "tie_word_embeddings": True,
              "max_position_embeddings": 32768,
              "quantization_config": {"quant_method": "awq", "group_size": 128}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    result = CliRunner().invoke(doctor, ["plan", "--model", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result.output)
    assert data["quant"] == "awq"  # declared by the checkpoint
    assert data["model"]["params"] == 494_032_768  # type: ignore[index]
    forced = CliRunner().invoke(doctor, ["plan", "--model", str(tmp_path / "config.json"),
                                         "--quant", "bf16", "--json"])  # fmt: skip
    assert _json(forced.output)["quant"] == "bf16"


def test_plan_unknown_model_exits_2_listing_presets() -> None:
    result = CliRunner().invoke(doctor, ["plan", "--model", "gpt-7", "--json"])
    assert result.exit_code == 2
    assert "unknown model 'gpt-7'" in result.output
    for arch in PRESETS:
        assert arch.name in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["plan", "--model", "qwen2.5-7b", "--tp", "3"],
        ["plan", "--model", "qwen2.5-7b", "--gpu", "V100"],
        ["plan", "--model", "qwen2.5-7b", "--quant", "int3"],
        ["plan", "--model", "qwen2.5-7b", "--lora-targets", "qkv"],
        ["plan", "--model", "qwen2.5-7b", "--batch", "0"],
    ],
)
def test_plan_usage_errors_exit_2(args: list[str]) -> None:
    assert CliRunner().invoke(doctor, args).exit_code == 2


def test_list_models() -> None:
    result = CliRunner().invoke(doctor, ["plan", "--list-models"])
    assert result.exit_code == 0
    for arch in PRESETS:
        assert arch.name in result.output
    data = _json(CliRunner().invoke(doctor, ["plan", "--list-models", "--json"]).output)
    assert len(data["models"]) == len(PRESETS)  # type: ignore[arg-type]


# --- check --------------------------------------------------------------------------------------


def test_check_demo_table_and_report(tmp_path: Path) -> None:
    paths = write_demo(tmp_path / "demo")
    report = tmp_path / "doctor.md"
    result = CliRunner().invoke(
        doctor, ["check", "--config", str(paths.config), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    for text in ("read-only", "database", "audit sink", "ready"):
        assert text in result.output
    text = report.read_text(encoding="utf-8")
    assert "| read-only | pass |" in text
    assert "| database | pass |" in text


def test_check_json_default_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_demo(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(doctor, ["check", "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result.output)
    assert data["ok"] is True
    assert data["config"] == "sqlagent.yaml"
    checks = {c["check"]: c for c in data["checks"]}  # type: ignore[union-attr]
    assert checks["read-only"]["status"] == "pass"


def test_check_blocking_failure_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.sqlite'}"
    result = CliRunner().invoke(doctor, ["check", "--db", url, "--json"])
    assert result.exit_code == 1, result.output
    data = _json(result.output)
    assert data["ok"] is False
    table = CliRunner().invoke(doctor, ["check", "--db", url])
    assert table.exit_code == 1
    assert "blocked" in table.output


def test_check_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: 1\nnope: true\n", encoding="utf-8")
    assert CliRunner().invoke(doctor, ["check", "--config", str(bad)]).exit_code == 2
    missing = CliRunner().invoke(doctor, ["check", "--config", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2


def test_check_without_config_or_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(doctor, ["check", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["check"]: c["status"] for c in _json(result.output)["checks"]}  # type: ignore[union-attr]
    assert checks["config"] == "skip"
    assert checks["database"] == "skip"


# --- the package ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_import_is_light() -> None:
    code = (
        "import sys, sqlagent.doctor, sqlagent.cli._doctor;"
        "print([m for m in ('torch', 'transformers', 'chromadb', 'unsloth', 'bitsandbytes')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
