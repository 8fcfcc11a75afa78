"""``publisher serve``: the subscription pages, the feeds and the review page under uvicorn."""

from __future__ import annotations

import socket

import click

from publisher.cli import get_site


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Beyond 127.0.0.1 the review page needs PUBLISHER_ADMIN_TOKEN.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--worker", "with_worker", is_flag=True,
              help="Run `publisher worker` in this process too (scheduled publishes, digests, retries): one service.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, with_worker: bool) -> None:
    """Serve public/ (feeds, index and article pages), the pages where readers subscribe, confirm, change
    their preferences and unsubscribe (one click, RFC 8058), and the review page at /review.

    Links in mails point at PUBLISHER_SITE_URL: put this server (behind an HTTPS proxy) at that address.
    """
    from publisher.web.guards import admin_token, is_loopback

    from publisher.settings import WEB_SETTINGS

    site = get_site(ctx)
    # A bad setting fails here, as one line, before the server starts, not as a 500 page on every request.
    for name in ("PUBLISHER_SITE_URL", "PUBLISHER_LANGUAGES", "PUBLISHER_TIMEZONE",
                 *(setting.name for setting in WEB_SETTINGS)):
        site.config.get(name)
    site.languages   # and each language has UI strings
    local_only = is_loopback(host)
    if not local_only and not admin_token(site):
        click.echo(f"Note: listening on {host}; the review page stays closed until PUBLISHER_ADMIN_TOKEN is set.",
                   err=True)
    import logging

    import uvicorn

    from publisher.web.app import server_config

    check_can_listen(host, port)
    # Our access log cuts the signed tokens out of the paths (uvicorn's is off: see server_config).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"Serving {site.root} on http://{host}:{port}/ (review page: /review)", err=True)
    # uvicorn binds the address itself: handed a socket bound here (Server.run(sockets=...)), every answer
    # took ~44 ms instead of ~1 ms, the mark of a delayed-ACK stall (measured with bench/unsubscribe.py).
    if not with_worker:
        uvicorn.Server(server_config(site, host, port)).run()
        return
    from publisher.cli.schedule import background_worker

    with background_worker(site):   # stopped, its job in hand finished, when the server stops (SIGTERM)
        uvicorn.Server(server_config(site, host, port)).run()


def check_can_listen(host: str, port: int) -> None:
    """Fail before uvicorn starts, as one line with exit code 2, when the address is taken or unknown."""
    from publisher.errors import PublisherError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise PublisherError(f"{host}:{port}: cannot listen there: {error.strerror or error}") from None
