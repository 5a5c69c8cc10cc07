/*
 * mapping_encode.c - the mapping language and the Avro encoder alone, on one core: how many
 * rows of the sample ERP's order lines (OELINE -> sales_order_line, 19 fields: trims, leading
 * zeros, implied decimals, YYMMDD and CYYDDD dates, a local date+time to UTC, lookups, a flag,
 * a concatenated key, a constant, Windows-1252 text) one thread turns into canonical records,
 * and into encoded Kafka messages (key + envelope, single-object encoded), per second, with
 * the two Avro encoders: avro-c's generic value writer (stream.c's reference writer,
 * siphon_avro__stream_encode_*_avroc, since stream.c itself encodes with binenc) and the direct
 * encoder compiled from the schema (src/avro/binenc.c).
 *
 *   bench_mapping_encode [--rows N] [--reps N] [--only RUN,...] [--report FILE]
 *
 * No server: rows are built in memory the way the Postgres connector hands them over from a
 * SQL_ASCII database (CHAR columns as raw bytes, integers, numeric(3,0)), with values that
 * change every row (quantities, amounts, line numbers, dates, times), through the shipped
 * mappings (mappings/, schemas/ of the source tree). Five measurements (RUN names), each the
 * best of --reps runs (default 3) of N rows (default 1,000,000), timed by the thread's CPU clock
 * (the machine is shared; wall time is printed too):
 *   map            siphon_mapset_apply() only
 *   map+avroc      the above, then siphon_avro_stream_encode_key() + _encode_value()
 *   avroc          that encoding of one mapped row, again and again (the encoder's share)
 *   map+binenc     siphon_mapset_apply(), then the same key and envelope bytes from binenc
 *                  (single-object header + siphon_binenc_write_row / _write_event)
 *   binenc         that encoding of one mapped row, again and again
 * Before timing, the two encoders' bytes are compared on the first 1000 rows (they must be
 * identical). Rows are generated without printf so that the harness costs little.
 * The process is pinned to one CPU. Exit 0 when the run completed (the target, 1,000,000
 * rows/s for map + encode, is reported met or missed for the faster encoder), 1 on an error.
 * `--only map+binenc --reps 1` is the form to run under callgrind.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/avro_int.h"
#include "avro/binenc.h"
#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "harness.h"
#include "mapping/mapping.h"

#define TARGET 1000000.0

/* stream.c encodes with binenc itself now; avro-c's generic writer stays next to it as the
 * reference, which is what the avro-c runs and the byte comparison must use */
#ifdef SIPHON_AVRO_STREAM_BINENC
#define AVROC_KEY siphon_avro__stream_encode_key_avroc
#define AVROC_VALUE siphon_avro__stream_encode_value_avroc
#else
#define AVROC_KEY siphon_avro_stream_encode_key
#define AVROC_VALUE siphon_avro_stream_encode_value
#endif

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
    int encode;                /* 0 none, 1 avro-c, 2 binenc */
    siphon_binenc_t *kenc, *venc;
    uint8_t khdr[SIPHON_AVRO_SOE_HEADER_LEN], vhdr[SIPHON_AVRO_SOE_HEADER_LEN];
    long mapped, bytes;
    char errbuf[1024];
    siphon_mapped_t last;
} bench_t;

static const char *const descs[] = {"Hex bolt M8 \xd7 40            ",
                                    "Drill bit \xd8 6 mm             ",
                                    "B\xfcroklammern 1000 Stk.       ",
                                    "Cable tie 200 mm              "};
static const char *const stats[] = {"O", "B", "S", "C", "X"};

/* n as `width` decimal digits with leading zeros (n >= 0, fits). */
static void digits(char *out, long n, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + n % 10);
        n /= 10;
    }
    out[width] = '\0';
}

/* Row i: values change every row, as a busy order desk's would. */
static void make_row(bench_t *b, long i)
{
    digits(b->ordn, 104700 + i / 4, 10);
    b->line[0] = (char)('1' + i % 4);
    b->v[1].type = SIPHON_V_RAWTEXT;
    b->v[1].u.s.ptr = b->ordn;
    b->v[1].u.s.len = 10;
    b->v[2].u.dec.digits = b->line;
    b->v[2].u.dec.len = 1;
    b->v[4] = raw(descs[i % 4]);
    b->v[5].u.i = 1000 * (i % 50 + 1) + (i % 4) * 250;
    b->v[6].u.i = i % 3 ? 0 : b->v[5].u.i;
    b->v[8].u.i = 12345 + i % 9000;
    b->v[9].u.i = (i % 3) * 500;
    b->v[10].u.i = (b->v[5].u.i * b->v[8].u.i) / 100000;
    b->v[12].u.i = 240101 + (i % 28);
    b->v[13].u.i = i % 5 ? 124020 + (i % 300) : 0;
    b->v[14].type = SIPHON_V_RAWTEXT;
    b->v[14].u.s.ptr = stats[i % 5];
    b->v[14].u.s.len = 1;
    b->v[15].type = SIPHON_V_RAWTEXT;
    b->v[15].u.s.ptr = i % 7 ? "1" : "0";
    b->v[15].u.s.len = 1;
    b->v[17].u.i = 20240101 + (i % 28);
    b->v[18].u.i = 80000 + (i % 36000) % 60 + ((i / 60) % 60) * 100;
}

