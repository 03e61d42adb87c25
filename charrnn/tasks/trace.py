"""What a trained network computes inside, character by character, and which cells follow simple features of the
text: the activations `charrnn viz` shows, and the ranking of cells against detectors (inside quotes, bracket depth,
position in the line, ...) by correlation, as Karpathy, Johnson & Fei-Fei (2015, "Visualizing and Understanding
Recurrent Networks") did by eye."""

from dataclasses import dataclass, field

import numpy as np

from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.example_network import ExampleNetwork
from charrnn.nn.functional import log_softmax
from charrnn.nn.language_model import LanguageModelNetwork

MAX_LEN = 20_000  # characters a page may hold: the embedded data grows with it (docs/viz.md: page sizes)
STATES = ("h", "c")  # what the detectors rank; the gates are shown for the cells they rank highest


@dataclass
class Trace:
    """A model run over a text: per position, each layer's activations by kind, and what the model expected."""

    text: str
    activations: dict[str, dict[str, np.ndarray]]  # layer name -> kind -> (T, H)
    top_chars: np.ndarray  # (T, 5) ids of the likeliest next characters (or outputs)
    top_probs: np.ndarray  # (T, 5)
    loss: np.ndarray  # (T,) nats on the actual next character (NaN where there is none)
    symbols: list[str]  # what top_chars index: the vocabulary, or the output characters / labels
    what: str = "next character"  # what the predictions are of
    gaps: list[int] = field(default_factory=list)  # positions where one example ends and the next begins


def _softmax_top(logits: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    log_probs = log_softmax(logits.astype(np.float64))
    top = np.argsort(-log_probs, axis=1, kind="stable")[:, :k]
    return top, np.exp(np.take_along_axis(log_probs, top, axis=1)), log_probs


def trace_language_model(network: LanguageModelNetwork, vocab: Vocab, text: str, chunk: int = 256) -> Trace:
    """Run a language network over `text` as one stream from the zero state, keeping everything the page shows."""
    ids = vocab.encode(text)
    state = network.initial_state(1)
    kept: dict[str, dict[str, list[np.ndarray]]] = {f"l{i}": {} for i in range(len(network.layers))}
    tops, probs, losses = [], [], []
    network.prepare()
    for start in range(0, len(ids), chunk):
        x = ids[start : start + chunk, None]
        logits, state = network.forward(x, state, prepare=False)
        for i, layer in enumerate(network.layers):
            for kind, values in layer.activations().items():
                kept[f"l{i}"].setdefault(kind, []).append(values[:, 0].astype(np.float32))
        top, p, log_probs = _softmax_top(logits)
        following = ids[start + 1 : start + 1 + len(x)]
        loss = np.full(len(x), np.nan)
        loss[: len(following)] = -log_probs[np.arange(len(following)), following]
        tops.append(top)
        probs.append(p)
        losses.append(loss)
    activations = {name: {k: np.concatenate(v) for k, v in kinds.items()} for name, kinds in kept.items()}
    return Trace(text, activations, np.concatenate(tops), np.concatenate(probs), np.concatenate(losses), vocab.chars)


def trace_examples(net: ExampleNetwork, vocab: Vocab, lines: list[str], outputs: list[str], what: str) -> Trace:
    """Run a classifier's or tagger's encoder over each line on its own; the page shows them one after another.

    Hovering shows the likeliest outputs at each character (`what` they are), or for a network with one output per
    line, the likeliest of the whole line at each of its characters; the loss is left out (no targets)."""
    kept: dict[str, dict[str, list[np.ndarray]]] = {}
    tops, probs, gaps = [], [], []
    net.encoder.prepare()
    for line in lines:
        x = vocab.encode(line)[:, None]
        logits = net.forward(x, np.array([len(line)]))
        for prefix, layer in net.encoder.named_layers().items():
            acts = layer.activations()
            reverse = prefix.endswith("r.")
            for kind, values in acts.items():
                series = values[:, 0][::-1] if reverse else values[:, 0]  # right to left, in reading order
                kept.setdefault(prefix[:-1], {}).setdefault(kind, []).append(series.astype(np.float32))
        top, p, _ = _softmax_top(logits)
        if len(top) != len(line):  # one output for the whole line
            top, p = np.repeat(top, len(line), axis=0), np.repeat(p, len(line), axis=0)
        tops.append(top)
        probs.append(p)
        gaps.append(sum(len(s) for s in lines[: len(gaps) + 1]) + len(gaps))
        for name in kept:  # the line break between two examples is shown, with no activation of its own
            for kind in kept[name]:
                kept[name][kind].append(np.full((1, net.encoder.hidden_size), np.nan, np.float32))
        tops.append(np.zeros((1, top.shape[1]), np.int64))
        probs.append(np.zeros((1, top.shape[1])))
    text = "\n".join(lines) + "\n"
    activations = {name: {k: np.concatenate(v) for k, v in kinds.items()} for name, kinds in kept.items()}
    return Trace(
        text, activations, np.concatenate(tops), np.concatenate(probs), np.full(len(text), np.nan), outputs, what, gaps
    )


# -- detectors ---------------------------------------------------------------------------------------------------


def detectors(text: str) -> dict[str, np.ndarray]:
    """Simple features of the text, one value per character, as they stand after reading it."""
    n = len(text)
    values = {name: np.zeros(n) for name in DETECTORS}
    double = single = comment = False
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    column, indent, at_indent = 0, 0, True
    for t, ch in enumerate(text):
        before = text[t - 1] if t else "\n"
        after = text[t + 1] if t + 1 < n else ""
        if ch == "\n":
            single = comment = False
            column, indent, at_indent = 0, 0, True
        else:
            column += 1
            if at_indent and ch == " ":
                indent += 1
            elif at_indent:
                at_indent = False
        if ch == '"' and not comment:
            double = not double
        elif ch == "'" and not comment and not (before.isalpha() and after.isalpha()):  # not an apostrophe
            single = not single
        elif ch == "#" and not (double or single):
            comment = True
        if ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] = max(0, depth[closing[ch]] - 1)
        values["inside double quotes"][t] = double
        values["inside single quotes"][t] = single
        values["round bracket depth"][t] = depth["("]
        values["square bracket depth"][t] = depth["["]
        values["curly bracket depth"][t] = depth["{"]
        values["position in the line"][t] = column
        values["start of a word"][t] = ch.isalnum() and not before.isalnum()
        values["after a line break"][t] = before == "\n"
        values["upper case"][t] = ch.isupper()
        values["digit"][t] = ch.isdigit()
        values["indentation"][t] = indent
        values["inside a comment"][t] = comment
    return values


