/*
 * test_binenc.c - the direct Avro encoder (src/avro/binenc.c) against the reference, avro-c's
 * generic value writer behind siphon_avro_stream_encode_key/_value: the same bytes, or the
 * same error message with nothing appended, for
 *   - hand-computed encodings of every primitive and logical type (golden bytes),
 *   - the golden events of test_stream.c's schema (every logical type, fixed decimals, enums,
 *     unions, unchanged TOAST values),
 *   - random events (random values of every accepted value type, nulls, unchanged values,
 *     values of the wrong type, decimals too long or too precise, bad uuids, unknown enum
 *     symbols, ints out of range) for every canonical schema in schemas/, the golden schema
 *     and a schema holding every Avro type and union shape.
 * The schemas are compiled from the JSON the stream publishes, as a caller would.
 *
 * Once stream.c encodes with binenc itself (see /work/notes/binenc-stream.patch), it defines
 * SIPHON_AVRO_STREAM_BINENC and keeps its avro-c writer as siphon_avro__stream_encode_*_avroc,
 * which stays the reference here.
 */
#include "avro_test.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/avro_int.h"
#include "avro/binenc.h"
#include "core/buf.h"
#include "core/error.h"

#ifdef SIPHON_AVRO_STREAM_BINENC
#define REF_KEY siphon_avro__stream_encode_key_avroc
#define REF_VALUE siphon_avro__stream_encode_value_avroc
#else
#define REF_KEY siphon_avro_stream_encode_key
#define REF_VALUE siphon_avro_stream_encode_value
#endif

/* ---- a deterministic random source ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int pct(int p) { return (int)(rnd() % 100) < p; }

/* 1 while generating values the field surely takes (no out-of-range, malformed...) */
static int g_valid;

