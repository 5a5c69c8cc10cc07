/*
 * mapping.c - compiled mappings at work: binding a relation version (columns resolved, types
 * checked, a conversion chosen per field) and turning each change of a bound table into entity
 * images and a key for the encoder.
 *
 * Life of a relation version (one entry in the set's cache, keyed by siphon_relation_t.version):
 *     unseen --siphon_mapset_bind() or first siphon_mapset_apply()--> bound (nbind >= 0)
 * A relation no mapping reads is cached with nbind 0, so its rows cost one lookup. A new
 * version (ALTER TABLE) is bound afresh; older entries stay until the set is destroyed.
 *
 * What the encoder accepts (field base type <- value type) and so what bind allows, with the
 * conversions applied per value:
 *     boolean <- BOOL              int, long <- INT            float, double <- FLOAT, INT
 *     string <- TEXT, JSON as they are; BOOL, INT, FLOAT, DECIMAL, DATE, TIME, TIMESTAMP, UUID
 *               as their text ("123.45", "2024-01-31", "2024-01-31T10:00:00.000000Z")
 *     bytes <- BYTES               decimal <- DECIMAL (the encoder rescales), INT (scale 0)
 *     date <- DATE   time-micros <- TIME   timestamp-micros <- TIMESTAMP   uuid <- UUID
 *     enum <- TEXT that is one of its symbols
 *     string, enum <- RAWTEXT (legacy text of unknown charset, e.g. a SQL_ASCII database) when
 *               its bytes are valid UTF-8, checked per value; charset transforms will convert
 *               the rest
 *     null only into nullable fields; SIPHON_V_UNCHANGED only into nullable fields (the encoder
 *     writes null and lists the field in unchanged_fields).
 *
 * Images: `after` is built from the new row, taking a TOAST-unchanged column from the old row
 * when the source sent a real value there (REPLICA IDENTITY FULL). `before` is handed on only
 * when complete: every mapped column has a value in the old row (REPLICA IDENTITY FULL); with
 * the default identity the old row holds only the key, which still gives a delete its key.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"

/* ---- types ---- */

map_target_t siphon_mapping__target(const siphon_avro_field_t *af)
{
    const siphon_avro_type_t *t = af->base;
    switch (t->kind) {
    case SIPHON_AVRO_BOOLEAN:
        return MAP_T_BOOL;
    case SIPHON_AVRO_INT:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_INT;
        return t->logical == SIPHON_AVRO_LT_DATE ? MAP_T_DATE : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_LONG:
        switch (t->logical) {
        case SIPHON_AVRO_LT_NONE: return MAP_T_INT;
        case SIPHON_AVRO_LT_TIME_MICROS: return MAP_T_TIME;
        case SIPHON_AVRO_LT_TIMESTAMP_MICROS: return MAP_T_TIMESTAMP;
        default: return MAP_T_UNSUPPORTED;
        }
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE:
        return MAP_T_FLOAT;
    case SIPHON_AVRO_STRING:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_STRING;
        return t->logical == SIPHON_AVRO_LT_UUID ? MAP_T_UUID : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_BYTES:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return MAP_T_BYTES;
        return t->logical == SIPHON_AVRO_LT_DECIMAL ? MAP_T_DECIMAL : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_FIXED:
        return t->logical == SIPHON_AVRO_LT_DECIMAL ? MAP_T_DECIMAL : MAP_T_UNSUPPORTED;
    case SIPHON_AVRO_ENUM:
        return MAP_T_ENUM;
    default:
        return MAP_T_UNSUPPORTED;
    }
}

