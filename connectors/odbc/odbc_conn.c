/*
 * odbc_conn.c - the ODBC side of the connector: connection, diagnostics, table description,
 * prepared statements and block fetches.
 *
 * Fetching: every result column of bounded size is bound (column-wise) with a buffer sized from
 * its described size, and SQLFetch fills a block of rows at once (SQL_ATTR_ROW_ARRAY_SIZE, up to
 * 1024 rows or 4 MiB). Long columns (LONGVARCHAR, LONGVARBINARY, sizes above 1024 characters or
 * unknown) are not bound but read with SQLGetData in 64 KiB pieces, which reads the current row
 * only, so such a statement fetches one row at a time. A bound value longer than its buffer (a
 * driver that reports 255 for a size it does not know) is read again whole with SQLGetData; in a
 * block that would need SQLSetPos, which MariaDB Connector/ODBC does not position right, so a
 * statement that meets such a value reads its page again and from then on one row per fetch.
 * Nothing is ever truncated.
 *
 * Errors: the first diagnostic records of the failing handle become the message. Failures that
 * reconnecting can cure (a dropped connection, a server restart, a deadlock) are
 * SIPHON_ECONN; the source then reconnects with backoff and runs the same poll again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"
#include "core/log.h"

_Static_assert(sizeof(SQLWCHAR) == 2, "unixODBC with 2-byte SQLWCHAR (UTF-16) is assumed");

#define PIECE_BYTES 65536
#define BLOCK_BYTES ((size_t)4 << 20) /* bound buffers of one statement, at most */

static int retriable_state(const char *st, SQLINTEGER native)
{
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "40", 2) == 0 || strncmp(st, "HYT", 3) == 0 ||
        strncmp(st, "57P", 3) == 0)
        return 1;
    /* MySQL/MariaDB client errors: server gone away, lost connection, connection killed,
     * server shutdown in progress */
    return native == 2006 || native == 2013 || native == 1927 || native == 1053 ||
           native == 2055;
}

void siphon_odbc__diag(odbc_conn_t *c, SQLSMALLINT htype, SQLHANDLE h, char *buf, size_t size,
                       int *retriable)
{
    SQLCHAR state[6], msg[1024];
    SQLINTEGER native;
    SQLSMALLINT len;
    size_t o = 0;
    *retriable = 0;
    buf[0] = 0;
    for (SQLSMALLINT i = 1; i <= 3 && o + 1 < size; i++) {
        if (!SQL_SUCCEEDED(SQLGetDiagRec(htype, h, i, state, &native, msg, sizeof(msg), &len)))
            break;
        /* one line: drivers pass on the server's multi-line messages */
        size_t ml = strlen((char *)msg);
        while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r' || msg[ml - 1] == ' ' ||
                      msg[ml - 1] == ';'))
            msg[--ml] = 0;
        for (size_t k = 0; k < ml; k++)
            if (msg[k] == '\n' || msg[k] == '\r' || msg[k] == '\t')
                msg[k] = ' ';
        int n = snprintf(buf + o, size - o, "%s[%s] %s", i > 1 ? "; " : "", state, msg);
        if (n > 0)
            o += (size_t)n < size - o ? (size_t)n : size - o - 1;
        if (retriable_state((char *)state, native))
            *retriable = 1;
    }
    if (!buf[0])
        snprintf(buf, size, "no diagnostics from the driver");
    if (!*retriable && c && c->dbc) {
        SQLUINTEGER dead = SQL_CD_FALSE;
        if (SQL_SUCCEEDED(SQLGetConnectAttr(c->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
            dead == SQL_CD_TRUE)
            *retriable = 1;
    }
}

/* "could not <what>: <diagnostics>" with the code chosen by retriability. */
static int fail(odbc_conn_t *c, SQLSMALLINT htype, SQLHANDLE h, int code_if_fatal, char *errbuf,
                size_t errsize, const char *what)
{
    char diag[1024];
    int retriable;
    siphon_odbc__diag(c, htype, h, diag, sizeof(diag), &retriable);
    return siphon_err(errbuf, errsize, retriable ? SIPHON_ECONN : code_if_fatal,
                      "could not %s: %s", what, diag);
}

static void info_str(SQLHDBC dbc, SQLUSMALLINT what, char *buf, size_t size)
{
    SQLSMALLINT len = 0;
    buf[0] = 0;
    if (!SQL_SUCCEEDED(SQLGetInfo(dbc, what, buf, (SQLSMALLINT)size, &len)))
        buf[0] = 0;
    buf[size - 1] = 0;
}

int siphon_odbc__connect(odbc_conn_t *c, const char *dsn, const char *redacted, char *errbuf,
                         size_t errsize)
{
    char *connstr = NULL;
    int rc;
    uint64_t q = c->queries, r = c->rows;
    memset(c, 0, sizeof(*c));
    c->queries = q;
    c->rows = r;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env)) ||
        !SQL_SUCCEEDED(SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0)) ||
        !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, c->env, &c->dbc))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                        "could not allocate ODBC handles (is unixODBC installed?)");
        goto err;
    }
    SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)(uintptr_t)10, 0);
    if (strchr(dsn, '=')) {
        connstr = strdup(dsn);
    } else if ((connstr = malloc(strlen(dsn) + 5))) {
        strcpy(connstr, "DSN=");
        strcat(connstr, dsn);
    }
    if (!connstr) {
        rc = SIPHON_ENOMEM;
        goto err;
    }
    SQLRETURN sr = SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)connstr, SQL_NTS, NULL, 0, NULL,
                                    SQL_DRIVER_NOPROMPT);
    if (!SQL_SUCCEEDED(sr)) {
        char diag[1024];
        int retriable;
        SQLCHAR state[6] = "";
        SQLINTEGER native;
        SQLSMALLINT len;
        SQLGetDiagRec(SQL_HANDLE_DBC, c->dbc, 1, state, &native, NULL, 0, &len);
        siphon_odbc__diag(NULL, SQL_HANDLE_DBC, c->dbc, diag, sizeof(diag), &retriable);
        /* IM: no such DSN or driver; 28: bad credentials; HY000 too often means "refused"
         * to call it fatal, so everything else is retried */
        int fatal = strncmp((char *)state, "IM", 2) == 0 || strncmp((char *)state, "28", 2) == 0;
        rc = siphon_err(errbuf, errsize, fatal ? SIPHON_EINVAL : SIPHON_ECONN,
                        "could not connect to ODBC data source %s: %s%s", redacted, diag,
                        fatal ? " (check source.dsn, the DSN in odbc.ini and the driver in "
                                "odbcinst.ini, or the credentials)"
                              : "");
        goto err;
    }
    c->connected = 1;
    char dbms[64], quote[8];
    SQLUINTEGER gd = 0;
    info_str(c->dbc, SQL_DBMS_NAME, dbms, sizeof(dbms));
    info_str(c->dbc, SQL_IDENTIFIER_QUOTE_CHAR, quote, sizeof(quote));
    info_str(c->dbc, SQL_DATABASE_NAME, c->database, sizeof(c->database));
    snprintf(c->dbms, sizeof(c->dbms), "%s", dbms);
    if (SQL_SUCCEEDED(SQLGetInfo(c->dbc, SQL_GETDATA_EXTENSIONS, &gd, sizeof(gd), NULL))) {
        c->gd_any_column = (gd & SQL_GD_ANY_COLUMN) != 0;
        c->gd_bound = (gd & SQL_GD_BOUND) != 0;
    }
    siphon_odbc__dialect(&c->dia, dbms, quote);
    free(connstr);
    return 0;
