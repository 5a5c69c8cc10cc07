/*
 * mapping_xform.c - the transform catalogue: what each transform accepts and yields (static
 * typing, used at load with column types unknown and again at bind with the real ones), and
 * what it does to a value (evaluation, per row).
 *
 * Every transform takes the current value of a field (several values for the three that
 * combine a field's inputs: concat, coalesce, timestamp) and leaves one value. A null passes
 * through every transform unchanged except default, coalesce and redact; concat and timestamp
 * give null when a part is null (SQL's rule for ||). Text is compared the way SQL compares
 * CHAR: trailing spaces do not count ('O ' is 'O'), in null_if, lookup and bool.
 *
 * No floating point anywhere: amounts stay decimal digits with a scale from the column to the
 * encoder, dates are day numbers, times and timestamps integer microseconds.
 *
 * Failures are conversion errors (SIPHON_ECONVERT) with the reason in x->why, naming the value
 * (shortened, non-printable bytes as \xNN) and what was expected; mapping.c adds the mapping
 * file:line:column, field and column, and turns them into dead letters.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "mapping/mapping_int.h"

static const struct {
    const char *name;
    int reduces;
} xinfo[MAP_X_COUNT] = {
    [MAP_X_TRIM] = {"trim", 0},
    [MAP_X_RTRIM] = {"rtrim", 0},
    [MAP_X_LTRIM] = {"ltrim", 0},
    [MAP_X_UPPER] = {"upper", 0},
    [MAP_X_LOWER] = {"lower", 0},
    [MAP_X_STRIP_ZEROS] = {"strip_leading_zeros", 0},
    [MAP_X_PAD] = {"pad", 0},
    [MAP_X_TRUNCATE] = {"truncate", 0},
    [MAP_X_NULL_IF] = {"null_if", 0},
    [MAP_X_DEFAULT] = {"default", 0},
    [MAP_X_COALESCE] = {"coalesce", 1},
    [MAP_X_CONCAT] = {"concat", 1},
    [MAP_X_DATE_YYYYMMDD] = {"date_yyyymmdd", 0},
    [MAP_X_DATE_YYMMDD] = {"date_yymmdd", 0},
    [MAP_X_DATE_CYYDDD] = {"date_cyyddd", 0},
    [MAP_X_DATE_DAYS] = {"date_days", 0},
    [MAP_X_DATE_FORMAT] = {"date_format", 0},
    [MAP_X_TIME_HHMMSS] = {"time_hhmmss", 0},
    [MAP_X_TIMESTAMP] = {"timestamp", 1},
    [MAP_X_IMPLIED_DEC] = {"implied_decimals", 0},
    [MAP_X_NUMBER] = {"number", 0},
    [MAP_X_BOOL] = {"bool", 0},
    [MAP_X_LOOKUP] = {"lookup", 0},
    [MAP_X_CHARSET] = {"charset", 0},
    [MAP_X_HASH] = {"hash", 0},
    [MAP_X_REDACT] = {"redact", 0},
};

const char *siphon_mapping__op_name(map_xk_t k)
{
    return (unsigned)k < MAP_X_COUNT ? xinfo[k].name : "?";
}

int siphon_mapping__op_find(const char *s)
{
    for (int i = 0; i < MAP_X_COUNT; i++)
        if (strcmp(xinfo[i].name, s) == 0)
            return i;
    return -1;
}

size_t siphon_mapping__fmt_i64(char *buf, int64_t v)
{
    /* two digits at a time from a table: half the divisions of the digit-by-digit loop */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[24];
    size_t n = sizeof(tmp), o = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        n -= 2;
        memcpy(tmp + n, pairs + 2 * r, 2);
    }
    if (u >= 10) {
        n -= 2;
        memcpy(tmp + n, pairs + 2 * u, 2);
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0)
        buf[o++] = '-';
    memcpy(buf + o, tmp + n, sizeof(tmp) - n);
    return o + sizeof(tmp) - n;
}

/* ---- small helpers ---- */

static int is_text(siphon_vtype_t t) { return t == SIPHON_V_TEXT || t == SIPHON_V_RAWTEXT; }

static size_t rtrim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    return n;
}

/* Equal as SQL compares CHAR: trailing spaces do not count. */
static int char_eq(const char *a, size_t na, const char *b, size_t nb)
{
    na = rtrim_len(a, na);
    nb = rtrim_len(b, nb);
    return na == nb && memcmp(a, b, na) == 0;
}

void siphon_mapping__value_snippet(const siphon_value_t *v, char *buf, size_t size)
{
    char tmp[96];
    switch (v->type) {
    case SIPHON_V_TEXT:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_BYTES:
    case SIPHON_V_JSON: {
        size_t o = 0;
        tmp[o++] = '\'';
        for (size_t i = 0; i < v->u.s.len && o < 60; i++) {
            unsigned char c = (unsigned char)v->u.s.ptr[i];
            if (c >= 0x20 && c < 0x7f && c != '\'')
                tmp[o++] = (char)c;
            else if (c >= 0x80 && v->type == SIPHON_V_TEXT)
                tmp[o++] = (char)c; /* UTF-8 */
            else
                o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "\\x%02x", c);
        }
        if (v->u.s.len > 0 && o >= 60)
            o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "...");
        tmp[o++] = '\'';
        tmp[o] = '\0';
        snprintf(buf, size, "%s", tmp);
        return;
    }
    case SIPHON_V_NULL:
        snprintf(buf, size, "null");
        return;
    default:
        siphon_value_format(v, tmp, sizeof(tmp));
        snprintf(buf, size, "%s", tmp);
    }
}

static int fail(map_eval_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(map_eval_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, x->whysize, fmt, ap);
    va_end(ap);
    return SIPHON_ECONVERT;
}

static int nomem(map_eval_t *x)
{
    snprintf(x->why, x->whysize, "out of memory");
    return SIPHON_ENOMEM;
}

size_t siphon_mapping__utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += len;
    }
    return n;
}

/* ---- constants ---- */

static int parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* "YYYY-MM-DD" -> days. */
static int parse_iso_date(const char *s, size_t n, int32_t *days)
{
    int y, m, d, k = 0;
    if (n < 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &k) != 3 || k != 10 ||
        !siphon_mapping__civil_valid(y, m, d))
        return -1;
    *days = (int32_t)siphon_mapping__days_from_civil(y, (unsigned)m, (unsigned)d);
    return 10 == (int)n ? 0 : 10;
}

/* "HH:MM:SS[.ffffff]" -> microseconds; the bytes consumed, or -1. */
static int parse_iso_time(const char *s, size_t n, int64_t *us)
{
    int h, mi, se, k = 0;
    if (n < 8 || sscanf(s, "%2d:%2d:%2d%n", &h, &mi, &se, &k) != 3 || k != 8 || h > 23 ||
        mi > 59 || se > 59)
        return -1;
    size_t i = 8;
    int64_t frac = 0;
    int digits = 0;
    if (i < n && s[i] == '.') {
        for (i++; i < n && isdigit((unsigned char)s[i]); i++, digits++)
            if (digits < 6)
                frac = frac * 10 + (s[i] - '0');
        if (digits == 0)
            return -1;
        for (; digits < 6; digits++)
            frac *= 10;
    }
    *us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000 + frac;
    return (int)i;
}

