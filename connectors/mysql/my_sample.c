/*
 * my_sample.c - the MySQL connector without replication: a catalog connection only, for
 * `siphon validate` (describe the live tables) and `siphon preview` (read a few rows with a
 * plain SELECT and decode them into the values the binlog stream would give).
 *
 * Opening needs only SELECT on the tables (no REPLICATION grant, no binlog) and registers
 * nothing on the server. A sample is read in the text protocol with the session in UTC and
 * utf8mb4, and each column's text becomes the value my_value.c decodes from a row image: the
 * same kinds (a BIGINT UNSIGNED past 2^63-1 as a decimal, zero dates as text, BIT(1) as a
 * boolean...). Two columns are selected through an expression so their text is exact: FLOAT as
 * `col + 0e0` (a FLOAT prints with 6 digits) and BIT as `col + 0` (a BIT prints as bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "config/config.h"
#include "connectors/mysql/my_int.h"
#include "connectors/mysql/mysql.h"
#include "core/error.h"
#include "core/log.h"

int siphon_my__open_catalog(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                            size_t errsize)
{
    siphon_source_t *src = NULL;
    int rc;
    if (!out || !cfg)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not open the mysql catalog: bad arguments");
    *out = NULL;
    if (!(src = calloc(1, sizeof(*src))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    pthread_mutex_init(&src->mu, NULL);
    pthread_mutex_init(&src->cat_mu, NULL);
    pthread_cond_init(&src->cv_data, NULL);
    pthread_cond_init(&src->cv_space, NULL);
    src->repl_fd = -1;
    siphon_my__batch_init(&src->batches[0]);
    siphon_my__batch_init(&src->batches[1]);
    src->fill = &src->batches[0];
    src->out = &src->batches[1];
    siphon_my__stream_init(&src->st);
    siphon_arena_init(&src->sample_mem, 0);
    if (!(src->name = strdup(cfg->name ? cfg->name : "siphon"))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    siphon_config_redact(cfg->source.conninfo ? cfg->source.conninfo : "", src->redacted,
                         sizeof(src->redacted));
    if ((rc = siphon_my__conninfo_parse(&src->ci, cfg->source.conninfo, errbuf, errsize)) < 0 ||
        (rc = siphon_my__cat_connect(src, errbuf, errsize)) < 0)
        goto fail;
    const char *ver = mysql_get_server_info(src->cat);
    snprintf(src->server_version, sizeof(src->server_version), "%s", ver ? ver : "?");
    src->flavor = strcasestr(src->server_version, "mariadb") ? MY_FLAVOR_MARIADB : MY_FLAVOR_MYSQL;
    src->st.flavor = src->flavor;
    src->st.batch = src->fill;
    src->st.database = src->ci.dbname ? src->ci.dbname : "";
    if (mysql_query(src->cat, "SET time_zone = '+00:00'") != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                        "could not set up the session on %s: %s (error %u)", src->redacted,
                        mysql_error(src->cat), mysql_errno(src->cat));
        goto fail;
    }
    *out = src;
    return 0;
fail:
    siphon_mysql_source.close(src);
    return rc;
}

/* ---- text -> value, as my_value.c decodes the same column from a row image ---- */

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* ".ffffff" (1 to 6 digits) at s -> microseconds; *len consumed. */
static int64_t frac_us(const char *s, size_t n, size_t *len)
{
    *len = 0;
    if (n < 2 || s[0] != '.')
        return 0;
    int64_t us = 0;
    size_t k = 1;
    for (; k < n && k <= 6 && s[k] >= '0' && s[k] <= '9'; k++)
        us = us * 10 + (s[k] - '0');
    for (size_t pad = k; pad <= 6; pad++)
        us *= 10;
    *len = k;
    return us;
}

