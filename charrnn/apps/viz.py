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
from importlib import resources

import numpy as np

from charrnn.tasks.trace import STATES, Trace

SIGMOID_GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}


def saturation(trace: Trace, cell: str) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Per layer and sigmoid gate, each unit's fraction of time left-saturated (< 0.1) and right-saturated (> 0.9)."""
    result = {}
    for layer, kinds in trace.activations.items():
        for gate in SIGMOID_GATES.get(cell, ()):
            values = kinds[gate][~np.isnan(kinds[gate][:, 0])]
            result.setdefault(layer, {})[gate] = (
                (values < 0.1).mean(axis=0).tolist(),
                (values > 0.9).mean(axis=0).tolist(),
            )
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
            dots = "".join(
                f'<circle cx="{20 + 160 * x:.1f}" cy="{180 - 160 * y:.1f}" r="2"/>'
                for x, y in zip(left, right, strict=True)
            )
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
    return (
        template.replace("/*DATA*/null", data)
        .replace("<!--SATURATION-->", plots)
        .replace("<!--TITLE-->", html.escape(title))
    )


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
