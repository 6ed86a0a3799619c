"""Role-filtered schema retrieval on the demo HR database.

One index per role view: what a role cannot read is never embedded in its collection, and notes
or examples naming hidden tables or columns never come back to it.

Run: python examples/retrieval.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlagent import Guard, Policy, reflect_catalog
from sqlagent.demo import DEMO_QUESTIONS, write_demo
from sqlagent.retrieval import HashingEmbedder, RetrievalIndex, RetrievalSettings
from sqlagent.types import Example


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        catalog = reflect_catalog(demo.url)
        guard = Guard(catalog=catalog, policy=Policy.from_file(demo.policy))
        # HashingEmbedder keeps this example dependency-free; the default is MiniLM (offline),
        # and stores=lambda name: ChromaVectorStore(persistent_chroma_client(path), name)
        # keeps the index in an embedded chromadb.
        index = RetrievalIndex(
            catalog,
            embedder=HashingEmbedder(),
            docs={"glossary.md": demo.glossary.read_text(encoding="utf-8")},
            examples=[Example(q.question, q.sql) for q in DEMO_QUESTIONS],
            config=RetrievalSettings(k_tables=2, k_examples=1, k_docs=1),
        )
        question = "What was the total payroll cost of each department?"
        for role in ("viewer", "hr"):
            access = guard.access(role)
            assert access is not None
            found = index.retrieve(question, guard.catalog_for(role), masked=access.masked)
            print(f"{role}: tables {list(found.tables)} (bridges {list(found.expanded)})")
            print(f"  example: {[e.question for e in found.examples]}")
            print(f"  note: {[d.splitlines()[0] for d in found.docs]}")


if __name__ == "__main__":
    main()
