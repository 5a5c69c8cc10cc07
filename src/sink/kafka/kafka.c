/*
 * kafka.c - the Kafka sink: a librdkafka producer with idempotence on.
 *
 * Properties from the config's sink.properties are passed to librdkafka verbatim, after our
 * defaults, so an operator can override any of them. Our defaults:
 *   enable.idempotence=true      no duplicates or reordering from producer retries
 *   message.timeout.ms=0         never give up on a message: a broker outage is waited out
 *                                (with backpressure on the source) instead of failing the event
 *   queue.buffering.max.kbytes   from pipeline.max_inflight_bytes (memory bound)
 *   queue.buffering.max.messages=50000   the count bound: a queued message costs ~0.8 KB of
 *                                librdkafka memory whatever its size, so with small events the
 *                                count, not the bytes, bounds RSS (bench: 33 MB instead of 90 MB
 *                                while a 1,000,000-row transaction streams)
 *   linger.ms=5
 * Delivery reports are served from siphon_kafka__poll() on the pipeline thread and handed to the
 * pipeline's callback with the message's opaque. librdkafka's logs and errors go to siphon_log.
 *
 * Framing. The pipeline hands over single-object-encoded keys and values (C3 01 + fingerprint).
 * With sink.format single_object they go out as they are. With sink.format confluent the sink
 * registers each topic's key and value schemas with the Schema Registry (registry.c) under the
 * TopicNameStrategy subjects <topic>-key and <topic>-value, keeps the ids, and swaps the
 * 10-byte header for the Confluent one (magic 0 + 4-byte big-endian id) on every message: the
 * Avro body is the same bytes.
 *
 * Registration states of a topic, with the function that moves between them:
 *   PENDING --[kafka_register_schemas / produce: register_topic succeeds]--> REGISTERED
 *   PENDING --[register_topic: registry unreachable, 5xx]--> PENDING (retried with backoff)
 *   PENDING --[register_topic: 4xx, refused]--> fatal error (the run stops)
 * kafka_register_schemas() tries at startup, before the source is read. A registry that is down
 * then does not stop the start: produce() of a message whose topic is still PENDING tries again
 * when the backoff allows and otherwise answers SIPHON_EAGAIN, which the pipeline treats like a
 * full queue: the event is held (not lost, not acknowledged), deliveries keep being served, the
 * source is not read further, and everything after it waits. Ids are cached for the life of the
 * process, so a registry outage after registration changes nothing.
 */
#include "sink/kafka/kafka.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "sink/kafka/kafka_int.h"

/* One topic's schemas and, once registered, their ids (format confluent). */
typedef struct kafka_topic {
    char *topic;
    uint64_t fp[2];       /* 0: key, 1: value */
    char *json[2];
    uint32_t id[2];
    int registered[2];
} kafka_topic_t;

struct siphon_sink {
    rd_kafka_t *rk;
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    long inflight;
    int all_brokers_down_logged;

    /* format confluent */
    siphon_registry_t *reg;
    kafka_topic_t *topics;
    int ntopics;
    kafka_topic_t *last;          /* the topic of the previous message (usually the next's) */
    int64_t next_try_ms;          /* no registry request before this (backoff) */
    int backoff_ms;               /* 0 after a success */
    int64_t last_warn_ms;
    int holding;                  /* events are held for the registry */
    int backoff_initial_ms, backoff_max_ms;
    siphon_buf_t kbuf, vbuf;      /* re-framed key and value */
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    siphon_sink_t *snk = opaque;
    snk->inflight--;
    if (!snk->cb)
        return; /* closing: purged messages */
    if (msg->err) {
        char why[512];
        snprintf(why, sizeof(why), "could not deliver to topic %s: %s",
                 msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?", rd_kafka_err2str(msg->err));
        snk->cb(msg->_private, SIPHON_EDELIVERY, why, snk->cb_opaque);
    } else {
        if (snk->all_brokers_down_logged) {
            siphon_log(SIPHON_LOG_NOTICE, "kafka", "deliveries resumed");
            snk->all_brokers_down_logged = 0;
        }
        snk->cb(msg->_private, 0, NULL, snk->cb_opaque);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    siphon_log(level <= 3 ? SIPHON_LOG_ERR : level == 4 ? SIPHON_LOG_WARNING : SIPHON_LOG_DEBUG,
               "kafka", "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    siphon_sink_t *snk = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!snk->all_brokers_down_logged)
            siphon_log(SIPHON_LOG_WARNING, "kafka",
                       "all brokers are down (%s); events are held and retried, the source "
                       "position does not move until they are delivered", reason);
        snk->all_brokers_down_logged = 1;
    } else if (rd_kafka_fatal_error(rk, NULL, 0)) {
        siphon_log(SIPHON_LOG_ERR, "kafka", "fatal producer error: %s", reason);
    } else {
        siphon_log(SIPHON_LOG_WARNING, "kafka", "%s: %s", rd_kafka_err2name(err), reason);
    }
}

static int set_prop(rd_kafka_conf_t *conf, const char *k, const char *v, char *errbuf,
                    size_t errsize)
{
    char why[512];
    if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) != RD_KAFKA_CONF_OK)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not set Kafka property '%s': %s (see librdkafka's "
                          "CONFIGURATION.md for valid properties)", k, why);
    return 0;
}

