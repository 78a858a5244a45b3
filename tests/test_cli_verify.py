"""`hostwatch verify`: the store's check hash chain and evidence packs, and every
problem named by check id or file."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from lab import TestInternet
from store import Check, Store
from tests.reports.test_evidence import Built, build_store, hostwatch, private_copy, write_pack
from tests.reports.test_evidence import verify_packs as verify

PACK_FILES = 14  # an ACM pack, MANIFEST.sha256 not counted


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Iterator[Built]:
    workdir = tmp_path_factory.mktemp("verify")
    with TestInternet(ttl=1) as net:
        built = build_store(f"sqlite:///{workdir / 'hostwatch.db'}", workdir, net)
    result = write_pack(built, "--hoster", "dutch-test-hosting", "--for", "acm")
    assert result.exit_code == 0, result.output
    yield built


@pytest.fixture
def built(original, tmp_path) -> Built:
    """A private copy of the store and its pack, free to tamper with."""
    return private_copy(original, tmp_path)


def sql(db: str, statement: str, **params: object) -> None:
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def check_ids(db: str) -> list[int]:
    store = Store(db)
    with store.session() as session:
        ids = list(session.scalars(select(Check.id).order_by(Check.id)))
    store.dispose()
    return ids


def rewrite_zip(path: Path, change: dict[str, bytes | None]) -> None:
    """Rewrite the zip with some entries replaced (None: removed) or added."""
    with zipfile.ZipFile(path) as zf:
        entries = {info.filename: zf.read(info) for info in zf.infolist()}
    for name, body in change.items():
        if body is None:
            del entries[name]
        else:
            entries[name] = body
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in entries.items():
            zf.writestr(name, body)


def flip(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]


def test_an_untouched_store_and_pack_verify(built):
    result = verify(built, "pack", "pack.zip")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "chain: 10 checks (head check 10): every link holds" in result.stdout
    assert f"pack {built.workdir / 'pack.zip'}: {PACK_FILES} files, 8 check rows compared: " \
           "all hold" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        f"verified: 10 checks, {2 * PACK_FILES} files, 16 pack check rows: all hold")
    alone = hostwatch(built.db, "verify")
    assert alone.exit_code == 0
    assert alone.stdout.splitlines()[-1] == "verified: 10 checks, 0 files: all hold"


def test_a_changed_check_in_the_database_is_named(built):
    store = Store(built.db)
    with store.session() as session:  # B2's first check: online, 200, in the pack
        target = session.scalars(select(Check.id).where(Check.case_id == built.ids["B2"])
                                 .order_by(Check.id)).first()
    store.dispose()
    lines = (built.workdir / "pack" / "checks.csv").read_text().splitlines()
    line = next(n for n, row in enumerate(lines, 1) if row.startswith(f"{target},"))
    sql(built.db, "UPDATE checks SET http_status = 201 WHERE id = :id", id=target)
    result = verify(built, "pack")
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0].startswith(f"check {target}: contents changed since written")
    assert (f"check {target} (checks.csv:{line}): http_status is '201' in the store, '200' in the "
            "pack (the store's row was changed after the pack was written)") in result.stderr
    assert len(problems) == 2
    assert result.stdout.splitlines()[-1].endswith(": 2 problems")


def test_an_overwritten_record_hash_is_named_and_not_blamed_on_the_next_check(built):
    ids = check_ids(built.db)
    sql(built.db, "UPDATE checks SET record_hash = :h WHERE id = :id", h="f" * 64, id=ids[4])
    result = verify(built)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"check {ids[4]}: record_hash changed since written (stored ffffffffffff…, its "
        f"contents and check {ids[5]}'s prev_hash give "
        + result.stderr.split("give ")[1].split("…")[0] + "…)"]


def test_a_deleted_check_is_named_at_the_next_link(built):
    ids = check_ids(built.db)
    sql(built.db, "DELETE FROM attributions WHERE check_id = :id", id=ids[9])
    sql(built.db, "DELETE FROM checks WHERE id = :id", id=ids[9])
    result = verify(built, "pack")
    assert result.exit_code == 1
    # The last check is gone: the chain head no longer matches, and the pack's
    # chain head (check 10) is not in the store.
    assert f"check {ids[8]}: chain head (check {ids[9]}" in result.stderr
    assert f"chain head check {ids[9]}: not in the store" in result.stderr


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_a_one_byte_change_to_a_pack_file_is_named(built, where):
    if where == "folder":
        path = built.workdir / "pack" / "method.md"
        path.write_bytes(flip(path.read_bytes(), 100))
        result = verify(built, "pack")
    else:
        archive = built.workdir / "pack.zip"
        with zipfile.ZipFile(archive) as zf:
            body = zf.read("pack/method.md")
        rewrite_zip(archive, {"pack/method.md": flip(body, 100)})
        result = verify(built, "pack.zip")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{built.workdir / ('pack' if where == 'folder' else 'pack.zip')}: method.md: changed "
        "since the pack was written (sha256 " + result.stderr.split("(sha256 ")[1].strip()]


def test_a_changed_checks_csv_is_caught_by_the_manifest_first(built):
    path = built.workdir / "pack" / "checks.csv"
    path.write_bytes(path.read_bytes().replace(b",http_gone,404,", b",http_gone,403,", 1))
    result = verify(built, "pack")
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0] == (f"{built.workdir / 'pack'}: checks.csv: changed since the pack was "
                           "written (sha256 " + problems[0].split("(sha256 ")[1])
    assert "http_status is '404' in the store, '403' in the pack (checks.csv was changed " \
           "after the pack was written)" in problems[1]
    assert len(problems) == 2


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_an_extra_and_a_missing_file_are_named(built, where):
    if where == "folder":
        (built.workdir / "pack" / "notes.txt").write_text("added later")
        (built.workdir / "pack" / "orders.csv").unlink()
        name = built.workdir / "pack"
        result = verify(built, "pack")
    else:
        rewrite_zip(built.workdir / "pack.zip", {"pack/notes.txt": b"added later",
                                                 "pack/orders.csv": None})
        name = built.workdir / "pack.zip"
        result = verify(built, "pack.zip")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{name}: orders.csv: missing (listed in MANIFEST.sha256)",
        f"{name}: notes.txt: extra file, not in MANIFEST.sha256"]


def test_a_pack_from_another_store_fails(built, tmp_path):
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = hostwatch(other, "verify", "--pack", str(built.workdir / "pack"))
    assert result.exit_code == 1
    assert "chain head check 10: not in the store" in result.stderr
    assert "check 1 (checks.csv:2): not in the store" in result.stderr


def test_an_unreadable_pack_is_a_clear_error(built):
    (built.workdir / "junk.zip").write_text("not a zip")
    result = verify(built, "junk.zip", "nowhere")
    assert result.exit_code == 1
    assert f"{built.workdir / 'junk.zip'}: not a pack folder or zip" in result.stderr
    assert f"{built.workdir / 'nowhere'}: no such folder or zip" in result.stderr


@pytest.mark.postgres
def test_verify_on_postgresql(pg_url, tmp_path):
    with TestInternet(ttl=1) as net:
        built = build_store(pg_url, tmp_path, net)
    # A password in the store URL never reaches the pack (the test server trusts
    # loopback, so any password is accepted).
    with_password = pg_url.replace("://postgres@", "://postgres:s3cret-pw@", 1)
    assert with_password != pg_url
    written = write_pack(replace(built, db=with_password), "--hoster", "Dutch Test Hosting B.V.",
                         "--for", "atkm")
    assert written.exit_code == 0, written.output
    assert "s3cret-pw" not in (tmp_path / "pack" / "pack.json").read_text()
    assert "postgres:***@" in (tmp_path / "pack" / "pack.json").read_text()
    result = verify(built, "pack", "pack.zip")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"verified: 10 checks, {2 * (PACK_FILES - 1)} files, 16 pack check rows: all hold")
    target = check_ids(pg_url)[0]
    sql(pg_url, "UPDATE checks SET verdict = 'onlinf' WHERE id = :id", id=target)
    broken = verify(built, "pack")
    assert broken.exit_code == 1
    assert f"check {target}: contents changed since written" in broken.stderr
    assert f"check {target} (checks.csv:2): verdict is 'onlinf' in the store, 'online'" \
        in broken.stderr
