"""The package's layers point one way, and nothing imports in a circle.

``cli`` → the wiring (``app``, ``runtime``, ``database_backend``, ``maintenance``) → ``http``
→ ``oauth``, ``services`` → ``security``, ``models`` → ``config``, ``errors``. The OAuth layer
and the services never import each other (the wiring joins them), and the client and
resource-server helpers import nothing of the server. Every import counts, including those
inside functions and under ``TYPE_CHECKING``: each is a dependency someone has to read.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authserver"

#: From the top down; a module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("authserver.cli", "authserver.__main__"),
    (
        "authserver.app",
        "authserver.runtime",
        "authserver.database_backend",
        "authserver.maintenance",
    ),
    ("authserver.http",),
    ("authserver.oauth", "authserver.services"),
    (
        "authserver.security",
        "authserver.models",
        "authserver.extensions",
        "authserver.database",
        "authserver.schema",
    ),
    (
        "authserver.config",
        "authserver.errors",
        "authserver.audit",
        "authserver.json_logs",
        "authserver.compact_json",
        "authserver.operator_log",
        "authserver.wellknown",
        "authserver",
    ),
)
#: Same layer, still apart: the protocol code knows storage only through its Backend.
APART = (("authserver.oauth", "authserver.services"), ("authserver.services", "authserver.oauth"))
#: What users install without the server: they may use only each other's shared rules.
HELPERS = ("authserver.client", "authserver.resource")
HELPERS_MAY_IMPORT = ("authserver.wellknown",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def package_modules() -> dict[str, Path]:
    """Every module of the package (walked once: each import statement looks it up)."""
    return {
        module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.relative_to(PACKAGE).parts
    }


def imported(module: str, path: Path) -> Iterator[str]:
    """The ``authserver`` modules that ``module`` imports, wherever in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("authserver"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("authserver"):
                continue
            modules = package_modules()
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules else base


def owner(module: str, prefixes: tuple[str, ...]) -> str | None:
    """The longest prefix (a package or module) that ``module`` belongs to."""
    matches = [p for p in prefixes if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


ALL_PREFIXES = tuple(p for layer in LAYERS for p in layer) + HELPERS


def layer_of(module: str) -> int:
    prefix = owner(module, ALL_PREFIXES)
    assert prefix is not None, f"{module} belongs to no layer: add it to LAYERS"
    if prefix in HELPERS:
        return -1
    return next(i for i, layer in enumerate(LAYERS) if prefix in layer)


@functools.cache
def import_graph() -> dict[str, set[str]]:
    return {
        module: {target for target in imported(module, path) if target != module}
        for module, path in package_modules().items()
    }


def test_every_module_belongs_to_a_layer() -> None:
    for module in package_modules():
        layer_of(module)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, targets in import_graph().items():
        if owner(module, HELPERS) is not None:
            continue
        for target in targets:
            if owner(target, HELPERS) is not None or layer_of(target) < layer_of(module):
                wrong.append(f"{module} -> {target}")
            pair = (owner(module, ALL_PREFIXES), owner(target, ALL_PREFIXES))
            if pair in APART:
                wrong.append(f"{module} -> {target} (kept apart)")
    assert wrong == []


def test_helpers_import_nothing_of_the_server() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if owner(module, HELPERS) is not None
        for target in targets
        if owner(target, (*HELPERS, *HELPERS_MAY_IMPORT)) is None
    ]
    assert wrong == []


def test_no_import_circle() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycles.append([*trail[trail.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*trail, module])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_the_walk_sees_a_violation() -> None:
    """The walk finds imports in all their spellings, or the tests above prove nothing."""
    graph = import_graph()
    assert "authserver.http.handlers" in graph["authserver.app"]  # inside a function
    assert "authserver.services.registrations" in graph["authserver.database_backend"]
    assert "authserver.security.secrets" in graph["authserver.services.registrations"]
    assert layer_of("authserver.cli.serve") < layer_of("authserver.http.routes")


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("authserver.oauth.server", ("sqlalchemy", "flask", "flask_sqlalchemy", "werkzeug")),
        ("authserver.config", ("sqlalchemy", "flask")),
        ("authserver.http.routes", ("sqlalchemy", "flask", "authlib")),
        (
            "authserver.client",
            ("sqlalchemy", "flask", "authlib", "granian", "alembic", "limits", "werkzeug"),
        ),
        (
            "authserver.resource",
            ("sqlalchemy", "flask", "authlib", "granian", "alembic", "limits", "werkzeug"),
        ),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(module: str, absent: tuple[str, ...]) -> None:
    """Checked in a fresh interpreter: what a module loads is what its users pay for."""
    probe = (
        f"import sys, {module}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({absent!r}))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []
