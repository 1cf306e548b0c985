"""The command line: one function per command, each one call into the API.

`main(argv) -> int` returns the exit code: 0 done, 1 a check found a regression, 2 bad input or
usage (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from clipaudit.errors import ClipauditError

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
DEMO_TAXONOMIES = ("fairface_demographics", "clip_denigration")


class UsageError(ClipauditError):
    """Bad command-line usage (argparse's complaints, as one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage and exit itself
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        return arguments.command(arguments)
    except ClipauditError as error:
        print(f"clipaudit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("clipaudit: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    from clipaudit import __version__

    parser = _Parser(prog="clipaudit", description="Fairness and bias audits for CLIP-style zero-shot classifiers.")
    parser.add_argument("--version", action="version", version=f"clipaudit {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)

    audit = commands.add_parser("audit", help="audit one model on one dataset with a taxonomy")
    audit.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="taxonomy YAML file or shipped name (repeat to combine taxonomies)")
    audit.add_argument("--data", required=True, metavar="SPEC",
                       help="fairface:DIR, hf:NAME[:CONFIG]:SPLIT, utkface:DIR, csv:FILE or synthetic[:N]")
    audit.add_argument("--model", required=True, metavar="SPEC", help="transformers model id or folder, or 'demo'")
    audit.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    _add_run_options(audit)
    _add_stats_options(audit)
    audit.set_defaults(command=_cmd_audit)

    demo = commands.add_parser("demo", help="the whole audit on the embedded demo data and model, offline")
    demo.add_argument("--out", type=Path, default=Path("clipaudit-demo"), metavar="DIR",
                      help="output folder (default: ./clipaudit-demo)")
    demo.add_argument("--images", type=int, default=None, metavar="N",
                      help="number of synthetic images (default: the demo's standard set)")
    _add_run_options(demo)
    _add_stats_options(demo)
    demo.set_defaults(command=_cmd_demo)

    validate = commands.add_parser("validate", help="check a taxonomy and say what is wrong, line by line")
    validate.add_argument("file", metavar="FILE", help="taxonomy YAML file or shipped name")
    validate.add_argument("--data", metavar="SPEC", help="also check attributes and target values against a dataset")
    validate.add_argument("--model", metavar="SPEC", help="also check prompt lengths against a model's text context")
    validate.add_argument("--cache-dir", type=Path, metavar="DIR", help="cache folder (default: ~/.cache/clipaudit)")
    validate.set_defaults(command=_cmd_validate)

    stats = commands.add_parser("stats", help="statistics and report again from a predictions file (no model)")
    stats.add_argument("predictions", type=Path, metavar="PREDICTIONS.parquet")
    stats.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="the taxonomy the predictions were made with (repeat as for audit)")
    stats.add_argument("--out", required=True, type=Path, metavar="DIR")
    stats.add_argument("--seed", type=int, default=0, help="seed for permutation tests (default 0)")
    _add_stats_options(stats)
    stats.set_defaults(command=_cmd_stats)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--num-workers", type=int, default=0, metavar="N",
                        help="DataLoader workers decoding images (default 0: in the main process)")
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="embedding cache (default: $CLIPAUDIT_CACHE_DIR or ~/.cache/clipaudit)")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="skip missing or unreadable images (counted in the manifest) instead of stopping")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a checkpoint's own Python code to run (off unless you ask)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-n", type=int, default=30, metavar="N",
                        help="groups smaller than this are flagged and left out of tests (default 30)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise significance level (default 0.05)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval confidence level (default 0.95)")


def _stats_settings(arguments: argparse.Namespace):
    from clipaudit.stats import StatsSettings

    return StatsSettings(
        confidence=arguments.confidence, min_n=arguments.min_n, alpha=arguments.alpha, seed=arguments.seed
    )


def _run_options(arguments: argparse.Namespace):
    from clipaudit.audit import AuditOptions

    return AuditOptions(
        device=arguments.device,
        dtype=arguments.dtype,
        batch_size=arguments.batch_size,
        num_workers=arguments.num_workers,
        seed=arguments.seed,
        cache_dir=arguments.cache_dir,
        skip_bad_images=arguments.skip_bad_images,
        trust_remote_code=arguments.trust_remote_code,
        progress=not arguments.quiet,
    )


def _cmd_audit(arguments: argparse.Namespace) -> int:
    from clipaudit.audit import run_audit
    from clipaudit.results import write_outputs

    _quiet_libraries()
    settings = _stats_settings(arguments)
    run = run_audit(
        taxonomy=_taxonomy(arguments.taxonomy),
        data=arguments.data,
        model=arguments.model,
        options=_run_options(arguments),
        stats_settings=settings,
    )
    written = write_outputs(run.results, run.predictions, arguments.out)
    _say_written(written, run.results)
    return EXIT_OK


def _cmd_demo(arguments: argparse.Namespace) -> int:
    from clipaudit.audit import run_audit
    from clipaudit.results import write_outputs

    _quiet_libraries()
    data = "synthetic" if arguments.images is None else f"synthetic:{arguments.images}"
    run = run_audit(
        taxonomy=_taxonomy(list(DEMO_TAXONOMIES)),
        data=data,
        model="demo",
        options=_run_options(arguments),
        stats_settings=_stats_settings(arguments),
    )
    written = write_outputs(run.results, run.predictions, arguments.out)
    _say_written(written, run.results)
    return EXIT_OK


def _cmd_validate(arguments: argparse.Namespace) -> int:
    from clipaudit.validate import validate_command

    _quiet_libraries()
    report_lines, ok = validate_command(
        arguments.file, data=arguments.data, model=arguments.model, cache_dir=arguments.cache_dir
    )
    stream = sys.stdout if ok else sys.stderr
    for line in report_lines:
        print(line, file=stream)
    return EXIT_OK if ok else EXIT_BAD_INPUT


def _cmd_stats(arguments: argparse.Namespace) -> int:
    from clipaudit.restats import recompute_statistics
    from clipaudit.results import write_outputs

    results = recompute_statistics(
        arguments.predictions, taxonomy=_taxonomy(arguments.taxonomy), settings=_stats_settings(arguments)
    )
    written = write_outputs(results, None, arguments.out)
    _say_written(written, results)
    return EXIT_OK


def _taxonomy(names: list[str]):
    from clipaudit.taxonomy import combine_taxonomies, load_taxonomy

    taxonomies = [load_taxonomy(name) for name in names]
    return taxonomies[0] if len(taxonomies) == 1 else combine_taxonomies(taxonomies)


def _say_written(written: list[Path], results: dict) -> None:
    findings = results.get("findings", [])
    significant = sum(1 for finding in findings if finding.get("significant"))
    print(f"{significant} significant finding(s) after correction; wrote:", file=sys.stderr)
    for path in written:
        print(f"  {path}", file=sys.stderr)


def _quiet_libraries() -> None:
    """transformers' load-time chatter is not for auditors; what matters goes in the manifest."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="transformers")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
