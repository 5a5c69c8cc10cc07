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
 */
#include "sink/kafka/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/error.h"
#include "core/log.h"

struct siphon_sink {
    rd_kafka_t *rk;
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    long inflight;
    int all_brokers_down_logged;
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
    *out = snk;
    return 0;
err:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(snk);
    return rc ? rc : SIPHON_EINVAL;
}

static int kafka_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                         size_t errsize)
{
    rd_kafka_headers_t *hdrs = NULL;
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
    free(snk);
}

const siphon_sink_ops_t siphon_kafka_sink = {
    .type = "kafka",
    .wants_json = 0,
    .open = kafka_open,
    .prepare = kafka_prepare,
    .produce = kafka_produce,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .inflight = kafka_inflight,
    .close = kafka_close,
};
