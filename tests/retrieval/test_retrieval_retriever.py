"""SchemaRetriever: ranking, foreign-key expansion, examples, notes and incremental sync."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from retrieval_helpers import HAS_CHROMA, CountingEmbedder

from sqlagent import Catalog, Column, ConfigError, ForeignKey, Table
from sqlagent.retrieval import (
    ChromaVectorStore,
    Embedder,
    HashingEmbedder,
    InMemoryVectorStore,
    RetrievalIndex,
    RetrievalSettings,
    SchemaRetriever,
    SentenceTransformerEmbedder,
    VectorStore,
    persistent_chroma_client,
)
from sqlagent.retrieval._rank import foreign_key_bridges, foreign_key_graph
from sqlagent.types import Example


def _t(name: str, *columns: str, fks: tuple[tuple[str, str], ...] = (), comment: str = "") -> Table:
    cols = tuple(Column(c, "INTEGER" if c.endswith("id") else "TEXT", primary_key=c == "id")
                 for c in columns)  # fmt: skip
    keys = tuple(ForeignKey((col,), ref, ("id",)) for col, ref in fks)
    return Table(name, cols, comment=comment or None, foreign_keys=keys)


SCHOOL = Catalog(
    (
        _t("students", "id", "name", "major", "birth_year"),
        _t("courses", "id", "title", "credits"),
        _t("registrations", "student_id", "course_id", "grade",
           fks=(("student_id", "students"), ("course_id", "courses"))),
        _t("teachers", "id", "name", "office"),
        _t("teaching_assignments", "course_id", "teacher_id",
           fks=(("course_id", "courses"), ("teacher_id", "teachers"))),
        _t("rooms", "id", "building", "capacity"),
        _t("clubs", "id", "name", "founded"),
        _t("club_members", "student_id", "club_id",
           fks=(("student_id", "students"), ("club_id", "clubs"))),
        _t("libraries", "id", "city"),
        _t("books", "id", "library_id", "title", "author", fks=(("library_id", "libraries"),)),
    )
)  # fmt: skip

NOTES = {
    "glossary.md": """\
# Credits
A full-time student takes at least 30 credits per year.

# Clubs
Club membership is voluntary; founded is the year a club started.
""",
}
EXAMPLES = [
    Example("How many students are there?", "SELECT count(*) FROM students"),
    Example("List the titles of all books.", "SELECT title FROM books"),
    Example(
        "Which students take the course Algebra?",
        "SELECT s.name FROM students AS s JOIN registrations AS e ON e.student_id = s.id "
        "JOIN courses AS c ON c.id = e.course_id WHERE c.title = 'Algebra'",
    ),
]


def _retriever(
    embedder: Embedder,
    store: VectorStore | None = None,
    *,
    catalog: Catalog = SCHOOL,
    config: RetrievalSettings | None = None,
    docs: dict[str, str] | None = None,
) -> SchemaRetriever:
    return SchemaRetriever(
        catalog,
        embedder,
        store if store is not None else InMemoryVectorStore(),
        full_catalog=catalog,
        docs=NOTES if docs is None else docs,
        examples=EXAMPLES,
        config=config,
    )


def test_foreign_key_bridges_join_the_top_tables() -> None:
    graph = foreign_key_graph(SCHOOL)
    assert graph["registrations"] == {"students", "courses"}
    assert foreign_key_bridges(graph, ["students", "courses"]) == ("registrations",)
    # students -> registrations -> courses -> teaching_assignments -> teachers: three bridges
    assert foreign_key_bridges(graph, ["students", "teachers"]) == ()
    assert foreign_key_bridges(graph, ["students", "teachers"], max_hops=3) == (
        "registrations", "courses", "teaching_assignments",
    )  # fmt: skip
    assert foreign_key_bridges(graph, ["students", "teaching_assignments"]) == (
        "registrations",
        "courses",
    )
    assert foreign_key_bridges(graph, ["students", "courses"], max_hops=0) == ()
    assert foreign_key_bridges(graph, ["students", "registrations", "courses"]) == ()
    assert foreign_key_bridges(graph, ["students", "rooms"]) == ()  # no path at all


class TableNameEmbedder:
    """One dimension per table: a table's document, or a question naming the table, points there."""

    name = "table-names"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        names = SCHOOL.table_names
        vectors = []
        for text in texts:
            head = text.split("\n")[0].split()
            words = set(head[1:2]) if head[:1] == ["table"] else set(text.split())
            vectors.append([1.0 if n in words else 0.0 for n in names] + [0.01])
        return vectors


