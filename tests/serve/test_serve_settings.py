"""The serve config file and the environment: keys, JWT key material, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlagent.errors import ConfigError
from sqlagent.serve import Authenticator, ServeSettings, hash_key
from sqlagent.serve._limits import RateLimiter
from tests.serve.conftest import ROOT_EXAMPLE


def test_env_keys_are_hashed_and_added() -> None:
    settings = ServeSettings.from_mapping(
        {"keys": [{"name": "ci", "role": "viewer", "key_sha256": hash_key("k0")}]},
        environ={"SQLAGENT_API_KEYS": "k1:analyst, k2:hr ,"},
    )
    assert [(k.name, k.role) for k in settings.keys] == [
        ("ci", "viewer"), ("env-1", "analyst"), ("env-2", "hr")
    ]  # fmt: skip
    assert settings.keys[2].key_sha256 == hash_key("k2")
    assert "k2" not in repr(settings)
    auth = Authenticator(settings, ["viewer", "analyst", "hr"])
    assert auth.authenticate({"authorization": "Bearer k2"}).role == "hr"


@pytest.mark.parametrize(
    ("data", "environ", "match"),
    [
        ({"keys": [{"name": "a", "role": "r", "key_sha256": "zz"}]}, {}, "key_sha256"),
        ({"nope": 1}, {}, "nope"),
        ({"limits": {"max_concurrency": 0}}, {}, "max_concurrency"),
        ({}, {"SQLAGENT_API_KEYS": "no-role"}, "KEY:ROLE"),
        ({}, {"SQLAGENT_API_KEYS": "a:x,a:y"}, "twice"),
        ({"jwt": {}}, {}, "key is missing"),
        ({"jwt": {}}, {"SQLAGENT_JWT_KEY": "short"}, "32 bytes"),
        ({"jwt": {"key": "inline"}}, {}, "key_env or key_file"),
    ],
)
def test_bad_settings(data: dict[str, object], environ: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ServeSettings.from_mapping(data, environ=environ)


def test_jwt_key_from_a_file_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("k" * 48 + "\n")
    config = tmp_path / "serve.yaml"
    config.write_text("jwt:\n  key_file: secret\n  audience: sqlagent\n")
    settings = ServeSettings.from_file(config)
    assert settings.jwt is not None
    assert settings.jwt.key is not None
    assert settings.jwt.key.get_secret_value() == "k" * 48
    assert "kkkk" not in repr(settings)


def test_the_example_serve_config_loads() -> None:
    settings = ServeSettings.from_file(ROOT_EXAMPLE, environ={"SQLAGENT_JWT_KEY": "j" * 32})
    assert settings.keys
    assert settings.limits.max_concurrency >= 1


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        ServeSettings.from_file("/nonexistent/serve.yaml")


def test_token_bucket() -> None:
    now = [0.0]
    bucket = RateLimiter(60, 2, clock=lambda: now[0], max_keys=2)
    assert [bucket.take("a"), bucket.take("a")] == [0.0, 0.0]
    assert bucket.take("a") == pytest.approx(1.0)
    now[0] += 0.5
    assert bucket.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take("a") == 0.0
    assert RateLimiter(0, 1).take("x") == 0.0  # off


def test_a_keys_own_limits_replace_the_default_bucket() -> None:
    now = [0.0]
    bucket = RateLimiter(0, 1, clock=lambda: now[0])  # off by default
    assert bucket.take("a") == 0.0
    own = [bucket.take("k", per_minute=6, burst=2) for _ in range(3)]
    assert own[:2] == [0.0, 0.0]
    assert own[2] == pytest.approx(10.0)
    settings = ServeSettings.from_mapping(
        {"keys": [{"name": "k", "role": "r", "key_sha256": hash_key("k"), "burst": 5}]}
    )
    assert (settings.keys[0].rate_per_minute, settings.keys[0].burst) == (None, 5)
