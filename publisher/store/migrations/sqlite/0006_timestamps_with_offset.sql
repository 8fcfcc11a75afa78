-- One timestamp format everywhere: ISO 8601 with a numeric offset (2026-12-01T10:00:00.123+00:00), as the store
-- writes from now on. Rows written before by SQLite's own defaults end in "Z".
UPDATE deliveries SET created_at = substr(created_at, 1, length(created_at) - 1) || '+00:00'
    WHERE created_at LIKE '%Z';
UPDATE deliveries SET updated_at = substr(updated_at, 1, length(updated_at) - 1) || '+00:00'
    WHERE updated_at LIKE '%Z';
UPDATE translation_memory SET created_at = substr(created_at, 1, length(created_at) - 1) || '+00:00'
    WHERE created_at LIKE '%Z';
UPDATE translation_memory SET used_at = substr(used_at, 1, length(used_at) - 1) || '+00:00'
    WHERE used_at LIKE '%Z';
UPDATE schema_migrations SET applied_at = substr(applied_at, 1, length(applied_at) - 1) || '+00:00'
    WHERE applied_at LIKE '%Z';
