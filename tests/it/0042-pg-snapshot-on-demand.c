/*
 * 0042-pg-snapshot-on-demand - `siphon snapshot` re-reads a table while Siphon streams and a
 * writer keeps updating, deleting and re-inserting the very keys being read.
 *
 * public.oehdr holds 600 rows (S0001..S0600, amount 1) and Siphon streams without an initial
 * snapshot (snapshot: never). A writer thread commits, as fast as it can, transactions of 8
 * random keys among S0001..S0400: an update, a delete, or a re-insert of a deleted key, each
 * write giving the key's amount its next version number (so amounts only grow per key, across
 * deletes too). While it runs, `siphon snapshot --table public.oehdr --wait` reads the table in
 * chunks of 100 rows (again, up to 3 times, until some chunk met a change of its own rows: the
 * race is random). Then, from the decoded event log, per key in arrival order (one key, one
 * partition):
 *  - no 'r' event is older than a change of the key that arrived before it: its amount is above
 *    every amount seen before, or equal to the last one when the row was not deleted since;
 *  - the last event is the table's final state (the final amount, or a delete);
 *  - every row the writer never touched (S0401..S0600) arrives as 'r' once per snapshot;
 *  - Siphon's log says each snapshot finished, and that rows changed while their chunk was read
 *    were left to the stream (the race really happened).
 * Also: the command's errors (no connector running, a table no mapping reads, a role without
 * EXECUTE on pg_logical_emit_message). Second test: the same race while the replication
 * connection is cut every 150 ms during the snapshot (rows may then arrive more than once).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NKEYS 600
#define WKEYS 400 /* the writer's keys: S0001..S0400; the others never change */
#define KPT 8     /* keys per writer transaction */

typedef struct racer {
    th_pg_t *pg;
    atomic_int stop;
    int ver[NKEYS + 1];       /* last version written; the amount */
    int exists[NKEYS + 1];
    int touched[NKEYS + 1];
    long txns;
    int failed;
    int pause_ms;             /* between transactions (0: as fast as it can) */
    unsigned seed;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    PGconn *c = th_pg_connect(r->pg);
    if (!c) {
        r->failed = 1;
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        int ver[KPT], key[KPT], del[KPT];
        char sql[4096];
        int n = snprintf(sql, sizeof(sql), "BEGIN;");
        for (int i = 0; i < KPT; i++) {
            int k = 1 + (int)(rand_r(&r->seed) % WKEYS), op = (int)(rand_r(&r->seed) % 10);
            /* a key already written in this transaction keeps its own bookkeeping simple */
            for (int j = 0; j < i; j++)
                if (key[j] == k)
                    k = 0;
            key[i] = k;
            del[i] = 0;
            if (!k)
                continue;
            int exists = r->exists[k];
            ver[i] = r->ver[k] + 1;
            if (exists && op >= 8) {
                del[i] = 1;
                n += snprintf(sql + n, sizeof(sql) - (size_t)n,
                              "DELETE FROM public.oehdr WHERE hdcomp = '02' AND hdordn = "
                              "'S%04d';", k);
            } else if (exists) {
                n += snprintf(sql + n, sizeof(sql) - (size_t)n,
                              "UPDATE public.oehdr SET hdamt = %d WHERE hdcomp = '02' AND hdordn "
                              "= 'S%04d';", ver[i], k);
            } else {
                n += snprintf(sql + n, sizeof(sql) - (size_t)n,
                              "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) VALUES "
                              "('02', 'S%04d', 'C2', %d);", k, ver[i]);
            }
        }
        snprintf(sql + n, sizeof(sql) - (size_t)n, "COMMIT;");
        PGresult *res = PQexec(c, sql);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            th_err("racer: %s", PQerrorMessage(c));
        PQclear(res);
        if (!ok) {
            r->failed = 1;
            break;
        }
        for (int i = 0; i < KPT; i++) {
            if (!key[i])
                continue;
            r->ver[key[i]] = ver[i];
            r->exists[key[i]] = !del[i];
            r->touched[key[i]] = 1;
        }
        r->txns++;
        if (r->pause_ms)
            th_sleep_ms(r->pause_ms);
        /* never more than 1 MB of WAL ahead of what Siphon confirmed: the stream stays close
         * to real time however slow Siphon is (a sanitizer build), so high watermarks arrive */
        while (r->txns % 20 == 0 && !atomic_load(&r->stop)) {
            res = PQexec(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) > "
                            "1048576 FROM pg_replication_slots WHERE slot_name = 'siphon_it'");
            int behind = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                         strcmp(PQgetvalue(res, 0, 0), "t") == 0;
            PQclear(res);
            if (!behind)
                break;
            th_sleep_ms(20);
        }
    }
    PQfinish(c);
    return NULL;
}

