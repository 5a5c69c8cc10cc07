/*
 * mapping_int.h - private structures of the mapping module: a loaded mapping (its fields in
 * schema order, each with its inputs and transform chain), the row filter, the bindings
 * compiled per relation version, and the pieces the module's files share (transforms, time
 * zones, HMAC, the dead-letter record).
 *
 * The files of the module:
 *   mapping_load.c    the YAML file -> a mapping; everything checkable without a database
 *   mapping_xform.c   the transform catalogue: static typing (load and bind) and evaluation
 *   mapping_filter.c  row filters: parse, bind to columns, evaluate
 *   mapping.c         binding a relation version, mapping a change into entity images
 *   mapping_tz.c      IANA time zones (TZif files) for local date+time -> UTC
 *   mapping_hmac.c    SHA-256 and HMAC-SHA256 for the `hash` transform
 *   mapping_dlq.c     the dead-letter record: its fixed schema, encoding, decoding
 *
 * Invariants:
 *  - map->fields has one entry per field of the entity schema, in schema order; a field with
 *    no inputs is filled from `defval` (its Avro default, or null).
 *  - Everything a row needs is decided before the first row: transform arguments are parsed
 *    at load (constants into every value type they are used as, lookup tables indexed,
 *    charsets turned into byte tables, HMAC keys hashed), column indexes and the static type
 *    of every step are fixed per relation version at bind. Evaluation never parses text of
 *    the mapping and never looks a name up.
 *  - A binding belongs to one relation version; versions never come back with another shape,
 *    so a binding is never invalidated, only superseded.
 *  - Values produced by apply point into the mapping's arrays and the set's row arena: both
 *    are reused by the next apply, so nothing is allocated per row once warm (text-producing
 *    transforms take bump-pointer memory from the row arena, which keeps its blocks).
 */
#ifndef SIPHON_MAPPING_INT_H
#define SIPHON_MAPPING_INT_H

#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "mapping/mapping.h"

/* At load, a column's value type is not known yet: SIPHON_V_NULL stands for "any" in static
 * typing (checked again at bind with the real type). */
#define MAP_VT_ANY SIPHON_V_NULL
#define MAP_VT_COUNT (SIPHON_V_UNCHANGED + 1)

/* Most inputs a field may combine (columns: [...]). */
#define MAP_MAX_INPUTS 8

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

/* How a value of an accepted type becomes the field's value (the last step of every field). */
typedef enum map_conv {
    MAP_C_NONE = 0, /* not accepted */
    MAP_C_COPY,     /* the encoder takes it as it is */
    MAP_C_INT_DEC,  /* INT -> DECIMAL with scale 0 */
    MAP_C_TEXT,     /* any -> TEXT in its canonical text form */
    MAP_C_RAW_UTF8, /* RAWTEXT -> TEXT when its bytes are valid UTF-8 (checked per value) */
    MAP_C_DEC_INT   /* DECIMAL -> INT when it is a whole number in range (checked per value) */
} map_conv_t;

/* ---- constants ---- */

/* A constant written in a mapping (default:, null_if:, const:, filter literals). Kept as text
 * and parsed at load or bind into each value type it is compared with or produces, once. */
typedef struct map_const {
    const char *text;  /* NUL-terminated, in the mapping's arena */
    size_t len;
    int is_null;       /* ~ / null */
    int plain;         /* a plain (unquoted) YAML scalar: may be read as a number */
    uint32_t tried, ok;                   /* bit per siphon_vtype_t */
    siphon_value_t as[MAP_VT_COUNT];      /* the parsed forms, for the bits set in ok */
} map_const_t;

/* Parse c as type vt (cached; bytes in arena). 0, or SIPHON_EINVAL when it is not a value of
 * that type (*why says what was expected), SIPHON_ENOMEM. */
int siphon_mapping__const_as(map_const_t *c, siphon_vtype_t vt, siphon_arena_t *arena,
                             const char **why);

/* ---- time zones (mapping_tz.c) ---- */

typedef struct map_tz map_tz_t;

