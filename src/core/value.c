/*
 * value.c - helpers of the typed value model: names, text rendering, decimal parsing,
 * positions. Dates use Howard Hinnant's days-from-civil algorithm (proleptic Gregorian), so
 * dates before 1970 and after 2038 render exactly.
 */
#include "core/value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *siphon_vtype_name(siphon_vtype_t t)
{
    switch (t) {
    case SIPHON_V_NULL: return "null";
    case SIPHON_V_BOOL: return "bool";
    case SIPHON_V_INT: return "int";
    case SIPHON_V_FLOAT: return "float";
    case SIPHON_V_DECIMAL: return "decimal";
    case SIPHON_V_TEXT: return "text";
    case SIPHON_V_BYTES: return "bytes";
    case SIPHON_V_DATE: return "date";
    case SIPHON_V_TIME: return "time";
    case SIPHON_V_TIMESTAMP: return "timestamp";
    case SIPHON_V_UUID: return "uuid";
    case SIPHON_V_JSON: return "json";
    case SIPHON_V_RAWTEXT: return "rawtext";
    case SIPHON_V_UNCHANGED: return "unchanged";
    }
    return "?";
}

int siphon_value_equal(const siphon_value_t *a, const siphon_value_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SIPHON_V_NULL:
    case SIPHON_V_UNCHANGED: return 1;
    case SIPHON_V_BOOL: return !a->u.b == !b->u.b;
    case SIPHON_V_INT: return a->u.i == b->u.i;
    case SIPHON_V_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case SIPHON_V_DECIMAL: {
        char ba[SIPHON_DEC_I64_CHARS], bb[SIPHON_DEC_I64_CHARS];
        const char *da, *db;
        size_t la = siphon_value_dec_digits(a, ba, &da), lb = siphon_value_dec_digits(b, bb, &db);
        return a->u.dec.scale == b->u.dec.scale && la == lb && (la == 0 || memcmp(da, db, la) == 0);
    }
    case SIPHON_V_TEXT:
    case SIPHON_V_BYTES:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    case SIPHON_V_DATE: return a->u.date == b->u.date;
    case SIPHON_V_TIME: return a->u.time_us == b->u.time_us;
    case SIPHON_V_TIMESTAMP: return a->u.ts.us == b->u.ts.us && a->u.ts.tz == b->u.ts.tz;
    case SIPHON_V_UUID: return memcmp(a->u.uuid, b->u.uuid, 16) == 0;
    }
    return 0;
}

/* days since 1970-01-01 -> y/m/d */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static size_t fmt_bytes_hex(const char *p, size_t n, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t need = 2 + 2 * n;
    if (size > 0) {
        size_t o = 0;
        if (o + 2 < size) { buf[o++] = '\\'; buf[o++] = 'x'; }
        for (size_t i = 0; i < n && o + 2 < size; i++) {
            buf[o++] = hex[(unsigned char)p[i] >> 4];
            buf[o++] = hex[(unsigned char)p[i] & 15];
        }
        buf[o < size ? o : size - 1] = '\0';
    }
    return need;
}

