/*
 * pg_value.c - PostgreSQL text output -> Siphon's typed values, and LSN text.
 *
 * pgoutput v1 sends every column in its type's text output form, as the replication session
 * formats it. The connector forces that session's settings (PG_SESSION_OPTIONS: DateStyle
 * ISO,YMD, TimeZone UTC, extra_float_digits 3, bytea_output hex, client_encoding UTF8), so each
 * type has exactly one shape to parse here. Parsing walks the bytes once, without allocating:
 * TEXT, JSON and BYTES values point into the message buffer, and numeric digits and bytea
 * bytes are rewritten in place (they only get shorter).
 *
 * Special values that the value model cannot hold are passed on as TEXT, so a mapping that
 * expects a number or a date rejects them with SIPHON_ECONVERT (a dead letter) instead of the
 * connector inventing a value: numeric NaN, Infinity and -Infinity; date and timestamp
 * infinity and -infinity; timestamps too far in the future to fit in int64 microseconds since
 * 1970 (after about year 294000). float4/float8 NaN and infinities are ordinary doubles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/postgres/pg_int.h"
#include "core/error.h"

pg_kind_t siphon_pg__kind_for_oid(uint32_t oid, int sql_ascii)
{
    switch (oid) {
    case PG_OID_INT2:
    case PG_OID_INT4:
    case PG_OID_INT8:
        return PG_K_INT;
    case PG_OID_NUMERIC:
        return PG_K_DECIMAL;
    case PG_OID_FLOAT4:
    case PG_OID_FLOAT8:
        return PG_K_FLOAT;
    case PG_OID_BOOL:
        return PG_K_BOOL;
    case PG_OID_DATE:
        return PG_K_DATE;
    case PG_OID_TIME:
        return PG_K_TIME;
    case PG_OID_TIMESTAMP:
        return PG_K_TS;
    case PG_OID_TIMESTAMPTZ:
        return PG_K_TSTZ;
    case PG_OID_BYTEA:
        return PG_K_BYTES;
    case PG_OID_UUID:
        return PG_K_UUID;
    case PG_OID_JSON:
    case PG_OID_JSONB:
        return PG_K_JSON;
    default:
        /* text, varchar, bpchar, name and everything else (interval, timetz, enums, arrays):
         * their text output. In a SQL_ASCII database that text has no known charset. */
        return sql_ascii ? PG_K_RAWTEXT : PG_K_TEXT;
    }
}

siphon_vtype_t siphon_pg__kind_vtype(pg_kind_t kind)
{
    switch (kind) {
    case PG_K_TEXT: return SIPHON_V_TEXT;
    case PG_K_RAWTEXT: return SIPHON_V_RAWTEXT;
    case PG_K_INT: return SIPHON_V_INT;
    case PG_K_FLOAT: return SIPHON_V_FLOAT;
    case PG_K_DECIMAL: return SIPHON_V_DECIMAL;
    case PG_K_BOOL: return SIPHON_V_BOOL;
    case PG_K_DATE: return SIPHON_V_DATE;
    case PG_K_TIME: return SIPHON_V_TIME;
    case PG_K_TS:
    case PG_K_TSTZ: return SIPHON_V_TIMESTAMP;
    case PG_K_BYTES: return SIPHON_V_BYTES;
    case PG_K_UUID: return SIPHON_V_UUID;
    case PG_K_JSON: return SIPHON_V_JSON;
    }
    return SIPHON_V_TEXT;
}

