-- The host name of each controller's machine, as getControllers shows it.
ALTER TABLE job_controllers ADD COLUMN hostname VARCHAR(255) NOT NULL DEFAULT '';
