/*
 * odbc_source.c - the ODBC polling connector's callback table: which table is read next, what
 * each poll reads, how a row becomes a create, an update or nothing, how deletes are found, and
 * how positions move.
 *
 * Design. One connection; steps run one at a time on the pipeline thread inside next(), each
 * one statement: a poll page of one table, or a chunk of one table's reconciliation. A step
 * first reads everything it needs from the database, and only then changes state and appends
 * records, so a connection lost in the middle of a step leaves nothing half done: the step runs
 * again after the reconnection.
 *
 * Per table, by mode (ordering columns in brackets; the cursor is their values on the last row
 * read):
 *   incrementing            [inc]          rows with inc > cursor, page by page
 *   timestamp               [ts, key...]   sweeps of (base, hi], hi = database clock - lag,
 *   timestamp+incrementing  [ts, inc]        base = previous hi - lag: the re-read window
 *   snapshot                [key...]       full sweeps, every poll_interval
 * Each row read is looked up in the table's key set (odbc_keys.c) by its key: an unknown key is
 * a create, a known key with another content hash an update, the same hash nothing (a row of
 * the re-read window already delivered). Deletes: a snapshot sweep, and in the other modes a
 * reconciliation pass every reconcile_interval_s (the key column set read in chunks, keyset
 * pagination), marks every key it reads with the pass number; live keys left unmarked at the end
 * of a complete pass were deleted. A reconciliation also fetches, by key, rows it finds in the
 * table but never saw (a NULL timestamp, a commit later than the window): they become creates.
 *
 * States of the connection, with the function that moves between them:
 *     UP --[a step fails with SIPHON_ECONN: conn_drop()]--> DOWN(retry_at)
 *     DOWN --[retry_at passed: conn_up(): connect, describe, clock]--> UP
 * Each poll is one transaction (BEGIN, CHANGE..., COMMIT) or, when it changed no row but moved
 * the watermark, a POSITION record. Positions: see odbc_int.h.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "connectors/odbc/odbc.h"
#include "connectors/odbc/odbc_int.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define CLOCK_REFRESH_MS 60000
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define COMPACT_MIN_BYTES ((uint64_t)4 << 20)

typedef enum odbc_mode { ODBC_M_INC = 1, ODBC_M_TS, ODBC_M_TSINC, ODBC_M_SNAPSHOT } odbc_mode_t;

static const char *mode_name(odbc_mode_t m)
{
    switch (m) {
    case ODBC_M_INC: return "incrementing";
    case ODBC_M_TS: return "timestamp";
    case ODBC_M_TSINC: return "timestamp+incrementing";
    case ODBC_M_SNAPSHOT: return "snapshot";
    }
    return "?";
}

/* One shape of a table; every version stays alive until close() (describe() hands them out). */
typedef struct odbc_relv {
    siphon_relation_t rel;
    struct odbc_relv *next;
} odbc_relv_t;

typedef struct odbc_table {
    int idx;
    char *full;         /* the configured name ("public.oehdr"): watermarks, key sets, logs */
    char *sql_schema;   /* its parts as used in SQL and SQLPrimaryKeys (schema NULL: none) */
    char *sql_name;
    char *map_schema;   /* what the mappings call it (relation schema/name) */
    char *map_name;
    odbc_mode_t mode;
    const struct siphon_config_odbc_table *cfg;
    char *qtable;

    /* shape (from the last describe) */
    odbc_col_t *cols;
    int ncols;
    int ts_col, inc_col;
    int *key, nkey;
    int *order, norder;
    odbc_relv_t *relv;  /* current version first */

    odbc_stmt_t *st[ODBC_Q_COUNT];

    /* read state */
    odbc_wm_t wm;
    int caught_up;      /* the last poll page was not full */
    int sweep_partial;  /* snapshot: this sweep resumed mid-way (no delete detection) */
    uint32_t epoch;     /* current pass (snapshot sweep or reconciliation) */
    odbc_keys_t keys;
    int64_t poll_due;

    /* reconciliation */
    int recon_on;
    int recon_active;
    int64_t recon_due;
    odbc_wm_t recon_wm; /* only its cursor: the last key read in this pass */
    siphon_buf_t missing; /* encoded keys seen in the table but not in the key set */
    int nmissing;
    uint64_t last_recon_unix;
} odbc_table_t;

struct siphon_source {
    char *name;
    char *dsn;               /* secret: never logged; see redacted */
    char redacted[256];
    int poll_ms, max_rows, lag_ms, recon_s, recon_chunk;
    char *state_dir;

    odbc_conn_t conn;
    int up;
    int64_t retry_at;
    int backoff_ms;
    int failed;              /* an intent could not be written: stop */
    char failed_msg[512];

    odbc_table_t *tables;
    int ntables, captables;
    int catalog;             /* opened by open_catalog(): describe() and sample() only */
    const struct siphon_config_odbc *oc; /* borrowed from the config (catalog: until close) */
    odbc_store_t store;

    int64_t clock_us;        /* database clock at clock_mono_ms */
    int64_t clock_mono_ms;

    /* the batch being built (valid until the next call to next()) */
    siphon_arena_t arena;
    siphon_change_t *recs;
    int nrecs, caprecs;

    siphon_buf_t delta;      /* the key changes of the step being run */
    uint64_t seq;            /* last poll sequence number handed out (continues across runs) */
    uint64_t acked_seq;

    /* counters (siphon_odbc__stats) */
    uint64_t polls, changes, deletes, recon_passes, reconnects;
};

/* Process-wide so that (relation, version) names one shape across connectors. */
static atomic_uint_fast64_t rel_version_seq;

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the database clock ---- */

static int clock_read(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char *text = NULL;
    int64_t us;
    int tz;
    int rc = siphon_odbc__query_text(&src->conn, src->conn.dia.clock_sql, &text, errbuf, errsize);
    if (rc < 0)
        return rc;
    size_t len = strlen(text);
    while (len && text[len - 1] == ' ')
        len--;
    if (siphon_odbc__parse_ts(text, len, &us, &tz) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                        "could not read the database clock: \"%s\" returned \"%s\", which is "
                        "not a timestamp", src->conn.dia.clock_sql, text);
        free(text);
        return rc;
    }
    free(text);
    src->clock_us = us;
    src->clock_mono_ms = siphon_clock_now_ms();
    return 0;
}

/* The database's current time, extrapolated from the last reading with the monotonic clock
 * (the host's wall clock is never used). */
static int64_t db_now_us(const siphon_source_t *src)
{
    return src->clock_us + (siphon_clock_now_ms() - src->clock_mono_ms) * 1000;
}

/* ---- batch records ---- */

static siphon_change_t *rec_new(siphon_source_t *src)
{
    if (src->nrecs == src->caprecs) {
        int cap = src->caprecs ? src->caprecs * 2 : 1024;
        siphon_change_t *r = realloc(src->recs, sizeof(*r) * (size_t)cap);
        if (!r)
            return NULL;
        src->recs = r;
        src->caprecs = cap;
    }
    siphon_change_t *c = &src->recs[src->nrecs++];
    memset(c, 0, sizeof(*c));
    c->database = src->conn.database[0] ? src->conn.database : src->redacted;
    return c;
}

/* ---- tables: shape ---- */

static int find_col(const odbc_table_t *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return i;
    for (int i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0)
            return i;
    return -1;
}

static int same_shape(const siphon_relation_t *r, const odbc_table_t *t)
{
    if (r->ncols != t->ncols)
        return 0;
    for (int i = 0; i < t->ncols; i++) {
        const siphon_column_t *c = &r->cols[i];
        if (strcmp(c->name, t->cols[i].name) != 0 || c->type_oid != (uint32_t)t->cols[i].sqltype ||
            strcmp(c->type_name, t->cols[i].type_name) != 0 ||
            c->vtype != siphon_odbc__kind_vtype(t->cols[i].kind))
            return 0;
        int is_key = 0;
        for (int k = 0; k < t->nkey; k++)
            is_key |= t->key[k] == i;
        if (c->is_key != is_key)
            return 0;
    }
    return 1;
}

static void relv_free(odbc_relv_t *v)
{
    while (v) {
        odbc_relv_t *n = v->next;
        for (int i = 0; i < v->rel.ncols; i++) {
            free(v->rel.cols[i].name);
            free(v->rel.cols[i].type_name);
        }
        free(v->rel.cols);
        free(v->rel.schema);
        free(v->rel.name);
        free(v);
        v = n;
    }
}

static int relation_update(odbc_table_t *t, const int *pkey_flags)
{
    if (t->relv && same_shape(&t->relv->rel, t))
        return 0;
    odbc_relv_t *v = calloc(1, sizeof(*v));
    if (!v)
        return SIPHON_ENOMEM;
    v->rel.id = (uint32_t)t->idx + 1;
    v->rel.version = (uint64_t)atomic_fetch_add(&rel_version_seq, 1) + 1;
    v->rel.schema = strdup(t->map_schema);
    v->rel.name = strdup(t->map_name);
    v->rel.ncols = t->ncols;
    v->rel.cols = calloc((size_t)t->ncols, sizeof(siphon_column_t));
    if (!v->rel.schema || !v->rel.name || !v->rel.cols) {
        relv_free(v);
        return SIPHON_ENOMEM;
    }
    for (int i = 0; i < t->ncols; i++) {
        siphon_column_t *c = &v->rel.cols[i];
        c->name = strdup(t->cols[i].name);
        c->type_name = strdup(t->cols[i].type_name);
        if (!c->name || !c->type_name) {
            relv_free(v);
            return SIPHON_ENOMEM;
        }
        c->type_oid = (uint32_t)t->cols[i].sqltype;
        c->vtype = siphon_odbc__kind_vtype(t->cols[i].kind);
        c->typmod = (int32_t)(t->cols[i].size > INT32_MAX ? -1 : (int32_t)t->cols[i].size);
        for (int k = 0; k < t->nkey; k++)
            c->is_key |= t->key[k] == i;
        c->is_pkey = pkey_flags ? pkey_flags[i] : 0;
    }
    v->next = t->relv;
    t->relv = v;
    return 0;
}

