/*
 * test_side_by_side.c - a breaking change published as a new major version while the old one
 * keeps flowing: tests/golden/compat/fixtures/side-by-side maps one table to sales_order v1 and
 * v2 (two mapping files, two schema files). Every source change becomes one event per major,
 * in source order on both, each encoded with its own schema; the history records two streams
 * that are never compared with each other, although v2 cannot read v1's data.
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
#include "compat_test.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"

static siphon_column_t cols[] = {
    {"hdordn", 1042, "bpchar", SIPHON_V_TEXT, 14, 1, 1},
    {"hdcust", 1042, "bpchar", SIPHON_V_TEXT, 12, 0, 0},
    {"hdamt", 1700, "numeric", SIPHON_V_DECIMAL, (12 << 16 | 2) + 4, 0, 0},
};
static siphon_relation_t oehdr = {16384, 1, "public", "oehdr", 3, cols};

typedef struct seen {
    siphon_buf_t log;  /* "sales_order.v1:c:0001 ..." in call order */
    siphon_buf_t json; /* decoded envelopes, same order */
    int calls;
    char err[1024];
} seen_t;

static int on_mapped(const siphon_mapped_t *m, void *opaque)
{
    seen_t *s = opaque;
    siphon_avro_stream_t *st = siphon_mapping_stream(m->map);
    siphon_buf_t vb = {0};
    char *json = NULL;
    s->calls++;
    siphon_buf_printf(&s->log, "%s.v%d:%c:%.*s ", siphon_mapping_entity(m->map),
                      siphon_mapping_major(m->map), m->op, (int)m->key[0].u.s.len,
                      m->key[0].u.s.ptr);
    siphon_avro_event_t ev = {.op = m->op,
                              .before = m->before,
                              .after = m->after,
                              .source = {.connector = "t", .db = "erp", .schema = "public",
                                         .table = "oehdr", .pos = "0/1", .txid = 1},
                              .ts_us = 1,
                              .event_id = "0/1:0"};
    if (siphon_avro_stream_encode_value(st, &ev, &vb, s->err, sizeof(s->err)) < 0)
        fail_msg("encoding for %s v%d failed: %s", siphon_mapping_entity(m->map),
                 siphon_mapping_major(m->map), s->err);
    assert_int_equal(siphon_avro_stream_decode_json(&json, st, 0, vb.data, vb.len, s->err,
                                                    sizeof(s->err)),
                     0);
    siphon_buf_printf(&s->json, "%s\n", json);
    free(json);
    siphon_buf_free(&vb);
    return 0;
}

