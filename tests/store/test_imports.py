"""store.imports: hotline reports, notices and orders into the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from store import Case, Notice, Order, Store
from store.imports import FileError, RowError, import_cases, import_notices, import_orders

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = "id,url,category,reported_at\n"
GOOD_A = "A1,https://img.example.com/a.jpg,csam,2026-02-01T10:00:00Z\n"
GOOD_B = "B2,https://img.example.com/b.jpg,ncii,2026-02-01T11:00:00+01:00\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def stored_cases(store: Store) -> dict[str, Case]:
    with store.session() as session:
        return {case.external_id: case for case in session.scalars(select(Case))}


def stored_notices(store: Store) -> list[tuple[str, datetime, str, str, str, bool]]:
    with store.session() as session:
        rows = session.execute(
            select(Case.external_id, Notice.sent_at, Notice.recipient, Notice.channel,
                   Notice.reference, Notice.trusted_flagger)
            .join(Case, Case.id == Notice.case_id).order_by(Notice.id)).all()
    return list(rows)


def stored_orders(store: Store) -> list[tuple[str, str, str, str, datetime, datetime]]:
    with store.session() as session:
        rows = session.execute(
            select(Case.external_id, Order.issuer, Order.reference, Order.legal_basis,
                   Order.issued_at, Order.deadline_at)
            .join(Case, Case.id == Order.case_id).order_by(Order.id)).all()
    return list(rows)


def where(errors: list[RowError]) -> list[tuple[int, str | None]]:
    return [(error.line, error.field) for error in errors]


# ------------------------------------------------------------------ good files


def test_csv_rows_become_unchecked_cases(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,sha256,pdq\n"
                 f"A1,  HTTPS://Img.Example.COM:443/my photo.jpg#x ,csam,2026-02-01T10:00:00Z,"
                 f"{'AB' * 32},{'0f' * 32}\n"
                 "B2,http://bücher.example/b,NCII,2026-02-01T11:30:00+01:00,,\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.unchanged, result.rejected, result.notices_added) == (2, 0, [], 0)
    cases = stored_cases(store)
    a, b = cases["A1"], cases["B2"]
    assert a.source == "hotline"
    assert a.url == "HTTPS://Img.Example.COM:443/my photo.jpg#x"
    assert a.url_normalised == "https://img.example.com/my%20photo.jpg"
    assert a.host == "img.example.com"
    assert a.category == "csam"
    assert a.reported_at == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    assert a.ref_sha256 == "ab" * 32
    assert a.ref_pdq == "0f" * 32
    assert a.imported_at == NOW
    assert a.state == "unchecked"
    assert (b.host, b.category, b.ref_sha256, b.ref_pdq) == ("xn--bcher-kva.example", "ncii",
                                                             None, None)
    assert b.reported_at == datetime(2026, 2, 1, 10, 30, tzinfo=UTC)


def test_numeric_hosts_are_stored_as_the_address_a_browser_connects_to(store, tmp_path):
    """#10: "http://3232235777/" is 192.168.1.1 to a browser, not a DNS name."""
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at\n"
                 "D1,http://3232235777/a.jpg,csam,2026-02-01T10:00:00Z\n"
                 "D2,http://0x7f.1:8080/b.jpg,csam,2026-02-01T10:00:00Z\n"
                 "D3,http://0xa9.0xfe.0xa9.0xfe/latest/,csam,2026-02-01T10:00:00Z\n"
                 "D4,https://[0:0:0:0:0:ffff:c000:0201]/c,csam,2026-02-01T10:00:00Z\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.rejected) == (4, [])
    cases = stored_cases(store)
    assert {k: (c.url_normalised, c.host) for k, c in cases.items()} == {
        "D1": ("http://192.168.1.1/a.jpg", "192.168.1.1"),
        "D2": ("http://127.0.0.1:8080/b.jpg", "127.0.0.1"),
        "D3": ("http://169.254.169.254/latest/", "169.254.169.254"),
        "D4": ("https://[::ffff:c000:201]/c", "::ffff:c000:201"),
    }
    assert cases["D1"].url == "http://3232235777/a.jpg"  # as reported
    again = import_cases(store, path, now=NOW)
    assert (again.added, again.unchanged, again.rejected) == (0, 4, [])


