/*
 * mapping_load.c - reading mapping files: the YAML format of mapping.h (docs/mappings.md),
 * checked key by key with libyaml's marks, then against the entity's schema, then compiled:
 * every field's inputs and transform chain built with their arguments parsed (lookup tables,
 * charsets, time zones, HMAC keys), the filter parsed, and the Avro stream (key + envelope)
 * built.
 *
 * What is checked here, without a database: the file's shape (unknown keys, wrong types,
 * missing keys, each an error at file:line:column), one mapping per entity and version, the
 * schema file <schemas_dir>/<entity>.v<version>.avsc exists and parses, every mapped field and
 * every key field exists in the schema and has a type something can fill, every key field is
 * mapped, every field left out is nullable or has a default (which is then what it gets), every
 * transform gets arguments it understands and values it takes, and the type a chain ends with
 * fits its field (where the chain itself fixes the type; a chain that passes a column's type
 * through is checked at bind, with the column). Columns and their types are checked against a
 * live relation later (mapping.c).
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
#include "yamlx/yamlx.h"

#define LD_MAX_KEYS 10
#define LD_MAX_MAJOR 999999

typedef struct ld_ctx {
    const char *path;    /* the mapping file, for messages */
    yaml_document_t *doc;
    siphon_mapping_t *map;
    char *errbuf;
    size_t errsize;
} ld_ctx_t;

typedef siphon_yamlx_key_t ld_key_t; /* required: NULL, or what to write (yamlx.h) */

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

/* Check the keys of mapping node `map` (siphon_yamlx_walk). vals[i] receives keys[i]'s value
 * node, or NULL; knodes[i] its key node. */
static int ld_walk(ld_ctx_t *cx, yaml_node_t *map, const char *where, const ld_key_t *keys,
                   int nkeys, yaml_node_t **vals, yaml_node_t **knodes)
{
    siphon_yamlx_err_t err;
    if (siphon_yamlx_walk(cx->doc, map, where, keys, nkeys, vals, knodes, &err) < 0)
        return ld_fail(cx, err.mark, "%s", err.msg);
    return 0;
}

/* A non-empty string scalar (any YAML scalar that is not null). */
static int ld_str(ld_ctx_t *cx, yaml_node_t *v, const char *what, const char *expected,
                  const char **out)
{
    if (v->type != YAML_SCALAR_NODE)
        return ld_fail(cx, v->start_mark, "wrong type for %s: found %s (expected %s)", what,
                       siphon_yamlx_kind(v), expected);
    if (siphon_yamlx_is_null(v) || v->data.scalar.length == 0)
        return ld_fail(cx, v->start_mark, "%s has no value (expected %s)", what, expected);
    if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
        return ld_fail(cx, v->start_mark, "%s contains a NUL character (expected %s)", what,
                       expected);
    *out = (const char *)v->data.scalar.value;
    return 0;
}

/* A whole number scalar within [lo, hi]. */
static int ld_int(ld_ctx_t *cx, yaml_node_t *v, const char *what, long lo, long hi, int *out)
{
    const char *s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
    char *end = NULL;
    long x = 0;
    if (v->type == YAML_SCALAR_NODE && (isdigit((unsigned char)s[0]) || s[0] == '-'))
        x = strtol(s, &end, 10);
    if (!end || *end || x < lo || x > hi)
        return ld_fail(cx, v->start_mark,
                       "wrong value for %s: '%.32s' (expected a whole number from %ld to %ld)",
                       what, v->type == YAML_SCALAR_NODE ? s : siphon_yamlx_kind(v), lo, hi);
    *out = (int)x;
    return 0;
}

/* A scalar (null allowed) as a constant; its text lives in the mapping's arena. */
static int ld_const(ld_ctx_t *cx, yaml_node_t *v, const char *what, map_const_t *c)
{
    memset(c, 0, sizeof(*c));
    if (v->type != YAML_SCALAR_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for %s: found %s (expected a single value such as 'X', 0 or "
                       "~ for null)",
                       what, siphon_yamlx_kind(v));
    if (siphon_yamlx_is_null(v)) {
        c->is_null = 1;
        c->text = "";
        return 0;
    }
    c->len = v->data.scalar.length;
    c->plain = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!(c->text = siphon_arena_strndup(&cx->map->mem, (const char *)v->data.scalar.value,
                                         c->len)))
        return SIPHON_ENOMEM;
    return 0;
}

