-- The job engine: jobs are the queue, job_messages their logs, job_tags the tag
-- index for listing, job_controllers the heartbeats that tell live controllers
-- from dead ones. Times are unix milliseconds; 0 means "not set".
CREATE TABLE IF NOT EXISTS jobs (
    job_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id       BIGINT NOT NULL DEFAULT 0,
    title            TEXT NOT NULL,
    command          VARCHAR(64) NOT NULL,
    job_data         TEXT NOT NULL,
    tags             TEXT NOT NULL,
    status           VARCHAR(16) NOT NULL,
    status_text      TEXT NOT NULL,
    exit_code        INTEGER NOT NULL DEFAULT 0,
    has_progress     INTEGER NOT NULL DEFAULT 0,
    progress_percent INTEGER NOT NULL DEFAULT 0,
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
    result           TEXT NOT NULL,
    is_exclusive     INTEGER NOT NULL DEFAULT 0,
    -- The cluster id while an exclusive job is DEQUEUED or RUNNING, else NULL: the
    -- unique index makes a second concurrent exclusive claim on a cluster fail.
    exclusive_lock   BIGINT NULL,
    controller_id    VARCHAR(255) NOT NULL DEFAULT '',
    instance_id      VARCHAR(64) NOT NULL DEFAULT '',
    kill_requested   INTEGER NOT NULL DEFAULT 0,
    killed_by        VARCHAR(255) NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, job_id);
CREATE INDEX IF NOT EXISTS jobs_cluster ON jobs (cluster_id, status, job_id);
CREATE INDEX IF NOT EXISTS jobs_fire ON jobs (status, next_fire_at);
CREATE INDEX IF NOT EXISTS jobs_ended ON jobs (status, ended);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_job_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_exclusive_lock ON jobs (exclusive_lock);

CREATE TABLE IF NOT EXISTS job_messages (
    message_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         BIGINT NOT NULL,
    created        BIGINT NOT NULL,
    message_status VARCHAR(16) NOT NULL,
    message_text   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_messages_job ON job_messages (job_id, message_id);

CREATE TABLE IF NOT EXISTS job_tags (
    job_id BIGINT NOT NULL,
    tag    VARCHAR(255) NOT NULL,
    PRIMARY KEY (job_id, tag)
);
CREATE INDEX IF NOT EXISTS job_tags_tag ON job_tags (tag, job_id);

CREATE TABLE IF NOT EXISTS job_controllers (
    controller_id VARCHAR(255) NOT NULL PRIMARY KEY,
    instance_id   VARCHAR(64) NOT NULL,
    started       BIGINT NOT NULL,
    heartbeat     BIGINT NOT NULL
);
