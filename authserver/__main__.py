"""The ``authserver`` command, as the console script and as ``python -m authserver``.

``pip install authserver`` is only the client and resource-server helpers; the server and its
dependencies come with the ``server`` extra. The CLI is therefore imported here lazily, and a
missing server dependency becomes one line naming the install command instead of a
traceback. Any other missing module is a genuine bug and is raised as usual.
"""

from __future__ import annotations

import sys

#: The top-level modules of the ``server`` extra's distributions (setup.cfg), plus werkzeug,
#: which Flask brings. tests/test_packaging.py checks this against the installed metadata.
SERVER_MODULES = frozenset(
    {
        "alembic",
        "authlib",
        "click",
        "cryptography",
        "flask",
        "flask_migrate",
        "flask_sqlalchemy",
        "granian",
        "jsonschema",
        "limits",
        "prometheus_client",
        "sqlalchemy",
        "werkzeug",
        "yaml",
        "_yaml",
    }
)

SERVER_MISSING = (
    "authserver: the server is not installed here (no module named {module!r}); "
    "install it with: pip install 'authserver[server]'"
)


def missing_server_module(exc: ModuleNotFoundError) -> str | None:
    """The server dependency whose absence ``exc`` reports, or None if it is about anything
    else (a module of authserver itself, an optional add-on, a typo): those are bugs to show
    in full."""
    top_level = (exc.name or "").partition(".")[0]
    return top_level if top_level in SERVER_MODULES else None


def main() -> None:
    """Run the CLI; exit 1 with a one-line hint when the server is not installed."""
    try:
        from authserver.cli import main as cli

        cli()
    except ModuleNotFoundError as exc:
        module = missing_server_module(exc)
        if module is None:
            raise
        print(SERVER_MISSING.format(module=module), file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
