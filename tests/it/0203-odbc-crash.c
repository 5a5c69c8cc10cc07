/*
 * 0203-odbc-crash - nothing is lost when the ODBC pipeline is killed with SIGKILL, again and
 * again, while an application keeps writing; through each of the three drivers (PostgreSQL /
 * psqlODBC, MariaDB / MariaDB Connector/ODBC, SQLite / sqliteodbc), timestamp mode,
 * reconciliation every second.
 *
 * A writer thread commits into odbc_ord on its own ODBC connection: new orders (version 1),
 * updates of existing ones (hdamt = the next version, hdupdt = the database's now) and a few
 * deletes; it records every committed version. `siphon run --config siphon.yaml` (an ODBC source,
 * the Kafka sink) is SIGKILLed at random instants three times, each time restarted from its
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
                /* marked before the delete commits: check_all() may see its event at once */
                __atomic_store_n(&w->deleted[k], 1, __ATOMIC_SEQ_CST);
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
        if (!del)
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
    char *dir, *db;
    th_odbc_fx_t *fx;
    writer_t w;
} st_t;

#define DDL_COLS                                                                              \
    "(hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL, hdcust char(8) NOT NULL, hdodat date," \
    " hdamt numeric(12,2) NOT NULL DEFAULT 0, hdstat char(1) NOT NULL DEFAULT 'O', hdnote text,"

/* The database of one driver holds an empty odbc_ord; the rest is the same for all three. */
static int setup_common(st_t *st, const char *connstr, const char *table)
{
    if (!(st->fx = th_odbc_fx_new(connstr, table, NULL, 0)))
        return -1;
    /* faster than the fixture's defaults: more polls between two kills */
    st->fx->conf.poll_interval_ms = 50;
    st->fx->conf.max_rows_per_poll = 50;
    st->fx->conf.safety_lag_ms = 500;
    st->fx->conf.reconcile_chunk = 100;
    st->w.connstr = st->fx->connstr;
    st->w.seed = th_seed();
    return 0;
}

static int setup_pg(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (th_odbc_env() != 0 || !(st->pg = th_pg_start()) ||
        th_pg_exec(st->pg, "CREATE TABLE public.odbc_ord " DDL_COLS
                           " hdupdt timestamptz, PRIMARY KEY (hdcomp, hdordn))") != 0)
        return -1;
    char *connstr = th_odbc_pg_connstr(st->pg);
    st->w.now_sql = "now()";
    int rc = setup_common(st, connstr, "public.odbc_ord");
    free(connstr);
    return rc;
}

static int setup_my(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (th_odbc_env() != 0 || !(st->my = th_my_start(NULL)) ||
        th_my_exec(st->my, "CREATE DATABASE public; CREATE TABLE public.odbc_ord " DDL_COLS
                           " hdupdt timestamp(6) NULL, PRIMARY KEY (hdcomp, hdordn))"
                           " ENGINE=InnoDB") != 0)
        return -1;
    char *connstr = th_odbc_my_connstr(st->my, "public");
    st->w.now_sql = "NOW(6)";
    int rc = setup_common(st, connstr, "public.odbc_ord");
    free(connstr);
    return rc;
}

static int setup_lite(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0)
        return -1;
    st->db = th_path(st->dir, "erp.db");
    char *cs = th_odbc_sqlite_connstr(st->db);
    char *connstr = th_strf("%s;Timeout=10000", cs);
    free(cs);
    th_odbc_t *c = th_odbc_connect(connstr);
    int rc = c ? th_odbc_exec(c, "CREATE TABLE odbc_ord " DDL_COLS
                                 " hdupdt timestamp, PRIMARY KEY (hdcomp, hdordn))")
               : -1;
    th_odbc_close(c);
    st->w.now_sql = "strftime('%Y-%m-%d %H:%M:%f', 'now')"; /* through %s: one % */
    if (rc == 0)
        rc = setup_common(st, connstr, "odbc_ord");
    free(connstr);
    return rc;
}

