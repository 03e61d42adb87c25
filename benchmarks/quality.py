"""Quality per CPU-minute, side by side: train charrnn and the PyTorch reference (benchmarks/torch_reference.py)
back to back on the same machine, with the same corpus, split, time (or step) budget and thread count, and print
what each reached.

    .venv/bin/python benchmarks/quality.py                                      # the default match-up, 10 minutes
    .venv/bin/python benchmarks/quality.py charrnn-warandpeace torch-gru-2x384-e64-wsd --corpus data:warandpeace
    .venv/bin/python benchmarks/quality.py charrnn-recipe torch-recipe --steps 1500 --seeds 1 2 3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py --threads 1

The corpus is a text file or a data set of `charrnn data` (default: data:tinyshakespeare). With --minutes, each run
trains for that long (evaluation time is not counted, on either side) and the table shows the validation loss at
2, 5 and 10 minutes (the last pass within that time), the best, the steps and the training characters a second.
With --steps, each run makes that many updates (a decaying schedule runs over them) and the table shows the
validation loss at the end: the same recipe in both systems should then give the same loss within seed noise, which
--seeds measures. A last table gives each candidate's best (the mean over the seeds), its spread over the seeds
and its difference from the best PyTorch candidate.

Both sides read the corpus with its line endings made LF (charrnn is given `--newline lf`), hold out the last 10 %
and score all of it from the zero state. PyTorch runs from .venv-torch/bin/python (or --torch-python), made with
`python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy`. charrnn's runs go to
runs/quality/ (kept, so `charrnn plot` can draw them, with what charrnn printed in train.log).

The first line names the BLAS kernels NumPy runs (with threadpoolctl installed). A machine that sets
OPENBLAS_CORETYPE makes NumPy's current OpenBLAS run slower kernels than it would pick itself; to measure what a
user's machine does, unset it and OPENBLAS_L2_SIZE for that command alone:
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python ...`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from charrnn.data.datasets import reference_name, resolve

REPO = Path(__file__).resolve().parent.parent
TORCH_REFERENCE = REPO / "benchmarks" / "torch_reference.py"


def charrnn(*flags: str) -> tuple[str, list[str]]:
    return "charrnn", list(flags)


def torch(cell: str, hidden: int, embed: int, dropout: float, *schedule: str) -> tuple[str, list[str]]:
    sizes = ["--cell", cell, "--layers", "2", "--hidden", str(hidden), "--embed", str(embed), "--dropout", str(dropout)]
    return "torch", [*sizes, *schedule]


# A GRU 2x384 recipe both sides can run: dropout 0.2, Adam 3e-3, 100 warm-up steps, cosine to 1e-4, clip 5.
WARM_COSINE = ["--lr", "0.003", "--warmup-steps", "100", "--min-lr", "0.0001"]
WSD = ["--lr", "0.002"]
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "charrnn-shakespeare": charrnn("--config", "configs/shakespeare.yaml"),
    "charrnn-warandpeace": charrnn("--config", "configs/warandpeace.yaml"),
    "charrnn-auto": charrnn("--size", "auto"),
    "charrnn-recipe": charrnn(
        "--cell", "gru", "--layers", "2", "--hidden", "384", "--dropout", "0.2", "--lr-schedule", "cosine", *WARM_COSINE
    ),
    "torch-recipe": torch("gru", 384, 0, 0.2, "--schedule", "cosine", *WARM_COSINE),
    "torch-lstm-2x384-e64-wsd": torch("lstm", 384, 64, 0.2, "--schedule", "wsd", *WSD),
    "torch-gru-2x384-e64-wsd": torch("gru", 384, 64, 0.0, "--schedule", "wsd", *WSD),
}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a trainer; what it printed, or exit with what it said if it failed."""
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"quality.py: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done


def run_charrnn(name: str, flags: list[str], args: argparse.Namespace, seed: int) -> dict:
    extra = re.sub(r"[^\w.]+", "_", args.charrnn_flags).strip("_")  # runs that differ in these get their own folder
    run_dir = REPO / "runs" / "quality" / f"{name}{extra and '-' + extra}-{args.corpus_name}-seed{seed}"
    budget = ["--max-time", f"{args.minutes * 60:.0f}s"] if args.minutes else ["--max-steps", str(args.steps)]
    every = args.eval_every or (100 if args.minutes else max(1, args.steps // 4))
    flags = [*flags, *args.charrnn_flags.split()]
    command = [
        sys.executable,
        "-m",
        "charrnn",
        "train",
        str(args.corpus),
        *flags,
        *budget,
        "--epochs",
        "1000",
        "--newline",
        "lf",
        "--seed",
        str(seed),
        "--eval-every",
        str(every),
        "--save-every",
        "0",
        "--run-dir",
        str(run_dir),
        "--overwrite",
    ]
    (run_dir / "train.log").write_text(run(command, args.env).stderr)  # what --size auto picked, and the log
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["elapsed"], r["step"], r["val_loss"]) for r in records if r["val_loss"] is not None]
    return {"steps": records[-1]["step"], "chars_per_sec": records[-1]["chars_per_sec"], "evals": evals}


