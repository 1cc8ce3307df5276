-- The job engine: jobs are the queue, job_messages their logs, job_tags the tag
-- index for listing, job_controllers the heartbeats that tell live controllers
-- from dead ones. Times are unix milliseconds; 0 means "not set". Indexes live
-- inside CREATE TABLE so that every statement is safe to repeat.
CREATE TABLE IF NOT EXISTS jobs (
    job_id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cluster_id       BIGINT NOT NULL DEFAULT 0,
    title            TEXT NOT NULL,
    command          VARCHAR(64) NOT NULL,
    job_data         MEDIUMTEXT NOT NULL,
    tags             TEXT NOT NULL,
    status           VARCHAR(16) NOT NULL,
    status_text      TEXT NOT NULL,
    exit_code        INT NOT NULL DEFAULT 0,
    has_progress     TINYINT NOT NULL DEFAULT 0,
    progress_percent INT NOT NULL DEFAULT 0,
    created          BIGINT NOT NULL,
    started          BIGINT NOT NULL DEFAULT 0,
    ended            BIGINT NOT NULL DEFAULT 0,
    scheduled        BIGINT NOT NULL DEFAULT 0,
    recurrence       VARCHAR(255) NOT NULL DEFAULT '',
    time_zone        VARCHAR(64) NOT NULL DEFAULT '',
    next_fire_at     BIGINT NOT NULL DEFAULT 0,
    user_id          BIGINT NOT NULL DEFAULT 0,
    user_name        VARCHAR(255) NOT NULL DEFAULT '',
    group_id         BIGINT NOT NULL DEFAULT 0,
    group_name       VARCHAR(255) NOT NULL DEFAULT '',
    ip_address       VARCHAR(64) NOT NULL DEFAULT '',
    parent_job_id    BIGINT NOT NULL DEFAULT 0,
    result           MEDIUMTEXT NOT NULL,
    is_exclusive     TINYINT NOT NULL DEFAULT 0,
    -- The cluster id while an exclusive job is DEQUEUED or RUNNING, else NULL: the
    -- unique index makes a second concurrent exclusive claim on a cluster fail.
    exclusive_lock   BIGINT NULL,
    controller_id    VARCHAR(255) NOT NULL DEFAULT '',
    instance_id      VARCHAR(64) NOT NULL DEFAULT '',
    kill_requested   TINYINT NOT NULL DEFAULT 0,
    killed_by        VARCHAR(255) NOT NULL DEFAULT '',
    INDEX jobs_status (status, job_id),
    INDEX jobs_cluster (cluster_id, status, job_id),
    INDEX jobs_fire (status, next_fire_at),
    INDEX jobs_ended (status, ended),
    INDEX jobs_parent (parent_job_id, status),
    UNIQUE INDEX jobs_exclusive_lock (exclusive_lock)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS job_messages (
    message_id     BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id         BIGINT NOT NULL,
    created        BIGINT NOT NULL,
    message_status VARCHAR(16) NOT NULL,
    message_text   MEDIUMTEXT NOT NULL,
    INDEX job_messages_job (job_id, message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS job_tags (
    job_id BIGINT NOT NULL,
    tag    VARCHAR(255) NOT NULL,
    PRIMARY KEY (job_id, tag),
    INDEX job_tags_tag (tag, job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS job_controllers (
    controller_id VARCHAR(255) NOT NULL PRIMARY KEY,
    instance_id   VARCHAR(64) NOT NULL,
    started       BIGINT NOT NULL,
    heartbeat     BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
