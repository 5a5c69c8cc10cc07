/*
 * compat.c - Avro schema compatibility: can data written with one schema be read with another,
 * and if not, where and why; the Schema Registry's modes on top; and a field-by-field diff.
 *
 * The check walks the parsed type graphs of a reader and a writer schema (schema.c) side by
 * side and applies the resolution rules of the Avro specification 1.11 ("Schema Resolution"),
 * the way Java's SchemaCompatibility (which the Confluent Schema Registry runs) applies them:
 *  - same kinds match; promotions int -> long, float, double; long -> float, double;
 *    float -> double; string <-> bytes;
 *  - records, enums and fixed match when their unqualified names are equal or the writer's full
 *    name is one of the reader's aliases; a reader field is found in the writer by name, then
 *    by the reader field's aliases; a reader field the writer lacks needs a default (which must
 *    fit its type); writer fields the reader lacks are skipped;
 *  - enums: a writer symbol the reader lacks needs the reader's enum default;
 *  - fixed: same size; arrays and maps: their items and values;
 *  - a writer union: every branch must be readable; a reader union: some branch must read the
 *    writer's type (the first that does is what a decoder picks);
 *  - logical types (which Java's checker ignores): a decimal keeps its scale and may widen its
 *    precision; otherwise a reader may drop a logical type (it sees the underlying value) but
 *    not add one or change it.
 * Neither aliases nor defaults nor enum defaults are in the type graph, so each schema keeps
 * its JSON and a table from full name to the JSON object that defines the type; a field's JSON
 * is the same index in its record's "fields".
 *
 * Named types are shared nodes and may be recursive, so each (reader, writer) pair of named
 * types is checked once: a pair being checked counts as compatible when met again inside
 * itself (the coinductive reading every Avro implementation uses), and a pair already found
 * incompatible is not reported a second time under another path. A reader union tries its
 * branches in a trial mode that counts issues without recording them; the memo remembers
 * which incompatible pairs were only seen in a trial so that the real report repeats them.
 */
#include "avro/avro_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* ---- prepared schemas ---- */

typedef struct cdef {
    const char *name; /* full name (arena) */
    json_t *obj;      /* the defining JSON object (borrowed from root) */
} cdef_t;

struct siphon_avro_compat_schema {
    siphon_arena_t arena;
    json_t *root;
    siphon_avro_type_t *type;
    cdef_t *defs;
    int ndefs, capdefs;
};

static const char *short_name(const char *full)
{
    const char *dot = strrchr(full, '.');
    return dot ? dot + 1 : full;
}

static int is_named(const siphon_avro_type_t *t)
{
    return t->kind == SIPHON_AVRO_RECORD || t->kind == SIPHON_AVRO_ENUM ||
           t->kind == SIPHON_AVRO_FIXED;
}

/* ns + "." + name in the arena (name alone when it has a dot or ns is empty). */
static char *join_name(siphon_arena_t *a, const char *ns, const char *name)
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

static int add_def(siphon_avro_compat_schema_t *cs, const char *name, json_t *obj)
{
    if (cs->ndefs == cs->capdefs) {
        int cap = cs->capdefs ? cs->capdefs * 2 : 16;
        cdef_t *p = realloc(cs->defs, (size_t)cap * sizeof(*p));
        if (!p)
            return SIPHON_ENOMEM;
        cs->defs = p;
        cs->capdefs = cap;
    }
    cs->defs[cs->ndefs].name = name;
    cs->defs[cs->ndefs].obj = obj;
    cs->ndefs++;
    return 0;
}

static json_t *find_def(const siphon_avro_compat_schema_t *cs, const char *fullname)
{
    for (int i = 0; i < cs->ndefs; i++)
        if (strcmp(cs->defs[i].name, fullname) == 0)
            return cs->defs[i].obj;
    return NULL;
}

/* Record every named type definition under j, computing full names exactly as the parser does
 * (a dotted name is full; else the "namespace" attribute, else the enclosing namespace). The
 * parser has accepted the same JSON, so the shapes are known to be right. */
static int collect_defs(siphon_avro_compat_schema_t *cs, json_t *j, const char *ns, int depth)
{
    int rc;
    if (depth > 4 * SIPHON_AVRO_MAX_DEPTH)
        return 0;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if ((rc = collect_defs(cs, json_array_get(j, i), ns, depth + 1)) < 0)
                return rc;
        return 0;
    }
    if (!json_is_object(j))
        return 0;
    const char *ts = json_string_value(json_object_get(j, "type"));
    if (!ts)
        return 0;
    if (!strcmp(ts, "record") || !strcmp(ts, "error") || !strcmp(ts, "enum") ||
        !strcmp(ts, "fixed")) {
        const char *name = json_string_value(json_object_get(j, "name"));
        if (!name)
            return 0;
        json_t *nsj = json_object_get(j, "namespace");
        const char *space = json_is_string(nsj) ? json_string_value(nsj) : ns;
        char *full = join_name(&cs->arena, space, name);
        if (!full || add_def(cs, full, j) < 0)
            return SIPHON_ENOMEM;
        const char *dot = strrchr(full, '.');
        char *inner = siphon_arena_strndup(&cs->arena, full, dot ? (size_t)(dot - full) : 0);
        if (!inner)
            return SIPHON_ENOMEM;
        json_t *fields = json_object_get(j, "fields");
        if (ts[0] != 'e' || !strcmp(ts, "error"))
            for (size_t i = 0; i < json_array_size(fields); i++)
                if ((rc = collect_defs(cs, json_object_get(json_array_get(fields, i), "type"),
                                       inner, depth + 1)) < 0)
                    return rc;
        return 0;
    }
    if (!strcmp(ts, "array"))
        return collect_defs(cs, json_object_get(j, "items"), ns, depth + 1);
    if (!strcmp(ts, "map"))
        return collect_defs(cs, json_object_get(j, "values"), ns, depth + 1);
    return 0;
}

