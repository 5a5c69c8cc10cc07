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
 * event_id, unchanged_fields, transaction), with their canonical forms and fingerprints. Encoding writes
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

/* ---- framing (framing.c) ----
 * Single-object encoding (above) is Siphon's default framing; the Confluent wire format is the
 * alternative (sink.format: confluent): magic byte 0, the schema's 4-byte big-endian id in the
 * Schema Registry, then the same Avro binary. */
#define SIPHON_AVRO_CONFLUENT_HEADER_LEN 5
void siphon_avro_confluent_header(uint8_t out[SIPHON_AVRO_CONFLUENT_HEADER_LEN],
                                  uint32_t schema_id);

/* 1 with *fingerprint (may be NULL) when msg starts with a single-object header, else 0. */
int siphon_avro_soe_fingerprint(const void *msg, size_t len, uint64_t *fingerprint);
/* 1 with *schema_id (may be NULL) when msg starts with a Confluent header, else 0. */
int siphon_avro_confluent_id(const void *msg, size_t len, uint32_t *schema_id);

/* Append msg (single-object encoded) to out re-framed as Confluent with schema_id, or the
 * reverse with the writer schema's fingerprint. 0, SIPHON_EINVAL when msg has not the framing
 * it should, SIPHON_ENOMEM (out unchanged on error). */
int siphon_avro_soe_to_confluent(siphon_buf_t *out, const void *msg, size_t len,
                                 uint32_t schema_id);
int siphon_avro_confluent_to_soe(siphon_buf_t *out, const void *msg, size_t len,
                                 uint64_t fingerprint);

/* ---- transaction metadata (txn.c) ----
 * The BEGIN and END events of <topic_prefix>._transactions (pipeline.transactions: true):
 * fixed schemas siphon.TransactionKey {id} and siphon.TransactionEvent, documented in
 * docs/events.md. */
typedef struct siphon_avro_txn_stream siphon_avro_txn_stream_t;

/* Caller frees with siphon_avro_txn_stream_destroy() (accepts NULL). One thread at a time. */
int siphon_avro_txn_stream_new(siphon_avro_txn_stream_t **out, char *errbuf, size_t errsize);
void siphon_avro_txn_stream_destroy(siphon_avro_txn_stream_t *ts);

/* The published schemas (static text) and their fingerprints. */
const char *siphon_avro_txn_key_schema_json(void);
const char *siphon_avro_txn_value_schema_json(void);
uint64_t siphon_avro_txn_key_fingerprint(const siphon_avro_txn_stream_t *ts);
uint64_t siphon_avro_txn_value_fingerprint(const siphon_avro_txn_stream_t *ts);

typedef struct siphon_avro_txn_count {
    const char *data_collection; /* a topic */
    int64_t event_count;
} siphon_avro_txn_count_t;

/* One BEGIN or END event. Strings and counts borrowed for the call. */
typedef struct siphon_avro_txn_event {
    int end;                      /* 0: BEGIN, 1: END */
    const char *id;               /* required */
    const char *connector;
    const char *pos;
    uint64_t txid;                /* 0: none (written as null) */
    int64_t commit_ts_us;
    int64_t ts_us;
    /* END only (BEGIN writes them as null): */
    int64_t event_count;
    const siphon_avro_txn_count_t *counts;
    int ncounts;
    int64_t dead_letter_count;
} siphon_avro_txn_event_t;

/* Append the single-object-encoded key and value of ev to key and value. 0, or SIPHON_EINVAL /
 * SIPHON_ENOMEM with errbuf set and both buffers unchanged. */
int siphon_avro_txn_encode(siphon_avro_txn_stream_t *ts, const siphon_avro_txn_event_t *ev,
                           siphon_buf_t *key, siphon_buf_t *value, char *errbuf, size_t errsize);

/* A transaction key or event back to text: Avro's JSON encoding (a union as {"long": 3}), for
 * tests and tools. Caller frees *out with free(). SIPHON_EPROTO when msg is not one. */
int siphon_avro_txn_decode_json(char **out, const siphon_avro_txn_stream_t *ts, int is_key,
                                const void *msg, size_t len, char *errbuf, size_t errsize);

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
/* Where a change event sits in its source transaction (the envelope's `transaction` field,
 * record siphon.Transaction). Strings borrowed for the call. */
