/*
 * my_value.c - one column of a binlog row image -> siphon_value_t, and the column plans built
 * from a TABLE_MAP's type codes and metadata. Everything here works on bytes only, so the unit
 * tests exercise it with images built from the binlog format's documentation (the row formats
 * of MySQL 5.6+ and MariaDB 10.x are the same).
 *
 * We decode row images ourselves: libmariadb's mariadb_rpl_extract_rows() gets CHAR, ENUM, SET
 * and signedness wrong in the version we ship with (DEPENDENCIES.md).
 *
 * Byte orders, the part that is easy to get wrong: integers, DATE, YEAR, the old TIME/DATETIME/
 * TIMESTAMP, ENUM, SET and every length prefix are little-endian; DECIMAL, TIME2, DATETIME2,
 * TIMESTAMP2 (and their fractions) and BIT are big-endian.
 *
 * What each type becomes:
 *   TINYINT..BIGINT     INT; a BIGINT UNSIGNED above 2^63-1 becomes DECIMAL (scale 0) so it is
 *                       never wrapped; YEAR INT (0 for year 0000)
 *   DECIMAL             DECIMAL, exactly (the packed binary format, up to 65 digits)
 *   FLOAT, DOUBLE       FLOAT (a FLOAT widened to double exactly)
 *   DATE                DATE; DATETIME TIMESTAMP without time zone; TIMESTAMP TIMESTAMP in UTC
 *                       (tz 1); TIME TIME (it may be negative or past 24 h: -838:59:59 to
 *                       838:59:59), microseconds kept
 *   zero dates          '0000-00-00', '2024-00-00', '0000-00-00 00:00:00' and a TIMESTAMP of 0
 *                       become TEXT as the server prints them; a mapping decides what a text
 *                       may become (docs/mysql.md)
 *   CHAR, VARCHAR, TEXT TEXT in UTF-8, converted from the column's character set (latin1 by
 *                       table, others with iconv); a charset iconv cannot read gives RAWTEXT;
 *                       CHAR loses its trailing spaces as in a SELECT
 *   BINARY, VARBINARY,  BYTES; BINARY(n) is padded with zero bytes to n, as a SELECT returns it
 *   BLOB, GEOMETRY
 *   ENUM, SET           TEXT of the value (SET: members joined by ',')
 *   BIT(1)              BOOL; BIT(n) INT (DECIMAL past 2^63-1)
 *   JSON                JSON text (MySQL's binary JSON converted; MariaDB's JSON is a LONGTEXT)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

/* ---- character sets ---- */

typedef struct cs_entry {
    const char *mysql;
    my_cs_kind_t kind;
    const char *iconv;
} cs_entry_t;

static const cs_entry_t cs_table[] = {
    {"utf8mb4", MY_CS_UTF8, NULL},   {"utf8mb3", MY_CS_UTF8, NULL},
    {"utf8", MY_CS_UTF8, NULL},      {"ascii", MY_CS_UTF8, NULL},
    {"binary", MY_CS_BINARY, NULL},  {"latin1", MY_CS_LATIN1, NULL},
    {"latin2", MY_CS_ICONV, "ISO-8859-2"},   {"latin5", MY_CS_ICONV, "ISO-8859-9"},
    {"latin7", MY_CS_ICONV, "ISO-8859-13"},  {"greek", MY_CS_ICONV, "ISO-8859-7"},
    {"hebrew", MY_CS_ICONV, "ISO-8859-8"},   {"cp1250", MY_CS_ICONV, "CP1250"},
    {"cp1251", MY_CS_ICONV, "CP1251"},       {"cp1256", MY_CS_ICONV, "CP1256"},
    {"cp1257", MY_CS_ICONV, "CP1257"},       {"cp850", MY_CS_ICONV, "CP850"},
    {"cp852", MY_CS_ICONV, "CP852"},         {"cp866", MY_CS_ICONV, "CP866"},
    {"koi8r", MY_CS_ICONV, "KOI8-R"},        {"koi8u", MY_CS_ICONV, "KOI8-U"},
    {"macroman", MY_CS_ICONV, "MACINTOSH"},  {"macce", MY_CS_ICONV, "MAC-CENTRALEUROPE"},
    {"tis620", MY_CS_ICONV, "TIS-620"},      {"armscii8", MY_CS_ICONV, "ARMSCII-8"},
    {"geostd8", MY_CS_ICONV, "GEORGIAN-PS"}, {"keybcs2", MY_CS_UNKNOWN, NULL},
    {"dec8", MY_CS_UNKNOWN, NULL},           {"swe7", MY_CS_UNKNOWN, NULL},
    {"hp8", MY_CS_UNKNOWN, NULL},            {"sjis", MY_CS_ICONV, "SHIFT_JIS"},
    {"cp932", MY_CS_ICONV, "CP932"},         {"ujis", MY_CS_ICONV, "EUC-JP"},
    {"eucjpms", MY_CS_ICONV, "EUC-JP-MS"},   {"euckr", MY_CS_ICONV, "EUC-KR"},
    {"gb2312", MY_CS_ICONV, "GB2312"},       {"gbk", MY_CS_ICONV, "GBK"},
    {"gb18030", MY_CS_ICONV, "GB18030"},     {"big5", MY_CS_ICONV, "BIG5"},
    {"ucs2", MY_CS_ICONV, "UCS-2BE"},        {"utf16", MY_CS_ICONV, "UTF-16BE"},
    {"utf16le", MY_CS_ICONV, "UTF-16LE"},    {"utf32", MY_CS_ICONV, "UTF-32BE"},
};

