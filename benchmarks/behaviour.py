"""Fingerprints of what charrnn computes, to show that a change of the code changed none of it.

For every task and cell (and the variants that take other code paths: embeddings, bidirectional layers, pooling,
every attention, input feeding, word targets, dropout, label smoothing, weight averaging) it trains a small model
for 50 steps from a fixed seed, then prints a digest of the exact per-step losses, of the validation figures, and of
what the trained model outputs (samples, scores, labels, tags, translations, evaluation). Run it before and after a
change: the lines must be identical.

    python benchmarks/behaviour.py                     # train, print the digests
    python benchmarks/behaviour.py --keep DIR          # also keep the checkpoints in DIR
    python benchmarks/behaviour.py --reload DIR        # digests of the outputs of checkpoints kept earlier

The data is made from data/pond.txt, so the script needs nothing but the repository.
"""

import argparse
import contextlib
import hashlib
import io
import json
import tempfile
from pathlib import Path

import charrnn

ROOT = Path(__file__).resolve().parent.parent
STEPS = 50

RUNS = {
    **{f"lm-{cell}": {"task": "lm", "cell": cell} for cell in ("rnn", "lstm", "gru")},
    "lm-lstm-embed-dropout": {
        "task": "lm",
        "cell": "lstm",
        "embed": 8,
        "dropout": 0.2,
        "input_dropout": 0.1,
        "output_dropout": True,
        "ema": 0.9,
    },
    **{f"classify-{cell}": {"task": "classify", "cell": cell} for cell in ("rnn", "lstm", "gru")},
    "classify-bi-mean": {"task": "classify", "bidirectional": True, "pool": "mean", "embed": 8},
    "classify-bi-max-smooth": {
        "task": "classify",
        "cell": "gru",
        "bidirectional": True,
        "pool": "max",
        "label_smoothing": 0.1,
        "dropout": 0.2,
        "output_dropout": True,
    },
    "classify-bi-last": {"task": "classify", "cell": "rnn", "bidirectional": True},
    **{f"tag-{cell}": {"task": "tag", "cell": cell} for cell in ("rnn", "lstm", "gru")},
    "tag-bi-embed": {"task": "tag", "bidirectional": True, "embed": 8, "input_dropout": 0.1},
    **{f"seq2seq-{cell}": {"task": "seq2seq", "cell": cell} for cell in ("rnn", "lstm", "gru")},
    **{f"seq2seq-{a}": {"task": "seq2seq", "attention": a} for a in ("none", "dot", "additive")},
    "seq2seq-feed-bi": {"task": "seq2seq", "bidirectional": True, "input_feeding": True, "embed": 8},
    "seq2seq-gru-feed-additive": {
        "task": "seq2seq",
        "cell": "gru",
        "attention": "additive",
        "input_feeding": True,
        "label_smoothing": 0.1,
        "dropout": 0.2,
    },
    "seq2seq-words": {"task": "seq2seq", "cell": "gru", "target_units": "words", "bidirectional": True},
}


def make_data(folder: Path) -> dict[str, Path]:
    """Example files drawn from the pond text: a word's first letter's class, a line's capitals, a word spelled."""
    text = (ROOT / "data" / "pond.txt").read_text(encoding="utf-8")
    words = sorted({w for w in text.lower().split() if w.isalpha() and 3 <= len(w) <= 10})[:600]
    lines = [line for line in text.splitlines() if 10 <= len(line) <= 60][:400]
    files = {
        "classify": [f"{w}\t{'vowel' if w[0] in 'aeiou' else 'early' if w[0] < 'n' else 'late'}" for w in words],
        "tag": [f"{line.lower()}\t{line}" for line in lines],
        "seq2seq": [f"{w}\t{w[::-1]}" for w in words],
        "words": [f"{w}\t{' '.join(w.upper())}" for w in words],
    }
    paths = {}
    for name, rows in files.items():
        paths[name] = folder / f"{name}.tsv"
        paths[name].write_text("\n".join(rows) + "\n", encoding="utf-8")
    paths["lm"] = ROOT / "data" / "pond.txt"
    return paths


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def evaluate(model: charrnn.Model, path: Path, **options: object) -> dict:
    """The model's figures on a file, without the file's (temporary) name."""
    return {k: v for k, v in model.evaluate(path, **options).items() if k != "file"}


def outputs(model: charrnn.Model, data: dict[str, Path], words: list[str]) -> object:
    """Everything the model's task can do, on fixed inputs."""
    task = model.config.task
    if task == "lm":
        return [
            model.sample(120, prime="The ", temperature=0.8, seed=3),
            model.sample(40, seed=4, top_k=5, num_samples=3),
            model.scores(["The pond was still. " * 5]),
            model.score_lines(["the pond", "THE POND"]),
            model.predict("the po", top_k=5),
        ]
    if task == "classify":
        return [model.classify(words, top_k=3), evaluate(model, data["classify"])]
    if task == "tag":
        return [model.tag(["the pond was still", "walden"]), evaluate(model, data["tag"])]
    file = data["words" if model.config.target_units == "words" else "seq2seq"]
    return [
        model.translate(words[:6]),
        model.translate(words[:6], beam=3, n_best=2),
        evaluate(model, file, beam=2),
        *([model.attention(words[0])[2].tolist()] if model.config.attention != "none" else []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the trained runs in this folder")
    parser.add_argument("--reload", type=Path, help="only print the output digests of runs kept with --keep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        words = ["pond", "walden", "morning", "still", "water", "ice"]
        if args.reload:
            for name in RUNS:
                model = charrnn.load(args.reload / name)
                print(f"{name:28} outputs {digest(outputs(model, data, words))}")
            return
        runs = args.keep or Path(tmp) / "runs"
        for name, settings in RUNS.items():
            task = settings["task"]
            file = data["words" if settings.get("target_units") == "words" else task]
            keys = {"hidden": 24, "layers": 2, "batch_size": 16, "dropout": 0.0} | (
                {"seq_len": 32} if task == "lm" else {}
            )
            keys |= {k: v for k, v in settings.items() if k != "task"}
            with contextlib.redirect_stderr(io.StringIO()):
                charrnn.train(
                    file,
                    task=task,
                    max_steps=STEPS,
                    eval_every=25,
                    save_every=0,
                    log_every=1,
                    seed=7,
                    lr=3e-3,
                    run_dir=str(runs / name),
                    overwrite=True,
                    **keys,
                )
            lines = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
            losses = [line["train_loss"] for line in lines]
            evals = [line for line in lines if line["val_loss"] is not None]
            for line in evals:
                for timing in ("chars_per_sec", "examples_per_sec", "elapsed"):
                    line.pop(timing, None)
            model = charrnn.load(runs / name)
            print(
                f"{name:28} losses {digest(losses)} ({losses[0]:.6f} .. {losses[-1]:.6f}) "
                f"val {digest(evals)} outputs {digest(outputs(model, data, words))}",
                flush=True,
            )
        fixture = charrnn.load(ROOT / "tests" / "fixtures" / "lm-v1.npz")
        print(f"{'fixture lm-v1.npz':28} outputs {digest(outputs(fixture, data, words))}")


if __name__ == "__main__":
    main()
