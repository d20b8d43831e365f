"""A catch-all aiohttp server on 127.0.0.1 for tests that stand in for an exchange's REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_all(handler: Handler) -> tuple[web.AppRunner, int]:
    """Serve every method and path with `handler` on a free loopback port: (runner, port).
    The caller ends it with `await runner.cleanup()`."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
