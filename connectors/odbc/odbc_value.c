/*
 * odbc_value.c - values of the ODBC connector: which C type a column is fetched as, how the
 * fetched bytes (a "datum") become Siphon's typed values, and the byte-level tools the change
 * detection rests on (content hash, compact key encoding, watermark text).
 *
 * Why dates, times and timestamps are fetched as text (SQL_C_CHAR) rather than as ODBC structs:
 * SQL_TIME_STRUCT has no fraction; and a watermark must be bound back exactly as the database
 * compares it. sqliteodbc binds a SQL_TIMESTAMP_STRUCT with milliseconds only, and SQLite
 * compares timestamps as text, so only the driver's own text round-trips. Every driver converts
 * these types to the ODBC character forms ("yyyy-mm-dd hh:mm:ss[.f]", ODBC appendix D).
 * Character data is fetched as SQL_C_WCHAR: the driver converts from the database's encoding
 * and we convert UTF-16 to UTF-8, so no locale or client charset setting is involved.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

/* ---- kinds ---- */

static int name_has(const char *type_name, const char *word)
{
    return type_name && strncasecmp(type_name, word, strlen(word)) == 0;
}

odbc_kind_t siphon_odbc__kind_for(int sqltype, const char *type_name, int is_unsigned)
{
    /* sqliteodbc describes a column declared numeric(12,2) as DOUBLE and one declared
     * decimal(12,2) as VARCHAR (SQLite stores either as it likes): the declared name wins, so
     * money never travels as a double. */
    if ((name_has(type_name, "decimal") || name_has(type_name, "numeric")) &&
        (sqltype == SQL_REAL || sqltype == SQL_FLOAT || sqltype == SQL_DOUBLE ||
         sqltype == SQL_CHAR || sqltype == SQL_VARCHAR || sqltype == SQL_LONGVARCHAR ||
         sqltype == SQL_WCHAR || sqltype == SQL_WVARCHAR || sqltype == SQL_WLONGVARCHAR))
        return ODBC_K_DECIMAL;
    switch (sqltype) {
    case SQL_BIT:
        return ODBC_K_BOOL;
    case SQL_TINYINT:
    case SQL_SMALLINT:
    case SQL_INTEGER:
        return ODBC_K_INT;
    case SQL_BIGINT:
        return is_unsigned ? ODBC_K_UBIG : ODBC_K_INT;
    case SQL_REAL:
    case SQL_FLOAT:
    case SQL_DOUBLE:
        return ODBC_K_FLOAT;
    case SQL_DECIMAL:
    case SQL_NUMERIC:
        return ODBC_K_DECIMAL;
    case SQL_TYPE_DATE:
    case SQL_DATE:
        return ODBC_K_DATE;
    case SQL_TYPE_TIME:
    case SQL_TIME:
        return ODBC_K_TIME;
    case SQL_TYPE_TIMESTAMP:
    case SQL_TIMESTAMP:
        return ODBC_K_TS;
    case SQL_GUID:
        return ODBC_K_UUID;
    case SQL_BINARY:
    case SQL_VARBINARY:
    case SQL_LONGVARBINARY:
        return ODBC_K_BYTES;
    default:
        break;
    }
    /* Character data. Some drivers describe typed columns as text: sqliteodbc says VARCHAR for
     * a column declared decimal(12,2); psqlODBC says VARCHAR for json/jsonb. */
    if (name_has(type_name, "json"))
        return ODBC_K_JSON;
    return ODBC_K_TEXT;
}

siphon_vtype_t siphon_odbc__kind_vtype(odbc_kind_t k)
{
    switch (k) {
    case ODBC_K_JSON: return SIPHON_V_JSON;
    case ODBC_K_INT: return SIPHON_V_INT;
    case ODBC_K_UBIG: return SIPHON_V_DECIMAL;
    case ODBC_K_FLOAT: return SIPHON_V_FLOAT;
    case ODBC_K_DECIMAL: return SIPHON_V_DECIMAL;
    case ODBC_K_BOOL: return SIPHON_V_BOOL;
    case ODBC_K_DATE: return SIPHON_V_DATE;
    case ODBC_K_TIME: return SIPHON_V_TIME;
    case ODBC_K_TS: return SIPHON_V_TIMESTAMP;
    case ODBC_K_UUID: return SIPHON_V_UUID;
    case ODBC_K_BYTES: return SIPHON_V_BYTES;
    case ODBC_K_TEXT:
    default: return SIPHON_V_TEXT;
    }
}