static siphon_avro_event_t event_of(const siphon_mapped_t *m)
{
    siphon_avro_event_t ev = {.op = m->op, .before = m->before, .after = m->after,
                              .source = {.connector = "bench", .db = "erp", .schema = "public",
                                         .table = "oeline", .pos = "0/16B3748", .txid = 4711,
                                         .commit_ts_us = 1706696100000000LL},
                              .ts_us = 1706696100000000LL, .event_id = "0/16B3748:0"};
    return ev;
}

/* Key and envelope with binenc, framed as stream.c frames them. */
static int binenc_encode(bench_t *b, const siphon_mapped_t *m, siphon_buf_t *kb, siphon_buf_t *vb)
{
    siphon_avro_event_t ev = event_of(m);
    memcpy(kb->data, b->khdr, SIPHON_AVRO_SOE_HEADER_LEN); /* room: reserved at start */
    memcpy(vb->data, b->vhdr, SIPHON_AVRO_SOE_HEADER_LEN);
    kb->len = vb->len = SIPHON_AVRO_SOE_HEADER_LEN;
    if (siphon_binenc_write_row(b->kenc, m->key, kb, b->errbuf, sizeof(b->errbuf)) < 0 ||
        siphon_binenc_write_event(b->venc, &ev, NULL, 0, vb, b->errbuf, sizeof(b->errbuf)) < 0)
        return SIPHON_ECONVERT;
    return 0;
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
    if (b->encode == 2) {
        if (binenc_encode(b, m, &b->kb, &b->vb) < 0)
            return SIPHON_ECONVERT;
    } else {
        siphon_avro_event_t ev = event_of(m);
        if (AVROC_KEY(b->st, m->key, &b->kb, b->errbuf, sizeof(b->errbuf)) < 0 ||
            AVROC_VALUE(b->st, &ev, &b->vb, b->errbuf, sizeof(b->errbuf)) < 0)
            return SIPHON_ECONVERT;
    }
    b->bytes += (long)(b->kb.len + b->vb.len);
    return 0;
}

/* The two encoders must give the same bytes: compare them on the first rows. */
static int check_same(bench_t *b, long rows)
{
    siphon_buf_t k2 = {0}, v2 = {0};
    int rc = 0;
    siphon_buf_reserve(&k2, 64);
    siphon_buf_reserve(&v2, 64);
    b->encode = 1;
    for (long i = 0; i < rows && rc == 0; i++) {
        make_row(b, i);
        if (siphon_mapset_apply(b->ms, &b->chg, b->errbuf, sizeof(b->errbuf), on_mapped, b) ||
            binenc_encode(b, &b->last, &k2, &v2) < 0) {
            fprintf(stderr, "bench: row %ld: %s\n", i, b->errbuf);
            rc = -1;
        } else if (k2.len != b->kb.len || memcmp(k2.data, b->kb.data, k2.len) ||
                   v2.len != b->vb.len || memcmp(v2.data, b->vb.data, v2.len)) {
            fprintf(stderr, "bench: row %ld: binenc and avro-c encodings differ\n", i);
            rc = -1;
        }
    }
    siphon_buf_free(&k2);
    siphon_buf_free(&v2);
    return rc;
}

typedef struct result {
    double cpu, wall;
    long rows;
} result_t;

static int reps = 3;

