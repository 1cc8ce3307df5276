-- MySQL's change_versions and schema_migrations move to a binary collation;
-- SQLite compares text byte for byte already, so this step only keeps the
-- schema versions of both dialects in step.
SELECT 1;
