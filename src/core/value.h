/*
 * value.h - the typed value model and the change record: the one language connectors,
 * mappings and the Avro encoder speak.
 *
 * Connectors convert source values into siphon_value_t; mappings read and produce them; the
 * encoder writes them. A value never owns its bytes: text, bytes, json and decimal digits point
 * into memory owned by whoever produced the value (a connector's per-batch buffer, a mapping's
 * per-row arena) and stay valid until that owner is reset (for a connector: the next call to its
 * next() callback). Copy what must outlive that.
 *
 * Money is never a C double: decimals travel as their unscaled integer in decimal digits plus a
 * scale ("-12345", scale 2 is -123.45), or, when that integer fits 64 bits and whoever makes the
 * value has it as a number already (a mapping's implied decimals of an integer column), as the
 * integer itself: digits NULL and the integer in `len` (the int64 form; read and write it with
 * the siphon_value_dec_i64* helpers below, which keep that detail in one place).
 */
#ifndef SIPHON_CORE_VALUE_H
#define SIPHON_CORE_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum siphon_vtype {
    SIPHON_V_NULL = 0,
    SIPHON_V_BOOL,
    SIPHON_V_INT,       /* int64 */
    SIPHON_V_FLOAT,     /* double (float4/float8 columns only, never money) */
    SIPHON_V_DECIMAL,   /* unscaled integer as optional '-' + decimal digits, plus scale */
    SIPHON_V_TEXT,      /* UTF-8 bytes (not NUL-terminated) */
    SIPHON_V_BYTES,     /* raw bytes */
    SIPHON_V_DATE,      /* days since 1970-01-01 */
    SIPHON_V_TIME,      /* microseconds since midnight */
    SIPHON_V_TIMESTAMP, /* microseconds since 1970-01-01T00:00:00Z; tz flag says "with time zone" */
    SIPHON_V_UUID,      /* 16 bytes */
    SIPHON_V_JSON,      /* JSON text, UTF-8 */
    SIPHON_V_RAWTEXT,   /* legacy-encoded text: raw bytes whose charset a mapping must convert */
    SIPHON_V_UNCHANGED  /* not sent by the source (Postgres TOAST-unchanged): not data, never encode */
} siphon_vtype_t;

typedef struct siphon_value {
    siphon_vtype_t type;
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *digits; /* '-'? [0-9]+ , no leading '+', no decimal point; NULL: the
                                   int64 form (the unscaled integer is the bits of len) */
            size_t len;
            int32_t scale;
        } dec;
        struct {
            const char *ptr;
            size_t len;
        } s; /* TEXT, BYTES, JSON, RAWTEXT */
        int32_t date;
        int64_t time_us;
        struct {
            int64_t us;
            int tz;
        } ts;
        uint8_t uuid[16];
    } u;
} siphon_value_t;

const char *siphon_vtype_name(siphon_vtype_t t);

/* 1 when two values are the same type and the same value (decimals compared as written:
 * "1.0" and "1.00" differ), else 0. */
int siphon_value_equal(const siphon_value_t *a, const siphon_value_t *b);

/* Write a value as human-readable text into buf (NUL-terminated, truncated to size). Dates as
 * YYYY-MM-DD, timestamps as ISO-8601, decimals with their point. Returns the length it needed. */
size_t siphon_value_format(const siphon_value_t *v, char *buf, size_t size);

/* Parse a decimal text "-123.4500" into digits/scale form. The digits are written to `out`
 * (size outsize, needs strlen(text)+1); v->u.dec.digits points into out. 0 or SIPHON_EINVAL. */
int siphon_value_decimal_parse(siphon_value_t *v, const char *text, size_t len, char *out,
                               size_t outsize);

/* The int64 form of a decimal (see the top of this file): 1 when v (a DECIMAL) holds it. */
static inline int siphon_value_dec_is_i64(const siphon_value_t *v)
{
    return v->u.dec.digits == NULL;
}

/* The unscaled integer of a DECIMAL in the int64 form. */
static inline int64_t siphon_value_dec_i64(const siphon_value_t *v)
{
    return (int64_t)(uint64_t)v->u.dec.len;
}

/* Make v the DECIMAL unscaled / 10^scale in the int64 form (nothing to allocate). */
static inline void siphon_value_set_dec_i64(siphon_value_t *v, int64_t unscaled, int32_t scale)
{
    v->type = SIPHON_V_DECIMAL;
    v->u.dec.digits = NULL;
    v->u.dec.len = (size_t)(uint64_t)unscaled;
    v->u.dec.scale = scale;
}