static void stmts_free(odbc_table_t *t)
{
    for (int q = 0; q < ODBC_Q_COUNT; q++) {
        siphon_odbc__stmt_free(t->st[q]);
        t->st[q] = NULL;
    }
}

/* Describe the table, resolve the configured columns and the key, build the relation. */
static int table_describe(siphon_source_t *src, odbc_table_t *t, char *errbuf, size_t errsize)
{
    odbc_col_t *cols = NULL;
    int ncols = 0, rc;
    char **pk = NULL;
    int npk = 0, *pkflags = NULL;
    const struct siphon_config_odbc_table *tc = t->cfg;

    rc = siphon_odbc__describe(&src->conn, t->qtable, t->full, &cols, &ncols, errbuf, errsize);
    if (rc == SIPHON_ENOTFOUND) {
        char tmp[768];
        snprintf(tmp, sizeof(tmp), "%s", errbuf);
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s (is table %s spelled as the database knows it, with its schema?)",
                          tmp, t->full);
    }
    if (rc < 0)
        return rc;
    siphon_odbc__cols_free(t->cols, t->ncols);
    free(t->key);
    free(t->order);
    t->cols = cols;
    t->ncols = ncols;
    t->key = t->order = NULL;
    t->nkey = t->norder = 0;
    t->ts_col = t->inc_col = -1;

    if (tc->timestamp_column && (t->ts_col = find_col(t, tc->timestamp_column)) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s has no column \"%s\" (its timestamp_column in source.tables)",
                          t->full, tc->timestamp_column);
    if (tc->incrementing_column && (t->inc_col = find_col(t, tc->incrementing_column)) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s has no column \"%s\" (its incrementing_column in "
                          "source.tables)", t->full, tc->incrementing_column);
    if (t->ts_col >= 0 && t->cols[t->ts_col].kind != ODBC_K_TS &&
        t->cols[t->ts_col].kind != ODBC_K_TEXT)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "timestamp_column \"%s\" of table %s is %s, not a timestamp (expected a "
                          "TIMESTAMP/DATETIME column; for a number that only grows use mode "
                          "incrementing)", t->cols[t->ts_col].name, t->full,
                          t->cols[t->ts_col].type_name);
    if (t->inc_col >= 0 && t->cols[t->inc_col].kind != ODBC_K_INT &&
        t->cols[t->inc_col].kind != ODBC_K_DECIMAL && t->cols[t->inc_col].kind != ODBC_K_UBIG &&
        t->cols[t->inc_col].kind != ODBC_K_TEXT && t->cols[t->inc_col].kind != ODBC_K_TS)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "incrementing_column \"%s\" of table %s is %s, which cannot be "
                          "strictly increasing (expected an integer or a decimal)",
                          t->cols[t->inc_col].name, t->full, t->cols[t->inc_col].type_name);

    if (!(t->key = calloc((size_t)ncols, sizeof(int))) ||
        !(t->order = calloc((size_t)ncols + 1, sizeof(int))) ||
        !(pkflags = calloc((size_t)ncols, sizeof(int)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    if ((rc = siphon_odbc__primary_key(&src->conn, t->sql_schema, t->sql_name, &pk, &npk, errbuf,
                                       errsize)) < 0)
        goto out;
    for (int i = 0; i < npk; i++) {
        int c = find_col(t, pk[i]);
        if (c >= 0)
            pkflags[c] = 1;
    }
    if (tc->nkey_columns > 0) {
        for (int i = 0; i < tc->nkey_columns; i++) {
            int c = find_col(t, tc->key_columns[i]);
            if (c < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "table %s has no column \"%s\" (its key_columns in "
                                "source.tables)", t->full, tc->key_columns[i]);
                goto out;
            }
            t->key[t->nkey++] = c;
        }
    } else if (npk > 0) {
        for (int i = 0; i < npk; i++) {
            int c = find_col(t, pk[i]);
            if (c >= 0)
                t->key[t->nkey++] = c;
        }
    } else if (t->mode == ODBC_M_INC || t->mode == ODBC_M_TSINC) {
        t->key[t->nkey++] = t->inc_col;
    }
    if (t->nkey == 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "table %s has no primary key that the driver reports, and no "
                        "key_columns are configured (add key_columns: [...] to its entry in "
                        "source.tables: updates and deletes are recognized by key)", t->full);
        goto out;
    }
    switch (t->mode) {
    case ODBC_M_INC:
        t->order[t->norder++] = t->inc_col;
        break;
    case ODBC_M_TS:
        t->order[t->norder++] = t->ts_col;
        for (int k = 0; k < t->nkey; k++)
            if (t->key[k] != t->ts_col)
                t->order[t->norder++] = t->key[k];
        break;
    case ODBC_M_TSINC:
        t->order[t->norder++] = t->ts_col;
        t->order[t->norder++] = t->inc_col;
        break;
    case ODBC_M_SNAPSHOT:
        for (int k = 0; k < t->nkey; k++)
            t->order[t->norder++] = t->key[k];
        break;
    }
    rc = relation_update(t, pkflags);
out:
    for (int i = 0; i < npk; i++)
        free(pk[i]);
    free(pk);
    free(pkflags);
    return rc;
}

/* ---- statements ---- */

static const char *qkind_name(odbc_qkind_t q)
{
    switch (q) {
    case ODBC_Q_FIRST: return "first poll";
    case ODBC_Q_FIRST_BASE: return "poll";
    case ODBC_Q_NEXT: return "next-page poll";
    case ODBC_Q_KEYS_FIRST: return "first reconciliation";
    case ODBC_Q_KEYS_NEXT: return "reconciliation";
    case ODBC_Q_BY_KEY: return "by-key read";
    default: return "query";
    }
}

/* Build the query spec of a table (names borrowed from the table; arrays malloc'd). */
static int table_qspec(const siphon_source_t *src, const odbc_table_t *t, odbc_qspec_t *s,
                       const char ***arrays)
{
    const char **sel = calloc((size_t)t->ncols, sizeof(char *));
    const char **ord = calloc((size_t)t->norder, sizeof(char *));
    const char **key = calloc((size_t)t->nkey, sizeof(char *));
    arrays[0] = sel;
    arrays[1] = ord;
    arrays[2] = key;
    if (!sel || !ord || !key)
        return SIPHON_ENOMEM;
    for (int i = 0; i < t->ncols; i++)
        sel[i] = t->cols[i].qname;
    for (int i = 0; i < t->norder; i++)
        ord[i] = t->cols[t->order[i]].qname;
    for (int i = 0; i < t->nkey; i++)
        key[i] = t->cols[t->key[i]].qname;
    memset(s, 0, sizeof(*s));
    s->table = t->qtable;
    s->select = sel;
    s->nselect = t->ncols;
    s->order = ord;
    s->norder = t->norder;
    s->keys = key;
    s->nkeys = t->nkey;
    s->ts = t->ts_col >= 0 && (t->mode == ODBC_M_TS || t->mode == ODBC_M_TSINC)
                ? t->cols[t->ts_col].qname
                : NULL;
    s->not_null = t->mode == ODBC_M_INC ? t->cols[t->inc_col].qname : NULL;
    s->page = src->max_rows;
    s->chunk = src->recon_chunk;
    return 0;
}

static int stmt_get(siphon_source_t *src, odbc_table_t *t, odbc_qkind_t kind, odbc_stmt_t **out,
                    char *errbuf, size_t errsize)
{
    if (t->st[kind]) {
        *out = t->st[kind];
        return 0;
    }
    const char **arrays[3] = {0};
    odbc_qspec_t spec;
    odbc_query_t q = {0};
    const odbc_col_t **rcols = NULL, **pcols = NULL;
    char what[160];
    int rc = table_qspec(src, t, &spec, arrays);
    if (rc < 0)
        goto out;
    if ((rc = siphon_odbc__query_build(&q, kind, &spec, &src->conn.dia)) < 0)
        goto out;
    int keys_only = kind == ODBC_Q_KEYS_FIRST || kind == ODBC_Q_KEYS_NEXT;
    int ncols = keys_only ? t->nkey : t->ncols;
    const int *cur_cols = keys_only || kind == ODBC_Q_BY_KEY ? t->key : t->order;
    if (!(rcols = calloc((size_t)ncols, sizeof(*rcols))) ||
        !(pcols = calloc((size_t)(q.nparams ? q.nparams : 1), sizeof(*pcols)))) {
        rc = SIPHON_ENOMEM;
        siphon_odbc__query_free(&q);
        goto out;
    }
    for (int i = 0; i < ncols; i++)
        rcols[i] = &t->cols[keys_only ? t->key[i] : i];
    for (int i = 0; i < q.nparams; i++)
        pcols[i] = q.params[i] < 0 ? &t->cols[t->ts_col] : &t->cols[cur_cols[q.params[i]]];
    snprintf(what, sizeof(what), "%s of %s", qkind_name(kind), t->full);
    long max_rows = keys_only ? src->recon_chunk : kind == ODBC_Q_BY_KEY ? 1 : src->max_rows;
    rc = siphon_odbc__stmt_prepare(&src->conn, &t->st[kind], &q, rcols, ncols, pcols, max_rows,
                                   what, errbuf, errsize);
    if (rc == 0) {
        siphon_log(SIPHON_LOG_DEBUG, "odbc", "prepared %s (%lu rows per fetch): %s", what,
                   (unsigned long)t->st[kind]->rowset, t->st[kind]->q.sql);
        *out = t->st[kind];
    }
out:
    free(rcols);
    free(pcols);
    free(arrays[0]);
    free(arrays[1]);
    free(arrays[2]);
    return rc;
}

