/*
 * pg_source.c - the PostgreSQL connector's callback table (siphon_postgres_source): the two
 * connections, the replication state machine, reconnection with backoff, standby status updates
 * and acknowledgement. Parsing is pg_stream.c's job, catalog work pg_catalog.c's.
 *
 * Design. The replication connection moves through these states; next() drives them without
 * ever blocking longer than its timeout (libpq's asynchronous connect and query functions and
 * one poll() on the socket):
 *
 *     DOWN --[retry_at reached: repl_connect_start]--> CONNECTING
 *     CONNECTING --[PQconnectPoll OK: repl_send_start]--> STARTING
 *     STARTING --[CopyBoth result]--> STREAMING          (backoff back to 200 ms)
 *     CONNECTING/STARTING/STREAMING --[error, connection lost: repl_drop]--> DOWN
 *                                      (RESET record if a transaction was open; next attempt
 *                                       after the backoff delay, which doubles up to 30 s)
 *     any --[error the server will repeat forever: repl_fatal]--> next() returns the error
 *
 * Every (re)start asks for START_REPLICATION from the last acknowledged position (the server
 * then sends again every transaction that committed at or after it); the stream drops the
 * transactions it had already returned, so the pipeline sees each one once per process.
 *
 * Acknowledgement: ack(pos) records pos as flush = apply in the next standby status update,
 * which is sent at once and then every status_interval_ms ('write' is the highest LSN
 * received). Nothing larger than the largest position the connector has returned is ever
 * confirmed, and a position only moves forward. When no transaction is open, a keepalive's
 * walEnd becomes a POSITION record: once the pipeline acknowledges it, the slot advances even
 * when every change is filtered out or the database is idle.
 *
 * Batches: next() returns once it has PG_BATCH_LINGER_RECS records, or PG_BATCH_LINGER_MS after
 * the first one arrived (at most its timeout), so a busy stream gives the pipeline batches of
 * hundreds of records while an idle one adds at most 2 ms of latency. Each CopyData message is
 * copied into the batch's arena and libpq's buffer freed at once.
 *
 * Snapshots: an initial snapshot (pg_snapshot.c) is read by next() before the replication
 * connection opens; on-demand snapshots (pg_incremental.c) run while streaming: next() starts
 * their chunks (inc_tick) and collects their results (inc_poll) between stream reads, and the
 * stream's hooks reconcile them with the changes.
 *
 * Threads: the callbacks of one source must not run concurrently (the pipeline calls them all
 * from its one loop).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "connectors/postgres/pg_int.h"
#include "connectors/postgres/postgres.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

#define PG_BACKOFF_MIN_MS 200
#define PG_BACKOFF_MAX_MS 30000
#define PG_ATTEMPT_TIMEOUT_MS 30000

static int64_t now_pg_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - PG_EPOCH_OFFSET_US;
}

static void lsn_text(uint64_t lsn, char *buf, size_t size)
{
    siphon_pg__lsn_format(lsn, buf, size);
}

/* ---- the replication connection ---- */

/* The connection is gone or refused us for a reason that may pass: forget it and try again
 * after the backoff delay. Emits a RESET record when a transaction was open. */
static int repl_drop(siphon_source_t *src, const char *what, const char *reason)
{
    char at[32];
    int rc = siphon_pg__stream_disconnected(&src->st);
    if (src->repl)
        PQfinish(src->repl);
    src->repl = NULL;
    src->state = PG_S_DOWN;
    src->flush_pending = 0;
    src->retry_at_ms = siphon_clock_now_ms() + src->backoff_ms;
    if (src->acked > src->start_pos)
        src->start_pos = src->acked;
    lsn_text(src->start_pos, at, sizeof(at));
    siphon_log(SIPHON_LOG_WARNING, "pg",
               "%s (slot \"%s\", %s): %s; reconnecting in %d ms, resuming at %s", what, src->slot,
               src->redacted, reason, src->backoff_ms, at);
    src->backoff_ms = src->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : src->backoff_ms * 2;
    return rc;
}

