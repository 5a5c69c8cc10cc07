/*
 * th_odbc.c - the harness for the ODBC polling connector: unixODBC pointed at a test's own
 * driver file, connection strings for the three throwaway databases (PostgreSQL through
 * psqlODBC, MariaDB through MariaDB Connector/ODBC, SQLite through sqliteodbc), ODBC
 * connections for the test's own writes, and the pipeline run with an ODBC source.
 *
 * Until the config loader reads an ODBC source, a run is built in code (th_odbc_conf_t ->
 * siphon_config_t) and driven in-process on a thread, or in a child process that re-executes
 * the test binary (th_odbc_child_start / th_odbc_child_main) so that a test can SIGKILL it.
 * th_odbc_yaml_write() writes the same run as the siphon.yaml that docs/odbc.md describes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sql.h>
#include <sqlext.h>

#include "config/config.h"
#include "connectors/odbc/odbc.h"
#include "core/log.h"
#include "harness_int.h"
#include "pipeline/pipeline.h"
#include "sink/kafka/kafka.h"

/* ---- unixODBC set-up ---- */

/* unixODBC reads ODBCSYSINI once per process and keeps the path: the files must live as long
 * as the process, whatever test made them. */
static char *th__odbc_dir;

int th_odbc_env(void)
{
    if (th__odbc_dir)
        return 0;
    char *dir = th_tempdir();
    if (!dir)
        return -1;
    char *inst = th_path(dir, "odbcinst.ini"), *dsns = th_path(dir, "odbc.ini");
    int rc = th_write_file(inst, "[PostgreSQL]\n"
                                 "Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so\n"
                                 "[MariaDB]\n"
                                 "Driver=/usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so\n"
                                 "[SQLite3]\n"
                                 "Driver=/usr/lib/x86_64-linux-gnu/odbc/libsqlite3odbc.so\n");
    if (rc == 0)
        rc = th_write_file(dsns, "");
    if (rc == 0 && (setenv("ODBCSYSINI", dir, 1) != 0 || setenv("ODBCINI", dsns, 1) != 0))
        rc = th_err("could not set ODBCSYSINI/ODBCINI: %s", strerror(errno));
    free(inst);
    free(dsns);
    if (rc == 0)
        th__odbc_dir = dir;
    else
        free(dir);
    return rc;
}

const char *th_odbc_env_dir(void) { return th__odbc_dir; }

char *th_odbc_pg_connstr(const th_pg_t *pg)
{
    /* BoolsAsChar=0: booleans as SQL_BIT, not "1"/"0" text (docs/odbc.md) */
    return th_strf("Driver=PostgreSQL;Servername=127.0.0.1;Port=%d;Database=postgres;"
                   "Username=postgres;BoolsAsChar=0",
                   th_pg_port(pg));
}

char *th_odbc_my_connstr(const th_my_t *my, const char *db)
{
    /* CHARSET=utf8mb4: characters outside the BMP (docs/odbc.md) */
    return th_strf("Driver=MariaDB;Server=127.0.0.1;Port=%d;Database=%s;User=root;"
                   "CHARSET=utf8mb4",
                   th_my_port(my), db);
}

char *th_odbc_sqlite_connstr(const char *path)
{
    return th_strf("Driver=SQLite3;Database=%s", path);
}

/* ---- the test's own ODBC connection ---- */

struct th_odbc {
    SQLHENV env;
    SQLHDBC dbc;
    char *connstr;
};

static int th__odbc_diag(SQLSMALLINT type, SQLHANDLE h, const char *what)
{
    SQLCHAR state[6] = "", msg[1024] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof(msg), &len);
    return th_err("could not %s: [%s] %s", what, state, msg);
}

th_odbc_t *th_odbc_connect(const char *connstr)
{
    th_odbc_t *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->connstr = strdup(connstr);
    SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env);
    SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
    SQLAllocHandle(SQL_HANDLE_DBC, c->env, &c->dbc);
    if (!SQL_SUCCEEDED(SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)connstr, SQL_NTS, NULL, 0, NULL,
                                        SQL_DRIVER_NOPROMPT))) {
        th__odbc_diag(SQL_HANDLE_DBC, c->dbc, "connect through ODBC");
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, c->env);
        free(c->connstr);
        free(c);
        return NULL;
    }
    return c;
}

