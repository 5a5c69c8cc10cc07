/*
 * pipeline.c - the loop: source batch -> mappings -> Avro -> sink -> tracker -> acknowledgement.
 *
 * States of a run, with the function that moves between them:
 *
 *   LOADING  --[pipe_start: mappings, offsets, sink, source open, bind]--> STREAMING
 *   STREAMING --[*stop set]--> DRAINING --[pipe_drain: sink reports all, final ack+store]--> DONE
 *   STREAMING --[fatal delivery or source error]--> FAILED (nothing past the last delivered
 *                                                   position is acknowledged; exit non-zero)
 *
 * The acknowledgement rule (DESIGN.md): a message's opaque is the tracker seq of its
 * transaction; the acknowledged position only moves when the tracker's completed prefix grows,
 * and only then is it sent to the source and (at most every flush_interval_ms, and at the end)
 * written to the offsets file.
 *
 * Dead letters: a row a mapping cannot convert (on_error: dead_letter, the default) becomes a
 * siphon.DeadLetter record on <topic_prefix>._dlq, produced exactly where the entity event
 * would have been (same transaction, same tracker seq, next event index), so it counts as an
 * event: the transaction's position is acknowledged only once the dead letter is delivered
 * too. on_error: fail stops the run with the change's transaction unacknowledged; on_error:
 * null nulls the field and logs a warning.
 *
 * Transaction metadata (pipeline.transactions: true; docs/events.md): a source transaction
 * with at least one event gets a BEGIN event on <topic_prefix>._transactions, produced just
 * before its first event (so a transaction whose rows are all filtered out publishes
 * nothing), every change event carries {id, total_order, data_collection_order} in its
 * envelope's transaction field, and at COMMIT an END event with the counts (per topic, and
 * dead letters) is produced after all of them. BEGIN and END belong to the transaction's
 * tracker entry like its change events: the position is acknowledged only once they are
 * delivered too. Snapshot reads (op r, chunked in their own BEGIN/COMMIT) and changes outside
 * any BEGIN/COMMIT carry no metadata: a snapshot chunk is not a source transaction. Dead
 * letters keep their own fixed schema (no transaction block); END counts them.
 *
 * Threads. Everything above runs on the pipeline thread, except on_delivery(): the Kafka sink
 * calls it from its own sink thread (src/sink/kafka/kafka.c; the file and stdout sinks from
 * poll() on this one). It touches only the tracker (locked inside), the delivered counter and the fatal flag
 * and message (atomics: the first failure claims the message, writes it, then raises the flag
 * with release order, so whoever sees the flag reads a complete message). The pipeline thread
 * does not lock per event: produce() counts the events of the open entry in p->unadded and
 * add_pending() hands the count to the tracker in one call, before the entry is closed and at
 * every advance(); a delivery that overtakes the count only takes the OPEN entry below zero
 * (tracker.c), which can never acknowledge anything. Where the loop waits for deliveries (a
 * full sink queue in produce(), the drain) kops->poll() blocks until the sink has moved
 * (reports served, room made), so waiting costs nothing and wakes as soon as there is room.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "pipeline/pipeline.h"

typedef struct pipe {
    const siphon_config_t *cfg;
    const siphon_source_ops_t *sops;
    siphon_source_t *src;
    const siphon_sink_ops_t *kops;
    siphon_sink_t *snk;
    siphon_mapset_t *ms;
    siphon_tracker_t *trk;
    volatile sig_atomic_t *stop;

    char **topics;           /* per mapping index, then the dead-letter topic, then the
                                transactions topic (NULL when transactions are off) */
    char (*fphex)[17];       /* per mapping index: its value schema's fingerprint in hex (the
                                siphon.schema_fingerprint header), formatted once */
    siphon_dlq_t *dlq;
    uint64_t warned;         /* warnings logged (the first ones, then one in 1000) */

    /* the transaction being read */
    uint64_t cur_seq;        /* 0: none open */
    uint64_t txid;
    int64_t commit_ts_us;
    char txpos[256];         /* commit position of the open transaction, as text */
    uint32_t change_idx;
    uint32_t sub_idx;        /* events already emitted for this change to the same stream */
    const siphon_change_t *chg; /* the change being mapped */

    /* transaction metadata (cfg->pipeline.transactions) */
    siphon_avro_txn_stream_t *txs; /* NULL when off */
    int in_txn;              /* the open entry was opened by a source BEGIN */
    int tx_begun;            /* its BEGIN event was produced */
    int64_t tx_total;        /* its change events so far */
    int64_t tx_dead;         /* its dead letters so far */
    int64_t *tx_counts;      /* its change events so far per mapping index */
    siphon_avro_txn_count_t *tx_countv; /* END's per-topic counts (scratch) */
    siphon_buf_t tkbuf, tvbuf;

    siphon_buf_t kbuf, vbuf;
    char errbuf[1024];

    atomic_int fatal;        /* a delivery failed: stop (set last, with release order) */
    atomic_int fatal_claimed; /* the first failure writes fatal_msg */
    char fatal_msg[1024];
    atomic_uint_fast64_t delivered; /* reported delivered (st.delivered at the end) */
    uint64_t unadded;        /* events produced into cur_seq not yet added to the tracker */

    siphon_pos_t acked;
    int have_acked, dirty;
    int64_t last_store_ms, last_report_ms;
    uint64_t last_report_events;

    siphon_pipeline_stats_t st;
} pipe_t;

