/*
 * test_mapping.c - the mapping module: every golden case under tests/golden/mapping/ (see
 * golden.c), then what data files cannot show: a plain column-for-column mapping (the
 * integration tests' fixture, tests/it/fixtures/orders-basic) against a relation shaped like
 * its oehdr.sql and through the Avro encoder, the binding cache across relation versions, no
 * allocation per row, and the callback contract. The shipped sample ERP mappings are tested in
 * test_erp.c, transforms, filters, zones, HMAC and dead letters in test_parts.c.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"
#include "test_mapping.h"

static char srcdir[2048];

/* ---- a relation like the fixture's oehdr.sql, as the Postgres connector sees it ---- */

static siphon_column_t oehdr_cols[] = {
    {"hdcomp", 1042, "bpchar", SIPHON_V_TEXT, 6, 1, 1},
    {"hdordn", 1042, "bpchar", SIPHON_V_TEXT, 14, 1, 1},
    {"hdcust", 1042, "bpchar", SIPHON_V_TEXT, 12, 0, 0},
    {"hdodat", 1082, "date", SIPHON_V_DATE, -1, 0, 0},
    {"hdamt", 1700, "numeric", SIPHON_V_DECIMAL, (12 << 16 | 2) + 4, 0, 0},
    {"hdstat", 1042, "bpchar", SIPHON_V_TEXT, 5, 0, 0},
    {"hdnote", 25, "text", SIPHON_V_TEXT, -1, 0, 0},
    {"hdupdt", 1184, "timestamptz", SIPHON_V_TIMESTAMP, -1, 0, 0},
};

static siphon_relation_t oehdr = {16384, 1, "public", "oehdr", 8, oehdr_cols};

