/*
 * canonical.c - Parsing Canonical Form, CRC-64-AVRO fingerprints, the single-object header, and
 * writing parsed types back out as JSON.
 *
 * The canonical form (Avro specification 1.11, "Parsing Canonical Form for Schemas") is written
 * from the parsed type graph rather than by rewriting the JSON: the parser has already resolved
 * every name to its full name [FULLNAMES], turned {"type":"int"} into a node of kind int
 * [PRIMITIVES], decoded escapes [STRINGS] and integers [INTEGERS]; the writer keeps only name,
 * type, fields, symbols, items, values and size, in that order [STRIP, ORDER], with no
 * whitespace [WHITESPACE]. A named type is written in full the first time the walk meets it and
 * by its full name afterwards, which is where the original had to define and then reference it.
 *
 * The fingerprint is the specification's 64-bit Rabin fingerprint, computed bit by bit (eight
 * shifts per byte) instead of through a 256-entry table: it runs once per schema, and the
 * module keeps no global state.
 */
#include "avro/avro_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

uint64_t siphon_avro_fingerprint64(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t fp = CRC64_AVRO_EMPTY;
    for (size_t i = 0; i < len; i++) {
        fp ^= p[i];
        for (int k = 0; k < 8; k++)
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (fp & 1)));
    }
    return fp;
}

void siphon_avro_soe_header(uint8_t out[SIPHON_AVRO_SOE_HEADER_LEN], uint64_t fingerprint)
{
    out[0] = 0xC3;
    out[1] = 0x01;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(fingerprint >> (8 * i));
}

/* ---- JSON text ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

int siphon_avro__json_string(siphon_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (siphon_buf_reserve(out, len + 2) < 0 || siphon_buf_appendc(out, '"') < 0)
        return SIPHON_ENOMEM;
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        /* copy plain ASCII runs at once */
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i && siphon_buf_append(out, p + i, run - i) < 0)
            return SIPHON_ENOMEM;
        i = run;
        if (i >= len)
            break;
        unsigned char c = p[i];
        int rc = 0;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = siphon_buf_append(out, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            const char *shortesc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                                 : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            rc = shortesc ? siphon_buf_append(out, shortesc, 2) : siphon_buf_append(out, esc, 6);
            i++;
        } else {
            size_t n = utf8_len(p + i, len - i);
            if (n) {
                rc = siphon_buf_append(out, p + i, n);
                i += n;
            } else {
                rc = siphon_buf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD */
                i++;
            }
        }
        if (rc < 0)
            return SIPHON_ENOMEM;
    }
    return siphon_buf_appendc(out, '"');
}

/* ---- canonical form ---- */

typedef struct seen {
    const siphon_avro_type_t **v;
    int n, cap;
} seen_t;

static int seen_has(const seen_t *s, const siphon_avro_type_t *t)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == t)
            return 1;
    return 0;
}

static int seen_add(seen_t *s, const siphon_avro_type_t *t)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        const siphon_avro_type_t **p = realloc(s->v, (size_t)cap * sizeof(*p));
        if (!p)
            return SIPHON_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = t;
    return 0;
}

static int is_named(const siphon_avro_type_t *t)
{
    return t->kind == SIPHON_AVRO_RECORD || t->kind == SIPHON_AVRO_ENUM ||
           t->kind == SIPHON_AVRO_FIXED;
}

static const char *prim_name(siphon_avro_kind_t k)
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

#define PUT(lit) siphon_buf_append(out, lit, sizeof(lit) - 1)