static int th__odbc_run(th_odbc_t *c, const char *sql, char **value)
{
    SQLHSTMT h;
    int rc = 0;
    if (value)
        *value = NULL;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h);
    SQLRETURN r = SQLExecDirect(h, (SQLCHAR *)sql, SQL_NTS);
    if (!SQL_SUCCEEDED(r) && r != SQL_NO_DATA) {
        char what[300];
        snprintf(what, sizeof(what), "run \"%.200s\"", sql);
        rc = th__odbc_diag(SQL_HANDLE_STMT, h, what);
    } else if (value && SQL_SUCCEEDED(SQLFetch(h))) {
        char buf[4096];
        SQLLEN ind = 0;
        if (SQL_SUCCEEDED(SQLGetData(h, 1, SQL_C_CHAR, buf, sizeof(buf), &ind)) &&
            ind != SQL_NULL_DATA)
            *value = strdup(buf);
    }
    SQLFreeStmt(h, SQL_CLOSE);
    SQLFreeHandle(SQL_HANDLE_STMT, h);
    return rc;
}

int th_odbc_exec(th_odbc_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    int rc = th__odbc_run(c, sql, NULL);
    free(sql);
    return rc;
}

char *th_odbc_value(th_odbc_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL, *v = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    th__odbc_run(c, sql, &v);
    free(sql);
    return v;
}

int th_odbc_autocommit(th_odbc_t *c, int on)
{
    if (!SQL_SUCCEEDED(SQLSetConnectAttr(c->dbc, SQL_ATTR_AUTOCOMMIT,
                                         (SQLPOINTER)(uintptr_t)(on ? SQL_AUTOCOMMIT_ON
                                                                    : SQL_AUTOCOMMIT_OFF),
                                         0)))
        return th__odbc_diag(SQL_HANDLE_DBC, c->dbc, "set autocommit");
    return 0;
}

int th_odbc_commit(th_odbc_t *c)
{
    if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, c->dbc, SQL_COMMIT)))
        return th__odbc_diag(SQL_HANDLE_DBC, c->dbc, "commit");
    return 0;
}

void th_odbc_close(th_odbc_t *c)
{
    if (!c)
        return;
    SQLDisconnect(c->dbc);
    SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
    SQLFreeHandle(SQL_HANDLE_ENV, c->env);
    free(c->connstr);
    free(c);
}

/* ---- configs ---- */

