/*
 * yamlx.c - node kinds and the key check shared by the config and mapping readers (see
 * yamlx.h).
 */
#include "yamlx/yamlx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int siphon_yamlx_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *siphon_yamlx_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        if (siphon_yamlx_is_null(n))
            return "nothing";
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "a string" : "a quoted string";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

size_t siphon_yamlx_distance(const char *a, const char *b)
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

static int fail(siphon_yamlx_err_t *err, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(siphon_yamlx_err_t *err, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->mark = mark;
    return -1;
}

int siphon_yamlx_walk(yaml_document_t *doc, yaml_node_t *map, const char *where,
                      const siphon_yamlx_key_t *keys, int nkeys, yaml_node_t **vals,
                      yaml_node_t **knodes, siphon_yamlx_err_t *err)
{
    yaml_node_t *own[SIPHON_YAMLX_MAX_KEYS];
    char expected[512] = "";
    size_t o = 0;

    if (!knodes)
        knodes = own;
    for (int i = 0; i < nkeys; i++) {
        vals[i] = knodes[i] = NULL;
        o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s%s", i ? ", " : "",
                              keys[i].key);
        if (o >= sizeof(expected))
            o = sizeof(expected) - 1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail(err, k->start_mark, "a key %s is %s (expected one of: %s)", where,
                        siphon_yamlx_kind(k), expected);
        const char *ks = (const char *)k->data.scalar.value;
        int idx = -1;
        for (int i = 0; i < nkeys; i++)
            if (strlen(keys[i].key) == k->data.scalar.length && strcmp(keys[i].key, ks) == 0)
                idx = i;
        if (idx < 0) {
            const char *best = NULL;
            size_t bestd = 3;
            for (int i = 0; i < nkeys; i++) {
                size_t d = siphon_yamlx_distance(ks, keys[i].key);
                if (d < bestd) {
                    bestd = d;
                    best = keys[i].key;
                }
            }
            char hint[96] = "";
            if (best)
                snprintf(hint, sizeof(hint), ", did you mean '%s'?", best);
            return fail(err, k->start_mark, "unknown key '%.40s%s' %s%s (expected one of: %s)",
                        ks, k->data.scalar.length > 40 ? "..." : "", where, hint, expected);
        }
        if (vals[idx])
            return fail(err, k->start_mark,
                        "duplicate key '%s' %s, first given at line %zu (expected each key "
                        "once)",
                        keys[idx].key, where, knodes[idx]->start_mark.line + 1);
        vals[idx] = v;
        knodes[idx] = k;
    }
    for (int i = 0; i < nkeys; i++)
        if (keys[i].required && !vals[i])
            return fail(err, map->start_mark, "missing required key '%s' %s (expected %s)",
                        keys[i].key, where, keys[i].required);
    return 0;
}