static int canon(siphon_buf_t *out, const siphon_avro_type_t *t, seen_t *seen)
{
    int rc = 0;
    if (is_named(t)) {
        if (seen_has(seen, t))
            return siphon_avro__json_string(out, t->name, strlen(t->name));
        if (seen_add(seen, t) < 0)
            return SIPHON_ENOMEM;
        if (PUT("{\"name\":") < 0 || siphon_avro__json_string(out, t->name, strlen(t->name)) < 0)
            return SIPHON_ENOMEM;
    }
    switch (t->kind) {
    case SIPHON_AVRO_RECORD:
        if (PUT(",\"type\":\"record\",\"fields\":[") < 0)
            return SIPHON_ENOMEM;
        for (int i = 0; i < t->nfields; i++) {
            const siphon_avro_field_t *f = &t->fields[i];
            if ((i && siphon_buf_appendc(out, ',') < 0) || PUT("{\"name\":") < 0 ||
                siphon_avro__json_string(out, f->name, strlen(f->name)) < 0 ||
                PUT(",\"type\":") < 0 || (rc = canon(out, f->type, seen)) < 0 ||
                siphon_buf_appendc(out, '}') < 0)
                return SIPHON_ENOMEM;
        }
        return PUT("]}");
    case SIPHON_AVRO_ENUM:
        if (PUT(",\"type\":\"enum\",\"symbols\":[") < 0)
            return SIPHON_ENOMEM;
        for (int i = 0; i < t->nsymbols; i++)
            if ((i && siphon_buf_appendc(out, ',') < 0) ||
                siphon_avro__json_string(out, t->symbols[i], strlen(t->symbols[i])) < 0)
                return SIPHON_ENOMEM;
        return PUT("]}");
    case SIPHON_AVRO_FIXED:
        return siphon_buf_printf(out, ",\"type\":\"fixed\",\"size\":%d}", t->size);
    case SIPHON_AVRO_ARRAY:
        if (PUT("{\"type\":\"array\",\"items\":") < 0 || canon(out, t->items, seen) < 0)
            return SIPHON_ENOMEM;
        return siphon_buf_appendc(out, '}');
    case SIPHON_AVRO_MAP:
        if (PUT("{\"type\":\"map\",\"values\":") < 0 || canon(out, t->values, seen) < 0)
            return SIPHON_ENOMEM;
        return siphon_buf_appendc(out, '}');
    case SIPHON_AVRO_UNION:
        if (siphon_buf_appendc(out, '[') < 0)
            return SIPHON_ENOMEM;
        for (int i = 0; i < t->nbranches; i++)
            if ((i && siphon_buf_appendc(out, ',') < 0) || canon(out, t->branches[i], seen) < 0)
                return SIPHON_ENOMEM;
        return siphon_buf_appendc(out, ']');
    default:
        return siphon_buf_printf(out, "\"%s\"", prim_name(t->kind));
    }
}

int siphon_avro__canonical_append(siphon_buf_t *out, const siphon_avro_type_t *t)
{
    seen_t seen = {0};
    int rc = canon(out, t, &seen) < 0 ? SIPHON_ENOMEM : 0;
    free(seen.v);
    return rc;
}

int siphon_avro_canonical_form(char **out, const char *json, size_t len, char *errbuf,
                               size_t errsize)
{
    siphon_arena_t arena;
    siphon_buf_t buf = {0};
    json_error_t jerr;
    json_t *root = NULL;
    siphon_avro_type_t *t;
    int rc;

    if (!out || !json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not compute canonical form: no schema text");
    *out = NULL;
    siphon_arena_init(&arena, 8 * 1024);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "<schema>:%d:%d: invalid JSON: %s",
                        jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1,
                        jerr.text);
        goto out;
    }
    if ((rc = siphon_avro__parse(&t, root, &arena, 0, json, len, "<schema>", errbuf, errsize)) <
        0)
        goto out;
    if (siphon_avro__canonical_append(&buf, t) < 0 || siphon_buf_appendc(&buf, '\0') < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    *out = (char *)buf.data; /* the caller frees it */
    buf.data = NULL;
    rc = 0;
out:
    siphon_buf_free(&buf);
    json_decref(root);
    siphon_arena_destroy(&arena);
    return rc;
}

/* ---- types back to JSON (generated schemas) ---- */

static json_t *to_json(const siphon_avro_type_t *t, const char *ns, seen_t *seen);