static void test_errors(th_env_t *env)
{
    char *err = NULL;
    int code = snap_cli(env, "public.oehdr", 0, 30000, &err);
    IT_CHECK(env, code == 1 && err && strstr(err, "replication slot \"siphon_it\" does not exist"),
             "without a running connector: exit %d, %s", code, err ? err : "");
    th_log("no connector running: %.200s", err);
    free(err);
}

/* Check the decoded event log against the table's final state (see the top of this file).
 * rounds: snapshots taken; exact: every row never changed arrived exactly once per snapshot
 * (else at least once: the events of a transaction cut by a lost connection come again). */
static void check_log(th_fx_t *fx, const racer_t *r, int rounds, int exact)
{
    th_env_t *env = fx->env;
    if (!fx->cons)
        fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    snap_consume_quiet(fx->cons, &fx->msgs, 2000, 60000);
    th_log("%d messages", fx->msgs.n);

    /* per key: highest amount seen, last op, 'r' count */
    double *max = calloc(NKEYS + 1, sizeof(double)), *last_amt = calloc(NKEYS + 1, sizeof(double));
    char *last_op = calloc(NKEYS + 1, 1);
    int *nr = calloc(NKEYS + 1, sizeof(int));
    assert_true(max && last_amt && last_op && nr);
    long reads = 0, changes = 0;
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        int k = snap_row_no(env, &ev);
        IT_CHECK(env, k >= 1 && k <= NKEYS, "event for an unexpected row (%d)", k);
        double a = snap_amount(env, &ev);
        switch (ev.op) {
        case 'r':
            IT_CHECK(env, a > max[k] || (a == max[k] && last_op[k] != 'd'),
                     "row S%04d: 'r' with amount %.0f after a streamed '%c' (highest amount %.0f): "
                     "an old snapshot row overwrote a newer change", k, a, last_op[k], max[k]);
            {
                char snap[16];
                IT_CHECK(env, strcmp(th_json_text(ev.value, "source.snapshot", snap, sizeof(snap)),
                                     "true") == 0, "row S%04d: 'r' with source.snapshot %s", k,
                         snap);
            }
            nr[k]++;
            reads++;
            break;
        case 'c':
        case 'u':
            changes++;
            break;
        case 'd':
            changes++;
            break;
        case 0:
            th_event_clear(&ev);
            continue; /* tombstone */
        default:
            IT_CHECK(env, 0, "unexpected op '%c'", ev.op);
        }
        if (a > max[k])
            max[k] = a;
        last_op[k] = ev.op;
        last_amt[k] = a;
        th_event_clear(&ev);
    }

    /* the table's final state, from the database itself */
    PGresult *res = th_pg_query(env->pg, "SELECT substr(hdordn, 2)::int, hdamt FROM public.oehdr "
                                         "WHERE hdcomp = '02'");
    IT_CHECK(env, res != NULL, "could not read the final state");
    char *present = calloc(NKEYS + 1, 1);
    double *final = calloc(NKEYS + 1, sizeof(double));
    assert_true(present && final);
    for (int i = 0; i < PQntuples(res); i++) {
        int k = atoi(PQgetvalue(res, i, 0));
        present[k] = 1;
        final[k] = atof(PQgetvalue(res, i, 1));
    }
    PQclear(res);
    int untouched = 0;
    for (int k = 1; k <= NKEYS; k++) {
        if (present[k])
            IT_CHECK(env, last_op[k] && last_op[k] != 'd' && last_amt[k] == final[k],
                     "row S%04d: last event '%c' amount %.0f, but the table holds %.0f", k,
                     last_op[k] ? last_op[k] : '-', last_amt[k], final[k]);
        else
            IT_CHECK(env, last_op[k] == 'd', "row S%04d is gone, but its last event is '%c'", k,
                     last_op[k] ? last_op[k] : '-');
        if (!r->touched[k]) {
            untouched++;
            IT_CHECK(env, (exact ? nr[k] == rounds : nr[k] >= rounds) && last_amt[k] == 1.0,
                     "row S%04d, never changed, arrived %d times as 'r' (amount %.0f), not once "
                     "per snapshot (%d)", k, nr[k], last_amt[k], rounds);
        }
    }
    th_log("%ld 'r' events, %ld changes; %d rows never changed, each read once per snapshot "
           "(%d); %ld writer transactions", reads, changes, untouched, rounds, r->txns);
    IT_CHECK(env, untouched > 0 && reads > 0, "nothing to check (%d untouched, %ld reads)",
             untouched, reads);
    free(max);
    free(last_amt);
    free(last_op);
    free(nr);
    free(present);
    free(final);
}