my_cs_kind_t siphon_my__cs_kind(const char *csname, const char **iconv_name)
{
    if (iconv_name)
        *iconv_name = NULL;
    if (!csname || !*csname)
        return MY_CS_UNKNOWN;
    for (size_t i = 0; i < sizeof(cs_table) / sizeof(cs_table[0]); i++)
        if (strcasecmp(cs_table[i].mysql, csname) == 0) {
            if (iconv_name)
                *iconv_name = cs_table[i].iconv;
            return cs_table[i].kind;
        }
    return MY_CS_UNKNOWN;
}

/* MySQL's latin1 is Windows-1252, except that the five bytes 1252 leaves undefined map to the
 * C1 controls of the same value (as in ISO-8859-1). */
static const uint16_t cp1252_80[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

size_t siphon_my__latin1_to_utf8(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            continue;
        }
        if (c < 0xA0)
            c = cp1252_80[c - 0x80];
        if (c < 0x800) {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)(0xE0 | (c >> 12));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return o;
}

/* Convert n bytes with iconv into the arena. 0 with out and outlen set, 1 when the bytes are
 * not valid in that charset (the caller keeps them raw), or SIPHON_ENOMEM. */
static int iconv_to_utf8(const my_vctx_t *vx, const char *name, const uint8_t *in, size_t n,
                         const char **out, size_t *outlen)
{
    my_iconv_t *ic = NULL;
    for (my_iconv_t *e = vx->iconvs ? *vx->iconvs : NULL; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            ic = e;
    if (!ic) {
        if (!vx->iconvs)
            return 1;
        iconv_t cd = iconv_open("UTF-8", name);
        if (cd == (iconv_t)-1)
            return 1;
        if (!(ic = calloc(1, sizeof(*ic)))) {
            iconv_close(cd);
            return SIPHON_ENOMEM;
        }
        ic->name = name;
        ic->cd = cd;
        ic->next = *vx->iconvs;
        *vx->iconvs = ic;
    }
    size_t cap = 4 * n + 4;
    char *buf = siphon_arena_alloc(vx->arena, cap);
    if (!buf)
        return SIPHON_ENOMEM;
    char *ip = (char *)in, *op = buf;
    size_t il = n, ol = cap;
    iconv(ic->cd, NULL, NULL, NULL, NULL);
    if (iconv(ic->cd, &ip, &il, &op, &ol) == (size_t)-1 ||
        iconv(ic->cd, NULL, NULL, &op, &ol) == (size_t)-1)
        return 1;
    *out = buf;
    *outlen = cap - ol;
    return 0;
}

/* Text of a character column: *v becomes TEXT (UTF-8), BYTES (binary) or RAWTEXT. */
static int text_value(const my_vctx_t *vx, my_cs_kind_t cs, const char *iconv_name,
                      const uint8_t *p, size_t n, siphon_value_t *v)
{
    v->u.s.ptr = (const char *)p;
    v->u.s.len = n;
    switch (cs) {
    case MY_CS_UTF8:
        v->type = SIPHON_V_TEXT;
        return 0;
    case MY_CS_BINARY:
        v->type = SIPHON_V_BYTES;
        return 0;
    case MY_CS_LATIN1: {
        size_t i = 0;
        while (i < n && p[i] < 0x80)
            i++;
        v->type = SIPHON_V_TEXT;
        if (i == n)
            return 0; /* plain ASCII: no copy */
        char *buf = siphon_arena_alloc(vx->arena, 3 * n + 1);
        if (!buf)
            return SIPHON_ENOMEM;
        v->u.s.ptr = buf;
        v->u.s.len = siphon_my__latin1_to_utf8(buf, p, n);
        return 0;
    }
    case MY_CS_ICONV: {
        const char *out;
        size_t outlen;
        int rc = iconv_name ? iconv_to_utf8(vx, iconv_name, p, n, &out, &outlen) : 1;
        if (rc < 0)
            return rc;
        if (rc == 0) {
            v->type = SIPHON_V_TEXT;
            v->u.s.ptr = out;
            v->u.s.len = outlen;
        } else {
            v->type = SIPHON_V_RAWTEXT;
        }
        return 0;
    }
    case MY_CS_UNKNOWN:
    default:
        v->type = SIPHON_V_RAWTEXT;
        return 0;
    }
}

/* ---- column plans ---- */

size_t siphon_my__meta_len(uint8_t type)
{
    switch (type) {
    case MYT_FLOAT:
    case MYT_DOUBLE:
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY:
    case MYT_JSON:
    case MYT_TIMESTAMP2:
    case MYT_DATETIME2:
    case MYT_TIME2:
        return 1;
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
    case MYT_BIT:
    case MYT_NEWDECIMAL:
    case MYT_STRING:
    case MYT_ENUM:
    case MYT_SET:
        return 2;
    default:
        return 0;
    }
}

int siphon_my__col_from_meta(my_col_t *c, uint8_t type, const uint8_t *m, char *errbuf,
                             size_t errsize)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    switch (type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG:
    case MYT_YEAR:
    case MYT_DATE:
    case MYT_NEWDATE:
    case MYT_NULL:
    case MYT_TIMESTAMP:
    case MYT_DATETIME:
    case MYT_TIME:
        break;
    case MYT_FLOAT:
    case MYT_DOUBLE:
        c->len = type == MYT_FLOAT ? 4 : 8;
        break;
    case MYT_TIMESTAMP2:
    case MYT_DATETIME2:
    case MYT_TIME2:
        c->fsp = m[0];
        if (c->fsp > 6)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "fractional seconds precision %u of a temporal column is more "
                              "than 6", (unsigned)c->fsp);
        break;
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY:
    case MYT_JSON:
        c->len = m[0];
        if (c->len < 1 || c->len > 4)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a BLOB/TEXT column declares %u length bytes (expected 1 to 4)",
                              (unsigned)c->len);
        break;
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
        c->type = MYT_VARCHAR;
        c->len = (uint32_t)m[0] | ((uint32_t)m[1] << 8);
        break;
    case MYT_BIT:
        c->bits = (uint32_t)m[1] * 8 + m[0];
        c->len = (c->bits + 7) / 8;
        if (c->bits == 0 || c->bits > 64)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a BIT column declares %u bits (expected 1 to 64)",
                              (unsigned)c->bits);
        break;
    case MYT_NEWDECIMAL:
        c->prec = m[0];
        c->scale = m[1];
        if (c->prec == 0 || c->prec > 65 || c->scale > 30 || c->scale > c->prec)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a DECIMAL column declares precision %u, scale %u (expected at "
                              "most 65 digits and 30 decimals)",
                              (unsigned)c->prec, (unsigned)c->scale);
        break;
    case MYT_STRING:
    case MYT_ENUM:
    case MYT_SET: {
        /* byte 0 holds the real type; CHAR lengths past 255 borrow its bits 4-5, inverted */
        uint8_t real = m[0], b1 = m[1];
        uint32_t len = b1;
        if ((real & 0x30) != 0x30) {
            len = b1 | ((uint32_t)((real & 0x30) ^ 0x30) << 4);
            real |= 0x30;
        }
        if (real == MYT_ENUM || real == MYT_SET) {
            c->type = real;
            c->len = b1;
            if (real == MYT_ENUM ? (b1 < 1 || b1 > 2) : (b1 < 1 || b1 > 8))
                return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                                  "an %s column declares %u bytes", real == MYT_ENUM ? "ENUM"
                                                                                   : "SET",
                                  (unsigned)b1);
        } else if (real == MYT_STRING) {
            c->type = MYT_STRING;
            c->len = len;
        } else {
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a CHAR column declares the unknown real type %u", (unsigned)real);
        }
        break;
    }
    case MYT_DECIMAL:
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "the column uses the pre-5.0 DECIMAL format (type 0), which Siphon "
                          "cannot decode (run ALTER TABLE ... FORCE to rebuild the table with "
                          "the current DECIMAL format)");
    default:
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "the column has binlog type %u, which Siphon does not know",
                          (unsigned)type);
    }
    return 0;
}

