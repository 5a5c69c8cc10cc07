/*
 * test_file_sink.c - the file and stdout sinks driven by a fake pipeline (their ops called
 * directly). File sink: events reported only after fsync, files rolled by size, age and schema,
 * tombstones, keyless events, records bigger than a block, crash leftovers recovered, the
 * folder lock, options; every file read back with avro-c's own reader (independent of the
 * sink's code) and with the sink's reader. Stdout sink: the line format and deliveries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <cmocka.h>
#include <jansson.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "sink/file/file.h"
#include "sink/stdout/stdout.h"

#define TS_MAX 1024

typedef struct ts_stream {
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
    siphon_buf_t kbuf, vbuf;
} ts_stream_t;

typedef struct ts_ctx {
    char dir[300], path[400];
    siphon_config_t cfg;
    siphon_kv_t props[8];
    siphon_sink_t *snk;
    char err[1024];
    int delivered[TS_MAX];
    long ndelivered;
    int failed;
    char last_err[512];
} ts_ctx_t;

/* An entity whose key holds an enum: the key schema and the envelope both define Region, which
 * the file schema must define once. */
static const char *ORDER_V1 =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"t.erp\",\"fields\":["
    "{\"name\":\"order_id\",\"type\":\"long\"},"
    "{\"name\":\"region\",\"type\":{\"type\":\"enum\",\"name\":\"Region\",\"symbols\":[\"EU\",\"US\"]}},"
    "{\"name\":\"total\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}},"
    "{\"name\":\"day\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}],\"default\":null},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
/* The same entity with one more nullable field: a new value fingerprint for the same topic. */
static const char *ORDER_V1B =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"t.erp\",\"fields\":["
    "{\"name\":\"order_id\",\"type\":\"long\"},"
    "{\"name\":\"region\",\"type\":{\"type\":\"enum\",\"name\":\"Region\",\"symbols\":[\"EU\",\"US\"]}},"
    "{\"name\":\"total\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}},"
    "{\"name\":\"day\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}],\"default\":null},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"extra\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

#define TOPIC "t.order.v1"

static void ts_stream_open(ts_stream_t *s, const char *json)
{
    char err[512];
    const char *keys[] = {"order_id", "region"};
    memset(s, 0, sizeof(*s));
    int rc = siphon_schema_parse(&s->sch, json, strlen(json), err, sizeof(err));
    if (rc < 0)
        fail_msg("schema: %s", err);
    rc = siphon_avro_stream_new(&s->st, s->sch, keys, 2, err, sizeof(err));
    if (rc < 0)
        fail_msg("stream: %s", err);
}

static void ts_stream_close(ts_stream_t *s)
{
    siphon_avro_stream_destroy(s->st);
    siphon_schema_destroy(s->sch);
    siphon_buf_free(&s->kbuf);
    siphon_buf_free(&s->vbuf);
}

/* Encode one event of order `id`: op c/u/d/t; note may be NULL; note_len > 0 makes a long note. */
static void ts_encode(ts_stream_t *s, char op, int64_t id, const char *region, const char *note,
               size_t note_len)
{
    char err[512], eid[64], digits[32];
    siphon_value_t row[6];
    int nf = siphon_schema_field_index(s->sch, "extra") >= 0 ? 6 : 5;
    memset(row, 0, sizeof(row));
    row[0].type = SIPHON_V_INT;
    row[0].u.i = id;
    row[1].type = SIPHON_V_TEXT;
    row[1].u.s.ptr = region;
    row[1].u.s.len = strlen(region);
    snprintf(digits, sizeof(digits), "%lld", (long long)(id * 100 + 50));
    row[2].type = SIPHON_V_DECIMAL;
    row[2].u.dec.digits = digits;
    row[2].u.dec.len = strlen(digits);
    row[2].u.dec.scale = 2;
    row[3].type = SIPHON_V_DATE;
    row[3].u.date = 19753; /* 2024-01-31 */
    row[4].type = note ? SIPHON_V_TEXT : SIPHON_V_NULL;
    if (note) {
        row[4].u.s.ptr = note;
        row[4].u.s.len = note_len ? note_len : strlen(note);
    }
    if (nf == 6)
        row[5].type = SIPHON_V_NULL;
    siphon_value_t key[2] = {row[0], row[1]};
    snprintf(eid, sizeof(eid), "0/%llX:%lld", (unsigned long long)id, (long long)id);
    siphon_avro_event_t ev = {
        .op = op,
        .before = NULL,
        .after = op == 'c' || op == 'u' ? row : NULL,
        .source = {.connector = "t", .db = "erp", .schema = "public", .table = "orders",
                   .pos = "0/1", .txid = 7, .commit_ts_us = 1700000000000000LL},
        .ts_us = 1700000000000001LL,
        .event_id = eid,
    };
    siphon_buf_reset(&s->kbuf);
    siphon_buf_reset(&s->vbuf);
    if (op != 't' && siphon_avro_stream_encode_key(s->st, key, &s->kbuf, err, sizeof(err)) < 0)
        fail_msg("encode key: %s", err);
    if (siphon_avro_stream_encode_value(s->st, &ev, &s->vbuf, err, sizeof(err)) < 0)
        fail_msg("encode value: %s", err);
}

