"""Configuration: ``Settings.from_env`` directly, and bad values through the commands: each
value in process, and every command (``serve`` included) through the console script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from authserver.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ISSUER,
    MAX_ACCESS_TOKEN_TTL,
    MAX_PASSPHRASE_FILE_BYTES,
    Settings,
)
from authserver.errors import ConfigError
from tests.support.cli import (
    assert_one_line_error,
    ok_json,
    run_to_exit,
    sqlite_env,
)
from tests.support.cli_in_process import run_in_process
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


def test_access_token_ttl_may_be_a_whole_day() -> None:
    settings = Settings.from_env({"AUTHSERVER_ACCESS_TOKEN_TTL": str(MAX_ACCESS_TOKEN_TTL)})
    assert settings.access_token_ttl == MAX_ACCESS_TOKEN_TTL == 86_400


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
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "86401"),  # above MAX_ACCESS_TOKEN_TTL (a day)
    ("AUTHSERVER_ACCESS_TOKEN_TTL", "999999999999"),  # once overflowed key retention dates
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
#: Checked in-process only: the commands' handling of a bad value is the same for every one.
OUT_OF_BOUNDS = [
    # Beyond these, key-schedule date arithmetic overflowed.
    ("AUTHSERVER_JWKS_MAX_AGE", "99999999999"),
    ("AUTHSERVER_KEY_PROPAGATION_DELAY", "99999999999"),
    ("AUTHSERVER_KEY_ROTATION_DAYS", "99999999999"),
    ("AUTHSERVER_REQUEST_BODY_TIMEOUT", "0"),
    ("AUTHSERVER_REQUEST_BODY_TIMEOUT", "301"),
]


@pytest.mark.parametrize(
    ("name", "value"),
    BAD_VALUES + OUT_OF_BOUNDS,
    ids=BAD_IDS + [f"{n.removeprefix('AUTHSERVER_')}={v}" for n, v in OUT_OF_BOUNDS],
)
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


def run_command(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``COMMANDS[command]``: ``serve`` through the console script (in process it would
    serve in the test if it failed to refuse), the others in process."""
    if command == "serve":
        return run_to_exit(COMMANDS[command](), env)
    return run_in_process(env, *COMMANDS[command]())


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=BAD_IDS)
def test_bad_value_stops_a_command_with_one_line_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    env = sqlite_env(tmp_path, **{name: value})
    assert_config_error(run_command("clients-list", env), name)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_stopped_by_a_bad_value(tmp_path: Path, command: str) -> None:
    """Validation happens once, before any command runs (one value stands for them all).
    Through the console script: its one line, exit 1 and no traceback, for every group."""
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
    result = run_in_process(env, "db", "upgrade")  # the database itself is fine
    assert result.returncode == 0, result.stderr
    env["AUTHSERVER_KEYS_DIR"] = str(unusable_keys_dir(tmp_path, kind))
    assert_config_error(run_command(command, env), "AUTHSERVER_KEYS_DIR")


# --- AUTHSERVER_KEY_PASSPHRASE_FILE ---

PASSPHRASE = "correct horse battery staple"
FILE_VARIABLE = "AUTHSERVER_KEY_PASSPHRASE_FILE"