err:
    free(connstr);
    siphon_odbc__disconnect(c);
    return rc;
}

void siphon_odbc__disconnect(odbc_conn_t *c)
{
    if (c->dbc) {
        if (c->connected)
            SQLDisconnect(c->dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
    }
    if (c->env)
        SQLFreeHandle(SQL_HANDLE_ENV, c->env);
    c->dbc = NULL;
    c->env = NULL;
    c->connected = 0;
}

/* ---- describing a table ---- */

void siphon_odbc__cols_free(odbc_col_t *cols, int ncols)
{
    if (!cols)
        return;
    for (int i = 0; i < ncols; i++) {
        free(cols[i].name);
        free(cols[i].qname);
        free(cols[i].type_name);
    }
    free(cols);
}

static const char *sqltype_name(int t)
{
    switch (t) {
    case SQL_CHAR: return "CHAR";
    case SQL_VARCHAR: return "VARCHAR";
    case SQL_LONGVARCHAR: return "LONGVARCHAR";
    case SQL_WCHAR: return "WCHAR";
    case SQL_WVARCHAR: return "WVARCHAR";
    case SQL_WLONGVARCHAR: return "WLONGVARCHAR";
    case SQL_DECIMAL: return "DECIMAL";
    case SQL_NUMERIC: return "NUMERIC";
    case SQL_SMALLINT: return "SMALLINT";
    case SQL_INTEGER: return "INTEGER";
    case SQL_REAL: return "REAL";
    case SQL_FLOAT: return "FLOAT";
    case SQL_DOUBLE: return "DOUBLE";
    case SQL_BIT: return "BIT";
    case SQL_TINYINT: return "TINYINT";
    case SQL_BIGINT: return "BIGINT";
    case SQL_BINARY: return "BINARY";
    case SQL_VARBINARY: return "VARBINARY";
    case SQL_LONGVARBINARY: return "LONGVARBINARY";
    case SQL_TYPE_DATE: return "DATE";
    case SQL_TYPE_TIME: return "TIME";
    case SQL_TYPE_TIMESTAMP: return "TIMESTAMP";
    case SQL_GUID: return "GUID";
    default: return "SQL type";
    }
}

int siphon_odbc__describe(odbc_conn_t *c, const char *qtable, const char *display,
                          odbc_col_t **cols, int *ncols, char *errbuf, size_t errsize)
{
    SQLHSTMT h = SQL_NULL_HSTMT;
    odbc_col_t *cs = NULL;
    SQLSMALLINT n = 0;
    char what[512];
    int rc = 0;
    siphon_buf_t sql = {0};
    *cols = NULL;
    *ncols = 0;
    if (siphon_buf_printf(&sql, "SELECT * FROM %s WHERE 1=0", qtable) < 0 ||
        siphon_buf_appendc(&sql, 0) < 0)
        return SIPHON_ENOMEM;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h))) {
        rc = fail(c, SQL_HANDLE_DBC, c->dbc, SIPHON_ENOMEM, errbuf, errsize,
                  "allocate an ODBC statement");
        goto out;
    }
    c->queries++;
    if (!SQL_SUCCEEDED(SQLExecDirect(h, sql.data, SQL_NTS))) {
        SQLCHAR state[6] = "";
        SQLINTEGER native;
        SQLSMALLINT len;
        SQLGetDiagRec(SQL_HANDLE_STMT, h, 1, state, &native, NULL, 0, &len);
        snprintf(what, sizeof(what), "describe table %s (%s)", display, (char *)sql.data);
        rc = fail(c, SQL_HANDLE_STMT, h, SIPHON_EINVAL, errbuf, errsize, what);
        if (rc != SIPHON_ECONN && (strcmp((char *)state, "42S02") == 0 ||
                                   strcmp((char *)state, "42P01") == 0))
            rc = SIPHON_ENOTFOUND;
        goto out;
    }
    if (!SQL_SUCCEEDED(SQLNumResultCols(h, &n)) || n <= 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not describe table %s: the driver reports no columns", display);
        goto out;
    }
    if (!(cs = calloc((size_t)n, sizeof(*cs)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (SQLSMALLINT i = 0; i < n; i++) {
        SQLCHAR name[256], tname[128];
        SQLSMALLINT nl, dt, dd, nu;
        SQLULEN size;
        SQLLEN uns = SQL_FALSE;
        odbc_col_t *col = &cs[i];
        if (!SQL_SUCCEEDED(SQLDescribeCol(h, (SQLUSMALLINT)(i + 1), name, sizeof(name), &nl, &dt,
                                          &size, &dd, &nu))) {
            snprintf(what, sizeof(what), "describe column %d of table %s", i + 1, display);
            rc = fail(c, SQL_HANDLE_STMT, h, SIPHON_EINVAL, errbuf, errsize, what);
            goto out;
        }
        tname[0] = 0;
        if (!SQL_SUCCEEDED(SQLColAttribute(h, (SQLUSMALLINT)(i + 1), SQL_DESC_TYPE_NAME, tname,
                                           sizeof(tname), &nl, NULL)))
            tname[0] = 0;
        if (!SQL_SUCCEEDED(SQLColAttribute(h, (SQLUSMALLINT)(i + 1), SQL_DESC_UNSIGNED, NULL, 0,
                                           NULL, &uns)))
            uns = SQL_FALSE;
        siphon_buf_t q = {0};
        col->name = strdup((char *)name);
        col->type_name = strdup(tname[0] ? (char *)tname : sqltype_name(dt));
        if (siphon_odbc__quote(&q, (char *)name, c->dia.quote) < 0 || siphon_buf_appendc(&q, 0) < 0 ||
            !col->name || !col->type_name) {
            siphon_buf_free(&q);
            rc = SIPHON_ENOMEM;
            goto out;
        }
        /* quote_part treats dots as separators: a column name with a dot is quoted whole */
        if (strchr((char *)name, '.') && c->dia.quote[0]) {
            siphon_buf_reset(&q);
            if (siphon_buf_printf(&q, "%s%s%s", c->dia.quote, name, c->dia.quote) < 0 ||
                siphon_buf_appendc(&q, 0) < 0) {
                siphon_buf_free(&q);
                rc = SIPHON_ENOMEM;
                goto out;
            }
        }
        col->qname = (char *)q.data;
        col->sqltype = dt;
        col->size = size;
        col->digits = dd;
        col->nullable = nu;
        col->is_unsigned = uns == SQL_TRUE;
        col->kind = siphon_odbc__kind_for(dt, col->type_name, col->is_unsigned);
    }
    *cols = cs;
    *ncols = n;
    cs = NULL;
out:
    siphon_odbc__cols_free(cs, n);
    if (h != SQL_NULL_HSTMT) {
        SQLFreeStmt(h, SQL_CLOSE);
        SQLFreeHandle(SQL_HANDLE_STMT, h);
    }
    siphon_buf_free(&sql);
    return rc;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

/* One SQLPrimaryKeys call; the names sorted by KEY_SEQ. */
static int pk_try(odbc_conn_t *c, const char *cat, const char *sch, const char *tab,
                  char ***names, int *n)
{
    SQLHSTMT h;
    *n = 0;
    *names = NULL;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
        return SIPHON_ENOMEM;
    int rc = 0;
    c->queries++;
    if (!SQL_SUCCEEDED(SQLPrimaryKeys(h, (SQLCHAR *)cat, cat ? SQL_NTS : 0, (SQLCHAR *)sch,
                                      sch ? SQL_NTS : 0, (SQLCHAR *)tab, SQL_NTS))) {
        int retriable;
        char diag[512];
        siphon_odbc__diag(c, SQL_HANDLE_STMT, h, diag, sizeof(diag), &retriable);
        rc = retriable ? SIPHON_ECONN : 0;
        goto out;
    }
    char *byseq[64] = {0};
    int max = 0;
    for (;;) {
        SQLRETURN fr = SQLFetch(h);
        if (!SQL_SUCCEEDED(fr))
            break;
        char col[256];
        SQLLEN ind, seqind;
        SQLSMALLINT seq = 0;
        if (!SQL_SUCCEEDED(SQLGetData(h, 4, SQL_C_CHAR, col, sizeof(col), &ind)) ||
            ind == SQL_NULL_DATA)
            continue;
        if (!SQL_SUCCEEDED(SQLGetData(h, 5, SQL_C_SSHORT, &seq, 0, &seqind)) || seq < 1 ||
            seq > 64)
            seq = (SQLSMALLINT)(max + 1);
        free(byseq[seq - 1]);
        byseq[seq - 1] = strdup(col);
        if (seq > max)
            max = seq;
    }
    if (max > 0) {
        *names = calloc((size_t)max, sizeof(char *));
        for (int i = 0; i < max; i++) {
            if (*names && byseq[i])
                (*names)[(*n)++] = byseq[i];
            else
                free(byseq[i]);
        }
        if (!*names)
            rc = SIPHON_ENOMEM;
    }
out:
    SQLFreeStmt(h, SQL_CLOSE);
    SQLFreeHandle(SQL_HANDLE_STMT, h);
    return rc;
}

int siphon_odbc__primary_key(odbc_conn_t *c, const char *schema, const char *table,
                             char ***names, int *n, char *errbuf, size_t errsize)
{
    char s[256], t[256];
    *names = NULL;
    *n = 0;
    /* Catalogs differ: PostgreSQL and DB2 have schemas, MySQL/MariaDB call the database a
     * catalog, SQLite has neither; and names are stored folded to lower or upper case. */
    for (int fold = 0; fold < 3; fold++) {
        snprintf(s, sizeof(s), "%s", schema ? schema : "");
        snprintf(t, sizeof(t), "%s", table);
        if (fold == 1) {
            lower(s);
            lower(t);
        } else if (fold == 2) {
            upper(s);
            upper(t);
        }
        const char *tries[3][2] = {{NULL, s}, {s, NULL}, {NULL, NULL}};
        for (int k = 0; k < 3; k++) {
            if (!s[0] && k < 2)
                continue;
            int rc = pk_try(c, tries[k][0], tries[k][1], t, names, n);
            if (rc < 0)
                return siphon_err(errbuf, errsize, rc,
                                  "could not read the primary key of %s%s%s: the connection "
                                  "failed", schema ? schema : "", schema ? "." : "", table);
            if (*n > 0)
                return 0;
        }
    }
    return 0;
}

/* ---- statements ---- */

/* 1 for a column read with SQLGetData rather than bound: long types, and types whose size the
 * driver does not bound. Binding them would mean truncated values, and MariaDB
 * Connector/ODBC reads past its own buffer when it truncates a bound text column in SQLFetch. */
static int long_col(const odbc_col_t *col)
{
    if (col->kind != ODBC_K_TEXT && col->kind != ODBC_K_JSON && col->kind != ODBC_K_BYTES)
        return 0;
    if (col->sqltype == SQL_LONGVARCHAR || col->sqltype == SQL_WLONGVARCHAR ||
        col->sqltype == SQL_LONGVARBINARY)
        return 1;
    return col->size == 0 || col->size > (col->kind == ODBC_K_BYTES ? 8192 : 1024);
}

/* Bytes per row of a bound column's buffer. Text: two UTF-16 units per character (characters
 * outside the BMP) and the terminator, so a value within its declared size always fits. */
static size_t elem_size(const odbc_col_t *col)
{
    SQLULEN sz = col->size;
    switch (col->kind) {
    case ODBC_K_INT:
    case ODBC_K_FLOAT:
        return 8;
    case ODBC_K_BOOL:
        return 1;
    case ODBC_K_TEXT:
    case ODBC_K_JSON: {
        size_t chars = sz == 0 || sz > 1024 ? 256 : (size_t)sz;
        return (chars * 2 + 1) * sizeof(SQLWCHAR);
    }
    case ODBC_K_BYTES:
        return sz == 0 || sz > 8192 ? 256 : (size_t)sz;
    case ODBC_K_DECIMAL:
        return sz + 4 < 40 ? 40 : sz + 4 > 160 ? 160 : (size_t)sz + 4;
    case ODBC_K_UUID:
    case ODBC_K_UBIG:
    case ODBC_K_DATE:
    case ODBC_K_TIME:
        return 48;
    case ODBC_K_TS:
        return 64;
    }
    return 256;
}

void siphon_odbc__stmt_free(odbc_stmt_t *st)
{
    if (!st)
        return;
    if (st->h)
        SQLFreeHandle(SQL_HANDLE_STMT, st->h);
    for (int i = 0; i < st->ncols; i++) {
        if (st->buf)
            free(st->buf[i]);
        if (st->ind)
            free(st->ind[i]);
    }
    free(st->buf);
    free(st->ind);
    free(st->elem);
    free(st->rstat);
    free(st->rcols);
    free(st->pcols);
    free(st->pind);
    siphon_arena_destroy(&st->parena);
    siphon_odbc__query_free(&st->q);
    free(st);
}

int siphon_odbc__stmt_prepare(odbc_conn_t *c, odbc_stmt_t **out, odbc_query_t *q,
                              const odbc_col_t **rcols, int ncols, const odbc_col_t **pcols,
                              long max_rows, const char *what, char *errbuf, size_t errsize)
{
    odbc_stmt_t *st = calloc(1, sizeof(*st));
    int rc;
    char w[256];
    *out = NULL;
    if (!st) {
        siphon_odbc__query_free(q);
        return SIPHON_ENOMEM;
    }
    st->q = *q;
    memset(q, 0, sizeof(*q));
    snprintf(st->what, sizeof(st->what), "%s", what);
    siphon_arena_init(&st->parena, 0);
    st->ncols = ncols;
    int np = st->q.nparams;
    if (!(st->rcols = calloc((size_t)ncols, sizeof(*st->rcols))) ||
        !(st->pcols = calloc((size_t)(np ? np : 1), sizeof(*st->pcols))) ||
        !(st->pind = calloc((size_t)(np ? np : 1), sizeof(SQLLEN))) ||
        !(st->buf = calloc((size_t)ncols, sizeof(uint8_t *))) ||
        !(st->ind = calloc((size_t)ncols, sizeof(SQLLEN *))) ||
        !(st->elem = calloc((size_t)ncols, sizeof(size_t)))) {
        rc = SIPHON_ENOMEM;
        goto err;
    }
    memcpy(st->rcols, rcols, sizeof(*rcols) * (size_t)ncols);
    if (np)
        memcpy(st->pcols, pcols, sizeof(*pcols) * (size_t)np);

    /* Long columns are read with SQLGetData (elem 0: unbound), which reads the current row
     * only: such a statement fetches one row at a time. Bound columns after an unbound one need
     * SQL_GD_ANY_COLUMN; without it everything is bound (long values are then read again). */
    size_t rowbytes = 0;
    int unbound = 0;
    for (int i = 0; i < ncols; i++) {
        st->elem[i] = c->gd_any_column && long_col(rcols[i]) ? 0 : elem_size(rcols[i]);
        unbound |= st->elem[i] == 0;
        rowbytes += st->elem[i] + sizeof(SQLLEN);
    }
    size_t rowset = unbound ? 1 : BLOCK_BYTES / (rowbytes ? rowbytes : 1);
    if (rowset > 1024)
        rowset = 1024;
    if (max_rows > 0 && rowset > (size_t)max_rows)
        rowset = (size_t)max_rows;
    if (rowset < 1)
        rowset = 1;
    st->rowset = rowset;
    if (!(st->rstat = calloc(rowset, sizeof(SQLUSMALLINT)))) {
        rc = SIPHON_ENOMEM;
        goto err;
    }

    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st->h))) {
        st->h = NULL;
        rc = fail(c, SQL_HANDLE_DBC, c->dbc, SIPHON_ENOMEM, errbuf, errsize,
                  "allocate an ODBC statement");
        goto err;
    }
    if (rowset > 1 &&
        (!SQL_SUCCEEDED(SQLSetStmtAttr(st->h, SQL_ATTR_ROW_BIND_TYPE,
                                       (SQLPOINTER)SQL_BIND_BY_COLUMN, 0)) ||
         !SQL_SUCCEEDED(SQLSetStmtAttr(st->h, SQL_ATTR_ROW_ARRAY_SIZE,
                                       (SQLPOINTER)(uintptr_t)rowset, 0)))) {
        /* the driver refuses blocks after all: one row per fetch */
        st->rowset = rowset = 1;
        SQLSetStmtAttr(st->h, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER)(uintptr_t)1, 0);
    }
    SQLSetStmtAttr(st->h, SQL_ATTR_ROWS_FETCHED_PTR, &st->fetched, 0);
    SQLSetStmtAttr(st->h, SQL_ATTR_ROW_STATUS_PTR, st->rstat, 0);
    /* Only without a limit clause: MariaDB Connector/ODBC implements SQL_ATTR_MAX_ROWS by
     * appending its own LIMIT, which a query that has one refuses. */
    if (max_rows > 0 && c->dia.limit == ODBC_LIMIT_NONE)
        SQLSetStmtAttr(st->h, SQL_ATTR_MAX_ROWS, (SQLPOINTER)(uintptr_t)max_rows, 0);
    if (!SQL_SUCCEEDED(SQLPrepare(st->h, (SQLCHAR *)st->q.sql, SQL_NTS))) {
        snprintf(w, sizeof(w), "prepare the %s", st->what);
        rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EINVAL, errbuf, errsize, w);
        size_t l = strlen(errbuf);
        snprintf(errbuf + l, errsize > l ? errsize - l : 0, " (query: %s)", st->q.sql);
        goto err;
    }
    for (int i = 0; i < ncols; i++) {
        if (!(st->ind[i] = calloc(rowset, sizeof(SQLLEN)))) {
            rc = SIPHON_ENOMEM;
            goto err;
        }
        if (!st->elem[i])
            continue;
        if (!(st->buf[i] = malloc(rowset * st->elem[i]))) {
            rc = SIPHON_ENOMEM;
            goto err;
        }
        if (!SQL_SUCCEEDED(SQLBindCol(st->h, (SQLUSMALLINT)(i + 1),
                                      (SQLSMALLINT)siphon_odbc__kind_ctype(rcols[i]->kind),
                                      st->buf[i], (SQLLEN)st->elem[i], st->ind[i]))) {
            snprintf(w, sizeof(w), "bind column %s of the %s", rcols[i]->name, st->what);
            rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EINVAL, errbuf, errsize, w);
            goto err;
        }
    }
    *out = st;
    return 0;
