/*
 * cmd_snapshot.c - `siphon snapshot`: read one mapped table again while `siphon run` keeps
 * streaming (an on-demand snapshot, docs/snapshots.md).
 *
 * The command does not read the table itself: it checks the request (the config loads, a
 * mapping reads the table, the connector can do it), hands it to the running connector
 * through the source's signal_snapshot op (Postgres: a logical decoding message in the WAL,
 * which the running connector receives in its stream), and, with --wait, follows the
 * snapshot's progress in the offsets file, where the connector stores it with its position.
 * It reaches the database only through that op: nothing here knows a connector.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "pipeline/pipeline.h"
#include "registry.h"

static const char *usage_snapshot =
    "Usage: siphon snapshot --config FILE --table SCHEMA.TABLE [--wait]\n"
    "\n"
    "Reads the current rows of one mapped table again, as 'r' events, while the running\n"
    "`siphon run` of this config keeps streaming: no lock beyond a plain SELECT's, and a row\n"
    "read by the snapshot never overwrites a newer change of the same key (watermarks; see\n"
    "docs/snapshots.md, \"On-demand snapshots\"). The table is read in key-ordered chunks of\n"
    "source.snapshot_chunk_rows rows; its progress is stored with the connector's position,\n"
    "so a restarted `siphon run` resumes it at the last acknowledged chunk.\n"
    "\n"
    "Needs PostgreSQL 14 or later, a running `siphon run` with this config, a table with a\n"
    "primary key (or replica identity index), and EXECUTE on pg_logical_emit_message (granted\n"
    "to everyone by default).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE      the siphon.yaml of the running connector\n"
    "  -t, --table TABLE      the table: schema.table (a table without schema is in public)\n"
    "  -w, --wait             follow the progress (from the offsets file) until the snapshot is\n"
    "                         done; Ctrl-C stops waiting, not the snapshot\n"
    "  -l, --log-level LEVEL  error, warning (default), notice, info or debug\n"
    "  -h, --help             this help\n"
    "\n"
    "Examples:\n"
    "  siphon snapshot --config siphon.yaml --table public.oehdr --wait\n"
    "  siphon snapshot --config siphon.yaml --table arcust      # returns at once\n";

/* Follow the request in the offsets file until it is done (0), or until Ctrl-C (1). */
static int wait_done(const siphon_config_t *cfg, const siphon_source_ops_t *ops,
                     const char *token, const char *table)
{
    char err[1024];
    int tty = isatty(STDERR_FILENO), last_state = -1;
    uint64_t last_rows = UINT64_MAX;
    time_t started = time(NULL), last_print = 0;
    siphon_cli_signals_install();
    while (!siphon_cli_stop) {
        char *pos = NULL;
        uint64_t rows = 0, chunks = 0;
        int state = siphon_offsets_load(&pos, cfg->offsets.path, cfg->name, err, sizeof(err));
        if (state == 0)
            state = ops->snapshot_status(pos, token, &rows, &chunks, err, sizeof(err));
        free(pos);
        if (state < 0) {
            fprintf(stderr, "%ssiphon snapshot: %s\n", tty ? "\n" : "", err);
            return 1;
        }
        time_t now = time(NULL);
        if (state == 2) {
            fprintf(stderr, "%son-demand snapshot of %s done (see the log of siphon run for its "
                            "row count)\n", tty && last_state >= 0 ? "\r\033[K" : "", table);
            return 0;
        }
        if (state != last_state || rows != last_rows || now - last_print >= 5) {
            char line[1536];
            if (state == 0)
                snprintf(line, sizeof(line), "on-demand snapshot of %s: waiting for siphon run "
                         "to take the request (%lds; offsets file %s)", table,
                         (long)(now - started), cfg->offsets.path);
            else
                snprintf(line, sizeof(line), "on-demand snapshot of %s: %" PRIu64 " rows in %"
                         PRIu64 " chunks acknowledged", table, rows, chunks);
            if (tty)
                fprintf(stderr, "\r\033[K%s", line);
            else if (state != last_state || now - last_print >= 5)
                fprintf(stderr, "%s\n", line);
            if (tty || state != last_state || now - last_print >= 5)
                last_print = now;
            last_state = state;
            last_rows = rows;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "%sstopped waiting; the snapshot of %s goes on in siphon run\n",
            tty ? "\n" : "", table);
    return 1;
}

int siphon_cmd_snapshot(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"table", required_argument, NULL, 't'},
                                         {"wait", no_argument, NULL, 'w'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *table_arg = NULL, *level = "warning";
    int wait = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:t:wl:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 't': table_arg = optarg; break;
        case 'w': wait = 1; break;
        case 'l': level = optarg; break;
        case 'h': fputs(usage_snapshot, stdout); return 0;
        default:
            fprintf(stderr, "siphon snapshot: unknown or incomplete option '%s'\n\n%s",
                    argv[optind - 1], usage_snapshot);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siphon snapshot: unexpected argument '%s'\n\n%s", argv[optind],
                usage_snapshot);
        return 2;
    }
    if (!config || !table_arg || !table_arg[0]) {
        fprintf(stderr, "siphon snapshot: --config FILE and --table SCHEMA.TABLE are required\n\n"
                        "%s", usage_snapshot);
        return 2;
    }
    int lvl = siphon_log_level_parse(level);
    if (lvl < 0) {
        fprintf(stderr, "siphon snapshot: unknown log level '%s' (expected error, warning, "
                        "notice, info or debug)\n", level);
        return 2;
    }
    siphon_log_setup(lvl, 0);

    char schema[256], table[256], full[520], err[2048], token[1024];
    const char *dot = strchr(table_arg, '.');
    if (dot && (size_t)(dot - table_arg) < sizeof(schema)) {
        snprintf(schema, sizeof(schema), "%.*s", (int)(dot - table_arg), table_arg);
        snprintf(table, sizeof(table), "%s", dot + 1);
    } else {
        snprintf(schema, sizeof(schema), "public");
        snprintf(table, sizeof(table), "%s", table_arg);
    }
    snprintf(full, sizeof(full), "%s.%s", schema, table);

    int rc = 1;
    siphon_config_t *cfg = NULL;
    siphon_mapset_t *ms = NULL;
    if (siphon_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon snapshot: %s\n", err);
        return 1;
    }
    if (siphon_mapset_load(&ms, cfg->mappings_dir, cfg->schemas_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon snapshot: %s\n", err);
        goto out;
    }
    if (!siphon_mapset_has_table(ms, schema, table)) {
        fprintf(stderr, "siphon snapshot: no mapping in %s reads table %s (the mapped tables "
                        "are:", cfg->mappings_dir, full);
        for (int i = 0; i < siphon_mapset_count(ms); i++) {
            const siphon_mapping_t *map = siphon_mapset_get(ms, i);
            fprintf(stderr, "%s %s.%s", i ? "," : "", siphon_mapping_source_schema(map),
                    siphon_mapping_source_table(map));
        }
        fprintf(stderr, ")\n");
        goto out;
    }
    const siphon_source_ops_t *ops = siphon_registry_source(cfg->source.type);
    if (!ops || !ops->signal_snapshot || !ops->snapshot_status) {
        fprintf(stderr, "siphon snapshot: the %s connector cannot take snapshots on demand (only "
                        "postgres can; see docs/snapshots.md)\n", cfg->source.type);
        goto out;
    }
    if (ops->signal_snapshot(cfg, schema, table, token, sizeof(token), err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon snapshot: %s\n", err);
        goto out;
    }
    fprintf(stderr, "requested an on-demand snapshot of %s from connector '%s': the running "
                    "siphon run reads it in chunks while it streams\n", full, cfg->name);
    if (!wait) {
        fprintf(stderr, "follow it in the log of siphon run (\"on-demand snapshot of %s\"), or "
                        "in the offsets file %s (its position holds \" isnap %s=...\" until the "
                        "snapshot is done)\n", full, cfg->offsets.path, full);
        rc = 0;
        goto out;
    }
    rc = wait_done(cfg, ops, token, full);
out:
    siphon_mapset_destroy(ms);
    siphon_config_destroy(cfg);
    return rc;
}
