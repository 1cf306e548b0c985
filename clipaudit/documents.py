"""The envelope of every output document: schema version, clipaudit version, creation time.

results.json, sweep.json and compare.json are written and read through this module alone, so
the version rules live in one place: a writer stamps its document and checks it against the
shipped JSON Schema (a document of ours that fails it is a bug, not bad input); a reader checks
the schema version first and, when it differs, says which version made the document and which
one this clipaudit reads.
"""
from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from clipaudit.errors import DocumentError
from clipaudit.schemas import schema_problem
from clipaudit.version import __version__

DocumentKind = Literal["results", "sweep", "compare"]

#: Larger documents are refused before parsing (a results.json of a large audit is tens of MB).
MAX_DOCUMENT_BYTES = 256 << 20

#: The schema version each kind of document is written in (and the only one read).
SCHEMA_VERSIONS: dict[str, str] = {"results": "1.0", "sweep": "1.0", "compare": "1.0"}


def provenance() -> dict[str, str]:
    """Who made a document and when: ``clipaudit_version`` and ``created_at`` (UTC, seconds)."""
    return {"clipaudit_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def stamped(kind: DocumentKind, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``schema_version`` first. Provenance goes into the manifest where the
    document has one (results, sweep), else at the top (compare)."""
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSIONS[kind]}
    if "manifest" in body:
        document.update(body)
        document["manifest"] = {**provenance(), **body["manifest"]}
    else:
        document.update(provenance())
        document.update(body)
    return document


def check_own(document: dict[str, Any], kind: DocumentKind) -> dict[str, Any]:
    """Check a document clipaudit made against its schema; a failure is a bug (RuntimeError)."""
    problem = schema_problem(document, kind)
    if problem is not None:
        raise RuntimeError(f"clipaudit wrote a {kind}.json that breaks its own schema: {problem}")
    return document


def to_json_bytes(document: dict[str, Any]) -> bytes:
    """The JSON every output document is written as (UTF-8, indented, non-ASCII kept)."""
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


def made_by(document: dict[str, Any]) -> str:
    """The clipaudit version that wrote ``document``, wherever its kind keeps it."""
    manifest = document.get("manifest")
    version = document.get("clipaudit_version") or (manifest.get("clipaudit_version")
                                                     if isinstance(manifest, dict) else None)
    return str(version) if version else "an unknown clipaudit version"


def check_schema_version(document: Any, kind: DocumentKind, *, source: str | Path) -> dict[str, Any]:
    """``document`` if it is a ``kind`` document of the schema version this clipaudit reads.

    Raises :class:`DocumentError` naming the file, the version that made it and the one read here.
    """
    if not isinstance(document, dict):
        raise DocumentError(f"{source}: not a {kind}.json document (expected a JSON object)")
    found, wanted = document.get("schema_version"), SCHEMA_VERSIONS[kind]
    if found != wanted:
        raise DocumentError(
            f"{source}: written by clipaudit {made_by(document)} in {kind} schema version {found!r}; "
            f"this clipaudit ({__version__}) reads schema version {wanted!r}"
        )
    return document


def load_json(path: Path, kind: DocumentKind) -> Any:
    """The parsed JSON of a file within the limits (a regular file of at most MAX_DOCUMENT_BYTES,
    not nested beyond the parser's depth); DocumentError with one line otherwise."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise DocumentError(f"{path}: not a regular file")
        if status.st_size > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"{path}: {status.st_size:,} bytes; documents are refused above "
                                f"{MAX_DOCUMENT_BYTES:,} bytes")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except RecursionError:
        raise DocumentError(f"{path}: nested too deeply to be a {kind}.json document") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DocumentError(f"{path}: not readable JSON ({str(error).splitlines()[0]})") from None


def read_document(path: str | Path, kind: DocumentKind) -> dict[str, Any]:
    """Read, version-check and schema-check a ``kind`` document; DocumentError names the file."""
    path = Path(path)
    document = load_json(path, kind)
    check_schema_version(document, kind, source=path)
    problem = schema_problem(document, kind)
    if problem is not None:
        raise DocumentError(f"{path}: does not follow the {kind} schema: {problem}")
    return document
