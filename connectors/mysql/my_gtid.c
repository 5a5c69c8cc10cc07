/*
 * my_gtid.c - binlog positions: MariaDB GTID lists (domain-server-sequence, one per
 * replication domain), MySQL GTID sets (source uuid : intervals of transaction numbers), and
 * file:offset; their text forms as stored in the offsets file.
 *
 * Text forms (parsed by siphon_my__pos_parse, written by siphon_my__gtid_format):
 *   MariaDB  "0-1-42" or "0-1-42,1-7-9"         sorted by domain
 *   MySQL    "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:50,<uuid>:1-3"   sorted by uuid,
 *            intervals sorted and merged (whitespace after commas accepted, as the server
 *            prints @@gtid_executed)
 *   file     "binlog.000003:1234"                the offset of the next event to read
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

void siphon_my__gtid_free(my_gtidset_t *g)
{
    if (!g)
        return;
    free(g->m);
    for (int i = 0; i < g->ns; i++)
        free(g->s[i].iv);
    free(g->s);
    memset(g, 0, sizeof(*g));
}

int siphon_my__gtid_copy(my_gtidset_t *dst, const my_gtidset_t *src)
{
    my_gtidset_t g = {.kind = src->kind};
    if (src->nm) {
        if (!(g.m = malloc((size_t)src->nm * sizeof(*g.m))))
            return SIPHON_ENOMEM;
        memcpy(g.m, src->m, (size_t)src->nm * sizeof(*g.m));
        g.nm = g.capm = src->nm;
    }
    if (src->ns) {
        if (!(g.s = calloc((size_t)src->ns, sizeof(*g.s)))) {
            siphon_my__gtid_free(&g);
            return SIPHON_ENOMEM;
        }
        g.caps = src->ns;
        for (int i = 0; i < src->ns; i++) {
            my_sid_t *d = &g.s[i];
            memcpy(d->uuid, src->s[i].uuid, 16);
            if (src->s[i].niv && !(d->iv = malloc((size_t)src->s[i].niv * sizeof(*d->iv)))) {
                siphon_my__gtid_free(&g);
                return SIPHON_ENOMEM;
            }
            if (src->s[i].niv)
                memcpy(d->iv, src->s[i].iv, (size_t)src->s[i].niv * sizeof(*d->iv));
            d->niv = d->capiv = src->s[i].niv;
            g.ns++;
        }
    }
    siphon_my__gtid_free(dst);
    *dst = g;
    return 0;
}

/* ---- uuids ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int siphon_my__uuid_parse(uint8_t out[16], const char *s, size_t n)
{
    if (n != 36)
        return -1;
    int k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int h = hexval((unsigned char)s[i]), l = hexval((unsigned char)s[i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[k++] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    return 0;
}

void siphon_my__uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

/* ---- MariaDB ---- */

int siphon_my__gtid_set_mariadb(my_gtidset_t *g, my_mgtid_t gtid)
{
    g->kind = MY_GTID_MARIADB;
    int i = 0;
    while (i < g->nm && g->m[i].domain < gtid.domain)
        i++;
    if (i < g->nm && g->m[i].domain == gtid.domain) {
        g->m[i] = gtid;
        return 0;
    }
    if (g->nm == g->capm) {
        int cap = g->capm ? g->capm * 2 : 4;
        my_mgtid_t *m = realloc(g->m, (size_t)cap * sizeof(*m));
        if (!m)
            return SIPHON_ENOMEM;
        g->m = m;
        g->capm = cap;
    }
    memmove(g->m + i + 1, g->m + i, (size_t)(g->nm - i) * sizeof(*g->m));
    g->m[i] = gtid;
    g->nm++;
    return 0;
}

/* ---- MySQL ---- */

