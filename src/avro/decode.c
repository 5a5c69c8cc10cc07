/*
 * decode.c - single-object-encoded messages of a stream back to JSON text, for tests and
 * `siphon tail`.
 *
 * avro-c reads the binary into a generic value; the walk that renders it follows our parsed
 * type graph alongside, because only that graph knows the logical types: decimals come out as
 * strings with their point ("123.45", never a float), dates as "YYYY-MM-DD", times as
 * "HH:MM:SS.ffffff", timestamps as ISO-8601 with microseconds (and "Z" unless local), uuids as
 * text, bytes as "\\x" + hex. Unions print as the value of their branch (no {"type": value}
 * wrapper): this is for reading, not Avro's JSON encoding. Not on the hot path.
 */
#include "avro/avro_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Howard Hinnant's civil_from_days: days since 1970-01-01 -> proleptic Gregorian date. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int siphon_avro__format_date(char *buf, size_t size, int64_t days)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999)
        return snprintf(buf, size, "%04" PRId64 "-%02u-%02u", y, m, d);
    return snprintf(buf, size, "%+05" PRId64 "-%02u-%02u", y, m, d);
}

int siphon_avro__format_timestamp(char *buf, size_t size, int64_t us, int digits, int utc)
{
    int64_t days = floor_div(us, INT64_C(86400000000));
    int64_t rem = us - days * INT64_C(86400000000);
    int n = siphon_avro__format_date(buf, size, days);
    if (n < 0 || (size_t)n >= size)
        return n;
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    if (digits == 3)
        frac /= 1000;
    int k = snprintf(buf + n, size - (size_t)n, "T%02d:%02d:%02d.%0*" PRId64 "%s",
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), digits, frac,
                     utc ? "Z" : "");
    return k < 0 ? k : n + k;
}

static int format_time(char *buf, size_t size, int64_t us, int digits)
{
    const char *sign = us < 0 ? "-" : "";
    uint64_t u = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
    uint64_t secs = u / 1000000, frac = u % 1000000;
    if (digits == 3)
        frac /= 1000;
    return snprintf(buf, size, "%s%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%0*" PRIu64, sign,
                    secs / 3600, secs / 60 % 60, secs % 60, digits, frac);
}

/* The shortest text that reads back as the same double (or float when is_float). */
static void format_real(char *buf, size_t size, double d, int is_float)
{
    int maxp = is_float ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(buf, size, "%.*g", p, d);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)d : back == d)
            return;
    }
}

typedef struct rctx {
    siphon_buf_t *out;
    char *errbuf;
    size_t errsize;
} rctx_t;

static int bad(rctx_t *r, const char *what)
{
    return siphon_err(r->errbuf, r->errsize, SIPHON_EPROTO,
                      "could not decode message: %s: %s", what, avro_strerror());
}

static int put_str(rctx_t *r, const char *s)
{
    return siphon_avro__json_string(r->out, s, strlen(s)) < 0 ? SIPHON_ENOMEM : 0;
}

static int put_hex(rctx_t *r, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (siphon_buf_reserve(r->out, 2 * n + 6) < 0)
        return SIPHON_ENOMEM;
    siphon_buf_append(r->out, "\"\\\\x", 4);
    for (size_t i = 0; i < n; i++) {
        r->out->data[r->out->len++] = (uint8_t)hex[p[i] >> 4];
        r->out->data[r->out->len++] = (uint8_t)hex[p[i] & 15];
    }
    return siphon_buf_appendc(r->out, '"');
}

static int put_decimal(rctx_t *r, const void *p, size_t n, int scale)
{
    if (siphon_buf_appendc(r->out, '"') < 0 ||
        siphon_avro__decimal_from_bytes(r->out, p, n, scale) < 0 ||
        siphon_buf_appendc(r->out, '"') < 0)
        return SIPHON_ENOMEM;
    return 0;
}