/* A role without EXECUTE on pg_logical_emit_message: the command says what to grant. */
static void test_no_privilege(th_env_t *env)
{
    IT_CHECK(env, th_pg_exec(env->pg, "CREATE ROLE lowpriv LOGIN; REVOKE EXECUTE ON FUNCTION "
                                      "pg_logical_emit_message(boolean, text, text) FROM PUBLIC")
                      == 0, "could not set up the role");
    th_siphon_conf_t conf = env->conf;
    const char *at = strstr(conf.conninfo, "user=postgres");
    IT_CHECK(env, at != NULL, "unexpected conninfo %s", conf.conninfo);
    char *conninfo = th_strf("%.*suser=lowpriv%s", (int)(at - conf.conninfo), conf.conninfo,
                             at + strlen("user=postgres"));
    char *path = th_path(env->dir, "lowpriv.yaml");
    conf.conninfo = conninfo;
    IT_CHECK(env, th_siphon_conf_write(path, &conf) == 0, "could not write %s", path);
    char *const argv[] = {(char *)th_siphon_bin(), "snapshot", "--config", path, "--table",
                          "public.oehdr", NULL};
    int code = -1;
    char *err = NULL;
    IT_CHECK(env, th_run(argv, NULL, 30000, &code, NULL, &err) == 0, "siphon snapshot hung");
    IT_CHECK(env, code == 1 && err && strstr(err, "GRANT EXECUTE ON FUNCTION "
                                                  "pg_catalog.pg_logical_emit_message(boolean, "
                                                  "text, text) TO lowpriv"),
             "without the privilege: exit %d, %s", code, err ? err : "");
    th_log("no privilege: %.300s", err);
    IT_CHECK(env, th_pg_exec(env->pg, "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, "
                                      "text, text) TO PUBLIC") == 0, "could not grant");
    free(err);
    free(path);
    free(conninfo);
}

/* A writer for env's table, whose rows S0001..S<NKEYS> are loaded with amount 1 (version 1).
 * Caller frees with free() once its thread was joined. */
static racer_t *racer_new(th_env_t *env)
{
    racer_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->pg = env->pg;
    r->seed = th_seed();
    for (int k = 1; k <= NKEYS; k++)
        r->ver[k] = r->exists[k] = 1;
    IT_CHECK(env, snap_load(env, "public.oehdr", 1, NKEYS, 4, 1) == 0, "could not load rows");
    return r;
}