/* pct() for the choices that make a value invalid */
static int bad(int p) { return !g_valid && pct(p); }
static int64_t rnd_range(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

/* ---- one stream and its two compiled encoders ---- */

typedef struct pair {
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
    siphon_binenc_t *kenc, *venc;
    int nkey;
    int key_index[4];
    uint8_t khdr[SIPHON_AVRO_SOE_HEADER_LEN], vhdr[SIPHON_AVRO_SOE_HEADER_LEN];
} pair_t;

static void pair_open_schema(pair_t *p, siphon_schema_t *sch)
{
    char err[1024] = "";
    const char *keys[2];
    memset(p, 0, sizeof(*p));
    p->sch = sch;
    /* the first one or two fields that can be key fields */
    for (int i = 0; i < sch->record->nfields && p->nkey < 2; i++) {
        const siphon_avro_type_t *t = sch->record->fields[i].type;
        if (t->kind == SIPHON_AVRO_RECORD || t->kind == SIPHON_AVRO_ARRAY ||
            t->kind == SIPHON_AVRO_MAP || t->kind == SIPHON_AVRO_UNION)
            continue;
        p->key_index[p->nkey] = i;
        keys[p->nkey++] = sch->record->fields[i].name;
    }
    assert_true(p->nkey > 0);
    if (siphon_avro_stream_new(&p->st, sch, keys, p->nkey, err, sizeof(err)) != 0)
        fail_msg("stream for %s: %s", sch->record->name, err);
    const char *kj = siphon_avro_stream_key_schema_json(p->st);
    const char *vj = siphon_avro_stream_value_schema_json(p->st);
    if (siphon_binenc_new_json(&p->kenc, kj, strlen(kj), err, sizeof(err)) != 0 ||
        siphon_binenc_new_json(&p->venc, vj, strlen(vj), err, sizeof(err)) != 0)
        fail_msg("binenc for %s: %s", sch->record->name, err);
    siphon_avro_soe_header(p->khdr, siphon_avro_stream_key_fingerprint(p->st));
    siphon_avro_soe_header(p->vhdr, siphon_avro_stream_value_fingerprint(p->st));
}

static void pair_open_file(pair_t *p, const char *path)
{
    char err[1024] = "";
    siphon_schema_t *sch = NULL;
    if (siphon_schema_load(&sch, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    pair_open_schema(p, sch);
}

static void pair_open_json(pair_t *p, const char *json)
{
    char err[1024] = "";
    siphon_schema_t *sch = NULL;
    if (siphon_schema_parse(&sch, json, strlen(json), err, sizeof(err)) != 0)
        fail_msg("%s", err);
    pair_open_schema(p, sch);
}

static void pair_close(pair_t *p)
{
    siphon_binenc_destroy(p->kenc);
    siphon_binenc_destroy(p->venc);
    siphon_avro_stream_destroy(p->st);
    siphon_schema_destroy(p->sch);
}

typedef struct tally {
    int same_bytes, same_error, key_same, key_error;
} tally_t;

/* Encode with both, compare. The buffers start with a prefix that must survive. */
static void compare_event(pair_t *p, const siphon_avro_event_t *ev, const siphon_value_t *key,
                          tally_t *t)
{
    siphon_buf_t a = {0}, b = {0};
    char ea[1024] = "", eb[1024] = "";
    siphon_buf_append(&a, "pre", 3);
    siphon_buf_append(&b, "pre", 3);
    int ra = REF_VALUE(p->st, ev, &a, ea, sizeof(ea));
    siphon_buf_append(&b, p->vhdr, sizeof(p->vhdr));
    int rb = siphon_binenc_write_event(p->venc, ev, NULL, 0, &b, eb, sizeof(eb));
    if (rb < 0)
        b.len = 3;
    if (ra != rb)
        fail_msg("%s: avro-c returned %d (%s), binenc %d (%s)", p->sch->record->name, ra, ea, rb,
                 eb);
    if (ra == 0) {
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            size_t i = 0;
            while (i < a.len && i < b.len && a.data[i] == b.data[i])
                i++;
            fail_msg("%s: encodings differ at byte %zu (avro-c %zu bytes, binenc %zu)",
                     p->sch->record->name, i, a.len, b.len);
        }
        t->same_bytes++;
    } else {
        assert_string_equal(ea, eb);
        assert_int_equal(b.len, 3);
        assert_int_equal(a.len, 3);
        t->same_error++;
    }

    /* the key: stream.c refuses unchanged key values itself before encoding */
    int unchanged = 0;
    for (int i = 0; i < p->nkey; i++)
        unchanged |= key[i].type == SIPHON_V_UNCHANGED;
    siphon_buf_reset(&a);
    siphon_buf_reset(&b);
    ra = REF_KEY(p->st, key, &a, ea, sizeof(ea));
    if (!unchanged) {
        siphon_buf_append(&b, p->khdr, sizeof(p->khdr));
        rb = siphon_binenc_write_row(p->kenc, key, &b, eb, sizeof(eb));
        if (ra != rb)
            fail_msg("%s key: avro-c returned %d (%s), binenc %d (%s)", p->sch->record->name, ra,
                     ea, rb, eb);
        if (ra == 0) {
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.data, b.data, a.len);
            t->key_same++;
        } else {
            assert_string_equal(ea, eb);
            assert_int_equal(a.len, 0);
            assert_int_equal(b.len, sizeof(p->khdr)); /* nothing after the header */
            t->key_error++;
        }
    }
    siphon_buf_free(&a);
    siphon_buf_free(&b);
}

/* ---- random values ---- */

static char *rtext(siphon_arena_t *ar, size_t n, int utf8)
{
    static const char *const pieces[] = {"a", "Z", "0", " ", "\"", "\\", "\xc3\xa9", "\xe2\x82\xac",
                                         "\n", "\xf0\x9f\x98\x80"};
    char *s = siphon_arena_alloc(ar, n * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *pc = pieces[rnd() % (utf8 ? 10 : 6)];
        size_t l = strlen(pc);
        memcpy(s + o, pc, l);
        o += l;
    }
    s[o] = '\0';
    return s;
}

static siphon_value_t text_v(siphon_arena_t *ar, siphon_vtype_t vt, const char *s, size_t n)
{
    siphon_value_t v = {.type = vt};
    char *c = siphon_arena_alloc(ar, n + 1);
    memcpy(c, s, n);
    c[n] = '\0';
    v.u.s.ptr = c;
    v.u.s.len = n;
    return v;
}

static siphon_value_t rand_decimal(siphon_arena_t *ar, const siphon_avro_type_t *t)
{
    siphon_value_t v = {.type = SIPHON_V_DECIMAL};
    int maxd = t->precision + 3 > 45 ? 45 : t->precision + 3;
    int nd = (int)rnd_range(1, pct(70) || g_valid ? (t->precision > 18 ? 18 : t->precision) : maxd);
    int maxscale = g_valid ? t->scale : t->scale + 3;
    if (g_valid && nd + t->scale > t->precision)
        nd = t->precision - t->scale > 0 ? t->precision - t->scale : 1;
    char *d = siphon_arena_alloc(ar, (size_t)nd + 8); /* sign, up to 3 leading zeros */
    size_t o = 0;
    if (pct(40))
        d[o++] = '-';
    int lead = pct(10) ? (int)rnd_range(1, 3) : 0;
    for (int i = 0; i < nd + lead; i++)
        d[o++] = (char)('0' + (i < lead ? 0 : (i == lead ? rnd_range(1, 9) : rnd_range(0, 9))));
    if (bad(2))
        d[o - 1] = 'x'; /* malformed */
    if (pct(5) && o > 1)
        d[o - 1] = '0';
    v.u.dec.digits = d;
    v.u.dec.len = o;
    v.u.dec.scale = pct(70) ? (int32_t)rnd_range(0, t->scale) : (int32_t)rnd_range(0, maxscale);
    if (pct(5)) { /* trailing zeros beyond the scale: dropped, not an error */
        int extra = (int)rnd_range(1, 3);
        char *d2 = siphon_arena_alloc(ar, o + (size_t)extra);
        memcpy(d2, d, o);
        memset(d2 + o, '0', (size_t)extra);
        v.u.dec.digits = d2;
        v.u.dec.len = o + (size_t)extra;
        v.u.dec.scale = t->scale + extra;
    }
    if (pct(40)) { /* the int64 form (core/value.h) of the same number, when it fits */
        const char *q = v.u.dec.digits, *end = q + v.u.dec.len;
        int neg = *q == '-';
        uint64_t mag = 0;
        int ok = 1;
        for (q += neg; q < end && ok; q++) {
            ok = *q >= '0' && *q <= '9' && mag <= (UINT64_MAX - 9) / 10;
            mag = mag * 10 + (uint64_t)(*q - '0');
        }
        if (ok && mag <= (uint64_t)INT64_MAX + (uint64_t)neg)
            siphon_value_set_dec_i64(&v, neg ? (int64_t)(0 - mag) : (int64_t)mag,
                                     v.u.dec.scale);
    }
    return v;
}

/* A value that a non-union type takes (mostly), or something it does not. */
static siphon_value_t rand_for(siphon_arena_t *ar, const siphon_avro_type_t *t)
{
    siphon_value_t v;
    memset(&v, 0, sizeof(v));
    switch (t->kind) {
    case SIPHON_AVRO_NULL:
        v.type = SIPHON_V_NULL;
        return v;
    case SIPHON_AVRO_BOOLEAN:
        v.type = SIPHON_V_BOOL;
        v.u.b = (int)(rnd() % 2);
        return v;
    case SIPHON_AVRO_INT:
        if (t->logical == SIPHON_AVRO_LT_DATE && pct(70)) {
            v.type = SIPHON_V_DATE;
            v.u.date = (int32_t)rnd_range(-800000, 2900000);
        } else if (t->logical == SIPHON_AVRO_LT_TIME_MILLIS && pct(70)) {
            v.type = SIPHON_V_TIME;
            v.u.time_us = rnd_range(pct(5) ? -5000000 : 0, bad(3) ? INT64_MAX / 2 : 86399999999LL);
        } else {
            v.type = SIPHON_V_INT;
            v.u.i = bad(5) ? (int64_t)rnd() : rnd_range(INT32_MIN, INT32_MAX);
        }
        return v;
    case SIPHON_AVRO_LONG:
        if (t->logical == SIPHON_AVRO_LT_TIME_MICROS && pct(70)) {
            v.type = SIPHON_V_TIME;
            v.u.time_us = rnd_range(0, 86399999999LL);
        } else if (t->logical >= SIPHON_AVRO_LT_TIMESTAMP_MILLIS && t->logical != SIPHON_AVRO_LT_UUID &&
                   t->logical != SIPHON_AVRO_LT_TIME_MICROS && pct(70)) {
            v.type = SIPHON_V_TIMESTAMP;
            v.u.ts.us = rnd_range(-4000000000000000LL, 4000000000000000LL);
            v.u.ts.tz = (int)(rnd() % 2);
        } else {
            v.type = SIPHON_V_INT;
            v.u.i = pct(20) ? (int64_t)rnd() : pct(50) ? rnd_range(-100, 100) : rnd_range(-(1LL << 40), 1LL << 40);
            if (pct(2))
                v.u.i = pct(50) ? INT64_MIN : INT64_MAX;
        }
        return v;
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE:
        if (pct(30)) {
            v.type = SIPHON_V_INT;
            v.u.i = (int64_t)rnd() >> (rnd() % 60);
        } else {
            static const double specials[] = {0.1, -0.0, 1e300, -2.5e-310, 3.4028235e38, 1.0 / 3};
            v.type = SIPHON_V_FLOAT;
            v.u.f = pct(20) ? specials[rnd() % 6] : (double)(int64_t)rnd() / (double)(rnd() | 1);
        }
        return v;
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_FIXED:
        if (t->logical == SIPHON_AVRO_LT_DECIMAL) {
            if (pct(25)) {
                v.type = SIPHON_V_INT;
                v.u.i = bad(10) ? (int64_t)rnd() : rnd_range(-99, 99);
                if (bad(2))
                    v.u.i = INT64_MIN;
                return v;
            }
            return rand_decimal(ar, t);
        } else {
            size_t n = t->kind == SIPHON_AVRO_FIXED && !bad(10) ? (size_t)t->size : (size_t)rnd_range(0, 40);
            uint8_t *b = siphon_arena_alloc(ar, n + 1);
            for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)rnd();
            v.type = SIPHON_V_BYTES;
            v.u.s.ptr = (const char *)b;
            v.u.s.len = n;
        }
        return v;
    case SIPHON_AVRO_STRING:
        if (t->logical == SIPHON_AVRO_LT_UUID) {
            if (pct(50)) {
                v.type = SIPHON_V_UUID;
                for (int i = 0; i < 16; i++)
                    v.u.uuid[i] = (uint8_t)rnd();
                return v;
            }
            char u[40];
            static const char hex[] = "0123456789abcdefABCDEF";
            for (int i = 0; i < 36; i++)
                u[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rnd() % 22];
            size_t n = 36;
            if (bad(10))
                u[rnd() % 36] = 'g';
            if (bad(5))
                n = 35;
            return text_v(ar, SIPHON_V_TEXT, u, n);
        } else {
            char *s = rtext(ar, (size_t)rnd_range(0, 30), 1);
            return text_v(ar, pct(10) ? SIPHON_V_JSON : SIPHON_V_TEXT, s, strlen(s));
        }
    case SIPHON_AVRO_ENUM:
        if (!bad(10)) {
            const char *sym = t->symbols[rnd() % (uint64_t)t->nsymbols];
            return text_v(ar, SIPHON_V_TEXT, sym, strlen(sym));
        }
        return text_v(ar, SIPHON_V_TEXT, "NOT_A_SYMBOL_AT_ALL_AND_A_VERY_LONG_ONE_PAST_FORTY_EIGHT_CHARS", 62);
    default:
        v.type = SIPHON_V_NULL;
        return v;
    }
}

