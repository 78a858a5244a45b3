"""`hostwatch demo` runs the whole pipeline and each demo hoster behaves as told."""

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hostwatch.cli import main
from store import Case, Store


@pytest.mark.slow
def test_demo_shows_each_hosters_habit(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(out), "--cases", "40"])
    assert result.exit_code == 0, result.output
    assert "round 4: run 4 finished" in result.output
    assert f"store:   {out / 'hostwatch.db'}" in result.output
    assert "--db sqlite:///" in result.output
    store = Store(f"sqlite:///{out / 'hostwatch.db'}")
    with store.session() as session:
        rows = session.execute(select(Case.host, Case.state, func.count())
                               .group_by(Case.host, Case.state)).all()
    states = {}
    for host, state, _count in rows:
        states.setdefault(host, set()).add(state)
    assert states["bulletproof.test"] == {"online"}
    assert states["fastnl-hosting.test"] == {"removed"}
    assert states["imgshare.test"] == {"removed"}  # soft-404 placeholders recognised
    assert states["edgecache.test"] == {"removed"}  # the file was replaced: changed
    assert states["comeback.test"] == {"reappeared"}
    assert states["shortlived.test"] == {"removed"}  # NXDOMAIN
    assert (out / "reports.csv").is_file()
