"""Does the suite catch what it claims? Plants small named bugs (mutants), one at a time, in a copy of the project
and runs the tests most likely to catch each (`-x`, first failure stops it): a mutant the tests catch is "caught",
one they pass with is "SURVIVED" (a promise no test holds). It is a tool you run, not part of CI: each mutant costs
one test run (seconds to a minute on 2 cores).

    .venv/bin/python benchmarks/mutants.py               # every mutant
    .venv/bin/python benchmarks/mutants.py adam clip     # those whose name contains one of the words
    .venv/bin/python benchmarks/mutants.py --list

A mutant is a literal edit (the text to replace must occur exactly once, so a change of the code that moves it
shows up as "stale", not as a silent pass). The project's own copy is never touched.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # in the package
    old: str
    new: str
    tests: tuple[str, ...]  # the test files most likely to catch it, run in this order


MUTANTS = [
    # nn: the numerics
    Mutant(
        "lstm-cell-forgets-input",
        "charrnn/nn/cells.py",
        "        c += ig\n        np.tanh(c, out=tanh_c)",
        "        np.tanh(c, out=tanh_c)",
        ("tests/test_model.py",),
    ),
    Mutant(
        "adam-no-first-moment-decay",
        "charrnn/nn/optim.py",
        "        m *= b1\n",
        "",
        ("tests/test_optim.py",),
    ),
    Mutant(
        "adam-no-bias-correction",
        "charrnn/nn/optim.py",
        "        tmp *= self.lr * root_bias2 / (1.0 - b1**self.steps)",
        "        tmp *= self.lr",
        ("tests/test_optim.py",),
    ),
    Mutant(
        "clip-norm-ignored",
        "charrnn/nn/optim.py",
        "    if max_norm > 0 and norm > max_norm:",
        "    if False:",
        ("tests/test_optim.py", "tests/test_promises.py"),
    ),
    Mutant(
        "clip-value-ignored",
        "charrnn/nn/optim.py",
        "        np.clip(grads, -max_value, max_value, out=grads)",
        "        pass",
        ("tests/test_optim.py", "tests/test_promises.py"),
    ),
    Mutant(
        "label-smoothing-loss-ignored",
        "charrnn/nn/functional.py",
        "        losses += smoothing * gap",
        "        pass",
        ("tests/test_supervised.py", "tests/test_tasks.py"),
    ),
    Mutant(
        "dropout-not-scaled",
        "charrnn/nn/functional.py",
        "dtype.type(1.0 / (1.0 - p))",
        "dtype.type(1.0)",
        ("tests/test_model.py", "tests/test_resume.py"),
    ),
    Mutant(
        "cosine-schedule-upside-down",
        "charrnn/nn/optim.py",
        "(1.0 + math.cos(math.pi * progress))",
        "(1.0 - math.cos(math.pi * progress))",
        ("tests/test_resume.py",),
    ),
    Mutant(
        "warmup-off-by-one",
        "charrnn/nn/optim.py",
        "        return lr * (step + 1) / warmup_steps",
        "        return lr * step / warmup_steps",
        ("tests/test_resume.py",),
    ),
    Mutant(
        "beam-length-penalty-ignored",
        "charrnn/nn/seq2seq.py",
        "score = float(value) / (t + 1) ** length_penalty",
        "score = float(value)",
        ("tests/test_promises.py", "tests/test_seq2seq.py"),
    ),
    # training
    Mutant(
        "best-checkpoint-on-worse-loss",
        "charrnn/training/trainer.py",
        "val < self.best_val)",
        "val > self.best_val)",
        ("tests/test_resume.py", "tests/test_train.py"),
    ),
    Mutant(
        "save-truncates-the-old-checkpoint-first",
        "charrnn/training/checkpoint.py",
        '        with os.fdopen(fd, "wb") as f:\n'
        "            np.savez(f, meta=blob, **arrays)\n"
        "            f.flush()\n"
        "            os.fsync(f.fileno())\n"
        "        os.replace(tmp, path)\n",
        "        os.close(fd)\n"
        "        Path(tmp).unlink()\n"
        '        with open(path, "wb") as f:\n'
        "            np.savez(f, meta=blob, **arrays)\n"
        "            f.flush()\n"
        "            os.fsync(f.fileno())\n",
        ("tests/test_checkpoint.py", "tests/test_promises.py", "tests/test_faults.py"),
    ),
    Mutant(
        "trainer-passes-no-clip",
        "charrnn/training/trainer.py",
        "clip_gradients(self.network.flat_grads, cfg.clip, cfg.clip_value)",
        "clip_gradients(self.network.flat_grads, 0.0, 0.0)",
        ("tests/test_promises.py", "tests/test_train.py"),
    ),
    Mutant(
        "patience-never-stops",
        "charrnn/training/trainer.py",
        "                    if cfg.patience and self.evals_since_best >= cfg.patience:",
        "                    if False:",
        ("tests/test_resume.py", "tests/test_run_length.py"),
    ),
    # tasks
    Mutant(
        "classify-least-likely-first",
        "charrnn/tasks/classify.py",
        'np.argsort(-p, kind="stable")[:top_k]',
        'np.argsort(p, kind="stable")[:top_k]',
        ("tests/test_tasks.py", "tests/test_use.py"),
    ),
    Mutant(
        "unseen-characters-pass-silently",
        "charrnn/data/examples.py",
        '    if unseen and unknown == "error":',
        "    if False:",
        ("tests/test_first_contact_use.py", "tests/test_use.py"),
    ),
    # data
    Mutant(
        "built-data-checksum-not-checked",
        "charrnn/data/datasets.py",
        "        if pinned is not None and pinned != digests:",
        "        if False:",
        ("tests/test_datasets.py", "tests/test_promises.py"),
    ),
    Mutant(
        "download-checksum-not-checked",
        "charrnn/data/datasets.py",
        "        if digest.hexdigest() != expected:",
        "        if False:",
        ("tests/test_datasets.py",),
    ),
    Mutant(
        "vocab-accepts-unsorted",
        "charrnn/data/text.py",
        "np.any(np.diff(self.codes.astype(np.int64)) <= 0)",
        "False",
        ("tests/test_data.py", "tests/test_model.py"),
    ),
    # sampling and serving
    Mutant(
        "top-k-keeps-one-more",
        "charrnn/tasks/sampling.py",
        "        keep[cut] = rows >= kth[:, None]",
        "        keep[cut] = rows >= kth[:, None] - 1",
        ("tests/test_sample.py",),
    ),
    Mutant(
        "batch-stop-string-on-last-character-missed",
        "charrnn/tasks/batching.py",
        "            if row.stop and self._wrote_stop(row):  # also on its last character",
        "            if row.stop and not ended[r] and self._wrote_stop(row):",
        ("tests/test_batching.py", "tests/test_serve_openai.py"),
    ),
    Mutant(
        "batch-cancel-ignored",
        "charrnn/tasks/batching.py",
        '            if row.cancelled:\n                row.finish_reason = "cancelled"',
        '            if False:\n                row.finish_reason = "cancelled"',
        ("tests/test_batching.py", "tests/test_serve_openai.py"),
    ),
    Mutant(
        "serve-unknown-keys-allowed",
        "charrnn/interfaces/serve/schemas.py",
        'class Strict(BaseModel):\n    model_config = ConfigDict(extra="forbid", strict=True)',
        'class Strict(BaseModel):\n    model_config = ConfigDict(extra="ignore", strict=True)',
        ("tests/test_serve_openai.py", "tests/test_serve.py"),
    ),
    Mutant(
        "serve-token-not-checked",
        "charrnn/interfaces/serve/operations.py",
        "        return hmac.compare_digest(value, self.token)",
        "        return True",
        ("tests/test_serve_openai.py", "tests/test_serve.py"),
    ),
    Mutant(
        "serve-queue-never-full",
        "charrnn/interfaces/serve/app.py",
        "        if self.admitted >= self.limits.workers + self.limits.queue:",
        "        if False:",
        ("tests/test_serve_openai.py", "tests/test_serve.py"),
    ),
]

IGNORED = shutil.ignore_patterns(".venv", ".git", "runs", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info")


def run(mutant: Mutant, copy: Path, seconds: float) -> tuple[str, float]:
    """Plant the mutant in the copy, run its tests, take it out: "caught", "SURVIVED", "stale" or "timeout"."""
    target = copy / mutant.path
    original = target.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        return "stale", 0.0
    target.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    tests = [t for t in mutant.tests if (copy / t).exists()]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env={**os.environ, "PYTHONPATH": str(copy)},
            capture_output=True,
            timeout=seconds,
        )
        verdict = "caught" if done.returncode != 0 else "SURVIVED"
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        target.write_text(original, encoding="utf-8")
    return verdict, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="*", help="run only the mutants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--seconds", type=float, default=600, help="give up on a mutant's tests after this long")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.words or any(w in m.name for w in args.words)]
    if args.list:
        for m in chosen:
            print(f"{m.name:45} {m.path}")
        return
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "charrnn"
        shutil.copytree(REPO, copy, ignore=IGNORED)
        counts: dict[str, int] = {}
        for mutant in chosen:
            verdict, seconds = run(mutant, copy, args.seconds)
            counts[verdict] = counts.get(verdict, 0) + 1
            print(f"{verdict:9} {mutant.name:45} {seconds:6.1f} s  ({', '.join(mutant.tests)})", flush=True)
    print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()), f"of {len(chosen)} mutants")


if __name__ == "__main__":
    main()
