"""Tests for clipaudit.report: structure, escaping, self-containment, atomic writes, determinism.

Every results document here is made by the real statistics (tests/report_fixtures.py).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest

import report_fixtures
from clipaudit import format
from clipaudit.report import build_report_view, render_report, write_report
from clipaudit.report import render as render_module
from clipaudit.report.plots import rate_chart
from clipaudit.report.templating import FILTERS
from clipaudit.schemas import validate_results
from clipaudit.stats import StatsSettings
from report_fixtures import MIN_N, XSS_CLASS

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTION_HEADINGS = [
    "Summary of findings",
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Protocol",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
    "Manifest",
]
VOID_ELEMENTS = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
# SVG children matplotlib writes self-closed (<path .../>); html.parser reports them as startendtag.


# --------------------------------------------------------------------------- parsing helpers


class ReportParser(HTMLParser):
    """Collects what the tests look at, and checks that non-void elements are balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.start_tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self._heading_text: list[str] | None = None
        self.text_chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)
        if re.fullmatch(r"h[1-6]", tag):
            self._heading_text = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()
        if re.fullmatch(r"h[1-6]", tag) and self._heading_text is not None:
            self.headings.append((tag, " ".join("".join(self._heading_text).split())))
            self._heading_text = None

    def handle_data(self, data: str) -> None:
        self.text_chunks.append(data)
        if self._heading_text is not None:
            self._heading_text.append(data)

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.start_tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attributes for tag, attributes in self.start_tags if tag == name]


def parse(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser


def text_of(html: str) -> str:
    return " ".join("".join(parse(html).text_chunks).split())


def table_fragments(html: str) -> list[str]:
    return re.findall(r"<table\b.*?</table>", html, flags=re.S)


def slice_metrics(results: dict) -> list[tuple[str, str, dict]]:
    """(probe id, slice id, slice metric entry) for every table of the report."""
    return [(probe["id"], slice_["id"], metric)
            for probe in results["probes"] for slice_ in probe["slices"] for metric in slice_["metrics"]]


def metric_entry(results: dict, probe: str, slice_id: str, metric: str) -> dict:
    return next(entry for p, s, entry in slice_metrics(results) if (p, s, entry["metric"]) == (probe, slice_id, metric))


def group_entry(results: dict, probe: str, slice_id: str, metric: str, group: str) -> dict:
    return next(g for g in metric_entry(results, probe, slice_id, metric)["groups"] if g["group"] == group)


@pytest.fixture(scope="module")
def results() -> dict:
    return report_fixtures.build()


@pytest.fixture(scope="module")
def html(results: dict) -> str:
    return render_report(results)


@pytest.fixture(scope="module")
def parsed(html: str) -> ReportParser:
    return parse(html)


# --------------------------------------------------------------------------- structure


def test_report_is_well_formed_html(html: str, parsed: ReportParser) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert parsed.problems == []
    assert parsed.stack == []
    assert len(parsed.ids) == len(set(parsed.ids)), "element ids must be unique"


def test_title_names_taxonomy_model_and_dataset(parsed: ReportParser) -> None:
    h1 = [text for tag, text in parsed.headings if tag == "h1"]
    assert h1 == ["Fairness audit: clip_denigration"]
    body_text = " ".join("".join(parsed.text_chunks).split())
    assert "openai/clip-vit-large-patch14-336 on fairface:fairface" in body_text


def test_section_headings_in_model_card_order_findings_first(parsed: ReportParser) -> None:
    section_headings = [text for tag, text in parsed.headings if tag == "h2" and text != "Contents"]
    assert section_headings == SECTION_HEADINGS


def test_findings_in_results_order_each_linking_to_its_table(results: dict, html: str, parsed: ReportParser) -> None:
    findings_list = _findings_links(html)
    assert [text for text, _ in findings_list] == [f["text"] for f in results["findings"]]
    view = build_report_view(results)
    anchors_by_key = {(t.probe_id, t.slice_id, t.metric): t.anchor for t in view.tables()}
    for finding, (_, href) in zip(results["findings"], findings_list):
        assert href is not None and href[1:] in parsed.ids
        assert href[1:] == anchors_by_key[(finding["probe"], finding["slice"], finding["metric"])]


def test_report_keeps_whatever_order_results_json_gives(results: dict) -> None:
    """The order is decided once, by the statistics; the report never sorts findings again."""
    reordered = copy.deepcopy(results)
    reordered["findings"].reverse()
    validate_results(reordered)
    assert [text for text, _ in _findings_links(render_report(reordered))] == [
        f["text"] for f in reordered["findings"]]


def test_better_findings_are_flagged_and_come_after_worse_ones(results: dict) -> None:
    findings = build_report_view(results).findings
    assert [finding.worse for finding in findings] == [f["worse"] for f in results["findings"]]
    # The planted data has both kinds; the statistics list the worse ones first.
    assert [finding.worse for finding in findings] == [True, True, False]


def _findings_links(html: str) -> list[tuple[str, str | None]]:
    """(link text, href) for the links inside <ol class="findings">."""
    parser = _FindingsLinkParser()
    parser.feed(html)
    parser.close()
    return parser.links


class _FindingsLinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str | None]] = []
        self._in_findings = False
        self._href: str | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "ol" and attributes.get("class") == "findings":
            self._in_findings = True
        elif self._in_findings and tag == "a":
            self._href, self._text = attributes.get("href"), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "ol" and self._in_findings:
            self._in_findings = False
        elif tag == "a" and self._text is not None:
            self.links.append(("".join(self._text), self._href))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def test_no_findings_says_so_with_family_size() -> None:
    strict = report_fixtures.build(settings=StatsSettings(min_n=MIN_N, alpha=1e-12))
    assert strict["findings"] == []
    family_size = strict["manifest"]["statistics"]["family_size"]
    assert family_size > 0
    assert ("No disparity between groups reached significance after Holm correction across the family of "
            f"{family_size} tests") in text_of(render_report(strict))


