/*
 * postgres.h - the PostgreSQL connector: changes read from a logical replication slot with the
 * pgoutput plugin (protocol version 1) over the streaming replication protocol (libpq).
 *
 * The only thing the rest of Siphon sees is this callback table; the CLI's registry hands it to
 * the pipeline. Everything else lives in pg_int.h. What a DBA has to grant and what the
 * connector creates in the database is in connectors/postgres/README.md.
 */
#ifndef SIPHON_CONNECTORS_POSTGRES_H
#define SIPHON_CONNECTORS_POSTGRES_H

#include "pipeline/source.h"

extern const siphon_source_ops_t siphon_postgres_source;

#endif