siphon_config_t *th_odbc_config(const th_odbc_conf_t *c)
{
    siphon_config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        abort();
    cfg->name = strdup(c->name ? c->name : "it");
    cfg->source.type = strdup("odbc");
    cfg->odbc.dsn = strdup(c->dsn);
    cfg->odbc.poll_interval_ms = c->poll_interval_ms ? c->poll_interval_ms : 100;
    cfg->odbc.max_rows_per_poll = c->max_rows_per_poll ? c->max_rows_per_poll : 10000;
    cfg->odbc.safety_lag_ms = c->safety_lag_ms;
    cfg->odbc.reconcile_interval_s = c->reconcile_interval_s;
    cfg->odbc.reconcile_chunk = c->reconcile_chunk ? c->reconcile_chunk : 10000;
    cfg->odbc.state_dir = c->state_dir ? strdup(c->state_dir) : NULL;
    cfg->odbc.ntables = c->ntables;
    cfg->odbc.tables = calloc((size_t)(c->ntables ? c->ntables : 1), sizeof(*cfg->odbc.tables));
    for (int i = 0; i < c->ntables; i++) {
        const th_odbc_table_t *t = &c->tables[i];
        struct siphon_config_odbc_table *o = &cfg->odbc.tables[i];
        o->table = strdup(t->table);
        o->mode = strdup(t->mode);
        o->timestamp_column = t->timestamp_column ? strdup(t->timestamp_column) : NULL;
        o->incrementing_column = t->incrementing_column ? strdup(t->incrementing_column) : NULL;
        if (t->key_columns && *t->key_columns) {
            char *copy = strdup(t->key_columns), *save = NULL;
            o->key_columns = calloc(16, sizeof(char *));
            for (char *k = strtok_r(copy, ", ", &save); k && o->nkey_columns < 16;
                 k = strtok_r(NULL, ", ", &save))
                o->key_columns[o->nkey_columns++] = strdup(k);
            free(copy);
        }
    }
    char *m = c->mappings_dir ? strdup(c->mappings_dir) : th_path(th_source_dir(), "mappings");
    char *s = c->schemas_dir ? strdup(c->schemas_dir) : th_path(th_source_dir(), "schemas");
    cfg->mappings_dir = m;
    cfg->schemas_dir = s;
    cfg->sink.type = strdup("kafka");
    cfg->sink.topic_prefix = strdup(c->topic_prefix ? c->topic_prefix : "it");
    cfg->sink.tombstones = 1;
    cfg->sink.nprops = 2;
    cfg->sink.props = calloc(2, sizeof(siphon_kv_t));
    cfg->sink.props[0].key = strdup("bootstrap.servers");
    cfg->sink.props[0].value = strdup(c->bootstraps);
    cfg->sink.props[1].key = strdup("linger.ms");
    cfg->sink.props[1].value = strdup("5");
    cfg->offsets.path = strdup(c->offsets_path);
    cfg->offsets.flush_interval_ms = c->flush_interval_ms ? c->flush_interval_ms : 200;
    cfg->pipeline.max_inflight_bytes = 64LL << 20;
    cfg->log.level = SIPHON_LOG_INFO;
    return cfg;
}

void th_odbc_config_free(siphon_config_t *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->odbc.ntables; i++) {
        struct siphon_config_odbc_table *o = &cfg->odbc.tables[i];
        free(o->table);
        free(o->mode);
        free(o->timestamp_column);
        free(o->incrementing_column);
        for (int k = 0; k < o->nkey_columns; k++)
            free(o->key_columns[k]);
        free(o->key_columns);
    }
    free(cfg->odbc.tables);
    free(cfg->odbc.dsn);
    free(cfg->odbc.state_dir);
    for (int i = 0; i < cfg->sink.nprops; i++) {
        free(cfg->sink.props[i].key);
        free(cfg->sink.props[i].value);
    }
    free(cfg->sink.props);
    free(cfg->sink.type);
    free(cfg->sink.topic_prefix);
    free(cfg->offsets.path);
    free(cfg->mappings_dir);
    free(cfg->schemas_dir);
    free(cfg->source.type);
    free(cfg->name);
    free(cfg);
}

