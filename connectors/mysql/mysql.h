/*
 * mysql.h - the MySQL/MariaDB connector: changes read from the binary log as a replica would,
 * through libmariadb's replication API, with row images decoded by Siphon.
 *
 * The only thing the rest of Siphon sees is this callback table; the CLI's registry hands it to
 * the pipeline. Everything else lives in my_int.h. How to prepare a server (settings, grants)
 * is in docs/mysql.md.
 */
#ifndef SIPHON_CONNECTORS_MYSQL_H
#define SIPHON_CONNECTORS_MYSQL_H

#include "pipeline/source.h"

extern const siphon_source_ops_t siphon_mysql_source;

#endif
