"""The package boundaries of the README's Layout section, enforced: import-linter contracts and a fast CLI."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("xray_core", "xray_pipelines", "xray_runtime", "xray_web")
SIM_CONTRACT = "the product never imports the simulated world"


def lint_imports(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(cwd / "pyproject.toml")], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)


def test_import_contracts_hold():
    """xray_core imports neither pipelines, runtime, CLI, Dagster, MLflow nor Redis; pipelines and
    runtime never import each other; only the CLI reaches into all packages; the product never
    imports the simulated world (pyproject.toml)."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert f"{SIM_CONTRACT} KEPT" in result.stdout


def test_the_simulated_world_is_a_checked_package_the_product_may_not_import():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert "xray_sim" in config["root_packages"]  # unlisted, lint-imports would not look inside it
    [contract] = [c for c in config["contracts"] if c["name"] == SIM_CONTRACT]
    assert contract["type"] == "forbidden"
    assert set(contract["source_modules"]) == set(PRODUCT)
    assert contract["forbidden_modules"] == ["xray_sim"]


def miniature(tmp_path: Path) -> Path:
    """Every package, empty, under the repository's real contracts; the simulated world imports the
    product, which is allowed."""
    for package in (*PRODUCT, "xray_cli", "xray_sim"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "xray_sim" / "equipment.py").write_text("import xray_core\nimport xray_runtime\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return tmp_path


def test_the_contracts_accept_equipment_that_imports_the_product(tmp_path):
    result = lint_imports(miniature(tmp_path), PYTHONPATH=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{SIM_CONTRACT} KEPT" in result.stdout


@pytest.mark.parametrize("product", PRODUCT)
def test_the_contracts_refuse_a_product_module_that_imports_the_simulated_world(tmp_path, product):
    (miniature(tmp_path) / product / "leak.py").write_text("from xray_sim import equipment\n")
    result = lint_imports(tmp_path, PYTHONPATH=str(tmp_path))
    assert result.returncode != 0, result.stdout
    assert f"{SIM_CONTRACT} BROKEN" in result.stdout
    assert f"{product}.leak -> xray_sim.equipment" in result.stdout


def test_cli_help_imports_no_heavy_library():
    """`xray --help` must stay fast: commands import their implementations lazily."""
    probe = (
        "import sys; from typer.testing import CliRunner; from xray_cli.main import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('dagster', 'ccxt', 'polars', 'duckdb', 'torch', 'mlflow', 'numpy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"xray --help imported {result.stdout.strip()}"


def test_mlflow_config_directory_is_not_a_package():
    assert (ROOT / "mlflow").is_dir()
    assert not (ROOT / "mlflow" / "__init__.py").exists()


def test_make_lint_type_checks_every_package():
    """`make lint` runs mypy, and mypy's `packages` are the ones import-linter checks (all of them)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert set(config["mypy"]["packages"]) == set(config["importlinter"]["root_packages"])
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/mypy" in lint.splitlines()[-1], lint
