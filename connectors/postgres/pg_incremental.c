/*
 * pg_incremental.c - on-demand snapshots while streaming (`siphon snapshot`): the watermark
 * method of Netflix's DBLog, which Debezium calls incremental snapshots, on PostgreSQL. A table
 * is read again, in key-ordered chunks on an ordinary connection, while the replication stream
 * keeps flowing; no lock is taken beyond SELECT's own, and no row read by a chunk can overwrite
 * a newer streamed change of the same key.
 *
 * The request. `siphon snapshot` writes a logical decoding message into the WAL
 * (pg_logical_emit_message(true, 'siphon', '{"siphon":"snapshot","slot":..,"table":..}'));
 * the connector streaming from that slot receives it in its stream (pgoutput's messages
 * option, PostgreSQL 14+) and queues the table. Messages for other slots are ignored.
 *
 * One chunk. A single query string on the chunk connection:
 *     BEGIN; emit low watermark; COMMIT;
 *     BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_current_snapshot();
 *         SELECT <chunk: WHERE (key) > (last key) ORDER BY key LIMIT n>; COMMIT;
 *     BEGIN; emit high watermark; COMMIT
 * so the rows were read (in snapshot S) after the low watermark L committed and before the
 * high watermark H did. Meanwhile the stream is read as usual; every change of a table being
 * snapshotted is remembered (xid and key) in a short history. When H arrives in the stream,
 * a row of the chunk is dropped when the stream delivered a change of its key
 *   - between L and H (DBLog's rule: the stream already carries a state at least as new), or
 *   - at any time before H from a transaction S does not see (xid in S's in-progress list or
 *     at/after its xmax). PostgreSQL makes a commit visible a moment after writing its commit
 *     record (and only after a synchronous standby confirmed it), so a transaction can appear
 *     in the stream before L and still be invisible to S; DBLog assumes this away.
 * The same holds for a transaction the stream delivered before the request, when the history
 * had not started yet: when a table is queued, the xids of the last INC_RING transactions the
 * stream returned that are not visible then are kept (wait_xids), and a chunk whose S does not
 * see one of them yet is read again 100 ms later.
 * The rows left are appended, as 'r' changes (snapshot = 1), to H's own transaction: their
 * position is H's, after every streamed change that S saw and before every later one. So for
 * each key the last event is its current state, and no 'r' older than a streamed change of the
 * same key follows it. A key whose change cannot be recognised (a truncate, a key value not in
 * the stream) drops every row, or has the chunk read again.
 *
 * States of the chunk in flight (struct pg_inc.phase), and what moves them:
 *     IDLE --[tick: a table is queued, streaming: send the query string]--> READING
 *     READING --[poll: every result arrived]--> READY      (H may arrive first: read at once)
 *     READY --[H in the stream: rows left appended to H's transaction]--> EMITTED
 *     EMITTED --[H's COMMIT]--> IDLE                       (a RESET before it: H comes again,
 *                                                          and the same rows are appended again)
 *     READING/READY --[error; L missing; an unrecognised key]--> IDLE (read again, or given up)
 * Progress (the table being read, its chunks, rows and last key, and the tables queued) is the
 * suffix of every COMMIT and POSITION position while a snapshot runs: "<LSN> isnap
 * public.oehdr=0,12,1200,02,S01200 public.oecus=0,0,0". It is stored in the offsets file under
 * the usual rule, so after a crash the next start resumes after the last acknowledged chunk,
 * in new snapshots (at-least-once); watermarks of the old process are ignored (each process
 * has its own run id).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "connectors/postgres/pg_int.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

#define INC_PREFIX "siphon"
#define INC_HIST_MAX 200000      /* remembered changes; the oldest go first */
#define INC_PROGRESS_MAX 3800    /* as the initial snapshot's progress text */
#define INC_KEY_MAX 4096
#define INC_RING 16384           /* committed transactions remembered by xid */

typedef enum inc_phase { INC_IDLE = 0, INC_READING, INC_READY, INC_EMITTED } inc_phase_t;

/* One streamed change of a table that is (or waits to be) snapshotted. */
typedef struct inc_hist {
    uint64_t seq;            /* stream order */
    uint32_t oid, xid;
    int kind;                /* 0 key, 1 truncate, 2 key not recognised (read the chunk again) */
    char *key;               /* kind 0: the key text (malloc) */
} inc_hist_t;

typedef struct pg_inc {
    char **names;            /* "schema.table" of every streamed table */
    int nnames;
    pg_snap_table_t *q;      /* q[0] is read, the others wait (planned) */
    int nq, capq;
    int chunk_rows;
    char run[48];            /* this process's watermark id */
    PGconn *conn;
    int64_t retry_at_ms;
    inc_phase_t phase;
    uint64_t wm;             /* watermark number of the chunk in flight */

    /* the chunk in flight */
    int nres, error, conn_lost;
    char errmsg[512];
    siphon_arena_t mem;      /* rows and keys; reset once the batch holding them is gone */
    int mem_dirty;
    const pg_rel_t *rel;
    siphon_row_t **rows;
    char **keys;
    unsigned char *drop;
    int nrows, caprows, selected, emitted;
    int *slots;              /* open addressing: key -> row index + 1 */
    size_t nslots;
    char **last;             /* the chunk's last key (new t->last), nlast values */
    int nlast;
    uint64_t xmin, xmax, *xip;
    int nxip;
    int got_low;
    uint64_t win_seq, h_pos;

    /* what the stream changed */
    uint64_t *wait_xids;     /* streamed, not yet visible when a table was queued */
    int nwait;
    uint32_t *ring;          /* xids of the last INC_RING transactions the stream returned */
    size_t ring_n;
    inc_hist_t *hist;
    size_t nhist, caphist;
    uint64_t hist_seq;
    const siphon_relation_t *kc_rel; /* key column indexes cached for this stream relation */
    int kc_idx[32];

    pg_snap_progress_t progress;
    char *suffix;            /* " isnap ..." (malloc) or NULL */
    uint64_t dropped_total;
} pg_inc_t;

/* ---- small helpers ---- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void full_name(const pg_snap_table_t *t, char *buf, size_t size)
{
    snprintf(buf, size, "%s.%s", t->schema, t->table);
}

/* The key text of a row: each key column's value, formatted, after its length
 * ("2:02|7:S000042|"), so that no two keys share a text. 0, or -1 when a key value is not
 * known (unchanged TOAST) or the text does not fit. */
