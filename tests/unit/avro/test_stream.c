/*
 * test_stream.c - key and envelope schemas of a stream, encoding events with every logical type
 * and decoding them back to JSON, unchanged (TOAST) fields, conversion errors, and a timing
 * print of the hot path (not asserted).
 */
#include "avro_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/error.h"

#define NF 22 /* fields of tests/golden/avro/schemas/sales_order.v1.avsc */

enum {
    F_ORDER_ID, F_COMPANY, F_AMOUNT, F_BIG, F_FX, F_ORDER_DATE, F_SHIP_TIME, F_SHIP_TIME_MS,
    F_CREATED_AT, F_CREATED_MS, F_LOCAL_TS, F_GUID, F_STATUS, F_PREV_STATUS, F_NOTE, F_QTY,
    F_WEIGHT, F_RATIO, F_ACTIVE, F_BLOB, F_ATTRS, F_TAGS
};

typedef struct fixture {
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
    siphon_value_t after[NF];
    char *heap[32]; /* exact-size copies of texts, so a read past the end would be caught */
    int nheap;
} fixture_t;

static siphon_value_t vint(int64_t i)
{
    siphon_value_t v = {.type = SIPHON_V_INT};
    v.u.i = i;
    return v;
}

static siphon_value_t vnull(void)
{
    siphon_value_t v = {.type = SIPHON_V_NULL};
    return v;
}

static siphon_value_t vtext_t(fixture_t *fx, siphon_vtype_t t, const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    if (fx->nheap < 32)
        fx->heap[fx->nheap++] = copy;
    siphon_value_t v = {.type = t};
    v.u.s.ptr = copy;
    v.u.s.len = n;
    return v;
}

static siphon_value_t vtext(fixture_t *fx, const char *s)
{
    return vtext_t(fx, SIPHON_V_TEXT, s, strlen(s));
}