static void th__yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int th_odbc_yaml_write(const char *path, const th_odbc_conf_t *c)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not write %s: %s", path, strerror(errno));
    fprintf(f, "# An ODBC source as docs/odbc.md describes it (written by the test harness)\n");
    fprintf(f, "name: %s\nsource:\n  type: odbc\n  dsn: ", c->name ? c->name : "it");
    th__yq(f, c->dsn);
    fprintf(f, "\n  poll_interval_ms: %d\n  max_rows_per_poll: %d\n  safety_lag_ms: %d\n"
               "  reconcile_interval_s: %d\n  reconcile_chunk: %d\n",
            c->poll_interval_ms ? c->poll_interval_ms : 100,
            c->max_rows_per_poll ? c->max_rows_per_poll : 10000, c->safety_lag_ms,
            c->reconcile_interval_s, c->reconcile_chunk ? c->reconcile_chunk : 10000);
    if (c->state_dir) {
        fprintf(f, "  state_dir: ");
        th__yq(f, c->state_dir);
        fputc('\n', f);
    }
    fprintf(f, "  tables:\n");
    for (int i = 0; i < c->ntables; i++) {
        const th_odbc_table_t *t = &c->tables[i];
        fprintf(f, "    - table: %s\n      mode: %s\n", t->table, t->mode);
        if (t->timestamp_column)
            fprintf(f, "      timestamp_column: %s\n", t->timestamp_column);
        if (t->incrementing_column)
            fprintf(f, "      incrementing_column: %s\n", t->incrementing_column);
        if (t->key_columns)
            fprintf(f, "      key_columns: [%s]\n", t->key_columns);
    }
    fprintf(f, "mappings: ");
    th__yq(f, c->mappings_dir ? c->mappings_dir : "mappings");
    fprintf(f, "\nschemas: ");
    th__yq(f, c->schemas_dir ? c->schemas_dir : "schemas");
    fprintf(f, "\nsink:\n  type: kafka\n  topic_prefix: %s\n  properties:\n"
               "    bootstrap.servers: \"%s\"\noffsets:\n  path: ",
            c->topic_prefix ? c->topic_prefix : "it", c->bootstraps);
    th__yq(f, c->offsets_path);
    fprintf(f, "\n  flush_interval_ms: %d\n", c->flush_interval_ms ? c->flush_interval_ms : 200);
    return fclose(f) == 0 ? 0 : th_err("could not write %s", path);
}

/* ---- a run on a thread ---- */

struct th_odbc_run {
    pthread_t thr;
    siphon_config_t *cfg;
    volatile sig_atomic_t stop;
    volatile int done;
    int rc;
    char err[2048];
    siphon_pipeline_stats_t stats;
};

static void *th__run_main(void *arg)
{
    th_odbc_run_t *r = arg;
    r->rc = siphon_pipeline_run(r->cfg, &siphon_odbc_source, &siphon_kafka_sink, &r->stop,
                                &r->stats, r->err, sizeof(r->err));
    if (r->rc != 0)
        th_err("the ODBC pipeline stopped: %s", r->err);
    r->done = 1;
    return NULL;
}

th_odbc_run_t *th_odbc_run_start(const th_odbc_conf_t *c)
{
    th_odbc_run_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    siphon_log_setup(getenv("TH_DEBUG") ? SIPHON_LOG_DEBUG : SIPHON_LOG_INFO, 0);
    r->cfg = th_odbc_config(c);
    if (pthread_create(&r->thr, NULL, th__run_main, r) != 0) {
        th_err("could not start the pipeline thread");
        th_odbc_config_free(r->cfg);
        free(r);
        return NULL;
    }
    return r;
}

int th_odbc_run_alive(const th_odbc_run_t *r) { return r && !r->done; }

int th_odbc_run_stop(th_odbc_run_t *r, char *err, size_t size)
{
    if (!r)
        return -1;
    r->stop = 1;
    pthread_join(r->thr, NULL);
    int rc = r->rc;
    if (err && size)
        snprintf(err, size, "%s", r->err);
    th_odbc_config_free(r->cfg);
    free(r);
    return rc;
}

/* ---- a run in a child process ---- */

static int th__conf_save(const char *path, const th_odbc_conf_t *c)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not write %s: %s", path, strerror(errno));
#define S(k) fprintf(f, #k "=%s\n", c->k ? c->k : "")
#define I(k) fprintf(f, #k "=%d\n", c->k)
    S(name);
    S(dsn);
    S(bootstraps);
    S(topic_prefix);
    S(offsets_path);
    S(state_dir);
    S(mappings_dir);
    S(schemas_dir);
    I(poll_interval_ms);
    I(max_rows_per_poll);
    I(safety_lag_ms);
    I(reconcile_interval_s);
    I(reconcile_chunk);
    I(flush_interval_ms);
#undef S
#undef I
    for (int i = 0; i < c->ntables; i++) {
        const th_odbc_table_t *t = &c->tables[i];
        fprintf(f, "table=%s|%s|%s|%s|%s\n", t->table, t->mode,
                t->timestamp_column ? t->timestamp_column : "",
                t->incrementing_column ? t->incrementing_column : "",
                t->key_columns ? t->key_columns : "");
    }
    return fclose(f) == 0 ? 0 : -1;
}

