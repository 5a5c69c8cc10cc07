/*
 * mapping_load.c - reading mapping files: the YAML format of mapping.h, checked key by key with
 * libyaml's marks, then against the entity's schema, then turned into a compiled mapping with
 * its Avro stream (key + envelope).
 *
 * What is checked here, without a database: the file's shape (unknown keys, wrong types,
 * missing keys, each an error at file:line:column), one mapping per entity and version, the
 * schema file <schemas_dir>/<entity>.v<version>.avsc exists and parses, every mapped field and
 * every key field exists in the schema and has a type a column can fill, every key field is
 * mapped, and every field left out is nullable or has a default (which is then what it gets).
 * Columns and their types are checked later, against a live relation (mapping.c).
 *
 * The format is built to grow: a field's value is a column name or a mapping, and the mapping
 * form is where {columns: [...]}, {const: ...} and transforms: [...] will go. Today only
 * `column` is accepted there, so a file written for a later version fails loudly instead of
 * being half understood.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>
#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"

#define LD_MAX_KEYS 8
#define LD_MAX_MAJOR 999999

typedef struct ld_ctx {
    const char *path;    /* the mapping file, for messages */
    yaml_document_t *doc;
    char *errbuf;
    size_t errsize;
} ld_ctx_t;

typedef struct ld_key {
    const char *key;
    const char *required; /* NULL: optional; else what to write */
} ld_key_t;

/* A `fields:` entry as read from the file (pointers into the YAML document). */
typedef struct ld_field {
    const char *name;
    const char *column;
    yaml_mark_t name_mark, column_mark;
} ld_field_t;

static int ld_fail(ld_ctx_t *cx, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ld_fail(ld_ctx_t *cx, yaml_mark_t m, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL, "%s:%zu:%zu: %s", cx->path,
                      m.line + 1, m.column + 1, msg);
}

static yaml_node_t *ld_node(ld_ctx_t *cx, int id) { return yaml_document_get_node(cx->doc, id); }

static int ld_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *ld_kind(const yaml_node_t *n)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SCALAR_NODE && !ld_is_null(n))
        return "a string";
    return "nothing";
}

static size_t ld_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

/* Check the keys of mapping node `map` (see config.c's twin): unknown, duplicate, non-scalar
 * and missing required keys are errors. vals[i] receives keys[i]'s value node, or NULL. */
static int ld_walk(ld_ctx_t *cx, yaml_node_t *map, const char *where, const ld_key_t *keys,
                   int nkeys, yaml_node_t **vals, yaml_node_t **knodes)
{
    char expected[256] = "";
    size_t o = 0;
    for (int i = 0; i < nkeys; i++) {
        vals[i] = knodes[i] = NULL;
        o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s%s", i ? ", " : "",
                              keys[i].key);
        if (o >= sizeof(expected))
            o = sizeof(expected) - 1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ld_node(cx, p->key), *v = ld_node(cx, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return ld_fail(cx, k->start_mark, "a key %s is %s (expected one of: %s)", where,
                           ld_kind(k), expected);
        const char *ks = (const char *)k->data.scalar.value;
        int idx = -1;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(keys[i].key, ks) == 0 && strlen(ks) == k->data.scalar.length)
                idx = i;
        if (idx < 0) {
            const char *best = NULL;
            size_t bestd = 3;
            for (int i = 0; i < nkeys; i++) {
                size_t d = ld_distance(ks, keys[i].key);
                if (d < bestd) {
                    bestd = d;
                    best = keys[i].key;
                }
            }
            char hint[96] = "";
            if (best)
                snprintf(hint, sizeof(hint), ", did you mean '%s'?", best);
            return ld_fail(cx, k->start_mark, "unknown key '%.64s' %s%s (expected one of: %s)",
                           ks, where, hint, expected);
        }
        if (vals[idx])
            return ld_fail(cx, k->start_mark,
                           "duplicate key '%s' %s, first given at line %zu (expected each key "
                           "once)",
                           keys[idx].key, where, knodes[idx]->start_mark.line + 1);
        vals[idx] = v;
        knodes[idx] = k;
    }
    for (int i = 0; i < nkeys; i++)
        if (keys[i].required && !vals[i])
            return ld_fail(cx, map->start_mark, "missing required key '%s' %s (expected %s)",
                           keys[i].key, where, keys[i].required);
    return 0;
}