def passphrase_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(content)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PASSPHRASE.encode(), PASSPHRASE),
        (f"{PASSPHRASE}\n".encode(), PASSPHRASE),
        (f"{PASSPHRASE}\n\n".encode(), f"{PASSPHRASE}\n"),  # one newline only
        (b" spaced out \n", " spaced out "),
    ],
    ids=["bare", "newline", "two-newlines", "spaces-kept"],
)
def test_passphrase_is_read_from_the_file_without_one_trailing_newline(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = passphrase_file(tmp_path, content)
    settings = Settings.from_env({FILE_VARIABLE: str(path)})
    assert settings.key_passphrase == expected
    assert expected.strip() not in repr(settings)


def bad_passphrase_file(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "no-such-file"
    if kind == "a-folder":
        return tmp_path
    if kind == "unreadable":
        path = passphrase_file(tmp_path, b"secret\n")
        path.chmod(0o000)
        if os.access(path, os.R_OK):  # root reads anything: use what no one can read
            return Path("/proc/self/mem")
        return path
    contents = {
        "empty": b"",
        "only-a-newline": b"\n",
        "not-utf8": b"\xffsecret\n",
        "too-long": b"x" * (MAX_PASSPHRASE_FILE_BYTES + 1),
    }
    return passphrase_file(tmp_path, contents[kind])


PASSPHRASE_FILE_PROBLEMS = [
    "missing",
    "a-folder",
    "unreadable",
    "empty",
    "only-a-newline",
    "not-utf8",
    "too-long",
]


@pytest.mark.parametrize("kind", PASSPHRASE_FILE_PROBLEMS)
def test_unusable_passphrase_file_is_a_start_up_error_naming_the_variable(
    tmp_path: Path, kind: str
) -> None:
    with pytest.raises(ConfigError, match=FILE_VARIABLE) as caught:
        Settings.from_env({FILE_VARIABLE: str(bad_passphrase_file(tmp_path, kind))})
    assert "secret" not in str(caught.value)


def test_passphrase_file_and_passphrase_together_are_a_start_up_error(tmp_path: Path) -> None:
    path = passphrase_file(tmp_path, b"from-the-file\n")
    with pytest.raises(ConfigError, match=FILE_VARIABLE) as caught:
        Settings.from_env({FILE_VARIABLE: str(path), "AUTHSERVER_KEY_PASSPHRASE": "inline"})
    assert "AUTHSERVER_KEY_PASSPHRASE " in f"{caught.value} "
    assert "from-the-file" not in str(caught.value)
    assert "inline" not in str(caught.value)


@pytest.mark.parametrize("kind", ["missing", "empty", "both"])
def test_passphrase_file_problem_stops_serve_with_one_line(tmp_path: Path, kind: str) -> None:
    if kind == "both":
        path = passphrase_file(tmp_path, b"secret\n")
        env = sqlite_env(tmp_path, AUTHSERVER_KEY_PASSPHRASE="secret-inline")
    else:
        path = bad_passphrase_file(tmp_path, kind)
        env = sqlite_env(tmp_path)
    env[FILE_VARIABLE] = str(path)
    result = run_to_exit(COMMANDS["serve"](), env)
    assert_config_error(result, FILE_VARIABLE)
    assert "secret" not in result.stderr


def test_keys_encrypted_under_the_file_passphrase_open_with_the_same_passphrase(
    tmp_path: Path,
) -> None:
    """The file's passphrase (its newline stripped) is the one the keys are encrypted with:
    a key written with the file opens with the same value given inline, and not without."""
    env = sqlite_env(tmp_path, AUTHSERVER_SIGNING_ALG="ES256")
    file_env = {**env, FILE_VARIABLE: str(passphrase_file(tmp_path, f"{PASSPHRASE}\n".encode()))}
    rotated = ok_json(run_in_process(file_env, "keys", "rotate", "--json"))
    (key_path,) = (tmp_path / "keys").glob("*.key.json")
    assert "ENCRYPTED PRIVATE KEY" in key_path.read_text()

    inline_env = {**env, "AUTHSERVER_KEY_PASSPHRASE": PASSPHRASE}
    listed = ok_json(run_in_process(inline_env, "keys", "list", "--json"))
    assert [key["kid"] for key in listed] == [rotated["kid"]]
    wrong_env = {**env, "AUTHSERVER_KEY_PASSPHRASE": f"{PASSPHRASE}\n"}
    assert run_in_process(wrong_env, "keys", "list", "--json").returncode == 1


def test_settings_built_directly_take_their_audience_from_their_issuer() -> None:
    """Each default is written once (the field), and the audience follows the issuer."""
    assert Settings(issuer="https://auth.example.test").default_audience == (
        "https://auth.example.test"
    )
    assert Settings.from_env({}) == Settings()


def test_settings_built_directly_are_checked_like_the_environment() -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_KEY_PROPAGATION_DELAY"):
        Settings(jwks_max_age=600, key_propagation_delay=300)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://db.example.test/auth", "unknown database: foo"),
        ("mysql+pymysql://u@db.example.test/auth", "not installed: pymysql"),
    ],
)
def test_database_url_whose_driver_cannot_load_is_one_line(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({"AUTHSERVER_DATABASE_URL": url})
    assert str(raised.value).startswith("AUTHSERVER_DATABASE_URL")


def test_rotation_days_error_speaks_of_days() -> None:
    with pytest.raises(ConfigError, match="whole number of days"):
        Settings.from_env({"AUTHSERVER_KEY_ROTATION_DAYS": "weekly"})
