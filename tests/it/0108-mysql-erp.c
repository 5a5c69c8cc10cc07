/*
 * 0108-mysql-erp - the sample legacy ERP through MariaDB gives the same canonical events as
 * through PostgreSQL.
 *
 * The same generated data in both databases: PostgreSQL 15 with a SQL_ASCII database "erp"
 * (examples/legacy-erp/erp.sql + generate.sql, as tests/it/0020-erp-mappings.c loads it) and
 * MariaDB 10.11 with a database `public` (examples/legacy-erp/mariadb/erp.sql + generate.sql,
 * the MariaDB port: latin1 text, lower-case names). erp_generate(1) runs before Siphon starts,
 * so both sides begin with their initial snapshot (MariaDB's on three connections sharing one
 * binlog position, in chunks of 40 rows); then erp_activity(1), erp_bad_rows() and one more
 * order are streamed. Two `siphon run` processes with the repository's mappings and schemas
 * write into one mock Kafka cluster, PostgreSQL under the topic prefix "erp", MariaDB under
 * "erpmy".
 *
 * Checked: for each of the eight entities, the two topics hold the same keys and, per key, the
 * same sequence of events, op and `after` record field by field (th_keyseq_compare; `before`
 * is left out: PostgreSQL's default replica identity sends only the key, MariaDB's binlog the
 * whole old row); 0020 proves the PostgreSQL side right against an oracle, so this proves the
 * MariaDB side right too. Both dead-letter topics hold the same four dead letters (table and
 * field). Both runs stop cleanly on SIGTERM.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#include "mapping/mapping.h"

static const char *const entities[] = {"customer",          "product", "sales_order",
                                       "sales_order_line",  "inventory_position",
                                       "shipment",          "invoice", "return"};
#define NENT ((int)(sizeof(entities) / sizeof(entities[0])))

/* The environment holds PostgreSQL, the mock cluster, the decoder, the temp dir and both runs
 * (runs[0] PostgreSQL's, runs[1] MariaDB's), so IT_CHECK prints their logs on a failure. */
typedef struct fx {
    th_env_t *env;
    PGconn *erp;
    th_my_t *my;
} fx_t;

static fx_t *F;

#define CHECK(cond, ...) IT_CHECK(F->env, cond, __VA_ARGS__)
#define PGRUN (F->env->runs[0])
#define MYRUN (F->env->runs[1])

