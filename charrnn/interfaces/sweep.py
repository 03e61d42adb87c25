"""`charrnn sweep`: many training runs with sampled settings, on Ray Tune, from one machine to a cluster.

A sweep file holds the usual config keys (the base run, which must give each trial a budget: max_time, max_steps
or epochs), and:

    search:            # the keys to vary, each with what to draw from
      hidden: [64, 128, 256]                # one of a list
      lr: {loguniform: [0.001, 0.01]}       # a float, log-uniform over [low, high)
      dropout: {uniform: [0.0, 0.3]}        # a float, uniform over [low, high)
      layers: {int: [1, 3]}                 # a whole number in [low, high], both included
    trials: 8          # how many runs
    metric: val_loss   # what to rank by (default: the validation loss); or accuracy, macro_f1, wer, ter, ...
    early_stop: true   # ASHA stops trials that fall behind at the same number of validation passes

Every trial is an ordinary charrnn run in runs/<sweep>/<trial id>/ (its checkpoints, metrics.jsonl, config.yaml), so
`charrnn sample/eval/info/plot` work on it and `charrnn train --resume` continues it. Ray is imported here only,
inside the functions that need it: it is an optional extra, `pip install 'charrnn[sweep]'`.
"""

import contextlib
import csv
import dataclasses
import logging
import math
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from charrnn.errors import CharRNNError
from charrnn.interfaces.sweep_file import Sweep, read_sweep
from charrnn.tasks import registry
from charrnn.training.config import Config


def _domain(spec: Any):
    from ray import tune

    if isinstance(spec, list):
        return tune.choice(spec)
    kind, (low, high) = next(iter(spec.items()))
    return (
        {"uniform": tune.uniform, "loguniform": tune.loguniform}[kind](low, high)
        if kind != "int"
        else tune.randint(low, high + 1)
    )


STATE = ".tune"  # Ray Tune's own record of the sweep, for --resume
STOPPED = "stopped by Ctrl-C; charrnn sweep --resume continues it"  # how a trial that Ctrl-C stopped ends


def trial_folder(trial_id: str) -> str:
    """A trial's run folder in its sweep's: trial-NNNNN, from Ray Tune's id (the same when the sweep resumes)."""
    return f"trial-{trial_id.rsplit('_', 1)[-1]}"


def _trial(sampled: dict[str, Any], base: dict[str, Any], sweep_dir: str, metric: str, control: Any) -> None:
    """One trial, run by Ray: an ordinary charrnn run in sweep_dir/<trial id>, reporting each validation pass.

    A trial stopped by Ctrl-C (through `control`) finishes its step, saves, and fails, so that `--resume` runs it
    again, and charrnn then continues it from its checkpoint."""
    import ray
    from ray import tune

    from charrnn.interfaces.api import train

    run_dir = Path(sweep_dir) / trial_folder(tune.get_context().get_trial_id())
    sampled = {k: v.item() if hasattr(v, "item") else v for k, v in sampled.items()}  # NumPy scalars from Ray
    config = Config(**{**base, **sampled, "run_dir": str(run_dir)})
    config = config.replace(save_every=config.eval_every)  # a trial stopped early keeps its last evaluation
    stop = threading.Event()
    best: list[float] = []
    node = ray.get_runtime_context().get_node_id()

    def watch() -> None:
        while not stop.is_set():
            if ray.get(control.stopping.remote()):
                stop.set()
            time.sleep(1.0)

    def on_event(event) -> None:
        """After every validation pass: its figures, the best so far, and whether the run has reached its budget."""
        if event.kind != "eval" or not event.evaluated or event.val_loss is None:
            return
        figures = {"val_loss": event.val_loss, **event.metrics}
        best.append(figures[metric])
        pick = max if registry.get(config.task).maximised(metric) else min
        finished = bool(event.stopping)
        tune.report(
            {
                **figures,
                "best": pick(best),
                "step": event.step,
                "train_seconds": event.elapsed,
                "finished": finished,
                "node": node,
                "run_dir": str(run_dir),
            }
        )

    if ray.get(control.stopping.remote()):  # started after Ctrl-C: leave it to --resume
        raise RuntimeError(STOPPED)
    threading.Thread(target=watch, daemon=True).start()
    resumed = (run_dir / "last.npz").is_file()  # the sweep was interrupted: go on from the trial's checkpoint
    try:
        run = train(run_dir if resumed else config, resume=resumed, progress=False, callback=on_event, stop=stop)
    finally:
        stop.set()  # ends the watcher
    if run.interrupted:
        raise RuntimeError(STOPPED)


