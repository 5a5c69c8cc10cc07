/*
 * mysql_to_kafka.c - the MySQL/MariaDB-to-Kafka path measured end to end, against
 * `mariadb-binlog --read-from-remote-server` reading the same binlog in the same run.
 *
 * One throwaway MariaDB 10.11 (the test harness's, with a larger buffer pool), librdkafka's
 * mock cluster inside this process (3 brokers, a topic of 16 partitions created up front for
 * each run), and the real `siphon run` binary as a child process with the benchmark's mapping
 * of the 12-column order-line table (bench/mappings/order_line.yaml, bench/schemas; the table
 * is created here in its MariaDB form, database `public`).
 *
 * For each workload (multi-row transactions, then single-row transactions):
 *  1. FLUSH BINARY LOGS, note the GTID position, write the bulk, FLUSH again: the bulk is one
 *     binlog file of its own, and E = @@gtid_binlog_pos after its last commit.
 *  2. baselines: `mariadb-binlog --read-from-remote-server` of that file to /dev/null, timed,
 *     as it is (row events re-printed as base64: no row is decoded) and with `-v
 *     --base64-output=decode-rows` (every row decoded and printed, the per-row work siphon
 *     does as well, like pg_recvlogical's in bench/pg_to_kafka.c).
 *  3. siphon: an offsets file seeded with the GTID before the bulk, `siphon run` started and
 *     timed until the offsets file holds E (a position is stored only once every event before
 *     it was acknowledged by the mock cluster, flush_interval_ms 20). The topic's high
 *     watermarks must add up to the rows written; VmHWM of siphon is its peak RSS.
 * Each workload runs --reps times (default 3; the report gives the median).
 *
 * Usage: bench_mysql_to_kafka [--quick] [--reps N] [--report FILE] (SIPHON_BIN and
 * SIPHON_SOURCE_DIR as for the integration tests). Exit 0 when the run completed (targets
 * met or not, each marked), 1 when something failed, 2 with --strict when a target was missed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

#define TARGET_RATIO 0.70
#define TARGET_RSS_MB 64.0
#define PARTITIONS 16
#define MAX_REPS 9

typedef struct opts {
    int multi_txns, multi_rows, single_txns, reps, strict;
    const char *report;
} opts_t;

typedef struct result {
    long rows;
    double base_s, decode_s, siphon_s, rss_mb;
    long delivered;
} result_t;

static th_my_t *my;
static th_kafka_t *kafka;
static char *dir;
static int run_no;

static const char oeline_ddl[] =
    "CREATE DATABASE IF NOT EXISTS public;"
    "CREATE TABLE public.oeline ("
    "  olcomp char(2) NOT NULL, olordn char(10) NOT NULL, olline int NOT NULL,"
    "  olitem char(15) NOT NULL, oldesc varchar(40), olqty decimal(11,3) NOT NULL,"
    "  oluom char(3) NOT NULL, olprice decimal(13,4) NOT NULL, olamt decimal(15,2) NOT NULL,"
    "  olreqd date, olstat char(1) NOT NULL, olupdt datetime(6) NOT NULL,"
    "  PRIMARY KEY (olcomp, olordn, olline)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/* Rows [first, first + n) as one INSERT ... SELECT (the order-line generator of
 * bench/sql/oeline.sql, in MariaDB's dialect; seq_ tables come with the Sequence engine). */
static int insert_rows(long first, long n)
{
    return th_my_exec(my,
                      "INSERT INTO public.oeline SELECT '01', LPAD(g DIV 10, 10, '0'), g %% 10 + 1,"
                      " CONCAT('ITM', LPAD(g %% 5000, 6, '0')),"
                      " IF(g %% 10 = 0, NULL, CONCAT('Widget, grade ', g %% 7)),"
                      " (g %% 100) + 1.25, 'EA', 12.3456 + (g %% 1000) / 100.0,"
                      " ROUND(((g %% 100) + 1.25) * (12.3456 + (g %% 1000) / 100.0), 2),"
                      " DATE '2026-01-01' + INTERVAL (g %% 365) DAY, 'O', NOW(6)"
                      " FROM (SELECT seq + %ld AS g FROM public.seq_0_to_%ld) s",
                      first, n - 1);
}

