/*
 * tracker.c - the position tracker: which source position may be acknowledged, given delivery
 * reports that arrive out of order. See the design block in pipeline.h.
 *
 * Entries live in a power-of-two ring indexed by seq & mask; seq starts at 1 and only grows, so
 * an entry is found from the seq a message carries in O(1) and a grown ring keeps every seq valid.
 *
 * Threads: two touch the tracker. The pipeline thread opens, fills, closes and pops entries;
 * the thread that serves delivery reports (the Kafka sink's own sink thread; for the file and
 * stdout sinks the pipeline thread itself) calls siphon_tracker_delivered().
 * One mutex guards every function, so a delivery never sees the ring while push() grows it
 * (the ring pointer and cap change there) or advance() pops it. A message's seq stays valid
 * while it is in flight: its entry cannot be popped before its delivery, which is what
 * entry_of() checks. pending is signed because the pipeline adds its events to an entry in
 * bulk (siphon_tracker_add_n, at the latest when it closes the entry), so a delivery may come
 * first and take an OPEN entry below zero for a moment; an OPEN entry is never popped, and
 * from the close on pending counts exactly the entry's undelivered events.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "pipeline/pipeline.h"

enum { ENTRY_OPEN = 0, ENTRY_CLOSED = 1 };

typedef struct entry {
    int64_t pending;    /* events added and not yet delivered (below 0 only while OPEN) */
    int state;
    int has_pos;
    siphon_pos_t pos;
} entry_t;

struct siphon_tracker {
    pthread_mutex_t mu; /* guards everything below */
    entry_t *ring;
    uint64_t cap;       /* power of two */
    uint64_t head;      /* seq of the oldest live entry */
    uint64_t tail;      /* seq the next entry gets */
    int64_t inflight;   /* sum of pending */
};

siphon_tracker_t *siphon_tracker_new(void)
{
    siphon_tracker_t *trk = calloc(1, sizeof(*trk));
    if (!trk)
        return NULL;
    trk->cap = 1024;
    trk->ring = calloc(trk->cap, sizeof(entry_t));
    if (!trk->ring) {
        free(trk);
        return NULL;
    }
    trk->head = trk->tail = 1;
    pthread_mutex_init(&trk->mu, NULL);
    return trk;
}

void siphon_tracker_destroy(siphon_tracker_t *trk)
{
    if (!trk)
        return;
    for (uint64_t s = trk->head; s < trk->tail; s++)
        siphon_pos_free(&trk->ring[s & (trk->cap - 1)].pos);
    free(trk->ring);
    pthread_mutex_destroy(&trk->mu);
    free(trk);
}

static entry_t *entry_of(siphon_tracker_t *trk, uint64_t seq)
{
    /* any maluse here is a bug in the pipeline */
    if (seq < trk->head || seq >= trk->tail)
        abort();
    return &trk->ring[seq & (trk->cap - 1)];
}

static uint64_t push(siphon_tracker_t *trk)
{
    if (trk->tail - trk->head == trk->cap) {
        uint64_t ncap = trk->cap * 2;
        entry_t *nring = calloc(ncap, sizeof(entry_t));
        if (!nring)
            return 0;
        for (uint64_t s = trk->head; s < trk->tail; s++)
            nring[s & (ncap - 1)] = trk->ring[s & (trk->cap - 1)];
        free(trk->ring);
        trk->ring = nring;
        trk->cap = ncap;
    }
    uint64_t seq = trk->tail++;
    entry_t *e = &trk->ring[seq & (trk->cap - 1)];
    memset(e, 0, sizeof(*e));
    return seq;
}

uint64_t siphon_tracker_begin(siphon_tracker_t *trk)
{
    pthread_mutex_lock(&trk->mu);
    uint64_t seq = push(trk);
    pthread_mutex_unlock(&trk->mu);
    return seq;
}

void siphon_tracker_add_n(siphon_tracker_t *trk, uint64_t seq, uint64_t n)
{
    pthread_mutex_lock(&trk->mu);
    entry_t *e = entry_of(trk, seq);
    if (e->state != ENTRY_OPEN)
        abort(); /* events added to a closed entry: a bug in the pipeline */
    e->pending += (int64_t)n;
    trk->inflight += (int64_t)n;
    pthread_mutex_unlock(&trk->mu);
}

void siphon_tracker_add(siphon_tracker_t *trk, uint64_t seq)
{
    siphon_tracker_add_n(trk, seq, 1);
}

static int commit_locked(siphon_tracker_t *trk, uint64_t seq, const siphon_pos_t *pos)
{
    entry_t *e = entry_of(trk, seq);
    if (siphon_pos_copy(&e->pos, pos) < 0)
        return SIPHON_ENOMEM;
    e->has_pos = 1;
    e->state = ENTRY_CLOSED;
    return 0;
}

int siphon_tracker_commit(siphon_tracker_t *trk, uint64_t seq, const siphon_pos_t *pos)
{
    pthread_mutex_lock(&trk->mu);
    int rc = commit_locked(trk, seq, pos);
    pthread_mutex_unlock(&trk->mu);
    return rc;
}

void siphon_tracker_abandon(siphon_tracker_t *trk, uint64_t seq)
{
    pthread_mutex_lock(&trk->mu);
    entry_t *e = entry_of(trk, seq);
    e->has_pos = 0;
    e->state = ENTRY_CLOSED;
    pthread_mutex_unlock(&trk->mu);
}

int siphon_tracker_position(siphon_tracker_t *trk, const siphon_pos_t *pos)
{
    pthread_mutex_lock(&trk->mu);
    uint64_t seq = push(trk);
    int rc = seq ? commit_locked(trk, seq, pos) : SIPHON_ENOMEM;
    pthread_mutex_unlock(&trk->mu);
    return rc;
}

void siphon_tracker_delivered(siphon_tracker_t *trk, uint64_t seq)
{
    pthread_mutex_lock(&trk->mu);
    entry_t *e = entry_of(trk, seq);
    if (e->state == ENTRY_CLOSED && e->pending <= 0)
        abort(); /* more reports than messages: a bug */
    e->pending--;
    trk->inflight--;
    pthread_mutex_unlock(&trk->mu);
}

int siphon_tracker_advance(siphon_tracker_t *trk, siphon_pos_t *out)
{
    int moved = 0;
    pthread_mutex_lock(&trk->mu);
    while (trk->head < trk->tail) {
        entry_t *e = &trk->ring[trk->head & (trk->cap - 1)];
        if (e->state != ENTRY_CLOSED || e->pending != 0)
            break;
        if (e->has_pos) {
            if (moved)
                siphon_pos_free(out);
            *out = e->pos; /* moves ownership of text */
            e->pos.text = NULL;
            moved = 1;
        } else {
            siphon_pos_free(&e->pos);
        }
        trk->head++;
    }
    pthread_mutex_unlock(&trk->mu);
    return moved;
}

/* The const accessors lock too (the mutex is the one mutable thing they touch). */
size_t siphon_tracker_entries(const siphon_tracker_t *trk)
{
    siphon_tracker_t *t = (siphon_tracker_t *)trk;
    pthread_mutex_lock(&t->mu);
    size_t n = (size_t)(t->tail - t->head);
    pthread_mutex_unlock(&t->mu);
    return n;
}

uint64_t siphon_tracker_pending(const siphon_tracker_t *trk)
{
    siphon_tracker_t *t = (siphon_tracker_t *)trk;
    pthread_mutex_lock(&t->mu);
    int64_t n = t->inflight;
    pthread_mutex_unlock(&t->mu);
    return n > 0 ? (uint64_t)n : 0; /* below 0 only while deliveries overtake add_n */
}
