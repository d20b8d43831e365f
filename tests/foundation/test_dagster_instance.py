"""The Dagster instance `livermore up` writes: SQLite by default, dagster-postgres in production."""

from streaming.platform import prepare_dagster_home
from streaming.settings import load_settings


def _instance(home):
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(home))


def test_default_instance_is_sqlite_with_telemetry_off(tmp_path):
    settings = load_settings({"LIVERMORE_HOME": str(tmp_path)})
    home = prepare_dagster_home(settings)
    text = (home / "dagster.yaml").read_text()
    assert "telemetry:\n  enabled: false" in text
    assert "\nstorage:" not in text
    assert "livermore_pipelines.definitions" in (home / "workspace.yaml").read_text()
    with _instance(home) as instance:
        assert "Sqlite" in type(instance.run_storage).__name__


def test_production_instance_uses_dagster_postgres(tmp_path, postgres_url, monkeypatch):
    assert postgres_url.startswith("postgresql+psycopg2://")
    settings = load_settings({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DAGSTER_DATABASE_URL": postgres_url})
    home = prepare_dagster_home(settings)
    assert postgres_url not in (home / "dagster.yaml").read_text()  # the variable's name, not the password
    monkeypatch.setenv("LIVERMORE_DAGSTER_DATABASE_URL", postgres_url)
    with _instance(home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []


def test_dagster_yaml_in_the_repository_is_the_one_used(tmp_path):
    from streaming.platform import REPO_ROOT

    settings = load_settings({"LIVERMORE_HOME": str(tmp_path)})
    home = prepare_dagster_home(settings)
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
