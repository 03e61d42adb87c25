"""What the README and docs promise a user of a fresh clone: a short README whose test command is CI's, and names of
files, configs and data sets that exist."""

import importlib
import re

from conftest import REPO

from charrnn.data.datasets import SETS

README = (REPO / "README.md").read_text(encoding="utf-8")
PAGES = {p.name: p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}


def test_the_readme_is_a_quick_start():
    assert len(README.encode("utf-8")) <= 12_000


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_every_config_and_data_set_the_docs_name_exists():
    for name, text in PAGES.items():
        for config in re.findall(r"configs/[\w.-]+\.yaml", text):
            assert (REPO / config).is_file(), f"{name} names {config}"
        for data_set in re.findall(r"data:([a-z][\w-]*)", text):
            assert data_set in SETS, f"{name} names data:{data_set}"
        for data_set in re.findall(r"charrnn data get ((?:[\w-]+ ?)+)", text):
            for word in data_set.split():
                assert word in SETS or word.startswith("-") or word.isupper(), f"{name}: charrnn data get {word}"


def test_every_module_and_file_path_the_docs_name_exists():
    """A path with a folder in it (`training/run.py`, `benchmarks/speed.py`) names a file of the repository, or of
    the package; a dotted name (`charrnn.tasks`, `charrnn.load`) names a module or something a module defines."""
    for name, text in PAGES.items():
        for path in re.findall(r"[\w.-]+(?:/[\w.-]+)+\.py\b", text):
            assert (REPO / path).is_file() or (REPO / "charrnn" / path).is_file(), f"{name} names {path}"
        for dotted in re.findall(r"\bcharrnn(?:\.[a-z_]+)+", text):
            module, attribute = importlib.import_module("charrnn"), None
            for part in dotted.split(".")[1:]:
                try:
                    module = importlib.import_module(f"{module.__name__}.{part}")
                except ModuleNotFoundError:
                    attribute = part
                    break
            assert attribute is None or hasattr(module, attribute), f"{name} names {dotted}"