/* Parameters of a statement from the bounds and a cursor (texts). */
static int stmt_params(siphon_source_t *src, odbc_stmt_t *st, const odbc_wm_t *wm,
                       char *const *cur, int ncur, odbc_datum_t **out, char *errbuf,
                       size_t errsize)
{
    int np = st->q.nparams;
    odbc_datum_t *p = siphon_arena_alloc(&src->arena, sizeof(*p) * (size_t)(np ? np : 1));
    if (!p)
        return SIPHON_ENOMEM;
    for (int i = 0; i < np; i++) {
        int what = st->q.params[i];
        const char *text = what == ODBC_P_HI ? wm->hi : what == ODBC_P_BASE ? wm->base
                           : what < ncur     ? cur[what]
                                             : NULL;
        if (!text) {
            p[i] = (odbc_datum_t){NULL, 0, 1};
            continue;
        }
        int rc = siphon_odbc__datum_parse(&p[i], st->pcols[i]->kind, text, strlen(text),
                                          &src->arena);
        if (rc < 0)
            return rc == SIPHON_ENOMEM
                       ? rc
                       : siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                    "could not use the watermark value \"%.60s\" for column %s "
                                    "(%s) in the %s: not a value of that type (was the column's "
                                    "type changed? remove the table from the offsets file to "
                                    "read it again)",
                                    text, st->pcols[i]->name, st->pcols[i]->type_name, st->what);
    }
    *out = p;
    return 0;
}

/* ---- watermark helpers ---- */

static int wm_set_cursor(siphon_source_t *src, odbc_wm_t *wm, const odbc_table_t *t,
                         const odbc_datum_t *row, const int *cols, int n)
{
    siphon_buf_t b = {0};
    for (int i = 0; i < wm->ncur; i++)
        free(wm->cur[i]);
    free(wm->cur);
    wm->cur = calloc((size_t)n, sizeof(char *));
    wm->ncur = 0;
    if (!wm->cur)
        return SIPHON_ENOMEM;
    wm->ncur = n;
    for (int i = 0; i < n; i++) {
        const odbc_datum_t *d = &row[cols[i]];
        if (d->null)
            continue;
        siphon_buf_reset(&b);
        if (siphon_odbc__datum_text(&b, t->cols[cols[i]].kind, d) < 0 ||
            siphon_buf_appendc(&b, 0) < 0 || !(wm->cur[i] = strdup((char *)b.data))) {
            siphon_buf_free(&b);
            return SIPHON_ENOMEM;
        }
    }
    siphon_buf_free(&b);
    (void)src;
    return 0;
}

static void wm_clear_cursor(odbc_wm_t *wm)
{
    for (int i = 0; i < wm->ncur; i++)
        free(wm->cur[i]);
    free(wm->cur);
    wm->cur = NULL;
    wm->ncur = 0;
}

