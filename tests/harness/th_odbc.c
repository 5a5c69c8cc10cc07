/*
 * th_odbc.c - the harness for the ODBC polling connector: unixODBC pointed at a test's own
 * driver file, connection strings for the three throwaway databases (PostgreSQL through
 * psqlODBC, MariaDB through MariaDB Connector/ODBC, SQLite through sqliteodbc), ODBC
 * connections for the test's own writes, the tests' own mappings, and the fixture the ODBC
 * integration tests share (tests/it/020x): `siphon run --config siphon.yaml` with an ODBC source
 * into a mock Kafka cluster, the events decoded back, and the change flow every driver must get
 * right (new, updated, late, deleted rows of a table with a composite key).
 *
 * The benchmark (bench/odbc_poll.c) also builds a run in code (th_odbc_config) and drives the
 * pipeline on a thread of its own process (th_odbc_run_*), to measure the connector alone.
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
    fprintf(f, "\nsink:\n  type: kafka\n  topic_prefix: %s\n  tombstones: true\n  properties:\n"
               "    bootstrap.servers: \"%s\"\noffsets:\n  path: ",
            c->topic_prefix ? c->topic_prefix : "it", c->bootstraps);
    th__yq(f, c->offsets_path);
    fprintf(f, "\n  flush_interval_ms: %d\nlog:\n  level: %s\n",
            c->flush_interval_ms ? c->flush_interval_ms : 200,
            getenv("TH_DEBUG") ? "debug" : "info");
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

/* ---- the tests' own entities ---- */

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
                              "  order_number: {column: hdordn, transforms: [trim]}\n"
                              "  customer_number: {column: hdcust, transforms: [trim]}\n"
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

/* 1 when column is one of the key's columns ("co, no"). */
static int th__in_key(const char *key, const char *column)
{
    size_t n = strlen(column);
    for (const char *p = key; (p = strstr(p, column)) != NULL; p += n)
        if ((p == key || p[-1] == ' ' || p[-1] == ',') && (p[n] == 0 || p[n] == ',' || p[n] == ' '))
            return 1;
    return 0;
}

int th_odbc_entity_files(const char *mdir, const char *sdir, const th_odbc_entity_t *x)
{
    char *mname = th_strf("%s.yaml", x->entity), *sname = th_strf("%s.v1.avsc", x->entity);
    char *m = th_path(mdir, mname), *sc = th_path(sdir, sname);
    const char *dot = strrchr(x->table, '.');
    FILE *mf = fopen(m, "w"), *sf = fopen(sc, "w");
    int rc = mf && sf ? 0 : th_err("could not write %s and %s: %s", m, sc, strerror(errno));
    if (rc == 0) {
        fprintf(mf, "# An ODBC test's table, mapped one to one\nentity: %s\nversion: 1\n"
                    "source:\n  table: public.%s\nkey: [%s]\nfields:\n",
                x->entity, dot ? dot + 1 : x->table, x->key);
        fprintf(sf, "{\"type\": \"record\", \"name\": \"%s\", \"namespace\": \"siphon.it\",\n"
                    " \"doc\": \"One field per column of an ODBC test's table.\",\n"
                    " \"fields\": [\n",
                x->entity);
        for (int i = 0; i < x->ncols; i++) {
            const th_odbc_col_t *c = &x->cols[i];
            int key = th__in_key(x->key, c->column);
            fprintf(mf, "  %s: %s\n", c->column, c->column);
            fprintf(sf, "  {\"name\": \"%s\", \"type\": %s%s%s, \"doc\": \"Column %s.\"}%s\n",
                    c->column, key ? "" : "[\"null\", ", c->avro,
                    key ? "" : "], \"default\": null", c->column, i + 1 < x->ncols ? "," : "");
        }
        fprintf(sf, " ]}\n");
    }
    if ((mf && fclose(mf) != 0) || (sf && fclose(sf) != 0))
        rc = th_err("could not write %s and %s", m, sc);
    free(m);
    free(sc);
    free(mname);
    free(sname);
    return rc;
}

