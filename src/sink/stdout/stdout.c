/*
 * stdout.c - the stdout sink: prints each message as one JSON line in the shape `siphon tail`
 * uses, {"topic":...,"key":{...},"event":{...}}, and reports it delivered once the line is
 * written and stdout flushed on the next poll. A tombstone prints "event":null.
 *
 * The event's JSON comes from the pipeline (wants_json). The key is decoded here with the
 * config's mappings (loaded on the first keyed message; the key's fingerprint picks the
 * stream); "key":null when it cannot be (no mappings in the config, unknown fingerprint).
 */
#include "sink/stdout/stdout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "avro/siphon_avro.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"

struct siphon_sink {
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    void **pending; /* opaques written, not yet reported */
    long npending, cap;
    char *mappings_dir, *schemas_dir;
    siphon_mapset_t *ms; /* for keys, loaded on first use */
    int loaded;
};

static int stdout_open(siphon_sink_t **out, const siphon_config_t *cfg,
                       siphon_sink_delivery_cb cb, void *cb_opaque, char *errbuf, size_t errsize)
{
    siphon_sink_t *snk = calloc(1, sizeof(*snk));
    if (!snk)
        return SIPHON_ENOMEM;
    snk->cb = cb;
    snk->cb_opaque = cb_opaque;
    if (cfg && cfg->mappings_dir && cfg->schemas_dir &&
        (!(snk->mappings_dir = strdup(cfg->mappings_dir)) ||
         !(snk->schemas_dir = strdup(cfg->schemas_dir)))) {
        free(snk->mappings_dir);
        free(snk);
        return SIPHON_ENOMEM;
    }
    *out = snk;
    return 0;
}

/* The key as JSON (caller frees), or NULL when it cannot be decoded. */
static char *decode_key(siphon_sink_t *snk, const void *key, size_t klen)
{
    const uint8_t *p = key;
    char err[512];
    if (!p || klen < SIPHON_AVRO_SOE_HEADER_LEN || p[0] != 0xC3 || p[1] != 0x01)
        return NULL;
    if (!snk->loaded) {
        snk->loaded = 1;
        if (snk->mappings_dir &&
            siphon_mapset_load(&snk->ms, snk->mappings_dir, snk->schemas_dir, err, sizeof(err)) < 0)
            siphon_log(SIPHON_LOG_WARNING, "stdout", "keys are printed as null: %s", err);
    }
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp |= (uint64_t)p[2 + i] << (8 * i);
    for (int i = 0; snk->ms && i < siphon_mapset_count(snk->ms); i++) {
        siphon_avro_stream_t *st = siphon_mapping_stream(siphon_mapset_get(snk->ms, i));
        char *json = NULL;
        if (siphon_avro_stream_key_fingerprint(st) == fp &&
            siphon_avro_stream_decode_json(&json, st, 1, key, klen, err, sizeof(err)) == 0)
            return json;
    }
    return NULL;
}

static int stdout_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                          size_t errsize)
{
    if (snk->npending == snk->cap) {
        long ncap = snk->cap ? snk->cap * 2 : 256;
        void **p = realloc(snk->pending, (size_t)ncap * sizeof(*p));
        if (!p)
            return SIPHON_ENOMEM;
        snk->pending = p;
        snk->cap = ncap;
    }
    if (!msg->value || msg->json) {
        json_t *t = json_string(msg->topic ? msg->topic : "");
        char *topic = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL;
        char *key = decode_key(snk, msg->key, msg->klen);
        int rc = fprintf(stdout, "{\"topic\":%s,\"key\":%s,\"event\":%s}\n",
                         topic ? topic : "null", key ? key : "null",
                         msg->value ? msg->json : "null");
        free(key);
        free(topic);
        json_decref(t);
        if (rc < 0)
            return siphon_err(errbuf, errsize, SIPHON_EIO, "could not write to stdout");
    }
    snk->pending[snk->npending++] = msg->opaque;
    return 0;
}

static int stdout_poll(siphon_sink_t *snk, int timeout_ms)
{
    if (snk->npending == 0)
        return 0;
    if (fflush(stdout) != 0)
        return 0; /* not delivered: the position does not move */
    long n = snk->npending;
    snk->npending = 0;
    for (long i = 0; i < n; i++)
        snk->cb(snk->pending[i], 0, NULL, snk->cb_opaque);
    return (int)n;
}

static int stdout_flush(siphon_sink_t *snk, int timeout_ms)
{
    stdout_poll(snk, 0);
    return snk->npending ? SIPHON_ETIMEDOUT : 0;
}

static long stdout_inflight(siphon_sink_t *snk) { return snk->npending; }

static void stdout_close(siphon_sink_t *snk)
{
    if (!snk)
        return;
    siphon_mapset_destroy(snk->ms);
    free(snk->mappings_dir);
    free(snk->schemas_dir);
    free(snk->pending);
    free(snk);
}

const siphon_sink_ops_t siphon_stdout_sink = {
    .type = "stdout",
    .wants_json = 1,
    .open = stdout_open,
    .produce = stdout_produce,
    .poll = stdout_poll,
    .flush = stdout_flush,
    .inflight = stdout_inflight,
    .close = stdout_close,
};
