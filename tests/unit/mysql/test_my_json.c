/*
 * test_my_json.c - MySQL's binary JSON to text: scalars, small and large containers, inlined
 * and offset values, nesting, opaque DECIMAL/DATETIME/TIME and other custom data, escaping,
 * and malformed documents (errors, never reads past the end). Documents are built by hand from
 * json_binary.h's grammar (MySQL does not run here; MariaDB has no binary JSON).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

int my_json_tests(void);

static char *text(const uint8_t *p, size_t n)
{
    siphon_buf_t b = {0};
    char err[256];
    int rc = siphon_my__json_to_text(&b, p, n, err, sizeof(err));
    if (rc)
        fail_msg("json: %s", err);
    char *s = strndup((const char *)b.data, b.len);
    siphon_buf_free(&b);
    return s;
}

static int bad(const uint8_t *p, size_t n)
{
    siphon_buf_t b = {0};
    char err[256];
    int rc = siphon_my__json_to_text(&b, p, n, err, sizeof(err));
    siphon_buf_free(&b);
    return rc;
}

#define EXPECT(bytes, want)                                                                   \
    do {                                                                                      \
        char *s_ = text(bytes, sizeof(bytes));                                                \
        assert_string_equal(s_, want);                                                        \
        free(s_);                                                                             \
    } while (0)

static void test_scalars(void **state)
{
    (void)state;
    uint8_t t[] = {0x04, 0x01}, f[] = {0x04, 0x02}, n[] = {0x04, 0x00};
    EXPECT(t, "true");
    EXPECT(f, "false");
    EXPECT(n, "null");
    char *s = text(NULL, 0);
    assert_string_equal(s, "null");
    free(s);
    uint8_t i16[] = {0x05, 0xFB, 0xFF}, u16[] = {0x06, 0xFF, 0xFF};
    EXPECT(i16, "-5");
    EXPECT(u16, "65535");
    uint8_t i32[] = {0x07, 0x00, 0x00, 0x00, 0x80}, u32[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF};
    EXPECT(i32, "-2147483648");
    EXPECT(u32, "4294967295");
    uint8_t i64[] = {0x09, 0, 0, 0, 0, 0, 0, 0, 0x80};
    uint8_t u64[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    EXPECT(i64, "-9223372036854775808");
    EXPECT(u64, "18446744073709551615");
    double vals[] = {2.5, 1.0, 1e20, -0.000001, 0.1};
    const char *want[] = {"2.5", "1.0", "1e20", "-1e-6", "0.1"};
    for (int i = 0; i < 5; i++) {
        uint8_t d[9] = {0x0b};
        memcpy(d + 1, &vals[i], 8);
        EXPECT(d, want[i]);
    }
    /* strings: 7-bit variable length, JSON escapes, UTF-8 kept */
    uint8_t str[] = {0x0c, 0x06, 'a', '"', '\\', '\n', 0xC3, 0xA9};
    EXPECT(str, "\"a\\\"\\\\\\n\xC3\xA9\"");
    uint8_t ctl[] = {0x0c, 0x01, 0x01};
    EXPECT(ctl, "\"\\u0001\"");
    uint8_t *lng = malloc(3 + 200);
    lng[0] = 0x0c;
    lng[1] = 0x80 | (200 & 0x7f); /* 200 = 0b1_1001000: two length bytes */
    lng[2] = 200 >> 7;
    memset(lng + 3, 'x', 200);
    char *s2 = text(lng, 203);
    assert_int_equal(strlen(s2), 202);
    free(s2);
    free(lng);
}

static void test_containers(void **state)
{
    (void)state;
    /* [1, "x"]: small array, an inlined int16 and a string at offset 10 */
    uint8_t arr[] = {0x02, 0x02, 0x00, 0x0c, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x0a, 0x00,
                     0x01, 'x'};
    EXPECT(arr, "[1, \"x\"]");
    /* {"a": 1, "bc": null}: keys at 18 and 19, values inlined */
    uint8_t obj[] = {0x00, 0x02, 0x00, 0x15, 0x00, 0x12, 0x00, 0x01, 0x00, 0x13, 0x00, 0x02,
                     0x00, 0x05, 0x01, 0x00, 0x04, 0x00, 0x00, 'a', 'b', 'c'};
    EXPECT(obj, "{\"a\": 1, \"bc\": null}");
    /* {"k": [true]}: key at 11, a nested small array at offset 12 */
    uint8_t nest[] = {0x00, 0x01, 0x00, 0x13, 0x00, 0x0b, 0x00, 0x01, 0x00, 0x02, 0x0c, 0x00,
                      'k', 0x01, 0x00, 0x07, 0x00, 0x04, 0x01, 0x00};
    EXPECT(nest, "{\"k\": [true]}");
    /* large array [70000]: 4-byte counts, int32 inlined */
    uint8_t la[] = {0x03, 0x01, 0, 0, 0, 0x0d, 0, 0, 0, 0x07, 0x70, 0x11, 0x01, 0x00};
    EXPECT(la, "[70000]");
    /* empty containers */
    uint8_t ea[] = {0x02, 0x00, 0x00, 0x04, 0x00}, eo[] = {0x00, 0x00, 0x00, 0x04, 0x00};
    EXPECT(ea, "[]");
    EXPECT(eo, "{}");
}

