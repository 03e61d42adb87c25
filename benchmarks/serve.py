"""Sampling throughput of `charrnn serve` under concurrent clients (issue 45): requests a second, characters a second
and p50/p90/p99 latency of 200-character samples at 1, 8, 32 and 64 clients, and how the rate and the p50 at 32
and 64 clients compare with one client's. Concurrent samples of a model are drawn as one batch, so the rate should
grow with the clients while the latency grows much less.

    .venv/bin/python benchmarks/serve.py --lm runs/shakespeare
    .venv/bin/python benchmarks/serve.py --make-lstm /tmp/bench-lstm --route sample --threads 1
    .venv/bin/python benchmarks/serve.py --make-lstm /tmp/bench-384 --hidden 384 --embed 64   # shakespeare's sizes

--make-lstm FOLDER first trains a throwaway LSTM 2x256 (3 steps: its speed depends on its sizes alone). The clients
run on the same machine as the server, so on a small one they take some of its cores. The server
is started as a user runs it, on a free 127.0.0.1 port, and stopped at the end whatever happens. Each level stops
after --requests requests or --seconds seconds. Every answer is checked (status 200, text of the asked length).
It needs `pip install -e '.[serve]'`.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
TARGETED = (32, 64)  # client counts whose rate should be >= 8x one client's, and whose p50 <= 5x one client's
WARMUP = 4  # untimed requests before a model's first level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    """The CPU's model name, family and model numbers, and the number of cores."""
    fields: dict[str, str] = {}
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "unknown CPU")
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}), {os.cpu_count()} cores"


def make_lstm(folder: Path, hidden: int, embed: int) -> None:
    """Train a throwaway LSTM 2 x `hidden` (with an `embed`-wide embedding) into `folder` unless it has a checkpoint
    already."""
    if (folder / "last.npz").exists():
        return
    print(f"training a throwaway LSTM 2x{hidden} (embed {embed}) into {folder}", flush=True)
    command = [sys.executable, "-m", "charrnn", "train", "data/pond.txt", "--layers", "2", "--hidden", str(hidden)]
    command += ["--embed", str(embed), "--max-steps", "3", "--eval-every", "3", "--run-dir", str(folder)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"serve.py: training failed:\n{done.stdout}{done.stderr}")


CONNECTIONS = threading.local()  # each client thread keeps its connection open, as HTTP clients do


