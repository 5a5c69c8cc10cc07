/*
 * pg_to_kafka.c - `make bench`: the Postgres-to-Kafka path measured end to end, against the
 * server's own decoding speed in the same run.
 *
 * One throwaway PostgreSQL 15 (the test harness's), librdkafka's mock cluster inside this process
 * (3 brokers, topics of 16 partitions created up front), and the real `siphon run` binary as a
 * child process with the benchmark's own mapping (bench/mappings, bench/schemas) of a 12-column
 * legacy order-line table (bench/sql/oeline.sql). Three phases, each printed as it ends:
 *
 *  tput  Two logical slots (one for pg_recvlogical, one for siphon) and the publication exist
 *        before any data, so both readers decode exactly the same WAL. A bulk of committed
 *        transactions is written (500 x 1000 rows), checkpointed and synced to disk; then each
 *        reader drains it from its slot, timed: `pg_recvlogical --endpos` to /dev/null with
 *        pgoutput (the server's decoding speed: our ceiling), and siphon from process start
 *        until the slot's confirmed_flush_lsn reaches the end of the last commit (it only
 *        moves after Kafka acknowledged delivery). Then the same for 100,000 single-row
 *        transactions. Three runs (--reps), alternating which reader goes first; the summary is
 *        their median. The topic's high watermarks must add up to the events written, and a
 *        sample is decoded back from Avro.
 *  lat   siphon streams while a writer commits single-row transactions at a steady rate
 *        (5,000/s for 20 s after a 1 s warm-up); a consumer thread stamps each message when it
 *        arrives; latency = arrival - the envelope's source.commit_ts_us (same host clock).
 *  rss   siphon streams one transaction of 1,000,000 rows; its VmHWM (peak resident set) is read
 *        from /proc, with VmRSS sampled every 20 ms.
 *
 * How the end of a run is detected: E = pg_current_wal_insert_lsn() right after the bulk's last
 * commit, in the committing session, so E >= that commit's end LSN (equal unless the server
 * logged something in between; autovacuum is off). siphon only reports a position as flushed
 * once every transaction committed before it was delivered (a keepalive's position included:
 * the server sends one only past what it has already streamed), so "confirmed_flush_lsn >= E"
 * means the whole bulk was acknowledged by Kafka. pg_recvlogical gets --endpos E. (A position
 * taken before the last commit would not do: keepalives move the slot past it while the last
 * transaction is still being written.)
 *
 * The machine is shared: every timed stretch also reports how much CPU other processes took
 * (see cpu_mark), and each run's CPU split (walsender, reader, mock Kafka).
 *
 * Output: the phases' tables on stdout, and with --report FILE the same as Markdown (bench/run.sh
 * writes it into the build folder). Exit 0 when the run completed (targets met or not, each
 * marked), 1 when something failed, 2 with --strict when a target was missed.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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

#define PG_RECVLOGICAL "/usr/lib/postgresql/15/bin/pg_recvlogical"
#define SLOT_RECV "bench_recv"
#define SLOT_SIPHON "bench_siphon"
#define PUBLICATION "bench"
#define ENTITY_TOPIC "order_line.v1"
#define MAX_REPS 9

/* Targets from the issue, for this machine class. */
#define TARGET_RATIO 0.70
#define TARGET_P99_MS 50.0
#define TARGET_RSS_MB 64.0

typedef struct opts {
    int multi_txns, multi_rows; /* tput: multi-row bulk */
    int single_txns;            /* tput: single-row bulk */
    int rate, seconds, warmup_ms; /* lat */
    int rss_rows;               /* rss */
    int partitions;
    int reps;                   /* tput: repetitions (the summary is their median) */
    int do_tput, do_lat, do_rss;
    int perf;                   /* perf record siphon during the multi-row run */
    int strict;
    const char *report;         /* Markdown results file, or NULL */
    const char *props[8];       /* extra librdkafka properties "key=value" for siphon */
    int nprops;
    long long max_inflight;     /* pipeline.max_inflight_bytes for siphon; 0: its default */
    int flush_ms;               /* offsets.flush_interval_ms for siphon; 0: its default */
    const char *log_level;      /* siphon's log.level (default info) */
} opts_t;

/* One timed drain of a bulk by both readers. */
typedef struct tput_result {
    const char *what;
    long events;
    double recv_s, recv_cpu_s;      /* pg_recvlogical wall and CPU seconds */
    double siphon_s, siphon_cpu_s;  /* siphon: start -> confirmed_flush at the last commit */
    long siphon_hwm_kb;
    double recv_ws_cpu_s, siphon_ws_cpu_s; /* the server's walsender, per reader */
    double siphon_mock_cpu_s;       /* this process (the mock cluster) during the siphon run */
    double recv_other_pct, siphon_other_pct; /* other processes' load, % of one core */
    double first_ack_s;             /* siphon start -> the slot's first move */
    double ratio, ratio_lo, ratio_hi; /* siphon rate / pg_recvlogical rate (summaries) */
    double gen_s;                   /* how long writing the bulk took */
    int ok;
} tput_result_t;

typedef struct lat_result {
    long sent, received, measured;  /* measured: committed after the warm-up */
    double achieved_rate;
    int max_batch;                  /* most transactions the writer had to send at once */
    double p50, p90, p99, p999, max_ms, over_target_pct;
    double emit_p50, emit_p99;      /* commit -> siphon's envelope ts_us (produce side) */
    double siphon_cpu_pct;
    long siphon_hwm_kb;
    double other_pct;
    double avg_key, avg_value;      /* message sizes, bytes */
    int ok;
} lat_result_t;

typedef struct rss_result {
    long rows;
    double gen_s, stream_s;         /* insert+commit; commit -> confirmed */
    long base_kb, max_rss_kb, hwm_kb;
    double siphon_cpu_s;
    double other_pct;
    int ok;
} rss_result_t;

typedef struct bench {
    opts_t o;
    char *dir;
    th_pg_t *pg;
    th_kafka_t *kafka;
    rd_kafka_t *client;   /* for watermarks */
    th_decoder_t *dec;
    pid_t postmaster;
    char *mappings, *schemas, *offsets;
    int nruns;
    th_proc_t **runs;     /* every siphon run, for logs */
    long next_id;         /* next row id to write */
    char started[64], loadavg[64];
    tput_result_t truns[MAX_REPS][3]; /* every run: 1000-row, single-row, all */
    int nreps;
    tput_result_t tput[3];            /* their summary (medians) */
    int ntput;
    lat_result_t lat;
    rss_result_t rss;
    char perf_top[8192];
} bench_t;

