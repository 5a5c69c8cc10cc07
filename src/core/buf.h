/*
 * buf.h - a growable byte buffer and a bump arena: the two pieces of memory management every
 * module uses.
 *
 * siphon_buf_t grows by doubling and is reused across events (reset keeps the allocation).
 * siphon_arena_t hands out aligned pieces from blocks and frees them all at once on reset:
 * per-batch and per-row data lives there (PostgreSQL memory contexts, nginx pools).
 */
#ifndef SIPHON_CORE_BUF_H
#define SIPHON_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct siphon_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} siphon_buf_t;

/* All return 0 or SIPHON_ENOMEM (the buffer is unchanged on failure). */
int siphon_buf_reserve(siphon_buf_t *b, size_t extra);
int siphon_buf_append(siphon_buf_t *b, const void *p, size_t n);
int siphon_buf_appendc(siphon_buf_t *b, uint8_t c);
int siphon_buf_printf(siphon_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void siphon_buf_reset(siphon_buf_t *b) { b->len = 0; }
/* Frees the allocation; the buffer may be reused afterwards (it is empty). Accepts NULL. */
void siphon_buf_free(siphon_buf_t *b);

typedef struct siphon_arena_block siphon_arena_block_t;
typedef struct siphon_arena {
    siphon_arena_block_t *head;  /* current block */
    siphon_arena_block_t *spare; /* blocks kept for reuse after reset */
    size_t block_size;
    size_t used_bytes;           /* handed out since the last reset */
} siphon_arena_t;

/* block_size 0 means 64 KiB. An arena needs no _new: zero-initialize and call init. */
void siphon_arena_init(siphon_arena_t *a, size_t block_size);
/* Returns 8-byte aligned memory valid until reset/destroy, or NULL when out of memory. */
void *siphon_arena_alloc(siphon_arena_t *a, size_t n);
/* Copies n bytes (and a NUL after them) into the arena; NULL when out of memory. */
char *siphon_arena_strndup(siphon_arena_t *a, const char *s, size_t n);
/* Forgets everything allocated; keeps at most a few blocks for reuse. */
void siphon_arena_reset(siphon_arena_t *a);
void siphon_arena_destroy(siphon_arena_t *a);

#endif
