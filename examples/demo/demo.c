/*
 * demo.c - `make demo`: Siphon doing its job end to end on the sample legacy ERP.
 *
 * Starts a throwaway PostgreSQL 15 with a SQL_ASCII database "erp" loaded with the sample
 * legacy ERP (examples/legacy-erp/: erp.sql, generate.sql) and fills it with erp_generate()
 * (DEMO_SCALE, default 100: about 50,000 rows over eight tables). Then `siphon run` with the
 * shipped mappings (mappings/, schemas/) into the file sink: it first takes the initial
 * snapshot of the existing rows (docs/snapshots.md), showing its progress line per table on
 * the terminal, then streams. The demo then plays the ERP's activity (erp_activity(step)) and
 * `siphon tail --dir ... --follow` prints the canonical events as they arrive, one JSON line
 * each. Ctrl-C (or the end of the script) stops everything and removes every temporary file
 * (the harness's cleanup registry).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "harness.h"

#define PII_KEY "demo-pii-key-not-a-secret"

static int exec_erp(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        th_err("ERP> %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int wait_streaming(th_pg_t *pg, th_proc_t *siphon, int timeout_ms)
{
    for (int64_t until = th_now_ms() + timeout_ms;; th_sleep_ms(200)) {
        char *v = th_pg_value(pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots s JOIN "
                              "pg_stat_replication r ON r.pid = s.active_pid WHERE "
                              "s.slot_name = 'siphon_demo' AND r.state = 'streaming'");
        int ok = v && atoi(v) > 0;
        free(v);
        if (ok)
            return 0;
        if (!th_proc_running(siphon) || th_now_ms() > until)
            return -1;
    }
}

int main(void)
{
    int rc = 1, scale = getenv("DEMO_SCALE") ? atoi(getenv("DEMO_SCALE")) : 100;
    char *dir = NULL, *conninfo = NULL, *config = NULL, *out = NULL, *offsets = NULL;
    th_pg_t *pg = NULL;
    PGconn *erp = NULL;
    th_proc_t *siphon = NULL, *tail = NULL;

    if (scale < 1)
        scale = 1;
    setenv("SIPHON_PII_KEY", PII_KEY, 1);
    printf("Siphon demo: the sample legacy ERP on PostgreSQL -> canonical Avro events in files\n\n");
    th_log("starting a throwaway PostgreSQL 15");
    if (!(dir = th_tempdir()) || !(pg = th_pg_start()))
        goto out;
    if (!(erp = th_erp_create(pg, &conninfo)))
        goto out;
    th_log("loading the legacy ERP: SELECT erp_generate(%d)", scale);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT erp_generate(%d); ANALYZE", scale);
    if (exec_erp(erp, sql) < 0)
        goto out;

    config = th_path(dir, "siphon.yaml");
    out = th_path(dir, "out");
    offsets = th_path(dir, "offsets.json");
    char *mappings = th_path(th_source_dir(), "mappings");
    char *schemas = th_path(th_source_dir(), "schemas");
    char *yaml = th_strf("name: erp\n"
                         "source:\n"
                         "  type: postgres\n"
                         "  conninfo: \"%s\"\n"
                         "  slot: siphon_demo\n"
                         "  publication: siphon_demo\n"
                         "  snapshot: initial\n"
                         "  snapshot_connections: 3\n"
                         "  snapshot_chunk_rows: 1000\n"
                         "mappings: \"%s\"\n"
                         "schemas: \"%s\"\n"
                         "sink:\n"
                         "  type: file\n"
                         "  topic_prefix: erp\n"
                         "  path: \"%s\"\n"
                         "  roll_ms: 500\n"
                         "offsets:\n"
                         "  path: \"%s\"\n"
                         "log:\n"
                         "  level: info\n",
                         conninfo, mappings, schemas, out, offsets);
    free(mappings);
    free(schemas);
    int wrote = th_write_file(config, yaml);
    free(yaml);
    if (wrote < 0)
        goto out;

    th_log("siphon run --config %s (snapshot first, then streaming)", config);
    /* stderr of siphon is the terminal: its progress display shows there */
    if (!(siphon = th_siphon_start(config, "/dev/stderr")))
        goto out;
    if (wait_streaming(pg, siphon, 300000) < 0) {
        th_err("siphon did not get to streaming");
        goto out;
    }
    th_log("snapshot done, streaming; `siphon tail --dir %s --follow` prints new events", out);
    th_sleep_ms(1000);
    char *const targv[] = {(char *)th_siphon_bin(), "tail", "--dir", out, "--last", "0",
                           "--follow", NULL};
    if (!(tail = th_proc_spawn(targv, "/dev/stdout")))
        goto out;
    th_sleep_ms(1500);
    for (int step = 1; step <= 3; step++) {
        printf("\nERP> SELECT erp_activity(%d);   -- orders entered, changed, shipped, "
               "cancelled\n", step);
        fflush(stdout);
        snprintf(sql, sizeof(sql), "SELECT erp_activity(%d)", step);
        if (exec_erp(erp, sql) < 0)
            goto out;
        th_sleep_ms(2500);
    }
    printf("\n");
    th_log("stopping siphon with SIGTERM: it drains, acknowledges and exits 0");
    th_proc_signal(tail, SIGTERM);
    th_proc_wait(tail, 5000);
    th_proc_signal(siphon, SIGTERM);
    int ok = th_proc_wait(siphon, 30000);
    int code = ok ? th_proc_exit_code(siphon) : -1;
    char *stored = th_read_file(offsets, NULL, 1);
    th_log("siphon exited with %d; stored offsets: %s", code, stored ? stored : "(none)");
    free(stored);
    rc = code == 0 ? 0 : 1;
out:
    th_proc_destroy(tail);
    th_proc_destroy(siphon);
    if (erp)
        PQfinish(erp);
    if (rc && pg)
        th_pg_dump_log(pg, 30);
    th_pg_destroy(pg);
    if (dir)
        th_tempdir_remove(dir);
    free(dir);
    free(conninfo);
    free(config);
    free(out);
    free(offsets);
    printf("\n%s\n", rc ? "demo FAILED (logs above)"
                        : "demo done: every temporary server and file was removed");
    return rc;
}