static siphon_value_t vdec(const char *digits, int scale)
{
    siphon_value_t v = {.type = SIPHON_V_DECIMAL};
    v.u.dec.digits = digits;
    v.u.dec.len = strlen(digits);
    v.u.dec.scale = scale;
    return v;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char path[4096], err[512] = "";
    snprintf(path, sizeof(path), "%s/tests/golden/avro/schemas/sales_order.v1.avsc",
             avro_test_source_dir());
    if (siphon_schema_load(&fx->sch, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    const char *key[] = {"company", "order_id"};
    if (siphon_avro_stream_new(&fx->st, fx->sch, key, 2, err, sizeof(err)) != 0)
        fail_msg("%s", err);

    siphon_value_t *a = fx->after;
    a[F_ORDER_ID] = vint(1001);
    a[F_COMPANY] = vtext(fx, "ACME");
    a[F_AMOUNT] = vdec("12345", 2);
    a[F_BIG] = vdec("-123456789012345678901234567890123", 2);
    a[F_FX] = vdec("-1", 0);
    a[F_ORDER_DATE].type = SIPHON_V_DATE;
    a[F_ORDER_DATE].u.date = 19782; /* 2024-02-29 */
    a[F_SHIP_TIME].type = SIPHON_V_TIME;
    a[F_SHIP_TIME].u.time_us = 49506123456; /* 13:45:06.123456 */
    a[F_SHIP_TIME_MS] = a[F_SHIP_TIME];
    a[F_CREATED_AT].type = SIPHON_V_TIMESTAMP;
    a[F_CREATED_AT].u.ts.us = 1709214306123456; /* 2024-02-29T13:45:06.123456Z */
    a[F_CREATED_AT].u.ts.tz = 1;
    a[F_CREATED_MS].type = SIPHON_V_TIMESTAMP;
    a[F_CREATED_MS].u.ts.us = -141782400000001; /* 1965-07-04T23:59:59.999999Z */
    a[F_LOCAL_TS] = a[F_CREATED_AT];
    a[F_LOCAL_TS].u.ts.tz = 0;
    a[F_GUID].type = SIPHON_V_UUID;
    const uint8_t g[16] = {0x0e, 0x9a, 0x3c, 0x5b, 0x1d, 0x2f, 0x4a, 0x6b,
                           0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d};
    memcpy(a[F_GUID].u.uuid, g, 16);
    a[F_STATUS] = vtext(fx, "SHIPPED");
    a[F_PREV_STATUS] = vnull();
    a[F_NOTE] = vtext(fx, "say \"hi\"\n\xc3\xa9t\xc3\xa9");
    a[F_QTY] = vint(-7);
    a[F_WEIGHT].type = SIPHON_V_FLOAT;
    a[F_WEIGHT].u.f = 0.1;
    a[F_RATIO] = vint(3);
    a[F_ACTIVE].type = SIPHON_V_BOOL;
    a[F_ACTIVE].u.b = 1;
    a[F_BLOB] = vtext_t(fx, SIPHON_V_BYTES, "\xde\xad\x00", 3);
    a[F_ATTRS] = vtext_t(fx, SIPHON_V_JSON, "{\"a\":1}", 7);
    a[F_TAGS] = vnull();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    siphon_avro_stream_destroy(fx->st);
    siphon_schema_destroy(fx->sch);
    for (int i = 0; i < fx->nheap; i++)
        free(fx->heap[i]);
    free(fx);
    return 0;
}

static siphon_avro_event_t event(char op, const siphon_value_t *before, const siphon_value_t *after)
{
    siphon_avro_event_t ev = {
        .op = op,
        .before = before,
        .after = after,
        .source = {.connector = "erp", .db = "erpdb", .schema = "public", .table = "oehdr",
                   .pos = "0/16B3748", .txid = 771, .commit_ts_us = 1709214306000000,
                   .snapshot = 0},
        .ts_us = 1709214307000001,
        .event_id = "0/16B3748:3",
    };
    return ev;
}

/* Encode, decode back to JSON, parse it. */
static json_t *round_trip(fixture_t *fx, const siphon_avro_event_t *ev)
{
    siphon_buf_t out = {0};
    char err[512] = "";
    if (siphon_avro_stream_encode_value(fx->st, ev, &out, err, sizeof(err)) != 0)
        fail_msg("encode: %s", err);
    char *text = NULL;
    if (siphon_avro_stream_decode_json(&text, fx->st, 0, out.data, out.len, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("decoded text is not JSON (%s): %s", jerr.text, text);
    free(text);
    siphon_buf_free(&out);
    return j;
}

static const char *jstr(json_t *obj, const char *path1, const char *path2)
{
    json_t *o = json_object_get(obj, path1);
    if (path2)
        o = json_object_get(o, path2);
    if (!json_is_string(o))
        fail_msg("%s.%s is not a string", path1, path2 ? path2 : "");
    return json_string_value(o);
}

static void test_key_schema_and_encoding(void **state)
{
    fixture_t *fx = *state;
    const char *kjson = siphon_avro_stream_key_schema_json(fx->st);
    json_t *k = json_loads(kjson, 0, NULL);
    assert_non_null(k);
    assert_string_equal(json_string_value(json_object_get(k, "name")), "com.acme.erp.SalesOrderKey");
    json_t *kf = json_object_get(k, "fields");
    assert_int_equal(json_array_size(kf), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(kf, 0), "name")), "company");
    assert_string_equal(json_string_value(json_object_get(json_array_get(kf, 1), "name")), "order_id");
    json_decref(k);

    /* the fingerprint is that of the canonical form of the published text */
    char *canon = NULL, err[512];
    assert_int_equal(siphon_avro_canonical_form(&canon, kjson, strlen(kjson), err, sizeof(err)), 0);
    assert_string_equal(canon, "{\"name\":\"com.acme.erp.SalesOrderKey\",\"type\":\"record\","
                               "\"fields\":[{\"name\":\"company\",\"type\":\"string\"},"
                               "{\"name\":\"order_id\",\"type\":\"long\"}]}");
    uint64_t fp = siphon_avro_fingerprint64(canon, strlen(canon));
    assert_true(siphon_avro_stream_key_fingerprint(fx->st) == fp);
    free(canon);

    siphon_value_t key[2] = {fx->after[F_COMPANY], fx->after[F_ORDER_ID]};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_stream_encode_key(fx->st, key, &out, err, sizeof(err)), 0);
    /* header, then Avro binary: string "ACME" (zigzag length 4 = 0x08), long 1001 (zigzag 2002
     * = varint d2 0f) */
    uint8_t want[SIPHON_AVRO_SOE_HEADER_LEN + 7];
    siphon_avro_soe_header(want, fp);
    memcpy(want + SIPHON_AVRO_SOE_HEADER_LEN, "\x08" "ACME" "\xd2\x0f", 7);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));

    char *text = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&text, fx->st, 1, out.data, out.len, err,
                                                    sizeof(err)), 0);
    assert_string_equal(text, "{\"company\":\"ACME\",\"order_id\":1001}");
    free(text);

    /* the key decoded as an envelope: the fingerprint does not match */
    assert_int_equal(siphon_avro_stream_decode_json(&text, fx->st, 0, out.data, out.len, err,
                                                    sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "fingerprint"));
    /* truncated and trailing garbage */
    assert_int_equal(siphon_avro_stream_decode_json(&text, fx->st, 1, out.data, out.len - 1, err,
                                                    sizeof(err)), SIPHON_EPROTO);
    siphon_buf_appendc(&out, 0x00);
    assert_int_equal(siphon_avro_stream_decode_json(&text, fx->st, 1, out.data, out.len, err,
                                                    sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "1 bytes follow"));
    siphon_buf_free(&out);
}