static siphon_value_t text(const char *s)
{
    siphon_value_t v = {.type = SIPHON_V_TEXT};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static void oehdr_row(siphon_value_t vals[8], const char *ordn, const char *amount_digits)
{
    vals[0] = text("01");
    vals[1] = text(ordn);
    vals[2] = text("C0000042");
    vals[3] = (siphon_value_t){.type = SIPHON_V_DATE, .u.date = 19753}; /* 2024-01-31 */
    vals[4] = (siphon_value_t){.type = SIPHON_V_DECIMAL};
    vals[4].u.dec.digits = amount_digits;
    vals[4].u.dec.len = strlen(amount_digits);
    vals[4].u.dec.scale = 2;
    vals[5] = text("O");
    vals[6] = (siphon_value_t){.type = SIPHON_V_UNCHANGED};
    vals[7] = (siphon_value_t){.type = SIPHON_V_TIMESTAMP};
    vals[7].u.ts.us = 1706696100123456LL; /* 2024-01-31T10:15:00.123456Z */
    vals[7].u.ts.tz = 1;
}

static siphon_mapset_t *load_sample(void)
{
    char maps[PATH_MAX], schemas[PATH_MAX], errbuf[1024];
    siphon_mapset_t *ms = NULL;
    snprintf(maps, sizeof(maps), "%s/tests/it/fixtures/orders-basic/mappings", srcdir);
    snprintf(schemas, sizeof(schemas), "%s/tests/it/fixtures/orders-basic/schemas", srcdir);
    int rc = siphon_mapset_load(&ms, maps, schemas, errbuf, sizeof(errbuf));
    if (rc)
        fail_msg("loading the sample failed: %s", errbuf);
    return ms;
}

typedef struct collect {
    int calls;
    int stop_with;
    siphon_buf_t text;
    siphon_mapped_t last;
    siphon_value_t key[4];
    siphon_value_t after[16];
} collect_t;

static int collect_cb(const siphon_mapped_t *m, void *opaque)
{
    collect_t *c = opaque;
    c->calls++;
    c->last = *m;
    siphon_buf_printf(&c->text, "%s:%c;", siphon_mapping_entity(m->map), m->op);
    return c->stop_with;
}

/* The fixture's files: what they declare, and that their events go through the encoder. */
static void test_sample(void **state)
{
    siphon_mapset_t *ms = load_sample();
    char errbuf[1024];
    assert_int_equal(siphon_mapset_count(ms), 1);
    const siphon_mapping_t *map = siphon_mapset_get(ms, 0);
    assert_null(siphon_mapset_get(ms, 1));
    assert_string_equal(siphon_mapping_entity(map), "sales_order");
    assert_int_equal(siphon_mapping_major(map), 1);
    assert_string_equal(siphon_mapping_source_schema(map), "public");
    assert_string_equal(siphon_mapping_source_table(map), "oehdr");
    assert_non_null(strstr(siphon_mapping_path(map), "mappings/sales_order.yaml"));
    assert_int_equal(siphon_mapping_key_count(map), 2);
    assert_string_equal(siphon_mapping_key_field(map, 0), "company");
    assert_string_equal(siphon_mapping_key_field(map, 1), "order_number");
    assert_null(siphon_mapping_key_field(map, 2));
    const siphon_schema_t *sch = siphon_mapping_schema(map);
    assert_string_equal(sch->record->name, "siphon.erp.SalesOrder");
    assert_int_equal(sch->record->nfields, 8);
    static const char *const cols[] = {"hdcomp", "hdordn", "hdcust", "hdodat",
                                       "hdamt",  "hdstat", "hdnote", "hdupdt"};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(siphon_mapping_field_column(map, i), cols[i]);
        assert_non_null(sch->record->fields[i].doc); /* every field is documented */
    }
    assert_true(siphon_mapset_has_table(ms, "public", "oehdr"));
    assert_true(siphon_mapset_has_table(ms, NULL, "oehdr"));
    assert_false(siphon_mapset_has_table(ms, "public", "OEHDR"));
    assert_false(siphon_mapset_has_table(ms, "erp", "oehdr"));

    assert_int_equal(siphon_mapset_bind(ms, &oehdr, errbuf, sizeof(errbuf)), 0);

    siphon_value_t vals[8];
    oehdr_row(vals, "0000000001", "123450");
    siphon_row_t row = {8, vals};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_UPDATE, .rel = &oehdr,
                           .after = &row, .txid = 7, .database = "erp"};
    collect_t c = {0};
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last.op, 'u');
    assert_null(c.last.before);
    assert_int_equal(c.last.after[6].type, SIPHON_V_UNCHANGED);
    assert_int_equal(c.last.key[0].type, SIPHON_V_TEXT);
    assert_memory_equal(c.last.key[1].u.s.ptr, "0000000001", 10);

    /* the encoder takes what the mapping produced: key and envelope, decoded back */
    siphon_avro_stream_t *st = siphon_mapping_stream(map);
    siphon_buf_t kb = {0}, vb = {0};
    char *json = NULL;
    assert_int_equal(siphon_avro_stream_encode_key(st, c.last.key, &kb, errbuf, sizeof(errbuf)),
                     0);
    siphon_avro_event_t ev = {.op = c.last.op,
                              .before = c.last.before,
                              .after = c.last.after,
                              .source = {.connector = "test", .db = "erp", .schema = "public",
                                         .table = "oehdr", .pos = "0/16B3748", .txid = 7},
                              .ts_us = 1706696100000000LL,
                              .event_id = "0/16B3748:0"};
    int rc = siphon_avro_stream_encode_value(st, &ev, &vb, errbuf, sizeof(errbuf));
    if (rc)
        fail_msg("encoding the mapped update failed: %s", errbuf);
    assert_int_equal(siphon_avro_stream_decode_json(&json, st, 0, vb.data, vb.len, errbuf,
                                                    sizeof(errbuf)),
                     0);
    assert_non_null(strstr(json, "1234.50"));
    assert_non_null(strstr(json, "2024-01-31"));
    assert_non_null(strstr(json, "C0000042"));
    assert_non_null(strstr(json, "note")); /* listed as unchanged */
    free(json);
    json = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&json, st, 1, kb.data, kb.len, errbuf,
                                                    sizeof(errbuf)),
                     0);
    assert_non_null(strstr(json, "0000000001"));
    free(json);
    siphon_buf_free(&kb);
    siphon_buf_free(&vb);
    siphon_buf_free(&c.text);
    siphon_mapset_destroy(ms);
}

typedef struct keylog {
    int n;
    char ops[4];
    char keys[4][16];
    int had_after[4];
} keylog_t;

static int keylog_cb(const siphon_mapped_t *m, void *opaque)
{
    keylog_t *k = opaque;
    if (k->n >= 4)
        return -1;
    k->ops[k->n] = m->op;
    snprintf(k->keys[k->n], sizeof(k->keys[0]), "%.*s", (int)m->key[1].u.s.len, m->key[1].u.s.ptr);
    k->had_after[k->n] = m->after != NULL;
    k->n++;
    return 0;
}

/* An update that changes the key becomes a delete of the old key and a create of the new one
 * (so a compacted topic forgets the old key); an update that keeps the key stays one update. */
