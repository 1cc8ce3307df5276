-- Server-side sessions: the cookie carries a random token, the table its
-- SHA-256, so a copy of the database holds no usable cookie.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash        CHAR(64) NOT NULL PRIMARY KEY,
    user_id           INTEGER NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    challenge         VARCHAR(128) NOT NULL DEFAULT '',
    challenge_user_id INTEGER NOT NULL DEFAULT 0,
    challenge_expires BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen);

CREATE TABLE IF NOT EXISTS user_keys (
    key_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    name        VARCHAR(255) NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint CHAR(64) NOT NULL,
    created     BIGINT NOT NULL,
    UNIQUE (user_id, fingerprint)
);
