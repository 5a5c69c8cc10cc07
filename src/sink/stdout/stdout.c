/*
 * stdout.c - the stdout sink: prints each event as one JSON line ({"topic":..., "event":...})
 * and reports it delivered once the line is written and stdout flushed on the next poll.
 * Tombstones are not printed (they carry no event) but are reported delivered.
 */
#include "sink/stdout/stdout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct siphon_sink {
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    void **pending; /* opaques written, not yet reported */
    long npending, cap;
};

static int stdout_open(siphon_sink_t **out, const siphon_config_t *cfg,
                       siphon_sink_delivery_cb cb, void *cb_opaque, char *errbuf, size_t errsize)
{
    siphon_sink_t *snk = calloc(1, sizeof(*snk));
    if (!snk)
        return SIPHON_ENOMEM;
    snk->cb = cb;
    snk->cb_opaque = cb_opaque;
    *out = snk;
    return 0;
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
    if (msg->value && msg->json) {
        if (fprintf(stdout, "{\"topic\":\"%s\",\"event\":%s}\n", msg->topic, msg->json) < 0)
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
