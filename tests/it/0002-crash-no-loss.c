/*
 * 0002-crash-no-loss - SIGKILL siphon at random instants while transactions commit; restart it
 * each time; at the end every committed change has arrived at least once, per-key order holds,
 * and every duplicate is a re-delivery across a restart with the same event id.
 *
 * A writer thread commits a steady stream of transactions into oehdr (single- and multi-row,
 * one statement or several; each row's hdamt is its version, so the database itself records
 * which versions committed). Siphon is killed 5 times at seeded random moments over ~20 s
 * (mostly mid-stream, sometimes while it is still starting; rerun a failure with
 * TH_SEED=<seed>), restarted after a random short pause, and finally
 * stopped with SIGTERM. The consumer runs all along; th_collector checks the rules listed in
 * harness.h as messages arrive.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_check.h"

#define KILLS 5

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

static void test_crash_no_loss(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    unsigned seed = th_seed();
    srand(seed);
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);

    th_log("start siphon and a writer (30 rows, 1-5 rows per transaction)");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_writer_opts_t wo = {.nkeys = 30, .max_rows = 5, .pause_ms = 4, .seed = seed};
    fx->w = th_writer_start(env->pg, &wo);
    assert_non_null(fx->w);

    for (int kill_no = 1; kill_no <= KILLS; kill_no++) {
        /* mostly mid-stream, sometimes while it is still connecting and catching up */
        int run_ms = rand() % 5 == 0 ? 200 + rand() % 600 : 2000 + rand() % 2500;
        IT_CHECK(env, th_fx_pump(fx, run_ms) == 0, "delivery check failed (see above)");
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited on its own (code %d)",
                 th_proc_exit_code(env->siphon));
        th_log("kill %d/%d: SIGKILL siphon after %d ms (writer has committed %ld transactions, "
               "%d messages consumed)",
               kill_no, KILLS, run_ms, th_writer_txns(fx->w), fx->msgs.n);
        th_collector_restart(fx->col);
        int code = th_env_siphon_stop(env, SIGKILL, 10000);
        IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
        th_sleep_ms(rand() % 700);
        IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    }

    th_log("let the last run stream for 2 s, then stop the writer");
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "delivery check failed (see above)");
    IT_CHECK(env, th_writer_stop(fx->w) == 0, "the writer failed");
    long txns = th_writer_txns(fx->w);
    long versions = 0;
    for (int k = 0; k < th_writer_nkeys(fx->w); k++)
        versions += th_writer_version(fx->w, k);
    th_log("writer committed %ld transactions, %ld row versions; waiting for all of them",
           txns, versions);
    IT_CHECK(env, txns > 200, "too few transactions committed (%ld) to prove anything", txns);
    IT_CHECK(env,
             th_collect_until_complete(fx->cons, &fx->msgs, fx->col, fx->w, env->siphon,
                                       40000) == 0,
             "not every committed change arrived in order (see above)");

    th_log("SIGTERM the last run: exit 0, and nothing unexpected after");
    th_collector_restart(fx->col);
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    IT_CHECK(env, th_fx_pump(fx, 500) == 0, "delivery check failed (see above)");

    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("checked %ld messages: %ld distinct changes, %ld re-deliveries after %d kills",
           cs.messages, cs.events, cs.duplicates, KILLS);
    IT_CHECK(env, cs.events == versions, "%ld distinct changes arrived, %ld committed",
             cs.events, versions);
    IT_CHECK(env, cs.foreign == 0, "%ld messages for rows the writer never touched",
             cs.foreign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_no_loss, setup, teardown),
    };
    return cmocka_run_group_tests_name("0002-crash-no-loss", tests, NULL, NULL);
}