static int key_text(const siphon_row_t *row, const int *idx, int nk, char *buf, size_t size)
{
    char val[INC_KEY_MAX];
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < nk; k++) {
        if (idx[k] < 0 || idx[k] >= row->ncols)
            return -1;
        const siphon_value_t *v = &row->vals[idx[k]];
        if (v->type == SIPHON_V_UNCHANGED)
            return -1;
        size_t len = siphon_value_format(v, val, sizeof(val));
        if (len >= sizeof(val))
            return -1;
        int w = snprintf(buf + n, size - n, "%zu:%s|", len, val);
        if (w < 0 || (size_t)w >= size - n)
            return -1;
        n += (size_t)w;
    }
    return 0;
}

static void hist_clear(pg_inc_t *inc)
{
    for (size_t i = 0; i < inc->nhist; i++)
        free(inc->hist[i].key);
    inc->nhist = 0;
}

static void chunk_reset(pg_inc_t *inc)
{
    siphon_arena_reset(&inc->mem);
    inc->mem_dirty = 0;
    inc->nrows = inc->selected = inc->emitted = 0;
    free(inc->slots);
    inc->slots = NULL;
    inc->nslots = 0;
    for (int k = 0; inc->last && k < inc->nlast; k++)
        free(inc->last[k]);
    free(inc->last);
    inc->last = NULL;
    inc->nlast = 0;
    free(inc->xip);
    inc->xip = NULL;
    inc->nxip = 0;
    inc->nres = inc->error = inc->conn_lost = inc->got_low = 0;
    inc->errmsg[0] = '\0';
}

static void queue_pop(pg_inc_t *inc)
{
    if (inc->nq == 0)
        return;
    siphon_pg__snap_table_free(&inc->q[0]);
    memmove(&inc->q[0], &inc->q[1], (size_t)(inc->nq - 1) * sizeof(inc->q[0]));
    inc->nq--;
}

/* The position suffix for the current state: NULL when nothing is queued. */
static int suffix_update(pg_inc_t *inc)
{
    siphon_buf_t b = {0};
    free(inc->suffix);
    inc->suffix = NULL;
    if (inc->nq == 0)
        return 0;
    siphon_buf_printf(&b, " isnap");
    for (int i = 0; i < inc->nq; i++) {
        siphon_buf_t e = {0};
        /* an entry that does not fit is left out: that table is not resumed after a crash
         * (run siphon snapshot for it again) */
        if (siphon_pg__snap_progress_entry(&e, &inc->q[i]) == 0 && b.len + e.len < INC_PROGRESS_MAX)
            siphon_buf_append(&b, e.data, e.len);
        siphon_buf_free(&e);
    }
    if (siphon_buf_appendc(&b, 0) < 0) {
        siphon_buf_free(&b);
        return SIPHON_ENOMEM;
    }
    inc->suffix = (char *)b.data; /* ownership moves to inc */
    return 0;
}

static int suffix_publish(siphon_source_t *src)
{
    pg_inc_t *inc = src->inc;
    src->st.pos_suffix = NULL;
    if (inc->suffix && !(src->st.pos_suffix = siphon_arena_strndup(&src->st.arena, inc->suffix,
                                                                    strlen(inc->suffix))))
        return SIPHON_ENOMEM;
    return 0;
}

/* A 32-bit xid (pgoutput's) as a full one: in the epoch nearest to xmax's. */
static uint64_t xid_widen(uint32_t xid, uint64_t xmax)
{
    const uint64_t wrap = UINT64_C(1) << 32;
    uint64_t full = (xmax & ~(wrap - 1)) | xid;
    if (full > xmax + wrap / 2 && full >= wrap)
        full -= wrap;
    else if (full + wrap / 2 < xmax)
        full += wrap;
    return full;
}

int siphon_pg__xid_visible(uint64_t xmin, uint64_t xmax, const uint64_t *xip, int nxip,
                           uint64_t xid, int xid32)
{
    uint64_t full = xid32 ? xid_widen((uint32_t)xid, xmax) : xid;
    if (full < xmin)
        return 1;
    if (full >= xmax)
        return 0;
    for (int i = 0; i < nxip; i++)
        if (xip[i] == full)
            return 0;
    return 1;
}

/* Whether a streamed transaction (32-bit xid) is visible in the chunk's snapshot. */
static int xid_visible(const pg_inc_t *inc, uint32_t xid)
{
    return siphon_pg__xid_visible(inc->xmin, inc->xmax, inc->xip, inc->nxip, xid, 1);
}

/* Transactions the stream delivered that are not visible yet when a table is queued: they
 * reached the stream before the history of the table's changes started, so a chunk read while
 * one of them is still invisible cannot be trusted (it is read again a little later). That is
 * the last few thousand committed transactions (the ring) not visible in a snapshot taken now
 * on the catalog connection. */
static void wait_xids_add(siphon_source_t *src)
{
    pg_inc_t *inc = src->inc;
    char msg[512];
    uint64_t xmin, xmax, *xip = NULL;
    int nxip = 0;
    PGresult *res = PQexec(src->cat, "SELECT pg_catalog.pg_current_snapshot()::text");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        siphon_pg__snapshot_parse(PQgetvalue(res, 0, 0), &xmin, &xmax, &xip, &nxip) < 0) {
        siphon_log(SIPHON_LOG_WARNING, "pg", "could not read the current snapshot (%s); a chunk "
                   "may miss a transaction that is committed but not visible yet",
                   siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        free(xip);
        return;
    }
    PQclear(res);
    size_t n = inc->ring_n < INC_RING ? inc->ring_n : INC_RING;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = inc->ring[i];
        if (siphon_pg__xid_visible(xmin, xmax, xip, nxip, x, 1))
            continue;
        uint64_t *w = realloc(inc->wait_xids, (size_t)(inc->nwait + 1) * sizeof(*w));
        if (!w)
            break;
        inc->wait_xids = w;
        inc->wait_xids[inc->nwait++] = xid_widen(x, xmax);
    }
    free(xip);
}

/* Queue schema.table (planned on the catalog connection). Returns 0 (also when it was refused
 * with a warning) or SIPHON_ENOMEM. */