static void test_key_change_splits(void **state)
{
    siphon_mapset_t *ms = load_sample();
    char errbuf[1024];
    siphon_value_t oldv[8], newv[8];
    oehdr_row(oldv, "0000000001", "100");
    for (int i = 2; i < 8; i++) /* REPLICA IDENTITY DEFAULT: the old row carries only the key */
        oldv[i] = (siphon_value_t){.type = SIPHON_V_UNCHANGED};
    oehdr_row(newv, "0000000002", "100");
    siphon_row_t orow = {8, oldv}, nrow = {8, newv};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_UPDATE, .rel = &oehdr,
                           .before = &orow, .after = &nrow};
    keylog_t k = {0};
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), keylog_cb, &k), 0);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.ops[0], 'd');
    assert_string_equal(k.keys[0], "0000000001");
    assert_false(k.had_after[0]);
    assert_int_equal(k.ops[1], 'c');
    assert_string_equal(k.keys[1], "0000000002");
    assert_true(k.had_after[1]);

    /* same key in the old row: one update */
    oehdr_row(oldv, "0000000002", "100");
    for (int i = 2; i < 8; i++)
        oldv[i] = (siphon_value_t){.type = SIPHON_V_UNCHANGED};
    memset(&k, 0, sizeof(k));
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), keylog_cb, &k), 0);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.ops[0], 'u');
    siphon_mapset_destroy(ms);
}

