"""Step 3: grounding and policy — resolve every table and column, then enforce the role.

The analysis works on a tree whose identifiers are normalized under the dialect's case rules and
which sqlglot's ``qualify`` has rewritten so that every column names its source and every ``*``
is expanded. Table references are resolved the way the engine resolves them (a qualified name
never means a CTE); each column is then resolved through aliases, CTEs, derived tables,
correlated subqueries, USING joins, set operations, table functions and system relations to the
source it reads.

In policy mode the qualified tree (masks applied) *is* the statement that runs, and it enforces
the role by construction, independently of the column checks: every reference to a table the
role may only partly read becomes a derived table that selects exactly the role's granted
columns (masked ones as the mask), so the database itself cannot see anything else — the
*noninterference* property: the result never depends on values the role may not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns, quote_identifiers
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope
from sqlglot.schema import MappingSchema

from sqlagent.catalog import Catalog, Table
from sqlagent.dialects import (
    RESERVED_WORDS,
    analysis_dialect,
    catalog_key,
    is_system_relation,
    normalize_key,
)
from sqlagent.safety._names import close_names
from sqlagent.safety._policy import Access
from sqlagent.types import Violation, ViolationCode

__all__ = ["Analysis", "SchemaIndex", "analyze", "sqlite_string_fallback"]

_CASE_INSENSITIVE = frozenset({"sqlite", "mysql"})
_DEFAULT_SCHEMAS = {"sqlite": {"main"}, "postgres": {"public"}, "mysql": set(), "oracle": set()}
# DUAL's columns: Oracle's has DUMMY, MySQL/MariaDB's has none.
_DUAL_COLUMNS = {"oracle": frozenset({"dummy"}), "mysql": frozenset()}

#: Output columns of set-returning functions used as tables, when the query gives no column
#: alias list. ``None``: one column, named after the table alias (or the function). Functions
#: missing here have columns the analysis does not know (references to them are not grounded).
_TABLE_FUNCTION_COLUMNS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "postgres": {
        "generate_series": None,
        "unnest": None,
        "generate_subscripts": None,
        "regexp_matches": None,
        "regexp_split_to_table": None,
        "string_to_table": None,
        "json_object_keys": None,
        "jsonb_object_keys": None,
        "json_array_elements": ("value",),
        "jsonb_array_elements": ("value",),
        "json_array_elements_text": ("value",),
        "jsonb_array_elements_text": ("value",),
        "json_each": ("key", "value"),
        "jsonb_each": ("key", "value"),
        "json_each_text": ("key", "value"),
        "jsonb_each_text": ("key", "value"),
    },
    "sqlite": {
        "json_each": ("key", "value", "type", "atom", "id", "parent", "fullkey", "path"),
        "json_tree": ("key", "value", "type", "atom", "id", "parent", "fullkey", "path"),
    },
    "mysql": {},
    "oracle": {},
}


@dataclass(frozen=True)
class SchemaIndex:
    """A catalog prepared for one dialect (and, in policy mode, one role): built once, reused.

    ``wrapped`` holds, for each table the role may only partly read (a denied or a masked
    column), the columns the role's derived table selects, in catalog order, each with whether it
    is masked; tables the role reads whole and in clear are not wrapped.
    """

    dialect: str
    catalog: Catalog
    tables: Mapping[str, Table]  # normalized key -> table
    columns: Mapping[str, Mapping[str, str]]  # table name -> normalized column key -> column name
    visible: Mapping[str, frozenset[str]] | None  # None: single-user mode, all visible
    qualify_schema: MappingSchema
    wrapped: Mapping[str, tuple[tuple[str, bool], ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        dialect: str,
        visible: Mapping[str, frozenset[str]] | None = None,
        *,
        masked: frozenset[tuple[str, str]] = frozenset(),
        qualify_all: bool = False,
    ) -> SchemaIndex:
        """Prepare ``catalog``; ``visible`` (policy mode) limits what qualify() sees unless
        ``qualify_all`` (the diagnostic view used only to name a violation precisely)."""
        tables = {catalog_key(t.name, dialect): t for t in catalog}
        columns = {
            t.name: {catalog_key(c, dialect): c for c in t.column_names} for t in catalog.tables
        }
        mapping: dict[str, object] = {}
        limit = None if qualify_all else visible
        for key, table in tables.items():
            if limit is not None and table.name not in limit:
                continue
            allowed = None if limit is None else limit[table.name]
            mapping[key] = {
                ckey: "UNKNOWN"
                for ckey, cname in columns[table.name].items()
                if allowed is None or cname in allowed
            }
        schema = MappingSchema(mapping, dialect=analysis_dialect(dialect), normalize=False)
        wrapped: dict[str, tuple[tuple[str, bool], ...]] = {}
        if visible is not None:
            for table in catalog:
                granted = visible.get(table.name)
                if granted is None:
                    continue
                names = table.column_names
                if len(granted) < len(names) or any((table.name, c) in masked for c in granted):
                    wrapped[table.name] = tuple(
                        (catalog_key(c, dialect), (table.name, c) in masked)
                        for c in names
                        if c in granted
                    )
        return cls(dialect, catalog, tables, columns, visible, schema, wrapped)

    def is_visible(self, table: str, column: str | None = None) -> bool:
        if self.visible is None:
            return True
        if table not in self.visible:
            return False
        return column is None or column in self.visible[table]

    def visible_columns(self, table: str) -> list[str]:
        return [c for c in self.columns[table].values() if self.is_visible(table, c)]

    def fully_readable(self, table: str, access: Access | None) -> bool:
        """Whether the role reads every column of ``table`` in clear (nothing to protect)."""
        return access is None or (self.is_visible(table) and table not in self.wrapped)


@dataclass(frozen=True, slots=True)
class Ungrounded:
    """A source that is not in the catalog but may be read: DUAL, a system relation, a table
    function. ``columns`` (normalized keys) are the columns the database sees through it, or
    ``None`` when unknown. ``wrap`` (a system relation granted column by column): the statement
    reads it through a derived table that selects exactly ``columns``."""

    label: str
    columns: frozenset[str] | None
    wrap: bool = False


@dataclass
class Analysis:
    violations: list[Violation] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    output: exp.Expr | None = None  # policy mode: the rewritten statement to run
    ungrounded: list[Ungrounded] = field(default_factory=list)

    def ground(self, table: exp.Table, source: Ungrounded) -> None:
        """Resolve ``table`` to ``source``, a source outside the catalog (kept by index in the
        table's meta, which survives qualify()'s rewrites)."""
        table.meta[_TABLE] = _UNGROUNDED
        table.meta[_SOURCE] = len(self.ungrounded)
        self.ungrounded.append(source)

    def touch(self, table: str, column: str | None = None) -> None:
        if table not in self.tables:
            self.tables.append(table)
        if column is not None and f"{table}.{column}" not in self.columns:
            self.columns.append(f"{table}.{column}")


def sqlite_string_fallback(tree: exp.Expr, catalog: Catalog) -> None:
    """SQLite reads a double-quoted word that names no column as a string literal; do the same.

    ``WHERE country = "France"`` is a string comparison in SQLite when no column is called France.
    The tree is changed in place so the statement that runs says ``'France'`` explicitly.
    """
    candidates = [
        c
        for c in tree.find_all(exp.Column)
        if not c.table and isinstance(c.this, exp.Identifier) and c.this.quoted
    ]
    if not candidates:
        return
    known: set[str] = set()
    for table in tree.find_all(exp.Table):
        t = catalog.table(table.name) or next(
            (x for x in catalog if x.name.lower() == table.name.lower()), None
        )
        if t is not None:
            known.update(c.lower() for c in t.column_names)
    for node in tree.find_all(exp.Alias, exp.TableAlias, exp.CTE):
        if node.alias:
            known.add(node.alias.lower())
        if isinstance(node, exp.TableAlias):
            known.update(c.name.lower() for c in node.columns)
    for column in candidates:
        if column.this.name.lower() not in known and not isinstance(column.parent, exp.Dot):
            column.replace(exp.Literal.string(column.this.name))


def _output_names(scope: Scope) -> list[str]:
    """The column names a scope produces (a set operation's come from its first branch)."""
    expr: exp.Expr = scope.expression
    while isinstance(expr, exp.SetOperation):
        expr = expr.left
    if isinstance(expr, exp.Lateral | exp.Unnest):
        alias = expr.args.get("alias")
        offset = expr.args.get("offset")  # WITH ORDINALITY's column
        extra = [offset.name] if isinstance(offset, exp.Identifier) else []
        if isinstance(alias, exp.TableAlias) and alias.columns:
            return [c.name for c in alias.columns] + extra
        if isinstance(expr, exp.Lateral):
            expr = expr.this
        else:
            return [alias.name] if isinstance(alias, exp.TableAlias) and alias.name else []
    if isinstance(expr, exp.Subquery):
        expr = expr.unnest()
    names = getattr(expr, "named_selects", None)
    return list(names) if names else []


def _is_alias_reference(column: exp.Column, scope: Scope) -> bool:
    """A bare ``ORDER BY name`` naming one of the scope's output columns.

    qualify() expands alias references in WHERE/GROUP BY/HAVING; what remains is ORDER BY. Only
    a bare name there refers to an output column: inside an expression (``ORDER BY name + 0``)
    SQLite and PostgreSQL resolve it against the sources, so it must be checked like any column.
    """
    ordered = column.parent
    order = ordered.parent if isinstance(ordered, exp.Ordered) else None
    return (
        isinstance(order, exp.Order)
        and order.parent is scope.expression
        and ordered is not None
        and ordered.this is column
        and column.name in _output_names(scope)
    )


_ORIG = "sqlagent_orig"  # Identifier.meta: the spelling the user wrote
_TABLE = "sqlagent_table"  # Table.meta: name of the catalog table it reads, or _UNGROUNDED
_SOURCE = "sqlagent_source"  # Table.meta: index of its Ungrounded entry in Analysis.ungrounded
_CTE_REF = "sqlagent_cte"  # Table.meta: the reference names a CTE
_STAR = "sqlagent_star"  # Select.meta: the select list had a * before expansion
_UNGROUNDED = "\x00ungrounded"  # never a table name

# Arguments a wrapped table reference may carry: anything else (hints, time travel, sampling)
# could change what the derived table would have to read, so it fails closed.
_WRAPPABLE_ARGS = frozenset(
    {"this", "db", "catalog", "alias", "only", "joins", "laterals", "sample"}
)


def analyze(
    tree: exp.Expr,
    index: SchemaIndex,
    access: Access | None,
    *,
    mask_value: str,
    diagnostic: SchemaIndex | None = None,
    fresh: Callable[[], exp.Expr] | None = None,
    counterpart: Mapping[int, exp.Table] | None = None,
) -> Analysis:
    """Ground ``tree`` in ``index`` and, with ``access``, enforce the role's grants and masks.

    ``tree`` is analysed *in place* (normalized, qualified, rewritten); in policy mode it becomes
    the statement to run. If sqlglot cannot qualify a statement against the role's view, the
    analysis is repeated on ``fresh()`` (a new parse of the same text) with ``diagnostic`` (the
    whole catalog, same grants) purely to name the exact violation. ``counterpart`` maps the ids
    of ``tree``'s table nodes to the nodes of the tree that will run (single-user mode), where
    MySQL table names get their catalog spelling. Facts about nodes live in ``node.meta``.
    """
    dialect = index.dialect
    ad = analysis_dialect(dialect)
    result = Analysis()
    seen = _Seen.of(tree)
    normalize_identifiers(tree, dialect=ad)
    if access is not None:
        _refuse_shadowing_ctes(seen.ctes, index, access, result)
        if result.violations:
            return result
    recursive = _mark_oracle_recursion(seen.withs) if dialect == "oracle" else []
    added = _unnest_columns(tree) if dialect == "postgres" else []
    for table in seen.tables:
        if isinstance(table.this, exp.Func):  # columns known before qualify() needs them
            result.ground(table, _table_function(table, dialect, added))

    # -- columns --------------------------------------------------------------------------------
    try:
        if seen.unnamed:
            # Names every source and expands (t1 JOIN t2) AS t. Costly, so only when a source
            # has no name of its own: plain tables and aliased subqueries need none.
            qualify_tables(tree, dialect=ad)
        qualify_columns(
            tree,
            index.qualify_schema,
            expand_alias_refs=True,
            expand_stars=True,
            # a reference to a column its source lacks stays in place for the checker to classify
            allow_partial_qualification=True,
            dialect=ad,
        )
    except SqlglotError as exc:
        # Unknown and denied tables first: they explain most failures to qualify.
        _resolve_tables(traverse_scope(tree), seen.tables, index, access, result, counterpart)
        if result.violations:
            return result
        if access is not None and diagnostic is not None and fresh is not None:
            diagnosis = analyze(fresh(), diagnostic, access, mask_value=mask_value)
            if diagnosis.violations:
                diagnosis.output = None
                return diagnosis
        code = (
            ViolationCode.AMBIGUOUS_COLUMN
            if "mbiguous" in str(exc)
            else (ViolationCode.UNKNOWN_COLUMN)
        )
        result.violations.append(
            Violation(code, f"Cannot resolve the columns of this query: {exc}")
        )
        return result

    for alias in added:
        alias.set("columns", None)  # named only so qualify() could resolve them
    scopes = traverse_scope(tree)
    _resolve_tables(scopes, seen.tables, index, access, result, counterpart)
    if result.violations:
        return result
    checker = _ColumnChecker(index, access, result)
    for scope in scopes:
        checker.check_scope(scope)
    checker.report_misuse()
    if access is not None and any(
        str(join.args.get("method") or "").upper() == "NATURAL" for join in seen.joins
    ):
        result.violations.append(Violation(
            ViolationCode.COLUMN_DENIED,
            "NATURAL JOIN compares every column the tables share, including columns not "
            "available to this role; join with explicit ON conditions instead.",
        ))  # fmt: skip
    if result.violations or access is None:
        return result

    # -- policy mode: the qualified tree, masks applied, becomes the statement to run ----------
    for column in checker.to_mask:
        column.replace(exp.Literal.string(mask_value))
    if dialect == "sqlite":
        _name_values_columns(seen.values)
    _restore_labels(tree, index)
    using = any(join.args.get("using") for join in seen.joins)
    for node in seen.tables:
        got = node.meta.get(_TABLE)
        if got is None or node.meta.get(_CTE_REF):
            continue
        # MySQL compares table names case-sensitively on most servers: use the real spelling.
        if dialect in _CASE_INSENSITIVE and got != _UNGROUNDED:
            node.this.set("this", got)
            node.this.set("quoted", False)
        if got != _UNGROUNDED and got in index.wrapped:
            # USING names columns no Column node stands for: then every granted one is kept
            used = None if using else checker.used.get(id(node), set())
            _wrap(node, index.wrapped[got], mask_value, result, used)
        elif got == _UNGROUNDED:
            source = result.ungrounded[node.meta[_SOURCE]]
            if source.wrap and source.columns is not None:
                names = sorted(normalize_key(c, dialect, quoted=False) for c in source.columns)
                _wrap(node, tuple((c, False) for c in names), mask_value, result)
    if result.violations:
        return result
    for with_ in recursive:
        with_.set("recursive", None)  # marked for scope analysis only
    result.output = _quote_keywords(quote_identifiers(tree, dialect=ad, identify=False))
    return result


_FROM_ITEM = (exp.From, exp.Join, exp.Subquery, exp.Lateral)
_UNNAMED_SOURCES = frozenset({exp.Values, exp.Pivot, exp.Unnest, exp.Lateral})


def _nests(node: exp.Expr) -> bool:
    return bool(node.args.get("joins") or node.args.get("pivots") or node.args.get("laterals"))


@dataclass(slots=True)
class _Seen:
    """One walk over the statement before analysis: the nodes later steps need, and each
    identifier's spelling as written (kept in its meta for messages and labels)."""

    tables: list[exp.Table] = field(default_factory=list)
    ctes: list[exp.CTE] = field(default_factory=list)
    withs: list[exp.With] = field(default_factory=list)
    joins: list[exp.Join] = field(default_factory=list)
    values: list[exp.Values] = field(default_factory=list)
    unnamed: bool = False  # a source qualify_tables() must name (or a join it must expand)

    @classmethod
    def of(cls, tree: exp.Expr) -> _Seen:
        seen = cls()
        for node in tree.walk():
            kind = type(node)
            if kind is exp.Identifier:
                node.meta[_ORIG] = node.this
            elif kind is exp.Column:
                continue
            elif kind is exp.Table:
                seen.tables.append(node)  # type: ignore[arg-type]
                if not isinstance(node.this, exp.Identifier) or _nests(node):
                    seen.unnamed = True
            elif kind is exp.Subquery:
                if _nests(node) or (not node.alias and isinstance(node.parent, _FROM_ITEM)):
                    seen.unnamed = True
            elif kind is exp.Select:
                if any(p.is_star for p in node.selects):  # type: ignore[attr-defined]
                    node.meta[_STAR] = True
            elif kind is exp.Join:
                seen.joins.append(node)  # type: ignore[arg-type]
            elif kind is exp.CTE:
                seen.ctes.append(node)  # type: ignore[arg-type]
            elif kind is exp.With:
                seen.withs.append(node)  # type: ignore[arg-type]
            elif kind is exp.Values:
                seen.values.append(node)  # type: ignore[arg-type]
            if kind in _UNNAMED_SOURCES:
                seen.unnamed = True
        return seen


def _wrap(
    table: exp.Table,
    columns: tuple[tuple[str, bool], ...],
    mask_value: str,
    result: Analysis,
    used: set[str] | None = None,
) -> None:
    """Replace ``table`` by ``(SELECT <columns> FROM table AS name) AS alias``: the only view of
    the table the database will use for this statement. Masked columns select the mask.

    The derived table is written the way qualify() writes queries, and one that already has
    exactly this form is left as it is, so validating the rewritten SQL again gives it back.
    """
    if _is_wrapper(table, columns, mask_value):
        return
    if used is not None:
        # Only the columns the statement reads from this reference (at least one, so the row
        # count stays): a subset of the granted ones, and a shorter statement to check and run.
        columns = tuple(c for c in columns if c[0] in used) or columns[:1]
    extra = [k for k, v in table.args.items() if v and k not in _WRAPPABLE_ARGS]
    if extra or not isinstance(table.this, exp.Identifier):
        result.violations.append(Violation(
            ViolationCode.COLUMN_DENIED,
            f"Table {table.name} cannot be read with {', '.join(sorted(extra)) or 'this syntax'} "
            "by this role: only its granted columns may be read.",
        ))  # fmt: skip
        return
    if not columns:
        result.violations.append(Violation(
            ViolationCode.COLUMN_DENIED, f"No column of {table.name} is available to this role."
        ))  # fmt: skip
        return
    name = table.this.copy()
    inner = exp.Table(
        this=name,
        db=table.args.get("db"),
        catalog=table.args.get("catalog"),
        only=table.args.get("only"),
        alias=exp.TableAlias(this=name.copy()),
        sample=table.args.get("sample"),  # TABLESAMPLE samples the table's rows, inside
    )
    projections: list[exp.Expr] = []
    for column, masked in columns:
        label = exp.Identifier(this=column, quoted=False)
        value: exp.Expr = (
            exp.Literal.string(mask_value)
            if masked
            else exp.Column(this=label.copy(), table=name.copy())
        )
        projections.append(exp.Alias(this=value, alias=label))
    select = exp.Select(expressions=projections, from_=exp.From(this=inner))
    alias = table.args.get("alias")
    if not isinstance(alias, exp.TableAlias):
        alias = exp.TableAlias(this=name.copy())
    wrapper = exp.Subquery(this=select, alias=alias)
    for key in ("joins", "laterals"):
        if table.args.get(key):
            wrapper.set(key, table.args[key])
    table.replace(wrapper)


def _is_wrapper(table: exp.Table, columns: tuple[tuple[str, bool], ...], mask_value: str) -> bool:
    """Whether ``table`` is already read through a derived table :func:`_wrap` makes:
    ``(SELECT t.c1 AS c1, '<mask>' AS c2 ... FROM t AS t) AS x`` and nothing else, selecting
    some of ``columns`` in their order, masked ones as the mask."""
    select = table.parent.parent if isinstance(table.parent, exp.From) else None
    if not (
        isinstance(select, exp.Select)
        and isinstance(select.parent, exp.Subquery)
        and {k for k, v in select.args.items() if v} == {"expressions", "from_"}
        and table.alias_or_name == table.name
        and select.expressions
    ):
        return False
    remaining = iter(columns)
    for projection in select.expressions:
        if not isinstance(projection, exp.Alias):
            return False
        wanted = next((c for c in remaining if c[0] == projection.alias), None)
        if wanted is None:
            return False
        value = projection.this
        if wanted[1]:
            if not (isinstance(value, exp.Literal) and value.is_string):
                return False
            if value.name != mask_value:
                return False
        elif not (
            type(value) is exp.Column
            and value.name == wanted[0]
            and value.table == table.name
            and not value.args.get("db")
        ):
            return False
    return True


def _quote_keywords(tree: exp.Expr) -> exp.Expr:
    """Quote identifiers that are reserved words (a table called ``order``), which the generator
    would otherwise print bare. Quoting a normalized name never changes what it refers to."""
    for ident in tree.find_all(exp.Identifier):
        if not ident.quoted and ident.this.upper() in RESERVED_WORDS:
            ident.set("quoted", True)
    return tree


def _function_name(func: exp.Expr, dialect: str) -> str:
    """The name of a table function as the user wrote it (``generate_series``, ``unnest``)."""
    if isinstance(func, exp.Anonymous):
        return str(func.name).lower()
    text = func.sql(dialect=analysis_dialect(dialect), comments=False)
    return text.split("(", 1)[0].strip().lower()


def _table_function(table: exp.Table, dialect: str, added: list[exp.TableAlias]) -> Ungrounded:
    """A set-returning function in FROM: its output columns, from the alias list when given.

    Known outputs are also written into the alias (``json_each(x) AS json_each(key, value,
    ...)``) for qualify() to resolve columns with; they are removed again right after it.
    """
    alias = table.args.get("alias")
    name = _function_name(table.this, dialect)
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return Ungrounded(name, frozenset(c.name for c in alias.columns))
    known = _TABLE_FUNCTION_COLUMNS[dialect]
    if name not in known:
        return Ungrounded(name, None)
    label = alias.name if isinstance(alias, exp.TableAlias) and alias.name else name
    outputs = known[name] or (label,)
    if table.args.get("ordinality"):
        outputs = (*outputs, "ordinality")
    added.append(_add_alias_columns(table, label, outputs))
    return Ungrounded(name, frozenset(outputs))


def _add_alias_columns(node: exp.Expr, label: str, columns: Iterable[str]) -> exp.TableAlias:
    alias = exp.TableAlias(
        this=exp.Identifier(this=label, quoted=False),
        columns=[exp.Identifier(this=c, quoted=False) for c in columns],
    )
    node.set("alias", alias)
    return alias


def _mark_oracle_recursion(withs: list[exp.With]) -> list[exp.With]:
    """Oracle's recursive WITH has no RECURSIVE keyword: a CTE that reads its own name is
    recursive. Mark such WITH clauses for scope analysis (the mark is removed afterwards)."""
    marked: list[exp.With] = []
    for with_ in withs:
        if with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            own = cte.alias_or_name
            if isinstance(cte.this, exp.SetOperation) and any(
                t.name == own and not t.args.get("db") for t in cte.this.find_all(exp.Table)
            ):
                with_.set("recursive", True)
                marked.append(with_)
                break
    return marked


def _name_values_columns(found: list[exp.Values]) -> None:
    """SQLite names VALUES columns column1, column2 ... and has no syntax to rename them, so
    the names qualify() gave them (``AS _values(_col_0, ...)``) are turned back into SQLite's."""
    for values in found:
        alias = values.args.get("alias")
        select = values.parent.parent if isinstance(values.parent, exp.From) else None
        if not (isinstance(alias, exp.TableAlias) and alias.columns and select is not None):
            continue
        names = {c.name: f"column{i}" for i, c in enumerate(alias.columns, start=1)}
        alias.set("columns", None)
        for column in select.find_all(exp.Column):
            if column.table == alias.name and column.name in names:
                column.this.set("this", names[column.name])


def _unnest_columns(work: exp.Expr) -> list[exp.TableAlias]:
    """PostgreSQL names the one column of ``unnest(x) AS r`` after the alias (``unnest``
    without one): write it into the alias for qualify(), like other table functions."""
    added: list[exp.TableAlias] = []
    for unnest in work.find_all(exp.Unnest):
        alias = unnest.args.get("alias")
        if not isinstance(unnest.parent, exp.From | exp.Join) or len(unnest.expressions) != 1:
            continue
        if isinstance(alias, exp.TableAlias) and alias.columns:
            continue
        label = alias.name if isinstance(alias, exp.TableAlias) and alias.name else "unnest"
        added.append(_add_alias_columns(unnest, label, (label,)))
    return added


def _is_cte_reference(table: exp.Table, scope: Scope) -> bool:
    """Whether sqlglot bound ``table`` to a CTE: an unqualified name, a CTE source by that name
    in this scope. A schema-qualified name never refers to a CTE."""
    if table.args.get("db") or table.args.get("catalog"):
        return False
    return isinstance(scope.sources.get(table.alias_or_name), Scope) and (
        table.name in scope.cte_sources
    )


def _resolve_tables(
    scopes: list[Scope],
    tables: list[exp.Table],
    index: SchemaIndex,
    access: Access | None,
    result: Analysis,
    counterpart: Mapping[int, exp.Table] | None,
) -> None:
    """Resolve each table reference: to the catalog, a permitted ungrounded source, or a refusal.

    Every table node of the statement (``tables``) must be resolved here; one that scope
    analysis does not reach (an unusual position) fails closed.
    """
    dialect = index.dialect
    ad = analysis_dialect(dialect)
    counterpart = counterpart or {}
    for scope in scopes:
        for table in scope.tables:
            if _TABLE in table.meta or _CTE_REF in table.meta:
                continue
            if _is_cte_reference(table, scope):
                table.meta[_CTE_REF] = True
                continue
            if not isinstance(table.this, exp.Identifier):
                result.violations.append(Violation(
                    ViolationCode.NOT_READ_ONLY,
                    f"Unsupported table reference {_table_text(table, ad)}.",
                ))  # fmt: skip
                continue
            alias = table.args.get("alias")
            if isinstance(alias, exp.TableAlias) and alias.columns:
                result.violations.append(Violation(
                    ViolationCode.UNKNOWN_COLUMN,
                    f"Column aliases on table {table.name} ({alias.sql(dialect=ad)}) are not "
                    "supported: rename the columns in the select list instead.",
                ))  # fmt: skip
                continue
            name, db = table.name, table.db or None
            cat = index.tables.get(name)
            if (
                cat is not None
                and not table.catalog
                and (
                    db is None
                    or db in _DEFAULT_SCHEMAS[dialect]
                    or db == catalog_key(cat.schema or "", dialect)
                )
            ):
                if not index.is_visible(cat.name):
                    result.violations.append(Violation(
                        ViolationCode.TABLE_DENIED,
                        f"Table {cat.name} is not available to this role.",
                    ))  # fmt: skip
                    continue
                table.meta[_TABLE] = cat.name  # a name: meta is copied with the tree
                original = counterpart.get(id(table))
                # MySQL servers usually compare table names case-sensitively: the statement
                # that runs uses the real spelling (single-user mode runs the user's tree).
                if (
                    dialect == "mysql"
                    and access is None
                    and original is not None
                    and isinstance(original.this, exp.Identifier)
                ):
                    original.this.set("this", cat.name)
                result.touch(cat.name)
                continue
            if dialect in _DUAL_COLUMNS and db is None and name.lower() == "dual":
                result.ground(table, Ungrounded("DUAL", _DUAL_COLUMNS[dialect]))
                continue
            if is_system_relation(name, db, dialect):
                label = f"{db}.{name}" if db else name
                source = _system_source(label, name, db, access)
                if source is None:
                    result.violations.append(Violation(
                        ViolationCode.TABLE_DENIED,
                        f"System catalog {_table_text(table, ad)} is not available to this "
                        "role.",
                    ))  # fmt: skip
                    continue
                result.ground(table, source)
                result.touch(label)
                continue
            result.violations.append(_unknown_table(table, index))
    if result.violations:
        return
    for table in tables:
        if _TABLE not in table.meta and _CTE_REF not in table.meta:
            result.violations.append(Violation(
                ViolationCode.NOT_READ_ONLY,
                f"Table {_table_text(table, ad)} is used where its source cannot be analysed.",
            ))  # fmt: skip
            return


def _table_text(table: exp.Table, dialect: Any) -> str:
    """A table reference as written, without the alias qualify() may have added."""
    bare = exp.Table(
        this=table.this.copy() if isinstance(table.this, exp.Expr) else table.this,
        db=table.args.get("db"),
        catalog=table.args.get("catalog"),
    )
    return str(bare.sql(dialect=dialect))


def _system_source(
    label: str, name: str, db: str | None, access: Access | None
) -> Ungrounded | None:
    """The system relation as the role may see it: ``None`` when not granted."""
    if access is None:
        return Ungrounded(label, None)
    keys = [label.lower()]
    lowered = name.lower()
    if (db is None or db.lower() == "pg_catalog") and lowered.startswith("pg_"):
        # PostgreSQL searches pg_catalog first: pg_class is pg_catalog.pg_class
        keys += [lowered, f"pg_catalog.{lowered}"]
    granted = next((access.system[k] for k in keys if k in access.system), None)
    if granted is None:
        return None
    if "*" in granted:
        return Ungrounded(label, None)
    return Ungrounded(label, frozenset(c.lower() for c in granted), wrap=True)


def _refuse_shadowing_ctes(
    ctes: list[exp.CTE], index: SchemaIndex, access: Access, result: Analysis
) -> None:
    """Refuse a CTE named like a table the role may not read whole and in clear.

    Engines disagree on which references such a name means (SQLite sees every CTE of a WITH,
    PostgreSQL and MariaDB only earlier ones unless RECURSIVE, MariaDB none of an outer WITH from
    inside a nested CTE), so a reference judged as the CTE could read the real table.
    """
    dialect = index.dialect
    for cte in ctes:
        name = cte.alias_or_name
        table = index.tables.get(name)
        if table is not None:
            shadowed = not index.fully_readable(table.name, access)
        else:
            shadowed = is_system_relation(name, None, dialect) and "*" not in (
                access.system.get(name.lower()) or frozenset()
            )
        if shadowed:
            alias = cte.args.get("alias")
            written = alias.this.meta.get(_ORIG, name) if alias is not None else name
            result.violations.append(Violation(
                ViolationCode.TABLE_DENIED,
                f"The CTE name {written} is also the name of a table this role may not read in "
                "full; databases differ on which one a reference means. Rename the CTE.",
            ))  # fmt: skip
            return


def _unknown_table(table: exp.Table, index: SchemaIndex) -> Violation:
    dialect, name = index.dialect, table.name
    known = [t.name for t in index.catalog if index.is_visible(t.name)]
    written = table.this.meta.get(_ORIG, name) if isinstance(table.this, exp.Identifier) else name
    suggestions = close_names(written, known)
    message = f"Table {table.sql(dialect=analysis_dialect(dialect))} does not exist."
    twins = [s for s in suggestions if s.lower() == name.lower()]
    if twins and dialect in ("postgres", "oracle"):
        exact = catalog_key(twins[0], dialect)  # the spelling the database itself uses
        quoted = exp.to_identifier(exact, quoted=True).sql(dialect=dialect)
        message += f" Names are case-sensitive here; write it as {quoted}."
    return Violation(ViolationCode.UNKNOWN_TABLE, message, suggestions)


Source = exp.Table | Scope | Ungrounded
#: The output of a PIVOT: its columns come from its source (checked where the source is read,
#: masks applied there) and its IN list.
_PIVOT = Ungrounded("PIVOT", None)


def _selected(scope: Scope) -> list[tuple[str, Source]]:
    """The sources in the FROM/JOIN/LATERAL of ``scope`` (not merely defined CTEs)."""
    try:
        selected = scope.selected_sources.items()
    except SqlglotError:  # an alias used twice: the database refuses it too
        return list(scope.sources.items())
    out: list[tuple[str, Source]] = []
    for name, (node, src) in selected:
        out.append((name, src))
        for pivot in node.args.get("pivots") or ():
            if pivot.alias:
                out.append((pivot.alias, _PIVOT))
    return out


def _levels(scope: Scope) -> list[list[tuple[str, Source]]]:
    """The sources a column in ``scope`` may name, innermost level first, as SQL scopes them.

    A scope sees its own sources; a subquery, a table function/LATERAL and a set-operation branch
    also see the enclosing query's; a derived table or CTE body does not see the query it belongs
    to, but, nested inside a correlated subquery, it does see the queries around that one.
    """
    levels = [_selected(scope)]
    child, parent = scope, scope.parent
    while parent is not None:
        kind = child.scope_type
        if kind == ScopeType.ROOT:
            break
        if kind in (ScopeType.SUBQUERY, ScopeType.UDTF, ScopeType.SET_OPERATION):
            levels.append(_selected(parent))
        child, parent = parent, parent.parent
    return levels


class _ColumnChecker:
    """Resolves each column of a qualified tree to its source and applies the role's rules.

    Scopes arrive children first (``traverse_scope`` order), so by the time an outer query reads
    a derived table or CTE, the positions of that source's masked outputs are known.
    """

    def __init__(self, index: SchemaIndex, access: Access | None, result: Analysis) -> None:
        self.index = index
        self.access = access
        self.result = result
        self.masked_positions: dict[int, set[int]] = {}  # id(scope.expression) -> positions
        self.misused: list[str] = []
        self.to_mask: list[exp.Column] = []
        self._levels: dict[int, list[list[tuple[str, Source]]]] = {}
        self.used: dict[int, set[str]] = {}  # id(table node) -> normalized columns read

    # -- helpers -----------------------------------------------------------------------------------
    def levels(self, scope: Scope) -> list[list[tuple[str, Source]]]:
        key = id(scope)
        if key not in self._levels:
            self._levels[key] = _levels(scope)
        return self._levels[key]

    def _table_of(self, node: exp.Table | Ungrounded) -> Table | Ungrounded | None:
        if isinstance(node, Ungrounded):
            return node
        got: str | None = node.meta.get(_TABLE)
        if got is None:
            return None
        if got == _UNGROUNDED:
            source: Ungrounded = self.result.ungrounded[node.meta[_SOURCE]]
            return source
        return self.index.catalog.table(got)

    def _add(self, code: ViolationCode, message: str, suggestions: tuple[str, ...] = ()) -> None:
        self.result.violations.append(Violation(code, message, suggestions))

    def _denied(self, qualified_name: str) -> None:
        self._add(
            ViolationCode.COLUMN_DENIED, f"Column {qualified_name} is not available to this role."
        )

    def _masked_use(self, column: exp.Column, label: str, masked_here: set[int]) -> bool:
        """A masked value may only be projected as is; anything else would leak it."""
        position = _projection_position(column)
        if position is None:
            self.misused.append(label)
            return False
        masked_here.add(position)
        return True

    # -- checks ------------------------------------------------------------------------------------
    def check_scope(self, scope: Scope) -> None:
        masked_here: set[int] = set()
        for node in list(scope.walk()):
            if node is scope.expression:
                continue
            if isinstance(node, exp.Star):
                self._check_star(scope, node)
            elif isinstance(node, exp.TableColumn):
                self._check_whole_row(node)
            elif type(node) is exp.Column and not isinstance(node.this, exp.Star):
                if node.table:
                    self._check_qualified(scope, node, masked_here)
                elif not _is_alias_reference(node, scope):
                    self._check_unqualified(scope, node, masked_here)
        if isinstance(scope.expression, exp.SetOperation):
            for branch in scope.set_operation_scopes:
                masked_here |= self.masked_positions.get(id(branch.expression), set())
        else:
            names = _output_names(scope)
            self.misused.extend(_masked_alias_refs(scope, masked_here, names))
        self.masked_positions[id(scope.expression)] = masked_here

    def _check_star(self, scope: Scope, star: exp.Star) -> None:
        """In policy mode every ``*`` over a table must have been expanded to granted columns.

        What may remain: ``COUNT(*)``, and ``*`` / ``t.*`` in a select list over derived tables
        or CTEs, whose columns were themselves checked. Anything else fails closed.
        """
        if self.access is None or isinstance(star.parent, exp.Count):
            return
        node: exp.Expr = star
        if isinstance(star.parent, exp.Column):
            node = star.parent
            source = dict(_selected(scope)).get(node.table)
            derived_only = isinstance(source, Scope)
        else:
            sources = [s for _, s in _selected(scope)]
            derived_only = bool(sources) and all(isinstance(s, Scope) for s in sources)
        in_select_list = node.parent is scope.expression and node.arg_key == "expressions"
        if not (derived_only and in_select_list):
            self._add(
                ViolationCode.COLUMN_DENIED,
                "A * could not be expanded to the columns this role may read; list the columns.",
            )

    def _check_whole_row(self, node: exp.TableColumn) -> None:
        """``SELECT e FROM employees e``: PostgreSQL returns the whole row as one value."""
        if self.index.dialect != "postgres":
            self._add(
                ViolationCode.UNKNOWN_COLUMN,
                f"Column {node.name} does not exist: a table alias is not a column.",
            )
        elif self.access is not None:
            self._add(
                ViolationCode.COLUMN_DENIED,
                f"The whole-row reference {node.name} reads every column of its table; "
                "select the columns this role may read instead.",
            )

    def _check_qualified(self, scope: Scope, column: exp.Column, masked_here: set[int]) -> None:
        shown = _written(column)
        source: Source | None = None
        known: list[str] = []
        for level in self.levels(scope):
            for alias, src in level:
                known.append(alias)
                if alias == column.table and source is None:
                    source = src
            if source is not None:
                break
        # schema.table.column: only an unaliased reference to that very table answers to it
        if (column.args.get("db") or column.args.get("catalog")) and (
            column.args.get("catalog")
            or not (
                isinstance(source, exp.Table)
                and source.name == column.table
                and (
                    source.db == column.db
                    or (not source.db and column.db in _DEFAULT_SCHEMAS[self.index.dialect])
                )
            )
        ):
            self._add(
                ViolationCode.UNKNOWN_TABLE,
                f"Qualify column {_written_table(column)}.{shown} with its table alias.",
            )
            return
        if source is None:
            self._add(
                ViolationCode.UNKNOWN_TABLE,
                f"Table or alias {_written_table(column)} is not defined in this query.",
                close_names(column.table, known),
            )
            return
        if isinstance(source, Scope):
            self._check_derived(source, column, f"{column.table}.{shown}", masked_here)
            return
        table = self._table_of(source)
        if isinstance(table, Table):
            self._check_table_column(table, column, masked_here, source)
        elif isinstance(table, Ungrounded):
            self._check_ungrounded(table, column)
        elif isinstance(source, exp.Table) and source.meta.get(_CTE_REF) is None:
            self._add(ViolationCode.UNKNOWN_TABLE, f"Table {column.table} is not defined.")

    def _check_ungrounded(self, source: Ungrounded, column: exp.Column) -> None:
        if source.columns is None or column.name.lower() in source.columns:
            return
        if source.wrap:
            self._denied(f"{source.label}.{_written(column)}")
            return
        self._add(
            ViolationCode.UNKNOWN_COLUMN,
            f"Column {_written(column)} does not exist in {source.label}.",
            close_names(_written(column), sorted(source.columns)),
        )

    def _check_derived(
        self, source: Scope, column: exp.Column, label: str, masked_here: set[int]
    ) -> None:
        names = _output_names(source)
        if column.name not in names:
            hidden = self._hidden_behind_star(source, column.name, depth=0)
            if hidden is not None:
                self._denied(hidden)
                return
            self._add(
                ViolationCode.UNKNOWN_COLUMN,
                f"Column {_written(column)} is not produced by subquery {column.table}.",
                close_names(_written(column), names),
            )
        elif names.index(column.name) in self.masked_positions.get(id(source.expression), set()):
            self._masked_use(column, label, masked_here)

    def _check_table_column(
        self, table: Table, column: exp.Column, masked_here: set[int], node: Source
    ) -> None:
        index, shown = self.index, _written(column)
        true = index.columns[table.name].get(column.name)
        self.used.setdefault(id(node), set()).add(column.name)
        if true is None:
            self._add(
                ViolationCode.UNKNOWN_COLUMN,
                f"Column {shown} does not exist in table {table.name}.",
                close_names(shown, index.visible_columns(table.name)),
            )
            return
        if not index.is_visible(table.name, true):
            self._denied(f"{table.name}.{true}")
            return
        self.result.touch(table.name, true)
        if self.access is not None and (table.name, true) in self.access.masked:
            label = f"{table.name}.{true}"
            if self._masked_use(column, label, masked_here):
                self.to_mask.append(column)
                if label not in self.result.masked:
                    self.result.masked.append(label)

    def _hidden_behind_star(self, source: Scope, cname: str, depth: int) -> str | None:
        """``x.secret`` where ``x`` is ``SELECT *`` over a table whose ``secret`` is not granted.

        The role's ``*`` never produced the column, so it is denied rather than unknown.
        """
        if self.index.visible is None or depth > 32:
            return None
        for scope in source.set_operation_scopes or [source]:
            if not scope.expression.meta.get(_STAR):
                continue
            for _, inner in _selected(scope):
                if isinstance(inner, Scope):
                    found = self._hidden_behind_star(inner, cname, depth + 1)
                    if found is not None:
                        return found
                    continue
                table = self._table_of(inner)
                if isinstance(table, Table) and cname in self.index.columns[table.name]:
                    true = self.index.columns[table.name][cname]
                    if not self.index.is_visible(table.name, true):
                        return f"{table.name}.{true}"
        return None

    def _check_unqualified(self, scope: Scope, column: exp.Column, masked_here: set[int]) -> None:
        """Resolve a bare name level by level, innermost first, as the database does.

        At each level: a column the role may not read denies the statement (the database would
        bind to it, or report ambiguity); exactly one known owner binds it; a source whose
        columns are unknown (a system relation granted whole, an unknown table function) may
        own it, so outer levels must not hold a hidden column of that name either.
        """
        index, cname, shown = self.index, column.name, _written(column)
        levels = self.levels(scope)
        maybe: list[str] = []
        for depth, level in enumerate(levels):
            known: list[tuple[str, Table | Scope | Ungrounded, Source]] = []
            hidden: list[str] = []
            for alias, src in level:
                if isinstance(src, Scope):
                    if cname in _output_names(src):
                        known.append((alias, src, src))
                    else:
                        behind = self._hidden_behind_star(src, cname, 0)
                        if behind is not None:
                            hidden.append(behind)
                    continue
                table = self._table_of(src)
                if isinstance(table, Table):
                    true = index.columns[table.name].get(cname)
                    if true is None:
                        continue
                    if index.is_visible(table.name, true):
                        known.append((alias, table, src))
                    else:
                        hidden.append(f"{table.name}.{true}")
                elif isinstance(table, Ungrounded):
                    if table.columns is None:
                        maybe.append(table.label)
                    elif cname.lower() in table.columns:
                        known.append((alias, table, src))
            if hidden:
                self._denied(hidden[0])
                return
            if maybe and index.dialect == "oracle":
                # Oracle calls a zero-argument function for a bare name that is no column.
                self._add(
                    ViolationCode.UNKNOWN_COLUMN,
                    f"Column {shown} must be qualified with its table alias here: "
                    f"{', '.join(maybe)} has columns that are not known in advance.",
                )
                return
            if len(known) > 1:
                self._add(
                    ViolationCode.AMBIGUOUS_COLUMN,
                    f"Column {shown} is ambiguous: it exists in "
                    f"{', '.join(a for a, _, _ in known)}. Qualify it with a table alias.",
                    tuple(f"{a}.{shown}" for a, _, _ in known),
                )
                return
            if known:
                _, target, node = known[0]
                if isinstance(target, Table):
                    self._check_table_column(target, column, masked_here, node)
                elif isinstance(target, Scope):
                    self._check_derived(target, column, shown, masked_here)
                elif isinstance(target, Ungrounded):
                    self._check_ungrounded(target, column)
                return
            if maybe:
                # Bound to a source of unknown columns here, unless it lacks the column: then the
                # database looks further out, where nothing hidden may answer to the name.
                for outer in levels[depth + 1 :]:
                    for _, src in outer:
                        table = self._table_of(src) if not isinstance(src, Scope) else None
                        if isinstance(table, Table):
                            true = index.columns[table.name].get(cname)
                            if true is not None and not index.is_visible(table.name, true):
                                self._denied(f"{table.name}.{true}")
                                return
                return
        pool: list[str] = []
        granted_system: list[str] = []
        for level in levels:
            for _, src in level:
                if isinstance(src, Scope):
                    pool += _output_names(src)
                    continue
                table = self._table_of(src)
                if isinstance(table, Table):
                    pool += index.visible_columns(table.name)
                elif isinstance(table, Ungrounded) and table.columns is not None:
                    pool += sorted(table.columns)
                    if table.wrap:
                        granted_system.append(table.label)
        if granted_system:
            self._add(
                ViolationCode.COLUMN_DENIED,
                f"Column {shown} is not available to this role: it is not among the granted "
                f"columns of {', '.join(granted_system)}.",
                close_names(shown, pool),
            )
            return
        self._add(
            ViolationCode.UNKNOWN_COLUMN,
            f"Column {shown} does not exist in the tables of this query.",
            close_names(shown, pool),
        )

    def report_misuse(self) -> None:
        for name in dict.fromkeys(self.misused):
            self._add(
                ViolationCode.MASKED_COLUMN_MISUSE,
                f"Column {name} is masked for this role: it may only be selected as a plain "
                "column, not used in conditions, joins, grouping, ordering, aggregates or "
                "expressions.",
            )


def _written(column: exp.Column) -> str:
    """The column's name as the user spelled it."""
    ident = column.this
    return (
        str(ident.meta.get(_ORIG, column.name))
        if isinstance(ident, exp.Identifier)
        else column.name
    )


def _written_table(column: exp.Column) -> str:
    parts = [column.args.get(k) for k in ("catalog", "db", "table")]
    return ".".join(
        str(p.meta.get(_ORIG, p.name)) if isinstance(p, exp.Identifier) else str(p.name)
        for p in parts
        if p is not None
    )


def _projection_position(column: exp.Column) -> int | None:
    """The select-list position of ``column`` when projected as is (``col`` or ``col AS x``)."""
    node: exp.Expr = column.parent if isinstance(column.parent, exp.Alias) else column
    select = node.parent
    if isinstance(select, exp.Select) and node.arg_key == "expressions":
        for i, projection in enumerate(select.expressions):
            if projection is node:
                return i
    return None


def _masked_alias_refs(scope: Scope, masked: set[int], names: list[str]) -> list[str]:
    """ORDER BY references to a masked output alias (they sort by the masked value: refuse)."""
    order = scope.expression.args.get("order")
    if order is None or not masked:
        return []
    masked_names = {names[i] for i in masked if i < len(names)}
    return [
        c.name for c in order.find_all(exp.Column)
        if not c.table and c.name in masked_names
    ]  # fmt: skip


def _restore_labels(work: exp.Expr, index: SchemaIndex) -> None:
    """Give the outermost projections the labels the user wrote (or the catalog's spelling).

    qualify() names unaliased expressions ``_col_0``, ``_col_1`` ...; at the outermost level the
    alias is dropped again (unless something refers to it) so the database labels the column as
    it would have for the user's own statement.
    """
    root: exp.Expr = work
    while isinstance(root, exp.SetOperation):
        root = root.left
    if not isinstance(root, exp.Select):
        return
    for projection in list(root.expressions):
        alias = projection.args.get("alias") if isinstance(projection, exp.Alias) else None
        if (
            isinstance(alias, exp.Identifier)
            and _ORIG not in alias.meta
            and re.fullmatch(r"_col_\d+", alias.name, re.IGNORECASE)
            and sum(1 for i in work.find_all(exp.Identifier) if i.name == alias.name) == 1
        ):
            projection.replace(projection.this)
    if index.dialect not in _CASE_INSENSITIVE:
        return  # case-sensitive dialects: the normalized label is the one the database reports
    for projection in root.expressions:
        if not isinstance(projection, exp.Alias):
            continue
        alias = projection.args.get("alias")
        if not isinstance(alias, exp.Identifier):
            continue
        if _ORIG in alias.meta:
            alias.set("this", alias.meta[_ORIG])
            continue
        inner = projection.this
        if isinstance(inner, exp.Column) and isinstance(inner.this, exp.Identifier):
            if _ORIG in inner.this.meta:
                alias.set("this", inner.this.meta[_ORIG])
            else:
                for cols in index.columns.values():
                    if inner.name in cols:
                        alias.set("this", cols[inner.name])
                        break