def run_torch(name: str, flags: list[str], args: argparse.Namespace, seed: int) -> dict:
    if args.minutes:
        budget = ["--time-budget", str(args.minutes * 60)]
        budget += ["--eval-every", str(args.eval_seconds), "--eval-end"]
    else:
        budget = ["--steps", str(args.steps), "--eval-end"]
    command = [
        args.torch_python,
        str(TORCH_REFERENCE),
        "--corpus",
        str(args.corpus),
        *flags,
        *budget,
        "--threads",
        str(args.threads),
        "--seed",
        str(seed),
    ]
    out = run(command, args.env).stdout
    evals = [
        (float(t), int(s), float(v))
        for t, s, v in re.findall(r"EVAL \S+ train_time=([0-9.]+)s step=(\d+) .*?val_loss=([0-9.]+)", out)
    ]
    result = re.search(r"RESULT .* steps=(\d+) .* chars/s=([0-9.]+)", out)
    return {"steps": int(result.group(1)), "chars_per_sec": float(result.group(2)), "evals": evals}


def blas_kernels(env: dict[str, str]) -> str:
    """Which BLAS, and which of its kernels, NumPy runs in charrnn's processes (OpenBLAS picks them from the CPU,
    or from OPENBLAS_CORETYPE where that is set); it can change charrnn's speed by half."""
    probe = (
        "import numpy, threadpoolctl; print(*[f\"{i['internal_api']} {i['version']} {i['architecture']}\" "
        "for i in threadpoolctl.threadpool_info()])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    return done.stdout.strip() if done.returncode == 0 else "unknown (pip install threadpoolctl to see)"


def val_at(evals: list[tuple[float, int, float]], seconds: float) -> float | None:
    """The last validation loss measured within the first `seconds` of training."""
    within = [v for t, _, v in evals if t <= seconds + 1]
    return within[-1] if within else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ["charrnn-shakespeare", "torch-lstm-2x384-e64-wsd"]
    parser.add_argument("names", nargs="*", default=default, help=f"any of {', '.join(CANDIDATES)}")
    parser.add_argument("--corpus", default="data:tinyshakespeare", help="a text file, or a data set (data:NAME)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=10.0, help="training time per run")
    budget.add_argument("--steps", type=int, help="updates per run, instead of --minutes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--eval-every", type=int, help="charrnn: steps between validation passes")
    parser.add_argument("--eval-seconds", type=float, default=30.0, help="PyTorch: seconds between validation passes")
    parser.add_argument("--charrnn-flags", default="", help="more flags for every charrnn run, e.g. '--dropout 0.1'")
    parser.add_argument("--torch-python", default=str(REPO / ".venv-torch" / "bin" / "python"))
    args = parser.parse_args()
    if args.steps:
        args.minutes = 0.0
    args.corpus_name = reference_name(args.corpus)
    args.corpus = resolve(args.corpus)  # the PyTorch side reads the file itself
    unknown = [n for n in args.names if n not in CANDIDATES]
    if unknown:
        sys.exit(f"quality.py: unknown candidate {unknown[0]!r}; choose from {', '.join(CANDIDATES)}")
    threads = str(args.threads)
    args.env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    per_run = f"{args.minutes:g} minutes" if args.minutes else f"{args.steps} steps"
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(
        f"corpus {args.corpus_name}, {args.threads} thread(s), {per_run} per run; charrnn's BLAS: "
        f"{blas_kernels(args.env)} (OPENBLAS_CORETYPE {coretype})",
        flush=True,
    )
    marks = [m for m in (2, 5, 10, 20, 30, 60) if m <= args.minutes]
    columns = [f"val {m} min" for m in marks] if args.minutes else []
    print("| candidate | seed | steps | chars/s | " + " | ".join([*columns, "best"]) + " |")
    print("|---|---:|---:|---:|" + "---:|" * (len(columns) + 1), flush=True)
    bests: dict[str, list[float]] = {}
    for name in args.names:
        system, flags = CANDIDATES[name]
        for seed in args.seeds:
            result = (run_charrnn if system == "charrnn" else run_torch)(name, flags, args, seed)
            best = min(v for _, _, v in result["evals"])
            bests.setdefault(name, []).append(best)
            at = ["-" if v is None else f"{v:.4f}" for v in (val_at(result["evals"], 60 * m) for m in marks)]
            print(
                f"| {name} | {seed} | {result['steps']:,} | {result['chars_per_sec']:,.0f} | "
                + " | ".join([*at, f"{best:.4f}"])
                + " |",
                flush=True,
            )
    means = {name: statistics.mean(values) for name, values in bests.items()}
    torch_means = {name: m for name, m in means.items() if CANDIDATES[name][0] == "torch"}
    reference = min(torch_means, key=torch_means.get) if torch_means else None
    header = f"| candidate | best (mean over {len(args.seeds)} seed(s)) | spread over seeds |"
    print("\n" + header + (f" vs {reference} |" if reference else ""))
    print("|---|---:|---:|" + ("---:|" if reference else ""))
    for name, values in bests.items():
        diff = f" {means[name] - means[reference]:+.4f} |" if reference else ""
        print(f"| {name} | {means[name]:.4f} | {max(values) - min(values):.4f} |{diff}")


if __name__ == "__main__":
    main()
