/*
 * 0106-mysql-snapshot - the initial snapshot of a MariaDB table while transactions insert,
 * update and delete its rows, and the seam between the snapshot and the stream.
 *
 * public.oehdr and public.oehdr2 hold 20,000 orders each (hdamt 0), mapped to two entities. A
 * writer thread commits transactions of 1-3 statements on either table the whole time:
 * hdamt = hdamt + 1 on a random order (so hdamt counts the row's committed versions), deletes
 * of random orders, inserts of new orders (hdamt 1). Siphon starts in the middle of that
 * (snapshot: initial, chunks of 500 rows, 2 snapshot connections: one table each) and reads
 * both tables in consistent snapshots at one binlog position, then streams from exactly that
 * position. A connection whose snapshot were at another position would show, on its table,
 * changes missed or doubled at the seam.
 *
 * Checked, per order, over everything that arrived (in topic order, which is per-key order):
 *  - at most one 'r' event, and only as the order's first event; a 'c' only first, with 1;
 *  - every later event moves hdamt by exactly one ('u'), or ends the order ('d'): no update
 *    committed after the snapshot point is missing, and none before it comes again;
 *  - the last state equals the table's: every order present has arrived with its hdamt, every
 *    order deleted has a 'd' or was deleted before the snapshot (then nothing of it arrived);
 *  - transactions did commit while the chunks were read, and some orders had an 'r' followed
 *    by updates (the seam was crossed).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "it_check.h"

#define ROWS 20000
#define MAXNEW 20000

#define NT 2
static const char *const tables[NT] = {"oehdr", "oehdr2"};
static const char *const entities[NT] = {"sales_order", "sales_order_b"};

typedef struct writer {
    th_my_t *my;
    pthread_t thr;
    volatile int stop;
    volatile long txns;
    int newkeys[NT];
    unsigned seed;
    int failed;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    mysql_thread_init();
    MYSQL *m = mysql_init(NULL);
    if (!mysql_real_connect(m, NULL, "root", NULL, "public", 0, th_my_socket(w->my), 0)) {
        w->failed = 1;
        mysql_close(m);
        mysql_thread_end();
        return NULL;
    }
    mysql_autocommit(m, 0);
    char sql[256];
    while (!w->stop) {
        int nst = 1 + (int)(rand_r(&w->seed) % 3), ok = 1;
        for (int i = 0; i < nst && ok; i++) {
            unsigned r = rand_r(&w->seed) % 100;
            int t = (int)(rand_r(&w->seed) % NT);
            const char *tb = tables[t];
            if (r < 25 && w->newkeys[t] < MAXNEW) {
                snprintf(sql, sizeof(sql),
                         "INSERT INTO %s (hdcomp, hdordn, hdcust, hdamt) VALUES ('01', "
                         "'N%07d', 'C0000002', 1)",
                         tb, ++w->newkeys[t]);
            } else if (r < 35) {
                snprintf(sql, sizeof(sql),
                         "DELETE FROM %s WHERE hdcomp = '01' AND hdordn = 'S%07u'", tb,
                         1 + rand_r(&w->seed) % ROWS);
            } else if (r < 50 && w->newkeys[t] > 0) {
                snprintf(sql, sizeof(sql),
                         "UPDATE %s SET hdamt = hdamt + 1 WHERE hdcomp = '01' AND "
                         "hdordn = 'N%07u'",
                         tb, 1 + rand_r(&w->seed) % (unsigned)w->newkeys[t]);
            } else {
                snprintf(sql, sizeof(sql),
                         "UPDATE %s SET hdamt = hdamt + 1 WHERE hdcomp = '01' AND "
                         "hdordn = 'S%07u'",
                         tb, 1 + rand_r(&w->seed) % ROWS);
            }
            ok = mysql_query(m, sql) == 0;
        }
        if (!ok || mysql_commit(m) != 0) {
            th_err("writer: %s", mysql_error(m));
            w->failed = 1;
            break;
        }
        w->txns++;
        if (w->txns % 8 == 0)
            th_sleep_ms(1);
    }
    mysql_close(m);
    mysql_thread_end();
    return NULL;
}

/* The per-order state built from the events. */
typedef struct ordstate {
    int events;
    int seen_r;
    int deleted;
    long amount;
} ordstate_t;

/* Orders of table t: S keys at 1..ROWS, N keys at ROWS + 1..ROWS + MAXNEW. */
static ordstate_t *slot_of(ordstate_t *const *st, int t, const char *ordn)
{
    int k = atoi(ordn + 1);
    if (t < 0 || k < 1)
        return NULL;
    if (ordn[0] == 'S' && k <= ROWS)
        return &st[t][k];
    if (ordn[0] == 'N' && k <= MAXNEW)
        return &st[t][ROWS + k];
    return NULL;
}