int siphon_my__text_value(siphon_arena_t *a, const my_col_t *c, const char *s, size_t n,
                          siphon_value_t *v, char *why, size_t whysize)
{
    char tmp[128];
    memset(v, 0, sizeof(*v));
    switch (c->type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG:
    case MYT_YEAR:
    case MYT_BIT: {
        if (n == 0 || n >= sizeof(tmp))
            goto bad;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        errno = 0;
        if (tmp[0] == '-') {
            long long x = strtoll(tmp, &end, 10);
            if (errno || *end)
                goto bad;
            v->type = SIPHON_V_INT;
            v->u.i = x;
        } else {
            unsigned long long x = strtoull(tmp, &end, 10);
            if (errno || *end)
                goto bad;
            if (c->type == MYT_BIT && c->bits == 1) {
                v->type = SIPHON_V_BOOL;
                v->u.b = x != 0;
            } else if (x <= (unsigned long long)INT64_MAX) {
                v->type = SIPHON_V_INT;
                v->u.i = (int64_t)x;
            } else {
                char *d = siphon_arena_strndup(a, tmp, n);
                if (!d)
                    return SIPHON_ENOMEM;
                v->type = SIPHON_V_DECIMAL;
                v->u.dec.digits = d;
                v->u.dec.len = n;
                v->u.dec.scale = 0;
            }
        }
        return 0;
    }
    case MYT_NEWDECIMAL: {
        char *d = siphon_arena_alloc(a, n + 2);
        if (!d)
            return SIPHON_ENOMEM;
        if (siphon_value_decimal_parse(v, s, n, d, n + 2) < 0)
            goto bad;
        return 0;
    }
    case MYT_FLOAT:
    case MYT_DOUBLE: {
        if (n == 0 || n >= sizeof(tmp))
            goto bad;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        v->type = SIPHON_V_FLOAT;
        v->u.f = strtod(tmp, &end);
        if (*end)
            goto bad;
        if (c->type == MYT_FLOAT)
            v->u.f = (double)(float)v->u.f;
        return 0;
    }
    case MYT_DATE:
    case MYT_NEWDATE:
        if (n != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
            !digits(s + 8, 2))
            goto bad;
        if (num2(s + 5) == 0 || num2(s + 8) == 0 || (num2(s) == 0 && num2(s + 2) == 0))
            goto text;
        v->type = SIPHON_V_DATE;
        v->u.date = (int32_t)siphon_my__days_from_civil(num2(s) * 100 + num2(s + 2),
                                                       (unsigned)num2(s + 5),
                                                       (unsigned)num2(s + 8));
        return 0;
    case MYT_TIME:
    case MYT_TIME2: {
        size_t i = 0;
        int neg = 0;
        if (i < n && s[i] == '-') {
            neg = 1;
            i++;
        }
        int64_t h = 0;
        size_t h0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            h = h * 10 + (s[i++] - '0');
        if (i == h0 || i + 6 > n || s[i] != ':' || !digits(s + i + 1, 2) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2))
            goto bad;
        int64_t t = (h * 3600 + num2(s + i + 1) * 60 + num2(s + i + 4)) * 1000000;
        size_t fl;
        t += frac_us(s + i + 6, n - i - 6, &fl);
        if (i + 6 + fl != n)
            goto bad;
        v->type = SIPHON_V_TIME;
        v->u.time_us = neg ? -t : t;
        return 0;
    }
    case MYT_DATETIME:
    case MYT_DATETIME2:
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2: {
        if (n < 19 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
            !digits(s + 8, 2) || s[10] != ' ' || !digits(s + 11, 2) || s[13] != ':' ||
            !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
            goto bad;
        size_t fl;
        int64_t us = frac_us(s + 19, n - 19, &fl);
        if (19 + fl != n)
            goto bad;
        int y = num2(s) * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
        if (!y || !m || !d)
            goto text;
        v->type = SIPHON_V_TIMESTAMP;
        v->u.ts.us = (siphon_my__days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 +
                      num2(s + 11) * 3600 + num2(s + 14) * 60 + num2(s + 17)) *
                         INT64_C(1000000) + us;
        v->u.ts.tz = c->type == MYT_TIMESTAMP || c->type == MYT_TIMESTAMP2;
        return 0;
    }
    case MYT_GEOMETRY:
        goto bytes;
    case MYT_JSON:
        v->type = SIPHON_V_JSON;
        goto copy;
    case MYT_ENUM:
    case MYT_SET:
        v->type = SIPHON_V_TEXT;
        goto copy;
    default: /* strings and blobs: the session's charset is utf8mb4 */
        if (c->cs == MY_CS_BINARY)
            goto bytes;
        v->type = c->json ? SIPHON_V_JSON : SIPHON_V_TEXT;
        goto copy;
    }
text:
    v->type = SIPHON_V_TEXT; /* a zero date, as the stream gives it */
    goto copy;
bytes:
    v->type = SIPHON_V_BYTES;
copy: {
    char *p = siphon_arena_strndup(a, s, n);
    if (!p)
        return SIPHON_ENOMEM;
    v->u.s.ptr = p;
    v->u.s.len = n;
    return 0;
}
bad:
    return siphon_err(why, whysize, SIPHON_EPROTO, "the server sent \"%.*s\" for a %s column",
                      (int)(n > 40 ? 40 : n), s, siphon_my__col_type_name(c, tmp, sizeof(tmp)));
}

