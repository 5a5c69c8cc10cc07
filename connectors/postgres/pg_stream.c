/*
 * pg_stream.c - the pgoutput (protocol version 1) parser: CopyData payloads of a logical
 * replication connection in, change records of the current batch out.
 *
 * Knows nothing of sockets: the source reads a CopyData payload and hands it to
 * siphon_pg__stream_copydata(), which is what the unit tests call with hand-built messages. A
 * payload is parsed with a cursor in one pass; a row costs one arena allocation (the row and its
 * values together) and no per-value allocation: values point into the payload, which the caller
 * keeps alive until the batch is reset.
 *
 * Design (state of one stream):
 *
 *     OUTSIDE --[Begin]--> IN_TXN --[Commit]--> OUTSIDE
 *     OUTSIDE --[keepalive with walEnd > last_pos]--> OUTSIDE, POSITION record
 *     IN_TXN --[connection lost: siphon_pg__stream_disconnected]--> OUTSIDE, resume noted
 *     OUTSIDE --[Begin of the noted transaction, resent]--> IN_TXN, its first data messages
 *                passed over, no second BEGIN
 *     OUTSIDE --[Begin of any other transaction while one is noted]--> RESET record, IN_TXN
 *
 * Invariants:
 *  - BEGIN and COMMIT of a transaction carry the same pos, its commit LSN + 1 (pg_int.h says
 *    why), and positions returned only grow: a transaction whose pos is not above last_pos was
 *    returned before a reconnect (the server resends everything after the last acknowledged
 *    position), so it is skipped whole (skip_txn), and a keepalive only becomes a POSITION
 *    record when it moves past last_pos outside any transaction.
 *  - A connection lost inside a transaction does not make its changes come twice: the
 *    server resends everything after the last acknowledged position, in commit order, so the
 *    first transaction not yet returned whole is the one that was cut, and pgoutput decodes
 *    the same WAL into the same data messages (I, U, D, T, transactional M) again. The stream
 *    remembers how many of them it had returned (resume_msgs), passes over that many in the
 *    resent copy (relation and type messages are handled as usual: a new connection resends
 *    them) and continues; the pipeline sees one BEGIN, each change once, one COMMIT. Should a
 *    different transaction come first (not expected), the cut one is abandoned with a RESET
 *    record and comes again from its start (duplicates, never a loss).
 *  - A change refers to the relation version that was current when it arrived. pgoutput sends a
 *    Relation message before a table's first change on each connection and again after every
 *    change of its shape; an identical shape keeps its version (so mappings do not rebind on
 *    every reconnect), a new shape gets a new process-wide version. No version is freed before
 *    the stream is destroyed, so records of earlier batches never dangle.
 *  - Logical decoding messages ('M', pgoutput's messages option) and every change and commit
 *    go to the owner's hooks (st->hooks: the on-demand snapshot, pg_incremental.c) right after
 *    their record is appended, in stream order; COMMIT and POSITION records carry
 *    st->pos_suffix as their position text (the on-demand snapshot's progress).
 *  - Unchanged TOAST values ('u') become SIPHON_V_UNCHANGED; when the update carries the full
 *    old row (REPLICA IDENTITY FULL, 'O'), they are filled from it. In a key-only old row ('K')
 *    every non-key column is SIPHON_V_UNCHANGED (pgoutput sends them as nulls).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/postgres/pg_int.h"
#include "core/error.h"
#include "core/log.h"

/* Process-wide so that a (relation, version) pair names one shape even across several
 * connectors in one process: the one piece of global mutable state here, and it only counts. */
static atomic_uint_fast64_t rel_version_seq;

/* ---- relations ---- */

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

void siphon_pg__rel_free(pg_rel_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->rel.ncols; i++) {
        free(r->rel.cols[i].name);
        free(r->rel.cols[i].type_name);
    }
    free(r->rel.cols);
    free(r->rel.schema);
    free(r->rel.name);
    free(r->kinds);
    free(r->base_oids);
    free(r);
}

void siphon_pg__rel_set_kinds(pg_rel_t *r, int sql_ascii)
{
    for (int i = 0; i < r->rel.ncols; i++) {
        r->kinds[i] = siphon_pg__kind_for_oid(r->base_oids[i], sql_ascii);
        r->rel.cols[i].vtype = siphon_pg__kind_vtype(r->kinds[i]);
    }
}

