/*
 * binenc.h - a direct Avro binary encoder: a record schema compiled once into a flat program,
 * then typed values (core/value.h) written straight into a siphon_buf_t, with the logical types
 * applied exactly as stream.c applies them, and no allocation per event once warm.
 *
 * Why this exists next to avro-c: avro-c's generic value writer (fill an avro_value_t field by
 * field, then avro_value_write() it) costs about 1.8 µs for one sales_order_line event (key and
 * envelope) on our machine, more than the whole per-event budget of the 1,000,000 rows/s
 * target for mapping plus encoding (docs/performance.md). Writing the binary form directly from
 * a program compiled from the schema needs no intermediate value: each field is one switch on
 * a precomputed opcode, a varint or a memcpy. avro-c stays the reference: tests/unit/avro/
 * test_binenc.c checks that both produce the same bytes, and the same errors, over the golden
 * cases and random values for every canonical schema.
 *
 * The encoder is driven by the schema alone: compile it from the JSON of any record schema (or
 * from a parsed siphon_avro_type_t graph) and it knows every field, so a field added to a
 * schema (the envelope gaining an optional block) is one more input, not new code. It writes
 * the Avro binary body only: framing (single-object header, Confluent's magic byte and id) is
 * the caller's.
 *
 * Inputs: a record is written from one input per field, in schema order, each one of
 *   VALUE    a typed value (NULL pointer: null). Accepted value types per Avro type are those
 *            of siphon_avro_stream_encode_key() (siphon_avro.h); a union takes the first branch
 *            that accepts the value's type. SIPHON_V_UNCHANGED is written as null where the
 *            type is nullable, else it is an error.
 *   ROW      a record (or a union holding one) from one value per field, in schema order, the
 *            way mappings produce entity images; NULL pointer: null.
 *   RECORD   a record from one input per field (nested records); NULL pointer: null.
 *   STRINGS  an array of strings (NUL-terminated).
 *   NULL     null (the zero value of an input, so a field nobody fills is null when its type
 *            allows it, and an error naming the field otherwise).
 *
 * Errors are stream.c's, word for word: SIPHON_ECONVERT with "field 'x': cannot write <value
 * type> as <avro type>[: why]" in errbuf; the output buffer keeps its length (whatever was
 * appended is dropped). One encoder is used by one thread (a scratch buffer for long decimals,
 * the last event's source block).
 */
#ifndef SIPHON_AVRO_BINENC_H
#define SIPHON_AVRO_BINENC_H

#include <stddef.h>
#include <stdint.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/value.h"

typedef struct siphon_binenc siphon_binenc_t;

typedef enum siphon_binenc_kind {
    SIPHON_BINENC_NULL = 0,
    SIPHON_BINENC_VALUE,
    SIPHON_BINENC_ROW,
    SIPHON_BINENC_RECORD,
    SIPHON_BINENC_STRINGS
} siphon_binenc_kind_t;

/* One input of a record field. Everything it points at is borrowed for the call. */
typedef struct siphon_binenc_in {
    siphon_binenc_kind_t kind;
    union {
        const siphon_value_t *value;            /* VALUE */
        const siphon_value_t *row;              /* ROW: one value per field of the record */
        const struct siphon_binenc_in *rec;     /* RECORD: one input per field of the record */
        struct {
            const char *const *v;
            int n;
        } strings;                              /* STRINGS */
    } u;
} siphon_binenc_in_t;

/* Compile an encoder for a record type (a parsed graph, e.g. a stream's key or envelope type).
 * Borrows root: the graph must outlive the encoder. SIPHON_EINVAL when root is not a record
 * (or a type in it cannot be compiled), SIPHON_ENOMEM. Caller frees with
 * siphon_binenc_destroy(), which accepts NULL. */
int siphon_binenc_new(siphon_binenc_t **out, const siphon_avro_type_t *root, char *errbuf,
                      size_t errsize);

/* Compile an encoder from the JSON text of a record schema (parsed strictly, as published
 * schemas are; the encoder keeps its own copy of the parsed graph). Same contract. */
