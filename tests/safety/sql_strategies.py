"""Hypothesis strategies for the safety core's property tests (see ``test_properties.py``).

Everything here is built from the fixture catalog (``tests/fixtures/catalog.json``): a vocabulary
for token soup, ~30 legitimate read queries to mutate, write/DDL/session constructs to smuggle into
queries, and a small query grammar whose output is valid SQL for every target dialect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

__all__ = [
    "CATALOG_PATH",
    "COLUMNS",
    "DIALECTS",
    "SEED_TEMPLATES",
    "Smuggled",
    "grammar_queries",
    "mutated_queries",
    "quote",
    "render",
    "smuggled_writes",
    "star_expression_queries",
    "token_soup",
]

CATALOG_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "catalog.json"
DIALECTS = ("sqlite", "postgres", "mysql", "oracle")

#: table -> column -> declared type, exactly as the fixture catalog spells them.
COLUMNS: dict[str, dict[str, str]] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))

_NUMERIC = frozenset({"INTEGER", "REAL", "NUMERIC"})
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Names of the fixture catalog that are reserved words somewhere: always quoted.
_RESERVED = frozenset({"order", "group", "from", "select", "role", "period", "name", "location"})


def quote(name: str, dialect: str) -> str:
    """``name`` as an identifier that resolves to the catalog object of that name in ``dialect``.

    Oracle folds unquoted names to upper case and the catalog's lower-case names are
    case-insensitive there, so a quoted lower-case name is written in upper case.
    """
    if _PLAIN_NAME.fullmatch(name) and name not in _RESERVED:
        return name
    if dialect == "mysql":
        return f"`{name}`"
    if dialect == "oracle" and name == name.lower():
        return f'"{name.upper()}"'
    return f'"{name}"'


def _limit(k: int, dialect: str, offset: int | None = None) -> str:
    if dialect == "oracle":
        skip = f" OFFSET {offset} ROWS" if offset is not None else ""
        return f"{skip} FETCH FIRST {k} ROWS ONLY"
    return f" LIMIT {k}" + (f" OFFSET {offset}" if offset is not None else "")


_QUOTE_PLACEHOLDER = re.compile(r"\{q:([A-Za-z_]+)\}")
_LIMIT_PLACEHOLDER = re.compile(r"\{limit:(\d+)(?::(\d+))?\}")


def render(template: str, dialect: str) -> str:
    """A query template in ``dialect``: ``{q:name}`` is an identifier, ``{limit:k[:offset]}`` a
    row limit (``LIMIT`` or ``FETCH FIRST``). Templates keep examples portable across dialects.
    """
    sql = _QUOTE_PLACEHOLDER.sub(lambda m: quote(m.group(1), dialect), template)
    return _LIMIT_PLACEHOLDER.sub(
        lambda m: _limit(int(m.group(1)), dialect, None if m.group(2) is None else int(m.group(2))),
        sql,
    )


# -- 1. token soup ---------------------------------------------------------------------------------
_KEYWORDS = """
SELECT FROM WHERE GROUP BY HAVING ORDER LIMIT OFFSET FETCH FIRST NEXT ROWS ONLY UNION ALL INTERSECT
EXCEPT MINUS WITH RECURSIVE AS JOIN LEFT RIGHT FULL OUTER INNER CROSS NATURAL ON USING AND OR NOT IN
EXISTS BETWEEN LIKE ILIKE GLOB IS NULL TRUE FALSE CASE WHEN THEN ELSE END DISTINCT CAST INTERVAL
OVER PARTITION WINDOW LATERAL VALUES ANY SOME ESCAPE COLLATE INSERT INTO UPDATE SET DELETE MERGE
REPLACE UPSERT CREATE TEMP TABLE VIEW INDEX TRIGGER DROP ALTER RENAME TRUNCATE GRANT REVOKE PRAGMA
ATTACH DETACH DATABASE COPY LOAD DATA INFILE OUTFILE DUMPFILE FOR SHARE LOCK NOWAIT SKIP LOCKED
RETURNING EXPLAIN DESCRIBE SHOW USE CALL EXEC EXECUTE BEGIN COMMIT ROLLBACK SAVEPOINT DECLARE
PREPARE DEALLOCATE HANDLER DO KILL VACUUM ANALYZE REINDEX CONNECT PRIOR START LEVEL DUAL ROWNUM
SYSDATE MATCHED CONFLICT NOTHING IGNORE DEFAULT GLOBAL SESSION LOCAL
"""
_FUNCTIONS = """
COUNT( SUM( AVG( MIN( MAX( UPPER( LENGTH( COALESCE( ROW_NUMBER() pg_sleep( sleep( benchmark(
load_extension( LOAD_FILE( set_config( current_setting( lo_import( pg_read_file( dblink(
randomblob( nextval( dbms_random.value( utl_file.fopen( sys_exec( version() json_extract(
"""
_IDENTIFIERS = [
    *COLUMNS,
    *{c for cols in COLUMNS.values() for c in cols},
    '"order"', "`order`", "[order]", '"Invoice"', '"InvoiceId"', '"group"', "`select`",
    '"ORDER"', "e", "d", "t", "x", "e.id", "e.salary", "d.name", "e.*", "main.employees",
    "public.employees", "sqlite_master", "pg_catalog.pg_class", "information_schema.tables",
    "mysql.user", "all_users", "dual", "pg_shadow", "sys.user$",
]  # fmt: skip
_OPERATORS = [
    "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "||", ":=", "::", ".", ",",
    "(", ")", "[", "]", "{", "}", "->", "->>", "#>", "@>", "<@", "?", "?|", "&", "|", "^", "~",
    "<<", ">>", "@", "@@", "$1", ":x", ":1", "@x", "@@version", "\\", "\\\\",
]  # fmt: skip
_LITERALS = [
    "1", "0", "-1", "3.14", "1e10", ".5", "0x41", "x'41'", "X'4142'", "b'01'", "N'x'", "E'\\n'",
    "'a'", "'it''s'", "''", "'--'", "'/*'", "';'", "$$x$$", "$tag$y$tag$", "q'[z]'", "NULL",
    "DATE '2024-01-01'", "'\\''", '"x"',
]  # fmt: skip
_MARKERS = [
    "'", '"', "`", "[", "]", "$$", ";", ";;", "--", "-- ", "--\n", "/*", "*/", "/**/", "/*!",
    "/*!50000", "/*M!", "#", "# ", "\\", "\x00", "\n", "\r", "\t", "\x0b", "\x0c", "\u2028",
    "\u00a0", "\ufeff", "é", "🙂",
]  # fmt: skip

VOCABULARY: tuple[str, ...] = (
    *_KEYWORDS.split(),
    *_FUNCTIONS.split(),
    *_IDENTIFIERS,
    *_OPERATORS,
    *_LITERALS,
    *_MARKERS,
)
_SEPARATORS = [" ", " ", " ", "", "\n", "\t", "  ", "\r\n", "/**/", "/* c */", "-- c\n"]


@st.composite
def token_soup(draw: st.DrawFn) -> str:
    """SQL-ish noise: vocabulary tokens (and a few random snippets) joined by random separators."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 40))):
        token = draw(
            st.sampled_from(VOCABULARY) | st.text(max_size=3) | st.integers().map(str),
        )
        parts.extend((token, draw(st.sampled_from(_SEPARATORS))))
    if draw(st.booleans()):
        parts.insert(0, "SELECT ")
    return "".join(parts)


# -- 2. legitimate queries and their mutations -----------------------------------------------------
#: Read queries over the fixture catalog; templates for :func:`render`.
SEED_TEMPLATES: tuple[str, ...] = (
    "SELECT id, first_name, last_name FROM employees",
    "SELECT * FROM departments",
    "SELECT e.first_name, d.{q:name} FROM employees e JOIN departments d ON e.department_id = d.id",
    "SELECT department_id, COUNT(*) AS n FROM employees GROUP BY department_id HAVING COUNT(*) > 1",
    "SELECT first_name, salary FROM employees WHERE salary > 50000 ORDER BY salary DESC{limit:10}",
    "SELECT {q:name} FROM projects WHERE budget BETWEEN 1000 AND 5000",
    "SELECT e.first_name FROM employees e WHERE e.id IN (SELECT employee_id FROM assignments)",
    "SELECT d.{q:name} FROM departments d "
    "WHERE EXISTS (SELECT 1 FROM employees e WHERE e.department_id = d.id)",
    "WITH dept_totals AS (SELECT department_id, SUM(salary) AS total FROM employees "
    "GROUP BY department_id) SELECT d.{q:name}, t.total FROM departments d "
    "JOIN dept_totals t ON t.department_id = d.id",
    "SELECT first_name FROM employees UNION SELECT {q:name} FROM departments",
    "SELECT id FROM employees INTERSECT SELECT employee_id FROM payroll",
    "SELECT id FROM employees EXCEPT SELECT employee_id FROM assignments",
    "SELECT p.{q:name}, a.{q:role}, a.hours_per_week FROM projects p "
    "LEFT JOIN assignments a ON a.project_id = p.id",
    "SELECT e.first_name, m.first_name AS manager FROM employees e "
    "LEFT JOIN employees m ON e.manager_id = m.id",
    "SELECT title, AVG(salary), MIN(salary), MAX(salary) FROM employees GROUP BY title "
    "ORDER BY title",
    "SELECT CASE WHEN salary > 100000 THEN 'high' ELSE 'low' END AS band, COUNT(*) AS n "
    "FROM employees GROUP BY CASE WHEN salary > 100000 THEN 'high' ELSE 'low' END",
    "SELECT first_name, ROW_NUMBER() OVER (PARTITION BY department_id ORDER BY salary DESC) AS rn "
    "FROM employees",
    "SELECT COUNT(DISTINCT department_id) AS n FROM employees",
    "SELECT first_name FROM employees WHERE last_name LIKE 'S%' AND hire_date >= '2020-01-01'",
    "SELECT x.total FROM (SELECT SUM(gross_pay + bonus) AS total FROM payroll) x",
    "SELECT employee_id, SUM(gross_pay) AS gross FROM payroll WHERE {q:period} = '2024-01' "
    "GROUP BY employee_id",
    "SELECT o.{q:group}, o.{q:from}, o.{q:select} FROM {q:order} o WHERE o.id > 3",
    "SELECT {q:InvoiceId}, {q:Total} FROM {q:Invoice} WHERE {q:BillingCountry} = 'France'",
    "SELECT UPPER(first_name) AS f, LENGTH(last_name) AS l FROM employees",
    "SELECT COALESCE(manager_id, 0) AS m FROM employees",
    "SELECT first_name FROM employees WHERE department_id IS NULL "
    "OR department_id NOT IN (1, 2, 3)",
    "SELECT e.first_name, p.{q:name} FROM employees e JOIN assignments a ON a.employee_id = e.id "
    "JOIN projects p ON p.id = a.project_id WHERE p.end_date IS NOT NULL",
    "SELECT d.{q:location}, SUM(d.budget) AS b FROM departments d GROUP BY d.{q:location} "
    "HAVING SUM(d.budget) > 0 ORDER BY 2 DESC",
    "SELECT first_name FROM employees e WHERE salary = (SELECT MAX(salary) FROM employees)",
    "SELECT first_name, salary / 12 AS monthly FROM employees WHERE manager_id IS NOT NULL"
    "{limit:10}",
    "SELECT COUNT(*) AS n FROM employees e LEFT JOIN payroll p ON p.employee_id = e.id "
    "WHERE p.bonus > 0 OR p.bonus IS NULL",
)

_MUTATION_TOKENS = (
    ";", "'", '"', "`", "(", ")", "--", "/*", "*/", "/*!", "#", "SELECT", "FROM", "WHERE",
    "UNION", "INTO", "DROP", "DELETE", "UPDATE", "SET", "RETURNING", "FOR UPDATE", "LIMIT", ",",
    "*", "NULL", "'x'", "1", "e.", "\n", "\\", "$$", ":=", "@x",
)  # fmt: skip
_TOKEN_SPLIT = re.compile(r"(\s+|[(),;])")


def _tokens(sql: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(sql) if t]


Mutation = Callable[[st.DrawFn, list[str]], list[str]]


def _delete(draw: st.DrawFn, toks: list[str]) -> list[str]:
    i = draw(st.integers(0, len(toks) - 1))
    return toks[:i] + toks[i + 1 :]


def _duplicate(draw: st.DrawFn, toks: list[str]) -> list[str]:
    i = draw(st.integers(0, len(toks) - 1))
    return [*toks[: i + 1], toks[i], *toks[i + 1 :]]


def _swap(draw: st.DrawFn, toks: list[str]) -> list[str]:
    i, j = draw(st.integers(0, len(toks) - 1)), draw(st.integers(0, len(toks) - 1))
    toks = list(toks)
    toks[i], toks[j] = toks[j], toks[i]
    return toks


def _insert(draw: st.DrawFn, toks: list[str]) -> list[str]:
    i = draw(st.integers(0, len(toks)))
    return [*toks[:i], " ", draw(st.sampled_from(_MUTATION_TOKENS)), " ", *toks[i:]]


def _truncate(draw: st.DrawFn, toks: list[str]) -> list[str]:
    text = "".join(toks)
    return [text[: draw(st.integers(0, len(text)))]]


def _splice(draw: st.DrawFn, toks: list[str]) -> list[str]:
    other = _tokens(render(draw(st.sampled_from(SEED_TEMPLATES)), "sqlite"))
    i, j = draw(st.integers(0, len(toks))), draw(st.integers(0, len(other)))
    return toks[:i] + other[j:]


def _change_case(draw: st.DrawFn, toks: list[str]) -> list[str]:
    i = draw(st.integers(0, len(toks) - 1))
    how = draw(st.sampled_from([str.upper, str.lower, str.swapcase, str.title]))
    return [*toks[:i], how(toks[i]), *toks[i + 1 :]]


_MUTATIONS: tuple[Mutation, ...] = (
    _delete, _duplicate, _swap, _insert, _truncate, _splice, _change_case,
)  # fmt: skip


@st.composite
def mutated_queries(draw: st.DrawFn, dialect: str) -> str:
    """A seed query after 1-5 random token-level mutations."""
    toks = _tokens(render(draw(st.sampled_from(SEED_TEMPLATES)), dialect))
    for _ in range(draw(st.integers(1, 5))):
        if not toks:
            break
        toks = draw(st.sampled_from(_MUTATIONS))(draw, toks)
    return "".join(toks)


# -- 3. smuggled writes ----------------------------------------------------------------------------
#: Statements that change data, schema, files or session state (some only in some dialects).
WRITES: tuple[str, ...] = (
    "INSERT INTO employees (id) VALUES (1)",
    "INSERT INTO employees SELECT * FROM employees",
    "UPDATE employees SET salary = 0",
    "DELETE FROM employees",
    "REPLACE INTO employees (id) VALUES (1)",
    "MERGE INTO employees e USING departments d ON (e.id = d.id) "
    "WHEN MATCHED THEN UPDATE SET salary = 0",
    "DROP TABLE employees",
    "CREATE TABLE evil AS SELECT * FROM employees",
    "CREATE TEMP VIEW v AS SELECT 1",
    "ALTER TABLE employees ADD COLUMN x INT",
    "TRUNCATE TABLE employees",
    "GRANT ALL ON employees TO PUBLIC",
    "REVOKE ALL ON employees FROM PUBLIC",
    "PRAGMA writable_schema = 1",
    "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "DETACH DATABASE evil",
    "COPY employees TO '/tmp/out.csv'",
    "COPY employees FROM PROGRAM 'id'",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE employees",
    "SET search_path = evil",
    "SET @x = 1",
    "SET GLOBAL general_log = 1",
    "BEGIN",
    "START TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "USE mysql",
    "CALL evil()",
    "EXECUTE stmt",
    "EXEC sp_who",
    "DO 1",
    "VACUUM",
    "ANALYZE employees",
    "LOCK TABLE employees IN EXCLUSIVE MODE",
    "KILL 1",
    "DECLARE x INT",
    "COMMENT ON TABLE employees IS 'x'",
    "PREPARE s AS SELECT 1",
    "DEALLOCATE s",
    "REFRESH MATERIALIZED VIEW v",
    "EXPLAIN ANALYZE DELETE FROM employees",
    "SHOW TABLES",
    "DESCRIBE employees",
)
#: DML with RETURNING, for CTEs and subqueries (PostgreSQL runs data-modifying CTEs).
RETURNING_WRITES: tuple[str, ...] = (
    "INSERT INTO employees (id) VALUES (1) RETURNING *",
    "UPDATE employees SET salary = 0 RETURNING id",
    "DELETE FROM employees RETURNING *",
    "DELETE FROM employees RETURNING id, first_name",
)
#: Read queries that end in a write clause (into a table or file, row locks, assignments).
WRITE_SUFFIXES: tuple[str, ...] = (
    "SELECT * INTO evil FROM employees",
    "SELECT id INTO @x FROM employees",
    "SELECT * FROM employees INTO OUTFILE '/tmp/x'",
    "SELECT * FROM employees INTO DUMPFILE '/tmp/x'",
    "SELECT id FROM employees INTO @x",
    "SELECT * FROM employees FOR UPDATE",
    "SELECT * FROM employees FOR SHARE",
    "SELECT * FROM employees FOR UPDATE NOWAIT",
    "SELECT * FROM employees FOR UPDATE SKIP LOCKED",
    "SELECT * FROM employees LOCK IN SHARE MODE",
    "SELECT id FROM employees WHERE id = 1 FOR UPDATE OF employees",
    "SELECT @x := salary FROM employees",
    "SELECT set_config('role', 'admin', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT LOAD_FILE('/etc/passwd')",
    "SELECT nextval('seq')",
    "SELECT dblink_exec('dbname=x', 'DROP TABLE employees')",
    "SELECT pg_terminate_backend(1)",
    "SELECT sys_exec('id')",
    "SELECT dbms_xmlgen.getxml('DELETE FROM employees') FROM dual",
    "SELECT utl_file.fopen('/tmp', 'x', 'w') FROM dual",
)
_READS: tuple[str, ...] = (
    "SELECT 1",
    "SELECT id FROM employees",
    "SELECT * FROM departments WHERE id = 1",
)

#: Where a write goes; ``live`` templates run the write, the others keep it inside a comment.
_LIVE_TEMPLATES: tuple[str, ...] = (
    "{w}",
    "{r}; {w}",
    "{r};{w};",
    "{w}; {r}",
    "{r} ; {w} ; {r}",
    "/* c */ {w}",
    "-- c\n{w}",
    "{r} /* c */; {w}",
    "{r} -- c\n; {w}",
    "{r};\n-- c\n{w}",
    "({w})",
    "WITH x AS (SELECT 1) {w}",
    "{r} /*! ; {w} */",
    "/*! {w} */",
    "/*!50000 {w} */",
    "/*M! {w} */",
    "{r} /*!50000 UNION {w} */",
    "SELECT 1 /*!, ({w}) */",
)
_LIVE_RETURNING_TEMPLATES: tuple[str, ...] = (
    "WITH x AS ({w}) SELECT * FROM x",
    "WITH a AS (SELECT 1), x AS ({w}) SELECT * FROM a",
    "WITH x AS ({w}) SELECT 1",
    "SELECT * FROM ({w}) x",
    "SELECT * FROM employees WHERE id IN ({w})",
    "SELECT ({w})",
    "SELECT * FROM employees WHERE EXISTS ({w})",
    "{r} UNION ALL SELECT * FROM ({w}) x",
)
_DEAD_TEMPLATES: tuple[str, ...] = (
    "{r} /* {w} */",
    "{r} /* ; {w} */",
    "{r} -- ; {w}",
    "/* {w} */ {r}",
    "-- {w}\n{r}",
    "{r} -- c\n-- {w}",
)
_SPACES = (" ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\t ", "/**/", " /* c */ ", "\x0c")


@dataclass(frozen=True, slots=True)
class Smuggled:
    sql: str
    live: bool  # the text runs a write (or a side-effecting function) when executed


def _randomize_case(draw: st.DrawFn, sql: str) -> str:
    # Changes letters outside quotes only, so identifiers and string literals keep their meaning.
    flips = draw(st.lists(st.booleans(), min_size=len(sql), max_size=len(sql)))
    out: list[str] = []
    quote_char: str | None = None
    for ch, flip in zip(sql, flips, strict=True):
        if quote_char is None and ch in "'\"`":
            quote_char = ch
        elif quote_char is not None and ch == quote_char:
            quote_char = None
        out.append(ch.swapcase() if flip and quote_char is None and ch.isascii() else ch)
    return "".join(out)


def _randomize_spaces(draw: st.DrawFn, sql: str) -> str:
    # Only single spaces outside quotes become other whitespace (or an empty comment).
    out: list[str] = []
    quote_char: str | None = None
    for ch in sql:
        if quote_char is None and ch in "'\"`":
            quote_char = ch
        elif quote_char is not None and ch == quote_char:
            quote_char = None
        out.append(draw(st.sampled_from(_SPACES)) if ch == " " and quote_char is None else ch)
    return "".join(out)


@st.composite
def smuggled_writes(draw: st.DrawFn) -> Smuggled:
    """A read query carrying a write somewhere: stacked, in a CTE or subquery, as a suffix ..."""
    kind = draw(st.sampled_from(["plain", "returning", "suffix", "dead"]))
    read = draw(st.sampled_from(_READS))
    if kind == "plain":
        sql = draw(st.sampled_from(_LIVE_TEMPLATES)).format(w=draw(st.sampled_from(WRITES)), r=read)
    elif kind == "returning":
        template = draw(st.sampled_from(_LIVE_RETURNING_TEMPLATES + _LIVE_TEMPLATES))
        sql = template.format(w=draw(st.sampled_from(RETURNING_WRITES)), r=read)
    elif kind == "suffix":
        sql = draw(st.sampled_from(WRITE_SUFFIXES))
        if draw(st.booleans()):
            sql = draw(st.sampled_from(["{r} UNION ALL {w}", "SELECT * FROM ({w}) x"])).format(
                r=read, w=sql
            )
    else:
        sql = draw(st.sampled_from(_DEAD_TEMPLATES)).format(w=draw(st.sampled_from(WRITES)), r=read)
        return Smuggled(sql, live=False)
    if draw(st.booleans()):
        sql = _randomize_case(draw, sql)
    if draw(st.booleans()):
        sql = _randomize_spaces(draw, sql)
    return Smuggled(sql, live=True)


# -- 4. a small grammar of valid read queries ------------------------------------------------------
_COMPARISONS = ("=", "<>", "<", ">", "<=", ">=")
#: Tables the grammar reads, most-used first (the policy roles can read the first two).
GRAMMAR_TABLES: tuple[str, ...] = (
    "employees", "departments", "projects", "assignments", "payroll", "order", "Invoice",
)  # fmt: skip


# Columns drawn more often: the policy roles' grants (and the analyst's masked salary).
_HOT_COLUMNS: dict[str, tuple[str, ...]] = {"employees": ("id", "first_name", "salary")}


def _column(draw: st.DrawFn, table: str) -> tuple[str, str]:
    """A column of ``table`` and its declared type."""
    columns = sorted(COLUMNS[table].items())
    hot = [(c, COLUMNS[table][c]) for c in _HOT_COLUMNS.get(table, ())]
    choices = st.sampled_from(columns)
    return draw(choices | st.sampled_from(hot) if hot else choices)


@dataclass(frozen=True, slots=True)
class _Source:
    table: str
    alias: str

    def col(self, column: str) -> str:
        return f"{self.alias}.{{q:{column}}}"


def _literal(draw: st.DrawFn, type_: str) -> str:
    if type_ in _NUMERIC:
        return str(draw(st.integers(-5, 400)))
    return draw(st.sampled_from(["'a'", "'A%'", "'2020-01-01'", "'x'", "''"]))


def _condition(draw: st.DrawFn, sources: list[_Source]) -> str:
    src = draw(st.sampled_from(sources))
    column, type_ = _column(draw, src.table)
    ref = src.col(column)
    form = draw(st.integers(0, 5))
    if form == 0:
        return f"{ref} IS NULL" if draw(st.booleans()) else f"{ref} IS NOT NULL"
    if form == 1:
        items = draw(st.lists(st.integers(0, 300).map(str), min_size=1, max_size=4))
        return f"{ref} IN ({', '.join(items)})"
    if form == 2 and type_ not in _NUMERIC:
        pattern = draw(st.sampled_from(["'a%'", "'%e%'", "'S%'"]))
        return f"{ref} LIKE {pattern}"
    if form == 3:
        lo = draw(st.integers(0, 200))
        return f"{ref} BETWEEN {lo} AND {lo + draw(st.integers(0, 200))}"
    if form == 4 and src.table == "employees":
        inner = "SELECT employee_id FROM assignments WHERE hours_per_week > 10"
        return f"{src.col('id')} IN ({inner})"
    return f"{ref} {draw(st.sampled_from(_COMPARISONS))} {_literal(draw, type_)}"


def _projection(draw: st.DrawFn, sources: list[_Source]) -> tuple[str, bool]:
    """One select-list item, and whether it is an aggregate."""
    src = draw(st.sampled_from(sources))
    column, type_ = _column(draw, src.table)
    ref = src.col(column)
    form = draw(st.integers(0, 6))
    if form == 1:
        func = draw(
            st.sampled_from(["COUNT", "MIN", "MAX"] + (["SUM", "AVG"] * (type_ in _NUMERIC)))
        )
        return f"{func}({ref})", True
    if form == 2:
        return "COUNT(*)", True
    if form == 3 and type_ in _NUMERIC:
        return f"{ref} + {draw(st.integers(0, 9))}", False
    if form == 4 and type_ not in _NUMERIC:
        return f"UPPER({ref})", False
    return ref, False


@st.composite
def _select(
    draw: st.DrawFn,
    tables: tuple[str, ...] = GRAMMAR_TABLES,
    arity: int | None = None,
    tail: bool = True,
) -> tuple[str, int]:
    """A SELECT over one table (or employees JOIN departments) and its number of columns."""
    if draw(st.integers(0, 4)) == 0:
        sources = [_Source("employees", "e"), _Source("departments", "d")]
        from_ = (
            f"employees e {draw(st.sampled_from(['JOIN', 'LEFT JOIN']))} departments d "
            "ON e.department_id = d.id"
        )
    else:
        table = draw(st.sampled_from(tables))
        sources = [_Source(table, "t0")]
        from_ = f"{{q:{table}}} t0"
    n = arity if arity is not None else draw(st.integers(1, 3))
    if arity is None and draw(st.integers(0, 5)) == 0:
        star = draw(st.sampled_from(["*", *(f"{s.alias}.*" for s in sources)]))
        items, aggregates, n = [(star, False)], False, 0
    else:
        items = [_projection(draw, sources) for _ in range(n)]
        aggregates = any(agg for _, agg in items)
    select_list = ", ".join(f"{expr} AS c{i}" for i, (expr, _) in enumerate(items))
    if n == 0:
        select_list = items[0][0]
    distinct = "DISTINCT " if draw(st.integers(0, 5)) == 0 else ""
    sql = f"SELECT {distinct}{select_list} FROM {from_}"
    if draw(st.booleans()):
        conditions = [_condition(draw, sources) for _ in range(draw(st.integers(1, 3)))]
        joiner = draw(st.sampled_from([" AND ", " OR "]))
        sql += " WHERE " + joiner.join(conditions)
    plain = [expr for expr, agg in items if not agg]
    if aggregates and plain:
        sql += " GROUP BY " + ", ".join(plain)
        if draw(st.booleans()):
            sql += f" HAVING COUNT(*) > {draw(st.integers(0, 3))}"
    if tail:
        sql += _tail(draw, n)
    return sql, n


def _tail(draw: st.DrawFn, arity: int) -> str:
    out = ""
    if arity and draw(st.booleans()):
        position = draw(st.integers(1, arity))
        out += f" ORDER BY {position} {draw(st.sampled_from(['ASC', 'DESC']))}"
    if draw(st.booleans()):
        offset = draw(st.none() | st.integers(0, 20))
        k = draw(st.integers(0, 500))
        out += f"{{limit:{k}}}" if offset is None else f"{{limit:{k}:{offset}}}"
    return out


@st.composite
def grammar_queries(draw: st.DrawFn, tables: tuple[str, ...] = GRAMMAR_TABLES) -> str:
    """A template (see :func:`render`) of a valid read query for every dialect: a SELECT, a set
    operation of two, or a SELECT over a derived table."""
    shape = draw(st.sampled_from(["select", "select", "setop", "derived"]))
    if shape == "select":
        return draw(_select(tables))[0]
    if shape == "setop":
        left, n = draw(_select(tables, tail=False))
        if n == 0:  # a star: give both branches the same shape
            return left + _tail(draw, 0)
        right, _ = draw(_select(tables, arity=n, tail=False))
        op = draw(st.sampled_from(["UNION", "UNION ALL", "INTERSECT", "EXCEPT"]))
        return f"{left} {op} {right}{_tail(draw, n)}"
    inner, n = draw(_select(tables))
    outer = "sub.*" if n == 0 else ", ".join(f"sub.c{i}" for i in range(n))
    return f"SELECT {outer} FROM ({inner}) sub{_tail(draw, n)}"


# -- 5. stars inside expressions -------------------------------------------------------------------
# In PostgreSQL ``t.*`` inside an expression is the whole row of ``t`` (every column, granted or
# not): ``CAST(t.* AS TEXT)``, ``CONCAT(t.*)``, ``ARRAY_AGG(t.*)`` ... A policy rewrite must expand
# or refuse every star it lets through; only a bare ``COUNT(*)`` reads no column.
_STAR_EXPRESSIONS: tuple[str, ...] = (
    "{s}", "({s})", "CAST({s} AS TEXT)", "CONCAT({s})", "CONCAT_WS(',', {s})", "COALESCE({s})",
    "GREATEST({s})", "ARRAY[{s}]", "ARRAY_AGG({s})", "{s} IS NULL", "UPPER(CAST({s} AS TEXT))",
)  # fmt: skip
_STAR_PLACES: tuple[str, ...] = (
    "SELECT {e} FROM {t}",
    "SELECT {e} AS v, t0.id FROM {t}",
    "SELECT t0.id FROM {t} WHERE {e} IS NOT NULL",
    "SELECT t0.id FROM {t} ORDER BY {e}",
    "WITH c AS (SELECT {e} AS v FROM {t}) SELECT v FROM c",
    "SELECT x.v FROM (SELECT {e} AS v FROM {t}) x",
    "SELECT t0.id FROM {t} WHERE t0.id IN (SELECT t0.id FROM {t} WHERE {e} IS NOT NULL)",
)


@st.composite
def star_expression_queries(draw: st.DrawFn) -> str:
    """A template whose star sits inside an expression, not alone in the select list."""
    table = draw(st.sampled_from(["employees", "departments", "payroll"]))
    star = draw(st.sampled_from(["t0.*", "*"]))
    expr = draw(st.sampled_from(_STAR_EXPRESSIONS)).format(s=star)
    place = draw(st.sampled_from(_STAR_PLACES))
    return place.format(e=expr, t=f"{{q:{table}}} t0")
