/*
 * schema.c - parsing Avro schemas (JSON, via jansson) into the siphon_avro_type_t graph, and
 * loading canonical entity schema files (`schemas/<entity>.v<major>.avsc`).
 *
 * The parser implements the schema grammar of the Avro specification 1.11: primitive types by
 * name or as {"type": ...} objects, records, enums, arrays, maps, unions and fixed, named types
 * with namespaces (a name with a dot is a full name; otherwise the "namespace" attribute or the
 * namespace of the enclosing definition applies), references to named types defined earlier
 * (or enclosing: a record may contain itself), and logical types. Each named type is one node;
 * references share it.
 *
 * Errors point into the original text. jansson keeps no positions for parsed values, so the
 * parser keeps the path it is at ("fields", 3, "type") and, only when it fails, walks the text
 * along that path with a small JSON scanner to find the line and column. That keeps the hot
 * path free of bookkeeping and still gives "sales_order.v1.avsc:12:17: unknown type ...".
 *
 * Strict mode (entity schemas and the schemas we generate) also rejects what readers are told
 * to ignore but what we must never publish: unknown or misplaced logical types, invalid decimal
 * precision/scale and defaults that do not match their type. Lenient mode (canonical form of
 * arbitrary schemas) follows the specification and ignores those.
 */
#include "avro/avro_int.h"

#include <avro.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- parse context ---- */

typedef struct pseg {
    const char *key; /* object member, or NULL for an array index */
    int index;
} pseg_t;

typedef struct pctx {
    siphon_arena_t *arena;
    int strict;
    const char *text;
    size_t len;
    const char *origin;
    char *errbuf;
    size_t errsize;
    pseg_t path[SIPHON_AVRO_MAX_DEPTH];
    int depth;
    siphon_avro_type_t **named; /* named types defined so far (malloc'ed array) */
    int nnamed, capnamed;
} pctx_t;

/* ---- locating a path in the JSON text (only when reporting an error) ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"': returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end, int depth)
{
    p = skip_ws(p, end);
    if (p >= end || depth > 512)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = skip_ws(p, end);
                if (p >= end || *p != '"' || !(p = skip_string(p, end)))
                    return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if (!(p = skip_value(p, end, depth + 1)))
                return NULL;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == close)
                return p + 1;
            return NULL;
        }
    }
    /* number, true, false, null */
    while (p < end && !strchr(",:]} \t\r\n", *p))
        p++;
    return p;
}

/* Where the value at `path` starts; the deepest position reached when the path cannot be
 * followed (never NULL). */
static const char *locate(const char *text, size_t len, const pseg_t *path, int depth)
{
    const char *end = text + len;
    const char *p = skip_ws(text, end);
    for (int i = 0; i < depth && p < end; i++) {
        const char *at = p;
        if (*p == '{' && path[i].key) {
            size_t klen = strlen(path[i].key);
            int found = 0;
            p = skip_ws(p + 1, end);
            while (p < end && *p == '"') {
                const char *ks = p + 1;
                const char *ke = skip_string(p, end);
                if (!ke)
                    return at;
                int match = (size_t)(ke - 1 - ks) == klen && memcmp(ks, path[i].key, klen) == 0;
                p = skip_ws(ke, end);
                if (p >= end || *p != ':')
                    return at;
                p = skip_ws(p + 1, end);
                if (match) {
                    found = 1;
                    break;
                }
                if (!(p = skip_value(p, end, 0)))
                    return at;
                p = skip_ws(p, end);
                if (p < end && *p == ',')
                    p = skip_ws(p + 1, end);
            }
            if (!found)
                return at;
        } else if (*p == '[' && !path[i].key) {
            p = skip_ws(p + 1, end);
            for (int k = 0; k < path[i].index; k++) {
                if (!(p = skip_value(p, end, 0)))
                    return at;
                p = skip_ws(p, end);
                if (p >= end || *p != ',')
                    return at;
                p = skip_ws(p + 1, end);
            }
        } else {
            return p;
        }
    }
    return p < end ? p : end;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    int l = 1, c = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            c++; /* count characters, not bytes, like editors and jansson */
        }
    }
    *line = l;
    *col = c;
}

