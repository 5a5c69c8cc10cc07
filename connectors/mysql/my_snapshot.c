/*
 * my_snapshot.c - the MySQL connector's initial snapshot: every mapped table read in
 * key-ordered chunks at a known binlog position and returned as 'r' changes before the stream,
 * with its progress in the stored position so that an interrupted snapshot resumes at the
 * last acknowledged chunk (docs/mysql.md#snapshots, the same modes as docs/snapshots.md).
 *
 * Consistency. MariaDB: each snapshot connection runs START TRANSACTION WITH CONSISTENT
 * SNAPSHOT and reads Binlog_snapshot_file/Binlog_snapshot_position, the binlog position of
 * exactly the transactions its read view holds (MariaDB orders InnoDB commits and the binlog
 * together), without any lock. Two connections whose positions are equal therefore see the
 * same data; when a commit slips between their START TRANSACTIONs they differ, and all of them
 * start again (up to MY_SNAP_ATTEMPTS times; then the connections that disagree with the first
 * are dropped and fewer tables are read at once). MySQL has no such status: FLUSH TABLES WITH
 * READ LOCK on the first connection, START TRANSACTION WITH CONSISTENT SNAPSHOT on each, SHOW
 * MASTER STATUS, UNLOCK TABLES: commits wait for those few statements only. (LOCK INSTANCE FOR
 * BACKUP would not do: it blocks DDL, not commits, so the position would not match the read
 * views.) The stream then starts at that position (as a GTID when the server has one): every
 * row appears once as 'r', every later change once as a change.
 * When a position is stored already (snapshot: always, or a snapshot resumed after a crash)
 * the stream starts at the stored position and the rows are read in a fresh snapshot taken
 * later: changes in between appear after the 'r' rows (duplicates, never a loss).
 *
 * Threads. One worker thread per snapshot connection takes a table that no one reads, reads
 * it chunk by chunk (SELECT ... WHERE key > last ORDER BY key LIMIT chunk_rows, the key being
 * the primary key; a table without one is read by one unordered query cut into chunks) and
 * decodes each chunk into a batch of its own: BEGIN, 'r' CHANGEs. Finished chunks wait in a
 * queue of at most nconns + 1 (memory stays bounded, the workers wait). next(), on the
 * pipeline's thread, takes the oldest chunk, moves that table's emitted progress, adds the
 * COMMIT whose text is the resumable progress, and shows it (core/progress.h). A table's
 * chunks are queued in order by its single worker, so each table's progress only moves with
 * its own chunks in order; the position tracker stores a chunk's COMMIT text once the chunk
 * and everything before it were delivered.
 *
 * Positions. BEGIN: "snap:<db>.<table>:<chunk>" (event ids "snap:<db>.<table>:<chunk>:<row>").
 * COMMIT: "<stream position> snapshot <db>.<table>=0,<chunks>,<rows>,<last key value>...
 * <db>.<table>=1 ..." (percent-encoded, tables not started left out, and a table without a
 * primary key never stored half-read: it is read again from its start on resume; kept under
 * MY_SNAP_PROGRESS_MAX bytes, an entry that would not fit is left out); the last chunk's COMMIT
 * is the plain stream position.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <mysql.h>

#include "config/config.h"
#include "connectors/mysql/my_int.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

#define MY_SNAP_PROGRESS_MAX 3800
#define MY_SNAP_ATTEMPTS 8

typedef struct my_snap_table {
    char *db, *table, *full;   /* full: "db.table" */
    const my_rel_t *rel;       /* from describe(), owned by the stream */
    int *keycols, nkeys;       /* primary key columns; 0: no primary key */
    double estimate;           /* information_schema.TABLES.TABLE_ROWS, -1 unknown */
    int64_t started_ms;
    /* emitted (next(), the pipeline's thread): what the stored progress says */
    int done;
    uint64_t chunks, rows;
    uint64_t rows_before;      /* rows a resumed snapshot had read in an earlier run */
    char **last;               /* key of the last emitted row (nkeys values), NULL: none */
    /* read (the worker that took it) */
    int taken;                 /* under mu: a worker reads it, or it needs no reading */
    uint64_t rchunks;
    char **rlast;
} my_snap_table_t;

typedef struct my_chunk {
    my_batch_t b;              /* BEGIN, 'r'..., and the COMMIT added when emitted */
    int table;
    int nrows;
    int final;                 /* the table's last chunk */
    char **last;               /* key after this chunk (nkeys values), NULL: none */
    struct my_chunk *next;
} my_chunk_t;

typedef struct my_snap {
    my_snap_table_t *t;
    int nt;
    int chunk_rows;
    MYSQL **conns;
    int *fds;                  /* their sockets, shut down to stop a worker mid-read */
    int nconns;
    pthread_t *thr;
    int nthr;
    char *pos;                 /* the stream position the progress is relative to */
    siphon_progress_t prog;
    int64_t started_ms;

    pthread_mutex_t mu;        /* everything below, and t[].taken/started_ms */
    pthread_cond_t cv_ready, cv_space;
    my_chunk_t *head, *tail;
    int nready, maxready;
    int workers_left;
    int stop;
    int failed;
    char fail_msg[1024];
    my_chunk_t *cur;           /* returned by the last next(); freed by the next one */
} my_snap_t;

