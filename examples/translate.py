"""Translate with an encoder-decoder exported by `charrnn export` (e.g. spelling to pronunciation), with nothing
but NumPy and ONNX Runtime: greedy decoding, or beam search as charrnn does it, one output per line, as
`charrnn translate` prints them.

    python examples/translate.py g2p.onnx phoneme translate --beam 5

The export wrote two files: NAME.onnx, the encoder, and NAME.decoder.onnx, one step of the decoder.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort


class Model:
    """The two sessions and what the metadata says."""

    def __init__(self, path: str) -> None:
        self.encoder = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.encoder.get_modelmeta().custom_metadata_map
        if meta.get("charrnn_task") != "seq2seq":
            sys.exit(f"{path} is not a seq2seq model exported by charrnn (its task: {meta.get('charrnn_task')}).")
        decoder = path.removesuffix(".onnx") + ".decoder.onnx"
        if not os.path.isfile(decoder):
            sys.exit(f"{decoder}, the decoder charrnn export writes beside {path}, is not there.")
        self.decoder = ort.InferenceSession(decoder, providers=["CPUExecutionProvider"])
        self.index = {c: i for i, c in enumerate(json.loads(meta["vocabulary"]))}
        self.outputs = json.loads(meta["output_vocabulary"])  # output 0 is EOS, which ends an output and starts one
        self.joiner = " " if meta["target_units"] == "words" else ""
        self.wants = [i.name for i in self.decoder.get_inputs()]
        self.gives = [o.name for o in self.decoder.get_outputs()]

    def encode(self, text: str) -> dict[str, np.ndarray]:
        ids = np.array([[self.index[c] for c in text]], np.int64)
        names = [o.name for o in self.encoder.get_outputs()]
        return dict(zip(names, self.encoder.run(None, {"ids": ids, "lengths": np.array([len(text)])}), strict=True))

    def step(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.gives, self.decoder.run(None, {k: feeds[k] for k in self.wants}), strict=True))


def search(model: Model, encoded: dict, limit: int, beam: int, wanted: int, length_penalty: float) -> list[tuple]:
    """Up to `wanted` finished outputs (tokens, log-probability, score): charrnn's beam search (greedy with beam 1).
    Each step keeps the `beam` likeliest unfinished outputs; one that ends with EOS (or at `limit`) is set aside."""
    rows = np.zeros(beam, np.int64)  # every row reads the one source
    feeds = {name: value[rows] for name, value in encoded.items() if name not in ("h", "c")}
    feeds |= {name: value[:, rows] for name, value in encoded.items() if name in ("h", "c")}
    feeds["feed"] = np.zeros((beam, feeds["h"].shape[2]), np.float32)
    feeds["ids"] = np.zeros(beam, np.int64)  # EOS starts the decoder
    scores = np.full(beam, -np.inf)
    scores[0] = 0.0
    history: list[list[int]] = [[] for _ in range(beam)]
    finished: list[tuple] = []
    for t in range(limit):
        out = model.step(feeds)
        total = (scores[:, None] + out["log_probs"]).reshape(-1)
        size = out["log_probs"].shape[1]
        picks, kept = [], 0
        for rank, c in enumerate(np.argsort(-total, kind="stable")[: 2 * beam]):
            if not np.isfinite(total[c]):
                break
            k, token = divmod(int(c), size)
            if token == 0 or t + 1 >= limit:  # ends here; only the `beam` best of all may end
                if rank < beam:
                    tokens = history[k] + ([] if token == 0 else [token])
                    finished.append((tokens, float(total[c]), float(total[c]) / (t + 1) ** length_penalty))
            elif kept < beam:
                picks.append((k, token, total[c]))
                kept += 1
        if kept == 0 or len(finished) >= wanted:
            break
        picks += [(0, 0, -np.inf)] * (beam - kept)
        source = np.array([k for k, _, _ in picks])
        for part in ("h", "c"):
            if part in feeds:
                feeds[part] = out[f"{part}_out"][:, source]
        if "feed_out" in out:
            feeds["feed"] = out["feed_out"][source]
        history = [history[k] + [token] for k, token, _ in picks]
        scores = np.array([score for _, _, score in picks])
        feeds["ids"] = np.array([token for _, token, _ in picks], np.int64)
    return finished


def translate(model: Model, text: str, beam: int, length_penalty: float) -> str:
    encoded = model.encode(text)
    limit = 2 * len(text) + 10  # the longest output charrnn writes, EOS included
    greedy = search(model, encoded, limit, 1, 1, length_penalty)
    candidates = greedy if beam == 1 else search(model, encoded, limit, beam, beam, length_penalty)
    if beam > 1 and all(tokens != greedy[0][0] for tokens, _, _ in candidates):
        candidates = [*candidates, greedy[0]]  # a wider beam never returns worse than greedy
    tokens = sorted(candidates, key=lambda c: -c[2])[0][0]
    return model.joiner.join(model.outputs[i] for i in tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the encoder's .onnx file (NAME.decoder.onnx beside it)")
    parser.add_argument("texts", nargs="+", help="inputs to translate")
    parser.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="rank by log-probability / length ** this")
    args = parser.parse_args()
    model = Model(args.model)
    unknown = sorted({c for text in args.texts for c in text} - set(model.index))
    if unknown:
        sys.exit(f"the inputs have characters the model never saw: {', '.join(map(repr, unknown))}")
    for text in args.texts:
        print(translate(model, text, args.beam, args.length_penalty))


if __name__ == "__main__":
    main()
