/*
 * 0300-confluent-registry - sink.format: confluent against the stand-in Schema Registry.
 *
 * No real Confluent Schema Registry can be installed here (a Java service with its own Kafka
 * store), so the registry is tests/harness/th_registry.c: the documented endpoints Siphon uses,
 * the registry's answers, basic auth, injected outages, and a log of every request.
 *
 * Checked:
 *  - `siphon tail` decodes the Confluent-framed topic with the config alone;
 *  - the new config keys load, and the wrong combinations are refused with file:line;
 *  - at startup Siphon registers the key and value schemas of every topic (the entity's and the
 *    dead-letter topic's) under <topic>-key and <topic>-value with POST
 *    /subjects/{subject}/versions, Content-Type application/vnd.schemaregistry.v1+json, HTTP
 *    basic auth with the password from ${VAR}; the value schema registered is exactly Siphon's
 *    published envelope, logical types included;
 *  - every message (inserts, an update, a delete and its tombstone) is framed magic byte 0 +
 *    the 4-byte big-endian id of its subject, and the Avro body after it decodes with the schema
 *    the registry holds under that id, to the rows committed;
 *  - ids are cached: with the registry answering 503, events still flow and no request is made;
 *  - a registry that is down when Siphon starts: events are held, nothing is acknowledged to
 *    the slot, the log says so; while it answers 503 they are still held; once it answers,
 *    every event arrives (same ids, no new subject versions) and the slot moves past them;
 *  - wrong credentials: the run stops at startup with HTTP 401 and what to check, and produces
 *    nothing.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#include "config/config.h"
#include "core/error.h"
#include "mapping/mapping.h"

#define PW "s3cret pw"
#define AUTH_HDR "Basic c2lwaG9uOnMzY3JldCBwdw==" /* base64("siphon:" PW) */

typedef struct state {
    th_env_t *env;
    th_registry_t *reg;
    th_consumer_t *cons;
    th_msgs_t msgs;
    int checked;
    siphon_mapset_t *ms; /* Siphon's own view of the fixture's streams */
} state_t;

/* Insert the confluent block into the sink section of the config the harness wrote. */
static int write_confluent_conf(th_env_t *env, const char *url, const char *pw_var)
{
    if (th_env_write_conf(env) != 0)
        return -1;
    char *lines = th_strf("  format: confluent\n  schema_registry:\n    url: \"%s\"\n"
                          "    username: siphon\n    password: ${%s}\n    timeout_ms: 2000\n"
                          "    retry_backoff_ms: 200\n    retry_backoff_max_ms: 800\n",
                          url, pw_var);
    int rc = th_conf_add_sink_keys(env->config_path, lines);
    free(lines);
    return rc;
}

