/*
 * test_decimal.c - decimal digits <-> two's-complement big-endian bytes (the Avro decimal
 * logical type): sign boundaries, values past 64 bits, rescaling, precision and fixed sizes,
 * and random values checked against an independent __int128 computation.
 */
#include "avro_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/avro_int.h"
#include "core/buf.h"

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

typedef struct dcase {
    const char *digits;
    int scale, precision, to_scale, fixed;
    int rc;
    const char *hex; /* expected bytes when rc is OK */
} dcase_t;

static void test_decimal_cases(void **state)
{
    (void)state;
    static const dcase_t cases[] = {
        {"0", 0, 10, 0, 0, SIPHON_DEC_OK, "00"},
        {"-0", 0, 10, 0, 0, SIPHON_DEC_OK, "00"},
        {"000", 3, 10, 2, 0, SIPHON_DEC_OK, "00"},
        {"1", 0, 10, 0, 0, SIPHON_DEC_OK, "01"},
        {"-1", 0, 10, 0, 0, SIPHON_DEC_OK, "ff"},
        {"127", 0, 10, 0, 0, SIPHON_DEC_OK, "7f"},
        {"128", 0, 10, 0, 0, SIPHON_DEC_OK, "0080"},
        {"-128", 0, 10, 0, 0, SIPHON_DEC_OK, "80"},
        {"-129", 0, 10, 0, 0, SIPHON_DEC_OK, "ff7f"},
        {"255", 0, 10, 0, 0, SIPHON_DEC_OK, "00ff"},
        {"256", 0, 10, 0, 0, SIPHON_DEC_OK, "0100"},
        {"32767", 0, 10, 0, 0, SIPHON_DEC_OK, "7fff"},
        {"32768", 0, 10, 0, 0, SIPHON_DEC_OK, "008000"},
        {"-32768", 0, 10, 0, 0, SIPHON_DEC_OK, "8000"},
        {"-32769", 0, 10, 0, 0, SIPHON_DEC_OK, "ff7fff"},
        /* around 64 bits: the int64 fast path ends at 18 digits */
        {"9223372036854775807", 0, 40, 0, 0, SIPHON_DEC_OK, "7fffffffffffffff"},
        {"9223372036854775808", 0, 40, 0, 0, SIPHON_DEC_OK, "008000000000000000"},
        {"-9223372036854775808", 0, 40, 0, 0, SIPHON_DEC_OK, "8000000000000000"},
        {"-9223372036854775809", 0, 40, 0, 0, SIPHON_DEC_OK, "ff7fffffffffffffff"},
        {"18446744073709551615", 0, 40, 0, 0, SIPHON_DEC_OK, "00ffffffffffffffff"},
        /* 38 digits and beyond: 10^38, 2^127-1, -2^127, 2^127 */
        {"100000000000000000000000000000000000000", 0, 39, 0, 0, SIPHON_DEC_OK,
         "4b3b4ca85a86c47a098a224000000000"},
        {"170141183460469231731687303715884105727", 0, 39, 0, 0, SIPHON_DEC_OK,
         "7fffffffffffffffffffffffffffffff"},
        {"-170141183460469231731687303715884105728", 0, 39, 0, 0, SIPHON_DEC_OK,
         "80000000000000000000000000000000"},
        {"170141183460469231731687303715884105728", 0, 39, 0, 0, SIPHON_DEC_OK,
         "0080000000000000000000000000000000"},
        /* rescale: 123.45 at scale 4 is 1234500 = 0x12d644 */
        {"12345", 2, 10, 4, 0, SIPHON_DEC_OK, "12d644"},
        {"1234500", 4, 10, 2, 0, SIPHON_DEC_OK, "3039"},
        {"1234501", 4, 10, 2, 0, SIPHON_DEC_SCALE, NULL},
        {"-5", 0, 10, 2, 0, SIPHON_DEC_OK, "fe0c"},              /* -500 */
        {"100", 3, 1, 1, 0, SIPHON_DEC_OK, "01"},                /* 0.100 -> 0.1 */
        {"12", -1, 3, 0, 0, SIPHON_DEC_OK, "78"},                /* 12e1 = 120 */
        /* rescaling up to 10^20: past the fast path through appended zeros */
        {"7", 0, 25, 20, 0, SIPHON_DEC_OK, "25f273933db5700000"},
        /* precision counts significant digits after rescaling; leading zeros do not count */
        {"99999", 0, 5, 0, 0, SIPHON_DEC_OK, "01869f"},
        {"100000", 0, 5, 0, 0, SIPHON_DEC_PRECISION, NULL},
        {"0000099999", 0, 5, 0, 0, SIPHON_DEC_OK, "01869f"},
        {"999", 0, 4, 2, 0, SIPHON_DEC_PRECISION, NULL},          /* 999.00 needs 5 */
        {"123456789012345678901234567890123456789", 0, 38, 0, 0, SIPHON_DEC_PRECISION, NULL},
        /* fixed sizes: sign-extended, or too small */
        {"1", 0, 9, 0, 4, SIPHON_DEC_OK, "00000001"},
        {"-1", 0, 9, 0, 4, SIPHON_DEC_OK, "ffffffff"},
        {"-2147483648", 0, 10, 0, 4, SIPHON_DEC_OK, "80000000"},
        {"2147483648", 0, 10, 0, 4, SIPHON_DEC_FIXED_SIZE, NULL},
        {"-1", 0, 30, 0, 16, SIPHON_DEC_OK, "ffffffffffffffffffffffffffffffff"},
        {"1000000000000000000000", 0, 30, 0, 16, SIPHON_DEC_OK,
         "000000000000003635c9adc5dea00000"},
        /* malformed digit strings */
        {"", 0, 10, 0, 0, SIPHON_DEC_MALFORMED, NULL},
        {"-", 0, 10, 0, 0, SIPHON_DEC_MALFORMED, NULL},
        {"+5", 0, 10, 0, 0, SIPHON_DEC_MALFORMED, NULL},
        {"1.5", 0, 10, 0, 0, SIPHON_DEC_MALFORMED, NULL},
        {"12a", 0, 10, 0, 0, SIPHON_DEC_MALFORMED, NULL},
    };
    siphon_buf_t scratch = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const dcase_t *c = &cases[i];
        const uint8_t *out = NULL;
        size_t n = 0;
        int nd = 0;
        int rc = siphon_avro__decimal_to_bytes(&scratch, c->digits, strlen(c->digits), c->scale,
                                               c->precision, c->to_scale, c->fixed, &out, &n,
                                               &nd);
        if (rc != c->rc)
            fail_msg("%s scale %d -> %d: rc %d, expected %d", c->digits, c->scale, c->to_scale,
                     rc, c->rc);
        if (rc == SIPHON_DEC_OK) {
            char hex[256];
            hex_of(out, n, hex);
            if (strcmp(hex, c->hex) != 0)
                fail_msg("%s scale %d -> %d: got %s, expected %s", c->digits, c->scale,
                         c->to_scale, hex, c->hex);
        }
    }
    siphon_buf_free(&scratch);
}

