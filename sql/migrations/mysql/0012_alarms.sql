-- Alarms raised from cmon's own observations, maintenance periods and the
-- controller's event log.
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id       BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cluster_id     BIGINT NOT NULL,
    host_id        BIGINT NOT NULL DEFAULT 0,
    hostname       VARCHAR(255) NOT NULL DEFAULT '',
    subject        VARCHAR(255) NOT NULL DEFAULT '',
    type_name      VARCHAR(64) NOT NULL,
    component      VARCHAR(64) NOT NULL,
    severity       VARCHAR(16) NOT NULL,
    title          VARCHAR(255) NOT NULL,
    message        TEXT NOT NULL,
    recommendation TEXT NOT NULL,
    counter        INTEGER NOT NULL DEFAULT 1,
    created        BIGINT NOT NULL,
    reported       BIGINT NOT NULL,
    cleared        BIGINT NOT NULL DEFAULT 0,
    ignored        INTEGER NOT NULL DEFAULT 0,
    in_maintenance INTEGER NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (cluster_id, cleared, alarm_id);

CREATE TABLE IF NOT EXISTS maintenance (
    uuid       VARCHAR(64) NOT NULL PRIMARY KEY,
    cluster_id BIGINT NOT NULL,
    hostname   VARCHAR(255) NOT NULL DEFAULT '',
    initiate   BIGINT NOT NULL,
    deadline   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    user_name  VARCHAR(255) NOT NULL DEFAULT '',
    created    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS maintenance_cluster ON maintenance (cluster_id, deadline);

CREATE TABLE IF NOT EXISTS log_entries (
    entry_id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cluster_id BIGINT NOT NULL DEFAULT 0,
    hostname   VARCHAR(255) NOT NULL DEFAULT '',
    severity   VARCHAR(16) NOT NULL,
    component  VARCHAR(64) NOT NULL,
    message    TEXT NOT NULL,
    created    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS log_entries_cluster ON log_entries (cluster_id, entry_id);
CREATE INDEX IF NOT EXISTS log_entries_created ON log_entries (created);