static int setup(void **state)
{
    state_t *st = calloc(1, sizeof(*st));
    char err[512];
    *state = st;
    th_log("setup: PostgreSQL, mock Kafka, the stand-in Schema Registry demanding basic auth");
    if (!(st->env = th_env_new()) || !(st->reg = th_registry_start()))
        return -1;
    th_registry_set_auth(st->reg, "siphon", PW);
    setenv("IT_REG_PW", PW, 1);
    setenv("IT_REG_BAD_PW", "not the password", 1);
    if (th_kafka_create_topic(st->env->kafka, "it._dlq", 4) != 0)
        return -1;
    if (siphon_mapset_load(&st->ms, st->env->conf.mappings_dir, st->env->conf.schemas_dir, err,
                           sizeof(err)) < 0)
        return th_err("%s", err);
    if (write_confluent_conf(st->env, th_registry_url(st->reg), "IT_REG_PW") != 0 ||
        th_env_siphon_start(st->env) != 0 || th_env_wait_streaming(st->env, 30000) != 0)
        return -1;
    if (!(st->cons = th_consumer_new(st->env->kafka, st->env->topic)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    state_t *st = *state;
    th_consumer_destroy(st->cons);
    th_msgs_free(&st->msgs);
    th_env_destroy(st->env);
    th_registry_destroy(st->reg);
    siphon_mapset_destroy(st->ms);
    free(st);
    return 0;
}

static uint32_t subject_id(state_t *st, const char *subject, int *versions)
{
    uint32_t id = 0;
    IT_CHECK(st->env, th_registry_subject_id(st->reg, subject, &id, versions) == 0,
             "subject %s is not in the registry", subject);
    return id;
}

/* Check the framing of msgs[from..n-1], re-frame them as single-object encoding with the
 * registry's schemas, decode them with Siphon's decoder and return the events (caller clears). */
static th_event_t *check_and_decode(state_t *st, int from)
{
    uint32_t kid = subject_id(st, "it.sales_order.v1-key", NULL);
    uint32_t vid = subject_id(st, "it.sales_order.v1-value", NULL);
    int n = st->msgs.n - from;
    th_event_t *evs = calloc((size_t)(n ? n : 1), sizeof(*evs));
    for (int i = 0; i < n; i++) {
        th_msg_t *m = &st->msgs.v[from + i];
        const uint8_t *k = m->key, *v = m->value;
        IT_CHECK(st->env, k && m->klen > 5 && k[0] == 0, "message %d: key is not Confluent-"
                 "framed (magic byte 0 + id)", from + i);
        uint32_t got = (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 8 | k[4];
        IT_CHECK(st->env, got == kid, "message %d: key schema id %u, the subject's is %u",
                 from + i, got, kid);
        if (v) {
            IT_CHECK(st->env, m->vlen > 5 && v[0] == 0, "message %d: value is not Confluent-"
                     "framed", from + i);
            got = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
            IT_CHECK(st->env, got == vid, "message %d: value schema id %u, the subject's is %u",
                     from + i, got, vid);
        }
        IT_CHECK(st->env, th_registry_to_soe(st->reg, m, NULL, NULL) == 0,
                 "message %d does not re-frame with the registry's schemas", from + i);
        IT_CHECK(st->env, th_decode(st->env->dec, m, &evs[i]) == 0,
                 "message %d does not decode with the schema registered under its id", from + i);
    }
    return evs;
}

static void consume(state_t *st, int more)
{
    int want = st->msgs.n + more;
    int got = th_env_consume(st->env, st->cons, &st->msgs, want, 20000);
    IT_CHECK(st->env, got >= want, "expected %d messages on %s, got %d", want, st->env->topic,
             got);
}

static void test_config_keys(void **state)
{
    state_t *st = *state;
    char err[1024];
    siphon_config_t *cfg = NULL;
    static const char head[] =
        "name: t\nsource: {type: postgres, conninfo: \"host=x\"}\noffsets: {path: o.json}\n";
    th_log("config: every registry key loads; wrong combinations are refused with file:line");
    char *y = th_strf("%ssink:\n  type: kafka\n  topic_prefix: erp\n  format: confluent\n"
                      "  schema_registry:\n    url: \"https://r1:8081, https://r2:8081/\"\n"
                      "    username: siphon\n    password: ${IT_REG_PW}\n"
                      "    ca_location: /etc/ca.pem\n    cert_location: c.pem\n"
                      "    key_location: k.pem\n    key_password: kp\n    ssl_verify: false\n"
                      "    timeout_ms: 1500\n    retry_backoff_ms: 50\n"
                      "    retry_backoff_max_ms: 60000\npipeline: {transactions: true}\n", head);
    IT_CHECK(st->env, siphon_config_parse(&cfg, y, strlen(y), "t.yaml", "/base", err,
                                          sizeof(err)) == 0, "valid config refused: %s", err);
    free(y);
    IT_CHECK(st->env, cfg->sink.format == SIPHON_SINK_FORMAT_CONFLUENT, "format not confluent");
    IT_CHECK(st->env, !strcmp(cfg->sink.registry.password, PW), "password not interpolated");
    IT_CHECK(st->env, !strcmp(cfg->sink.registry.cert_location, "/base/c.pem"),
             "cert_location not resolved against the config folder: %s",
             cfg->sink.registry.cert_location);
    IT_CHECK(st->env, cfg->sink.registry.ssl_verify == 0 &&
                          cfg->sink.registry.timeout_ms == 1500 &&
                          cfg->sink.registry.retry_backoff_ms == 50 &&
                          cfg->sink.registry.retry_backoff_max_ms == 60000 &&
                          cfg->pipeline.transactions == 1, "a registry key did not load");
    siphon_config_destroy(cfg);

    struct {
        const char *sink, *want;
    } bad[] = {
        {"  type: kafka\n  topic_prefix: e\n  format: confluent\n",
         "t.yaml:7:11: sink.format is confluent but there is no sink.schema_registry"},
        {"  type: kafka\n  topic_prefix: e\n  schema_registry: {url: \"http://r\"}\n",
         "t.yaml:7:20: sink.schema_registry is set but sink.format is not confluent"},
        {"  type: file\n  path: /tmp/x\n  format: confluent\n",
         "t.yaml:7:11: sink.format confluent is for type kafka"},
        {"  type: kafka\n  topic_prefix: e\n  format: avro\n",
         "t.yaml:7:11: wrong value for sink.format: 'avro' (expected one of: single_object, "
         "confluent)"},
        {"  type: kafka\n  topic_prefix: e\n  format: confluent\n  schema_registry:\n"
         "    url: \"registry:8081\"\n",
         "t.yaml:9:10: wrong value for sink.schema_registry.url: it does not start with"},
        {"  type: kafka\n  topic_prefix: e\n  format: confluent\n  schema_registry:\n"
         "    url: \"http://r\"\n    username: u\n",
         "t.yaml:9:5: sink.schema_registry has a username without a password"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        y = th_strf("%ssink:\n%s", head, bad[i].sink);
        cfg = NULL;
        int rc = siphon_config_parse(&cfg, y, strlen(y), "t.yaml", NULL, err, sizeof(err));
        IT_CHECK(st->env, rc == SIPHON_EINVAL && !cfg, "case %zu loaded", i);
        IT_CHECK(st->env, strncmp(err, bad[i].want, strlen(bad[i].want)) == 0,
                 "case %zu: got \"%s\", expected it to start with \"%s\"", i, err, bad[i].want);
        free(y);
    }
}

static void test_registration_and_framing(void **state)
{
    state_t *st = *state;
    th_log("startup registered the key and value subjects of it.sales_order.v1 and it._dlq");
    th_registry_req_t *rq = NULL;
    int n = th_registry_requests(st->reg, &rq);
    const char *subjects[] = {"it.sales_order.v1-key", "it.sales_order.v1-value", "it._dlq-key",
                              "it._dlq-value"};
    for (int s = 0; s < 4; s++) {
        char *url = th_strf("/subjects/%s/versions", subjects[s]);
        int found = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(rq[i].url, url) != 0)
                continue;
            found++;
            IT_CHECK(st->env, !strcmp(rq[i].method, "POST") && rq[i].status == 200,
                     "%s: %s answered %d", url, rq[i].method, rq[i].status);
            IT_CHECK(st->env, rq[i].content_type &&
                                  !strcmp(rq[i].content_type,
                                          "application/vnd.schemaregistry.v1+json"),
                     "%s: Content-Type %s", url, rq[i].content_type ? rq[i].content_type : "-");
            IT_CHECK(st->env, rq[i].authorization && !strcmp(rq[i].authorization, AUTH_HDR),
                     "%s: Authorization %s, expected %s", url,
                     rq[i].authorization ? rq[i].authorization : "(none)", AUTH_HDR);
        }
        IT_CHECK(st->env, found == 1, "%s was requested %d times, expected once", url, found);
        free(url);
    }
    th_registry_requests_free(rq, n);

    const siphon_avro_stream_t *stream = siphon_mapping_stream(siphon_mapset_get(st->ms, 0));
    char *vs = th_registry_schema(st->reg, subject_id(st, "it.sales_order.v1-value", NULL));
    char *ks = th_registry_schema(st->reg, subject_id(st, "it.sales_order.v1-key", NULL));
    IT_CHECK(st->env, vs && !strcmp(vs, siphon_avro_stream_value_schema_json(stream)),
             "the registered value schema is not Siphon's envelope");
    IT_CHECK(st->env, ks && !strcmp(ks, siphon_avro_stream_key_schema_json(stream)),
             "the registered key schema is not Siphon's key schema");
    const char *lts[] = {"\"logicalType\":\"decimal\"", "\"precision\":12", "\"scale\":2",
                         "\"logicalType\":\"date\"", "\"logicalType\":\"timestamp-micros\""};
    for (int i = 0; i < 5; i++)
        IT_CHECK(st->env, strstr(vs, lts[i]), "the registered envelope lacks %s", lts[i]);
    free(vs);
    free(ks);

    th_log("inserts, an update, a delete: every message framed with its subject's id");
    IT_CHECK(st->env, th_pg_exec(st->env->pg,
                                 "BEGIN; INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt,"
                                 " hdupdt) VALUES ('01', 'C1', 'K1', '2024-02-29', 1234.50,"
                                 " '2024-03-01 10:00:00.123456+00'), ('01', 'C2', 'K2', NULL, -7,"
                                 " NULL); COMMIT;"
                                 "UPDATE oehdr SET hdstat = 'C' WHERE hdordn = 'C1';"
                                 "DELETE FROM oehdr WHERE hdordn = 'C2'") == 0, "SQL failed");
    consume(st, 5);
    th_event_t *ev = check_and_decode(st, 0);
    const char want_ops[] = {'c', 'c', 'u', 'd', 0};
    int seen[5] = {0};
    for (int i = 0; i < st->msgs.n; i++) {
        for (int k = 0; k < 5; k++)
            if (!seen[k] && ev[i].op == want_ops[k]) {
                seen[k] = 1;
                break;
            }
        char buf[64];
        if (ev[i].op == 'c' && strstr(th_json_text(ev[i].value, "after.order_number", buf,
                                                   sizeof(buf)), "C1")) {
            IT_CHECK(st->env, !strcmp(th_json_text(ev[i].value, "after.total_amount", buf,
                                                   sizeof(buf)), "1234.50"),
                     "C1 total_amount: %s", buf);
            IT_CHECK(st->env, !strcmp(th_json_text(ev[i].value, "after.order_date", buf,
                                                   sizeof(buf)), "2024-02-29"),
                     "C1 order_date: %s", buf);
            IT_CHECK(st->env, !strcmp(th_json_text(ev[i].value, "after.updated_at", buf,
                                                   sizeof(buf)),
                                      "2024-03-01T10:00:00.123456Z"), "C1 updated_at: %s", buf);
        }
    }
    for (int k = 0; k < 5; k++)
        IT_CHECK(st->env, seen[k], "no %s among the messages",
                 want_ops[k] ? (char[]){want_ops[k], 0} : "tombstone");
    for (int i = 0; i < st->msgs.n; i++)
        th_event_clear(&ev[i]);
    free(ev);
    st->checked = st->msgs.n;

    th_log("siphon tail decodes the Confluent-framed topic with the config alone");
    char *argv[] = {(char *)th_siphon_bin(), "tail", "--config", st->env->config_path,
                    "--topic", "it.sales_order.v1", "--from-beginning", NULL};
    char *out = NULL, *err = NULL;
    int code = -1;
    IT_CHECK(st->env, th_run(argv, NULL, 20000, &code, &out, &err) == 0 && code == 0,
             "siphon tail exited %d: %s", code, err ? err : "");
    int lines = 0;
    for (const char *l = out; l && *l; lines++) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char *line = strndup(l, len);
        IT_CHECK(st->env, !strstr(line, "\"error\""), "siphon tail: %s", line);
        l = nl ? nl + 1 : l + len;
        free(line);
    }
    IT_CHECK(st->env, lines == st->msgs.n, "siphon tail printed %d lines for %d messages",
             lines, st->msgs.n);
    IT_CHECK(st->env, strstr(out, "\"total_amount\":\"1234.50\"") &&
                          strstr(out, "\"op\":\"d\"") && strstr(out, "\"event\":null"),
             "siphon tail did not print the decoded events: %s", out);
    free(out);
    free(err);
}

static void test_ids_cached(void **state)
{
    state_t *st = *state;
    th_log("the registry answers 503: ids are cached, events flow, no request is made");
    th_registry_req_t *rq = NULL;
    int n0 = th_registry_requests(st->reg, &rq);
    th_registry_requests_free(rq, n0);
    th_registry_unavailable_for(st->reg, 60000);
    IT_CHECK(st->env, th_pg_exec(st->env->pg, "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt)"
                                              " VALUES ('01', 'C3', 'K3', 1)") == 0, "SQL");
    consume(st, 1);
    th_event_t *ev = check_and_decode(st, st->checked);
    th_event_clear(&ev[0]);
    free(ev);
    st->checked = st->msgs.n;
    int n1 = th_registry_requests(st->reg, &rq);
    th_registry_requests_free(rq, n1);
    IT_CHECK(st->env, n1 == n0, "%d registry requests while ids were cached", n1 - n0);
    th_registry_unavailable_for(st->reg, 0);
}

static void test_outage_holds_events(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("restart with the registry down: events held, nothing acknowledged");
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 20000) == 0, "siphon did not stop cleanly");
    th_registry_stop(st->reg);
    IT_CHECK(env, th_env_siphon_start(env) == 0 && th_env_wait_streaming(env, 30000) == 0,
             "siphon did not start streaming with the registry down");
    uint64_t before = 0, end = 0, confirmed = 0;
    IT_CHECK(env, th_pg_current_lsn(env->pg, &before) == 0, "lsn");
    for (int i = 0; i < 3; i++)
        IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                          "VALUES ('02', 'H%d', 'K', %d)", i, i) == 0, "SQL");
    IT_CHECK(env, th_pg_current_lsn(env->pg, &end) == 0, "lsn");
    int got = th_env_consume(env, st->cons, &st->msgs, st->msgs.n + 1, 3000);
    IT_CHECK(env, got == st->checked, "%d messages arrived while the registry was down",
             got - st->checked);
    IT_CHECK(env, th_pg_slot_confirmed(env->pg, "siphon_it", &confirmed) == 0 &&
                      confirmed <= before,
             "the slot confirmed %" PRIx64 " past %" PRIx64 " while events were held",
             confirmed, before);
    IT_CHECK(env, th_proc_wait_log(env->siphon, "are held (nothing after them is acknowledged)",
                                   1000), "the log does not say that events are held");

    th_log("the registry listens again but answers 503 for 2.5 s: still held");
    th_registry_unavailable_for(st->reg, 2500);
    IT_CHECK(env, th_registry_restart(st->reg) == 0, "registry restart");
    int64_t t0 = th_now_ms();
    got = th_env_consume(env, st->cons, &st->msgs, st->msgs.n + 1, 1500);
    IT_CHECK(env, got == st->checked, "messages arrived while the registry answered 503");
    th_log("it answers again: all three arrive, same ids, and the slot moves past them");
    consume(st, 3);
    th_log("  held for %lld ms after the registry came back", (long long)(th_now_ms() - t0));
    th_event_t *ev = check_and_decode(st, st->checked);
    for (int i = 0; i < 3; i++) {
        char buf[64];
        IT_CHECK(env, ev[i].op == 'c' && strstr(th_json_text(ev[i].value, "after.order_number",
                                                             buf, sizeof(buf)), "H"),
                 "held message %d is %c %s", i, ev[i].op, buf);
        th_event_clear(&ev[i]);
    }
    free(ev);
    st->checked = st->msgs.n;
    int versions = 0;
    subject_id(st, "it.sales_order.v1-value", &versions);
    IT_CHECK(env, versions == 1, "the value subject has %d versions after the restart",
             versions);
    int64_t until = th_now_ms() + 15000;
    while ((th_pg_slot_confirmed(env->pg, "siphon_it", &confirmed) != 0 || confirmed < end) &&
           th_now_ms() < until)
        th_sleep_ms(100);
    IT_CHECK(env, confirmed >= end, "the slot confirmed %" PRIx64 ", not past %" PRIx64,
             confirmed, end);
    th_registry_req_t *rq = NULL;
    int n = th_registry_requests(st->reg, &rq), n503 = 0;
    for (int i = 0; i < n; i++)
        n503 += rq[i].status == 503;
    th_registry_requests_free(rq, n);
    IT_CHECK(env, n503 >= 2, "only %d requests were answered 503: no retry with backoff?", n503);
    IT_CHECK(env, th_proc_wait_log(env->siphon, "the Schema Registry answers again", 1000),
             "the log does not say the registry answers again");
}

