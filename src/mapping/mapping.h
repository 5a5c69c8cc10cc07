/*
 * mapping.h - table-to-entity mapping files: load, compile, evaluate; and the dead-letter
 * record of a row that could not be mapped.
 *
 * One YAML file per entity under mappings/ (docs/mappings.md is the full reference):
 *
 *   entity: sales_order          # must match schemas/sales_order.v1.avsc
 *   version: 1                   # major version of the stream
 *   source:
 *     table: public.oehdr        # schema.table (schema defaults to public)
 *     charset: windows-1252      # optional: raw text of a SQL_ASCII database is in this charset
 *     timezone: America/Chicago  # optional: zone of the ERP's local dates and times
 *   key: [company, order_number] # entity fields forming the Kafka key, in order
 *   filter: "hdcomp <> '99' and hddoct in ('SO')"   # optional: rows to map
 *   soft_delete: {column: hddelf, value: 'D'}         # optional: a flag that means "deleted"
 *   on_error: dead_letter        # dead_letter (default) | fail | null
 *   fields:                      # entity field <- column(s), constant, transforms
 *     order_number: {column: hdordn, transforms: [trim, strip_leading_zeros]}
 *     order_date: {column: hdodat, transforms: [{null_if: [0]}, date_yyyymmdd]}
 *
 * Loading parses every mapping and its schema, builds the Avro stream (key + envelope), compiles
 * every transform (arguments parsed, lookup tables indexed, charsets and time zones loaded) and
 * checks what can be checked without a database: the entity and version have a schema, every
 * mapped and key field exists, every schema field without a mapping is nullable or has a
 * default, every transform chain accepts what it is given and yields a type its field takes
 * (as far as known before seeing the column types). siphon_mapset_bind() then checks a live
 * relation: every column exists and every chain fits the column types. Evaluation works on a
 * binding compiled per relation version, so nothing is parsed or looked up by name per row.
 */
#ifndef SIPHON_MAPPING_H
#define SIPHON_MAPPING_H

#include <stddef.h>

#include "avro/siphon_avro.h"
#include "core/buf.h"
#include "core/value.h"

typedef struct siphon_mapping siphon_mapping_t;
typedef struct siphon_mapset siphon_mapset_t;

/* Load every *.yaml / *.yml file in mappings_dir with its schema from schemas_dir. Errors name
 * file:line:column. Caller frees with siphon_mapset_destroy(). */
int siphon_mapset_load(siphon_mapset_t **out, const char *mappings_dir, const char *schemas_dir,
                       char *errbuf, size_t errsize);
void siphon_mapset_destroy(siphon_mapset_t *ms);

int siphon_mapset_count(const siphon_mapset_t *ms);
/* Borrowed, valid while ms lives. */
const siphon_mapping_t *siphon_mapset_get(const siphon_mapset_t *ms, int i);

/* Accessors of one mapping (all borrowed). */
const char *siphon_mapping_entity(const siphon_mapping_t *map);
int siphon_mapping_major(const siphon_mapping_t *map);
const char *siphon_mapping_source_schema(const siphon_mapping_t *map);
const char *siphon_mapping_source_table(const siphon_mapping_t *map);
/* 1-based position of source.table in the file (for messages about the table). */
void siphon_mapping_source_position(const siphon_mapping_t *map, int *line, int *col);
const char *siphon_mapping_path(const siphon_mapping_t *map);
const siphon_schema_t *siphon_mapping_schema(const siphon_mapping_t *map);
siphon_avro_stream_t *siphon_mapping_stream(const siphon_mapping_t *map);
/* The key fields, in key order (i from 0 to count - 1). */
int siphon_mapping_key_count(const siphon_mapping_t *map);
const char *siphon_mapping_key_field(const siphon_mapping_t *map, int i);
/* The (first) source column of schema field i, or NULL when the field is not mapped or is fed
 * by constants only. */
const char *siphon_mapping_field_column(const siphon_mapping_t *map, int i);
/* Every source column schema field i reads, "a, b" (NULL when none). */
const char *siphon_mapping_field_columns(const siphon_mapping_t *map, int i);
/* "dead_letter", "fail" or "null". */
const char *siphon_mapping_on_error(const siphon_mapping_t *map);

/* Check a relation against every mapping of its table and compile the bindings. Returns 0 (also
 * when no mapping uses the table), or SIPHON_EINVAL naming the mapping file:line, the column and
 * what is wrong (missing column, a transform chain that does not fit the column's type). */
int siphon_mapset_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, char *errbuf,
                       size_t errsize);

/* Like bind, but reports every problem through cb (one message each, "file:line:col: ...")
 * instead of stopping at the first, and keeps no binding (siphon validate). Missing secrets are
 * left to siphon_mapset_check_secrets(). Returns the number of problems, or a negative code
 * (out of memory). */
typedef void (*siphon_map_problem_cb)(const char *message, void *opaque);
int siphon_mapset_check(siphon_mapset_t *ms, const siphon_relation_t *rel,
                        siphon_map_problem_cb cb, void *opaque);

/* Report every transform that needs something the environment does not provide (the key
 * variable of a hash transform): one message each through cb ("file:line:col: ..."). Returns
 * how many. siphon_mapset_bind() refuses such a mapping; loading does not (tools that only
 * read the schemas need no secrets). */
int siphon_mapset_check_secrets(const siphon_mapset_t *ms, siphon_map_problem_cb cb,
                                void *opaque);

/* 1 when at least one mapping reads this table. */
int siphon_mapset_has_table(const siphon_mapset_t *ms, const char *schema, const char *table);