/* ---- small helpers ---- */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_mono_us(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000), (long)(t % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Resident set of a process from /proc/<pid>/status and its CPU time from /proc/<pid>/stat
 * (all threads). 0 or -1 when the process is gone. */
typedef struct pstat {
    long rss_kb, hwm_kb;
    double cpu_s;
} pstat_t;

static int proc_sample(pid_t pid, pstat_t *s)
{
    char path[64], line[256];
    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            s->rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            s->hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    if ((s->cpu_s = bench_stat_ticks_s(pid, 14)) < 0) { /* utime + stime */
        s->cpu_s = 0;
        return -1;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile (0..100) of a sorted array, nearest rank. */
static int64_t pct(const int64_t *v, long n, double p)
{
    if (n <= 0)
        return 0;
    long i = (long)((p / 100.0) * (double)n + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return v[i];
}

/* A timestamp from a decoded envelope: a number of microseconds, or ISO-8601 text
 * ("2026-11-26T19:00:15.123456Z") as siphon_avro_stream_decode_json renders timestamp-micros.
 * 0 or -1. */
static int json_ts_us(json_t *j, int64_t *out)
{
    if (json_is_integer(j)) {
        *out = (int64_t)json_integer_value(j);
        return 0;
    }
    if (!json_is_string(j))
        return -1;
    const char *s = json_string_value(j);
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t us = (int64_t)timegm(&tm) * 1000000;
    s += used;
    if (*s == '.') {
        int64_t frac = 0, scale = 1000000;
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*s - '0') * scale;
            }
        }
        us += frac;
    }
    if (*s != 'Z' && *s != '\0' && strncmp(s, "+00", 3) != 0)
        return -1;
    *out = us;
    return 0;
}

/* CPU seconds of this process (the mock cluster's threads and ours). */
static double self_cpu_s(void)
{
    return bench_rusage_s(RUSAGE_SELF);
}

/* CPU seconds of the postmaster's exited children (cutime + cstime): a walsender's CPU lands
 * there once it has exited, so the difference across a reader's run is that run's decoding
 * cost on the server. -1 when unreadable. */
static double pg_children_cpu_s(bench_t *b)
{
    return bench_stat_ticks_s(b->postmaster, 16); /* cutime + cstime */
}

/* Wait until no walsender holds the slot (its process is gone or going), plus a moment for the
 * postmaster to reap it. */
static void wait_slot_released(bench_t *b, const char *slot)
{
    int64_t deadline = th_now_ms() + 10000;
    while (th_now_ms() < deadline) {
        char *v = th_pg_value(b->pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s' "
                              "AND active", slot);
        int active = v ? atoi(v) : 0;
        free(v);
        if (!active)
            break;
        th_sleep_ms(20);
    }
    th_sleep_ms(200);
}

/* ---- CPU accounting: how much of the machine the benchmark did NOT use ----
 *
 * The machine is shared (two cores, other work may run). A mark records the CPU time of the
 * whole machine (/proc/stat) and of "ours": this process and its descendants (siphon,
 * pg_recvlogical, ...) and the postmaster and its descendants (walsenders, backends),
 * including the CPU of descendants already reaped (cutime/cstime). Between two marks, the
 * machine's user+system time minus ours is what other processes took. (Interrupt and softirq
 * time is left out on both sides: the loopback traffic between our own processes produces
 * plenty of it, and it is charged to no process.) */
typedef struct cpu_mark {
    int64_t t_us;
    double busy_s, ours_s;
} cpu_mark_t;

typedef struct proc_row {
    int pid, ppid, mark;
    double cpu_s; /* utime + stime + cutime + cstime */
} proc_row_t;

static void cpu_mark(bench_t *b, cpu_mark_t *m)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    memset(m, 0, sizeof(*m));
    m->t_us = mono_us();
    char *st = th_read_file("/proc/stat", NULL, 1);
    unsigned long long v[8] = {0};
    if (st && sscanf(st, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                     &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
        m->busy_s = (double)(v[0] + v[1] + v[2]) / hz; /* user, nice, system */
    free(st);

    proc_row_t *rows = NULL;
    int n = 0, cap = 0;
    DIR *dir = opendir("/proc");
    struct dirent *de;
    while (dir && (de = readdir(dir))) {
        int pid = atoi(de->d_name);
        if (pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        char *text = th_read_file(path, NULL, 1);
        char *p = text ? strrchr(text, ')') : NULL;
        unsigned long long ut, stm, cut, cst;
        int ppid;
        if (p && sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
                        &ppid, &ut, &stm, &cut, &cst) == 5) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                rows = realloc(rows, (size_t)cap * sizeof(*rows));
                if (!rows)
                    abort();
            }
            rows[n++] = (proc_row_t){pid, ppid, pid == (int)getpid() || pid == (int)b->postmaster,
                                     (double)(ut + stm + cut + cst) / hz};
        }
        free(text);
    }
    if (dir)
        closedir(dir);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; !rows[i].mark && j < n; j++)
                if (rows[j].mark && rows[j].pid == rows[i].ppid)
                    rows[i].mark = changed = 1;
    }
    for (int i = 0; i < n; i++)
        if (rows[i].mark)
            m->ours_s += rows[i].cpu_s;
    free(rows);
}

/* Percent of one core that other processes used between two marks. */
static double other_load_pct(const cpu_mark_t *a, const cpu_mark_t *z)
{
    double wall = (double)(z->t_us - a->t_us) / 1e6;
    double other = (z->busy_s - a->busy_s) - (z->ours_s - a->ours_s);
    if (wall <= 0)
        return 0;
    return other < 0 ? 0 : 100.0 * other / wall;
}

static int lsn_now(bench_t *b, uint64_t *lsn)
{
    char *v = th_pg_value(b->pg, NULL, "SELECT pg_current_wal_insert_lsn()");
    int rc = v ? th_lsn_parse(v, lsn) : -1;
    free(v);
    return rc;
}

/* "<prefix>.order_line.v1". Caller frees. */
static char *topic_of(const char *prefix)
{
    return th_strf("%s.%s", prefix, ENTITY_TOPIC);
}

/* ---- Kafka: watermarks and a latency consumer ---- */

/* A consumer handle on the mock cluster (nothing assigned yet). Caller frees with
 * rd_kafka_destroy() (after rd_kafka_consumer_close() when it consumed). NULL on error. */
static rd_kafka_t *kafka_client(bench_t *b, const char *group, int fetch_wait_ms)
{
    char errstr[512], fw[16];
    snprintf(fw, sizeof(fw), "%d", fetch_wait_ms);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {
        {"bootstrap.servers", th_kafka_bootstraps(b->kafka)},
        {"group.id", group},
        {"client.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* The mock answers an empty fetch only after MaxWait, and does not cut the wait short
         * when data arrives: a long wait would be added to every measured latency. */
        {"fetch.wait.max.ms", fw},
        {"fetch.error.backoff.ms", "10"},
        {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            th_err("could not configure Kafka client %s (%s): %s", group, props[i][0], errstr);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        th_err("could not create Kafka client %s: %s", group, errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Sum of the partitions' high watermarks: every message the mock cluster appended, whether or
 * not it has trimmed old segments since. -1 on error. */
static long topic_messages(bench_t *b, const char *topic)
{
    long sum = 0;
    for (int p = 0; p < b->o.partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int attempt = 0; attempt < 3; attempt++) {
            e = rd_kafka_query_watermark_offsets(b->client, topic, p, &lo, &hi, 5000);
            if (!e)
                break;
        }
        if (e) {
            th_err("could not read the watermarks of %s [%d]: %s", topic, p, rd_kafka_err2str(e));
            return -1;
        }
        sum += (long)hi;
    }
    return sum;
}

typedef struct lat_consumer {
    rd_kafka_t *rk;
    pthread_t thr;
    int started;
    volatile int stop;
    th_msgs_t msgs;     /* owned by the thread until joined */
    int64_t *recv_us;   /* arrival wall time per message */
    int recv_cap;
    int count;          /* published with __atomic for the main thread */
    int errors;
} lat_consumer_t;

static void *memdup_or_null(const void *p, size_t n)
{
    if (!p)
        return NULL;
    void *d = malloc(n ? n : 1);
    if (!d)
        abort();
    memcpy(d, p, n);
    return d;
}

/* Copy a consumed message the way th_decode() wants it (key, value, headers). */
static void msg_append(lat_consumer_t *c, const rd_kafka_message_t *rkm, int64_t at_us)
{
    th_msgs_t *ms = &c->msgs;
    if (ms->n == ms->cap) {
        ms->cap = ms->cap ? ms->cap * 2 : 4096;
        ms->v = realloc(ms->v, (size_t)ms->cap * sizeof(*ms->v));
        c->recv_us = realloc(c->recv_us, (size_t)ms->cap * sizeof(*c->recv_us));
        if (!ms->v || !c->recv_us)
            abort();
    }
    th_msg_t *m = &ms->v[ms->n];
    memset(m, 0, sizeof(*m));
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->key = memdup_or_null(rkm->key, rkm->key_len);
    m->klen = rkm->key ? rkm->key_len : 0;
    m->value = memdup_or_null(rkm->payload, rkm->len);
    m->vlen = rkm->payload ? rkm->len : 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t cnt = rd_kafka_header_cnt(hdrs);
        m->hdrs = calloc(cnt ? cnt : 1, sizeof(*m->hdrs));
        if (!m->hdrs)
            abort();
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; i < cnt; i++) {
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
                break;
            m->hdrs[i].name = strdup(name);
            if (!m->hdrs[i].name)
                abort();
            m->hdrs[i].value = memdup_or_null(val, size);
            m->hdrs[i].len = val ? size : 0;
            m->nhdrs++;
        }
    }
    c->recv_us[ms->n] = at_us;
    ms->n++;
    __atomic_store_n(&c->count, ms->n, __ATOMIC_RELEASE);
}

static void *lat_consumer_main(void *arg)
{
    lat_consumer_t *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 50);
        if (!rkm)
            continue;
        int64_t at = wall_us();
        if (rkm->err) {
            if (c->errors++ < 5)
                fprintf(stderr, "bench: latency consumer: %s (continuing)\n",
                        rd_kafka_message_errstr(rkm));
        } else {
            msg_append(c, rkm, at);
        }
        rd_kafka_message_destroy(rkm);
    }
    return NULL;
}

