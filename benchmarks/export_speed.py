"""File sizes of exported models, and the one-thread speed of ONNX Runtime against charrnn itself, side by side:
sampling (characters a second, one stream), classification (words a second) and translation (words a second,
greedy and beam 5).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/export_speed.py --lm runs/shakespeare \\
        --classifier runs/wordlang --translator runs/g2p --words data:wordlang/val.tsv --sources data:g2p/val.tsv

ONNX Runtime runs the scripts of examples/ (sampling a character per call; translation a word at a time, as
examples/translate.py does); charrnn runs its own verbs (classification and translation in batches).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import charrnn
from charrnn.data.datasets import resolve
from charrnn.data.text import read_text, text_lines
from charrnn.interfaces import api

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import translate as onnx_translate


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rate(count: int, run) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def sampling(model: charrnn.Model, path: Path, chars: int) -> tuple[float, float]:
    ours = rate(chars, lambda: "".join(model.generate(chars, seed=0)))
    run = session(path)
    layers, _, hidden = run.get_inputs()[1].shape
    states = {s.name: np.zeros((layers, 1, hidden), np.float32) for s in run.get_inputs()[1:]}
    rng = np.random.default_rng(0)

    def draw() -> None:
        ids = np.zeros((1, 1), np.int64)
        for _ in range(chars):
            logits, *new = run.run(None, {"ids": ids, **states})
            states.update(zip(states, new, strict=True))
            ids[0, 0] = np.argmax(logits[0, -1] + rng.gumbel(size=logits.shape[-1]))

    return ours, rate(chars, draw)


def classifying(model: charrnn.Model, path: Path, words: list[str]) -> tuple[float, float]:
    ours = rate(len(words), lambda: model.classify(words))
    run = session(path)
    index = {c: i for i, c in enumerate(model.vocab.chars)}
    order = np.argsort([len(w) for w in words], kind="stable")

    def classify() -> None:
        for start in range(0, len(words), 256):  # batches of similar length, as charrnn reads them
            batch = [words[i] for i in order[start : start + 256]]
            lengths = np.array([len(w) for w in batch], np.int64)
            ids = np.zeros((len(batch), lengths.max()), np.int64)
            for row, w in enumerate(batch):
                ids[row, : len(w)] = [index[c] for c in w]
            run.run(None, {"ids": ids, "lengths": lengths})

    return ours, rate(len(words), classify)


def translating(model: charrnn.Model, path: Path, words: list[str], beam: int) -> tuple[float, float]:
    ours = rate(len(words), lambda: model.translate(words, beam=beam))
    theirs = onnx_translate.Model(str(path))
    theirs.encoder, theirs.decoder = session(path), session(path.with_name(f"{path.stem}.decoder.onnx"))  # one thread
    return ours, rate(len(words), lambda: [onnx_translate.translate(theirs, w, beam, 1.0) for w in words])


def inputs(reference: str, model: charrnn.Model, limit: int) -> list[str]:
    lines = [line.split("\t")[0] for line in text_lines(read_text(Path(reference))) if line.strip()]
    known = [w for w in dict.fromkeys(lines) if all(c in model.vocab.index for c in w)]
    return known[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", help="a language model's run folder")
    parser.add_argument("--classifier", help="a classifier's run folder")
    parser.add_argument("--translator", help="a seq2seq model's run folder")
    parser.add_argument("--words", help="a file whose lines (before a tab) the classifier reads")
    parser.add_argument("--sources", help="a file whose lines (before a tab) the translator reads")
    parser.add_argument("--chars", type=int, default=3000)
    parser.add_argument("--count", type=int, default=2000, help="words to classify; a tenth of it to translate")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in (("lm", args.lm), ("classifier", args.classifier), ("translator", args.translator)):
            if not folder:
                continue
            model = charrnn.load(folder)
            written = api.export(model, Path(tmp) / f"{name}.onnx")
            sizes = " + ".join(f"{p.stat().st_size / 1e6:.2f} MB" for p in written)
            print(f"{name}: {model!r}: {sizes} (checkpoint {model.path.stat().st_size / 1e6:.2f} MB)", flush=True)
            if name == "lm":
                rows.append(("sampling, chars/s", *sampling(model, written[0], args.chars)))
            elif name == "classifier":
                words = inputs(str(resolve(args.words)), model, args.count)
                rows.append((f"classification, words/s ({len(words)})", *classifying(model, written[0], words)))
            else:
                words = inputs(str(resolve(args.sources)), model, args.count // 10)
                for beam in (1, 5):
                    what = f"translation, beam {beam}, words/s ({len(words)})"
                    rows.append((what, *translating(model, written[0], words, beam)))
    print(f"{'':42} {'charrnn':>10} {'ONNX Runtime':>13} {'ratio':>7}")
    for what, ours, theirs in rows:
        print(f"{what:42} {ours:10,.0f} {theirs:13,.0f} {theirs / ours:7.2f}")


if __name__ == "__main__":
    main()