int siphon_mapping__const_as(map_const_t *c, siphon_vtype_t vt, siphon_arena_t *arena,
                             const char **why)
{
    uint32_t bit = 1u << vt;
    siphon_value_t *v = &c->as[vt];
    *why = "";
    if (c->tried & bit)
        goto done;
    c->tried |= bit;
    memset(v, 0, sizeof(*v));
    if (c->is_null) {
        v->type = SIPHON_V_NULL;
        c->ok |= bit;
        goto done;
    }
    v->type = vt;
    switch (vt) {
    case SIPHON_V_TEXT:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_BYTES:
    case SIPHON_V_JSON:
        v->u.s.ptr = c->text;
        v->u.s.len = c->len;
        c->ok |= bit;
        break;
    case SIPHON_V_INT:
        if (parse_int64(c->text, c->len, &v->u.i) == 0)
            c->ok |= bit;
        break;
    case SIPHON_V_DECIMAL: {
        char *d = siphon_arena_alloc(arena, c->len + 2);
        if (!d)
            return SIPHON_ENOMEM;
        if (siphon_value_decimal_parse(v, c->text, c->len, d, c->len + 2) == 0)
            c->ok |= bit;
        break;
    }
    case SIPHON_V_FLOAT: {
        char *end = NULL;
        errno = 0;
        v->u.f = strtod(c->text, &end);
        if (c->len > 0 && end == c->text + c->len && errno == 0)
            c->ok |= bit;
        break;
    }
    case SIPHON_V_BOOL:
        if (!strcasecmp(c->text, "true") || !strcasecmp(c->text, "false")) {
            v->u.b = !strcasecmp(c->text, "true");
            c->ok |= bit;
        }
        break;
    case SIPHON_V_DATE:
        if (parse_iso_date(c->text, c->len, &v->u.date) == 0)
            c->ok |= bit;
        break;
    case SIPHON_V_TIME:
        if (parse_iso_time(c->text, c->len, &v->u.time_us) == (int)c->len)
            c->ok |= bit;
        break;
    case SIPHON_V_TIMESTAMP: {
        int32_t days;
        int64_t us;
        int k = parse_iso_date(c->text, c->len, &days);
        if (k != 10 || (c->text[10] != ' ' && c->text[10] != 'T'))
            break;
        int t = parse_iso_time(c->text + 11, c->len - 11, &us);
        if (t < 0)
            break;
        const char *rest = c->text + 11 + t;
        int32_t off = 0;
        if (*rest == 'Z') {
            rest++;
        } else if (*rest == '+' || *rest == '-') {
            int hh, mm = 0, n2 = 0;
            if (sscanf(rest + 1, "%2d:%2d%n", &hh, &mm, &n2) < 1)
                break;
            if (n2 == 0)
                n2 = 2;
            off = (hh * 3600 + mm * 60) * (*rest == '-' ? -1 : 1);
            rest += 1 + n2;
        }
        if (*rest)
            break;
        v->u.ts.us = (int64_t)days * 86400000000LL + us - (int64_t)off * 1000000;
        v->u.ts.tz = 1;
        c->ok |= bit;
        break;
    }
    case SIPHON_V_UUID: {
        int k = 0;
        for (size_t i = 0; i < c->len && k <= 32; i++) {
            char ch = c->text[i];
            if (ch == '-')
                continue;
            if (!isxdigit((unsigned char)ch)) {
                k = 99;
                break;
            }
            int h = isdigit((unsigned char)ch) ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
            v->u.uuid[k / 2] = (uint8_t)(k % 2 ? v->u.uuid[k / 2] | h : h << 4);
            k++;
        }
        if (k == 32)
            c->ok |= bit;
        break;
    }
    default:
        break;
    }
done:
    if (c->ok & bit)
        return 0;
    switch (vt) {
    case SIPHON_V_INT: *why = "a whole number"; break;
    case SIPHON_V_DECIMAL: *why = "a number such as 12.50"; break;
    case SIPHON_V_FLOAT: *why = "a number"; break;
    case SIPHON_V_BOOL: *why = "true or false"; break;
    case SIPHON_V_DATE: *why = "a date written YYYY-MM-DD"; break;
    case SIPHON_V_TIME: *why = "a time written HH:MM:SS"; break;
    case SIPHON_V_TIMESTAMP: *why = "a timestamp written YYYY-MM-DD HH:MM:SS[Z]"; break;
    case SIPHON_V_UUID: *why = "a uuid"; break;
    default: *why = "a value of that type"; break;
    }
    return SIPHON_EINVAL;
}

/* ---- charsets ---- */

int siphon_mapping__charset_load(map_charset_t **out, const char *name, char *why,
                                 size_t whysize)
{
    map_charset_t *cs = calloc(1, sizeof(*cs));
    if (!cs || !(cs->name = strdup(name))) {
        free(cs);
        return SIPHON_ENOMEM;
    }
    cs->cd = (iconv_t)-1;
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1) {
        snprintf(why, whysize,
                 "unknown charset '%.64s' (expected a name iconv knows, such as windows-1252, "
                 "iso-8859-1, iso-8859-15, cp850, cp437: see `iconv --list`)",
                 name);
        siphon_mapping__charset_free(cs);
        return SIPHON_EINVAL;
    }
    cs->single_byte = 1;
    for (int b = 0; b < 256; b++) {
        char in[1] = {(char)b}, outb[8];
        char *ip = in, *op = outb;
        size_t il = 1, ol = sizeof(outb);
        iconv(cd, NULL, NULL, NULL, NULL);
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        if (r == (size_t)-1 && errno == EINVAL) {
            cs->single_byte = 0; /* a lead byte of a multi-byte charset */
            break;
        }
        size_t n = (size_t)(op - outb);
        if (r == (size_t)-1 || il != 0 || n == 0 || n > 4) {
            cs->len[b] = 0;
            continue;
        }
        cs->len[b] = (uint8_t)n;
        memcpy(cs->utf8[b], outb, n);
    }
    cs->ascii_same = cs->single_byte;
    for (int b = 0; b < 0x80 && cs->ascii_same; b++)
        cs->ascii_same = cs->len[b] == 1 && cs->utf8[b][0] == (uint8_t)b;
    if (cs->single_byte)
        iconv_close(cd);
    else
        cs->cd = cd;
    *out = cs;
    return 0;
}

void siphon_mapping__charset_free(map_charset_t *cs)
{
    if (!cs)
        return;
    if (cs->cd != (iconv_t)-1)
        iconv_close(cs->cd);
    free(cs->name);
    free(cs);
}