def test_every_table_has_header_cells_with_scope(results: dict, html: str) -> None:
    tables = table_fragments(html)
    # one protocol + one overall table per probe, one table per slice x metric
    assert sum('<table class="classes">' in table for table in tables) == 2
    assert sum('<table class="rates overall">' in table for table in tables) == 2
    assert sum('<table class="rates">' in table for table in tables) == len(slice_metrics(results)) == 11
    assert sum('<table class="factors">' in table for table in tables) == 1
    for table in tables:
        parser = parse(table)
        header_cells = parser.tags("th")
        assert header_cells, "every table needs header cells"
        assert all(cell.get("scope") in {"col", "row"} for cell in header_cells)
        assert parser.tags("caption")


def test_class_details_shown_with_exact_prompts(results: dict, parsed: ReportParser) -> None:
    text = "".join(parsed.text_chunks)
    for probe in results["probes"]:
        for detail in probe["class_details"]:
            for prompt in detail["prompts"]:
                assert prompt in text


def test_group_rows_show_rounded_values_intervals_and_small_flag(results: dict, html: str) -> None:
    group = group_entry(results, "denigration", "race", "harm_rate", "Black")
    assert (group["successes"], group["n"]) == (27, 230)
    assert format.percent(group["value"]) == "11.7%"
    assert f'<td class="num">{format.percent(group["value"])}</td>' in html
    assert f'<td class="num">{format.percent_range(group["ci_low"], group["ci_high"])}</td>' in html
    analysis_tables = "".join(table for table in table_fragments(html) if '<table class="rates">' in table)
    small_rows = re.findall(r'<tr class="small">.*?</tr>', analysis_tables, flags=re.S)
    # Middle Eastern (n=18): in race and race x gender, 1 gender table + 3 denigration tables each.
    assert len(small_rows) == sum(group["small"] for _, _, entry in slice_metrics(results)
                                  for group in entry["groups"]) == 8
    assert all(f"small (n &lt; {MIN_N})" in row for row in small_rows)


def test_empty_intersections_and_disparity_and_test_are_listed(results: dict, html: str) -> None:
    assert html.count("Middle Eastern / Female") >= 4  # one per race x gender metric table
    assert "Empty intersections" in html
    harm_by_race = metric_entry(results, "denigration", "race", "harm_rate")
    assert format.points_size(harm_by_race["disparity"]["gap"]) in html
    assert "Holm-adjusted p" in html
    adjusted = [entry["test"]["p_adjusted"] for _, _, entry in slice_metrics(results)]
    assert min(adjusted) < 0.001 and max(adjusted) >= 0.001
    for p_adjusted in adjusted:
        assert f"<dd>{format.p_value(p_adjusted).replace('<', '&lt;')}</dd>" in html


def test_anchors_stay_unique_when_names_slug_alike() -> None:
    probe_ids = ("gender", "denigration", "Gender")  # 'Gender' slugs to the same 'gender'
    twins = report_fixtures.build(taxonomy=report_fixtures.taxonomy_document(probe_ids=probe_ids),
                                  predictions=report_fixtures.predictions_table(probe_ids=probe_ids))
    parser = parse(render_report(twins))
    assert len(parser.ids) == len(set(parser.ids))
    view = build_report_view(twins)
    assert len({t.anchor for t in view.tables()}) == len(view.tables()) == 13


# --------------------------------------------------------------------------- charts