/* A non-empty string scalar (any YAML scalar that is not null). */
static int ld_str(ld_ctx_t *cx, yaml_node_t *v, const char *what, const char *expected,
                  const char **out)
{
    if (v->type != YAML_SCALAR_NODE)
        return ld_fail(cx, v->start_mark, "wrong type for %s: found %s (expected %s)", what,
                       ld_kind(v), expected);
    if (ld_is_null(v) || v->data.scalar.length == 0)
        return ld_fail(cx, v->start_mark, "%s has no value (expected %s)", what, expected);
    if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
        return ld_fail(cx, v->start_mark, "%s contains a NUL character (expected %s)", what,
                       expected);
    *out = (const char *)v->data.scalar.value;
    return 0;
}

static int valid_entity(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
            return 0;
    return isalpha((unsigned char)s[0]) || s[0] == '_';
}

/* ---- defaults ---- */

/* Two's-complement big-endian bytes -> '-'?digits, written into the mapping's arena. */
static int bytes_to_digits(siphon_arena_t *mem, const uint8_t *p, size_t n, const char **out,
                           size_t *outlen)
{
    uint8_t *mag = siphon_arena_alloc(mem, n ? n : 1);
    char *digits = siphon_arena_alloc(mem, n * 3 + 3);
    if (!mag || !digits)
        return SIPHON_ENOMEM;
    int neg = n > 0 && (p[0] & 0x80);
    memcpy(mag, p, n);
    if (neg) { /* magnitude = ~x + 1 */
        int carry = 1;
        for (size_t i = n; i-- > 0;) {
            int b = (uint8_t)~mag[i] + carry;
            mag[i] = (uint8_t)b;
            carry = b >> 8;
        }
    }
    size_t nd = 0;
    char rev[1024];
    for (;;) {
        int rem = 0, nonzero = 0;
        for (size_t i = 0; i < n; i++) {
            int cur = rem * 256 + mag[i];
            mag[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero |= mag[i];
        }
        if (nd < sizeof(rev))
            rev[nd++] = (char)('0' + rem);
        if (!nonzero)
            break;
    }
    size_t o = 0;
    if (neg)
        digits[o++] = '-';
    while (nd > 0)
        digits[o++] = rev[--nd];
    digits[o] = '\0';
    *out = digits;
    *outlen = o;
    return 0;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
    int k = 0;
    for (size_t i = 0; s[i] && k < 32; i++) {
        if (s[i] == '-')
            continue;
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        int v = isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10);
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return k == 32 ? 0 : -1;
}

/* The value an unmapped field gets from its Avro default `j` (which, for a union, matches the
 * first branch). 0, SIPHON_ENOMEM, or SIPHON_EINVAL when Siphon cannot write such a default. */
static int default_value(siphon_mapping_t *map, const siphon_avro_type_t *t, json_t *j,
                         siphon_value_t *out)
{
    memset(out, 0, sizeof(*out));
    if (t->kind == SIPHON_AVRO_UNION)
        t = t->nbranches > 0 ? t->branches[0] : t;
    switch (t->kind) {
    case SIPHON_AVRO_NULL:
        out->type = SIPHON_V_NULL;
        return json_is_null(j) ? 0 : SIPHON_EINVAL;
    case SIPHON_AVRO_BOOLEAN:
        if (!json_is_boolean(j))
            return SIPHON_EINVAL;
        out->type = SIPHON_V_BOOL;
        out->u.b = json_is_true(j);
        return 0;
    case SIPHON_AVRO_INT:
    case SIPHON_AVRO_LONG:
        if (!json_is_integer(j))
            return SIPHON_EINVAL;
        switch (t->logical) {
        case SIPHON_AVRO_LT_NONE:
            out->type = SIPHON_V_INT;
            out->u.i = json_integer_value(j);
            return 0;
        case SIPHON_AVRO_LT_DATE:
            out->type = SIPHON_V_DATE;
            out->u.date = (int32_t)json_integer_value(j);
            return 0;
        case SIPHON_AVRO_LT_TIME_MICROS:
            out->type = SIPHON_V_TIME;
            out->u.time_us = json_integer_value(j);
            return 0;
        case SIPHON_AVRO_LT_TIMESTAMP_MICROS:
            out->type = SIPHON_V_TIMESTAMP;
            out->u.ts.us = json_integer_value(j);
            out->u.ts.tz = 1;
            return 0;
        default:
            return SIPHON_EINVAL;
        }
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE:
        if (!json_is_number(j))
            return SIPHON_EINVAL;
        out->type = SIPHON_V_FLOAT;
        out->u.f = json_number_value(j);
        return 0;
    case SIPHON_AVRO_STRING:
    case SIPHON_AVRO_ENUM: {
        if (!json_is_string(j))
            return SIPHON_EINVAL;
        if (t->logical == SIPHON_AVRO_LT_UUID) {
            out->type = SIPHON_V_UUID;
            return parse_uuid(json_string_value(j), out->u.uuid) ? SIPHON_EINVAL : 0;
        }
        size_t n = json_string_length(j);
        char *s = siphon_arena_strndup(&map->mem, json_string_value(j), n);
        if (!s)
            return SIPHON_ENOMEM;
        out->type = SIPHON_V_TEXT;
        out->u.s.ptr = s;
        out->u.s.len = n;
        return 0;
    }
    case SIPHON_AVRO_BYTES: {
        if (!json_is_string(j))
            return SIPHON_EINVAL;
        /* Avro writes bytes defaults as a string of code points 0-255 */
        const unsigned char *s = (const unsigned char *)json_string_value(j);
        size_t n = json_string_length(j), o = 0;
        uint8_t *b = siphon_arena_alloc(&map->mem, n ? n : 1);
        if (!b)
            return SIPHON_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < 0x80) {
                b[o++] = s[i];
            } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && s[i] <= 0xC3) {
                b[o++] = (uint8_t)(((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F));
                i++;
            } else {
                return SIPHON_EINVAL;
            }
        }
        if (t->logical == SIPHON_AVRO_LT_DECIMAL) {
            out->type = SIPHON_V_DECIMAL;
            out->u.dec.scale = t->scale;
            if (o == 0) {
                out->u.dec.digits = "0";
                out->u.dec.len = 1;
                return 0;
            }
            return bytes_to_digits(&map->mem, b, o, &out->u.dec.digits, &out->u.dec.len);
        }
        out->type = SIPHON_V_BYTES;
        out->u.s.ptr = (const char *)b;
        out->u.s.len = o;
        return 0;
    }
    default:
        return SIPHON_EINVAL;
    }
}