typedef struct my_worker_arg {
    siphon_source_t *src;
    int ci;
} my_worker_arg_t;

/* ---- position text ---- */

int siphon_my__snap_escape(siphon_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:/", c) &&
                         c
                     ? siphon_buf_appendc(b, c)
                     : siphon_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
        if (rc < 0)
            return SIPHON_ENOMEM;
    }
    return 0;
}

long siphon_my__snap_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        unsigned v = 0;
        for (int k = 1; k <= 2; k++) {
            char c = r[k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + (unsigned)d;
        }
        *w++ = (char)v;
        r += 2;
    }
    *w = '\0';
    return (long)(w - s);
}

int siphon_my__snap_split(const char *text, char **pos, const char **progress)
{
    *pos = NULL;
    *progress = NULL;
    if (!text || !text[0])
        return 0;
    const char *sp = strstr(text, " snapshot");
    size_t n = sp ? (size_t)(sp - text) : strlen(text);
    if (sp && (sp[9] == ' ' || sp[9] == '\0'))
        *progress = sp + 9;
    if (n > 0 && !(*pos = strndup(text, n)))
        return SIPHON_ENOMEM;
    return 0;
}

static void keys_free(char **k, int n)
{
    if (!k)
        return;
    for (int i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

static char **keys_dup(char *const *k, int n)
{
    char **c = calloc((size_t)(n ? n : 1), sizeof(char *));
    for (int i = 0; c && i < n; i++)
        if (!(c[i] = strdup(k[i]))) {
            keys_free(c, i);
            return NULL;
        }
    return c;
}

/* Parse "<db.table>=<done>,<chunks>,<rows>[,<key>...] ..." into the tables' emitted and read
 * states. Entries that do not parse or name no mapped table are ignored (those tables are
 * read from their start: duplicates, never a loss). */
static void apply_progress(my_snap_t *s, const char *progress)
{
    char *copy = strdup(progress ? progress : ""), *save = NULL;
    for (char *tok = copy ? strtok_r(copy, " ", &save) : NULL; tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '='), *fsave = NULL;
        if (!eq)
            continue;
        *eq = '\0';
        if (siphon_my__snap_unescape(tok) < 0)
            continue;
        for (int i = 0; i < s->nt; i++) {
            my_snap_table_t *t = &s->t[i];
            if (strcmp(t->full, tok) != 0)
                continue;
            char *f = strtok_r(eq + 1, ",", &fsave);
            if (f && strcmp(f, "1") == 0) {
                t->done = t->taken = 1;
                break;
            }
            char *ch = strtok_r(NULL, ",", &fsave), *rows = strtok_r(NULL, ",", &fsave);
            if (!ch || !rows || t->nkeys == 0)
                break;
            char **last = calloc((size_t)t->nkeys, sizeof(char *));
            int k = 0;
            while (last && k < t->nkeys && (f = strtok_r(NULL, ",", &fsave)) &&
                   siphon_my__snap_unescape(f) >= 0 && (last[k] = strdup(f)))
                k++;
            if (k < t->nkeys || !(t->rlast = keys_dup(last, t->nkeys))) {
                keys_free(last, k);
                break;
            }
            t->last = last;
            t->chunks = t->rchunks = strtoull(ch, NULL, 10);
            t->rows = t->rows_before = strtoull(rows, NULL, 10);
            break;
        }
    }
    free(copy);
}

/* The progress text after the chunk just emitted, in arena a; NULL once every table is done
 * (the COMMIT then carries the plain stream position). */
static char *progress_text(my_snap_t *s, siphon_arena_t *a)
{
    siphon_buf_t b = {0}, e = {0};
    char *out = NULL;
    int all = 1;
    for (int i = 0; i < s->nt; i++)
        all &= s->t[i].done;
    if (all)
        return NULL;
    siphon_buf_printf(&b, "%s snapshot", s->pos);
    for (int i = 0; i < s->nt; i++) {
        my_snap_table_t *t = &s->t[i];
        if (!t->done && !t->last)
            continue;
        siphon_buf_reset(&e);
        siphon_buf_appendc(&e, ' ');
        siphon_my__snap_escape(&e, t->full, strlen(t->full));
        if (t->done) {
            siphon_buf_printf(&e, "=1");
        } else {
            siphon_buf_printf(&e, "=0,%" PRIu64 ",%" PRIu64, t->chunks, t->rows);
            for (int k = 0; k < t->nkeys; k++) {
                siphon_buf_appendc(&e, ',');
                siphon_my__snap_escape(&e, t->last[k], strlen(t->last[k]));
            }
        }
        if (b.len + e.len < MY_SNAP_PROGRESS_MAX)
            siphon_buf_append(&b, e.data, e.len);
    }
    if (siphon_buf_appendc(&b, 0) == 0)
        out = siphon_arena_strndup(a, (const char *)b.data, b.len - 1);
    siphon_buf_free(&b);
    siphon_buf_free(&e);
    return out;
}

/* ---- setup ---- */

static void chunk_free(my_chunk_t *c, int nkeys)
{
    if (!c)
        return;
    siphon_my__batch_destroy(&c->b);
    keys_free(c->last, nkeys);
    free(c);
}

static void table_free(my_snap_table_t *t)
{
    free(t->db);
    free(t->table);
    free(t->full);
    free(t->keycols);
    keys_free(t->last, t->nkeys);
    keys_free(t->rlast, t->nkeys);
}

void siphon_my__snap_free(siphon_source_t *src)
{
    my_snap_t *s = src ? src->snap : NULL;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    for (int i = 0; i < s->nconns; i++)
        if (s->fds && s->fds[i] >= 0 && s->workers_left > 0)
            shutdown(s->fds[i], SHUT_RDWR); /* a worker mid-read returns at once */
    pthread_cond_broadcast(&s->cv_space);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthr; i++)
        pthread_join(s->thr[i], NULL);
    for (my_chunk_t *c = s->head, *n; c; c = n) {
        n = c->next;
        chunk_free(c, s->t[c->table].nkeys);
    }
    if (s->cur)
        chunk_free(s->cur, s->t[s->cur->table].nkeys);
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i])
            mysql_close(s->conns[i]);
    for (int i = 0; i < s->nt; i++)
        table_free(&s->t[i]);
    free(s->t);
    free(s->conns);
    free(s->fds);
    free(s->thr);
    free(s->pos);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_ready);
    pthread_cond_destroy(&s->cv_space);
    free(s);
    src->snap = NULL;
}

