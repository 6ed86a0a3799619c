"""Real Redis for the serve tests: the shared server (one database number, a key prefix per
test, cleaned up after it) and throwaway ``redis-server`` processes to kill.

The shared server's URL can be changed with SQLAGENT_TEST_REDIS_URL (default database 11 on
127.0.0.1:6379); tests that need it skip with the reason when it does not answer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sqlagent.serve import SharedStateError, probe_redis

REDIS_URL = os.environ.get("SQLAGENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@dataclass(frozen=True)
class SharedRedis:
    """The shared test Redis and this test's key prefix (every key it made starts with it)."""

    url: str
    prefix: str

    def stored_keys(self) -> list[str]:
        import redis

        with contextlib.closing(redis.Redis.from_url(self.url)) as client:
            return sorted(k.decode() for k in client.scan_iter(f"{self.prefix}:*", count=1000))

    def clean(self) -> None:
        import redis

        with contextlib.closing(redis.Redis.from_url(self.url)) as client:
            keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
            if keys:
                client.delete(*keys)


@pytest.fixture
def shared_redis() -> Iterator[SharedRedis]:
    try:
        probe_redis(REDIS_URL, timeout_s=1.0)
    except SharedStateError as exc:
        pytest.skip(f"no Redis for the tests: {exc}")
    shared = SharedRedis(REDIS_URL, f"t-{uuid.uuid4().hex[:10]}")
    yield shared
    shared.clean()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A ``redis-server`` of our own on a free loopback port, without persistence: to stop,
    kill and start again (the same port) in fault tests."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary is not None
        assert self.process is None
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                probe_redis(self.url, timeout_s=0.5)
                return
            except SharedStateError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.kill()
