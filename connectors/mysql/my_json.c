/*
 * my_json.c - MySQL's binary JSON (the storage and binlog format of JSON columns, MySQL 5.7+)
 * to JSON text, formatted as MySQL prints it: {"a": 1, "b": [true, null]}.
 *
 * The format (MySQL's json_binary.h):
 *   doc      ::= type value
 *   type     ::= 0x00 small object | 0x01 large object | 0x02 small array | 0x03 large array |
 *                0x04 literal | 0x05 int16 | 0x06 uint16 | 0x07 int32 | 0x08 uint32 |
 *                0x09 int64 | 0x0a uint64 | 0x0b double | 0x0c string | 0x0f opaque
 *   object   ::= count size key-entry* value-entry* key* value*
 *   array    ::= count size value-entry* value*
 *   count, size, offsets: uint16 in small containers, uint32 in large ones (little-endian);
 *   key-entry ::= key-offset key-length(uint16); value-entry ::= type offset-or-inlined-value
 *   (literals and 16-bit integers are inlined, and 32-bit ones in large containers); offsets
 *   count from the first byte after the container's type byte.
 *   string   ::= length (7 bits a byte, low first, high bit = more) utf8mb4 bytes
 *   opaque   ::= field-type(1) length bytes: DECIMAL (precision, scale, packed decimal), DATE,
 *                TIME, DATETIME, TIMESTAMP (8-byte packed), anything else "base64:typeN:...".
 * MariaDB has no binary JSON (its JSON is a LONGTEXT) and never reaches this file.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

#define JSON_MAX_DEPTH 100

typedef struct jctx {
    siphon_buf_t *b;
    char *errbuf;
    size_t errsize;
} jctx_t;

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int jfail(jctx_t *x, const char *what, size_t at)
{
    return siphon_err(x->errbuf, x->errsize, SIPHON_EPROTO, "%s (at byte %zu)", what, at);
}

static int put(jctx_t *x, const char *s, size_t n)
{
    return siphon_buf_append(x->b, s, n);
}

static int puts_(jctx_t *x, const char *s)
{
    return siphon_buf_append(x->b, s, strlen(s));
}

/* Variable-length length: 7 bits a byte, least significant first, at most 5 bytes. */
static int varlen(const uint8_t *p, size_t n, uint64_t *len, size_t *used)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 5; i++) {
        v |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *len = v;
            *used = i + 1;
            return 0;
        }
    }
    return -1;
}

static int quoted(jctx_t *x, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = siphon_buf_appendc(x->b, '"');
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t c = s[i];
        switch (c) {
        case '"': rc = put(x, "\\\"", 2); break;
        case '\\': rc = put(x, "\\\\", 2); break;
        case '\b': rc = put(x, "\\b", 2); break;
        case '\f': rc = put(x, "\\f", 2); break;
        case '\n': rc = put(x, "\\n", 2); break;
        case '\r': rc = put(x, "\\r", 2); break;
        case '\t': rc = put(x, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                rc = put(x, u, 6);
            } else {
                rc = siphon_buf_appendc(x->b, c);
            }
        }
    }
    return rc ? rc : siphon_buf_appendc(x->b, '"');
}

/* A double as MySQL prints it in JSON: the shortest text that reads back the same, with
 * ".0" on integral values and exponents without '+' or leading zeros ("1e20", "1.5e-7"). */
static int put_double(jctx_t *x, double d)
{
    char t[40], o[40];
    if (!isfinite(d))
        return puts_(x, "null");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*g", prec, d);
        if (strtod(t, NULL) == d)
            break;
    }
    size_t k = 0;
    int has_frac = 0;
    for (const char *s = t; *s && k < sizeof(o) - 3; s++) {
        if (*s == '.' || *s == 'e')
            has_frac = 1;
        if (*s == 'e') {
            o[k++] = 'e';
            s++;
            if (*s == '-')
                o[k++] = '-';
            else if (*s != '+')
                s--;
            while (s[1] == '0' && s[2])
                s++;
            continue;
        }
        o[k++] = *s;
    }
    if (!has_frac) {
        o[k++] = '.';
        o[k++] = '0';
    }
    return put(x, o, k);
}

static int b64(jctx_t *x, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        rc = put(x, q, 4);
    }
    return rc;
}