static my_sid_t *sid_find(const my_gtidset_t *g, const uint8_t uuid[16], int *at)
{
    int lo = 0, hi = g->ns;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = memcmp(g->s[mid].uuid, uuid, 16);
        if (c == 0) {
            if (at)
                *at = mid;
            return &g->s[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return NULL;
}

/* Add the interval [a, b] to sid, keeping intervals sorted and merged. */
static int sid_add(my_sid_t *s, uint64_t a, uint64_t b)
{
    int i = 0;
    while (i < s->niv && s->iv[i][1] + 1 < a && s->iv[i][1] != UINT64_MAX)
        i++;
    /* i: first interval that ends at or after a - 1 */
    if (i < s->niv && s->iv[i][0] <= (b == UINT64_MAX ? b : b + 1)) {
        if (a < s->iv[i][0])
            s->iv[i][0] = a;
        if (b > s->iv[i][1])
            s->iv[i][1] = b;
        /* swallow the following intervals it now reaches */
        int j = i + 1;
        while (j < s->niv && s->iv[j][0] <= s->iv[i][1] + 1) {
            if (s->iv[j][1] > s->iv[i][1])
                s->iv[i][1] = s->iv[j][1];
            j++;
        }
        memmove(s->iv + i + 1, s->iv + j, (size_t)(s->niv - j) * sizeof(*s->iv));
        s->niv -= j - (i + 1);
        return 0;
    }
    if (s->niv == s->capiv) {
        int cap = s->capiv ? s->capiv * 2 : 4;
        uint64_t(*iv)[2] = realloc(s->iv, (size_t)cap * sizeof(*iv));
        if (!iv)
            return SIPHON_ENOMEM;
        s->iv = iv;
        s->capiv = cap;
    }
    memmove(s->iv + i + 1, s->iv + i, (size_t)(s->niv - i) * sizeof(*s->iv));
    s->iv[i][0] = a;
    s->iv[i][1] = b;
    s->niv++;
    return 0;
}

static my_sid_t *sid_get(my_gtidset_t *g, const uint8_t uuid[16])
{
    int at;
    my_sid_t *s = sid_find(g, uuid, &at);
    if (s)
        return s;
    if (g->ns == g->caps) {
        int cap = g->caps ? g->caps * 2 : 4;
        my_sid_t *n = realloc(g->s, (size_t)cap * sizeof(*n));
        if (!n)
            return NULL;
        g->s = n;
        g->caps = cap;
    }
    memmove(g->s + at + 1, g->s + at, (size_t)(g->ns - at) * sizeof(*g->s));
    memset(&g->s[at], 0, sizeof(g->s[at]));
    memcpy(g->s[at].uuid, uuid, 16);
    g->ns++;
    return &g->s[at];
}

int siphon_my__gtid_add_mysql(my_gtidset_t *g, const uint8_t uuid[16], uint64_t gno)
{
    g->kind = MY_GTID_MYSQL;
    my_sid_t *s = sid_get(g, uuid);
    return s ? sid_add(s, gno, gno) : SIPHON_ENOMEM;
}

int siphon_my__gtid_contains_mysql(const my_gtidset_t *g, const uint8_t uuid[16], uint64_t gno)
{
    const my_sid_t *s = sid_find(g, uuid, NULL);
    if (!s)
        return 0;
    int lo = 0, hi = s->niv;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (gno < s->iv[mid][0])
            hi = mid;
        else if (gno > s->iv[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int siphon_my__gtid_subset(const my_gtidset_t *a, const my_gtidset_t *b)
{
    for (int i = 0; i < a->ns; i++) {
        const my_sid_t *sa = &a->s[i];
        const my_sid_t *sb = sid_find(b, sa->uuid, NULL);
        for (int k = 0; k < sa->niv; k++) {
            int inside = 0;
            for (int j = 0; sb && j < sb->niv && !inside; j++)
                inside = sb->iv[j][0] <= sa->iv[k][0] && sa->iv[k][1] <= sb->iv[j][1];
            if (!inside)
                return 0;
        }
    }
    return 1;
}

/* ---- text ---- */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

/* Parse an unsigned decimal number; *end after it. -1 when none or it overflows max. */
static int num(const char *s, uint64_t max, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

/* "d-s-n" at s; *end after it. */
static int mariadb_one(const char *s, my_mgtid_t *g, const char **end)
{
    uint64_t d, sv, n;
    const char *p;
    if (num(s, UINT32_MAX, &d, &p) < 0 || *p != '-' ||
        num(p + 1, UINT32_MAX, &sv, &p) < 0 || *p != '-' ||
        num(p + 1, UINT64_MAX, &n, &p) < 0)
        return -1;
    g->domain = (uint32_t)d;
    g->server = (uint32_t)sv;
    g->seq = n;
    *end = p;
    return 0;
}

int siphon_my__gtid_parse(my_gtidset_t *out, const char *text, my_gtid_kind_t kind_if_empty,
                          char *errbuf, size_t errsize)
{
    my_gtidset_t g = {0};
    const char *p = skip_ws(text ? text : "");
    int rc = 0;

    if (!*p) {
        siphon_my__gtid_free(out);
        out->kind = kind_if_empty;
        return 0;
    }
    /* MariaDB lists start with a digit and have no ':' */
    if (!strchr(p, ':')) {
        g.kind = MY_GTID_MARIADB;
        for (;;) {
            my_mgtid_t m;
            if (mariadb_one(p, &m, &p) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse MariaDB GTID position \"%.200s\": expected "
                                "domain-server-sequence items separated by commas, like "
                                "0-1-42,1-2-7",
                                text);
                goto fail;
            }
            for (int i = 0; i < g.nm; i++)
                if (g.m[i].domain == m.domain) {
                    rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                    "could not parse MariaDB GTID position \"%.200s\": domain "
                                    "%u appears twice",
                                    text, (unsigned)m.domain);
                    goto fail;
                }
            if ((rc = siphon_my__gtid_set_mariadb(&g, m)) < 0)
                goto fail;
            p = skip_ws(p);
            if (!*p)
                break;
            if (*p != ',') {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse MariaDB GTID position \"%.200s\": unexpected "
                                "'%c' (expected domain-server-sequence items separated by "
                                "commas)",
                                text, *p);
                goto fail;
            }
            p = skip_ws(p + 1);
        }
    } else {
        g.kind = MY_GTID_MYSQL;
        for (;;) {
            uint8_t uuid[16];
            const char *colon = strchr(p, ':');
            if (!colon || siphon_my__uuid_parse(uuid, p, (size_t)(colon - p)) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse MySQL GTID set \"%.200s\": expected "
                                "<server uuid>:<interval>[:<interval>...] items separated by "
                                "commas, like 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42",
                                text);
                goto fail;
            }
            my_sid_t *s = sid_get(&g, uuid);
            if (!s) {
                rc = SIPHON_ENOMEM;
                goto fail;
            }
            p = colon;
            while (*p == ':') {
                uint64_t a, b;
                if (num(p + 1, UINT64_MAX, &a, &p) < 0 || a == 0) {
                    rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                    "could not parse MySQL GTID set \"%.200s\": expected a "
                                    "transaction number (1 or more) or an interval like 1-42",
                                    text);
                    goto fail;
                }
                b = a;
                if (*p == '-' && (num(p + 1, UINT64_MAX, &b, &p) < 0 || b < a)) {
                    rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                    "could not parse MySQL GTID set \"%.200s\": an interval's "
                                    "end is missing or before its start",
                                    text);
                    goto fail;
                }
                if ((rc = sid_add(s, a, b)) < 0)
                    goto fail;
            }
            p = skip_ws(p);
            if (!*p)
                break;
            if (*p != ',') {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse MySQL GTID set \"%.200s\": unexpected '%c' "
                                "(expected items separated by commas)",
                                text, *p);
                goto fail;
            }
            p = skip_ws(p + 1);
        }
    }
    siphon_my__gtid_free(out);
    *out = g;
    return 0;