static int queue_add(siphon_source_t *src, const char *schema, const char *table, int quiet)
{
    pg_inc_t *inc = src->inc;
    char full[600], why[1024] = "";
    snprintf(full, sizeof(full), "%s.%s", schema, table);
    int streamed = 0;
    for (int i = 0; i < inc->nnames; i++)
        streamed |= strcmp(inc->names[i], full) == 0;
    if (!streamed) {
        siphon_log(SIPHON_LOG_WARNING, "pg",
                   "on-demand snapshot of %s refused: no mapping of connector slot \"%s\" reads "
                   "that table", full, src->slot);
        return 0;
    }
    for (int i = 0; i < inc->nq; i++) {
        char other[600];
        full_name(&inc->q[i], other, sizeof(other));
        if (strcmp(other, full) == 0) {
            if (!quiet)
                siphon_log(SIPHON_LOG_NOTICE, "pg",
                           "on-demand snapshot of %s requested again while it is %s: nothing "
                           "more to do", full, i == 0 ? "being read" : "queued");
            return 0;
        }
    }
    if (inc->nq == inc->capq) {
        int ncap = inc->capq ? inc->capq * 2 : 4;
        pg_snap_table_t *n = realloc(inc->q, (size_t)ncap * sizeof(*n));
        if (!n)
            return SIPHON_ENOMEM;
        inc->q = n;
        inc->capq = ncap;
    }
    pg_snap_table_t *t = &inc->q[inc->nq];
    memset(t, 0, sizeof(*t));
    if (siphon_pg__snap_table_init(t, schema, table) < 0) {
        siphon_pg__snap_table_free(t);
        return SIPHON_ENOMEM;
    }
    if (siphon_pg__snap_plan(src, t, why, sizeof(why)) < 0 || t->nkeys == 0 || t->nkeys > 32) {
        siphon_log(SIPHON_LOG_WARNING, "pg", "on-demand snapshot of %s refused: %s", full,
                   !t->rel ? why
                   : t->nkeys == 0 ? "the table has no primary key or replica identity index (a "
                                     "key is needed to reconcile its rows with the stream)"
                                   : "its key has more than 32 columns");
        siphon_pg__snap_table_free(t);
        return 0;
    }
    inc->nq++;
    wait_xids_add(src);
    return 0;
}

/* ---- the stream hooks ---- */

static int hist_add(pg_inc_t *inc, uint32_t oid, uint32_t xid, int kind, const char *key)
{
    if (inc->nhist == INC_HIST_MAX) {
        /* only while no chunk prunes it (the stream runs, the chunk connection is down): the
         * older half goes; a change that old is visible to every new snapshot in practice */
        size_t half = inc->nhist / 2;
        for (size_t i = 0; i < half; i++)
            free(inc->hist[i].key);
        memmove(&inc->hist[0], &inc->hist[half], (inc->nhist - half) * sizeof(inc->hist[0]));
        inc->nhist -= half;
    }
    if (inc->nhist == inc->caphist) {
        size_t ncap = inc->caphist ? inc->caphist * 2 : 256;
        inc_hist_t *n = realloc(inc->hist, ncap * sizeof(*n));
        if (!n)
            return SIPHON_ENOMEM;
        inc->hist = n;
        inc->caphist = ncap;
    }
    inc_hist_t *h = &inc->hist[inc->nhist];
    h->seq = inc->hist_seq++;
    h->oid = oid;
    h->xid = xid;
    h->kind = kind;
    h->key = NULL;
    if (key && !(h->key = strdup(key)))
        return SIPHON_ENOMEM;
    inc->nhist++;
    return 0;
}

static int on_change(void *opaque, pg_stream_t *st, const siphon_change_t *rec, char *errbuf,
                     size_t errsize)
{
    siphon_source_t *src = opaque;
    pg_inc_t *inc = src->inc;
    (void)st;
    const pg_snap_table_t *t = NULL;
    for (int i = 0; i < inc->nq && !t; i++)
        if (inc->q[i].rel && inc->q[i].rel->rel.id == rec->rel->id)
            t = &inc->q[i];
    if (!t)
        return 0;
    int rc = 0;
    uint32_t oid = rec->rel->id, xid = (uint32_t)rec->txid;
    if (rec->op == SIPHON_OP_TRUNCATE)
        rc = hist_add(inc, oid, xid, 1, NULL);
    if (rc < 0 || rec->op == SIPHON_OP_TRUNCATE)
        return rc < 0 ? siphon_err(errbuf, errsize, rc, "out of memory") : 0;
    /* the key columns of this stream relation, by name (its shape may differ from the
     * described one the chunks use) */
    if (inc->kc_rel != rec->rel) {
        for (int k = 0; k < t->nkeys; k++) { /* at most 32 (queue_add) */
            const char *name = t->rel->rel.cols[t->keycols[k]].name;
            inc->kc_idx[k] = -1;
            for (int c = 0; c < rec->rel->ncols; c++)
                if (strcmp(rec->rel->cols[c].name, name) == 0)
                    inc->kc_idx[k] = c;
        }
        inc->kc_rel = rec->rel;
    }
    char key[INC_KEY_MAX];
    const siphon_row_t *imgs[2] = {rec->before, rec->after};
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!imgs[i])
            continue;
        if (key_text(imgs[i], inc->kc_idx, t->nkeys, key, sizeof(key)) < 0)
            rc = hist_add(inc, oid, xid, 2, NULL);
        else
            rc = hist_add(inc, oid, xid, 0, key);
    }
    return rc < 0 ? siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory") : 0;
}