/* Any value of any type (mostly wrong for the field). */
static siphon_value_t rand_any(siphon_arena_t *ar)
{
    static const siphon_vtype_t vts[] = {SIPHON_V_BOOL, SIPHON_V_INT, SIPHON_V_FLOAT,
                                         SIPHON_V_DECIMAL, SIPHON_V_TEXT, SIPHON_V_BYTES,
                                         SIPHON_V_DATE, SIPHON_V_TIME, SIPHON_V_TIMESTAMP,
                                         SIPHON_V_UUID, SIPHON_V_JSON, SIPHON_V_RAWTEXT};
    siphon_value_t v;
    memset(&v, 0, sizeof(v));
    v.type = vts[rnd() % 12];
    switch (v.type) {
    case SIPHON_V_DECIMAL:
        v.u.dec.digits = "12345";
        v.u.dec.len = 5;
        v.u.dec.scale = 1;
        break;
    case SIPHON_V_TEXT:
    case SIPHON_V_BYTES:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
        return text_v(ar, v.type, "1.00", 4);
    default:
        v.u.i = 7;
    }
    return v;
}

static siphon_value_t rand_field(siphon_arena_t *ar, const siphon_avro_type_t *t, int unchanged_ok)
{
    siphon_value_t v;
    memset(&v, 0, sizeof(v));
    int r = (int)(rnd() % 100);
    if (r < 6) {
        v.type = SIPHON_V_NULL;
        return v;
    }
    if (r < 10 && unchanged_ok) {
        v.type = SIPHON_V_UNCHANGED;
        return v;
    }
    if (r < 13)
        return rand_any(ar);
    if (t->kind == SIPHON_AVRO_UNION)
        t = t->branches[rnd() % (uint64_t)t->nbranches];
    return rand_for(ar, t);
}

