/*
 * test_erp.c - the shipped mappings (mappings/, schemas/) against relations shaped like the
 * sample legacy ERP's tables (examples/legacy-erp/erp.sql) as the Postgres connector sees them
 * in a SQL_ASCII database (CHAR columns as raw Windows-1252 bytes): what they declare, an order
 * header through the mapping and the Avro encoder and back, the filter and the dead letters,
 * and no allocation per row for the widest mapping (sales_order_line). The integration test
 * tests/it/0020-* runs the same mappings against a live database.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"
#include "test_mapping.h"

static siphon_mapset_t *load_shipped(void)
{
    char maps[PATH_MAX], schemas[PATH_MAX], errbuf[2048];
    const char *src = getenv("SIPHON_SOURCE_DIR");
    siphon_mapset_t *ms = NULL;
    setenv("SIPHON_PII_KEY", "unit-test-key", 1);
    snprintf(maps, sizeof(maps), "%s/mappings", src ? src : ".");
    snprintf(schemas, sizeof(schemas), "%s/schemas", src ? src : ".");
    if (siphon_mapset_load(&ms, maps, schemas, errbuf, sizeof(errbuf)))
        fail_msg("loading the shipped mappings failed: %s", errbuf);
    return ms;
}

#define RAW(n) {n, 1042, "bpchar", SIPHON_V_RAWTEXT, -1, 0, 0}
#define RAWK(n) {n, 1042, "bpchar", SIPHON_V_RAWTEXT, -1, 1, 1}
#define INT4(n) {n, 23, "integer", SIPHON_V_INT, -1, 0, 0}
#define INT8(n) {n, 20, "bigint", SIPHON_V_INT, -1, 0, 0}

static siphon_column_t oehdr_cols[] = {
    RAWK("hdcomp"), RAWK("hdordn"), RAW("hddoct"), RAW("hdcust"), INT4("hdodat"),
    INT4("hdrqdt"), INT8("hdamt"), INT8("hdtaxa"), RAW("hdcurr"), RAW("hdstat"),
    RAW("hdpono"), RAW("hdslsp"), {"hdnote", 1043, "character varying(60)", SIPHON_V_RAWTEXT, -1, 0, 0},
    INT4("hdcrdt"), INT4("hdcrtm"), INT4("hdchgd"), INT4("hdchgt"),
};
static siphon_relation_t oehdr = {16400, 1, "public", "oehdr", 17, oehdr_cols};

static siphon_value_t raw(const char *s)
{
    siphon_value_t v = {.type = SIPHON_V_RAWTEXT};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static siphon_value_t i64(int64_t i) { return (siphon_value_t){.type = SIPHON_V_INT, .u.i = i}; }

static void header_row(siphon_value_t v[17], const char *comp, const char *doct, int64_t odat,
                       const char *stat)
{
    v[0] = raw(comp);
    v[1] = raw("0000104711");
    v[2] = raw(doct);
    v[3] = raw("00004711");
    v[4] = i64(odat);
    v[5] = i64(0);
    v[6] = i64(125050);
    v[7] = i64(10317);
    v[8] = raw("usd");
    v[9] = raw(stat);
    v[10] = raw("                    ");
    v[11] = raw("JDK");
    v[12] = raw("Bitte \x84schnell\x93 liefern \x96 danke");
    v[13] = i64(20240131);
    v[14] = i64(93015);
    v[15] = i64(20240701);
    v[16] = i64(171500);
}

typedef struct got {
    int calls;
    siphon_mapped_t last;
} got_t;

static int got_cb(const siphon_mapped_t *m, void *opaque)
{
    got_t *g = opaque;
    g->calls++;
    g->last = *m;
    return 0;
}

void tm_test_erp_sample(void **state)
{
    (void)state;
    siphon_mapset_t *ms = load_shipped();
    static const char *const entities[] = {"customer", "inventory_position", "invoice",
                                           "product",  "quote",              "return",
                                           "sales_order", "sales_order_line", "shipment"};
    static const char *const tables[] = {"arcust", "icbal", "arinv",  "icitem", "oehdr",
                                         "rmhdr",  "oehdr", "oeline", "shhdr"};
    assert_int_equal(siphon_mapset_count(ms), 9);
    for (int i = 0; i < 9; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(ms, i);
        assert_string_equal(siphon_mapping_entity(map), entities[i]);
        assert_string_equal(siphon_mapping_source_table(map), tables[i]);
        assert_int_equal(siphon_mapping_major(map), 1);
        assert_string_equal(siphon_mapping_on_error(map), "dead_letter");
        const siphon_schema_t *sch = siphon_mapping_schema(map);
        assert_true(strstr(sch->json, "\"doc\"") != NULL);
        for (int f = 0; f < sch->record->nfields; f++) {
            assert_non_null(sch->record->fields[f].doc); /* every field documented */
            assert_true(map->fields[f].mapped);          /* and produced */
        }
    }
    const siphon_mapping_t *so = siphon_mapset_get(ms, 6);
    assert_int_equal(so->nfields, 14);

    char errbuf[2048];
    assert_int_equal(siphon_mapset_bind(ms, &oehdr, errbuf, sizeof(errbuf)), 0);
    siphon_value_t vals[17];
    header_row(vals, "01", "SO", 20240131, "H");
    siphon_row_t row = {17, vals};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &oehdr,
                           .after = &row, .txid = 9, .database = "erp"};
    got_t g = {0};
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_null(g.last.error);

    /* through the encoder and back: what a consumer reads */
    siphon_avro_stream_t *st = siphon_mapping_stream(so);
    siphon_buf_t vb = {0};
    siphon_avro_event_t ev = {.op = 'c', .after = g.last.after,
                              .source = {.connector = "erp", .db = "erp", .schema = "public",
                                         .table = "oehdr", .pos = "0/1", .txid = 9},
                              .event_id = "0/1:0"};
    assert_int_equal(siphon_avro_stream_encode_value(st, &ev, &vb, errbuf, sizeof(errbuf)), 0);
    char *json = NULL;
    assert_int_equal(siphon_avro_stream_decode_json(&json, st, 0, vb.data, vb.len, errbuf,
                                                    sizeof(errbuf)),
                     0);
    static const char *const want[] = {
        "\"company\":\"01\"", "\"order_number\":\"104711\"", "\"customer_number\":\"4711\"",
        "\"order_date\":\"2024-01-31\"", "\"requested_date\":null",
        "\"total_amount\":\"1250.50\"", "\"tax_amount\":\"103.17\"", "\"currency\":\"USD\"",
        "\"status\":\"ON_HOLD\"", "\"customer_po\":null", "\"salesperson\":\"JDK\"",
        "\"note\":\"Bitte „schnell“ liefern – danke\"",
        "\"created_at\":\"2024-01-31T15:30:15.000000Z\"", /* 09:30:15 CST */
        "\"updated_at\":\"2024-07-01T22:15:00.000000Z\"", /* 17:15 CDT */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(json, want[i]))
            fail_msg("%s not in %s", want[i], json);
    free(json);
    siphon_buf_free(&vb);

    /* the filters: a quote is the quote entity's only (one table, two entities), and the
     * training company gives nothing */
    header_row(vals, "01", "QT", 20240131, "X");
    g.calls = 0;
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_null(g.last.error);
    assert_string_equal(siphon_mapping_entity(g.last.map), "quote");
    g.calls = 0;
    header_row(vals, "99", "SO", 20260231, "Z");
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_int_equal(g.calls, 0);

    /* bad values are dead letters naming the field */
    header_row(vals, "01", "SO", 20260231, "O");
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_non_null(g.last.error);
    assert_string_equal(g.last.error->field, "order_date");
    assert_string_equal(g.last.error->columns, "hdodat");
    assert_non_null(strstr(g.last.error->reason, "February 2026 has no day 31"));
    assert_non_null(strstr(g.last.error->message, "mappings/sales_order.yaml:"));
    assert_ptr_equal(g.last.row, &row);
    header_row(vals, "01", "SO", 20240131, "Z");
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_string_equal(g.last.error->field, "status");
    assert_non_null(strstr(g.last.error->reason, "unknown code 'Z'"));
    /* 0x81 is no character of Windows-1252 */
    header_row(vals, "01", "SO", 20240131, "O");
    vals[12] = raw("bad \x81 byte");
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_string_equal(g.last.error->field, "note");
    assert_non_null(strstr(g.last.error->reason, "0x81"));
    siphon_mapset_destroy(ms);
}

