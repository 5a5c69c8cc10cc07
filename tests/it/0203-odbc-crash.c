/*
 * 0203-odbc-crash - nothing is lost when the ODBC pipeline is killed with SIGKILL, again and
 * again, while an application keeps writing; through each of the three drivers (PostgreSQL /
 * psqlODBC, MariaDB / MariaDB Connector/ODBC, SQLite / sqliteodbc), timestamp mode,
 * reconciliation every second.
 *
 * A writer thread commits into odbc_ord on its own ODBC connection: new orders (version 1),
 * updates of existing ones (hdamt = the next version, hdupdt = the database's now) and a few
 * deletes; it records every committed version. The pipeline runs in a child process (this test
 * binary re-executed) and is SIGKILLed at random instants three times, then restarted from its
 * offsets file and key set. When the writer has stopped, every order's final state must
 * arrive: its last committed version, or a delete (an order inserted and deleted between two
 * polls was never seen: nothing is owed for it); per order, the versions arrive in commit order
 * (a re-delivery after a restart repeats the newest state, never an older one); the first event
 * of every order is a create.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#define NKEYS 400

typedef struct writer {
    const char *connstr;
    const char *now_sql;  /* the database's current timestamp, as SQL */
    pthread_t thr;
    volatile int stop;
    int failed;
    int version[NKEYS]; /* last committed version, 0: never inserted */
    int deleted[NKEYS];
    int inserted;       /* keys 0..inserted-1 exist or existed */
    long txns;
    unsigned seed;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    th_odbc_t *c = th_odbc_connect(w->connstr);
    if (!c) {
        w->failed = 1;
        return NULL;
    }
    while (!w->stop) {
        int r = (int)(rand_r(&w->seed) % 100);
        int k, v = 0, del = 0, rc;
        if (w->inserted < NKEYS && (r < 40 || w->inserted < 10)) {
            k = w->inserted;
            v = 1;
            rc = th_odbc_exec(c, "INSERT INTO odbc_ord VALUES ('01', 'K%05d', 'C', NULL, 1, 'O',"
                                 " NULL, %s)",
                              k, w->now_sql);
        } else {
            k = (int)(rand_r(&w->seed) % (unsigned)w->inserted);
            if (w->deleted[k])
                continue;
            if (r >= 40 && r < 43) {
                del = 1;
                rc = th_odbc_exec(c, "DELETE FROM odbc_ord WHERE hdordn = 'K%05d'", k);
            } else {
                v = w->version[k] + 1;
                rc = th_odbc_exec(c, "UPDATE odbc_ord SET hdamt = %d, hdupdt = %s"
                                     " WHERE hdordn = 'K%05d'",
                                  v, w->now_sql, k);
            }
        }
        if (rc != 0) {
            w->failed = 1;
            break;
        }
        if (v == 1)
            w->inserted++;
        if (del)
            w->deleted[k] = 1;
        else
            w->version[k] = v;
        w->txns++;
        th_sleep_ms(5);
    }
    th_odbc_close(c);
    return NULL;
}

typedef struct st {
    th_pg_t *pg;
    th_my_t *my;
    th_kafka_t *kafka;
    th_decoder_t *dec;
    th_consumer_t *cons;
    th_odbc_events_t evs;
    char *dir, *connstr, *offsets, *mdir, *sdir, *confp, *db;
    th_odbc_conf_t conf;
    th_proc_t *runs[8];
    int nruns;
    writer_t w;
} st_t;

#define DDL_COLS                                                                              \
    "(hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL, hdcust char(8) NOT NULL, hdodat date," \
    " hdamt numeric(12,2) NOT NULL DEFAULT 0, hdstat char(1) NOT NULL DEFAULT 'O', hdnote text,"

/* The database of one driver with an empty odbc_ord; the rest is the same for all three. */
static int setup_common(st_t *st, const char *table)
{
    st->offsets = th_path(st->dir, "offsets.json");
    st->confp = th_path(st->dir, "run.conf");
    if (th_odbc_order_files(st->dir, &st->mdir, &st->sdir) != 0 ||
        !(st->kafka = th_kafka_start(1)) ||
        th_kafka_create_topic(st->kafka, "it.odbc_order.v1", 4) != 0 ||
        !(st->dec = th_decoder_new(st->mdir, st->sdir)) ||
        !(st->cons = th_consumer_new(st->kafka, "it.odbc_order.v1")))
        return -1;
    th_odbc_conf_t *c = &st->conf;
    c->dsn = st->connstr;
    c->bootstraps = th_kafka_bootstraps(st->kafka);
    c->offsets_path = st->offsets;
    c->mappings_dir = st->mdir;
    c->schemas_dir = st->sdir;
    c->poll_interval_ms = 50;
    c->max_rows_per_poll = 50;
    c->safety_lag_ms = 500;
    c->reconcile_interval_s = 1;
    c->reconcile_chunk = 100;
    c->flush_interval_ms = 100;
    c->tables[0] = (th_odbc_table_t){table, "timestamp", "hdupdt", NULL, NULL};
    c->ntables = 1;
    st->w.connstr = st->connstr;
    st->w.seed = th_seed();
    return 0;
}