/* Bindings are cached per relation version; a new version binds on first sight. */
static void test_binding_cache(void **state)
{
    siphon_mapset_t *ms = load_sample();
    char errbuf[1024];
    siphon_value_t vals[8];
    oehdr_row(vals, "0000000001", "100");
    siphon_row_t row = {8, vals};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &oehdr,
                           .after = &row};
    collect_t c = {0};

    assert_int_equal(ms->nrels, 0);
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(ms->nrels, 1);
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(ms->nrels, 1);
    assert_int_equal(c.calls, 2);

    /* ALTER TABLE: same table, columns swapped, new version */
    siphon_column_t cols2[8];
    memcpy(cols2, oehdr_cols, sizeof(cols2));
    cols2[0] = oehdr_cols[1];
    cols2[1] = oehdr_cols[0];
    siphon_relation_t rel2 = oehdr;
    rel2.version = 2;
    rel2.cols = cols2;
    siphon_value_t vals2[8];
    memcpy(vals2, vals, sizeof(vals2));
    vals2[0] = vals[1];
    vals2[1] = vals[0];
    siphon_row_t row2 = {8, vals2};
    siphon_change_t chg2 = chg;
    chg2.rel = &rel2;
    chg2.after = &row2;
    assert_int_equal(siphon_mapset_apply(ms, &chg2, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(ms->nrels, 2);
    assert_memory_equal(c.last.key[0].u.s.ptr, "01", 2); /* company still from hdcomp */
    assert_memory_equal(c.last.key[1].u.s.ptr, "0000000001", 10);
    /* the old version still maps with its own binding */
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_memory_equal(c.last.key[0].u.s.ptr, "01", 2);
    assert_int_equal(ms->nrels, 2);

    /* a table nobody maps: cached as such, no callback */
    siphon_relation_t other = oehdr;
    other.version = 3;
    other.name = "oedtl";
    chg2.rel = &other;
    chg2.after = &row;
    int before = c.calls;
    assert_int_equal(siphon_mapset_apply(ms, &chg2, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(c.calls, before);
    assert_int_equal(ms->nrels, 3);
    assert_int_equal(siphon_mapset_bind(ms, &other, errbuf, sizeof(errbuf)), 0);

    /* many versions: the cache grows and finds every one */
    for (uint64_t v = 100; v < 200; v++) {
        siphon_relation_t r = oehdr;
        r.version = v;
        assert_int_equal(siphon_mapset_bind(ms, &r, errbuf, sizeof(errbuf)), 0);
    }
    assert_int_equal(ms->nrels, 103);
    for (uint64_t v = 100; v < 200; v++) {
        siphon_relation_t r = oehdr;
        r.version = v;
        chg2.rel = &r;
        chg2.after = &row;
        before = c.calls;
        assert_int_equal(siphon_mapset_apply(ms, &chg2, errbuf, sizeof(errbuf), collect_cb, &c),
                         0);
        assert_int_equal(c.calls, before + 1);
    }
    assert_int_equal(ms->nrels, 103);
    siphon_buf_free(&c.text);
    siphon_mapset_destroy(ms);
}

/* Once warm, mapping a row allocates nothing: the row arena keeps its block and the value
 * arrays are the mapping's own. Uses the coercion case (text, decimal conversions). */
static void test_no_allocation_per_row(void **state)
{
    char dir[PATH_MAX], maps[PATH_MAX + 16], schemas[PATH_MAX + 16], errbuf[1024];
    siphon_mapset_t *ms = NULL;
    snprintf(dir, sizeof(dir), "%s/tests/golden/mapping/ok-coercions", srcdir);
    snprintf(maps, sizeof(maps), "%s/mappings", dir);
    snprintf(schemas, sizeof(schemas), "%s/schemas", dir);
    assert_int_equal(siphon_mapset_load(&ms, maps, schemas, errbuf, sizeof(errbuf)), 0);

    siphon_column_t cols[] = {
        {"c_id", 20, "int8", SIPHON_V_INT, -1, 1, 1},
        {"c_amount", 1700, "numeric", SIPHON_V_DECIMAL, -1, 0, 0},
        {"c_date", 1082, "date", SIPHON_V_DATE, -1, 0, 0},
        {"c_int", 23, "int4", SIPHON_V_INT, -1, 0, 0},
        {"c_ts", 1184, "timestamptz", SIPHON_V_TIMESTAMP, -1, 0, 0},
        {"c_bool", 16, "bool", SIPHON_V_BOOL, -1, 0, 0},
        {"c_float", 701, "float8", SIPHON_V_FLOAT, -1, 0, 0},
        {"c_uuid", 2950, "uuid", SIPHON_V_UUID, -1, 0, 0},
        {"c_time", 1083, "time", SIPHON_V_TIME, -1, 0, 0},
        {"c_json", 3802, "jsonb", SIPHON_V_JSON, -1, 0, 0},
        {"c_state", 25, "text", SIPHON_V_TEXT, -1, 0, 0},
        {"c_raw", 17, "bytea", SIPHON_V_BYTES, -1, 0, 0},
    };
    siphon_relation_t rel = {1, 1, "public", "conv", 12, cols};
    siphon_value_t v[12];
    memset(v, 0, sizeof(v));
    v[0].type = SIPHON_V_INT;
    v[1].type = SIPHON_V_DECIMAL;
    v[1].u.dec.digits = "-123456789012"; /* fits fixed_amount, decimal(15,2) */
    v[1].u.dec.len = strlen(v[1].u.dec.digits);
    v[1].u.dec.scale = 2;
    v[2].type = SIPHON_V_DATE;
    v[3].type = SIPHON_V_INT;
    v[4].type = SIPHON_V_TIMESTAMP;
    v[5].type = SIPHON_V_BOOL;
    v[6].type = SIPHON_V_FLOAT;
    v[6].u.f = 0.1;
    v[7].type = SIPHON_V_UUID;
    v[8].type = SIPHON_V_TIME;
    v[9] = text("{}");
    v[9].type = SIPHON_V_JSON;
    v[10] = text("OPEN");
    v[11].type = SIPHON_V_BYTES;
    siphon_row_t row = {12, v};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &rel,
                           .after = &row};
    collect_t c = {0};

    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    const siphon_value_t *after0 = c.last.after;
    void *head = ms->row.head;
    size_t used = ms->row.used_bytes;
    assert_non_null(head);
    assert_true(used > 0);
    for (int i = 0; i < 10000; i++) {
        v[0].u.i = i;
        v[3].u.i = i * 7;
        assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c),
                         0);
        assert_ptr_equal(c.last.after, after0);
        assert_ptr_equal(ms->row.head, head);
        assert_int_equal(ms->row.used_bytes, used);
    }
    assert_int_equal(c.calls, 10001);
    /* the last row's values are the ones produced */
    assert_int_equal(c.last.key[0].u.i, 9999);
    assert_int_equal(c.last.after[3].type, SIPHON_V_TEXT); /* int_text */
    assert_memory_equal(c.last.after[3].u.s.ptr, "69993", 5);
    assert_int_equal(c.last.after[10].type, SIPHON_V_DECIMAL); /* qty from an int */
    char ib[SIPHON_DEC_I64_CHARS];
    const char *dd;
    assert_true(siphon_value_dec_is_i64(&c.last.after[10])); /* nothing formatted per row */
    assert_int_equal(siphon_value_dec_digits(&c.last.after[10], ib, &dd), 5);
    assert_memory_equal(dd, "69993", 5);
    assert_int_equal(c.last.after[10].u.dec.scale, 0);
    assert_int_equal(c.last.after[1].u.s.len, strlen("-1234567890.12"));
    assert_memory_equal(c.last.after[1].u.s.ptr, "-1234567890.12", 14);
    siphon_buf_free(&c.text);
    siphon_mapset_destroy(ms);
}