void siphon_mapping__type_name(const siphon_avro_field_t *af, char *buf, size_t size)
{
    static const char *const kinds[] = {"null",   "boolean", "int",   "long", "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "union", "fixed"};
    const siphon_avro_type_t *t = af->base;
    switch (t->logical) {
    case SIPHON_AVRO_LT_DECIMAL: snprintf(buf, size, "decimal(%d,%d)", t->precision, t->scale); return;
    case SIPHON_AVRO_LT_DATE: snprintf(buf, size, "date"); return;
    case SIPHON_AVRO_LT_TIME_MILLIS: snprintf(buf, size, "time-millis"); return;
    case SIPHON_AVRO_LT_TIME_MICROS: snprintf(buf, size, "time-micros"); return;
    case SIPHON_AVRO_LT_TIMESTAMP_MILLIS: snprintf(buf, size, "timestamp-millis"); return;
    case SIPHON_AVRO_LT_TIMESTAMP_MICROS: snprintf(buf, size, "timestamp-micros"); return;
    case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS: snprintf(buf, size, "local-timestamp-micros"); return;
    case SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS: snprintf(buf, size, "local-timestamp-millis"); return;
    case SIPHON_AVRO_LT_UUID: snprintf(buf, size, "uuid"); return;
    default: break;
    }
    if ((size_t)t->kind < sizeof(kinds) / sizeof(kinds[0]))
        snprintf(buf, size, "%s", kinds[t->kind]);
    else
        snprintf(buf, size, "?");
}

map_conv_t siphon_mapping__conv(map_target_t t, siphon_vtype_t vt)
{
    switch (t) {
    case MAP_T_BOOL: return vt == SIPHON_V_BOOL ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_INT: return vt == SIPHON_V_INT ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_FLOAT: return vt == SIPHON_V_FLOAT || vt == SIPHON_V_INT ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_STRING:
        switch (vt) {
        case SIPHON_V_TEXT:
        case SIPHON_V_JSON:
            return MAP_C_COPY;
        case SIPHON_V_RAWTEXT:
            return MAP_C_RAW_UTF8;
        case SIPHON_V_BOOL:
        case SIPHON_V_INT:
        case SIPHON_V_FLOAT:
        case SIPHON_V_DECIMAL:
        case SIPHON_V_DATE:
        case SIPHON_V_TIME:
        case SIPHON_V_TIMESTAMP:
        case SIPHON_V_UUID:
            return MAP_C_TEXT;
        default:
            return MAP_C_NONE;
        }
    case MAP_T_BYTES: return vt == SIPHON_V_BYTES ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_DECIMAL:
        if (vt == SIPHON_V_DECIMAL)
            return MAP_C_COPY;
        return vt == SIPHON_V_INT ? MAP_C_INT_DEC : MAP_C_NONE;
    case MAP_T_DATE: return vt == SIPHON_V_DATE ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_TIME: return vt == SIPHON_V_TIME ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_TIMESTAMP: return vt == SIPHON_V_TIMESTAMP ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_UUID: return vt == SIPHON_V_UUID ? MAP_C_COPY : MAP_C_NONE;
    case MAP_T_ENUM:
        if (vt == SIPHON_V_TEXT)
            return MAP_C_COPY;
        return vt == SIPHON_V_RAWTEXT ? MAP_C_RAW_UTF8 : MAP_C_NONE;
    default: return MAP_C_NONE;
    }
}

/* What a field of target t takes, for messages. */
static const char *target_expects(map_target_t t)
{
    switch (t) {
    case MAP_T_BOOL: return "a boolean column";
    case MAP_T_INT: return "an integer column";
    case MAP_T_FLOAT: return "an integer or floating-point column";
    case MAP_T_STRING: return "a text, json, numeric, date, time, timestamp, uuid or boolean column";
    case MAP_T_BYTES: return "a binary column";
    case MAP_T_DECIMAL: return "a numeric or integer column";
    case MAP_T_DATE: return "a date column";
    case MAP_T_TIME: return "a time column";
    case MAP_T_TIMESTAMP: return "a timestamp column";
    case MAP_T_UUID: return "a uuid column";
    case MAP_T_ENUM: return "a text column holding one of the enum's symbols";
    default: return "a field of another type";
    }
}

/* ---- messages ---- */

static int map_fail(char *errbuf, size_t errsize, int code, const siphon_mapping_t *map,
                    int line, int col, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int map_fail(char *errbuf, size_t errsize, int code, const siphon_mapping_t *map,
                    int line, int col, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return siphon_err(errbuf, errsize, code, "%s:%d:%d: %s", map->path, line, col, msg);
}

static const char *col_type(const siphon_column_t *c)
{
    return c->type_name && c->type_name[0] ? c->type_name : siphon_vtype_name(c->vtype);
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static int rel_is_table(const siphon_relation_t *rel, const siphon_mapping_t *map)
{
    return strcmp(str_or_empty(rel->schema), map->src_schema) == 0 &&
           strcmp(str_or_empty(rel->name), map->src_table) == 0;
}

/* ---- binding ---- */

/* The column named `name`: exact match, else the only case-insensitive match. -1 when none,
 * -2 when several columns match ignoring case (their indexes in *a, *b). */
static int find_column(const siphon_relation_t *rel, const char *name, int *a, int *b)
{
    int found = -1;
    for (int i = 0; i < rel->ncols; i++)
        if (rel->cols[i].name && strcmp(rel->cols[i].name, name) == 0)
            return i;
    for (int i = 0; i < rel->ncols; i++) {
        if (!rel->cols[i].name || strcasecmp(rel->cols[i].name, name) != 0)
            continue;
        if (found >= 0) {
            *a = found;
            *b = i;
            return -2;
        }
        found = i;
    }
    return found;
}

static void column_list(const siphon_relation_t *rel, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < rel->ncols; i++) {
        const char *nm = str_or_empty(rel->cols[i].name);
        const char *sep = i ? ", " : "";
        if (o + strlen(sep) + strlen(nm) + 6 > size) {
            snprintf(buf + o, size - o, "%s...", sep);
            return;
        }
        o += (size_t)snprintf(buf + o, size - o, "%s%s", sep, nm);
    }
}

static void binding_free(map_binding_t *b)
{
    free(b->col);
    free(b->conv);
    b->col = NULL;
    b->conv = NULL;
}

static int bind_one(siphon_mapping_t *map, const siphon_relation_t *rel, map_binding_t *b,
                    char *errbuf, size_t errsize)
{
    size_t nf = (size_t)(map->nfields ? map->nfields : 1);
    int any_key = 0;
    b->map = map;
    if (!(b->col = malloc(nf * sizeof(int))) || !(b->conv = calloc(nf, 1)))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                          str_or_empty(rel->schema), str_or_empty(rel->name));
    for (int i = 0; i < rel->ncols; i++)
        any_key |= rel->cols[i].is_key;
    for (int i = 0; i < map->nfields; i++) {
        const map_field_t *mf = &map->fields[i];
        b->col[i] = -1;
        if (!mf->column)
            continue;
        int a = -1, c2 = -1;
        int c = find_column(rel, mf->column, &a, &c2);
        if (c == -2)
            return map_fail(errbuf, errsize, SIPHON_EINVAL, map, mf->line, mf->col,
                            "column '%s' of field '%s' is not in table %s.%s, and ignoring case "
                            "it matches several columns ('%s', '%s') (expected the column's "
                            "exact name)",
                            mf->column, mf->af->name, str_or_empty(rel->schema),
                            str_or_empty(rel->name), rel->cols[a].name, rel->cols[c2].name);
        if (c < 0) {
            char list[400];
            column_list(rel, list, sizeof(list));
            return map_fail(errbuf, errsize, SIPHON_EINVAL, map, mf->line, mf->col,
                            "column '%s' of field '%s' is not in table %s.%s (expected one of: "
                            "%s)",
                            mf->column, mf->af->name, str_or_empty(rel->schema),
                            str_or_empty(rel->name), list);
        }
        const siphon_column_t *col = &rel->cols[c];
        map_conv_t conv = siphon_mapping__conv(mf->target, col->vtype);
        if (conv == MAP_C_NONE) {
            char tn[64];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            return map_fail(errbuf, errsize, SIPHON_EINVAL, map, mf->line, mf->col,
                            "column '%s' (%s) cannot become field '%s' (%s) (expected %s, or "
                            "another type for the field in %s)",
                            col->name, col_type(col), mf->af->name, tn,
                            target_expects(mf->target), map->sch->path ? map->sch->path : "its schema");
        }
        if (strcmp(col->name, mf->column) != 0)
            siphon_log(SIPHON_LOG_NOTICE, "map",
                       "%s:%d:%d: column '%s' of field '%s' taken as '%s' of %s.%s (the only "
                       "match ignoring case)",
                       map->path, mf->line, mf->col, mf->column, mf->af->name, col->name,
                       str_or_empty(rel->schema), str_or_empty(rel->name));
        b->col[i] = c;
        b->conv[i] = (uint8_t)conv;
    }
    /* A key field outside the replica identity has no value in a delete's old row. */
    for (int k = 0; k < map->nkey && any_key; k++) {
        int fi = map->key_idx[k];
        const map_field_t *mf = &map->fields[fi];
        if (b->col[fi] >= 0 && !rel->cols[b->col[fi]].is_key)
            siphon_log(SIPHON_LOG_WARNING, "map",
                       "%s:%d:%d: key field '%s' comes from column '%s', which is not in the "
                       "replica identity of %s.%s: its deletes cannot be keyed (use primary key "
                       "columns, or ALTER TABLE %s.%s REPLICA IDENTITY FULL)",
                       map->path, mf->line, mf->col, mf->af->name, mf->column,
                       str_or_empty(rel->schema), str_or_empty(rel->name),
                       str_or_empty(rel->schema), str_or_empty(rel->name));
    }
    return 0;
}

static uint64_t rel_hash(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
}

static map_relentry_t *rel_find(const siphon_mapset_t *ms, uint64_t version)
{
    if (!ms->relcap)
        return NULL;
    size_t mask = ms->relcap - 1;
    for (size_t i = rel_hash(version) & mask;; i = (i + 1) & mask) {
        if (!ms->rels[i].used)
            return NULL;
        if (ms->rels[i].version == version)
            return &ms->rels[i];
    }
}

/* The slot for `version` (new and zeroed, or the existing one). NULL when out of memory. */
static map_relentry_t *rel_slot(siphon_mapset_t *ms, uint64_t version)
{
    map_relentry_t *e = rel_find(ms, version);
    if (e)
        return e;
    if ((ms->nrels + 1) * 2 > ms->relcap) {
        size_t ncap = ms->relcap ? ms->relcap * 2 : 16;
        map_relentry_t *nr = calloc(ncap, sizeof(*nr));
        if (!nr)
            return NULL;
        for (size_t i = 0; i < ms->relcap; i++) {
            if (!ms->rels[i].used)
                continue;
            size_t j = rel_hash(ms->rels[i].version) & (ncap - 1);
            while (nr[j].used)
                j = (j + 1) & (ncap - 1);
            nr[j] = ms->rels[i];
        }
        free(ms->rels);
        ms->rels = nr;
        ms->relcap = ncap;
    }
    size_t mask = ms->relcap - 1, i = rel_hash(version) & mask;
    while (ms->rels[i].used)
        i = (i + 1) & mask;
    ms->rels[i].used = 1;
    ms->rels[i].version = version;
    ms->nrels++;
    return &ms->rels[i];
}

static int rel_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, map_relentry_t **out,
                    char *errbuf, size_t errsize)
{
    int n = 0, k = 0, rc = 0;
    map_binding_t *binds = NULL;
    for (int i = 0; i < ms->n; i++)
        n += rel_is_table(rel, ms->maps[i]);
    if (n && !(binds = calloc((size_t)n, sizeof(*binds))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                          str_or_empty(rel->schema), str_or_empty(rel->name));
    for (int i = 0; i < ms->n && rc == 0; i++)
        if (rel_is_table(rel, ms->maps[i]))
            rc = bind_one(ms->maps[i], rel, &binds[k++], errbuf, errsize);
    map_relentry_t *e = rc ? NULL : rel_slot(ms, rel->version);
    if (!rc && !e)
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory binding %s.%s",
                        str_or_empty(rel->schema), str_or_empty(rel->name));
    if (rc) {
        for (int i = 0; i < k; i++)
            binding_free(&binds[i]);
        free(binds);
        return rc;
    }
    for (int i = 0; i < e->nbind; i++)
        binding_free(&e->binds[i]);
    free(e->binds);
    e->binds = binds;
    e->nbind = n;
    *out = e;
    return 0;
}