int siphon_avro_compat_schema_new(siphon_avro_compat_schema_t **out, const char *json, size_t len,
                                  const char *origin, char *errbuf, size_t errsize)
{
    siphon_avro_compat_schema_t *cs;
    json_error_t jerr;
    int rc;

    if (!out || !json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not read schema: no text");
    *out = NULL;
    if (!origin)
        origin = "<schema>";
    if (!(cs = calloc(1, sizeof(*cs))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", origin);
    siphon_arena_init(&cs->arena, 16 * 1024);
    cs->root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!cs->root) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "%s:%d:%d: invalid JSON: %s", origin,
                        jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1,
                        jerr.text);
        goto err;
    }
    if ((rc = siphon_avro__parse(&cs->type, cs->root, &cs->arena, 0, json, len, origin, errbuf,
                                 errsize)) < 0)
        goto err;
    if ((rc = collect_defs(cs, cs->root, "", 0)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "%s: out of memory", origin);
        goto err;
    }
    *out = cs;
    return 0;
err:
    siphon_avro_compat_schema_destroy(cs);
    return rc;
}

void siphon_avro_compat_schema_destroy(siphon_avro_compat_schema_t *cs)
{
    if (!cs)
        return;
    json_decref(cs->root);
    free(cs->defs);
    siphon_arena_destroy(&cs->arena);
    free(cs);
}

/* Field i of record t as JSON (NULL when unknown). */
static json_t *field_json(const siphon_avro_compat_schema_t *cs, const siphon_avro_type_t *t,
                          int i)
{
    json_t *def = find_def(cs, t->name);
    return def ? json_array_get(json_object_get(def, "fields"), (size_t)i) : NULL;
}

/* Does the reader's named type r accept the writer's named type w by name? Unqualified names
 * equal, or w's full name among r's aliases (an alias without a dot is in r's namespace). */
