"""Run loggers (`logger=csv|tensorboard|mlflow`, conf/logger/): each run shown, while it trains
and when it ends, somewhere it can be browsed beside the other runs.

A logger is display only: config.py keeps `logger` out of the run key and the config record,
and a logger that fails is dropped for the rest of its run (GuardedLogger), which still
finishes and writes metrics.json. Every logger names what it records alike: `train/loss` at
each optimizer step, `dev/accuracy` at each dev check, `final/<metric>` for metrics.json's
numbers at the last step.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import re
import tempfile
import time
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from embcompare.config import flatten

log = logging.getLogger("embcompare")

STEP_LOSS, DEV_ACCURACY, FINAL = "train/loss", "dev/accuracy", "final/"
ERROR_FILE = "logger_error.txt"
STEPS_FILE = "steps.csv"
# What a finished run wrote that MLflow keeps as artifacts (semantic evaluation's only when on).
ARTIFACTS = ("metrics.json", "semantic.json", "history.csv", "neighbours.csv")


class RunLogger:
    """The interface, doing nothing: logger=none. One logger serves one run directory: `start`
    with the run's config before its stages, `log_step` and `log_check` from the training loop
    (training.loop.TrainingObserver), `finish` with the metrics, or None when the run failed."""

    name = "none"
    needs: tuple[str, ...] = ()  # modules it imports, checked before a run starts (validation)
    extra = ""  # the optional-dependencies extra that installs them

    def __init__(self, options: DictConfig | dict, run_dir: Path) -> None:
        self.options, self.run_dir = options, Path(run_dir)

    def start(self, cfg: DictConfig) -> None:
        pass

    def log_step(self, step: int, epoch: int, loss: float) -> None:
        pass

    def log_check(self, check: dict) -> None:
        pass

    def finish(self, metrics: dict | None) -> None:
        pass


class CsvLogger(RunLogger):
    """steps.csv in the run directory: step, epoch and loss of every optimizer step, flushed at
    each dev check so that a run in progress can be followed."""

    name = "csv"

    def start(self, cfg: DictConfig) -> None:
        self._file = open(self.run_dir / STEPS_FILE, "w", newline="")  # noqa: SIM115 -- closed in finish
        self._rows = csv.writer(self._file)
        self._rows.writerow(["step", "epoch", "loss"])

    def log_step(self, step: int, epoch: int, loss: float) -> None:
        self._rows.writerow([step, epoch, loss])

    def log_check(self, check: dict) -> None:
        self._file.flush()

    def finish(self, metrics: dict | None) -> None:
        self._file.close()


class TensorBoardLogger(RunLogger):
    """Event files, by default in the run directory's tensorboard/, so that
    `tensorboard --logdir results/<name>/runs` lists every run by its run key.

    Written with TensorFlow's own tf.summary.write: tf.summary.scalar and .text are TensorBoard's
    code, missing unless the tensorboard package is installed, which only browsing needs. The
    summaries carry the plugin names that those functions give them, so TensorBoard shows
    them as scalars and text. Step losses wait for the next dev check and are written in one
    graph call there: written one by one, eagerly, they cost about 0.5 ms each, more than a
    bag-of-embeddings training step here."""

    name = "tensorboard"

    def start(self, cfg: DictConfig) -> None:
        import tensorflow as tf

        logdir = self._logdir()
        logdir.mkdir(parents=True, exist_ok=True)
        for stale in logdir.glob("events.out.tfevents.*"):  # an earlier, failed attempt's
            stale.unlink()
        self._writer = tf.summary.create_file_writer(str(logdir))
        self._scalars, self._texts = _plugin("scalars"), _plugin("text")
        self._write_losses = _series_writer(STEP_LOSS, self._scalars)
        self._losses: list[tuple[int, float]] = []
        self._text("config", markdown_table(["setting", "value"], flat_config(cfg).items()))

    def _logdir(self) -> Path:
        chosen = self.options.get("logdir")
        return self.run_dir / "tensorboard" if chosen is None else Path(chosen) / self.run_dir.name

    def log_step(self, step: int, epoch: int, loss: float) -> None:
        self._losses.append((step, loss))

    def log_check(self, check: dict) -> None:
        self._flush_losses()
        self._scalar(DEV_ACCURACY, check["dev_accuracy"], check["steps"])
        self._writer.flush()

    def _flush_losses(self) -> None:
        import tensorflow as tf

        if self._losses:
            steps, losses = zip(*self._losses, strict=True)
            with self._writer.as_default():
                self._write_losses(tf.constant(steps, tf.int64), tf.constant(losses, tf.float32))
            self._losses = []

    def finish(self, metrics: dict | None) -> None:
        self._flush_losses()
        if metrics is not None:
            for name, value in numeric_metrics(metrics).items():
                self._scalar(FINAL + name, value, int(metrics["steps"]))
            neighbours = self.run_dir / "neighbours.csv"
            if neighbours.is_file():
                self._text("neighbours", neighbours_table(neighbours))
        self._writer.close()

    def _scalar(self, tag: str, value: float, step: int) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.write(tag, tf.constant(value, tf.float32), step, self._scalars)

    def _text(self, tag: str, markdown: str) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.write(tag, tf.constant(markdown), 0, self._texts)


def _series_writer(tag: str, metadata):
    """A graph that writes values[i] at steps[i] under `tag` to the default summary writer."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def write(steps, values):
        for i in tf.range(tf.size(values)):
            tf.summary.write(tag, values[i], steps[i], metadata)

    return write