static int run(siphon_source_t *src, MYSQL *m, const char *sql, const char *what, char *errbuf,
               size_t errsize)
{
    if (mysql_query(m, sql) == 0) {
        MYSQL_RES *res = mysql_store_result(m);
        mysql_free_result(res);
        return 0;
    }
    unsigned e = mysql_errno(m);
    return siphon_err(errbuf, errsize,
                      siphon_my__err_fatal(e) || (e >= 1000 && e < 2000) ? SIPHON_EINVAL
                                                                         : SIPHON_ECONN,
                      "could not %s on %s (%s): %s (error %u)%s", what, src->redacted, sql,
                      mysql_error(m), e, siphon_my__err_hint(e));
}

/* One row of a query whose values we want as text: column 1 of the rows whose column 0 is
 * `name` (SHOW STATUS style) or column `col` of the first row (name NULL). Caller frees. */
static char *query_value(MYSQL *m, const char *sql, const char *name, int col)
{
    char *v = NULL;
    if (mysql_query(m, sql) != 0)
        return NULL;
    MYSQL_RES *res = mysql_store_result(m);
    for (MYSQL_ROW row; res && !v && (row = mysql_fetch_row(res));) {
        if (name && (!row[0] || strcasecmp(row[0], name) != 0))
            continue;
        int c = name ? 1 : col;
        if ((unsigned)c < mysql_num_fields(res) && row[c])
            v = strdup(row[c]);
        if (!name)
            break;
    }
    mysql_free_result(res);
    return v;
}

/* MariaDB: start the consistent-snapshot transaction on m and read its binlog position. */
static int mariadb_start(siphon_source_t *src, MYSQL *m, char *pos, size_t size, char *errbuf,
                         size_t errsize)
{
    int rc = run(src, m, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                 "start the snapshot transaction", errbuf, errsize);
    if (rc < 0)
        return rc;
    char *file = query_value(m, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'",
                             "Binlog_snapshot_file", 0);
    char *off = query_value(m, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'",
                            "Binlog_snapshot_position", 0);
    if (file && file[0] && off)
        snprintf(pos, size, "%s:%s", file, off);
    else
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not read the binlog position of the snapshot on %s: "
                        "Binlog_snapshot_file is empty (is log_bin on?)",
                        src->redacted);
    free(file);
    free(off);
    return rc;
}

/* MariaDB: every connection in a snapshot at one binlog position (see the top of the file).
 * pos receives it as file:offset. */
static int mariadb_consistent(siphon_source_t *src, my_snap_t *s, char *pos, size_t size,
                              char *errbuf, size_t errsize)
{
    char p[300];
    int rc = 0, n = s->nconns;
    for (int attempt = 1;; attempt++) {
        int same = 1;
        for (int i = 0; i < n && rc == 0; i++) {
            rc = mariadb_start(src, s->conns[i], i ? p : pos, i ? sizeof(p) : size, errbuf,
                               errsize);
            same &= i == 0 || strcmp(p, pos) == 0;
        }
        if (rc < 0 || same)
            break;
        if (attempt < MY_SNAP_ATTEMPTS) {
            for (int i = 0; i < n && rc == 0; i++)
                rc = run(src, s->conns[i], "ROLLBACK", "end the snapshot transaction", errbuf,
                         errsize);
            continue;
        }
        /* commits keep slipping in: keep the connections at the first one's position */
        int kept = 1;
        for (int i = 1; i < n; i++) {
            char q[300];
            char *f = query_value(s->conns[i], "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'",
                                  "Binlog_snapshot_file", 0);
            char *o = query_value(s->conns[i], "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'",
                                  "Binlog_snapshot_position", 0);
            snprintf(q, sizeof(q), "%s:%s", f ? f : "", o ? o : "");
            free(f);
            free(o);
            if (strcmp(q, pos) == 0) {
                MYSQL *keep = s->conns[i];
                s->conns[i] = NULL;
                s->conns[kept++] = keep;
            } else {
                mysql_close(s->conns[i]);
                s->conns[i] = NULL;
            }
        }
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "snapshot: commits kept landing between the snapshot connections' START "
                   "TRANSACTIONs (%d attempts); reading with %d of %d connection(s), those "
                   "at one binlog position",
                   MY_SNAP_ATTEMPTS, kept, n);
        s->nconns = kept;
        break;
    }
    return rc;
}

