-- leadscore's SQLite events table (schema version 2), run after schema.sql,
-- and by the upgrade from version 1 (see `migrate_events_by_lead`).
-- Events are stored clustered by lead (a WITHOUT ROWID table keyed by lead
-- and ingest order): a lead's events sit together on neighbouring pages, so
-- reading them (to score a lead, for the automation, for an as-of score) is
-- one short range scan instead of a lookup per event all over the file.
CREATE TABLE IF NOT EXISTS events (
    lead        TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,     -- ingest order (from event_seq)
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    properties  TEXT,                 -- JSON object of strings
    received_at INTEGER NOT NULL,
    PRIMARY KEY (lead, seq)
) WITHOUT ROWID;

-- The last event's seq: the next one stored gets the next number.
CREATE TABLE IF NOT EXISTS event_seq (last INTEGER NOT NULL);
INSERT INTO event_seq (last) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM event_seq);