/* Load a zone: "UTC", a fixed offset ("+02:00", "-0500"), or an IANA name read from
 * /usr/share/zoneinfo (or $TZDIR). SIPHON_ENOTFOUND / SIPHON_EINVAL with *why set. Free with
 * siphon_mapping__tz_free(). */
int siphon_mapping__tz_load(map_tz_t **out, const char *name, char *why, size_t whysize);
void siphon_mapping__tz_free(map_tz_t *tz);
const char *siphon_mapping__tz_name(const map_tz_t *tz);
/* Seconds east of UTC in effect at UTC instant t. */
int32_t siphon_mapping__tz_offset_at(const map_tz_t *tz, int64_t t);
/* The UTC instant of local wall-clock time `local` (seconds since 1970 as if UTC). A time that
 * falls in a gap (clocks moved forward) is read with the offset before the gap; a time that
 * occurs twice (clocks moved back) is its first occurrence. */
int64_t siphon_mapping__tz_to_utc(const map_tz_t *tz, int64_t local);

/* ---- HMAC (mapping_hmac.c) ---- */

typedef struct map_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} map_sha256_t;

void siphon_mapping__sha256_init(map_sha256_t *s);
void siphon_mapping__sha256_update(map_sha256_t *s, const void *p, size_t n);
void siphon_mapping__sha256_final(map_sha256_t *s, uint8_t out[32]);

/* A key prepared once: the inner and outer states after the padded key block. */
typedef struct map_hmac_key {
    map_sha256_t inner, outer;
} map_hmac_key_t;

void siphon_mapping__hmac_key(map_hmac_key_t *k, const void *key, size_t len);
void siphon_mapping__hmac(const map_hmac_key_t *k, const void *msg, size_t len, uint8_t out[32]);

/* ---- transforms (mapping_xform.c) ---- */

typedef enum map_xk {
    MAP_X_TRIM = 0,
    MAP_X_RTRIM,
    MAP_X_LTRIM,
    MAP_X_UPPER,
    MAP_X_LOWER,
    MAP_X_STRIP_ZEROS,
    MAP_X_PAD,
    MAP_X_TRUNCATE,
    MAP_X_NULL_IF,
    MAP_X_DEFAULT,
    MAP_X_COALESCE,    /* reduces several inputs */
    MAP_X_CONCAT,      /* reduces several inputs */
    MAP_X_DATE_YYYYMMDD,
    MAP_X_DATE_YYMMDD,
    MAP_X_DATE_CYYDDD,
    MAP_X_DATE_DAYS,
    MAP_X_DATE_FORMAT,
    MAP_X_TIME_HHMMSS,
    MAP_X_TIMESTAMP,   /* reduces one or two inputs (date [, time]) */
    MAP_X_IMPLIED_DEC,
    MAP_X_NUMBER,
    MAP_X_BOOL,
    MAP_X_LOOKUP,
    MAP_X_CHARSET,
    MAP_X_HASH,
    MAP_X_REDACT,
    MAP_X_COUNT
} map_xk_t;

/* A charset conversion to UTF-8. Single-byte charsets (Windows-1252, Latin-1, ...) become a
 * 256-entry table built with iconv at load; others keep an iconv descriptor. */
typedef struct map_charset {
    char *name;
    int single_byte;
    int ascii_same;        /* single-byte, and bytes 0x00..0x7F are themselves in UTF-8 */
    uint8_t len[256];      /* UTF-8 length of each byte's character; 0: not in the charset */
    uint8_t utf8[256][4];
    iconv_t cd;            /* multi-byte charsets only, else (iconv_t)-1 */
} map_charset_t;

/* Load a charset by name (aliases: cp1252, windows-1252, latin1, iso-8859-1, ...). 0 or
 * SIPHON_EINVAL with *why set. Free with siphon_mapping__charset_free(). */
int siphon_mapping__charset_load(map_charset_t **out, const char *name, char *why,
                                 size_t whysize);
void siphon_mapping__charset_free(map_charset_t *cs);

typedef struct map_code {
    map_const_t from;       /* the source code, as text */
    map_const_t to;         /* what it becomes (TEXT) */
} map_code_t;

