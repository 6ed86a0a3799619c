"""Find the SQL in a model's answer: code fences, tags, JSON fields and bare statements in prose.

Extraction only *finds* statements; it judges nothing. A ``DELETE`` in a ```` ```sql ```` block is
returned like any other candidate so that the safety core can refuse it with feedback the model
can act on. The rules are written against real answers of small and large models (SmolLM, Qwen,
GPT-style): fences that are never closed (the answer hit ``max_tokens``), ``<think>`` blocks,
special tokens left in the text, several queries, and explanations that mention ``SELECT`` after
the real query.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlagent.errors import NoSQLFoundError

__all__ = ["extract_first_sql", "extract_sql"]

_EXCERPT_CHARS = 120

#: Info strings that mark a fenced block as SQL (besides any tag starting with "sql").
_SQL_TAGS = frozenset(
    {"postgres", "postgresql", "pgsql", "psql", "mysql", "mariadb", "tsql", "plsql", "oracle"}
    | {"duckdb", "bigquery", "snowflake", "hive", "sparksql", "trino", "presto"}
)
#: Info strings of blocks that may hold SQL without saying so.
_PLAIN_TAGS = frozenset({"", "text", "txt", "plain", "plaintext", "code", "query", "output"})
#: First words of a statement, for untagged blocks: broad on purpose (the safety core judges).
_STATEMENT_WORDS = frozenset(
    {"select", "with", "values", "insert", "update", "delete", "merge", "replace", "upsert"}
    | {"create", "drop", "alter", "truncate", "grant", "revoke", "explain", "pragma", "attach"}
    | {"copy", "call", "exec", "execute", "set", "begin", "commit", "rollback", "vacuum"}
)
#: Words that continue a SQL statement; a line starting like prose with one of these is SQL.
_SQL_WORDS = frozenset(
    {"select", "from", "where", "join", "inner", "left", "right", "full", "outer", "cross"}
    | {"natural", "on", "using", "and", "or", "not", "in", "is", "like", "ilike", "between"}
    | {"as", "by", "group", "order", "having", "limit", "offset", "fetch", "union", "all"}
    | {"intersect", "except", "minus", "desc", "asc", "case", "when", "then", "else", "end"}
    | {"distinct", "with", "over", "partition", "null", "exists", "count", "sum", "avg"}
    | {"min", "max", "cast", "coalesce", "rows", "only", "first"}
)

_SPECIAL_TOKENS = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?s>|<eos>|<end_of_turn>|<start_of_turn>")
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.S | re.I)
_SQL_TAG = re.compile(r"<sql>(.*?)(?:</sql>|\Z)", re.S | re.I)
_FENCE_OPEN = re.compile(r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[\w+#.\-]*)")
_JSON_FIELD = re.compile(r'"(?:sql|query|sql_query)"\s*:\s*"((?:[^"\\\n]|\\.)*)"', re.I)
_LABEL = re.compile(
    r"^(?:\*\*)?(?:sql(?:\s+query|\s+statement)?|query|answer|final\s+answer|final\s+sql|output)"
    r"(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
    re.I,
)
_COMMENT_LINE = re.compile(r"\s*--[^\n]*\n?")
_FIRST_WORD = re.compile(r"\s*(\(|\w+)")
_PROSE_KEYWORD = re.compile(r"\b(?:SELECT|select|WITH|with)\b")
_CTE = re.compile(
    r"with\s+(?:recursive\s+)?[\w\"`\[\]]+\s*(?:\([^)]*\)\s*)?as\s*(?:not\s+)?(?:materialized\s*)?\(",
    re.I,
)
_SELECT = re.compile(r"select\s+\S", re.I)
_BULLET_PREFIX = re.compile(r"^[ \t]*(?:[-*+•>]|\d+[.)])?$")
_NEW_STATEMENT = re.compile(r"^\s*(?:select|with)\b", re.I)
_CONNECTOR_END = re.compile(
    r"(?:\bunion(?:\s+all)?|\bintersect|\bexcept|\bminus|\bas|[(,=])\s*$", re.I
)
_PROSE_MARKER = re.compile(r"^(?:[-+•>#]+\s|\*\s+[A-Za-z`]|\d+[.)]\s)")
_PROSE_LABEL = re.compile(r"^[A-Z][A-Za-z]*(?: [A-Za-z]+){0,3}:(?:\s|$)")
_PROSE_SENTENCE = re.compile(r"^([A-Z][a-z']*),?\s+([a-z']+)\s+[a-z']+")


@dataclass(frozen=True, slots=True)
class _Found:
    position: int
    sql: str


def extract_sql(text: str) -> list[str]:
    """Every SQL statement in a model's answer, most trustworthy first, without duplicates.

    Order of preference: statements in code blocks tagged as SQL (```` ```sql ````, ``~~~sql``,
    ``sqlite`` ...), in ``<sql>...</sql>`` tags and in JSON ``"sql": "..."`` fields, by
    position; then untagged code blocks whose text starts like a statement; then bare
    ``SELECT``/``WITH`` queries in prose that begin a line (after a bullet or a label such as
    ``SQL:`` or ``Answer:``) or follow a colon, running to a semicolon, a blank line, the end of
    a sentence (``". "``) or a line that reads as prose. In prose the keyword must be written in
    upper or lower case ("Select the rows..." is a sentence), and ``WITH`` must open a CTE.
    Statements inside ``<think>`` blocks come last. A block with several statements yields each
    of them. Labels, stray backticks and trailing semicolons are removed; the SQL itself is
    returned as written.
    """
    text = _SPECIAL_TOKENS.sub("", text.replace("\r\n", "\n"))
    thoughts = [m.group(1) for m in _THINK.finditer(text)]
    answer = _THINK.sub("\n\n", text)
    found = _extract(answer)
    for thought in thoughts:
        found.extend(_extract(thought))
    unique: dict[str, str] = {}
    for sql in found:
        unique.setdefault(" ".join(sql.split()), sql)
    return list(unique.values())


def extract_first_sql(text: str) -> str:
    """The preferred SQL statement of :func:`extract_sql`.

    Raises :class:`~sqlagent.errors.NoSQLFoundError` (an :class:`~sqlagent.errors.LLMError`)
    with a short excerpt of the answer when there is none.
    """
    candidates = extract_sql(text)
    if not candidates:
        excerpt = " ".join(text.split())
        if len(excerpt) > _EXCERPT_CHARS:
            excerpt = excerpt[: _EXCERPT_CHARS - 3] + "..."
        raise NoSQLFoundError(f"no SQL found in the model's answer: {excerpt!r}", answer=text)
    return candidates[0]


def _extract(text: str) -> list[str]:
    explicit: list[_Found] = []
    untagged: list[_Found] = []
    masked = list(text)

    for match in _SQL_TAG.finditer(text):
        inner = match.group(1)
        blocks = [content for _, _, _, content in _fences(inner)] or [inner]
        explicit.extend(
            _Found(match.start(), sql) for block in blocks for sql in _statements(block)
        )
        _mask(masked, match.start(), match.end())

    for start, end, info, content in _fences("".join(masked)):
        _mask(masked, start, end)
        if info.startswith("sql") or info in _SQL_TAGS:
            explicit.extend(_Found(start, sql) for sql in _statements(content))
        elif info in _PLAIN_TAGS:
            untagged.extend(_Found(start, s) for s in _statements(content) if _looks_like_sql(s))

    for match in _JSON_FIELD.finditer(text):
        try:
            value = json.loads(f'"{match.group(1)}"')
        except json.JSONDecodeError:
            continue
        explicit.extend(_Found(match.start(), sql) for sql in _statements(value))

    explicit.sort(key=lambda found: found.position)
    prose = _prose_statements("".join(masked))
    return [found.sql for found in explicit] + [found.sql for found in untagged] + prose


def _fences(text: str) -> list[tuple[int, int, str, str]]:
    """Fenced blocks as (start, end, info word, content); an unclosed block runs to the end."""
    blocks: list[tuple[int, int, str, str]] = []
    position = 0
    while match := _FENCE_OPEN.search(text, position):
        fence, info = match.group("fence"), match.group("info")
        body = match.end()
        if info.lower() in _STATEMENT_WORDS:  # ```SELECT 1``` on one line: no info string
            info, body = "", match.start("info")
        closing = re.compile(f"{re.escape(fence[0])}{{{len(fence)},}}").search(text, body)
        end, content_end = (closing.end(), closing.start()) if closing else (len(text), len(text))
        blocks.append((match.start(), end, info.lower(), text[body:content_end]))
        position = end
    return blocks


def _mask(chars: list[str], start: int, end: int) -> None:
    """Blank out a region (keeping newlines) so the prose pass neither sees nor crosses it."""
    for index in range(start, end):
        if chars[index] != "\n":
            chars[index] = " "


def _statements(block: str) -> list[str]:
    """The cleaned, non-empty statements of a block, split on top-level semicolons."""
    pieces: list[str] = []
    start = 0
    while start < len(block):
        end = _scan(block, start, prose=False)
        if (sql := _clean(block[start:end])) is not None:
            pieces.append(sql)
        start = end + 1
    return pieces


def _prose_statements(text: str) -> list[str]:
    """Bare queries outside code blocks, in the order they appear."""
    statements: list[str] = []
    position = 0
    while match := _PROSE_KEYWORD.search(text, position):
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        prefix = text[line_start:start].rstrip(" \t*`")
        shape = _CTE if match.group().lower() == "with" else _SELECT
        starts_query = shape.match(text, start)
        if not starts_query or not (prefix.endswith(":") or _BULLET_PREFIX.match(prefix)):
            position = match.end()
            continue
        inline = text[line_start:start].rstrip(" \t").endswith("`")
        end = _scan(text, start, prose=True, inline=inline)
        if (sql := _clean(text[start:end])) is not None:
            statements.append(sql)
        position = max(end, match.end())
    return statements


def _scan(text: str, start: int, *, prose: bool, inline: bool = False) -> int:
    """Where the statement starting at ``start`` ends (exclusive).

    Quote- and comment-aware: a semicolon ends it anywhere. In prose, so does a blank line, a
    sentence end (``". "``: never valid SQL), a line that reads as prose, a new ``SELECT`` at the
    top level after a complete line, or, for inline code, the closing backtick.
    """
    depth, quote, index, length = 0, "", start, len(text)
    cte = text[start : start + 4].lower() == "with"
    while index < length:
        char = text[index]
        if quote:
            if char == quote:
                if text.startswith(quote * 2, index):  # '' and "" escape the quote
                    index += 2
                    continue
                quote = ""
            elif char == "\n" and prose and _blank(_line_at(text, index + 1)):
                return index  # an apostrophe in prose is not a string literal
            index += 1
            continue
        if char == ";":
            return index
        if char in "'\"" or (char == "`" and not inline):
            quote = char
        elif char == "`":
            return index
        elif text.startswith("--", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
            continue
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = length if close < 0 else close + 2
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif prose and char == "." and (index + 1 == length or text[index + 1].isspace()):
            return index
        elif prose and char == "\n":
            previous = text[text.rfind("\n", 0, index) + 1 : index]
            if _line_ends_statement(_line_at(text, index + 1), previous, depth, cte=cte):
                return index
        index += 1
    return length


def _line_at(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _blank(line: str) -> bool:
    return not line.strip()


def _line_ends_statement(line: str, previous: str, depth: int, *, cte: bool) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith(("```", "~~~")):
        return True
    if _looks_like_prose(stripped):
        return True
    if depth or not _NEW_STATEMENT.match(stripped) or _CONNECTOR_END.search(previous):
        return False
    return not (cte and previous.rstrip().endswith(")"))  # WITH x AS (...) then its SELECT


def _looks_like_prose(line: str) -> bool:
    if line.startswith("--"):
        return False
    if _PROSE_MARKER.match(line) or line.endswith(":") or _PROSE_LABEL.match(line):
        return True
    sentence = _PROSE_SENTENCE.match(line)
    if sentence is None:
        return False
    return not {word.lower() for word in sentence.groups()} & _SQL_WORDS


def _clean(candidate: str) -> str | None:
    sql = candidate.strip()
    while True:
        stripped = _LABEL.sub("", sql.lstrip("` \t\n")).strip()
        if stripped == sql:
            break
        sql = stripped
    if sql.count("`") % 2:
        sql = sql.rstrip("`").rstrip()
    sql = sql.removesuffix("**").rstrip(" \t\n;")
    if sql.endswith(".") and not sql[-2:-1].isdigit():
        sql = sql[:-1].rstrip()
    return sql if _without_leading_comments(sql).strip() else None


def _looks_like_sql(sql: str) -> bool:
    first = _FIRST_WORD.match(_without_leading_comments(sql))
    return first is not None and (
        first.group(1) == "(" or first.group(1).lower() in _STATEMENT_WORDS
    )


def _without_leading_comments(sql: str) -> str:
    while (comment := _COMMENT_LINE.match(sql)) is not None:
        sql = sql[comment.end() :]
    return sql
