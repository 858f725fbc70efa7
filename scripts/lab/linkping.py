#!/usr/bin/python3
"""TCP ping-pong and bulk transfer across a link (the lab's measuring stick; stdlib only).

  linkping.py echo --listen 10.77.0.1:7790            # prints "listening on HOST:PORT", serves until killed
  linkping.py ping --connect 127.0.0.1:7791 --count 50 --size 64 [--bulk-kib 1024] [--json]

Each request is an 8-byte header (request bytes, reply bytes; both uint32, big-endian) and the
request bytes; the echo side answers with that many reply bytes (a ping's own bytes back when the
two counts are equal, so the client checks they arrived whole and in order). A ping sends and
receives --size bytes and times the whole exchange; --bulk-kib also sends that much up (1-byte answer) and asks
for that much down, timing each, for the link's rate. Nagle is off on both ends.
"""
import argparse
import json
import os
import socket
import socketserver
import statistics
import struct
import sys
import time

HEADER = struct.Struct("!II")


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT")
    return host, int(port)


def recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        b = sock.recv(min(n - got, 1 << 20))
        if not b:
            raise ConnectionError(f"the other side closed after {got} of {n} bytes")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        filler = b"\x5a" * (1 << 20)
        try:
            while True:
                head = s.recv(HEADER.size, socket.MSG_WAITALL)
                if len(head) < HEADER.size:
                    return
                req, rep = HEADER.unpack(head)
                if req == rep and req <= (1 << 20):  # a ping: its own bytes go back
                    s.sendall(recv_exact(s, req))
                    continue
                left = req
                while left:
                    b = s.recv(min(left, 1 << 20))
                    if not b:
                        return
                    left -= len(b)
                while rep:
                    n = min(rep, len(filler))
                    s.sendall(filler[:n])
                    rep -= n
        except (ConnectionError, OSError):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def exchange(sock, req, rep):
    payload = os.urandom(req) if req == rep else b"\xa5" * req
    t0 = time.perf_counter()
    sock.sendall(HEADER.pack(req, rep) + payload)
    back = recv_exact(sock, rep)
    elapsed = time.perf_counter() - t0
    if req == rep and back != payload:
        raise SystemExit(f"linkping: a ping of {req} bytes came back changed or out of order")
    return elapsed


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo", help="serve pings")
    e.add_argument("--listen", type=host_port, required=True)
    p = sub.add_parser("ping", help="measure round trips (and the rate with --bulk-kib)")
    p.add_argument("--connect", type=host_port, required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--size", type=int, default=64, help="bytes each way per ping")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--bulk-kib", type=int, default=0, help="also move this much up and down, timed")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--json", action="store_true")
    a = ap.parse_args()

    if a.cmd == "echo":
        with Server(a.listen, Echo) as srv:
            print(f"listening on {srv.server_address[0]}:{srv.server_address[1]}", flush=True)
            srv.serve_forever()
        return 0

    if a.count < 1 or a.size < 1:
        ap.error("--count and --size must be at least 1")
    with socket.create_connection(a.connect, timeout=a.timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(a.warmup):
            exchange(s, a.size, a.size)
        rtts = [1e3 * exchange(s, a.size, a.size) for _ in range(a.count)]
        out = {"count": a.count, "size": a.size,
               "rtt_ms": {"median": statistics.median(rtts), "mean": statistics.fmean(rtts), "min": min(rtts),
                          "p10": pct(rtts, 0.1), "p90": pct(rtts, 0.9), "max": max(rtts)}}
        if a.bulk_kib > 0:
            n = a.bulk_kib * 1024
            base = out["rtt_ms"]["min"] / 1e3  # take one round trip out of each transfer's time
            up = exchange(s, n, 1)
            down = exchange(s, 0, n)
            out["bulk_bytes"] = n
            out["up_s"], out["down_s"] = up, down
            out["up_mbit"] = 8 * n / max(up - base, 1e-9) / 1e6
            out["down_mbit"] = 8 * n / max(down - base, 1e-9) / 1e6
    if a.json:
        print(json.dumps(out))
    else:
        r = out["rtt_ms"]
        print(f"{a.count} pings of {a.size} B: rtt median {r['median']:.3f} ms (min {r['min']:.3f}, "
              f"p90 {r['p90']:.3f}, max {r['max']:.3f})")
        if "up_mbit" in out:
            print(f"bulk {out['bulk_bytes']} B: up {out['up_mbit']:.1f} Mbit/s, down {out['down_mbit']:.1f} Mbit/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