/* ---- one file ---- */

static void mapping_free(siphon_mapping_t *map)
{
    if (!map)
        return;
    siphon_avro_stream_destroy(map->st);
    siphon_schema_destroy(map->sch);
    if (map->fields)
        for (int i = 0; i < map->nfields; i++)
            free(map->fields[i].column);
    free(map->fields);
    if (map->key_names)
        for (int i = 0; i < map->nkey; i++)
            free(map->key_names[i]);
    free(map->key_names);
    free(map->key_idx);
    free(map->after);
    free(map->before);
    free(map->key);
    siphon_arena_destroy(&map->mem);
    free(map->path);
    free(map->entity);
    free(map->src_schema);
    free(map->src_table);
    free(map);
}

/* The schema's field names, comma-separated, cut with "..." to fit `size` bytes. */
static void field_list(const siphon_schema_t *sch, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < sch->record->nfields; i++) {
        const char *nm = sch->record->fields[i].name;
        const char *sep = i ? ", " : "";
        if (o + strlen(sep) + strlen(nm) + 6 > size) {
            snprintf(buf + o, size - o, "%s...", sep);
            return;
        }
        o += (size_t)snprintf(buf + o, size - o, "%s%s", sep, nm);
    }
}

static int field_missing(ld_ctx_t *cx, yaml_mark_t m, const siphon_schema_t *sch,
                         const char *name, const char *what)
{
    char list[400];
    char hint[128] = "";
    size_t bestd = 3;
    for (int i = 0; i < sch->record->nfields; i++) {
        size_t d = ld_distance(name, sch->record->fields[i].name);
        if (d < bestd) {
            bestd = d;
            snprintf(hint, sizeof(hint), "; did you mean '%s'?", sch->record->fields[i].name);
        }
    }
    field_list(sch, list, sizeof(list));
    return ld_fail(cx, m, "%s '%.64s' is not in %s (expected one of: %s%s)", what, name,
                   sch->path ? sch->path : "the schema", list, hint);
}