static int render(rctx_t *r, const siphon_avro_type_t *t, avro_value_t *v, int depth)
{
    char tmp[64];
    int rc = 0;
    if (depth > 200)
        return siphon_err(r->errbuf, r->errsize, SIPHON_EPROTO,
                          "could not decode message: nested too deeply");
    switch (t->kind) {
    case SIPHON_AVRO_NULL:
        return siphon_buf_append(r->out, "null", 4);
    case SIPHON_AVRO_BOOLEAN: {
        int b;
        if (avro_value_get_boolean(v, &b))
            return bad(r, "boolean");
        return b ? siphon_buf_append(r->out, "true", 4) : siphon_buf_append(r->out, "false", 5);
    }
    case SIPHON_AVRO_INT: {
        int32_t x;
        if (avro_value_get_int(v, &x))
            return bad(r, "int");
        if (t->logical == SIPHON_AVRO_LT_DATE) {
            siphon_avro__format_date(tmp, sizeof(tmp), x);
            return put_str(r, tmp);
        }
        if (t->logical == SIPHON_AVRO_LT_TIME_MILLIS) {
            format_time(tmp, sizeof(tmp), (int64_t)x * 1000, 3);
            return put_str(r, tmp);
        }
        return siphon_buf_printf(r->out, "%" PRId32, x);
    }
    case SIPHON_AVRO_LONG: {
        int64_t x;
        if (avro_value_get_long(v, &x))
            return bad(r, "long");
        switch (t->logical) {
        case SIPHON_AVRO_LT_TIME_MICROS:
            format_time(tmp, sizeof(tmp), x, 6);
            return put_str(r, tmp);
        case SIPHON_AVRO_LT_TIMESTAMP_MICROS:
        case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS:
            siphon_avro__format_timestamp(tmp, sizeof(tmp), x, 6,
                                          t->logical == SIPHON_AVRO_LT_TIMESTAMP_MICROS);
            return put_str(r, tmp);
        case SIPHON_AVRO_LT_TIMESTAMP_MILLIS:
        case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS:
            if (x > INT64_MAX / 1000 || x < INT64_MIN / 1000)
                return siphon_buf_printf(r->out, "%" PRId64, x);
            siphon_avro__format_timestamp(tmp, sizeof(tmp), x * 1000, 3,
                                          t->logical == SIPHON_AVRO_LT_TIMESTAMP_MILLIS);
            return put_str(r, tmp);
        default:
            return siphon_buf_printf(r->out, "%" PRId64, x);
        }
    }
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE: {
        double d;
        if (t->kind == SIPHON_AVRO_FLOAT) {
            float f;
            if (avro_value_get_float(v, &f))
                return bad(r, "float");
            d = f;
        } else if (avro_value_get_double(v, &d)) {
            return bad(r, "double");
        }
        if (isnan(d))
            return put_str(r, "NaN");
        if (isinf(d))
            return put_str(r, d > 0 ? "Infinity" : "-Infinity");
        format_real(tmp, sizeof(tmp), d, t->kind == SIPHON_AVRO_FLOAT);
        return siphon_buf_append(r->out, tmp, strlen(tmp));
    }
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_FIXED: {
        const void *p;
        size_t n;
        if ((t->kind == SIPHON_AVRO_BYTES ? avro_value_get_bytes(v, &p, &n)
                                          : avro_value_get_fixed(v, &p, &n)) != 0)
            return bad(r, "bytes");
        if (t->logical == SIPHON_AVRO_LT_DECIMAL)
            return put_decimal(r, p, n, t->scale);
        return put_hex(r, p, n);
    }
    case SIPHON_AVRO_STRING: {
        const char *s;
        size_t n;
        if (avro_value_get_string(v, &s, &n))
            return bad(r, "string");
        return siphon_avro__json_string(r->out, s, n ? n - 1 : 0) < 0 ? SIPHON_ENOMEM : 0;
    }
    case SIPHON_AVRO_ENUM: {
        int e;
        if (avro_value_get_enum(v, &e) || e < 0 || e >= t->nsymbols)
            return bad(r, "enum");
        return put_str(r, t->symbols[e]);
    }
    case SIPHON_AVRO_RECORD:
        if (siphon_buf_appendc(r->out, '{') < 0)
            return SIPHON_ENOMEM;
        for (int i = 0; i < t->nfields; i++) {
            avro_value_t fv;
            if (avro_value_get_by_index(v, (size_t)i, &fv, NULL))
                return bad(r, t->fields[i].name);
            if ((i && siphon_buf_appendc(r->out, ',') < 0) || put_str(r, t->fields[i].name) < 0 ||
                siphon_buf_appendc(r->out, ':') < 0)
                return SIPHON_ENOMEM;
            if ((rc = render(r, t->fields[i].type, &fv, depth + 1)) < 0)
                return rc;
        }
        return siphon_buf_appendc(r->out, '}');
    case SIPHON_AVRO_ARRAY:
    case SIPHON_AVRO_MAP: {
        int arr = t->kind == SIPHON_AVRO_ARRAY;
        size_t n;
        if (avro_value_get_size(v, &n))
            return bad(r, arr ? "array" : "map");
        if (siphon_buf_appendc(r->out, arr ? '[' : '{') < 0)
            return SIPHON_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            const char *key = NULL;
            if (avro_value_get_by_index(v, i, &item, &key))
                return bad(r, arr ? "array" : "map");
            if (i && siphon_buf_appendc(r->out, ',') < 0)
                return SIPHON_ENOMEM;
            if (!arr && (put_str(r, key ? key : "") < 0 || siphon_buf_appendc(r->out, ':') < 0))
                return SIPHON_ENOMEM;
            if ((rc = render(r, arr ? t->items : t->values, &item, depth + 1)) < 0)
                return rc;
        }
        return siphon_buf_appendc(r->out, arr ? ']' : '}');
    }
    case SIPHON_AVRO_UNION: {
        int d;
        avro_value_t br;
        if (avro_value_get_discriminant(v, &d) || d < 0 || d >= t->nbranches ||
            avro_value_get_current_branch(v, &br))
            return bad(r, "union");
        return render(r, t->branches[d], &br, depth + 1);
    }
    }
    return SIPHON_EPROTO;
}

