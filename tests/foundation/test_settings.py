import re
from pathlib import Path

import pytest

from streaming.errors import UsageError
from streaming.secret import Secret
from streaming.settings import _CHECKS, FIELDS, load_settings, mask_url, resolve_redis_url, settings_from


def test_defaults_use_home_and_sqlite(tmp_path):
    s = load_settings({"LIVERMORE_HOME": str(tmp_path / "h")})
    assert s.home == (tmp_path / "h").resolve()
    assert s.home.is_dir()
    assert s.database_url.get_secret_value() == f"sqlite:///{s.home / 'livermore.db'}"
    assert s.redis_url is None and s.embedded_redis


def test_default_home_is_one_per_user_whatever_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    homes = set()
    for cwd in (tmp_path, tmp_path / "data"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        homes.add(settings_from({}).home)
    assert homes == {(tmp_path / "data" / "livermore").resolve()}


def test_plain_postgresql_url_gets_psycopg2_driver(tmp_path):
    s = load_settings({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DATABASE_URL": "postgresql://u:p@db:5432/liv"})
    assert s.database_url.get_secret_value() == "postgresql+psycopg2://u:p@db:5432/liv"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LIVERMORE_DATABASE_URL": "mysql://x/y"}, "not a supported database URL"),
        ({"LIVERMORE_DATABASE_URL": "not a url"}, "not a supported database URL"),
        ({"LIVERMORE_DATABASE_URL": "postgresql+psycopg2://"}, "names no host or database"),
        ({"LIVERMORE_REDIS_URL": "http://x"}, "not a Redis URL"),
        ({"LIVERMORE_REDIS_URL": "redis://localhost:notaport"}, "not a valid URL"),
    ],
)
def test_invalid_settings_say_what_to_do(tmp_path, env, needle):
    with pytest.raises(UsageError, match=needle):
        load_settings({"LIVERMORE_HOME": str(tmp_path), **env})


def test_unwritable_home(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="not a writable directory"):
        load_settings({"LIVERMORE_HOME": str(blocker / "sub")})


def test_unreachable_redis_is_one_clear_line_without_password(tmp_path):
    from streaming.redis_server import free_port

    s = load_settings({"LIVERMORE_HOME": str(tmp_path),
                       "LIVERMORE_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0"})
    with pytest.raises(UsageError) as exc:
        resolve_redis_url(s)
    assert "unreachable" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    assert "\n" not in str(exc.value)


def test_mask_url_hides_only_the_password():
    assert mask_url("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("postgresql+psycopg2://u:p%40ss@h/db") == "postgresql+psycopg2://u:***@h/db"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_reachable_redis_url_is_used(tmp_path, redis_url):
    s = load_settings({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_REDIS_URL": redis_url})
    assert resolve_redis_url(s) == redis_url
    assert not (Path(s.home) / "redis").exists()  # no embedded server started


def test_many_processes_checking_one_home_at_once(tmp_path):
    """The writability probe must not trip over the probe of another process starting together."""
    import threading

    home = tmp_path / "shared-home"
    errors: list[Exception] = []

    def check():
        for _ in range(200):
            try:
                load_settings({"LIVERMORE_HOME": str(home)})
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not list(home.glob(".write-test*"))


def test_stale_threshold_per_exchange_and_metrics_port(tmp_path):
    base = {"LIVERMORE_HOME": str(tmp_path)}
    s = load_settings(base)
    assert s.stale_after("coinbase") == 60.0 and s.metrics_port is None
    s = load_settings({**base, "LIVERMORE_STALE_AFTER_S": "30", "LIVERMORE_BINANCE_STALE_AFTER_S": "90",
                       "LIVERMORE_METRICS_PORT": "9100"})
    assert (s.stale_after("coinbase"), s.stale_after("binance"), s.stale_after("binance_us")) == (30, 90, 30)
    assert s.metrics_port == 9100
    assert load_settings({**base, "LIVERMORE_METRICS_PORT": "0"}).metrics_port == 0


@pytest.mark.parametrize(("env", "needle"), [
    ({"LIVERMORE_STALE_AFTER_S": "0"}, "LIVERMORE_STALE_AFTER_S='0' must be a number of seconds from 0.1"),
    ({"LIVERMORE_COINBASE_STALE_AFTER_S": "soon"}, "LIVERMORE_COINBASE_STALE_AFTER_S='soon' must be"),
    ({"LIVERMORE_METRICS_PORT": "70000"}, "LIVERMORE_METRICS_PORT='70000' must be a port number"),
    ({"LIVERMORE_METRICS_PORT": "http"}, "LIVERMORE_METRICS_PORT='http' must be a port number"),
])
def test_bad_stale_threshold_or_metrics_port_says_what_to_do(tmp_path, env, needle):
    with pytest.raises(UsageError, match=re.escape(needle)):
        load_settings({"LIVERMORE_HOME": str(tmp_path), **env})


def test_a_secret_is_masked_wherever_it_is_printed():
    secret = Secret("redis://:hunter2@h:1/0")
    assert secret.get_secret_value() == "redis://:hunter2@h:1/0"
    assert str(secret) == "**********" and repr(secret) == "Secret('**********')"
    assert f"{secret} {secret!r}".count("hunter2") == 0
    assert secret == Secret("redis://:hunter2@h:1/0") and secret != Secret("other")
    assert secret != "redis://:hunter2@h:1/0"  # a Secret is never equal to the bare text it hides
    assert len({secret, Secret("redis://:hunter2@h:1/0")}) == 1


def test_the_settings_repr_shows_no_password(tmp_path):
    s = settings_from({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_DATABASE_URL": "postgresql://u:hunter2@db/liv",
                       "LIVERMORE_REDIS_URL": "redis://:hunter3@h:1/0",
                       "LIVERMORE_DAGSTER_DATABASE_URL": "postgresql://u:hunter4@db/dagster"})
    for text in (repr(s), str(s), repr(s.for_offline())):
        assert "hunter" not in text and "**********" in text


def test_given_names_the_variables_the_environment_set(tmp_path):
    s = settings_from({"LIVERMORE_HOME": str(tmp_path), "LIVERMORE_METRICS_PORT": "9100", "LIVERMORE_REDIS_URL": "",
                       "LIVERMORE_NOT_A_SETTING": "x", "LIVERMORE_GIVEN": "home"})
    assert s.given == {"home", "metrics_port"}
    offline = s.for_offline()
    assert offline.home == tmp_path / "offline"
    assert offline.database_url.get_secret_value() == f"sqlite:///{tmp_path / 'offline' / 'livermore.db'}"
    assert s.home == tmp_path  # frozen: for_offline made a new object
    with pytest.raises(AttributeError):
        s.home = tmp_path / "other"  # type: ignore[misc]


def test_every_setting_has_a_check():
    assert set(FIELDS) == set(_CHECKS)


@pytest.mark.parametrize("name", ["LIVERMORE_HOME", "LIVERMORE_REDIS_SERVER_BIN", "LIVERMORE_SIM_RECORDINGS"])
def test_a_path_with_an_unknown_users_tilde_is_one_clear_line(name):
    with pytest.raises(UsageError) as exc:  # Path.expanduser's RuntimeError was a traceback
        settings_from({name: "~no-such-user-here/x"})
    assert str(exc.value) == (f"{name}='~no-such-user-here/x' starts with a ~ that names no home directory; "
                              "use an absolute path")


def test_every_invalid_variable_is_named_in_one_line_without_password():
    with pytest.raises(UsageError) as exc:
        settings_from({"LIVERMORE_DATABASE_URL": "mysql://u:hunter2@h/db", "LIVERMORE_SYSTEM_USER": "root",
                       "LIVERMORE_UNIVERSE_CHECK_S": "often", "LIVERMORE_SIM_CLOCK": "1,2"})
    message = str(exc.value)
    assert "\n" not in message and "hunter2" not in message
    named = [message.find(f"{name}=") for name in ("LIVERMORE_DATABASE_URL", "LIVERMORE_SYSTEM_USER",
                                                    "LIVERMORE_UNIVERSE_CHECK_S", "LIVERMORE_SIM_CLOCK")]
    assert -1 not in named and named == sorted(named)  # each named, in the order of the fields
    assert "LIVERMORE_UNIVERSE_CHECK_S='often' must be a number of seconds from 0.2 to 86400 (default 30)" in message


@pytest.mark.parametrize("name,value", [("LIVERMORE_COINBASE_WS_URL", "http://u:hunter2@h"),
                                        ("LIVERMORE_BINANCE_REST_URL", "https://u:hunter2@h:99999"),
                                        ("LIVERMORE_BINANCE_US_WS_URL", "ws://:hunter2@h:1:2")])
def test_an_exchange_url_is_quoted_back_without_its_password(name, value):
    with pytest.raises(UsageError) as exc:
        settings_from({name: value})
    message = str(exc.value)
    assert f"{name}=" in message and "hunter2" not in message and "***" in message


def test_only_the_documented_upper_case_names_are_read(tmp_path):
    s = settings_from({"livermore_home": str(tmp_path / "lower"), "LIVERMORE_HOME": str(tmp_path / "upper"),
                       "Livermore_Redis_Url": "not a url"})
    assert s.home == (tmp_path / "upper").resolve() and s.redis_url is None