/* Start the latency consumer thread on every partition of topic, from the beginning. The
 * messages it copies stay in c until lat_consumer_free(). 0 or -1. */
static int lat_consumer_start(bench_t *b, lat_consumer_t *c, const char *topic)
{
    memset(c, 0, sizeof(*c));
    if (!(c->rk = kafka_client(b, "bench-latency", 1)))
        return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(b->o.partitions);
    for (int p = 0; p < b->o.partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e)
        return th_err("could not assign the partitions of %s: %s", topic, rd_kafka_err2str(e));
    if (pthread_create(&c->thr, NULL, lat_consumer_main, c) != 0)
        return th_err("could not start the latency consumer thread");
    c->started = 1;
    return 0;
}

static void lat_consumer_stop(lat_consumer_t *c)
{
    if (c->started) {
        __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
        pthread_join(c->thr, NULL);
        c->started = 0;
    }
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
        c->rk = NULL;
    }
}

static void lat_consumer_free(lat_consumer_t *c)
{
    lat_consumer_stop(c);
    th_msgs_free(&c->msgs);
    free(c->recv_us);
    c->recv_us = NULL;
}

/* ---- siphon runs ---- */

/* Write the run's siphon.yaml: the existing slot and publication (never created by siphon
 * here, so both readers see the same WAL), status updates every 100 ms so the slot shows an
 * acknowledgement within 0.1 s of it happening, and everything else at its default (offsets
 * file written at most once a second). Returns its path (caller frees), NULL on error. */
static char *write_config(bench_t *b, const char *prefix)
{
    char *path = th_strf("%s/siphon-%s.yaml", b->dir, prefix);
    char extra[1024] = "";
    size_t used = 0;
    for (int i = 0; i < b->o.nprops; i++) {
        const char *eq = strchr(b->o.props[i], '=');
        used += (size_t)snprintf(extra + used, sizeof(extra) - used, "    %.*s: \"%s\"\n",
                                 (int)(eq - b->o.props[i]), b->o.props[i], eq + 1);
        if (used >= sizeof(extra)) {
            th_err("could not write %s: too many --prop options", path);
            free(path);
            return NULL;
        }
    }
    if (b->o.max_inflight > 0)
        snprintf(extra + used, sizeof(extra) - used, "pipeline:\n  max_inflight_bytes: %lld\n",
                 b->o.max_inflight);
    char flush[64] = "";
    if (b->o.flush_ms > 0)
        snprintf(flush, sizeof(flush), "  flush_interval_ms: %d\n", b->o.flush_ms);
    char *text = th_strf(
        "# written by bench_pg_to_kafka\n"
        "name: bench\n"
        "source:\n"
        "  type: postgres\n"
        "  conninfo: \"%s\"\n"
        "  slot: " SLOT_SIPHON "\n"
        "  publication: " PUBLICATION "\n"
        "  create_slot: false\n"
        "  create_publication: false\n"
        "  status_interval_ms: 100\n"
        "  snapshot: never\n" /* this measures streaming; bench_snapshot_to_kafka snapshots */
        "mappings: \"%s\"\n"
        "schemas: \"%s\"\n"
        "sink:\n"
        "  type: kafka\n"
        "  topic_prefix: %s\n"
        "  properties:\n"
        "    bootstrap.servers: \"%s\"\n"
        "%s"
        "offsets:\n"
        "  path: \"%s\"\n"
        "%s"
        "log:\n"
        "  level: %s\n",
        th_pg_conninfo(b->pg), b->mappings, b->schemas, prefix, th_kafka_bootstraps(b->kafka),
        extra, b->offsets, flush, b->o.log_level ? b->o.log_level : "info");
    int rc = th_write_file(path, text);
    free(text);
    if (rc != 0) {
        free(path);
        return NULL;
    }
    return path;
}

/* Start `siphon run` with the config for topic prefix `prefix`. The process stays owned by b
 * (kept in b->runs for its log, destroyed at the end). NULL on error. */
static th_proc_t *siphon_start(bench_t *b, const char *prefix)
{
    char *conf = write_config(b, prefix);
    if (!conf)
        return NULL;
    char *log = th_strf("%s/siphon-%d-%s.log", b->dir, b->nruns + 1, prefix);
    th_proc_t *p = th_siphon_start(conf, log);
    free(conf);
    free(log);
    if (!p)
        return NULL;
    b->runs = realloc(b->runs, (size_t)(b->nruns + 1) * sizeof(*b->runs));
    if (!b->runs)
        abort();
    b->runs[b->nruns++] = p;
    return p;
}

/* Wait until the siphon slot's confirmed_flush_lsn reaches `end`; *done_us is the monotonic
 * time it was first seen there, *first_us (when not NULL) the time it first moved at all (the
 * first acknowledgement). 0, or -1 on timeout or when siphon exits. */
static int wait_confirmed(bench_t *b, th_proc_t *p, uint64_t end, int timeout_ms,
                          int64_t *done_us, int64_t *first_us)
{
    uint64_t start_lsn = 0;
    if (first_us)
        *first_us = 0;
    int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;
    char want[32];
    th_lsn_format(end, want, sizeof(want));
    for (;;) {
        uint64_t lsn = 0;
        int got = th_pg_slot_confirmed(b->pg, SLOT_SIPHON, &lsn);
        if (got == 0 && first_us) {
            if (!start_lsn)
                start_lsn = lsn;
            else if (lsn != start_lsn && !*first_us)
                *first_us = mono_us();
        }
        if (got == 0 && lsn >= end) {
            if (first_us && !*first_us)
                *first_us = mono_us();
            *done_us = mono_us();
            return 0;
        }
        if (!th_proc_running(p))
            return th_err("siphon exited (code %d) before slot " SLOT_SIPHON
                          " confirmed %s", th_proc_exit_code(p), want);
        if (mono_us() > deadline) {
            char have[32];
            th_lsn_format(lsn, have, sizeof(have));
            return th_err("slot " SLOT_SIPHON " did not confirm %s within %d s "
                          "(confirmed_flush_lsn is %s)", want, timeout_ms / 1000, have);
        }
        th_sleep_ms(10);
    }
}

/* Wait until siphon holds the slot (it streams). */
static int wait_streaming(bench_t *b, th_proc_t *p, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        char *v = th_pg_value(b->pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"
                              SLOT_SIPHON "' AND active");
        int active = v ? atoi(v) : 0;
        free(v);
        if (active)
            return 0;
        if (!th_proc_running(p))
            return th_err("siphon exited (code %d) before streaming from slot " SLOT_SIPHON,
                          th_proc_exit_code(p));
        if (th_now_ms() > deadline)
            return th_err("siphon did not stream from slot " SLOT_SIPHON " within %d s",
                          timeout_ms / 1000);
        th_sleep_ms(20);
    }
}

/* SIGTERM: siphon drains, stores its offsets and exits 0. */
static int siphon_stop(th_proc_t *p)
{
    th_proc_signal(p, SIGTERM);
    if (!th_proc_wait(p, 60000)) {
        th_proc_signal(p, SIGKILL);
        th_proc_wait(p, 5000);
        return th_err("siphon (pid %d) did not exit within 60 s of SIGTERM", (int)th_proc_pid(p));
    }
    int code = th_proc_exit_code(p);
    if (code != 0)
        return th_err("siphon exited with code %d after SIGTERM (expected 0)", code);
    return 0;
}

/* ---- pg_recvlogical ---- */

