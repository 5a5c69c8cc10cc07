/*
 * th_mysql.c - a throwaway MariaDB 10.11 for the MySQL connector's integration tests and
 * benchmark, the siphon.yaml that reads it, and a writer thread committing versioned rows into
 * the sample order table (the MariaDB twin of th_writer.c).
 *
 * Lifecycle: th_my_start() makes /tmp/siphon-it-XXXXXX, runs mariadb-install-db into data/
 * (root allowed with --user=root; root@localhost with no password), picks a free TCP port and
 * starts mariadbd as a child process (killed with the test, see th_proc.c) with its socket in
 * the temp dir, the binary log on (ROW, FULL image, FULL metadata unless asked otherwise) and
 * small InnoDB buffers, so several tests can run side by side. th_my_destroy() stops it and
 * removes the directory.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mysql.h>

#include "harness_int.h"

struct th_my {
    char *dir;
    char *data;
    char *sock;
    char *errlog;
    char *proclog;
    int port;
    char conninfo[512];
    th_proc_t *proc;
    MYSQL *conn; /* the harness's own connection */
    th_my_opts_t opts;
    char row_metadata[16];
    char extra[512];
};

static int th__my_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* A connection over the socket (as root), or NULL (quiet: used while waiting for start). */
static MYSQL *th__my_try_connect(const th_my_t *my, int quiet)
{
    MYSQL *m = mysql_init(NULL);
    if (!m)
        abort();
    unsigned ct = 5;
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(m, NULL, "root", NULL, NULL, 0, my->sock, CLIENT_MULTI_STATEMENTS)) {
        if (!quiet)
            th_err("could not connect to MariaDB at %s: %s", my->sock, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    if (mysql_query(m, "SET time_zone = '+00:00'")) {
        th_err("could not set the session time zone: %s", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static int th__my_spawn(th_my_t *my)
{
    char *argv[48];
    int n = 0;
    char a_data[600], a_port[32], a_sock[600], a_pid[600], a_err[600], a_meta[64];
    snprintf(a_data, sizeof(a_data), "--datadir=%s", my->data);
    snprintf(a_port, sizeof(a_port), "--port=%d", my->port);
    snprintf(a_sock, sizeof(a_sock), "--socket=%s", my->sock);
    snprintf(a_pid, sizeof(a_pid), "--pid-file=%s/mariadbd.pid", my->dir);
    snprintf(a_err, sizeof(a_err), "--log-error=%s", my->errlog);
    snprintf(a_meta, sizeof(a_meta), "--binlog-row-metadata=%s", my->row_metadata);
    argv[n++] = "/usr/sbin/mariadbd";
    argv[n++] = "--no-defaults";
    argv[n++] = a_data;
    if (geteuid() == 0)
        argv[n++] = "--user=root";
    argv[n++] = a_port;
    argv[n++] = "--bind-address=127.0.0.1";
    argv[n++] = a_sock;
    argv[n++] = a_pid;
    argv[n++] = a_err;
    argv[n++] = "--log-bin=binlog";
    argv[n++] = "--server-id=1";
    argv[n++] = "--binlog-format=ROW";
    argv[n++] = "--binlog-row-image=FULL";
    argv[n++] = a_meta;
    argv[n++] = "--character-set-server=utf8mb4";
    argv[n++] = "--collation-server=utf8mb4_general_ci";
    argv[n++] = "--innodb-buffer-pool-size=16M";
    argv[n++] = "--innodb-log-file-size=8M";
    argv[n++] = "--innodb-flush-log-at-trx-commit=2";
    argv[n++] = "--sync-binlog=0";
    argv[n++] = "--skip-name-resolve";
    argv[n++] = "--performance-schema=OFF";
    argv[n++] = "--max-connections=60";
    argv[n++] = "--max-binlog-size=1G";
    argv[n++] = "--skip-log-bin-trust-function-creators";
    int nfixed = n;
    /* extra options, space-separated, appended last (they win) */
    char extra[512];
    snprintf(extra, sizeof(extra), "%s", my->extra);
    for (char *save = NULL, *t = strtok_r(extra, " ", &save); t && n < 46;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = strdup(t);
    argv[n] = NULL;
    my->proc = th_proc_spawn(argv, my->proclog);
    for (int i = nfixed; i < n; i++)
        free(argv[i]);
    return my->proc ? 0 : -1;
}

static int th__my_wait_ready(th_my_t *my, int timeout_ms)
{
    int64_t until = th_now_ms() + timeout_ms;
    while (th_now_ms() < until) {
        if (!th_proc_running(my->proc)) {
            th_err("mariadbd exited with code %d while starting", th_proc_exit_code(my->proc));
            th_my_dump_log(my, 40);
            return -1;
        }
        MYSQL *m = th__my_try_connect(my, 1);
        if (m) {
            my->conn = m;
            return 0;
        }
        th_sleep_ms(50);
    }
    th_err("mariadbd did not accept connections within %d ms", timeout_ms);
    th_my_dump_log(my, 40);
    return -1;
}

th_my_t *th_my_start(const th_my_opts_t *opts)
{
    th_my_t *my = calloc(1, sizeof(*my));
    if (!my)
        abort();
    if (opts)
        my->opts = *opts;
    snprintf(my->row_metadata, sizeof(my->row_metadata), "%s",
             opts && opts->row_metadata ? opts->row_metadata : "FULL");
    snprintf(my->extra, sizeof(my->extra), "%s", opts && opts->extra_args ? opts->extra_args : "");
    my->dir = th_tempdir();
    if (!my->dir) {
        free(my);
        return NULL;
    }
    my->data = th_path(my->dir, "data");
    my->sock = th_path(my->dir, "mysqld.sock");
    my->errlog = th_path(my->dir, "server.log");
    my->proclog = th_path(my->dir, "mariadbd.out");
    {
        char a_data[600];
        snprintf(a_data, sizeof(a_data), "--datadir=%s", my->data);
        char *argv[16];
        int n = 0;
        argv[n++] = "/usr/bin/mariadb-install-db";
        argv[n++] = "--no-defaults";
        argv[n++] = a_data;
        if (geteuid() == 0)
            argv[n++] = "--user=root";
        argv[n++] = "--auth-root-authentication-method=normal";
        argv[n++] = "--skip-test-db";
        argv[n++] = "--skip-name-resolve";
        argv[n++] = "--innodb-buffer-pool-size=16M";
        argv[n++] = "--innodb-log-file-size=8M";
        argv[n] = NULL;
        int code = -1;
        char *out = NULL, *err = NULL;
        int rc = th_run(argv, NULL, 120000, &code, &out, &err);
        if (rc != 0 || code != 0) {
            th_err("could not initialize a MariaDB data directory: mariadb-install-db exited "
                   "with code %d\n%s%s",
                   code, out ? out : "", err ? err : "");
            free(out);
            free(err);
            goto fail;
        }
        free(out);
        free(err);
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        my->port = th__my_free_port();
        if (my->port <= 0) {
            th_err("could not find a free TCP port: %s", strerror(errno));
            goto fail;
        }
        snprintf(my->conninfo, sizeof(my->conninfo), "host=127.0.0.1 port=%d user=root",
                 my->port);
        if (th__my_spawn(my) != 0)
            goto fail;
        if (th__my_wait_ready(my, 60000) == 0)
            return my;
        /* the port may have been taken meanwhile: try another */
        th_proc_destroy(my->proc);
        my->proc = NULL;
        if (!th_file_contains(my->errlog, "Address already in use"))
            goto fail;
    }
fail:
    th_my_destroy(my);
    return NULL;
}

const char *th_my_conninfo(const th_my_t *my)
{
    return my->conninfo;
}

int th_my_port(const th_my_t *my)
{
    return my->port;
}

const char *th_my_dir(const th_my_t *my)
{
    return my->dir;
}

const char *th_my_socket(const th_my_t *my)
{
    return my->sock;
}

static MYSQL *th__my_conn(th_my_t *my)
{
    if (my->conn && mysql_ping(my->conn) == 0)
        return my->conn;
    if (my->conn)
        mysql_close(my->conn);
    my->conn = th__my_try_connect(my, 0);
    return my->conn;
}

/* Run sql (maybe several statements) and discard every result. */
static int th__my_run(th_my_t *my, const char *sql)
{
    MYSQL *m = th__my_conn(my);
    if (!m)
        return -1;
    if (mysql_query(m, sql) != 0)
        return th_err("could not run SQL on MariaDB: %s (error %u)\n  %.500s", mysql_error(m),
                      mysql_errno(m), sql);
    int rc = 0;
    do {
        MYSQL_RES *res = mysql_store_result(m);
        if (res)
            mysql_free_result(res);
        else if (mysql_field_count(m) != 0)
            rc = th_err("could not read a result: %s", mysql_error(m));
        int nr = mysql_next_result(m);
        if (nr > 0) {
            rc = th_err("could not run SQL on MariaDB: %s (error %u)\n  %.500s", mysql_error(m),
                        mysql_errno(m), sql);
            break;
        }
        if (nr < 0)
            break;
    } while (1);
    return rc;
}

int th_my_exec(th_my_t *my, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    int rc = th__my_run(my, sql);
    free(sql);
    return rc;
}

int th_my_row(th_my_t *my, char ***vals, unsigned long **lens, int *ncols, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    *vals = NULL;
    *ncols = 0;
    if (lens)
        *lens = NULL;
    MYSQL *m = th__my_conn(my);
    int rc = -1;
    if (!m)
        goto out;
    if (mysql_query(m, sql) != 0) {
        th_err("could not run query on MariaDB: %s\n  %.500s", mysql_error(m), sql);
        goto out;
    }
    MYSQL_RES *res = mysql_store_result(m);
    if (!res) {
        th_err("query returned no result set: %.200s", sql);
        goto out;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (!row) {
        mysql_free_result(res);
        rc = 0; /* no row */
        goto out;
    }
    unsigned n = mysql_num_fields(res);
    unsigned long *l = mysql_fetch_lengths(res);
    *vals = calloc(n, sizeof(char *));
    if (lens)
        *lens = calloc(n, sizeof(unsigned long));
    if (!*vals || (lens && !*lens))
        abort();
    for (unsigned i = 0; i < n; i++) {
        if (!row[i])
            continue;
        (*vals)[i] = malloc(l[i] + 1);
        if (!(*vals)[i])
            abort();
        memcpy((*vals)[i], row[i], l[i]);
        (*vals)[i][l[i]] = '\0';
        if (lens)
            (*lens)[i] = l[i];
    }
    *ncols = (int)n;
    mysql_free_result(res);
    rc = 1;
out:
    free(sql);
    return rc;
}

void th_my_row_free(char **vals, unsigned long *lens, int ncols)
{
    for (int i = 0; vals && i < ncols; i++)
        free(vals[i]);
    free(vals);
    free(lens);
}

char *th_my_value(th_my_t *my, int *found, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    char **vals = NULL;
    int n = 0;
    int rc = th_my_row(my, &vals, NULL, &n, "%s", sql);
    free(sql);
    if (found)
        *found = rc == 1;
    char *v = NULL;
    if (rc == 1 && n > 0 && vals[0])
        v = strdup(vals[0]);
    th_my_row_free(vals, NULL, n);
    return v;
}

int th_my_dump_threads(th_my_t *my)
{
    char *v = th_my_value(my, NULL,
                          "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND "
                          "LIKE 'Binlog Dump%%'");
    int n = v ? atoi(v) : -1;
    free(v);
    return n;
}

int th_my_kill_dump_threads(th_my_t *my)
{
    MYSQL *m = th__my_conn(my);
    if (!m)
        return -1;
    if (mysql_query(m, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE "
                       "'Binlog Dump%'"))
        return th_err("could not list dump threads: %s", mysql_error(m));
    MYSQL_RES *res = mysql_store_result(m);
    if (!res)
        return -1;
    long ids[64];
    int n = 0;
    for (MYSQL_ROW row; (row = mysql_fetch_row(res)) && n < 64;)
        ids[n++] = atol(row[0]);
    mysql_free_result(res);
    int killed = 0;
    for (int i = 0; i < n; i++)
        if (th_my_exec(my, "KILL %ld", ids[i]) == 0)
            killed++;
    return killed;
}

int th_my_signal(th_my_t *my, int sig)
{
    return my->proc ? th_proc_signal(my->proc, sig) : -1;
}

void th_my_dump_log(const th_my_t *my, int max_lines)
{
    if (!my)
        return;
    th__dump_path("mariadbd error log", my->errlog, max_lines);
}

void th_my_destroy(th_my_t *my)
{
    if (!my)
        return;
    if (my->conn)
        mysql_close(my->conn);
    if (my->proc) {
        th_proc_signal(my->proc, SIGTERM);
        if (!th_proc_wait(my->proc, 15000))
            th_proc_signal(my->proc, SIGKILL);
        th_proc_destroy(my->proc);
    }
    if (my->dir)
        th_tempdir_remove(my->dir);
    free(my->dir);
    free(my->data);
    free(my->sock);
    free(my->errlog);
    free(my->proclog);
    free(my);
}

/* ---- siphon.yaml for a MySQL source ---- */

static void th__my_yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int th_my_conf_write(const char *path, const th_my_conf_t *c)
{
    if (!c->conninfo || !c->offsets_path)
        return th_err("could not write %s: conninfo and offsets_path are required", path);
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not create \"%s\"", path);
    char *mappings = c->mappings_dir ? strdup(c->mappings_dir) : th_path(th_source_dir(), "mappings");
    char *schemas = c->schemas_dir ? strdup(c->schemas_dir) : th_path(th_source_dir(), "schemas");
    fprintf(f, "# written by the siphon test harness (th_mysql.c)\nname: ");
    th__my_yq(f, c->name ? c->name : "it");
    fprintf(f, "\nsource:\n  type: mysql\n  conninfo: ");
    th__my_yq(f, c->conninfo);
    fprintf(f, "\n  server_id: %u\n", c->server_id ? c->server_id : 4201u);
    if (c->heartbeat_ms > 0)
        fprintf(f, "  heartbeat_interval_ms: %d\n", c->heartbeat_ms);
    fprintf(f, "  snapshot: %s\n", c->snapshot ? c->snapshot : "never");
    if (c->snapshot_connections > 0)
        fprintf(f, "  snapshot_connections: %d\n", c->snapshot_connections);
    if (c->snapshot_chunk_rows > 0)
        fprintf(f, "  snapshot_chunk_rows: %d\n", c->snapshot_chunk_rows);
    if (c->extra_source)
        fprintf(f, "%s\n", c->extra_source);
    fprintf(f, "mappings: ");
    th__my_yq(f, mappings);
    fprintf(f, "\nschemas: ");
    th__my_yq(f, schemas);
    fprintf(f, "\nsink:\n  type: kafka\n  topic_prefix: ");
    th__my_yq(f, c->topic_prefix ? c->topic_prefix : "it");
    fprintf(f, "\n  tombstones: true\n  properties:\n    bootstrap.servers: ");
    th__my_yq(f, c->bootstraps ? c->bootstraps : "");
    fprintf(f, "\noffsets:\n  path: ");
    th__my_yq(f, c->offsets_path);
    if (c->flush_interval_ms > 0)
        fprintf(f, "\n  flush_interval_ms: %d", c->flush_interval_ms);
    fprintf(f, "\nlog:\n  level: %s\n", c->log_level ? c->log_level : "info");
    free(mappings);
    free(schemas);
    if (fclose(f) != 0)
        return th_err("could not write \"%s\"", path);
    return 0;
}

const char *th_my_oehdr_ddl(void)
{
    return "CREATE DATABASE IF NOT EXISTS public;\n"
           "CREATE TABLE IF NOT EXISTS public.oehdr (\n"
           "  hdcomp char(2) NOT NULL,\n"
           "  hdordn char(10) NOT NULL,\n"
           "  hdcust char(8) NOT NULL,\n"
           "  hdodat date,\n"
           "  hdamt decimal(12,2) NOT NULL DEFAULT 0,\n"
           "  hdstat char(1) NOT NULL DEFAULT 'O',\n"
           "  hdnote text,\n"
           "  hdupdt timestamp(6) NULL DEFAULT CURRENT_TIMESTAMP(6),\n"
           "  PRIMARY KEY (hdcomp, hdordn)\n"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
}

/* ---- a steady writer ---- */

struct th_my_writer {
    th_my_t *my;
    th_writer_opts_t o;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, paused, busy, failed;
    long txns;
    int *ver;
};

static MYSQL *th__my_writer_connect(th_my_t *my)
{
    MYSQL *m = th__my_try_connect(my, 0);
    if (m)
        mysql_autocommit(m, 0);
    return m;
}

/* The committed versions, read back from the table (after a connection broke mid-commit). */
static int th__my_writer_reread(struct th_my_writer *w, MYSQL *m)
{
    if (mysql_query(m, "SELECT hdordn, CAST(hdamt AS SIGNED) FROM public.oehdr WHERE hdcomp = "
                       "'01' AND hdordn LIKE 'W%'"))
        return -1;
    MYSQL_RES *res = mysql_store_result(m);
    if (!res)
        return -1;
    for (int k = 0; k < w->o.nkeys; k++)
        w->ver[k] = 0;
    for (MYSQL_ROW row; (row = mysql_fetch_row(res));) {
        int k = atoi(row[0] + 1) - 1;
        if (k >= 0 && k < w->o.nkeys)
            w->ver[k] = atoi(row[1]);
    }
    mysql_free_result(res);
    return mysql_commit(m) ? -1 : 0;
}

static void *th__my_writer_main(void *arg)
{
    struct th_my_writer *w = arg;
    mysql_thread_init();
    MYSQL *m = th__my_writer_connect(w->my);
    unsigned seed = w->o.seed ? w->o.seed : 1;
    int *pick = calloc((size_t)w->o.nkeys, sizeof(int));
    if (!pick)
        abort();
    while (m) {
        pthread_mutex_lock(&w->mu);
        while (w->paused && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);

        int nrows = 1 + (int)(rand_r(&seed) % (unsigned)w->o.max_rows);
        int np = 0;
        while (np < nrows) {
            int k = (int)(rand_r(&seed) % (unsigned)w->o.nkeys), dup = 0;
            for (int i = 0; i < np; i++)
                dup |= pick[i] == k;
            if (!dup)
                pick[np++] = k;
        }
        int ok = 1;
        char sql[512];
        for (int i = 0; i < np && ok; i++) {
            int k = pick[i], v = w->ver[k] + 1;
            if (v == 1)
                snprintf(sql, sizeof(sql),
                         "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, "
                         "hdstat, hdnote) VALUES ('01', 'W%05d', 'C%07d', '2024-01-%02d', %d, "
                         "'O', 'writer')",
                         k + 1, k + 1, 1 + k % 28, v);
            else
                snprintf(sql, sizeof(sql),
                         "UPDATE public.oehdr SET hdamt = %d, hdstat = '%c' WHERE hdcomp = '01' "
                         "AND hdordn = 'W%05d'",
                         v, "OCX"[v % 3], k + 1);
            ok = mysql_query(m, sql) == 0;
        }
        if (ok)
            ok = mysql_commit(m) == 0;
        if (ok) {
            for (int i = 0; i < np; i++)
                w->ver[pick[i]]++;
        } else {
            unsigned e = mysql_errno(m);
            mysql_close(m);
            m = th__my_writer_connect(w->my);
            if (!m || th__my_writer_reread(w, m) != 0) {
                th_err("writer: could not recover after error %u", e);
                pthread_mutex_lock(&w->mu);
                w->failed = 1;
                pthread_mutex_unlock(&w->mu);
                break;
            }
        }
        pthread_mutex_lock(&w->mu);
        if (ok)
            w->txns++;
        w->busy = 0;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (w->o.pause_ms > 0)
            th_sleep_ms(w->o.pause_ms);
    }
    if (m)
        mysql_close(m);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (!m && !w->stop)
        w->failed = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    free(pick);
    mysql_thread_end();
    return NULL;
}

th_my_writer_t *th_my_writer_start(th_my_t *my, const th_writer_opts_t *opts)
{
    struct th_my_writer *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->my = my;
    w->o.nkeys = opts && opts->nkeys > 0 ? opts->nkeys : 20;
    w->o.max_rows = opts && opts->max_rows > 0 ? opts->max_rows : 4;
    w->o.pause_ms = opts && opts->pause_ms >= 0 ? opts->pause_ms : 5;
    w->o.seed = opts ? opts->seed : 1;
    if (w->o.max_rows > w->o.nkeys)
        w->o.max_rows = w->o.nkeys;
    w->ver = calloc((size_t)w->o.nkeys, sizeof(int));
    if (!w->ver)
        abort();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thr, NULL, th__my_writer_main, w) != 0) {
        th_err("could not start the writer thread");
        free(w->ver);
        free(w);
        return NULL;
    }
    return w;
}

void th_my_writer_pause(th_my_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->paused = 1;
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void th_my_writer_resume(th_my_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->paused = 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

long th_my_writer_txns(th_my_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    long n = w->txns;
    pthread_mutex_unlock(&w->mu);
    return n;
}

int th_my_writer_stop(th_my_writer_t *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    int was = w->stop;
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!was)
        pthread_join(w->thr, NULL);
    return w->failed ? -1 : 0;
}

int th_my_writer_nkeys(const th_my_writer_t *w)
{
    return w->o.nkeys;
}

int th_my_writer_version(const th_my_writer_t *w, int k)
{
    return k >= 0 && k < w->o.nkeys ? w->ver[k] : 0;
}

void th_my_writer_destroy(th_my_writer_t *w)
{
    if (!w)
        return;
    th_my_writer_stop(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->ver);
    free(w);
}

/* ---- an environment for the sample table in MariaDB ---- */

/* The mapping and schema the MySQL tests stream through: the first cut of the sample
 * sales_order entity, one field per column of th_my_oehdr_ddl()'s table, kept here so the
 * tests do not depend on the repository's evolving sample ERP. */
static const char th__my_mapping[] =
    "# written by the siphon test harness (th_mysql.c)\n"
    "entity: %s\n"
    "version: 1\n"
    "source:\n"
    "  table: public.%s\n"
    "key: [company, order_number]\n"
    "fields:\n"
    "  company: hdcomp\n"
    "  order_number: hdordn\n"
    "  customer_number: hdcust\n"
    "  order_date: hdodat\n"
    "  total_amount: hdamt\n"
    "  status: hdstat\n"
    "  note: hdnote\n"
    "  updated_at: hdupdt\n";

static const char th__my_schema[] =
    "{\"type\": \"record\", \"name\": \"%s\", \"namespace\": \"siphon.erp\", "
    "\"fields\": ["
    "{\"name\": \"company\", \"type\": \"string\"}, "
    "{\"name\": \"order_number\", \"type\": \"string\"}, "
    "{\"name\": \"customer_number\", \"type\": \"string\"}, "
    "{\"name\": \"order_date\", \"type\": [\"null\", {\"type\": \"int\", "
    "\"logicalType\": \"date\"}], \"default\": null}, "
    "{\"name\": \"total_amount\", \"type\": {\"type\": \"bytes\", \"logicalType\": "
    "\"decimal\", \"precision\": 12, \"scale\": 2}}, "
    "{\"name\": \"status\", \"type\": \"string\"}, "
    "{\"name\": \"note\", \"type\": [\"null\", \"string\"], \"default\": null}, "
    "{\"name\": \"updated_at\", \"type\": [\"null\", {\"type\": \"long\", "
    "\"logicalType\": \"timestamp-micros\"}], \"default\": null}]}\n";

/* Write text to <dir>/<sub>/<name> (the folder created). 0 or -1. */
static int th__my_put(const char *dir, const char *sub, const char *name, const char *text)
{
    char *todir = th_path(dir, sub);
    char *to = th_path(todir, name);
    int rc = -1;
    if (mkdir(todir, 0700) == 0 || errno == EEXIST)
        rc = th_write_file(to, text);
    free(todir);
    free(to);
    return rc;
}

int th_my_order_mapping(const char *dir, const char *entity, const char *table)
{
    char *map = th_strf(th__my_mapping, entity, table);
    char *rec = strcmp(entity, "sales_order") == 0 ? strdup("SalesOrder")
                                                   : th_strf("SalesOrder_%s", entity);
    char *schema = th_strf(th__my_schema, rec);
    char *mname = th_strf("%s.yaml", entity), *sname = th_strf("%s.v1.avsc", entity);
    int rc = th__my_put(dir, "mappings", mname, map) == 0 &&
                     th__my_put(dir, "schemas", sname, schema) == 0
                 ? 0
                 : -1;
    free(map);
    free(rec);
    free(schema);
    free(mname);
    free(sname);
    return rc;
}

th_env_t *th_my_env_new(th_my_t *my, const th_my_conf_t *conf)
{
    th_env_t *env = calloc(1, sizeof(*env));
    char *maps = NULL, *schemas = NULL;
    if (!env)
        abort();
    th_my_conf_t c = conf ? *conf : (th_my_conf_t){0};
    env->dir = th_tempdir();
    if (!env->dir)
        goto fail;
    if (!c.mappings_dir) {
        if (th_my_order_mapping(env->dir, "sales_order", "oehdr") != 0)
            goto fail;
        c.mappings_dir = maps = th_path(env->dir, "mappings");
        c.schemas_dir = schemas = th_path(env->dir, "schemas");
    }
    env->kafka = th_kafka_start(3);
    if (!env->kafka)
        goto fail;
    env->topic = th_strf("%s.sales_order.v1", c.topic_prefix ? c.topic_prefix : "it");
    if (th_kafka_create_topic(env->kafka, env->topic, TH_TOPIC_PARTITIONS) != 0)
        goto fail;
    env->dec = th_decoder_new(c.mappings_dir, c.schemas_dir);
    if (!env->dec)
        goto fail;
    env->config_path = th_path(env->dir, "siphon.yaml");
    env->offsets_path = th_path(env->dir, "offsets.json");
    if (!c.conninfo)
        c.conninfo = th_my_conninfo(my);
    if (!c.bootstraps)
        c.bootstraps = th_kafka_bootstraps(env->kafka);
    if (!c.offsets_path)
        c.offsets_path = env->offsets_path;
    if (!c.flush_interval_ms)
        c.flush_interval_ms = 200;
    if (th_my_conf_write(env->config_path, &c) != 0)
        goto fail;
    env->conf.name = c.name ? c.name : "it";
    env->conf.conninfo = th_my_conninfo(my);
    env->conf.bootstraps = th_kafka_bootstraps(env->kafka);
    env->conf.offsets_path = env->offsets_path;
    free(maps);
    free(schemas);
    return env;
fail:
    free(maps);
    free(schemas);
    th_env_destroy(env);
    return NULL;
}

int th_my_env_wait_streaming(th_env_t *env, th_my_t *my, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        if (env->siphon && th_proc_wait_log(env->siphon, "streaming the binlog", 100) &&
            th_my_dump_threads(my) > 0)
            return 0;
        if (env->siphon && !th_proc_running(env->siphon))
            return th_err("siphon exited (code %d) before streaming the binlog",
                          th_proc_exit_code(env->siphon));
        if (th_now_ms() >= deadline)
            return th_err("siphon did not stream the binlog within %d ms", timeout_ms);
    }
}

/* ---- SQL files, as the mariadb client runs them ---- */

/* The end of the statement starting at p: the first delimiter outside quotes and comments, or
 * the end of the text. */
static const char *th__my_stmt_end(const char *p, const char *delim)
{
    size_t dl = strlen(delim);
    char q = 0;
    for (; *p; p++) {
        if (q) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == q)
                q = 0;
        } else if (*p == '\'' || *p == '"' || *p == '`') {
            q = *p;
        } else if ((*p == '-' && p[1] == '-' && (p[2] == ' ' || p[2] == '\t')) || *p == '#') {
            while (*p && *p != '\n')
                p++;
            if (!*p)
                break;
        } else if (strncmp(p, delim, dl) == 0) {
            return p;
        }
    }
    return p;
}

int th_my_exec_file(th_my_t *my, const char *path)
{
    char *text = th_read_file(path, NULL, 0);
    if (!text)
        return -1;
    char delim[16] = ";";
    int rc = 0;
    const char *p = text;
    while (rc == 0 && *p) {
        /* whitespace and whole comment lines between statements */
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
            if ((p[0] == '-' && p[1] == '-') || p[0] == '#') {
                while (*p && *p != '\n')
                    p++;
                continue;
            }
            break;
        }
        if (strncasecmp(p, "DELIMITER ", 10) == 0) {
            const char *d = p + 10, *e = d;
            while (*e && *e != '\n' && *e != ' ' && *e != '\r')
                e++;
            snprintf(delim, sizeof(delim), "%.*s", (int)(e - d), d);
            p = e;
            continue;
        }
        const char *end = th__my_stmt_end(p, delim);
        if (end > p) {
            char *stmt = strndup(p, (size_t)(end - p));
            if (!stmt)
                abort();
            rc = th__my_run(my, stmt);
            free(stmt);
        }
        p = *end ? end + strlen(delim) : end;
    }
    free(text);
    return rc;
}