int siphon_odbc__kind_ctype(odbc_kind_t k)
{
    switch (k) {
    case ODBC_K_TEXT:
    case ODBC_K_JSON: return SQL_C_WCHAR;
    case ODBC_K_INT: return SQL_C_SBIGINT;
    case ODBC_K_FLOAT: return SQL_C_DOUBLE;
    case ODBC_K_BOOL: return SQL_C_BIT;
    case ODBC_K_BYTES: return SQL_C_BINARY;
    default: return SQL_C_CHAR;
    }
}

const char *siphon_odbc__kind_name(odbc_kind_t k)
{
    switch (k) {
    case ODBC_K_TEXT: return "text";
    case ODBC_K_JSON: return "json";
    case ODBC_K_INT: return "int";
    case ODBC_K_UBIG: return "unsigned bigint";
    case ODBC_K_FLOAT: return "float";
    case ODBC_K_DECIMAL: return "decimal";
    case ODBC_K_BOOL: return "bool";
    case ODBC_K_DATE: return "date";
    case ODBC_K_TIME: return "time";
    case ODBC_K_TS: return "timestamp";
    case ODBC_K_UUID: return "uuid";
    case ODBC_K_BYTES: return "bytes";
    }
    return "?";
}

/* ---- dates and times ---- */

int64_t siphon_odbc__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

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

/* Exactly n digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, int n, int64_t *out)
{
    int64_t v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_date_at(const char *s, size_t len, size_t *i, int64_t *days)
{
    int64_t y, m, d;
    int neg = 0;
    if (*i < len && s[*i] == '-') {
        neg = 1;
        (*i)++;
    }
    /* 4 or more year digits */
    size_t start = *i;
    y = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9' && *i - start < 9)
        y = y * 10 + (s[(*i)++] - '0');
    if (*i - start < 4)
        return -1;
    if (neg)
        y = -y;
    if (*i >= len || s[(*i)++] != '-' || digits(s, len, i, 2, &m) < 0 || *i >= len ||
        s[(*i)++] != '-' || digits(s, len, i, 2, &d) < 0)
        return -1;
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > mdays[m - 1])
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return -1;
    *days = siphon_odbc__days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

static int parse_time_at(const char *s, size_t len, size_t *i, int64_t *us)
{
    int64_t h, mi, se, frac = 0;
    if (digits(s, len, i, 2, &h) < 0 || *i >= len || s[(*i)++] != ':' ||
        digits(s, len, i, 2, &mi) < 0)
        return -1;
    se = 0;
    if (*i < len && s[*i] == ':') {
        (*i)++;
        if (digits(s, len, i, 2, &se) < 0)
            return -1;
        if (*i < len && s[*i] == '.') {
            (*i)++;
            int n = 0;
            while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
                if (n < 6)
                    frac = frac * 10 + (s[*i] - '0');
                n++;
                (*i)++;
            }
            if (n == 0)
                return -1;
            for (; n < 6; n++)
                frac *= 10;
        }
    }
    if (h > 24 || mi > 59 || se > 60 || (h == 24 && (mi || se || frac)))
        return -1;
    *us = ((h * 60 + mi) * 60 + se) * INT64_C(1000000) + frac;
    return 0;
}

int siphon_odbc__parse_date(const char *s, size_t len, int32_t *days)
{
    size_t i = 0;
    int64_t d;
    if (parse_date_at(s, len, &i, &d) < 0 || i != len || d < INT32_MIN || d > INT32_MAX)
        return SIPHON_EINVAL;
    *days = (int32_t)d;
    return 0;
}

int siphon_odbc__parse_time(const char *s, size_t len, int64_t *us)
{
    size_t i = 0;
    if (parse_time_at(s, len, &i, us) < 0 || i != len)
        return SIPHON_EINVAL;
    return 0;
}

