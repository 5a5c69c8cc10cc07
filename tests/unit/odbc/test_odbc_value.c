/*
 * test_odbc_value.c - unit tests of odbc_value.c: how an ODBC type becomes a kind, the ODBC
 * character forms of dates and times, UTF-16 <-> UTF-8, datums becoming values, the content
 * hash, the key encoding and the watermark text of each kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

int odbc_value_tests(void);

static odbc_datum_t dtext(const char *s) { return (odbc_datum_t){(const uint8_t *)s, (uint32_t)strlen(s), 0}; }

static odbc_datum_t dint(int64_t v, uint8_t *buf)
{
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)v >> (8 * i));
    return (odbc_datum_t){buf, 8, 0};
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(siphon_odbc__kind_for(SQL_INTEGER, "int4", 0), ODBC_K_INT);
    assert_int_equal(siphon_odbc__kind_for(SQL_BIGINT, "bigint", 0), ODBC_K_INT);
    assert_int_equal(siphon_odbc__kind_for(SQL_BIGINT, "bigint unsigned", 1), ODBC_K_UBIG);
    assert_int_equal(siphon_odbc__kind_for(SQL_TINYINT, "tinyint", 0), ODBC_K_INT);
    assert_int_equal(siphon_odbc__kind_for(SQL_BIT, "bool", 0), ODBC_K_BOOL);
    assert_int_equal(siphon_odbc__kind_for(SQL_DOUBLE, "float8", 0), ODBC_K_FLOAT);
    assert_int_equal(siphon_odbc__kind_for(SQL_NUMERIC, "numeric", 0), ODBC_K_DECIMAL);
    assert_int_equal(siphon_odbc__kind_for(SQL_TYPE_TIMESTAMP, "timestamptz", 0), ODBC_K_TS);
    assert_int_equal(siphon_odbc__kind_for(SQL_TYPE_DATE, "date", 0), ODBC_K_DATE);
    assert_int_equal(siphon_odbc__kind_for(SQL_TYPE_TIME, "time", 0), ODBC_K_TIME);
    assert_int_equal(siphon_odbc__kind_for(SQL_GUID, "uuid", 0), ODBC_K_UUID);
    assert_int_equal(siphon_odbc__kind_for(SQL_LONGVARBINARY, "bytea", 0), ODBC_K_BYTES);
    assert_int_equal(siphon_odbc__kind_for(SQL_WVARCHAR, "nvarchar", 0), ODBC_K_TEXT);
    /* drivers that describe typed columns as text: the type name decides */
    assert_int_equal(siphon_odbc__kind_for(SQL_VARCHAR, "jsonb", 0), ODBC_K_JSON);
    assert_int_equal(siphon_odbc__kind_for(SQL_VARCHAR, "decimal(12,2)", 0), ODBC_K_DECIMAL);
    assert_int_equal(siphon_odbc__kind_for(SQL_DOUBLE, "numeric(12,2)", 0), ODBC_K_DECIMAL);
    assert_int_equal(siphon_odbc__kind_for(SQL_DOUBLE, "double", 0), ODBC_K_FLOAT);
    assert_int_equal(siphon_odbc__kind_for(SQL_VARCHAR, "varchar", 0), ODBC_K_TEXT);
    assert_int_equal(siphon_odbc__kind_for(12345, NULL, 0), ODBC_K_TEXT);
    /* what each kind is fetched as */
    assert_int_equal(siphon_odbc__kind_ctype(ODBC_K_TEXT), SQL_C_WCHAR);
    assert_int_equal(siphon_odbc__kind_ctype(ODBC_K_TS), SQL_C_CHAR);
    assert_int_equal(siphon_odbc__kind_ctype(ODBC_K_TIME), SQL_C_CHAR);
    assert_int_equal(siphon_odbc__kind_ctype(ODBC_K_INT), SQL_C_SBIGINT);
    assert_int_equal(siphon_odbc__kind_ctype(ODBC_K_BYTES), SQL_C_BINARY);
    assert_int_equal(siphon_odbc__kind_vtype(ODBC_K_UBIG), SIPHON_V_DECIMAL);
    assert_int_equal(siphon_odbc__kind_vtype(ODBC_K_JSON), SIPHON_V_JSON);
}

