"""CLI commands, one module per group of commands; hostwatch.cli assembles them."""
