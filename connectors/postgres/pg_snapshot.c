/*
 * pg_snapshot.c - the PostgreSQL connector's initial snapshot: every mapped table read in
 * key-ordered chunks and returned as 'r' changes before the stream starts, with its progress in
 * the stored position so that an interrupted snapshot resumes at the last acknowledged chunk.
 *
 * Consistency (docs/snapshots.md). When the slot is created for the snapshot, it is created on
 * a replication connection with EXPORT_SNAPSHOT; the snapshot connections import that snapshot
 * (REPEATABLE READ, SET TRANSACTION SNAPSHOT) before the exporting connection goes, so the rows
 * read are exactly the database at the slot's consistent point, and streaming then starts at
 * that point: every row present appears once as 'r', every later change once as a change.
 * When the slot already exists (snapshot: always, a first start with a slot made by the DBA, or
 * a snapshot resumed after a crash: the exported snapshot died with the process), the rows are
 * read in a fresh REPEATABLE READ snapshot taken after the stored (or the slot's) position, and
 * the stream then starts at that position: changes between the two appear after the 'r' rows
 * (at-least-once: duplicates, never a loss; the last event of each key is its current state).
 *
 * Chunks. Each chunk is one BEGIN .. 'r' CHANGEs .. COMMIT group: SELECT ... WHERE (key) >
 * (last key) ORDER BY key LIMIT chunk_rows, on the primary key (or the replica identity, or
 * ctid when the table has neither). Up to source.snapshot_connections connections share the
 * snapshot (the first exports it with pg_export_snapshot() when the slot's exported snapshot is
 * not available) and read different tables at once; each next() sends a chunk query on every
 * idle connection and returns a chunk that has arrived, taking the connections in turn. Every
 * record carries the stream start position as num, so acknowledging a chunk never moves the
 * slot. The BEGIN's text "snap:<table>:<chunk>" names
 * the chunk (event ids are "snap:<table>:<chunk>:<row>"); the COMMIT's text is the resumable
 * progress "<LSN> snapshot <table>=<done>,<chunks>,<rows>[,<last key value>...] ...", stored in
 * the offsets file under the usual rule (only once the chunk and everything before it were
 * delivered); the last chunk's COMMIT carries the plain LSN.
 *
 * Progress: on a terminal (stderr), a live line per table: rows, rows/s, percent of the
 * planner's estimate (pg_class.reltuples), ETA; otherwise an INFO log line every 5 s and one
 * when a table is done.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "connectors/postgres/pg_int.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

/* The longest progress text stored (the pipeline keeps positions of up to 4 KiB). */
#define PG_SNAP_PROGRESS_MAX 3800

typedef struct pg_snap {
    pg_snap_table_t *t;
    int nt;
    int chunk_rows;
    PGconn **conns;          /* nconns connections sharing one snapshot */
    int *busy;               /* per connection: the table whose chunk it reads, or -1 */
    int nconns;
    int last_ci;             /* the connection whose chunk was returned last */
    uint64_t pos;            /* the stream's start: num of every snapshot record */
    pg_snap_progress_t progress;
    int64_t started_ms;
} pg_snap_t;

const char *siphon_pg__trim(const char *msg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", msg && msg[0] ? msg : "connection lost");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

int siphon_pg__snap_escape(siphon_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == ':' || c == '/';
        if (plain) {
            if (siphon_buf_appendc(out, c) < 0)
                return SIPHON_ENOMEM;
        } else if (siphon_buf_appendc(out, '%') < 0 || siphon_buf_appendc(out, (uint8_t)hex[c >> 4]) < 0 ||
                   siphon_buf_appendc(out, (uint8_t)hex[c & 15]) < 0) {
            return SIPHON_ENOMEM;
        }
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

long siphon_pg__snap_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int h = hexval(r[1]), l = h < 0 ? -1 : hexval(r[2]);
        if (h < 0 || l < 0)
            return -1;
        *w++ = (char)(h * 16 + l);
        r += 2;
    }
    *w = '\0';
    return (long)(w - s);
}

int siphon_pg__snap_table_init(pg_snap_table_t *t, const char *schema, const char *table)
{
    t->schema = strdup(schema && schema[0] ? schema : "public");
    t->table = strdup(table);
    return t->schema && t->table ? 0 : SIPHON_ENOMEM;
}

