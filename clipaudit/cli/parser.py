"""The command line's arguments: one subcommand each, options shared by the jobs that take them."""
from __future__ import annotations

import argparse
from pathlib import Path

from clipaudit.cli import commands
from clipaudit.errors import UsageError
from clipaudit.embed.parts import SHARD_IMAGES
from clipaudit.pipeline.options import MAX_BATCH_SIZE, MAX_SEED


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # No abbreviations: `audit --shard 3/2` must not be read as --shard-images.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse would print the whole usage and exit itself
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _integer_from(low: int, high: int | None, what: str):
    """An argparse type: an integer in [low, high], refused in one line naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown!r}")
        return value
    parse.__name__ = "integer"
    return parse


_seed = _integer_from(0, MAX_SEED, f"an integer from 0 to {MAX_SEED} (2**32 - 1)")
_batch_size = _integer_from(1, MAX_BATCH_SIZE, f"an integer from 1 to {MAX_BATCH_SIZE}")
_positive = _integer_from(1, None, "a positive integer")
_non_negative = _integer_from(0, None, "0 or a positive integer")


def _part(text: str):
    """--shard i/N, refused in one line (the whole message: argparse would add its own prefix)."""
    from clipaudit.embed.parts import parse_part

    return parse_part(text)


def _folder(text: str) -> Path:
    """A folder name (--out, --cache-dir): an empty one would mean the current folder without saying so."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder name, got an empty one (for the current folder, say '.')")
    return Path(text)


DATA_HELP = ("dataset: fairface:DIR[:val|train], hf:NAME[:CONFIG]:SPLIT, utkface:DIR, csv:FILE "
             "or synthetic[:N[:SEED]] (the demo's drawn faces)")
MODEL_HELP = ("model: a transformers model id or folder, open_clip:ARCH:PRETRAINED_TAG, open_clip:ARCH:FILE, "
              "or 'demo'")


