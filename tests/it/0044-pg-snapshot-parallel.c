/*
 * 0044-pg-snapshot-parallel - snapshot_connections reads several tables at once.
 *
 * Three tables of the fixture's shape (public.oehdr, public.oehdr_b, public.oehdr_c, 1500 rows
 * each) are mapped to three entities (the fixture's mapping and schema, copied under other
 * names). With snapshot_connections: 3 and chunks of 50 rows, every row arrives once as 'r', and
 * the tables were read at the same time: the spans of time in which each table's 'r' events
 * were produced (the envelope's ts_us) overlap pairwise. The same run with
 * snapshot_connections: 1 reads one table after the other: the spans do not overlap, which
 * shows the check can tell the two apart.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "0040-pg-snapshot.h"

#define NROWS 1500
#define NT 3

static const char *tables[NT] = {"oehdr", "oehdr_b", "oehdr_c"};
static const char *entities[NT] = {"sales_order", "sales_order_b", "sales_order_c"};

/* Replace every `from` in text by `to` (caller frees). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t n = 0, fl = strlen(from), tl = strlen(to);
    for (const char *p = strstr(text, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(text) + n * (tl > fl ? tl - fl : 0) + 1), *w = out;
    assert_non_null(out);
    for (const char *p = text, *q; *p; p = q + fl) {
        if (!(q = strstr(p, from))) {
            strcpy(w, p);
            return out;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, to, tl);
        w += tl;
    }
    *w = '\0';
    return out;
}

/* Mappings and schemas for the three tables in dir; the env's config and decoder use them. */
static void three_tables(th_env_t *env)
{
    static char mdir[4096], sdir[4096]; /* the config borrows them until the test ends */
    snprintf(mdir, sizeof(mdir), "%s/mappings", env->dir);
    snprintf(sdir, sizeof(sdir), "%s/schemas", env->dir);
    char *fm = th_path(th_source_dir(), "tests/it/fixtures/orders-basic/mappings/sales_order.yaml");
    char *fs = th_path(th_source_dir(),
                       "tests/it/fixtures/orders-basic/schemas/sales_order.v1.avsc");
    char *mtext = th_read_file(fm, NULL, 0), *stext = th_read_file(fs, NULL, 0);
    IT_CHECK(env, mtext && stext, "could not read the fixture's mapping and schema");
    IT_CHECK(env, mkdir(mdir, 0700) == 0 && mkdir(sdir, 0700) == 0, "could not make folders");
    for (int i = 0; i < NT; i++) {
        char *tname = th_strf("public.%s", tables[i]), *ename = th_strf("entity: %s", entities[i]);
        char *rname = th_strf("\"name\": \"SalesOrder%d\"", i);
        char *m1 = replace_all(mtext, "public.oehdr", tname);
        char *m2 = replace_all(m1, "entity: sales_order", ename);
        char *s1 = replace_all(stext, "\"name\": \"SalesOrder\"", rname);
        char *mp = th_strf("%s/%s.yaml", mdir, entities[i]);
        char *sp = th_strf("%s/%s.v1.avsc", sdir, entities[i]);
        IT_CHECK(env, th_write_file(mp, m2) == 0 && th_write_file(sp, s1) == 0,
                 "could not write the mapping of %s", tables[i]);
        if (i > 0) {
            IT_CHECK(env, th_pg_exec(env->pg, "CREATE TABLE public.%s (LIKE public.oehdr "
                                              "INCLUDING ALL)", tables[i]) == 0,
                     "could not create %s", tables[i]);
            char *topic = th_strf("it.%s.v1", entities[i]);
            IT_CHECK(env, th_kafka_create_topic(env->kafka, topic, 4) == 0, "no topic %s", topic);
            free(topic);
        }
        char *qt = th_strf("public.%s", tables[i]);
        IT_CHECK(env, snap_load(env, qt, 1, NROWS, 5, 1) == 0, "could not load %s", tables[i]);
        free(qt);
        free(tname), free(ename), free(rname), free(m1), free(m2), free(s1), free(mp), free(sp);
    }
    th_decoder_destroy(env->dec);
    env->dec = th_decoder_new(mdir, sdir);
    IT_CHECK(env, env->dec != NULL, "could not load the three mappings");
    env->conf.mappings_dir = mdir;
    env->conf.schemas_dir = sdir;
    free(fm), free(fs), free(mtext), free(stext);
}

