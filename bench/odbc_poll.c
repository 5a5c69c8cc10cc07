/*
 * odbc_poll.c - the ODBC polling connector measured: first full read of a large table through
 * psqlODBC against isql reading the same rows in the same run, the whole pipeline to Kafka, the
 * steady-state cost of polling an idle table, and one reconciliation pass.
 *
 * One throwaway PostgreSQL 15 (the test harness's) holding bench_ord, a 12-column legacy
 * order table (--rows rows, 1,000,000 by default), read through psqlODBC (unixODBC pointed at
 * the run's own odbcinst.ini/odbc.ini). Phases, each printed as it ends:
 *
 *  read     --reps times (3), alternating which goes first, the median reported:
 *           `isql -b -d, bench` runs "SELECT <the 12 columns> FROM bench_ord ORDER BY id" with
 *           its output to /dev/null: the driver's own speed, one query, no pages (psqlODBC reads
 *           the whole result into memory first); then the connector alone (open/next/ack in
 *           this process, pages of 10,000 rows) in mode incrementing on id, and in timestamp
 *           mode (updt, id): from the end of open() until the last row's change record is
 *           returned, every poll acknowledged (the key set's journal is written and fsynced
 *           ahead of every page)
 *  pipeline the same read through the whole pipeline (mapping, Avro, librdkafka to the mock
 *           cluster in this process, acknowledgement) with a fresh key set: until the offsets
 *           file holds the last id, i.e. every event was delivered and acknowledged
 *  idle     the connector alone, caught up, polling the idle table every 1000 ms (the default)
 *           for --idle-s seconds (60): queries and rows read per minute, incrementing and
 *           timestamp modes, and the restart cost of loading the key set from disk
 *  recon    one reconciliation pass over every key (chunks of 10,000): time and queries
 *
 * Output: the results on stdout, and with --report FILE the same as Markdown. Exit 0 when the
 * run completed, 1 when something failed. --quick: 100,000 rows, one run, 10 s idle.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "connectors/odbc/odbc.h"
#include "connectors/odbc/odbc_int.h"
#include "core/log.h"
#include "harness.h"

#define MAX_REPS 9
static long g_rows = 1000000;
static int g_idle_s = 60;
static int g_reps = 3;

static double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double minv(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double maxv(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}
static FILE *g_report;

#define COLS "id, comp, ordn, cust, odat, amt, stat, note, updt, qty, price, wh"

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    if (g_report) {
        va_start(ap, fmt);
        vfprintf(g_report, fmt, ap);
        va_end(ap);
    }
}

typedef struct run_result {
    double secs, cpu; /* from the end of open() */
    double open_s;    /* open(): connect, describe, load the key set */
    odbc_stats_t st;
    char *pos; /* the last position returned (caller frees) */
} run_result_t;

/* Drive the source alone until `want` changes were returned (want < 0: for -want ms), acking
 * every position. */
static int drive(const th_odbc_conf_t *c, const char *resume, long want, run_result_t *r,
                 uint64_t recon_passes)
{
    siphon_config_t *cfg = th_odbc_config(c);
    siphon_source_t *src = NULL;
    siphon_table_ref_t ref = {"public", "bench_ord"};
    char err[2048];
    int rc = -1;
    long changes = 0;
    memset(r, 0, sizeof(*r));
    double c0 = cpu_s();
    int64_t t0 = th_now_ms();
    if (siphon_odbc_source.open(&src, cfg, &ref, 1, resume, err, sizeof(err)) != 0) {
        th_err("could not open the source: %s", err);
        goto out;
    }
    /* what open() itself ran (describe, primary key, clock, loading the key set) is not the
     * polling's cost */
    odbc_stats_t base;
    siphon_odbc__stats(src, &base);
    r->open_s = (double)(th_now_ms() - t0) / 1000.0;
    c0 = cpu_s();
    t0 = th_now_ms();
    int64_t end = want < 0 ? t0 - want : INT64_MAX;
    for (;;) {
        odbc_stats_t s;
        siphon_odbc__stats(src, &s);
        if (want >= 0 && changes >= want && s.recon_passes >= recon_passes)
            break;
        if (th_now_ms() >= end)
            break;
        siphon_batch_t b;
        if (siphon_odbc_source.next(src, &b, 100, err, sizeof(err)) != 0) {
            th_err("could not read: %s", err);
            goto out;
        }
        for (int i = 0; i < b.n; i++) {
            const siphon_change_t *ch = &b.recs[i];
            if (ch->kind == SIPHON_REC_CHANGE)
                changes++;
            if (ch->kind == SIPHON_REC_COMMIT || ch->kind == SIPHON_REC_POSITION) {
                if (siphon_odbc_source.ack(src, &ch->pos, err, sizeof(err)) != 0) {
                    th_err("could not acknowledge: %s", err);
                    goto out;
                }
                free(r->pos);
                r->pos = strdup(ch->pos.text);
            }
        }
    }
    r->secs = (double)(th_now_ms() - t0) / 1000.0;
    r->cpu = cpu_s() - c0;
    siphon_odbc__stats(src, &r->st);
    r->st.queries -= base.queries;
    r->st.rows -= base.rows;
    rc = 0;
out:
    siphon_odbc_source.close(src);
    th_odbc_config_free(cfg);
    return rc;
}

