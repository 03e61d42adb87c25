"""Tag lines with a tagger exported by `charrnn export` (e.g. a truecaser), with nothing but NumPy and ONNX Runtime:
one output character per input character, one line each, as `charrnn tag` prints them.

    python examples/tag.py truecase.onnx "to be or not to be" "romeo and juliet"
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file of a tagger")
    parser.add_argument("texts", nargs="+", help="inputs to tag")
    args = parser.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("charrnn_task") != "tag":
        sys.exit(f"{args.model} is not a tagger exported by charrnn (its task: {meta.get('charrnn_task')}).")
    index = {c: i for i, c in enumerate(json.loads(meta["vocabulary"]))}
    outputs = json.loads(meta["output_vocabulary"])
    unknown = sorted({c for text in args.texts for c in text} - set(index))
    if unknown:
        sys.exit(f"the inputs have characters the model never saw: {', '.join(map(repr, unknown))}")
    lengths = np.array([len(text) for text in args.texts], np.int64)
    ids = np.full((len(args.texts), lengths.max()), int(meta["padding_id"]), np.int64)
    for row, text in enumerate(args.texts):
        ids[row, : len(text)] = [index[c] for c in text]
    [probabilities] = session.run(None, {"ids": ids, "lengths": lengths})  # (batch, time, outputs)
    for row, n in enumerate(lengths):  # positions past an input's length are padding
        print("".join(outputs[i] for i in probabilities[row, :n].argmax(axis=1)))


if __name__ == "__main__":
    main()
