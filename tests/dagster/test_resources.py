"""Resources per deployment and the refresh-schedule cron setting."""

import dagster as dg
import pytest

from livermore_pipelines.resources import DatabaseResource, RedisResource, resources_for_deployment
from livermore_pipelines.schedules import DEFAULT_CRON, refresh_cron
from streaming.errors import UsageError


def test_local_uses_embedded_defaults(tmp_path):
    res = resources_for_deployment({"LIVERMORE_HOME": str(tmp_path)})
    assert isinstance(res["database"], DatabaseResource) and isinstance(res["redis"], RedisResource)
    assert res["database"].url == f"sqlite:///{tmp_path / 'livermore.db'}"
    assert res["redis"].url is None and res["redis"].home == str(tmp_path)
    assert set(res) == {"database", "redis", "exchange_clients", "deployment"}
    assert res["deployment"].name == "local" and res["deployment"].spawns_workers


def test_production_requires_explicit_urls(tmp_path):
    with pytest.raises(UsageError, match="LIVERMORE_DATABASE_URL and LIVERMORE_REDIS_URL"):
        resources_for_deployment({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DEPLOYMENT": "production"})
    with pytest.raises(UsageError, match="needs LIVERMORE_REDIS_URL") as missing_redis:
        resources_for_deployment({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DEPLOYMENT": "production",
                                  "LIVERMORE_DATABASE_URL": "postgresql://u:pw@db:5432/x"})
    # the example is of the variable that is missing, not of both
    assert "redis://" in str(missing_redis.value) and "postgresql" not in str(missing_redis.value)


def test_production_with_urls(tmp_path, monkeypatch):
    env = {"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DEPLOYMENT": "Production",
           "LIVERMORE_DATABASE_URL": "postgresql://u:pw@db:5432/x", "LIVERMORE_REDIS_URL": "redis://u:pw@cache:6379/1"}
    res = resources_for_deployment(env)
    # the UI shows the variable names, not the URLs with their passwords
    assert res["database"].url == dg.EnvVar("LIVERMORE_DATABASE_URL")
    assert res["redis"].url == dg.EnvVar("LIVERMORE_REDIS_URL")
    assert res["deployment"].name == "production" and not res["deployment"].spawns_workers
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    database = res["database"].process_config_and_initialize()
    assert database.dsn() == "postgresql+psycopg2://u:pw@db:5432/x"
    assert res["redis"].process_config_and_initialize().url == "redis://u:pw@cache:6379/1"


def test_redis_home_defaults_to_the_settings_home():
    from streaming.settings import default_home

    assert RedisResource().home == str(default_home())


def test_unknown_deployment(tmp_path):
    with pytest.raises(UsageError, match="local or production"):
        resources_for_deployment({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DEPLOYMENT": "staging"})


def test_redis_resource_connects(redis_url):
    with RedisResource(url=redis_url).client() as r:
        assert r.ping()


def test_refresh_cron():
    assert refresh_cron({}) == DEFAULT_CRON
    assert refresh_cron({"LIVERMORE_SYMBOL_REFRESH_CRON": "*/15 * * * *"}) == "*/15 * * * *"
    with pytest.raises(UsageError, match="cron"):
        refresh_cron({"LIVERMORE_SYMBOL_REFRESH_CRON": "hourly"})


def test_what_the_ui_gets_holds_variable_names_not_passwords(tmp_path, monkeypatch):
    """The repository snapshot is all the webserver knows of the code location: no password in it."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    from livermore_pipelines.definitions import defs

    monkeypatch.setenv("LIVERMORE_HOME", str(tmp_path))
    monkeypatch.setenv("LIVERMORE_DATABASE_URL", "postgresql://u:s3cret@db:5432/x")
    monkeypatch.setenv("LIVERMORE_REDIS_URL", "redis://u:s3cret@cache:6379/1")
    snap = RepositorySnap.from_def(defs().get_repository_def())
    assert "s3cret" not in serialize_value(snap)
    urls = {r.name: r.configured_values["url"] for r in snap.resources if r.name in ("database", "redis")}
    assert {name: getattr(value, "name", None) for name, value in urls.items()} == {
        "database": "LIVERMORE_DATABASE_URL", "redis": "LIVERMORE_REDIS_URL"}
