/*
 * snapshot_to_kafka.c - the initial snapshot measured end to end: a 2,000,000-row, 12-column
 * table read by `siphon run` with `snapshot: initial_only` into librdkafka's mock cluster
 * (every event acknowledged), against `psql -c "\copy (select * from t) to /dev/null"` on the
 * same table in the same run: the server's own speed at handing the rows out, our ceiling.
 *
 *   bench_snapshot_to_kafka [--rows N] [--reps N] [--chunk-rows N] [--partitions N]
 *                           [--prop key=value]... [--perf FILE] [--report FILE] [--strict]
 *
 * Setup: a throwaway PostgreSQL 15 (the test harness's; autovacuum off), the benchmark's
 * order-line table (bench/sql/oeline.sql: CHAR codes, integer, varchar, three NUMERICs, a date,
 * a timestamp) filled with N rows (default 2,000,000) in one statement, then VACUUM (ANALYZE,
 * FREEZE) and CHECKPOINT so that neither reader pays for hint bits or the writer's I/O; the
 * whole row is mapped (bench/mappings/order_line.yaml, bench/schemas/order_line.v1.avsc).
 *
 * Each repetition (default 3; the order of the two readers alternates):
 *   copy    psql \copy (select * from public.oeline) to /dev/null, timed from spawn to exit;
 *   siphon  a fresh offsets file and a new slot (create_slot: true, the exported snapshot),
 *           `siphon run` timed from spawn to its exit 0, which comes only after every snapshot
 *           event was acknowledged by Kafka; then the topic's high watermarks must add up to N.
 * For each: wall time, rows/s, the reader's CPU (its own, from RUSAGE_CHILDREN), the server
 * backend's CPU (the postmaster's reaped children), and for siphon its peak RSS (VmHWM sampled
 * every 20 ms) and the mock cluster's CPU (this process). The summary is the median of the
 * repetitions (the ratio: median of the per-repetition ratios). Targets (issue 4): at least
 * 300,000 rows/s and at least 0.5x the copy rate.
 *
 * With --perf FILE, the first repetition runs siphon under `perf record --call-graph dwarf`
 * (every thread, 499 Hz; the profiler's cost is in that repetition's numbers, and its peak RSS
 * is perf's): `perf report -i FILE --no-children -s pid,comm -g none` splits the samples by
 * thread, `perf report -i FILE --children --tid <main thread>` shows where the pipeline thread
 * goes. Exit 0 when the run completed, 1 when something failed, 2 with --strict when a target
 * was missed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_util.h"
#include "harness.h"

#define PSQL "/usr/lib/postgresql/15/bin/psql"
#define TOPIC_ENTITY "order_line.v1"
#define MAX_REPS 9
#define TARGET_RPS 300000.0
#define TARGET_RATIO 0.5

typedef struct opts {
    long rows;
    int reps, chunk_rows, partitions, strict;
    const char *props[8];
    int nprops;
    const char *perf, *report;
} opts_t;

typedef struct run {
    double copy_s, copy_cpu_s, copy_be_cpu_s;
    double siphon_s, siphon_cpu_s, siphon_be_cpu_s, mock_cpu_s;
    long hwm_kb;
    long vol_cs, invol_cs;  /* siphon's main (pipeline) thread: waits, preemptions */
    long events;
    double ratio;
} run_t;

typedef struct bench {
    opts_t o;
    char *dir, *mappings, *schemas;
    th_pg_t *pg;
    th_kafka_t *kafka;
    rd_kafka_t *client;
    pid_t postmaster;
    run_t runs[MAX_REPS];
    int nruns;
    double load_s;
    char started[64];
} bench_t;

/* ---- measuring ---- */

/* The server backends' CPU that has been reaped so far (postmaster cutime + cstime). */
static double backends_cpu_s(bench_t *b)
{
    return bench_stat_ticks_s(b->postmaster, 16);
}

