/*
 * test_parts.c - the mapping module's parts that data files cannot show well: SHA-256 and
 * HMAC-SHA256 against the published test vectors, time zones against the C library's own
 * reading of the same zone files (an independent oracle, swept over decades), the gap and
 * overlap rules, charsets (single-byte tables and a multi-byte charset), filters' SQL-like
 * comparisons, the dead-letter record (encode, decode, its shipped schema file), and no
 * allocation per row through a chain of transforms.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"
#include "test_mapping.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

void tm_test_sha256(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *digest;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char out[65];
    uint8_t d[32];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        map_sha256_t s;
        siphon_mapping__sha256_init(&s);
        /* fed in pieces of 1, 2, 3... bytes: the buffering must not matter */
        size_t n = strlen(v[i].msg), o = 0, step = 1;
        while (o < n) {
            size_t take = step < n - o ? step : n - o;
            siphon_mapping__sha256_update(&s, v[i].msg + o, take);
            o += take;
            step++;
        }
        siphon_mapping__sha256_final(&s, d);
        hex(d, 32, out);
        assert_string_equal(out, v[i].digest);
    }
    /* a million 'a' (FIPS 180-2 appendix B.3) */
    map_sha256_t s;
    char block[1000];
    memset(block, 'a', sizeof(block));
    siphon_mapping__sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        siphon_mapping__sha256_update(&s, block, sizeof(block));
    siphon_mapping__sha256_final(&s, d);
    hex(d, 32, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

void tm_test_hmac(void **state)
{
    (void)state;
    uint8_t k1[20], k6[131], d[32];
    char out[65];
    map_hmac_key_t key;
    memset(k1, 0x0b, sizeof(k1));
    memset(k6, 0xaa, sizeof(k6));
    /* RFC 4231 test cases 1, 2 and 6 (a key longer than the block is hashed first) */
    siphon_mapping__hmac_key(&key, k1, sizeof(k1));
    siphon_mapping__hmac(&key, "Hi There", 8, d);
    hex(d, 32, out);
    assert_string_equal(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    siphon_mapping__hmac_key(&key, "Jefe", 4);
    siphon_mapping__hmac(&key, "what do ya want for nothing?", 28, d);
    hex(d, 32, out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    siphon_mapping__hmac_key(&key, k6, sizeof(k6));
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    siphon_mapping__hmac(&key, m6, strlen(m6), d);
    hex(d, 32, out);
    assert_string_equal(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* the prepared key is reusable: the same message gives the same MAC */
    uint8_t d2[32];
    siphon_mapping__hmac(&key, m6, strlen(m6), d2);
    assert_memory_equal(d, d2, 32);
}

/* The offset libc gives for instant t in zone (TZ set by the caller). */
static long libc_offset(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

void tm_test_timezones(void **state)
{
    (void)state;
    static const char *const zones[] = {"America/Chicago", "Europe/Berlin", "Australia/Sydney",
                                        "Asia/Kolkata", "America/Sao_Paulo", "UTC"};
    char why[256];
    const char *old_tz = getenv("TZ");
    char *saved = old_tz ? strdup(old_tz) : NULL;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        map_tz_t *tz = NULL;
        assert_int_equal(siphon_mapping__tz_load(&tz, zones[z], why, sizeof(why)), 0);
        setenv("TZ", zones[z], 1);
        tzset();
        /* every 7 hours and 13 minutes from 1975 to 2060: the transition table and, past 2037,
         * the footer rule (the C library applies the same rule) */
        long checked = 0;
        for (int64_t t = 157766400; t < 2871763200LL; t += 7 * 3600 + 13 * 60) {
            long want = libc_offset((time_t)t);
            int32_t got = siphon_mapping__tz_offset_at(tz, t);
            if (got != want)
                fail_msg("%s at %lld: offset %d, libc says %ld", zones[z], (long long)t, got, want);
            /* and back: local -> UTC gives t again, except in an overlap (two answers) */
            int64_t local = t + got;
            int64_t back = siphon_mapping__tz_to_utc(tz, local);
            if (back != t) {
                /* only allowed when local happens twice: the other answer is the earlier one */
                assert_true(back < t);
                assert_int_equal(siphon_mapping__tz_offset_at(tz, back) + back, local);
            }
            checked++;
        }
        assert_true(checked > 90000);
        siphon_mapping__tz_free(tz);
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();

    /* the gap and overlap rules, in Chicago */
    map_tz_t *chi = NULL;
    assert_int_equal(siphon_mapping__tz_load(&chi, "America/Chicago", why, sizeof(why)), 0);
    int64_t gap = siphon_mapping__days_from_civil(2024, 3, 10) * 86400 + 2 * 3600 + 30 * 60;
    assert_int_equal(siphon_mapping__tz_to_utc(chi, gap), gap + 6 * 3600); /* 08:30Z */
    int64_t twice = siphon_mapping__days_from_civil(2024, 11, 3) * 86400 + 1 * 3600 + 30 * 60;
    assert_int_equal(siphon_mapping__tz_to_utc(chi, twice), twice + 5 * 3600); /* 06:30Z */
    /* the same after lookups a few days before each transition (the span cache must stop
     * short of them) */
    for (int d = 1; d <= 8; d++) {
        int64_t near = gap - d * 86400;
        assert_int_equal(siphon_mapping__tz_to_utc(chi, near), near + 6 * 3600);
        assert_int_equal(siphon_mapping__tz_to_utc(chi, gap), gap + 6 * 3600);
        near = twice - d * 86400;
        assert_int_equal(siphon_mapping__tz_to_utc(chi, near), near + 5 * 3600);
        assert_int_equal(siphon_mapping__tz_to_utc(chi, twice), twice + 5 * 3600);
        near = twice + d * 86400;
        assert_int_equal(siphon_mapping__tz_to_utc(chi, near), near + 6 * 3600);
        assert_int_equal(siphon_mapping__tz_to_utc(chi, twice), twice + 5 * 3600);
    }
    siphon_mapping__tz_free(chi);

    /* fixed offsets and names that are not zones */
    map_tz_t *fx = NULL;
    assert_int_equal(siphon_mapping__tz_load(&fx, "+05:30", why, sizeof(why)), 0);
    assert_int_equal(siphon_mapping__tz_offset_at(fx, 0), 19800);
    assert_int_equal(siphon_mapping__tz_to_utc(fx, 19800), 0);
    siphon_mapping__tz_free(fx);
    assert_int_equal(siphon_mapping__tz_load(&fx, "-0800", why, sizeof(why)), 0);
    assert_int_equal(siphon_mapping__tz_offset_at(fx, 0), -28800);
    siphon_mapping__tz_free(fx);
    assert_int_equal(siphon_mapping__tz_load(&fx, "../../etc/passwd", why, sizeof(why)),
                     SIPHON_EINVAL);
    assert_null(fx);
    assert_int_equal(siphon_mapping__tz_load(&fx, "Nowhere/City", why, sizeof(why)),
                     SIPHON_ENOTFOUND);
    assert_non_null(strstr(why, "Nowhere/City"));
}

void tm_test_calendar(void **state)
{
    (void)state;
    /* civil <-> days round trip over 1600..2400, against each other */
    int64_t prev = siphon_mapping__days_from_civil(1599, 12, 31);
    for (int64_t y = 1600; y <= 2400; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= 31; d++) {
                if (!siphon_mapping__civil_valid(y, m, d))
                    continue;
                int64_t days = siphon_mapping__days_from_civil(y, (unsigned)m, (unsigned)d);
                assert_int_equal(days, prev + 1);
                prev = days;
                int64_t yy;
                unsigned mm, dd;
                siphon_mapping__civil_from_days(days, &yy, &mm, &dd);
                assert_true(yy == y && (int)mm == m && (int)dd == d);
            }
    assert_int_equal(siphon_mapping__days_from_civil(1970, 1, 1), 0);
    assert_false(siphon_mapping__civil_valid(1900, 2, 29));
    assert_true(siphon_mapping__civil_valid(2000, 2, 29));
    assert_false(siphon_mapping__civil_valid(2024, 4, 31));
    assert_false(siphon_mapping__civil_valid(0, 1, 1));
    assert_false(siphon_mapping__civil_valid(10000, 1, 1));
}

void tm_test_charsets(void **state)
{
    (void)state;
    map_charset_t *cs = NULL;
    char why[256];
    assert_int_equal(siphon_mapping__charset_load(&cs, "windows-1252", why, sizeof(why)), 0);
    assert_true(cs->single_byte);
    assert_int_equal(cs->len[0x81], 0); /* undefined in Windows-1252 */
    assert_int_equal(cs->len[0x80], 3);
    assert_memory_equal(cs->utf8[0x80], "\xe2\x82\xac", 3); /* U+20AC euro sign */
    assert_int_equal(cs->len[0xfc], 2);
    assert_memory_equal(cs->utf8[0xfc], "\xc3\xbc", 2);
    siphon_arena_t row;
    siphon_arena_init(&row, 0);
    char wbuf[256];
    map_eval_t ev = {&row, wbuf, sizeof(wbuf)};
    siphon_value_t v = {.type = SIPHON_V_RAWTEXT};
    v.u.s.ptr = "M\xfcller \x80";
    v.u.s.len = 8;
    assert_int_equal(siphon_mapping__charset_convert(cs, &v, &ev), 0);
    assert_int_equal(v.type, SIPHON_V_TEXT);
    assert_int_equal(v.u.s.len, strlen("Müller €"));
    assert_memory_equal(v.u.s.ptr, "Müller €", v.u.s.len);
    /* all-ASCII values are not copied */
    v.type = SIPHON_V_RAWTEXT;
    v.u.s.ptr = "plain";
    v.u.s.len = 5;
    assert_int_equal(siphon_mapping__charset_convert(cs, &v, &ev), 0);
    assert_ptr_equal(v.u.s.ptr, (const void *)"plain");
    siphon_mapping__charset_free(cs);

    /* Latin-1 has a character for every byte */
    assert_int_equal(siphon_mapping__charset_load(&cs, "ISO-8859-1", why, sizeof(why)), 0);
    for (int b = 0; b < 256; b++)
        assert_true(cs->len[b] > 0);
    siphon_mapping__charset_free(cs);

    /* a multi-byte charset goes through iconv per value */
    assert_int_equal(siphon_mapping__charset_load(&cs, "SHIFT_JIS", why, sizeof(why)), 0);
    assert_false(cs->single_byte);
    v.type = SIPHON_V_BYTES;
    v.u.s.ptr = "A\x82\xa0";
    v.u.s.len = 3;
    assert_int_equal(siphon_mapping__charset_convert(cs, &v, &ev), 0);
    assert_int_equal(v.u.s.len, 4);
    assert_memory_equal(v.u.s.ptr, "A\xe3\x81\x82", 4); /* HIRAGANA LETTER A */
    v.type = SIPHON_V_BYTES;
    v.u.s.ptr = "A\x82";
    v.u.s.len = 2;
    assert_int_equal(siphon_mapping__charset_convert(cs, &v, &ev), SIPHON_ECONVERT);
    assert_non_null(strstr(wbuf, "SHIFT_JIS"));
    siphon_mapping__charset_free(cs);
    assert_int_equal(siphon_mapping__charset_load(&cs, "no-such-charset", why, sizeof(why)),
                     SIPHON_EINVAL);
    siphon_arena_destroy(&row);
}

/* Evaluate `expr` on a one-row table of (name text, amt numeric, n int, d date, flag bool). */
static int filter_on(const char *expr, const char *name, const char *amt, int64_t n,
                     const char *date)
{
    siphon_arena_t mem;
    map_filter_t *f = NULL;
    char errbuf[512];
    siphon_arena_init(&mem, 0);
    int rc = siphon_mapping__filter_parse(&f, expr, "t.yaml", 1, 1, &mem, errbuf, sizeof(errbuf));
    if (rc)
        fail_msg("%s", errbuf);
    static const char *const cols[] = {"name", "amt", "n", "d"};
    static const siphon_vtype_t vts[] = {SIPHON_V_TEXT, SIPHON_V_DECIMAL, SIPHON_V_INT,
                                         SIPHON_V_DATE};
    int idx[8];
    siphon_vtype_t fv[8];
    for (int i = 0; i < siphon_mapping__filter_ncolumns(f); i++) {
        int l, c;
        const char *nm = siphon_mapping__filter_column(f, i, &l, &c);
        idx[i] = -1;
        for (int k = 0; k < 4; k++)
            if (!strcmp(nm, cols[k]))
                idx[i] = k;
        assert_true(idx[i] >= 0);
        fv[i] = vts[idx[i]];
    }
    if ((rc = siphon_mapping__filter_bind(f, fv, "t.yaml", &mem, errbuf, sizeof(errbuf))))
        fail_msg("%s", errbuf);
    siphon_value_t vals[4];
    char digits[64];
    memset(vals, 0, sizeof(vals));
    vals[0].type = name ? SIPHON_V_TEXT : SIPHON_V_NULL;
    vals[0].u.s.ptr = name;
    vals[0].u.s.len = name ? strlen(name) : 0;
    if (amt)
        assert_int_equal(siphon_value_decimal_parse(&vals[1], amt, strlen(amt), digits,
                                                    sizeof(digits)), 0);
    else
        vals[1].type = SIPHON_V_NULL;
    vals[2].type = SIPHON_V_INT;
    vals[2].u.i = n;
    if (date) {
        int y, m, d;
        sscanf(date, "%d-%d-%d", &y, &m, &d);
        vals[3].type = SIPHON_V_DATE;
        vals[3].u.date = (int32_t)siphon_mapping__days_from_civil(y, (unsigned)m, (unsigned)d);
    } else {
        vals[3].type = SIPHON_V_UNCHANGED;
    }
    siphon_row_t row = {4, vals};
    int r = siphon_mapping__filter_eval(f, idx, &row);
    siphon_mapping__filter_free(f);
    siphon_arena_destroy(&mem);
    return r;
}

void tm_test_filters(void **state)
{
    (void)state;
    /* numbers by value, whatever their scale */
    assert_int_equal(filter_on("amt = 1.50", "a", "1.5", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt = 1.5", "a", "1.500", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt > 1.49", "a", "1.5", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt < -1", "a", "-1.01", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt < -1", "a", "-0.99", 0, "2024-01-01"), 0);
    assert_int_equal(filter_on("amt = 0", "a", "-0.00", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt >= 100", "a", "99.999", 0, "2024-01-01"), 0);
    assert_int_equal(filter_on("amt >= 100", "a", "100.000", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt > 12345678901234567890", "a", "12345678901234567891", 0,
                               "2024-01-01"), 1);
    assert_int_equal(filter_on("n > 2.5", "a", "0", 3, "2024-01-01"), 1);
    assert_int_equal(filter_on("n > 2.5", "a", "0", 2, "2024-01-01"), 0);
    assert_int_equal(filter_on("5 < n", "a", "0", 6, "2024-01-01"), 1);
    /* text as CHAR: trailing blanks do not count, order is byte order */
    assert_int_equal(filter_on("name = 'SO'", "SO   ", "0", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("name < 'SP'", "SO", "0", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("name in ('A', 'B', 'it''s')", "it's", "0", 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("name not in ('A', 'B')", "C", "0", 0, "2024-01-01"), 1);
    /* SQL's three-valued logic: a null comparison is unknown, and not unknown is unknown */
    assert_int_equal(filter_on("amt > 0", "a", NULL, 0, "2024-01-01"), 0);
    assert_int_equal(filter_on("not (amt > 0)", "a", NULL, 0, "2024-01-01"), 0);
    assert_int_equal(filter_on("amt > 0 or name = 'a'", "a", NULL, 0, "2024-01-01"), 1);
    assert_int_equal(filter_on("amt is null and name is not null", "a", NULL, 0, "2024-01-01"), 1);
    /* dates */
    assert_int_equal(filter_on("d >= '2024-01-01' AND d < '2024-02-01'", "a", "0", 0,
                               "2024-01-31"), 1);
    /* a column that was not sent: cannot tell (-1), unless the rest decides */
    assert_int_equal(filter_on("d > '2000-01-01'", "a", "0", 0, NULL), -1);
    assert_int_equal(filter_on("d > '2000-01-01' and name = 'x'", "a", "0", 0, NULL), 0);
    assert_int_equal(filter_on("d > '2000-01-01' or name = 'a'", "a", "0", 0, NULL), 1);

    /* errors point into the expression */
    siphon_arena_t mem;
    map_filter_t *f = NULL;
    char errbuf[512];
    siphon_arena_init(&mem, 0);
    assert_int_equal(siphon_mapping__filter_parse(&f, "a = 1 and", "m.yaml", 3, 9, &mem, errbuf,
                                                  sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(errbuf, "m.yaml:3:18:"));
    assert_int_equal(siphon_mapping__filter_parse(&f, "(a = 1", "m.yaml", 1, 1, &mem, errbuf,
                                                  sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(errbuf, "expected ')'"));
    assert_int_equal(siphon_mapping__filter_parse(&f, "and = 1", "m.yaml", 1, 1, &mem, errbuf,
                                                  sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_null(f);
    siphon_arena_destroy(&mem);
}

/* A dead letter through the encoder and back; the shipped schema file is the built-in one. */
void tm_test_dead_letter(void **state)
{
    (void)state;
    siphon_dlq_t *dlq = NULL;
    char errbuf[1024];
    assert_int_equal(siphon_dlq_new(&dlq, errbuf, sizeof(errbuf)), 0);

    /* schemas/_siphon/dead_letter.v1.avsc holds exactly the built-in schema */
    char path[PATH_MAX];
    const char *src = getenv("SIPHON_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/schemas/_siphon/dead_letter.v1.avsc", src ? src : ".");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char file[16384];
    size_t n = fread(file, 1, sizeof(file) - 1, f);
    fclose(f);
    file[n] = '\0';
    assert_string_equal(file, siphon_dlq_schema_json(dlq));
    siphon_schema_t *sch = NULL;
    assert_int_equal(siphon_schema_parse(&sch, file, n, errbuf, sizeof(errbuf)), 0);
    assert_true(sch->fingerprint == siphon_dlq_fingerprint(dlq));
    for (int i = 0; i < sch->record->nfields; i++)
        assert_non_null(sch->record->fields[i].doc);
    siphon_schema_destroy(sch);
    assert_true(siphon_dlq_key_fingerprint(dlq) ==
                siphon_avro_fingerprint64("\"string\"", 8));

    /* a mapping for the record to name */
    char dir[PATH_MAX], maps[PATH_MAX + 16], schemas[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/tests/golden/mapping/err-xf-date-yyyymmdd", src ? src : ".");
    snprintf(maps, sizeof(maps), "%s/mappings", dir);
    snprintf(schemas, sizeof(schemas), "%s/schemas", dir);
    siphon_mapset_t *ms = NULL;
    assert_int_equal(siphon_mapset_load(&ms, maps, schemas, errbuf, sizeof(errbuf)), 0);
    siphon_column_t cols[] = {{"id", 20, "int8", SIPHON_V_INT, -1, 1, 1},
                              {"d", 23, "int4", SIPHON_V_INT, -1, 0, 0},
                              {"note", 25, "text", SIPHON_V_RAWTEXT, -1, 0, 0}};
    siphon_relation_t rel = {1, 1, "public", "t", 3, cols};
    siphon_value_t vals[3] = {{.type = SIPHON_V_INT, .u.i = 42},
                              {.type = SIPHON_V_INT, .u.i = 20260231},
                              {.type = SIPHON_V_RAWTEXT}};
    vals[2].u.s.ptr = "M\xfcller";
    vals[2].u.s.len = 6;
    siphon_row_t row = {3, vals};
    siphon_map_error_t err = {SIPHON_ECONVERT, "d", "d", "value 20260231 is not a date",
                              "t.yaml:9:31: could not map field 'd'", 9, 31};
    siphon_mapped_t m = {siphon_mapset_get(ms, 0), 'c', NULL, NULL, NULL, &err, &row, NULL, 0};
    siphon_dlq_record_t rec = {.event_id = "0/16B3748:3", .ts_us = 1706696100000000LL,
                               .connector = "erp", .db = "erp", .rel = &rel, .pos = "0/16B3748",
                               .txid = 77, .commit_ts_us = 1706696000000000LL, .op = 'c',
                               .mapped = &m};
    siphon_buf_t kb = {0}, vb = {0};
    assert_int_equal(siphon_dlq_encode(dlq, &rec, &kb, &vb, errbuf, sizeof(errbuf)), 0);
    /* the key: an Avro string, single-object encoded */
    uint8_t khdr[SIPHON_AVRO_SOE_HEADER_LEN];
    siphon_avro_soe_header(khdr, siphon_dlq_key_fingerprint(dlq));
    assert_memory_equal(kb.data, khdr, SIPHON_AVRO_SOE_HEADER_LEN);
    const char *ktext = "public.t|42";
    assert_int_equal(kb.len, SIPHON_AVRO_SOE_HEADER_LEN + 1 + strlen(ktext));
    assert_int_equal(kb.data[SIPHON_AVRO_SOE_HEADER_LEN], strlen(ktext) * 2); /* zigzag */
    assert_memory_equal(kb.data + SIPHON_AVRO_SOE_HEADER_LEN + 1, ktext, strlen(ktext));
    char *json = NULL;
    assert_int_equal(siphon_dlq_decode_json(&json, dlq, vb.data, vb.len, errbuf, sizeof(errbuf)),
                     0);
    const char *head =
        "{\"event_id\":\"0/16B3748:3\",\"ts_us\":1706696100000000,\"connector\":\"erp\","
        "\"db\":\"erp\",\"schema\":\"public\",\"table\":\"t\",\"pos\":\"0/16B3748\",\"txid\":77,"
        "\"commit_ts_us\":1706696000000000,\"snapshot\":false,\"op\":\"c\",\"mapping\":\"";
    assert_int_equal(strncmp(json, head, strlen(head)), 0);
    assert_non_null(strstr(json, "err-xf-date-yyyymmdd/mappings/t.yaml\""));
    assert_non_null(strstr(json, "\"entity\":\"t\",\"entity_version\":1,\"field\":\"d\","
                                 "\"columns\":\"d\",\"reason\":\"value 20260231 is not a date\""));
    /* raw values: numbers as text, bytes that are not UTF-8 as \x-hex */
    assert_non_null(strstr(json, "\"row\":{\"id\":\"42\",\"d\":\"20260231\","
                                 "\"note\":\"\\\\x4dfc6c6c6572\"}"));
    free(json);
    /* not a dead letter */
    assert_int_equal(siphon_dlq_decode_json(&json, dlq, kb.data, kb.len, errbuf, sizeof(errbuf)),
                     SIPHON_EPROTO);
    /* a row-level failure: no field, and an unchanged column left out */
    err.field = NULL;
    err.columns = NULL;
    vals[2].type = SIPHON_V_UNCHANGED;
    siphon_buf_reset(&kb);
    siphon_buf_reset(&vb);
    assert_int_equal(siphon_dlq_encode(dlq, &rec, &kb, &vb, errbuf, sizeof(errbuf)), 0);
    assert_int_equal(siphon_dlq_decode_json(&json, dlq, vb.data, vb.len, errbuf, sizeof(errbuf)),
                     0);
    assert_non_null(strstr(json, "\"field\":null,\"columns\":null"));
    assert_non_null(strstr(json, "\"row\":{\"id\":\"42\",\"d\":\"20260231\"}"));
    free(json);
    siphon_buf_free(&kb);
    siphon_buf_free(&vb);
    siphon_mapset_destroy(ms);
    siphon_dlq_destroy(dlq);
    siphon_dlq_destroy(NULL);
}
