"""Run a suite: get predictions (a file, a function, or the agent), then score every item.

Scoring an item: the safety core judges the prediction (read-only, grounding, policy) with the
database's reflected catalog; the exec-match engine runs gold and prediction (strict and
Spider-compatible comparisons); sqlglot gives the exact-set match. Nothing is written here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlagent.errors import ConfigError, SQLAgentError
from sqlagent.evaluation._metrics import (
    exact_set_match,
    gold_tables,
    hallucinated_identifiers,
    summarize,
)
from sqlagent.evaluation._suite import EvalItem
from sqlagent.llm import LLM, Message
from sqlagent.prompt import count_tokens
from sqlagent.retrieval import RetrievalSettings
from sqlagent.safety import Guard, Policy
from sqlagent.types import Verdict, ViolationCode

__all__ = [
    "EvalRun",
    "Prediction",
    "Predictor",
    "agent_predictor",
    "function_predictor",
    "run_eval",
]

Compat = Literal["strict", "spider"]
_POLICY_CODES = {
    ViolationCode.TABLE_DENIED,
    ViolationCode.COLUMN_DENIED,
    ViolationCode.MASKED_COLUMN_MISUSE,
}


@dataclass(frozen=True, slots=True)
class Prediction:
    """What a system answered for one item. ``sql`` is the SQL the model wrote (final attempt);
    ``validated_sql`` the guard's rewrite the agent ran, when it ran one."""

    sql: str | None
    validated_sql: str | None = None
    latency_ms: float | None = None
    tokens: int | None = None
    tables: tuple[str, ...] | None = None  # tables retrieval showed the model
    error: str | None = None


Predictor = Callable[[EvalItem], Prediction]


@dataclass(slots=True)
class EvalRun:
    """The scored items (results.json's ``items``) and their ``summary``."""

    items: list[dict[str, Any]]
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "summary": self.summary, "items": self.items}


def function_predictor(func: Callable[[EvalItem], str | None]) -> Predictor:
    """A predictor from a plain function (tests, oracles, baselines); latency is measured."""

    def predict(item: EvalItem) -> Prediction:
        start = time.perf_counter()
        sql = func(item)
        ms = round((time.perf_counter() - start) * 1000, 3)
        return Prediction(sql, latency_ms=ms, tokens=count_tokens(item.question + (sql or "")))

    return predict


