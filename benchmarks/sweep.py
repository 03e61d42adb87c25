"""Which model and schedule give the best text per CPU-minute: train candidates for a fixed time budget on one
corpus and print, for each, the steps reached and the validation loss at 2, 5 and 10 minutes of training.

    .venv/bin/python benchmarks/sweep.py                       # every candidate below, 10 minutes each
    .venv/bin/python benchmarks/sweep.py gru-2x384 --minutes 2  # some of them, shorter
    .venv/bin/python benchmarks/sweep.py defaults-0.1 lstm-2x256 lstm-2x256-d0.1 --epochs 10  # a step budget

With --epochs, each candidate trains for that many passes (a cosine then runs over those steps, as it does for
a plain `charrnn train`, whose defaults were chosen that way) instead of for --minutes.

Runs go to runs/sweep/NAME/ (kept, so `charrnn plot runs/sweep/*` compares them). Evaluation time is not counted
in the budget, as in the PyTorch reference. The table is printed in Markdown; benchmarks/sweep.md holds the one
this project's defaults were chosen from.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = "data:tinyshakespeare"  # charrnn data get tinyshakespeare
SCHEDULE = ["--lr", "0.003", "--lr-schedule", "cosine", "--warmup-steps", "100", "--min-lr", "0.0001"]
WSD = ["--lr-schedule", "wsd", "--decay-frac", "0.2", "--min-lr", "0"]
LSTM_2X256 = ["--cell", "lstm", "--layers", "2", "--hidden", "256", "--forget-bias", "0"]
CANDIDATES = {
    "defaults-0.1": ["--forget-bias", "1", "--lr", "0.004", "--lr-schedule", "constant"],  # old defaults
    "lstm-1x128": ["--cell", "lstm", "--layers", "1", "--hidden", "128", "--forget-bias", "0", *SCHEDULE],
    "lstm-2x256": [*LSTM_2X256, *SCHEDULE],
    "lstm-2x256-d0.1": [*LSTM_2X256, "--dropout", "0.1", *SCHEDULE],
    "lstm-2x256-d0.1-nowarm": [
        *LSTM_2X256,
        "--dropout",
        "0.1",
        "--lr",
        "0.003",
        "--lr-schedule",
        "cosine",
        "--min-lr",
        "0",
    ],
    "lstm-2x256-d0.1-wsd": [*LSTM_2X256, "--dropout", "0.1", "--lr", "0.003", *WSD],
    "lstm-2x256-d0.1-wsd-lr4": [*LSTM_2X256, "--dropout", "0.1", "--lr", "0.004", *WSD],  # today's defaults
    "lstm-2x256-fb1": ["--cell", "lstm", "--layers", "2", "--hidden", "256", "--forget-bias", "1", *SCHEDULE],
    "lstm-2x384": [
        "--cell",
        "lstm",
        "--layers",
        "2",
        "--hidden",
        "384",
        "--forget-bias",
        "0",
        "--dropout",
        "0.2",
        *SCHEDULE,
    ],
    "gru-2x384": ["--cell", "gru", "--layers", "2", "--hidden", "384", "--dropout", "0.2", *SCHEDULE],
    "gru-2x512": ["--cell", "gru", "--layers", "2", "--hidden", "512", "--dropout", "0.25", *SCHEDULE],
}


def val_at(records: list[dict], seconds: float) -> float | None:
    """The last validation loss measured within the first `seconds` of training."""
    vals = [r["val_loss"] for r in records if r["val_loss"] is not None and r["elapsed"] <= seconds + 1]
    return vals[-1] if vals else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(CANDIDATES), help=f"any of {', '.join(CANDIDATES)}")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--epochs", type=float, help="train for this many epochs instead of --minutes")
    parser.add_argument("--corpus", default=CORPUS, help="a text file, or a data set (data:NAME)")
    parser.add_argument("--eval-every", type=int, default=150)
    args = parser.parse_args()
    print("| config | flags | steps | minutes | val 2 min | val 5 min | val at end | best |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.names:
        run_dir = REPO / "runs" / "sweep" / name
        budget = (
            ["--epochs", str(args.epochs)]
            if args.epochs
            else ["--max-time", f"{args.minutes * 60:.0f}s", "--epochs", "1000"]
        )
        command = [
            sys.executable,
            "-m",
            "charrnn",
            "train",
            str(args.corpus),
            *CANDIDATES[name],
            *budget,
            "--eval-every",
            str(args.eval_every),
            "--save-every",
            "0",
            "--run-dir",
            str(run_dir),
            "--overwrite",
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        vals = [r["val_loss"] for r in records if r["val_loss"] is not None]

        def cell(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        args_given = CANDIDATES[name]
        flags = " ".join(args_given[: -len(SCHEDULE)] if args_given[-len(SCHEDULE) :] == SCHEDULE else args_given)
        steps, minutes = records[-1]["step"], records[-1]["elapsed"] / 60
        print(
            f"| {name} | `{flags}` | {steps:,} | {minutes:.1f} | {cell(val_at(records, 120))} | "
            f"{cell(val_at(records, 300))} | {cell(vals[-1])} | {cell(min(vals))} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