static char *gtid_pos(void)
{
    return th_my_value(my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
}

static char *current_file(void)
{
    char **row = NULL;
    int n = 0;
    char *f = NULL;
    if (th_my_row(my, &row, NULL, &n, "SHOW MASTER STATUS") == 1 && n > 0 && row[0])
        f = strdup(row[0]);
    th_my_row_free(row, NULL, n);
    return f;
}

static long vmhwm_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *s = th_read_file(path, NULL, 1);
    const char *p = s ? strstr(s, "VmHWM:") : NULL;
    long kb = p ? atol(p + 6) : -1;
    free(s);
    return kb;
}

static long watermarks(const char *topic)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", th_kafka_bootstraps(kafka), err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "bench-watermarks", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk)
        return -1;
    long total = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000)) {
            total = -1;
            break;
        }
        total += (long)hi;
    }
    rd_kafka_destroy(rk);
    return total;
}

/* Write the workload into a binlog file of its own. file: that file; before and after: the
 * GTID positions around it. */
static int write_bulk(long first, int txns, int rows_per_txn, char **file, char **before,
                      char **after)
{
    if (th_my_exec(my, "FLUSH BINARY LOGS") != 0)
        return -1;
    *file = current_file();
    *before = gtid_pos();
    if (rows_per_txn == 1) {
        /* single-row transactions: a procedure, so the client round trip does not dominate */
        for (long done = 0; done < txns;) {
            long chunk = txns - done > 5000 ? 5000 : txns - done;
            if (th_my_exec(my, "CALL public.bench_single(%ld, %ld)", first + done, chunk) != 0)
                return -1;
            done += chunk;
        }
    } else {
        for (int t = 0; t < txns; t++)
            if (insert_rows(first + (long)t * rows_per_txn, rows_per_txn) != 0)
                return -1;
    }
    *after = gtid_pos();
    return th_my_exec(my, "FLUSH BINARY LOGS");
}

/* mariadb-binlog of file to /dev/null: as it is (row events re-printed as base64, no row
 * decoded), or with decode_rows (-v --base64-output=decode-rows: every row decoded and printed
 * as pseudo-SQL, the per-row work siphon does too). */
static int run_baseline(const char *file, int decode_rows, double *secs)
{
    char port[32];
    snprintf(port, sizeof(port), "--port=%d", th_my_port(my));
    char *const plain[] = {"mariadb-binlog", "--no-defaults", "--read-from-remote-server",
                           "--host=127.0.0.1", port, "--user=root", "--result-file=/dev/null",
                           (char *)file, NULL};
    char *const decode[] = {"mariadb-binlog", "--no-defaults", "--read-from-remote-server",
                            "--host=127.0.0.1", port, "--user=root", "--result-file=/dev/null",
                            "--verbose", "--base64-output=decode-rows", (char *)file, NULL};
    char *const *argv = decode_rows ? decode : plain;
    int code = -1;
    int64_t t0 = th_now_ms();
    int rc = th_run((char *const *)argv, NULL, 600000, &code, NULL, NULL);
    *secs = (double)(th_now_ms() - t0) / 1000.0;
    if (rc != 0 || code != 0)
        return th_err("mariadb-binlog exited with %d", code);
    return 0;
}