static int setup_pg(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0 || !(st->pg = th_pg_start()) ||
        th_pg_exec(st->pg, "CREATE TABLE public.odbc_ord " DDL_COLS
                           " hdupdt timestamptz, PRIMARY KEY (hdcomp, hdordn))") != 0)
        return -1;
    st->connstr = th_odbc_pg_connstr(st->pg);
    st->w.now_sql = "now()";
    return setup_common(st, "public.odbc_ord");
}

static int setup_my(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0 || !(st->my = th_my_start(NULL)) ||
        th_my_exec(st->my, "CREATE DATABASE public; CREATE TABLE public.odbc_ord " DDL_COLS
                           " hdupdt timestamp(6) NULL, PRIMARY KEY (hdcomp, hdordn))"
                           " ENGINE=InnoDB") != 0)
        return -1;
    st->connstr = th_odbc_my_connstr(st->my, "public");
    st->w.now_sql = "NOW(6)";
    return setup_common(st, "public.odbc_ord");
}

static int setup_lite(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0)
        return -1;
    st->db = th_path(st->dir, "erp.db");
    char *cs = th_odbc_sqlite_connstr(st->db);
    st->connstr = th_strf("%s;Timeout=10000", cs);
    free(cs);
    th_odbc_t *c = th_odbc_connect(st->connstr);
    int rc = c ? th_odbc_exec(c, "CREATE TABLE odbc_ord " DDL_COLS
                                 " hdupdt timestamp, PRIMARY KEY (hdcomp, hdordn))")
               : -1;
    th_odbc_close(c);
    if (rc != 0)
        return -1;
    st->w.now_sql = "strftime('%Y-%m-%d %H:%M:%f', 'now')"; /* through %s: one % */
    return setup_common(st, "odbc_ord");
}

static int teardown(void **state)
{
    st_t *st = *state;
    st->w.stop = 1;
    if (st->w.thr)
        pthread_join(st->w.thr, NULL);
    for (int i = 0; i < st->nruns; i++)
        th_proc_destroy(st->runs[i]);
    th_odbc_events_free(&st->evs);
    th_consumer_destroy(st->cons);
    th_decoder_destroy(st->dec);
    th_kafka_destroy(st->kafka);
    th_pg_destroy(st->pg);
    th_my_destroy(st->my);
    free(st->connstr);
    free(st->offsets);
    free(st->confp);
    free(st->mdir);
    free(st->sdir);
    free(st->db);
    if (st->dir)
        th_tempdir_remove(st->dir);
    free(st->dir);
    free(st);
    return 0;
}

static void dump_runs(st_t *st)
{
    for (int i = 0; i < st->nruns; i++)
        th_proc_dump_log(st->runs[i], 40);
}

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            dump_runs(st);                                                                   \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

static void start_run(st_t *st)
{
    char *name = th_strf("run-%d.log", st->nruns + 1);
    char *log = th_path(st->dir, name);
    th_proc_t *p = th_odbc_child_start(&st->conf, st->confp, log);
    free(log);
    free(name);
    CHECK(p != NULL, "could not start run %d", st->nruns + 1);
    st->runs[st->nruns++] = p;
}

/* Per key, what arrived: versions in arrival order must not go back; the final state. */
typedef struct seen {
    int last_version; /* -1 none */
    int deleted_last; /* the last event was a delete */
    int events;
    int first_op;
} seen_t;

