"""Requests a second and latency percentiles of `charrnn serve` on loopback, for a 200-character sample and for
classifying one word, at 1, 8 and 32 concurrent clients. Bounded: each level sends --requests requests in all (and
gives up after --seconds); the server is started on a free 127.0.0.1 port and stopped at the end, whatever happens.

    .venv/bin/python benchmarks/serve.py --lm runs/shakespeare --classifier runs/wordlang
    .venv/bin/python benchmarks/serve.py --lm runs/pond --classifier runs/labels --requests 200 --workers 2

It needs `pip install -e '.[serve]'` and two trained runs (a language model and a classifier).
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def level(url: str, body: dict, clients: int, requests: int, seconds: float) -> dict:
    """`requests` POSTs of `body` from `clients` threads; the rate of answers and percentiles of their latency."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    left = [requests]
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            started = time.perf_counter()
            status = post(url, body)
            with lock:
                latencies.append(time.perf_counter() - started)
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ok = statuses.count(200)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "answered": len(statuses),
        "ok": ok,
        "busy": statuses.count(503),
        "rps": ok / elapsed,
        "p50_ms": 1000 * cuts[49],
        "p90_ms": 1000 * cuts[89],
        "p99_ms": 1000 * cuts[98],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm", required=True, help="a language model's run folder")
    parser.add_argument("--classifier", required=True, help="a classifier's run folder")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="requests per level")
    parser.add_argument("--seconds", type=float, default=60.0, help="a level gives up after this long")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers")
    parser.add_argument("--word", default="lebensmittel", help="what the classifier reads")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "charrnn", "serve", "--run-dir", args.lm, "--run-dir", args.classifier]
    command += ["--port", str(port), "--workers", str(args.workers), "--queue", "64"]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"serve.py: the server exited: {server.stderr.read()}")
                time.sleep(0.1)
        lm, classifier = Path(args.lm).name, Path(args.classifier).name
        cases = {
            "sample 200 chars": ("/v1/sample", {"model": lm, "length": 200, "temperature": 0.8}),
            "classify 1 word": ("/v1/classify", {"model": classifier, "inputs": [args.word]}),
        }
        print(f"charrnn serve --workers {args.workers}, {args.requests} requests per level, loopback")
        print(f"{'request':<18} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'503':>5}")
        for name, (path, body) in cases.items():
            post(url + path, body)  # one untimed request sizes the buffers
            for clients in args.clients:
                r = level(url + path, body, clients, args.requests, args.seconds)
                print(
                    f"{name:<18} {clients:>7} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p90_ms']:>8.1f} "
                    f"{r['p99_ms']:>8.1f} {r['busy']:>5}"
                )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