static int perr(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(pctx_t *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = 1, col = 1;
    if (c->text) {
        const char *at = locate(c->text, c->len, c->path, c->depth);
        line_col(c->text, at, &line, &col);
    }
    return siphon_err(c->errbuf, c->errsize, SIPHON_EINVAL, "%s:%d:%d: %s", c->origin, line, col,
                      msg);
}

static int push_key(pctx_t *c, const char *key)
{
    if (c->depth >= SIPHON_AVRO_MAX_DEPTH)
        return perr(c, "schema nests deeper than %d levels", SIPHON_AVRO_MAX_DEPTH);
    c->path[c->depth].key = key;
    c->path[c->depth].index = -1;
    c->depth++;
    return 0;
}

static int push_index(pctx_t *c, int index)
{
    if (c->depth >= SIPHON_AVRO_MAX_DEPTH)
        return perr(c, "schema nests deeper than %d levels", SIPHON_AVRO_MAX_DEPTH);
    c->path[c->depth].key = NULL;
    c->path[c->depth].index = index;
    c->depth++;
    return 0;
}

static void pop(pctx_t *c)
{
    if (c->depth > 0)
        c->depth--;
}

/* ---- names ---- */

static const char *const PRIMS[] = {"null", "boolean", "int",    "long",
                                    "float", "double", "bytes", "string"};
static const siphon_avro_kind_t PRIM_KINDS[] = {
    SIPHON_AVRO_NULL,  SIPHON_AVRO_BOOLEAN, SIPHON_AVRO_INT,   SIPHON_AVRO_LONG,
    SIPHON_AVRO_FLOAT, SIPHON_AVRO_DOUBLE,  SIPHON_AVRO_BYTES, SIPHON_AVRO_STRING};

static int prim_kind(const char *s)
{
    for (size_t i = 0; i < sizeof(PRIMS) / sizeof(PRIMS[0]); i++)
        if (strcmp(s, PRIMS[i]) == 0)
            return (int)PRIM_KINDS[i];
    return -1;
}

static int name_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int name_char(char ch) { return name_start(ch) || (ch >= '0' && ch <= '9'); }

/* One name component: [A-Za-z_][A-Za-z0-9_]* over [s, e). */
static int valid_component(const char *s, const char *e)
{
    if (s >= e || !name_start(*s))
        return 0;
    for (s++; s < e; s++)
        if (!name_char(*s))
            return 0;
    return 1;
}

/* Dot-separated components; "" is valid when allow_empty. */
static int valid_dotted(const char *s, int allow_empty)
{
    if (!*s)
        return allow_empty;
    for (;;) {
        const char *dot = strchr(s, '.');
        const char *e = dot ? dot : s + strlen(s);
        if (!valid_component(s, e))
            return 0;
        if (!dot)
            return 1;
        s = dot + 1;
    }
}

void siphon_avro__namespace_of(const char *fullname, char *buf, size_t size)
{
    const char *dot = strrchr(fullname, '.');
    size_t n = dot ? (size_t)(dot - fullname) : 0;
    if (size == 0)
        return;
    if (n >= size)
        n = size - 1;
    memcpy(buf, fullname, n);
    buf[n] = '\0';
}

static char *arena_namespace_of(siphon_arena_t *a, const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return siphon_arena_strndup(a, fullname, dot ? (size_t)(dot - fullname) : 0);
}

static char *arena_join(siphon_arena_t *a, const char *ns, const char *name)
{
    if (!ns || !*ns || strchr(name, '.'))
        return siphon_arena_strndup(a, name, strlen(name));
    size_t nl = strlen(ns), ml = strlen(name);
    char *p = siphon_arena_alloc(a, nl + ml + 2);
    if (!p)
        return NULL;
    memcpy(p, ns, nl);
    p[nl] = '.';
    memcpy(p + nl + 1, name, ml + 1);
    return p;
}

static siphon_avro_type_t *lookup(pctx_t *c, const char *fullname)
{
    for (int i = 0; i < c->nnamed; i++)
        if (strcmp(c->named[i]->name, fullname) == 0)
            return c->named[i];
    return NULL;
}

static int nomem(pctx_t *c)
{
    return siphon_err(c->errbuf, c->errsize, SIPHON_ENOMEM, "%s: out of memory parsing schema",
                      c->origin);
}

static siphon_avro_type_t *new_node(pctx_t *c, siphon_avro_kind_t kind)
{
    siphon_avro_type_t *t = siphon_arena_alloc(c->arena, sizeof(*t));
    if (t) {
        memset(t, 0, sizeof(*t));
        t->kind = kind;
    }
    return t;
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* Give the named type t its full name from obj's "name"/"namespace" and the enclosing namespace
 * ns, register it, and return in *inner the namespace its children are defined in. */
static int define_named(pctx_t *c, json_t *obj, const char *ns, const char *what,
                        siphon_avro_type_t *t, const char **inner)
{
    json_t *nj = json_object_get(obj, "name");
    int rc;
    if (!nj)
        return perr(c, "%s needs a \"name\"", what);
    if ((rc = push_key(c, "name")) < 0)
        return rc;
    if (!json_is_string(nj))
        return perr(c, "the name of %s must be a string, not %s", what, json_kind(nj));
    const char *name = json_string_value(nj);
    if (!valid_dotted(name, 0))
        return perr(c, "invalid name \"%s\": a name starts with a letter or '_' and has only "
                       "letters, digits and '_' (dots separate namespace parts)", name);
    if (!strchr(name, '.') && prim_kind(name) >= 0)
        return perr(c, "\"%s\" is a primitive type and cannot be the name of %s", name, what);
    pop(c);

    const char *space = ns;
    json_t *nsj = json_object_get(obj, "namespace");
    if (nsj) {
        if ((rc = push_key(c, "namespace")) < 0)
            return rc;
        if (!json_is_string(nsj) || !valid_dotted(json_string_value(nsj), 1))
            return perr(c, "invalid namespace: expected dot-separated names such as "
                           "\"com.example.erp\"");
        pop(c);
        space = json_string_value(nsj);
    }
    char *full = arena_join(c->arena, space, name);
    if (!full)
        return nomem(c);
    if (lookup(c, full)) {
        if ((rc = push_key(c, "name")) < 0)
            return rc;
        return perr(c, "type %s is defined twice; refer to it by name after its first definition",
                    full);
    }
    if (c->nnamed == c->capnamed) {
        int cap = c->capnamed ? c->capnamed * 2 : 16;
        siphon_avro_type_t **p = realloc(c->named, (size_t)cap * sizeof(*p));
        if (!p)
            return nomem(c);
        c->named = p;
        c->capnamed = cap;
    }
    c->named[c->nnamed++] = t;
    t->name = full;
    if (!(*inner = arena_namespace_of(c->arena, full)))
        return nomem(c);
    return 0;
}

/* ---- types ---- */

static int parse_type(pctx_t *c, json_t *j, const char *ns, siphon_avro_type_t **out);

static int resolve_name(pctx_t *c, const char *s, const char *ns, siphon_avro_type_t **out)
{
    int pk = prim_kind(s);
    if (pk >= 0) {
        if (!(*out = new_node(c, (siphon_avro_kind_t)pk)))
            return nomem(c);
        return 0;
    }
    siphon_avro_type_t *t = NULL;
    if (strchr(s, '.')) {
        t = lookup(c, s);
    } else {
        char *full = arena_join(c->arena, ns, s);
        if (!full)
            return nomem(c);
        t = lookup(c, full);
        if (!t)
            t = lookup(c, s); /* a type of the null namespace referenced from a named one */
    }
    if (!t)
        return perr(c, "unknown type \"%s\": not a primitive type (null, boolean, int, long, "
                       "float, double, bytes, string) nor a named type defined before this point",
                    s);
    *out = t;
    return 0;
}

static const struct {
    const char *name;
    siphon_avro_logical_t lt;
    siphon_avro_kind_t base;
} LOGICALS[] = {
    {"decimal", SIPHON_AVRO_LT_DECIMAL, SIPHON_AVRO_BYTES},
    {"date", SIPHON_AVRO_LT_DATE, SIPHON_AVRO_INT},
    {"time-millis", SIPHON_AVRO_LT_TIME_MILLIS, SIPHON_AVRO_INT},
    {"time-micros", SIPHON_AVRO_LT_TIME_MICROS, SIPHON_AVRO_LONG},
    {"timestamp-millis", SIPHON_AVRO_LT_TIMESTAMP_MILLIS, SIPHON_AVRO_LONG},
    {"timestamp-micros", SIPHON_AVRO_LT_TIMESTAMP_MICROS, SIPHON_AVRO_LONG},
    {"local-timestamp-millis", SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS, SIPHON_AVRO_LONG},
    {"local-timestamp-micros", SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MICROS, SIPHON_AVRO_LONG},
    {"uuid", SIPHON_AVRO_LT_UUID, SIPHON_AVRO_STRING},
};

const char *siphon_avro__logical_name(siphon_avro_logical_t lt)
{
    for (size_t i = 0; i < sizeof(LOGICALS) / sizeof(LOGICALS[0]); i++)
        if (LOGICALS[i].lt == lt)
            return LOGICALS[i].name;
    return NULL;
}

static const char *kind_name(siphon_avro_kind_t k)
{
    switch (k) {
    case SIPHON_AVRO_NULL: return "null";
    case SIPHON_AVRO_BOOLEAN: return "boolean";
    case SIPHON_AVRO_INT: return "int";
    case SIPHON_AVRO_LONG: return "long";
    case SIPHON_AVRO_FLOAT: return "float";
    case SIPHON_AVRO_DOUBLE: return "double";
    case SIPHON_AVRO_BYTES: return "bytes";
    case SIPHON_AVRO_STRING: return "string";
    case SIPHON_AVRO_RECORD: return "record";
    case SIPHON_AVRO_ENUM: return "enum";
    case SIPHON_AVRO_ARRAY: return "array";
    case SIPHON_AVRO_MAP: return "map";
    case SIPHON_AVRO_UNION: return "union";
    case SIPHON_AVRO_FIXED: return "fixed";
    }
    return "?";
}

/* Most decimal digits a fixed of `size` bytes holds: floor(log10(2^(8*size-1) - 1)). */
static int fixed_max_digits(int size)
{
    if (size <= 0)
        return 0;
    return (int)floorl((long double)(8 * size - 1) * 0.301029995663981195213738894724493L);
}

/* The logicalType attribute of a primitive or fixed type object. Invalid logical types are
 * errors in strict mode and ignored (plain base type) otherwise, as the specification says. */
static int parse_logical(pctx_t *c, json_t *obj, siphon_avro_type_t *t)
{
    json_t *lj = json_object_get(obj, "logicalType");
    int rc;
    if (!lj)
        return 0;
    if ((rc = push_key(c, "logicalType")) < 0)
        return rc;
    if (!json_is_string(lj)) {
        if (c->strict)
            return perr(c, "logicalType must be a string, not %s", json_kind(lj));
        pop(c);
        return 0;
    }
    const char *name = json_string_value(lj);
    size_t i;
    for (i = 0; i < sizeof(LOGICALS) / sizeof(LOGICALS[0]); i++)
        if (strcmp(name, LOGICALS[i].name) == 0)
            break;
    if (i == sizeof(LOGICALS) / sizeof(LOGICALS[0])) {
        if (c->strict)
            return perr(c, "unknown logicalType \"%s\" (Siphon knows decimal, date, time-millis, "
                           "time-micros, timestamp-millis, timestamp-micros, "
                           "local-timestamp-millis, local-timestamp-micros, uuid)", name);
        pop(c);
        return 0;
    }
    siphon_avro_kind_t base = LOGICALS[i].base;
    int base_ok = t->kind == base ||
                  (LOGICALS[i].lt == SIPHON_AVRO_LT_DECIMAL && t->kind == SIPHON_AVRO_FIXED);
    if (!base_ok) {
        if (c->strict)
            return perr(c, "logicalType \"%s\" annotates %s%s, not %s", name, kind_name(base),
                        LOGICALS[i].lt == SIPHON_AVRO_LT_DECIMAL ? " or fixed" : "",
                        kind_name(t->kind));
        pop(c);
        return 0;
    }
    pop(c);
    if (LOGICALS[i].lt == SIPHON_AVRO_LT_DECIMAL) {
        json_t *pj = json_object_get(obj, "precision");
        json_t *sj = json_object_get(obj, "scale");
        json_int_t prec = pj && json_is_integer(pj) ? json_integer_value(pj) : 0;
        json_int_t scale = sj && json_is_integer(sj) ? json_integer_value(sj) : 0;
        const char *why = NULL;
        const char *at = "precision";
        char tmp[96];
        if (!pj) {
            why = "a decimal needs a \"precision\" (the most digits it holds)";
            at = NULL;
        } else if (!json_is_integer(pj) || prec <= 0 || prec > INT_MAX) {
            why = "decimal precision must be a positive integer";
        } else if (sj && (!json_is_integer(sj) || scale < 0 || scale > prec)) {
            why = "decimal scale must be an integer from 0 to the precision";
            at = "scale";
        } else if (t->kind == SIPHON_AVRO_FIXED && prec > fixed_max_digits(t->size)) {
            snprintf(tmp, sizeof(tmp), "a fixed of %d bytes holds at most %d decimal digits",
                     t->size, fixed_max_digits(t->size));
            why = tmp;
        }
        if (why) {
            if (c->strict) {
                if (at && (rc = push_key(c, at)) < 0)
                    return rc;
                return perr(c, "%s", why);
            }
            return 0;
        }
        t->precision = (int)prec;
        t->scale = (int)scale;
    }
    t->logical = LOGICALS[i].lt;
    return 0;
}

static int check_default(pctx_t *c, const siphon_avro_type_t *t, json_t *v);

static int parse_record(pctx_t *c, json_t *obj, const char *ns, siphon_avro_type_t **out)
{
    siphon_avro_type_t *t = new_node(c, SIPHON_AVRO_RECORD);
    const char *inner;
    int rc;
    if (!t)
        return nomem(c);
    if ((rc = define_named(c, obj, ns, "a record", t, &inner)) < 0)
        return rc;
    *out = t; /* visible to its own fields (recursive types) */
    json_t *fj = json_object_get(obj, "fields");
    if (!fj)
        return perr(c, "record %s needs a \"fields\" array", t->name);
    if ((rc = push_key(c, "fields")) < 0)
        return rc;
    if (!json_is_array(fj))
        return perr(c, "\"fields\" of record %s must be an array, not %s", t->name, json_kind(fj));
    size_t n = json_array_size(fj);
    if (n > INT_MAX / 2)
        return perr(c, "record %s has too many fields", t->name);
    t->fields = siphon_arena_alloc(c->arena, (n ? n : 1) * sizeof(*t->fields));
    if (!t->fields)
        return nomem(c);
    memset(t->fields, 0, (n ? n : 1) * sizeof(*t->fields));
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(fj, i);
        siphon_avro_field_t *fld = &t->fields[i];
        if ((rc = push_index(c, (int)i)) < 0)
            return rc;
        if (!json_is_object(f))
            return perr(c, "a field of record %s must be an object with \"name\" and \"type\"",
                        t->name);
        json_t *nj = json_object_get(f, "name");
        if (!nj)
            return perr(c, "field %zu of record %s has no \"name\"", i + 1, t->name);
        if ((rc = push_key(c, "name")) < 0)
            return rc;
        const char *fname = json_is_string(nj) ? json_string_value(nj) : NULL;
        if (!fname || !valid_component(fname, fname + strlen(fname)))
            return perr(c, "invalid field name%s%s%s: a field name starts with a letter or '_' "
                           "and has only letters, digits and '_'",
                        fname ? " \"" : "", fname ? fname : "", fname ? "\"" : "");
        for (size_t k = 0; k < i; k++)
            if (strcmp(t->fields[k].name, fname) == 0)
                return perr(c, "field \"%s\" appears twice in record %s", fname, t->name);
        pop(c);
        if (!(fld->name = siphon_arena_strndup(c->arena, fname, strlen(fname))))
            return nomem(c);
        json_t *dj = json_object_get(f, "doc");
        if (dj && json_is_string(dj) &&
            !(fld->doc = siphon_arena_strndup(c->arena, json_string_value(dj),
                                              json_string_length(dj))))
            return nomem(c);
        json_t *tj = json_object_get(f, "type");
        if (!tj)
            return perr(c, "field \"%s\" of record %s has no \"type\"", fname, t->name);
        if ((rc = push_key(c, "type")) < 0 || (rc = parse_type(c, tj, inner, &fld->type)) < 0)
            return rc;
        pop(c);
        if (c->strict && json_object_get(f, "logicalType")) {
            json_t *lj = json_object_get(f, "logicalType");
            if ((rc = push_key(c, "logicalType")) < 0)
                return rc;
            return perr(c, "logicalType on a field is ignored by Avro readers; put it inside the "
                           "type: \"type\": {\"type\": \"...\", \"logicalType\": \"%s\"}",
                        json_is_string(lj) ? json_string_value(lj) : "...");
        }
        fld->base = fld->type;
        if (fld->type->kind == SIPHON_AVRO_UNION) {
            const siphon_avro_type_t *u = fld->type;
            for (int b = 0; b < u->nbranches; b++)
                if (u->branches[b]->kind == SIPHON_AVRO_NULL)
                    fld->nullable = 1;
            if (u->nbranches == 2 && fld->nullable)
                fld->base = u->branches[u->branches[0]->kind == SIPHON_AVRO_NULL ? 1 : 0];
        } else if (fld->type->kind == SIPHON_AVRO_NULL) {
            fld->nullable = 1;
        }
        json_t *defj = json_object_get(f, "default");
        if (defj) {
            fld->has_default = 1;
            if (c->strict) {
                if ((rc = push_key(c, "default")) < 0 ||
                    (rc = check_default(c, fld->type, defj)) < 0)
                    return rc;
                pop(c);
            }
        }
        t->nfields = (int)i + 1;
        pop(c);
    }
    pop(c);
    return 0;
}

static int parse_enum(pctx_t *c, json_t *obj, const char *ns, siphon_avro_type_t **out)
{
    siphon_avro_type_t *t = new_node(c, SIPHON_AVRO_ENUM);
    const char *inner;
    int rc;
    if (!t)
        return nomem(c);
    if ((rc = define_named(c, obj, ns, "an enum", t, &inner)) < 0)
        return rc;
    json_t *sj = json_object_get(obj, "symbols");
    if (!sj)
        return perr(c, "enum %s needs a \"symbols\" array", t->name);
    if ((rc = push_key(c, "symbols")) < 0)
        return rc;
    if (!json_is_array(sj))
        return perr(c, "\"symbols\" of enum %s must be an array, not %s", t->name, json_kind(sj));
    size_t n = json_array_size(sj);
    if (n == 0 && c->strict)
        return perr(c, "enum %s has no symbols", t->name);
    if (n > INT_MAX / 2)
        return perr(c, "enum %s has too many symbols", t->name);
    t->symbols = siphon_arena_alloc(c->arena, (n ? n : 1) * sizeof(char *));
    if (!t->symbols)
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(sj, i);
        if ((rc = push_index(c, (int)i)) < 0)
            return rc;
        const char *sym = json_is_string(s) ? json_string_value(s) : NULL;
        if (!sym || !valid_component(sym, sym + strlen(sym)))
            return perr(c, "invalid symbol in enum %s: a symbol starts with a letter or '_' and "
                           "has only letters, digits and '_'", t->name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(t->symbols[k], sym) == 0)
                return perr(c, "symbol \"%s\" appears twice in enum %s", sym, t->name);
        if (!(t->symbols[i] = siphon_arena_strndup(c->arena, sym, strlen(sym))))
            return nomem(c);
        t->nsymbols = (int)i + 1;
        pop(c);
    }
    pop(c);
    json_t *dj = json_object_get(obj, "default");
    if (dj && c->strict) {
        if ((rc = push_key(c, "default")) < 0 || (rc = check_default(c, t, dj)) < 0)
            return rc;
        pop(c);
    }
    *out = t;
    return 0;
}

