"""`charrnn data`: list, get (download or build) and find the named data sets."""

from pathlib import Path
from typing import Annotated

import typer
from rich import filesize
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from charrnn.data import datasets
from charrnn.errors import CharRNNError
from charrnn.interfaces.cli.common import (
    err,
    print_table,
)

app = typer.Typer(
    help="The named data sets of the examples and configs: list them, get (download or build) one, find its files.",
    no_args_is_help=True,
)
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"Folder of the data sets [default: ${datasets.ENV}, else ~/.local/share/charrnn].",
        show_default=False,
    ),
]


@app.command("list")
def data_list(
    long: Annotated[bool, typer.Option("--long", help="Also where each comes from and its licence.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Each data set: what it is for, its size and whether it is here; with --long, its source and licence too."""
    registry = datasets.Registry(datasets.data_dir(data_dir))
    rows = []
    for ds in registry.sets.values():
        record = registry.manifest(ds.name)
        here = "no" if record is None else "yes" if record["pinned"] else "yes, checksum not pinned"
        source = ds.source + (f" (its checksum depends on {ds.varies})" if ds.varies else "")
        rows.append((ds, here, source))
    if long:  # a block per set: the source and licence are too long for a column at 80
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for ds, here, source in rows:
            if table.row_count:
                table.add_row()
            fields = {"for": ds.purpose, "source": source, "licence": ds.licence, "size": ds.size, "here": here}
            for i, (field, value) in enumerate(fields.items()):
                table.add_row("" if i else ds.name, field, value)
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("name", no_wrap=True)
        table.add_column("for")
        table.add_column("size", no_wrap=True)
        table.add_column("here", max_width=len("yes, checksum"))  # "not pinned" on a second line
        for ds, here, _ in rows:
            table.add_row(ds.name, ds.purpose, ds.size, here)
    more = "" if long else "; sources and licences: charrnn data list --long"
    table.caption = f"in {registry.root}{more}"
    table.caption_justify = "left"
    print_table(table)


@app.command("get")
def data_get(
    names: Annotated[list[str], typer.Argument(help="Data sets to download or build.", show_default=False)],
    source_file: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Install this copy of a downloaded set's file (its checksum is checked).", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch or build it again even if it is here.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Download or build data sets into the data folder, checking every file's sha256."""
    if source_file is not None and len(names) > 1:
        raise CharRNNError("--from installs the file of one data set; name just that set.")
    registry = datasets.Registry(datasets.data_dir(data_dir))
    for name in names:
        registry.get_set(name)
    for name in names:
        if registry.present(name) and not force and source_file is None:
            err.print(f"charrnn: {name} is already in {registry.folder(name)} (--force gets it again)")
            continue
        with _DataProgress(name) as bar:
            folder = registry.get(name, source_file, bar.report)
        record = registry.manifest(name)
        checked = (
            "checksums match"
            if record["pinned"]
            else f"no checksum is pinned for {record['inputs']}, so its sha256 is recorded in {datasets.MANIFEST}"
        )
        summary = f"; {record['summary']}" if record["summary"] else ""
        err.print(f"charrnn: {name} is in {folder} ({checked}){summary}")


class _DataProgress:
    """A transient bar on stderr for one data set's download or build (bytes, or the build's own units)."""

    def __init__(self, name: str) -> None:
        self.name = name
        columns = (TextColumn("{task.description}"), BarColumn(bar_width=30), TextColumn("{task.fields[amount]}"))
        self.bar = Progress(*columns, TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal)
        self.task = self.bar.add_task(name, total=None, amount="")

    def __enter__(self) -> "_DataProgress":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def report(self, what: str, done: int, total: int | None) -> None:
        if what == "bytes":
            amount = filesize.decimal(done) + (f" of {filesize.decimal(total)}" if total else "")
        else:
            amount = f"{done:,}" + (f" of {total:,}" if total else "") + f" {what}"
        self.bar.update(self.task, description=self.name, completed=done, total=total, amount=amount)


@app.command("path")
def data_path(
    name: Annotated[str, typer.Argument(help="A data set.", show_default=False)],
    file: Annotated[str, typer.Argument(help="One of its files (default: its only file, or its folder).")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Print where a data set (or one of its files) is, for use in other commands: $(charrnn data path NAME)."""
    print(datasets.Registry(datasets.data_dir(data_dir)).path(name, file))
