-- The workbench's schema. Ids in files (query_id, product_id) are kept as ext_id; rows refer to
-- each other by integer ids. Times are UTC ISO-8601 text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                       -- JSON
);

CREATE TABLE queries (
    id     INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    text   TEXT NOT NULL
);

CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    ext_id      TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    brand       TEXT NOT NULL DEFAULT '',
    attributes  TEXT NOT NULL DEFAULT '{}'    -- JSON object
);

CREATE TABLE pairs (
    id         INTEGER PRIMARY KEY,
    query_id   INTEGER NOT NULL REFERENCES queries(id),
    item_id    INTEGER NOT NULL REFERENCES items(id),
    gold_label TEXT,                          -- the human label of the import, a scale key
    split      TEXT,                          -- train / dev / test when the import names one
    origin     TEXT NOT NULL DEFAULT 'import',-- import | augmented:<strategy>
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (query_id, item_id)
);
CREATE INDEX pairs_by_item ON pairs(item_id);

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    rows_read   INTEGER NOT NULL,
    pairs_added INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One `workbench teach` invocation: which model, which prompt, which mode.
CREATE TABLE teacher_runs (
    id          INTEGER PRIMARY KEY,
    model       TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    mode        TEXT NOT NULL,                -- cot | score
    backend     TEXT NOT NULL,                -- local | http
    params      TEXT NOT NULL DEFAULT '{}',   -- JSON: samples, temperature, max tokens …
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT
);

-- One teacher judgment of one pair. Output that did not parse is kept with its error.
CREATE TABLE judgments (
    id                INTEGER PRIMARY KEY,
    pair_id           INTEGER NOT NULL REFERENCES pairs(id),
    run_id            INTEGER REFERENCES teacher_runs(id),
    model             TEXT NOT NULL,
    prompt_hash       TEXT NOT NULL,
    mode              TEXT NOT NULL,
    label             TEXT,                   -- scale key; NULL when nothing could be read
    distribution      TEXT NOT NULL,          -- JSON array, scale order, sums to 1
    dist_source       TEXT NOT NULL,          -- logprobs | votes | parsed
    confidence        REAL,                   -- self-consistency agreement, when sampled
    rationale         TEXT,                   -- JSON domain::Rationale; NULL on parse failure
    raw_output        TEXT NOT NULL,
    parse_error       TEXT,
    truncated         INTEGER NOT NULL DEFAULT 0,   -- the output hit the token limit
    item_truncated    INTEGER NOT NULL DEFAULT 0,   -- the item text was cut to fit the context
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    elapsed_ms        INTEGER,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (pair_id, model, prompt_hash, mode)
);
CREATE INDEX judgments_by_pair ON judgments(pair_id);

-- Every human change, append-only. The current state of a pair is derived from these rows;
-- undo is a new row that points at the row it undoes.
CREATE TABLE annotations (
    id          INTEGER PRIMARY KEY,
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    judgment_id INTEGER REFERENCES judgments(id),
    annotator   TEXT NOT NULL,
    action      TEXT NOT NULL,                -- set_label | set_verdict | edit_step | accept | reject | note | …
    field       TEXT,                         -- which step or dimension
    before      TEXT,                         -- JSON
    after       TEXT,                         -- JSON
    undoes      INTEGER REFERENCES annotations(id),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX annotations_by_pair ON annotations(pair_id, id);

CREATE TABLE student_models (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,                 -- cross | bi | imported
    path       TEXT,
    config     TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE student_scores (
    model_id     INTEGER NOT NULL REFERENCES student_models(id),
    pair_id      INTEGER NOT NULL REFERENCES pairs(id),
    score        REAL NOT NULL,
    distribution TEXT,
    PRIMARY KEY (model_id, pair_id)
);

CREATE TABLE audit_findings (
    id          INTEGER PRIMARY KEY,
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    judgment_id INTEGER REFERENCES judgments(id),
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL,                -- info | warn | error
    detail      TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX audit_findings_by_pair ON audit_findings(pair_id);