def test_one_accessible_svg_per_slice_and_metric(results: dict, html: str, parsed: ReportParser) -> None:
    svgs = parsed.tags("svg")
    bar_charts = [svg for svg in svgs if str(svg.get("id")).startswith("chart_")]
    heatmaps = [svg for svg in svgs if str(svg.get("id")).startswith("heatmap_")]
    confusions = [svg for svg in svgs if str(svg.get("id")).startswith("confusion_")]
    assert len(bar_charts) == len(slice_metrics(results)) == 11
    # one heatmap per race x gender table: 1 accuracy + 3 denigration rates
    assert len(heatmaps) == 4
    assert len(confusions) == 1  # the attribute probe
    assert len(svgs) == 16
    for svg in svgs:
        assert svg.get("role") == "img"
        assert svg.get("aria-label")
    svg_fragments = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert all(re.search(r"<svg\b[^>]*>\s*<title>[^<]+</title>", fragment) for fragment in svg_fragments)


def test_chart_alt_text_uses_the_table_rounding(results: dict, html: str) -> None:
    black = group_entry(results, "denigration", "race", "harm_rate", "Black")
    interval = format.percent_range(black["ci_low"], black["ci_high"])
    assert f"Black 11.7% (95% CI {interval}, n = 230)" in html
    assert f'<td class="num">{interval}</td>' in html


def test_chart_legend_names_the_interval_method_in_force() -> None:
    jeffreys = report_fixtures.build(settings=StatsSettings(min_n=MIN_N, interval="jeffreys", confidence=0.9))
    output = render_report(jeffreys)
    assert "90% Jeffreys interval" in output and "Wilson interval" not in output
    assert "90% CI" in output and "95% CI" not in output


def test_svg_styles_are_scoped_to_their_chart(html: str) -> None:
    for style in re.findall(r"<svg\b.*?<style[^>]*>(.*?)</style>", html, flags=re.S):
        assert re.match(r"\s*#(chart|heatmap|confusion)_[a-z0-9-]+ \*\{", style), style


def test_svg_embeds_no_doctype_metadata_or_fixed_size(html: str) -> None:
    assert "<!DOCTYPE svg" not in html
    assert "<?xml" not in html
    assert "<metadata" not in html
    for root in re.findall(r"<svg\b[^>]*>", html):
        assert " width=" not in root and " height=" not in root
        assert "viewBox=" in root


def test_svg_with_markup_and_math_in_labels_is_valid_and_escaped() -> None:
    nasty = ["<b>bold</b> & co", "$x^2$", 'quote " and \' apostrophe', XSS_CLASS]
    view = build_report_view(report_fixtures.results_with_groups(nasty))
    table = view.tables()[0]  # harm_rate by race
    chart = rate_chart(table, confidence_level=view.statistics.confidence_level, min_n=view.statistics.min_n)
    assert chart is not None
    svg = str(chart.svg)
    assert "<script" not in svg and "<b>" not in svg
    root = ElementTree.fromstring(svg)  # raises on invalid XML
    texts = {"".join(element.itertext()) for element in root.iter("{http://www.w3.org/2000/svg}text")}
    for label in nasty:
        assert label in texts, f"{label!r} not drawn verbatim"
    assert root.get("role") == "img"
    assert XSS_CLASS in root.get("aria-label", "")
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and XSS_CLASS in (title.text or "")


def test_two_charts_never_share_element_ids(html: str) -> None:
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- safety


def test_xss_class_name_is_escaped_text(html: str, parsed: ReportParser) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert parsed.tags("script") == []
    assert XSS_CLASS in "".join(parsed.text_chunks)


def test_user_strings_in_every_field_are_escaped() -> None:
    marker = '<img src=x onerror="alert(1)">'
    empty_marker = '<img src=y onerror="alert(2)">'  # the race with an empty intersection
    hostile = report_fixtures.build(
        taxonomy=report_fixtures.taxonomy_document(name=marker),
        predictions=report_fixtures.predictions_table(rename={"Black": marker, "Middle Eastern": empty_marker}),
        model_id=marker, dataset_spec=marker)
    assert any(marker in finding["text"] for finding in hostile["findings"])
    assert f"{empty_marker} / Female" in metric_entry(hostile, "gender", "race x gender", "accuracy")["empty_groups"]
    output = render_report(hostile)
    assert "<img" not in output
    assert parse(output).tags("img") == []
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in output
    assert "&lt;img src=y onerror=&#34;alert(2)&#34;&gt; / Female" in output


def test_no_external_references(html: str, parsed: ReportParser) -> None:
    for tag, attributes in parsed.start_tags:
        for name, value in attributes.items():
            if name in {"src", "href", "xlink:href", "action", "poster", "data"} and value:
                assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {name}={value!r}>"
    assert parsed.tags("link") == [] and parsed.tags("script") == [] and parsed.tags("img") == []
    assert "@import" not in html and "url(http" not in html and "url(//" not in html
    # The only URLs left are XML namespace names, which browsers never fetch.
    for match in re.finditer(r"https?://[^\s\"'<>]+", html):
        preceding = html[max(0, match.start() - 16): match.start()]
        assert re.search(r'xmlns(:\w+)?="$', preceding), f"unexpected URL {match.group(0)}"


