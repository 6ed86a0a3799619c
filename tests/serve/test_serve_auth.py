"""Who may ask, as which role: API keys, JWTs, default_role; the body never picks the role."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from sqlagent.errors import ConfigError
from sqlagent.serve import Authenticator, AuthError, ServeSettings, hash_key
from tests.serve.conftest import JWT_SECRET, RecordingSink, auth, settings_for

QUESTION = {"question": "How many employees are in each department?"}
ROLES = ["viewer", "analyst", "hr", "admin"]


def token(**claims: Any) -> str:
    base: dict[str, Any] = {"sub": "alice", "role": "hr", "exp": int(time.time()) + 60}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, JWT_SECRET, "HS256")


def jwt_settings(**jwt_options: Any) -> ServeSettings:
    return settings_for(jwt={"algorithm": "HS256", **jwt_options})


def test_no_credential_is_401_and_audited(serve: Any, sink: RecordingSink) -> None:
    client = serve()
    response = client.post("/v1/chat", json=QUESTION)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "unauthorized"
    [event] = sink.events
    assert event.name == "serve"
    assert event.request_id == response.headers["X-Request-ID"]
    assert event.extra["http_status"] == 401
    assert not sink.named("ask")


@pytest.mark.parametrize("header", [{"Authorization": "Bearer nope"}, {"X-API-Key": "nope"},
                                    {"Authorization": "Basic a2V5LWhyOg=="}])  # fmt: skip
def test_bad_credentials_are_401(serve: Any, header: dict[str, str]) -> None:
    assert serve().post("/v1/chat", json=QUESTION, headers=header).status_code == 401


@pytest.mark.parametrize(("key", "role"), [("key-viewer", "viewer"), ("key-hr", "hr")])
def test_the_key_decides_the_role(serve: Any, sink: RecordingSink, key: str, role: str) -> None:
    client = serve()
    answer = client.post("/v1/chat", json=QUESTION, headers=auth(key)).json()
    assert answer["status"] == "answered"
    assert answer["role"] == role
    same = client.post("/v1/chat", json=QUESTION, headers={"X-API-Key": key}).json()
    assert same["role"] == role
    assert [e.role for e in sink.named("ask")] == [role, role]


@pytest.mark.parametrize("endpoint", ["/v1/chat", "/v1/chat/completions"])
def test_a_role_in_the_body_is_refused(serve: Any, sink: RecordingSink, endpoint: str) -> None:
    body: dict[str, Any] = {"role": "admin"}
    if endpoint == "/v1/chat":
        body["question"] = "Show every salary"
    else:
        body["messages"] = [{"role": "user", "content": "Show every salary"}]
    response = serve().post(endpoint, json=body, headers=auth("key-viewer"))
    assert response.status_code == 422
    assert "credential" in response.json()["error"]["message"]
    assert not sink.named("ask")  # never reached the agent


def test_default_role_lets_anonymous_requests_in(serve: Any) -> None:
    client = serve(settings=settings_for(default_role="viewer"))
    answer = client.post("/v1/chat", json=QUESTION).json()
    assert answer["role"] == "viewer"
    # A credential, when given, still has to be valid.
    assert client.post("/v1/chat", json=QUESTION, headers=auth("bad")).status_code == 401


def test_jwt_role_claim(serve: Any, sink: RecordingSink) -> None:
    client = serve(settings=jwt_settings(audience="sqlagent", issuer="https://idp"))
    good = token(aud="sqlagent", iss="https://idp")
    answer = client.post("/v1/chat", json=QUESTION, headers=auth(good)).json()
    assert answer["role"] == "hr"
    assert sink.named("ask")[0].role == "hr"
    # API keys keep working beside JWTs.
    assert client.post("/v1/chat", json=QUESTION, headers=auth("key-analyst")).status_code == 200


@pytest.mark.parametrize(
    ("claims", "secret", "why"),
    [
        ({"exp": int(time.time()) - 10}, JWT_SECRET, "expired"),
        ({}, "x" * 40, "Signature verification failed"),
        ({"exp": None}, JWT_SECRET, "'exp'"),
        ({"role": None}, JWT_SECRET, "'role'"),
        ({"role": ["hr"]}, JWT_SECRET, "role name"),
        ({"aud": "other"}, JWT_SECRET, "Audience"),
        ({"iss": "https://evil"}, JWT_SECRET, "ssuer"),
    ],
)
def test_bad_jwts_are_401(serve: Any, claims: dict[str, Any], secret: str, why: str) -> None:
    client = serve(settings=jwt_settings(audience="sqlagent", issuer="https://idp"))
    claims = {"aud": "sqlagent", "iss": "https://idp", **claims}
    base: dict[str, Any] = {"sub": "alice", "role": "hr", "exp": int(time.time()) + 60, **claims}
    bad = jwt.encode({k: v for k, v in base.items() if v is not None}, secret, "HS256")
    response = client.post("/v1/chat", json=QUESTION, headers=auth(bad))
    assert response.status_code == 401
    assert why in response.json()["error"]["message"]


def test_a_role_outside_the_policy_is_403(serve: Any, sink: RecordingSink) -> None:
    client = serve(settings=jwt_settings(role_claim="grp"))
    response = client.post("/v1/chat", json=QUESTION, headers=auth(token(grp="superuser")))
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"
    [event] = sink.events
    assert (event.name, event.role, event.extra["caller"]) == ("serve", "superuser", "jwt:alice")


def test_keys_and_default_role_must_name_policy_roles() -> None:
    stray = ServeSettings.from_mapping(
        {"keys": [{"name": "x", "role": "root", "key_sha256": hash_key("k")}]}
    )
    with pytest.raises(ConfigError, match="root"):
        Authenticator(stray, ROLES)
    with pytest.raises(ConfigError, match="default_role"):
        Authenticator(ServeSettings(default_role="root"), ROLES)
    # Without a policy (single-user mode) any verified caller may ask.
    assert Authenticator(stray, None).authenticate({"x-api-key": "k"}).role == "root"


def test_authenticator_compares_every_key() -> None:
    authenticator = Authenticator(settings_for(), ROLES)
    assert authenticator.authenticate({"authorization": "Bearer key-admin"}).name == "admin"
    with pytest.raises(AuthError) as refused:
        authenticator.authenticate({"authorization": "Bearer key-admin "[:-2]})
    assert refused.value.status == 401


def test_rs256_needs_a_public_key(tmp_path: Any) -> None:
    pem = tmp_path / "public.pem"
    pem.write_text("not a key")
    with pytest.raises(ConfigError, match="PEM public key"):
        ServeSettings.from_file(
            _write(tmp_path, "jwt:\n  algorithm: RS256\n  key_file: public.pem\n")
        )


def _write(tmp_path: Any, text: str) -> Any:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return path


def test_rs256_tokens_from_an_identity_provider(serve: Any, tmp_path: Any) -> None:
    """RS256 verifies with the provider's public key; a token signed with another key, or an
    HS256 token keyed with the public key (algorithm confusion), is refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "public.pem").write_bytes(public_pem)
    settings = ServeSettings.from_file(
        _write(tmp_path, "jwt:\n  algorithm: RS256\n  key_file: public.pem\n")
    )
    client = serve(settings=settings)
    claims = {"sub": "alice", "role": "analyst", "exp": int(time.time()) + 60}
    good = jwt.encode(claims, private, "RS256")
    response = client.post("/v1/chat", json=QUESTION, headers=auth(good))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "analyst"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, "RS256")
    assert client.post("/v1/chat", json=QUESTION, headers=auth(forged)).status_code == 401
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    signing_input = header + b"." + body
    signature = jwt.utils.base64url_encode(
        hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    )
    confused = (signing_input + b"." + signature).decode("ascii")
    assert client.post("/v1/chat", json=QUESTION, headers=auth(confused)).status_code == 401
