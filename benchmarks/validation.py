"""What a validation pass costs, and how close the side-by-side evaluation is to reading the tail as one stream.

    .venv/bin/python benchmarks/validation.py [CHECKPOINT] [--corpus FILE]

Defaults: runs/shakespeare/last.npz and the tinyshakespeare data set (its last 10 %: 111,539 characters).
"""

import argparse
import time
from pathlib import Path

from charrnn.data.text import load_corpus
from charrnn.nn.language_model import evaluate
from charrnn.training.checkpoint import load_model

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", type=Path, default=REPO / "runs" / "shakespeare" / "last.npz")
    parser.add_argument("--corpus", default="data:tinyshakespeare", help="a text file, or a data set (data:NAME)")
    args = parser.parse_args()
    model, _, config, _, _ = load_model(args.checkpoint)
    val = load_corpus([args.corpus], config.encoding, config.val_frac).val
    print(f"{config.cell} {config.layers}x{config.hidden}, validation tail of {len(val):,} characters")
    print(f"{'how':<34}{'nats/char':>12}{'seconds':>9}")
    for streams, warmup, how in [(1, 0, "one stream (exact)"), (32, 256, "32 streams, 256 warm-up (default)")]:
        started = time.perf_counter()
        loss = evaluate(model, val, streams=streams, warmup=warmup)
        print(f"{how:<34}{loss:>12.6f}{time.perf_counter() - started:>9.2f}")


if __name__ == "__main__":
    main()