/* ---- the fake pipeline ---- */

static void on_delivery(void *msg_opaque, int err, const char *errstr, void *cb_opaque)
{
    ts_ctx_t *c = cb_opaque;
    if (err) {
        c->failed++;
        snprintf(c->last_err, sizeof(c->last_err), "%s", errstr ? errstr : "?");
        return;
    }
    uintptr_t id = (uintptr_t)msg_opaque;
    assert_true(id > 0 && id < TS_MAX);
    c->delivered[id]++;
    c->ndelivered++;
}

static void ts_ctx_init(ts_ctx_t *c, const char *props)
{
    memset(c, 0, sizeof(*c));
    char tmpl[] = "/tmp/siphon-unit-sink-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    snprintf(c->dir, sizeof(c->dir), "%s", tmpl);
    snprintf(c->path, sizeof(c->path), "%s/out", tmpl);
    c->cfg.name = "unit";
    c->cfg.path = "unit.yaml";
    c->cfg.sink.type = "file";
    c->cfg.sink.path = c->path;
    c->cfg.sink.roll_bytes = 64LL << 20;
    c->cfg.sink.roll_ms = 600000;
    /* "k=v;k=v" */
    if (props) {
        char *dup = strdup(props), *save = NULL;
        for (char *kv = strtok_r(dup, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(kv, '=');
            assert_non_null(eq);
            *eq = '\0';
            c->props[c->cfg.sink.nprops].key = strdup(kv);
            c->props[c->cfg.sink.nprops].value = strdup(eq + 1);
            c->cfg.sink.nprops++;
        }
        free(dup);
        c->cfg.sink.props = c->props;
    }
}

static int ts_open(ts_ctx_t *c)
{
    return siphon_file_sink.open(&c->snk, &c->cfg, on_delivery, c, c->err, sizeof(c->err));
}

static void ts_register(ts_ctx_t *c, ts_stream_t *s)
{
    assert_int_equal(siphon_file_sink.register_schemas(
                         c->snk, TOPIC, siphon_avro_stream_key_fingerprint(s->st),
                         siphon_avro_stream_key_schema_json(s->st),
                         siphon_avro_stream_value_fingerprint(s->st),
                         siphon_avro_stream_value_schema_json(s->st), c->err, sizeof(c->err)),
                     0);
}

/* Produce the last encoded event of s with opaque id (tombstone: value left out). */
static int ts_produce(ts_ctx_t *c, ts_stream_t *s, uintptr_t id, int tombstone)
{
    siphon_sink_msg_t msg = {
        .topic = TOPIC,
        .key = s->kbuf.len ? s->kbuf.data : NULL,
        .klen = s->kbuf.len,
        .value = tombstone ? NULL : s->vbuf.data,
        .vlen = tombstone ? 0 : s->vbuf.len,
        .opaque = (void *)id,
    };
    return siphon_file_sink.produce(c->snk, &msg, c->err, sizeof(c->err));
}

static void ts_ctx_free(ts_ctx_t *c)
{
    siphon_file_sink.close(c->snk);
    c->snk = NULL;
    for (int i = 0; i < c->cfg.sink.nprops; i++) {
        free(c->props[i].key);
        free(c->props[i].value);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", c->dir);
}

/* Count files in the topic folder ending with suffix (".avro" does not match ".avro.tmp"). */
static int ts_count_files(ts_ctx_t *c, const char *suffix)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "ls '%s/" TOPIC "' 2>/dev/null | grep -c -- '%s$'", c->path,
             suffix);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = 0;
        pclose(p);
    }
    return n;
}

/* Read a closed file with avro-c alone: the number of records, and the event ids in order
 * (concatenated, ';'-separated, into ids when not NULL). -1 when avro-c cannot read it. */
