"""The one entry point: `embcompare <command> [hydra overrides...]`."""

from __future__ import annotations

import re
import signal
import sys

USAGE = """usage: embcompare <command> [args]

commands:
  run       train and evaluate one config (Hydra overrides; -m sweeps)
  evaluate  word-similarity and analogy scores of one set of vectors (vectors=NAME_OR_PATH)
  data      fill the data directory from DATA_MIRROR or the official URLs
  report    tables, figures and report of an experiment (experiment=<name>)
  pretrain  train word2vec in Keras or gensim on a corpus (method=keras_sgns corpus=imdb_unsup)
  tune      tune each setup on dev, then run fresh seeds default and tuned
            (experiment=learning_curve_tuned)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    handler = COMMANDS.get(command)
    if handler is None:
        print(f"embcompare: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from embcompare.errors import EmbcompareError

    _stop_on_sigterm()
    try:
        if argv is None:  # the process's own command line; a call from Python keeps its stderr
            _quiet_unless_verbose(rest)
        return handler(rest)
    except EmbcompareError as error:
        print(f"embcompare: error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        return _interrupted(stop)


def _quiet_unless_verbose(args: list[str]) -> None:
    from embcompare import quiet

    if not quiet.parse_verbose(args):
        quiet.quiet_startup()


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that joblib stops (and kills) its workers and
    no run is left half-recorded: metrics.json is written last, atomically."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _stop_on_sigterm() -> None:
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def _interrupted(stop: BaseException) -> int:
    from embcompare.training import progress as sweep

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this message
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    finished = sweep.finished_since_start() or 0
    print(
        f"interrupted: {finished} runs finished, rerun the same command to continue",
        file=sys.stderr,
        flush=True,
    )
    return 143 if isinstance(stop, Terminated) else 130


def _data(rest: list[str]) -> int:
    from embcompare.data import fetch

    return fetch.main([a for a in rest if not a.startswith("verbose=")])


def _run(rest: list[str]) -> int:
    from embcompare import run, validation
    from embcompare.errors import EmbcompareError
    from embcompare.training import progress as sweep

    for name in (a.split("=", 1)[1] for a in rest if a.split("=", 1)[0] in ("name", "+name")):
        validation.check_name("name", name)  # before Hydra makes a directory of it
    for names in (a.split("=", 1)[1] for a in rest if a.split("=", 1)[0] == "logger"):
        for name in names.split(","):  # `-m logger=csv,mlflow` too
            validation.check_logger_installed(name)  # before Hydra makes run directories
    problem = _unwritable_results_dir(rest)
    if problem:
        raise EmbcompareError(problem)
    # argparse cannot take Hydra overrides on both sides of -m, so -m goes first
    multirun = [a for a in rest if a in ("-m", "--multirun")]
    sys.argv = [f"{sys.argv[0]} run", *multirun, *(a for a in rest if a not in multirun)]
    if multirun and not _picks_a_sweeper(rest):
        # the basic sweeper, checked before launching in 2 s rather than 15 (hydra_plugins/)
        sys.argv.append("hydra/sweeper=checked_once")
    run.main()
    outcome = sweep.CURRENT["outcome"]
    return 1 if multirun and outcome is not None and outcome.failed else 0


def _picks_a_sweeper(rest: list[str]) -> bool:
    """Whether the command line, or an experiment it names, chooses a sweeper itself (directly
    or through a search space): then that choice stands."""
    from embcompare.config import CONF_DIR

    chosen = dict(a.split("=", 1) for a in rest if "=" in a)
    keys = {key.lstrip("+~") for key in chosen}
    if keys & {"hydra/sweeper", "hparams_search"}:
        return True
    experiment = CONF_DIR / "experiment" / f"{chosen.get('experiment', '')}.yaml"
    text = experiment.read_text() if experiment.is_file() else ""
    return (
        re.search(r"^\s*-\s*override\s+/?(hydra/sweeper|hparams_search)\s*:", text, re.M)
        is not None
    )


def _report(rest: list[str]) -> int:
    from embcompare.reporting import report

    return report.main(rest)


def _pretrain(rest: list[str]) -> int:
    from embcompare.vectors.pretraining import command

    return command.main(rest)


def _tune(rest: list[str]) -> int:
    from embcompare import tuning

    problem = _unwritable_results_dir(rest)
    if problem:
        from embcompare.errors import EmbcompareError

        raise EmbcompareError(problem)
    return tuning.main(rest)


def _evaluate(rest: list[str]) -> int:
    from embcompare.analysis import semantic

    sys.argv = [f"{sys.argv[0]} evaluate", *rest]
    semantic.main()
    return 0


COMMANDS = {
    "run": _run,
    "evaluate": _evaluate,
    "data": _data,
    "report": _report,
    "pretrain": _pretrain,
    "tune": _tune,
}


def _unwritable_results_dir(args: list[str]) -> str | None:
    """Check before Hydra starts, whose own failure here is a stack trace."""
    import os
    import tempfile
    from pathlib import Path

    given = [a.split("=", 1)[1] for a in args if a.startswith("paths.results_dir=")]
    results_dir = Path(given[-1] if given else "results")
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=results_dir) as probe:
            probe.write(bytes(2**20))  # a full disk still lets an empty file be made
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        return f"paths.results_dir={results_dir}: cannot write there ({error.strerror})"
    return None


if __name__ == "__main__":
    sys.exit(main())
