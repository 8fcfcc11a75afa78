"""Remote images: https only, public addresses only (after DNS and every redirect), bounded, cached; never the network."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from publisher.media_fetch import MediaFetcher, MediaFetchError

PUBLIC_IP = "93.184.215.14"
OTHER_PUBLIC_IP = "151.101.1.69"


def png_bytes(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (20, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()


class Web:
    """A few hosts behind ``httpx.MockTransport``, found by the address connected to (as a real socket is)."""

    def __init__(self) -> None:
        self.dns: dict[str, list[str]] = {"cdn.example.org": [PUBLIC_IP], "img.example.net": [OTHER_PUBLIC_IP]}
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        self.resolved: list[str] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        if host not in self.dns:
            raise MediaFetchError(f"{host}: cannot resolve")
        return self.dns[host]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.url.host, request.url.path))
        if route is None:
            return httpx.Response(404)
        return route(request)

    def fetcher(self, tmp_path: Path, **options: Any) -> MediaFetcher:
        return MediaFetcher(tmp_path / ".publisher" / "media", resolver=self.resolve,
                            transport=httpx.MockTransport(self.handle), **options)


def image(data: bytes = PNG, media_type: str = "image/png", **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, content=data, headers={"Content-Type": media_type, **headers})


def redirect(location: str, status: int = 302) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers={"Location": location})


@pytest.fixture
def web() -> Web:
    return Web()


def test_an_image_is_fetched_from_the_checked_address_once_then_read_from_the_cache(web: Web, tmp_path: Path) -> None:
    web.routes[(PUBLIC_IP, "/photos/forum.png")] = image()
    fetcher = web.fetcher(tmp_path)

    fetched = fetcher.fetch("https://cdn.example.org/photos/forum.png")

    assert (fetched.data, fetched.media_type, fetched.filename) == (PNG, "image/png", "forum.png")
    [request] = web.requests
    assert request.url.host == PUBLIC_IP  # connected to the address that was checked, not re-resolved
    assert request.headers["Host"] == "cdn.example.org"
    assert request.extensions["sni_hostname"] == "cdn.example.org"  # TLS checks the certificate for the name
    assert fetched.path.parent == tmp_path / ".publisher" / "media" and fetched.path.read_bytes() == PNG

    again = web.fetcher(tmp_path).fetch("https://cdn.example.org/photos/forum.png")
    assert again.data == PNG and len(web.requests) == 1 and web.resolved == ["cdn.example.org"]


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/a.png", "https://10.1.2.3/a.png", "https://192.168.0.10/a.png", "https://172.16.5.4/a.png",
    "https://169.254.169.254/latest/meta-data", "https://[::1]/a.png", "https://[fe80::1]/a.png",
    "https://[fd00::5]/a.png", "https://[::ffff:127.0.0.1]/a.png", "https://0.0.0.0/a.png",
    "https://100.64.0.1/a.png",
])
def test_private_loopback_and_link_local_addresses_are_refused_without_a_request(web: Web, tmp_path: Path,
                                                                                 url: str) -> None:
    with pytest.raises(MediaFetchError, match="not a public address"):
        web.fetcher(tmp_path).fetch(url)
    assert not web.requests


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["10.0.0.7"], ["169.254.169.254"], ["::1"],
                                    [PUBLIC_IP, "192.168.1.1"]], ids=["loopback", "private", "link-local",
                                                                      "ipv6-loopback", "mixed"])
def test_a_name_that_resolves_to_an_internal_address_is_refused(web: Web, tmp_path: Path, answer: list[str]) -> None:
    web.dns["internal.example.org"] = answer
    web.routes[(PUBLIC_IP, "/a.png")] = image()
    with pytest.raises(MediaFetchError, match="internal.example.org resolves to"):
        web.fetcher(tmp_path).fetch("https://internal.example.org/a.png")
    assert not web.requests


@pytest.mark.parametrize("location", ["https://169.254.169.254/latest/meta-data", "https://[::1]/a.png",
                                      "https://internal.example.org/a.png"])
def test_a_redirect_to_an_internal_address_is_refused(web: Web, tmp_path: Path, location: str) -> None:
    web.dns["internal.example.org"] = ["10.0.0.7"]
    web.routes[(PUBLIC_IP, "/a.png")] = redirect(location)
    with pytest.raises(MediaFetchError, match="refused"):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")
    assert len(web.requests) == 1  # the redirect itself, never its target


def test_a_redirect_to_another_public_host_is_followed_and_checked_again(web: Web, tmp_path: Path) -> None:
    web.routes[(PUBLIC_IP, "/a.png")] = redirect("https://img.example.net/real.png", 301)
    web.routes[(OTHER_PUBLIC_IP, "/real.png")] = image()

    fetched = web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")

    assert fetched.data == PNG and web.resolved == ["cdn.example.org", "img.example.net"]
    assert web.requests[1].headers["Host"] == "img.example.net"


def test_a_redirect_to_plain_http_is_refused(web: Web, tmp_path: Path) -> None:
    web.routes[(PUBLIC_IP, "/a.png")] = redirect("http://cdn.example.org/a.png")
    with pytest.raises(MediaFetchError, match="only https"):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")


def test_endless_redirects_stop(web: Web, tmp_path: Path) -> None:
    web.routes[(PUBLIC_IP, "/a.png")] = redirect("/a.png")
    with pytest.raises(MediaFetchError, match="redirects"):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")
    assert len(web.requests) == 6


@pytest.mark.parametrize("url", ["http://cdn.example.org/a.png", "ftp://cdn.example.org/a.png",
                                 "file:///etc/passwd"])
def test_only_https_is_fetched(web: Web, tmp_path: Path, url: str) -> None:
    with pytest.raises(MediaFetchError, match="only https"):
        web.fetcher(tmp_path).fetch(url)
    assert not web.requests and not web.resolved


def test_a_declared_size_over_the_limit_is_refused_before_the_body(web: Web, tmp_path: Path) -> None:
    web.routes[(PUBLIC_IP, "/big.png")] = image(PNG, **{"Content-Length": "50000000"})
    with pytest.raises(MediaFetchError, match="over the limit"):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/big.png")


def test_a_body_over_the_limit_is_refused_as_it_arrives(web: Web, tmp_path: Path) -> None:
    big = png_bytes(400)

    def streamed(request: httpx.Request) -> httpx.Response:  # no Content-Length: counted while reading
        return httpx.Response(200, content=iter([big[:1000], big[1000:]]), headers={"Content-Type": "image/png"})

    web.routes[(PUBLIC_IP, "/big.png")] = streamed
    with pytest.raises(MediaFetchError, match="over the limit of 1,000 bytes"):
        web.fetcher(tmp_path, max_bytes=1000).fetch("https://cdn.example.org/big.png")
    assert not list((tmp_path / ".publisher" / "media").glob("*"))  # nothing cached


@pytest.mark.parametrize("media_type,data,message", [
    ("text/html", b"<html>not found</html>", "not an image"),
    ("image/svg+xml", b"<svg/>", "not an image"),
    ("image/png", b"<html>an error page labelled png</html>", "is not the image/png"),
], ids=["html", "svg", "mislabelled"])
def test_the_content_type_and_the_bytes_must_be_an_image(web: Web, tmp_path: Path, media_type: str, data: bytes,
                                                         message: str) -> None:
    web.routes[(PUBLIC_IP, "/a.png")] = image(data, media_type)
    with pytest.raises(MediaFetchError, match=message):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")


def test_a_timeout_is_an_error_naming_the_url(web: Web, tmp_path: Path) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    web.routes[(PUBLIC_IP, "/a.png")] = slow
    with pytest.raises(MediaFetchError, match=r"https://cdn.example.org/a.png: no answer within 20 s"):
        web.fetcher(tmp_path).fetch("https://cdn.example.org/a.png")


def test_a_download_slower_than_the_whole_timeout_is_abandoned(web: Web, tmp_path: Path) -> None:
    now = [0.0]

    def trickle(request: httpx.Request) -> httpx.Response:
        def chunks() -> Any:
            for start in range(0, len(PNG), 10):
                now[0] += 5.0  # each chunk takes five seconds
                yield PNG[start:start + 10]
        return httpx.Response(200, content=chunks(), headers={"Content-Type": "image/png"})

    web.routes[(PUBLIC_IP, "/a.png")] = trickle
    with pytest.raises(MediaFetchError, match="not downloaded within 20 s"):
        web.fetcher(tmp_path, clock=lambda: now[0]).fetch("https://cdn.example.org/a.png")
