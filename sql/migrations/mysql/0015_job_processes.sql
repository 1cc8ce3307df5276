-- The process group of each node command a job runs, while it runs: what
-- recovery ends when the controller that ran the job died.
CREATE TABLE IF NOT EXISTS job_processes (
    job_id     BIGINT NOT NULL,
    cluster_id BIGINT NOT NULL,
    hostname   VARCHAR(255) NOT NULL,
    pgid       INT NOT NULL,
    sudo       TINYINT NOT NULL,
    started    BIGINT NOT NULL,
    PRIMARY KEY (job_id, hostname, pgid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