static int pg_run(const char *sql)
{
    PGresult *r = PQexec(F->erp, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        th_err("PostgreSQL: %s\n%.200s", PQresultErrorMessage(r), sql);
    PQclear(r);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    F = calloc(1, sizeof(*F));
    *state = F;
    F->env = calloc(1, sizeof(*F->env));
    F->env->runs = calloc(2, sizeof(th_proc_t *));
    th_log("setup: PostgreSQL (SQL_ASCII \"erp\") and MariaDB (`public`, latin1) with the "
           "sample ERP and the same generated data; one mock Kafka; two siphon runs");
    setenv("SIPHON_PII_KEY", "it-0108-pii-secret", 1);
    if (!(F->env->dir = th_tempdir()) || !(F->env->pg = th_pg_start()) || !(F->my = th_my_start(NULL)))
        return -1;

    char *pgci = NULL;
    if (!(F->erp = th_erp_create(F->env->pg, &pgci)))
        return -1;
    if (pg_run("SELECT erp_generate(1)"))
        return -1;

    const char *myfiles[] = {"examples/legacy-erp/mariadb/erp.sql",
                             "examples/legacy-erp/mariadb/generate.sql"};
    if (th_my_exec(F->my, "CREATE DATABASE public; USE public") != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        char *p = th_path(th_source_dir(), myfiles[i]);
        int rc = th_my_exec_file(F->my, p);
        free(p);
        if (rc)
            return -1;
    }
    if (th_my_exec(F->my, "USE public; CALL erp_generate(1)") != 0)
        return -1;

    if (!(F->env->kafka = th_kafka_start(3)))
        return -1;
    const char *prefixes[] = {"erp", "erpmy"};
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i <= NENT; i++) {
            char *t = i < NENT ? th_strf("%s.%s.v1", prefixes[p], entities[i])
                               : th_strf("%s._dlq", prefixes[p]);
            int rc = th_kafka_create_topic(F->env->kafka, t, 4);
            free(t);
            if (rc)
                return -1;
        }
    }
    char *pgconf = th_path(F->env->dir, "pg.yaml"), *myconf = th_path(F->env->dir, "my.yaml");
    char *pgoff = th_path(F->env->dir, "pg-offsets.json"), *myoff = th_path(F->env->dir, "my-offsets.json");
    char *pglog = th_path(F->env->dir, "pg.log"), *mylog = th_path(F->env->dir, "my.log");
    char *myci = th_strf("%s dbname=public", th_my_conninfo(F->my));
    th_siphon_conf_t pc = {.name = "erp", .conninfo = pgci, .slot = "siphon_erp",
                           .publication = "siphon_erp", .bootstraps = th_kafka_bootstraps(F->env->kafka),
                           .topic_prefix = "erp", .offsets_path = pgoff,
                           .status_interval_ms = 300, .flush_interval_ms = 200};
    th_my_conf_t mc = {.name = "erpmy", .conninfo = myci, .server_id = 4308,
                       .heartbeat_ms = 1000, .bootstraps = th_kafka_bootstraps(F->env->kafka),
                       .topic_prefix = "erpmy", .offsets_path = myoff, .flush_interval_ms = 200,
                       .snapshot = "initial", .snapshot_connections = 3,
                       .snapshot_chunk_rows = 40};
    int rc = th_siphon_conf_write(pgconf, &pc) == 0 && th_my_conf_write(myconf, &mc) == 0 &&
                     (F->env->dec = th_decoder_new(NULL, NULL)) &&
                     (PGRUN = th_siphon_start(pgconf, pglog)) && ++F->env->nruns &&
                     (MYRUN = th_siphon_start(myconf, mylog)) && ++F->env->nruns
                 ? 0
                 : -1;
    free(pgci);
    free(myci);
    free(pgconf);
    free(myconf);
    free(pgoff);
    free(myoff);
    free(pglog);
    free(mylog);
    return rc;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (!fx)
        return 0;
    if (fx->erp)
        PQfinish(fx->erp);
    th_env_destroy(fx->env); /* both runs, the decoder, the cluster, PostgreSQL, the dir */
    th_my_destroy(fx->my);
    free(fx);
    F = NULL;
    return 0;
}

