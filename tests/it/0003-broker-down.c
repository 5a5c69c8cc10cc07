/*
 * 0003-broker-down - every mock broker is set down for a few seconds while transactions keep
 * committing. While they are down nothing can be delivered, so neither the offsets file nor the
 * slot's confirmed_flush_lsn may move past the WAL position at which they went down; after they
 * come back, everything committed arrives (in order, at least once) and the acknowledged
 * position moves on past the outage.
 */
#include <signal.h>
#include <stdint.h>
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

static void test_broker_down(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);
    /* come back quickly once the brokers are up again (the default backoff is up to 10 s) */
    env->conf.extra_props = "reconnect.backoff.max.ms: \"500\"\n";
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not rewrite siphon.yaml");

    th_log("start siphon and a writer; stream for 2 s");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_writer_opts_t wo = {.nkeys = 20, .max_rows = 4, .pause_ms = 5, .seed = 3};
    fx->w = th_writer_start(env->pg, &wo);
    assert_non_null(fx->w);
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "delivery check failed (see above)");
    int before_down = fx->msgs.n;
    IT_CHECK(env, before_down > 0, "nothing arrived in the first 2 s");

    th_log("all brokers down for 4 s; the writer keeps committing");
    IT_CHECK(env, th_kafka_broker_down(env->kafka, -1) == 0, "could not set the brokers down");
    uint64_t down_lsn = 0;
    IT_CHECK(env, th_pg_current_lsn(env->pg, &down_lsn) == 0, "no current LSN");
    long txns_at_down = th_writer_txns(fx->w);
    char lb[32];
    th_lsn_format(down_lsn, lb, sizeof(lb));
    uint64_t max_slot = 0, max_file = 0;
    int samples = 0;
    int64_t until = th_now_ms() + 4000;
    while (th_now_ms() < until) {
        uint64_t slot = 0, file = 0;
        if (th_pg_slot_confirmed(env->pg, "siphon_it", &slot) == 0 && slot > max_slot)
            max_slot = slot;
        if (th_offsets_lsn(env->offsets_path, &file) == 0 && file > max_file)
            max_file = file;
        samples++;
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited while the brokers were down "
                                                    "(code %d)", th_proc_exit_code(env->siphon));
        th_sleep_ms(100);
    }
    long txns_down = th_writer_txns(fx->w) - txns_at_down;
    char ms[32], mf[32];
    th_lsn_format(max_slot, ms, sizeof(ms));
    th_lsn_format(max_file, mf, sizeof(mf));
    th_log("  %d samples while down: slot confirmed at most %s, offsets file at most %s (down at "
           "%s); %ld transactions committed meanwhile", samples, ms, mf, lb, txns_down);
    IT_CHECK(env, txns_down > 50, "only %ld transactions committed while the brokers were down",
             txns_down);

    th_log("brokers up; stream 2 s more, stop the writer, everything must arrive");
    IT_CHECK(env, th_kafka_broker_up(env->kafka, -1) == 0, "could not set the brokers up");
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "delivery check failed (see above)");
    IT_CHECK(env, th_writer_stop(fx->w) == 0, "the writer failed");
    IT_CHECK(env,
             th_collect_until_complete(fx->cons, &fx->msgs, fx->col, fx->w, env->siphon,
                                       40000) == 0,
             "not every committed change arrived after the brokers came back (see above)");

    th_log("nothing committed after the brokers went down was acknowledged while they were down");
    /* The first transaction whose commit record was written after the brokers went down: its
     * commit LSN c >= down_lsn, its position c + 1. It could not be delivered before they came
     * back, so no acknowledgement made meanwhile may reach its position. */
    uint64_t first_after = UINT64_MAX;
    for (int i = 0; i < fx->msgs.n; i++) {
        th_event_t ev;
        IT_CHECK(env, th_decode(env->dec, &fx->msgs.v[i], &ev) == 0, "decode failed");
        char buf[64];
        uint64_t pos;
        if (ev.value && th_lsn_parse(th_json_text(ev.value, "source.pos", buf, sizeof(buf)),
                                     &pos) == 0 && pos > down_lsn && pos < first_after)
            first_after = pos;
        th_event_clear(&ev);
    }
    IT_CHECK(env, first_after != UINT64_MAX, "no event committed after the brokers went down");
    char fa[32];
    th_lsn_format(first_after, fa, sizeof(fa));
    IT_CHECK(env, max_slot < first_after,
             "while the brokers were down the slot confirmed %s, covering the transaction at %s "
             "that could not have been delivered", ms, fa);
    IT_CHECK(env, max_file < first_after,
             "while the brokers were down the offsets file stored %s, covering the transaction "
             "at %s that could not have been delivered", mf, fa);
    th_log("  first position after the outage %s > %s and %s", fa, ms, mf);

    th_log("the acknowledged position moves past the outage");
    uint64_t slot = 0, file = 0;
    int64_t deadline = th_now_ms() + 10000;
    while (th_now_ms() < deadline) {
        th_pg_slot_confirmed(env->pg, "siphon_it", &slot);
        th_offsets_lsn(env->offsets_path, &file);
        if (slot > down_lsn && file > down_lsn)
            break;
        th_sleep_ms(100);
    }
    char a[32], b[32];
    th_lsn_format(slot, a, sizeof(a));
    th_lsn_format(file, b, sizeof(b));
    IT_CHECK(env, slot > down_lsn && file > down_lsn,
             "after recovery slot %s / offsets %s did not pass %s", a, b, lb);

    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("checked %ld messages: %ld distinct changes, %ld duplicates", cs.messages, cs.events,
           cs.duplicates);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_down, setup, teardown),
    };
    return cmocka_run_group_tests_name("0003-broker-down", tests, NULL, NULL);
}