/* ---- the fixture ---- */

th_odbc_fx_t *th_odbc_fx_new(const char *connstr, const char *order_table,
                             const th_odbc_entity_t *const *x, int nx)
{
    th_odbc_fx_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        abort();
    if (nx > TH_ODBC_MAX_ENTITIES || th_odbc_env() != 0 || !(fx->dir = th_tempdir()))
        goto fail;
    fx->connstr = strdup(connstr);
    fx->yaml = th_path(fx->dir, "siphon.yaml");
    fx->offsets = th_path(fx->dir, "offsets.json");
    if (th_odbc_order_files(fx->dir, &fx->mdir, &fx->sdir) != 0 ||
        !(fx->kafka = th_kafka_start(1)) ||
        th_kafka_create_topic(fx->kafka, "it.odbc_order.v1", 4) != 0)
        goto fail;
    for (int i = 0; i < nx; i++) {
        char *topic = th_strf("it.%s.v1", x[i]->entity);
        int rc = th_odbc_entity_files(fx->mdir, fx->sdir, x[i]) == 0 &&
                         th_kafka_create_topic(fx->kafka, topic, 1) == 0
                     ? 0
                     : -1;
        free(topic);
        if (rc != 0)
            goto fail;
    }
    if (!(fx->dec = th_decoder_new(fx->mdir, fx->sdir)) ||
        !(fx->cons = th_consumer_new(fx->kafka, "it.odbc_order.v1")) ||
        !(fx->db = th_odbc_connect(connstr)))
        goto fail;
    th_odbc_conf_t *c = &fx->conf;
    c->dsn = fx->connstr;
    c->bootstraps = th_kafka_bootstraps(fx->kafka);
    c->offsets_path = fx->offsets;
    c->mappings_dir = fx->mdir;
    c->schemas_dir = fx->sdir;
    c->poll_interval_ms = 100;
    c->max_rows_per_poll = 100;
    c->safety_lag_ms = 1000;
    c->reconcile_interval_s = 1;
    c->reconcile_chunk = 1000;
    c->flush_interval_ms = 100;
    c->tables[c->ntables++] = (th_odbc_table_t){order_table, "timestamp", "hdupdt", NULL, NULL};
    for (int i = 0; i < nx; i++) {
        char *topic = th_strf("it.%s.v1", x[i]->entity);
        fx->xcons[i] = th_consumer_new(fx->kafka, topic);
        free(topic);
        if (!fx->xcons[i])
            goto fail;
        fx->x[fx->nx++] = x[i];
        c->tables[c->ntables++] = (th_odbc_table_t){x[i]->table, x[i]->mode,
                                                    x[i]->timestamp_column,
                                                    x[i]->incrementing_column, NULL};
    }
    return fx;
fail:
    th_odbc_fx_destroy(fx);
    return NULL;
}

th_proc_t *th_odbc_fx_run(const th_odbc_fx_t *fx)
{
    return fx->nruns ? fx->runs[fx->nruns - 1] : NULL;
}

int th_odbc_fx_start(th_odbc_fx_t *fx)
{
    if (fx->nruns == TH_ODBC_MAX_RUNS)
        return th_err("could not start siphon: %d runs already", fx->nruns);
    if (th_odbc_yaml_write(fx->yaml, &fx->conf) != 0)
        return -1;
    char *name = th_strf("siphon-%d.log", fx->nruns + 1);
    char *log = th_path(fx->dir, name);
    th_proc_t *p = th_siphon_start(fx->yaml, log);
    free(name);
    free(log);
    if (!p)
        return -1;
    fx->runs[fx->nruns++] = p;
    if (!th_proc_wait_log(p, "odbc: polling ", 20000)) {
        th_odbc_fx_dump_logs(fx);
        return th_err("siphon run %d did not start polling within 20 s", fx->nruns);
    }
    return 0;
}

