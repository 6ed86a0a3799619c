"""``sqlagent doctor check``: is this machine and this configuration ready to run sqlagent?

Each check is a plain function of a :class:`CheckContext` returning :class:`CheckResult` rows,
listed in :data:`CHECKS` in the order they are reported. Checks only look: they load no model,
import unsloth only when a CUDA GPU is present, touch the network only to reach the configured
database, and leave nothing behind (the read-only probe runs inside the executor's read-only,
rolled-back transaction, and is cleaned up should a broken setup ever let it through).

A ``fail`` row with ``blocking=True`` means sqlagent cannot work as configured; ``warn`` rows
are worth reading but do not stop it; ``skip`` rows did not apply.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlagent.config import AgentConfig
from sqlagent.doctor._gpus import GPU
from sqlagent.doctor._packages import installed_version, requirements, satisfies
from sqlagent.doctor._plan import plan_memory
from sqlagent.errors import (
    AuditError,
    ConfigError,
    ExecutionError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    SQLAgentError,
)
from sqlagent.execution import (
    Executor,
    ReadOnlyExecutor,
    check_privileges,
    summarize_findings,
)
from sqlagent.llm import LLMKind, LLMSpec
from sqlagent.llm.local import (
    ADAPTER_MANIFEST,
    adapter_directory,
    check_adapter_manifest,
    model_location,
    smollm2_gguf,
    weight_files,
)

__all__ = [
    "CHECKS",
    "PROBE_TABLE",
    "CheckContext",
    "CheckResult",
    "CudaDevice",
    "DoctorReport",
    "Status",
    "probe_privileges",
    "probe_read_only",
    "run_checks",
]

Status = Literal["pass", "warn", "fail", "skip"]

#: The table the read-only probe tries to create; it must never exist afterwards.
PROBE_TABLE = "sqlagent_doctor_probe"
_PROBE_SQL = f"CREATE TABLE {PROBE_TABLE}(x int)"
#: Error codes of a permission refusal: PostgreSQL, MySQL/MariaDB (table, database), Oracle.
_PERMISSION_DENIED = frozenset({"42501", "1142", "1044", "ORA-01031"})
#: Audit logs larger than this are not re-verified by the doctor (``sqlagent audit verify`` is).
_VERIFY_LIMIT = 50 * 1024 * 1024
_GIB = 1024**3
#: Extras that are not about running sqlagent (tools for its own development).
_SKIPPED_EXTRAS = frozenset({"dev"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the report. ``blocking`` marks a failure that stops sqlagent from working."""

    name: str
    status: Status
    detail: str
    blocking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status,
            "detail": self.detail,
            "blocking": self.blocking,
        }