int siphon_mapping__charset_convert(const map_charset_t *cs, siphon_value_t *v, map_eval_t *x)
{
    const unsigned char *s = (const unsigned char *)v->u.s.ptr;
    size_t n = v->u.s.len;
    if (cs->single_byte) {
        /* ASCII runs are common in ERP text: when every byte is ASCII, the bytes are UTF-8.
         * Charsets whose ASCII half is ASCII (nearly all) are checked eight bytes at a time. */
        size_t i = 0;
        if (cs->ascii_same) {
            if (siphon_mapping__ascii(s, n)) {
                v->type = SIPHON_V_TEXT;
                return 0;
            }
            uint64_t w;
            while (i + 8 <= n && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ULL) == 0))
                i += 8;
            while (i < n && s[i] < 0x80)
                i++;
        } else {
            while (i < n && s[i] < 0x80 && cs->len[s[i]] == 1)
                i++;
        }
        if (i == n) {
            v->type = SIPHON_V_TEXT;
            return 0;
        }
        char *o = siphon_arena_alloc(x->row, n * 4 + 4);
        if (!o)
            return nomem(x);
        memcpy(o, s, i);
        size_t k = i;
        for (; i < n; i++) {
            uint64_t w;
            /* eight ASCII bytes at once (room: k <= 4 i, and i + 8 <= n) */
            while (cs->ascii_same && i + 8 <= n &&
                   (memcpy(&w, s + i, 8), (w & 0x8080808080808080ULL) == 0)) {
                memcpy(o + k, &w, 8);
                k += 8;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t l = cs->len[s[i]];
            if (!l)
                return fail(x, "byte 0x%02x at offset %zu is not a character of %s", s[i], i,
                            cs->name);
            /* a fixed 4-byte copy is one store (room: 4 bytes a character, plus 4) */
            memcpy(o + k, cs->utf8[s[i]], 4);
            k += l;
        }
        v->type = SIPHON_V_TEXT;
        v->u.s.ptr = o;
        v->u.s.len = k;
        return 0;
    }
    size_t cap = n * 4 + 4;
    char *o = siphon_arena_alloc(x->row, cap);
    if (!o)
        return nomem(x);
    char *ip = (char *)s, *op = o;
    size_t il = n, ol = cap;
    iconv(cs->cd, NULL, NULL, NULL, NULL);
    if (iconv(cs->cd, &ip, &il, &op, &ol) == (size_t)-1 ||
        iconv(cs->cd, NULL, NULL, &op, &ol) == (size_t)-1)
        return fail(x, "bytes at offset %zu are not valid %s (byte 0x%02x)", n - il, cs->name,
                    il ? (unsigned char)*ip : 0);
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = o;
    v->u.s.len = (size_t)(op - o);
    return 0;
}

/* ---- static typing ---- */

static const char *vt_name(siphon_vtype_t t)
{
    switch (t) {
    case SIPHON_V_RAWTEXT: return "raw text (a SQL_ASCII database)";
    case SIPHON_V_INT: return "integer";
    case SIPHON_V_DECIMAL: return "numeric";
    case SIPHON_V_FLOAT: return "floating point";
    case SIPHON_V_BOOL: return "boolean";
    case SIPHON_V_BYTES: return "binary";
    default: return siphon_vtype_name(t);
    }
}

static int accepts(siphon_vtype_t in, unsigned mask)
{
    return in == MAP_VT_ANY || (mask & (1u << in));
}

#define B(t) (1u << (t))
#define M_TEXT (B(SIPHON_V_TEXT) | B(SIPHON_V_RAWTEXT))

int siphon_mapping__op_type(map_op_t *op, const siphon_vtype_t *in, int n, siphon_arena_t *arena,
                            siphon_vtype_t *out, char *why, size_t whysize)
{
    const char *name = siphon_mapping__op_name(op->kind);
    siphon_vtype_t t = in[0];
    unsigned mask = 0;
    const char *expects = "";
    siphon_vtype_t res = t;
    const char *cwhy;

    if (n > 1 && !siphon_mapping__op_reduces(op->kind)) {
        snprintf(why, whysize,
                 "transform '%s' takes one value but the field has %d inputs here (expected "
                 "concat, coalesce or timestamp first to combine them, or the transform under "
                 "one of the columns)",
                 name, n);
        return SIPHON_EINVAL;
    }
    switch (op->kind) {
    case MAP_X_TRIM:
    case MAP_X_RTRIM:
    case MAP_X_LTRIM:
    case MAP_X_UPPER:
    case MAP_X_LOWER:
    case MAP_X_STRIP_ZEROS:
    case MAP_X_PAD:
    case MAP_X_TRUNCATE:
        mask = M_TEXT;
        expects = "text";
        break;
    case MAP_X_NULL_IF: {
        if (t == MAP_VT_ANY)
            break;
        int any = 0;
        for (int i = 0; i < op->a.null_if.n; i++) {
            int rc = siphon_mapping__const_as(&op->a.null_if.vals[i], t, arena, &cwhy);
            if (rc == SIPHON_ENOMEM)
                return rc;
            any |= rc == 0;
        }
        if (!any) {
            snprintf(why, whysize,
                     "none of the values of null_if can be a %s value (expected %s)",
                     vt_name(t), cwhy);
            return SIPHON_EINVAL;
        }
        break;
    }
    case MAP_X_DEFAULT:
        if (t == MAP_VT_ANY)
            break;
        if (siphon_mapping__const_as(op->a.def, t, arena, &cwhy) != 0) {
            snprintf(why, whysize, "default '%.40s' is not a valid %s value (expected %s)",
                     op->a.def->text, vt_name(t), cwhy);
            return SIPHON_EINVAL;
        }
        break;
    case MAP_X_COALESCE:
        res = MAP_VT_ANY;
        for (int i = 0; i < n; i++) {
            if (in[i] == MAP_VT_ANY)
                continue;
            if (res != MAP_VT_ANY && in[i] != res) {
                snprintf(why, whysize,
                         "coalesce combines values of one type, got %s and %s (expected "
                         "columns of one type, or transforms under the columns that make them "
                         "so)",
                         vt_name(res), vt_name(in[i]));
                return SIPHON_EINVAL;
            }
            res = in[i];
        }
        *out = res;
        return 0;
    case MAP_X_CONCAT:
        for (int i = 0; i < n; i++)
            if (in[i] == SIPHON_V_BYTES || in[i] == SIPHON_V_UUID) {
                snprintf(why, whysize, "concat joins text, numbers and dates, not %s values",
                         vt_name(in[i]));
                return SIPHON_EINVAL;
            }
        *out = SIPHON_V_TEXT;
        return 0;
    case MAP_X_DATE_YYYYMMDD:
    case MAP_X_DATE_YYMMDD:
    case MAP_X_DATE_CYYDDD:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL);
        expects = "an integer, numeric or text column";
        res = SIPHON_V_DATE;
        break;
    case MAP_X_DATE_DAYS:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL);
        expects = "a count of days: an integer, numeric or text column";
        res = SIPHON_V_DATE;
        break;
    case MAP_X_DATE_FORMAT:
        mask = M_TEXT;
        expects = "text";
        res = SIPHON_V_DATE;
        break;
    case MAP_X_TIME_HHMMSS:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL);
        expects = "an integer, numeric or text column";
        res = SIPHON_V_TIME;
        break;
    case MAP_X_TIMESTAMP:
        if (n > 2) {
            snprintf(why, whysize,
                     "timestamp combines a date and a time, but the field has %d inputs", n);
            return SIPHON_EINVAL;
        }
        if (!accepts(in[0], M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL) | B(SIPHON_V_DATE) |
                                (n == 1 ? B(SIPHON_V_TIMESTAMP) : 0))) {
            snprintf(why, whysize,
                     "timestamp takes a date (a date column, or YYYYMMDD as an integer or "
                     "text)%s, got %s",
                     n == 1 ? " or a timestamp without time zone" : "", vt_name(in[0]));
            return SIPHON_EINVAL;
        }
        if (n == 2 &&
            !accepts(in[1], M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL) | B(SIPHON_V_TIME))) {
            snprintf(why, whysize,
                     "timestamp takes a time second (a time column, or HHMMSS as an integer or "
                     "text), got %s",
                     vt_name(in[1]));
            return SIPHON_EINVAL;
        }
        *out = SIPHON_V_TIMESTAMP;
        return 0;
    case MAP_X_IMPLIED_DEC:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL);
        expects = "an integer, numeric or text column";
        res = SIPHON_V_DECIMAL;
        break;
    case MAP_X_NUMBER:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL);
        expects = "text (or a number)";
        res = SIPHON_V_DECIMAL;
        break;
    case MAP_X_BOOL:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_BOOL);
        expects = "text such as 'Y'/'N', an integer 1/0, or a boolean";
        res = SIPHON_V_BOOL;
        break;
    case MAP_X_LOOKUP:
        mask = M_TEXT | B(SIPHON_V_INT);
        expects = "a code: text or an integer";
        res = SIPHON_V_TEXT;
        break;
    case MAP_X_CHARSET:
        mask = M_TEXT | B(SIPHON_V_BYTES);
        expects = "raw text of a SQL_ASCII database, binary (bytea) or text";
        res = SIPHON_V_TEXT;
        break;
    case MAP_X_HASH:
        mask = M_TEXT | B(SIPHON_V_INT) | B(SIPHON_V_DECIMAL) | B(SIPHON_V_BYTES);
        expects = "text, a number or binary";
        res = SIPHON_V_TEXT;
        break;
    case MAP_X_REDACT:
        res = SIPHON_V_TEXT;
        break;
    default:
        snprintf(why, whysize, "unknown transform");
        return SIPHON_EINVAL;
    }
    if (mask && !accepts(t, mask)) {
        snprintf(why, whysize, "transform '%s' takes %s, got %s", name, expects, vt_name(t));
        return SIPHON_EINVAL;
    }
    if (mask == M_TEXT && res == t)
        res = t; /* text in, the same kind of text out */
    *out = res;
    return 0;
}

