/*
 * th_pg.c - a throwaway PostgreSQL 15 cluster for integration tests.
 *
 * Lifecycle: th_pg_start() makes /tmp/siphon-it-XXXXXX, initdb's data/ in it (as the `postgres`
 * OS user when the test runs as root: initdb and postgres refuse root), writes the settings
 * logical decoding needs (wal_level=logical, 10 senders and slots) plus fsync=off for speed,
 * picks a free TCP port and starts the server with `pg_ctl -w`. The postmaster is registered
 * with the cleanup registry so that it is stopped even when the test dies; th_pg_destroy() stops
 * it and removes the directory. Authentication is `trust`: the superuser `postgres` connects
 * with any password (tests that put a password in the conninfo rely on that).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_int.h"

struct th_pg {
    char *dir;      /* the temp dir (owned by postgres when we are root) */
    char *data;     /* <dir>/data */
    char *logfile;  /* <dir>/server.log */
    char *sockdir;  /* <dir>/sock */
    int port;
    char conninfo[256];
    pid_t postmaster;
    PGconn *conn;   /* the harness's own connection, for th_pg_exec/query */
};

/* A free TCP port on 127.0.0.1 (bind port 0 and read it back). -1 on error. */
static int th__free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Run a PostgreSQL program, as `postgres` when we are root. 0 when it exits 0; otherwise its
 * output is printed and -1 returned. */