int siphon_pg__rel_set_type_name(pg_rel_t *r, int col, const char *type_name)
{
    char *s = strdup(type_name);
    if (!s)
        return SIPHON_ENOMEM;
    free(r->rel.cols[col].type_name);
    r->rel.cols[col].type_name = s;
    return 0;
}

pg_rel_t *siphon_pg__rel_new(uint32_t oid, const char *schema, const char *name, char replident,
                             int ncols, const char *const *names, const uint32_t *oids,
                             const int32_t *typmods, const int *is_key, const int *is_pkey,
                             const char *const *type_names, const uint32_t *base_oids,
                             int sql_ascii)
{
    pg_rel_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->rel.id = oid;
    r->rel.ncols = ncols;
    r->replident = replident;
    r->rel.schema = xstrdup(schema);
    r->rel.name = xstrdup(name);
    r->rel.cols = calloc((size_t)(ncols ? ncols : 1), sizeof(*r->rel.cols));
    r->kinds = calloc((size_t)(ncols ? ncols : 1), sizeof(*r->kinds));
    r->base_oids = calloc((size_t)(ncols ? ncols : 1), sizeof(*r->base_oids));
    if (!r->rel.schema || !r->rel.name || !r->rel.cols || !r->kinds || !r->base_oids)
        goto fail;
    for (int i = 0; i < ncols; i++) {
        siphon_column_t *col = &r->rel.cols[i];
        char fallback[32];
        const char *tn = type_names ? type_names[i] : NULL;
        if (!tn && !(tn = siphon_pg__builtin_type_name(oids[i]))) {
            snprintf(fallback, sizeof(fallback), "oid %u", (unsigned)oids[i]);
            tn = fallback;
        }
        col->name = xstrdup(names[i]);
        col->type_name = xstrdup(tn);
        if (!col->name || !col->type_name) {
            r->rel.ncols = i + 1; /* free what was built */
            goto fail;
        }
        col->type_oid = oids[i];
        col->typmod = typmods[i];
        col->is_key = is_key[i] != 0;
        col->is_pkey = is_pkey ? is_pkey[i] != 0 : 0;
        r->base_oids[i] = base_oids ? base_oids[i] : oids[i];
    }
    siphon_pg__rel_set_kinds(r, sql_ascii);
    return r;
fail:
    siphon_pg__rel_free(r);
    return NULL;
}

static int shape_eq(const pg_rel_t *r, uint32_t oid, const char *schema, const char *name,
                    char replident, int ncols, const char *const *names, const uint32_t *oids,
                    const int32_t *typmods, const int *is_key)
{
    if (r->rel.id != oid || r->replident != replident || r->rel.ncols != ncols ||
        strcmp(r->rel.schema, schema) != 0 || strcmp(r->rel.name, name) != 0)
        return 0;
    for (int i = 0; i < ncols; i++) {
        const siphon_column_t *col = &r->rel.cols[i];
        if (col->type_oid != oids[i] || col->typmod != typmods[i] ||
            col->is_key != (is_key[i] != 0) || strcmp(col->name, names[i]) != 0)
            return 0;
    }
    return 1;
}

static pg_rel_t *find_shape_raw(const pg_stream_t *st, uint32_t oid, const char *schema,
                                const char *name, char replident, int ncols,
                                const char *const *names, const uint32_t *oids,
                                const int32_t *typmods, const int *is_key)
{
    for (pg_rel_t *r = st->rels; r; r = r->next)
        if (shape_eq(r, oid, schema, name, replident, ncols, names, oids, typmods, is_key))
            return r;
    return NULL;
}

pg_rel_t *siphon_pg__stream_find_shape(const pg_stream_t *st, const pg_rel_t *like)
{
    for (pg_rel_t *r = st->rels; r; r = r->next) {
        if (r == like || r->rel.id != like->rel.id || r->replident != like->replident ||
            r->rel.ncols != like->rel.ncols || strcmp(r->rel.schema, like->rel.schema) != 0 ||
            strcmp(r->rel.name, like->rel.name) != 0)
            continue;
        int same = 1;
        for (int i = 0; i < r->rel.ncols && same; i++) {
            const siphon_column_t *a = &r->rel.cols[i], *b = &like->rel.cols[i];
            same = a->type_oid == b->type_oid && a->typmod == b->typmod &&
                   a->is_key == b->is_key && a->is_pkey == b->is_pkey &&
                   strcmp(a->name, b->name) == 0 && strcmp(a->type_name, b->type_name) == 0;
        }
        if (same)
            return r;
    }
    return NULL;
}