int th_odbc_fx_stop(th_odbc_fx_t *fx, int sig, int timeout_ms)
{
    th_proc_t *p = th_odbc_fx_run(fx);
    if (!p)
        return -1;
    th_proc_signal(p, sig);
    if (!th_proc_wait(p, timeout_ms)) {
        th_proc_signal(p, SIGKILL);
        th_proc_wait(p, 5000);
        return -1;
    }
    return th_proc_exit_code(p);
}

void th_odbc_fx_dump_logs(th_odbc_fx_t *fx)
{
    if (!fx || fx->dumped)
        return;
    fx->dumped = 1;
    for (int i = 0; i < fx->nruns; i++)
        th_proc_dump_log(fx->runs[i], 40);
}

/* Does the event match: key field f1 = v1, f2 = v2 (any when f2 is NULL), op (any when 0)?
 * Tombstones never match. */
static int th__match(const th_event_t *ev, const char *f1, const char *v1, const char *f2,
                     const char *v2, char op)
{
    char buf[256];
    return ev->value && ev->key && (!op || ev->op == op) &&
           strcmp(th_json_text(ev->key, f1, buf, sizeof(buf)), v1) == 0 &&
           (!f2 || strcmp(th_json_text(ev->key, f2, buf, sizeof(buf)), v2) == 0);
}

static int th__count(const th_odbc_events_t *evs, const char *f1, const char *v1,
                     const char *f2, const char *v2, char op, int from)
{
    int n = 0;
    for (int i = from > 0 ? from : 0; i < evs->n; i++)
        n += th__match(&evs->ev[i], f1, v1, f2, v2, op);
    return n;
}

static const th_event_t *th__wait(th_odbc_fx_t *fx, th_consumer_t *c, th_odbc_events_t *evs,
                                  const char *f1, const char *v1, const char *f2,
                                  const char *v2, char op, int from, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    int seen = from > 0 ? from : 0;
    for (;;) {
        for (; seen < evs->n; seen++)
            if (th__match(&evs->ev[seen], f1, v1, f2, v2, op))
                return &evs->ev[seen];
        int left = (int)(end - th_now_ms());
        if (left <= 0)
            return NULL;
        if (th_odbc_events_poll(c, fx->dec, evs, evs->n + 1, left < 500 ? left : 500) < 0)
            return NULL;
    }
}

int th_odbc_fx_count(const th_odbc_fx_t *fx, const char *company, const char *ordn, char op,
                     int from)
{
    return th__count(&fx->evs, "order_number", ordn, company ? "company" : NULL, company, op,
                     from);
}

const th_event_t *th_odbc_fx_wait(th_odbc_fx_t *fx, const char *company, const char *ordn,
                                  char op, int from, int timeout_ms)
{
    return th__wait(fx, fx->cons, &fx->evs, "order_number", ordn, company ? "company" : NULL,
                    company, op, from, timeout_ms);
}

const th_event_t *th_odbc_fx_xwait(th_odbc_fx_t *fx, int xi, const char *f1, const char *v1,
                                   const char *f2, const char *v2, char op, int from,
                                   int timeout_ms)
{
    if (xi < 0 || xi >= fx->nx)
        return NULL;
    return th__wait(fx, fx->xcons[xi], &fx->xevs[xi], f1, v1, f2, v2, op, from, timeout_ms);
}

int th_odbc_fx_xcount(const th_odbc_fx_t *fx, int xi, const char *f1, const char *v1,
                      const char *f2, const char *v2, char op, int from)
{
    return xi < 0 || xi >= fx->nx ? -1 : th__count(&fx->xevs[xi], f1, v1, f2, v2, op, from);
}