def build_parser() -> argparse.ArgumentParser:
    from clipaudit.version import __version__

    parser = _Parser(prog="clipaudit", description="Fairness and bias audits for CLIP-style zero-shot classifiers.")
    parser.add_argument("--version", action="version", version=f"clipaudit {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)

    audit = subcommands.add_parser("audit", help="audit one model on one dataset with a taxonomy")
    audit.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="taxonomy YAML file or shipped name (repeat to combine taxonomies)")
    audit.add_argument("--data", required=True, metavar="SPEC", help=DATA_HELP)
    audit.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    audit.add_argument("--out", required=True, type=_folder, metavar="DIR", help="output folder")
    audit.add_argument("--baseline", type=Path, metavar="DIR",
                       help="an earlier audit's output folder: check this audit against it as `compare` does "
                            "(outputs also in --out; exit 1 on a regression)")
    audit.add_argument("--thresholds", type=Path, metavar="FILE",
                       help="rules for --baseline (YAML, see the README's Regression checks; default: no significant worsening)")
    _add_run_options(audit)
    _add_stats_options(audit)
    audit.set_defaults(command=commands.cmd_audit)

    demo = subcommands.add_parser("demo", help="the whole audit on the embedded demo data and model, offline")
    demo.add_argument("--out", type=_folder, default=Path("clipaudit-demo"), metavar="DIR",
                      help="output folder (default: ./clipaudit-demo)")
    demo.add_argument("--images", type=_positive, default=None, metavar="N",
                      help="number of synthetic images (default: the demo's standard set)")
    demo.add_argument("--retrain", action="store_true",
                      help="train the demo model again into the cache (minutes on a CPU) and audit that copy "
                           "instead of the shipped one")
    demo.add_argument("--untrained", type=_seed, default=None, metavar="SEED",
                      help="audit a tiny CLIP of the demo's shape with random weights from SEED instead "
                           "(a second model to compare with `clipaudit report`)")
    _add_run_options(demo)
    _add_stats_options(demo)
    demo.set_defaults(command=commands.cmd_demo)

    validate = subcommands.add_parser("validate", help="check a taxonomy and say what is wrong, line by line")
    validate.add_argument("file", metavar="FILE", help="taxonomy YAML file or shipped name")
    validate.add_argument("--data", metavar="SPEC",
                          help="also check attributes and target values against a dataset (SPEC as for audit)")
    validate.add_argument("--model", metavar="SPEC", help="also check prompt lengths against a model's text context")
    validate.add_argument("--cache-dir", type=_folder, metavar="DIR", help="cache folder (default: ~/.cache/clipaudit)")
    validate.set_defaults(command=commands.cmd_validate)

    listing = subcommands.add_parser("list", help="the shipped taxonomies and sweep presets, one line each")
    listing.set_defaults(command=commands.cmd_list)

    sweep = subcommands.add_parser("sweep", help="taxonomy sensitivity study: every variant on the same images")
    sweep.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="taxonomy whose base and variants are swept (repeat for several)")
    sweep.add_argument("--data", required=True, metavar="SPEC", help=DATA_HELP)
    sweep.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    sweep.add_argument("--out", required=True, type=_folder, metavar="DIR", help="output folder")
    sweep.add_argument("--spec", metavar="FILE",
                       help="sweep spec YAML (or shipped name, e.g. harm_wording) generating more variants: "
                            "template sets x class sets x synonyms")
    _add_run_options(sweep)
    _add_stats_options(sweep)
    sweep.set_defaults(command=commands.cmd_sweep)

    embed = subcommands.add_parser(
        "embed", help="fill the embedding cache, all of it or one part (cluster array jobs)",
        description="Encode the dataset's images into the embedding cache (shards of --shard-images images, "
                    "each written as it completes) and, with --taxonomy, its prompts; a later audit or sweep "
                    "of the same model and data then finds everything cached. --shard i/N encodes every "
                    "shard whose number is i modulo N, so N array jobs (i = 0 .. N-1) share the work.")
    embed.add_argument("--data", required=True, metavar="SPEC", help=DATA_HELP)
    embed.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    embed.add_argument("--shard", type=_part, metavar="i/N",
                       help="encode part i (0 to N-1) of N, e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT")
    embed.add_argument("--taxonomy", action="append", metavar="FILE",
                       help="also embed this taxonomy's prompts (repeatable), so the audit needs no model at all")
    _add_run_options(embed)
    embed.set_defaults(command=commands.cmd_embed)

    stats = subcommands.add_parser("stats", help="statistics and report again from a predictions file (no model)")
    stats.add_argument("predictions", type=Path, metavar="PREDICTIONS.parquet",
                       help="an audit's predictions.parquet (its results.json beside it supplies the manifest)")
    stats.add_argument("--taxonomy", required=True, action="append", metavar="FILE",
                       help="the taxonomy the predictions were made with (repeat as for audit)")
    stats.add_argument("--out", required=True, type=_folder, metavar="DIR",
                       help="output folder for results.json, report.html, summary.md and model-index.yaml")
    _add_allow_unmatched(stats)
    stats.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_stats_options(stats)
    stats.set_defaults(command=commands.cmd_stats)

    compare = subcommands.add_parser("compare", help="check a candidate audit against a baseline audit "
                                                  "(exit 1 when a group got worse beyond the thresholds)")
    compare.add_argument("baseline", type=Path, metavar="BASELINE_DIR", help="the baseline audit's output folder")
    compare.add_argument("candidate", type=Path, metavar="CANDIDATE_DIR", help="the candidate audit's output folder")
    compare.add_argument("--out", required=True, type=_folder, metavar="DIR",
                         help="folder for compare.json, compare.md, compare.html and junit.xml")
    compare.add_argument("--thresholds", type=Path, metavar="FILE",
                         help="rules (YAML, see the README's Regression checks; default: no significant worsening of any group)")
    compare.add_argument("--min-n", type=int, default=30, metavar="N",
                         help="groups smaller than this are reported but never fail (default 30)")
    compare.add_argument("--alpha", type=float, default=0.05,
                         help="significance level after Holm's correction (default 0.05)")
    compare.add_argument("--confidence", type=float, default=0.95,
                         help="confidence level of the intervals for each change (default 0.95)")
    compare.set_defaults(command=commands.cmd_compare)

    report = subcommands.add_parser("report", help="several audits of different models (same taxonomy and images) "
                                                "side by side: rates, gaps, a ranking and paired tests")
    report.add_argument("audits", type=Path, nargs="+", metavar="AUDIT_DIR",
                        help="audit output folders (results.json and predictions.parquet); the first is the one "
                             "every other model is tested against")
    report.add_argument("--out", required=True, type=_folder, metavar="DIR", help="folder for models.html")
    report.add_argument("--min-n", type=_positive, default=30, metavar="N",
                        help="groups smaller than this are marked small (default 30)")
    report.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm's correction (default 0.05)")
    report.add_argument("--confidence", type=float, default=0.95, help="confidence level of every interval (default 0.95)")
    report.add_argument("--seed", type=_seed, default=0, help="seed of the ranking's bootstrap (default 0)")
    report.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    report.set_defaults(command=commands.cmd_report)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where the model runs (default auto: cuda when a GPU is available)")
    parser.add_argument("--dtype", choices=["auto", "fp32", "fp16", "bf16"], default="auto",
                        help="model precision (default auto: fp16 on a GPU, fp32 on a CPU)")
    parser.add_argument("--batch-size", type=_batch_size, default=None, metavar="N",
                        help=f"images per model call (default: chosen from the device and the model, "
                             f"64 on the CPU; at most {MAX_BATCH_SIZE})")
    parser.add_argument("--num-workers", type=_non_negative, default=None, metavar="N",
                        help="DataLoader workers decoding images (default: chosen from the machine, every CPU "
                             "but two on a GPU machine, 1 on the CPU; 0 decodes in the main process; more than "
                             "the CPUs available are capped)")
    parser.add_argument("--compile", action="store_true",
                        help="run the image tower through torch.compile (worth it on a GPU for large datasets; "
                             "the first batch waits for the compilation)")
    parser.add_argument("--seed", type=_seed, default=0, metavar="N", help=f"0 to {MAX_SEED} (default 0)")
    parser.add_argument("--cache-dir", type=_folder, metavar="DIR",
                        help="embedding cache (default: $CLIPAUDIT_CACHE_DIR or ~/.cache/clipaudit)")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="skip missing or unreadable images (counted in the manifest) instead of stopping")
    _add_allow_unmatched(parser)
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a checkpoint's own Python code to run (off unless you ask)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines or download bars on stderr (the findings and the files written "
                             "are still listed)")
    parser.add_argument("--shard-images", type=_positive, default=SHARD_IMAGES, metavar="N",
                        help=f"images per embedding-cache shard (default {SHARD_IMAGES}); a shard is the unit "
                             "that is written as it completes, resumed after a kill and shared between processes")


def _add_allow_unmatched(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unmatched", action="store_true",
                        help="go on when dataset labels of a probe's target match no class id (otherwise exit 2 "
                             "naming them); the report and the terminal then say so first")


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


