/*
 * 0032-tail-dir - `siphon tail --dir` on the file sink's folder: events of the repository's
 * sales_order stream are written through the file sink's operations (this test plays the
 * pipeline), rolled into several files; tail prints them in order as JSON lines with their keys
 * (all of them, the last 10 by default, one key, from the sink's folder or a topic folder),
 * ignores the file still being written, follows new files until SIGTERM, and says when a topic
 * folder does not exist.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#include "avro/siphon_avro.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "sink/file/file.h"

#define TOPIC "erp.sales_order.v1"

typedef struct writer {
    siphon_mapset_t *ms;
    siphon_avro_stream_t *st;
    siphon_config_t cfg;
    siphon_sink_t *snk;
    siphon_buf_t kb, vb;
    long delivered;
} writer_t;

static void on_delivery(void *msg_opaque, int err, const char *errstr, void *cb_opaque)
{
    writer_t *w = cb_opaque;
    if (err)
        fail_msg("delivery failed: %s", errstr);
    w->delivered++;
}

static void writer_open(writer_t *w, const char *out, long long roll_bytes)
{
    char err[1024];
    /* the pipeline tests' sales_order (tests/it/fixtures/orders-basic), whose rows this writes */
    char *m = th_path(th_source_dir(), "tests/it/fixtures/orders-basic/mappings"),
         *s = th_path(th_source_dir(), "tests/it/fixtures/orders-basic/schemas");
    memset(w, 0, sizeof(*w));
    if (siphon_mapset_load(&w->ms, m, s, err, sizeof(err)) < 0)
        fail_msg("mappings: %s", err);
    free(m);
    free(s);
    w->st = siphon_mapping_stream(siphon_mapset_get(w->ms, 0));
    w->cfg.name = "it";
    w->cfg.sink.type = "file";
    w->cfg.sink.path = (char *)out;
    w->cfg.sink.roll_bytes = roll_bytes;
    w->cfg.sink.roll_ms = 600000;
    if (siphon_file_sink.open(&w->snk, &w->cfg, on_delivery, w, err, sizeof(err)) < 0)
        fail_msg("open: %s", err);
    if (siphon_file_sink.register_schemas(
            w->snk, TOPIC, siphon_avro_stream_key_fingerprint(w->st),
            siphon_avro_stream_key_schema_json(w->st), siphon_avro_stream_value_fingerprint(w->st),
            siphon_avro_stream_value_schema_json(w->st), err, sizeof(err)) < 0)
        fail_msg("register: %s", err);
}

/* Order i: company "01", order number SO-%04d, amount i.25, op 'c'. */
static void writer_put(writer_t *w, int i)
{
    char err[1024], ordn[16], digits[32], eid[32];
    snprintf(ordn, sizeof(ordn), "SO-%04d", i);
    snprintf(digits, sizeof(digits), "%d25", i);
    snprintf(eid, sizeof(eid), "0/%X:0", i);
    siphon_value_t row[8];
    memset(row, 0, sizeof(row));
    row[0] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"01", 2}};
    row[1] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {ordn, strlen(ordn)}};
    row[2] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"C1", 2}};
    row[3] = (siphon_value_t){.type = SIPHON_V_DATE, .u.date = 19753};
    row[4] = (siphon_value_t){.type = SIPHON_V_DECIMAL,
                              .u.dec = {digits, strlen(digits), 2}};
    row[5] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {"O", 1}};
    row[6] = (siphon_value_t){.type = SIPHON_V_NULL};
    row[7] = (siphon_value_t){.type = SIPHON_V_TIMESTAMP, .u.ts = {1700000000000000LL, 1}};
    siphon_value_t key[2] = {row[0], row[1]};
    siphon_avro_event_t ev = {.op = 'c', .after = row,
                              .source = {.connector = "it", .db = "erp", .schema = "public",
                                         .table = "oehdr", .pos = "0/1"},
                              .ts_us = 1700000000000001LL, .event_id = eid};
    siphon_buf_reset(&w->kb);
    siphon_buf_reset(&w->vb);
    if (siphon_avro_stream_encode_key(w->st, key, &w->kb, err, sizeof(err)) < 0 ||
        siphon_avro_stream_encode_value(w->st, &ev, &w->vb, err, sizeof(err)) < 0)
        fail_msg("encode: %s", err);
    siphon_sink_msg_t msg = {.topic = TOPIC, .key = w->kb.data, .klen = w->kb.len,
                             .value = w->vb.data, .vlen = w->vb.len, .opaque = (void *)1};
    if (siphon_file_sink.produce(w->snk, &msg, err, sizeof(err)) < 0)
        fail_msg("produce: %s", err);
}