static int set_str(char **dst, const char *s)
{
    char *n = s ? strdup(s) : NULL;
    if (s && !n)
        return SIPHON_ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

/* The position text of every table's current read state, in the batch arena. */
static char *pos_now(siphon_source_t *src)
{
    const char **names = siphon_arena_alloc(&src->arena, sizeof(char *) * (size_t)src->ntables);
    const odbc_wm_t **wms =
        siphon_arena_alloc(&src->arena, sizeof(odbc_wm_t *) * (size_t)src->ntables);
    if (!names || !wms)
        return NULL;
    for (int i = 0; i < src->ntables; i++) {
        names[i] = src->tables[i].full;
        wms[i] = &src->tables[i].wm;
    }
    char *text = siphon_odbc__pos_text(names, wms, src->ntables);
    if (!text)
        return NULL;
    char *a = siphon_arena_strndup(&src->arena, text, strlen(text));
    free(text);
    return a;
}

/* ---- emitting ---- */

typedef struct emit {
    siphon_source_t *src;
    odbc_table_t *t;
    char *errbuf;
    size_t errsize;
    int begin_idx;       /* index of the BEGIN record, -1 until the first change */
    uint64_t h;          /* the transaction's identity: start watermark + its changes */
    int n;
} emit_t;

static void emit_start(emit_t *e, siphon_source_t *src, odbc_table_t *t, const char *tag,
                       char *errbuf, size_t errsize)
{
    memset(e, 0, sizeof(*e));
    e->src = src;
    e->t = t;
    e->errbuf = errbuf;
    e->errsize = errsize;
    e->begin_idx = -1;
    const odbc_wm_t *w = &t->wm;
    e->h = siphon_odbc__hash(0, t->full, strlen(t->full));
    e->h = siphon_odbc__hash(e->h, tag, strlen(tag));
    const odbc_wm_t *one[1] = {w};
    const char *name[1] = {t->full};
    char *text = siphon_odbc__pos_text(name, one, 1);
    if (text) {
        e->h = siphon_odbc__hash(e->h, text, strlen(text));
        free(text);
    }
}

/* Append a change: op and its rows (values in the arena). */
static int emit_change(emit_t *e, char op, const siphon_row_t *before, const siphon_row_t *after,
                       uint64_t khash, uint64_t chash)
{
    siphon_source_t *src = e->src;
    if (e->begin_idx < 0) {
        if (!rec_new(src))
            return SIPHON_ENOMEM;
        e->begin_idx = src->nrecs - 1;
        src->recs[e->begin_idx].kind = SIPHON_REC_BEGIN;
    }
    siphon_change_t *c = rec_new(src);
    if (!c)
        return SIPHON_ENOMEM;
    c->kind = SIPHON_REC_CHANGE;
    c->op = (siphon_op_t)op;
    c->rel = &e->t->relv->rel;
    c->before = before;
    c->after = after;
    uint8_t x[17];
    x[0] = (uint8_t)op;
    memcpy(x + 1, &khash, 8);
    memcpy(x + 9, &chash, 8);
    e->h = siphon_odbc__hash(e->h, x, sizeof(x));
    e->n++;
    if (op == 'd')
        src->deletes++;
    else
        src->changes++;
    return 0;
}

/* Close the poll: BEGIN/COMMIT around the changes, or a POSITION when only the watermark
 * moved (moved != 0), or nothing. */
static int emit_end(emit_t *e, uint64_t seq, int moved)
{
    siphon_source_t *src = e->src;
    if (e->begin_idx < 0 && !moved)
        return 0;
    char *pos = pos_now(src);
    if (!pos)
        return SIPHON_ENOMEM;
    if (strlen(pos) > ODBC_POS_MAX)
        return siphon_err(e->errbuf, e->errsize, SIPHON_EINVAL,
                          "the position of the %d polled table(s) takes %zu bytes, more than the "
                          "%d the offsets file holds (long key values in a cursor, or many "
                          "tables): split the tables over several connectors",
                          src->ntables, strlen(pos), ODBC_POS_MAX);
    int64_t ts = db_now_us(src);
    if (e->begin_idx < 0) {
        siphon_change_t *c = rec_new(src);
        if (!c)
            return SIPHON_ENOMEM;
        c->kind = SIPHON_REC_POSITION;
        c->pos.num = seq;
        c->pos.text = pos;
        return 0;
    }
    /* "<table>:<hash>": short (event ids are "<this>:<index>"), the same for the same rows
     * read from the same watermark */
    char btext[64];
    snprintf(btext, sizeof(btext), "%.40s:%012" PRIx64, e->t->full, e->h & UINT64_C(0xffffffffffff));
    char *b = siphon_arena_strndup(&src->arena, btext, strlen(btext));
    if (!b)
        return SIPHON_ENOMEM;
    for (int i = e->begin_idx; i < src->nrecs; i++) {
        siphon_change_t *c = &src->recs[i];
        c->txid = seq;
        c->commit_ts_us = ts;
        if (c->kind == SIPHON_REC_BEGIN || c->kind == SIPHON_REC_CHANGE) {
            c->pos.num = seq;
            c->pos.text = b;
        }
    }
    siphon_change_t *c = rec_new(src);
    if (!c)
        return SIPHON_ENOMEM;
    c->kind = SIPHON_REC_COMMIT;
    c->txid = seq;
    c->commit_ts_us = ts;
    c->pos.num = seq;
    c->pos.text = pos;
    return 0;
}

/* The after row of a fetched row (values in the arena). */
static int row_after(siphon_source_t *src, const odbc_table_t *t, const odbc_datum_t *cells,
                     siphon_row_t **out)
{
    siphon_row_t *r = siphon_arena_alloc(&src->arena, sizeof(*r));
    siphon_value_t *v = siphon_arena_alloc(&src->arena, sizeof(*v) * (size_t)t->ncols);
    if (!r || !v)
        return SIPHON_ENOMEM;
    for (int i = 0; i < t->ncols; i++)
        if (siphon_odbc__decode(&v[i], t->cols[i].kind, &cells[i], &src->arena) < 0)
            return SIPHON_ENOMEM;
    r->ncols = t->ncols;
    r->vals = v;
    *out = r;
    return 0;
}

/* The before row of a delete: the key columns from the stored key, the rest unchanged. */
static int row_key_only(siphon_source_t *src, const odbc_table_t *t, const uint8_t *key,
                        size_t klen, siphon_row_t **out, char *errbuf, size_t errsize)
{
    siphon_row_t *r = siphon_arena_alloc(&src->arena, sizeof(*r));
    siphon_value_t *v = siphon_arena_alloc(&src->arena, sizeof(*v) * (size_t)t->ncols);
    odbc_datum_t *kd = siphon_arena_alloc(&src->arena, sizeof(*kd) * (size_t)t->nkey);
    if (!r || !v || !kd)
        return SIPHON_ENOMEM;
    if (siphon_odbc__key_decode(kd, t->nkey, key, klen) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not decode a stored key of table %s (did key_columns change? "
                          "remove the state folder %s to read every table again)",
                          t->full, "of this connector");
    for (int i = 0; i < t->ncols; i++)
        v[i].type = SIPHON_V_UNCHANGED;
    for (int k = 0; k < t->nkey; k++)
        if (siphon_odbc__decode(&v[t->key[k]], t->cols[t->key[k]].kind, &kd[k], &src->arena) < 0)
            return SIPHON_ENOMEM;
    r->ncols = t->ncols;
    r->vals = v;
    *out = r;
    return 0;
}

/* Compare a fetched row with the key set: emit c/u, update the key set and the delta. */
static int take_row(emit_t *e, siphon_buf_t *delta, const odbc_datum_t *row, int *skipped_null,
                    char *errbuf, size_t errsize)
{
    siphon_source_t *src = e->src;
    odbc_table_t *t = e->t;
    siphon_buf_t kb = {0};
    int rc = 0;
    for (int k = 0; k < t->nkey; k++)
        if (row[t->key[k]].null) {
            (*skipped_null)++;
            return 0;
        }
    if (siphon_odbc__key_encode(&kb, row, t->key, t->nkey) < 0)
        return SIPHON_ENOMEM;
    uint64_t khash = siphon_odbc__hash(0, kb.data, kb.len);
    uint64_t chash = siphon_odbc__row_hash(row, t->ncols);
    long ei = siphon_odbc__keys_find(&t->keys, kb.data, kb.len, khash);
    uint32_t state = ei < 0 ? ODBC_KEY_DEAD : t->keys.ents[ei].live;
    /* a MAYBE key may not have been delivered before a crash: send it again, as it was sent */
    char op = state == ODBC_KEY_DEAD || state == ODBC_KEY_MAYBE_NEW ? 'c'
              : state == ODBC_KEY_MAYBE_CHANGED || t->keys.ents[ei].chash != chash ? 'u'
                                                                                  : 0;
    if (op) {
        siphon_row_t *after = NULL;
        if ((rc = row_after(src, t, row, &after)) < 0 ||
            (rc = emit_change(e, op, NULL, after, khash, chash)) < 0)
            goto out;
        if ((ei = siphon_odbc__keys_put(&t->keys, kb.data, kb.len, khash, chash)) < 0) {
            rc = siphon_err(errbuf, errsize, (int)ei,
                            "could not remember a key of table %s (out of memory, or more than 4 "
                            "GiB of keys)", t->full);
            goto out;
        }
        if ((rc = siphon_odbc__rec_put(delta, kb.data, kb.len, chash)) < 0)
            goto out;
    }
    t->keys.ents[ei].mark = t->epoch;
out:
    siphon_buf_free(&kb);
    return rc;
}

/* Write a poll's key changes ahead of its records (nothing when it has none beyond the table
 * record it starts with): they must be on disk before any of its events can be delivered. */
static int write_intent(siphon_source_t *src, uint64_t seq, siphon_buf_t *delta, size_t len0,
                        char *errbuf, size_t errsize)
{
    if (delta->len == len0)
        return 0;
    int rc = siphon_odbc__store_intent(&src->store, seq, delta, errbuf, errsize);
    if (rc < 0) {
        /* its records are dropped with the batch; stop before anything else is read */
        src->failed = 1;
        snprintf(src->failed_msg, sizeof(src->failed_msg), "%s", errbuf);
    }
    return rc;
}

/* Deletes of the keys not marked by the pass that just completed. */
static int emit_unmarked(emit_t *e, siphon_buf_t *delta, char *errbuf, size_t errsize)
{
    odbc_table_t *t = e->t;
    int rc;
    for (size_t i = 0; i < t->keys.nents; i++) {
        odbc_kent_t *ent = &t->keys.ents[i];
        if (!ent->live || ent->mark == t->epoch)
            continue;
        const uint8_t *kb = siphon_odbc__keys_bytes(&t->keys, ent);
        siphon_row_t *before = NULL;
        if ((rc = row_key_only(e->src, t, kb, ent->klen, &before, errbuf, errsize)) < 0 ||
            (rc = emit_change(e, 'd', before, NULL, ent->khash, 0)) < 0 ||
            (rc = siphon_odbc__rec_del(delta, kb, ent->klen)) < 0)
            return rc;
        ent->live = 0;
        t->keys.live--;
    }
    return 0;
}

/* ---- a poll ---- */

static int poll_step(siphon_source_t *src, odbc_table_t *t, char *errbuf, size_t errsize)
{
    odbc_wm_t next = {0};
    odbc_stmt_t *st;
    odbc_datum_t *params, *cells;
    long nrows = 0;
    int rc, tsmode = t->mode == ODBC_M_TS || t->mode == ODBC_M_TSINC;
    char hi[40];
    odbc_qkind_t qk;
    int64_t t0 = siphon_clock_now_ms();

    if ((rc = siphon_odbc__wm_copy(&next, &t->wm)) < 0)
        return rc;
    if (tsmode && !next.hi) {
        /* a new sweep: up to the database clock minus the lag */
        if (siphon_clock_now_ms() - src->clock_mono_ms >= CLOCK_REFRESH_MS &&
            (rc = clock_read(src, errbuf, errsize)) < 0)
            goto out;
        int64_t hi_us = db_now_us(src) - (int64_t)src->lag_ms * 1000, base_us;
        int tz;
        if (next.base &&
            siphon_odbc__parse_ts(next.base, strlen(next.base), &base_us, &tz) == 0 &&
            hi_us <= base_us) {
            t->poll_due = t0 + src->poll_ms;
            goto out;
        }
        siphon_odbc__format_ts(hi_us, hi, sizeof(hi));
        if ((rc = set_str(&next.hi, hi)) < 0)
            goto out;
    }
    qk = next.ncur ? ODBC_Q_NEXT : tsmode && next.base ? ODBC_Q_FIRST_BASE : ODBC_Q_FIRST;
    if ((rc = stmt_get(src, t, qk, &st, errbuf, errsize)) < 0 ||
        (rc = stmt_params(src, st, &next, next.cur, next.ncur, &params, errbuf, errsize)) < 0)
        goto out;
    if (!(cells = siphon_arena_alloc(&src->arena,
                                     sizeof(odbc_datum_t) * (size_t)src->max_rows * (size_t)t->ncols))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    if ((rc = siphon_odbc__stmt_run(&src->conn, st, params, src->max_rows, cells, &nrows,
                                    &src->arena, errbuf, errsize)) < 0)
        goto out;

    /* Everything is read: from here on state changes and records. */
    int full = nrows == src->max_rows, sweep_end = 0;
    const odbc_datum_t *last = nrows ? cells + (size_t)(nrows - 1) * (size_t)t->ncols : NULL;
    if (t->mode == ODBC_M_INC) {
        if (last && (rc = wm_set_cursor(src, &next, t, last, t->order, t->norder)) < 0)
            goto out;
    } else if (full) {
        if ((rc = wm_set_cursor(src, &next, t, last, t->order, t->norder)) < 0)
            goto out;
    } else {
        sweep_end = 1;
        wm_clear_cursor(&next);
        if (tsmode) {
            /* the next sweep re-reads the last lag's worth of rows: late commits */
            int64_t hi_us, base_us, old_us;
            int tz;
            if (siphon_odbc__parse_ts(next.hi, strlen(next.hi), &hi_us, &tz) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not parse the sweep bound \"%s\" of table %s", next.hi,
                                t->full);
                goto out;
            }
            base_us = hi_us - (int64_t)src->lag_ms * 1000;
            if (next.base && siphon_odbc__parse_ts(next.base, strlen(next.base), &old_us, &tz) == 0 &&
                old_us > base_us)
                base_us = old_us;
            siphon_odbc__format_ts(base_us, hi, sizeof(hi));
            if ((rc = set_str(&next.base, hi)) < 0 || (rc = set_str(&next.hi, NULL)) < 0)
                goto out;
        }
    }

    uint64_t seq = src->seq + 1;
    emit_t e;
    emit_start(&e, src, t, "poll", errbuf, errsize);
    siphon_buf_t *delta = &src->delta;
    int nulls = 0;
    siphon_buf_reset(delta);
    if ((rc = siphon_odbc__rec_table(delta, t->full)) < 0)
        goto out;
    size_t delta0 = delta->len; /* the table record alone */
    for (long r = 0; r < nrows; r++)
        if ((rc = take_row(&e, delta, cells + (size_t)r * (size_t)t->ncols, &nulls, errbuf,
                           errsize)) < 0)
            goto out;
    if (nulls)
        siphon_log(SIPHON_LOG_WARNING, "odbc",
                   "%d row(s) of table %s skipped: a key column is NULL (key columns must be "
                   "NOT NULL)", nulls, t->full);
    if (t->mode == ODBC_M_SNAPSHOT && sweep_end) {
        if (!t->sweep_partial && (rc = emit_unmarked(&e, delta, errbuf, errsize)) < 0)
            goto out;
        t->sweep_partial = 0;
        t->epoch++;
    }
    int moved = !siphon_odbc__wm_equal(&next, &t->wm);
    odbc_wm_t tmp = t->wm;
    t->wm = next;
    next = tmp; /* freed below */
    if ((rc = emit_end(&e, seq, moved)) < 0 ||
        (rc = write_intent(src, seq, delta, delta0, errbuf, errsize)) < 0)
        goto out;
    src->seq = seq;
    src->polls++;
    t->caught_up = !full;
    t->poll_due = full ? siphon_clock_now_ms() : t0 + src->poll_ms;
    if (e.n || siphon_log_enabled(SIPHON_LOG_DEBUG))
        siphon_log(SIPHON_LOG_DEBUG, "odbc", "%s of %s: %ld row(s) read, %d change(s), %s%s",
                   qkind_name(qk), t->full, nrows, e.n, full ? "more to read" : "caught up",
                   sweep_end && tsmode ? " (sweep done)" : "");
out:
    siphon_odbc__wm_clear(&next);
    return rc;
}

/* ---- a reconciliation chunk ---- */

/* A row reconciliation found in the table but not in the key set: is it one polling missed
 * (a NULL or late timestamp, a late identity), or one polling has simply not reached yet
 * (inside the safety lag, past the cursor)? Only the first kind is emitted by reconciliation;
 * the second is left to the polls, in order. */
static int polling_missed(const siphon_source_t *src, const odbc_table_t *t,
                          const odbc_datum_t *row)
{
    int tz;
    if (t->mode == ODBC_M_TS || t->mode == ODBC_M_TSINC) {
        const odbc_datum_t *d = &row[t->ts_col];
        int64_t us, base;
        if (d->null)
            return 1;
        if (!t->wm.base || siphon_odbc__parse_ts(t->wm.base, strlen(t->wm.base), &base, &tz) < 0)
            return 0;
        if (siphon_odbc__parse_ts((const char *)d->p, d->len, &us, &tz) < 0)
            return 1;
        /* the last completed sweep read everything up to base + lag */
        return us <= base + (int64_t)src->lag_ms * 1000;
    }
    if (t->mode == ODBC_M_INC) {
        const odbc_datum_t *d = &row[t->inc_col];
        if (d->null)
            return 1;
        if (!t->wm.ncur || !t->wm.cur[0])
            return 0;
        if (t->cols[t->inc_col].kind != ODBC_K_INT || d->len != 8)
            return 1;
        int64_t v = 0;
        memcpy(&v, d->p, 8); /* little-endian host, as the datum */
        return v <= strtoll(t->wm.cur[0], NULL, 10);
    }
    return 1;
}

static int recon_step(siphon_source_t *src, odbc_table_t *t, char *errbuf, size_t errsize)
{
    odbc_stmt_t *st;
    odbc_datum_t *params, *cells;
    long nrows = 0;
    int rc;
    siphon_buf_t kb = {0};

    if (!t->recon_active) {
        t->recon_active = 1;
        t->epoch++;
        siphon_odbc__wm_clear(&t->recon_wm);
        siphon_buf_reset(&t->missing);
        t->nmissing = 0;
        siphon_log(SIPHON_LOG_INFO, "odbc",
                   "reconciling table %s: reading its %zu known key(s) against the table in "
                   "chunks of %d", t->full, t->keys.live, src->recon_chunk);
    }
    odbc_qkind_t qk = t->recon_wm.ncur ? ODBC_Q_KEYS_NEXT : ODBC_Q_KEYS_FIRST;
    if ((rc = stmt_get(src, t, qk, &st, errbuf, errsize)) < 0 ||
        (rc = stmt_params(src, st, &t->recon_wm, t->recon_wm.cur, t->recon_wm.ncur, &params,
                          errbuf, errsize)) < 0)
        return rc;
    if (!(cells = siphon_arena_alloc(&src->arena, sizeof(odbc_datum_t) *
                                                      (size_t)src->recon_chunk * (size_t)t->nkey)))
        return SIPHON_ENOMEM;
    if ((rc = siphon_odbc__stmt_run(&src->conn, st, params, src->recon_chunk, cells, &nrows,
                                    &src->arena, errbuf, errsize)) < 0)
        return rc;
    int *ident = siphon_arena_alloc(&src->arena, sizeof(int) * (size_t)t->nkey);
    if (!ident)
        return SIPHON_ENOMEM;
    for (int k = 0; k < t->nkey; k++)
        ident[k] = k;

    /* Classify the chunk's keys without changing anything yet: known ones get marked below,
     * unknown ones join the rows to fetch. */
    long *known = siphon_arena_alloc(&src->arena, sizeof(long) * (size_t)(nrows ? nrows : 1));
    siphon_buf_t fresh = {0}; /* this chunk's unknown keys: u32 length + bytes each */
    int nknown = 0, nfresh = 0;
    if (!known)
        return SIPHON_ENOMEM;
    for (long r = 0; r < nrows; r++) {
        const odbc_datum_t *row = cells + (size_t)r * (size_t)t->nkey;
        int null = 0;
        for (int k = 0; k < t->nkey; k++)
            null |= row[k].null;
        if (null)
            continue;
        siphon_buf_reset(&kb);
        if (siphon_odbc__key_encode(&kb, row, ident, t->nkey) < 0) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        uint64_t khash = siphon_odbc__hash(0, kb.data, kb.len);
        long ei = siphon_odbc__keys_find(&t->keys, kb.data, kb.len, khash);
        if (ei >= 0) {
            known[nknown++] = ei;
        } else if (t->nmissing + nfresh < src->recon_chunk) {
            uint32_t klen = (uint32_t)kb.len;
            if (siphon_buf_append(&fresh, &klen, 4) < 0 ||
                siphon_buf_append(&fresh, kb.data, kb.len) < 0) {
                rc = SIPHON_ENOMEM;
                goto out;
            }
            nfresh++;
        }
    }

    /* Pass end: fetch the rows never seen (earlier chunks' and this one's), by key, before
     * anything changes. */
    int end = nrows < src->recon_chunk;
    odbc_datum_t **found = NULL;
    long nfound = 0;
    if (end && t->nmissing + nfresh > 0) {
        odbc_stmt_t *bk;
        if ((rc = stmt_get(src, t, ODBC_Q_BY_KEY, &bk, errbuf, errsize)) < 0)
            goto out;
        found = siphon_arena_alloc(&src->arena, sizeof(*found) * (size_t)(t->nmissing + nfresh));
        if (!found) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        const siphon_buf_t *lists[2] = {&t->missing, &fresh};
        for (int li = 0; li < 2; li++) {
            for (size_t off = 0; off < lists[li]->len;) {
                uint32_t klen;
                memcpy(&klen, lists[li]->data + off, 4);
                odbc_datum_t *kd = siphon_arena_alloc(&src->arena, sizeof(*kd) * (size_t)t->nkey);
                odbc_datum_t *row =
                    siphon_arena_alloc(&src->arena, sizeof(*row) * (size_t)t->ncols);
                if (!kd || !row) {
                    rc = SIPHON_ENOMEM;
                    goto out;
                }
                if (siphon_odbc__key_decode(kd, t->nkey, lists[li]->data + off + 4, klen) < 0) {
                    rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                    "internal error: a remembered key of %s does not decode",
                                    t->full);
                    goto out;
                }
                off += 4 + klen;
                long got = 0;
                if ((rc = siphon_odbc__stmt_run(&src->conn, bk, kd, 1, row, &got, &src->arena,
                                                errbuf, errsize)) < 0)
                    goto out;
                if (got == 1 && polling_missed(src, t, row))
                    found[nfound++] = row;
            }
        }
    }

    /* Everything is read: mark what this chunk saw, remember the keys never seen. */
    for (int i = 0; i < nknown; i++)
        t->keys.ents[known[i]].mark = t->epoch;
    if (!end) {
        if (fresh.len && siphon_buf_append(&t->missing, fresh.data, fresh.len) < 0) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        t->nmissing += nfresh;
        rc = wm_set_cursor(src, &t->recon_wm, t, cells + (size_t)(nrows - 1) * (size_t)t->nkey,
                           ident, t->nkey);
        t->recon_due = siphon_clock_now_ms();
        goto out;
    }

    /* The pass is complete: unmarked keys are gone; unseen rows are new. */
    uint64_t seq = src->seq + 1;
    emit_t e;
    emit_start(&e, src, t, "reconcile", errbuf, errsize);
    siphon_buf_t *delta = &src->delta;
    siphon_buf_reset(delta);
    if ((rc = siphon_odbc__rec_table(delta, t->full)) < 0)
        goto out;
    if ((rc = emit_unmarked(&e, delta, errbuf, errsize)) < 0)
        goto out;
    int nd = e.n, nulls = 0;
    for (long f = 0; f < nfound; f++)
        if ((rc = take_row(&e, delta, found[f], &nulls, errbuf, errsize)) < 0)
            goto out;
    t->last_recon_unix = (uint64_t)time(NULL);
    if ((rc = siphon_odbc__rec_recon(delta, t->last_recon_unix)) < 0)
        goto out;
    /* a POSITION at least: the pass counts as done once it is acknowledged */
    if ((rc = emit_end(&e, seq, 1)) < 0 || (rc = write_intent(src, seq, delta, 0, errbuf, errsize)) < 0)
        goto out;
    src->seq = seq;
    src->recon_passes++;
    siphon_log(e.n ? SIPHON_LOG_NOTICE : SIPHON_LOG_INFO, "odbc",
               "reconciled table %s: %d deleted row(s), %d row(s) found that polling had not "
               "seen, %zu key(s) known", t->full, nd, e.n - nd, t->keys.live);
    t->recon_active = 0;
    siphon_odbc__wm_clear(&t->recon_wm);
    siphon_buf_reset(&t->missing);
    t->nmissing = 0;
    t->recon_due = siphon_clock_now_ms() + (int64_t)src->recon_s * 1000;
out:
    siphon_buf_free(&kb);
    siphon_buf_free(&fresh);
    return rc;
}

/* ---- connection ---- */

static void conn_drop(siphon_source_t *src, const char *why)
{
    for (int i = 0; i < src->ntables; i++)
        stmts_free(&src->tables[i]);
    siphon_odbc__disconnect(&src->conn);
    src->up = 0;
    src->backoff_ms = src->backoff_ms ? src->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (src->backoff_ms > BACKOFF_MAX_MS)
        src->backoff_ms = BACKOFF_MAX_MS;
    src->retry_at = siphon_clock_now_ms() + src->backoff_ms;
    src->reconnects++;
    siphon_log(SIPHON_LOG_WARNING, "odbc",
               "lost the connection to %s: %s; reconnecting in %d ms (the interrupted poll is "
               "run again: nothing is lost)", src->redacted, why, src->backoff_ms);
}

static int conn_up(siphon_source_t *src, char *errbuf, size_t errsize)
{
    int rc = siphon_odbc__connect(&src->conn, src->dsn, src->redacted, errbuf, errsize);
    if (rc < 0)
        return rc;
    src->up = 1;
    for (int i = 0; i < src->ntables; i++)
        if ((rc = table_describe(src, &src->tables[i], errbuf, errsize)) < 0)
            goto fail;
    if ((rc = clock_read(src, errbuf, errsize)) < 0)
        goto fail;
    return 0;
fail:
    if (rc == SIPHON_ECONN) {
        for (int i = 0; i < src->ntables; i++)
            stmts_free(&src->tables[i]);
        siphon_odbc__disconnect(&src->conn);
        src->up = 0;
    }
    return rc;
}

/* ---- the key sets on disk ---- */

static int load_cb(void *opaque, const char *table, size_t tlen, int op, int maybe,
                   const uint8_t *key, size_t klen, uint64_t val)
{
    siphon_source_t *src = opaque;
    for (int i = 0; i < src->ntables; i++) {
        odbc_table_t *t = &src->tables[i];
        if (strlen(t->full) != tlen || memcmp(t->full, table, tlen) != 0)
            continue;
        uint64_t kh = key ? siphon_odbc__hash(0, key, klen) : 0;
        long e;
        switch (op) {
        case ODBC_REC_PUT:
            if (!maybe)
                return siphon_odbc__keys_put(&t->keys, key, klen, kh, val) < 0 ? SIPHON_ENOMEM : 0;
            /* sent ahead of an acknowledgement that never came: maybe delivered */
            if ((e = siphon_odbc__keys_find(&t->keys, key, klen, kh)) >= 0) {
                if (t->keys.ents[e].live == ODBC_KEY_SENT)
                    t->keys.ents[e].live = ODBC_KEY_MAYBE_CHANGED;
                return 0;
            }
            op = ODBC_REC_MAYBE_NEW;
            /* fall through */
        case ODBC_REC_MAYBE_NEW:
        case ODBC_REC_MAYBE_CHANGED:
            if ((e = siphon_odbc__keys_put(&t->keys, key, klen, kh, 0)) < 0)
                return SIPHON_ENOMEM;
            t->keys.ents[e].live =
                op == ODBC_REC_MAYBE_NEW ? ODBC_KEY_MAYBE_NEW : ODBC_KEY_MAYBE_CHANGED;
            return 0;
        case ODBC_REC_DEL:
            /* an unacknowledged delete may not have been delivered: keep the key, the next
             * reconciliation deletes it again */
            if (!maybe)
                siphon_odbc__keys_del(&t->keys, key, klen, kh);
            return 0;
        case ODBC_REC_RECON:
            if (!maybe)
                t->last_recon_unix = val;
            return 0;
        default:
            return 0;
        }
    }
    return 0; /* a table no longer configured: dropped at the next compaction */
}

static int compact(siphon_source_t *src, char *errbuf, size_t errsize)
{
    int fd, rc;
    siphon_buf_t b = {0};
    if ((rc = siphon_odbc__store_compact_begin(&src->store, &fd, errbuf, errsize)) < 0)
        return rc;
    int ok = 1;
    for (int i = 0; i < src->ntables && ok; i++) {
        odbc_table_t *t = &src->tables[i];
        siphon_buf_reset(&b);
        ok = siphon_odbc__rec_table(&b, t->full) == 0 &&
             (!t->last_recon_unix || siphon_odbc__rec_recon(&b, t->last_recon_unix) == 0);
        for (size_t e = 0; e < t->keys.nents && ok; e++) {
            const odbc_kent_t *ent = &t->keys.ents[e];
            if (!ent->live)
                continue;
            const uint8_t *kb = siphon_odbc__keys_bytes(&t->keys, ent);
            ok = (ent->live == ODBC_KEY_SENT
                      ? siphon_odbc__rec_put(&b, kb, ent->klen, ent->chash)
                      : siphon_odbc__rec_maybe(&b,
                                               ent->live == ODBC_KEY_MAYBE_NEW
                                                   ? ODBC_REC_MAYBE_NEW
                                                   : ODBC_REC_MAYBE_CHANGED,
                                               kb, ent->klen)) == 0;
            if (ok && b.len >= ((size_t)1 << 20)) {
                ok = siphon_odbc__store_compact_frame(fd, &b) == 0;
                siphon_buf_reset(&b);
                ok = ok && siphon_odbc__rec_table(&b, t->full) == 0;
            }
        }
        if (ok)
            ok = siphon_odbc__store_compact_frame(fd, &b) == 0;
        if (ok && t->keys.live * 2 < t->keys.nents)
            ok = siphon_odbc__keys_rebuild(&t->keys) == 0;
    }
    siphon_buf_free(&b);
    rc = siphon_odbc__store_compact_end(&src->store, fd, ok, errbuf, errsize);
    if (rc == 0)
        siphon_log(SIPHON_LOG_INFO, "odbc", "key sets compacted into %s (%" PRIu64 " bytes)",
                   src->store.base_path, src->store.base_bytes);
    return rc;
}

/* ---- the callbacks ---- */

static void odbc_close(siphon_source_t *src);

static int parse_mode(const char *s, odbc_mode_t *m)
{
    if (!s)
        return -1;
    if (strcmp(s, "incrementing") == 0)
        *m = ODBC_M_INC;
    else if (strcmp(s, "timestamp") == 0)
        *m = ODBC_M_TS;
    else if (strcmp(s, "timestamp+incrementing") == 0)
        *m = ODBC_M_TSINC;
    else if (strcmp(s, "snapshot") == 0)
        *m = ODBC_M_SNAPSHOT;
    else
        return -1;
    return 0;
}

/* Quote each dotted part that is not a plain identifier (plain ones are left to the database's
 * own case folding, as an unquoted name in the ERP's own SQL would be). */
static char *sql_table_name(const char *name, const char *quote)
{
    siphon_buf_t b = {0};
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        int plain = n > 0;
        for (size_t i = 0; i < n; i++) {
            char c = p[i];
            plain &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
                     c == '#' || (i > 0 && c >= '0' && c <= '9');
        }
        int rc;
        if (plain) {
            rc = siphon_buf_append(&b, p, n);
        } else {
            char *part = strndup(p, n);
            rc = part ? siphon_odbc__quote(&b, part, quote) : SIPHON_ENOMEM;
            free(part);
        }
        if (rc < 0 || (dot && siphon_buf_appendc(&b, '.') < 0)) {
            siphon_buf_free(&b);
            return NULL;
        }
        if (!dot)
            break;
        p = dot + 1;
    }
    if (siphon_buf_appendc(&b, 0) < 0) {
        siphon_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

static void redact_dsn(const char *dsn, char *buf, size_t size)
{
    /* keep keys, hide the values of PWD/PASSWORD */
    size_t o = 0;
    const char *p = dsn;
    if (!strchr(dsn, '=')) {
        snprintf(buf, size, "DSN=%s", dsn);
        return;
    }
    while (*p && o + 1 < size) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        int secret = eq && ((eq - p == 3 && strncasecmp(p, "PWD", 3) == 0) ||
                            (eq - p == 8 && strncasecmp(p, "PASSWORD", 8) == 0));
        int w = secret ? snprintf(buf + o, size - o, "%.*s=********%s", (int)(eq - p), p,
                                  semi ? ";" : "")
                       : snprintf(buf + o, size - o, "%.*s%s", (int)n, p, semi ? ";" : "");
        if (w < 0)
            break;
        o += (size_t)w < size - o ? (size_t)w : size - o - 1;
        if (!semi)
            break;
        p = semi + 1;
    }
    buf[o < size ? o : size - 1] = 0;
}

/* Free what a table holds (not the table itself). */
static void table_free(odbc_table_t *t)
{
    stmts_free(t);
    siphon_odbc__cols_free(t->cols, t->ncols);
    relv_free(t->relv);
    free(t->key);
    free(t->order);
    free(t->full);
    free(t->sql_schema);
    free(t->sql_name);
    free(t->map_schema);
    free(t->map_name);
    free(t->qtable);
    siphon_odbc__wm_clear(&t->wm);
    siphon_odbc__wm_clear(&t->recon_wm);
    siphon_odbc__keys_free(&t->keys);
    siphon_buf_free(&t->missing);
    memset(t, 0, sizeof(*t));
}

/* Set up the table a mapping calls schema.table from its entry in source.tables: names, mode
 * and the checks that need no database. 0 or SIPHON_EINVAL / SIPHON_ENOMEM; on failure the
 * table may hold some names (table_free() frees them). */
static int table_init(siphon_source_t *src, odbc_table_t *t, int idx, const char *schema,
                      const char *table, char *errbuf, size_t errsize)
{
    const struct siphon_config_odbc *oc = src->oc;
    const struct siphon_config_odbc_table *tc = NULL;
    char full[512];
    snprintf(full, sizeof(full), "%s%s%s", schema ? schema : "", schema && schema[0] ? "." : "",
             table);
    for (int k = 0; k < oc->ntables && !tc; k++)
        if (oc->tables[k].table &&
            (strcmp(oc->tables[k].table, full) == 0 || strcmp(oc->tables[k].table, table) == 0))
            tc = &oc->tables[k];
    if (!tc)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s is read by a mapping but has no entry in source.tables "
                          "(add \"- table: %s\" with its mode: incrementing, timestamp, "
                          "timestamp+incrementing or snapshot; see docs/odbc.md)", full, full);
    t->idx = idx;
    t->cfg = tc;
    t->ts_col = t->inc_col = -1;
    t->epoch = 1;
    if (parse_mode(tc->mode, &t->mode) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s: unknown mode \"%s\" (expected incrementing, timestamp, "
                          "timestamp+incrementing or snapshot)", full,
                          tc->mode ? tc->mode : "(none)");
    if ((t->mode == ODBC_M_INC || t->mode == ODBC_M_TSINC) && !tc->incrementing_column)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s: mode %s needs incrementing_column (a column whose value "
                          "only grows, such as an identity)", full, mode_name(t->mode));
    if ((t->mode == ODBC_M_TS || t->mode == ODBC_M_TSINC) && !tc->timestamp_column)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "table %s: mode %s needs timestamp_column (the row's last-modified "
                          "time, set by the application or a trigger on every change)", full,
                          mode_name(t->mode));
    const char *dot = strrchr(tc->table, '.');
    t->full = strdup(full);
    t->map_schema = strdup(schema ? schema : "");
    t->map_name = strdup(table);
    t->sql_schema = dot ? strndup(tc->table, (size_t)(dot - tc->table)) : NULL;
    t->sql_name = strdup(dot ? dot + 1 : tc->table);
    if (!t->full || !t->map_schema || !t->map_name || !t->sql_name || (dot && !t->sql_schema))
        return SIPHON_ENOMEM;
    t->recon_on = src->recon_s > 0 && t->mode != ODBC_M_SNAPSHOT;
    return 0;
}

