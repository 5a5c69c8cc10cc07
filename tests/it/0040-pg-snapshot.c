/*
 * 0040-pg-snapshot - the initial snapshot is consistent with the stream. public.oehdr holds
 * 3000 rows before Siphon first starts (snapshot_chunk_rows 50: 60 chunks); as soon as Siphon
 * says it took its snapshot (the slot was created with an exported snapshot), the test updates
 * 100 of those rows, deletes 100 and inserts 100 new ones, while the chunks are still being
 * read. Then: every row present at the snapshot arrives exactly once as 'r' (with its value at
 * the snapshot), every later change arrives as 'u', 'd' or 'c' after the row's 'r', no new row
 * arrives as 'r', and nothing is missing at the seam. Second: snapshot: initial_only reads the
 * rows, stores the plain position and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "0040-pg-snapshot.h"

#define NROWS 3000
#define NCHG 100

static void test_snapshot_seam(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");

    th_log("load %d rows before the first start", NROWS);
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt) "
                        "SELECT '02', 'S' || lpad(g::text, 5, '0'), 'C1', date '2024-01-01', 1 "
                        "FROM generate_series(1, %d) g", NROWS) == 0,
             "could not load rows");
    env->conf.extra_source = "snapshot_chunk_rows: 50\n";
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "in chunks of 50 rows", 30000) == 1,
             "siphon did not start its snapshot");

    th_log("change rows while the snapshot is read: update 1..%d, delete %d..%d, insert %d..%d",
           NCHG, NROWS - NCHG + 1, NROWS, NROWS + 1, NROWS + NCHG);
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "UPDATE public.oehdr SET hdamt = 2 WHERE hdcomp = '02' AND hdordn <= "
                        "'S%05d'; DELETE FROM public.oehdr WHERE hdcomp = '02' AND hdordn > "
                        "'S%05d'; INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                        "SELECT '02', 'S' || lpad(g::text, 5, '0'), 'C2', 3 FROM "
                        "generate_series(%d, %d) g",
                        NCHG, NROWS - NCHG, NROWS + 1, NROWS + NCHG) == 0,
             "could not change rows");
    int still_reading = !th_file_contains(th_proc_log_path(env->siphon), "snapshot done");
    th_log("the changes committed %s the snapshot ended", still_reading ? "before" : "after");

    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    /* r for every row, u for 100, d + tombstone for 100, c for 100 */
    int want = NROWS + NCHG * 4;
    int got = th_env_consume(env, fx->cons, &fx->msgs, want, 60000);
    IT_CHECK(env, got >= want, "only %d messages of %d arrived", got, want);
    th_consumer_poll(fx->cons, &fx->msgs, 0, 1000); /* nothing more should come */

    int *r = calloc(NROWS + NCHG + 2, sizeof(int)), *u = calloc(NROWS + NCHG + 2, sizeof(int));
    int *d = calloc(NROWS + NCHG + 2, sizeof(int)), *c = calloc(NROWS + NCHG + 2, sizeof(int));
    assert_true(r && u && d && c);
    char apath[128];
    snprintf(apath, sizeof(apath), "after.%s", amount);
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        int n = snap_row_no(env, &ev);
        IT_CHECK(env, n >= 1 && n <= NROWS + NCHG, "event for an unexpected row (%d)", n);
        char buf[64];
        switch (ev.op) {
        case 'r':
            IT_CHECK(env, n <= NROWS, "row S%05d was inserted after the snapshot but came as 'r'",
                     n);
            IT_CHECK(env, atof(th_json_text(ev.value, apath, buf, sizeof(buf))) == 1.0,
                     "row S%05d came as 'r' with amount %s, not its value at the snapshot (1)",
                     n, buf);
            IT_CHECK(env, strncmp(ev.event_id, "snap:", 5) == 0, "snapshot event id %s",
                     ev.event_id);
            IT_CHECK(env, !u[n] && !d[n], "row S%05d: 'r' after a later change", n);
            r[n]++;
            break;
        case 'u':
            IT_CHECK(env, r[n] == 1, "row S%05d: 'u' before its 'r'", n);
            u[n]++;
            break;
        case 'd':
            IT_CHECK(env, r[n] == 1, "row S%05d: 'd' before its 'r'", n);
            d[n]++;
            break;
        case 'c':
            c[n]++;
            break;
        case 0:
            break; /* tombstone */
        default:
            IT_CHECK(env, 0, "unexpected op '%c'", ev.op);
        }
        th_event_clear(&ev);
    }
    for (int n = 1; n <= NROWS + NCHG; n++) {
        IT_CHECK(env, r[n] == (n <= NROWS), "row S%05d came %d times as 'r'", n, r[n]);
        IT_CHECK(env, u[n] == (n <= NCHG), "row S%05d: %d updates, expected %d", n, u[n],
                 n <= NCHG);
        IT_CHECK(env, d[n] == (n > NROWS - NCHG && n <= NROWS), "row S%05d: %d deletes", n, d[n]);
        IT_CHECK(env, c[n] == (n > NROWS), "row S%05d: %d inserts", n, c[n]);
    }
    free(r);
    free(u);
    free(d);
    free(c);
    th_log("every row once as 'r', every later change once; SIGTERM");
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    uint64_t lsn = 0;
    IT_CHECK(env, th_offsets_lsn(env->offsets_path, &lsn) == 0 && lsn > 0,
             "no stored position after the run");
    IT_CHECK(env, !th_file_contains(env->offsets_path, " snapshot "),
             "the stored position still holds snapshot progress after the snapshot ended");
}

/* snapshot: initial_only reads the rows, drains, stores the plain LSN and exits 0. */
static void test_initial_only(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) SELECT '02', "
                        "'S' || lpad(g::text, 5, '0'), 'C1', 1 FROM generate_series(1, 500) g") == 0,
             "could not load rows");
    env->conf.extra_source = "snapshot: initial_only\nsnapshot_chunk_rows: 64\n";
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_proc_wait(env->siphon, 60000), "siphon did not exit after the snapshot");
    IT_CHECK(env, th_proc_exit_code(env->siphon) == 0, "siphon exited with %d",
             th_proc_exit_code(env->siphon));
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_consumer_poll(fx->cons, &fx->msgs, 0, 3000);
    IT_CHECK(env, fx->msgs.n == 500, "%d events, expected the 500 rows", fx->msgs.n);
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev = {0};
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d undecodable", i);
        IT_CHECK(env, ev.op == 'r', "event %d is '%c', not 'r'", i, ev.op);
        th_event_clear(&ev);
    }
    uint64_t lsn = 0;
    IT_CHECK(env, th_offsets_lsn(env->offsets_path, &lsn) == 0 && lsn > 0,
             "no stored position after the snapshot");
    IT_CHECK(env, !th_file_contains(env->offsets_path, " snapshot "),
             "the stored position still holds snapshot progress");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_seam, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_initial_only, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0040-pg-snapshot", tests, NULL, NULL);
}
