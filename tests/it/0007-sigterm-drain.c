/*
 * 0007-sigterm-drain - a clean stop in the middle of a stream. SIGTERM while a writer commits:
 * siphon drains what is in flight and exits 0; the offsets file then holds the acknowledged
 * position P, the slot confirmed the same, and P covers everything the run delivered (except at
 * most the transaction it was cut in). A restart re-delivers nothing at or before P (every
 * message of the second run belongs to a transaction after P) and skips nothing: in the end
 * every committed version has arrived in order. The second run is stopped with SIGINT.
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

/* source.pos of message i (0 for a tombstone). */
static uint64_t pos_of(th_env_t *env, const th_msg_t *m)
{
    th_event_t ev;
    IT_CHECK(env, th_decode(env->dec, m, &ev) == 0, "decode failed");
    uint64_t pos = 0;
    char buf[64];
    if (ev.value)
        IT_CHECK(env, th_lsn_parse(th_json_text(ev.value, "source.pos", buf, sizeof(buf)),
                                   &pos) == 0, "source.pos \"%s\" is not an LSN", buf);
    th_event_clear(&ev);
    return pos;
}

static void test_sigterm_drain(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);

    th_log("start siphon and a writer; stream for 3 s");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    th_writer_opts_t wo = {.nkeys = 20, .max_rows = 4, .pause_ms = 3, .seed = 7};
    fx->w = th_writer_start(env->pg, &wo);
    assert_non_null(fx->w);
    IT_CHECK(env, th_fx_pump(fx, 3000) == 0, "delivery check failed (see above)");

    th_log("SIGTERM while the writer keeps committing: exit 0");
    th_collector_restart(fx->col);
    int64_t t0 = th_now_ms();
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    th_log("  exited %lld ms after the signal", (long long)(th_now_ms() - t0));
    IT_CHECK(env, th_fx_pump(fx, 1500) == 0, "delivery check failed (see above)");
    int run1 = fx->msgs.n;

    uint64_t p = 0, s = 0;
    IT_CHECK(env, th_offsets_lsn(env->offsets_path, &p) == 0, "no position in %s",
             env->offsets_path);
    IT_CHECK(env, th_pg_slot_confirmed(env->pg, "siphon_it", &s) == 0, "no slot");
    char ptxt[32], stxt[32];
    th_lsn_format(p, ptxt, sizeof(ptxt));
    th_lsn_format(s, stxt, sizeof(stxt));
    th_log("offsets file holds %s, the slot confirmed %s, %d messages delivered", ptxt, stxt,
           run1);
    IT_CHECK(env, s == p, "the slot confirmed %s but the offsets file holds %s: the final "
                          "acknowledgement did not reach both", stxt, ptxt);

    /* Everything delivered, except the transaction the stop may have cut, is acknowledged. */
    uint64_t top = 0, second = 0;
    for (int i = 0; i < run1; i++) {
        uint64_t pos = pos_of(env, &fx->msgs.v[i]);
        if (pos > top) {
            second = top;
            top = pos;
        } else if (pos < top && pos > second) {
            second = pos;
        }
    }
    char toptxt[32], sectxt[32];
    th_lsn_format(top, toptxt, sizeof(toptxt));
    th_lsn_format(second, sectxt, sizeof(sectxt));
    th_log("  delivered transactions up to %s (the one before it: %s)", toptxt, sectxt);
    IT_CHECK(env, p >= second, "the offsets file holds %s, behind %s whose events were all "
                               "delivered before the drain ended", ptxt, sectxt);

    th_log("restart: nothing at or before %s is delivered again, nothing is skipped", ptxt);
    th_sleep_ms(500);
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    IT_CHECK(env, th_fx_pump(fx, 2500) == 0, "delivery check failed (see above)");
    IT_CHECK(env, th_writer_stop(fx->w) == 0, "the writer failed");
    IT_CHECK(env,
             th_collect_until_complete(fx->cons, &fx->msgs, fx->col, fx->w, env->siphon,
                                       40000) == 0,
             "changes were skipped across the clean restart (see above)");
    int redelivered = 0;
    for (int i = run1; i < fx->msgs.n; i++) {
        if (!fx->msgs.v[i].value)
            continue;
        uint64_t pos = pos_of(env, &fx->msgs.v[i]);
        char t[32];
        th_lsn_format(pos, t, sizeof(t));
        IT_CHECK(env, pos > p, "after the restart, message p%d@%lld of the transaction at %s "
                               "was delivered although %s was acknowledged",
                 fx->msgs.v[i].partition, (long long)fx->msgs.v[i].offset, t, ptxt);
        redelivered += pos <= top;
    }
    th_log("  %d messages in the second run, %d of them re-deliveries of the cut transaction",
           fx->msgs.n - run1, redelivered);

    th_log("SIGINT stops the second run cleanly too");
    th_collector_restart(fx->col);
    code = th_env_siphon_stop(env, SIGINT, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGINT", code);
    uint64_t p2 = 0;
    IT_CHECK(env, th_offsets_lsn(env->offsets_path, &p2) == 0 && p2 > p,
             "the offsets file did not move forward in the second run");
    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("checked %ld messages: %ld distinct changes, %ld re-deliveries", cs.messages,
           cs.events, cs.duplicates);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_drain, setup, teardown),
    };
    return cmocka_run_group_tests_name("0007-sigterm-drain", tests, NULL, NULL);
}