int siphon_mapset_bind(siphon_mapset_t *ms, const siphon_relation_t *rel, char *errbuf,
                       size_t errsize)
{
    map_relentry_t *e;
    if (!ms || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not bind: no relation given");
    return rel_bind(ms, rel, &e, errbuf, errsize);
}

int siphon_mapset_has_table(const siphon_mapset_t *ms, const char *schema, const char *table)
{
    if (!ms || !table)
        return 0;
    for (int i = 0; i < ms->n; i++)
        if (strcmp(ms->maps[i]->src_schema, schema ? schema : "public") == 0 &&
            strcmp(ms->maps[i]->src_table, table) == 0)
            return 1;
    return 0;
}

/* ---- evaluation ---- */

/* Text of a value in the row arena; floats in their shortest round-trip form. */
static int to_text(siphon_arena_t *row, const siphon_value_t *v, siphon_value_t *dst)
{
    char *buf;
    size_t n;
    if (v->type == SIPHON_V_FLOAT) {
        if (!(buf = siphon_arena_alloc(row, 32)))
            return SIPHON_ENOMEM;
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, 32, "%.*g", prec, v->u.f);
            if (strtod(buf, NULL) == v->u.f)
                break;
        }
        n = strlen(buf);
    } else {
        if (!(buf = siphon_arena_alloc(row, 64)))
            return SIPHON_ENOMEM;
        n = siphon_value_format(v, buf, 64);
        if (n >= 64) {
            if (!(buf = siphon_arena_alloc(row, n + 1)))
                return SIPHON_ENOMEM;
            siphon_value_format(v, buf, n + 1);
        }
    }
    dst->type = SIPHON_V_TEXT;
    dst->u.s.ptr = buf;
    dst->u.s.len = n;
    return 0;
}

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF included), or n when all of s is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += len;
    }
    return n;
}