class _CountingLLM:
    """Wraps a backend to count the tokens of every prompt and answer it sees."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.tokens = 0

    def _count(self, messages: Sequence[Message], answer: str) -> str:
        self.tokens += sum(count_tokens(m.content) for m in messages) + count_tokens(answer)
        return answer

    def complete(self, messages: Sequence[Message]) -> str:
        return self._count(messages, self.inner.complete(messages))

    async def acomplete(self, messages: Sequence[Message]) -> str:
        return self._count(messages, await self.inner.acomplete(messages))


class _NoAudit:
    def emit(self, event: Any) -> None:
        pass

    def close(self) -> None:
        pass


def agent_predictor(
    llm: LLM | Mapping[str, LLM],
    *,
    policy: Policy | None = None,
    max_attempts: int = 3,
    retrieval: RetrievalSettings | None = None,
) -> tuple[Predictor, Callable[[], None]]:
    """A predictor asking one :class:`~sqlagent.SQLAgent` per database; returns it and a
    ``close`` function. ``retrieval`` defaults to the dependency-free hashing embedder and
    in-memory store (so table recall means something and no model is loaded); audit events
    are dropped. ``llm`` may map database paths to backends (an oracle mock per database).
    An item's ``history`` is passed to :meth:`~sqlagent.SQLAgent.ask` as is: the agent renders
    it into the prompt (bounded by its defaults) as it would for a live conversation."""
    from sqlagent.agent import SQLAgent
    from sqlagent.config import AgentConfig

    settings = retrieval or RetrievalSettings(embedder="hashing", store="memory")

    agents: dict[str, SQLAgent] = {}
    counters: dict[str, _CountingLLM] = {}

    def predict(item: EvalItem) -> Prediction:
        agent = agents.get(item.db_path)
        if agent is None:
            config = AgentConfig(
                database=item.url,
                max_attempts=max_attempts,
                retrieval=settings,
            )
            backend = llm[item.db_path] if isinstance(llm, Mapping) else llm
            counters[item.db_path] = _CountingLLM(backend)
            agent = agents[item.db_path] = SQLAgent(
                config, llm=counters[item.db_path], policy=policy, audit=_NoAudit()
            )
        counter = counters[item.db_path]
        before = counter.tokens
        answer = agent.ask(
            item.question, role=item.role if policy is not None else None, history=item.history
        )
        last = answer.attempts[-1] if answer.attempts else None
        return Prediction(
            sql=last.sql if last is not None else None,
            validated_sql=answer.sql,
            latency_ms=(answer.timings or {}).get("total"),
            tokens=counter.tokens - before,
            tables=answer.tables,
            error=answer.error if last is None or last.sql is None else None,
        )

    def close() -> None:
        for agent in agents.values():
            agent.close()

    return predict, close


def _engine() -> Any:
    from sqlagent.evaluation import _execmatch

    return _execmatch


def run_eval(
    items: Sequence[EvalItem],
    *,
    predictions: Sequence[str | None] | None = None,
    predictor: Predictor | None = None,
    compat: Compat = "strict",
    workers: int | None = None,
    timeout_s: float = 30.0,
    policy: Policy | None = None,
    progress: bool = False,
    engine: Any = None,
) -> EvalRun:
    """Predict (from ``predictions`` or ``predictor``) and score every item, in order.

    ``compat`` picks which comparison is the headline ``exec_match``; both are recorded.
    ``engine`` is the exec-match module (``ExecItem``, ``exec_match_many``); tests pass a fake.
    """
    if (predictions is None) == (predictor is None):
        raise ConfigError("give exactly one of predictions and predictor")
    engine = engine if engine is not None else _engine()
    started = time.perf_counter()
    preds = (
        [Prediction(p.strip() if p and p.strip() else None) for p in predictions]
        if predictions is not None
        else _predict_all(items, predictor, progress)  # type: ignore[arg-type]
    )
    guards: dict[tuple[str, bool], Guard] = {}
    verdicts = [_judge(item, p, guards, policy) for item, p in zip(items, preds, strict=True)]
    exec_items = [
        engine.ExecItem(i.index, i.db_path, i.gold, p.sql or "")
        for i, p in zip(items, preds, strict=True)
    ]
    results = {}
    for mode in ("strict", "spider"):
        results[mode] = engine.exec_match_many(
            exec_items, compat=mode, workers=workers, timeout_s=timeout_s, progress=progress
        )
    scored = [
        _score(item, pred, verdict, results["strict"][n], results["spider"][n], compat)
        for n, (item, pred, verdict) in enumerate(zip(items, preds, verdicts, strict=True))
    ]
    summary = summarize(scored)
    summary["compat"] = compat
    summary["elapsed_s"] = round(time.perf_counter() - started, 3)
    return EvalRun(scored, summary)


def _predict_all(
    items: Sequence[EvalItem], predictor: Predictor, progress: bool
) -> list[Prediction]:
    out = []
    if progress:
        from rich.progress import track

        iterable: Any = track(items, description="asking")
    else:
        iterable = items
    for item in iterable:
        try:
            out.append(predictor(item))
        except SQLAgentError as exc:
            out.append(Prediction(None, error=str(exc)))
    return out


def _judge(
    item: EvalItem, pred: Prediction, guards: dict[tuple[str, bool], Guard], policy: Policy | None
) -> Verdict | None:
    if not pred.sql:
        return None
    use_policy = policy is not None and item.role is not None
    key = (item.db_path, use_policy)
    guard = guards.get(key)
    if guard is None:
        from sqlagent.catalog import reflect_catalog

        guard = guards[key] = Guard(
            dialect="sqlite",
            catalog=reflect_catalog(item.url),
            policy=policy if use_policy else None,
        )
    return guard.check(pred.sql, role=item.role if use_policy else None)


def _score(
    item: EvalItem,
    pred: Prediction,
    verdict: Verdict | None,
    strict: Any,
    spider: Any,
    compat: Compat,
) -> dict[str, Any]:
    codes = {v.code for v in verdict.violations} if verdict is not None else set()
    hallucinated = hallucinated_identifiers(verdict)
    chosen = strict if compat == "strict" else spider
    gold_ok = chosen.gold_error is None
    valid = bool(pred.sql) and strict.pred_error is None
    recall = None
    if pred.tables is not None:
        wanted = gold_tables(item.gold)
        seen = {t.lower() for t in pred.tables}
        recall = round(len(wanted & seen) / len(wanted), 4) if wanted else None
    error = pred.error or strict.pred_error or (chosen.gold_error and f"gold: {chosen.gold_error}")
    if not gold_ok:
        category = "gold_failed"
    elif not pred.sql:
        category = "no_prediction"
    elif ViolationCode.PARSE_ERROR in codes:
        category = "invalid_sql"
    elif ViolationCode.NOT_READ_ONLY in codes:
        category = "read_only_rejected"
    elif hallucinated:
        category = "hallucination"
    elif codes & _POLICY_CODES:
        category = "policy_rejected"
    elif chosen.match:
        category = "correct"
    elif strict.pred_error is not None:
        category = "execution_error"
    else:
        category = "wrong_result"
    return {
        "index": item.index,
        "db_id": item.db_id,
        "question": item.question,
        "history": [turn.to_dict() for turn in item.history],
        "predicted": pred.sql,
        "validated": pred.validated_sql,
        "gold": item.gold,
        "exec_match": bool(chosen.match) if gold_ok else None,
        "exec_match_strict": bool(strict.match) if strict.gold_error is None else None,
        "exec_match_spider": bool(spider.match) if spider.gold_error is None else None,
        "exact_match": exact_set_match(pred.sql, item.gold),
        "valid": valid,
        "allowed": verdict.allowed if verdict is not None else None,
        "violations": sorted(str(c) for c in codes),
        "hallucinated": hallucinated,
        "read_only_rejected": ViolationCode.NOT_READ_ONLY in codes,
        "policy_rejected": bool(codes & _POLICY_CODES),
        "category": category,
        "hardness": item.hardness,
        "tags": list(item.tags),
        "role": item.role,
        "gold_rows": chosen.gold_rows,
        "pred_rows": chosen.pred_rows,
        "gold_flags": list(chosen.gold_flags),
        "latency_ms": pred.latency_ms,
        "tokens": pred.tokens,
        "table_recall": recall,
        "error": error or None,
    }
