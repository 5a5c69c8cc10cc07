/*
 * test_schema.c - loading entity schema files: names, field shapes, logical types, the kept
 * JSON text, and error messages with file:line:column (tests/golden/avro/bad-schemas/<case>/:
 * a schema file and `expected`, the message that must follow the file's path).
 */
#include "avro_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static siphon_schema_t *load_sales_order(void)
{
    char path[4096], err[512] = "";
    siphon_schema_t *sch = NULL;
    snprintf(path, sizeof(path), "%s/tests/golden/avro/schemas/sales_order.v1.avsc",
             avro_test_source_dir());
    if (siphon_schema_load(&sch, path, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    return sch;
}

static void test_load_sales_order(void **state)
{
    (void)state;
    siphon_schema_t *sch = load_sales_order();
    assert_string_equal(sch->entity, "sales_order");
    assert_int_equal(sch->major, 1);
    assert_non_null(strstr(sch->path, "sales_order.v1.avsc"));
    const siphon_avro_type_t *r = sch->record;
    assert_int_equal(r->kind, SIPHON_AVRO_RECORD);
    assert_string_equal(r->name, "com.acme.erp.SalesOrder");
    assert_int_equal(r->nfields, 22);

    /* the original text is kept byte for byte */
    size_t len;
    char *text = avro_test_read_file(sch->path, &len);
    assert_non_null(text);
    assert_int_equal(strlen(sch->json), len);
    assert_string_equal(sch->json, text);
    free(text);

    /* canonical form and fingerprint agree with the standalone functions */
    char *canon = NULL, err[256];
    assert_int_equal(siphon_avro_canonical_form(&canon, sch->json, strlen(sch->json), err,
                                                sizeof(err)), 0);
    assert_string_equal(canon, sch->canonical);
    assert_true(sch->fingerprint == siphon_avro_fingerprint64(canon, strlen(canon)));
    assert_non_null(strstr(canon, "\"name\":\"com.acme.erp.Status\""));
    assert_null(strstr(canon, "logicalType"));
    assert_null(strstr(canon, "doc"));
    free(canon);

    int i = siphon_schema_field_index(sch, "order_id");
    assert_int_equal(i, 0);
    assert_string_equal(r->fields[i].doc, "order number");
    assert_int_equal(r->fields[i].nullable, 0);
    assert_int_equal(r->fields[i].has_default, 0);
    assert_ptr_equal(r->fields[i].base, r->fields[i].type);

    i = siphon_schema_field_index(sch, "amount");
    assert_int_equal(r->fields[i].base->kind, SIPHON_AVRO_BYTES);
    assert_int_equal(r->fields[i].base->logical, SIPHON_AVRO_LT_DECIMAL);
    assert_int_equal(r->fields[i].base->precision, 12);
    assert_int_equal(r->fields[i].base->scale, 2);

    i = siphon_schema_field_index(sch, "fx");
    assert_int_equal(r->fields[i].nullable, 1);
    assert_int_equal(r->fields[i].has_default, 1);
    assert_int_equal(r->fields[i].type->kind, SIPHON_AVRO_UNION);
    assert_int_equal(r->fields[i].base->kind, SIPHON_AVRO_FIXED);
    assert_int_equal(r->fields[i].base->size, 16);
    assert_int_equal(r->fields[i].base->logical, SIPHON_AVRO_LT_DECIMAL);
    assert_string_equal(r->fields[i].base->name, "com.acme.erp.Money16");

    static const struct {
        const char *field;
        siphon_avro_kind_t kind;
        siphon_avro_logical_t lt;
    } lts[] = {
        {"order_date", SIPHON_AVRO_INT, SIPHON_AVRO_LT_DATE},
        {"ship_time", SIPHON_AVRO_LONG, SIPHON_AVRO_LT_TIME_MICROS},
        {"ship_time_ms", SIPHON_AVRO_INT, SIPHON_AVRO_LT_TIME_MILLIS},
        {"created_at", SIPHON_AVRO_LONG, SIPHON_AVRO_LT_TIMESTAMP_MICROS},
        {"created_ms", SIPHON_AVRO_LONG, SIPHON_AVRO_LT_TIMESTAMP_MILLIS},
        {"local_ts", SIPHON_AVRO_LONG, SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS},
        {"guid", SIPHON_AVRO_STRING, SIPHON_AVRO_LT_UUID},
        {"note", SIPHON_AVRO_STRING, SIPHON_AVRO_LT_NONE},
    };
    for (size_t k = 0; k < sizeof(lts) / sizeof(lts[0]); k++) {
        i = siphon_schema_field_index(sch, lts[k].field);
        assert_true(i >= 0);
        assert_int_equal(r->fields[i].base->kind, lts[k].kind);
        assert_int_equal(r->fields[i].base->logical, lts[k].lt);
    }

    /* a reference to a named type is the same node as its definition */
    int s = siphon_schema_field_index(sch, "status"), ps = siphon_schema_field_index(sch, "prev_status");
    assert_ptr_equal(r->fields[s].type, r->fields[ps].base);
    assert_int_equal(r->fields[s].type->nsymbols, 3);
    assert_string_equal(r->fields[s].type->symbols[1], "SHIPPED");

    i = siphon_schema_field_index(sch, "tags");
    assert_int_equal(r->fields[i].base->kind, SIPHON_AVRO_ARRAY);
    assert_int_equal(r->fields[i].base->items->kind, SIPHON_AVRO_STRING);

    assert_int_equal(siphon_schema_field_index(sch, "nope"), -1);
    siphon_schema_destroy(sch);
}

static void test_bad_schemas(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/golden/avro/bad-schemas", avro_test_source_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int ncases = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char cdir[8192], path[8192 + 300], file[256] = "";
        snprintf(cdir, sizeof(cdir), "%s/%s", dir, de->d_name);
        DIR *cd = opendir(cdir);
        if (!cd)
            continue;
        struct dirent *ce;
        while ((ce = readdir(cd)))
            if (strstr(ce->d_name, ".avsc"))
                snprintf(file, sizeof(file), "%s", ce->d_name);
        closedir(cd);
        if (!file[0])
            fail_msg("case %s: no .avsc file", de->d_name);
        snprintf(path, sizeof(path), "%s/expected", cdir);
        char *expected = avro_test_read_file(path, NULL);
        assert_non_null(expected);
        expected[strcspn(expected, "\n")] = '\0';

        snprintf(path, sizeof(path), "%s/%s", cdir, file);
        siphon_schema_t *sch = (siphon_schema_t *)1;
        char err[1024] = "";
        int rc = siphon_schema_load(&sch, path, err, sizeof(err));
        if (rc != SIPHON_EINVAL)
            fail_msg("case %s: expected SIPHON_EINVAL, got %d (%s)", de->d_name, rc, err);
        assert_null(sch);
        size_t plen = strlen(path);
        if (strncmp(err, path, plen) != 0 ||
            strncmp(err + plen, expected, strlen(expected)) != 0)
            fail_msg("case %s:\n  got      %s\n  expected %s%s", de->d_name, err, path,
                     expected);
        free(expected);
        ncases++;
    }
    closedir(d);
    assert_true(ncases >= 17);
}

static void test_file_names(void **state)
{
    (void)state;
    char err[512];
    siphon_schema_t *sch = NULL;
    const char *bad[] = {"/tmp/order.avsc", "/tmp/order.v0.avsc", "/tmp/order.v1.json",
                         "/tmp/.v1.avsc", "/tmp/or der.v1.avsc", "/tmp/order.vx.avsc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(siphon_schema_load(&sch, bad[i], err, sizeof(err)), SIPHON_EINVAL);
        assert_null(sch);
        assert_non_null(strstr(err, "<entity>.v<major>.avsc"));
    }
    assert_int_equal(siphon_schema_load(&sch, "/nonexistent/dir/order.v2.avsc", err,
                                        sizeof(err)), SIPHON_ENOTFOUND);
    assert_non_null(strstr(err, "could not open schema file"));
}

static void test_parse_text(void **state)
{
    (void)state;
    char err[512];
    siphon_schema_t *sch = NULL;
    const char *json = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                       "{\"name\":\"label\",\"type\":\"string\"},"
                       "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null}]}";
    assert_int_equal(siphon_schema_parse(&sch, json, strlen(json), err, sizeof(err)), 0);
    assert_null(sch->entity);
    assert_int_equal(sch->major, 0);
    /* a recursive record: the union's branch is the record itself */
    assert_ptr_equal(sch->record->fields[1].base, sch->record);
    assert_string_equal(sch->canonical,
                        "{\"name\":\"Node\",\"type\":\"record\",\"fields\":[{\"name\":\"label\","
                        "\"type\":\"string\"},{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}");
    siphon_schema_destroy(sch);

    /* errors from text carry <schema>:line:column */
    const char *bad = "{\"type\":\"record\",\"name\":\"R\",\n\"fields\":[{\"name\":\"x\",\"type\":"
                      "{\"type\":\"map\"}}]}";
    assert_int_equal(siphon_schema_parse(&sch, bad, strlen(bad), err, sizeof(err)), SIPHON_EINVAL);
    assert_string_equal(err, "<schema>:2:30: a map needs \"values\"");
    siphon_schema_destroy(NULL);
}

static void test_defaults_accepted(void **state)
{
    (void)state;
    char err[512] = "";
    siphon_schema_t *sch = NULL;
    const char *json =
        "{\"type\":\"record\",\"name\":\"D\",\"fields\":["
        "{\"name\":\"a\",\"type\":\"int\",\"default\":5},"
        "{\"name\":\"b\",\"type\":[\"long\",\"null\"],\"default\":7},"
        "{\"name\":\"c\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[\"x\"]},"
        "{\"name\":\"d\",\"type\":{\"type\":\"map\",\"values\":\"double\"},\"default\":{\"k\":1.5}},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"P\",\"Q\"]},"
        "\"default\":\"Q\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"record\",\"name\":\"In\",\"fields\":[{\"name\":\"z\","
        "\"type\":\"boolean\"},{\"name\":\"y\",\"type\":\"int\",\"default\":0}]},"
        "\"default\":{\"z\":true}}]}";
    if (siphon_schema_parse(&sch, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("%s", err);
    for (int i = 0; i < sch->record->nfields; i++)
        assert_int_equal(sch->record->fields[i].has_default, 1);
    assert_int_equal(sch->record->fields[1].nullable, 1);
    assert_int_equal(sch->record->fields[1].base->kind, SIPHON_AVRO_LONG);
    siphon_schema_destroy(sch);

    /* an int default out of the 32-bit range, a record default lacking a field */
    const char *bad1 = "{\"type\":\"record\",\"name\":\"D\",\"fields\":["
                       "{\"name\":\"a\",\"type\":\"int\",\"default\":3000000000}]}";
    assert_int_equal(siphon_schema_parse(&sch, bad1, strlen(bad1), err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "expected a 32-bit integer"));
    const char *bad2 = "{\"type\":\"record\",\"name\":\"D\",\"fields\":[{\"name\":\"f\",\"type\":"
                       "{\"type\":\"record\",\"name\":\"In\",\"fields\":[{\"name\":\"z\",\"type\":"
                       "\"boolean\"}]},\"default\":{}}]}";
    assert_int_equal(siphon_schema_parse(&sch, bad2, strlen(bad2), err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "lacks field \"z\""));
}

int avro_test_schema(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_sales_order),
        cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_defaults_accepted),
    };
    return cmocka_run_group_tests_name("avro_schema", tests, NULL, NULL);
}
