/*
 * buf.c - growable byte buffers and bump arenas (see buf.h).
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int siphon_buf_reserve(siphon_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return SIPHON_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int siphon_buf_append(siphon_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (siphon_buf_reserve(b, n) < 0)
        return SIPHON_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int siphon_buf_appendc(siphon_buf_t *b, uint8_t c)
{
    if (siphon_buf_reserve(b, 1) < 0)
        return SIPHON_ENOMEM;
    b->data[b->len++] = c;
    return 0;
}

int siphon_buf_printf(siphon_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SIPHON_EINVAL;
    if (siphon_buf_reserve(b, (size_t)n + 1) < 0)
        return SIPHON_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void siphon_buf_free(siphon_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct siphon_arena_block {
    siphon_arena_block_t *next;
    size_t size;
    size_t used;
    /* data follows, 8-byte aligned */
    uint64_t data[];
};

#define ARENA_KEEP_SPARE 4

void siphon_arena_init(siphon_arena_t *a, size_t block_size)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : 64 * 1024;
}

void *siphon_arena_alloc(siphon_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    siphon_arena_block_t *blk = a->head;
    if (!blk || blk->size - blk->used < n) {
        size_t want = n > a->block_size ? n : a->block_size;
        blk = NULL;
        /* reuse a spare block when it is large enough */
        for (siphon_arena_block_t **pp = &a->spare; *pp; pp = &(*pp)->next) {
            if ((*pp)->size >= want) {
                blk = *pp;
                *pp = blk->next;
                break;
            }
        }
        if (!blk) {
            blk = malloc(sizeof(*blk) + want);
            if (!blk)
                return NULL;
            blk->size = want;
        }
        blk->used = 0;
        blk->next = a->head;
        a->head = blk;
    }
    void *p = (uint8_t *)blk->data + blk->used;
    blk->used += n;
    a->used_bytes += n;
    return p;
}

char *siphon_arena_strndup(siphon_arena_t *a, const char *s, size_t n)
{
    char *p = siphon_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void siphon_arena_reset(siphon_arena_t *a)
{
    int kept = 0;
    for (siphon_arena_block_t *s = a->spare; s; s = s->next)
        kept++;
    siphon_arena_block_t *blk = a->head;
    while (blk) {
        siphon_arena_block_t *next = blk->next;
        if (kept < ARENA_KEEP_SPARE && blk->size == a->block_size) {
            blk->next = a->spare;
            a->spare = blk;
            kept++;
        } else {
            free(blk);
        }
        blk = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void siphon_arena_destroy(siphon_arena_t *a)
{
    if (!a)
        return;
    siphon_arena_reset(a);
    while (a->spare) {
        siphon_arena_block_t *next = a->spare->next;
        free(a->spare);
        a->spare = next;
    }
}
