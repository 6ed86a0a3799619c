"""A one-shot ``sqlagent ask`` stays light: with the embedder's ONNX export in place, neither
``index`` nor ``ask`` imports torch, transformers or sentence-transformers, and heavy packages
are imported only by the paths that need them. (Timings live in benchmarks/cold_start.py.)"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sqlagent.demo import write_demo
from tests.onnx_export import shared_export_cache

HEAVY = ("torch", "transformers", "sentence_transformers")
QUESTION = "How many employees are in each department?"

# Runs the CLI in a fresh interpreter and reports, on its last stderr line, which heavy
# packages the command imported.
_CLI = """
import json, sys
from sqlagent.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in %r if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def _cli(*args: str, cwd: Path) -> tuple[int, str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _CLI % (HEAVY,), *args], cwd=cwd, capture_output=True, text=True
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return int(report["code"] or 0), done.stdout, list(report["heavy"])


def _imported_by(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in done.stdout.split()}


@pytest.mark.slow
def test_ask_on_the_demo_imports_no_torch(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if importlib.util.find_spec("chromadb") is None:
        pytest.skip("the demo's default store needs chromadb (sqlagent[retrieval])")
    cache = shared_export_cache(tmp_path_factory)  # made once per session, elsewhere
    paths = write_demo(tmp_path / "demo")
    config = yaml.safe_load(paths.config.read_text())
    config["retrieval"]["embedder_path"] = str(cache)
    paths.config.write_text(yaml.safe_dump(config))

    code, out, heavy = _cli("index", "--config", str(paths.config), cwd=tmp_path)
    assert (code, heavy) == (0, []), out
    code, out, heavy = _cli(
        "ask", "--config", str(paths.config), "--role", "analyst", "--json", QUESTION, cwd=tmp_path
    )
    assert (code, heavy) == (0, []), out
    answer = json.loads(out)
    assert answer["status"] == "answered"
    assert answer["rows"][0] == ["Engineering", 18]
    # the index the ask read is the one beside the config; the export was not made again
    assert (paths.config.parent / ".sqlagent" / "index" / "chroma.sqlite3").is_file()
    assert not (paths.config.parent / ".sqlagent" / "embedders").exists()


@pytest.mark.slow
def test_heavy_packages_are_imported_only_where_needed() -> None:
    light = _imported_by("import sqlagent, sqlagent.cli")
    for package in (*HEAVY, "chromadb", "onnxruntime", "tokenizers", "numpy", "fastapi", "httpx"):
        assert package not in light, f"`import sqlagent, sqlagent.cli` imports {package}"
    built = _imported_by(
        "from sqlagent.retrieval import default_embedder, OnnxEmbedder\n"
        "default_embedder('/nonexistent/cache'); OnnxEmbedder('/nonexistent/cache')"
    )
    assert not built & {*HEAVY, "onnxruntime", "tokenizers"}  # chosen, not loaded
