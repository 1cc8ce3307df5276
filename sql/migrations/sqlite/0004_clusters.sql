CREATE TABLE IF NOT EXISTS clusters (
    cluster_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_name    VARCHAR(255) NOT NULL UNIQUE,
    cluster_type    VARCHAR(64) NOT NULL,
    vendor          VARCHAR(64) NOT NULL DEFAULT '',
    version         VARCHAR(64) NOT NULL DEFAULT '',
    tags            TEXT NOT NULL,
    owner_user_id   INTEGER NOT NULL,
    owner_group_id  INTEGER NOT NULL DEFAULT 0,
    ssh_user        VARCHAR(64) NOT NULL,
    ssh_key_file    VARCHAR(1024) NOT NULL DEFAULT '',
    ssh_port        INTEGER NOT NULL DEFAULT 22,
    sudo            INTEGER NOT NULL DEFAULT 0,
    service_name    VARCHAR(255) NOT NULL DEFAULT '',
    service_command VARCHAR(1024) NOT NULL DEFAULT '',
    state           VARCHAR(32) NOT NULL DEFAULT 'UNKNOWN',
    status_text     VARCHAR(1024) NOT NULL DEFAULT '',
    created         BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS cluster_hosts (
    host_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  INTEGER NOT NULL REFERENCES clusters(cluster_id) ON DELETE CASCADE,
    hostname    VARCHAR(255) NOT NULL,
    ip          VARCHAR(64) NOT NULL DEFAULT '',
    port        INTEGER NOT NULL DEFAULT 0,
    role        VARCHAR(64) NOT NULL DEFAULT '',
    nodetype    VARCHAR(64) NOT NULL DEFAULT '',
    tags        TEXT NOT NULL,
    status      VARCHAR(32) NOT NULL DEFAULT 'CmonHostUnknown',
    last_seen   BIGINT NOT NULL DEFAULT 0,
    message     VARCHAR(1024) NOT NULL DEFAULT '',
    os          VARCHAR(255) NOT NULL DEFAULT '',
    kernel      VARCHAR(255) NOT NULL DEFAULT '',
    cpus        INTEGER NOT NULL DEFAULT 0,
    memory_mb   BIGINT NOT NULL DEFAULT 0,
    created     BIGINT NOT NULL,
    UNIQUE (cluster_id, hostname)
);
