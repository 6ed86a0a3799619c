"""A stub OpenAI-compatible server on 127.0.0.1: real sockets, scripted replies, seen requests."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_CONTENT = "```sql\nSELECT 1\n```"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a chat completion with ``content``, or ``status``/``raw`` as given."""

    status: int = 200
    content: str | None = DEFAULT_CONTENT
    raw: bytes | None = None  # sent as the body instead of a chat completion
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # concurrent tests connect at once; the default backlog is 5
    daemon_threads = False  # so that close() joins every handler thread
    block_on_close = True


class StubServer:
    """Serves ``POST /v1/chat/completions`` from a queue of :class:`Reply` (then ``Reply()``)."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The API root, as users pass it: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def plan(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def close(self) -> None:
        self._stopping.set()  # slow handlers stop waiting
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            return self._replies.popleft() if self._replies else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = stub._next(Seen(self.path, dict(self.headers.items()), body))
                if self.path != "/v1/chat/completions":
                    reply = Reply(404, raw=b'{"error": {"message": "no such route"}}')
                if reply.delay_s and stub._stopping.wait(reply.delay_s):
                    return
                payload = reply.raw
                if payload is None:
                    payload = json.dumps(
                        {
                            "id": "chatcmpl-stub",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.content},
                                    "finish_reason": "stop",
                                }
                            ],
                        }
                    ).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def closed_port_url() -> str:
    """An API root on a port where nothing listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