int siphon_mapping__op_ready(const siphon_mapping_t *map, const map_op_t *op, char *errbuf,
                             size_t errsize)
{
    if (op->kind != MAP_X_HASH || !op->a.hash.missing)
        return 0;
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "%s:%d:%d: environment variable %s, the key of transform hash, is not set "
                      "(expected the HMAC key in it: export %s=<secret> before running siphon; "
                      "keep it out of the mapping file)",
                      map->path, op->line, op->col, op->a.hash.env, op->a.hash.env);
}

void siphon_mapping__op_free(map_op_t *op)
{
    switch (op->kind) {
    case MAP_X_TIMESTAMP:
        if (op->a.ts.own)
            siphon_mapping__tz_free(op->a.ts.tz);
        break;
    case MAP_X_CHARSET:
        siphon_mapping__charset_free(op->a.charset.cs);
        break;
    case MAP_X_DATE_FORMAT:
        free(op->a.date_format.fmt);
        break;
    case MAP_X_HASH:
        free(op->a.hash.env);
        memset(&op->a.hash.key, 0, sizeof(op->a.hash.key));
        break;
    case MAP_X_LOOKUP:
        free(op->a.lookup.codes);
        break;
    case MAP_X_NULL_IF:
        free(op->a.null_if.vals);
        break;
    case MAP_X_BOOL:
        free(op->a.boolean.t);
        free(op->a.boolean.f);
        break;
    case MAP_X_DEFAULT:
        free(op->a.def);
        break;
    default:
        break;
    }
}

/* ---- evaluation helpers ---- */

/* The digits of a whole number held by v (INT, DECIMAL of scale 0, or text of digits with
 * surrounding spaces), as an int64. 0, or -1 when it is not one. */
static int whole_number(const siphon_value_t *v, int64_t *out)
{
    const char *s;
    size_t n;
    switch (v->type) {
    case SIPHON_V_INT:
        *out = v->u.i;
        return 0;
    case SIPHON_V_DECIMAL:
        if (v->u.dec.scale != 0)
            return -1;
        return parse_int64(v->u.dec.digits, v->u.dec.len, out);
    case SIPHON_V_TEXT:
    case SIPHON_V_RAWTEXT:
        s = v->u.s.ptr;
        n = v->u.s.len;
        while (n > 0 && s[0] == ' ') {
            s++;
            n--;
        }
        n = rtrim_len(s, n);
        if (n == 0 || n > 18)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (s[i] < '0' || s[i] > '9')
                return -1;
        return parse_int64(s, n, out);
    default:
        return -1;
    }
}

static const char *month_name(int m)
{
    static const char *const names[] = {"January", "February", "March",     "April",
                                        "May",     "June",     "July",      "August",
                                        "September", "October", "November", "December"};
    return m >= 1 && m <= 12 ? names[m - 1] : "?";
}

