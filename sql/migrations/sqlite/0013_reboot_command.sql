-- The command the reboot job runs on a node, through sudo; '' is the default.
ALTER TABLE clusters ADD COLUMN reboot_command VARCHAR(1024) NOT NULL DEFAULT '';