/* Independent oracle: minimal big-endian two's complement of an __int128. */
static size_t i128_bytes(__int128 v, uint8_t out[17])
{
    uint8_t tmp[17];
    int neg = v < 0;
    for (int i = 0; i < 16; i++)
        tmp[16 - i] = (uint8_t)((unsigned __int128)v >> (8 * i));
    tmp[0] = neg ? 0xFF : 0x00;
    size_t s = 0;
    while (s < 16 && ((tmp[s] == 0 && !(tmp[s + 1] & 0x80)) ||
                      (tmp[s] == 0xFF && (tmp[s + 1] & 0x80))))
        s++;
    memcpy(out, tmp + s, 17 - s);
    return 17 - s;
}

static void test_decimal_random_against_int128(void **state)
{
    (void)state;
    siphon_buf_t scratch = {0}, text = {0};
    srand(12345);
    for (int iter = 0; iter < 20000; iter++) {
        char digits[48];
        int nd = 1 + rand() % 38;
        int neg = rand() % 2;
        size_t o = 0;
        if (neg)
            digits[o++] = '-';
        for (int k = 0; k < nd; k++)
            digits[o++] = (char)('0' + (k == 0 && nd > 1 ? 1 + rand() % 9 : rand() % 10));
        digits[o] = '\0';
        __int128 v = 0;
        for (size_t k = neg; k < o; k++)
            v = v * 10 + (digits[k] - '0');
        if (neg)
            v = -v;
        uint8_t want[17];
        size_t wn = i128_bytes(v, want);

        const uint8_t *got;
        size_t gn;
        int sig;
        int scale = rand() % 6;
        int rc = siphon_avro__decimal_to_bytes(&scratch, digits, o, scale, 38, scale, 0, &got,
                                               &gn, &sig);
        assert_int_equal(rc, SIPHON_DEC_OK);
        if (gn != wn || memcmp(got, want, wn) != 0)
            fail_msg("%s: bytes differ from the int128 oracle", digits);

        /* and back to text: the digits with the point placed `scale` from the right */
        char expect[64];
        const char *mag = digits + neg;
        size_t ml = strlen(mag);
        size_t e = 0;
        int is_zero = strspn(mag, "0") == ml;
        if (neg && !is_zero)
            expect[e++] = '-';
        if ((size_t)scale >= ml) {
            expect[e++] = '0';
            if (scale) {
                expect[e++] = '.';
                for (size_t z = ml; z < (size_t)scale; z++)
                    expect[e++] = '0';
                memcpy(expect + e, mag, ml);
                e += ml;
            }
        } else {
            memcpy(expect + e, mag, ml - (size_t)scale);
            e += ml - (size_t)scale;
            if (scale) {
                expect[e++] = '.';
                memcpy(expect + e, mag + ml - scale, (size_t)scale);
                e += (size_t)scale;
            }
        }
        expect[e] = '\0';
        uint8_t copy[17];
        memcpy(copy, got, gn);
        siphon_buf_reset(&text);
        assert_int_equal(siphon_avro__decimal_from_bytes(&text, copy, gn, scale), 0);
        assert_int_equal(siphon_buf_appendc(&text, '\0'), 0);
        if (strcmp((char *)text.data, expect) != 0)
            fail_msg("%s scale %d: rendered %s, expected %s", digits, scale, (char *)text.data,
                     expect);
    }
    siphon_buf_free(&scratch);
    siphon_buf_free(&text);
}

