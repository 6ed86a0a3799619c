"""The function allow-list, grouped by why each group is side-effect free.

A function call (or an operator sqlglot types as a function, such as PostgreSQL's ``@>``) passes
only when it is one of the typed sqlglot function classes below, or when its name, as written in
the statement's dialect, is in the caller's per-dialect allow-list
(``SafetyConfig.allowed_functions``) or, by default, in each engine's vetted pure built-ins that
sqlglot does not type (:data:`sqlagent.dialects.PURE_BUILTINS`). Everything else is rejected:
anonymous functions (``pg_sleep``, ``load_extension``, ``LOAD_FILE``, ``dblink``, ``set_config``
...), dotted package calls (``DBMS_*``, ``UTL_*``) and typed functions left off on purpose
(session and server state such as ``CURRENT_USER`` or ``VERSION()``, sequences, file readers,
AI/ML calls, full-text matching). ``docs/functions.md`` is the reader's version of this module.

Every group below admits only functions that compute a value from their arguments (and, for
clocks and random numbers, the time or a random generator): they never write, touch files or the
network, sleep, take locks, read or change session or server state, execute SQL text, or read a
table by name. The few that *build* values from a size (``repeat``, ``lpad``, ``space``,
``format``) are also bounded by the ``constructed_lengths_are_bounded`` read-only rule.

The list is explicit rather than "every typed function minus a deny-list" so that a sqlglot
upgrade adding new function classes never widens what passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

__all__ = [
    "ALLOWED_FUNCTIONS",
    "FUNCTION_GROUPS",
    "FunctionGroup",
    "function_name",
    "render_written",
    "written_operator",
]


@dataclass(frozen=True, slots=True)
class FunctionGroup:
    """Typed sqlglot function classes admitted together, and why they are safe."""

    category: str
    reason: str
    names: tuple[str, ...]  # sqlglot class names in sqlglot.exp


def _group(category: str, reason: str, names: str) -> FunctionGroup:
    return FunctionGroup(category, reason, tuple(names.split()))


#: The typed allow-list, by category. ``tests/safety/test_guard.py`` checks that
#: every name is a function class of the pinned sqlglot.
FUNCTION_GROUPS: tuple[FunctionGroup, ...] = (
    _group(
        "logic and conditionals",
        "pure expressions over their arguments; EXISTS runs a subquery that is itself judged",
        """And Or Xor Case If Coalesce Nullif Nvl2 Greatest Least DecodeCase Exists Typeof""",
    ),
    _group(
        "casts and conversions",
        "convert a value to another type; the target type is checked by the cast rule "
        "(no reg* object-identifier types, no user-defined types)",
        """Cast TryCast CastToStrType Convert Collate ToChar ToNumber NumberToStr""",
    ),
    _group(
        "aggregates",
        "fold the rows of a group into one value",
        """AnyValue ApproxDistinct ArgMax ArgMin ArrayAgg Avg Corr Count CountIf CovarPop
        CovarSamp First GroupConcat Grouping GroupingId Kurtosis Last LogicalAnd LogicalOr Max
        Median Min Mode PercentileCont PercentileDisc Quantile RegrAvgx RegrAvgy RegrCount
        RegrIntercept RegrR2 RegrSlope RegrSxx RegrSxy RegrSyy Skewness Stddev StddevPop
        StddevSamp Sum Variance VariancePop BitwiseAndAgg BitwiseOrAgg BitwiseXorAgg
        JSONArrayAgg JSONObjectAgg JSONBObjectAgg""",
    ),
    _group(
        "window functions",
        "rank or look at neighbouring rows of the query's own result",
        """CumeDist DenseRank FirstValue Lag LastValue Lead NthValue Ntile PercentRank Rank
        RowNumber""",
    ),
    _group(
        "mathematics",
        "arithmetic on numbers; RAND only draws from the session's random generator",
        """Abs Acos Acosh Asin Asinh Atan Atan2 Atanh Cbrt Ceil Cos Cosh Cot Degrees Exp
        Factorial Floor IsInf IsNan Ln Log Nanvl Pi Pow Radians Rand Round SafeDivide Sign Sin
        Sinh Sqrt Tan Tanh Trunc WidthBucket""",
    ),
    _group(
        "strings and binary values",
        "transform, search, hash or encode the strings they are given; output is bounded by "
        "the input",
        """Ascii BitLength ByteLength Chr Concat ConcatWs Contains Decode Elt Encode EndsWith Hex
        Initcap Left Length Levenshtein Lower MD5 Normalize Overlay RegexpCount RegexpExtract
        RegexpILike RegexpInstr RegexpLike RegexpReplace RegexpSubstr Replace Reverse Right SHA
        SHA2 SHA2Digest Soundex Split SplitPart StandardHash StartsWith StrPosition Stuff
        Substring SubstringIndex ToBase64 FromBase64 Translate Trim Unhex Unicode Upper""",
    ),
    _group(
        "string constructors (bounded)",
        "build a string from a count or width; pure, and the constructed-length rule requires "
        "that width to be a small literal (SafetyConfig.max_constructed_length)",
        """Repeat Pad Space Format""",
    ),
    _group(
        "dates and times",
        "calendar arithmetic, parsing and formatting; the clock functions read only the "
        "current time",
        """AddMonths ConvertTimezone CurrentDate CurrentDatetime CurrentTime CurrentTimestamp
        Date DateAdd DateBin DateDiff DateFromParts DateStrToDate DateSub DateToDateStr
        DateTrunc Datetime DatetimeAdd DatetimeDiff DatetimeSub DatetimeTrunc Day DayOfMonth
        DayOfWeek DayOfWeekIso DayOfYear Dayname Extract Hour JustifyDays JustifyHours
        JustifyInterval LastDay Localtime Localtimestamp MakeInterval Minute Month Monthname
        MonthsBetween NextDay Quarter Second StrToDate StrToTime StrToUnix Systimestamp Time
        TimeAdd TimeDiff TimeFromParts TimeStrToDate TimeStrToTime TimeStrToUnix TimeSub
        TimeToStr TimeToTimeStr TimeToUnix TimeTrunc Timestamp TimestampAdd TimestampDiff
        TimestampFromParts TimestampSub TimestampTrunc TsOrDsAdd TsOrDsDiff TsOrDsToDate
        TsOrDsToDateStr TsOrDsToDatetime TsOrDsToTime TsOrDsToTimestamp UnixDate UnixSeconds
        UnixToStr UnixToTime UnixToTimeStr UtcDate UtcTime UtcTimestamp Week WeekOfYear
        Year""",
    ),
    _group(
        "JSON functions and operators",
        "build, read, test or rewrite JSON values in memory (JSON_SET and jsonb #- return a new "
        "value; nothing is stored); PostgreSQL's ?, ?|, ?&, @?, #- operators are typed here",
        """JSONArray JSONArrayAppend JSONArrayContains JSONArrayInsert JSONBContains
        JSONBContainsAllTopKeys JSONBContainsAnyTopKeys JSONBContainsTopKey JSONBDeleteAtPath
        JSONBExists JSONBExtract JSONBExtractScalar JSONBPathExists JSONExists JSONExtract
        JSONExtractArray JSONExtractScalar JSONFormat JSONKeys JSONObject JSONRemove JSONSet
        JSONStripNulls JSONTable JSONType ParseJSON""",
    ),
    _group(
        "arrays and set-returning functions",
        "build, search or expand the arrays they are given (PostgreSQL's @>, <@, && operators, "
        "unnest and generate_series); a set-returning function produces rows from its "
        "arguments only",
        """Array ArrayAppend ArrayConcat ArrayContainedBy ArrayContains ArrayContainsAll
        ArrayOverlaps ArrayPosition ArrayPrepend ArrayRemove ArraySize ArrayToString
        StringToArray Unnest Explode ExplodingGenerateSeries GenerateSeries""",
    ),
)

#: Typed sqlglot function classes that pass without configuration.
ALLOWED_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    getattr(exp, name) for group in FUNCTION_GROUPS for name in group.names if hasattr(exp, name)
)

_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_$#]*)\s*\(")


def render_written(node: exp.Expr, dialect: str) -> str | None:
    """``node`` as written in ``dialect`` (for messages), or ``None`` when it cannot be."""
    try:
        return node.sql(dialect=dialect, comments=False)
    except Exception:  # a node the dialect cannot render: fall back to sqlglot's own name
        return None


def written_operator(node: exp.Expr, dialect: str) -> str | None:
    """The operator a node was written as (``@>``, ``?|``, ``@@``, ``<->``), or ``None``.

    sqlglot types several PostgreSQL operators as functions (``a @> b`` is ``ArrayContainsAll``,
    ``a @@ b`` is ``MatchAgainst``) or as classes of their own (``a <-> b`` is ``Distance``);
    rendering the node in the source dialect gives back the operator the user wrote: the text
    between its two operands.
    """
    text = render_written(node, dialect)
    if text is None or _CALL.match(text):
        return None
    operands = [t for t in (render_written(c, dialect) for c in node.iter_expressions()) if t]
    for left in operands:
        for right in operands:
            if (
                left is not right
                and len(text) > len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                operator = text[len(left) : len(text) - len(right)].strip()
                if operator:
                    return operator
    return None


def function_name(node: exp.Func, dialect: str | None = None) -> str:
    """The lower-case name of a call as written in ``dialect`` (dotted for package calls:
    ``dbms_random.value``).

    Typed calls are rendered in the source dialect, so the name is the one the user wrote
    (``unnest``, ``generate_series``), never sqlglot's internal class name (``explode``,
    ``exploding_generate_series``). Allow-lists are matched against this name too.
    """
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):
        name = str(node.name or "")
    else:
        text = render_written(node, dialect) if dialect is not None else None
        match = _CALL.match(text) if text is not None else None
        name = match.group(1) if match else node.sql_name()
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        prefix = parent.this.sql(dialect=dialect) if parent.this is not None else ""
        name = f"{prefix}.{name}" if prefix else name
    return name.lower()
