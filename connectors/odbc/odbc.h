/*
 * odbc.h - the ODBC polling connector: tables of databases Siphon cannot tail (DB2 for i,
 * Progress OpenEdge, Informix, SQL Server without CDC, a vendor-hosted replica) read through any
 * unixODBC driver by polling, with late-commit capture, update detection by key and delete
 * detection by reconciliation of the key set.
 *
 * The only thing the rest of Siphon sees is this callback table; the CLI's registry hands it to
 * the pipeline. Everything else lives in odbc_int.h. What the connector asks of the database
 * (the queries it runs, the privileges it needs) is in docs/odbc.md.
 */
#ifndef SIPHON_CONNECTORS_ODBC_H
#define SIPHON_CONNECTORS_ODBC_H

#include "pipeline/source.h"

extern const siphon_source_ops_t siphon_odbc_source;

#endif
