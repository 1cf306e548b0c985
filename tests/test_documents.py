"""The envelope of every output document, written and checked in one place (clipaudit.documents)."""
from __future__ import annotations

import json

import pytest

from clipaudit.documents import SCHEMA_VERSIONS, check_schema_version, read_document, stamped
from clipaudit.errors import DocumentError
from clipaudit.version import __version__


def test_stamped_documents_carry_schema_and_clipaudit_versions():
    with_manifest = stamped("results", {"manifest": {"seed": 0}, "probes": []})
    assert list(with_manifest)[0] == "schema_version" and with_manifest["schema_version"] == SCHEMA_VERSIONS["results"]
    assert with_manifest["manifest"]["clipaudit_version"] == __version__ and with_manifest["manifest"]["created_at"]
    without = stamped("compare", {"passed": True})
    assert without["clipaudit_version"] == __version__ and "created_at" in without


@pytest.mark.parametrize("kind", sorted(SCHEMA_VERSIONS))
def test_a_document_of_another_schema_version_names_both_versions(kind, tmp_path):
    document = {"schema_version": "9.9", "manifest": {"clipaudit_version": "7.0.1"}, "clipaudit_version": "7.0.1"}
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(document))
    with pytest.raises(DocumentError) as caught:
        read_document(path, kind)
    message = str(caught.value)
    assert str(path) in message and "7.0.1" in message and "'9.9'" in message
    assert repr(SCHEMA_VERSIONS[kind]) in message and __version__ in message
    assert "\n" not in message


def test_unreadable_and_foreign_documents_are_one_line_errors(tmp_path):
    broken = tmp_path / "results.json"
    broken.write_text("{not json")
    with pytest.raises(DocumentError, match="not readable JSON"):
        read_document(broken, "results")
    with pytest.raises(DocumentError, match="expected a JSON object"):
        check_schema_version([1, 2], "results", source="x.json")
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "missing.json", "results")


def test_compare_and_stats_refuse_a_results_json_of_another_version(tmp_path, capsys):
    """Through the CLI: one line, exit 2, the versions named."""
    from clipaudit.cli import main

    folder = tmp_path / "old-audit"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"schema_version": "0.9", "manifest": {"clipaudit_version": "0.0.1"}}))
    (folder / "predictions.parquet").write_bytes(b"")
    assert main(["compare", str(folder), str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "0.0.1" in err and "'0.9'" in err
    assert not (tmp_path / "out").exists()


def test_hostile_documents_are_refused_in_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DocumentError, match="nested too deeply"):
        read_document(deep, "results")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(DocumentError, match="not a regular file"):
        read_document(folder, "results")