typedef struct map_op {
    map_xk_t kind;
    int line, col;          /* 1-based position of the transform in the file */
    int idx;                /* index among the mapping's ops (per-binding static types) */
    union {
        struct { int width; char ch; int left; } pad;
        struct { int n; } truncate;
        struct { map_const_t *vals; int n; } null_if;
        map_const_t *def;
        struct { const char *sep; size_t len; } concat;
        struct { int pivot; } yymmdd;
        struct { int32_t epoch; } days;
        struct { char *fmt; int pivot; } date_format;
        struct { map_tz_t *tz; int own; } ts;
        struct {
            int n;
            int i64;               /* the field's last op into a decimal field: an integer
                                      becomes the int64 form of a decimal (core/value.h) */
        } implied;
        struct { char point, group; } number;
        struct { map_const_t *t, *f; int nt, nf; } boolean;
        struct {
            map_code_t *codes;
            int n;
            int has_default;       /* else an unknown code is an error */
            map_const_t def;       /* TEXT, or null */
            int16_t direct[256];   /* single-byte codes: code byte -> index + 1 (0: none) */
            int all_single;        /* every code is one byte */
        } lookup;
        struct { map_charset_t *cs; } charset;
        struct { map_hmac_key_t key; int length; char *env; int missing; } hash;
        struct { const char *text; size_t len; } redact;
    } a;
} map_op_t;

/* "trim", "date_yyyymmdd"... */
const char *siphon_mapping__op_name(map_xk_t k);
/* The transform named s, or -1. */
int siphon_mapping__op_find(const char *s);
/* 1 for transforms that take the several inputs of a field (concat, coalesce, timestamp). */
static inline int siphon_mapping__op_reduces(map_xk_t k)
{
    return k == MAP_X_COALESCE || k == MAP_X_CONCAT || k == MAP_X_TIMESTAMP;
}

/* Decimal text of v into buf (at least 21 bytes, not NUL-terminated); returns its length. The
 * hot path's replacement for snprintf("%lld"). */
size_t siphon_mapping__fmt_i64(char *buf, int64_t v);

/* Static typing: the type an op yields from inputs of types in[0..n-1] (MAP_VT_ANY: not known
 * yet). 0 with *out set (MAP_VT_ANY when it depends on what is not known yet), or
 * SIPHON_EINVAL with *why naming what the op accepts. Constants of default/null_if are parsed
 * into the input type here (so a bad default is found before any row). */
int siphon_mapping__op_type(map_op_t *op, const siphon_vtype_t *in, int n, siphon_arena_t *arena,
                            siphon_vtype_t *out, char *why, size_t whysize);

/* When the op cannot run without something from the environment (hash: its key variable is
 * not set): SIPHON_EINVAL with "file:line:col: ..." in errbuf; else 0. */
int siphon_mapping__op_ready(const siphon_mapping_t *map, const map_op_t *op, char *errbuf,
                             size_t errsize);

/* Free what an op owns (time zone, charset, hash key). */
void siphon_mapping__op_free(map_op_t *op);

/* Evaluation context of one row. */
typedef struct map_eval {
    siphon_arena_t *row;      /* per-apply memory */
    char *why;                /* reason of a conversion failure */
    size_t whysize;
} map_eval_t;

/* Apply one op to v[0..n-1] (n > 1 only for reducers); the result is left in v[0]. `vt` is the
 * op's static input type at this binding (for constants of default). 0, SIPHON_ECONVERT with
 * x->why saying what was wrong with the value, or SIPHON_ENOMEM. */
int siphon_mapping__op_apply(const map_op_t *op, siphon_vtype_t vt, siphon_value_t *v, int n,
                             map_eval_t *x);

/* 1 when every byte of s[0..n-1] is ASCII (below 0x80): a word at a time, no byte loop. */
static inline int siphon_mapping__ascii(const unsigned char *s, size_t n)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    if (n >= 8) {
        memcpy(&w, s + n - 8, 8); /* the tail, overlapping what was read */
        acc |= w;
    } else {
        if (n & 4) {
            uint32_t t;
            memcpy(&t, s + i, 4);
            acc |= t;
            i += 4;
        }
        if (n & 2) {
            uint16_t t;
            memcpy(&t, s + i, 2);
            acc |= t;
            i += 2;
        }
        if (n & 1)
            acc |= s[i];
    }
    return (acc & 0x8080808080808080ULL) == 0;
}

