/*
 * my_source.c - the MySQL/MariaDB connector's callback table (siphon_mysql_source): a reader
 * thread that tails the binlog through libmariadb's replication API as a registered replica,
 * reconnection with backoff, heartbeats, and the batches it hands to next(). Parsing is
 * my_event.c's job, catalog work my_catalog.c's.
 *
 * Design. libmariadb's mariadb_rpl_fetch() blocks, and its read-ahead buffer hides whether the
 * socket holds more, so the binlog is read on a thread of its own (DESIGN.md: one thread per
 * source). It parses each event into the `fill` batch under `mu`; next() takes `fill` whole
 * and gives back the batch it returned last time (two batches, swapped: the records of a batch
 * stay valid until the next next() call, as source.h requires). The reader waits while `fill`
 * is full (MY_BATCH_MAX_RECS records or MY_BATCH_MAX_BYTES): memory stays bounded and the
 * server keeps the binlog, as a slow replica makes it do.
 *
 * The reader's states (rstate), each move under mu:
 *
 *     CONNECTING --[connected, COM_BINLOG_DUMP accepted, first event]--> STREAMING
 *                                                          (backoff back to 200 ms)
 *     CONNECTING/STREAMING --[network error, read timeout (no heartbeat for 3 periods),
 *                             server shutdown]--> RETRYING (a transaction cut after its BEGIN
 *                             went into a batch is noted: siphon_my__stream_disconnected;
 *                             next attempt after the backoff, doubling to 30 s)
 *     RETRYING --[backoff over]--> CONNECTING     (resume just after the last complete
 *                                                  transaction read: GTID state on MariaDB,
 *                                                  file:offset on MySQL; so a cut transaction
 *                                                  comes again from its start, and the parser
 *                                                  passes over what it had already sent)
 *     any --[error the server will repeat forever: privileges, purged binlog, a setting,
 *            an event we cannot decode]--> FAILED (next() returns it)
 *
 * Acknowledgement: a replica tells the server nothing about what it has applied, so ack()
 * only records the position (for the closing log line); the offsets store is the position.
 * Within one run nothing is sent twice: after a reconnect the reader resumes after the last
 * complete transaction it read, which the pipeline already holds (or will: records of the fill
 * batch stay there across the reconnect, also while the snapshot's chunks come first), and a
 * transaction the lost connection cut is read again from its start but continued after the
 * changes already sent (my_event.c), without a second BEGIN; only if it never comes back
 * (incomplete in the binlog) does a RESET record abandon it.
 *
 * Threads: the callbacks are called from the pipeline's thread; only the reader thread and
 * the catalog callback it makes (after a DDL statement) run concurrently with them, and,
 * while the initial snapshot runs (my_snapshot.c), its worker threads. next() returns the
 * snapshot's chunks first; the reader, started at the snapshot's binlog position, meanwhile
 * holds at most one full batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>
#include <mariadb_rpl.h>
#include <mysqld_error.h>

#include "config/config.h"
#include "connectors/mysql/my_int.h"
#include "connectors/mysql/mysql.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define MY_BACKOFF_MIN_MS 200
#define MY_BACKOFF_MAX_MS 30000
/* next() returns once it has this many records, or MY_LINGER_MS after the first one. */
#define MY_LINGER_RECS 512
#define MY_LINGER_MS 2

static void my_close(siphon_source_t *src);


/* ---- the reader thread ---- */

/* Where the next connection starts, for logs. */
static void resume_text(siphon_source_t *src, char *buf, size_t size)
{
    my_stream_t *st = &src->st;
    if (src->flavor == MY_FLAVOR_MARIADB && st->state.nm > 0)
        siphon_my__gtid_format(&st->state, buf, size);
    else if (st->resume_file[0])
        snprintf(buf, size, "%s:%" PRIu64, st->resume_file, st->resume_offset);
    else
        snprintf(buf, size, "the server's current position");
}

static int session_sql(MYSQL *m, const char *sql, char *errbuf, size_t errsize,
                       const siphon_source_t *src)
{
    if (mysql_query(m, sql) == 0)
        return 0;
    unsigned e = mysql_errno(m);
    return siphon_err(errbuf, errsize, siphon_my__err_fatal(e) ? SIPHON_EINVAL : SIPHON_ECONN,
                      "could not prepare the replication session on %s (%.60s): %s (error %u)%s",
                      src->redacted, sql, mysql_error(m), e, siphon_my__err_hint(e));
}

