-- What getControllers shows of each live controller besides its heartbeat.
ALTER TABLE job_controllers ADD COLUMN addresses VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE job_controllers ADD COLUMN port INT NOT NULL DEFAULT 0;
ALTER TABLE job_controllers ADD COLUMN version VARCHAR(64) NOT NULL DEFAULT '';