static void rand_row(siphon_arena_t *ar, const siphon_avro_type_t *rec, siphon_value_t *row,
                     int unchanged_ok, int valid_bias)
{
    for (int i = 0; i < rec->nfields; i++) {
        const siphon_avro_type_t *t = rec->fields[i].type;
        if (valid_bias && pct(valid_bias)) {
            /* a value the field surely takes, so that whole events succeed often */
            if (t->kind == SIPHON_AVRO_UNION)
                t = rec->fields[i].base;
            g_valid = 1;
            row[i] = t->kind == SIPHON_AVRO_ARRAY || t->kind == SIPHON_AVRO_MAP ||
                             t->kind == SIPHON_AVRO_RECORD
                         ? (siphon_value_t){.type = SIPHON_V_NULL}
                         : rand_for(ar, t);
            g_valid = 0;
            continue;
        }
        row[i] = rand_field(ar, t, unchanged_ok);
    }
}

static const char *rand_cstr(siphon_arena_t *ar)
{
    if (pct(5))
        return NULL;
    return rtext(ar, (size_t)rnd_range(0, 12), 1);
}

static void random_events(pair_t *p, int n, tally_t *t)
{
    const siphon_avro_type_t *rec = p->sch->record;
    siphon_arena_t ar;
    memset(&ar, 0, sizeof(ar));
    siphon_arena_init(&ar, 0);
    siphon_value_t *after = calloc((size_t)rec->nfields, sizeof(*after));
    siphon_value_t *before = calloc((size_t)rec->nfields, sizeof(*before));
    siphon_value_t key[4];
    for (int it = 0; it < n; it++) {
        siphon_arena_reset(&ar);
        /* most events are made of values the fields take; the rest probe every error */
        int bias = it % 4 == 0 ? 0 : 99;
        rand_row(&ar, rec, after, 1, bias);
        rand_row(&ar, rec, before, pct(20), bias);
        siphon_avro_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.op = "cudr"[rnd() % 4];
        ev.after = ev.op == 'd' ? NULL : after;
        ev.before = ev.op == 'c' || pct(30) ? NULL : before;
        if (pct(3)) {
            ev.op = 't';
            ev.before = ev.after = NULL;
        }
        ev.source.connector = rand_cstr(&ar);
        ev.source.db = rand_cstr(&ar);
        ev.source.schema = rand_cstr(&ar);
        ev.source.table = rand_cstr(&ar);
        ev.source.pos = rand_cstr(&ar);
        ev.source.txid = pct(30) ? 0 : pct(5) ? UINT64_MAX - rnd() % 10 : rnd() % 100000000;
        ev.source.commit_ts_us = (int64_t)rnd() >> (rnd() % 63);
        ev.source.snapshot = (int)(rnd() % 2);
        ev.ts_us = (int64_t)rnd() >> (rnd() % 63);
        ev.event_id = rtext(&ar, (size_t)rnd_range(1, 20), 0);
        const siphon_value_t *img = ev.after ? ev.after : ev.before ? ev.before : after;
        for (int k = 0; k < p->nkey; k++)
            key[k] = img[p->key_index[k]];
        compare_event(p, &ev, key, t);
    }
    free(after);
    free(before);
    siphon_arena_destroy(&ar);
}

/* Each outcome must have happened often enough for the comparison to mean something. */
static void check_tally(const char *what, const tally_t *t, int n)
{
    print_message("binenc vs avro-c, %s: %d events identical, %d identical errors; keys %d "
                  "identical, %d identical errors\n",
                  what, t->same_bytes, t->same_error, t->key_same, t->key_error);
    assert_true(t->same_bytes >= n / 3);
    assert_true(t->same_error >= n / 20);
    assert_true(t->key_same >= n / 3);
}

/* ---- the tests ---- */