static int set_new(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *to_json(const siphon_avro_type_t *t, const char *ns, seen_t *seen)
{
    json_t *o = NULL;
    char inner[512];
    if (is_named(t)) {
        if (seen_has(seen, t))
            return json_string(t->name);
        if (seen_add(seen, t) < 0)
            return NULL;
        siphon_avro__namespace_of(t->name, inner, sizeof(inner));
        if (!(o = json_object()) || set_new(o, "type", json_string(prim_name(t->kind))) < 0 ||
            set_new(o, "name", json_string(t->name)) < 0)
            goto fail;
        /* a full name without a dot inside a namespace would be read as ns.name */
        if (!strchr(t->name, '.') && ns && *ns &&
            set_new(o, "namespace", json_string("")) < 0)
            goto fail;
    }
    switch (t->kind) {
    case SIPHON_AVRO_RECORD: {
        json_t *fields = json_array();
        if (set_new(o, "fields", fields) < 0)
            goto fail;
        for (int i = 0; i < t->nfields; i++) {
            const siphon_avro_field_t *f = &t->fields[i];
            json_t *fo = json_object();
            if (!fo || json_array_append_new(fields, fo) < 0 ||
                set_new(fo, "name", json_string(f->name)) < 0 ||
                set_new(fo, "type", to_json(f->type, inner, seen)) < 0 ||
                (f->doc && set_new(fo, "doc", json_string(f->doc)) < 0))
                goto fail;
        }
        return o;
    }
    case SIPHON_AVRO_ENUM: {
        json_t *syms = json_array();
        if (set_new(o, "symbols", syms) < 0)
            goto fail;
        for (int i = 0; i < t->nsymbols; i++)
            if (json_array_append_new(syms, json_string(t->symbols[i])) < 0)
                goto fail;
        return o;
    }
    case SIPHON_AVRO_FIXED:
        if (set_new(o, "size", json_integer(t->size)) < 0)
            goto fail;
        break;
    case SIPHON_AVRO_ARRAY:
    case SIPHON_AVRO_MAP: {
        int arr = t->kind == SIPHON_AVRO_ARRAY;
        if (!(o = json_object()) || set_new(o, "type", json_string(prim_name(t->kind))) < 0 ||
            set_new(o, arr ? "items" : "values", to_json(arr ? t->items : t->values, ns, seen)) <
                0)
            goto fail;
        return o;
    }
    case SIPHON_AVRO_UNION: {
        json_t *a = json_array();
        if (!a)
            return NULL;
        for (int i = 0; i < t->nbranches; i++)
            if (json_array_append_new(a, to_json(t->branches[i], ns, seen)) < 0) {
                json_decref(a);
                return NULL;
            }
        return a;
    }
    default:
        if (t->logical == SIPHON_AVRO_LT_NONE)
            return json_string(prim_name(t->kind));
        if (!(o = json_object()) || set_new(o, "type", json_string(prim_name(t->kind))) < 0)
            goto fail;
        break;
    }
    /* primitives and fixed with a logical type */
    if (t->logical != SIPHON_AVRO_LT_NONE) {
        if (set_new(o, "logicalType", json_string(siphon_avro__logical_name(t->logical))) < 0)
            goto fail;
        if (t->logical == SIPHON_AVRO_LT_DECIMAL &&
            (set_new(o, "precision", json_integer(t->precision)) < 0 ||
             set_new(o, "scale", json_integer(t->scale)) < 0))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

json_t *siphon_avro__type_to_json(const siphon_avro_type_t *t, const char *ns)
{
    seen_t seen = {0};
    json_t *j = to_json(t, ns, &seen);
    free(seen.v);
    return j;
}

void siphon_avro__type_describe(const siphon_avro_type_t *t, char *buf, size_t size)
{
    const char *lt = siphon_avro__logical_name(t->logical);
    if (size == 0)
        return;
    switch (t->kind) {
    case SIPHON_AVRO_RECORD:
    case SIPHON_AVRO_ENUM:
        snprintf(buf, size, "%s %s", prim_name(t->kind), t->name);
        return;
    case SIPHON_AVRO_FIXED:
        if (t->logical == SIPHON_AVRO_LT_DECIMAL)
            snprintf(buf, size, "fixed %s(%d) (decimal(%d,%d))", t->name, t->size, t->precision,
                     t->scale);
        else
            snprintf(buf, size, "fixed %s(%d)", t->name, t->size);
        return;
    case SIPHON_AVRO_ARRAY:
    case SIPHON_AVRO_MAP: {
        char inner[128];
        siphon_avro__type_describe(t->kind == SIPHON_AVRO_ARRAY ? t->items : t->values, inner,
                                   sizeof(inner));
        snprintf(buf, size, "%s of %s", prim_name(t->kind), inner);
        return;
    }
    case SIPHON_AVRO_UNION: {
        size_t o = (size_t)snprintf(buf, size, "union [");
        for (int i = 0; i < t->nbranches && o < size; i++) {
            char inner[128];
            siphon_avro__type_describe(t->branches[i], inner, sizeof(inner));
            o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", inner);
        }
        if (o < size)
            snprintf(buf + o, size - o, "]");
        return;
    }
    default:
        if (t->logical == SIPHON_AVRO_LT_DECIMAL)
            snprintf(buf, size, "%s (decimal(%d,%d))", prim_name(t->kind), t->precision,
                     t->scale);
        else if (lt)
            snprintf(buf, size, "%s (%s)", prim_name(t->kind), lt);
        else
            snprintf(buf, size, "%s", prim_name(t->kind));
        return;
    }
}