void siphon_my__col_finish(my_col_t *c)
{
    if (c->collation > 0 && c->cs == MY_CS_UTF8 && !c->iconv_name) {
        /* caller set only the collation id: charset derived by the caller (catalog or
         * mariadb_get_charset_by_nr) is already in cs; nothing to do */
    }
    switch (c->type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG:
    case MYT_YEAR:
        c->vtype = SIPHON_V_INT;
        break;
    case MYT_FLOAT:
    case MYT_DOUBLE:
        c->vtype = SIPHON_V_FLOAT;
        break;
    case MYT_NEWDECIMAL:
        c->vtype = SIPHON_V_DECIMAL;
        break;
    case MYT_DATE:
    case MYT_NEWDATE:
        c->vtype = SIPHON_V_DATE;
        break;
    case MYT_TIME:
    case MYT_TIME2:
        c->vtype = SIPHON_V_TIME;
        break;
    case MYT_DATETIME:
    case MYT_DATETIME2:
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2:
        c->vtype = SIPHON_V_TIMESTAMP;
        break;
    case MYT_BIT:
        c->vtype = c->bits == 1 ? SIPHON_V_BOOL : SIPHON_V_INT;
        break;
    case MYT_JSON:
        c->vtype = SIPHON_V_JSON;
        break;
    case MYT_ENUM:
    case MYT_SET:
        c->vtype = SIPHON_V_TEXT;
        break;
    case MYT_GEOMETRY:
        c->vtype = SIPHON_V_BYTES;
        break;
    case MYT_NULL:
        c->vtype = SIPHON_V_NULL;
        break;
    default: /* character and binary strings, blobs */
        if (c->json && c->cs != MY_CS_BINARY)
            c->vtype = SIPHON_V_JSON;
        else
            c->vtype = c->cs == MY_CS_BINARY ? SIPHON_V_BYTES
                       : c->cs == MY_CS_UNKNOWN ? SIPHON_V_RAWTEXT
                                                : SIPHON_V_TEXT;
        break;
    }
}

