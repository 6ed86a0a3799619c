"""Step 2: read-only rules over the whole syntax tree.

Each rule is a plain function ``rule(nodes, ctx) -> Iterable[Violation]`` over the statement
walked once (:class:`Nodes`: the tree and its nodes grouped by kind); :data:`RULES` lists them in
order. The node check is an allow-list: every node anywhere in the tree must be of a
class known to be part of a read-only query, so a construct sqlglot adds tomorrow is refused until
someone looks at it. Writes, DDL, commands and session statements get a specific message.

Besides writes, the rules refuse what would let a read-only statement leak or hurt anyway: calls
to functions off the allow-list (:mod:`sqlagent.safety._functions`), casts to types that look up
database objects by name (PostgreSQL's ``'secrets'::regclass``), names that reach outside the
statement (a column qualifier that names none of its sources, such as Oracle's ``seq.NEXTVAL``
or ``UTL_INADDR.GET_HOST_NAME``; Oracle's ``table@dblink``; a bare identifier over ``DUAL``, which
Oracle calls as a function), and strings built from a huge constant width (``repeat('x', 1e9)``).

Rule messages go back to the model for self-correction, so they name what the user wrote:
functions and operators are rendered in the statement's own dialect (``unnest``, ``@>``), never
as sqlglot's internal class names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.expressions.datatypes import DType

from sqlagent.dialects import analysis_dialect
from sqlagent.safety._config import SafetyConfig
from sqlagent.safety._functions import (
    ALLOWED_FUNCTIONS,
    function_name,
    render_written,
    written_operator,
)
from sqlagent.safety._names import close_names
from sqlagent.types import Violation, ViolationCode

__all__ = ["RULES", "Nodes", "RuleContext", "check_read_only", "undo_arrow_lambdas"]


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the rules need to know besides the tree: its dialect and the configured limits."""

    dialect: str
    extra_functions: frozenset[str] = frozenset()
    max_constructed_length: int = field(
        default_factory=lambda: SafetyConfig().max_constructed_length
    )

    @classmethod
    def for_config(cls, dialect: str, config: SafetyConfig) -> RuleContext:
        return cls(
            dialect=dialect,
            extra_functions=config.functions_for(dialect),
            max_constructed_length=config.max_constructed_length,
        )


Rule = Callable[["Nodes", RuleContext], Iterable[Violation]]

# Nodes that may appear in a read-only query (functions are checked separately).
_QUERY_NODES: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
    exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered,
    exp.Limit, exp.Offset, exp.Fetch, exp.LimitOptions, exp.Distinct, exp.Window,
    exp.WindowSpec, exp.Values, exp.Lateral, exp.Cube, exp.Rollup, exp.GroupingSets,
    exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Dot,
    exp.Literal, exp.Boolean, exp.Null, exp.Var, exp.Placeholder, exp.Pseudocolumn,
    exp.National, exp.HexString, exp.BitString, exp.ByteString, exp.RawString,
    exp.UnicodeString, exp.Introducer,
    exp.DataType, exp.DataTypeParam, exp.Interval, exp.IntervalSpan, exp.AtTimeZone,
    exp.Paren, exp.Neg, exp.Not, exp.Tuple, exp.Bracket, exp.Slice, exp.Kwarg,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Is, exp.Like, exp.ILike, exp.Glob, exp.SimilarTo, exp.Escape, exp.Between, exp.In,
    exp.Any, exp.All,
    exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot,
    exp.BitwiseLeftShift, exp.BitwiseRightShift,
    exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
    exp.JSONPath, exp.JSONPathKey, exp.JSONPathRoot, exp.JSONPathSubscript,
    exp.JSONPathWildcard, exp.JSONPathSlice, exp.JSONPathUnion, exp.JSONPathSelector,
    exp.JSONKeyValue,
    # JSON_VALUE (an expression, not a function class), its ON ERROR/ON EMPTY clauses, and the
    # COLUMNS clause of JSON_TABLE: all read the JSON value they are given, nothing else.
    exp.JSONValue, exp.OnCondition, exp.JSONSchema, exp.JSONColumnDef,
    exp.Connect, exp.Prior,
    # PIVOT/UNPIVOT regroup the rows of the query's own source.
    exp.Pivot, exp.PivotAlias,
    # TABLESAMPLE reads a sample of a table's rows; only the built-in methods (checked below).
    exp.TableSample,
)  # fmt: skip

