"""Every third-party package the code imports is declared in pyproject.toml, and every declared range
admits the exact version constraints.txt pins.

A package that only arrives as another package's dependency works until that package drops it; then
X-Ray breaks on an install that pip calls consistent. So: the four packages may import only what
`[project] dependencies` names; tests and benchmarks may also use the `dev` extra. Imports are read
from the source (`ast`), at the top of a module and inside functions alike, and mapped to their
distributions with importlib.metadata."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable
from fnmatch import fnmatch
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The packages the distribution ships (setuptools' include patterns), so a new one is checked too.
INCLUDE = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
PACKAGES = tuple(
    sorted(
        d.name
        for d in ROOT.iterdir()
        if (d / "__init__.py").is_file() and any(fnmatch(d.name, p) for p in INCLUDE)
    )
)
DEV_TREES = ("tests", "benchmarks")


def test_the_shipped_packages_are_found():
    assert {"xray_core", "xray_pipelines", "xray_runtime", "xray_cli"} <= set(PACKAGES)


def _requirements(group: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = project["dependencies"] if group == "main" else project["optional-dependencies"][group]
    return [Requirement(line) for line in lines]


def _names(requirements: Iterable[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports: `import a.b`, `from a import b` (absolute only)
    and `import_module("a.b")` with a literal name, wherever they appear in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return {name.split(".")[0] for name in names}


def _local_modules(trees: Iterable[str]) -> set[str]:
    """Modules of this repository a file may import by plain name: the four packages, and the helper
    modules tests import from their own folder (pytest puts it on sys.path)."""
    local = set(PACKAGES)
    for tree in trees:
        local.update(path.stem for path in (ROOT / tree).rglob("*.py"))
    return local


def _undeclared(trees: Iterable[str], allowed: set[str]) -> list[str]:
    """One line per third-party import under `trees` whose distribution is not in `allowed`."""
    trees = list(trees)
    local = _local_modules(trees)
    distributions = packages_distributions()
    problems: dict[str, str] = {}
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for name in _imported_modules(path) - local - set(sys.stdlib_module_names):
                found = distributions.get(name)
                where = path.relative_to(ROOT)
                if not found:
                    problems.setdefault(name, f"{name} (imported by {where}) is not installed")
                elif not {canonicalize_name(d) for d in found} & allowed:
                    problems.setdefault(
                        name, f"{found[0]} (imported as {name} by {where}) is not declared in pyproject.toml"
                    )
    return sorted(problems.values())


def test_the_packages_import_only_declared_dependencies():
    problems = _undeclared(PACKAGES, _names(_requirements("main")))
    assert not problems, "add to [project] dependencies (and pin in constraints.txt):\n" + "\n".join(problems)


def test_tests_and_benchmarks_import_only_declared_dependencies():
    allowed = _names(_requirements("main")) | _names(_requirements("dev"))
    problems = _undeclared(DEV_TREES, allowed)
    assert not problems, "add to the dev extra (and pin in constraints.txt):\n" + "\n".join(problems)


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"constraints.txt: {line} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


@pytest.mark.parametrize("group", ["main", "dev"])
def test_every_declared_range_admits_its_pin_in_constraints(group):
    pins = _pins()
    problems = []
    for requirement in _requirements(group):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} has no pin in constraints.txt")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement} does not admit the pinned {name}=={pins[name]}")
    assert not problems, "\n".join(problems)


def test_the_check_sees_an_undeclared_import(tmp_path, monkeypatch):
    """The scan itself: a file importing a real but undeclared distribution is reported, lazy imports
    inside functions and import_module("...") included; stdlib and local modules are not."""
    tree = tmp_path / "pkg"
    tree.mkdir()
    (tree / "helper.py").write_text("")
    (tree / "mod.py").write_text(
        "import json\nimport helper\nfrom importlib import import_module\n\n"
        "def late():\n    import pytest\n    return import_module('packaging.version')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _imported_modules(tree / "mod.py") == {"json", "helper", "importlib", "pytest", "packaging"}
    problems = _undeclared(["pkg"], {"pytest"})
    assert len(problems) == 1 and problems[0].startswith("packaging (imported as packaging by pkg")
    assert _undeclared(["pkg"], {"pytest", "packaging"}) == []
