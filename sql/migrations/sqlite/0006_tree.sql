-- The access-control tree: "/" and one object per cluster ("/<cluster_name>"),
-- each with an owner, an owning group and POSIX-style permissions (bits: r=1,
-- w=2, x=4) for the user::, group:: and other:: entries.
CREATE TABLE IF NOT EXISTS tree_objects (
    path           VARCHAR(512) NOT NULL PRIMARY KEY,
    owner_user_id  BIGINT NOT NULL DEFAULT 0,
    owner_group_id BIGINT NOT NULL DEFAULT 0,
    user_perms     INTEGER NOT NULL,
    group_perms    INTEGER NOT NULL,
    other_perms    INTEGER NOT NULL,
    created        BIGINT NOT NULL
);

-- Named ACL entries (user:bob:r-x, group:ops:rw-), by id, so that a later user
-- or group of the same name inherits nothing.
CREATE TABLE IF NOT EXISTS tree_acl (
    path         VARCHAR(512) NOT NULL,
    subject_kind VARCHAR(8) NOT NULL,
    subject_id   BIGINT NOT NULL,
    perms        INTEGER NOT NULL,
    PRIMARY KEY (path, subject_kind, subject_id)
);

-- Bumped in the same transaction as every change to the tree, its ACLs or
-- group memberships; each controller compares it per request and reloads its
-- policies when it moved.
CREATE TABLE IF NOT EXISTS policy_version (
    id      INTEGER NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT OR IGNORE INTO policy_version (id, version) VALUES (1, 1);

-- Clusters registered before the tree existed keep their owner, with the
-- default cluster ACL user::rwx,group::rwx,other::---.
INSERT OR IGNORE INTO tree_objects (path, owner_user_id, owner_group_id, user_perms, group_perms, other_perms, created)
    SELECT '/' || cluster_name, owner_user_id, owner_group_id, 7, 7, 0, created FROM clusters;

-- Ownership now lives in the tree only.
ALTER TABLE clusters DROP COLUMN owner_user_id;
ALTER TABLE clusters DROP COLUMN owner_group_id;