void siphon_pg__stream_adopt(pg_stream_t *st, pg_rel_t *r)
{
    r->rel.version = (uint64_t)atomic_fetch_add(&rel_version_seq, 1) + 1;
    r->next = st->rels;
    st->rels = r;
    st->rel_versions++;
}

static inline size_t map_hash(uint32_t oid, size_t cap)
{
    return (size_t)((oid * UINT32_C(2654435761)) & (cap - 1));
}

pg_rel_t *siphon_pg__stream_rel(const pg_stream_t *st, uint32_t oid)
{
    if (!st->map_cap)
        return NULL;
    for (size_t i = map_hash(oid, st->map_cap);; i = (i + 1) & (st->map_cap - 1)) {
        if (!st->map[i].rel)
            return NULL;
        if (st->map[i].oid == oid)
            return st->map[i].rel;
    }
}

static int map_set(pg_stream_t *st, uint32_t oid, pg_rel_t *rel)
{
    if ((st->map_used + 1) * 2 > st->map_cap) {
        size_t ncap = st->map_cap ? st->map_cap * 2 : 16;
        pg_relmap_slot_t *nmap = calloc(ncap, sizeof(*nmap));
        if (!nmap)
            return SIPHON_ENOMEM;
        for (size_t j = 0; j < st->map_cap; j++) {
            if (!st->map[j].rel)
                continue;
            size_t i = map_hash(st->map[j].oid, ncap);
            while (nmap[i].rel)
                i = (i + 1) & (ncap - 1);
            nmap[i] = st->map[j];
        }
        free(st->map);
        st->map = nmap;
        st->map_cap = ncap;
    }
    size_t i = map_hash(oid, st->map_cap);
    while (st->map[i].rel && st->map[i].oid != oid)
        i = (i + 1) & (st->map_cap - 1);
    if (!st->map[i].rel)
        st->map_used++;
    st->map[i].oid = oid;
    st->map[i].rel = rel;
    return 0;
}

/* ---- stream lifecycle ---- */

void siphon_pg__stream_init(pg_stream_t *st)
{
    siphon_arena_init(&st->arena, 256 * 1024);
}

void siphon_pg__stream_destroy(pg_stream_t *st)
{
    if (!st)
        return;
    for (pg_rel_t *r = st->rels, *next; r; r = next) {
        next = r->next;
        siphon_pg__rel_free(r);
    }
    st->rels = NULL;
    for (pg_typename_t *t = st->types, *next; t; t = next) {
        next = t->next;
        free(t->name);
        free(t);
    }
    st->types = NULL;
    free(st->map);
    st->map = NULL;
    st->map_cap = st->map_used = 0;
    free(st->recs);
    st->recs = NULL;
    st->nrecs = st->caprecs = 0;
    siphon_arena_destroy(&st->arena);
}

void siphon_pg__stream_reset_batch(pg_stream_t *st)
{
    st->nrecs = 0;
    st->batch_bytes = 0;
    st->pos_suffix = NULL; /* it may live in the arena: the owner sets it again */
    siphon_arena_reset(&st->arena);
}

siphon_change_t *siphon_pg__stream_push(pg_stream_t *st, siphon_rec_kind_t kind)
{
    if (st->nrecs == st->caprecs) {
        int ncap = st->caprecs ? st->caprecs * 2 : 1024;
        siphon_change_t *n = realloc(st->recs, (size_t)ncap * sizeof(*n));
        if (!n)
            return NULL;
        st->recs = n;
        st->caprecs = ncap;
    }
    siphon_change_t *rec = &st->recs[st->nrecs++];
    memset(rec, 0, sizeof(*rec));
    rec->kind = kind;
    rec->database = st->database;
    return rec;
}

int siphon_pg__stream_disconnected(pg_stream_t *st)
{
    if (st->in_txn && !st->skip_txn) {
        /* resumed when the server sends it again (above); a second loss before all of the
         * returned messages were passed over again keeps the same count */
        st->resume_pos = st->txn_pos;
        st->resume_xid = st->txn_xid;
        st->resume_ts = st->txn_commit_ts;
        st->resume_msgs = st->txn_msgs;
        st->resume_left = 0;
    }
    st->in_txn = 0;
    st->skip_txn = 0;
    st->reply_requested = 0;
    return 0;
}

/* ---- the cursor ---- */

typedef struct cur {
    char *p, *end;
} cur_t;

static inline int c_u8(cur_t *c, uint8_t *v)
{
    if (c->end - c->p < 1)
        return -1;
    *v = (uint8_t)*c->p++;
    return 0;
}

