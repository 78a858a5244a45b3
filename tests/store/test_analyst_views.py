"""The analyst views (#15, migrations 0013 and 0014) give the hoster report's
figures and the pure rules' durations and deadline outcomes, on SQLite and on
PostgreSQL; they show reported URLs defanged only (kernel.defang), and the
migrations add, change and remove them."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, make_url, select, text, update
from sqlalchemy.exc import InternalError, ProgrammingError

from kernel.deadlines import Outcome, Regime, judge, notice_due
from kernel.defang import defang
from kernel.durations import Clock, duration
from kernel.model import Verdict
from reports.hosters import ReportQuery, hoster_report
from reports.takedown import figures_from_counts
from store import Store
from store.models import Attribution, Case, Check, CrawlRun, Hoster
from tests.builders import add_case
from tests.reports.test_hoster_sql import T0, _fill, assert_same_estimates
from tests.store.test_migration_routes import _at
from tests.test_defang import ODD_URLS, opens_as_a_web_address

VIEWS = {"analyst_cases", "analyst_checks", "analyst_deadlines", "analyst_notices",
         "analyst_orders", "analyst_case_durations", "analyst_hosters"}
CDN = "Edge Test CDN"


def _rows(store: Store, sql: str, **params) -> list[dict]:
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql), params)]


@pytest.fixture
def filled(store):
    """_fill's random histories, plus a suspect run holding some gone checks
    and a few cases served through a CDN."""
    with store.transaction() as session:
        cases, _ = _fill(session, random.Random(15), 200)
        run = CrawlRun(started_at=T0, tool_version="t", health="suspect",
                       health_reason="control URL failed")
        session.add(run)
        edge = Hoster(key="edge-cdn", legal_name=CDN, country="US", asns=[], cdn=True,
                      source="registry", updated_at=T0)
        session.add(edge)
        session.flush()
        gone = [v.value for v in (Verdict.HTTP_GONE, Verdict.PLACEHOLDER)]
        check_ids = session.scalars(select(Check.id).where(Check.verdict.in_(gone))).all()
        held = random.Random(1).sample(sorted(check_ids), len(check_ids) // 3)
        session.execute(update(Check).where(Check.id.in_(held)).values(run_id=run.id))
        attributions = session.scalars(select(Attribution.id).order_by(Attribution.id)).all()
        session.execute(update(Attribution).where(Attribution.id.in_(attributions[::7]))
                        .values(cdn=CDN, hoster_id=edge.id, hoster=CDN, server_country="US",
                                server_country_source="geoip"))
        session.execute(update(Attribution).where(Attribution.id.in_(attributions[1::7]))
                        .values(server_country="NL", server_country_source="rdap"))
    return cases


def test_analyst_hosters_give_the_hoster_reports_figures(store, filled):
    with store.session() as session:
        report = hoster_report(session, now=datetime.now(UTC))
    views = {(row["section"], row["hoster"]): row
             for row in _rows(store, "SELECT * FROM analyst_hosters")}
    assert len(views) == len(report.hosters)
    sections = {line.section.value for line in report.hosters}
    assert {"dutch", "eu", "non_eu", "cdn", "unattributed"} <= sections
    for line in report.hosters:
        row = views[(line.section.value, line.hoster)]
        figures = line.figures
        assert (row["cases"], row["online"], row["removed"], row["unchecked"],
                row["reappearances"]) == (figures.cases, figures.online, figures.removed,
                                          figures.unchecked, figures.reappearances), line.hoster
        counts = ("cases", "online", "removed", "unchecked", "reappearances")
        assert {type(row[name]) for name in counts} == {int}, line.hoster  # no Decimal
        assert (row["hoster_key"], row["hoster_country"], row["dsa_role"],
                row["abuse_contact"]) == (line.key, line.country, line.dsa_role, line.abuse)
        if figures.oldest_open_days is None:
            assert row["oldest_open_days"] is None
        else:
            assert row["oldest_open_days"] == pytest.approx(figures.oldest_open_days, abs=1e-3)
        for regime, outcomes in figures.deadlines.items():
            for outcome, n in outcomes.items():
                count = row[f"{regime}_{outcome}"]
                assert (count, type(count)) == (n, int), (line.hoster, regime, outcome)
    # The histories reach the outcomes a past deadline can have.
    seen = {outcome for line in report.hosters
            for outcomes in line.figures.deadlines.values()
            for outcome, n in outcomes.items() if n}
    assert seen >= {o.value for o in Outcome} - {Outcome.PENDING.value}
    assert sum(row["cases"] for row in views.values()) == report.totals["all"].cases


def test_case_durations_are_the_pure_durations_on_every_clock(store, filled):
    rows = {(row["case_id"], row["clock"]): row
            for row in _rows(store, "SELECT * FROM analyst_case_durations")}
    statuses = set()
    for case in filled:
        for clock in Clock:
            started = {Clock.REPORT: case.reported_at, Clock.NOTICE: case.first_notice_at,
                       Clock.ORDER: case.order_issued_at}[clock]
            row = rows.get((case.case_id, clock.value))
            if started is None:
                assert row is None
                continue
            want = duration(case, clock)
            statuses.add(row["status"])
            if want is None:  # removed before the clock started
                assert row["status"] == "removed_before_clock"
                assert row["lower_hours"] is row["upper_hours"] is row["point_hours"] is None
                continue
            assert row["status"] == ("removed" if want.removed else "censored")
            assert row["lower_hours"] == pytest.approx(want.lower_hours, abs=1e-9)
            assert row["point_hours"] == pytest.approx(want.point_hours, abs=1e-9)
            if want.upper_hours is None:
                assert row["upper_hours"] is None
            else:
                assert row["upper_hours"] == pytest.approx(want.upper_hours, abs=1e-9)
    assert statuses == {"removed", "censored", "removed_before_clock"}


def test_a_deadline_not_yet_passed_is_pending_and_judged_inputs_are_shown(store):
    sent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with store.transaction() as session:
        add_case(session, "p", sent - timedelta(hours=2),
                 [(sent + timedelta(hours=hours), verdict)
                  for hours, verdict in ((-1, Verdict.ONLINE), (0.5, Verdict.HTTP_GONE))],
                 url="https://pending.test/x", notices=[(sent, "a")])
    (row,) = _rows(store, "SELECT * FROM analyst_notices")
    assert row["outcome"] == Outcome.PENDING.value == judge(
        Regime.NOTICE_24H, sent, notice_due(sent),
        [(sent - timedelta(hours=1), Verdict.ONLINE)], datetime.now(UTC)).outcome.value
    assert (row["at_start_verdict"], row["before_verdict"], row["after_verdict"],
            row["in_report"]) == ("online", "http_gone", None, 1)


URLS = [
    "https://example.test/a.b/c?d=e.f",
    "HTTP://Example.TEST/",
    "HtTpS://user:pa.ss@host.test:8443/p",
    "http://[2001:db8::1]:8080/x.jpg",
    "https://[::ffff:192.0.2.1]/",
    "example.test/no-scheme.png",
    "//protocol-relative.test/x",
    "ftp://files.test/a.zip",
    "https://a.test/?next=http://b.test/&u=HTTPS://c.test",
    "http:/one-slash.test",
    "https:",
    "",
    "http://",
    "hxxp://already[.]defanged",
    "https://exämple.test/ü.html",
    "https://xn--exmple-cua.test/%2e%2E",
    *ODD_URLS,  # what a browser opens as http(s) without "http://"
    "\x01 \x7fhttp:\\\\2130706434\\x",
    "\t\nh\tt\rtp:2130706434",
    "http:",
    "hxxp:\\\\already[.]defanged",
]


def _random_urls(n: int) -> list[str]:
    rng = random.Random(15)
    pieces = ["http://", "https://", "HTTP://", "hTtPs://", "://", ".", "..", "/", ":", "@",
              "[", "]", "a", "B", "ü", "0", "?", "#", "%2e", " ", "h", "ttp", "s",
              "http:", "HTTPS:", "hxxp:", "\\", "\t", "\n", "\r", "\x01", "\x1f", "\x7f",
              "2130706434", "xx"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8))) for _ in range(n)]


def test_defang_by_hand():
    assert defang("HtTpS://user:pa.ss@host.test:8443/p") == \
        "hxxps://user:pa[.]ss@host[.]test:8443/p"
    assert defang("http://[2001:db8::1]:8080/x.jpg") == "hxxp://[2001:db8::1]:8080/x[.]jpg"
    assert defang("example.test/x") == "example[.]test/x"
    assert defang("https://a.test/?u=http://b.test") == "hxxps://a[.]test/?u=http[://]b[.]test"
    assert defang("ftp://f.test") == "ftp[://]f[.]test"
    assert defang("http:\\\\2130706434:9999\\x.jpg") == "hxxp:\\\\2130706434:9999\\x[.]jpg"


def test_the_views_defang_as_kernel_defang_does(store):
    urls = URLS + _random_urls(300)
    with store.transaction() as session:
        for i, url in enumerate(urls):
            add_case(session, str(i), T0, [(T0, Verdict.ONLINE)], url=url, host=url[:40],
                     check_fields={"final_url": url[::-1]})
    cases = _rows(store, "SELECT external_id, url_defanged, host_defanged FROM analyst_cases")
    assert {row["external_id"]: (row["url_defanged"], row["host_defanged"]) for row in cases} \
        == {str(i): (defang(url), defang(url[:40])) for i, url in enumerate(urls)}
    checks = _rows(store, "SELECT case_id, url_defanged, final_url_defanged FROM analyst_checks")
    assert sorted((row["url_defanged"], row["final_url_defanged"]) for row in checks) == \
        sorted((defang(url), defang(url[::-1])) for url in urls)
    assert not any(opens_as_a_web_address(row["url_defanged"]) for row in cases)


def test_no_view_shows_a_raw_url(store, filled):
    with store.transaction() as session:
        case = session.get(Case, filled[0].case_id)
        case.url = "HTTPS://raw.test/?next=http://other.test/"
        session.execute(update(Check).values(final_url="https://final.test/x",
                                             url="http://requested.test/"))
        session.execute(update(Attribution).values(hostname="raw.test"))
        odd = session.get(Case, filled[1].case_id)
        odd.url = "http:\\\\2130706434:9999\\x.jpg"
    names = set(inspect(store.engine).get_view_names())
    assert names >= VIEWS
    for view in sorted(VIEWS):
        rows = _rows(store, f"SELECT * FROM {view}")
        assert rows, view
        for column in rows[0]:
            assert "url" not in column or column.endswith("_defanged"), (view, column)
        for row in rows:
            for column, value in row.items():
                if isinstance(value, str):
                    assert "http://" not in value.lower() and "https://" not in value.lower(), \
                        (view, column, value)
                    assert not opens_as_a_web_address(value), (view, column, value)


def test_the_migration_adds_and_removes_the_views(db_url):
    store = Store(db_url)
    store.upgrade()
    assert set(inspect(store.engine).get_view_names()) >= VIEWS
    _at(store, db_url, "0012", "downgrade")
    assert not VIEWS & set(inspect(store.engine).get_view_names())
    store.dispose()
    store = Store(db_url)
    store.upgrade()
    assert set(inspect(store.engine).get_view_names()) >= VIEWS
    assert _rows(store, "SELECT COUNT(*) AS n FROM analyst_cases") == [{"n": 0}]
    store.dispose()


def _migration(name: str):
    path = Path(__file__).resolve().parents[2] / "store" / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0013_creates_the_views_it_always_did():
    """0014 builds its views with 0013's statements: 0013's own stay frozen."""
    views = _migration("0013_analyst_views.py")
    digests = {name: hashlib.sha256("\n;\n".join(views.view_sql(name)).encode()).hexdigest()
               for name in ("sqlite", "postgresql")}
    assert digests == {
        "sqlite": "3e002d929c346c102cf5be9eb48611a07e642b7936096e0047e4612448228355",
        "postgresql": "0a0941e732cc42d9a625fc73a817a5e3d646f0241d5d22036e868383df30eddc"}


def test_migration_0014_defangs_the_scheme_and_its_downgrade_does_not(db_url):
    url = "http:\\\\2130706434:9999\\x.jpg"
    store = Store(db_url)
    _at(store, db_url, "0013")
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count, unconfirmed_checks) "
            "VALUES ('t', '1', :url, 'http://127.0.0.2:9999/x.jpg', '127.0.0.2', 'csam', "
            ":at, :at, 'unchecked', 0, 0, 0)"), {"url": url, "at": T0.replace(tzinfo=None)})

    def shown() -> str:
        (row,) = _rows(store, "SELECT url_defanged FROM analyst_cases")
        return row["url_defanged"]
    old = shown()
    assert opens_as_a_web_address(old)  # 0013's rule: the bug
    _at(store, db_url, "0014")
    assert shown() == defang(url) == "hxxp:\\\\2130706434:9999\\x[.]jpg"
    assert set(inspect(store.engine).get_view_names()) >= VIEWS
    assert _rows(store, "SELECT cases FROM analyst_hosters") == [{"cases": 1}]
    _at(store, db_url, "0013", "downgrade")
    assert shown() == old
    assert set(inspect(store.engine).get_view_names()) >= VIEWS
    store.dispose()


def test_docs_name_every_column_of_every_view(tmp_path):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "analysts.md").read_text("utf-8")
    store = Store(f"sqlite:///{tmp_path / 'docs.db'}")
    store.upgrade()
    view_inspector = inspect(store.engine)
    missing = []
    for view in sorted(VIEWS):
        assert f"## {view}" in docs, view
        for column in view_inspector.get_columns(view):
            name = column["name"]
            if f"`{name}`" in docs:
                continue
            # analyst_hosters' {regime}_{outcome} columns are documented as a pattern.
            if any(name == f"{r.value}_{o.value}" for r in Regime for o in Outcome):
                continue
            missing.append((view, name))
    store.dispose()
    assert missing == []


def _role_block(path: Path) -> str:
    text_ = path.read_text("utf-8")
    return text_.split("<!-- analyst-role:", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]


def test_the_documented_read_only_role_reads_the_views_and_no_base_table(pg_url):
    root = Path(__file__).resolve().parents[2]
    block = _role_block(root / "README.md")  # what the README shows, docs/analysts.md too
    assert _role_block(root / "docs" / "analysts.md") == block
    store = Store(pg_url)
    store.upgrade()
    schema = make_url(pg_url).query["options"].split("=", 1)[1]
    role = f"analyst_{uuid.uuid4().hex[:10]}"
    sql = (block.replace("hostwatch_analyst", role)
           .replace("DATABASE hostwatch", f'DATABASE "{make_url(pg_url).database}"')
           .replace("SCHEMA public", f'SCHEMA "{schema}"'))
    with store.engine.begin() as connection:
        for statement in filter(str.strip, sql.split(";")):
            connection.execute(text(statement))
        connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count, unconfirmed_checks) "
            "VALUES ('t', '1', 'https://raw.test/x', 'https://raw.test/x', 'raw.test', "
            "'csam', now(), now(), 'unchecked', 0, 0, 0)"))
    analyst = Store(str(make_url(pg_url).set(username=role, password="change-me")))
    try:
        with analyst.engine.connect() as connection:
            assert connection.execute(text("SELECT url_defanged FROM analyst_cases")).all() \
                == [("hxxps://raw[.]test/x",)]
            for view in sorted(VIEWS):
                connection.execute(text(f"SELECT * FROM {view}")).all()
        for statement, error, match in (
                ("SELECT url FROM cases", ProgrammingError, "permission denied"),
                ("SELECT * FROM checks", ProgrammingError, "permission denied"),
                ("UPDATE cases SET state = 'removed'", InternalError, "read-only"),
                ("CREATE TABLE mine (x int)", InternalError, "read-only")):
            with analyst.engine.connect() as connection, pytest.raises(error, match=match):
                connection.execute(text(statement))
    finally:
        analyst.dispose()
        with store.engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        store.dispose()


def test_the_documented_example_queries_run(store, filled):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "analysts.md").read_text("utf-8")
    examples = docs.split("## Example queries", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in examples.split("```sql\n")[1:]]
    statements = [s for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 8
    with store.engine.connect() as connection:
        answered = [connection.execute(text(statement)).all() for statement in statements]
    assert sum(1 for rows in answered if rows) >= 5  # most find something in _fill's store


@pytest.mark.parametrize("clock", list(Clock))
def test_the_reports_survival_figures_follow_from_the_duration_rows(store, filled, clock):
    """The report's Kaplan–Meier figures per hoster, fitted on nothing but
    analyst_case_durations' rows and analyst_hosters' counts."""
    with store.session() as session:
        report = hoster_report(session, ReportQuery(clock=clock), now=datetime.now(UTC))
    hosters = {(row["section"], row["hoster"]): row
               for row in _rows(store, "SELECT * FROM analyst_hosters")}
    rows = _rows(store, "SELECT c.section, c.hoster, d.status, d.point_hours "
                        "FROM analyst_case_durations d JOIN analyst_cases c "
                        "ON c.case_id = d.case_id WHERE d.clock = :clock", clock=clock.value)
    for line in report.hosters:
        key = (line.section.value, line.hoster)
        weights = Counter((round(row["point_hours"], 9), row["status"] == "removed")
                          for row in rows if (row["section"], row["hoster"]) == key
                          and row["status"] != "removed_before_clock")
        fitted = figures_from_counts(
            clock, cases=hosters[key]["cases"], removed=hosters[key]["removed"],
            reappearances=hosters[key]["reappearances"],
            durations=[(hours, removed, n) for (hours, removed), n in sorted(weights.items())])
        got = line.figures.takedown
        assert fitted.measured == got.measured, key
        assert_same_estimates(fitted, got, key, tolerance=1e-6)
        assert fitted.share_within_24h == pytest.approx(got.share_within_24h) \
            if got.share_within_24h is not None else fitted.share_within_24h is None