/* One connection: connect, ask for the binlog, read events until an error. Returns the error
 * (negative: retriable codes are retried by the caller) or 0 when asked to stop. */
static int session(siphon_source_t *src, char *errbuf, size_t errsize)
{
    MYSQL *m = NULL;
    MARIADB_RPL *rpl = NULL;
    MARIADB_RPL_EVENT *ev = NULL;
    int rt = (3 * src->heartbeat_ms + 999) / 1000, rc;
    char sql[2048], pos[1200];
    if (rt < 2)
        rt = 2;

    if ((rc = siphon_my__connect(&m, src, rt, errbuf, errsize)) < 0)
        return rc;
    pthread_mutex_lock(&src->mu);
    src->repl_fd = (int)mysql_get_socket(m);
    int stopping = src->stop;
    my_stream_t *st = &src->st;
    /* where to start: after the last complete transaction read (or the configured start) */
    int use_gtid = src->flavor == MY_FLAVOR_MARIADB && st->state.nm > 0;
    char file[256];
    uint64_t offset;
    snprintf(file, sizeof(file), "%s", st->resume_file);
    offset = st->resume_offset;
    if (use_gtid)
        siphon_my__gtid_format(&st->state, pos, sizeof(pos));
    else
        snprintf(pos, sizeof(pos), "%s:%" PRIu64, file, offset);
    st->checksum = src->checksum;
    pthread_mutex_unlock(&src->mu);
    if (stopping) {
        rc = 0;
        goto out;
    }

    /* MySQL 8.0.26+ reads the @source_* names (8.4 only those), older servers and MariaDB the
     * @master_* ones: set both. The dump flags ask for nothing else, so heartbeats stay the
     * v1 HEARTBEAT_LOG_EVENT libmariadb knows. */
    if ((rc = session_sql(m, "SET @master_binlog_checksum = @@global.binlog_checksum, "
                             "@source_binlog_checksum = @@global.binlog_checksum, "
                             "@@session.net_write_timeout = 3600",
                          errbuf, errsize, src)) < 0)
        goto out;
    snprintf(sql, sizeof(sql), "SET @master_heartbeat_period = %lld, "
             "@source_heartbeat_period = %lld",
             (long long)src->heartbeat_ms * 1000000LL, (long long)src->heartbeat_ms * 1000000LL);
    if ((rc = session_sql(m, sql, errbuf, errsize, src)) < 0)
        goto out;
    if (src->flavor == MY_FLAVOR_MARIADB) {
        if ((rc = session_sql(m, "SET @mariadb_slave_capability = 4", errbuf, errsize, src)) < 0)
            goto out;
        if (use_gtid) {
            snprintf(sql, sizeof(sql),
                     "SET @slave_connect_state = '%s', @slave_gtid_strict_mode = 0, "
                     "@slave_gtid_ignore_duplicates = 0",
                     pos);
            if ((rc = session_sql(m, sql, errbuf, errsize, src)) < 0)
                goto out;
        }
    }
    if (!(rpl = mariadb_rpl_init(m))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not start replication on %s: %s",
                        src->redacted, mysql_error(m));
        goto out;
    }
    char host[96];
    snprintf(host, sizeof(host), "siphon-%.80s", src->name);
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, (unsigned int)src->server_id);
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_HOST, host); /* COM_REGISTER_SLAVE: SHOW SLAVE HOSTS */
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_PORT, 0);
    if (use_gtid)
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, "", (size_t)0);
    else
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)(use_gtid ? 4 : offset));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, 0);
    if (mariadb_rpl_open(rpl)) {
        unsigned e = mysql_errno(m);
        pthread_mutex_lock(&src->mu);
        src->last_errno = e;
        pthread_mutex_unlock(&src->mu);
        if (e == 1045 || e == 1227) {
            /* We are logged in already: what failed is COM_REGISTER_SLAVE, which needs
             * REPLICATION SLAVE (libmariadb 3.3 reports it as error 1045 "Unknown or undefined
             * error code"). */
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not register as replica %" PRIu32 " of %s: the server "
                            "refused (error %u); the user needs the REPLICATION SLAVE privilege "
                            "(GRANT REPLICATION SLAVE ON *.* TO ...; see docs/mysql.md)",
                            src->server_id, src->redacted, e);
            goto out;
        }
        rc = siphon_err(errbuf, errsize, siphon_my__err_fatal(e) ? SIPHON_EINVAL : SIPHON_ECONN,
                        "could not read the binlog of %s from %s as replica %" PRIu32 ": %s "
                        "(error %u)%s",
                        src->redacted, pos, src->server_id, mysql_error(m), e,
                        siphon_my__err_hint(e));
        goto out;
    }

    int first = 1;
    for (;;) {
        ev = mariadb_rpl_fetch(rpl, ev);
        pthread_mutex_lock(&src->mu);
        if (src->stop) {
            pthread_mutex_unlock(&src->mu);
            rc = 0;
            goto out;
        }
        if (!ev) {
            unsigned e = mysql_errno(m);
            src->last_errno = e;
            pthread_mutex_unlock(&src->mu);
            if (e == 0)
                rc = siphon_err(errbuf, errsize, SIPHON_ECONN,
                                "the server ended the binlog stream of %s", src->redacted);
            else
                rc = siphon_err(errbuf, errsize,
                                siphon_my__err_fatal(e) ? SIPHON_EINVAL : SIPHON_ECONN,
                                "could not read the binlog of %s (replica %" PRIu32 "): %s "
                                "(error %u)%s",
                                src->redacted, src->server_id, mysql_error(m), e,
                                e == CR_SERVER_LOST && src->rstate == MY_R_STREAMING
                                    ? " (no heartbeat within 3 periods, or the server went "
                                      "away)"
                                    : siphon_my__err_hint(e));
            goto out;
        }
        if (first) {
            first = 0;
            src->rstate = MY_R_STREAMING;
            src->backoff_ms = MY_BACKOFF_MIN_MS;
            pthread_cond_broadcast(&src->cv_data);
            siphon_log(SIPHON_LOG_INFO, "mysql",
                       "streaming the binlog of %s %s (%s) as replica %" PRIu32 " from %s",
                       src->flavor == MY_FLAVOR_MARIADB ? "MariaDB" : "MySQL",
                       src->server_version, src->redacted, src->server_id, pos);
        }
        /* the fill batch is full: wait for next() to take it (the server keeps the binlog) */
        while (!src->stop && (src->fill->n >= MY_BATCH_MAX_RECS ||
                              src->fill->bytes >= MY_BATCH_MAX_BYTES))
            pthread_cond_wait(&src->cv_space, &src->mu);
        if (src->stop) {
            pthread_mutex_unlock(&src->mu);
            rc = 0;
            goto out;
        }
        size_t ofs = ev->raw_data_ofs + (ev->is_semi_sync ? 2 : 0);
        if (ev->raw_data && ev->raw_data_size > ofs)
            rc = siphon_my__stream_event(st, ev->raw_data + ofs, ev->raw_data_size - ofs, errbuf,
                                         errsize);
        else
            rc = 0;
        if (src->fill->n > 0)
            pthread_cond_signal(&src->cv_data);
        pthread_mutex_unlock(&src->mu);
        if (rc < 0)
            goto out; /* an event we cannot parse is fatal: the caller stops */
    }
