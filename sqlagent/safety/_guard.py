"""The safety core's entry points: :func:`check_sql` and :class:`Guard`, both pure.

Pipeline, fail closed at every step::

    parse (exactly one statement) -> read-only RULES -> grounding + policy (catalog, role)
        -> rewrite (expand *, mask, row cap) -> regenerate SQL from the tree

The SQL that runs is always regenerated from the validated tree, without comments, and with
sqlglot's generator set to raise rather than silently drop anything it cannot render, so the
text that executes is exactly what was judged.

Judging is all they do: no decision is recorded (only an unexpected analysis failure is logged,
as a warning on ``sqlagent.safety``). The caller that acts on a verdict (the agent, ``sqlagent
validate``, the server) records it in the audit trail (:func:`sqlagent.audit.verdict_event`
builds the ``"validate"`` event).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import SqlglotError

from sqlagent.catalog import Catalog
from sqlagent.dialects import resolve_dialect
from sqlagent.errors import ConfigError, RejectedError
from sqlagent.safety._analyze import SchemaIndex, analyze, sqlite_string_fallback
from sqlagent.safety._config import SafetyConfig
from sqlagent.safety._parse import parse_one_statement
from sqlagent.safety._policy import Access, Policy
from sqlagent.safety._readonly import RuleContext, check_read_only, undo_arrow_lambdas
from sqlagent.safety._render import TARGETS, Quoted, faithful, render
from sqlagent.safety._rewrite import apply_row_cap, drop_mysql_dual
from sqlagent.types import Verdict, Violation, ViolationCode

__all__ = ["Guard", "check_sql"]

_log = logging.getLogger("sqlagent.safety")


def _identity(access: Access | None) -> tuple[str | None, str]:
    """The role a verdict is for, and whether a policy was enforced."""
    return (access.role, "policy") if access is not None else (None, "single_user")


def _reject(
    sql: str,
    dialect: str,
    violations: list[Violation],
    access: Access | None,
    tables: tuple[str, ...] = (),
    columns: tuple[str, ...] = (),
) -> Verdict:
    role, mode = _identity(access)
    return Verdict(
        allowed=False, sql=None, original_sql=sql, dialect=dialect,
        violations=tuple(violations), tables=tables, columns=columns, role=role,
        policy_mode=mode,
    )  # fmt: skip


def _check(
    sql: str,
    dialect: str,
    target: str,
    index: SchemaIndex | None,
    access: Access | None,
    config: SafetyConfig,
    diagnostics: Callable[[Access], SchemaIndex] | None = None,
) -> Verdict:
    parsed = parse_one_statement(
        sql, dialect, max_chars=config.max_sql_chars, max_depth=config.max_nesting
    )
    if parsed.tree is None:
        return _reject(sql, dialect, list(parsed.violations), access)
    tree = parsed.tree

    ctx = RuleContext.for_config(dialect, config)
    violations = check_read_only(tree, ctx)
    if violations:
        return _reject(sql, dialect, violations, access)

    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()
    output: exp.Expr = tree
    if index is not None:
        catalog = index.catalog

        def fresh() -> exp.Expr:
            again = parsed.again()
            undo_arrow_lambdas(again, dialect)  # as check_read_only did to the first tree
            if dialect == "sqlite":
                sqlite_string_fallback(again, catalog)
            return again

        if dialect == "sqlite":
            sqlite_string_fallback(tree, catalog)
        # Policy mode rewrites the tree it analyses into the statement to run; single-user mode
        # runs the user's own statement, so the analysis gets a second tree of its own.
        work = tree if access is not None else fresh()
        counterpart: dict[int, exp.Table] = {}
        if dialect == "mysql" and access is None:
            pairs = zip(tree.find_all(exp.Table), work.find_all(exp.Table), strict=True)
            counterpart = {id(copied): original for original, copied in pairs}
        diagnostic = diagnostics(access) if diagnostics is not None and access else None
        analysis = analyze(
            work,
            index,
            access,
            mask_value=config.mask_value,
            diagnostic=diagnostic,
            fresh=fresh,
            counterpart=counterpart,
        )
        tables, columns = tuple(analysis.tables), tuple(analysis.columns)
        masked = tuple(analysis.masked)
        if analysis.violations:
            return _reject(sql, dialect, analysis.violations, access, tables, columns)
        if analysis.output is not None:
            output = analysis.output

    if dialect == "mysql":
        output = drop_mysql_dual(output)
    if config.max_rows is not None:
        output = apply_row_cap(output, config.max_rows)
    try:
        quoted = Quoted.of(output)
        final = render(output, target)
        # What is judged is what runs. Cheaply: the text tokenizes back to one statement whose
        # every literal and quoted name is the tree's. Otherwise, fully: the text must parse
        # back to one read-only statement that renders to exactly the same text.
        if not faithful(final, dialect, quoted):
            again = parse_one_statement(final, dialect)
            if (
                again.tree is None
                or check_read_only(again.tree, ctx)
                or render(again.tree, target) != final
            ):
                raise SqlglotError(
                    "the rendered SQL does not parse back to the validated statement"
                )
    except SqlglotError as exc:
        return _reject(sql, dialect, [Violation(
            ViolationCode.PARSE_ERROR,
            f"The statement cannot be rendered faithfully for {target}: {exc}",
        )], access, tables, columns)  # fmt: skip
    role, mode = _identity(access)
    return Verdict(
        allowed=True, sql=final, original_sql=sql, dialect=dialect, tables=tables,
        columns=columns, masked_columns=masked, role=role, policy_mode=mode,
    )  # fmt: skip


def _safe_check(
    sql: str,
    dialect: str,
    target: str,
    index: SchemaIndex | None,
    access: Access | None,
    config: SafetyConfig,
    diagnostics: Callable[[Access], SchemaIndex] | None = None,
) -> Verdict:
    # Fail closed: an unexpected failure anywhere in the analysis is a rejection, never a pass.
    try:
        return _check(sql, dialect, target, index, access, config, diagnostics)
    except RecursionError:
        reason = "The statement is nested too deeply to analyse."
    except Exception as exc:
        _log.warning("safety analysis failed; rejecting", exc_info=True)
        reason = f"The statement could not be analysed ({type(exc).__name__}: {exc})."
    return _reject(sql, dialect, [Violation(ViolationCode.PARSE_ERROR, reason)], access)


def check_sql(
    sql: str,
    *,
    dialect: str = "sqlite",
    catalog: Catalog | None = None,
    policy: Policy | None = None,
    role: str | None = None,
    config: SafetyConfig | None = None,
) -> Verdict:
    """Judge one statement: pure, nothing is recorded (the caller audits what it acts on).

    With a ``catalog`` every table and column is grounded; with a ``policy`` (which needs a
    catalog) the role's grants and masks are enforced and the statement rewritten. For repeated
    checks use :class:`Guard`, which caches the prepared catalog per role.
    """
    guard = Guard(dialect=dialect, catalog=catalog, policy=policy, config=config)
    return guard.check(sql, role=role)


@dataclass
class Guard:
    """Validates SQL for one database: read-only, grounded, authorized.

    :meth:`check` is pure: it returns a :class:`~sqlagent.types.Verdict` and records nothing
    (the caller audits the decisions it acts on; see :func:`sqlagent.audit.verdict_event`).
    Without a policy the guard runs in single-user mode: everything the read-only rules (and
    grounding, with a catalog) allow passes, and each verdict says
    ``policy_mode="single_user"``. The prepared catalog of each role is cached, so one guard
    serves many checks.
    """

    dialect: str = "sqlite"
    catalog: Catalog | None = None
    policy: Policy | None = None
    config: SafetyConfig | None = None
    _indexes: dict[tuple[str | None, bool], SchemaIndex] = field(
        default_factory=dict, init=False, repr=False
    )
    _access: dict[str, Access] = field(default_factory=dict, init=False, repr=False)

    _target: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        requested = self.dialect.strip().lower()
        self.dialect = resolve_dialect(self.dialect)
        self._target = requested if requested in TARGETS else self.dialect
        if self.config is None:
            self.config = SafetyConfig()
        if self.policy is not None and self.catalog is None:
            raise ConfigError(
                "a role policy needs a catalog (a database URL or a schema file) to resolve "
                "columns and expand *"
            )

    # -- role views ------------------------------------------------------------------------------
    def access(self, role: str | None) -> Access | None:
        """The resolved grants of ``role`` (``None`` in single-user mode)."""
        if self.policy is None or self.catalog is None:
            return None
        effective = self.policy.resolve_role(role)
        if effective not in self._access:
            self._access[effective] = self.policy.access(effective, self.catalog, self.dialect)
        return self._access[effective]

    def catalog_for(self, role: str | None) -> Catalog | None:
        """The role-filtered catalog: all that retrieval and prompts may show this role."""
        access = self.access(role)
        if access is None or self.catalog is None:
            return self.catalog
        return access.catalog(self.catalog)

    def _index(self, access: Access | None) -> SchemaIndex | None:
        if self.catalog is None:
            return None
        key = (access.role if access is not None else None, False)
        if key not in self._indexes:
            visible = access.visible if access is not None else None
            masked = access.masked if access is not None else frozenset()
            self._indexes[key] = SchemaIndex.build(
                self.catalog, self.dialect, visible, masked=masked
            )
        return self._indexes[key]

    def _diagnostic_index(self, access: Access) -> SchemaIndex:
        """The whole catalog with ``access``'s grants: used only to name a violation precisely."""
        assert self.catalog is not None
        key = (access.role, True)
        if key not in self._indexes:
            self._indexes[key] = SchemaIndex.build(
                self.catalog, self.dialect, access.visible, qualify_all=True
            )
        return self._indexes[key]

    # -- checks ----------------------------------------------------------------------------------
    def check(self, sql: str, *, role: str | None = None) -> Verdict:
        """Judge ``sql`` for ``role`` (the policy's default role when ``None`` or unknown)."""
        assert self.config is not None
        access = self.access(role)
        return _safe_check(
            sql,
            self.dialect,
            self._target,
            self._index(access),
            access,
            self.config,
            self._diagnostic_index,
        )

    def check_or_raise(self, sql: str, *, role: str | None = None) -> Verdict:
        """Like :meth:`check`, but raise :class:`RejectedError` on rejection."""
        verdict = self.check(sql, role=role)
        if not verdict.allowed:
            raise RejectedError(verdict)
        return verdict
