"""A loopback TCP proxy that can fail the way networks do: frozen mid-connection, a black
hole that accepts and never answers, and a reset of every connection.

It runs its own event loop in a thread, so a test may freeze the path while the code
under test waits on it. It never touches the host's network configuration: it is only
a process-local relay between 127.0.0.1 ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any


class FaultProxy:
    """127.0.0.1:<port> relays to `upstream` until told to fail.

    freeze(): every open connection stops relaying (bytes are read and held, nothing
    is forwarded, nothing is closed) and new connections are accepted and held too.
    black_hole(): open connections are reset, new ones accepted and never answered.
    thaw(): back to relaying; held connections are dropped (a real network drops them).
    """

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.frozen = False
        self.holding = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server = self._run(self._start(port))
        self.port: int = self._server.sockets[0].getsockname()[1]

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _start(self, port: int) -> asyncio.Server:
        self._flowing = asyncio.Event()
        self._flowing.set()
        return await asyncio.start_server(self._accept, "127.0.0.1", port, reuse_address=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.frozen or self.holding:
                await self._hold(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # upstream down: the client sees the connection close
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        """Read and drop, answer nothing, until the client gives up or we are thawed."""
        while (self.frozen or self.holding) and not reader.at_eof():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await reader.read(65536)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()  # while frozen: held, neither forwarded nor closed
                writer.write(data)
                await writer.drain()
        finally:
            if not self.frozen:
                writer.close()
            self._writers.discard(writer)

    async def _flow(self, flowing: bool) -> None:
        self.frozen = not flowing
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    def freeze(self) -> None:
        self._run(self._flow(False))

    def black_hole(self) -> None:
        """Open connections are reset; every new one is accepted and never answered."""
        self.holding = True
        self._run(self._reset_all())

    def thaw(self) -> None:
        """Relay again; connections held while frozen are reset, as a real outage leaves them."""
        self.holding = False
        self._run(self._flow(True))
        self._run(self._reset_all())

    async def _reset_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST, not FIN: what a dropped path looks like later
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                transport.abort()
        self._writers.clear()

    def go_away(self) -> None:
        """Stop listening and reset every connection: refused, as when the server is gone."""
        self._run(self._go_away())

    async def _go_away(self) -> None:
        self._server.close()
        await self._reset_all()

    def come_back(self) -> None:
        """Listen again on the same port."""
        self._server = self._run(self._start(self.port))

    def close(self) -> None:
        self.holding = False
        self._run(self._flow(True))
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _close(self) -> None:
        await self._reset_all()
        self._server.close()
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await self._server.wait_closed()


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
