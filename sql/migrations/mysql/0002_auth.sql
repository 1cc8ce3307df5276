-- Server-side sessions: the cookie carries a random token, the table its
-- SHA-256, so a copy of the database holds no usable cookie.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash        CHAR(64) NOT NULL PRIMARY KEY,
    user_id           BIGINT NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    challenge         VARCHAR(128) NOT NULL DEFAULT '',
    challenge_user_id BIGINT NOT NULL DEFAULT 0,
    challenge_expires BIGINT NOT NULL DEFAULT 0,
    KEY sessions_user (user_id),
    KEY sessions_last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS user_keys (
    key_id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    name        VARCHAR(255) NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint CHAR(64) NOT NULL,
    created     BIGINT NOT NULL,
    UNIQUE KEY user_keys_fingerprint (user_id, fingerprint),
    FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