int th_odbc_fx_xexpect(const th_odbc_fx_t *fx, int xi, const th_event_t *ev,
                       const char *const *want)
{
    const th_odbc_entity_t *x = fx->x[xi];
    json_t *after = th_json_path(ev->value, "after");
    char kbuf[128] = "?";
    size_t kn = ev->key ? json_dumpb(ev->key, kbuf, sizeof(kbuf) - 1, JSON_COMPACT) : 0;
    if (kn > 0 && kn < sizeof(kbuf))
        kbuf[kn] = 0;
    int rc = 0;
    for (int c = 0; c < x->ncols; c++) {
        json_t *v = after ? json_object_get(after, x->cols[c].column) : NULL;
        const char *w = want[c];
        char *text = !v ? strdup("<missing>")
                     : json_is_string(v) ? strdup(json_string_value(v))
                     : json_is_null(v)   ? strdup("null")
                                         : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text || strcmp(text, w) != 0)
            rc = th_err("%s %s, column %s (%s): got \"%.200s\"%s, expected \"%.200s\"%s",
                        x->entity, kbuf,
                        x->cols[c].column, x->cols[c].avro, text ? text : "?",
                        text && strlen(text) > 200 ? "..." : "", w, strlen(w) > 200 ? "..." : "");
        free(text);
    }
    return rc;
}

void th_odbc_fx_destroy(th_odbc_fx_t *fx)
{
    if (!fx)
        return;
    for (int i = 0; i < fx->nruns; i++)
        th_proc_destroy(fx->runs[i]);
    th_odbc_close(fx->db);
    th_odbc_events_free(&fx->evs);
    th_consumer_destroy(fx->cons);
    for (int i = 0; i < fx->nx; i++) {
        th_odbc_events_free(&fx->xevs[i]);
        th_consumer_destroy(fx->xcons[i]);
    }
    th_decoder_destroy(fx->dec);
    th_kafka_destroy(fx->kafka);
    if (fx->dir)
        th_tempdir_remove(fx->dir);
    free(fx->dir);
    free(fx->yaml);
    free(fx->offsets);
    free(fx->mdir);
    free(fx->sdir);
    free(fx->connstr);
    free(fx);
}

/* ---- the shared change flow ---- */

/* One field of an event's image as text ("null", "<missing>"). */
static const char *th__field(const th_event_t *ev, const char *image, const char *field,
                             char *buf, size_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s.%s", image, field);
    return th_json_text(ev->value, path, buf, size);
}

/* Check fields of an event: pairs of (path, expected text), NULL-terminated. 0 or -1. */
static int th__expect(const th_event_t *ev, const char *what, ...)
{
    va_list ap;
    int rc = 0;
    va_start(ap, what);
    for (const char *path = va_arg(ap, const char *); path; path = va_arg(ap, const char *)) {
        const char *want = va_arg(ap, const char *);
        char got[512];
        th_json_text(ev->value, path, got, sizeof(got));
        if (strcmp(got, want) != 0)
            rc = th_err("%s: %s is \"%s\", expected \"%s\"", what, path, got, want);
    }
    va_end(ap);
    return rc;
}

static const th_event_t *th__need(th_odbc_fx_t *fx, const char *company, const char *ordn,
                                  char op, int from)
{
    const th_event_t *ev = th_odbc_fx_wait(fx, company, ordn, op, from, 20000);
    if (!ev)
        th_err("no '%c' event for order %s/%s within 20 s (%d events consumed)", op,
               company ? company : "*", ordn, fx->evs.n);
    return ev;
}

