"""Resident memory over many thousands of training steps (with evaluation, saving and sampling on their cadences):
it should rise once, while buffers are first allocated, and then stay flat.

    .venv/bin/python benchmarks/leak.py [--steps 20000] [--every 2000]
"""

import argparse
import tempfile
import time
from pathlib import Path

from charrnn.data.text import load_corpus
from charrnn.training.config import Config
from charrnn.training.run import RunFolder
from charrnn.training.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    """Current (not peak) resident set size, from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"layers": 1, "hidden": 64, "batch_size": 16, "seq_len": 32, "dropout": 0.1, "epochs": 1e6}
        cadence = {"eval_every": 500, "save_every": 1000, "sample_every": 1000}
        cfg = Config(corpus=[str(REPO / "data" / "pond.txt")], max_steps=args.steps, run_dir=tmp, **settings, **cadence)
        trainer = Trainer(cfg, load_corpus(cfg.corpus, cache_dir=Path(tmp)), RunFolder.of(cfg))
        started = time.perf_counter()
        print(f"{'step':>8}{'RSS MiB':>10}{'seconds':>9}")

        def report(event):
            if event.kind == "step" and (event.step == 1 or event.step % args.every == 0):
                print(f"{event.step:>8}{rss_mb():>10.1f}{time.perf_counter() - started:>9.0f}", flush=True)

        trainer.run(report)


if __name__ == "__main__":
    main()