static int set_date(map_eval_t *x, siphon_value_t *v, int64_t y, int m, int d, const char *what)
{
    if (!siphon_mapping__civil_valid(y, m, d)) {
        char sn[80];
        siphon_mapping__value_snippet(v, sn, sizeof(sn));
        if (m < 1 || m > 12)
            return fail(x, "value %s is not a valid %s date: there is no month %d", sn, what, m);
        if (y < 1 || y > 9999)
            return fail(x, "value %s is not a valid %s date: year %" PRId64 " is out of range",
                        sn, what, y);
        return fail(x, "value %s is not a valid %s date: %s %" PRId64 " has no day %d", sn, what,
                    month_name(m), y, d);
    }
    v->type = SIPHON_V_DATE;
    v->u.date = (int32_t)siphon_mapping__days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

static int not_a(map_eval_t *x, const siphon_value_t *v, const char *what)
{
    char sn[80];
    siphon_mapping__value_snippet(v, sn, sizeof(sn));
    return fail(x, "value %s is not %s", sn, what);
}

static int op_date(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    int64_t i;
    if (whole_number(v, &i) != 0 || i < 0)
        return not_a(x, v,
                     op->kind == MAP_X_DATE_YYYYMMDD ? "a YYYYMMDD date"
                     : op->kind == MAP_X_DATE_YYMMDD ? "a YYMMDD date"
                                                     : "a CYYDDD (JD Edwards Julian) date");
    switch (op->kind) {
    case MAP_X_DATE_YYYYMMDD:
        return set_date(x, v, i / 10000, (int)(i / 100 % 100), (int)(i % 100), "YYYYMMDD");
    case MAP_X_DATE_YYMMDD: {
        if (i > 999999)
            return not_a(x, v, "a YYMMDD date");
        int yy = (int)(i / 10000);
        return set_date(x, v, yy < op->a.yymmdd.pivot ? 2000 + yy : 1900 + yy,
                        (int)(i / 100 % 100), (int)(i % 100), "YYMMDD");
    }
    default: { /* CYYDDD */
        if (i > 9999999)
            return not_a(x, v, "a CYYDDD (JD Edwards Julian) date");
        int64_t y = 1900 + (i / 100000) * 100 + (i / 1000) % 100;
        int ddd = (int)(i % 1000);
        int len = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 366 : 365;
        if (ddd < 1 || ddd > len) {
            char sn[80];
            siphon_mapping__value_snippet(v, sn, sizeof(sn));
            return fail(x, "value %s is not a valid CYYDDD date: %" PRId64 " has no day %d", sn,
                        y, ddd);
        }
        v->type = SIPHON_V_DATE;
        v->u.date = (int32_t)(siphon_mapping__days_from_civil(y, 1, 1) + ddd - 1);
        return 0;
    }
    }
}

/* date_format: %Y %y %m %d %j %b, %% and literal characters. */
static int op_date_format(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    const char *s = v->u.s.ptr, *f = op->a.date_format.fmt;
    size_t n = v->u.s.len, i = 0;
    static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
    int64_t y = -1;
    int m = -1, d = -1, doy = -1;
    while (n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    n = rtrim_len(s, n);
    for (; *f; f++) {
        if (*f != '%' || f[1] == '%') {
            if (*f == '%')
                f++;
            if (i >= n || s[i] != *f)
                goto bad;
            i++;
            continue;
        }
        char c = *++f;
        int maxd = c == 'Y' ? 4 : c == 'j' ? 3 : 2, mind = c == 'Y' || c == 'j' || c == 'y' ? maxd : 1;
        if (c == 'b') {
            if (i + 3 > n)
                goto bad;
            m = -1;
            for (int k = 0; k < 12; k++)
                if (strncasecmp(s + i, mon[k], 3) == 0)
                    m = k + 1;
            if (m < 0)
                goto bad;
            i += 3;
            continue;
        }
        int val = 0, nd = 0;
        while (i < n && nd < maxd && isdigit((unsigned char)s[i])) {
            val = val * 10 + (s[i++] - '0');
            nd++;
        }
        if (nd < mind)
            goto bad;
        switch (c) {
        case 'Y': y = val; break;
        case 'y': y = val < op->a.date_format.pivot ? 2000 + val : 1900 + val; break;
        case 'm': m = val; break;
        case 'd': d = val; break;
        case 'j': doy = val; break;
        default: goto bad;
        }
    }
    if (i != n || y < 0)
        goto bad;
    if (doy >= 0) {
        int len = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 366 : 365;
        if (doy < 1 || doy > len || y < 1 || y > 9999)
            goto bad;
        v->type = SIPHON_V_DATE;
        v->u.date = (int32_t)(siphon_mapping__days_from_civil(y, 1, 1) + doy - 1);
        return 0;
    }
    if (m < 0 || d < 0)
        goto bad;
    return set_date(x, v, y, m, d, op->a.date_format.fmt);
bad: {
    char sn[80];
    siphon_mapping__value_snippet(v, sn, sizeof(sn));
    return fail(x, "value %s does not match the date format '%s'", sn, op->a.date_format.fmt);
}
}

/* HHMMSS as an integer or digits, or HH:MM[:SS] text -> microseconds since midnight. */
static int time_of(const siphon_value_t *v, int64_t *us, map_eval_t *x)
{
    int64_t i;
    int h, m, s = 0;
    if (whole_number(v, &i) == 0) {
        if (i < 0 || i > 999999)
            goto bad;
        h = (int)(i / 10000);
        m = (int)(i / 100 % 100);
        s = (int)(i % 100);
    } else if (is_text(v->type)) {
        char buf[16];
        size_t n = rtrim_len(v->u.s.ptr, v->u.s.len);
        if (n >= sizeof(buf))
            goto bad;
        memcpy(buf, v->u.s.ptr, n);
        buf[n] = '\0';
        int k = 0;
        if (!((sscanf(buf, "%2d:%2d:%2d%n", &h, &m, &s, &k) == 3 && k == (int)n) ||
              (s = 0, sscanf(buf, "%2d:%2d%n", &h, &m, &k) == 2 && k == (int)n)))
            goto bad;
    } else {
        goto bad;
    }
    if (h > 23 || m > 59 || s > 59) {
        char sn[80];
        siphon_mapping__value_snippet(v, sn, sizeof(sn));
        return fail(x, "value %s is not a valid time of day (%02d:%02d:%02d)", sn, h, m, s);
    }
    *us = ((int64_t)h * 3600 + m * 60 + s) * 1000000;
    return 0;
bad:
    return not_a(x, v, "an HHMMSS time");
}

static int op_timestamp(const map_op_t *op, siphon_value_t *v, int n, map_eval_t *x)
{
    for (int i = 0; i < n; i++)
        if (v[i].type == SIPHON_V_NULL) {
            v[0].type = SIPHON_V_NULL;
            return 0;
        }
    int64_t local_us;
    if (v[0].type == SIPHON_V_TIMESTAMP) {
        if (v[0].u.ts.tz)
            return 0; /* already an instant */
        local_us = v[0].u.ts.us;
    } else {
        int32_t days;
        if (v[0].type == SIPHON_V_DATE) {
            days = v[0].u.date;
        } else {
            /* static: a map_op_t is ~600 bytes (the lookup table), not worth zeroing per row */
            static const map_op_t yyyymmdd = {.kind = MAP_X_DATE_YYYYMMDD};
            siphon_value_t tmp = v[0];
            int rc = op_date(&yyyymmdd, &tmp, x);
            if (rc)
                return rc;
            days = tmp.u.date;
        }
        int64_t tus = 0;
        if (n == 2) {
            if (v[1].type == SIPHON_V_TIME)
                tus = v[1].u.time_us;
            else if (time_of(&v[1], &tus, x) != 0)
                return SIPHON_ECONVERT;
        }
        local_us = (int64_t)days * 86400000000LL + tus;
    }
    int64_t secs = local_us >= 0 ? local_us / 1000000 : -((-local_us + 999999) / 1000000);
    int64_t frac = local_us - secs * 1000000;
    int64_t utc = op->a.ts.tz ? siphon_mapping__tz_to_utc(op->a.ts.tz, secs) : secs;
    v[0].type = SIPHON_V_TIMESTAMP;
    v[0].u.ts.us = utc * 1000000 + frac;
    v[0].u.ts.tz = 1;
    return 0;
}

/* Strip leading zeros from '-'?digits in place (keeps one). */
static void dec_norm(char *d, size_t *len)
{
    size_t s = d[0] == '-', f = s;
    while (f + 1 < *len && d[f] == '0')
        f++;
    if (f > s) {
        memmove(d + s, d + f, *len - f);
        *len -= f - s;
    }
    if (*len == 2 && d[0] == '-' && d[1] == '0') {
        d[0] = '0';
        *len = 1;
    }
}

/* implied_decimals: the same digits, n more places after the point. */
static int op_implied(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    if (v->type == SIPHON_V_DECIMAL) {
        v->u.dec.scale += op->a.implied.n;
        return 0;
    }
    const char *s;
    size_t n;
    if (v->type == SIPHON_V_INT && op->a.implied.i64) {
        /* the common case (an integer column into a decimal field): the int64 form, nothing
         * to format or allocate */
        siphon_value_set_dec_i64(v, v->u.i, op->a.implied.n);
        return 0;
    }
    if (v->type == SIPHON_V_INT) {
        /* an integer column with more transforms after this one: its digits */
        char *d = siphon_arena_alloc(x->row, 24);
        if (!d)
            return nomem(x);
        v->u.dec.len = siphon_mapping__fmt_i64(d, v->u.i);
        v->type = SIPHON_V_DECIMAL;
        v->u.dec.digits = d;
        v->u.dec.scale = op->a.implied.n;
        return 0;
    } else {
        s = v->u.s.ptr;
        n = v->u.s.len;
        while (n > 0 && s[0] == ' ') {
            s++;
            n--;
        }
        n = rtrim_len(s, n);
        if (n == 0) {
            v->type = SIPHON_V_NULL;
            return 0;
        }
        size_t i = s[0] == '-' || s[0] == '+';
        if (i == n)
            return not_a(x, v, "a whole number (digits with implied decimals)");
        for (; i < n; i++)
            if (!isdigit((unsigned char)s[i]))
                return not_a(x, v, "a whole number (digits with implied decimals)");
    }
    char *d = siphon_arena_alloc(x->row, n + 1);
    if (!d)
        return nomem(x);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '+')
            d[o++] = s[i];
    dec_norm(d, &o);
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.digits = d;
    v->u.dec.len = o;
    v->u.dec.scale = op->a.implied.n;
    return 0;
}

/* number: text -> exact decimal; spaces around, a sign in front or behind ("123.45-"), the
 * configured decimal point and digit-group separator. Blank text is null. */
static int op_number(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    if (v->type == SIPHON_V_DECIMAL)
        return 0;
    if (v->type == SIPHON_V_INT) {
        char *d = siphon_arena_alloc(x->row, 24);
        if (!d)
            return nomem(x);
        v->u.dec.len = siphon_mapping__fmt_i64(d, v->u.i);
        v->type = SIPHON_V_DECIMAL;
        v->u.dec.digits = d;
        v->u.dec.scale = 0;
        return 0;
    }
    const char *s = v->u.s.ptr;
    size_t n = v->u.s.len;
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    n = rtrim_len(s, n);
    if (n == 0) {
        v->type = SIPHON_V_NULL;
        return 0;
    }
    char *d = siphon_arena_alloc(x->row, n + 2);
    if (!d)
        return nomem(x);
    size_t o = 1, i = 0;
    int neg = 0, point = 0, digits = 0;
    int32_t scale = 0;
    if (s[i] == '-' || s[i] == '+')
        neg = s[i++] == '-';
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            d[o++] = c;
            digits++;
            scale += point;
        } else if (c == op->a.number.point && !point) {
            point = 1;
        } else if (op->a.number.group && c == op->a.number.group && !point && digits > 0) {
            continue;
        } else if (c == '-' && i == n - 1 && !neg) {
            neg = 1;
        } else {
            return not_a(x, v, "a number");
        }
    }
    if (!digits)
        return not_a(x, v, "a number");
    d[0] = '-';
    char *start = neg ? d : d + 1;
    size_t len = neg ? o : o - 1;
    dec_norm(start, &len);
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.digits = start;
    v->u.dec.len = len;
    v->u.dec.scale = scale;
    return 0;
}