static int parse_fixed(pctx_t *c, json_t *obj, const char *ns, siphon_avro_type_t **out)
{
    siphon_avro_type_t *t = new_node(c, SIPHON_AVRO_FIXED);
    const char *inner;
    int rc;
    if (!t)
        return nomem(c);
    if ((rc = define_named(c, obj, ns, "a fixed", t, &inner)) < 0)
        return rc;
    json_t *sj = json_object_get(obj, "size");
    if (!sj)
        return perr(c, "fixed %s needs a \"size\"", t->name);
    if ((rc = push_key(c, "size")) < 0)
        return rc;
    long long size = -1;
    if (json_is_integer(sj)) {
        size = json_integer_value(sj);
    } else if (json_is_string(sj) && !c->strict) {
        /* [INTEGERS] of the canonical form: a size may arrive quoted */
        const char *s = json_string_value(sj);
        char *end;
        errno = 0;
        size = strtoll(s, &end, 10);
        if (!*s || *end || errno)
            size = -1;
    }
    if (size < 0 || size > INT_MAX)
        return perr(c, "the size of fixed %s must be a non-negative integer", t->name);
    pop(c);
    t->size = (int)size;
    *out = t;
    return parse_logical(c, obj, t);
}

static int parse_union(pctx_t *c, json_t *arr, const char *ns, siphon_avro_type_t **out)
{
    siphon_avro_type_t *t = new_node(c, SIPHON_AVRO_UNION);
    int rc;
    if (!t)
        return nomem(c);
    size_t n = json_array_size(arr);
    if (n > INT_MAX / 2)
        return perr(c, "union has too many branches");
    t->branches = siphon_arena_alloc(c->arena, (n ? n : 1) * sizeof(*t->branches));
    if (!t->branches)
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        siphon_avro_type_t *b;
        if ((rc = push_index(c, (int)i)) < 0 ||
            (rc = parse_type(c, json_array_get(arr, i), ns, &b)) < 0)
            return rc;
        if (b->kind == SIPHON_AVRO_UNION)
            return perr(c, "a union cannot directly contain another union");
        for (size_t k = 0; k < i; k++) {
            const siphon_avro_type_t *o = t->branches[k];
            int named = b->kind == SIPHON_AVRO_RECORD || b->kind == SIPHON_AVRO_ENUM ||
                        b->kind == SIPHON_AVRO_FIXED;
            if (o->kind == b->kind && (!named || strcmp(o->name, b->name) == 0))
                return perr(c, "union contains %s twice", named ? b->name : kind_name(b->kind));
        }
        t->branches[i] = b;
        t->nbranches = (int)i + 1;
        pop(c);
    }
    *out = t;
    return 0;
}

