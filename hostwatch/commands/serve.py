"""`hostwatch serve`: the store in Datasette, read-only (hostwatch.serve)."""

from __future__ import annotations

import click

from hostwatch.commands.common import load_config
from hostwatch.serve import DEFAULT_PORT, USERNAME, ServeError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback only with "
                   "HOSTWATCH_SERVE_PASSWORD_HASH set.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Port to listen on (0: any free port).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Browse the store in Datasette, read-only, until Ctrl-C.

    Reported URLs are shown defanged (hxxps://host[.]example/...), never as
    links; pages load nothing from elsewhere. With HOSTWATCH_SERVE_PASSWORD_HASH
    set (a hash from `datasette hash-password`), every page needs a login as
    `analyst`.

    \b
    Example:
      hostwatch serve            # then open http://127.0.0.1:8001/
    """
    from hostwatch import serve as serving  # Datasette loads only for this command

    config = load_config(ctx)
    login = f" (log in as {USERNAME})" if config.serve_password_hash else ""

    def announce(url: str) -> None:
        click.echo(f"Serving the store read-only at {url}{login}; Ctrl-C stops.")

    try:
        serving.serve(config, host=host, port=port, announce=announce)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass


COMMANDS = [serve]
