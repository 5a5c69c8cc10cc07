/*
 * avro_int.h - private declarations shared by the files of the Avro module (schema.c,
 * canonical.c, decimal.c, stream.c, decode.c). Nothing outside src/avro/ includes this.
 *
 * The module keeps two pictures of every schema: the JSON text (what is published, with
 * logicalType, doc and defaults) and a graph of siphon_avro_type_t nodes parsed from it (what the
 * encoder, the decoder and the canonical form walk). Named types are shared nodes: a reference
 * to a record, enum or fixed points at its definition, so the graph may have cycles (a record
 * that contains itself through a union). All nodes of one graph live in one arena and are freed
 * together; nothing in a graph is freed on its own.
 */
#ifndef SIPHON_AVRO_INT_H
#define SIPHON_AVRO_INT_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "avro/binenc.h"
#include "avro/siphon_avro.h"
#include "core/buf.h"

/* Deepest nesting of JSON a schema may have (records in arrays in unions...). */
#define SIPHON_AVRO_MAX_DEPTH 64

/* Parse one Avro schema (any type at the top) from a jansson value into nodes allocated in
 * `arena`. `text`/`len` is the JSON the value came from: errors are located in it and reported
 * as "<origin>:<line>:<column>: <what>" in errbuf. strict (1) additionally checks what the
 * specification lets readers ignore but our published schemas must get right: logical types
 * on the right base type with valid precision/scale, field defaults that match their type,
 * logicalType misplaced on a field. On error returns SIPHON_EINVAL, *out is NULL and whatever
 * was allocated stays in the arena (the caller resets or destroys it). */
int siphon_avro__parse(siphon_avro_type_t **out, json_t *root, siphon_arena_t *arena, int strict,
                       const char *text, size_t len, const char *origin, char *errbuf,
                       size_t errsize);

/* Append the Parsing Canonical Form of a parsed type to out. 0 or SIPHON_ENOMEM. */
int siphon_avro__canonical_append(siphon_buf_t *out, const siphon_avro_type_t *t);

/* Append a JSON string literal (quoted, escaped; bytes that are not UTF-8 become U+FFFD). */
int siphon_avro__json_string(siphon_buf_t *out, const char *s, size_t len);

/* The type as a jansson value, with logical attributes, named types defined at their first
 * occurrence and referenced by full name afterwards. `ns` is the namespace of the enclosing
 * definition ("" or NULL for none). Caller owns the result (json_decref). NULL when out of
 * memory. */
json_t *siphon_avro__type_to_json(const siphon_avro_type_t *t, const char *ns);

/* A short human description of a type for messages: "long (timestamp-micros)",
 * "bytes (decimal(12,2))", "enum com.acme.Status", "union [null, string]". */
void siphon_avro__type_describe(const siphon_avro_type_t *t, char *buf, size_t size);

/* The namespace part of a full name (up to the last dot) copied into buf; "" when none. */
void siphon_avro__namespace_of(const char *fullname, char *buf, size_t size);

/* The name of a logical type as in the specification ("timestamp-micros"), NULL for none. */
const char *siphon_avro__logical_name(siphon_avro_logical_t lt);

/* ---- streams (stream.c, decode.c) ---- */

/* Positions of the envelope's fields (stream.c builds the envelope in this order). */
enum {
    ENV_BEFORE = 0,
    ENV_AFTER,
    ENV_SOURCE,
    ENV_OP,
    ENV_TS_US,
    ENV_EVENT_ID,
    ENV_UNCHANGED,
    ENV_TRANSACTION,
    ENV_NFIELDS
};
enum {
    SRC_CONNECTOR = 0,
    SRC_DB,
    SRC_SCHEMA,
    SRC_TABLE,
    SRC_POS,
    SRC_TXID,
    SRC_COMMIT_TS_US,
    SRC_SNAPSHOT,
    SRC_NFIELDS
};

/* One entity's key and envelope: published JSON, parsed types, and the avro-c machinery that
 * encodes them. The avro-c values are built once and overwritten field by field for every
 * event (set_branch, give_string_len...), so the hot path allocates nothing in steady state.
 * Not thread-safe: one stream is used by one thread (the pipeline's). */