static void test_envelope_schema(void **state)
{
    fixture_t *fx = *state;
    const char *vjson = siphon_avro_stream_value_schema_json(fx->st);
    json_t *v = json_loads(vjson, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "SalesOrderEnvelope");
    assert_string_equal(json_string_value(json_object_get(v, "namespace")), "com.acme.erp");
    json_t *f = json_object_get(v, "fields");
    const char *names[] = {"before", "after", "source", "op", "ts_us", "event_id",
                           "unchanged_fields", "transaction"};
    assert_int_equal(json_array_size(f), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(f, i), "name")),
                            names[i]);
    /* before embeds the entity as published (logical types, docs) and defaults to null */
    json_t *before = json_array_get(f, 0);
    assert_true(json_is_null(json_object_get(before, "default")));
    json_t *bt = json_object_get(before, "type");
    assert_string_equal(json_string_value(json_array_get(bt, 0)), "null");
    assert_string_equal(json_string_value(json_object_get(json_array_get(bt, 1), "name")),
                        "SalesOrder");
    assert_non_null(strstr(vjson, "\"logicalType\":\"decimal\""));
    assert_non_null(strstr(vjson, "\"doc\":\"order number\""));
    json_t *at = json_object_get(json_array_get(f, 1), "type");
    assert_string_equal(json_string_value(json_array_get(at, 1)), "com.acme.erp.SalesOrder");
    json_t *src = json_object_get(json_array_get(f, 2), "type");
    assert_string_equal(json_string_value(json_object_get(src, "name")), "Source");
    assert_string_equal(json_string_value(json_object_get(src, "namespace")), "siphon");
    assert_int_equal(json_array_size(json_object_get(src, "fields")), 8);
    json_t *ts = json_object_get(json_array_get(f, 4), "type");
    assert_string_equal(json_string_value(json_object_get(ts, "logicalType")), "timestamp-micros");
    json_t *unch = json_array_get(f, 6);
    assert_true(json_is_array(json_object_get(unch, "default")));
    assert_int_equal(json_array_size(json_object_get(unch, "default")), 0);
    json_t *txf = json_array_get(f, 7);
    assert_true(json_is_null(json_object_get(txf, "default")));
    json_t *txt = json_array_get(json_object_get(txf, "type"), 1);
    assert_string_equal(json_string_value(json_object_get(txt, "name")), "Transaction");
    assert_string_equal(json_string_value(json_object_get(txt, "namespace")), "siphon");
    assert_int_equal(json_array_size(json_object_get(txt, "fields")), 3);
    json_decref(v);

    char *canon = NULL, err[512];
    assert_int_equal(siphon_avro_canonical_form(&canon, vjson, strlen(vjson), err, sizeof(err)), 0);
    assert_true(siphon_avro_stream_value_fingerprint(fx->st) ==
                siphon_avro_fingerprint64(canon, strlen(canon)));
    assert_non_null(strstr(canon, "{\"name\":\"siphon.Source\",\"type\":\"record\""));
    assert_non_null(strstr(canon, "\"after\",\"type\":[\"null\",\"com.acme.erp.SalesOrder\"]"));
    free(canon);
}

