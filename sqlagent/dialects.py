"""The SQL dialects sqlagent targets, their identifier rules, and database URLs.

The URL helpers here are the only place sqlagent parses a database URL: the catalog, the
executor, the configurations, ``sqlagent doctor``, training and evaluation all go through
:func:`database_url` (a URL with its default driver), :func:`dialect_from_url`,
:func:`sqlite_file` and :func:`resolve_sqlite_url`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from sqlagent.errors import ConfigError, DialectError

__all__ = [
    "BUILTIN_GROUPS",
    "BuiltinGroup",
    "DEFAULT_DRIVERS",
    "DIALECTS",
    "PURE_BUILTINS",
    "RESERVED_WORDS",
    "analysis_dialect",
    "catalog_key",
    "database_url",
    "dialect_from_url",
    "is_system_relation",
    "normalize_key",
    "resolve_dialect",
    "resolve_sqlite_url",
    "sqlite_file",
]

#: Accepted names -> sqlglot dialect name.
DIALECTS: dict[str, str] = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
}

# Schemas that hold the database's own catalog. They are never granted by "*" in a policy.
_SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"information_schema"}),
    "postgres": frozenset({"pg_catalog", "information_schema", "pg_toast"}),
    "mysql": frozenset({"mysql", "information_schema", "performance_schema", "sys"}),
    "oracle": frozenset({"sys", "system", "information_schema"}),
}
_SYSTEM_PREFIXES: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite_", "pragma_"),
    "postgres": ("pg_",),
    "mysql": (),
    "oracle": ("all_", "dba_", "user_", "v$", "gv$", "cdb_"),
}


def resolve_dialect(name: str) -> str:
    """Map a user-facing dialect name to sqlglot's; unknown names raise :class:`DialectError`."""
    key = name.strip().lower()
    if key not in DIALECTS:
        raise DialectError(
            f"unsupported dialect {name!r}; choose one of: sqlite, postgres, mysql, oracle"
        )
    return DIALECTS[key]


#: The driver of a URL that names none (``postgresql://``, ``mysql://``): the drivers of
#: sqlagent's extras. SQLite needs none (the standard library's ``sqlite3``).
DEFAULT_DRIVERS: Mapping[str, str] = {
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "mariadb": "pymysql",
    "oracle": "oracledb",
}


