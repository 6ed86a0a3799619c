"""Shared fixtures: the demo database, the fixture catalog, and paths to ../shared data."""

from __future__ import annotations

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