/* From /proc/<pid>/status (0 for "self"): VmHWM in kB and the main thread's voluntary
 * (it blocked: waiting for the server, for librdkafka) and involuntary (preempted: the CPU was
 * wanted elsewhere) context switches. -1 when the process is gone. */
static long proc_status(pid_t pid, long *vol, long *invol)
{
    char path[64], line[256];
    long kb = -1;
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
        else if (vol && strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            *vol = strtol(line + 24, NULL, 10);
        else if (invol && strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0)
            *invol = strtol(line + 27, NULL, 10);
    }
    fclose(f);
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Sum of the partitions' high watermarks of a topic. -1 on error. */
static long topic_messages(bench_t *b, const char *topic)
{
    long sum = 0;
    for (int p = 0; p < b->o.partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(b->client, topic, p, &lo, &hi,
                                                                 5000);
        if (e) {
            th_err("could not read the watermarks of %s [%d]: %s", topic, p, rd_kafka_err2str(e));
            return -1;
        }
        sum += (long)hi;
    }
    return sum;
}

/* ---- the two readers ---- */

static int run_copy(bench_t *b, run_t *r)
{
    char *argv[] = {PSQL, "-X", "-q", "-d", (char *)th_pg_conninfo(b->pg), "-c",
                    "\\copy (select * from public.oeline) to /dev/null", NULL};
    char *err = NULL;
    int code = -1;
    double be0 = backends_cpu_s(b), cpu0 = bench_rusage_s(RUSAGE_CHILDREN), t0 = bench_mono_s();
    int rc = th_run(argv, NULL, 600000, &code, NULL, &err);
    r->copy_s = bench_mono_s() - t0;
    r->copy_cpu_s = bench_rusage_s(RUSAGE_CHILDREN) - cpu0;
    th_sleep_ms(100); /* let the postmaster reap the backend */
    r->copy_be_cpu_s = backends_cpu_s(b) - be0;
    if (rc != 0 || code != 0) {
        th_err("psql \\copy failed (exit %d): %s", code, err ? err : "");
        free(err);
        return -1;
    }
    free(err);
    return 0;
}

static char *write_config(bench_t *b, int rep, const char *slot, const char *offsets)
{
    char props[1024] = "";
    size_t o = 0;
    for (int i = 0; i < b->o.nprops; i++) {
        const char *eq = strchr(b->o.props[i], '=');
        if (eq)
            o += (size_t)snprintf(props + o, sizeof(props) - o, "    %.*s: \"%s\"\n",
                                  (int)(eq - b->o.props[i]), b->o.props[i], eq + 1);
    }
    char *path = th_strf("%s/siphon-%d.yaml", b->dir, rep);
    char *text = th_strf(
        "name: snapbench\n"
        "source:\n"
        "  type: postgres\n"
        "  conninfo: \"%s\"\n"
        "  slot: %s\n"
        "  publication: snapbench\n"
        "  create_slot: true\n"
        "  create_publication: false\n"
        "  snapshot: initial_only\n"
        "  snapshot_chunk_rows: %d\n"
        "mappings: \"%s\"\n"
        "schemas: \"%s\"\n"
        "sink:\n"
        "  type: kafka\n"
        "  topic_prefix: snap%d\n"
        "  properties:\n"
        "    bootstrap.servers: \"%s\"\n"
        "%s"
        "offsets:\n"
        "  path: \"%s\"\n"
        "log:\n"
        "  level: info\n",
        th_pg_conninfo(b->pg), slot, b->o.chunk_rows, b->mappings, b->schemas, rep,
        th_kafka_bootstraps(b->kafka), props, offsets);
    int rc = th_write_file(path, text);
    free(text);
    if (rc) {
        free(path);
        return NULL;
    }
    return path;
}

static int run_siphon(bench_t *b, int rep, run_t *r)
{
    char slot[32];
    snprintf(slot, sizeof(slot), "snapbench_%d", rep);
    char *offsets = th_strf("%s/offsets-%d.json", b->dir, rep);
    char *conf = write_config(b, rep, slot, offsets);
    char *log = th_strf("%s/siphon-%d.log", b->dir, rep);
    char *topic = th_strf("snap%d.%s", rep, TOPIC_ENTITY);
    th_proc_t *p = NULL;
    int rc = -1;
    if (!conf || th_kafka_create_topic(b->kafka, topic, b->o.partitions) != 0)
        goto out;
    double be0 = backends_cpu_s(b), cpu0 = bench_rusage_s(RUSAGE_CHILDREN);
    double self0 = bench_rusage_s(RUSAGE_SELF), t0 = bench_mono_s();
    if (b->o.perf && rep == 1) {
        /* siphon under `perf record` (which exits with siphon's exit code): every thread is
         * sampled, the snapshot reader and librdkafka's included */
        char *argv[] = {"perf", "record", "-q", "--call-graph", "dwarf,16384", "-F", "499", "-o",
                        (char *)b->o.perf, "--",
                        (char *)th_siphon_bin(), "run", "--config", conf, NULL};
        p = th_proc_spawn(argv, log);
    } else {
        p = th_siphon_start(conf, log);
    }
    if (!p)
        goto out;
    long hwm = 0;
    while (!th_proc_wait(p, 20)) {
        long vol = 0, invol = 0, k = proc_status(th_proc_pid(p), &vol, &invol);
        if (k > hwm)
            hwm = k;
        if (k > 0) {
            r->vol_cs = vol;
            r->invol_cs = invol;
        }
        if (bench_mono_s() - t0 > 900) {
            th_err("siphon did not finish the snapshot within 900 s");
            th_proc_dump_log(p, 40);
            goto out;
        }
    }
    r->siphon_s = bench_mono_s() - t0;
    r->siphon_cpu_s = bench_rusage_s(RUSAGE_CHILDREN) - cpu0;
    r->mock_cpu_s = bench_rusage_s(RUSAGE_SELF) - self0;
    r->hwm_kb = hwm;
    if (th_proc_exit_code(p) != 0) {
        th_err("siphon exited with code %d (expected 0 after snapshot: initial_only)",
               th_proc_exit_code(p));
        th_proc_dump_log(p, 60);
        goto out;
    }
    th_sleep_ms(100);
    r->siphon_be_cpu_s = backends_cpu_s(b) - be0;
    r->events = topic_messages(b, topic);
    if (r->events != b->o.rows) {
        th_err("topic %s holds %ld messages, expected %ld", topic, r->events, b->o.rows);
        th_proc_dump_log(p, 40);
        goto out;
    }
    /* the slot is not needed any more: do not let it hold WAL for the next repetitions */
    th_pg_exec(b->pg, "SELECT pg_drop_replication_slot('%s')", slot);
    rc = 0;
out:
    th_proc_destroy(p);
    free(offsets);
    free(conf);
    free(log);
    free(topic);
    return rc;
}

/* ---- setup and report ---- */

static int setup(bench_t *b)
{
    const char *src = th_source_dir();
    b->mappings = th_path(src, "bench/mappings");
    b->schemas = th_path(src, "bench/schemas");
    if (!th_siphon_bin() || !(b->dir = th_tempdir()))
        return -1;
    th_log("starting PostgreSQL 15 and a mock Kafka cluster (3 brokers)");
    if (!(b->pg = bench_pg_oeline()) ||
        th_pg_exec(b->pg, "CREATE PUBLICATION snapbench FOR TABLE public.oeline"))
        return -1;
    b->postmaster = bench_postmaster_pid(b->pg);
    th_log("writing %ld rows", b->o.rows);
    double t0 = bench_mono_s();
    if (th_pg_exec(b->pg, "CALL bench_gen(1, 1, %ld)", b->o.rows) ||
        th_pg_exec(b->pg, "VACUUM (FREEZE, ANALYZE) public.oeline") ||
        th_pg_exec(b->pg, "CHECKPOINT"))
        return -1;
    b->load_s = bench_mono_s() - t0;
    sync();
    if (!(b->kafka = th_kafka_start(3)))
        return -1;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", th_kafka_bootstraps(b->kafka), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        !(b->client = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        return th_err("could not create the watermark client: %s", errstr);
    }
    return 0;
}