void siphon_pg__snap_table_free(pg_snap_table_t *t)
{
    free(t->schema);
    free(t->table);
    free(t->keycols);
    if (t->last)
        for (int k = 0; k < (t->nkeys ? t->nkeys : 1); k++)
            free(t->last[k]);
    free(t->last);
}

void siphon_pg__snap_free(siphon_source_t *src)
{
    pg_snap_t *s = src ? src->snap : NULL;
    if (!s)
        return;
    for (int i = 0; i < s->nt; i++)
        siphon_pg__snap_table_free(&s->t[i]);
    free(s->t);
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i])
            PQfinish(s->conns[i]);
    free(s->conns);
    free(s->busy);
    free(s);
    src->snap = NULL;
}

PGconn *siphon_pg__snap_connect(siphon_source_t *src, int *rc, char *errbuf, size_t errsize)
{
    const char *keys[] = {"dbname", "options", "client_encoding", "fallback_application_name",
                          NULL};
    const char *vals[] = {src->conninfo, src->options, src->st.sql_ascii ? "SQL_ASCII" : "UTF8",
                          src->app_name, NULL};
    char msg[512];
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        *rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        *rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                         "could not connect to PostgreSQL for the snapshot (%s): %s",
                         src->redacted, siphon_pg__trim(PQerrorMessage(c), msg, sizeof(msg)));
        PQfinish(c);
        return NULL;
    }
    *rc = 0;
    return c;
}