/* The rows of a chunk result into inc->rows (and the key index). */
static int chunk_rows_take(pg_inc_t *inc, const pg_snap_table_t *t, PGresult *res, char *errbuf,
                           size_t errsize)
{
    int n = PQntuples(res), rc;
    inc->selected = n;
    inc->rel = t->rel;
    if (n > inc->caprows) {
        siphon_row_t **r = realloc(inc->rows, (size_t)n * sizeof(*r));
        char **k = r ? realloc(inc->keys, (size_t)n * sizeof(*k)) : NULL;
        unsigned char *d = k ? realloc(inc->drop, (size_t)n) : NULL;
        if (r)
            inc->rows = r;
        if (k)
            inc->keys = k;
        if (d)
            inc->drop = d;
        if (!d)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        inc->caprows = n;
    }
    inc->nslots = 16;
    while (inc->nslots < (size_t)n * 2)
        inc->nslots *= 2;
    if (!(inc->slots = calloc(inc->nslots, sizeof(int))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    char key[INC_KEY_MAX];
    for (int i = 0; i < n; i++) {
        if ((rc = siphon_pg__snap_decode_row(&inc->mem, t, res, i, &inc->rows[i], errbuf,
                                             errsize)) < 0)
            return rc;
        inc->drop[i] = 0;
        inc->keys[i] = NULL;
        if (key_text(inc->rows[i], t->keycols, t->nkeys, key, sizeof(key)) == 0 &&
            (inc->keys[i] = siphon_arena_strndup(&inc->mem, key, strlen(key)))) {
            size_t s = (size_t)fnv(key) & (inc->nslots - 1);
            while (inc->slots[s])
                s = (s + 1) & (inc->nslots - 1);
            inc->slots[s] = i + 1;
        }
    }
    inc->nrows = n;
    if (n > 0) {
        /* the next chunk starts after this one's last key (as the server printed it) */
        pg_snap_table_t tmp = *t;
        tmp.last = NULL;
        if (siphon_pg__snap_set_last(&tmp, res, n - 1) < 0)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        inc->last = tmp.last;
        inc->nlast = t->nkeys;
    }
    return 0;
}

static void chunk_drop_key(pg_inc_t *inc, const char *key)
{
    if (!inc->slots)
        return;
    for (size_t s = (size_t)fnv(key) & (inc->nslots - 1); inc->slots[s];
         s = (s + 1) & (inc->nslots - 1)) {
        int i = inc->slots[s] - 1;
        if (inc->keys[i] && strcmp(inc->keys[i], key) == 0)
            inc->drop[i] = 1;
    }
}

int siphon_pg__snapshot_parse(const char *text, uint64_t *xmin, uint64_t *xmax, uint64_t **xip,
                              int *nxip)
{
    char *end;
    *xip = NULL;
    *nxip = 0;
    *xmin = strtoull(text, &end, 10);
    if (*end != ':')
        return SIPHON_EINVAL;
    *xmax = strtoull(end + 1, &end, 10);
    if (*end != ':')
        return SIPHON_EINVAL;
    const char *p = end + 1;
    int n = 1;
    for (const char *c = p; *c; c++)
        n += *c == ',';
    if (!(*xip = calloc((size_t)n, sizeof(uint64_t))))
        return SIPHON_ENOMEM;
    while (*p) {
        uint64_t v = strtoull(p, &end, 10);
        if (end == p || (*end && *end != ',')) {
            free(*xip);
            *xip = NULL;
            *nxip = 0;
            return SIPHON_EINVAL;
        }
        (*xip)[(*nxip)++] = v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Read the chunk query's results: without blocking (block 0) as far as they have arrived, or
 * all of them (block 1: the server already sent them, H is in the stream). */
static int chunk_collect(siphon_source_t *src, int block, char *errbuf, size_t errsize)
{
    pg_inc_t *inc = src->inc;
    char msg[512];
    int rc;
    for (;;) {
        if (!block) {
            if (!PQconsumeInput(inc->conn)) {
                inc->error = inc->conn_lost = 1;
                siphon_pg__trim(PQerrorMessage(inc->conn), inc->errmsg, sizeof(inc->errmsg));
                break;
            }
            if (PQisBusy(inc->conn))
                return 0;
        }
        PGresult *res = PQgetResult(inc->conn);
        if (!res)
            break;
        ExecStatusType s = PQresultStatus(res);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
            if (!inc->error)
                siphon_pg__trim(PQresultErrorMessage(res), inc->errmsg, sizeof(inc->errmsg));
            inc->error = 1;
        } else if (!inc->error && inc->nres == 4) {
            free(inc->xip);
            if (PQntuples(res) != 1 ||
                siphon_pg__snapshot_parse(PQgetvalue(res, 0, 0), &inc->xmin, &inc->xmax,
                                          &inc->xip, &inc->nxip) < 0) {
                inc->error = 1;
                snprintf(inc->errmsg, sizeof(inc->errmsg), "unexpected pg_current_snapshot()");
            }
        } else if (!inc->error && inc->nres == 5) {
            if ((rc = chunk_rows_take(inc, &inc->q[0], res, msg, sizeof(msg))) < 0) {
                PQclear(res);
                return siphon_err(errbuf, errsize, rc, "%s", msg);
            }
        }
        inc->nres++;
        PQclear(res);
    }
    if (PQstatus(inc->conn) != CONNECTION_OK)
        inc->conn_lost = inc->error = 1;
    if (!inc->error && inc->nres < 10) {
        inc->error = 1;
        snprintf(inc->errmsg, sizeof(inc->errmsg), "the chunk query returned %d results of 10",
                 inc->nres);
    }
    if (!inc->error) {
        inc->phase = INC_READY;
        return 0;
    }
    /* Give the chunk up: read it again later (connection lost), or give the table up. */
    pg_snap_table_t *t = &inc->q[0];
    char full[600];
    full_name(t, full, sizeof(full));
    inc->phase = INC_IDLE;
    inc->mem_dirty = 1;
    if (inc->conn_lost) {
        siphon_log(SIPHON_LOG_WARNING, "pg",
                   "on-demand snapshot of %s: chunk %" PRIu64 " could not be read (%s); "
                   "reconnecting and reading it again", full, t->chunks, inc->errmsg);
        PQfinish(inc->conn);
        inc->conn = NULL;
        inc->retry_at_ms = siphon_clock_now_ms() + 2000;
        return 0;
    }
    PGresult *rb = PQexec(inc->conn, "ROLLBACK");
    PQclear(rb);
    siphon_log(SIPHON_LOG_ERR, "pg",
               "on-demand snapshot of %s abandoned at chunk %" PRIu64 ": %s (fix the cause, "
               "e.g. GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, "
               "text) or GRANT SELECT on the table to the connector's role, then run siphon "
               "snapshot again)", full, t->chunks, inc->errmsg);
    queue_pop(inc);
    if (inc->nq == 0)
        hist_clear(inc);
    int rc2 = suffix_update(inc);
    if (rc2 == 0)
        rc2 = suffix_publish(src);
    return rc2 < 0 ? siphon_err(errbuf, errsize, rc2, "out of memory") : 0;
}

/* H arrived with the chunk's rows at hand: drop the rows the stream made stale and append the
 * others to H's transaction. Returns 0, 1 when the chunk must be read again (a change not
 * recognised), 2 when it must be read again a little later (a transaction that committed
 * before the history started is not visible yet). */
static int chunk_reconcile(siphon_source_t *src, char *errbuf, size_t errsize)
{
    pg_inc_t *inc = src->inc;
    pg_stream_t *st = &src->st;
    uint32_t oid = inc->rel->rel.id;
    if (!inc->got_low)
        return 1; /* cannot happen (L commits before H); read again rather than guess */
    for (int i = 0; i < inc->nwait; i++)
        if (!siphon_pg__xid_visible(inc->xmin, inc->xmax, inc->xip, inc->nxip,
                                    inc->wait_xids[i], 0))
            return 2; /* committed before the history started, still invisible: wait */
    for (size_t i = 0; i < inc->nhist; i++) {
        const inc_hist_t *h = &inc->hist[i];
        if (h->oid != oid || !(h->seq >= inc->win_seq || !xid_visible(inc, h->xid)))
            continue;
        if (h->kind == 1) {
            memset(inc->drop, 1, (size_t)inc->nrows);
        } else if (h->kind == 0) {
            chunk_drop_key(inc, h->key);
        } else {
            return 1;
        }
    }
    /* what S saw is seen by every later snapshot too: forget it */
    size_t w = 0;
    for (size_t i = 0; i < inc->nhist; i++) {
        if (xid_visible(inc, inc->hist[i].xid))
            free(inc->hist[i].key);
        else
            inc->hist[w++] = inc->hist[i];
    }
    inc->nhist = w;
    /* transactions that were committing when the table was queued, now visible: done */
    int nw = 0;
    for (int i = 0; i < inc->nwait; i++)
        if (!siphon_pg__xid_visible(inc->xmin, inc->xmax, inc->xip, inc->nxip,
                                    inc->wait_xids[i], 0))
            inc->wait_xids[nw++] = inc->wait_xids[i];
    inc->nwait = nw;
    inc->emitted = 0;
    for (int i = 0; i < inc->nrows; i++)
        inc->emitted += !inc->drop[i];
    siphon_log(SIPHON_LOG_DEBUG, "pg",
               "on-demand snapshot of %s.%s, chunk %" PRIu64 ": %d rows read, %d left to the "
               "stream (changed while read); %zu changes remembered",
               inc->q[0].schema, inc->q[0].table, inc->q[0].chunks, inc->nrows,
               inc->nrows - inc->emitted, inc->nhist);
    (void)st;
    (void)errbuf;
    (void)errsize;
    return 0;
}

static int chunk_append(siphon_source_t *src, char *errbuf, size_t errsize)
{
    pg_inc_t *inc = src->inc;
    pg_stream_t *st = &src->st;
    for (int i = 0; i < inc->nrows; i++) {
        if (inc->drop[i])
            continue;
        siphon_change_t *c = siphon_pg__stream_push(st, SIPHON_REC_CHANGE);
        if (!c)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        c->op = SIPHON_OP_READ;
        c->rel = &inc->rel->rel;
        c->after = inc->rows[i];
        c->txid = st->txn_xid;
        c->commit_ts_us = st->txn_commit_ts;
        c->pos.num = st->txn_pos;
        c->snapshot = 1;
    }
    return 0;
}

/* The chunk is in H's transaction: move the table's progress on (the COMMIT that follows
 * carries it) and finish the table when the chunk was its last. */
static int chunk_done(siphon_source_t *src)
{
    pg_inc_t *inc = src->inc;
    pg_snap_table_t *t = &inc->q[0];
    char full[600];
    full_name(t, full, sizeof(full));
    if (inc->last) {
        if (t->last)
            for (int k = 0; k < t->nkeys; k++)
                free(t->last[k]);
        free(t->last);
        t->last = inc->last;
        inc->last = NULL;
        inc->nlast = 0;
    }
    t->chunks++;
    t->rows += (uint64_t)inc->emitted;
    inc->dropped_total += (uint64_t)(inc->selected - inc->emitted);
    t->done = inc->selected < inc->chunk_rows;
    siphon_pg__snap_show(&inc->progress, t, t->done);
    if (t->done) {
        siphon_log(SIPHON_LOG_INFO, "pg",
                   "on-demand snapshot of %s done: %" PRIu64 " rows in %" PRIu64 " chunks "
                   "(%" PRIu64 " more rows came from the stream instead, changed while read)",
                   full, t->rows, t->chunks, inc->dropped_total);
        inc->dropped_total = 0;
        queue_pop(inc);
        if (inc->nq == 0) {
            hist_clear(inc); /* else keep it: it may hold changes of a queued table */
            if (inc->conn) { /* idle: every result of the last chunk was read */
                PQfinish(inc->conn);
                inc->conn = NULL;
            }
        }
    }
    return suffix_update(inc);
}

static int on_message(void *opaque, pg_stream_t *st, int transactional, uint64_t lsn,
                      const char *prefix, const char *content, size_t len, char *errbuf,
                      size_t errsize)
{
    siphon_source_t *src = opaque;
    pg_inc_t *inc = src->inc;
    int rc = 0;
    (void)transactional;
    if (strcmp(prefix, INC_PREFIX) != 0)
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb(content, len, 0, &jerr);
    const char *kind = json_string_value(json_object_get(j, "siphon"));
    const char *slot = json_string_value(json_object_get(j, "slot"));
    char at[32];
    siphon_pg__lsn_format(lsn, at, sizeof(at));
    if (!kind || !slot || strcmp(slot, src->slot) != 0)
        goto out; /* not ours: another connector on this database */
    if (strcmp(kind, "snapshot") == 0) {
        const char *table = json_string_value(json_object_get(j, "table"));
        const char *dot = table ? strchr(table, '.') : NULL;
        if (!dot) {
            siphon_log(SIPHON_LOG_WARNING, "pg", "ignored a snapshot request at %s: no "
                       "schema.table in it", at);
            goto out;
        }
        char schema[256];
        snprintf(schema, sizeof(schema), "%.*s", (int)(dot - table), table);
        int before = inc->nq;
        if ((rc = queue_add(src, schema, dot + 1, 0)) < 0 || inc->nq == before)
            goto out;
        siphon_log(SIPHON_LOG_INFO, "pg",
                   "on-demand snapshot of %s requested (at %s): reading it in chunks of %d rows "
                   "while streaming%s", table, at, inc->chunk_rows,
                   inc->nq > 1 ? ", after the tables queued before it" : "");
        if ((rc = suffix_update(inc)) == 0)
            rc = suffix_publish(src);
        goto out;
    }
    int low = strcmp(kind, "low") == 0;
    if (!low && strcmp(kind, "high") != 0)
        goto out;
    const char *run = json_string_value(json_object_get(j, "run"));
    json_int_t wm = json_integer_value(json_object_get(j, "chunk"));
    if (!run || strcmp(run, inc->run) != 0 || (uint64_t)wm != inc->wm)
        goto out; /* a watermark of an earlier process or chunk */
    if (low) {
        if ((inc->phase == INC_READING || inc->phase == INC_READY) && !inc->got_low) {
            inc->got_low = 1;
            inc->win_seq = inc->hist_seq;
        }
        goto out;
    }
    if (inc->phase == INC_EMITTED) {
        /* H's transaction again after a reconnect (RESET): the same rows again */
        if (st->txn_pos == inc->h_pos)
            rc = chunk_append(src, errbuf, errsize);
        goto out;
    }
    if (inc->phase == INC_READING && (rc = chunk_collect(src, 1, errbuf, errsize)) < 0)
        goto out;
    if (inc->phase != INC_READY)
        goto out;
    if ((rc = chunk_reconcile(src, errbuf, errsize)) != 0) {
        if (rc > 0) {
            siphon_log(rc == 1 ? SIPHON_LOG_NOTICE : SIPHON_LOG_DEBUG, "pg",
                       "on-demand snapshot of %s.%s: chunk %" PRIu64 " is read again (%s)",
                       inc->q[0].schema, inc->q[0].table, inc->q[0].chunks,
                       rc == 1 ? "a change of its table could not be matched to its rows"
                               : "a transaction that committed before the snapshot was "
                                 "requested is not visible yet");
            inc->phase = INC_IDLE;
            inc->mem_dirty = 1;
            inc->retry_at_ms = siphon_clock_now_ms() + 100;
            rc = 0;
        }
        goto out;
    }
    if ((rc = chunk_append(src, errbuf, errsize)) < 0)
        goto out;
    inc->phase = INC_EMITTED;
    inc->h_pos = st->txn_pos;
    if ((rc = chunk_done(src)) == 0)
        rc = suffix_publish(src);
out:
    json_decref(j);
    return rc;
}

static int on_commit(void *opaque, pg_stream_t *st, char *errbuf, size_t errsize)
{
    siphon_source_t *src = opaque;
    pg_inc_t *inc = src->inc;
    (void)errbuf;
    (void)errsize;
    inc->ring[inc->ring_n++ % INC_RING] = (uint32_t)st->txn_xid;
    if (inc->phase == INC_EMITTED && st->txn_pos == inc->h_pos) {
        inc->phase = INC_IDLE;
        inc->mem_dirty = 1; /* the batch still points at the rows: reset at the next tick */
    }
    return 0;
}

static const pg_stream_hooks_t inc_hooks = {
    .message = on_message,
    .change = on_change,
    .commit = on_commit,
};

/* ---- driven by the source ---- */

static int watermark_lit(siphon_buf_t *sql, PGconn *c, const pg_inc_t *inc, const char *slot,
                         const char *kind)
{
    char *s = NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "siphon", kind, "slot", slot, "run", inc->run,
                          "chunk", (json_int_t)inc->wm);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text)
        s = PQescapeLiteral(c, text, strlen(text));
    free(text);
    if (!s)
        return SIPHON_ENOMEM;
    siphon_buf_printf(sql, "BEGIN; SELECT pg_catalog.pg_logical_emit_message(true, '%s', %s); "
                           "COMMIT; ", INC_PREFIX, s);
    PQfreemem(s);
    return 0;
}

int siphon_pg__inc_tick(siphon_source_t *src, char *errbuf, size_t errsize)
{
    pg_inc_t *inc = src->inc;
    int rc;
    if (!inc)
        return 0;
    if (inc->phase == INC_IDLE && inc->mem_dirty)
        chunk_reset(inc);
    if ((rc = suffix_publish(src)) < 0)
        return siphon_err(errbuf, errsize, rc, "out of memory");
    int64_t now = siphon_clock_now_ms();
    if (inc->phase != INC_IDLE || inc->nq == 0 || src->state != PG_S_STREAMING ||
        now < inc->retry_at_ms)
        return 0;
    if (!inc->conn) {
        char why[1024];
        if (!(inc->conn = siphon_pg__snap_connect(src, &rc, why, sizeof(why)))) {
            siphon_log(SIPHON_LOG_WARNING, "pg", "on-demand snapshot waits: %s; trying again in "
                       "5 s", why);
            inc->retry_at_ms = now + 5000;
            return rc == SIPHON_ENOMEM ? siphon_err(errbuf, errsize, rc, "out of memory") : 0;
        }
    }
    pg_snap_table_t *t = &inc->q[0];
    if (!t->started_ms)
        t->started_ms = now;
    inc->wm++;
    siphon_buf_t sql = {0};
    rc = watermark_lit(&sql, inc->conn, inc, src->slot, "low");
    if (rc == 0) {
        siphon_buf_printf(&sql, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
                                "SELECT pg_catalog.pg_current_snapshot()::text; ");
        rc = siphon_pg__snap_chunk_sql(&sql, inc->conn, t, inc->chunk_rows, 1);
    }
    if (rc == 0) {
        siphon_buf_printf(&sql, "; COMMIT; ");
        rc = watermark_lit(&sql, inc->conn, inc, src->slot, "high");
    }
    if (rc == 0 && siphon_buf_appendc(&sql, 0) < 0)
        rc = SIPHON_ENOMEM;
    if (rc < 0) {
        siphon_buf_free(&sql);
        return siphon_err(errbuf, errsize, rc, "could not build an on-demand snapshot query: "
                          "out of memory");
    }
    chunk_reset(inc);
    inc->phase = INC_READING;
    if (!PQsendQuery(inc->conn, (const char *)sql.data)) {
        inc->error = inc->conn_lost = 1;
        siphon_pg__trim(PQerrorMessage(inc->conn), inc->errmsg, sizeof(inc->errmsg));
        siphon_buf_free(&sql);
        return chunk_collect(src, 1, errbuf, errsize);
    }
    siphon_buf_free(&sql);
    return 0;
}

int siphon_pg__inc_poll(siphon_source_t *src, int *fd, char *errbuf, size_t errsize)
{
    pg_inc_t *inc = src->inc;
    int rc = 0;
    *fd = -1;
    if (!inc || inc->phase != INC_READING)
        return 0;
    if ((rc = chunk_collect(src, 0, errbuf, errsize)) < 0)
        return rc;
    if (inc->phase == INC_READING)
        *fd = PQsocket(inc->conn);
    return 0;
}

void siphon_pg__inc_free(siphon_source_t *src)
{
    pg_inc_t *inc = src ? src->inc : NULL;
    if (!inc)
        return;
    if (src->st.hooks == &inc_hooks)
        src->st.hooks = NULL;
    src->st.pos_suffix = NULL;
    chunk_reset(inc);
    siphon_arena_destroy(&inc->mem);
    free(inc->rows);
    free(inc->keys);
    free(inc->drop);
    hist_clear(inc);
    free(inc->hist);
    free(inc->wait_xids);
    free(inc->ring);
    while (inc->nq > 0)
        queue_pop(inc);
    free(inc->q);
    for (int i = 0; i < inc->nnames; i++)
        free(inc->names[i]);
    free(inc->names);
    free(inc->suffix);
    if (inc->conn)
        PQfinish(inc->conn);
    free(inc);
    src->inc = NULL;
}

/* Resume: queue every table of a stored " isnap" progress text, with its progress. */
static int resume(siphon_source_t *src, const char *progress)
{
    pg_inc_t *inc = src->inc;
    char *copy = strdup(progress), *save = NULL;
    int rc = 0;
    if (!copy)
        return SIPHON_ENOMEM;
    for (char *tok = strtok_r(copy, " ", &save); tok && rc == 0; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (siphon_pg__snap_unescape(tok) < 0 || !strchr(tok, '.'))
            continue;
        char *dot = strchr(tok, '.');
        *dot = '\0';
        rc = queue_add(src, tok, dot + 1, 1);
    }
    free(copy);
    if (rc < 0 || inc->nq == 0)
        return rc;
    siphon_pg__snap_apply_progress(inc->q, inc->nq, progress);
    for (int i = 0; i < inc->nq; i++)
        inc->q[i].done = 0;
    siphon_log(SIPHON_LOG_INFO, "pg",
               "resuming the on-demand snapshot of %s.%s after chunk %" PRIu64 " (%" PRIu64
               " rows), in new snapshots; %d table(s) queued after it",
               inc->q[0].schema, inc->q[0].table, inc->q[0].chunks, inc->q[0].rows, inc->nq - 1);
    return suffix_update(inc);
}

int siphon_pg__inc_setup(siphon_source_t *src, const siphon_config_t *cfg,
                         const siphon_table_ref_t *tables, int ntables, const char *progress,
                         char *errbuf, size_t errsize)
{
    pg_inc_t *inc;
    int rc;
    if (src->server_version < 140000) {
        if (progress)
            siphon_log(SIPHON_LOG_WARNING, "pg", "the stored position holds an on-demand "
                       "snapshot, which needs PostgreSQL 14 or later: not resumed");
        return 0;
    }
    if (!(inc = calloc(1, sizeof(*inc))) ||
        !(inc->names = calloc((size_t)(ntables ? ntables : 1), sizeof(char *))) ||
        !(inc->ring = calloc(INC_RING, sizeof(uint32_t)))) {
        if (inc)
            free(inc->names);
        free(inc);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    src->inc = inc;
    siphon_arena_init(&inc->mem, 256 * 1024);
    for (int i = 0; i < ntables; i++) {
        size_t n = strlen(tables[i].table) + 300;
        if (!(inc->names[i] = malloc(n))) {
            siphon_pg__inc_free(src);
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        }
        snprintf(inc->names[i], n, "%s.%s",
                 tables[i].schema && tables[i].schema[0] ? tables[i].schema : "public",
                 tables[i].table);
        inc->nnames++;
    }
    inc->chunk_rows = cfg->source.snapshot_chunk_rows > 0 ? cfg->source.snapshot_chunk_rows
                                                          : 10000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(inc->run, sizeof(inc->run), "%ld.%lld.%ld", (long)getpid(), (long long)ts.tv_sec,
             (long)ts.tv_nsec);
    siphon_progress_init(&inc->progress, "pg", "on-demand snapshot", "rows", -1);
    src->st.hooks = &inc_hooks;
    src->st.hooks_opaque = src;
    if (progress && (rc = resume(src, progress)) < 0) {
        siphon_pg__inc_free(src);
        return siphon_err(errbuf, errsize, rc, "out of memory");
    }
    return 0;
}

/* ---- siphon snapshot: the request, and its status ---- */

static int query_one(PGconn *c, const char *sql, int nparams, const char *const *params,
                     PGresult **out, char *errbuf, size_t errsize, const char *what)
{
    char msg[512];
    *out = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*out) == PGRES_TUPLES_OK)
        return 0;
    const char *state = PQresultErrorField(*out, PG_DIAG_SQLSTATE);
    int privilege = state && strcmp(state, "42501") == 0;
    siphon_pg__trim(PQresultErrorMessage(*out), msg, sizeof(msg));
    PQclear(*out);
    *out = NULL;
    return siphon_err(errbuf, errsize, privilege ? SIPHON_EINVAL : SIPHON_ECONN,
                      "could not %s: %s", what, msg);
}