/* MySQL: the shortest global lock around starting the transactions and reading the position. */
static int mysql_consistent(siphon_source_t *src, my_snap_t *s, char *pos, size_t size,
                            char *errbuf, size_t errsize)
{
    MYSQL *m = s->conns[0];
    int rc = run(src, m, "FLUSH TABLES WITH READ LOCK",
                 "lock the server for an instant to fix the snapshot's binlog position (the "
                 "user needs the RELOAD privilege: GRANT RELOAD ON *.*, or set snapshot: never)",
                 errbuf, errsize);
    if (rc < 0)
        return rc;
    for (int i = 0; i < s->nconns && rc == 0; i++)
        rc = run(src, s->conns[i], "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                 "start the snapshot transaction", errbuf, errsize);
    if (rc == 0) {
        char *file = query_value(m, "SHOW MASTER STATUS", NULL, 0);
        if (!file)
            file = query_value(m, "SHOW BINARY LOG STATUS", NULL, 0);
        char *off = query_value(m, "SHOW MASTER STATUS", NULL, 1);
        if (!off)
            off = query_value(m, "SHOW BINARY LOG STATUS", NULL, 1);
        char *gtids = src->gtid ? query_value(m, "SELECT @@GLOBAL.gtid_executed", NULL, 0)
                                : NULL;
        my_gtidset_t g = {0};
        if (gtids && gtids[0] &&
            siphon_my__gtid_parse(&g, gtids, MY_GTID_MYSQL, errbuf, errsize) == 0 &&
            siphon_my__gtid_format(&g, pos, size) < size) {
            /* pos holds the GTID set */
        } else if (file && off) {
            snprintf(pos, size, "%s:%s", file, off);
        } else {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not read the binlog position of %s: SHOW MASTER STATUS "
                            "returned nothing (is log_bin on?)",
                            src->redacted);
        }
        siphon_my__gtid_free(&g);
        free(file);
        free(off);
        free(gtids);
    }
    char e2[256];
    int urc = run(src, m, "UNLOCK TABLES", "unlock the server", e2, sizeof(e2));
    if (rc == 0 && urc < 0)
        rc = siphon_err(errbuf, errsize, urc, "%s", e2);
    return rc;
}

