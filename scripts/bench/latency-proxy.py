#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every request by a fixed time, to bench against a
server with a realistic round trip (loopback has none, and this kernel has no netem), and
optionally counts the HTTP requests it passes (the lineage benchmark's "requests on S3").

Usage: latency-proxy.py LISTEN_PORT TARGET_PORT DELAY_MS [COUNT_FILE]
Each chunk a client sends is forwarded DELAY_MS after it was read (in order, per connection), so
every HTTP GET on a keep-alive connection waits DELAY_MS once; responses pass straight back.
With COUNT_FILE, the number of requests so far is written there after each one.
"""
import asyncio
import sys

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
COUNT_FILE = sys.argv[4] if len(sys.argv) > 4 else None
METHODS = (b"GET ", b"PUT ", b"HEAD ", b"POST ", b"DELETE ")
count = 0


async def pipe(reader, writer, delay):
    global count
    try:
        while data := await reader.read(1 << 16):
            if COUNT_FILE and delay is not None and data.startswith(METHODS):
                count += 1
                with open(COUNT_FILE, "w") as f:
                    f.write(str(count))
            if delay:
                # A GET arrives as one chunk, so each request waits once.
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pipe(client_reader, server_writer, DELAY), pipe(server_reader, client_writer, None)
    )


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
