-- People who log in to the web pages (shared by both adapters). Passwords
-- are kept only as slow hashes (Argon2id, PHC strings); sessions only as
-- SHA-256 hashes of their cookie value.
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    locale        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    active        BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_name);