static int parse_object(pctx_t *c, json_t *obj, const char *ns, siphon_avro_type_t **out)
{
    json_t *tj = json_object_get(obj, "type");
    int rc;
    if (!tj)
        return perr(c, "a type object needs a \"type\" attribute");
    if (!json_is_string(tj)) {
        if ((rc = push_key(c, "type")) < 0)
            return rc;
        return perr(c, "\"type\" must be a type name such as \"record\" or \"long\" here, not %s",
                    json_kind(tj));
    }
    const char *ts = json_string_value(tj);
    int pk = prim_kind(ts);
    if (pk >= 0) {
        siphon_avro_type_t *t = new_node(c, (siphon_avro_kind_t)pk);
        if (!t)
            return nomem(c);
        *out = t;
        return parse_logical(c, obj, t);
    }
    if (strcmp(ts, "record") == 0 || strcmp(ts, "error") == 0)
        return parse_record(c, obj, ns, out);
    if (strcmp(ts, "enum") == 0)
        return parse_enum(c, obj, ns, out);
    if (strcmp(ts, "fixed") == 0)
        return parse_fixed(c, obj, ns, out);
    if (strcmp(ts, "array") == 0 || strcmp(ts, "map") == 0) {
        int is_array = ts[0] == 'a';
        const char *attr = is_array ? "items" : "values";
        json_t *ij = json_object_get(obj, attr);
        siphon_avro_type_t *t = new_node(c, is_array ? SIPHON_AVRO_ARRAY : SIPHON_AVRO_MAP);
        if (!t)
            return nomem(c);
        if (!ij)
            return perr(c, "%s needs \"%s\"", is_array ? "an array" : "a map", attr);
        if ((rc = push_key(c, attr)) < 0 ||
            (rc = parse_type(c, ij, ns, is_array ? &t->items : &t->values)) < 0)
            return rc;
        pop(c);
        *out = t;
        return 0;
    }
    if ((rc = push_key(c, "type")) < 0 || (rc = resolve_name(c, ts, ns, out)) < 0)
        return rc;
    pop(c);
    return 0;
}

