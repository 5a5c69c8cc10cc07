/*
 * demo.c - `make demo`: Siphon doing its job end to end, on an embedded default.
 *
 * Starts a throwaway PostgreSQL 15 holding an order-header table (public.oehdr of
 * tests/it/fixtures/orders-basic: CHAR-padded codes, numeric amounts, dates), librdkafka's mock
 * Kafka cluster, and `siphon run` with that fixture's mapping; then plays some ERP activity (orders
 * entered, changed, cancelled, a table nobody maps) and prints every canonical event that
 * arrives on the Kafka topic, decoded from Avro. Ctrl-C (or the end of the script) stops
 * everything and removes every temporary file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static th_env_t *env;
static th_consumer_t *cons;
static th_msgs_t msgs;
static int shown;

static void show_new_events(int want, int timeout_ms)
{
    th_consumer_poll(cons, &msgs, shown + want, timeout_ms);
    for (; shown < msgs.n; shown++) {
        th_event_t ev;
        if (th_decode(env->dec, &msgs.v[shown], &ev) < 0)
            continue;
        char *key = json_dumps(ev.key, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!ev.value) {
            printf("  kafka %s  tombstone key=%s\n", env->topic, key);
        } else {
            json_t *after = th_json_path(ev.value, "after");
            json_t *before = th_json_path(ev.value, "before");
            char *a = after ? json_dumps(after, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
            char *b = before ? json_dumps(before, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
            char pos[64];
            printf("  kafka %s  op=%c key=%s event_id=%s pos=%s\n", env->topic, ev.op, key,
                   ev.event_id ? ev.event_id : "-", th_json_text(ev.value, "source.pos", pos, sizeof pos));
            if (strcmp(b, "null") != 0)
                printf("        before=%s\n", b);
            printf("        after=%s\n", a);
            free(a);
            free(b);
        }
        free(key);
        th_event_clear(&ev);
    }
    fflush(stdout);
}

static int step(const char *what, const char *sql, int expect_events)
{
    printf("\nERP> %s\n     %s\n", what, sql);
    fflush(stdout);
    if (th_pg_exec(env->pg, "%s", sql) < 0)
        return -1;
    show_new_events(expect_events, expect_events ? 10000 : 1500);
    return 0;
}

int main(void)
{
    int rc = 1;
    printf("Siphon demo: a legacy ERP table on PostgreSQL -> canonical Avro events on Kafka\n\n");
    th_log("starting a throwaway PostgreSQL 15 and a mock Kafka cluster");
    if (!(env = th_env_new()))
        goto out;
    th_log("PostgreSQL at %s; Kafka at %s", th_pg_conninfo(env->pg), th_kafka_bootstraps(env->kafka));
    th_log("siphon run --config %s", env->config_path);
    if (th_env_siphon_start(env) < 0 || th_env_wait_streaming(env, 20000) < 0)
        goto out;
    th_log("streaming; the events on topic %s follow", env->topic);
    if (!(cons = th_consumer_new(env->kafka, env->topic)))
        goto out;

    if (step("order entry keys two orders (CHAR-padded codes, implied money, a NULL note)",
             "INSERT INTO oehdr VALUES "
             "('01','0000104711','C0042   ','2026-11-26',1250.50,'O',NULL,now()),"
             "('01','0000104712','C0007   ','2026-11-26',99.99,'O','rush',now())", 2) < 0 ||
        step("the customer service desk changes an amount and the status",
             "UPDATE oehdr SET hdamt = 1300.00, hdstat = 'H', hdupdt = now() "
             "WHERE hdcomp='01' AND hdordn='0000104711'", 1) < 0 ||
        step("a table no mapping reads changes: no event, but the slot still advances",
             "CREATE TABLE IF NOT EXISTS audit_log(id serial primary key, msg text); "
             "INSERT INTO audit_log(msg) VALUES ('nightly batch ran')", 0) < 0 ||
        step("an order is cancelled by deleting it (a delete event, then a tombstone for compaction)",
             "DELETE FROM oehdr WHERE hdcomp='01' AND hdordn='0000104712'", 2) < 0)
        goto out;

    printf("\n");
    th_log("stopping siphon with SIGTERM: it drains, acknowledges and exits 0");
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    char *offsets = th_read_file(env->offsets_path, NULL, 1);
    th_log("siphon exited with %d; stored offsets: %s", code, offsets ? offsets : "(none)");
    free(offsets);
    rc = code == 0 && shown >= 5 ? 0 : 1;
    if (rc)
        th_env_dump_logs(env);
out:
    if (rc && env)
        th_env_dump_logs(env);
    th_msgs_free(&msgs);
    th_consumer_destroy(cons);
    th_env_destroy(env);
    printf("\n%s\n", rc ? "demo FAILED (logs above)" : "demo done: every temporary server and file was removed");
    return rc;
}