/* The late row L1: written by a transaction held open while B1 is written and delivered. */
static int th__late_held(th_odbc_fx_t *fx, const th_odbc_flow_t *f, int mark)
{
    th_odbc_t *late = th_odbc_connect(fx->connstr);
    int rc = late ? th_odbc_autocommit(late, 0) : -1;
    if (rc == 0)
        rc = th_odbc_exec(late, "INSERT INTO %s VALUES ('01', 'L1', 'C9', NULL, 1, 'O', NULL, %s)",
                          f->table, f->now_sql);
    th_sleep_ms(100);
    if (rc == 0)
        rc = th_odbc_exec(fx->db,
                          "INSERT INTO %s VALUES ('01', 'B1', 'C8', NULL, 2, 'O', NULL, %s)",
                          f->table, f->now_sql);
    if (rc == 0 && !th__need(fx, "01", "B1", 'c', mark))
        rc = -1;
    if (rc == 0)
        rc = th_odbc_commit(late);
    th_odbc_close(late);
    return rc;
}

/* The late row L1: a plain insert whose timestamp is earlier than B1's, delivered before. */
static int th__late_earlier(th_odbc_fx_t *fx, const th_odbc_flow_t *f, int mark)
{
    if (th_odbc_exec(fx->db, "INSERT INTO %s VALUES ('01', 'B1', 'C8', NULL, 2, 'O', NULL, %s)",
                     f->table, f->now_sql) != 0 ||
        !th__need(fx, "01", "B1", 'c', mark))
        return -1;
    return th_odbc_exec(fx->db, "INSERT INTO %s VALUES ('01', 'L1', 'C9', NULL, 1, 'O', NULL, %s)",
                        f->table, f->late_ts_sql);
}

