/*
 * 0046-pg-snapshot-invisible-commit - an on-demand snapshot while a committed transaction is
 * not visible yet: the PostgreSQL case DBLog's watermarks alone get wrong.
 *
 * PostgreSQL writes a commit record, and logical decoding streams the transaction, before the
 * transaction becomes visible to other sessions; with a synchronous standby the gap lasts
 * until the standby confirms. The test makes that gap last: synchronous_standby_names names a
 * standby that does not exist, and only the writer's session keeps synchronous_commit = on
 * (every other session, Siphon's included, commits locally). The writer updates S00005 to
 * amount 7 and hangs waiting for the standby; Siphon streams the update ('u', 7) while every
 * other session still reads amount 1. Then `siphon snapshot` reads the table: the chunk, which
 * cannot see the update, must not be emitted (it would put an 'r' with amount 1 after the 'u'
 * with 7); it is read again until the update is visible. Checks: no 'r' at all while the
 * writer hangs; after the standby requirement is lifted, every row arrives as 'r', S00005 with
 * amount 7, and no 'r' of S00005 with amount 1 follows its 'u'.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NROWS 20

static int set_standby(th_env_t *env, const char *names)
{
    if (th_pg_exec(env->pg, "ALTER SYSTEM SET synchronous_standby_names = '%s'", names) < 0)
        return -1;
    return th_pg_exec(env->pg, "SELECT pg_reload_conf()");
}

static void test_invisible_commit(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    char *err = NULL;
    /* every session commits locally first (this one included: a backend applies a reload
     * between two commands), then commits that ask for the standby wait for it */
    IT_CHECK(env, th_pg_exec(env->pg, "ALTER SYSTEM SET synchronous_commit = 'local'") == 0 &&
                      th_pg_exec(env->pg, "SELECT pg_reload_conf()") == 0,
             "could not set synchronous_commit");
    char *v = NULL;
    for (int i = 0; i < 100 && !(v && strcmp(v, "local") == 0); i++) {
        free(v);
        th_sleep_ms(50);
        v = th_pg_value(env->pg, NULL, "SHOW synchronous_commit");
    }
    IT_CHECK(env, v && strcmp(v, "local") == 0, "synchronous_commit is still %s", v ? v : "?");
    free(v);
    IT_CHECK(env, set_standby(env, "nosuch") == 0, "could not configure a synchronous standby");
    snap_stream(fx, NROWS, 5, "snapshot: never\nsnapshot_chunk_rows: 50\n");

    th_log("the writer updates S00005 to 7 and waits for a standby that never answers");
    PGconn *w = th_pg_connect(env->pg);
    IT_CHECK(env, w != NULL, "no writer connection");
    PGresult *res = PQexec(w, "SET synchronous_commit = on");
    PQclear(res);
    IT_CHECK(env, PQsendQuery(w, "UPDATE public.oehdr SET hdamt = 7 WHERE hdordn = 'S00005'"),
             "could not send the update");
    int got = th_env_consume(env, fx->cons, &fx->msgs, 1, 20000);
    IT_CHECK(env, got == 1, "the update was not streamed (%d events)", got);
    v = th_pg_value(env->pg, NULL, "SELECT hdamt::int FROM public.oehdr WHERE hdordn = 'S00005'");
    IT_CHECK(env, v && strcmp(v, "1") == 0, "the update is already visible (amount %s)",
             v ? v : "?");
    free(v);
    th_log("streamed as 'u' while other sessions still read amount 1; siphon snapshot");

    int code = snap_cli(env, "public.oehdr", 0, 30000, &err);
    IT_CHECK(env, code == 0, "siphon snapshot: exit %d, %s", code, err ? err : "");
    free(err);
    th_consumer_poll(fx->cons, &fx->msgs, 0, 2000);
    IT_CHECK(env, fx->msgs.n == 1, "%d events while the update is invisible: a chunk that cannot "
             "see it was emitted", fx->msgs.n - 1);
    IT_CHECK(env, !th_file_contains(th_proc_log_path(env->siphon), "on-demand snapshot of "
                                    "public.oehdr done"), "the snapshot ended while the update "
                                    "was invisible");

    th_log("no 'r' for 2 s; lifting the standby requirement");
    IT_CHECK(env, set_standby(env, "") == 0, "could not reset synchronous_standby_names");
    while ((res = PQgetResult(w)))
        PQclear(res);
    PQfinish(w);
    IT_CHECK(env, th_proc_wait_log(env->siphon, "on-demand snapshot of public.oehdr done", 20000),
             "the snapshot did not finish once the update was visible");
    snap_consume_quiet(fx->cons, &fx->msgs, 1000, 10000);

    int r[NROWS + 1] = {0}, seen_u = 0;
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        int n = snap_row_no(env, &ev);
        double a = snap_amount(env, &ev);
        IT_CHECK(env, n >= 1 && n <= NROWS, "event for an unexpected row (%d)", n);
        if (ev.op == 'u')
            seen_u = 1;
        if (ev.op == 'r') {
            r[n]++;
            if (n == 5)
                IT_CHECK(env, seen_u && a == 7.0, "S00005 arrived as 'r' with amount %.0f after "
                         "its 'u' with 7: an old row overwrote a newer change", a);
        }
        th_event_clear(&ev);
    }
    for (int n = 1; n <= NROWS; n++)
        IT_CHECK(env, r[n] == 1, "row S%05d arrived %d times as 'r'", n, r[n]);
    th_log("every row once as 'r', S00005 with its new amount after its 'u'");
    IT_CHECK(env, th_pg_exec(env->pg, "ALTER SYSTEM RESET synchronous_commit") == 0,
             "could not reset synchronous_commit");
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invisible_commit, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0046-pg-snapshot-invisible-commit", tests, NULL, NULL);
}