static int check_all(st_t *st, seen_t *seen, char *why, size_t size)
{
    char buf[64];
    for (int k = 0; k < NKEYS; k++)
        seen[k] = (seen_t){-1, 0, 0, 0};
    for (int i = 0; i < st->evs.n; i++) {
        const th_event_t *ev = &st->evs.ev[i];
        int k;
        if (!ev->value || !ev->key ||
            sscanf(th_json_text(ev->key, "order_number", buf, sizeof(buf)), "K%d", &k) != 1 ||
            k < 0 || k >= NKEYS)
            continue;
        seen_t *s = &seen[k];
        if (!s->events)
            s->first_op = ev->op;
        s->events++;
        if (ev->op == 'd') {
            s->deleted_last = 1;
            continue;
        }
        int v = atoi(th_json_text(ev->value, "after.total_amount", buf, sizeof(buf)));
        if (s->deleted_last) {
            snprintf(why, size, "order K%05d: version %d arrived after its delete", k, v);
            return -1;
        }
        if (v < s->last_version) {
            snprintf(why, size, "order K%05d: version %d arrived after version %d", k, v,
                     s->last_version);
            return -1;
        }
        s->last_version = v;
    }
    for (int k = 0; k < NKEYS; k++)
        if (seen[k].events && seen[k].first_op != 'c') {
            snprintf(why, size, "order K%05d: first event is '%c', not a create", k,
                     seen[k].first_op);
            return -1;
        }
    return 0;
}

static int complete(const st_t *st, const seen_t *seen, char *why, size_t size)
{
    for (int k = 0; k < st->w.inserted; k++) {
        /* a row inserted and deleted between two polls was never seen: nothing to send */
        if (st->w.deleted[k] && seen[k].events && !seen[k].deleted_last) {
            snprintf(why, size, "order K%05d was deleted; no delete arrived (%d events)", k,
                     seen[k].events);
            return 0;
        }
        if (!st->w.deleted[k] && seen[k].last_version != st->w.version[k]) {
            snprintf(why, size, "order K%05d: committed version %d, last arrived %d", k,
                     st->w.version[k], seen[k].last_version);
            return 0;
        }
    }
    return 1;
}

static void test_sigkill_restart(void **state)
{
    st_t *st = *state;
    const char *driver = st->pg ? "psqlODBC" : st->my ? "MariaDB Connector/ODBC" : "sqliteodbc";
    static seen_t seen[NKEYS];
    char why[256];
    assert_int_equal(pthread_create(&st->w.thr, NULL, writer_main, &st->w), 0);
    start_run(st);
    unsigned seed = th_seed();
    th_sleep_ms(300);
    CHECK(!st->w.failed, "the writer failed (see above)");
    for (int kill = 0; kill < 3; kill++) {
        int wait = 1200 + (int)(rand_r(&seed) % 1500);
        th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, wait);
        CHECK(th_proc_running(st->runs[st->nruns - 1]), "run %d exited by itself", st->nruns);
        CHECK(check_all(st, seen, why, sizeof(why)) == 0, "%s", why);
        th_proc_signal(st->runs[st->nruns - 1], SIGKILL);
        th_proc_wait(st->runs[st->nruns - 1], 5000);
        th_log("run %d SIGKILLed after %d ms (%d events so far, %ld transactions written)",
               st->nruns, wait, st->evs.n, st->w.txns);
        start_run(st);
    }
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 1000);
    st->w.stop = 1;
    pthread_join(st->w.thr, NULL);
    st->w.thr = 0;
    CHECK(!st->w.failed, "the writer failed (see above)");
    th_log("writer stopped: %ld transactions, %d orders", st->w.txns, st->w.inserted);

    int64_t end = th_now_ms() + 30000;
    int done = 0;
    while (!done && th_now_ms() < end) {
        th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 500);
        CHECK(check_all(st, seen, why, sizeof(why)) == 0, "%s", why);
        done = complete(st, seen, why, sizeof(why));
    }
    CHECK(done, "after 30 s: %s", why);
    int dups = 0;
    for (int k = 0; k < NKEYS; k++)
        dups += seen[k].events;
    th_log("%s: every order's final state arrived after 3 SIGKILLs: %d orders, %d events for "
           "%ld transactions",
           driver, st->w.inserted, dups, st->w.txns);
    th_proc_signal(st->runs[st->nruns - 1], SIGTERM);
    CHECK(th_proc_wait(st->runs[st->nruns - 1], 20000), "the last run did not stop on SIGTERM");
    CHECK(th_proc_exit_code(st->runs[st->nruns - 1]) == 0, "the last run exited with %d",
          th_proc_exit_code(st->runs[st->nruns - 1]));
}

int main(int argc, char **argv)
{
    th_odbc_child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_my, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_lite, teardown),
    };
    return cmocka_run_group_tests_name("0203-odbc-crash", tests, NULL, NULL);
}