static void test_envelope_every_logical_type(void **state)
{
    fixture_t *fx = *state;
    siphon_avro_event_t ev = event('c', NULL, fx->after);
    json_t *j = round_trip(fx, &ev);

    assert_true(json_is_null(json_object_get(j, "before")));
    json_t *a = json_object_get(j, "after");
    assert_int_equal(json_integer_value(json_object_get(a, "order_id")), 1001);
    assert_string_equal(jstr(a, "company", NULL), "ACME");
    assert_string_equal(jstr(a, "amount", NULL), "123.45");
    assert_string_equal(jstr(a, "big", NULL), "-1234567890123456789012345678901.2300");
    assert_string_equal(jstr(a, "fx", NULL), "-1.00");
    assert_string_equal(jstr(a, "order_date", NULL), "2024-02-29");
    assert_string_equal(jstr(a, "ship_time", NULL), "13:45:06.123456");
    assert_string_equal(jstr(a, "ship_time_ms", NULL), "13:45:06.123");
    assert_string_equal(jstr(a, "created_at", NULL), "2024-02-29T13:45:06.123456Z");
    assert_string_equal(jstr(a, "created_ms", NULL), "1965-07-04T23:59:59.999Z");
    assert_string_equal(jstr(a, "local_ts", NULL), "2024-02-29T13:45:06.123456");
    assert_string_equal(jstr(a, "guid", NULL), "0e9a3c5b-1d2f-4a6b-8c7d-9e0f1a2b3c4d");
    assert_string_equal(jstr(a, "status", NULL), "SHIPPED");
    assert_true(json_is_null(json_object_get(a, "prev_status")));
    assert_string_equal(jstr(a, "note", NULL), "say \"hi\"\n\xc3\xa9t\xc3\xa9");
    assert_int_equal(json_integer_value(json_object_get(a, "qty")), -7);
    assert_true(json_real_value(json_object_get(a, "weight")) == 0.1);
    assert_true(json_number_value(json_object_get(a, "ratio")) == 3.0);
    assert_true(json_is_true(json_object_get(a, "active")));
    assert_string_equal(jstr(a, "blob", NULL), "\\xdead00");
    assert_string_equal(jstr(a, "attrs", NULL), "{\"a\":1}");
    assert_true(json_is_null(json_object_get(a, "tags")));

    assert_string_equal(jstr(j, "source", "connector"), "erp");
    assert_string_equal(jstr(j, "source", "db"), "erpdb");
    assert_string_equal(jstr(j, "source", "schema"), "public");
    assert_string_equal(jstr(j, "source", "table"), "oehdr");
    assert_string_equal(jstr(j, "source", "pos"), "0/16B3748");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "source"), "txid")), 771);
    assert_string_equal(jstr(j, "source", "commit_ts_us"), "2024-02-29T13:45:06.000000Z");
    assert_true(json_is_false(json_object_get(json_object_get(j, "source"), "snapshot")));
    assert_string_equal(jstr(j, "op", NULL), "c");
    assert_string_equal(jstr(j, "ts_us", NULL), "2024-02-29T13:45:07.000001Z");
    assert_string_equal(jstr(j, "event_id", NULL), "0/16B3748:3");
    assert_int_equal(json_array_size(json_object_get(j, "unchanged_fields")), 0);
    json_decref(j);

    /* other value types a field accepts: INT for decimals, floats and times; uuid as text */
    siphon_value_t after[NF];
    memcpy(after, fx->after, sizeof(after));
    after[F_AMOUNT] = vint(-42);
    after[F_FX] = vdec("1234567800", 4);
    after[F_GUID] = vtext(fx, "0E9A3C5B-1D2F-4A6B-8C7D-9E0F1A2B3C4D");
    after[F_ORDER_DATE] = vint(-1);
    after[F_CREATED_AT] = vint(0);
    after[F_WEIGHT] = vint(2);
    after[F_RATIO].type = SIPHON_V_FLOAT;
    after[F_RATIO].u.f = 0.1;
    after[F_NOTE] = vtext(fx, "");
    after[F_BLOB] = vtext_t(fx, SIPHON_V_BYTES, "", 0);
    ev = event('r', NULL, after);
    ev.source.txid = 0;
    ev.source.snapshot = 1;
    j = round_trip(fx, &ev);
    a = json_object_get(j, "after");
    assert_string_equal(jstr(a, "amount", NULL), "-42.00");
    assert_string_equal(jstr(a, "fx", NULL), "123456.78");
    assert_string_equal(jstr(a, "guid", NULL), "0e9a3c5b-1d2f-4a6b-8c7d-9e0f1a2b3c4d");
    assert_string_equal(jstr(a, "order_date", NULL), "1969-12-31");
    assert_string_equal(jstr(a, "created_at", NULL), "1970-01-01T00:00:00.000000Z");
    assert_true(json_number_value(json_object_get(a, "weight")) == 2.0);
    /* a float keeps float precision: printed as the shortest text of the float */
    assert_true(json_real_value(json_object_get(a, "ratio")) == 0.1);
    assert_string_equal(jstr(a, "note", NULL), "");
    assert_string_equal(jstr(a, "blob", NULL), "\\x");
    assert_true(json_is_null(json_object_get(json_object_get(j, "source"), "txid")));
    assert_true(json_is_true(json_object_get(json_object_get(j, "source"), "snapshot")));
    assert_string_equal(jstr(j, "op", NULL), "r");
    json_decref(j);
}