int siphon_odbc__parse_ts(const char *s, size_t len, int64_t *us, int *tz)
{
    size_t i = 0;
    int64_t days, t = 0;
    if (parse_date_at(s, len, &i, &days) < 0)
        return SIPHON_EINVAL;
    *tz = 0;
    if (i < len && (s[i] == ' ' || s[i] == 'T')) {
        i++;
        if (parse_time_at(s, len, &i, &t) < 0)
            return SIPHON_EINVAL;
    }
    int64_t off_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
        *tz = 1;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int64_t oh, om = 0;
        if (digits(s, len, &i, 2, &oh) < 0)
            return SIPHON_EINVAL;
        if (i < len && s[i] == ':')
            i++;
        if (i < len && digits(s, len, &i, 2, &om) < 0)
            return SIPHON_EINVAL;
        off_s = sign * (oh * 3600 + om * 60);
        *tz = 1;
    }
    if (i != len)
        return SIPHON_EINVAL;
    *us = days * INT64_C(86400000000) + t - off_s * INT64_C(1000000);
    return 0;
}

int siphon_odbc__parse_uuid(const char *s, size_t len, uint8_t out[16])
{
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-' && (n == 8 || n == 12 || n == 16 || n == 20))
            continue;
        int v = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0 || n >= 32)
            return SIPHON_EINVAL;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32 ? 0 : SIPHON_EINVAL;
}

void siphon_odbc__format_ts(int64_t us, char *buf, size_t size)
{
    int64_t days = us / INT64_C(86400000000), rem = us % INT64_C(86400000000);
    if (rem < 0) {
        rem += INT64_C(86400000000);
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    snprintf(buf, size, "%04" PRId64 "-%02u-%02u %02d:%02d:%02d.%06d", y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), (int)frac);
}

/* ---- UTF-16 <-> UTF-8 ---- */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t siphon_odbc__utf16_to_utf8(const SQLWCHAR *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && in[i + 1] >= 0xDC00 && in[i + 1] <= 0xDFFF) {
            /* a pair: 4 UTF-8 bytes for 2 units, within the 3-per-unit budget */
            c = 0x10000 + ((c - 0xD800) << 10) + (in[i + 1] - 0xDC00);
            i++;
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            c = 0xFFFD;
        }
        o += put_utf8(out + o, c);
    }
    return o;
}

size_t siphon_odbc__utf8_to_utf16(const char *in, size_t len, SQLWCHAR *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < len) {
        uint32_t c = s[i];
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                              : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n == 0) {
            out[o++] = (SQLWCHAR)c;
            i++;
            continue;
        }
        uint32_t cp = n > 0 ? c & (0x3Fu >> n) : 0;
        int ok = n > 0 && i + (size_t)n < len;
        for (int k = 1; ok && k <= n; k++) {
            if ((s[i + (size_t)k] & 0xC0) != 0x80)
                ok = 0;
            else
                cp = (cp << 6) | (s[i + (size_t)k] & 0x3F);
        }
        if (ok && ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                   cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = 0;
        if (!ok) {
            /* one replacement character per bad byte: never more units than input bytes */
            out[o++] = 0xFFFD;
            i++;
            continue;
        }
        i += (size_t)n + 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out[o++] = (SQLWCHAR)(0xD800 + (cp >> 10));
            out[o++] = (SQLWCHAR)(0xDC00 + (cp & 0x3FF));
        } else {
            out[o++] = (SQLWCHAR)cp;
        }
    }
    return o;
}

/* ---- hashing and keys ---- */

uint64_t siphon_odbc__hash(uint64_t seed, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    /* murmur3's fmix64: every input bit reaches every output bit */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

uint64_t siphon_odbc__row_hash(const odbc_datum_t *d, int n)
{
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        uint8_t hdr[5];
        uint32_t len = d[i].null ? 0 : d[i].len + 1;
        hdr[0] = (uint8_t)i;
        memcpy(hdr + 1, &len, 4);
        h = siphon_odbc__hash(h, hdr, sizeof(hdr));
        if (!d[i].null)
            h = siphon_odbc__hash(h, d[i].p, d[i].len);
    }
    return h;
}