static void test_on_demand_race(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    racer_t *r = racer_new(env);
    env->conf.extra_source = "snapshot: never\nsnapshot_chunk_rows: 100\n";
    env->conf.log_level = getenv("TH_DEBUG") ? "debug" : "info";
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    test_errors(env);
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not stream");

    char *err = NULL;
    int code = snap_cli(env, "public.nosuch", 0, 30000, &err);
    IT_CHECK(env, code == 1 && err && strstr(err, "no mapping"), "unmapped table: exit %d, %s",
             code, err ? err : "");
    th_log("unmapped table refused: %.160s", err);
    free(err);

    test_no_privilege(env);

    pthread_t th;
    IT_CHECK(env, pthread_create(&th, NULL, race, r) == 0, "could not start the writer");
    th_sleep_ms(300);
    /* The race is random: snapshot again (at most 3 times) until some chunk met a change of
     * its own rows; every check below holds after every one of them. */
    long dropped = 0;
    int rounds = 0;
    while (rounds < 3 && dropped == 0) {
        int64_t t0 = th_now_ms();
        rounds++;
        code = snap_cli(env, "public.oehdr", 1, 60000, &err);
        th_log("siphon snapshot --wait #%d: exit %d after %lld ms, %ld writer transactions so far",
               rounds, code, (long long)(th_now_ms() - t0), r->txns);
        IT_CHECK(env, code == 0 && err && strstr(err, "done"),
                 "siphon snapshot --wait: exit %d, %s", code, err ? err : "");
        free(err);
        IT_CHECK(env, th_proc_wait_log(env->siphon, "on-demand snapshot of public.oehdr done",
                                       10000),
                 "siphon did not log the end of the snapshot");
        /* "... (N more rows came from the stream instead, ...)", summed over the rounds */
        char *log = th_read_file(th_proc_log_path(env->siphon), NULL, 0);
        dropped = 0;
        for (const char *p = log ? strstr(log, "on-demand snapshot of public.oehdr done") : NULL; p;
             p = strstr(p + 1, "on-demand snapshot of public.oehdr done")) {
            const char *q = strstr(p, "chunks (");
            if (q)
                dropped += atol(q + 8);
        }
        free(log);
        th_log("rows left to the stream because they changed while their chunk was read: %ld",
               dropped);
    }
    th_sleep_ms(200);
    atomic_store(&r->stop, 1);
    pthread_join(th, NULL);
    IT_CHECK(env, !r->failed, "the writer failed");

    check_log(fx, r, rounds, 1);
    IT_CHECK(env, dropped > 0, "no chunk met a concurrent change of its rows: the race did not "
             "happen (raise the writer's rate)");
    free(r);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    IT_CHECK(env, !th_file_contains(env->offsets_path, " isnap"),
             "the stored position still holds on-demand progress after the snapshot ended");
}

/* The same race while the replication connection is cut again and again during the
 * snapshot: Siphon reconnects, skips what it had already returned, appends a chunk again when
 * its high watermark's transaction was cut, and every check still holds. */
static void test_on_demand_reconnect(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    racer_t *r = racer_new(env);
    r->pause_ms = 2; /* each reconnect replays from the last acknowledged position: keep the
                      * backlog small enough for the stream to reach each high watermark */
    snap_stream(fx, 0, 4, "snapshot: never\nsnapshot_chunk_rows: 5\n");
    pthread_t th;
    IT_CHECK(env, pthread_create(&th, NULL, race, r) == 0, "could not start the writer");
    th_sleep_ms(200);
    char *err = NULL;
    int code = snap_cli(env, "public.oehdr", 0, 30000, &err);
    IT_CHECK(env, code == 0, "siphon snapshot: exit %d, %s", code, err ? err : "");
    free(err);
    int cuts = 0;
    int64_t deadline = th_now_ms() + 40000;
    /* the first cut comes right after the request, before the snapshot can have ended */
    while (!th_file_contains(th_proc_log_path(env->siphon), "on-demand snapshot of public.oehdr "
                                                            "done") &&
           th_now_ms() < deadline) {
        cuts += th_pg_terminate_walsenders(env->pg) > 0;
        th_sleep_ms(150);
    }
    th_log("the replication connection was cut %d times during the snapshot", cuts);
    IT_CHECK(env, th_file_contains(th_proc_log_path(env->siphon), "on-demand snapshot of "
                                   "public.oehdr done"), "the snapshot did not finish");
    IT_CHECK(env, cuts >= 1, "the connection was never cut during the snapshot");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not stream again");
    th_sleep_ms(200);
    atomic_store(&r->stop, 1);
    pthread_join(th, NULL);
    IT_CHECK(env, !r->failed, "the writer failed");
    check_log(fx, r, 1, 0);
    free(r);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_on_demand_race, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_on_demand_reconnect, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0042-pg-snapshot-on-demand", tests, NULL, NULL);
}