static void test_opaque(void **state)
{
    (void)state;
    /* DECIMAL(4,2) 12.34: precision, scale, packed 0x8c 0x22 */
    uint8_t d[] = {0x0f, MYT_NEWDECIMAL, 0x04, 0x04, 0x02, 0x8c, 0x22};
    EXPECT(d, "12.34");
    /* DATETIME 2015-01-15 23:24:25.5: the 8-byte packed form */
    uint64_t ymd = ((uint64_t)(2015 * 13 + 1) << 5) | 15;
    uint64_t hms = (23u << 12) | (24u << 6) | 25u;
    uint64_t packed = ((ymd << 17 | hms) << 24) + 500000;
    uint8_t dt[11] = {0x0f, MYT_DATETIME, 0x08};
    for (int i = 0; i < 8; i++)
        dt[3 + i] = (uint8_t)(packed >> (8 * i));
    EXPECT(dt, "\"2015-01-15 23:24:25.500000\"");
    dt[1] = MYT_DATE;
    EXPECT(dt, "\"2015-01-15\"");
    /* TIME -01:02:03 */
    int64_t tp = -(int64_t)((uint64_t)((1u << 12) | (2u << 6) | 3u) << 24);
    uint8_t tm[11] = {0x0f, MYT_TIME, 0x08};
    for (int i = 0; i < 8; i++)
        tm[3 + i] = (uint8_t)((uint64_t)tp >> (8 * i));
    EXPECT(tm, "\"-01:02:03.000000\"");
    /* anything else: base64 with its type, as MySQL prints it */
    uint8_t blob[] = {0x0f, MYT_BLOB, 0x03, 'a', 'b', 'c'};
    EXPECT(blob, "\"base64:type252:YWJj\"");
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t cut[] = {0x09, 1, 2, 3};
    assert_int_equal(bad(cut, sizeof(cut)), SIPHON_EPROTO);
    uint8_t strlen_[] = {0x0c, 0x05, 'a'};
    assert_int_equal(bad(strlen_, sizeof(strlen_)), SIPHON_EPROTO);
    uint8_t big[] = {0x02, 0x01, 0x00, 0xff, 0x00};
    assert_int_equal(bad(big, sizeof(big)), SIPHON_EPROTO);
    uint8_t off[] = {0x02, 0x01, 0x00, 0x07, 0x00, 0x0c, 0x40, 0x00};
    assert_int_equal(bad(off, sizeof(off)), SIPHON_EPROTO);
    uint8_t unk[] = {0x0e};
    assert_int_equal(bad(unk, sizeof(unk)), SIPHON_EPROTO);
    uint8_t lit[] = {0x04, 0x07};
    assert_int_equal(bad(lit, sizeof(lit)), SIPHON_EPROTO);
    /* nesting: 50 levels decode, 101 are refused */
    for (int depth = 50; depth <= 101; depth += 51) {
        size_t n = 1 + 4 + (size_t)depth * 7;
        uint8_t *doc = calloc(1, n);
        doc[0] = 0x02;
        /* level i starts at 1 + 7 * i: [ one entry: array at offset 7 ] */
        for (int i = 0; i <= depth; i++) {
            uint8_t *p = doc + 1 + 7 * i;
            size_t size = 4 + (size_t)(depth - i) * 7;
            p[0] = i < depth ? 1 : 0;
            p[2] = (uint8_t)size;
            p[3] = (uint8_t)(size >> 8);
            if (i < depth) {
                p[4] = 0x02;
                p[5] = 7;
            }
        }
        if (depth == 50) {
            char *t = text(doc, n);
            assert_int_equal(strlen(t), 102);
            assert_memory_equal(t, "[[[", 3);
            free(t);
        } else {
            assert_int_equal(bad(doc, n), SIPHON_EPROTO);
        }
        free(doc);
    }
}

int my_json_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_opaque),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests_name("mysql/json", tests, NULL, NULL);
}
