/*
 * mapping_int.h - private structures of the mapping module: a loaded mapping, its fields in
 * schema order, the bindings compiled per relation version, and the conversion table shared by
 * siphon_mapset_bind() (which checks a column type once) and siphon_mapset_apply() (which
 * converts each value).
 *
 * Invariants:
 *  - map->fields has one entry per field of the entity schema, in schema order; a field with
 *    no column is filled from `defval` (its Avro default, or null).
 *  - A binding belongs to one relation version: `col[i]` is the relation column of schema
 *    field i (-1 when unmapped) and `conv[i]` how its values are converted. Versions never
 *    come back with another shape, so a binding is never invalidated, only superseded.
 *  - Values produced by apply point into the mapping's arrays and the set's row arena: both
 *    are reused by the next apply, so nothing is allocated per row once warm.
 */
#ifndef SIPHON_MAPPING_INT_H
#define SIPHON_MAPPING_INT_H

#include <stdint.h>

#include "core/buf.h"
#include "mapping/mapping.h"

/* What the Avro encoder accepts for a field, from its base type (see the acceptance rules in
 * mapping.c). */
typedef enum map_target {
    MAP_T_UNSUPPORTED = 0,
    MAP_T_BOOL,
    MAP_T_INT,       /* int, long */
    MAP_T_FLOAT,     /* float, double */
    MAP_T_STRING,
    MAP_T_BYTES,
    MAP_T_DECIMAL,   /* bytes or fixed with logicalType decimal */
    MAP_T_DATE,
    MAP_T_TIME,      /* time-micros */
    MAP_T_TIMESTAMP, /* timestamp-micros */
    MAP_T_UUID,
    MAP_T_ENUM
} map_target_t;

/* How a value of an accepted column type becomes the field's value. */
typedef enum map_conv {
    MAP_C_NONE = 0, /* not accepted */
    MAP_C_COPY,     /* the encoder takes it as it is */
    MAP_C_INT_DEC,  /* INT -> DECIMAL with scale 0 */
    MAP_C_TEXT,     /* any -> TEXT in its canonical text form */
    MAP_C_RAW_UTF8  /* RAWTEXT -> TEXT when its bytes are valid UTF-8 (checked per value) */
} map_conv_t;

typedef struct map_field {
    const siphon_avro_field_t *af; /* borrowed from the schema */
    map_target_t target;
    char *column;                  /* source column; NULL when the field is not mapped */
    int line, col;                 /* 1-based position of the column name in the file */
    siphon_value_t defval;         /* an unmapped field's value: its default, else null */
} map_field_t;

struct siphon_mapping {
    char *path;        /* the mapping file, as found under the mappings folder */
    char *entity;
    int major;
    char *src_schema;
    char *src_table;
    int entity_line, entity_col;
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
    int nfields;       /* = the schema's field count */
    map_field_t *fields;
    int nkey;
    int *key_idx;      /* schema field index of each key field */
    char **key_names;
    siphon_arena_t mem;      /* long-lived strings of default values */
    siphon_value_t *after;   /* per-apply images, nfields each, and the key */
    siphon_value_t *before;
    siphon_value_t *key;
};

typedef struct map_binding {
    siphon_mapping_t *map;
    int *col;
    uint8_t *conv;
} map_binding_t;

/* The bindings of one relation version (nbind 0: no mapping reads that table). */
typedef struct map_relentry {
    uint64_t version;
    int used;
    int nbind;
    map_binding_t *binds;
} map_relentry_t;

struct siphon_mapset {
    int n;
    siphon_mapping_t **maps;
    map_relentry_t *rels; /* open addressing on version */
    size_t relcap, nrels;
    siphon_arena_t row;   /* per-apply scratch (converted text, decimals) */
};

/* Free one mapping and everything it owns (mapping_load.c). Accepts NULL. */
void siphon_mapping__free(siphon_mapping_t *map);

/* The conversion of a value of type vt into a field of target t, or MAP_C_NONE. */
map_conv_t siphon_mapping__conv(map_target_t t, siphon_vtype_t vt);

/* The target of a field's base type (MAP_T_UNSUPPORTED for records, arrays, fixed, ...). */
map_target_t siphon_mapping__target(const siphon_avro_field_t *af);

/* "long", "decimal(12,2)", "timestamp-micros", "enum" ... for messages. */
void siphon_mapping__type_name(const siphon_avro_field_t *af, char *buf, size_t size);

#endif
