"""Step 3: grounding and policy — resolve every table and column, then enforce the role.

The analysis runs on a *copy* of the tree whose identifiers are normalized under the dialect's
case rules and which sqlglot's ``qualify`` has rewritten so that every column names its source
and every ``*`` is expanded. Each column is then resolved through aliases, CTEs, derived tables,
correlated subqueries, USING joins and set operations to the catalog table it reads.

In policy mode the qualified copy (masks applied) *is* the statement that runs: every column in
it is explicitly bound to the source that was checked, so what was authorized is what executes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns, quote_identifiers
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope
from sqlglot.schema import MappingSchema

from sqlagent.catalog import Catalog, Table
from sqlagent.dialects import RESERVED_WORDS, analysis_dialect, catalog_key, is_system_relation
from sqlagent.safety._policy import Access
from sqlagent.types import Violation, ViolationCode

__all__ = ["Analysis", "SchemaIndex", "analyze", "sqlite_string_fallback"]

_CASE_INSENSITIVE = frozenset({"sqlite", "mysql"})
_DEFAULT_SCHEMAS = {"sqlite": {"main"}, "postgres": {"public"}, "mysql": set(), "oracle": set()}


@dataclass(frozen=True)
class SchemaIndex:
    """A catalog prepared for one dialect (and, in policy mode, one role): built once, reused."""

    dialect: str
    catalog: Catalog
    tables: Mapping[str, Table]  # normalized key -> table
    columns: Mapping[str, Mapping[str, str]]  # table name -> normalized column key -> column name
    visible: Mapping[str, frozenset[str]] | None  # None: single-user mode, all visible
    qualify_schema: MappingSchema

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        dialect: str,
        visible: Mapping[str, frozenset[str]] | None = None,
        *,
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
        return cls(dialect, catalog, tables, columns, visible, schema)

    def is_visible(self, table: str, column: str | None = None) -> bool:
        if self.visible is None:
            return True
        if table not in self.visible:
            return False
        return column is None or column in self.visible[table]

    def visible_columns(self, table: str) -> list[str]:
        return [c for c in self.columns[table].values() if self.is_visible(table, c)]


@dataclass
class Analysis:
    violations: list[Violation] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    output: exp.Expr | None = None  # policy mode: the rewritten statement to run

    def touch(self, table: str, column: str | None = None) -> None:
        if table not in self.tables:
            self.tables.append(table)
        if column is not None and f"{table}.{column}" not in self.columns:
            self.columns.append(f"{table}.{column}")


# A source that is not in the catalog but may be read: DUAL, or a system relation the policy
# names explicitly (or any system relation in single-user mode). Its columns are not grounded.
_UNGROUNDED = "\x00ungrounded"  # never a table name


def _suggest(word: str, candidates: Iterable[str], n: int = 3) -> tuple[str, ...]:
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    return tuple(lowered[h] for h in hits)


def _cte_names(scope: Scope) -> set[str]:
    names: set[str] = set()
    s: Scope | None = scope
    while s is not None:
        names.update(s.cte_sources)
        s = s.parent
    return names


def sqlite_string_fallback(tree: exp.Expr, catalog: Catalog) -> None:
    """SQLite reads a double-quoted word that names no column as a string literal; do the same.

    ``WHERE country = "France"`` is a string comparison in SQLite when no column is called France.
    The tree is changed in place so the statement that runs says ``'France'`` explicitly.
    """
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
    for column in list(tree.find_all(exp.Column)):
        ident = column.this
        if (
            isinstance(ident, exp.Identifier)
            and ident.quoted
            and not column.table
            and ident.name.lower() not in known
            and not isinstance(column.parent, exp.Dot)
        ):
            column.replace(exp.Literal.string(ident.name))


def _output_names(scope: Scope) -> list[str]:
    """The column names a scope produces (a set operation's come from its first branch)."""
    expr: exp.Expr = scope.expression
    while isinstance(expr, exp.SetOperation):
        expr = expr.left
    if isinstance(expr, exp.Lateral):
        alias = expr.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            return [c.name for c in alias.columns]
        expr = expr.this
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
_TABLE = "sqlagent_table"  # Table.meta: name of the catalog table (or _UNGROUNDED) it reads
_DB = "sqlagent_db"  # Table.meta: the db/catalog qualifiers removed for qualify()
_STAR = "sqlagent_star"  # Select.meta: the select list had a * before expansion


def analyze(
    tree: exp.Expr,
    index: SchemaIndex,
    access: Access | None,
    *,
    mask_value: str,
    diagnostic: SchemaIndex | None = None,
) -> Analysis:
    """Ground ``tree`` in ``index`` and, with ``access``, enforce the role's grants and masks.

    In policy mode ``index`` qualifies against the role's visible columns only (so ``*`` expands
    to granted columns); if sqlglot cannot qualify a statement against that view, the analysis
    is repeated with ``diagnostic`` (the whole catalog, same grants) purely to name the exact
    violation. Facts about nodes live in ``node.meta``, which survives qualify()'s rewrites.
    """
    dialect = index.dialect
    ad = analysis_dialect(dialect)
    result = Analysis()
    work = tree.copy()
    for ident in work.find_all(exp.Identifier):
        ident.meta[_ORIG] = ident.this
    pairs = zip(tree.find_all(exp.Table), work.find_all(exp.Table), strict=True)
    counterpart = {id(copied): original for original, copied in pairs}
    normalize_identifiers(work, dialect=ad)
    _resolve_tables(work, index, access, result, counterpart)
    if result.violations:
        return result

    # -- columns --------------------------------------------------------------------------------
    for select in work.find_all(exp.Select):
        if any(p.is_star for p in select.selects):
            select.meta[_STAR] = True
    try:
        qualify_tables(work, dialect=ad)
        qualify_columns(
            work,
            index.qualify_schema,
            expand_alias_refs=True,
            expand_stars=True,
            # a reference to a column its source lacks stays in place for the checker to classify
            allow_partial_qualification=True,
            dialect=ad,
        )
    except SqlglotError as exc:
        if access is not None and diagnostic is not None:
            diagnosis = analyze(tree, diagnostic, access, mask_value=mask_value)
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

    checker = _ColumnChecker(index, access, result)
    for scope in traverse_scope(work):
        checker.check_scope(scope)
    checker.report_misuse()
    if access is not None:
        _refuse_implicit_joins(work, result)
    if result.violations or access is None:
        return result

    # -- policy mode: the qualified copy, masks applied, becomes the statement to run ----------
    for column in checker.to_mask:
        column.replace(exp.Literal.string(mask_value))
    for node in work.find_all(exp.Table):
        if _DB in node.meta:
            db_node, catalog_node = node.meta[_DB]
            node.set("db", db_node)
            node.set("catalog", catalog_node)
        got = node.meta.get(_TABLE)
        # MySQL compares table names case-sensitively on most servers: use the real spelling.
        if (
            dialect in _CASE_INSENSITIVE
            and got is not None
            and got != _UNGROUNDED
            and isinstance(node.this, exp.Identifier)
        ):
            node.this.set("this", got)
            node.this.set("quoted", False)
    _restore_labels(work, index)
    result.output = _quote_keywords(quote_identifiers(work, dialect=ad, identify=False))
    return result


def _quote_keywords(tree: exp.Expr) -> exp.Expr:
    """Quote identifiers that are reserved words (a table called ``order``), which the generator
    would otherwise print bare. Quoting a normalized name never changes what it refers to."""
    for ident in tree.find_all(exp.Identifier):
        if not ident.quoted and ident.this.upper() in RESERVED_WORDS:
            ident.set("quoted", True)
    return tree


def _resolve_tables(
    work: exp.Expr,
    index: SchemaIndex,
    access: Access | None,
    result: Analysis,
    counterpart: Mapping[int, exp.Table],
) -> None:
    """Resolve each table reference: to the catalog, a permitted ungrounded source, or a refusal."""
    dialect = index.dialect
    ad = analysis_dialect(dialect)
    for scope in traverse_scope(work):
        ctes = _cte_names(scope)
        for table in scope.tables:
            if _TABLE in table.meta or (not table.args.get("db") and table.name in ctes):
                continue
            if not isinstance(table.this, exp.Identifier):
                continue  # table functions are governed by the function allow-list
            name, db = table.name, table.db or None
            cat = index.tables.get(name)
            if cat is not None and (
                db is None
                or db in _DEFAULT_SCHEMAS[dialect]
                or db == catalog_key(cat.schema or "", dialect)
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
                table.meta[_DB] = (table.args.get("db"), table.args.get("catalog"))
                table.set("db", None)
                table.set("catalog", None)
                result.touch(cat.name)
                continue
            if dialect in ("oracle", "mysql") and db is None and name.lower() == "dual":
                table.meta[_TABLE] = _UNGROUNDED
                continue
            if is_system_relation(name, db, dialect):
                full = f"{db}.{name}".lower() if db else name.lower()
                if access is None or full in access.system or name.lower() in access.system:
                    table.meta[_TABLE] = _UNGROUNDED
                    result.touch(f"{db}.{name}" if db else name)
                else:
                    result.violations.append(Violation(
                        ViolationCode.TABLE_DENIED,
                        f"System catalog {table.sql(dialect=ad)} is not available to this role.",
                    ))  # fmt: skip
                continue
            result.violations.append(_unknown_table(table, index))


def _unknown_table(table: exp.Table, index: SchemaIndex) -> Violation:
    dialect, name = index.dialect, table.name
    known = [t.name for t in index.catalog if index.is_visible(t.name)]
    written = table.this.meta.get(_ORIG, name) if isinstance(table.this, exp.Identifier) else name
    suggestions = _suggest(written, known)
    message = f"Table {table.sql(dialect=analysis_dialect(dialect))} does not exist."
    twins = [s for s in suggestions if s.lower() == name.lower()]
    if twins and dialect in ("postgres", "oracle"):
        exact = catalog_key(twins[0], dialect)  # the spelling the database itself uses
        quoted = exp.to_identifier(exact, quoted=True).sql(dialect=dialect)
        message += f" Names are case-sensitive here; write it as {quoted}."
    return Violation(ViolationCode.UNKNOWN_TABLE, message, suggestions)


def _refuse_implicit_joins(work: exp.Expr, result: Analysis) -> None:
    """NATURAL joins left unexpanded compare columns the role may not see: refuse them."""
    for join in work.find_all(exp.Join):
        if str(join.args.get("method") or "").upper() == "NATURAL":
            result.violations.append(Violation(
                ViolationCode.COLUMN_DENIED,
                "NATURAL JOIN compares every column the tables share, including columns not "
                "available to this role; join with explicit ON conditions instead.",
            ))  # fmt: skip
            return


def _visible_sources(scope: Scope) -> list[tuple[str, exp.Table | Scope]]:
    """The sources a column in ``scope`` may name: its own, then enclosing ones where SQL lets a
    scope see them (correlated subqueries, LATERAL, set-operation branches) — never from a CTE
    or plain derived-table body."""
    out: list[tuple[str, exp.Table | Scope]] = []
    s: Scope | None = scope
    while s is not None:
        out.extend(s.sources.items())
        sees_parent = s.scope_type in (ScopeType.SUBQUERY, ScopeType.UDTF, ScopeType.SET_OPERATION)
        if not (sees_parent or s.can_be_correlated):
            break
        s = s.parent
    return out


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

    # -- helpers -----------------------------------------------------------------------------------
    def _table_of(self, node: exp.Table) -> Table | str | None:
        got: str | None = node.meta.get(_TABLE)
        if got is None:
            return self.index.tables.get(node.name)
        return got if got == _UNGROUNDED else self.index.catalog.table(got)

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
            source = dict(_visible_sources(scope)).get(node.table)
            derived_only = isinstance(source, Scope)
        else:
            sources = list(scope.sources.values())
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
        sources = _visible_sources(scope)
        source = next((src for alias, src in sources if alias == column.table), None)
        if source is None:
            self._add(
                ViolationCode.UNKNOWN_TABLE,
                f"Table or alias {column.table} is not defined in this query.",
                _suggest(column.table, [a for a, _ in sources]),
            )
            return
        if isinstance(source, Scope):
            self._check_derived(source, column, f"{column.table}.{shown}", masked_here)
            return
        table = self._table_of(source)
        if isinstance(table, Table):
            self._check_table_column(table, column, masked_here)
        # else: DUAL or a granted system relation, which is not grounded

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
                _suggest(_written(column), names),
            )
        elif names.index(column.name) in self.masked_positions.get(id(source.expression), set()):
            self._masked_use(column, label, masked_here)

    def _check_table_column(self, table: Table, column: exp.Column, masked_here: set[int]) -> None:
        index, shown = self.index, _written(column)
        true = index.columns[table.name].get(column.name)
        if true is None:
            self._add(
                ViolationCode.UNKNOWN_COLUMN,
                f"Column {shown} does not exist in table {table.name}.",
                _suggest(shown, index.visible_columns(table.name)),
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
            for inner in scope.sources.values():
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
        # qualify() leaves a column unqualified when no visible source has it, or several do.
        index, cname, shown = self.index, column.name, _written(column)
        sources = _visible_sources(scope)
        found: list[tuple[str, Table | Scope | None]] = []
        for alias, src in sources:
            if isinstance(src, Scope):
                if cname in _output_names(src):
                    found.append((alias, src))
                continue
            table = self._table_of(src)
            if isinstance(table, Table):
                if cname in index.columns[table.name]:
                    found.append((alias, table))
            elif table is not None:
                found.append((alias, None))  # ungrounded source: it may have the column
        visible = [
            (a, t) for a, t in found
            if not isinstance(t, Table) or index.is_visible(t.name, index.columns[t.name][cname])
        ]  # fmt: skip
        if len(visible) == 1:
            _, target = visible[0]
            if isinstance(target, Table):
                self._check_table_column(target, column, masked_here)
            elif isinstance(target, Scope):
                self._check_derived(target, column, shown, masked_here)
            return
        if len(visible) > 1:
            self._add(
                ViolationCode.AMBIGUOUS_COLUMN,
                f"Column {shown} is ambiguous: it exists in "
                f"{', '.join(a for a, _ in visible)}. Qualify it with a table alias.",
                tuple(f"{a}.{shown}" for a, _ in visible),
            )
            return
        if found:  # only in columns the role may not read
            table = next(t for _, t in found if isinstance(t, Table))
            self._denied(f"{table.name}.{index.columns[table.name][cname]}")
            return
        for _, src in sources:
            hidden = self._hidden_behind_star(src, cname, 0) if isinstance(src, Scope) else None
            if hidden is not None:
                self._denied(hidden)
                return
        pool: list[str] = []
        for _, src in sources:
            if isinstance(src, Scope):
                pool += _output_names(src)
            else:
                table = self._table_of(src)
                if isinstance(table, Table):
                    pool += index.visible_columns(table.name)
        self._add(
            ViolationCode.UNKNOWN_COLUMN,
            f"Column {shown} does not exist in the tables of this query.",
            _suggest(shown, pool),
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