def test_report_does_not_import_torch_or_transformers() -> None:
    code = (
        "import sys, clipaudit.report as r; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, "
        "[m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


# --------------------------------------------------------------------------- formatting


def test_filters_are_the_one_formatter() -> None:
    """The templates round numbers only through clipaudit.format (no formatter of the report's own)."""
    assert FILTERS["percent"] is format.percent
    assert FILTERS["interval"] is format.percent_range
    assert FILTERS["points"] is format.points_size
    assert FILTERS["signed_points"] is format.points_number
    assert FILTERS["signed_interval"] is format.points_range
    assert FILTERS["p_value"] is format.p_value
    assert FILTERS["ci_label"] is format.ci_label
    assert FILTERS["or_dash"] is format.or_dash


@pytest.mark.parametrize(
    ("p_value", "shown"),
    [(0.0, "< 0.001"), (0.00099, "< 0.001"), (0.001, "0.001"), (0.04999, "0.05"), (0.0502, "0.0502"), (0.42, "0.42"),
     (1.0, "1"), (None, "\u2014")],
)
def test_p_value_filter(p_value: float | None, shown: str) -> None:
    assert FILTERS["p_value"](p_value) == shown


def test_percent_interval_and_points_filters() -> None:
    assert FILTERS["percent"](0.0656) == "6.6%"
    assert FILTERS["percent"](None) == "\u2014"
    assert FILTERS["interval"](0.026, 0.157) == "2.6\u201315.7%"
    assert FILTERS["points"](0.05) == "5.0 pp"
    assert FILTERS["ci_label"](0.9) == "90% CI"


# --------------------------------------------------------------------------- writing


def test_write_report_writes_and_overwrites_without_leftovers(results: dict, html: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report", encoding="utf-8")
    write_report(results, target)
    assert target.read_text(encoding="utf-8") == html
    write_report(results, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_write_report_failure_keeps_old_file_and_leaves_no_temp(
    results: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report", encoding="utf-8")

    def failing_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(render_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(results, target)
    assert target.read_text(encoding="utf-8") == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


# --------------------------------------------------------------------------- determinism


def test_same_results_give_identical_html(results: dict, html: str) -> None:
    assert render_report(copy.deepcopy(results)) == html


def test_identical_html_across_processes(results: dict, html: str, tmp_path: Path) -> None:
    """Fresh interpreter, other hash seed: still byte-identical (the gold-file test relies on it)."""
    source = tmp_path / "results.json"
    source.write_text(json.dumps(results), encoding="utf-8")
    out = tmp_path / "again.html"
    code = (
        "import json; from pathlib import Path; from clipaudit.report import write_report; "
        f"write_report(json.loads(Path({str(source)!r}).read_text(encoding='utf-8')), Path({str(out)!r}))"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, env=environment)
    assert out.read_text(encoding="utf-8") == html


def test_compiled_templates_are_reused_and_an_unwritable_cache_is_ignored(tmp_path: Path, monkeypatch) -> None:
    from jinja2.bccache import bc_magic

    from clipaudit.report.templating import build_environment

    def page(compiled: Path, *, may_compile: bool = True) -> str:
        env = build_environment(compiled)
        if not may_compile:
            env.compile = lambda *args, **kwargs: pytest.fail("compiled again despite the kept code")
        return env.get_template("macros.html.j2").render()

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # PYTHONDONTWRITEBYTECODE: nothing is kept
    first = page(tmp_path / "compiled")
    assert not (tmp_path / "compiled").exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert page(tmp_path / "compiled") == first
    assert sorted((tmp_path / "compiled").iterdir()), "the compiled template was not kept"
    assert page(tmp_path / "compiled", may_compile=False) == first
    for cut in (7, len(bc_magic) + 3):  # cut short by a full disk: in the header, in the checksum
        for kept in (tmp_path / "compiled").iterdir():
            kept.write_bytes(kept.read_bytes()[:cut])
        assert page(tmp_path / "compiled") == first
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert page(blocked / "compiled") == first  # the folder cannot be made: rendering goes on without it
    assert not (blocked / "compiled").exists()
    # Other options (here trim_blocks) compile to other code: what was kept under these is not read.
    from clipaudit.report import templating

    monkeypatch.setitem(templating.SYNTAX_OPTIONS, "trim_blocks", False)
    compiled = []
    env = build_environment(tmp_path / "compiled")
    compile_now = env.compile
    env.compile = lambda *args, **kwargs: compiled.append(args) or compile_now(*args, **kwargs)
    env.get_template("macros.html.j2").render()
    assert compiled
