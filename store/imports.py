"""Importing hotline reports, notices and removal orders from CSV or JSON Lines.

Each import checks every row first, then writes the good rows in one
transaction: a bad row is reported (`RowError`: file, line, field, reason) and
skipped, a file that cannot be read at all (`FileError`) writes nothing, and a
failure while writing rolls the whole file back. Stored evidence is never
rewritten: a row whose report id is already stored with other values is
rejected as a conflict, an identical one counts as unchanged, so re-importing
a file changes nothing.

CSV files need a header row (names are matched without regard to case and
surrounding spaces); JSON Lines files hold one object per line. Extra columns
are ignored. Files are UTF-8 (a BOM is accepted); a row with bytes that are
not UTF-8 in a column that is read is rejected, the other rows are kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ARRAY, ColumnElement, Table, any_, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from kernel import __version__
from kernel.deadlines import (
    LEGAL_CAP_HOURS,
    REGIME_TEXT,
    Regime,
    capped,
    notice_due,
    order_due,
    order_regime,
)
from kernel.model import CaseState, Method, PdqSource, Verdict
from kernel.state import Debounce
from kernel.urls import UrlError, normalise_url
from store.checks import NewCheck, append_checks
from store.db import Store
from store.models import Case, Check, Notice, Order
from store.of_record import set_attributions_of_record
from store.readers import (
    CATEGORIES,
    FALSE,
    TRUE,
    Fields,
    FileError,
    FileRows,
    RowError,
    RowNote,
    read_table,
    shown,
)

ORDER_REGIMES = (Regime.ATKM_ORDER.value, Regime.TERRORIST_1H.value)

__all__ = ["FileError", "ImportResult", "RowError", "RowNote", "import_cases",
           "import_checks", "import_notices", "import_orders"]

CHUNK = 500  # ids per IN (...) lookup: well inside SQLite's parameter limit
INSERT_BATCH = 10_000  # rows per executemany
ANALYZE_AFTER = 1_000  # rows added to a PostgreSQL table that make its statistics stale


@dataclass
class ImportResult:
    added: int = 0
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)
    notices_added: int = 0  # by import_cases, from notice_sent_at
    # Rows taken whose pdq was set on a stored case that had none, or one
    # hostwatch learned (import_cases): counted among the unchanged too.
    pdq_set: int = 0
    # Rows taken (added or unchanged) with something to know about them, e.g.
    # an order's deadline capped to the legal maximum. Not rejections.
    notes: list[RowNote] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        """Rows rejected (a row with several bad fields has several errors)."""
        return len({error.line for error in self.rejected})



# ---------------------------------------------------------------- store helpers


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY`` of one array parameter.

    One parameter instead of hundreds: the statement is the same for every
    chunk, and PostgreSQL keeps the whole condition on the unique index.
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool],
                    column == any_(bindparam(None, list(values), type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(values))


def _case_ids(session: Session, source: str, refs: Iterable[str]) -> dict[str, int]:
    """The hotline's report id -> case id, for the stored ones among ``refs``."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(refs))):
        found.update(session.execute(
            select(Case.external_id, Case.id)
            .where(Case.source == source, _among(session, Case.external_id, chunk))).all())
    return found


def _insert(session: Session, model: type[Case | Notice | Order],
            rows: list[dict[str, Any]]) -> None:
    table = cast(Table, model.__table__)
    # A Core executemany on the table: no ORM bookkeeping, no parameter limit.
    for start in range(0, len(rows), INSERT_BATCH):
        session.execute(insert(table), rows[start:start + INSERT_BATCH])
    if len(rows) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # Until autovacuum gets to a freshly filled table, PostgreSQL plans as
        # if it had no rows; the next import's lookups then filter every case
        # of the source per chunk (measured: 9 minutes to re-import 100,000
        # rows, 5 s with statistics). Without the right to analyze the table
        # PostgreSQL only warns.
        session.execute(text(f"ANALYZE {table.name}"))


def _conflict(name: str, line: int, what: str, column: str, stored: Any, given: Any) -> RowError:
    def show(value: Any) -> str:
        return repr(value.isoformat() if isinstance(value, datetime) else value)
    return RowError(name, line, column, f"conflict: {what} is stored with {column} "
                    f"{show(stored)}, this row has {show(given)} (stored evidence is "
                    "never rewritten)")


