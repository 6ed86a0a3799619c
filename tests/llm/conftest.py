from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stub_openai import StubServer, closed_port_url
from tiny_models import build_tiny_adapter, build_tiny_model


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A fresh stub OpenAI-compatible server, shut down (threads joined) after the test."""
    server = StubServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dead_url() -> str:
    return closed_port_url()


@pytest.fixture(autouse=True)
def _no_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with its tokenizer and chat template, saved as safetensors."""
    pytest.importorskip("transformers")
    import torch

    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter for ``tiny_model`` without a manifest (tests copy it to add one)."""
    pytest.importorskip("peft")
    return build_tiny_adapter(tiny_model, tmp_path_factory.mktemp("tiny") / "adapter")