static int advance(struct pipe *p, int force);

/* v in decimal at out (no terminator); returns the number of digits (at most 10). */
static size_t fmt_u32(char *out, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* v as 16 lower-case hex digits and a terminator, as "%016" PRIx64 prints it. */
static void fmt_hex64(char out[17], uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    out[16] = '\0';
}
static void next_event_id(struct pipe *p, char *event_id, size_t size);
static int txn_begin_if_needed(pipe_t *p);

static int64_t now_us_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The sink's delivery callback: on the sink's reporting thread (see Threads above). */
static void on_delivery(void *msg_opaque, int err, const char *errstr, void *cb_opaque)
{
    pipe_t *p = cb_opaque;
    if (err) {
        /* Fatal for the position: never decrement, never skip. */
        int unclaimed = 0;
        if (atomic_compare_exchange_strong(&p->fatal_claimed, &unclaimed, 1)) {
            snprintf(p->fatal_msg, sizeof(p->fatal_msg), "%s", errstr ? errstr : "delivery failed");
            atomic_store_explicit(&p->fatal, 1, memory_order_release);
        }
        return;
    }
    siphon_tracker_delivered(p->trk, (uint64_t)(uintptr_t)msg_opaque);
    atomic_fetch_add_explicit(&p->delivered, 1, memory_order_relaxed);
}

/* Hand the events produced into the open entry since the last call to the tracker. */
static void add_pending(pipe_t *p)
{
    if (p->unadded) {
        siphon_tracker_add_n(p->trk, p->cur_seq, p->unadded);
        p->unadded = 0;
    }
}

/* Close the open entry at pos (NULL: abandon it, it will be read again), with its events. */
static int close_entry(pipe_t *p, const siphon_pos_t *pos)
{
    int rc = 0;
    add_pending(p);
    if (pos)
        rc = siphon_tracker_commit(p->trk, p->cur_seq, pos);
    else
        siphon_tracker_abandon(p->trk, p->cur_seq);
    p->cur_seq = 0;
    return rc;
}

static int mapping_index(pipe_t *p, const siphon_mapping_t *map)
{
    int n = siphon_mapset_count(p->ms);
    for (int i = 0; i < n; i++)
        if (siphon_mapset_get(p->ms, i) == map)
            return i;
    return -1;
}

/* Hand one message to the sink, waiting (serving deliveries) while its queue is full. */
static int produce(pipe_t *p, const siphon_sink_msg_t *msg)
{
    int64_t last_keepalive = siphon_clock_now_ms();
    for (;;) {
        int rc = p->kops->produce(p->snk, msg, p->errbuf, sizeof(p->errbuf));
        if (rc == 0) {
            p->unadded++; /* the tracker hears of it in add_pending() */
            return 0;
        }
        if (rc != SIPHON_EAGAIN)
            return rc;
        p->kops->poll(p->snk, 50);
        if (p->fatal)
            return SIPHON_EDELIVERY;
        if (siphon_clock_now_ms() - last_keepalive >= 1000) {
            /* The source is not read while the sink is full: acknowledge what was delivered
             * so far (or repeat the last acknowledgement), which also tells the source's server
             * we are alive (Postgres drops a silent client after wal_sender_timeout). */
            siphon_pos_t none = {0};
            advance(p, 0);
            p->sops->ack(p->src, p->have_acked ? &p->acked : &none, p->errbuf, sizeof(p->errbuf));
            last_keepalive = siphon_clock_now_ms();
        }
        if (*p->stop)
            return SIPHON_ESTOP;
    }
}

static int emit(pipe_t *p, const siphon_mapping_t *map, char op, const siphon_value_t *before,
                const siphon_value_t *after, const siphon_value_t *key)
{
    const siphon_change_t *chg = p->chg;
    siphon_avro_stream_t *stream = siphon_mapping_stream(map);
    int idx = mapping_index(p, map);
    char event_id[300];
    char *json = NULL;
    int rc;

    /* Deterministic: the same change always gets the same id. A change that becomes several
     * events (a key change: delete + create; several mappings of one table; dead letters)
     * numbers the second one ".1", and so on. */
    next_event_id(p, event_id, sizeof(event_id));
    siphon_buf_reset(&p->kbuf);
    siphon_buf_reset(&p->vbuf);
    if (key && (rc = siphon_avro_stream_encode_key(stream, key, &p->kbuf, p->errbuf,
                                                   sizeof(p->errbuf))) < 0)
        goto convert_err;

    int with_txn = p->txs && p->in_txn && !chg->snapshot;
    siphon_avro_txn_ref_t txref = {
        .id = p->txpos,
        .total_order = p->tx_total + 1,
        .data_collection_order = with_txn ? p->tx_counts[idx] + 1 : 0,
    };
    siphon_avro_event_t ev = {
        .transaction = with_txn ? &txref : NULL,
        .op = op,
        .before = before,
        .after = after,
        .source = {.connector = p->cfg->name,
                   .db = chg->database ? chg->database : "",
                   .schema = chg->rel->schema,
                   .table = chg->rel->name,
                   .pos = p->txpos,
                   .txid = p->txid,
                   .commit_ts_us = p->commit_ts_us,
                   .snapshot = chg->snapshot},
        .ts_us = now_us_wall(),
        .event_id = event_id,
    };
    if ((rc = siphon_avro_stream_encode_value(stream, &ev, &p->vbuf, p->errbuf,
                                              sizeof(p->errbuf))) < 0)
        goto convert_err;
    if (p->kops->wants_json &&
        siphon_avro_stream_decode_json(&json, stream, 0, p->vbuf.data, p->vbuf.len, p->errbuf,
                                       sizeof(p->errbuf)) < 0)
        json = NULL;

    siphon_sink_header_t hdrs[2] = {
        {"siphon.event_id", event_id, strlen(event_id)},
        {"siphon.schema_fingerprint", p->fphex[idx], 16},
    };
    siphon_sink_msg_t msg = {
        .topic = p->topics[idx],
        .key = key ? p->kbuf.data : NULL,
        .klen = key ? p->kbuf.len : 0,
        .value = p->vbuf.data,
        .vlen = p->vbuf.len,
        .hdrs = hdrs,
        .nhdrs = 2,
        .json = json,
        .opaque = (void *)(uintptr_t)p->cur_seq,
    };
    if (with_txn && (rc = txn_begin_if_needed(p)) < 0) {
        free(json);
        return rc;
    }
    rc = produce(p, &msg);
    free(json);
    if (rc < 0)
        return rc;
    p->st.events++;
    if (with_txn) {
        p->tx_total++;
        p->tx_counts[idx]++;
    }

    if (op == 'd' && key && p->cfg->sink.tombstones) {
        siphon_sink_msg_t tomb = msg;
        tomb.value = NULL;
        tomb.vlen = 0;
        tomb.json = NULL;
        tomb.nhdrs = 1;
        if ((rc = produce(p, &tomb)) < 0)
            return rc;
    }
    return 0;

convert_err: {
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", p->errbuf);
    snprintf(p->errbuf, sizeof(p->errbuf),
             "could not encode %s event of table %s.%s at %s for entity %s.v%d: %.600s (fix the "
             "mapping %s or the schema)",
             op == 'd' ? "delete" : op == 'u' ? "update" : op == 't' ? "truncate"
                                    : op == 'r' ? "snapshot" : "insert",
             chg->rel->schema, chg->rel->name, p->txpos, siphon_mapping_entity(map),
             siphon_mapping_major(map), tmp, siphon_mapping_path(map));
    return rc;
}
}

/* The event id of the next event of the current change (and count it). */
static void next_event_id(pipe_t *p, char *event_id, size_t size)
{
    /* "<pos>:<change>[.<sub>]", built by hand: this runs once per event (snprintf was ~4% of
     * the pipeline thread in the snapshot benchmark) */
    size_t n = strnlen(p->txpos, sizeof(p->txpos));
    if (n + 24 > size) {
        snprintf(event_id, size, "%s:%" PRIu32 ".%" PRIu32, p->txpos, p->change_idx,
                 p->sub_idx);
    } else {
        memcpy(event_id, p->txpos, n);
        event_id[n++] = ':';
        n += fmt_u32(event_id + n, p->change_idx);
        if (p->sub_idx) {
            event_id[n++] = '.';
            n += fmt_u32(event_id + n, p->sub_idx);
        }
        event_id[n] = '\0';
    }
    p->sub_idx++;
}

/* Produce a keyed record that is not an entity event (a dead letter, a BEGIN or END) in the
 * current transaction, with the same headers as an event. */
static int produce_record(pipe_t *p, const char *topic, const siphon_buf_t *key,
                          const siphon_buf_t *value, const char *event_id, uint64_t fingerprint,
                          const char *json)
{
    char fp[17];
    fmt_hex64(fp, fingerprint);
    siphon_sink_header_t hdrs[2] = {
        {"siphon.event_id", event_id, strlen(event_id)},
        {"siphon.schema_fingerprint", fp, 16},
    };
    siphon_sink_msg_t msg = {
        .topic = topic,
        .key = key->data,
        .klen = key->len,
        .value = value->data,
        .vlen = value->len,
        .hdrs = hdrs,
        .nhdrs = 2,
        .json = json,
        .opaque = (void *)(uintptr_t)p->cur_seq,
    };
    return produce(p, &msg);
}

/* A row the mapping could not convert: a dead letter where its event would have been. */
static int emit_dead_letter(pipe_t *p, const siphon_mapped_t *m)
{
    const siphon_change_t *chg = p->chg;
    int n = siphon_mapset_count(p->ms);
    char event_id[300];
    char *json = NULL;
    int rc;

    next_event_id(p, event_id, sizeof(event_id));
    siphon_buf_reset(&p->kbuf);
    siphon_buf_reset(&p->vbuf);
    siphon_dlq_record_t rec = {
        .event_id = event_id,
        .ts_us = now_us_wall(),
        .connector = p->cfg->name,
        .db = chg->database ? chg->database : "",
        .rel = chg->rel,
        .pos = p->txpos,
        .txid = p->txid,
        .commit_ts_us = p->commit_ts_us,
        .snapshot = chg->snapshot,
        .op = m->op,
        .mapped = m,
    };
    if ((rc = siphon_dlq_encode(p->dlq, &rec, &p->kbuf, &p->vbuf, p->errbuf,
                                sizeof(p->errbuf))) < 0)
        return rc;
    p->st.dead_letters++;
    if (p->st.dead_letters <= 100 || p->st.dead_letters % 1000 == 0)
        siphon_log(SIPHON_LOG_WARNING, "pipeline",
                   "dead letter #%" PRIu64 " to %s: %s.%s at %s could not become %s v%d: %s%s",
                   p->st.dead_letters, p->topics[n], chg->rel->schema, chg->rel->name, p->txpos,
                   siphon_mapping_entity(m->map), siphon_mapping_major(m->map),
                   m->error->message,
                   p->st.dead_letters == 100 ? " (further dead letters: one in 1000 logged)" : "");
    if (p->kops->wants_json &&
        siphon_dlq_decode_json(&json, p->dlq, p->vbuf.data, p->vbuf.len, p->errbuf,
                               sizeof(p->errbuf)) < 0)
        json = NULL;
    int with_txn = p->txs && p->in_txn && !chg->snapshot;
    if (!with_txn || (rc = txn_begin_if_needed(p)) == 0)
        rc = produce_record(p, p->topics[n], &p->kbuf, &p->vbuf, event_id,
                            siphon_dlq_fingerprint(p->dlq), json);
    free(json);
    if (rc == 0 && with_txn)
        p->tx_dead++;
    return rc;
}

/* ---- transaction metadata ---- */

/* Produce a BEGIN or END event of the open transaction on the transactions topic. */
static int txn_produce(pipe_t *p, int end)
{
    int n = siphon_mapset_count(p->ms), nc = 0, rc;
    char event_id[300];
    char *json = NULL;
    if (end)
        for (int i = 0; i < n; i++)
            if (p->tx_counts[i] > 0)
                p->tx_countv[nc++] = (siphon_avro_txn_count_t){p->topics[i], p->tx_counts[i]};
    siphon_avro_txn_event_t ev = {
        .end = end,
        .id = p->txpos,
        .connector = p->cfg->name,
        .pos = p->txpos,
        .txid = p->txid,
        .commit_ts_us = p->commit_ts_us,
        .ts_us = now_us_wall(),
        .event_count = p->tx_total,
        .counts = p->tx_countv,
        .ncounts = nc,
        .dead_letter_count = p->tx_dead,
    };
    siphon_buf_reset(&p->tkbuf);
    siphon_buf_reset(&p->tvbuf);
    if ((rc = siphon_avro_txn_encode(p->txs, &ev, &p->tkbuf, &p->tvbuf, p->errbuf,
                                     sizeof(p->errbuf))) < 0)
        return rc;
    if (p->kops->wants_json &&
        siphon_avro_txn_decode_json(&json, p->txs, 0, p->tvbuf.data, p->tvbuf.len, p->errbuf,
                                    sizeof(p->errbuf)) < 0)
        json = NULL;
    snprintf(event_id, sizeof(event_id), "%s:%s", p->txpos, end ? "end" : "begin");
    rc = produce_record(p, p->topics[n + 1], &p->tkbuf, &p->tvbuf, event_id,
                        siphon_avro_txn_value_fingerprint(p->txs), json);
    free(json);
    if (rc == 0)
        p->st.txn_events++;
    return rc;
}

static int txn_begin_if_needed(pipe_t *p)
{
    if (p->tx_begun)
        return 0;
    int rc = txn_produce(p, 0);
    if (rc == 0)
        p->tx_begun = 1;
    return rc;
}

/* Forget the open transaction's metadata (after its END, or when it is abandoned). */
static void txn_reset(pipe_t *p, int in_txn)
{
    p->in_txn = in_txn;
    p->tx_begun = 0;
    p->tx_total = 0;
    p->tx_dead = 0;
    if (p->tx_counts)
        memset(p->tx_counts, 0, (size_t)siphon_mapset_count(p->ms) * sizeof(*p->tx_counts));
}

static int on_mapped(const siphon_mapped_t *m, void *opaque)
{
    pipe_t *p = opaque;
    if (m->error)
        return emit_dead_letter(p, m);
    for (int i = 0; i < m->nwarnings; i++) {
        p->st.warnings++;
        if (p->st.warnings <= 100 || p->st.warnings % 1000 == 0)
            siphon_log(SIPHON_LOG_WARNING, "map", "field nulled (on_error: null) at %s: %s",
                       p->txpos, m->warnings[i].message);
    }
    return emit(p, m->map, m->op, m->before, m->after, m->key);
}

static int handle_truncate(pipe_t *p, const siphon_change_t *chg)
{
    int n = siphon_mapset_count(p->ms), rc;
    for (int i = 0; i < n; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(p->ms, i);
        if (strcmp(siphon_mapping_source_schema(map), chg->rel->schema) != 0 ||
            strcmp(siphon_mapping_source_table(map), chg->rel->name) != 0)
            continue;
        siphon_log(SIPHON_LOG_NOTICE, "pipeline",
                   "table %s.%s truncated at %s: emitting a truncate event (op \"t\") to %s",
                   chg->rel->schema, chg->rel->name, p->txpos, p->topics[i]);
        if ((rc = emit(p, map, 't', NULL, NULL, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int handle_record(pipe_t *p, const siphon_change_t *rec)
{
    int rc;
    switch ((int)rec->kind) {
    case SIPHON_REC_BEGIN:
        if (p->cur_seq) /* a BEGIN without COMMIT: the source restarted the transaction */
            close_entry(p, NULL);
        if (!(p->cur_seq = siphon_tracker_begin(p->trk)))
            return SIPHON_ENOMEM;
        p->txid = rec->txid;
        p->commit_ts_us = rec->commit_ts_us;
        p->change_idx = 0;
        p->sops->pos_format(&rec->pos, p->txpos, sizeof(p->txpos));
        txn_reset(p, 1);
        return 0;
    case SIPHON_REC_CHANGE:
        if (!p->cur_seq) {
            /* a change outside a transaction (snapshot rows later): its own entry */
            if (!(p->cur_seq = siphon_tracker_begin(p->trk)))
                return SIPHON_ENOMEM;
            p->sops->pos_format(&rec->pos, p->txpos, sizeof(p->txpos));
            p->txid = rec->txid;
            p->commit_ts_us = rec->commit_ts_us;
            p->change_idx = 0;
            p->sub_idx = 0;
            p->chg = rec;
            txn_reset(p, 0);
            rc = rec->op == SIPHON_OP_TRUNCATE
                     ? handle_truncate(p, rec)
                     : siphon_mapset_apply(p->ms, rec, p->errbuf, sizeof(p->errbuf), on_mapped, p);
            /* a change whose events were not all produced (the run stops) must not be
             * acknowledged when the ones that were are delivered: abandoned, read again */
            int crc = close_entry(p, rc < 0 ? NULL : &rec->pos);
            p->st.changes++;
            return rc < 0 ? rc : crc;
        }
        p->chg = rec;
        p->sub_idx = 0;
        p->st.changes++;
        if (rec->op == SIPHON_OP_TRUNCATE)
            rc = handle_truncate(p, rec);
        else
            rc = siphon_mapset_apply(p->ms, rec, p->errbuf, sizeof(p->errbuf), on_mapped, p);
        p->change_idx++;
        return rc;
    case SIPHON_REC_COMMIT:
        if (!p->cur_seq)
            return 0;
        /* END after every event of the transaction, in the same tracker entry */
        if (p->tx_begun && (rc = txn_produce(p, 1)) < 0)
            return rc;
        txn_reset(p, 0);
        rc = close_entry(p, &rec->pos);
        p->st.txns++;
        return rc;
    case SIPHON_REC_POSITION:
        if (p->cur_seq)
            return 0; /* inside a transaction: its commit will carry the position */
        return siphon_tracker_position(p->trk, &rec->pos);
    case SIPHON_REC_RESET:
        if (p->cur_seq)
            close_entry(p, NULL);
        txn_reset(p, 0);
        return 0;
    default:
        return 0;
    }
}

/* Move the acknowledged position forward as far as deliveries allow; tell the source; store the
 * offsets when due (or when force). */
static int advance(pipe_t *p, int force)
{
    siphon_pos_t pos = {0};
    add_pending(p); /* keeps siphon_tracker_pending() (progress, drain) up to date */
    if (siphon_tracker_advance(p->trk, &pos)) {
        siphon_pos_free(&p->acked);
        p->acked = pos;
        p->have_acked = 1;
        p->dirty = 1;
        p->sops->pos_format(&p->acked, p->st.acked_pos, sizeof(p->st.acked_pos));
        if (p->src && p->sops->ack(p->src, &p->acked, p->errbuf, sizeof(p->errbuf)) < 0)
            siphon_log(SIPHON_LOG_WARNING, "pipeline", "could not acknowledge %s to the source: %s",
                       p->st.acked_pos, p->errbuf);
    }
    int64_t t = siphon_clock_now_ms();
    if (p->dirty && (force || t - p->last_store_ms >= p->cfg->offsets.flush_interval_ms)) {
        int rc = siphon_offsets_store(p->cfg->offsets.path, p->cfg->name, p->sops->type,
                                      p->st.acked_pos, p->errbuf, sizeof(p->errbuf));
        if (rc < 0)
            return rc;
        p->dirty = 0;
        p->last_store_ms = t;
    }
    return 0;
}

static void report_progress(pipe_t *p, int force)
{
    int64_t t = siphon_clock_now_ms();
    if (!force && t - p->last_report_ms < 10000)
        return;
    double secs = (double)(t - p->last_report_ms) / 1000.0;
    siphon_log(SIPHON_LOG_INFO, "pipeline",
               "%" PRIu64 " events (%.0f/s), %" PRIu64 " transactions, %" PRIu64
               " dead letters, %" PRIu64 " in flight, acknowledged position %s",
               p->st.events, secs > 0 ? (double)(p->st.events - p->last_report_events) / secs : 0.0,
               p->st.txns, p->st.dead_letters, siphon_tracker_pending(p->trk),
               p->have_acked ? p->st.acked_pos : "(none yet)");
    p->last_report_ms = t;
    p->last_report_events = p->st.events;
}

static int build_topics(pipe_t *p)
{
    int n = siphon_mapset_count(p->ms);
    p->topics = calloc((size_t)n + 2, sizeof(char *));
    if (!p->topics)
        return SIPHON_ENOMEM;
    const char *prefix = p->cfg->sink.topic_prefix;
    char t[512];
    for (int i = 0; i < n; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(p->ms, i);
        snprintf(t, sizeof(t), "%s%s%s.v%d", prefix ? prefix : "", prefix && *prefix ? "." : "",
                 siphon_mapping_entity(map), siphon_mapping_major(map));
        if (!(p->topics[i] = strdup(t)))
            return SIPHON_ENOMEM;
    }
    if (!(p->fphex = calloc((size_t)(n ? n : 1), sizeof(*p->fphex))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        siphon_avro_stream_t *st = siphon_mapping_stream(siphon_mapset_get(p->ms, i));
        fmt_hex64(p->fphex[i], siphon_avro_stream_value_fingerprint(st));
    }
    /* the dead-letter topic, last */
    snprintf(t, sizeof(t), "%s%s_dlq", prefix ? prefix : "", prefix && *prefix ? "." : "");
    if (!(p->topics[n] = strdup(t)))
        return SIPHON_ENOMEM;
    if (p->cfg->pipeline.transactions) {
        snprintf(t, sizeof(t), "%s%s_transactions", prefix ? prefix : "",
                 prefix && *prefix ? "." : "");
        if (!(p->topics[n + 1] = strdup(t)))
            return SIPHON_ENOMEM;
    }
    return 0;
}

/* The distinct tables the mappings read. Caller frees the array (strings are borrowed). */
static int mapped_tables(pipe_t *p, siphon_table_ref_t **out, int *nout)
{
    int n = siphon_mapset_count(p->ms), k = 0;
    siphon_table_ref_t *t = calloc((size_t)(n ? n : 1), sizeof(*t));
    if (!t)
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(p->ms, i);
        const char *s = siphon_mapping_source_schema(map), *tb = siphon_mapping_source_table(map);
        int dup = 0;
        for (int j = 0; j < k; j++)
            dup |= strcmp(t[j].schema, s) == 0 && strcmp(t[j].table, tb) == 0;
        if (!dup)
            t[k++] = (siphon_table_ref_t){s, tb};
    }
    *out = t;
    *nout = k;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Schemas are contracts (docs/schemas.md): every stream's key and envelope are checked against
 * the versions already published (the history file next to the offsets file) under the config's
 * schema_compatibility; an incompatible change within a major version refuses to start, a
 * compatible change is recorded as a new minor version. Runs before the sink opens, so nothing
 * is produced with a refused schema. */
static int check_schema_history(pipe_t *p, char *errbuf, size_t errsize)
{
    char hpath[4096];
    int n = siphon_mapset_count(p->ms), rc;
    const siphon_avro_stream_t **streams = calloc((size_t)n, sizeof(*streams));
    if (!streams)
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++)
        streams[i] = siphon_mapping_stream(siphon_mapset_get(p->ms, i));
    if (siphon_schema_history_path(hpath, sizeof(hpath), p->cfg->offsets.path, p->cfg->name) < 0)
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "offsets.path %s: the schema history file next to it would have too long "
                        "a name (choose a shorter offsets.path)", p->cfg->offsets.path);
    else
        rc = siphon_schema_history_sync(hpath, p->cfg->name,
                                        (siphon_avro_compat_mode_t)p->cfg->schema_compatibility,
                                        streams, n, 1, NULL, errbuf, errsize);
    free(streams);
    return rc;
}

static int pipe_start(pipe_t *p, char *errbuf, size_t errsize)
{
    int rc;
    char *resume = NULL;
    siphon_table_ref_t *tables = NULL;
    int ntables = 0;

    if ((rc = siphon_mapset_load(&p->ms, p->cfg->mappings_dir, p->cfg->schemas_dir, errbuf,
                                 errsize)) < 0)
        return rc;
    if (siphon_mapset_count(p->ms) == 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "no mapping files in %s (add one <entity>.yaml per entity; see "
                          "docs/mappings.md)", p->cfg->mappings_dir);
    if ((rc = build_topics(p)) < 0)
        return rc;
    if ((rc = check_schema_history(p, errbuf, errsize)) < 0)
        return rc;
    if ((rc = siphon_dlq_new(&p->dlq, errbuf, errsize)) < 0)
        return rc;
    if (p->cfg->pipeline.transactions) {
        int n = siphon_mapset_count(p->ms);
        if ((rc = siphon_avro_txn_stream_new(&p->txs, errbuf, errsize)) < 0)
            return rc;
        if (!(p->tx_counts = calloc((size_t)n, sizeof(*p->tx_counts))) ||
            !(p->tx_countv = calloc((size_t)n, sizeof(*p->tx_countv))))
            return SIPHON_ENOMEM;
    }
    if (!(p->trk = siphon_tracker_new()))
        return SIPHON_ENOMEM;
    if ((rc = siphon_offsets_load(&resume, p->cfg->offsets.path, p->cfg->name, errbuf, errsize)) < 0)
        return rc;
    if (resume)
        siphon_log(SIPHON_LOG_INFO, "pipeline", "resuming from stored position %s (offsets file %s)",
                   resume, p->cfg->offsets.path);
    else
        siphon_log(SIPHON_LOG_INFO, "pipeline",
                   "no offsets file at %s: starting from the source's own position",
                   p->cfg->offsets.path);

    if ((rc = p->kops->open(&p->snk, p->cfg, on_delivery, p, errbuf, errsize)) < 0)
        goto out;
    if (p->kops->prepare)
        p->kops->prepare(p->snk, (const char *const *)p->topics,
                         siphon_mapset_count(p->ms) + (p->txs ? 2 : 1));
    if (p->kops->register_schemas) {
        int n = siphon_mapset_count(p->ms);
        for (int i = 0; i <= n && rc == 0; i++) {
            if (i < n) {
                siphon_avro_stream_t *st = siphon_mapping_stream(siphon_mapset_get(p->ms, i));
                rc = p->kops->register_schemas(
                    p->snk, p->topics[i], siphon_avro_stream_key_fingerprint(st),
                    siphon_avro_stream_key_schema_json(st), siphon_avro_stream_value_fingerprint(st),
                    siphon_avro_stream_value_schema_json(st), errbuf, errsize);
            } else {
                rc = p->kops->register_schemas(p->snk, p->topics[n],
                                               siphon_dlq_key_fingerprint(p->dlq),
                                               siphon_dlq_key_schema_json(p->dlq),
                                               siphon_dlq_fingerprint(p->dlq),
                                               siphon_dlq_schema_json(p->dlq), errbuf, errsize);
            }
        }
        if (rc == 0 && p->txs)
            rc = p->kops->register_schemas(
                p->snk, p->topics[n + 1], siphon_avro_txn_key_fingerprint(p->txs),
                siphon_avro_txn_key_schema_json(), siphon_avro_txn_value_fingerprint(p->txs),
                siphon_avro_txn_value_schema_json(), errbuf, errsize);
        if (rc < 0)
            goto out;
    }
    if ((rc = mapped_tables(p, &tables, &ntables)) < 0)
        goto out;

    for (int delay = 200;;) {
        rc = p->sops->open(&p->src, p->cfg, tables, ntables, resume, errbuf, errsize);
        if (rc == 0 || !siphon_err_is_retriable(rc))
            break;
        siphon_log(SIPHON_LOG_WARNING, "pipeline", "%s; retrying in %d ms", errbuf, delay);
        for (int waited = 0; waited < delay && !*p->stop; waited += 50)
            sleep_ms(50);
        if (*p->stop) {
            rc = SIPHON_ESTOP;
            break;
        }
        delay = delay * 2 > 30000 ? 30000 : delay * 2;
    }
    if (rc < 0)
        goto out;

    /* Every mapped table must exist and fit its mappings before anything streams. */
    for (int i = 0; i < ntables; i++) {
        const siphon_relation_t *rel = NULL;
        if ((rc = p->sops->describe(p->src, tables[i].schema, tables[i].table, &rel, errbuf,
                                    errsize)) < 0)
            goto out;
        if ((rc = siphon_mapset_bind(p->ms, rel, errbuf, errsize)) < 0)
            goto out;
    }
out:
    free(tables);
    free(resume);
    return rc;
}

static int pipe_drain(pipe_t *p)
{
    if (p->cur_seq) /* read only partly: the source sends it again after a restart */
        close_entry(p, NULL);
    int64_t deadline = siphon_clock_now_ms() + 30000;
    while (p->snk && siphon_tracker_pending(p->trk) > 0 && !p->fatal && siphon_clock_now_ms() < deadline) {
        p->kops->poll(p->snk, 100);
        advance(p, 0);
    }
    if (siphon_tracker_pending(p->trk) > 0)
        siphon_log(SIPHON_LOG_WARNING, "pipeline",
                   "%" PRIu64 " events were not delivered before shutdown; they are read from "
                   "the source again at the next start", siphon_tracker_pending(p->trk));
    return advance(p, 1);
}

int siphon_pipeline_run(const siphon_config_t *cfg, const siphon_source_ops_t *src_ops,
                        const siphon_sink_ops_t *sink_ops, volatile sig_atomic_t *stop,
                        siphon_pipeline_stats_t *stats, char *errbuf, size_t errsize)
{
    pipe_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SIPHON_ENOMEM;
    p->cfg = cfg;
    p->sops = src_ops;
    p->kops = sink_ops;
    p->stop = stop;
    p->last_report_ms = p->last_store_ms = siphon_clock_now_ms();

    int rc = pipe_start(p, errbuf, errsize);
    if (rc == SIPHON_ESTOP) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    siphon_log(SIPHON_LOG_INFO, "pipeline", "streaming %d mapping(s) to %s sink",
               siphon_mapset_count(p->ms), sink_ops->type);

    while (!*stop && !p->fatal) {
        siphon_batch_t batch = {0};
        rc = src_ops->next(p->src, &batch, 100, errbuf, errsize);
        if (rc == SIPHON_ESTOP) {
            /* the source has nothing more to give (snapshot: initial_only): drain and stop */
            siphon_log(SIPHON_LOG_INFO, "pipeline", "the source ended its work (snapshot done)");
            rc = 0;
            break;
        }
        if (rc < 0)
            goto out;
        for (int i = 0; i < batch.n && !p->fatal; i++) {
            if ((rc = handle_record(p, &batch.recs[i])) < 0) {
                if (rc == SIPHON_ESTOP)
                    break;
                snprintf(errbuf, errsize, "%s", p->errbuf);
                goto out;
            }
        }
        p->kops->poll(p->snk, 0);
        if ((rc = advance(p, 0)) < 0) {
            snprintf(errbuf, errsize, "%s", p->errbuf);
            goto out;
        }
        report_progress(p, 0);
    }
    if (p->fatal) {
        rc = siphon_err(errbuf, errsize, SIPHON_EDELIVERY,
                        "%s; stopping without acknowledging anything after position %s (the "
                        "events after it are read again at the next start)",
                        p->fatal_msg, p->have_acked ? p->st.acked_pos : "(none)");
        advance(p, 1);
        goto out;
    }
    siphon_log(SIPHON_LOG_INFO, "pipeline", "stopping: draining in-flight events");
    if ((rc = pipe_drain(p)) < 0) {
        snprintf(errbuf, errsize, "%s", p->errbuf);
        goto out;
    }
    report_progress(p, 1);
out:
    if (rc < 0 && rc != SIPHON_EDELIVERY && p->snk && p->trk) {
        /* failed, but what was delivered before the failure is still acknowledged */
        char keep[1024];
        snprintf(keep, sizeof(keep), "%s", errbuf);
        pipe_drain(p);
        snprintf(errbuf, errsize, "%s", keep);
    }
    p->st.delivered = atomic_load(&p->delivered);
    if (stats)
        *stats = p->st;
    if (p->src)
        src_ops->close(p->src);
    if (p->snk)
        sink_ops->close(p->snk);
    if (p->topics) {
        for (int i = 0; i <= siphon_mapset_count(p->ms) + 1; i++)
            free(p->topics[i]);
        free(p->topics);
    }
    free(p->fphex);
    siphon_avro_txn_stream_destroy(p->txs);
    free(p->tx_counts);
    free(p->tx_countv);
    siphon_buf_free(&p->tkbuf);
    siphon_buf_free(&p->tvbuf);
    siphon_dlq_destroy(p->dlq);
    siphon_mapset_destroy(p->ms);
    siphon_tracker_destroy(p->trk);
    siphon_pos_free(&p->acked);
    siphon_buf_free(&p->kbuf);
    siphon_buf_free(&p->vbuf);
    free(p);
    return rc;
}

int siphon_pipeline_validate(const siphon_config_t *cfg, char *errbuf, size_t errsize)
{
    siphon_mapset_t *ms = NULL;
    int rc = siphon_mapset_load(&ms, cfg->mappings_dir, cfg->schemas_dir, errbuf, errsize);
    if (rc == 0 && siphon_mapset_count(ms) == 0)
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "no mapping files in %s (add one <entity>.yaml per entity; see "
                        "docs/mappings.md)", cfg->mappings_dir);
    siphon_mapset_destroy(ms);
    return rc;
}