static int kafka_open(siphon_sink_t **out, const siphon_config_t *cfg, siphon_sink_delivery_cb cb,
                      void *cb_opaque, char *errbuf, size_t errsize)
{
    siphon_sink_t *snk = calloc(1, sizeof(*snk));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;
    *out = NULL;
    if (!snk || !conf) {
        rc = SIPHON_ENOMEM;
        goto err;
    }
    snk->cb = cb;
    snk->cb_opaque = cb_opaque;

    char kb[32];
    long long kbytes = cfg->pipeline.max_inflight_bytes / 1024;
    if (kbytes < 1024)
        kbytes = 1024;
    snprintf(kb, sizeof(kb), "%lld", kbytes);
    if ((rc = set_prop(conf, "enable.idempotence", "true", errbuf, errsize)) < 0 ||
        (rc = set_prop(conf, "message.timeout.ms", "0", errbuf, errsize)) < 0 ||
        (rc = set_prop(conf, "linger.ms", "5", errbuf, errsize)) < 0 ||
        (rc = set_prop(conf, "queue.buffering.max.messages", "50000", errbuf, errsize)) < 0 ||
        (rc = set_prop(conf, "queue.buffering.max.kbytes", kb, errbuf, errsize)) < 0 ||
        (rc = set_prop(conf, "client.id", cfg->name, errbuf, errsize)) < 0)
        goto err;
    for (int i = 0; i < cfg->sink.nprops; i++)
        if ((rc = set_prop(conf, cfg->sink.props[i].key, cfg->sink.props[i].value, errbuf,
                           errsize)) < 0)
            goto err;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, snk);

    char why[512];
    snk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!snk->rk) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not create Kafka producer: %s",
                        why);
        goto err;
    }
    conf = NULL; /* owned by rk now */
    if (cfg->sink.format == SIPHON_SINK_FORMAT_CONFLUENT) {
        if ((rc = siphon_registry_new(&snk->reg, &cfg->sink.registry, errbuf, errsize)) < 0)
            goto err;
        snk->backoff_initial_ms = cfg->sink.registry.retry_backoff_ms;
        snk->backoff_max_ms = cfg->sink.registry.retry_backoff_max_ms;
    }
    *out = snk;
    return 0;
err:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (snk && snk->rk)
        rd_kafka_destroy(snk->rk);
    free(snk);
    return rc ? rc : SIPHON_EINVAL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Register what is still unregistered of topic t (key, then value). 0 when both are;
 * SIPHON_EAGAIN when the registry could not be reached (backoff set; the first failure and then
 * one every 30 s logged at warning); SIPHON_EINVAL when it refused (fatal). */