typedef struct siphon_avro_txn_ref {
    const char *id;                /* the transaction's id (its source position as text) */
    int64_t total_order;           /* 1-based, among the transaction's change events */
    int64_t data_collection_order; /* 1-based, among its events of the same stream */
} siphon_avro_txn_ref_t;

typedef struct siphon_avro_event {
    char op;                       /* 'c', 'u', 'd', 'r', or 't' (truncate: before and
                                      after NULL) */
    const siphon_value_t *before;
    const siphon_value_t *after;
    siphon_avro_source_t source;
    int64_t ts_us;                 /* when Siphon emitted it */
    const char *event_id;
    const siphon_avro_txn_ref_t *transaction; /* NULL: written as null (metadata off, or a
                                                 snapshot read) */
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

/* ---- schema compatibility (compat.c) ----
 *
 * Avro schema resolution (specification 1.11, "Schema Resolution") as a check between two
 * schemas: can every datum written with the writer schema be read with the reader schema? Every
 * rule is ours (avro-c's resolver refuses reader fields that have defaults): fields added or
 * removed with and without defaults, field and named-type aliases, promotions int -> long ->
 * float -> double and string <-> bytes, unions on either side, enum symbols with and without
 * the reader's enum default, fixed sizes, arrays, maps, nested and recursive records, and
 * logical types. Names compare as Java's SchemaCompatibility (and so the Confluent Schema
 * Registry) compares them: same unqualified name, or the writer's full name among the reader's
 * aliases. Logical types are stricter than Java's checker, which ignores them: a decimal must
 * keep its scale and may only widen its precision, and a reader may not give a writer's value
 * another logical type (timestamp-millis read as timestamp-micros, plain long read as a date).
 * docs/schemas.md lists every rule with an example.
 *
 * An incompatibility is reported with the path of the field, as dotted field names from the
 * root record's short name ("SalesOrder.lines[].price": "[]" is an array's items, "{}" a map's
 * values), and why, in reader/writer terms. */

/* Confluent Schema Registry's modes. "new" is the schema being published, "latest" the last
 * version recorded, "all" every recorded version of the same stream (same major):
 *   BACKWARD             new reads data written with latest  (reader new, writer latest)
 *   BACKWARD_TRANSITIVE  new reads data written with all     (reader new, writer each)
 *   FORWARD              latest reads data written with new  (reader latest, writer new)
 *   FORWARD_TRANSITIVE   all read data written with new      (reader each, writer new)
 *   FULL, FULL_TRANSITIVE  both of the above
 *   NONE                 no check */
typedef enum siphon_avro_compat_mode {
    SIPHON_COMPAT_BACKWARD = 0,
    SIPHON_COMPAT_BACKWARD_TRANSITIVE,
    SIPHON_COMPAT_FORWARD,
    SIPHON_COMPAT_FORWARD_TRANSITIVE,
    SIPHON_COMPAT_FULL,
    SIPHON_COMPAT_FULL_TRANSITIVE,
    SIPHON_COMPAT_NONE
} siphon_avro_compat_mode_t;

/* "BACKWARD" (any case, '-' for '_') -> mode. 0 or SIPHON_EINVAL naming the valid modes. */
int siphon_avro_compat_mode_parse(siphon_avro_compat_mode_t *out, const char *name, char *errbuf,
                                  size_t errsize);
/* "BACKWARD", ... (never NULL). */
const char *siphon_avro_compat_mode_name(siphon_avro_compat_mode_t mode);

/* One incompatibility. All strings belong to the result. */
typedef struct siphon_avro_compat_issue {
    char *path;    /* "SalesOrder.total_amount"; "(root)" for a root that is not named */
    char *reason;  /* "the writer's string cannot be read as long" */
    char *context; /* which check found it ("new schema reading data written with 1.2"), or
                      NULL when the caller gave none */
} siphon_avro_compat_issue_t;

/* A list of incompatibilities; zero-initialized it is empty. Checks append to it. */
typedef struct siphon_avro_compat_result {
    siphon_avro_compat_issue_t *issues;
    int nissues;
    int cap;
} siphon_avro_compat_result_t;

/* Free what the result holds and leave it empty (reusable). Accepts NULL. */
void siphon_avro_compat_result_free(siphon_avro_compat_result_t *res);

/* Append one issue (strings copied). 0 or SIPHON_ENOMEM (res unchanged). */
int siphon_avro_compat_result_add(siphon_avro_compat_result_t *res, const char *path,
                                  const char *reason, const char *context);

/* Append the issues as lines "<indent>[<context>: ]<path>: <reason>\n". 0 or SIPHON_ENOMEM. */
int siphon_avro_compat_result_format(siphon_buf_t *out, const siphon_avro_compat_result_t *res,
                                     const char *indent);

/* A schema prepared for checks: any Avro schema (not only records), parsed leniently as the
 * specification tells readers to (unknown logical types are ignored), with its JSON kept for
 * defaults and aliases. */
typedef struct siphon_avro_compat_schema siphon_avro_compat_schema_t;

/* Parse json (len bytes). origin names it in errors ("schemas/x.v1.avsc:3:7: ..."). Caller
 * frees with siphon_avro_compat_schema_destroy(), which accepts NULL. SIPHON_EINVAL with the
 * place in errbuf when the text is not a schema. */
int siphon_avro_compat_schema_new(siphon_avro_compat_schema_t **out, const char *json, size_t len,
                                  const char *origin, char *errbuf, size_t errsize);
void siphon_avro_compat_schema_destroy(siphon_avro_compat_schema_t *cs);

/* Can data written with `writer` be read with `reader`? Appends one issue per incompatibility
 * to res (nothing when compatible); context (may be NULL) is copied into each. focus (may be
 * NULL) is the full name of a record of the reader checked first, with paths starting at its
 * short name: the history checks envelopes with the entity in focus, so a change to the
 * entity reads "SalesOrder.total_amount", not "SalesOrderEnvelope.before.total_amount".
 * Returns 0 (see res->nissues) or SIPHON_ENOMEM (res then holds what was found so far). */
int siphon_avro_compat_check(siphon_avro_compat_result_t *res,
                             const siphon_avro_compat_schema_t *reader,
                             const siphon_avro_compat_schema_t *writer, const char *focus,
                             const char *context);

/* Check `next` against earlier versions prev[0..nprev-1] (oldest first) under mode, as the
 * Schema Registry does (see siphon_avro_compat_mode_t); labels[i] names prev[i] in the
 * contexts ("1.2"). Issues against the newest version come first. 0 or SIPHON_ENOMEM. */
int siphon_avro_compat_check_mode(siphon_avro_compat_result_t *res,
                                  siphon_avro_compat_mode_t mode,
                                  const siphon_avro_compat_schema_t *next,
                                  const siphon_avro_compat_schema_t *const *prev,
                                  const char *const *labels, int nprev, const char *focus);

/* Explain what changed from a to b, field by field, one line each appended to out:
 *   "+ <path>: added, <type>[, default <json>]"      "- <path>: removed, <type>"
 *   "~ <path>: <what changed>" (type, default, symbols, size, name, aliases, renamed from)
 * Nothing is appended when the two are the same apart from docs. 0 or SIPHON_ENOMEM. */
int siphon_avro_compat_diff(siphon_buf_t *out, const siphon_avro_compat_schema_t *a,
                            const siphon_avro_compat_schema_t *b);

/* ---- schema history (history.c) ----
 *
 * Every version of every stream's schemas that Siphon has published, in one JSON file next to
 * the offsets file (<offsets folder>/<connector>.schemas.json), so that a changed schema can be
 * checked against what consumers have already seen. A stream is "<entity>.v<major>"; its
 * versions are numbered <major>.<minor>, minor from 0, in the order they were first published.
 * A version holds the entity schema (.avsc text), the envelope and key schemas as published,
 * the envelope's canonical form and fingerprint, the key's fingerprint, when it was recorded
 * and under which mode it was checked.
 *
 * What counts as a new version: the envelope or the key JSON differs from the latest version's
 * (compared as parsed JSON, so whitespace and key order do not count; docs and defaults do, as
 * they are published). A new version must be compatible under the mode with the latest (or
 * every, for _TRANSITIVE) version of its stream: the envelope by the rules of compat.c, with
 * the entity record in focus, and the key must not change at all (the key bytes decide the
 * partition and what compaction keeps, so any key change is a new major version). NONE checks
 * nothing. A new major version is a new stream with a history of its own.
 *
 * The file is written atomically like the offsets file (temp file, fsync, rename, fsync of the
 * folder) and only after every stream passed: a refused start records nothing. */
typedef struct siphon_schema_history siphon_schema_history_t;

/* One recorded version; everything borrowed from the history. */
typedef struct siphon_schema_version {
    int major, minor;
    uint64_t fingerprint;     /* CRC-64-AVRO of the envelope's canonical form */
    uint64_t key_fingerprint; /* CRC-64-AVRO of the key schema's canonical form */
    const char *canonical;    /* the envelope's Parsing Canonical Form */
    const char *schema_json;  /* the entity schema, as its .avsc file had it */
    const char *value_json;   /* the envelope schema as published */
    const char *key_json;     /* the key schema as published */
    const char *published_at; /* when it was first recorded, "2024-01-31T10:15:00Z" */
    const char *mode;         /* the compatibility mode it was checked under */
} siphon_schema_version_t;

/* "<folder of offsets_path>/<connector>.schemas.json" into buf (connector characters other than
 * letters, digits, '.', '_' and '-' become '_'). 0, or SIPHON_EINVAL when it does not fit. */
int siphon_schema_history_path(char *buf, size_t size, const char *offsets_path,
                               const char *connector);

/* Read the history file at path; a file that does not exist is an empty history. A file of
 * another connector, or one that does not parse or whose fingerprints do not match its
 * schemas, is SIPHON_EINVAL naming the file and what to do. Caller frees with
 * siphon_schema_history_destroy(), which accepts NULL. */
int siphon_schema_history_load(siphon_schema_history_t **out, const char *path,
                               const char *connector, char *errbuf, size_t errsize);
void siphon_schema_history_destroy(siphon_schema_history_t *hist);

/* Write the history to its file atomically. 0 or SIPHON_EIO/SIPHON_ENOMEM with errbuf set. */
int siphon_schema_history_save(siphon_schema_history_t *hist, char *errbuf, size_t errsize);

/* The streams recorded, sorted by name ("sales_order.v1"), and their versions, oldest first.
 * Borrowed; NULL when out of range or unknown. */
int siphon_schema_history_stream_count(const siphon_schema_history_t *hist);
const char *siphon_schema_history_stream_name(const siphon_schema_history_t *hist, int i);
int siphon_schema_history_version_count(const siphon_schema_history_t *hist, const char *stream);
const siphon_schema_version_t *siphon_schema_history_version(const siphon_schema_history_t *hist,
                                                             const char *stream, int i);

typedef enum siphon_schema_verdict {
    SIPHON_SCHEMA_NEW = 0,      /* the stream has no history: it starts at <major>.0 */
    SIPHON_SCHEMA_UNCHANGED,    /* the same as the latest version */
    SIPHON_SCHEMA_COMPATIBLE,   /* changed, compatible: the next minor version */
    SIPHON_SCHEMA_INCOMPATIBLE  /* changed, refused: issues say where and why */
} siphon_schema_verdict_t;

typedef struct siphon_schema_outcome {
    siphon_schema_verdict_t verdict;
    char stream[288];                   /* "sales_order.v1" */
    int major, minor;                   /* the version it is or would be; INCOMPATIBLE: the
                                           latest version */
    siphon_avro_compat_result_t issues; /* INCOMPATIBLE only; free with
                                           siphon_schema_outcome_free() */
} siphon_schema_outcome_t;

void siphon_schema_outcome_free(siphon_schema_outcome_t *oc);

/* Check one stream (its entity schema must come from a file, siphon_schema_load) against its
 * history under mode. With record set and a NEW or COMPATIBLE verdict the version is added to
 * the history in memory (siphon_schema_history_save() writes it). 0 whatever the verdict, or a
 * negative code (ENOMEM, EINVAL for a stream without entity name) with errbuf set. */
int siphon_schema_history_check(siphon_schema_history_t *hist, const siphon_avro_stream_t *st,
                                siphon_avro_compat_mode_t mode, int record,
                                siphon_schema_outcome_t *out, char *errbuf, size_t errsize);

/* What `siphon run` does at startup, and `siphon schema check` without record: load the history
 * at path, check every stream, and
 *  - when one is INCOMPATIBLE: return SIPHON_EINVAL with every incompatibility of every stream
 *    in errbuf (path and reason, one per line, what to do last) and record nothing;
 *  - else, with record, add the NEW and COMPATIBLE versions and save the file (only when
 *    something was added), logging each at notice level.
 * outcomes (may be NULL) receives one outcome per stream, which the caller frees with
 * siphon_schema_outcome_free(). */
int siphon_schema_history_sync(const char *path, const char *connector,
                               siphon_avro_compat_mode_t mode,
                               const siphon_avro_stream_t *const *streams, int nstreams,
                               int record, siphon_schema_outcome_t *outcomes, char *errbuf,
                               size_t errsize);

#endif
