"""`charrnn export`: a trained model as an ONNX graph that ONNX Runtime runs anywhere, and a check that it computes
what charrnn computes.

The recurrent layers become ONNX's own RNN, GRU and LSTM operators, which compute what charrnn's cells do once the
gate blocks are put in ONNX's order: charrnn's LSTM is [o, i, f, g], ONNX's [i, o, f, c]; charrnn's GRU is
[r, z, n], ONNX's [z, r, h], both with the reset gate applied after the recurrent product (`linear_before_reset=1`,
b_hn in the recurrent bias). The first layer reads one-hot characters (rows of an identity matrix), so its input
weights are W_x, or with an embedding the table E @ W_x. The contract (names, types, shapes, metadata) is in
docs/export.md.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.nn.attention import Additive, Dot, General
from charrnn.nn.example_network import EXAMPLE, ExampleNetwork
from charrnn.nn.functional import log_softmax, pad
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.seq2seq import Seq2SeqNetwork
from charrnn.version import __version__

DEFAULT_OPSET = 17
MIN_OPSET = 15  # Shape with start and end (15); every other operator here is older
MARK = "charrnn_version"  # the metadata key that tells a file charrnn wrote
DECODER = ".decoder"  # an encoder-decoder's decoder step is written beside the encoder, as NAME.decoder.onnx
ONNX_GATES = {"rnn": [0], "gru": [1, 0, 2], "lstm": [1, 0, 2, 3]}  # ONNX's gate k is charrnn's gate ONNX_GATES[k]
OPERATOR = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def need_onnx() -> Any:
    """The onnx package, or the sentence that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise CharRNNError(
            "charrnn export needs the onnx package; install it with: pip install 'charrnn[export]'"
        ) from None
    return onnx