void siphon_my__quote_ident(siphon_buf_t *b, const char *s)
{
    siphon_buf_appendc(b, '`');
    for (; *s; s++) {
        if (*s == '`')
            siphon_buf_appendc(b, '`');
        siphon_buf_appendc(b, (uint8_t)*s);
    }
    siphon_buf_appendc(b, '`');
}

void siphon_my__select_from(siphon_buf_t *b, const my_rel_t *mr, const char *db,
                            const char *table)
{
    const siphon_relation_t *r = &mr->rel;
    siphon_buf_printf(b, "SELECT ");
    for (int i = 0; i < r->ncols; i++) {
        if (i)
            siphon_buf_printf(b, ", ");
        uint8_t t = mr->cols[i].type;
        if (t == MYT_FLOAT || t == MYT_BIT)
            siphon_buf_appendc(b, '(');
        siphon_my__quote_ident(b, r->cols[i].name);
        if (t == MYT_FLOAT)
            siphon_buf_printf(b, " + 0e0)");
        else if (t == MYT_BIT)
            siphon_buf_printf(b, " + 0)");
    }
    if (r->ncols == 0)
        siphon_buf_printf(b, "1");
    siphon_buf_printf(b, " FROM ");
    siphon_my__quote_ident(b, db);
    siphon_buf_appendc(b, '.');
    siphon_my__quote_ident(b, table);
}

int siphon_my__sample(siphon_source_t *src, const char *schema, const char *table, int limit,
                      const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                      char *errbuf, size_t errsize)
{
    const siphon_relation_t *r = NULL;
    siphon_buf_t sql = {0};
    MYSQL_RES *res = NULL;
    int rc;
    if (!src || !table || !rel || !rows || !nrows || limit < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not sample a table: bad arguments");
    *rows = NULL;
    *nrows = 0;
    const char *db = schema && schema[0] ? schema : src->ci.dbname ? src->ci.dbname : "";
    if ((rc = siphon_my__cat_describe(src, db, table, &r, errbuf, errsize)) < 0)
        return rc;
    const my_rel_t *mr = (const my_rel_t *)r; /* describe returns &my_rel_t.rel, its first member */

    siphon_my__select_from(&sql, mr, db, table);
    if (siphon_buf_printf(&sql, " LIMIT %d", limit) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&src->cat_mu);
    if (mysql_real_query(src->cat, (const char *)sql.data, (unsigned long)sql.len) != 0 ||
        !(res = mysql_store_result(src->cat))) {
        unsigned e = mysql_errno(src->cat);
        rc = siphon_err(errbuf, errsize, siphon_my__err_fatal(e) || (e >= 1000 && e < 2000)
                                             ? SIPHON_EINVAL
                                             : SIPHON_ECONN,
                        "could not read rows of %s.%s: %s (error %u)%s", db, table,
                        mysql_error(src->cat), e, siphon_my__err_hint(e));
        pthread_mutex_unlock(&src->cat_mu);
        goto out;
    }
    pthread_mutex_unlock(&src->cat_mu);
    siphon_arena_reset(&src->sample_mem);
    int n = (int)mysql_num_rows(res);
    siphon_row_t *outrows = siphon_arena_alloc(&src->sample_mem,
                                               sizeof(siphon_row_t) * (size_t)(n ? n : 1));
    if (!outrows) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        MYSQL_ROW row = mysql_fetch_row(res);
        unsigned long *lens = mysql_fetch_lengths(res);
        outrows[i].ncols = r->ncols;
        outrows[i].vals = siphon_arena_alloc(&src->sample_mem,
                                             sizeof(siphon_value_t) * (size_t)(r->ncols ? r->ncols : 1));
        if (!row || !lens || !outrows[i].vals) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        for (int c = 0; c < r->ncols; c++) {
            siphon_value_t *v = &outrows[i].vals[c];
            if (!row[c]) {
                memset(v, 0, sizeof(*v));
                v->type = SIPHON_V_NULL;
                continue;
            }
            char why[256];
            int vr = siphon_my__text_value(&src->sample_mem, &mr->cols[c], row[c], lens[c], v, why,
                                sizeof(why));
            if (vr == SIPHON_ENOMEM) {
                rc = siphon_err(errbuf, errsize, vr, "out of memory");
                goto out;
            }
            if (vr < 0) {
                rc = siphon_err(errbuf, errsize, vr, "could not decode column \"%s\" of %s.%s: %s",
                                r->cols[c].name, db, table, why);
                goto out;
            }
        }
    }
    *rel = r;
    *rows = outrows;
    *nrows = n;
    rc = 0;
out:
    mysql_free_result(res);
    siphon_buf_free(&sql);
    return rc;
}