/* A source with the settings of the config and room for ntables tables, not connected. 0 or a
 * negative code with errbuf; *out then NULL. Caller frees with odbc_close(). */
static int src_new(siphon_source_t **out, const siphon_config_t *cfg, int ntables, char *errbuf,
                   size_t errsize)
{
    const struct siphon_config_odbc *oc = &cfg->odbc;
    siphon_source_t *src;
    *out = NULL;
    if (!oc->dsn || !oc->dsn[0])
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "source.dsn is required for an ODBC source (a DSN name from odbc.ini, "
                          "or a connection string such as \"Driver=...;Server=...;\")");
    if (!(src = calloc(1, sizeof(*src))))
        return SIPHON_ENOMEM;
    siphon_arena_init(&src->arena, 1 << 20);
    src->store.jfd = -1;
    src->oc = oc;
    src->name = strdup(cfg->name ? cfg->name : "siphon");
    src->dsn = strdup(oc->dsn);
    src->captables = ntables > 0 ? ntables : 1;
    src->tables = calloc((size_t)src->captables, sizeof(odbc_table_t));
    if (!src->name || !src->dsn || !src->tables)
        goto nomem;
    redact_dsn(oc->dsn, src->redacted, sizeof(src->redacted));
    src->poll_ms = oc->poll_interval_ms > 0 ? oc->poll_interval_ms : 1000;
    src->max_rows = oc->max_rows_per_poll > 0 ? oc->max_rows_per_poll : 10000;
    src->lag_ms = oc->safety_lag_ms >= 0 ? oc->safety_lag_ms : 5000;
    src->recon_s = oc->reconcile_interval_s >= 0 ? oc->reconcile_interval_s : 3600;
    src->recon_chunk = oc->reconcile_chunk > 0 ? oc->reconcile_chunk : 10000;
    if (oc->state_dir && oc->state_dir[0]) {
        src->state_dir = strdup(oc->state_dir);
    } else {
        const char *op = cfg->offsets.path ? cfg->offsets.path : "./offsets.json";
        const char *slash = strrchr(op, '/');
        siphon_buf_t b = {0};
        if (siphon_buf_printf(&b, "%.*s%s.odbc", slash ? (int)(slash - op + 1) : 0, op,
                              src->name) == 0 &&
            siphon_buf_appendc(&b, 0) == 0)
            src->state_dir = (char *)b.data;
        else
            siphon_buf_free(&b);
    }
    if (!src->state_dir)
        goto nomem;
    *out = src;
    return 0;
