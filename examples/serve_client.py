"""The agent as an HTTP service: two API keys, two roles, the same question.

Builds the HR demo in a temporary folder, serves it with uvicorn on a free loopback port (in a
thread; `sqlagent serve` does the same in the foreground), and asks with an analyst key and an
HR key: the role comes from the key, so the analyst sees salaries masked and HR in clear. Then
the OpenAI-compatible endpoint, a request without a key, and the metrics.

Run: python examples/serve_client.py   (needs the serve extra: pip install 'sqlagent[serve]')
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from sqlagent import AgentConfig, SQLAgent
from sqlagent.demo import write_demo
from sqlagent.serve import ServeSettings, create_app, serve_in_thread

QUESTION = "Show first name and salary of the first employees"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        config = AgentConfig.from_mapping(
            {
                "database": demo.url,
                "policy": demo.policy,
                "examples": demo.examples,
                "retrieval": {"embedder": "hashing", "store": "memory"},
                "audit_log": Path(tmp) / "audit.jsonl",
            }
        )
        agent = SQLAgent(config)
        agent.add_example(QUESTION, "SELECT first_name, salary FROM employees ORDER BY id")
        # Plain keys only ever come from the environment; a serve.yaml holds their SHA-256.
        settings = ServeSettings.from_mapping(
            {"limits": {"max_concurrency": 1, "max_queue": 8}},
            environ={"SQLAGENT_API_KEYS": "analyst-secret:analyst,hr-secret:hr"},
        )
        app = create_app(agent, settings)  # its lifespan closes the agent on shutdown
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            print(f"serving on {url}: ready={client.get('/ready').json()['status']}")
            for key in ("analyst-secret", "hr-secret"):
                headers = {"Authorization": f"Bearer {key}"}
                answer = client.post("/v1/chat", json={"question": QUESTION}, headers=headers)
                body = answer.json()
                masked = ", ".join(body["masked_columns"]) or "none"
                print(f"\n{key}: role={body['role']} status={body['status']} masked={masked}")
                print(f"  sql: {body['sql']}")
                print(f"  first rows: {body['rows'][:3]}")

            openai = client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": QUESTION}], "model": "sqlagent"},
                headers={"Authorization": "Bearer hr-secret"},
            ).json()
            content = openai["choices"][0]["message"]["content"]
            print("\nOpenAI-compatible reply (first lines):", *content.splitlines()[:5], sep="\n  ")

            anonymous = client.post("/v1/chat", json={"question": QUESTION})
            print(f"\nno key: HTTP {anonymous.status_code} {anonymous.json()['error']['message']}")
            counts = [
                line
                for line in client.get("/metrics").text.splitlines()
                if line.startswith("sqlagent_http_requests_total")
            ]
            print("metrics:", *counts, sep="\n  ")
        lines = (Path(tmp) / "audit.jsonl").read_text().splitlines()
        print(f"\n{len(lines)} audit events for 4 API requests (one each)")


if __name__ == "__main__":
    main()