const char *siphon_pg__builtin_type_name(uint32_t oid)
{
    switch (oid) {
    case PG_OID_BOOL: return "boolean";
    case PG_OID_BYTEA: return "bytea";
    case PG_OID_CHAR: return "\"char\"";
    case PG_OID_NAME: return "name";
    case PG_OID_INT8: return "bigint";
    case PG_OID_INT2: return "smallint";
    case PG_OID_INT4: return "integer";
    case PG_OID_TEXT: return "text";
    case PG_OID_OID: return "oid";
    case PG_OID_JSON: return "json";
    case PG_OID_XML: return "xml";
    case PG_OID_FLOAT4: return "real";
    case PG_OID_FLOAT8: return "double precision";
    case PG_OID_MONEY: return "money";
    case PG_OID_BPCHAR: return "character";
    case PG_OID_VARCHAR: return "character varying";
    case PG_OID_DATE: return "date";
    case PG_OID_TIME: return "time without time zone";
    case PG_OID_TIMESTAMP: return "timestamp without time zone";
    case PG_OID_TIMESTAMPTZ: return "timestamp with time zone";
    case PG_OID_INTERVAL: return "interval";
    case PG_OID_TIMETZ: return "time with time zone";
    case PG_OID_NUMERIC: return "numeric";
    case PG_OID_UUID: return "uuid";
    case PG_OID_JSONB: return "jsonb";
    }
    return NULL;
}

/* ---- helpers ---- */

static int bad_value(char *errbuf, size_t errsize, const char *type, const char *p, size_t len)
{
    /* At most a short prefix of the value: enough to recognise the format, not a data dump. */
    int shown = len > 32 ? 32 : (int)len;
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not decode %s value \"%.*s%s\" (%zu bytes): unexpected text format",
                      type, shown, p, len > 32 ? "..." : "", len);
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static inline int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read between min and max decimal digits at p[*i]. 0 or -1. */
static int read_digits(const char *p, size_t len, size_t *i, int min, int max, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    while (*i < len && n < max && is_digit(p[*i])) {
        v = v * 10 + (p[*i] - '0');
        (*i)++;
        n++;
    }
    if (n < min)
        return -1;
    *out = v;
    return 0;
}

static int expect(const char *p, size_t len, size_t *i, char c)
{
    if (*i < len && p[*i] == c) {
        (*i)++;
        return 0;
    }
    return -1;
}

static int is_word(const char *p, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len == n && memcmp(p, w, n) == 0;
}

int64_t siphon_pg__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD" (year 1+ digits); the " BC" suffix is handled by the callers (for timestamps it
 * comes after the time and offset). */
static int parse_date_part(const char *p, size_t len, size_t *i, int64_t *y, unsigned *m,
                           unsigned *d)
{
    int64_t yy, mm, dd;
    if (read_digits(p, len, i, 1, 9, &yy) < 0 || expect(p, len, i, '-') < 0 ||
        read_digits(p, len, i, 2, 2, &mm) < 0 || expect(p, len, i, '-') < 0 ||
        read_digits(p, len, i, 2, 2, &dd) < 0)
        return -1;
    if (mm < 1 || mm > 12 || dd < 1 || dd > 31)
        return -1;
    *y = yy;
    *m = (unsigned)mm;
    *d = (unsigned)dd;
    return 0;
}

/* "HH:MM:SS[.ffffff]" -> microseconds since midnight (24:00:00 allowed, as Postgres does). */
static int parse_time_part(const char *p, size_t len, size_t *i, int64_t *us)
{
    int64_t hh, mi, ss, frac = 0;
    if (read_digits(p, len, i, 2, 2, &hh) < 0 || expect(p, len, i, ':') < 0 ||
        read_digits(p, len, i, 2, 2, &mi) < 0 || expect(p, len, i, ':') < 0 ||
        read_digits(p, len, i, 2, 2, &ss) < 0)
        return -1;
    if (*i < len && p[*i] == '.') {
        (*i)++;
        int n = 0;
        while (*i < len && is_digit(p[*i])) {
            if (++n > 6)
                return -1;
            frac = frac * 10 + (p[*i] - '0');
            (*i)++;
        }
        if (n == 0)
            return -1;
        for (; n < 6; n++)
            frac *= 10;
    }
    if (hh > 24 || mi > 59 || ss > 60)
        return -1;
    *us = ((hh * 60 + mi) * 60 + ss) * INT64_C(1000000) + frac;
    if (*us > INT64_C(86400000000))
        return -1;
    return 0;
}