static long ts_avroc_read(const char *path, char *ids, size_t idsize, int *keyless)
{
    avro_file_reader_t r;
    if (avro_file_reader(path, &r) != 0)
        return -1;
    avro_schema_t ws = avro_file_reader_get_writer_schema(r);
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t rec;
    avro_generic_value_new(iface, &rec);
    long n = 0;
    size_t off = 0;
    if (ids && idsize)
        ids[0] = '\0';
    while (avro_file_reader_read_value(r, &rec) == 0) {
        avro_value_t ev, id, key;
        const char *s = NULL;
        size_t len = 0;
        int disc = -1;
        if (avro_value_get_by_name(&rec, "event", &ev, NULL) != 0 ||
            avro_value_get_by_name(&ev, "event_id", &id, NULL) != 0 ||
            avro_value_get_string(&id, &s, &len) != 0 ||
            avro_value_get_by_name(&rec, "key", &key, NULL) != 0 ||
            avro_value_get_discriminant(&key, &disc) != 0) {
            n = -1;
            break;
        }
        if (disc == 0 && keyless)
            (*keyless)++;
        if (ids && off < idsize)
            off += (size_t)snprintf(ids + off, idsize - off, "%s;", s);
        n++;
    }
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_file_reader_close(r);
    return n;
}

