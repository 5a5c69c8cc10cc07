/*
 * 0109-mysql-reconnect-mid-txn - the replication connection cut inside a big MariaDB
 * transaction, and nothing sent twice. One INSERT of 100,000 rows commits; once some (not all)
 * of its rows have reached Kafka, the binlog dump thread is KILLed on the server. Siphon
 * reconnects (it keeps running), reads the transaction again from its start and continues it
 * after the changes it had already sent, so the pipeline sees one unbroken transaction: every
 * row arrives, no event id arrives twice, and each row keeps the event id of its place in the
 * transaction (<GTID>:<index>). Should the whole transaction have been read before the cut (the
 * siphon log says whether the cut fell inside one), another one is tried, up to 3 times.
 *
 * Before the connector resumed cut transactions, the same run re-sent the first part of the
 * cut transaction (a RESET, then the whole transaction again): the duplicate checks below fail
 * then.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

enum { ROWS = 100000, TRIES = 3, INFLIGHT = 2 << 20, FIRST = 1000, PAD = 480 };

typedef struct state {
    th_my_t *my;
    th_fx_t fx;
} state_t;

static int setup(void **state)
{
    state_t *s = calloc(1, sizeof(*s));
    *state = s;
    /* pad: a column no mapping reads, so the binlog of a transaction (~50 MB) is far more
     * than the socket buffers hold: the server cannot have sent all of it when the KILL comes */
    if (!s || !(s->my = th_my_start(NULL)) || th_my_exec(s->my, "%s", th_my_oehdr_ddl()) != 0 ||
        th_my_exec(s->my, "ALTER TABLE public.oehdr ADD COLUMN pad varchar(%d)", PAD) != 0)
        return -1;
    th_my_conf_t conf = {.server_id = 4309, .heartbeat_ms = 1000,
                         .conninfo = th_my_conninfo(s->my)};
    if (!(s->fx.env = th_my_env_new(s->my, &conf)))
        return -1;
    /* Little in flight (pipeline.max_inflight_bytes), so the reader stays close behind what
     * Kafka has: the KILL below then lands while the transaction is still being read. */
    char *text = th_read_file(s->fx.env->config_path, NULL, 0);
    char *more = text ? th_strf("%spipeline:\n  max_inflight_bytes: %d\n", text, INFLIGHT)
                      : NULL;
    int rc = more ? th_write_file(s->fx.env->config_path, more) : -1;
    free(text);
    free(more);
    return rc;
}

static int teardown(void **state)
{
    state_t *s = *state;
    if (!s)
        return 0;
    th_consumer_destroy(s->fx.cons);
    th_msgs_free(&s->fx.msgs);
    th_env_destroy(s->fx.env);
    th_my_destroy(s->my);
    free(s);
    return 0;
}