struct siphon_avro_stream {
    const siphon_schema_t *sch;        /* borrowed */
    siphon_arena_t arena;              /* key_type and env_type graphs */
    char *key_json, *value_json;       /* published schemas (malloc) */
    uint64_t key_fp, value_fp;
    uint8_t key_hdr[SIPHON_AVRO_SOE_HEADER_LEN], value_hdr[SIPHON_AVRO_SOE_HEADER_LEN];
    const siphon_avro_type_t *key_type;   /* record <Entity>Key */
    const siphon_avro_type_t *env_type;   /* record <Entity>Envelope */
    const siphon_avro_type_t *entity;     /* the entity record inside env_type */
    int nkey;
    int *key_index;                    /* entity field index of each key field (malloc) */
    avro_schema_t key_schema, value_schema;
    avro_value_iface_t *key_iface, *value_iface;
    avro_value_t key_value, env_value;
    int have_key_value, have_env_value;
    avro_value_t env_field[ENV_NFIELDS]; /* children of env_value (stable pointers) */
    avro_value_t src_field[SRC_NFIELDS]; /* children of the source record */
    avro_writer_t writer;              /* memory writer pointed at the caller's buffer */
    char writer_dummy[8];
    siphon_buf_t scratch;              /* decimal conversion */
    char uuid[40];                     /* uuid text being written */
    size_t key_hint, value_hint;       /* largest encoding so far, to size the output */
    siphon_binenc_t *key_enc, *env_enc; /* the encoders of the hot path (binenc.c), compiled
                                           from key_type and env_type */
    int env_txn;                       /* env_enc's field index of `transaction`, -1 */
};

/* stream.c encodes with binenc; its avro-c writer stays as the reference that
 * tests/unit/avro/test_binenc.c compares binenc with (same contracts as the public
 * siphon_avro_stream_encode_key/_value). */
#define SIPHON_AVRO_STREAM_BINENC 1
int siphon_avro__stream_encode_key_avroc(siphon_avro_stream_t *st, const siphon_value_t *key,
                                         siphon_buf_t *out, char *errbuf, size_t errsize);
int siphon_avro__stream_encode_value_avroc(siphon_avro_stream_t *st,
                                           const siphon_avro_event_t *ev, siphon_buf_t *out,
                                           char *errbuf, size_t errsize);

/* ---- decimals (decimal.c) ---- */

/* Outcome of converting a decimal to the bytes of a decimal(precision, scale) type. */
enum {
    SIPHON_DEC_OK = 0,
    SIPHON_DEC_MALFORMED = -1,   /* digits are not '-'?[0-9]+ */
    SIPHON_DEC_SCALE = -2,       /* more decimal places than the scale, and they are not zeros */
    SIPHON_DEC_PRECISION = -3,   /* more significant digits than the precision */
    SIPHON_DEC_FIXED_SIZE = -4,  /* does not fit the fixed size */
    SIPHON_DEC_NOMEM = -5
};

/* Convert the unscaled integer `digits` (len bytes, '-'?[0-9]+, not NUL-terminated) at scale
 * `scale` to the two's-complement big-endian bytes of the unscaled value at `to_scale`, minimal
 * length (or sign-extended to fixed_size when fixed_size > 0). The bytes are written to
 * scratch (reset first); on success *out and *outlen point into it. *ndigits receives the count of
 * significant digits after rescaling (for messages). */
int siphon_avro__decimal_to_bytes(siphon_buf_t *scratch, const char *digits, size_t len,
                                  int32_t scale, int precision, int to_scale, int fixed_size,
                                  const uint8_t **out, size_t *outlen, int *ndigits);

/* Render two's-complement big-endian bytes at `scale` as decimal text ("-123.45", "0.00")
 * appended to out. 0 or SIPHON_ENOMEM. */
int siphon_avro__decimal_from_bytes(siphon_buf_t *out, const uint8_t *p, size_t len, int scale);

/* ---- dates and times (decode.c) ---- */

/* days since 1970-01-01 -> "YYYY-MM-DD" (proleptic Gregorian, years outside 0..9999 signed). */
int siphon_avro__format_date(char *buf, size_t size, int64_t days);

/* microseconds since the epoch -> "YYYY-MM-DDTHH:MM:SS.ffffff" + ("Z" when utc); digits is 6
 * for microseconds or 3 for milliseconds (then `us` must be a multiple of 1000). */
int siphon_avro__format_timestamp(char *buf, size_t size, int64_t us, int digits, int utc);

#endif
