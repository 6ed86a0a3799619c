"""Where sqlagent keeps its local state: ``.sqlagent/`` beside the config file, whatever the
current directory, and never committed (ignored in this repository and in the demo folder)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sqlagent import AgentConfig, RetrievalSettings
from sqlagent.cli import main
from sqlagent.demo import write_demo

ROOT = Path(__file__).resolve().parent.parent


def _project(folder: Path, **retrieval: object) -> Path:
    """The demo in ``folder`` with its config's retrieval section replaced."""
    paths = write_demo(folder)
    config = yaml.safe_load(paths.config.read_text())
    config["retrieval"] = retrieval
    paths.config.write_text(yaml.safe_dump(config))
    return paths.config


def test_defaults_are_beside_the_config_file_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = _project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    retrieval = AgentConfig.from_file(config_file).retrieval
    state = (tmp_path / "project" / ".sqlagent").resolve()
    assert retrieval.path == state / "index"
    assert retrieval.embedder_path == state / "embedders"
    assert retrieval.index_dir() == state / "index"
    assert retrieval.embedder_dir() == state / "embedders"


def test_configured_paths_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    absolute = tmp_path / "exports"
    config_file = _project(tmp_path / "p", path="idx", embedder_path=str(absolute))
    retrieval = AgentConfig.from_file(config_file).retrieval
    assert retrieval.path == (tmp_path / "p").resolve() / "idx"
    assert retrieval.embedder_path == absolute


def test_without_a_config_file_the_defaults_follow_the_current_directory() -> None:
    retrieval = AgentConfig.from_mapping({"database": "sqlite:///x.db"}).retrieval
    assert retrieval.path is None
    assert retrieval.index_dir() == Path(".sqlagent/index")
    assert retrieval.embedder_dir() == Path(".sqlagent/embedders")
    assert RetrievalSettings(threads=2).threads == 2


@pytest.mark.slow
def test_cli_index_writes_beside_the_config_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("chromadb") is None:
        pytest.skip("needs chromadb (sqlagent[retrieval])")
    config_file = _project(tmp_path / "project", embedder="hashing", store="chroma")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(main, ["index", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "project" / ".sqlagent" / "index" / "chroma.sqlite3").is_file()
    assert list(elsewhere.iterdir()) == []


def test_demo_folder_ignores_the_state_folder(tmp_path: Path) -> None:
    write_demo(tmp_path / "fresh")
    lines = (tmp_path / "fresh" / ".gitignore").read_text().splitlines()
    assert ".sqlagent/" in lines
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".gitignore").write_text("*.log")  # the user's own file: kept, and extended once
    write_demo(mine)
    write_demo(mine, overwrite=True)
    assert (mine / ".gitignore").read_text().splitlines()[0] == "*.log"
    assert (mine / ".gitignore").read_text().splitlines().count(".sqlagent/") == 1


def test_repository_ignores_the_state_folder(tmp_path: Path) -> None:
    assert ".sqlagent/" in (ROOT / ".gitignore").read_text().splitlines()
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".sqlagent/index/chroma.sqlite3", "demo/.sqlagent/embedders/x/model.onnx"):
        done = subprocess.run([git, "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert done.returncode == 0, f"{path} is not ignored"