static int run(bench_t *b, long rows, int encode, result_t *best)
{
    best->cpu = 1e9;
    for (int rep = 0; rep < reps; rep++) {
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
static int run_encode_only(bench_t *b, long rows, int encode, result_t *best)
{
    siphon_mapped_t m = b->last;
    best->cpu = 1e9;
    b->encode = encode;
    for (int rep = 0; rep < reps; rep++) {
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

static int wanted(const char *only, const char *name)
{
    if (!only)
        return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static void row_line(char *out, size_t size, size_t *o, const char *name, const result_t *r)
{
    if (r->rows == 0) {
        *o += (size_t)snprintf(out + *o, size - *o, "| %s | - | - | - |\n", name);
        return;
    }
    *o += (size_t)snprintf(out + *o, size - *o, "| %s | %.0f | %.0f | %.0f |\n", name,
                           (double)r->rows / r->cpu, r->cpu * 1e9 / (double)r->rows,
                           (double)r->rows / r->wall);
}

int main(int argc, char **argv)
{
    long rows = 1000000;
    const char *report = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--report") && i + 1 < argc)
            report = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--rows N] [--reps N] [--only map,map+avroc,avroc,"
                    "map+binenc,binenc] [--report FILE]\n", argv[0]);
            return 2;
        }
    }
    if (rows < 1 || reps < 1) {
        fprintf(stderr, "bench: --rows and --reps must be at least 1\n");
        return 2;
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
    const char *kj = siphon_avro_stream_key_schema_json(b->st);
    const char *vj = siphon_avro_stream_value_schema_json(b->st);
    if (siphon_binenc_new_json(&b->kenc, kj, strlen(kj), b->errbuf, sizeof(b->errbuf)) < 0 ||
        siphon_binenc_new_json(&b->venc, vj, strlen(vj), b->errbuf, sizeof(b->errbuf)) < 0) {
        fprintf(stderr, "bench: %s\n", b->errbuf);
        return 1;
    }
    siphon_avro_soe_header(b->khdr, siphon_avro_stream_key_fingerprint(b->st));
    siphon_avro_soe_header(b->vhdr, siphon_avro_stream_value_fingerprint(b->st));
    siphon_buf_reserve(&b->kb, 256);
    siphon_buf_reserve(&b->vb, 1024);
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
    if (check_same(b, rows < 1000 ? rows : 1000) < 0)
        return 1;
    long msg_bytes = (long)(b->kb.len + b->vb.len);

    result_t rmap = {0}, ravro = {0}, renc = {0}, rbin = {0}, rbinenc = {0};
    if ((wanted(only, "map") && run(b, rows, 0, &rmap) < 0) ||
        (wanted(only, "map+avroc") && run(b, rows, 1, &ravro) < 0) ||
        (wanted(only, "avroc") && run_encode_only(b, rows, 1, &renc) < 0) ||
        (wanted(only, "map+binenc") && run(b, rows, 2, &rbin) < 0) ||
        (wanted(only, "binenc") && run_encode_only(b, rows, 2, &rbinenc) < 0))
        return 1;

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
    size_t o = 0;
    o += (size_t)snprintf(out + o, sizeof(out) - o,
                          "mapping + Avro encoding, one core (%s%s), %ld rows of OELINE -> %s "
                          "(%d fields), best of %d\n\n"
                          "| run | rows/s (CPU time) | ns/row | rows/s (wall) |\n"
                          "|---|---:|---:|---:|\n",
                          host[0] ? host : "unknown CPU", pinned ? ", pinned to CPU 0" : "", rows,
                          siphon_mapping_entity(b->map), sch->record->nfields, reps);
    row_line(out, sizeof(out), &o, "map", &rmap);
    row_line(out, sizeof(out), &o, "map + encode, avro-c (key + envelope)", &ravro);
    row_line(out, sizeof(out), &o, "encode only, avro-c", &renc);
    row_line(out, sizeof(out), &o, "map + encode, binenc (key + envelope)", &rbin);
    row_line(out, sizeof(out), &o, "encode only, binenc", &rbinenc);
    double both = rbin.rows ? (double)rbin.rows / rbin.cpu
                            : ravro.rows ? (double)ravro.rows / ravro.cpu : 0;
    if (both > 0)
        o += (size_t)snprintf(out + o, sizeof(out) - o,
                              "\ntarget: %.0f rows/s for map + encode (%s): %s (%.2fx); "
                              "messages %ld bytes (key + value), identical from both encoders\n",
                              TARGET, rbin.rows ? "binenc" : "avro-c",
                              both >= TARGET ? "met" : "MISSED", both / TARGET, msg_bytes);
    fwrite(out, 1, o, stdout);
    if (report) {
        FILE *f = fopen(report, "w");
        if (f) {
            fwrite(out, 1, o, f);
            fclose(f);
        }
    }
    siphon_buf_free(&b->kb);
    siphon_buf_free(&b->vb);
    siphon_binenc_destroy(b->kenc);
    siphon_binenc_destroy(b->venc);
    siphon_mapset_destroy(b->ms);
    free(maps);
    free(schemas);
    free(b);
    return 0;
}