static int names_match(const siphon_avro_compat_schema_t *rs, const siphon_avro_type_t *r,
                       const siphon_avro_type_t *w)
{
    if (strcmp(short_name(r->name), short_name(w->name)) == 0)
        return 1;
    json_t *def = find_def(rs, r->name);
    json_t *aliases = def ? json_object_get(def, "aliases") : NULL;
    const char *dot = strrchr(r->name, '.');
    size_t nsl = dot ? (size_t)(dot - r->name) : 0;
    for (size_t i = 0; i < json_array_size(aliases); i++) {
        const char *a = json_string_value(json_array_get(aliases, i));
        if (!a)
            continue;
        if (strchr(a, '.') || nsl == 0) {
            if (strcmp(a, w->name) == 0)
                return 1;
        } else if (strlen(w->name) == nsl + 1 + strlen(a) &&
                   strncmp(w->name, r->name, nsl) == 0 && w->name[nsl] == '.' &&
                   strcmp(w->name + nsl + 1, a) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Can a value of writer kind w be read as reader kind r (same, or a promotion)? */
static int kinds_ok(siphon_avro_kind_t r, siphon_avro_kind_t w)
{
    if (r == w)
        return 1;
    switch (w) {
    case SIPHON_AVRO_INT:
        return r == SIPHON_AVRO_LONG || r == SIPHON_AVRO_FLOAT || r == SIPHON_AVRO_DOUBLE;
    case SIPHON_AVRO_LONG: return r == SIPHON_AVRO_FLOAT || r == SIPHON_AVRO_DOUBLE;
    case SIPHON_AVRO_FLOAT: return r == SIPHON_AVRO_DOUBLE;
    case SIPHON_AVRO_STRING: return r == SIPHON_AVRO_BYTES;
    case SIPHON_AVRO_BYTES: return r == SIPHON_AVRO_STRING;
    default: return 0;
    }
}

/* Does the JSON value v fit type t as a default? (The specification's default rules: a union's
 * default belongs to its first branch; bytes and fixed are strings.) */
static int default_ok(const siphon_avro_type_t *t, json_t *v, int depth)
{
    if (!v || depth > 4 * SIPHON_AVRO_MAX_DEPTH)
        return 0;
    switch (t->kind) {
    case SIPHON_AVRO_NULL: return json_is_null(v);
    case SIPHON_AVRO_BOOLEAN: return json_is_boolean(v);
    case SIPHON_AVRO_INT:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case SIPHON_AVRO_LONG: return json_is_integer(v);
    case SIPHON_AVRO_FLOAT:
    case SIPHON_AVRO_DOUBLE: return json_is_number(v);
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_STRING: return json_is_string(v);
    case SIPHON_AVRO_FIXED:
        return json_is_string(v); /* code points, one per byte; length not checked by readers */
    case SIPHON_AVRO_ENUM:
        if (json_is_string(v))
            for (int i = 0; i < t->nsymbols; i++)
                if (strcmp(t->symbols[i], json_string_value(v)) == 0)
                    return 1;
        return 0;
    case SIPHON_AVRO_ARRAY:
        if (!json_is_array(v))
            return 0;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!default_ok(t->items, json_array_get(v, i), depth + 1))
                return 0;
        return 1;
    case SIPHON_AVRO_MAP: {
        const char *k;
        json_t *m;
        if (!json_is_object(v))
            return 0;
        json_object_foreach(v, k, m) {
            if (!default_ok(t->values, m, depth + 1))
                return 0;
        }
        return 1;
    }
    case SIPHON_AVRO_RECORD:
        if (!json_is_object(v))
            return 0;
        for (int i = 0; i < t->nfields; i++) {
            json_t *m = json_object_get(v, t->fields[i].name);
            if (!m ? !t->fields[i].has_default : !default_ok(t->fields[i].type, m, depth + 1))
                return 0;
        }
        return 1;
    case SIPHON_AVRO_UNION:
        return t->nbranches > 0 && default_ok(t->branches[0], v, depth + 1);
    }
    return 0;
}

/* ---- results ---- */

void siphon_avro_compat_result_free(siphon_avro_compat_result_t *res)
{
    if (!res)
        return;
    for (int i = 0; i < res->nissues; i++) {
        free(res->issues[i].path);
        free(res->issues[i].reason);
        free(res->issues[i].context);
    }
    free(res->issues);
    memset(res, 0, sizeof(*res));
}

int siphon_avro_compat_result_add(siphon_avro_compat_result_t *res, const char *path,
                                  const char *reason, const char *context)
{
    if (!res || !path || !reason)
        return SIPHON_EINVAL;
    if (res->nissues == res->cap) {
        int cap = res->cap ? res->cap * 2 : 8;
        siphon_avro_compat_issue_t *p = realloc(res->issues, (size_t)cap * sizeof(*p));
        if (!p)
            return SIPHON_ENOMEM;
        res->issues = p;
        res->cap = cap;
    }
    siphon_avro_compat_issue_t *is = &res->issues[res->nissues];
    is->path = strdup(path);
    is->reason = strdup(reason);
    is->context = context ? strdup(context) : NULL;
    if (!is->path || !is->reason || (context && !is->context)) {
        free(is->path);
        free(is->reason);
        free(is->context);
        return SIPHON_ENOMEM;
    }
    res->nissues++;
    return 0;
}

int siphon_avro_compat_result_format(siphon_buf_t *out, const siphon_avro_compat_result_t *res,
                                     const char *indent)
{
    if (!out || !res)
        return 0;
    for (int i = 0; i < res->nissues; i++) {
        const siphon_avro_compat_issue_t *is = &res->issues[i];
        if (siphon_buf_printf(out, "%s%s%s%s: %s\n", indent ? indent : "",
                              is->context ? is->context : "", is->context ? ": " : "", is->path,
                              is->reason) < 0)
            return SIPHON_ENOMEM;
    }
    return 0;
}

/* ---- modes ---- */

static const char *const MODE_NAMES[] = {
    [SIPHON_COMPAT_BACKWARD] = "BACKWARD",
    [SIPHON_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [SIPHON_COMPAT_FORWARD] = "FORWARD",
    [SIPHON_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [SIPHON_COMPAT_FULL] = "FULL",
    [SIPHON_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
    [SIPHON_COMPAT_NONE] = "NONE",
};
#define NMODES ((int)(sizeof(MODE_NAMES) / sizeof(MODE_NAMES[0])))

const char *siphon_avro_compat_mode_name(siphon_avro_compat_mode_t mode)
{
    if ((int)mode < 0 || (int)mode >= NMODES)
        return "?";
    return MODE_NAMES[mode];
}

int siphon_avro_compat_mode_parse(siphon_avro_compat_mode_t *out, const char *name, char *errbuf,
                                  size_t errsize)
{
    char norm[32];
    size_t n = name ? strlen(name) : 0;
    if (name && n < sizeof(norm)) {
        for (size_t i = 0; i <= n; i++)
            norm[i] = name[i] == '-' ? '_' : name[i];
        for (int m = 0; m < NMODES; m++)
            if (strcasecmp(norm, MODE_NAMES[m]) == 0) {
                *out = (siphon_avro_compat_mode_t)m;
                return 0;
            }
    }
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "unknown compatibility mode '%s' (expected one of: BACKWARD, "
                      "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE, "
                      "NONE)", name ? name : "");
}

/* ---- the check ---- */

enum { MEMO_BUSY = 1, MEMO_OK, MEMO_BAD };

typedef struct memo {
    const siphon_avro_type_t *r, *w;
    int state;
    int reported; /* MEMO_BAD: its issues are in the result (not only seen in a trial) */
} memo_t;

typedef struct cctx {
    const siphon_avro_compat_schema_t *rs, *ws;
    siphon_avro_compat_result_t *res;
    const char *context;
    char path[2048];
    size_t plen;
    int trial; /* > 0: count issues, record nothing */
    int oom;
    memo_t *memo;
    int nmemo, capmemo;
} cctx_t;

static size_t path_push(cctx_t *c, const char *fmt, const char *s)
{
    size_t mark = c->plen;
    if (c->plen < sizeof(c->path)) {
        int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, s);
        if (n > 0)
            c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n
                                                              : sizeof(c->path) - c->plen - 1;
    }
    return mark;
}

static void path_pop(cctx_t *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

static int issue(cctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int issue(cctx_t *c, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    if (c->trial)
        return 1;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (siphon_avro_compat_result_add(c->res, c->plen ? c->path : "(root)", reason,
                                      c->context) < 0)
        c->oom = 1;
    return 1;
}

static memo_t *memo_find(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    for (int i = 0; i < c->nmemo; i++)
        if (c->memo[i].r == r && c->memo[i].w == w)
            return &c->memo[i];
    return NULL;
}

static memo_t *memo_add(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    if (c->nmemo == c->capmemo) {
        int cap = c->capmemo ? c->capmemo * 2 : 16;
        memo_t *p = realloc(c->memo, (size_t)cap * sizeof(*p));
        if (!p) {
            c->oom = 1;
            return NULL;
        }
        c->memo = p;
        c->capmemo = cap;
    }
    memo_t *m = &c->memo[c->nmemo++];
    m->r = r;
    m->w = w;
    m->state = MEMO_BUSY;
    m->reported = 0;
    return m;
}

#define DESC(t, buf) siphon_avro__type_describe((t), (buf), sizeof(buf))

static int check(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w);

/* Logical types, once the underlying kinds are known to resolve. */
static int check_logical(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    char rd[256], wd[256];
    if (r->logical == SIPHON_AVRO_LT_NONE)
        return 0; /* the reader sees the underlying value, as it would for an unknown type */
    if (r->logical == w->logical) {
        if (r->logical != SIPHON_AVRO_LT_DECIMAL)
            return 0;
        int n = 0;
        if (r->scale != w->scale)
            n += issue(c, "the writer's decimal(%d,%d) cannot be read as decimal(%d,%d): the "
                          "scale differs, so every value would be read %s",
                       w->precision, w->scale, r->precision, r->scale,
                       r->scale > w->scale ? "too small" : "too large");
        else if (r->precision < w->precision)
            n += issue(c, "the writer's decimal(%d,%d) cannot be read as decimal(%d,%d): values "
                          "with more than %d digits would not fit the reader's precision",
                       w->precision, w->scale, r->precision, r->scale, r->precision);
        return n;
    }
    DESC(r, rd);
    DESC(w, wd);
    if (w->logical == SIPHON_AVRO_LT_NONE)
        return issue(c, "the writer's plain %s cannot be read as %s: its values were not written "
                        "as %s",
                     wd, rd, siphon_avro__logical_name(r->logical));
    return issue(c, "the writer's %s cannot be read as %s: the same value would mean something "
                    "else", wd, rd);
}

/* Enter a named pair. Returns 1 when the pair must be checked now (the memo entry is busy),
 * 0 when it is decided already (*n holds its count: 0 compatible or already reported). */
static int memo_enter(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w,
                      int *n)
{
    memo_t *m = memo_find(c, r, w);
    *n = 0;
    if (m) {
        if (m->state == MEMO_BUSY || m->state == MEMO_OK)
            return 0;
        if (m->reported || c->trial) {
            *n = 1;
            return 0;
        }
        m->state = MEMO_BUSY; /* only seen in a trial: check again to report */
        return 1;
    }
    return memo_add(c, r, w) ? 1 : 0;
}

static void memo_leave(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w,
                       int n)
{
    memo_t *m = memo_find(c, r, w);
    if (!m)
        return;
    m->state = n ? MEMO_BAD : MEMO_OK;
    m->reported = n && !c->trial;
}

static int check_record(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    int n = 0;
    for (int i = 0; i < r->nfields; i++) {
        const siphon_avro_field_t *rf = &r->fields[i];
        json_t *rfj = field_json(c->rs, r, i);
        json_t *aliases = rfj ? json_object_get(rfj, "aliases") : NULL;
        int wi = -1;
        for (int k = 0; k < w->nfields && wi < 0; k++)
            if (strcmp(w->fields[k].name, rf->name) == 0)
                wi = k;
        for (size_t a = 0; a < json_array_size(aliases) && wi < 0; a++) {
            const char *al = json_string_value(json_array_get(aliases, a));
            for (int k = 0; al && k < w->nfields && wi < 0; k++)
                if (strcmp(w->fields[k].name, al) == 0)
                    wi = k;
        }
        size_t mark = path_push(c, ".%s", rf->name);
        if (wi >= 0) {
            n += check(c, rf->type, w->fields[wi].type);
        } else if (!rf->has_default) {
            n += issue(c, "the reader requires field %s (it has no default) but the writer does "
                          "not write it%s",
                       rf->name, json_array_size(aliases) ? " (nor a field named by its aliases)"
                                                          : "");
        } else if (!default_ok(rf->type, json_object_get(rfj, "default"), 0)) {
            char rd[256];
            DESC(rf->type, rd);
            n += issue(c, "the writer does not write field %s and the reader's default for it "
                          "does not fit its type %s%s",
                       rf->name, rd,
                       rf->type->kind == SIPHON_AVRO_UNION
                           ? " (a union's default must fit its first branch)"
                           : "");
        }
        path_pop(c, mark);
    }
    return n;
}

static int check_enum(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    char missing[512];
    size_t o = 0;
    int nmissing = 0;
    missing[0] = '\0';
    for (int i = 0; i < w->nsymbols; i++) {
        int found = 0;
        for (int k = 0; k < r->nsymbols && !found; k++)
            found = strcmp(r->symbols[k], w->symbols[i]) == 0;
        if (found)
            continue;
        nmissing++;
        if (o < sizeof(missing) - 8) {
            int m = snprintf(missing + o, sizeof(missing) - o, "%s%s", o ? ", " : "",
                             w->symbols[i]);
            o = m > 0 && (size_t)m < sizeof(missing) - o ? o + (size_t)m : sizeof(missing) - 1;
        }
    }
    if (!nmissing)
        return 0;
    json_t *def = find_def(c->rs, r->name);
    const char *dflt = def ? json_string_value(json_object_get(def, "default")) : NULL;
    for (int k = 0; dflt && k < r->nsymbols; k++)
        if (strcmp(r->symbols[k], dflt) == 0)
            return 0; /* unknown symbols read as the default */
    return issue(c, "the writer's enum %s has symbol%s %s that the reader's enum %s lacks, and "
                    "the reader's enum has no default to read %s as",
                 w->name, nmissing > 1 ? "s" : "", missing, r->name,
                 nmissing > 1 ? "them" : "it");
}

/* Both not unions, kinds may differ. from_union: w is a branch of a writer union. */
static int check_plain(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w,
                       int from_union)
{
    char rd[256], wd[256];
    int n = 0;
    size_t mark;
    if (!kinds_ok(r->kind, w->kind)) {
        DESC(r, rd);
        DESC(w, wd);
        return issue(c, "the writer's %s%s cannot be read as %s", from_union ? "union branch " : "",
                     wd, rd);
    }
    if (is_named(r) && !names_match(c->rs, r, w)) {
        return issue(c, "the writer's %s %s is not the reader's %s %s: the names differ and the "
                        "reader lists no alias for it",
                     r->kind == SIPHON_AVRO_RECORD ? "record"
                     : r->kind == SIPHON_AVRO_ENUM ? "enum" : "fixed",
                     w->name, r->kind == SIPHON_AVRO_RECORD ? "record"
                              : r->kind == SIPHON_AVRO_ENUM ? "enum" : "fixed",
                     r->name);
    }
    switch (r->kind) {
    case SIPHON_AVRO_RECORD:
    case SIPHON_AVRO_ENUM:
        if (!memo_enter(c, r, w, &n))
            return n;
        n = r->kind == SIPHON_AVRO_RECORD ? check_record(c, r, w) : check_enum(c, r, w);
        memo_leave(c, r, w, n);
        return n;
    case SIPHON_AVRO_FIXED:
        if (r->size != w->size)
            return issue(c, "the writer's fixed %s has %d bytes, the reader's %s %d", w->name,
                         w->size, r->name, r->size);
        return check_logical(c, r, w);
    case SIPHON_AVRO_ARRAY:
        mark = path_push(c, "%s", "[]");
        n = check(c, r->items, w->items);
        path_pop(c, mark);
        return n;
    case SIPHON_AVRO_MAP:
        mark = path_push(c, "%s", "{}");
        n = check(c, r->values, w->values);
        path_pop(c, mark);
        return n;
    default:
        return check_logical(c, r, w);
    }
}

/* Could reader branch rb be the one that reads w (kind resolves, and names for named types)? */
static int candidate(cctx_t *c, const siphon_avro_type_t *rb, const siphon_avro_type_t *w)
{
    if (!kinds_ok(rb->kind, w->kind))
        return 0;
    return !is_named(rb) || names_match(c->rs, rb, w);
}

static int check_reader_union(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w,
                              int from_union)
{
    int best = -1, exact = -1;
    for (int i = 0; i < r->nbranches; i++) {
        const siphon_avro_type_t *rb = r->branches[i];
        if (!candidate(c, rb, w))
            continue;
        c->trial++;
        int n = check_plain(c, rb, w, from_union);
        c->trial--;
        if (n == 0)
            return 0;
        if (best < 0)
            best = i;
        if (exact < 0 && rb->kind == w->kind)
            exact = i;
    }
    if (best < 0) {
        char rd[512], wd[256];
        DESC(r, rd);
        DESC(w, wd);
        return issue(c, "the reader's %s has no branch that can read the writer's %s%s", rd,
                     from_union ? "union branch " : "", wd);
    }
    /* report what is wrong with the branch a reader would have used */
    return check_plain(c, r->branches[exact >= 0 ? exact : best], w, from_union);
}

static int check(cctx_t *c, const siphon_avro_type_t *r, const siphon_avro_type_t *w)
{
    if (w->kind == SIPHON_AVRO_UNION) {
        int n = 0;
        for (int i = 0; i < w->nbranches; i++) {
            const siphon_avro_type_t *wb = w->branches[i];
            n += r->kind == SIPHON_AVRO_UNION ? check_reader_union(c, r, wb, 1)
                                              : check_plain(c, r, wb, 1);
        }
        return n;
    }
    if (r->kind == SIPHON_AVRO_UNION)
        return check_reader_union(c, r, w, 0);
    return check_plain(c, r, w, 0);
}

/* Every named type of a graph (once each), for finding the focus. */
typedef struct named_list {
    const siphon_avro_type_t **v;
    int n, cap;
} named_list_t;

static int collect_named(named_list_t *l, const siphon_avro_type_t *t, int depth)
{
    if (depth > 4 * SIPHON_AVRO_MAX_DEPTH)
        return 0;
    if (is_named(t)) {
        for (int i = 0; i < l->n; i++)
            if (l->v[i] == t)
                return 0;
        if (l->n == l->cap) {
            int cap = l->cap ? l->cap * 2 : 16;
            const siphon_avro_type_t **p = realloc(l->v, (size_t)cap * sizeof(*p));
            if (!p)
                return SIPHON_ENOMEM;
            l->v = p;
            l->cap = cap;
        }
        l->v[l->n++] = t;
    }
    int rc = 0;
    switch (t->kind) {
    case SIPHON_AVRO_RECORD:
        for (int i = 0; i < t->nfields && rc == 0; i++)
            rc = collect_named(l, t->fields[i].type, depth + 1);
        return rc;
    case SIPHON_AVRO_ARRAY: return collect_named(l, t->items, depth + 1);
    case SIPHON_AVRO_MAP: return collect_named(l, t->values, depth + 1);
    case SIPHON_AVRO_UNION:
        for (int i = 0; i < t->nbranches && rc == 0; i++)
            rc = collect_named(l, t->branches[i], depth + 1);
        return rc;
    default: return 0;
    }
}

/* The focus record of the reader (full name) and the writer's record it reads. */
static int find_focus(cctx_t *c, const char *focus, const siphon_avro_type_t **rf,
                      const siphon_avro_type_t **wf)
{
    named_list_t rl = {0}, wl = {0};
    *rf = *wf = NULL;
    if (collect_named(&rl, c->rs->type, 0) < 0 || collect_named(&wl, c->ws->type, 0) < 0) {
        free(rl.v);
        free(wl.v);
        return SIPHON_ENOMEM;
    }
    for (int i = 0; i < rl.n && !*rf; i++)
        if (rl.v[i]->kind == SIPHON_AVRO_RECORD && strcmp(rl.v[i]->name, focus) == 0)
            *rf = rl.v[i];
    for (int pass = 0; pass < 2 && *rf && !*wf; pass++)
        for (int i = 0; i < wl.n && !*wf; i++)
            if (wl.v[i]->kind == SIPHON_AVRO_RECORD &&
                (pass == 0 ? strcmp(wl.v[i]->name, focus) == 0 : names_match(c->rs, *rf, wl.v[i])))
                *wf = wl.v[i];
    free(rl.v);
    free(wl.v);
    return 0;
}

int siphon_avro_compat_check(siphon_avro_compat_result_t *res,
                             const siphon_avro_compat_schema_t *reader,
                             const siphon_avro_compat_schema_t *writer, const char *focus,
                             const char *context)
{
    cctx_t *c;
    int rc = 0;
    if (!res || !reader || !writer)
        return SIPHON_EINVAL;
    if (!(c = calloc(1, sizeof(*c))))
        return SIPHON_ENOMEM;
    c->rs = reader;
    c->ws = writer;
    c->res = res;
    c->context = context;
    if (focus) {
        const siphon_avro_type_t *rf, *wf;
        if ((rc = find_focus(c, focus, &rf, &wf)) < 0)
            goto out;
        if (rf && wf) {
            path_push(c, "%s", short_name(rf->name));
            check_plain(c, rf, wf, 0);
            path_pop(c, 0);
        }
    }
    const siphon_avro_type_t *r = reader->type, *w = writer->type;
    path_push(c, "%s", is_named(r) ? short_name(r->name) : "(root)");
    check(c, r, w);
    rc = c->oom ? SIPHON_ENOMEM : 0;
out:
    free(c->memo);
    free(c);
    return rc;
}

int siphon_avro_compat_check_mode(siphon_avro_compat_result_t *res,
                                  siphon_avro_compat_mode_t mode,
                                  const siphon_avro_compat_schema_t *next,
                                  const siphon_avro_compat_schema_t *const *prev,
                                  const char *const *labels, int nprev, const char *focus)
{
    int backward = mode == SIPHON_COMPAT_BACKWARD || mode == SIPHON_COMPAT_BACKWARD_TRANSITIVE ||
                   mode == SIPHON_COMPAT_FULL || mode == SIPHON_COMPAT_FULL_TRANSITIVE;
    int forward = mode == SIPHON_COMPAT_FORWARD || mode == SIPHON_COMPAT_FORWARD_TRANSITIVE ||
                  mode == SIPHON_COMPAT_FULL || mode == SIPHON_COMPAT_FULL_TRANSITIVE;
    int transitive = mode == SIPHON_COMPAT_BACKWARD_TRANSITIVE ||
                     mode == SIPHON_COMPAT_FORWARD_TRANSITIVE ||
                     mode == SIPHON_COMPAT_FULL_TRANSITIVE;
    int rc;
    if (!res || !next || (nprev > 0 && !prev))
        return SIPHON_EINVAL;
    for (int i = nprev - 1; i >= 0 && (transitive || i == nprev - 1); i--) {
        char ctx[256], lab[32];
        const char *label = labels && labels[i] ? labels[i] : NULL;
        if (!label) {
            snprintf(lab, sizeof(lab), "version %d", i + 1);
            label = lab;
        }
        if (backward) {
            snprintf(ctx, sizeof(ctx), "new schema reading data written with %s", label);
            if ((rc = siphon_avro_compat_check(res, next, prev[i], focus, ctx)) < 0)
                return rc;
        }
        if (forward) {
            snprintf(ctx, sizeof(ctx), "%s reading data written with the new schema", label);
            if ((rc = siphon_avro_compat_check(res, prev[i], next, focus, ctx)) < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- diff ---- */

typedef struct dctx {
    siphon_buf_t *out;
    const siphon_avro_compat_schema_t *a, *b;
    char path[2048];
    size_t plen;
    int oom;
    const siphon_avro_type_t **seen; /* pairs (a, b) of named types already compared */
    int nseen, capseen;
} dctx_t;

static void dline(dctx_t *d, char mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dline(dctx_t *d, char mark, const char *fmt, ...)
{
    char text[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (siphon_buf_printf(d->out, "%c %s: %s\n", mark, d->plen ? d->path : "(root)", text) < 0)
        d->oom = 1;
}

static size_t dpush(dctx_t *d, const char *fmt, const char *s)
{
    size_t mark = d->plen;
    int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, fmt, s);
    if (n > 0)
        d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n
                                                        : sizeof(d->path) - 1;
    return mark;
}

static void dpop(dctx_t *d, size_t mark)
{
    d->plen = mark;
    d->path[mark] = '\0';
}

/* JSON text of v (compact) into buf; "(none)" for NULL. */
static void json_text(json_t *v, char *buf, size_t size)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, size, "%s", s ? s : "(none)");
    free(s);
}

static int same_branch(const siphon_avro_compat_schema_t *bs, const siphon_avro_type_t *a,
                       const siphon_avro_type_t *b)
{
    if (a->kind != b->kind)
        return 0;
    return !is_named(a) || names_match(bs, b, a);
}

static void diff_type(dctx_t *d, const siphon_avro_type_t *a, const siphon_avro_type_t *b);

static void diff_record(dctx_t *d, const siphon_avro_type_t *a, const siphon_avro_type_t *b)
{
    char td[256], v1[512], v2[512];
    char *matched = calloc((size_t)(a->nfields ? a->nfields : 1), 1);
    if (!matched) {
        d->oom = 1;
        return;
    }
    for (int i = 0; i < b->nfields; i++) {
        const siphon_avro_field_t *bf = &b->fields[i];
        json_t *bfj = field_json(d->b, b, i);
        json_t *aliases = bfj ? json_object_get(bfj, "aliases") : NULL;
        int ai = -1;
        for (int k = 0; k < a->nfields && ai < 0; k++)
            if (strcmp(a->fields[k].name, bf->name) == 0)
                ai = k;
        for (size_t x = 0; x < json_array_size(aliases) && ai < 0; x++) {
            const char *al = json_string_value(json_array_get(aliases, x));
            for (int k = 0; al && k < a->nfields && ai < 0; k++)
                if (strcmp(a->fields[k].name, al) == 0 && !matched[k])
                    ai = k;
        }
        size_t mark = dpush(d, ".%s", bf->name);
        if (ai < 0) {
            DESC(bf->type, td);
            json_text(json_object_get(bfj, "default"), v2, sizeof(v2));
            dline(d, '+', "added, %s%s%s", td, bf->has_default ? ", default " : ", no default",
                  bf->has_default ? v2 : "");
        } else {
            const siphon_avro_field_t *af = &a->fields[ai];
            json_t *afj = field_json(d->a, a, ai);
            json_t *ad = afj ? json_object_get(afj, "default") : NULL;
            json_t *bd = bfj ? json_object_get(bfj, "default") : NULL;
            matched[ai] = 1;
            if (strcmp(af->name, bf->name) != 0)
                dline(d, '~', "renamed from %s (an alias of the new name)", af->name);
            json_text(ad, v1, sizeof(v1));
            json_text(bd, v2, sizeof(v2));
            if (ad && !bd)
                dline(d, '~', "default %s removed", v1);
            else if (!ad && bd)
                dline(d, '~', "default %s added", v2);
            else if (ad && bd && !json_equal(ad, bd))
                dline(d, '~', "default %s -> %s", v1, v2);
            json_t *aa = afj ? json_object_get(afj, "aliases") : NULL;
            /* a rename through an alias says it all; other alias changes are listed */
            if (strcmp(af->name, bf->name) == 0 &&
                !(aa ? aliases && json_equal(aa, aliases) : !aliases)) {
                json_text(aa, v1, sizeof(v1));
                json_text(aliases, v2, sizeof(v2));
                dline(d, '~', "aliases %s -> %s", v1, v2);
            }
            diff_type(d, af->type, bf->type);
        }
        dpop(d, mark);
    }
    for (int k = 0; k < a->nfields; k++) {
        if (matched[k])
            continue;
        size_t mark = dpush(d, ".%s", a->fields[k].name);
        DESC(a->fields[k].type, td);
        dline(d, '-', "removed, %s", td);
        dpop(d, mark);
    }
    free(matched);
}

static void diff_enum(dctx_t *d, const siphon_avro_type_t *a, const siphon_avro_type_t *b)
{
    char added[512] = "", removed[512] = "", v1[256], v2[256];
    size_t oa = 0, orr = 0;
    for (int pass = 0; pass < 2; pass++) {
        const siphon_avro_type_t *x = pass ? a : b, *y = pass ? b : a;
        char *buf = pass ? removed : added;
        size_t *o = pass ? &orr : &oa;
        for (int i = 0; i < x->nsymbols; i++) {
            int found = 0;
            for (int k = 0; k < y->nsymbols && !found; k++)
                found = strcmp(x->symbols[i], y->symbols[k]) == 0;
            if (!found && *o < 500) {
                int n = snprintf(buf + *o, 512 - *o, "%s%s", *o ? ", " : "", x->symbols[i]);
                *o = n > 0 && (size_t)n < 512 - *o ? *o + (size_t)n : 511;
            }
        }
    }
    if (oa)
        dline(d, '~', "enum %s: symbols added: %s", b->name, added);
    if (orr)
        dline(d, '~', "enum %s: symbols removed: %s", b->name, removed);
    if (!oa && !orr && a->nsymbols == b->nsymbols) {
        for (int i = 0; i < a->nsymbols; i++)
            if (strcmp(a->symbols[i], b->symbols[i]) != 0) {
                dline(d, '~', "enum %s: symbols reordered", b->name);
                break;
            }
    }
    json_t *ad = find_def(d->a, a->name), *bd = find_def(d->b, b->name);
    json_t *adf = ad ? json_object_get(ad, "default") : NULL;
    json_t *bdf = bd ? json_object_get(bd, "default") : NULL;
    if (!(adf ? bdf && json_equal(adf, bdf) : !bdf)) {
        json_text(adf, v1, sizeof(v1));
        json_text(bdf, v2, sizeof(v2));
        dline(d, '~', "enum %s: default %s -> %s", b->name, v1, v2);
    }
}

static void diff_named_header(dctx_t *d, const siphon_avro_type_t *a, const siphon_avro_type_t *b)
{
    char v1[512], v2[512];
    if (strcmp(a->name, b->name) != 0)
        dline(d, '~', "name %s -> %s", a->name, b->name);
    json_t *ad = find_def(d->a, a->name), *bd = find_def(d->b, b->name);
    json_t *aa = ad ? json_object_get(ad, "aliases") : NULL;
    json_t *ba = bd ? json_object_get(bd, "aliases") : NULL;
    if (!(aa ? ba && json_equal(aa, ba) : !ba)) {
        json_text(aa, v1, sizeof(v1));
        json_text(ba, v2, sizeof(v2));
        dline(d, '~', "aliases of %s %s -> %s", b->name, v1, v2);
    }
}

static void diff_type(dctx_t *d, const siphon_avro_type_t *a, const siphon_avro_type_t *b)
{
    char ad[512], bd[512];
    size_t mark;
    if (a->kind == SIPHON_AVRO_UNION || b->kind == SIPHON_AVRO_UNION) {
        DESC(a, ad);
        DESC(b, bd);
        if (strcmp(ad, bd) != 0)
            dline(d, '~', "type %s -> %s", ad, bd);
        /* look inside the branches both sides have (records change inside unions) */
        int na = a->kind == SIPHON_AVRO_UNION ? a->nbranches : 1;
        int nb = b->kind == SIPHON_AVRO_UNION ? b->nbranches : 1;
        for (int i = 0; i < nb; i++) {
            const siphon_avro_type_t *bb = b->kind == SIPHON_AVRO_UNION ? b->branches[i] : b;
            if (bb->kind != SIPHON_AVRO_RECORD && bb->kind != SIPHON_AVRO_ENUM &&
                bb->kind != SIPHON_AVRO_FIXED && bb->kind != SIPHON_AVRO_ARRAY &&
                bb->kind != SIPHON_AVRO_MAP)
                continue;
            for (int k = 0; k < na; k++) {
                const siphon_avro_type_t *ab = a->kind == SIPHON_AVRO_UNION ? a->branches[k] : a;
                if (same_branch(d->b, ab, bb)) {
                    diff_type(d, ab, bb);
                    break;
                }
            }
        }
        return;
    }
    if (a->kind != b->kind) {
        DESC(a, ad);
        DESC(b, bd);
        dline(d, '~', "type %s -> %s", ad, bd);
        return;
    }
    if (is_named(a)) {
        for (int i = 0; i < d->nseen; i += 2)
            if (d->seen[i] == a && d->seen[i + 1] == b)
                return;
        if (d->nseen + 2 > d->capseen) {
            int cap = d->capseen ? d->capseen * 2 : 32;
            const siphon_avro_type_t **p = realloc(d->seen, (size_t)cap * sizeof(*p));
            if (!p) {
                d->oom = 1;
                return;
            }
            d->seen = p;
            d->capseen = cap;
        }
        d->seen[d->nseen++] = a;
        d->seen[d->nseen++] = b;
        diff_named_header(d, a, b);
    }
    switch (a->kind) {
    case SIPHON_AVRO_RECORD: diff_record(d, a, b); return;
    case SIPHON_AVRO_ENUM: diff_enum(d, a, b); return;
    case SIPHON_AVRO_ARRAY:
        mark = dpush(d, "%s", "[]");
        diff_type(d, a->items, b->items);
        dpop(d, mark);
        return;
    case SIPHON_AVRO_MAP:
        mark = dpush(d, "%s", "{}");
        diff_type(d, a->values, b->values);
        dpop(d, mark);
        return;
    case SIPHON_AVRO_FIXED:
        if (a->size != b->size)
            dline(d, '~', "fixed %s: size %d -> %d", b->name, a->size, b->size);
        /* a fixed may carry a decimal */
        /* fall through */
    default:
        DESC(a, ad);
        DESC(b, bd);
        if (a->logical != b->logical ||
            (a->logical == SIPHON_AVRO_LT_DECIMAL &&
             (a->precision != b->precision || a->scale != b->scale)))
            dline(d, '~', "type %s -> %s", ad, bd);
        return;
    }
}

int siphon_avro_compat_diff(siphon_buf_t *out, const siphon_avro_compat_schema_t *a,
                            const siphon_avro_compat_schema_t *b)
{
    dctx_t *d;
    if (!out || !a || !b)
        return SIPHON_EINVAL;
    if (!(d = calloc(1, sizeof(*d))))
        return SIPHON_ENOMEM;
    d->out = out;
    d->a = a;
    d->b = b;
    dpush(d, "%s", is_named(b->type) ? short_name(b->type->name) : "(root)");
    diff_type(d, a->type, b->type);
    int rc = d->oom ? SIPHON_ENOMEM : 0;
    free(d->seen);
    free(d);
    return rc;
}