static void test_golden_bytes(void **state)
{
    (void)state;
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"G\",\"fields\":["
        "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
        "{\"name\":\"l\",\"type\":\"long\"},"
        "{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
        "\"precision\":9,\"scale\":2}},"
        "{\"name\":\"s\",\"type\":\"string\"},{\"name\":\"u\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"dt\",\"type\":{\"type\":\"int\","
        "\"logicalType\":\"date\"}},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}},"
        "{\"name\":\"g\",\"type\":[\"string\",\"long\",\"null\"]}]}";
    siphon_binenc_t *enc = NULL;
    char err[512] = "";
    assert_int_equal(siphon_binenc_new_json(&enc, json, strlen(json), err, sizeof(err)), 0);
    assert_int_equal(siphon_binenc_nfields(enc), 10);
    assert_int_equal(siphon_binenc_field_index(enc, "d"), 3);
    assert_int_equal(siphon_binenc_field_index(enc, "nope"), -1);

    siphon_value_t v[10];
    memset(v, 0, sizeof(v));
    v[0].type = SIPHON_V_BOOL;
    v[0].u.b = 1;
    v[1].type = SIPHON_V_INT;
    v[1].u.i = -1;
    v[2].type = SIPHON_V_INT;
    v[2].u.i = 64;
    v[3].type = SIPHON_V_DECIMAL; /* 1.5 -> unscaled 150 at scale 2 -> 00 96 */
    v[3].u.dec.digits = "15";
    v[3].u.dec.len = 2;
    v[3].u.dec.scale = 1;
    v[4].type = SIPHON_V_TEXT;
    v[4].u.s.ptr = "ab";
    v[4].u.s.len = 2;
    v[5].type = SIPHON_V_NULL;
    v[6].type = SIPHON_V_FLOAT;
    v[6].u.f = 1.0; /* 0x3f800000 */
    v[7].type = SIPHON_V_DATE;
    v[7].u.date = -1;
    v[8].type = SIPHON_V_TEXT;
    v[8].u.s.ptr = "Y";
    v[8].u.s.len = 1;
    v[9].type = SIPHON_V_INT; /* the union's second branch */
    v[9].u.i = -65;
    static const uint8_t want[] = {0x01, 0x01, 0x80, 0x01, 0x04, 0x00, 0x96, 0x04, 'a', 'b',
                                   0x00, 0x00, 0x00, 0x80, 0x3f, 0x01, 0x02, 0x02, 0x81, 0x01};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_binenc_write_row(enc, v, &out, err, sizeof(err)), 0);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));

    /* an error leaves the buffer as it was and words the problem as stream.c does */
    size_t len = out.len;
    v[1].u.i = 3000000000LL;
    assert_int_equal(siphon_binenc_write_row(enc, v, &out, err, sizeof(err)), SIPHON_ECONVERT);
    assert_int_equal(out.len, len);
    assert_string_equal(err, "field 'i': cannot write int as int: out of range for a 32-bit int "
                             "(-2147483648..2147483647)");
    v[1].u.i = 0;
    v[0].type = SIPHON_V_NULL;
    assert_int_equal(siphon_binenc_write_row(enc, v, &out, err, sizeof(err)), SIPHON_ECONVERT);
    assert_string_equal(err, "field 'b': cannot write null as boolean: the field is not nullable");
    v[0].type = SIPHON_V_BOOL;
    v[9].type = SIPHON_V_DATE;
    assert_int_equal(siphon_binenc_write_row(enc, v, &out, err, sizeof(err)), SIPHON_ECONVERT);
    assert_string_equal(err, "field 'g': cannot write date as union [string, long, null]");
    assert_int_equal(out.len, len);

    /* nested inputs: a record from inputs, a record where a value is expected */
    siphon_binenc_in_t in[10];
    memset(in, 0, sizeof(in));
    for (int i = 0; i < 10; i++) {
        in[i].kind = SIPHON_BINENC_VALUE;
        in[i].u.value = &v[i];
    }
    in[5].kind = SIPHON_BINENC_NULL;
    v[9].type = SIPHON_V_NULL;
    siphon_buf_reset(&out);
    assert_int_equal(siphon_binenc_write(enc, in, &out, err, sizeof(err)), 0);
    assert_int_equal(out.len, sizeof(want) - 2);
    assert_int_equal(out.data[out.len - 1], 0x04); /* null is the third branch */
    in[4].kind = SIPHON_BINENC_ROW;
    in[4].u.row = v;
    assert_int_equal(siphon_binenc_write(enc, in, &out, err, sizeof(err)), SIPHON_ECONVERT);
    assert_string_equal(err, "field 's': cannot write a record as string");
    siphon_buf_free(&out);
    siphon_binenc_destroy(enc);

    /* not a record, not JSON */
    assert_int_equal(siphon_binenc_new_json(&enc, "\"long\"", 6, err, sizeof(err)), SIPHON_EINVAL);
    assert_null(enc);
    assert_int_equal(siphon_binenc_new_json(&enc, "{", 1, err, sizeof(err)), SIPHON_EINVAL);
}

#define NF 22 /* fields of tests/golden/avro/schemas/sales_order.v1.avsc (test_stream.c) */

static void test_golden_events(void **state)
{
    (void)state;
    char path[4096];
    pair_t p;
    tally_t t = {0};
    snprintf(path, sizeof(path), "%s/tests/golden/avro/schemas/sales_order.v1.avsc",
             avro_test_source_dir());
    pair_open_file(&p, path);
    assert_int_equal(p.sch->record->nfields, NF);

    siphon_value_t a[NF], b[NF];
    memset(a, 0, sizeof(a));
    a[0].type = SIPHON_V_INT;
    a[0].u.i = 1001;
    a[1] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"ACME", 4}};
    a[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"12345", 5, 2}};
    a[3] = (siphon_value_t){.type = SIPHON_V_DECIMAL,
                            .u.dec = {"-123456789012345678901234567890123", 34, 2}};
    a[4] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"-1", 2, 0}};
    a[5].type = SIPHON_V_DATE;
    a[5].u.date = 19782;
    a[6].type = SIPHON_V_TIME;
    a[6].u.time_us = 49506123456;
    a[7] = a[6];
    a[8].type = SIPHON_V_TIMESTAMP;
    a[8].u.ts.us = 1709214306123456;
    a[8].u.ts.tz = 1;
    a[9].type = SIPHON_V_TIMESTAMP;
    a[9].u.ts.us = -141782400000001;
    a[10] = a[8];
    a[10].u.ts.tz = 0;
    a[11].type = SIPHON_V_UUID;
    for (int i = 0; i < 16; i++)
        a[11].u.uuid[i] = (uint8_t)(i * 17 + 3);
    a[12] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"SHIPPED", 7}};
    a[13].type = SIPHON_V_NULL;
    a[14] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"say \"hi\"\n\xc3\xa9t\xc3\xa9", 14}};
    a[15].type = SIPHON_V_INT;
    a[15].u.i = -7;
    a[16].type = SIPHON_V_FLOAT;
    a[16].u.f = 0.1;
    a[17].type = SIPHON_V_INT;
    a[17].u.i = 3;
    a[18].type = SIPHON_V_BOOL;
    a[18].u.b = 1;
    a[19] = (siphon_value_t){.type = SIPHON_V_BYTES, .u.s = {"\xde\xad\x00", 3}};
    a[20] = (siphon_value_t){.type = SIPHON_V_JSON, .u.s = {"{\"a\":1}", 7}};
    a[21].type = SIPHON_V_NULL;
    siphon_avro_event_t ev = {
        .op = 'c', .after = a,
        .source = {.connector = "erp", .db = "erpdb", .schema = "public", .table = "oehdr",
                   .pos = "0/16B3748", .txid = 771, .commit_ts_us = 1709214306000000},
        .ts_us = 1709214307000001, .event_id = "0/16B3748:3"};
    siphon_value_t key[2] = {a[0], a[1]};
    compare_event(&p, &ev, key, &t);

    /* an update with a full old row, an unchanged TOAST value, a null txid, snapshot */
    memcpy(b, a, sizeof(b));
    b[2] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = -42};
    b[4] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"1234567800", 10, 4}};
    a[14].type = SIPHON_V_UNCHANGED;
    a[19].type = SIPHON_V_UNCHANGED;
    ev.op = 'u';
    ev.before = b;
    ev.source.txid = 0;
    ev.source.snapshot = 1;
    compare_event(&p, &ev, key, &t);
    /* a partial old row is written as null; a delete; a truncate */
    b[3].type = SIPHON_V_UNCHANGED;
    compare_event(&p, &ev, key, &t);
    ev.op = 'd';
    ev.after = NULL;
    compare_event(&p, &ev, key, &t);
    ev.op = 't';
    ev.before = NULL;
    compare_event(&p, &ev, key, &t);
    assert_int_equal(t.same_bytes, 5);

    /* the errors of test_stream.c, word for word */
    ev.op = 'c';
    ev.after = a;
    a[14].type = SIPHON_V_TEXT;
    a[19].type = SIPHON_V_BYTES;
    a[15].type = SIPHON_V_UNCHANGED; /* not nullable */
    compare_event(&p, &ev, key, &t);
    a[15] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = 3000000000LL};
    compare_event(&p, &ev, key, &t);
    a[15].u.i = 1;
    a[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"12345678901234", 14, 2}};
    compare_event(&p, &ev, key, &t);
    a[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"1", 1, 3}};
    compare_event(&p, &ev, key, &t);
    a[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"12x", 3, 0}};
    compare_event(&p, &ev, key, &t);
    a[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL, .u.dec = {"1", 1, 0}};
    a[4] = (siphon_value_t){.type = SIPHON_V_DECIMAL,
                            .u.dec = {"1000000000000000000000000000000", 31, 0}};
    compare_event(&p, &ev, key, &t);
    a[4].type = SIPHON_V_NULL;
    a[12] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"LOST", 4}};
    compare_event(&p, &ev, key, &t);
    a[12].u.s.ptr = "OPEN";
    a[21] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"a,b", 3}};
    compare_event(&p, &ev, key, &t);
    assert_int_equal(t.same_error, 8);
    pair_close(&p);
}