static int write_mapping(const char *dir, char **mdir, char **sdir)
{
    *mdir = th_path(dir, "mappings");
    *sdir = th_path(dir, "schemas");
    char *cmd = th_strf("mkdir -p %s %s", *mdir, *sdir);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0)
        return -1;
    char *m = th_path(*mdir, "bench_order.yaml"), *s = th_path(*sdir, "bench_order.v1.avsc");
    rc = th_write_file(m, "entity: bench_order\nversion: 1\nsource:\n  table: public.bench_ord\n"
                          "key: [id]\nfields:\n  id: id\n  company: comp\n  order_number: ordn\n"
                          "  customer: cust\n  order_date: odat\n  amount: amt\n  status: stat\n"
                          "  note: note\n  updated_at: updt\n  quantity: qty\n  price: price\n"
                          "  warehouse: wh\n");
    if (rc == 0)
        rc = th_write_file(
            s, "{\"type\":\"record\",\"name\":\"BenchOrder\",\"namespace\":\"siphon.bench\","
               "\"doc\":\"Benchmark order.\",\"fields\":["
               "{\"name\":\"id\",\"type\":\"long\",\"doc\":\"Id.\"},"
               "{\"name\":\"company\",\"type\":\"string\",\"doc\":\"Company.\"},"
               "{\"name\":\"order_number\",\"type\":\"string\",\"doc\":\"Order.\"},"
               "{\"name\":\"customer\",\"type\":\"string\",\"doc\":\"Customer.\"},"
               "{\"name\":\"order_date\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":"
               "\"date\"}],\"default\":null,\"doc\":\"Date.\"},"
               "{\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
               "\"precision\":12,\"scale\":2},\"doc\":\"Amount.\"},"
               "{\"name\":\"status\",\"type\":\"string\",\"doc\":\"Status.\"},"
               "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null,\"doc\":\"Note.\"},"
               "{\"name\":\"updated_at\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":"
               "\"timestamp-micros\"}],\"default\":null,\"doc\":\"Changed.\"},"
               "{\"name\":\"quantity\",\"type\":[\"null\",\"int\"],\"default\":null,\"doc\":\"Qty.\"},"
               "{\"name\":\"price\",\"type\":[\"null\",{\"type\":\"bytes\",\"logicalType\":"
               "\"decimal\",\"precision\":10,\"scale\":3}],\"default\":null,\"doc\":\"Price.\"},"
               "{\"name\":\"warehouse\",\"type\":\"string\",\"doc\":\"Warehouse.\"}]}");
    free(m);
    free(s);
    return rc;
}

