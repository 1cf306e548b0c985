"""One function per command: arguments in, one call into the API, an exit code out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipaudit import progress
from clipaudit.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK, EXIT_REGRESSION
from clipaudit.cli.summary import alert_lines, findings_table, written_lines
from clipaudit.cli.terminal import say
from clipaudit.errors import UsageError

DEMO_TAXONOMIES = ("fairface_demographics", "clip_denigration")


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
        confidence=arguments.confidence, min_n=arguments.min_n, alpha=arguments.alpha,
        interval=arguments.interval, correction=arguments.correction, min_effect=arguments.min_effect,
        reference=reference, reference_by_probe=by_probe,
    )


def _run_options(arguments: argparse.Namespace):
    """The run's options, validated (and --num-workers capped) before anything loads."""
    from clipaudit.pipeline.options import AuditOptions

    return AuditOptions(
        device=arguments.device,
        dtype=arguments.dtype,
        batch_size=arguments.batch_size,
        num_workers=arguments.num_workers,
        compile=arguments.compile,
        seed=arguments.seed,
        cache_dir=arguments.cache_dir,
        skip_bad_images=arguments.skip_bad_images,
        allow_unmatched=arguments.allow_unmatched,
        trust_remote_code=arguments.trust_remote_code,
        progress=not arguments.quiet,
        shard_images=arguments.shard_images,
    )


def _say_notes(options) -> None:
    """Options changed on the way (--num-workers capped), said after the run: an exit 2 stays one line."""
    for note in options.notes:
        say(f"clipaudit: note: {note}")


def cmd_embed(arguments: argparse.Namespace) -> int:
    """Fill the embedding cache: part i of N of the image shards (or all), and the prompts of any taxonomy given."""
    from clipaudit.embed import Part
    from clipaudit.pipeline.encode import encode_part, launcher_part
    from clipaudit.pipeline.inputs import load_inputs
    from clipaudit.taxonomy import load_taxonomy

    quiet_libraries()
    options = _run_options(arguments)
    part = arguments.shard or launcher_part()
    taxonomies = [load_taxonomy(name) for name in arguments.taxonomy or []]
    inputs = load_inputs(taxonomies=taxonomies, data=arguments.data, model=arguments.model, options=options)
    encode_part(inputs, options, part)
    if taxonomies:
        from clipaudit.pipeline.encode import embed_prompts

        embed_prompts(inputs, taxonomies)
    which = "every shard" if part == Part() else f"shards {part.index}/{part.count}"
    say(f"clipaudit: {which} of {arguments.data} cached for {arguments.model} in {inputs.cache_dir}")
    _say_notes(options)
    return EXIT_OK


def _other_rank_encodes(arguments: argparse.Namespace, taxonomy_names: list[str], data: str, model: str) -> bool:
    """Under torchrun, a rank other than 0 encodes its part of the shards and writes nothing else:
    True when this process was such a rank and has done so."""
    from clipaudit.pipeline.encode import encode_part, launcher_part
    from clipaudit.pipeline.inputs import load_inputs
    from clipaudit.taxonomy import load_taxonomy

    part = launcher_part()
    if part.index == 0:
        return False
    options = _run_options(arguments)
    taxonomies = [load_taxonomy(name) for name in taxonomy_names]
    inputs = load_inputs(taxonomies=taxonomies, data=data, model=model, options=options)
    encode_part(inputs, options, part)
    say(f"clipaudit: rank {part.index} of {part.count}: its shards are cached; rank 0 writes the outputs")
    return True


def cmd_audit(arguments: argparse.Namespace) -> int:
    from clipaudit.audit import run_audit

    quiet_libraries(quiet=arguments.quiet)
    if _other_rank_encodes(arguments, arguments.taxonomy, arguments.data, arguments.model):
        return EXIT_OK
    options, settings = _run_options(arguments), _stats_settings(arguments)
    taxonomy = _taxonomy(arguments.taxonomy)
    check = _baseline_check(arguments, taxonomy)  # bad baseline or thresholds: stop before the audit runs
    with progress.shown(options.progress):
        run = run_audit(taxonomy=taxonomy, data=arguments.data, model=arguments.model, options=options,
                        stats_settings=settings)
        comparison = check(run.results, run.predictions) if check else None
        _write_results(run.results, run.predictions, arguments.out, comparison=comparison)
    _say_notes(options)
    if comparison is None:
        return EXIT_OK
    return _report_comparison(comparison, arguments.out)