static int run_siphon(const char *before, const char *after, long rows, result_t *r)
{
    char prefix[32], topic[64];
    snprintf(prefix, sizeof(prefix), "bench%d", ++run_no);
    snprintf(topic, sizeof(topic), "%s.order_line.v1", prefix);
    if (th_kafka_create_topic(kafka, topic, PARTITIONS) != 0)
        return -1;
    char *offsets = th_strf("%s/offsets-%d.json", dir, run_no);
    char *config = th_strf("%s/siphon-%d.yaml", dir, run_no);
    char *log = th_strf("%s/siphon-%d.log", dir, run_no);
    char *pos = th_strf("{\"version\":1,\"connector\":\"bench\",\"source_type\":\"mysql\","
                        "\"position\":\"%s\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n",
                        before);
    char *maps = th_path(th_source_dir(), "bench/mappings");
    char *schemas = th_path(th_source_dir(), "bench/schemas");
    th_my_conf_t c = {.name = "bench", .conninfo = th_my_conninfo(my), .server_id = 9001,
                      .bootstraps = th_kafka_bootstraps(kafka), .topic_prefix = prefix,
                      .offsets_path = offsets, .mappings_dir = maps, .schemas_dir = schemas,
                      .flush_interval_ms = 20, .log_level = "warning"};
    int rc = -1;
    th_proc_t *p = NULL;
    if (th_write_file(offsets, pos) != 0 || th_my_conf_write(config, &c) != 0)
        goto out;
    int64_t t0 = th_now_ms();
    if (!(p = th_siphon_start(config, log)))
        goto out;
    for (;;) {
        char *txt = th_read_file(offsets, NULL, 1);
        json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
        const char *v = j ? json_string_value(json_object_get(j, "position")) : NULL;
        int done = v && strcmp(v, after) == 0;
        json_decref(j);
        free(txt);
        if (done)
            break;
        if (!th_proc_running(p)) {
            th_proc_dump_log(p, 30);
            th_err("siphon exited with code %d", th_proc_exit_code(p));
            goto out;
        }
        if (th_now_ms() - t0 > 600000) {
            th_err("siphon did not reach %s within 10 minutes", after);
            goto out;
        }
        th_sleep_ms(10);
    }
    r->siphon_s = (double)(th_now_ms() - t0) / 1000.0;
    r->rss_mb = vmhwm_kb(th_proc_pid(p)) / 1024.0;
    th_proc_signal(p, SIGTERM);
    if (!th_proc_wait(p, 30000) || th_proc_exit_code(p) != 0) {
        th_proc_dump_log(p, 30);
        th_err("siphon did not stop cleanly");
        goto out;
    }
    r->delivered = watermarks(topic);
    if (r->delivered != rows) {
        th_err("the topic holds %ld messages, %ld rows were written", r->delivered, rows);
        goto out;
    }
    rc = 0;
out:
    th_proc_destroy(p);
    free(offsets);
    free(config);
    free(log);
    free(pos);
    free(maps);
    free(schemas);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct summary {
    const char *name;
    long rows;
    double base_rate, decode_rate, siphon_rate, ratio, ratio_decode, rss_mb;
} summary_t;

static int workload(const char *name, int txns, int rows_per_txn, int reps, long *next_id,
                    summary_t *s)
{
    double base[MAX_REPS], dec[MAX_REPS], sip[MAX_REPS], rss[MAX_REPS], ratio[MAX_REPS],
        ratio_d[MAX_REPS];
    long rows = (long)txns * rows_per_txn;
    printf("\n%s: %d transactions x %d rows (%ld rows), %d runs\n", name, txns, rows_per_txn,
           rows, reps);
    printf("  run   mariadb-binlog   -v decode-rows      siphon   ratio   ratio (decode-rows)"
           "   siphon peak RSS\n");
    for (int i = 0; i < reps; i++) {
        char *file = NULL, *before = NULL, *after = NULL;
        result_t r = {.rows = rows};
        if (write_bulk(*next_id, txns, rows_per_txn, &file, &before, &after) != 0 || !file ||
            !before || !after)
            return -1;
        *next_id += rows;
        /* alternate who reads first, so the page cache favours neither */
        int rc;
        if (i % 2 == 0)
            rc = run_baseline(file, 0, &r.base_s) || run_baseline(file, 1, &r.decode_s) ||
                 run_siphon(before, after, rows, &r);
        else
            rc = run_siphon(before, after, rows, &r) || run_baseline(file, 1, &r.decode_s) ||
                 run_baseline(file, 0, &r.base_s);
        free(file);
        free(before);
        free(after);
        if (rc)
            return -1;
        base[i] = rows / r.base_s;
        dec[i] = rows / r.decode_s;
        sip[i] = rows / r.siphon_s;
        ratio[i] = sip[i] / base[i];
        ratio_d[i] = sip[i] / dec[i];
        rss[i] = r.rss_mb;
        printf("  %3d   %14.0f   %16.0f   %9.0f   %5.2f   %19.2f   %12.1f MB\n", i + 1, base[i],
               dec[i], sip[i], ratio[i], ratio_d[i], rss[i]);
        fflush(stdout);
    }
    s->name = name;
    s->rows = rows;
    s->base_rate = median(base, reps);
    s->decode_rate = median(dec, reps);
    s->siphon_rate = median(sip, reps);
    s->ratio = median(ratio, reps);
    s->ratio_decode = median(ratio_d, reps);
    s->rss_mb = median(rss, reps);
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {.multi_txns = 500, .multi_rows = 1000, .single_txns = 100000, .reps = 3};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o.multi_txns = 20;
            o.single_txns = 4000;
            o.reps = 1;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            o.reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
            o.report = argv[++i];
        } else if (strcmp(argv[i], "--strict") == 0) {
            o.strict = 1;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--reps N] [--report FILE] [--strict]\n",
                    argv[0]);
            return 1;
        }
    }
    if (o.reps < 1 || o.reps > MAX_REPS)
        o.reps = 3;
    th_my_opts_t mo = {.extra_args = "--innodb-buffer-pool-size=256M "
                                     "--innodb-log-file-size=256M"};
    if (!(my = th_my_start(&mo)) || !(kafka = th_kafka_start(3)) || !(dir = th_tempdir()))
        return 1;
    if (th_my_exec(my, "%s", oeline_ddl) != 0 ||
        th_my_exec(my,
                   "CREATE PROCEDURE public.bench_single(first BIGINT, n BIGINT) BEGIN "
                   "DECLARE i BIGINT DEFAULT 0; WHILE i < n DO "
                   "INSERT INTO public.oeline VALUES ('01', LPAD((first + i) DIV 10, 10, '0'),"
                   " (first + i) %% 10 + 1, CONCAT('ITM', LPAD((first + i) %% 5000, 6, '0')),"
                   " IF((first + i) %% 10 = 0, NULL, CONCAT('Widget, grade ', (first + i) %% 7)),"
                   " ((first + i) %% 100) + 1.25, 'EA', 12.3456 + ((first + i) %% 1000) / 100.0,"
                   " ROUND((((first + i) %% 100) + 1.25) * (12.3456 + ((first + i) %% 1000) / "
                   "100.0), 2), DATE '2026-01-01' + INTERVAL ((first + i) %% 365) DAY, 'O', "
                   "NOW(6)); SET i = i + 1; END WHILE; END") != 0)
        return 1;
    summary_t s[2];
    long next_id = 0;
    int rc = workload("multi-row transactions", o.multi_txns, o.multi_rows, o.reps, &next_id,
                      &s[0]);
    if (rc == 0)
        rc = workload("single-row transactions", o.single_txns, 1, o.reps, &next_id, &s[1]);
    if (rc != 0) {
        th_my_dump_log(my, 30);
        return 1;
    }

    struct utsname un;
    uname(&un);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int missed = 0;
    printf("\nsummary, rows/s (medians; targets: ratio >= %.2f, RSS < %.0f MB)\n",
           TARGET_RATIO, TARGET_RSS_MB);
    for (int i = 0; i < 2; i++) {
        int ok_ratio = s[i].ratio >= TARGET_RATIO, ok_rss = s[i].rss_mb < TARGET_RSS_MB;
        missed |= !ok_ratio || !ok_rss;
        printf("  %-24s mariadb-binlog %8.0f  -v decode-rows %8.0f  siphon %8.0f  ratio %.2f "
               "%s (%.2f against decode-rows)  RSS %.1f MB %s\n",
               s[i].name, s[i].base_rate, s[i].decode_rate, s[i].siphon_rate, s[i].ratio,
               ok_ratio ? "ok" : "MISSED", s[i].ratio_decode, s[i].rss_mb,
               ok_rss ? "ok" : "MISSED");
    }
    if (o.report) {
        FILE *f = fopen(o.report, "w");
        if (f) {
            fprintf(f, "# MySQL/MariaDB to Kafka (bench/mysql_to_kafka.c)\n\n"
                       "%s %s, %ld cores; MariaDB 10.11, mock Kafka (3 brokers, %d partitions); "
                       "median of %d runs; rows/s.\n\n"
                       "| workload | rows | mariadb-binlog | mariadb-binlog -v decode-rows | "
                       "siphon | ratio (target >= %.2f) | ratio against decode-rows | siphon "
                       "peak RSS (target < %.0f MB) |\n"
                       "|---|---|---|---|---|---|---|---|\n",
                    un.sysname, un.machine, cores, PARTITIONS, o.reps, TARGET_RATIO,
                    TARGET_RSS_MB);
            for (int i = 0; i < 2; i++)
                fprintf(f, "| %s | %ld | %.0f | %.0f | %.0f | %.2f %s | %.2f | %.1f MB %s |\n",
                        s[i].name, s[i].rows, s[i].base_rate, s[i].decode_rate,
                        s[i].siphon_rate, s[i].ratio, s[i].ratio >= TARGET_RATIO ? "ok" : "missed",
                        s[i].ratio_decode, s[i].rss_mb,
                        s[i].rss_mb < TARGET_RSS_MB ? "ok" : "missed");
            fclose(f);
        }
    }
    th_kafka_destroy(kafka);
    th_my_destroy(my);
    th_tempdir_remove(dir);
    return missed && o.strict ? 2 : 0;
}
