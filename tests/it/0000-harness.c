/*
 * 0000-harness - checks the integration-test harness itself, so that a failure in a later test
 * points at siphon and not at the scaffolding: the throwaway PostgreSQL (SQL, logical slots,
 * walsender termination, restart), the mock Kafka cluster (produce, consume every partition from
 * the beginning with headers and tombstones, brokers down/up), child processes (exit codes,
 * timeouts, signals, no leaked descriptors), the siphon.yaml writer against Siphon's own config
 * parser, and cleanup after a test that dies (SIGTERM, SIGKILL).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "it_check.h"

static const char *self_exe;

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_pg(void **state)
{
    (void)state;
    th_log("PostgreSQL: initdb, start, SQL, logical slot");
    th_pg_t *pg = th_pg_start();
    assert_non_null(pg);
    IT_CHECK(NULL, th_pg_exec(pg, "CREATE TABLE t (id int primary key, v text); "
                                  "INSERT INTO t VALUES (1, 'a'), (2, 'b')") == 0,
             "create table");
    char *v = th_pg_value(pg, NULL, "SELECT count(*) FROM t");
    assert_non_null(v);
    assert_string_equal(v, "2");
    free(v);
    int found = 1;
    v = th_pg_value(pg, &found, "SELECT v FROM t WHERE id = 3");
    assert_null(v);
    assert_int_equal(found, 0);
    v = th_pg_value(pg, NULL, "SHOW wal_level");
    assert_string_equal(v, "logical");
    free(v);
    assert_int_equal(th_pg_exec(pg, "SELECT no_such_function()"), -1);

    assert_int_equal(th_pg_exec(pg, "SELECT pg_create_logical_replication_slot('td', "
                                    "'test_decoding')"), 0);
    uint64_t confirmed = 0, cur = 0;
    assert_int_equal(th_pg_slot_confirmed(pg, "td", &confirmed), 0);
    assert_int_equal(th_pg_current_lsn(pg, &cur), 0);
    assert_true(confirmed > 0 && confirmed <= cur);
    uint64_t dummy;
    assert_int_equal(th_pg_slot_confirmed(pg, "nosuchslot", &dummy), -1);

    th_log("PostgreSQL: a walsender (pg_recvlogical) is terminated");
    char *dir = th_tempdir();
    assert_non_null(dir);
    char *log = th_path(dir, "recvlogical.log");
    char *dbarg = th_strf("--dbname=%s", th_pg_conninfo(pg));
    char *const argv[] = {"pg_recvlogical", dbarg, "--slot=td", "--start", "--no-loop",
                          "-f", "/dev/null", NULL};
    th_proc_t *p = th_proc_spawn(argv, log);
    assert_non_null(p);
    int64_t deadline = th_now_ms() + 10000;
    while (th_pg_walsenders(pg) < 1 && th_now_ms() < deadline)
        th_sleep_ms(50);
    IT_CHECK(NULL, th_pg_walsenders(pg) == 1, "pg_recvlogical did not connect");
    assert_int_equal(th_pg_terminate_walsenders(pg), 1);
    IT_CHECK(NULL, th_proc_wait(p, 10000) == 1, "pg_recvlogical did not exit after termination");
    assert_int_not_equal(th_proc_exit_code(p), 0);
    assert_true(th_file_contains(log, "terminat"));
    th_proc_destroy(p);

    th_log("PostgreSQL: restart keeps data and slots; the harness connection reconnects");
    pid_t pm1 = th_pg_postmaster_pid(pg);
    assert_int_equal(th_pg_restart(pg), 0);
    assert_int_not_equal(th_pg_postmaster_pid(pg), pm1);
    v = th_pg_value(pg, NULL, "SELECT string_agg(v, ',' ORDER BY id) FROM t");
    assert_string_equal(v, "a,b");
    free(v);
    assert_int_equal(th_pg_slot_confirmed(pg, "td", &confirmed), 0);
    assert_int_equal(th_pg_stop(pg), 0);
    assert_int_equal(th_pg_exec(pg, "SELECT 1"), -1);
    assert_int_equal(th_pg_start_again(pg), 0);
    assert_int_equal(th_pg_exec(pg, "SELECT 1"), 0);

    char *pgdir = strdup(th_pg_dir(pg));
    pid_t pm = th_pg_postmaster_pid(pg);
    th_pg_destroy(pg);
    assert_false(dir_exists(pgdir));
    assert_false(th_pid_alive(pm));
    free(pgdir);
    free(dbarg);
    free(log);
    th_tempdir_remove(dir);
    assert_false(dir_exists(dir));
    free(dir);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *delivered = opaque;
    if (!m->err)
        (*delivered)++;
}

static rd_kafka_t *producer(th_kafka_t *k, int *delivered)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", th_kafka_bootstraps(k), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "500", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, delivered);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, int i, int tombstone)
{
    char key[32], val[32];
    snprintf(key, sizeof(key), "k%d", i % 7);
    snprintf(val, sizeof(val), "v%d", i);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(tombstone ? NULL : val, tombstone ? 0 : strlen(val)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("seq", val, -1),
        RD_KAFKA_V_END);
    assert_int_equal(e, 0);
}

static void test_kafka(void **state)
{
    (void)state;
    th_log("Kafka mock: 3 brokers, topic of 4 partitions, produce 20 (one tombstone)");
    th_kafka_t *k = th_kafka_start(3);
    assert_non_null(k);
    assert_non_null(strchr(th_kafka_bootstraps(k), ','));
    assert_int_equal(th_kafka_create_topic(k, "t1", 4), 0);
    int delivered = 0;
    rd_kafka_t *rk = producer(k, &delivered);
    for (int i = 0; i < 20; i++)
        produce(rk, "t1", i, i == 13);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    assert_int_equal(delivered, 20);

    th_consumer_t *c = th_consumer_new(k, "t1");
    assert_non_null(c);
    th_msgs_t msgs = {0};
    assert_int_equal(th_consumer_poll(c, &msgs, 20, 10000), 20);
    int partitions_seen = 0, tombstones = 0;
    int last_seq_per_key[7];
    for (int i = 0; i < 7; i++)
        last_seq_per_key[i] = -1;
    for (int i = 0; i < msgs.n; i++) {
        th_msg_t *m = &msgs.v[i];
        partitions_seen |= 1 << m->partition;
        const th_header_t *h = th_msg_header(m, "seq");
        assert_non_null(h);
        int seq = atoi((char *)h->value + 1);
        int key = atoi((char *)m->key + 1);
        assert_int_equal(key, seq % 7);
        IT_CHECK(NULL, seq > last_seq_per_key[key], "per-key order broken");
        last_seq_per_key[key] = seq;
        if (!m->value) {
            tombstones++;
            assert_int_equal(seq, 13);
        } else {
            assert_memory_equal(m->value, h->value, h->len);
        }
    }
    assert_int_equal(tombstones, 1);
    assert_true(__builtin_popcount(partitions_seen) >= 2);
    assert_int_equal(th_consumer_poll(c, &msgs, 0, 300), 20); /* nothing more */

    th_log("Kafka mock: all brokers down: nothing is delivered; up again: everything arrives");
    assert_int_equal(th_kafka_broker_down(k, -1), 0);
    th_sleep_ms(300);
    for (int i = 20; i < 25; i++)
        produce(rk, "t1", i, 0);
    int64_t until = th_now_ms() + 1500;
    while (th_now_ms() < until)
        rd_kafka_poll(rk, 50);
    assert_int_equal(delivered, 20);
    assert_int_equal(th_kafka_broker_up(k, -1), 0);
    assert_int_equal(rd_kafka_flush(rk, 20000), 0);
    assert_int_equal(delivered, 25);
    assert_int_equal(th_consumer_poll(c, &msgs, 25, 20000), 25);

    th_msgs_free(&msgs);
    th_consumer_destroy(c);
    rd_kafka_destroy(rk);
    th_kafka_destroy(k);
}

