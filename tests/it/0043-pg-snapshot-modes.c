/*
 * 0043-pg-snapshot-modes - `snapshot: always` and `snapshot: when_needed` across restarts.
 *
 * always: public.oehdr holds 300 rows. The first run snapshots them (300 'r') and streams an
 * update; after SIGTERM, the second run snapshots every row again (300 more 'r', the updated row
 * with its new amount, in a fresh snapshot since the slot exists), then streams from the stored
 * position: a row inserted afterwards arrives as 'c', and the update made in the first run is
 * not sent again as 'u'.
 *
 * when_needed: the first run snapshots the 300 rows and streams an insert; the second run finds
 * its stored position and its slot and does not snapshot (no 'r' at all); then the slot is
 * dropped while Siphon is stopped and rows change: the third run says the stored position is
 * no longer available, creates the slot again and snapshots every row (302 'r', with the
 * changes made meanwhile), and streams from there.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NROWS 300

/* Decode msgs[from..n-1]: counts of ops into cnt['r'], cnt['c']...; amount of row `watch` in its
 * last 'r' into *watch_amt (when not NULL). */
static void count_ops(th_env_t *env, const th_msgs_t *msgs, int from, int cnt[128], int watch,
                      double *watch_amt)
{
    memset(cnt, 0, 128 * sizeof(int));
    for (int i = from; i < msgs->n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &msgs->v[i], &ev) == 0, "message %d undecodable", i);
        cnt[(unsigned char)ev.op & 127]++;
        if (watch_amt && ev.op == 'r' && snap_row_no(env, &ev) == watch)
            *watch_amt = snap_amount(env, &ev);
        th_event_clear(&ev);
    }
}

/* Consume until at least until_n messages arrived and the topic is quiet, then count_ops() of
 * the messages from `from` on. */
static void consume_count(th_fx_t *fx, int until_n, int from, int cnt[128], int watch,
                          double *watch_amt)
{
    th_env_consume(fx->env, fx->cons, &fx->msgs, until_n, 30000);
    snap_consume_quiet(fx->cons, &fx->msgs, 1000, 10000);
    count_ops(fx->env, &fx->msgs, from, cnt, watch, watch_amt);
}

static void run_once(th_env_t *env, const char *ready_log)
{
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    if (ready_log)
        IT_CHECK(env, th_proc_wait_log(env->siphon, ready_log, 30000) == 1,
                 "siphon did not log \"%s\"", ready_log);
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not stream");
}

static void stop(th_env_t *env)
{
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

/* Load the rows, write the config with these source keys, start the consumer and the first run
 * (which snapshots: no stored position). */
static void first_run(th_fx_t *fx, const char *source_keys)
{
    th_env_t *env = fx->env;
    IT_CHECK(env, snap_load(env, "public.oehdr", 1, NROWS, 5, 1) == 0, "could not load rows");
    env->conf.extra_source = source_keys;
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    run_once(env, "snapshot done");
}

static void test_always(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    int cnt[128];
    double amt = 0;
    first_run(fx, "snapshot: always\nsnapshot_chunk_rows: 64\n");
    IT_CHECK(env, th_pg_exec(env->pg, "UPDATE public.oehdr SET hdamt = 9 WHERE hdordn = 'S00007'")
                      == 0, "could not update");
    consume_count(fx, NROWS + 1, 0, cnt, 7, &amt);
    th_log("first run: %d 'r', %d 'u'", cnt['r'], cnt['u']);
    IT_CHECK(env, cnt['r'] == NROWS && cnt['u'] == 1, "first run: %d 'r' and %d 'u', expected %d "
             "and 1", cnt['r'], cnt['u'], NROWS);
    stop(env);

    int first = fx->msgs.n;
    run_once(env, "snapshot done");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                      "VALUES ('02', 'S09999', 'C3', 5)") == 0, "could not insert");
    amt = 0;
    consume_count(fx, first + NROWS + 1, first, cnt, 7, &amt);
    th_log("second run: %d 'r', %d 'c', %d 'u'; row S00007 read with amount %.0f", cnt['r'],
           cnt['c'], cnt['u'], amt);
    IT_CHECK(env, cnt['r'] == NROWS, "second run: %d 'r', expected every row again (%d)", cnt['r'],
             NROWS);
    IT_CHECK(env, amt == 9.0, "second run read S00007 with amount %.0f, not its current 9", amt);
    IT_CHECK(env, cnt['c'] == 1 && cnt['u'] == 0,
             "second run: %d 'c' and %d 'u', expected the new row only (stream from the stored "
             "position)", cnt['c'], cnt['u']);
    stop(env);
}

static void test_when_needed(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    int cnt[128];
    double amt = 0;
    first_run(fx, "snapshot: when_needed\nsnapshot_chunk_rows: 64\n");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                      "VALUES ('02', 'S09001', 'C3', 5)") == 0, "could not insert");
    consume_count(fx, NROWS + 1, 0, cnt, 0, NULL);
    IT_CHECK(env, cnt['r'] == NROWS && cnt['c'] == 1, "first run: %d 'r', %d 'c'", cnt['r'],
             cnt['c']);
    stop(env);

    th_log("restart with the slot in place: no snapshot");
    int first = fx->msgs.n;
    run_once(env, NULL);
    IT_CHECK(env, th_pg_exec(env->pg, "UPDATE public.oehdr SET hdamt = 6 WHERE hdordn = 'S09001'")
                      == 0, "could not update");
    consume_count(fx, first + 1, first, cnt, 0, NULL);
    IT_CHECK(env, cnt['r'] == 0 && cnt['u'] == 1, "second run: %d 'r' (expected none), %d 'u'",
             cnt['r'], cnt['u']);
    IT_CHECK(env, !th_file_contains(th_proc_log_path(env->siphon), "snapshot of"),
             "the second run took a snapshot although its position was available");
    stop(env);

    th_log("drop the slot and change rows while siphon is stopped");
    IT_CHECK(env, th_pg_exec(env->pg, "SELECT pg_drop_replication_slot('siphon_it'); "
                                      "UPDATE public.oehdr SET hdamt = 8 WHERE hdordn = 'S00003'; "
                                      "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                      "VALUES ('02', 'S09002', 'C3', 4)") == 0,
             "could not drop the slot");
    first = fx->msgs.n;
    run_once(env, "is gone, so the stored position is no longer available");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "snapshot done", 30000) == 1,
             "the third run did not finish its snapshot");
    consume_count(fx, first + NROWS + 2, first, cnt, 3, &amt);
    th_log("third run: %d 'r' (S00003 with amount %.0f), %d 'c', %d 'u'", cnt['r'], amt,
           cnt['c'], cnt['u']);
    IT_CHECK(env, cnt['r'] == NROWS + 2, "third run: %d 'r', expected every row (%d)", cnt['r'],
             NROWS + 2);
    IT_CHECK(env, amt == 8.0, "S00003 read with amount %.0f, not its current 8", amt);
    IT_CHECK(env, cnt['c'] == 0 && cnt['u'] == 0, "third run streamed %d 'c' and %d 'u' from "
             "before its snapshot", cnt['c'], cnt['u']);
    stop(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_always, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_when_needed, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0043-pg-snapshot-modes", tests, NULL, NULL);
}
