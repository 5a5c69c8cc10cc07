/*
 * test_core.c - the value model helpers, buffers and arenas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/value.h"

static void check_decimal(const char *text, const char *digits, int scale, const char *formatted)
{
    siphon_value_t v;
    char out[128], fmt[128];
    assert_int_equal(siphon_value_decimal_parse(&v, text, strlen(text), out, sizeof(out)), 0);
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_int_equal(v.u.dec.len, strlen(digits));
    assert_memory_equal(v.u.dec.digits, digits, strlen(digits));
    assert_int_equal(v.u.dec.scale, scale);
    siphon_value_format(&v, fmt, sizeof(fmt));
    assert_string_equal(fmt, formatted);
}

static void test_decimal_parse(void **state)
{
    check_decimal("123.45", "12345", 2, "123.45");
    check_decimal("-0.00", "0", 2, "0.00");
    check_decimal("-12.5", "-125", 1, "-12.5");
    check_decimal("0.001", "1", 3, "0.001");
    check_decimal("007", "7", 0, "7");
    check_decimal("+3.10", "310", 2, "3.10");
    check_decimal("12345678901234567890123456789012345678.12", "1234567890123456789012345678901234567812",
                  2, "12345678901234567890123456789012345678.12");
    siphon_value_t v;
    char out[64];
    assert_int_equal(siphon_value_decimal_parse(&v, "1.2.3", 5, out, sizeof(out)), SIPHON_EINVAL);
    assert_int_equal(siphon_value_decimal_parse(&v, "NaN", 3, out, sizeof(out)), SIPHON_EINVAL);
    assert_int_equal(siphon_value_decimal_parse(&v, "-", 1, out, sizeof(out)), SIPHON_EINVAL);
}

static void test_format_dates(void **state)
{
    char buf[64];
    siphon_value_t v = {.type = SIPHON_V_DATE};
    v.u.date = 0;
    siphon_value_format(&v, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01");
    v.u.date = -25567; /* 1900-01-01 */
    siphon_value_format(&v, buf, sizeof(buf));
    assert_string_equal(buf, "1900-01-01");
    v.u.date = 11016; /* 2000-02-29 */
    siphon_value_format(&v, buf, sizeof(buf));
    assert_string_equal(buf, "2000-02-29");
    siphon_value_t ts = {.type = SIPHON_V_TIMESTAMP};
    ts.u.ts.us = -1; /* one microsecond before the epoch */
    ts.u.ts.tz = 1;
    siphon_value_format(&ts, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    ts.u.ts.us = INT64_C(1700000000123456);
    ts.u.ts.tz = 0;
    siphon_value_format(&ts, buf, sizeof(buf));
    assert_string_equal(buf, "2023-11-14T22:13:20.123456");
    siphon_value_t t = {.type = SIPHON_V_TIME};
    t.u.time_us = INT64_C(86399999999);
    siphon_value_format(&t, buf, sizeof(buf));
    assert_string_equal(buf, "23:59:59.999999");
}

static void test_buf_and_arena(void **state)
{
    siphon_buf_t b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(siphon_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(memcmp(b.data, "0,1,2,", 6), 0);
    siphon_buf_reset(&b);
    assert_int_equal(b.len, 0);
    siphon_buf_free(&b);

    siphon_arena_t a;
    siphon_arena_init(&a, 128);
    char *s = siphon_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    void *big = siphon_arena_alloc(&a, 10000); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 10000);
    for (int i = 0; i < 100; i++) {
        uintptr_t p = (uintptr_t)siphon_arena_alloc(&a, 3);
        assert_int_equal(p % 8, 0);
    }
    siphon_arena_reset(&a);
    assert_int_equal(a.used_bytes, 0);
    assert_non_null(siphon_arena_alloc(&a, 16));
    siphon_arena_destroy(&a);
}

static void test_errors(void **state)
{
    char err[32];
    assert_int_equal(siphon_err(err, sizeof(err), SIPHON_ECONN, "x=%d", 5), SIPHON_ECONN);
    assert_string_equal(err, "x=5");
    assert_true(siphon_err_is_retriable(SIPHON_ECONN));
    assert_false(siphon_err_is_retriable(SIPHON_EDELIVERY));
    assert_string_equal(siphon_err_name(SIPHON_EINVAL), "EINVAL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_parse),
        cmocka_unit_test(test_format_dates),
        cmocka_unit_test(test_buf_and_arena),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