static void test_proc(void **state)
{
    (void)state;
    th_log("processes: exit codes, captured output, timeouts, signals, no leaked descriptors");
    int code = -1;
    char *out = NULL, *err = NULL;
    char *const sh[] = {"sh", "-c", "echo out; echo err >&2; echo $TH_X; exit 3", NULL};
    char *const env[] = {"TH_X=hello", NULL};
    assert_int_equal(th_run(sh, env, 5000, &code, &out, &err), 0);
    assert_int_equal(code, 3);
    assert_string_equal(out, "out\nhello\n");
    assert_string_equal(err, "err\n");
    free(out);
    free(err);

    char *const slow[] = {"sleep", "10", NULL};
    int64_t t0 = th_now_ms();
    assert_int_equal(th_run(slow, NULL, 200, &code, NULL, NULL), -1);
    assert_true(th_now_ms() - t0 < 2000);
    assert_int_equal(code, 128 + SIGKILL);

    char *const missing[] = {"/nonexistent/siphon-test-binary", NULL};
    assert_int_equal(th_run(missing, NULL, 5000, &code, NULL, NULL), 0);
    assert_int_equal(code, 127);

    char *dir = th_tempdir();
    char *log = th_path(dir, "child.log");
    /* an open descriptor in the parent must not reach the child */
    FILE *held = fopen(log, "a");
    assert_non_null(held);
    char *const loop[] = {"sh", "-c", "ls -l /proc/self/fd/; echo ready; exec sleep 30", NULL};
    th_proc_t *p = th_proc_spawn(loop, log);
    assert_non_null(p);
    assert_true(th_proc_wait_log(p, "ready", 5000));
    assert_true(th_proc_running(p));
    assert_int_equal(th_proc_exit_code(p), -1);
    char *text = th_read_file(log, NULL, 0);
    assert_non_null(text);
    /* ls itself has its directory open as 3; nothing at 4 or above */
    IT_CHECK(NULL, strstr(text, " 4 -> ") == NULL, "a descriptor leaked into the child:\n%s", text);
    free(text);
    fclose(held);
    assert_int_equal(th_proc_signal(p, SIGTERM), 0);
    assert_int_equal(th_proc_wait(p, 5000), 1);
    assert_int_equal(th_proc_exit_code(p), 128 + SIGTERM);
    assert_false(th_proc_wait_log(p, "never written", 100));
    th_proc_destroy(p);
    th_proc_destroy(NULL);
    free(log);
    th_tempdir_remove(dir);
    free(dir);
}