static int enum_has(const siphon_avro_type_t *t, const char *s, size_t n)
{
    for (int i = 0; i < t->nsymbols; i++)
        if (strlen(t->symbols[i]) == n && memcmp(t->symbols[i], s, n) == 0)
            return 1;
    return 0;
}

typedef struct map_image_ctx {
    siphon_mapset_t *ms;
    const map_binding_t *b;
    const siphon_change_t *chg;
    const char *which; /* "new" or "old", for messages */
    char *errbuf;
    size_t errsize;
} map_image_ctx_t;

/* Fill dst (one value per schema field) from `row`, taking TOAST-unchanged columns from
 * `fallback` when it has them. strict (the new row): an unchanged or null value for a field
 * that is not nullable is an error. Not strict (the old row): such a value only makes the
 * image incomplete (*complete = 0). */
static int map_image(map_image_ctx_t *x, const siphon_row_t *row, const siphon_row_t *fallback,
                     int strict, siphon_value_t *dst, int *complete)
{
    const siphon_mapping_t *map = x->b->map;
    const siphon_relation_t *rel = x->chg->rel;
    siphon_value_t utf8; /* a RAWTEXT value seen as TEXT */
    char tn[64];
    int rc;

    *complete = 1;
    if (row->ncols != rel->ncols || (fallback && fallback->ncols != rel->ncols))
        return siphon_err(x->errbuf, x->errsize, SIPHON_EINVAL,
                          "could not map a change of %s.%s: its %s row has %d values for %d "
                          "columns (a connector bug: report it)",
                          str_or_empty(rel->schema), str_or_empty(rel->name), x->which,
                          fallback && fallback->ncols != rel->ncols ? fallback->ncols
                                                                     : row->ncols,
                          rel->ncols);
    for (int i = 0; i < map->nfields; i++) {
        const map_field_t *mf = &map->fields[i];
        int c = x->b->col[i];
        if (c < 0) {
            dst[i] = mf->defval;
            continue;
        }
        const siphon_value_t *v = &row->vals[c];
        if (v->type == SIPHON_V_UNCHANGED && fallback &&
            fallback->vals[c].type != SIPHON_V_UNCHANGED)
            v = &fallback->vals[c];
        if (v->type == SIPHON_V_UNCHANGED || v->type == SIPHON_V_NULL) {
            dst[i] = *v;
            if (mf->af->nullable && v->type == SIPHON_V_NULL)
                continue;
            *complete = 0;
            if (!strict || mf->af->nullable)
                continue;
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            if (v->type == SIPHON_V_NULL)
                return map_fail(x->errbuf, x->errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                                "column '%s' of %s.%s is null in the %s row, but field '%s' "
                                "(%s) is not nullable (expected a value, or a nullable field: "
                                "[\"null\", ...] in the schema)",
                                rel->cols[c].name, str_or_empty(rel->schema),
                                str_or_empty(rel->name), x->which, mf->af->name, tn);
            return map_fail(x->errbuf, x->errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                            "column '%s' of %s.%s was not sent (an unchanged TOASTed value) and "
                            "field '%s' (%s) is not nullable (expected ALTER TABLE %s.%s "
                            "REPLICA IDENTITY FULL, or a nullable field)",
                            rel->cols[c].name, str_or_empty(rel->schema),
                            str_or_empty(rel->name), mf->af->name, tn,
                            str_or_empty(rel->schema), str_or_empty(rel->name));
        }
        map_conv_t conv = v->type == rel->cols[c].vtype
                              ? (map_conv_t)x->b->conv[i]
                              : siphon_mapping__conv(mf->target, v->type);
        if (conv == MAP_C_RAW_UTF8) {
            size_t bad = utf8_invalid_at((const unsigned char *)v->u.s.ptr, v->u.s.len);
            if (bad < v->u.s.len) {
                siphon_mapping__type_name(mf->af, tn, sizeof(tn));
                return map_fail(x->errbuf, x->errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                                "column '%s' of %s.%s holds text that is not UTF-8 (byte 0x%02x "
                                "at offset %zu), so it cannot become field '%s' (%s) (expected "
                                "UTF-8 text; the database's encoding is unknown, e.g. SQL_ASCII, "
                                "and charset conversion is not supported yet)",
                                rel->cols[c].name, str_or_empty(rel->schema),
                                str_or_empty(rel->name), (unsigned char)v->u.s.ptr[bad], bad,
                                mf->af->name, tn);
            }
            utf8 = *v;
            utf8.type = SIPHON_V_TEXT;
            v = &utf8;
            conv = MAP_C_COPY;
        }
        switch (conv) {
        case MAP_C_COPY:
            dst[i] = *v;
            if (mf->target == MAP_T_ENUM && !enum_has(mf->af->base, v->u.s.ptr, v->u.s.len)) {
                siphon_mapping__type_name(mf->af, tn, sizeof(tn));
                return map_fail(x->errbuf, x->errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                                "value '%.*s' of column '%s' of %s.%s is not a symbol of enum "
                                "field '%s' (expected one of the symbols in %s)",
                                (int)(v->u.s.len > 32 ? 32 : v->u.s.len), v->u.s.ptr,
                                rel->cols[c].name, str_or_empty(rel->schema),
                                str_or_empty(rel->name), mf->af->name,
                                map->sch->path ? map->sch->path : "the schema");
            }
            break;
        case MAP_C_INT_DEC: {
            char *d = siphon_arena_alloc(&x->ms->row, 24);
            if (!d)
                return siphon_err(x->errbuf, x->errsize, SIPHON_ENOMEM,
                                  "out of memory mapping a change of %s.%s",
                                  str_or_empty(rel->schema), str_or_empty(rel->name));
            int n = snprintf(d, 24, "%" PRId64, v->u.i);
            dst[i].type = SIPHON_V_DECIMAL;
            dst[i].u.dec.digits = d;
            dst[i].u.dec.len = (size_t)n;
            dst[i].u.dec.scale = 0;
            break;
        }
        case MAP_C_TEXT:
            if ((rc = to_text(&x->ms->row, v, &dst[i])) < 0)
                return siphon_err(x->errbuf, x->errsize, rc,
                                  "out of memory mapping a change of %s.%s",
                                  str_or_empty(rel->schema), str_or_empty(rel->name));
            break;
        default:
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            return map_fail(x->errbuf, x->errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                            "column '%s' (%s) of %s.%s sent a %s value, which cannot become "
                            "field '%s' (%s) (expected %s)",
                            rel->cols[c].name, col_type(&rel->cols[c]),
                            str_or_empty(rel->schema), str_or_empty(rel->name),
                            siphon_vtype_name(v->type), mf->af->name, tn,
                            target_expects(mf->target));
        }
    }
    return 0;
}

