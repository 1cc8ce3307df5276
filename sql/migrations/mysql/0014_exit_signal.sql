-- The signal a killed or timed-out job's commands were ended with ('' none).
ALTER TABLE jobs ADD COLUMN exit_signal VARCHAR(16) NOT NULL DEFAULT '';
