-- The audit trail: every change and every refusal, who, what, when and how
-- it ended; kept for CMON_AUDIT_RETENTION.
CREATE TABLE IF NOT EXISTS audit_log (
    entry_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    controller VARCHAR(255) NOT NULL,
    user_id    BIGINT NOT NULL DEFAULT 0,
    user_name  VARCHAR(255) NOT NULL DEFAULT '',
    address    VARCHAR(64) NOT NULL DEFAULT '',
    module     VARCHAR(32) NOT NULL,
    operation  VARCHAR(64) NOT NULL,
    object     VARCHAR(1024) NOT NULL DEFAULT '',
    cluster_id BIGINT NOT NULL DEFAULT 0,
    job_id     BIGINT NOT NULL DEFAULT 0,
    command    TEXT NOT NULL,
    outcome    VARCHAR(32) NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_name, entry_id);
CREATE INDEX IF NOT EXISTS audit_log_cluster ON audit_log (cluster_id, entry_id);
CREATE INDEX IF NOT EXISTS audit_log_operation ON audit_log (operation, entry_id);
