/*
 * tracker.c - the position tracker: which source position may be acknowledged, given delivery
 * reports that arrive out of order. See the design block in pipeline.h.
 *
 * Entries live in a power-of-two ring indexed by seq & mask; seq starts at 1 and only grows, so
 * an entry is found from the seq a message carries in O(1) and a grown ring keeps every seq valid.
 * Only the pipeline thread touches the tracker (delivery reports are served there), so no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "pipeline/pipeline.h"

enum { ENTRY_OPEN = 0, ENTRY_CLOSED = 1 };

typedef struct entry {
    uint64_t pending;   /* events produced and not yet delivered */
    int state;
    int has_pos;
    siphon_pos_t pos;
} entry_t;

struct siphon_tracker {
    entry_t *ring;
    uint64_t cap;       /* power of two */
    uint64_t head;      /* seq of the oldest live entry */
    uint64_t tail;      /* seq the next entry gets */
    uint64_t inflight;  /* sum of pending */
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
    return trk;
}

void siphon_tracker_destroy(siphon_tracker_t *trk)
{
    if (!trk)
        return;
    for (uint64_t s = trk->head; s < trk->tail; s++)
        siphon_pos_free(&trk->ring[s & (trk->cap - 1)].pos);
    free(trk->ring);
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
    return push(trk);
}

void siphon_tracker_add(siphon_tracker_t *trk, uint64_t seq)
{
    entry_of(trk, seq)->pending++;
    trk->inflight++;
}

int siphon_tracker_commit(siphon_tracker_t *trk, uint64_t seq, const siphon_pos_t *pos)
{
    entry_t *e = entry_of(trk, seq);
    if (siphon_pos_copy(&e->pos, pos) < 0)
        return SIPHON_ENOMEM;
    e->has_pos = 1;
    e->state = ENTRY_CLOSED;
    return 0;
}

void siphon_tracker_abandon(siphon_tracker_t *trk, uint64_t seq)
{
    entry_t *e = entry_of(trk, seq);
    e->has_pos = 0;
    e->state = ENTRY_CLOSED;
}

int siphon_tracker_position(siphon_tracker_t *trk, const siphon_pos_t *pos)
{
    uint64_t seq = push(trk);
    if (!seq)
        return SIPHON_ENOMEM;
    return siphon_tracker_commit(trk, seq, pos);
}

void siphon_tracker_delivered(siphon_tracker_t *trk, uint64_t seq)
{
    entry_t *e = entry_of(trk, seq);
    if (e->pending == 0)
        abort(); /* more reports than messages: a bug */
    e->pending--;
    trk->inflight--;
}

int siphon_tracker_advance(siphon_tracker_t *trk, siphon_pos_t *out)
{
    int moved = 0;
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
    return moved;
}

size_t siphon_tracker_entries(const siphon_tracker_t *trk)
{
    return (size_t)(trk->tail - trk->head);
}

uint64_t siphon_tracker_pending(const siphon_tracker_t *trk)
{
    return trk->inflight;
}