static inline int c_u16(cur_t *c, uint16_t *v)
{
    if (c->end - c->p < 2)
        return -1;
    const uint8_t *b = (const uint8_t *)c->p;
    *v = (uint16_t)(b[0] << 8 | b[1]);
    c->p += 2;
    return 0;
}

static inline int c_u32(cur_t *c, uint32_t *v)
{
    if (c->end - c->p < 4)
        return -1;
    const uint8_t *b = (const uint8_t *)c->p;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    c->p += 4;
    return 0;
}

static inline int c_u64(cur_t *c, uint64_t *v)
{
    uint32_t hi, lo;
    if (c_u32(c, &hi) < 0 || c_u32(c, &lo) < 0)
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

/* A NUL-terminated string inside the message (borrowed). */
static inline int c_str(cur_t *c, const char **s)
{
    char *nul = memchr(c->p, '\0', (size_t)(c->end - c->p));
    if (!nul)
        return -1;
    *s = c->p;
    c->p = nul + 1;
    return 0;
}

static int truncated(char *errbuf, size_t errsize, char type, uint64_t lsn)
{
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse pgoutput message '%c' at LSN %X/%X: message truncated",
                      type, (unsigned)(lsn >> 32), (unsigned)lsn);
}

/* ---- messages ---- */

typedef struct row_mem {
    siphon_row_t row;
    siphon_value_t vals[];
} row_mem_t;

/* TupleData into a row of r's shape. key_only: an old key image ('K'), whose non-key columns
 * are not data. */
static int read_tuple(pg_stream_t *st, cur_t *c, const pg_rel_t *r, int key_only, char type,
                      uint64_t lsn, siphon_row_t **out, char *errbuf, size_t errsize)
{
    uint16_t n;
    if (c_u16(c, &n) < 0)
        return truncated(errbuf, errsize, type, lsn);
    if (n != r->rel.ncols)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse pgoutput message '%c' at LSN %X/%X: row of table "
                          "\"%s.%s\" has %u columns, its Relation message announced %d",
                          type, (unsigned)(lsn >> 32), (unsigned)lsn, r->rel.schema,
                          r->rel.name, n, r->rel.ncols);
    row_mem_t *m = siphon_arena_alloc(&st->arena, sizeof(*m) + (size_t)n * sizeof(m->vals[0]));
    if (!m)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not allocate a row: out of memory");
    m->row.ncols = n;
    m->row.vals = m->vals;
    for (int i = 0; i < n; i++) {
        siphon_value_t *v = &m->vals[i];
        char why[256];
        uint8_t kind;
        uint32_t len;
        if (c_u8(c, &kind) < 0)
            return truncated(errbuf, errsize, type, lsn);
        switch (kind) {
        case 'n':
            v->type = key_only && !r->rel.cols[i].is_key ? SIPHON_V_UNCHANGED : SIPHON_V_NULL;
            break;
        case 'u':
            v->type = SIPHON_V_UNCHANGED;
            break;
        case 't':
            if (c_u32(c, &len) < 0 || (size_t)(c->end - c->p) < len)
                return truncated(errbuf, errsize, type, lsn);
            if (siphon_pg__decode(v, r->kinds[i], c->p, len, why, sizeof(why)) < 0) {
                return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                                  "%s, in column \"%s\" (%s) of table \"%s.%s\" at LSN %X/%X", why,
                                  r->rel.cols[i].name, r->rel.cols[i].type_name, r->rel.schema,
                                  r->rel.name, (unsigned)(lsn >> 32), (unsigned)lsn);
            }
            c->p += len;
            break;
        default:
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse pgoutput message '%c' at LSN %X/%X: column \"%s\" "
                              "of table \"%s.%s\" has value kind '%c' (0x%02x); expected 'n', "
                              "'u' or 't' (text protocol)",
                              type, (unsigned)(lsn >> 32), (unsigned)lsn, r->rel.cols[i].name,
                              r->rel.schema, r->rel.name, kind >= 32 && kind < 127 ? kind : '?',
                              kind);
        }
    }
    *out = &m->row;
    return 0;
}