/* Read the `fields:` mapping into an array of ld_field_t (caller frees the array). */
static int read_fields(ld_ctx_t *cx, yaml_node_t *v, ld_field_t **out, int *nout)
{
    static const ld_key_t fkeys[] = {{"column", "column: <source column name>"}};
    *out = NULL;
    *nout = 0;
    if (v->type != YAML_MAPPING_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for fields: found %s (expected a mapping of entity field to "
                       "source column, e.g. order_number: hdordn)",
                       ld_kind(v));
    int n = (int)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    ld_field_t *fl = calloc((size_t)(n ? n : 1), sizeof(*fl));
    if (!fl)
        return SIPHON_ENOMEM;
    int k = 0, rc = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ld_node(cx, p->key), *vn = ld_node(cx, p->value);
        const char *name;
        if ((rc = ld_str(cx, kn, "a field name in fields", "an entity field name", &name)))
            goto err;
        for (int i = 0; i < k; i++)
            if (strcmp(fl[i].name, name) == 0) {
                rc = ld_fail(cx, kn->start_mark,
                             "duplicate field '%.64s' in fields, first given at line %zu "
                             "(expected each field once)",
                             name, fl[i].name_mark.line + 1);
                goto err;
            }
        char what[128];
        snprintf(what, sizeof(what), "field '%.64s'", name);
        fl[k].name = name;
        fl[k].name_mark = kn->start_mark;
        if (vn->type == YAML_MAPPING_NODE) {
            yaml_node_t *vals[1], *knodes[1];
            char where[128];
            snprintf(where, sizeof(where), "in field '%.64s'", name);
            if ((rc = ld_walk(cx, vn, where, fkeys, 1, vals, knodes)))
                goto err;
            vn = vals[0];
            snprintf(what, sizeof(what), "column of field '%.64s'", name);
        }
        if (vn->type != YAML_SCALAR_NODE || ld_is_null(vn)) {
            rc = ld_fail(cx, vn->start_mark,
                         "wrong type for %s: found %s (expected a column name, or a mapping "
                         "such as {column: hdordn})",
                         what, ld_kind(vn));
            goto err;
        }
        if ((rc = ld_str(cx, vn, what, "a column name", &fl[k].column)))
            goto err;
        fl[k].column_mark = vn->start_mark;
        k++;
    }
    *out = fl;
    *nout = k;
    return 0;
err:
    free(fl);
    return rc;
}

/* Parse and check one mapping file; on success *out is a complete mapping. `others` are the
 * mappings loaded before it (for the duplicate check). */
