"""Classify words (or lines) with a classifier exported by `charrnn export`, with nothing but NumPy and ONNX
Runtime: the likeliest label of each input and its probability, as `charrnn classify` gives them.

    python examples/classify.py wordlang.onnx lebensmittel bonjour
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file of a classifier")
    parser.add_argument("texts", nargs="+", help="inputs to classify")
    parser.add_argument("--top-k", type=int, default=1, help="how many of the likeliest labels to show")
    args = parser.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("charrnn_task") != "classify":
        sys.exit(f"{args.model} is not a classifier exported by charrnn (its task: {meta.get('charrnn_task')}).")
    index = {c: i for i, c in enumerate(json.loads(meta["vocabulary"]))}
    labels = json.loads(meta["labels"])
    unknown = sorted({c for text in args.texts for c in text} - set(index))
    if unknown:
        sys.exit(f"the inputs have characters the model never saw: {', '.join(map(repr, unknown))}")
    lengths = np.array([len(text) for text in args.texts], np.int64)
    ids = np.full((len(args.texts), lengths.max()), int(meta["padding_id"]), np.int64)  # a batch, padded
    for row, text in enumerate(args.texts):
        ids[row, : len(text)] = [index[c] for c in text]
    [probabilities] = session.run(None, {"ids": ids, "lengths": lengths})
    for text, p in zip(args.texts, probabilities, strict=True):
        best = np.argsort(-p, kind="stable")[: args.top_k]
        print(text, *(f"{labels[i]} {p[i]:.4f}" for i in best), sep="\t")


if __name__ == "__main__":
    main()