static int recv_run(bench_t *b, uint64_t endpos, double *secs, double *cpu)
{
    char lsn[32];
    th_lsn_format(endpos, lsn, sizeof(lsn));
    char *const argv[] = {PG_RECVLOGICAL, "-d", (char *)th_pg_conninfo(b->pg), "--slot",
                          SLOT_RECV, "--start", "--endpos", lsn, "--no-loop",
                          "-o", "proto_version=1", "-o", "publication_names=" PUBLICATION,
                          "-f", "/dev/null", NULL};
    struct rusage r0, r1;
    getrusage(RUSAGE_CHILDREN, &r0);
    int64_t t0 = mono_us();
    int code = -1;
    char *err = NULL;
    int rc = th_run(argv, NULL, 300000, &code, NULL, &err);
    int64_t t1 = mono_us();
    getrusage(RUSAGE_CHILDREN, &r1);
    if (rc != 0 || code != 0) {
        th_err("pg_recvlogical --slot " SLOT_RECV " --endpos %s failed (exit %d): %s", lsn, code,
               err ? err : "");
        free(err);
        return -1;
    }
    free(err);
    *secs = (double)(t1 - t0) / 1e6;
    *cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                    r0.ru_stime.tv_sec) +
           (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                    r0.ru_stime.tv_usec) / 1e6;
    return 0;
}

/* ---- perf (optional) ---- */

static th_proc_t *perf_start(bench_t *b, pid_t pid)
{
    char spid[16];
    snprintf(spid, sizeof(spid), "%d", (int)pid);
    char *data = th_path(b->dir, "perf.data");
    char *log = th_path(b->dir, "perf.log");
    /* dwarf call graphs: the libraries have no frame pointers */
    char *const argv[] = {"perf", "record", "-F", "299", "--call-graph", "dwarf,16384", "-p", spid,
                          "-o", data, NULL};
    th_proc_t *p = th_proc_spawn(argv, log);
    free(data);
    free(log);
    th_sleep_ms(300); /* let it attach */
    return p;
}