int siphon_avro_stream_decode_json(char **out, const siphon_avro_stream_t *st, int is_key,
                                   const void *msg, size_t len, char *errbuf, size_t errsize)
{
    const uint8_t *p = msg;
    siphon_buf_t buf = {0};
    avro_reader_t reader = NULL;
    avro_value_t value;
    int have_value = 0;
    int rc;

    if (!out || !st || (!msg && len))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not decode message: no %s",
                          !out ? "output" : !st ? "stream" : "message");
    *out = NULL;
    const char *what = is_key ? "key" : "envelope";
    uint64_t want = is_key ? st->key_fp : st->value_fp;
    if (len < SIPHON_AVRO_SOE_HEADER_LEN || p[0] != 0xC3 || p[1] != 0x01)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not decode message: not Avro single-object encoding (it starts "
                          "with C3 01 and is at least 10 bytes)");
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp |= (uint64_t)p[2 + i] << (8 * i);
    if (fp != want)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not decode message: its schema fingerprint %016" PRIx64
                          " is not the %s schema of %s (%016" PRIx64 ")",
                          fp, what, st->sch->record->name, want);

    avro_value_iface_t *iface = is_key ? st->key_iface : st->value_iface;
    const siphon_avro_type_t *type = is_key ? st->key_type : st->env_type;
    size_t body = len - SIPHON_AVRO_SOE_HEADER_LEN;
    if (avro_generic_value_new(iface, &value) != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not decode message: %s",
                          avro_strerror());
    have_value = 1;
    if (!(reader = avro_reader_memory((const char *)p + SIPHON_AVRO_SOE_HEADER_LEN,
                                      (int64_t)body))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not decode message: out of memory");
        goto out;
    }
    if (avro_value_read(reader, &value) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                        "could not decode message: the %s of %s does not parse: %s", what,
                        st->sch->record->name, avro_strerror());
        goto out;
    }
    size_t used = 0;
    if (avro_value_sizeof(&value, &used) != 0 || used != body) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                        "could not decode message: %zu bytes follow the %s", body - used, what);
        goto out;
    }
    rctx_t r = {&buf, errbuf, errsize};
    if ((rc = render(&r, type, &value, 0)) < 0 || (rc = siphon_buf_appendc(&buf, '\0')) < 0) {
        if (rc == SIPHON_ENOMEM)
            siphon_err(errbuf, errsize, rc, "could not decode message: out of memory");
        goto out;
    }
    *out = (char *)buf.data; /* the caller frees it */
    buf.data = NULL;
    rc = 0;
out:
    siphon_buf_free(&buf);
    if (reader)
        avro_reader_free(reader);
    if (have_value)
        avro_value_decref(&value);
    return rc;
}
