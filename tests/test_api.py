"""The library API (`import hostwatch`): the README's example, and each entry
point against a real store; attribution against the local test internet
(loopback only)."""

from __future__ import annotations

import contextlib
import io
import os
import pydoc
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

import hostwatch
from hostwatch import (
    ClassificationRequired,
    Config,
    FileError,
    HosterAmbiguous,
    HosterNotFound,
    Hostwatch,
    HostwatchError,
    LockBusy,
    Party,
    StoreError,
    open_store,
)
from lab import TestInternet
from store.lock import RunLock
from store.models import Attribution, Case
from tests.enrichment.conftest import enrich_env

ROOT = Path(__file__).resolve().parent.parent
# Settings a developer's shell may carry that change states or the store.
LEAKY = ("HOSTWATCH_DB", "HOSTWATCH_REMOVAL_MIN_HOURS", "HOSTWATCH_REMOVAL_CONFIRMATIONS",
         "HOSTWATCH_TRANSIENT_DAYS", "HOSTWATCH_DATA_DIR")
REPORTER = Party("Test Hotline", "meldpunt@hotline.test", "hotline.test")
T = datetime(2026, 3, 1, tzinfo=UTC)  # "now" for judging deadlines: long after them


@pytest.fixture
def clean_env(monkeypatch, tmp_path) -> Path:
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def readme_example() -> tuple[str, str]:
    """The README's "Using hostwatch from Python" code and the output it shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using hostwatch from Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"```text\n(.*?)```", section, re.S)
    assert code and shown, "the README section lost its example"
    return code.group(1), shown.group(1)


def test_the_readme_example_runs_and_prints_what_the_readme_shows(clean_env):
    code, shown = readme_example()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    assert out.getvalue() == shown
    assert (clean_env / "hosters.html").read_text().lstrip().lower().startswith("<!doctype html")


# ---------------------------------------------------------------- the package


def test_the_package_exports_its_api_with_docstrings():
    from hostwatch import api

    assert set(api.__all__) - {"REPORT_FORMATS"} <= set(hostwatch.__all__)
    for name in api.__all__:
        value = getattr(hostwatch, name, None) or getattr(api, name)
        if callable(value):
            assert value.__doc__, f"hostwatch.{name} has no docstring"
    for method in ("import_reports", "import_notices", "import_orders", "import_checks",
                   "crawl", "enrich", "whois", "update_states", "status", "cases",
                   "deadlines", "hoster_report", "evidence_pack", "xarf", "verify"):
        assert getattr(Hostwatch, method).__doc__, method
    shown = pydoc.render_doc(hostwatch, renderer=pydoc.plaintext)
    for name in ("open_store", "class Hostwatch", "render_hoster_report", "HostwatchError",
                 "crawl(self", "once per process"):
        assert name in shown, name


def test_every_error_the_package_names_is_a_hostwatch_error():
    errors = [getattr(hostwatch, n) for n in hostwatch.__all__
              if isinstance(getattr(hostwatch, n), type)
              and issubclass(getattr(hostwatch, n), BaseException)]
    assert len(errors) >= 12
    assert all(issubclass(e, HostwatchError) for e in errors)


def test_the_commands_hold_no_sql_and_do_not_exit_the_process():
    for path in (ROOT / "hostwatch" / "commands").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for banned in (r"sys\.exit", r"(?<!')\bselect\(", r"session\.(execute|scalar)",
                       r"\bfunc\.", r"\btext\(", r"^from sqlalchemy", r"^import sqlalchemy"):
            assert not re.search(banned, text, re.M), f"{path.name}: {banned}"


# ---------------------------------------------------------------- store and imports


def test_open_store_creates_the_schema_and_refuses_what_it_cannot_open(clean_env):
    with open_store(f"sqlite:///{clean_env / 'new.db'}") as hw:
        status = hw.status()
        assert (status.total, status.last_run, status.suspect_runs) == (0, None, 0)
    assert (clean_env / "new.db").exists()
    with pytest.raises(StoreError, match="directory of the SQLite file does not exist"):
        open_store(f"sqlite:///{clean_env / 'no' / 'such' / 'x.db'}")
    with pytest.raises(HostwatchError, match="not a database URL"):
        Hostwatch(Config.from_env({}, db="nonsense"))


def test_open_store_takes_the_url_over_the_config(clean_env):
    config = Config.from_env({}, db=f"sqlite:///{clean_env / 'a.db'}", removal_confirmations=3)
    with open_store(f"sqlite:///{clean_env / 'b.db'}", config=config) as hw:
        assert hw.config.removal_confirmations == 3
        assert hw.store.sqlite_path == clean_env / "b.db"
    assert not (clean_env / "a.db").exists()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_reports_keeps_the_good_rows_and_is_idempotent(clean_env):
    reports = write(clean_env / "reports.csv",
                    "id,url,category,reported_at\n"
                    "R1,https://img.example.nl/a.jpg,csam,2026-02-01T10:00:00Z\n"
                    "R2,https://img.example.nl/b.jpg,ncii,2026-02-01T11:00:00+01:00\n"
                    "R3,https://img.example.nl/c.jpg,poetry,2026-02-01T11:00:00Z\n")
    with open_store(f"sqlite:///{clean_env / 'h.db'}") as hw:
        first = hw.import_reports(reports, source="meldpunt")
        assert (first.added, first.unchanged, first.rejected_rows) == (2, 0, 1)
        assert [str(e).split(":")[:3] for e in first.rejected] == [
            [str(reports), "4", " category"]]
        again = hw.import_reports(str(reports), source="meldpunt")
        assert (again.added, again.unchanged, again.rejected_rows) == (0, 2, 1)
        rows = [hostwatch.case_as_dict(row) for row in hw.cases()]
        assert [(r["id"], r["source"], r["category"], r["state"], r["hoster"])
                for r in rows] == [("R1", "meldpunt", "csam", "unchecked", None),
                                   ("R2", "meldpunt", "ncii", "unchecked", None)]
        assert [hostwatch.case_as_dict(r)["id"] for r in hw.cases(limit=1)] == ["R1"]
        with pytest.raises(FileError) as missing:
            hw.import_reports(clean_env / "nope.csv")
        assert isinstance(missing.value, HostwatchError)
        assert hw.status().total == 2


def test_a_write_the_store_refuses_is_an_import_refused(clean_env):
    """The API raises ImportRefused; the CLI prints it and exits 2, as before."""
    from click.testing import CliRunner
    from sqlalchemy import text

    from hostwatch.cli import main

    db = f"sqlite:///{clean_env / 'h.db'}"
    write(clean_env / "reports.csv", "id,url,category,reported_at\n"
          "R1,https://img.example.nl/a.jpg,csam,2026-02-01T10:00:00Z\n")
    with open_store(db) as hw:
        with hw.store.engine.begin() as connection:
            connection.execute(text("CREATE TRIGGER no_cases BEFORE INSERT ON cases "
                                    "BEGIN SELECT RAISE(ABORT, 'no new cases'); END"))
        with pytest.raises(hostwatch.ImportRefused) as refused:
            hw.import_reports("reports.csv")
        assert isinstance(refused.value, StoreError)
        assert str(refused.value) == ("reports.csv: the store refused the import, nothing "
                                      "written: no new cases")
        assert hw.status().total == 0
    result = CliRunner().invoke(main, ["--db", db, "import", "reports.csv"])
    assert result.exit_code == 2
    assert result.stderr == ("error: reports.csv: the store refused the import, nothing "
                             "written: no new cases\n")


def test_import_checks_takes_the_run_lock(clean_env):
    reports = write(clean_env / "reports.csv", "id,url,category,reported_at\n"
                    "R1,https://img.example.nl/a.jpg,csam,2026-02-01T10:00:00Z\n")
    checks = write(clean_env / "checks.csv", "case_id,checked_at,verdict\n"
                   "R1,2026-02-01T12:00:00Z,online\n")
    with open_store(f"sqlite:///{clean_env / 'h.db'}") as hw:
        hw.import_reports(reports)
        with RunLock(hw.store, hw.config.data_dir), pytest.raises(LockBusy):
            hw.import_checks(checks)
        assert hw.state_counts() == {"unchecked": 1}
        assert hw.import_checks(checks).added == 1
        assert hw.state_counts() == {"online": 1}


def test_update_states_derives_every_state_again_under_the_config(clean_env):
    db = f"sqlite:///{clean_env / 'h.db'}"
    write(clean_env / "reports.csv", "id,url,category,reported_at\n"
          "R1,https://img.example.nl/a.jpg,csam,2026-02-01T10:00:00Z\n"
          "R2,https://img.example.nl/b.jpg,csam,2026-02-01T10:00:00Z\n")
    write(clean_env / "checks.csv", "case_id,checked_at,verdict,http_status\n"
          "R1,2026-02-01T12:00:00Z,online,200\n"
          "R1,2026-02-02T12:00:00Z,http_gone,404\n"
          "R1,2026-02-03T12:00:00Z,http_gone,404\n"
          "R2,2026-02-01T12:00:00Z,online,200\n")
    with open_store(db) as hw:
        hw.import_reports("reports.csv")
        hw.import_checks("checks.csv")
        assert hw.state_counts() == {"online": 1, "removed": 1}
    # Three confirmations: two gone checks are not enough any more.
    with Hostwatch(Config.from_env({}, db=db, removal_confirmations=3)) as strict:
        assert strict.update_states() == 2
        assert strict.state_counts() == {"online": 1, "pending_removal": 1}
    with open_store(db) as hw:
        assert hw.update_states() == 2
        assert hw.state_counts() == {"online": 1, "removed": 1}


def test_a_deadline_crawl_with_nothing_due_starts_nothing(clean_env):
    with open_store(f"sqlite:///{clean_env / 'h.db'}") as hw:
        assert hw.deadline_checks_due() == 0
        outcome = hw.crawl(deadlines=True)
        assert outcome.nothing_due and outcome.run is None and outcome.finished
        assert hw.status().last_run is None


CRAWL_SCRIPT = """
import sys