static siphon_value_t text(const char *s)
{
    siphon_value_t v = {.type = SIPHON_V_TEXT};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static siphon_value_t dec(const char *digits)
{
    siphon_value_t v = {.type = SIPHON_V_DECIMAL};
    v.u.dec.digits = digits;
    v.u.dec.len = strlen(digits);
    v.u.dec.scale = 2;
    return v;
}

static void test_two_majors_from_one_table(void **state)
{
    char maps[PATH_MAX], schemas[PATH_MAX], err[4096];
    siphon_mapset_t *ms = NULL;
    snprintf(maps, sizeof(maps), "%s/tests/golden/compat/fixtures/side-by-side/mappings",
             tc_source_dir());
    snprintf(schemas, sizeof(schemas), "%s/tests/golden/compat/fixtures/side-by-side/schemas",
             tc_source_dir());
    if (siphon_mapset_load(&ms, maps, schemas, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(siphon_mapset_count(ms), 2);
    const siphon_mapping_t *m0 = siphon_mapset_get(ms, 0), *m1 = siphon_mapset_get(ms, 1);
    assert_string_equal(siphon_mapping_entity(m0), "sales_order");
    assert_string_equal(siphon_mapping_entity(m1), "sales_order");
    assert_int_equal(siphon_mapping_major(m0) + siphon_mapping_major(m1), 3); /* 1 and 2 */
    assert_string_equal(siphon_mapping_source_table(m0), siphon_mapping_source_table(m1));
    assert_true(siphon_avro_stream_value_fingerprint(siphon_mapping_stream(m0)) !=
                siphon_avro_stream_value_fingerprint(siphon_mapping_stream(m1)));
    assert_int_equal(siphon_mapset_bind(ms, &oehdr, err, sizeof(err)), 0);

    /* three changes of one order: both majors see each, in the same order */
    siphon_value_t r1[3] = {text("0001"), text("C1"), dec("1230")};
    siphon_value_t r2[3] = {text("0001"), text("C2"), dec("-5")};
    siphon_row_t row1 = {3, r1}, row2 = {3, r2};
    siphon_change_t chg[3] = {
        {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &oehdr, .after = &row1},
        {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_UPDATE, .rel = &oehdr, .after = &row2},
        {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_DELETE, .rel = &oehdr, .before = &row2},
    };
    seen_t s = {0};
    for (int i = 0; i < 3; i++) {
        chg[i].database = "erp";
        chg[i].txid = (uint64_t)(i + 1);
        if (siphon_mapset_apply(ms, &chg[i], err, sizeof(err), on_mapped, &s) < 0)
            fail_msg("%s", err);
    }
    assert_int_equal(s.calls, 6);
    siphon_buf_appendc(&s.log, '\0');
    siphon_buf_appendc(&s.json, '\0');
    /* per stream, the source order: c, u, d */
    const char *log = (const char *)s.log.data;
    const char *v1[] = {"sales_order.v1:c:0001", "sales_order.v1:u:0001", "sales_order.v1:d:0001"};
    const char *v2[] = {"sales_order.v2:c:0001", "sales_order.v2:u:0001", "sales_order.v2:d:0001"};
    const char *p1 = log, *p2 = log;
    for (int i = 0; i < 3; i++) {
        p1 = strstr(p1, v1[i]);
        p2 = strstr(p2, v2[i]);
        if (!p1 || !p2)
            fail_msg("events out of order: %s", log);
        p1++;
        p2++;
    }
    /* each major has its own shape: v1's amount at scale 2, v2's at scale 3 */
    const char *json = (const char *)s.json.data;
    assert_non_null(strstr(json, "\"customer_number\":\"C1\""));
    assert_non_null(strstr(json, "\"customer_id\":\"C1\""));
    assert_non_null(strstr(json, "\"12.30\""));
    assert_non_null(strstr(json, "\"12.300\""));
    assert_non_null(strstr(json, "\"-0.050\""));
    assert_non_null(strstr(json, "\"channel\":null"));

    /* two streams in the history, each at its own .0; v2 is never checked against v1 */
    char dir[PATH_MAX], hpath[PATH_MAX + 32];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(hpath, sizeof(hpath), "%s/erp.schemas.json", dir);
    const siphon_avro_stream_t *st[] = {siphon_mapping_stream(m0), siphon_mapping_stream(m1)};
    siphon_schema_outcome_t oc[2];
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_FULL_TRANSITIVE, st,
                                                2, 1, oc, err, sizeof(err)),
                     0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(oc[i].verdict, SIPHON_SCHEMA_NEW);
        assert_int_equal(oc[i].minor, 0);
        assert_int_equal(oc[i].major, siphon_mapping_major(siphon_mapset_get(ms, i)));
        siphon_schema_outcome_free(&oc[i]);
    }
    /* ... which is why v2 had to be a new major: it cannot read v1's data */
    siphon_avro_compat_schema_t *a = NULL, *b = NULL;
    const siphon_schema_t *s1 = siphon_mapping_schema(siphon_mapping_major(m0) == 1 ? m0 : m1);
    const siphon_schema_t *s2 = siphon_mapping_schema(siphon_mapping_major(m0) == 1 ? m1 : m0);
    assert_int_equal(siphon_avro_compat_schema_new(&a, s1->json, strlen(s1->json), s1->path, err,
                                                   sizeof(err)),
                     0);
    assert_int_equal(siphon_avro_compat_schema_new(&b, s2->json, strlen(s2->json), s2->path, err,
                                                   sizeof(err)),
                     0);
    siphon_avro_compat_result_t res = {0};
    assert_int_equal(siphon_avro_compat_check(&res, b, a, NULL, NULL), 0);
    assert_int_equal(res.nissues, 2);
    assert_string_equal(res.issues[0].path, "SalesOrder.customer_id");
    assert_string_equal(res.issues[1].path, "SalesOrder.total_amount");
    siphon_avro_compat_result_free(&res);
    siphon_avro_compat_schema_destroy(a);
    siphon_avro_compat_schema_destroy(b);
    tc_rmtree(dir);

    siphon_buf_free(&s.log);
    siphon_buf_free(&s.json);
    siphon_mapset_destroy(ms);
}

int tc_side_by_side_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_majors_from_one_table),
    };
    return cmocka_run_group_tests_name("compat_side_by_side", tests, NULL, NULL);
}
