"""One relayed WebSocket connection, shared by the test relays (tests/adapters/proxies.WsRelay
and tests/hostile/relay.HostileRelay)."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection


async def relay(client: ServerConnection, upstream: str, clients: set[ServerConnection]) -> None:
    """Relay `client` to `upstream` + its request path (frames both ways) until either side ends;
    `client` is in `clients` while it is relayed, so a test can inject frames towards it."""
    path = client.request.path if client.request is not None else "/"
    async with connect(upstream + path, max_size=2**24) as up:
        clients.add(client)

        async def down() -> None:
            async for frame in up:
                await client.send(frame)

        async def upward() -> None:
            async for frame in client:
                await up.send(frame)

        tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            clients.discard(client)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
