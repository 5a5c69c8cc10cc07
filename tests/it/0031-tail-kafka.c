/*
 * 0031-tail-kafka - `siphon tail` against the mock Kafka cluster: siphon streams a few oehdr
 * changes (inserts, an update, a delete and its tombstone) to the topic; then tail prints them
 * as one JSON line per message decoded with the config's schemas (--from-beginning), keeps only
 * one key (--key, as JSON and as values joined by '/'), starts near the end (--last), follows
 * new events (--follow) until SIGTERM, reads as a consumer group member (--group), and explains
 * what is missing (no --topic).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

typedef struct lines {
    json_t **v;
    int n;
} lines_t;

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

static void lines_free(lines_t *l)
{
    for (int i = 0; i < l->n; i++)
        json_decref(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Run `siphon tail` with args; parse every stdout line as JSON. Returns the exit code. */
static int run_tail(th_env_t *env, const char *const *args, lines_t *out, char **err_text)
{
    char *argv[32];
    int a = 0;
    argv[a++] = (char *)th_siphon_bin();
    argv[a++] = "tail";
    for (int i = 0; args[i] && a < 31; i++)
        argv[a++] = (char *)args[i];
    argv[a] = NULL;
    char *sout = NULL, *serr = NULL;
    int ec = -1;
    memset(out, 0, sizeof(*out));
    if (th_run(argv, NULL, 60000, &ec, &sout, &serr) != 0)
        ec = -1;
    for (char *p = sout, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        IT_CHECK(env, nl, "a line of siphon tail has no newline: %s", p);
        *nl = '\0';
        json_t *j = json_loads(p, 0, NULL);
        IT_CHECK(env, j, "siphon tail printed a line that is not JSON: %s", p);
        out->v = realloc(out->v, (size_t)(out->n + 1) * sizeof(*out->v));
        out->v[out->n++] = j;
    }
    free(sout);
    if (err_text)
        *err_text = serr;
    else
        free(serr);
    return ec;
}

static const char *str(json_t *j, const char *path)
{
    static char buf[256];
    return th_json_text(j, path, buf, sizeof(buf));
}

