/*
 * 0102-mysql-crash-no-loss - SIGKILL siphon (mysql source) at random instants while
 * transactions commit into MariaDB; restart it each time; at the end every committed change
 * has arrived at least once, per-key order holds, and every duplicate is a re-delivery across
 * a restart with the same event id (ids come from the transaction's GTID, so a re-read
 * transaction gets the same ones).
 *
 * The MariaDB twin of 0002: a writer thread (th_my_writer) commits single- and multi-row
 * transactions into public.oehdr, each row's hdamt holding its version; th_collector checks
 * the delivery rules as messages arrive. Siphon is killed 4 times at seeded random moments
 * (rerun a failure with TH_SEED=<seed>), restarted after a random short pause, and finally
 * stopped with SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_check.h"

#define KILLS 4

typedef struct state {
    th_my_t *my;
    th_fx_t fx;          /* env, consumer, collector, messages (the writer is below) */
    th_my_writer_t *w;
} state_t;

static int setup(void **state)
{
    state_t *s = calloc(1, sizeof(*s));
    *state = s;
    if (!(s->my = th_my_start(NULL)) || th_my_exec(s->my, "%s", th_my_oehdr_ddl()) != 0)
        return -1;
    th_my_conf_t conf = {.server_id = 4302, .heartbeat_ms = 1000};
    s->fx.env = th_my_env_new(s->my, &conf);
    return s->fx.env ? 0 : -1;
}

static int teardown(void **state)
{
    state_t *s = *state;
    if (!s)
        return 0;
    th_my_writer_destroy(s->w);
    th_collector_destroy(s->fx.col);
    th_consumer_destroy(s->fx.cons);
    th_msgs_free(&s->fx.msgs);
    th_env_destroy(s->fx.env);
    th_my_destroy(s->my);
    free(s);
    return 0;
}

static long total_versions(th_my_writer_t *w)
{
    long v = 0;
    for (int k = 0; k < th_my_writer_nkeys(w); k++)
        v += th_my_writer_version(w, k);
    return v;
}

static void test_crash_no_loss(void **state)
{
    state_t *s = *state;
    th_fx_t *fx = &s->fx;
    th_env_t *env = fx->env;
    unsigned seed = th_seed();
    srand(seed);
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);

    th_log("start siphon and a writer (30 rows, 1-5 rows per transaction)");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_my_env_wait_streaming(env, s->my, 30000) == 0, "siphon did not stream");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_writer_opts_t wo = {.nkeys = 30, .max_rows = 5, .pause_ms = 3, .seed = seed};
    s->w = th_my_writer_start(s->my, &wo);
    assert_non_null(s->w);

    for (int kill_no = 1; kill_no <= KILLS; kill_no++) {
        int run_ms = rand() % 5 == 0 ? 150 + rand() % 500 : 1500 + rand() % 2000;
        IT_CHECK(env, th_fx_pump(fx, run_ms) == 0, "delivery check failed (see above)");
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited on its own (code %d)",
                 th_proc_exit_code(env->siphon));
        th_log("kill %d/%d: SIGKILL siphon after %d ms (writer has committed %ld transactions, "
               "%d messages consumed)",
               kill_no, KILLS, run_ms, th_my_writer_txns(s->w), fx->msgs.n);
        th_collector_restart(fx->col);
        int code = th_env_siphon_stop(env, SIGKILL, 10000);
        IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
        th_sleep_ms(rand() % 600);
        IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    }

    th_log("let the last run stream for 1.5 s, then stop the writer");
    IT_CHECK(env, th_fx_pump(fx, 1500) == 0, "delivery check failed (see above)");
    IT_CHECK(env, th_my_writer_stop(s->w) == 0, "the writer failed");
    long txns = th_my_writer_txns(s->w), versions = total_versions(s->w);
    th_log("writer committed %ld transactions, %ld row versions; waiting for all of them", txns,
           versions);
    IT_CHECK(env, txns > 200, "too few transactions committed (%ld) to prove anything", txns);
    int64_t until = th_now_ms() + 40000;
    while (th_collector_stats(fx->col).events < versions && th_now_ms() < until)
        IT_CHECK(env, th_fx_pump(fx, 200) == 0, "delivery check failed (see above)");
    th_collector_stats_t cs = th_collector_stats(fx->col);
    IT_CHECK(env, cs.events == versions,
             "%ld distinct changes arrived in order, %ld were committed: changes were lost",
             cs.events, versions);

    th_log("SIGTERM the last run: exit 0, and nothing unexpected after");
    th_collector_restart(fx->col);
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    IT_CHECK(env, th_fx_pump(fx, 500) == 0, "delivery check failed (see above)");
    cs = th_collector_stats(fx->col);
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
    return cmocka_run_group_tests_name("0102-mysql-crash-no-loss", tests, NULL, NULL);
}