/* Why one row could not be mapped (a dead letter), or why one field was nulled (on_error:
 * null). All strings borrowed: valid until the next siphon_mapset_apply(). */
typedef struct siphon_map_error {
    int code;             /* SIPHON_ECONVERT */
    const char *field;    /* entity field whose value could not be made; NULL for the row */
    const char *columns;  /* the source column(s) that field reads, or NULL */
    const char *reason;   /* what was wrong, without the file:line prefix */
    const char *message;  /* the whole message: "file:line:col: field 'x' ...: reason" */
    int line, col;        /* position in the mapping file (the transform, or the field) */
} siphon_map_error_t;

/* One entity-level change produced from a source change. Values are borrowed: valid until the
 * next call to siphon_mapset_apply().
 *  - after: for c/u/r. A column the source did not send (TOAST-unchanged) is taken from the old
 *    row when that has it (REPLICA IDENTITY FULL), else left SIPHON_V_UNCHANGED (nullable
 *    fields only; the encoder writes null and lists the field in unchanged_fields).
 *  - before: for u/d, only when the old row has a value for every mapped column (REPLICA
 *    IDENTITY FULL); NULL otherwise (the default identity sends only the key columns).
 *  - key: from after, or from the old row for a delete (its key columns are always sent).
 *  - error: not NULL for a dead letter (on_error: dead_letter, the default): the row could not
 *    be mapped; op is what it would have been, before/after/key are NULL, `row` is the source
 *    row it came from (the new row, or the old one for a delete) for the dead-letter record.
 *  - warnings: fields nulled because their value could not be converted (on_error: null). */
typedef struct siphon_mapped {
    const siphon_mapping_t *map;
    char op;                      /* 'c', 'u', 'd', 'r' */
    const siphon_value_t *before; /* one per schema field, or NULL */
    const siphon_value_t *after;  /* one per schema field, or NULL */
    const siphon_value_t *key;    /* one per key field */
    const siphon_map_error_t *error;
    const siphon_row_t *row;
    const siphon_map_error_t *warnings;
    int nwarnings;
} siphon_mapped_t;

/* Map one CHANGE record: calls cb once per mapping of chg->rel's table whose filter the row
 * passes (0..n times), twice for an update that changed the entity key (a 'd' with the old
 * key, then a 'c' with the new one, so compacted topics forget the old key). A soft-delete flag
 * turns an update into a 'd'. Binds the relation on first sight of its version. A value that
 * cannot be converted becomes a dead letter (cb with out->error set), a nulled field with a
 * warning (on_error: null), or returns SIPHON_ECONVERT with the mapping, field and column
 * named (on_error: fail). cb's non-zero return stops and is returned. */
typedef int (*siphon_mapped_cb)(const siphon_mapped_t *out, void *opaque);
int siphon_mapset_apply(siphon_mapset_t *ms, const siphon_change_t *chg, char *errbuf,
                        size_t errsize, siphon_mapped_cb cb, void *opaque);

/* ---- dead letters ----
 *
 * A row that could not be mapped travels to the dead-letter topic (<topic_prefix>._dlq) as a
 * record of the fixed schema siphon.DeadLetter (shipped as schemas/_siphon/dead_letter.v1.avsc;
 * the same text is built into Siphon), single-object encoded like every event. */

typedef struct siphon_dlq siphon_dlq_t;

/* Caller frees with siphon_dlq_destroy() (accepts NULL). */
int siphon_dlq_new(siphon_dlq_t **out, char *errbuf, size_t errsize);
void siphon_dlq_destroy(siphon_dlq_t *dlq);
/* The schema as published (JSON) and its CRC-64-AVRO fingerprint. Borrowed. */
const char *siphon_dlq_schema_json(const siphon_dlq_t *dlq);
uint64_t siphon_dlq_fingerprint(const siphon_dlq_t *dlq);
/* The key's schema, "string" (the source table and key columns as text), and its fingerprint:
 * keys are single-object encoded too. */
const char *siphon_dlq_key_schema_json(const siphon_dlq_t *dlq);
uint64_t siphon_dlq_key_fingerprint(const siphon_dlq_t *dlq);

typedef struct siphon_dlq_record {
    const char *event_id;
    int64_t ts_us;                 /* when Siphon wrote it */
    const char *connector, *db;
    const siphon_relation_t *rel;  /* the source table */
    const char *pos;               /* the transaction's position, as text */
    uint64_t txid;
    int64_t commit_ts_us;
    int snapshot;
    char op;                       /* what the event would have been */
    const siphon_mapped_t *mapped; /* map, error and row */
} siphon_dlq_record_t;

/* Append the record's value to value and its key to key, both single-object encoded. The key
 * is an Avro string: the source table and its key columns as text
 * ("public.oehdr|01|0000104711"; the table alone when the row has no key columns).
 * SIPHON_ENOMEM, or SIPHON_EINVAL when avro-c refuses a value. */
int siphon_dlq_encode(siphon_dlq_t *dlq, const siphon_dlq_record_t *rec, siphon_buf_t *key,
                      siphon_buf_t *value, char *errbuf, size_t errsize);

/* Decode a dead-letter message value into JSON text (row as an object of column: text|null).
 * SIPHON_EPROTO when it is not a single-object-encoded dead letter. Caller frees *out. */
int siphon_dlq_decode_json(char **out, const siphon_dlq_t *dlq, const void *msg, size_t len,
                           char *errbuf, size_t errsize);

#endif
