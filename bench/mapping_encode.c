/*
 * mapping_encode.c - the mapping language and the Avro encoder alone, on one core: how many
 * rows of the sample ERP's order lines (OELINE -> sales_order_line, 19 fields: trims, leading
 * zeros, implied decimals, YYMMDD and CYYDDD dates, a local date+time to UTC, lookups, a flag,
 * a concatenated key, a constant, Windows-1252 text) one thread turns into canonical records,
 * and into encoded Kafka messages (key + envelope, single-object encoded), per second.
 *
 *   bench_mapping_encode [--rows N] [--report FILE]
 *
 * No server: rows are built in memory the way the Postgres connector hands them over from a
 * SQL_ASCII database (CHAR columns as raw bytes, integers, numeric(3,0)), with values that
 * change every row (quantities, amounts, line numbers, dates, times), through the shipped
 * mappings (mappings/, schemas/ of the source tree). Three measurements, each the best of
 * three runs of N rows (default 1,000,000), timed by the thread's CPU clock (the machine is
 * shared; wall time is printed too):
 *   map          siphon_mapset_apply() only
 *   map+encode   the above, then siphon_avro_stream_encode_key() + _encode_value()
 *   encode       encoding of one mapped row, again and again (the encoder's share)
 * The process is pinned to one CPU. Exit 0 when the run completed (the target, 1,000,000
 * rows/s for map+encode, is reported met or missed), 1 on an error.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "harness.h"
#include "mapping/mapping.h"

#define TARGET 1000000.0

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define RAW(n) {n, 1042, "bpchar", SIPHON_V_RAWTEXT, -1, 0, 0}
#define RAWK(n) {n, 1042, "bpchar", SIPHON_V_RAWTEXT, -1, 1, 1}
#define INT4(n) {n, 23, "integer", SIPHON_V_INT, -1, 0, 0}
#define INT8(n) {n, 20, "bigint", SIPHON_V_INT, -1, 0, 0}

static siphon_column_t cols[] = {
    RAWK("olcomp"), RAWK("olordn"),
    {"olline", 1700, "numeric(3,0)", SIPHON_V_DECIMAL, 196612, 1, 1},
    RAW("olitem"), RAW("oldesc"), INT8("olqtyo"), INT8("olqtys"), RAW("oluom"), INT8("olprce"),
    INT4("oldisc"), INT8("olamt"), RAW("olwhse"), INT4("olrqdt"), INT4("olprdt"), RAW("olstat"),
    RAW("oltaxf"), RAW("oldltf"), INT4("olchgd"), INT4("olchgt"),
};
static siphon_relation_t rel = {16401, 1, "public", "oeline", 19, cols};

static siphon_value_t raw(const char *s)
{
    siphon_value_t v = {.type = SIPHON_V_RAWTEXT};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

typedef struct bench {
    siphon_mapset_t *ms;
    const siphon_mapping_t *map;
    siphon_avro_stream_t *st;
    siphon_value_t v[19];
    char ordn[24], line[24];
    siphon_row_t row;
    siphon_change_t chg;
    siphon_buf_t kb, vb;
    int encode;
    long mapped, bytes;
    char errbuf[1024];
    siphon_mapped_t last;
} bench_t;

static const char *const descs[] = {"Hex bolt M8 \xd7 40            ",
                                    "Drill bit \xd8 6 mm             ",
                                    "B\xfcroklammern 1000 Stk.       ",
                                    "Cable tie 200 mm              "};
static const char *const stats[] = {"O", "B", "S", "C", "X"};

/* Row i: values change every row, as a busy order desk's would. */
static void make_row(bench_t *b, long i)
{
    snprintf(b->ordn, sizeof(b->ordn), "%010ld", 104700 + i / 4);
    snprintf(b->line, sizeof(b->line), "%ld", i % 4 + 1);
    b->v[1] = raw(b->ordn);
    b->v[2].u.dec.digits = b->line;
    b->v[2].u.dec.len = strlen(b->line);
    b->v[4] = raw(descs[i % 4]);
    b->v[5].u.i = 1000 * (i % 50 + 1) + (i % 4) * 250;
    b->v[6].u.i = i % 3 ? 0 : b->v[5].u.i;
    b->v[8].u.i = 12345 + i % 9000;
    b->v[9].u.i = (i % 3) * 500;
    b->v[10].u.i = (b->v[5].u.i * b->v[8].u.i) / 100000;
    b->v[12].u.i = 240101 + (i % 28);
    b->v[13].u.i = i % 5 ? 124020 + (i % 300) : 0;
    b->v[14] = raw(stats[i % 5]);
    b->v[15] = raw(i % 7 ? "1" : "0");
    b->v[17].u.i = 20240101 + (i % 28);
    b->v[18].u.i = 80000 + (i % 36000) % 60 + ((i / 60) % 60) * 100;
}