def ask(url: str, route: str, model: str, length: int, seed: int) -> str | None:
    """One sample of `length` characters; None when the answer is right, else what was wrong with it."""
    if route == "completions":
        body = {"model": model, "prompt": "", "max_tokens": length, "seed": seed}
    else:
        body = {"model": model, "length": length, "seed": seed}
    if getattr(CONNECTIONS, "url", None) != url:
        CONNECTIONS.url, CONNECTIONS.connection = (
            url,
            http.client.HTTPConnection(url.removeprefix("http://"), timeout=120),
        )
    connection = CONNECTIONS.connection
    try:
        connection.request("POST", f"/v1/{route}", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as e:
        connection.close()
        return f"{type(e).__name__}: {e}"
    if response.status != 200:
        return f"HTTP {response.status}: {raw[:200].decode(errors='replace')}"
    try:
        answer = json.loads(raw)
    except ValueError as e:
        return f"{type(e).__name__}: {e}"
    try:
        if route == "completions":
            text, finish = answer["choices"][0]["text"], answer["choices"][0]["finish_reason"]
        else:
            text, finish = answer["text"], "length"
    except (KeyError, IndexError, TypeError):
        return f"an answer without its text: {json.dumps(answer)[:200]}"
    if finish != "length":
        return f"finish_reason {finish!r}, not 'length'"
    return None if len(text) == length else f"{len(text)} characters, not {length}"


def level(url: str, route: str, model: str, length: int, clients: int, requests: int, seconds: float) -> dict:
    """Up to `requests` samples from `clients` threads, none started after `seconds`: the rates and the
    percentiles of the right answers' latencies, and the failures by message."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    seeds = iter(range(requests))
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                seed = next(seeds, None)
            if seed is None:
                return
            started = time.perf_counter()
            failure = ask(url, route, model, length, seed)
            took = time.perf_counter() - started
            with lock:
                if failure is None:
                    latencies.append(took)
                else:
                    failures[failure] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]  # Ctrl-C stops them
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    p50, p90, p99 = (1000 * cuts[i] for i in (49, 89, 98)) if cuts else (float("nan"),) * 3
    rps = len(latencies) / elapsed
    done = len(latencies) + failures.total()
    return {"done": done, "failures": failures, "rps": rps, "cps": rps * length, "p50": p50, "p90": p90, "p99": p99}


def start_server(command: list[str], env: dict[str, str], url: str, stderr: IO[bytes]) -> subprocess.Popen:
    """Start the server and wait until GET /health answers; its stderr is shown if it exits first."""
    server = subprocess.Popen(command, env=env, stderr=stderr)
    for _ in range(1200):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                stderr.seek(0)
                sys.exit(f"serve.py: the server exited with code {server.returncode}:\n{stderr.read().decode()}")
            time.sleep(0.1)
    stderr.seek(0)
    server.kill()
    sys.exit(f"serve.py: the server did not answer /health in 120 s:\n{stderr.read().decode()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm", type=Path, action="append", default=[], help="a language model's run folder")
    parser.add_argument("--make-lstm", type=Path, metavar="FOLDER", help="train a throwaway LSTM 2xH there, serve it")
    parser.add_argument("--hidden", type=int, default=256, help="--make-lstm's H (384: the README's shakespeare)")
    parser.add_argument("--embed", type=int, default=0, help="--make-lstm's embedding (64: the README's shakespeare)")
    parser.add_argument("--route", choices=["completions", "sample"], default="completions")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--length", type=int, default=200, help="characters a sample draws")
    parser.add_argument("--requests", type=int, help="requests per level [default: 4 x clients, at least 40]")
    parser.add_argument("--seconds", type=float, default=60.0, help="no request is started later in a level")
    parser.add_argument("--workers", type=int, help="the server's --workers")
    parser.add_argument("--queue", type=int, help="the server's --queue")
    parser.add_argument("--threads", type=int, help="OPENBLAS_NUM_THREADS for the server [default: as it is]")
    args = parser.parse_args()
    if not args.lm and not args.make_lstm:
        parser.error("give --lm RUN_DIR or --make-lstm FOLDER")
    if args.make_lstm:
        make_lstm(args.make_lstm.resolve(), args.hidden, args.embed)
    runs = [path.resolve() for path in [*args.lm, *([args.make_lstm] if args.make_lstm else [])]]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "charrnn", "serve", *(f"--run-dir={run}" for run in runs)]
    command += ["--port", str(port), "--quiet"]
    command += [f"--{flag}={value}" for flag in ("workers", "queue") if (value := getattr(args, flag)) is not None]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    print(f"machine: {machine()}; OPENBLAS_NUM_THREADS={env.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"server: charrnn {' '.join(command[3:])}; POST /v1/{args.route}, {args.length} characters a sample")
    with tempfile.TemporaryFile() as stderr:
        server = start_server(command, env, url, stderr)
        try:
            for run in runs:
                measure(url, args, run.name)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def measure(url: str, args: argparse.Namespace, model: str) -> None:
    """Every level for one model, then each level's rate and p50 against one client's."""
    print(f"\nmodel {model}")
    level(url, args.route, model, args.length, 1, WARMUP, args.seconds)
    heads = ("done", "failed", "req/s", "chars/s", "p50 ms", "p90 ms", "p99 ms")
    print(f"{'clients':>7}" + "".join(f"{head:>9}" for head in heads))
    results = {}
    for clients in args.clients:
        requests = args.requests or max(40, 4 * clients)
        r = results[clients] = level(url, args.route, model, args.length, clients, requests, args.seconds)
        print(
            f"{clients:>7}{r['done']:>9}{r['failures'].total():>9}{r['rps']:>9.1f}{r['cps']:>9.0f}"
            f"{r['p50']:>9.1f}{r['p90']:>9.1f}{r['p99']:>9.1f}",
            flush=True,
        )
        for failure, count in r["failures"].items():
            print(f"        {count} x {failure}")
    if 1 not in results or not results[1]["rps"]:
        return
    for clients, r in results.items():
        if clients == 1:
            continue
        rate, slower = r["rps"] / results[1]["rps"], r["p50"] / results[1]["p50"]
        targeted = clients in TARGETED
        print(f"requests/s at {clients} clients: {rate:.1f}x the 1-client rate" + " (target >= 8x)" * targeted)
        print(f"p50 at {clients} clients: {slower:.1f}x the 1-client p50" + " (target <= 5x)" * targeted)


if __name__ == "__main__":
    main()
