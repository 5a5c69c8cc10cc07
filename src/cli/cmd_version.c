/*
 * cmd_version.c - `siphon version`.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "cli/cli.h"

static const char *usage_version =
    "Usage: siphon version\n"
    "\n"
    "Prints the version of siphon and of the libraries it was built with.\n"
    "\n"
    "Example:\n"
    "  siphon version\n";

int siphon_cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_version, stdout);
        return 0;
    }
    int pq = PQlibVersion();
    printf("siphon %s (librdkafka %s, libpq %d.%d)\n", SIPHON_VERSION, rd_kafka_version_str(),
           pq / 10000, pq % 10000);
    return 0;
}