/* Convert raw bytes with a charset into UTF-8 TEXT in the row arena. 0 or SIPHON_ECONVERT. */
int siphon_mapping__charset_convert(const map_charset_t *cs, siphon_value_t *v, map_eval_t *x);

/* Offset of the first byte that breaks UTF-8, or n when all of s is valid. */
size_t siphon_mapping__utf8_invalid_at(const unsigned char *s, size_t n);

/* A short quoted rendering of a value for messages ("'20260231'", "0x81 at offset 3"). */
void siphon_mapping__value_snippet(const siphon_value_t *v, char *buf, size_t size);

/* Days since 1970-01-01 of a proleptic Gregorian date; -1 in *ok when the date is invalid. */
int siphon_mapping__civil_valid(int64_t y, int m, int d);
int64_t siphon_mapping__days_from_civil(int64_t y, unsigned m, unsigned d);
void siphon_mapping__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* ---- row filters (mapping_filter.c) ---- */

typedef struct map_filter map_filter_t;

/* Parse a filter expression. `line`/`col` locate the expression's first character in the
 * file (for messages that point inside it). Columns are collected in order of first use:
 * siphon_mapping__filter_columns(). SIPHON_EINVAL with "file:line:col: ..." in errbuf. */
int siphon_mapping__filter_parse(map_filter_t **out, const char *text, const char *path,
                                 int line, int col, siphon_arena_t *arena, char *errbuf,
                                 size_t errsize);
void siphon_mapping__filter_free(map_filter_t *f);
int siphon_mapping__filter_ncolumns(const map_filter_t *f);
const char *siphon_mapping__filter_column(const map_filter_t *f, int i, int *line, int *col);
/* Check the comparisons against the columns' value types (vts[i] for filter column i) and
 * parse the literals for them. SIPHON_EINVAL with "file:line:col: ..." in errbuf. */
int siphon_mapping__filter_bind(map_filter_t *f, const siphon_vtype_t *vts, const char *path,
                                siphon_arena_t *arena, char *errbuf, size_t errsize);
/* Evaluate on a row: colidx[i] is the relation column of filter column i. Returns 1 (the row
 * passes), 0 (it does not), or -1 (cannot tell: a column it reads was not sent). */
int siphon_mapping__filter_eval(const map_filter_t *f, const int *colidx,
                                const siphon_row_t *row);

/* ---- mappings ---- */

typedef struct map_input {
    char *column;                  /* NULL for a constant */
    map_const_t cst;               /* a constant input (TEXT) */
    int line, col;                 /* of the column name or constant */
    map_op_t *ops;                 /* this input's own transforms, before the field's */
    int nops;
} map_input_t;

typedef struct map_field {
    const siphon_avro_field_t *af; /* borrowed from the schema */
    map_target_t target;
    char *column;                  /* first input's column; NULL when the field is not mapped
                                      or only constants feed it */
    char *columns;                 /* "a, b": every column it reads, for messages */
    int mapped;                    /* has inputs */
    int line, col;                 /* 1-based position of the field's value in the file */
    map_input_t *in;
    int nin;
    map_op_t *ops;                 /* the field's transforms, after its inputs are combined */
    int nops;
    const char *sep;               /* columns joined without a reducing transform: separator */
    size_t seplen;
    siphon_vtype_t load_type;      /* the chain's result type as far as known at load */
    siphon_value_t defval;         /* an unmapped field's value: its default, else null */
    siphon_value_t constval;       /* a field fed by one constant without transforms */
    int is_const;
    int enum_ok;                   /* an enum field whose chain ends with a lookup: its values
                                      were checked against the symbols at load */
} map_field_t;

typedef enum map_on_error {
    MAP_ON_ERROR_DEAD_LETTER = 0,
    MAP_ON_ERROR_FAIL,
    MAP_ON_ERROR_NULL
} map_on_error_t;

