"""Request bodies and response shapes: the native ``/v1/chat`` and the OpenAI chat format."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import pydantic

from sqlagent.errors import NoSQLFoundError
from sqlagent.llm import extract_first_sql
from sqlagent.types import Answer, Turn

__all__ = [
    "AnswerBody",
    "ChatAnswerBody",
    "ChatCompletionRequest",
    "CONVERSATION_ID_PATTERN",
    "ChatRequest",
    "CompletionBody",
    "ErrorBody",
    "ReadyBody",
    "completion",
    "completion_chunks",
    "error_body",
    "readable",
    "to_json",
]

_TABLE_ROWS = 20
#: What a ``conversation_id`` may be made of (1 to 128 of them): letters, digits, ``. _ : -``.
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
#: Message roles that are conversation turns; any other (system, developer, tool) is ignored.
_TURN_ROLES = frozenset({"user", "assistant"})


class ChatRequest(pydantic.BaseModel):
    """``POST /v1/chat``: the question, and optionally the conversation it continues. The role
    comes from the credential."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    question: str = pydantic.Field(min_length=1, description="The question, in plain language.")
    conversation_id: str | None = pydantic.Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=CONVERSATION_ID_PATTERN,
        description=(
            "Continue this conversation: the server keeps its earlier turns (questions and the "
            "SQL that ran) for your credential only and shows them to the model. 1-128 "
            "characters of A-Z a-z 0-9 . _ : -"
        ),
        examples=["support-ticket-4711"],
    )


class _TextPart(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", title="TextPart")

    type: str
    text: str | None = None


class _ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", title="ChatMessage")

    role: str
    content: str | list[_TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(pydantic.BaseModel):
    """``POST /v1/chat/completions``: the last user message is the question, the user and
    assistant messages before it the conversation so far (:meth:`history`). Sampling options
    (``temperature``, ``max_tokens`` ...) are accepted and ignored: the model runs as configured
    on the server. ``system``, ``developer`` and ``tool`` messages are ignored: nothing in a
    request can change what the agent may do."""

    model_config = pydantic.ConfigDict(frozen=True, extra="ignore")

    model: str | None = None
    messages: list[_ChatMessage] = pydantic.Field(min_length=1)
    stream: bool = False

    def question(self) -> str:
        last = self._last_question()
        return "" if last is None else self.messages[last].text().strip()

    def history(self) -> tuple[Turn, ...]:
        """The earlier turns, oldest first: each non-empty user message before the last one,
        with the SQL of the first assistant message that follows it before the next user
        message (the first SQL in it, e.g. the ```sql block of our own replies; ``None`` when
        there is no such message or it holds no SQL). Only questions and SQL reach the model,
        never the rows or prose of earlier replies."""
        last = self._last_question()
        turns: list[Turn] = []
        pending: str | None = None  # an earlier question still waiting for its reply
        for message in self.messages[: last or 0]:
            if message.role not in _TURN_ROLES:
                continue
            if message.role == "user":
                if pending is not None:
                    turns.append(Turn(pending))
                pending = message.text().strip() or None
            elif pending is not None:
                turns.append(Turn(pending, _sql_in(message.text())))
                pending = None
        if pending is not None:
            turns.append(Turn(pending))
        return tuple(turns)

    def _last_question(self) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].role == "user":
                return index
        return None


# -- response shapes, for the OpenAPI document (the app writes the bodies itself) ---------------
class _Documented(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")


class AnswerBody(_Documented):
    """The answer object: ``Answer.to_dict()``, as ``sqlagent ask --json`` prints it."""

    model_config = pydantic.ConfigDict(extra="allow", title="Answer")

    question: str
    status: Literal["answered", "rejected", "failed"]
    role: str | None
    sql: str | None
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    verdict: Literal["allowed", "rejected"] | None
    violations: list[dict[str, Any]]
    denied: bool
    masked_columns: list[str]
    tables: list[str]
    attempts: list[dict[str, Any]]
    timings: dict[str, float]
    audit_id: str
    error: str | None
    model: str | None
    reused_example: dict[str, Any] | None


class ChatAnswerBody(AnswerBody):
    """``POST /v1/chat``: the answer object, plus its conversation and turn number when the
    request named a ``conversation_id``."""

    model_config = pydantic.ConfigDict(extra="allow", title="ChatAnswer")

    conversation_id: str | None = None
    turn: int | None = None


class CompletionMessage(_Documented):
    model_config = pydantic.ConfigDict(extra="allow", title="CompletionMessage")

    role: Literal["assistant"]
    content: str


class CompletionChoice(_Documented):
    model_config = pydantic.ConfigDict(extra="allow", title="CompletionChoice")

    index: int
    message: CompletionMessage
    finish_reason: Literal["stop"]


class CompletionBody(_Documented):
    """``POST /v1/chat/completions`` without ``stream``: a ``chat.completion`` object whose
    ``sqlagent`` key holds the answer object."""

    model_config = pydantic.ConfigDict(extra="allow", title="ChatCompletion")

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: dict[str, int]
    sqlagent: AnswerBody


class ErrorDetail(_Documented):
    model_config = pydantic.ConfigDict(extra="allow", title="ErrorDetail")

    message: str
    type: str
    code: int


class ErrorBody(_Documented):
    """Every error, in the OpenAI error shape (see :func:`error_body`)."""

    model_config = pydantic.ConfigDict(extra="allow", title="Error")

    error: ErrorDetail
    request_id: str


class ReadyBody(_Documented):
    """``GET /ready``: each check's state (``model``, ``database``, and ``redis`` when one is
    configured) and the verdict."""

    model_config = pydantic.ConfigDict(extra="allow", title="Readiness")

    status: Literal["ready", "not ready"]
    checks: dict[str, str]


def _sql_in(text: str) -> str | None:
    try:
        return extract_first_sql(text)
    except NoSQLFoundError:
        return None


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
    "unavailable",
    "error",
]