@pytest.mark.parametrize("name", ["reports.jsonl", "reports.ndjson", "reports.json"])
def test_json_lines_rows_become_cases(store, tmp_path, name):
    path = write(tmp_path, name,
                 '{"id": "A1", "url": "https://a.example/1", "category": "csam", '
                 '"reported_at": "2026-02-01T10:00:00Z", "notice_sent_at": null}\n'
                 "\n"
                 '{"id": 42, "url": "https://b.example/2", "category": "terrorist", '
                 '"reported_at": "2026-02-01T10:00:00Z", "note": ["ignored"]}\n')
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.rejected) == (2, [])
    assert {k: c.host for k, c in stored_cases(store).items()} == {"A1": "a.example",
                                                                   "42": "b.example"}


def test_format_option_beats_the_file_name(store, tmp_path):
    path = write(tmp_path, "export.txt", HEADER + GOOD_A)
    with pytest.raises(FileError, match=r"export\.txt: unknown format"):
        import_cases(store, path, now=NOW)
    assert import_cases(store, path, now=NOW, fmt="csv").added == 1


def test_header_is_matched_loosely_and_extra_columns_are_ignored(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 "Report Date,ID , URL,Category,notes,Reported_At\n"
                 'x,A1,https://a.example/1,csam,"two\nlines",2026-02-01T10:00:00Z\n'
                 "y,B2,https://a.example/2,csam,,2026-02-01T10:00:00Z\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.rejected) == (2, [])


def test_bom_and_crlf_are_accepted(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 ("\ufeff" + HEADER + GOOD_A + GOOD_B).replace("\n", "\r\n").encode())
    assert import_cases(store, path, now=NOW).added == 2


def test_source_keeps_hotlines_apart(store, tmp_path):
    path = write(tmp_path, "reports.csv", HEADER + GOOD_A)
    import_cases(store, path, now=NOW)
    assert import_cases(store, path, now=NOW, source="inhope").added == 1
    with store.session() as session:
        assert sorted(session.scalars(select(Case.source))) == ["hotline", "inhope"]


# ------------------------------------------------------------------ bad rows


@pytest.mark.parametrize(("row", "field", "reason"), [
    (",https://a.example/,csam,2026-02-01T10:00:00Z", "id", "missing value"),
    ("C3,,csam,2026-02-01T10:00:00Z", "url", "missing value"),
    ("C3,https://a.example/,  ,2026-02-01T10:00:00Z", "category", "missing value"),
    ("C3,https://a.example/,csam", "reported_at", "missing value"),
    ("C3,https://a.example/,csam,2026-13-01",
     "reported_at", "not an ISO 8601 time with zone: '2026-13-01'"),
    ("C3,https://a.example/,csam,yesterday",
     "reported_at", "not an ISO 8601 time with zone: 'yesterday'"),
    ("C3,https://a.example/,csam,2026-02-01T10:00:00",
     "reported_at", "no time zone (add Z or an offset such as +01:00): '2026-02-01T10:00:00'"),
    ("C3,https://a.example/,csam,2026-02-01", "reported_at", "a date without a time of day"),
    ("C3,https://a.example/,csam,2062-02-01T10:00:00Z", "reported_at", "in the future"),
    ("C3,ftp://a.example/x,csam,2026-02-01T10:00:00Z",
     "url", "scheme must be http or https: 'ftp://a.example/x'"),
    ("C3,a.example/x,csam,2026-02-01T10:00:00Z", "url", "scheme must be http or https"),
    ("C3,https://:8080/x,csam,2026-02-01T10:00:00Z", "url",
     "not a URL a browser would open (empty host): 'https://:8080/x'"),
    ("C3,http://1.2.3.4.5/x,csam,2026-02-01T10:00:00Z", "url",
     "not a URL a browser would open (host ends in a number but is not an IPv4 address)"),
    ("C3,http://a..b.example/x,csam,2026-02-01T10:00:00Z", "url",
     "host is not a DNS name that can be looked up (empty label)"),
    ("C3,https://u:pw@a.example/x,csam,2026-02-01T10:00:00Z", "url", "credentials"),
    ("C3,https://a.example:70000/x,csam,2026-02-01T10:00:00Z", "url", "invalid port"),
    ("C3,https://a.example/,porn,2026-02-01T10:00:00Z",
     "category", "unknown category 'porn' (one of csam, csam_ai, ncii,"),
])
def test_a_bad_row_is_reported_and_the_others_kept(store, tmp_path, row, field, reason):
    path = write(tmp_path, "reports.csv", HEADER + GOOD_A + row + "\n" + GOOD_B)
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(3, field)]
    assert reason in result.rejected[0].reason
    assert result.rejected[0].file == str(path)
    assert (result.added, result.rejected_rows) == (2, 1)
    assert sorted(stored_cases(store)) == ["A1", "B2"]