static int parse_type(pctx_t *c, json_t *j, const char *ns, siphon_avro_type_t **out)
{
    switch (json_typeof(j)) {
    case JSON_STRING: return resolve_name(c, json_string_value(j), ns, out);
    case JSON_ARRAY: return parse_union(c, j, ns, out);
    case JSON_OBJECT: return parse_object(c, j, ns, out);
    default:
        return perr(c, "expected a type (a type name, an object with \"type\", or an array for a "
                       "union), found %s", json_kind(j));
    }
}

/* ---- defaults ---- */

static int bad_default(pctx_t *c, const siphon_avro_type_t *t, const char *hint)
{
    char desc[160];
    siphon_avro__type_describe(t, desc, sizeof(desc));
    return perr(c, "default value does not match the type %s%s", desc, hint ? hint : "");
}

static int check_default(pctx_t *c, const siphon_avro_type_t *t, json_t *v)
{
    int rc;
    switch (t->kind) {
    case SIPHON_AVRO_NULL:
        return json_is_null(v) ? 0 : bad_default(c, t, NULL);
    case SIPHON_AVRO_BOOLEAN:
        return json_is_boolean(v) ? 0 : bad_default(c, t, " (expected true or false)");
    case SIPHON_AVRO_INT:
        if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
            json_integer_value(v) <= INT32_MAX)
            return 0;
        return bad_default(c, t, " (expected a 32-bit integer)");
    case SIPHON_AVRO_LONG:
        return json_is_integer(v) ? 0 : bad_default(c, t, " (expected an integer)");
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE:
        return json_is_number(v) ? 0 : bad_default(c, t, " (expected a number)");
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_STRING:
    case SIPHON_AVRO_FIXED:
        return json_is_string(v) ? 0 : bad_default(c, t, " (expected a string)");
    case SIPHON_AVRO_ENUM:
        if (json_is_string(v))
            for (int i = 0; i < t->nsymbols; i++)
                if (strcmp(t->symbols[i], json_string_value(v)) == 0)
                    return 0;
        return bad_default(c, t, " (expected one of its symbols)");
    case SIPHON_AVRO_ARRAY:
        if (!json_is_array(v))
            return bad_default(c, t, " (expected an array)");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((rc = push_index(c, (int)i)) < 0 ||
                (rc = check_default(c, t->items, json_array_get(v, i))) < 0)
                return rc;
            pop(c);
        }
        return 0;
    case SIPHON_AVRO_MAP: {
        const char *k;
        json_t *m;
        if (!json_is_object(v))
            return bad_default(c, t, " (expected an object)");
        json_object_foreach(v, k, m) {
            if ((rc = push_key(c, k)) < 0 || (rc = check_default(c, t->values, m)) < 0)
                return rc;
            pop(c);
        }
        return 0;
    }
    case SIPHON_AVRO_RECORD:
        if (!json_is_object(v))
            return bad_default(c, t, " (expected an object)");
        for (int i = 0; i < t->nfields; i++) {
            json_t *m = json_object_get(v, t->fields[i].name);
            if (!m) {
                if (t->fields[i].has_default)
                    continue;
                return perr(c, "default value of record %s lacks field \"%s\"", t->name,
                            t->fields[i].name);
            }
            if ((rc = push_key(c, t->fields[i].name)) < 0 ||
                (rc = check_default(c, t->fields[i].type, m)) < 0)
                return rc;
            pop(c);
        }
        return 0;
    case SIPHON_AVRO_UNION:
        if (t->nbranches == 0)
            return bad_default(c, t, NULL);
        /* Avro 1.11: a union's default belongs to its first branch */
        if (check_default(c, t->branches[0], v) == 0)
            return 0;
        return bad_default(c, t, t->branches[0]->kind != SIPHON_AVRO_NULL && json_is_null(v)
                                     ? " (a union's default matches its first type: put \"null\" "
                                       "first for a null default)"
                                     : " (a union's default matches its first type)");
    }
    return bad_default(c, t, NULL);
}