DETECTORS = (
    "inside double quotes",
    "inside single quotes",
    "round bracket depth",
    "square bracket depth",
    "curly bracket depth",
    "position in the line",
    "start of a word",
    "after a line break",
    "upper case",
    "digit",
    "indentation",
    "inside a comment",
)


def _standardised(x: np.ndarray) -> np.ndarray:
    """Columns of x with mean 0 and unit variance; constant columns become 0."""
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    return np.divide(x, std, out=np.zeros_like(x), where=std > 1e-8)


def rank_cells(trace: Trace, top: int = 5) -> dict[str, list[dict]]:
    """For every detector present in the text, the `top` units whose state (h, or tanh(c)) follows it best,
    by Pearson correlation: [{"layer", "kind", "unit", "r"}], strongest first (by |r|)."""
    found = detectors(trace.text)
    real = ~np.isnan(next(iter(next(iter(trace.activations.values())).values()))[:, 0])  # no example breaks
    names, columns = [], []
    for layer, kinds in trace.activations.items():
        for kind in STATES:
            if kind in kinds:
                values = np.tanh(kinds[kind]) if kind == "c" else kinds[kind]
                names += [(layer, kind, unit) for unit in range(values.shape[1])]
                columns.append(values[real])
    states = _standardised(np.concatenate(columns, axis=1).astype(np.float64))
    ranking = {}
    for name in DETECTORS:
        feature = _standardised(found[name][real][:, None])[:, 0]
        if not feature.any():
            continue  # the detector never changes in this text
        r = states.T @ feature / len(feature)
        best = np.argsort(-np.abs(r), kind="stable")[:top]
        ranking[name] = [
            {"layer": names[i][0], "kind": names[i][1], "unit": names[i][2], "r": float(r[i])} for i in best
        ]
    return ranking


def check_length(text: str, limit: int) -> str:
    """`text`, if there is some and it is at most `limit` (--max-len) characters long: a page is not cut silently."""
    if not text:
        raise CharRNNError("there is no text to show; give TEXT, --file FILE, or a run with validation text.")
    if len(text) > limit:
        raise CharRNNError(
            f"the text has {len(text):,} characters, more than --max-len {limit:,}; shorten it or raise --max-len "
            f"(up to {MAX_LEN:,})."
        )
    return text
