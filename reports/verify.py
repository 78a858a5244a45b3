"""Verifying an evidence pack against its manifest and against the store.

A pack (a folder, or the zip `hostwatch report evidence` writes beside it)
holds: every file listed in ``MANIFEST.sha256`` with that SHA-256 and no file
that is not listed; a chain head (``pack.json``) that is a link of the store's
check hash chain (the check with that id has that record_hash); and in
``checks.csv`` only checks that the store still holds unchanged, cell for
cell (the PDQ cells too; a pack written before them is compared on the
columns it has). Each problem names the pack, and the file or the check id.
The other tables (cases.csv, attributions.csv: derived, not chained) are held
by the manifest only, so a pack written before their server-location
columns (#14) verifies as it did.

The store's own chain is recomputed by ``store.checks.verify_chain``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import ReportError
from reports.csvsafe import safe_cell
from reports.evidence import (
    CHECK_COLUMNS,
    CHECK_COLUMNS_BEFORE_PDQ,
    MANIFEST,
    check_cells,
    sha256_hex,
)
from store.checks import CHECK_FIELDS, GENESIS, record_hash
from store.models import Check

__all__ = ["Pack", "PackError", "PackResult", "read_pack", "verify_pack"]

_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


class PackError(ReportError):
    """The pack cannot be read at all (no such file, not a zip...)."""


@dataclass(frozen=True)
class Pack:
    """A pack's files, by path relative to the pack (MANIFEST.sha256 included)."""

    name: str  # as the user gave it, for messages
    files: dict[str, bytes]


@dataclass
class PackResult:
    name: str
    files_checked: int = 0
    checks_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.name}: {text}")


def read_pack(path: Path) -> Pack:
    """Read a pack folder, or a pack zip (its files under one top folder, or none)."""
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p.read_bytes()
                 for p in sorted(path.rglob("*")) if p.is_file()}
        return Pack(str(path), files)
    if not path.exists():
        raise PackError(f"{path}: no such folder or zip")
    try:
        with zipfile.ZipFile(path) as zf:
            entries = {info.filename: zf.read(info) for info in zf.infolist()
                       if not info.is_dir()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(f"{path}: not a pack folder or zip ({exc})") from exc
    tops = {PurePosixPath(name).parts[0] for name in entries}
    if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in entries:
        prefix = next(iter(tops)) + "/"
        entries = {name[len(prefix):]: body for name, body in entries.items()}
    return Pack(str(path), entries)


def _manifest(pack: Pack, result: PackResult) -> dict[str, str] | None:
    raw = pack.files.get(MANIFEST)
    if raw is None:
        result.problem(f"{MANIFEST}: missing: no file of the pack can be verified")
        return None
    listed: dict[str, str] = {}
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            result.problem(f"{MANIFEST}:{number}: not a sha256sum line: {line[:80]!r}")
            continue
        listed[match.group(2)] = match.group(1).lower()
    return listed


def _check_manifest(pack: Pack, result: PackResult) -> set[str]:
    """Every manifest line; returns the names of the files that fail it."""
    listed = _manifest(pack, result)
    if listed is None:
        return {name for name in pack.files}
    failed: set[str] = set()
    for name, digest in sorted(listed.items()):
        body = pack.files.get(name)
        if body is None:
            result.problem(f"{name}: missing (listed in {MANIFEST})")
            failed.add(name)
            continue
        result.files_checked += 1
        actual = sha256_hex(body)
        if actual != digest:
            result.problem(f"{name}: changed since the pack was written "
                           f"(sha256 {actual[:12]}…, {MANIFEST} says {digest[:12]}…)")
            failed.add(name)
    for name in sorted(set(pack.files) - set(listed) - {MANIFEST}):
        result.problem(f"{name}: extra file, not in {MANIFEST}")
        failed.add(name)
    return failed


def _check_head(session: Session, pack: Pack, result: PackResult) -> None:
    raw = pack.files.get("pack.json")
    if raw is None:
        return  # named by the manifest check
    try:
        head = json.loads(raw)["chain_head"]
        check_id, wanted = head["check_id"], str(head["record_hash"])
    except (ValueError, KeyError, TypeError) as exc:
        result.problem(f"pack.json: no chain_head ({exc})")
        return
    if check_id is None:
        if wanted != GENESIS:
            result.problem(f"pack.json: chain head without a check id but hash {wanted[:12]}…")
        return
    stored = session.scalar(select(Check.record_hash).where(Check.id == int(check_id)))
    if stored is None:
        result.problem(f"chain head check {check_id}: not in the store")
    elif stored != wanted:
        result.problem(f"chain head check {check_id}: record_hash in the store is "
                       f"{stored[:12]}…, the pack's chain head {wanted[:12]}…")


def _check_rows(session: Session, pack: Pack, result: PackResult, file_changed: bool) -> None:
    raw = pack.files.get("checks.csv")
    if raw is None:
        return  # named by the manifest check
    reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline=""))
    header = next(reader, None)
    if header is None or header not in (list(CHECK_COLUMNS), list(CHECK_COLUMNS_BEFORE_PDQ)):
        result.problem("checks.csv: not the columns hostwatch writes")
        return
    rows: list[tuple[int, list[str]]] = [(reader.line_num, row) for row in reader]
    ids: list[int] = []
    for line, row in rows:
        try:
            ids.append(int(row[0]))
        except (ValueError, IndexError):
            result.problem(f"checks.csv:{line}: no check id")
    stored: dict[int, Check] = {}
    for start in range(0, len(ids), 500):
        for found in session.scalars(select(Check).where(Check.id.in_(ids[start:start + 500]))):
            stored[found.id] = found
    blame = ("checks.csv was changed after the pack was written" if file_changed else
             "the store's row was changed after the pack was written")
    for line, row in rows:
        if not row or not row[0].isdigit():
            continue
        check_id = int(row[0])
        check = stored.get(check_id)
        if check is None:
            result.problem(f"check {check_id} (checks.csv:{line}): not in the store")
            continue
        result.checks_checked += 1
        cells = dict(zip(CHECK_COLUMNS, check_cells(check), strict=True))
        expected = [safe_cell(cells[name]) for name in header]
        differ = [f"{name} is {want!r} in the store, {got!r} in the pack"
                  for name, want, got in zip(header, expected, row, strict=False)
                  if want != got]
        if len(row) != len(expected):
            differ.append(f"{len(row)} cells in the pack, {len(expected)} expected")
        if differ:
            result.problem(f"check {check_id} (checks.csv:{line}): {'; '.join(differ)} "
                           f"({_blame(check, file_changed, blame)})")


def _blame(check: Check, file_changed: bool, blame: str) -> str:
    """Which side changed: a store row whose contents still give its
    record_hash (and so the chain) is intact, so the pack was changed, its
    manifest with it."""
    if file_changed:
        return blame
    row = {name: getattr(check, name) for name in CHECK_FIELDS}
    if record_hash(row, check.prev_hash) == check.record_hash:
        return ("the store's row still gives its record_hash: checks.csv was changed after "
                "the pack was written, and its line in MANIFEST.sha256 with it")
    return blame


def verify_pack(session: Session, pack: Pack) -> PackResult:
    """Check ``pack`` against its manifest and against the store in ``session``."""
    result = PackResult(pack.name)
    failed = _check_manifest(pack, result)
    _check_head(session, pack, result)
    _check_rows(session, pack, result, "checks.csv" in failed)
    return result