static int th__pg_run(th_pg_t *pg, const char *what, char *const pgargv[], int timeout_ms)
{
    char *argv[32];
    int n = 0;
    if (geteuid() == 0) {
        argv[n++] = "/usr/sbin/runuser";
        if (access(argv[0], X_OK) != 0)
            argv[0] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    for (int i = 0; pgargv[i] && n < 31; i++)
        argv[n++] = pgargv[i];
    argv[n] = NULL;
    int code = -1;
    char *out = NULL, *err = NULL;
    int rc = th__run_full(argv, NULL, pg->dir, timeout_ms, &code, &out, &err);
    if (rc == 0 && code != 0)
        rc = th_err("could not %s: %s exited with code %d\n%s%s", what, pgargv[0], code,
                    out ? out : "", err ? err : "");
    else if (rc != 0)
        th_err("could not %s (timeout)\n%s%s", what, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

static pid_t th__read_postmaster_pid(th_pg_t *pg)
{
    char *f = th_path(pg->data, "postmaster.pid");
    char *s = th_read_file(f, NULL, 1);
    free(f);
    pid_t pid = s ? (pid_t)atoi(s) : 0;
    free(s);
    return pid;
}

static int th__pg_ctl_start(th_pg_t *pg)
{
    char *const argv[] = {TH_PG_BIN "/pg_ctl", "-D", pg->data, "-l", pg->logfile, "-w",
                          "-t", "60", "start", NULL};
    if (th__pg_run(pg, "start PostgreSQL", argv, 70000) != 0) {
        th_pg_dump_log(pg, 40);
        return -1;
    }
    pg->postmaster = th__read_postmaster_pid(pg);
    if (pg->postmaster <= 0)
        return th_err("could not read the postmaster pid from %s/postmaster.pid", pg->data);
    th__register_pid(pg->postmaster, TH_PID_POSTMASTER);
    return 0;
}

static int th__pg_ctl_stop(th_pg_t *pg, const char *mode)
{
    if (pg->conn) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    if (pg->postmaster <= 0)
        return 0;
    char *const argv[] = {TH_PG_BIN "/pg_ctl", "-D", pg->data, "-m", (char *)mode, "-w",
                          "-t", "60", "stop", NULL};
    int rc = th__pg_run(pg, "stop PostgreSQL", argv, 70000);
    if (rc != 0)
        th__kill_postmaster(pg->postmaster, 5000);
    /* pg_ctl returns when postmaster.pid is gone, a moment before the process is */
    for (int64_t until = th_now_ms() + 5000; th_pid_alive(pg->postmaster) && th_now_ms() < until;)
        th_sleep_ms(5);
    th__unregister_pid(pg->postmaster);
    pg->postmaster = 0;
    return rc;
}

th_pg_t *th_pg_start(void)
{
    th_pg_t *pg = calloc(1, sizeof(*pg));
    if (!pg)
        abort();
    pg->dir = th_tempdir();
    if (!pg->dir) {
        free(pg);
        return NULL;
    }
    pg->data = th_path(pg->dir, "data");
    pg->logfile = th_path(pg->dir, "server.log");
    pg->sockdir = th_path(pg->dir, "sock");
    if (mkdir(pg->sockdir, 0700) != 0) {
        th_err("could not create \"%s\": %s", pg->sockdir, strerror(errno));
        goto fail;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            th_err("could not find the OS user \"postgres\" (initdb refuses root): install the "
                   "postgresql package");
            goto fail;
        }
        if (chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0 ||
            chown(pg->sockdir, pw->pw_uid, pw->pw_gid) != 0) {
            th_err("could not chown \"%s\" to postgres: %s", pg->dir, strerror(errno));
            goto fail;
        }
    }
    {
        char *const argv[] = {TH_PG_BIN "/initdb", "-D", pg->data, "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C", "-N", NULL};
        if (th__pg_run(pg, "initdb a test cluster", argv, 120000) != 0)
            goto fail;
    }
    pg->port = th__free_port();
    if (pg->port <= 0) {
        th_err("could not find a free TCP port: %s", strerror(errno));
        goto fail;
    }
    {
        char *conf = th_path(pg->data, "postgresql.conf");
        FILE *f = fopen(conf, "a");
        if (!f) {
            th_err("could not open \"%s\": %s", conf, strerror(errno));
            free(conf);
            goto fail;
        }
        fprintf(f,
                "\n# siphon test harness\n"
                "port = %d\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = '%s'\n"
                "wal_level = logical\n"
                "max_wal_senders = 10\n"
                "max_replication_slots = 10\n"
                "max_connections = 40\n"
                "shared_buffers = 32MB\n"
                "fsync = off\n"
                "synchronous_commit = on\n"
                "full_page_writes = off\n"
                "wal_sender_timeout = 60s\n"
                "log_replication_commands = on\n"
                "track_commit_timestamp = on\n"
                "log_min_messages = warning\n"
                "log_line_prefix = '%%m [%%p] %%q%%a '\n"
                "timezone = 'UTC'\n",
                pg->port, pg->sockdir);
        fclose(f);
        free(conf);
    }
    snprintf(pg->conninfo, sizeof(pg->conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres", pg->port);
    if (th__pg_ctl_start(pg) != 0)
        goto fail;
    return pg;

fail:
    th_pg_destroy(pg);
    return NULL;
}

const char *th_pg_conninfo(const th_pg_t *pg)
{
    return pg->conninfo;
}

int th_pg_port(const th_pg_t *pg)
{
    return pg->port;
}

const char *th_pg_dir(const th_pg_t *pg)
{
    return pg->dir;
}

pid_t th_pg_postmaster_pid(const th_pg_t *pg)
{
    return pg->postmaster;
}

int th_pg_stop(th_pg_t *pg)
{
    return th__pg_ctl_stop(pg, "fast");
}

int th_pg_start_again(th_pg_t *pg)
{
    if (pg->postmaster > 0)
        return 0;
    return th__pg_ctl_start(pg);
}

int th_pg_restart(th_pg_t *pg)
{
    if (th_pg_stop(pg) != 0)
        return -1;
    return th__pg_ctl_start(pg);
}

PGconn *th_pg_connect(const th_pg_t *pg)
{
    PGconn *c = PQconnectdb(pg->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        th_err("could not connect to the test server (%s): %s", pg->conninfo,
               PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

static PGconn *th__conn(th_pg_t *pg)
{
    if (pg->conn && PQstatus(pg->conn) != CONNECTION_OK) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    if (!pg->conn)
        pg->conn = th_pg_connect(pg);
    return pg->conn;
}

/* Run sql; when the connection turns out broken (server restarted), reconnect once and retry. */
static PGresult *th__exec(th_pg_t *pg, const char *sql, int want_tuples)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = th__conn(pg);
        if (!c)
            return NULL;
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (want_tuples && st != PGRES_TUPLES_OK) {
                PQclear(r);
                th_err("query returned no rows: %s", sql);
                return NULL;
            }
            return r;
        }
        int broken = PQstatus(c) != CONNECTION_OK;
        if (broken && attempt == 0) {
            PQclear(r);
            continue;
        }
        th_err("could not run SQL: %s\n  statement: %.500s", PQresultErrorMessage(r), sql);
        PQclear(r);
        return NULL;
    }
    return NULL;
}

int th_pg_exec(th_pg_t *pg, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    PGresult *r = th__exec(pg, sql, 0);
    free(sql);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

PGresult *th_pg_query(th_pg_t *pg, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    PGresult *r = th__exec(pg, sql, 0);
    free(sql);
    return r;
}

char *th_pg_value(th_pg_t *pg, int *found, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (found)
        *found = 0;
    PGresult *r = th__exec(pg, sql, 1);
    free(sql);
    if (!r)
        return NULL;
    char *v = NULL;
    if (PQntuples(r) > 0 && PQnfields(r) > 0) {
        if (found)
            *found = 1;
        if (!PQgetisnull(r, 0, 0)) {
            v = strdup(PQgetvalue(r, 0, 0));
            if (!v)
                abort();
        }
    }
    PQclear(r);
    return v;
}

int th_pg_exec_file(th_pg_t *pg, const char *path)
{
    char *sql = th_read_file(path, NULL, 0);
    if (!sql)
        return -1;
    PGresult *r = th__exec(pg, sql, 0);
    free(sql);
    if (!r)
        return th_err("could not run SQL file \"%s\" (see above)", path);
    PQclear(r);
    return 0;
}

PGconn *th_erp_create(th_pg_t *pg, char **conninfo)
{
    static const char *const files[] = {"examples/legacy-erp/erp.sql",
                                        "examples/legacy-erp/generate.sql"};
    if (conninfo)
        *conninfo = NULL;
    if (th_pg_exec(pg, "CREATE DATABASE erp ENCODING 'SQL_ASCII' TEMPLATE template0 "
                       "LC_COLLATE 'C' LC_CTYPE 'C'") != 0)
        return NULL;
    char *ci = th_strf("host=127.0.0.1 port=%d user=postgres dbname=erp", th_pg_port(pg));
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        th_err("could not connect to erp: %s", PQerrorMessage(c));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        char *p = th_path(th_source_dir(), files[i]);
        char *sql = th_read_file(p, NULL, 0);
        free(p);
        PGresult *r = sql ? PQexec(c, sql) : NULL;
        free(sql);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            th_err("could not load %s into erp: %s", files[i],
                   r ? PQresultErrorMessage(r) : "could not read the file");
            PQclear(r);
            goto fail;
        }
        PQclear(r);
    }
    if (conninfo)
        *conninfo = ci;
    else
        free(ci);
    return c;
fail:
    PQfinish(c);
    free(ci);
    return NULL;
}

int th_pg_terminate_walsenders(th_pg_t *pg)
{
    char *v = th_pg_value(pg, NULL,
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE backend_type = 'walsender'");
    if (!v)
        return -1;
    int n = atoi(v);
    free(v);
    return n;
}

int th_pg_walsenders(th_pg_t *pg)
{
    char *v = th_pg_value(pg, NULL, "SELECT count(*) FROM pg_stat_replication");
    if (!v)
        return -1;
    int n = atoi(v);
    free(v);
    return n;
}

int th_pg_streaming_walsender(th_pg_t *pg)
{
    char *v = th_pg_value(pg, NULL,
                          "SELECT coalesce(min(pid), 0) FROM pg_stat_replication "
                          "WHERE state = 'streaming'");
    if (!v)
        return -1;
    int pid = atoi(v);
    free(v);
    return pid;
}

int th_pg_slot_confirmed(th_pg_t *pg, const char *slot, uint64_t *lsn)
{
    int found = 0;
    for (const char *c = slot; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return th_err("slot name \"%s\" is not [a-z0-9_]+", slot);
    char *v = th_pg_value(pg, &found,
                          "SELECT confirmed_flush_lsn FROM pg_replication_slots "
                          "WHERE slot_name = '%s'",
                          slot);
    if (!found) {
        free(v);
        return -1;
    }
    *lsn = 0;
    if (v && th_lsn_parse(v, lsn) != 0) {
        th_err("could not parse confirmed_flush_lsn \"%s\"", v);
        free(v);
        return -1;
    }
    free(v);
    return 0;
}

int th_pg_current_lsn(th_pg_t *pg, uint64_t *lsn)
{
    char *v = th_pg_value(pg, NULL, "SELECT pg_current_wal_lsn()");
    if (!v)
        return -1;
    int rc = th_lsn_parse(v, lsn);
    free(v);
    return rc;
}

void th_pg_dump_log(const th_pg_t *pg, int max_lines)
{
    if (pg && pg->logfile)
        th__dump_path("PostgreSQL server log", pg->logfile, max_lines);
}

void th_pg_destroy(th_pg_t *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    if (pg->postmaster > 0) {
        /* immediate: the data is thrown away anyway */
        if (th__pg_ctl_stop(pg, "immediate") != 0)
            th_err("PostgreSQL in %s did not stop cleanly; killed", pg->dir);
    }
    th_tempdir_remove(pg->dir);
    free(pg->dir);
    free(pg->data);
    free(pg->logfile);
    free(pg->sockdir);
    free(pg);
}