/* Opaque (custom) data: the temporal and decimal kinds MySQL itself writes, else base64. */
static int opaque(jctx_t *x, uint8_t ftype, const uint8_t *p, size_t n, size_t at)
{
    char t[96];
    if (ftype == MYT_NEWDECIMAL) {
        if (n < 2)
            return jfail(x, "a JSON decimal is shorter than its header", at);
        int prec = p[0], scale = p[1];
        if (prec < 1 || prec > 65 || scale > prec || scale > 30 ||
            n < 2 + siphon_my__decimal_size(prec, scale))
            return jfail(x, "a JSON decimal has a bad precision, scale or length", at);
        char d[72];
        size_t dl = 0;
        if (siphon_my__decimal_decode(p + 2, prec, scale, d, sizeof(d), &dl) < 0)
            return jfail(x, "a JSON decimal is not a valid packed decimal", at);
        siphon_value_t v = {.type = SIPHON_V_DECIMAL};
        v.u.dec.digits = d;
        v.u.dec.len = dl;
        v.u.dec.scale = scale;
        size_t len = siphon_value_format(&v, t, sizeof(t));
        return put(x, t, len < sizeof(t) ? len : sizeof(t) - 1);
    }
    if (ftype == MYT_DATE || ftype == MYT_DATETIME || ftype == MYT_TIMESTAMP ||
        ftype == MYT_TIME) {
        if (n < 8)
            return jfail(x, "a JSON date/time is shorter than 8 bytes", at);
        int64_t packed = (int64_t)rd(p, 8);
        int neg = packed < 0;
        uint64_t a = (uint64_t)(neg ? -packed : packed);
        uint64_t frac = a % (1 << 24), hms, ymd;
        if (ftype == MYT_TIME) {
            hms = a >> 24;
            snprintf(t, sizeof(t), "\"%s%02u:%02u:%02u.%06u\"", neg ? "-" : "",
                     (unsigned)(hms >> 12) % 1024, (unsigned)(hms >> 6) % 64,
                     (unsigned)hms % 64, (unsigned)frac);
        } else {
            uint64_t ymdhms = a >> 24;
            ymd = ymdhms >> 17;
            hms = ymdhms % (1 << 17);
            uint64_t ym = ymd >> 5;
            if (ftype == MYT_DATE)
                snprintf(t, sizeof(t), "\"%04u-%02u-%02u\"", (unsigned)(ym / 13),
                         (unsigned)(ym % 13), (unsigned)(ymd % 32));
            else
                snprintf(t, sizeof(t), "\"%04u-%02u-%02u %02u:%02u:%02u.%06u\"",
                         (unsigned)(ym / 13), (unsigned)(ym % 13), (unsigned)(ymd % 32),
                         (unsigned)(hms >> 12), (unsigned)(hms >> 6) % 64, (unsigned)hms % 64,
                         (unsigned)frac);
        }
        return puts_(x, t);
    }
    snprintf(t, sizeof(t), "\"base64:type%u:", (unsigned)ftype);
    int rc = puts_(x, t);
    if (rc == 0)
        rc = b64(x, p, n);
    return rc ? rc : siphon_buf_appendc(x->b, '"');
}

static int value(jctx_t *x, uint8_t type, const uint8_t *p, size_t n, size_t at, int depth);

