/*
 * mapping.h - table-to-entity mapping files: load, compile, evaluate.
 *
 * One YAML file per entity under mappings/ (first cut; transforms slot into `fields`):
 *
 *   entity: sales_order          # must match schemas/sales_order.v1.avsc
 *   version: 1                   # major version of the stream
 *   source:
 *     table: public.oehdr        # schema.table (schema defaults to public)
 *   key: [order_id]              # entity fields forming the Kafka key, in order
 *   fields:                      # entity field <- column; fields left out must be nullable
 *     order_id: hdordn           # shorthand for {column: hdordn}
 *     customer_id: { column: hdcust }
 *
 * Loading parses every mapping and its schema, builds the Avro stream (key + envelope), and
 * checks what can be checked without a database: the entity and version have a schema, every
 * mapped and key field exists, every schema field without a mapping is nullable or has a
 * default. siphon_mapset_bind() then checks a live relation: every column exists and its type
 * can become the field's type. Evaluation works on a binding compiled per relation version, so
 * nothing is looked up by name per row.
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
const char *siphon_mapping_path(const siphon_mapping_t *map);
const siphon_schema_t *siphon_mapping_schema(const siphon_mapping_t *map);
siphon_avro_stream_t *siphon_mapping_stream(const siphon_mapping_t *map);
/* The key fields, in key order (i from 0 to count - 1). */
int siphon_mapping_key_count(const siphon_mapping_t *map);
const char *siphon_mapping_key_field(const siphon_mapping_t *map, int i);
/* The source column of schema field i, or NULL when the field is not mapped. */
const char *siphon_mapping_field_column(const siphon_mapping_t *map, int i);

/* Check a relation against every mapping of its table and compile the bindings. Returns 0 (also
 * when no mapping uses the table), or SIPHON_EINVAL naming the mapping file:line, the column and
 * what is wrong (missing column, type that cannot become the field's type). */
int siphon_mapset_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, char *errbuf,
                       size_t errsize);

/* 1 when at least one mapping reads this table. */
int siphon_mapset_has_table(const siphon_mapset_t *ms, const char *schema, const char *table);

/* One entity-level change produced from a source change. Values are borrowed: valid until the
 * next call to siphon_mapset_apply().
 *  - after: for c/u/r. A column the source did not send (TOAST-unchanged) is taken from the old
 *    row when that has it (REPLICA IDENTITY FULL), else left SIPHON_V_UNCHANGED (nullable
 *    fields only; the encoder writes null and lists the field in unchanged_fields).
 *  - before: for u/d, only when the old row has a value for every mapped column (REPLICA
 *    IDENTITY FULL); NULL otherwise (the default identity sends only the key columns).
 *  - key: from after, or from the old row for a delete (its key columns are always sent). */
typedef struct siphon_mapped {
    const siphon_mapping_t *map;
    char op;                      /* 'c', 'u', 'd', 'r' */
    const siphon_value_t *before; /* one per schema field, or NULL */
    const siphon_value_t *after;  /* one per schema field, or NULL */
    const siphon_value_t *key;    /* one per key field */
} siphon_mapped_t;

/* Map one CHANGE record: calls cb once per mapping of chg->rel's table (0..n times), twice for
 * an update that changed the entity key (a 'd' with the old key, then a 'c' with the new one,
 * so compacted topics forget the old key). Binds the relation on first sight of its version. A value that cannot be converted returns
 * SIPHON_ECONVERT with the mapping, field and column named; cb's non-zero return stops and is
 * returned. */
typedef int (*siphon_mapped_cb)(const siphon_mapped_t *out, void *opaque);
int siphon_mapset_apply(siphon_mapset_t *ms, const siphon_change_t *chg, char *errbuf,
                        size_t errsize, siphon_mapped_cb cb, void *opaque);

#endif