def test_row_error_reads_file_line_field_reason(store, tmp_path):
    rows = [f"R{n},https://a.example/{n},csam,2026-02-01T10:00:00Z\n" for n in range(5)]
    path = write(tmp_path, "reports.csv",
                 HEADER + "".join(rows) + "R9,https://a.example/9,csam,2026-13-01\n")
    [error] = import_cases(store, path, now=NOW).rejected
    assert str(error) == f"{path}:7: reported_at: not an ISO 8601 time with zone: '2026-13-01'"
    assert str(RowError("r.jsonl", 2, None, "invalid JSON")) == "r.jsonl:2: invalid JSON"


def test_every_bad_field_of_a_row_is_named(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 HEADER + "C3,gopher://a.example/,porn,2026-02-01\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, "url"), (2, "category"), (2, "reported_at")]
    assert result.rejected_rows == 1


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("sha256", "abc123", "not a SHA-256 (64 hex digits): 'abc123'"),
    ("sha256", "g" * 64, "not a SHA-256"),
    ("sha256", "a" * 65, "not a SHA-256"),
    ("pdq", "z" * 64, "not a PDQ hash (64 hex digits)"),
    ("notice_sent_at", "2026-02-02 09:00", "no time zone"),
])
def test_bad_optional_values_reject_the_row(store, tmp_path, column, value, reason):
    path = write(tmp_path, "reports.csv",
                 f"id,url,category,reported_at,{column}\n"
                 f"C3,https://a.example/,csam,2026-02-01T10:00:00Z,{value}\n"
                 f"C4,https://a.example/4,csam,2026-02-01T10:00:00Z,\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, column)]
    assert reason in result.rejected[0].reason
    assert sorted(stored_cases(store)) == ["C4"]
    assert stored_notices(store) == []


def test_row_with_more_fields_than_the_header_is_rejected(store, tmp_path):
    # An unquoted comma in a URL would otherwise shift every later column.
    path = write(tmp_path, "reports.csv",
                 "id,category,reported_at,url\n"
                 "A1,csam,2026-02-01T10:00:00Z,https://a.example/?ids=1,2\n"
                 'B2,csam,2026-02-01T10:00:00Z,"https://a.example/?ids=1,2"\n')
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, None)]
    assert "5 fields but the header has 4" in result.rejected[0].reason
    assert stored_cases(store)["B2"].url == "https://a.example/?ids=1,2"


def test_unterminated_quote_costs_only_its_own_row(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 HEADER + GOOD_A
                 + 'C3,"https://a.example/3,csam,2026-02-01T10:00:00Z\n'
                 + "D4,https://a.example/4,csam,2026-02-01T10:00:00Z\n"
                 + GOOD_B)
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(3, None)]
    assert "quoted field is never closed" in result.rejected[0].reason
    assert sorted(stored_cases(store)) == ["A1", "B2", "D4"]


def test_stray_quote_that_swallows_lines_is_caught(store, tmp_path):
    # The quote opened on line 3 closes on line 4: one record with a line
    # break in the url. Line 3 is rejected; line 4 is read again on its own.
    path = write(tmp_path, "reports.csv",
                 HEADER + GOOD_A
                 + 'C3,"https://a.example/3,csam,2026-02-01T10:00:00Z\n'
                 + 'D4,https://a.example/4",csam,2026-02-01T10:00:00Z\n'
                 + GOOD_B)
    result = import_cases(store, path, now=NOW)
    assert [str(e).split(": ", 1)[1] for e in result.rejected] == [
        "line break inside a quoted field (a stray quote?)"]
    assert where(result.rejected) == [(3, None)]
    assert sorted(stored_cases(store)) == ["A1", "B2", "D4"]


