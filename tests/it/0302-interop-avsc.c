/*
 * 0302-interop-avsc - Siphon's messages read by an Avro implementation we did not write.
 *
 * The sample legacy ERP (examples/legacy-erp, the shipped mappings/ and schemas/) streams
 * through two siphon runs at once, each with its own slot and topic prefix: "soe" with
 * single-object encoding and "cfl" with sink.format confluent against the stand-in Schema
 * Registry (tests/harness/th_registry.c), both with transaction metadata on. The generator
 * writes three companies of data, a day of activity and the four rows that become dead letters.
 *
 * Every message of every topic (the eight canonical entities, the dead-letter topic and the
 * transactions topic, in both framings) is then decoded by Node's `avsc` (tests/interop/,
 * installed with `npm ci` from its lock file) using only what Siphon publishes: for
 * single-object encoding the schema whose fingerprint the message names, taken from Siphon's
 * schema history file (and, for the dead-letter and transaction topics, their fixed published
 * schemas); for Confluent framing the schema the registry serves for the message's id. avsc's
 * decoding, with logical types through its own hooks (decimal bytes, date, timestamp-micros),
 * must equal Siphon's own decoder's, field by field, for every message.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_check.h"

#include "avro/avro_int.h"
#include "mapping/mapping.h"

#define PII_KEY "it-0302-pii-secret"
#define NENT 9
static const char *const entities[NENT] = {"customer", "inventory_position", "invoice",
                                           "product", "quote", "return", "sales_order",
                                           "sales_order_line", "shipment"};
#define NTOPIC (NENT + 2) /* + _dlq, _transactions */

typedef struct run {
    const char *prefix;
    int confluent;
    char *config, *offsets, *log;
    th_proc_t *proc;
} run_t;

typedef struct fx {
    th_pg_t *pg;
    PGconn *erp;
    th_kafka_t *kafka;
    th_registry_t *reg;
    char *dir;
    run_t runs[2];
    th_decoder_t *dec;
    siphon_dlq_t *dlq;
    siphon_avro_txn_stream_t *ts;
} fx_t;

static fx_t *F;

static void dump(void)
{
    for (int i = 0; F && i < 2; i++)
        if (F->runs[i].proc)
            th_proc_dump_log(F->runs[i].proc, 60);
}

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            dump();                                                                          \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

