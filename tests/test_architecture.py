"""The import contract (issue 18): one import name, layers that point one way, no cycles.

Everything is checked on the built wheel installed in a fresh virtual environment, not on
the editable checkout: the editable install maps four folders onto ``cosmopipe`` with an
import hook, which hides a missing package in pyproject.toml and which grimp (under
import-linter) cannot follow.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("sims", "emulators", "likelihoods", "pipeline")
# What the issue counted before the restructuring (commit a3761e1, four top-level
# import names), with count_imports below: non-trivial strongly connected components of
# the module import graph, and imports of the project's own modules inside functions.
# (The issue named four cycles; the fifth, pipeline.simulate <-> archive, campaign_checks,
# went through function-local imports of _fingerprint_diff.)
BEFORE = {"cycles": 5, "function_local": 224}
# Function-local imports of project modules are kept for optional heavy dependencies only
# (issue: 105 were left after the restructuring).  The one left: sims/__init__.py loads
# run_simulation (the engine: numba kernels, scipy) on first use, since every sims.*
# import goes through that package.  Heavy third-party imports (camb, euclidemu2, pyccl,
# dask, getdist, matplotlib) are the ones made lazy, inside the modules that use them.
LOCAL_CEILING = 1

pytestmark = pytest.mark.timeout(300)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, python of a fresh venv holding only the wheel, its cosmopipe folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    t0 = time.perf_counter()
    # Built from a copy: setuptools keeps build/lib between builds and would package a
    # module deleted since.
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info")
    for name in PACKAGE_FOLDERS:
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    # No build isolation: setuptools and wheel come from the test environment, so the
    # test needs no package index.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
          str(src)], cwd=tmp)
    wheel, = (tmp / "dist").glob("cosmopipe-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "env")])
    python = tmp / "env" / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # The test environment's pip installs into the fresh one (which has no pip of its own).
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", purelib, str(wheel)])
    print(f"\nwheel built and installed in {time.perf_counter() - t0:.1f} s")
    return wheel, python, Path(purelib) / "cosmopipe"


def _with_dependencies() -> dict[str, str]:
    """Environment in which the fresh venv sees the test environment's third-party packages.
    PYTHONPATH does not process .pth files, so the editable cosmopipe does not leak in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    return env


def test_the_wheel_installs_one_import_name(installed):
    wheel, python, _ = installed
    with zipfile.ZipFile(wheel) as z:
        top = {name.split("/")[0] for name in z.namelist()}
        dist_info, = [t for t in top if t.endswith(".dist-info")]
        declared = z.read(f"{dist_info}/top_level.txt").decode().split() if \
            f"{dist_info}/top_level.txt" in z.namelist() else ["cosmopipe"]
    assert top - {dist_info} == {"cosmopipe"}
    assert declared == ["cosmopipe"]
    # Nothing but the standard library: the version is readable without numpy & co.
    out = _run([str(python), "-I", "-c", "import cosmopipe; print(cosmopipe.__version__, cosmopipe.__file__)"],
               cwd=wheel.parent).stdout.split()
    from cosmopipe._version import __version__
    assert out[0] == __version__
    assert str(python.parent.parent) in out[1]


def test_the_wheel_carries_the_shipped_models(installed):
    """Every file a shipped model's manifest lists is in the wheel, and the model loads
    from the installed package with its checksums verified."""
    _, python, package = installed
    from cosmopipe.emulators.registry import models_root, shipped

    names = shipped()
    assert names, "no shipped model in emulators/models"
    for name in names:
        listed = json.loads((models_root() / name / "MANIFEST.json").read_text())["files"]
        for file in listed:
            assert (package / "emulators" / "models" / name / file).is_file(), f"{name}/{file} not in the wheel"
    # Each kind by its own loader: P(k) models by emulators.load, the EDE observables model
    # by the theory layer's load_observables.
    script = ("import sys, json; from cosmopipe import emulators; "
              "from cosmopipe.likelihoods.theory.observables import load_observables; "
              "root = emulators.registry.models_root(); assert root.is_relative_to(sys.argv[1]); "
              "kinds = {n: json.loads((root / n / 'MANIFEST.json').read_text())['kind'] for n in sys.argv[2:]}; "
              "print(*[n + '=' + (type(load_observables(n)).__name__ if k == 'observables' else emulators.load(n).kind) "
              "for n, k in kinds.items()])")
    out = _run([str(python), "-c", script, str(package), *names], env=_with_dependencies(), cwd=package.parent.parent)
    loaded = dict(item.split("=") for item in out.stdout.split()[-len(names):])
    assert set(loaded) == set(names)
    assert all(kind in ("boost", "hybrid", "ObservablesEmulator") for kind in loaded.values()), loaded