/* "+HH[:MM[:SS]]" or "-..." -> seconds east of UTC. */
static int parse_offset(const char *p, size_t len, size_t *i, int64_t *secs)
{
    int sign;
    int64_t hh, mm = 0, ss = 0;
    if (*i >= len || (p[*i] != '+' && p[*i] != '-'))
        return -1;
    sign = p[*i] == '-' ? -1 : 1;
    (*i)++;
    if (read_digits(p, len, i, 2, 2, &hh) < 0)
        return -1;
    if (*i < len && p[*i] == ':') {
        (*i)++;
        if (read_digits(p, len, i, 2, 2, &mm) < 0)
            return -1;
        if (*i < len && p[*i] == ':') {
            (*i)++;
            if (read_digits(p, len, i, 2, 2, &ss) < 0)
                return -1;
        }
    }
    *secs = sign * (hh * 3600 + mm * 60 + ss);
    return 0;
}

/* A trailing " BC" (Postgres prints years <= 0 as 1 BC, 2 BC...). */
static int parse_era(const char *p, size_t len, size_t *i, int *bc)
{
    *bc = 0;
    if (*i + 3 == len && memcmp(p + *i, " BC", 3) == 0) {
        *bc = 1;
        *i += 3;
    }
    return *i == len ? 0 : -1;
}

static void set_text(siphon_value_t *v, const char *p, size_t len)
{
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = p;
    v->u.s.len = len;
}

/* ---- decoders by kind ---- */

static int dec_int(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    size_t i = 0;
    int neg = 0;
    uint64_t acc = 0;
    if (i < len && (p[i] == '-' || p[i] == '+')) {
        neg = p[i] == '-';
        i++;
    }
    if (i == len)
        return bad_value(errbuf, errsize, "integer", p, len);
    for (; i < len; i++) {
        unsigned c = (unsigned)(p[i] - '0');
        if (c > 9 || acc > (UINT64_MAX - c) / 10)
            return bad_value(errbuf, errsize, "integer", p, len);
        acc = acc * 10 + c;
    }
    if (neg) {
        if (acc > (uint64_t)INT64_MAX + 1)
            return bad_value(errbuf, errsize, "integer", p, len);
        v->u.i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    } else {
        if (acc > (uint64_t)INT64_MAX)
            return bad_value(errbuf, errsize, "integer", p, len);
        v->u.i = (int64_t)acc;
    }
    v->type = SIPHON_V_INT;
    return 0;
}

static int dec_float(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    char tmp[64];
    char *end;
    /* Shortest round-trip output (extra_float_digits 3) is at most ~25 characters. */
    if (len == 0 || len >= sizeof(tmp))
        return bad_value(errbuf, errsize, "float", p, len);
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    v->u.f = strtod(tmp, &end);
    if (end != tmp + len)
        return bad_value(errbuf, errsize, "float", p, len);
    v->type = SIPHON_V_FLOAT;
    return 0;
}

static int dec_numeric(siphon_value_t *v, char *p, size_t len, char *errbuf, size_t errsize)
{
    size_t i = 0, w = 0, start;
    int32_t scale = 0;
    int point = 0, any = 0;

    if (is_word(p, len, "NaN") || is_word(p, len, "Infinity") || is_word(p, len, "-Infinity")) {
        set_text(v, p, len);
        return 0;
    }
    if (i < len && p[i] == '-') {
        i++;
        w++; /* keep the '-' where it is */
    }
    start = w;
    /* Digits are compacted over the '.' and leading zeros; w never passes i. */
    for (; i < len; i++) {
        char c = p[i];
        if (is_digit(c)) {
            any = 1;
            if (point)
                scale++;
            if (w == start && c == '0')
                continue; /* leading zero of the unscaled integer */
            p[w++] = c;
        } else if (c == '.' && !point) {
            point = 1;
        } else {
            return bad_value(errbuf, errsize, "numeric", p, len);
        }
    }
    if (!any)
        return bad_value(errbuf, errsize, "numeric", p, len);
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.scale = scale;
    if (w == start) {
        /* zero ("0.00", and "-0.00" should a server ever print it): digits "0" */
        p[start] = '0';
        v->u.dec.digits = p + start;
        v->u.dec.len = 1;
    } else {
        v->u.dec.digits = p;
        v->u.dec.len = w;
    }
    return 0;
}

