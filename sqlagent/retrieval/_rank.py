"""Ranking helpers over one catalog: lexical name matching and foreign-key join paths."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from sqlagent.catalog import Catalog
from sqlagent.retrieval._text import terms

__all__ = ["Lexicon", "foreign_key_bridges", "foreign_key_graph"]

_TABLE_WEIGHT = 1.0
_COLUMN_WEIGHT = 0.5


class Lexicon:
    """Which tables' names and column names a question's words match, weighted by rarity.

    ``score(question)`` maps each matching table to a value in [0, 1]: the IDF-weighted share of
    the question's schema words found in the table's name (full weight) or only in its column
    names (half weight). Words that name nothing in the catalog do not count.
    """

    def __init__(self, catalog: Catalog) -> None:
        weights: dict[str, dict[str, float]] = {}
        for table in catalog:
            for word in terms(" ".join(c.name for c in table.columns)):
                weights.setdefault(word, {})[table.name] = _COLUMN_WEIGHT
            for word in terms(table.name):
                weights.setdefault(word, {})[table.name] = _TABLE_WEIGHT
        total = max(len(catalog), 1)
        self._idf = {word: math.log(1.0 + total / len(t)) for word, t in weights.items()}
        self._tables = weights

    def score(self, question: str) -> dict[str, float]:
        words = [w for w in dict.fromkeys(terms(question)) if w in self._idf]
        denominator = sum(self._idf[w] for w in words)
        scores: dict[str, float] = {}
        for word in words:
            idf = self._idf[word]
            for table, weight in self._tables[word].items():
                scores[table] = scores.get(table, 0.0) + weight * idf
        return {t: s / denominator for t, s in scores.items()} if denominator else {}


def foreign_key_graph(catalog: Catalog) -> dict[str, set[str]]:
    """Undirected adjacency of tables joined by a foreign key (within ``catalog``)."""
    graph: dict[str, set[str]] = {t.name: set() for t in catalog}
    for table in catalog:
        for fk in table.foreign_keys:
            if fk.ref_table in graph and fk.ref_table != table.name:
                graph[table.name].add(fk.ref_table)
                graph[fk.ref_table].add(table.name)
    return graph


def _path(graph: dict[str, set[str]], start: str, goal: str, max_edges: int) -> list[str] | None:
    parents: dict[str, str | None] = {start: None}
    queue = deque([(start, 0)])
    while queue:
        node, depth = queue.popleft()
        if node == goal:
            path = []
            step: str | None = node
            while step is not None:
                path.append(step)
                step = parents[step]
            return path[::-1]
        if depth == max_edges:
            continue
        for nxt in sorted(graph.get(node, ())):
            if nxt not in parents:
                parents[nxt] = node
                queue.append((nxt, depth + 1))
    return None


def foreign_key_bridges(
    graph: dict[str, set[str]], tables: Sequence[str], *, max_hops: int = 2
) -> tuple[str, ...]:
    """Tables outside ``tables`` that lie on a shortest foreign-key path between two of them.

    For each pair (in rank order) joined by a path of at most ``max_hops`` intermediate tables,
    the intermediate tables are added: the bridge (link) tables a query needs to join them.
    Deterministic: ties between equally short paths go to the alphabetically first.
    """
    chosen = set(tables)
    added: dict[str, None] = {}
    for i, left in enumerate(tables):
        for right in tables[i + 1 :]:
            path = _path(graph, left, right, max_hops + 1)
            if path is None:
                continue
            for table in path[1:-1]:
                if table not in chosen:
                    added[table] = None
    return tuple(added)