/* Total records over every closed file of the topic, in name order; ids appended. */
static long ts_read_all(ts_ctx_t *c, char *ids, size_t idsize)
{
    char dir[600], err[512];
    char **names = NULL;
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/" TOPIC, c->path);
    assert_int_equal(siphon_file_list(&names, &n, dir, err, sizeof(err)), 0);
    long total = 0;
    size_t off = 0;
    if (ids && idsize)
        ids[0] = '\0';
    for (int i = 0; i < n; i++) {
        char p[900];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        long k = ts_avroc_read(p, ids ? ids + off : NULL, ids ? idsize - off : 0, NULL);
        assert_true(k > 0);
        total += k;
        if (ids)
            off = strlen(ids);
    }
    siphon_file_list_free(names, n);
    return total;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ---- */

/* Deliveries wait for the fsync; tombstones are reported without being written; a closed file
 * reads back with avro-c and keeps the schema's logical types in its header. */
static void test_deliver_after_sync(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "sync.interval.ms=60000");
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);

    ts_encode(&s, 'c', 1, "EU", "first", 0);
    assert_int_equal(ts_produce(&c, &s, 1, 0), 0);
    ts_encode(&s, 'u', 1, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &s, 2, 0), 0);
    ts_encode(&s, 'd', 1, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &s, 3, 0), 0);
    assert_int_equal(ts_produce(&c, &s, 4, 1), 0); /* its tombstone */
    assert_int_equal(siphon_file_sink.inflight(c.snk), 4);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 1);

    /* before the sync interval: only the tombstone is reported */
    assert_int_equal(siphon_file_sink.poll(c.snk, 0), 1);
    assert_int_equal(c.delivered[4], 1);
    assert_int_equal(c.delivered[1] + c.delivered[2] + c.delivered[3], 0);
    assert_int_equal(siphon_file_sink.inflight(c.snk), 3);

    /* flush syncs and reports the rest */
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    assert_int_equal(c.ndelivered, 4);
    assert_int_equal(siphon_file_sink.inflight(c.snk), 0);
    assert_int_equal(c.failed, 0);

    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 0);
    assert_int_equal(ts_count_files(&c, ".avro"), 1);

    char ids[256], path[700];
    assert_int_equal(ts_read_all(&c, ids, sizeof(ids)), 3);
    assert_string_equal(ids, "0/1:1;0/1:1;0/1:1;");
    snprintf(path, sizeof(path), "%s/" TOPIC "/" TOPIC "-0000000001.avro", c.path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char head[8192];
    size_t n = fread(head, 1, sizeof(head) - 1, f);
    fclose(f);
    head[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!head[i])
            head[i] = ' ';
    assert_non_null(strstr(head, "\"logicalType\":\"decimal\""));
    assert_non_null(strstr(head, "OrderFileRecord"));
    assert_non_null(strstr(head, "siphon.topic"));

    /* the sink's reader renders logical types and the key */
    siphon_file_reader_t *rd = NULL;
    char err[512], *key = NULL, *ev = NULL;
    assert_int_equal(siphon_file_reader_open(&rd, path, err, sizeof(err)), 0);
    assert_string_equal(siphon_file_reader_topic(rd), TOPIC);
    assert_int_equal(siphon_file_reader_count(rd), 3);
    assert_int_equal(siphon_file_reader_next(rd, &key, &ev, err, sizeof(err)), 1);
    assert_string_equal(key, "{\"order_id\":1,\"region\":\"EU\"}");
    assert_non_null(strstr(ev, "\"total\":\"1.50\""));
    assert_non_null(strstr(ev, "\"day\":\"2024-01-31\""));
    assert_non_null(strstr(ev, "\"op\":\"c\""));
    free(key);
    free(ev);
    assert_int_equal(siphon_file_reader_next(rd, &key, &ev, err, sizeof(err)), 1);
    free(key);
    free(ev);
    /* the delete keeps its key although before and after are null */
    assert_int_equal(siphon_file_reader_next(rd, &key, &ev, err, sizeof(err)), 1);
    assert_string_equal(key, "{\"order_id\":1,\"region\":\"EU\"}");
    assert_non_null(strstr(ev, "\"op\":\"d\""));
    assert_non_null(strstr(ev, "\"before\":null,\"after\":null"));
    free(key);
    free(ev);
    assert_int_equal(siphon_file_reader_next(rd, &key, &ev, err, sizeof(err)), 0);
    siphon_file_reader_close(rd);

    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* poll() waits for the sync interval and then reports. */
static void test_poll_syncs_on_interval(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "sync.interval.ms=50");
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    for (uintptr_t i = 1; i <= 10; i++) {
        ts_encode(&s, 'c', (int64_t)i, "US", NULL, 0);
        assert_int_equal(ts_produce(&c, &s, i, 0), 0);
    }
    assert_int_equal(siphon_file_sink.poll(c.snk, 0), 0);
    int64_t t0 = mono_ms();
    int got = 0;
    while (got < 10 && mono_ms() - t0 < 2000)
        got += siphon_file_sink.poll(c.snk, 100);
    assert_int_equal(got, 10);
    /* the .tmp already holds them, readable up to its last complete block */
    char dir[600], err[512], **names = NULL;
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/" TOPIC "/" TOPIC "-0000000001.avro.tmp", c.path);
    siphon_file_reader_t *rd = NULL;
    assert_int_equal(siphon_file_reader_open(&rd, dir, err, sizeof(err)), 0);
    assert_int_equal(siphon_file_reader_count(rd), 10);
    siphon_file_reader_close(rd);
    /* and the folder listing shows no closed file yet */
    snprintf(dir, sizeof(dir), "%s/" TOPIC, c.path);
    assert_int_equal(siphon_file_list(&names, &n, dir, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* sync.records forces a sync from produce(): memory stays bounded without a poll. */
static void test_sync_records(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "sync.interval.ms=60000;sync.records=5");
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    for (uintptr_t i = 1; i <= 12; i++) {
        ts_encode(&s, 'c', (int64_t)i, "US", NULL, 0);
        assert_int_equal(ts_produce(&c, &s, i, 0), 0);
    }
    assert_int_equal(siphon_file_sink.poll(c.snk, 0), 10);
    assert_int_equal(siphon_file_sink.inflight(c.snk), 2);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* Files roll past roll_bytes; names follow the sequence; nothing is lost across files. */
static void test_roll_by_size(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "sync.interval.ms=0");
    c.cfg.sink.roll_bytes = 4096;
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    char want[8192];
    size_t off = 0;
    for (uintptr_t i = 1; i <= 300; i++) {
        ts_encode(&s, 'c', (int64_t)i, i % 2 ? "EU" : "US", "a note of some length", 0);
        assert_int_equal(ts_produce(&c, &s, i, 0), 0);
        off += (size_t)snprintf(want + off, sizeof(want) - off, "0/%llX:%llu;",
                                (unsigned long long)i, (unsigned long long)i);
        if (i % 50 == 0)
            siphon_file_sink.poll(c.snk, 0);
    }
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    assert_int_equal(c.ndelivered, 300);
    int closed = ts_count_files(&c, ".avro");
    assert_true(closed >= 3);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 1);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    assert_int_equal(ts_count_files(&c, ".avro"), closed + 1);
    char ids[8192];
    assert_int_equal(ts_read_all(&c, ids, sizeof(ids)), 300);
    assert_string_equal(ids, want);
    char p[700];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/" TOPIC "/" TOPIC "-%010d.avro", c.path, closed + 1);
    assert_int_equal(stat(p, &sb), 0);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* A file older than roll_ms is closed by poll(), even when nothing more arrives. */
static void test_roll_by_age(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, NULL);
    c.cfg.sink.roll_ms = 100;
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    ts_encode(&s, 'c', 5, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &s, 1, 0), 0);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 1);
    int64_t t0 = mono_ms();
    while (ts_count_files(&c, ".avro") == 0 && mono_ms() - t0 < 2000)
        siphon_file_sink.poll(c.snk, 50);
    assert_int_equal(ts_count_files(&c, ".avro"), 1);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 0);
    assert_int_equal(c.delivered[1], 1);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* A new value schema on the same topic starts a new file: one schema per file. */
