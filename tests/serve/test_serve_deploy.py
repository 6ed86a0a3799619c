"""The deployment files parse, and agree with the app: routes, port, user, secrets, GPU, and
the scale-out: three replicas sharing Redis, one audit log in PostgreSQL, one vLLM."""

from __future__ import annotations

import re
from typing import Any

import yaml

from sqlagent.serve import ServeSettings
from tests.serve.conftest import ROOT_EXAMPLE

DEPLOY = ROOT_EXAMPLE.parent
PORT = 8000


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def load_all(name: str) -> dict[str, Any]:
    """A multi-document manifest, by ``kind``."""
    return {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / name).read_text())}


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
    assert '".[${SQLAGENT_EXTRAS}]"' in installs
    [extras] = [args for op, args in instructions if op == "ARG" and "SQLAGENT_EXTRAS" in args]
    assert set(extras.partition("=")[2].split(",")) == {
        "serve",
        "redis",
        "postgres",
        "openai",
        "local",
    }
    [entry] = [args for op, args in instructions if op == "ENTRYPOINT"]
    assert yaml.safe_load(entry)[:2] == ["sqlagent", "serve"]


def test_compose() -> None:
    services = load("docker-compose.yml")["services"]
    service = services["sqlagent"]
    assert service["deploy"]["replicas"] == 3
    assert "ports" not in service  # only the balancer is published
    assert services["lb"]["ports"] == [f"127.0.0.1:{PORT}:8080"]
    env = service["environment"]
    assert env["SQLAGENT_API_KEYS"].startswith("${SQLAGENT_API_KEYS")
    assert env["SQLAGENT_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")
    assert env["SQLAGENT_REDIS_URL"].endswith("@redis:6379/0")
    assert env["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert service["build"]["args"]["SQLAGENT_EXTRAS"] == "serve,redis,postgres,openai"
    assert f"127.0.0.1:{PORT}/health" in " ".join(service["healthcheck"]["test"])
    assert service["user"].split(":")[0] not in ("root", "0")
    assert set(service["depends_on"]) == {"redis", "postgres", "vllm"}
    assert "--requirepass" in services["redis"]["command"]
    [device] = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "deploy" not in services["lb"]


def test_the_balancer_spreads_over_the_replicas() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server sqlagent:8000 resolve", conf)
    assert "listen 8080;" in conf
    assert "non_idempotent" not in conf  # a POST that reached a replica is never sent again


def test_kubernetes() -> None:
    deployment = load("k8s/deployment.yaml")
    service = load("k8s/service.yaml")
    secret = load("k8s/secret.yaml")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == PORT
    assert "nvidia.com/gpu" not in container["resources"]["requests"]  # vLLM has the GPU
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
    assert {"SQLAGENT_REDIS_URL", "PGPASSWORD"} <= set(refs)


def test_kubernetes_services_the_replicas_share() -> None:
    secret = load("k8s/secret.yaml")["stringData"]
    redis, postgres, vllm = (load_all(f"k8s/{n}.yaml") for n in ("redis", "postgres", "vllm"))
    # the names and ports the replicas' URLs use
    assert secret["redis-url"].endswith("@redis:6379/0")
    assert redis["Service"]["metadata"]["name"] == "redis"
    assert redis["Service"]["spec"]["ports"][0]["port"] == 6379
    assert postgres["Service"]["metadata"]["name"] == "postgres"
    assert postgres["Service"]["spec"]["ports"][0]["port"] == 5432
    assert vllm["Service"]["metadata"]["name"] == "vllm"
    assert vllm["Service"]["spec"]["ports"][0]["port"] == PORT
    for manifest, workload in (
        (redis, "Deployment"),
        (postgres, "StatefulSet"),
        (vllm, "Deployment"),
    ):
        labels = manifest[workload]["spec"]["template"]["metadata"]["labels"]
        assert manifest["Service"]["spec"]["selector"].items() <= labels.items()
        for container in manifest[workload]["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if "valueFrom" in env:
                    assert env["valueFrom"]["secretKeyRef"]["key"] in secret
    [gpu] = vllm["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert postgres["StatefulSet"]["spec"]["volumeClaimTemplates"]


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
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.limits.service_max_concurrency is not None
    with_password = ServeSettings.from_file(
        DEPLOY / "serve.yaml",
        environ={"SQLAGENT_JWT_KEY": "j" * 32, "SQLAGENT_REDIS_URL": "redis://:pw@redis:6379/0"},
    )
    assert with_password.redis_url == "redis://:pw@redis:6379/0"