static void test_conf(void **state)
{
    (void)state;
    th_log("siphon.yaml written by the harness loads with Siphon's own config parser");
    char *dir = th_tempdir();
    char *path = th_path(dir, "siphon.yaml");
    char *offsets = th_path(dir, "offsets.json");
    th_siphon_conf_t conf = {
        .conninfo = "host=127.0.0.1 port=5 user=postgres password=\"q\\\"x\" dbname=erp",
        .slot = "s1",
        .publication = "p1",
        .bootstraps = "127.0.0.1:1,127.0.0.1:2",
        .topic_prefix = "erp",
        .offsets_path = offsets,
        .status_interval_ms = 250,
        .extra_source = "create_publication: false\ncreate_slot: true\n",
        .flush_interval_ms = 100,
        .log_level = "debug",
        .extra_props = "linger.ms: \"5\"\nmessage.timeout.ms: \"60000\"\n",
    };
    assert_int_equal(th_siphon_conf_write(path, &conf), 0);
    siphon_config_t *cfg = NULL;
    char errbuf[1024] = "";
    int rc = siphon_config_load(&cfg, path, errbuf, sizeof(errbuf));
    IT_CHECK(NULL, rc == 0, "siphon_config_load: %s", errbuf);
    assert_string_equal(cfg->source.conninfo, conf.conninfo);
    assert_string_equal(cfg->source.slot, "s1");
    assert_string_equal(cfg->source.publication, "p1");
    assert_int_equal(cfg->source.status_interval_ms, 250);
    assert_int_equal(cfg->source.create_publication, 0);
    assert_int_equal(cfg->source.create_slot, 1);
    assert_string_equal(cfg->sink.topic_prefix, "erp");
    assert_string_equal(cfg->offsets.path, offsets);
    assert_int_equal(cfg->offsets.flush_interval_ms, 100);
    int found = 0;
    for (int i = 0; i < cfg->sink.nprops; i++) {
        if (!strcmp(cfg->sink.props[i].key, "bootstrap.servers"))
            found += !strcmp(cfg->sink.props[i].value, conf.bootstraps);
        if (!strcmp(cfg->sink.props[i].key, "message.timeout.ms"))
            found += !strcmp(cfg->sink.props[i].value, "60000");
    }
    assert_int_equal(found, 2);
    siphon_config_destroy(cfg);

    th_log("offsets file: the position is read back");
    assert_int_equal(th_write_file(offsets, "{\"connector\":\"it\",\"position\":\"1/A0\"}"), 0);
    uint64_t lsn = 0;
    assert_int_equal(th_offsets_lsn(offsets, &lsn), 0);
    assert_true(lsn == ((1ULL << 32) | 0xA0));
    assert_int_equal(th_offsets_lsn("/nonexistent", &lsn), -1);
    free(path);
    free(offsets);
    th_tempdir_remove(dir);
    free(dir);
}