static void writer_close(writer_t *w)
{
    siphon_file_sink.flush(w->snk, 5000);
    siphon_file_sink.close(w->snk);
    siphon_mapset_destroy(w->ms);
    siphon_buf_free(&w->kb);
    siphon_buf_free(&w->vb);
}

/* Run tail; the order numbers of the printed events, ' '-separated, into buf. Exit code. */
static int tail(const char *const *args, char *buf, size_t size, int *nlines, char **err)
{
    char *argv[16];
    int a = 0;
    argv[a++] = (char *)th_siphon_bin();
    argv[a++] = "tail";
    for (int i = 0; args[i] && a < 15; i++)
        argv[a++] = (char *)args[i];
    argv[a] = NULL;
    char *sout = NULL;
    int ec = -1;
    if (th_run(argv, NULL, 60000, &ec, &sout, err) != 0)
        return -1;
    size_t off = 0;
    buf[0] = '\0';
    *nlines = 0;
    for (char *p = sout, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        json_t *j = json_loads(p, 0, NULL);
        char ordn[64], t[64];
        if (!j || strcmp(th_json_text(j, "topic", t, sizeof(t)), TOPIC) != 0 ||
            !json_is_string(json_object_get(j, "file")) ||
            !json_is_integer(json_object_get(j, "record")) ||
            strcmp(th_json_text(j, "key.order_number", ordn, sizeof(ordn)),
                   th_json_text(j, "event.after.order_number", t, sizeof(t))) != 0) {
            off += (size_t)snprintf(buf + off, size > off ? size - off : 0, "BAD[%s] ", p);
        } else {
            off += (size_t)snprintf(buf + off, size > off ? size - off : 0, "%s ", ordn);
        }
        json_decref(j);
        (*nlines)++;
    }
    if (off && off < size)
        buf[off - 1] = '\0';
    free(sout);
    return ec;
}

static void expect_range(char *buf, size_t size, int from, int to)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = from; i <= to; i++)
        off += (size_t)snprintf(buf + off, size - off, "%sSO-%04d", i > from ? " " : "", i);
}

