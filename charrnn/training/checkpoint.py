"""Checkpoints: one `.npz` file, written atomically, read without ever unpickling anything.

Layout: `meta` is a uint8 array holding UTF-8 JSON (format, version, vocabulary, config, progress); every
other entry is a plain numeric array: `param/<name>`, `optim/<name>`, `state/<layer>.<k>`.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.data.text import Vocab
from charrnn.errors import CharRNNError
from charrnn.nn.network import Network
from charrnn.tasks import registry
from charrnn.tasks.model import Model
from charrnn.training.config import Config, from_mapping, tasks_using
from charrnn.version import __version__

FORMAT = "charrnn-checkpoint"
VERSION = 2  # 2: tasks (config key `task`, meta["outputs"]); version 1 files (language models) load as they are
LAST = "last.npz"
REPLACED = ".replaced"  # in a run folder: the run an --overwrite run replaces, until its first checkpoint


def save(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename it over `path`.

    A crash at any moment leaves either the old checkpoint or the new one, never a broken file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, "charrnn_version": __version__, **meta}
    blob = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=blob, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a checkpoint's metadata and arrays; every failure is one clear sentence."""
    if not path.is_file():
        raise CharRNNError(f"checkpoint {path} does not exist; check the path.")
    if not zipfile.is_zipfile(path):
        raise CharRNNError(f"{path} is not a charrnn checkpoint (it is not an .npz archive).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise CharRNNError(
                f"{path} contains a pickled Python object; charrnn never unpickles files, so it refuses to load it."
            ) from None
        raise CharRNNError(f"checkpoint {path} is damaged ({e}); use another checkpoint.") from None
    except Exception as e:  # a damaged archive can fail in many ways inside zipfile/zlib/numpy
        raise CharRNNError(f"checkpoint {path} is damaged or truncated ({e}); use another checkpoint.") from None
    return parse_meta(arrays.pop("meta", None), path), arrays


def parse_meta(blob: np.ndarray | None, path: Path) -> dict[str, Any]:
    """A checkpoint's `meta` entry, checked: charrnn's format, a version this charrnn reads."""
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise CharRNNError(f"{path} is not a charrnn checkpoint (it has no charrnn metadata).")
    try:
        meta = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CharRNNError(f"checkpoint {path} is damaged (its metadata is not valid JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CharRNNError(f"{path} is not a charrnn checkpoint (its metadata names no charrnn format).")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise CharRNNError(f"checkpoint {path} is damaged (format version {version!r} is not valid).")
    if version > VERSION:
        raise CharRNNError(
            f"checkpoint {path} has format version {version}, newer than this charrnn reads ({VERSION}); "
            "upgrade charrnn to load it."
        )
    return meta


def _used(key: str, task: str) -> bool:
    """Whether `key` means anything to a model of `task`; a checkpoint written before such keys were refused for
    other tasks may hold one (it had no effect), and loads without it."""
    return task in tasks_using(key)


def read(path: Path) -> tuple[Vocab, Config, dict[str, Any], dict[str, np.ndarray]]:
    """A checkpoint's input vocabulary, config, metadata (a classifier's labels or a tagger's output characters are
    meta["outputs"]) and arrays, each checked; no network is built."""
    meta, arrays = load(path)
    source = f"checkpoint {path}"
    values = from_mapping(meta.get("config"), f"{source}: config")
    config = Config(**{k: v for k, v in values.items() if _used(k, values.get("task", Config.task))})
    chars = meta.get("vocab")
    if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise CharRNNError(f"{source} is damaged (its vocabulary is not a list of characters).")
    try:
        vocab = Vocab(chars)
    except CharRNNError as e:
        raise CharRNNError(f"{source} is damaged ({e})") from None
    outputs = meta.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(s, str) for s in outputs):
        raise CharRNNError(f"{source} is damaged (its {config.task} outputs are not a list of strings).")
    return vocab, config, meta, arrays