def _first_difference(stored: dict[str, Any], given: dict[str, Any],
                      columns: Sequence[str]) -> str | None:
    return next((column for column in columns if stored[column] != given[column]), None)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.utcoffset() is None:
        raise ValueError("now must carry a time zone")
    return now.astimezone(UTC)


def _check_source(source: str) -> None:
    if not source.strip() or len(source) > 64:
        raise ValueError(f"source must be 1 to 64 characters, got {source!r}")


# ---------------------------------------------------------------- reports


# file column -> Case attribute; compared with a stored case of the same id
_EVIDENCE = {"url": "url", "category": "category", "reported_at": "reported_at",
             "sha256": "ref_sha256", "pdq": "ref_pdq"}


def _case_row(fields: Fields, source: str, external_id: str | None) -> dict[str, Any]:
    """A row of the cases table from a file's row (with its line, and notice_sent_at)."""
    url = fields.text("url", required=True, max_len=8192)
    host = normalised = None
    if url is not None:
        try:
            normalised_url = normalise_url(url)
        except UrlError as exc:
            fields.fail("url", f"{exc}: {shown(url)}")
        else:
            normalised, host = normalised_url.url, normalised_url.host
    category = fields.text("category", required=True)
    if category is not None and category.lower() not in CATEGORIES:
        fields.fail("category", f"unknown category {category!r} "
                                f"(one of {', '.join(CATEGORIES)})")
    return {"line": fields.line, "source": source, "external_id": external_id,
            "url": url, "url_normalised": normalised, "host": host,
            "category": category.lower() if category else None,
            "reported_at": fields.time("reported_at", required=True),
            "ref_sha256": fields.hex64("sha256", "SHA-256"),
            "ref_pdq": fields.hex64("pdq", "PDQ hash"),
            "notice_sent_at": fields.time("notice_sent_at")}


def import_cases(store: Store, path: Path, *, source: str = "hotline",
                 now: datetime | None = None, fmt: str | None = None) -> ImportResult:
    """Import hotline reports: one case per row.

    Columns: ``id``, ``url``, ``category``, ``reported_at`` (ISO 8601 with a
    zone); optional ``notice_sent_at`` (adds an e-mail notice), ``sha256``,
    ``pdq`` (64 hex digits each, of the reported file).
    """
    now = _now(now)
    _check_source(source)
    table = read_table(path, fmt, ("id", "url", "category", "reported_at"),
                  ("notice_sent_at", "sha256", "pdq"))
    result = ImportResult(rejected=table.errors)
    rows: dict[str, dict[str, Any]] = {}  # report id -> row
    first_line: dict[str, int] = {}
    for line, record in table.rows:
        fields = Fields(table.name, line, record, now)
        external_id = fields.text("id", required=True)
        if external_id in first_line:
            fields.fail("id", f"duplicate id {external_id!r} (first on line "
                              f"{first_line[external_id]})")
        elif external_id is not None:
            first_line[external_id] = line
        row = _case_row(fields, source, external_id)
        if fields.errors:
            result.rejected.extend(fields.errors)
        else:
            rows[row["external_id"]] = row

    with store.transaction() as session:
        stored = {}
        for chunk in _chunks(sorted(rows)):
            for case in session.execute(
                    select(Case.external_id, *(getattr(Case, a) for a in _EVIDENCE.values()),
                           Case.ref_pdq_source)
                    .where(Case.source == source, _among(session, Case.external_id, chunk))):
                stored[case[0]] = dict(zip(_EVIDENCE.values(), case[1:-1], strict=True))
                if case[-1] == PdqSource.LEARNED:
                    # Not the report's: a file without a pdq agrees with it,
                    # and a file's pdq replaces it.
                    stored[case[0]]["ref_pdq"] = None
        new: list[dict[str, Any]] = []
        noticed: list[dict[str, Any]] = []
        for external_id, row in rows.items():
            old = stored.get(external_id)
            # A file's pdq fills a case that has none, or replaces one learned
            # by hostwatch (if the row is taken): the hotline's hash of the
            # reported file comes later than the report, sometimes.
            replaces = (old is not None and old["ref_pdq"] is None
                        and row["ref_pdq"] is not None)
            if old is not None and replaces:
                old = {**old, "ref_pdq": row["ref_pdq"]}
            if old is None:
                new.append(row)
            elif column := _first_difference(old, row, list(_EVIDENCE.values())):
                file_column = next(k for k, v in _EVIDENCE.items() if v == column)
                result.rejected.append(_conflict(table.name, row["line"], f"id {external_id!r}",
                                                 file_column, old[column], row[column]))
                continue
            else:
                result.unchanged += 1
                if replaces:
                    # Only for a row taken: a rejected one changes nothing.
                    session.execute(update(Case).where(
                        Case.source == source, Case.external_id == external_id).values(
                        ref_pdq=row["ref_pdq"], ref_pdq_source=PdqSource.REPORT.value,
                        ref_pdq_check_id=None))
                    result.pdq_set += 1
            if row["notice_sent_at"] is not None:
                noticed.append(row)
        _insert(session, Case, [
            {key: value for key, value in row.items() if key not in ("line", "notice_sent_at")}
            | {"imported_at": now, "state": CaseState.UNCHECKED.value, "reappearances": 0,
               "check_count": 0,
               "ref_pdq_source": PdqSource.REPORT.value if row["ref_pdq"] else None}
            for row in new])
        result.added = len(new)
        ids = _case_ids(session, source, (row["external_id"] for row in noticed))
        notices = {(ids[row["external_id"]], row["notice_sent_at"]) for row in noticed}
        for chunk in _chunks(sorted({case_id for case_id, _ in notices})):
            notices -= {(case_id, sent_at) for case_id, sent_at in session.execute(
                select(Notice.case_id, Notice.sent_at)
                .where(Notice.recipient == "", _among(session, Notice.case_id, chunk)))}
        _insert(session, Notice, [
            {"case_id": case_id, "sent_at": sent_at, "channel": "email", "recipient": "",
             "reference": "", "trusted_flagger": False, "due_at": notice_due(sent_at)}
            for case_id, sent_at in sorted(notices)])
        result.notices_added = len(notices)
    result.rejected.sort(key=lambda error: error.line)
    return result


