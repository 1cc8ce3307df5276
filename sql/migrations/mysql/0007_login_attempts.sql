-- Login attempts, shared by every controller on the database: one row per
-- user name and client address, and one per address alone (user_name '')
-- for the rate of attempts from it whatever the name.
CREATE TABLE IF NOT EXISTS login_attempts (
    user_name    VARCHAR(255) NOT NULL,
    address      VARCHAR(64) NOT NULL,
    attempts     INT NOT NULL DEFAULT 0,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_name, address),
    KEY login_attempts_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The client address of a key-login challenge, to bound challenges per address.
ALTER TABLE sessions ADD COLUMN address VARCHAR(64) NOT NULL DEFAULT '';
