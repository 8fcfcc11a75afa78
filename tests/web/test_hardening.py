"""Issue 11, the web app: dot-files, trusted proxies, security headers, links on error pages, tokens in the log,
and confirmation links replayed after an unsubscribe."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import itsdangerous.timed
import pytest

from publisher.site import Site
from publisher.tokens import link
from tests.conftest import set_settings
from tests.web.conftest import (
    LOCAL_CLIENT,
    REMOTE_CLIENT,
    add_subscriber,
    form_token,
    free_port,
    heading,
    link_in,
    mails,
    make_client,
    subscriber,
)

BASE = "http://localhost:8000"


@pytest.fixture
def built_site(site: Site) -> Site:
    from publisher.pipeline import build_feeds

    build_feeds(site, include_unpublished=True)
    return site


# --- 11: nothing whose name starts with a dot is served ---------------------------------------------------


@pytest.mark.parametrize("path", [
    "/.env", "/%2eenv", "/%2Eenv", "/.git/config", "/%2egit/config", "/en/.rss.xml.ab12cd_3.tmp",
    "/en/%2erss.xml.ab12cd_3.tmp", "/en/.hidden/page.html", "/en/%2ehidden/page.html", "/en/.hidden/",
])
def test_dot_files_and_dot_folders_are_404_encoded_or_not(built_site: Site, path: str) -> None:
    public = built_site.public_dir
    for planted in (".env", ".git/config", "en/.rss.xml.ab12cd_3.tmp", "en/.hidden/page.html",
                    "en/.hidden/index.html"):
        (public / planted).parent.mkdir(parents=True, exist_ok=True)
        (public / planted).write_text("SECRET=do-not-serve\n")
    with make_client(built_site, client=REMOTE_CLIENT) as client:
        response = client.get(BASE + path)
        assert client.get("/en/rss.xml").status_code == 200      # the rest of public/ is still served
    assert response.status_code == 404
    assert "do-not-serve" not in response.text
