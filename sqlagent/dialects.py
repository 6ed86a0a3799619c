"""The SQL dialects sqlagent targets, and their identifier rules."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from sqlagent.errors import ConfigError, DialectError

__all__ = [
    "DIALECTS",
    "PURE_BUILTINS",
    "RESERVED_WORDS",
    "analysis_dialect",
    "dialect_from_url",
    "is_system_relation",
    "catalog_key",
    "normalize_key",
    "resolve_dialect",
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


def dialect_from_url(url: str) -> str:
    """The dialect of a SQLAlchemy URL such as ``postgresql+psycopg://...``."""
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    return resolve_dialect(backend)


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


#: Pure built-in functions of each engine that sqlglot does not type, so they would otherwise
#: reach the allow-list as anonymous calls. Admitted only if they have no side effects, read no
#: files, network, session or server state, take no locks, and never execute SQL text (which is
#: why PostgreSQL's query_to_xml, MySQL's SLEEP/GET_LOCK/LOAD_FILE, SQLite's load_extension and
#: every DBMS_*/UTL_* package stay out). Enabled by SafetyConfig(pure_builtins=True), the default.
PURE_BUILTINS: dict[str, frozenset[str]] = {
    "sqlite": _names(
        "date time datetime julianday unixepoch strftime timediff printf format total ifnull iif "
        "instr substr substring ltrim rtrim trim char unicode hex soundex likely unlikely "
        "likelihood sign typeof quote concat concat_ws octet_length"
    ),
    "postgres": _names(
        "age make_date make_time make_timestamp make_timestamptz make_interval date_part "
        "justify_days justify_hours justify_interval to_timestamp to_date every bool_and bool_or "
        "array_length cardinality ltrim rtrim btrim lpad rpad strpos starts_with chr initcap "
        "reverse repeat translate regexp_match width_bucket trunc div gcd lcm factorial "
        "clock_timestamp statement_timestamp transaction_timestamp isfinite date_bin "
        "quote_literal quote_ident string_to_array array_to_string"
    ),
    "mysql": _names(
        "now sysdate curdate curtime current_date current_time current_timestamp utc_date "
        "utc_time utc_timestamp unix_timestamp from_unixtime find_in_set field elt locate instr "
        "lpad rpad char_length character_length datediff date_format timestampdiff timestampadd "
        "makedate maketime sec_to_time time_to_sec dayofmonth dayofweek dayofyear weekday yearweek "
        "to_days from_days period_add period_diff str_to_date last_day ifnull isnull strcmp space "
        "oct bin conv crc32 truncate mid ord"
    ),
    "oracle": _names(
        "trunc last_day instr substr lpad rpad ltrim rtrim initcap regexp_instr regexp_count "
        "listagg to_timestamp numtodsinterval numtoyminterval mod remainder power nanvl"
    ),
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
