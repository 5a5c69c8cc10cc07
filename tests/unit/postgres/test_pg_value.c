/*
 * test_pg_value.c - unit tests of pg_value.c: decoding PostgreSQL text output into values, type
 * OID -> kind, and LSN text. Expected dates and timestamps were computed by PostgreSQL 15 itself
 * (SELECT d - '1970-01-01'::date, extract(epoch from ts)), not by the code under test.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/postgres/pg_int.h"
#include "core/error.h"

int pg_value_tests(void);

/* Decode text (copied: the decoder rewrites in place) and return the code. */
static char g_buf[512];
static char g_err[512];

static int dec(siphon_value_t *v, pg_kind_t kind, const char *text)
{
    size_t len = strlen(text);
    assert_true(len < sizeof(g_buf));
    memcpy(g_buf, text, len);
    memset(v, 0xAB, sizeof(*v));
    g_err[0] = '\0';
    return siphon_pg__decode(v, kind, g_buf, len, g_err, sizeof(g_err));
}

static void assert_dec_text(const siphon_value_t *v, siphon_vtype_t type, const char *want)
{
    assert_int_equal(v->type, type);
    assert_int_equal(v->u.s.len, strlen(want));
    assert_memory_equal(v->u.s.ptr, want, strlen(want));
}

static void assert_decimal(const char *text, const char *digits, int32_t scale)
{
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_DECIMAL, text), 0);
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_int_equal(v.u.dec.scale, scale);
    assert_int_equal(v.u.dec.len, strlen(digits));
    assert_memory_equal(v.u.dec.digits, digits, strlen(digits));
}

static void test_int(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_INT, "0"), 0);
    assert_int_equal(v.type, SIPHON_V_INT);
    assert_true(v.u.i == 0);
    assert_int_equal(dec(&v, PG_K_INT, "-32768"), 0);
    assert_true(v.u.i == -32768);
    assert_int_equal(dec(&v, PG_K_INT, "2147483647"), 0);
    assert_true(v.u.i == 2147483647);
    assert_int_equal(dec(&v, PG_K_INT, "9223372036854775807"), 0);
    assert_true(v.u.i == INT64_MAX);
    assert_int_equal(dec(&v, PG_K_INT, "-9223372036854775808"), 0);
    assert_true(v.u.i == INT64_MIN);
    assert_int_equal(dec(&v, PG_K_INT, "9223372036854775808"), SIPHON_EPROTO);
    assert_non_null(strstr(g_err, "integer"));
    assert_int_equal(dec(&v, PG_K_INT, "-9223372036854775809"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_INT, "99999999999999999999999"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_INT, "12a"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_INT, ""), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_INT, "-"), SIPHON_EPROTO);
}

static void test_numeric(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_decimal("-123.4500", "-1234500", 4);
    assert_decimal("123.45", "12345", 2);
    assert_decimal("100", "100", 0);
    assert_decimal("0", "0", 0);
    assert_decimal("0.00", "0", 2);
    assert_decimal("-0.00", "0", 2);
    assert_decimal("0.0012", "12", 4);
    assert_decimal("-0.0012", "-12", 4);
    assert_decimal("007.10", "710", 2);
    assert_decimal("123456789012345678901234567890.123456789012345678901234567890",
                   "123456789012345678901234567890123456789012345678901234567890", 30);
    assert_decimal("-99999999999999999999999999999999999999.99",
                   "-9999999999999999999999999999999999999999", 2);
    /* NaN and the infinities cannot be a decimal: passed on as text (see pg_value.c). */
    assert_int_equal(dec(&v, PG_K_DECIMAL, "NaN"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "NaN");
    assert_int_equal(dec(&v, PG_K_DECIMAL, "Infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "Infinity");
    assert_int_equal(dec(&v, PG_K_DECIMAL, "-Infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "-Infinity");
    assert_int_equal(dec(&v, PG_K_DECIMAL, "1.2.3"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_DECIMAL, "-"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_DECIMAL, "1e5"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_DECIMAL, ""), SIPHON_EPROTO);
}

static void test_float(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_FLOAT, "1.5"), 0);
    assert_int_equal(v.type, SIPHON_V_FLOAT);
    assert_true(v.u.f == 1.5);
    assert_int_equal(dec(&v, PG_K_FLOAT, "0.1"), 0);
    assert_true(v.u.f == 0.1);
    assert_int_equal(dec(&v, PG_K_FLOAT, "-2.2250738585072014e-308"), 0);
    assert_true(v.u.f == -2.2250738585072014e-308);
    assert_int_equal(dec(&v, PG_K_FLOAT, "1.7976931348623157e+308"), 0);
    assert_true(v.u.f == 1.7976931348623157e+308);
    assert_int_equal(dec(&v, PG_K_FLOAT, "NaN"), 0);
    assert_true(isnan(v.u.f));
    assert_int_equal(dec(&v, PG_K_FLOAT, "Infinity"), 0);
    assert_true(isinf(v.u.f) && v.u.f > 0);
    assert_int_equal(dec(&v, PG_K_FLOAT, "-Infinity"), 0);
    assert_true(isinf(v.u.f) && v.u.f < 0);
    assert_int_equal(dec(&v, PG_K_FLOAT, "1.5x"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_FLOAT, ""), SIPHON_EPROTO);
}

static void test_bool(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_BOOL, "t"), 0);
    assert_int_equal(v.type, SIPHON_V_BOOL);
    assert_int_equal(v.u.b, 1);
    assert_int_equal(dec(&v, PG_K_BOOL, "f"), 0);
    assert_int_equal(v.u.b, 0);
    assert_int_equal(dec(&v, PG_K_BOOL, "true"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_BOOL, ""), SIPHON_EPROTO);
}

static void assert_date(const char *text, int32_t days)
{
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_DATE, text), 0);
    assert_int_equal(v.type, SIPHON_V_DATE);
    assert_int_equal(v.u.date, days);
}

