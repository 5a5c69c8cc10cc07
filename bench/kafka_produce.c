/*
 * kafka_produce.c - the floor under every Siphon benchmark that ends in Kafka: librdkafka alone,
 * producing ready-made messages of the size Siphon's events have, with Siphon's producer
 * settings, into the mock cluster, every delivery reported. No source, no mapping, no Avro.
 *
 *   bench_kafka_produce [--messages N] [--reps N] [--value-bytes N] [--headers N]
 *                       [--partitions N] [--prop key=value]... [--report FILE]
 *
 * The mock cluster (3 brokers, --partitions partitions, default 16) runs in a child process so
 * that the producer's CPU (this process: the producing thread and librdkafka's threads) and the
 * broker's (the child) are counted apart. The producer uses the Kafka sink's defaults
 * (src/sink/kafka/kafka.c: enable.idempotence=true, message.timeout.ms=0, linger.ms=5,
 * queue.buffering.max.messages=50000, queue.buffering.max.kbytes=65536), copies key, value and
 * two headers per message as the sink does (RD_KAFKA_MSG_F_COPY, rd_kafka_headers_new +
 * rd_kafka_header_add: siphon.event_id ~30 bytes and siphon.schema_fingerprint 16 bytes), and
 * serves delivery reports with rd_kafka_poll(0) after each produce, and rd_kafka_poll(10) when
 * the queue is full. A run ends when every message's delivery report has arrived.
 *
 * Default message: a 14-byte key and a 190-byte value (the snapshot benchmark's order line is
 * ~200 bytes of key + value). Each run prints wall time, messages/s and CPU per message of the
 * producer and of the mock cluster; the summary is the median of --reps runs (default 3). This
 * is what any Kafka-bound reader would pay at the least per event on this machine: compare it
 * with the per-row budgets in docs/performance.md. Exit 0 when every delivery succeeded.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bench_util.h"

#define MAX_REPS 9
#define MAX_PROPS 16

typedef struct opts {
    long messages;
    int reps, value_bytes, headers, partitions;
    const char *props[MAX_PROPS];
    int nprops;
    const char *report;
} opts_t;

typedef struct result {
    double wall_s, producer_cpu_s, broker_cpu_s;
} result_t;

static long delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
    else
        delivered++;
}

/* The child: a mock cluster until killed; its bootstrap list goes to fd. */
static void run_broker(int fd, int partitions)
{
    char errstr[256], bs[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_mock_cluster_new(rk, 3) : NULL;
    if (!mc || rd_kafka_mock_topic_create(mc, "bench.floor", partitions, 1)) {
        fprintf(stderr, "bench_kafka_produce: could not start the mock cluster\n");
        _exit(1);
    }
    snprintf(bs, sizeof(bs), "%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    if (write(fd, bs, strlen(bs)) < 0)
        _exit(1);
    close(fd);
    for (;;)
        pause();
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bench_kafka_produce: %s=%s: %s\n", k, v, errstr);
        return -1;
    }
    return 0;
}

static int one_run(const opts_t *o, result_t *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        run_broker(fds[1], o->partitions);
    }
    close(fds[1]);
    char bs[512];
    ssize_t n = read(fds[0], bs, sizeof(bs) - 1);
    close(fds[0]);
    if (n <= 1) {
        fprintf(stderr, "bench_kafka_produce: the mock cluster did not start\n");
        return -1;
    }
    bs[n - 1] = '\0';

    int rc = -1;
    char errstr[256];
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", bs) || set(conf, "enable.idempotence", "true") ||
        set(conf, "message.timeout.ms", "0") || set(conf, "linger.ms", "5") ||
        set(conf, "queue.buffering.max.messages", "50000") ||
        set(conf, "queue.buffering.max.kbytes", "65536") || set(conf, "log_level", "3"))
        goto done;
    for (int i = 0; i < o->nprops; i++) {
        char kv[512];
        snprintf(kv, sizeof(kv), "%s", o->props[i]);
        char *eq = strchr(kv, '=');
        if (!eq || (*eq = '\0', set(conf, kv, eq + 1)))
            goto done;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "bench_kafka_produce: %s\n", errstr);
        goto done;
    }
    /* Warm up: metadata, the producer id, connections to every broker. */
    delivered = failed = 0;
    char key[64], *value = malloc((size_t)o->value_bytes), eid[64];
    static const char fp[16] = "0123456789abcdef";
    memset(value, 'v', (size_t)o->value_bytes);
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("bench.floor"), RD_KAFKA_V_VALUE(value, 10),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(rk, 10000);
    delivered = failed = 0;

    double t0 = bench_mono_s(), c0 = bench_rusage_s(RUSAGE_SELF), b0 = bench_stat_ticks_s(child, 14);
    for (long i = 0; i < o->messages; i++) {
        int kl = snprintf(key, sizeof(key), "00001-%08ld", i);
        int el = snprintf(eid, sizeof(eid), "0/16B3748:0:%ld", i);
        memcpy(value, &i, sizeof(i)); /* a value that changes every message */
        for (;;) {
            rd_kafka_headers_t *h = NULL;
            if (o->headers > 0) {
                h = rd_kafka_headers_new((size_t)o->headers);
                rd_kafka_header_add(h, "siphon.event_id", -1, eid, el);
                if (o->headers > 1)
                    rd_kafka_header_add(h, "siphon.schema_fingerprint", -1, fp, 16);
            }
            rd_kafka_resp_err_t e =
                h ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("bench.floor"),
                                      RD_KAFKA_V_KEY(key, (size_t)kl),
                                      RD_KAFKA_V_VALUE(value, (size_t)o->value_bytes),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)
                  : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("bench.floor"),
                                      RD_KAFKA_V_KEY(key, (size_t)kl),
                                      RD_KAFKA_V_VALUE(value, (size_t)o->value_bytes),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!e)
                break;
            if (h)
                rd_kafka_headers_destroy(h);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "bench_kafka_produce: %s\n", rd_kafka_err2str(e));
                free(value);
                goto done;
            }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
    }
    while (delivered + failed < o->messages)
        rd_kafka_poll(rk, 10);
    r->wall_s = bench_mono_s() - t0;
    r->producer_cpu_s = bench_rusage_s(RUSAGE_SELF) - c0;
    r->broker_cpu_s = bench_stat_ticks_s(child, 14) - b0;
    free(value);
    rc = failed ? -1 : 0;
    if (failed)
        fprintf(stderr, "bench_kafka_produce: %ld deliveries failed\n", failed);
