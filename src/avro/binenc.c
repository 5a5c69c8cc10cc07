/*
 * binenc.c - the direct Avro binary encoder (see binenc.h for why it exists and its contract).
 *
 * Compilation turns a record type graph into a flat array of instructions, one per type
 * occurrence: the fields of each record are a contiguous run of instructions (a record is
 * compiled once, however often it is referenced, so recursive types terminate), the branches
 * of a union a run of their own, an array's items one instruction. Everything a value needs is
 * decided there: the opcode, the logical type's unit, the set of value types the type takes,
 * and for a union the branch each value type goes to, so writing a value is one table look-up
 * and one switch. The graph is only read again to word an error.
 *
 * The bytes are the Avro specification's binary encoding as avro-c 1.11 writes it (the
 * reference the tests compare with): zigzag varints for int, long, enum indexes, union
 * branches and lengths; IEEE little-endian float and double; a length before bytes and
 * strings; fixed as it is; an array as one block (count, items) then a 0, nothing but the 0
 * when empty. Logical types follow stream.c: decimals as two's-complement big-endian bytes of
 * the unscaled value at the schema's scale (siphon_avro__decimal_to_bytes, with an int64 fast
 * path for up to 18 digits that gives the same bytes, taking decimals in digits or in the int64
 * form of core/value.h), dates as int days, time-millis and timestamp-millis floored from
 * microseconds, uuids as 36 lowercase characters.
 *
 * Change events are written field by field straight from the event struct; the source block,
 * the same for every event of a transaction, is kept encoded from one event to the next and
 * copied when the next event's source is the same (compared by content).
 */
#include "avro/binenc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/avro_int.h"
#include "core/error.h"

#define BE_VT_COUNT (SIPHON_V_UNCHANGED + 1)

enum {
    BE_NULL = 0,
    BE_BOOL,
    BE_INT,
    BE_LONG,
    BE_FLOAT,
    BE_DOUBLE,
    BE_BYTES,
    BE_FIXED,
    BE_DECIMAL,
    BE_STRING,
    BE_UUID,
    BE_ENUM,
    BE_RECORD,
    BE_ARRAY,
    BE_MAP,
    BE_UNION
};

/* The envelope fields siphon_binenc_write_event() fills, by name (stream.c builds the envelope
 * with these names; any other field is written as null). */
static const char *const env_names[] = {"before", "after", "source", "op", "ts_us", "event_id",
                                        "unchanged_fields"};
static const char *const src_names[] = {"connector", "db", "schema", "table", "pos", "txid",
                                        "commit_ts_us", "snapshot"};
#define ENV_NAMES 7
#define SRC_NAMES 8
enum { EV_BEFORE, EV_AFTER, EV_SOURCE, EV_OP, EV_TS_US, EV_EVENT_ID, EV_UNCHANGED };
enum { SV_CONNECTOR, SV_DB, SV_SCHEMA, SV_TABLE, SV_POS, SV_TXID, SV_COMMIT_TS, SV_SNAPSHOT };

/* One type occurrence. */
typedef struct be_ins {
    uint8_t op;
    uint8_t millis;              /* INT: from TIME in ms; LONG: from TIMESTAMP in ms */
    int8_t vt_br[BE_VT_COUNT];   /* UNION: branch taking each value type (first that accepts),
                                    -1 */
    int8_t row_br, strings_br;   /* UNION: first record branch, first array branch, -1 */
    uint16_t accept;             /* not UNION: value types taken (bit per siphon_vtype_t) */
    int32_t arg;                 /* RECORD: record index; ARRAY/MAP: instruction of the items;
                                    UNION: first branch instruction */
    int32_t n;                   /* UNION: branch count; FIXED/DECIMAL: fixed size or 0 */
    uint32_t *symlen;            /* ENUM: length of each symbol */
    const siphon_avro_type_t *t; /* the type (for messages, precision, scale, symbols) */
} be_ins_t;

typedef struct be_rec {
    const siphon_avro_type_t *t;
    int32_t first;               /* its fields are ins[first .. first + t->nfields - 1] */
} be_rec_t;

struct siphon_binenc {
    be_ins_t *ins;
    int nins, capins;
    be_rec_t *recs;
    int nrecs, caprecs;
    siphon_arena_t arena;        /* symbol lengths */
    siphon_arena_t graph;        /* the parsed schema of new_json (empty otherwise) */
    siphon_buf_t scratch;        /* long decimals */
    char uuid[40];

    /* siphon_binenc_write_event(): the envelope's fields found by name at compile time (-1
     * when the schema has no such field), and the inputs filled per event */
    int env[ENV_NAMES], src[SRC_NAMES];
    int src_rec;                 /* record index of `source`, -1 */
    int entity_n;                /* fields of the record in `after`, -1 when it holds none */
    int8_t *role;                /* per root field: the EV_* it is written from, -1 */
    int8_t *srole;               /* per field of `source`: the SV_* it is written from, -1 */
    siphon_value_t *srcv;        /* per field of `source`: its value of the event */
    /* the last source block written (the same for every event of a transaction): its bytes,
     * and what they were made from (the five texts, each NUL-terminated, one after another) */
    int src_cached, src_cache_rec, src_cache_snap;
    uint64_t src_cache_txid;
    int64_t src_cache_ts;
    siphon_buf_t src_cache_text, src_cache_bytes;
    size_t src_cache_off[5];
    const char **unch;
};

/* ---- what a type takes, and the words of every refusal (shared with stream.c) ---- */