def run_sweep(
    path: Path | None,
    address: str | None = None,
    cpus_per_trial: int = 1,
    resume: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> tuple[Sweep, Path, list[dict]]:
    """Run (or, with `resume`, continue) a sweep; return it, its folder and one row per trial, best first."""
    if resume is not None:
        sweep_dir = resume
        if not (sweep_dir / "sweep.yaml").is_file():
            raise CharRNNError(f"{sweep_dir} holds no sweep (no sweep.yaml); give the folder a sweep ran in.")
        sweep = read_sweep(sweep_dir / "sweep.yaml", sweep_dir.name)
    else:
        sweep = read_sweep(path)
        sweep_dir = Path("runs") / sweep.name
        _check_free(sweep_dir, sweep)
    # Ray Tune's own console output and result loggers: the display and results.csv replace them.
    os.environ.update(RAY_AIR_NEW_OUTPUT="0", RAY_DEDUP_LOGS="0")
    address = address or os.environ.get("RAY_ADDRESS")
    with _local_token(address):  # before Ray is imported: it reads the token settings then
        try:
            import ray
            from ray import tune
        except ImportError:
            raise CharRNNError(
                "charrnn sweep runs on Ray Tune; install it with: pip install 'charrnn[sweep]'"
            ) from None
        rows = _fit(ray, tune, sweep, sweep_dir, address, cpus_per_trial, resume, on_progress)
    _write_results(sweep, sweep_dir, rows)
    return sweep, sweep_dir, rows


def _fit(
    ray: Any,
    tune: Any,
    sweep: Sweep,
    sweep_dir: Path,
    address: str | None,
    cpus_per_trial: int,
    resume: Path | None,
    on_progress: Callable[[dict], None] | None,
) -> list[dict]:
    """Start or join Ray, run the trials on Ray Tune, and return one row per trial, best first."""
    _start_ray(ray, address, cpus_per_trial)
    try:
        _check_nodes_read(ray, sweep.base)
        if resume is None:  # only now, with every check passed, does the sweep write its folder
            _claim(sweep_dir, sweep)
        control = _control(ray)
        trainable = tune.with_resources(
            tune.with_parameters(
                _trial,
                base=sweep.base.to_dict(),
                sweep_dir=str(sweep_dir.resolve()),
                metric=sweep.metric,
                control=control,
            ),
            {"cpu": cpus_per_trial},
        )
        state = str((sweep_dir / STATE).resolve())
        progress = _progress(tune, sweep.trials, sweep.mode)
        if resume is not None:
            if not tune.Tuner.can_restore(state):
                raise CharRNNError(f"{sweep_dir} has no Ray Tune state to resume ({STATE}); run the sweep anew.")
            tuner = tune.Tuner.restore(state, trainable, resume_errored=True)
        else:
            scheduler = None
            if sweep.early_stop:
                scheduler = tune.schedulers.ASHAScheduler(
                    time_attr="training_iteration", grace_period=1, reduction_factor=2
                )
            tuner = tune.Tuner(
                trainable,
                param_space={k: _domain(v) for k, v in sweep.search.items()},
                tune_config=tune.TuneConfig(
                    num_samples=sweep.trials,
                    metric="best",
                    mode=sweep.mode,
                    scheduler=scheduler,  # the base config's seed draws the trials
                    search_alg=tune.search.BasicVariantGenerator(random_state=sweep.base.seed),
                ),
                run_config=tune.RunConfig(
                    name=STATE, storage_path=str(sweep_dir.resolve()), verbose=0, callbacks=[progress]
                ),
            )
        done = threading.Event()
        threading.Thread(target=_show_progress, args=(progress, on_progress, done), daemon=True).start()
        try:
            with _interrupt_trials(control):
                grid = tuner.fit()
        finally:
            done.set()
        return _rows(grid, sweep, sweep_dir)
    finally:
        ray.shutdown()


def _check_free(sweep_dir: Path, sweep: Sweep) -> None:
    """Refuse a folder that holds another sweep, or this one already started (that is --resume). This sweep's
    folder with no Ray Tune state in it never started: nothing there can be resumed, so it is free."""
    saved = sweep_dir / "sweep.yaml"
    if not saved.is_file():
        return
    if yaml.safe_load(saved.read_text(encoding="utf-8")) != sweep.source:
        raise CharRNNError(
            f"{sweep_dir} already holds a different sweep; give this one another `name:`, or remove the folder."
        )
    if (sweep_dir / STATE).exists():
        raise CharRNNError(
            f"{sweep_dir} already holds this sweep; continue it with: charrnn sweep --resume {sweep_dir}"
        )


def _claim(sweep_dir: Path, sweep: Sweep) -> None:
    """Make the sweep's folder and write the sweep into it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.yaml").write_text(
        yaml.safe_dump(sweep.source, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def _check_reachable(address: str) -> None:
    """A cluster's address must answer at once (Ray itself would retry it for minutes)."""
    host, _, port = address.rpartition(":")
    if address.startswith("ray://") or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as e:
        raise CharRNNError(
            f"could not reach the Ray cluster at {address} ({e.strerror or e}); start it with `ray start --head`, "
            "or check the address."
        ) from None


def _start_ray(ray: Any, address: str | None, cpus_per_trial: int) -> None:
    """Join the cluster at `address`, or start one in this process; BLAS in each trial uses its own CPUs only."""
    threads = str(cpus_per_trial)
    env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    options = {
        "runtime_env": {"env_vars": env},
        "log_to_driver": False,
        "include_dashboard": False,
        "logging_level": logging.ERROR,
    }
    logging.getLogger("ray").setLevel(logging.ERROR)
    with _captured_stderr() as captured:
        try:
            if address:
                _check_reachable(address)
                ray.init(address=address, **options)
            else:
                ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            said = captured()
            if "InvalidAuthToken" in said or "Unauthenticated" in said:
                raise CharRNNError(
                    f"{where} refused this machine's credentials; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the "
                    "cluster's token (`ray get-auth-token` on its head prints it), then run the sweep again."
                ) from None
            raise CharRNNError(
                f"could not reach {where} ({str(e).splitlines()[0]}); start it with `ray start`, or check the address."
            ) from None
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < cpus_per_trial:
        raise CharRNNError(f"--cpus-per-trial {cpus_per_trial} is more than the cluster has ({cpus:g} CPUs).")


@contextlib.contextmanager
def _local_token(address: str | None) -> Iterator[None]:
    """A local cluster gets a token of its own, in this process's environment while the sweep runs (its processes
    and trials inherit it), so Ray neither runs without authentication nor writes a token file into the user's
    home (~/.ray). A cluster given by address, or a token the user set, is left as it is."""
    if address or {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
        yield
        return
    before = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Callable[[], str]]:
    """Hold what is written to file descriptor 2 (Ray's C++ core logs there, a retry warning a second while it is
    refused) and yield a function that reads it; the user gets one sentence instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lambda: (held.seek(0), held.read().decode("utf-8", "replace"))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _check_nodes_read(ray: Any, base: Config) -> None:
    """Refuse early if a node of the cluster cannot read the corpus at the path the trials will use."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    paths = [*base.corpus, *([base.val_file] if base.val_file else [])]

    @ray.remote(num_cpus=0)
    def unreadable(files: list[str]) -> list[str]:
        bad = []
        for name in files:
            try:
                with open(name, "rb") as f:
                    f.read(1)
            except OSError as e:
                bad.append(f"{name} ({e.strerror or e})")
        return bad

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    checks = [
        unreadable.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(paths)
        for n in nodes
    ]
    for node, bad in zip(nodes, ray.get(checks), strict=True):
        if bad:
            raise CharRNNError(
                f"a trial on node {node.get('NodeManagerAddress')} cannot read {bad[0]}; every node reads the corpus "
                "at the same path: copy it there, or keep it in a folder all nodes share."
            )


def _control(ray: Any) -> Any:
    """An actor that tells the trials, wherever they run, that the sweep is stopping."""

    @ray.remote(num_cpus=0)
    class Control:
        def __init__(self) -> None:
            self.stop = False

        def request_stop(self) -> None:
            self.stop = True

        def stopping(self) -> bool:
            return self.stop

    return Control.remote()


class _interrupt_trials:
    """The first Ctrl-C asks every trial to finish its step, save and stop (Tune then ends the sweep); a second one
    stops at once."""

    def __init__(self, control: Any) -> None:
        self.control = control

    def __enter__(self) -> None:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self.previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum: int, frame: object) -> None:
            if self.stopping:
                raise KeyboardInterrupt
            self.stopping = True
            self.control.request_stop.remote()
            logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # the trials it stops end as errors: expected

        self.stopping = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, request_stop)

    def __exit__(self, *exc: object) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.previous)