static int map_change(siphon_mapset_t *ms, const map_binding_t *b, const siphon_change_t *chg,
                      char op, siphon_mapped_t *out, char *errbuf, size_t errsize)
{
    siphon_mapping_t *map = b->map;
    const siphon_relation_t *rel = chg->rel;
    map_image_ctx_t x = {ms, b, chg, "new", errbuf, errsize};
    int complete = 0, rc;

    memset(out, 0, sizeof(*out));
    out->map = map;
    out->op = op;
    if (op != 'd') {
        if (!chg->after)
            return map_fail(errbuf, errsize, SIPHON_EINVAL, map, map->entity_line,
                            map->entity_col,
                            "could not map a change (op '%c') of %s.%s: it has no new row (a "
                            "connector bug: report it)",
                            op, str_or_empty(rel->schema), str_or_empty(rel->name));
        if ((rc = map_image(&x, chg->after, op == 'u' ? chg->before : NULL, 1, map->after,
                            &complete)) < 0)
            return rc;
        out->after = map->after;
    }
    if (op == 'u' || op == 'd') {
        if (chg->before) {
            x.which = "old";
            if ((rc = map_image(&x, chg->before, NULL, 0, map->before, &complete)) < 0)
                return rc;
            if (complete)
                out->before = map->before;
        } else if (op == 'd') {
            return map_fail(errbuf, errsize, SIPHON_ECONVERT, map, map->entity_line,
                            map->entity_col,
                            "could not map a delete of %s.%s: the source sent no old row, so "
                            "there is no key (expected a replica identity on the table)",
                            str_or_empty(rel->schema), str_or_empty(rel->name));
        }
    }

    const siphon_value_t *src = op == 'd' ? map->before : map->after;
    for (int k = 0; k < map->nkey; k++) {
        int fi = map->key_idx[k];
        const map_field_t *mf = &map->fields[fi];
        map->key[k] = src[fi];
        if (src[fi].type == SIPHON_V_UNCHANGED ||
            (src[fi].type == SIPHON_V_NULL && !mf->af->nullable))
            return map_fail(errbuf, errsize, SIPHON_ECONVERT, map, mf->line, mf->col,
                            "key field '%s' has no value in the %s row of %s.%s: column '%s' %s "
                            "(expected key fields from the primary key or the REPLICA IDENTITY "
                            "columns)",
                            mf->af->name, op == 'd' ? "old" : "new", str_or_empty(rel->schema),
                            str_or_empty(rel->name), mf->column,
                            src[fi].type == SIPHON_V_NULL ? "is null"
                                                          : "is not in the replica identity");
    }
    out->key = map->key;
    return 0;
}