def database_url(url: str | sa.URL, *, error: type[ConfigError] = ConfigError) -> sa.URL:
    """``url`` as a SQLAlchemy URL, with its backend's default driver (:data:`DEFAULT_DRIVERS`)
    when it names none: ``postgresql://h/db`` becomes ``postgresql+psycopg://h/db``.

    Text that is not a database URL raises ``error`` (a :class:`ConfigError` or a subclass).
    """
    if isinstance(url, sa.URL):
        parsed = url
    else:
        try:
            parsed = sa.make_url(url)
        except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
            raise error(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{DEFAULT_DRIVERS[backend]}")
    return parsed


def dialect_from_url(url: str | sa.URL) -> str:
    """The dialect of a SQLAlchemy URL such as ``postgresql+psycopg://...`` (``mysql`` for
    MariaDB); an unsupported backend raises :class:`DialectError`."""
    return resolve_dialect(database_url(url).get_backend_name())


def sqlite_file(url: str | sa.URL) -> str | None:
    """The file a SQLite URL names, as written (``sqlite:///hr.db`` -> ``"hr.db"``); ``None``
    for an in-memory database, a ``file:`` URI, or a URL of another backend."""
    parsed = database_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else database


def resolve_sqlite_url(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path resolved against ``base`` (a config file's
    folder); any other URL is returned as given."""
    path = sqlite_file(url)
    if path is None or Path(path).is_absolute():
        return url
    return sa.make_url(url).set(database=str(base / path)).render_as_string(hide_password=False)


@functools.cache
def analysis_dialect(dialect: str) -> Dialect:
    """The sqlglot dialect used for name resolution.

    MySQL/MariaDB compare column names case-insensitively (and table names too on most
    installations), so resolution treats them case-insensitively; the others follow sqlglot's
    rules (PostgreSQL folds unquoted names to lower case, Oracle to upper case, SQLite ignores
    case).
    """
    if dialect == "mysql":
        return Dialect.get_or_raise("mysql, normalization_strategy=case_insensitive")
    return Dialect.get_or_raise(dialect)


def normalize_key(name: str, dialect: str, *, quoted: bool) -> str:
    """The key a name is compared by, under ``dialect``'s identifier rules."""
    ident = exp.Identifier(this=name, quoted=quoted)
    return analysis_dialect(dialect).normalize_identifier(ident).name


def catalog_key(name: str, dialect: str) -> str:
    """The comparison key of a name as the catalog spells it.

    Catalog names are exact (as if quoted), except that on Oracle an all-lower-case name means a
    case-insensitive one, which is how SQLAlchemy reports them and how people write schema files.
    """
    if dialect == "oracle" and name == name.lower():
        return name.upper()
    return normalize_key(name, dialect, quoted=True)


def is_system_relation(name: str, db: str | None, dialect: str) -> bool:
    """Whether a table reference names the database's own catalog (``pg_class``, ``mysql.user``)."""
    lname, ldb = name.lower(), (db or "").lower()
    if ldb and ldb in _SYSTEM_SCHEMAS[dialect]:
        return True
    return lname.startswith(_SYSTEM_PREFIXES[dialect]) or lname == "information_schema"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class BuiltinGroup:
    """Engine built-ins that sqlglot does not type, admitted together, and why they are safe."""

    category: str
    reason: str
    names: Mapping[str, frozenset[str]]  # sqlglot dialect -> lower-case function names


def _group(category: str, reason: str, **names: str) -> BuiltinGroup:
    return BuiltinGroup(category, reason, {d: _names(text) for d, text in names.items()})


#: Each engine's pure built-in functions that sqlglot does not type (they reach the allow-list as
#: anonymous calls, matched by name), grouped by category with the reason the group is safe.
#: Admitted only if they have no side effects: no writes, files, network, sleeping, locks, session
#: or server state, no SQL text executed and no table read by name. That is why PostgreSQL's
#: query_to_xml, current_setting, nextval and pg_* introspection, MySQL's SLEEP, BENCHMARK,
#: GET_LOCK, LOAD_FILE and USER(), SQLite's load_extension and changes(), and Oracle's USER,
#: SYS_CONTEXT and every DBMS_*/UTL_* package stay out. ``docs/functions.md`` lists them all.
BUILTIN_GROUPS: tuple[BuiltinGroup, ...] = (
    _group(
        "conditionals and comparisons",
        "pure expressions over their arguments",
        sqlite="ifnull iif likely unlikely likelihood",
        postgres="num_nonnulls num_nulls",
        mysql="ifnull isnull strcmp",
        oracle="lnnvl nanvl",
    ),
    _group(
        "aggregates and window functions",
        "fold or rank the rows of the query's own result",
        sqlite="total",
        postgres="every bool_and bool_or",
        oracle="listagg ratio_to_report approx_median",
    ),
    _group(
        "mathematics",
        "arithmetic on numbers",
        sqlite="sign",
        postgres=(
            "trunc div gcd lcm factorial width_bucket min_scale scale trim_scale "
            "acosd asind atand atan2d cosd cotd sind tand"
        ),
        mysql="oct bin conv crc32 truncate",
        oracle="trunc mod remainder power bitand ora_hash",
    ),
    _group(
        "strings",
        "transform, search, quote or encode the strings they are given; output is bounded by "
        "the input",
        sqlite=(
            "instr substr substring ltrim rtrim trim char unicode hex soundex typeof quote "
            "concat concat_ws octet_length"
        ),
        postgres=(
            "ltrim rtrim btrim strpos starts_with chr initcap reverse translate octet_length "
            "quote_literal quote_ident quote_nullable regexp_match regexp_matches "
            "regexp_split_to_array to_ascii unistr sha224 string_to_array array_to_string"
        ),
        mysql=(
            "find_in_set field elt locate instr char_length character_length mid ord "
            "octet_length quote natural_sort_key inet_aton inet_ntoa"
        ),
        oracle="instr substr ltrim rtrim initcap regexp_instr regexp_count",
    ),
    _group(
        "string and blob constructors (bounded)",
        "build a value from a count or width and nothing else; the constructed-length rule "
        "requires that width to be a small literal (SafetyConfig.max_constructed_length)",
        sqlite="printf format zeroblob randomblob",
        postgres="repeat lpad rpad",
        mysql="lpad rpad space",
        oracle="lpad rpad",
    ),
    _group(
        "dates and times",
        "calendar arithmetic, parsing and formatting; clock functions read only the current time",
        sqlite="date time datetime julianday unixepoch strftime timediff",
        postgres=(
            "age make_date make_time make_timestamp make_timestamptz make_interval date_part "
            "date_subtract justify_days justify_hours justify_interval to_timestamp to_date "
            "clock_timestamp statement_timestamp transaction_timestamp timeofday isfinite "
            "date_bin timezone"
        ),
        mysql=(
            "now sysdate curdate curtime current_date current_time current_timestamp utc_date "
            "utc_time utc_timestamp unix_timestamp from_unixtime datediff date_format "
            "timestampdiff timestampadd makedate maketime sec_to_time time_to_sec dayofmonth "
            "dayofweek dayofyear weekday yearweek to_days to_seconds from_days period_add "
            "period_diff str_to_date last_day adddate subdate addtime subtime timediff "
            "time_format get_format microsecond"
        ),
        oracle=(
            "trunc last_day to_timestamp to_timestamp_tz numtodsinterval numtoyminterval "
            "to_dsinterval to_yminterval from_tz sys_extract_utc new_time"
        ),
    ),
    _group(
        "JSON",
        "build, read, test or rewrite JSON values in memory (jsonb_set and JSON_REPLACE "
        "return a new value; nothing is stored); the table-valued ones (jsonb_each, json_each, "
        "json_tree) expand their argument only",
        sqlite=(
            "json json_array json_array_length json_insert json_patch json_replace json_valid "
            "json_quote json_each json_tree"
        ),
        postgres=(
            "to_json to_jsonb array_to_json row_to_json json_build_array jsonb_build_array "
            "json_build_object jsonb_build_object jsonb_object json_array_length "
            "jsonb_array_length json_each jsonb_each json_each_text jsonb_each_text "
            "jsonb_extract_path jsonb_extract_path_text json_object_keys jsonb_object_keys "
            "json_array_elements jsonb_array_elements json_array_elements_text "
            "jsonb_array_elements_text json_typeof jsonb_typeof jsonb_strip_nulls jsonb_set "
            "jsonb_set_lax jsonb_insert jsonb_pretty jsonb_path_exists jsonb_path_match "
            "jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_agg"
        ),
        mysql=(
            "json_array json_arrayagg json_compact json_contains json_contains_path json_depth "
            "json_detailed json_equals json_exists json_insert json_length json_loose "
            "json_merge json_merge_patch json_merge_preserve json_normalize json_overlaps "
            "json_query json_quote json_replace json_search json_unquote json_valid json_pretty"
        ),
        oracle="json_query",
    ),
    _group(
        "arrays and set-returning functions",
        "inspect or expand the arrays they are given; generate_subscripts and "
        "regexp_split_to_table produce rows from their arguments only",
        postgres=(
            "array_length cardinality array_dims array_lower array_upper array_ndims "
            "array_positions array_replace trim_array generate_subscripts regexp_split_to_table "
            "string_to_table"
        ),
    ),
    _group(
        "hierarchical queries",
        "Oracle's CONNECT BY path of the rows the query itself walks",
        oracle="sys_connect_by_path",
    ),
)

#: Per dialect: every name of :data:`BUILTIN_GROUPS`. Enabled by ``SafetyConfig(pure_builtins=
#: True)``, the default.
PURE_BUILTINS: dict[str, frozenset[str]] = {
    dialect: frozenset().union(*(g.names.get(dialect, frozenset()) for g in BUILTIN_GROUPS))
    for dialect in dict.fromkeys(DIALECTS.values())
}


#: Words quoted whenever they are used as identifiers in rewritten SQL: the union of the SQL
#: standard's reserved words, SQLite's keywords and the reserved words of PostgreSQL, MySQL/MariaDB
#: and Oracle. Over-quoting is harmless (a quoted normalized name is the exact name); a bare
#: reserved word is a syntax error on the database even where sqlglot's parser accepts it.
RESERVED_WORDS: frozenset[str] = _names(
    """
    ABORT ABSOLUTE ACCESS ACTION ADD AFTER ALL ALLOCATE ALTER ALWAYS ANALYSE ANALYZE AND ANY ARE
    ARRAY AS ASC ASENSITIVE ASSERTION ASYMMETRIC AT ATTACH AUDIT AUTHORIZATION AUTOINCREMENT AVG
    BEFORE BEGIN BETWEEN BIGINT BINARY BLOB BOOLEAN BOTH BY CALL CALLED CASCADE CASCADED CASE CAST
    CATALOG CHANGE CHAR CHARACTER CHECK CLOB CLOSE CLUSTER COLLATE COLLATION COLUMN COLUMNS COMMENT
    COMMIT COMPRESS CONDITION CONFLICT CONNECT CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT
    CORRESPONDING COUNT CREATE CROSS CUBE CURRENT CURRENT_DATE CURRENT_ROLE CURRENT_TIME
    CURRENT_TIMESTAMP CURRENT_USER CURSOR CYCLE DATA DATABASE DATABASES DATE DAY DEALLOCATE DEC
    DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DETACH DETERMINISTIC
    DISTINCT DISTINCTROW DIV DO DOUBLE DROP DUAL EACH ELSE ELSEIF END ESCAPE EXCEPT EXCLUDE
    EXCLUSIVE EXEC EXECUTE EXISTS EXIT EXPLAIN EXTERNAL EXTRACT FAIL FALSE FETCH FILE FILTER
    FIRST FLOAT FOLLOWING FOR FOREIGN FROM FULL FUNCTION GENERATED GET GLOB GLOBAL GRANT GROUP
    GROUPS HAVING HOUR IDENTIFIED IDENTITY IF IGNORE ILIKE IMMEDIATE IMMEDIATELY IN INCREMENT
    INDEX INDEXED INITIAL INITIALLY INNER INOUT INSENSITIVE INSERT INSTEAD INT INTEGER INTERSECT
    INTERVAL INTO IS ISNULL ISOLATION JOIN KEY KEYS KILL LANGUAGE LAST LATERAL LEADING LEAVE LEFT
    LEVEL LIKE LIMIT LOCAL LOCALTIME LOCALTIMESTAMP LOCK LONG LOOP MATCH MATERIALIZED MAXEXTENTS
    MERGE MINUS MINUTE MLSLABEL MOD MODE MODIFY MONTH NATIONAL NATURAL NCHAR NO NOAUDIT NOCOMPRESS
    NOT NOTHING NOTNULL NOWAIT NULL NULLS NUMBER NUMERIC OF OFFLINE OFFSET ON ONLINE ONLY OPEN
    OPTION OR ORDER OTHERS OUT OUTER OUTFILE OVER OVERLAPS PARTITION PCTFREE PLAN POSITION PRAGMA
    PRECEDING PRECISION PREPARE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC QUERY RAISE RANGE RAW
    READ READS REAL RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPEAT REPLACE REQUIRE
    RESOURCE RESTRICT RETURN RETURNING REVOKE RIGHT RLIKE ROLLBACK ROLLUP ROW ROWID ROWNUM ROWS
    SAVEPOINT SCHEMA SCHEMAS SECOND SELECT SESSION SESSION_USER SET SHARE SHOW SIMILAR SIZE
    SMALLINT SOME SQL START STATEMENT SUCCESSFUL SYMMETRIC SYNONYM SYSDATE SYSTEM_USER TABLE
    TABLESAMPLE TEMP TEMPORARY THEN TIES TIME TIMESTAMP TO TRAILING TRANSACTION TRIGGER TRUE
    TRUNCATE UID UNBOUNDED UNION UNIQUE UNKNOWN UNLOCK UNSIGNED UNTIL UPDATE USAGE USE USER USING
    VACUUM VALIDATE VALUE VALUES VARCHAR VARCHAR2 VARIADIC VARYING VERBOSE VIEW VIRTUAL WHEN
    WHENEVER WHERE WHILE WINDOW WITH WITHIN WITHOUT WRITE XOR YEAR ZONE
    """
)