/* ---- the events of an entity topic, per key ---- */

typedef struct th__ks_key {
    char *key;
    char **evs;
    int n, cap;
} th__ks_key_t;

struct th_keyseq {
    th__ks_key_t *k;
    int n, cap;
    long events;
};

static char *th__ks_dump(json_t *j)
{
    if (!j)
        return strdup("null");
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : strdup("?");
}

static th__ks_key_t *th__ks_find(th_keyseq_t *s, const char *key)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (strcmp(s->k[i].key, key) == 0)
            return &s->k[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->k = realloc(s->k, sizeof(*s->k) * (size_t)s->cap);
        if (!s->k)
            abort();
    }
    th__ks_key_t *k = &s->k[s->n++];
    memset(k, 0, sizeof(*k));
    k->key = strdup(key);
    return k;
}

int th_my_drain(th_consumer_t *c, th_msgs_t *msgs, int quiet_ms)
{
    int64_t give_up = th_now_ms() + 10000;
    for (int last = -1; msgs->n != last || (msgs->n == 0 && th_now_ms() < give_up);) {
        last = msgs->n;
        if (th_consumer_poll(c, msgs, 0, quiet_ms) < 0)
            return -1;
    }
    return msgs->n;
}

th_keyseq_t *th_keyseq_read(th_kafka_t *kafka, th_decoder_t *d, const char *topic, int quiet_ms)
{
    th_consumer_t *c = th_consumer_new(kafka, topic);
    if (!c)
        return NULL;
    th_msgs_t msgs = {0};
    int rc = th_my_drain(c, &msgs, quiet_ms);
    th_consumer_destroy(c);
    if (rc < 0) {
        th_msgs_free(&msgs);
        return NULL;
    }
    th_keyseq_t *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    for (int i = 0; i < msgs.n; i++) {
        th_event_t ev;
        if (th_decode(d, &msgs.v[i], &ev) != 0) {
            th_err("could not decode message %d of %s", i, topic);
            th_keyseq_destroy(s);
            s = NULL;
            break;
        }
        if (ev.value && ev.key) {
            char *key = th__ks_dump(ev.key);
            char *after = th__ks_dump(th_json_path(ev.value, "after"));
            th__ks_key_t *k = th__ks_find(s, key);
            if (k->n == k->cap) {
                k->cap = k->cap ? k->cap * 2 : 4;
                k->evs = realloc(k->evs, sizeof(char *) * (size_t)k->cap);
                if (!k->evs)
                    abort();
            }
            k->evs[k->n++] = th_strf("%c %s", ev.op, after);
            s->events++;
            free(key);
            free(after);
        }
        th_event_clear(&ev);
    }
    th_msgs_free(&msgs);
    return s;
}

