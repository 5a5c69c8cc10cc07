/*
 * odbc_sql.c - the SQL the ODBC connector runs, and the few ways databases differ in it.
 *
 * Every query is built here, once per table, prepared once per connection and executed with
 * parameter markers; docs/odbc.md lists them for the DBA. Pages are read with keyset pagination
 * ("after the last row read", in the order of the ordering columns) rather than OFFSET, so each
 * page costs an index range scan however deep into the table it is. "After the cursor" over
 * several columns is written as nested comparisons, which every SQL dialect accepts (SQL
 * Server and DB2 for i lack row-value comparison), after a plain range on the first column that
 * lets the planner start the index scan at the cursor:
 *     c1 >= ? AND (c1 > ? OR (c1 = ? AND (c2 > ? OR (c2 = ? AND (c3 > ?)))))
 * A row limit is the only clause that differs between dialects; an unknown database gets none
 * and relies on SQL_ATTR_MAX_ROWS (the driver stops fetching; the server may still compute the
 * whole result, so the docs recommend an index on the ordering columns).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

static int has_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; p && *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return 1;
    return 0;
}

void siphon_odbc__dialect(odbc_dialect_t *d, const char *dbms_name, const char *quote)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", dbms_name && *dbms_name ? dbms_name : "unknown");
    if (quote && quote[0] && quote[0] != ' ')
        snprintf(d->quote, sizeof(d->quote), "%s", quote);
    if (has_ci(dbms_name, "PostgreSQL")) {
        d->limit = ODBC_LIMIT_LIMIT;
        d->clock_sql = "SELECT CURRENT_TIMESTAMP";
    } else if (has_ci(dbms_name, "MariaDB") || has_ci(dbms_name, "MySQL")) {
        d->limit = ODBC_LIMIT_LIMIT;
        d->clock_sql = "SELECT CURRENT_TIMESTAMP(6)";
    } else if (has_ci(dbms_name, "SQLite")) {
        d->limit = ODBC_LIMIT_LIMIT;
        /* UTC, as SQLite's own CURRENT_TIMESTAMP, with milliseconds */
        d->clock_sql = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')";
    } else if (has_ci(dbms_name, "SQL Server")) {
        d->limit = ODBC_LIMIT_TOP;
        d->clock_sql = "SELECT SYSDATETIME()";
    } else if (has_ci(dbms_name, "DB2")) {
        d->limit = ODBC_LIMIT_FETCH;
        d->clock_sql = "SELECT CURRENT TIMESTAMP FROM SYSIBM.SYSDUMMY1";
    } else if (has_ci(dbms_name, "Informix")) {
        d->limit = ODBC_LIMIT_FIRST;
        d->clock_sql = "SELECT CURRENT YEAR TO FRACTION(5) FROM sysmaster:sysdual";
    } else if (has_ci(dbms_name, "OpenEdge") || has_ci(dbms_name, "Progress")) {
        d->limit = ODBC_LIMIT_TOP;
        d->clock_sql = "SELECT TOP 1 NOW() FROM SYSPROGRESS.SYSCALCTABLE";
    } else if (has_ci(dbms_name, "Oracle")) {
        d->limit = ODBC_LIMIT_FETCH;
        d->clock_sql = "SELECT LOCALTIMESTAMP FROM DUAL";
    } else {
        d->limit = ODBC_LIMIT_NONE;
        d->clock_sql = "SELECT {fn NOW()}";
    }
}

static int quote_part(siphon_buf_t *out, const char *s, size_t n, const char *q)
{
    size_t ql = strlen(q);
    if (!ql)
        return siphon_buf_append(out, s, n);
    if (siphon_buf_append(out, q, ql) < 0)
        return SIPHON_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(s + i, q, ql) == 0 && siphon_buf_append(out, q, ql) < 0)
            return SIPHON_ENOMEM;
        if (siphon_buf_appendc(out, (uint8_t)s[i]) < 0)
            return SIPHON_ENOMEM;
    }
    return siphon_buf_append(out, q, ql);
}

int siphon_odbc__quote(siphon_buf_t *out, const char *ident, const char *quote)
{
    const char *q = quote ? quote : "";
    const char *p = ident;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (quote_part(out, p, n, q) < 0)
            return SIPHON_ENOMEM;
        if (!dot)
            return 0;
        if (siphon_buf_appendc(out, '.') < 0)
            return SIPHON_ENOMEM;
        p = dot + 1;
    }
}

typedef struct qb {
    siphon_buf_t sql;
    int *params;
    int n, cap;
    int err;
} qb_t;

static void qb_s(qb_t *b, const char *s)
{
    if (!b->err && siphon_buf_append(&b->sql, s, strlen(s)) < 0)
        b->err = SIPHON_ENOMEM;
}

static void qb_p(qb_t *b, int what)
{
    if (b->err)
        return;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        int *p = realloc(b->params, sizeof(int) * (size_t)cap);
        if (!p) {
            b->err = SIPHON_ENOMEM;
            return;
        }
        b->params = p;
        b->cap = cap;
    }
    b->params[b->n++] = what;
    qb_s(b, "?");
}

/* (c[i] > ? OR (c[i] = ? AND (...))) from column i on; params are cursor indexes. */
static void qb_after(qb_t *b, const char *const *cols, int n, int i)
{
    qb_s(b, "(");
    qb_s(b, cols[i]);
    qb_s(b, " > ");
    qb_p(b, i);
    if (i < n - 1) {
        qb_s(b, " OR (");
        qb_s(b, cols[i]);
        qb_s(b, " = ");
        qb_p(b, i);
        qb_s(b, " AND ");
        qb_after(b, cols, n, i + 1);
        qb_s(b, ")");
    }
    qb_s(b, ")");
}