int siphon_binenc_new_json(siphon_binenc_t **out, const char *json, size_t len, char *errbuf,
                           size_t errsize);

void siphon_binenc_destroy(siphon_binenc_t *enc);

/* The root record's field count, and the index of a field by name (-1 when it has none). */
int siphon_binenc_nfields(const siphon_binenc_t *enc);
int siphon_binenc_field_index(const siphon_binenc_t *enc, const char *name);

/* Append the root record written from one value per field (schema order). */
int siphon_binenc_write_row(siphon_binenc_t *enc, const siphon_value_t *vals, siphon_buf_t *out,
                            char *errbuf, size_t errsize);

/* Append the root record written from one input per field (schema order). */
int siphon_binenc_write(siphon_binenc_t *enc, const siphon_binenc_in_t *in, siphon_buf_t *out,
                        char *errbuf, size_t errsize);

/* A root field's input given by the caller of siphon_binenc_write_event(): a field the event
 * struct does not describe (an envelope field added later, such as a transaction block). */
typedef struct siphon_binenc_extra {
    int field;                /* root field index (siphon_binenc_field_index) */
    siphon_binenc_in_t in;
} siphon_binenc_extra_t;

/* Append a change event written with an envelope schema (stream.c's <Entity>Envelope): the
 * root fields named before, after, source, op, ts_us, event_id and unchanged_fields, and the
 * source record's connector, db, schema, table, pos, txid, commit_ts_us and snapshot, are
 * filled from ev by name, as stream.c fills them (an old row holding an unchanged value is
 * written as null; unchanged values of `after` are written as null and their field names
 * listed in unchanged_fields; txid 0 is null; a NULL string is empty); extra[0..nextra-1] (may
 * be NULL) give or override the inputs of other root fields; every field left is written as
 * null. The op, event_id and truncate rules are the caller's to check. */
int siphon_binenc_write_event(siphon_binenc_t *enc, const siphon_avro_event_t *ev,
                              const siphon_binenc_extra_t *extra, int nextra, siphon_buf_t *out,
                              char *errbuf, size_t errsize);

/* ---- shared with stream.c's avro-c writer (the reference), so that both accept the same
 * values and word a refusal the same way; not for use outside src/avro ---- */

/* Can a value of type vt be written as t (t not a union)? (The rules of
 * siphon_avro_stream_encode_key() in siphon_avro.h.) */
int siphon_avro__accepts(const siphon_avro_type_t *t, siphon_vtype_t vt);

/* "field '<fname>': cannot write <vt> as <t>[: why]" into errbuf; returns SIPHON_ECONVERT. */
int siphon_avro__cannot(char *errbuf, size_t errsize, const char *fname, siphon_vtype_t vt,
                        const siphon_avro_type_t *t, const char *why);

/* The refusal of a text that is not one of enum t's symbols; returns SIPHON_ECONVERT. */
int siphon_avro__not_symbol(char *errbuf, size_t errsize, const char *fname,
                            const siphon_value_t *v, const siphon_avro_type_t *t);

/* A DECIMAL or INT value as the bytes of decimal type t (bytes or fixed), in scratch: 0 with
 * *bytes and *n set, SIPHON_ECONVERT (malformed, scale, precision, fixed size) or SIPHON_ENOMEM
 * with errbuf set. */
int siphon_avro__decimal_of(siphon_buf_t *scratch, const siphon_value_t *v,
                            const siphon_avro_type_t *t, const char *fname, const uint8_t **bytes,
                            size_t *n, char *errbuf, size_t errsize);

/* A UUID or 8-4-4-4-12 TEXT value as 36 lowercase characters into out (not NUL-terminated):
 * 0, or SIPHON_ECONVERT with errbuf set. */
int siphon_avro__uuid_text(char out[36], const siphon_value_t *v, const siphon_avro_type_t *t,
                           const char *fname, char *errbuf, size_t errsize);

/* a / b rounded toward negative infinity (microseconds to milliseconds before 1970). */
static inline int64_t siphon_avro__floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

#endif
