-- First start of the PostgreSQL StatefulSet (and of the compose file's postgres): one database
-- per service, with the extensions their migrations use, created by the superuser so that the
-- services' migrations need no superuser right for them.
CREATE DATABASE imgtag_auth;
CREATE DATABASE imgtag_catalog;
CREATE DATABASE imgtag_storage;
-- The vision-language providers an admin configures (their API keys sealed).
CREATE DATABASE imgtag_inference;
\connect imgtag_catalog
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