static void test_wrong_credentials(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("wrong password: the run stops at startup with HTTP 401, producing nothing");
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 20000) == 0, "siphon did not stop cleanly");
    IT_CHECK(env, write_confluent_conf(env, th_registry_url(st->reg), "IT_REG_BAD_PW") == 0,
             "conf");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                      "VALUES ('03', 'X1', 'K', 1)") == 0, "SQL");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "start");
    IT_CHECK(env, th_proc_wait(env->siphon, 15000), "siphon did not stop");
    IT_CHECK(env, th_proc_exit_code(env->siphon) != 0, "siphon exited 0");
    IT_CHECK(env, th_file_contains(th_proc_log_path(env->siphon), "HTTP 401") &&
                      th_file_contains(th_proc_log_path(env->siphon),
                                       "check sink.schema_registry.username and password"),
             "the log does not name the 401 and what to check");
    int got = th_env_consume(env, st->cons, &st->msgs, st->msgs.n + 1, 1000);
    IT_CHECK(env, got == st->checked, "a message was produced without registration");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_registration_and_framing),
        cmocka_unit_test(test_ids_cached),
        cmocka_unit_test(test_outage_holds_events),
        cmocka_unit_test(test_wrong_credentials),
    };
    return cmocka_run_group_tests_name("0300-confluent-registry", tests, setup, teardown);
}
