/*
 * 0041-pg-snapshot-resume - a snapshot killed halfway resumes at the last acknowledged chunk.
 * public.oehdr holds 200000 rows before Siphon first starts (snapshot_chunk_rows 100: 2000
 * chunks). Once 20000 'r' events have arrived, Siphon is SIGKILLed; the stored position
 * must then hold the snapshot's progress. While Siphon is down, rows already read are updated
 * (10 of the first rows) and new rows are inserted. The restarted run must say it resumes the
 * snapshot, must not start it over (fewer 'r' events than rows in the second run), and in the
 * end every row arrives at least once as 'r' and the changes made while it was down arrive
 * (the updates as 'u' with the new amount, the new rows as 'c' or 'r'): nothing is lost at the
 * seam, duplicates are allowed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NROWS 200000
#define NUPD 10
#define NNEW 10

static void test_snapshot_resume(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    char apath[128], buf[64];
    snprintf(apath, sizeof(apath), "after.%s", amount);

    th_log("load %d rows before the first start", NROWS);
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt) "
                        "SELECT '02', 'S' || lpad(g::text, 6, '0'), 'C1', date '2024-01-01', 1 "
                        "FROM generate_series(1, %d) g; ANALYZE public.oehdr", NROWS) == 0,
             "could not load rows");
    env->conf.extra_source = "snapshot_chunk_rows: 100\n";
    env->conf.flush_interval_ms = 100;
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    int got = th_env_consume(env, fx->cons, &fx->msgs, 20000, 60000);
    IT_CHECK(env, got >= 20000, "only %d events arrived before the kill", got);
    th_sleep_ms(300); /* let the offsets file catch up with the deliveries */
    int code = th_env_siphon_stop(env, SIGKILL, 10000);
    IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
    th_consumer_poll(fx->cons, &fx->msgs, 0, 2000); /* everything the first run delivered */
    int first_run = fx->msgs.n;
    IT_CHECK(env, first_run < NROWS, "the snapshot ended before the kill (%d events)", first_run);
    IT_CHECK(env, th_file_contains(env->offsets_path, " snapshot "),
             "the stored position holds no snapshot progress after a kill mid-snapshot");
    th_log("killed after %d events; changing rows while siphon is down", first_run);
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "UPDATE public.oehdr SET hdamt = 5 WHERE hdcomp = '02' AND hdordn <= "
                        "'S%06d'; INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                        "SELECT '02', 'S' || lpad(g::text, 6, '0'), 'C2', 7 FROM "
                        "generate_series(%d, %d) g",
                        NUPD, NROWS + 1, NROWS + NNEW) == 0,
             "could not change rows");

    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "resuming the interrupted snapshot", 30000) == 1,
             "the second run did not resume the snapshot");
    IT_CHECK(env, th_env_wait_streaming(env, 120000) == 0, "the second run did not stream");
    th_consumer_poll(fx->cons, &fx->msgs, 0, 5000);

    int *r = calloc(NROWS + NNEW + 2, sizeof(int)), *u5 = calloc(NROWS + NNEW + 2, sizeof(int));
    int *newrow = calloc(NROWS + NNEW + 2, sizeof(int));
    assert_true(r && u5 && newrow);
    int r_second = 0;
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        int n = snap_row_no(env, &ev);
        IT_CHECK(env, n >= 1 && n <= NROWS + NNEW, "event for an unexpected row (%d)", n);
        double amt = ev.value ? atof(th_json_text(ev.value, apath, buf, sizeof(buf))) : 0;
        if (ev.op == 'r') {
            r[n]++;
            r_second += i >= first_run;
        }
        if (ev.op == 'u' && amt == 5.0)
            u5[n]++;
        if ((ev.op == 'c' || ev.op == 'r') && n > NROWS && amt == 7.0)
            newrow[n]++;
        th_event_clear(&ev);
    }
    th_log("%d events in all, %d 'r' events in the second run", fx->msgs.n, r_second);
    for (int n = 1; n <= NROWS; n++)
        IT_CHECK(env, r[n] >= 1, "row S%06d never arrived as 'r'", n);
    for (int n = 1; n <= NUPD; n++)
        IT_CHECK(env, u5[n] >= 1, "the update of row S%06d made while siphon was down is lost", n);
    for (int n = NROWS + 1; n <= NROWS + NNEW; n++)
        IT_CHECK(env, newrow[n] >= 1, "row S%06d inserted while siphon was down is lost", n);
    IT_CHECK(env, r_second < NROWS - 1000,
             "the second run sent %d 'r' events: it started the snapshot over", r_second);
    free(r);
    free(u5);
    free(newrow);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_resume, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0041-pg-snapshot-resume", tests, NULL, NULL);
}