static int msg_relation(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint32_t oid;
    const char *schema, *name;
    uint8_t replident;
    uint16_t ncols;
    if (c_u32(c, &oid) < 0 || c_str(c, &schema) < 0 || c_str(c, &name) < 0 ||
        c_u8(c, &replident) < 0 || c_u16(c, &ncols) < 0)
        return truncated(errbuf, errsize, 'R', lsn);

    size_t n = ncols ? ncols : 1;
    const char **names = siphon_arena_alloc(&st->arena, n * sizeof(*names));
    uint32_t *oids = siphon_arena_alloc(&st->arena, n * sizeof(*oids));
    int32_t *typmods = siphon_arena_alloc(&st->arena, n * sizeof(*typmods));
    int *keys = siphon_arena_alloc(&st->arena, n * sizeof(*keys));
    int *pkeys = siphon_arena_alloc(&st->arena, n * sizeof(*pkeys));
    const char **tnames = siphon_arena_alloc(&st->arena, n * sizeof(*tnames));
    if (!names || !oids || !typmods || !keys || !pkeys || !tnames)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not parse Relation: out of memory");
    for (int i = 0; i < ncols; i++) {
        uint8_t flags;
        uint32_t tm;
        if (c_u8(c, &flags) < 0 || c_str(c, &names[i]) < 0 || c_u32(c, &oids[i]) < 0 ||
            c_u32(c, &tm) < 0)
            return truncated(errbuf, errsize, 'R', lsn);
        typmods[i] = (int32_t)tm;
        keys[i] = flags & 1;
        /* Without the catalog, the replica identity of a DEFAULT table is its primary key. */
        pkeys[i] = replident == 'd' ? keys[i] : 0;
        tnames[i] = siphon_pg__builtin_type_name(oids[i]);
        if (!tnames[i])
            for (pg_typename_t *t = st->types; t; t = t->next)
                if (t->oid == oids[i])
                    tnames[i] = t->name;
    }

    pg_rel_t *cur = siphon_pg__stream_rel(st, oid);
    if (cur && shape_eq(cur, oid, schema, name, (char)replident, ncols, names, oids, typmods, keys))
        return 0;
    pg_rel_t *r = find_shape_raw(st, oid, schema, name, (char)replident, ncols, names, oids,
                                 typmods, keys);
    if (!r) {
        r = siphon_pg__rel_new(oid, schema, name, (char)replident, ncols, names, oids, typmods,
                               keys, pkeys, tnames, NULL, st->sql_ascii);
        if (!r)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                              "could not build relation \"%s.%s\": out of memory", schema, name);
        if (st->enrich) {
            char why[512];
            if (st->enrich(st->enrich_opaque, r, why, sizeof(why)) < 0)
                siphon_log(SIPHON_LOG_WARNING, "pg",
                           "could not read the catalog details of table \"%s.%s\" (type names, "
                           "primary key): %s; continuing with what the Relation message says",
                           schema, name, why);
            siphon_pg__rel_set_kinds(r, st->sql_ascii);
        }
        siphon_pg__stream_adopt(st, r);
        siphon_log(SIPHON_LOG_DEBUG, "pg", "table \"%s.%s\" (oid %u): shape version %llu, %d columns",
                   schema, name, (unsigned)oid, (unsigned long long)r->rel.version, ncols);
    }
    if (map_set(st, oid, r) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not cache relation: out of memory");
    return 0;
}

static int msg_type(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint32_t oid;
    const char *nsp, *name;
    if (c_u32(c, &oid) < 0 || c_str(c, &nsp) < 0 || c_str(c, &name) < 0)
        return truncated(errbuf, errsize, 'Y', lsn);
    size_t len = strlen(nsp) + strlen(name) + 2;
    char *full = malloc(len);
    if (!full)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not cache type: out of memory");
    snprintf(full, len, "%s.%s", nsp, name);
    for (pg_typename_t *t = st->types; t; t = t->next) {
        if (t->oid == oid) {
            free(t->name);
            t->name = full;
            return 0;
        }
    }
    pg_typename_t *t = malloc(sizeof(*t));
    if (!t) {
        free(full);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not cache type: out of memory");
    }
    t->oid = oid;
    t->name = full;
    t->next = st->types;
    st->types = t;
    return 0;
}

static int need_txn(pg_stream_t *st, char type, uint64_t lsn, char *errbuf, size_t errsize)
{
    if (st->in_txn)
        return 0;
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse pgoutput message '%c' at LSN %X/%X: change outside a "
                      "transaction",
                      type, (unsigned)(lsn >> 32), (unsigned)lsn);
}

static int lookup_rel(pg_stream_t *st, uint32_t oid, char type, uint64_t lsn, pg_rel_t **r,
                      char *errbuf, size_t errsize)
{
    if ((*r = siphon_pg__stream_rel(st, oid)))
        return 0;
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse pgoutput message '%c' at LSN %X/%X: relation OID %u was "
                      "not announced by a Relation message",
                      type, (unsigned)(lsn >> 32), (unsigned)lsn, (unsigned)oid);
}

