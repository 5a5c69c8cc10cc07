/*
 * 0004-pg-reconnect - the replication connection goes away under a running siphon: twice by
 * pg_terminate_backend() of the walsender, once by stopping the server for 2 s (so several
 * connection attempts fail). Siphon must reconnect by itself (with backoff, without exiting)
 * and lose nothing: every version the writer committed arrives, in order per key; and since
 * siphon itself never restarted, nothing arrives twice (docs/events.md: "Within one run of
 * Siphon nothing is duplicated"). A second run cuts the connection while a 100,000-row
 * transaction streams (the connector logs that it resumed the transaction) and checks that
 * every row arrived exactly once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Wait until siphon streams again through a new walsender (not old_pid), pumping the consumer
 * meanwhile. Returns how long it took, or -1. */
static int wait_reconnect(th_fx_t *fx, int old_pid, int timeout_ms)
{
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < timeout_ms) {
        if (th_fx_pump(fx, 50) != 0)
            return th_err("siphon exited or a delivery check failed instead of reconnecting");
        int pid = th_pg_streaming_walsender(fx->env->pg);
        if (pid > 0 && pid != old_pid)
            return (int)(th_now_ms() - t0);
    }
    return th_err("siphon did not reconnect within %d ms", timeout_ms);
}

static void test_pg_reconnect(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);

    th_log("start siphon and a writer; stream for 1.5 s");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_writer_opts_t wo = {.nkeys = 20, .max_rows = 4, .pause_ms = 5, .seed = 4};
    fx->w = th_writer_start(env->pg, &wo);
    assert_non_null(fx->w);
    IT_CHECK(env, th_fx_pump(fx, 1500) == 0, "delivery check failed (see above)");

    for (int i = 1; i <= 2; i++) {
        int old_pid = th_pg_streaming_walsender(env->pg);
        IT_CHECK(env, old_pid > 0, "no streaming walsender before termination #%d", i);
        int n = th_pg_terminate_walsenders(env->pg);
        th_log("pg_terminate_backend(walsender %d) #%d: %d terminated; the writer keeps going",
               old_pid, i, n);
        IT_CHECK(env, n == 1, "expected 1 walsender to terminate, found %d", n);
        int ms = wait_reconnect(fx, old_pid, 20000);
        IT_CHECK(env, ms >= 0, "no reconnect after termination #%d (see above)", i);
        th_log("  reconnected after %d ms", ms);
        IT_CHECK(env, th_fx_pump(fx, 1500) == 0, "delivery check failed (see above)");
    }

    th_log("stop the PostgreSQL server (fast shutdown) for 2 s under siphon, then start it");
    long before = th_writer_txns(fx->w);
    IT_CHECK(env, th_pg_stop(env->pg) == 0, "server stop failed");
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "siphon did not survive the server going away");
    IT_CHECK(env, th_pg_start_again(env->pg) == 0, "server start failed");
    int ms = wait_reconnect(fx, 0, 30000);
    IT_CHECK(env, ms >= 0, "no reconnect after the server restart (see above)");
    th_log("  reconnected %d ms after the server was back", ms);
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "delivery check failed (see above)");
    IT_CHECK(env, th_writer_txns(fx->w) > before + 20, "the writer made no progress after the "
                                                       "restart");

    IT_CHECK(env, th_writer_stop(fx->w) == 0, "the writer failed");
    long versions = 0;
    for (int k = 0; k < th_writer_nkeys(fx->w); k++)
        versions += th_writer_version(fx->w, k);
    th_log("writer committed %ld transactions (%ld row versions); waiting for all of them",
           th_writer_txns(fx->w), versions);
    IT_CHECK(env,
             th_collect_until_complete(fx->cons, &fx->msgs, fx->col, fx->w, env->siphon,
                                       40000) == 0,
             "changes were lost across the reconnects (see above)");
    IT_CHECK(env, env->nruns == 1, "siphon was restarted by the test, which it should not need");
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("checked %ld messages: %ld distinct changes, %ld duplicates", cs.messages, cs.events,
           cs.duplicates);
}

/* The connection cut while a 100,000-row transaction streams (once a few thousand of its
 * rows have reached Kafka, so the cut lands inside it; tried again with another transaction
 * should the whole one have arrived first): the connector resumes the transaction where it was
 * cut, so every row arrives exactly once. */
static void test_cut_inside_transaction(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    enum { ROWS = 100000, TRIES = 3 };
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    int resumed = 0, tries = 0;
    while (!resumed && tries < TRIES) {
        int base = fx->msgs.n;
        tries++;
        th_log("transaction #%d of %d rows; the walsender is terminated once some have arrived",
               tries, ROWS);
        IT_CHECK(env, th_pg_exec(env->pg,
                                 "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt) "
                                 "SELECT '01', 'B' || lpad(g::text, 7, '0'), 'K', '2024-01-01', g "
                                 "FROM generate_series(%d, %d) g",
                                 (tries - 1) * ROWS + 1, tries * ROWS) == 0, "insert failed");
        int got = th_env_consume(env, fx->cons, &fx->msgs, base + 2000, 30000);
        IT_CHECK(env, got >= base + 2000, "the transaction does not arrive (%d)", got - base);
        int old_pid = th_pg_streaming_walsender(env->pg);
        IT_CHECK(env, old_pid > 0, "no streaming walsender before the cut");
        IT_CHECK(env, th_pg_terminate_walsenders(env->pg) == 1, "the cut failed");
        int ms = wait_reconnect(fx, old_pid, 20000);
        IT_CHECK(env, ms >= 0, "no reconnect after the cut (see above)");
        got = th_env_consume(env, fx->cons, &fx->msgs, base + ROWS, 60000);
        IT_CHECK(env, got >= base + ROWS, "%d of %d rows arrived", got - base, ROWS);
        char *log = th_read_file(th_proc_log_path(env->siphon), NULL, 1);
        resumed = log && strstr(log, "resuming transaction");
        free(log);
        th_log("  reconnected after %d ms; the cut was %s the transaction", ms,
               resumed ? "inside" : "not inside");
    }
    th_sleep_ms(1500); /* anything sent twice would be right behind */
    th_env_consume(env, fx->cons, &fx->msgs, fx->msgs.n + 1, 500);
    char *seen = calloc((size_t)tries * ROWS + 1, 1);
    assert_non_null(seen);
    int distinct = 0, twice = 0;
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev;
        char buf[64];
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "message %d does not "
                 "decode", i);
        const char *ord = ev.value ? th_json_text(ev.value, "after.order_number", buf,
                                                  sizeof(buf)) : NULL;
        int n = ord && ord[0] == 'B' ? atoi(ord + 1) : 0;
        if (n >= 1 && n <= tries * ROWS) {
            if (seen[n])
                twice++;
            else
                distinct++;
            seen[n] = 1;
        }
        th_event_clear(&ev);
    }
    free(seen);
    th_log("%d messages: %d distinct rows, %d twice", fx->msgs.n, distinct, twice);
    IT_CHECK(env, resumed, "no cut landed inside a transaction in %d tries: the test proved "
             "nothing", tries);
    IT_CHECK(env, distinct == tries * ROWS, "%d of %d rows arrived", distinct, tries * ROWS);
    IT_CHECK(env, twice == 0, "%d rows arrived twice across the cuts", twice);
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_inside_transaction, setup, teardown),
    };
    return cmocka_run_group_tests_name("0004-pg-reconnect", tests, NULL, NULL);
}
