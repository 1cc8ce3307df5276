-- Installation-wide settings, such as the controller_id created on first start.
CREATE TABLE IF NOT EXISTS controller_settings (
    name  VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    user_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name         VARCHAR(255) NOT NULL UNIQUE,
    first_name        VARCHAR(255) NOT NULL DEFAULT '',
    last_name         VARCHAR(255) NOT NULL DEFAULT '',
    email_address     VARCHAR(255) NOT NULL DEFAULT '',
    password_hash     VARCHAR(255) NOT NULL DEFAULT '',
    origin            VARCHAR(32)  NOT NULL DEFAULT 'CmonDb',
    timezone          VARCHAR(64)  NOT NULL DEFAULT 'UTC',
    disabled          INTEGER NOT NULL DEFAULT 0,
    suspended         INTEGER NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL,
    last_login        BIGINT NOT NULL DEFAULT 0,
    last_failed_login BIGINT NOT NULL DEFAULT 0,
    n_failed_logins   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS user_groups (
    group_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name VARCHAR(255) NOT NULL UNIQUE,
    created    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS group_members (
    user_id  INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES user_groups(group_id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
