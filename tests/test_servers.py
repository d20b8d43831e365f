import redis
import sqlalchemy as sa


def test_redis_is_real(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert "redis_version" in client.info("server")
    client.close()


def test_postgres_is_real(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert "PostgreSQL" in conn.execute(sa.text("select version()")).scalar_one()
    engine.dispose()
