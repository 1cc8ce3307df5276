-- Installation-wide settings, such as the controller_id created on first start.
CREATE TABLE IF NOT EXISTS controller_settings (
    name  VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS users (
    user_id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_name         VARCHAR(255) NOT NULL UNIQUE,
    first_name        VARCHAR(255) NOT NULL DEFAULT '',
    last_name         VARCHAR(255) NOT NULL DEFAULT '',
    email_address     VARCHAR(255) NOT NULL DEFAULT '',
    password_hash     VARCHAR(255) NOT NULL DEFAULT '',
    origin            VARCHAR(32)  NOT NULL DEFAULT 'CmonDb',
    timezone          VARCHAR(64)  NOT NULL DEFAULT 'UTC',
    disabled          TINYINT NOT NULL DEFAULT 0,
    suspended         TINYINT NOT NULL DEFAULT 0,
    created           BIGINT NOT NULL,
    last_login        BIGINT NOT NULL DEFAULT 0,
    last_failed_login BIGINT NOT NULL DEFAULT 0,
    n_failed_logins   INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS user_groups (
    group_id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    group_name VARCHAR(255) NOT NULL UNIQUE,
    created    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS group_members (
    user_id  BIGINT NOT NULL,
    group_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, group_id),
    FOREIGN KEY (user_id) REFERENCES users(user_id) ON DELETE CASCADE,
    FOREIGN KEY (group_id) REFERENCES user_groups(group_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
