"""Configuration: ``Settings.from_env`` directly, and bad values through the console script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from authserver.config import DEFAULT_DATABASE_URL, DEFAULT_ISSUER, Settings
from authserver.errors import ConfigError
from tests.support.cli import assert_one_line_error, run_to_exit, sqlite_env
from tests.support.postgres import free_port

# --- Settings.from_env ---


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///instance/authserver.db" == DEFAULT_DATABASE_URL
    assert settings.issuer == "http://localhost:8080" == DEFAULT_ISSUER
    assert settings.keys_dir == Path("keys")
    assert not settings.keys_dir.is_absolute()
    assert settings.key_passphrase is None
    assert settings.access_token_ttl == 1800
    assert settings.default_audience == "http://localhost:8080"
    assert settings.jwks_max_age == 300


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "AUTHSERVER_DATABASE_URL": "postgresql+psycopg://u@db.example.test/auth",
            "AUTHSERVER_ISSUER": "https://auth.example.test",
            "AUTHSERVER_KEYS_DIR": "/srv/auth/keys",
            "AUTHSERVER_KEY_PASSPHRASE": "correct horse",
            "AUTHSERVER_ACCESS_TOKEN_TTL": "60",
            "AUTHSERVER_DEFAULT_AUDIENCE": "https://api.example.test",
            "AUTHSERVER_JWKS_MAX_AGE": "30",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db.example.test/auth"
    assert settings.issuer == "https://auth.example.test"
    assert settings.keys_dir == Path("/srv/auth/keys")
    assert settings.key_passphrase == "correct horse"
    assert settings.access_token_ttl == 60
    assert settings.default_audience == "https://api.example.test"
    assert settings.jwks_max_age == 30


def test_passphrase_is_not_shown_in_repr() -> None:
    settings = Settings.from_env({"AUTHSERVER_KEY_PASSPHRASE": "sekrit-passphrase"})
    assert "sekrit-passphrase" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://auth.example.test/", "https://auth.example.test"),
        ("https://auth.example.test/tenant/", "https://auth.example.test/tenant"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_trailing_slash_is_stripped_from_issuer(raw: str, expected: str) -> None:
    settings = Settings.from_env({"AUTHSERVER_ISSUER": raw})
    assert settings.issuer == expected
    assert settings.token_endpoint == f"{expected}/oauth2/token"
    assert settings.jwks_uri == f"{expected}/.well-known/jwks.json"


def test_default_audience_is_the_issuer_without_trailing_slash() -> None:
    settings = Settings.from_env({"AUTHSERVER_ISSUER": "https://auth.example.test/"})
    assert settings.default_audience == "https://auth.example.test"


def test_explicit_default_audience_overrides_the_issuer() -> None:
    settings = Settings.from_env(
        {
            "AUTHSERVER_ISSUER": "https://auth.example.test",
            "AUTHSERVER_DEFAULT_AUDIENCE": "https://api.example.test",
        }
    )
    assert settings.default_audience == "https://api.example.test"


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AUTHSERVER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUTHSERVER_ISSUER", "https://from-env.example.test/")
    monkeypatch.setenv("AUTHSERVER_ACCESS_TOKEN_TTL", "42")
    settings = Settings.from_env()
    assert settings.issuer == "https://from-env.example.test"
    assert settings.access_token_ttl == 42


BAD_VALUES = [
    ("AUTHSERVER_ISSUER", "not-a-url"),
    ("AUTHSERVER_ISSUER", "ftp://auth.example.test"),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "0"),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "-5"),
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "abc"),
    ("AUTHSERVER_JWKS_MAX_AGE", "x"),
    ("AUTHSERVER_JWKS_MAX_AGE", "0"),
    ("AUTHSERVER_DEFAULT_AUDIENCE", "not a url"),
    ("AUTHSERVER_DATABASE_URL", "::garbage"),
    ("AUTHSERVER_KEY_PROPAGATION_DELAY", "0"),
    ("AUTHSERVER_KEY_PROPAGATION_DELAY", "10"),  # shorter than the JWKS max-age (300)
    ("AUTHSERVER_SIGNING_ALG", "HS256"),
    ("AUTHSERVER_SIGNING_ALG", "none"),
    ("AUTHSERVER_RSA_BITS", "1024"),
    ("AUTHSERVER_KEY_ROTATION_DAYS", "0"),
]
BAD_IDS = [f"{name.removeprefix('AUTHSERVER_')}={value}" for name, value in BAD_VALUES]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=BAD_IDS)
def test_from_env_rejects_bad_value_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


# --- bad values through the console script ---


def assert_config_error(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert variable in assert_one_line_error(result)
    assert result.stdout == ""


COMMANDS = {
    "serve": lambda: ["serve", "--port", str(free_port()), "--workers", "1"],
    "clients-list": lambda: ["clients", "list", "--json"],
    "db-upgrade": lambda: ["db", "upgrade"],
    "keys-list": lambda: ["keys", "list", "--json"],
}


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=BAD_IDS)
def test_bad_value_stops_a_command_with_one_line_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    env = sqlite_env(tmp_path, **{name: value})
    assert_config_error(run_to_exit(COMMANDS["clients-list"](), env), name)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_stopped_by_a_bad_value(tmp_path: Path, command: str) -> None:
    """Validation happens once, before any command runs (one value stands for them all)."""
    env = sqlite_env(tmp_path, AUTHSERVER_ACCESS_TOKEN_TTL="0")
    assert_config_error(run_to_exit(COMMANDS[command](), env), "AUTHSERVER_ACCESS_TOKEN_TTL")


def unusable_keys_dir(tmp_path: Path, kind: str) -> Path:
    blocker = tmp_path / "regular-file"
    blocker.write_text("not a folder\n")
    return blocker / "keys" if kind == "below-a-file" else blocker


@pytest.mark.parametrize(
    ("command", "kind"),
    [(command, "below-a-file") for command in sorted(COMMANDS)] + [("clients-list", "is-a-file")],
)
def test_keys_dir_that_cannot_be_created_stops_the_command(
    tmp_path: Path, command: str, kind: str
) -> None:
    env = sqlite_env(tmp_path)
    result = run_to_exit(["db", "upgrade"], env)  # the database itself is fine
    assert result.returncode == 0, result.stderr
    env["AUTHSERVER_KEYS_DIR"] = str(unusable_keys_dir(tmp_path, kind))
    assert_config_error(run_to_exit(COMMANDS[command](), env), "AUTHSERVER_KEYS_DIR")