static void test_decimal_huge_round_trip(void **state)
{
    (void)state;
    /* beyond 128 bits: 80 digits through bytes and back */
    siphon_buf_t scratch = {0}, text = {0};
    const char *d = "-12345678901234567890123456789012345678901234567890123456789012345678901234567890";
    const uint8_t *b;
    size_t n;
    int nd;
    assert_int_equal(siphon_avro__decimal_to_bytes(&scratch, d, strlen(d), 10, 100, 10, 0, &b, &n,
                                                   &nd), SIPHON_DEC_OK);
    assert_int_equal(nd, 80);
    assert_true(n >= 33 && n <= 34);      /* 80 digits need 266 bits + sign */
    assert_true((b[0] & 0x80) != 0);     /* negative */
    assert_int_equal(siphon_avro__decimal_from_bytes(&text, b, n, 10), 0);
    siphon_buf_appendc(&text, '\0');
    assert_string_equal((char *)text.data,
                        "-1234567890123456789012345678901234567890123456789012345678901234567890."
                        "1234567890");
    /* rendering details: scale larger than the digits, zero with a scale */
    const uint8_t five[] = {0xfb}; /* -5 */
    siphon_buf_reset(&text);
    siphon_avro__decimal_from_bytes(&text, five, 1, 2);
    siphon_buf_appendc(&text, '\0');
    assert_string_equal((char *)text.data, "-0.05");
    const uint8_t zero[] = {0x00};
    siphon_buf_reset(&text);
    siphon_avro__decimal_from_bytes(&text, zero, 1, 2);
    siphon_buf_appendc(&text, '\0');
    assert_string_equal((char *)text.data, "0.00");
    siphon_buf_free(&scratch);
    siphon_buf_free(&text);
}

int avro_test_decimal(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_cases),
        cmocka_unit_test(test_decimal_random_against_int128),
        cmocka_unit_test(test_decimal_huge_round_trip),
    };
    return cmocka_run_group_tests_name("avro_decimal", tests, NULL, NULL);
}