static int teardown(void **state)
{
    st_t *st = *state;
    st->w.stop = 1;
    if (st->w.thr)
        pthread_join(st->w.thr, NULL);
    th_odbc_fx_destroy(st->fx);
    th_pg_destroy(st->pg);
    th_my_destroy(st->my);
    free(st->db);
    if (st->dir)
        th_tempdir_remove(st->dir);
    free(st->dir);
    free(st);
    return 0;
}

#define CHECK(cond, ...) TH_ODBC_CHECK(st->fx, cond, __VA_ARGS__)

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
    for (int i = 0; i < st->fx->evs.n; i++) {
        const th_event_t *ev = &st->fx->evs.ev[i];
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
    /* The first event of an order is its create, or, for an order the writer deleted, a lone
     * delete: a row read by a poll that was never acknowledged (SIGKILL) is "maybe sent", and
     * when it is gone by the next start its delete is sent whether or not its create got out
     * (docs/odbc.md: otherwise a create delivered just before the crash would never be
     * followed by its delete). */
    for (int k = 0; k < NKEYS; k++)
        if (seen[k].events && seen[k].first_op != 'c' &&
            !(seen[k].first_op == 'd' && __atomic_load_n(&st->w.deleted[k], __ATOMIC_SEQ_CST))) {
            snprintf(why, size,
                     "order K%05d: first event is '%c', not a create (nor the delete of a "
                     "deleted order)", k, seen[k].first_op);
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
    th_odbc_fx_t *fx = st->fx;
    const char *driver = st->pg ? "psqlODBC" : st->my ? "MariaDB Connector/ODBC" : "sqliteodbc";
    static seen_t seen[NKEYS];
    char why[256];
    assert_int_equal(pthread_create(&st->w.thr, NULL, writer_main, &st->w), 0);
    CHECK(th_odbc_fx_start(fx) == 0, "siphon did not start");
    unsigned seed = th_seed();
    CHECK(!st->w.failed, "the writer failed (see above)");
    for (int kill = 0; kill < 3; kill++) {
        int wait = 1000 + (int)(rand_r(&seed) % 1200);
        th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, wait);
        th_proc_t *run = th_odbc_fx_run(fx);
        CHECK(th_proc_running(run), "siphon run %d exited by itself", fx->nruns);
        CHECK(check_all(st, seen, why, sizeof(why)) == 0, "%s", why);
        th_proc_signal(run, SIGKILL);
        CHECK(th_proc_wait(run, 5000) && th_proc_exit_code(run) == 128 + SIGKILL,
              "siphon run %d did not die of SIGKILL", fx->nruns);
        th_log("siphon run %d SIGKILLed after %d ms (%d events so far, %ld transactions written)",
               fx->nruns, wait, fx->evs.n, st->w.txns);
        CHECK(th_odbc_fx_start(fx) == 0, "siphon did not start again");
    }
    th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 1000);
    st->w.stop = 1;
    pthread_join(st->w.thr, NULL);
    st->w.thr = 0;
    CHECK(!st->w.failed, "the writer failed (see above)");
    th_log("writer stopped: %ld transactions, %d orders", st->w.txns, st->w.inserted);

    int64_t end = th_now_ms() + 30000;
    int done = 0;
    while (!done && th_now_ms() < end) {
        th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 500);
        CHECK(check_all(st, seen, why, sizeof(why)) == 0, "%s", why);
        done = complete(st, seen, why, sizeof(why));
    }
    CHECK(done, "after 30 s: %s", why);
    int events = 0;
    for (int k = 0; k < NKEYS; k++)
        events += seen[k].events;
    th_log("%s: every order's final state arrived after 3 SIGKILLs of siphon: %d orders, %d "
           "events for %ld transactions",
           driver, st->w.inserted, events, st->w.txns);
    int code = th_odbc_fx_stop(fx, SIGTERM, 20000);
    CHECK(code == 0, "the last run exited with %d on SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_my, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup_lite, teardown),
    };
    return cmocka_run_group_tests_name("0203-odbc-crash", tests, NULL, NULL);
}