static int put_varint(siphon_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return siphon_buf_append(b, tmp, (size_t)n);
}

static int get_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return -1;
        uint8_t c = p[(*i)++];
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

int siphon_odbc__key_encode(siphon_buf_t *out, const odbc_datum_t *row, const int *idx, int n)
{
    for (int k = 0; k < n; k++) {
        const odbc_datum_t *d = &row[idx[k]];
        if (put_varint(out, d->null ? 0 : (uint64_t)d->len + 1) < 0 ||
            (!d->null && siphon_buf_append(out, d->p, d->len) < 0))
            return SIPHON_ENOMEM;
    }
    return 0;
}

int siphon_odbc__key_decode(odbc_datum_t *out, int n, const uint8_t *p, size_t len)
{
    size_t i = 0;
    for (int k = 0; k < n; k++) {
        uint64_t l;
        if (get_varint(p, len, &i, &l) < 0)
            return SIPHON_EINVAL;
        if (l == 0) {
            out[k] = (odbc_datum_t){NULL, 0, 1};
            continue;
        }
        l--;
        if (l > len - i)
            return SIPHON_EINVAL;
        out[k] = (odbc_datum_t){p + i, (uint32_t)l, 0};
        i += l;
    }
    return i == len ? 0 : SIPHON_EINVAL;
}

/* ---- datum <-> value ---- */

static int64_t get_i64(const odbc_datum_t *d)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | d->p[i];
    return (int64_t)u;
}