int siphon_avro__accepts(const siphon_avro_type_t *t, siphon_vtype_t vt)
{
    switch (t->kind) {
    case SIPHON_AVRO_NULL: return vt == SIPHON_V_NULL;
    case SIPHON_AVRO_BOOLEAN: return vt == SIPHON_V_BOOL;
    case SIPHON_AVRO_INT:
        if (t->logical == SIPHON_AVRO_LT_DATE)
            return vt == SIPHON_V_DATE || vt == SIPHON_V_INT;
        if (t->logical == SIPHON_AVRO_LT_TIME_MILLIS)
            return vt == SIPHON_V_TIME || vt == SIPHON_V_INT;
        return vt == SIPHON_V_INT;
    case SIPHON_AVRO_LONG:
        switch (t->logical) {
        case SIPHON_AVRO_LT_TIME_MICROS: return vt == SIPHON_V_TIME || vt == SIPHON_V_INT;
        case SIPHON_AVRO_LT_TIMESTAMP_MILLIS:
        case SIPHON_AVRO_LT_TIMESTAMP_MICROS:
        case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS:
        case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS:
            return vt == SIPHON_V_TIMESTAMP || vt == SIPHON_V_INT;
        default: return vt == SIPHON_V_INT;
        }
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE: return vt == SIPHON_V_FLOAT || vt == SIPHON_V_INT;
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_FIXED:
        if (t->logical == SIPHON_AVRO_LT_DECIMAL)
            return vt == SIPHON_V_DECIMAL || vt == SIPHON_V_INT;
        return vt == SIPHON_V_BYTES;
    case SIPHON_AVRO_STRING:
        if (t->logical == SIPHON_AVRO_LT_UUID)
            return vt == SIPHON_V_UUID || vt == SIPHON_V_TEXT;
        return vt == SIPHON_V_TEXT || vt == SIPHON_V_JSON;
    case SIPHON_AVRO_ENUM: return vt == SIPHON_V_TEXT;
    default: return 0;
    }
}

/* ---- compilation ---- */

/* Append n zeroed instructions; returns the index of the first, or -1 when out of memory. */
static int ins_add(siphon_binenc_t *enc, int n)
{
    if (enc->nins + n > enc->capins) {
        int cap = enc->capins ? enc->capins : 32;
        while (cap < enc->nins + n)
            cap *= 2;
        be_ins_t *p = realloc(enc->ins, (size_t)cap * sizeof(*p));
        if (!p)
            return -1;
        enc->ins = p;
        enc->capins = cap;
    }
    memset(&enc->ins[enc->nins], 0, (size_t)n * sizeof(be_ins_t));
    enc->nins += n;
    return enc->nins - n;
}

static int compile_type(siphon_binenc_t *enc, int slot, const siphon_avro_type_t *t, int depth,
                        char *errbuf, size_t errsize);

/* The record's index in enc->recs, compiling it on first sight. <0 on error. */
static int compile_record(siphon_binenc_t *enc, const siphon_avro_type_t *t, int depth,
                          char *errbuf, size_t errsize)
{
    for (int i = 0; i < enc->nrecs; i++)
        if (enc->recs[i].t == t)
            return i;
    if (enc->nrecs == enc->caprecs) {
        int cap = enc->caprecs ? enc->caprecs * 2 : 4;
        be_rec_t *p = realloc(enc->recs, (size_t)cap * sizeof(*p));
        if (!p)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        enc->recs = p;
        enc->caprecs = cap;
    }
    int r = enc->nrecs++;
    int first = ins_add(enc, t->nfields);
    if (first < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    enc->recs[r].t = t;
    enc->recs[r].first = first;
    for (int i = 0; i < t->nfields; i++) {
        int rc = compile_type(enc, first + i, t->fields[i].type, depth + 1, errbuf, errsize);
        if (rc < 0)
            return rc;
    }
    return r;
}

static int compile_type(siphon_binenc_t *enc, int slot, const siphon_avro_type_t *t, int depth,
                        char *errbuf, size_t errsize)
{
    int rc, idx;
    if (depth > SIPHON_AVRO_MAX_DEPTH)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compile the Avro encoder: the schema nests deeper than %d",
                          SIPHON_AVRO_MAX_DEPTH);
    enc->ins[slot].t = t;
    for (int vt = 0; vt < BE_VT_COUNT; vt++)
        if (siphon_avro__accepts(t, (siphon_vtype_t)vt))
            enc->ins[slot].accept |= (uint16_t)(1u << vt);
    switch (t->kind) {
    case SIPHON_AVRO_NULL: enc->ins[slot].op = BE_NULL; return 0;
    case SIPHON_AVRO_BOOLEAN: enc->ins[slot].op = BE_BOOL; return 0;
    case SIPHON_AVRO_INT:
        enc->ins[slot].op = BE_INT;
        return 0;
    case SIPHON_AVRO_LONG:
        enc->ins[slot].op = BE_LONG;
        enc->ins[slot].millis = t->logical == SIPHON_AVRO_LT_TIMESTAMP_MILLIS ||
                                t->logical == SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS;
        return 0;
    case SIPHON_AVRO_FLOAT: enc->ins[slot].op = BE_FLOAT; return 0;
    case SIPHON_AVRO_DOUBLE: enc->ins[slot].op = BE_DOUBLE; return 0;
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_FIXED:
        enc->ins[slot].op = t->logical == SIPHON_AVRO_LT_DECIMAL ? BE_DECIMAL
                            : t->kind == SIPHON_AVRO_FIXED        ? BE_FIXED
                                                                  : BE_BYTES;
        enc->ins[slot].n = t->kind == SIPHON_AVRO_FIXED ? t->size : 0;
        return 0;
    case SIPHON_AVRO_STRING:
        enc->ins[slot].op = t->logical == SIPHON_AVRO_LT_UUID ? BE_UUID : BE_STRING;
        return 0;
    case SIPHON_AVRO_ENUM: {
        uint32_t *lens = siphon_arena_alloc(&enc->arena, sizeof(uint32_t) *
                                                             (size_t)(t->nsymbols ? t->nsymbols : 1));
        if (!lens)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        for (int i = 0; i < t->nsymbols; i++)
            lens[i] = (uint32_t)strlen(t->symbols[i]);
        enc->ins[slot].op = BE_ENUM;
        enc->ins[slot].symlen = lens;
        return 0;
    }
    case SIPHON_AVRO_RECORD:
        if ((rc = compile_record(enc, t, depth, errbuf, errsize)) < 0)
            return rc;
        enc->ins[slot].op = BE_RECORD;
        enc->ins[slot].arg = rc;
        return 0;
    case SIPHON_AVRO_ARRAY:
    case SIPHON_AVRO_MAP:
        if ((idx = ins_add(enc, 1)) < 0)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        enc->ins[slot].op = t->kind == SIPHON_AVRO_ARRAY ? BE_ARRAY : BE_MAP;
        enc->ins[slot].arg = idx;
        return compile_type(enc, idx, t->kind == SIPHON_AVRO_ARRAY ? t->items : t->values,
                            depth + 1, errbuf, errsize);
    case SIPHON_AVRO_UNION: {
        if (t->nbranches > 63) /* a branch index is then always one varint byte */
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not compile the Avro encoder: a union of %d branches (at "
                              "most 63)", t->nbranches);
        if ((idx = ins_add(enc, t->nbranches)) < 0)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        be_ins_t *u = &enc->ins[slot];
        u->op = BE_UNION;
        u->arg = idx;
        u->n = t->nbranches;
        u->row_br = u->strings_br = -1;
        for (int vt = 0; vt < BE_VT_COUNT; vt++) {
            u->vt_br[vt] = -1;
            for (int b = 0; b < t->nbranches && u->vt_br[vt] < 0; b++)
                if (siphon_avro__accepts(t->branches[b], (siphon_vtype_t)vt))
                    u->vt_br[vt] = (int8_t)b;
        }
        for (int b = t->nbranches - 1; b >= 0; b--) {
            if (t->branches[b]->kind == SIPHON_AVRO_RECORD)
                u->row_br = (int8_t)b;
            if (t->branches[b]->kind == SIPHON_AVRO_ARRAY)
                u->strings_br = (int8_t)b;
        }
        for (int b = 0; b < t->nbranches; b++)
            if ((rc = compile_type(enc, idx + b, t->branches[b], depth + 1, errbuf, errsize)) < 0)
                return rc;
        return 0;
    }
    default:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compile the Avro encoder: unknown type kind %d", (int)t->kind);
    }
}

