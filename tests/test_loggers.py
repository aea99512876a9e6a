"""Run loggers (conf/logger/): what steps.csv, TensorBoard and MLflow record equals the run's own
files; a logger changes neither a run's key nor its results; a missing MLflow is one error line
before anything runs; a logger that fails costs the run nothing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, TINY_RUN, mirror_path

# Three dev checks over a few steps each; without the semantic evaluation unless a test reads
# what it writes (neighbours.csv, semantic.json).
CHECKED = ["train.n=120", "train.epochs=3", "train.eval_every_steps=1"]
NO_SEMANTIC = ["semantic.enabled=false"]
# mlflow 3.x on SQLAlchemy 2.1 warns about its own ORM options; nothing here can act on it
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
MISSING_MLFLOW = "embcompare: error: logger=mlflow needs mlflow: pip install -e '.[mlflow]'"


def execute(cfg_run, run_dir: Path, *overrides: str) -> dict:
    from embcompare import run

    run_dir.mkdir(parents=True)
    return run.execute(cfg_run(*CHECKED, *overrides), run_dir)


def history_of(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {"steps": int(row["steps"]), "train_loss": float(row["train_loss"]),
         "dev_accuracy": float(row["dev_accuracy"])}
        for row in rows
    ]  # fmt: skip


def mean_loss_per_check(step_losses: list[tuple[int, float]], history: list[dict]) -> list[float]:
    """The mean step loss since the previous check: what history.csv's train_loss holds."""
    means, first = [], 1
    for check in history:
        losses = [loss for step, loss in step_losses if first <= step <= check["steps"]]
        means.append(sum(losses) / len(losses))
        first = check["steps"] + 1
    return means


def without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if "seconds" not in k}


def test_logger_changes_neither_run_key_nor_config_record():
    from embcompare.config import compose, config_record, run_key

    def key_and_record(*overrides: str) -> tuple[str, dict]:
        cfg = compose("config", list(overrides))
        OmegaConf.set_struct(cfg, False)
        return run_key(_root_=cfg), config_record(cfg)

    unlogged = key_and_record("logger=none")
    assert not [column for column in unlogged[1] if column.startswith("cfg.logger")]
    for name in ("csv", "tensorboard", "mlflow"):
        assert key_and_record(f"logger={name}") == unlogged, name
    server = ["logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:5000"]
    assert key_and_record(*server) == unlogged


def test_mlflow_store_defaults_to_a_sqlite_file_in_the_results_dir(cfg_run, tmp_path):
    cfg = cfg_run("logger=mlflow", "name=demo")
    assert cfg.logger.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    assert cfg.logger.mlflow.experiment == "demo"


