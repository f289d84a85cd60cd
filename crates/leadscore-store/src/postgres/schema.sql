-- leadscore's PostgreSQL schema, version 1. Times are microseconds since the
-- Unix epoch. Ids sort byte-wise (COLLATE "C"), as in SQLite.
CREATE TABLE IF NOT EXISTS leadscore_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS leads (
    id             TEXT COLLATE "C" PRIMARY KEY,
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
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL,  -- bumped on every change of the lead or its events
    rank           DOUBLE PRECISION NOT NULL, -- the score, or -1e300 when unscored (sort key)
    band           TEXT,
    grade          TEXT,
    mql            BOOLEAN,
    score_json     TEXT,             -- the whole current score, as served
    -- Never reused, so a lead deleted and created again under the same id
    -- is told apart by the lead caches of the server instances.
    incarnation    BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS leads_by_rank ON leads (rank DESC, id);
CREATE INDEX IF NOT EXISTS leads_by_created ON leads (created_at DESC, id);
CREATE INDEX IF NOT EXISTS leads_by_owner ON leads (owner);

CREATE TABLE IF NOT EXISTS events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- ingest order
    id          TEXT NOT NULL UNIQUE,
    lead        TEXT COLLATE "C" NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    properties  TEXT,                 -- JSON object of strings
    received_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_lead ON events (lead, seq);

CREATE TABLE IF NOT EXISTS history (
    seq   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead  TEXT COLLATE "C" NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at    BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    band  TEXT NOT NULL,
    mql   BOOLEAN NOT NULL,
    model TEXT NOT NULL,
    cause TEXT NOT NULL               -- JSON: {"kind": ..., ...}
);
CREATE INDEX IF NOT EXISTS history_by_lead ON history (lead, seq);

CREATE TABLE IF NOT EXISTS models (
    name         TEXT COLLATE "C" PRIMARY KEY,
    toml         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    active       BOOLEAN NOT NULL DEFAULT FALSE,
    activated_at BIGINT,
    rescore      TEXT                 -- JSON progress of the last rescoring
);

CREATE TABLE IF NOT EXISTS tokens (
    hash       TEXT PRIMARY KEY,      -- SHA-256 of the secret; the secret is never stored
    role       TEXT NOT NULL,
    user_name  TEXT,
    created_at BIGINT NOT NULL
);

-- The rep's work on a lead (rating, status, qualification): one JSON
-- document, with the rating and status beside it for filtering. `rev` is
-- bumped on every save (compare-and-set: two reps saving at once do not
-- overwrite each other). A lead without a row is new and unrated.
CREATE TABLE IF NOT EXISTS workflow (
    lead   TEXT COLLATE "C" PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    rating TEXT,
    status TEXT NOT NULL,
    rev    BIGINT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_by_rating ON workflow (rating);

-- Follow-up tasks (call back later, contract ending).
CREATE TABLE IF NOT EXISTS tasks (
    id     TEXT COLLATE "C" PRIMARY KEY,
    lead   TEXT COLLATE "C" NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    owner  TEXT,
    state  TEXT NOT NULL,             -- open | done
    due_at BIGINT NOT NULL,
    rev    BIGINT NOT NULL,
    doc    TEXT NOT NULL              -- JSON: kind, title, who created it, notes, actions
);
CREATE INDEX IF NOT EXISTS tasks_by_due ON tasks (state, owner, due_at);
CREATE INDEX IF NOT EXISTS tasks_by_lead ON tasks (lead);

-- Who changed what in the rep's work on a lead, and why.
CREATE TABLE IF NOT EXISTS lead_log (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead   TEXT COLLATE "C" NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at     BIGINT NOT NULL,
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
    created_at BIGINT NOT NULL,
    active     BOOLEAN NOT NULL DEFAULT FALSE
);

INSERT INTO leadscore_meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