out:
    pthread_mutex_lock(&src->mu);
    src->repl_fd = -1;
    pthread_mutex_unlock(&src->mu);
    if (ev)
        mariadb_free_rpl_event(ev);
    if (rpl)
        mariadb_rpl_close(rpl);
    mysql_close(m);
    return rc;
}

static void *reader_main(void *arg)
{
    siphon_source_t *src = arg;
    char errbuf[1024];
    mysql_thread_init();
    for (;;) {
        pthread_mutex_lock(&src->mu);
        if (src->stop) {
            pthread_mutex_unlock(&src->mu);
            break;
        }
        src->rstate = MY_R_CONNECTING;
        src->attempts++;
        pthread_mutex_unlock(&src->mu);

        errbuf[0] = '\0';
        int rc = session(src, errbuf, sizeof(errbuf));

        pthread_mutex_lock(&src->mu);
        if (src->stop) {
            pthread_mutex_unlock(&src->mu);
            break;
        }
        if (rc < 0 && !siphon_err_is_retriable(rc)) {
            src->rstate = MY_R_FAILED;
            src->fatal_code = rc;
            snprintf(src->fatal_msg, sizeof(src->fatal_msg), "%s", errbuf);
            pthread_cond_broadcast(&src->cv_data);
            pthread_mutex_unlock(&src->mu);
            break;
        }
        /* retriable: an open transaction will be read again from its start and continued
         * after what was sent of it */
        siphon_my__stream_disconnected(&src->st);
        src->rstate = MY_R_RETRYING;
        pthread_cond_broadcast(&src->cv_data);
        char at[1200];
        resume_text(src, at, sizeof(at));
        int delay = src->backoff_ms;
        src->backoff_ms = delay * 2 > MY_BACKOFF_MAX_MS ? MY_BACKOFF_MAX_MS : delay * 2;
        siphon_log(SIPHON_LOG_WARNING, "mysql", "%s; reconnecting in %d ms, resuming at %s",
                   errbuf[0] ? errbuf : "replication connection lost", delay, at);
        struct timespec until = siphon_clock_abs_after(delay);
        while (!src->stop && pthread_cond_timedwait(&src->cv_space, &src->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&src->mu);
    }
    mysql_thread_end();
    return NULL;
}

/* ---- the pinned start position ----
 *
 * A replica has no slot on the server: a connector that starts without an offsets file begins
 * at the server's current position, and until its first acknowledged position reaches the
 * offsets file a crash would make the next start begin at the (later) current position again,
 * skipping what committed in between. So the first start pins where it began in
 * <offsets.path>.mysql-start (written atomically before anything streams), and a start without
 * an offsets file resumes there. Once the offsets file exists the pin is removed. */

static char *pin_path(const siphon_config_t *cfg)
{
    if (!cfg->offsets.path || !cfg->offsets.path[0])
        return NULL;
    size_t n = strlen(cfg->offsets.path) + sizeof(".mysql-start");
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.mysql-start", cfg->offsets.path);
    return p;
}

/* The pinned position (caller frees), NULL when there is none. */
static char *pin_read(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n ? strdup(buf) : NULL;
}

static int pin_write(const char *path, const char *text, char *errbuf, size_t errsize)
{
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n), *dir = strdup(path);
    int rc = 0, fd = -1;
    if (!tmp || !dir) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                        "could not write the start position to %s: %s (the folder of "
                        "offsets.path must be writable)",
                        path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        int dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
out:
    free(tmp);
    free(dir);
    return rc;
}

