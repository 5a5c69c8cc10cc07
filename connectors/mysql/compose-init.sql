-- compose-init.sql - runs once when docker-compose's erp-mysql service (MySQL 8) initializes:
-- the account Siphon reads the binary log with, holding exactly the grants docs/mysql.md lists.
-- mysql_native_password keeps the login working without TLS for clients that cannot fetch the
-- server's RSA key (caching_sha2_password is MySQL 8's default); use TLS and the default in
-- production.
CREATE USER IF NOT EXISTS 'siphon'@'%' IDENTIFIED WITH mysql_native_password BY 'change-me';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'siphon'@'%';
GRANT SELECT ON erp.* TO 'siphon'@'%';
