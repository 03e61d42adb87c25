"""Config: defaults <- YAML <- flags, and a clear sentence for every bad value."""

from pathlib import Path

import pytest
from conftest import stand_in

from charrnn.errors import CharRNNError
from charrnn.interfaces.sweep_file import read_sweep
from charrnn.training.config import FIELDS, Config, build_config, describe, flag


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_flags_beat_the_file_and_the_file_beats_defaults(tmp_path):
    path = write(tmp_path, "hidden: 64\nlayers: 3\nlr: 2e-3\ncorpus: a.txt\n")
    cfg = build_config(path, {"hidden": 32, "layers": None})
    assert cfg.hidden == 32  # flag
    assert cfg.layers == 3  # file
    assert cfg.lr == 0.002  # YAML 1.1 reads 2e-3 as a string; it is still a number
    assert cfg.corpus == ["a.txt"]
    assert cfg.seq_len == Config().seq_len  # default


def test_unknown_key_names_the_closest_valid_key(tmp_path):
    path = write(tmp_path, "hiden: 64\n")
    with pytest.raises(CharRNNError, match=r"unknown key 'hiden'; did you mean 'hidden'\?"):
        build_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden: big\n", "key 'hidden' must be a whole number"),
        ("hidden: 0\n", "key 'hidden' must be >= 1"),
        ("lr: -1\n", "key 'lr' must be > 0"),
        ("cell: transformer\n", "key 'cell' must be one of rnn, lstm, gru"),
        ("val_frac: 1.5\n", "key 'val_frac' must be < 1"),
        ("layers: true\n", "key 'layers' must be a whole number"),
        ("- hidden\n", "must be a mapping"),
        ("hidden: [1, 2\n", "is not valid YAML at line 2"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(tmp_path, text, message):
    with pytest.raises(CharRNNError, match=message):
        build_config(write(tmp_path, text))


def test_bad_flag_value_names_the_flag():
    with pytest.raises(CharRNNError, match=r"^--seq-len must be >= 1 \(got 0\)\.$"):
        build_config(None, {"seq_len": 0})


def test_missing_config_file(tmp_path):
    with pytest.raises(CharRNNError, match="does not exist"):
        build_config(tmp_path / "nope.yaml")


def test_every_key_has_help_and_a_flag():
    for key in FIELDS:
        assert describe(key).endswith("]")
        assert flag(key).startswith("--") and "_" not in flag(key)


SHIPPED = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_is_valid(path, data_folder):
    """Every file in configs/ loads without a complaint, a sweep file as `charrnn sweep` reads it (a renamed key would
    otherwise surface only when a user runs them)."""
    if path.stem.startswith("sweep-"):
        stand_in(data_folder, "tinyshakespeare", {"input.txt": "a stand-in"})  # read_sweep finds the corpus
        read_sweep(path)
    else:
        build_config(path, {})
