/*
 * th_kafka.c - Kafka for integration tests: librdkafka's mock cluster running inside the test
 * process (siphon, a separate process, reaches it over TCP through the bootstrap list), broker
 * down/up for fault injection, and a consumer that reads every partition of a topic from the
 * beginning and copies each message (key, value, headers, partition, offset) out for checking.
 *
 * The consumer uses assign(), not a group subscription: no rebalance delay, every partition from
 * offset 0, and nothing committed. Order is kept per partition, which is all Kafka promises.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "harness_int.h"

struct th_kafka {
    rd_kafka_t *rk; /* the handle the mock cluster hangs on */
    rd_kafka_mock_cluster_t *mc;
    int nbrokers;
    char *bootstraps;
};

struct th_consumer {
    rd_kafka_t *rk;
    char *topic;
    int errors_logged;
    int nparts;
    int64_t *next; /* per partition: the offset the next message must have (gap detection) */
};

/* librdkafka logs from its own threads. Fault tests make it complain a lot (brokers down on
 * purpose), so its lines are shown only with TH_VERBOSE=1. */
static void th__rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("TH_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
    }
    if (verbose && level <= 6)
        fprintf(stderr, "harness: librdkafka %s: %s: %s\n", rd_kafka_name(rk), fac, buf);
}

th_kafka_t *th_kafka_start(int nbrokers)
{
    th__cleanup_init();
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, th__rk_log);
    if (rd_kafka_conf_set(conf, "client.id", "th-mock", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        th_err("could not configure the mock cluster's handle: %s", errstr);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        th_err("could not create the mock cluster's handle: %s", errstr);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        rd_kafka_destroy(rk);
        th_err("could not create a mock Kafka cluster of %d brokers", nbrokers);
        return NULL;
    }
    th_kafka_t *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    k->rk = rk;
    k->mc = mc;
    k->nbrokers = nbrokers;
    k->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(mc));
    if (!k->bootstraps)
        abort();
    return k;
}

const char *th_kafka_bootstraps(const th_kafka_t *k)
{
    return k->bootstraps;
}

int th_kafka_create_topic(th_kafka_t *k, const char *topic, int partitions)
{
    int rf = k->nbrokers < 3 ? k->nbrokers : 3;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(k->mc, topic, partitions, rf);
    if (e)
        return th_err("could not create topic \"%s\" in the mock cluster: %s", topic,
                      rd_kafka_err2str(e));
    return 0;
}

int th_kafka_broker_down(th_kafka_t *k, int broker_id)
{
    int from = broker_id < 0 ? 1 : broker_id, to = broker_id < 0 ? k->nbrokers : broker_id;
    for (int id = from; id <= to; id++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_down(k->mc, id);
        if (e)
            return th_err("could not set mock broker %d down: %s", id, rd_kafka_err2str(e));
    }
    return 0;
}

int th_kafka_broker_up(th_kafka_t *k, int broker_id)
{
    int from = broker_id < 0 ? 1 : broker_id, to = broker_id < 0 ? k->nbrokers : broker_id;
    for (int id = from; id <= to; id++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_up(k->mc, id);
        if (e)
            return th_err("could not set mock broker %d up: %s", id, rd_kafka_err2str(e));
    }
    return 0;
}

void th_kafka_destroy(th_kafka_t *k)
{
    if (!k)
        return;
    rd_kafka_mock_cluster_destroy(k->mc);
    rd_kafka_destroy(k->rk);
    free(k->bootstraps);
    free(k);
}

/* ---- messages ---- */

void th_msgs_free(th_msgs_t *msgs)
{
    for (int i = 0; i < msgs->n; i++) {
        th_msg_t *m = &msgs->v[i];
        free(m->key);
        free(m->value);
        for (int h = 0; h < m->nhdrs; h++) {
            free(m->hdrs[h].name);
            free(m->hdrs[h].value);
        }
        free(m->hdrs);
    }
    free(msgs->v);
    msgs->v = NULL;
    msgs->n = msgs->cap = 0;
}

const th_header_t *th_msg_header(const th_msg_t *m, const char *name)
{
    for (int i = 0; i < m->nhdrs; i++)
        if (strcmp(m->hdrs[i].name, name) == 0)
            return &m->hdrs[i];
    return NULL;
}