/* A scalar or a list of scalars as constants (malloc'd array). */
static int ld_const_list(ld_ctx_t *cx, yaml_node_t *v, const char *what, map_const_t **out,
                         int *n)
{
    int cnt = v->type == YAML_SEQUENCE_NODE
                  ? (int)(v->data.sequence.items.top - v->data.sequence.items.start)
                  : 1;
    *n = 0;
    if (cnt == 0)
        return ld_fail(cx, v->start_mark, "%s is an empty list (expected at least one value)",
                       what);
    if (!(*out = calloc((size_t)cnt, sizeof(map_const_t))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *it = v->type == YAML_SEQUENCE_NODE
                              ? ld_node(cx, v->data.sequence.items.start[i])
                              : v;
        int rc = ld_const(cx, it, what, &(*out)[i]);
        if (rc)
            return rc;
        *n = i + 1;
    }
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

static void input_free(map_input_t *in)
{
    free(in->column);
    for (int i = 0; i < in->nops; i++)
        siphon_mapping__op_free(&in->ops[i]);
    free(in->ops);
}

static void mapping_free(siphon_mapping_t *map)
{
    if (!map)
        return;
    siphon_avro_stream_destroy(map->st);
    siphon_schema_destroy(map->sch);
    if (map->fields)
        for (int i = 0; i < map->nfields; i++) {
            map_field_t *mf = &map->fields[i];
            free(mf->column);
            free(mf->columns);
            for (int j = 0; j < mf->nin; j++)
                input_free(&mf->in[j]);
            free(mf->in);
            for (int j = 0; j < mf->nops; j++)
                siphon_mapping__op_free(&mf->ops[j]);
            free(mf->ops);
        }
    free(map->fields);
    if (map->key_names)
        for (int i = 0; i < map->nkey; i++)
            free(map->key_names[i]);
    free(map->key_names);
    free(map->key_idx);
    free(map->after);
    free(map->before);
    free(map->key);
    free(map->warn);
    free(map->warnmsg);
    siphon_mapping__filter_free(map->filter);
    free(map->filter_text);
    free(map->soft_column);
    free(map->soft_vals);
    siphon_mapping__charset_free(map->charset);
    siphon_mapping__tz_free(map->tz);
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
        size_t d = siphon_yamlx_distance(name, sch->record->fields[i].name);
        if (d < bestd) {
            bestd = d;
            snprintf(hint, sizeof(hint), "; did you mean '%s'?", sch->record->fields[i].name);
        }
    }
    field_list(sch, list, sizeof(list));
    return ld_fail(cx, m, "%s '%.64s' is not in %s (expected one of: %s%s)", what, name,
                   sch->path ? sch->path : "the schema", list, hint);
}

/* ---- transforms ---- */

static const char *const transform_list =
    "trim, rtrim, ltrim, upper, lower, strip_leading_zeros, pad, truncate, null_if, default, "
    "coalesce, concat, date_yyyymmdd, date_yymmdd, date_cyyddd, date_days, date_format, "
    "time_hhmmss, timestamp, implied_decimals, number, bool, lookup, charset, hash, redact";

/* Transforms that need an argument, with an example of it. */
static const char *arg_example(map_xk_t k)
{
    switch (k) {
    case MAP_X_PAD: return "{pad: {width: 10, char: '0'}}";
    case MAP_X_TRUNCATE: return "{truncate: 30}";
    case MAP_X_NULL_IF: return "{null_if: ['', 0, '1900-01-01']}";
    case MAP_X_DEFAULT: return "{default: 'N/A'}";
    case MAP_X_DATE_DAYS: return "{date_days: {epoch: '1967-12-31'}}";
    case MAP_X_DATE_FORMAT: return "{date_format: '%d.%m.%Y'}";
    case MAP_X_IMPLIED_DEC: return "{implied_decimals: 2}";
    case MAP_X_LOOKUP: return "{lookup: {codes: {O: OPEN, C: CLOSED}, default: UNKNOWN}}";
    case MAP_X_CHARSET: return "{charset: windows-1252}";
    case MAP_X_HASH: return "{hash: {key_env: SIPHON_PII_KEY}}";
    default: return NULL;
    }
}

static int op_arg_map(ld_ctx_t *cx, yaml_node_t *arg, const char *name, const ld_key_t *keys,
                      int nkeys, yaml_node_t **vals, yaml_node_t **knodes)
{
    char where[96];
    snprintf(where, sizeof(where), "in transform '%s'", name);
    return ld_walk(cx, arg, where, keys, nkeys, vals, knodes);
}

static int bool_lists(ld_ctx_t *cx, map_op_t *op, yaml_node_t *arg)
{
    static const char *const dt[] = {"Y", "1", "T", "true", "yes"},
                             *const df[] = {"N", "0", "F", "false", "no"};
    yaml_node_t *v[2] = {NULL, NULL}, *k[2];
    static const ld_key_t keys[] = {{"true", NULL}, {"false", NULL}};
    int rc;
    if (arg) {
        if (arg->type != YAML_MAPPING_NODE)
            return ld_fail(cx, arg->start_mark,
                           "wrong type for the argument of transform 'bool': found %s "
                           "(expected {true: ['Y'], false: ['N', '']})",
                           siphon_yamlx_kind(arg));
        if ((rc = op_arg_map(cx, arg, "bool", keys, 2, v, k)))
            return rc;
    }
    for (int side = 0; side < 2; side++) {
        map_const_t **list = side == 0 ? &op->a.boolean.t : &op->a.boolean.f;
        int *n = side == 0 ? &op->a.boolean.nt : &op->a.boolean.nf;
        if (v[side]) {
            if ((rc = ld_const_list(cx, v[side], side ? "bool false" : "bool true", list, n)))
                return rc;
            for (int i = 0; i < *n; i++)
                if ((*list)[i].is_null)
                    return ld_fail(cx, v[side]->start_mark,
                                   "bool values are text; a null stays null (expected values "
                                   "such as 'Y' or '')");
            continue;
        }
        if (!(*list = calloc(5, sizeof(map_const_t))))
            return SIPHON_ENOMEM;
        for (int i = 0; i < 5; i++) {
            (*list)[i].text = side == 0 ? dt[i] : df[i];
            (*list)[i].len = strlen((*list)[i].text);
        }
        *n = 5;
    }
    return 0;
}

static int lookup_arg(ld_ctx_t *cx, map_op_t *op, yaml_node_t *arg, map_target_t target,
                      const siphon_avro_field_t *af)
{
    static const ld_key_t keys[] = {{"codes", "codes: {<code>: <value>, ...}"}, {"default", NULL}};
    yaml_node_t *v[2], *k[2];
    int rc;
    if (arg->type != YAML_MAPPING_NODE)
        return ld_fail(cx, arg->start_mark,
                       "wrong type for the argument of transform 'lookup': found %s (expected "
                       "%s)",
                       siphon_yamlx_kind(arg), arg_example(MAP_X_LOOKUP));
    if ((rc = op_arg_map(cx, arg, "lookup", keys, 2, v, k)))
        return rc;
    yaml_node_t *codes = v[0];
    if (codes->type != YAML_MAPPING_NODE || codes->data.mapping.pairs.top == codes->data.mapping.pairs.start)
        return ld_fail(cx, codes->start_mark,
                       "wrong type for lookup codes: found %s (expected a mapping of codes to "
                       "values, e.g. {O: OPEN, C: CLOSED})",
                       codes->type == YAML_MAPPING_NODE ? "an empty mapping" : siphon_yamlx_kind(codes));
    int n = (int)(codes->data.mapping.pairs.top - codes->data.mapping.pairs.start);
    if (!(op->a.lookup.codes = calloc((size_t)n, sizeof(map_code_t))))
        return SIPHON_ENOMEM;
    op->a.lookup.all_single = 1;
    for (int i = 0; i < n; i++) {
        yaml_node_pair_t *p = &codes->data.mapping.pairs.start[i];
        yaml_node_t *kn = ld_node(cx, p->key), *vn = ld_node(cx, p->value);
        map_code_t *c = &op->a.lookup.codes[i];
        if ((rc = ld_const(cx, kn, "a lookup code", &c->from)) ||
            (rc = ld_const(cx, vn, "a lookup value", &c->to)))
            return rc;
        if (c->from.is_null)
            return ld_fail(cx, kn->start_mark,
                           "a lookup code cannot be null: a null stays null (expected a code "
                           "such as 'O' or '')");
        /* codes compare as CHAR does: trailing spaces do not count */
        while (c->from.len > 0 && c->from.text[c->from.len - 1] == ' ')
            c->from.len--;
        for (int j = 0; j < i; j++)
            if (op->a.lookup.codes[j].from.len == c->from.len &&
                !memcmp(op->a.lookup.codes[j].from.text, c->from.text, c->from.len))
                return ld_fail(cx, kn->start_mark,
                               "lookup code '%s' is listed twice (expected each code once)",
                               c->from.text);
        if (c->from.len > 1)
            op->a.lookup.all_single = 0;
        if (target == MAP_T_ENUM && !c->to.is_null) {
            int found = 0;
            for (int s = 0; s < af->base->nsymbols; s++)
                found |= strlen(af->base->symbols[s]) == c->to.len &&
                         !memcmp(af->base->symbols[s], c->to.text, c->to.len);
            if (!found)
                return ld_fail(cx, vn->start_mark,
                               "lookup value '%s' is not a symbol of enum field '%s' (expected "
                               "one of the symbols of %s)",
                               c->to.text, af->name, af->base->name);
        }
        op->a.lookup.n = i + 1;
    }
    if (op->a.lookup.all_single)
        for (int i = 0; i < n; i++) {
            const map_code_t *c = &op->a.lookup.codes[i];
            op->a.lookup.direct[c->from.len ? (unsigned char)c->from.text[0] : 0] = (int16_t)(i + 1);
        }
    if (v[1]) {
        if ((rc = ld_const(cx, v[1], "lookup default", &op->a.lookup.def)))
            return rc;
        op->a.lookup.has_default = 1;
        if (target == MAP_T_ENUM && !op->a.lookup.def.is_null) {
            int found = 0;
            for (int s = 0; s < af->base->nsymbols; s++)
                found |= !strcmp(af->base->symbols[s], op->a.lookup.def.text);
            if (!found)
                return ld_fail(cx, v[1]->start_mark,
                               "lookup default '%s' is not a symbol of enum field '%s' "
                               "(expected one of the symbols of %s)",
                               op->a.lookup.def.text, af->name, af->base->name);
        }
    }
    return 0;
}

/* One transform: "trim" or {name: argument}. */
static int parse_op(ld_ctx_t *cx, yaml_node_t *node, map_field_t *mf, map_op_t *op)
{
    siphon_mapping_t *map = cx->map;
    yaml_node_t *arg = NULL, *namenode = node;
    const char *name;
    int rc;

    memset(op, 0, sizeof(*op));
    op->line = (int)node->start_mark.line + 1;
    op->col = (int)node->start_mark.column + 1;
    op->idx = map->nops++;
    if (node->type == YAML_MAPPING_NODE) {
        if (node->data.mapping.pairs.top - node->data.mapping.pairs.start != 1)
            return ld_fail(cx, node->start_mark,
                           "a transform is a name or a mapping of one name to its argument, "
                           "found a mapping of %d keys (expected e.g. {implied_decimals: 2}; "
                           "write each transform as its own list item)",
                           (int)(node->data.mapping.pairs.top - node->data.mapping.pairs.start));
        namenode = ld_node(cx, node->data.mapping.pairs.start[0].key);
        arg = ld_node(cx, node->data.mapping.pairs.start[0].value);
    }
    if ((rc = ld_str(cx, namenode, "a transform", "a transform name such as trim", &name)))
        return rc;
    int k = siphon_mapping__op_find(name);
    if (k < 0) {
        const char *best = NULL;
        size_t bestd = 4;
        for (int i = 0; i < MAP_X_COUNT; i++) {
            size_t d = siphon_yamlx_distance(name, siphon_mapping__op_name((map_xk_t)i));
            if (d < bestd) {
                bestd = d;
                best = siphon_mapping__op_name((map_xk_t)i);
            }
        }
        char hint[96] = "";
        if (best)
            snprintf(hint, sizeof(hint), "; did you mean '%s'?", best);
        return ld_fail(cx, namenode->start_mark,
                       "unknown transform '%.64s' (expected one of: %s%s)", name, transform_list,
                       hint);
    }
    op->kind = (map_xk_t)k;
    if (arg && siphon_yamlx_is_null(arg) && op->kind != MAP_X_DEFAULT)
        arg = NULL;
    if (!arg && arg_example(op->kind))
        return ld_fail(cx, namenode->start_mark,
                       "transform '%s' needs an argument (expected e.g. %s)", name,
                       arg_example(op->kind));
    switch (op->kind) {
    case MAP_X_TRIM:
    case MAP_X_RTRIM:
    case MAP_X_LTRIM:
    case MAP_X_UPPER:
    case MAP_X_LOWER:
    case MAP_X_STRIP_ZEROS:
    case MAP_X_COALESCE:
    case MAP_X_DATE_YYYYMMDD:
    case MAP_X_DATE_CYYDDD:
    case MAP_X_TIME_HHMMSS:
        if (arg)
            return ld_fail(cx, arg->start_mark,
                           "transform '%s' takes no argument (expected just '%s' as a list "
                           "item)",
                           name, name);
        return 0;
    case MAP_X_PAD: {
        static const ld_key_t keys[] = {{"width", "width: <characters>"}, {"char", NULL},
                                        {"side", NULL}};
        yaml_node_t *v[3] = {NULL, NULL, NULL}, *kn[3];
        op->a.pad.ch = ' ';
        op->a.pad.left = 1;
        if (arg->type == YAML_SCALAR_NODE)
            return ld_int(cx, arg, "the width of pad", 1, 4096, &op->a.pad.width);
        if (arg->type != YAML_MAPPING_NODE)
            return ld_fail(cx, arg->start_mark, "wrong type for pad: found %s (expected %s)",
                           siphon_yamlx_kind(arg), arg_example(MAP_X_PAD));
        if ((rc = op_arg_map(cx, arg, name, keys, 3, v, kn)) ||
            (rc = ld_int(cx, v[0], "pad width", 1, 4096, &op->a.pad.width)))
            return rc;
        if (v[1]) {
            const char *c;
            if ((rc = ld_str(cx, v[1], "pad char", "one character such as '0'", &c)))
                return rc;
            if (strlen(c) != 1 || (unsigned char)c[0] >= 0x80)
                return ld_fail(cx, v[1]->start_mark,
                               "wrong value for pad char: '%s' (expected one ASCII character, "
                               "such as '0' or ' ')",
                               c);
            op->a.pad.ch = c[0];
        }
        if (v[2]) {
            const char *s;
            if ((rc = ld_str(cx, v[2], "pad side", "left or right", &s)))
                return rc;
            if (strcmp(s, "left") && strcmp(s, "right"))
                return ld_fail(cx, v[2]->start_mark,
                               "wrong value for pad side: '%s' (expected left or right)", s);
            op->a.pad.left = !strcmp(s, "left");
        }
        return 0;
    }
    case MAP_X_TRUNCATE:
        return ld_int(cx, arg, "truncate", 1, 1 << 20, &op->a.truncate.n);
    case MAP_X_NULL_IF:
        return ld_const_list(cx, arg, "null_if", &op->a.null_if.vals, &op->a.null_if.n);
    case MAP_X_DEFAULT:
        if (!(op->a.def = calloc(1, sizeof(map_const_t))))
            return SIPHON_ENOMEM;
        return ld_const(cx, arg, "default", op->a.def);
    case MAP_X_CONCAT:
        op->a.concat.sep = "";
        if (arg) {
            map_const_t c;
            if ((rc = ld_const(cx, arg, "the separator of concat", &c)))
                return rc;
            op->a.concat.sep = c.text;
            op->a.concat.len = c.len;
        }
        return 0;
    case MAP_X_DATE_YYMMDD: {
        op->a.yymmdd.pivot = 50;
        if (!arg)
            return 0;
        if (arg->type == YAML_MAPPING_NODE) {
            static const ld_key_t keys[] = {{"pivot", "pivot: <two-digit year>"}};
            yaml_node_t *v[1], *kn[1];
            if ((rc = op_arg_map(cx, arg, name, keys, 1, v, kn)))
                return rc;
            arg = v[0];
        }
        return ld_int(cx, arg, "the pivot year of date_yymmdd", 0, 100, &op->a.yymmdd.pivot);
    }
    case MAP_X_DATE_DAYS: {
        if (arg->type == YAML_MAPPING_NODE) {
            static const ld_key_t keys[] = {{"epoch", "epoch: 'YYYY-MM-DD' (the date of day 0)"}};
            yaml_node_t *v[1], *kn[1];
            if ((rc = op_arg_map(cx, arg, name, keys, 1, v, kn)))
                return rc;
            arg = v[0];
        }
        map_const_t c;
        const char *why;
        if ((rc = ld_const(cx, arg, "the epoch of date_days", &c)))
            return rc;
        if (c.is_null || siphon_mapping__const_as(&c, SIPHON_V_DATE, &map->mem, &why) != 0)
            return ld_fail(cx, arg->start_mark,
                           "wrong value for the epoch of date_days: '%s' (expected the date of "
                           "day 0 written YYYY-MM-DD, e.g. '1967-12-31')",
                           c.text);
        op->a.days.epoch = c.as[SIPHON_V_DATE].u.date;
        return 0;
    }
    case MAP_X_DATE_FORMAT: {
        yaml_node_t *fmtn = arg;
        op->a.date_format.pivot = 50;
        if (arg->type == YAML_MAPPING_NODE) {
            static const ld_key_t keys[] = {{"format", "format: '%d.%m.%Y'"}, {"pivot", NULL}};
            yaml_node_t *v[2], *kn[2];
            if ((rc = op_arg_map(cx, arg, name, keys, 2, v, kn)))
                return rc;
            fmtn = v[0];
            if (v[1] && (rc = ld_int(cx, v[1], "the pivot year of date_format", 0, 100,
                                     &op->a.date_format.pivot)))
                return rc;
        }
        const char *f;
        if ((rc = ld_str(cx, fmtn, "date_format", "a format such as '%d.%m.%Y'", &f)))
            return rc;
        int y = 0, m = 0, d = 0, j = 0;
        for (const char *p = f; *p; p++) {
            if (*p != '%')
                continue;
            switch (*++p) {
            case 'Y': case 'y': y++; break;
            case 'm': case 'b': m++; break;
            case 'd': d++; break;
            case 'j': j++; break;
            case '%': break;
            default:
                return ld_fail(cx, fmtn->start_mark,
                               "wrong value for date_format: '%s' has '%%%c' (expected %%Y, %%y, "
                               "%%m, %%b, %%d, %%j, %%%% and other characters as they are)",
                               f, *p ? *p : ' ');
            }
            if (!*p)
                break;
        }
        if (y != 1 || !((m == 1 && d == 1 && j == 0) || (j == 1 && m == 0 && d == 0)))
            return ld_fail(cx, fmtn->start_mark,
                           "wrong value for date_format: '%s' (expected a year, month and day "
                           "once each, e.g. '%%d.%%m.%%Y', or a year and a day of the year, "
                           "'%%Y%%j')",
                           f);
        if (!(op->a.date_format.fmt = strdup(f)))
            return SIPHON_ENOMEM;
        return 0;
    }
    case MAP_X_TIMESTAMP: {
        op->a.ts.tz = map->tz;
        if (!arg)
            return 0;
        if (arg->type == YAML_MAPPING_NODE) {
            static const ld_key_t keys[] = {{"timezone", "timezone: America/Chicago"}};
            yaml_node_t *v[1], *kn[1];
            if ((rc = op_arg_map(cx, arg, name, keys, 1, v, kn)))
                return rc;
            arg = v[0];
        }
        const char *z;
        char why[256];
        if ((rc = ld_str(cx, arg, "the time zone of timestamp", "a zone such as America/Chicago",
                         &z)))
            return rc;
        if ((rc = siphon_mapping__tz_load(&op->a.ts.tz, z, why, sizeof(why))) < 0)
            return rc == SIPHON_ENOMEM ? rc : ld_fail(cx, arg->start_mark, "%s", why);
        op->a.ts.own = 1;
        return 0;
    }
    case MAP_X_IMPLIED_DEC:
        return ld_int(cx, arg, "implied_decimals", 0, 38, &op->a.implied.n);
    case MAP_X_NUMBER: {
        op->a.number.point = '.';
        if (!arg)
            return 0;
        static const ld_key_t keys[] = {{"decimal_point", NULL}, {"group_separator", NULL}};
        yaml_node_t *v[2], *kn[2];
        if (arg->type != YAML_MAPPING_NODE)
            return ld_fail(cx, arg->start_mark,
                           "wrong type for the argument of number: found %s (expected e.g. "
                           "{number: {decimal_point: ',', group_separator: '.'}})",
                           siphon_yamlx_kind(arg));
        if ((rc = op_arg_map(cx, arg, name, keys, 2, v, kn)))
            return rc;
        for (int i = 0; i < 2; i++) {
            const char *c;
            if (!v[i])
                continue;
            if ((rc = ld_str(cx, v[i], keys[i].key, "one character such as ','", &c)))
                return rc;
            if (strlen(c) != 1 || isdigit((unsigned char)c[0]) || c[0] == '-')
                return ld_fail(cx, v[i]->start_mark,
                               "wrong value for %s: '%s' (expected one character that is not a "
                               "digit or '-', such as ',' or '.')",
                               keys[i].key, c);
            if (i == 0)
                op->a.number.point = c[0];
            else
                op->a.number.group = c[0];
        }
        if (op->a.number.point == op->a.number.group)
            return ld_fail(cx, arg->start_mark,
                           "number: decimal_point and group_separator are both '%c' (expected "
                           "two different characters)",
                           op->a.number.point);
        return 0;
    }
    case MAP_X_BOOL:
        return bool_lists(cx, op, arg);
    case MAP_X_LOOKUP:
        return lookup_arg(cx, op, arg, mf->target, mf->af);
    case MAP_X_CHARSET: {
        const char *cs;
        char why[256];
        if ((rc = ld_str(cx, arg, "charset", "a charset such as windows-1252", &cs)))
            return rc;
        if ((rc = siphon_mapping__charset_load(&op->a.charset.cs, cs, why, sizeof(why))) < 0)
            return rc == SIPHON_ENOMEM ? rc : ld_fail(cx, arg->start_mark, "%s", why);
        return 0;
    }
    case MAP_X_HASH: {
        yaml_node_t *envn = arg;
        if (arg->type == YAML_MAPPING_NODE) {
            static const ld_key_t keys[] = {{"key_env", "key_env: <environment variable>"},
                                            {"length", NULL}};
            yaml_node_t *v[2], *kn[2];
            if ((rc = op_arg_map(cx, arg, name, keys, 2, v, kn)))
                return rc;
            envn = v[0];
            if (v[1] && (rc = ld_int(cx, v[1], "hash length", 8, 64, &op->a.hash.length)))
                return rc;
        }
        const char *env;
        if ((rc = ld_str(cx, envn, "hash key_env", "the name of an environment variable", &env)))
            return rc;
        if (!(op->a.hash.env = strdup(env)))
            return SIPHON_ENOMEM;
        /* A missing key is reported when the mapping is bound to a table (siphon run,
         * preview) and by siphon validate, not here: tools that only read the schemas
         * (siphon tail, schema check, decoders) need no secret. */
        const char *key = getenv(env);
        op->a.hash.missing = !key || !key[0];
        if (!op->a.hash.missing)
            siphon_mapping__hmac_key(&op->a.hash.key, key, strlen(key));
        return 0;
    }
    case MAP_X_REDACT: {
        op->a.redact.text = "***";
        op->a.redact.len = 3;
        if (!arg)
            return 0;
        map_const_t c;
        if ((rc = ld_const(cx, arg, "the replacement of redact", &c)))
            return rc;
        if (c.is_null)
            return ld_fail(cx, arg->start_mark,
                           "redact needs replacement text (expected e.g. {redact: '***'}; to "
                           "drop a value, leave the field out of the mapping)");
        op->a.redact.text = c.text;
        op->a.redact.len = c.len;
        return 0;
    }
    default:
        return ld_fail(cx, namenode->start_mark, "unknown transform '%s'", name);
    }
}

/* A transform list (a single transform is a list of one). *ops is malloc'd. */
static int parse_ops(ld_ctx_t *cx, yaml_node_t *v, map_field_t *mf, map_op_t **ops, int *nops,
                     int reserve_front)
{
    int n = v->type == YAML_SEQUENCE_NODE
                ? (int)(v->data.sequence.items.top - v->data.sequence.items.start)
                : 1;
    *nops = 0;
    if (siphon_yamlx_is_null(v))
        return ld_fail(cx, v->start_mark,
                       "transforms has no value (expected a list such as [trim, upper])");
    if (!(*ops = calloc((size_t)(n + reserve_front + 1), sizeof(map_op_t))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = v->type == YAML_SEQUENCE_NODE
                              ? ld_node(cx, v->data.sequence.items.start[i])
                              : v;
        int rc = parse_op(cx, it, mf, &(*ops)[reserve_front + i]);
        *nops = reserve_front + i + 1;
        if (rc)
            return rc;
    }
    *nops = reserve_front + n;
    return 0;
}

static int set_input_column(ld_ctx_t *cx, map_input_t *in, yaml_node_t *v, const char *what)
{
    const char *col;
    int rc = ld_str(cx, v, what, "a column name", &col);
    if (rc)
        return rc;
    if (!(in->column = strdup(col)))
        return SIPHON_ENOMEM;
    in->line = (int)v->start_mark.line + 1;
    in->col = (int)v->start_mark.column + 1;
    return 0;
}

/* One item of columns: [...]: a column name, {column: x, transforms: [...]} or {const: 'x'}. */
static int parse_input(ld_ctx_t *cx, yaml_node_t *v, map_field_t *mf, map_input_t *in)
{
    static const ld_key_t keys[] = {{"column", NULL}, {"const", NULL}, {"transforms", NULL}};
    yaml_node_t *vals[3], *kn[3];
    int rc;
    char where[128];
    if (v->type == YAML_SCALAR_NODE && !siphon_yamlx_is_null(v))
        return set_input_column(cx, in, v, "a column in columns");
    if (v->type != YAML_MAPPING_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for an item of columns: found %s (expected a column name, "
                       "{column: <name>, transforms: [...]} or {const: <value>})",
                       siphon_yamlx_kind(v));
    snprintf(where, sizeof(where), "in a column of field '%s'", mf->af->name);
    if ((rc = ld_walk(cx, v, where, keys, 3, vals, kn)))
        return rc;
    if (!vals[0] == !vals[1])
        return ld_fail(cx, v->start_mark,
                       "an item of columns needs exactly one of column or const (expected "
                       "{column: <name>} or {const: <value>})");
    if (vals[0]) {
        if ((rc = set_input_column(cx, in, vals[0], "column")))
            return rc;
    } else {
        if ((rc = ld_const(cx, vals[1], "const", &in->cst)))
            return rc;
        if (in->cst.is_null)
            return ld_fail(cx, vals[1]->start_mark,
                           "a constant in columns cannot be null (expected text such as '-')");
        in->line = (int)vals[1]->start_mark.line + 1;
        in->col = (int)vals[1]->start_mark.column + 1;
    }
    if (vals[2] && (rc = parse_ops(cx, vals[2], mf, &in->ops, &in->nops, 0)))
        return rc;
    return 0;
}

static siphon_vtype_t target_vtype(map_target_t t)
{
    switch (t) {
    case MAP_T_BOOL: return SIPHON_V_BOOL;
    case MAP_T_INT: return SIPHON_V_INT;
    case MAP_T_FLOAT: return SIPHON_V_FLOAT;
    case MAP_T_BYTES: return SIPHON_V_BYTES;
    case MAP_T_DECIMAL: return SIPHON_V_DECIMAL;
    case MAP_T_DATE: return SIPHON_V_DATE;
    case MAP_T_TIME: return SIPHON_V_TIME;
    case MAP_T_TIMESTAMP: return SIPHON_V_TIMESTAMP;
    case MAP_T_UUID: return SIPHON_V_UUID;
    default: return SIPHON_V_TEXT;
    }
}

int siphon_mapping__field_type(siphon_mapping_t *map, map_field_t *mf,
                               const siphon_vtype_t *in_vt, uint8_t *optype,
                               siphon_vtype_t *out, char *errbuf, size_t errsize)
{
    siphon_vtype_t cur[MAP_MAX_INPUTS];
    char why[512];
    int n = mf->nin, rc;
    const map_op_t *bad = NULL;

    for (int j = 0; j < mf->nin; j++) {
        cur[j] = in_vt[j];
        for (int k = 0; k < mf->in[j].nops; k++) {
            map_op_t *op = &mf->in[j].ops[k];
            if (optype)
                optype[op->idx] = (uint8_t)cur[j];
            if ((rc = siphon_mapping__op_type(op, &cur[j], 1, &map->mem, &cur[j], why,
                                              sizeof(why))) < 0) {
                bad = op;
                goto fail;
            }
        }
    }
    for (int k = 0; k < mf->nops; k++) {
        map_op_t *op = &mf->ops[k];
        int take = siphon_mapping__op_reduces(op->kind) ? n : 1;
        if (optype)
            optype[op->idx] = (uint8_t)cur[0];
        if ((rc = siphon_mapping__op_type(op, cur, take, &map->mem, &cur[0], why,
                                          sizeof(why))) < 0) {
            bad = op;
            goto fail;
        }
        if (take > 1)
            n = 1;
        else if (n > 1) {
            bad = op;
            rc = SIPHON_EINVAL;
            goto fail;
        }
    }
    *out = cur[0];
    return 0;
fail:
    if (rc == SIPHON_ENOMEM)
        return siphon_err(errbuf, errsize, rc, "out of memory compiling %s", map->path);
    return siphon_err(errbuf, errsize, SIPHON_EINVAL, "%s:%d:%d: field '%s' (from %s): %s",
                      map->path, bad->line, bad->col, mf->af->name,
                      mf->columns ? mf->columns : "a constant", why);
}

/* The value of one `fields:` entry. */
static int parse_field(ld_ctx_t *cx, yaml_node_t *vn, map_field_t *mf)
{
    static const ld_key_t fkeys[] = {{"column", NULL},     {"columns", NULL},
                                     {"const", NULL},      {"transforms", NULL},
                                     {"separator", NULL}};
    yaml_node_t *vals[5], *kn[5];
    char where[128];
    int rc;

    mf->line = (int)vn->start_mark.line + 1;
    mf->col = (int)vn->start_mark.column + 1;
    mf->mapped = 1;
    if (vn->type == YAML_SCALAR_NODE && !siphon_yamlx_is_null(vn)) {
        if (!(mf->in = calloc(1, sizeof(map_input_t))))
            return SIPHON_ENOMEM;
        mf->nin = 1;
        return set_input_column(cx, &mf->in[0], vn, "the column of a field");
    }
    if (vn->type != YAML_MAPPING_NODE)
        return ld_fail(cx, vn->start_mark,
                       "wrong type for field '%.64s': found %s (expected a column name, or a "
                       "mapping such as {column: hdordn, transforms: [trim]})",
                       mf->af->name, siphon_yamlx_kind(vn));
    snprintf(where, sizeof(where), "in field '%.64s'", mf->af->name);
    if ((rc = ld_walk(cx, vn, where, fkeys, 5, vals, kn)))
        return rc;
    int sources = !!vals[0] + !!vals[1] + !!vals[2];
    if (sources != 1)
        return ld_fail(cx, vn->start_mark,
                       "field '%.64s' needs exactly one of column, columns or const, found %d "
                       "(expected e.g. {column: hdordn} or {columns: [hdcomp, hdordn], "
                       "separator: '-'} or {const: ERP1})",
                       mf->af->name, sources);
    if (vals[4] && !vals[1])
        return ld_fail(cx, kn[4]->start_mark,
                       "separator joins the columns of columns: [...] (expected it only next to "
                       "columns)");
    if (vals[0]) {
        if (!(mf->in = calloc(1, sizeof(map_input_t))))
            return SIPHON_ENOMEM;
        mf->nin = 1;
        if ((rc = set_input_column(cx, &mf->in[0], vals[0], "column")))
            return rc;
    } else if (vals[2]) {
        if (!(mf->in = calloc(1, sizeof(map_input_t))))
            return SIPHON_ENOMEM;
        mf->nin = 1;
        if ((rc = ld_const(cx, vals[2], "const", &mf->in[0].cst)))
            return rc;
        mf->in[0].line = (int)vals[2]->start_mark.line + 1;
        mf->in[0].col = (int)vals[2]->start_mark.column + 1;
    } else {
        yaml_node_t *cols = vals[1];
        int n = cols->type == YAML_SEQUENCE_NODE
                    ? (int)(cols->data.sequence.items.top - cols->data.sequence.items.start)
                    : 0;
        if (cols->type != YAML_SEQUENCE_NODE || n < 1 || n > MAP_MAX_INPUTS)
            return ld_fail(cx, cols->start_mark,
                           "wrong value for columns of field '%.64s': found %s (expected a "
                           "list of 1 to %d columns, e.g. [hdcomp, hdordn])",
                           mf->af->name,
                           cols->type == YAML_SEQUENCE_NODE ? "a list of another length"
                                                            : siphon_yamlx_kind(cols),
                           MAP_MAX_INPUTS);
        if (!(mf->in = calloc((size_t)n, sizeof(map_input_t))))
            return SIPHON_ENOMEM;
        for (int i = 0; i < n; i++) {
            mf->nin = i + 1;
            if ((rc = parse_input(cx, ld_node(cx, cols->data.sequence.items.start[i]), mf,
                                  &mf->in[i])))
                return rc;
        }
        if (vals[4]) {
            map_const_t c;
            if ((rc = ld_const(cx, vals[4], "separator", &c)))
                return rc;
            mf->sep = c.text;
            mf->seplen = c.len;
        }
    }
    if (vals[3]) {
        /* room for an implicit concat in front when several inputs are not combined */
        if ((rc = parse_ops(cx, vals[3], mf, &mf->ops, &mf->nops, 1)))
            return rc;
        if (mf->nin > 1 && siphon_mapping__op_reduces(mf->ops[1].kind)) {
            memmove(&mf->ops[0], &mf->ops[1], sizeof(map_op_t) * (size_t)(mf->nops - 1));
            mf->nops--;
            if (vals[4])
                return ld_fail(cx, kn[4]->start_mark,
                               "separator is for columns joined as they are; the transforms "
                               "start with '%s', which combines them (expected the separator "
                               "as the argument of concat, or no %s)",
                               siphon_mapping__op_name(mf->ops[0].kind),
                               siphon_mapping__op_name(mf->ops[0].kind));
        } else if (mf->nin == 1) {
            memmove(&mf->ops[0], &mf->ops[1], sizeof(map_op_t) * (size_t)(mf->nops - 1));
            mf->nops--;
        }
    }
    if (mf->nin > 1 && (mf->nops == 0 || !siphon_mapping__op_reduces(mf->ops[0].kind))) {
        /* columns joined as they are (with the separator): an implicit concat */
        if (!mf->ops) {
            if (!(mf->ops = calloc(1, sizeof(map_op_t))))
                return SIPHON_ENOMEM;
            mf->nops = 1;
        } else if (mf->nops == 0) {
            mf->nops = 1;
        }
        map_op_t *c = &mf->ops[0];
        memset(c, 0, sizeof(*c));
        c->kind = MAP_X_CONCAT;
        c->line = mf->line;
        c->col = mf->col;
        c->idx = cx->map->nops++;
        c->a.concat.sep = mf->sep ? mf->sep : "";
        c->a.concat.len = mf->seplen;
    }
    return 0;
}

/* Column names of a field: first column and "a, b". */
static int field_columns(map_field_t *mf)
{
    size_t len = 0;
    for (int j = 0; j < mf->nin; j++)
        if (mf->in[j].column)
            len += strlen(mf->in[j].column) + 2;
    if (!len)
        return 0;
    if (!(mf->columns = malloc(len + 1)))
        return SIPHON_ENOMEM;
    size_t o = 0;
    for (int j = 0; j < mf->nin; j++) {
        if (!mf->in[j].column)
            continue;
        if (!mf->column && !(mf->column = strdup(mf->in[j].column)))
            return SIPHON_ENOMEM;
        o += (size_t)snprintf(mf->columns + o, len + 1 - o, "%s%s", o ? ", " : "",
                              mf->in[j].column);
    }
    return 0;
}

/* Read the `fields:` mapping into map->fields (the schema is loaded). */
static int read_fields(ld_ctx_t *cx, yaml_node_t *v)
{
    siphon_mapping_t *map = cx->map;
    if (v->type != YAML_MAPPING_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for fields: found %s (expected a mapping of entity field to "
                       "source column, e.g. order_number: hdordn)",
                       siphon_yamlx_kind(v));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ld_node(cx, p->key), *vn = ld_node(cx, p->value);
        const char *name;
        int rc;
        if ((rc = ld_str(cx, kn, "a field name in fields", "an entity field name", &name)))
            return rc;
        int fi = siphon_schema_field_index(map->sch, name);
        if (fi < 0)
            return field_missing(cx, kn->start_mark, map->sch, name, "field");
        map_field_t *mf = &map->fields[fi];
        if (mf->mapped)
            return ld_fail(cx, kn->start_mark,
                           "duplicate field '%.64s' in fields, first given at line %d "
                           "(expected each field once)",
                           name, mf->line);
        if (mf->target == MAP_T_UNSUPPORTED) {
            char tn[128];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            return ld_fail(cx, kn->start_mark,
                           "field '%s' has type %s, which no column can fill (expected a field "
                           "of a primitive type, or decimal, date, time-micros, "
                           "timestamp-micros, uuid, enum)",
                           name, tn);
        }
        if ((rc = parse_field(cx, vn, mf)) || (rc = field_columns(mf)))
            return rc;

        /* a field fed by one constant: its value, in the field's type */
        if (mf->nin == 1 && !mf->in[0].column && mf->nops == 0 && mf->in[0].nops == 0) {
            map_const_t *c = &mf->in[0].cst;
            const char *why;
            siphon_vtype_t vt = target_vtype(mf->target);
            if (!c->is_null && siphon_mapping__const_as(c, vt, &map->mem, &why) != 0) {
                char tn[64];
                siphon_mapping__type_name(mf->af, tn, sizeof(tn));
                return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL,
                                  "%s:%d:%d: const '%s' cannot fill field '%s' (%s) (expected "
                                  "%s)",
                                  cx->path, mf->in[0].line, mf->in[0].col, c->text, name, tn, why);
            }
            mf->is_const = 1;
            mf->constval = c->is_null ? (siphon_value_t){.type = SIPHON_V_NULL} : c->as[vt];
            mf->load_type = c->is_null ? MAP_VT_ANY : vt;
            if (c->is_null && !mf->af->nullable)
                return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL,
                                  "%s:%d:%d: const null cannot fill field '%s', which is not "
                                  "nullable (expected a value)",
                                  cx->path, mf->in[0].line, mf->in[0].col, name);
            if (mf->target == MAP_T_ENUM && !c->is_null) {
                int found = 0;
                for (int s = 0; s < mf->af->base->nsymbols; s++)
                    found |= !strcmp(mf->af->base->symbols[s], c->text);
                if (!found)
                    return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL,
                                      "%s:%d:%d: const '%s' is not a symbol of enum field '%s' "
                                      "(expected one of the symbols of %s)",
                                      cx->path, mf->in[0].line, mf->in[0].col, c->text, name,
                                      mf->af->base->name);
            }
            continue;
        }

        {
            const map_op_t *last = mf->nops ? &mf->ops[mf->nops - 1]
                                   : mf->nin == 1 && mf->in[0].nops
                                       ? &mf->in[0].ops[mf->in[0].nops - 1]
                                       : NULL;
            mf->enum_ok = mf->target == MAP_T_ENUM && last && last->kind == MAP_X_LOOKUP;
        }
        /* the chain's type as far as known without the columns: constants are text */
        siphon_vtype_t in_vt[MAP_MAX_INPUTS], out;
        for (int j = 0; j < mf->nin; j++)
            in_vt[j] = mf->in[j].column ? MAP_VT_ANY : SIPHON_V_TEXT;
        if ((rc = siphon_mapping__field_type(map, mf, in_vt, NULL, &out, cx->errbuf,
                                             cx->errsize)) < 0)
            return rc;
        mf->load_type = out;
        if (out != MAP_VT_ANY && siphon_mapping__conv(mf->target, out) == MAP_C_NONE) {
            char tn[64];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            const map_op_t *last = mf->nops ? &mf->ops[mf->nops - 1]
                                   : mf->in[0].nops ? &mf->in[0].ops[mf->in[0].nops - 1]
                                                    : NULL;
            return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL,
                              "%s:%d:%d: field '%s' (%s) cannot take the %s value its "
                              "transforms end with%s%s (expected transforms that end with %s)",
                              cx->path, last ? last->line : mf->line, last ? last->col : mf->col,
                              name, tn, siphon_vtype_name(out), last ? ", from " : "",
                              last ? siphon_mapping__op_name(last->kind) : "",
                              siphon_mapping__target_expects(mf->target));
        }
    }
    return 0;
}