static int on_mapped(const siphon_mapped_t *m, void *opaque)
{
    bench_t *b = opaque;
    b->mapped++;
    b->last = *m;
    if (!b->encode)
        return 0;
    if (m->error)
        return SIPHON_ECONVERT;
    siphon_buf_reset(&b->kb);
    siphon_buf_reset(&b->vb);
    siphon_avro_event_t ev = {.op = m->op, .before = m->before, .after = m->after,
                              .source = {.connector = "bench", .db = "erp", .schema = "public",
                                         .table = "oeline", .pos = "0/16B3748", .txid = 4711,
                                         .commit_ts_us = 1706696100000000LL},
                              .ts_us = 1706696100000000LL, .event_id = "0/16B3748:0"};
    if (siphon_avro_stream_encode_key(b->st, m->key, &b->kb, b->errbuf, sizeof(b->errbuf)) < 0 ||
        siphon_avro_stream_encode_value(b->st, &ev, &b->vb, b->errbuf, sizeof(b->errbuf)) < 0)
        return SIPHON_ECONVERT;
    b->bytes += (long)(b->kb.len + b->vb.len);
    return 0;
}

typedef struct result {
    double cpu, wall;
    long rows;
} result_t;

static int run(bench_t *b, long rows, int encode, result_t *best)
{
    best->cpu = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        b->encode = encode;
        b->mapped = 0;
        double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        for (long i = 0; i < rows; i++) {
            make_row(b, i);
            if (siphon_mapset_apply(b->ms, &b->chg, b->errbuf, sizeof(b->errbuf), on_mapped, b)) {
                fprintf(stderr, "bench: row %ld: %s\n", i, b->errbuf);
                return -1;
            }
        }
        double cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0, wall = now(CLOCK_MONOTONIC) - w0;
        if (b->mapped != rows) {
            fprintf(stderr, "bench: %ld rows gave %ld records\n", rows, b->mapped);
            return -1;
        }
        if (cpu < best->cpu) {
            best->cpu = cpu;
            best->wall = wall;
        }
    }
    best->rows = rows;
    return 0;
}

/* Encoding only: the last mapped row, again and again. */
static int run_encode_only(bench_t *b, long rows, result_t *best)
{
    siphon_mapped_t m = b->last;
    best->cpu = 1e9;
    b->encode = 1;
    for (int rep = 0; rep < 3; rep++) {
        double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        for (long i = 0; i < rows; i++)
            if (on_mapped(&m, b) < 0) {
                fprintf(stderr, "bench: %s\n", b->errbuf);
                return -1;
            }
        double cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0, wall = now(CLOCK_MONOTONIC) - w0;
        if (cpu < best->cpu) {
            best->cpu = cpu;
            best->wall = wall;
        }
    }
    best->rows = rows;
    return 0;
}