/* Two mappings read one table: called in file order; a non-zero callback stops and returns. */
static void test_callback_contract(void **state)
{
    char dir[PATH_MAX], maps[PATH_MAX + 16], schemas[PATH_MAX + 16], errbuf[1024];
    siphon_mapset_t *ms = NULL;
    snprintf(dir, sizeof(dir), "%s/tests/golden/mapping/ok-two-mappings", srcdir);
    snprintf(maps, sizeof(maps), "%s/mappings", dir);
    snprintf(schemas, sizeof(schemas), "%s/schemas", dir);
    assert_int_equal(siphon_mapset_load(&ms, maps, schemas, errbuf, sizeof(errbuf)), 0);
    assert_int_equal(siphon_mapset_count(ms), 3);

    siphon_value_t vals[8];
    oehdr_row(vals, "0000000001", "100");
    vals[6] = text("note");
    siphon_row_t row = {8, vals};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_READ, .rel = &oehdr,
                           .after = &row, .snapshot = 1};
    collect_t c = {0};
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    siphon_buf_appendc(&c.text, '\0');
    assert_string_equal((char *)c.text.data, "sales_order:r;order_status:r;");

    c.stop_with = 42;
    c.calls = 0;
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect_cb, &c), 42);
    assert_int_equal(c.calls, 1);

    /* records that are not row changes, and truncates, produce nothing */
    c.stop_with = 0;
    c.calls = 0;
    siphon_change_t other = chg;
    other.op = SIPHON_OP_TRUNCATE;
    other.after = NULL;
    assert_int_equal(siphon_mapset_apply(ms, &other, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    other = chg;
    other.kind = SIPHON_REC_BEGIN;
    assert_int_equal(siphon_mapset_apply(ms, &other, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    other.kind = SIPHON_REC_COMMIT;
    assert_int_equal(siphon_mapset_apply(ms, &other, errbuf, sizeof(errbuf), collect_cb, &c), 0);
    assert_int_equal(c.calls, 0);

    /* bad arguments */
    assert_int_equal(siphon_mapset_apply(ms, NULL, errbuf, sizeof(errbuf), collect_cb, &c),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), NULL, &c),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_mapset_bind(ms, NULL, errbuf, sizeof(errbuf)), SIPHON_EINVAL);
    other = chg;
    other.op = (siphon_op_t)'x';
    assert_int_equal(siphon_mapset_apply(ms, &other, errbuf, sizeof(errbuf), collect_cb, &c),
                     SIPHON_EINVAL);
    assert_string_equal(errbuf, "could not map a change of public.oehdr: unknown operation 120");
    /* a row whose width does not match its relation */
    siphon_row_t short_row = {7, vals};
    other = chg;
    other.after = &short_row;
    assert_int_equal(siphon_mapset_apply(ms, &other, errbuf, sizeof(errbuf), collect_cb, &c),
                     SIPHON_EINVAL);
    assert_string_equal(errbuf, "could not map a change of public.oehdr: its new row has 7 "
                                "values for 8 columns (a connector bug: report it)");
    assert_int_equal(c.calls, 0);
    siphon_buf_free(&c.text);
    siphon_mapset_destroy(ms);
}

static void test_load_folder_errors(void **state)
{
    siphon_mapset_t *ms = (siphon_mapset_t *)1;
    char errbuf[1024];
    assert_int_equal(siphon_mapset_load(&ms, "/nonexistent-siphon/mappings", "/x", errbuf,
                                        sizeof(errbuf)),
                     SIPHON_ENOTFOUND);
    assert_null(ms);
    assert_string_equal(errbuf, "could not open mappings folder '/nonexistent-siphon/mappings': "
                                "No such file or directory (expected a folder of <entity>.yaml "
                                "mapping files; set mappings: in the configuration)");
    /* an empty folder is a valid, empty set (the pipeline decides what that means) */
    char tmp[] = "/tmp/siphon-map-empty-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(siphon_mapset_load(&ms, tmp, tmp, errbuf, sizeof(errbuf)), 0);
    assert_int_equal(siphon_mapset_count(ms), 0);
    assert_false(siphon_mapset_has_table(ms, "public", "oehdr"));
    siphon_mapset_destroy(ms);
    rmdir(tmp);
    siphon_mapset_destroy(NULL);
}

/* The conversion table against the encoder's acceptance rules, exhaustively. */
static void test_conversion_table(void **state)
{
    static const struct {
        map_target_t t;
        const char *accepts; /* value types that convert, in siphon_vtype_t order */
    } rules[] = {
        {MAP_T_BOOL, "bool"},
        {MAP_T_INT, "int decimal"},
        {MAP_T_FLOAT, "int float"},
        {MAP_T_STRING, "bool int float decimal text date time timestamp uuid json rawtext"},
        {MAP_T_BYTES, "bytes"},
        {MAP_T_DECIMAL, "int decimal"},
        {MAP_T_DATE, "date"},
        {MAP_T_TIME, "time"},
        {MAP_T_TIMESTAMP, "timestamp"},
        {MAP_T_UUID, "uuid"},
        {MAP_T_ENUM, "text rawtext"},
        {MAP_T_UNSUPPORTED, ""},
    };
    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        char got[256] = "";
        for (int vt = SIPHON_V_NULL; vt <= SIPHON_V_UNCHANGED; vt++)
            if (siphon_mapping__conv(rules[r].t, (siphon_vtype_t)vt) != MAP_C_NONE)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", got[0] ? " " : "",
                         siphon_vtype_name((siphon_vtype_t)vt));
        assert_string_equal(got, rules[r].accepts);
    }
    assert_int_equal(siphon_mapping__conv(MAP_T_DECIMAL, SIPHON_V_INT), MAP_C_INT_DEC);
    assert_int_equal(siphon_mapping__conv(MAP_T_STRING, SIPHON_V_DECIMAL), MAP_C_TEXT);
    assert_int_equal(siphon_mapping__conv(MAP_T_STRING, SIPHON_V_JSON), MAP_C_COPY);
    assert_int_equal(siphon_mapping__conv(MAP_T_FLOAT, SIPHON_V_INT), MAP_C_COPY);
    assert_int_equal(siphon_mapping__conv(MAP_T_STRING, SIPHON_V_RAWTEXT), MAP_C_RAW_UTF8);
    assert_int_equal(siphon_mapping__conv(MAP_T_INT, SIPHON_V_DECIMAL), MAP_C_DEC_INT);
}

