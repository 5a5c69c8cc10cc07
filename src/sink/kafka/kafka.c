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
 * librdkafka's logs and errors go to siphon_log.
 *
 * Threads. librdkafka's per-message work (rd_kafka_producev: a copy of key and value, the
 * headers' allocations, the partitioner) and the delivery reports (freeing all of it) ran on
 * the pipeline thread and were a third of it. They run on a sink thread of ours instead:
 * kafka_produce() (pipeline thread) copies the message into a byte ring (ring_put) and
 * returns; sink_main() takes the messages in order, hands them to rd_kafka_producev() and
 * serves the delivery reports with rd_kafka_poll(), so dr_msg_cb() and with it the pipeline's
 * callback run on the sink thread. The same thread allocating and freeing librdkafka's
 * messages matters: a message freed by another thread than the one that allocated it costs
 * glibc's allocator as much again (tried: serving reports on librdkafka's background thread
 * made the pipeline thread's mallocs that much slower). Order per key holds: one thread
 * produces, in ring order; a message too big for the ring goes to rd_kafka_producev() from
 * the pipeline thread, but only once the ring is empty. The ring is bounded (RING_BYTES): when
 * it is full, kafka_produce() answers SIPHON_EAGAIN like librdkafka's full queue, and
 * kafka_poll() waits (a condition variable) until the sink thread has moved on; the pipeline's
 * memory bound stays librdkafka's queue plus the ring. The sink thread waits in poll(2) on an
 * eventfd that librdkafka writes when a report arrives (rd_kafka_queue_io_event_enable) and
 * that kafka_produce() writes when the ring gets a message while the thread sleeps for good
 * (DEEP); while messages keep coming it only naps (NAP_MS) and wakes by itself.
 * Ownership: the ring's free bytes (from tail to head + RING_BYTES), topic handles' creation,
 * the registry state, `produced` and tail_own belong to the pipeline thread; the written bytes
 * (head to tail) to the sink thread until it moves head past them; everything librdkafka calls
 * back (dr_msg_cb, error_cb) runs on the sink thread, which owns all_brokers_down_logged;
 * head, tail, stop, sleeping, waiters, progress and reported are atomics (seq_cst where a
 * sleeper and a waker must not miss each other: each stores its own flag, then loads the
 * other's). kafka_close() stops and joins the sink thread before it purges and destroys.
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

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/clock.h"
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

/* The ring between the pipeline thread and the sink thread. A message bigger than
 * DIRECT_BYTES (or with more than MAX_HDRS headers) is produced by the pipeline thread. */
enum { RING_BYTES = 2 << 20, DIRECT_BYTES = RING_BYTES / 8, MAX_HDRS = 16, REC_WRAP = 1 };

/* How the sink thread waits when the ring is empty (snk->sleeping). NAP: at most NAP_MS, so a
 * message written meanwhile needs no wake-up (a syscall per message in a trickle of small
 * transactions cost more than the thread saved); after IDLE_NAPS naps without a message,
 * DEEP: until woken by kafka_produce() (or a report, or a second). */
enum { AWAKE = 0, NAP = 1, DEEP = 2, NAP_MS = 1, IDLE_NAPS = 50 };

/* A message in the ring: this, then the key, the value, and per header its name length (u32),
 * its value length (u32, UINT32_MAX for NULL), name and value. size covers it all, 8-aligned.
 * A REC_WRAP record (only size and flags) fills the end of the ring: go on at its start. */
typedef struct ring_rec {
    uint32_t size;
    uint32_t flags;
    rd_kafka_topic_t *rkt;
    void *opaque;
    uint32_t klen, vlen;
    int32_t nhdrs;
    uint8_t has_key, has_value;
} ring_rec_t;

/* A topic handle (RD_KAFKA_V_RKT spares librdkafka a look-up by name per message). */
typedef struct kafka_rkt {
    char *name;
    rd_kafka_topic_t *rkt;
} kafka_rkt_t;

struct siphon_sink {
    rd_kafka_t *rk;
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    long produced;                /* messages taken (pipeline thread) */
    atomic_long reported;         /* messages reported delivered or failed (written by the
                                     sink thread only: count_report()) */
    int all_brokers_down_logged;  /* sink thread */

    /* the ring and the sink thread */
    unsigned char *ring;          /* RING_BYTES */
    uint64_t tail_own;            /* the pipeline thread's copy of tail */
    uint64_t head_seen;           /* head as the pipeline thread last read it (stale: less
                                     room than there is, never more) */
    _Atomic uint64_t head;        /* bytes the sink thread has produced (monotonic) */
    _Atomic uint64_t tail;        /* bytes the pipeline thread has written (monotonic) */
    atomic_int stop;              /* kafka_close(): the sink thread ends */
    atomic_int sleeping;          /* AWAKE, NAP or DEEP: how the sink thread waits on efd */
    int efd;                      /* eventfd: librdkafka's report queue and kafka_produce() */
    pthread_t thr;
    int thr_started;

    /* kafka_poll() waiting for the sink thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_init;
    _Atomic uint64_t progress;    /* bumped by the sink thread when it moved (reports, ring) */
    atomic_int waiters;           /* kafka_poll() is (about to be) waiting on cv */
    uint64_t seen_progress;       /* pipeline thread */
    long seen_reported;           /* pipeline thread */

    kafka_rkt_t *rkts;            /* pipeline thread creates, sink thread uses the handles */
    int nrkts, last_rkt;
    siphon_buf_t big;             /* a message produced by the pipeline thread itself */

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

/* One more message reported (sink thread, the only writer: no read-modify-write needed). */
static void count_report(siphon_sink_t *snk)
{
    long n = atomic_load_explicit(&snk->reported, memory_order_relaxed);
    atomic_store_explicit(&snk->reported, n + 1, memory_order_relaxed);
}

/* On the sink thread (rd_kafka_poll in sink_main). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    siphon_sink_t *snk = opaque;
    count_report(snk);
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

/* ---- the sink thread ---- */

/* Tell kafka_poll() that the sink thread moved (reports served, ring room made). */
static void progress(siphon_sink_t *snk)
{
    atomic_fetch_add(&snk->progress, 1);
    if (atomic_load(&snk->waiters)) {
        pthread_mutex_lock(&snk->mu);
        pthread_cond_broadcast(&snk->cv);
        pthread_mutex_unlock(&snk->mu);
    }
}

static void wake(siphon_sink_t *snk)
{
    uint64_t one = 1;
    ssize_t n = write(snk->efd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, the thread wakes anyway */
}

/* Produce the message of record r (its bytes are copied). */
static rd_kafka_resp_err_t send_rec(siphon_sink_t *snk, const ring_rec_t *r)
{
    const char *p = (const char *)(r + 1);
    const char *key = p, *value = p + r->klen;
    rd_kafka_headers_t *hdrs = NULL;
    p += r->klen + r->vlen;
    if (r->nhdrs > 0) {
        hdrs = rd_kafka_headers_new((size_t)r->nhdrs);
        for (int i = 0; i < r->nhdrs; i++) {
            uint32_t nl, vl;
            memcpy(&nl, p, 4);
            memcpy(&vl, p + 4, 4);
            const char *name = p + 8, *v = vl == UINT32_MAX ? NULL : name + nl;
            rd_kafka_header_add(hdrs, name, (ssize_t)nl, v, v ? (ssize_t)vl : 0);
            p = name + nl + (v ? vl : 0);
        }
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        snk->rk, RD_KAFKA_V_RKT(r->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(r->has_key ? (void *)key : NULL, r->klen),
        RD_KAFKA_V_VALUE(r->has_value ? (void *)value : NULL, r->vlen), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(r->opaque), RD_KAFKA_V_END);
    if (err && hdrs)
        rd_kafka_headers_destroy(hdrs); /* not taken on failure */
    return err;
}

/* librdkafka refused a message for good (too large, fatal producer state): a failed delivery,
 * reported like one (sink thread). */
static void fail_rec(siphon_sink_t *snk, const ring_rec_t *r, rd_kafka_resp_err_t err)
{
    char why[512];
    snprintf(why, sizeof(why), "could not produce to topic %s: %s", rd_kafka_topic_name(r->rkt),
             rd_kafka_err2str(err));
    count_report(snk);
    snk->cb(r->opaque, SIPHON_EDELIVERY, why, snk->cb_opaque);
}

/* Serve the delivery reports waiting (or, with timeout_ms, the first to come); tell poll. */
static void serve_reports(siphon_sink_t *snk, int timeout_ms)
{
    if (rd_kafka_poll(snk->rk, timeout_ms) > 0)
        progress(snk);
}

static void *sink_main(void *arg)
{
    siphon_sink_t *snk = arg;
    uint64_t h = atomic_load(&snk->head);
    int naps = 0;
    while (!atomic_load(&snk->stop)) {
        uint64_t t = atomic_load_explicit(&snk->tail, memory_order_acquire);
        long moved = 0;
        while (h != t && !atomic_load_explicit(&snk->stop, memory_order_relaxed)) {
            const ring_rec_t *r = (const ring_rec_t *)(snk->ring + h % RING_BYTES);
            if (!(r->flags & REC_WRAP)) {
                rd_kafka_resp_err_t err = send_rec(snk, r);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    serve_reports(snk, 10); /* room comes with the reports */
                    continue;
                }
                if (err)
                    fail_rec(snk, r, err);
            }
            h += r->size;
            atomic_store_explicit(&snk->head, h, memory_order_release); /* r is done with */
            if (++moved % 256 == 0) {
                serve_reports(snk, 0);
                progress(snk); /* ring room for a kafka_produce() that got SIPHON_EAGAIN */
            }
        }
        serve_reports(snk, 0);
        if (moved) {
            progress(snk);
            naps = 0;
        }
        if (h != atomic_load(&snk->tail))
            continue;
        /* nothing to produce: wait for a report or a message (see NAP and DEEP) */
        int deep = naps >= IDLE_NAPS;
        atomic_store(&snk->sleeping, deep ? DEEP : NAP);
        if (h == atomic_load(&snk->tail) && !atomic_load(&snk->stop)) {
            struct pollfd pfd = {.fd = snk->efd, .events = POLLIN};
            if (poll(&pfd, 1, deep ? 1000 : NAP_MS) > 0) {
                uint64_t cnt;
                ssize_t n = read(snk->efd, &cnt, sizeof(cnt));
                (void)n;
            }
        }
        atomic_store(&snk->sleeping, AWAKE);
        naps++;
    }
    return NULL;
}

/* The eventfd, librdkafka's report queue writing to it, the wait primitives, the ring. */
static int sink_sync_init(siphon_sink_t *snk)
{
    snk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (snk->efd < 0 || siphon_clock_cond_init(&snk->cv) != 0)
        return SIPHON_ENOMEM;
    if (pthread_mutex_init(&snk->mu, NULL) != 0) {
        pthread_cond_destroy(&snk->cv);
        return SIPHON_ENOMEM;
    }
    snk->sync_init = 1;
    if (!(snk->ring = malloc(RING_BYTES)))
        return SIPHON_ENOMEM;
    return 0;
}

/* Start the sink thread, with every signal blocked (the main thread handles them). */
static int sink_thread_start(siphon_sink_t *snk, char *errbuf, size_t errsize)
{
    static const uint64_t one = 1;
    rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(snk->rk);
    if (!mainq)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    rd_kafka_queue_io_event_enable(mainq, snk->efd, &one, sizeof(one));
    rd_kafka_queue_destroy(mainq);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&snk->thr, NULL, sink_main, snk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not start the Kafka sink "
                          "thread: %s", strerror(rc));
    snk->thr_started = 1;
    pthread_setname_np(snk->thr, "siphon:sink"); /* for top -H and perf; failure is harmless */
    return 0;
}

/* Stop and join the sink thread (what is still in the ring is dropped: never acknowledged),
 * then stop librdkafka writing to the eventfd. */
static void sink_thread_stop(siphon_sink_t *snk)
{
    if (snk->thr_started) {
        atomic_store(&snk->stop, 1);
        wake(snk);
        pthread_join(snk->thr, NULL);
        snk->thr_started = 0;
    }
    rd_kafka_queue_t *mainq = snk->rk ? rd_kafka_queue_get_main(snk->rk) : NULL;
    if (mainq) {
        rd_kafka_queue_io_event_enable(mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(mainq);
    }
}

/* Everything sink_sync_init() made; after rd_kafka_destroy(). */
static void sink_sync_free(siphon_sink_t *snk)
{
    if (snk->sync_init) {
        pthread_mutex_destroy(&snk->mu);
        pthread_cond_destroy(&snk->cv);
    }
    if (snk->efd >= 0)
        close(snk->efd);
    free(snk->ring);
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
    snk->efd = -1;
    if ((rc = sink_sync_init(snk)) < 0) {
        rc = siphon_err(errbuf, errsize, rc, "could not create Kafka producer: out of memory or "
                        "file descriptors (eventfd)");
        goto err;
    }

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
    if ((rc = sink_thread_start(snk, errbuf, errsize)) < 0)
        goto err;
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
    if (snk && snk->rk) {
        sink_thread_stop(snk);
        rd_kafka_destroy(snk->rk);
    }
    if (snk)
        sink_sync_free(snk);
    free(snk);
    return rc ? rc : SIPHON_EINVAL;
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
        int64_t now = siphon_clock_now_ms();
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
        if (siphon_clock_now_ms() < snk->next_try_ms)
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

/* The handle of topic (created at its first message; pipeline thread). NULL: out of memory. */
static rd_kafka_topic_t *topic_handle(siphon_sink_t *snk, const char *topic)
{
    if (snk->nrkts && strcmp(snk->rkts[snk->last_rkt].name, topic) == 0)
        return snk->rkts[snk->last_rkt].rkt;
    for (int i = 0; i < snk->nrkts; i++)
        if (strcmp(snk->rkts[i].name, topic) == 0) {
            snk->last_rkt = i;
            return snk->rkts[i].rkt;
        }
    kafka_rkt_t *n = realloc(snk->rkts, (size_t)(snk->nrkts + 1) * sizeof(*n));
    if (!n)
        return NULL;
    snk->rkts = n;
    kafka_rkt_t *t = &n[snk->nrkts];
    if (!(t->name = strdup(topic)))
        return NULL;
    if (!(t->rkt = rd_kafka_topic_new(snk->rk, topic, NULL))) {
        free(t->name);
        return NULL;
    }
    snk->last_rkt = snk->nrkts++;
    return t->rkt;
}

/* The bytes msg takes as a ring record; the header name lengths in nlen. */
static size_t rec_size(const siphon_sink_msg_t *msg, uint32_t *nlen)
{
    size_t n = sizeof(ring_rec_t) + (msg->key ? msg->klen : 0) + (msg->value ? msg->vlen : 0);
    for (int i = 0; i < msg->nhdrs; i++) {
        nlen[i] = (uint32_t)strlen(msg->hdrs[i].name);
        n += 8 + nlen[i] + (msg->hdrs[i].value ? msg->hdrs[i].len : 0);
    }
    return (n + 7) & ~(size_t)7;
}

/* Write msg as a record of size bytes at dst. */
static void rec_write(unsigned char *dst, size_t size, const siphon_sink_msg_t *msg,
                      rd_kafka_topic_t *rkt, const uint32_t *nlen)
{
    ring_rec_t *r = (ring_rec_t *)dst;
    *r = (ring_rec_t){
        .size = (uint32_t)size,
        .rkt = rkt,
        .opaque = msg->opaque,
        .klen = msg->key ? (uint32_t)msg->klen : 0,
        .vlen = msg->value ? (uint32_t)msg->vlen : 0,
        .nhdrs = msg->nhdrs > 0 ? msg->nhdrs : 0,
        .has_key = msg->key != NULL,
        .has_value = msg->value != NULL,
    };
    unsigned char *p = (unsigned char *)(r + 1);
    if (r->klen)
        memcpy(p, msg->key, r->klen);
    p += r->klen;
    if (r->vlen)
        memcpy(p, msg->value, r->vlen);
    p += r->vlen;
    for (int i = 0; i < r->nhdrs; i++) {
        const siphon_sink_header_t *h = &msg->hdrs[i];
        uint32_t vl = h->value ? (uint32_t)h->len : UINT32_MAX;
        memcpy(p, &nlen[i], 4);
        memcpy(p + 4, &vl, 4);
        memcpy(p + 8, h->name, nlen[i]);
        p += 8 + nlen[i];
        if (h->value) {
            memcpy(p, h->value, h->len);
            p += h->len;
        }
    }
}

/* Append a record to the ring for the sink thread. SIPHON_EAGAIN when it has no room. */
static int ring_put(siphon_sink_t *snk, const siphon_sink_msg_t *msg, rd_kafka_topic_t *rkt,
                    size_t size, const uint32_t *nlen)
{
    uint64_t t = snk->tail_own;
    size_t off = (size_t)(t % RING_BYTES);
    size_t pad = off + size > RING_BYTES ? RING_BYTES - off : 0;
    if (t + pad + size - snk->head_seen > RING_BYTES) {
        /* head is read only when the room seen so far is not enough: its cache line stays
         * with the sink thread */
        snk->head_seen = atomic_load_explicit(&snk->head, memory_order_acquire);
        if (t + pad + size - snk->head_seen > RING_BYTES)
            return SIPHON_EAGAIN;
    }
    if (pad) {
        ring_rec_t *w = (ring_rec_t *)(snk->ring + off);
        w->size = (uint32_t)pad;
        w->flags = REC_WRAP;
        t += pad;
        off = 0;
    }
    rec_write(snk->ring + off, size, msg, rkt, nlen);
    snk->tail_own = t + size;
    atomic_store(&snk->tail, snk->tail_own);
    int sleeping = atomic_load(&snk->sleeping);
    if (sleeping == NAP)
        snk->head_seen = atomic_load_explicit(&snk->head, memory_order_acquire);
    if (sleeping == DEEP || (sleeping == NAP && snk->tail_own - snk->head_seen > RING_BYTES / 8))
        wake(snk);
    return 0;
}

/* A message too big for the ring: produced from this thread once the ring is empty (so it
 * stays behind every message before it). */
static int produce_direct(siphon_sink_t *snk, const siphon_sink_msg_t *msg,
                          rd_kafka_topic_t *rkt, size_t size, const uint32_t *nlen,
                          char *errbuf, size_t errsize)
{
    if (snk->tail_own != atomic_load(&snk->head))
        return SIPHON_EAGAIN; /* kafka_poll() wakes when the sink thread moves */
    siphon_buf_reset(&snk->big);
    if (siphon_buf_reserve(&snk->big, size) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    rec_write(snk->big.data, size, msg, rkt, nlen);
    rd_kafka_resp_err_t err = send_rec(snk, (const ring_rec_t *)snk->big.data);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return SIPHON_EAGAIN;
    if (err)
        return siphon_err(errbuf, errsize, SIPHON_EDELIVERY,
                          "could not produce to topic %s: %s", msg->topic, rd_kafka_err2str(err));
    return 0;
}

static int kafka_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                         size_t errsize)
{
    siphon_sink_msg_t framed;
    uint32_t nlen[MAX_HDRS];
    int rc;
    if (snk->reg) {
        if ((rc = to_confluent(snk, msg, &framed, errbuf, errsize)) < 0)
            return rc;
        msg = &framed;
    }
    rd_kafka_topic_t *rkt = topic_handle(snk, msg->topic);
    if (!rkt)
        return siphon_err(errbuf, errsize, SIPHON_EDELIVERY,
                          "could not produce to topic %s: %s", msg->topic,
                          rd_kafka_err2str(rd_kafka_last_error()));
    if (msg->nhdrs > MAX_HDRS)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not produce to topic %s: %d headers, at most %d (a bug)",
                          msg->topic, msg->nhdrs, MAX_HDRS);
    size_t size = rec_size(msg, nlen);
    rc = size > DIRECT_BYTES ? produce_direct(snk, msg, rkt, size, nlen, errbuf, errsize)
                             : ring_put(snk, msg, rkt, size, nlen);
    if (rc == 0)
        snk->produced++;
    return rc;
}

/* Wait (at most timeout_ms; forever when negative) until the sink thread has moved since the
 * last call: served reports or made room in the ring. Returns the reports since the last call. */
static int kafka_poll(siphon_sink_t *snk, int timeout_ms)
{
    if (atomic_load(&snk->progress) == snk->seen_progress && timeout_ms != 0) {
        struct timespec until = siphon_clock_abs_after(timeout_ms);
        pthread_mutex_lock(&snk->mu);
        atomic_store(&snk->waiters, 1);
        while (atomic_load(&snk->progress) == snk->seen_progress) {
            int rc = timeout_ms < 0 ? pthread_cond_wait(&snk->cv, &snk->mu)
                                    : pthread_cond_timedwait(&snk->cv, &snk->mu, &until);
            if (rc == ETIMEDOUT)
                break;
        }
        atomic_store(&snk->waiters, 0);
        pthread_mutex_unlock(&snk->mu);
    }
    snk->seen_progress = atomic_load(&snk->progress);
    long r = atomic_load(&snk->reported), n = r - snk->seen_reported;
    snk->seen_reported = r;
    return n > INT32_MAX ? INT32_MAX : (int)n;
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

/* Messages taken and not yet reported (pipeline thread: it counts produced). */
static long kafka_inflight(siphon_sink_t *snk)
{
    return snk->produced - atomic_load(&snk->reported);
}

/* Wait until the sink thread has produced everything and every report was served. */
static int kafka_flush(siphon_sink_t *snk, int timeout_ms)
{
    int64_t deadline = siphon_clock_now_ms() + timeout_ms;
    while (kafka_inflight(snk) > 0) {
        int64_t left = deadline - siphon_clock_now_ms();
        if (left <= 0)
            return SIPHON_ETIMEDOUT;
        kafka_poll(snk, left < 100 ? (int)left : 100);
    }
    return 0;
}

static void kafka_close(siphon_sink_t *snk)
{
    if (!snk)
        return;
    if (snk->rk) {
        /* Undelivered messages are dropped here on purpose: their positions were never
         * acknowledged, so they are read from the source again after a restart. The sink
         * thread is gone first: nothing calls back into the pipeline after this line. */
        sink_thread_stop(snk);
        rd_kafka_purge(snk->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        snk->cb = NULL;
        for (int i = 0; i < snk->nrkts; i++) {
            rd_kafka_topic_destroy(snk->rkts[i].rkt);
            free(snk->rkts[i].name);
        }
        rd_kafka_destroy_flags(snk->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    free(snk->rkts);
    siphon_buf_free(&snk->big);
    sink_sync_free(snk);
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