static void perf_finish(bench_t *b, th_proc_t *perf)
{
    if (!perf)
        return;
    th_proc_signal(perf, SIGINT);
    th_proc_wait(perf, 20000);
    th_proc_destroy(perf);
    char *data = th_path(b->dir, "perf.data");
    char *const argv[] = {"perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                          "--sort", "dso,symbol", "--percent-limit", "1.5", NULL};
    char *out = NULL;
    int code = -1;
    if (th_run(argv, NULL, 120000, &code, &out, NULL) == 0 && code == 0 && out) {
        size_t used = 0;
        for (char *line = strtok(out, "\n"); line && used + 200 < sizeof(b->perf_top);
             line = strtok(NULL, "\n")) {
            if (line[0] == '#' || line[0] == '\0')
                continue;
            used += (size_t)snprintf(b->perf_top + used, sizeof(b->perf_top) - used, "%s\n", line);
        }
    } else {
        snprintf(b->perf_top, sizeof(b->perf_top), "(perf report failed, exit %d)\n", code);
    }
    free(out);
    /* Keep the profile beside the report for a closer look (perf report -i ... -g caller). */
    if (b->o.report) {
        char *dst = th_strf("%s", b->o.report);
        char *slash = strrchr(dst, '/');
        char *keep = slash ? (*slash = '\0', th_path(dst, "perf-siphon.data"))
                           : th_strf("perf-siphon.data");
        char *const cp[] = {"cp", data, keep, NULL};
        if (th_run(cp, NULL, 60000, &code, NULL, NULL) == 0 && code == 0)
            th_log("perf: profile kept as %s", keep);
        free(keep);
        free(dst);
    }
    free(data);
}

/* ---- phases ---- */

/* Write ntx transactions of rows rows; *end is the insert LSN right after the last commit. */
static int write_bulk(bench_t *b, int ntx, int rows, uint64_t *end, double *secs)
{
    int64_t t0 = mono_us();
    if (th_pg_exec(b->pg, "CALL bench_gen(%ld, %d, %d)", b->next_id, ntx, rows) != 0)
        return -1;
    b->next_id += (long)ntx * rows;
    if (lsn_now(b, end) != 0)
        return -1;
    *secs = (double)(mono_us() - t0) / 1e6;
    return 0;
}

static void print_tput(const tput_result_t *r)
{
    double rr = r->events / r->recv_s, sr = r->events / r->siphon_s;
    printf("  %-26s %9ld %12.0f/s %7.2fs %12.0f/s %7.2fs %6.2fx  %-6s (%.2f-%.2f)\n", r->what,
           r->events, rr, r->recv_s, sr, r->siphon_s, r->ratio,
           r->ratio >= TARGET_RATIO ? "ok" : "MISSED", r->ratio_lo, r->ratio_hi);
}

/* Time pg_recvlogical draining its slot up to end. */
static int tput_recv(bench_t *b, tput_result_t *r, uint64_t end)
{
    th_log("tput: pg_recvlogical drains slot " SLOT_RECV);
    cpu_mark_t m0, m1;
    cpu_mark(b, &m0);
    double ws0 = pg_children_cpu_s(b);
    if (recv_run(b, end, &r->recv_s, &r->recv_cpu_s) != 0)
        return -1;
    cpu_mark(b, &m1);
    r->recv_other_pct = other_load_pct(&m0, &m1);
    wait_slot_released(b, SLOT_RECV);
    r->recv_ws_cpu_s = pg_children_cpu_s(b) - ws0;
    th_log("tput: pg_recvlogical %.2f s (%.0f events/s; CPU: %.2f s pg_recvlogical, %.2f s "
           "walsender; other processes %.0f%% of a core)", r->recv_s, r->events / r->recv_s,
           r->recv_cpu_s, r->recv_ws_cpu_s, r->recv_other_pct);
    return 0;
}

/* Time siphon from its start until its slot confirms end. */
static int tput_siphon(bench_t *b, tput_result_t *r, uint64_t end, int profile)
{
    th_log("tput: siphon drains slot " SLOT_SIPHON " to Kafka");
    double ws0 = pg_children_cpu_s(b);
    cpu_mark_t m0, m1;
    cpu_mark(b, &m0);
    double self0 = self_cpu_s();
    int64_t t0 = mono_us(), done = 0;
    th_proc_t *p = siphon_start(b, "tput");
    if (!p)
        return -1;
    th_proc_t *perf = profile ? perf_start(b, th_proc_pid(p)) : NULL;
    int64_t first_ack = 0;
    int rc = wait_confirmed(b, p, end, 300000, &done, &first_ack);
    r->siphon_mock_cpu_s = self_cpu_s() - self0;
    cpu_mark(b, &m1);
    r->siphon_other_pct = other_load_pct(&m0, &m1);
    pstat_t ps;
    if (proc_sample(th_proc_pid(p), &ps) == 0) {
        r->siphon_cpu_s = ps.cpu_s;
        r->siphon_hwm_kb = ps.hwm_kb;
    }
    perf_finish(b, perf);
    if (siphon_stop(p) != 0 || rc != 0)
        return -1;
    wait_slot_released(b, SLOT_SIPHON);
    r->siphon_ws_cpu_s = pg_children_cpu_s(b) - ws0;
    r->siphon_s = (double)(done - t0) / 1e6;
    r->first_ack_s = (double)(first_ack - t0) / 1e6;
    th_log("tput: siphon %.2f s (%.0f events/s; CPU: %.2f s siphon, %.2f s walsender, %.2f s "
           "mock Kafka; peak RSS %.1f MB; first acknowledgement after %.2f s; other processes "
           "%.0f%% of a core)", r->siphon_s, r->events / r->siphon_s, r->siphon_cpu_s,
           r->siphon_ws_cpu_s, r->siphon_mock_cpu_s, r->siphon_hwm_kb / 1024.0, r->first_ack_s,
           r->siphon_other_pct);
    return 0;
}

/* One bulk, drained by both readers. The bulk is checkpointed and the page cache written back
 * before any timing, so neither reader pays for the other's or the writer's background I/O; the
 * order of the readers alternates between runs (siphon_first) so what remains evens out. */
static int tput_one(bench_t *b, tput_result_t *r, const char *what, int ntx, int rows,
                    int siphon_first, int profile)
{
    uint64_t end;
    memset(r, 0, sizeof(*r));
    r->what = what;
    r->events = (long)ntx * rows;
    th_log("tput: writing %d committed transaction(s) of %d row(s)", ntx, rows);
    if (write_bulk(b, ntx, rows, &end, &r->gen_s) != 0)
        return -1;
    if (th_pg_exec(b->pg, "CHECKPOINT") != 0)
        return -1;
    sync();
    th_sleep_ms(300);
    char e[32];
    th_lsn_format(end, e, sizeof(e));
    th_log("tput: written in %.2f s, checkpointed and synced (WAL end %s)", r->gen_s, e);
    if (siphon_first) {
        if (tput_siphon(b, r, end, profile) != 0 || tput_recv(b, r, end) != 0)
            return -1;
    } else {
        if (tput_recv(b, r, end) != 0 || tput_siphon(b, r, end, profile) != 0)
            return -1;
    }
    r->ok = 1;
    return 0;
}

/* Decode a sample of the topic back from Avro: the events are what the mapping says. */
static int verify_sample(bench_t *b, const char *topic, int want)
{
    th_consumer_t *c = th_consumer_new(b->kafka, topic);
    if (!c)
        return -1;
    th_msgs_t msgs = {0};
    int rc = -1, n = th_consumer_poll(c, &msgs, want, 15000);
    if (n < want) {
        th_err("could read only %d of %d sample messages from %s", n, want, topic);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        th_event_t ev;
        char tbl[64], ordn[64];
        if (th_decode(b->dec, &msgs.v[i], &ev) != 0)
            goto out;
        int good = ev.op == 'c' &&
                   strcmp(th_json_text(ev.value, "source.table", tbl, sizeof(tbl)), "oeline") == 0 &&
                   strlen(th_json_text(ev.value, "after.order_id", ordn, sizeof(ordn))) == 10;
        th_event_clear(&ev);
        if (!good) {
            th_err("message %d of %s is not an insert of public.oeline with a 10-character "
                   "order_id (table %s, order_id %s)", i, topic, tbl, ordn);
            goto out;
        }
    }
    rc = 0;
out:
    th_msgs_free(&msgs);
    th_consumer_destroy(c);
    return rc;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is a handful */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The summary of one workload over the repetitions: each number is its median over the runs
 * (the ratio is the median of the runs' own ratios: each run compares the two readers on the
 * same WAL within seconds of each other), the ratio's range, the highest peak RSS. */
static void summarize(tput_result_t *out, const char *what, tput_result_t *const runs[], int n)
{
    double v[MAX_REPS];
#define MED(field)                                                                                 \
    do {                                                                                           \
        for (int i = 0; i < n; i++)                                                                \
            v[i] = runs[i]->field;                                                                 \
        out->field = median(v, n);                                                                 \
    } while (0)
    memset(out, 0, sizeof(*out));
    out->what = what;
    out->events = runs[0]->events;
    MED(recv_s);
    MED(recv_cpu_s);
    MED(siphon_s);
    MED(siphon_cpu_s);
    MED(recv_ws_cpu_s);
    MED(siphon_ws_cpu_s);
    MED(siphon_mock_cpu_s);
    MED(recv_other_pct);
    MED(siphon_other_pct);
    MED(first_ack_s);
    MED(gen_s);
#undef MED
    out->ratio_lo = out->ratio_hi = runs[0]->recv_s / runs[0]->siphon_s;
    for (int i = 0; i < n; i++) {
        v[i] = runs[i]->recv_s / runs[i]->siphon_s;
        if (v[i] < out->ratio_lo)
            out->ratio_lo = v[i];
        if (v[i] > out->ratio_hi)
            out->ratio_hi = v[i];
        if (runs[i]->siphon_hwm_kb > out->siphon_hwm_kb)
            out->siphon_hwm_kb = runs[i]->siphon_hwm_kb;
    }
    out->ratio = median(v, n);
    out->ok = 1;
}

static int phase_tput(bench_t *b)
{
    int reps = b->o.reps;
    printf("\n== throughput: bulk of committed transactions, pg_recvlogical (pgoutput -> /dev/null) "
           "vs siphon (-> Kafka, acknowledged); %d run(s)\n", reps);
    fflush(stdout);
    tput_result_t *multi[MAX_REPS], *single[MAX_REPS], *all[MAX_REPS];
    for (int k = 0; k < reps; k++) {
        tput_result_t *run = b->truns[k];
        th_log("tput: run %d of %d", k + 1, reps);
        if (tput_one(b, &run[0], "1000-row transactions", b->o.multi_txns, b->o.multi_rows, k % 2,
                     k == 0 && b->o.perf) != 0)
            return -1;
        if (tput_one(b, &run[1], "single-row transactions", b->o.single_txns, 1, k % 2, 0) != 0)
            return -1;
        memset(&run[2], 0, sizeof(run[2]));
        run[2].what = "all";
        for (int i = 0; i < 2; i++) {
            run[2].events += run[i].events;
            run[2].recv_s += run[i].recv_s;
            run[2].siphon_s += run[i].siphon_s;
            run[2].recv_cpu_s += run[i].recv_cpu_s;
            run[2].siphon_cpu_s += run[i].siphon_cpu_s;
            run[2].recv_ws_cpu_s += run[i].recv_ws_cpu_s;
            run[2].siphon_ws_cpu_s += run[i].siphon_ws_cpu_s;
            run[2].siphon_mock_cpu_s += run[i].siphon_mock_cpu_s;
            if (run[i].siphon_hwm_kb > run[2].siphon_hwm_kb)
                run[2].siphon_hwm_kb = run[i].siphon_hwm_kb;
        }
        multi[k] = &run[0];
        single[k] = &run[1];
        all[k] = &run[2];
        b->nreps = k + 1;
        th_log("tput: run %d: ratio %.2fx (1000-row), %.2fx (single-row), %.2fx (all)", k + 1,
               run[0].recv_s / run[0].siphon_s, run[1].recv_s / run[1].siphon_s,
               run[2].recv_s / run[2].siphon_s);
    }
    summarize(&b->tput[0], "1000-row transactions", multi, reps);
    summarize(&b->tput[1], "single-row transactions", single, reps);
    summarize(&b->tput[2], "all", all, reps);
    b->ntput = 3;

    long want = b->tput[2].events * reps;
    char *topic = topic_of("tput");
    long got = topic_messages(b, topic);
    int rc = 0;
    if (got < want) {
        rc = th_err("topic %s holds %ld messages, expected %ld: events were lost", topic, got,
                    want);
    } else {
        if (got > want)
            th_log("tput: note: topic %s holds %ld messages for %ld events (redeliveries)", topic,
                   got, want);
        rc = verify_sample(b, topic, 200);
        if (rc == 0)
            th_log("tput: %s holds %ld messages; a sample of 200 decodes as inserts of oeline",
                   topic, got);
    }
    free(topic);
    /* pg_recvlogical's slot is done: let the server recycle WAL. */
    th_pg_exec(b->pg, "SELECT pg_drop_replication_slot('" SLOT_RECV "')");
    printf("\n  %-26s %9s %14s %8s %14s %8s %7s  (median of %d; ratio range)\n", "workload",
           "events", "pg_recvlogical", "", "siphon", "", "ratio", reps);
    for (int i = 0; i < b->ntput; i++)
        print_tput(&b->tput[i]);
    printf("  target: siphon >= %.2fx of pg_recvlogical\n", TARGET_RATIO);
    printf("\n  CPU seconds (%ld cores)       walsender    reader   mock Kafka   (of cores x wall)  "
           "other processes\n", sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < 2; i++) {
        const tput_result_t *r = &b->tput[i];
        double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
        printf("  %-23s recv   %8.2f  %8.2f  %11s   %3.0f%%             %3.0f%% of a core\n",
               r->what, r->recv_ws_cpu_s, r->recv_cpu_s, "-",
               100.0 * (r->recv_ws_cpu_s + r->recv_cpu_s) / (cores * r->recv_s), r->recv_other_pct);
        printf("  %-23s siphon %8.2f  %8.2f  %11.2f   %3.0f%%             %3.0f%% of a core\n", "",
               r->siphon_ws_cpu_s, r->siphon_cpu_s, r->siphon_mock_cpu_s,
               100.0 * (r->siphon_ws_cpu_s + r->siphon_cpu_s + r->siphon_mock_cpu_s) /
                   (cores * r->siphon_s),
               r->siphon_other_pct);
    }
    printf("  siphon's first acknowledgement: %.2f s after its start (median)\n",
           b->tput[0].first_ack_s);
    fflush(stdout);
    return rc;
}

static int phase_lat(bench_t *b)
{
    lat_result_t *r = &b->lat;
    lat_consumer_t c;
    int64_t *lat = NULL, *emit = NULL;
    PGconn *conn = NULL;
    th_proc_t *p = NULL;
    int rc = -1;
    char *topic = topic_of("lat");
    memset(r, 0, sizeof(*r));
    memset(&c, 0, sizeof(c));

    printf("\n== latency: commit -> arrival at a Kafka consumer, %d single-row transactions/s for "
           "%d s (after %d ms warm-up)\n", b->o.rate, b->o.seconds, b->o.warmup_ms);
    fflush(stdout);
    if (th_pg_exec(b->pg, "CHECKPOINT") != 0)
        goto out;
    sync();
    p = siphon_start(b, "lat");
    if (!p || wait_streaming(b, p, 30000) != 0)
        goto out;
    if (lat_consumer_start(b, &c, topic) != 0)
        goto out;
    th_sleep_ms(1500); /* consumer connected and fetching, siphon idle-streaming */
    if (!(conn = th_pg_connect(b->pg)))
        goto out;
    pstat_t ps0, ps1;
    proc_sample(th_proc_pid(p), &ps0);
    cpu_mark_t m0, m1;
    cpu_mark(b, &m0);

    long total = (long)b->o.rate * (b->o.warmup_ms + b->o.seconds * 1000) / 1000;
    int64_t t0 = mono_us(), w0 = wall_us();
    int64_t measure_from_us = w0 + (int64_t)b->o.warmup_ms * 1000;
    long sent = 0;
    th_log("lat: writing %ld single-row transactions at %d/s", total, b->o.rate);
    while (sent < total) {
        int64_t now = mono_us();
        long due = (long)((now - t0) * (int64_t)b->o.rate / 1000000) + 1;
        if (due > total)
            due = total;
        long k = due - sent;
        if (k <= 0) {
            sleep_until_mono_us(t0 + sent * 1000000 / b->o.rate);
            continue;
        }
        if (k > 200)
            k = 200;
        char sql[128];
        snprintf(sql, sizeof(sql), "CALL bench_gen(%ld, %ld, 1)", b->next_id, k);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            th_err("could not write at the steady rate: %s", PQerrorMessage(conn));
            PQclear(res);
            goto out;
        }
        PQclear(res);
        b->next_id += k;
        sent += k;
        if (k > r->max_batch)
            r->max_batch = (int)k;
    }
    double wsecs = (double)(mono_us() - t0) / 1e6;
    cpu_mark(b, &m1);
    r->other_pct = other_load_pct(&m0, &m1);
    r->sent = sent;
    r->achieved_rate = sent / wsecs;
    th_log("lat: %ld transactions committed in %.2f s (%.0f/s; at most %d sent at once)", sent,
           wsecs, r->achieved_rate, r->max_batch);

    int64_t deadline = th_now_ms() + 60000;
    while (__atomic_load_n(&c.count, __ATOMIC_ACQUIRE) < sent && th_now_ms() < deadline)
        th_sleep_ms(20);
    proc_sample(th_proc_pid(p), &ps1);
    r->siphon_cpu_pct = 100.0 * (ps1.cpu_s - ps0.cpu_s) / wsecs;
    r->siphon_hwm_kb = ps1.hwm_kb;
    lat_consumer_stop(&c);
    r->received = c.msgs.n;
    if (r->received < sent) {
        th_err("the consumer received %ld of %ld events within 60 s of the last commit",
               r->received, sent);
        goto out;
    }

    lat = malloc((size_t)c.msgs.n * sizeof(*lat));
    emit = malloc((size_t)c.msgs.n * sizeof(*emit));
    if (!lat || !emit)
        abort();
    int64_t worst_all = 0;
    for (int i = 0; i < c.msgs.n; i++) {
        th_event_t ev;
        int64_t commit_us = 0, emit_us = 0;
        if (th_decode(b->dec, &c.msgs.v[i], &ev) != 0)
            goto out;
        int bad = !ev.value || json_ts_us(th_json_path(ev.value, "source.commit_ts_us"), &commit_us) ||
                  json_ts_us(th_json_path(ev.value, "ts_us"), &emit_us);
        th_event_clear(&ev);
        if (bad) {
            th_err("message %d of %s has no readable source.commit_ts_us / ts_us", i, topic);
            goto out;
        }
        r->avg_key += (double)c.msgs.v[i].klen / c.msgs.n;
        r->avg_value += (double)c.msgs.v[i].vlen / c.msgs.n;
        int64_t l = c.recv_us[i] - commit_us;
        if (l > worst_all)
            worst_all = l;
        if (commit_us < measure_from_us)
            continue;
        lat[r->measured] = l;
        emit[r->measured] = emit_us - commit_us;
        r->measured++;
    }
    if (r->measured == 0) {
        th_err("no event was committed after the warm-up");
        goto out;
    }
    qsort(lat, (size_t)r->measured, sizeof(*lat), cmp_i64);
    qsort(emit, (size_t)r->measured, sizeof(*emit), cmp_i64);
    long over = 0;
    for (long i = 0; i < r->measured; i++)
        over += lat[i] > (int64_t)(TARGET_P99_MS * 1000);
    r->p50 = pct(lat, r->measured, 50) / 1000.0;
    r->p90 = pct(lat, r->measured, 90) / 1000.0;
    r->p99 = pct(lat, r->measured, 99) / 1000.0;
    r->p999 = pct(lat, r->measured, 99.9) / 1000.0;
    r->max_ms = lat[r->measured - 1] / 1000.0;
    r->over_target_pct = 100.0 * over / r->measured;
    r->emit_p50 = pct(emit, r->measured, 50) / 1000.0;
    r->emit_p99 = pct(emit, r->measured, 99) / 1000.0;
    if (siphon_stop(p) != 0)
        goto out;
    p = NULL;
    r->ok = 1;
    rc = 0;

    printf("\n  %ld events measured (%ld in warm-up excluded; worst including warm-up %.1f ms)\n",
           r->measured, r->received - r->measured, worst_all / 1000.0);
    printf("  commit -> consumer:  p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   p99.9 %.1f ms   "
           "max %.1f ms   %s\n", r->p50, r->p90, r->p99, r->p999, r->max_ms,
           r->p99 < TARGET_P99_MS ? "ok" : "MISSED");
    printf("  commit -> produce:   p50 %.1f ms   p99 %.1f ms   (envelope ts_us: siphon encoded it)\n",
           r->emit_p50, r->emit_p99);
    printf("  %.2f%% of the events took longer than %.0f ms; messages average %.0f bytes of key and "
           "%.0f of value\n", r->over_target_pct, TARGET_P99_MS, r->avg_key, r->avg_value);
    printf("  writer %.0f/s; siphon CPU %.0f%% of one core; other processes %.0f%% of a core; "
           "target: p99 < %.0f ms\n", r->achieved_rate, r->siphon_cpu_pct, r->other_pct,
           TARGET_P99_MS);
    fflush(stdout);
out:
    if (p && th_proc_running(p))
        siphon_stop(p);
    if (conn)
        PQfinish(conn);
    lat_consumer_free(&c);
    free(lat);
    free(emit);
    free(topic);
    return rc;
}

typedef struct rss_sampler {
    pid_t pid;
    pthread_t thr;
    volatile int stop;
    long max_rss_kb, hwm_kb;
} rss_sampler_t;

static void *rss_sampler_main(void *arg)
{
    rss_sampler_t *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        pstat_t ps;
        if (proc_sample(s->pid, &ps) == 0) {
            if (ps.rss_kb > s->max_rss_kb)
                s->max_rss_kb = ps.rss_kb;
            s->hwm_kb = ps.hwm_kb;
        }
        th_sleep_ms(20);
    }
    return NULL;
}

