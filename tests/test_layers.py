"""The package's layers: the numerics import nothing but NumPy (and Python's standard library), and no module
imports from a layer above its own. Read from the source, so an import inside a function counts too; an import
under `if TYPE_CHECKING:` does not (it names a type for annotations and is never run)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "charrnn"
# Bottom to top; a module may import from its own layer and the layers below.
LAYERS = [
    ("charrnn.errors", "charrnn.version", "charrnn.nn"),
    ("charrnn.data",),
    ("charrnn.tasks",),
    ("charrnn.training",),
    ("charrnn.apps",),
    ("charrnn.interfaces", "charrnn.__init__", "charrnn.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 2 else ".".join(parts)


def layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer; add it to LAYERS")


def imports(path: Path) -> list[str]:
    """Every module `path` imports (a name imported from a package counts as its submodule when it is one)."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # leave out what is imported for type checking only
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            for alias in node.names:
                candidate = PACKAGE.parent.joinpath(*node.module.split("."), alias.name)
                if candidate.with_suffix(".py").is_file() or candidate.is_dir():
                    found.append(f"{node.module}.{alias.name}")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path):
    name = module_name(path)
    own = layer(name)
    above = [m for m in imports(path) if m.split(".")[0] == "charrnn" and m != "charrnn" and layer(m) > own]
    assert not above, f"{name} (layer {own}) imports {above} from above it"


@pytest.mark.parametrize("path", sorted((PACKAGE / "nn").rglob("*.py")), ids=lambda p: p.stem)
def test_the_numerics_import_nothing_but_numpy(path):
    outside = [
        m
        for m in imports(path)
        if m.split(".")[0] not in sys.stdlib_module_names and m != "numpy" and not m.startswith("charrnn.nn")
    ]
    assert not outside, f"{path.name} imports {outside}"


def test_the_check_would_see_an_import_from_above(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from charrnn.interfaces.api import train\n", encoding="utf-8")
    assert "charrnn.interfaces.api" in imports(source)
    assert layer("charrnn.interfaces.api") > layer("charrnn.nn.cells")


def test_an_import_for_type_checking_only_is_not_a_dependency(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from charrnn.training.config import Config\n"
        "from charrnn.data.text import Vocab\n",
        encoding="utf-8",
    )
    assert imports(source) == ["typing", "charrnn.data.text"]


def installed_with(*names: str) -> set[str]:
    """The top-level modules of the distributions `names` and of everything they require (extras left out): what a
    bare `pip install -e .` puts beside charrnn."""
    from importlib import metadata

    dists, todo = set(), [*names]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in dists:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:  # for another platform (colorama on Windows), so not here
            continue
        dists.add(name)
        for requirement in requires:
            if "extra ==" not in requirement:
                todo.append(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
    provided = metadata.packages_distributions()
    return {module for module, of in provided.items() if any(re.sub(r"[-_.]+", "-", d).lower() in dists for d in of)}


def test_a_bare_install_runs_the_command_line_and_the_api(tmp_path):
    """The run-time dependencies (numpy, typer, rich, pyyaml) and theirs are all the command line and the API load
    until an extra is used: an import of anything else fails here as it would after `pip install -e .` (Typer carries
    its own Click, for one, so `import click` would)."""
    allowed = sorted(installed_with("numpy", "typer", "rich", "pyyaml") | {"charrnn"})
    script = (
        "import importlib.abc, sys\n"
        f"ALLOWED = set(sys.stdlib_module_names) | set({allowed!r})\n"
        "class Bare(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] not in ALLOWED and not name.startswith('_'):  # _sysconfigdata_... is Python's\n"
        "            raise ImportError(f'a bare install has no {name}')\n"
        "sys.meta_path.insert(0, Bare())\n"
        "import charrnn\n"
        "from charrnn.interfaces.cli import main\n"
        "sys.exit(main(['train', '--help']) or main(['sample', '--help']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "click" not in allowed  # the check is real: the module that was missing is not allowed