# Nodes that change data, schema, files or session state: named in the message.
_WRITE_NODES: dict[type[exp.Expr], str] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.TruncateTable: "TRUNCATE",
    exp.Copy: "COPY",
    exp.LoadData: "LOAD DATA",
    exp.Export: "EXPORT",
    exp.Into: "SELECT ... INTO",
    exp.Lock: "FOR UPDATE/FOR SHARE (row locks)",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
    exp.Pragma: "PRAGMA",
    exp.Command: "a command sqlglot cannot analyse",
    exp.Set: "SET",
    exp.SetItem: "SET",
    exp.Transaction: "transaction control",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.Use: "USE",
    exp.Describe: "DESCRIBE/EXPLAIN",
    exp.Show: "SHOW",
    exp.Execute: "EXECUTE",
    exp.ExecuteSql: "EXECUTE",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
    exp.Analyze: "ANALYZE",
    exp.Kill: "KILL",
    exp.Comment: "COMMENT ON",
    exp.Declare: "DECLARE",
    exp.Returning: "RETURNING",
    exp.PropertyEQ: "variable assignment (:=)",
    exp.Hint: "optimizer hints",
    exp.Parameter: "session or user variables",
    exp.SessionParameter: "session variables",
}


_WRITE_TYPES: tuple[type[exp.Expr], ...] = tuple(_WRITE_NODES)
_READ_TYPES: tuple[type[exp.Expr], ...] = (exp.Func, *_QUERY_NODES)
_SAMPLE_METHODS = frozenset({"", "BERNOULLI", "SYSTEM", "BLOCK"})


# What a node class is to the rules, decided once per class (isinstance over long tuples of
# classes is the expensive part of a walk).
_READ, _WRITE, _FUNC, _TYPE, _COLUMN, _SELECT, _SAMPLE, _LAMBDA, _NAMED = (1 << i for i in range(9))


@functools.cache
def _kind(cls: type) -> int:
    kind = 0
    if issubclass(cls, _WRITE_TYPES):
        kind |= _WRITE
    elif issubclass(cls, _READ_TYPES):
        kind |= _READ
    if issubclass(cls, exp.Func):
        kind |= _FUNC
    if issubclass(cls, exp.DataType):
        kind |= _TYPE
    if issubclass(cls, exp.Column):
        kind |= _COLUMN
    if issubclass(cls, exp.Select):
        kind |= _SELECT
    if issubclass(cls, exp.TableSample):
        kind |= _SAMPLE
    if issubclass(cls, exp.Lambda):
        kind |= _LAMBDA
    if issubclass(cls, exp.TableAlias | exp.Table):
        kind |= _NAMED
    return kind


@dataclass(slots=True)
class Nodes:
    """The statement, walked once: the nodes each rule looks at, in tree order."""

    tree: exp.Expr
    odd: list[exp.Expr] = field(default_factory=list)  # not plain read-only query syntax
    funcs: list[exp.Func] = field(default_factory=list)
    types: list[exp.DataType] = field(default_factory=list)
    columns: list[exp.Column] = field(default_factory=list)
    selects: list[exp.Select] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # of tables (not functions) and aliases
    lambdas: int = 0

    @classmethod
    def of(cls, tree: exp.Expr) -> Nodes:
        nodes = cls(tree)
        for node in tree.walk():
            kind = _kind(type(node))  # type: ignore[arg-type]  # Expr classes hash fine
            if kind & _SAMPLE or not kind & _READ:
                nodes.odd.append(node)
            if kind & _FUNC:
                nodes.funcs.append(node)  # type: ignore[arg-type]
            elif kind & _COLUMN:
                nodes.columns.append(node)  # type: ignore[arg-type]
            elif kind & _TYPE:
                nodes.types.append(node)  # type: ignore[arg-type]
            elif kind & _SELECT:
                nodes.selects.append(node)  # type: ignore[arg-type]
            elif kind & _NAMED and (
                isinstance(node, exp.TableAlias) or isinstance(node.this, exp.Identifier)
            ):
                nodes.names.append(node.name)
            if kind & _LAMBDA:
                nodes.lambdas += 1
        return nodes


