""" "Did you mean": the closest names to one that was not found, for messages a model acts on."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_names"]


def close_names(word: str, candidates: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Up to ``n`` of ``candidates`` closest to ``word``, compared without case, each in the
    candidates' own spelling (the last one listed, when several differ only in case)."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    return tuple(lowered[h] for h in hits)