const char *siphon_my__col_type_name(const my_col_t *c, char *buf, size_t size)
{
    const char *u = c->is_unsigned ? " unsigned" : "";
    int bin = c->cs == MY_CS_BINARY;
    switch (c->type) {
    case MYT_TINY: snprintf(buf, size, "tinyint%s", u); break;
    case MYT_SHORT: snprintf(buf, size, "smallint%s", u); break;
    case MYT_INT24: snprintf(buf, size, "mediumint%s", u); break;
    case MYT_LONG: snprintf(buf, size, "int%s", u); break;
    case MYT_LONGLONG: snprintf(buf, size, "bigint%s", u); break;
    case MYT_YEAR: snprintf(buf, size, "year"); break;
    case MYT_FLOAT: snprintf(buf, size, "float%s", u); break;
    case MYT_DOUBLE: snprintf(buf, size, "double%s", u); break;
    case MYT_NEWDECIMAL: snprintf(buf, size, "decimal(%u,%u)%s", c->prec, c->scale, u); break;
    case MYT_DATE:
    case MYT_NEWDATE: snprintf(buf, size, "date"); break;
    case MYT_TIME: snprintf(buf, size, "time"); break;
    case MYT_TIME2: snprintf(buf, size, c->fsp ? "time(%u)" : "time", c->fsp); break;
    case MYT_DATETIME: snprintf(buf, size, "datetime"); break;
    case MYT_DATETIME2: snprintf(buf, size, c->fsp ? "datetime(%u)" : "datetime", c->fsp); break;
    case MYT_TIMESTAMP: snprintf(buf, size, "timestamp"); break;
    case MYT_TIMESTAMP2:
        snprintf(buf, size, c->fsp ? "timestamp(%u)" : "timestamp", c->fsp);
        break;
    case MYT_BIT: snprintf(buf, size, "bit(%u)", c->bits); break;
    case MYT_JSON: snprintf(buf, size, "json"); break;
    case MYT_ENUM: snprintf(buf, size, "enum"); break;
    case MYT_SET: snprintf(buf, size, "set"); break;
    case MYT_GEOMETRY: snprintf(buf, size, "geometry"); break;
    case MYT_NULL: snprintf(buf, size, "null"); break;
    case MYT_VARCHAR: snprintf(buf, size, "%s(%u bytes)", bin ? "varbinary" : "varchar", c->len); break;
    case MYT_STRING: snprintf(buf, size, "%s(%u bytes)", bin ? "binary" : "char", c->len); break;
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_BLOB: {
        static const char *const blob[] = {"tiny", "", "medium", "long"};
        snprintf(buf, size, "%s%s", blob[c->len - 1], bin ? "blob" : "text");
        break;
    }
    default: snprintf(buf, size, "type %u", c->type); break;
    }
    return buf;
}

int siphon_my__col_set_syms(my_col_t *c, int n, const char *const *syms, const size_t *lens)
{
    for (int i = 0; i < c->nsyms; i++)
        free(c->syms[i]);
    free(c->syms);
    free(c->symlens);
    c->syms = NULL;
    c->symlens = NULL;
    c->nsyms = 0;
    if (n <= 0)
        return 0;
    if (!(c->syms = calloc((size_t)n, sizeof(char *))) ||
        !(c->symlens = calloc((size_t)n, sizeof(size_t))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)syms[i];
        size_t len = lens[i];
        char *d = NULL;
        size_t dl = len;
        if (c->cs == MY_CS_LATIN1) {
            if ((d = malloc(3 * len + 1)))
                dl = siphon_my__latin1_to_utf8(d, s, len);
        } else if (c->cs == MY_CS_ICONV && c->iconv_name) {
            iconv_t cd = iconv_open("UTF-8", c->iconv_name);
            if (cd != (iconv_t)-1) {
                size_t cap = 4 * len + 4, il = len, ol = cap;
                char *ip = (char *)s, *op;
                if ((d = malloc(cap + 1))) {
                    op = d;
                    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
                        free(d);
                        d = NULL;
                    } else {
                        dl = cap - ol;
                    }
                }
                iconv_close(cd);
            }
        }
        if (!d) {
            if (!(d = malloc(len + 1)))
                return SIPHON_ENOMEM;
            memcpy(d, s, len);
            dl = len;
        }
        d[dl] = '\0';
        c->syms[i] = d;
        c->symlens[i] = dl;
        c->nsyms++;
    }
    return 0;
}

