-- leadscore's SQLite schema, version 2 (version 1 kept events in ingest order). Times are microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS leads (
    id             TEXT PRIMARY KEY,
    first_name     TEXT,
    last_name      TEXT,
    email          TEXT,
    phone          TEXT,
    company        TEXT,
    job_title      TEXT,
    industry       TEXT,
    employees      TEXT,
    annual_revenue TEXT,
    country        TEXT,
    region         TEXT,
    city           TEXT,
    source         TEXT,
    is_customer    TEXT,
    attributes     TEXT,             -- JSON object of custom attributes
    email_key      TEXT UNIQUE,      -- lower(trim(email)): one lead per e-mail
    owner          TEXT,
    search         TEXT NOT NULL,    -- lower-cased name, company and e-mail
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL, -- bumped on every change of the lead or its events
    rank           REAL NOT NULL,    -- the score, or -1e300 when unscored (sort key)
    band           TEXT,
    grade          TEXT,
    mql            INTEGER,
    score_json     TEXT              -- the current score, compact (rescore::compact_score_json)
);
-- leads_by_rank, the sort by score, is `RANK_INDEX` in mod.rs: a rescoring
-- of many leads drops it and builds it again at its end.
CREATE INDEX IF NOT EXISTS leads_by_created ON leads (created_at DESC, id);
CREATE INDEX IF NOT EXISTS leads_by_owner ON leads (owner);

-- The events table: events.sql (also used by the upgrade from version 1).

CREATE TABLE IF NOT EXISTS history (
    seq   INTEGER PRIMARY KEY,
    lead  TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at    INTEGER NOT NULL,
    score REAL NOT NULL,
    band  TEXT NOT NULL,
    mql   INTEGER NOT NULL,
    model TEXT NOT NULL,
    cause TEXT NOT NULL               -- JSON: {"kind": ..., ...}
);
CREATE INDEX IF NOT EXISTS history_by_lead ON history (lead, seq);

CREATE TABLE IF NOT EXISTS models (
    name         TEXT PRIMARY KEY,
    toml         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 0,
    activated_at INTEGER,
    rescore      TEXT                 -- JSON progress of the last rescoring
);
-- The active models' names, read by every write and many reads: without
-- this the whole table (every model's text) is scanned each time.
CREATE INDEX IF NOT EXISTS models_active ON models (active, activated_at, name) WHERE active = 1;

CREATE TABLE IF NOT EXISTS tokens (
    hash       TEXT PRIMARY KEY,      -- SHA-256 of the secret; the secret is never stored
    role       TEXT NOT NULL,
    user_name  TEXT,
    created_at INTEGER NOT NULL
);

-- The rep's work on a lead (rating, status, qualification): one JSON
-- document, with the rating and status beside it for filtering. `rev` is
-- bumped on every save (compare-and-set: two reps saving at once do not
-- overwrite each other). A lead without a row is new and unrated.
CREATE TABLE IF NOT EXISTS workflow (
    lead   TEXT PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    rating TEXT,
    status TEXT NOT NULL,
    rev    INTEGER NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_by_rating ON workflow (rating);

-- Follow-up tasks (call back later, contract ending).
CREATE TABLE IF NOT EXISTS tasks (
    id     TEXT PRIMARY KEY,
    lead   TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    owner  TEXT,
    state  TEXT NOT NULL,             -- open | done
    due_at INTEGER NOT NULL,
    rev    INTEGER NOT NULL,
    doc    TEXT NOT NULL              -- JSON: kind, title, who created it, notes, actions
);
CREATE INDEX IF NOT EXISTS tasks_by_due ON tasks (state, owner, due_at);
CREATE INDEX IF NOT EXISTS tasks_by_lead ON tasks (lead);

-- Who changed what in the rep's work on a lead, and why.
CREATE TABLE IF NOT EXISTS lead_log (
    seq    INTEGER PRIMARY KEY,
    lead   TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL              -- JSON
);
CREATE INDEX IF NOT EXISTS lead_log_by_lead ON lead_log (lead, seq);

-- Predictive models (`leadscore retrain`, POST /predictive/train): the trained
-- trees as JSON with their cross-validated figures. At most one is active.
CREATE TABLE IF NOT EXISTS predictive_models (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    metrics    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0
);

PRAGMA user_version = 3;