th_proc_t *th_odbc_child_start(const th_odbc_conf_t *c, const char *conf_path,
                               const char *log_path)
{
    if (th__conf_save(conf_path, c) != 0)
        return NULL;
    char *const argv[] = {"/proc/self/exe", "--th-odbc-child", (char *)conf_path, NULL};
    return th_proc_spawn(argv, log_path);
}

static volatile sig_atomic_t th__child_stop;

static void th__child_sig(int sig)
{
    (void)sig;
    th__child_stop = 1;
}

static char *th__nz(char *s) { return s && *s ? s : NULL; }

void th_odbc_child_main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--th-odbc-child") != 0)
        return;
    char *text = th_read_file(argv[2], NULL, 0);
    if (!text)
        exit(2);
    static th_odbc_conf_t c;
    static th_odbc_table_t tables[TH_ODBC_MAX_TABLES];
    memset(&c, 0, sizeof(c));
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *k = line, *v = eq + 1;
#define S(f)                      \
    if (strcmp(k, #f) == 0)       \
        c.f = th__nz(v);
#define I(f)                      \
    if (strcmp(k, #f) == 0)       \
        c.f = atoi(v);
        S(name) S(dsn) S(bootstraps) S(topic_prefix) S(offsets_path) S(state_dir) S(mappings_dir)
        S(schemas_dir) I(poll_interval_ms) I(max_rows_per_poll) I(safety_lag_ms)
        I(reconcile_interval_s) I(reconcile_chunk) I(flush_interval_ms)
#undef S
#undef I
        if (strcmp(k, "table") == 0 && c.ntables < TH_ODBC_MAX_TABLES) {
            th_odbc_table_t *t = &tables[c.ntables++];
            char *p[5] = {0}, *s2 = NULL;
            int n = 0;
            for (char *x = v; n < 5; n++) {
                p[n] = x;
                char *bar = strchr(x, '|');
                if (!bar)
                    break;
                *bar = 0;
                x = bar + 1;
            }
            (void)s2;
            t->table = p[0];
            t->mode = p[1];
            t->timestamp_column = th__nz(p[2]);
            t->incrementing_column = th__nz(p[3]);
            t->key_columns = th__nz(p[4]);
        }
    }
    for (int i = 0; i < c.ntables; i++)
        c.tables[i] = tables[i];
    siphon_log_setup(SIPHON_LOG_INFO, 0);
    signal(SIGTERM, th__child_sig);
    signal(SIGINT, th__child_sig);
    signal(SIGPIPE, SIG_IGN);
    siphon_config_t *cfg = th_odbc_config(&c);
    char err[2048];
    siphon_pipeline_stats_t st;
    int rc = siphon_pipeline_run(cfg, &siphon_odbc_source, &siphon_kafka_sink, &th__child_stop,
                                 &st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "pipeline failed: %s\n", err);
    else
        fprintf(stderr, "pipeline stopped: %llu events\n", (unsigned long long)st.events);
    th_odbc_config_free(cfg);
    free(text);
    exit(rc == 0 ? 0 : 1);
}

/* ---- decoded events ---- */

int th_odbc_events_poll(th_consumer_t *c, th_decoder_t *d, th_odbc_events_t *evs, int until_n,
                        int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - th_now_ms());
        int want = until_n > 0 ? until_n : 0;
        if (th_consumer_poll(c, &evs->msgs, until_n > 0 ? want : evs->msgs.n + 1000000,
                             left > 200 ? 200 : (left > 0 ? left : 0)) < 0)
            return -1;
        while (evs->n < evs->msgs.n) {
            if (evs->n == evs->cap) {
                evs->cap = evs->cap ? evs->cap * 2 : 256;
                evs->ev = realloc(evs->ev, sizeof(*evs->ev) * (size_t)evs->cap);
                if (!evs->ev)
                    abort();
            }
            th_event_t *ev = &evs->ev[evs->n];
            if (th_decode(d, &evs->msgs.v[evs->n], ev) != 0)
                return -1;
            ev->msg = NULL; /* the message array moves as it grows */
            evs->n++;
        }
        if ((until_n > 0 && evs->n >= until_n) || th_now_ms() >= end)
            return evs->n;
    }
}

