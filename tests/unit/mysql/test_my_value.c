/*
 * test_my_value.c - row-image values: each binlog type decoded from bytes laid out as the
 * MySQL/MariaDB row format documents them (little-endian integers, big-endian packed DECIMAL
 * and TIME2/DATETIME2/TIMESTAMP2), column plans from TABLE_MAP metadata, character sets.
 * Expected values are computed independently (an encoder written from the format description,
 * or bytes captured from a MariaDB 10.11 binlog).
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

int my_value_tests(void);

static siphon_arena_t arena;
static my_iconv_t *iconvs;
static my_vctx_t vx = {&arena, &iconvs, 0};

static my_col_t col(uint8_t type, uint8_t m0, uint8_t m1)
{
    my_col_t c;
    uint8_t meta[2] = {m0, m1};
    char err[256];
    assert_int_equal(siphon_my__col_from_meta(&c, type, meta, err, sizeof(err)), 0);
    c.cs = MY_CS_UTF8;
    siphon_my__col_finish(&c);
    return c;
}

/* Decode and print (siphon_value_format) into out; returns bytes consumed. */
static size_t dec(const my_col_t *c, const uint8_t *p, size_t n, siphon_value_t *v, char *out,
                  size_t size)
{
    size_t used = 0;
    char err[256];
    int rc = siphon_my__decode(&vx, c, p, n, &used, v, err, sizeof(err));
    if (rc)
        fail_msg("decode failed: %s", err);
    siphon_value_format(v, out, size);
    return used;
}