static void test_dates_and_times(void **state)
{
    (void)state;
    int32_t days;
    int64_t us;
    int tz;
    assert_int_equal(siphon_odbc__parse_date("1970-01-01", 10, &days), 0);
    assert_int_equal(days, 0);
    assert_int_equal(siphon_odbc__parse_date("2024-02-29", 10, &days), 0);
    assert_int_equal(days, 19782);
    assert_int_equal(siphon_odbc__parse_date("1969-12-31", 10, &days), 0);
    assert_int_equal(days, -1);
    assert_int_equal(siphon_odbc__parse_date("2023-02-29", 10, &days), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__parse_date("2024-13-01", 10, &days), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__parse_date("2024-1-01", 9, &days), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__parse_date("2024-01-01x", 11, &days), SIPHON_EINVAL);

    assert_int_equal(siphon_odbc__parse_time("12:34:56.789", 12, &us), 0);
    assert_int_equal(us, ((12 * 60 + 34) * 60 + 56) * INT64_C(1000000) + 789000);
    assert_int_equal(siphon_odbc__parse_time("00:00:00", 8, &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(siphon_odbc__parse_time("23:59:59.1234567", 16, &us), 0);
    assert_int_equal(us % 1000000, 123456); /* past the microsecond: truncated */
    assert_int_equal(siphon_odbc__parse_time("25:00:00", 8, &us), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__parse_time("12:34:56.", 9, &us), SIPHON_EINVAL);

    const char *s = "2024-01-01 10:00:00.123456";
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), 0);
    assert_int_equal(tz, 0);
    assert_int_equal(us, INT64_C(1704103200123456));
    s = "2024-01-01T10:00:00Z";
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), 0);
    assert_int_equal(tz, 1);
    assert_int_equal(us, INT64_C(1704103200000000));
    s = "2024-01-01 12:00:00+02";
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), 0);
    assert_int_equal(tz, 1);
    assert_int_equal(us, INT64_C(1704103200000000));
    s = "2024-01-01 06:30:00-03:30";
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), 0);
    assert_int_equal(us, INT64_C(1704103200000000));
    s = "2024-01-01"; /* a date alone is midnight */
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), 0);
    assert_int_equal(us, INT64_C(1704067200000000));
    s = "infinity";
    assert_int_equal(siphon_odbc__parse_ts(s, strlen(s), &us, &tz), SIPHON_EINVAL);

    /* format: six fraction digits, before 1970 too, and parse gives it back */
    char buf[40];
    siphon_odbc__format_ts(INT64_C(1704103200123456), buf, sizeof(buf));
    assert_string_equal(buf, "2024-01-01 10:00:00.123456");
    siphon_odbc__format_ts(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31 23:59:59.999999");
    for (int64_t v = -INT64_C(5000000000000000); v < INT64_C(5000000000000000);
         v += INT64_C(123456789012345)) {
        siphon_odbc__format_ts(v, buf, sizeof(buf));
        assert_int_equal(siphon_odbc__parse_ts(buf, strlen(buf), &us, &tz), 0);
        assert_int_equal(us, v);
    }

    uint8_t u[16];
    s = "5DDDC2E3-E993-44DE-8D58-D5D4F687C4B6";
    assert_int_equal(siphon_odbc__parse_uuid(s, strlen(s), u), 0);
    assert_int_equal(u[0], 0x5d);
    assert_int_equal(u[15], 0xb6);
    assert_int_equal(siphon_odbc__parse_uuid("5dddc2e3", 8, u), SIPHON_EINVAL);
    s = "5DDDC2E3-E993-44DE-8D58-D5D4F687C4BG";
    assert_int_equal(siphon_odbc__parse_uuid(s, strlen(s), u), SIPHON_EINVAL);
}