int main(int argc, char **argv)
{
    long rows = 1000000;
    const char *report = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--report") && i + 1 < argc)
            report = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--rows N] [--report FILE]\n", argv[0]);
            return 2;
        }
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    int pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
    if (!getenv("SIPHON_PII_KEY"))
        setenv("SIPHON_PII_KEY", "bench-key", 1);

    bench_t *b = calloc(1, sizeof(*b));
    char *maps = th_path(th_source_dir(), "mappings"), *schemas = th_path(th_source_dir(), "schemas");
    if (siphon_mapset_load(&b->ms, maps, schemas, b->errbuf, sizeof(b->errbuf)) < 0) {
        fprintf(stderr, "bench: %s\n", b->errbuf);
        return 1;
    }
    for (int i = 0; i < siphon_mapset_count(b->ms); i++)
        if (!strcmp(siphon_mapping_entity(siphon_mapset_get(b->ms, i)), "sales_order_line"))
            b->map = siphon_mapset_get(b->ms, i);
    if (!b->map) {
        fprintf(stderr, "bench: no sales_order_line mapping in %s\n", maps);
        return 1;
    }
    b->st = siphon_mapping_stream(b->map);
    b->v[0] = raw("01");
    b->v[2] = (siphon_value_t){.type = SIPHON_V_DECIMAL};
    b->v[3] = raw("WID-00007      ");
    for (int i = 5; i <= 18; i++)
        b->v[i].type = SIPHON_V_INT;
    b->v[7] = raw("EA ");
    b->v[11] = raw("DAL");
    b->v[16] = raw(" ");
    make_row(b, 0);
    b->row = (siphon_row_t){19, b->v};
    b->chg = (siphon_change_t){.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = &rel,
                               .after = &b->row, .txid = 4711, .database = "erp"};
    if (siphon_mapset_bind(b->ms, &rel, b->errbuf, sizeof(b->errbuf)) < 0) {
        fprintf(stderr, "bench: %s\n", b->errbuf);
        return 1;
    }
    const siphon_schema_t *sch = siphon_mapping_schema(b->map);

    result_t rmap = {0}, rboth = {0}, renc = {0};
    if (run(b, rows, 0, &rmap) < 0 || run(b, rows, 1, &rboth) < 0 ||
        run_encode_only(b, rows, &renc) < 0)
        return 1;
    double avg = (double)b->bytes / (double)(rows * 4); /* 3 runs + encode-only runs: approx */

    char host[256] = "";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof(line), ci))
            if (!strncmp(line, "model name", 10)) {
                snprintf(host, sizeof(host), "%s", strchr(line, ':') + 2);
                host[strcspn(host, "\n")] = '\0';
                break;
            }
        fclose(ci);
    }
    char out[4096];
    double both = (double)rboth.rows / rboth.cpu;
    int n = snprintf(out, sizeof(out),
                     "mapping + Avro encoding, one core (%s%s), %ld rows of OELINE -> %s "
                     "(%d fields), best of 3\n\n"
                     "| run | rows/s (CPU time) | ns/row | rows/s (wall) |\n|---|---:|---:|---:|\n"
                     "| map | %.0f | %.0f | %.0f |\n"
                     "| map + encode (key + envelope) | %.0f | %.0f | %.0f |\n"
                     "| encode only | %.0f | %.0f | %.0f |\n\n"
                     "target: %.0f rows/s for map + encode: %s (%.2fx); messages about %.0f "
                     "bytes (key + value)\n",
                     host[0] ? host : "unknown CPU", pinned ? ", pinned to CPU 0" : "", rows,
                     siphon_mapping_entity(b->map), sch->record->nfields,
                     (double)rmap.rows / rmap.cpu, rmap.cpu * 1e9 / (double)rmap.rows,
                     (double)rmap.rows / rmap.wall,
                     both, rboth.cpu * 1e9 / (double)rboth.rows, (double)rboth.rows / rboth.wall,
                     (double)renc.rows / renc.cpu, renc.cpu * 1e9 / (double)renc.rows,
                     (double)renc.rows / renc.wall, TARGET, both >= TARGET ? "met" : "MISSED",
                     both / TARGET, avg);
    fwrite(out, 1, (size_t)n, stdout);
    if (report) {
        FILE *f = fopen(report, "w");
        if (f) {
            fwrite(out, 1, (size_t)n, f);
            fclose(f);
        }
    }
    siphon_buf_free(&b->kb);
    siphon_buf_free(&b->vb);
    siphon_mapset_destroy(b->ms);
    free(maps);
    free(schemas);
    free(b);
    return 0;
}