/* The snapshot connections: same session settings as the replication session. */
static int snap_connect(siphon_source_t *src, pg_snap_t *s, int n, char *errbuf, size_t errsize)
{
    int rc = 0;
    if (!(s->conns = calloc((size_t)n, sizeof(PGconn *))) ||
        !(s->busy = calloc((size_t)n, sizeof(int))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    for (; s->nconns < n; s->nconns++) {
        s->busy[s->nconns] = -1;
        if (!(s->conns[s->nconns] = siphon_pg__snap_connect(src, &rc, errbuf, errsize)))
            return rc;
    }
    return 0;
}

/* Every snapshot connection (from `from` on) opens a transaction in the snapshot `name`. */
static int import_snapshot(pg_snap_t *s, int from, const char *name, char *errbuf,
                           size_t errsize)
{
    int rc = 0;
    for (int i = from; i < s->nconns && rc == 0; i++) {
        char *lit = PQescapeLiteral(s->conns[i], name, strlen(name));
        siphon_buf_t sql = {0};
        if (!lit)
            return SIPHON_ENOMEM;
        siphon_buf_printf(&sql, "SET TRANSACTION SNAPSHOT %s", lit);
        PQfreemem(lit);
        if (siphon_buf_appendc(&sql, 0) < 0)
            rc = SIPHON_ENOMEM;
        if (rc == 0)
            rc = siphon_pg__exec_ok(s->conns[i], "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                         "start the snapshot transaction", errbuf, errsize);
        if (rc == 0)
            rc = siphon_pg__exec_ok(s->conns[i], (const char *)sql.data, "import the snapshot",
                                    errbuf, errsize);
        siphon_buf_free(&sql);
    }
    return rc;
}

/* A fresh snapshot shared by every connection: the first exports it, the others import it. */
static int fresh_snapshot(pg_snap_t *s, char *errbuf, size_t errsize)
{
    char msg[512];
    int rc = siphon_pg__exec_ok(s->conns[0], "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                     "start the snapshot transaction", errbuf, errsize);
    if (rc < 0 || s->nconns == 1)
        return rc;
    PGresult *res = PQexec(s->conns[0], "SELECT pg_catalog.pg_export_snapshot()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not export the snapshot to the other snapshot connections: %s "
                        "(set snapshot_connections: 1)",
                        siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        return rc;
    }
    rc = import_snapshot(s, 1, PQgetvalue(res, 0, 0), errbuf, errsize);
    PQclear(res);
    return rc;
}

int siphon_pg__exec_ok(PGconn *c, const char *sql, const char *what, char *errbuf,
                       size_t errsize)
{
    char msg[512];
    PGresult *res = PQexec(c, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg));
    PQclear(res);
    if (ok)
        return 0;
    return siphon_err(errbuf, errsize,
                      PQstatus(c) == CONNECTION_OK ? SIPHON_EINVAL : SIPHON_ECONN,
                      "could not %s: %s", what, msg);
}

/* Whether the slot exists; its confirmed position into *confirmed. */
static int slot_lookup(siphon_source_t *src, int *exists, uint64_t *confirmed, char *errbuf,
                       size_t errsize)
{
    char msg[512];
    const char *p[] = {src->slot};
    PGresult *res = PQexecParams(src->cat,
                                 "SELECT confirmed_flush_lsn::text FROM "
                                 "pg_catalog.pg_replication_slots WHERE slot_name = $1",
                                 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                            "could not read replication slot \"%s\": %s", src->slot,
                            siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        return rc;
    }
    *exists = PQntuples(res) == 1;
    *confirmed = 0;
    if (*exists && !PQgetisnull(res, 0, 0))
        siphon_pg__lsn_parse(confirmed, PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Create the slot on a replication connection, exporting its snapshot, and import it on the
 * snapshot connection before the exporting connection goes. */
static int create_slot_exported(siphon_source_t *src, pg_snap_t *s, char *errbuf, size_t errsize)
{
    const char *keys[] = {"dbname", "replication", "options", "fallback_application_name", NULL};
    const char *vals[] = {src->conninfo, "database", src->options, src->app_name, NULL};
    char msg[512], *q = NULL;
    PGresult *res = NULL;
    siphon_buf_t sql = {0};
    int rc = 0;
    PGconn *rc_conn = PQconnectdbParams(keys, vals, 1);

    if (!rc_conn || PQstatus(rc_conn) != CONNECTION_OK) {
        rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                        "could not connect for replication to create slot \"%s\" (%s): %s",
                        src->slot, src->redacted,
                        siphon_pg__trim(rc_conn ? PQerrorMessage(rc_conn) : "out of memory", msg,
                                 sizeof(msg)));
        goto out;
    }
    siphon_log(SIPHON_LOG_INFO, "pg",
               "creating replication slot \"%s\" with an exported snapshot (waits for "
               "transactions open right now to end)", src->slot);
    if (!(q = PQescapeIdentifier(rc_conn, src->slot, strlen(src->slot)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    siphon_buf_printf(&sql, "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput EXPORT_SNAPSHOT", q);
    if (siphon_buf_appendc(&sql, 0) < 0) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    res = PQexec(rc_conn, (const char *)sql.data);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 3 ||
        siphon_pg__lsn_parse(&s->pos, PQgetvalue(res, 0, 1)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not create replication slot \"%s\": %s; the role needs the "
                        "REPLICATION attribute (ALTER ROLE ... REPLICATION)",
                        src->slot, siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        goto out;
    }
    rc = import_snapshot(s, 0, PQgetvalue(res, 0, 2), errbuf, errsize);
out:
    PQclear(res);
    PQfreemem(q);
    siphon_buf_free(&sql);
    if (rc_conn)
        PQfinish(rc_conn);
    return rc;
}

/* Parse "<table>=<done>,<chunks>,<rows>[,<key>...]" entries of a stored progress into the
 * matching tables. */
void siphon_pg__snap_apply_progress(pg_snap_table_t *tables, int nt, const char *progress)
{
    char *copy = strdup(progress ? progress : ""), *save = NULL;
    if (!copy)
        return;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *fields = eq + 1, *fsave = NULL;
        if (siphon_pg__snap_unescape(tok) < 0)
            continue;
        for (int i = 0; i < nt; i++) {
            pg_snap_table_t *t = &tables[i];
            char full[600];
            snprintf(full, sizeof(full), "%s.%s", t->schema, t->table);
            if (strcmp(full, tok) != 0)
                continue;
            char *f = strtok_r(fields, ",", &fsave);
            t->done = f && strcmp(f, "1") == 0;
            if ((f = strtok_r(NULL, ",", &fsave)))
                t->chunks = strtoull(f, NULL, 10);
            if ((f = strtok_r(NULL, ",", &fsave)))
                t->rows = strtoull(f, NULL, 10);
            int n = t->nkeys ? t->nkeys : 1, k = 0;
            char **last = calloc((size_t)n, sizeof(char *));
            while (last && k < n && (f = strtok_r(NULL, ",", &fsave))) {
                if (siphon_pg__snap_unescape(f) < 0 || !(last[k] = strdup(f)))
                    break;
                k++;
            }
            if (last && k == n) {
                t->last = last;
            } else if (last) {
                for (int j = 0; j < k; j++)
                    free(last[j]);
                free(last);
            }
        }
    }
    free(copy);
}

int siphon_pg__snap_plan(siphon_source_t *src, pg_snap_table_t *t, char *errbuf, size_t errsize)
{
    const siphon_relation_t *rel = NULL;
    int rc = siphon_pg__cat_describe(src, t->schema, t->table, &rel, errbuf, errsize);
    if (rc < 0)
        return rc;
    t->rel = (const pg_rel_t *)rel;
    if (!(t->keycols = calloc((size_t)(rel->ncols ? rel->ncols : 1), sizeof(int))))
        return SIPHON_ENOMEM;
    for (int pass = 0; pass < 2 && t->nkeys == 0; pass++)
        for (int i = 0; i < rel->ncols; i++)
            if (pass == 0 ? rel->cols[i].is_pkey : rel->cols[i].is_key)
                t->keycols[t->nkeys++] = i;
    if (t->nkeys == rel->ncols && t->nkeys > 0) {
        /* REPLICA IDENTITY FULL without a primary key: every column; ctid is simpler */
        int any_pkey = 0;
        for (int i = 0; i < rel->ncols; i++)
            any_pkey |= rel->cols[i].is_pkey;
        if (!any_pkey)
            t->nkeys = 0;
    }
    const char *p[] = {t->schema, t->table};
    PGresult *res = PQexecParams(src->cat,
                                 "SELECT c.reltuples::float8 FROM pg_catalog.pg_class c JOIN "
                                 "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                                 "n.nspname = $1 AND c.relname = $2",
                                 2, NULL, p, NULL, NULL, 0);
    t->estimate = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                      ? strtod(PQgetvalue(res, 0, 0), NULL)
                      : -1;
    PQclear(res);
    return 0;
}

int siphon_pg__snap_setup(siphon_source_t *src, const siphon_config_t *cfg,
                          const siphon_table_ref_t *tables, int ntables, const char *progress,
                          int have_resume, char *errbuf, size_t errsize)
{
    int mode = cfg->source.snapshot, exists = 0, rc;
    uint64_t confirmed = 0;
    pg_snap_t *s = NULL;

    if (mode == SIPHON_SNAPSHOT_NEVER)
        return 0;
    if ((rc = slot_lookup(src, &exists, &confirmed, errbuf, errsize)) < 0)
        return rc;
    int want = progress != NULL || mode == SIPHON_SNAPSHOT_ALWAYS || !have_resume ||
               (mode == SIPHON_SNAPSHOT_WHEN_NEEDED && !exists);
    src->stop_after_snapshot = mode == SIPHON_SNAPSHOT_INITIAL_ONLY;
    if (!want)
        return 0;
    if (!(s = calloc(1, sizeof(*s))) ||
        !(s->t = calloc((size_t)(ntables ? ntables : 1), sizeof(*s->t)))) {
        free(s);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    src->snap = s;
    s->chunk_rows = cfg->source.snapshot_chunk_rows > 0 ? cfg->source.snapshot_chunk_rows : 10000;
    siphon_progress_init(&s->progress, "pg", "snapshot", "rows", -1);
    s->started_ms = s->progress.last_ms = siphon_clock_now_ms();
    for (int i = 0; i < ntables; i++) {
        pg_snap_table_t *t = &s->t[s->nt++];
        if (siphon_pg__snap_table_init(t, tables[i].schema, tables[i].table) < 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = siphon_pg__snap_plan(src, t, errbuf, errsize)) < 0)
            goto fail;
    }
    {
        int n = cfg->source.snapshot_connections > 0 ? cfg->source.snapshot_connections : 2;
        if (n > s->nt)
            n = s->nt > 0 ? s->nt : 1;
        if ((rc = snap_connect(src, s, n, errbuf, errsize)) < 0)
            goto fail;
    }
    if (!exists && src->create_slot && (!have_resume || mode == SIPHON_SNAPSHOT_WHEN_NEEDED)) {
        if (have_resume)
            siphon_log(SIPHON_LOG_WARNING, "pg",
                       "replication slot \"%s\" is gone, so the stored position is no longer "
                       "available (snapshot: when_needed): creating it again and taking a new "
                       "snapshot of every table", src->slot);
        if ((rc = create_slot_exported(src, s, errbuf, errsize)) < 0)
            goto fail;
        src->start_pos = s->pos; /* stream from exactly the consistent point */
    } else {
        if (mode == SIPHON_SNAPSHOT_WHEN_NEEDED && !exists && have_resume) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not take a snapshot for slot \"%s\": the slot is gone and "
                            "create_slot is false (create it, or set create_slot: true)",
                            src->slot);
            goto fail;
        }
        siphon_pg__snap_apply_progress(s->t, s->nt, progress);
        /* The stream starts at the stored (or the slot's) position, before this snapshot. */
        s->pos = src->start_pos ? src->start_pos : confirmed;
        src->start_pos = s->pos;
        if ((rc = fresh_snapshot(s, errbuf, errsize)) < 0)
            goto fail;
        if (progress)
            siphon_log(SIPHON_LOG_INFO, "pg",
                       "resuming the interrupted snapshot at the last acknowledged chunk of each "
                       "table, in a new snapshot; changes made meanwhile follow from the stream");
    }
    char at[32];
    siphon_pg__lsn_format(s->pos, at, sizeof(at));
    siphon_log(SIPHON_LOG_INFO, "pg", "snapshot of %d table(s) in chunks of %d rows on %d "
               "connection(s); streaming from %s afterwards", s->nt, s->chunk_rows, s->nconns, at);
    return 0;
fail:
    siphon_pg__snap_free(src);
    return rc;
}

static const char *full_name(const pg_snap_table_t *t, char *buf, size_t size)
{
    if (strcmp(t->schema, "public") == 0)
        snprintf(buf, size, "%s", t->table);
    else
        snprintf(buf, size, "%s.%s", t->schema, t->table);
    return buf;
}

int siphon_pg__snap_progress_entry(siphon_buf_t *b, const pg_snap_table_t *t)
{
    char full[600], tmp[64];
    snprintf(full, sizeof(full), "%s.%s", t->schema, t->table);
    siphon_buf_appendc(b, ' ');
    siphon_pg__snap_escape(b, full, strlen(full));
    if (t->done)
        snprintf(tmp, sizeof(tmp), "=1");
    else
        snprintf(tmp, sizeof(tmp), "=0,%" PRIu64 ",%" PRIu64, t->chunks, t->rows);
    siphon_buf_append(b, tmp, strlen(tmp));
    if (!t->done && t->last)
        for (int k = 0; k < (t->nkeys ? t->nkeys : 1); k++) {
            siphon_buf_appendc(b, ',');
            siphon_pg__snap_escape(b, t->last[k], strlen(t->last[k]));
        }
    return siphon_buf_appendc(b, 0) < 0 ? SIPHON_ENOMEM : (b->len--, 0);
}

/* The progress text after this chunk, in the arena; NULL (plain LSN) once every table is done. */
static char *progress_text(pg_snap_t *s, siphon_arena_t *a)
{
    siphon_buf_t b = {0};
    char at[32];
    int all = 1;
    char *out = NULL;
    for (int i = 0; i < s->nt; i++)
        all &= s->t[i].done;
    if (all)
        return NULL;
    siphon_pg__lsn_format(s->pos, at, sizeof(at));
    siphon_buf_printf(&b, "%s snapshot", at);
    for (int i = 0; i < s->nt; i++) {
        /* A table left out starts from its beginning on resume (duplicates, never a loss):
         * tables not started yet are left out, and so is whatever would not fit in the
         * offsets file's position (PG_SNAP_PROGRESS_MAX). */
        pg_snap_table_t *t = &s->t[i];
        siphon_buf_t e = {0};
        if (!t->done && !t->last)
            continue;
        siphon_pg__snap_progress_entry(&e, t);
        if (b.len + e.len < PG_SNAP_PROGRESS_MAX)
            siphon_buf_append(&b, e.data, e.len);
        siphon_buf_free(&e);
    }
    if (siphon_buf_appendc(&b, 0) == 0)
        out = siphon_arena_strndup(a, (const char *)b.data, b.len);
    siphon_buf_free(&b);
    return out;
}

void siphon_pg__snap_show(pg_snap_progress_t *pr, const pg_snap_table_t *t, int force)
{
    char name[600];
    siphon_progress_item_t it = {
        .name = full_name(t, name, sizeof(name)),
        .done = t->rows,
        .estimate = t->estimate,
        .started_ms = t->started_ms,
        .finished = t->done,
        .no_estimate_hint = "the table was never analyzed",
    };
    siphon_progress_show(pr, &it, force);
}

int siphon_pg__snap_chunk_sql(siphon_buf_t *sql, PGconn *c, const pg_snap_table_t *t,
                              int chunk_rows, int literal_keys)
{
    const siphon_relation_t *r = &t->rel->rel;
    siphon_buf_t keys = {0}, params = {0};
    int rc = SIPHON_ENOMEM;

    siphon_buf_printf(sql, "SELECT ");
    for (int i = 0; i < r->ncols; i++) {
        char *q = PQescapeIdentifier(c, r->cols[i].name, strlen(r->cols[i].name));
        if (!q)
            goto out;
        siphon_buf_printf(sql, "%s%s", i ? ", " : "", q);
        PQfreemem(q);
    }
    if (t->nkeys == 0) {
        siphon_buf_printf(sql, "%sctid", r->ncols ? ", " : "");
        siphon_buf_printf(&keys, "ctid");
        siphon_buf_printf(&params, "$1::tid");
    } else {
        for (int k = 0; k < t->nkeys; k++) {
            const char *nm = r->cols[t->keycols[k]].name;
            char *q = PQescapeIdentifier(c, nm, strlen(nm));
            char *lit = literal_keys && t->last
                            ? PQescapeLiteral(c, t->last[k], strlen(t->last[k]))
                            : NULL;
            if (!q || (literal_keys && t->last && !lit)) {
                PQfreemem(q);
                PQfreemem(lit);
                goto out;
            }
            siphon_buf_printf(&keys, "%s%s", k ? ", " : "", q);
            if (lit)
                siphon_buf_printf(&params, "%s%s", k ? ", " : "", lit);
            else
                siphon_buf_printf(&params, "%s$%d", k ? ", " : "", k + 1);
            PQfreemem(q);
            PQfreemem(lit);
        }
    }
    siphon_buf_appendc(&keys, 0);
    siphon_buf_appendc(&params, 0);
    {
        char *qs = PQescapeIdentifier(c, t->schema, strlen(t->schema));
        char *qt = PQescapeIdentifier(c, t->table, strlen(t->table));
        if (qs && qt)
            siphon_buf_printf(sql, " FROM %s.%s", qs, qt);
        PQfreemem(qs);
        PQfreemem(qt);
        if (!qs || !qt)
            goto out;
    }
    if (t->last)
        siphon_buf_printf(sql, " WHERE (%s) > (%s)", (const char *)keys.data,
                          (const char *)params.data);
    siphon_buf_printf(sql, " ORDER BY %s LIMIT %d", (const char *)keys.data, chunk_rows);
    if (siphon_buf_appendc(sql, 0) < 0)
        goto out;
    sql->len--; /* NUL-terminated, and more may be appended */
    rc = 0;
out:
    siphon_buf_free(&keys);
    siphon_buf_free(&params);
    return rc;
}

/* Build the chunk query of t and send it on connection c (asynchronously). */
static int chunk_send(pg_snap_t *s, PGconn *c, pg_snap_table_t *t, char *errbuf, size_t errsize)
{
    siphon_buf_t sql = {0};
    char msg[512];
    int rc = siphon_pg__snap_chunk_sql(&sql, c, t, s->chunk_rows, 0);
    if (rc < 0) {
        rc = siphon_err(errbuf, errsize, rc, "could not build a snapshot query: out of memory");
    } else if (!PQsendQueryParams(c, (const char *)sql.data,
                                  t->last ? (t->nkeys ? t->nkeys : 1) : 0, NULL,
                                  (const char *const *)t->last, NULL, NULL, 0)) {
        rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                        "could not read a snapshot chunk of %s.%s (chunk %" PRIu64 "): %s; "
                        "restart Siphon to resume the snapshot at the last acknowledged chunk",
                        t->schema, t->table, t->chunks,
                        siphon_pg__trim(PQerrorMessage(c), msg, sizeof(msg)));
    }
    siphon_buf_free(&sql);
    return rc;
}

int siphon_pg__snap_decode_row(siphon_arena_t *a, const pg_snap_table_t *t, PGresult *res, int i,
                               siphon_row_t **out, char *errbuf, size_t errsize)
{
    const siphon_relation_t *r = &t->rel->rel;
    siphon_row_t *row = siphon_arena_alloc(a, sizeof(*row));
    siphon_value_t *vals = siphon_arena_alloc(a, sizeof(siphon_value_t) *
                                                     (size_t)(r->ncols ? r->ncols : 1));
    if (!row || !vals)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                          "could not read the snapshot: out of memory");
    row->ncols = r->ncols;
    row->vals = vals;
    for (int c = 0; c < r->ncols; c++) {
        siphon_value_t *v = &vals[c];
        memset(v, 0, sizeof(*v));
        if (PQgetisnull(res, i, c)) {
            v->type = SIPHON_V_NULL;
            continue;
        }
        size_t len = (size_t)PQgetlength(res, i, c);
        char *p = siphon_arena_strndup(a, PQgetvalue(res, i, c), len), why[256];
        if (!p)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                              "could not read the snapshot: out of memory");
        if (siphon_pg__decode(v, t->rel->kinds[c], p, len, why, sizeof(why)) < 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not decode column \"%s\" of %s.%s in the snapshot: %s",
                              r->cols[c].name, t->schema, t->table, why);
    }
    *out = row;
    return 0;
}

int siphon_pg__snap_set_last(pg_snap_table_t *t, PGresult *res, int i)
{
    int nk = t->nkeys ? t->nkeys : 1;
    char **last = calloc((size_t)nk, sizeof(char *));
    if (!last)
        return SIPHON_ENOMEM;
    for (int k = 0; k < nk; k++) {
        int col = t->nkeys ? t->keycols[k] : t->rel->rel.ncols;
        if (!(last[k] = strdup(PQgetvalue(res, i, col)))) {
            for (int j = 0; j < k; j++)
                free(last[j]);
            free(last);
            return SIPHON_ENOMEM;
        }
    }
    if (t->last)
        for (int k = 0; k < nk; k++)
            free(t->last[k]);
    free(t->last);
    t->last = last;
    return 0;
}

/* The result of connection ci's chunk: one BEGIN, 'r' CHANGE..., COMMIT group in src->st. */
static int chunk_emit(siphon_source_t *src, pg_snap_t *s, int ci, char *errbuf, size_t errsize)
{
    pg_stream_t *st = &src->st;
    int ti = s->busy[ci];
    pg_snap_table_t *t = &s->t[ti];
    char name[600], msg[512];
    int rc = 0;
    PGresult *res = PQgetResult(s->conns[ci]), *extra;
    while ((extra = PQgetResult(s->conns[ci])))
        PQclear(extra);
    s->busy[ci] = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = siphon_err(errbuf, errsize,
                        PQstatus(s->conns[ci]) == CONNECTION_OK ? SIPHON_EINVAL : SIPHON_ECONN,
                        "could not read a snapshot chunk of %s.%s (chunk %" PRIu64 "): %s; "
                        "restart Siphon to resume the snapshot at the last acknowledged chunk",
                        t->schema, t->table, t->chunks,
                        siphon_pg__trim(PQresultErrorMessage(res), msg, sizeof(msg)));
        PQclear(res);
        return rc;
    }

    int nrows = PQntuples(res);
    char *btext = siphon_arena_alloc(&st->arena, 640);
    siphon_change_t *b = btext ? siphon_pg__stream_push(st, SIPHON_REC_BEGIN) : NULL;
    if (!b)
        goto nomem;
    snprintf(btext, 640, "snap:%s:%" PRIu64, full_name(t, name, sizeof(name)), t->chunks);
    b->pos.num = s->pos;
    b->pos.text = btext;
    for (int i = 0; i < nrows; i++) {
        siphon_row_t *row;
        if ((rc = siphon_pg__snap_decode_row(&st->arena, t, res, i, &row, errbuf, errsize)) < 0) {
            PQclear(res);
            return rc;
        }
        siphon_change_t *c = siphon_pg__stream_push(st, SIPHON_REC_CHANGE);
        if (!c)
            goto nomem;
        c->op = SIPHON_OP_READ;
        c->rel = &t->rel->rel;
        c->after = row;
        c->pos = b->pos;
        c->snapshot = 1;
    }
    if (nrows > 0 && siphon_pg__snap_set_last(t, res, nrows - 1) < 0)
        goto nomem;
    t->rows += (uint64_t)nrows;
    t->chunks++;
    if (nrows < s->chunk_rows)
        t->done = 1;
    PQclear(res);
    res = NULL;
    /* Ask for the table's next chunk now, on the same connection, so that the server reads
     * it while the pipeline maps, encodes and produces this one (without this, server and
     * pipeline took turns: +11% measured in bench/snapshot_to_kafka.c on a loaded machine). */
    if (!t->done) {
        if ((rc = chunk_send(s, s->conns[ci], t, errbuf, errsize)) < 0)
            return rc;
        s->busy[ci] = ti;
    }

    siphon_change_t *cm = siphon_pg__stream_push(st, SIPHON_REC_COMMIT);
    if (!cm)
        goto nomem;
    cm->pos.num = s->pos;
    cm->pos.text = progress_text(s, &st->arena);
    siphon_pg__snap_show(&s->progress, t, t->done);
    return 0;
nomem:
    PQclear(res);
    return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not read the snapshot: out of memory");
}

