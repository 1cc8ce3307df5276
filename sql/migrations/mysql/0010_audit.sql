-- The audit trail: every change and every refusal, who, what, when and how
-- it ended; kept for CMON_AUDIT_RETENTION.
CREATE TABLE IF NOT EXISTS audit_log (
    entry_id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
    detail     TEXT NOT NULL,
    INDEX audit_log_at (at),
    INDEX audit_log_user (user_name, entry_id),
    INDEX audit_log_cluster (cluster_id, entry_id),
    INDEX audit_log_operation (operation, entry_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
