"""The package's shape: no import cycle, thin DAG files, modules a reader can take in.

Imports are read from the source (AST), counting those inside functions: an import inside a
function still ties two modules together, it only delays the failure to run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "include" / "flarewatch"
MAX_MODULE_LINES = 600
LONG_MODULE_MARK = "Why this module is long:"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts) + (f".{node.module}" if node.module else "")
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for t in targets:
                if t in modules and t != name and t != "flarewatch":
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    found = cycles(import_graph())
    assert not found, "import cycles (imports inside functions count too):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_modules_are_short_or_say_why():
    long = []
    for name, path in _modules().items():
        text = path.read_text()
        n = text.count("\n")
        if n > MAX_MODULE_LINES and LONG_MODULE_MARK not in text[:4000]:
            long.append(f"{name}: {n} lines")
    assert not long, (f"modules over {MAX_MODULE_LINES} lines without a '{LONG_MODULE_MARK}' paragraph in their"
                      " docstring:\n" + "\n".join(long))


DAG_FILES = sorted((REPO / "dags").glob("*.py"))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_only_wire_tasks(path):
    """Connections, loops over site-days and error handling live in the package (``orchestration.tasks``)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Try, ast.While, ast.With)), \
            f"{path.name}:{node.lineno}: {type(node).__name__} in a DAG file; put the logic in the package"
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("close", "rollback", "commit", "cursor"), \
                f"{path.name}:{node.lineno}: database handling in a DAG file"
        if isinstance(node, ast.Name):
            assert node.id not in ("db_connection", "s3_client"), \
                f"{path.name}:{node.lineno}: clients are opened in the package, not in DAG files"


def test_dag_parse_time_imports_stay_light():
    """What DAG files import at module level must not pull in torch, ultralytics, rasterio or pandas."""
    import subprocess
    import sys

    code = ("import sys, runpy, pathlib\n"
            f"for p in sorted(pathlib.Path({str(REPO / 'dags')!r}).glob('*.py')):\n"
            "    runpy.run_path(str(p))\n"
            "heavy = [m for m in ('torch', 'ultralytics', 'rasterio', 'pandas', 'sklearn', 'boto3', 'psycopg2')"
            " if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(PKG.parent)})
    assert "HEAVY=" in out.stdout, out.stderr[-2000:]
    assert out.stdout.strip().split("HEAVY=")[-1] == "", f"heavy modules imported at DAG parse time: {out.stdout}"


def test_model_versions_sql_lives_in_the_registry():
    """Every statement on ``model_versions`` is in ``store/registry.py`` (and the migrations)."""
    offenders = []
    for name, path in _modules().items():
        if name == "flarewatch.store.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "model_versions" in node.value:
                if any(kw in node.value.upper() for kw in ("SELECT ", "UPDATE ", "INSERT ", "DELETE ")):
                    offenders.append(f"{name}:{node.lineno}")
    assert not offenders, f"model_versions SQL outside store/registry.py: {offenders}"


def test_no_module_uses_another_modules_private_names():
    """``from x import _name`` / ``x._name`` across modules couples them to internals."""
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flarewatch"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        offenders.append(f"{name}: from {node.module} import {a.name}")
                    if f"{node.module}.{a.name}" in modules:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{name}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    assert not offenders, "private names used across modules:\n" + "\n".join(offenders)
