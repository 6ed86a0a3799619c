"""Step 2: read-only rules over the whole syntax tree.

Each rule is a plain function ``rule(tree, ctx) -> Iterable[Violation]``; :data:`RULES` lists
them in order. The node check is an allow-list: every node anywhere in the tree must be of a
class known to be part of a read-only query, so a construct sqlglot adds tomorrow is refused until
someone looks at it. Writes, DDL, commands and session statements get a specific message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlglot import exp

from sqlagent.safety._functions import ALLOWED_FUNCTIONS, function_name
from sqlagent.types import Violation, ViolationCode

__all__ = ["RULES", "RuleContext", "check_read_only"]


@dataclass(frozen=True, slots=True)
class RuleContext:
    dialect: str
    extra_functions: frozenset[str] = frozenset()


Rule = Callable[[exp.Expr, RuleContext], Iterable[Violation]]

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
    exp.Connect, exp.Prior,
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


def _label(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        keyword = str(node.this or "").upper() or "a command"
        return f"{keyword} (a command sqlglot cannot analyse)"
    for cls, label in _WRITE_NODES.items():
        if isinstance(node, cls):
            return label
    return type(node).__name__


def root_is_query(tree: exp.Expr, ctx: RuleContext) -> Iterable[Violation]:
    """The statement must be a query: SELECT, a set operation, or a read-only CTE query."""
    root = tree.unnest() if isinstance(tree, exp.Subquery | exp.Paren) else tree
    if not isinstance(root, exp.Select | exp.SetOperation):
        yield Violation(
            ViolationCode.NOT_READ_ONLY,
            f"Only SELECT queries are allowed; this statement is {_label(root)}.",
        )


def selects_are_complete(tree: exp.Expr, ctx: RuleContext) -> Iterable[Violation]:
    """Every SELECT names what it returns, and ``SELECT *`` reads from something."""
    for select in tree.find_all(exp.Select):
        if not select.expressions:
            yield Violation(ViolationCode.PARSE_ERROR, "A SELECT must list what it returns.")
            return
        if not select.args.get("from_") and any(p.is_star for p in select.expressions):
            yield Violation(ViolationCode.PARSE_ERROR, "SELECT * needs a FROM clause.")
            return


def nodes_are_read_only(tree: exp.Expr, ctx: RuleContext) -> Iterable[Violation]:
    """Every node anywhere in the tree must belong to a read-only query."""
    seen: set[str] = set()
    for node in tree.walk():
        if node is tree and not isinstance(tree, exp.Query):
            continue  # the root statement kind is reported by root_is_query
        is_write = isinstance(node, _WRITE_TYPES)
        if not is_write and isinstance(node, _READ_TYPES):
            continue  # query syntax; functions are judged by functions_are_allowed
        label = _label(node)
        if label in seen:
            continue
        seen.add(label)
        if is_write:
            message = f"{label} is not allowed: only read-only SELECT queries may run."
        else:
            message = (
                f"Unsupported construct {label}: only plain read-only SELECT syntax is allowed."
            )
        yield Violation(ViolationCode.NOT_READ_ONLY, message)


def functions_are_allowed(tree: exp.Expr, ctx: RuleContext) -> Iterable[Violation]:
    """Functions by allow-list: typed, side-effect-free ones, plus the configured extras."""
    seen: set[str] = set()
    for node in tree.find_all(exp.Func):
        name = function_name(node)
        if type(node) in ALLOWED_FUNCTIONS and not _is_dotted(node):
            continue
        if name in ctx.extra_functions:
            continue
        if name in seen:
            continue
        seen.add(name)
        yield Violation(
            ViolationCode.FORBIDDEN_FUNCTION,
            f"Function {name}() is not allowed; use standard SQL functions and operators.",
        )


def _is_dotted(node: exp.Func) -> bool:
    # A typed call under a Dot is a package call (pkg.fn()) that sqlglot happened to type; the
    # package could be anything, so it only passes through the configured allow-list.
    parent = node.parent
    return isinstance(parent, exp.Dot) and parent.expression is node


#: The read-only rules, in order.
RULES: tuple[Rule, ...] = (
    root_is_query,
    nodes_are_read_only,
    functions_are_allowed,
    selects_are_complete,
)


def check_read_only(tree: exp.Expr, ctx: RuleContext) -> list[Violation]:
    violations: list[Violation] = []
    for rule in RULES:
        violations.extend(rule(tree, ctx))
    return violations
