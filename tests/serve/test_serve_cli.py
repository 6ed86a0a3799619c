"""``sqlagent serve``: configuration, the missing-extra message, and one real socket."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from click.testing import CliRunner

from sqlagent.cli._serve import serve
from sqlagent.demo import write_demo
from sqlagent.serve import hash_key, serve_in_thread

QUESTION = {"question": "How many employees are in each department?"}


def fast_config(tmp_path: Path) -> Path:
    """A demo of its own with the demo's agent config, retrieval made fast (relative paths:
    the config resolves them against its folder)."""
    demo = write_demo(tmp_path)
    config = yaml.safe_load(demo.config.read_text())
    config["retrieval"] = {"embedder": "hashing", "store": "memory"}
    demo.config.write_text(yaml.safe_dump(config))
    return demo.config


def test_without_the_extra_it_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(serve, ["--db", "sqlite://"])
    assert result.exit_code == 2
    assert "pip install 'sqlagent[serve]'" in result.output


def test_a_bad_serve_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "serve.yaml"
    bad.write_text("keys: [{name: a, role: analyst, key_sha256: nothex}]\n")
    result = CliRunner().invoke(
        serve, ["--config", str(fast_config(tmp_path)), "--serve-config", str(bad)]
    )
    assert result.exit_code == 2
    assert "key_sha256" in result.output


@pytest.mark.slow
def test_serve_runs_uvicorn_on_a_real_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_yaml = tmp_path / "serve.yaml"
    serve_yaml.write_text(
        f"keys:\n  - {{name: alice, role: hr, key_sha256: {hash_key('alice-key')}}}\n"
    )
    monkeypatch.setenv("SQLAGENT_API_KEYS", "bob-key:viewer")
    seen: dict[str, Any] = {}

    def run(app: Any, **options: Any) -> None:  # the real server, on a free loopback port
        seen.update(options)
        with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
            for key in ("alice-key", "bob-key"):
                headers = {"Authorization": f"Bearer {key}"}
                seen[key] = client.post("/v1/chat", json=QUESTION, headers=headers).json()
            seen["ready"] = client.get("/ready").status_code

    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(
        serve,
        ["--config", str(fast_config(tmp_path)), "--serve-config", str(serve_yaml),
         "--port", "8123"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert seen["alice-key"]["role"] == "hr"
    assert seen["bob-key"]["role"] == "viewer"
    assert seen["ready"] == 200
    audit = (tmp_path / "audit.jsonl").read_text().splitlines()
    ids = {seen["alice-key"]["audit_id"], seen["bob-key"]["audit_id"]}
    assert sum(any(i in line for i in ids) for line in audit) == 2


def test_warns_when_nobody_can_get_in(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("SQLAGENT_API_KEYS", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: None)
    result = CliRunner().invoke(serve, ["--config", str(fast_config(tmp_path))])
    assert result.exit_code == 0
    assert "every request will get 401" in result.output