static int in_list(const map_const_t *l, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (l[i].len == len && strncasecmp(l[i].text, s, len) == 0)
            return 1;
    return 0;
}

static int op_bool(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    if (v->type == SIPHON_V_BOOL)
        return 0;
    char buf[24];
    const char *s;
    size_t n;
    if (v->type == SIPHON_V_INT) {
        n = siphon_mapping__fmt_i64(buf, v->u.i);
        s = buf;
    } else {
        s = v->u.s.ptr;
        n = v->u.s.len;
        while (n > 0 && s[0] == ' ') {
            s++;
            n--;
        }
        n = rtrim_len(s, n);
    }
    if (in_list(op->a.boolean.t, op->a.boolean.nt, s, n)) {
        v->type = SIPHON_V_BOOL;
        v->u.b = 1;
        return 0;
    }
    if (in_list(op->a.boolean.f, op->a.boolean.nf, s, n)) {
        v->type = SIPHON_V_BOOL;
        v->u.b = 0;
        return 0;
    }
    char sn[80], tl[160] = "", fl[160] = "";
    size_t a = 0, b = 0;
    for (int i = 0; i < op->a.boolean.nt && a < sizeof(tl) - 20; i++)
        a += (size_t)snprintf(tl + a, sizeof(tl) - a, "%s'%s'", i ? ", " : "",
                              op->a.boolean.t[i].text);
    for (int i = 0; i < op->a.boolean.nf && b < sizeof(fl) - 20; i++)
        b += (size_t)snprintf(fl + b, sizeof(fl) - b, "%s'%s'", i ? ", " : "",
                              op->a.boolean.f[i].text);
    siphon_mapping__value_snippet(v, sn, sizeof(sn));
    return fail(x, "value %s is not a yes/no flag (expected true: %s; false: %s)", sn, tl, fl);
}

static int op_lookup(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    char buf[24];
    const char *s;
    size_t n;
    if (v->type == SIPHON_V_INT) {
        n = siphon_mapping__fmt_i64(buf, v->u.i);
        s = buf;
    } else {
        s = v->u.s.ptr;
        n = rtrim_len(v->u.s.ptr, v->u.s.len);
    }
    const map_code_t *hit = NULL;
    if (op->a.lookup.all_single) {
        if (n == 1 && op->a.lookup.direct[(unsigned char)s[0]])
            hit = &op->a.lookup.codes[op->a.lookup.direct[(unsigned char)s[0]] - 1];
        else if (n == 0 && op->a.lookup.direct[0])
            hit = &op->a.lookup.codes[op->a.lookup.direct[0] - 1];
    } else {
        for (int i = 0; i < op->a.lookup.n && !hit; i++)
            if (char_eq(op->a.lookup.codes[i].from.text, op->a.lookup.codes[i].from.len, s, n))
                hit = &op->a.lookup.codes[i];
    }
    const map_const_t *to = hit ? &hit->to : op->a.lookup.has_default ? &op->a.lookup.def : NULL;
    if (!to) {
        char sn[80], list[200];
        size_t o = 0;
        list[0] = '\0';
        for (int i = 0; i < op->a.lookup.n && o < sizeof(list) - 24; i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s'%s'", i ? ", " : "",
                                  op->a.lookup.codes[i].from.text);
        if (o >= sizeof(list) - 24)
            snprintf(list + o, sizeof(list) - o, ", ...");
        siphon_mapping__value_snippet(v, sn, sizeof(sn));
        return fail(x, "unknown code %s (expected one of: %s; or a default: in the lookup)", sn,
                    list);
    }
    if (to->is_null) {
        v->type = SIPHON_V_NULL;
        return 0;
    }
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = to->text;
    v->u.s.len = to->len;
    return 0;
}

/* Text form of a value for concat and hash (row arena when it has to be made). */
static int text_of(const siphon_value_t *v, const char **s, size_t *n, map_eval_t *x)
{
    switch (v->type) {
    case SIPHON_V_TEXT:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_JSON:
    case SIPHON_V_BYTES:
        *s = v->u.s.ptr;
        *n = v->u.s.len;
        return 0;
    case SIPHON_V_INT: {
        char *b = siphon_arena_alloc(x->row, 24);
        if (!b)
            return nomem(x);
        *s = b;
        *n = siphon_mapping__fmt_i64(b, v->u.i);
        return 0;
    }
    case SIPHON_V_DECIMAL:
        if (v->u.dec.scale == 0) { /* a whole number: its digits are its text */
            *s = v->u.dec.digits;
            *n = v->u.dec.len;
            return 0;
        }
        /* fall through */
    default: {
        char *b = siphon_arena_alloc(x->row, 64);
        if (!b)
            return nomem(x);
        size_t k = siphon_value_format(v, b, 64);
        if (k >= 64) {
            if (!(b = siphon_arena_alloc(x->row, k + 1)))
                return nomem(x);
            siphon_value_format(v, b, k + 1);
        }
        *s = b;
        *n = k;
        return 0;
    }
    }
}

