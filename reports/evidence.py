"""Evidence packs: everything the store knows about one hoster's cases, for ATKM or ACM.

`read_evidence()` (in `reports.evidence_data`) reads one hoster's cases and
computes their figures; `reports.evidence_docs` writes the documents for
people. This module makes the pack of them: `build_pack()` turns the data
into the pack's files (pure: file name -> bytes): CSV tables, figures, the
hoster and why it is (not) Dutch, the method, the regulator's points
(``dsa.md`` for ACM, ``atkm.md`` for ATKM), ``pack.json`` and
``MANIFEST.sha256``. `write_pack()` writes the folder and its zip without ever
leaving half a pack behind. The names other modules use from the two parts are
re-exported here, so ``reports.evidence`` stays the one place to import from.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernel import __version__
from kernel.model import Verdict, VerdictGroup
from reports.csvsafe import csv_text, rfc3339
from reports.evidence_data import (
    ATTRIBUTION_COLUMNS,
    CASE_COLUMNS,
    CHECK_COLUMNS,
    MANIFEST,
    NOTICE_COLUMNS,
    ORDER_COLUMNS,
    RUN_COLUMNS,
    Audience,
    EvidenceData,
    EvidenceError,
    attribution_cells,
    case_cells,
    check_cells,
    figures,
    find_hoster,
    judgements,
    read_evidence,
    run_cells,
)
from reports.evidence_docs import (
    atkm_md,
    dsa_document,
    dsa_md,
    jurisdiction_md,
    method_md,
    readme_md,
)
from store.models import Hoster, HosterAlias

__all__ = [
    "CASE_COLUMNS",
    "CHECK_COLUMNS",
    "MANIFEST",
    "PACK_FORMAT",
    "Audience",
    "EvidenceData",
    "EvidenceError",
    "build_pack",
    "check_cells",
    "find_hoster",
    "manifest_text",
    "read_evidence",
    "sha256_hex",
    "write_pack",
]

PACK_FORMAT = "hostwatch-evidence/1"

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


def hoster_document(hoster: Hoster, aliases: Sequence[HosterAlias] = ()) -> dict[str, Any]:
    """hoster.json: the hoster, and every way its sources named it (``aliases``:
    how its attributions were matched to this one company)."""
    return {"key": hoster.key, "legal_name": hoster.legal_name, "country": hoster.country,
            "asns": list(hoster.asns or []), "dsa_role": hoster.dsa_role,
            "abuse_contact": hoster.abuse, "cdn": hoster.cdn, "source": hoster.source,
            "updated_at": hoster.updated_at,
            "aliases": [{"kind": a.kind, "value": a.value, "seen_as": a.seen_as,
                         "first_seen": a.first_seen} for a in aliases]}


def build_pack(data: EvidenceData) -> dict[str, bytes]:
    """Every file of the pack, MANIFEST.sha256 included (pure)."""
    per_notice, per_order, _ = judgements(data)
    of_record = {case.attribution_id for case in data.cases}

    notice_rows = [[n.id, n.case_id, n.sent_at, n.channel, n.recipient, n.reference,
                    n.trusted_flagger, n.due_at, per_notice[n.id].outcome.value,
                    per_notice[n.id].at_start, per_notice[n.id].last_before,
                    per_notice[n.id].first_after]
                   for n in data.notices]
    order_rows = []
    for o in data.orders:
        j = per_order.get(o.id)
        order_rows.append([o.id, o.case_id, o.issuer, o.legal_basis, o.reference, o.issued_at,
                           o.deadline_at, o.regime, o.due_at,
                           j.outcome.value if j else "not judged (no regime)",
                           j.at_start if j else None, j.last_before if j else None,
                           j.first_after if j else None])
    files: dict[str, str | bytes] = {
        "cases.csv": csv_text(CASE_COLUMNS, [case_cells(c) for c in data.cases]),
        "checks.csv": csv_text(CHECK_COLUMNS, [check_cells(c) for c in data.checks]),
        "runs.csv": csv_text(RUN_COLUMNS, [run_cells(r) for r in data.runs]),
        "attributions.csv": csv_text(ATTRIBUTION_COLUMNS, [
            attribution_cells(a, a.id in of_record) for a in data.attributions]),
        "notices.csv": csv_text(NOTICE_COLUMNS, notice_rows),
        "orders.csv": csv_text(ORDER_COLUMNS, order_rows),
        "figures.json": json_bytes(figures(data)),
        "hoster.json": json_bytes(hoster_document(data.hoster, data.aliases)),
        "jurisdiction.md": jurisdiction_md(data),
        "method.md": method_md(data),
    }
    if data.audience is Audience.ACM:
        document = dsa_document(data)
        files["dsa.json"] = json_bytes(document)
        files["dsa.md"] = dsa_md(data, document)
    else:
        files["atkm.md"] = atkm_md(data)
    files["README.md"] = readme_md(data, sorted([*files, "pack.json", MANIFEST]))
    files["pack.json"] = json_bytes(pack_document(data))
    encoded = {name: body.encode("utf-8") if isinstance(body, str) else body
               for name, body in files.items()}
    encoded[MANIFEST] = manifest_text(encoded).encode("utf-8")
    return encoded


def pack_document(data: EvidenceData) -> dict[str, Any]:
    return {
        "format": PACK_FORMAT,
        "tool": "hostwatch",
        "tool_version": __version__,
        "generated_at": data.generated_at,
        "for": data.audience.value,
        "hoster": {"key": data.hoster.key, "legal_name": data.hoster.legal_name},
        "period": {"reported_since": data.since, "reported_until": data.until},
        "store": data.store_url,
        "chain_head": {"check_id": data.head_check_id, "record_hash": data.head_hash},
        "counts": {"cases": len(data.cases), "checks": len(data.checks),
                   "attributions": len(data.attributions), "notices": len(data.notices),
                   "orders": len(data.orders)},
        "served_checks": sum(Verdict(c.verdict).group is VerdictGroup.SERVED
                             for c in data.checks),
    }


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