static void test_tail_dir(void **state)
{
    char *dir = th_tempdir();
    assert_non_null(dir);
    char *out = th_path(dir, "out");
    char *topic_dir = th_path(out, TOPIC);
    writer_t w;
    char got[16384], want[16384], *err = NULL;
    int n = 0;

    th_log("write 40 events (files of 1000 bytes), and 3 more into a file left open");
    writer_open(&w, out, 1000);
    for (int i = 1; i <= 40; i++)
        writer_put(&w, i);
    writer_close(&w);
    int nfiles = 0;
    char **files = th_file_list(topic_dir, ".avro", &nfiles); /* nfiles is set by the call */
    th_file_list_free(files, nfiles);
    IT_CHECK(NULL, nfiles >= 3, "only %d files", nfiles);
    writer_open(&w, out, 1LL << 30);
    for (int i = 41; i <= 43; i++)
        writer_put(&w, i);
    IT_CHECK(NULL, siphon_file_sink.flush(w.snk, 5000) == 0, "flush failed");

    th_log("--from-beginning on the sink's folder: 40 events in order (not the open file's)");
    const char *all[] = {"--dir", out, "--from-beginning", NULL};
    int ec = tail(all, got, sizeof(got), &n, &err);
    expect_range(want, sizeof(want), 1, 40);
    IT_CHECK(NULL, ec == 0, "exit %d: %s", ec, err);
    IT_CHECK(NULL, strcmp(got, want) == 0, "printed\n  %s\nexpected\n  %s", got, want);
    free(err);

    th_log("by default the last 10, across file boundaries");
    const char *last10[] = {"--dir", out, "--topic", TOPIC, NULL};
    ec = tail(last10, got, sizeof(got), &n, NULL);
    expect_range(want, sizeof(want), 31, 40);
    IT_CHECK(NULL, ec == 0 && strcmp(got, want) == 0, "printed %s, expected %s", got, want);

    th_log("a topic folder given directly, --last 3");
    const char *last3[] = {"--dir", topic_dir, "--last", "3", NULL};
    ec = tail(last3, got, sizeof(got), &n, NULL);
    expect_range(want, sizeof(want), 38, 40);
    IT_CHECK(NULL, ec == 0 && strcmp(got, want) == 0, "printed %s, expected %s", got, want);

    th_log("--key 01/SO-0007 and --key as JSON");
    const char *k1[] = {"--dir", out, "--from-beginning", "--key", "01/SO-0007", NULL};
    ec = tail(k1, got, sizeof(got), &n, NULL);
    IT_CHECK(NULL, ec == 0 && strcmp(got, "SO-0007") == 0, "printed %s", got);
    const char *k2[] = {"--dir", out, "--from-beginning", "--key",
                        "{\"company\":\"01\",\"order_number\":\"SO-0012\"}", NULL};
    ec = tail(k2, got, sizeof(got), &n, NULL);
    IT_CHECK(NULL, ec == 0 && strcmp(got, "SO-0012") == 0, "printed %s", got);

    th_log("the decimal, date and timestamp print as text");
    char *argv[] = {(char *)th_siphon_bin(), "tail", "--dir", out, "--last", "1", NULL};
    char *sout = NULL;
    IT_CHECK(NULL, th_run(argv, NULL, 30000, &ec, &sout, NULL) == 0 && ec == 0, "tail failed");
    IT_CHECK(NULL, sout && strstr(sout, "\"total_amount\":\"40.25\"") &&
                       strstr(sout, "\"order_date\":\"2024-01-31\"") &&
                       strstr(sout, "\"updated_at\":\"2023-11-14T22:13:20.000000Z\""),
             "unexpected rendering: %s", sout ? sout : "");
    free(sout);

    th_log("--follow prints files closed after it started, until SIGTERM");
    char *log = th_path(dir, "follow.log");
    char *fargv[] = {(char *)th_siphon_bin(), "tail", "--dir", out, "--follow", "--last", "0",
                     NULL};
    th_proc_t *tp = th_proc_spawn(fargv, log);
    assert_non_null(tp);
    th_sleep_ms(800);
    writer_close(&w); /* closes the file with 41..43 */
    IT_CHECK(NULL, th_proc_wait_log(tp, "SO-0043", 10000), "--follow did not print SO-0043");
    IT_CHECK(NULL, th_file_contains(log, "SO-0041") && !th_file_contains(log, "SO-0040"),
             "--follow --last 0 printed the wrong events");
    th_proc_signal(tp, SIGTERM);
    IT_CHECK(NULL, th_proc_wait(tp, 10000) && th_proc_exit_code(tp) == 0,
             "tail --follow did not exit 0 on SIGTERM");
    th_proc_destroy(tp);
    free(log);

    th_log("a missing topic folder is an error that says what is expected");
    const char *missing[] = {"--dir", out, "--topic", "erp.nothing.v1", NULL};
    ec = tail(missing, got, sizeof(got), &n, &err);
    IT_CHECK(NULL, ec == 1 && err && strstr(err, "no such topic folder"), "exit %d: %s", ec,
             err ? err : "");
    free(err);

    free(topic_dir);
    free(out);
    th_tempdir_remove(dir);
    free(dir);
}

int main(void)
{
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_dir),
    };
    return cmocka_run_group_tests_name("0032-tail-dir", tests, NULL, NULL);
}