nomem:
    odbc_close(src);
    return SIPHON_ENOMEM;
}

/* The table's name as the database is asked, then its shape: the first describe() after
 * connecting. 0 or a negative code (SIPHON_EINVAL names the table). */
static int table_first_describe(siphon_source_t *src, odbc_table_t *t, char *errbuf,
                                size_t errsize)
{
    free(t->qtable);
    if (!(t->qtable = sql_table_name(t->cfg->table, src->conn.dia.quote)))
        return SIPHON_ENOMEM;
    return table_describe(src, t, errbuf, errsize);
}

static int odbc_open(siphon_source_t **out, const siphon_config_t *cfg,
                     const siphon_table_ref_t *tables, int ntables, const char *resume_pos,
                     char *errbuf, size_t errsize)
{
    siphon_source_t *src = NULL;
    int rc;
    if (!out || !cfg || (ntables > 0 && !tables))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not open the ODBC source: bad "
                                                         "arguments");
    *out = NULL;
    if (resume_pos && siphon_odbc__pos_check(resume_pos, errbuf, errsize) < 0)
        return SIPHON_EINVAL;
    if ((rc = src_new(&src, cfg, ntables, errbuf, errsize)) < 0)
        return rc;

    /* The tables to poll: every mapped table, each with its entry in source.tables. */
    for (int i = 0; i < ntables; i++)
        if ((rc = table_init(src, &src->tables[src->ntables++], i, tables[i].schema,
                             tables[i].table, errbuf, errsize)) < 0)
            goto fail;

    /* Key sets before the connection: a damaged state folder is a config problem. */
    if ((rc = siphon_odbc__store_open(&src->store, src->state_dir, load_cb, src, errbuf,
                                      errsize)) < 0)
        goto fail;
    src->seq = src->acked_seq = src->store.last_seq;
    if (src->store.last_seq > src->store.acked_seq) {
        /* A crash left polls written ahead and never acknowledged: their keys are MAYBE now.
         * Fold that into a new base at once, so that no later acknowledgement (of a higher
         * poll number) can make them look acknowledged. */
        siphon_log(SIPHON_LOG_NOTICE, "odbc",
                   "polls %" PRIu64 " to %" PRIu64 " were read but not acknowledged before the "
                   "last stop: their rows are read again and sent again",
                   src->store.acked_seq + 1, src->store.last_seq);
        if ((rc = compact(src, errbuf, errsize)) < 0)
            goto fail;
    }

    if ((rc = siphon_odbc__connect(&src->conn, src->dsn, src->redacted, errbuf, errsize)) < 0)
        goto fail;
    src->up = 1;
    for (int i = 0; i < src->ntables; i++)
        if ((rc = table_first_describe(src, &src->tables[i], errbuf, errsize)) < 0)
            goto fail;
    if ((rc = clock_read(src, errbuf, errsize)) < 0)
        goto fail;

    /* Watermarks: resume each table where the stored position says. */
    int64_t now = siphon_clock_now_ms();
    uint64_t unix_now = (uint64_t)time(NULL);
    for (int i = 0; i < src->ntables; i++) {
        odbc_table_t *t = &src->tables[i];
        int found = 0;
        if (resume_pos &&
            (rc = siphon_odbc__pos_lookup(resume_pos, t->full, &t->wm, &found, errbuf, errsize)) < 0)
            goto fail;
        int tsmode = t->mode == ODBC_M_TS || t->mode == ODBC_M_TSINC;
        if (found && ((t->wm.ncur && t->wm.ncur != t->norder) || (!tsmode && (t->wm.base || t->wm.hi)) ||
                      (t->wm.hi && !t->wm.ncur))) {
            siphon_log(SIPHON_LOG_WARNING, "odbc",
                       "the stored watermark of table %s does not fit its mode %s and ordering "
                       "columns (was the mode or the key changed?): reading the table from the "
                       "start; rows already delivered are recognized by their content hash and "
                       "not sent again", t->full, mode_name(t->mode));
            siphon_odbc__wm_clear(&t->wm);
            found = 0;
        }
        t->sweep_partial = t->mode == ODBC_M_SNAPSHOT && t->wm.ncur > 0;
        t->poll_due = now;
        if (t->recon_on) {
            uint64_t next = t->last_recon_unix + (uint64_t)src->recon_s;
            t->recon_due = t->last_recon_unix && next > unix_now
                               ? now + (int64_t)(next - unix_now) * 1000
                           : t->last_recon_unix ? now
                                                : now + (int64_t)src->recon_s * 1000;
        }
        siphon_log(SIPHON_LOG_INFO, "odbc",
                   "table %s: mode %s, %d column(s), key (%d column(s)), %zu known key(s), %s",
                   t->full, mode_name(t->mode), t->ncols, t->nkey, t->keys.live,
                   found ? "resuming from its stored watermark" : "reading from the start");
    }
    siphon_log(SIPHON_LOG_INFO, "odbc",
               "polling %d table(s) of %s (%s) every %d ms, up to %d rows per poll, safety lag "
               "%d ms, reconciliation %s; key sets in %s",
               src->ntables, src->conn.dbms, src->redacted, src->poll_ms, src->max_rows,
               src->lag_ms, src->recon_s > 0 ? "on" : "off", src->state_dir);
    *out = src;
    return 0;
