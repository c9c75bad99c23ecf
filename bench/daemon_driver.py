#!/usr/bin/env python3
"""Load driver for bench/daemon.sh: talks to a running `skiff daemon` through its API socket
(HTTP/1.1 keep-alive over the Unix socket) and to its HTTP data plane, and prints one JSON
object of measurements. Standard library only.

  deploy  --n N --digest D          deploy N new apps one after another (each its own name and
                                    route); per app, the time from sending POST /v1/workloads to
                                    the first 200 from its route
  tasks   --n N --digest D -c C     N run-to-completion tasks from C client threads; a task
                                    counts when POST .../wait reports exit code 0
  density --n N --digest D -c C     deploy N apps (routes /dN), then time the first request of
          --sample K                /d0 (it loads the binary's code), then of K random other
                                    apps that were never requested
  load    --n N                     request /d0 … /d{N-1} once each (loads those apps)
"""
import argparse
import http.client
import json
import random
import socket
import statistics
import sys
import threading
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("skiff")
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock = s


class Api:
    """One keep-alive connection to the daemon's API."""

    def __init__(self, sock):
        self.conn = UnixHTTPConnection(sock)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        headers = {"content-type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {text.decode(errors='replace')}")
        return json.loads(text) if text else None


def get_status(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status


def summary(us):
    return {
        "n": len(us),
        "median_us": statistics.median(us),
        "min_us": min(us),
        "max_us": max(us),
    }


def deploy_app(api, digest, name, route):
    api.call("POST", "/v1/workloads",
             {"name": name, "spec": {"image": digest, "image_name": "http-hello.wasm", "route": route}})


def cmd_deploy(a):
    api = Api(a.sock)
    host, port = a.http.rsplit(":", 1)
    web = http.client.HTTPConnection(host, int(port))
    samples = []
    for i in range(a.n + 1):
        name = f"{a.prefix}{i}"
        t0 = time.perf_counter()
        deploy_app(api, a.digest, name, f"/{name}")
        while get_status(web, f"/{name}") != 200:
            pass
        us = (time.perf_counter() - t0) * 1e6
        if i > 0:  # the first deploy of the run is a warm-up
            samples.append(us)
    print(json.dumps(summary(samples)))


def cmd_tasks(a):
    counts = {"ok": 0, "failed": 0}
    latencies = []
    lock = threading.Lock()
    todo = iter(range(a.n))

    def worker():
        api = Api(a.sock)
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            t0 = time.perf_counter()
            w = api.call("POST", "/v1/workloads", {"spec": {"image": a.digest, "image_name": "hello.wasm"}})
            end = api.call("POST", f"/v1/workloads/{w['id']}/wait")
            us = (time.perf_counter() - t0) * 1e6
            with lock:
                counts["ok" if end["exit_code"] == 0 else "failed"] += 1
                latencies.append(us)

    threads = [threading.Thread(target=worker) for _ in range(a.c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    latencies.sort()
    print(json.dumps({
        "n": a.n, "concurrency": a.c, "ok": counts["ok"], "failed": counts["failed"],
        "seconds": secs, "per_sec": counts["ok"] / secs,
        "latency_median_us": statistics.median(latencies),
        "latency_p99_us": latencies[int(len(latencies) * 0.99) - 1 if len(latencies) > 1 else 0],
    }))


def cmd_density(a):
    todo = iter(range(a.n))
    lock = threading.Lock()

    def worker():
        api = Api(a.sock)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            deploy_app(api, a.digest, f"d{i}", f"/d{i}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deploy_secs = time.perf_counter() - t0
    host, port = a.http.rsplit(":", 1)
    web = http.client.HTTPConnection(host, int(port))
    # The first request of the first app loads the binary's code (from the compile cache):
    # timed apart. Every later app of the binary shares that code.
    t0 = time.perf_counter()
    if get_status(web, "/d0") != 200:
        sys.exit("/d0: not 200")
    first_binary_us = (time.perf_counter() - t0) * 1e6
    samples = []
    for i in random.Random(1).sample(range(1, a.n), min(a.sample, a.n - 1)):
        t0 = time.perf_counter()
        status = get_status(web, f"/d{i}")
        samples.append((time.perf_counter() - t0) * 1e6)
        if status != 200:
            sys.exit(f"/d{i}: {status}")
    out = summary(samples)
    out["apps"] = a.n
    out["deploy_seconds"] = deploy_secs
    out["first_app_of_the_binary_us"] = first_binary_us
    print(json.dumps(out))


def cmd_load(a):
    """Request /d0 … /d{n-1} once each: loads those apps."""
    host, port = a.http.rsplit(":", 1)
    web = http.client.HTTPConnection(host, int(port))
    for i in range(a.n):
        if get_status(web, f"/d{i}") != 200:
            sys.exit(f"/d{i}: not 200")
    print(json.dumps({"loaded": a.n}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["deploy", "tasks", "density", "load"])
    p.add_argument("--sock", required=True)
    p.add_argument("--http")
    p.add_argument("--digest")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("-c", type=int, default=1)
    p.add_argument("--prefix", default="app")
    p.add_argument("--sample", type=int, default=20)
    a = p.parse_args()
    {"deploy": cmd_deploy, "tasks": cmd_tasks, "density": cmd_density, "load": cmd_load}[a.what](a)


if __name__ == "__main__":
    main()
