"""The Next.js example (``examples/nextjs-route``) the way its README says its test runs: the
logic behind ``app/api/auth/route.ts`` and ``app/api/tasks/route.ts`` under plain Node 20, with
only ``jose`` installed, against a real ``authserver serve``.

``node test/run.mjs`` prints a JSON summary; the server's access log tells how many requests
really reached the token endpoint (the cache and the single flight are judged from there too)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ok_json
from tests.support.cli_in_process import run_in_process
from tests.support.served import served_auth_server
from tests.support.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "nextjs-route"
NPM_INSTALL_TIMEOUT_SECONDS = 180
RUN_TIMEOUT_SECONDS = 60
#: jose's own floor (its package.json ``engines``).
NODE_MINIMUM = (20, 9)
#: A secret that only survives client_secret_basic when each part is form-urlencoded before
#: base64 (RFC 6749 §2.3.1): ":" splits id from secret, "+" decodes to a space, "%41" to "A".
SECRET = "s3cret: p@ss+word/%41&x=y"
#: Requests the run makes to the token endpoint: one shared by five concurrent calls and reused
#: by a sixth (200), one with a wrong secret (401), one for the client without the "api" scope.
EXPECTED_TOKEN_STATUSES = [200, 200, 401]


def require(tool: str) -> str:
    """The tool's path; skip without it on a developer machine, fail on CI (which has it)."""
    path = shutil.which(tool)
    if path is None:
        missing(f"`{tool}` is not on PATH: the Next.js example needs Node.js 20.9+ and npm")
    assert path is not None
    return path


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def quiet_env() -> dict[str, str]:
    """Only what node and npm need: nothing from AUTHSERVER_* or the example's own variables."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "npm_config_cache", "NPM_CONFIG_REGISTRY")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(npm_config_update_notifier="false", npm_config_fund="false")
    return env


@pytest.fixture(scope="module")
def node() -> str:
    path = require("node")
    version = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    found = re.match(r"v(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < NODE_MINIMUM:
        missing(f"node {version} is older than {'.'.join(map(str, NODE_MINIMUM))}")
    return path


def installed_version(package_dir: Path) -> str | None:
    try:
        version: str = json.loads((package_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="module")
def jose(node: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``jose`` at the exact version the example's package.json pins, in its node_modules.

    ``npm install jose`` inside the example would install next and react as well (npm installs
    the whole package.json), so npm runs in a scratch folder and jose — which has no
    dependencies — is moved into place. Skipped when the pinned version is already there."""
    pinned: str = json.loads((EXAMPLE / "package.json").read_text())["dependencies"]["jose"]
    target = EXAMPLE / "node_modules" / "jose"
    if installed_version(target) == pinned:
        return pinned
    npm = require("npm")
    scratch = tmp_path_factory.mktemp("npm")
    (scratch / "package.json").write_text('{"private": true}\n')
    command = [
        npm,
        "install",
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        f"jose@{pinned}",
    ]
    try:
        installed = subprocess.run(
            command,
            cwd=scratch,
            env=quiet_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm install jose@{pinned} took over {NPM_INSTALL_TIMEOUT_SECONDS}s")
    downloaded = scratch / "node_modules" / "jose"
    if installed.returncode != 0 or installed_version(downloaded) != pinned:
        pytest.fail(f"npm install jose@{pinned} failed:\n{installed.stdout}\n{installed.stderr}")
    # Copy next to the target, then rename: a concurrent run never sees half a package.
    staging = target.with_name(f".jose-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(downloaded, staging)
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if installed_version(target) != pinned:
            raise
    return pinned


def token_requests(log: str) -> list[dict[str, Any]]:
    requests = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") == "http.request"
            and entry.get("path") == "/oauth2/token"
        ):
            requests.append(entry)
    return requests


def challenge(result: dict[str, Any]) -> str:
    header: str = result["www_authenticate"]
    assert header.startswith('Bearer realm="api"'), header
    return header


def test_routes_cache_the_token_and_verify_it_under_plain_node(
    tmp_path: Path, node: str, jose: str
) -> None:
    with served_auth_server(tmp_path) as auth:
        web = ok_json(
            run_in_process(
                auth.server.env,
                *("clients", "create", "--json", "--name", "web", "--scope", "api"),
                "--secret-stdin",
                input=SECRET,
            )
        )
        other = auth.create_client("--name", "other", "--scope", "other")
        env = quiet_env() | {
            "API_URL": auth.issuer,
            "CLIENT_ID": web["client_id"],
            "CLIENT_SECRET": SECRET,
            "OTHER_CLIENT_ID": other["client_id"],
            "OTHER_CLIENT_SECRET": other["client_secret"],
        }
        run = subprocess.run(
            [node, "test/run.mjs"],
            cwd=EXAMPLE,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert SECRET not in run.stdout
        assert other["client_secret"] not in run.stdout
        summary = json.loads(run.stdout)

        # The access log line is written as the response goes out: give the last one a moment.
        def all_logged() -> list[dict[str, Any]] | None:
            logged = token_requests(auth.server.stderr())
            return logged if len(logged) >= len(EXPECTED_TOKEN_STATUSES) else None

        seen = wait_until(all_logged, 5, "every token request in the server's access log")
        assert sorted(entry["status"] for entry in seen) == EXPECTED_TOKEN_STATUSES

    token_url = f"{auth.issuer}/oauth2/token"
    assert summary["token_fetches"] == len(EXPECTED_TOKEN_STATUSES)
    assert summary["fetched"][token_url] == len(EXPECTED_TOKEN_STATUSES)

    served = summary["auth"]
    assert served["concurrent_statuses"] == [200] * 5
    assert served["concurrent_same_token"] is True
    assert served["token_fetches_after_concurrent"] == 1
    assert served["second_status"] == 200
    assert served["token_fetches_after_second"] == 1
    assert served["body_keys"] == ["access_token", "expires_in", "scope", "token_type"]
    assert served["token_type"] == "Bearer"
    assert served["scope"] == "api"
    assert 1700 < served["expires_in"] <= 1800
    assert served["cache_control"] == "no-store"
    assert served["set_cookie"] is None
    assert served["secret_in_body"] is False
    assert served["header"] == {"alg": "RS256", "typ": "at+jwt", "has_kid": True}

    assert summary["cache_margin"] == {
        "calls_before_margin": 1,
        "calls_inside_margin": 2,
        "cached_token": "t1",
        "refreshed_token": "t2",
    }

    bad = summary["bad_secret"]
    assert bad["status"] == 502
    assert bad["body"] == {
        "error": "token_request_failed",
        "upstream_status": 401,
        "upstream_error": "invalid_client",
    }
    assert bad["secret_in_body"] is False

    tasks = summary["tasks"]
    valid = tasks["valid"]
    assert valid["status"] == 200
    assert valid["www_authenticate"] is None
    assert valid["body"]["client_id"] == web["client_id"]
    assert valid["body"]["scope"] == "api"
    assert len(valid["body"]["tasks"]) == 2
    assert tasks["valid_lowercase_scheme"] == 200

    # RFC 6750 §3.1: no credentials at all → 401 and a challenge without an error code.
    for name in ("missing", "other_scheme"):
        assert tasks[name]["status"] == 401, name
        assert challenge(tasks[name]) == 'Bearer realm="api"', name

    assert tasks["malformed"]["status"] == 400
    assert 'error="invalid_request"' in challenge(tasks["malformed"])

    for name, description in [
        ("tampered", "bad signature"),
        ("unsigned", "signing algorithm not accepted"),
        ("wrong_audience", "the access token failed the aud check"),
    ]:
        result = tasks[name]
        assert result["status"] == 401, name
        assert 'error="invalid_token"' in challenge(result), name
        assert result["body"] == {"error": "invalid_token", "error_description": description}

    assert summary["other_scope"] == "other"
    forbidden = tasks["insufficient_scope"]
    assert forbidden["status"] == 403
    header = challenge(forbidden)
    assert 'error="insufficient_scope"' in header
    assert 'scope="api"' in header
    assert forbidden["body"]["error"] == "insufficient_scope"
