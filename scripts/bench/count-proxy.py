#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that counts HTTP requests (for the lineage benchmark's "requests on
S3") and optionally delays each by DELAY_MS. Prints the count to COUNT_FILE on every request.

Usage: count-proxy.py LISTEN_PORT TARGET_PORT DELAY_MS COUNT_FILE
"""
import asyncio
import sys

LISTEN, TARGET, DELAY, OUT = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000, sys.argv[4]
METHODS = (b"GET ", b"PUT ", b"HEAD ", b"POST ", b"DELETE ")
count = 0


async def pipe(reader, writer, client):
    global count
    try:
        while data := await reader.read(1 << 16):
            if client and data.startswith(METHODS):
                count += 1
                with open(OUT, "w") as f:
                    f.write(str(count))
                if DELAY:
                    await asyncio.sleep(DELAY)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(cr, cw):
    try:
        tr, tw = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, tw, True), pipe(tr, cw, False))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


asyncio.run(main())
