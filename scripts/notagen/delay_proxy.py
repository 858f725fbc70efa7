#!/usr/bin/env python3
"""A TCP relay that delays every chunk by half the given round-trip time in each direction: an
emulated slow link between duet-edge and duet-cloud (CURVE runs end to end through it).
Python 3 standard library only.

    python3 scripts/notagen/delay_proxy.py --listen 127.0.0.1:7801 --to 127.0.0.1:7800 --rtt-ms 20
"""
import argparse
import asyncio
import time


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))  # order kept: FIFO, same delay
    finally:
        queue.put_nowait((0, None))
        await task


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--rtt-ms", type=float, required=True)
    args = ap.parse_args()
    lh, lp = args.listen.rsplit(":", 1)
    th, tp = args.to.rsplit(":", 1)
    delay = args.rtt_ms / 2000.0

    async def handle(cr, cw):
        sr, sw = await asyncio.open_connection(th, int(tp))
        await asyncio.gather(pipe(cr, sw, delay), pipe(sr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, lh, int(lp))
    print("relaying %s -> %s with %.1f ms round trip" % (args.listen, args.to, args.rtt_ms), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
