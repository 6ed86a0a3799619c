"""Shared fixtures: the demo database, the fixture catalog, and paths to ../shared data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sqlagent import Catalog
from sqlagent.demo import build_demo_database

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared" / "data"
SPIDER = SHARED / "spider-dev"


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo HR database, built once per test session by the project's own code."""
    return build_demo_database(tmp_path_factory.mktemp("demo") / "hr.sqlite")


@pytest.fixture(scope="session")
def fixture_catalog() -> Catalog:
    return Catalog.from_json(FIXTURES / "catalog.json")


_SLOW_MODULE = re.compile(r"^pytestmark = pytest\.mark\.slow\b", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not slow"``, a module marked slow as a whole is not even imported: several
    import heavy libraries (torch, LangChain, the MCP SDK), which would cost the dev loop
    seconds for tests it deselects anyway. Anything else is collected as usual."""
    markexpr = str(config.getoption("markexpr", "") or "")
    if markexpr.replace(" ", "") != "notslow" or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    try:
        head = collection_path.read_text(encoding="utf-8")
    except OSError:
        return None
    return True if _SLOW_MODULE.search(head) else None