/* Lines of the run's log holding needle; printed when show is set. */
static int count_in_log(th_proc_t *p, const char *needle, int show)
{
    char *log = th_read_file(th_proc_log_path(p), NULL, 1);
    int n = 0;
    for (const char *q = log; q && (q = strstr(q, needle)); q++) {
        n++;
        if (show) {
            const char *b = q, *e = strchr(q, '\n');
            while (b > log && b[-1] != '\n')
                b--;
            th_log("  siphon: %.*s", (int)(e ? e - b : (long)strlen(b)), b);
        }
    }
    free(log);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What arrived: rows seen (distinct order numbers 'B0000001'...), rows seen more than once,
 * event ids seen more than once, and rows whose event id's index is not the row's place in its
 * transaction. -1 when a message does not decode. */
typedef struct seen {
    int distinct, twice, dup_ids, misplaced;
} seen_t;

static int check_arrivals(th_env_t *env, const th_msgs_t *msgs, int nrows, seen_t *out)
{
    memset(out, 0, sizeof(*out));
    char *rows = calloc((size_t)nrows + 1, 1);
    char **ids = calloc((size_t)msgs->n + 1, sizeof(*ids));
    int nids = 0, rc = 0;
    if (!rows || !ids) {
        rc = -1;
        goto cleanup;
    }
    for (int i = 0; i < msgs->n; i++) {
        th_event_t ev;
        char buf[64];
        if (th_decode(env->dec, &msgs->v[i], &ev) != 0) {
            rc = th_err("message %d does not decode", i);
            goto cleanup;
        }
        const char *ord = ev.value ? th_json_text(ev.value, "after.order_number", buf,
                                                  sizeof(buf)) : NULL;
        int n = ord && ord[0] == 'B' ? atoi(ord + 1) : 0;
        if (n >= 1 && n <= nrows) {
            out->twice += rows[n];
            out->distinct += !rows[n];
            rows[n] = 1;
            /* row n is change (n - 1) % ROWS of its transaction: INSERT ... SELECT from a
             * sequence writes the rows in order */
            const char *colon = ev.event_id ? strrchr(ev.event_id, ':') : NULL;
            if (!colon || strtol(colon + 1, NULL, 10) != (n - 1) % ROWS)
                out->misplaced++;
        }
        if (ev.event_id && !(ids[nids++] = strdup(ev.event_id))) {
            th_event_clear(&ev);
            rc = -1;
            goto cleanup;
        }
        th_event_clear(&ev);
    }
    qsort(ids, (size_t)nids, sizeof(*ids), cmp_str);
    for (int i = 1; i < nids; i++)
        out->dup_ids += strcmp(ids[i - 1], ids[i]) == 0;
cleanup:
    for (int i = 0; ids && i < nids; i++)
        free(ids[i]);
    free(ids);
    free(rows);
    return rc;
}

static void test_cut_inside_transaction(void **state)
{
    state_t *s = *state;
    th_fx_t *fx = &s->fx;
    th_env_t *env = fx->env;
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_my_env_wait_streaming(env, s->my, 30000) == 0, "siphon did not stream");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);

    int inside = 0, tries = 0;
    while (!inside && tries < TRIES) {
        int base = fx->msgs.n;
        tries++;
        th_log("transaction #%d of %d rows; the dump thread is KILLed once some have arrived",
               tries, ROWS);
        IT_CHECK(env, th_my_exec(s->my,
                                 "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, "
                                 "pad) SELECT '01', CONCAT('B', LPAD(seq, 7, '0')), 'K', "
                                 "'2024-01-01', seq, REPEAT('p', %d) FROM public.seq_%d_to_%d",
                                 PAD, (tries - 1) * ROWS + 1, tries * ROWS) == 0,
                 "insert failed");
        int got = th_env_consume(env, fx->cons, &fx->msgs, base + FIRST, 30000);
        IT_CHECK(env, got >= base + FIRST, "the transaction does not arrive (%d)", got - base);
        int lost = count_in_log(env->siphon, "lost inside transaction", 0);
        int streams = count_in_log(env->siphon, "streaming the binlog", 0);
        int killed = th_my_kill_dump_threads(s->my);
        IT_CHECK(env, killed == 1, "expected to kill 1 dump thread, killed %d", killed);
        int64_t t0 = th_now_ms();
        while (count_in_log(env->siphon, "streaming the binlog", 0) == streams &&
               th_now_ms() - t0 < 20000)
            th_env_consume(env, fx->cons, &fx->msgs, INT_MAX, 50);
        IT_CHECK(env, count_in_log(env->siphon, "streaming the binlog", 0) > streams,
                 "siphon did not reconnect within 20 s of the KILL");
        got = th_env_consume(env, fx->cons, &fx->msgs, base + ROWS, 60000);
        IT_CHECK(env, got >= base + ROWS, "%d of %d rows arrived", got - base, ROWS);
        inside = count_in_log(env->siphon, "lost inside transaction", 1) > lost;
        th_log("  reconnected after %lld ms; the cut was %s the transaction",
               (long long)(th_now_ms() - t0), inside ? "inside" : "not inside");
    }
    th_sleep_ms(1500); /* anything sent twice would be right behind */
    th_env_consume(env, fx->cons, &fx->msgs, INT_MAX, 500);

    seen_t sn;
    IT_CHECK(env, check_arrivals(env, &fx->msgs, tries * ROWS, &sn) == 0,
             "could not read what arrived (see above)");
    int resumed = count_in_log(env->siphon, "resuming transaction", 1);
    int dropped = count_in_log(env->siphon, "dropping what was read", 0);
    th_log("%d messages: %d distinct rows, %d rows twice, %d event ids twice, %d rows with "
           "another index; %d resumed, %d dropped transaction(s)",
           fx->msgs.n, sn.distinct, sn.twice, sn.dup_ids, sn.misplaced, resumed, dropped);
    IT_CHECK(env, inside, "no cut landed inside a transaction in %d tries: the test proved "
             "nothing", tries);
    IT_CHECK(env, sn.distinct == tries * ROWS, "%d of %d rows arrived", sn.distinct,
             tries * ROWS);
    IT_CHECK(env, sn.dup_ids == 0 && sn.twice == 0,
             "%d event ids (%d rows) arrived twice: the cut transaction was sent again instead "
             "of being resumed", sn.dup_ids, sn.twice);
    IT_CHECK(env, resumed >= 1 && dropped == 0,
             "the connector should log that it resumed the cut transaction (%d) and dropped "
             "none (%d)", resumed, dropped);
    IT_CHECK(env, sn.misplaced == 0,
             "%d rows have an event id whose index is not their place in the transaction",
             sn.misplaced);
    IT_CHECK(env, env->nruns == 1, "siphon was restarted, which this test must not need");
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_inside_transaction, setup, teardown),
    };
    return cmocka_run_group_tests_name("0109-mysql-reconnect-mid-txn", tests, NULL, NULL);
}