int main(void)
{
    const char *s = getenv("SIPHON_SOURCE_DIR");
    snprintf(srcdir, sizeof(srcdir), "%s", s ? s : ".");
    char **dirs = NULL, **names = NULL;
    int n = tm_golden_cases(&dirs, &names);
    if (n < 10) {
        fprintf(stderr, "found %d golden mapping cases under %s/tests/golden/mapping (set "
                        "SIPHON_SOURCE_DIR)\n", n, srcdir);
        return 1;
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_binding_cache),
        cmocka_unit_test(test_key_change_splits),
        cmocka_unit_test(test_no_allocation_per_row),
        cmocka_unit_test(test_callback_contract),
        cmocka_unit_test(test_load_folder_errors),
        cmocka_unit_test(test_conversion_table),
        cmocka_unit_test(tm_test_sha256),
        cmocka_unit_test(tm_test_hmac),
        cmocka_unit_test(tm_test_timezones),
        cmocka_unit_test(tm_test_calendar),
        cmocka_unit_test(tm_test_charsets),
        cmocka_unit_test(tm_test_filters),
        cmocka_unit_test(tm_test_dead_letter),
        cmocka_unit_test(tm_test_erp_sample),
        cmocka_unit_test(tm_test_erp_no_allocation),
        cmocka_unit_test(tm_test_fast_decimals),
        cmocka_unit_test(tm_test_fast_text),
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    struct CMUnitTest *tests = calloc((size_t)n + nfixed, sizeof(*tests));
    for (int i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){names[i], tm_run_golden, NULL, NULL, dirs[i]};
    for (size_t i = 0; i < nfixed; i++)
        tests[(size_t)n + i] = fixed[i];
    int rc = _cmocka_run_group_tests("mapping", tests, (size_t)n + nfixed, NULL, NULL);
    free(tests);
    for (int i = 0; i < n; i++) {
        free(dirs[i]);
        free(names[i]);
    }
    free(dirs);
    free(names);
    return rc;
}
