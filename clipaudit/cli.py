"""The command line: one function per command, each one call into the API.

`main(argv) -> int` returns the exit code: 0 done, 1 a check found a regression, 2 bad input or
usage (one line on stderr, no traceback), 3 an internal error (one line on stderr naming the file
that holds the full traceback).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from clipaudit.errors import ClipauditError, UsageError

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
DEMO_TAXONOMIES = ("fairface_demographics", "clip_denigration")

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage and exit itself
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        if getattr(arguments, "out", None) is not None:
            from clipaudit.files import check_output_dir

            check_output_dir(arguments.out)
        return arguments.command(arguments)
    except ClipauditError as error:
        print(f"clipaudit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("clipaudit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: never exit 1, which a CI gate reads as "a group got worse"
        print(f"clipaudit: internal error: {type(error).__name__}: {_one_line(error)} "
              f"(full traceback in {_save_traceback()})", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _save_traceback() -> str:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="clipaudit-traceback-", suffix=".txt", delete=False,
                                     encoding="utf-8") as handle:
        traceback.print_exc(file=handle)
    return handle.name


def build_parser() -> argparse.ArgumentParser:
    from clipaudit.version import __version__

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
    audit.add_argument("--baseline", type=Path, metavar="DIR",
                       help="an earlier audit's output folder: check this audit against it as `compare` does "
                            "(outputs also in --out; exit 1 on a regression)")
    audit.add_argument("--thresholds", type=Path, metavar="FILE",
                       help="rules for --baseline (YAML, see the README's Regression checks; default: no significant worsening)")
    _add_run_options(audit)
    _add_stats_options(audit)
    audit.set_defaults(command=_cmd_audit)

    demo = commands.add_parser("demo", help="the whole audit on the embedded demo data and model, offline")
    demo.add_argument("--out", type=Path, default=Path("clipaudit-demo"), metavar="DIR",
                      help="output folder (default: ./clipaudit-demo)")
    demo.add_argument("--images", type=int, default=None, metavar="N",
                      help="number of synthetic images (default: the demo's standard set)")
    demo.add_argument("--retrain", action="store_true",
                      help="train the demo model again into the cache (minutes on a CPU) and audit that copy "
                           "instead of the shipped one")
    _add_run_options(demo)
    _add_stats_options(demo)
    demo.set_defaults(command=_cmd_demo)

    validate = commands.add_parser("validate", help="check a taxonomy and say what is wrong, line by line")
    validate.add_argument("file", metavar="FILE", help="taxonomy YAML file or shipped name")
    validate.add_argument("--data", metavar="SPEC", help="also check attributes and target values against a dataset")
    validate.add_argument("--model", metavar="SPEC", help="also check prompt lengths against a model's text context")
    validate.add_argument("--cache-dir", type=Path, metavar="DIR", help="cache folder (default: ~/.cache/clipaudit)")
    validate.set_defaults(command=_cmd_validate)

    sweep = commands.add_parser("sweep", help="taxonomy sensitivity study: every variant on the same images")
    sweep.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="taxonomy whose base and variants are swept (repeat for several)")
    sweep.add_argument("--data", required=True, metavar="SPEC", help="dataset SPEC, as for audit")
    sweep.add_argument("--model", required=True, metavar="SPEC", help="model SPEC, as for audit")
    sweep.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    sweep.add_argument("--spec", metavar="FILE",
                       help="sweep spec YAML (or shipped name, e.g. harm_wording) generating more variants: "
                            "template sets x class sets x synonyms")
    _add_run_options(sweep)
    _add_stats_options(sweep)
    sweep.set_defaults(command=_cmd_sweep)

    stats = commands.add_parser("stats", help="statistics and report again from a predictions file (no model)")
    stats.add_argument("predictions", type=Path, metavar="PREDICTIONS.parquet")
    stats.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="the taxonomy the predictions were made with (repeat as for audit)")
    stats.add_argument("--out", required=True, type=Path, metavar="DIR")
    stats.add_argument("--seed", type=int, default=0, help="seed for permutation tests (default 0)")
    _add_stats_options(stats)
    stats.set_defaults(command=_cmd_stats)

    compare = commands.add_parser("compare", help="check a candidate audit against a baseline audit "
                                                  "(exit 1 when a group got worse beyond the thresholds)")
    compare.add_argument("baseline", type=Path, metavar="BASELINE_DIR", help="the baseline audit's output folder")
    compare.add_argument("candidate", type=Path, metavar="CANDIDATE_DIR", help="the candidate audit's output folder")
    compare.add_argument("--out", required=True, type=Path, metavar="DIR",
                         help="folder for compare.json, compare.md, compare.html and junit.xml")
    compare.add_argument("--thresholds", type=Path, metavar="FILE",
                         help="rules (YAML, see the README's Regression checks; default: no significant worsening of any group)")
    compare.add_argument("--min-n", type=int, default=30, metavar="N",
                         help="groups smaller than this are reported but never fail (default 30)")
    compare.add_argument("--alpha", type=float, default=0.05,
                         help="significance level after Holm's correction (default 0.05)")
    compare.add_argument("--confidence", type=float, default=0.95,
                         help="confidence level of the intervals for each change (default 0.95)")
    compare.set_defaults(command=_cmd_compare)
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
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level after the multiple-testing correction (default 0.05)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval confidence level (default 0.95)")
    parser.add_argument("--interval", choices=["wilson", "clopper-pearson", "jeffreys"], default="wilson",
                        help="interval for each group's rate (default wilson)")
    parser.add_argument("--correction", choices=["holm", "bh"], default="holm",
                        help="multiple-testing correction over every test in the audit: holm (family-wise "
                             "error rate, default) or bh (Benjamini-Hochberg false discovery rate)")
    parser.add_argument("--min-effect", type=float, default=0.02, metavar="D",
                        help="smallest difference that counts as significant, on the rate scale "
                             "(default 0.02 = 2 percentage points)")
    parser.add_argument("--reference", default=None, metavar="REF",
                        help="what each group is compared with: overall (default), rest, largest, best, or "
                             "group:NAME; PROBE=REF sets it for one probe (repeatable, after a default if any)",
                        action="append")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for the max-min and min/max intervals (default 1000; 0 for none)")


def _stats_settings(arguments: argparse.Namespace):
    from clipaudit.stats import StatsSettings

    # --reference is repeatable: 'REF' sets the default, 'PROBE=REF' one probe's reference.
    reference, by_probe = "overall", {}
    for value in getattr(arguments, "reference", None) or ["overall"]:
        probe_id, separator, probe_reference = value.partition("=")
        if separator and not probe_id.startswith("group:"):
            by_probe[probe_id] = probe_reference
        else:
            reference = value
    return StatsSettings(
        confidence=arguments.confidence, min_n=arguments.min_n, alpha=arguments.alpha, seed=arguments.seed,
        interval=arguments.interval, correction=arguments.correction, min_effect=arguments.min_effect,
        reference=reference, reference_by_probe=by_probe, bootstrap=arguments.bootstrap,
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
    from clipaudit.pipeline.results import write_outputs

    _quiet_libraries()
    settings = _stats_settings(arguments)
    taxonomy = _taxonomy(arguments.taxonomy)
    check = _baseline_check(arguments, taxonomy)  # bad baseline or thresholds: stop before the audit runs
    run = run_audit(
        taxonomy=taxonomy,
        data=arguments.data,
        model=arguments.model,
        options=_run_options(arguments),
        stats_settings=settings,
    )
    comparison = check(run.results, run.predictions) if check else None
    written = write_outputs(
        run.results, run.predictions, arguments.out, comparison=comparison.to_dict() if comparison else None
    )
    _say_written(written, run.results)
    if comparison is None:
        from clipaudit.compare import OUTPUT_NAMES as COMPARE_OUTPUTS
        from clipaudit.files import remove_stale_outputs

        # A reused --out must not keep an earlier run's verdict next to this run's results.
        remove_stale_outputs(arguments.out, COMPARE_OUTPUTS)
        return EXIT_OK
    return _report_comparison(comparison, arguments.out)


def _cmd_demo(arguments: argparse.Namespace) -> int:
    from clipaudit.audit import run_audit
    from clipaudit.pipeline.results import write_outputs

    _quiet_libraries()
    data = "synthetic" if arguments.images is None else f"synthetic:{arguments.images}"
    model = "demo"
    if arguments.retrain:
        from clipaudit.files import default_cache_dir
        from clipaudit.demo.model import retrain_demo_model

        model = str(retrain_demo_model(arguments.cache_dir or default_cache_dir(), progress=not arguments.quiet))
    run = run_audit(
        taxonomy=_taxonomy(list(DEMO_TAXONOMIES)),
        data=data,
        model=model,
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


def _cmd_sweep(arguments: argparse.Namespace) -> int:
    from clipaudit.sweep import run_sweep, write_sweep_outputs
    from clipaudit.sweep.spec import load_sweep_spec
    from clipaudit.taxonomy import load_taxonomy

    _quiet_libraries()
    spec = load_sweep_spec(arguments.spec) if arguments.spec else None
    run = run_sweep(
        taxonomies=[load_taxonomy(name) for name in arguments.taxonomy],
        data=arguments.data,
        model=arguments.model,
        options=_run_options(arguments),
        settings=_stats_settings(arguments),
        spec=spec,
    )
    written = write_sweep_outputs(run, arguments.out)
    findings = run.document["findings"]
    print(f"{len(run.document['variants'])} taxonomy versions, {len(findings)} significant change(s); wrote:", file=sys.stderr)
    for path in written:
        print(f"  {path}", file=sys.stderr)
    return EXIT_OK


def _cmd_stats(arguments: argparse.Namespace) -> int:
    from clipaudit.restats import recompute_statistics
    from clipaudit.pipeline.results import write_outputs

    results = recompute_statistics(
        arguments.predictions, taxonomy=_taxonomy(arguments.taxonomy), settings=_stats_settings(arguments)
    )
    written = write_outputs(results, None, arguments.out)
    _say_written(written, results)
    return EXIT_OK


def _cmd_compare(arguments: argparse.Namespace) -> int:
    from clipaudit.compare import CompareSettings, run_compare

    settings = CompareSettings(alpha=arguments.alpha, confidence=arguments.confidence, min_n=arguments.min_n)
    comparison = run_compare(arguments.baseline, arguments.candidate, thresholds=arguments.thresholds,
                             settings=settings)
    return _report_comparison(comparison, arguments.out)


def _baseline_check(arguments: argparse.Namespace, taxonomy):
    """For `audit --baseline`: load the baseline and thresholds now; return the check to run on the audit."""
    from clipaudit.compare import CompareSettings, audit_output_from_run, compare_audits, load_audit_output
    from clipaudit.compare.thresholds import load_thresholds

    if arguments.baseline is None:
        if arguments.thresholds is not None:
            raise UsageError("clipaudit audit: --thresholds needs --baseline DIR (see clipaudit audit --help)")
        return None
    settings = CompareSettings(alpha=arguments.alpha, confidence=arguments.confidence, min_n=arguments.min_n)
    baseline = load_audit_output(arguments.baseline, role="baseline")
    thresholds = load_thresholds(arguments.thresholds) if arguments.thresholds is not None else None
    if thresholds is None:  # the default rules compare every probe: both sides must have the same ones
        _require_same_probes(set(baseline.probes), set(taxonomy.probe_ids()), baseline=arguments.baseline)

    def check(results: dict, predictions):
        candidate = audit_output_from_run(results, predictions, label=str(arguments.out))
        return compare_audits(baseline, candidate, thresholds, settings=settings)

    return check


def _require_same_probes(baseline_probes: set[str], candidate_probes: set[str], *, baseline: Path) -> None:
    from clipaudit.errors import CompareError

    for probe_id in sorted(baseline_probes ^ candidate_probes):
        where, other = ("the baseline", "the candidate taxonomy") if probe_id in baseline_probes else ("the candidate taxonomy", "the baseline")
        raise CompareError(
            f"probe {probe_id!r} is in {where} but not in {other} ({baseline}); "
            "give --thresholds rules for the probes to compare, or audit with the baseline's taxonomy"
        )


def _report_comparison(comparison, out: Path) -> int:
    """Write the comparison's files; one stderr line per violation; exit 1 on any."""
    from clipaudit.compare import write_comparison

    written = write_comparison(comparison, out)
    for line in comparison.violation_lines():
        print(f"clipaudit: regression: {line}", file=sys.stderr)
    summary = comparison.summary()
    verdict = "passed" if comparison.passed else "FAILED"
    print(f"compare {verdict}: {summary['failed']} violation(s), {summary['passed']} check(s) passed, "
          f"{summary['skipped']} skipped; wrote:", file=sys.stderr)
    for path in written:
        print(f"  {path}", file=sys.stderr)
    return EXIT_OK if comparison.passed else EXIT_REGRESSION


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
    for library in ("transformers", "huggingface_hub", "datasets"):
        logging.getLogger(library).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="transformers")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