def test_retrieve_ranks_and_expands_along_foreign_keys() -> None:
    config = RetrievalSettings(k_tables=2, lexical_weight=0.0, neighbour_weight=0.0)
    result = _retriever(TableNameEmbedder(), config=config).retrieve("students courses")
    assert result.ranked == ("students", "courses")
    assert result.expanded == ("registrations",)
    assert result.tables == ("students", "courses", "registrations")
    assert len(result.scores) == 3
    assert result.scores[0] == result.scores[1] > result.scores[2]
    assert not result.complete
    assert result.elapsed_ms > 0
    unexpanded = RetrievalSettings(
        k_tables=2, lexical_weight=0, neighbour_weight=0, expand_foreign_keys=False
    )
    plain = _retriever(TableNameEmbedder(), config=unexpanded)
    assert plain.retrieve("students courses").tables == ("students", "courses")


def test_ranking_blends_names_and_join_partners(hashing: HashingEmbedder) -> None:
    retriever = _retriever(hashing)
    result = retriever.retrieve("Which students are registered for which courses?", k=3)
    assert set(result.ranked) == {"registrations", "students", "courses"}
    assert retriever.retrieve("Which teacher teaches each course?", k=3).ranked == (
        "teaching_assignments", "teachers", "courses",
    )  # fmt: skip
    # neighbour_weight: the join partners of a strong table (here: registrations) gain
    question = "List the students with their courses"
    plain = _retriever(hashing, config=RetrievalSettings(neighbour_weight=0.0)).retrieve(question)
    boosted = retriever.retrieve(question)
    assert plain.ranked.index("teaching_assignments") < plain.ranked.index("courses")
    assert boosted.ranked.index("courses") < boosted.ranked.index("teaching_assignments")
    assert boosted.ranked.index("students") < boosted.ranked.index("teaching_assignments")


def test_small_catalogs_return_every_table(hashing: HashingEmbedder) -> None:
    small = Catalog(SCHOOL.tables[:3])
    result = _retriever(hashing, catalog=small, docs={}).retrieve("How many rooms?")
    assert result.complete
    assert sorted(result.tables) == ["courses", "registrations", "students"]
    assert result.expanded == ()
    assert _retriever(hashing).retrieve("books by author", k=10).complete


def test_retrieve_brings_examples_and_notes(hashing: HashingEmbedder) -> None:
    result = _retriever(hashing).retrieve("How many credits does a full-time student take?")
    assert result.docs[0].startswith("Credits\nA full-time student takes at least 30 credits")
    assert result.examples[0] == EXAMPLES[0]
    assert len(result.examples) == 3
    assert len(result.docs) == 2
    quiet = _retriever(hashing, config=RetrievalSettings(k_examples=0, k_docs=0))
    assert quiet.retrieve("How many students?").examples == ()
    assert quiet.retrieve("How many students?").docs == ()