def cmd_demo(arguments: argparse.Namespace) -> int:
    from clipaudit.audit import run_audit

    quiet_libraries(quiet=arguments.quiet)
    options, settings = _run_options(arguments), _stats_settings(arguments)
    data = "synthetic" if arguments.images is None else f"synthetic:{arguments.images}"
    model = "demo"
    if arguments.retrain and _retrains_elsewhere():
        return EXIT_OK
    if arguments.retrain:
        from clipaudit.files import default_cache_dir
        from clipaudit.demo.model import retrain_demo_model

        model = str(retrain_demo_model(arguments.cache_dir or default_cache_dir(), progress=not arguments.quiet))
    elif arguments.untrained is not None:
        from clipaudit.files import default_cache_dir
        from clipaudit.demo.model import untrained_model

        model = str(untrained_model(arguments.cache_dir or default_cache_dir(), seed=arguments.untrained))
    if _other_rank_encodes(arguments, list(DEMO_TAXONOMIES), data, model):
        return EXIT_OK
    with progress.shown(options.progress):
        run = run_audit(taxonomy=_taxonomy(list(DEMO_TAXONOMIES)), data=data, model=model, options=options,
                        stats_settings=settings)
        _write_results(run.results, run.predictions, arguments.out)
    _say_notes(options)
    return EXIT_OK


def _retrains_elsewhere() -> bool:
    """Under torchrun, `demo --retrain` trains (and encodes) on rank 0 alone: ranks training one
    model into one folder at once would replace it under each other. True on the other ranks."""
    from clipaudit.pipeline.encode import launcher_part

    part = launcher_part()
    if part.index == 0:
        return False
    say(f"clipaudit: rank {part.index} of {part.count}: demo --retrain trains and encodes on rank 0 alone")
    return True


def cmd_validate(arguments: argparse.Namespace) -> int:
    from clipaudit.validate import validate_command

    quiet_libraries(quiet=True)
    validation = validate_command(
        arguments.file, data=arguments.data, model=arguments.model, cache_dir=arguments.cache_dir
    )
    for line in validation.taxonomy_lines:
        say(line, stream=sys.stdout)
    stream = sys.stdout if validation.ok else sys.stderr
    for line in validation.problem_lines:
        say(line, stream=stream)
    return EXIT_OK if validation.ok else EXIT_BAD_INPUT


def cmd_list(arguments: argparse.Namespace) -> int:
    from clipaudit.cli.listing import shipped_lines

    for line in shipped_lines():
        say(line, stream=sys.stdout)
    return EXIT_OK


def cmd_sweep(arguments: argparse.Namespace) -> int:
    from clipaudit.sweep import run_sweep, write_sweep_outputs
    from clipaudit.sweep.spec import load_sweep_spec
    from clipaudit.taxonomy import load_taxonomy

    quiet_libraries(quiet=arguments.quiet)
    if _other_rank_encodes(arguments, arguments.taxonomy, arguments.data, arguments.model):
        return EXIT_OK
    options, settings = _run_options(arguments), _stats_settings(arguments)
    spec = load_sweep_spec(arguments.spec) if arguments.spec else None
    with progress.shown(options.progress):
        run = run_sweep(taxonomies=[load_taxonomy(name) for name in arguments.taxonomy], data=arguments.data,
                        model=arguments.model, options=options, settings=settings, spec=spec)
        written = write_sweep_outputs(run, arguments.out)
    for line in alert_lines(run.document):
        say(line)
    findings = run.document["findings"]
    _say_paths(f"{len(run.document['variants'])} taxonomy versions, {len(findings)} significant change(s); wrote:",
               written)
    for note in run.document["manifest"]["notes"]:  # --num-workers capped, identical variants dropped
        say(f"clipaudit: note: {note}")
    return EXIT_OK


def cmd_stats(arguments: argparse.Namespace) -> int:
    from clipaudit.restats import recompute_statistics

    settings = _stats_settings(arguments)
    with progress.shown(not arguments.quiet):
        results = recompute_statistics(arguments.predictions, taxonomy=_taxonomy(arguments.taxonomy),
                                       settings=settings, allow_unmatched=arguments.allow_unmatched)
        _write_results(results, None, arguments.out)
    return EXIT_OK


def cmd_compare(arguments: argparse.Namespace) -> int:
    from clipaudit.compare import CompareSettings, run_compare

    settings = CompareSettings(alpha=arguments.alpha, confidence=arguments.confidence, min_n=arguments.min_n)
    comparison = run_compare(arguments.baseline, arguments.candidate, thresholds=arguments.thresholds,
                             settings=settings)
    return _report_comparison(comparison, arguments.out)