def test_every_module_imports_from_the_installed_wheel(installed):
    _, python, package = installed
    script = textwrap.dedent("""
        import importlib, importlib.util, pkgutil, sys
        import cosmopipe
        assert cosmopipe.__file__.startswith(sys.argv[1]), cosmopipe.__file__
        # The old top-level names are gone.
        for old in ("sims", "emulators", "likelihoods", "pipeline"):
            assert importlib.util.find_spec(old) is None, old
        names = [m.name for m in pkgutil.walk_packages(cosmopipe.__path__, "cosmopipe.")
                 if not m.name.endswith("__main__")]       # __main__ runs the command line
        for name in names:
            module = importlib.import_module(name)
            assert module.__file__.startswith(sys.argv[1]), (name, module.__file__)
        print(len(names))
    """)
    out = _run([str(python), "-c", script, str(package)], env=_with_dependencies(), cwd=package.parent.parent)
    n = int(out.stdout.split()[-1])
    print(f"\n{n} cosmopipe modules imported from the wheel")
    assert n >= 60


def test_layers_point_one_way(installed):
    """import-linter's layers contract (pyproject.toml, [tool.importlinter]) on the wheel."""
    _, python, package = installed
    script = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(sys.argv[1], no_cache=True))"
    proc = subprocess.run([str(python), "-c", script, str(REPO / "pyproject.toml")], env=_with_dependencies(),
                          cwd=package.parent.parent, capture_output=True, text=True)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- cycles and function-local imports (AST) ----------------------------------------------
def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """module name -> file, for packages rooted at ``prefix -> folder``."""
    out = {}
    for prefix, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([prefix, *parts])] = path
    return out


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The project modules an import statement imports (the deepest known one per name)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parent = module.split(".")
            parent = parent[:len(parent) - node.level + (1 if is_package else 0)]
            base = ".".join(parent + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def count_imports(roots: dict[str, Path]) -> tuple[list[list[str]], int]:
    """(import cycles: the non-trivial strongly connected components of the module graph,
    number of function-local imports of project modules)."""
    files = module_files(roots)
    known = set(files)
    graph: dict[str, set[str]] = {m: set() for m in files}
    local = 0
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(n) for n in ast.walk(fn) if n is not fn)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = [t for t in _targets(node, module, path.name == "__init__.py", known) if t != module]
                graph[module].update(targets)
                local += bool(targets) and id(node) in in_function
    return _cycles(graph), local


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of size > 1."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles(installed):
    _, _, package = installed
    cycles, local = count_imports({"cosmopipe": package})
    print(f"\nimport cycles: {BEFORE['cycles']} before, {len(cycles)} now; function-local imports of project "
          f"modules: {BEFORE['function_local']} before, {local} now")
    for c in cycles:
        print("  cycle:", " <-> ".join(c))
    assert not cycles
    assert local <= LOCAL_CEILING, f"{local} function-local imports of project modules (at most {LOCAL_CEILING})"


def test_the_counter_finds_a_cycle(tmp_path):
    """count_imports on a two-module cycle, one side hidden in a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n    import numpy\n")
    (pkg / "c.py").write_text("from pkg.a import y\n")
    cycles, local = count_imports({"pkg": pkg})
    assert cycles == [["pkg.a", "pkg.b"]]
    assert local == 1
