"""Test modules import nothing from one another: shared helpers live in conftest.py or a support
module (e.g. tests/runtime/service_support.py). A test module imported by another runs its
module-level code twice, couples unrelated suites, and turns its private helpers into an API."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("tests", "benchmarks")


# Libraries' own helper modules that happen to be called test_*: not this project's test modules.
LIBRARY_MODULES = ("aiohttp.test_utils",)


def _is_test_module(name: str) -> bool:
    """`test_x`, `tests.runtime.test_x` or `.test_x`: any dotted part that names a test module."""
    if name.startswith(LIBRARY_MODULES):
        return False
    return any(part.startswith("test_") for part in name.split("."))


def imports_of_test_modules(source: str, filename: str = "<source>") -> list[str]:
    """One `line: module` per import statement of a `test_*` module (or of a `test_*` name from a module) in
    `source`, wherever it appears: `import`, `from ... import` (relative ones too) and
    `import_module("...")` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # `from tests.runtime import test_x` names the module in the alias; so does a test
            # function imported by name, which pytest would then collect twice.
            module = "." * node.level + (node.module or "")
            names = [module, *(f"{module.rstrip('.')}.{alias.name}" for alias in node.names)]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        hits = [name for name in names if _is_test_module(name)]
        if hits:  # one line per import statement
            found.append(f"{node.lineno}: {hits[0]}")
    return found


def test_no_test_module_imports_another():
    problems = [
        f"{path.relative_to(ROOT)}:{hit}"
        for tree in TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        for hit in imports_of_test_modules(path.read_text(), str(path))
    ]
    assert not problems, "move the shared helpers into conftest.py or a *_support.py module:\n" + "\n".join(
        problems
    )


def test_the_check_sees_every_form_of_import():
    source = (
        "import test_a\n"
        "import tests.runtime.test_b as b\n"
        "from test_c import helper\n"
        "from . import test_d\n"
        "from .test_e import helper\n"
        "from tests.runtime import test_f\n"
        "def late():\n"
        "    from importlib import import_module\n"
        "    return import_module('test_g')\n"
    )
    hits = imports_of_test_modules(source)
    for letter in "abcdefg":
        assert any(hit.endswith(f"test_{letter}") for hit in hits), (letter, hits)


def test_the_check_allows_support_modules_and_libraries():
    source = (
        "import pytest\n"
        "from service_support import add_users\n"
        "from order_path_support import MINUTE\n"
        "from xray_core.testing import helpers\n"
        "from . import conftest_helpers\n"
        "import contest_results\n"
    )
    assert imports_of_test_modules(source) == []