/* The (table, field) of every dead letter on topic, sorted, one per line. */
static char *dead_letters(siphon_dlq_t *dlq, const char *topic, int *n)
{
    th_consumer_t *c = th_consumer_new(F->env->kafka, topic);
    CHECK(c != NULL, "no consumer for %s", topic);
    th_msgs_t msgs = {0};
    th_my_drain(c, &msgs, 300);
    th_consumer_destroy(c);
    char **lines = calloc((size_t)msgs.n + 1, sizeof(char *));
    for (int i = 0; i < msgs.n; i++) {
        char *json = NULL, err[256], t[64], f[64];
        CHECK(msgs.v[i].value && siphon_dlq_decode_json(&json, dlq, msgs.v[i].value,
                                                        msgs.v[i].vlen, err, sizeof(err)) == 0,
              "a dead letter on %s does not decode: %s", topic, err);
        json_error_t je;
        json_t *j = json_loads(json, 0, &je);
        lines[i] = th_strf("%s.%s", th_json_text(j, "table", t, sizeof(t)),
                           th_json_text(j, "field", f, sizeof(f)));
        json_decref(j);
        free(json);
    }
    for (int i = 0; i < msgs.n; i++) /* sort (few) */
        for (int j = i + 1; j < msgs.n; j++)
            if (strcmp(lines[j], lines[i]) < 0) {
                char *x = lines[i];
                lines[i] = lines[j];
                lines[j] = x;
            }
    size_t len = 1;
    for (int i = 0; i < msgs.n; i++)
        len += strlen(lines[i]) + 1;
    char *out = calloc(len, 1);
    for (int i = 0; i < msgs.n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    *n = msgs.n;
    th_msgs_free(&msgs);
    return out;
}

static void test_same_events(void **state)
{
    (void)state;
    th_log("both runs snapshot the generated data");
    CHECK(th_proc_wait_log(PGRUN, "snapshot done", 30000), "PostgreSQL snapshot not done");
    CHECK(th_proc_wait_log(MYRUN, "snapshot done", 30000), "MariaDB snapshot not done");
    CHECK(th_proc_wait_log(MYRUN, "on 3 connection(s)", 100),
          "MariaDB's snapshot should read on 3 connections");

    th_log("the same activity, bad rows and one more order, streamed from both");
    CHECK(pg_run("SELECT erp_activity(1)") == 0 && pg_run("SELECT erp_bad_rows()") == 0 &&
              pg_run("INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdcrdt, "
                     "hdcrtm) VALUES ('02', '0000199999', '00001007', 20240305, 4200, 'O', "
                     "20240305, 80000)") == 0,
          "PostgreSQL activity");
    CHECK(th_my_exec(F->my, "USE public; CALL erp_activity(1); CALL erp_bad_rows(); "
                            "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, "
                            "hdcrdt, hdcrtm) VALUES ('02', '0000199999', '00001007', 20240305, "
                            "4200, 'O', 20240305, 80000)") == 0,
          "MariaDB activity");

    uint64_t lsn = 0, conf = 0;
    CHECK(th_pg_current_lsn(F->env->pg, &lsn) == 0, "no LSN");
    char *gtid = th_my_value(F->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    char *myoff = th_path(F->env->dir, "my-offsets.json");
    int pg_ok = 0, my_ok = 0;
    for (int64_t until = th_now_ms() + 30000; th_now_ms() < until && !(pg_ok && my_ok);
         th_sleep_ms(100)) {
        pg_ok = th_pg_slot_confirmed(F->env->pg, "siphon_erp", &conf) == 0 && conf >= lsn;
        my_ok = gtid && th_file_contains(myoff, gtid);
    }
    CHECK(pg_ok, "PostgreSQL's slot did not confirm the end of the activity");
    CHECK(my_ok, "MariaDB's offsets did not reach %s", gtid ? gtid : "?");
    free(gtid);
    free(myoff);

    for (int i = 0; i < NENT; i++) {
        char *tp = th_strf("erp.%s.v1", entities[i]), *tm = th_strf("erpmy.%s.v1", entities[i]);
        th_keyseq_t *a = th_keyseq_read(F->env->kafka, F->env->dec, tp, 300);
        th_keyseq_t *b = th_keyseq_read(F->env->kafka, F->env->dec, tm, 300);
        CHECK(a && b, "could not read %s or %s", tp, tm);
        th_log("  %-18s PostgreSQL %3d keys %4ld events, MariaDB %3d keys %4ld events",
               entities[i], th_keyseq_keys(a), th_keyseq_events(a), th_keyseq_keys(b),
               th_keyseq_events(b));
        CHECK(th_keyseq_keys(a) > 0, "no %s events from PostgreSQL", entities[i]);
        char why[2048];
        CHECK(th_keyseq_compare(a, b, why, sizeof(why)) == 0,
              "%s differs between PostgreSQL (first) and MariaDB (second): %s", entities[i],
              why);
        th_keyseq_destroy(a);
        th_keyseq_destroy(b);
        free(tp);
        free(tm);
    }

    th_log("the same four dead letters on both");
    siphon_dlq_t *dlq = NULL;
    char err[256];
    CHECK(siphon_dlq_new(&dlq, err, sizeof(err)) == 0, "%s", err);
    int np = 0, nm = 0;
    char *dp = dead_letters(dlq, "erp._dlq", &np), *dm = dead_letters(dlq, "erpmy._dlq", &nm);
    CHECK(np == 4 && nm == 4 && !strcmp(dp, dm),
          "dead letters differ:\nPostgreSQL (%d):\n%sMariaDB (%d):\n%s", np, dp, nm, dm);
    free(dp);
    free(dm);
    siphon_dlq_destroy(dlq);

    th_log("SIGTERM: both drain and exit 0");
    th_proc_signal(PGRUN, SIGTERM);
    th_proc_signal(MYRUN, SIGTERM);
    CHECK(th_proc_wait(PGRUN, 20000) && th_proc_exit_code(PGRUN) == 0,
          "the PostgreSQL run did not exit 0");
    CHECK(th_proc_wait(MYRUN, 20000) && th_proc_exit_code(MYRUN) == 0,
          "the MariaDB run did not exit 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_same_events)};
    return cmocka_run_group_tests_name("0108-mysql-erp", tests, setup, teardown);
}
