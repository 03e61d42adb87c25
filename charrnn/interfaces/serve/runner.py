"""Starting and stopping `charrnn serve`: the models to serve, the address rule, and uvicorn."""

import ipaddress
import signal
from collections.abc import Callable
from pathlib import Path

from charrnn.errors import CharRNNError
from charrnn.tasks.model import Model
from charrnn.training.checkpoint import find_checkpoint, open_model

from .limits import Limits

TOKEN_ENV = "CHARRNN_TOKEN"


def need_server() -> None:
    """FastAPI, uvicorn and prometheus-client, or the sentence that says how to install them."""
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CharRNNError(
            "charrnn serve needs FastAPI, uvicorn and prometheus-client; install them with: "
            "pip install 'charrnn[serve]'"
        ) from None


def load_models(run_dirs: list[Path], checkpoints: list[Path]) -> dict[str, Model]:
    """The models to serve by name: a run folder's name (a checkpoint's: its folder's, or its own stem where that
    is taken), each a name of its own."""
    found = [(Path(d).name, find_checkpoint(run_dir=Path(d))) for d in run_dirs]
    for path in map(Path, checkpoints):
        name = path.parent.name if path.name == "last.npz" and path.parent.name else path.stem
        found.append((name, find_checkpoint(checkpoint=path)))
    if not found:
        raise CharRNNError(
            "give the models to serve with --run-dir FOLDER or --checkpoint FILE (several may be given)."
        )
    models: dict[str, Model] = {}
    for name, path in found:
        if name in models:
            raise CharRNNError(
                f"two models would be served as {name!r}; serve runs whose folders have different names."
            )
        models[name] = open_model(path)
    return models


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    models: dict[str, Model],
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    limits: Limits = Limits(),
    cors_origins: tuple[str, ...] = (),
    quiet: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve `models` until Ctrl-C or SIGTERM, which stop taking requests, finish those in flight and return."""
    need_server()
    import uvicorn

    from charrnn.interfaces.serve.app import Server

    if not is_loopback(host) and not token:
        raise CharRNNError(
            f"--host {host} lets other machines reach the server; give it a --token (or {TOKEN_ENV}) that every "
            "request must send, or serve on 127.0.0.1."
        )
    server = Server(models, limits, token, cors_origins, quiet)
    config = uvicorn.Config(
        server.app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=10, limit_concurrency=None
    )
    running = uvicorn.Server(config)
    where = f"[{host}]" if ":" in host else host
    names = ", ".join(f"{name} ({model.task})" for name, model in models.items())
    announce(f"serving {names} at http://{where}:{port}/ (Ctrl-C stops)")
    # uvicorn drains on SIGINT/SIGTERM, then raises the signal again for the handlers it found: these take it, so
    # the command ends with exit code 0 instead of a KeyboardInterrupt or death by SIGTERM.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        running.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        if running.started:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
    if running.started:
        announce("stopped")
    else:
        raise CharRNNError(
            f"could not listen on {host}:{port}; is another server using that port? Choose another --port."
        )