err:
    siphon_odbc__stmt_free(st);
    return rc;
}

/* Bind parameter i to datum d, as the kind of the column it is compared with. */
static int bind_param(odbc_conn_t *c, odbc_stmt_t *st, int i, const odbc_datum_t *d,
                      char *errbuf, size_t errsize)
{
    const odbc_col_t *col = st->pcols[i];
    odbc_kind_t k = col->kind;
    SQLSMALLINT ctype = (SQLSMALLINT)siphon_odbc__kind_ctype(k);
    SQLULEN colsize = col->size;
    SQLSMALLINT digits = (SQLSMALLINT)col->digits;
    void *buf = NULL;
    SQLLEN buflen = 0;
    if (d->null) {
        st->pind[i] = SQL_NULL_DATA;
        buf = siphon_arena_alloc(&st->parena, 8);
    } else {
        switch (k) {
        case ODBC_K_TEXT:
        case ODBC_K_JSON: {
            SQLWCHAR *w = siphon_arena_alloc(&st->parena, (d->len + 1) * sizeof(SQLWCHAR));
            if (!w)
                return SIPHON_ENOMEM;
            size_t n = siphon_odbc__utf8_to_utf16((const char *)d->p, d->len, w);
            w[n] = 0;
            buf = w;
            buflen = (SQLLEN)((n + 1) * sizeof(SQLWCHAR));
            st->pind[i] = (SQLLEN)(n * sizeof(SQLWCHAR));
            if (colsize < n || colsize == 0)
                colsize = n ? n : 1;
            break;
        }
        case ODBC_K_INT:
        case ODBC_K_FLOAT:
        case ODBC_K_BOOL: {
            /* the datum's little-endian bytes are the C value on this (little-endian) host */
            uint8_t *p = siphon_arena_alloc(&st->parena, 8);
            if (!p)
                return SIPHON_ENOMEM;
            memcpy(p, d->p, d->len);
            buf = p;
            buflen = (SQLLEN)d->len;
            st->pind[i] = (SQLLEN)d->len;
            break;
        }
        case ODBC_K_BYTES:
            buf = (void *)d->p;
            buflen = (SQLLEN)d->len;
            st->pind[i] = (SQLLEN)d->len;
            if (colsize < d->len)
                colsize = d->len;
            break;
        default: {
            char *s = siphon_arena_strndup(&st->parena, (const char *)d->p, d->len);
            if (!s)
                return SIPHON_ENOMEM;
            buf = s;
            buflen = (SQLLEN)d->len + 1;
            st->pind[i] = (SQLLEN)d->len;
            if (k == ODBC_K_TS) {
                /* bounds computed from the clock carry microseconds */
                if (colsize < 26)
                    colsize = 26;
                if (digits < 6)
                    digits = 6;
            } else if (colsize < d->len) {
                colsize = d->len;
            }
            break;
        }
        }
    }
    if (!buf)
        return SIPHON_ENOMEM;
    if (!SQL_SUCCEEDED(SQLBindParameter(st->h, (SQLUSMALLINT)(i + 1), SQL_PARAM_INPUT, ctype,
                                        (SQLSMALLINT)col->sqltype, colsize, digits, buf, buflen,
                                        &st->pind[i]))) {
        char w[256];
        snprintf(w, sizeof(w), "bind parameter %d (column %s) of the %s", i + 1, col->name,
                 st->what);
        return fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EINVAL, errbuf, errsize, w);
    }
    return 0;
}

