"""Documents: what is embedded for tables, columns, Markdown notes and examples; stable ids."""

from __future__ import annotations

import pytest

from sqlagent import Catalog, Column, ConfigError, ForeignKey, Table
from sqlagent.retrieval import (
    Document,
    DocumentKind,
    column_documents,
    example_documents,
    markdown_documents,
    split_markdown,
    table_documents,
)
from sqlagent.types import Example

CATALOG = Catalog(
    (
        Table(
            "CustomerOrders",
            (
                Column("order_id", "INTEGER", primary_key=True),
                Column("customerId", "INTEGER", comment="who ordered"),
                Column("status", "TEXT", samples=("open", "shipped")),
            ),
            comment="One row per order.\nNever deleted.",
            foreign_keys=(ForeignKey(("customerId",), "customers", ("id",)),),
        ),
        Table("customers", (Column("id", "INTEGER", primary_key=True), Column("name", "TEXT"))),
    )
)

GLOSSARY = """\
Intro text before any heading.

# Glossary

## Revenue
Revenue is the sum of `amount` over paid invoices.

## Churn
A customer churns when they have no order for 90 days.

```sql
# not a heading inside a fence
SELECT 1
```

## Empty

### Child
Only the child has a body.
"""


def test_table_document_says_everything_a_prompt_would() -> None:
    orders, customers = table_documents(CATALOG)
    assert orders.id == "table:CustomerOrders"
    assert orders.kind is DocumentKind.TABLE
    assert orders.metadata == {"table": "CustomerOrders"}
    text = orders.text
    assert text.startswith("table CustomerOrders (customer orders): One row per order. Never")
    assert text.splitlines()[1:] == [
        "columns: order_id, customerId (customer id; who ordered), status (e.g. open, shipped)",
        "joins with: customers",
        "primary key: order_id",
    ]
    assert "joins with: CustomerOrders" in customers.text  # referenced-by counts as a join


def test_column_documents_have_unambiguous_ids() -> None:
    docs = column_documents(CATALOG)
    assert len(docs) == 5
    first = docs[0]
    assert first.id == 'column:["CustomerOrders", "order_id"]'
    assert first.metadata == {"table": "CustomerOrders", "column": "order_id"}
    assert first.text == "column order_id of table CustomerOrders (customer orders)"


def test_split_markdown_by_heading_path() -> None:
    chunks = split_markdown(GLOSSARY)
    headings = [h for h, _ in chunks]
    assert headings == ["", "Glossary > Revenue", "Glossary > Churn", "Glossary > Empty > Child"]
    churn = chunks[2][1]
    assert churn.startswith("Glossary > Churn\nA customer churns")
    assert "# not a heading inside a fence" in churn  # fenced lines never split a section


def test_split_markdown_cuts_long_sections_at_paragraphs() -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(10))
    chunks = split_markdown("# Long\n" + body, max_chars=400)
    assert len(chunks) > 3
    assert all(len(text) <= 400 for _, text in chunks)
    assert all(text.startswith("Long\n") for _, text in chunks)
    one_word = split_markdown("# H\n" + "x" * 1000, max_chars=300)
    assert all(len(text) <= 300 for _, text in one_word)
    with pytest.raises(ConfigError):
        split_markdown("x", max_chars=10)


def test_markdown_document_ids_are_stable_across_edits() -> None:
    before = {d.id: d for d in markdown_documents({"glossary.md": GLOSSARY})}
    edited = "# Preface\nNew section first.\n\n" + GLOSSARY.replace("90 days", "60 days")
    after = {d.id: d for d in markdown_documents({"glossary.md": edited})}
    assert "doc:glossary.md:Glossary > Revenue:0" in before
    changed = {i for i in before if i in after and before[i].content_hash != after[i].content_hash}
    assert changed == {"doc:glossary.md:Glossary > Churn:0"}
    assert set(after) - set(before) == {"doc:glossary.md:Preface:0"}
    revenue = after["doc:glossary.md:Glossary > Revenue:0"]
    assert revenue.metadata == {"source": "glossary.md", "heading": "Glossary > Revenue"}


def test_repeated_headings_get_distinct_ids() -> None:
    docs = markdown_documents({"a.md": "# Notes\none\n# Notes\ntwo\n"})
    assert [d.id for d in docs] == ["doc:a.md:Notes:0", "doc:a.md:Notes:1"]


def test_examples_embed_the_question_and_carry_the_sql() -> None:
    pair = Example("How many\n customers?", "SELECT count(*) FROM customers")
    docs = example_documents([pair, pair, Example("Other?", "SELECT 1")])
    assert len(docs) == 2  # duplicates collapse
    assert docs[0].text == "How many customers?"
    assert docs[0].metadata == {"question": pair.question, "sql": pair.sql}
    assert docs[0].id.startswith("example:")
    assert example_documents([pair])[0].id == docs[0].id


def test_content_hash_tracks_text_and_metadata() -> None:
    doc = Document("x", DocumentKind.DOC, "text", {"a": "1"})
    assert doc.content_hash == Document("x", DocumentKind.DOC, "text", {"a": "1"}).content_hash
    assert doc.content_hash != Document("x", DocumentKind.DOC, "text!", {"a": "1"}).content_hash
    assert doc.content_hash != Document("x", DocumentKind.DOC, "text", {"a": "2"}).content_hash
    assert doc.store_metadata() == {"a": "1", "kind": "doc", "hash": doc.content_hash}
