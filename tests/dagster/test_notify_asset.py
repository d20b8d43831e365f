"""`alert_destinations`: destinations and subscriptions in the materialization metadata, no secret."""

import dagster as dg

from livermore_pipelines.assets.notify import alert_destinations
from streaming.notify import store

SECRET = "123456789:AAEsecretTgBot9f8e"


def test_alert_destinations_lists_destinations_and_subscriptions_without_secrets(resources, engine, instance):
    env = {"TG_BOT": SECRET, "TG_CHAT": "-1001", "HOOK_SECRET": SECRET}
    with engine.begin() as conn:
        tg = store.add_destination(conn, "phone", "tgram://{TG_BOT}/{TG_CHAT}", env)
        store.add_subscription(conn, tg, "coinbase", timeframes=["1h"])
        store.add_subscription(conn, tg, tiers=[2])
        hook = store.add_destination(conn, "desk", "https://127.0.0.1:8443/path/t0ken", env, "HOOK_SECRET")
        store.add_subscription(conn, hook)
    result = dg.materialize([alert_destinations], resources={"database": resources["database"]}, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("alert_destinations")[0].metadata
    assert meta["destinations_count"].value == 2 and meta["subscriptions_count"].value == 3
    dests = {r.data["name"]: r.data for r in meta["destinations"].value.records}
    assert dests["phone"]["url"] == "tgram://{TG_BOT}/{TG_CHAT}" and dests["phone"]["rate"] == "1/1s"
    assert dests["desk"]["url"] == "https://127.0.0.1:8443/..." and dests["desk"]["variables"] == "HOOK_SECRET"
    subs = [(r.data["destination"], r.data["filters"]) for r in meta["subscriptions"].value.records]
    assert subs == [("phone", "coinbase 1h"), ("phone", "tier 2"), ("desk", "everything")]
    assert SECRET not in str(meta) and "t0ken" not in str(meta)