@dataclass(frozen=True, slots=True)
class CudaDevice:
    name: str
    capability: tuple[int, int]
    total_bytes: int

    @property
    def bf16(self) -> bool:
        return self.capability >= (8, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckContext:
    """What the checks look at: the configuration (``None`` without a config file), the database
    URL to probe (``--db`` or the config's), and what was learnt about torch and CUDA (found once,
    so every check sees the same answer and tests can describe a GPU machine)."""

    config: AgentConfig | None = None
    config_path: Path | None = None
    database: str | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    cuda_devices: tuple[CudaDevice, ...] = ()
    torch_error: str | None = None

    @property
    def cuda(self) -> bool:
        return bool(self.cuda_devices)

    def llm_specs(self) -> tuple[str, ...]:
        return () if self.config is None else (self.config.llm, *self.config.fallbacks)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    checks: tuple[CheckResult, ...]
    config_path: Path | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocking(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail" and c.blocking)

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        counts = {
            s: sum(1 for c in self.checks if c.status == s)
            for s in ("pass", "warn", "fail", "skip")
        }
        return {
            "ok": self.ok,
            "config": None if self.config_path is None else str(self.config_path),
            "created": self.created.isoformat(timespec="seconds"),
            "summary": counts,
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        version = installed_version("sqlagent") or "unknown"
        verdict = (
            "**Ready**: no blocking failure."
            if self.ok
            else f"**Blocked**: {len(self.blocking)} blocking failure(s): "
            + ", ".join(c.name for c in self.blocking)
            + "."
        )
        lines = [
            "# sqlagent doctor report",
            "",
            f"- created: {self.created.isoformat(timespec='seconds')}",
            f"- sqlagent: {version}",
            f"- config: {self.config_path if self.config_path is not None else '(none)'}",
            "",
            verdict,
            "",
            "| Check | Status | Blocking | Detail |",
            "| --- | --- | --- | --- |",
        ]
        for c in self.checks:
            blocking = "yes" if c.blocking and c.status == "fail" else ""
            lines.append(f"| {cell(c.name)} | {c.status} | {blocking} | {cell(c.detail)} |")
        return "\n".join(lines) + "\n"


Check = Callable[[CheckContext], list[CheckResult]]


def check_python(ctx: CheckContext) -> list[CheckResult]:
    version = platform.python_version()
    ok = sys.version_info >= (3, 11)
    detail = f"{platform.python_implementation()} {version} ({sys.executable})"
    return [CheckResult("python", "pass" if ok else "fail", detail, blocking=not ok)]


#: Model specs that run in this process on torch + transformers (smollm2 is a GGUF loaded
#: through transformers): they need the local extra.
_LOCAL_KINDS: frozenset[LLMKind] = frozenset({"transformers", "smollm2"})


def check_torch(ctx: CheckContext) -> list[CheckResult]:
    needed = any(_kind(s) in _LOCAL_KINDS for s in ctx.llm_specs())
    if ctx.torch_version is None:
        why = ctx.torch_error or "not installed"
        if needed:
            detail = f"{why}: the configured local model needs it (pip install 'sqlagent[local]')"
            return [
                CheckResult("torch", "fail", detail, blocking=True),
                CheckResult("cuda", "skip", "no torch"),
            ]
        status: Status = "warn" if ctx.torch_error else "skip"
        return [
            CheckResult("torch", status, f"{why} (only local models need it: sqlagent[local])"),
            CheckResult("cuda", "skip", "no torch"),
        ]
    build = f"CUDA {ctx.cuda_version} build" if ctx.cuda_version else "CPU-only build"
    rows = [CheckResult("torch", "pass", f"{ctx.torch_version} ({build})")]
    if not ctx.cuda:
        detail = "no CUDA GPU: local models run on the CPU in fp32 (slow for anything above ~1B)"
        rows.append(CheckResult("cuda", "warn" if needed else "skip", detail))
        return rows
    for i, dev in enumerate(ctx.cuda_devices):
        cc = f"{dev.capability[0]}.{dev.capability[1]}"
        bf16 = "bf16 yes" if dev.bf16 else "no bf16 (fp16 is used)"
        detail = f"{dev.name}, compute capability {cc}, {bf16}, {dev.total_bytes / _GIB:.1f} GiB"
        rows.append(CheckResult(f"cuda:{i}", "pass", detail))
    return rows


def _needed_extras(ctx: CheckContext) -> dict[str, str]:
    """Extras the configuration cannot run without, and why."""
    needed: dict[str, str] = {}
    for spec in ctx.llm_specs():
        kind = _kind(spec)
        if kind in _LOCAL_KINDS:
            needed["local"] = f"llm {spec}"
        elif kind == "openai":
            needed["openai"] = f"llm {spec}"
    config = ctx.config
    if config is not None and config.retrieval.enabled and config.retrieval.store == "chroma":
        needed["retrieval"] = "retrieval.store: chroma"
    return needed


def check_packages(ctx: CheckContext) -> list[CheckResult]:
    """Core dependencies and each extra, against the pins in the installed metadata."""
    reqs = requirements()
    if not reqs:
        return [CheckResult("packages", "warn", "sqlagent's metadata is not installed: no pins")]
    needed = _needed_extras(ctx)
    rows = []
    extras = dict.fromkeys(r.extra for r in reqs if r.extra not in _SKIPPED_EXTRAS)
    for extra in (None, *(e for e in extras if e is not None)):
        group = [r for r in reqs if r.extra == extra]
        if not group:
            continue
        name = "packages" if extra is None else f"packages [{extra}]"
        have = [(r, installed_version(r.name)) for r in group]
        missing = [r.name for r, v in have if v is None]
        off = [
            f"{r.name} {v} (tested: {r.spec})"
            for r, v in have
            if v is not None and r.spec and not satisfies(v, r.spec)
        ]
        present = [f"{r.name} {v}" for r, v in have if v is not None]
        if extra is None and missing:
            detail = f"missing core dependencies: {', '.join(missing)}"
            rows.append(CheckResult(name, "fail", detail, blocking=True))
        elif extra is not None and len(missing) == len(group):
            why = needed.get(extra)
            detail = f"not installed (pip install 'sqlagent[{extra}]')"
            if why:
                rows.append(CheckResult(name, "fail", f"{detail}; needed by {why}", blocking=True))
            else:
                rows.append(CheckResult(name, "skip", detail))
        elif missing or off:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + off
            blocking = bool(missing) and extra in needed
            rows.append(
                CheckResult(
                    name, "fail" if blocking else "warn", "; ".join(problems), blocking=blocking
                )
            )
        else:
            rows.append(CheckResult(name, "pass", ", ".join(present)))
    return rows


def check_gpu_packages(ctx: CheckContext) -> list[CheckResult]:
    """unsloth and bitsandbytes: informational without CUDA, where neither is imported."""
    rows = []
    for module, dist in (("unsloth", "unsloth"), ("bitsandbytes", "bitsandbytes")):
        version = installed_version(dist)
        if version is None:
            rows.append(
                CheckResult(module, "skip", "not installed (optional, CUDA only: sqlagent[gpu])")
            )
        elif not ctx.cuda:
            detail = f"{version} installed; not imported without a CUDA GPU"
            rows.append(CheckResult(module, "skip", detail))
        else:
            try:
                importlib.import_module(module)
            except Exception as exc:  # unsloth and bitsandbytes fail in many ways on bad setups
                detail = f"{version} installed but failed to import: {type(exc).__name__}: {exc}"
                rows.append(CheckResult(module, "warn", _short(detail)))
            else:
                rows.append(CheckResult(module, "pass", f"{version}, imports on this GPU"))
    return rows


def check_models(ctx: CheckContext) -> list[CheckResult]:
    """The configured model (and fallbacks): files present offline, adapter manifest consistent."""
    if ctx.config is None:
        return [CheckResult("model", "skip", "no config")]
    rows = []
    for i, spec in enumerate(ctx.llm_specs()):
        name = "model" if i == 0 else f"model (fallback {i})"
        rows.extend(_check_model_spec(name, spec, ctx))
    return rows


def _kind(spec: str) -> LLMKind | None:
    """The kind of backend ``spec`` names; ``None`` for a spec that does not parse (the model
    check reports it)."""
    try:
        return LLMSpec.parse(spec).kind
    except ConfigError:
        return None


def _check_model_spec(name: str, spec: str, ctx: CheckContext) -> list[CheckResult]:
    try:
        parsed = LLMSpec.parse(spec)
    except ConfigError as exc:
        return [CheckResult(name, "fail", str(exc), blocking=True)]
    if parsed.kind == "mock":
        return [_check_mock(name, ctx)]
    if parsed.kind == "openai":
        detail = f"served model at {parsed.url}: not probed (offline check)"
        return [CheckResult(name, "skip", detail)]
    if parsed.kind == "smollm2":
        try:
            gguf = smollm2_gguf()
        except ConfigError as exc:
            return [CheckResult(name, "fail", str(exc), blocking=True)]
        return [CheckResult(name, "pass", f"smollm2: {gguf}")]
    path, adapter = parsed.path, parsed.adapter
    assert path is not None
    rank = _lora_rank(adapter.expanduser()) if adapter else 0
    rows = [_check_model_files(name, path.expanduser(), ctx, lora_r=rank)]
    if adapter:
        rows.append(_check_adapter(f"{name} adapter", adapter.expanduser(), path))
    return rows


def _check_mock(name: str, ctx: CheckContext) -> CheckResult:
    """The mock answers only questions close to a stored example: how many it has, how close."""
    from sqlagent.llm import MockLLM
    from sqlagent.memory import read_examples

    config = ctx.config
    assert config is not None
    threshold = config.mock_min_similarity
    if threshold is None:
        threshold = MockLLM.DEFAULT_MIN_SIMILARITY
    path = config.examples
    try:
        count = len(read_examples(path)) if path is not None and path.exists() else 0
    except ConfigError as exc:
        return CheckResult(name, "fail", str(exc), blocking=True)
    if not count:
        detail = (
            "mock with no stored examples: it will refuse every question; choose a real model "
            "('llm:' transformers:PATH, openai:BASE_URL with 'model:', smollm2) or add examples "
            "('examples:' and `sqlagent examples add`)"
        )
        return CheckResult(name, "warn", detail)
    detail = (
        f"mock: repeats the SQL of {count} stored example(s) ({path}) for questions at least "
        f"{threshold:.2f} similar to one of them, and refuses others (mock_min_similarity)"
    )
    return CheckResult(name, "pass", detail)


def _lora_rank(adapter: Path) -> int:
    """The rank in a PEFT adapter's ``adapter_config.json`` (0 when it cannot be read)."""
    try:
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    rank = config.get("r") if isinstance(config, dict) else None
    return rank if isinstance(rank, int) and rank > 0 else 0


def _check_model_files(name: str, path: Path, ctx: CheckContext, *, lora_r: int) -> CheckResult:
    from sqlagent.doctor._arch import arch_from_config, load_config_json

    try:
        location = model_location(path)
        if location.gguf is not None:
            size = location.gguf.stat().st_size
            return CheckResult(name, "pass", f"GGUF file {location.gguf} ({size / _GIB:.2f} GiB)")
        weights = weight_files(location.directory)
        size = sum(w.stat().st_size for w in weights)
    except ConfigError as exc:
        return CheckResult(name, "fail", str(exc), blocking=True)
    except OSError as exc:
        return CheckResult(name, "fail", f"cannot read the model at '{path}': {exc}", blocking=True)
    tokenizer = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    if not any((location.directory / t).is_file() for t in tokenizer):
        detail = f"'{path}' has weights but no tokenizer ({', '.join(tokenizer)})"
        return CheckResult(name, "fail", detail, blocking=True)
    detail = f"{path}: {len(weights)} weight file(s), {size / _GIB:.2f} GiB"
    try:
        arch = arch_from_config(load_config_json(location.directory), name=path.name)
    except ConfigError:
        return CheckResult(name, "pass", detail)  # a shape the planner does not read
    detail += f", {arch.param_counts().total / 1e9:.2f}B parameters"
    if not ctx.cuda:
        return CheckResult(name, "pass", detail)
    dev = ctx.cuda_devices[0]
    gpu = GPU(dev.name, round(dev.total_bytes / 1e9), dev.total_bytes / _GIB, dev.capability)
    try:  # as TransformersLLM loads it: 16-bit, the adapter in fp32 through PEFT
        plan = plan_memory(arch, lora_r=lora_r, adapter_dtype="fp32", gpus=[gpu])
    except ConfigError:
        return CheckResult(name, "pass", detail)
    verdict = plan.verdicts[0]
    detail += (
        f"; doctor plan: {plan.total_bytes / _GIB:.1f} GiB in 16-bit at {plan.max_seq_len} "
        f"tokens, {verdict.verdict} on {dev.name} ({gpu.usable_gib:.1f} GiB)"
    )
    if not verdict.fits:
        detail += ": try load_in_4bit (NF4) or a smaller model"
    return CheckResult(name, "pass" if verdict.fits else "warn", detail)


def _check_adapter(name: str, adapter: Path, base: Path) -> CheckResult:
    try:
        adapter_directory(adapter)
        if not (adapter / ADAPTER_MANIFEST).is_file():
            detail = (
                f"{adapter}: no {ADAPTER_MANIFEST}, so its prompt format and base model "
                "cannot be checked"
            )
            return CheckResult(name, "warn", detail)
        check_adapter_manifest(adapter, base.expanduser())
    except ConfigError as exc:
        return CheckResult(name, "fail", str(exc), blocking=True)
    return CheckResult(
        name, "pass", f"{adapter}: manifest matches the base model and prompt format"
    )


def check_retrieval(ctx: CheckContext) -> list[CheckResult]:
    config = ctx.config
    if config is None:
        return [CheckResult("chromadb path", "skip", "no config")]
    settings = config.retrieval
    if not settings.enabled:
        return [CheckResult("chromadb path", "skip", "retrieval disabled")]
    if settings.url:
        return [CheckResult("chromadb path", "skip", f"chroma server {settings.url}: not probed")]
    if settings.store == "memory":
        return [CheckResult("chromadb path", "skip", "in-memory store")]
    if importlib.util.find_spec("chromadb") is None:
        if settings.store == "chroma":
            detail = "retrieval.store is chroma but chromadb is not installed: sqlagent[retrieval]"
            return [CheckResult("chromadb path", "fail", detail, blocking=True)]
        detail = "chromadb not installed: the index is kept in memory"
        return [CheckResult("chromadb path", "skip", detail)]
    path = settings.index_dir()
    ok, detail = _writable_dir(path)
    return [CheckResult("chromadb path", "pass" if ok else "fail", detail, blocking=not ok)]


def _writable_dir(path: Path) -> tuple[bool, str]:
    """Whether files can be created in directory ``path`` (or, when it does not exist yet, in its
    nearest existing ancestor), found by creating and deleting a temporary file there."""
    target = path.expanduser()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"{target}: {existing} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".sqlagent-doctor-"):
            pass
    except OSError as exc:
        return False, f"{target}: cannot write in {existing}: {exc.strerror or exc}"
    if existing == target:
        return True, f"{target} is writable"
    return True, f"{target} will be created (in writable {existing})"


def check_database(ctx: CheckContext) -> list[CheckResult]:
    """Reach the database through sqlagent's read-only executor, try a harmless write, and
    check that the login holds no more privilege than reading needs."""
    if ctx.database is None:
        return [
            CheckResult("database", "skip", "no database (pass --db URL or --config FILE)"),
            CheckResult("read-only", "skip", "no database"),
            CheckResult("privileges", "skip", "no database"),
        ]
    timeout = min(ctx.config.timeout_s, 10.0) if ctx.config is not None else 10.0
    try:
        executor = ReadOnlyExecutor(ctx.database, timeout_s=timeout, max_rows=1)
    except ConfigError as exc:
        return [
            CheckResult("database", "fail", str(exc), blocking=True),
            CheckResult("read-only", "skip", "database not reachable"),
            CheckResult("privileges", "skip", "database not reachable"),
        ]
    with executor:
        select = "SELECT 1 FROM DUAL" if executor.dialect == "oracle" else "SELECT 1"
        start = time.perf_counter()
        try:
            executor.run(select)
        except ExecutionError as exc:
            return [
                CheckResult("database", "fail", f"{executor.dialect}: {exc}", blocking=True),
                CheckResult("read-only", "skip", "database not reachable"),
                CheckResult("privileges", "skip", "database not reachable"),
            ]
        ms = (time.perf_counter() - start) * 1000
        reached = CheckResult("database", "pass", f"{executor.dialect} reachable ({ms:.0f} ms)")
        required = ctx.config is not None and ctx.config.require_least_privilege
        return [reached, probe_read_only(executor), probe_privileges(executor, required=required)]


def probe_read_only(executor: Executor, *, name: str = "read-only") -> CheckResult:
    """Try ``CREATE TABLE sqlagent_doctor_probe(x int)`` through ``executor``.

    ``pass`` when the database refuses it as a write (:class:`ReadOnlyViolationError`) or
    because the login may not create tables (a permission error: a least-privilege login);
    ``warn`` when it fails for another reason (enforcement not confirmed); a blocking ``fail``
    when it succeeds. Then the probe table is looked for and dropped if it persisted, and the row
    says whether anything is left behind.
    """
    try:
        executor.run(_PROBE_SQL)
    except ReadOnlyViolationError as exc:
        return CheckResult(name, "pass", _short(f"write refused by the database: {exc}"))
    except QueryTimeoutError:
        return CheckResult(name, "warn", "the write probe timed out: enforcement not confirmed")
    except ExecutionError as exc:
        if exc.code in _PERMISSION_DENIED:
            detail = f"write refused by the database: the login may not create tables: {exc}"
            return CheckResult(name, "pass", _short(detail))
        detail = f"the write probe failed, but not as a read-only refusal: {exc}"
        return CheckResult(name, "warn", _short(detail))
    left = _cleanup_probe(executor)
    detail = (
        f"the database ACCEPTED {_PROBE_SQL!r}: read-only enforcement is not effective "
        f"(use sqlagent's ReadOnlyExecutor and a read-only database account); {left}"
    )
    return CheckResult(name, "fail", detail, blocking=True)


def probe_privileges(
    executor: ReadOnlyExecutor, *, required: bool = False, name: str = "privileges"
) -> CheckResult:
    """Whether the login behind ``executor`` holds more than reading needs
    (:func:`~sqlagent.execution.check_privileges`).

    ``pass`` for a least-privilege login, ``skip`` on SQLite (the file is opened read-only: there
    is no login); a login with more privilege, or a check that cannot run, is a ``warn``, or a
    blocking ``fail`` when ``required`` (the config's ``require_least_privilege``).
    """
    if executor.dialect == "sqlite":
        return CheckResult(name, "skip", "SQLite: the file is opened read-only, no login to check")
    status: Status = "fail" if required else "warn"
    try:
        findings = check_privileges(executor, timeout_s=min(executor.timeout_s, 10.0))
    except SQLAgentError as exc:
        detail = f"the login's privileges could not be checked: {exc}"
        return CheckResult(name, status, _short(detail, 600), blocking=required)
    if not findings:
        return CheckResult(name, "pass", "the login can only read (no write, file or admin grant)")
    detail = summarize_findings(findings)
    if required:
        detail += "; require_least_privilege is set, so the agent refuses to start"
    return CheckResult(name, status, _short(detail, 600), blocking=required)


def _cleanup_probe(executor: Executor) -> str:
    def exists() -> bool:
        try:
            executor.run(f"SELECT 1 FROM {PROBE_TABLE}")
        except SQLAgentError:
            return False
        return True

    if not exists():
        return "nothing persisted (the write was rolled back)"
    with contextlib.suppress(SQLAgentError):
        executor.run(f"DROP TABLE {PROBE_TABLE}")
    if exists():
        return f"the table {PROBE_TABLE} persists: drop it by hand"
    return f"the table {PROBE_TABLE} persisted and was dropped"


def check_policy(ctx: CheckContext) -> list[CheckResult]:
    """The config's role policy: it must parse (a broken policy blocks, and the row names the
    file and line), and every table and column it names should be in the database's catalog
    (a misspelt grant grants nothing: a ``warn`` row per name, with "did you mean")."""
    from sqlagent.catalog import reflect_catalog
    from sqlagent.dialects import dialect_from_url, resolve_dialect
    from sqlagent.errors import PolicyError
    from sqlagent.safety import Policy

    config = ctx.config
    if config is None:
        return [CheckResult("policy", "skip", "no config")]
    if config.policy is None:
        return [CheckResult("policy", "skip", "no policy: single-user mode")]
    path = config.policy
    try:
        policy = Policy.from_file(path)
    except PolicyError as exc:
        where = _policy_location(path, exc)
        return [CheckResult("policy", "fail", f"{where}: {exc}", blocking=True)]
    lines = _policy_key_lines(path)
    rows = [
        CheckResult(
            "policy", "pass", f"{path}: {len(policy.roles)} role(s), default {policy.default_role}"
        )
    ]
    if ctx.database is None:
        rows.append(CheckResult("policy names", "skip", "no database to check the names against"))
        return rows
    try:
        catalog = reflect_catalog(ctx.database)
        dialect = resolve_dialect(config.dialect or dialect_from_url(ctx.database))
    except SQLAgentError as exc:
        detail = _short(f"not checked: the catalog could not be read: {exc}")
        rows.append(CheckResult("policy names", "skip", detail))
        return rows
    issues = policy.check_names(catalog, dialect)
    if not issues:
        detail = (
            f"every table and column the policy names is in the catalog ({len(catalog)} tables)"
        )
        rows.append(CheckResult("policy names", "pass", detail))
    for issue in issues:
        key = ("roles", issue.role, issue.section, issue.table)
        line = lines.get((*key, issue.column) if issue.column is not None else key) or lines.get(
            key
        )
        where = f"{path}, line {line}" if line else str(path)
        rows.append(CheckResult("policy names", "warn", f"{where}: {issue.message}"))
    return rows


def _policy_key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """The line of every key (and list item) in a YAML/JSON policy file, by its path:
    ``("roles", "viewer", "tables", "employees", "salary") -> 12``; empty when unreadable."""
    import yaml

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node | None, at: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    here = (*at, str(key.value))
                    lines.setdefault(here, key.start_mark.line + 1)
                    walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                if isinstance(item, yaml.ScalarNode):
                    lines.setdefault((*at, str(item.value)), item.start_mark.line + 1)

    walk(root, ())
    return lines


def _policy_location(path: Path, error: Exception) -> str:
    """``"FILE, line N"`` for a policy error (``"FILE"`` when no line can be told).

    A syntax error has its position from the parser. A policy that parses but breaks the
    format names what is wrong (a role, a key, a table) in its message, so the line is that of
    the key whose path the message names most of, its own name included (best effort).
    """
    import json

    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(path)
    try:
        if path.suffix.lower() == ".json":
            json.loads(text)
        yaml.compose(text)
    except json.JSONDecodeError as exc:
        return f"{path}, line {exc.lineno}"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return f"{path}, line {mark.line + 1}" if mark is not None else str(path)
    except yaml.YAMLError:
        return str(path)
    message = str(error)

    def named(name: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message) is not None

    best: tuple[int, int, int] | None = None  # (names matched, -names not matched, -line)
    for key, line in _policy_key_lines(path).items():
        if not named(key[-1]):
            continue
        matched = sum(1 for part in key if named(part))
        score = (matched, matched - len(key), -line)
        if best is None or score > best:
            best = score
    return f"{path}, line {-best[2]}" if best is not None else str(path)


def check_audit(ctx: CheckContext) -> list[CheckResult]:
    from sqlagent.audit import probe_audit_target, verify_chain

    config = ctx.config
    if config is None:
        return [CheckResult("audit sink", "skip", "no config")]
    target = config.audit_log
    if target is None:
        return [
            CheckResult(
                "audit sink", "skip", "no audit_log: events go to the sqlagent.audit logger"
            )
        ]
    blocking = config.on_audit_error == "fail"
    if isinstance(target, str):  # a database URL: reachable, and its tables are a chain
        try:
            detail = probe_audit_target(target)
        except (AuditError, ConfigError) as exc:
            return [
                CheckResult(
                    "audit sink", "fail" if blocking else "warn", str(exc), blocking=blocking
                )
            ]
        return [CheckResult("audit sink", "pass", f"{detail} (chain: `sqlagent audit verify`)")]
    path = target
    if not path.exists():
        ok, detail = _writable_dir(path.parent)
        if ok:
            return [CheckResult("audit sink", "pass", f"{path} will be created")]
        return [
            CheckResult("audit sink", "fail" if blocking else "warn", detail, blocking=blocking)
        ]
    try:
        if not path.is_file():
            raise IsADirectoryError(f"{path} is not a file")
        with path.open("ab"):  # appending nothing: the file is left as it is
            pass
    except OSError as exc:
        detail = f"{path} is not appendable: {exc}"
        return [
            CheckResult("audit sink", "fail" if blocking else "warn", detail, blocking=blocking)
        ]
    size = path.stat().st_size
    if size > _VERIFY_LIMIT:
        detail = (
            f"{path} appendable ({size / 2**20:.0f} MiB; chain not re-verified here: "
            "run `sqlagent audit verify`)"
        )
        return [CheckResult("audit sink", "pass", detail)]
    report = verify_chain(path)
    if not report.ok:
        first = report.problems[0]
        detail = (
            f"{path} appendable, but its hash chain has {len(report.problems)} problem(s), "
            f"first at line {first.line}: {first.kind}"
        )
        return [CheckResult("audit sink", "warn", detail)]
    return [
        CheckResult("audit sink", "pass", f"{path} appendable, chain intact ({report.lines} lines)")
    ]


CHECKS: tuple[Check, ...] = (
    check_python,
    check_torch,
    check_packages,
    check_gpu_packages,
    check_models,
    check_retrieval,
    check_database,
    check_policy,
    check_audit,
)


def torch_facts() -> dict[str, Any]:
    """torch's version and the CUDA devices it sees (``{}`` when torch is not installed)."""
    if importlib.util.find_spec("torch") is None:
        return {}
    try:
        import torch
    except Exception as exc:  # a broken install: report it, do not crash the doctor
        return {"torch_error": _short(f"torch fails to import: {type(exc).__name__}: {exc}")}
    devices: list[CudaDevice] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(CudaDevice(props.name, (props.major, props.minor), props.total_memory))
    return {
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda,
        "cuda_devices": tuple(devices),
    }


def run_checks(
    config: AgentConfig | None = None,
    *,
    database: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    checks: Sequence[Check] = CHECKS,
    context: CheckContext | None = None,
) -> DoctorReport:
    """Run ``checks`` (default: all) and collect their rows.

    ``database`` overrides the config's database URL. ``context`` replaces the whole context
    (tests use it to describe a machine without touching torch). A check that crashes becomes
    a non-blocking ``fail`` row naming the exception, so one bug cannot hide the other rows.
    """
    if context is None:
        context = CheckContext(
            config=config,
            config_path=None if config_path is None else Path(config_path),
            database=database or (config.database if config is not None else None),
            **torch_facts(),
        )
    rows: list[CheckResult] = []
    if context.config_path is not None:
        rows.append(CheckResult("config", "pass", str(context.config_path)))
    elif context.config is None:
        rows.append(
            CheckResult("config", "skip", "no config file (--config FILE or ./sqlagent.yaml)")
        )
    for check in checks:
        try:
            rows.extend(check(context))
        except Exception as exc:  # a doctor must report, not crash
            name = getattr(check, "__name__", "check").removeprefix("check_")
            rows.append(
                CheckResult(name, "fail", _short(f"check crashed: {type(exc).__name__}: {exc}"))
            )
    return DoctorReport(checks=tuple(rows), config_path=context.config_path)


def _short(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