static void test_schema_change(void **state)
{
    ts_ctx_t c;
    ts_stream_t a, b;
    ts_ctx_init(&c, NULL);
    ts_stream_open(&a, ORDER_V1);
    ts_stream_open(&b, ORDER_V1B);
    assert_true(siphon_avro_stream_value_fingerprint(a.st) !=
                siphon_avro_stream_value_fingerprint(b.st));
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &a);
    ts_register(&c, &b);
    ts_encode(&a, 'c', 1, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &a, 1, 0), 0);
    ts_encode(&b, 'c', 2, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &b, 2, 0), 0);
    ts_encode(&a, 'c', 3, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &a, 3, 0), 0);
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    assert_int_equal(c.ndelivered, 3);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    assert_int_equal(ts_count_files(&c, ".avro"), 3);
    char ids[256];
    assert_int_equal(ts_read_all(&c, ids, sizeof(ids)), 3);
    assert_string_equal(ids, "0/1:1;0/2:2;0/3:3;");
    ts_stream_close(&a);
    ts_stream_close(&b);
    ts_ctx_free(&c);
}

/* A truncate event has no key: written with a null key. */
static void test_keyless_event(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, NULL);
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    ts_encode(&s, 't', 9, "EU", NULL, 0);
    assert_int_equal(s.kbuf.len, 0);
    assert_int_equal(ts_produce(&c, &s, 1, 0), 0);
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    char p[700];
    int keyless = 0;
    snprintf(p, sizeof(p), "%s/" TOPIC "/" TOPIC "-0000000001.avro", c.path);
    assert_int_equal(ts_avroc_read(p, NULL, 0, &keyless), 1);
    assert_int_equal(keyless, 1);
    siphon_file_reader_t *rd = NULL;
    char err[512], *key = NULL, *ev = NULL;
    assert_int_equal(siphon_file_reader_open(&rd, p, err, sizeof(err)), 0);
    assert_int_equal(siphon_file_reader_next(rd, &key, &ev, err, sizeof(err)), 1);
    assert_null(key);
    assert_non_null(strstr(ev, "\"op\":\"t\""));
    free(ev);
    siphon_file_reader_close(rd);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* An event larger than the writer's block (64 KiB) grows the block. */
static void test_big_event(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, NULL);
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_register(&c, &s);
    size_t big = 300 * 1024;
    char *note = malloc(big);
    memset(note, 'x', big);
    ts_encode(&s, 'c', 1, "EU", "small", 0);
    assert_int_equal(ts_produce(&c, &s, 1, 0), 0);
    ts_encode(&s, 'c', 2, "EU", note, big);
    assert_int_equal(ts_produce(&c, &s, 2, 0), 0);
    ts_encode(&s, 'c', 3, "EU", "small", 0);
    assert_int_equal(ts_produce(&c, &s, 3, 0), 0);
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    assert_int_equal(c.ndelivered, 3);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    char ids[256];
    assert_int_equal(ts_read_all(&c, ids, sizeof(ids)), 3);
    assert_string_equal(ids, "0/1:1;0/2:2;0/3:3;");
    free(note);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* A crash leaves a .tmp: the next open keeps its complete blocks (everything that was reported
 * delivered), cuts an incomplete block, renames it, and numbering goes on after it. A .tmp with
 * no complete block is removed. */