static void machine(char *buf, size_t size)
{
    char model[128] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c) {
            snprintf(model, sizeof(model), "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    double load[3] = {0};
    getloadavg(load, 3);
    snprintf(buf, size, "%ld CPUs (nproc), %s, Linux %s, load average %.2f at the end",
             sysconf(_SC_NPROCESSORS_ONLN), model, u.release, load[0]);
}

static int report(bench_t *b, FILE *out)
{
    int n = b->nruns;
    double copy_rps[MAX_REPS], sip_rps[MAX_REPS], ratio[MAX_REPS], sip_cpu[MAX_REPS],
        copy_cpu[MAX_REPS], sip_be[MAX_REPS], copy_be[MAX_REPS], mock[MAX_REPS];
    long hwm = 0;
    for (int i = 0; i < n; i++) {
        const run_t *r = &b->runs[i];
        copy_rps[i] = (double)b->o.rows / r->copy_s;
        sip_rps[i] = (double)b->o.rows / r->siphon_s;
        ratio[i] = sip_rps[i] / copy_rps[i];
        sip_cpu[i] = r->siphon_cpu_s;
        copy_cpu[i] = r->copy_cpu_s;
        sip_be[i] = r->siphon_be_cpu_s;
        copy_be[i] = r->copy_be_cpu_s;
        mock[i] = r->mock_cpu_s;
        if (r->hwm_kb > hwm)
            hwm = r->hwm_kb;
    }
    char host[512];
    machine(host, sizeof(host));
    fprintf(out, "## Snapshot of a %ld-row, 12-column table into Kafka (bench_snapshot_to_kafka)\n\n"
            "Run of %s on %s; %d repetitions, median shown; table loaded in %.1f s; "
            "snapshot_chunk_rows %d, %d partitions.\n\n",
            b->o.rows, b->started, host, n, b->load_s, b->o.chunk_rows, b->o.partitions);
    fprintf(out, "| run | reader | wall s | rows/s | reader CPU s | backend CPU s | mock Kafka CPU s |"
                 " peak RSS | pipeline thread waits / preemptions |\n"
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const run_t *r = &b->runs[i];
        fprintf(out, "| %d | psql \\copy | %.2f | %.0f | %.2f | %.2f | - | - | - |\n", i + 1,
                r->copy_s, copy_rps[i], r->copy_cpu_s, r->copy_be_cpu_s);
        fprintf(out, "| %d | siphon | %.2f | %.0f | %.2f | %.2f | %.2f | %.1f MB | %ld / %ld |\n",
                i + 1, r->siphon_s, sip_rps[i], r->siphon_cpu_s, r->siphon_be_cpu_s,
                r->mock_cpu_s, (double)r->hwm_kb / 1024.0, r->vol_cs, r->invol_cs);
    }
    double c = median(copy_rps, n), s = median(sip_rps, n), q = median(ratio, n);
    double scpu = median(sip_cpu, n), ccpu = median(copy_cpu, n), sbe = median(sip_be, n),
           cbe = median(copy_be, n), mk = median(mock, n);
    int met_rps = s >= TARGET_RPS, met_ratio = q >= TARGET_RATIO;
    fprintf(out, "\n| | psql \\copy | siphon |\n|---|---:|---:|\n"
            "| rows/s (median) | %.0f | %.0f |\n"
            "| CPU per row, reader | %.2f µs | %.2f µs |\n"
            "| CPU per row, server backend | %.2f µs | %.2f µs |\n"
            "| CPU per row, mock Kafka | - | %.2f µs |\n\n",
            c, s, ccpu * 1e6 / (double)b->o.rows, scpu * 1e6 / (double)b->o.rows,
            cbe * 1e6 / (double)b->o.rows, sbe * 1e6 / (double)b->o.rows,
            mk * 1e6 / (double)b->o.rows);
    fprintf(out, "- at least %.0f rows/s: %.0f rows/s, %s\n- at least %.1fx the copy rate: %.2fx, %s\n"
                 "- peak RSS of siphon (VmHWM): %.1f MB (this benchmark process, with the mock "
                 "cluster's topics: %.0f MB)\n",
            TARGET_RPS, s, met_rps ? "ok" : "MISSED", TARGET_RATIO, q, met_ratio ? "ok" : "MISSED",
            (double)hwm / 1024.0, (double)proc_status(0, NULL, NULL) / 1024.0);
    return met_rps && met_ratio;
}

int main(int argc, char **argv)
{
    bench_t *b = calloc(1, sizeof(*b));
    b->o.rows = 2000000;
    b->o.reps = 3;
    b->o.chunk_rows = 10000;
    b->o.partitions = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--rows") && v)
            b->o.rows = atol(argv[++i]);
        else if (!strcmp(a, "--reps") && v)
            b->o.reps = atoi(argv[++i]);
        else if (!strcmp(a, "--chunk-rows") && v)
            b->o.chunk_rows = atoi(argv[++i]);
        else if (!strcmp(a, "--partitions") && v)
            b->o.partitions = atoi(argv[++i]);
        else if (!strcmp(a, "--prop") && v && b->o.nprops < 8)
            b->o.props[b->o.nprops++] = argv[++i];
        else if (!strcmp(a, "--perf") && v)
            b->o.perf = argv[++i];
        else if (!strcmp(a, "--report") && v)
            b->o.report = argv[++i];
        else if (!strcmp(a, "--strict"))
            b->o.strict = 1;
        else {
            fprintf(stderr, "usage: %s [--rows N] [--reps N] [--chunk-rows N] [--partitions N] "
                    "[--prop key=value]... [--perf FILE] [--report FILE] [--strict]\n", argv[0]);
            return 2;
        }
    }
    if (b->o.rows < 1 || b->o.reps < 1 || b->o.reps > MAX_REPS || b->o.chunk_rows < 1 ||
        b->o.partitions < 1) {
        fprintf(stderr, "bench: --rows, --chunk-rows, --partitions at least 1; --reps 1..%d\n",
                MAX_REPS);
        return 2;
    }
    time_t now = time(NULL);
    strftime(b->started, sizeof(b->started), "%Y-%m-%d %H:%M UTC", gmtime(&now));
    int rc = 1;
    if (setup(b) != 0)
        goto out;
    for (int rep = 1; rep <= b->o.reps; rep++) {
        run_t *r = &b->runs[rep - 1];
        /* alternate which reader goes first, so neither always finds a warmer cache */
        int copy_first = rep % 2 == 1;
        if ((copy_first && run_copy(b, r) != 0) || run_siphon(b, rep, r) != 0 ||
            (!copy_first && run_copy(b, r) != 0))
            goto out;
        b->nruns = rep;
        th_log("run %d: psql \\copy %.2f s (%.0f rows/s), siphon %.2f s (%.0f rows/s, %.2fx), "
               "peak RSS %.1f MB", rep, r->copy_s, (double)b->o.rows / r->copy_s, r->siphon_s,
               (double)b->o.rows / r->siphon_s, r->copy_s / r->siphon_s,
               (double)r->hwm_kb / 1024.0);
    }
    int met = report(b, stdout);
    if (b->o.report) {
        FILE *f = fopen(b->o.report, "w");
        if (f) {
            report(b, f);
            fclose(f);
        }
    }
    rc = !met && b->o.strict ? 2 : 0;
out:
    if (b->client)
        rd_kafka_destroy(b->client);
    th_kafka_destroy(b->kafka);
    th_pg_destroy(b->pg);
    if (b->dir && !getenv("TH_KEEP"))
        th_tempdir_remove(b->dir);
    free(b->dir);
    free(b->mappings);
    free(b->schemas);
    free(b);
    return rc;
}
