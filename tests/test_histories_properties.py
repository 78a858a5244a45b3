"""Every history the imports accept makes every report, pack and export (Hypothesis).

Hypothesis writes random report, notice, order and check files — late
reports, check logs older than the report, ties, deadlines still ahead or
past, orders beyond the legal cap, checks on Dutch and foreign networks —
and feeds them through the real commands on a fresh SQLite store. Whatever
the imports take, `report hosters` (every format), `report evidence` (ATKM
and ACM), `export xarf`, `verify` and the packs' own verification must
succeed, and the stored cases must hold the state invariants.

Enrichment runs offline on the real 2014 BGP table (lab/data/realdata):
addresses are looked up, never contacted.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hostwatch.cli import main
from kernel.model import Verdict
from lab.rdap import REALDATA  # noqa: E402
from store import Case, Store

NOW = datetime.now(UTC).replace(microsecond=0)
ENV = {
    "HOSTWATCH_OFFLINE": "1",
    "HOSTWATCH_NAMESERVERS": "127.0.0.1:9",  # never asked: offline
    "HOSTWATCH_ASN_DB": str(REALDATA / "ipasn_20140513.dat.gz"),
    "HOSTWATCH_ASNAMES": str(REALDATA / "asnames.json.gz"),
    "HOSTWATCH_PROGRESS": "0",
    "HOSTWATCH_XARF_REPORTER_ORG": "Test Hotline",
    "HOSTWATCH_XARF_REPORTER_CONTACT": "reports@hotline.test",
    "HOSTWATCH_XARF_REPORTER_DOMAIN": "hotline.test",
    "HOSTWATCH_XARF_CLASSIFICATION": "baseline",
}
# LeaseWeb NL, Hetzner DE, OVH FR, Google US, and no address at all.
ADDRESSES = ["85.17.1.1", "78.46.1.1", "5.39.1.1", "8.8.8.8", ""]


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def table(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@st.composite
def histories(draw: st.DrawFn) -> dict[str, str]:
    """Report, notice, order and check files of 1-4 cases."""
    reports, notices, orders, checks = [], [], [], []
    for n in range(draw(st.integers(1, 4))):
        case = f"C{n}"
        # Within the last 40 days, to the hour: deadlines may still be ahead.
        reported = NOW - timedelta(hours=draw(st.integers(1, 960)))
        category = draw(st.sampled_from(["csam", "csam_ai", "ncii", "terrorist", "other"]))
        reports.append([case, f"https://img{n}.example.com/{n}.jpg", category, stamp(reported)])

        def moment(around: datetime = reported) -> datetime:
            # Hours around the report, never in the future (the imports refuse that).
            return min(NOW, around + timedelta(hours=draw(st.integers(-240, 480))))

        for i in range(draw(st.integers(0, 2))):
            notices.append([case, stamp(moment()), f"abuse{i}@hoster.test", "email",
                            f"N{n}-{i}", draw(st.sampled_from(["true", "false"]))])
        for i in range(draw(st.integers(0, 2))):
            issued = moment()
            issuer, basis = draw(st.sampled_from([
                ("ATKM", "Wet bestuursrechtelijke aanpak online kinderpornografisch materiaal"),
                ("Politie", "EU 2021/784 (TCO)"),
                ("Other", "")]))
            deadline = issued + timedelta(minutes=draw(st.integers(1, 48 * 60)))
            orders.append([case, stamp(issued), issuer, stamp(deadline), basis, f"O{n}-{i}"])
        ip = draw(st.sampled_from(ADDRESSES))
        seen: set[datetime] = set()
        for _ in range(draw(st.integers(0, 8))):
            when = moment()
            if when in seen:  # one check per case and moment: the import refuses doubles
                continue
            seen.add(when)
            verdict = draw(st.sampled_from(Verdict))
            moved = draw(st.sampled_from([ip, ip, ip, *ADDRESSES]))
            checks.append([case, stamp(when), verdict.value, "", moved])
    return {
        "reports.csv": table(["id", "url", "category", "reported_at"], reports),
        "notices.csv": table(["case_id", "sent_at", "recipient", "channel", "reference",
                              "trusted_flagger"], notices),
        "orders.csv": table(["case_id", "issued_at", "issuer", "deadline_at", "legal_basis",
                             "reference"], orders),
        "checks.csv": table(["case_id", "checked_at", "verdict", "http_status", "ip"], checks),
    }


def run(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], env=ENV)


def ok(result: Result, what: str) -> Result:
    assert result.exit_code == 0, f"{what}: exit {result.exit_code}\n{result.output}"
    return result


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_every_accepted_history_makes_every_report_pack_and_export(files):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'hostwatch.db'}"
        for name, text in files.items():
            (work / name).write_text(text)
        ok(run(db, "import", str(work / "reports.csv")), "import")
        for command, name in (("import-notices", "notices.csv"), ("import-orders", "orders.csv"),
                              ("import-checks", "checks.csv")):
            # Rows the import refuses are its business (exit 1, named); the
            # file itself must be readable.
            assert run(db, command, str(work / name)).exit_code in (0, 1)
        ok(run(db, "enrich"), "enrich")

        store = Store(db)
        with store.session() as session:
            cases = session.scalars(select(Case)).all()
        store.dispose()
        for case in cases:
            assert (case.state == "removed") == (case.removed_at is not None)
            if case.removed_after is not None:
                assert case.removed_at is not None and case.removed_after <= case.removed_at

        report = None
        for fmt in ("json", "csv", "md", "html"):
            out = work / f"report.{fmt}"
            ok(run(db, "report", "hosters", "--format", fmt, "-o", str(out)), f"report {fmt}")
            if fmt == "json":
                report = json.loads(out.read_text())
        assert report is not None
        listed = ok(run(db, "deadlines", "--json"), "deadlines")
        for line in listed.output.splitlines():
            row = json.loads(line)
            due = datetime.fromisoformat(row["deadline"].replace("Z", "+00:00"))
            # Judged at the command's clock, which is later than NOW.
            if row["outcome"] == "pending":
                assert due > NOW, row
            else:
                assert due <= datetime.now(UTC), row
        packs = []
        for hoster in report["hosters"]:
            key = hoster["key"]
            if key is None:  # the unattributed cases: no hoster to name
                continue
            for regulator in ("atkm", "acm"):
                folder = work / f"pack-{len(packs)}"
                ok(run(db, "report", "evidence", "--hoster", key, "--for", regulator,
                       "-o", str(folder)), f"evidence {key} {regulator}")
                packs.append(folder.with_suffix(".zip"))
            ok(run(db, "export", "xarf", "--hoster", key, "--all", "--with-ncii",
                   "-o", str(work / f"xarf-{key.replace(':', '_')}.jsonl")), f"xarf {key}")
        verify = ["verify"]
        for pack in packs:
            verify += ["--pack", str(pack)]
        ok(run(db, *verify), "verify")
