"""The public API: explicit, sorted, importable ``__all__`` lists; no work at import time."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import sqlagent


def _public_modules() -> list[str]:
    """Every package of sqlagent and every public module (no leading underscore) in it."""
    found = ["sqlagent"]
    for info in pkgutil.walk_packages(sqlagent.__path__, "sqlagent."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return sorted(found)


#: The ``__all__`` check runs here once, for every public module (no copies elsewhere).
MODULES = _public_modules()


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
        assert issubclass(getattr(errors, name), errors.SQLAgentError)


@pytest.mark.slow
def test_import_does_no_heavy_work() -> None:
    code = (
        "import sys, sqlagent, sqlagent.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'chromadb', 'psycopg', 'pymysql', "
        "'sentence_transformers', 'langchain_core', 'peft', 'gguf', 'numpy', 'mcp') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_sql_is_spelled_one_way_in_class_names() -> None:
    """``SQLAgent``, ``SQLAgentError``, ``SQLAuditSink``: never ``Sql`` or ``Sqlagent``."""
    import ast

    odd = []
    for path in sorted((Path(sqlagent.__file__).parent).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and ("Sql" in node.name or "Sqlagent" in node.name):
                odd.append(f"{path.name}: {node.name}")
    assert odd == []


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("sqlagent", "SqlAgentError", "SQLAgentError"),
        ("sqlagent.errors", "SqlAgentError", "SQLAgentError"),
        ("sqlagent.audit", "SqlAuditSink", "SQLAuditSink"),
    ],
)
def test_old_spellings_still_import_with_a_warning(module: str, old: str, new: str) -> None:
    imported = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(imported, old) is getattr(imported, new)
    assert old not in imported.__all__