int th_odbc_flow(th_odbc_fx_t *fx, const th_odbc_flow_t *f)
{
    const th_event_t *ev;
    char buf[128];
    /* new rows */
    if (th_odbc_exec(fx->db, "INSERT INTO %s VALUES"
                             " ('01', 'A1', 'C1', '2024-03-01', 12.34, 'O', NULL, %s),"
                             " ('01', 'A2', 'C2', NULL, 0.5, 'O', '', %s),"
                             " ('02', 'A1', 'C3', '2024-03-02', 100, 'C', 'caf\xc3\xa9', %s)",
                     f->table, f->now_sql, f->now_sql, f->now_sql) != 0)
        return -1;
    if (!(ev = th__need(fx, "01", "A2", 'c', 0)) ||
        th__expect(ev, "the create of 01/A2", "after.note", "", "after.order_date", "null",
                   "after.total_amount", "0.50", "after.customer_number", "C2", "after.status",
                   "O", NULL) != 0 ||
        !(ev = th__need(fx, "01", "A1", 'c', 0)) ||
        th__expect(ev, "the create of 01/A1", "after.company", "01", "after.customer_number",
                   "C1", "after.order_date", "2024-03-01", "after.total_amount", "12.34",
                   "after.note", "null", "source.table", "odbc_ord", NULL) != 0 ||
        !(ev = th__need(fx, "02", "A1", 'c', 0)) ||
        th__expect(ev, "the create of 02/A1", "after.customer_number", "C3", "after.note",
                   "caf\xc3\xa9", "after.status", "C", "after.total_amount", "100.00", NULL) != 0)
        return -1;
    if (strncmp(th__field(ev, "after", "updated_at", buf, sizeof(buf)), "20", 2) != 0)
        return th_err("the create of 02/A1 has updated_at \"%s\", not a timestamp", buf);
    th_log("3 new rows (two share an order number: the key is composite) arrived as creates, "
           "NULL, '' and UTF-8 text as written");

    /* an update; the rows the re-read window reads again are not sent again */
    int mark = fx->evs.n;
    if (th_odbc_exec(fx->db, "UPDATE %s SET hdamt = 99.99, hdstat = 'H', hdupdt = %s"
                             " WHERE hdcomp = '01' AND hdordn = 'A1'",
                     f->table, f->now_sql) != 0 ||
        !(ev = th__need(fx, "01", "A1", 'u', mark)) ||
        th__expect(ev, "the update of 01/A1", "after.total_amount", "99.99", "after.status", "H",
                   "after.customer_number", "C1", "before", "null", NULL) != 0)
        return -1;
    th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 2 * fx->conf.safety_lag_ms + 500);
    if (th_odbc_fx_count(fx, NULL, "A2", 0, mark) != 0 ||
        th_odbc_fx_count(fx, "02", "A1", 0, mark) != 0 ||
        th_odbc_fx_count(fx, "01", "A1", 0, mark) != 1)
        return th_err("after the update of 01/A1: %d events for A2, %d for 02/A1, %d for 01/A1 "
                      "(expected 0, 0, 1: rows re-read unchanged are not sent again)",
                      th_odbc_fx_count(fx, NULL, "A2", 0, mark),
                      th_odbc_fx_count(fx, "02", "A1", 0, mark),
                      th_odbc_fx_count(fx, "01", "A1", 0, mark));
    th_log("an updated row arrived as an update; rows re-read by the window were not sent again");

    /* the row JDBC polling loses */
    mark = fx->evs.n;
    if ((f->late_ts_sql ? th__late_earlier(fx, f, mark) : th__late_held(fx, f, mark)) != 0)
        return -1;
    char *older = th_odbc_value(fx->db, "SELECT CASE WHEN (SELECT hdupdt FROM %s WHERE hdordn = 'L1')"
                                        " < (SELECT hdupdt FROM %s WHERE hdordn = 'B1') THEN 'yes'"
                                        " ELSE 'no' END",
                                f->table, f->table);
    int is_older = older && strcmp(older, "yes") == 0;
    free(older);
    if (!is_older)
        return th_err("the late row's timestamp is not earlier than the delivered row B1's");
    if (!(ev = th__need(fx, "01", "L1", 'c', mark)) ||
        th__expect(ev, "the create of 01/L1", "after.customer_number", "C9", "after.total_amount",
                   "1.00", NULL) != 0)
        return -1;
    th_log("a row %s with a timestamp earlier than a row already delivered arrived",
           f->late_ts_sql ? "inserted" : "committed late");

    /* a delete, found by reconciliation */
    mark = fx->evs.n;
    if (th_odbc_exec(fx->db, "DELETE FROM %s WHERE hdcomp = '02'", f->table) != 0 ||
        !(ev = th__need(fx, "02", "A1", 'd', mark)) ||
        th__expect(ev, "the delete of 02/A1", "before", "null", "after", "null", NULL) != 0)
        return -1;
    th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 1500);
    int tomb = 0, others = 0;
    for (int i = mark; i < fx->evs.n; i++) {
        if (!fx->evs.ev[i].value)
            tomb++;
        else if (fx->evs.ev[i].op != 'd')
            others++;
    }
    if (th_odbc_fx_count(fx, "02", "A1", 'd', mark) != 1 || tomb != 1 || others != 0)
        return th_err("after the delete of 02/A1: %d deletes, %d tombstones, %d other events "
                      "(expected 1, 1, 0)",
                      th_odbc_fx_count(fx, "02", "A1", 'd', mark), tomb, others);
    th_log("a deleted row arrived as a delete of its (company, order number) key and a tombstone");
    return 0;
}

int th_odbc_fx_expect_rows(th_odbc_fx_t *fx, int xi, const char *const *want, int nrows,
                           int timeout_ms)
{
    int rc = 0;
    int64_t end = th_now_ms() + timeout_ms;
    for (int r = 0; r < nrows; r++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", r + 1);
        int left = (int)(end - th_now_ms());
        const th_event_t *ev =
            th_odbc_fx_xwait(fx, xi, "id", id, NULL, NULL, 'c', 0, left > 0 ? left : 0);
        if (!ev)
            rc = th_err("no create of row id %s of %s within %d ms", id, fx->x[xi]->entity,
                        timeout_ms);
        else if (th_odbc_fx_xexpect(fx, xi, ev, want + (size_t)r * (size_t)fx->x[xi]->ncols) != 0)
            rc = -1;
    }
    return rc;
}