/* ---- the callbacks ---- */

/* open() once; *purged says whether a failure was the stored position's binlog being gone. */
static int open_once(siphon_source_t **out, const siphon_config_t *cfg,
                     const siphon_table_ref_t *tables, int ntables, const char *resume_pos,
                     int *purged, char *errbuf, size_t errsize)
{
    siphon_source_t *src = NULL;
    char *pin = NULL, *pinned = NULL, *stored = NULL, *stream_from = NULL;
    const char *progress = NULL;
    int rc = 0;

    *purged = 0;
    if (!out || !cfg || (ntables > 0 && !tables))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not open the mysql source: bad arguments");
    *out = NULL;
    if (cfg->mysql.server_id == 0 || cfg->mysql.server_id > UINT32_MAX)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not open the mysql source: source.server_id must be a number "
                          "from 1 to 4294967295 that no other replica of the server uses");
    if (!(src = calloc(1, sizeof(*src))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    pthread_mutex_init(&src->mu, NULL);
    pthread_mutex_init(&src->cat_mu, NULL);
    siphon_clock_cond_init(&src->cv_data);
    siphon_clock_cond_init(&src->cv_space);
    src->repl_fd = -1;
    src->backoff_ms = MY_BACKOFF_MIN_MS;
    siphon_my__batch_init(&src->batches[0]);
    siphon_my__batch_init(&src->batches[1]);
    src->fill = &src->batches[0];
    src->out = &src->batches[1];
    siphon_my__stream_init(&src->st);
    siphon_arena_init(&src->sample_mem, 0);
    src->server_id = (uint32_t)cfg->mysql.server_id;
    src->heartbeat_ms = cfg->mysql.heartbeat_interval_ms > 0 ? cfg->mysql.heartbeat_interval_ms
                                                             : 5000;
    src->names_from_catalog = cfg->mysql.names_from_catalog;
    if (!(src->name = strdup(cfg->name ? cfg->name : "siphon"))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    siphon_config_redact(cfg->source.conninfo ? cfg->source.conninfo : "", src->redacted,
                         sizeof(src->redacted));
    if ((rc = siphon_my__conninfo_parse(&src->ci, cfg->source.conninfo, errbuf, errsize)) < 0)
        goto fail;
    if (ntables > 0 && !(src->tables = calloc((size_t)ntables, sizeof(*src->tables)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < ntables; i++) {
        const char *db = tables[i].schema && tables[i].schema[0] ? tables[i].schema
                         : src->ci.dbname                         ? src->ci.dbname
                                                                  : "";
        if (!(src->tables[i].db = strdup(db)) ||
            !(src->tables[i].table = strdup(tables[i].table ? tables[i].table : ""))) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto fail;
        }
        src->ntables++;
    }

    /* A stored position is "<pos>", or "<pos> snapshot <progress>" while the initial snapshot
     * is unfinished (my_snapshot.c). */
    if ((rc = siphon_my__snap_split(resume_pos, &stored, &progress)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    /* the reader is not running yet: the catalog connection is ours alone */
    pin = pin_path(cfg);
    if (stored) {
        if (pin)
            unlink(pin); /* the offsets file has taken over */
    } else if (cfg->source.snapshot == SIPHON_SNAPSHOT_NEVER && (pinned = pin_read(pin))) {
        /* (with a snapshot mode a start without a stored position snapshots afresh) */
        siphon_log(SIPHON_LOG_INFO, "mysql",
                   "no stored position yet: resuming where the first start began, %s (%s)",
                   pinned, pin);
    }
    if ((rc = siphon_my__cat_connect(src, errbuf, errsize)) < 0 ||
        (rc = siphon_my__cat_check_server(src, errbuf, errsize)) < 0)
        goto fail;

    my_stream_t *st = &src->st;
    st->flavor = src->flavor;
    st->database = src->ci.dbname ? src->ci.dbname : "";
    st->tables = src->tables;
    st->ntables = src->ntables;
    st->names_from_catalog = src->names_from_catalog;
    st->tabledef = siphon_my__cat_tabledef;
    st->tabledef_opaque = src;
    st->batch = src->fill;
    if ((rc = siphon_my__snap_setup(src, cfg, stored, progress, &stream_from, errbuf,
                                    errsize)) < 0 ||
        (rc = siphon_my__cat_start_position(src, stream_from ? stream_from : stored ? stored
                                                                                   : pinned,
                                            errbuf, errsize)) < 0)
        goto fail;
    st->mode = src->mode;
    st->checksum = src->checksum;
    if ((rc = siphon_my__gtid_copy(&st->state, &src->start_state)) < 0 ||
        (rc = siphon_my__gtid_copy(&st->skip, &src->skip)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto fail;
    }
    if (st->state.kind == MY_GTID_NONE)
        st->state.kind = src->flavor == MY_FLAVOR_MARIADB ? MY_GTID_MARIADB : MY_GTID_MYSQL;
    snprintf(st->resume_file, sizeof(st->resume_file), "%s", src->start_file);
    st->resume_offset = src->start_offset;
    snprintf(st->file, sizeof(st->file), "%s", src->start_file);
    st->file_seq = siphon_my__file_seq(st->file);
    if (pin && !stored && !pinned && !src->snap) {
        char text[sizeof(st->last_commit_pos)];
        siphon_my__stream_position(st, text, sizeof(text));
        if (!text[0] && src->start_file[0])
            snprintf(text, sizeof(text), "%s:%" PRIu64, src->start_file, src->start_offset);
        if (text[0] && (rc = pin_write(pin, text, errbuf, errsize)) < 0)
            goto fail;
    }

    /* The reader ignores signals: the CLI's handlers run on the pipeline's thread. With
     * snapshot: initial_only there is no stream. */
    if (!src->stop_after_snapshot) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = pthread_create(&src->thr, NULL, reader_main, src);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                            "could not start the binlog reader thread: %s", strerror(e));
            goto fail;
        }
        src->thr_started = 1;
    }

    /* Wait for the first attempt, so that errors the server would repeat forever (grants, a
     * purged binlog) fail open() rather than the first next(). A retriable failure leaves
     * the reader retrying with its backoff. */
    pthread_mutex_lock(&src->mu);
    struct timespec until = siphon_clock_abs_after((int64_t)(src->ci.connect_timeout_s + 5) * 1000);
    while (src->thr_started && src->rstate == MY_R_CONNECTING &&
           pthread_cond_timedwait(&src->cv_data, &src->mu, &until) == 0)
        ;
    if (src->rstate == MY_R_FAILED) {
        rc = siphon_err(errbuf, errsize, src->fatal_code, "%s", src->fatal_msg);
        pthread_mutex_unlock(&src->mu);
        goto fail;
    }
    pthread_mutex_unlock(&src->mu);
    src->pin = pin;
    src->offsets_path = cfg->offsets.path ? strdup(cfg->offsets.path) : NULL;
    free(pinned);
    free(stored);
    free(stream_from);
    *out = src;
    return 0;
fail:
    free(pin);
    free(pinned);
    free(stored);
    free(stream_from);
    *purged = src && src->last_errno == ER_MASTER_FATAL_ERROR_READING_BINLOG;
    my_close(src);
    return rc;
}

/* snapshot: when_needed also snapshots when the stored position can no longer be read (its
 * binlog was purged): the connector then starts as if nothing were stored. */
static int my_open(siphon_source_t **out, const siphon_config_t *cfg,
                   const siphon_table_ref_t *tables, int ntables, const char *resume_pos,
                   char *errbuf, size_t errsize)
{
    int purged = 0;
    int rc = open_once(out, cfg, tables, ntables, resume_pos, &purged, errbuf, errsize);
    if (rc < 0 && purged && cfg && cfg->source.snapshot == SIPHON_SNAPSHOT_WHEN_NEEDED &&
        resume_pos && resume_pos[0]) {
        siphon_log(SIPHON_LOG_WARNING, "mysql",
                   "the stored position is no longer available (%s) (snapshot: when_needed): "
                   "taking a new snapshot of every table and streaming from its position",
                   errbuf);
        rc = open_once(out, cfg, tables, ntables, NULL, &purged, errbuf, errsize);
    }
    return rc;
}

static int my_describe(siphon_source_t *src, const char *schema, const char *table,
                       const siphon_relation_t **rel, char *errbuf, size_t errsize)
{
    if (!src || !table || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not describe a table: bad arguments");
    const char *db = schema && schema[0] ? schema : src->ci.dbname ? src->ci.dbname : "";
    return siphon_my__cat_describe(src, db, table, rel, errbuf, errsize);
}

static int my_next(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms, char *errbuf,
                   size_t errsize)
{
    if (!src || !batch)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read changes: bad arguments");
    batch->recs = NULL;
    batch->n = 0;
    if (src->snap) {
        /* the snapshot's chunks come first; the reader meanwhile waits with one full batch */
        int rc = siphon_my__snap_next(src, batch, timeout_ms, errbuf, errsize);
        if (rc <= 0)
            return rc;
    }
    if (src->stop_after_snapshot)
        return SIPHON_ESTOP; /* snapshot: initial_only */
    pthread_mutex_lock(&src->mu);
    /* the previous batch is done: its records, rows and values go */
    siphon_my__batch_reset(src->out);
    int64_t now = siphon_clock_now_ms(), deadline = now + (timeout_ms > 0 ? timeout_ms : 0);
    int64_t linger_until = 0;
    for (;;) {
        my_batch_t *f = src->fill;
        if (f->n >= MY_LINGER_RECS || f->n >= MY_BATCH_MAX_RECS || f->bytes >= MY_BATCH_MAX_BYTES ||
            src->rstate == MY_R_FAILED)
            break;
        int64_t wait_until = deadline;
        if (f->n > 0) {
            if (!linger_until)
                linger_until = now + MY_LINGER_MS;
            if (now >= linger_until)
                break;
            if (linger_until < wait_until)
                wait_until = linger_until;
        }
        if (now >= deadline)
            break;
        struct timespec ts = siphon_clock_abs_after(wait_until - now);
        pthread_cond_timedwait(&src->cv_data, &src->mu, &ts);
        now = siphon_clock_now_ms();
    }
    if (src->fill->n > 0) {
        my_batch_t *t = src->out;
        src->out = src->fill;
        src->fill = t;
        src->st.batch = src->fill;
        pthread_cond_signal(&src->cv_space);
    } else if (src->rstate == MY_R_FAILED) {
        int rc = siphon_err(errbuf, errsize, src->fatal_code, "%s", src->fatal_msg);
        pthread_mutex_unlock(&src->mu);
        return rc;
    }
    batch->recs = src->out->recs;
    batch->n = src->out->n;
    pthread_mutex_unlock(&src->mu);
    return 0;
}

static int my_ack(siphon_source_t *src, const siphon_pos_t *pos, char *errbuf, size_t errsize)
{
    if (!src || !pos)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not acknowledge: bad arguments");
    if (pos->text) {
        pthread_mutex_lock(&src->mu);
        snprintf(src->acked, sizeof(src->acked), "%s", pos->text);
        pthread_mutex_unlock(&src->mu);
    }
    return 0;
}

static int my_pos_format(const siphon_pos_t *pos, char *buf, size_t size)
{
    if (!pos || !buf || size == 0)
        return SIPHON_EINVAL;
    const char *t = pos->text ? pos->text : "";
    size_t n = strlen(t);
    if (n >= size) {
        /* never hand out a cut position: an empty one is ignored, a cut one would lie */
        buf[0] = '\0';
        return SIPHON_EINVAL;
    }
    memcpy(buf, t, n + 1);
    return 0;
}

static int my_pos_parse(siphon_pos_t *pos, const char *text, char *errbuf, size_t errsize)
{
    my_pos_t p;
    if (!pos || !text)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not parse a binlog position: bad arguments");
    pos->text = NULL;
    pos->num = 0;
    char *stored = NULL;
    const char *progress = NULL;
    if (siphon_my__snap_split(text, &stored, &progress) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    int rc = siphon_my__pos_parse(&p, stored ? stored : "", errbuf, errsize);
    free(stored);
    if (rc < 0)
        return rc;
    if (p.kind == MY_POS_FILE)
        pos->num = (siphon_my__file_seq(p.file) << 32) | (p.offset & 0xFFFFFFFFu);
    siphon_my__pos_free(&p);
    if (!(pos->text = strdup(text)))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    return 0;
}

static void my_close(siphon_source_t *src)
{
    if (!src)
        return;
    siphon_my__snap_free(src);
    if (src->thr_started) {
        pthread_mutex_lock(&src->mu);
        src->stop = 1;
        if (src->repl_fd >= 0)
            shutdown(src->repl_fd, SHUT_RDWR); /* wakes the reader out of its read */
        pthread_cond_broadcast(&src->cv_space);
        pthread_cond_broadcast(&src->cv_data);
        pthread_mutex_unlock(&src->mu);
        pthread_join(src->thr, NULL);
        siphon_log(SIPHON_LOG_INFO, "mysql",
                   "stopped reading the binlog of %s; acknowledged up to %s", src->redacted,
                   src->acked[0] ? src->acked : "(nothing yet)");
    }
    /* the offsets file holds a position now: the pinned start is no longer needed */
    if (src->pin && src->offsets_path && access(src->offsets_path, F_OK) == 0)
        unlink(src->pin);
    free(src->pin);
    free(src->offsets_path);
    if (src->cat)
        mysql_close(src->cat);
    siphon_my__stream_destroy(&src->st);
    siphon_my__batch_destroy(&src->batches[0]);
    siphon_my__batch_destroy(&src->batches[1]);
    siphon_arena_destroy(&src->sample_mem);
    siphon_my__gtid_free(&src->start_state);
    siphon_my__gtid_free(&src->skip);
    for (int i = 0; i < src->ntables; i++) {
        free(src->tables[i].db);
        free(src->tables[i].table);
    }
    free(src->tables);
    siphon_my__conninfo_free(&src->ci);
    free(src->name);
    pthread_cond_destroy(&src->cv_data);
    pthread_cond_destroy(&src->cv_space);
    pthread_mutex_destroy(&src->mu);
    pthread_mutex_destroy(&src->cat_mu);
    free(src);
}

const siphon_source_ops_t siphon_mysql_source = {
    .type = "mysql",
    .open = my_open,
    .describe = my_describe,
    .next = my_next,
    .ack = my_ack,
    .pos_format = my_pos_format,
    .pos_parse = my_pos_parse,
    .close = my_close,
    .open_catalog = siphon_my__open_catalog,
    .sample = siphon_my__sample,
};