struct siphon_mapping {
    char *path;        /* the mapping file, as found under the mappings folder */
    char *entity;
    int major;
    char *src_schema;
    char *src_table;
    int entity_line, entity_col;
    int table_line, table_col;
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
    int nfields;       /* = the schema's field count */
    map_field_t *fields;
    int nkey;
    int *key_idx;      /* schema field index of each key field */
    char **key_names;
    int nops;          /* every op of every field and input (map_op_t.idx < nops) */

    map_filter_t *filter;
    char *filter_text;

    char *soft_column; /* soft_delete.column, or NULL */
    int soft_line, soft_col;
    map_const_t *soft_vals;
    int nsoft;

    map_on_error_t on_error;
    map_charset_t *charset; /* source.charset: converts RAWTEXT inputs first */
    map_tz_t *tz;           /* source.timezone (default for timestamp) */

    siphon_arena_t mem;      /* long-lived strings of defaults and constants */
    siphon_value_t *after;   /* per-apply images, nfields each, and the key */
    siphon_value_t *before;
    siphon_value_t *key;
    siphon_map_error_t err;  /* the last dead letter or warning */
    char errmsg[1024], errreason[512];
    siphon_map_error_t *warn;/* on_error: null: fields nulled in this apply (nfields) */
    char (*warnmsg)[384];
    int nwarn;
};

/* One input of a field at one relation version. */
typedef struct map_bind_in {
    int col;            /* relation column, -1 for a constant */
    uint8_t implicit;   /* convert RAWTEXT with the mapping's charset before its ops */
} map_bind_in_t;

/* How a field is evaluated at one relation version, decided at bind so that a row needs one
 * switch per field (mapping.c: eval_field). */
typedef enum map_plan_kind {
    MAP_P_VALUE = 0, /* a fixed value: its default (not mapped) or its constant */
    MAP_P_COLUMN,    /* one column, no transforms of its own, the field's chain in place */
    MAP_P_INPUTS     /* anything else: several inputs, constants, per-input chains */
} map_plan_kind_t;

typedef enum map_check {
    MAP_K_NONE = 0,
    MAP_K_ENUM,      /* an enum field whose values were not checked at load */
    MAP_K_DECIMAL,   /* fits decimal(p, s) */
    MAP_K_INT32      /* fits an Avro int */
} map_check_t;

typedef struct map_plan {
    uint8_t kind;                 /* map_plan_kind_t */
    uint8_t implicit;             /* COLUMN: convert RAWTEXT with the mapping's charset first */
    uint8_t conv;                 /* map_conv_t of the last step for a value of type outvt */
    uint8_t outvt;
    uint8_t check;                /* map_check_t after the last step */
    int col;                      /* COLUMN: relation column */
    int nops;                     /* the field's own chain */
    const map_op_t *ops;
    const siphon_value_t *value;  /* VALUE */
} map_plan_t;

typedef struct map_binding {
    siphon_mapping_t *map;
    map_plan_t *plan;   /* per field */
    int *inoff;         /* field i's inputs are in[inoff[i] .. inoff[i+1]-1] */
    map_bind_in_t *in;
    uint8_t *conv;      /* per field: map_conv_t of its last step */
    uint8_t *outvt;     /* per field: the static type of its last step (conv is for it) */
    uint8_t *optype;    /* per op (map->nops): its static input type */
    int *fcol;          /* per filter column: relation column */
    int soft_col;       /* relation column of the soft-delete flag, -1 */
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

/* What a field of target t takes, for messages. */
const char *siphon_mapping__target_expects(map_target_t t);

/* The static type flow of one field for inputs of types in_vt[0..nin-1] (MAP_VT_ANY when not
 * known): runs siphon_mapping__op_type over its chains, recording each op's input type in
 * optype (may be NULL). 0 with *out the field's last type, or SIPHON_EINVAL with
 * "file:line:col: ..." in errbuf (the op's position). */
int siphon_mapping__field_type(siphon_mapping_t *map, map_field_t *mf,
                               const siphon_vtype_t *in_vt, uint8_t *optype,
                               siphon_vtype_t *out, char *errbuf, size_t errsize);

#endif
