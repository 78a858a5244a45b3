"""`hostwatch import`, `import-notices`, `import-orders` (filled in by the import work)."""

import click

COMMANDS: list[click.Command] = []
