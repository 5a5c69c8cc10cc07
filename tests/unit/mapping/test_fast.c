/*
 * test_fast.c - the mapping's fast paths against the general ones they stand in for: implied
 * decimals of an integer (and an integer into a decimal field) as the int64 form of a decimal
 * (core/value.h) against the same transform followed by another, which keeps the digits form,
 * at the edges of int64 and of the field's precision and scale, through the field check and
 * the Avro encoder; Windows-1252 text that is pure ASCII (not converted) and not (converted,
 * ASCII runs eight bytes at a time); rtrim and trim eight spaces at a time; null_if on
 * integers. The mappings are written into a temporary folder per test.
 */
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"
#include "test_mapping.h"

/* ---- a temporary mapping folder ---- */

typedef struct tmpdir {
    char root[64], maps[96], schemas[96];
} tmpdir_t;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void tmp_open(tmpdir_t *t)
{
    snprintf(t->root, sizeof(t->root), "/tmp/siphon-map-fast-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->maps, sizeof(t->maps), "%s/mappings", t->root);
    snprintf(t->schemas, sizeof(t->schemas), "%s/schemas", t->root);
    assert_int_equal(mkdir(t->maps, 0700), 0);
    assert_int_equal(mkdir(t->schemas, 0700), 0);
}

static void tmp_close(tmpdir_t *t)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
    assert_int_equal(system(cmd), 0);
}

/* Entity `name` v1 from public.t: key id, and one field `v` of Avro type `vtype` fed by
 * `value` (a mapping's field value, YAML). */
static void add_mapping(tmpdir_t *t, const char *name, const char *charset, const char *vtype,
                        const char *value)
{
    char text[2048], file[128];
    snprintf(text, sizeof(text),
             "entity: %s\nversion: 1\nsource:\n  table: public.t\n%s%s%s"
             "key: id\nfields:\n  id: id\n  v: %s\n",
             name, charset ? "  charset: " : "", charset ? charset : "", charset ? "\n" : "",
             value);
    snprintf(file, sizeof(file), "%s.yaml", name);
    write_file(t->maps, file, text);
    snprintf(text, sizeof(text),
             "{\"type\": \"record\", \"name\": \"R_%s\", \"namespace\": \"siphon.test\", "
             "\"doc\": \"%s\", \"fields\": [{\"name\": \"id\", \"type\": \"long\", \"doc\": "
             "\"Key.\"}, {\"name\": \"v\", \"type\": %s, \"doc\": \"v\"}]}\n",
             name, name, vtype);
    snprintf(file, sizeof(file), "%s.v1.avsc", name);
    write_file(t->schemas, file, text);
}

static siphon_mapset_t *load(tmpdir_t *t, siphon_relation_t *rel)
{
    char errbuf[1024];
    siphon_mapset_t *ms = NULL;
    if (siphon_mapset_load(&ms, t->maps, t->schemas, errbuf, sizeof(errbuf)) != 0)
        fail_msg("loading the mappings failed: %s", errbuf);
    if (siphon_mapset_bind(ms, rel, errbuf, sizeof(errbuf)) != 0)
        fail_msg("binding failed: %s", errbuf);
    return ms;
}

/* What each mapping made of the last change, by entity name. */
#define MAXOUT 16
typedef struct outs {
    int n;
    const char *entity[MAXOUT];
    siphon_value_t v[MAXOUT];     /* field v of the new image (copied) */
    char reason[MAXOUT][512];     /* the dead letter's reason, "" when mapped */
    siphon_buf_t enc[MAXOUT];     /* the event encoded by the stream, after its header */
} outs_t;

static int collect(const siphon_mapped_t *m, void *opaque)
{
    outs_t *o = opaque;
    char err[512];
    assert_true(o->n < MAXOUT);
    int i = o->n++;
    o->entity[i] = siphon_mapping_entity(m->map);
    o->reason[i][0] = '\0';
    siphon_buf_reset(&o->enc[i]);
    if (m->error) {
        snprintf(o->reason[i], sizeof(o->reason[i]), "%s", m->error->reason);
        return 0;
    }
    o->v[i] = m->after[1];
    siphon_avro_event_t ev = {.op = m->op, .after = m->after, .event_id = "e"};
    if (siphon_avro_stream_encode_value(siphon_mapping_stream(m->map), &ev, &o->enc[i], err,
                                        sizeof(err)) < 0)
        fail_msg("%s: encoding failed: %s", o->entity[i], err);
    return 0;
}