def test_csv_logger_writes_every_step_and_changes_no_result(cfg_run, tmp_path):
    unlogged = execute(cfg_run, tmp_path / "none", *NO_SEMANTIC)
    logged = execute(cfg_run, tmp_path / "csv", "logger=csv", *NO_SEMANTIC)
    assert without_timings(logged) == without_timings(unlogged)

    with open(tmp_path / "csv" / "steps.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["step", "epoch", "loss"]
    assert [int(row["step"]) for row in rows] == list(range(1, logged["steps"] + 1))
    assert {int(row["epoch"]) for row in rows} == {1, 2, 3} and logged["epochs"] == 3
    history = history_of(tmp_path / "csv")
    step_losses = [(int(row["step"]), float(row["loss"])) for row in rows]
    assert mean_loss_per_check(step_losses, history) == pytest.approx(
        [check["train_loss"] for check in history], rel=1e-12
    )


def read_events(logdir: Path) -> dict[str, list[tuple[int, object, str]]]:
    """tag -> (step, value, plugin) of every summary in the event files under `logdir`."""
    import tensorflow as tf

    found: dict[str, list] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                content = tf.make_ndarray(value.tensor).item()
                plugin = value.metadata.plugin_data.plugin_name
                found.setdefault(value.tag, []).append((event.step, content, plugin))
    return found


def test_tensorboard_events_hold_steps_checks_final_metrics_and_tables(cfg_run, tmp_path):
    metrics = execute(cfg_run, tmp_path / "run", "logger=tensorboard")
    events = read_events(tmp_path / "run" / "tensorboard")

    losses = events["train/loss"]
    assert [step for step, _, _ in losses] == list(range(1, metrics["steps"] + 1))
    assert {plugin for _, _, plugin in losses} == {"scalars"}
    history = history_of(tmp_path / "run")
    step_losses = [(step, value) for step, value, _ in losses]
    assert mean_loss_per_check(step_losses, history) == pytest.approx(
        [check["train_loss"] for check in history],
        rel=1e-6,  # float32 summaries
    )
    assert [(step, value) for step, value, _ in events["dev/accuracy"]] == [
        (check["steps"], pytest.approx(check["dev_accuracy"], rel=1e-6)) for check in history
    ]
    ((step, test_accuracy, _),) = events["final/test_accuracy"]
    assert step == metrics["steps"] and test_accuracy == pytest.approx(metrics["test_accuracy"])
    assert events["final/vocab_size"][0][1] == metrics["vocab_size"]
    assert "final/dataset" not in events and "final/cfg.seed" not in events  # text, not numbers
    assert "final/seed" not in events and "final/n" not in events  # they name the run

    ((_, config, plugin),) = events["config"]
    assert plugin == "text" and "| dataset.name | mr |" in config.decode()
    assert "| train.n | 120 |" in config.decode()
    ((_, neighbours, _),) = events["neighbours"]
    rows = neighbours.decode().splitlines()
    assert rows[0] == "| channel | stage | word | nearest neighbours |"
    assert any(row.startswith("| channel_0 | after | good | ") for row in rows)


def test_tensorboard_logdir_option_and_a_rerun_replace_earlier_events(tmp_path):
    from embcompare.config import compose
    from embcompare.reporting.loggers import LOGGERS

    cfg = compose("config", ["logger=tensorboard", f"logger.tensorboard.logdir={tmp_path / 'tb'}"])
    run_dir = tmp_path / "mr-static-n60-s1-0123456789"
    for attempt_losses in ([0.9, 0.8], [0.7]):
        logger = LOGGERS["tensorboard"](cfg.logger.tensorboard, run_dir)
        logger.start(cfg)
        for step, loss in enumerate(attempt_losses, start=1):
            logger.log_step(step, 1, loss)
        logger.finish(None)  # a failed attempt: steps kept, no final metrics
    events = read_events(tmp_path / "tb" / run_dir.name)
    assert [(step, value) for step, value, _ in events["train/loss"]] == [(1, pytest.approx(0.7))]
    assert not run_dir.exists()  # the logdir option moves the events out of the run directory


@pytest.mark.slow  # about 12 s: MLflow's import and schema, and a run
def test_mlflow_records_params_step_metrics_final_metrics_and_artifacts(cfg_run, tmp_path):
    from mlflow.tracking import MlflowClient

    from embcompare.reporting.loggers import flat_config

    run_dir = tmp_path / "mr-nonstatic-n120-s1-0123456789"
    metrics = execute(cfg_run, run_dir, "logger=mlflow", *NO_SEMANTIC)
    store = tmp_path / "results" / "mlflow.db"  # cfg_run's results dir
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("adhoc")
    assert experiment.artifact_location == (tmp_path / "results" / "mlruns").as_uri()
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run_dir.name and found.info.status == "FINISHED"

    params = found.data.params
    assert params["dataset.name"] == "mr" and params["model.name"] == "bow"
    assert params["train.n"] == "120" and params["semantic.enabled"] == "false"
    assert params["setup.channels.0.trainable"] == "true"
    assert params == flat_config(cfg_run(*CHECKED, "logger=mlflow", *NO_SEMANTIC))

    run_id, history = found.info.run_id, history_of(run_dir)
    losses = client.get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in losses) == list(range(1, metrics["steps"] + 1))
    assert mean_loss_per_check([(m.step, m.value) for m in losses], history) == pytest.approx(
        [check["train_loss"] for check in history], rel=1e-12
    )
    checks = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "dev/accuracy"))
    assert checks == [(check["steps"], check["dev_accuracy"]) for check in history]
    assert found.data.metrics["final/test_accuracy"] == metrics["test_accuracy"]
    assert found.data.metrics["final/n_train"] == metrics["n_train"] == 120

    artifacts = {artifact.path for artifact in client.list_artifacts(run_id)}
    # without the semantic evaluation the run writes no semantic.json or neighbours.csv
    assert artifacts == {"metrics.json", "history.csv", "training_curve.png"}
    local = Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path)))
    assert json.loads(local.read_text()) == metrics


def test_mlflow_params_are_cut_to_mlflow_length_limit(tmp_path):
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    from embcompare.reporting.loggers import LOGGERS

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = {"tracking_uri": store, "experiment": "limits", "artifact_location": None}
    logger = LOGGERS["mlflow"](options, tmp_path / "run")
    logger.start(OmegaConf.create({"long": "x" * (MAX_PARAM_VAL_LENGTH + 10), "odd key!": 1}))
    logger.finish(None)
    (found,) = MlflowClient(tracking_uri=store).search_runs(
        [MlflowClient(tracking_uri=store).get_experiment_by_name("limits").experiment_id]
    )
    assert found.data.params == {"long": "x" * MAX_PARAM_VAL_LENGTH, "odd key_": "1"}
    assert found.info.status == "FAILED"