/* Run this executable as a child that starts a server, prints where, then dies by `sig`. */
static void run_dying_child(int sig, char **pgdir, pid_t *pm)
{
    char sigtxt[16];
    snprintf(sigtxt, sizeof(sigtxt), "%d", sig);
    char *const argv[] = {(char *)self_exe, "--die-with", sigtxt, NULL};
    int code = 0;
    char *out = NULL;
    assert_int_equal(th_run(argv, NULL, 60000, &code, &out, NULL), 0);
    assert_int_equal(code, 128 + sig);
    char dir[512];
    int pid = 0;
    IT_CHECK(NULL, sscanf(out, "pgdir=%511s pid=%d", dir, &pid) == 2, "child said: %s", out);
    *pgdir = strdup(dir);
    *pm = pid;
    free(out);
}

static void test_cleanup(void **state)
{
    (void)state;
    th_log("cleanup: a test killed by SIGTERM stops its server and removes its directory");
    char *pgdir = NULL;
    pid_t pm = 0;
    run_dying_child(SIGTERM, &pgdir, &pm);
    assert_false(dir_exists(pgdir));
    assert_false(th_pid_alive(pm));
    free(pgdir);

    th_log("cleanup: after a SIGKILL the next harness user sweeps the orphan");
    run_dying_child(SIGKILL, &pgdir, &pm);
    assert_true(dir_exists(pgdir));
    assert_true(th_pid_alive(pm)); /* the orphaned server still runs */
    char *const argv[] = {(char *)self_exe, "--sweep", NULL};
    int code = -1;
    assert_int_equal(th_run(argv, NULL, 30000, &code, NULL, NULL), 0);
    assert_int_equal(code, 0);
    assert_false(dir_exists(pgdir));
    int64_t deadline = th_now_ms() + 5000;
    while (th_pid_alive(pm) && th_now_ms() < deadline)
        th_sleep_ms(20);
    assert_false(th_pid_alive(pm));
    free(pgdir);
}

int main(int argc, char **argv)
{
    (void)argv;
    self_exe = "/proc/self/exe";
    if (argc == 3 && !strcmp(argv[1], "--die-with")) {
        th_pg_t *pg = th_pg_start();
        if (!pg)
            return 2;
        printf("pgdir=%s pid=%d\n", th_pg_dir(pg), (int)th_pg_postmaster_pid(pg));
        fflush(stdout);
        raise(atoi(argv[2]));
        return 3;
    }
    if (argc == 2 && !strcmp(argv[1], "--sweep")) {
        char *d = th_tempdir(); /* first harness use: sweeps */
        th_tempdir_remove(d);
        free(d);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc),  cmocka_unit_test(test_conf),
        cmocka_unit_test(test_pg),    cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_cleanup),
    };
    return cmocka_run_group_tests_name("0000-harness", tests, NULL, NULL);
}