int siphon_pg__inc_signal(const siphon_config_t *cfg, const char *schema, const char *table,
                          char *token, size_t tokensize, char *errbuf, size_t errsize)
{
    char msg[512], redacted[512], full[600];
    PGresult *res = NULL;
    char *text = NULL;
    int rc = 0;
    if (!cfg || !table || !token || tokensize == 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not request a snapshot: bad arguments");
    schema = schema && schema[0] ? schema : "public";
    snprintf(full, sizeof(full), "%s.%s", schema, table);
    const char *slot = cfg->source.slot ? cfg->source.slot : "";
    const char *pub = cfg->source.publication ? cfg->source.publication : "";
    siphon_config_redact(cfg->source.conninfo ? cfg->source.conninfo : "", redacted,
                         sizeof(redacted));
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {cfg->source.conninfo ? cfg->source.conninfo : "", "siphon-snapshot",
                          NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        rc = siphon_err(errbuf, errsize, SIPHON_ECONN, "could not connect to PostgreSQL (%s): %s",
                        redacted, siphon_pg__trim(c ? PQerrorMessage(c) : NULL, msg, sizeof(msg)));
        goto out;
    }
    if (PQserverVersion(c) < 140000) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not request a snapshot of %s: on-demand snapshots need PostgreSQL "
                        "14 or later (pgoutput's messages option); this server is %d.%d (take a "
                        "new initial snapshot instead: see docs/snapshots.md)", full,
                        PQserverVersion(c) / 10000, PQserverVersion(c) % 10000);
        goto out;
    }
    {
        const char *p[] = {slot};
        if ((rc = query_one(c, "SELECT active FROM pg_catalog.pg_replication_slots WHERE "
                               "slot_name = $1 AND database = pg_catalog.current_database()",
                            1, p, &res, errbuf, errsize, "read the replication slots")) < 0)
            goto out;
        if (PQntuples(res) == 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOTFOUND,
                            "could not request a snapshot of %s: replication slot \"%s\" does not "
                            "exist in this database, so no connector streams from it (start it "
                            "with siphon run --config FILE, then run this again)", full, slot);
            goto out;
        }
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not request a snapshot of %s: no siphon is streaming from "
                            "replication slot \"%s\" right now (it is stopped, or still taking "
                            "its initial snapshot); start siphon run --config FILE and run this "
                            "again once it streams", full, slot);
            goto out;
        }
        PQclear(res);
        res = NULL;
    }
    {
        const char *p[] = {schema, table, pub};
        if ((rc = query_one(c,
                            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid "
                            "= c.oid AND (i.indisprimary OR i.indisreplident)), EXISTS (SELECT 1 "
                            "FROM pg_catalog.pg_publication_tables p WHERE p.pubname = $3 AND "
                            "p.schemaname = $1 AND p.tablename = $2) FROM pg_catalog.pg_class c "
                            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                            "n.nspname = $1 AND c.relname = $2",
                            3, p, &res, errbuf, errsize, "look up the table")) < 0)
            goto out;
        if (PQntuples(res) == 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOTFOUND,
                            "could not request a snapshot of %s: the table does not exist in "
                            "database \"%s\"", full, PQdb(c));
            goto out;
        }
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not request a snapshot of %s: the table has no primary key "
                            "or replica identity index, and an on-demand snapshot needs a key to "
                            "reconcile its rows with the stream (add one, or take a new initial "
                            "snapshot: docs/snapshots.md)", full);
            goto out;
        }
        if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not request a snapshot of %s: the table is not in publication "
                            "\"%s\", so the running connector does not stream it (siphon run "
                            "adds every mapped table; restart it after adding the mapping)",
                            full, pub);
            goto out;
        }
        PQclear(res);
        res = NULL;
    }
    {
        json_t *j = json_pack("{s:s, s:s, s:s}", "siphon", "snapshot", "slot", slot, "table", full);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        const char *p[] = {text};
        rc = query_one(c, "SELECT pg_catalog.pg_logical_emit_message(true, '" INC_PREFIX "', $1), "
                          "pg_catalog.pg_current_wal_lsn()::text",
                       1, p, &res, errbuf, errsize, "send the snapshot request");
        if (rc == SIPHON_EINVAL) {
            char tmp[1024];
            snprintf(tmp, sizeof(tmp), "%s", errbuf);
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "%s; as a superuser, run: GRANT EXECUTE ON FUNCTION "
                            "pg_catalog.pg_logical_emit_message(boolean, text, text) TO %s",
                            tmp, PQuser(c));
        }
        if (rc < 0)
            goto out;
        /* pg_current_wal_lsn() after the autocommit: at or past the end of the request's
         * commit record, so a stored position at or past it has seen the request */
        if ((size_t)snprintf(token, tokensize, "%s %s", PQgetvalue(res, 0, 1), full) >= tokensize)
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not request a snapshot: "
                            "table name too long");
    }
