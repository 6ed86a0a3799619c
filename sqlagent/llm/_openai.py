"""OpenAICompatibleLLM: any server that speaks ``POST /v1/chat/completions``.

vLLM, SGLang, llama.cpp's ``llama-server`` and Ollama all do. This is the path for deployments
that outgrow one machine: vLLM serves the same base model *and* the LoRA adapters trained by
``sqlagent train`` across GPUs, with continuous batching on the server side. httpx is an
optional extra (``pip install 'sqlagent[openai]'``) and is imported only when a backend is built.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlagent.errors import ConfigError, LLMError, LLMUnavailableError
from sqlagent.llm._base import Message

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["OpenAICompatibleLLM"]

_API_KEY_ENV = "OPENAI_API_KEY"
_RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream"})
_MAX_DETAIL = 300
_MAX_BACKOFF_S = 8.0


class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP API.

    ``base_url`` is the **API root**, the URL that ``/chat/completions`` is appended to:
    ``http://127.0.0.1:8000/v1`` for vLLM and SGLang, ``http://127.0.0.1:8080/v1`` for
    llama.cpp, ``http://127.0.0.1:11434/v1`` for Ollama. A bare host such as
    ``http://127.0.0.1:8000`` means ``http://127.0.0.1:8000/v1``; a URL with any other path is
    used as given (a proxy at ``https://gateway/llm/v1``); a trailing slash or a trailing
    ``/chat/completions`` is dropped.

    ``model`` is the served model name. With vLLM it may name a LoRA adapter served next to
    the base model (``vllm serve BASE --enable-lora --lora-modules sql-hr=/path/to/adapter``,
    then ``model="sql-hr"``), so one server answers for several fine-tuned adapters.

    Each call sends ``{"model", "messages", "max_tokens", "temperature", **extra_body}``
    (``extra_body`` may override ``max_tokens``/``temperature`` and add server options such as
    ``{"stop": [";"]}`` or vLLM's ``{"top_k": 1}``) and returns ``choices[0].message.content``.
    ``api_key`` defaults to the ``OPENAI_API_KEY`` environment variable when that is set; it is
    sent as a bearer token and never shown in ``repr`` or error messages.

    Errors: :class:`~sqlagent.errors.LLMUnavailableError` for connection failures, time limits
    (``timeout_s`` per request phase), HTTP 5xx and 429; :class:`~sqlagent.errors.LLMError` for
    other HTTP errors (an unknown model or adapter is a 404 on vLLM) and malformed answers. With
    ``max_retries=n``, the unavailable cases are tried up to ``n`` more times, waiting
    ``retry_backoff_s``, then twice that, and so on (at most 8 s).

    ``complete`` shares one connection pool (thread-safe) that :meth:`close` or ``with`` closes;
    a ``transport`` passed in is closed with it, as httpx does. ``acomplete`` opens a short-lived
    async client per call (all sharing one TLS context), so the backend works from any event
    loop (``asyncio.run`` twice, several loops in several threads); a ``transport`` passed in
    must then be an ``httpx.AsyncBaseTransport`` too (``httpx.MockTransport`` is both) and is
    left open.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 512,
        temperature: float = 0.0,
        extra_body: Mapping[str, Any] | None = None,
        max_retries: int = 0,
        retry_backoff_s: float = 0.5,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
    ) -> None:
        _require_httpx()
        if not model:
            raise ConfigError("OpenAICompatibleLLM needs the served model's name (model=...)")
        if timeout_s <= 0 or max_tokens < 1 or max_retries < 0 or retry_backoff_s < 0:
            raise ConfigError(
                "OpenAICompatibleLLM: timeout_s must be > 0, max_tokens >= 1, "
                "max_retries >= 0 and retry_backoff_s >= 0"
            )
        reserved = sorted(_RESERVED_BODY_KEYS & set(extra_body or {}))
        if reserved:
            raise ConfigError(f"extra_body may not set {', '.join(reserved)}")
        self.base_url = _api_root(base_url)
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.name = name or f"openai:{model}"
        key = api_key if api_key is not None else os.environ.get(_API_KEY_ENV)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._url = f"{self.base_url}/chat/completions"
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._ssl_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool of ``complete``; later calls raise ``LLMError``."""
        with self._client_lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def complete(self, messages: Sequence[Message]) -> str:
        body = self._body(messages)
        attempt = 0
        while True:
            try:
                return self._answer(self._post(body))
            except LLMUnavailableError:
                if attempt >= self.max_retries:
                    raise
            time.sleep(self._backoff(attempt))
            attempt += 1

    async def acomplete(self, messages: Sequence[Message]) -> str:
        import httpx

        body = self._body(messages)
        transport = self._async_transport()
        client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(self.timeout_s), verify=self._ssl_context()
        )
        attempt = 0
        try:
            while True:
                try:
                    return self._answer(await self._apost(client, body))
                except LLMUnavailableError:
                    if attempt >= self.max_retries:
                        raise
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
        finally:
            if transport is None:  # ours: close it; a caller's transport stays open
                await client.aclose()

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        import httpx

        try:
            return self._sync_client().post(self._url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc

    async def _apost(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        import httpx

        try:
            return await client.post(self._url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc

    def _body(self, messages: Sequence[Message]) -> dict[str, Any]:
        if self._closed:
            raise LLMError(f"{self.name}: the backend is closed")
        return {
            "model": self.model,
            "messages": [message.to_dict() for message in messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            **self.extra_body,
        }

    def _sync_client(self) -> httpx.Client:
        import httpx

        with self._client_lock:
            if self._closed:
                raise LLMError(f"{self.name}: the backend is closed")
            if self._client is None:
                if self._transport is not None and not isinstance(
                    self._transport, httpx.BaseTransport
                ):
                    raise ConfigError(f"{self.name}: the transport has no sync interface")
                self._client = httpx.Client(
                    transport=self._transport,
                    timeout=httpx.Timeout(self.timeout_s),
                    verify=self._ssl_context(),
                )
            return self._client

    def _ssl_context(self) -> ssl.SSLContext:
        """One TLS context per backend: building one costs ~20 ms, and async calls need many."""
        import httpx

        with self._ssl_lock:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            return self._ssl

    def _async_transport(self) -> httpx.AsyncBaseTransport | None:
        import httpx

        if self._transport is None or isinstance(self._transport, httpx.AsyncBaseTransport):
            return self._transport
        raise ConfigError(f"{self.name}: the transport has no async interface")

    def _backoff(self, attempt: int) -> float:
        return float(min(_MAX_BACKOFF_S, self.retry_backoff_s * 2**attempt))

    def _unavailable(self, exc: httpx.TransportError) -> LLMUnavailableError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return LLMUnavailableError(
                f"{self.name}: no answer from {self._url} within {self.timeout_s:g} s"
            )
        detail = str(exc) or type(exc).__name__
        return LLMUnavailableError(f"{self.name}: cannot reach {self._url}: {detail}")

    def _answer(self, response: httpx.Response) -> str:
        status = response.status_code
        if status >= 500 or status == 429:
            raise LLMUnavailableError(
                f"{self.name}: {self._url} answered HTTP {status}: {_detail(response)}"
            )
        if status >= 400:
            raise LLMError(f"{self.name}: {self._url} answered HTTP {status}: {_detail(response)}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError) as exc:
            raise LLMError(
                f"{self.name}: malformed chat completion from {self._url} "
                f"(expected choices[0].message.content): {_excerpt(response.text)}"
            ) from exc
        if not isinstance(content, str):
            raise LLMError(f"{self.name}: the chat completion has no text content ({content!r})")
        return content


def _require_httpx() -> None:
    try:
        import httpx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - httpx is installed in development
        raise ConfigError(
            "the OpenAI-compatible backend needs httpx: pip install 'sqlagent[openai]'"
        ) from exc


def _api_root(base_url: str) -> str:
    url = base_url.strip().rstrip("/").removesuffix("/chat/completions").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"invalid base URL {base_url!r}: expected the API root, such as http://127.0.0.1:8000/v1"
        )
    return url if parts.path else f"{url}/v1"


def _detail(response: httpx.Response) -> str:
    """The server's error message: OpenAI's ``{"error": {"message"}}`` or vLLM's ``{"message"}``."""
    try:
        data = response.json()
    except ValueError:
        return _excerpt(response.text) or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error or data.get("message")
        if isinstance(message, str) and message:
            return _excerpt(message)
    return _excerpt(json.dumps(data))


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