size_t siphon_value_format(const siphon_value_t *v, char *buf, size_t size)
{
    int n = 0;
    switch (v->type) {
    case SIPHON_V_NULL: n = snprintf(buf, size, "null"); break;
    case SIPHON_V_UNCHANGED: n = snprintf(buf, size, "(unchanged)"); break;
    case SIPHON_V_BOOL: n = snprintf(buf, size, "%s", v->u.b ? "true" : "false"); break;
    case SIPHON_V_INT: n = snprintf(buf, size, "%" PRId64, v->u.i); break;
    case SIPHON_V_FLOAT: n = snprintf(buf, size, "%.17g", v->u.f); break;
    case SIPHON_V_DECIMAL: {
        char ibuf[SIPHON_DEC_I64_CHARS];
        const char *d;
        size_t len = siphon_value_dec_digits(v, ibuf, &d);
        int neg = len > 0 && d[0] == '-';
        if (neg) { d++; len--; }
        int32_t scale = v->u.dec.scale;
        char tmp[512];
        size_t o = 0;
        if (neg) tmp[o++] = '-';
        if (scale <= 0) {
            for (size_t i = 0; i < len && o < sizeof(tmp) - 1; i++) tmp[o++] = d[i];
            for (int32_t i = 0; i < -scale && o < sizeof(tmp) - 1; i++) tmp[o++] = '0';
        } else if ((size_t)scale >= len) {
            tmp[o++] = '0';
            tmp[o++] = '.';
            for (size_t i = len; i < (size_t)scale && o < sizeof(tmp) - 1; i++) tmp[o++] = '0';
            for (size_t i = 0; i < len && o < sizeof(tmp) - 1; i++) tmp[o++] = d[i];
        } else {
            for (size_t i = 0; i < len && o < sizeof(tmp) - 2; i++) {
                if (i == len - (size_t)scale) tmp[o++] = '.';
                tmp[o++] = d[i];
            }
        }
        tmp[o] = '\0';
        n = snprintf(buf, size, "%s", tmp);
        break;
    }
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
        n = snprintf(buf, size, "%.*s", (int)v->u.s.len, v->u.s.ptr);
        break;
    case SIPHON_V_BYTES:
        return fmt_bytes_hex(v->u.s.ptr, v->u.s.len, buf, size);
    case SIPHON_V_DATE: {
        int64_t y; unsigned m, d;
        civil_from_days(v->u.date, &y, &m, &d);
        n = snprintf(buf, size, "%04" PRId64 "-%02u-%02u", y, m, d);
        break;
    }
    case SIPHON_V_TIME: {
        int64_t us = v->u.time_us;
        n = snprintf(buf, size, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%06" PRId64,
                     us / INT64_C(3600000000), us / INT64_C(60000000) % 60, us / INT64_C(1000000) % 60, us % INT64_C(1000000));
        break;
    }
    case SIPHON_V_TIMESTAMP: {
        int64_t us = v->u.ts.us;
        int64_t days = us / INT64_C(86400000000), rem = us % INT64_C(86400000000);
        if (rem < 0) { rem += INT64_C(86400000000); days--; }
        int64_t y; unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        n = snprintf(buf, size, "%04" PRId64 "-%02u-%02uT%02" PRId64 ":%02" PRId64 ":%02" PRId64
                     ".%06" PRId64 "%s", y, m, d, rem / INT64_C(3600000000), rem / INT64_C(60000000) % 60,
                     rem / INT64_C(1000000) % 60, rem % INT64_C(1000000), v->u.ts.tz ? "Z" : "");
        break;
    }
    case SIPHON_V_UUID: {
        const uint8_t *u = v->u.uuid;
        n = snprintf(buf, size,
                     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                     u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                     u[12], u[13], u[14], u[15]);
        break;
    }
    }
    return n < 0 ? 0 : (size_t)n;
}

int siphon_value_decimal_parse(siphon_value_t *v, const char *text, size_t len, char *out,
                               size_t outsize)
{
    size_t i = 0, o = 0;
    int32_t scale = 0;
    int seen_point = 0, seen_digit = 0;
    if (outsize < len + 1)
        return SIPHON_EINVAL;
    if (i < len && (text[i] == '-' || text[i] == '+')) {
        if (text[i] == '-')
            out[o++] = '-';
        i++;
    }
    size_t digits_start = o;
    for (; i < len; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            out[o++] = c;
            seen_digit = 1;
            if (seen_point)
                scale++;
        } else if (c == '.' && !seen_point) {
            seen_point = 1;
        } else {
            return SIPHON_EINVAL;
        }
    }
    if (!seen_digit)
        return SIPHON_EINVAL;
    /* strip leading zeros (keep one) */
    size_t first = digits_start;
    while (first + 1 < o && out[first] == '0')
        first++;
    if (first > digits_start) {
        memmove(out + digits_start, out + first, o - first);
        o -= first - digits_start;
    }
    /* "-0" is 0 */
    if (digits_start == 1 && o == 2 && out[1] == '0') {
        out[0] = '0';
        o = 1;
    }
    out[o] = '\0';
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.digits = out;
    v->u.dec.len = o;
    v->u.dec.scale = scale;
    return 0;
}

int siphon_pos_copy(siphon_pos_t *dst, const siphon_pos_t *src)
{
    dst->num = src->num;
    dst->text = NULL;
    if (src->text && !(dst->text = strdup(src->text)))
        return SIPHON_ENOMEM;
    return 0;
}

void siphon_pos_free(siphon_pos_t *pos)
{
    if (!pos)
        return;
    free(pos->text);
    pos->text = NULL;
}

size_t siphon_value_dec_digits(const siphon_value_t *v, char *buf, const char **digits)
{
    if (!siphon_value_dec_is_i64(v)) {
        *digits = v->u.dec.digits;
        return v->u.dec.len;
    }
    *digits = buf;
    return (size_t)snprintf(buf, SIPHON_DEC_I64_CHARS, "%" PRId64, siphon_value_dec_i64(v));
}