void siphon_my__col_free(my_col_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nsyms; i++)
        free(c->syms[i]);
    free(c->syms);
    free(c->symlens);
    c->syms = NULL;
    c->symlens = NULL;
    c->nsyms = 0;
}

int siphon_my__col_copy(my_col_t *dst, const my_col_t *src)
{
    *dst = *src;
    dst->syms = NULL;
    dst->symlens = NULL;
    dst->nsyms = 0;
    if (src->nsyms == 0)
        return 0;
    if (!(dst->syms = calloc((size_t)src->nsyms, sizeof(char *))) ||
        !(dst->symlens = calloc((size_t)src->nsyms, sizeof(size_t))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < src->nsyms; i++) {
        if (!(dst->syms[i] = malloc(src->symlens[i] + 1)))
            return SIPHON_ENOMEM;
        memcpy(dst->syms[i], src->syms[i], src->symlens[i] + 1);
        dst->symlens[i] = src->symlens[i];
        dst->nsyms++;
    }
    return 0;
}

/* ---- helpers ---- */

static inline uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int64_t siphon_my__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* A value that does not exist as a date (zero parts): TEXT as the server prints it. */
static int zero_text(const my_vctx_t *vx, siphon_value_t *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int zero_text(const my_vctx_t *vx, siphon_value_t *v, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    char *s = siphon_arena_strndup(vx->arena, tmp, (size_t)n);
    if (!s)
        return SIPHON_ENOMEM;
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = s;
    v->u.s.len = (size_t)n;
    return 0;
}

/* ".123" style fraction text of fsp digits for zero-date text, or "" */
static void frac_text(char *out, size_t size, unsigned fsp, uint32_t us)
{
    if (!fsp) {
        out[0] = '\0';
        return;
    }
    char d[16];
    snprintf(d, sizeof(d), "%06u", (unsigned)(us % 1000000));
    snprintf(out, size, ".%.*s", (int)fsp, d);
}

/* Fraction bytes of TIME2/DATETIME2/TIMESTAMP2 for a precision. */
static int frac_bytes(unsigned fsp)
{
    return (int)((fsp + 1) / 2);
}

/* Unsigned 64-bit value as DECIMAL digits (scale 0) when it does not fit an int64. */
static int uint_value(const my_vctx_t *vx, uint64_t u, siphon_value_t *v)
{
    if (u <= (uint64_t)INT64_MAX) {
        v->type = SIPHON_V_INT;
        v->u.i = (int64_t)u;
        return 0;
    }
    char *d = siphon_arena_alloc(vx->arena, 24);
    if (!d)
        return SIPHON_ENOMEM;
    int n = snprintf(d, 24, "%" PRIu64, u);
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.digits = d;
    v->u.dec.len = (size_t)n;
    v->u.dec.scale = 0;
    return 0;
}

/* ---- DECIMAL ---- */

static const int dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

size_t siphon_my__decimal_size(int prec, int scale)
{
    int intg = prec - scale;
    return (size_t)((intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 + dig2bytes[scale % 9]);
}

int siphon_my__decimal_decode(const uint8_t *p, int prec, int scale, char *out, size_t outsize,
                              size_t *outlen)
{
    uint8_t buf[32];
    size_t size = siphon_my__decimal_size(prec, scale);
    if (size > sizeof(buf) || outsize < (size_t)prec + 3)
        return SIPHON_EINVAL;
    memcpy(buf, p, size);
    /* the sign is the top bit (set for positive); negative numbers have every byte inverted */
    int neg = !(buf[0] & 0x80);
    buf[0] ^= 0x80;
    if (neg)
        for (size_t i = 0; i < size; i++)
            buf[i] = (uint8_t)~buf[i];

    int intg = prec - scale, intg0 = intg / 9, intg0x = intg % 9;
    int frac0 = scale / 9, frac0x = scale % 9;
    char digits[96];
    size_t nd = 0, off = 0;
    /* groups of (up to) 9 digits, each a big-endian number: the leading partial group, the
     * whole integer groups, the whole fraction groups, the trailing partial group */
    int ngroups = (intg0x ? 1 : 0) + intg0 + frac0 + (frac0x ? 1 : 0);
    for (int g = 0; g < ngroups; g++) {
        int nd_group = 9;
        if (g == 0 && intg0x)
            nd_group = intg0x;
        else if (g == ngroups - 1 && frac0x)
            nd_group = frac0x;
        int nb = nd_group == 9 ? 4 : dig2bytes[nd_group];
        uint64_t x = be(buf + off, nb);
        off += (size_t)nb;
        for (int k = nd_group - 1; k >= 0; k--) {
            digits[nd + (size_t)k] = (char)('0' + x % 10);
            x /= 10;
        }
        if (x != 0)
            return SIPHON_EPROTO; /* a group wider than its digits: a corrupt image */
        nd += (size_t)nd_group;
    }
    if (nd != (size_t)prec) /* cannot happen: the groups add up to the precision */
        return SIPHON_EPROTO;
    /* the unscaled integer: every digit, leading zeros dropped (one kept) */
    size_t first = 0;
    while (first + 1 < nd && digits[first] == '0')
        first++;
    size_t o = 0;
    if (neg && !(nd - first == 1 && digits[first] == '0'))
        out[o++] = '-';
    memcpy(out + o, digits + first, nd - first);
    o += nd - first;
    out[o] = '\0';
    *outlen = o;
    return 0;
}

/* ---- the decoder ---- */

#define NEED(n)                                                                               \
    do {                                                                                      \
        if (avail < (size_t)(n))                                                              \
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,                                 \
                              "the row image ends %zu bytes into a %s value that needs %zu", \
                              avail, siphon_my__col_type_name(c, tn, sizeof(tn)), (size_t)(n)); \
    } while (0)

/* A zero date: TEXT, then on to the end of the switch so *used is set. */
#define ZERO_TEXT(...)                                                                        \
    {                                                                                         \
        if ((rc = zero_text(vx, v, __VA_ARGS__)) < 0)                                         \
            return rc;                                                                        \
        break;                                                                                \
    }

int siphon_my__decode(const my_vctx_t *vx, const my_col_t *c, const uint8_t *p, size_t avail,
                      size_t *used, siphon_value_t *v, char *errbuf, size_t errsize)
{
    char tn[64];
    size_t n = 0;
    int rc = 0;
    memset(v, 0, sizeof(*v));

    switch (c->type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG: {
        n = c->type == MYT_TINY ? 1 : c->type == MYT_SHORT ? 2 : c->type == MYT_INT24 ? 3
            : c->type == MYT_LONG ? 4 : 8;
        NEED(n);
        uint64_t u = le(p, (int)n);
        if (c->is_unsigned) {
            if ((rc = uint_value(vx, u, v)) < 0)
                return rc;
        } else {
            if (n < 8 && (u >> (8 * n - 1)) & 1)
                u |= ~UINT64_C(0) << (8 * n); /* sign-extend */
            v->type = SIPHON_V_INT;
            v->u.i = (int64_t)u;
        }
        break;
    }
    case MYT_YEAR:
        n = 1;
        NEED(1);
        v->type = SIPHON_V_INT;
        v->u.i = p[0] ? 1900 + p[0] : 0;
        break;
    case MYT_FLOAT: {
        n = 4;
        NEED(4);
        uint32_t u = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        v->type = SIPHON_V_FLOAT;
        v->u.f = (double)f;
        break;
    }
    case MYT_DOUBLE: {
        n = 8;
        NEED(8);
        uint64_t u = le(p, 8);
        double d;
        memcpy(&d, &u, 8);
        v->type = SIPHON_V_FLOAT;
        v->u.f = d;
        break;
    }
    case MYT_NEWDECIMAL: {
        n = siphon_my__decimal_size(c->prec, c->scale);
        NEED(n);
        char *d = siphon_arena_alloc(vx->arena, (size_t)c->prec + 3);
        size_t dl = 0;
        if (!d)
            return SIPHON_ENOMEM;
        if (siphon_my__decimal_decode(p, c->prec, c->scale, d, (size_t)c->prec + 3, &dl) < 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a %s value is not a valid packed decimal",
                              siphon_my__col_type_name(c, tn, sizeof(tn)));
        v->type = SIPHON_V_DECIMAL;
        v->u.dec.digits = d;
        v->u.dec.len = dl;
        v->u.dec.scale = c->scale;
        break;
    }
    case MYT_DATE:
    case MYT_NEWDATE: {
        n = 3;
        NEED(3);
        uint32_t x = (uint32_t)le(p, 3);
        unsigned d = x & 31, m = (x >> 5) & 15, y = x >> 9;
        if (!d || !m || !y)
            ZERO_TEXT("%04u-%02u-%02u", y, m, d);
        v->type = SIPHON_V_DATE;
        v->u.date = (int32_t)siphon_my__days_from_civil(y, m, d);
        break;
    }
    case MYT_TIME: {
        n = 3;
        NEED(3);
        uint32_t x = (uint32_t)le(p, 3);
        int32_t s = (x & 0x800000) ? (int32_t)(x | 0xFF000000u) : (int32_t)x; /* HHMMSS */
        int neg = s < 0;
        uint32_t a = (uint32_t)(neg ? -s : s);
        int64_t us = ((int64_t)(a / 10000) * 3600 + (a / 100 % 100) * 60 + a % 100) * 1000000;
        v->type = SIPHON_V_TIME;
        v->u.time_us = neg ? -us : us;
        break;
    }
    case MYT_TIME2: {
        int fb = frac_bytes(c->fsp);
        n = 3 + (size_t)fb;
        NEED(n);
        /* my_time_packed_from_binary(): packed = (intpart << 24) + frac, intpart carries
         * sign/hour/minute/second; a negative value's fraction borrows from the int part */
        int64_t intpart, frac = 0, packed;
        switch (fb) {
        case 0:
            intpart = (int64_t)be(p, 3) - 0x800000;
            packed = intpart * (INT64_C(1) << 24);
            break;
        case 1:
            intpart = (int64_t)be(p, 3) - 0x800000;
            frac = p[3];
            if (intpart < 0 && frac) {
                intpart++;
                frac -= 0x100;
            }
            packed = intpart * (INT64_C(1) << 24) + frac * 10000;
            break;
        case 2:
            intpart = (int64_t)be(p, 3) - 0x800000;
            frac = (int64_t)be(p + 3, 2);
            if (intpart < 0 && frac) {
                intpart++;
                frac -= 0x10000;
            }
            packed = intpart * (INT64_C(1) << 24) + frac * 100;
            break;
        default:
            packed = (int64_t)be(p, 6) - INT64_C(0x800000000000);
            break;
        }
        int neg = packed < 0;
        uint64_t a = (uint64_t)(neg ? -packed : packed);
        uint64_t hms = a >> 24, us = a % (1 << 24);
        uint64_t h = (hms >> 12) % (1 << 10), mi = (hms >> 6) % (1 << 6), s = hms % (1 << 6);
        int64_t t = (int64_t)((h * 3600 + mi * 60 + s) * 1000000 + us);
        v->type = SIPHON_V_TIME;
        v->u.time_us = neg ? -t : t;
        break;
    }
    case MYT_DATETIME: {
        n = 8;
        NEED(8);
        uint64_t x = le(p, 8); /* YYYYMMDDhhmmss */
        unsigned d = (unsigned)(x / 1000000 % 100), m = (unsigned)(x / 100000000 % 100);
        unsigned y = (unsigned)(x / 10000000000ULL);
        unsigned hh = (unsigned)(x / 10000 % 100), mi = (unsigned)(x / 100 % 100),
                 ss = (unsigned)(x % 100);
        if (!d || !m || !y)
            ZERO_TEXT("%04u-%02u-%02u %02u:%02u:%02u", y, m, d, hh, mi, ss);
        v->type = SIPHON_V_TIMESTAMP;
        v->u.ts.us = (siphon_my__days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss) *
                     INT64_C(1000000);
        v->u.ts.tz = 0;
        break;
    }
    case MYT_DATETIME2: {
        int fb = frac_bytes(c->fsp);
        n = 5 + (size_t)fb;
        NEED(n);
        /* 1 bit sign (1 = non-negative), 17 bits year*13+month, 5 day, 5 hour, 6 min, 6 sec */
        int64_t intpart = (int64_t)be(p, 5) - INT64_C(0x8000000000);
        uint32_t us = 0;
        if (fb == 1)
            us = p[5] * 10000u;
        else if (fb == 2)
            us = (uint32_t)be(p + 5, 2) * 100u;
        else if (fb == 3)
            us = (uint32_t)be(p + 5, 3);
        if (intpart < 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO, "a DATETIME value is negative");
        uint64_t ymdhms = (uint64_t)intpart;
        uint64_t ymd = ymdhms >> 17, hms = ymdhms % (1 << 17);
        uint64_t ym = ymd >> 5;
        unsigned d = (unsigned)(ymd % (1 << 5)), m = (unsigned)(ym % 13),
                 y = (unsigned)(ym / 13);
        unsigned hh = (unsigned)(hms >> 12), mi = (unsigned)((hms >> 6) % (1 << 6)),
                 ss = (unsigned)(hms % (1 << 6));
        if (!d || !m || !y) {
            char fr[16];
            frac_text(fr, sizeof(fr), c->fsp, us);
            ZERO_TEXT("%04u-%02u-%02u %02u:%02u:%02u%s", y, m, d, hh, mi, ss, fr);
        }
        v->type = SIPHON_V_TIMESTAMP;
        v->u.ts.us = (siphon_my__days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss) *
                         INT64_C(1000000) + us;
        v->u.ts.tz = 0;
        break;
    }
    case MYT_TIMESTAMP: {
        n = 4;
        NEED(4);
        uint32_t s = (uint32_t)le(p, 4);
        if (s == 0)
            ZERO_TEXT("0000-00-00 00:00:00");
        v->type = SIPHON_V_TIMESTAMP;
        v->u.ts.us = (int64_t)s * 1000000;
        v->u.ts.tz = 1;
        break;
    }
    case MYT_TIMESTAMP2: {
        int fb = frac_bytes(c->fsp);
        n = 4 + (size_t)fb;
        NEED(n);
        uint32_t s = (uint32_t)be(p, 4), us = 0;
        if (fb == 1)
            us = p[4] * 10000u;
        else if (fb == 2)
            us = (uint32_t)be(p + 4, 2) * 100u;
        else if (fb == 3)
            us = (uint32_t)be(p + 4, 3);
        if (s == 0 && us == 0) {
            char fr[16];
            frac_text(fr, sizeof(fr), c->fsp, 0);
            ZERO_TEXT("0000-00-00 00:00:00%s", fr);
        }
        v->type = SIPHON_V_TIMESTAMP;
        v->u.ts.us = (int64_t)s * 1000000 + us;
        v->u.ts.tz = 1;
        break;
    }
    case MYT_BIT: {
        n = c->len;
        NEED(n);
        uint64_t u = be(p, (int)n);
        if (c->bits == 1) {
            v->type = SIPHON_V_BOOL;
            v->u.b = (int)(u & 1);
        } else if ((rc = uint_value(vx, u, v)) < 0) {
            return rc;
        }
        break;
    }
    case MYT_ENUM: {
        n = c->len;
        NEED(n);
        uint64_t idx = le(p, (int)n);
        v->type = SIPHON_V_TEXT;
        if (idx == 0) { /* the empty string MySQL stores for an invalid value */
            v->u.s.ptr = "";
            v->u.s.len = 0;
        } else if (idx <= (uint64_t)c->nsyms) {
            v->u.s.ptr = c->syms[idx - 1];
            v->u.s.len = c->symlens[idx - 1];
        } else {
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "an ENUM value has index %" PRIu64 " but the column has %d values"
                              "%s", idx, c->nsyms,
                              c->nsyms ? "" : " (their names are unknown: set "
                                              "binlog_row_metadata=FULL or allow "
                                              "source.names_from_catalog)");
        }
        break;
    }
    case MYT_SET: {
        n = c->len;
        NEED(n);
        uint64_t bits = le(p, (int)n);
        size_t total = 0;
        for (int i = 0; i < c->nsyms && i < 64; i++)
            if (bits >> i & 1)
                total += c->symlens[i] + 1;
        if (c->nsyms < 64 && (bits >> c->nsyms) != 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "a SET value has member bits beyond the column's %d values%s",
                              c->nsyms,
                              c->nsyms ? "" : " (their names are unknown: set "
                                              "binlog_row_metadata=FULL or allow "
                                              "source.names_from_catalog)");
        char *s = siphon_arena_alloc(vx->arena, total + 1);
        if (!s)
            return SIPHON_ENOMEM;
        size_t o = 0;
        for (int i = 0; i < c->nsyms && i < 64; i++)
            if (bits >> i & 1) {
                if (o)
                    s[o++] = ',';
                memcpy(s + o, c->syms[i], c->symlens[i]);
                o += c->symlens[i];
            }
        v->type = SIPHON_V_TEXT;
        v->u.s.ptr = s;
        v->u.s.len = o;
        break;
    }
    case MYT_VARCHAR:
    case MYT_STRING: {
        int lb = c->len > 255 ? 2 : 1;
        NEED(lb);
        size_t len = (size_t)le(p, lb);
        n = (size_t)lb + len;
        NEED(n);
        if (c->type == MYT_STRING && c->cs == MY_CS_BINARY && len < c->len) {
            /* BINARY(n): the binlog drops trailing zero bytes, a SELECT returns them */
            char *b = siphon_arena_alloc(vx->arena, c->len);
            if (!b)
                return SIPHON_ENOMEM;
            memcpy(b, p + lb, len);
            memset(b + len, 0, c->len - len);
            v->type = SIPHON_V_BYTES;
            v->u.s.ptr = b;
            v->u.s.len = c->len;
            break;
        }
        if ((rc = text_value(vx, c->cs, c->iconv_name, p + lb, len, v)) < 0)
            return rc;
        if (c->json && v->type == SIPHON_V_TEXT)
            v->type = SIPHON_V_JSON;
        break;
    }
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY:
    case MYT_JSON: {
        int lb = (int)c->len;
        NEED(lb);
        size_t len = (size_t)le(p, lb);
        n = (size_t)lb + len;
        NEED(n);
        if (c->type == MYT_GEOMETRY) {
            v->type = SIPHON_V_BYTES;
            v->u.s.ptr = (const char *)p + lb;
            v->u.s.len = len;
        } else if (c->type == MYT_JSON) {
            siphon_buf_t b = {0};
            char why[256];
            rc = siphon_my__json_to_text(&b, p + lb, len, why, sizeof(why));
            if (rc == 0) {
                char *s = siphon_arena_strndup(vx->arena, b.len ? (const char *)b.data : "",
                                               b.len);
                if (!s)
                    rc = SIPHON_ENOMEM;
                v->type = SIPHON_V_JSON;
                v->u.s.ptr = s;
                v->u.s.len = b.len;
            }
            siphon_buf_free(&b);
            if (rc == SIPHON_EPROTO)
                return siphon_err(errbuf, errsize, rc, "a JSON value is malformed: %s", why);
            if (rc < 0)
                return rc;
        } else {
            if ((rc = text_value(vx, c->cs, c->iconv_name, p + lb, len, v)) < 0)
                return rc;
            if (c->json && v->type == SIPHON_V_TEXT)
                v->type = SIPHON_V_JSON;
        }
        break;
    }
    case MYT_NULL:
        v->type = SIPHON_V_NULL;
        break;
    default:
        return siphon_err(errbuf, errsize, SIPHON_EPROTO, "cannot decode binlog type %u",
                          (unsigned)c->type);
    }
    *used = n;
    return 0;
}