/* An object or array whose data (after the type byte) is p[0..n). */
static int container(jctx_t *x, int is_obj, int large, const uint8_t *p, size_t n, size_t at,
                     int depth)
{
    int w = large ? 4 : 2; /* width of counts, sizes and offsets */
    if (depth > JSON_MAX_DEPTH)
        return jfail(x, "JSON nesting is deeper than 100", at);
    if (n < (size_t)(2 * w))
        return jfail(x, "a JSON container is shorter than its header", at);
    uint64_t count = rd(p, w), size = rd(p + w, w);
    if (size > n)
        return jfail(x, "a JSON container is larger than its value", at);
    size_t key_entries = (size_t)(2 * w), ke = is_obj ? (size_t)w + 2 : 0, ve = 1 + (size_t)w;
    if (count > size || key_entries + count * (ke + ve) > size)
        return jfail(x, "a JSON container's entries do not fit in it", at);
    size_t value_entries = key_entries + count * ke;
    int rc = siphon_buf_appendc(x->b, is_obj ? '{' : '[');
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        if (i)
            rc = put(x, ", ", 2);
        if (rc == 0 && is_obj) {
            const uint8_t *k = p + key_entries + i * ke;
            uint64_t koff = rd(k, w), klen = rd(k + w, 2);
            if (koff > size || klen > size - koff)
                return jfail(x, "a JSON key lies outside its object", at);
            rc = quoted(x, p + koff, (size_t)klen);
            if (rc == 0)
                rc = put(x, ": ", 2);
        }
        if (rc)
            break;
        const uint8_t *e = p + value_entries + i * ve;
        uint8_t t = e[0];
        int inlined = t == 0x04 || t == 0x05 || t == 0x06 || (large && (t == 0x07 || t == 0x08));
        if (inlined) {
            rc = value(x, t, e + 1, (size_t)w, at + (size_t)(e + 1 - p), depth + 1);
        } else {
            uint64_t off = rd(e + 1, w);
            if (off >= size)
                return jfail(x, "a JSON value lies outside its container", at);
            rc = value(x, t, p + off, (size_t)(size - off), at + (size_t)off, depth + 1);
        }
    }
    return rc ? rc : siphon_buf_appendc(x->b, is_obj ? '}' : ']');
}

static int value(jctx_t *x, uint8_t type, const uint8_t *p, size_t n, size_t at, int depth)
{
    char t[32];
    switch (type) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x03:
        return container(x, type < 0x02, type & 1, p, n, at, depth);
    case 0x04:
        if (n < 1)
            return jfail(x, "a JSON literal is missing", at);
        switch (p[0]) {
        case 0x00: return puts_(x, "null");
        case 0x01: return puts_(x, "true");
        case 0x02: return puts_(x, "false");
        default: return jfail(x, "unknown JSON literal", at);
        }
    case 0x05:
    case 0x06:
        if (n < 2)
            return jfail(x, "a JSON 16-bit integer is cut short", at);
        snprintf(t, sizeof(t), "%" PRId64,
                 type == 0x05 ? (int64_t)(int16_t)rd(p, 2) : (int64_t)rd(p, 2));
        return puts_(x, t);
    case 0x07:
    case 0x08:
        if (n < 4)
            return jfail(x, "a JSON 32-bit integer is cut short", at);
        snprintf(t, sizeof(t), "%" PRId64,
                 type == 0x07 ? (int64_t)(int32_t)rd(p, 4) : (int64_t)rd(p, 4));
        return puts_(x, t);
    case 0x09:
    case 0x0a:
        if (n < 8)
            return jfail(x, "a JSON 64-bit integer is cut short", at);
        if (type == 0x09)
            snprintf(t, sizeof(t), "%" PRId64, (int64_t)rd(p, 8));
        else
            snprintf(t, sizeof(t), "%" PRIu64, rd(p, 8));
        return puts_(x, t);
    case 0x0b: {
        if (n < 8)
            return jfail(x, "a JSON double is cut short", at);
        uint64_t u = rd(p, 8);
        double d;
        memcpy(&d, &u, 8);
        return put_double(x, d);
    }
    case 0x0c: {
        uint64_t len;
        size_t used;
        if (varlen(p, n, &len, &used) < 0 || len > n - used)
            return jfail(x, "a JSON string's length is malformed", at);
        return quoted(x, p + used, (size_t)len);
    }
    case 0x0f: {
        uint64_t len;
        size_t used;
        if (n < 1 || varlen(p + 1, n - 1, &len, &used) < 0 || len > n - 1 - used)
            return jfail(x, "a JSON opaque value's length is malformed", at);
        return opaque(x, p[0], p + 1 + used, (size_t)len, at);
    }
    default:
        snprintf(t, sizeof(t), "unknown JSON type 0x%02x", type);
        return jfail(x, t, at);
    }
}

int siphon_my__json_to_text(siphon_buf_t *b, const uint8_t *p, size_t n, char *errbuf,
                            size_t errsize)
{
    jctx_t x = {b, errbuf, errsize};
    if (n == 0) /* MySQL logs an empty value for a JSON null it could not store otherwise */
        return puts_(&x, "null");
    return value(&x, p[0], p + 1, n - 1, 1, 0);
}