static void test_recover_after_crash(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "sync.interval.ms=60000");
    ts_stream_open(&s, ORDER_V1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the "siphon" that dies: 7 events synced, 3 more only buffered, then garbage that
         * looks like the start of a block, and no close */
        if (ts_open(&c) != 0)
            _exit(10);
        ts_register(&c, &s);
        for (uintptr_t i = 1; i <= 7; i++) {
            ts_encode(&s, 'c', (int64_t)i, "EU", NULL, 0);
            if (ts_produce(&c, &s, i, 0) != 0)
                _exit(11);
        }
        if (siphon_file_sink.flush(c.snk, 1000) != 0 || c.ndelivered != 7)
            _exit(12);
        for (uintptr_t i = 8; i <= 10; i++) {
            ts_encode(&s, 'c', (int64_t)i, "EU", NULL, 0);
            if (ts_produce(&c, &s, i, 0) != 0)
                _exit(13);
        }
        char p[700];
        snprintf(p, sizeof(p), "%s/" TOPIC "/" TOPIC "-0000000001.avro.tmp", c.path);
        FILE *f = fopen(p, "ab");
        if (!f || fwrite("\x06\x80\x04partial", 1, 10, f) != 10 || fclose(f) != 0)
            _exit(14);
        /* a second leftover holding only a header */
        char q[700];
        snprintf(q, sizeof(q), "%s/" TOPIC "/" TOPIC "-0000000002.avro.tmp", c.path);
        FILE *g = fopen(q, "wb");
        if (!g || fwrite("Obj\x01\x00", 1, 5, g) != 5 || fclose(g) != 0)
            _exit(15);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 2);
    assert_int_equal(ts_count_files(&c, ".avro"), 0);

    assert_int_equal(ts_open(&c), 0);
    assert_int_equal(ts_count_files(&c, ".avro.tmp"), 0);
    assert_int_equal(ts_count_files(&c, ".avro"), 1);
    char ids[256];
    assert_int_equal(ts_read_all(&c, ids, sizeof(ids)), 7);
    assert_string_equal(ids, "0/1:1;0/2:2;0/3:3;0/4:4;0/5:5;0/6:6;0/7:7;");

    /* numbering goes on after the kept file (the removed one left no trace) */
    ts_register(&c, &s);
    ts_encode(&s, 'c', 8, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &s, 8, 0), 0);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    char p[700];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/" TOPIC "/" TOPIC "-0000000002.avro", c.path);
    assert_int_equal(stat(p, &sb), 0);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* One writer per folder. */
static void test_folder_lock(void **state)
{
    ts_ctx_t c, d;
    ts_ctx_init(&c, NULL);
    ts_ctx_init(&d, NULL);
    snprintf(d.path, sizeof(d.path), "%s", c.path);
    assert_int_equal(ts_open(&c), 0);
    assert_int_equal(ts_open(&d), SIPHON_EINVAL);
    assert_non_null(strstr(d.err, "another siphon process is writing to"));
    assert_null(d.snk);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    assert_int_equal(ts_open(&d), 0);
    ts_ctx_free(&d);
    ts_ctx_free(&c);
}

/* Options are checked; an event whose schema is unknown is refused with its fingerprints. */
static void test_options_and_unknown_schema(void **state)
{
    ts_ctx_t c;
    ts_stream_t s;
    ts_ctx_init(&c, "bootstrap.servers=x:9092");
    assert_int_equal(ts_open(&c), SIPHON_EINVAL);
    assert_non_null(strstr(c.err, "unknown key 'bootstrap.servers' in sink.properties"));
    ts_ctx_free(&c);

    ts_ctx_init(&c, "codec=zip");
    assert_int_equal(ts_open(&c), SIPHON_EINVAL);
    assert_non_null(strstr(c.err, "codec is 'zip'"));
    ts_ctx_free(&c);

    ts_ctx_init(&c, "codec=deflate");
    ts_stream_open(&s, ORDER_V1);
    assert_int_equal(ts_open(&c), 0);
    ts_encode(&s, 'c', 1, "EU", NULL, 0);
    assert_int_equal(ts_produce(&c, &s, 1, 0), SIPHON_EINVAL);
    assert_non_null(strstr(c.err, "no schema is known for its fingerprints"));
    ts_register(&c, &s);
    for (uintptr_t i = 1; i <= 20; i++) {
        ts_encode(&s, 'c', (int64_t)i, "EU", "deflate me deflate me deflate me", 0);
        assert_int_equal(ts_produce(&c, &s, i, 0), 0);
    }
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    assert_int_equal(ts_read_all(&c, NULL, 0), 20);
    ts_stream_close(&s);
    ts_ctx_free(&c);
}