static int register_topic(siphon_sink_t *snk, kafka_topic_t *t, char *errbuf, size_t errsize)
{
    static const char *const suffix[2] = {"-key", "-value"};
    char subject[600], why[1024];
    for (int i = 0; i < 2; i++) {
        if (t->registered[i] || !t->json[i])
            continue;
        snprintf(subject, sizeof(subject), "%s%s", t->topic, suffix[i]);
        int rc = siphon_registry_register(snk->reg, subject, t->json[i], &t->id[i], why,
                                          sizeof(why));
        int64_t now = mono_ms();
        if (rc == SIPHON_ECONN) {
            snk->backoff_ms = snk->backoff_ms ? snk->backoff_ms * 2 : snk->backoff_initial_ms;
            if (snk->backoff_ms > snk->backoff_max_ms)
                snk->backoff_ms = snk->backoff_max_ms;
            snk->next_try_ms = now + snk->backoff_ms;
            if (!snk->holding || now - snk->last_warn_ms >= 30000) {
                siphon_log(SIPHON_LOG_WARNING, "registry",
                           "%s; events of topic %s are held (nothing after them is "
                           "acknowledged) and registration is retried in %d ms", why, t->topic,
                           snk->backoff_ms);
                snk->last_warn_ms = now;
            } else {
                siphon_log(SIPHON_LOG_DEBUG, "registry", "%s", why);
            }
            snk->holding = 1;
            return SIPHON_EAGAIN;
        }
        if (rc < 0)
            return siphon_err(errbuf, errsize, rc, "%s", why);
        t->registered[i] = 1;
        siphon_log(SIPHON_LOG_INFO, "registry", "subject %s: schema id %" PRIu32 "%s", subject,
                   t->id[i], snk->holding ? " (the Schema Registry answers again)" : "");
        snk->holding = 0;
        snk->backoff_ms = 0;
        snk->next_try_ms = 0;
    }
    return 0;
}

/* Record a topic's schemas; with format confluent, register them now (a registry that cannot
 * be reached leaves them pending: produce() retries). The strings are copied. */
static int kafka_register_schemas(siphon_sink_t *snk, const char *topic, uint64_t key_fp,
                                  const char *key_json, uint64_t value_fp,
                                  const char *value_json, char *errbuf, size_t errsize)
{
    if (!snk->reg)
        return 0; /* single-object encoding names its schema itself */
    for (int i = 0; i < snk->ntopics; i++)
        if (strcmp(snk->topics[i].topic, topic) == 0)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not register the schemas of topic %s: given twice (a bug)",
                              topic);
    kafka_topic_t *nt = realloc(snk->topics, (size_t)(snk->ntopics + 1) * sizeof(*nt));
    if (!nt)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    snk->topics = nt;
    snk->last = NULL;
    kafka_topic_t *t = &nt[snk->ntopics];
    memset(t, 0, sizeof(*t));
    t->fp[0] = key_fp;
    t->fp[1] = value_fp;
    if (!(t->topic = strdup(topic)) || (key_json && !(t->json[0] = strdup(key_json))) ||
        (value_json && !(t->json[1] = strdup(value_json)))) {
        free(t->topic);
        free(t->json[0]);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    snk->ntopics++;
    if (snk->holding)
        return 0; /* the registry just failed for an earlier topic: produce() retries them all */
    int rc = register_topic(snk, t, errbuf, errsize);
    return rc == SIPHON_EAGAIN ? 0 : rc;
}

static kafka_topic_t *find_topic(siphon_sink_t *snk, const char *topic)
{
    if (snk->last && strcmp(snk->last->topic, topic) == 0)
        return snk->last;
    for (int i = 0; i < snk->ntopics; i++)
        if (strcmp(snk->topics[i].topic, topic) == 0)
            return snk->last = &snk->topics[i];
    return NULL;
}

/* Re-frame one single-object-encoded part (0 key, 1 value) of a message for topic t. */
static int reframe(kafka_topic_t *t, int part, const void *msg, size_t len, siphon_buf_t *out,
                   char *errbuf, size_t errsize)
{
    uint64_t fp = 0;
    siphon_buf_reset(out);
    if (!siphon_avro_soe_fingerprint(msg, len, &fp) || fp != t->fp[part])
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not produce to topic %s: the %s is not single-object encoded "
                          "with the schema registered for the topic (fingerprint %016" PRIx64
                          ", expected %016" PRIx64 "; a bug)",
                          t->topic, part ? "value" : "key", fp, t->fp[part]);
    if (siphon_avro_soe_to_confluent(out, msg, len, t->id[part]) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    return 0;
}