def _label(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        keyword = str(node.this or "").upper() or "a command"
        return f"{keyword} (a command sqlglot cannot analyse)"
    for cls, label in _WRITE_NODES.items():
        if isinstance(node, cls):
            return label
    return type(node).__name__


def _shown(node: exp.Expr, dialect: str, limit: int = 80) -> str:
    """``node`` as the user would write it in ``dialect``, shortened for a message."""
    text = render_written(node, dialect) or type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- normalization -------------------------------------------------------------------------------

_ARROW_DIALECTS = frozenset({"postgres", "mysql", "sqlite"})
_MAX_LAMBDA_PASSES = 64


def undo_arrow_lambdas(tree: exp.Expr, dialect: str) -> None:
    """Read ``f(col -> 'key')`` as the JSON operator it is, in place.

    sqlglot parses ``x -> ...`` inside *any* function's arguments as a lambda (``x`` becomes a
    parameter, not a column), although PostgreSQL, MySQL and SQLite have no lambdas and mean
    the JSON operator. Left alone, ``jsonb_array_length(attributes -> 'sizes')`` would be refused
    — and, worse, the column would escape grounding. Each such lambda is replaced by the tree
    its own rendering parses to where lambdas cannot occur (a select-list expression), which is
    exactly what runs, since the SQL that runs is regenerated from the tree. Lambdas with several
    parameters, or in other dialects, stay and are refused as unsupported.
    """
    if dialect not in _ARROW_DIALECTS:
        return
    read = analysis_dialect(dialect)
    for _ in range(_MAX_LAMBDA_PASSES):
        candidates = [
            node
            for node in tree.find_all(exp.Lambda)
            if len(node.expressions) == 1
            and isinstance(node.expressions[0], exp.Identifier)
            and not any(isinstance(n, exp.Lambda) for n in node.this.find_all(exp.Lambda))
        ]
        if not candidates:
            return
        for node in candidates:
            text = node.sql(dialect=dialect, comments=False)
            try:
                parsed = read.parse(f"SELECT {text}")
            except Exception:
                return  # left as a lambda: refused as an unsupported construct
            select = parsed[0] if len(parsed) == 1 else None
            # Exactly one bare expression: nothing but the select list may come out of it.
            if (
                not isinstance(select, exp.Select)
                or [k for k, v in select.args.items() if v] != ["expressions"]
                or len(select.expressions) != 1
                or isinstance(select.expressions[0], exp.Alias)
            ):
                return
            node.replace(select.expressions[0])


# -- rules ---------------------------------------------------------------------------------------


def root_is_query(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """The statement must be a query: SELECT, a set operation, or a read-only CTE query."""
    tree = nodes.tree
    root = tree.unnest() if isinstance(tree, exp.Subquery | exp.Paren) else tree
    if not isinstance(root, exp.Select | exp.SetOperation):
        yield Violation(
            ViolationCode.NOT_READ_ONLY,
            f"Only SELECT queries are allowed; this statement is {_label(root)}.",
        )


def selects_are_complete(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Every SELECT names what it returns, and ``SELECT *`` reads from something."""
    for select in nodes.selects:
        if not select.expressions:
            yield Violation(ViolationCode.PARSE_ERROR, "A SELECT must list what it returns.")
            return
        if not select.args.get("from_") and any(p.is_star for p in select.expressions):
            yield Violation(ViolationCode.PARSE_ERROR, "SELECT * needs a FROM clause.")
            return


def nodes_are_read_only(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Every node anywhere in the tree must belong to a read-only query."""
    seen: set[str] = set()
    tree = nodes.tree
    for node in nodes.odd:
        if node is tree and not isinstance(tree, exp.Query):
            continue  # the root statement kind is reported by root_is_query
        is_write = isinstance(node, _WRITE_TYPES)
        if isinstance(node, exp.TableSample) and not _plain_sample(node):
            label = f"TABLESAMPLE {_shown(node.args['method'], ctx.dialect)}"
        elif not is_write and isinstance(node, _READ_TYPES):
            continue  # query syntax; functions are judged by functions_are_allowed
        else:
            label = _label(node)
        if label in seen:
            continue
        seen.add(label)
        if is_write:
            message = f"{label} is not allowed: only read-only SELECT queries may run."
        else:
            message = (
                f"Unsupported construct {_construct(node, label, ctx.dialect)}: only plain "
                "read-only SELECT syntax is allowed."
            )
        yield Violation(ViolationCode.NOT_READ_ONLY, message)


def _construct(node: exp.Expr, label: str, dialect: str) -> str:
    """An unsupported node as the user wrote it: ``operator <-> (in a <-> b)``, never only
    sqlglot's class name."""
    if isinstance(node, exp.TableSample):
        return label
    shown = _shown(node, dialect)
    if isinstance(node, exp.Lambda):
        return f"{shown} (read as a lambda)"
    operator = written_operator(node, dialect) if isinstance(node, exp.Binary) else None
    return f"operator {operator} (in {shown})" if operator else shown


def _plain_sample(node: exp.TableSample) -> bool:
    # Only the built-in sampling methods: an extension's method is code we have not vetted.
    method = node.args.get("method")
    return method is None or method.name.upper() in _SAMPLE_METHODS


def functions_are_allowed(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Functions and typed operators by allow-list: typed, side-effect-free ones, plus the
    configured extras (matched by the name as written in the dialect)."""
    seen: set[str] = set()
    for node in nodes.funcs:
        if type(node) in ALLOWED_FUNCTIONS and not _is_dotted(node):
            continue
        name = function_name(node, ctx.dialect)
        if name in ctx.extra_functions:
            continue
        operator = None if _is_dotted(node) else written_operator(node, ctx.dialect)
        key = operator or name
        if key in seen:
            continue
        seen.add(key)
        if operator is not None:
            message = (
                f"Operator {operator} (in {_shown(node, ctx.dialect)}) is not allowed; use "
                "standard SQL functions and operators."
            )
        else:
            message = f"Function {name}() is not allowed; use standard SQL functions and operators."
        yield Violation(ViolationCode.FORBIDDEN_FUNCTION, message)


def _is_dotted(node: exp.Func) -> bool:
    # A typed call under a Dot is a package call (pkg.fn()) that sqlglot happened to type; the
    # package could be anything, so it only passes through the configured allow-list.
    parent = node.parent
    return isinstance(parent, exp.Dot) and parent.expression is node


# Data types a CAST (or ::, CONVERT, typed literal, JSON_VALUE ... RETURNING, JSON_TABLE column)
# may name: values only. Left out on purpose: PostgreSQL's object-identifier types (regclass,
# regrole, regproc, regnamespace, regtype, oid ...), whose input function looks the name up in the
# catalog, so ``'secrets'::regclass`` confirms that a hidden table exists; user-defined and
# unknown types (a cast to a domain or enum type names a catalog object too); and exotic types
# no analytics query needs.
_T = DType
_CAST_TYPES: frozenset[DType] = frozenset({
    _T.BOOLEAN, _T.BIT,
    _T.TINYINT, _T.SMALLINT, _T.MEDIUMINT, _T.INT, _T.BIGINT, _T.UTINYINT, _T.USMALLINT,
    _T.UMEDIUMINT, _T.UINT, _T.UBIGINT, _T.DECIMAL, _T.UDECIMAL, _T.FLOAT, _T.DOUBLE,
    _T.UDOUBLE, _T.MONEY,
    _T.CHAR, _T.NCHAR, _T.VARCHAR, _T.NVARCHAR, _T.BPCHAR, _T.TEXT, _T.TINYTEXT,
    _T.MEDIUMTEXT, _T.LONGTEXT, _T.NAME,
    _T.BINARY, _T.VARBINARY, _T.BLOB, _T.TINYBLOB, _T.MEDIUMBLOB, _T.LONGBLOB,
    _T.DATE, _T.DATETIME, _T.TIME, _T.TIMETZ, _T.TIMESTAMP, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ,
    _T.TIMESTAMPNTZ, _T.INTERVAL, _T.YEAR,
    _T.JSON, _T.JSONB, _T.UUID, _T.INET, _T.ARRAY,
    _T.INT4RANGE, _T.INT8RANGE, _T.NUMRANGE, _T.DATERANGE, _T.TSRANGE, _T.TSTZRANGE,
    _T.CHARACTER_SET,  # MySQL: CAST(x AS CHAR CHARACTER SET utf8mb4), CONVERT(x USING ...)
})  # fmt: skip
# Built-in value types sqlglot does not type (it parses them as user-defined): by unqualified,
# unquoted name, per dialect.
_UNTYPED_BUILTIN_TYPES: dict[str, frozenset[str]] = {
    "postgres": frozenset({"varbit", "cidr", "macaddr", "macaddr8"}),
    "oracle": frozenset({"nclob", "raw", "rowid", "urowid"}),
}


def _is_value_type(node: exp.DataType, dialect: str) -> bool:
    if isinstance(node, exp.IntervalSpan) or isinstance(node.this, exp.Interval):
        return True  # Oracle's INTERVAL DAY TO SECOND / YEAR TO MONTH
    if type(node) is not exp.DataType:
        return False  # ObjectIdentifier (reg* types) and anything new
    if node.this in _CAST_TYPES:
        return True
    kind = node.args.get("kind")
    name = kind.name if isinstance(kind, exp.Identifier) and not kind.quoted else kind
    return (
        node.this == DType.USERDEFINED
        and isinstance(name, str)
        and name.lower() in _UNTYPED_BUILTIN_TYPES.get(dialect, frozenset())
    )


def cast_types_are_allowed(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Casts and typed values name value types only (an allow-list): never PostgreSQL's
    ``reg*`` object-identifier types or user-defined types, which look objects up by name."""
    seen: set[str] = set()
    for node in nodes.types:
        if _is_value_type(node, ctx.dialect):
            continue
        shown = _shown(node, ctx.dialect)
        if shown.upper() in seen:
            continue
        seen.add(shown.upper())
        if isinstance(node, exp.ObjectIdentifier):
            reason = (
                "object-identifier types look a database object up by name, which reveals "
                "whether it exists"
            )
        else:
            reason = "only built-in value types (numbers, text, dates, JSON ...) may be used"
        yield Violation(
            ViolationCode.FORBIDDEN_FUNCTION,
            f"Type {shown} is not allowed in a cast or typed value: {reason}.",
        )


_FROM_PARENTS = (exp.Table, exp.From, exp.Join, exp.Lateral)


def qualifiers_name_sources(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """A column qualifier must name a table, alias, CTE or derived table of the statement.

    Without a catalog nothing else would notice ``seq.NEXTVAL`` (a sequence advanced),
    ``UTL_INADDR.GET_HOST_NAME`` (an Oracle package function called without parentheses) or
    ``pg_catalog.now`` in a read-only statement; in every dialect such a qualifier is an error
    anyway. (With a catalog the grounding step also checks each qualifier against its scope.)
    The names are the statement's own, compared case-insensitively: tables, every alias (of
    tables, derived tables, CTEs, table functions, VALUES) and table functions without an alias,
    which are named after themselves (``generate_series.x``).
    """
    qualified = [c for c in nodes.columns if c.args.get("table") is not None]
    if not qualified:
        return
    names = {name.lower() for name in nodes.names}
    names.update(
        function_name(f, ctx.dialect) for f in nodes.funcs if isinstance(f.parent, _FROM_PARENTS)
    )
    seen: set[str] = set()
    for column in qualified:
        qualifier = column.table
        if not qualifier or qualifier.lower() in names:
            continue
        parent = column.parent
        if isinstance(parent, exp.Dot) and parent.this is column:
            continue  # the package path of a pkg.fn() call: judged by functions_are_allowed
        shown = _shown(column, ctx.dialect)
        if shown in seen:
            continue
        seen.add(shown)
        yield Violation(
            ViolationCode.UNKNOWN_TABLE,
            f"Table or alias {qualifier} is not defined in this query (in {shown}; package "
            "functions and sequences cannot be used).",
            close_names(qualifier, sorted(names)),
        )


def no_database_links(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Oracle's ``table@dblink`` queries another database: refuse any unquoted name with ``@``.

    sqlglot keeps ``t@dblink`` as one unquoted identifier. Other dialects never produce one (``@``
    starts a variable or parameter there, which the node rule refuses).
    """
    if ctx.dialect != "oracle":
        return
    for ident in nodes.tree.find_all(exp.Identifier):
        if not ident.quoted and "@" in ident.name:
            yield Violation(
                ViolationCode.UNKNOWN_TABLE,
                f"Table {ident.name} is not in this database: database links (name@link) reach "
                "other databases and are not allowed.",
            )
            return


# Unqualified words an Oracle query over DUAL may use: DUAL's own column and the pseudocolumns.
_DUAL_WORDS = frozenset(
    {"DUMMY", "LEVEL", "ROWNUM", "ROWID", "CONNECT_BY_ISLEAF", "CONNECT_BY_ISCYCLE"}
)
_SEQUENCE_WORDS = frozenset({"NEXTVAL", "CURRVAL"})


def _reads_only_dual(select: exp.Select) -> bool:
    from_ = select.args.get("from_")
    return (
        from_ is not None
        and isinstance(from_.this, exp.Table)
        and isinstance(from_.this.this, exp.Identifier)
        and from_.this.name.upper() == "DUAL"
        and (not from_.this.db or from_.this.db.upper() == "SYS")
        and not select.args.get("joins")
    )


def _own_columns(select: exp.Select) -> Iterator[exp.Column]:
    """The columns of ``select``'s own scope: nested queries with a FROM of their own excluded."""
    for node in select.walk(prune=lambda n: n is not select and _has_own_from(n)):
        if isinstance(node, exp.Column):
            yield node


def _has_own_from(node: exp.Expr) -> bool:
    return isinstance(node, exp.Select) and node.args.get("from_") is not None


def oracle_names_are_not_calls(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Oracle reads some bare names as calls: refuse them.

    In a query over DUAL alone, an unqualified identifier other than DUMMY or a pseudocolumn
    (LEVEL, ROWNUM ...) names no column, so Oracle calls it as a zero-argument function
    (``SELECT get_secret FROM dual``, ``SELECT USER FROM dual``). And ``x.NEXTVAL`` /
    ``x.CURRVAL`` advance or read a sequence whatever ``x`` is spelled like.
    """
    if ctx.dialect != "oracle":
        return
    seen: set[str] = set()
    for column in nodes.columns:
        if column.table and column.name.upper() in _SEQUENCE_WORDS:
            yield Violation(
                ViolationCode.NOT_READ_ONLY,
                f"{_shown(column, ctx.dialect)}: sequences (NEXTVAL, CURRVAL) cannot be used.",
            )
            return
    for select in nodes.selects:
        if not _reads_only_dual(select):
            continue
        aliases = {a.upper() for a in select.named_selects if a}
        for column in _own_columns(select):
            word = column.name.upper()
            if column.table or isinstance(column.this, exp.Star) or word in _DUAL_WORDS:
                continue
            if word in aliases and column.find_ancestor(exp.Order) is not None:
                continue  # ORDER BY an output column
            if word in seen:
                continue
            seen.add(word)
            yield Violation(
                ViolationCode.UNKNOWN_COLUMN,
                f"Column {column.name} does not exist in DUAL, so Oracle would call it as a "
                "function; write the function call with parentheses, or select from the table "
                "that has this column.",
            )


# -- constructed lengths -------------------------------------------------------------------------

# Calls that build a value whose size is one of their arguments: (class or anonymous name) ->
# the argument keys holding the count or width.
_PRINTF_NAMES = frozenset({"printf", "format"})
_SIZE_NAMES = frozenset({"zeroblob", "randomblob"})
_PRINTF_SPEC = re.compile(
    r"%(?:(?P<pos>\d+)\$)?[-+ 0#,!']*"
    r"(?P<width>\*(?:\d+\$)?|\d+)?(?:\.(?P<prec>\*|\d*))?(?:hh|h|ll|l|q|L)?(?P<type>[A-Za-z%])"
)


def _bound(node: exp.Expr | None) -> int | None:
    """An upper bound of a width expression's value, or ``None`` when it has none we can prove.

    Literal numbers (and numeric strings), NULL, negatives of literals, LEAST with one bounded
    argument, GREATEST/COALESCE/CASE/IF whose every result is bounded, ``x % n``, and casts or
    parentheses of those.
    """
    if node is None or isinstance(node, exp.Null):
        return 0
    if isinstance(node, exp.Literal):
        try:
            value = float(str(node.this))
        except ValueError:
            return None
        return max(0, math.ceil(value)) if math.isfinite(value) else None
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return 0 if _bound(node.this) is not None else None
    if isinstance(node, exp.Paren | exp.Cast | exp.TryCast):
        return _bound(node.this)
    if isinstance(node, exp.Least):
        known = [b for b in map(_bound, [node.this, *node.expressions]) if b is not None]
        return min(known) if known else None
    if isinstance(node, exp.Mod):
        divisor = _bound(node.expression)
        return None if divisor is None else divisor
    results: list[exp.Expr | None]
    if isinstance(node, exp.Greatest | exp.Coalesce):
        results = [node.this, *node.expressions]
    elif isinstance(node, exp.Case):
        results = [i.args.get("true") for i in node.args.get("ifs") or []]
        results.append(node.args.get("default"))
    elif isinstance(node, exp.If):
        results = [node.args.get("true"), node.args.get("false")]
    else:
        return None
    bounds = [_bound(r) for r in results]
    return None if any(b is None for b in bounds) else max(b for b in bounds if b is not None)


def _constructor_name(node: exp.Func) -> str | None:
    if isinstance(node, exp.Repeat | exp.Pad | exp.Space | exp.Format):
        return type(node).__name__
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _PRINTF_NAMES | _SIZE_NAMES:
        return str(node.name).lower()
    return None


def _constructor_written(node: exp.Func, kind: str, dialect: str) -> str:
    # sqlglot renders MySQL's SPACE(n) as REPEAT(' ', n): name the call as the user wrote it.
    if kind == "Space":
        return "space"
    if kind == "Pad":
        return "lpad" if node.args.get("is_left") else "rpad"
    return function_name(node, dialect)


def _length(node: exp.Expr) -> int | None:
    """The length a string or blob expression can reach, when it is known from the tree."""
    if isinstance(node, exp.Literal) and node.is_string:
        return len(str(node.this))
    if isinstance(node, exp.Paren | exp.Cast):
        return _length(node.this)
    if isinstance(node, exp.Pad):
        return _bound(node.args.get("expression"))
    if isinstance(node, exp.Space) or (
        isinstance(node, exp.Anonymous) and str(node.name).lower() in _SIZE_NAMES
    ):
        size = node.this if isinstance(node, exp.Space) else (node.expressions or [None])[0]
        return _bound(size)
    if isinstance(node, exp.Repeat):
        inner, times = _length(node.this), _bound(node.args.get("times"))
        return None if inner is None or times is None else inner * times
    if isinstance(node, exp.DPipe | exp.Concat | exp.ConcatWs):
        parts = [node.this, node.args.get("expression"), *node.expressions]
        lengths = [_length(p) for p in parts if isinstance(p, exp.Expr)]
        return None if any(n is None for n in lengths) else sum(n for n in lengths if n)
    return None


def _printf_widths(fmt: str, args: list[exp.Expr]) -> tuple[int, str | None]:
    """Total of the widths and precisions in a printf/format string, and a problem if any."""
    total, cursor = 0, 0
    for spec in _PRINTF_SPEC.finditer(fmt):
        if spec.group("type") == "%":
            continue
        for part in (spec.group("width"), spec.group("prec")):
            if not part:
                continue
            if part.startswith("*"):
                index = int(part[1:-1]) - 1 if part.endswith("$") else cursor
                cursor = index + 1
                arg = args[index] if 0 <= index < len(args) else None
                value = _bound(arg)
                if value is None:
                    return total, f"the width argument {_shown_plain(arg)} is not a literal"
                total += value
            else:
                total += int(part)
        position = spec.group("pos")
        cursor = int(position) if position else cursor + 1
    return total, None


def _shown_plain(node: exp.Expr | None) -> str:
    return "(missing)" if node is None else node.sql()


def constructed_lengths_are_bounded(nodes: Nodes, ctx: RuleContext) -> Iterable[Violation]:
    """Calls that build a string or blob from a size need a small literal size.

    ``repeat('x', 1000000000)``, ``lpad('', 1e9)``, ``printf('%.*c', 1e9, 'x')`` or
    ``zeroblob(1e9)`` make the database allocate gigabytes from a few characters of SQL. Their
    count, width or precision must be an integer literal (or be provably bounded, such as
    ``LEAST(n, 50)``) of at most ``SafetyConfig.max_constructed_length``, and a repeated value
    must itself have a known length within that bound.
    """
    limit = ctx.max_constructed_length
    for node in nodes.funcs:
        kind = _constructor_name(node)
        if kind is None:
            continue
        problem: str | None = None
        size: int | None = 0
        if kind in ("Repeat", "Pad", "Space") or kind in _SIZE_NAMES:
            width = {
                "Repeat": node.args.get("times"),
                "Pad": node.args.get("expression"),
                "Space": node.this,
            }.get(kind, (node.expressions or [None])[0])
            size = _bound(width)
            if size is None:
                shown = _shown(width, ctx.dialect) if width is not None else "(missing)"
                problem = f"its length {shown} is not a literal"
            elif kind == "Repeat":
                inner = _length(node.this)
                if inner is None and any(
                    _constructor_name(n) for n in node.this.find_all(exp.Func)
                ):
                    problem = "it repeats a constructed value of unknown length"
                elif inner is not None:
                    size *= inner
        else:  # printf / format: widths and precisions inside the format string
            fmt = node.this if kind == "Format" else (node.expressions or [None])[0]
            args = list(node.expressions if kind == "Format" else node.expressions[1:])
            if not (isinstance(fmt, exp.Literal) and fmt.is_string):
                problem = "its format string is not a literal"
            else:
                size, problem = _printf_widths(str(fmt.this), args)
        if problem is None and size is not None and size <= limit:
            continue
        detail = problem or f"it would build {size:,} characters or bytes"
        name = _constructor_written(node, kind, ctx.dialect)
        yield Violation(
            ViolationCode.FORBIDDEN_FUNCTION,
            f"{name}() is not allowed here: {detail}. Widths and counts must be integer "
            f"literals (or LEAST(expression, n)) building at most {limit:,} characters.",
        )


#: The read-only rules, in order.
RULES: tuple[Rule, ...] = (
    root_is_query,
    nodes_are_read_only,
    functions_are_allowed,
    cast_types_are_allowed,
    qualifiers_name_sources,
    no_database_links,
    oracle_names_are_not_calls,
    constructed_lengths_are_bounded,
    selects_are_complete,
)


def check_read_only(tree: exp.Expr, ctx: RuleContext) -> list[Violation]:
    """Run :data:`RULES` over ``tree``, after :func:`undo_arrow_lambdas` (which edits ``tree``
    in place so that what is judged is what will be rendered and run)."""
    nodes = Nodes.of(tree)
    if nodes.lambdas and ctx.dialect in _ARROW_DIALECTS:
        undo_arrow_lambdas(tree, ctx.dialect)
        nodes = Nodes.of(tree)
    violations: list[Violation] = []
    for rule in RULES:
        violations.extend(rule(nodes, ctx))
    return violations
