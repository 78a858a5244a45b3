"""Analyst views (#15): defang the scheme whatever follows it

0013's rule rewrote only a leading ``http://``/``https://``, but a browser
opens ``http:\\\\2130706434:9999\\x.jpg``, ``http:/h/x`` and ``http:h/x`` too
(the URL Standard: a backslash is a slash for http(s), missing slashes are
fine), and an import accepts them. The views now turn any leading ``http:``
or ``https:`` into ``hxxp:``/``hxxps:``, found as a browser finds it: after
leading C0 control characters and spaces, in any case, ignoring tabs and line
breaks (kernel/defang.py holds the rule; tests/store/test_analyst_views.py
holds this SQL to it). The usual ``http://`` URLs read as before.

The views are dropped (dependants first) and created again from 0013's
statements with the new rule. On PostgreSQL that drops the grants on them:
run the ``GRANT SELECT`` of docs/analysts.md again after the upgrade.

Revision ID: 0014
Revises: 0013
"""
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _load_0013() -> ModuleType:
    """0013's view statements, which take the defang SQL as a parameter."""
    path = Path(__file__).with_name("0013_analyst_views.py")
    spec = importlib.util.spec_from_file_location("hostwatch_migration_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0013 = _load_0013()


def defang_sql(dialect_name: str) -> Callable[[str], str]:
    """kernel.defang.defang in SQL for a column, on SQLite or PostgreSQL.

    No NUL to handle: PostgreSQL text cannot hold one and an import refuses
    it (SQLite's ltrim, substr and length stop at it)."""
    sqlite = dialect_name == "sqlite"
    if sqlite:
        lead = "char(" + ", ".join(str(code) for code in range(1, 0x21)) + ")"
        tab, lf, cr = "char(9)", "char(10)", "char(13)"
    else:
        lead = "E'" + "".join(f"\\x{code:02x}" for code in range(1, 0x21)) + "'"
        tab, lf, cr = "chr(9)", "chr(10)", "chr(13)"

    def defang(column: str) -> str:
        def rest(text: str) -> str:
            return f"REPLACE(REPLACE({text}, '://', '[://]'), '.', '[.]')"
        plain = f"REPLACE(REPLACE({column}, '[.]', '.'), '[://]', '://')"
        body = f"LTRIM({plain}, {lead})"  # after the C0 controls and spaces
        colon = f"INSTR({body}, ':')" if sqlite else f"STRPOS({body}, ':')"
        # The scheme with its colon ('' without one), tabs and line breaks dropped.
        scheme = (f"LOWER(REPLACE(REPLACE(REPLACE(SUBSTR({body}, 1, {colon}), "
                  f"{tab}, ''), {lf}, ''), {cr}, ''))")
        kept = f"SUBSTR({plain}, 1, LENGTH({plain}) - LENGTH({body}))"
        after = rest(f"SUBSTR({body}, {colon} + 1)")
        return (f"CASE WHEN {scheme} IN ('https:', 'hxxps:') THEN {kept} || 'hxxps:' || {after} "
                f"WHEN {scheme} IN ('http:', 'hxxp:') THEN {kept} || 'hxxp:' || {after} "
                f"ELSE {rest(plain)} END")
    return defang


def _recreate(defang: Callable[[str], str] | None) -> None:
    name = op.get_bind().dialect.name
    for view in _0013.VIEWS:  # dependants first
        op.execute(f"DROP VIEW IF EXISTS {view}")
    statements = _0013.view_sql(name) if defang is None else _0013.view_sql(name, defang)
    for sql in statements:
        op.execute(sql)


def upgrade() -> None:
    _recreate(defang_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    _recreate(None)  # 0013's rule
