/*
 * odbc_wm.c - per-table watermarks and the ODBC position text.
 *
 * A position is compact JSON holding every polled table's watermark, e.g.
 *     {"public.oehdr":{"b":"2024-05-01 10:00:00.000000"},"public.oeitem":{"c":["1234"]}}
 * "b" is the exclusive lower bound of the next sweep of a timestamp table, "h" the upper bound
 * of the sweep in progress and "c" the ordering values of the last row read (the cursor). It is
 * what the offsets file stores (under the acknowledgement rule) and what open() resumes from.
 * A table missing from the text starts from nothing (a table added to the config).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

void siphon_odbc__wm_clear(odbc_wm_t *wm)
{
    if (!wm)
        return;
    free(wm->base);
    free(wm->hi);
    for (int i = 0; i < wm->ncur; i++)
        free(wm->cur[i]);
    free(wm->cur);
    memset(wm, 0, sizeof(*wm));
}

static int dup_opt(char **dst, const char *s)
{
    *dst = NULL;
    if (s && !(*dst = strdup(s)))
        return SIPHON_ENOMEM;
    return 0;
}

int siphon_odbc__wm_copy(odbc_wm_t *dst, const odbc_wm_t *src)
{
    siphon_odbc__wm_clear(dst);
    if (dup_opt(&dst->base, src->base) < 0 || dup_opt(&dst->hi, src->hi) < 0)
        goto oom;
    if (src->ncur) {
        if (!(dst->cur = calloc((size_t)src->ncur, sizeof(char *))))
            goto oom;
        dst->ncur = src->ncur;
        for (int i = 0; i < src->ncur; i++)
            if (dup_opt(&dst->cur[i], src->cur[i]) < 0)
                goto oom;
    }
    return 0;
oom:
    siphon_odbc__wm_clear(dst);
    return SIPHON_ENOMEM;
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int siphon_odbc__wm_equal(const odbc_wm_t *a, const odbc_wm_t *b)
{
    if (!str_eq(a->base, b->base) || !str_eq(a->hi, b->hi) || a->ncur != b->ncur)
        return 0;
    for (int i = 0; i < a->ncur; i++)
        if (!str_eq(a->cur[i], b->cur[i]))
            return 0;
    return 1;
}

static json_t *wm_json(const odbc_wm_t *wm)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (wm->base && json_object_set_new(o, "b", json_string(wm->base)) < 0)
        goto oom;
    if (wm->hi && json_object_set_new(o, "h", json_string(wm->hi)) < 0)
        goto oom;
    if (wm->ncur) {
        json_t *a = json_array();
        if (!a || json_object_set_new(o, "c", a) < 0)
            goto oom;
        for (int i = 0; i < wm->ncur; i++)
            if (json_array_append_new(a, wm->cur[i] ? json_string(wm->cur[i]) : json_null()) < 0)
                goto oom;
    }
    return o;
oom:
    json_decref(o);
    return NULL;
}

char *siphon_odbc__pos_text(const char *const *tables, const odbc_wm_t *const *wms, int n)
{
    json_t *root = json_object();
    char *text = NULL;
    if (!root)
        return NULL;
    for (int i = 0; i < n; i++) {
        json_t *o = wm_json(wms[i]);
        if (!o || json_object_set_new(root, tables[i], o) < 0)
            goto out;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(root);
    return text;
}

static int wm_from_json(odbc_wm_t *wm, json_t *o, const char *table, char *errbuf,
                        size_t errsize)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "b") == 0 || strcmp(key, "h") == 0) {
            if (!json_is_string(v))
                goto bad;
            char **dst = key[0] == 'b' ? &wm->base : &wm->hi;
            free(*dst);
            if (!(*dst = strdup(json_string_value(v))))
                return SIPHON_ENOMEM;
        } else if (strcmp(key, "c") == 0) {
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 64)
                goto bad;
            size_t n = json_array_size(v);
            if (!(wm->cur = calloc(n, sizeof(char *))))
                return SIPHON_ENOMEM;
            wm->ncur = (int)n;
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(v, i);
                if (json_is_null(e))
                    continue;
                if (!json_is_string(e))
                    goto bad;
                if (!(wm->cur[i] = strdup(json_string_value(e))))
                    return SIPHON_ENOMEM;
            }
        } else {
            goto bad;
        }
    }
    return 0;
bad:
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "could not parse the watermark of table %s in the stored position: "
                      "unexpected \"%s\" (expected \"b\" and \"h\" timestamps and a \"c\" array "
                      "of strings; fix or remove the offsets file)",
                      table, key);
}

static json_t *load(const char *text, char *errbuf, size_t errsize)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root || !json_is_object(root)) {
        siphon_err(errbuf, errsize, SIPHON_EINVAL,
                   "could not parse the stored ODBC position \"%.80s\": %s (expected a JSON "
                   "object of table watermarks; is the offsets file from another source type?)",
                   text, root ? "not an object" : jerr.text);
        json_decref(root);
        return NULL;
    }
    return root;
}

int siphon_odbc__pos_lookup(const char *text, const char *table, odbc_wm_t *wm, int *found,
                            char *errbuf, size_t errsize)
{
    memset(wm, 0, sizeof(*wm));
    *found = 0;
    json_t *root = load(text, errbuf, errsize);
    if (!root)
        return SIPHON_EINVAL;
    int rc = 0;
    json_t *o = json_object_get(root, table);
    if (o) {
        if (!json_is_object(o))
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not parse the watermark of table %s in the stored position: "
                            "not an object (fix or remove the offsets file)", table);
        else
            rc = wm_from_json(wm, o, table, errbuf, errsize);
        if (rc < 0)
            siphon_odbc__wm_clear(wm);
        else
            *found = 1;
    }
    json_decref(root);
    return rc;
}

int siphon_odbc__pos_check(const char *text, char *errbuf, size_t errsize)
{
    json_t *root = load(text, errbuf, errsize);
    if (!root)
        return SIPHON_EINVAL;
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(root, key, v)
    {
        odbc_wm_t wm = {0};
        if (!json_is_object(v))
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not parse the watermark of table %s in the stored position: "
                            "not an object (fix or remove the offsets file)", key);
        else
            rc = wm_from_json(&wm, v, key, errbuf, errsize);
        siphon_odbc__wm_clear(&wm);
        if (rc < 0)
            break;
    }
    json_decref(root);
    return rc;
}