# ---------------------------------------------------------------- notices and orders


def _case_rows(table: FileRows, now: datetime, parse: Callable[[Fields], dict[str, Any]],
               key: Sequence[str], what: str, result: ImportResult) -> list[dict[str, Any]]:
    """The good rows of a file whose rows each belong to a case (``case_id``);
    bad rows and repeats of a (case, ``key``) go to ``result.rejected``."""
    rows: list[dict[str, Any]] = []
    first_line: dict[tuple[Any, ...], int] = {}
    for line, record in table.rows:
        fields = Fields(table.name, line, record, now)
        row: dict[str, Any] = {"line": line, "case_id": fields.text("case_id", required=True),
                               **parse(fields), "notes": fields.notes}
        if not fields.errors:
            row_key = tuple(row[column] for column in ("case_id", *key))
            if row_key in first_line:
                fields.fail(None, f"duplicate {what} (first on line {first_line[row_key]})")
            else:
                first_line[row_key] = line
        if fields.errors:
            result.rejected.extend(fields.errors)
        else:
            rows.append(row)
    return rows


def _import_case_records(
    store: Store, path: Path, *, source: str, fmt: str | None, what: str,
    model: type[Notice | Order], required: Sequence[str], optional: Sequence[str],
    parse: Callable[[Fields], dict[str, Any]], key: Sequence[str],
) -> ImportResult:
    """Import rows that each belong to a stored case (``case_id`` = the report id).

    ``key``: the columns (besides the case) that identify a record, as in the
    model's unique constraint; every other column must match a stored record.
    """
    now = _now(None)
    _check_source(source)
    table = read_table(path, fmt, ("case_id", *required), optional)
    result = ImportResult(rejected=table.errors)
    rows = _case_rows(table, now, parse, key, what, result)
    columns = [column for column in rows[0] if column not in ("line", "notes")] if rows else []
    compared = [column for column in columns if column not in ("case_id", *key)]
    with store.transaction() as session:
        ids = _case_ids(session, source, (row["case_id"] for row in rows))
        stored: dict[tuple[Any, ...], dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(ids.values()))):
            for found in session.execute(select(*(getattr(model, c) for c in columns))
                                         .where(_among(session, model.case_id, chunk))):
                values = dict(zip(columns, found, strict=True))
                stored[tuple(values[column] for column in ("case_id", *key))] = values
        new: list[dict[str, Any]] = []
        for row in rows:
            report_id = row["case_id"]
            if report_id not in ids:
                result.rejected.append(RowError(table.name, row["line"], "case_id",
                                                f"no case {report_id!r} from source {source!r}"))
                continue
            values = {column: row[column] for column in columns} | {"case_id": ids[report_id]}
            old = stored.get(tuple(values[column] for column in ("case_id", *key)))
            if old is None:
                new.append(values)
            elif column := _first_difference(old, values, compared):
                result.rejected.append(_conflict(
                    table.name, row["line"], f"this {what} of case {report_id!r}", column,
                    old[column], values[column]))
                continue
            else:
                result.unchanged += 1
            result.notes.extend(row["notes"])
        _insert(session, model, new)
        result.added = len(new)
    result.rejected.sort(key=lambda error: error.line)
    return result


