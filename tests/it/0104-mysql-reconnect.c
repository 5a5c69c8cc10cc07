/*
 * 0104-mysql-reconnect - the replication connection lost while transactions commit into
 * MariaDB, and nothing lost: the binlog dump thread KILLed on the server (siphon sees the
 * connection drop, reconnects with backoff and resumes after the last transaction it read),
 * then the server frozen with SIGSTOP for longer than 3 heartbeat periods (a silent dead peer:
 * only the missing heartbeats reveal it) and thawed. An idle stream stays up: heartbeats
 * arrive, so a quiet database is not mistaken for a dead one.
 *
 * A writer thread commits versioned rows all along; th_collector checks order and
 * completeness; siphon keeps running (no restart), so no event may arrive twice.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

typedef struct state {
    th_my_t *my;
    th_fx_t fx;
    th_my_writer_t *w;
} state_t;

static int setup(void **state)
{
    state_t *s = calloc(1, sizeof(*s));
    *state = s;
    if (!(s->my = th_my_start(NULL)) || th_my_exec(s->my, "%s", th_my_oehdr_ddl()) != 0)
        return -1;
    th_my_conf_t conf = {.server_id = 4304, .heartbeat_ms = 500};
    /* a short connect timeout so a frozen server is noticed quickly on reconnect too */
    char *ci = th_strf("%s connect_timeout=2", th_my_conninfo(s->my));
    conf.conninfo = ci;
    s->fx.env = th_my_env_new(s->my, &conf);
    free(ci);
    return s->fx.env ? 0 : -1;
}

static int teardown(void **state)
{
    state_t *s = *state;
    if (!s)
        return 0;
    if (s->my)
        th_my_signal(s->my, SIGCONT);
    th_my_writer_destroy(s->w);
    th_collector_destroy(s->fx.col);
    th_consumer_destroy(s->fx.cons);
    th_msgs_free(&s->fx.msgs);
    th_env_destroy(s->fx.env);
    th_my_destroy(s->my);
    free(s);
    return 0;
}

static int count_in_log(th_proc_t *p, const char *needle)
{
    char *log = th_read_file(th_proc_log_path(p), NULL, 1);
    int n = 0;
    for (const char *q = log; q && (q = strstr(q, needle)); q++)
        n++;
    free(log);
    return n;
}

static void test_reconnect_no_loss(void **state)
{
    state_t *s = *state;
    th_fx_t *fx = &s->fx;
    th_env_t *env = fx->env;
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_my_env_wait_streaming(env, s->my, 30000) == 0, "siphon did not stream");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);

    th_log("idle for 2 s with 500 ms heartbeats: the connection stays up");
    IT_CHECK(env, th_fx_pump(fx, 2000) == 0, "pump");
    IT_CHECK(env, count_in_log(env->siphon, "reconnecting") == 0,
             "an idle stream was taken for a dead one");

    th_writer_opts_t wo = {.nkeys = 20, .max_rows = 4, .pause_ms = 3, .seed = th_seed()};
    s->w = th_my_writer_start(s->my, &wo);
    assert_non_null(s->w);
    IT_CHECK(env, th_fx_pump(fx, 1000) == 0, "pump");

    th_log("KILL the binlog dump thread twice while the writer runs");
    for (int i = 0; i < 2; i++) {
        int killed = th_my_kill_dump_threads(s->my);
        IT_CHECK(env, killed == 1, "expected to kill 1 dump thread, killed %d", killed);
        IT_CHECK(env, th_fx_pump(fx, 1500) == 0, "delivery check failed (see above)");
        IT_CHECK(env, th_my_dump_threads(s->my) == 1, "siphon did not reconnect");
    }
    IT_CHECK(env, count_in_log(env->siphon, "reconnecting") >= 2,
             "siphon should have logged its reconnections");

    th_log("freeze the server (SIGSTOP) for 3 s: missing heartbeats reveal the dead connection");
    th_my_writer_pause(s->w);
    int before = count_in_log(env->siphon, "reconnecting");
    th_my_signal(s->my, SIGSTOP);
    th_sleep_ms(3000);
    IT_CHECK(env, count_in_log(env->siphon, "reconnecting") > before,
             "no reconnect after 3 s of silence (3 heartbeat periods are 1.5 s)");
    IT_CHECK(env, th_proc_running(env->siphon), "siphon must keep running");
    th_my_signal(s->my, SIGCONT);
    th_my_writer_resume(s->w);
    IT_CHECK(env, th_fx_pump(fx, 2500) == 0, "delivery check failed (see above)");

    IT_CHECK(env, th_my_writer_stop(s->w) == 0, "the writer failed");
    long versions = 0;
    for (int k = 0; k < th_my_writer_nkeys(s->w); k++)
        versions += th_my_writer_version(s->w, k);
    int64_t until = th_now_ms() + 30000;
    while (th_collector_stats(fx->col).events < versions && th_now_ms() < until)
        IT_CHECK(env, th_fx_pump(fx, 200) == 0, "delivery check failed (see above)");
    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("%ld transactions, %ld row versions committed; %ld arrived, %ld duplicates",
           th_my_writer_txns(s->w), versions, cs.events, cs.duplicates);
    IT_CHECK(env, cs.events == versions, "%ld changes arrived in order, %ld committed",
             cs.events, versions);
    IT_CHECK(env, cs.duplicates == 0,
             "%ld duplicates without a restart: a reconnect must resume after what was read",
             cs.duplicates);
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reconnect_no_loss, setup, teardown),
    };
    return cmocka_run_group_tests_name("0104-mysql-reconnect", tests, NULL, NULL);
}