static void test_update_delete_and_unchanged(void **state)
{
    fixture_t *fx = *state;
    siphon_value_t before[NF], after[NF];
    memcpy(before, fx->after, sizeof(before));
    memcpy(after, fx->after, sizeof(after));
    after[F_QTY] = vint(8);
    after[F_NOTE].type = SIPHON_V_UNCHANGED;
    after[F_ATTRS].type = SIPHON_V_UNCHANGED;

    siphon_avro_event_t ev = event('u', before, after);
    json_t *j = round_trip(fx, &ev);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "before"), "qty")), -7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "after"), "qty")), 8);
    assert_true(json_is_null(json_object_get(json_object_get(j, "after"), "note")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "after"), "attrs")));
    json_t *u = json_object_get(j, "unchanged_fields");
    assert_int_equal(json_array_size(u), 2);
    assert_string_equal(json_string_value(json_array_get(u, 0)), "note");
    assert_string_equal(json_string_value(json_array_get(u, 1)), "attrs");
    json_decref(j);

    /* the list is per event: the next event without unchanged values has none */
    ev = event('u', before, fx->after);
    j = round_trip(fx, &ev);
    assert_int_equal(json_array_size(json_object_get(j, "unchanged_fields")), 0);
    json_decref(j);

    /* a before image the source sent only partly (REPLICA IDENTITY DEFAULT) is written null */
    before[F_NOTE].type = SIPHON_V_UNCHANGED;
    before[F_QTY].type = SIPHON_V_UNCHANGED; /* not nullable: still fine in before */
    ev = event('d', before, NULL);
    j = round_trip(fx, &ev);
    assert_true(json_is_null(json_object_get(j, "before")));
    assert_true(json_is_null(json_object_get(j, "after")));
    assert_string_equal(jstr(j, "op", NULL), "d");
    assert_int_equal(json_array_size(json_object_get(j, "unchanged_fields")), 0);
    json_decref(j);

    /* a truncate: no images */
    ev = event('t', NULL, NULL);
    j = round_trip(fx, &ev);
    assert_string_equal(jstr(j, "op", NULL), "t");
    assert_true(json_is_null(json_object_get(j, "before")));
    assert_true(json_is_null(json_object_get(j, "after")));
    json_decref(j);

    /* an unchanged value of a field that is not nullable cannot be written in after */
    after[F_QTY].type = SIPHON_V_UNCHANGED;
    siphon_buf_t out = {0};
    char err[512];
    ev = event('u', NULL, after);
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)),
                     SIPHON_ECONVERT);
    assert_non_null(strstr(err, "field 'qty': cannot write unchanged as int: the source did not "
                                "send this value"));
    assert_int_equal(out.len, 0);
    siphon_buf_free(&out);
}

static void expect_error(fixture_t *fx, int field, siphon_value_t v, const char *msg)
{
    siphon_value_t after[NF];
    memcpy(after, fx->after, sizeof(after));
    after[field] = v;
    siphon_avro_event_t ev = event('c', NULL, after);
    siphon_buf_t out = {0};
    siphon_buf_append(&out, "XYZ", 3);
    char err[512] = "";
    int rc = siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err));
    if (rc != SIPHON_ECONVERT)
        fail_msg("field %d: expected SIPHON_ECONVERT, got %d (%s)", field, rc, err);
    if (strncmp(err, msg, strlen(msg)) != 0)
        fail_msg("got      %s\nexpected %s...", err, msg);
    /* nothing appended on failure */
    assert_int_equal(out.len, 3);
    siphon_buf_free(&out);
}