static siphon_change_t *change_push(pg_stream_t *st, const pg_rel_t *r, siphon_op_t op,
                                    uint64_t lsn)
{
    siphon_change_t *rec = siphon_pg__stream_push(st, SIPHON_REC_CHANGE);
    if (!rec)
        return NULL;
    rec->op = op;
    rec->rel = &r->rel;
    rec->txid = st->txn_xid;
    rec->commit_ts_us = st->txn_commit_ts;
    rec->pos.num = lsn;
    return rec;
}

static int oom(char *errbuf, size_t errsize)
{
    return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not add a record: out of memory");
}

static int msg_change(pg_stream_t *st, cur_t *c, char type, uint64_t lsn, char *errbuf,
                      size_t errsize)
{
    uint32_t oid;
    uint8_t tag;
    pg_rel_t *r;
    siphon_row_t *before = NULL, *after = NULL;
    int rc;

    if ((rc = need_txn(st, type, lsn, errbuf, errsize)) < 0)
        return rc;
    if (c_u32(c, &oid) < 0)
        return truncated(errbuf, errsize, type, lsn);
    if ((rc = lookup_rel(st, oid, type, lsn, &r, errbuf, errsize)) < 0)
        return rc;
    if (st->skip_txn)
        return 0;
    if (c_u8(c, &tag) < 0)
        return truncated(errbuf, errsize, type, lsn);

    switch (type) {
    case 'I':
        if (tag != 'N')
            goto bad_tag;
        if ((rc = read_tuple(st, c, r, 0, type, lsn, &after, errbuf, errsize)) < 0)
            return rc;
        break;
    case 'U':
        if (tag == 'K' || tag == 'O') {
            if ((rc = read_tuple(st, c, r, tag == 'K', type, lsn, &before, errbuf, errsize)) < 0)
                return rc;
            if (c_u8(c, &tag) < 0)
                return truncated(errbuf, errsize, type, lsn);
        }
        if (tag != 'N')
            goto bad_tag;
        if ((rc = read_tuple(st, c, r, 0, type, lsn, &after, errbuf, errsize)) < 0)
            return rc;
        /* Unchanged TOAST values: with the full old row at hand, they are known. */
        if (before)
            for (int i = 0; i < after->ncols; i++)
                if (after->vals[i].type == SIPHON_V_UNCHANGED &&
                    before->vals[i].type != SIPHON_V_UNCHANGED)
                    after->vals[i] = before->vals[i];
        break;
    case 'D':
        if (tag != 'K' && tag != 'O')
            goto bad_tag;
        if ((rc = read_tuple(st, c, r, tag == 'K', type, lsn, &before, errbuf, errsize)) < 0)
            return rc;
        break;
    }
    siphon_change_t *rec = change_push(st, r, type == 'I'   ? SIPHON_OP_CREATE
                                              : type == 'U' ? SIPHON_OP_UPDATE
                                                            : SIPHON_OP_DELETE,
                                       lsn);
    if (!rec)
        return oom(errbuf, errsize);
    rec->before = before;
    rec->after = after;
    if (st->hooks && st->hooks->change)
        return st->hooks->change(st->hooks_opaque, st, rec, errbuf, errsize);
    return 0;
bad_tag:
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse pgoutput message '%c' at LSN %X/%X for table \"%s.%s\": "
                      "unexpected tuple tag '%c'",
                      type, (unsigned)(lsn >> 32), (unsigned)lsn, r->rel.schema, r->rel.name,
                      tag >= 32 && tag < 127 ? tag : '?');
}

static int msg_truncate(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint32_t nrels, oid;
    uint8_t options;
    int rc;
    if ((rc = need_txn(st, 'T', lsn, errbuf, errsize)) < 0)
        return rc;
    if (c_u32(c, &nrels) < 0 || c_u8(c, &options) < 0)
        return truncated(errbuf, errsize, 'T', lsn);
    for (uint32_t i = 0; i < nrels; i++) {
        pg_rel_t *r;
        if (c_u32(c, &oid) < 0)
            return truncated(errbuf, errsize, 'T', lsn);
        if ((rc = lookup_rel(st, oid, 'T', lsn, &r, errbuf, errsize)) < 0)
            return rc;
        if (st->skip_txn)
            continue;
        siphon_change_t *rec = change_push(st, r, SIPHON_OP_TRUNCATE, lsn);
        if (!rec)
            return oom(errbuf, errsize);
        if (st->hooks && st->hooks->change &&
            (rc = st->hooks->change(st->hooks_opaque, st, rec, errbuf, errsize)) < 0)
            return rc;
    }
    return 0;
}

