"""Training and sampling speed of the NumPy core on the issue's five configurations, side by side with PyTorch.

    .venv/bin/python benchmarks/speed.py            # charrnn alone: chars/s, GFLOP/s, split, sampling
    .venv/bin/python benchmarks/speed.py --torch    # and the ratio to PyTorch, via ../shared/bench/compare.py

`--torch` needs PyTorch in a separate virtual environment (.venv-torch, made by compare.py on first use with
`pip install torch==2.13.0`); PyTorch is never a dependency of charrnn.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPARE = REPO.parent / "shared" / "bench" / "compare.py"
PRESETS = {  # name: cell, layers, hidden, batch, seq, timed steps (as compare.py)
    "lstm-2x256": ("lstm", 2, 256, 32, 64, 120),
    "lstm-2x512": ("lstm", 2, 512, 50, 50, 30),
    "lstm-1x128": ("lstm", 1, 128, 32, 64, 600),
    "gru-2x256": ("gru", 2, 256, 32, 64, 80),
    "rnn-1x512": ("rnn", 1, 512, 32, 64, 250),
}


def bench(cell: str, layers: int, hidden: int, batch: int, seq: int, steps: int) -> dict:
    sizes = {"--cell": cell, "--layers": layers, "--hidden": hidden, "--batch-size": batch, "--seq-len": seq}
    command = [sys.executable, "-m", "charrnn", "bench", "--steps", str(steps), "--json"]
    command += [str(part) for item in sizes.items() for part in item]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=list(PRESETS), help=f"any of {', '.join(PRESETS)}")
    parser.add_argument("--torch", action="store_true", help="also run PyTorch alternately and print the ratios")
    args = parser.parse_args()
    if args.torch:
        sys.exit(subprocess.run([sys.executable, str(COMPARE), *args.presets], cwd=REPO).returncode)
    print(f"{'preset':<12}{'train c/s':>11}{'ms/step':>9}{'GFLOP/s':>9}{'fwd/bwd/upd %':>15}{'sample c/s':>12}")
    for name in args.presets:
        r = bench(*PRESETS[name])
        split = "/".join(f"{100 * r[k]:.0f}" for k in ("forward_frac", "backward_frac", "update_frac"))
        print(f"{name:<12}{r['train_chars_per_sec']:>11,.0f}{r['ms_per_step']:>9.1f}{r['gflops']:>9.1f}"
              f"{split:>15}{r['sample_chars_per_sec']:>12,.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
