"""The public API: explicit, sorted, importable ``__all__`` lists; no work at import time."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = ["sqlagent", "sqlagent.audit", "sqlagent.catalog", "sqlagent.demo", "sqlagent.safety",
           "sqlagent.errors", "sqlagent.types", "sqlagent.execution", "sqlagent.llm",
           "sqlagent.retrieval", "sqlagent.prompt", "sqlagent.config", "sqlagent.memory",
           "sqlagent.agent", "sqlagent.langchain", "sqlagent.evaluation",
           "sqlagent.training", "sqlagent.serve", "sqlagent.doctor",
           "sqlagent.llm.local", "sqlagent.mcp"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is missing"


def test_every_error_derives_from_the_root() -> None:
    import sqlagent.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SqlAgentError)


def test_import_does_no_heavy_work() -> None:
    code = (
        "import sys, sqlagent, sqlagent.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'chromadb', 'psycopg', 'pymysql', "
        "'sentence_transformers', 'langchain_core', 'peft', 'gguf', 'numpy', 'mcp') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