void th_odbc_events_free(th_odbc_events_t *evs)
{
    for (int i = 0; i < evs->n; i++)
        th_event_clear(&evs->ev[i]);
    free(evs->ev);
    th_msgs_free(&evs->msgs);
    memset(evs, 0, sizeof(*evs));
}

static int th__key_is(const th_event_t *ev, const char *field, const char *val)
{
    char buf[512];
    if (!ev->key)
        return 0;
    return strcmp(th_json_text(ev->key, field, buf, sizeof(buf)), val) == 0;
}

const th_event_t *th_odbc_events_find(const th_odbc_events_t *evs, const char *field,
                                      const char *val, char op, int from)
{
    for (int i = evs->n - 1; i >= (from > 0 ? from : 0); i--) {
        const th_event_t *ev = &evs->ev[i];
        if (ev->value && th__key_is(ev, field, val) && (!op || ev->op == op))
            return ev;
    }
    return NULL;
}

int th_odbc_events_count(const th_odbc_events_t *evs, const char *field, const char *val,
                         char op, int from)
{
    int n = 0;
    for (int i = from > 0 ? from : 0; i < evs->n; i++) {
        const th_event_t *ev = &evs->ev[i];
        if (ev->value && th__key_is(ev, field, val) && (!op || ev->op == op))
            n++;
    }
    return n;
}

const th_event_t *th_odbc_events_wait(th_consumer_t *c, th_decoder_t *d, th_odbc_events_t *evs,
                                      const char *field, const char *val, char op, int from,
                                      int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    for (;;) {
        const th_event_t *ev = th_odbc_events_find(evs, field, val, op, from);
        if (ev)
            return ev;
        int left = (int)(end - th_now_ms());
        if (left <= 0)
            return NULL;
        if (th_odbc_events_poll(c, d, evs, evs->n + 1, left < 500 ? left : 500) < 0)
            return NULL;
    }
}

/* ---- the source alone, in process ---- */

int th_odbc_read_changes(const th_odbc_conf_t *c, const char *schema, const char *table, int n,
                         int timeout_ms, char ***out, int *nout)
{
    siphon_config_t *cfg = th_odbc_config(c);
    siphon_source_t *src = NULL;
    siphon_table_ref_t ref = {schema, table};
    char err[2048];
    int rc = -1, got = 0;
    char **rows = calloc((size_t)n + 1, sizeof(char *));
    *out = NULL;
    *nout = 0;
    siphon_log_setup(getenv("TH_DEBUG") ? SIPHON_LOG_DEBUG : SIPHON_LOG_WARNING, 0);
    if (siphon_odbc_source.open(&src, cfg, &ref, 1, NULL, err, sizeof(err)) != 0) {
        th_err("could not open the ODBC source: %s", err);
        goto out;
    }
    int64_t end = th_now_ms() + timeout_ms;
    while (got < n && th_now_ms() < end) {
        siphon_batch_t b;
        if (siphon_odbc_source.next(src, &b, 100, err, sizeof(err)) != 0) {
            th_err("could not read from the ODBC source: %s", err);
            goto out;
        }
        for (int i = 0; i < b.n; i++) {
            const siphon_change_t *ch = &b.recs[i];
            if ((ch->kind == SIPHON_REC_COMMIT || ch->kind == SIPHON_REC_POSITION) &&
                siphon_odbc_source.ack(src, &ch->pos, err, sizeof(err)) != 0) {
                th_err("could not acknowledge: %s", err);
                goto out;
            }
            if (ch->kind != SIPHON_REC_CHANGE || got >= n)
                continue;
            const siphon_row_t *r = ch->after ? ch->after : ch->before;
            size_t cap = 256, len = 0;
            char *line = malloc(cap);
            len = (size_t)snprintf(line, cap, "%c", (char)ch->op);
            for (int k = 0; k < r->ncols; k++) {
                size_t need = siphon_value_format(&r->vals[k], NULL, 0) + 1;
                char *v = malloc(need + 1);
                siphon_value_format(&r->vals[k], v, need + 1);
                char *piece = th_strf(" %s=%s:%s", ch->rel->cols[k].name, v,
                                      siphon_vtype_name(r->vals[k].type));
                free(v);
                size_t pl = strlen(piece);
                if (len + pl + 1 > cap) {
                    cap = (len + pl + 1) * 2;
                    line = realloc(line, cap);
                }
                memcpy(line + len, piece, pl + 1);
                len += pl;
                free(piece);
            }
            rows[got++] = line;
        }
    }
    if (got < n) {
        th_err("only %d of %d changes of %s.%s arrived within %d ms", got, n, schema, table,
               timeout_ms);
        goto out;
    }
    rc = 0;
out:
    siphon_odbc_source.close(src);
    th_odbc_config_free(cfg);
    *out = rows;
    *nout = got;
    return rc;
}