static int phase_rss(bench_t *b)
{
    rss_result_t *r = &b->rss;
    rss_sampler_t s;
    int rc = -1, sampling = 0;
    char *topic = topic_of("rss");
    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    r->rows = b->o.rss_rows;

    printf("\n== memory: one transaction of %ld rows streamed through siphon\n", r->rows);
    fflush(stdout);
    th_proc_t *p = siphon_start(b, "rss");
    if (!p || wait_streaming(b, p, 30000) != 0)
        goto out;
    th_sleep_ms(500);
    pstat_t ps;
    if (proc_sample(th_proc_pid(p), &ps) == 0)
        r->base_kb = ps.rss_kb;
    s.pid = th_proc_pid(p);
    if (pthread_create(&s.thr, NULL, rss_sampler_main, &s) != 0) {
        th_err("could not start the RSS sampler thread");
        goto out;
    }
    sampling = 1;

    uint64_t end;
    th_log("rss: writing one transaction of %ld rows", r->rows);
    if (write_bulk(b, 1, b->o.rss_rows, &end, &r->gen_s) != 0)
        goto out;
    int64_t t0 = mono_us(), done = 0;
    cpu_mark_t m0, m1;
    cpu_mark(b, &m0);
    th_log("rss: committed in %.2f s; waiting for siphon to deliver it", r->gen_s);
    if (wait_confirmed(b, p, end, 600000, &done, NULL) != 0)
        goto out;
    r->stream_s = (double)(done - t0) / 1e6;
    cpu_mark(b, &m1);
    r->other_pct = other_load_pct(&m0, &m1);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    pthread_join(s.thr, NULL);
    sampling = 0;
    if (proc_sample(th_proc_pid(p), &ps) == 0) {
        r->hwm_kb = ps.hwm_kb;
        r->siphon_cpu_s = ps.cpu_s;
    }
    r->max_rss_kb = s.max_rss_kb;
    if (siphon_stop(p) != 0)
        goto out;
    p = NULL;
    long got = topic_messages(b, topic);
    if (got < r->rows) {
        th_err("topic %s holds %ld messages, expected %ld: events were lost", topic, got, r->rows);
        goto out;
    }
    r->ok = 1;
    rc = 0;
    printf("\n  siphon RSS: %.1f MB before, peak sampled %.1f MB, VmHWM %.1f MB   %s\n",
           r->base_kb / 1024.0, r->max_rss_kb / 1024.0, r->hwm_kb / 1024.0,
           r->hwm_kb / 1024.0 < TARGET_RSS_MB ? "ok" : "MISSED");
    printf("  the commit reached Kafka in %.2f s after it returned (%.0f events/s), %ld messages "
           "in %s; target: peak < %.0f MB\n", r->stream_s, r->rows / r->stream_s, got, topic,
           TARGET_RSS_MB);
    printf("  other processes used %.0f%% of a core meanwhile\n", r->other_pct);
    fflush(stdout);
out:
    if (sampling) {
        __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
        pthread_join(s.thr, NULL);
    }
    if (p && th_proc_running(p))
        siphon_stop(p);
    free(topic);
    return rc;
}

