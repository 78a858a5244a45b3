"""Every command explains itself, with an example, and is in the README."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hostwatch.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _command_names(group: click.Group, prefix: str = "") -> list[str]:
    """Every command, with a group's subcommands as "group sub"."""
    names = []
    for name, command in group.commands.items():
        names.append(prefix + name)
        if isinstance(command, click.Group):
            names += _command_names(command, f"{prefix}{name} ")
    return sorted(names)


COMMANDS = _command_names(main)


def test_the_core_commands_exist():
    assert {"import", "import-notices", "import-orders", "crawl", "run", "status", "cases",
            "update", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`hostwatch {name} --help` shows no example"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name):
    assert f"hostwatch {name}" in README


def test_status_on_an_empty_store(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = CliRunner().invoke(main, ["--db", db, "status"])
    assert result.exit_code == 0, result.output
    assert "0 cases" in result.output
    assert "no crawl run yet" in result.output


def test_unusable_store_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path}/no/such/dir.db", "status"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