/* ---- the tests' own entity ---- */

int th_odbc_order_files(const char *dir, char **mdir, char **sdir)
{
    *mdir = th_path(dir, "mappings");
    *sdir = th_path(dir, "schemas");
    if (mkdir(*mdir, 0700) != 0 || mkdir(*sdir, 0700) != 0)
        return th_err("could not create %s and %s: %s", *mdir, *sdir, strerror(errno));
    char *m = th_path(*mdir, "odbc_order.yaml"), *sc = th_path(*sdir, "odbc_order.v1.avsc");
    int rc = th_write_file(m, "# The ODBC tests' order header: table public.odbc_ord -> odbc_order v1\n"
                              "entity: odbc_order\n"
                              "version: 1\n"
                              "source:\n"
                              "  table: public.odbc_ord\n"
                              "key: [company, order_number]\n"
                              "fields:\n"
                              "  company: hdcomp\n"
                              "  order_number: hdordn\n"
                              "  customer_number: hdcust\n"
                              "  order_date: hdodat\n"
                              "  total_amount: hdamt\n"
                              "  status: hdstat\n"
                              "  note: hdnote\n"
                              "  updated_at: hdupdt\n");
    if (rc == 0)
        rc = th_write_file(
            sc, "{\"type\": \"record\", \"name\": \"OdbcOrder\", \"namespace\": \"siphon.it\",\n"
                " \"doc\": \"An order header read by the ODBC tests.\",\n"
                " \"fields\": [\n"
                "  {\"name\": \"company\", \"type\": \"string\", \"doc\": \"Company code.\"},\n"
                "  {\"name\": \"order_number\", \"type\": \"string\", \"doc\": \"Order number.\"},\n"
                "  {\"name\": \"customer_number\", \"type\": \"string\", \"doc\": \"Customer.\"},\n"
                "  {\"name\": \"order_date\", \"type\": [\"null\", {\"type\": \"int\", "
                "\"logicalType\": \"date\"}], \"default\": null, \"doc\": \"Order date.\"},\n"
                "  {\"name\": \"total_amount\", \"type\": {\"type\": \"bytes\", \"logicalType\": "
                "\"decimal\", \"precision\": 12, \"scale\": 2}, \"doc\": \"Total.\"},\n"
                "  {\"name\": \"status\", \"type\": \"string\", \"doc\": \"Status code.\"},\n"
                "  {\"name\": \"note\", \"type\": [\"null\", \"string\"], \"default\": null, "
                "\"doc\": \"Note.\"},\n"
                "  {\"name\": \"updated_at\", \"type\": [\"null\", {\"type\": \"long\", "
                "\"logicalType\": \"timestamp-micros\"}], \"default\": null, \"doc\": \"Last "
                "change.\"}\n"
                " ]}\n");
    free(m);
    free(sc);
    return rc;
}