/* The bound value of column ci in row ri, into the arena. *trunc when it did not fit. */
static int take_bound(odbc_stmt_t *st, int ci, size_t ri, odbc_datum_t *d, int *trunc,
                      siphon_arena_t *a)
{
    const odbc_col_t *col = st->rcols[ci];
    SQLLEN ind = st->ind[ci][ri];
    const uint8_t *src = st->buf[ci] + ri * st->elem[ci];
    size_t elem = st->elem[ci];
    uint8_t *p;
    *trunc = 0;
    memset(d, 0, sizeof(*d));
    if (ind == SQL_NULL_DATA) {
        d->null = 1;
        return 0;
    }
    switch (col->kind) {
    case ODBC_K_INT:
    case ODBC_K_FLOAT:
        if (!(p = siphon_arena_alloc(a, 8)))
            return SIPHON_ENOMEM;
        memcpy(p, src, 8); /* little-endian host: the C value is the datum */
        d->p = p;
        d->len = 8;
        return 0;
    case ODBC_K_BOOL:
        if (!(p = siphon_arena_alloc(a, 1)))
            return SIPHON_ENOMEM;
        p[0] = src[0] != 0;
        d->p = p;
        d->len = 1;
        return 0;
    case ODBC_K_TEXT:
    case ODBC_K_JSON: {
        if (ind == SQL_NO_TOTAL || ind < 0 || (size_t)ind > elem - sizeof(SQLWCHAR)) {
            *trunc = 1;
            return 0;
        }
        size_t n = (size_t)ind / sizeof(SQLWCHAR);
        if (!(p = siphon_arena_alloc(a, n * 3 + 1)))
            return SIPHON_ENOMEM;
        d->len = (uint32_t)siphon_odbc__utf16_to_utf8((const SQLWCHAR *)src, n, (char *)p);
        d->p = p;
        return 0;
    }
    case ODBC_K_BYTES:
        if (ind == SQL_NO_TOTAL || ind < 0 || (size_t)ind > elem) {
            *trunc = 1;
            return 0;
        }
        if (!(p = siphon_arena_alloc(a, (size_t)ind + 1)))
            return SIPHON_ENOMEM;
        memcpy(p, src, (size_t)ind);
        d->p = p;
        d->len = (uint32_t)ind;
        return 0;
    default:
        if (ind == SQL_NO_TOTAL || ind < 0 || (size_t)ind >= elem) {
            *trunc = 1;
            return 0;
        }
        if (!(p = (uint8_t *)siphon_arena_strndup(a, (const char *)src, (size_t)ind)))
            return SIPHON_ENOMEM;
        d->p = p;
        d->len = (uint32_t)ind;
        return 0;
    }
}

