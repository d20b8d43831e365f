import json
import threading

import redis

from streaming.redis_server import embedded_redis_url, ensure_embedded_redis, ping, stop_embedded_redis


def test_embedded_redis_starts_once_is_shared_and_stops(tmp_path):
    home = tmp_path / "home"
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(ensure_embedded_redis(home))) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(urls)) == 1, "concurrent first uses must share one server"
        url = urls[0]
        assert url.startswith("redis://127.0.0.1:")
        state = json.loads((home / "redis" / "server.json").read_text())
        assert state["url"] == url
        client = redis.Redis.from_url(url)
        client.set("shared", "yes")
        client.close()
        # a later process finds the same server
        assert ensure_embedded_redis(home) == url
        assert embedded_redis_url(home) == url
    finally:
        assert stop_embedded_redis(home) is True
    assert not ping(url)
    assert embedded_redis_url(home) is None
    assert stop_embedded_redis(home) is False


def test_embedded_redis_is_persistent_across_restart(tmp_path):
    home = tmp_path / "home"
    url = ensure_embedded_redis(home)
    try:
        client = redis.Redis.from_url(url)
        client.xadd("stream:alerts", {"json": "{}"})
        client.close()
        # a clean shutdown with nosave still keeps the append-only file
    finally:
        stop_embedded_redis(home)
    url2 = ensure_embedded_redis(home)
    try:
        client = redis.Redis.from_url(url2)
        assert client.xlen("stream:alerts") == 1
        client.close()
    finally:
        stop_embedded_redis(home)
