-- Runs once when the erp-db container initializes, after erp.sql and generate.sql: sample data,
-- and the role Siphon connects as (REPLICATION; owner of the mapped tables so it may publish them).
SELECT erp_generate(1);
CREATE ROLE siphon WITH LOGIN REPLICATION PASSWORD 'change-me';
GRANT CREATE ON DATABASE erp TO siphon;
ALTER TABLE arcust OWNER TO siphon;
ALTER TABLE icitem OWNER TO siphon;
ALTER TABLE oehdr OWNER TO siphon;
ALTER TABLE oeline OWNER TO siphon;
ALTER TABLE icbal OWNER TO siphon;
ALTER TABLE shhdr OWNER TO siphon;
ALTER TABLE arinv OWNER TO siphon;
ALTER TABLE rmhdr OWNER TO siphon;