static double get_f64(const odbc_datum_t *d)
{
    uint64_t u = (uint64_t)get_i64(d);
    double f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static void as_text(siphon_value_t *v, const odbc_datum_t *d)
{
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = (const char *)d->p;
    v->u.s.len = d->len;
}

int siphon_odbc__decode(siphon_value_t *v, odbc_kind_t k, const odbc_datum_t *d,
                        siphon_arena_t *a)
{
    const char *s = (const char *)d->p;
    memset(v, 0, sizeof(*v));
    if (d->null) {
        v->type = SIPHON_V_NULL;
        return 0;
    }
    switch (k) {
    case ODBC_K_INT:
        if (d->len != 8)
            break;
        v->type = SIPHON_V_INT;
        v->u.i = get_i64(d);
        return 0;
    case ODBC_K_FLOAT:
        if (d->len != 8)
            break;
        v->type = SIPHON_V_FLOAT;
        v->u.f = get_f64(d);
        return 0;
    case ODBC_K_BOOL:
        if (d->len != 1)
            break;
        v->type = SIPHON_V_BOOL;
        v->u.b = d->p[0] != 0;
        return 0;
    case ODBC_K_UBIG:
    case ODBC_K_DECIMAL: {
        char *out = siphon_arena_alloc(a, d->len + 1);
        if (!out)
            return SIPHON_ENOMEM;
        /* trailing blanks: some drivers pad numeric text */
        size_t n = d->len;
        while (n > 0 && s[n - 1] == ' ')
            n--;
        size_t st = 0;
        while (st < n && s[st] == ' ')
            st++;
        if (siphon_value_decimal_parse(v, s + st, n - st, out, d->len + 1) == 0)
            return 0;
        break;
    }
    case ODBC_K_DATE:
        if (siphon_odbc__parse_date(s, d->len, &v->u.date) == 0) {
            v->type = SIPHON_V_DATE;
            return 0;
        }
        break;
    case ODBC_K_TIME:
        if (siphon_odbc__parse_time(s, d->len, &v->u.time_us) == 0) {
            v->type = SIPHON_V_TIME;
            return 0;
        }
        break;
    case ODBC_K_TS:
        if (siphon_odbc__parse_ts(s, d->len, &v->u.ts.us, &v->u.ts.tz) == 0) {
            v->type = SIPHON_V_TIMESTAMP;
            return 0;
        }
        break;
    case ODBC_K_UUID:
        if (siphon_odbc__parse_uuid(s, d->len, v->u.uuid) == 0) {
            v->type = SIPHON_V_UUID;
            return 0;
        }
        break;
    case ODBC_K_BYTES:
        v->type = SIPHON_V_BYTES;
        v->u.s.ptr = s;
        v->u.s.len = d->len;
        return 0;
    case ODBC_K_JSON:
        v->type = SIPHON_V_JSON;
        v->u.s.ptr = s;
        v->u.s.len = d->len;
        return 0;
    case ODBC_K_TEXT:
        break;
    }
    memset(v, 0, sizeof(*v));
    as_text(v, d);
    return 0;
}

/* ---- watermark text ---- */

int siphon_odbc__datum_text(siphon_buf_t *out, odbc_kind_t k, const odbc_datum_t *d)
{
    static const char hex[] = "0123456789abcdef";
    switch (k) {
    case ODBC_K_INT:
        if (d->len != 8)
            return SIPHON_EINVAL;
        return siphon_buf_printf(out, "%" PRId64, get_i64(d));
    case ODBC_K_FLOAT:
        if (d->len != 8)
            return SIPHON_EINVAL;
        return siphon_buf_printf(out, "%.17g", get_f64(d));
    case ODBC_K_BOOL:
        if (d->len != 1)
            return SIPHON_EINVAL;
        return siphon_buf_appendc(out, d->p[0] ? '1' : '0');
    case ODBC_K_BYTES:
        for (uint32_t i = 0; i < d->len; i++) {
            uint8_t two[2] = {(uint8_t)hex[d->p[i] >> 4], (uint8_t)hex[d->p[i] & 15]};
            if (siphon_buf_append(out, two, 2) < 0)
                return SIPHON_ENOMEM;
        }
        return 0;
    default:
        return siphon_buf_append(out, d->p, d->len);
    }
}

int siphon_odbc__datum_parse(odbc_datum_t *out, odbc_kind_t k, const char *text, size_t len,
                             siphon_arena_t *a)
{
    uint8_t *p;
    char tmp[64];
    out->null = 0;
    switch (k) {
    case ODBC_K_INT:
    case ODBC_K_FLOAT: {
        if (len == 0 || len >= sizeof(tmp))
            return SIPHON_EINVAL;
        memcpy(tmp, text, len);
        tmp[len] = 0;
        char *end;
        uint64_t u;
        if (k == ODBC_K_INT) {
            long long v = strtoll(tmp, &end, 10);
            u = (uint64_t)v;
        } else {
            double f = strtod(tmp, &end);
            memcpy(&u, &f, sizeof(u));
        }
        if (*end)
            return SIPHON_EINVAL;
        if (!(p = siphon_arena_alloc(a, 8)))
            return SIPHON_ENOMEM;
        for (int i = 0; i < 8; i++)
            p[i] = (uint8_t)(u >> (8 * i));
        out->p = p;
        out->len = 8;
        return 0;
    }
    case ODBC_K_BOOL:
        if (len != 1 || (text[0] != '0' && text[0] != '1'))
            return SIPHON_EINVAL;
        if (!(p = siphon_arena_alloc(a, 1)))
            return SIPHON_ENOMEM;
        p[0] = (uint8_t)(text[0] - '0');
        out->p = p;
        out->len = 1;
        return 0;
    case ODBC_K_BYTES:
        if (len % 2)
            return SIPHON_EINVAL;
        if (!(p = siphon_arena_alloc(a, len / 2 + 1)))
            return SIPHON_ENOMEM;
        for (size_t i = 0; i < len; i += 2) {
            int v = 0;
            for (int j = 0; j < 2; j++) {
                char c = text[i + (size_t)j];
                int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (x < 0)
                    return SIPHON_EINVAL;
                v = v * 16 + x;
            }
            p[i / 2] = (uint8_t)v;
        }
        out->p = p;
        out->len = (uint32_t)(len / 2);
        return 0;
    default:
        if (!(p = (uint8_t *)siphon_arena_strndup(a, text, len)))
            return SIPHON_ENOMEM;
        out->p = p;
        out->len = (uint32_t)len;
        return 0;
    }
}
