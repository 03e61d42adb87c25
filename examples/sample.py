"""Sample text from a language model exported by `charrnn export`, with nothing but NumPy and ONNX Runtime.

    python examples/sample.py model.onnx --len 300 --prime "ROMEO:" --temperature 0.8 --seed 1

With the same seed and temperature it writes what `charrnn sample` writes: the draws are charrnn's, the Gumbel-max
trick with noise from NumPy's default generator drawn 1,024 steps at a time.
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort

BLOCK = 1024  # steps of noise drawn at a time, as charrnn draws them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file of a language model")
    parser.add_argument("--len", type=int, default=500, help="characters to draw after the prime")
    parser.add_argument("--prime", default="", help="text the model reads first (printed before the sample)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: always the likeliest character")
    parser.add_argument("--seed", type=int, default=None, help="the same seed gives the same text")
    args = parser.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("charrnn_task") != "lm":
        sys.exit(f"{args.model} is not a language model exported by charrnn (its task: {meta.get('charrnn_task')}).")
    vocab = json.loads(meta["vocabulary"])
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(args.prime) - set(index))
    if unknown:
        sys.exit(f"the prime has characters the model never saw: {', '.join(map(repr, unknown))}")
    layers, _, hidden = session.get_inputs()[1].shape
    states = {s.name: np.zeros((layers, 1, hidden), np.float32) for s in session.get_inputs()[1:]}

    def read(ids: list[int]) -> np.ndarray:
        """Feed characters; the logits after the last, and the states carried on."""
        outputs = session.run(None, {"ids": np.array([ids], np.int64), **states})
        states.update(zip(states, outputs[1:], strict=True))
        return outputs[0][0, -1]

    context = args.prime or ("\n" if "\n" in index else "")  # as after a line break, if the model knows one
    logits = read([index[c] for c in context]) if context else np.zeros(len(vocab), np.float32)
    rng, noise, row = np.random.default_rng(args.seed), None, BLOCK
    drawn = []
    for _ in range(args.len):
        if args.temperature == 0:
            i = int(np.argmax(logits))
        else:
            if row == BLOCK:
                noise, row = rng.gumbel(size=(BLOCK, 1, len(vocab))), 0
            i = int(np.argmax(logits.astype(np.float64) / args.temperature + noise[row, 0]))
            row += 1
        drawn.append(vocab[i])
        logits = read([i])
    text = args.prime + "".join(drawn)
    print(text, end="" if text.endswith("\n") else "\n")  # the line ends, as charrnn sample ends it


if __name__ == "__main__":
    main()
