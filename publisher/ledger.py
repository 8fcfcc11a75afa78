"""The delivery ledger's interface, now in ``publisher.store`` (this name stays until every import moves)."""

from __future__ import annotations

from publisher.store import Ledger as Ledger  # noqa: F401
