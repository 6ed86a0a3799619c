"""Role filtering, the data moat: a role's retrieval never sees what the role may not read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from retrieval_helpers import HAS_CHROMA, CountingEmbedder
from sqlglot import exp

from sqlagent import Catalog, Column, ConfigError, DialectError, Guard, Table
from sqlagent.retrieval import (
    ChromaVectorStore,
    HashingEmbedder,
    InMemoryVectorStore,
    RetrievalIndex,
    SchemaRetriever,
    persistent_chroma_client,
)
from sqlagent.types import Example

NOTES = {
    "hr.md": """\
# Headcount
Headcount counts employees per department through the department_id of each employee.

# Pay
Payroll rows hold the gross_pay and bonus of each period.

# Salary
Salary figures are confidential outside HR.

# Contact
Email and phone numbers are never shared.

# Projects
Projects have a budget; staff join projects through assignments.

# Bands
The salarybands scheme is published to everyone.
""",
}
EXAMPLES = {
    "headcount": Example(
        "How many employees does each department have?",
        "SELECT d.name, count(*) FROM employees AS e JOIN departments AS d "
        "ON d.id = e.department_id GROUP BY d.name",
    ),
    "names and salaries": Example(
        "List employees with their salary.", "SELECT first_name, salary FROM employees"
    ),
    "average salary": Example(
        "What is the average salary per title?",
        "SELECT title, avg(salary) FROM employees GROUP BY title",
    ),
    "email": Example(
        "What is the email of employee 7?", "SELECT email FROM employees WHERE id = 7"
    ),
    "bonus": Example("Total bonus paid?", "SELECT sum(bonus) FROM payroll"),
    "periods": Example("Which pay periods exist?", "SELECT DISTINCT period FROM payroll"),
    "unparseable": Example("Broken", "SELEC name FORM projects"),
    "write": Example("Remove all projects", "DELETE FROM projects"),
    "unknown table": Example("Offices?", "SELECT * FROM offices"),
}
# role -> (examples it may see, note headings it may see)
EXPECTED = {
    "viewer": ({"headcount"}, {"Headcount", "Projects", "Bands"}),
    "analyst": (
        {"headcount", "names and salaries", "periods"},
        {"Headcount", "Projects", "Bands", "Pay", "Salary"},
    ),
    "hr": (
        {"headcount", "names and salaries", "average salary", "email", "bonus", "periods"},
        {"Headcount", "Projects", "Bands", "Pay", "Salary", "Contact"},
    ),
}
EVERYTHING = " ".join(e.question for e in EXAMPLES.values()) + " salary payroll email bonus"


def _index(catalog: Catalog, **kwargs: object) -> RetrievalIndex:
    return RetrievalIndex(
        catalog,
        embedder=HashingEmbedder(256),
        docs=NOTES,
        examples=list(EXAMPLES.values()),
        **kwargs,  # type: ignore[arg-type]
    )


def _hidden_words(view: Catalog, full: Catalog) -> set[str]:
    def names(c: Catalog) -> set[str]:
        return {t.name.lower() for t in c} | {col.name.lower() for t in c for col in t.columns}

    return names(full) - names(view)


def _mentions(text: str, words: set[str]) -> set[str]:
    return {w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)}


def _sql_names(sql: str) -> tuple[set[str], set[str]]:
    tree = sqlglot.parse_one(sql, read="sqlite")
    return {t.name for t in tree.find_all(exp.Table)}, {c.name for c in tree.find_all(exp.Column)}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_role_sees_only_its_own_examples_and_notes(
    role: str, hr_catalog: Catalog, hr_guard: Guard
) -> None:
    view = hr_guard.catalog_for(role)
    access = hr_guard.access(role)
    assert view is not None
    assert access is not None
    retriever = _index(hr_catalog).retriever(view, masked=access.masked)
    examples, headings = EXPECTED[role]
    indexed = {d.metadata.get("question") for d in retriever.documents if d.kind == "example"}
    assert indexed == {EXAMPLES[name].question for name in examples}
    notes = {d.metadata["heading"] for d in retriever.documents if d.kind == "doc"}
    assert notes == headings

    hidden = _hidden_words(view, hr_catalog)
    for doc in retriever.documents:  # what went into the index
        assert not _mentions(doc.text, hidden), (doc.id, _mentions(doc.text, hidden))
        if doc.kind == "table":
            assert doc.metadata["table"] in view
    result = retriever.retrieve(EVERYTHING, k=2)
    assert set(result.tables) <= set(view.table_names)
    assert {e.question for e in result.examples} <= indexed
    assert all(not _mentions(d, hidden) for d in result.docs)


def test_viewer_index_never_names_hidden_things(hr_catalog: Catalog, hr_guard: Guard) -> None:
    view = hr_guard.catalog_for("viewer")
    assert view is not None
    retriever = _index(hr_catalog).retriever(view)
    everything = " ".join(d.text + " " + " ".join(d.metadata.values()) for d in retriever.documents)
    for word in ("payroll", "salary", "email", "phone", "national_id", "gross_pay", "bonus"):
        assert not re.search(rf"\b{word}\b", everything, re.IGNORECASE), word
    assert "salarybands" in everything  # only whole words count


def test_masked_columns_never_carry_samples(hr_catalog: Catalog, hr_guard: Guard) -> None:
    view = hr_guard.catalog_for("analyst")
    access = hr_guard.access("analyst")
    assert view is not None
    assert access is not None
    sampled = Catalog(
        tuple(
            Table(
                t.name,
                tuple(
                    Column(c.name, c.type, samples=("SECRET-42",))
                    if c.name in ("salary", "title")
                    else c
                    for c in t.columns
                ),
                foreign_keys=t.foreign_keys,
            )
            for t in view
        )
    )
    index = _index(hr_catalog)
    retriever = index.retriever(sampled, masked=access.masked)
    employees = next(d for d in retriever.documents if d.id == "table:employees")
    assert "title (e.g. SECRET-42)" in employees.text
    assert "salary (" not in employees.text
    assert employees.text.count("SECRET-42") == 1
    salary = retriever.catalog.table("employees").column("salary")  # type: ignore[union-attr]
    assert salary is not None
    assert salary.samples == ()
    assert index.collection_name(sampled, masked=access.masked) != index.collection_name(sampled)
    # masking alone (no samples) changes the examples a view may see, so its collection too
    assert index.collection_name(view, masked=access.masked) != index.collection_name(view)
    assert index.collection_name(view, masked={*access.masked, ("nowhere", "x")}) == (
        index.collection_name(view, masked=access.masked)
    )


def test_results_are_filtered_again_at_query_time(hr_catalog: Catalog, hr_guard: Guard) -> None:
    """Even a tampered store (shared server, stale data) cannot leak through retrieve()."""
    view = hr_guard.catalog_for("viewer")
    assert view is not None
    store = InMemoryVectorStore()
    embedder = HashingEmbedder(256)
    retriever = SchemaRetriever(
        view,
        embedder,
        store,
        full_catalog=hr_catalog,
        docs=NOTES,
        examples=list(EXAMPLES.values()),
    )
    retriever.sync()
    question = "payroll salary email of employees"
    [vector] = embedder.embed([question])
    approved = next(d for d in retriever.documents if d.kind == "example")
    planted = {
        "table:payroll": ("table payroll", {"kind": "table", "table": "payroll"}),
        "doc:evil": ("payroll gross_pay", {"kind": "doc", "source": "x", "heading": "x"}),
        "doc:hr.md:Headcount:0": ("salary of everyone", {"kind": "doc"}),
        "example:evil": (
            question,
            {"kind": "example", "question": question, "sql": "SELECT salary FROM employees"},
        ),
        approved.id: (question, {**approved.metadata, "kind": "example", "sql": "SELECT 1"}),
    }
    store.upsert(
        list(planted),
        [vector] * len(planted),
        [text for text, _ in planted.values()],
        [meta for _, meta in planted.values()],
    )
    result = retriever.retrieve(question, k=10)
    assert "payroll" not in result.tables
    assert result.examples == ()  # the planted one is unknown, the altered one no longer matches
    assert "salary of everyone" not in result.docs
    assert all("payroll" not in d.lower() for d in result.docs)
    assert result.docs[0].startswith("Headcount\n")  # the approved text, not the store's


def test_index_keys_collections_by_view_and_embedder(hr_catalog: Catalog, hr_guard: Guard) -> None:
    index = _index(hr_catalog)
    viewer, analyst = hr_guard.catalog_for("viewer"), hr_guard.catalog_for("analyst")
    assert viewer is not None
    assert analyst is not None
    same_as_viewer = Catalog(tuple(viewer.tables))  # another role with the same grants
    assert index.retriever(viewer) is index.retriever(same_as_viewer)
    names = {index.collection_name(v) for v in (viewer, analyst, None)}
    assert len(names) == 3
    assert all(re.fullmatch(r"sqlagent-[0-9a-f]{32}", n) for n in names)
    other = RetrievalIndex(hr_catalog, embedder=HashingEmbedder(128))
    assert other.collection_name(viewer) != index.collection_name(viewer)
    assert index.retrieve("projects budget", viewer).tables[0] == "projects"
    assert repr(index) == "RetrievalIndex(tables=5, views=1)"


def test_views_share_embeddings_not_collections(hr_catalog: Catalog, hr_guard: Guard) -> None:
    counting = CountingEmbedder(HashingEmbedder(256))
    index = RetrievalIndex(
        hr_catalog, embedder=counting, docs=NOTES, examples=list(EXAMPLES.values())
    )
    documents: dict[str, str] = {}
    for role in ("viewer", "analyst", "hr"):
        view, access = hr_guard.catalog_for(role), hr_guard.access(role)
        assert view is not None
        assert access is not None
        retriever = index.retriever(view, masked=access.masked)
        documents.update({d.text: d.id for d in retriever.documents})
    assert sorted(counting.texts) == sorted(documents)  # each distinct text embedded once
    index.retrieve("projects", hr_guard.catalog_for("viewer"))
    assert counting.texts[-1] == "projects"
    with pytest.raises(ConfigError, match="is not the retriever's"):
        retriever.sync(embedder=HashingEmbedder(64))


def test_views_must_come_from_the_catalog(hr_catalog: Catalog) -> None:
    index = _index(hr_catalog)
    with pytest.raises(ConfigError, match="lacks"):
        index.retriever(Catalog((Table("offices", (Column("id"),)),)))
    with pytest.raises(ConfigError, match="columns the catalog lacks: wage"):
        index.retriever(Catalog((Table("employees", (Column("id"), Column("wage"))),)))
    with pytest.raises(ConfigError, match="full_catalog"):
        SchemaRetriever(hr_catalog, HashingEmbedder(), InMemoryVectorStore(), docs=NOTES)
    with pytest.raises(DialectError):
        SchemaRetriever(hr_catalog, HashingEmbedder(), InMemoryVectorStore(), dialect="nosql")


@pytest.mark.skipif(not HAS_CHROMA, reason="chromadb is not installed")
def test_chroma_collections_per_role_hold_only_their_view(
    tmp_path: Path, hr_catalog: Catalog, hr_guard: Guard
) -> None:
    client = persistent_chroma_client(tmp_path)
    index = _index(hr_catalog, stores=lambda name: ChromaVectorStore(client, name))
    for role in ("viewer", "hr"):
        view = hr_guard.catalog_for(role)
        assert view is not None
        index.retrieve("salary per department", view)
    assert len(client.list_collections()) == 2
    viewer = hr_guard.catalog_for("viewer")
    assert viewer is not None
    raw = client.get_collection(index.collection_name(viewer)).get(include=["documents"])
    stored = " ".join(raw["documents"] or [])
    assert not _mentions(stored, _hidden_words(viewer, hr_catalog))
    assert "salary" in " ".join(
        client.get_collection(index.collection_name(hr_guard.catalog_for("hr"))).get(
            include=["documents"]
        )["documents"]
        or []
    )


# -- property: whatever the grants, nothing hidden comes back ------------------------------------


@st.composite
def _grants(draw: st.DrawFn, catalog: Catalog) -> dict[str, list[str]]:
    visible = {}
    for table in catalog:
        columns = draw(st.lists(st.sampled_from(table.column_names), unique=True, max_size=4))
        if columns:
            visible[table.name] = columns
    return visible


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.slow
def test_property_no_hidden_name_ever_comes_back(data: st.DataObject, hr_catalog: Catalog) -> None:
    names = sorted({t.name for t in hr_catalog} | {c.name for t in hr_catalog for c in t.columns})
    pairs = [(t.name, c.name) for t in hr_catalog for c in t.columns]
    grants = data.draw(_grants(hr_catalog))
    view = hr_catalog.restricted(grants)
    words = st.sampled_from([*names, "the", "total", "of", "Salary", "PAYROLL", "per"])
    sentences = st.lists(st.lists(words, min_size=1, max_size=6).map(" ".join), max_size=6)
    notes = "\n\n".join(f"# Note {i}\n{s}" for i, s in enumerate(data.draw(sentences)))
    chosen = data.draw(st.lists(st.sampled_from(pairs), max_size=6))
    examples = [Example(f"question {t} {c}", f"SELECT {c} FROM {t}") for t, c in chosen]
    question = data.draw(st.lists(words, min_size=1, max_size=8).map(" ".join))

    retriever = SchemaRetriever(
        view,
        HashingEmbedder(64),
        InMemoryVectorStore(),
        full_catalog=hr_catalog,
        docs={"notes.md": notes},
        examples=examples,
    )
    result = retriever.retrieve(question, k=2)

    hidden = _hidden_words(view, hr_catalog)
    assert set(result.tables) <= set(view.table_names)
    for doc in result.docs:
        assert not _mentions(doc, hidden)
    for example in result.examples:
        tables, columns = _sql_names(example.sql)
        assert tables <= set(view.table_names)
        assert all(any(c in t.column_names for t in view) for c in columns)
    indexed = {d.metadata["sql"] for d in retriever.documents if d.kind == "example"}
    for table, column in chosen:  # and nothing visible is held back
        visible = table in grants and column in grants[table]
        assert (f"SELECT {column} FROM {table}" in indexed) == visible