def _progress(tune: Any, trials: int, mode: str) -> Any:
    """A Ray Tune callback that counts the trials and keeps the best so far in `state` (read by the display)."""

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.state = {
                "running": 0,
                "finished": 0,
                "stopped early": 0,
                "failed": 0,
                "best": None,
                "best_trial": None,
                "trials": trials,
            }

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self.state["running"] += 1

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            value, best = result.get("best"), self.state["best"]
            if value is not None and (best is None or (value > best if mode == "max" else value < best)):
                self.state["best"], self.state["best_trial"] = value, trial.trial_id

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.state["running"] -= 1
            self.state["finished" if (trial.last_result or {}).get("finished") else "stopped early"] += 1

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.state["running"] -= 1
            self.state["failed"] += 1

    return Progress()


def _show_progress(progress: Any, on_progress: Callable[[dict], None] | None, done: threading.Event) -> None:
    """Pass the callback's counts to the display twice a second until `done`."""
    while on_progress and not done.wait(0.5):
        on_progress(dict(progress.state))


def _rows(grid: Any, sweep: Sweep, sweep_dir: Path) -> list[dict]:
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        run_dir = Path(metrics.get("run_dir") or sweep_dir / trial_folder(metrics.get("trial_id", "")))
        if result.error is not None:
            status = "interrupted" if STOPPED in str(result.error) else "failed"
        else:
            status = "finished" if metrics.get("finished") else "stopped early"
        best = metrics.get("best")
        if best is not None and not math.isfinite(best):  # a diverged trial ranks last, not anywhere NaN sorts
            best = None
        rows.append(
            {
                "trial": run_dir.name,
                **{k: result.config.get(k) for k in sweep.search},
                sweep.metric: best,
                "steps": metrics.get("step"),
                "minutes": round(metrics.get("train_seconds", 0.0) / 60, 2),
                "status": status,
                "node": metrics.get("node"),
                "run_dir": str(run_dir),
            }
        )
    worst = -math.inf if sweep.mode == "max" else math.inf
    rows.sort(
        key=lambda r: (r[sweep.metric] if r[sweep.metric] is not None else worst) * (-1 if sweep.mode == "max" else 1)
    )
    return rows


def _write_results(sweep: Sweep, sweep_dir: Path, rows: list[dict]) -> None:
    """results.csv (every trial, best first) and best.yaml (the best trial's config, ready for charrnn train)."""
    with (sweep_dir / "results.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    done = [r for r in rows if r[sweep.metric] is not None]
    if done:
        top = done[0]
        best = dataclasses.replace(sweep.base, **{k: top[k] for k in sweep.search}, run_dir="")
        (sweep_dir / "best.yaml").write_text(
            f"# The best trial of sweep {sweep.name} ({top['trial']}, {sweep.metric} {top[sweep.metric]:.4f});\n"
            f"# train it again with: charrnn train --config {sweep_dir / 'best.yaml'}\n" + best.to_yaml(),
            encoding="utf-8",
        )