def test_stray_quote_that_merges_lines_into_too_many_fields(store, tmp_path):
    # Lines 2 and 3 parse as one record of 6 fields; line 3 is then read
    # again on its own (and has 6 fields itself), line 4 is untouched.
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,notes\n"
                 'C3,https://a.example/3,csam,2026-02-01T10:00:00Z,"5 inch\n'
                 'D4,https://a.example/4,csam,2026-02-01T10:00:00Z,ok",x\n'
                 + GOOD_B)
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, None), (3, None)]
    assert all("6 fields but the header has 5" in e.reason for e in result.rejected)
    assert sorted(stored_cases(store)) == ["B2"]


def test_text_after_a_closing_quote_is_bad_csv(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 HEADER + 'C3,"https://a.example/3"x,csam,2026-02-01T10:00:00Z\n' + GOOD_A)
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, None)]
    assert result.rejected[0].reason.startswith("bad CSV")
    assert sorted(stored_cases(store)) == ["A1"]


def test_line_numbers_are_physical_lines_after_a_multiline_field(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,notes\n"
                 'A1,https://a.example/1,csam,2026-02-01T10:00:00Z,"first\nsecond\nthird"\n'
                 "\n"
                 "B2,https://a.example/2,csam,not-a-date,\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(6, "reported_at")]
    assert sorted(stored_cases(store)) == ["A1"]


def test_duplicate_id_in_a_file_rejects_the_second(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 HEADER + GOOD_A + GOOD_B
                 + "A1,https://other.example/,csam,2026-02-01T10:00:00Z\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(4, "id")]
    assert result.rejected[0].reason == "duplicate id 'A1' (first on line 2)"
    assert stored_cases(store)["A1"].url == "https://img.example.com/a.jpg"


@pytest.mark.parametrize(("row", "field"), [
    ("A1,https://img.example.com/other.jpg,csam,2026-02-01T10:00:00Z", "url"),
    ("A1,https://img.example.com/a.jpg,ncii,2026-02-01T10:00:00Z", "category"),
    ("A1,https://img.example.com/a.jpg,csam,2026-02-01T10:00:01Z", "reported_at"),
])
def test_a_stored_report_is_never_rewritten(store, tmp_path, row, field):
    import_cases(store, write(tmp_path, "first.csv", HEADER + GOOD_A), now=NOW)
    path = write(tmp_path, "second.csv", HEADER + row + "\n" + GOOD_B)
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, field)]
    assert result.rejected[0].reason.startswith(f"conflict: id 'A1' is stored with {field} ")
    assert (result.added, result.unchanged) == (1, 0)
    a = stored_cases(store)["A1"]
    assert (a.url, a.category, a.reported_at) == ("https://img.example.com/a.jpg", "csam",
                                                 datetime(2026, 2, 1, 10, 0, tzinfo=UTC))


def test_adding_a_hash_to_a_stored_report_is_a_conflict(store, tmp_path):
    import_cases(store, write(tmp_path, "first.csv", HEADER + GOOD_A), now=NOW)
    path = write(tmp_path, "second.csv",
                 "id,url,category,reported_at,sha256\n" + GOOD_A.strip() + "," + "a" * 64 + "\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, "sha256")]
    assert stored_cases(store)["A1"].ref_sha256 is None


def test_same_instant_in_another_zone_is_unchanged(store, tmp_path):
    import_cases(store, write(tmp_path, "first.csv", HEADER + GOOD_A), now=NOW)
    path = write(tmp_path, "second.csv",
                 HEADER + "A1,https://img.example.com/a.jpg,CSAM,2026-02-01T11:00:00+01:00\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.unchanged, result.rejected) == (0, 1, [])


def test_bytes_that_are_not_utf8_reject_only_their_row(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 b"id,url,category,reported_at,notes\n"
                 b"A1,https://caf\xe9.example/,csam,2026-02-01T10:00:00Z,\n"
                 b"B2,https://b.example/,csam,2026-02-01T10:00:00Z,caf\xe9 in a note\n"
                 b"C3,https://c.example/\xff\xfe,csam,2026-02-01T10:00:00Z,\n"
                 b"D4,https://d.example/caf\xc3\xa9,csam,2026-02-01T10:00:00Z,\n")
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, "url"), (4, "url")]
    assert result.rejected[0].reason == "not valid UTF-8: b'https://caf\\xe9.example/'"
    cases = stored_cases(store)
    assert sorted(cases) == ["B2", "D4"]
    assert cases["D4"].url_normalised == "https://d.example/caf%C3%A9"