static void test_integers(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[64];
    my_col_t c = col(MYT_TINY, 0, 0);
    uint8_t b1[] = {0x80};
    dec(&c, b1, 1, &v, s, sizeof(s));
    assert_string_equal(s, "-128");
    c.is_unsigned = 1;
    dec(&c, b1, 1, &v, s, sizeof(s));
    assert_string_equal(s, "128");

    my_col_t sh = col(MYT_SHORT, 0, 0);
    uint8_t b2[] = {0x00, 0x80};
    assert_int_equal(dec(&sh, b2, 2, &v, s, sizeof(s)), 2);
    assert_string_equal(s, "-32768");

    my_col_t m = col(MYT_INT24, 0, 0);
    uint8_t b3[] = {0xff, 0xff, 0xff};
    assert_int_equal(dec(&m, b3, 3, &v, s, sizeof(s)), 3);
    assert_string_equal(s, "-1");
    m.is_unsigned = 1;
    dec(&m, b3, 3, &v, s, sizeof(s));
    assert_string_equal(s, "16777215");

    my_col_t l = col(MYT_LONG, 0, 0);
    uint8_t b4[] = {0x00, 0x00, 0x00, 0x80};
    dec(&l, b4, 4, &v, s, sizeof(s));
    assert_string_equal(s, "-2147483648");

    my_col_t ll = col(MYT_LONGLONG, 0, 0);
    uint8_t b8[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    dec(&ll, b8, 8, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_INT);
    assert_string_equal(s, "-1");
    ll.is_unsigned = 1;
    dec(&ll, b8, 8, &v, s, sizeof(s));
    /* past INT64_MAX: never wrapped, an exact decimal */
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_string_equal(s, "18446744073709551615");
    uint8_t b8b[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    dec(&ll, b8b, 8, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_INT);
    assert_string_equal(s, "9223372036854775807");

    my_col_t y = col(MYT_YEAR, 0, 0);
    uint8_t yb[] = {255}, y0[] = {0};
    dec(&y, yb, 1, &v, s, sizeof(s));
    assert_string_equal(s, "2155");
    dec(&y, y0, 1, &v, s, sizeof(s));
    assert_string_equal(s, "0");

    /* a cut image is an error, not a read past the end */
    size_t used;
    char err[256];
    assert_int_equal(siphon_my__decode(&vx, &l, b4, 3, &used, &v, err, sizeof(err)),
                     SIPHON_EPROTO);
    assert_non_null(strstr(err, "ends 3 bytes into"));
}

static void test_decimal(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[128];
    /* MySQL's documented example: DECIMAL(14,4) 1234567890.1234 */
    my_col_t c = col(MYT_NEWDECIMAL, 14, 4);
    uint8_t pos[] = {0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2};
    assert_int_equal(siphon_my__decimal_size(14, 4), 7);
    assert_int_equal(dec(&c, pos, 7, &v, s, sizeof(s)), 7);
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_int_equal(v.u.dec.scale, 4);
    assert_string_equal(s, "1234567890.1234");
    uint8_t neg[] = {0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D};
    dec(&c, neg, 7, &v, s, sizeof(s));
    assert_string_equal(s, "-1234567890.1234");
    /* DECIMAL(10,2) -12.34 as MariaDB 10.11 logged it */
    my_col_t d = col(MYT_NEWDECIMAL, 10, 2);
    uint8_t m[] = {0x7f, 0xff, 0xff, 0xf3, 0xdd};
    dec(&d, m, 5, &v, s, sizeof(s));
    assert_string_equal(s, "-12.34");
    assert_int_equal((int)v.u.dec.len, 5); /* "-1234" */
    /* zero, and a negative zero never printed with a sign */
    uint8_t z[] = {0x80, 0x00, 0x00, 0x00, 0x00};
    dec(&d, z, 5, &v, s, sizeof(s));
    assert_string_equal(s, "0.00");
    uint8_t nz[] = {0x7f, 0xff, 0xff, 0xff, 0xff};
    dec(&d, nz, 5, &v, s, sizeof(s));
    assert_string_equal(s, "0.00");
    /* DECIMAL(65,30): 35 integer digits, 30 decimals, all nines */
    my_col_t w = col(MYT_NEWDECIMAL, 65, 30);
    size_t n = siphon_my__decimal_size(65, 30);
    assert_int_equal(n, 30);
    uint8_t big[30];
    /* 8 digits (4 bytes) + 3 x 9 digits + 3 x 9 decimals + 3 decimals (2 bytes) */
    uint8_t *p = big;
    uint32_t g8 = 99999999, g9 = 999999999, g3 = 999;
    *p++ = (uint8_t)(g8 >> 24) | 0x80; *p++ = (uint8_t)(g8 >> 16); *p++ = (uint8_t)(g8 >> 8); *p++ = (uint8_t)g8;
    for (int i = 0; i < 6; i++) {
        *p++ = (uint8_t)(g9 >> 24); *p++ = (uint8_t)(g9 >> 16); *p++ = (uint8_t)(g9 >> 8); *p++ = (uint8_t)g9;
    }
    *p++ = (uint8_t)(g3 >> 8); *p++ = (uint8_t)g3;
    assert_int_equal((size_t)(p - big), 30);
    dec(&w, big, 30, &v, s, sizeof(s));
    assert_string_equal(s, "99999999999999999999999999999999999.999999999999999999999999999999");
    /* DECIMAL(5,5): no integer part */
    my_col_t f = col(MYT_NEWDECIMAL, 5, 5);
    uint8_t fr[] = {0x80, 0x00, 0x01}; /* 0.00001 */
    dec(&f, fr, 3, &v, s, sizeof(s));
    assert_string_equal(s, "0.00001");
    /* a group wider than its digits is corrupt */
    my_col_t t = col(MYT_NEWDECIMAL, 2, 0);
    uint8_t bad[] = {0x80 | 0x7f}; /* 127 in a 2-digit group */
    size_t used;
    char err[256];
    assert_int_equal(siphon_my__decode(&vx, &t, bad, 1, &used, &v, err, sizeof(err)),
                     SIPHON_EPROTO);
}

static void test_float_double(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[64];
    my_col_t f = col(MYT_FLOAT, 4, 0);
    float x = 3.14159f;
    uint8_t b[4];
    memcpy(b, &x, 4); /* the test runs little-endian, as the binlog is */
    dec(&f, b, 4, &v, s, sizeof(s));
    assert_true(v.u.f == (double)x);
    my_col_t d = col(MYT_DOUBLE, 8, 0);
    double y = -1.7976931348623157e308;
    uint8_t bd[8];
    memcpy(bd, &y, 8);
    assert_int_equal(dec(&d, bd, 8, &v, s, sizeof(s)), 8);
    assert_true(v.u.f == y);
}

/* DATETIME2 bytes from the documented layout: sign, 17 bits year*13+month, 5 day, 5 hour,
 * 6 minute, 6 second, then the fraction. */
static size_t enc_datetime2(uint8_t *out, int y, int mo, int d, int h, int mi, int sec,
                            int us, int fsp)
{
    uint64_t ym = (uint64_t)y * 13 + (uint64_t)mo;
    uint64_t ymd = ym << 5 | (uint64_t)d;
    uint64_t hms = (uint64_t)h << 12 | (uint64_t)mi << 6 | (uint64_t)sec;
    uint64_t x = (ymd << 17 | hms) + 0x8000000000ULL;
    for (int i = 0; i < 5; i++)
        out[i] = (uint8_t)(x >> (8 * (4 - i)));
    size_t n = 5;
    int fb = (fsp + 1) / 2;
    uint32_t f = fb == 1 ? (uint32_t)us / 10000 : fb == 2 ? (uint32_t)us / 100 : (uint32_t)us;
    for (int i = 0; i < fb; i++)
        out[n++] = (uint8_t)(f >> (8 * (fb - 1 - i)));
    return n;
}

static void test_temporal(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[64];
    /* DATE: 3 bytes LE, day | month << 5 | year << 9 */
    my_col_t dt = col(MYT_DATE, 0, 0);
    uint32_t x = 29 | 2 << 5 | 2024 << 9;
    uint8_t db[3] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16)};
    dec(&dt, db, 3, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_DATE);
    assert_string_equal(s, "2024-02-29");
    uint8_t zero[3] = {0, 0, 0};
    assert_int_equal(dec(&dt, zero, 3, &v, s, sizeof(s)), 3);
    assert_int_equal(v.type, SIPHON_V_TEXT); /* zero dates: text as the server prints them */
    assert_string_equal(s, "0000-00-00");
    x = 0 | 0 << 5 | 2024 << 9;
    uint8_t zd[3] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16)};
    dec(&dt, zd, 3, &v, s, sizeof(s));
    assert_string_equal(s, "2024-00-00");

    /* TIME2 as MariaDB 10.11 logged '-838:59:59', '-838:59:59.999' (fsp 3),
     * '-00:00:01.500000' (fsp 6) */
    my_col_t t0 = col(MYT_TIME2, 0, 0), t3 = col(MYT_TIME2, 3, 0), t6 = col(MYT_TIME2, 6, 0);
    uint8_t a[] = {0x4b, 0x91, 0x05}, b[] = {0x4b, 0x91, 0x04, 0xd8, 0xfa},
            c[] = {0x7f, 0xff, 0xfe, 0xf8, 0x5e, 0xe0};
    assert_int_equal(dec(&t0, a, 3, &v, s, sizeof(s)), 3);
    assert_int_equal(v.type, SIPHON_V_TIME);
    assert_true(v.u.time_us == -((838LL * 3600 + 59 * 60 + 59) * 1000000));
    assert_int_equal(dec(&t3, b, 5, &v, s, sizeof(s)), 5);
    assert_true(v.u.time_us == -((838LL * 3600 + 59 * 60 + 59) * 1000000 + 999000));
    assert_int_equal(dec(&t6, c, 6, &v, s, sizeof(s)), 6);
    assert_true(v.u.time_us == -1500000);
    /* positive with a 1-byte fraction: 12:34:56.78 */
    my_col_t t2 = col(MYT_TIME2, 2, 0);
    uint32_t hms = 12 << 12 | 34 << 6 | 56;
    uint32_t ip = hms + 0x800000;
    uint8_t d2[] = {(uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip, 78};
    dec(&t2, d2, 4, &v, s, sizeof(s));
    assert_true(v.u.time_us == (12LL * 3600 + 34 * 60 + 56) * 1000000 + 780000);

    /* DATETIME2 of every precision */
    for (int fsp = 0; fsp <= 6; fsp++) {
        my_col_t c2 = col(MYT_DATETIME2, (uint8_t)fsp, 0);
        uint8_t buf[8];
        int us = fsp == 0 ? 0 : fsp <= 2 ? 120000 : fsp <= 4 ? 123400 : 123456;
        size_t n = enc_datetime2(buf, 9999, 12, 31, 23, 59, 59, us, fsp);
        assert_int_equal(dec(&c2, buf, n, &v, s, sizeof(s)), n);
        assert_int_equal(v.type, SIPHON_V_TIMESTAMP);
        assert_int_equal(v.u.ts.tz, 0);
        char want[64];
        snprintf(want, sizeof(want), "9999-12-31T23:59:59.%06d", us);
        assert_string_equal(s, want);
    }
    my_col_t c6 = col(MYT_DATETIME2, 6, 0);
    uint8_t zb[8];
    size_t zn = enc_datetime2(zb, 0, 0, 0, 0, 0, 0, 0, 6);
    dec(&c6, zb, zn, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_string_equal(s, "0000-00-00 00:00:00.000000");

    /* TIMESTAMP2: big-endian seconds, fraction; 0 is the zero timestamp */
    my_col_t ts = col(MYT_TIMESTAMP2, 2, 0);
    uint8_t tb[] = {0x7f, 0xff, 0xff, 0xff, 99};
    dec(&ts, tb, 5, &v, s, sizeof(s));
    assert_int_equal(v.u.ts.tz, 1);
    assert_string_equal(s, "2038-01-19T03:14:07.990000Z");
    uint8_t t0b[] = {0, 0, 0, 0, 0};
    dec(&ts, t0b, 5, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_string_equal(s, "0000-00-00 00:00:00.00");

    /* the pre-5.6 formats (tables created on old servers) */
    my_col_t ot = col(MYT_TIME, 0, 0);
    int32_t hhmmss = -(838 * 10000 + 59 * 100 + 59);
    uint32_t u = (uint32_t)hhmmss & 0xFFFFFF;
    uint8_t otb[] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16)};
    dec(&ot, otb, 3, &v, s, sizeof(s));
    assert_true(v.u.time_us == -((838LL * 3600 + 59 * 60 + 59) * 1000000));
    my_col_t odt = col(MYT_DATETIME, 0, 0);
    uint64_t odv = 20240229123456ULL;
    uint8_t odb[8];
    for (int i = 0; i < 8; i++)
        odb[i] = (uint8_t)(odv >> (8 * i));
    dec(&odt, odb, 8, &v, s, sizeof(s));
    assert_string_equal(s, "2024-02-29T12:34:56.000000");
    my_col_t ots = col(MYT_TIMESTAMP, 0, 0);
    uint8_t otsb[] = {0x01, 0x00, 0x00, 0x00};
    dec(&ots, otsb, 4, &v, s, sizeof(s));
    assert_string_equal(s, "1970-01-01T00:00:01.000000Z");
}

