-- Two tables were created without a collation and so took the server's
-- default, which compares names case-insensitively; every other table, and
-- SQLite, compares them byte for byte. Converting is safe to repeat.
ALTER TABLE change_versions CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE schema_migrations CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
