"""The one entry point: `embcompare <command> [hydra overrides...]`."""

from __future__ import annotations

import sys

USAGE = """usage: embcompare <command> [args]

commands:
  run       train and evaluate one config (Hydra overrides; -m sweeps)
  evaluate  word-similarity and analogy scores of one set of vectors (vectors=NAME_OR_PATH)
  data      fill the data directory from DATA_MIRROR or the official URLs
  report    tables, figures and report of an experiment (experiment=<name>)
  pretrain  train word2vec in Keras or gensim on a corpus (method=keras_sgns corpus=imdb_unsup)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "data":
        from embcompare import fetch

        return fetch.main(rest)
    if command == "run":
        from embcompare import run

        problem = _unwritable_results_dir(rest)
        if problem:
            print(f"embcompare: error: {problem}", file=sys.stderr)
            return 2
        # argparse cannot take Hydra overrides on both sides of -m, so flags go first
        flags = [a for a in rest if a.startswith("-")]
        sys.argv = [f"{sys.argv[0]} run", *flags, *(a for a in rest if not a.startswith("-"))]
        run.main()
        return 0
    if command == "report":
        from embcompare import report
        from embcompare.errors import EmbcompareError

        try:
            return report.main(rest)
        except EmbcompareError as error:
            print(f"embcompare: error: {error}", file=sys.stderr)
            return 2
    if command == "pretrain":
        from embcompare import pretrain
        from embcompare.errors import EmbcompareError

        try:
            return pretrain.main(rest)
        except EmbcompareError as error:
            print(f"embcompare: error: {error}", file=sys.stderr)
            return 2
    if command == "evaluate":
        from embcompare import semantic

        sys.argv = [f"{sys.argv[0]} evaluate", *rest]
        semantic.main()
        return 0
    print(f"embcompare: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def _unwritable_results_dir(args: list[str]) -> str | None:
    """Check before Hydra starts, whose own failure here is a stack trace."""
    import tempfile
    from pathlib import Path

    given = [a.split("=", 1)[1] for a in args if a.startswith("paths.results_dir=")]
    results_dir = Path(given[-1] if given else "results")
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=results_dir):
            pass
    except OSError as error:
        return f"paths.results_dir={results_dir}: cannot write there ({error.strerror})"
    return None


if __name__ == "__main__":
    sys.exit(main())
