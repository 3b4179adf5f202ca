"""The code location is discovered from `xray_pipelines/defs/`: every definition in a module there is
loaded, every asset has a group, every group is launched by one job that selects it whole, and a new
asset is one new file (no list, job or `definitions.py` to edit)."""

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.definitions.asset_selection import GroupsAssetSelection

from xray_pipelines.definitions import defs
from xray_pipelines.groups import Group

ROOT = Path(__file__).resolve().parents[2]
DEFS = ROOT / "xray_pipelines" / "defs"


def _modules() -> list[str]:
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in DEFS.rglob("*.py")
        if path.name != "__init__.py"
    )


def _module_definitions(kind: type) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        found[name] = [value for value in vars(module).values() if isinstance(value, kind)]
    return found


def test_every_asset_in_a_defs_module_is_loaded():
    repo = defs.get_repository_def()
    loaded = repo.asset_graph.get_all_asset_keys()
    per_module = _module_definitions(dg.AssetsDefinition)
    assert sum(map(len, per_module.values())) >= 16  # the walk really found the assets
    for module, assets in per_module.items():
        for asset in assets:
            assert set(asset.keys) <= loaded, module  # type: ignore[attr-defined]


def test_every_schedule_sensor_and_job_in_a_defs_module_is_loaded():
    repo = defs.get_repository_def()
    for kind, loaded in (
        (dg.ScheduleDefinition, {s.name for s in repo.schedule_defs}),
        (dg.SensorDefinition, {s.name for s in repo.sensor_defs}),
    ):
        names = {d.name for ds in _module_definitions(kind).values() for d in ds}  # type: ignore[attr-defined]
        assert names and names <= loaded, kind
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {
        "markets_job",
        "candles_job",
        "quality_job",
        "features_job",
        "research_job",
        "training_job",
    } <= jobs


def test_every_asset_has_a_group_and_every_group_one_job_that_selects_it_whole():
    graph = defs.get_repository_def().asset_graph
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == set(Group.ALL)  # no asset left in the "default" group
    jobs_by_group: dict[str, set[str]] = {}
    for job in defs.jobs or []:
        selection = job.selection  # type: ignore[union-attr]
        assert isinstance(selection, GroupsAssetSelection), f"{job.name} selects by {selection}"
        for group in selection.selected_groups:
            jobs_by_group.setdefault(str(group), set()).add(job.name)
    assert {group: len(names) for group, names in jobs_by_group.items()} == dict.fromkeys(Group.ALL, 1)


def test_definitions_py_imports_no_definition():
    """The composition root adds the resources and the executor; it never imports (so never lists) a
    definition."""
    tree = ast.parse((ROOT / "xray_pipelines" / "definitions.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"pathlib", "dagster", "xray_core.settings", "xray_pipelines.resources",
                        "xray_pipelines.executor"}


NEW_ASSET = '''
import dagster as dg

from xray_pipelines.groups import Group
from xray_pipelines.resources import MarketScope


@dg.asset(group_name=Group.RESEARCH)
def probe_asset(market: MarketScope) -> None:
    """Added as one file and nothing else."""
'''

PROBE = """
import json
import sys
from xray_pipelines.definitions import defs
import xray_pipelines
assert xray_pipelines.__file__.startswith(sys.argv[1]), xray_pipelines.__file__
job = defs.get_repository_def().get_job("research_job")
print(json.dumps(sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)))
"""


def test_a_new_asset_is_one_new_file(tmp_path):
    """On a copy of the package: one new module under defs/ and the asset is in its group's job."""
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT / "xray_pipelines", copy / "xray_pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "xray_pipelines" / "defs" / "research" / "probe.py").write_text(NEW_ASSET)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(copy), str(ROOT)]),
        "XRAY_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(copy)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "backtests",
        "filtered_symbols",
        "market_correlation",
        "news_sentiment",
        "probe_asset",
        "risk_profiles",
        "strategy_params",
    ]
