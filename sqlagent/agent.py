"""The agent: one question in, one audited answer out.

    role -> schema retrieval -> prompt -> LLM -> SQL extraction -> validation (read-only,
    grounded, authorized) -> read-only execution -> audit event -> answer

Each step is a call into the module that owns it. A rejected or failed attempt goes back to the
model with the validator's (or the database's) message, up to ``max_attempts`` times; every
attempt is kept in the answer and in the request's single audit event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import sqlglot
from sqlglot import exp

from sqlagent import prompt
from sqlagent._assembly import (
    RoleView,
    build_audit_sink,
    build_executor,
    build_llm,
    build_retrieval,
    check_login,
    guard_dialect,
)
from sqlagent.audit import AuditEvent, Auditor, AuditSink, new_request_id, verdict_event
from sqlagent.catalog import Catalog, CatalogSource, SampleOptions, all_columns
from sqlagent.config import AgentConfig
from sqlagent.dialects import dialect_from_url, resolve_dialect
from sqlagent.errors import (
    ConfigError,
    ExecutionError,
    NoSQLFoundError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    ResultTooLargeError,
    RetrievalError,
    SQLAgentError,
)
from sqlagent.execution import ExecutionResult, Executor, ReadOnlyExecutor
from sqlagent.llm import (
    LLM,
    FallbackLLM,
    Message,
    MockLLM,
    SerializedLLM,
    extract_first_sql,
    llm_name,
)
from sqlagent.memory import ExampleStore
from sqlagent.retrieval import Retrieval, RetrievalIndex
from sqlagent.safety import Guard, Policy
from sqlagent.types import Answer, Attempt, Example, ReusedExample, Status, Turn, Verdict

__all__ = ["Conversation", "RoleView", "SQLAgent"]

_log = logging.getLogger("sqlagent.agent")

T = TypeVar("T")

#: The error of an answer to an empty question (nothing was retrieved, asked or run).
EMPTY_QUESTION = "the question is empty: ask something"
#: How many earlier questions join the current one in the retrieval query of a follow-up.
_RETRIEVAL_TURNS = 2

#: An earlier turn as :meth:`SQLAgent.ask` accepts it: a :class:`Turn`, an :class:`Answer`
#: (its question and the SQL that ran) or a mapping ``{"question", "sql"}``.
HistoryItem = Turn | Answer | Mapping[str, Any]


@dataclass
class _Run:
    """The state of one request while it is being answered."""

    question: str
    role: str | None
    request_id: str
    name: str = "ask"
    history: tuple[Turn, ...] = ()  # bounded: what the prompt shows
    turn: int | None = None  # this question's number in its conversation (1 = first)
    conversation_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # the caller's audit fields
    state: _Snapshot | None = None  # what the request reads: one snapshot throughout
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    view: RoleView | None = None
    retrieval: Retrieval | None = None
    result: ExecutionResult | None = None
    error: str | None = None

    def timed(self, stage: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            self.add_time(stage, start)

    def add_time(self, stage: str, start: float) -> None:
        spent = (time.perf_counter() - start) * 1000
        self.timings[stage] = round(self.timings.get(stage, 0.0) + spent, 3)


@dataclass(frozen=True)
class _Snapshot:
    """Everything that depends on the catalog, replaced as a whole (one attribute assignment)
    by :meth:`SQLAgent.refresh` and :meth:`SQLAgent.add_example`: a request reads one snapshot
    from start to end, never a new guard with an old retrieval index. ``views`` fills lazily
    (under the agent's lock) with each role's view of this snapshot's catalog."""

    catalog: Catalog
    guard: Guard
    retrieval: RetrievalIndex | None
    views: dict[str | None, RoleView] = field(default_factory=dict)


class SQLAgent:
    """Answers questions over one database with SQL written by ``llm`` and judged by the guard.

    Build it from an :class:`~sqlagent.config.AgentConfig` (or :meth:`from_file`); objects
    given as keywords replace what the config would build (an LLM of your own, a policy built in
    code, an audit sink, an :class:`~sqlagent.execution.Executor`), as httpx's ``Client`` takes
    a ``transport``; the agent closes the executor it is given when it closes. An executor of
    your own is trusted to be read-only: the start-up privilege check and MariaDB detection run
    only for a :class:`~sqlagent.execution.ReadOnlyExecutor`. Thread-safe and usable from
    asyncio (:meth:`aask`); :meth:`refresh` swaps in a new catalog, guard and retrieval index
    at once while requests run (each request keeps the one it started with). Close it when done.

    Guarantees, whatever the model writes: only SQL the safety core allows runs, on a read-only
    connection with a timeout, a row cap and a result-size cap (``max_result_bytes``); the model
    and the retriever only ever see the role's view of the catalog; each call of
    :meth:`ask`/:meth:`aask` records exactly one audit event (and raises
    :class:`~sqlagent.errors.AuditError` rather than answer unaudited when a sink fails and
    ``on_audit_error`` is ``"fail"``). At start-up the database login is checked for privileges
    beyond reading (:func:`~sqlagent.execution.check_privileges`): a warning on the
    ``sqlagent.agent`` logger, or :class:`~sqlagent.errors.PrivilegeError` when
    ``require_least_privilege`` is set.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        llm: LLM | None = None,
        policy: Policy | None = None,
        audit: AuditSink | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.dialect = resolve_dialect(config.dialect or dialect_from_url(config.database))
        if policy is None and config.policy is not None:
            policy = Policy.from_file(config.policy)
        self.policy = policy
        self.examples = ExampleStore(path=config.examples)
        self.docs = {str(p): _read_text(p) for p in config.docs}
        self.catalogs = CatalogSource(
            config.database,
            sample=SampleOptions(
                max_values=config.sample_values, timeout_s=min(2.0, config.timeout_s)
            ),
        )
        catalog = self.catalogs.catalog()  # reflect first: a bad database fails before any open
        try:
            self.llm = llm if llm is not None else build_llm(config, self.examples)
        except BaseException:
            self.catalogs.close()
            raise
        self.executor: Executor = executor if executor is not None else build_executor(config)
        self._lock = threading.Lock()
        try:
            if isinstance(self.executor, ReadOnlyExecutor):
                check_login(self.executor, config)  # warns, or refuses a login that can write
                #: What the guard renders SQL for (``mariadb`` on a MariaDB server).
                self.guard_dialect = guard_dialect(config, self.executor)
            else:  # an executor of the caller's: its connections are the caller's to vouch for
                self.guard_dialect = resolve_dialect(config.dialect or self.dialect)
            if self.policy is not None:  # a misspelt grant silently hides what it names
                for issue in self.policy.check_names(catalog, self.dialect):
                    _log.warning("policy: %s", issue.message)
            self.auditor = Auditor(
                [audit or build_audit_sink(config)], on_sink_error=config.on_audit_error
            )
            self._load(catalog)
        except BaseException:
            self.executor.close()
            self.catalogs.close()
            raise

    def _load(self, catalog: Catalog) -> None:
        """(Re)build what depends on the catalog (guard, retrieval, role views) and swap it
        in at once."""
        guard = Guard(
            dialect=self.guard_dialect,
            catalog=catalog,
            policy=self.policy,
            config=self.config.safety_config(),
        )
        retrieval = build_retrieval(
            self.config, catalog, self.dialect, self.examples.examples, self.docs
        )
        self._state = _Snapshot(catalog, guard, retrieval)

    @property
    def guard(self) -> Guard:
        """The guard of the current catalog (replaced by :meth:`refresh`)."""
        return self._state.guard

    @property
    def retrieval(self) -> RetrievalIndex | None:
        """The retrieval index of the current catalog (``None``: retrieval is off)."""
        return self._state.retrieval

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> SQLAgent:
        """Build from a YAML/JSON config file; ``overrides`` replace its top-level keys."""
        config = AgentConfig.from_file(path)
        if overrides:
            config = AgentConfig.from_mapping({**config.model_dump(), **overrides})
        return cls(config)

    # -- the pipeline -----------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        role: str | None = None,
        request_id: str | None = None,
        history: Sequence[HistoryItem] = (),
        conversation_id: str | None = None,
        turn: int | None = None,
        audit_context: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Answer ``question`` as ``role`` (the policy's default role when ``None``).

        ``history`` holds the earlier turns of a conversation, oldest first (:class:`Turn`,
        :class:`Answer` or ``{"question", "sql"}``): their questions and SQL, never their rows,
        go into the prompt, bounded by ``history_turns``/``history_tokens``, and the recent
        questions join this one in retrieval, so "and only for Engineering?" can be answered.
        History is the caller's: pass only turns asked under the same role (a
        :class:`Conversation` keeps them for you). ``conversation_id`` and the turn number go
        into the audit event (``turn``: this question's number, when a store keeps fewer turns
        than the conversation had; default ``len(history) + 1``), with ``audit_context`` (e.g.
        ``{"interface": "mcp", "client": ...}``; it cannot replace the event's own fields).

        An empty (or blank) question fails at once: no retrieval, no model call, no SQL; its
        answer and audit event say so.
        """
        run = self._new_run(
            question, role, request_id, history, conversation_id, audit_context, turn
        )
        if not question.strip():
            run.error = EMPTY_QUESTION
            return self._finish(run)
        try:
            messages = self._prepare(run)
            llm = self.llm  # one model for the whole request, even if add_example replaces it
            for number in range(1, self.config.max_attempts + 1):
                start = time.perf_counter()
                output = llm.complete(messages)
                run.add_time("llm", start)
                feedback = self._attempt(run, number, output, start, _source(llm, messages, output))
                if feedback is None:
                    break
                messages = [*messages, *prompt.correction_messages(output, feedback)]
        except Exception as exc:  # every request ends in an answer and one audit event
            run.error = _describe(exc)
        return self._finish(run)

    async def aask(
        self,
        question: str,
        *,
        role: str | None = None,
        request_id: str | None = None,
        history: Sequence[HistoryItem] = (),
        conversation_id: str | None = None,
        turn: int | None = None,
        audit_context: Mapping[str, Any] | None = None,
    ) -> Answer:
        """:meth:`ask` for asyncio: the model call is awaited, blocking steps run in threads."""
        run = self._new_run(
            question, role, request_id, history, conversation_id, audit_context, turn
        )
        if not question.strip():
            run.error = EMPTY_QUESTION
            return await asyncio.to_thread(self._finish, run)
        try:
            messages = await asyncio.to_thread(self._prepare, run)
            llm = self.llm  # one model for the whole request, even if add_example replaces it
            for number in range(1, self.config.max_attempts + 1):
                start = time.perf_counter()
                output = await llm.acomplete(messages)
                run.add_time("llm", start)
                source = _source(llm, messages, output)
                feedback = await asyncio.to_thread(
                    self._attempt, run, number, output, start, source
                )
                if feedback is None:
                    break
                messages = [*messages, *prompt.correction_messages(output, feedback)]
        except Exception as exc:  # every request ends in an answer and one audit event
            run.error = _describe(exc)
        return await asyncio.to_thread(self._finish, run)

    def prompt_for(
        self,
        question: str,
        *,
        role: str | None = None,
        leave_out: str | None = None,
        history: Sequence[HistoryItem] = (),
    ) -> list[Message]:
        """The first prompt :meth:`ask` would send the model for ``question`` as ``role``
        (after ``history``).

        Same role view (with sample values), same retrieval (tables, few-shot examples, notes),
        same renderer; no model call, no audit event. ``sqlagent train`` builds its records
        with it, so an adapter trains on exactly what it will see. ``leave_out`` drops retrieved
        examples asking that question (whitespace and case aside): a training item must not
        see its own answer among the examples.
        """
        run = self._new_run(question, role, None, history, None, None)
        return self._prepare(run, leave_out=leave_out)

    def conversation(
        self, *, role: str | None = None, conversation_id: str | None = None
    ) -> Conversation:
        """A conversation as ``role``: each :meth:`Conversation.ask` sees the turns before it."""
        return Conversation(self, role=role, conversation_id=conversation_id)

    def _new_run(
        self,
        question: str,
        role: str | None,
        request_id: str | None,
        history: Sequence[HistoryItem],
        conversation_id: str | None,
        audit_context: Mapping[str, Any] | None,
        turn: int | None = None,
    ) -> _Run:
        turns = [_as_turn(item) for item in history]
        bounded = prompt.bound_history(
            turns, max_turns=self.config.history_turns, max_tokens=self.config.history_tokens
        )
        conversing = bool(turns) or conversation_id is not None
        return _Run(
            question,
            role,
            request_id or new_request_id(),
            history=tuple(bounded),
            turn=turn if turn is not None else (len(turns) + 1 if conversing else None),
            conversation_id=conversation_id,
            context=dict(audit_context or {}),
            state=self._state,
        )

    def _prepare(self, run: _Run, *, leave_out: str | None = None) -> list[Message]:
        """Role view, retrieval and the first prompt."""
        state = _state_of(run)
        view = run.view = run.timed("authorize", self._view, run.role, state)
        found = run.retrieval = run.timed(
            "retrieve", self._retrieve, _retrieval_query(run), view, state, run.history
        )
        examples = found.examples
        if leave_out is not None:
            key = _same_question(leave_out)
            examples = tuple(e for e in examples if _same_question(e.question) != key)
        schema = run.timed(
            "render",
            lambda: prompt.render_schema(
                view.catalog, self.dialect, tables=found.tables, masked=view.masked
            ),
        )
        return prompt.build_messages(
            run.question,
            schema=schema,
            dialect=self.dialect,
            examples=examples,
            docs=found.docs,
            history=run.history,
        )

    def _attempt(
        self,
        run: _Run,
        number: int,
        output: str,
        llm_start: float,
        source: tuple[str, ReusedExample | None],
    ) -> str | None:
        """Extract, validate and run one model answer. Returns the feedback for another round,
        or ``None`` when there is none to have: the query ran, or the model repeated itself.
        ``source`` is which backend wrote ``output`` and the stored example it repeated."""
        llm_ms = round((time.perf_counter() - llm_start) * 1000, 3)
        model, reused = source
        assert run.view is not None
        try:
            sql = extract_first_sql(output)
        except NoSQLFoundError as exc:
            run.attempts.append(
                Attempt(number, output, error=str(exc), llm_ms=llm_ms, model=model, reused=reused)
            )
            return f"{exc} Answer with one SQL query in a ```sql code block."
        repeated = any(a.sql == sql for a in run.attempts)
        guard = _state_of(run).guard
        verdict = run.timed("validate", guard.check, sql, role=run.view.role or run.role)
        feedback = None
        error = None
        if not verdict.allowed or verdict.sql is None:
            feedback = verdict.feedback()
        else:
            try:
                run.result = run.timed("execute", self.executor.run, verdict.sql)
            except ReadOnlyViolationError as exc:
                # The second safety layer fired: record it, and never teach the model around it.
                run.attempts.append(
                    Attempt(number, output, sql, verdict, str(exc), llm_ms, model, reused)
                )
                raise
            except QueryTimeoutError as exc:
                error, feedback = str(exc), f"{exc} Write a simpler, faster query."
            except ResultTooLargeError as exc:
                error, feedback = str(exc), f"{exc} Write a query with a smaller result."
            except ExecutionError as exc:
                error, feedback = str(exc), f"The database could not run the query: {exc}"
        run.attempts.append(Attempt(number, output, sql, verdict, error, llm_ms, model, reused))
        return None if repeated else feedback

    def _finish(self, run: _Run) -> Answer:
        """Build the answer and record the request's one audit event."""
        last = run.attempts[-1] if run.attempts else None
        verdict = last.verdict if last is not None else None
        result = run.result
        status: Status
        if result is not None:
            status = "answered"
        elif run.error is None and verdict is not None and not verdict.allowed:
            status = "rejected"
        else:
            status = "failed"
        error = run.error or (last.error if last is not None and status == "failed" else None)
        run.timings["total"] = round((time.perf_counter() - run.started) * 1000, 3)
        answer = Answer(
            question=run.question,
            status=status,
            role=run.view.role if run.view is not None else run.role,
            sql=verdict.sql if result is not None and verdict is not None else None,
            columns=result.columns if result is not None else (),
            rows=tuple(tuple(r) for r in result.rows) if result is not None else (),
            truncated=result.truncated if result is not None else False,
            verdict=verdict,
            attempts=tuple(run.attempts),
            masked_columns=verdict.masked_columns if result is not None and verdict else (),
            tables=run.retrieval.tables if run.retrieval is not None else (),
            timings=run.timings,
            audit_id=run.request_id,
            error=error,
            model=last.model if last is not None else None,
            reused_example=last.reused if last is not None else None,
        )
        start = time.perf_counter()
        self.auditor.emit(self._event(answer, run))
        run.add_time("audit", start)
        return answer

    def _event(self, answer: Answer, run: _Run) -> AuditEvent:
        verdict = answer.verdict
        extra: dict[str, Any] = {**run.context, "status": answer.status}
        if run.name == "ask":
            extra["llm"] = llm_name(self.llm)
            extra["attempts"] = [a.to_dict() for a in answer.attempts]
            extra["retrieved_tables"] = list(answer.tables)
        extra["timings_ms"] = dict(run.timings)
        if run.role != answer.role:
            extra["requested_role"] = run.role
        if run.conversation_id is not None:
            extra["conversation_id"] = run.conversation_id
        if run.turn is not None:
            extra["turn"] = run.turn
            extra["history_turns"] = len(run.history)
        return AuditEvent(
            name=run.name,
            verdict={"answered": "allowed", "rejected": "rejected"}.get(answer.status, "error"),
            request_id=run.request_id,
            role=answer.role,
            policy_mode="policy" if self.policy is not None else "single_user",
            dialect=self.dialect,
            question=run.question if run.name == "ask" else None,
            sql_in=run.attempts[-1].sql if run.attempts else None,
            sql_out=answer.sql,
            violations=tuple(v.to_dict() for v in verdict.violations) if verdict else (),
            tables=verdict.tables if verdict else (),
            columns=verdict.columns if verdict else (),
            masked_columns=answer.masked_columns,
            row_count=answer.row_count if answer.ok else None,
            latency_ms=run.timings["total"],
            error=answer.error,
            extra=extra,
        )

    # -- role views and retrieval -----------------------------------------------------------------
    def _view(self, role: str | None, state: _Snapshot) -> RoleView:
        """The role's catalog (with samples where it may read plain values); cached per role
        in ``state``."""
        access = state.guard.access(role)
        key = access.role if access is not None else None
        with self._lock:
            view = state.views.get(key)
        if view is None:
            grants = access if access is not None else all_columns(state.catalog)
            masked = access.masked if access is not None else frozenset()
            view = RoleView(key, self.catalogs.with_samples(grants), frozenset(masked))
            with self._lock:
                state.views[key] = view
        return view

    def _retrieve(
        self,
        question: str,
        view: RoleView,
        state: _Snapshot,
        history: Sequence[Turn] = (),
        k: int | None = None,
    ) -> Retrieval:
        if state.retrieval is None:  # retrieval off: the whole view, no examples, no notes
            names = view.catalog.table_names
            return Retrieval(
                question, names, (0.0,) * len(names), (), (), (), complete=True, elapsed_ms=0.0
            )
        try:
            found = state.retrieval.retrieve(question, view.catalog, masked=view.masked, k=k)
        except RetrievalError as exc:  # the store said what failed (a chroma server down)
            raise RetrievalError(f"schema retrieval failed: {exc}") from exc
        except SQLAgentError:
            raise
        except Exception as exc:  # the embedder or the store (a chroma server down)
            raise RetrievalError(f"schema retrieval failed: {_describe(exc)}") from exc
        # A follow-up refines the earlier SQL: the tables it read stay in the prompt.
        earlier = [t for t in self._tables_of(history, view) if t not in found.tables]
        if not earlier:
            return found
        return dataclasses.replace(
            found,
            tables=(*found.ranked, *earlier, *found.expanded),
            scores=(
                *found.scores[: len(found.ranked)],
                *(0.0,) * len(earlier),
                *found.scores[len(found.ranked) :],
            ),
            complete=False,
        )

    def _tables_of(self, history: Sequence[Turn], view: RoleView) -> list[str]:
        """The view's tables that the history's SQL reads (most recent turn first)."""
        names: list[str] = []
        for turn in reversed(history):
            if not turn.sql:
                continue
            try:
                tree = sqlglot.parse_one(turn.sql, read=self.dialect)
            except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
                continue  # a caller's history is only a hint for retrieval
            for node in tree.find_all(exp.Table):
                table = view.catalog.table(node.name)
                if table is not None and table.name not in names:
                    names.append(table.name)
        return names

    # -- tools: the agent's steps one at a time (the MCP server's tools) ---------------------------
    def view(self, role: str | None = None) -> RoleView:
        """What ``role`` may see: its catalog (sample values only where it reads them in
        clear) and its masked columns. Hidden tables and columns are not in it at all."""
        return self._view(role, self._state)

    def search_schema(
        self,
        question: str,
        *,
        role: str | None = None,
        k: int | None = None,
        history: Sequence[HistoryItem] = (),
    ) -> Retrieval:
        """The retrieval step alone: the tables, examples and notes the prompt for
        ``question`` would carry (``k`` tables ranked; default: the configured number)."""
        run = self._new_run(question, role, None, history, None, None)
        state = _state_of(run)
        view = self._view(role, state)
        return self._retrieve(_retrieval_query(run), view, state, run.history, k)

    def check_sql(
        self,
        sql: str,
        *,
        role: str | None = None,
        request_id: str | None = None,
        audit_context: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """The guard's verdict on ``sql`` for ``role`` (nothing runs), recorded as one audit
        event (name ``"validate"``)."""
        start = time.perf_counter()
        verdict = self._state.guard.check(sql, role=role)
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        self.auditor.emit(
            verdict_event(
                verdict,
                role=role,
                latency_ms=latency_ms,
                request_id=request_id or new_request_id(),
                extra=audit_context,
            )
        )
        return verdict

    def run_sql(
        self,
        sql: str,
        *,
        role: str | None = None,
        max_rows: int | None = None,
        request_id: str | None = None,
        audit_context: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Run SQL written by a caller (not by the model) the way :meth:`ask` runs the
        model's: the guard for ``role``, then the read-only executor with its timeout, row cap
        and size cap; one audit event (name ``"run_sql"``). ``max_rows`` lowers the row cap
        for this call (never raises it). The answer's ``question`` is empty; a refusal is a
        ``rejected`` answer whose ``verdict.feedback()`` says why and what to use instead."""
        state = self._state
        run = _Run("", role, request_id or new_request_id(), name="run_sql", state=state)
        run.context = dict(audit_context or {})
        try:
            view = run.view = run.timed("authorize", self._view, role, state)
            verdict = run.timed("validate", state.guard.check, sql, role=view.role or role)
            error = None
            if verdict.allowed and verdict.sql is not None:
                try:
                    result = run.timed("execute", self.executor.run, verdict.sql)
                except ReadOnlyViolationError:
                    run.attempts.append(Attempt(1, sql, sql, verdict, None))
                    raise
                except ExecutionError as exc:
                    error = str(exc)
                else:
                    run.result = _capped(result, max_rows)
            run.attempts.append(Attempt(1, sql, sql, verdict, error))
        except Exception as exc:  # every call ends in an answer and one audit event
            run.error = _describe(exc)
        return self._finish(run)

    # -- maintenance ------------------------------------------------------------------------------
    def build_index(
        self, roles: Sequence[str] | None = None, *, progress: bool = False
    ) -> Iterator[str]:
        """Build or refresh the retrieval index of each role's view (every role of the policy
        by default); yields one line per view."""
        state = self._state
        if state.retrieval is None:
            yield "retrieval is disabled in the configuration"
            return
        names: Sequence[str | None]
        if self.policy is None:
            names = [None]
        else:
            names = list(roles) if roles else sorted(self.policy.roles)
        for name in names:
            view = self._view(name, state)
            start = time.perf_counter()
            state.retrieval.retriever(view.catalog, masked=view.masked, progress=progress)
            spent = time.perf_counter() - start
            label = f"role {view.role}" if view.role else "single-user view"
            yield f"{label}: {len(view.catalog)} tables indexed ({spent:.1f} s)"

    def add_example(self, question: str, sql: str) -> Example:
        """Check ``sql`` (one read-only statement, grounded in the whole catalog) and store it as
        a few-shot example; raises :class:`~sqlagent.errors.ConfigError` when it is refused."""
        checker = Guard(dialect=self.guard_dialect, catalog=self.catalogs.catalog())
        verdict = checker.check(sql)
        if not verdict.allowed:
            raise ConfigError(f"example refused: {verdict.summary()}")
        example = Example(question.strip(), sql.strip())
        self.examples.add(example)  # a mock model reads the store: nothing to rebuild there
        with self._lock:
            self._load(self.catalogs.catalog())  # the retrieval index holds the examples
        return example

    def refresh(self) -> None:
        """Reflect the database again (after a migration) and rebuild what depends on it."""
        catalog = self.catalogs.refresh()
        with self._lock:
            self._load(catalog)

    def close(self) -> None:
        self.executor.close()
        self.catalogs.close()
        self.auditor.close()

    def __enter__(self) -> SQLAgent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Conversation:
    """Follow-up questions as one role: each :meth:`ask` gets the turns before it as history.

    The turns live in this object only (questions and the SQL that ran, never rows) and are
    only ever this role's. ``id`` (given, or a new one) is recorded in every turn's audit event
    with the turn number. Not meant to be shared between threads; make one per user session.
    """

    def __init__(
        self, agent: SQLAgent, *, role: str | None = None, conversation_id: str | None = None
    ) -> None:
        self.agent = agent
        self.role = role
        self.id = conversation_id or new_request_id()
        self.turns: list[Turn] = []

    def ask(self, question: str, **kwargs: Any) -> Answer:
        answer = self.agent.ask(
            question, role=self.role, history=self.turns, conversation_id=self.id, **kwargs
        )
        self.turns.append(answer.as_turn())
        return answer

    async def aask(self, question: str, **kwargs: Any) -> Answer:
        answer = await self.agent.aask(
            question, role=self.role, history=list(self.turns), conversation_id=self.id, **kwargs
        )
        self.turns.append(answer.as_turn())
        return answer


def _state_of(run: _Run) -> _Snapshot:
    assert run.state is not None, "a run is made with the agent's snapshot"
    return run.state


def _as_turn(item: HistoryItem) -> Turn:
    if isinstance(item, Turn):
        return item
    if isinstance(item, Answer):
        return item.as_turn()
    try:
        return Turn.from_dict(dict(item))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"history: {exc}") from exc


def _retrieval_query(run: _Run) -> str:
    """What retrieval embeds: the question, after the most recent earlier questions."""
    recent = [t.question for t in run.history[-_RETRIEVAL_TURNS:]]
    return " ".join([*recent, run.question]) if recent else run.question


def _capped(result: ExecutionResult, max_rows: int | None) -> ExecutionResult:
    if max_rows is None or len(result.rows) <= max_rows:
        return result
    rows = result.rows[:max_rows]
    return dataclasses.replace(result, rows=rows, row_count=len(rows), truncated=True)


def _source(llm: LLM, messages: Sequence[Message], output: str) -> tuple[str, ReusedExample | None]:
    """Which backend wrote ``output``, and the stored example it repeated (a mock's answer).

    A mock inside a fallback chain or a serializing wrapper is found and asked whether
    ``output`` is its own answer (:meth:`~sqlagent.llm.MockLLM.explain`: pure, so exact with
    concurrent requests); otherwise a :class:`~sqlagent.llm.FallbackLLM` names the backend that
    answered last (exact for one request at a time), and any other backend names itself.
    """
    pending: list[object] = [llm]
    while pending:
        backend = pending.pop(0)
        if isinstance(backend, MockLLM):
            reused = backend.explain(messages, output)
            if reused is not None:
                return backend.name, reused
        elif isinstance(backend, FallbackLLM):
            pending.extend(backend.backends)
        elif isinstance(backend, SerializedLLM):
            pending.append(backend.inner)
    if isinstance(llm, FallbackLLM) and llm.last_used is not None:
        return llm.last_used, None
    return llm_name(llm), None


def _describe(exc: BaseException) -> str:
    """An error for the answer and the audit event; unexpected ones are logged in full."""
    if isinstance(exc, SQLAgentError):
        return str(exc)
    _log.error("unexpected error while answering", exc_info=exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _same_question(text: str) -> str:
    return " ".join(text.lower().split()).rstrip("?.! ")


def _read_text(path: os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read notes file {os.fspath(path)}: {exc}") from exc