/* After map_change() of an update with an old row: when every key field has a value in the old
 * row and one of them differs from the new row, *out points at the old key (arena memory valid
 * until the next apply); else *out stays NULL. */
static int old_key_if_changed(siphon_mapset_t *ms, const siphon_mapping_t *map,
                              const siphon_value_t **out)
{
    int changed = 0;
    for (int k = 0; k < map->nkey; k++) {
        const siphon_value_t *ov = &map->before[map->key_idx[k]];
        if (ov->type == SIPHON_V_UNCHANGED)
            return 0; /* the old row does not carry this key field: nothing to compare */
        changed |= !siphon_value_equal(ov, &map->after[map->key_idx[k]]);
    }
    if (!changed)
        return 0;
    siphon_value_t *key = siphon_arena_alloc(&ms->row, sizeof(*key) * (size_t)map->nkey);
    if (!key)
        return SIPHON_ENOMEM;
    for (int k = 0; k < map->nkey; k++)
        key[k] = map->before[map->key_idx[k]];
    *out = key;
    return 0;
}

int siphon_mapset_apply(siphon_mapset_t *ms, const siphon_change_t *chg, char *errbuf,
                        size_t errsize, siphon_mapped_cb cb, void *opaque)
{
    map_relentry_t *e;
    siphon_mapped_t out;
    char op;
    int rc;

    if (!ms || !chg || !cb)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not map: no change given");
    if (chg->kind != SIPHON_REC_CHANGE || chg->op == SIPHON_OP_TRUNCATE)
        return 0;
    if (!chg->rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not map a change: it names no relation");
    switch (chg->op) {
    case SIPHON_OP_CREATE: op = chg->snapshot ? 'r' : 'c'; break;
    case SIPHON_OP_READ: op = 'r'; break;
    case SIPHON_OP_UPDATE: op = 'u'; break;
    case SIPHON_OP_DELETE: op = 'd'; break;
    default:
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not map a change of %s.%s: unknown operation %d",
                          str_or_empty(chg->rel->schema), str_or_empty(chg->rel->name),
                          (int)chg->op);
    }
    if (!(e = rel_find(ms, chg->rel->version)) &&
        (rc = rel_bind(ms, chg->rel, &e, errbuf, errsize)) < 0)
        return rc;
    if (e->nbind == 0)
        return 0;
    siphon_arena_reset(&ms->row);
    for (int i = 0; i < e->nbind; i++) {
        if ((rc = map_change(ms, &e->binds[i], chg, op, &out, errbuf, errsize)) < 0)
            return rc;
        const siphon_value_t *oldkey = NULL;
        if (op == 'u' && chg->before && (rc = old_key_if_changed(ms, out.map, &oldkey)) < 0)
            return rc;
        if (oldkey) {
            /* The key changed: a delete of the old key, then a create of the new one, so a
             * compacted topic does not keep the old key alive. */
            siphon_mapped_t del = {out.map, 'd', out.before, NULL, oldkey};
            siphon_mapped_t cre = {out.map, 'c', NULL, out.after, out.key};
            if ((rc = cb(&del, opaque)) != 0 || (rc = cb(&cre, opaque)) != 0)
                return rc;
            continue;
        }
        if ((rc = cb(&out, opaque)) != 0)
            return rc;
    }
    return 0;
}