static int table_of(const char *entity)
{
    for (int t = 0; t < NT; t++)
        if (!strcmp(entities[t], entity))
            return t;
    return -1;
}

static void test_snapshot_seam(void **state)
{
    (void)state;
    unsigned seed = th_seed();
    th_my_t *my = th_my_start(NULL);
    assert_non_null(my);
    IT_CHECK(NULL, th_my_exec(my, "%s; CREATE TABLE public.oehdr2 LIKE public.oehdr",
                              th_my_oehdr_ddl()) == 0,
             "DDL");
    for (int t = 0; t < NT; t++)
        IT_CHECK(NULL, th_my_exec(my, "INSERT INTO public.%s (hdcomp, hdordn, hdcust, hdodat, "
                                      "hdamt, hdnote) SELECT '01', CONCAT('S', LPAD(seq, 7, "
                                      "'0')), 'C0000001', '2024-01-01', 0, 'preloaded' FROM "
                                      "public.seq_1_to_%d",
                                  tables[t], ROWS) == 0,
                 "preload");
    char *dir = th_tempdir(), *mdir = th_path(dir, "mappings"), *sdir = th_path(dir, "schemas");
    for (int t = 0; t < NT; t++)
        IT_CHECK(NULL, th_my_order_mapping(dir, entities[t], tables[t]) == 0, "mappings");
    th_my_conf_t conf = {.server_id = 4306, .heartbeat_ms = 1000, .snapshot = "initial",
                         .snapshot_chunk_rows = 500, .snapshot_connections = 2,
                         .flush_interval_ms = 100, .mappings_dir = mdir, .schemas_dir = sdir};
    th_env_t *env = th_my_env_new(my, &conf);
    IT_CHECK(NULL, env != NULL, "env");
    IT_CHECK(env, th_kafka_create_topic(env->kafka, "it.sales_order_b.v1", 4) == 0, "topic");

    th_log("a writer inserts, updates and deletes orders of both tables; siphon starts in the "
           "middle of it");
    writer_t w = {.my = my, .seed = seed};
    IT_CHECK(env, pthread_create(&w.thr, NULL, writer_main, &w) == 0, "writer thread");
    th_sleep_ms(300);
    long at_start = w.txns;
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon start");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "snapshot done", 25000),
             "the snapshot did not end within 25 s");
    long at_done = w.txns;
    th_sleep_ms(700);
    w.stop = 1;
    pthread_join(w.thr, NULL);
    IT_CHECK(env, !w.failed, "the writer failed");
    int two = th_file_contains(th_proc_log_path(env->siphon), "on 2 connection(s)");
    th_log("  %ld transactions before siphon started, %ld while it snapshotted, %ld in all; "
           "the snapshot read on %s", at_start, at_done - at_start, w.txns,
           two ? "2 connections at one binlog position"
               : "1 connection (commits kept slipping between the two START TRANSACTIONs)");
    IT_CHECK(env, two || th_file_contains(th_proc_log_path(env->siphon), "reading with 1 of 2"),
             "the log says neither 2 connections nor the fallback to 1");
    IT_CHECK(env, at_done - at_start >= 5, "too few transactions committed during the snapshot "
                                          "(%ld) for the test to mean anything",
             at_done - at_start);

    th_log("wait until the stored position is the server's last GTID");
    char *gtid = th_my_value(my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(env, gtid && gtid[0], "no GTID");
    int64_t until = th_now_ms() + 20000;
    while (!th_file_contains(env->offsets_path, gtid) && th_now_ms() < until)
        th_sleep_ms(100);
    IT_CHECK(env, th_file_contains(env->offsets_path, gtid),
             "the offsets file did not reach %s within 20 s", gtid);
    free(gtid);

    th_msgs_t msgs = {0};
    const char *topics[NT] = {env->topic, "it.sales_order_b.v1"};
    for (int t = 0; t < NT; t++) {
        th_consumer_t *cons = th_consumer_new(env->kafka, topics[t]);
        IT_CHECK(env, cons && th_my_drain(cons, &msgs, 800) > 0, "no events on %s", topics[t]);
        th_consumer_destroy(cons);
    }
    th_my_order_ev_t *evs = NULL;
    int nev = 0;
    IT_CHECK(env, th_my_order_events(env->dec, &msgs, 0, &evs, &nev) == 0, "decode");

    ordstate_t *st[NT];
    for (int t = 0; t < NT; t++)
        st[t] = calloc(ROWS + MAXNEW + 1, sizeof(ordstate_t));
    long nr = 0, nc = 0, nu = 0, nd = 0, r_then_u = 0;
    for (int i = 0; i < nev; i++) {
        const th_my_order_ev_t *e = &evs[i];
        ordstate_t *o = slot_of(st, table_of(e->entity), e->order);
        IT_CHECK(env, o != NULL, "an event of an unknown order %s %s", e->entity, e->order);
        IT_CHECK(env, !o->deleted, "%s %s: '%c' event after its delete", e->entity, e->order,
                 e->op);
        switch (e->op) {
        case 'r':
            nr++;
            IT_CHECK(env, o->events == 0, "%s %s: an 'r' event after %d other event(s)",
                     e->entity, e->order, o->events);
            IT_CHECK(env, e->snapshot && !strncmp(e->event_id, "snap:public.oehdr", 17),
                     "%s %s: 'r' event with snapshot=%d, id %s", e->entity, e->order,
                     e->snapshot, e->event_id);
            o->seen_r = 1;
            o->amount = e->amount;
            break;
        case 'c':
            nc++;
            IT_CHECK(env, o->events == 0 && e->amount == 1,
                     "%s %s: 'c' with hdamt %ld after %d event(s)", e->entity, e->order,
                     e->amount, o->events);
            o->amount = 1;
            break;
        case 'u':
            nu++;
            IT_CHECK(env, o->events > 0 && e->amount == o->amount + 1,
                     "%s %s: update to hdamt %ld after %ld (%d earlier events): a change was "
                     "%s at the seam",
                     e->entity, e->order, e->amount, o->amount, o->events,
                     e->amount > o->amount + 1 ? "missed" : "doubled");
            r_then_u += o->seen_r && o->events == 1;
            o->amount = e->amount;
            break;
        case 'd':
            nd++;
            IT_CHECK(env, o->events > 0, "%s %s: a delete of a row never seen", e->entity,
                     e->order);
            o->deleted = 1;
            break;
        default:
            IT_CHECK(env, 0, "unexpected op '%c'", e->op);
        }
        o->events++;
    }
    th_log("  %d events: %ld r, %ld c, %ld u, %ld d; %ld orders updated right after their 'r'",
           nev, nr, nc, nu, nd, r_then_u);

    th_log("the last state of every order equals the tables");
    long rows = 0, gone_before = 0;
    for (int t = 0; t < NT; t++) {
        MYSQL *m = mysql_init(NULL);
        IT_CHECK(env, mysql_real_connect(m, NULL, "root", NULL, "public", 0, th_my_socket(my),
                                         0),
                 "connect");
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT hdordn, CAST(hdamt AS SIGNED) FROM %s", tables[t]);
        IT_CHECK(env, mysql_query(m, sql) == 0, "select");
        MYSQL_RES *res = mysql_store_result(m);
        char *present = calloc(ROWS + MAXNEW + 1, 1);
        for (MYSQL_ROW row; (row = mysql_fetch_row(res));) {
            ordstate_t *o = slot_of(st, t, row[0]);
            IT_CHECK(env, o != NULL, "unknown order %s in %s", row[0], tables[t]);
            IT_CHECK(env, o->events > 0 && !o->deleted, "%s %s is in the table (hdamt %s) but %s",
                     tables[t], row[0], row[1],
                     o->deleted ? "its last event is a delete" : "no event of it arrived");
            IT_CHECK(env, o->amount == atol(row[1]), "%s %s: last event says hdamt %ld, the "
                                                     "table %s",
                     tables[t], row[0], o->amount, row[1]);
            present[o - st[t]] = 1;
            rows++;
        }
        mysql_free_result(res);
        mysql_close(m);
        for (int k = 1; k <= ROWS + w.newkeys[t]; k++) { /* S keys, then N keys */
            ordstate_t *o = &st[t][k];
            if (present[k])
                continue;
            IT_CHECK(env, o->events == 0 || o->deleted,
                     "%s %c%07d was deleted but its events end with hdamt %ld", tables[t],
                     k <= ROWS ? 'S' : 'N', k <= ROWS ? k : k - ROWS, o->amount);
            gone_before += o->events == 0;
        }
        free(present);
    }
    th_log("  %ld rows in the tables, %ld orders deleted before the snapshot point", rows,
           gone_before);
    IT_CHECK(env, nr > ROWS && r_then_u > 0 && nc > 0 && nd > 0,
             "the test did not cross the seam (r %ld, r-then-u %ld, c %ld, d %ld)", nr,
             r_then_u, nc, nd);
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 20000) == 0, "siphon did not exit 0");

    for (int t = 0; t < NT; t++)
        free(st[t]);
    free(evs);
    th_msgs_free(&msgs);
    th_env_destroy(env);
    th_my_destroy(my);
    th_tempdir_remove(dir);
    free(dir);
    free(mdir);
    free(sdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_snapshot_seam)};
    return cmocka_run_group_tests_name("0106-mysql-snapshot", tests, NULL, NULL);
}
