"""``store/common.py``: what both stores share apart from their SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import PublisherError
from publisher.store import postgres, sqlite
from publisher.store.common import first_detail_per_version, first_of_each_key, job_states, migration_files
from publisher.store.interfaces import JOB_STATES


def test_migration_files_in_order_and_only_numbered_sql(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "README.md", "01_short.sql", "0003_Upper.sql"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert migration_files(tmp_path) == [(1, "0001_a", tmp_path / "0001_a.sql"), (2, "0002_b", tmp_path / "0002_b.sql")]
    (tmp_path / "0002_again.sql").write_text("", encoding="utf-8")
    with pytest.raises(PublisherError, match=r": two migrations share a number$"):
        migration_files(tmp_path)


def test_each_dialect_lists_its_own_folder() -> None:
    assert [path.parent.name for _, _, path in sqlite.migrations()] == ["sqlite"] * len(sqlite.migrations())
    assert {path.parent.name for _, _, path in postgres.migrations()} == {"postgresql"}
    assert sqlite.migrations()[0][:2] == (1, "0001_ledger")


def test_first_detail_per_version_pages_by_id_and_keeps_the_first() -> None:
    rows = [{"id": 1, "article": "a", "lang": "en", "detail": '{"n": 1}'},
            {"id": 2, "article": "a", "lang": "en", "detail": '{"n": 2}'},
            {"id": 5, "article": "a", "lang": "ko", "detail": None}]
    asked: list[int] = []

    def page(last_id: int) -> list[dict[str, object]]:
        asked.append(last_id)
        return [row for row in rows if int(str(row["id"])) > last_id][:2]

    assert first_detail_per_version(page) == {("a", "en"): {"n": 1}, ("a", "ko"): {}}
    assert asked == [0, 2, 5]


def test_first_of_each_key_and_job_states() -> None:
    rows = [("A@x", "a@x", None, "en"), ("b@x", "b@x", None, "en"), ("a@x", "a@x", "A", "ko")]
    assert first_of_each_key(rows) == ({"a@x": 0, "b@x": 1}, [2])
    assert job_states(None) == list(JOB_STATES)
    assert job_states(["pending"]) == ["pending"]
    with pytest.raises(ValueError, match=r"^unknown job state 'later'$"):
        job_states(["pending", "later"])