static int find(const outs_t *o, const char *entity)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->entity[i], entity) == 0)
            return i;
    fail_msg("no output of %s", entity);
    return -1;
}

static siphon_column_t t_cols[] = {
    {"id", 20, "bigint", SIPHON_V_INT, -1, 1, 1},
    {"i", 20, "bigint", SIPHON_V_INT, -1, 0, 0},
    {"s", 1042, "bpchar", SIPHON_V_RAWTEXT, -1, 0, 0},
};
static siphon_relation_t t_rel = {17001, 7001, "public", "t", 3, t_cols};

static void apply_row(siphon_mapset_t *ms, outs_t *o, int64_t id, int64_t i, const char *s,
                      size_t slen)
{
    char errbuf[1024];
    siphon_value_t vals[3] = {{.type = SIPHON_V_INT, .u.i = id}, {.type = SIPHON_V_INT, .u.i = i},
                              {.type = SIPHON_V_RAWTEXT}};
    vals[2].u.s.ptr = s;
    vals[2].u.s.len = slen;
    siphon_row_t row = {3, vals};
    siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &t_rel,
                           .after = &row, .txid = 1, .database = "db"};
    o->n = 0;
    if (siphon_mapset_apply(ms, &chg, errbuf, sizeof(errbuf), collect, o) != 0)
        fail_msg("apply failed: %s", errbuf);
}

/* Field v of mappings a_<name> (the fast path) and b_<name> (the general one): the same
 * value (or the same refusal) and the same bytes. Returns 1 when mapped, 0 when refused. */
static int same_outcome(const outs_t *o, const char *name, int64_t i, int a_i64)
{
    char an[64], bn[64];
    snprintf(an, sizeof(an), "a_%s", name);
    snprintf(bn, sizeof(bn), "b_%s", name);
    int a = find(o, an), b = find(o, bn);
    if (strcmp(o->reason[a], o->reason[b]) != 0)
        fail_msg("%s, %" PRId64 ": fast path '%s', general path '%s'", name, i, o->reason[a],
                 o->reason[b]);
    if (o->reason[a][0])
        return 0;
    const siphon_value_t *va = &o->v[a], *vb = &o->v[b];
    assert_int_equal(va->type, SIPHON_V_DECIMAL);
    assert_int_equal(vb->type, SIPHON_V_DECIMAL);
    assert_int_equal(siphon_value_dec_is_i64(va), a_i64);
    assert_false(siphon_value_dec_is_i64(vb));
    assert_true(siphon_value_equal(va, vb));
    char fa[64], fb[64];
    siphon_value_format(va, fa, sizeof(fa));
    siphon_value_format(vb, fb, sizeof(fb));
    assert_string_equal(fa, fb);
    /* the same record bytes (each stream has its own fingerprint in the header) */
    assert_int_equal(o->enc[a].len, o->enc[b].len);
    assert_memory_equal(o->enc[a].data + SIPHON_AVRO_SOE_HEADER_LEN,
                        o->enc[b].data + SIPHON_AVRO_SOE_HEADER_LEN,
                        o->enc[a].len - SIPHON_AVRO_SOE_HEADER_LEN);
    return 1;
}