static void test_conversion_errors(void **state)
{
    fixture_t *fx = *state;
    expect_error(fx, F_QTY, vtext(fx, "12"), "field 'qty': cannot write text as int");
    expect_error(fx, F_QTY, vint(3000000000LL),
                 "field 'qty': cannot write int as int: out of range for a 32-bit int");
    expect_error(fx, F_ORDER_ID, vnull(),
                 "field 'order_id': cannot write null as long: the field is not nullable");
    expect_error(fx, F_STATUS, vtext(fx, "LOST"),
                 "field 'status': cannot write text as enum com.acme.erp.Status: \"LOST\" is not "
                 "one of its symbols");
    expect_error(fx, F_AMOUNT, vdec("12345678901234", 2),
                 "field 'amount': cannot write decimal as bytes (decimal(12,2)): the value has 14 "
                 "significant digits at scale 2, more than the precision 12");
    expect_error(fx, F_AMOUNT, vdec("1", 3),
                 "field 'amount': cannot write decimal as bytes (decimal(12,2)): the value has 3 "
                 "decimal places that are not zero");
    expect_error(fx, F_AMOUNT, vdec("12x", 0),
                 "field 'amount': cannot write decimal as bytes (decimal(12,2)): malformed");
    expect_error(fx, F_AMOUNT, vtext(fx, "1.00"),
                 "field 'amount': cannot write text as bytes (decimal(12,2))");
    expect_error(fx, F_FX, vdec("1000000000000000000000000000000", 0), /* 31 digits */
                 "field 'fx': cannot write decimal as fixed com.acme.erp.Money16(16) "
                 "(decimal(30,2)): the value has 33 significant digits");
    expect_error(fx, F_GUID, vtext(fx, "0e9a3c5b-1d2f-4a6b-8c7d-9e0f1a2b3c4"),
                 "field 'guid': cannot write text as string (uuid): not a UUID");
    expect_error(fx, F_GUID, vtext(fx, "0e9a3c5b_1d2f-4a6b-8c7d-9e0f1a2b3c4d"),
                 "field 'guid': cannot write text as string (uuid): not a UUID");
    expect_error(fx, F_TAGS, vtext(fx, "a,b"),
                 "field 'tags': cannot write text as union [null, array of string]");
    expect_error(fx, F_CREATED_AT, vtext(fx, "2024-01-01"),
                 "field 'created_at': cannot write text as long (timestamp-micros)");
    expect_error(fx, F_ORDER_DATE, vint(1LL << 40),
                 "field 'order_date': cannot write int as int (date): out of range");
    expect_error(fx, F_BLOB, vtext(fx, "abc"),
                 "field 'blob': cannot write text as union [null, bytes]");
    siphon_value_t raw = vtext_t(fx, SIPHON_V_RAWTEXT, "abc", 3);
    expect_error(fx, F_COMPANY, raw, "field 'company': cannot write rawtext as string");
    siphon_value_t b = {.type = SIPHON_V_BOOL};
    expect_error(fx, F_WEIGHT, b, "field 'weight': cannot write bool as double");

    /* bad events */
    siphon_buf_t out = {0};
    char err[256];
    siphon_avro_event_t ev = event('x', NULL, NULL);
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "op 'x'"));
    ev = event('t', NULL, fx->after);
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "neither before nor after"));
    assert_int_equal(out.len, 0);
    ev = event('c', NULL, fx->after);
    ev.event_id = NULL;
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)),
                     SIPHON_EINVAL);
    /* a key value that was not sent */
    siphon_value_t key[2] = {fx->after[F_COMPANY], fx->after[F_ORDER_ID]};
    key[1].type = SIPHON_V_UNCHANGED;
    assert_int_equal(siphon_avro_stream_encode_key(fx->st, key, &out, err, sizeof(err)),
                     SIPHON_ECONVERT);
    assert_non_null(strstr(err, "field 'order_id': cannot write unchanged as long"));
    assert_int_equal(out.len, 0);
    siphon_buf_free(&out);

    /* after errors, the stream still encodes good events */
    ev = event('c', NULL, fx->after);
    json_t *j = round_trip(fx, &ev);
    assert_string_equal(jstr(j, "after", "amount"), "123.45");
    json_decref(j);
}

static void test_appends_and_grows(void **state)
{
    fixture_t *fx = *state;
    siphon_value_t after[NF];
    memcpy(after, fx->after, sizeof(after));
    size_t big = 300 * 1024;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + i % 26);
    after[F_NOTE].type = SIPHON_V_TEXT;
    after[F_NOTE].u.s.ptr = text;
    after[F_NOTE].u.s.len = big;

    siphon_buf_t out = {0};
    siphon_buf_append(&out, "prefix", 6);
    char err[512];
    siphon_avro_event_t ev = event('c', NULL, after);
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)), 0);
    assert_true(out.len > big);
    assert_memory_equal(out.data, "prefix", 6);
    assert_int_equal(out.data[6], 0xC3);
    char *json = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&json, fx->st, 0, out.data + 6, out.len - 6,
                                                    err, sizeof(err)), 0);
    json_t *j = json_loads(json, 0, NULL);
    assert_int_equal(strlen(jstr(j, "after", "note")), big);
    assert_memory_equal(jstr(j, "after", "note"), text, big);
    json_decref(j);
    free(json);
    free(text);
    siphon_buf_free(&out);
}