fail:
    odbc_close(src);
    return rc;
}

/* Catalog work (siphon validate, siphon preview): a connection and nothing else. No key set is
 * read and no state folder created; tables are set up when describe() or sample() first names
 * them, with the same checks as open() (an entry in source.tables, the configured columns, a
 * key). */
static int odbc_open_catalog(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                             size_t errsize)
{
    siphon_source_t *src = NULL;
    int rc;
    if (!out || !cfg)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not open the ODBC source: bad "
                                                         "arguments");
    *out = NULL;
    if ((rc = src_new(&src, cfg, cfg->odbc.ntables, errbuf, errsize)) < 0)
        return rc;
    src->catalog = 1;
    if ((rc = siphon_odbc__connect(&src->conn, src->dsn, src->redacted, errbuf, errsize)) < 0) {
        odbc_close(src);
        return rc;
    }
    src->up = 1;
    *out = src;
    return 0;
}

/* The table a mapping calls schema.table: one of the polled tables, or in catalog mode one set
 * up and described now (a failure leaves no table behind, so a later call tries again). */
static int find_table(siphon_source_t *src, const char *schema, const char *table,
                      odbc_table_t **out, char *errbuf, size_t errsize)
{
    for (int i = 0; i < src->ntables; i++) {
        odbc_table_t *t = &src->tables[i];
        if (strcmp(t->map_name, table) == 0 &&
            strcmp(t->map_schema, schema ? schema : "") == 0 && t->relv) {
            *out = t;
            return 0;
        }
    }
    if (!src->catalog)
        return siphon_err(errbuf, errsize, SIPHON_ENOTFOUND,
                          "table %s%s%s is not polled by this ODBC source (only mapped tables "
                          "with an entry in source.tables are)", schema ? schema : "",
                          schema ? "." : "", table);
    if (src->ntables == src->captables) {
        odbc_table_t *n = realloc(src->tables, sizeof(*n) * (size_t)src->captables * 2);
        if (!n)
            return SIPHON_ENOMEM;
        src->tables = n;
        src->captables *= 2;
    }
    odbc_table_t *t = &src->tables[src->ntables];
    memset(t, 0, sizeof(*t));
    int rc = table_init(src, t, src->ntables, schema, table, errbuf, errsize);
    if (rc == 0)
        rc = table_first_describe(src, t, errbuf, errsize);
    if (rc < 0) {
        table_free(t);
        return rc;
    }
    src->ntables++;
    *out = t;
    return 0;
}