static siphon_column_t oeline_cols[] = {
    RAWK("olcomp"), RAWK("olordn"), {"olline", 1700, "numeric(3,0)", SIPHON_V_DECIMAL, 196612, 1, 1},
    RAW("olitem"), RAW("oldesc"), INT8("olqtyo"), INT8("olqtys"), RAW("oluom"), INT8("olprce"),
    INT4("oldisc"), INT8("olamt"), RAW("olwhse"), INT4("olrqdt"), INT4("olprdt"), RAW("olstat"),
    RAW("oltaxf"), RAW("oldltf"), INT4("olchgd"), INT4("olchgt"),
};
static siphon_relation_t oeline = {16401, 2, "public", "oeline", 19, oeline_cols};

/* Once warm, mapping a line (19 fields, a dozen kinds of transform, a charset conversion)
 * takes no new memory: the row arena reuses its block. */
void tm_test_erp_no_allocation(void **state)
{
    (void)state;
    siphon_mapset_t *ms = load_shipped();
    char errbuf[2048];
    siphon_value_t v[19];
    siphon_value_t line = {.type = SIPHON_V_DECIMAL};
    line.u.dec.digits = "3";
    line.u.dec.len = 1;
    v[0] = raw("01");
    v[1] = raw("0000104711");
    v[2] = line;
    v[3] = raw("WID-00007      ");
    v[4] = raw("Hex bolt M8 \xd7 40            ");
    v[5] = i64(12250);
    v[6] = i64(0);
    v[7] = raw("EA ");
    v[8] = i64(123456);
    v[9] = i64(1250);
    v[10] = i64(1323);
    v[11] = raw("DAL");
    v[12] = i64(240215);
    v[13] = i64(124046);
    v[14] = raw("B");
    v[15] = raw("1");
    v[16] = raw(" ");
    v[17] = i64(20240131);
    v[18] = i64(101500);
    siphon_row_t row = {19, v};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &oeline,
                           .after = &row};
    got_t g = {0};
    assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
    assert_null(g.last.error);
    const siphon_value_t *a = g.last.after;
    assert_int_equal(a[2].type, SIPHON_V_INT);
    assert_int_equal(a[2].u.i, 3);
    assert_memory_equal(a[3].u.s.ptr, "01-104711-3", 11);
    assert_int_equal(a[5].u.s.len, strlen("Hex bolt M8 × 40"));
    assert_int_equal(a[6].type, SIPHON_V_DECIMAL);
    assert_int_equal(a[6].u.dec.scale, 3);
    void *head = ms->row.head;
    size_t used = ms->row.used_bytes;
    for (int i = 0; i < 10000; i++) {
        v[10].u.i = i;
        assert_int_equal(siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), got_cb, &g), 0);
        assert_ptr_equal(ms->row.head, head);
        assert_int_equal(ms->row.used_bytes, used);
    }
    /* line_amount: implied decimals of an integer, the int64 form (nothing in the arena) */
    char ib[SIPHON_DEC_I64_CHARS];
    const char *dd;
    assert_true(siphon_value_dec_is_i64(&g.last.after[11]));
    assert_int_equal(siphon_value_dec_digits(&g.last.after[11], ib, &dd), 4);
    assert_memory_equal(dd, "9999", 4);
    siphon_mapset_destroy(ms);
}