static int parse_source(ld_ctx_t *cx, yaml_node_t *v, const char **table, yaml_node_t **tnode)
{
    static const ld_key_t srckeys[] = {{"table", "table: <schema.table>, e.g. public.oehdr"},
                                       {"charset", NULL},
                                       {"timezone", NULL}};
    yaml_node_t *sv[3], *sk[3];
    siphon_mapping_t *map = cx->map;
    int rc;
    if (v->type != YAML_MAPPING_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for source: found %s (expected a mapping such as "
                       "{table: public.oehdr})",
                       siphon_yamlx_kind(v));
    if ((rc = ld_walk(cx, v, "in source", srckeys, 3, sv, sk)) ||
        (rc = ld_str(cx, sv[0], "source.table", "schema.table, e.g. public.oehdr", table)))
        return rc;
    *tnode = sv[0];
    if (sv[1]) {
        const char *cs;
        char why[256];
        if ((rc = ld_str(cx, sv[1], "source.charset", "a charset such as windows-1252", &cs)))
            return rc;
        if ((rc = siphon_mapping__charset_load(&map->charset, cs, why, sizeof(why))) < 0)
            return rc == SIPHON_ENOMEM ? rc : ld_fail(cx, sv[1]->start_mark, "%s", why);
    }
    if (sv[2]) {
        const char *z;
        char why[256];
        if ((rc = ld_str(cx, sv[2], "source.timezone", "a zone such as America/Chicago", &z)))
            return rc;
        if ((rc = siphon_mapping__tz_load(&map->tz, z, why, sizeof(why))) < 0)
            return rc == SIPHON_ENOMEM ? rc : ld_fail(cx, sv[2]->start_mark, "%s", why);
    }
    return 0;
}

static int parse_soft_delete(ld_ctx_t *cx, yaml_node_t *v)
{
    static const ld_key_t keys[] = {{"column", "column: <flag column>"}, {"value", NULL},
                                    {"values", NULL}};
    yaml_node_t *sv[3], *sk[3];
    siphon_mapping_t *map = cx->map;
    const char *col;
    int rc;
    if (v->type != YAML_MAPPING_NODE)
        return ld_fail(cx, v->start_mark,
                       "wrong type for soft_delete: found %s (expected e.g. {column: cudltf, "
                       "value: 'D'})",
                       siphon_yamlx_kind(v));
    if ((rc = ld_walk(cx, v, "in soft_delete", keys, 3, sv, sk)) ||
        (rc = ld_str(cx, sv[0], "soft_delete.column", "a column name", &col)))
        return rc;
    if (!sv[1] == !sv[2])
        return ld_fail(cx, v->start_mark,
                       "soft_delete needs exactly one of value or values (expected e.g. "
                       "{column: cudltf, value: 'D'} or values: ['D', 'X'])");
    if (!(map->soft_column = strdup(col)))
        return SIPHON_ENOMEM;
    map->soft_line = (int)sv[0]->start_mark.line + 1;
    map->soft_col = (int)sv[0]->start_mark.column + 1;
    yaml_node_t *vals = sv[1] ? sv[1] : sv[2];
    if (sv[1] && sv[1]->type != YAML_SCALAR_NODE)
        return ld_fail(cx, sv[1]->start_mark,
                       "wrong type for soft_delete.value: found %s (expected one value; use "
                       "values: [...] for several)",
                       siphon_yamlx_kind(sv[1]));
    if ((rc = ld_const_list(cx, vals, "soft_delete values", &map->soft_vals, &map->nsoft)))
        return rc;
    for (int i = 0; i < map->nsoft; i++)
        if (map->soft_vals[i].is_null)
            return ld_fail(cx, vals->start_mark,
                           "a soft_delete value cannot be null (expected the flag's value that "
                           "means deleted, such as 'D' or 'Y')");
    return 0;
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
        {"filter", NULL},
        {"soft_delete", NULL},
        {"on_error", NULL},
    };
    enum { T_ENTITY, T_VERSION, T_SOURCE, T_KEY, T_FIELDS, T_FILTER, T_SOFT, T_ONERR, T_N };
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_parser = 0, have_doc = 0, rc = 0;
    siphon_mapping_t *map = NULL;
    char *text = NULL, *schema_path = NULL;
    size_t len = 0;
    json_t *json = NULL;
    ld_ctx_t cx = {path, &doc, NULL, errbuf, errsize};
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
                     root ? siphon_yamlx_kind(root) : "empty");
        goto out;
    }

    yaml_node_t *v[LD_MAX_KEYS], *k[LD_MAX_KEYS], *tnode = NULL;
    const char *entity, *table;
    if ((rc = ld_walk(&cx, root, "at the top level", top, T_N, v, k)) ||
        (rc = ld_str(&cx, v[T_ENTITY], "entity", "an entity name such as sales_order", &entity)))
        goto out;
    if (!valid_entity(entity)) {
        rc = ld_fail(&cx, v[T_ENTITY]->start_mark,
                     "wrong value for entity: '%.64s' (expected letters, digits, '_' or '-', "
                     "starting with a letter: it names schemas/<entity>.v<version>.avsc)",
                     entity);
        goto out;
    }

    /* version: a plain integer */
    long major = 0;
    {
        yaml_node_t *vv = v[T_VERSION];
        const char *s = vv->type == YAML_SCALAR_NODE ? (const char *)vv->data.scalar.value : "";
        char *end = NULL;
        if (vv->type == YAML_SCALAR_NODE && vv->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            isdigit((unsigned char)s[0]))
            major = strtol(s, &end, 10);
        if (!end || *end || major < 1 || major > LD_MAX_MAJOR) {
            if (vv->type != YAML_SCALAR_NODE || siphon_yamlx_is_null(vv))
                rc = ld_fail(&cx, vv->start_mark,
                             "wrong type for version: found %s (expected the entity's major "
                             "version, a whole number from 1, e.g. version: 1)",
                             siphon_yamlx_kind(vv));
            else
                rc = ld_fail(&cx, vv->start_mark,
                             "wrong value for version: '%.32s' (expected the entity's major "
                             "version, a whole number from 1, without quotes, e.g. version: 1)",
                             s);
            goto out;
        }
    }

    if (!(map = calloc(1, sizeof(*map)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    cx.map = map;
    siphon_arena_init(&map->mem, 4096);

    /* source */
    if ((rc = parse_source(&cx, v[T_SOURCE], &table, &tnode)))
        goto out;
    const char *dot = strchr(table, '.');
    if ((dot && (dot == table || dot[1] == '\0' || strchr(dot + 1, '.'))) ||
        strchr(table, ' ')) {
        rc = ld_fail(&cx, tnode->start_mark,
                     "wrong value for source.table: '%.64s' (expected schema.table or table, "
                     "e.g. public.oehdr, as the catalog spells it)",
                     table);
        goto out;
    }
    map->table_line = (int)tnode->start_mark.line + 1;
    map->table_col = (int)tnode->start_mark.column + 1;

    /* duplicates are caught before the schema work */
    for (int i = 0; i < nothers; i++)
        if (others[i]->major == (int)major && strcmp(others[i]->entity, entity) == 0) {
            rc = ld_fail(&cx, v[T_ENTITY]->start_mark,
                         "entity '%s' version %ld is already mapped by %s (expected one mapping "
                         "file per entity and version: merge them, or give this one its own "
                         "version)",
                         entity, major, others[i]->path);
            goto out;
        }

    map->major = (int)major;
    map->entity_line = (int)v[T_ENTITY]->start_mark.line + 1;
    map->entity_col = (int)v[T_ENTITY]->start_mark.column + 1;
    if (!(map->path = strdup(path)) || !(map->entity = strdup(entity)) ||
        !(map->src_schema = dot ? strndup(table, (size_t)(dot - table)) : strdup("public")) ||
        !(map->src_table = strdup(dot ? dot + 1 : table))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }

    /* on_error, filter, soft_delete */
    if (v[T_ONERR]) {
        const char *s;
        yaml_node_t *on = v[T_ONERR];
        /* `on_error: null` is YAML's null: take the word as written */
        if (on->type == YAML_SCALAR_NODE && !strcmp((const char *)on->data.scalar.value, "null"))
            s = "null";
        else if ((rc = ld_str(&cx, on, "on_error", "dead_letter, fail or null", &s)))
            goto out;
        if (!strcmp(s, "dead_letter"))
            map->on_error = MAP_ON_ERROR_DEAD_LETTER;
        else if (!strcmp(s, "fail"))
            map->on_error = MAP_ON_ERROR_FAIL;
        else if (!strcmp(s, "null"))
            map->on_error = MAP_ON_ERROR_NULL;
        else {
            rc = ld_fail(&cx, v[T_ONERR]->start_mark,
                         "wrong value for on_error: '%.32s' (expected dead_letter: send the row "
                         "to <topic_prefix>._dlq and go on; fail: stop; null: null the field "
                         "when the schema allows it)",
                         s);
            goto out;
        }
    }
    if (v[T_FILTER]) {
        const char *s;
        yaml_node_t *fn = v[T_FILTER];
        if ((rc = ld_str(&cx, fn, "filter", "a condition such as \"hdcomp = '01'\"", &s)))
            goto out;
        if (!(map->filter_text = strdup(s))) {
            rc = SIPHON_ENOMEM;
            goto out;
        }
        int quoted = fn->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                     fn->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if ((rc = siphon_mapping__filter_parse(&map->filter, map->filter_text, path,
                                               (int)fn->start_mark.line + 1,
                                               (int)fn->start_mark.column + 1 + quoted, &map->mem,
                                               errbuf, errsize)) < 0)
            goto out;
    }
    if (v[T_SOFT] && (rc = parse_soft_delete(&cx, v[T_SOFT])))
        goto out;

    /* the key: a list of field names (a single name is a one-field key) */
    yaml_node_t *kv = v[T_KEY];
    int nkey = 0;
    if (kv->type == YAML_SEQUENCE_NODE)
        nkey = (int)(kv->data.sequence.items.top - kv->data.sequence.items.start);
    else if (kv->type == YAML_SCALAR_NODE && !siphon_yamlx_is_null(kv))
        nkey = 1;
    if (nkey == 0) {
        rc = ld_fail(&cx, kv->start_mark,
                     "wrong type for key: found %s (expected a list of entity fields, e.g. "
                     "key: [company, order_number])",
                     kv->type == YAML_SEQUENCE_NODE ? "an empty list" : siphon_yamlx_kind(kv));
        goto out;
    }
    if (v[T_FIELDS]->type != YAML_MAPPING_NODE) {
        rc = ld_fail(&cx, v[T_FIELDS]->start_mark,
                     "wrong type for fields: found %s (expected a mapping of entity field to "
                     "source column, e.g. order_number: hdordn)",
                     siphon_yamlx_kind(v[T_FIELDS]));
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
        rc = ld_fail(&cx, v[T_ENTITY]->start_mark,
                     "no schema for entity '%s' version %ld: %s does not exist (expected the "
                     "entity's Avro schema in that file; check entity and version)",
                     entity, major, schema_path);
        goto out;
    }
    {
        char serr[768];
        if ((rc = siphon_schema_load(&map->sch, schema_path, serr, sizeof(serr))) < 0) {
            if (rc != SIPHON_ENOMEM)
                rc = ld_fail(&cx, v[T_ENTITY]->start_mark,
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

    if ((rc = read_fields(&cx, v[T_FIELDS])))
        goto out;

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
        if (!map->fields[fi].mapped) {
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
        if (mf->mapped)
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
                rc = ld_fail(&cx, k[T_FIELDS]->start_mark,
                             "field '%s' (%s) has no column and Siphon cannot write its default "
                             "(expected a line '%s: <column>' under fields)",
                             mf->af->name, tn, mf->af->name);
                goto out;
            }
        } else if (!mf->af->nullable) {
            char tn[128];
            siphon_mapping__type_name(mf->af, tn, sizeof(tn));
            rc = ld_fail(&cx, k[T_FIELDS]->start_mark,
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
                rc = ld_fail(&cx, k[T_KEY]->start_mark,
                             "could not build the key and envelope schemas of entity '%s' "
                             "version %ld: %s",
                             entity, major, serr);
            goto out;
        }
    }
    size_t nf = (size_t)(map->nfields ? map->nfields : 1);
    if (!(map->after = calloc(nf, sizeof(siphon_value_t))) ||
        !(map->before = calloc(nf, sizeof(siphon_value_t))) ||
        !(map->key = calloc((size_t)map->nkey, sizeof(siphon_value_t))) ||
        !(map->warn = calloc(nf, sizeof(siphon_map_error_t))) ||
        !(map->warnmsg = calloc(nf, sizeof(*map->warnmsg)))) {
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