void tm_test_fast_decimals(void **state)
{
    (void)state;
#define DEC(p, s) "{\"type\": \"bytes\", \"logicalType\": \"decimal\", \"precision\": " #p \
                  ", \"scale\": " #s "}"
#define IMPLIED(n) "{column: i, transforms: [{implied_decimals: " #n "}]}"
#define IMPLIED_THEN(n) "{column: i, transforms: [{implied_decimals: " #n "}, {default: 0}]}"
    static const struct {
        const char *name, *type, *fast, *general;
    } cases[] = {
        /* implied decimals last: the int64 form; followed by a default: digits */
        {"p18", DEC(18, 2), IMPLIED(2), IMPLIED_THEN(2)},
        {"p19", DEC(19, 2), IMPLIED(2), IMPLIED_THEN(2)},
        {"p20", DEC(20, 4), IMPLIED(2), IMPLIED_THEN(2)},
        {"p5", DEC(5, 2), IMPLIED(2), IMPLIED_THEN(2)},
        /* more places than the field keeps: only zeros may be dropped */
        {"drop", DEC(9, 2), IMPLIED(4), IMPLIED_THEN(4)},
        {"fixed", "{\"type\": \"fixed\", \"name\": \"F8\", \"size\": 8, \"logicalType\": "
                  "\"decimal\", \"precision\": 18, \"scale\": 3}",
         IMPLIED(1), IMPLIED_THEN(1)},
        {"null", "[\"null\", " DEC(12, 3) "]", IMPLIED(3), IMPLIED_THEN(3)},
        /* an integer column into a decimal field as it is */
        {"int", DEC(7, 0), "i", IMPLIED_THEN(0)},
    };
#undef DEC
#undef IMPLIED
#undef IMPLIED_THEN
    const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
    tmpdir_t t;
    tmp_open(&t);
    for (int c = 0; c < ncases; c++) {
        char an[64], bn[64];
        snprintf(an, sizeof(an), "a_%s", cases[c].name);
        snprintf(bn, sizeof(bn), "b_%s", cases[c].name);
        add_mapping(&t, an, NULL, cases[c].type, cases[c].fast);
        add_mapping(&t, bn, NULL, cases[c].type, cases[c].general);
    }
    siphon_mapset_t *ms = load(&t, &t_rel);

    /* around each power of ten (and a nonzero place below the field's scale, for "drop"),
     * either sign, and the ends of int64 */
    int64_t vals[160] = {0, INT64_MAX, -INT64_MAX, INT64_MIN};
    int nv = 4;
    for (int64_t pw = 10; pw <= 1000000000000000000LL; pw *= 10) {
        const int64_t near[4] = {pw - 1, pw, pw + 1, pw * 7 + 50};
        for (int j = 0; j < 4; j++) {
            vals[nv++] = near[j];
            vals[nv++] = -near[j];
        }
        if (pw > INT64_MAX / 10)
            break;
    }

    outs_t o;
    memset(&o, 0, sizeof(o));
    int mapped = 0, refused = 0;
    for (int i = 0; i < nv; i++) {
        apply_row(ms, &o, i, vals[i], "x", 1);
        assert_int_equal(o.n, 2 * ncases);
        for (int c = 0; c < ncases; c++) {
            if (same_outcome(&o, cases[c].name, vals[i], 1))
                mapped++;
            else
                refused++;
        }
    }
    print_message("int64-form decimals from mappings: %d the same, %d refused the same way\n",
                  mapped, refused);
    assert_true(mapped > 300);
    assert_true(refused > 100);

    /* the refusals name the number as the digits path did */
    apply_row(ms, &o, 1, 100000, "x", 1);
    assert_string_equal(o.reason[find(&o, "a_p5")],
                        "value 1000.00 does not fit decimal(5,2): 4 digits before the point, at "
                        "most 3");
    apply_row(ms, &o, 1, 12345, "x", 1);
    assert_string_equal(o.reason[find(&o, "a_drop")],
                        "value 1.2345 has 4 decimal places, more than decimal(9,2) keeps (it is "
                        "never rounded)");
    apply_row(ms, &o, 1, 12300, "x", 1);
    assert_string_equal(o.reason[find(&o, "a_drop")], "");
    for (int i = 0; i < MAXOUT; i++)
        siphon_buf_free(&o.enc[i]);
    siphon_mapset_destroy(ms);
    tmp_close(&t);
}

/* ---- text ---- */

/* Windows-1252 bytes 0xA0..0xFF are U+00A0..U+00FF: two bytes of UTF-8. */
static size_t ref_utf8(const unsigned char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            out[k++] = (char)s[i];
        } else {
            out[k++] = (char)(0xC0 | (s[i] >> 6));
            out[k++] = (char)(0x80 | (s[i] & 0x3F));
        }
    }
    return k;
}

