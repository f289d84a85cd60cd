-- Automation (shared by both adapters; times are microseconds since the Unix
-- epoch). Everything here is derived from the leads, their workflow and the
-- settings, except webhooks and their deliveries.

-- Per lead: which triggers hold (and since when), what was last seen of the
-- lead, when to look at it again (`next_at`: its band or MQL changes with
-- time, an SLA runs out), whether it is on the nurture list, and which rep's
-- load it counts towards. `rev` makes saves compare-and-set.
CREATE TABLE IF NOT EXISTS automation (
    lead          TEXT PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    rev           BIGINT NOT NULL,
    lead_version  BIGINT NOT NULL,
    workflow_rev  BIGINT NOT NULL,
    next_at       BIGINT,
    nurture_since BIGINT,
    counted_owner TEXT,
    doc           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS automation_due ON automation (next_at);
CREATE INDEX IF NOT EXISTS automation_nurture ON automation (nurture_since);
CREATE INDEX IF NOT EXISTS automation_owner ON automation (counted_owner);

-- Open leads per rep, changed in the same transaction as the assignment
-- (a conditional increment: two leads never take a rep's last slot), and
-- recounted from `automation` at start and from time to time.
CREATE TABLE IF NOT EXISTS rep_load (
    rep           TEXT PRIMARY KEY,
    open_leads    BIGINT NOT NULL,
    assigned      BIGINT NOT NULL,
    last_assigned BIGINT NOT NULL
);

-- Messages for reps and managers (a trigger's `notify`).
CREATE TABLE IF NOT EXISTS notifications (
    id         TEXT PRIMARY KEY,
    recipient  TEXT NOT NULL,
    lead       TEXT REFERENCES leads (id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    trigger_id TEXT,
    message    TEXT NOT NULL,
    read_at    BIGINT
);
CREATE INDEX IF NOT EXISTS notifications_by_recipient ON notifications (recipient, at);

-- Webhook subscriptions; `events` is ",lead.mql,lead.assigned," (or ",*,").
CREATE TABLE IF NOT EXISTS webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    active     BIGINT NOT NULL
);

-- The outbox: one row per happening and subscription, written in the same
-- transaction as the happening; sent, retried with backoff, kept as the log.
-- A lead's erasure erases its deliveries (they hold its data).
CREATE TABLE IF NOT EXISTS deliveries (
    id           TEXT PRIMARY KEY,
    webhook      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    lead         TEXT REFERENCES leads (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT,
    last_status  BIGINT,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON deliveries (webhook, created_at);

CREATE TABLE IF NOT EXISTS delivery_attempts (
    delivery TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt  BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    status   BIGINT,
    error    TEXT,
    millis   BIGINT NOT NULL,
    PRIMARY KEY (delivery, attempt)
);

-- Watermarks (e.g. up to when tasks have been announced as due).
CREATE TABLE IF NOT EXISTS automation_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