/* ---- setup, report ---- */

static int setup(bench_t *b)
{
    const char *src = th_source_dir();
    b->mappings = th_path(src, "bench/mappings");
    b->schemas = th_path(src, "bench/schemas");
    if (!th_siphon_bin())
        return -1;
    if (!(b->dir = th_tempdir()))
        return -1;
    b->offsets = th_path(b->dir, "offsets.json");
    th_log("starting PostgreSQL 15 and a mock Kafka cluster (3 brokers)");
    if (!(b->pg = bench_pg_oeline()))
        return -1;
    int rc = th_pg_exec(b->pg, "CREATE PUBLICATION " PUBLICATION " FOR TABLE public.oeline") ||
             th_pg_exec(b->pg, "SELECT pg_create_logical_replication_slot('" SLOT_RECV
                               "', 'pgoutput')") ||
             th_pg_exec(b->pg, "SELECT pg_create_logical_replication_slot('" SLOT_SIPHON
                               "', 'pgoutput')");
    if (rc)
        return -1;
    /* The postmaster is the parent of our own backend. */
    b->postmaster = bench_postmaster_pid(b->pg);
    if (!(b->kafka = th_kafka_start(3)))
        return -1;
    const char *prefixes[] = {"tput", "lat", "rss"};
    for (int i = 0; i < 3; i++) {
        char *t = topic_of(prefixes[i]);
        rc = th_kafka_create_topic(b->kafka, t, b->o.partitions);
        free(t);
        if (rc)
            return -1;
    }
    if (!(b->client = kafka_client(b, "bench-watermarks", 100)))
        return -1;
    if (!(b->dec = th_decoder_new(b->mappings, b->schemas)))
        return -1;
    b->next_id = 1;
    return 0;
}

static void machine(char *buf, size_t size)
{
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            char *c = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && c) {
                snprintf(model, sizeof(model), "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    snprintf(buf, size, "%ld CPUs (nproc), %s, %.1f GB RAM, Linux %s", sysconf(_SC_NPROCESSORS_ONLN),
             model, (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1e9, u.release);
}

static int write_report(bench_t *b, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not create \"%s\": %s", path, strerror(errno));
    char mach[512];
    machine(mach, sizeof(mach));
    const char *bt = getenv("BENCH_BUILD_TYPE");
    fprintf(f, "Run of %s UTC on %s; load average at start %s; siphon build %s.\n\n", b->started,
            mach, b->loadavg, bt && *bt ? bt : "(unknown)");
    for (int i = 0; i < b->o.nprops; i++)
        fprintf(f, "siphon override: sink.properties `%s`.\n", b->o.props[i]);
    if (b->o.max_inflight > 0)
        fprintf(f, "siphon override: `pipeline.max_inflight_bytes: %lld`.\n", b->o.max_inflight);
    if (b->o.flush_ms > 0)
        fprintf(f, "siphon override: `offsets.flush_interval_ms: %d`.\n", b->o.flush_ms);
    if (b->o.nprops || b->o.max_inflight > 0 || b->o.flush_ms > 0)
        fprintf(f, "\n");
    if (b->ntput == 3) {
        fprintf(f, "Throughput, median of %d runs (each run times both readers on the same WAL):\n\n",
                b->nreps);
        fprintf(f, "| workload | events | pg_recvlogical | siphon | ratio (target >= %.2f) | "
                   "ratio range |\n", TARGET_RATIO);
        fprintf(f, "|---|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < 3; i++) {
            const tput_result_t *r = &b->tput[i];
            double rr = r->events / r->recv_s, sr = r->events / r->siphon_s;
            fprintf(f, "| %s | %ld | %.0f/s (%.2f s) | %.0f/s (%.2f s) | %.2fx %s | %.2f-%.2f |\n",
                    r->what, r->events, rr, r->recv_s, sr, r->siphon_s, r->ratio,
                    r->ratio >= TARGET_RATIO ? "ok" : "**missed**", r->ratio_lo, r->ratio_hi);
        }
        fprintf(f, "\nsiphon peak RSS in these runs: %.1f MB (1000-row), %.1f MB (single-row). "
                   "Its first acknowledgement came %.2f s and %.2f s after it started.\n",
                b->tput[0].siphon_hwm_kb / 1024.0, b->tput[1].siphon_hwm_kb / 1024.0,
                b->tput[0].first_ack_s, b->tput[1].first_ack_s);
        fprintf(f, "\nCPU seconds spent during each timed drain (%ld cores; medians):\n\n"
                   "| workload | reader | walsender | reader itself | mock Kafka (bench process) "
                   "| other processes (%% of a core) |\n"
                   "|---|---|---:|---:|---:|---:|\n", sysconf(_SC_NPROCESSORS_ONLN));
        for (int i = 0; i < 2; i++) {
            const tput_result_t *r = &b->tput[i];
            fprintf(f, "| %s | pg_recvlogical | %.2f | %.2f | - | %.0f%% |\n", r->what,
                    r->recv_ws_cpu_s, r->recv_cpu_s, r->recv_other_pct);
            fprintf(f, "| %s | siphon | %.2f | %.2f | %.2f | %.0f%% |\n", r->what,
                    r->siphon_ws_cpu_s, r->siphon_cpu_s, r->siphon_mock_cpu_s, r->siphon_other_pct);
        }
    }
    if (b->lat.ok) {
        const lat_result_t *r = &b->lat;
        fprintf(f, "\nLatency at %.0f single-row transactions/s (%ld events after warm-up):\n\n",
                r->achieved_rate, r->measured);
        fprintf(f, "| commit -> | p50 | p90 | p99 (target < %.0f ms) | p99.9 | max |\n",
                TARGET_P99_MS);
        fprintf(f, "|---|---:|---:|---:|---:|---:|\n");
        fprintf(f, "| consumer receives | %.1f ms | %.1f ms | %.1f ms %s | %.1f ms | %.1f ms |\n",
                r->p50, r->p90, r->p99, r->p99 < TARGET_P99_MS ? "ok" : "**missed**", r->p999,
                r->max_ms);
        fprintf(f, "| siphon encodes (ts_us) | %.1f ms | | %.1f ms | | |\n", r->emit_p50,
                r->emit_p99);
        fprintf(f, "\n%.2f%% of the events took longer than %.0f ms. siphon used %.0f%% of one core "
                   "at that rate; other processes on the machine %.0f%% of a core. Messages average "
                   "%.0f bytes of key and %.0f of value.\n", r->over_target_pct, TARGET_P99_MS,
                r->siphon_cpu_pct, r->other_pct, r->avg_key, r->avg_value);
    }
    if (b->rss.ok) {
        const rss_result_t *r = &b->rss;
        fprintf(f, "\nOne transaction of %ld rows: siphon VmHWM %.1f MB (target < %.0f MB) %s; "
                   "RSS %.1f MB idle before it, peak sampled %.1f MB; delivered %.2f s after the "
                   "commit returned (%.0f events/s; other processes %.0f%% of a core).\n", r->rows,
                r->hwm_kb / 1024.0, TARGET_RSS_MB,
                r->hwm_kb / 1024.0 < TARGET_RSS_MB ? "ok" : "**missed**", r->base_kb / 1024.0,
                r->max_rss_kb / 1024.0, r->stream_s, r->rows / r->stream_s, r->other_pct);
    }
    if (b->perf_top[0])
        fprintf(f, "\nperf (siphon, 1000-row run; self time by library and symbol):\n\n```\n%s```\n",
                b->perf_top);
    fclose(f);
    return 0;
}

