"""Request bodies and response shapes: the native ``/v1/chat`` and the OpenAI chat format."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import pydantic

from sqlagent.types import Answer

__all__ = [
    "ChatCompletionRequest",
    "ChatRequest",
    "completion",
    "completion_chunks",
    "error_body",
    "readable",
    "to_json",
]

_TABLE_ROWS = 20


class ChatRequest(pydantic.BaseModel):
    """``POST /v1/chat``: only the question. The role comes from the credential."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    question: str = pydantic.Field(min_length=1)


class _TextPart(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class _ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    role: str
    content: str | list[_TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(pydantic.BaseModel):
    """``POST /v1/chat/completions``: the last user message is the question. Sampling options
    (``temperature``, ``max_tokens`` ...) are accepted and ignored: the model runs as configured
    on the server, and a chat ``system`` message cannot change what the agent may do."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    model: str | None = None
    messages: list[_ChatMessage] = pydantic.Field(min_length=1)
    stream: bool = False

    def question(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text().strip()
        return ""


def to_json(data: Any) -> bytes:
    """JSON for a response body; database values JSON cannot hold (dates, decimals, bytes)
    are written with ``str()``, as in the CLI's ``--json``."""
    return json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")


def error_body(status: int, kind: str, message: str, request_id: str) -> dict[str, Any]:
    """Every error, in the OpenAI error shape so OpenAI clients show the message."""
    return {
        "error": {"message": message, "type": kind, "code": status},
        "request_id": request_id,
    }


def readable(answer: Answer) -> str:
    """The assistant message of a chat completion: the outcome, the SQL and the first rows."""
    if answer.status == "rejected":
        label = "Denied" if answer.denied else "Refused"
        lines = [f"{label}: the query was not allowed for role {answer.role!r}."]
        if answer.verdict is not None:
            lines += [f"- {v.code}: {v.message}" for v in answer.verdict.violations]
        return "\n".join(lines)
    if answer.status == "failed":
        return f"Failed: {answer.error}"
    out = [f"```sql\n{answer.sql}\n```", ""]
    if answer.columns:
        out.append("| " + " | ".join(answer.columns) + " |")
        out.append("|" + "---|" * len(answer.columns))
        for row in answer.rows[:_TABLE_ROWS]:
            cells = ("NULL" if v is None else str(v).replace("|", "\\|") for v in row)
            out.append("| " + " | ".join(cells) + " |")
    shown = min(answer.row_count, _TABLE_ROWS)
    note = f"{answer.row_count} row(s)"
    if shown < answer.row_count:
        note += f", first {shown} shown"
    if answer.truncated:
        note += ", truncated by the row cap"
    if answer.masked_columns:
        note += f"; masked for this role: {', '.join(answer.masked_columns)}"
    out += ["", note + "."]
    return "\n".join(out)


def completion(answer: Answer, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object; the full answer is under the extra key ``sqlagent``."""
    return {
        "id": f"chatcmpl-{answer.audit_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": readable(answer)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "sqlagent": answer.to_dict(),
    }


def completion_chunks(answer: Answer, model: str) -> Iterator[bytes]:
    """``stream: true``: the finished answer as server-sent events, one content chunk, one
    final chunk (with the full answer under ``sqlagent``), then ``[DONE]``. The answer is
    computed before the first byte: streaming here is for clients that only speak SSE."""
    base = {
        "id": f"chatcmpl-{answer.audit_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    first = {
        **base,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": readable(answer)},
                "finish_reason": None,
            }
        ],
    }
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "sqlagent": answer.to_dict(),
    }
    for chunk in (first, last):
        yield b"data: " + to_json(chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


Outcome = Literal[
    "answered",
    "rejected",
    "failed",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "queue_full",
    "too_large",
    "invalid",
    "timeout",
    "error",
]
