-- Sentence-level translation memory (as in ../sqlite/0002_translation_memory.sql): "model" names the backend,
-- the language pair and the package version, so a new model version starts a fresh memory.
CREATE TABLE translation_memory (
    model        TEXT COLLATE "C" NOT NULL,
    source_lang  TEXT COLLATE "C" NOT NULL,
    target_lang  TEXT COLLATE "C" NOT NULL,
    source_text  TEXT COLLATE "C" NOT NULL,
    target_text  TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL
                 DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"'),
    used_at      TEXT COLLATE "C" NOT NULL
                 DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"'),
    hits         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, source_lang, target_lang, source_text)
);