static int dec_bool(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    if (len != 1 || (p[0] != 't' && p[0] != 'f'))
        return bad_value(errbuf, errsize, "boolean", p, len);
    v->type = SIPHON_V_BOOL;
    v->u.b = p[0] == 't';
    return 0;
}

static int dec_date(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    size_t i = 0;
    int64_t y, days;
    unsigned m, d;
    int bc;
    if (is_word(p, len, "infinity") || is_word(p, len, "-infinity")) {
        set_text(v, p, len);
        return 0;
    }
    if (parse_date_part(p, len, &i, &y, &m, &d) < 0 || parse_era(p, len, &i, &bc) < 0)
        return bad_value(errbuf, errsize, "date", p, len);
    if (bc)
        y = 1 - y;
    days = siphon_pg__days_from_civil(y, m, d);
    if (days < INT32_MIN || days > INT32_MAX)
        return bad_value(errbuf, errsize, "date", p, len);
    v->type = SIPHON_V_DATE;
    v->u.date = (int32_t)days;
    return 0;
}

static int dec_time(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    size_t i = 0;
    int64_t us;
    if (parse_time_part(p, len, &i, &us) < 0 || i != len)
        return bad_value(errbuf, errsize, "time", p, len);
    v->type = SIPHON_V_TIME;
    v->u.time_us = us;
    return 0;
}

static int dec_timestamp(siphon_value_t *v, const char *p, size_t len, int tz, char *errbuf,
                         size_t errsize)
{
    size_t i = 0;
    int64_t y, tod, off = 0, days, us;
    unsigned m, d;
    int bc;
    const char *type = tz ? "timestamptz" : "timestamp";
    if (is_word(p, len, "infinity") || is_word(p, len, "-infinity")) {
        set_text(v, p, len);
        return 0;
    }
    if (parse_date_part(p, len, &i, &y, &m, &d) < 0 || expect(p, len, &i, ' ') < 0 ||
        parse_time_part(p, len, &i, &tod) < 0)
        return bad_value(errbuf, errsize, type, p, len);
    if (i < len && (p[i] == '+' || p[i] == '-') && parse_offset(p, len, &i, &off) < 0)
        return bad_value(errbuf, errsize, type, p, len);
    if (parse_era(p, len, &i, &bc) < 0)
        return bad_value(errbuf, errsize, type, p, len);
    if (bc)
        y = 1 - y;
    days = siphon_pg__days_from_civil(y, m, d);
    if (__builtin_mul_overflow(days, INT64_C(86400000000), &us) ||
        __builtin_add_overflow(us, tod, &us) ||
        __builtin_sub_overflow(us, off * INT64_C(1000000), &us)) {
        set_text(v, p, len); /* beyond int64 µs since 1970: see the file comment */
        return 0;
    }
    v->type = SIPHON_V_TIMESTAMP;
    v->u.ts.us = us;
    v->u.ts.tz = tz;
    return 0;
}

