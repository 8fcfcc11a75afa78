"""The social channels through the command line: publish, an unknown outcome, status, retry, preview."""

from __future__ import annotations

import re

import requests
import responses

from tests.social.conftest import X_DEFAULT

TWEETS = "https://api.twitter.com/2/tweets"
UPLOAD = "https://api.x.com/2/media/upload"  # X API v2: the v1.1 media endpoints are retired
METADATA = "https://api.x.com/2/media/metadata"
ME = "https://api.twitter.com/2/users/me"
USER_TWEETS = "https://api.twitter.com/2/users/42/tweets"


def test_publish_to_x_then_an_unknown_outcome_then_retry(cli, site_dir, http) -> None:
    (site_dir / ".env").write_text("".join(f"{k}={v}\n" for k, v in X_DEFAULT.items()), encoding="utf-8")
    english = str(site_dir / "content" / "2024-unpsf-incheon.en.md")
    korean = str(site_dir / "content" / "2024-unpsf-incheon.ko.md")
    http.add(responses.POST, UPLOAD, json={"data": {"id": "5", "media_key": "3_5"}})
    http.add(responses.POST, METADATA, json={"data": {"id": "5", "associated_metadata": True}})
    http.add(responses.POST, TWEETS, json={"data": {"id": "100", "text": "t"}}, status=201)

    first = cli("publish", english, "--channel", "x", "--lang", "en", env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "x.com/i/web/status/100" in first.output and "sent" in first.output

    http.replace(responses.POST, TWEETS, body=requests.exceptions.ReadTimeout("read timed out"))
    second = cli("publish", korean, "--channel", "x", "--lang", "ko", env={"COLUMNS": "200"})
    assert second.exit_code == 1, second.output  # an unknown outcome is not a success
    assert "unconfirmed" in second.output

    status = cli("status", env={"COLUMNS": "200"})
    assert "unconfirmed" in status.output and "--retry-unconfirmed" in status.output

    again = cli("publish", korean, "--channel", "x", "--lang", "ko", env={"COLUMNS": "200"})
    assert again.exit_code == 1 and len([c for c in http.calls if c.request.url == TWEETS]) == 2

    http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    http.add(responses.GET, USER_TWEETS, json={"data": [{"id": "101", "text": "…", "entities": {"urls": [
        {"expanded_url": "http://localhost:8000/ko/2024-unpsf-incheon/"}]}}]})
    retried = cli("publish", korean, "--channel", "x", "--lang", "ko", "--retry-unconfirmed",
                  env={"COLUMNS": "200"})
    assert retried.exit_code == 0, retried.output
    assert "x.com/i/web/status/101" in retried.output
    assert len([c for c in http.calls if c.request.url == TWEETS]) == 2  # found, so not posted again


def test_preview_shows_weighted_length_against_the_limit(cli, site_dir, tmp_path) -> None:
    out = tmp_path / "preview"
    result = cli("preview", str(site_dir / "content" / "2024-unpsf-incheon.ko.md"), "--out", str(out),
                 "--channel", "x", "--channel", "mastodon", env={"COLUMNS": "200", "X_LONG_TEXT": "thread"})
    assert result.exit_code == 0, result.output
    lengths = [(int(a), int(b)) for a, b in re.findall(r"\b(\d+)/(\d+)\b", result.output) if b in ("280", "500")]
    assert {limit for _, limit in lengths} == {280, 500}
    assert all(length <= limit for length, limit in lengths)
    posts = sorted((out / "2024-unpsf-incheon" / "ko" / "x").glob("post-*.txt"))
    assert posts and "#유엔공공행정포럼" in posts[0].read_text(encoding="utf-8")