import hostwatch

with hostwatch.open_store(sys.argv[1]) as hw:
    hw.import_reports("reports.csv")
    outcome = hw.crawl(limit=10)
    print(outcome.run.status, outcome.run.checks_made, outcome.suspect, outcome.finished)
    try:
        hw.crawl()
    except hostwatch.CrawlError as exc:
        print("again:", exc)
    print(sorted(hw.state_counts().items()))
"""


def test_a_process_crawls_once_through_the_api(clean_env):
    """In a child process (Scrapy's reactor cannot restart), on the local test internet."""
    import subprocess
    import sys

    from lab import Serve, Status, marker_body
    from tests.crawler.conftest import crawl_env

    with TestInternet(ttl=1) as net:
        host = net.add_host("api-crawl.test")
        host.route("/here.jpg", Serve(marker_body("api-crawl")))
        host.route("/gone.jpg", Status(404))
        write(clean_env / "reports.csv", "id,url,category,reported_at\n"
              f"R1,{host.url('/here.jpg')},csam,2026-02-01T10:00:00Z\n"
              f"R2,{host.url('/gone.jpg')},csam,2026-02-01T10:00:00Z\n")
        env = {k: v for k, v in crawl_env(net, clean_env).items() if k not in LEAKY}
        env["PYTHONPATH"] = str(ROOT)
        done = subprocess.run([sys.executable, "-c", CRAWL_SCRIPT,
                               f"sqlite:///{clean_env / 'h.db'}"],
                              env=env, cwd=clean_env, capture_output=True, text=True,
                              timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "finished 2 False True",
        "again: this process has crawled already: Scrapy's reactor cannot restart; crawl "
        "again in a new process",
        "[('online', 1), ('pending_removal', 1)]"]


# ---------------------------------------------------------------- an attributed store


@dataclass(frozen=True)
class Built:
    workdir: Path
    config: Config


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    """Three cases at a Dutch hoster, one at a US hoster, imported and
    attributed through the API (in this process) against the local test
    internet: A1 removed, B2 online, C3 (ncii) removed by a placeholder, D4
    online; notices and ATKM orders as in tests/reports/test_evidence.py."""
    workdir = tmp_path_factory.mktemp("api")
    with TestInternet(ttl=1) as net:
        dutch = net.add_host("dutch.test", network=64501)
        us = net.add_host("liberty.test", network=64504)
        files = {
            "reports.csv": "id,url,category,reported_at\n"
                           f"A1,{dutch.url('/a.jpg')},csam,2026-02-01T10:00:00Z\n"
                           f"B2,{dutch.url('/b.jpg')},csam,2026-02-01T11:00:00Z\n"
                           f"C3,{dutch.url('/c.jpg')},ncii,2026-02-01T10:00:00Z\n"
                           f"D4,{us.url('/d.jpg')},csam,2026-02-01T10:00:00Z\n",
            "checks.csv": "case_id,checked_at,verdict,http_status,ip\n"
                          f"A1,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                          f"A1,2026-02-02T12:00:00Z,http_gone,404,{dutch.ip}\n"
                          f"A1,2026-02-03T12:00:00Z,http_gone,404,{dutch.ip}\n"
                          f"B2,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                          f"B2,2026-02-04T12:00:00Z,online,200,{dutch.ip}\n"
                          f"C3,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                          f"C3,2026-02-01T20:00:00Z,placeholder,200,{dutch.ip}\n"
                          f"C3,2026-02-02T09:00:00Z,placeholder,200,{dutch.ip}\n"
                          f"D4,2026-02-01T12:00:00Z,online,200,{us.ip}\n"
                          f"D4,2026-02-02T12:00:00Z,online,200,{us.ip}\n",
            "notices.csv": "case_id,sent_at,recipient\n"
                           "A1,2026-02-01T13:00:00Z,abuse@dutchhost.test\n",
            "orders.csv": "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
                          "B2,2026-02-02T00:00:00Z,ATKM,2026-02-02T06:00:00Z,,O-2\n"
                          "C3,2026-02-01T14:00:00Z,ATKM,2026-02-01T21:00:00Z,,O-3\n",
        }
        for name, text in files.items():
            write(workdir / name, text)
        env = {k: v for k, v in enrich_env(net, workdir).items() if k not in LEAKY}
        env["HOSTWATCH_DATA_DIR"] = str(workdir)
        config = Config.from_env(env, db=f"sqlite:///{workdir / 'hostwatch.db'}")
        with Hostwatch(config) as hw:
            assert hw.import_reports(workdir / "reports.csv").added == 4
            assert hw.import_checks(workdir / "checks.csv").added == 10
            assert hw.import_notices(workdir / "notices.csv").added == 1
            assert hw.import_orders(workdir / "orders.csv").added == 2
            seen: list[tuple[int, int]] = []
            result = hw.enrich(progress=lambda done, total: seen.append((done, total)))
            assert result.attributed == 10
            assert seen and seen[-1] == (10, 10)
            assert hw.enrich().attributed == 0  # idempotent
        yield Built(workdir, config)


@pytest.fixture
def hw(built) -> Iterator[Hostwatch]:
    with Hostwatch(built.config) as handle:
        yield handle


def test_cases_carry_their_hoster_of_record(hw):
    rows = {r["id"]: r for r in map(hostwatch.case_as_dict, hw.cases())}
    assert {k: (r["state"], r["hoster_key"], r["dutch"]) for k, r in rows.items()} == {
        "A1": ("removed", "dutch-test-hosting", True),
        "B2": ("online", "dutch-test-hosting", True),
        "C3": ("removed", "dutch-test-hosting", True),
        "D4": ("online", rows["D4"]["hoster_key"], False),
    }
    assert rows["D4"]["hoster"] == "Liberty Test Hosting LLC"
    assert [hostwatch.case_as_dict(r)["id"] for r in hw.cases(state="online")] == ["B2", "D4"]
    by_name = hw.cases(hoster="Dutch Test Hosting B.V.")
    assert [hostwatch.case_as_dict(r)["id"] for r in by_name] == ["A1", "B2", "C3"]
    online = hw.cases(hoster="dutch-test-hosting", state="online")
    assert [hostwatch.case_as_dict(r)["id"] for r in online] == ["B2"]
    with pytest.raises(HosterNotFound):
        list(hw.cases(hoster="no such hoster"))


def test_a_cdn_fronted_cases_edge_country_is_no_server_country():
    """`hostwatch cases --json`: where a CDN's edge answered is given apart
    (cdn_edge_country), never as the server's country (kernel/location.py)."""
    case = Case(external_id="E1", source="t", url="https://e1.test/x", state="online")
    built = datetime(2026, 2, 24, tzinfo=UTC)

    def located(cdn: str | None) -> tuple[object, ...]:
        who = Attribution(cdn=cdn, server_country="us", server_country_source="geoip",
                          geoip_built_at=built)
        row = hostwatch.case_as_dict((case, who, None))
        return (row["cdn"], row["server_country"], row["server_country_source"],
                row["geoip_built_at"], row["cdn_edge_country"])

    assert located("TestCDN") == ("TestCDN", None, None, None, "us")
    assert located(None) == (None, "US", "geoip", "2026-02-24T00:00:00Z", None)
    unattributed = hostwatch.case_as_dict((case, None, None))
    assert (unattributed["server_country"], unattributed["cdn_edge_country"]) == (None, None)


def test_deadlines_are_judged(hw):
    judged = {(d.external_id, d.regime.value): d.judgement.outcome.value
              for d in hw.deadlines(now=T)}
    assert judged == {("A1", "notice_24h"): "met", ("B2", "atkm_order"): "breached",
                      ("C3", "atkm_order"): "met"}
    assert list(hw.deadlines(now=T, only_open=True)) == []


def test_the_hoster_report_counts_per_hoster(hw):
    report = hw.hoster_report()
    assert (report.totals["dutch"].cases, report.totals["foreign"].cases,
            report.totals["all"].cases) == (3, 1, 4)
    dutch = next(line for line in report.hosters if line.key == "dutch-test-hosting")
    assert (dutch.figures.cases, dutch.figures.online, dutch.figures.removed) == (3, 1, 2)
    only_ncii = hw.hoster_report(category="ncii")
    assert only_ncii.totals["all"].cases == 1
    later = hw.hoster_report(since=datetime(2026, 2, 1, 10, 30, tzinfo=UTC))
    assert later.totals["all"].cases == 1  # B2 only
    as_json = hostwatch.render_hoster_report(report, "json")
    assert '"Dutch Test Hosting B.V."' in as_json
    assert hostwatch.render_hoster_report(report, "csv").count("\n") >= 3
    with pytest.raises(hostwatch.ReportError):
        hostwatch.render_hoster_report(report, "pdf")
    with pytest.raises(hostwatch.InvalidArgument, match="until must be later than since"):
        hw.hoster_report(since=T, until=T)


def test_xarf_reports_for_the_open_cases_of_one_hoster(hw):
    export = hw.xarf("dutch-test-hosting", reporter=REPORTER, classification="baseline")
    assert export.hoster.legal_name == "Dutch Test Hosting B.V."
    b2 = next(r for r in map(hostwatch.case_as_dict, hw.cases()) if r["id"] == "B2")
    assert [(r["type"], r["url"], r["source_identifier"]) for r in export.reports] == [
        ("csam", b2["url"], b2["ip"])]
    assert export.reports[0]["reporter"]["org"] == "Test Hotline"
    assert export.states == {"online": 1} and export.skipped == {} and export.ncii == 0
    everything = hw.xarf("Dutch Test Hosting B.V.", reporter=REPORTER,
                         classification="baseline", include_removed=True)
    assert len(everything.reports) == 2  # A1 and B2
    assert everything.skipped == {"ncii": ["hotline/C3"]}
    with_ncii = hw.xarf("dutch-test-hosting", reporter=REPORTER, classification="baseline",
                        include_removed=True, with_ncii=True)
    assert with_ncii.ncii == 1 and with_ncii.skipped == {}
    with pytest.raises(ClassificationRequired, match="1 csam cases need"):
        hw.xarf("dutch-test-hosting", reporter=REPORTER)
    with pytest.raises(HosterNotFound):
        hw.xarf("no such hoster", reporter=REPORTER, classification="baseline")
    assert issubclass(HosterAmbiguous, StoreError)


def test_an_evidence_pack_verifies_and_a_changed_one_does_not(hw, built, tmp_path):
    pack = hw.evidence_pack("dutch-test-hosting", "acm", tmp_path / "pack")
    assert pack.folder == tmp_path / "pack" and pack.archive == tmp_path / "pack.zip"
    assert {"MANIFEST.sha256", "checks.csv", "dsa.json"} <= set(pack.files)
    assert sorted(c.external_id for c in pack.data.cases) == ["A1", "B2", "C3"]
    assert len(pack.data.checks) == 8
    good = hw.verify([pack.folder, pack.archive])
    assert good.ok and good.problems == []
    assert good.checks == 10 and good.head_check_id is not None
    assert good.files_checked == 2 * (len(pack.files) - 1)  # the manifest's lines
    assert good.pack_checks_checked == 16
    with pytest.raises(HostwatchError):  # the folder is taken
        hw.evidence_pack("dutch-test-hosting", "acm", tmp_path / "pack")

    (pack.folder / "cases.csv").write_text("id\nforged\n", encoding="utf-8")
    bad = hw.verify([pack.folder, tmp_path / "missing.zip"])
    assert not bad.ok
    assert any("cases.csv" in problem for problem in bad.problems)
    assert bad.packs[1].result is None and bad.packs[1].error
    assert bad.files_checked == bad.packs[0].result.files_checked


def test_whois_refuses_a_url_without_a_host(hw):
    for url in ("http://", "http://:80/", "http://[/"):
        with pytest.raises(hostwatch.UrlError, match="no host"):
            hw.whois(url)


def test_help_lists_the_api_in_a_fresh_interpreter():
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-c", "import hostwatch; help(hostwatch)"],
                           env={**os.environ, "PAGER": "cat", "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert "open_store" in shown and "class Hostwatch" in shown and "DATA" in shown


@pytest.mark.parametrize(("call", "message"), [
    (lambda hw: hw.hoster_report(clock="never"), "clock must be one of report, notice, order"),
    (lambda hw: hw.hoster_report(category="nope"), "category must be one of csam, csam_ai, ncii"),
    (lambda hw: hw.hoster_report(since=datetime(2026, 1, 1)), "since must carry a time zone"),
    (lambda hw: list(hw.cases(state="vanished")), "state must be one of"),
    (lambda hw: list(hw.cases(limit=-1)), "limit must not be negative"),
    (lambda hw: hw.evidence_pack("x", "fbi", "out"), "audience must be one of atkm, acm"),
])
def test_a_value_a_call_cannot_use_is_named(hw, call, message):
    with pytest.raises(hostwatch.InvalidArgument, match=message) as raised:
        call(hw)
    assert isinstance(raised.value, hostwatch.HostwatchError)
    assert isinstance(raised.value, ValueError)


def test_a_store_that_cannot_be_opened_is_a_store_error(tmp_path):
    (tmp_path / "text.db").write_text("not a database\n")
    for url, message in [(f"sqlite:///{tmp_path}/text.db", "file is not a database"),
                         ("mysqlx://db.invalid/x", "cannot use the database URL"),
                         (f"sqlite:///{tmp_path}/no/such/dir/x.db", "does not exist")]:
        with pytest.raises(hostwatch.StoreError, match=message):
            hostwatch.open_store(url, config=hostwatch.Config.from_env({}))
