"""Evidence packs: everything the store knows about one hoster's cases, for ATKM or ACM.

Part three (build and write), and the entry point. The data flows one way:

1. collect: `read_evidence()` (`reports.evidence_data`) reads one hoster's
   cases from the store into an `EvidenceData`; `findings()` works out its
   judgements and figures once;
2. render: `reports.evidence_docs` turns those into the content of each file
   (CSV tables, JSON documents, Markdown for people);
3. build and write (here): `build_pack()` chooses the files for the audience
   (``dsa.md``/``dsa.json`` for ACM, ``atkm.md`` for ATKM), encodes them and
   adds ``MANIFEST.sha256`` (pure: file name -> bytes); `write_pack()` writes
   the folder and its zip without ever leaving half a pack behind.

Each module imports only the ones before it. The names other modules use
from the two parts are re-exported here, so ``reports.evidence`` stays the
one place to import from.

No material is read or written: the store holds none, and the pack carries
hashes, URLs and metadata only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reports.csvsafe import rfc3339
from reports.evidence_data import (
    Audience,
    EvidenceData,
    EvidenceError,
    find_hoster,
    findings,
    read_evidence,
)
from reports.evidence_docs import (
    ATTRIBUTION_LOCATION_COLUMNS,
    ATTRIBUTION_OPERATOR_COLUMNS,
    CASE_COLUMNS,
    CASE_LOCATION_COLUMNS,
    CHECK_COLUMNS,
    CHECK_COLUMNS_BEFORE_PDQ,
    MANIFEST,
    PACK_FORMAT,
    atkm_md,
    attributions_csv,
    cases_csv,
    check_cells,
    checks_csv,
    dsa_document,
    dsa_md,
    figures_document,
    hoster_document,
    jurisdiction_md,
    method_md,
    notices_csv,
    orders_csv,
    pack_document,
    readme_md,
    runs_csv,
)

__all__ = [
    "ATTRIBUTION_LOCATION_COLUMNS",
    "ATTRIBUTION_OPERATOR_COLUMNS",
    "CASE_COLUMNS",
    "CASE_LOCATION_COLUMNS",
    "CHECK_COLUMNS",
    "CHECK_COLUMNS_BEFORE_PDQ",
    "MANIFEST",
    "PACK_FORMAT",
    "Audience",
    "EvidenceData",
    "EvidenceError",
    "build_pack",
    "check_cells",
    "find_hoster",
    "hoster_document",
    "manifest_text",
    "pack_document",
    "read_evidence",
    "sha256_hex",
    "write_pack",
]

# ---------------------------------------------------------------- the pack


def json_bytes(document: Any) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return rfc3339(value)
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    return (json.dumps(document, indent=2, ensure_ascii=False, default=default)
            + "\n").encode("utf-8")


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def manifest_text(files: dict[str, bytes]) -> str:
    """``sha256sum`` format: ``<hex>  <relative path>`` per file, sorted by path."""
    return "".join(f"{sha256_hex(files[name])}  {name}\n" for name in sorted(files))


def build_pack(data: EvidenceData) -> dict[str, bytes]:
    """Every file of the pack, MANIFEST.sha256 included (pure)."""
    found = findings(data)
    files: dict[str, str | bytes] = {
        "cases.csv": cases_csv(data, found),
        "checks.csv": checks_csv(data),
        "runs.csv": runs_csv(data),
        "attributions.csv": attributions_csv(data),
        "notices.csv": notices_csv(data, found),
        "orders.csv": orders_csv(data, found),
        "figures.json": json_bytes(figures_document(data, found)),
        "hoster.json": json_bytes(hoster_document(data.hoster, data.aliases)),
        "jurisdiction.md": jurisdiction_md(data),
        "method.md": method_md(data, found),
    }
    if data.audience is Audience.ACM:
        document = dsa_document(data, found)
        files["dsa.json"] = json_bytes(document)
        files["dsa.md"] = dsa_md(data, document)
    else:
        files["atkm.md"] = atkm_md(data, found)
    files["README.md"] = readme_md(data, sorted([*files, "pack.json", MANIFEST]))
    files["pack.json"] = json_bytes(pack_document(data))
    encoded = {name: body.encode("utf-8") if isinstance(body, str) else body
               for name, body in files.items()}
    encoded[MANIFEST] = manifest_text(encoded).encode("utf-8")
    return encoded


# ---------------------------------------------------------------- writing


def _in_the_way(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def write_pack(files: dict[str, bytes], out: Path, *, force: bool = False,
               generated_at: datetime | None = None) -> tuple[Path, Path]:
    """Write ``files`` into the folder ``out`` and the zip ``out.zip``.

    A non-empty ``out`` or an existing ``out.zip`` is refused unless ``force``.
    Both are first written as temporary siblings and renamed into place, so an
    interruption leaves the old pack (or nothing), never half a new one.
    """
    out = out.resolve() if not out.is_absolute() else out
    archive = out.with_name(out.name + ".zip")
    if not force:
        for path in (out, archive):
            if _in_the_way(path):
                raise EvidenceError(f"{path} exists and is not empty "
                                    "(use --force to replace it)")
    if out.exists() and not out.is_dir():
        raise EvidenceError(f"{out} is a file, not a folder")
    if not out.parent.is_dir():
        raise EvidenceError(f"folder {out.parent} does not exist")
    tag = uuid.uuid4().hex[:8]
    temp_dir = out.with_name(f".{out.name}.tmp-{tag}")
    temp_zip = out.with_name(f".{out.name}.zip.tmp-{tag}")
    stamp = (generated_at or datetime.now(UTC)).astimezone(UTC)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute,
                 stamp.second)
    try:
        temp_dir.mkdir()
        for name in sorted(files):
            (temp_dir / name).write_bytes(files[name])
        with zipfile.ZipFile(temp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files):
                info = zipfile.ZipInfo(f"{out.name}/{name}", date_time=date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, files[name])
        old = out.with_name(f".{out.name}.old-{tag}")
        if out.exists():
            out.rename(old)
        temp_dir.rename(out)
        os.replace(temp_zip, archive)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if temp_dir.exists():
            shutil.rmtree(temp_dir)
        if temp_zip.exists():
            temp_zip.unlink()
    return out, archive