static void test_tail_kafka(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;

    th_log("siphon streams 3 inserts, an update and a delete (with its tombstone)");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    IT_CHECK(env,
             th_pg_exec(env->pg,
                        "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdnote) "
                        "VALUES ('01','T000000001','C1','2024-01-31',12.50,'first'),"
                        "('01','T000000002','C2',NULL,7.00,NULL),"
                        "('02','T000000003','C3','2024-02-29',1234567.89,'third');"
                        "UPDATE public.oehdr SET hdstat = 'C' WHERE hdordn = 'T000000002';"
                        "DELETE FROM public.oehdr WHERE hdordn = 'T000000003'") == 0,
             "could not change oehdr");
    fx->cons = th_consumer_new(env->kafka, env->topic);
    assert_non_null(fx->cons);
    IT_CHECK(env, th_env_consume(env, fx->cons, &fx->msgs, 6, 30000) == 6,
             "expected 6 messages on the topic, got %d", fx->msgs.n);

    th_log("--from-beginning: one decoded line per message");
    lines_t l;
    const char *all[] = {"--config", env->config_path, "--topic", env->topic, "--from-beginning",
                         NULL};
    char *err = NULL;
    int ec = run_tail(env, all, &l, &err);
    IT_CHECK(env, ec == 0, "siphon tail exited with %d: %s", ec, err);
    free(err);
    IT_CHECK(env, l.n == 6, "siphon tail printed %d lines, the topic has 6 messages", l.n);
    int tombstones = 0, deletes = 0, found_amount = 0;
    for (int i = 0; i < l.n; i++) {
        json_t *j = l.v[i];
        IT_CHECK(env, !strcmp(str(j, "topic"), env->topic), "line %d: topic %s", i,
                 str(j, "topic"));
        IT_CHECK(env, json_is_integer(json_object_get(j, "partition")) &&
                          json_is_integer(json_object_get(j, "offset")),
                 "line %d has no partition/offset", i);
        IT_CHECK(env, json_is_object(json_object_get(j, "key")), "line %d has no key", i);
        IT_CHECK(env, !json_object_get(j, "error"), "line %d: %s", i, str(j, "error"));
        json_t *ev = json_object_get(j, "event");
        if (json_is_null(ev)) {
            tombstones++;
            IT_CHECK(env, !strcmp(str(j, "key.order_number"), "T000000003"),
                     "the tombstone is for %s", str(j, "key.order_number"));
            continue;
        }
        if (!strcmp(str(j, "event.op"), "d"))
            deletes++;
        if (!strcmp(str(j, "event.after.order_number"), "T000000003"))
            found_amount = !strcmp(str(j, "event.after.total_amount"), "1234567.89") &&
                           !strcmp(str(j, "event.after.order_date"), "2024-02-29");
    }
    IT_CHECK(env, tombstones == 1 && deletes == 1, "%d tombstones, %d deletes", tombstones,
             deletes);
    IT_CHECK(env, found_amount, "the decimal and date of T000000003 did not print as "
                                "\"1234567.89\" and \"2024-02-29\"");
    lines_free(&l);

    th_log("--key: as values joined by '/', and as JSON");
    const char *byval[] = {"--config", env->config_path, "--topic", env->topic,
                           "--from-beginning", "--key", "01/T000000002", NULL};
    ec = run_tail(env, byval, &l, NULL);
    IT_CHECK(env, ec == 0 && l.n == 2, "--key 01/T000000002: exit %d, %d lines (want 2)", ec,
             l.n);
    for (int i = 0; i < l.n; i++)
        IT_CHECK(env, !strcmp(str(l.v[i], "key.order_number"), "T000000002"),
                 "--key printed order %s", str(l.v[i], "key.order_number"));
    lines_free(&l);
    const char *byjson[] = {"--config", env->config_path, "--topic", env->topic,
                            "--from-beginning", "--key",
                            "{\"company\": \"02\", \"order_number\": \"T000000003\"}", NULL};
    ec = run_tail(env, byjson, &l, NULL);
    IT_CHECK(env, ec == 0 && l.n == 3, "--key as JSON: exit %d, %d lines (want 3: c, d, "
             "tombstone)", ec, l.n);
    lines_free(&l);

    th_log("--last 1: the newest message of each non-empty partition");
    int parts[64] = {0}, nonempty = 0;
    for (int i = 0; i < fx->msgs.n; i++)
        if (fx->msgs.v[i].partition < 64 && !parts[fx->msgs.v[i].partition]++)
            nonempty++;
    const char *last[] = {"--config", env->config_path, "--topic", env->topic, "--last", "1",
                          NULL};
    ec = run_tail(env, last, &l, NULL);
    IT_CHECK(env, ec == 0 && l.n == nonempty, "--last 1: exit %d, %d lines (want %d)", ec, l.n,
             nonempty);
    lines_free(&l);

    th_log("--follow prints an event committed after it started, until SIGTERM");
    char *log = th_path(env->dir, "tail-follow.log");
    char *argv[] = {(char *)th_siphon_bin(), "tail", "--config", env->config_path, "--topic",
                    env->topic, "--follow", "--last", "0", NULL};
    th_proc_t *tp = th_proc_spawn(argv, log);
    assert_non_null(tp);
    th_sleep_ms(1500);
    IT_CHECK(env, th_proc_running(tp), "siphon tail --follow exited (code %d)",
             th_proc_exit_code(tp));
    IT_CHECK(env,
             th_pg_exec(env->pg, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                 "VALUES ('03','T000000009','C9',1.00)") == 0,
             "could not insert");
    IT_CHECK(env, th_proc_wait_log(tp, "T000000009", 20000),
             "siphon tail --follow did not print the new event");
    IT_CHECK(env, !th_file_contains(log, "T000000001"),
             "--last 0 printed an old event");
    th_proc_signal(tp, SIGTERM);
    IT_CHECK(env, th_proc_wait(tp, 10000), "siphon tail did not stop on SIGTERM");
    IT_CHECK(env, th_proc_exit_code(tp) == 0, "siphon tail exited with %d",
             th_proc_exit_code(tp));
    th_proc_destroy(tp);
    free(log);

    th_log("--group: a consumer group member reads all 7 messages, then stops at the end");
    const char *group[] = {"--config", env->config_path, "--topic", env->topic, "--group",
                           "it-tail", "--from-beginning", NULL};
    ec = run_tail(env, group, &l, &err);
    IT_CHECK(env, ec == 0 && l.n == 7, "--group: exit %d, %d lines (want 7): %s", ec, l.n,
             err ? err : "");
    free(err);
    lines_free(&l);

    th_log("no --topic: exit 2 naming the config's topics");
    const char *notopic[] = {"--config", env->config_path, NULL};
    ec = run_tail(env, notopic, &l, &err);
    IT_CHECK(env, ec == 2 && err && strstr(err, env->topic),
             "without --topic: exit %d, stderr: %s", ec, err ? err : "");
    free(err);
    lines_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tail_kafka, setup, teardown),
    };
    return cmocka_run_group_tests_name("0031-tail-kafka", tests, NULL, NULL);
}