class Graph:
    """An ONNX graph being written: its nodes, weights (initializers), inputs and outputs."""

    def __init__(self, onnx: Any, opset: int) -> None:
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.dtype = np.dtype(np.float32)  # ONNX Runtime's recurrent operators run float32 only; float64 models too
        self.nodes: list = []
        self.weights: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.count = 0

    @property
    def float_type(self) -> int:
        return self.onnx.TensorProto.FLOAT

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def weight(self, hint: str, value: np.ndarray, dtype: np.dtype | None = None) -> str:
        name = self.name(hint)
        array = np.ascontiguousarray(value, dtype=dtype or self.dtype)
        self.weights.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> Any:
        names = [self.name(kind.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(self.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, name: str, value: str, elem_type: int, shape: list) -> None:
        self.nodes.append(self.helper.make_node("Identity", [value], [name]))
        self.outputs.append(self.helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, metadata: dict[str, str]) -> Any:
        graph = self.helper.make_graph(self.nodes, "charrnn", self.inputs, self.outputs, self.weights)
        opsets = [self.helper.make_opsetid("", self.opset)]
        model = self.helper.make_model(
            graph, opset_imports=opsets, producer_name="charrnn", producer_version=__version__
        )
        model.ir_version = min(model.ir_version, 8)  # what ONNX Runtime 1.14 and later read
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model


def _gates(matrix: np.ndarray, cell: str, hidden: int) -> np.ndarray:
    """The gate blocks of a (..., G*H) matrix in ONNX's order."""
    return np.concatenate([matrix[..., g * hidden : (g + 1) * hidden] for g in ONNX_GATES[cell]], axis=-1)


def _input_weights(params: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    """A layer's input weights as its graph reads them: W_x, or for a first layer with an embedding, which reads
    one-hot characters, the table E @ W_x."""
    W_x = params[prefix + "W_x"]
    return params[prefix + "E"] @ W_x if prefix + "E" in params else W_x


def _layer_weights(params: dict[str, np.ndarray], prefix: str, cell: str, hidden: int) -> tuple:
    """W (G*H, inputs), R (G*H, H) and B (2*G*H,) of one direction of one layer, as ONNX's operators take them."""
    W = _gates(_input_weights(params, prefix), cell, hidden).T
    R = _gates(params[prefix + "W_h"], cell, hidden).T
    Wb = _gates(params[prefix + "b"], cell, hidden)
    Rb = np.zeros_like(Wb)
    if cell == "gru":  # b_hn is added to the recurrent product before the reset gate multiplies it
        Rb[2 * hidden :] = params[prefix + "b_hn"]
    return W, R, np.concatenate([Wb, Rb])


def _recurrent_layer(
    g: Graph,
    x: str,
    params: dict[str, np.ndarray],
    prefixes: list[str],
    cell: str,
    hidden: int,
    lengths: str | None = None,
    initial: list[str] | None = None,
) -> list[str]:
    """One ONNX RNN/GRU/LSTM node over x (T, B, inputs): one direction, or both (prefixes of each).
    Returns its outputs: Y (T, directions, B, H), Y_h and, for an LSTM, Y_c."""
    weights = [_layer_weights(params, p, cell, hidden) for p in prefixes]
    W, R, B = (g.weight(name, np.stack([w[k] for w in weights])) for k, name in enumerate(("W", "R", "B")))
    inputs = [x, W, R, B, lengths or "", *(initial or [])]
    attributes: dict[str, Any] = {"hidden_size": hidden}
    if len(prefixes) == 2:
        attributes["direction"] = "bidirectional"
    if cell == "gru":
        attributes["linear_before_reset"] = 1
    while inputs and inputs[-1] == "":
        inputs.pop()
    return g.op(OPERATOR[cell], inputs, 3 if cell == "lstm" else 2, **attributes)


def _one_hot(g: Graph, ids_tb: str, vocab_size: int) -> str:
    """The first layer's input for ids (T, B): one-hot rows (T, B, V), so that its W is the (V, G*H) table."""
    return g.op("Gather", [g.weight("one_hot", np.eye(vocab_size)), ids_tb])


def _language_model(g: Graph, net: LanguageModelNetwork, cell: str) -> None:
    layers, H, V = len(net.layers), net.hidden_size, net.vocab_size
    ids = g.input("ids", g.onnx.TensorProto.INT64, ["batch", "time"])
    parts = ["h0", "c0"] if cell == "lstm" else ["h0"]
    states = [g.input(name, g.float_type, [layers, "batch", H]) for name in parts]
    x = _one_hot(g, g.op("Transpose", [ids], perm=[1, 0]), V)
    finals: list[list[str]] = [[] for _ in parts]
    for i in range(layers):
        index = g.weight("layer", np.array([i], np.int64), np.int64)
        initial = [g.op("Gather", [s, index]) for s in states]  # (1, B, H)
        outputs = _recurrent_layer(g, x, net.params, [f"l{i}."], cell, H, None, initial)
        x = g.op("Squeeze", [outputs[0], _axis(g, 1)])  # (T, B, H)
        for k in range(len(parts)):
            finals[k].append(outputs[1 + k])
    top = g.op("Transpose", [x], perm=[1, 0, 2])  # (B, T, H)
    logits = g.op(
        "Add", [g.op("MatMul", [top, g.weight("W_y", net.params["W_y"])]), g.weight("b_y", net.params["b_y"])]
    )
    g.output("logits", logits, g.float_type, ["batch", "time", V])
    for name, final in zip(("h", "c"), finals, strict=False):
        g.output(name, g.op("Concat", final, axis=0), g.float_type, [layers, "batch", H])


def _encoder(g: Graph, encoder: Any, params: dict[str, np.ndarray], prefix: str, cell: str) -> tuple:
    """The encoder stack over the graph inputs ids (B, T) and lengths (B,): its top outputs (T, B, D), each layer's
    final states ([layer] -> [h (directions, B, H), c ...]) read within each example's length, and the lengths."""
    ids = g.input("ids", g.onnx.TensorProto.INT64, ["batch", "time"])
    lengths = g.input("lengths", g.onnx.TensorProto.INT64, ["batch"])
    lengths32 = g.op("Cast", [lengths], to=g.onnx.TensorProto.INT32)
    x = _one_hot(g, g.op("Transpose", [ids], perm=[1, 0]), encoder.layers[0][0].input_size)
    finals = []
    for i in range(len(encoder.layers)):
        names = [f"{prefix}l{i}.", f"{prefix}l{i}r."][: encoder.directions]
        outputs = _recurrent_layer(g, x, params, names, cell, encoder.hidden_size, lengths32)
        y = g.op("Transpose", [outputs[0]], perm=[0, 2, 1, 3])  # (T, B, directions, H)
        x = g.op("Reshape", [y, g.weight("shape", np.array([0, 0, -1], np.int64), np.int64)])  # (T, B, D)
        finals.append(outputs[1:])
    return x, finals, lengths


def _valid(g: Graph, x: str, lengths: str) -> str:
    """(T, B) true where a position is within its example's length, for outputs x (T, B, D)."""
    steps = g.op("Squeeze", [g.op("Shape", [x], start=0, end=1)])
    positions = g.op(
        "Range",
        [g.weight("zero", np.array(0, np.int64), np.int64), steps, g.weight("one", np.array(1, np.int64), np.int64)],
    )
    return g.op("Less", [g.op("Unsqueeze", [positions, _axis(g, 1)]), lengths])


def _example_network(g: Graph, net: ExampleNetwork, cell: str) -> None:
    x, finals, lengths = _encoder(g, net.encoder, net.params, "", cell)
    last = finals[-1][0]
    valid = g.op("Unsqueeze", [_valid(g, x, lengths), _axis(g, 2)])  # (T, B, 1)
    if net.head == EXAMPLE:
        if net.pool == "last":
            features = g.op(
                "Reshape",
                [g.op("Transpose", [last], perm=[1, 0, 2]), g.weight("shape", np.array([0, -1], np.int64), np.int64)],
            )
        elif net.pool == "mean":
            kept = g.op("Mul", [x, g.op("Cast", [valid], to=g.float_type)])
            total = g.op("ReduceSum", [kept, _axis(g, 0)], keepdims=0)
            count = g.op(
                "Cast",
                [g.op("Unsqueeze", [lengths, _axis(g, 1)])],
                to=g.float_type,
            )
            features = g.op("Div", [total, count])
        else:
            masked = g.op("Where", [valid, x, g.weight("low", np.array(-np.inf))])
            if g.opset >= 18:  # the axes of ReduceMax became an input in opset 18
                features = g.op("ReduceMax", [masked, _axis(g, 0)], keepdims=0)
            else:
                features = g.op("ReduceMax", [masked], axes=[0], keepdims=0)
        logits = g.op(
            "Add", [g.op("MatMul", [features, g.weight("W_y", net.params["W_y"])]), g.weight("b_y", net.params["b_y"])]
        )
        g.output("probabilities", g.op("Softmax", [logits], axis=-1), g.float_type, ["batch", net.num_outputs])
        return
    logits = g.op("Add", [g.op("MatMul", [x, g.weight("W_y", net.params["W_y"])]), g.weight("b_y", net.params["b_y"])])
    probabilities = g.op("Transpose", [g.op("Softmax", [logits], axis=-1)], perm=[1, 0, 2])
    g.output("probabilities", probabilities, g.float_type, ["batch", "time", net.num_outputs])


def _axis(g: Graph, *axes: int) -> str:
    return g.weight("axes", np.array(axes, np.int64), np.int64)


def _seq2seq_encoder(g: Graph, net: Seq2SeqNetwork, cell: str) -> None:
    """The encoder graph: ids, lengths -> memory (B, Ts, D), valid (B, Ts), keys (additive attention) and the
    decoder's initial state (through the bridge from a bidirectional encoder)."""
    x, finals, lengths = _encoder(g, net.encoder, net.params, "enc.", cell)
    memory = g.op("Transpose", [x], perm=[1, 0, 2])
    g.output("memory", memory, g.float_type, ["batch", "source", net.encoder.output_size])
    g.output(
        "valid", g.op("Transpose", [_valid(g, x, lengths)], perm=[1, 0]), g.onnx.TensorProto.BOOL, ["batch", "source"]
    )
    if net.scorer is not None and net.scorer.projects_keys:
        keys = g.op(
            "Add",
            [g.op("MatMul", [memory, g.weight("W_k", net.params["att.W_k"])]), g.weight("b", net.params["att.b"])],
        )
        g.output("keys", keys, g.float_type, ["batch", "source", net.hidden_size])
    for k, part in enumerate(("h", "c")[: net.parts]):
        layers = []
        for i, final in enumerate(finals):
            state = final[k]  # (directions, B, H)
            if net.bridged:
                joined = g.op(
                    "Reshape",
                    [
                        g.op("Transpose", [state], perm=[1, 0, 2]),
                        g.weight("shape", np.array([0, -1], np.int64), np.int64),
                    ],
                )
                W, b = (net.params[name] for name in net.bridges[i, k])
                bridged = g.op("Tanh", [g.op("Add", [g.op("MatMul", [joined, g.weight("W", W)]), g.weight("b", b)])])
                state = g.op("Unsqueeze", [bridged, _axis(g, 0)])
            layers.append(state)
        g.output(part, g.op("Concat", layers, axis=0), g.float_type, [len(finals), "batch", net.hidden_size])


def _dot_scores(g: Graph, p: dict, query: str, memory: str, keys: str | None) -> str:
    return g.op("MatMul", [query, g.op("Transpose", [memory], perm=[0, 2, 1])])


def _general_scores(g: Graph, p: dict, query: str, memory: str, keys: str | None) -> str:
    projected = g.op("MatMul", [query, g.weight("W_a", p["att.W_a"])])
    return g.op("MatMul", [projected, g.op("Transpose", [memory], perm=[0, 2, 1])])


def _additive_scores(g: Graph, p: dict, query: str, memory: str, keys: str | None) -> str:
    projected = g.op("Unsqueeze", [g.op("MatMul", [query, g.weight("W_q", p["att.W_q"])]), _axis(g, 2)])
    energy = g.op("Tanh", [g.op("Add", [projected, g.op("Unsqueeze", [keys, _axis(g, 1)])])])
    return g.op("Squeeze", [g.op("MatMul", [energy, g.weight("v", p["att.v"][:, None])]), _axis(g, 3)])


# The scores (B, 1, Ts) of a decoder step's query (B, 1, H) against the memory (B, Ts, D), for each score function.
SCORES = {Dot: _dot_scores, General: _general_scores, Additive: _additive_scores}


def _seq2seq_decoder(g: Graph, net: Seq2SeqNetwork, cell: str) -> None:
    """One decoder step: the previous token, the state (and the last attentional state, with input feeding), the
    encoder's outputs -> log P(next token), the new state, the attentional state and the attention weights."""
    H, D, layers = net.hidden_size, net.encoder.output_size, len(net.decoder)
    floats, ints = g.float_type, g.onnx.TensorProto.INT64
    ids = g.input("ids", ints, ["batch"])
    states = [g.input(part, floats, [layers, "batch", H]) for part in ("h", "c")[: net.parts]]
    feed = g.input("feed", floats, ["batch", H]) if net.input_feeding else None
    memory = g.input("memory", floats, ["batch", "source", D])
    projects_keys = net.scorer is not None and net.scorer.projects_keys
    keys = g.input("keys", floats, ["batch", "source", H]) if projects_keys else None
    valid = g.input("valid", g.onnx.TensorProto.BOOL, ["batch", "source"])
    x = g.op("Gather", [g.weight("one_hot", np.eye(net.target_vocab)), ids])  # (B, V)
    params = dict(net.params)
    if feed is not None:  # the first layer reads [y_{t-1}; h~_{t-1}]: its input weights are [table; W_feed]
        table = _input_weights(params, "dec.l0.")
        params = {k: v for k, v in params.items() if k != "dec.l0.E"} | {
            "dec.l0.W_x": np.vstack([table, params["dec.W_feed"]])
        }
        x = g.op("Concat", [x, feed], axis=1)
    x = g.op("Unsqueeze", [x, _axis(g, 0)])  # one step: (1, B, inputs)
    finals: list[list[str]] = [[] for _ in states]
    for i in range(layers):
        initial = [g.op("Gather", [s, g.weight("layer", np.array([i], np.int64), np.int64)]) for s in states]
        outputs = _recurrent_layer(g, x, params, [f"dec.l{i}."], cell, H, None, initial)
        x = g.op("Squeeze", [outputs[0], _axis(g, 1)])  # (1, B, H)
        for k in range(len(states)):
            finals[k].append(outputs[1 + k])
    query = g.op("Transpose", [x], perm=[1, 0, 2])  # (B, 1, H)
    out = query
    if net.scorer is not None:
        p = net.params
        scores = SCORES[type(net.scorer)](g, p, query, memory, keys)
        masked = g.op("Where", [g.op("Unsqueeze", [valid, _axis(g, 1)]), scores, g.weight("low", np.array(-np.inf))])
        alpha = g.op("Softmax", [masked], axis=-1)  # (B, 1, Ts)
        context = g.op("MatMul", [alpha, memory])
        joint = g.op("Concat", [context, query], axis=-1)
        out = g.op(
            "Tanh",
            [g.op("Add", [g.op("MatMul", [joint, g.weight("W_c", p["att.W_c"])]), g.weight("b_c", p["att.b_c"])])],
        )
        g.output("attention", g.op("Squeeze", [alpha, _axis(g, 1)]), floats, ["batch", "source"])
    out = g.op("Squeeze", [out, _axis(g, 1)])  # (B, H)
    logits = g.op(
        "Add", [g.op("MatMul", [out, g.weight("W_y", net.params["W_y"])]), g.weight("b_y", net.params["b_y"])]
    )
    g.output("log_probs", g.op("LogSoftmax", [logits], axis=-1), floats, ["batch", net.target_vocab])
    for part, final in zip(("h", "c"), finals, strict=False):
        g.output(f"{part}_out", g.op("Concat", final, axis=0), floats, [layers, "batch", H])
    if net.input_feeding:
        g.output("feed_out", out, floats, ["batch", H])


def _language_model_graphs(graphs: dict[str, Graph], net: LanguageModelNetwork, cell: str, model: Any) -> dict:
    _language_model(graphs[""], net, cell)
    return {}


def _example_graphs(graphs: dict[str, Graph], net: ExampleNetwork, cell: str, model: Any) -> dict:
    _example_network(graphs[""], net, cell)
    return {"padding_id": "0", "labels" if net.head == EXAMPLE else "output_vocabulary": json.dumps(model.outputs)}


def _seq2seq_graphs(graphs: dict[str, Graph], net: Seq2SeqNetwork, cell: str, model: Any) -> dict:
    graphs[DECODER] = Graph(graphs[""].onnx, graphs[""].opset)
    _seq2seq_encoder(graphs[""], net, cell)
    _seq2seq_decoder(graphs[DECODER], net, cell)
    return {"padding_id": "0", "output_vocabulary": json.dumps(model.outputs), "eos_id": "0"} | {
        "target_units": model.config.target_units,
        "max_output_length": "2 * source length + 10",
    }


# The graphs of each kind of network (filled in, with the model's metadata, into {"": main graph, ...}).
GRAPHS = {
    LanguageModelNetwork: _language_model_graphs,
    ExampleNetwork: _example_graphs,
    Seq2SeqNetwork: _seq2seq_graphs,
}


def build(model: Any, opset: int = DEFAULT_OPSET) -> dict[str, Any]:
    """The ONNX model(s) of a trained charrnn model (a `charrnn.Model`), checked by `onnx.checker`: {"": the model}
    or, for an encoder-decoder, {"": the encoder, ".decoder": one decoder step}."""
    onnx = need_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise CharRNNError(
            f"--opset {opset} is outside what this export can write: from {MIN_OPSET} (the operators it uses) "
            f"to {newest} (the newest this onnx package knows); choose one in between."
        )
    net, cell = model.network, model.config.cell
    export_network = GRAPHS.get(type(net))
    if export_network is None:
        raise CharRNNError(
            f"charrnn export cannot write {model.kind} (task {model.task}): its network is not one it knows."
        )
    metadata = {"charrnn_task": model.task, MARK: __version__, "vocabulary": json.dumps(model.vocab.chars)}
    graphs = {"": Graph(onnx, opset)}
    metadata |= export_network(graphs, net, cell, model)
    exported = {}
    for suffix, g in graphs.items():
        exported[suffix] = g.model(metadata | ({"part": "decoder" if suffix else "encoder"} if len(graphs) > 1 else {}))
        onnx.checker.check_model(exported[suffix], full_check=True)
    return exported


def paths(out: Path, exported: dict[str, Any]) -> dict[str, Path]:
    """Where each graph goes: `out`, and beside it NAME.decoder.onnx for an encoder-decoder's decoder step."""
    return {
        suffix: out.with_name(out.name.removesuffix(".onnx") + suffix + ".onnx") if suffix else out
        for suffix in exported
    }


def write(exported: dict[str, Any], out: Path, force: bool = False) -> Path:
    """Save the ONNX model(s) to `out` (and beside it), each atomically; a folder, or a file charrnn did not write
    (unless `force`), is refused before anything is written."""
    onnx = need_onnx()
    targets = paths(out, exported)
    for path in targets.values():
        if path.is_dir():
            raise CharRNNError(f"--out {path} is a folder; give the path of the .onnx file to write.")
        if path.exists() and not force and not written_by_charrnn(path):
            raise CharRNNError(
                f"{path} exists and was not written by charrnn export; choose another --out or pass --force."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, path in targets.items():
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            onnx.save(exported[suffix], tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def written_by_charrnn(path: Path) -> bool:
    """Whether `path` is an ONNX model charrnn exported (its metadata names a charrnn version)."""
    onnx = need_onnx()
    try:
        loaded = onnx.load(path, load_external_data=False)
    except Exception:  # not a protobuf, not ONNX: not ours
        return False
    return any(entry.key == MARK for entry in loaded.metadata_props)


def check(model: Any, path: Path, seed: int = 0) -> float:
    """The largest difference between ONNX Runtime's outputs for the exported file at `path` and charrnn's own, on
    random inputs drawn from the model's vocabulary: several lengths, batches with padding, and for a language model
    two chunks carried over by their states."""
    try:
        import onnxruntime
    except ImportError:
        raise CharRNNError(
            "charrnn export --check needs onnxruntime; install it with: pip install 'charrnn[export]'"
        ) from None
    session = runtime_session(onnxruntime, path)
    rng = np.random.default_rng(seed)
    net, V = model.network, len(model.vocab)
    return CHECKS[type(net)](net, onnxruntime, path, session, rng, V)


def _check_language_model(
    net: LanguageModelNetwork, onnxruntime: Any, path: Path, session: Any, rng: np.random.Generator, V: int
) -> float:
    """Chunks of random text carried from one call to the next, the state fed back as the file returns it."""
    worst = 0.0
    for batch, length in ((1, 1), (3, 17), (2, 64)):
        ids = rng.integers(0, V, (batch, 2 * length))
        state = net.initial_state(batch)
        feeds = {s: np.zeros((len(net.layers), batch, net.hidden_size), np.float32) for s in _state_inputs(session)}
        for chunk in (ids[:, :length], ids[:, length:]):
            logits, state = net.forward(chunk.T, state)
            expected = logits.reshape(length, batch, -1).transpose(1, 0, 2)
            got = session.run(None, {"ids": chunk, **feeds})
            worst = max(worst, float(np.abs(got[0] - expected).max()))
            for k, name in enumerate(_state_inputs(session)):
                mine = np.stack([layer_state[k] for layer_state in state])
                worst = max(worst, float(np.abs(got[1 + k] - mine).max()))
                feeds[name] = got[1 + k]
    return worst


def _check_example_network(
    net: ExampleNetwork, onnxruntime: Any, path: Path, session: Any, rng: np.random.Generator, V: int
) -> float:
    """Padded batches of random examples; the probabilities of every real position (or example)."""
    worst = 0.0
    for x, lengths in _random_batches(rng, V):
        probs = np.exp(log_softmax(net.forward(x, lengths).astype(np.float64)))
        got = session.run(None, {"ids": x.T.copy(), "lengths": lengths})[0]
        if net.head == EXAMPLE:
            worst = max(worst, float(np.abs(got - probs).max()))
        else:
            expected = probs.reshape(x.shape[0], len(lengths), -1).transpose(1, 0, 2)
            for b, n in enumerate(lengths):  # padded positions are not read
                worst = max(worst, float(np.abs(got[b, :n] - expected[b, :n]).max()))
    return worst


def _random_batches(rng: np.random.Generator, vocab_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of random ids (T, B), padded, and their lengths: one example, then examples of different lengths."""
    for lengths in ([1], [5, 2, 9], [12, 12, 3, 7]):
        yield pad([rng.integers(0, vocab_size, n) for n in lengths], np.int64)


def runtime_session(onnxruntime: Any, path: Path) -> Any:
    """An ONNX Runtime session on one thread, or the sentence that says why it cannot run the file."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # an opset newer than this ONNX Runtime runs, say
        raise CharRNNError(
            f"ONNX Runtime {onnxruntime.__version__} cannot run {path} ({str(e).strip().splitlines()[-1]}); "
            "export with a lower --opset."
        ) from None


def _check_seq2seq(
    net: Seq2SeqNetwork, onnxruntime: Any, path: Path, encoder: Any, rng: np.random.Generator, V: int
) -> float:
    """The encoder's outputs, then five decoder steps fed the same tokens, against charrnn's encode and step (the
    decoder step is the second file, beside the first)."""
    decoder = runtime_session(onnxruntime, paths(path, {"": 0, DECODER: 0})[DECODER])
    worst = 0.0
    for x_tb, lengths_array in _random_batches(rng, V):
        lengths, x = lengths_array.tolist(), x_tb.T.copy()
        src = net.encode(x_tb, lengths_array)
        got = dict(
            zip(
                [o.name for o in encoder.get_outputs()],
                encoder.run(None, {"ids": x, "lengths": lengths_array}),
                strict=True,
            )
        )
        valid = src.valid
        worst = max(worst, float(np.abs(np.where(valid[..., None], got["memory"] - src.outputs, 0)).max()))
        state = [[s.copy() for s in layer] for layer in src.state]
        for k, part in enumerate(("h", "c")[: net.parts]):
            worst = max(worst, float(np.abs(got[part] - np.stack([layer[k] for layer in state])).max()))
        feeds = {name: got[name] for name in ("memory", "valid", "keys") if name in got}
        feeds |= {part: got[part] for part in ("h", "c")[: net.parts]}
        feed = np.zeros((len(lengths), net.hidden_size), net.dtype) if net.input_feeding else None
        if feed is not None:
            feeds["feed"] = feed.astype(np.float32)
        for _ in range(5):
            ids = rng.integers(0, net.target_vocab, len(lengths))
            log_probs, out, alpha = net.step(ids, state, feed, src)
            step = dict(
                zip([o.name for o in decoder.get_outputs()], decoder.run(None, {"ids": ids, **feeds}), strict=True)
            )
            worst = max(worst, float(np.abs(step["log_probs"] - log_probs).max()))
            if "attention" in step:
                worst = max(worst, float(np.abs(step["attention"] - alpha).max()))
            for k, part in enumerate(("h", "c")[: net.parts]):
                feeds[part] = step[f"{part}_out"]
                worst = max(worst, float(np.abs(feeds[part] - np.stack([layer[k] for layer in state])).max()))
            if feed is not None:
                feed = out
                feeds["feed"] = step["feed_out"]
                worst = max(worst, float(np.abs(step["feed_out"] - out).max()))
    return worst


# How each kind of network checks its file(s) against ONNX Runtime: the largest difference it finds.
CHECKS = {
    LanguageModelNetwork: _check_language_model,
    ExampleNetwork: _check_example_network,
    Seq2SeqNetwork: _check_seq2seq,
}


def _state_inputs(session: Any) -> list[str]:
    return [i.name for i in session.get_inputs() if i.name in ("h0", "c0")]