/* A table's plan: its relation, its primary key, its row estimate. */
static int plan_table(siphon_source_t *src, my_snap_table_t *t, char *errbuf, size_t errsize)
{
    const siphon_relation_t *rel = NULL;
    int rc = siphon_my__cat_describe(src, t->db, t->table, &rel, errbuf, errsize);
    if (rc < 0)
        return siphon_err(errbuf, errsize, rc, "could not snapshot %s: %.900s", t->full,
                          errbuf);
    t->rel = (const my_rel_t *)rel; /* describe returns &my_rel_t.rel, its first member */
    if (!(t->keycols = calloc((size_t)(rel->ncols ? rel->ncols : 1), sizeof(int))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < rel->ncols; i++)
        if (rel->cols[i].is_pkey)
            t->keycols[t->nkeys++] = i;
    for (int k = 0; k < t->nkeys; k++) {
        uint8_t ty = t->rel->cols[t->keycols[k]].type;
        if (ty == MYT_ENUM || ty == MYT_SET) {
            /* ORDER BY sorts an ENUM by its index, `>` compares its text: chunks after a key
             * would skip or repeat rows. Read the table as one unordered query instead. */
            siphon_log(SIPHON_LOG_NOTICE, "mysql",
                       "snapshot of %s: its primary key has an ENUM/SET column (%s), read in "
                       "one pass (an interrupted read of it starts over)",
                       t->full, rel->cols[t->keycols[k]].name);
            t->nkeys = 0;
            break;
        }
    }
    t->estimate = -1;
    char edb[520], etb[520], sql[1200], *v = NULL;
    pthread_mutex_lock(&src->cat_mu);
    if (src->cat) {
        mysql_real_escape_string(src->cat, edb, t->db, (unsigned long)strnlen(t->db, 255));
        mysql_real_escape_string(src->cat, etb, t->table, (unsigned long)strnlen(t->table, 255));
        snprintf(sql, sizeof(sql),
                 "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' "
                 "AND TABLE_NAME = '%s'",
                 edb, etb);
        v = query_value(src->cat, sql, NULL, 0);
    }
    pthread_mutex_unlock(&src->cat_mu);
    if (v)
        t->estimate = strtod(v, NULL);
    free(v);
    return 0;
}

/* The snapshot connections' sessions: UTC, REPEATABLE READ, patience for a slow pipeline. */
static int snap_connect(siphon_source_t *src, my_snap_t *s, int n, char *errbuf, size_t errsize)
{
    if (!(s->conns = calloc((size_t)n, sizeof(MYSQL *))) ||
        !(s->fds = calloc((size_t)n, sizeof(int))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        s->fds[i] = -1;
    for (int i = 0; i < n; i++) {
        int rc = siphon_my__connect(&s->conns[i], src, 0, errbuf, errsize);
        s->nconns = i + 1;
        if (rc == 0)
            rc = run(src, s->conns[i], "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                     "prepare a snapshot session", errbuf, errsize);
        if (rc == 0)
            rc = run(src, s->conns[i],
                     "SET time_zone = '+00:00', net_write_timeout = 3600, "
                     "net_read_timeout = 3600, wait_timeout = 86400",
                     "prepare a snapshot session", errbuf, errsize);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int siphon_my__snap_setup(siphon_source_t *src, const siphon_config_t *cfg, const char *stored,
                          const char *progress, char **stream_from, char *errbuf,
                          size_t errsize)
{
    int mode = cfg->source.snapshot, rc = 0;
    my_snap_t *s = NULL;
    *stream_from = NULL;
    src->stop_after_snapshot = mode == SIPHON_SNAPSHOT_INITIAL_ONLY;
    int have_resume = stored && stored[0];
    if (mode == SIPHON_SNAPSHOT_NEVER ||
        !(progress || mode == SIPHON_SNAPSHOT_ALWAYS || !have_resume))
        return 0;
    if (!(s = calloc(1, sizeof(*s))) ||
        !(s->t = calloc((size_t)(src->ntables ? src->ntables : 1), sizeof(*s->t)))) {
        free(s);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    siphon_clock_cond_init(&s->cv_ready);
    siphon_clock_cond_init(&s->cv_space);
    src->snap = s;
    s->chunk_rows = cfg->source.snapshot_chunk_rows > 0 ? cfg->source.snapshot_chunk_rows : 10000;
    s->started_ms = siphon_clock_now_ms();
    siphon_progress_init(&s->prog, "mysql", "snapshot", "rows", -1);
    for (int i = 0; i < src->ntables; i++) {
        my_snap_table_t *t = &s->t[s->nt++];
        t->db = strdup(src->tables[i].db);
        t->table = strdup(src->tables[i].table);
        size_t n = strlen(src->tables[i].db) + strlen(src->tables[i].table) + 2;
        if (!t->db || !t->table || !(t->full = malloc(n))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(t->full, n, "%s.%s", t->db, t->table);
        if ((rc = plan_table(src, t, errbuf, errsize)) < 0)
            goto fail;
    }
    apply_progress(s, progress);
    int n = cfg->source.snapshot_connections > 0 ? cfg->source.snapshot_connections : 2;
    if (n > s->nt)
        n = s->nt > 0 ? s->nt : 1;
    if ((rc = snap_connect(src, s, n, errbuf, errsize)) < 0)
        goto fail;
    char pos[2048];
    rc = src->flavor == MY_FLAVOR_MARIADB
             ? mariadb_consistent(src, s, pos, sizeof(pos), errbuf, errsize)
             : mysql_consistent(src, s, pos, sizeof(pos), errbuf, errsize);
    if (rc < 0)
        goto fail;
    if (have_resume) {
        /* the stream starts at the stored position, before this snapshot */
        s->pos = strdup(stored);
        if (progress)
            siphon_log(SIPHON_LOG_INFO, "mysql",
                       "resuming the interrupted snapshot at the last acknowledged chunk of "
                       "each table, in a new snapshot; changes made meanwhile follow from the "
                       "stream (from %s)", stored);
    } else if (src->flavor == MY_FLAVOR_MARIADB) {
        /* the snapshot's GTID position, when the server has logged any GTID */
        char *colon = strrchr(pos, ':'), sql[700], esc[600];
        *colon = '\0';
        mysql_real_escape_string(s->conns[0], esc, pos, (unsigned long)strlen(pos));
        snprintf(sql, sizeof(sql), "SELECT BINLOG_GTID_POS('%s', %s)", esc, colon + 1);
        char *g = query_value(s->conns[0], sql, NULL, 0);
        *colon = ':';
        s->pos = g && g[0] ? g : strdup(pos);
        if (g && !g[0])
            free(g);
    } else {
        s->pos = strdup(pos);
    }
    if (!s->pos || (!have_resume && !(*stream_from = strdup(s->pos)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    siphon_log(SIPHON_LOG_INFO, "mysql",
               "snapshot of %d table(s) in chunks of %d rows on %d connection(s) at binlog "
               "position %s; streaming from %s afterwards",
               s->nt, s->chunk_rows, s->nconns, pos, s->pos);
    return 0;
fail:
    siphon_my__snap_free(src);
    free(*stream_from);
    *stream_from = NULL;
    return rc;
}

/* ---- the workers ---- */

static int key_is_number(uint8_t type)
{
    switch (type) {
    case MYT_TINY: case MYT_SHORT: case MYT_INT24: case MYT_LONG: case MYT_LONGLONG:
    case MYT_YEAR: case MYT_NEWDECIMAL: case MYT_FLOAT: case MYT_DOUBLE: case MYT_BIT:
        return 1;
    default:
        return 0;
    }
}

/* A key value (the text the server sent for it) as an SQL literal. */
static void key_literal(siphon_buf_t *b, MYSQL *m, const my_col_t *c, const char *v)
{
    size_t n = strlen(v);
    if (key_is_number(c->type) && n > 0 && strspn(v, "0123456789+-.eE") == n) {
        siphon_buf_append(b, v, n);
    } else if (c->cs == MY_CS_BINARY || c->type == MYT_GEOMETRY) {
        siphon_buf_printf(b, "X'");
        for (size_t i = 0; i < n; i++)
            siphon_buf_printf(b, "%02x", (unsigned char)v[i]);
        siphon_buf_appendc(b, '\'');
    } else {
        char *e = malloc(2 * n + 1);
        if (!e)
            return;
        unsigned long len = mysql_real_escape_string(m, e, v, (unsigned long)n);
        siphon_buf_appendc(b, '\'');
        siphon_buf_append(b, e, len);
        siphon_buf_appendc(b, '\'');
        free(e);
    }
}

/* The chunk query of t: after rlast, in key order, chunk_rows rows; or the whole table. */
static int chunk_sql(my_snap_t *s, MYSQL *m, const my_snap_table_t *t, siphon_buf_t *sql)
{
    const siphon_relation_t *r = &t->rel->rel;
    siphon_buf_reset(sql);
    siphon_my__select_from(sql, t->rel, t->db, t->table);
    if (t->nkeys > 0 && t->rlast) {
        /* (k1 > v1) OR (k1 = v1 AND k2 > v2) ...: the form range optimizers read */
        siphon_buf_printf(sql, " WHERE ");
        for (int k = 0; k < t->nkeys; k++) {
            siphon_buf_printf(sql, "%s(", k ? " OR " : "");
            for (int j = 0; j <= k; j++) {
                int c = t->keycols[j];
                if (j)
                    siphon_buf_printf(sql, " AND ");
                siphon_my__quote_ident(sql, r->cols[c].name);
                siphon_buf_printf(sql, j < k ? " = " : " > ");
                key_literal(sql, m, &t->rel->cols[c], t->rlast[j]);
            }
            siphon_buf_appendc(sql, ')');
        }
    }
    if (t->nkeys > 0) {
        siphon_buf_printf(sql, " ORDER BY ");
        for (int k = 0; k < t->nkeys; k++) {
            if (k)
                siphon_buf_printf(sql, ", ");
            siphon_my__quote_ident(sql, r->cols[t->keycols[k]].name);
        }
        siphon_buf_printf(sql, " LIMIT %d", s->chunk_rows);
    }
    return siphon_buf_appendc(sql, 0) < 0 ? SIPHON_ENOMEM : 0;
}

static my_chunk_t *chunk_new(siphon_source_t *src, my_snap_table_t *t, int ti)
{
    my_chunk_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    siphon_my__batch_init(&c->b);
    c->table = ti;
    size_t n = strlen(t->full) + 32;
    char *text = siphon_arena_alloc(&c->b.arena, n);
    siphon_change_t *b = text ? siphon_my__batch_add(&c->b) : NULL;
    if (!b) {
        chunk_free(c, 0);
        return NULL;
    }
    snprintf(text, n, "snap:%s:%" PRIu64, t->full, t->rchunks++);
    b->kind = SIPHON_REC_BEGIN;
    b->pos.text = text;
    b->database = src->st.database;
    return c;
}

/* Decode one result row into an 'r' CHANGE of chunk c. */
static int chunk_row(siphon_source_t *src, my_snap_table_t *t, my_chunk_t *c, MYSQL_ROW row,
                     const unsigned long *lens, char *errbuf, size_t errsize)
{
    const siphon_relation_t *r = &t->rel->rel;
    siphon_arena_t *a = &c->b.arena;
    siphon_row_t *out = siphon_arena_alloc(a, sizeof(*out));
    siphon_value_t *vals = siphon_arena_alloc(a, sizeof(siphon_value_t) *
                                                     (size_t)(r->ncols ? r->ncols : 1));
    if (!out || !vals)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    out->ncols = r->ncols;
    out->vals = vals;
    for (int i = 0; i < r->ncols; i++) {
        char why[256];
        if (!row[i]) {
            memset(&vals[i], 0, sizeof(vals[i]));
            vals[i].type = SIPHON_V_NULL;
            continue;
        }
        int rc = siphon_my__text_value(a, &t->rel->cols[i], row[i], lens[i], &vals[i], why,
                                       sizeof(why));
        if (rc < 0)
            return siphon_err(errbuf, errsize, rc,
                              "could not decode column \"%s\" of %s in the snapshot: %s",
                              r->cols[i].name, t->full, rc == SIPHON_ENOMEM ? "out of memory" : why);
    }
    siphon_change_t *ch = siphon_my__batch_add(&c->b);
    if (!ch)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    ch->kind = SIPHON_REC_CHANGE;
    ch->op = SIPHON_OP_READ;
    ch->rel = r;
    ch->after = out;
    ch->pos = c->b.recs[0].pos;
    ch->snapshot = 1;
    ch->database = src->st.database;
    c->nrows++;
    return 0;
}

/* Queue a finished chunk (waiting while the queue is full). 0, or SIPHON_ESTOP. */
static int chunk_push(my_snap_t *s, my_chunk_t *c)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop && s->nready >= s->maxready)
        pthread_cond_wait(&s->cv_space, &s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        return SIPHON_ESTOP;
    }
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->nready++;
    pthread_cond_signal(&s->cv_ready);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int chunk_error(siphon_source_t *src, MYSQL *m, const my_snap_table_t *t, char *errbuf,
                       size_t errsize)
{
    unsigned e = mysql_errno(m);
    return siphon_err(errbuf, errsize,
                      siphon_my__err_fatal(e) || (e >= 1000 && e < 2000) ? SIPHON_EINVAL
                                                                         : SIPHON_ECONN,
                      "could not read a snapshot chunk of %s (chunk %" PRIu64 ") on %s: %s "
                      "(error %u)%s; restart Siphon to resume the snapshot at the last "
                      "acknowledged chunk",
                      t->full, t->rchunks, src->redacted, mysql_error(m), e,
                      siphon_my__err_hint(e));
}

/* Read table ti on connection m to its end, chunk after chunk, queueing each. A keyed table
 * runs one query per chunk; a keyless one a single query whose rows are cut into chunks. */
static int read_table(siphon_source_t *src, my_snap_t *s, MYSQL *m, int ti, char *errbuf,
                      size_t errsize)
{
    my_snap_table_t *t = &s->t[ti];
    siphon_buf_t sql = {0};
    my_chunk_t *c = NULL;
    MYSQL_RES *res = NULL;
    char **lastk = calloc((size_t)(t->nkeys ? t->nkeys : 1), sizeof(char *));
    int rc = lastk ? 0 : siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    for (int final = 0; rc == 0 && !final;) {
        if (!res) {
            if ((rc = chunk_sql(s, m, t, &sql)) < 0)
                break;
            if (mysql_real_query(m, (const char *)sql.data, (unsigned long)(sql.len - 1)) != 0 ||
                !(res = mysql_use_result(m))) {
                rc = chunk_error(src, m, t, errbuf, errsize);
                break;
            }
        }
        if (!(c = chunk_new(src, t, ti))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            break;
        }
        MYSQL_ROW row;
        while (rc == 0 && c->nrows < s->chunk_rows && (row = mysql_fetch_row(res))) {
            unsigned long *lens = mysql_fetch_lengths(res);
            rc = chunk_row(src, t, c, row, lens, errbuf, errsize);
            for (int k = 0; rc == 0 && k < t->nkeys; k++) {
                int col = t->keycols[k];
                const char *v = row[col] ? row[col] : "";
                if (!(lastk[k] = siphon_arena_strndup(&c->b.arena, v, row[col] ? lens[col] : 0)))
                    rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            }
        }
        if (rc < 0)
            break;
        if (mysql_errno(m)) {
            rc = chunk_error(src, m, t, errbuf, errsize);
            break;
        }
        /* a chunk short of chunk_rows is the last (after an exact multiple: an empty one) */
        final = c->final = c->nrows < s->chunk_rows;
        if (t->nkeys > 0 || final) {
            mysql_free_result(res);
            res = NULL;
        }
        if (t->nkeys > 0 && c->nrows > 0) {
            char **k1 = keys_dup(lastk, t->nkeys), **k2 = keys_dup(lastk, t->nkeys);
            if (!k1 || !k2) {
                keys_free(k1, t->nkeys);
                keys_free(k2, t->nkeys);
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
                break;
            }
            c->last = k1;
            keys_free(t->rlast, t->nkeys);
            t->rlast = k2;
        }
        if ((rc = chunk_push(s, c)) == 0)
            c = NULL; /* the queue owns it */
    }
    mysql_free_result(res);
    chunk_free(c, t->nkeys);
    siphon_buf_free(&sql);
    free(lastk);
    return rc;
}

static void *worker_main(void *arg)
{
    my_worker_arg_t *wa = arg;
    siphon_source_t *src = wa->src;
    my_snap_t *s = src->snap;
    MYSQL *m = s->conns[wa->ci];
    char errbuf[1024];
    int rc = 0;
    free(wa);
    mysql_thread_init();
    while (rc == 0) {
        int ti = -1;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->nt && ti < 0 && !s->stop; i++)
            if (!s->t[i].taken) {
                ti = i;
                s->t[i].taken = 1;
                s->t[i].started_ms = siphon_clock_now_ms();
            }
        pthread_mutex_unlock(&s->mu);
        if (ti < 0)
            break;
        errbuf[0] = '\0';
        rc = read_table(src, s, m, ti, errbuf, sizeof(errbuf));
    }
    pthread_mutex_lock(&s->mu);
    if (rc < 0 && rc != SIPHON_ESTOP && !s->failed) {
        s->failed = rc;
        snprintf(s->fail_msg, sizeof(s->fail_msg), "%s", errbuf);
    }
    s->workers_left--;
    pthread_cond_broadcast(&s->cv_ready);
    pthread_mutex_unlock(&s->mu);
    mysql_thread_end();
    return NULL;
}

/* Start one worker per connection (signals blocked: the CLI's handlers run on the pipeline's
 * thread). 0 or an error; the workers started are joined by siphon_my__snap_free(). */
static int start_workers(siphon_source_t *src, char *errbuf, size_t errsize)
{
    my_snap_t *s = src->snap;
    if (!(s->thr = calloc((size_t)s->nconns, sizeof(pthread_t))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    s->maxready = s->nconns + 1;
    for (int i = 0; i < s->nconns; i++)
        s->fds[i] = (int)mysql_get_socket(s->conns[i]);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = 0;
    for (int i = 0; i < s->nconns && !e; i++) {
        my_worker_arg_t *wa = malloc(sizeof(*wa));
        if (!wa) {
            e = ENOMEM;
            break;
        }
        wa->src = src;
        wa->ci = i;
        pthread_mutex_lock(&s->mu);
        s->workers_left++;
        pthread_mutex_unlock(&s->mu);
        if ((e = pthread_create(&s->thr[i], NULL, worker_main, wa)) != 0) {
            free(wa);
            pthread_mutex_lock(&s->mu);
            s->workers_left--;
            pthread_mutex_unlock(&s->mu);
        } else {
            s->nthr++;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                          "could not start the snapshot threads: %s", strerror(e));
    return 0;
}

/* ---- next() ---- */

int siphon_my__snap_next(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms,
                         char *errbuf, size_t errsize)
{
    my_snap_t *s = src->snap;
    int rc;
    batch->recs = NULL;
    batch->n = 0;
    if (s->cur) {
        chunk_free(s->cur, s->t[s->cur->table].nkeys);
        s->cur = NULL;
    }
    if (!s->thr && (rc = start_workers(src, errbuf, errsize)) < 0)
        return rc;
    int64_t until = siphon_clock_now_ms() + (timeout_ms < 100 ? (timeout_ms > 0 ? timeout_ms : 0)
                                                            : 100);
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->failed && s->workers_left > 0) {
        int64_t now = siphon_clock_now_ms();
        if (now >= until)
            break;
        struct timespec ts = siphon_clock_abs_after(until - now);
        pthread_cond_timedwait(&s->cv_ready, &s->mu, &ts);
    }
    my_chunk_t *c = s->head;
    if (c) {
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        s->nready--;
        pthread_cond_signal(&s->cv_space);
    }
    int failed = s->failed, left = s->workers_left;
    char msg[sizeof(s->fail_msg)];
    snprintf(msg, sizeof(msg), "%s", s->fail_msg);
    pthread_mutex_unlock(&s->mu);

    if (!c) {
        if (failed)
            return siphon_err(errbuf, errsize, failed, "%s", msg);
        if (left > 0)
            return 0;
        /* every table read and emitted: end the transactions, stream from here on */
        for (int i = 0; i < s->nconns; i++)
            run(src, s->conns[i], "COMMIT", "end the snapshot transaction", errbuf, errsize);
        siphon_log(SIPHON_LOG_INFO, "mysql", "snapshot done in %" PRId64 " s",
                   (siphon_clock_now_ms() - s->started_ms) / 1000);
        siphon_my__snap_free(src);
        return 1;
    }
    s->cur = c;
    my_snap_table_t *t = &s->t[c->table];
    t->chunks++;
    t->rows += (uint64_t)c->nrows;
    if (c->last) {
        keys_free(t->last, t->nkeys);
        t->last = c->last;
        c->last = NULL;
    }
    t->done = c->final;
    siphon_change_t *cm = siphon_my__batch_add(&c->b);
    if (!cm)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    cm->kind = SIPHON_REC_COMMIT;
    cm->database = src->st.database;
    /* (a keyless table half read has no last key: progress_text() leaves it out, and it is
     * read again from its start on resume) */
    cm->pos.text = progress_text(s, &c->b.arena);
    if (!cm->pos.text)
        cm->pos.text = siphon_arena_strndup(&c->b.arena, s->pos, strlen(s->pos));
    if (!cm->pos.text)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    siphon_progress_item_t it = {.name = t->full, .done = t->rows,
                                 .done_before = t->rows_before, .estimate = t->estimate,
                                 .started_ms = t->started_ms, .finished = t->done};
    siphon_progress_show(&s->prog, &it, 0);
    batch->recs = c->b.recs;
    batch->n = c->b.n;
    return 0;
}