static void test_date(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_date("1970-01-01", 0);
    assert_date("1969-12-31", -1);
    assert_date("2000-02-29", 11016);
    assert_date("1900-03-01", -25508);
    assert_date("0001-01-01", -719162);
    assert_date("0001-12-31 BC", -719163);
    assert_date("0044-03-15 BC", -735160);
    assert_date("4713-01-01 BC", -2440550);
    assert_date("10000-01-01", 2932897);
    assert_date("5874897-12-31", 2145042905);
    assert_int_equal(dec(&v, PG_K_DATE, "infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "infinity");
    assert_int_equal(dec(&v, PG_K_DATE, "-infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "-infinity");
    assert_int_equal(dec(&v, PG_K_DATE, "2024-13-01"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_DATE, "2024-01-01 AD"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_DATE, "01/02/2024"), SIPHON_EPROTO);
    assert_non_null(strstr(g_err, "date"));
}

static void test_time(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_TIME, "00:00:00"), 0);
    assert_int_equal(v.type, SIPHON_V_TIME);
    assert_true(v.u.time_us == 0);
    assert_int_equal(dec(&v, PG_K_TIME, "23:59:59.999999"), 0);
    assert_true(v.u.time_us == INT64_C(86399999999));
    assert_int_equal(dec(&v, PG_K_TIME, "12:34:56.5"), 0);
    assert_true(v.u.time_us == INT64_C(45296500000));
    assert_int_equal(dec(&v, PG_K_TIME, "24:00:00"), 0);
    assert_true(v.u.time_us == INT64_C(86400000000));
    assert_int_equal(dec(&v, PG_K_TIME, "25:00:00"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_TIME, "12:00:00.1234567"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_TIME, "12:00"), SIPHON_EPROTO);
}

static void assert_ts(pg_kind_t kind, const char *text, int64_t us, int tz)
{
    siphon_value_t v;
    assert_int_equal(dec(&v, kind, text), 0);
    assert_int_equal(v.type, SIPHON_V_TIMESTAMP);
    assert_true(v.u.ts.us == us);
    assert_int_equal(v.u.ts.tz, tz);
}

static void test_timestamp(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_ts(PG_K_TS, "1970-01-01 00:00:00", 0, 0);
    assert_ts(PG_K_TS, "2024-01-02 03:04:05.123456", INT64_C(1704164645123456), 0);
    assert_ts(PG_K_TS, "1969-12-31 23:59:59.999999", -1, 0);
    assert_ts(PG_K_TS, "0044-03-15 12:00:00.25 BC", INT64_C(-63517780799750000), 0);
    assert_ts(PG_K_TSTZ, "2024-01-02 03:04:05.123456+00", INT64_C(1704164645123456), 1);
    assert_ts(PG_K_TSTZ, "2024-01-02 05:04:05.123456+02", INT64_C(1704164645123456), 1);
    assert_ts(PG_K_TSTZ, "2024-01-01 22:34:05.123456-04:30", INT64_C(1704164645123456), 1);
    /* local mean time offsets have seconds (a session outside UTC) */
    assert_ts(PG_K_TSTZ, "1850-01-01 00:19:32+00:19:32", INT64_C(-3786825600000000), 1);
    assert_ts(PG_K_TSTZ, "0044-03-15 12:00:00.25+00 BC", INT64_C(-63517780799750000), 1);
    assert_int_equal(dec(&v, PG_K_TSTZ, "infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "infinity");
    assert_int_equal(dec(&v, PG_K_TS, "-infinity"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "-infinity");
    /* Beyond int64 microseconds since 1970 (Postgres goes further): text, not a wrong number. */
    assert_int_equal(dec(&v, PG_K_TS, "294276-12-31 23:59:59.999999"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "294276-12-31 23:59:59.999999");
    assert_int_equal(dec(&v, PG_K_TS, "2024-01-02T03:04:05"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_TSTZ, "2024-01-02 03:04:05+"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_TS, "2024-01-02"), SIPHON_EPROTO);
}

static void test_bytea(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_BYTES, "\\x"), 0);
    assert_int_equal(v.type, SIPHON_V_BYTES);
    assert_int_equal(v.u.s.len, 0);
    assert_int_equal(dec(&v, PG_K_BYTES, "\\x0001feFF7f"), 0);
    assert_int_equal(v.u.s.len, 5);
    assert_memory_equal(v.u.s.ptr, "\x00\x01\xfe\xff\x7f", 5);
    assert_int_equal(dec(&v, PG_K_BYTES, "\\x0g"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_BYTES, "\\x012"), SIPHON_EPROTO);
    /* escape format, should a server force bytea_output = escape */
    assert_int_equal(dec(&v, PG_K_BYTES, "a\\\\b\\001\\377"), 0);
    assert_int_equal(v.u.s.len, 5);
    assert_memory_equal(v.u.s.ptr, "a\\b\x01\xff", 5);
    assert_int_equal(dec(&v, PG_K_BYTES, "a\\9"), SIPHON_EPROTO);
}

static void test_uuid(void **state)
{
    (void)state;
    siphon_value_t v;
    static const uint8_t want[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                                     0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    assert_int_equal(dec(&v, PG_K_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), 0);
    assert_int_equal(v.type, SIPHON_V_UUID);
    assert_memory_equal(v.u.uuid, want, 16);
    assert_int_equal(dec(&v, PG_K_UUID, "A0EEBC999C0B4EF8BB6D6BB9BD380A11"), 0);
    assert_memory_equal(v.u.uuid, want, 16);
    assert_int_equal(dec(&v, PG_K_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1122"), SIPHON_EPROTO);
    assert_int_equal(dec(&v, PG_K_UUID, "z0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), SIPHON_EPROTO);
}

static void test_text_json(void **state)
{
    (void)state;
    siphon_value_t v;
    assert_int_equal(dec(&v, PG_K_TEXT, ""), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "");
    assert_int_equal(dec(&v, PG_K_TEXT, "ab  "), 0); /* bpchar padding is kept */
    assert_dec_text(&v, SIPHON_V_TEXT, "ab  ");
    assert_int_equal(dec(&v, PG_K_TEXT, "Gr\xc3\xbc\xc3\x9f"), 0);
    assert_dec_text(&v, SIPHON_V_TEXT, "Gr\xc3\xbc\xc3\x9f");
    assert_int_equal(dec(&v, PG_K_RAWTEXT, "Gr\xfc\xdf"), 0);
    assert_dec_text(&v, SIPHON_V_RAWTEXT, "Gr\xfc\xdf");
    assert_int_equal(dec(&v, PG_K_JSON, "{\"a\": [1, 2]}"), 0);
    assert_dec_text(&v, SIPHON_V_JSON, "{\"a\": [1, 2]}");
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_INT2, 0), PG_K_INT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_INT4, 0), PG_K_INT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_INT8, 0), PG_K_INT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_NUMERIC, 0), PG_K_DECIMAL);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_FLOAT4, 0), PG_K_FLOAT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_FLOAT8, 0), PG_K_FLOAT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_BOOL, 0), PG_K_BOOL);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_TEXT, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_VARCHAR, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_BPCHAR, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_NAME, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_BPCHAR, 1), PG_K_RAWTEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_DATE, 0), PG_K_DATE);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_TIME, 0), PG_K_TIME);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_TIMESTAMP, 0), PG_K_TS);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_TIMESTAMPTZ, 0), PG_K_TSTZ);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_BYTEA, 1), PG_K_BYTES);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_UUID, 0), PG_K_UUID);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_JSON, 0), PG_K_JSON);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_JSONB, 1), PG_K_JSON);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_INTERVAL, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(PG_OID_TIMETZ, 0), PG_K_TEXT);
    assert_int_equal(siphon_pg__kind_for_oid(99999, 1), PG_K_RAWTEXT);
    assert_int_equal(siphon_pg__kind_vtype(PG_K_TSTZ), SIPHON_V_TIMESTAMP);
    assert_int_equal(siphon_pg__kind_vtype(PG_K_RAWTEXT), SIPHON_V_RAWTEXT);
    assert_string_equal(siphon_pg__builtin_type_name(PG_OID_INT4), "integer");
    assert_null(siphon_pg__builtin_type_name(99999));
}

