"""Evidence packs name the reseller block holder (#14): the reseller through
which an address block was registered, where RDAP names one, in
attributions.csv (rdap_reseller) and jurisdiction.md, built through the real
commands on the local test internet (OFFSHORE-RESELLER's RDAP answer names
Island Test Brokers Ltd. with role reseller); and a pack written before the
column still verifies."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import TestInternet
from reports.evidence import manifest_text
from tests.enrichment.conftest import hostwatch as hostwatch_child
from tests.reports.test_evidence import Built, hostwatch, read_csv, write_pack

RESELLER = "Island Test Brokers Ltd."


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    """E5 on the offshore reseller's block (its RDAP answer names a reseller),
    F6 at the Dutch hoster (its answer names none); one pack for each hoster."""
    workdir = tmp_path_factory.mktemp("evidence-reseller")
    db = f"sqlite:///{workdir / 'hostwatch.db'}"
    with TestInternet(ttl=1) as net:
        resold = net.add_host("resold.test", network="OFFSHORE-RESELLER")
        dutch = net.add_host("dutch.test", network=64501)
        (workdir / "reports.csv").write_text(
            "id,url,category,reported_at\n"
            f"E5,{resold.url('/e.jpg')},csam,2026-02-01T10:00:00Z\n"
            f"F6,{dutch.url('/f.jpg')},csam,2026-02-01T10:00:00Z\n")
        (workdir / "checks.csv").write_text(
            "case_id,checked_at,verdict,http_status,ip\n"
            f"E5,2026-02-01T12:00:00Z,online,200,{resold.ip}\n"
            f"F6,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n")
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(workdir)
            mp.delenv("HOSTWATCH_DB", raising=False)
            for command, name in (("import", "reports.csv"), ("import-checks", "checks.csv")):
                result = hostwatch(db, command, name)
                assert result.exit_code == 0, (command, result.output)
        enriched = hostwatch_child(db, net, workdir, "enrich")
        assert enriched.returncode == 0, enriched.stderr
    built = Built(workdir, db, {})
    for hoster, out in (("Offshore Test Reseller Ltd.", "resold"),
                        ("dutch-test-hosting", "dutch")):
        result = write_pack(built, "--hoster", hoster, "--for", "atkm", out=out)
        assert result.exit_code == 0, result.output
    yield built


def test_attributions_csv_names_the_reseller_block_holder(built):
    (row,) = read_csv(built.workdir / "resold" / "attributions.csv")
    assert list(row)[-1] == "rdap_reseller"
    assert (row["asn"], row["rdap_org"], row["rdap_reseller"]) == (
        "64502", "Offshore Test Reseller Ltd.", RESELLER)
    (other,) = read_csv(built.workdir / "dutch" / "attributions.csv")
    assert (other["rdap_org"], other["rdap_reseller"]) == ("Dutch Test Hosting B.V.", "")


def test_jurisdiction_md_names_the_reseller_beside_the_as_and_the_holder(built):
    text = (built.workdir / "resold" / "jurisdiction.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    holder = next(i for i, line in enumerate(lines)
                  if line.startswith("- address holder (RDAP):"))
    assert "organisation Offshore Test Reseller Ltd." in lines[holder]
    assert lines[holder + 1] == (
        f"- reseller block holder (RDAP): {RESELLER}, the third party through which the "
        "address block was registered (source: rdap)")
    dutch = (built.workdir / "dutch" / "jurisdiction.md").read_text(encoding="utf-8")
    assert "reseller block holder" not in dutch


def test_packs_with_and_without_the_reseller_column_verify(built, tmp_path):
    pack = tmp_path / "resold"
    pack.mkdir()
    for path in (built.workdir / "resold").iterdir():
        (pack / path.name).write_bytes(path.read_bytes())
    assert _verify(built, pack).exit_code == 0
    # As hostwatch wrote it before the column: still verifies.
    path = pack / "attributions.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    keep = [i for i, column in enumerate(rows[0]) if column != "rdap_reseller"]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([[row[i] for i in keep] for row in rows])
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    assert RESELLER not in path.read_text(encoding="utf-8")
    files = {p.name: p.read_bytes() for p in pack.iterdir() if p.name != "MANIFEST.sha256"}
    (pack / "MANIFEST.sha256").write_text(manifest_text(files), encoding="utf-8")
    result = _verify(built, pack)
    assert result.exit_code == 0, result.output


def _verify(built: Built, pack: Path):
    return hostwatch(built.db, "verify", "--pack", str(pack))
