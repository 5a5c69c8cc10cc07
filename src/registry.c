/*
 * registry.c - the table of connectors and sinks compiled into this binary.
 */
#include "registry.h"

#include <string.h>

#include "connectors/odbc/odbc.h"
#include "connectors/mysql/mysql.h"
#include "connectors/postgres/postgres.h"
#include "sink/file/file.h"
#include "sink/kafka/kafka.h"
#include "sink/stdout/stdout.h"

static const siphon_source_ops_t *const sources[] = {&siphon_postgres_source, &siphon_mysql_source,
                                                     &siphon_odbc_source};
static const siphon_sink_ops_t *const sinks[] = {&siphon_kafka_sink, &siphon_file_sink,
                                                 &siphon_stdout_sink};

const siphon_source_ops_t *siphon_registry_source(const char *type)
{
    for (size_t i = 0; type && i < sizeof(sources) / sizeof(sources[0]); i++)
        if (strcmp(sources[i]->type, type) == 0)
            return sources[i];
    return NULL;
}

const siphon_sink_ops_t *siphon_registry_sink(const char *type)
{
    for (size_t i = 0; type && i < sizeof(sinks) / sizeof(sinks[0]); i++)
        if (strcmp(sinks[i]->type, type) == 0)
            return sinks[i];
    return NULL;
}

const char *siphon_registry_source_types(void) { return "postgres, mysql, odbc"; }
const char *siphon_registry_sink_types(void) { return "kafka, file, stdout"; }
