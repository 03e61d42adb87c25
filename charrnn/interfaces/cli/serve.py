"""`charrnn serve`: the models of run folders and checkpoints behind an HTTP API and a page (interfaces/serve/)."""

import os
from pathlib import Path
from typing import Annotated

import typer

from charrnn.interfaces.cli.common import err
from charrnn.interfaces.serve import TOKEN_ENV, Limits, load_models, serve

DEFAULTS = Limits()


def serve_command(
    run_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--run-dir", help="A run folder to serve, by its name; give several to serve several.", show_default=False
        ),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="A checkpoint file to serve (several may be given).", show_default=False),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; any but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            help=f"Every request must send Authorization: Bearer TOKEN [default: ${TOKEN_ENV}].", show_default=False
        ),
    ] = None,
    max_body: Annotated[int, typer.Option(min=1, help="Bytes a request body may have.")] = DEFAULTS.max_body,
    max_length: Annotated[int, typer.Option(min=1, help="Characters a sample may draw.")] = DEFAULTS.max_length,
    max_inputs: Annotated[int, typer.Option(min=1, help="Texts or inputs in one request.")] = DEFAULTS.max_inputs,
    max_chars: Annotated[int, typer.Option(min=1, help="Characters of one prime, text or input.")] = DEFAULTS.max_chars,
    max_beam: Annotated[
        int, typer.Option(min=1, help="Largest beam (and n_best) a request may ask.")
    ] = DEFAULTS.max_beam,
    workers: Annotated[
        int, typer.Option(min=1, help="Requests computed at once (a sampling request is one, whatever its n).")
    ] = DEFAULTS.workers,
    queue: Annotated[
        int, typer.Option(min=0, help="Requests that may wait for a worker; beyond, 503.")
    ] = DEFAULTS.queue,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="A web page's origin allowed to call the API from a browser (e.g. https://example.org); repeatable.",
            show_default="none",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access-log line per request on stderr.")] = False,
) -> None:
    """Serve trained models over HTTP: OpenAI's completions API, charrnn's own JSON API (sample, with streaming;
    score; classify; tag; translate), Prometheus metrics and a page to try them at /. Concurrent samples of a model
    are drawn as one batch. Ctrl-C or SIGTERM stops it after the requests in flight."""
    limits = Limits(
        max_body=max_body,
        max_length=max_length,
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_beam=max_beam,
        workers=workers,
        queue=queue,
    )
    models = load_models(run_dir or [], checkpoint or [])
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    announce = lambda text: err.print(f"charrnn: {text}", markup=False)  # noqa: E731
    serve(models, host, port, token, limits, tuple(cors_origin or ()), quiet, announce)