static void test_lsn(void **state)
{
    (void)state;
    char buf[32];
    uint64_t lsn = 1;
    assert_int_equal(siphon_pg__lsn_format(0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "0/0");
    assert_int_equal(siphon_pg__lsn_format(UINT64_C(0x16B3748), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "0/16B3748");
    assert_int_equal(siphon_pg__lsn_format(UINT64_C(0x16B374D848), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "16/B374D848");
    assert_int_equal(siphon_pg__lsn_format(UINT64_MAX, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "FFFFFFFF/FFFFFFFF");
    assert_int_equal(siphon_pg__lsn_format(UINT64_MAX, buf, 5), SIPHON_EINVAL);

    assert_int_equal(siphon_pg__lsn_parse(&lsn, "0/0"), 0);
    assert_true(lsn == 0);
    assert_int_equal(siphon_pg__lsn_parse(&lsn, "16/B374D848"), 0);
    assert_true(lsn == UINT64_C(0x16B374D848));
    assert_int_equal(siphon_pg__lsn_parse(&lsn, "16/b374d848"), 0);
    assert_true(lsn == UINT64_C(0x16B374D848));
    assert_int_equal(siphon_pg__lsn_parse(&lsn, "FFFFFFFF/FFFFFFFF"), 0);
    assert_true(lsn == UINT64_MAX);
    for (uint64_t x = 1; x; x <<= 3) { /* round trip */
        uint64_t y;
        assert_int_equal(siphon_pg__lsn_format(x * 7, buf, sizeof(buf)), 0);
        assert_int_equal(siphon_pg__lsn_parse(&y, buf), 0);
        assert_true(y == x * 7);
    }
    const char *bad[] = {"", "0", "0/", "/0", "0/0 ", " 0/0", "123456789/0", "0/123456789",
                         "g/0", "0/0/0", "-1/0", "0x1/0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(siphon_pg__lsn_parse(&lsn, bad[i]), SIPHON_EINVAL);
}

static void test_days_from_civil(void **state)
{
    (void)state;
    /* Consecutive days are consecutive numbers across month, leap and era boundaries. */
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t expect = siphon_pg__days_from_civil(-1000, 1, 1);
    for (int64_t y = -1000; y <= 2400; y++) {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (unsigned m = 1; m <= 12; m++) {
            unsigned n = mdays[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= n; d++)
                assert_true(siphon_pg__days_from_civil(y, m, d) == expect++);
        }
    }
    assert_true(siphon_pg__days_from_civil(1970, 1, 1) == 0);
}

int pg_value_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),       cmocka_unit_test(test_numeric),
        cmocka_unit_test(test_float),     cmocka_unit_test(test_bool),
        cmocka_unit_test(test_date),      cmocka_unit_test(test_time),
        cmocka_unit_test(test_timestamp), cmocka_unit_test(test_bytea),
        cmocka_unit_test(test_uuid),      cmocka_unit_test(test_text_json),
        cmocka_unit_test(test_kinds),     cmocka_unit_test(test_lsn),
        cmocka_unit_test(test_days_from_civil),
    };
    return cmocka_run_group_tests_name("pg_value", tests, NULL, NULL);
}