static int odbc_describe(siphon_source_t *src, const char *schema, const char *table,
                         const siphon_relation_t **rel, char *errbuf, size_t errsize)
{
    odbc_table_t *t;
    if (!src || !table || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not describe a table: bad "
                                                         "arguments");
    int rc = find_table(src, schema, table, &t, errbuf, errsize);
    if (rc == 0)
        *rel = &t->relv->rel;
    return rc;
}

/* The first `limit` rows of a table in key order, decoded as polls decode them (the batch
 * arena holds them: valid until the next sample() or next()). */
static int odbc_sample(siphon_source_t *src, const char *schema, const char *table, int limit,
                       const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                       char *errbuf, size_t errsize)
{
    odbc_table_t *t;
    odbc_stmt_t *st = NULL;
    const char **arrays[3] = {0};
    const odbc_col_t **rcols = NULL;
    odbc_qspec_t spec;
    odbc_query_t q = {0};
    long n = 0;
    int rc;
    if (!src || !table || !rel || !rows || !nrows || limit < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not sample a table: bad "
                                                         "arguments");
    *rows = NULL;
    *nrows = 0;
    if ((rc = find_table(src, schema, table, &t, errbuf, errsize)) < 0)
        return rc;
    *rel = &t->relv->rel;
    siphon_arena_reset(&src->arena);
    if (limit == 0)
        return 0;
    if ((rc = table_qspec(src, t, &spec, arrays)) < 0)
        goto out;
    spec.page = limit;
    if ((rc = siphon_odbc__query_build(&q, ODBC_Q_SAMPLE, &spec, &src->conn.dia)) < 0)
        goto out;
    if (!(rcols = calloc((size_t)t->ncols, sizeof(*rcols)))) {
        siphon_odbc__query_free(&q);
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (int i = 0; i < t->ncols; i++)
        rcols[i] = &t->cols[i];
    char what[160];
    snprintf(what, sizeof(what), "sample of %s", t->full);
    if ((rc = siphon_odbc__stmt_prepare(&src->conn, &st, &q, rcols, t->ncols, rcols, limit,
                                        what, errbuf, errsize)) < 0)
        goto out;
    odbc_datum_t *cells =
        siphon_arena_alloc(&src->arena, sizeof(odbc_datum_t) * (size_t)limit * (size_t)t->ncols);
    siphon_row_t *out = siphon_arena_alloc(&src->arena, sizeof(siphon_row_t) * (size_t)limit);
    if (!cells || !out) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    if ((rc = siphon_odbc__stmt_run(&src->conn, st, NULL, limit, cells, &n, &src->arena, errbuf,
                                    errsize)) < 0)
        goto out;
    for (long r = 0; r < n; r++) {
        siphon_row_t *row;
        if ((rc = row_after(src, t, cells + (size_t)r * (size_t)t->ncols, &row)) < 0)
            goto out;
        out[r] = *row;
    }
    *rows = out;
    *nrows = (int)n;
out:
    siphon_odbc__stmt_free(st);
    free(rcols);
    free(arrays[0]);
    free(arrays[1]);
    free(arrays[2]);
    return rc;
}

/* The step due first: *kind 0 poll, 1 reconciliation. NULL when there are no tables. */
static odbc_table_t *next_step(siphon_source_t *src, int *kind, int64_t *due)
{
    odbc_table_t *best = NULL;
    for (int i = 0; i < src->ntables; i++) {
        odbc_table_t *t = &src->tables[i];
        if (!best || t->poll_due < *due) {
            best = t;
            *kind = 0;
            *due = t->poll_due;
        }
        /* a reconciliation pass waits until polling has caught up with the table */
        if (t->recon_on && (t->caught_up || t->recon_active) && t->recon_due < *due) {
            best = t;
            *kind = 1;
            *due = t->recon_due;
        }
    }
    return best;
}

static int odbc_next(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms, char *errbuf,
                     size_t errsize)
{
    int rc;
    if (!src || !batch)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read changes: bad arguments");
    batch->recs = NULL;
    batch->n = 0;
    src->nrecs = 0;
    siphon_arena_reset(&src->arena);
    if (src->failed)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "%s", src->failed_msg);

    int64_t deadline = siphon_clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t now = siphon_clock_now_ms();
        if (!src->up) {
            if (now < src->retry_at) {
                sleep_ms((src->retry_at < deadline ? src->retry_at : deadline) - now);
                if (siphon_clock_now_ms() < src->retry_at)
                    break;
            }
            rc = conn_up(src, errbuf, errsize);
            if (rc == SIPHON_ECONN) {
                conn_drop(src, errbuf);
                break;
            }
            if (rc < 0)
                return rc;
            siphon_log(SIPHON_LOG_NOTICE, "odbc", "reconnected to %s", src->redacted);
            src->backoff_ms = 0;
        }
        int kind = 0;
        int64_t due = 0;
        odbc_table_t *t = next_step(src, &kind, &due);
        if (!t)
            break;
        if (due > now) {
            int64_t until = due < deadline ? due : deadline;
            sleep_ms(until - now);
            if (siphon_clock_now_ms() < due)
                break;
        }
        int before = src->nrecs;
        rc = kind ? recon_step(src, t, errbuf, errsize) : poll_step(src, t, errbuf, errsize);
        if (rc == SIPHON_ECONN) {
            src->nrecs = before;
            conn_drop(src, errbuf);
            break;
        }
        if (rc < 0)
            return rc;
        if (src->nrecs > 0 || siphon_clock_now_ms() >= deadline)
            break;
    }
    batch->recs = src->recs;
    batch->n = src->nrecs;
    return 0;
}

static int odbc_ack(siphon_source_t *src, const siphon_pos_t *pos, char *errbuf, size_t errsize)
{
    if (!src || !pos)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not acknowledge: bad arguments");
    uint64_t seq = pos->num;
    if (seq == 0 || seq <= src->acked_seq)
        return 0;
    if (seq > src->seq) {
        siphon_log(SIPHON_LOG_WARNING, "odbc",
                   "acknowledgement of poll %" PRIu64 " is past the last poll returned (%" PRIu64
                   "): acknowledging %" PRIu64 " only", seq, src->seq, src->seq);
        seq = src->seq;
    }
    /* Losing an acknowledgement only leaves its polls' keys "maybe sent" after a restart (rows
     * sent again): not a reason to stop. A journal that cannot be written at all stops the
     * source at the next poll's intent. */
    int rc = siphon_odbc__store_ack(&src->store, seq, errbuf, errsize);
    if (rc < 0)
        return rc;
    src->acked_seq = seq;
    if (siphon_odbc__store_idle(&src->store) &&
        src->store.journal_bytes > COMPACT_MIN_BYTES &&
        src->store.journal_bytes > src->store.base_bytes) {
        char msg[512];
        if (compact(src, msg, sizeof(msg)) < 0)
            siphon_log(SIPHON_LOG_WARNING, "odbc", "%s; will try again later", msg);
    }
    return 0;
}

static int odbc_pos_format(const siphon_pos_t *pos, char *buf, size_t size)
{
    if (!pos || !buf || size == 0)
        return SIPHON_EINVAL;
    int n = snprintf(buf, size, "%s", pos->text ? pos->text : "");
    return n;
}

static int odbc_pos_parse(siphon_pos_t *pos, const char *text, char *errbuf, size_t errsize)
{
    if (!pos || !text)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not parse a position: bad "
                                                         "arguments");
    if (siphon_odbc__pos_check(text, errbuf, errsize) < 0)
        return SIPHON_EINVAL;
    pos->num = 0;
    if (!(pos->text = strdup(text)))
        return SIPHON_ENOMEM;
    return 0;
}

static void odbc_close(siphon_source_t *src)
{
    if (!src)
        return;
    if (src->up && src->ntables && !src->catalog)
        siphon_log(SIPHON_LOG_INFO, "odbc",
                   "stopped polling %s: %" PRIu64 " poll(s), %" PRIu64 " query(ies), %" PRIu64
                   " row(s) read, %" PRIu64 " change(s), %" PRIu64 " delete(s)",
                   src->redacted, src->polls, src->conn.queries, src->conn.rows, src->changes,
                   src->deletes);
    for (int i = 0; i < src->ntables; i++)
        table_free(&src->tables[i]);
    free(src->tables);
    siphon_odbc__disconnect(&src->conn);
    siphon_odbc__store_close(&src->store);
    siphon_arena_destroy(&src->arena);
    siphon_buf_free(&src->delta);
    free(src->recs);
    free(src->name);
    free(src->dsn);
    free(src->state_dir);
    free(src);
}

void siphon_odbc__stats(const siphon_source_t *src, odbc_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!src)
        return;
    out->queries = src->conn.queries;
    out->rows = src->conn.rows;
    out->polls = src->polls;
    out->changes = src->changes;
    out->deletes = src->deletes;
    out->recon_passes = src->recon_passes;
    out->reconnects = src->reconnects;
    out->fsyncs = src->store.fsyncs;
    out->acked_seq = src->acked_seq;
}

const siphon_source_ops_t siphon_odbc_source = {
    .type = "odbc",
    .open = odbc_open,
    .describe = odbc_describe,
    .next = odbc_next,
    .ack = odbc_ack,
    .pos_format = odbc_pos_format,
    .pos_parse = odbc_pos_parse,
    .close = odbc_close,
    .open_catalog = odbc_open_catalog,
    .sample = odbc_sample,
};
