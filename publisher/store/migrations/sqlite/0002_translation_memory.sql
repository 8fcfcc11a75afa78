-- Sentence-level translation memory: a sentence already translated by the same model is never sent to it again.
-- "model" names the backend, the language pair and the package version (e.g. "argos:en-ko@1.9"), so
-- installing a new model version starts a fresh memory for it.
CREATE TABLE IF NOT EXISTS translation_memory (
    model        TEXT    NOT NULL,
    source_lang  TEXT    NOT NULL,
    target_lang  TEXT    NOT NULL,
    source_text  TEXT    NOT NULL,
    target_text  TEXT    NOT NULL,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    used_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    hits         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, source_lang, target_lang, source_text)
) WITHOUT ROWID;
