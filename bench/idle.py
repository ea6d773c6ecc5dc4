"""Clients that cost a server nothing but what it spends on them: reads that wait, and
live streams that stay quiet. One process, asyncio, raw HTTP/1.1 sockets, so that the
clients themselves use little CPU beside the server they load.

    python -m bench.idle waiters http://127.0.0.1:8000 100 '/timeline?min_position=900'
    python -m bench.idle streams http://127.0.0.1:8000 300 '/events/stream?after=900'

`waiters`: each client sends the GET, reads the whole answer, and sends it again, until
stopped. `streams`: each client opens the stream and reads whatever comes. On SIGTERM
(or SIGINT) it prints one JSON line: the clients, the answers by status, the errors.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from urllib.parse import urlsplit

Tally = Counter[str]


async def _head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    status = (await reader.readline()).decode().split(" ", 2)[1]
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def waiter(host: str, port: int, path: str, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    try:
        while True:
            writer.write(request)
            await writer.drain()
            status, headers = await _head(reader)
            await reader.readexactly(int(headers.get("content-length", "0")))
            tally[status] += 1
            if status == "503":  # refused at once: retry after a while, as told
                await asyncio.sleep(float(headers.get("retry-after", "1")))
    except (OSError, asyncio.IncompleteReadError) as e:
        tally[f"error {type(e).__name__}"] += 1
    finally:
        writer.close()


async def stream(host: str, port: int, path: str, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    try:
        status, _ = await _head(reader)
        tally[status] += 1
        while await reader.read(65536):
            pass
    except (OSError, asyncio.IncompleteReadError) as e:
        tally[f"error {type(e).__name__}"] += 1
    finally:
        writer.close()


async def main(kind: str, base: str, clients: int, path: str) -> None:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tally: Tally = Counter()
    client = waiter if kind == "waiters" else stream
    tasks = [asyncio.create_task(client(host, port, path, tally)) for _ in range(clients)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("started", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"kind": kind, "clients": clients, "answers": dict(tally)}), flush=True)


if __name__ == "__main__":
    kind, base, clients, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if kind not in ("waiters", "streams"):
        sys.exit("python -m bench.idle waiters|streams URL CLIENTS PATH")
    asyncio.run(main(kind, base, clients, path))
