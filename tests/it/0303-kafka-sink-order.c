/*
 * 0303-kafka-sink-order - the Kafka sink's own thread keeps order per key and reports every
 * message. The sink copies each message into a 2 MB ring that its sink thread hands to
 * librdkafka; a message too big for the ring (over 256 KB) is produced from the caller's thread,
 * but only once the ring is empty; a full ring answers SIPHON_EAGAIN. This drives the sink
 * directly (no source, no pipeline) with 10,000 messages over 7 keys, mixed sizes: small ones,
 * 20 KB ones that fill and wrap the ring, and 300 KB ones that take the direct path. A consumer
 * (started first, so librdkafka's mock cluster never prunes what it has not read) must then see
 * every message once, per key in the order produced, with its headers (one of them with a NULL
 * value), and every delivery must have been reported as delivered, from a thread other than
 * the producing one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#include "config/config.h"
#include "core/error.h"
#include "sink/kafka/kafka.h"

#define NMSG 10000
#define NKEYS 7
#define BIG 300000

static atomic_long ok_reports, bad_reports;
static atomic_int off_thread;
static pthread_t producer_thread;

static void on_report(void *msg_opaque, int err, const char *errstr, void *cb_opaque)
{
    (void)msg_opaque;
    (void)cb_opaque;
    if (!pthread_equal(pthread_self(), producer_thread))
        atomic_store(&off_thread, 1);
    if (err) {
        atomic_fetch_add(&bad_reports, 1);
        fprintf(stderr, "0303: delivery failed: %s\n", errstr ? errstr : "?");
    } else {
        atomic_fetch_add(&ok_reports, 1);
    }
}

static void test_order_per_key(void **state)
{
    (void)state;
    char err[1024];
    producer_thread = pthread_self();
    th_kafka_t *k = th_kafka_start(3);
    assert_non_null(k);
    assert_int_equal(th_kafka_create_topic(k, "it.sink_order", TH_TOPIC_PARTITIONS), 0);
    th_consumer_t *c = th_consumer_new(k, "it.sink_order");
    assert_non_null(c);

    siphon_kv_t props[] = {{"bootstrap.servers", (char *)th_kafka_bootstraps(k)},
                           {"message.max.bytes", "2000000"}};
    siphon_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "it";
    cfg.sink.props = props;
    cfg.sink.nprops = 2;
    cfg.pipeline.max_inflight_bytes = 64LL << 20;
    siphon_sink_t *snk = NULL;
    if (siphon_kafka_sink.open(&snk, &cfg, on_report, NULL, err, sizeof(err)) < 0)
        fail_msg("could not open the Kafka sink: %s", err);

    char *val = malloc(BIG);
    assert_non_null(val);
    memset(val, 'x', BIG);
    long eagain = 0, direct = 0, wrapping = 0;
    for (int i = 0; i < NMSG; i++) {
        char key[16], seq[32];
        snprintf(key, sizeof(key), "k%d", i % NKEYS);
        snprintf(seq, sizeof(seq), "%d", i);
        size_t vlen = i % 1009 == 0 ? BIG : i % 97 == 0 ? 20000 : 50 + (size_t)(i % 300);
        direct += vlen == BIG;
        wrapping += vlen == 20000;
        memcpy(val, seq, strlen(seq) + 1);
        siphon_sink_header_t h[2] = {{"seq", seq, strlen(seq)}, {"nullhdr", NULL, 0}};
        siphon_sink_msg_t m = {.topic = "it.sink_order", .key = key, .klen = strlen(key),
                               .value = val, .vlen = vlen, .hdrs = h, .nhdrs = 2,
                               .opaque = (void *)(uintptr_t)(i + 1)};
        for (;;) {
            int rc = siphon_kafka_sink.produce(snk, &m, err, sizeof(err));
            if (rc == 0)
                break;
            if (rc != SIPHON_EAGAIN)
                fail_msg("could not produce message %d: %s", i, err);
            eagain++;
            siphon_kafka_sink.poll(snk, 50);
        }
    }
    assert_int_equal(siphon_kafka_sink.flush(snk, 60000), 0);
    th_log("produced %d messages (%ld over 256 KB, %ld of 20 KB); the ring was full %ld times; "
           "%ld delivered, %ld failed", NMSG, direct, wrapping, eagain, atomic_load(&ok_reports),
           atomic_load(&bad_reports));
    assert_int_equal(siphon_kafka_sink.inflight(snk), 0);
    siphon_kafka_sink.close(snk);
    assert_int_equal(atomic_load(&ok_reports), NMSG);
    assert_int_equal(atomic_load(&bad_reports), 0);
    assert_true(atomic_load(&off_thread));
    assert_true(direct >= 5 && wrapping >= 50);

    th_msgs_t msgs = {0};
    th_consumer_poll(c, &msgs, NMSG, 60000);
    th_consumer_poll(c, &msgs, 0, 500); /* nothing more may come */
    assert_int_equal(msgs.n, NMSG);
    int last[NKEYS], seen = 0;
    char *got = calloc(NMSG, 1);
    assert_non_null(got);
    for (int i = 0; i < NKEYS; i++)
        last[i] = -1;
    for (int i = 0; i < msgs.n; i++) {
        const th_msg_t *m = &msgs.v[i];
        assert_true(m->key && m->value);
        int kk = atoi((const char *)m->key + 1), s = atoi((const char *)m->value);
        const th_header_t *h = th_msg_header(m, "seq");
        const th_header_t *hn = th_msg_header(m, "nullhdr");
        if (!h || atoi((const char *)h->value) != s || !hn || hn->len != 0)
            fail_msg("message p%d@%lld (seq %d): headers lost or changed", m->partition,
                     (long long)m->offset, s);
        if (s < 0 || s >= NMSG || s % NKEYS != kk)
            fail_msg("message p%d@%lld: seq %d does not belong to key k%d", m->partition,
                     (long long)m->offset, s, kk);
        if (s <= last[kk])
            fail_msg("key k%d: seq %d arrived after seq %d", kk, s, last[kk]);
        last[kk] = s;
        seen += !got[s];
        got[s] = 1;
    }
    assert_int_equal(seen, NMSG);
    free(got);
    free(val);
    th_msgs_free(&msgs);
    th_consumer_destroy(c);
    th_kafka_destroy(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_per_key),
    };
    return cmocka_run_group_tests_name("0303-kafka-sink-order", tests, NULL, NULL);
}
