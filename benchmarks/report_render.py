"""How long the demo's report takes to render (issue 11, point 6: under 1 s), and what the rest of
`clipaudit stats` costs beside it.

    python benchmarks/report_render.py [--repeat 5]

Renders reports/example/results.json (the demo's results, committed) with ``render_report``:
first in a fresh process (imports and template compilation included, as `clipaudit stats` pays
them), then ``--repeat`` times warm, and prints the median. The same for the Markdown summary
and the model index, and for the statistics over reports/example/predictions.parquet, so the
report's share of `clipaudit stats` is visible. Prints timings; makes no pass/fail claim.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "reports" / "example"
COLD = """
import json, sys, time
started = time.perf_counter()
from clipaudit.report import render_report
imported = time.perf_counter()
results = json.load(open(sys.argv[1], encoding="utf-8"))
render_report(results)
print(imported - started, time.perf_counter() - imported)
"""


def _median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from clipaudit.report import render_model_index, render_report, render_summary_markdown
    from clipaudit.stats import StatsSettings, compute_statistics
    from clipaudit.taxonomy import combine_taxonomies, load_taxonomy

    results = json.loads((EXAMPLE / "results.json").read_text(encoding="utf-8"))
    imports, cold = map(float, subprocess.run([sys.executable, "-c", COLD, str(EXAMPLE / "results.json")], cwd=ROOT,
                                              capture_output=True, text=True, check=True).stdout.split())
    report = _median_seconds(lambda: render_report(results), arguments.repeat)
    exports = _median_seconds(lambda: (render_summary_markdown(results), render_model_index(results)), arguments.repeat)
    predictions = pd.read_parquet(EXAMPLE / "predictions.parquet")
    taxonomy = combine_taxonomies([load_taxonomy("fairface_demographics"), load_taxonomy("clip_denigration")])
    stats = _median_seconds(lambda: compute_statistics(predictions, taxonomy.probes, settings=StatsSettings()), 1)
    print(f"fresh process: importing clipaudit.report (pandas, scipy): {imports:.3f} s (`clipaudit stats` needs them anyway)")
    print(f"report.html, fresh process (templates compiled + render): {cold:.3f} s")
    print(f"report.html, warm (median of {arguments.repeat}):               {report:.3f} s")
    print(f"summary.md + model-index.yaml, warm:                     {exports:.3f} s")
    print(f"statistics over the demo's predictions (one run):        {stats:.3f} s")
    print(f"report's share of statistics + report:                   {report / (report + stats):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
