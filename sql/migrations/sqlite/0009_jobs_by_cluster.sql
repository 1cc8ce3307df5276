-- A cluster's jobs newest first (getJobInstances with a cluster and no
-- status filter) read straight off this index instead of sorting every job
-- of the cluster.
CREATE INDEX IF NOT EXISTS jobs_cluster_id ON jobs (cluster_id, job_id);
