"""Process entry of the worker: settings, Redis, database, then the asyncio Worker."""

from __future__ import annotations

import asyncio
import gc
import logging

from streaming.db.lazy_engine import LazyEngine
from streaming.errors import UsageError
from streaming.redis_clients import async_client
from streaming.settings import Settings, load_settings, resolve_redis_url
from streaming.worker.config import WorkerConfig
from streaming.worker.exchanges import check_system_user

log = logging.getLogger("livermore.worker")


def run_worker(config: WorkerConfig, settings: Settings | None = None) -> int:
    settings = settings or load_settings()
    url = resolve_redis_url(settings)  # UsageError when unreachable: the worker is useless without Redis
    engine = LazyEngine(settings.database_url.get_secret_value())  # SQLAlchemy once the database is read
    try:
        if config.user is not None:
            try:
                check_system_user(engine, config.user)
            except UsageError:
                raise
            except Exception as exc:  # database down: the universe in Redis still names the user's symbols
                log.warning("cannot check user %s in the database (%s); continuing", config.user,
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return asyncio.run(_main(config, url, engine))
    finally:
        engine.dispose()


async def _main(config: WorkerConfig, url: str, engine: LazyEngine) -> int:
    from streaming.worker.worker import Worker

    # Everything imported so far lives as long as the process: out of the collector's reach, a
    # full collection (which the allocations of a busy minute trigger) scans the few objects made
    # since instead of every module's, a pause of tens of ms on the receive path.
    gc.freeze()
    redis = async_client(url)
    try:
        return await Worker(config, redis, engine).run()
    finally:
        await redis.aclose()
