"""Retrieval against a real chroma server (``retrieval.url``), end to end.

A ``chroma run`` process on 127.0.0.1 (telemetry off, nothing to download: sqlagent supplies
every embedding) serves the index of the demo agent. These tests check what lands on the server
(one collection per role view, holding only what that role may read), that answers match an
agent whose index is kept in memory, that a stopped server fails a question cleanly (one
``failed`` answer, one audit event) until it is back, and that a second process finds the index
already built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
import yaml
from retrieval_helpers import HAS_CHROMA, NetworkGuard

from sqlagent import Catalog, SQLAgent, reflect_catalog
from sqlagent.audit import MemoryAuditSink
from sqlagent.config import AgentConfig
from sqlagent.demo import DemoPaths, write_demo
from sqlagent.errors import RetrievalError, SQLAgentError
from sqlagent.retrieval import http_chroma_client

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

pytestmark = [
    pytest.mark.slow,  # a server start (~2 s), a restart and a second Python process
    pytest.mark.skipif(not HAS_CHROMA, reason="chromadb is not installed (sqlagent[retrieval])"),
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
#: Two roles and a question each that the demo's mock model answers for that role.
QUESTIONS = {
    "viewer": "How many employees are in each department?",
    "hr": "What was the total payroll cost, bonuses included, of each department in 2025?",
}
#: More questions whose retrieval (not answer) is compared with an in-memory index.
PROBES = (
    *QUESTIONS.values(),
    "Which projects are still ongoing?",
    "salary and email of each employee",
    "hours per week on each project by employee",
    "payroll bonus per period",
)
#: Three tables of the viewer's four: the ranking, not the view's size, decides what is shown.
K_TABLES = 3
START_TIMEOUT_S = 30.0


def _chroma_executable() -> str | None:
    """The ``chroma`` script installed beside this Python (a venv's), else on ``PATH``."""
    return shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _offline_env() -> dict[str, str]:
    """This environment without chroma or OpenTelemetry settings (no exporter endpoint can be
    configured), telemetry off, Hugging Face offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHROMA_", "OTEL_"))}
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", NO_COLOR="1")
    return env


class ChromaServer:
    """A ``chroma run`` process serving ``path`` on ``127.0.0.1:port``.

    :meth:`stop` ends it (SIGTERM, then waits); :meth:`start` runs it again on the same folder
    and port. Its output goes to ``log``, quoted when it fails to start.
    """

    def __init__(self, executable: str, path: Path, port: int, log: Path) -> None:
        self.executable, self.path, self.port, self.log = executable, path, port, log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def heartbeat(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        """Run the server and wait for its heartbeat; a server that exits early (its port not yet
        free after a restart) is started again until ``START_TIMEOUT_S``."""
        assert self.process is None, "already running"
        deadline = time.monotonic() + START_TIMEOUT_S
        self._log_file = self.log.open("ab")
        command = [self.executable, "run", "--host", "127.0.0.1", "--port", str(self.port)]
        while True:
            self.process = subprocess.Popen(
                [*command, "--path", str(self.path)],
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_offline_env(),
                cwd=self.path.parent,
            )
            while self.process.poll() is None and time.monotonic() < deadline:
                if self.heartbeat():
                    return
                time.sleep(0.05)
            if self.process.poll() is None or time.monotonic() >= deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"chroma server did not start on {self.url}:\n{tail}")
            time.sleep(0.2)  # exited at once: try again

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _close_connections(port: int) -> None:
    """Close every chroma HTTP session of this process that talks to ``port``.

    chromadb 1.5 never closes an HttpClient's httpx session, not even in ``Client.close()``, and
    each client (and the admin client inside it) has a session of its own: the pooled sockets are
    left to the garbage collector, whose ResourceWarnings fail whichever test is running then
    (``filterwarnings = error``) or litter the end of the run. ``SQLAgent.close()`` leaves its
    client open too. So no client here is closed one by one; the module closes them all at the
    end, once the agents are closed.
    """
    from chromadb.api.fastapi import FastAPI
    from chromadb.api.shared_system_client import SharedSystemClient

    for system in list(SharedSystemClient._identifier_to_system.values()):
        if system.settings.chroma_server_http_port == port:
            for component in system.components():
                if isinstance(component, FastAPI):
                    component._session.close()


@dataclass(frozen=True)
class Setup:
    """The demo, its config file pointing at the server, and an agent that indexed every role."""

    server: ChromaServer
    demo: DemoPaths
    config: Path
    agent: SQLAgent
    audit: MemoryAuditSink
    catalog: Catalog  # the full catalog, as reflected


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    executable = _chroma_executable()
    if executable is None:
        pytest.skip("the `chroma` executable (chromadb's server) is not installed")
    folder = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(executable, folder / "data", _free_port(), folder / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        _close_connections(server.port)


def _write_config(demo: DemoPaths, name: str, retrieval: dict[str, Any]) -> Path:
    """The demo's config with ``retrieval`` replaced and no audit file (events go to memory)."""
    data = yaml.safe_load(demo.config.read_text(encoding="utf-8"))
    data.pop("audit_log", None)
    data["retrieval"] = retrieval
    path = demo.config.parent / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(chroma: ChromaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    demo = write_demo(tmp_path_factory.mktemp("chroma-demo"))
    config = _write_config(
        demo, "server.yaml", {"url": chroma.url, "embedder": "hashing", "k_tables": K_TABLES}
    )
    audit = MemoryAuditSink()
    guard = NetworkGuard()
    with pytest.MonkeyPatch.context() as mp:
        guard.install(mp)
        agent = SQLAgent(AgentConfig.from_file(config), audit=audit)
        lines = list(agent.build_index())
    assert guard.attempts == []
    assert len(lines) == 4, lines  # admin, analyst, hr, viewer
    try:
        yield Setup(chroma, demo, config, agent, audit, reflect_catalog(demo.url))
    finally:
        agent.close()


@pytest.fixture(scope="module")
def memory_agent(setup: Setup) -> Iterator[SQLAgent]:
    """The same agent with its index in process memory: the reference for retrieval."""
    config = _write_config(
        setup.demo, "memory.yaml", {"store": "memory", "embedder": "hashing", "k_tables": K_TABLES}
    )
    agent = SQLAgent(AgentConfig.from_file(config), audit=MemoryAuditSink())
    try:
        yield agent
    finally:
        agent.close()


def _collection_name(agent: SQLAgent, role: str) -> str:
    view = agent.view(role)
    assert agent.retrieval is not None
    return agent.retrieval.collection_name(view.catalog, masked=view.masked)


def _names(catalog: Catalog) -> set[str]:
    return {t.name.lower() for t in catalog} | {c.name.lower() for t in catalog for c in t.columns}


def _mentions(text: str, words: set[str]) -> set[str]:
    return {w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)}


@pytest.fixture
def client(setup: Setup) -> ClientAPI:
    """A client of the test's chroma server, for looking at what is stored there."""
    return http_chroma_client("127.0.0.1", setup.server.port)  # closed by _close_connections


def test_server_collections_hold_only_what_each_role_may_read(
    setup: Setup, client: ClientAPI
) -> None:
    agent = setup.agent
    assert agent.policy is not None
    roles = sorted(agent.policy.roles)
    expected = {role: _collection_name(agent, role) for role in roles}
    assert {c.name for c in client.list_collections()} == set(expected.values())
    assert expected["viewer"] not in {expected["analyst"], expected["hr"]}
    assert agent.retrieval is not None

    for role in roles:
        view = agent.view(role)
        stored = client.get_collection(expected[role]).get(include=["documents", "metadatas"])
        documents = stored["documents"] or []
        metadatas = stored["metadatas"] or []
        # exactly the documents the retriever approved for this view, nothing else
        approved = agent.retrieval.retriever(view.catalog, masked=view.masked).documents
        assert dict(zip(stored["ids"], documents, strict=True)) == {d.id: d.text for d in approved}
        hidden = _names(setup.catalog) - _names(view.catalog)
        for id_, text, meta in zip(stored["ids"], documents, metadatas, strict=True):
            everything = " ".join([text, *(str(v) for v in (meta or {}).values())])
            assert not _mentions(everything, hidden), (role, id_, _mentions(everything, hidden))
            if (meta or {}).get("kind") == "table":
                assert str((meta or {})["table"]) in view.catalog.table_names, (role, id_)

    viewer = client.get_collection(expected["viewer"]).get(include=["documents", "metadatas"])
    text = " ".join([*(viewer["documents"] or []), *map(str, viewer["metadatas"] or [])])
    for word in ("payroll", "salary", "email", "phone", "national_id", "gross_pay", "bonus"):
        assert not re.search(rf"\b{word}\b", text, re.IGNORECASE), word
    hr = " ".join(
        client.get_collection(expected["hr"]).get(include=["documents"])["documents"] or []
    )
    assert re.search(r"\bpayroll\b", hr)  # the filter is per role, not a blanket one


def test_answers_match_an_in_memory_index(setup: Setup, memory_agent: SQLAgent) -> None:
    for role, question in QUESTIONS.items():
        served, local = setup.agent.ask(question, role=role), memory_agent.ask(question, role=role)
        assert served.status == "answered", (role, served.error)
        assert (served.tables, served.sql, served.rows) == (local.tables, local.sql, local.rows)
    narrowed = 0  # probes where the ranking, not the view, decided the tables
    for role in QUESTIONS:
        visible = len(setup.agent.view(role).catalog)
        for question in PROBES:
            served = setup.agent.search_schema(question, role=role)
            local = memory_agent.search_schema(question, role=role)
            assert (served.tables, served.examples, served.docs) == (
                local.tables,
                local.examples,
                local.docs,
            ), (role, question)
            assert served.scores == pytest.approx(local.scores, abs=1e-4)
            narrowed += len(served.tables) < visible
    assert narrowed >= 4
    viewer = setup.agent.search_schema(QUESTIONS["hr"], role="viewer")
    assert "payroll" not in viewer.tables


def test_a_stopped_server_fails_questions_until_it_is_back(setup: Setup) -> None:
    agent, audit, server = setup.agent, setup.audit, setup.server
    question = QUESTIONS["viewer"]
    before = agent.ask(question, role="viewer")
    assert before.ok
    count = len(audit.events)
    server.stop()
    try:
        down = agent.ask(question, role="viewer")
        assert down.status == "failed"
        assert (down.sql, down.rows, down.attempts) == (None, (), ())  # the model was not asked
        assert (down.error or "").startswith("schema retrieval failed: ")
        assert len(audit.events) == count + 1
        event = audit.events[-1]
        assert (event.verdict, event.error, event.request_id) == (
            "error",
            down.error,
            down.audit_id,
        )
        with pytest.raises(RetrievalError, match="schema retrieval failed"):
            agent.search_schema(question, role="hr")
    finally:
        server.start()
    again = agent.ask(question, role="viewer")
    assert again.ok, again.error
    assert (again.tables, again.rows) == (before.tables, before.rows)
    assert agent.ask(QUESTIONS["hr"], role="hr").ok


def test_a_server_down_at_start_is_a_sqlagent_error(setup: Setup) -> None:
    """An agent built while its chroma server is down either starts and fails its questions
    with a RetrievalError (as when the server stops mid-session), or refuses to start with a
    SQLAgentError; never a foreign exception."""
    nowhere = _write_config(
        setup.demo,
        "nowhere.yaml",
        {"url": f"http://127.0.0.1:{_free_port()}", "embedder": "hashing"},
    )
    refusal: SQLAgentError | None = None
    try:
        agent = SQLAgent(AgentConfig.from_file(nowhere), audit=MemoryAuditSink())
    except SQLAgentError as exc:
        refusal = exc
    if refusal is not None:
        assert "127.0.0.1" in str(refusal)  # names the server it could not reach
        return
    with agent:
        answer = agent.ask(QUESTIONS["viewer"], role="viewer")
    assert answer.status == "failed"
    assert (answer.error or "").startswith("schema retrieval failed: ")


SECOND_PROCESS = textwrap.dedent(
    """\
    import json, sys

    sys.path.insert(0, sys.argv[3])
    import pytest
    from retrieval_helpers import CountingEmbedder, NetworkGuard

    from sqlagent import SQLAgent
    from sqlagent.config import AgentConfig
    from sqlagent.retrieval import ChromaVectorStore, RetrievalIndex, http_chroma_client

    guard = NetworkGuard()
    guard.install(pytest.MonkeyPatch())
    agent = SQLAgent(AgentConfig.from_file(sys.argv[1]))
    client = http_chroma_client("127.0.0.1", int(sys.argv[2]))
    index = agent.retrieval
    # the agent's index, rebuilt from its public parts with an embedder that counts its texts
    counting = CountingEmbedder(index.embedder)
    probe = RetrievalIndex(
        index.catalog,
        embedder=counting,
        stores=lambda name: ChromaVectorStore(client, name),
        docs=agent.docs,
        examples=agent.examples.examples,
        dialect=agent.dialect,
        config=index.config,
    )
    out = {"collections": sorted(c.name for c in client.list_collections()), "roles": {}}
    for role, question in json.loads(sys.argv[4]).items():
        view = agent.view(role)
        name = index.collection_name(view.catalog, masked=view.masked)
        probe.retriever(view.catalog, masked=view.masked)  # syncs: embeds what is missing
        answer = agent.ask(question, role=role)
        out["roles"][role] = {
            "collection": name,
            "same_name": probe.collection_name(view.catalog, masked=view.masked) == name,
            "status": answer.status,
            "tables": list(answer.tables),
            "rows": [list(r) for r in answer.rows],
        }
    out["embedded"] = counting.texts
    out["network"] = [repr(a) for a in guard.attempts]
    agent.close()
    print(json.dumps(out))
    """
)


def test_a_second_process_uses_the_index_on_the_server(
    setup: Setup, client: ClientAPI, tmp_path: Path
) -> None:
    collections = sorted(c.name for c in client.list_collections())
    script = tmp_path / "second_agent.py"
    script.write_text(SECOND_PROCESS, encoding="utf-8")
    env = _offline_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    arguments = [str(setup.config), str(setup.server.port), str(HERE), json.dumps(QUESTIONS)]
    done = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["network"] == []
    assert out["collections"] == collections  # found on the server, before any question
    assert out["embedded"] == []  # every document already there and current: nothing rebuilt
    for role, question in QUESTIONS.items():
        here = setup.agent.ask(question, role=role)
        there = out["roles"][role]
        assert there["collection"] == _collection_name(setup.agent, role)
        assert there["same_name"]
        assert there["status"] == "answered"
        assert there["tables"] == list(here.tables)
        assert there["rows"] == [list(r) for r in here.rows]
    assert sorted(c.name for c in client.list_collections()) == collections