/* The digits of a DECIMAL in either form: *digits points at v's own digits, or (int64 form) at
 * buf, which must hold SIPHON_DEC_I64_CHARS bytes, where they are written. Returns their length
 * (the digits are not NUL-terminated). */
#define SIPHON_DEC_I64_CHARS 24
size_t siphon_value_dec_digits(const siphon_value_t *v, char *buf, const char **digits);

/* ---- relations and rows ---- */

/* One column of a source table as the connector sees it. */
typedef struct siphon_column {
    char *name;
    uint32_t type_oid;   /* source type id (Postgres OID, MySQL type code...) for messages */
    char *type_name;     /* source type name ("numeric(12,2)", "bpchar"), for messages */
    siphon_vtype_t vtype;/* what values of this column decode to */
    int32_t typmod;      /* source type modifier (-1 when none) */
    int is_key;          /* part of the replica identity / primary key (with Postgres'
                            REPLICA IDENTITY FULL: every column) */
    int is_pkey;         /* part of the table's primary key (0 for every column when the
                            table has none); differs from is_key under REPLICA IDENTITY FULL
                            or USING INDEX */
} siphon_column_t;

/* A source table's shape. Owned by the connector; valid at least until the connector's next()
 * is called again after the batch that referenced it. `version` changes whenever the shape
 * changes (ALTER TABLE), so a mapping can cache a compiled binding per (relation, version). */
typedef struct siphon_relation {
    uint32_t id;         /* connector-assigned table id (Postgres relation OID) */
    uint64_t version;    /* unique across the process for each distinct shape */
    char *schema;        /* "public" */
    char *name;          /* "oehdr" */
    int ncols;
    siphon_column_t *cols;
} siphon_relation_t;

/* A row image: one value per relation column, in relation column order. */
typedef struct siphon_row {
    int ncols;
    siphon_value_t *vals;
} siphon_row_t;

/* ---- positions ---- */

/* A source position. For Postgres `num` is the LSN and `text` is NULL; sources whose positions
 * are not one number (MySQL GTID sets, ODBC watermarks) put their text form in `text`, owned by
 * whoever holds the position (siphon_pos_copy() duplicates it, siphon_pos_free() releases it). */
typedef struct siphon_pos {
    uint64_t num;
    char *text;
} siphon_pos_t;

int siphon_pos_copy(siphon_pos_t *dst, const siphon_pos_t *src);
void siphon_pos_free(siphon_pos_t *pos);

/* ---- change records ---- */

typedef enum siphon_rec_kind {
    SIPHON_REC_BEGIN = 1, /* a source transaction starts: txid, commit_ts_us, pos (its commit
                             position when the source knows it already, as Postgres does) */
    SIPHON_REC_CHANGE,    /* a row change inside the current transaction */
    SIPHON_REC_COMMIT,    /* the current transaction ends: pos is its commit position */
    SIPHON_REC_POSITION   /* no transaction: the source has sent everything up to pos (idle or
                             filtered traffic, keepalives); acknowledge it once everything
                             before it is delivered, so logs do not pile up */
} siphon_rec_kind_t;

typedef enum siphon_op {
    SIPHON_OP_CREATE = 'c',
    SIPHON_OP_UPDATE = 'u',
    SIPHON_OP_DELETE = 'd',
    SIPHON_OP_READ = 'r',    /* snapshot row */
    SIPHON_OP_TRUNCATE = 't' /* the whole table was emptied; before/after are NULL */
} siphon_op_t;

typedef struct siphon_change {
    siphon_rec_kind_t kind;
    siphon_op_t op;                /* CHANGE only */
    const siphon_relation_t *rel;  /* CHANGE only; borrowed from the connector */
    const siphon_row_t *before;    /* CHANGE: old image when the source sent one, else NULL.
                                      With REPLICA IDENTITY DEFAULT only key columns are set;
                                      the others are SIPHON_V_UNCHANGED. */
    const siphon_row_t *after;     /* CHANGE: new image for c/u/r, NULL for d/t */
    uint64_t txid;                 /* BEGIN/CHANGE/COMMIT: source transaction id (0 if none) */
    int64_t commit_ts_us;          /* BEGIN/CHANGE/COMMIT: commit time, µs since the epoch */
    siphon_pos_t pos;              /* BEGIN/COMMIT/POSITION: see above; CHANGE: the position of
                                      the change itself (its LSN), for messages */
    int snapshot;                  /* CHANGE: 1 for snapshot rows ('r') */
    const char *database;          /* borrowed: the source database name */
} siphon_change_t;

#endif
