-- Runs once when the erp-db container initializes: the Siphon role and the sample legacy table.
CREATE ROLE siphon WITH LOGIN REPLICATION PASSWORD 'change-me';
\i /docker-entrypoint-initdb.d/oehdr.sql
GRANT SELECT ON ALL TABLES IN SCHEMA public TO siphon;
GRANT CREATE ON DATABASE erp TO siphon;
ALTER TABLE oehdr OWNER TO siphon;