static int msg_begin(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint64_t final_lsn, ts;
    uint32_t xid;
    if (c_u64(c, &final_lsn) < 0 || c_u64(c, &ts) < 0 || c_u32(c, &xid) < 0)
        return truncated(errbuf, errsize, 'B', lsn);
    if (st->in_txn)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse pgoutput message 'B' at LSN %X/%X: transaction %u "
                          "begins before transaction %llu committed",
                          (unsigned)(lsn >> 32), (unsigned)lsn, (unsigned)xid,
                          (unsigned long long)st->txn_xid);
    st->in_txn = 1;
    st->txn_commit_lsn = final_lsn;
    st->txn_pos = final_lsn + 1;
    st->txn_xid = xid;
    st->txn_commit_ts = (int64_t)ts + PG_EPOCH_OFFSET_US;
    st->txn_msgs = 0;
    /* Returned before a reconnect (the server resends from the last acknowledged position). */
    st->skip_txn = st->txn_pos <= st->last_pos;
    if (st->skip_txn)
        return 0;
    siphon_change_t *rec;
    if (st->resume_pos) {
        if (st->txn_pos == st->resume_pos) {
            /* the transaction cut by the lost connection: its BEGIN and first messages were
             * returned already */
            st->resume_pos = 0;
            st->resume_left = st->resume_msgs;
            st->txn_msgs = st->resume_msgs;
            siphon_log(SIPHON_LOG_INFO, "pg",
                       "resuming transaction %u (commit %X/%X) where the lost connection cut it: "
                       "%u change(s) already sent are not sent again",
                       (unsigned)xid, (unsigned)(final_lsn >> 32), (unsigned)final_lsn,
                       (unsigned)st->resume_msgs);
            return 0;
        }
        if (!(rec = siphon_pg__stream_push(st, SIPHON_REC_RESET)))
            return oom(errbuf, errsize);
        rec->txid = st->resume_xid;
        rec->commit_ts_us = st->resume_ts;
        rec->pos.num = st->resume_pos;
        st->resume_pos = 0;
    }
    rec = siphon_pg__stream_push(st, SIPHON_REC_BEGIN);
    if (!rec)
        return oom(errbuf, errsize);
    rec->txid = st->txn_xid;
    rec->commit_ts_us = st->txn_commit_ts;
    rec->pos.num = st->txn_pos;
    return 0;
}

static int msg_commit(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint8_t flags;
    uint64_t commit_lsn, end_lsn, ts;
    if (c_u8(c, &flags) < 0 || c_u64(c, &commit_lsn) < 0 || c_u64(c, &end_lsn) < 0 ||
        c_u64(c, &ts) < 0)
        return truncated(errbuf, errsize, 'C', lsn);
    if (!st->in_txn || commit_lsn != st->txn_commit_lsn)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse pgoutput message 'C' at LSN %X/%X: commit at %X/%X "
                          "does not match the open transaction (%s)",
                          (unsigned)(lsn >> 32), (unsigned)lsn, (unsigned)(commit_lsn >> 32),
                          (unsigned)commit_lsn, st->in_txn ? "another commit LSN" : "none open");
    if (!st->skip_txn) {
        siphon_change_t *rec = siphon_pg__stream_push(st, SIPHON_REC_COMMIT);
        if (!rec)
            return oom(errbuf, errsize);
        rec->txid = st->txn_xid;
        rec->commit_ts_us = st->txn_commit_ts;
        rec->pos.num = st->txn_pos;
        rec->pos.text = (char *)st->pos_suffix;
        st->last_pos = st->txn_pos;
        st->commits++;
        if (st->hooks && st->hooks->commit) {
            int rc = st->hooks->commit(st->hooks_opaque, st, errbuf, errsize);
            if (rc < 0)
                return rc;
        }
    }
    st->in_txn = 0;
    st->skip_txn = 0;
    st->resume_left = 0;
    return 0;
}

/* A logical decoding message (pgoutput with messages 'true', PostgreSQL 14+): Int8 flags (1:
 * transactional), Int64 its LSN, String prefix, Int32 length, Byte[length] content. Not data:
 * handed to the hooks (the on-demand snapshot's signals and watermarks), else ignored. */
