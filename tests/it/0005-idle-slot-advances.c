/*
 * 0005-idle-slot-advances - a source whose mapped tables do not change must still let its slot
 * advance, or the server keeps WAL forever. With traffic only on a table no mapping reads, and
 * then with the server fully idle (only a CHECKPOINT's WAL), the slot's confirmed_flush_lsn
 * (pg_replication_slots) must catch up within a few seconds, and nothing may be published. Then
 * again with a publication FOR ALL TABLES, so the unmapped rows do reach siphon and their
 * transactions (all rows filtered out) must be acknowledged at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_check.h"

static int setup(void **state)
{
    th_fx_t *fx = th_fx_new();
    *state = fx;
    return fx ? 0 : -1;
}

static int teardown(void **state)
{
    th_fx_destroy(*state);
    return 0;
}

/* Wait until the slot has confirmed at least `target`; returns the wait in ms or -1. */
static int wait_confirmed(th_env_t *env, uint64_t target, int timeout_ms, uint64_t *seen)
{
    int64_t t0 = th_now_ms();
    for (;;) {
        uint64_t c = 0;
        if (th_pg_slot_confirmed(env->pg, "siphon_it", &c) == 0)
            *seen = c;
        if (*seen >= target)
            return (int)(th_now_ms() - t0);
        if (th_now_ms() - t0 > timeout_ms)
            return -1;
        th_sleep_ms(50);
    }
}

static void test_idle_slot_advances(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    IT_CHECK(env, th_pg_exec(env->pg, "CREATE TABLE public.oeaudit (id int PRIMARY KEY, what "
                                      "text)") == 0, "create unmapped table");
    th_log("start siphon");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    uint64_t c0 = 0;
    IT_CHECK(env, th_pg_slot_confirmed(env->pg, "siphon_it", &c0) == 0, "no slot siphon_it");

    th_log("300 single-row transactions on oeaudit (no mapping reads it) over ~1.5 s");
    for (int i = 1; i <= 300; i++) {
        IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oeaudit VALUES (%d, 'x')", i) == 0,
                 "insert");
        if (i % 20 == 0)
            th_sleep_ms(100);
    }
    uint64_t target = 0, seen = 0;
    IT_CHECK(env, th_pg_current_lsn(env->pg, &target) == 0, "current LSN");
    int ms = wait_confirmed(env, target, 8000, &seen);
    char a[32], b[32], z[32];
    th_lsn_format(target, a, sizeof(a));
    th_lsn_format(seen, b, sizeof(b));
    th_lsn_format(c0, z, sizeof(z));
    IT_CHECK(env, ms >= 0, "the slot's confirmed_flush_lsn stayed at %s (started at %s), behind "
                           "%s written by unmapped traffic: WAL piles up", b, z, a);
    th_log("  confirmed_flush_lsn %s -> %s (>= %s) within %d ms", z, b, a, ms);

    th_log("fully idle: a CHECKPOINT writes WAL with no transaction at all");
    th_sleep_ms(500);
    IT_CHECK(env, th_pg_exec(env->pg, "CHECKPOINT") == 0, "checkpoint");
    IT_CHECK(env, th_pg_current_lsn(env->pg, &target) == 0, "current LSN");
    uint64_t before_idle = seen;
    ms = wait_confirmed(env, target, 8000, &seen);
    th_lsn_format(target, a, sizeof(a));
    th_lsn_format(seen, b, sizeof(b));
    IT_CHECK(env, ms >= 0, "idle server: confirmed_flush_lsn stayed at %s, behind %s", b, a);
    IT_CHECK(env, seen > before_idle, "idle server: the slot did not move");
    th_log("  confirmed_flush_lsn reached %s (>= %s) within %d ms", b, a, ms);

    th_log("the offsets file follows (within the flush interval)");
    uint64_t file = 0;
    int64_t deadline = th_now_ms() + 3000;
    while (th_now_ms() < deadline &&
           !(th_offsets_lsn(env->offsets_path, &file) == 0 && file >= target))
        th_sleep_ms(50);
    th_lsn_format(file, b, sizeof(b));
    IT_CHECK(env, file >= target, "offsets file holds %s, behind %s", b, a);

    th_log("nothing was published");
    int n = th_consumer_poll(fx->cons, &fx->msgs, 0, 1000);
    IT_CHECK(env, n == 0, "%d messages appeared for unmapped traffic", n);
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);

    th_log("publication FOR ALL TABLES (create_publication: false): the unmapped rows now reach "
           "siphon, which must drop them and still acknowledge their transactions");
    IT_CHECK(env, th_pg_exec(env->pg, "DROP PUBLICATION siphon_it; "
                                      "CREATE PUBLICATION siphon_it FOR ALL TABLES") == 0,
             "recreate the publication");
    env->conf.extra_source = "create_publication: false\n";
    IT_CHECK(env, th_env_write_conf(env) == 0, "rewrite siphon.yaml");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    for (int i = 1001; i <= 1300; i++) {
        IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oeaudit VALUES (%d, 'y')", i) == 0,
                 "insert");
        if (i % 20 == 0)
            th_sleep_ms(100);
    }
    IT_CHECK(env, th_pg_current_lsn(env->pg, &target) == 0, "current LSN");
    uint64_t before = seen;
    ms = wait_confirmed(env, target, 8000, &seen);
    th_lsn_format(target, a, sizeof(a));
    th_lsn_format(seen, b, sizeof(b));
    IT_CHECK(env, ms >= 0, "with the unmapped table published, confirmed_flush_lsn stayed at %s, "
                           "behind %s: filtered transactions are not acknowledged", b, a);
    IT_CHECK(env, seen > before, "the slot did not move");
    th_log("  confirmed_flush_lsn reached %s (>= %s) within %d ms", b, a, ms);
    n = th_consumer_poll(fx->cons, &fx->msgs, 0, 1000);
    IT_CHECK(env, n == 0, "%d messages appeared for unmapped traffic", n);

    th_log("a mapped change still streams: exactly one message");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust) "
                                      "VALUES ('01', 'IDLE1', 'C1')") == 0, "insert");
    n = th_env_consume(env, fx->cons, &fx->msgs, 1, 20000);
    IT_CHECK(env, n == 1, "the mapped insert did not arrive");
    n = th_consumer_poll(fx->cons, &fx->msgs, 0, 500);
    IT_CHECK(env, n == 1, "%d messages arrived, expected 1", n);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_slot_advances, setup, teardown),
    };
    return cmocka_run_group_tests_name("0005-idle-slot-advances", tests, NULL, NULL);
}