static int load_file(siphon_mapping_t **out, const char *path, const char *schemas_dir,
                     siphon_mapping_t *const *others, int nothers, char *errbuf,
                     size_t errsize)
{
    static const ld_key_t top[] = {
        {"entity", "entity: <name of the canonical entity>, e.g. entity: sales_order"},
        {"version", "version: <major version of the entity schema>, e.g. version: 1"},
        {"source", "source: with table: <schema.table>"},
        {"key", "key: [<entity fields forming the Kafka key>]"},
        {"fields", "fields: with <entity field>: <source column> lines"},
    };
    static const ld_key_t srckeys[] = {{"table", "table: <schema.table>, e.g. public.oehdr"}};
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0, rc = 0;
    siphon_mapping_t *map = NULL;
    ld_field_t *fl = NULL;
    int nfl = 0;
    char *text = NULL, *schema_path = NULL;
    size_t len = 0;
    json_t *json = NULL;
    ld_ctx_t cx = {path, &doc, errbuf, errsize};
    FILE *f = NULL;

    *out = NULL;
    if (!(f = fopen(path, "rb"))) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not open mapping file '%s': %s",
                        path, strerror(errno));
        goto out;
    }
    for (size_t cap = 0;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *p = realloc(text, cap);
            if (!p) {
                rc = SIPHON_ENOMEM;
                goto out;
            }
            text = p;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not read mapping file '%s': %s",
                        path, strerror(errno));
        goto out;
    }

    if (!yaml_parser_initialize(&parser)) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = ld_fail(&cx, parser.problem_mark,
                     "could not parse the mapping: %s%s%s (expected valid YAML: check the "
                     "indentation, use spaces not tabs)",
                     parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                     parser.context ? parser.context : "");
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_mark_t start = {0, 0, 0};
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = ld_fail(&cx, root ? root->start_mark : start,
                     "the mapping is %s (expected a mapping with entity, version, source, key "
                     "and fields)",
                     root ? ld_kind(root) : "empty");
        goto out;
    }

    yaml_node_t *v[LD_MAX_KEYS], *k[LD_MAX_KEYS], *sv[1], *sk[1];
    const char *entity, *table;
    if ((rc = ld_walk(&cx, root, "at the top level", top, 5, v, k)) ||
        (rc = ld_str(&cx, v[0], "entity", "an entity name such as sales_order", &entity)))
        goto out;
    if (!valid_entity(entity)) {
        rc = ld_fail(&cx, v[0]->start_mark,
                     "wrong value for entity: '%.64s' (expected letters, digits, '_' or '-', "
                     "starting with a letter: it names schemas/<entity>.v<version>.avsc)",
                     entity);
        goto out;
    }

    /* version: a plain integer */
    long major = 0;
    {
        yaml_node_t *vv = v[1];
        const char *s = vv->type == YAML_SCALAR_NODE ? (const char *)vv->data.scalar.value : "";
        char *end = NULL;
        if (vv->type == YAML_SCALAR_NODE && vv->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            isdigit((unsigned char)s[0]))
            major = strtol(s, &end, 10);
        if (!end || *end || major < 1 || major > LD_MAX_MAJOR) {
            if (vv->type != YAML_SCALAR_NODE || ld_is_null(vv))
                rc = ld_fail(&cx, vv->start_mark,
                             "wrong type for version: found %s (expected the entity's major "
                             "version, a whole number from 1, e.g. version: 1)",
                             ld_kind(vv));
            else
                rc = ld_fail(&cx, vv->start_mark,
                             "wrong value for version: '%.32s' (expected the entity's major "
                             "version, a whole number from 1, without quotes, e.g. version: 1)",
                             s);
            goto out;
        }
    }

    /* source */
    if (v[2]->type != YAML_MAPPING_NODE) {
        rc = ld_fail(&cx, v[2]->start_mark,
                     "wrong type for source: found %s (expected a mapping such as "
                     "{table: public.oehdr})",
                     ld_kind(v[2]));
        goto out;
    }
    if ((rc = ld_walk(&cx, v[2], "in source", srckeys, 1, sv, sk)) ||
        (rc = ld_str(&cx, sv[0], "source.table", "schema.table, e.g. public.oehdr", &table)))
        goto out;
    const char *dot = strchr(table, '.');
    if ((dot && (dot == table || dot[1] == '\0' || strchr(dot + 1, '.'))) ||
        strchr(table, ' ')) {
        rc = ld_fail(&cx, sv[0]->start_mark,
                     "wrong value for source.table: '%.64s' (expected schema.table or table, "
                     "e.g. public.oehdr, as the catalog spells it)",
                     table);
        goto out;
    }

    /* duplicates are caught before the schema work */
    for (int i = 0; i < nothers; i++)
        if (others[i]->major == (int)major && strcmp(others[i]->entity, entity) == 0) {
            rc = ld_fail(&cx, v[0]->start_mark,
                         "entity '%s' version %ld is already mapped by %s (expected one mapping "
                         "file per entity and version: merge them, or give this one its own "
                         "version)",
                         entity, major, others[i]->path);
            goto out;
        }

    if (!(map = calloc(1, sizeof(*map)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    siphon_arena_init(&map->mem, 4096);
    map->major = (int)major;
    map->entity_line = (int)v[0]->start_mark.line + 1;
    map->entity_col = (int)v[0]->start_mark.column + 1;
    if (!(map->path = strdup(path)) || !(map->entity = strdup(entity)) ||
        !(map->src_schema = dot ? strndup(table, (size_t)(dot - table)) : strdup("public")) ||
        !(map->src_table = strdup(dot ? dot + 1 : table))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }

    if ((rc = read_fields(&cx, v[4], &fl, &nfl)))
        goto out;

    /* the key: a list of field names (a single name is a one-field key) */
    yaml_node_t *kv = v[3];
    int nkey = 0;
    if (kv->type == YAML_SEQUENCE_NODE)
        nkey = (int)(kv->data.sequence.items.top - kv->data.sequence.items.start);
    else if (kv->type == YAML_SCALAR_NODE && !ld_is_null(kv))
        nkey = 1;
    if (nkey == 0) {
        rc = ld_fail(&cx, kv->start_mark,
                     "wrong type for key: found %s (expected a list of entity fields, e.g. "
                     "key: [company, order_number])",
                     kv->type == YAML_SEQUENCE_NODE ? "an empty list" : ld_kind(kv));
        goto out;
    }

    /* the schema */
    size_t splen = strlen(schemas_dir) + strlen(entity) + 32;
    if (!(schema_path = malloc(splen))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    size_t sl = strlen(schemas_dir);
    while (sl > 1 && schemas_dir[sl - 1] == '/')
        sl--;
    snprintf(schema_path, splen, "%.*s/%s.v%ld.avsc", (int)sl, schemas_dir, entity, major);
    struct stat st;
    if (stat(schema_path, &st) != 0) {
        rc = ld_fail(&cx, v[0]->start_mark,
                     "no schema for entity '%s' version %ld: %s does not exist (expected the "
                     "entity's Avro schema in that file; check entity and version)",
                     entity, major, schema_path);
        goto out;
    }
    {
        char serr[768];
        if ((rc = siphon_schema_load(&map->sch, schema_path, serr, sizeof(serr))) < 0) {
            if (rc != SIPHON_ENOMEM)
                rc = ld_fail(&cx, v[0]->start_mark,
                             "could not load the schema of entity '%s' version %ld: %s", entity,
                             major, serr);
            goto out;
        }
    }
    const siphon_avro_type_t *rec = map->sch->record;
    map->nfields = rec->nfields;
    if (!(map->fields = calloc((size_t)(rec->nfields ? rec->nfields : 1), sizeof(map_field_t)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (int i = 0; i < rec->nfields; i++) {
        map->fields[i].af = &rec->fields[i];
        map->fields[i].target = siphon_mapping__target(&rec->fields[i]);
    }

    /* mapped fields: exist, and of a type a column can fill */
    for (int i = 0; i < nfl; i++) {
        int fi = siphon_schema_field_index(map->sch, fl[i].name);
        if (fi < 0) {
            rc = field_missing(&cx, fl[i].name_mark, map->sch, fl[i].name, "field");
            goto out;
        }
        map_field_t *mf = &map->fields[fi];
        if (mf->target == MAP_T_UNSUPPORTED) {
            char tn[128];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            rc = ld_fail(&cx, fl[i].name_mark,
                         "field '%s' has type %s, which no column can fill (expected a field of "
                         "a primitive type, or decimal, date, time-micros, timestamp-micros, "
                         "uuid, enum)",
                         fl[i].name, tn);
            goto out;
        }
        if (!(mf->column = strdup(fl[i].column))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        mf->line = (int)fl[i].column_mark.line + 1;
        mf->col = (int)fl[i].column_mark.column + 1;
    }

    /* key fields: exist, mapped, once each */
    if (!(map->key_idx = calloc((size_t)nkey, sizeof(int))) ||
        !(map->key_names = calloc((size_t)nkey, sizeof(char *)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (int i = 0; i < nkey; i++) {
        yaml_node_t *item = kv->type == YAML_SEQUENCE_NODE
                                ? ld_node(&cx, kv->data.sequence.items.start[i])
                                : kv;
        const char *kname;
        if ((rc = ld_str(&cx, item, "a key field", "an entity field name", &kname)))
            goto out;
        int fi = siphon_schema_field_index(map->sch, kname);
        if (fi < 0) {
            rc = field_missing(&cx, item->start_mark, map->sch, kname, "key field");
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (map->key_idx[j] == fi) {
                rc = ld_fail(&cx, item->start_mark,
                             "key field '%s' is listed twice (expected each key field once)",
                             kname);
                goto out;
            }
        if (!map->fields[fi].column) {
            rc = ld_fail(&cx, item->start_mark,
                         "key field '%s' has no column (expected a line '%s: <column>' under "
                         "fields)",
                         kname, kname);
            goto out;
        }
        map->key_idx[i] = fi;
        if (!(map->key_names[i] = strdup(kname))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        map->nkey = i + 1;
    }

    /* unmapped fields: nullable or with a default, which becomes their value */
    json_error_t jerr;
    json = json_loads(map->sch->json, 0, &jerr);
    json_t *jfields = json ? json_object_get(json, "fields") : NULL;
    for (int i = 0; i < map->nfields; i++) {
        map_field_t *mf = &map->fields[i];
        mf->defval.type = SIPHON_V_NULL;
        if (mf->column)
            continue;
        if (mf->af->has_default) {
            json_t *jf = json_array_get(jfields, (size_t)i);
            json_t *jd = jf ? json_object_get(jf, "default") : NULL;
            const char *jn = jf ? json_string_value(json_object_get(jf, "name")) : NULL;
            int drc = (jd && jn && strcmp(jn, mf->af->name) == 0)
                          ? default_value(map, mf->af->type, jd, &mf->defval)
                          : SIPHON_EINVAL;
            if (drc == SIPHON_ENOMEM) {
                rc = drc;
                goto out;
            }
            if (drc) {
                char tn[128];
                siphon_mapping__type_name(mf->af, tn, sizeof(tn));
                rc = ld_fail(&cx, k[4]->start_mark,
                             "field '%s' (%s) has no column and Siphon cannot write its default "
                             "(expected a line '%s: <column>' under fields)",
                             mf->af->name, tn, mf->af->name);
                goto out;
            }
        } else if (!mf->af->nullable) {
            char tn[128];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            rc = ld_fail(&cx, k[4]->start_mark,
                         "field '%s' (%s) of %s has no column, is not nullable and has no "
                         "default (expected a line '%s: <column>' under fields, or a nullable "
                         "field or a default in the schema)",
                         mf->af->name, tn, schema_path, mf->af->name);
            goto out;
        }
    }

    {
        char serr[768];
        if ((rc = siphon_avro_stream_new(&map->st, map->sch, (const char *const *)map->key_names,
                                         map->nkey, serr, sizeof(serr))) < 0) {
            if (rc != SIPHON_ENOMEM)
                rc = ld_fail(&cx, k[3]->start_mark,
                             "could not build the key and envelope schemas of entity '%s' "
                             "version %ld: %s",
                             entity, major, serr);
            goto out;
        }
    }
    size_t nf = (size_t)(map->nfields ? map->nfields : 1);
    if (!(map->after = calloc(nf, sizeof(siphon_value_t))) ||
        !(map->before = calloc(nf, sizeof(siphon_value_t))) ||
        !(map->key = calloc((size_t)map->nkey, sizeof(siphon_value_t)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    *out = map;
    map = NULL;
    rc = 0;

out:
    if (rc == SIPHON_ENOMEM)
        siphon_err(errbuf, errsize, rc, "out of memory while loading mapping %s", path);
    if (f)
        fclose(f);
    json_decref(json);
    free(fl);
    free(schema_path);
    mapping_free(map);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    free(text);
    return rc;
}

/* ---- the set ---- */

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && strcmp(s + n - m, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void siphon_mapping__free(siphon_mapping_t *map) { mapping_free(map); }

int siphon_mapset_load(siphon_mapset_t **out, const char *mappings_dir, const char *schemas_dir,
                       char *errbuf, size_t errsize)
{
    siphon_mapset_t *ms = NULL;
    DIR *d = NULL;
    char **names = NULL, *path = NULL;
    int nnames = 0, cap = 0, rc = 0;

    if (!out || !mappings_dir || !schemas_dir)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not load mappings: no mappings or schemas folder given");
    *out = NULL;
    if (errbuf && errsize)
        errbuf[0] = '\0';
    if (!(d = opendir(mappings_dir))) {
        rc = siphon_err(errbuf, errsize, errno == ENOENT ? SIPHON_ENOTFOUND : SIPHON_EIO,
                        "could not open mappings folder '%s': %s (expected a folder of "
                        "<entity>.yaml mapping files; set mappings: in the configuration)",
                        mappings_dir, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' ||
            !(has_suffix(de->d_name, ".yaml") || has_suffix(de->d_name, ".yml")))
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, (size_t)cap * sizeof(char *));
            if (!p) {
                rc = SIPHON_ENOMEM;
                goto out;
            }
            names = p;
        }
        if (!(names[nnames] = strdup(de->d_name))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        nnames++;
    }
    if (nnames > 1)
        qsort(names, (size_t)nnames, sizeof(char *), cmp_str);

    if (!(ms = calloc(1, sizeof(*ms))) ||
        !(ms->maps = calloc((size_t)(nnames ? nnames : 1), sizeof(siphon_mapping_t *)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    siphon_arena_init(&ms->row, 16 * 1024);
    for (int i = 0; i < nnames; i++) {
        size_t plen = strlen(mappings_dir) + strlen(names[i]) + 2;
        free(path);
        if (!(path = malloc(plen))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        size_t dl = strlen(mappings_dir);
        while (dl > 1 && mappings_dir[dl - 1] == '/')
            dl--;
        snprintf(path, plen, "%.*s/%s", (int)dl, mappings_dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if ((rc = load_file(&ms->maps[ms->n], path, schemas_dir, ms->maps, ms->n, errbuf,
                            errsize)) < 0)
            goto out;
        ms->n++;
    }
    if (ms->n == 0)
        siphon_log(SIPHON_LOG_WARNING, "map",
                   "no mapping files (*.yaml, *.yml) in '%s': no table will be streamed",
                   mappings_dir);
    *out = ms;
    ms = NULL;

out:
    if (rc == SIPHON_ENOMEM && errbuf && errsize && !errbuf[0])
        siphon_err(errbuf, errsize, rc, "out of memory while loading mappings from %s",
                   mappings_dir);
    if (d)
        closedir(d);
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(path);
    siphon_mapset_destroy(ms);
    return rc;
}
