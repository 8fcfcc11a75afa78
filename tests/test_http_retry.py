"""The one Retry-After parser: both forms of RFC 9110's header, and Unix-time reset headers."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from requests.structures import CaseInsensitiveDict

from publisher.http_retry import rate_limit_wait, reset_in, retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0), ("-3", 0.0),
    (formatdate(NOW + 90, usegmt=True), 90.0),          # the HTTP-date form, "Tue, 14 Nov 2023 22:14:50 GMT"
    (formatdate(NOW - 90, usegmt=True), 0.0),           # a date already past: no wait
    ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    (None, None), ("", None), ("soon", None), ("Mon, 99 Foo 2023", None),
])
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, NOW) == seconds


def test_an_http_date_is_measured_from_the_callers_clock() -> None:
    value = formatdate(NOW + 30, usegmt=True)
    assert retry_after(value, NOW) == 30.0 and retry_after(value, NOW + 10) == 20.0


def test_reset_headers_are_unix_times() -> None:
    assert reset_in(str(int(NOW) + 30), NOW) == 30.0
    assert reset_in(str(int(NOW) - 30), NOW) == 0.0
    assert reset_in("never", NOW) is None and reset_in(None, NOW) is None


def test_a_429s_headers_prefer_retry_after_then_the_reset() -> None:
    both = CaseInsensitiveDict({"retry-after": "5", "X-Rate-Limit-Reset": str(int(NOW) + 60)})
    assert rate_limit_wait(both, NOW) == 5.0
    assert rate_limit_wait(CaseInsensitiveDict({"x-rate-limit-reset": str(int(NOW) + 60)}), NOW) == 60.0
    assert rate_limit_wait(CaseInsensitiveDict(), NOW) is None
