"""The deployment files parse, and agree with the app: routes, port, user, secrets, GPU."""

from __future__ import annotations

from typing import Any

import yaml

from sqlagent.serve import ServeSettings
from tests.serve.conftest import ROOT_EXAMPLE

DEPLOY = ROOT_EXAMPLE.parent
PORT = 8000


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, args = (pending + line).partition(" ")
        lines.append((instruction.upper(), args.strip()))
        pending = ""
    return lines


def test_dockerfile() -> None:
    instructions = dockerfile()
    froms = [args for op, args in instructions if op == "FROM"]
    assert len(froms) == 1
    assert froms[0].startswith("nvidia/cuda:12.")
    assert "runtime" in froms[0]
    users = [args for op, args in instructions if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert [args for op, args in instructions if op == "EXPOSE"] == [str(PORT)]
    [health] = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{PORT}/health" in health
    installs = " ".join(args for op, args in instructions if op == "RUN")
    assert "[serve,local]" in installs
    [entry] = [args for op, args in instructions if op == "ENTRYPOINT"]
    assert yaml.safe_load(entry)[:2] == ["sqlagent", "serve"]


def test_compose() -> None:
    service = load("docker-compose.yml")["services"]["sqlagent"]
    [device] = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert service["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    assert service["environment"]["SQLAGENT_API_KEYS"].startswith("${SQLAGENT_API_KEYS")
    assert f"127.0.0.1:{PORT}/health" in " ".join(service["healthcheck"]["test"])
    assert service["user"].split(":")[0] not in ("root", "0")


def test_kubernetes() -> None:
    deployment = load("k8s/deployment.yaml")
    service = load("k8s/service.yaml")
    secret = load("k8s/secret.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == PORT
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    probes = {name: container[name]["httpGet"] for name in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/ready"
    for probe in probes.values():
        assert probe["port"] in (PORT, port["name"])
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert refs["SQLAGENT_API_KEYS"]["name"] == secret["metadata"]["name"]
    assert {r["key"] for r in refs.values()} <= set(secret["stringData"])
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] in (PORT, port["name"])
    args = container["args"]
    assert args[args.index("--serve-config") + 1].endswith("serve.yaml")


def test_probed_paths_are_routes_of_the_app(serve: Any) -> None:
    client = serve()
    routes = {route.path for route in client.app.routes}  # type: ignore[attr-defined]
    container = load("k8s/deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    probed = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probed <= routes
    for path in (*probed, "/metrics"):
        assert client.get(path).status_code == 200


def test_readme_mentions_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(DEPLOY)) in readme, path


def test_example_serve_config_loads_with_env_secrets() -> None:
    settings = ServeSettings.from_file(
        DEPLOY / "serve.yaml",
        environ={"SQLAGENT_JWT_KEY": "j" * 32, "SQLAGENT_API_KEYS": "k:viewer"},
    )
    assert [k.role for k in settings.keys] == ["analyst", "hr", "viewer"]