static int dec_bytea(siphon_value_t *v, char *p, size_t len, char *errbuf, size_t errsize)
{
    size_t w = 0;
    if (len >= 2 && p[0] == '\\' && p[1] == 'x') {
        if ((len - 2) % 2)
            return bad_value(errbuf, errsize, "bytea", p, len);
        for (size_t i = 2; i < len; i += 2) {
            int hi = hexval(p[i]), lo = hexval(p[i + 1]);
            if (hi < 0 || lo < 0)
                return bad_value(errbuf, errsize, "bytea", p, len);
            p[w++] = (char)(hi << 4 | lo);
        }
    } else {
        /* escape format (bytea_output = escape): \\ and \ooo, everything else literal */
        for (size_t i = 0; i < len;) {
            if (p[i] != '\\') {
                p[w++] = p[i++];
            } else if (i + 1 < len && p[i + 1] == '\\') {
                p[w++] = '\\';
                i += 2;
            } else if (i + 3 < len && p[i + 1] >= '0' && p[i + 1] <= '3' && p[i + 2] >= '0' &&
                       p[i + 2] <= '7' && p[i + 3] >= '0' && p[i + 3] <= '7') {
                p[w++] = (char)((p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 | (p[i + 3] - '0'));
                i += 4;
            } else {
                return bad_value(errbuf, errsize, "bytea", p, len);
            }
        }
    }
    v->type = SIPHON_V_BYTES;
    v->u.s.ptr = p;
    v->u.s.len = w;
    return 0;
}

static int dec_uuid(siphon_value_t *v, const char *p, size_t len, char *errbuf, size_t errsize)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '-' && n > 0 && n < 32 && n % 2 == 0)
            continue;
        int hi = hexval(p[i]), lo = i + 1 < len ? hexval(p[i + 1]) : -1;
        if (hi < 0 || lo < 0 || n >= 32)
            return bad_value(errbuf, errsize, "uuid", p, len);
        v->u.uuid[n / 2] = (uint8_t)(hi << 4 | lo);
        n += 2;
        i++;
    }
    if (n != 32)
        return bad_value(errbuf, errsize, "uuid", p, len);
    v->type = SIPHON_V_UUID;
    return 0;
}

int siphon_pg__decode(siphon_value_t *v, pg_kind_t kind, char *p, size_t len, char *errbuf,
                      size_t errsize)
{
    switch (kind) {
    case PG_K_TEXT:
        set_text(v, p, len);
        return 0;
    case PG_K_RAWTEXT:
        v->type = SIPHON_V_RAWTEXT;
        v->u.s.ptr = p;
        v->u.s.len = len;
        return 0;
    case PG_K_JSON:
        v->type = SIPHON_V_JSON;
        v->u.s.ptr = p;
        v->u.s.len = len;
        return 0;
    case PG_K_INT: return dec_int(v, p, len, errbuf, errsize);
    case PG_K_FLOAT: return dec_float(v, p, len, errbuf, errsize);
    case PG_K_DECIMAL: return dec_numeric(v, p, len, errbuf, errsize);
    case PG_K_BOOL: return dec_bool(v, p, len, errbuf, errsize);
    case PG_K_DATE: return dec_date(v, p, len, errbuf, errsize);
    case PG_K_TIME: return dec_time(v, p, len, errbuf, errsize);
    case PG_K_TS: return dec_timestamp(v, p, len, 0, errbuf, errsize);
    case PG_K_TSTZ: return dec_timestamp(v, p, len, 1, errbuf, errsize);
    case PG_K_BYTES: return dec_bytea(v, p, len, errbuf, errsize);
    case PG_K_UUID: return dec_uuid(v, p, len, errbuf, errsize);
    }
    return siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not decode value: unknown kind %d",
                      (int)kind);
}

/* ---- LSN ---- */

int siphon_pg__lsn_format(uint64_t lsn, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
    return n < 0 || (size_t)n >= size ? SIPHON_EINVAL : 0;
}

int siphon_pg__lsn_parse(uint64_t *lsn, const char *text)
{
    uint64_t part[2] = {0, 0};
    const char *s = text;
    for (int k = 0; k < 2; k++) {
        int n = 0, h;
        while ((h = hexval(*s)) >= 0) {
            if (++n > 8)
                return SIPHON_EINVAL;
            part[k] = part[k] << 4 | (uint64_t)h;
            s++;
        }
        if (n == 0 || *s != (k == 0 ? '/' : '\0'))
            return SIPHON_EINVAL;
        s++;
    }
    *lsn = part[0] << 32 | part[1];
    return 0;
}