def _notice_fields(fields: Fields) -> dict[str, Any]:
    flag = fields.text("trusted_flagger")
    if flag is not None and flag.lower() not in TRUE | FALSE:
        fields.fail("trusted_flagger", f"expected true, false, 1 or 0: {flag!r}")
    sent_at = fields.time("sent_at", required=True)
    return {"sent_at": sent_at,
            "due_at": notice_due(sent_at) if sent_at else None,
            "recipient": fields.text("recipient") or "",
            "channel": fields.text("channel", max_len=32) or "email",
            "reference": fields.text("reference") or "",
            "trusted_flagger": flag is not None and flag.lower() in TRUE}


def import_notices(store: Store, path: Path, *, source: str = "hotline",
                   fmt: str | None = None) -> ImportResult:
    """Import notices sent to hosters about stored cases.

    Columns: ``case_id`` (the report id within ``source``), ``sent_at``;
    optional ``recipient``, ``channel`` (default email), ``reference``,
    ``trusted_flagger`` (true/false/1/0). A notice is identified by case,
    sent_at and recipient.
    """
    return _import_case_records(
        store, path, source=source, fmt=fmt, what="notice", model=Notice,
        required=("sent_at",), optional=("recipient", "channel", "reference", "trusted_flagger"),
        parse=_notice_fields, key=("sent_at", "recipient"))


def _order_fields(fields: Fields) -> dict[str, Any]:
    issued_at = fields.time("issued_at", required=True)
    deadline_at = fields.time("deadline_at", required=True, past=False)
    if issued_at and deadline_at and deadline_at <= issued_at:
        fields.fail("deadline_at", f"must be after issued_at {fields.text('issued_at')!r}: "
                                   f"{fields.text('deadline_at')!r}")
    issuer = fields.text("issuer", required=True, max_len=64) or ""
    legal_basis = fields.text("legal_basis") or ""
    given = fields.text("regime", max_len=16)
    regime: Regime | None
    if given:
        if given not in ORDER_REGIMES:
            fields.fail("regime", f"expected one of {', '.join(ORDER_REGIMES)}: {given!r}")
        regime = Regime(given) if given in ORDER_REGIMES else None
    else:
        regime = order_regime(issuer, legal_basis)
    due = order_due(regime, issued_at, deadline_at) if issued_at and deadline_at else None
    if (regime is not None and issued_at and deadline_at and due is not None
            and not fields.errors and capped(regime, issued_at, deadline_at)):
        # Taken, not rejected: the order stands, but the law allows no later
        # deadline, so it is judged at the cap (both times are stored and shown).
        fields.note("deadline_at", f"later than the {LEGAL_CAP_HOURS[regime]}-hour legal cap "
                                   f"for {REGIME_TEXT[regime]}; judged at "
                                   f"{due.isoformat().replace('+00:00', 'Z')}")
    return {"issuer": issuer, "legal_basis": legal_basis,
            "reference": fields.text("reference") or "",
            "issued_at": issued_at, "deadline_at": deadline_at,
            "regime": regime.value if regime else None, "due_at": due}


def import_orders(store: Store, path: Path, *, source: str = "hotline",
                  fmt: str | None = None) -> ImportResult:
    """Import removal orders (ATKM, terrorist-content orders...) about stored cases.

    Columns: ``case_id`` (the report id within ``source``), ``issued_at``,
    ``issuer``, ``deadline_at`` (after issued_at); optional ``legal_basis``,
    ``reference``, ``regime`` (atkm_order or terrorist_1h; by default told from
    the issuer and legal basis, see ``kernel.deadlines.order_regime``). An
    order is identified by case, issuer and reference. An order whose
    ``deadline_at`` lies beyond its regime's legal cap is taken as stated and
    judged at the cap (``due_at``); each such row gets a `RowNote` in
    ``notes`` (not a rejection).
    """
    return _import_case_records(
        store, path, source=source, fmt=fmt, what="order", model=Order,
        required=("issued_at", "issuer", "deadline_at"),
        optional=("legal_basis", "reference", "regime"),
        parse=_order_fields, key=("issuer", "reference"))


