/*
 * siphon_avro.h - canonical schemas, change-event envelopes, Avro encoding with logical types,
 * Parsing Canonical Form, CRC-64-AVRO fingerprints and single-object framing.
 *
 * (Named siphon_avro.h, not avro.h, so it never shadows avro-c's <avro.h>.)
 *
 * A canonical entity schema is a `schemas/<entity>.v<major>.avsc` file holding one Avro record.
 * We keep its original JSON (jansson) because avro-c drops logicalType, precision, scale and
 * default when it prints a schema; avro-c is used for the binary encoding itself.
 *
 * For every mapped entity a *stream* is built: the key schema (a record of the entity's key
 * fields) and the envelope schema (Debezium's shape: before, after, source, op, ts_us,
 * event_id, unchanged_fields), with their canonical forms and fingerprints. Encoding writes
 * values of the typed value model (core/value.h) and applies the logical types itself:
 * decimal -> two's-complement big-endian bytes of the unscaled value at the schema's scale,
 * date -> int days, time-micros -> long, timestamp-micros -> long, uuid -> 36-char string.
 */
#ifndef SIPHON_AVRO_H
#define SIPHON_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/value.h"

typedef enum siphon_avro_kind {
    SIPHON_AVRO_NULL = 0,
    SIPHON_AVRO_BOOLEAN,
    SIPHON_AVRO_INT,
    SIPHON_AVRO_LONG,
    SIPHON_AVRO_FLOAT,
    SIPHON_AVRO_DOUBLE,
    SIPHON_AVRO_BYTES,
    SIPHON_AVRO_STRING,
    SIPHON_AVRO_RECORD,
    SIPHON_AVRO_ENUM,
    SIPHON_AVRO_ARRAY,
    SIPHON_AVRO_MAP,
    SIPHON_AVRO_UNION,
    SIPHON_AVRO_FIXED
} siphon_avro_kind_t;

typedef enum siphon_avro_logical {
    SIPHON_AVRO_LT_NONE = 0,
    SIPHON_AVRO_LT_DECIMAL,          /* bytes or fixed; precision, scale */
    SIPHON_AVRO_LT_DATE,             /* int */
    SIPHON_AVRO_LT_TIME_MILLIS,      /* int */
    SIPHON_AVRO_LT_TIME_MICROS,      /* long */
    SIPHON_AVRO_LT_TIMESTAMP_MILLIS, /* long */
    SIPHON_AVRO_LT_TIMESTAMP_MICROS, /* long */
    SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS, /* long */
    SIPHON_AVRO_LT_UUID,             /* string */
    SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS /* long */
} siphon_avro_logical_t;

typedef struct siphon_avro_type siphon_avro_type_t;

typedef struct siphon_avro_field {
    char *name;
    char *doc;                       /* NULL when the schema has none */
    siphon_avro_type_t *type;        /* as declared (may be a union) */
    int nullable;                    /* the type is a union containing "null" */
    const siphon_avro_type_t *base;  /* the non-null branch of a ["null", T] union, else type */
    int has_default;
} siphon_avro_field_t;

struct siphon_avro_type {
    siphon_avro_kind_t kind;
    siphon_avro_logical_t logical;
    int precision, scale;            /* decimal */
    char *name;                      /* full name of named types (record, enum, fixed) */
    int nfields;                     /* record */
    siphon_avro_field_t *fields;
    int nsymbols;                    /* enum */
    char **symbols;
    siphon_avro_type_t *items;       /* array */
    siphon_avro_type_t *values;      /* map */
    int nbranches;                   /* union */
    siphon_avro_type_t **branches;
    int size;                        /* fixed */
};

/* One canonical entity schema file, parsed. */
typedef struct siphon_schema {
    char *path;              /* the file it came from */
    char *entity;            /* "sales_order" (from the file name) */
    int major;               /* 1 for sales_order.v1.avsc */
    siphon_avro_type_t *record; /* the entity record (kind RECORD) */
    char *json;              /* original JSON text, as published */
    char *canonical;         /* Parsing Canonical Form */
    uint64_t fingerprint;    /* CRC-64-AVRO of canonical */
} siphon_schema_t;

/* Parse a schema file. The file name must be <entity>.v<major>.avsc. On error returns a negative
 * code with "file:line:column: what was expected" (or "file: ...") in errbuf and *out NULL.
 * Caller frees *out with siphon_schema_destroy(). */
int siphon_schema_load(siphon_schema_t **out, const char *path, char *errbuf, size_t errsize);

/* Parse a schema from JSON text (entity/major/path left NULL/0). Same contract as load. */
int siphon_schema_parse(siphon_schema_t **out, const char *json, size_t len, char *errbuf,
                        size_t errsize);
void siphon_schema_destroy(siphon_schema_t *sch);

/* Field index by name, or -1. */
int siphon_schema_field_index(const siphon_schema_t *sch, const char *name);

/* Parsing Canonical Form of a schema given as JSON text (Avro specification 1.11, "Parsing
 * Canonical Form for Schemas"). Caller frees *out with free(). */
int siphon_avro_canonical_form(char **out, const char *json, size_t len, char *errbuf,
                               size_t errsize);

/* CRC-64-AVRO (Rabin) fingerprint of bytes, as defined by the Avro specification. */
uint64_t siphon_avro_fingerprint64(const void *buf, size_t len);

