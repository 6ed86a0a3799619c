"""Schema retrieval on Spider dev: table recall, prompt size and latency over one merged catalog.

All 166 Spider schemas of ``tables.json`` are merged into ONE catalog (876 tables, each named
``db_id.table`` so names are unique and the database shows in the document text); each of the
1034 dev questions is asked against all of it. Gold tables come from parsing the gold SQL with
sqlglot.

    python benchmarks/retrieval_bench.py [--data ../shared/data/spider-dev]
        [--embedder minilm|minilm-torch|hashing] [--store memory|chroma] [--limit N]
        [--threads N] [--embedder-cache DIR] [--json]

``minilm`` is all-MiniLM-L6-v2 as the agent runs it: through onnxruntime from an ONNX export
(made in a temporary folder unless --embedder-cache names one to keep it in; the export is timed
with the model load, apart from indexing); ``minilm-torch`` is the same model through
sentence-transformers (torch), the reference the export is checked against.

Figures: table recall@3/5/10 (share of a question's gold tables among the top-k ranked tables,
averaged over questions); prompt tables = top-5 plus foreign-key bridges, with the schema tokens
of that prompt (``render_schema`` + ``count_tokens``) against those of the whole merged catalog
(token_reduction = 1 - mean prompt tokens / catalog tokens) and their gold recall; p50/p95 of
``SchemaRetriever.retrieve()`` with the default k=5 (one run; index build timed separately).
Targets with MiniLM on CPU: recall@10 >= 0.95, token_reduction >= 0.90, p50 <= 25 ms.
With --json the last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlglot
from rich.console import Console
from rich.table import Table as RichTable
from sqlglot import exp

from sqlagent.catalog import Catalog, Column, ForeignKey, Table
from sqlagent.prompt import count_tokens, render_schema
from sqlagent.retrieval import (
    ChromaVectorStore,
    Embedder,
    HashingEmbedder,
    InMemoryVectorStore,
    OnnxEmbedder,
    RetrievalSettings,
    SchemaRetriever,
    SentenceTransformerEmbedder,
    VectorStore,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/spider-dev"
TARGETS = {"table_recall_at_10": 0.95, "token_reduction": 0.90, "p50_ms": 25.0}


def merged_catalog(tables_json: Path) -> tuple[Catalog, dict[str, dict[str, str]]]:
    """One catalog of every Spider schema; and, per db_id, lower-cased table -> merged name."""
    tables: list[Table] = []
    names: dict[str, dict[str, str]] = {}
    for db in json.loads(tables_json.read_text(encoding="utf-8")):
        db_id = db["db_id"]
        column_table = [t for t, _ in db["column_names_original"]]
        column_name = [c for _, c in db["column_names_original"]]
        pks = set()
        for pk in db["primary_keys"]:
            pks.update(pk if isinstance(pk, list) else [pk])
        merged = {}
        for index, table in enumerate(db["table_names_original"]):
            merged[index] = f"{db_id}.{table}"
            names.setdefault(db_id, {})[table.lower()] = merged[index]
        fks: dict[int, list[ForeignKey]] = {}
        for source, target in db["foreign_keys"]:
            fks.setdefault(column_table[source], []).append(
                ForeignKey(
                    (column_name[source],), merged[column_table[target]], (column_name[target],)
                )
            )
        for index in merged:
            columns = tuple(
                Column(column_name[i], db["column_types"][i].upper(), primary_key=i in pks)
                for i in range(len(column_table))
                if column_table[i] == index
            )
            tables.append(Table(merged[index], columns, foreign_keys=tuple(fks.get(index, ()))))
    return Catalog(tuple(tables)), names


def gold_tables(sql: str, tables: dict[str, str]) -> set[str] | None:
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return None
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found = {t.name.lower() for t in tree.find_all(exp.Table)} - ctes
    gold = {tables[name] for name in found if name in tables}
    return gold or None


def make_embedder(name: str, cache: Path, threads: int | None) -> Embedder:
    if name == "minilm":
        return OnnxEmbedder(cache, threads=threads)
    if name == "minilm-torch":
        if threads is not None:
            import torch  # process-wide, so only a benchmark (or an application) should decide it

            torch.set_num_threads(threads)
        return SentenceTransformerEmbedder()
    return HashingEmbedder()


def make_store(name: str, folder: Path) -> VectorStore:
    if name == "chroma":
        return ChromaVectorStore.persistent(folder, "spider-bench")
    return InMemoryVectorStore()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spider dev folder")
    parser.add_argument(
        "--embedder", choices=["minilm", "minilm-torch", "hashing"], default="minilm"
    )
    parser.add_argument("--store", choices=["memory", "chroma"], default="memory")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--column-docs", action="store_true", help="also one document per column")
    parser.add_argument("--lexical-weight", type=float, default=RetrievalSettings().lexical_weight)
    parser.add_argument(
        "--neighbour-weight", type=float, default=RetrievalSettings().neighbour_weight
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="MiniLM threads (default: the runtime's)"
    )
    parser.add_argument(
        "--embedder-cache", type=Path, default=None, help="keep the ONNX export here"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    if not (args.data / "dev.json").exists() or not (args.data / "tables.json").exists():
        print(f"Spider dev data not found at {args.data}", file=sys.stderr)
        return 2

    catalog, names = merged_catalog(args.data / "tables.json")
    items = json.loads((args.data / "dev.json").read_text(encoding="utf-8"))
    if args.limit is not None:
        items = items[: args.limit]
    config = RetrievalSettings(
        column_documents=args.column_docs,
        lexical_weight=args.lexical_weight,
        neighbour_weight=args.neighbour_weight,
    )
    with tempfile.TemporaryDirectory() as folder:
        cache = args.embedder_cache or Path(folder) / "embedders"
        embedder = make_embedder(args.embedder, cache, args.threads)
        store = make_store(args.store, Path(folder) / "index")
        retriever = SchemaRetriever(catalog, embedder, store, config=config)
        start = time.perf_counter()
        embedder.embed(["warm up"])  # model load (and export), reported apart from indexing
        load_s = time.perf_counter() - start
        report = retriever.sync(progress=not args.json)
        build_s = report.elapsed_ms / 1000.0
        result = run(retriever, catalog, names, items)
    result.update(
        embedder=embedder.name,
        store=args.store,
        tables=len(catalog),
        documents=len(retriever.documents),
        threads=args.threads,
        model_load_s=round(load_s, 2),
        index_build_s=round(build_s, 2),
    )
    show(result)
    if args.json:
        print(json.dumps(result))
    return 0


def run(
    retriever: SchemaRetriever,
    catalog: Catalog,
    names: dict[str, dict[str, str]],
    items: list[dict[str, Any]],
) -> dict[str, Any]:
    catalog_tokens = count_tokens(render_schema(catalog, "sqlite"))
    recall: dict[int, list[float]] = {3: [], 5: [], 10: []}
    prompt_recall: list[float] = []
    prompt_tokens: list[int] = []
    prompt_tables: list[int] = []
    latencies: list[float] = []
    skipped = 0
    for item in items:
        gold = gold_tables(item["query"], names[item["db_id"]])
        if gold is None:
            skipped += 1
            continue
        start = time.perf_counter()
        answer = retriever.retrieve(item["question"])
        latencies.append((time.perf_counter() - start) * 1000.0)
        prompt = set(answer.tables)
        prompt_recall.append(len(gold & prompt) / len(gold))
        prompt_tables.append(len(answer.tables))
        prompt_tokens.append(count_tokens(render_schema(catalog, "sqlite", tables=answer.tables)))
        ranked = retriever.retrieve(item["question"], k=10).ranked
        for k in recall:
            recall[k].append(len(gold & set(ranked[:k])) / len(gold))
    mean_tokens = statistics.fmean(prompt_tokens)
    latencies.sort()
    return {
        "questions": len(latencies),
        "skipped_unparsed": skipped,
        "table_recall_at_3": round(statistics.fmean(recall[3]), 4),
        "table_recall_at_5": round(statistics.fmean(recall[5]), 4),
        "table_recall_at_10": round(statistics.fmean(recall[10]), 4),
        "prompt_tables": "top-5 + foreign-key bridges",
        "prompt_table_recall": round(statistics.fmean(prompt_recall), 4),
        "prompt_tables_mean": round(statistics.fmean(prompt_tables), 2),
        "prompt_tokens_mean": round(mean_tokens, 1),
        "catalog_tokens": catalog_tokens,
        "token_reduction": round(1.0 - mean_tokens / catalog_tokens, 4),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[max(0, round(0.95 * len(latencies)) - 1)], 2),
    }


def show(result: dict[str, Any]) -> None:
    table = RichTable(
        title=f"Schema retrieval on Spider dev: {result['questions']} questions, "
        f"{result['tables']} tables in one catalog ({result['embedder']}, {result['store']})"
    )
    for col in ("figure", "value", "target"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for key, value in result.items():
        target = ""
        if key in TARGETS:
            ok = value <= TARGETS[key] if key.endswith("_ms") else value >= TARGETS[key]
            sign = "<=" if key.endswith("_ms") else ">="
            target = f"{sign} {TARGETS[key]} " + ("ok" if ok else "MISSED")
        table.add_row(key, str(value), target)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