static void test_strings_and_charsets(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[256];
    /* VARCHAR(10) bytes: 1-byte length; VARCHAR(300): 2-byte length */
    my_col_t vc = col(MYT_VARCHAR, 10, 0);
    uint8_t a[] = {3, 'a', 'b', 'c', 0xEE};
    assert_int_equal(dec(&vc, a, sizeof(a), &v, s, sizeof(s)), 4);
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_string_equal(s, "abc");
    my_col_t vw = col(MYT_VARCHAR, 0x2c, 0x01);
    assert_int_equal(vw.len, 300);
    uint8_t w[] = {2, 0, 'h', 'i'};
    assert_int_equal(dec(&vw, w, 4, &v, s, sizeof(s)), 4);
    assert_string_equal(s, "hi");

    /* latin1 is Windows-1252: 0x80 is the euro sign, 0x81 stays a C1 control */
    my_col_t l1 = col(MYT_VARCHAR, 10, 0);
    l1.cs = siphon_my__cs_kind("latin1", &l1.iconv_name);
    uint8_t lb[] = {4, 0x80, 0x81, 0xE9, 0xFF};
    dec(&l1, lb, 5, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_int_equal(v.u.s.len, 3 + 2 + 2 + 2);
    assert_memory_equal(v.u.s.ptr, "\xE2\x82\xAC\xC2\x81\xC3\xA9\xC3\xBF", 9);

    /* cp1250 through iconv: 0x8A is S with caron */
    my_col_t cz = col(MYT_VARCHAR, 10, 0);
    cz.cs = siphon_my__cs_kind("cp1250", &cz.iconv_name);
    assert_int_equal(cz.cs, MY_CS_ICONV);
    uint8_t cb[] = {2, 0x8A, 'a'};
    dec(&cz, cb, 3, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_memory_equal(v.u.s.ptr, "\xC5\xA0" "a", 3);
    /* ucs2 is two bytes a character, big-endian */
    my_col_t u2 = col(MYT_VARCHAR, 20, 0);
    u2.cs = siphon_my__cs_kind("ucs2", &u2.iconv_name);
    uint8_t ub[] = {4, 0x00, 'A', 0x6F, 0x22};
    dec(&u2, ub, 5, &v, s, sizeof(s));
    assert_memory_equal(v.u.s.ptr, "A\xE6\xBC\xA2", 4);
    /* a charset iconv cannot read: raw bytes for the mapping */
    my_col_t unk = col(MYT_VARCHAR, 10, 0);
    unk.cs = siphon_my__cs_kind("hp8", &unk.iconv_name);
    uint8_t hb[] = {1, 0xE9};
    dec(&unk, hb, 2, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_RAWTEXT);

    /* CHAR(n) of more than 255 bytes: the length bits borrowed from the real-type byte */
    my_col_t ch = col(MYT_STRING, 0xee, 0x90); /* real type 0xfe with bits 4-5 flipped: 400 */
    assert_int_equal(ch.type, MYT_STRING);
    assert_int_equal(ch.len, 400);
    uint8_t chb[] = {1, 0, 'x'};
    assert_int_equal(dec(&ch, chb, 3, &v, s, sizeof(s)), 3);
    assert_string_equal(s, "x");

    /* BINARY(4): trailing zero bytes the binlog dropped come back */
    my_col_t bn = col(MYT_STRING, 0xfe, 4);
    bn.cs = MY_CS_BINARY;
    siphon_my__col_finish(&bn);
    assert_int_equal(bn.vtype, SIPHON_V_BYTES);
    uint8_t bb[] = {1, 'a'};
    dec(&bn, bb, 2, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_BYTES);
    assert_int_equal(v.u.s.len, 4);
    assert_memory_equal(v.u.s.ptr, "a\0\0\0", 4);

    /* BLOB with 3 length bytes; TEXT in utf8mb4 */
    my_col_t bl = col(MYT_BLOB, 3, 0);
    bl.cs = MY_CS_BINARY;
    uint8_t blb[] = {2, 0, 0, 0x00, 0xFF};
    assert_int_equal(dec(&bl, blb, 5, &v, s, sizeof(s)), 5);
    assert_int_equal(v.type, SIPHON_V_BYTES);
    assert_string_equal(s, "\\x00ff");
    /* MariaDB's JSON: a LONGTEXT the catalog marks */
    my_col_t js = col(MYT_BLOB, 4, 0);
    js.json = 1;
    siphon_my__col_finish(&js);
    assert_int_equal(js.vtype, SIPHON_V_JSON);
    uint8_t jb[] = {2, 0, 0, 0, '[', ']'};
    dec(&js, jb, 6, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_JSON);
    assert_string_equal(s, "[]");
}

static void test_enum_set_bit(void **state)
{
    (void)state;
    siphon_value_t v;
    char s[64], err[256];
    size_t used;
    my_col_t en = col(MYT_STRING, MYT_ENUM, 1);
    assert_int_equal(en.type, MYT_ENUM);
    const char *syms[] = {"small", "medium", "\xE9"};
    size_t lens[] = {5, 6, 1};
    en.cs = MY_CS_LATIN1; /* values are converted from the column's charset once */
    assert_int_equal(siphon_my__col_set_syms(&en, 3, syms, lens), 0);
    uint8_t e2[] = {2}, e3[] = {3}, e0[] = {0}, e9[] = {9};
    dec(&en, e2, 1, &v, s, sizeof(s));
    assert_string_equal(s, "medium");
    dec(&en, e3, 1, &v, s, sizeof(s));
    assert_string_equal(s, "\xC3\xA9");
    dec(&en, e0, 1, &v, s, sizeof(s));
    assert_string_equal(s, ""); /* the empty string of an invalid value */
    assert_int_equal(siphon_my__decode(&vx, &en, e9, 1, &used, &v, err, sizeof(err)),
                     SIPHON_EPROTO);
    siphon_my__col_free(&en);

    my_col_t st = col(MYT_STRING, MYT_SET, 2);
    assert_int_equal(st.type, MYT_SET);
    const char *ss[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    size_t sl[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(siphon_my__col_set_syms(&st, 9, ss, sl), 0);
    uint8_t sb[] = {0x05, 0x01}; /* a, c, i */
    assert_int_equal(dec(&st, sb, 2, &v, s, sizeof(s)), 2);
    assert_string_equal(s, "a,c,i");
    uint8_t se[] = {0x00, 0x00};
    dec(&st, se, 2, &v, s, sizeof(s));
    assert_string_equal(s, "");
    uint8_t sx[] = {0x00, 0x04}; /* bit 10 of a 9-value set */
    assert_int_equal(siphon_my__decode(&vx, &st, sx, 2, &used, &v, err, sizeof(err)),
                     SIPHON_EPROTO);
    siphon_my__col_free(&st);

    my_col_t b1 = col(MYT_BIT, 1, 0); /* BIT(1): 1 bit, 0 whole bytes */
    assert_int_equal(b1.bits, 1);
    assert_int_equal(b1.vtype, SIPHON_V_BOOL);
    uint8_t one[] = {1};
    dec(&b1, one, 1, &v, s, sizeof(s));
    assert_string_equal(s, "true");
    my_col_t b10 = col(MYT_BIT, 2, 1); /* BIT(10) */
    assert_int_equal(b10.len, 2);
    uint8_t bb[] = {0x02, 0x01}; /* big-endian 513 */
    dec(&b10, bb, 2, &v, s, sizeof(s));
    assert_string_equal(s, "513");
    my_col_t b64 = col(MYT_BIT, 0, 8);
    uint8_t all[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    dec(&b64, all, 8, &v, s, sizeof(s));
    assert_int_equal(v.type, SIPHON_V_DECIMAL);
    assert_string_equal(s, "18446744073709551615");
}

static void test_plans(void **state)
{
    (void)state;
    my_col_t c;
    char err[256], tn[64];
    uint8_t m[2] = {0, 0};
    assert_int_equal(siphon_my__meta_len(MYT_LONG), 0);
    assert_int_equal(siphon_my__meta_len(MYT_DATETIME2), 1);
    assert_int_equal(siphon_my__meta_len(MYT_VARCHAR), 2);
    assert_int_equal(siphon_my__meta_len(MYT_NEWDECIMAL), 2);
    assert_int_equal(siphon_my__col_from_meta(&c, MYT_DECIMAL, m, err, sizeof(err)),
                     SIPHON_EPROTO);
    assert_non_null(strstr(err, "ALTER TABLE"));
    assert_int_equal(siphon_my__col_from_meta(&c, 99, m, err, sizeof(err)), SIPHON_EPROTO);
    uint8_t bad[2] = {7, 0};
    assert_int_equal(siphon_my__col_from_meta(&c, MYT_TIME2, bad, err, sizeof(err)),
                     SIPHON_EPROTO);
    c = col(MYT_NEWDECIMAL, 12, 2);
    c.is_unsigned = 1;
    assert_string_equal(siphon_my__col_type_name(&c, tn, sizeof(tn)), "decimal(12,2) unsigned");
    c = col(MYT_DATETIME2, 3, 0);
    assert_string_equal(siphon_my__col_type_name(&c, tn, sizeof(tn)), "datetime(3)");
    assert_int_equal(siphon_my__cs_kind("utf8mb4", NULL), MY_CS_UTF8);
    assert_int_equal(siphon_my__cs_kind("binary", NULL), MY_CS_BINARY);
    assert_int_equal(siphon_my__days_from_civil(1970, 1, 1), 0);
    assert_int_equal(siphon_my__days_from_civil(2000, 3, 1), 11017);
}

static int setup(void **state)
{
    (void)state;
    siphon_arena_init(&arena, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    siphon_arena_destroy(&arena);
    for (my_iconv_t *e = iconvs, *n; e; e = n) {
        n = e->next;
        iconv_close(e->cd);
        free(e);
    }
    iconvs = NULL;
    return 0;
}

int my_value_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),     cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_float_double), cmocka_unit_test(test_temporal),
        cmocka_unit_test(test_strings_and_charsets), cmocka_unit_test(test_enum_set_bit),
        cmocka_unit_test(test_plans),
    };
    return cmocka_run_group_tests_name("mysql/value", tests, setup, teardown);
}