/* Without register_schemas (an older pipeline), the sink reads the config's mappings. */
static void test_schemas_from_config(void **state)
{
    const char *src = getenv("SIPHON_SOURCE_DIR");
    if (!src)
        fail_msg("SIPHON_SOURCE_DIR is not set (ctest sets it)");
    char mdir[600], sdir[600], err[512];
    snprintf(mdir, sizeof(mdir), "%s/mappings", src);
    snprintf(sdir, sizeof(sdir), "%s/schemas", src);
    siphon_schema_t *sch = NULL;
    char path[700];
    snprintf(path, sizeof(path), "%s/sales_order.v1.avsc", sdir);
    assert_int_equal(siphon_schema_load(&sch, path, err, sizeof(err)), 0);
    const char *keys[] = {"company", "order_number"};
    siphon_avro_stream_t *st = NULL;
    assert_int_equal(siphon_avro_stream_new(&st, sch, keys, 2, err, sizeof(err)), 0);

    ts_ctx_t c;
    ts_ctx_init(&c, NULL);
    c.cfg.mappings_dir = mdir;
    c.cfg.schemas_dir = sdir;
    assert_int_equal(ts_open(&c), 0);
    siphon_value_t key[2] = {{.type = SIPHON_V_TEXT}, {.type = SIPHON_V_TEXT}};
    key[0].u.s.ptr = "01";
    key[0].u.s.len = 2;
    key[1].u.s.ptr = "SO-1";
    key[1].u.s.len = 4;
    siphon_avro_event_t ev = {.op = 'd', .source = {.connector = "t", .db = "erp",
                                                    .schema = "public", .table = "oehdr",
                                                    .pos = "0/1"},
                              .event_id = "0/1:0"};
    siphon_buf_t kb = {0}, vb = {0};
    assert_int_equal(siphon_avro_stream_encode_key(st, key, &kb, err, sizeof(err)), 0);
    assert_int_equal(siphon_avro_stream_encode_value(st, &ev, &vb, err, sizeof(err)), 0);
    siphon_sink_msg_t msg = {.topic = "erp.sales_order.v1", .key = kb.data, .klen = kb.len,
                             .value = vb.data, .vlen = vb.len, .opaque = (void *)1};
    assert_int_equal(siphon_file_sink.produce(c.snk, &msg, c.err, sizeof(c.err)), 0);
    assert_int_equal(siphon_file_sink.flush(c.snk, 1000), 0);
    assert_int_equal(c.delivered[1], 1);
    siphon_file_sink.close(c.snk);
    c.snk = NULL;
    snprintf(path, sizeof(path), "%s/erp.sales_order.v1/erp.sales_order.v1-0000000001.avro",
             c.path);
    siphon_file_reader_t *rd = NULL;
    char *kj = NULL, *ej = NULL;
    assert_int_equal(siphon_file_reader_open(&rd, path, err, sizeof(err)), 0);
    assert_int_equal(siphon_file_reader_next(rd, &kj, &ej, err, sizeof(err)), 1);
    assert_string_equal(kj, "{\"company\":\"01\",\"order_number\":\"SO-1\"}");
    free(kj);
    free(ej);
    siphon_file_reader_close(rd);
    siphon_buf_free(&kb);
    siphon_buf_free(&vb);
    siphon_avro_stream_destroy(st);
    siphon_schema_destroy(sch);
    ts_ctx_free(&c);
}

