"""Documents: what gets embedded — tables, columns, Markdown notes and example questions.

Every document has a stable id (derived from what it describes, not from its content), so an
index can be synced incrementally: an unchanged document keeps its id and content hash and is not
embedded again; a changed one keeps its id and gets a new hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlagent.catalog import Catalog, Column, Table
from sqlagent.errors import ConfigError
from sqlagent.retrieval._text import identifier_words
from sqlagent.types import Example

__all__ = [
    "DOCUMENT_FORMAT_VERSION",
    "Document",
    "DocumentKind",
    "column_documents",
    "example_documents",
    "markdown_documents",
    "split_markdown",
    "table_documents",
]

#: Bump on any change to the text rendered below: stored vectors of older text are then replaced.
DOCUMENT_FORMAT_VERSION = "sqlagent-retrieval-doc/1"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class DocumentKind(StrEnum):
    """What a document describes; stored as its ``kind`` metadata and used to filter queries."""

    TABLE = "table"
    COLUMN = "column"
    DOC = "doc"
    EXAMPLE = "example"


@dataclass(frozen=True, slots=True)
class Document:
    """One thing to embed. ``text`` is embedded; ``metadata`` (strings) travels with it."""

    id: str
    kind: DocumentKind
    text: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Changes whenever the text, the metadata or the document format changes."""
        payload = json.dumps(
            [DOCUMENT_FORMAT_VERSION, str(self.kind), self.text, sorted(self.metadata.items())],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def store_metadata(self) -> dict[str, str]:
        """The metadata as stored: the document's own plus ``kind`` and ``hash``."""
        return {**self.metadata, "kind": str(self.kind), "hash": self.content_hash}


def _words(name: str) -> str:
    return " ".join(identifier_words(name))


def _spelled_out(name: str) -> str | None:
    """``name`` as words when that says more than its snake_case (``customerId``), else None."""
    words = _words(name)
    return None if words == name.lower().replace("_", " ") else words


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _column_phrase(column: Column) -> str:
    notes = [_spelled_out(column.name) or ""]
    if column.comment:
        notes.append(_one_line(column.comment))
    if column.samples:
        notes.append("e.g. " + ", ".join(column.samples))
    notes = [n for n in notes if n]
    return column.name + (f" ({'; '.join(notes)})" if notes else "")


def _neighbours(catalog: Catalog) -> dict[str, list[str]]:
    """Tables each table joins with through a foreign key, either way, in catalog order."""
    links: dict[str, dict[str, None]] = {t.name: {} for t in catalog}
    for table in catalog:
        for fk in table.foreign_keys:
            if fk.ref_table != table.name and fk.ref_table in links:
                links[table.name][fk.ref_table] = None
                links[fk.ref_table][table.name] = None
    return {name: list(targets) for name, targets in links.items()}


def table_text(table: Table, joins: Sequence[str] = ()) -> str:
    """The text embedded for one table: name, comment, columns, keys, comments and samples.

    Column types are left out on purpose: questions rarely name them, and on Spider dev adding
    them cost about a point of recall@3 and @5 with MiniLM (the prompt's DDL carries them).
    """
    head = f"table {table.name}"
    words = _spelled_out(table.name)
    if words:
        head += f" ({words})"
    lines = [head + (f": {_one_line(table.comment)}" if table.comment else "")]
    lines.append("columns: " + ", ".join(_column_phrase(c) for c in table.columns))
    if joins:
        lines.append("joins with: " + ", ".join(joins))
    key = [c.name for c in table.columns if c.primary_key]
    if key:
        lines.append("primary key: " + ", ".join(key))
    return "\n".join(lines)


def table_documents(catalog: Catalog) -> list[Document]:
    """One document per table (id ``table:<name>``), naming the tables it joins with."""
    neighbours = _neighbours(catalog)
    return [
        Document(
            f"table:{table.name}",
            DocumentKind.TABLE,
            table_text(table, neighbours[table.name]),
            {"table": table.name},
        )
        for table in catalog
    ]


def column_documents(catalog: Catalog) -> list[Document]:
    """One document per column (id ``column:["<table>", "<column>"]``)."""
    documents = []
    for table in catalog:
        for column in table.columns:
            documents.append(
                Document(
                    "column:" + json.dumps([table.name, column.name], ensure_ascii=False),
                    DocumentKind.COLUMN,
                    f"column {_column_phrase(column)} of table {table.name} ({_words(table.name)})",
                    {"table": table.name, "column": column.name},
                )
            )
    return documents


def split_markdown(text: str, *, max_chars: int = 1500) -> list[tuple[str, str]]:
    """Split Markdown into ``(heading path, chunk)`` pairs, one section per heading.

    The heading path joins the enclosing headings with `` > ``; each chunk starts with it, so a
    chunk read alone says what it is about. Sections longer than ``max_chars`` are split at blank
    lines. Headings inside fenced code blocks do not split; empty sections are dropped.
    """
    if max_chars < 100:
        raise ConfigError(f"max_chars must be at least 100, got {max_chars}")
    sections: list[tuple[list[str], list[str]]] = [([], [])]
    path: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2))]
            sections.append(([title for _, title in path], []))
        else:
            sections[-1][1].append(line)
    chunks = []
    for titles, lines in sections:
        body = "\n".join(lines).strip()
        if not body:
            continue
        heading = " > ".join(titles)
        for piece in _pack(body, max_chars - len(heading) - 1):
            chunks.append((heading, f"{heading}\n{piece}" if heading else piece))
    return chunks


def _pack(body: str, limit: int) -> list[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    pieces: list[str] = []
    current = ""
    for paragraph in paragraphs:
        while len(paragraph) > limit:  # one huge paragraph: cut at the last space before limit
            cut = paragraph.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if current and len(current) + 2 + len(paragraph) > limit:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        pieces.append(current)
    return pieces


def markdown_documents(sources: Mapping[str, str], *, max_chars: int = 1500) -> list[Document]:
    """Documents from Markdown texts keyed by source name (a file name, say).

    Ids are ``doc:<source>:<heading path>:<n>``: stable while a section keeps its heading.
    """
    documents = []
    for source, text in sources.items():
        seen: dict[str, int] = {}
        for heading, chunk in split_markdown(text, max_chars=max_chars):
            n = seen.get(heading, 0)
            seen[heading] = n + 1
            documents.append(
                Document(
                    f"doc:{source}:{heading}:{n}",
                    DocumentKind.DOC,
                    chunk,
                    {"source": source, "heading": heading},
                )
            )
    return documents


def example_documents(examples: Iterable[Example]) -> list[Document]:
    """One document per distinct example; the question is embedded, the SQL travels along."""
    documents: dict[str, Document] = {}
    for example in examples:
        key = hashlib.sha256(f"{example.question}\0{example.sql}".encode()).hexdigest()[:24]
        documents.setdefault(
            key,
            Document(
                f"example:{key}",
                DocumentKind.EXAMPLE,
                _one_line(example.question),
                {"question": example.question, "sql": example.sql},
            ),
        )
    return list(documents.values())