int th_keyseq_keys(const th_keyseq_t *s)
{
    return s ? s->n : 0;
}

long th_keyseq_events(const th_keyseq_t *s)
{
    return s ? s->events : 0;
}

static int th__ks_cmp(const void *a, const void *b)
{
    return strcmp(((const th__ks_key_t *)a)->key, ((const th__ks_key_t *)b)->key);
}

int th_keyseq_compare(const th_keyseq_t *a, const th_keyseq_t *b, char *why, size_t size)
{
    qsort(a->k, (size_t)a->n, sizeof(*a->k), th__ks_cmp);
    qsort(b->k, (size_t)b->n, sizeof(*b->k), th__ks_cmp);
    int i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->k[i].key, b->k[j].key);
        if (c != 0) {
            const th__ks_key_t *k = c < 0 ? &a->k[i] : &b->k[j];
            snprintf(why, size, "key %s has %d event(s) on the %s side only, the first: %.600s",
                     k->key, k->n, c < 0 ? "first" : "second", k->n ? k->evs[0] : "");
            return -1;
        }
        const th__ks_key_t *x = &a->k[i++], *y = &b->k[j++];
        for (int e = 0; e < x->n || e < y->n; e++) {
            const char *ex = e < x->n ? x->evs[e] : "(none)", *ey = e < y->n ? y->evs[e] : "(none)";
            if (strcmp(ex, ey) != 0) {
                snprintf(why, size, "key %s, event %d of %d/%d:\n  first:  %.700s\n  second: %.700s",
                         x->key, e + 1, x->n, y->n, ex, ey);
                return -1;
            }
        }
    }
    return 0;
}