/* The record a field holds (itself or a union branch), or NULL. */
static const siphon_avro_type_t *record_of(const siphon_avro_type_t *t)
{
    if (t->kind == SIPHON_AVRO_RECORD)
        return t;
    if (t->kind == SIPHON_AVRO_UNION)
        for (int b = 0; b < t->nbranches; b++)
            if (t->branches[b]->kind == SIPHON_AVRO_RECORD)
                return t->branches[b];
    return NULL;
}

/* Find the envelope's fields by name (the role of each root and source field) and allocate
 * the per-event values. */
static int prepare_event(siphon_binenc_t *enc, char *errbuf, size_t errsize)
{
    const siphon_avro_type_t *root = enc->recs[0].t, *src = NULL, *ent = NULL;
    enc->src_rec = -1;
    enc->entity_n = -1;
    for (int k = 0; k < ENV_NAMES; k++) {
        enc->env[k] = -1;
        for (int i = 0; i < root->nfields; i++)
            if (strcmp(root->fields[i].name, env_names[k]) == 0)
                enc->env[k] = i;
    }
    if (enc->env[EV_SOURCE] >= 0 && (src = record_of(root->fields[enc->env[EV_SOURCE]].type)))
        for (int r = 0; r < enc->nrecs; r++)
            if (enc->recs[r].t == src)
                enc->src_rec = r;
    for (int k = 0; k < SRC_NAMES; k++) {
        enc->src[k] = -1;
        for (int i = 0; src && i < src->nfields; i++)
            if (strcmp(src->fields[i].name, src_names[k]) == 0)
                enc->src[k] = i;
    }
    if (enc->env[EV_AFTER] >= 0 && (ent = record_of(root->fields[enc->env[EV_AFTER]].type)))
        enc->entity_n = ent->nfields;
    size_t nsrc = src ? (size_t)src->nfields : 0;
    if (!(enc->role = calloc((size_t)root->nfields + 1, 1)) ||
        !(enc->srole = calloc(nsrc + 1, 1)) ||
        !(enc->srcv = calloc(nsrc + 1, sizeof(*enc->srcv))) ||
        !(enc->unch = calloc((size_t)(ent ? ent->nfields : 0) + 1, sizeof(*enc->unch))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    memset(enc->role, -1, (size_t)root->nfields);
    memset(enc->srole, -1, nsrc);
    for (int k = 0; k < ENV_NAMES; k++)
        if (enc->env[k] >= 0 && (k != EV_SOURCE || enc->src_rec >= 0))
            enc->role[enc->env[k]] = (int8_t)k;
    for (int k = 0; k < SRC_NAMES; k++)
        if (enc->src[k] >= 0)
            enc->srole[enc->src[k]] = (int8_t)k;
    return 0;
}

void siphon_binenc_destroy(siphon_binenc_t *enc)
{
    if (!enc)
        return;
    free(enc->ins);
    free(enc->recs);
    free(enc->role);
    free(enc->srole);
    free(enc->srcv);
    free(enc->unch);
    siphon_buf_free(&enc->scratch);
    siphon_buf_free(&enc->src_cache_text);
    siphon_buf_free(&enc->src_cache_bytes);
    siphon_arena_destroy(&enc->arena);
    siphon_arena_destroy(&enc->graph);
    free(enc);
}

int siphon_binenc_new(siphon_binenc_t **out, const siphon_avro_type_t *root, char *errbuf,
                      size_t errsize)
{
    siphon_binenc_t *enc;
    int rc;
    if (!out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not compile the Avro encoder: "
                          "no output");
    *out = NULL;
    if (!root || root->kind != SIPHON_AVRO_RECORD)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compile the Avro encoder: the schema is not a record");
    if (!(enc = calloc(1, sizeof(*enc))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    siphon_arena_init(&enc->arena, 4096);
    if ((rc = compile_record(enc, root, 0, errbuf, errsize)) < 0 ||
        (rc = prepare_event(enc, errbuf, errsize)) < 0) {
        siphon_binenc_destroy(enc);
        return rc;
    }
    *out = enc;
    return 0;
}

int siphon_binenc_new_json(siphon_binenc_t **out, const char *json, size_t len, char *errbuf,
                           size_t errsize)
{
    siphon_arena_t graph;
    siphon_avro_type_t *t = NULL;
    json_error_t jerr;
    int rc;
    if (!out || !json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compile the Avro encoder: no schema");
    *out = NULL;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compile the Avro encoder: <schema>:%d:%d: %s", jerr.line,
                          jerr.column, jerr.text);
    memset(&graph, 0, sizeof(graph));
    siphon_arena_init(&graph, 16 * 1024);
    rc = siphon_avro__parse(&t, root, &graph, 1, json, len, "<schema>", errbuf, errsize);
    json_decref(root);
    if (rc == 0)
        rc = siphon_binenc_new(out, t, errbuf, errsize);
    if (rc < 0) {
        siphon_arena_destroy(&graph);
        return rc;
    }
    (*out)->graph = graph; /* the encoder owns the graph from now on */
    return 0;
}

int siphon_binenc_nfields(const siphon_binenc_t *enc)
{
    return enc ? enc->recs[0].t->nfields : 0;
}

int siphon_binenc_field_index(const siphon_binenc_t *enc, const char *name)
{
    if (!enc || !name)
        return -1;
    const siphon_avro_type_t *t = enc->recs[0].t;
    for (int i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- writing ---- */

int siphon_avro__cannot(char *errbuf, size_t errsize, const char *fname, siphon_vtype_t vt,
                        const siphon_avro_type_t *t, const char *why)
{
    char desc[256];
    siphon_avro__type_describe(t, desc, sizeof(desc));
    return siphon_err(errbuf, errsize, SIPHON_ECONVERT, "field '%s': cannot write %s as %s%s%s",
                      fname, siphon_vtype_name(vt), desc, why ? ": " : "", why ? why : "");
}

static int cannot_shape(char *errbuf, size_t errsize, const char *fname, const char *what,
                        const siphon_avro_type_t *t)
{
    char desc[256];
    siphon_avro__type_describe(t, desc, sizeof(desc));
    return siphon_err(errbuf, errsize, SIPHON_ECONVERT, "field '%s': cannot write %s as %s",
                      fname, what, desc);
}

static int nomem(char *errbuf, size_t errsize, const char *fname)
{
    return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "field '%s': out of memory", fname);
}

/* Room for n more bytes. */
static inline int room(siphon_buf_t *out, size_t n)
{
    return out->cap - out->len >= n ? 0 : siphon_buf_reserve(out, n);
}

/* Zigzag varint of n at the end of out (room for 10 bytes already made). */
static inline void put_long(siphon_buf_t *out, int64_t n)
{
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    uint8_t *p = out->data + out->len;
    while (z > 0x7f) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    out->len = (size_t)(p - out->data);
}

/* n bytes (w <= n <= 2 w) as the first and the last w of them, which overlap; w a constant. */
static inline __attribute__((always_inline)) void copy_ends(uint8_t *d, const uint8_t *s,
                                                            size_t n, size_t w)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, s, w);
    memcpy(&b, s + n - w, w);
    memcpy(d, &a, w);
    memcpy(d + n - w, &b, w);
}

/* Copy n bytes; the short runs of most fields (codes, names, numbers as text) without a call:
 * two overlapping loads and stores cover every length from 4 to 16 exactly. */
static inline __attribute__((always_inline)) void copy_bytes(uint8_t *d, const void *src,
                                                             size_t n)
{
    const uint8_t *s = src;
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        copy_ends(d, s, n, 8);
    } else if (n >= 4) {
        copy_ends(d, s, n, 4);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* A length-prefixed run of bytes. */
static inline __attribute__((always_inline)) int put_bytes(siphon_buf_t *out, const void *p,
                                                          size_t n)
{
    if (room(out, n + 10) < 0)
        return SIPHON_ENOMEM;
    put_long(out, (int64_t)n);
    copy_bytes(out->data + out->len, p, n);
    out->len += n;
    return 0;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static const int64_t pow10_tab[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

/* The common decimal: a bytes decimal whose unscaled value has at most 18 significant digits
 * after rescaling up (no dropped places), within the precision. Writes it and returns 1; 0
 * when the value needs the general path (which also words every error). */
static inline int decimal_fast(const be_ins_t *ins, const siphon_value_t *v, siphon_buf_t *out)
{
    const siphon_avro_type_t *t = ins->t;
    uint64_t mag;
    int neg;
    int32_t scale;
    if (ins->n)
        return 0; /* fixed: sign-extended to its size, the general path */
    if (v->type == SIPHON_V_INT || siphon_value_dec_is_i64(v)) {
        int64_t u = v->type == SIPHON_V_INT ? v->u.i : siphon_value_dec_i64(v);
        if (u == INT64_MIN)
            return 0;
        neg = u < 0;
        mag = (uint64_t)(neg ? -u : u);
        scale = v->type == SIPHON_V_INT ? 0 : v->u.dec.scale;
    } else {
        const char *p = v->u.dec.digits, *end = p + v->u.dec.len;
        neg = p < end && *p == '-';
        p += neg;
        if (p == end)
            return 0;
        while (p < end - 1 && *p == '0')
            p++;
        if (end - p > 18)
            return 0;
        mag = 0;
        for (const char *q = p; q < end; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (d > 9)
                return 0;
            mag = mag * 10 + d;
        }
        scale = v->u.dec.scale;
    }
    if (scale > t->scale)
        return 0;
    int zeros = t->scale - scale;
    if (mag == 0) {
        neg = 0;
    } else {
        /* significant digits + zeros within the precision and 18: mag < 10^(limit - zeros) */
        int limit = t->precision < 18 ? t->precision : 18;
        if (zeros > limit || mag >= (uint64_t)pow10_tab[limit - zeros])
            return 0;
        mag *= (uint64_t)pow10_tab[zeros];
    }
    int64_t x = neg ? -(int64_t)mag : (int64_t)mag;
    /* fewest big-endian bytes that keep the sign: the magnitude bits plus a sign bit */
    uint64_t y = x < 0 ? ~(uint64_t)x : (uint64_t)x;
    int n = y ? (65 - __builtin_clzll(y) + 7) >> 3 : 1;
    if (room(out, 11) < 0)
        return -1;
    out->data[out->len++] = (uint8_t)(n << 1); /* the length, zigzag of 1..8: one byte */
    /* the n low bytes of x, big-endian: one 8-byte store of the swapped value shifted up (room:
     * 11 bytes) of which n count */
    uint64_t be = __builtin_bswap64((uint64_t)x << (8 * (8 - n)));
    memcpy(out->data + out->len, &be, 8);
    out->len += (size_t)n;
    return 1;
}

#define COLD __attribute__((noinline, cold))

int siphon_avro__decimal_of(siphon_buf_t *scratch, const siphon_value_t *v,
                            const siphon_avro_type_t *t, const char *fname, const uint8_t **bytes,
                            size_t *n, char *errbuf, size_t errsize)
{
    char ibuf[SIPHON_DEC_I64_CHARS];
    const char *digits;
    size_t len;
    int32_t scale;
    if (v->type == SIPHON_V_INT) {
        len = (size_t)snprintf(ibuf, sizeof(ibuf), "%" PRId64, v->u.i);
        digits = ibuf;
        scale = 0;
    } else {
        len = siphon_value_dec_digits(v, ibuf, &digits);
        scale = v->u.dec.scale;
    }
    int nd;
    char why[160];
    int rc = siphon_avro__decimal_to_bytes(scratch, digits ? digits : "", digits ? len : 0, scale,
                                           t->precision, t->scale,
                                           t->kind == SIPHON_AVRO_FIXED ? t->size : 0, bytes, n,
                                           &nd);
    switch (rc) {
    case SIPHON_DEC_OK: return 0;
    case SIPHON_DEC_MALFORMED:
        return siphon_avro__cannot(errbuf, errsize, fname, v->type, t,
                                   "malformed digits (expected an optional '-' and digits)");
    case SIPHON_DEC_SCALE:
        snprintf(why, sizeof(why), "the value has %d decimal places that are not zero, the "
                 "schema's scale is %d; round it in the mapping or widen the scale",
                 (int)scale, t->scale);
        return siphon_avro__cannot(errbuf, errsize, fname, v->type, t, why);
    case SIPHON_DEC_PRECISION:
        snprintf(why, sizeof(why), "the value has %d significant digits at scale %d, more than "
                 "the precision %d", nd, t->scale, t->precision);
        return siphon_avro__cannot(errbuf, errsize, fname, v->type, t, why);
    case SIPHON_DEC_FIXED_SIZE:
        return siphon_avro__cannot(errbuf, errsize, fname, v->type, t,
                                   "the value does not fit the fixed size");
    default:
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "field '%s': out of memory", fname);
    }
}

int siphon_avro__uuid_text(char out[36], const siphon_value_t *v, const siphon_avro_type_t *t,
                           const char *fname, char *errbuf, size_t errsize)
{
    static const char hex[] = "0123456789abcdef";
    if (v->type == SIPHON_V_UUID) {
        size_t o = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                out[o++] = '-';
            out[o++] = hex[v->u.uuid[i] >> 4];
            out[o++] = hex[v->u.uuid[i] & 15];
        }
        return 0;
    }
    const char *p = v->u.s.ptr;
    if (v->u.s.len != 36)
        return siphon_avro__cannot(errbuf, errsize, fname, v->type, t,
                                   "not a UUID (expected 8-4-4-4-12 hex digits)");
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? p[i] != '-' : !is_hex(p[i]))
            return siphon_avro__cannot(errbuf, errsize, fname, v->type, t,
                                       "not a UUID (expected 8-4-4-4-12 hex digits)");
        out[i] = (p[i] >= 'A' && p[i] <= 'F') ? (char)(p[i] - 'A' + 'a') : p[i];
    }
    return 0;
}

int siphon_avro__not_symbol(char *errbuf, size_t errsize, const char *fname,
                            const siphon_value_t *v, const siphon_avro_type_t *t)
{
    char why[256];
    int n = (int)(v->u.s.len > 48 ? 48 : v->u.s.len);
    snprintf(why, sizeof(why), "\"%.*s%s\" is not one of its symbols", n,
             v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len > 48 ? "..." : "");
    return siphon_avro__cannot(errbuf, errsize, fname, v->type, t, why);
}


/* The general decimal path (long digits, fixed, dropped places) and every decimal error. */
static COLD int put_decimal_slow(siphon_binenc_t *enc, const be_ins_t *ins,
                                 const siphon_value_t *v, const char *fname, siphon_buf_t *out,
                                 char *errbuf, size_t errsize)
{
    const uint8_t *bytes;
    size_t n;
    int rc = siphon_avro__decimal_of(&enc->scratch, v, ins->t, fname, &bytes, &n, errbuf, errsize);
    if (rc < 0)
        return rc;
    if (ins->n) {
        if (room(out, n) < 0)
            return nomem(errbuf, errsize, fname);
        memcpy(out->data + out->len, bytes, n);
        out->len += n;
        return 0;
    }
    return put_bytes(out, bytes, n) < 0 ? nomem(errbuf, errsize, fname) : 0;
}

static const char unchanged_why[] =
    "the source did not send this value (a PostgreSQL TOAST value that did not change); make "
    "the field nullable or set REPLICA IDENTITY FULL on the table";

/* A value type the type does not take. */
static COLD int refused(const be_ins_t *ins, siphon_vtype_t vt, const char *fname, char *errbuf,
                        size_t errsize)
{
    if (ins->op == BE_UNION)
        return siphon_avro__cannot(errbuf, errsize, fname, vt, ins->t,
                      vt == SIPHON_V_UNCHANGED ? unchanged_why : NULL);
    return siphon_avro__cannot(errbuf, errsize, fname, vt, ins->t,
                  vt == SIPHON_V_UNCHANGED ? unchanged_why
                  : vt == SIPHON_V_NULL    ? "the field is not nullable"
                                           : NULL);
}

static COLD int int_range(const be_ins_t *ins, siphon_vtype_t vt, const char *fname,
                          char *errbuf, size_t errsize)
{
    return siphon_avro__cannot(errbuf, errsize, fname, vt, ins->t,
                  "out of range for a 32-bit int (-2147483648..2147483647)");
}

/* The rarer types: fixed and uuid. */
static COLD int put_rare(siphon_binenc_t *enc, const be_ins_t *ins, const siphon_value_t *v,
                         const char *fname, siphon_buf_t *out, char *errbuf, size_t errsize)
{
    siphon_vtype_t vt = v->type;
    if (ins->op == BE_FIXED) {
        if (v->u.s.len != (size_t)ins->n) {
            char why[96];
            snprintf(why, sizeof(why), "%zu bytes, the fixed size is %d", v->u.s.len, ins->n);
            return siphon_avro__cannot(errbuf, errsize, fname, vt, ins->t, why);
        }
        if (room(out, v->u.s.len) < 0)
            return nomem(errbuf, errsize, fname);
        if (v->u.s.len)
            memcpy(out->data + out->len, v->u.s.ptr, v->u.s.len);
        out->len += v->u.s.len;
        return 0;
    }
    if (ins->op != BE_UUID)
        return siphon_avro__cannot(errbuf, errsize, fname, vt, ins->t, NULL);
    int rc = siphon_avro__uuid_text(enc->uuid, v, ins->t, fname, errbuf, errsize);
    if (rc < 0)
        return rc;
    return put_bytes(out, enc->uuid, 36) < 0 ? nomem(errbuf, errsize, fname) : 0;
}

/* Write value v (NULL: null) as the type of instruction ins. The hot path of every field: the
 * common types are written here, everything rare or failing in the cold functions above. */
static inline __attribute__((always_inline)) int
put_value(siphon_binenc_t *enc, const be_ins_t *ins, const siphon_value_t *v, const char *fname,
          siphon_buf_t *out, char *errbuf, size_t errsize)
{
    siphon_vtype_t vt = v ? v->type : SIPHON_V_NULL;

    /* room for a branch index and any fixed-size value */
    if (out->cap - out->len < 24 && siphon_buf_reserve(out, 24) < 0)
        return nomem(errbuf, errsize, fname);
    if (ins->op == BE_UNION) {
        if (vt == SIPHON_V_UNCHANGED && ins->vt_br[SIPHON_V_NULL] >= 0)
            vt = SIPHON_V_NULL;
        int br = ins->vt_br[vt];
        if (br < 0)
            return refused(ins, vt, fname, errbuf, errsize);
        out->data[out->len++] = (uint8_t)(br << 1); /* zigzag of 0..63: one byte */
        if (vt == SIPHON_V_NULL)
            return 0;
        ins = &enc->ins[ins->arg + br];
    } else if (!(ins->accept & (1u << vt))) {
        return refused(ins, vt, fname, errbuf, errsize);
    }

    switch (ins->op) {
    case BE_STRING:
    case BE_BYTES:
        return put_bytes(out, v->u.s.ptr, v->u.s.ptr ? v->u.s.len : 0) < 0
                   ? nomem(errbuf, errsize, fname)
                   : 0;
    case BE_LONG: {
        int64_t x;
        if (vt == SIPHON_V_TIMESTAMP)
            x = ins->millis ? siphon_avro__floor_div(v->u.ts.us, 1000) : v->u.ts.us;
        else if (vt == SIPHON_V_TIME)
            x = v->u.time_us;
        else
            x = v->u.i;
        put_long(out, x);
        return 0;
    }
    case BE_INT: {
        int64_t x = vt == SIPHON_V_DATE   ? v->u.date
                    : vt == SIPHON_V_TIME ? siphon_avro__floor_div(v->u.time_us, 1000)
                                          : v->u.i;
        if (x < INT32_MIN || x > INT32_MAX)
            return int_range(ins, vt, fname, errbuf, errsize);
        put_long(out, x);
        return 0;
    }
    case BE_DECIMAL: {
        int fast = decimal_fast(ins, v, out);
        if (fast > 0)
            return 0;
        if (fast < 0)
            return nomem(errbuf, errsize, fname);
        return put_decimal_slow(enc, ins, v, fname, out, errbuf, errsize);
    }
    case BE_BOOL:
        out->data[out->len++] = v->u.b != 0;
        return 0;
    case BE_ENUM: {
        const siphon_avro_type_t *t = ins->t;
        for (int i = 0; i < t->nsymbols; i++)
            if (ins->symlen[i] == v->u.s.len && memcmp(t->symbols[i], v->u.s.ptr, v->u.s.len) == 0) {
                put_long(out, i);
                return 0;
            }
        return siphon_avro__not_symbol(errbuf, errsize, fname, v, ins->t);
    }
    case BE_FLOAT: {
        float f = vt == SIPHON_V_INT ? (float)v->u.i : (float)v->u.f;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; i++)
            out->data[out->len++] = (uint8_t)(bits >> (8 * i));
        return 0;
    }
    case BE_DOUBLE: {
        double f = vt == SIPHON_V_INT ? (double)v->u.i : v->u.f;
        uint64_t bits;
        memcpy(&bits, &f, 8);
        for (int i = 0; i < 8; i++)
            out->data[out->len++] = (uint8_t)(bits >> (8 * i));
        return 0;
    }
    case BE_NULL:
        return 0;
    default:
        return put_rare(enc, ins, v, fname, out, errbuf, errsize);
    }
}

static int put_rec_row(siphon_binenc_t *enc, int r, const siphon_value_t *vals, siphon_buf_t *out,
                       char *errbuf, size_t errsize);
static int put_rec_in(siphon_binenc_t *enc, int r, const siphon_binenc_in_t *in, siphon_buf_t *out,
                      char *errbuf, size_t errsize);

/* The instruction to write a record (ROW/RECORD inputs) or an array (STRINGS) with: ins itself,
 * or its union branch (written). NULL with errbuf set when the type takes no such thing. */
static const be_ins_t *shape_branch(siphon_binenc_t *enc, const be_ins_t *ins, int want,
                                    const char *fname, const char *what, siphon_buf_t *out,
                                    char *errbuf, size_t errsize, int *rc)
{
    if (ins->op == BE_UNION) {
        int br = want == BE_RECORD ? ins->row_br : ins->strings_br;
        if (br < 0) {
            *rc = cannot_shape(errbuf, errsize, fname, what, ins->t);
            return NULL;
        }
        if (room(out, 10) < 0) {
            *rc = nomem(errbuf, errsize, fname);
            return NULL;
        }
        put_long(out, br);
        ins = &enc->ins[ins->arg + br];
    }
    if (ins->op != want) {
        *rc = cannot_shape(errbuf, errsize, fname, what, ins->t);
        return NULL;
    }
    return ins;
}

static int put_input(siphon_binenc_t *enc, const be_ins_t *ins, const siphon_binenc_in_t *in,
                     const char *fname, siphon_buf_t *out, char *errbuf, size_t errsize)
{
    int rc = 0;
    switch (in->kind) {
    case SIPHON_BINENC_VALUE:
        return put_value(enc, ins, in->u.value, fname, out, errbuf, errsize);
    case SIPHON_BINENC_ROW:
    case SIPHON_BINENC_RECORD:
        if (in->kind == SIPHON_BINENC_ROW ? !in->u.row : !in->u.rec)
            return put_value(enc, ins, NULL, fname, out, errbuf, errsize);
        if (!(ins = shape_branch(enc, ins, BE_RECORD, fname, "a record", out, errbuf, errsize,
                                 &rc)))
            return rc;
        return in->kind == SIPHON_BINENC_ROW
                   ? put_rec_row(enc, ins->arg, in->u.row, out, errbuf, errsize)
                   : put_rec_in(enc, ins->arg, in->u.rec, out, errbuf, errsize);
    case SIPHON_BINENC_STRINGS: {
        if (!(ins = shape_branch(enc, ins, BE_ARRAY, fname, "an array of strings", out, errbuf,
                                 errsize, &rc)))
            return rc;
        const be_ins_t *items = &enc->ins[ins->arg];
        if (items->op != BE_STRING)
            return cannot_shape(errbuf, errsize, fname, "an array of strings", ins->t);
        int n = in->u.strings.n;
        if (room(out, 10) < 0)
            return nomem(errbuf, errsize, fname);
        if (n > 0) {
            put_long(out, n);
            for (int i = 0; i < n; i++) {
                const char *s = in->u.strings.v[i];
                if (put_bytes(out, s, s ? strlen(s) : 0) < 0)
                    return nomem(errbuf, errsize, fname);
            }
            if (room(out, 1) < 0)
                return nomem(errbuf, errsize, fname);
        }
        out->data[out->len++] = 0;
        return 0;
    }
    default:
        return put_value(enc, ins, NULL, fname, out, errbuf, errsize);
    }
}

static int put_rec_row(siphon_binenc_t *enc, int r, const siphon_value_t *vals, siphon_buf_t *out,
                       char *errbuf, size_t errsize)
{
    const be_rec_t *rec = &enc->recs[r];
    const be_ins_t *ins = &enc->ins[rec->first];
    const siphon_avro_field_t *f = rec->t->fields;
    int n = rec->t->nfields, rc;
    for (int i = 0; i < n; i++)
        if ((rc = put_value(enc, &ins[i], &vals[i], f[i].name, out, errbuf, errsize)) < 0)
            return rc;
    return 0;
}

static int put_rec_in(siphon_binenc_t *enc, int r, const siphon_binenc_in_t *in, siphon_buf_t *out,
                      char *errbuf, size_t errsize)
{
    const be_rec_t *rec = &enc->recs[r];
    const siphon_avro_field_t *f = rec->t->fields;
    int n = rec->t->nfields, rc;
    for (int i = 0; i < n; i++)
        if ((rc = put_input(enc, &enc->ins[rec->first + i], &in[i], f[i].name, out, errbuf,
                            errsize)) < 0)
            return rc;
    return 0;
}

/* The root record from values (vals) or from inputs (in, when vals is NULL); nothing appended
 * on error. */
static int write_root(siphon_binenc_t *enc, const siphon_value_t *vals,
                      const siphon_binenc_in_t *in, siphon_buf_t *out, char *errbuf,
                      size_t errsize)
{
    if (!enc || (!vals && !in) || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode: no %s",
                          !enc ? "encoder" : !out ? "output buffer" : "values");
    size_t start = out->len;
    int rc = vals ? put_rec_row(enc, 0, vals, out, errbuf, errsize)
                  : put_rec_in(enc, 0, in, out, errbuf, errsize);
    if (rc < 0)
        out->len = start;
    return rc;
}

int siphon_binenc_write_row(siphon_binenc_t *enc, const siphon_value_t *vals, siphon_buf_t *out,
                            char *errbuf, size_t errsize)
{
    if (!vals)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode: no values");
    return write_root(enc, vals, NULL, out, errbuf, errsize);
}

int siphon_binenc_write(siphon_binenc_t *enc, const siphon_binenc_in_t *in, siphon_buf_t *out,
                        char *errbuf, size_t errsize)
{
    if (!in)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode: no inputs");
    return write_root(enc, NULL, in, out, errbuf, errsize);
}

/* A text value of a C string (NULL is the empty string, as stream.c writes it). */
static void text_value(siphon_value_t *v, const char *s)
{
    v->type = SIPHON_V_TEXT;
    v->u.s.ptr = s ? s : "";
    v->u.s.len = s ? strlen(s) : 0;
}

static void int_value(siphon_value_t *v, int64_t i)
{
    v->type = SIPHON_V_INT;
    v->u.i = i;
}

/* Is the source block s the one the cache holds the bytes of? (Compared by content: the
 * caller may reuse its strings' memory for another transaction.) */
static int source_cached(const siphon_binenc_t *enc, int r, const siphon_avro_source_t *s)
{
    if (!enc->src_cached || enc->src_cache_rec != r || enc->src_cache_txid != s->txid ||
        enc->src_cache_ts != s->commit_ts_us || enc->src_cache_snap != (s->snapshot != 0))
        return 0;
    const char *texts[5] = {s->connector, s->db, s->schema, s->table, s->pos};
    const char *c = (const char *)enc->src_cache_text.data;
    for (int k = 0; k < 5; k++)
        if (strcmp(c + enc->src_cache_off[k], texts[k] ? texts[k] : "") != 0)
            return 0;
    return 1;
}

/* Remember the bytes of source block s, just written at out[start..]. Nothing on failure (the
 * cache is only an optimisation). */
static void source_cache(siphon_binenc_t *enc, int r, const siphon_avro_source_t *s,
                         const siphon_buf_t *out, size_t start)
{
    const char *texts[5] = {s->connector, s->db, s->schema, s->table, s->pos};
    enc->src_cached = 0;
    siphon_buf_reset(&enc->src_cache_text);
    siphon_buf_reset(&enc->src_cache_bytes);
    for (int k = 0; k < 5; k++) {
        const char *t = texts[k] ? texts[k] : "";
        enc->src_cache_off[k] = enc->src_cache_text.len;
        if (siphon_buf_append(&enc->src_cache_text, t, strlen(t) + 1) < 0)
            return;
    }
    if (siphon_buf_append(&enc->src_cache_bytes, out->data + start, out->len - start) < 0)
        return;
    enc->src_cache_rec = r;
    enc->src_cache_txid = s->txid;
    enc->src_cache_ts = s->commit_ts_us;
    enc->src_cache_snap = s->snapshot != 0;
    enc->src_cached = 1;
}

/* The source block of ev as record r (the one `source` holds), each field from its value; the
 * same block as the last event's (every event of a transaction) is copied from the cache. */
static int put_source(siphon_binenc_t *enc, int r, const siphon_avro_source_t *s,
                      siphon_buf_t *out, char *errbuf, size_t errsize)
{
    const be_rec_t *rec = &enc->recs[r];
    const siphon_avro_field_t *f = rec->t->fields;
    int n = rec->t->nfields, rc;
    size_t start = out->len;
    if (source_cached(enc, r, s)) {
        size_t len = enc->src_cache_bytes.len;
        if (room(out, len) < 0)
            return nomem(errbuf, errsize, rec->t->name);
        memcpy(out->data + out->len, enc->src_cache_bytes.data, len);
        out->len += len;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        siphon_value_t *v = &enc->srcv[i];
        switch (enc->srole[i]) {
        case SV_CONNECTOR: text_value(v, s->connector); break;
        case SV_DB: text_value(v, s->db); break;
        case SV_SCHEMA: text_value(v, s->schema); break;
        case SV_TABLE: text_value(v, s->table); break;
        case SV_POS: text_value(v, s->pos); break;
        case SV_TXID:
            if (s->txid)
                int_value(v, (int64_t)s->txid);
            else
                v->type = SIPHON_V_NULL;
            break;
        case SV_COMMIT_TS: int_value(v, s->commit_ts_us); break;
        case SV_SNAPSHOT:
            v->type = SIPHON_V_BOOL;
            v->u.b = s->snapshot != 0;
            break;
        default: v = NULL; break; /* a field the event does not describe: null */
        }
        if ((rc = put_value(enc, &enc->ins[rec->first + i], v, f[i].name, out, errbuf,
                            errsize)) < 0)
            return rc;
    }
    source_cache(enc, r, s, out, start);
    return 0;
}

/* A root field written from a row (row NULL: null). */
static int put_row_field(siphon_binenc_t *enc, const be_ins_t *ins, const siphon_value_t *row,
                         const char *fname, siphon_buf_t *out, char *errbuf, size_t errsize)
{
    int rc = 0;
    if (!row)
        return put_value(enc, ins, NULL, fname, out, errbuf, errsize);
    if (!(ins = shape_branch(enc, ins, BE_RECORD, fname, "a record", out, errbuf, errsize, &rc)))
        return rc;
    return put_rec_row(enc, ins->arg, row, out, errbuf, errsize);
}

/* The envelope's root fields written straight from the event, field by field (what the
 * inputs of siphon_binenc_write() would give, without building them). */
static int put_event(siphon_binenc_t *enc, const siphon_avro_event_t *ev,
                     const siphon_binenc_extra_t *extra, int nextra, siphon_buf_t *out,
                     char *errbuf, size_t errsize)
{
    const be_rec_t *rec = &enc->recs[0];
    const siphon_avro_field_t *f = rec->t->fields;
    int n = rec->t->nfields, nunch = 0, rc = 0;
    const siphon_value_t *before = ev->before;
    char opc = ev->op;
    siphon_value_t v;

    /* an old row the source sent only in part (the key) is written as null */
    for (int i = 0; i < enc->entity_n && before; i++)
        if (before[i].type == SIPHON_V_UNCHANGED)
            before = NULL;
    if (enc->env[EV_AFTER] >= 0 && ev->after) {
        const siphon_avro_type_t *ent = record_of(f[enc->env[EV_AFTER]].type);
        for (int i = 0; i < enc->entity_n; i++)
            if (ev->after[i].type == SIPHON_V_UNCHANGED)
                enc->unch[nunch++] = ent->fields[i].name;
    }
    for (int i = 0; i < n; i++) {
        const be_ins_t *ins = &enc->ins[rec->first + i];
        const siphon_binenc_in_t *ov = NULL;
        for (int k = 0; k < nextra && extra; k++)
            if (extra[k].field == i)
                ov = &extra[k].in; /* the last one given wins */
        if (ov) {
            rc = put_input(enc, ins, ov, f[i].name, out, errbuf, errsize);
        } else {
            switch (enc->role[i]) {
            case EV_BEFORE:
                rc = put_row_field(enc, ins, before, f[i].name, out, errbuf, errsize);
                break;
            case EV_AFTER:
                rc = put_row_field(enc, ins, ev->after, f[i].name, out, errbuf, errsize);
                break;
            case EV_SOURCE: {
                if (!(ins = shape_branch(enc, ins, BE_RECORD, f[i].name, "a record", out, errbuf,
                                         errsize, &rc)))
                    break;
                rc = put_source(enc, ins->arg, &ev->source, out, errbuf, errsize);
                break;
            }
            case EV_OP:
                v.type = SIPHON_V_TEXT;
                v.u.s.ptr = &opc;
                v.u.s.len = 1;
                rc = put_value(enc, ins, &v, f[i].name, out, errbuf, errsize);
                break;
            case EV_TS_US:
                int_value(&v, ev->ts_us);
                rc = put_value(enc, ins, &v, f[i].name, out, errbuf, errsize);
                break;
            case EV_EVENT_ID:
                text_value(&v, ev->event_id);
                rc = put_value(enc, ins, &v, f[i].name, out, errbuf, errsize);
                break;
            case EV_UNCHANGED: {
                siphon_binenc_in_t in = {.kind = SIPHON_BINENC_STRINGS};
                in.u.strings.v = enc->unch;
                in.u.strings.n = nunch;
                rc = put_input(enc, ins, &in, f[i].name, out, errbuf, errsize);
                break;
            }
            default:
                rc = put_value(enc, ins, NULL, f[i].name, out, errbuf, errsize);
                break;
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int siphon_binenc_write_event(siphon_binenc_t *enc, const siphon_avro_event_t *ev,
                              const siphon_binenc_extra_t *extra, int nextra, siphon_buf_t *out,
                              char *errbuf, size_t errsize)
{
    if (!enc || !ev || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode event: no %s",
                          !enc ? "encoder" : !ev ? "event" : "output buffer");
    const siphon_avro_type_t *root = enc->recs[0].t;
    for (int i = 0; i < nextra && extra; i++)
        if (extra[i].field < 0 || extra[i].field >= root->nfields)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not encode event: no field %d in record %s", extra[i].field,
                              root->name);
    size_t start = out->len;
    int rc = put_event(enc, ev, extra, nextra, out, errbuf, errsize);
    if (rc < 0)
        out->len = start;
    return rc;
}
