"""`charrnn viz`: what each cell of a trained network tracks, as one self-contained HTML page or in the terminal.

It runs the model over a text, keeps every unit's activations (the hidden state h; for an LSTM also the cell state
c, shown as tanh(c), and the gates i, f, o, g; for a GRU the gates r, z and the candidate n), and ranks the units
against simple detectors of the text (inside quotes, bracket depth, position in the line, ...) by correlation, as
Karpathy, Johnson & Fei-Fei (2015, "Visualizing and Understanding Recurrent Networks") did by eye. Their gate
saturation plot, per gate and layer, is drawn as SVG.

The page embeds its data: activations quantised to 4 bits (16 colours) and deflate-compressed, decompressed by the
browser (DecompressionStream); nothing is fetched from a network.
"""

import base64
import html
import json
import math
import zlib
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from charrnn.data.text import Vocab, printable
from charrnn.errors import CharRNNError
from charrnn.nn.language_model import CharModel

MAX_LEN = 20_000  # characters a page may hold: the embedded data grows with it (docs/viz.md: page sizes)
STATES = ("h", "c")  # what the detectors rank; the gates are shown for the cells they rank highest
SIGMOID_GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}


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
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    top = np.argsort(-log_probs, axis=1, kind="stable")[:, :k]
    return top, np.exp(np.take_along_axis(log_probs, top, axis=1)), log_probs


def trace_language_model(model: CharModel, vocab: Vocab, text: str, chunk: int = 256) -> Trace:
    """Run a language model over `text` as one stream from the zero state, keeping everything the page shows."""
    ids = vocab.encode(text)
    state = model.initial_state(1)
    kept: dict[str, dict[str, list[np.ndarray]]] = {f"l{i}": {} for i in range(len(model.layers))}
    tops, probs, losses = [], [], []
    model.prepare()
    for start in range(0, len(ids), chunk):
        x = ids[start : start + chunk, None]
        logits, state = model.forward(x, state, prepare=False)
        for i, layer in enumerate(model.layers):
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


def trace_examples(net, vocab: Vocab, lines: list[str], outputs: list[str], task: str) -> Trace:
    """Run a classifier's or tagger's encoder over each line on its own; the page shows them one after another.

    Hovering shows the tagger's likeliest outputs at each character, or the classifier's likeliest labels of the
    whole line; the loss is left out (no targets)."""
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
        if task == "classify":
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
    what = "label of the line" if task == "classify" else "output"
    return Trace(text, activations, np.concatenate(tops), np.concatenate(probs), np.full(len(text), np.nan),
                 outputs, what, gaps)  # fmt: skip


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


DETECTORS = ("inside double quotes", "inside single quotes", "round bracket depth", "square bracket depth",
             "curly bracket depth", "position in the line", "start of a word", "after a line break", "upper case",
             "digit", "indentation", "inside a comment")  # fmt: skip


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
        ranking[name] = [{"layer": names[i][0], "kind": names[i][1], "unit": names[i][2], "r": float(r[i])}
                         for i in best]  # fmt: skip
    return ranking


def saturation(trace: Trace, cell: str) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Per layer and sigmoid gate, each unit's fraction of time left-saturated (< 0.1) and right-saturated (> 0.9)."""
    result = {}
    for layer, kinds in trace.activations.items():
        for gate in SIGMOID_GATES.get(cell, ()):
            values = kinds[gate][~np.isnan(kinds[gate][:, 0])]
            result.setdefault(layer, {})[gate] = ((values < 0.1).mean(axis=0).tolist(),
                                                  (values > 0.9).mean(axis=0).tolist())  # fmt: skip
    return result


# -- the page ----------------------------------------------------------------------------------------------------


def _pack(values: np.ndarray, low: float, high: float) -> str:
    """A (T, H) series as 4-bit levels 1..15 of [low, high] (0: no value), unit by unit, deflated, in base64."""
    levels = np.where(np.isnan(values), 0, np.clip(np.round((values - low) / (high - low) * 14) + 1, 1, 15))
    flat = levels.T.astype(np.uint8).reshape(-1)
    if len(flat) % 2:
        flat = np.append(flat, 0)
    packed = (flat[0::2] << 4) | flat[1::2]
    return base64.b64encode(zlib.compress(packed.tobytes(), 9)).decode("ascii")


RANGES = {"h": (-1.0, 1.0), "c": (-1.0, 1.0), "g": (-1.0, 1.0), "n": (-1.0, 1.0)}  # c is shown as tanh(c)