fail:
    siphon_my__gtid_free(&g);
    if (rc == SIPHON_ENOMEM)
        siphon_err(errbuf, errsize, rc, "out of memory parsing a GTID position");
    return rc;
}

size_t siphon_my__gtid_format(const my_gtidset_t *g, char *buf, size_t size)
{
    size_t o = 0;
#define OUT(...)                                                                              \
    do {                                                                                      \
        int n_ = snprintf(o < size ? buf + o : NULL, o < size ? size - o : 0, __VA_ARGS__);  \
        if (n_ > 0)                                                                           \
            o += (size_t)n_;                                                                  \
    } while (0)
    if (size)
        buf[0] = '\0';
    if (g->kind == MY_GTID_MARIADB) {
        for (int i = 0; i < g->nm; i++)
            OUT("%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, i ? "," : "", g->m[i].domain,
                g->m[i].server, g->m[i].seq);
    } else if (g->kind == MY_GTID_MYSQL) {
        int first = 1;
        for (int i = 0; i < g->ns; i++) {
            if (!g->s[i].niv)
                continue;
            char u[37];
            siphon_my__uuid_format(g->s[i].uuid, u);
            OUT("%s%s", first ? "" : ",", u);
            first = 0;
            for (int k = 0; k < g->s[i].niv; k++) {
                if (g->s[i].iv[k][0] == g->s[i].iv[k][1])
                    OUT(":%" PRIu64, g->s[i].iv[k][0]);
                else
                    OUT(":%" PRIu64 "-%" PRIu64, g->s[i].iv[k][0], g->s[i].iv[k][1]);
            }
        }
    }
#undef OUT
    return o;
}

