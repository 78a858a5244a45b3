"""The example deployment files (deploy/) name real settings and commands."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from click.testing import CliRunner

from hostwatch.cli import main
from kernel.config import KEYS, Config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _env_file() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "systemd" / "hostwatch.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_example_settings_are_hostwatch_settings_and_valid():
    values = _env_file()
    known = {key.env for key in KEYS.values()}
    assert set(values) <= known, set(values) - known
    config = Config.from_env(values)  # every value as hostwatch reads it
    assert config.queue.startswith("postgresql://") and config.db.startswith("postgresql")


def test_every_unit_runs_a_hostwatch_command_that_exists():
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {unit.name for unit in units} == {"hostwatch-night.service",
                                             "hostwatch-worker.service"}
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        assert parser["Service"]["EnvironmentFile"] == "/etc/hostwatch/hostwatch.env"
        command = shlex.split(parser["Service"]["ExecStart"])
        assert command[0].endswith("/hostwatch")
        result = CliRunner().invoke(main, [*command[1:], "--help"])
        assert result.exit_code == 0, (unit.name, result.output)


def test_the_worker_unit_does_not_restart_a_worker_on_the_wrong_store():
    # `hostwatch worker` exits 78 (EX_CONFIG) when its store is not the
    # coordinator's; restarting it would change nothing.
    from hostwatch.commands.crawl import EXIT_CONFIG

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string((DEPLOY / "systemd" / "hostwatch-worker.service").read_text())
    service = parser["Service"]
    assert service["Restart"] == "always"
    assert service["RestartPreventExitStatus"].split() == [str(EXIT_CONFIG)]
