"""deploy/: the Kubernetes deployment (Dagster's Helm chart with the k8s executor) says what
deploy/README.md says, and agrees with the production instance (dagster.postgres.yaml)."""

import importlib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "dagster-values.yaml").read_text())
INSTANCE = yaml.safe_load((ROOT / "dagster.postgres.yaml").read_text())


def _env(deployment: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in deployment["env"]}


def test_runs_are_jobs_and_steps_are_jobs_of_the_x_ray_code_location():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    (location,) = VALUES["dagster-user-deployments"]["deployments"]
    assert VALUES["dagster-user-deployments"]["enabled"] is True
    assert location["dagsterApiGrpcArgs"] == ["--module-name", "xray_pipelines.definitions"]
    assert _env(location)["XRAY_PIPELINES_EXECUTOR"] == "k8s"
    assert location["includeConfigInLaunchedRuns"]["enabled"] is True  # steps get its secrets and lake
    mounts = {m["name"]: m["mountPath"] for m in location["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in location["volumes"]}
    assert mounts["xray-lake"] == _env(location)["XRAY_HOME"]
    assert _env(location)["XRAY_DUCKDB_PATH"].startswith(mounts["xray-lake"] + "/")
    pvc = yaml.safe_load((ROOT / "deploy" / "helm" / "lake-pvc.yaml").read_text())
    assert pvc["metadata"]["name"] == claims["xray-lake"] and pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_queue_and_its_limits_match_the_production_instance():
    daemon = VALUES["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runRetries"] == {"enabled": True, "maxRetries": INSTANCE["run_retries"]["max_retries"]}
    runs, pools = VALUES["concurrency"]["runs"], VALUES["concurrency"]["pools"]
    assert VALUES["concurrency"]["enabled"] is True
    assert runs["maxConcurrentRuns"] == INSTANCE["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == INSTANCE["concurrency"]["runs"]["tag_concurrency_limits"]
    assert pools["defaultLimit"] == INSTANCE["concurrency"]["pools"]["default_limit"] == 1


def test_no_password_in_the_values_and_an_external_database():
    assert VALUES["postgresql"]["enabled"] is False and "postgresqlPassword" not in VALUES["postgresql"]
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    assert VALUES["global"]["postgresqlSecretName"]
    text = (ROOT / "deploy" / "helm" / "dagster-values.yaml").read_text().lower()
    assert "password:" not in text.replace("postgresql-password", "")


def test_the_chart_version_is_the_dagster_version():
    dagster = version("dagster")
    for path in ("deploy/README.md", "deploy/helm/dagster-values.yaml"):
        assert f"version {dagster}" in (ROOT / path).read_text(), path


def test_the_research_and_training_jobs_take_the_k8s_executor(monkeypatch):
    import xray_pipelines.definitions as location

    monkeypatch.setenv("XRAY_PIPELINES_EXECUTOR", "k8s")
    try:
        k8s_defs = importlib.reload(location).defs
        for name in ("research_job", "training_job"):
            assert k8s_defs.resolve_job_def(name).executor_def.name == "k8s"
    finally:
        monkeypatch.delenv("XRAY_PIPELINES_EXECUTOR")
        importlib.reload(location)