/* ---- entry points ---- */

int siphon_avro__parse(siphon_avro_type_t **out, json_t *root, siphon_arena_t *arena, int strict,
                       const char *text, size_t len, const char *origin, char *errbuf,
                       size_t errsize)
{
    pctx_t *c = calloc(1, sizeof(*c));
    int rc;
    *out = NULL;
    if (!c)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", origin);
    c->arena = arena;
    c->strict = strict;
    c->text = text;
    c->len = len;
    c->origin = origin;
    c->errbuf = errbuf;
    c->errsize = errsize;
    rc = parse_type(c, root, "", out);
    if (rc < 0)
        *out = NULL;
    free(c->named);
    free(c);
    return rc;
}

typedef struct schema_impl {
    siphon_schema_t pub; /* first: the public struct is the impl */
    siphon_arena_t arena;
    avro_schema_t avsc;  /* avro-c's view of the entity record */
} schema_impl_t;

void siphon_schema_destroy(siphon_schema_t *sch)
{
    if (!sch)
        return;
    schema_impl_t *impl = (schema_impl_t *)sch;
    if (impl->avsc)
        avro_schema_decref(impl->avsc);
    siphon_arena_destroy(&impl->arena);
    free(impl);
}

/* Parse json (len bytes, need not be NUL-terminated) as an entity schema. origin names it in
 * messages. On failure nothing is left allocated. */