/* SQLSTATEs the server would answer again on every retry: stop and say why. */
static int sqlstate_fatal(const char *state)
{
    if (!state || strlen(state) != 5)
        return 0;
    if (strcmp(state, "55006") == 0) /* object_in_use: the slot is active elsewhere */
        return 0;
    return strncmp(state, "42", 2) == 0 ||  /* undefined object (slot, publication), privileges */
           strncmp(state, "28", 2) == 0 ||  /* authentication */
           strncmp(state, "0A", 2) == 0 ||  /* feature not supported */
           strncmp(state, "22", 2) == 0 ||  /* invalid parameter value (plugin options) */
           strcmp(state, "3D000") == 0 ||   /* database does not exist */
           strcmp(state, "55000") == 0 ||   /* slot invalidated, wal_level changed */
           strcmp(state, "58P01") == 0;     /* requested WAL segment already removed */
}

/* An error result on the replication connection: fatal (returned) or retriable (dropped). */
static int repl_error(siphon_source_t *src, PGresult *res, const char *what, char *errbuf,
                      size_t errsize)
{
    char msg[512], at[32];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    siphon_pg__trim(res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                 : PQerrorMessage(src->repl),
             msg, sizeof(msg));
    if (sqlstate_fatal(state)) {
        lsn_text(src->start_pos, at, sizeof(at));
        int rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not stream from replication slot \"%s\" (publication \"%s\", "
                            "database \"%s\", from %s): %s (SQLSTATE %s)%s",
                            src->slot, src->publication, src->dbname ? src->dbname : "?", at, msg,
                            state,
                            strcmp(state, "42704") == 0
                                ? "; the slot or the publication was dropped: recreate them "
                                  "(changes made meanwhile are lost; take a new snapshot)"
                            : strcmp(state, "55000") == 0 || strcmp(state, "58P01") == 0
                                ? "; the slot can no longer provide every change: drop it, let "
                                  "Siphon create it again and take a new snapshot"
                                : "");
        siphon_pg__stream_disconnected(&src->st);
        PQfinish(src->repl);
        src->repl = NULL;
        src->state = PG_S_DOWN;
        src->retry_at_ms = INT64_MAX;
        return rc;
    }
    if (state && strcmp(state, "55006") == 0)
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                 " (another Siphon, or another client, is reading this slot; waiting for it to "
                 "let go)");
    return repl_drop(src, what, msg);
}