done:
    if (rk)
        rd_kafka_destroy(rk);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return rc;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_kafka_produce [--messages N] [--reps N] [--value-bytes N] [--headers N]\n"
            "                           [--partitions N] [--prop key=value]... [--report FILE]\n"
            "librdkafka alone into the mock cluster (a child process): what one Kafka-bound\n"
            "event costs at the least on this machine.\n"
            "example: bench_kafka_produce --messages 1000000 --headers 0\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.messages = 1000000, .reps = 3, .value_bytes = 190, .headers = 2,
                .partitions = 16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--messages")) {
            o.messages = atol(v), i++;
        } else if (v && !strcmp(a, "--reps")) {
            o.reps = atoi(v), i++;
        } else if (v && !strcmp(a, "--value-bytes")) {
            o.value_bytes = atoi(v), i++;
        } else if (v && !strcmp(a, "--headers")) {
            o.headers = atoi(v), i++;
        } else if (v && !strcmp(a, "--partitions")) {
            o.partitions = atoi(v), i++;
        } else if (v && !strcmp(a, "--report")) {
            o.report = v, i++;
        } else if (v && !strcmp(a, "--prop") && o.nprops < MAX_PROPS) {
            o.props[o.nprops++] = v, i++;
        } else {
            fprintf(stderr, "bench_kafka_produce: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (o.messages <= 0 || o.reps < 1 || o.reps > MAX_REPS || o.value_bytes < 8 ||
        o.partitions < 1) {
        fprintf(stderr, "bench_kafka_produce: --messages, --reps (1-%d), --value-bytes (>= 8) "
                        "and --partitions must be positive\n", MAX_REPS);
        return 1;
    }
    double wall[MAX_REPS], rate[MAX_REPS], pcpu[MAX_REPS], bcpu[MAX_REPS];
    printf("librdkafka %s, %ld messages of %d + ~14 bytes, %d header(s), %d partitions, 3 mock "
           "brokers in a child process\n",
           rd_kafka_version_str(), o.messages, o.value_bytes, o.headers, o.partitions);
    for (int r = 0; r < o.reps; r++) {
        result_t res;
        if (one_run(&o, &res) != 0)
            return 1;
        wall[r] = res.wall_s;
        rate[r] = (double)o.messages / res.wall_s;
        pcpu[r] = res.producer_cpu_s * 1e6 / (double)o.messages;
        bcpu[r] = res.broker_cpu_s * 1e6 / (double)o.messages;
        printf("run %d: %.2f s, %.0f messages/s; CPU per message: producer %.2f us, mock "
               "cluster %.2f us\n", r + 1, wall[r], rate[r], pcpu[r], bcpu[r]);
        fflush(stdout);
    }
    qsort(rate, (size_t)o.reps, sizeof(double), by_double);
    qsort(pcpu, (size_t)o.reps, sizeof(double), by_double);
    qsort(bcpu, (size_t)o.reps, sizeof(double), by_double);
    printf("median: %.0f messages/s; CPU per message: producer %.2f us (this process: the "
           "producing thread and librdkafka's), mock cluster %.2f us\n",
           rate[o.reps / 2], pcpu[o.reps / 2], bcpu[o.reps / 2]);
    if (o.report) {
        FILE *f = fopen(o.report, "w");
        if (!f) {
            perror(o.report);
            return 1;
        }
        fprintf(f, "| librdkafka | messages | bytes | headers | messages/s (median of %d) | "
                   "producer CPU/message | mock cluster CPU/message |\n|---|---:|---:|---:|---:|"
                   "---:|---:|\n| %s | %ld | %d | %d | %.0f | %.2f us | %.2f us |\n",
                o.reps, rd_kafka_version_str(), o.messages, o.value_bytes + 14, o.headers,
                rate[o.reps / 2], pcpu[o.reps / 2], bcpu[o.reps / 2]);
        fclose(f);
        printf("report written to %s\n", o.report);
    }
    return 0;
}