out:
    PQclear(res);
    free(text);
    if (c)
        PQfinish(c);
    return rc;
}

int siphon_pg__inc_status(const char *stored_pos, const char *token, uint64_t *rows,
                          uint64_t *chunks, char *errbuf, size_t errsize)
{
    uint64_t want, have;
    char lsn[64];
    const char *sp = token ? strchr(token, ' ') : NULL;
    if (!sp || (size_t)(sp - token) >= sizeof(lsn))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read the snapshot request "
                          "\"%s\"", token ? token : "");
    snprintf(lsn, sizeof(lsn), "%.*s", (int)(sp - token), token);
    if (siphon_pg__lsn_parse(&want, lsn) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read the snapshot request "
                          "\"%s\"", token);
    *rows = *chunks = 0;
    if (!stored_pos)
        return 0;
    const char *psp = strchr(stored_pos, ' ');
    size_t n = psp ? (size_t)(psp - stored_pos) : strlen(stored_pos);
    snprintf(lsn, sizeof(lsn), "%.*s", (int)(n < 63 ? n : 63), stored_pos);
    if (siphon_pg__lsn_parse(&have, lsn) < 0 || have < want)
        return 0;
    if (!psp || strncmp(psp, " isnap ", 7) != 0)
        return 2;
    siphon_buf_t name = {0};
    siphon_pg__snap_escape(&name, sp + 1, strlen(sp + 1));
    siphon_buf_appendc(&name, '=');
    siphon_buf_appendc(&name, 0);
    int state = 2;
    for (const char *p = strstr(psp, (const char *)name.data); p;
         p = strstr(p + 1, (const char *)name.data)) {
        if (p[-1] != ' ')
            continue;
        unsigned long long c = 0, r = 0;
        if (sscanf(p + name.len - 1, "0,%llu,%llu", &c, &r) == 2) {
            *chunks = c;
            *rows = r;
        }
        state = 1;
        break;
    }
    siphon_buf_free(&name);
    return state;
}