def cmd_report(arguments: argparse.Namespace) -> int:
    from clipaudit.compare import CompareSettings
    from clipaudit.lineup import run_lineup, write_lineup
    from clipaudit.lineup.run import require_several

    require_several(arguments.audits)  # before any progress line: a refusal is one line
    settings = CompareSettings(alpha=arguments.alpha, confidence=arguments.confidence, min_n=arguments.min_n)
    with progress.shown(not arguments.quiet):
        with progress.step(f"comparing {len(arguments.audits)} audits (paired tests, ranking bootstrap)"):
            lineup = run_lineup(arguments.audits, settings=settings, seed=arguments.seed)
        written = write_lineup(lineup, arguments.out)
    _say_paths(f"{len(lineup['models'])} models compared; wrote:", written)
    return EXIT_OK


def _baseline_check(arguments: argparse.Namespace, taxonomy):
    """For `audit --baseline`: load the baseline and thresholds now; return the check to run on the audit."""
    from clipaudit.compare import CompareSettings, audit_output_from_run, compare_audits, load_audit_output
    from clipaudit.compare.plan import PlannedAudit, check_rules_before_run
    from clipaudit.compare.thresholds import load_thresholds

    if arguments.baseline is None:
        if arguments.thresholds is not None:
            raise UsageError("clipaudit audit: --thresholds needs --baseline DIR (see clipaudit audit --help)")
        return None
    settings = CompareSettings(alpha=arguments.alpha, confidence=arguments.confidence, min_n=arguments.min_n)
    baseline = load_audit_output(arguments.baseline, role="baseline")
    thresholds = load_thresholds(arguments.thresholds) if arguments.thresholds is not None else None
    planned = PlannedAudit(label=str(arguments.out), probes={probe.id: probe for probe in taxonomy.probes})
    check_rules_before_run(baseline, thresholds, planned)

    def check(results: dict, predictions):
        candidate = audit_output_from_run(results, predictions, label=str(arguments.out))
        return compare_audits(baseline, candidate, thresholds, settings=settings)

    return check


def _report_comparison(comparison, out: Path) -> int:
    """Write the comparison's files; one stderr line per violation; exit 1 on any."""
    from clipaudit.compare import write_comparison

    written = write_comparison(comparison, out)
    for note in comparison.notes:
        say(f"clipaudit: note: {note}")
    for line in comparison.violation_lines():
        say(f"clipaudit: regression: {line}")
    summary = comparison.summary()
    verdict = "passed" if comparison.passed else "FAILED"
    _say_paths(f"compare {verdict}: {summary['failed']} violation(s), {summary['passed']} check(s) passed, "
               f"{summary['skipped']} skipped; wrote:", written)
    return EXIT_OK if comparison.passed else EXIT_REGRESSION


def _taxonomy(names: list[str]):
    from clipaudit.taxonomy import combine_taxonomies, load_taxonomy

    taxonomies = [load_taxonomy(name) for name in names]
    return taxonomies[0] if len(taxonomies) == 1 else combine_taxonomies(taxonomies)


def _write_results(results: dict, predictions, out: Path, *, comparison=None) -> None:
    """An audit's (or stats') outputs, all or nothing; an earlier run's compare verdict in --out goes."""
    from clipaudit.compare import OUTPUT_NAMES as COMPARE_OUTPUTS
    from clipaudit.files import remove_stale_outputs
    from clipaudit.pipeline.results import write_outputs

    written = write_outputs(results, predictions, out, comparison=comparison.to_dict() if comparison else None)
    if comparison is None:  # a reused --out must not keep an earlier run's verdict next to these results
        remove_stale_outputs(out, COMPARE_OUTPUTS)
    for line in alert_lines(results):  # first: a reader who stops at the top must not miss them
        say(line)
    findings = results.get("findings", [])
    significant = sum(1 for finding in findings if finding.get("significant"))
    for line in findings_table(findings):
        say(line)
    _say_paths(f"{significant} significant finding(s) after correction; wrote:", written)


def _say_paths(headline: str, written: list[Path]) -> None:
    for line in written_lines(headline, written):
        say(line)


def quiet_libraries(*, quiet: bool = True) -> None:
    """transformers' load-time chatter is not for auditors (what matters goes in the manifest); the
    Hub's download bars are shown unless ``quiet``, so a first run with a large checkpoint does not
    look frozen. transformers, when not imported yet, is told through the environment and the Hub's
    settings, which it reads on import: a run whose embeddings are all cached never imports it."""
    import logging
    import os
    import sys
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is imported
    for library in ("transformers", "huggingface_hub", "datasets"):
        logging.getLogger(library).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="transformers")
    try:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
        if quiet:
            disable_progress_bars()  # transformers, imported later, takes the Hub's setting
        else:
            enable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            if quiet:
                hf_logging.disable_progress_bar()
            else:
                hf_logging.enable_progress_bar()
    except ImportError:
        pass
