"""`hostwatch serve`: the analyst views in Datasette, read-only (hostwatch.serve)."""

from __future__ import annotations

from pathlib import Path

import click

from hostwatch.commands.common import load_config
from hostwatch.serve_defaults import DEFAULT_PORT, REFRESH_SECONDS, USERNAME


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback only with "
                   "HOSTWATCH_SERVE_PASSWORD_HASH set.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Port to listen on (0: any free port).")
@click.option("--refresh", type=click.FloatRange(min=0), default=REFRESH_SECONDS,
              show_default=True, metavar="SECONDS",
              help="How often to ask the store whether it changed (then the snapshot "
                   "is rewritten); 0: never.")
@click.option("--tls-cert", type=click.Path(path_type=Path), default=None,
              help="Serve HTTPS with this certificate (PEM; with --tls-key).")
@click.option("--tls-key", type=click.Path(path_type=Path), default=None,
              help="The certificate's private key (PEM).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, refresh: float, tls_cert: Path | None,
          tls_key: Path | None) -> None:
    """Browse the store's analyst views in Datasette, read-only, until Ctrl-C.

    What is served is a snapshot of the analyst views (docs/analysts.md),
    rewritten when the store changes: reported URLs only defanged
    (hxxps://host[.]example/...), never as links, in pages, JSON, CSV and SQL
    results alike; the store's own tables are not served. The hoster report
    is at /-/report. Pages load nothing from elsewhere. With
    HOSTWATCH_SERVE_PASSWORD_HASH set (a hash from `datasette hash-password`),
    every page needs a login as `analyst`. --db may also name a snapshot file
    from `hostwatch export sqlite`, served as it is.

    \b
    Example:
      hostwatch serve            # then open http://127.0.0.1:8001/
    """
    from hostwatch import serve as serving  # Datasette loads only for this command

    config = load_config(ctx)
    login = f" (log in as {USERNAME})" if config.serve_password_hash else ""

    def announce(url: str) -> None:
        click.echo(f"Serving the analyst views read-only at {url}{login}; Ctrl-C stops.")

    try:
        serving.serve(config, host=host, port=port, refresh=refresh, tls_cert=tls_cert,
                      tls_key=tls_key, announce=announce, progress=click.echo)
    except serving.ServeError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass


COMMANDS = [serve]