def _plugin(name: str):
    """The summary metadata that names the TensorBoard plugin showing a summary."""
    import tensorflow as tf

    metadata = tf.compat.v1.SummaryMetadata
    return metadata(plugin_data=metadata.PluginData(plugin_name=name))


class MlflowLogger(RunLogger):
    """One MLflow run per embcompare run, named by its run key: the config as params, step loss
    and dev accuracy by step, final metrics, and the run's files and a training-curve figure as
    artifacts. Step metrics wait in memory and go in one batch per dev check, since a write to
    the SQLite store costs milliseconds."""

    name = "mlflow"
    # mlflow-skinny leaves out the SQL store's own needs: SQLAlchemy, and alembic for its schema
    needs = ("mlflow", "sqlalchemy", "alembic")
    extra = "mlflow"

    def start(self, cfg: DictConfig) -> None:
        from mlflow.tracking import MlflowClient

        uri = str(self.options["tracking_uri"])
        with _store_lock(uri):  # parallel sweep workers must not make the SQLite schema twice
            self._client = MlflowClient(tracking_uri=uri)
            experiment_id = self._experiment_id(uri)
        run = self._client.create_run(
            experiment_id,
            run_name=self.run_dir.name,
            tags={"embcompare.run_dir": str(self.run_dir.absolute())},
        )
        self._run_id = run.info.run_id
        self._pending: list[tuple[str, float, int, int]] = []  # (key, value, time in ms, step)
        self._losses: list[tuple[int, float]] = []
        self._checks: list[tuple[int, float]] = []
        self._log_params(flat_config(cfg))

    def _experiment_id(self, uri: str) -> str:
        from mlflow.exceptions import MlflowException

        name = str(self.options["experiment"])
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(name, artifact_location=self._artifacts(uri))
        except MlflowException:  # another process made it meanwhile (a server has no lock)
            return self._client.get_experiment_by_name(name).experiment_id

    def _artifacts(self, uri: str) -> str | None:
        """Where a new experiment keeps artifacts: as set, else mlruns/ beside a SQLite file
        (MLflow's default is ./mlruns in whatever directory the run was started from)."""
        chosen = self.options.get("artifact_location")
        if chosen is not None:
            return str(chosen)
        database = _sqlite_file(uri)
        return (database.absolute().parent / "mlruns").as_uri() if database else None

    def _log_params(self, flat: dict[str, str]) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        params = [Param(mlflow_key(k), v[:MAX_PARAM_VAL_LENGTH]) for k, v in flat.items()]
        for batch in _batches(params, MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(self._run_id, params=batch)

    def log_step(self, step: int, epoch: int, loss: float) -> None:
        self._losses.append((step, loss))
        self._pending.append((STEP_LOSS, loss, _now_ms(), step))

    def log_check(self, check: dict) -> None:
        self._checks.append((check["steps"], check["dev_accuracy"]))
        self._pending.append((DEV_ACCURACY, check["dev_accuracy"], _now_ms(), check["steps"]))
        self._flush()

    def _flush(self) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        metrics = [Metric(*pending) for pending in self._pending]
        for batch in _batches(metrics, MAX_METRICS_PER_BATCH):
            self._client.log_batch(self._run_id, metrics=batch)
        self._pending = []

    def finish(self, metrics: dict | None) -> None:
        if metrics is None:
            self._flush()
            self._client.set_terminated(self._run_id, "FAILED")
            return
        now, last_step = _now_ms(), int(metrics["steps"])
        for name, value in numeric_metrics(metrics).items():
            self._pending.append((mlflow_key(FINAL + name), value, now, last_step))
        self._flush()
        for name in ARTIFACTS:
            if (self.run_dir / name).is_file():
                self._client.log_artifact(self._run_id, str(self.run_dir / name))
        self._log_figure()
        self._client.set_terminated(self._run_id, "FINISHED")

    def _log_figure(self) -> None:
        from embcompare.reporting import plot

        with tempfile.TemporaryDirectory(prefix="embcompare-curve-") as scratch:
            figure = plot.training_curve(
                self._losses, self._checks, Path(scratch), title=self.run_dir.name
            )
            self._client.log_artifact(self._run_id, str(figure))


LOGGERS: dict[str, type[RunLogger]] = {
    logger.name: logger for logger in (RunLogger, CsvLogger, TensorBoardLogger, MlflowLogger)
}


class GuardedLogger:
    """A run's logger whose failure never costs the run: its first error is logged as a warning
    and written to logger_error.txt in the run directory, and the logger is left out from then
    on; training and metrics.json go on as without a logger."""

    def __init__(self, logger: RunLogger) -> None:
        self._logger, self._failed = logger, False

    def start(self, cfg: DictConfig) -> None:
        (self._logger.run_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier attempt's
        self._call("start", cfg)

    def log_step(self, step: int, epoch: int, loss: float) -> None:
        self._call("log_step", step, epoch, loss)

    def log_check(self, check: dict) -> None:
        self._call("log_check", check)

    def finish(self, metrics: dict | None) -> None:
        self._call("finish", metrics)

    def _call(self, method: str, *args) -> None:
        if self._failed:
            return
        try:
            getattr(self._logger, method)(*args)
        except Exception as error:
            self._failed = True
            self._record(method, error)

    def _record(self, method: str, error: Exception) -> None:
        where = self._logger.run_dir / ERROR_FILE
        summary = f"logger={self._logger.name} failed in {method}: {type(error).__name__}: {error}"
        log.warning("%s; the run goes on without it (%s)", summary, where)
        try:
            where.write_text(f"{summary}\n\n{''.join(traceback.format_exception(error))}")
        except OSError:
            log.warning("could not write %s", where)


def open_logger(settings: DictConfig, run_dir: Path) -> GuardedLogger:
    """The logger that `settings` (a config's `logger` node) names, for one run directory; its
    own options are the node's entry of the same name (logger.mlflow.tracking_uri ...)."""
    name = str(settings["name"])
    return GuardedLogger(LOGGERS[name](settings.get(name) or {}, run_dir))


def flat_config(cfg: DictConfig) -> dict[str, str]:
    """The run's resolved config by dotted key, values as text (JSON for all but strings)."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    tree.pop("hydra", None)
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in flatten(tree).items()
    }


# metrics.json's numbers that name the run rather than measure it (n is 'all' or a number)
RUN_LABELS = ("seed", "n")


def numeric_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json's measured numbers: not its labels, flags, missing values or config record."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and name not in RUN_LABELS
    }


def markdown_table(header: list[str], rows) -> str:
    """Rows as a Markdown table, which TensorBoard's text tab renders."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"| {' | '.join(header)} |", "|" + " --- |" * len(header)]
    lines += [f"| {' | '.join(cell(v) for v in row)} |" for row in rows]
    return "\n".join(lines)


def neighbours_table(path: Path) -> str:
    """neighbours.csv (a row per neighbour) as one row per channel, stage and probe word."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["channel"], row["stage"], row["word"])
            grouped.setdefault(key, []).append(f"{row['neighbour']} ({float(row['cosine']):.2f})")
    rows = [(*key, ", ".join(found)) for key, found in grouped.items()]
    return markdown_table(["channel", "stage", "word", "nearest neighbours"], rows)


def mlflow_key(name: str) -> str:
    """A metric or param name MLflow accepts: letters, digits and _ - . / space : only."""
    return re.sub(r"[^\w\-./ :]", "_", name)


def _sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


def _store_lock(uri: str):
    """An exclusive lock beside a SQLite store's file (MLflow creates its schema on first use,
    and two processes doing so at once fail); nothing for a server."""
    from filelock import FileLock

    database = _sqlite_file(uri)
    if database is None:
        return contextlib.nullcontext()
    return FileLock(f"{database}.lock")


def _batches(items: list, size: int) -> list[list]:
    """`items` cut into lists of at most `size`: MLflow's limit on entities per request."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def _now_ms() -> int:
    return int(time.time() * 1000)