/* Run a snapshot of the three tables with n connections; per table, the first and last ts_us
 * (ISO text, which orders as time does) of its 'r' events. */
static void snapshot_spans(th_fx_t *fx, int nconn, char first[NT][64], char last[NT][64])
{
    th_env_t *env = fx->env;
    char extra[128];
    snprintf(extra, sizeof(extra), "snapshot: initial_only\nsnapshot_chunk_rows: 50\n"
                                   "snapshot_connections: %d\n", nconn);
    env->conf.extra_source = extra;
    IT_CHECK(env, th_env_write_conf(env) == 0, "could not write the config");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_proc_wait(env->siphon, 60000) && th_proc_exit_code(env->siphon) == 0,
             "siphon did not finish its snapshot (exit %d)", th_proc_exit_code(env->siphon));
    char *want = th_strf("on %d connection(s)", nconn);
    IT_CHECK(env, th_file_contains(th_proc_log_path(env->siphon), want), "log lacks \"%s\"", want);
    free(want);
    for (int i = 0; i < NT; i++) {
        char *topic = th_strf("it.%s.v1", entities[i]);
        th_consumer_t *cons = th_consumer_new(env->kafka, topic);
        th_msgs_t msgs = {0};
        IT_CHECK(env, cons != NULL, "no consumer for %s", topic);
        th_env_consume(env, cons, &msgs, NROWS, 30000);
        snap_consume_quiet(cons, &msgs, 500, 5000);
        IT_CHECK(env, msgs.n == NROWS, "%s: %d events, expected %d", topic, msgs.n, NROWS);
        char *seen = calloc(NROWS + 1, 1);
        first[i][0] = last[i][0] = '\0';
        for (int j = 0; j < msgs.n; j++) {
            th_event_t ev = {0};
            char ts[64];
            IT_CHECK(env, th_decode(env->dec, &msgs.v[j], &ev) == 0, "%s: undecodable", topic);
            IT_CHECK(env, ev.op == 'r', "%s: event '%c', not 'r'", topic, ev.op);
            th_json_text(ev.value, "ts_us", ts, sizeof(ts));
            if (!first[i][0] || strcmp(ts, first[i]) < 0)
                snprintf(first[i], 64, "%s", ts);
            if (strcmp(ts, last[i]) > 0)
                snprintf(last[i], 64, "%s", ts);
            char buf[64];
            int n = -1;
            const char *ordn = th_decoder_field(env->dec, entities[i], "hdordn");
            sscanf(th_json_text(ev.key, ordn, buf, sizeof(buf)), "S%d", &n);
            IT_CHECK(env, n >= 1 && n <= NROWS && !seen[n], "%s: row %d twice or unknown", topic,
                     n);
            seen[n] = 1;
            th_event_clear(&ev);
        }
        th_log("%d connection(s): %s read from %s to %s", nconn, tables[i], first[i], last[i]);
        free(seen);
        th_msgs_free(&msgs);
        th_consumer_destroy(cons);
        free(topic);
    }
}

/* 1 when every two spans overlap. */
static int overlap(char first[NT][64], char last[NT][64])
{
    for (int a = 0; a < NT; a++)
        for (int b = a + 1; b < NT; b++)
            if (strcmp(first[a], last[b]) > 0 || strcmp(first[b], last[a]) > 0)
                return 0;
    return 1;
}

static void test_parallel(void **state)
{
    th_fx_t *fx = *state;
    char first[NT][64], last[NT][64];
    three_tables(fx->env);
    snapshot_spans(fx, 3, first, last);
    IT_CHECK(fx->env, overlap(first, last),
             "with 3 connections the tables were not read at the same time");
}

static void test_sequential(void **state)
{
    th_fx_t *fx = *state;
    char first[NT][64], last[NT][64];
    three_tables(fx->env);
    snapshot_spans(fx, 1, first, last);
    IT_CHECK(fx->env, !overlap(first, last),
             "with 1 connection the tables' reads overlap: the check cannot tell");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parallel, snap_setup, snap_teardown),
        cmocka_unit_test_setup_teardown(test_sequential, snap_setup, snap_teardown),
    };
    return cmocka_run_group_tests_name("0044-pg-snapshot-parallel", tests, NULL, NULL);
}