/* Format confluent: the message with Confluent framing in snk->kbuf/vbuf, pointed at by *out. */
static int to_confluent(siphon_sink_t *snk, const siphon_sink_msg_t *msg, siphon_sink_msg_t *out,
                        char *errbuf, size_t errsize)
{
    kafka_topic_t *t = find_topic(snk, msg->topic);
    int rc;
    if (!t)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not produce to topic %s: its schemas were never registered "
                          "(a bug)", msg->topic);
    if (!t->registered[0] || !t->registered[1]) {
        if (mono_ms() < snk->next_try_ms)
            return SIPHON_EAGAIN;
        if ((rc = register_topic(snk, t, errbuf, errsize)) < 0)
            return rc;
    }
    *out = *msg;
    if (msg->key) {
        if ((rc = reframe(t, 0, msg->key, msg->klen, &snk->kbuf, errbuf, errsize)) < 0)
            return rc;
        out->key = snk->kbuf.data;
        out->klen = snk->kbuf.len;
    }
    if (msg->value) {
        if ((rc = reframe(t, 1, msg->value, msg->vlen, &snk->vbuf, errbuf, errsize)) < 0)
            return rc;
        out->value = snk->vbuf.data;
        out->vlen = snk->vbuf.len;
    }
    return 0;
}

static int kafka_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                         size_t errsize)
{
    rd_kafka_headers_t *hdrs = NULL;
    siphon_sink_msg_t framed;
    if (snk->reg) {
        int rc = to_confluent(snk, msg, &framed, errbuf, errsize);
        if (rc < 0)
            return rc;
        msg = &framed;
    }
    if (msg->nhdrs > 0) {
        hdrs = rd_kafka_headers_new((size_t)msg->nhdrs);
        for (int i = 0; i < msg->nhdrs; i++)
            rd_kafka_header_add(hdrs, msg->hdrs[i].name, -1, msg->hdrs[i].value,
                                (ssize_t)msg->hdrs[i].len);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        snk->rk, RD_KAFKA_V_TOPIC(msg->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)msg->key, msg->klen), RD_KAFKA_V_VALUE((void *)msg->value, msg->vlen),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg->opaque), RD_KAFKA_V_END);
    if (err) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken on failure */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return SIPHON_EAGAIN;
        return siphon_err(errbuf, errsize, SIPHON_EDELIVERY,
                          "could not produce to topic %s: %s", msg->topic, rd_kafka_err2str(err));
    }
    snk->inflight++;
    return 0;
}

static int kafka_poll(siphon_sink_t *snk, int timeout_ms)
{
    return rd_kafka_poll(snk->rk, timeout_ms);
}

/* Look the topics up now: otherwise librdkafka learns a new topic's partitions only on its next
 * periodic metadata scan (up to a second after the first produce). */
static void kafka_prepare(siphon_sink_t *snk, const char *const *topics, int ntopics)
{
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(snk->rk, topics[i], NULL);
        if (!rkt)
            continue;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(snk->rk, 0, rkt, &md, 2000);
        if (err)
            siphon_log(SIPHON_LOG_DEBUG, "kafka", "could not look up topic %s yet: %s", topics[i],
                       rd_kafka_err2str(err));
        else
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
}

static int kafka_flush(siphon_sink_t *snk, int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(snk->rk, timeout_ms);
    return err ? SIPHON_ETIMEDOUT : 0;
}

static long kafka_inflight(siphon_sink_t *snk) { return snk->inflight; }

static void kafka_close(siphon_sink_t *snk)
{
    if (!snk)
        return;
    if (snk->rk) {
        /* Undelivered messages are dropped here on purpose: their positions were never
         * acknowledged, so they are read from the source again after a restart. */
        rd_kafka_purge(snk->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        snk->cb = NULL;
        rd_kafka_destroy_flags(snk->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    for (int i = 0; i < snk->ntopics; i++) {
        free(snk->topics[i].topic);
        free(snk->topics[i].json[0]);
        free(snk->topics[i].json[1]);
    }
    free(snk->topics);
    siphon_registry_destroy(snk->reg);
    siphon_buf_free(&snk->kbuf);
    siphon_buf_free(&snk->vbuf);
    free(snk);
}

const siphon_sink_ops_t siphon_kafka_sink = {
    .type = "kafka",
    .wants_json = 0,
    .open = kafka_open,
    .prepare = kafka_prepare,
    .register_schemas = kafka_register_schemas,
    .produce = kafka_produce,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .inflight = kafka_inflight,
    .close = kafka_close,
};