/* With several ordering columns, "c1 >= ? AND" before the nested comparisons: a planner
 * cannot derive an index range from the ORs alone, and would scan the index from its start
 * and filter, on every page (PostgreSQL does). */
static void qb_from(qb_t *b, const char *const *cols, int n)
{
    if (n < 2)
        return;
    qb_s(b, cols[0]);
    qb_s(b, " >= ");
    qb_p(b, 0);
    qb_s(b, " AND ");
}

static void qb_list(qb_t *b, const char *const *cols, int n)
{
    for (int i = 0; i < n; i++) {
        if (i)
            qb_s(b, ", ");
        qb_s(b, cols[i]);
    }
}

int siphon_odbc__query_build(odbc_query_t *q, odbc_qkind_t kind, const odbc_qspec_t *s,
                             const odbc_dialect_t *d)
{
    qb_t b = {0};
    char num[32];
    memset(q, 0, sizeof(*q));

    int keys_only = kind == ODBC_Q_KEYS_FIRST || kind == ODBC_Q_KEYS_NEXT;
    int by_key = keys_only || kind == ODBC_Q_SAMPLE;
    const char *const *order = by_key ? s->keys : s->order;
    int norder = by_key ? s->nkeys : s->norder;
    long limit = keys_only ? s->chunk : s->page;
    if ((kind == ODBC_Q_FIRST_BASE && !s->ts) || norder <= 0 || s->nkeys <= 0)
        return SIPHON_EINVAL;
    snprintf(num, sizeof(num), "%ld", limit);

    qb_s(&b, "SELECT ");
    if (kind != ODBC_Q_BY_KEY && d->limit == ODBC_LIMIT_TOP) {
        qb_s(&b, "TOP ");
        qb_s(&b, num);
        qb_s(&b, " ");
    } else if (kind != ODBC_Q_BY_KEY && d->limit == ODBC_LIMIT_FIRST) {
        qb_s(&b, "FIRST ");
        qb_s(&b, num);
        qb_s(&b, " ");
    }
    if (keys_only)
        qb_list(&b, s->keys, s->nkeys);
    else
        qb_list(&b, s->select, s->nselect);
    qb_s(&b, " FROM ");
    qb_s(&b, s->table);

    switch (kind) {
    case ODBC_Q_FIRST:
        if (s->ts) {
            qb_s(&b, " WHERE ");
            qb_s(&b, s->ts);
            qb_s(&b, " <= ");
            qb_p(&b, ODBC_P_HI);
        } else if (s->not_null) {
            qb_s(&b, " WHERE ");
            qb_s(&b, s->not_null);
            qb_s(&b, " IS NOT NULL");
        }
        break;
    case ODBC_Q_FIRST_BASE:
        qb_s(&b, " WHERE ");
        qb_s(&b, s->ts);
        qb_s(&b, " > ");
        qb_p(&b, ODBC_P_BASE);
        qb_s(&b, " AND ");
        qb_s(&b, s->ts);
        qb_s(&b, " <= ");
        qb_p(&b, ODBC_P_HI);
        break;
    case ODBC_Q_NEXT:
        qb_s(&b, " WHERE ");
        if (s->ts) {
            qb_s(&b, s->ts);
            qb_s(&b, " <= ");
            qb_p(&b, ODBC_P_HI);
            qb_s(&b, " AND ");
        }
        qb_from(&b, order, norder);
        qb_after(&b, order, norder, 0);
        break;
    case ODBC_Q_KEYS_FIRST:
    case ODBC_Q_SAMPLE:
        break;
    case ODBC_Q_KEYS_NEXT:
        qb_s(&b, " WHERE ");
        qb_from(&b, order, norder);
        qb_after(&b, order, norder, 0);
        break;
    case ODBC_Q_BY_KEY:
        qb_s(&b, " WHERE ");
        for (int i = 0; i < s->nkeys; i++) {
            if (i)
                qb_s(&b, " AND ");
            qb_s(&b, s->keys[i]);
            qb_s(&b, " = ");
            qb_p(&b, i);
        }
        break;
    default:
        b.err = SIPHON_EINVAL;
        break;
    }
    if (kind != ODBC_Q_BY_KEY) {
        qb_s(&b, " ORDER BY ");
        qb_list(&b, order, norder);
        if (d->limit == ODBC_LIMIT_LIMIT) {
            qb_s(&b, " LIMIT ");
            qb_s(&b, num);
        } else if (d->limit == ODBC_LIMIT_FETCH) {
            qb_s(&b, " FETCH FIRST ");
            qb_s(&b, num);
            qb_s(&b, " ROWS ONLY");
        }
    }
    if (!b.err && siphon_buf_appendc(&b.sql, 0) < 0)
        b.err = SIPHON_ENOMEM;
    if (b.err) {
        siphon_buf_free(&b.sql);
        free(b.params);
        return b.err;
    }
    q->sql = (char *)b.sql.data;
    q->nparams = b.n;
    q->params = b.params;
    return 0;
}

void siphon_odbc__query_free(odbc_query_t *q)
{
    if (!q)
        return;
    free(q->sql);
    free(q->params);
    memset(q, 0, sizeof(*q));
}
