"""The package boundaries of DEVELOPERS.md, enforced: import-linter contracts and a fast CLI."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """xray_core imports neither pipelines, runtime, CLI, Dagster, MLflow nor Redis; pipelines and
    runtime never import each other; only the CLI reaches into all packages (pyproject.toml)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


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