def page_data(trace: Trace, ranking: dict, cell: str, title: str) -> dict:
    """Everything the page's script needs, as JSON-ready values."""
    series, gate_units = {}, {}
    chosen = {(c["layer"], c["unit"]) for cells in ranking.values() for c in cells}
    for layer, kinds in trace.activations.items():
        for kind, values in kinds.items():
            if kind in STATES:
                shown = np.tanh(values) if kind == "c" else values
                series[f"{layer}.{kind}"] = _pack(shown, *RANGES.get(kind, (0.0, 1.0)))
            else:  # gates: only for the units the detectors rank highest, to keep the page small
                units = sorted(u for name, u in chosen if name == layer)
                if units:
                    series[f"{layer}.{kind}"] = _pack(values[:, units], *RANGES.get(kind, (0.0, 1.0)))
                    gate_units[f"{layer}.{kind}"] = units
    loss = np.where(np.isnan(trace.loss), 0, np.clip(np.round(trace.loss * 20), 0, 255)).astype(np.uint8)
    return {
        "title": title,
        "text": trace.text,
        "units": next(iter(next(iter(trace.activations.values())).values())).shape[1],
        "layers": list(trace.activations),
        "kinds": {layer: list(kinds) for layer, kinds in trace.activations.items()},
        "series": series,
        "gateUnits": gate_units,
        "symbols": trace.symbols,
        "what": trace.what,
        "top": base64.b64encode(trace.top_chars.astype(np.uint16).tobytes()).decode("ascii"),
        "probs": base64.b64encode(np.round(trace.top_probs * 255).astype(np.uint8).tobytes()).decode("ascii"),
        "loss": base64.b64encode(loss.tobytes()).decode("ascii") if not np.isnan(trace.loss).all() else "",
        "ranking": ranking,
        "cell": cell,
    }


def saturation_svg(trace: Trace, cell: str) -> str:
    """The paper's figure: one scatter per layer and gate, x = fraction of time < 0.1, y = fraction > 0.9."""
    panels = []
    for layer, gates in saturation(trace, cell).items():
        for gate, (left, right) in gates.items():
            dots = "".join(f'<circle cx="{20 + 160 * x:.1f}" cy="{180 - 160 * y:.1f}" r="2"/>'
                           for x, y in zip(left, right, strict=True))  # fmt: skip
            panels.append(
                f'<figure><svg width="200" height="200" viewBox="0 0 200 200" role="img" '
                f'aria-label="{layer} gate {gate}"><rect x="20" y="20" width="160" height="160" class="frame"/>'
                f'<line x1="20" y1="180" x2="180" y2="20" class="diag"/><g class="dots">{dots}</g>'
                f'<text x="100" y="197" class="axis">left-saturated (&lt; 0.1)</text>'
                f'<text x="6" y="100" class="axis" transform="rotate(-90 6 100)">right-saturated (&gt; 0.9)</text>'
                f"</svg><figcaption>{layer}, gate {gate}</figcaption></figure>"
            )
    return "".join(panels)


def write_page(trace: Trace, ranking: dict, cell: str, title: str) -> str:
    """The whole page: the template with its data and the saturation plots filled in."""
    template = resources.files("charrnn.apps").joinpath("viz.html").read_text(encoding="utf-8")
    data = json.dumps(page_data(trace, ranking, cell, title), ensure_ascii=False).replace("</", "<\\/")
    plots = saturation_svg(trace, cell) or "<p>Only gated cells (LSTM, GRU) have gates to saturate.</p>"
    return (template.replace("/*DATA*/null", data).replace("<!--SATURATION-->", plots)
            .replace("<!--TITLE-->", html.escape(title)))  # fmt: skip


def check_length(text: str, limit: int) -> str:
    if not text:
        raise CharRNNError("there is no text to show; give TEXT, --file FILE, or a run with validation text.")
    if len(text) > limit:
        raise CharRNNError(f"the text has {len(text):,} characters, more than --len {limit:,}; shorten it.")
    return text


def cell_color(value: float, kind: str) -> str:
    """A background colour for the terminal: blue below the middle of the kind's range, red above."""
    low, high = RANGES.get(kind, (0.0, 1.0))
    x = 2 * (value - low) / (high - low) - 1  # -1 .. 1
    if math.isnan(x):
        return "default"
    strength = int(255 * (1 - 0.7 * abs(x)))  # light enough to read the text on
    return f"rgb({255},{strength},{strength})" if x > 0 else f"rgb({strength},{strength},{255})"


def describe_cell(cell: dict) -> str:
    return f"{cell['layer']}:{cell['unit']} ({'tanh(c)' if cell['kind'] == 'c' else cell['kind']})"


def printable_char(ch: str) -> str:
    return printable(ch) if ch != " " else " "