int main(int argc, char **argv)
{
    const char *report = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            g_rows = atol(argv[++i]);
        else if (strcmp(argv[i], "--idle-s") == 0 && i + 1 < argc)
            g_idle_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            g_reps = atoi(argv[++i]) < 1 ? 1 : atoi(argv[i]) > MAX_REPS ? MAX_REPS : atoi(argv[i]);
        else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc)
            report = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) {
            g_rows = 100000;
            g_idle_s = 10;
        } else {
            fprintf(stderr,
                    "usage: %s [--rows N] [--reps N] [--idle-s S] [--quick] [--report FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (report && !(g_report = fopen(report, "w"))) {
        perror(report);
        return 1;
    }
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    int rc = 1;
    char *dir = th_tempdir();
    th_pg_t *pg = NULL;
    th_kafka_t *kafka = NULL;
    char *connstr = NULL, *mdir = NULL, *sdir = NULL;
    if (!dir || th_odbc_env() != 0 || !(pg = th_pg_start()))
        goto out;
    connstr = th_odbc_pg_connstr(pg);
    char *ini = th_path(th_odbc_env_dir(), "odbc.ini");
    char *dsn = th_strf("[bench]\nDriver=PostgreSQL\nServername=127.0.0.1\nPort=%d\n"
                        "Database=postgres\nUsername=postgres\nBoolsAsChar=0\n",
                        th_pg_port(pg));
    th_write_file(ini, dsn);
    free(ini);
    free(dsn);

    out("# ODBC polling connector: %ld rows through psqlODBC (PostgreSQL 15)\n\n", g_rows);
    int64_t t0 = th_now_ms();
    if (th_pg_exec(pg, "CREATE TABLE bench_ord (id bigint PRIMARY KEY, comp char(2) NOT NULL,"
                       " ordn char(10) NOT NULL, cust char(8) NOT NULL, odat date,"
                       " amt numeric(12,2) NOT NULL, stat char(1) NOT NULL, note varchar(60),"
                       " updt timestamp NOT NULL, qty integer, price numeric(10,3),"
                       " wh char(3) NOT NULL);"
                       "INSERT INTO bench_ord SELECT g, '01', lpad(g::text, 10, '0'),"
                       " lpad((g %% 5000)::text, 8, '0'), date '2020-01-01' + (g %% 1500),"
                       " (g %% 100000) / 100.0, 'O', CASE WHEN g %% 3 = 0 THEN NULL ELSE"
                       " 'note for order ' || g END, timestamp '2024-01-01' + g * interval"
                       " '1 millisecond', g %% 100, (g %% 7000) / 7.0, 'W' || (g %% 10)"
                       " FROM generate_series(1, %ld) g;"
                       "CREATE INDEX bench_ord_updt ON bench_ord (updt, id)",
                   g_rows) != 0 ||
        th_pg_exec(pg, "VACUUM ANALYZE bench_ord") != 0)
        goto out;
    out("table bench_ord: 12 columns, %ld rows, loaded in %.1f s\n\n", g_rows,
        (double)(th_now_ms() - t0) / 1000.0);

    /* The reads, --reps times (3): isql, the connector in incrementing mode and in timestamp
     * mode, alternating which goes first; the machine is shared, so the median is reported. */
    char *isql = th_strf("echo 'SELECT " COLS " FROM bench_ord ORDER BY id' | isql -b -d, bench"
                         " > /dev/null");
    char *const iargv[] = {"/bin/sh", "-c", isql, NULL};
    double isql_s[MAX_REPS], isql_cpu[MAX_REPS];
    run_result_t src_inc[MAX_REPS], src_ts[MAX_REPS];
    char *states[MAX_REPS][2];
    memset(src_inc, 0, sizeof(src_inc));
    memset(src_ts, 0, sizeof(src_ts));
    th_odbc_conf_t c = {0};
    c.name = "bench";
    c.dsn = connstr;
    c.bootstraps = "127.0.0.1:1";
    c.offsets_path = th_path(dir, "unused-offsets.json");
    c.poll_interval_ms = 1000;
    c.max_rows_per_poll = 10000;
    c.safety_lag_ms = 5000;
    c.reconcile_interval_s = 0;
    c.reconcile_chunk = 10000;
    c.tables[0] = (th_odbc_table_t){"public.bench_ord", "incrementing", NULL, "id", NULL};
    c.ntables = 1;
    th_odbc_conf_t tc = c;
    tc.tables[0] = (th_odbc_table_t){"public.bench_ord", "timestamp", "updt", NULL, "id"};
    for (int r = 0; r < g_reps; r++) {
        char name[32];
        snprintf(name, sizeof(name), "state-inc-%d", r);
        states[r][0] = th_path(dir, name);
        snprintf(name, sizeof(name), "state-ts-%d", r);
        states[r][1] = th_path(dir, name);
        for (int step = 0; step < 2; step++) {
            if ((step == 0) == (r % 2 == 0)) {
                int code = -1;
                struct rusage ru0, ru1;
                t0 = th_now_ms();
                getrusage(RUSAGE_CHILDREN, &ru0);
                if (th_run(iargv, NULL, 600000, &code, NULL, NULL) != 0 || code != 0) {
                    th_err("isql failed (exit %d)", code);
                    goto out;
                }
                getrusage(RUSAGE_CHILDREN, &ru1);
                isql_s[r] = (double)(th_now_ms() - t0) / 1000.0;
                isql_cpu[r] = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                              (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                              (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                              (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
            } else {
                c.state_dir = states[r][0];
                tc.state_dir = states[r][1];
                if (drive(&c, NULL, g_rows, &src_inc[r], 0) != 0 ||
                    drive(&tc, NULL, g_rows, &src_ts[r], 0) != 0)
                    goto out;
            }
        }
        fprintf(stderr, "rep %d: isql %.2f s, incrementing %.2f s, timestamp %.2f s\n", r + 1,
                isql_s[r], src_inc[r].secs, src_ts[r].secs);
    }
    free(isql);
    int last = g_reps - 1;

    /* the whole pipeline */
    if (write_mapping(dir, &mdir, &sdir) != 0 || !(kafka = th_kafka_start(1)) ||
        th_kafka_create_topic(kafka, "bench.bench_order.v1", 16) != 0)
        goto out;
    th_odbc_conf_t pc = c;
    char *pstate = th_path(dir, "state-pipe"), *poff = th_path(dir, "offsets.json");
    pc.state_dir = pstate;
    pc.offsets_path = poff;
    pc.bootstraps = th_kafka_bootstraps(kafka);
    pc.topic_prefix = "bench";
    pc.mappings_dir = mdir;
    pc.schemas_dir = sdir;
    pc.flush_interval_ms = 100;
    char want[64];
    snprintf(want, sizeof(want), "\\\"c\\\":[\\\"%ld\\\"]", g_rows);
    double pc0 = cpu_s();
    t0 = th_now_ms();
    th_odbc_run_t *run = th_odbc_run_start(&pc);
    int done = 0;
    while (run && th_odbc_run_alive(run) && th_now_ms() - t0 < 600000) {
        if (th_file_contains(poff, want)) {
            done = 1;
            break;
        }
        th_sleep_ms(20);
    }
    double pipe_s = (double)(th_now_ms() - t0) / 1000.0, pipe_cpu = cpu_s() - pc0;
    char perr[1024];
    th_odbc_run_stop(run, perr, sizeof(perr));
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    if (!done) {
        th_err("the pipeline did not deliver %ld rows: %s", g_rows, perr);
        goto out;
    }

    double v_isql[MAX_REPS], v_inc[MAX_REPS], v_ts[MAX_REPS], c_inc[MAX_REPS], c_ts[MAX_REPS];
    for (int r = 0; r < g_reps; r++) {
        v_isql[r] = isql_s[r];
        v_inc[r] = src_inc[r].secs;
        v_ts[r] = src_ts[r].secs;
        c_inc[r] = src_inc[r].cpu;
        c_ts[r] = src_ts[r].cpu;
    }
    double m_isql = median(v_isql, g_reps), m_inc = median(v_inc, g_reps),
           m_ts = median(v_ts, g_reps);
    out("## First full read (median of %d runs; rows/s, wall clock; CPU of the reading "
        "process)\n\n",
        g_reps);
    out("| reader | time | range | rows/s | vs isql | CPU | queries |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n");
    out("| isql, one query, output to /dev/null | %.2f s | %.2f-%.2f s | %.0f | 1.00x | %.2f s "
        "| 1 |\n",
        m_isql, minv(isql_s, g_reps), maxv(isql_s, g_reps), g_rows / m_isql,
        median(isql_cpu, g_reps));
    out("| connector alone, incrementing, pages of 10,000 | %.2f s | %.2f-%.2f s | %.0f | "
        "%.2fx | %.2f s | %" PRIu64 " |\n",
        m_inc, minv(v_inc, g_reps), maxv(v_inc, g_reps), g_rows / m_inc, m_isql / m_inc,
        median(c_inc, g_reps), src_inc[last].st.queries);
    out("| connector alone, timestamp (updt, id), pages of 10,000 | %.2f s | %.2f-%.2f s | %.0f "
        "| %.2fx | %.2f s | %" PRIu64 " |\n",
        m_ts, minv(v_ts, g_reps), maxv(v_ts, g_reps), g_rows / m_ts, m_isql / m_ts,
        median(c_ts, g_reps), src_ts[last].st.queries);
    out("| whole pipeline to Kafka (mock), delivered and acknowledged (one run) | %.2f s | | %.0f "
        "| %.2fx | %.2f s | - |\n\n",
        pipe_s, g_rows / pipe_s, m_isql / pipe_s, pipe_cpu);
    out("The connector read %" PRIu64 " rows and wrote %" PRIu64 " journal frames, each fsynced "
        "before the page's events were handed on.\n\n",
        src_inc[last].st.rows, src_inc[last].st.fsyncs);

    /* idle: caught up, default poll interval */
    run_result_t idle_inc, idle_ts;
    c.state_dir = states[last][0];
    tc.state_dir = states[last][1];
    if (drive(&c, src_inc[last].pos, -(long)g_idle_s * 1000, &idle_inc, 0) != 0 ||
        drive(&tc, src_ts[last].pos, -(long)g_idle_s * 1000, &idle_ts, 0) != 0)
        goto out;
    double per_min = 60.0 / g_idle_s;
    out("## Idle table (polled every 1000 ms, reconciliation off), per minute\n\n");
    out("| mode | queries/min | rows read/min | CPU/min |\n|---|---:|---:|---:|\n");
    out("| incrementing | %.0f | %.0f | %.3f s |\n", idle_inc.st.queries * per_min,
        idle_inc.st.rows * per_min, idle_inc.cpu * per_min);
    out("| timestamp (lag 5000 ms: the window is re-read) | %.0f | %.0f | %.3f s |\n\n",
        idle_ts.st.queries * per_min, idle_ts.st.rows * per_min, idle_ts.cpu * per_min);
    out("(Counted from the end of open(): its describe, primary key and clock queries, and "
        "loading the key set of %ld keys from disk - %.2f s - are not included.)\n\n",
        g_rows, idle_inc.open_s);

    /* one reconciliation pass */
    th_odbc_conf_t rcfg = c;
    rcfg.reconcile_interval_s = 1;
    int64_t r0 = th_now_ms();
    run_result_t rec;
    if (drive(&rcfg, src_inc[last].pos, 0, &rec, 1) != 0)
        goto out;
    out("## One reconciliation pass over %ld keys (chunks of 10,000)\n\n", g_rows);
    out("%.2f s after open() (of which 1 s waiting for reconcile_interval_s = 1 and one poll), "
        "%" PRIu64 " queries, %" PRIu64 " keys read, %.2f s CPU.\n",
        rec.secs, rec.st.queries, rec.st.rows, rec.cpu);
    (void)r0;
    for (int r = 0; r < g_reps; r++) {
        free(src_inc[r].pos);
        free(src_ts[r].pos);
        free(states[r][0]);
        free(states[r][1]);
    }
    free(idle_inc.pos);
    free(idle_ts.pos);
    free(rec.pos);
    free(pstate);
    free(poff);
    free((char *)c.offsets_path);
    rc = 0;
out:
    th_kafka_destroy(kafka);
    th_pg_destroy(pg);
    free(connstr);
    free(mdir);
    free(sdir);
    if (g_report)
        fclose(g_report);
    return rc;
}