static int op_concat(const map_op_t *op, siphon_value_t *v, int n, map_eval_t *x)
{
    const char *parts[MAP_MAX_INPUTS];
    size_t lens[MAP_MAX_INPUTS], total = 0;
    int raw = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].type == SIPHON_V_NULL) {
            v[0].type = SIPHON_V_NULL;
            return 0;
        }
        if (v[i].type == SIPHON_V_RAWTEXT) {
            size_t bad = siphon_mapping__utf8_invalid_at((const unsigned char *)v[i].u.s.ptr,
                                                         v[i].u.s.len);
            if (bad < v[i].u.s.len)
                raw = 1;
        }
        int rc = text_of(&v[i], &parts[i], &lens[i], x);
        if (rc)
            return rc;
        total += lens[i] + (i ? op->a.concat.len : 0);
    }
    char *o = siphon_arena_alloc(x->row, total + 1);
    if (!o)
        return nomem(x);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (i) {
            memcpy(o + k, op->a.concat.sep, op->a.concat.len);
            k += op->a.concat.len;
        }
        memcpy(o + k, parts[i], lens[i]);
        k += lens[i];
    }
    v[0].type = raw ? SIPHON_V_RAWTEXT : SIPHON_V_TEXT;
    v[0].u.s.ptr = o;
    v[0].u.s.len = k;
    return 0;
}

