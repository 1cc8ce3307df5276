-- SSH host keys of nodes, learned when a cluster is registered and checked
-- strictly afterwards (package hosts). One row per node address and key type;
-- public_key is in authorized_keys format ("ssh-ed25519 AAAA...").
CREATE TABLE IF NOT EXISTS host_keys (
    host_port   VARCHAR(255) NOT NULL,
    key_type    VARCHAR(64)  NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint VARCHAR(128) NOT NULL,
    created     BIGINT NOT NULL,
    PRIMARY KEY (host_port, key_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