static void random_for_file(const char *path, const char *what, int n)
{
    pair_t p;
    tally_t t = {0};
    pair_open_file(&p, path);
    random_events(&p, n, &t);
    check_tally(what, &t, n);
    pair_close(&p);
}

static void test_random_golden_schema(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/golden/avro/schemas/sales_order.v1.avsc",
             avro_test_source_dir());
    random_for_file(path, "tests/golden/avro/schemas/sales_order.v1.avsc", 3000);
}

static void test_random_canonical_schemas(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    snprintf(dir, sizeof(dir), "%s/schemas", avro_test_source_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".avsc") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        random_for_file(path, de->d_name, 1500);
        files++;
    }
    closedir(d);
    assert_true(files >= 8);
}

static void test_random_every_type(void **state)
{
    (void)state;
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"AllTypes\",\"namespace\":\"t.x\",\"fields\":["
        "{\"name\":\"id\",\"type\":\"long\"},"
        "{\"name\":\"code\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"BB\",\"CCC\"]}},"
        "{\"name\":\"b\",\"type\":\"boolean\"},"
        "{\"name\":\"i\",\"type\":\"int\"},"
        "{\"name\":\"f\",\"type\":\"float\"},"
        "{\"name\":\"d\",\"type\":\"double\"},"
        "{\"name\":\"by\",\"type\":\"bytes\"},"
        "{\"name\":\"s\",\"type\":\"string\"},"
        "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F4\",\"size\":4}},"
        "{\"name\":\"dec\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":20,\"scale\":3}},"
        "{\"name\":\"dec0\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4,\"scale\":0}},"
        "{\"name\":\"decf\",\"type\":{\"type\":\"fixed\",\"name\":\"F8\",\"size\":8,\"logicalType\":\"decimal\",\"precision\":18,\"scale\":2}},"
        "{\"name\":\"dt\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
        "{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
        "{\"name\":\"tu\",\"type\":{\"type\":\"long\",\"logicalType\":\"time-micros\"}},"
        "{\"name\":\"tsm\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
        "{\"name\":\"tsu\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
        "{\"name\":\"ltm\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-millis\"}},"
        "{\"name\":\"ltu\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-micros\"}},"
        "{\"name\":\"uu\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
        "{\"name\":\"u1\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"u2\",\"type\":[\"string\",\"null\"]},"
        "{\"name\":\"u3\",\"type\":[\"null\",\"long\",\"string\",\"E\",\"boolean\"]},"
        "{\"name\":\"u4\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"},\"F4\",\"double\"]},"
        "{\"name\":\"u5\",\"type\":[\"null\",{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":38,\"scale\":10}]},"
        "{\"name\":\"m\",\"type\":[\"null\",{\"type\":\"map\",\"values\":\"long\"}]},"
        "{\"name\":\"arr\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"string\"}]}"
        "]}";
    pair_t p;
    tally_t t = {0};
    pair_open_json(&p, json);
    random_events(&p, 4000, &t);
    check_tally("every type", &t, 4000);
    pair_close(&p);
}

/* Decimals in the int64 form (what mappings make of integer columns) against the same number in
 * digits: the same bytes or the same refusal from binenc, and the same as avro-c's, at the
 * edges of the int64 fast path (precision 18/19, 10^k, byte-length steps, INT64_MIN/MAX,
 * rescaling, places beyond the scale, fixed sizes). */