/* ---- stored positions ---- */

void siphon_my__pos_free(my_pos_t *pos)
{
    if (!pos)
        return;
    siphon_my__gtid_free(&pos->gtid);
    memset(pos, 0, sizeof(*pos));
}

int siphon_my__pos_parse(my_pos_t *pos, const char *text, char *errbuf, size_t errsize)
{
    memset(pos, 0, sizeof(*pos));
    const char *p = skip_ws(text ? text : "");
    if (!*p)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not parse binlog position \"\": it is empty (expected a "
                          "MariaDB GTID like 0-1-42, a MySQL GTID set like <uuid>:1-42, or "
                          "file:offset like binlog.000003:1234)");
    const char *colon = strchr(p, ':');
    const char *last = strrchr(p, ':');
    uint8_t uuid[16];
    if (colon && siphon_my__uuid_parse(uuid, p, (size_t)(colon - p)) < 0 && last == colon) {
        /* file:offset (a file name never holds a uuid followed by ':') */
        uint64_t off;
        const char *end;
        size_t flen = (size_t)(colon - p);
        if (flen == 0 || flen >= sizeof(pos->file) || num(colon + 1, UINT64_MAX, &off, &end) < 0 ||
            *skip_ws(end) != '\0')
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not parse binlog position \"%.200s\": expected file:offset "
                              "like binlog.000003:1234, a MariaDB GTID like 0-1-42, or a MySQL "
                              "GTID set like <uuid>:1-42",
                              text);
        for (size_t i = 0; i < flen; i++)
            if (p[i] == '/' || p[i] == ',' || (unsigned char)p[i] < 0x20)
                return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                  "could not parse binlog position \"%.200s\": \"%.*s\" is not a "
                                  "binlog file name",
                                  text, (int)flen, p);
        pos->kind = MY_POS_FILE;
        memcpy(pos->file, p, flen);
        pos->file[flen] = '\0';
        pos->offset = off;
        return 0;
    }
    int rc = siphon_my__gtid_parse(&pos->gtid, p, MY_GTID_NONE, errbuf, errsize);
    if (rc < 0)
        return rc;
    pos->kind = MY_POS_GTID;
    return 0;
}

uint64_t siphon_my__file_seq(const char *name)
{
    const char *dot = strrchr(name, '.');
    uint64_t v = 0;
    const char *end;
    if (!dot || num(dot + 1, UINT32_MAX, &v, &end) < 0 || *end)
        return 0;
    return v;
}

int siphon_my__choose_start_file(const my_gtidset_t *prev_sets, int nfiles,
                                 const my_gtidset_t *have)
{
    for (int i = nfiles - 1; i >= 0; i--)
        if (siphon_my__gtid_subset(&prev_sets[i], have))
            return i;
    return -1;
}
