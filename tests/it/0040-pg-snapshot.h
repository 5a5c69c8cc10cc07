/*
 * 0040-pg-snapshot.h - what the snapshot tests (tests/it/0040..0049) share: the fixture's
 * setup and teardown, rows of the fixture's order table numbered "S<n>", reading an event's row
 * number and amount back, running `siphon snapshot`, and consuming until the topic is quiet.
 *
 * Header-only (static inline), included by each test after it_check.h.
 */
#ifndef SIPHON_IT_0040_PG_SNAPSHOT_H
#define SIPHON_IT_0040_PG_SNAPSHOT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

static inline int snap_setup(void **state)
{
    th_fx_t *fx = th_fx_new();
    *state = fx;
    return fx ? 0 : -1;
}

static inline int snap_teardown(void **state)
{
    th_fx_destroy(*state);
    return 0;
}

/* The order number of a snapshot-test row ("S00042" -> 42), or -1 for other rows. */
static inline int snap_row_no(th_env_t *env, const th_event_t *ev)
{
    char buf[64];
    int n = -1;
    const char *ordn = th_decoder_field(env->dec, "sales_order", "hdordn");
    if (!ev->key || sscanf(th_json_text(ev->key, ordn, buf, sizeof(buf)), "S%d", &n) != 1)
        return -1;
    return n;
}

/* The amount of an event's after image (0 when it has none). */
static inline double snap_amount(th_env_t *env, const th_event_t *ev)
{
    char path[128], buf[64];
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    if (!ev->value || !amount)
        return 0;
    snprintf(path, sizeof(path), "after.%s", amount);
    return atof(th_json_text(ev->value, path, buf, sizeof(buf)));
}

/* Insert rows S<from>..S<to> (company '02', key width digits) with this amount into `table`
 * (the fixture's order table or a copy of it). 0 or -1. */
static inline int snap_load(th_env_t *env, const char *table, int from, int to, int width,
                            int amount)
{
    return th_pg_exec(env->pg,
                      "INSERT INTO %s (hdcomp, hdordn, hdcust, hdodat, hdamt) "
                      "SELECT '02', 'S' || lpad(g::text, %d, '0'), 'C1', date '2024-01-01', %d "
                      "FROM generate_series(%d, %d) g; ANALYZE %s",
                      table, width, amount, from, to, table);
}

/* Load rows S1..S<nrows> (amount 1), write the config with these `source:` keys, start
 * Siphon, wait until it streams, and open the consumer of the env's topic. */
static inline void snap_stream(th_fx_t *fx, int nrows, int width, const char *source_keys)
{
    th_env_t *env = fx->env;
    IT_CHECK(env, snap_load(env, "public.oehdr", 1, nrows, width, 1) == 0, "could not load rows");
    env->conf.extra_source = source_keys;
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not stream");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
}

/* `siphon snapshot --config <env's> --table table [--wait]`; its exit code (-1 when it did not
 * finish within timeout_ms); *err gets its stderr (caller frees). */
static inline int snap_cli(th_env_t *env, const char *table, int wait, int timeout_ms, char **err)
{
    char *const argv[] = {(char *)th_siphon_bin(), "snapshot", "--config", env->config_path,
                          "--table", (char *)table, wait ? "--wait" : NULL, NULL};
    int code = -1;
    *err = NULL;
    if (th_run(argv, NULL, timeout_ms, &code, NULL, err) < 0)
        return -1;
    return code;
}

/* Poll until no message arrived for quiet_ms (or timeout_ms passed). Returns msgs->n. */
static inline int snap_consume_quiet(th_consumer_t *cons, th_msgs_t *msgs, int quiet_ms,
                                     int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        int before = msgs->n;
        if (th_consumer_poll(cons, msgs, 0, quiet_ms) < 0)
            return -1;
        if (msgs->n == before || th_now_ms() >= deadline)
            return msgs->n;
    }
}

#endif
