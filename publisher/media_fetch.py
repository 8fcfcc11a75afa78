"""Remote article images (``image.src`` an https URL), fetched once, safely, and cached under ``.publisher/media/``.

An article may come from anyone (an import, a colleague's draft), so its image URL is treated as hostile: the tool
must not become a way to reach the office's internal addresses. Hence:

- ``https`` only, at every hop;
- the host name is resolved here (``resolver``) and every address it resolves to must be public: no private,
  loopback, link-local, shared (CGNAT), multicast, reserved or unspecified address, IPv4-mapped IPv6 included;
- the connection goes to the checked address itself (TLS still verifies the certificate against the host name,
  sent as SNI), so a second DNS answer cannot swap in another address between the check and the connection;
- redirects are followed by hand, at most ``MAX_REDIRECTS``, each new URL checked the same way;
- no proxy from the environment (it would connect on our behalf to an address we never checked);
- the answer must be 200 with an image content type whose bytes look like that type, at most ``max_bytes``
  (the ``Content-Length`` is checked first, the body counted as it arrives), within ``timeout`` seconds in all.

Tests pass ``resolver`` and an ``httpx.MockTransport`` as ``transport``: nothing here touches the network then.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx is imported only when an image is fetched
    import httpx

MAX_BYTES = 10_000_000  # above every platform's own image limit here (Threads takes 8 MB; Bluesky shrinks)
TIMEOUT = 20.0  # seconds for the whole download, redirects included
MAX_REDIRECTS = 5
CACHE_FOLDER = "media"  # under the site's .publisher/
IMAGE_TYPES: dict[str, str] = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str, int], Sequence[str]]


class MediaFetchError(Exception):
    """The image could not be fetched, or was refused (the message says why, naming the URL)."""


@dataclass(frozen=True)
class FetchedImage:
    """A remote image as cached on disk."""

    data: bytes
    media_type: str
    filename: str
    path: Path


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), through the system's resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaFetchError(f"{host}: cannot resolve ({exc})") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        if address not in addresses:
            addresses.append(address)
    return addresses


def public_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``text`` as an address if it is public (routable on the internet), else ``MediaFetchError``."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise MediaFetchError(f"{text}: not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if not address.is_global or address.is_multicast:
        raise MediaFetchError(f"{text} is not a public address (private, loopback, link-local or reserved)")
    return address


def image_type_of(data: bytes) -> str | None:
    """The image type the bytes themselves show (their signature), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass
class MediaFetcher:
    """Fetches remote images into ``cache_dir``; a URL fetched once is read from there afterwards."""

    cache_dir: Path
    resolver: Resolver = system_resolver
    transport: httpx.BaseTransport | None = None
    max_bytes: int = MAX_BYTES
    timeout: float = TIMEOUT
    clock: Callable[[], float] = field(default=time.monotonic)

    def fetch(self, url: str) -> FetchedImage:
        """The image at ``url``, from the cache or downloaded (then cached). ``MediaFetchError`` if refused."""
        url = url.strip()
        if url.startswith("//"):  # protocol-relative: only ever fetched over https
            url = "https:" + url
        cached = self.cached(url)
        if cached is not None:
            return cached
        data, media_type = self._download(url)
        from publisher.fsutil import atomic_write_bytes

        path = self._cache_stem(url).with_suffix(IMAGE_TYPES[media_type])
        atomic_write_bytes(path, data)
        return FetchedImage(data, media_type, _filename(url, media_type), path)

    def cached(self, url: str) -> FetchedImage | None:
        """The cached copy of ``url``, or None."""
        stem = self._cache_stem(url)
        for media_type, suffix in IMAGE_TYPES.items():
            path = stem.with_suffix(suffix)
            if path.is_file():
                return FetchedImage(path.read_bytes(), media_type, _filename(url, media_type), path)
        return None

    def _cache_stem(self, url: str) -> Path:
        return self.cache_dir / hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]

    def _download(self, url: str) -> tuple[bytes, str]:
        import httpx

        deadline = self.clock() + self.timeout
        current = url
        # trust_env=False: no proxy (nor .netrc) from the environment; redirects are ours to check
        with httpx.Client(transport=self.transport, timeout=httpx.Timeout(self.timeout), follow_redirects=False,
                          trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if self.clock() > deadline:
                    raise MediaFetchError(f"image {url}: not downloaded within {self.timeout:g} s")
                target = self._checked_url(current, url)
                host, address = target.host, self._checked_address(target, url)
                default_port = target.port is None or target.port == 443
                headers = {"Host": host if default_port else f"{host}:{target.port}",
                           "Accept": ", ".join(IMAGE_TYPES)}
                try:
                    # the request goes to the address checked above; TLS verifies the certificate for ``host``
                    with client.stream("GET", target.copy_with(host=address), headers=headers,
                                       extensions={"sni_hostname": host}) as response:
                        if response.status_code in _REDIRECTS:
                            location = response.headers.get("Location")
                            if not location:
                                raise MediaFetchError(f"image {url}: a redirect without a Location")
                            current = str(target.join(location))
                            continue
                        return self._read(response, url, deadline)
                except httpx.TimeoutException:
                    raise MediaFetchError(f"image {url}: no answer within {self.timeout:g} s") from None
                except httpx.HTTPError as exc:
                    raise MediaFetchError(f"image {url}: cannot download ({type(exc).__name__})") from None
        raise MediaFetchError(f"image {url}: more than {MAX_REDIRECTS} redirects")

    def _checked_url(self, current: str, original: str) -> httpx.URL:
        import httpx

        try:
            target = httpx.URL(current)
        except httpx.InvalidURL as exc:
            raise MediaFetchError(f"image {original}: not a valid URL ({exc})") from None
        if target.scheme != "https":
            where = "" if current == original else f" (redirected to {current})"
            raise MediaFetchError(f"image {original}{where}: only https images are downloaded")
        if not target.host:
            raise MediaFetchError(f"image {original}: the URL has no host")
        return target

    def _checked_address(self, target: httpx.URL, original: str) -> str:
        """The address to connect to: every address of the host must be public (a mixed answer is refused,
        so a rebinding name cannot win by luck), the first is used."""
        host = target.host
        try:
            ipaddress.ip_address(host)
            addresses: Sequence[str] = [host]
        except ValueError:
            addresses = self.resolver(host, target.port or 443)
        if not addresses:
            raise MediaFetchError(f"image {original}: {host} has no address")
        checked = []
        for address in addresses:
            try:
                checked.append(public_address(address))
            except MediaFetchError as exc:
                via = f"{host} resolves to {address}" if address != host else f"{host}"
                raise MediaFetchError(f"image {original}: refused, {via}: {exc}") from None
        return str(checked[0])

    def _read(self, response: httpx.Response, url: str, deadline: float) -> tuple[bytes, str]:
        if response.status_code != 200:
            raise MediaFetchError(f"image {url}: the server answered {response.status_code}")
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type not in IMAGE_TYPES:
            raise MediaFetchError(f"image {url}: not an image ({media_type or 'no content type'}); "
                                  f"expected one of {', '.join(IMAGE_TYPES)}")
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > self.max_bytes:
            raise MediaFetchError(f"image {url}: {int(declared):,} bytes, over the limit of {self.max_bytes:,}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise MediaFetchError(f"image {url}: over the limit of {self.max_bytes:,} bytes")
            if self.clock() > deadline:
                raise MediaFetchError(f"image {url}: not downloaded within {self.timeout:g} s")
            chunks.append(chunk)
        data = b"".join(chunks)
        if image_type_of(data) != media_type:
            raise MediaFetchError(f"image {url}: the content is not the {media_type} it is labelled as")
        return data, media_type


def _filename(url: str, media_type: str) -> str:
    """A file name for the upload: the URL's last path segment, with the extension of its real type."""
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    stem = "".join(c for c in name.rsplit(".", 1)[0] if c.isalnum() or c in "-_")[:80] or "image"
    return stem + IMAGE_TYPES[media_type]


__all__ = ["FetchedImage", "MediaFetchError", "MediaFetcher", "image_type_of", "public_address",
           "system_resolver"]