static void test_decimal_i64_form(void **state)
{
    (void)state;
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"D\",\"namespace\":\"t.d\",\"fields\":["
        "{\"name\":\"id\",\"type\":\"long\"},"
        "{\"name\":\"p18\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":0}},"
        "{\"name\":\"p18s4\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":4}},"
        "{\"name\":\"p19\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":19,\"scale\":0}},"
        "{\"name\":\"p19s2\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":19,\"scale\":2}},"
        "{\"name\":\"p20s3\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":20,\"scale\":3}},"
        "{\"name\":\"p38\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":38,\"scale\":10}},"
        "{\"name\":\"p5s2\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":5,\"scale\":2}},"
        "{\"name\":\"f8\",\"type\":{\"type\":\"fixed\",\"name\":\"F8\",\"size\":8,\"logicalType\":\"decimal\",\"precision\":18,\"scale\":2}},"
        "{\"name\":\"f16\",\"type\":{\"type\":\"fixed\",\"name\":\"F16\",\"size\":16,\"logicalType\":\"decimal\",\"precision\":38,\"scale\":2}},"
        "{\"name\":\"n\",\"type\":[\"null\",{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":3}]}"
        "]}";
    enum { NFD = 11 };
    char err[1024] = "", ea[1024] = "", eb[1024] = "";
    pair_t p;
    tally_t t = {0};
    pair_open_json(&p, json);
    const siphon_avro_type_t *rec = p.sch->record;
    siphon_binenc_t *enc = NULL;
    const char *vj = siphon_avro_stream_value_schema_json(p.st);
    assert_int_equal(siphon_binenc_new_json(&enc, vj, strlen(vj), err, sizeof(err)), 0);

    /* the unscaled values: 0, +-(10^k - 1), +-10^k, the byte-length steps, the int64 ends */
    int64_t vals[200];
    int nv = 0;
    vals[nv++] = 0;
    for (int64_t pw = 10; pw > 0; pw = pw <= INT64_MAX / 10 ? pw * 10 : 0) {
        vals[nv++] = pw - 1;
        vals[nv++] = pw;
        vals[nv++] = pw + 1;
    }
    for (int b = 7; b < 63; b += 8) {
        vals[nv++] = ((int64_t)1 << b) - 1;
        vals[nv++] = (int64_t)1 << b;
    }
    vals[nv++] = INT64_MAX;
    vals[nv++] = INT64_MAX - 1;
    int npos = nv;
    for (int i = 1; i < npos; i++)
        vals[nv++] = -vals[i];
    vals[nv++] = INT64_MIN;
    vals[nv++] = INT64_MIN + 1;

    siphon_value_t row[NFD], row2[NFD];
    siphon_buf_t a = {0}, b = {0};
    int same = 0, refused = 0;
    for (int vi = 0; vi < nv; vi++)
        for (int32_t scale = -1; scale <= 12; scale++) {
            char digits[32];
            size_t dn = (size_t)snprintf(digits, sizeof(digits), "%" PRId64, vals[vi]);
            for (int f = 0; f < NFD; f++) {
                siphon_value_set_dec_i64(&row[f], vals[vi], scale);
                row2[f] = (siphon_value_t){.type = SIPHON_V_DECIMAL};
                row2[f].u.dec.digits = digits;
                row2[f].u.dec.len = dn;
                row2[f].u.dec.scale = scale;
            }
            row[0] = row2[0] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = vi};
            /* one field at a time, the others null where they can be, else a fitting 0 */
            for (int f = 1; f < NFD; f++) {
                siphon_value_t one[NFD], one2[NFD];
                for (int g = 0; g < NFD; g++) {
                    one[g] = g == f || g == 0 ? row[g] : (siphon_value_t){.type = SIPHON_V_INT};
                    one2[g] = g == f || g == 0 ? row2[g] : one[g];
                }
                if (f != NFD - 1)
                    one[NFD - 1] = one2[NFD - 1] = (siphon_value_t){.type = SIPHON_V_NULL};
                siphon_buf_reset(&a);
                siphon_buf_reset(&b);
                siphon_avro_event_t ev = {.op = 'c', .after = one, .event_id = "e"};
                siphon_avro_event_t ev2 = ev;
                ev2.after = one2;
                int ra = siphon_binenc_write_event(enc, &ev, NULL, 0, &a, ea, sizeof(ea));
                int rb = siphon_binenc_write_event(enc, &ev2, NULL, 0, &b, eb, sizeof(eb));
                if (ra != rb)
                    fail_msg("%s = %s scale %d: int64 form %d (%s), digits %d (%s)",
                             rec->fields[f].name, digits, (int)scale, ra, ea, rb, eb);
                if (ra == 0) {
                    assert_int_equal(a.len, b.len);
                    assert_memory_equal(a.data, b.data, a.len);
                    same++;
                } else {
                    assert_string_equal(ea, eb);
                    refused++;
                }
                compare_event(&p, &ev, one, &t); /* and the int64 form as avro-c writes it */
            }
        }
    print_message("int64-form decimals: %d identical encodings, %d identical refusals\n", same,
                  refused);
    assert_true(same > 1000);
    assert_true(refused > 1000);
    siphon_buf_free(&a);
    siphon_buf_free(&b);
    siphon_binenc_destroy(enc);
    pair_close(&p);
}

/* Strings of every length up to 40 (the short ones copied without memcpy), and a source block
 * repeated from event to event (copied from the encoder's cache) or changed in the same memory:
 * the same bytes as avro-c every time. */