/* Read column ci of the current row, whole, with SQLGetData in pieces: an unbound long column,
 * or a bound one whose value did not fit. */
static int take_long(odbc_conn_t *c, odbc_stmt_t *st, int ci, size_t ri, odbc_datum_t *d,
                     siphon_arena_t *a, char *errbuf, size_t errsize)
{
    const odbc_col_t *col = st->rcols[ci];
    SQLSMALLINT ctype = (SQLSMALLINT)siphon_odbc__kind_ctype(col->kind);
    size_t nul = ctype == SQL_C_WCHAR ? sizeof(SQLWCHAR) : ctype == SQL_C_CHAR ? 1 : 0;
    siphon_buf_t acc = {0};
    char w[300];
    int rc = 0;
    uint8_t *piece = malloc(PIECE_BYTES);
    memset(d, 0, sizeof(*d));
    if (!piece)
        return SIPHON_ENOMEM;
    if (st->elem[ci] && !c->gd_bound) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not read column %s in the %s: a value is longer than %zu bytes "
                        "and the driver cannot read a bound column again (no SQL_GD_BOUND)",
                        col->name, st->what, st->elem[ci]);
        goto out;
    }
    (void)ri; /* one row per fetch (see siphon_odbc__stmt_run): the current row */
    for (;;) {
        SQLLEN ind = 0;
        SQLRETURN r = SQLGetData(st->h, (SQLUSMALLINT)(ci + 1), ctype, piece, PIECE_BYTES, &ind);
        if (r == SQL_NO_DATA)
            break;
        if (!SQL_SUCCEEDED(r)) {
            snprintf(w, sizeof(w), "read the long value of column %s in the %s", col->name,
                     st->what);
            rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EIO, errbuf, errsize, w);
            goto out;
        }
        if (ind == SQL_NULL_DATA) {
            d->null = 1;
            goto out;
        }
        size_t got = r == SQL_SUCCESS_WITH_INFO && (ind == SQL_NO_TOTAL || (size_t)ind >= PIECE_BYTES - nul)
                         ? PIECE_BYTES - nul
                         : (size_t)ind;
        if (siphon_buf_append(&acc, piece, got) < 0) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        if (r == SQL_SUCCESS)
            break;
    }
    uint8_t *p;
    if (ctype == SQL_C_WCHAR) {
        size_t n = acc.len / sizeof(SQLWCHAR);
        if (!(p = siphon_arena_alloc(a, n * 3 + 1))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        d->len = (uint32_t)siphon_odbc__utf16_to_utf8((const SQLWCHAR *)acc.data, n, (char *)p);
    } else {
        if (!(p = siphon_arena_alloc(a, acc.len + 1))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        if (acc.len)
            memcpy(p, acc.data, acc.len);
        p[acc.len] = 0;
        d->len = (uint32_t)acc.len;
    }
    d->p = p;
out:
    free(piece);
    siphon_buf_free(&acc);
    return rc;
}

/* One execution. *again is set when a value did not fit its buffer in a block of rows: the
 * caller switches the statement to one row per fetch and runs it again. */
static int run_once(odbc_conn_t *c, odbc_stmt_t *st, long max_rows, odbc_datum_t *cells,
                    long *nrows, siphon_arena_t *a, int *again, char *errbuf, size_t errsize)
{
    char w[256];
    int rc = 0;
    *nrows = 0;
    *again = 0;
    c->queries++;
    SQLRETURN r = SQLExecute(st->h);
    if (!SQL_SUCCEEDED(r) && r != SQL_NO_DATA) {
        snprintf(w, sizeof(w), "run the %s", st->what);
        rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EINVAL, errbuf, errsize, w);
        goto out;
    }
    while (*nrows < max_rows) {
        /* MariaDB Connector/ODBC writes the indicator of a fixed-size column only when the
         * value is NULL: reset them, or a NULL would stick to the rows after it */
        for (int ci = 0; ci < st->ncols; ci++) {
            odbc_kind_t k = st->rcols[ci]->kind;
            if (k == ODBC_K_INT || k == ODBC_K_FLOAT || k == ODBC_K_BOOL)
                memset(st->ind[ci], 0, sizeof(SQLLEN) * st->rowset);
        }
        r = SQLFetch(st->h);
        if (r == SQL_NO_DATA)
            break;
        if (!SQL_SUCCEEDED(r)) {
            snprintf(w, sizeof(w), "fetch rows of the %s", st->what);
            rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EIO, errbuf, errsize, w);
            goto out;
        }
        SQLULEN got = st->rowset > 1 ? st->fetched : 1;
        for (SQLULEN ri = 0; ri < got && *nrows < max_rows; ri++) {
            if (st->rowset > 1 && (st->rstat[ri] == SQL_ROW_NOROW))
                continue;
            if (st->rowset > 1 && st->rstat[ri] == SQL_ROW_ERROR) {
                snprintf(w, sizeof(w), "fetch row %lu of a block of the %s",
                         (unsigned long)ri + 1, st->what);
                rc = fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EIO, errbuf, errsize, w);
                goto out;
            }
            odbc_datum_t *row = cells + (size_t)*nrows * (size_t)st->ncols;
            for (int ci = 0; ci < st->ncols; ci++) {
                int trunc;
                if (!st->elem[ci]) {
                    if ((rc = take_long(c, st, ci, ri, &row[ci], a, errbuf, errsize)) < 0)
                        goto out;
                    continue;
                }
                if ((rc = take_bound(st, ci, ri, &row[ci], &trunc, a)) < 0)
                    goto out;
                if (trunc && st->rowset > 1) {
                    /* Reading one value of a block again needs SQLSetPos, which not every
                     * driver positions right (MariaDB Connector/ODBC reads the block's first
                     * row): read the page again, one row per fetch. */
                    *again = 1;
                    goto out;
                }
                if (trunc && (rc = take_long(c, st, ci, ri, &row[ci], a, errbuf, errsize)) < 0)
                    goto out;
            }
            (*nrows)++;
        }
    }
    c->rows += (uint64_t)*nrows;
