"""Peak resident memory of `charrnn train` on a generated 200 MB corpus, against the budget corpus + 250 MB.

    .venv/bin/python benchmarks/memory.py            # 200 MB, 30 steps
    .venv/bin/python benchmarks/memory.py --mb 50    # a quicker look

The corpus is written by data/make_pond.py into a temporary folder; training runs under /usr/bin/time -v
(GNU time), which reports the peak resident set size. The ids are encoded in 2 MB pieces into a memory-mapped
file in the run directory, so neither the text nor 8-byte integers are ever held whole.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="corpus size in MB (10^6 characters)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "big.txt"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "data" / "make_pond.py"), "--size", str(args.mb * 10**6), "--out", str(corpus)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        made = time.perf_counter() - started
        size_mb = corpus.stat().st_size / 2**20
        command = [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "charrnn",
            "train",
            str(corpus),
            "--run-dir",
            str(Path(tmp) / "run"),
            "--max-steps",
            str(args.steps),
            "--val-frac",
            "0.0005",
            "--eval-every",
            "0",
        ]
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        took = time.perf_counter() - started
        if out.returncode != 0:
            sys.exit(f"memory.py: training failed:\n{out.stderr[-2000:]}")
        peak_mb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
        cache_mb = (Path(tmp) / "run" / "corpus.npy").stat().st_size / 2**20
    budget = size_mb + 250
    print(f"{'corpus':<28}{size_mb:10.0f} MiB  (generated in {made:.0f} s)")
    print(f"{'encoded ids (uint8 memmap)':<28}{cache_mb:10.0f} MiB")
    print(f"{'peak resident memory':<28}{peak_mb:10.0f} MiB  ({args.steps} steps, {took:.0f} s in all)")
    print(f"{'budget (corpus + 250 MiB)':<28}{budget:10.0f} MiB  -> {'within' if peak_mb < budget else 'OVER'}")


if __name__ == "__main__":
    main()