def test_bad_bytes_in_the_id_are_one_error(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 HEADER.encode() + b"\xa7\xa7,https://a.example/,csam,2026-02-01T10:00:00Z\n")
    result = import_cases(store, path, now=NOW)
    assert [str(e).replace(str(path), "F") for e in result.rejected] == [
        "F:2: id: not valid UTF-8: b'\\xa7\\xa7'"]


def test_lone_surrogate_escape_in_json_is_rejected(store, tmp_path):
    path = write(tmp_path, "reports.jsonl",
                 '{"id": "A1", "url": "https://a.example/\\ud800", "category": "csam", '
                 '"reported_at": "2026-02-01T10:00:00Z"}\n')
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(1, "url")]
    assert result.rejected[0].reason == "not valid UTF-8: 'https://a.example/\\ud800'"


def test_bad_json_lines_are_reported_and_the_others_kept(store, tmp_path):
    good = ('{"id": "%s", "url": "https://a.example/%s", "category": "csam", '
            '"reported_at": "2026-02-01T10:00:00Z"}\n')
    path = write(tmp_path, "reports.jsonl",
                 good % ("A1", 1)
                 + '{"id": "B2", "url": "https://a.example/2",\n'
                 + '["C3", "https://a.example/3"]\n'
                 + '"D4"\n'
                 + '{"id": "E5", "url": 5, "category": "csam", '
                   '"reported_at": "2026-02-01T10:00:00Z"}\n'
                 + good % ("F6", 6))
    result = import_cases(store, path, now=NOW)
    assert where(result.rejected) == [(2, None), (3, None), (4, None), (5, "url")]
    assert result.rejected[0].reason.startswith("invalid JSON: ")
    assert result.rejected[1].reason == "not a JSON object but an array"
    assert result.rejected[2].reason == "not a JSON object but a string"
    assert sorted(stored_cases(store)) == ["A1", "F6"]


# ------------------------------------------------------------------ whole-file errors


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("reports.csv", "", "empty file"),
    ("reports.csv", "\ufeff\n \n", "empty file"),
    ("reports.jsonl", "\n", "empty file"),
    ("reports.csv", "id,url,category\nA1,https://a.example/,csam\n",
     "missing required column reported_at (the header has: id, url, category)"),
    ("reports.csv", "id,link,category,reported\n", "missing required column url, reported_at"),
    ("reports.csv", GOOD_A + GOOD_B, "no header row (line 1 looks like data)"),
    ("reports.csv", "id,url,url,category,reported_at\n", "column url appears more than once"),
    ("reports.csv", '"id,url,category,reported_at\n', "the header row is not valid CSV"),
    ("reports.json", '[{"id": "A1"}]\n', "a JSON array; expected JSON Lines"),
    ("reports.xlsx", HEADER + GOOD_A, "unknown format"),
    ("reports.csv", (HEADER + GOOD_A).encode("utf-16"), "UTF-16 text; save the file as UTF-8"),
])
def test_unreadable_file_writes_nothing(store, tmp_path, name, content, problem):
    import_cases(store, write(tmp_path, "before.csv", HEADER + GOOD_B), now=NOW)
    path = write(tmp_path, name, content)
    with pytest.raises(FileError) as caught:
        import_cases(store, path, now=NOW)
    assert str(caught.value).startswith(str(path))
    assert problem in str(caught.value)
    assert sorted(stored_cases(store)) == ["B2"]


def test_missing_file_and_directory_are_file_errors(store, tmp_path):
    with pytest.raises(FileError, match="no such file"):
        import_cases(store, tmp_path / "nope.csv", now=NOW)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(FileError, match="is a directory"):
        import_cases(store, tmp_path / "dir.csv", now=NOW)