/* Characters (UTF-8 code points in TEXT, bytes in raw text) of s. */
static size_t char_count(const siphon_value_t *v)
{
    if (v->type != SIPHON_V_TEXT)
        return v->u.s.len;
    size_t c = 0;
    for (size_t i = 0; i < v->u.s.len; i++)
        c += ((unsigned char)v->u.s.ptr[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the first `chars` characters. */
static size_t char_prefix(const siphon_value_t *v, size_t chars)
{
    if (v->type != SIPHON_V_TEXT)
        return chars < v->u.s.len ? chars : v->u.s.len;
    size_t c = 0, i = 0;
    for (; i < v->u.s.len; i++) {
        if (((unsigned char)v->u.s.ptr[i] & 0xC0) != 0x80) {
            if (c == chars)
                break;
            c++;
        }
    }
    return i;
}

static int op_case(const map_op_t *op, siphon_value_t *v, map_eval_t *x)
{
    int up = op->kind == MAP_X_UPPER;
    const unsigned char *s = (const unsigned char *)v->u.s.ptr;
    size_t n = v->u.s.len, i = 0;
    /* nothing to change: keep the bytes (the common case of already upper-case codes) */
    for (; i < n; i++) {
        unsigned char c = s[i];
        if ((up && c >= 'a' && c <= 'z') || (!up && c >= 'A' && c <= 'Z') ||
            (c == 0xC3 && v->type == SIPHON_V_TEXT))
            break;
    }
    if (i == n)
        return 0;
    char *o = siphon_arena_alloc(x->row, n + 1);
    if (!o)
        return nomem(x);
    memcpy(o, s, n);
    for (; i < n; i++) {
        unsigned char c = s[i];
        if (up && c >= 'a' && c <= 'z')
            o[i] = (char)(c - 32);
        else if (!up && c >= 'A' && c <= 'Z')
            o[i] = (char)(c + 32);
        else if (c == 0xC3 && v->type == SIPHON_V_TEXT && i + 1 < n) {
            /* Latin-1 letters U+00C0..U+00FE (but not U+00D7, U+00F7): C3 80..9E <-> C3 A0..BE */
            unsigned char d = s[i + 1];
            if (up && d >= 0xA0 && d <= 0xBE && d != 0xB7)
                o[i + 1] = (char)(d - 0x20);
            else if (!up && d >= 0x80 && d <= 0x9E && d != 0x97)
                o[i + 1] = (char)(d + 0x20);
            i++;
        }
    }
    v->u.s.ptr = o;
    return 0;
}

static int dec_is_zero(const siphon_value_t *v)
{
    for (size_t i = 0; i < v->u.dec.len; i++)
        if (v->u.dec.digits[i] != '0' && v->u.dec.digits[i] != '-')
            return 0;
    return 1;
}

/* a and b are the same number (decimals compared by value: 1.0 = 1.00). */
static int dec_eq(const siphon_value_t *a, const siphon_value_t *b)
{
    if (dec_is_zero(a) || dec_is_zero(b))
        return dec_is_zero(a) && dec_is_zero(b);
    if ((a->u.dec.digits[0] == '-') != (b->u.dec.digits[0] == '-'))
        return 0;
    const siphon_value_t *lo = a->u.dec.scale <= b->u.dec.scale ? a : b, *hi = lo == a ? b : a;
    int32_t extra = hi->u.dec.scale - lo->u.dec.scale;
    /* hi's digits = lo's digits followed by `extra` zeros */
    if (hi->u.dec.len != lo->u.dec.len + (size_t)extra ||
        memcmp(hi->u.dec.digits, lo->u.dec.digits, lo->u.dec.len) != 0)
        return 0;
    for (size_t i = lo->u.dec.len; i < hi->u.dec.len; i++)
        if (hi->u.dec.digits[i] != '0')
            return 0;
    return 1;
}

static int null_if_hit(const map_op_t *op, const siphon_value_t *v)
{
    for (int i = 0; i < op->a.null_if.n; i++) {
        const map_const_t *c = &op->a.null_if.vals[i];
        if (c->is_null)
            continue;
        switch (v->type) {
        case SIPHON_V_TEXT:
        case SIPHON_V_RAWTEXT:
            if (char_eq(c->text, c->len, v->u.s.ptr, v->u.s.len))
                return 1;
            break;
        case SIPHON_V_DECIMAL:
            if ((c->ok & (1u << SIPHON_V_DECIMAL)) && dec_eq(&c->as[SIPHON_V_DECIMAL], v))
                return 1;
            break;
        default:
            if ((c->ok & (1u << v->type)) && siphon_value_equal(&c->as[v->type], v))
                return 1;
        }
    }
    return 0;
}

/* trim, ltrim: spaces and tabs off the front of a text value. */
static inline void trim_left(siphon_value_t *a)
{
    while (a->u.s.len > 0 && (a->u.s.ptr[0] == ' ' || a->u.s.ptr[0] == '\t')) {
        a->u.s.ptr++;
        a->u.s.len--;
    }
}

/* trim, rtrim: white space and NULs off the end of a text value; CHAR columns are padded with
 * spaces, eight of them are checked at a time first. */
static inline void trim_right(siphon_value_t *a)
{
    for (uint64_t w; a->u.s.len >= 8 &&
                     (memcpy(&w, a->u.s.ptr + a->u.s.len - 8, 8), w == 0x2020202020202020ULL);)
        a->u.s.len -= 8;
    while (a->u.s.len > 0) {
        char c = a->u.s.ptr[a->u.s.len - 1];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\0')
            break;
        a->u.s.len--;
    }
}

static const char hexd[] = "0123456789abcdef";

/* The whole catalogue; siphon_mapping__op_apply() below does the commonest cases itself. */
static __attribute__((noinline)) int op_apply_all(const map_op_t *op, siphon_vtype_t vt,
                                                  siphon_value_t *v, int n, map_eval_t *x)
{
    switch (op->kind) {
    case MAP_X_DEFAULT:
        if (v[0].type == SIPHON_V_NULL) {
            const map_const_t *c = op->a.def;
            if (c->is_null)
                return 0;
            if (!(c->ok & (1u << vt)))
                return fail(x, "default '%s' is not a %s value", c->text, siphon_vtype_name(vt));
            v[0] = c->as[vt];
        }
        return 0;
    case MAP_X_COALESCE:
        for (int i = 0; i < n; i++)
            if (v[i].type != SIPHON_V_NULL) {
                v[0] = v[i];
                return 0;
            }
        v[0].type = SIPHON_V_NULL;
        return 0;
    case MAP_X_CONCAT:
        return op_concat(op, v, n, x);
    case MAP_X_TIMESTAMP:
        return op_timestamp(op, v, n, x);
    case MAP_X_REDACT:
        if (v[0].type != SIPHON_V_NULL) {
            v[0].type = SIPHON_V_TEXT;
            v[0].u.s.ptr = op->a.redact.text;
            v[0].u.s.len = op->a.redact.len;
        }
        return 0;
    default:
        break;
    }
    if (v[0].type == SIPHON_V_NULL)
        return 0;

    siphon_value_t *a = &v[0];
    switch (op->kind) {
    case MAP_X_LTRIM:
        if (!is_text(a->type))
            break;
        trim_left(a);
        return 0;
    case MAP_X_TRIM:
    case MAP_X_RTRIM:
    case MAP_X_STRIP_ZEROS:
        break; /* text: siphon_mapping__op_apply(); anything else is refused below */
    case MAP_X_UPPER:
    case MAP_X_LOWER:
        if (!is_text(a->type))
            break;
        return op_case(op, a, x);
    case MAP_X_PAD: {
        if (!is_text(a->type))
            break;
        size_t have = char_count(a);
        if (have >= (size_t)op->a.pad.width)
            return 0;
        size_t add = (size_t)op->a.pad.width - have;
        char *o = siphon_arena_alloc(x->row, a->u.s.len + add + 1);
        if (!o)
            return nomem(x);
        if (op->a.pad.left) {
            memset(o, op->a.pad.ch, add);
            memcpy(o + add, a->u.s.ptr, a->u.s.len);
        } else {
            memcpy(o, a->u.s.ptr, a->u.s.len);
            memset(o + a->u.s.len, op->a.pad.ch, add);
        }
        a->u.s.ptr = o;
        a->u.s.len += add;
        return 0;
    }
    case MAP_X_TRUNCATE:
        if (!is_text(a->type))
            break;
        a->u.s.len = char_prefix(a, (size_t)op->a.truncate.n);
        return 0;
    case MAP_X_NULL_IF:
        if (null_if_hit(op, a))
            a->type = SIPHON_V_NULL;
        return 0;
    case MAP_X_DATE_YYYYMMDD:
    case MAP_X_DATE_YYMMDD:
    case MAP_X_DATE_CYYDDD:
        return op_date(op, a, x);
    case MAP_X_DATE_DAYS: {
        int64_t i;
        if (whole_number(a, &i) != 0)
            return not_a(x, a, "a count of days");
        int64_t d = op->a.days.epoch + i;
        int64_t y;
        unsigned m, dd;
        siphon_mapping__civil_from_days(d, &y, &m, &dd);
        if (y < 1 || y > 9999)
            return not_a(x, a, "a count of days that gives a date between the years 1 and 9999");
        a->type = SIPHON_V_DATE;
        a->u.date = (int32_t)d;
        return 0;
    }
    case MAP_X_DATE_FORMAT:
        if (!is_text(a->type))
            break;
        return op_date_format(op, a, x);
    case MAP_X_TIME_HHMMSS: {
        int64_t us;
        if (time_of(a, &us, x) != 0)
            return SIPHON_ECONVERT;
        a->type = SIPHON_V_TIME;
        a->u.time_us = us;
        return 0;
    }
    case MAP_X_IMPLIED_DEC:
        if (a->type != SIPHON_V_INT && a->type != SIPHON_V_DECIMAL && !is_text(a->type))
            break;
        return op_implied(op, a, x);
    case MAP_X_NUMBER:
        if (a->type != SIPHON_V_INT && a->type != SIPHON_V_DECIMAL && !is_text(a->type))
            break;
        return op_number(op, a, x);
    case MAP_X_BOOL:
        if (a->type != SIPHON_V_INT && a->type != SIPHON_V_BOOL && !is_text(a->type))
            break;
        return op_bool(op, a, x);
    case MAP_X_LOOKUP:
        if (a->type != SIPHON_V_INT && !is_text(a->type))
            break;
        return op_lookup(op, a, x);
    case MAP_X_CHARSET:
        if (a->type == SIPHON_V_TEXT)
            return 0; /* the database already gave UTF-8 */
        if (a->type != SIPHON_V_RAWTEXT && a->type != SIPHON_V_BYTES)
            break;
        return siphon_mapping__charset_convert(op->a.charset.cs, a, x);
    case MAP_X_HASH: {
        const char *s;
        size_t len;
        int rc = text_of(a, &s, &len, x);
        if (rc)
            return rc;
        uint8_t mac[32];
        siphon_mapping__hmac(&op->a.hash.key, s, len, mac);
        char *o = siphon_arena_alloc(x->row, 65);
        if (!o)
            return nomem(x);
        for (int i = 0; i < 32; i++) {
            o[2 * i] = hexd[mac[i] >> 4];
            o[2 * i + 1] = hexd[mac[i] & 15];
        }
        a->type = SIPHON_V_TEXT;
        a->u.s.ptr = o;
        a->u.s.len = op->a.hash.length > 0 && op->a.hash.length < 64 ? (size_t)op->a.hash.length
                                                                       : 64;
        return 0;
    }
    default:
        break;
    }
    char sn[80];
    siphon_mapping__value_snippet(a, sn, sizeof(sn));
    return fail(x, "transform '%s' got a %s value %s, which it does not take",
                siphon_mapping__op_name(op->kind), siphon_vtype_name(a->type), sn);
}

/* The transforms of most fields (trims, leading zeros, implied decimals of an integer, null_if
 * of an integer) are a few instructions each: done here, in a function small enough to cost
 * little to call; everything else, and every refusal, in op_apply_all(). Same results. */
int siphon_mapping__op_apply(const map_op_t *op, siphon_vtype_t vt, siphon_value_t *v, int n,
                             map_eval_t *x)
{
    siphon_value_t *a = &v[0];
    switch (op->kind) {
    case MAP_X_TRIM:
    case MAP_X_RTRIM:
        if (!is_text(a->type))
            break;
        if (op->kind == MAP_X_TRIM)
            trim_left(a);
        trim_right(a);
        return 0;
    case MAP_X_STRIP_ZEROS:
        if (!is_text(a->type))
            break;
        while (a->u.s.len > 1 && a->u.s.ptr[0] == '0') {
            a->u.s.ptr++;
            a->u.s.len--;
        }
        return 0;
    case MAP_X_IMPLIED_DEC:
        if (a->type != SIPHON_V_INT || !op->a.implied.i64)
            break;
        siphon_value_set_dec_i64(a, a->u.i, op->a.implied.n);
        return 0;
    case MAP_X_NULL_IF:
        if (a->type != SIPHON_V_INT)
            break;
        for (int i = 0; i < op->a.null_if.n; i++) {
            const map_const_t *c = &op->a.null_if.vals[i];
            if (!c->is_null && (c->ok & (1u << SIPHON_V_INT)) &&
                c->as[SIPHON_V_INT].type == SIPHON_V_INT && c->as[SIPHON_V_INT].u.i == a->u.i) {
                a->type = SIPHON_V_NULL;
                break;
            }
        }
        return 0;
    default:
        break;
    }
    return op_apply_all(op, vt, v, n, x);
}
