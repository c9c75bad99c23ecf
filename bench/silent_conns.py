#!/usr/bin/env python3
"""Open N TCP connections to HOST:PORT and send nothing (or, with --partial, half a request
head on every other one) on them; print one JSON line when they are up, then hold them until stdin closes and
print how many the server had closed by then. Used by bench/silent-conns.sh."""
import argparse
import json
import selectors
import socket
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("addr", help="HOST:PORT")
p.add_argument("n", type=int)
p.add_argument("--partial", action="store_true",
               help="send half a request head on every other connection")
a = p.parse_args()
host, port = a.addr.rsplit(":", 1)
target = (host, int(port))

sel = selectors.DefaultSelector()
socks, failed = [], 0
t0 = time.monotonic()
for _ in range(a.n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(target)
    sel.register(s, selectors.EVENT_WRITE)
# Connections beyond the listen backlog wait for SYN retransmits: give them 30 s.
pending, connected = a.n, []
while pending and time.monotonic() - t0 < 30:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        sel.unregister(s)
        pending -= 1
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            if a.partial and len(connected) % 2:
                try:
                    s.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                except OSError:
                    pass
            connected.append(s)
        else:
            failed += 1
            s.close()
print(json.dumps({"connected": len(connected), "failed": failed, "pending": pending,
                  "secs": round(time.monotonic() - t0, 2)}), flush=True)

sys.stdin.read()  # hold them until told to stop


def closed_by_server(s):
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


print(json.dumps({"closed_by_server": sum(closed_by_server(s) for s in connected),
                  "held_secs": round(time.monotonic() - t0, 1)}), flush=True)