static int schema_build(schema_impl_t **out, const char *json, size_t len, const char *origin,
                        char *errbuf, size_t errsize)
{
    schema_impl_t *impl = calloc(1, sizeof(*impl));
    siphon_buf_t canon = {0};
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    *out = NULL;
    if (!impl)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", origin);
    siphon_arena_init(&impl->arena, 16 * 1024);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "%s:%d:%d: invalid JSON: %s", origin,
                        jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1,
                        jerr.text);
        goto err;
    }
    siphon_avro_type_t *rec;
    if ((rc = siphon_avro__parse(&rec, root, &impl->arena, 1, json, len, origin, errbuf,
                                 errsize)) < 0)
        goto err;
    if (rec->kind != SIPHON_AVRO_RECORD) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s:1:1: an entity schema must be a record ({\"type\": \"record\", "
                        "\"name\": ..., \"fields\": [...]}), not %s",
                        origin, json_is_object(root) ? "another type" : "a bare type name or union");
        goto err;
    }
    impl->pub.record = rec;
    if ((rc = siphon_avro__canonical_append(&canon, rec)) < 0 ||
        !(impl->pub.json = siphon_arena_strndup(&impl->arena, json, len)) ||
        !(impl->pub.canonical =
              siphon_arena_strndup(&impl->arena, (const char *)canon.data, canon.len))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", origin);
        goto err;
    }
    impl->pub.fingerprint = siphon_avro_fingerprint64(canon.data, canon.len);
    if (avro_schema_from_json_length(json, len, &impl->avsc) != 0) {
        impl->avsc = NULL;
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s: the Avro library (avro-c) could not use the schema: %s", origin,
                        avro_strerror());
        goto err;
    }
    json_decref(root);
    siphon_buf_free(&canon);
    *out = impl;
    return 0;

