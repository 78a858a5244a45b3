"""kernel.verbosity and the CLI's -v: what the command line says at each level."""

from __future__ import annotations

import sys
import warnings

import click
import pytest
from click.testing import CliRunner

from hostwatch.cli import main
from hostwatch.commands.common import load_config
from kernel.verbosity import level_of_verbose, quiet_warnings, shows_warnings


def test_v_counts_up_to_debug():
    assert [level_of_verbose(n) for n in range(4)] == [None, "INFO", "DEBUG", "DEBUG"]


def test_warnings_show_at_info_and_below_only():
    assert [shows_warnings(level) for level in ("DEBUG", "info", "WARNING", "ERROR")] == [
        True, True, False, False]


@pytest.mark.parametrize(("level", "shown"), [("WARNING", 0), ("INFO", 1), ("DEBUG", 1)])
def test_python_warnings_are_hidden_at_the_default_level(monkeypatch, level, shown):
    monkeypatch.setattr(sys, "warnoptions", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_warnings(level)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    assert len(caught) == shown


def test_a_warnings_filter_the_user_chose_is_obeyed(monkeypatch):
    monkeypatch.setattr(sys, "warnoptions", ["default"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_warnings("WARNING")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    assert len(caught) == 1


@pytest.mark.parametrize(("verbose", "env", "level"), [
    (None, None, "WARNING"), (None, "info", "INFO"), ("INFO", None, "INFO"),
    ("DEBUG", "ERROR", "DEBUG")])
def test_v_wins_over_the_setting_in_every_commands_config(monkeypatch, verbose, env, level):
    """-v/-vv (kept by `main` as ``log_level``) over HOSTWATCH_LOG_LEVEL, else WARNING."""
    if env is None:
        monkeypatch.delenv("HOSTWATCH_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("HOSTWATCH_LOG_LEVEL", env)
    ctx = click.Context(main, obj={"db": None, "log_level": verbose})
    assert load_config(ctx).log_level == level


def test_an_unknown_log_level_is_a_bad_setting(tmp_path):
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path}/s.db", "status"],
                                env={"HOSTWATCH_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 1
    assert "bad setting: HOSTWATCH_LOG_LEVEL='LOUD'" in result.output