out:
    SQLFreeStmt(st->h, SQL_CLOSE);
    if (rc == SIPHON_ENOMEM)
        siphon_err(errbuf, errsize, rc, "out of memory reading the %s", st->what);
    return rc;
}

int siphon_odbc__stmt_run(odbc_conn_t *c, odbc_stmt_t *st, const odbc_datum_t *params,
                          long max_rows, odbc_datum_t *cells, long *nrows, siphon_arena_t *a,
                          char *errbuf, size_t errsize)
{
    int rc, again;
    siphon_arena_reset(&st->parena);
    for (int i = 0; i < st->q.nparams; i++)
        if ((rc = bind_param(c, st, i, &params[i], errbuf, errsize)) < 0)
            return rc;
    rc = run_once(c, st, max_rows, cells, nrows, a, &again, errbuf, errsize);
    if (rc == 0 && again) {
        siphon_log(SIPHON_LOG_DEBUG, "odbc",
                   "the %s has values longer than their buffers: one row per fetch from now on",
                   st->what);
        if (!SQL_SUCCEEDED(SQLSetStmtAttr(st->h, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER)(uintptr_t)1,
                                          0)))
            return fail(c, SQL_HANDLE_STMT, st->h, SIPHON_EIO, errbuf, errsize,
                        "switch a statement to one row per fetch");
        st->rowset = 1;
        rc = run_once(c, st, max_rows, cells, nrows, a, &again, errbuf, errsize);
    }
    return rc;
}