err:
    json_decref(root);
    siphon_buf_free(&canon);
    siphon_schema_destroy(&impl->pub);
    return rc;
}

int siphon_schema_parse(siphon_schema_t **out, const char *json, size_t len, char *errbuf,
                        size_t errsize)
{
    schema_impl_t *impl;
    int rc;
    if (!out || !json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not parse schema: no text");
    *out = NULL;
    if ((rc = schema_build(&impl, json, len, "<schema>", errbuf, errsize)) < 0)
        return rc;
    *out = &impl->pub;
    return 0;
}

/* "<entity>.v<major>.avsc" -> entity (into buf) and major. 0 or -1. */
static int parse_file_name(const char *path, char *entity, size_t esize, int *major)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n < 5 || strcmp(base + n - 5, ".avsc") != 0)
        return -1;
    n -= 5;
    size_t d = n;
    while (d > 0 && base[d - 1] >= '0' && base[d - 1] <= '9')
        d--;
    if (d == n || n - d > 6 || d < 3 || base[d - 1] != 'v' || base[d - 2] != '.')
        return -1;
    long m = strtol(base + d, NULL, 10);
    size_t elen = d - 2;
    if (m < 1 || elen == 0 || elen >= esize)
        return -1;
    for (size_t i = 0; i < elen; i++)
        if (!name_char(base[i]) && base[i] != '-')
            return -1;
    memcpy(entity, base, elen);
    entity[elen] = '\0';
    *major = (int)m;
    return 0;
}

int siphon_schema_load(siphon_schema_t **out, const char *path, char *errbuf, size_t errsize)
{
    char entity[256];
    int major;
    char *text = NULL;
    size_t len = 0, cap = 0;
    FILE *f = NULL;
    schema_impl_t *impl = NULL;
    int rc;

    if (!out || !path)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not load schema: no path");
    *out = NULL;
    if (parse_file_name(path, entity, sizeof(entity), &major) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s: a schema file must be named <entity>.v<major>.avsc (for example "
                          "sales_order.v1.avsc; the entity has letters, digits, '_' or '-', the "
                          "major version is 1 or more)", path);
    if (!(f = fopen(path, "rb")))
        return siphon_err(errbuf, errsize, errno == ENOENT ? SIPHON_ENOTFOUND : SIPHON_EIO,
                          "could not open schema file \"%s\": %s", path, strerror(errno));
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(text, cap);
            if (!p) {
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", path);
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
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not read schema file \"%s\": %s",
                        path, strerror(errno));
        goto out;
    }
    if ((rc = schema_build(&impl, text, len, path, errbuf, errsize)) < 0)
        goto out;
    if (!(impl->pub.path = siphon_arena_strndup(&impl->arena, path, strlen(path))) ||
        !(impl->pub.entity = siphon_arena_strndup(&impl->arena, entity, strlen(entity)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", path);
        siphon_schema_destroy(&impl->pub);
        goto out;
    }
    impl->pub.major = major;
    *out = &impl->pub;
    rc = 0;
out:
    if (f)
        fclose(f);
    free(text);
    return rc;
}

int siphon_schema_field_index(const siphon_schema_t *sch, const char *name)
{
    if (!sch || !sch->record || !name)
        return -1;
    for (int i = 0; i < sch->record->nfields; i++)
        if (strcmp(sch->record->fields[i].name, name) == 0)
            return i;
    return -1;
}
