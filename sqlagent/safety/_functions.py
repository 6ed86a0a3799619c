"""The function allow-list.

A function call passes only when it is one of the typed functions below — functions sqlglot
understands and that cannot write, touch files or the network, sleep, or read session state — or
when its name is in the caller's per-dialect allow-list (``SafetyConfig.allowed_functions``).
Each engine's vetted pure built-ins that sqlglot does not type also pass by default
(:data:`sqlagent.dialects.PURE_BUILTINS`). Everything else is rejected: anonymous functions
(``pg_sleep``, ``load_extension``, ``LOAD_FILE``, ``dblink``, ``set_config`` ...), dotted package
calls (``DBMS_*``, ``UTL_*``) and typed functions left off this list on purpose (``NEXT VALUE
FOR``, ``READ_CSV``, AI/ML and session functions). A few pure package calls are typed by sqlglot
itself and pass as what they are: Oracle's ``DBMS_RANDOM.VALUE`` is parsed as ``RAND``.

The list is explicit rather than "every typed function minus a deny-list" so that a sqlglot
upgrade adding new function classes never widens what passes.
"""

from __future__ import annotations

from sqlglot import exp

__all__ = ["ALLOWED_FUNCTIONS", "function_name"]

_NAMES = """
And Or Xor
Case If Coalesce Nullif Nvl2 Greatest Least Cast TryCast CastToStrType Convert Collate DecodeCase
Exists Rand Typeof
AnyValue ApproxDistinct ArgMax ArgMin ArrayAgg Avg Corr Count CountIf CovarPop CovarSamp CumeDist
DenseRank First FirstValue GroupConcat Grouping GroupingId Kurtosis Lag Last LastValue Lead
LogicalAnd LogicalOr Max Median Min Mode NthValue Ntile PercentRank PercentileCont PercentileDisc
Quantile Rank RegrAvgx RegrAvgy RegrCount RegrIntercept RegrR2 RegrSlope RegrSxx RegrSxy RegrSyy
RowNumber Skewness Stddev StddevPop StddevSamp Sum Variance VariancePop
BitwiseAndAgg BitwiseOrAgg BitwiseXorAgg
Abs Acos Acosh Asin Asinh Atan Atan2 Atanh Cbrt Ceil Cos Cosh Cot Degrees Exp Floor IsInf IsNan Ln
Log Pi Pow Radians Round Sign Sin Sinh Sqrt Tan Tanh Trunc SafeDivide
Ascii BitLength ByteLength Chr Concat ConcatWs Contains EndsWith Format Hex Initcap Left Length
Levenshtein Lower MD5 Normalize Overlay Pad RegexpCount RegexpExtract RegexpILike RegexpInstr
RegexpLike RegexpReplace RegexpSubstr Repeat Replace Reverse Right SHA SHA2 Soundex Space Split
SplitPart StartsWith StrPosition Substring SubstringIndex ToBase64 FromBase64 ToChar ToNumber
Translate Trim Unhex Unicode Upper NumberToStr
AddMonths CurrentDate CurrentDatetime CurrentTime CurrentTimestamp Date DateAdd DateDiff
DateFromParts DateStrToDate DateSub DateToDateStr DateTrunc Datetime DatetimeAdd DatetimeDiff
DatetimeSub DatetimeTrunc Day DayOfMonth DayOfWeek DayOfWeekIso DayOfYear Dayname Extract Hour
LastDay Localtime Localtimestamp MakeInterval Minute Month Monthname MonthsBetween NextDay Quarter
Second StrToDate StrToTime StrToUnix Time TimeAdd TimeDiff TimeFromParts TimeStrToDate
TimeStrToTime TimeStrToUnix TimeSub TimeToStr TimeToTimeStr TimeToUnix TimeTrunc Timestamp
TimestampAdd TimestampDiff TimestampFromParts TimestampSub TimestampTrunc TsOrDsAdd TsOrDsDiff
TsOrDsToDate TsOrDsToDateStr TsOrDsToDatetime TsOrDsToTime TsOrDsToTimestamp UnixDate
UnixSeconds UnixToStr UnixToTime UnixToTimeStr Week WeekOfYear Year Systimestamp
UtcDate UtcTime UtcTimestamp
JSONArray JSONArrayAgg JSONArrayContains JSONBContains JSONBExtract JSONBExtractScalar
JSONBObjectAgg JSONExists JSONExtract JSONExtractArray JSONExtractScalar JSONFormat JSONKeys
JSONObject JSONObjectAgg JSONType ParseJSON
Array ArrayConcat ArrayContains ArraySize ArrayToString Unnest
"""

#: Typed sqlglot function classes that pass without configuration.
ALLOWED_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    getattr(exp, name) for name in _NAMES.split() if hasattr(exp, name)
)


def function_name(node: exp.Func) -> str:
    """The lower-case SQL name of a call (dotted for package calls: ``dbms_random.value``)."""
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):
        name = str(node.name or "")
    else:
        name = node.sql_name()
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        prefix = parent.this.sql() if parent.this is not None else ""
        name = f"{prefix}.{name}" if prefix else name
    return name.lower()
