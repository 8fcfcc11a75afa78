"""Benchmark: how Bluesky finds a post whose outcome was unknown, by its record key against scanning the feed.

Usage: python bench/bluesky.py [--posts 50] [--lookups 300]

Both run through the real atproto client (``BlueskyClient``) with its HTTP answered in memory by an
``httpx.MockTransport`` playing a PDS that holds ``--posts`` recent posts of the account, so what is measured
is the client, the JSON and the models, not a network.

(a) Baseline: ``recent_posts()``, one ``app.bsky.feed.getAuthorFeed`` page of the account's posts, scanned for
    the article's URL: what ``--retry-unconfirmed`` must do on a platform that only lists posts.
(b) publisher: ``get_post(record_key)``, one ``com.atproto.repo.getRecord`` of the key chosen before posting.

Prints the time per lookup and the bytes each answer carries, and the ratios (a)/(b). The record-key lookup
is also the one that still works while the app view lags behind the PDS (the feed does not list the post
yet), which no speed-up figure shows.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

# bench/ holds email.py: keep it off the import path, so `import email` finds the standard library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from publisher.channels.bluesky import BlueskyClient, record_key  # noqa: E402
from publisher.channels.social import SocialAccount  # noqa: E402

DID = "did:plc:benchmark"


def _jwt() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(time.time()) + 86400, 'sub': DID})}.c2ln"


def make_pds(posts: int) -> tuple[httpx.MockTransport, list[str], dict[str, int]]:
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    records = {}
    for index in range(posts):
        url = f"https://unpog.example/ko/news-{index}/"
        text = f"유엔거버넌스센터 소식 {index}: 공공행정 역량 강화 워크숍을 열었습니다. {url} #공공행정 #UNPOG"
        prefix = len(text[:text.index(url)].encode())
        records[record_key(start + timedelta(minutes=index), f"{index:032d}")] = {
            "$type": "app.bsky.feed.post", "text": text, "createdAt": (start + timedelta(minutes=index)).isoformat(),
            "langs": ["ko"], "facets": [{"index": {"byteStart": prefix, "byteEnd": prefix + len(url)},
                                         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}]}],
            "embed": {"$type": "app.bsky.embed.external", "external": {
                "uri": url, "title": f"소식 {index}", "description": "요약 " * 40}},
        }
    answered = {"getAuthorFeed": 0, "getRecord": 0}
    cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"

    def uri(rkey: str) -> str:
        return f"at://{DID}/app.bsky.feed.post/{rkey}"

    def handle(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        if method == "com.atproto.server.createSession":
            return httpx.Response(200, json={"accessJwt": _jwt(), "refreshJwt": _jwt(), "did": DID,
                                             "handle": "unpog.bsky.social"})
        if method == "com.atproto.repo.getRecord":
            rkey = request.url.params["rkey"]
            response = httpx.Response(200, json={"uri": uri(rkey), "cid": cid, "value": records[rkey]})
            answered["getRecord"] += len(response.content)
            return response
        if method == "app.bsky.feed.getAuthorFeed":
            feed = [{"post": {"uri": uri(k), "cid": cid, "author": {"did": DID, "handle": "unpog.bsky.social"},
                              "record": v, "indexedAt": v["createdAt"]}} for k, v in reversed(records.items())]
            response = httpx.Response(200, json={"feed": feed})
            answered["getAuthorFeed"] += len(response.content)
            return response
        return httpx.Response(501, json={"error": "MethodNotImplemented"})

    return httpx.MockTransport(handle), list(records), answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=50, help="posts the account has (one feed page: 50 at most)")
    parser.add_argument("--lookups", type=int, default=300)
    options = parser.parse_args()

    transport, keys, answered = make_pds(options.posts)
    account = SocialAccount("bluesky", "default", {"HANDLE": "unpog.bsky.social", "APP_PASSWORD": "x"})
    client = BlueskyClient(account, service_url="https://pds.example", timeout=10, transport=transport,
                           clock=time.time)
    oldest = keys[0]  # the worst case for a scan: the post is the last one in the page
    wanted_url = "https://unpog.example/ko/news-0/"
    client.did()

    started = time.perf_counter()
    for _ in range(options.lookups):
        found = [post for post in client.recent_posts() if wanted_url in post.links]
        assert found, "the scan must find the post"
    scan = (time.perf_counter() - started) / options.lookups

    started = time.perf_counter()
    for _ in range(options.lookups):
        assert client.get_post(oldest) is not None
    exact = (time.perf_counter() - started) / options.lookups

    scan_bytes = answered["getAuthorFeed"] / options.lookups
    exact_bytes = answered["getRecord"] / options.lookups
    print(f"posts in the feed page: {options.posts}, lookups: {options.lookups}")
    print(f"(a) baseline, scan getAuthorFeed for the URL: {scan * 1000:8.2f} ms/lookup, {scan_bytes:9.0f} bytes")
    print(f"(b) getRecord by the record key:              {exact * 1000:8.2f} ms/lookup, {exact_bytes:9.0f} bytes")
    print(f"ratio (a)/(b): {scan / exact:.1f}x faster, {scan_bytes / exact_bytes:.1f}x fewer bytes")


if __name__ == "__main__":
    main()