def fill(network: Network, arrays: dict[str, np.ndarray], config: Config, source: str) -> None:
    """Put a checkpoint's weights (its param/ arrays) into `network`, checking that each is there, has the shape
    the network needs and is finite, and that no other is left over."""
    expected = {f"param/{name}" for name in network.params}
    unexpected = sorted(k for k in arrays if k.startswith("param/") and k not in expected)
    if unexpected:
        raise CharRNNError(
            f"{source} has array {unexpected[0]!r}, which its config ({config.task}, {config.cell}) has no place for."
        )
    for name, param in network.params.items():
        array = arrays.get(f"param/{name}")
        if array is None:
            raise CharRNNError(f"{source} is missing the array 'param/{name}'; it is damaged or incomplete.")
        if array.shape != param.shape:
            raise CharRNNError(
                f"{source}: array 'param/{name}' has shape {array.shape} but its config implies {param.shape}."
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise CharRNNError(f"{source}: array 'param/{name}' holds {array.dtype}, not floating-point numbers.")
        param[...] = array
    if not np.all(np.isfinite(network.flat_params)):
        raise CharRNNError(f"{source} holds NaN or infinite weights; use an earlier checkpoint.")


def load_model(path: Path) -> tuple[Network, Vocab, Config, dict[str, Any], dict[str, np.ndarray]]:
    """Rebuild the network a checkpoint describes (its task's) and fill in its weights, checking every shape.

    Returns the network, the input vocabulary, the config, the metadata and every array (see `read`)."""
    vocab, config, meta, arrays = read(path)
    network = registry.get(config.task).build_network(config, len(vocab), len(meta.get("outputs", [])))
    fill(network, arrays, config, f"checkpoint {path}")
    return network, vocab, config, meta, arrays


def _run_folder(run_dir: Path) -> Path:
    """`run_dir`, checked to be a folder; each way it is not is a sentence that says so."""
    if not run_dir.exists():
        raise CharRNNError(f"run folder {run_dir} does not exist; check the path.")
    if not run_dir.is_dir():
        fix = f"give it as --checkpoint {run_dir}" if run_dir.suffix == ".npz" else "give the folder a run trained in"
        raise CharRNNError(f"{run_dir} is a file, not a run folder; {fix}.")
    return run_dir


def find_checkpoint(checkpoint: Path | None = None, run_dir: Path | None = None, root: Path = Path("runs")) -> Path:
    """--checkpoint, else --run-dir's last.npz, else the most recently written runs/**/last.npz; a path that is not
    what it is given as is an error that says what it is instead."""
    if checkpoint is not None:
        if checkpoint.is_dir():
            raise CharRNNError(
                f"{checkpoint} is a folder, not a checkpoint file; give it as --run-dir {checkpoint}, or give a "
                f"checkpoint in it such as {checkpoint / LAST}."
            )
        if not checkpoint.exists():
            raise CharRNNError(f"checkpoint {checkpoint} does not exist; check the path.")
        return checkpoint
    if run_dir is not None:
        path = _run_folder(run_dir) / LAST
        if (run_dir / REPLACED / LAST).is_file() and not path.is_file():
            raise CharRNNError(
                f"run folder {run_dir} holds no {LAST}: an --overwrite run there stopped before its first "
                f"checkpoint; put the run it was to replace back with: charrnn train --resume {run_dir}"
            )
        if not path.is_file():
            others = sorted(p.name for p in run_dir.glob("*.npz"))
            inner = sorted(str(p.parent) for p in run_dir.glob(f"*/{LAST}"))
            if inner:  # a folder of runs, such as runs/
                listed = ", ".join(inner[:3]) + (", ..." if len(inner) > 3 else "")
                fix = f"it holds runs: give one of them ({listed}); charrnn runs {run_dir} lists them"
            elif others:
                fix = f"give the path of one of its checkpoints: {', '.join(others)}"
            else:
                fix = "train a model into it"
            raise CharRNNError(f"run folder {run_dir} holds no {LAST}; {fix}.")
        return path
    found = sorted(root.glob(f"**/{LAST}"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise CharRNNError(f"no checkpoint found under {root}/; train a model first: charrnn train CORPUS")
    return found[-1]


def checkpoint_of(path: Path) -> Path:
    """The checkpoint a path names: a run folder's last.npz, or the checkpoint file itself. A path that does not
    exist is taken for a checkpoint if its name ends in .npz, else for a run folder, and said to be missing as such."""
    is_file = path.is_file() or (not path.exists() and path.suffix == ".npz")
    return find_checkpoint(checkpoint=path) if is_file else find_checkpoint(run_dir=path)


def open_model(path: Path, *more: Path) -> Model:
    """The trained model of a checkpoint, as the model class of its task (`charrnn.load` returns it); the models
    of `more` vote with it. Each file is read once."""
    loaded = []
    for each in (path, *more):
        network, vocab, config, meta, _ = load_model(each)
        loaded.append((each, network, vocab, config, meta))
    return registry.get(loaded[0][3].task).model(loaded)
