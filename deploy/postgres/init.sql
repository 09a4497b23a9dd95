-- Runs once on a new Postgres volume. Schemas, tables and functions are created by `gongdi setup`
-- (idempotent), so this only prepares the database and the role the services use.
CREATE DATABASE gongdi;