static int table_busy(const pg_snap_t *s, int ti)
{
    for (int i = 0; i < s->nconns; i++)
        if (s->busy[i] == ti)
            return 1;
    return 0;
}

int siphon_pg__snap_next(siphon_source_t *src, char *errbuf, size_t errsize)
{
    pg_snap_t *s = src->snap;
    int rc, reading = 0;

    /* every idle connection takes the next table that is neither done nor being read */
    for (int ci = 0; ci < s->nconns; ci++) {
        for (int ti = 0; s->busy[ci] < 0 && ti < s->nt; ti++) {
            pg_snap_table_t *t = &s->t[ti];
            if (t->done || table_busy(s, ti))
                continue;
            if (!t->started_ms)
                t->started_ms = siphon_clock_now_ms();
            if ((rc = chunk_send(s, s->conns[ci], t, errbuf, errsize)) < 0)
                return rc;
            s->busy[ci] = ti;
        }
        reading += s->busy[ci] >= 0;
    }
    if (!reading) {
        int64_t secs = (siphon_clock_now_ms() - s->started_ms) / 1000;
        siphon_log(SIPHON_LOG_INFO, "pg", "snapshot done in %" PRId64 " s", secs);
        for (int ci = 0; ci < s->nconns; ci++)
            siphon_pg__exec_ok(s->conns[ci], "COMMIT", "end the snapshot transaction", errbuf,
                               errsize);
        siphon_pg__snap_free(src);
        return 1;
    }
    /* wait (up to 100 ms, so the pipeline keeps serving deliveries) for one chunk; the
     * connections are looked at in turn from the one after the last chunk's, or the first
     * ones (whose next chunk is ready again by the time the pipeline asks) starve the others */
    struct pollfd pfd[64];
    int map[64], n = 0;
    for (int k = 1; k <= s->nconns && n < 64; k++) {
        int ci = (s->last_ci + k) % s->nconns;
        if (s->busy[ci] < 0)
            continue;
        PGconn *c = s->conns[ci];
        if (!PQconsumeInput(c) || !PQisBusy(c)) {
            s->last_ci = ci;
            return chunk_emit(src, s, ci, errbuf, errsize);
        }
        pfd[n] = (struct pollfd){.fd = PQsocket(c), .events = POLLIN};
        map[n++] = ci;
    }
    if (poll(pfd, (nfds_t)n, 100) <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        PGconn *c = s->conns[map[i]];
        if (pfd[i].revents && (!PQconsumeInput(c) || !PQisBusy(c))) {
            s->last_ci = map[i];
            return chunk_emit(src, s, map[i], errbuf, errsize);
        }
    }
    return 0;
}