int siphon_odbc__query_text(odbc_conn_t *c, const char *sql, char **out, char *errbuf,
                            size_t errsize)
{
    SQLHSTMT h;
    char val[256], w[300];
    SQLLEN ind = 0;
    int rc = 0;
    *out = NULL;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
        return fail(c, SQL_HANDLE_DBC, c->dbc, SIPHON_ENOMEM, errbuf, errsize,
                    "allocate an ODBC statement");
    c->queries++;
    snprintf(w, sizeof(w), "run \"%s\"", sql);
    if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)sql, SQL_NTS))) {
        rc = fail(c, SQL_HANDLE_STMT, h, SIPHON_EINVAL, errbuf, errsize, w);
        goto out;
    }
    SQLRETURN r = SQLFetch(h);
    if (r == SQL_NO_DATA) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not %s: no row", w);
        goto out;
    }
    if (!SQL_SUCCEEDED(r) ||
        !SQL_SUCCEEDED(SQLGetData(h, 1, SQL_C_CHAR, val, sizeof(val), &ind))) {
        rc = fail(c, SQL_HANDLE_STMT, h, SIPHON_EIO, errbuf, errsize, w);
        goto out;
    }
    if (ind == SQL_NULL_DATA) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not %s: it returned NULL", w);
        goto out;
    }
    if (!(*out = strdup(val)))
        rc = SIPHON_ENOMEM;
out:
    SQLFreeStmt(h, SQL_CLOSE);
    SQLFreeHandle(SQL_HANDLE_STMT, h);
    return rc;
}