def test_header_only_file_imports_nothing_without_error(store, tmp_path):
    result = import_cases(store, write(tmp_path, "reports.csv", HEADER), now=NOW)
    assert (result.added, result.unchanged, result.rejected) == (0, 0, [])


# ------------------------------------------------------------------ idempotence, notices


def test_notice_sent_at_adds_one_email_notice(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,notice_sent_at\n"
                 + GOOD_A.strip() + ",2026-02-01T12:00:00+01:00\n"
                 + GOOD_B.strip() + ",\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.notices_added) == (2, 1)
    assert stored_notices(store) == [
        ("A1", datetime(2026, 2, 1, 11, 0, tzinfo=UTC), "", "email", "", False)]


def test_reimporting_a_file_changes_nothing(store, tmp_path):
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,notice_sent_at,sha256\n"
                 + GOOD_A.strip() + ",2026-02-01T12:00:00Z," + "C" * 64 + "\n"
                 + GOOD_B.strip() + ",,\n"
                 + "X9,nonsense,csam,2026-02-01T10:00:00Z,,\n")
    first = import_cases(store, path, now=NOW)
    before = {k: (c.id, c.imported_at) for k, c in stored_cases(store).items()}
    again = import_cases(store, path, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert (first.added, first.unchanged, first.notices_added) == (2, 0, 1)
    assert (again.added, again.unchanged, again.notices_added) == (0, 2, 0)
    assert where(again.rejected) == where(first.rejected) == [(4, "url")]
    assert {k: (c.id, c.imported_at) for k, c in stored_cases(store).items()} == before
    assert len(stored_notices(store)) == 1


def test_a_new_notice_for_a_stored_report_is_added(store, tmp_path):
    import_cases(store, write(tmp_path, "first.csv", HEADER + GOOD_A), now=NOW)
    path = write(tmp_path, "second.csv", "id,url,category,reported_at,notice_sent_at\n"
                 + GOOD_A.strip() + ",2026-02-02T08:00:00Z\n")
    result = import_cases(store, path, now=NOW)
    assert (result.added, result.unchanged, result.notices_added) == (0, 1, 1)
    assert [n[:2] for n in stored_notices(store)] == [
        ("A1", datetime(2026, 2, 2, 8, 0, tzinfo=UTC))]


def _refuse_notices(store: Store) -> None:
    """Make the database itself refuse any new notice row."""
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.execute(text("CREATE TRIGGER refuse_notice BEFORE INSERT ON notices "
                                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            connection.execute(text("CREATE FUNCTION refuse_notice() RETURNS trigger AS "
                                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                                    "LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse_notice BEFORE INSERT ON notices "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_notice()"))


def test_a_failure_while_writing_leaves_nothing_half_written(store, tmp_path):
    # The cases are inserted before their notices; when the notice insert
    # fails, the cases of that file must be gone too.
    _refuse_notices(store)
    path = write(tmp_path, "reports.csv",
                 "id,url,category,reported_at,notice_sent_at\n"
                 + GOOD_A.strip() + ",2026-02-01T12:00:00Z\n" + GOOD_B.strip() + ",\n")
    with pytest.raises(SQLAlchemyError, match="refused"):
        import_cases(store, path, now=NOW)
    assert stored_cases(store) == {}


def test_naive_now_is_refused(store, tmp_path):
    with pytest.raises(ValueError, match="time zone"):
        import_cases(store, write(tmp_path, "r.csv", HEADER), now=datetime(2026, 3, 1))


# ------------------------------------------------------------------ notices


@pytest.fixture
def two_cases(store, tmp_path):
    import_cases(store, write(tmp_path, "reports.csv", HEADER + GOOD_A + GOOD_B), now=NOW)
    return store


def test_notices_are_attached_to_their_cases(two_cases, tmp_path):
    path = write(tmp_path, "notices.csv",
                 "case_id,sent_at,recipient,channel,reference,trusted_flagger\n"
                 "A1,2026-02-01T12:00:00Z,abuse@hoster.example,,T-1,true\n"
                 "A1,2026-02-02T12:00:00Z,abuse@hoster.example,webform,T-2,0\n"
                 "B2,2026-02-01T12:00:00+01:00,,,,\n")
    result = import_notices(two_cases, path)
    assert (result.added, result.unchanged, result.rejected) == (3, 0, [])
    assert stored_notices(two_cases) == [
        ("A1", datetime(2026, 2, 1, 12, tzinfo=UTC), "abuse@hoster.example", "email", "T-1", True),
        ("A1", datetime(2026, 2, 2, 12, tzinfo=UTC), "abuse@hoster.example", "webform", "T-2",
         False),
        ("B2", datetime(2026, 2, 1, 11, tzinfo=UTC), "", "email", "", False),
    ]
    again = import_notices(two_cases, path)
    assert (again.added, again.unchanged, again.rejected) == (0, 3, [])
    assert len(stored_notices(two_cases)) == 3


def test_bad_notice_rows_are_reported(two_cases, tmp_path):
    path = write(tmp_path, "notices.jsonl",
                 '{"case_id": "A1", "sent_at": "2026-02-01T12:00:00Z", "trusted_flagger": true}\n'
                 '{"case_id": "ZZ", "sent_at": "2026-02-01T12:00:00Z"}\n'
                 '{"case_id": "A1", "sent_at": "2026-02-01T13:00:00+01:00"}\n'
                 '{"case_id": "B2", "sent_at": "2026-02-01"}\n'
                 '{"case_id": "B2", "sent_at": "2026-02-01T12:00:00Z", "trusted_flagger": "ja"}\n'
                 '{"sent_at": "2026-02-01T12:00:00Z"}\n')
    result = import_notices(two_cases, path)
    assert [str(e).replace(str(path), "F") for e in result.rejected] == [
        "F:2: case_id: no case 'ZZ' from source 'hotline'",
        "F:3: duplicate notice (first on line 1)",
        "F:4: sent_at: a date without a time of day: '2026-02-01'",
        "F:5: trusted_flagger: expected true, false, 1 or 0: 'ja'",
        "F:6: case_id: missing value",
    ]
    assert [n[0] for n in stored_notices(two_cases)] == ["A1"]


def test_a_stored_notice_is_never_rewritten(two_cases, tmp_path):
    header = "case_id,sent_at,recipient,channel\n"
    import_notices(two_cases, write(tmp_path, "n1.csv",
                                    header + "A1,2026-02-01T12:00:00Z,abuse@h.example,email\n"))
    result = import_notices(two_cases, write(
        tmp_path, "n2.csv", header + "A1,2026-02-01T12:00:00Z,abuse@h.example,webform\n"))
    assert where(result.rejected) == [(2, "channel")]
    assert "conflict: this notice of case 'A1' is stored with channel 'email'" in \
        result.rejected[0].reason
    assert [n[3] for n in stored_notices(two_cases)] == ["email"]


def test_notices_file_without_sent_at_writes_nothing(two_cases, tmp_path):
    path = write(tmp_path, "notices.csv", "case_id,recipient\nA1,abuse@h.example\n")
    with pytest.raises(FileError, match="missing required column sent_at"):
        import_notices(two_cases, path)
    assert stored_notices(two_cases) == []


# ------------------------------------------------------------------ orders


def test_orders_are_attached_and_reimport_changes_nothing(two_cases, tmp_path):
    path = write(tmp_path, "orders.csv",
                 "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
                 "A1,2026-02-03T09:00:00+01:00,ATKM,2026-02-04T09:00:00+01:00,Wet ATKM,ATKM-7\n"
                 "B2,2026-02-03T09:00:00Z,ATKM,2026-02-04T09:00:00Z,,\n")
    result = import_orders(two_cases, path)
    assert (result.added, result.rejected) == (2, [])
    assert stored_orders(two_cases) == [
        ("A1", "ATKM", "ATKM-7", "Wet ATKM", datetime(2026, 2, 3, 8, tzinfo=UTC),
         datetime(2026, 2, 4, 8, tzinfo=UTC)),
        ("B2", "ATKM", "", "", datetime(2026, 2, 3, 9, tzinfo=UTC),
         datetime(2026, 2, 4, 9, tzinfo=UTC)),
    ]
    again = import_orders(two_cases, path)
    assert (again.added, again.unchanged, again.rejected) == (0, 2, [])
    # Both ask 24 hours of an ATKM order: taken, judged at 12 hours, noted per row.
    assert [str(note) for note in again.notes] == [
        f"{path}:{line}: deadline_at: later than the 12-hour legal cap for an ATKM order; "
        f"judged at {judged}" for line, judged in ((2, "2026-02-03T20:00:00Z"),
                                                   (3, "2026-02-03T21:00:00Z"))]
    assert result.notes == again.notes


def test_an_order_beyond_its_legal_cap_is_taken_capped_and_noted(two_cases, tmp_path):
    path = write(tmp_path, "orders.csv",
                 "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
                 "A1,2026-02-03T09:00:00Z,ATKM,2026-02-03T19:00:00Z,,in-time\n"
                 "A1,2026-02-03T09:00:00Z,Politie,2026-02-03T14:00:00Z,EU 2021/784,tco\n"
                 "A1,2026-02-03T09:00:00Z,Politie,2026-02-05T09:00:00Z,,no-regime\n"
                 "QQ,2026-02-03T09:00:00Z,ATKM,2026-02-05T09:00:00Z,,no-case\n")
    result = import_orders(two_cases, path)
    assert (result.added, where(result.rejected)) == (3, [(5, "case_id")])
    # Only the terrorist-content order (1 hour at most) is capped; an order
    # without a regime keeps its own deadline; a rejected row gets no note.
    assert [(n.line, n.field, n.reason) for n in result.notes] == [
        (3, "deadline_at", "later than the 1-hour legal cap for a terrorist-content order; "
                           "judged at 2026-02-03T10:00:00Z")]
    store = two_cases
    with store.session() as session:
        rows = {o.reference: (o.deadline_at, o.due_at) for o in session.scalars(select(Order))}
    assert rows["tco"] == (datetime(2026, 2, 3, 14, tzinfo=UTC),
                           datetime(2026, 2, 3, 10, tzinfo=UTC))
    assert rows["no-regime"][0] == rows["no-regime"][1]


def test_bad_order_rows_are_reported(two_cases, tmp_path):
    path = write(tmp_path, "orders.csv",
                 "case_id,issued_at,issuer,deadline_at,reference\n"
                 "A1,2026-02-03T09:00:00Z,ATKM,2026-02-03T09:00:00Z,R1\n"
                 "A1,2026-02-03T09:00:00Z,,2026-02-04T09:00:00Z,R2\n"
                 "A1,2026-02-03T09:00:00Z,ATKM,,R3\n"
                 "QQ,2026-02-03T09:00:00Z,ATKM,2026-02-04T09:00:00Z,R4\n"
                 "B2,2026-02-03T09:00:00Z,ATKM,2026-02-04T09:00:00Z,R5\n"
                 "B2,2026-02-03T10:00:00Z,ATKM,2026-02-05T09:00:00Z,R5\n")
    result = import_orders(two_cases, path)
    assert where(result.rejected) == [(2, "deadline_at"), (3, "issuer"), (4, "deadline_at"),
                                      (5, "case_id"), (7, None)]
    assert result.rejected[0].reason == (
        "must be after issued_at '2026-02-03T09:00:00Z': '2026-02-03T09:00:00Z'")
    assert result.rejected[4].reason == "duplicate order (first on line 6)"
    assert [o[:3] for o in stored_orders(two_cases)] == [("B2", "ATKM", "R5")]


def test_a_stored_order_is_never_rewritten(two_cases, tmp_path):
    header = "case_id,issued_at,issuer,deadline_at,reference\n"
    import_orders(two_cases, write(
        tmp_path, "o1.csv", header + "A1,2026-02-03T09:00:00Z,ATKM,2026-02-04T09:00:00Z,R1\n"))
    result = import_orders(two_cases, write(
        tmp_path, "o2.csv", header + "A1,2026-02-03T09:00:00Z,ATKM,2026-02-05T09:00:00Z,R1\n"))
    assert where(result.rejected) == [(2, "deadline_at")]
    assert result.rejected[0].reason.startswith("conflict: ")
    assert stored_orders(two_cases)[0][5] == datetime(2026, 2, 4, 9, tzinfo=UTC)