void th_keyseq_destroy(th_keyseq_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        for (int e = 0; e < s->k[i].n; e++)
            free(s->k[i].evs[e]);
        free(s->k[i].evs);
        free(s->k[i].key);
    }
    free(s->k);
    free(s);
}

/* ---- the test entity's events ---- */

int th_my_order_events(th_decoder_t *d, const th_msgs_t *msgs, int from, th_my_order_ev_t **out,
                       int *n)
{
    *out = calloc((size_t)(msgs->n - from > 0 ? msgs->n - from : 1), sizeof(**out));
    *n = 0;
    if (!*out)
        abort();
    for (int i = from; i < msgs->n; i++) {
        th_event_t ev;
        if (th_decode(d, &msgs->v[i], &ev) != 0)
            return th_err("message %d does not decode", i);
        if (ev.value) {
            th_my_order_ev_t *e = &(*out)[(*n)++];
            char path[96], buf[64];
            const char *f_ordn = th_decoder_field(d, ev.entity, "hdordn");
            const char *f_amt = th_decoder_field(d, ev.entity, "hdamt");
            if (!f_ordn || !f_amt) {
                th_event_clear(&ev);
                return th_err("the mapping of %s does not map hdordn and hdamt", ev.entity);
            }
            snprintf(e->entity, sizeof(e->entity), "%s", ev.entity);
            e->op = ev.op;
            snprintf(path, sizeof(path), "%s.%s", ev.op == 'd' ? "before" : "after", f_ordn);
            th_json_text(ev.value, path, e->order, sizeof(e->order));
            snprintf(path, sizeof(path), "%s.%s", ev.op == 'd' ? "before" : "after", f_amt);
            e->amount = atol(th_json_text(ev.value, path, buf, sizeof(buf)));
            e->snapshot = json_is_true(th_json_path(ev.value, "source.snapshot"));
            snprintf(e->event_id, sizeof(e->event_id), "%s", ev.event_id ? ev.event_id : "");
        }
        th_event_clear(&ev);
    }
    return 0;
}