def test_retrieval_to_dict_is_json_friendly(hashing: HashingEmbedder) -> None:
    result = _retriever(hashing).retrieve("How many students are there?", k=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["tables"] == list(result.tables)
    assert data["examples"][0] == {"question": EXAMPLES[0].question, "sql": EXAMPLES[0].sql}
    assert set(data) == {
        "question", "tables", "scores", "expanded", "examples", "docs", "complete", "elapsed_ms",
    }  # fmt: skip


def test_an_empty_view_retrieves_nothing(hashing: HashingEmbedder) -> None:
    result = SchemaRetriever(Catalog(), hashing, InMemoryVectorStore()).retrieve("anything")
    assert (result.tables, result.examples, result.docs, result.complete) == ((), (), (), True)


def test_sync_can_show_progress(
    hashing: HashingEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _retriever(hashing).sync(progress=True)
    assert report.embedded == len(_retriever(hashing).documents)
    assert capsys.readouterr().out == ""  # the bar goes to stderr, never to stdout


def test_retrieve_checks_k(hashing: HashingEmbedder) -> None:
    with pytest.raises(ConfigError):
        _retriever(hashing).retrieve("students", k=0)


@pytest.mark.parametrize(
    "bad",
    [
        {"k_tables": 0},
        {"candidates": 0},
        {"k_docs": -1},
        {"max_hops": -1},
        {"lexical_weight": -1.0},
        {"k": 5},  # the one set of names: k_tables, k_examples, k_docs
    ],
)
def test_settings_are_validated(bad: dict[str, float]) -> None:
    (key,) = bad
    with pytest.raises(ConfigError, match=rf"invalid retrieval settings: {key}: "):
        RetrievalSettings(**bad)  # type: ignore[arg-type]


def _stores(tmp_path: Path) -> list[tuple[str, VectorStore]]:
    stores: list[tuple[str, VectorStore]] = [("memory", InMemoryVectorStore())]
    if HAS_CHROMA:
        stores.append(("chroma", ChromaVectorStore.persistent(tmp_path, "school")))
    return stores


@pytest.mark.slow
def test_sync_is_incremental(tmp_path: Path, hashing: HashingEmbedder) -> None:
    for label, store in _stores(tmp_path):
        counting = CountingEmbedder(hashing)
        first = _retriever(counting, store).sync()
        total = len(_retriever(hashing).documents)
        assert len(first.added) == total == store.count() == len(counting.texts), label
        assert first.embedded == total
        assert first.removed == ()
        assert first.unchanged == 0

        counting.texts.clear()
        again = _retriever(counting, store).sync()  # a new process, the same store
        assert (again.embedded, again.removed, again.unchanged) == (0, (), total), label
        assert counting.texts == []

        commented = Catalog(
            tuple(
                Table(t.name, t.columns, comment="Course catalogue", foreign_keys=t.foreign_keys)
                if t.name == "courses"
                else t
                for t in SCHOOL.tables
                if t.name != "rooms"
            )
        )
        notes = {"glossary.md": NOTES["glossary.md"].replace("30 credits", "32 credits")}
        changed = _retriever(counting, store, catalog=commented, docs=notes).sync()
        assert changed.added == ()
        assert set(changed.updated) == {"table:courses", "doc:glossary.md:Credits:0"}, label
        assert changed.removed == ("table:rooms",)
        assert len(counting.texts) == 2
        assert store.count() == total - 1


@pytest.mark.skipif(not HAS_CHROMA, reason="chromadb is not installed")
def test_chroma_index_survives_a_restart(tmp_path: Path, hashing: HashingEmbedder) -> None:
    def index(embedder: Embedder) -> RetrievalIndex:
        client = persistent_chroma_client(tmp_path)
        return RetrievalIndex(
            SCHOOL,
            embedder=embedder,
            stores=lambda name: ChromaVectorStore(client, name),
            docs=NOTES,
            examples=EXAMPLES,
        )

    first = index(hashing).retrieve("Which books are in the library of Paris?")
    counting = CountingEmbedder(hashing)
    second = index(counting).retrieve("Which books are in the library of Paris?")
    assert counting.texts == ["Which books are in the library of Paris?"]  # only the question
    assert second.tables == first.tables
    assert second.tables[:2] == ("books", "libraries")


def test_retrieve_syncs_lazily_once(hashing: HashingEmbedder) -> None:
    counting = CountingEmbedder(hashing)
    retriever = _retriever(counting)
    retriever.retrieve("students")
    retriever.retrieve("courses")
    assert len(counting.texts) == len(retriever.documents) + 2
    assert "SchemaRetriever(tables=10, docs=2, examples=3" in repr(retriever)


@pytest.mark.slow
def test_minilm_end_to_end_on_chroma(tmp_path: Path, minilm: SentenceTransformerEmbedder) -> None:
    retriever = _retriever(minilm, ChromaVectorStore.persistent(tmp_path, "minilm"))
    retriever.sync()
    result = retriever.retrieve("Which teacher teaches each course?", k=3)
    assert set(result.ranked) == {"teachers", "courses", "teaching_assignments"}
    assert retriever.retrieve("Which author wrote the most books?").tables[0] == "books"
    club = retriever.retrieve("When was the chess club founded?")
    assert club.tables[0] == "clubs"
    assert club.docs[0].startswith("Clubs\n")
