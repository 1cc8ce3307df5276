-- One version per kind of shared state that controllers serve from memory
-- (policy, users, sessions, inventory). A change bumps its row after, or in
-- the same transaction as, the change itself; each controller reads the rows
-- once per request and reloads what moved, so a change made through any
-- controller applies to the next request on every controller.
CREATE TABLE IF NOT EXISTS change_versions (
    name    VARCHAR(32) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT OR IGNORE INTO change_versions (name, version) SELECT 'policy', version FROM policy_version WHERE id = 1;
INSERT OR IGNORE INTO change_versions (name, version) VALUES ('policy', 1), ('users', 1), ('sessions', 1), ('inventory', 1);
DROP TABLE IF EXISTS policy_version;