static int msg_message(pg_stream_t *st, cur_t *c, uint64_t lsn, char *errbuf, size_t errsize)
{
    uint8_t flags;
    uint64_t mlsn;
    uint32_t len;
    const char *prefix;
    if (c_u8(c, &flags) < 0 || c_u64(c, &mlsn) < 0 || c_str(c, &prefix) < 0 ||
        c_u32(c, &len) < 0 || (size_t)(c->end - c->p) < len)
        return truncated(errbuf, errsize, 'M', lsn);
    if ((flags & 1) && (!st->in_txn || st->skip_txn))
        return 0; /* transactional: only inside a transaction being returned */
    if (!st->hooks || !st->hooks->message)
        return 0;
    return st->hooks->message(st->hooks_opaque, st, flags & 1, mlsn, prefix, c->p, len, errbuf,
                              errsize);
}

int siphon_pg__stream_message(pg_stream_t *st, char *msg, size_t len, uint64_t lsn,
                              char *errbuf, size_t errsize)
{
    cur_t c = {msg, msg + len};
    uint8_t type;
    if (c_u8(&c, &type) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse pgoutput message at LSN %X/%X: empty message",
                          (unsigned)(lsn >> 32), (unsigned)lsn);
    /* A data message of a transaction being returned: passed over when it was returned before
     * the connection was lost (resume_left), else counted (txn_msgs). */
    int data = type == 'I' || type == 'U' || type == 'D' || type == 'T' ||
               (type == 'M' && c.p < c.end && (*(const uint8_t *)c.p & 1));
    if (data && st->in_txn && !st->skip_txn) {
        if (st->resume_left > 0) {
            st->resume_left--;
            return 0;
        }
        st->txn_msgs++;
    }
    switch (type) {
    case 'B': return msg_begin(st, &c, lsn, errbuf, errsize);
    case 'C': return msg_commit(st, &c, lsn, errbuf, errsize);
    case 'R': return msg_relation(st, &c, lsn, errbuf, errsize);
    case 'Y': return msg_type(st, &c, lsn, errbuf, errsize);
    case 'I':
    case 'U':
    case 'D': return msg_change(st, &c, (char)type, lsn, errbuf, errsize);
    case 'T': return msg_truncate(st, &c, lsn, errbuf, errsize);
    case 'M': return msg_message(st, &c, lsn, errbuf, errsize);
    case 'O': /* Origin: where a replicated transaction came from; nothing to do */
        return 0;
    default:
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse pgoutput message at LSN %X/%X: unknown message type "
                          "'%c' (0x%02x); is the slot using pgoutput with proto_version 1?",
                          (unsigned)(lsn >> 32), (unsigned)lsn,
                          type >= 32 && type < 127 ? type : '?', type);
    }
}

int siphon_pg__stream_copydata(pg_stream_t *st, char *buf, size_t len, char *errbuf,
                               size_t errsize)
{
    cur_t c = {buf, buf + len};
    uint8_t type;
    uint64_t start, end, sendtime;
    st->batch_bytes += len;
    if (c_u8(&c, &type) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not parse replication message: empty CopyData");
    if (type == 'w') {
        if (c_u64(&c, &start) < 0 || c_u64(&c, &end) < 0 || c_u64(&c, &sendtime) < 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse XLogData header: message truncated (%zu bytes)", len);
        if (end > st->received)
            st->received = end;
        if (start > st->received)
            st->received = start;
        return siphon_pg__stream_message(st, c.p, (size_t)(c.end - c.p), start, errbuf, errsize);
    }
    if (type == 'k') {
        uint8_t reply;
        if (c_u64(&c, &end) < 0 || c_u64(&c, &sendtime) < 0 || c_u8(&c, &reply) < 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not parse keepalive: message truncated (%zu bytes)", len);
        if (end > st->received)
            st->received = end;
        if (reply)
            st->reply_requested = 1;
        /* Idle or filtered traffic: everything that committed before walEnd has been sent. */
        if (!st->in_txn && end > st->last_pos) {
            siphon_change_t *rec = siphon_pg__stream_push(st, SIPHON_REC_POSITION);
            if (!rec)
                return oom(errbuf, errsize);
            rec->pos.num = end;
            rec->pos.text = (char *)st->pos_suffix;
            st->last_pos = end;
        }
        return 0;
    }
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "could not parse replication message: unknown CopyData type '%c' (0x%02x)",
                      type >= 32 && type < 127 ? type : '?', type);
}