static int repl_connect_start(siphon_source_t *src)
{
    const char *keys[] = {"dbname", "replication", "options", "client_encoding",
                          "fallback_application_name", NULL};
    /* In a SQL_ASCII database the walsender would check that text is valid in the client's
     * encoding and fail on the first non-ASCII byte: take the bytes as they are (RAWTEXT). */
    const char *vals[] = {src->conninfo, "database", src->options,
                          src->st.sql_ascii ? "SQL_ASCII" : "UTF8", src->app_name, NULL};
    char msg[512];

    src->repl = PQconnectStartParams(keys, vals, 1);
    if (!src->repl)
        return SIPHON_ENOMEM;
    if (PQstatus(src->repl) == CONNECTION_BAD)
        return repl_drop(src, "could not connect for replication",
                         siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
    src->state = PG_S_CONNECTING;
    src->poll_write = 1; /* as if PQconnectPoll had said PGRES_POLLING_WRITING */
    src->attempt_deadline_ms = siphon_clock_now_ms() + PG_ATTEMPT_TIMEOUT_MS;
    return 0;
}

static int repl_send_start(siphon_source_t *src)
{
    char at[32], msg[512];
    char *qslot = NULL, *qpub = NULL;
    siphon_buf_t cmd = {0};
    int rc = 0;

    lsn_text(src->start_pos, at, sizeof(at));
    qslot = PQescapeIdentifier(src->repl, src->slot, strlen(src->slot));
    qpub = PQescapeIdentifier(src->repl, src->publication, strlen(src->publication));
    if (!qslot || !qpub) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    /* publication_names is a string holding a list of identifiers: the quoted identifier,
     * inside a literal whose quotes are doubled (the replication grammar has no E'' strings). */
    /* messages 'true' (PostgreSQL 14+): logical decoding messages, which carry the requests and
     * watermarks of on-demand snapshots (pg_incremental.c). */
    siphon_buf_printf(&cmd, "START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', %s"
                            "publication_names '", qslot, at,
                      src->server_version >= 140000 ? "messages 'true', " : "");
    for (const char *p = qpub; *p; p++) {
        if (*p == '\'')
            siphon_buf_appendc(&cmd, '\'');
        siphon_buf_appendc(&cmd, (uint8_t)*p);
    }
    if (siphon_buf_printf(&cmd, "')") < 0) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    if (PQsetnonblocking(src->repl, 1) != 0 || !PQsendQuery(src->repl, (const char *)cmd.data)) {
        rc = repl_drop(src, "could not start replication",
                       siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
        goto out;
    }
    src->flush_pending = PQflush(src->repl) == 1;
    src->state = PG_S_STARTING;
out:
    PQfreemem(qslot);
    PQfreemem(qpub);
    siphon_buf_free(&cmd);
    return rc;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Standby status update: write = highest LSN received, flush = apply = acknowledged. Returns 0
 * or SIPHON_ECONN (the caller drops the connection; ack() defers that to next()). */
static int send_status(siphon_source_t *src)
{
    uint8_t m[34];
    uint64_t write = src->st.received > src->acked ? src->st.received : src->acked;
    m[0] = 'r';
    put64(m + 1, write);
    put64(m + 9, src->acked);
    put64(m + 17, src->acked);
    put64(m + 25, (uint64_t)now_pg_us());
    m[33] = 0;
    int r = PQputCopyData(src->repl, (const char *)m, sizeof(m));
    if (r < 0)
        return SIPHON_ECONN;
    if (r == 0) { /* libpq's output buffer is full (non-blocking): try again soon */
        src->flush_pending = 1;
        return 0;
    }
    r = PQflush(src->repl);
    if (r < 0)
        return SIPHON_ECONN;
    src->flush_pending = r == 1;
    src->sent_flush = src->acked;
    src->last_status_ms = siphon_clock_now_ms();
    src->st.reply_requested = 0;
    return 0;
}

static int status_due(const siphon_source_t *src, int64_t now)
{
    return src->st.reply_requested || src->sent_flush != src->acked ||
           now - src->last_status_ms >= src->status_interval_ms;
}

/* STREAMING: read what has arrived into the batch, answer keepalives, send status updates. */
static int repl_drain(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char msg[512];
    int refilled = 0, rc;

    if (src->flush_pending) {
        int r = PQflush(src->repl);
        if (r < 0)
            return repl_drop(src, "replication connection lost",
                             siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
        src->flush_pending = r == 1;
    }
    if (!PQconsumeInput(src->repl))
        return repl_drop(src, "replication connection lost",
                         siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
    while (src->st.nrecs < PG_BATCH_MAX_RECS && src->st.batch_bytes < PG_BATCH_MAX_BYTES) {
        char *buf = NULL;
        int r = PQgetCopyData(src->repl, &buf, 1);
        if (r > 0) {
            /* Values point into the message until the batch ends: keep it in the batch's arena
             * and give libpq's buffer back at once (malloc's fast path reuses it for the next
             * message; freeing thousands at the end of a batch costs more than this copy). */
            char *msg = siphon_arena_alloc(&src->st.arena, (size_t)r);
            refilled = 0;
            if (msg)
                memcpy(msg, buf, (size_t)r);
            PQfreemem(buf);
            if (!msg)
                return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                                  "could not keep a replication message: out of memory");
            if ((rc = siphon_pg__stream_copydata(&src->st, msg, (size_t)r, errbuf, errsize)) < 0)
                return rc;
            if (src->st.reply_requested && send_status(src) < 0)
                return repl_drop(src, "replication connection lost",
                                 siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
            continue;
        }
        if (r == 0) {
            /* The socket may hold more than libpq read last time: one more read, then wait. */
            if (refilled)
                break;
            if (!PQconsumeInput(src->repl))
                return repl_drop(src, "replication connection lost",
                                 siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
            refilled = 1;
            continue;
        }
        if (r == -1) {
            /* The server ended the stream (shutdown, or an error it reports next). */
            PGresult *res = PQgetResult(src->repl);
            ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
            if (s == PGRES_FATAL_ERROR || s == PGRES_NONFATAL_ERROR)
                rc = repl_error(src, res, "replication stream ended with an error", errbuf, errsize);
            else
                rc = repl_drop(src, "replication stream ended by the server", "server closed the stream");
            PQclear(res);
            return rc;
        }
        return repl_drop(src, "replication connection lost",
                         siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
    }
    if (src->state == PG_S_STREAMING && status_due(src, siphon_clock_now_ms()) && send_status(src) < 0)
        return repl_drop(src, "replication connection lost",
                         siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
    return 0;
}

/* One move of the state machine. sock_ready: the last poll() said the socket is ready in the
 * direction the state waits for. Returns 0 or a fatal error. */
static int repl_step(siphon_source_t *src, int sock_ready, char *errbuf, size_t errsize)
{
    char msg[512], at[48];
    int64_t now = siphon_clock_now_ms();

    switch (src->state) {
    case PG_S_DOWN:
        if (now < src->retry_at_ms)
            return 0;
        return repl_connect_start(src);

    case PG_S_CONNECTING:
        if (now >= src->attempt_deadline_ms)
            return repl_drop(src, "could not connect for replication", "timed out");
        if (!sock_ready)
            return 0;
        switch (PQconnectPoll(src->repl)) {
        case PGRES_POLLING_READING:
            src->poll_write = 0;
            return 0;
        case PGRES_POLLING_WRITING:
            src->poll_write = 1;
            return 0;
        case PGRES_POLLING_OK:
            return repl_send_start(src);
        default:
            return repl_drop(src, "could not connect for replication",
                             siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
        }

    case PG_S_STARTING: {
        if (now >= src->attempt_deadline_ms)
            return repl_drop(src, "could not start replication", "timed out");
        if (src->flush_pending) {
            int r = PQflush(src->repl);
            if (r < 0)
                return repl_drop(src, "could not start replication",
                                 siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
            src->flush_pending = r == 1;
        }
        if (!PQconsumeInput(src->repl))
            return repl_drop(src, "could not start replication",
                             siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
        if (PQisBusy(src->repl))
            return 0;
        PGresult *res = PQgetResult(src->repl);
        int rc = 0;
        if (res && PQresultStatus(res) == PGRES_COPY_BOTH) {
            src->state = PG_S_STREAMING;
            src->backoff_ms = PG_BACKOFF_MIN_MS;
            src->last_status_ms = 0; /* tell the server where we stand right away */
            if (src->start_pos)
                lsn_text(src->start_pos, at, sizeof(at));
            else
                snprintf(at, sizeof(at), "the slot's confirmed position");
            siphon_log(SIPHON_LOG_INFO, "pg",
                       "streaming from replication slot \"%s\" (publication \"%s\", database "
                       "\"%s\") at %s",
                       src->slot, src->publication, src->dbname, at);
        } else {
            rc = repl_error(src, res, "could not start replication", errbuf, errsize);
        }
        PQclear(res);
        return rc;
    }

    case PG_S_STREAMING:
        return repl_drain(src, errbuf, errsize);
    }
    return 0;
}

/* Wait until the socket is ready for what the state needs, a timer of the state is due,
 * other_fd (an on-demand snapshot's connection, or -1) is readable, or deadline. Returns
 * whether the replication socket became ready. */
static int repl_wait(siphon_source_t *src, int64_t deadline, int other_fd)
{
    int64_t now = siphon_clock_now_ms(), wake = deadline;
    struct pollfd pfds[2] = {{.fd = -1}, {.fd = other_fd, .events = POLLIN}};
    struct pollfd pfd = {.fd = -1};

    switch (src->state) {
    case PG_S_DOWN:
        if (src->retry_at_ms < wake)
            wake = src->retry_at_ms;
        break;
    case PG_S_CONNECTING:
        pfd.fd = PQsocket(src->repl);
        pfd.events = src->poll_write ? POLLOUT : POLLIN;
        if (src->attempt_deadline_ms < wake)
            wake = src->attempt_deadline_ms;
        break;
    case PG_S_STARTING:
        pfd.fd = PQsocket(src->repl);
        pfd.events = POLLIN | (src->flush_pending ? POLLOUT : 0);
        if (src->attempt_deadline_ms < wake)
            wake = src->attempt_deadline_ms;
        break;
    case PG_S_STREAMING:
        pfd.fd = PQsocket(src->repl);
        pfd.events = POLLIN | (src->flush_pending ? POLLOUT : 0);
        if (src->last_status_ms + src->status_interval_ms < wake)
            wake = src->last_status_ms + src->status_interval_ms;
        break;
    }
    int ms = wake > now ? (int)(wake - now) : 0;
    pfds[0] = pfd;
    int n = poll(pfds, 2, ms); /* poll() skips a negative fd */
    if (n < 0 && errno != EINTR)
        return 1; /* let libpq find out what is wrong with the socket */
    return n > 0 && pfds[0].revents != 0;
}

/* ---- the callbacks ---- */

static void pg_close(siphon_source_t *src);

static int valid_slot_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* The user's options= (if any) followed by ours, which win. */
static int build_options(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char *perr = NULL;
    const char *user = NULL;
    PQconninfoOption *opts = PQconninfoParse(src->conninfo, &perr);
    if (!opts) {
        char msg[512];
        int rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not parse source.conninfo (%s): %s", src->redacted,
                            siphon_pg__trim(perr ? perr : "out of memory", msg, sizeof(msg)));
        PQfreemem(perr);
        return rc;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && o->val[0])
            user = o->val;
    size_t len = (user ? strlen(user) + 1 : 0) + sizeof(PG_SESSION_OPTIONS);
    src->options = malloc(len);
    if (src->options)
        snprintf(src->options, len, "%s%s%s", user ? user : "", user ? " " : "", PG_SESSION_OPTIONS);
    PQconninfoFree(opts);
    return src->options ? 0 : siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
}

/* A stored position beyond the server's WAL comes from another server (or a restored backup):
 * starting there would skip changes without a word. */
static int check_resume(siphon_source_t *src, char *errbuf, size_t errsize)
{
    char at[32];
    uint64_t cur;
    if (!src->start_pos)
        return 0;
    PGresult *res = PQexec(src->cat, "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() "
                                     "THEN pg_catalog.pg_last_wal_replay_lsn() "
                                     "ELSE pg_catalog.pg_current_wal_lsn() END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQgetisnull(res, 0, 0) ||
        siphon_pg__lsn_parse(&cur, PQgetvalue(res, 0, 0)) < 0) {
        PQclear(res);
        return 0; /* cannot tell; the server clamps to the slot's position anyway */
    }
    PQclear(res);
    if (src->start_pos <= cur + 1)
        return 0;
    lsn_text(src->start_pos, at, sizeof(at));
    char curtxt[32];
    lsn_text(cur, curtxt, sizeof(curtxt));
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "could not resume slot \"%s\" at %s: the server's WAL only reaches %s, so "
                      "the offsets file belongs to another server or to a time before a restore; "
                      "move the offsets file away to start from the slot's own position",
                      src->slot, at, curtxt);
}

static int pg_open(siphon_source_t **out, const siphon_config_t *cfg,
                   const siphon_table_ref_t *tables, int ntables, const char *resume_pos,
                   char *errbuf, size_t errsize)
{
    siphon_source_t *src = NULL;
    int rc;

    if (!out || !cfg || (ntables > 0 && !tables))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not open the postgres source: bad arguments");
    *out = NULL;
    if (!cfg->source.slot || !valid_slot_name(cfg->source.slot))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not use replication slot name \"%s\": slot names are 1 to 63 "
                          "characters of lower-case letters, digits and underscores",
                          cfg->source.slot ? cfg->source.slot : "");
    if (!cfg->source.publication || !cfg->source.publication[0])
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not open the postgres source: source.publication is empty");

    if (!(src = calloc(1, sizeof(*src))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    siphon_pg__stream_init(&src->st);
    src->st.enrich = siphon_pg__cat_enrich;
    src->st.enrich_opaque = src;
    src->conninfo = strdup(cfg->source.conninfo ? cfg->source.conninfo : "");
    src->name = strdup(cfg->name ? cfg->name : "siphon");
    src->slot = strdup(cfg->source.slot);
    src->publication = strdup(cfg->source.publication);
    src->create_slot = cfg->source.create_slot;
    src->create_publication = cfg->source.create_publication;
    src->status_interval_ms = cfg->source.status_interval_ms > 0 ? cfg->source.status_interval_ms : 1000;
    src->backoff_ms = PG_BACKOFF_MIN_MS;
    if (!src->conninfo || !src->name || !src->slot || !src->publication) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    siphon_config_redact(src->conninfo, src->redacted, sizeof(src->redacted));
    {
        size_t len = strlen(src->name) + sizeof("siphon-");
        if (!(src->app_name = malloc(len))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(src->app_name, len, "siphon-%s", src->name);
    }
    /* A stored position is an LSN, followed by " snapshot ..." while the initial snapshot is
     * unfinished (pg_snapshot.c), or by " isnap ..." while an on-demand snapshot runs
     * (pg_incremental.c). */
    char lsnpart[64] = "";
    const char *progress = NULL, *isnap = NULL;
    if (resume_pos && resume_pos[0]) {
        const char *sp = strchr(resume_pos, ' ');
        size_t n = sp ? (size_t)(sp - resume_pos) : strlen(resume_pos);
        snprintf(lsnpart, sizeof(lsnpart), "%.*s", (int)(n < 63 ? n : 63), resume_pos);
        if (sp && strncmp(sp, " snapshot", 9) == 0)
            progress = sp + 9;
        else if (sp && strncmp(sp, " isnap", 6) == 0) /* an on-demand snapshot (pg_incremental.c) */
            isnap = sp + 6;
    }
    if (lsnpart[0] && siphon_pg__lsn_parse(&src->start_pos, lsnpart) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not parse the stored position \"%s\": expected an LSN like "
                        "0/16B3748",
                        resume_pos);
        goto fail;
    }
    if ((rc = build_options(src, errbuf, errsize)) < 0)
        goto fail;

    if ((rc = siphon_pg__cat_connect(src, errbuf, errsize)) < 0 ||
        (rc = siphon_pg__cat_check_server(src, errbuf, errsize)) < 0 ||
        (rc = check_resume(src, errbuf, errsize)) < 0 ||
        (rc = siphon_pg__cat_ensure_publication(src, tables, ntables, errbuf, errsize)) < 0 ||
        (rc = siphon_pg__snap_setup(src, cfg, tables, ntables, progress, lsnpart[0] != 0, errbuf,
                                    errsize)) < 0 ||
        (rc = siphon_pg__cat_ensure_slot(src, errbuf, errsize)) < 0 ||
        (rc = siphon_pg__inc_setup(src, cfg, tables, ntables, isnap, errbuf, errsize)) < 0)
        goto fail;
    src->st.database = src->dbname;
    /* Everything before the stored position was delivered: never return it again, and say so
     * to the server (flush) in the first status update. */
    src->st.last_pos = src->start_pos;
    src->acked = src->start_pos;

    /* First attempt right here, so that errors the server would repeat forever (the slot or
     * publication missing, privileges) fail open() rather than the first next(). A retriable
     * failure (slot busy) leaves the source DOWN with its backoff running. */
    src->state = PG_S_DOWN;
    src->retry_at_ms = 0;
    if (src->snap) {
        /* The snapshot is read first (next()); streaming starts when it has ended. */
        src->retry_at_ms = INT64_MAX - 1;
        *out = src;
        return 0;
    }
    {
        int64_t deadline = siphon_clock_now_ms() + PG_ATTEMPT_TIMEOUT_MS + 1000;
        int ready = 0, left_down = 0;
        for (;;) {
            if ((rc = repl_step(src, ready, errbuf, errsize)) < 0)
                goto fail;
            if (src->state == PG_S_STREAMING)
                break;
            if (src->state != PG_S_DOWN)
                left_down = 1;
            else if (left_down)
                break; /* the attempt failed and was logged; next() keeps trying */
            if (siphon_clock_now_ms() >= deadline)
                break;
            ready = repl_wait(src, deadline, -1);
        }
    }
    *out = src;
    return 0;
fail:
    pg_close(src);
    return rc;
}

static int pg_describe(siphon_source_t *src, const char *schema, const char *table,
                       const siphon_relation_t **rel, char *errbuf, size_t errsize)
{
    if (!src || !table || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not describe a table: bad arguments");
    return siphon_pg__cat_describe(src, schema && schema[0] ? schema : "public", table, rel, errbuf,
                                   errsize);
}

static int pg_next(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms, char *errbuf,
                   size_t errsize)
{
    int rc, ready = 0;
    if (!src || !batch)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read changes: bad arguments");
    batch->recs = NULL;
    batch->n = 0;
    /* The previous batch is done: its records, rows and messages go. */
    siphon_pg__stream_reset_batch(&src->st);
    if (src->snap) {
        rc = siphon_pg__snap_next(src, errbuf, errsize);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            batch->recs = src->st.recs;
            batch->n = src->st.nrecs;
            return 0;
        }
        src->retry_at_ms = 0; /* the snapshot ended: start streaming */
    }
    if (src->stop_after_snapshot)
        return SIPHON_ESTOP; /* snapshot: initial_only */
    if (src->state == PG_S_DOWN && src->retry_at_ms == INT64_MAX)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read changes from slot \"%s\": streaming stopped after a "
                          "fatal error (see above)", src->slot);
    if (src->broken) {
        src->broken = 0;
        if (src->state == PG_S_STREAMING && (rc = repl_drop(src, "replication connection lost",
                                                            src->broken_reason)) < 0)
            return rc;
    }
    if (src->inc && (rc = siphon_pg__inc_tick(src, errbuf, errsize)) < 0)
        return rc;

    int64_t deadline = siphon_clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0), wait_until;
    int64_t linger_until = 0;
    int inc_fd = -1;
    for (;;) {
        if ((rc = repl_step(src, ready, errbuf, errsize)) < 0)
            return rc;
        if (src->inc && (rc = siphon_pg__inc_poll(src, &inc_fd, errbuf, errsize)) < 0)
            return rc;
        ready = 0;
        int64_t now = siphon_clock_now_ms();
        wait_until = deadline;
        if (src->st.nrecs > 0) {
            /* Under load the walsender writes a message at a time: linger a moment so the
             * pipeline gets batches of hundreds of records instead of a few. */
            if (src->st.nrecs >= PG_BATCH_LINGER_RECS || src->state != PG_S_STREAMING ||
                src->st.batch_bytes >= PG_BATCH_MAX_BYTES || src->st.nrecs >= PG_BATCH_MAX_RECS)
                break;
            if (!linger_until)
                linger_until = now + PG_BATCH_LINGER_MS;
            if (now >= linger_until)
                break;
            if (linger_until < wait_until)
                wait_until = linger_until;
        }
        if (now >= deadline)
            break;
        ready = repl_wait(src, wait_until, inc_fd);
    }
    batch->recs = src->st.recs;
    batch->n = src->st.nrecs;
    return 0;
}

static int pg_ack(siphon_source_t *src, const siphon_pos_t *pos, char *errbuf, size_t errsize)
{
    char msg[256];
    if (!src || !pos)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not acknowledge: bad arguments");
    uint64_t lsn = pos->num;
    if (lsn > src->st.last_pos) {
        char a[32], b[32];
        lsn_text(lsn, a, sizeof(a));
        lsn_text(src->st.last_pos, b, sizeof(b));
        siphon_log(SIPHON_LOG_WARNING, "pg",
                   "acknowledgement of %s is past the last position returned (%s): confirming "
                   "%s only",
                   a, b, b);
        lsn = src->st.last_pos;
    }
    /* An ack that does not move still sends a status update when one is due: the pipeline
     * calls ack() while it waits on a full sink, and that keeps wal_sender_timeout away. */
    if (lsn > src->acked)
        src->acked = lsn;
    if (src->state == PG_S_STREAMING && !src->broken &&
        status_due(src, siphon_clock_now_ms()) && send_status(src) < 0) {
        /* Dropping here would add a RESET to the batch the pipeline still reads: next() does. */
        src->broken = 1;
        snprintf(src->broken_reason, sizeof(src->broken_reason), "%s",
                 siphon_pg__trim(PQerrorMessage(src->repl), msg, sizeof(msg)));
    }
    return 0;
}

static int pg_pos_format(const siphon_pos_t *pos, char *buf, size_t size)
{
    if (!pos || !buf || size == 0)
        return SIPHON_EINVAL;
    if (pos->text && pos->text[0] == ' ') { /* LSN + on-demand snapshot progress */
        if (siphon_pg__lsn_format(pos->num, buf, size) < 0)
            return SIPHON_EINVAL;
        size_t n = strlen(buf);
        return (size_t)snprintf(buf + n, size - n, "%s", pos->text) < size - n ? 0 : SIPHON_EINVAL;
    }
    if (pos->text) /* a snapshot chunk (pg_snapshot.c) */
        return (size_t)snprintf(buf, size, "%s", pos->text) < size ? 0 : SIPHON_EINVAL;
    return siphon_pg__lsn_format(pos->num, buf, size);
}

static int pg_pos_parse(siphon_pos_t *pos, const char *text, char *errbuf, size_t errsize)
{
    if (!pos || !text)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not parse LSN: bad arguments");
    pos->text = NULL;
    if (siphon_pg__lsn_parse(&pos->num, text) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not parse LSN \"%s\": expected two hexadecimal numbers separated "
                          "by a slash, like 0/16B3748",
                          text);
    return 0;
}

static void pg_close(siphon_source_t *src)
{
    if (!src)
        return;
    if (src->repl && src->state == PG_S_STREAMING) {
        char at[32];
        /* A last status update so the slot shows what was delivered. */
        PQsetnonblocking(src->repl, 0);
        if (send_status(src) == 0)
            PQflush(src->repl);
        lsn_text(src->acked, at, sizeof(at));
        siphon_log(SIPHON_LOG_INFO, "pg", "stopped streaming from slot \"%s\"; confirmed up to %s",
                   src->slot, at);
    }
    if (src->repl)
        PQfinish(src->repl);
    siphon_pg__snap_free(src);
    siphon_pg__inc_free(src);
    if (src->cat)
        PQfinish(src->cat);
    siphon_pg__stream_destroy(&src->st);
    siphon_arena_destroy(&src->sample_mem);
    free(src->name);
    free(src->conninfo);
    free(src->slot);
    free(src->publication);
    free(src->dbname);
    free(src->app_name);
    free(src->options);
    free(src);
}

const siphon_source_ops_t siphon_postgres_source = {
    .type = "postgres",
    .open = pg_open,
    .describe = pg_describe,
    .next = pg_next,
    .ack = pg_ack,
    .pos_format = pg_pos_format,
    .pos_parse = pg_pos_parse,
    .close = pg_close,
    .open_catalog = siphon_pg__open_catalog,
    .sample = siphon_pg__sample,
    .signal_snapshot = siphon_pg__inc_signal,
    .snapshot_status = siphon_pg__inc_status,
};