static void test_utf16(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* a é € 😀 */
    SQLWCHAR w[32];
    char back[64];
    size_t n = siphon_odbc__utf8_to_utf16(s, strlen(s), w);
    assert_int_equal(n, 5); /* the emoji is a surrogate pair */
    assert_int_equal(w[0], 'a');
    assert_int_equal(w[1], 0xE9);
    assert_int_equal(w[2], 0x20AC);
    assert_int_equal(w[3], 0xD83D);
    assert_int_equal(w[4], 0xDE00);
    size_t m = siphon_odbc__utf16_to_utf8(w, n, back);
    assert_int_equal(m, strlen(s));
    assert_memory_equal(back, s, m);

    /* an unpaired surrogate becomes U+FFFD */
    SQLWCHAR bad[2] = {0xD800, 'x'};
    m = siphon_odbc__utf16_to_utf8(bad, 2, back);
    assert_int_equal(m, 4);
    assert_memory_equal(back, "\xef\xbf\xbdx", 4);
    /* invalid UTF-8 (a lone continuation, a truncated sequence, an overlong form) */
    n = siphon_odbc__utf8_to_utf16("\x80z\xe2\x82", 4, w);
    assert_int_equal(n, 4);
    assert_int_equal(w[0], 0xFFFD);
    assert_int_equal(w[1], 'z');
    n = siphon_odbc__utf8_to_utf16("\xc0\xaf", 2, w);
    assert_true(n <= 2);
    assert_int_equal(w[0], 0xFFFD);
}

static void test_decode(void **state)
{
    (void)state;
    siphon_arena_t a;
    siphon_value_t v;
    uint8_t ib[8];
    siphon_arena_init(&a, 0);

    odbc_datum_t d = dint(-42, ib);
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_INT, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_INT);
    assert_int_equal(v.u.i, -42);

    d = dtext("-0012.3400");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_DECIMAL, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_int_equal(v.u.dec.scale, 4);
    assert_memory_equal(v.u.dec.digits, "-123400", v.u.dec.len);

    d = dtext("18446744073709551615");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_UBIG, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_int_equal(v.u.dec.scale, 0);
    assert_int_equal(v.u.dec.len, 20);

    /* what does not parse stays text, never an error (PostgreSQL NaN, 'infinity') */
    d = dtext("NaN");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_DECIMAL, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_int_equal(v.u.s.len, 3);
    d = dtext("infinity");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_TS, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_TEXT);

    d = dtext("2024-01-01 10:00:00.5");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_TS, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_TIMESTAMP);
    assert_int_equal(v.u.ts.us, INT64_C(1704103200500000));
    d = dtext("2024-02-29");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_DATE, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_DATE);
    assert_int_equal(v.u.date, 19782);
    d = dtext("{\"a\":1}");
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_JSON, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_JSON);

    uint8_t one = 1;
    d = (odbc_datum_t){&one, 1, 0};
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_BOOL, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_BOOL);
    assert_true(v.u.b);

    d = (odbc_datum_t){NULL, 0, 1};
    assert_int_equal(siphon_odbc__decode(&v, ODBC_K_TEXT, &d, &a), 0);
    assert_int_equal(v.type, SIPHON_V_NULL);
    siphon_arena_destroy(&a);
}