static void test_strings_and_source_cache(void **state)
{
    (void)state;
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"t.s\",\"fields\":["
        "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"s\",\"type\":\"string\"},"
        "{\"name\":\"u\",\"type\":[\"null\",\"string\"]}]}";
    pair_t p;
    tally_t t = {0};
    pair_open_json(&p, json);
    char text[48], conn[16] = "pg", db[16] = "erp", pos[32] = "0/16B3748";
    siphon_value_t row[3];
    for (int n = 0; n <= 40; n++) {
        for (int i = 0; i < n; i++)
            text[i] = (char)('a' + (i * 7 + n) % 26);
        row[0] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = n};
        row[1] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {text, (size_t)n}};
        row[2] = row[1];
        row[2].u.s.len = (size_t)(40 - n);
        siphon_avro_event_t ev = {.op = 'u', .after = row, .before = row, .event_id = "e1",
                                  .source = {.connector = conn, .db = db, .schema = "public",
                                             .table = "t", .pos = pos, .txid = 7,
                                             .commit_ts_us = 1000}};
        /* the same source three times, then changed in place, field by field */
        compare_event(&p, &ev, row, &t);
        compare_event(&p, &ev, row, &t);
        switch (n % 8) {
        case 0: pos[strlen(pos) - 1] = (char)('0' + n % 10); break;
        case 1: snprintf(conn, sizeof(conn), "c%d", n); break;
        case 2: db[0] = (char)('a' + n % 26); break;
        case 3: ev.source.txid = (uint64_t)n % 3; break; /* 0: null */
        case 4: ev.source.commit_ts_us = -n; break;
        case 5: ev.source.snapshot = 1; break;
        case 6: ev.source.connector = NULL; break; /* written as "" */
        default: ev.source.table = "u"; break;
        }
        compare_event(&p, &ev, row, &t);
        compare_event(&p, &ev, row, &t);
    }
    assert_int_equal(t.same_bytes, 41 * 4);
    assert_int_equal(t.key_same, 41 * 4);
    pair_close(&p);
}

/* An envelope field the encoder has no input for (a field added to the envelope) is null. */
static void test_unknown_envelope_field(void **state)
{
    (void)state;
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"Env\",\"fields\":["
        "{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Tx\","
        "\"fields\":[{\"name\":\"id\",\"type\":\"string\"}]}],\"default\":null},"
        "{\"name\":\"op\",\"type\":\"string\"},"
        "{\"name\":\"source\",\"type\":{\"type\":\"record\",\"name\":\"Src\",\"fields\":["
        "{\"name\":\"txid\",\"type\":[\"null\",\"long\"]},{\"name\":\"extra\",\"type\":[\"null\",\"int\"]},"
        "{\"name\":\"table\",\"type\":\"string\"}]}},"
        "{\"name\":\"event_id\",\"type\":\"string\"}]}";
    siphon_binenc_t *enc = NULL;
    char err[512] = "";
    assert_int_equal(siphon_binenc_new_json(&enc, json, strlen(json), err, sizeof(err)), 0);
    siphon_avro_event_t ev = {.op = 'r', .source = {.table = "t1", .txid = 5}, .event_id = "e"};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_binenc_write_event(enc, &ev, NULL, 0, &out, err, sizeof(err)), 0);
    static const uint8_t want[] = {0x00, 0x02, 'r', 0x02, 0x0a, 0x00, 0x04, 't', '1', 0x02, 'e'};
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    /* and a record written from nested inputs */
    siphon_value_t id = {.type = SIPHON_V_TEXT, .u.s = {"x", 1}};
    siphon_binenc_in_t tx[1] = {{.kind = SIPHON_BINENC_VALUE, .u.value = &id}};
    siphon_value_t op = {.type = SIPHON_V_TEXT, .u.s = {"c", 1}};
    siphon_value_t tab = {.type = SIPHON_V_TEXT, .u.s = {"t", 1}};
    siphon_binenc_in_t src[3] = {{0}, {0}, {.kind = SIPHON_BINENC_VALUE, .u.value = &tab}};
    siphon_binenc_in_t in[4] = {{.kind = SIPHON_BINENC_RECORD, .u.rec = tx},
                                {.kind = SIPHON_BINENC_VALUE, .u.value = &op},
                                {.kind = SIPHON_BINENC_RECORD, .u.rec = src},
                                {.kind = SIPHON_BINENC_VALUE, .u.value = &op}};
    siphon_buf_reset(&out);
    assert_int_equal(siphon_binenc_write(enc, in, &out, err, sizeof(err)), 0);
    static const uint8_t want2[] = {0x02, 0x02, 'x', 0x02, 'c', 0x00, 0x00, 0x02, 't', 0x02, 'c'};
    assert_int_equal(out.len, sizeof(want2));
    assert_memory_equal(out.data, want2, sizeof(want2));
    /* an extra input for a root field the event struct does not describe */
    siphon_binenc_extra_t extra = {siphon_binenc_field_index(enc, "transaction"),
                                   {.kind = SIPHON_BINENC_RECORD, .u.rec = tx}};
    assert_int_equal(extra.field, 0);
    siphon_buf_reset(&out);
    assert_int_equal(siphon_binenc_write_event(enc, &ev, &extra, 1, &out, err, sizeof(err)), 0);
    static const uint8_t want3[] = {0x02, 0x02, 'x', 0x02, 'r', 0x02, 0x0a, 0x00,
                                    0x04, 't', '1', 0x02, 'e'};
    assert_int_equal(out.len, sizeof(want3));
    assert_memory_equal(out.data, want3, sizeof(want3));
    extra.field = 4;
    assert_int_equal(siphon_binenc_write_event(enc, &ev, &extra, 1, &out, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(out.len, sizeof(want3));
    /* a required field nobody fills is an error naming it */
    in[3].kind = SIPHON_BINENC_NULL;
    assert_int_equal(siphon_binenc_write(enc, in, &out, err, sizeof(err)), SIPHON_ECONVERT);
    assert_string_equal(err, "field 'event_id': cannot write null as string: the field is not "
                             "nullable");
    siphon_buf_free(&out);
    siphon_binenc_destroy(enc);
}

int avro_test_binenc(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_golden_events),
        cmocka_unit_test(test_random_golden_schema),
        cmocka_unit_test(test_random_canonical_schemas),
        cmocka_unit_test(test_random_every_type),
        cmocka_unit_test(test_unknown_envelope_field),
        cmocka_unit_test(test_decimal_i64_form),
        cmocka_unit_test(test_strings_and_source_cache),
    };
    return cmocka_run_group_tests_name("avro binenc", tests, NULL, NULL);
}