/* A copy with a NUL after the n bytes (not counted), so text payloads read as C strings. */
static void *th__memdup(const void *p, size_t n)
{
    if (!p)
        return NULL;
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void th__msgs_add(th_msgs_t *msgs, const rd_kafka_message_t *rkm)
{
    if (msgs->n == msgs->cap) {
        msgs->cap = msgs->cap ? msgs->cap * 2 : 256;
        msgs->v = realloc(msgs->v, (size_t)msgs->cap * sizeof(*msgs->v));
        if (!msgs->v)
            abort();
    }
    th_msg_t *m = &msgs->v[msgs->n++];
    memset(m, 0, sizeof(*m));
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    rd_kafka_timestamp_type_t tstype;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    m->key = th__memdup(rkm->key, rkm->key_len);
    m->klen = rkm->key ? rkm->key_len : 0;
    m->value = th__memdup(rkm->payload, rkm->len);
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
            m->hdrs[i].value = th__memdup(val, size);
            m->hdrs[i].len = val ? size : 0;
            m->nhdrs++;
        }
    }
}

/* ---- consumer ---- */

th_consumer_t *th_consumer_new(th_kafka_t *k, const char *topic)
{
    char errstr[512];
    char group[64];
    static int seq; /* only makes group ids unique within this process */
    snprintf(group, sizeof(group), "th-%d-%d", (int)getpid(), ++seq);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, th__rk_log);
    const char *props[][2] = {
        {"bootstrap.servers", k->bootstraps},
        {"group.id", group},
        {"client.id", "th-consumer"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "50"},
        {"fetch.error.backoff.ms", "50"},
        {"reconnect.backoff.ms", "50"},
        {"reconnect.backoff.max.ms", "500"},
        {"topic.metadata.refresh.interval.ms", "1000"},
        {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            th_err("could not configure the consumer (%s): %s", props[i][0], errstr);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        th_err("could not create a consumer: %s", errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);

    /* Find the topic's partitions (it may be created a moment later by a producer). */
    int nparts = 0;
    int64_t deadline = th_now_ms() + 10000;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    while (nparts == 0) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err)
            nparts = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (nparts == 0) {
            if (th_now_ms() > deadline) {
                rd_kafka_topic_destroy(rkt);
                rd_kafka_destroy(rk);
                th_err("could not find topic \"%s\" in the mock cluster within 10 s", topic);
                return NULL;
            }
            th_sleep_ms(100);
        }
    }
    rd_kafka_topic_destroy(rkt);

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        rd_kafka_destroy(rk);
        th_err("could not assign the partitions of \"%s\": %s", topic, rd_kafka_err2str(e));
        return NULL;
    }
    th_consumer_t *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->rk = rk;
    c->topic = strdup(topic);
    c->nparts = nparts;
    c->next = calloc((size_t)nparts, sizeof(*c->next)); /* every partition starts at 0 */
    if (!c->topic || !c->next)
        abort();
    return c;
}

int th_consumer_poll(th_consumer_t *c, th_msgs_t *out, int until_n, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (until_n <= 0 || out->n < until_n) {
        int64_t left = deadline - th_now_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, left > 100 ? 100 : (int)left);
        if (!rkm)
            continue;
        if (rkm->err) {
            /* Transient errors (brokers down, partition EOF) are expected in fault tests. */
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && c->errors_logged < 3) {
                c->errors_logged++;
                fprintf(stderr, "harness: consumer of %s: %s (continuing)\n", c->topic,
                        rd_kafka_message_errstr(rkm));
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        /* The mock cluster drops a partition's oldest messages beyond 5 MB / 100,000 of them;
         * a consumer that was behind then jumps ahead (auto.offset.reset) and a test would
         * report lost rows that Siphon did deliver. Say so where it happens. */
        int p = rkm->partition;
        if (p >= 0 && p < c->nparts) {
            if (rkm->offset > c->next[p])
                fprintf(stderr, "harness: consumer of %s: partition %d jumped from offset %lld to "
                        "%lld: the mock cluster dropped messages before they were read (it keeps "
                        "5 MB / 100,000 messages per partition): give the topic more partitions "
                        "or consume sooner\n", c->topic, p, (long long)c->next[p],
                        (long long)rkm->offset);
            c->next[p] = rkm->offset + 1;
        }
        th__msgs_add(out, rkm);
        rd_kafka_message_destroy(rkm);
    }
    return out->n;
}

void th_consumer_destroy(th_consumer_t *c)
{
    if (!c)
        return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c->topic);
    free(c->next);
    free(c);
}