static void test_stream_errors_and_other_keys(void **state)
{
    fixture_t *fx = *state;
    siphon_avro_stream_t *st = NULL;
    char err[512];
    const char *missing[] = {"order_id", "nope"};
    assert_int_equal(siphon_avro_stream_new(&st, fx->sch, missing, 2, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "key field 'nope' is not a field of record com.acme.erp.SalesOrder"));
    assert_null(st);
    const char *twice[] = {"order_id", "order_id"};
    assert_int_equal(siphon_avro_stream_new(&st, fx->sch, twice, 2, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "listed twice"));
    const char *arr[] = {"tags"};
    assert_int_equal(siphon_avro_stream_new(&st, fx->sch, arr, 1, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "a key field must be"));
    assert_int_equal(siphon_avro_stream_new(&st, fx->sch, arr, 0, err, sizeof(err)), SIPHON_EINVAL);

    /* a key made of an enum and a decimal: the key schema defines the enum itself */
    const char *key[] = {"status", "amount"};
    assert_int_equal(siphon_avro_stream_new(&st, fx->sch, key, 2, err, sizeof(err)), 0);
    const char *kj = siphon_avro_stream_key_schema_json(st);
    assert_non_null(strstr(kj, "\"symbols\":[\"OPEN\",\"SHIPPED\",\"CLOSED\"]"));
    assert_non_null(strstr(kj, "\"logicalType\":\"decimal\""));
    siphon_value_t kv[2] = {fx->after[F_STATUS], fx->after[F_AMOUNT]};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_stream_encode_key(st, kv, &out, err, sizeof(err)), 0);
    char *json = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&json, st, 1, out.data, out.len, err,
                                                    sizeof(err)), 0);
    assert_string_equal(json, "{\"status\":\"SHIPPED\",\"amount\":\"123.45\"}");
    free(json);
    siphon_buf_free(&out);
    /* same envelope as the fixture's stream: the value schema does not depend on the key */
    assert_true(siphon_avro_stream_value_fingerprint(st) ==
                siphon_avro_stream_value_fingerprint(fx->st));
    assert_true(siphon_avro_stream_key_fingerprint(st) != siphon_avro_stream_key_fingerprint(fx->st));
    siphon_avro_stream_destroy(st);
    siphon_avro_stream_destroy(NULL);
}

static void test_entity_without_namespace(void **state)
{
    (void)state;
    const char *json = "{\"type\":\"record\",\"name\":\"Item\",\"fields\":["
                       "{\"name\":\"sku\",\"type\":\"string\"},"
                       "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","
                       "\"symbols\":[\"A\",\"B\"]}},"
                       "{\"name\":\"price\",\"type\":[\"null\",{\"type\":\"bytes\","
                       "\"logicalType\":\"decimal\",\"precision\":9,\"scale\":3}],"
                       "\"default\":null}]}";
    siphon_schema_t *sch = NULL;
    siphon_avro_stream_t *st = NULL;
    char err[512] = "";
    if (siphon_schema_parse(&sch, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("%s", err);
    const char *key[] = {"kind", "sku"};
    if (siphon_avro_stream_new(&st, sch, key, 2, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    json_t *v = json_loads(siphon_avro_stream_value_schema_json(st), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "ItemEnvelope");
    assert_null(json_object_get(v, "namespace"));
    json_decref(v);
    json_t *k = json_loads(siphon_avro_stream_key_schema_json(st), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(k, "name")), "ItemKey");
    json_decref(k);

    siphon_value_t after[3];
    after[0].type = SIPHON_V_TEXT;
    after[0].u.s.ptr = "X-1";
    after[0].u.s.len = 3;
    after[1].type = SIPHON_V_TEXT;
    after[1].u.s.ptr = "B";
    after[1].u.s.len = 1;
    after[2] = vdec("-5", 1);
    siphon_avro_event_t ev = event('c', NULL, after);
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_stream_encode_value(st, &ev, &out, err, sizeof(err)), 0);
    char *text = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&text, st, 0, out.data, out.len, err,
                                                    sizeof(err)), 0);
    assert_non_null(strstr(text, "\"after\":{\"sku\":\"X-1\",\"kind\":\"B\",\"price\":\"-0.500\"}"));
    free(text);
    siphon_buf_free(&out);
    siphon_avro_stream_destroy(st);
    siphon_schema_destroy(sch);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The envelope's transaction block: null by default, the block when given, and adding the
 * field is compatible both ways with the envelope published before it (BACKWARD: new readers
 * read old events, the field takes its default; FORWARD: old readers skip it). */
static void test_transaction_block(void **state)
{
    fixture_t *fx = *state;
    siphon_avro_event_t ev = event('c', NULL, fx->after);
    json_t *j = round_trip(fx, &ev);
    assert_true(json_is_null(json_object_get(j, "transaction")));
    json_decref(j);

    siphon_avro_txn_ref_t tx = {.id = "0/16B3748", .total_order = 3,
                                .data_collection_order = 2};
    ev.transaction = &tx;
    j = round_trip(fx, &ev);
    json_t *t = json_object_get(j, "transaction");
    assert_true(json_is_object(t));
    assert_string_equal(json_string_value(json_object_get(t, "id")), "0/16B3748");
    assert_int_equal(json_integer_value(json_object_get(t, "total_order")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "data_collection_order")), 2);
    json_decref(j);

    siphon_avro_txn_ref_t noid = {.total_order = 1};
    ev.transaction = &noid;
    siphon_buf_t out = {0};
    char err[512];
    assert_int_equal(siphon_avro_stream_encode_value(fx->st, &ev, &out, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(out.len, 0);
    siphon_buf_free(&out);

    /* the envelope as published before the field existed: the same without its last field */
    const char *vjson = siphon_avro_stream_value_schema_json(fx->st);
    json_t *oldv = json_loads(vjson, 0, NULL);
    assert_non_null(oldv);
    json_t *fields = json_object_get(oldv, "fields");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(fields, json_array_size(fields) - 1), "name")),
                        "transaction");
    json_array_remove(fields, json_array_size(fields) - 1);
    char *oldjson = json_dumps(oldv, JSON_COMPACT);
    json_decref(oldv);
    siphon_avro_compat_schema_t *cold = NULL, *cnew = NULL;
    assert_int_equal(siphon_avro_compat_schema_new(&cold, oldjson, strlen(oldjson), "old",
                                                   err, sizeof(err)), 0);
    assert_int_equal(siphon_avro_compat_schema_new(&cnew, vjson, strlen(vjson), "new", err,
                                                   sizeof(err)), 0);
    const siphon_avro_compat_schema_t *prev[] = {cold};
    const char *labels[] = {"1.0"};
    siphon_avro_compat_result_t res = {0};
    assert_int_equal(siphon_avro_compat_check_mode(&res, SIPHON_COMPAT_FULL_TRANSITIVE, cnew,
                                                   prev, labels, 1, NULL), 0);
    assert_int_equal(res.nissues, 0);
    /* and the check can fail: without the default, old events could not be read */
    json_t *nv = json_loads(vjson, 0, NULL);
    json_t *nf = json_object_get(nv, "fields");
    json_object_del(json_array_get(nf, json_array_size(nf) - 1), "default");
    char *nodefjson = json_dumps(nv, JSON_COMPACT);
    json_decref(nv);
    siphon_avro_compat_schema_t *cnodef = NULL;
    assert_int_equal(siphon_avro_compat_schema_new(&cnodef, nodefjson, strlen(nodefjson),
                                                   "nodef", err, sizeof(err)), 0);
    assert_int_equal(siphon_avro_compat_check_mode(&res, SIPHON_COMPAT_BACKWARD, cnodef, prev,
                                                   labels, 1, NULL), 0);
    assert_true(res.nissues > 0);
    siphon_avro_compat_result_free(&res);
    siphon_avro_compat_schema_destroy(cnodef);
    siphon_avro_compat_schema_destroy(cold);
    siphon_avro_compat_schema_destroy(cnew);
    free(nodefjson);
    free(oldjson);
}

