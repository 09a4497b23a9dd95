-- Runs once on a new Postgres volume. Schemas, tables, functions and the services' login roles
-- (gongdi_<schema>, each with its PG_PW_<SCHEMA> password) are made by `gongdi setup` (idempotent), so this only
-- makes the database.
CREATE DATABASE gongdi;
