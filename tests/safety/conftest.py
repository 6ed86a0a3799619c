"""Fixtures of the noninterference suite (``test_noninterference_*.py``): pairs of databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.safety.noninterference.harness import Pair, ServerUnavailable, build_pair

PairFactory = Callable[..., Pair]


@pytest.fixture(scope="session")
def ni_pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PairFactory]:
    """``ni_pairs(engine, control=False)``: the pair of databases for ``engine``, built once per
    session (and dropped at its end); skips the test when the engine's server does not answer."""
    pairs: dict[tuple[str, bool], Pair | str] = {}

    def get(engine: str, control: bool = False) -> Pair:
        key = (engine, control)
        if key not in pairs:
            try:
                directory: Path | None = None
                if engine == "sqlite":
                    directory = tmp_path_factory.mktemp(f"ni_{engine}_{int(control)}")
                pairs[key] = build_pair(engine, control=control, directory=directory)
            except ServerUnavailable as exc:
                pairs[key] = str(exc)
        got = pairs[key]
        if isinstance(got, str):
            pytest.skip(got)
        return got

    try:
        yield get
    finally:
        for pair in pairs.values():
            if isinstance(pair, Pair):
                pair.close()