/* Single-object encoding header: 0xC3 0x01 then the fingerprint, little-endian (10 bytes). */
#define SIPHON_AVRO_SOE_HEADER_LEN 10
void siphon_avro_soe_header(uint8_t out[SIPHON_AVRO_SOE_HEADER_LEN], uint64_t fingerprint);

/* ---- streams: key + envelope for one entity ---- */

typedef struct siphon_avro_stream siphon_avro_stream_t;

/* Build the key and envelope schemas for an entity schema. key_fields names the entity fields
 * that form the key, in key order (at least one; each must exist in the schema, once, and not
 * be a record, array or map). The key is record <Name>Key and the envelope <Name>Envelope, both
 * in the entity record's namespace (docs/events.md shows them). SIPHON_EINVAL with the reason
 * in errbuf otherwise. Borrows sch (it must outlive the stream). Caller frees with
 * siphon_avro_stream_destroy(), which accepts NULL. */
int siphon_avro_stream_new(siphon_avro_stream_t **out, const siphon_schema_t *sch,
                           const char *const *key_fields, int nkey, char *errbuf, size_t errsize);
void siphon_avro_stream_destroy(siphon_avro_stream_t *st);

/* The published schemas (borrowed, valid while the stream lives). */
const char *siphon_avro_stream_key_schema_json(const siphon_avro_stream_t *st);
const char *siphon_avro_stream_value_schema_json(const siphon_avro_stream_t *st);
uint64_t siphon_avro_stream_key_fingerprint(const siphon_avro_stream_t *st);
uint64_t siphon_avro_stream_value_fingerprint(const siphon_avro_stream_t *st);

/* The `source` block of an envelope. All strings borrowed for the call. */
typedef struct siphon_avro_source {
    const char *connector;   /* connector name from the config */
    const char *db;          /* database name */
    const char *schema;      /* source schema ("public") */
    const char *table;       /* source table */
    const char *pos;         /* position as text ("0/16B3748") */
    uint64_t txid;
    int64_t commit_ts_us;
    int snapshot;
} siphon_avro_source_t;

/* One change event of an entity. before/after point to one value per entity field in schema
 * order (NULL when absent). In `after`, a field whose value is SIPHON_V_UNCHANGED is written as
 * null (the field must be nullable, else SIPHON_ECONVERT) and its name listed in
 * unchanged_fields. `before` is written only when complete: if any of its values is
 * SIPHON_V_UNCHANGED (REPLICA IDENTITY DEFAULT sends only the old key), before is written as
 * null; the key travels in the message key anyway. */
typedef struct siphon_avro_event {
    char op;                       /* 'c', 'u', 'd', 'r', or 't' (truncate: before and
                                      after NULL) */
    const siphon_value_t *before;
    const siphon_value_t *after;
    siphon_avro_source_t source;
    int64_t ts_us;                 /* when Siphon emitted it */
    const char *event_id;
} siphon_avro_event_t;

/* Encode the key (one value per key field, key order) as a single-object-encoded message
 * appended to out. SIPHON_ECONVERT with "field 'x': cannot write <value type> as <avro type>[:
 * why]" in errbuf when a value does not fit; out is unchanged on any error.
 * Accepted value types by field type: boolean <- BOOL; int, long <- INT (range-checked for int);
 * float, double <- FLOAT, INT; string <- TEXT, JSON; bytes, fixed <- BYTES (fixed: exact size);
 * enum <- TEXT equal to a symbol; null <- NULL (so null only in a union with "null");
 * decimal <- DECIMAL (rescaled to the schema's scale: zeros appended, or trailing zeros dropped,
 * never rounded; precision checked), INT; date <- DATE, INT; time-millis/time-micros <- TIME, INT;
 * timestamp-* and local-timestamp-* <- TIMESTAMP, INT; uuid <- UUID, TEXT in 8-4-4-4-12 form
 * (written lowercase). A union takes the first branch that accepts the value's type. */
int siphon_avro_stream_encode_key(siphon_avro_stream_t *st, const siphon_value_t *key,
                                  siphon_buf_t *out, char *errbuf, size_t errsize);

/* Encode the envelope as a single-object-encoded message appended to out. Same errors; also
 * SIPHON_EINVAL for an op other than c/u/d/r/t, a truncate with an image, or a NULL event_id. Reuses the stream's avro-c
 * value: one stream is used by one thread. */
int siphon_avro_stream_encode_value(siphon_avro_stream_t *st, const siphon_avro_event_t *ev,
                                    siphon_buf_t *out, char *errbuf, size_t errsize);

/* Decode a single-object-encoded message of this stream's key or envelope into JSON text
 * (logical types rendered: decimals as strings "123.45", dates "YYYY-MM-DD", timestamps ISO-8601
 * with Z, uuids as text, bytes as "\\x" + hex; a union shows its branch's value). For tests and
 * `siphon tail`. SIPHON_EPROTO when the message is not single-object encoded, its fingerprint is
 * not this stream's key (is_key) or envelope schema, or it does not parse. Caller frees *out
 * with free(). */
int siphon_avro_stream_decode_json(char **out, const siphon_avro_stream_t *st, int is_key,
                                   const void *msg, size_t len, char *errbuf, size_t errsize);

#endif
