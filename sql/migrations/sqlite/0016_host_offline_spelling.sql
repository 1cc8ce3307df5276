-- The reference controller spells an offline host CmonHostOffLine, and its
-- clients (s9s) compare against that spelling.
UPDATE cluster_hosts SET status = 'CmonHostOffLine' WHERE status = 'CmonHostOffline';