static int trimmed(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

static int is_text_of(const outs_t *o, const char *entity, const char *want, size_t n)
{
    int i = find(o, entity);
    assert_string_equal(o->reason[i], "");
    const siphon_value_t *v = &o->v[i];
    assert_int_equal(v->type, SIPHON_V_TEXT);
    if (v->u.s.len != n || memcmp(v->u.s.ptr, want, n) != 0)
        fail_msg("%s: got '%.*s' (%zu bytes), expected '%.*s' (%zu bytes)", entity,
                 (int)v->u.s.len, v->u.s.ptr, v->u.s.len, (int)n, want, n);
    return 1;
}

void tm_test_fast_text(void **state)
{
    (void)state;
    tmpdir_t t;
    tmp_open(&t);
    add_mapping(&t, "conv", "windows-1252", "\"string\"", "s");
    add_mapping(&t, "rtrim", "windows-1252", "\"string\"", "{column: s, transforms: [rtrim]}");
    add_mapping(&t, "trim", "windows-1252", "\"string\"", "{column: s, transforms: [trim]}");
    add_mapping(&t, "nullif", NULL, "[\"null\", \"long\"]",
                "{column: i, transforms: [{null_if: [0, 7]}]}");
    siphon_mapset_t *ms = load(&t, &t_rel);
    outs_t o;
    memset(&o, 0, sizeof(o));
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    unsigned char s[64];
    char want[160];
    int nonascii = 0, checked = 0;
    for (int it = 0; it < 3000; it++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t body = (size_t)(rng % 33), pad = (size_t)((rng >> 8) % 21), lead = (rng >> 16) % 3;
        int high = (rng >> 20) % 3 == 0; /* a third with Latin-1 letters somewhere */
        size_t n = 0;
        for (size_t k = 0; k < lead; k++)
            s[n++] = (rng >> (24 + k)) & 1 ? ' ' : '\t';
        for (size_t k = 0; k < body; k++) {
            uint64_t r = rng >> ((k * 5) % 50);
            s[n++] = high && r % 7 == 0 ? (unsigned char)(0xA0 + r % 0x60)
                                        : (unsigned char)('!' + r % 90);
        }
        for (size_t k = 0; k < pad; k++)
            s[n++] = k % 9 == 8 ? '\t' : ' ';
        int ascii = 1;
        for (size_t k = 0; k < n; k++)
            ascii &= s[k] < 0x80;
        nonascii += !ascii;
        apply_row(ms, &o, it, it % 9, (const char *)s, n);
        size_t wn = ref_utf8(s, n, want);
        checked += is_text_of(&o, "conv", want, wn);
        size_t r = wn;
        while (r > 0 && trimmed(want[r - 1]))
            r--;
        checked += is_text_of(&o, "rtrim", want, r);
        size_t l = 0;
        while (l < r && (want[l] == ' ' || want[l] == '\t'))
            l++;
        checked += is_text_of(&o, "trim", want + l, r - l);
        int ni = find(&o, "nullif");
        if (it % 9 == 0 || it % 9 == 7) {
            assert_int_equal(o.v[ni].type, SIPHON_V_NULL);
        } else {
            assert_int_equal(o.v[ni].type, SIPHON_V_INT);
            assert_int_equal(o.v[ni].u.i, it % 9);
        }
    }
    assert_int_equal(checked, 3 * 3000);
    assert_true(nonascii > 500);
    assert_true(nonascii < 2500);
    /* a byte Windows-1252 does not have, after a run of ASCII: refused where it is */
    apply_row(ms, &o, 1, 1, "ABCDEFGHIJ\x81KL", 13);
    assert_string_equal(o.reason[find(&o, "conv")],
                        "byte 0x81 at offset 10 is not a character of windows-1252");
    for (int i = 0; i < MAXOUT; i++)
        siphon_buf_free(&o.enc[i]);
    siphon_mapset_destroy(ms);
    tmp_close(&t);
}