static void test_hash_and_keys(void **state)
{
    (void)state;
    uint8_t b1[8], b2[8];
    odbc_datum_t r1[3] = {dint(7, b1), dtext("ab"), {NULL, 0, 1}};
    odbc_datum_t r2[3] = {dint(7, b2), dtext("ab"), dtext("")};
    /* NULL and '' differ; the same content hashes the same */
    assert_int_not_equal(siphon_odbc__row_hash(r1, 3), siphon_odbc__row_hash(r2, 3));
    odbc_datum_t r3[3] = {dint(7, b2), dtext("ab"), {NULL, 0, 1}};
    assert_int_equal(siphon_odbc__row_hash(r1, 3), siphon_odbc__row_hash(r3, 3));
    /* bytes moved across a column boundary change the hash */
    odbc_datum_t x1[2] = {dtext("ab"), dtext("c")}, x2[2] = {dtext("a"), dtext("bc")};
    assert_int_not_equal(siphon_odbc__row_hash(x1, 2), siphon_odbc__row_hash(x2, 2));
    assert_int_not_equal(siphon_odbc__hash(0, "a", 1), siphon_odbc__hash(1, "a", 1));

    /* keys: encode a composite key (columns 2, 0), decode it back */
    siphon_buf_t kb = {0};
    int idx[2] = {2, 0};
    odbc_datum_t row[3] = {dtext("0000000042"), dint(1, b1), dtext("01")};
    assert_int_equal(siphon_odbc__key_encode(&kb, row, idx, 2), 0);
    odbc_datum_t out[2];
    assert_int_equal(siphon_odbc__key_decode(out, 2, kb.data, kb.len), 0);
    assert_int_equal(out[0].len, 2);
    assert_memory_equal(out[0].p, "01", 2);
    assert_int_equal(out[1].len, 10);
    assert_memory_equal(out[1].p, "0000000042", 10);
    /* a NULL key part, and malformed encodings */
    siphon_buf_reset(&kb);
    odbc_datum_t nrow[1] = {{NULL, 0, 1}};
    int i0 = 0;
    assert_int_equal(siphon_odbc__key_encode(&kb, nrow, &i0, 1), 0);
    assert_int_equal(siphon_odbc__key_decode(out, 1, kb.data, kb.len), 0);
    assert_true(out[0].null);
    assert_int_equal(siphon_odbc__key_decode(out, 2, kb.data, kb.len), SIPHON_EINVAL);
    uint8_t bad[] = {0x05, 'a'};
    assert_int_equal(siphon_odbc__key_decode(out, 1, bad, sizeof(bad)), SIPHON_EINVAL);
    siphon_buf_free(&kb);
}

static void test_datum_text(void **state)
{
    (void)state;
    siphon_arena_t a;
    siphon_buf_t b = {0};
    odbc_datum_t d;
    uint8_t ib[8];
    siphon_arena_init(&a, 0);
    struct {
        odbc_kind_t k;
        odbc_datum_t d;
        const char *text;
    } cases[] = {
        {ODBC_K_INT, dint(INT64_MIN, ib), "-9223372036854775808"},
        {ODBC_K_TEXT, dtext("\xc3\xa9t\xc3\xa9"), "\xc3\xa9t\xc3\xa9"},
        {ODBC_K_TS, dtext("2024-01-01 10:00:00"), "2024-01-01 10:00:00"},
        {ODBC_K_BYTES, {(const uint8_t *)"\x00\xff\x10", 3, 0}, "00ff10"},
        {ODBC_K_DECIMAL, dtext("12.50"), "12.50"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        siphon_buf_reset(&b);
        assert_int_equal(siphon_odbc__datum_text(&b, cases[i].k, &cases[i].d), 0);
        assert_int_equal(b.len, strlen(cases[i].text));
        assert_memory_equal(b.data, cases[i].text, b.len);
        /* and back: the same bytes as fetched */
        assert_int_equal(siphon_odbc__datum_parse(&d, cases[i].k, (char *)b.data, b.len, &a), 0);
        assert_int_equal(d.len, cases[i].d.len);
        assert_memory_equal(d.p, cases[i].d.p, d.len);
    }
    uint8_t fb[8];
    double f = 0.1;
    memcpy(fb, &f, 8);
    odbc_datum_t fd = {fb, 8, 0};
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__datum_text(&b, ODBC_K_FLOAT, &fd), 0);
    assert_int_equal(siphon_odbc__datum_parse(&d, ODBC_K_FLOAT, (char *)b.data, b.len, &a), 0);
    assert_memory_equal(d.p, fb, 8); /* %.17g round-trips */
    assert_int_equal(siphon_odbc__datum_parse(&d, ODBC_K_INT, "12x", 3, &a), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__datum_parse(&d, ODBC_K_BYTES, "0g", 2, &a), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__datum_parse(&d, ODBC_K_BOOL, "2", 1, &a), SIPHON_EINVAL);
    siphon_buf_free(&b);
    siphon_arena_destroy(&a);
}

int odbc_value_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),      cmocka_unit_test(test_dates_and_times),
        cmocka_unit_test(test_utf16),      cmocka_unit_test(test_decode),
        cmocka_unit_test(test_hash_and_keys), cmocka_unit_test(test_datum_text),
    };
    return cmocka_run_group_tests_name("odbc_value", tests, NULL, NULL);
}