static int targets_met(const bench_t *b)
{
    int ok = 1;
    for (int i = 0; i < b->ntput; i++)
        ok &= b->tput[i].ratio >= TARGET_RATIO;
    if (b->lat.ok)
        ok &= b->lat.p99 < TARGET_P99_MS;
    if (b->rss.ok)
        ok &= b->rss.hwm_kb / 1024.0 < TARGET_RSS_MB;
    return ok;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_pg_to_kafka [options]   (needs SIPHON_BIN=<build>/siphon)\n"
            "  --phases LIST       tput,lat,rss (default: all three)\n"
            "  --multi N           1000-row transactions in the throughput bulk (500)\n"
            "  --single N          single-row transactions in the throughput bulk (100000)\n"
            "  --reps N            throughput runs, summarized by their median (3, at most 9)\n"
            "  --rate N            steady transactions/s for latency (5000)\n"
            "  --seconds N         measured seconds of latency (20)\n"
            "  --rss-rows N        rows of the one big transaction (1000000)\n"
            "  --quick             small sizes (a smoke run of every phase)\n"
            "  --perf              perf record siphon during the 1000-row run\n"
            "  --prop KEY=VALUE    a librdkafka property for siphon's producer (repeatable)\n"
            "  --max-inflight N    siphon's pipeline.max_inflight_bytes (default: its own)\n"
            "  --offsets-flush-ms N  siphon's offsets.flush_interval_ms (default: its own)\n"
            "  --log-level LEVEL   siphon's log.level (default info; logs kept with TH_KEEP=1)\n"
            "  --report FILE       write the results as Markdown\n"
            "  --strict            exit 2 when a target is missed\n");
}

static int parse_args(opts_t *o, int argc, char **argv)
{
    *o = (opts_t){.multi_txns = 500, .multi_rows = 1000, .single_txns = 100000, .rate = 5000,
                  .seconds = 20, .warmup_ms = 1000, .rss_rows = 1000000, .partitions = 16,
                  .reps = 3, .do_tput = 1, .do_lat = 1, .do_rss = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o->multi_txns = 50;
            o->single_txns = 10000;
            o->seconds = 3;
            o->rss_rows = 100000;
            o->reps = 1;
        } else if (strcmp(a, "--perf") == 0) {
            o->perf = 1;
        } else if (strcmp(a, "--strict") == 0) {
            o->strict = 1;
        } else if (!v) {
            usage();
            return -1;
        } else if (strcmp(a, "--phases") == 0) {
            o->do_tput = strstr(v, "tput") != NULL;
            o->do_lat = strstr(v, "lat") != NULL;
            o->do_rss = strstr(v, "rss") != NULL;
            i++;
        } else if (strcmp(a, "--multi") == 0) {
            o->multi_txns = atoi(v), i++;
        } else if (strcmp(a, "--reps") == 0) {
            o->reps = atoi(v), i++;
        } else if (strcmp(a, "--single") == 0) {
            o->single_txns = atoi(v), i++;
        } else if (strcmp(a, "--rate") == 0) {
            o->rate = atoi(v), i++;
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = atoi(v), i++;
        } else if (strcmp(a, "--rss-rows") == 0) {
            o->rss_rows = atoi(v), i++;
        } else if (strcmp(a, "--report") == 0) {
            o->report = v, i++;
        } else if (strcmp(a, "--prop") == 0 && strchr(v, '=') && v[0] != '=' &&
                   o->nprops < (int)(sizeof(o->props) / sizeof(o->props[0]))) {
            o->props[o->nprops++] = v, i++;
        } else if (strcmp(a, "--max-inflight") == 0) {
            o->max_inflight = atoll(v), i++;
        } else if (strcmp(a, "--offsets-flush-ms") == 0) {
            o->flush_ms = atoi(v), i++;
        } else if (strcmp(a, "--log-level") == 0) {
            o->log_level = v, i++;
        } else {
            usage();
            return -1;
        }
    }
    if (o->multi_txns < 1 || o->single_txns < 1 || o->rate < 1 || o->seconds < 1 ||
        o->rss_rows < 1 || o->reps < 1 || o->reps > MAX_REPS) {
        usage();
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    int rc = 1;
    if (parse_args(&b->o, argc, argv) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);

    time_t now = time(NULL);
    strftime(b->started, sizeof(b->started), "%Y-%m-%d %H:%M", gmtime(&now));
    char *la = th_read_file("/proc/loadavg", NULL, 1);
    char l1[16] = "?", l5[16] = "?", l15[16] = "?";
    if (la)
        sscanf(la, "%15s %15s %15s", l1, l5, l15);
    free(la);
    snprintf(b->loadavg, sizeof(b->loadavg), "%s %s %s", l1, l5, l15);
    char mach[512];
    machine(mach, sizeof(mach));
    printf("siphon Postgres -> Kafka benchmark, %s UTC\n%s; load average %s\n"
           "table public.oeline (12 columns), mock Kafka in-process (3 brokers, %d partitions)\n",
           b->started, mach, b->loadavg, b->o.partitions);
    for (int i = 0; i < b->o.nprops; i++)
        printf("siphon override: sink.properties %s\n", b->o.props[i]);
    if (b->o.max_inflight > 0)
        printf("siphon override: pipeline.max_inflight_bytes %lld\n", b->o.max_inflight);
    if (b->o.flush_ms > 0)
        printf("siphon override: offsets.flush_interval_ms %d\n", b->o.flush_ms);
    fflush(stdout);

    if (setup(b) != 0)
        goto out;
    if (b->o.do_tput && phase_tput(b) != 0)
        goto out;
    if (b->o.do_lat && phase_lat(b) != 0)
        goto out;
    if (b->o.do_rss && phase_rss(b) != 0)
        goto out;
    rc = 0;
    int met = targets_met(b);
    printf("\n%s\n", met ? "all targets met" : "TARGETS MISSED (see the lines marked MISSED)");
    if (b->o.report && write_report(b, b->o.report) == 0)
        printf("results written to %s\n", b->o.report);
    if (!met && b->o.strict)
        rc = 2;
out:
    if (rc == 1) {
        fprintf(stderr, "bench: FAILED; logs follow\n");
        for (int i = 0; i < b->nruns; i++)
            th_proc_dump_log(b->runs[i], 40);
        if (b->pg)
            th_pg_dump_log(b->pg, 30);
    }
    for (int i = 0; i < b->nruns; i++)
        th_proc_destroy(b->runs[i]);
    free(b->runs);
    if (b->client)
        rd_kafka_destroy(b->client);
    th_decoder_destroy(b->dec);
    th_kafka_destroy(b->kafka);
    th_pg_destroy(b->pg);
    if (b->dir)
        th_tempdir_remove(b->dir);
    free(b->dir);
    free(b->mappings);
    free(b->schemas);
    free(b->offsets);
    fflush(stdout);
    return rc;
}
