/*
 * 0045-pg-snapshot-on-demand-resume - an on-demand snapshot killed halfway resumes at its last
 * acknowledged chunk.
 *
 * public.oehdr holds 50000 rows; Siphon streams (snapshot: never). `siphon snapshot` (without
 * --wait: it returns at once and says how to follow the snapshot) starts an on-demand snapshot
 * in chunks of 100 rows; once 8000 'r' events have arrived Siphon is SIGKILLed. The stored
 * position must then hold the on-demand progress (" isnap public.oehdr=0,<chunks>,<rows>,<key>").
 * While Siphon is down a row already read is updated. The restarted run must say it resumes
 * the snapshot after that chunk; `siphon snapshot --wait` (asking again: the request is already
 * in progress) follows it to the end. Then every row arrived at least once as 'r', the second
 * run did not start over (far fewer 'r' than rows), the update arrived as 'u', and the stored
 * position is a plain LSN again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NROWS 50000

static void test_on_demand_resume(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    char *err = NULL;
    env->conf.flush_interval_ms = 100;
    snap_stream(fx, NROWS, 6, "snapshot: never\nsnapshot_chunk_rows: 100\n");

    int code = snap_cli(env, "oehdr", 0, 30000, &err);
    IT_CHECK(env, code == 0 && err && strstr(err, "follow it"),
             "siphon snapshot (no --wait): exit %d, %s", code, err ? err : "");
    free(err);
    int got = th_env_consume(env, fx->cons, &fx->msgs, 8000, 60000);
    IT_CHECK(env, got >= 8000, "only %d events arrived before the kill", got);
    th_sleep_ms(300); /* let the offsets file catch up with the deliveries */
    code = th_env_siphon_stop(env, SIGKILL, 10000);
    IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
    th_consumer_poll(fx->cons, &fx->msgs, 0, 1500);
    int first_run = fx->msgs.n;
    IT_CHECK(env, first_run < NROWS, "the snapshot ended before the kill (%d events)", first_run);
    IT_CHECK(env, th_file_contains(env->offsets_path, " isnap public.oehdr=0,"),
             "the stored position holds no on-demand progress after a kill mid-snapshot");
    th_log("killed after %d events; updating S000001 while siphon is down", first_run);
    IT_CHECK(env, th_pg_exec(env->pg, "UPDATE public.oehdr SET hdamt = 5 WHERE hdordn = 'S000001'")
                      == 0, "could not update");

    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "resuming the on-demand snapshot of public.oehdr "
                                                "after chunk", 30000) == 1,
             "the second run did not resume the on-demand snapshot");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "the second run did not stream");
    code = snap_cli(env, "public.oehdr", 1, 60000, &err);
    IT_CHECK(env, code == 0 && err && strstr(err, "done"), "siphon snapshot --wait: exit %d, %s",
             code, err ? err : "");
    free(err);
    IT_CHECK(env, th_proc_wait_log(env->siphon, "on-demand snapshot of public.oehdr done", 10000),
             "the second run did not finish the snapshot");
    snap_consume_quiet(fx->cons, &fx->msgs, 1500, 60000);

    char *r = calloc(NROWS + 1, 1);
    int r_second = 0, u5 = 0;
    assert_non_null(r);
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        int n = snap_row_no(env, &ev);
        IT_CHECK(env, n >= 1 && n <= NROWS, "event for an unexpected row (%d)", n);
        if (ev.op == 'r') {
            r[n] = 1;
            r_second += i >= first_run;
        }
        u5 += ev.op == 'u' && n == 1 && snap_amount(env, &ev) == 5.0;
        th_event_clear(&ev);
    }
    th_log("%d events in all, %d 'r' in the second run", fx->msgs.n, r_second);
    for (int n = 1; n <= NROWS; n++)
        IT_CHECK(env, r[n], "row S%06d never arrived as 'r'", n);
    IT_CHECK(env, u5 == 1, "the update made while siphon was down arrived %d times", u5);
    IT_CHECK(env, r_second < NROWS - 2000,
             "the second run sent %d 'r' events: it started the snapshot over", r_second);
    free(r);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    IT_CHECK(env, !th_file_contains(env->offsets_path, " isnap"),
             "the stored position still holds on-demand progress");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_on_demand_resume, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0045-pg-snapshot-on-demand-resume", tests, NULL, NULL);
}