static int erp_exec(const char *sql)
{
    PGresult *r = PQexec(F->erp, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        th_err("SQL failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static char *topic_name(const char *prefix, int t)
{
    if (t < NENT)
        return th_strf("%s.%s.v1", prefix, entities[t]);
    return th_strf("%s.%s", prefix, t == NENT ? "_dlq" : "_transactions");
}

static int write_config(run_t *r, const char *conninfo)
{
    char *slot = th_strf("siphon_%s", r->prefix);
    th_siphon_conf_t conf = {.name = r->prefix, .conninfo = conninfo, .slot = slot,
                             .publication = slot, .bootstraps = th_kafka_bootstraps(F->kafka),
                             .topic_prefix = r->prefix, .offsets_path = r->offsets,
                             .status_interval_ms = 300, .flush_interval_ms = 200,
                             .extra_yaml = "pipeline:\n  transactions: true"};
    int rc = th_siphon_conf_write(r->config, &conf);
    free(slot);
    if (rc || !r->confluent)
        return rc;
    char *lines = th_strf("  format: confluent\n  schema_registry:\n    url: \"%s\"\n",
                          th_registry_url(F->reg));
    rc = th_conf_add_sink_keys(r->config, lines);
    free(lines);
    return rc;
}

static int wait_streaming(run_t *r)
{
    for (int64_t until = th_now_ms() + 30000;; th_sleep_ms(100)) {
        char *v = th_pg_value(F->pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots s JOIN "
                              "pg_stat_replication r ON r.pid = s.active_pid WHERE "
                              "s.slot_name = 'siphon_%s' AND r.state = 'streaming'", r->prefix);
        int ok = v && atoi(v) > 0;
        free(v);
        if (ok)
            return 0;
        if (!th_proc_running(r->proc) || th_now_ms() > until)
            return th_err("siphon %s did not start streaming", r->prefix);
    }
}

static int setup(void **state)
{
    F = calloc(1, sizeof(*F));
    *state = F;
    char err[512];
    th_log("setup: the sample ERP in PostgreSQL, mock Kafka, the stand-in registry, two runs "
           "(single-object and Confluent framing), transactions on");
    setenv("SIPHON_PII_KEY", PII_KEY, 1);
    if (!(F->dir = th_tempdir()) || !(F->pg = th_pg_start()) || !(F->reg = th_registry_start()))
        return -1;
    char *conninfo = NULL;
    if (!(F->erp = th_erp_create(F->pg, &conninfo)))
        return -1;
    if (!(F->kafka = th_kafka_start(3)))
        return -1;
    const char *prefixes[2] = {"soe", "cfl"};
    for (int k = 0; k < 2; k++) {
        run_t *r = &F->runs[k];
        r->prefix = prefixes[k];
        r->confluent = k == 1;
        for (int t = 0; t < NTOPIC; t++) {
            char *name = topic_name(r->prefix, t);
            int rc = th_kafka_create_topic(F->kafka, name, 4);
            free(name);
            if (rc)
                return -1;
        }
        char *sub = th_strf("%s/%s", F->dir, r->prefix);
        mkdir(sub, 0700);
        r->config = th_path(sub, "siphon.yaml");
        r->offsets = th_path(sub, "offsets.json");
        r->log = th_path(sub, "siphon.log");
        free(sub);
        if (write_config(r, conninfo) != 0 || !(r->proc = th_siphon_start(r->config, r->log)))
            return -1;
    }
    free(conninfo);
    for (int k = 0; k < 2; k++)
        if (wait_streaming(&F->runs[k]) != 0) {
            dump();
            return -1;
        }
    if (!(F->dec = th_decoder_new(NULL, NULL)))
        return -1;
    if (siphon_dlq_new(&F->dlq, err, sizeof(err)) < 0 ||
        siphon_avro_txn_stream_new(&F->ts, err, sizeof(err)) < 0)
        return th_err("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        run_t *r = &F->runs[k];
        th_proc_destroy(r->proc);
        free(r->config);
        free(r->offsets);
        free(r->log);
    }
    th_decoder_destroy(F->dec);
    siphon_dlq_destroy(F->dlq);
    siphon_avro_txn_stream_destroy(F->ts);
    if (F->erp)
        PQfinish(F->erp);
    th_pg_destroy(F->pg);
    th_kafka_destroy(F->kafka);
    th_registry_destroy(F->reg);
    free(F->dir);
    free(F);
    return 0;
}

/* ---- Siphon's own reading of a message, as JSON ---- */

static json_t *parse_owned(char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    free(text);
    return j;
}

/* The body of a single-object-encoded Avro "string" (the dead-letter key). */
static json_t *soe_string(const th_msg_t *m)
{
    const uint8_t *p = (const uint8_t *)m->key + SIPHON_AVRO_SOE_HEADER_LEN;
    size_t n = m->klen - SIPHON_AVRO_SOE_HEADER_LEN;
    uint64_t z = 0;
    int sh = 0;
    size_t i = 0;
    while (i < n && sh < 64) {
        z |= (uint64_t)(p[i] & 0x7f) << sh;
        sh += 7;
        if (!(p[i++] & 0x80))
            break;
    }
    int64_t len = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    if (len < 0 || (size_t)len != n - i)
        return NULL;
    return json_stringn((const char *)p + i, (size_t)len);
}

/* key and value of message m of topic t (single-object encoded by now), as Siphon reads them */
static void siphon_reading(int t, th_msg_t *m, json_t **key, json_t **value)
{
    char err[512], *text = NULL;
    *key = *value = NULL;
    if (t < NENT) {
        th_event_t ev = {0};
        CHECK(th_decode(F->dec, m, &ev) == 0, "Siphon's decoder refused a message of %s",
              entities[t]);
        *key = ev.key ? json_incref(ev.key) : NULL;
        *value = ev.value ? json_incref(ev.value) : NULL;
        th_event_clear(&ev);
    } else if (t == NENT) {
        *key = m->key ? soe_string(m) : NULL;
        if (m->value) {
            CHECK(siphon_dlq_decode_json(&text, F->dlq, m->value, m->vlen, err,
                                         sizeof(err)) == 0, "dead letter: %s", err);
            *value = parse_owned(text);
        }
    } else {
        CHECK(siphon_avro_txn_decode_json(&text, F->ts, 1, m->key, m->klen, err,
                                          sizeof(err)) == 0, "transaction key: %s", err);
        *key = parse_owned(text);
        text = NULL;
        CHECK(siphon_avro_txn_decode_json(&text, F->ts, 0, m->value, m->vlen, err,
                                          sizeof(err)) == 0, "transaction event: %s", err);
        *value = parse_owned(text);
    }
}

/* ---- comparing ---- */

static int is_type_name(const char *k)
{
    static const char *const names[] = {"null", "boolean", "int", "long", "float", "double",
                                         "bytes", "string", "array", "map", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(k, names[i]))
            return 1;
    return 0;
}

/* Equal as data: Siphon's tools print an optional long as Avro's JSON encoding {"long": n}
 * (transactions) and timestamps as numbers (dead letters, transactions) where avsc's logical
 * type gives ISO text; everything else must be identical. why gets the first difference. */
static int same(json_t *ours, json_t *theirs, const char *path, char *why, size_t size)
{
    if (json_is_object(ours) && json_object_size(ours) == 1 && !json_is_object(theirs)) {
        const char *k = json_object_iter_key(json_object_iter(ours));
        if (is_type_name(k))
            return same(json_object_iter_value(json_object_iter(ours)), theirs, path, why, size);
    }
    if (json_is_integer(ours) && json_is_string(theirs)) {
        char ts[64];
        siphon_avro__format_timestamp(ts, sizeof(ts), json_integer_value(ours), 6, 1);
        if (!strcmp(ts, json_string_value(theirs)))
            return 1;
    }
    if (json_is_object(ours) && json_is_object(theirs)) {
        const char *k;
        json_t *v;
        if (json_object_size(ours) != json_object_size(theirs)) {
            snprintf(why, size, "%s: %zu fields, avsc %zu", path, json_object_size(ours),
                     json_object_size(theirs));
            return 0;
        }
        json_object_foreach(ours, k, v) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            json_t *o = json_object_get(theirs, k);
            if (!o) {
                snprintf(why, size, "%s: missing in avsc's reading", sub);
                return 0;
            }
            if (!same(v, o, sub, why, size))
                return 0;
        }
        return 1;
    }
    if (json_is_array(ours) && json_is_array(theirs)) {
        if (json_array_size(ours) != json_array_size(theirs)) {
            snprintf(why, size, "%s: %zu items, avsc %zu", path, json_array_size(ours),
                     json_array_size(theirs));
            return 0;
        }
        for (size_t i = 0; i < json_array_size(ours); i++) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (!same(json_array_get(ours, i), json_array_get(theirs, i), sub, why, size))
                return 0;
        }
        return 1;
    }
    if (json_is_number(ours) && json_is_number(theirs) &&
        json_number_value(ours) == json_number_value(theirs))
        return 1;
    if (json_equal(ours, theirs))
        return 1;
    char *a = json_dumps(ours, JSON_ENCODE_ANY), *b = json_dumps(theirs, JSON_ENCODE_ANY);
    snprintf(why, size, "%s: Siphon reads %.120s, avsc %.120s", path, a ? a : "?", b ? b : "?");
    free(a);
    free(b);
    return 0;
}

/* Kinds of logical values avsc produced, to show they were exercised. */
static void count_logical(json_t *j, int *dec, int *date, int *ts)
{
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t n = strlen(s);
        int digits = 1, dots = 0;
        for (size_t i = (s[0] == '-'); i < n; i++) {
            dots += s[i] == '.';
            digits &= (s[i] >= '0' && s[i] <= '9') || s[i] == '.';
        }
        *dec += n >= 3 && digits && dots == 1;
        *date += n == 10 && s[4] == '-' && s[7] == '-';
        *ts += n == 27 && s[10] == 'T' && s[26] == 'Z';
        return;
    }
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j))
        json_object_foreach(j, k, v) count_logical(v, dec, date, ts);
    if (json_is_array(j))
        json_array_foreach(j, i, v) count_logical(v, dec, date, ts);
}

