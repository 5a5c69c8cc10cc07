/*
 * sink.h - the interface every sink implements (Kafka, Avro container files, stdout).
 *
 * A sink takes encoded messages asynchronously and reports each one delivered or failed through
 * the delivery callback. The pipeline passes an opaque per message (its position-tracker entry)
 * and gets it back in the report. A sink reports either from inside poll() or flush() on the
 * caller's thread (file, stdout), or from a thread of its own (Kafka: a sink thread that hands
 * the messages to librdkafka and serves its reports, off the pipeline thread); then poll()
 * only waits until that thread has moved (reports made, room in its queue). Either way one
 * thread at a time calls the callback, a report may come as soon as produce() has taken the
 * message (even before it returns), and the callback must be safe against the caller's
 * thread.
 * A failure the sink has given up on (retries exhausted, message too large) is final: the
 * pipeline stops without acknowledging anything past it.
 */
#ifndef SIPHON_SINK_H
#define SIPHON_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct siphon_sink siphon_sink_t;

typedef struct siphon_sink_header {
    const char *name;
    const void *value;
    size_t len;
} siphon_sink_header_t;

typedef struct siphon_sink_msg {
    const char *topic;       /* full topic name */
    const void *key;
    size_t klen;
    const void *value;       /* NULL for a tombstone */
    size_t vlen;
    const siphon_sink_header_t *hdrs;
    int nhdrs;
    const char *json;        /* the event as JSON, for sinks that print (NULL when not built) */
    void *opaque;            /* returned in the delivery report */
} siphon_sink_msg_t;

/* err is 0 on success, else a negative SIPHON_E* with errstr saying why (borrowed). */
typedef void (*siphon_sink_delivery_cb)(void *msg_opaque, int err, const char *errstr,
                                        void *cb_opaque);

typedef struct siphon_sink_ops {
    const char *type; /* "kafka" */

    /* Needs JSON renderings of events from the pipeline (the stdout sink does). */
    int wants_json;

    int (*open)(siphon_sink_t **out, const siphon_config_t *cfg, siphon_sink_delivery_cb cb,
                void *cb_opaque, char *errbuf, size_t errsize);

    /* Optional (may be NULL): the topics this run will produce to, called once after open(), so
     * the sink can look them up before the first event instead of on its first produce. Failures
     * are not errors (the sink retries later). */
    void (*prepare)(siphon_sink_t *snk, const char *const *topics, int ntopics);

    /* Optional (may be NULL): the schemas of a stream, called once per topic after open() and
     * before the first produce (sinks that write self-describing files need them: the file
     * sink). A message's key and value are single-object encoded; their fingerprints name
     * these schemas. The strings are copied. 0, or a negative SIPHON_E* code with errbuf
     * saying why (fatal). */
    int (*register_schemas)(siphon_sink_t *snk, const char *topic, uint64_t key_fingerprint,
                            const char *key_schema_json, uint64_t value_fingerprint,
                            const char *value_schema_json, char *errbuf, size_t errsize);

    /* Queue a message; key, value and headers are copied. SIPHON_EAGAIN when the local queue is
     * full (poll and try again); other errors are fatal. */
    int (*produce)(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                   size_t errsize);

    /* Serve delivery reports (or, for a sink that reports from its own thread, take note of
     * those it made since the last call), waiting up to timeout_ms for one (or, for that sink,
     * for room in its queue). Returns how many reports. */
    int (*poll)(siphon_sink_t *snk, int timeout_ms);

    /* Wait until everything queued has been reported, at most timeout_ms. 0 or SIPHON_ETIMEDOUT. */
    int (*flush)(siphon_sink_t *snk, int timeout_ms);

    /* Messages queued and not yet reported. */
    long (*inflight)(siphon_sink_t *snk);

    void (*close)(siphon_sink_t *snk); /* accepts NULL; does not flush */
} siphon_sink_ops_t;

#endif
