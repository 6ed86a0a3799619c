"""The package's shape: the layers contract holds, and no package imports another's private names.

CI runs pytest (README.md's command, .ci/run), so these tests are what enforces the import-linter
contract in pyproject.toml's ``[tool.importlinter]`` and the rule that a package's underscored
modules and names are its own (the style notes' "Layers and seams").
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: Private imports across packages that are known, each waiting for a change in a file its owner
#: edits, as ``(importing module, imported name)``. The test fails when one is fixed and still
#: listed, so this list only shrinks.
KNOWN_PRIVATE_IMPORTS: frozenset[tuple[str, str]] = frozenset()


@pytest.mark.slow
def test_import_contracts_are_kept() -> None:
    """``lint-imports`` with the project's contracts: every top-level module of sqlagent is in
    a layer, and none imports from a layer above its own; the safety core imports nothing that
    records or acts on a verdict (audit, config, agent, retrieval, llm, serve ...)."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.is_file(), f"no {lint}: install the dev extra (pip install -e '.[dev]')"
    result = subprocess.run(
        [str(lint), "--no-cache", "--no-logo"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "the safety core is pure KEPT" in result.stdout
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def _units(package: Path) -> frozenset[str]:
    """The subpackages of ``package`` (folders with ``__init__.py``)."""
    return frozenset(p.name for p in package.iterdir() if (p / "__init__.py").is_file())


def _unit(parts: list[str], subpackages: frozenset[str]) -> str:
    """Which package owns a module: its top-level subpackage, or the root package itself for
    the root's own modules (``sqlagent.agent``, ``sqlagent._assembly``)."""
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in subpackages else parts[0]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(package: Path) -> set[tuple[str, str]]:
    """``(importer, imported)`` for every import, anywhere in ``package``'s modules, of a name
    whose dotted path goes through an underscored module or name owned by another package."""
    subpackages = _units(package)
    found: set[tuple[str, str]] = set()
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        importer = ".".join(parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts if is_init else parts[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                dotted = target.split(".")
                if dotted[0] != package.name:
                    continue
                first = next((i for i, name in enumerate(dotted) if _is_private(name)), None)
                if first is None:
                    continue
                if _unit(dotted[:first], subpackages) != _unit(parts, subpackages):
                    found.add((importer, target))
    return found


@pytest.mark.slow
def test_no_private_imports_across_packages() -> None:
    found = private_imports(ROOT / "sqlagent")
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    assert not new, "private names imported from another package (use its public names):\n" + (
        "\n".join(f"{importer} imports {imported}" for importer, imported in new)
    )
    fixed = sorted(KNOWN_PRIVATE_IMPORTS - found)
    assert not fixed, "fixed: remove from KNOWN_PRIVATE_IMPORTS:\n" + "\n".join(map(str, fixed))


def test_the_private_import_check_sees_every_form(tmp_path: Path) -> None:
    """The checker on a small package: absolute, relative and module imports of another
    package's private parts are found; a package's own private parts, dunders, and the root's
    private modules used by the root's own modules are not."""
    root = tmp_path / "pkg"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("from pkg.a._impl import thing\n")
    (root / "_shared.py").write_text("x = 1\n")
    (root / "main.py").write_text("from pkg._shared import x\nfrom pkg import __version__\n")
    (root / "a" / "_impl.py").write_text("from pkg.a._other import y\nfrom ._other import z\n")
    (root / "a" / "_other.py").write_text("")
    (root / "b" / "_use.py").write_text(
        "from pkg.a._impl import thing\n"
        "from ..a import _helper\n"
        "import pkg.a._other\n"
        "from pkg._shared import x\n"
        "from pkg.main import _private\n"
        "from pkg.a import public\n"
    )
    assert private_imports(root) == {
        ("pkg", "pkg.a._impl.thing"),
        ("pkg.b._use", "pkg.a._impl.thing"),
        ("pkg.b._use", "pkg.a._helper"),
        ("pkg.b._use", "pkg.a._other"),
        ("pkg.b._use", "pkg._shared.x"),
        ("pkg.b._use", "pkg.main._private"),
    }