/* fingerprint -> schema text, from what the soe run published */
static char *published_schemas(void)
{
    char hpath[4096], err[1024], fp[17];
    siphon_schema_history_t *hist = NULL;
    json_t *o = json_object();
    CHECK(siphon_schema_history_path(hpath, sizeof(hpath), F->runs[0].offsets, "soe") == 0,
          "history path");
    CHECK(siphon_schema_history_load(&hist, hpath, "soe", err, sizeof(err)) == 0, "%s", err);
    int ns = siphon_schema_history_stream_count(hist);
    CHECK(ns == NENT, "the history of run soe has %d streams, expected %d", ns, NENT);
    for (int i = 0; i < ns; i++) {
        const char *name = siphon_schema_history_stream_name(hist, i);
        for (int v = 0; v < siphon_schema_history_version_count(hist, name); v++) {
            const siphon_schema_version_t *ver = siphon_schema_history_version(hist, name, v);
            snprintf(fp, sizeof(fp), "%016" PRIx64, ver->fingerprint);
            json_object_set_new(o, fp, json_string(ver->value_json));
            snprintf(fp, sizeof(fp), "%016" PRIx64, ver->key_fingerprint);
            json_object_set_new(o, fp, json_string(ver->key_json));
        }
    }
    siphon_schema_history_destroy(hist);
    snprintf(fp, sizeof(fp), "%016" PRIx64, siphon_dlq_fingerprint(F->dlq));
    json_object_set_new(o, fp, json_string(siphon_dlq_schema_json(F->dlq)));
    snprintf(fp, sizeof(fp), "%016" PRIx64, siphon_dlq_key_fingerprint(F->dlq));
    json_object_set_new(o, fp, json_string(siphon_dlq_key_schema_json(F->dlq)));
    snprintf(fp, sizeof(fp), "%016" PRIx64, siphon_avro_txn_value_fingerprint(F->ts));
    json_object_set_new(o, fp, json_string(siphon_avro_txn_value_schema_json()));
    snprintf(fp, sizeof(fp), "%016" PRIx64, siphon_avro_txn_key_fingerprint(F->ts));
    json_object_set_new(o, fp, json_string(siphon_avro_txn_key_schema_json()));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static json_t *b64(const void *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!p)
        return json_null();
    const uint8_t *s = p;
    char *out = malloc(4 * (n / 3 + 1) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    json_t *j = json_string(out);
    free(out);
    return j;
}

/* npm ci into tests/interop/node_modules unless avsc is already there at the locked version. */
static void ensure_avsc(void)
{
    char *dir = th_path(th_source_dir(), "tests/interop");
    char *pkg = th_path(dir, "node_modules/avsc/package.json");
    char *text = th_read_file(pkg, NULL, 1);
    if (!text || !strstr(text, "\"version\": \"5.7.7\"")) {
        th_log("installing avsc from tests/interop/package-lock.json (npm ci)");
        char *prefix = th_strf("--prefix=%s", dir);
        char *argv[] = {"npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", prefix, NULL};
        int code = -1;
        char *err = NULL;
        int rc = th_run(argv, NULL, 180000, &code, NULL, &err);
        CHECK(rc == 0 && code == 0, "npm ci failed (%d): %s", code, err ? err : "");
        free(err);
        free(prefix);
    }
    free(text);
    free(pkg);
    free(dir);
}

static void test_every_message_reads_the_same_in_avsc(void **state)
{
    (void)state;
    th_log("the generator: 3 companies of ERP data, a day of activity, 4 rows for the DLQ");
    CHECK(erp_exec("SELECT erp_generate(1)") == 0 && erp_exec("SELECT erp_activity(1)") == 0 &&
              erp_exec("SELECT erp_bad_rows()") == 0, "generator failed");
    uint64_t end = 0;
    CHECK(th_pg_current_lsn(F->pg, &end) == 0, "lsn");
    for (int k = 0; k < 2; k++) {
        char slot[32];
        snprintf(slot, sizeof(slot), "siphon_%s", F->runs[k].prefix);
        uint64_t c = 0;
        int64_t until = th_now_ms() + 60000;
        while ((th_pg_slot_confirmed(F->pg, slot, &c) != 0 || c < end) && th_now_ms() < until)
            th_sleep_ms(100);
        CHECK(c >= end, "run %s did not confirm the end of the data", F->runs[k].prefix);
    }
    ensure_avsc();

    th_log("reading all %d topics of both runs", 2 * NTOPIC);
    th_msgs_t msgs[2][NTOPIC];
    memset(msgs, 0, sizeof(msgs));
    char *in_path = th_path(F->dir, "messages.jsonl"), *out_path = th_path(F->dir, "avsc.jsonl");
    char *fp_path = th_path(F->dir, "fingerprints.json");
    th_consumer_t *cons[2][NTOPIC];
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < NTOPIC; t++) {
            char *name = topic_name(F->runs[k].prefix, t);
            CHECK((cons[k][t] = th_consumer_new(F->kafka, name)) != NULL, "no consumer for %s",
                  name);
            free(name);
        }
    /* everything is on Kafka already (the slots confirmed it): read until 1.5 s bring nothing */
    for (int64_t quiet_since = th_now_ms(); th_now_ms() - quiet_since < 1500;) {
        for (int k = 0; k < 2; k++)
            for (int t = 0; t < NTOPIC; t++) {
                int before = msgs[k][t].n;
                th_consumer_poll(cons[k][t], &msgs[k][t], 0, 20);
                if (msgs[k][t].n != before)
                    quiet_since = th_now_ms();
            }
    }
    FILE *in = fopen(in_path, "w");
    CHECK(in != NULL, "could not write %s", in_path);
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < NTOPIC; t++) {
            char *name = topic_name(F->runs[k].prefix, t);
            th_consumer_destroy(cons[k][t]);
            CHECK(msgs[k][t].n > 0, "no message on %s", name);
            for (int i = 0; i < msgs[k][t].n; i++) {
                th_msg_t *m = &msgs[k][t].v[i];
                json_t *line = json_pack("{s:s, s:s, s:o, s:o}", "framing",
                                         F->runs[k].confluent ? "confluent" : "soe", "topic",
                                         name, "key", b64(m->key, m->klen), "value",
                                         b64(m->value, m->vlen));
                char *text = json_dumps(line, JSON_COMPACT);
                fprintf(in, "%s\n", text);
                free(text);
                json_decref(line);
            }
            free(name);
        }
    fclose(in);
    char *fps = published_schemas();
    CHECK(th_write_file(fp_path, fps) == 0, "write %s", fp_path);
    free(fps);

    th_log("avsc decodes them with the published schemas only");
    char *script = th_path(th_source_dir(), "tests/interop/decode.mjs");
    char *argv[] = {"node", script, "--in", in_path, "--out", out_path, "--schemas", fp_path,
                    "--registry", (char *)th_registry_url(F->reg), NULL};
    int code = -1;
    char *err = NULL;
    int64_t t0 = th_now_ms();
    CHECK(th_run(argv, NULL, 120000, &code, NULL, &err) == 0 && code == 0, "node failed (%d): %s",
          code, err ? err : "");
    th_log("  node took %lld ms", (long long)(th_now_ms() - t0));
    free(err);
    char *decoded = th_read_file(out_path, NULL, 0);
    CHECK(decoded != NULL, "no output from node");

    th_log("Siphon's decoder and avsc agree on every message, field by field");
    char *save = NULL, *line = strtok_r(decoded, "\n", &save);
    int dec = 0, date = 0, ts = 0;
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < NTOPIC; t++) {
            int tombstones = 0;
            for (int i = 0; i < msgs[k][t].n; i++, line = strtok_r(NULL, "\n", &save)) {
                CHECK(line != NULL, "avsc gave fewer lines than messages");
                json_t *theirs = json_loads(line, 0, NULL);
                CHECK(theirs && !json_object_get(theirs, "error"), "avsc could not decode a "
                      "message of %s.%d: %s", F->runs[k].prefix, t, line);
                th_msg_t *m = &msgs[k][t].v[i];
                if (F->runs[k].confluent)
                    CHECK(th_registry_to_soe(F->reg, m, NULL, NULL) == 0, "re-frame");
                json_t *key = NULL, *value = NULL;
                siphon_reading(t, m, &key, &value);
                char why[1024] = "";
                json_t *tk = json_object_get(theirs, "key"), *tv = json_object_get(theirs, "value");
                CHECK((key ? same(key, tk, "key", why, sizeof(why)) : json_is_null(tk)) &&
                          (value ? same(value, tv, "value", why, sizeof(why))
                                 : json_is_null(tv)),
                      "%s topic %d message %d: %s", F->runs[k].prefix, t, i,
                      why[0] ? why : "one side has no key or value");
                tombstones += !value;
                if (t < NENT)
                    count_logical(tv, &dec, &date, &ts);
                json_decref(key);
                json_decref(value);
                json_decref(theirs);
            }
            if (t < NENT)
                th_log("  %s %-18s %4d messages (%d tombstones) agree", F->runs[k].prefix,
                       entities[t], msgs[k][t].n, tombstones);
            else
                th_log("  %s %-18s %4d messages agree", F->runs[k].prefix,
                       t == NENT ? "_dlq" : "_transactions", msgs[k][t].n);
        }
    th_log("  logical values read by avsc: %d decimals, %d dates, %d timestamps", dec, date, ts);
    CHECK(dec > 100 && date > 100 && ts > 100, "too few logical values were compared");
    for (int t = 0; t < NTOPIC; t++)
        CHECK(msgs[0][t].n == msgs[1][t].n, "topic %d: %d messages in soe, %d in cfl", t,
              msgs[0][t].n, msgs[1][t].n);
    CHECK(msgs[0][NENT].n == 4, "%d dead letters, expected 4", msgs[0][NENT].n);
    free(decoded);
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < NTOPIC; t++)
            th_msgs_free(&msgs[k][t]);
    free(script);
    free(in_path);
    free(out_path);
    free(fp_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_reads_the_same_in_avsc),
    };
    return cmocka_run_group_tests_name("0302-interop-avsc", tests, setup, teardown);
}