def _check_fields(fields: Fields) -> dict[str, Any]:
    checked_at = fields.time("checked_at", required=True)
    verdict = fields.text("verdict", required=True, max_len=32)
    if verdict is not None:
        verdict = verdict.strip().lower()
        if verdict not in {v.value for v in Verdict}:
            fields.fail("verdict", f"not a verdict: {verdict!r} (one of "
                                   f"{', '.join(v.value for v in Verdict)})")
    status_text = fields.text("http_status", max_len=8)
    status = None
    if status_text:
        if status_text.isdigit() and 100 <= int(status_text) <= 599:
            status = int(status_text)
        else:
            fields.fail("http_status", f"not an HTTP status (100-599): {status_text!r}")
    ip = fields.text("ip", max_len=45)
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip.strip("[]")))
        except ValueError:
            fields.fail("ip", f"not an IP address: {ip!r}")
    return {"checked_at": checked_at, "verdict": verdict, "http_status": status,
            "peer_ip": ip or None}


def import_checks(store: Store, path: Path, rules: Debounce, *, source: str = "hotline",
                  fmt: str | None = None) -> ImportResult:
    """Import the check log a hotline kept before hostwatch.

    Columns: ``case_id`` (the report id within ``source``), ``checked_at``,
    ``verdict`` (one of hostwatch's verdicts); optional ``http_status``,
    ``ip``. The checks join the hash chain in the file's time order, marked
    ``imported`` (method ``imported``), and the cases' states are derived
    again from their whole history, and so is their attribution of record
    (`store.of_record`: by check time, whatever the order of import). A
    check is identified by case and checked_at: importing the same file
    again changes nothing.
    """
    now = _now(None)
    _check_source(source)
    table = read_table(path, fmt, ("case_id", "checked_at", "verdict"), ("http_status", "ip"))
    result = ImportResult(rejected=table.errors)
    rows = _case_rows(table, now, _check_fields, ("checked_at",), "check", result)
    compared = ("verdict", "http_status", "peer_ip")
    with store.transaction() as session:
        ids = _case_ids(session, source, (row["case_id"] for row in rows))
        urls: dict[int, str] = {}
        stored: dict[tuple[int, datetime], dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(ids.values()))):
            urls.update((case_id, url) for case_id, url in session.execute(
                select(Case.id, Case.url).where(_among(session, Case.id, chunk))))
            for found in session.execute(
                    select(Check.case_id, Check.checked_at, *(getattr(Check, c) for c in compared))
                    .where(_among(session, Check.case_id, chunk), Check.imported.is_(True))):
                values = tuple(found)
                stored[(values[0], values[1])] = dict(zip(compared, values[2:], strict=True))
        new: list[NewCheck] = []
        for row in rows:
            report_id = row["case_id"]
            if report_id not in ids:
                result.rejected.append(RowError(table.name, row["line"], "case_id",
                                                f"no case {report_id!r} from source {source!r}"))
                continue
            case_id = ids[report_id]
            old = stored.get((case_id, row["checked_at"]))
            if old is None:
                new.append(NewCheck(
                    case_id=case_id, checked_at=row["checked_at"], method=Method.IMPORTED.value,
                    verdict=row["verdict"], url=urls[case_id], tool_version=__version__,
                    http_status=row["http_status"], peer_ip=row["peer_ip"],
                    reason=f"imported from {path.name}", imported=True))
            elif column := _first_difference(old, {c: row[c] for c in compared}, compared):
                result.rejected.append(_conflict(
                    table.name, row["line"], f"this check of case {report_id!r}", column,
                    old[column], row[column]))
            else:
                result.unchanged += 1
        new.sort(key=lambda check: check.checked_at)
        for start in range(0, len(new), INSERT_BATCH):
            append_checks(session, new[start:start + INSERT_BATCH], rules)
        # An older log imported after crawling began must not take a case
        # over: the attribution of record goes by check time, not by id.
        set_attributions_of_record(session, {check.case_id for check in new})
        result.added = len(new)
    result.rejected.sort(key=lambda error: error.line)
    return result