static void test_encode_speed(void **state)
{
    fixture_t *fx = *state;
    siphon_value_t before[NF];
    memcpy(before, fx->after, sizeof(before));
    siphon_avro_event_t ev = event('u', before, fx->after);
    siphon_value_t key[2] = {fx->after[F_COMPANY], fx->after[F_ORDER_ID]};
    siphon_buf_t kout = {0}, vout = {0};
    char err[256];
    const int n = 200000;
    size_t bytes = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        siphon_buf_reset(&kout);
        siphon_buf_reset(&vout);
        fx->after[F_ORDER_ID].u.i = i;
        if (siphon_avro_stream_encode_key(fx->st, key, &kout, err, sizeof(err)) != 0 ||
            siphon_avro_stream_encode_value(fx->st, &ev, &vout, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        bytes += vout.len;
    }
    double dt = now_s() - t0;
    print_message("[ speed    ] %d update envelopes (22 fields, before+after) + keys in %.3f s: "
                  "%.0f events/s, %zu bytes/envelope\n", n, dt, n / dt, bytes / (size_t)n);
    assert_true(bytes > 0);

    /* inserts: after only */
    ev = event('c', NULL, fx->after);
    bytes = 0;
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        siphon_buf_reset(&kout);
        siphon_buf_reset(&vout);
        fx->after[F_ORDER_ID].u.i = i;
        if (siphon_avro_stream_encode_key(fx->st, key, &kout, err, sizeof(err)) != 0 ||
            siphon_avro_stream_encode_value(fx->st, &ev, &vout, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        bytes += vout.len;
    }
    dt = now_s() - t0;
    print_message("[ speed    ] %d insert envelopes (22 fields, after only) + keys in %.3f s: "
                  "%.0f events/s, %zu bytes/envelope\n", n, dt, n / dt, bytes / (size_t)n);
    fx->after[F_ORDER_ID].u.i = 1001;
    siphon_buf_free(&kout);
    siphon_buf_free(&vout);
}

int avro_test_stream(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_schema_and_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_every_logical_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_delete_and_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversion_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_and_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_errors_and_other_keys, setup, teardown),
        cmocka_unit_test(test_entity_without_namespace),
        cmocka_unit_test_setup_teardown(test_transaction_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_speed, setup, teardown),
    };
    return cmocka_run_group_tests_name("avro_stream", tests, NULL, NULL);
}