/* Any other Avro container file is read through avro-c's own rendering. */
static void test_reader_foreign_file(void **state)
{
    ts_ctx_t c;
    ts_ctx_init(&c, NULL);
    char p[700], err[512];
    snprintf(p, sizeof(p), "%s/plain.avro", c.dir);
    const char *js = "{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"}]}";
    avro_schema_t sc;
    assert_int_equal(avro_schema_from_json_length(js, strlen(js), &sc), 0);
    avro_file_writer_t w;
    assert_int_equal(avro_file_writer_create(p, sc, &w), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(sc);
    avro_value_t v, f;
    avro_generic_value_new(iface, &v);
    for (int i = 0; i < 3; i++) {
        avro_value_get_by_index(&v, 0, &f, NULL);
        avro_value_set_long(&f, 40 + i);
        assert_int_equal(avro_file_writer_append_value(w, &v), 0);
    }
    avro_file_writer_close(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(sc);

    siphon_file_reader_t *rd = NULL;
    char *kj = NULL, *ej = NULL;
    assert_int_equal(siphon_file_reader_open(&rd, p, err, sizeof(err)), 0);
    assert_null(siphon_file_reader_topic(rd));
    assert_int_equal(siphon_file_reader_count(rd), 3);
    assert_int_equal(siphon_file_reader_next(rd, &kj, &ej, err, sizeof(err)), 1);
    assert_null(kj);
    json_t *j = json_loads(ej, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 40);
    json_decref(j);
    free(ej);
    siphon_file_reader_close(rd);

    /* not a container file at all */
    FILE *t = fopen(p, "wb");
    fputs("hello", t);
    fclose(t);
    assert_int_equal(siphon_file_reader_open(&rd, p, err, sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "not an Avro container file"));
    ts_ctx_free(&c);
}

/* The stdout sink prints {"topic","key","event"} lines, tombstones with "event":null, keys
 * decoded with the config's mappings; deliveries after the flush of stdout. */
static void test_stdout_sink(void **state)
{
    const char *src = getenv("SIPHON_SOURCE_DIR");
    if (!src)
        fail_msg("SIPHON_SOURCE_DIR is not set (ctest sets it)");
    char mdir[600], sdir[600], path[700], err[512];
    snprintf(mdir, sizeof(mdir), "%s/mappings", src);
    snprintf(sdir, sizeof(sdir), "%s/schemas", src);
    snprintf(path, sizeof(path), "%s/sales_order.v1.avsc", sdir);
    siphon_schema_t *sch = NULL;
    siphon_avro_stream_t *st = NULL;
    const char *keys[] = {"company", "order_number"};
    assert_int_equal(siphon_schema_load(&sch, path, err, sizeof(err)), 0);
    assert_int_equal(siphon_avro_stream_new(&st, sch, keys, 2, err, sizeof(err)), 0);
    siphon_value_t key[2] = {{.type = SIPHON_V_TEXT}, {.type = SIPHON_V_TEXT}};
    key[0].u.s.ptr = "01";
    key[0].u.s.len = 2;
    key[1].u.s.ptr = "SO-\"1";
    key[1].u.s.len = 5;
    siphon_buf_t kb = {0};
    assert_int_equal(siphon_avro_stream_encode_key(st, key, &kb, err, sizeof(err)), 0);

    ts_ctx_t c;
    ts_ctx_init(&c, NULL);
    c.cfg.sink.type = "stdout";
    c.cfg.mappings_dir = mdir;
    c.cfg.schemas_dir = sdir;
    char outp[500];
    snprintf(outp, sizeof(outp), "%s/stdout.txt", c.dir);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(outp, "w");
    assert_non_null(f);
    dup2(fileno(f), 1);
    assert_int_equal(siphon_stdout_sink.open(&c.snk, &c.cfg, on_delivery, &c, c.err,
                                             sizeof(c.err)), 0);
    siphon_sink_msg_t msg = {.topic = "erp.\"x\"", .key = kb.data, .klen = kb.len,
                             .value = "v", .vlen = 1, .json = "{\"op\":\"d\"}",
                             .opaque = (void *)1};
    assert_int_equal(siphon_stdout_sink.produce(c.snk, &msg, c.err, sizeof(c.err)), 0);
    msg.value = NULL;
    msg.json = NULL;
    msg.opaque = (void *)2;
    assert_int_equal(siphon_stdout_sink.produce(c.snk, &msg, c.err, sizeof(c.err)), 0);
    assert_int_equal(c.ndelivered, 0);
    assert_int_equal(siphon_stdout_sink.poll(c.snk, 0), 2);
    siphon_stdout_sink.close(c.snk);
    c.snk = NULL;
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    assert_int_equal(c.ndelivered, 2);
    FILE *r = fopen(outp, "r");
    char l1[512] = "", l2[512] = "";
    assert_non_null(r);
    assert_non_null(fgets(l1, sizeof(l1), r));
    assert_non_null(fgets(l2, sizeof(l2), r));
    fclose(r);
    assert_string_equal(l1, "{\"topic\":\"erp.\\\"x\\\"\",\"key\":{\"company\":\"01\","
                            "\"order_number\":\"SO-\\\"1\"},\"event\":{\"op\":\"d\"}}\n");
    assert_non_null(strstr(l2, "\"event\":null}"));
    assert_non_null(strstr(l2, "\"order_number\":\"SO-\\\"1\""));
    siphon_buf_free(&kb);
    siphon_avro_stream_destroy(st);
    siphon_schema_destroy(sch);
    ts_ctx_free(&c);
}

int main(void)
{
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deliver_after_sync),
        cmocka_unit_test(test_poll_syncs_on_interval),
        cmocka_unit_test(test_sync_records),
        cmocka_unit_test(test_roll_by_size),
        cmocka_unit_test(test_roll_by_age),
        cmocka_unit_test(test_schema_change),
        cmocka_unit_test(test_keyless_event),
        cmocka_unit_test(test_big_event),
        cmocka_unit_test(test_recover_after_crash),
        cmocka_unit_test(test_folder_lock),
        cmocka_unit_test(test_options_and_unknown_schema),
        cmocka_unit_test(test_schemas_from_config),
        cmocka_unit_test(test_reader_foreign_file),
        cmocka_unit_test(test_stdout_sink),
    };
    int rc = cmocka_run_group_tests_name("file sink", tests, NULL, NULL);
    return rc;
}