/* ---- the set and accessors ---- */

void siphon_mapset_destroy(siphon_mapset_t *ms)
{
    if (!ms)
        return;
    for (size_t i = 0; i < ms->relcap; i++) {
        if (!ms->rels[i].used)
            continue;
        for (int j = 0; j < ms->rels[i].nbind; j++)
            binding_free(&ms->rels[i].binds[j]);
        free(ms->rels[i].binds);
    }
    free(ms->rels);
    for (int i = 0; i < ms->n; i++)
        siphon_mapping__free(ms->maps[i]);
    free(ms->maps);
    siphon_arena_destroy(&ms->row);
    free(ms);
}

int siphon_mapset_count(const siphon_mapset_t *ms) { return ms ? ms->n : 0; }

const siphon_mapping_t *siphon_mapset_get(const siphon_mapset_t *ms, int i)
{
    return ms && i >= 0 && i < ms->n ? ms->maps[i] : NULL;
}

const char *siphon_mapping_entity(const siphon_mapping_t *map) { return map->entity; }
int siphon_mapping_major(const siphon_mapping_t *map) { return map->major; }
const char *siphon_mapping_source_schema(const siphon_mapping_t *map) { return map->src_schema; }
const char *siphon_mapping_source_table(const siphon_mapping_t *map) { return map->src_table; }
const char *siphon_mapping_path(const siphon_mapping_t *map) { return map->path; }
const siphon_schema_t *siphon_mapping_schema(const siphon_mapping_t *map) { return map->sch; }
siphon_avro_stream_t *siphon_mapping_stream(const siphon_mapping_t *map) { return map->st; }
int siphon_mapping_key_count(const siphon_mapping_t *map) { return map->nkey; }

const char *siphon_mapping_key_field(const siphon_mapping_t *map, int i)
{
    return i >= 0 && i < map->nkey ? map->key_names[i] : NULL;
}

const char *siphon_mapping_field_column(const siphon_mapping_t *map, int i)
{
    return i >= 0 && i < map->nfields ? map->fields[i].column : NULL;
}
