"""The platform API versions the channels pin by default, in one place, and the warning when one grows old."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class PinnedVersion:
    """A platform API version a channel sends unless its setting says otherwise."""

    platform: str
    setting: str
    version: str
    released: date  # when the platform released this version
    checked: date  # when someone last read the platform's changelog and kept this default
    lifetime: str  # how long the platform keeps a version, for the warning


# LinkedIn Marketing APIs (the LinkedIn-Version header). LinkedIn releases a version monthly and retires each
# about a year after its release. Last checked 2026-12-01 against LinkedIn's Posts and Images API references
# (learn.microsoft.com/linkedin/marketing, versioned "li-lms-YYYY-MM").
LINKEDIN_VERSION = PinnedVersion(
    platform="LinkedIn", setting="LINKEDIN_API_VERSION", version="202609",
    released=date(2026, 9, 1), checked=date(2026, 12, 1), lifetime="about a year",
)

# Meta's Graph API (the /vNN.N/ path prefix). Meta releases a few versions a year and keeps each about two
# years. v24.0 was released on 2025-10-08. Last checked 2026-12-01 against the Page photos and feed
# references (developers.facebook.com/docs/graph-api/reference/page/...), whose examples already show v25.0
# and v26.0: the next default to move to once someone has read Meta's changelog for them.
GRAPH_VERSION = PinnedVersion(
    platform="Meta's Graph API", setting="FACEBOOK_GRAPH_VERSION", version="v24.0",
    released=date(2025, 10, 8), checked=date(2026, 12, 1), lifetime="about two years",
)

PINNED: tuple[PinnedVersion, ...] = (LINKEDIN_VERSION, GRAPH_VERSION)
OLD_AFTER_DAYS = 365


def linkedin_release(version: str) -> date | None:
    """A LinkedIn-Version's release month as its first day: ``"202609"`` -> 2026-09-01."""
    match = re.fullmatch(r"(20\d\d)(0[1-9]|1[0-2])", version.strip())
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


def graph_release(version: str) -> date | None:
    """When a Graph API version was released, where it is known: the pinned default's date, else, for an
    older version than the default, that date too (it is at least as old); a newer one's is unknown."""
    if version == GRAPH_VERSION.version:
        return GRAPH_VERSION.released
    number, pinned = _graph_number(version), _graph_number(GRAPH_VERSION.version)
    if number is not None and pinned is not None and number < pinned:
        return GRAPH_VERSION.released
    return None


def _graph_number(version: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"v(\d+)\.(\d+)", version.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def today(clock: Callable[[], float]) -> date:
    """The UTC date of ``clock()`` (Unix time): a channel's clock, which the tests set."""
    return datetime.fromtimestamp(clock(), UTC).date()


def age_warning(pinned: PinnedVersion, version: str, released: date | None, today: date) -> str | None:
    """A warning when ``version`` (the one in use for ``pinned``'s setting) is over a year old on ``today``."""
    if released is None or (today - released).days <= OLD_AFTER_DAYS:
        return None
    default = " (the default)" if version == pinned.version else ""
    return (f"{pinned.setting}: {pinned.platform} version {version}{default} is from {released.isoformat()}, "
            f"over a year old; {pinned.platform} keeps a version {pinned.lifetime}: read its changelog and "
            f"set {pinned.setting} to a newer version")


__all__ = ["GRAPH_VERSION", "LINKEDIN_VERSION", "OLD_AFTER_DAYS", "PINNED", "PinnedVersion", "age_warning",
           "graph_release", "linkedin_release", "today"]