def test_missing_mlflow_stops_the_cli_with_one_line_before_any_run(monkeypatch, capsys, tmp_path):
    from embcompare import cli

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails, as when absent
    results = tmp_path / "results"
    for sweep in ([], ["-m"]):
        code = cli.main(
            ["run", *sweep, "logger=csv,mlflow" if sweep else "logger=mlflow", *TINY_RUN]
            + [f"paths.results_dir={results}"]
        )
        assert code == 2
        assert capsys.readouterr().err.splitlines() == [MISSING_MLFLOW]
        assert not results.exists()  # no run directory, let alone metrics


def test_missing_mlflow_fails_the_config_check_before_training(monkeypatch, cfg_run):
    from embcompare import validation
    from embcompare.errors import EmbcompareError

    monkeypatch.setitem(sys.modules, "mlflow", None)
    validation.check_config(cfg_run("logger=tensorboard"))  # needs nothing beyond TensorFlow
    with pytest.raises(EmbcompareError) as raised:
        validation.check_config(cfg_run("logger=mlflow"))
    assert f"embcompare: error: {raised.value}" == MISSING_MLFLOW
    with pytest.raises(EmbcompareError, match="logger.name='wandb' must be one of none, csv"):
        validation.check_config(cfg_run("logger=csv", "logger.name=wandb"))


@pytest.mark.slow
def test_missing_mlflow_in_a_real_process_is_one_line_and_exit_2(tmp_path, data_dir):
    hide_mlflow = (
        "import sys; sys.modules['mlflow'] = None; sys.argv = ['embcompare', *sys.argv[1:]]; "
        "from embcompare.cli import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_mlflow, "run", "logger=mlflow", *TINY_RUN]
        + [f"paths.data_dir={data_dir}", f"paths.results_dir={tmp_path / 'results'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [MISSING_MLFLOW] and done.stdout == ""
    assert not list(tmp_path.glob("**/metrics.json")) and not (tmp_path / "results").exists()


class FailingCsvLogger:
    """steps.csv's logger, failing in one chosen method."""

    @staticmethod
    def failing_in(method: str):
        from embcompare.reporting.loggers import CsvLogger

        def fail(self, *args):
            raise RuntimeError("the logging disk is full")

        return type("FailingCsvLogger", (CsvLogger,), {method: fail})


@pytest.mark.parametrize("method", ["start", "log_step", "finish"])
def test_a_failing_logger_leaves_a_finished_run_and_logger_error(
    monkeypatch, cfg_run, tmp_path, caplog, method
):
    from embcompare.reporting import loggers

    monkeypatch.setitem(loggers.LOGGERS, "csv", FailingCsvLogger.failing_in(method))
    metrics = execute(cfg_run, tmp_path / "run", "logger=csv", *NO_SEMANTIC)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    assert metrics["steps"] > 0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    error = (tmp_path / "run" / "logger_error.txt").read_text().splitlines()
    assert error[0] == f"logger=csv failed in {method}: RuntimeError: the logging disk is full"
    assert "Traceback (most recent call last):" in error
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [message for message in warned if "failed in" in message] == [
        f"{error[0]}; the run goes on without it ({tmp_path / 'run' / 'logger_error.txt'})"
    ]  # once: after its failure the logger is left out


@pytest.mark.slow
def test_each_joblib_worker_logs_its_own_runs_to_one_mlflow_store(tmp_path, data_dir):
    from mlflow.tracking import MlflowClient

    results = tmp_path / "results"
    sweep = subprocess.run(
        [sys.executable, "-m", "embcompare.cli", "run", "-m", "hydra/launcher=joblib"]
        + ["hydra.launcher.n_jobs=2", "seed=1,2", "logger=mlflow", "name=logged", *TINY_RUN]
        + [*NO_SEMANTIC, f"paths.data_dir={data_dir}", f"paths.mirror={mirror_path()}"]
        + [f"paths.results_dir={results}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    finished = {
        path.parent.name: json.loads(path.read_text())
        for path in (results / "logged" / "runs").glob("*/metrics.json")
    }
    assert len(finished) == 2
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    assert {run.info.run_name for run in runs} == set(finished)
    for run in runs:
        metrics = finished[run.info.run_name]
        assert run.info.status == "FINISHED" and run.data.params["seed"] == str(metrics["seed"])
        assert run.data.metrics["final/test_accuracy"] == metrics["test_accuracy"]
