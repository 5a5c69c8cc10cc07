/*
 * history.c - the schema history: every version of every stream's schemas Siphon has
 * published, kept in a JSON file beside the offsets file, and the startup check that refuses
 * an incompatible change within a major version and records a compatible one as the next
 * minor version.
 *
 * The file (format 1):
 *   {"format": 1, "connector": "erp-orders",
 *    "streams": {"sales_order.v1": {"entity": "sales_order", "major": 1, "versions": [
 *       {"minor": 0, "fingerprint": "<16 hex digits>", "key_fingerprint": "<16 hex digits>",
 *        "canonical": "<envelope canonical form>", "schema": "<.avsc text>",
 *        "value_schema": "<envelope JSON>", "key_schema": "<key JSON>",
 *        "published_at": "2024-01-31T10:15:00Z", "compatibility": "BACKWARD"}, ...]}}}
 * Schemas are kept as text, exactly as published. Loading checks what can be checked (minor
 * numbers 0, 1, 2... in order; each fingerprint is the CRC-64-AVRO of the canonical form of
 * its schema) so a damaged or hand-edited file is refused rather than trusted.
 *
 * Design: the history is a value in memory (streams sorted by name, versions oldest first);
 * siphon_schema_history_check() reads it and, when asked, appends; only
 * siphon_schema_history_save() touches the file, atomically (temp file, fsync, rename, fsync of
 * the folder: a crash leaves the old file or the new one). siphon_schema_history_sync() checks
 * every stream before it records any, so a refused start leaves the file as it was.
 */
#include "avro/avro_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"

typedef struct hstream {
    char *name;   /* "sales_order.v1" */
    char *entity;
    int major;
    siphon_schema_version_t *v; /* strings malloc'ed, owned */
    int n, cap;
} hstream_t;

struct siphon_schema_history {
    char *path;
    char *connector;
    hstream_t *s; /* sorted by name */
    int n, cap;
};

/* ---- memory ---- */

static void version_free(siphon_schema_version_t *v)
{
    free((char *)v->canonical);
    free((char *)v->schema_json);
    free((char *)v->value_json);
    free((char *)v->key_json);
    free((char *)v->published_at);
    free((char *)v->mode);
}

void siphon_schema_history_destroy(siphon_schema_history_t *hist)
{
    if (!hist)
        return;
    for (int i = 0; i < hist->n; i++) {
        for (int k = 0; k < hist->s[i].n; k++)
            version_free(&hist->s[i].v[k]);
        free(hist->s[i].v);
        free(hist->s[i].name);
        free(hist->s[i].entity);
    }
    free(hist->s);
    free(hist->path);
    free(hist->connector);
    free(hist);
}

static hstream_t *find_stream(const siphon_schema_history_t *hist, const char *name)
{
    for (int i = 0; i < hist->n; i++)
        if (strcmp(hist->s[i].name, name) == 0)
            return &hist->s[i];
    return NULL;
}

/* The stream named `name`, added (in name order) when missing. NULL when out of memory. */
static hstream_t *get_stream(siphon_schema_history_t *hist, const char *name, const char *entity,
                             int major)
{
    hstream_t *hs = find_stream(hist, name);
    if (hs)
        return hs;
    if (hist->n == hist->cap) {
        int cap = hist->cap ? hist->cap * 2 : 8;
        hstream_t *p = realloc(hist->s, (size_t)cap * sizeof(*p));
        if (!p)
            return NULL;
        hist->s = p;
        hist->cap = cap;
    }
    int at = 0;
    while (at < hist->n && strcmp(hist->s[at].name, name) < 0)
        at++;
    hstream_t nw = {0};
    nw.name = strdup(name);
    nw.entity = strdup(entity);
    nw.major = major;
    if (!nw.name || !nw.entity) {
        free(nw.name);
        free(nw.entity);
        return NULL;
    }
    memmove(&hist->s[at + 1], &hist->s[at], (size_t)(hist->n - at) * sizeof(*hist->s));
    hist->s[at] = nw;
    hist->n++;
    return &hist->s[at];
}

/* Append a version (takes ownership of v's strings, also on failure). */
static int add_version(hstream_t *hs, siphon_schema_version_t *v)
{
    if (hs->n == hs->cap) {
        int cap = hs->cap ? hs->cap * 2 : 4;
        siphon_schema_version_t *p = realloc(hs->v, (size_t)cap * sizeof(*p));
        if (!p) {
            version_free(v);
            return SIPHON_ENOMEM;
        }
        hs->v = p;
        hs->cap = cap;
    }
    hs->v[hs->n++] = *v;
    return 0;
}

/* ---- paths ---- */

int siphon_schema_history_path(char *buf, size_t size, const char *offsets_path,
                               const char *connector)
{
    char name[256];
    size_t n = 0;
    if (!buf || !offsets_path || !connector || !*connector)
        return SIPHON_EINVAL;
    for (const char *p = connector; *p && n < sizeof(name) - 1; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-' || (ch == '.' && n > 0);
        name[n++] = ok ? ch : '_';
    }
    name[n] = '\0';
    const char *slash = strrchr(offsets_path, '/');
    int len;
    if (slash)
        len = snprintf(buf, size, "%.*s/%s.schemas.json", (int)(slash - offsets_path),
                       offsets_path, name);
    else
        len = snprintf(buf, size, "%s.schemas.json", name);
    return len < 0 || (size_t)len >= size ? SIPHON_EINVAL : 0;
}

/* ---- loading ---- */

static int bad_file(char *errbuf, size_t errsize, const char *path, const char *what)
{
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "could not read schema history %s: %s (this file records the schemas "
                      "Siphon has published: restore it from a backup; removing it forgets "
                      "them, and the next start records the current schemas as new versions)",
                      path, what);
}

static int parse_fp(const char *s, uint64_t *out)
{
    char *end;
    if (!s || strlen(s) != 16)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static char *dup_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

/* Canonical form and fingerprint of a schema text; 0 or negative. *canon freed by the caller. */
static int fingerprint_of(const char *json, char **canon, uint64_t *fp, char *errbuf,
                          size_t errsize)
{
    int rc = siphon_avro_canonical_form(canon, json, strlen(json), errbuf, errsize);
    if (rc < 0)
        return rc;
    *fp = siphon_avro_fingerprint64(*canon, strlen(*canon));
    return 0;
}

static int load_version(siphon_schema_version_t *v, json_t *o, const char *stream, int index,
                        int major, const char *path, char *errbuf, size_t errsize)
{
    char what[512], tmp[512];
    char *canon = NULL;
    uint64_t fp;
    memset(v, 0, sizeof(*v));
    json_t *mj = json_object_get(o, "minor");
    v->major = major;
    v->minor = json_is_integer(mj) ? (int)json_integer_value(mj) : -1;
    v->canonical = dup_str(o, "canonical");
    v->schema_json = dup_str(o, "schema");
    v->value_json = dup_str(o, "value_schema");
    v->key_json = dup_str(o, "key_schema");
    v->published_at = dup_str(o, "published_at");
    v->mode = dup_str(o, "compatibility");
    if (!json_is_object(o) || v->minor != index || !v->canonical || !v->schema_json ||
        !v->value_json || !v->key_json || !v->published_at || !v->mode ||
        parse_fp(json_string_value(json_object_get(o, "fingerprint")), &v->fingerprint) < 0 ||
        parse_fp(json_string_value(json_object_get(o, "key_fingerprint")),
                 &v->key_fingerprint) < 0) {
        snprintf(what, sizeof(what),
                 "version %d of stream %s is incomplete (expected minor %d, fingerprint, "
                 "key_fingerprint, canonical, schema, value_schema, key_schema, published_at, "
                 "compatibility)", index, stream, index);
        goto bad;
    }
    if (fingerprint_of(v->value_json, &canon, &fp, tmp, sizeof(tmp)) < 0 ||
        strcmp(canon, v->canonical) != 0 || fp != v->fingerprint) {
        snprintf(what, sizeof(what),
                 "version %d.%d of stream %s: the fingerprint or canonical form does not match "
                 "its value_schema", major, index, stream);
        goto bad;
    }
    free(canon);
    canon = NULL;
    if (fingerprint_of(v->key_json, &canon, &fp, tmp, sizeof(tmp)) < 0 ||
        fp != v->key_fingerprint) {
        snprintf(what, sizeof(what),
                 "version %d.%d of stream %s: key_fingerprint does not match its key_schema",
                 major, index, stream);
        goto bad;
    }
    free(canon);
    return 0;
bad:
    free(canon);
    version_free(v);
    return bad_file(errbuf, errsize, path, what);
}

int siphon_schema_history_load(siphon_schema_history_t **out, const char *path,
                               const char *connector, char *errbuf, size_t errsize)
{
    siphon_schema_history_t *hist;
    json_t *root = NULL;
    json_error_t jerr;
    char what[512];
    int rc = 0;

    if (!out || !path || !connector)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not load schema history: no path or connector");
    *out = NULL;
    if (!(hist = calloc(1, sizeof(*hist))) || !(hist->path = strdup(path)) ||
        !(hist->connector = strdup(connector))) {
        siphon_schema_history_destroy(hist);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    if (access(path, F_OK) != 0) {
        if (errno != ENOENT) {
            rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                            "could not read schema history %s: %s", path, strerror(errno));
            goto err;
        }
        *out = hist;
        return 0;
    }
    if (!(root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr))) {
        snprintf(what, sizeof(what), "line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        rc = bad_file(errbuf, errsize, path, what);
        goto err;
    }
    json_t *fmt = json_object_get(root, "format");
    const char *name = json_string_value(json_object_get(root, "connector"));
    json_t *streams = json_object_get(root, "streams");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != 1 || !name ||
        !json_is_object(streams)) {
        rc = bad_file(errbuf, errsize, path,
                      "expected {\"format\": 1, \"connector\": ..., \"streams\": {...}}");
        goto err;
    }
    if (strcmp(name, connector) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "schema history %s belongs to connector '%s', not '%s' (give each "
                        "connector its own offsets.path)", path, name, connector);
        goto err;
    }
    const char *sname;
    json_t *so;
    json_object_foreach(streams, sname, so) {
        const char *entity = json_string_value(json_object_get(so, "entity"));
        json_t *mj = json_object_get(so, "major");
        json_t *versions = json_object_get(so, "versions");
        char expect[300];
        int major = json_is_integer(mj) ? (int)json_integer_value(mj) : 0;
        if (entity)
            snprintf(expect, sizeof(expect), "%s.v%d", entity, major);
        if (!entity || major < 1 || !json_is_array(versions) || strcmp(expect, sname) != 0) {
            snprintf(what, sizeof(what),
                     "stream %s: expected {\"entity\": ..., \"major\": N, \"versions\": [...]} "
                     "named <entity>.v<major>", sname);
            rc = bad_file(errbuf, errsize, path, what);
            goto err;
        }
        hstream_t *hs = get_stream(hist, sname, entity, major);
        if (!hs) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto err;
        }
        for (size_t i = 0; i < json_array_size(versions); i++) {
            siphon_schema_version_t v;
            if ((rc = load_version(&v, json_array_get(versions, i), sname, (int)i, major, path,
                                   errbuf, errsize)) < 0)
                goto err;
            if ((rc = add_version(hs, &v)) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
                goto err;
            }
        }
    }
    json_decref(root);
    *out = hist;
    return 0;
err:
    json_decref(root);
    siphon_schema_history_destroy(hist);
    return rc;
}

/* ---- saving ---- */

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static json_t *history_json(const siphon_schema_history_t *hist)
{
    json_t *streams = json_object();
    json_t *root = json_pack("{s:i, s:s, s:o}", "format", 1, "connector", hist->connector,
                             "streams", streams);
    if (!root)
        return NULL;
    for (int i = 0; i < hist->n; i++) {
        const hstream_t *hs = &hist->s[i];
        json_t *versions = json_array();
        json_t *so = json_pack("{s:s, s:i, s:o}", "entity", hs->entity, "major", hs->major,
                               "versions", versions);
        if (!so || json_object_set_new(streams, hs->name, so) < 0)
            goto fail;
        for (int k = 0; k < hs->n; k++) {
            const siphon_schema_version_t *v = &hs->v[k];
            char fp[17], kfp[17];
            snprintf(fp, sizeof(fp), "%016" PRIx64, v->fingerprint);
            snprintf(kfp, sizeof(kfp), "%016" PRIx64, v->key_fingerprint);
            json_t *vo = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "minor",
                                   v->minor, "fingerprint", fp, "key_fingerprint", kfp,
                                   "canonical", v->canonical, "schema", v->schema_json,
                                   "value_schema", v->value_json, "key_schema", v->key_json,
                                   "published_at", v->published_at, "compatibility", v->mode);
            if (!vo || json_array_append_new(versions, vo) < 0)
                goto fail;
        }
    }
    return root;
fail:
    json_decref(root);
    return NULL;
}

int siphon_schema_history_save(siphon_schema_history_t *hist, char *errbuf, size_t errsize)
{
    char tmp[4096];
    char *text = NULL;
    json_t *root = NULL;
    int fd = -1, rc = 0;

    if (!hist)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not save schema history: none");
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", hist->path) >= sizeof(tmp))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "schema history path too long: %s",
                          hist->path);
    if (!(root = history_json(hist)) ||
        !(text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    size_t len = strlen(text);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                        "could not create schema history file %s: %s (check the folder exists "
                        "and is writable)", tmp, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                            "could not write schema history file %s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync schema history file %s: %s",
                        tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, hist->path) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not rename %s to %s: %s", tmp,
                        hist->path, strerror(errno));
        goto out;
    }
    if (fsync_dir_of(hist->path) != 0)
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync the folder of %s: %s",
                        hist->path, strerror(errno));
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(text);
    json_decref(root);
    return rc;
}

/* ---- reading ---- */

int siphon_schema_history_stream_count(const siphon_schema_history_t *hist)
{
    return hist ? hist->n : 0;
}

const char *siphon_schema_history_stream_name(const siphon_schema_history_t *hist, int i)
{
    return hist && i >= 0 && i < hist->n ? hist->s[i].name : NULL;
}

int siphon_schema_history_version_count(const siphon_schema_history_t *hist, const char *stream)
{
    const hstream_t *hs = hist && stream ? find_stream(hist, stream) : NULL;
    return hs ? hs->n : 0;
}

const siphon_schema_version_t *siphon_schema_history_version(const siphon_schema_history_t *hist,
                                                             const char *stream, int i)
{
    const hstream_t *hs = hist && stream ? find_stream(hist, stream) : NULL;
    return hs && i >= 0 && i < hs->n ? &hs->v[i] : NULL;
}

/* ---- checking ---- */

void siphon_schema_outcome_free(siphon_schema_outcome_t *oc)
{
    if (oc)
        siphon_avro_compat_result_free(&oc->issues);
}

/* Same JSON apart from whitespace and member order? */
static int json_same(const char *a, const char *b)
{
    json_error_t jerr;
    json_t *ja = json_loads(a, JSON_DECODE_ANY, &jerr);
    json_t *jb = json_loads(b, JSON_DECODE_ANY, &jerr);
    int same = ja && jb ? json_equal(ja, jb) : strcmp(a, b) == 0;
    json_decref(ja);
    json_decref(jb);
    return same;
}

static const char *short_name(const char *full)
{
    const char *dot = strrchr(full, '.');
    return dot ? dot + 1 : full;
}

/* Record the stream's current schemas as version major.minor. */
static int record_version(siphon_schema_history_t *hist, const siphon_avro_stream_t *st,
                          const char *name, int minor, siphon_avro_compat_mode_t mode,
                          char *errbuf, size_t errsize)
{
    siphon_schema_version_t v = {0};
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    hstream_t *hs = get_stream(hist, name, st->sch->entity, st->sch->major);
    if (!hs)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    char *canon = NULL;
    uint64_t fp;
    int rc = fingerprint_of(st->value_json, &canon, &fp, errbuf, errsize);
    if (rc < 0)
        return rc;
    v.major = st->sch->major;
    v.minor = minor;
    v.fingerprint = st->value_fp;
    v.key_fingerprint = st->key_fp;
    v.canonical = canon;
    v.schema_json = strdup(st->sch->json);
    v.value_json = strdup(st->value_json);
    v.key_json = strdup(st->key_json);
    v.published_at = strdup(when);
    v.mode = strdup(siphon_avro_compat_mode_name(mode));
    if (!v.schema_json || !v.value_json || !v.key_json || !v.published_at || !v.mode) {
        version_free(&v);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    if (add_version(hs, &v) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    return 0;
}

int siphon_schema_history_check(siphon_schema_history_t *hist, const siphon_avro_stream_t *st,
                                siphon_avro_compat_mode_t mode, int record,
                                siphon_schema_outcome_t *out, char *errbuf, size_t errsize)
{
    siphon_avro_compat_schema_t *next = NULL;
    siphon_avro_compat_schema_t **prev = NULL;
    char (*labels)[32] = NULL;
    const char **labelp = NULL;
    int nprev = 0, rc = 0;

    if (!hist || !st || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not check schema: no stream");
    memset(out, 0, sizeof(*out));
    const siphon_schema_t *sch = st->sch;
    if (!sch->entity || sch->major < 1)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not check schema %s against its history: it was not loaded "
                          "from a file named <entity>.v<major>.avsc", sch->record->name);
    snprintf(out->stream, sizeof(out->stream), "%s.v%d", sch->entity, sch->major);
    out->major = sch->major;
    hstream_t *hs = find_stream(hist, out->stream);
    if (!hs || hs->n == 0) {
        out->verdict = SIPHON_SCHEMA_NEW;
        out->minor = 0;
        return record ? record_version(hist, st, out->stream, 0, mode, errbuf, errsize) : 0;
    }
    const siphon_schema_version_t *latest = &hs->v[hs->n - 1];
    if (json_same(latest->value_json, st->value_json) &&
        json_same(latest->key_json, st->key_json)) {
        out->verdict = SIPHON_SCHEMA_UNCHANGED;
        out->minor = latest->minor;
        return 0;
    }
    if (mode != SIPHON_COMPAT_NONE) {
        int transitive = mode == SIPHON_COMPAT_BACKWARD_TRANSITIVE ||
                         mode == SIPHON_COMPAT_FORWARD_TRANSITIVE ||
                         mode == SIPHON_COMPAT_FULL_TRANSITIVE;
        int first = transitive ? 0 : hs->n - 1;
        nprev = hs->n - first;
        prev = calloc((size_t)nprev, sizeof(*prev));
        labels = calloc((size_t)nprev, sizeof(*labels));
        labelp = calloc((size_t)nprev, sizeof(*labelp));
        if (!prev || !labels || !labelp) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        char origin[400];
        snprintf(origin, sizeof(origin), "<envelope schema of %s>", out->stream);
        if ((rc = siphon_avro_compat_schema_new(&next, st->value_json, strlen(st->value_json),
                                                origin, errbuf, errsize)) < 0)
            goto out;
        for (int i = 0; i < nprev; i++) {
            const siphon_schema_version_t *v = &hs->v[first + i];
            snprintf(labels[i], sizeof(labels[i]), "%d.%d", v->major, v->minor);
            labelp[i] = labels[i];
            snprintf(origin, sizeof(origin), "%s: envelope schema of %s version %s", hist->path,
                     out->stream, labels[i]);
            if ((rc = siphon_avro_compat_schema_new(&prev[i], v->value_json,
                                                    strlen(v->value_json), origin, errbuf,
                                                    errsize)) < 0)
                goto out;
        }
        if ((rc = siphon_avro_compat_check_mode(&out->issues, mode, next,
                                                (const siphon_avro_compat_schema_t *const *)prev,
                                                labelp, nprev, sch->record->name)) < 0) {
            rc = siphon_err(errbuf, errsize, rc, "out of memory");
            goto out;
        }
        /* the key must stay byte for byte the same within a major version */
        for (int i = nprev - 1; i >= 0; i--) {
            const siphon_schema_version_t *v = &hs->v[first + i];
            char reason[512], ctx[64];
            if (v->key_fingerprint == st->key_fp)
                continue;
            snprintf(ctx, sizeof(ctx), "key of %s", labels[i]);
            snprintf(reason, sizeof(reason),
                     "the key schema changed (fingerprint %016" PRIx64 " -> %016" PRIx64
                     "): the same entity would get other key bytes, so its events would go to "
                     "another partition and compaction would keep both keys; keep the key "
                     "fields and their types within a major version",
                     v->key_fingerprint, st->key_fp);
            if (siphon_avro_compat_result_add(&out->issues, short_name(st->key_type->name),
                                              reason, ctx) < 0) {
                rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    if (out->issues.nissues > 0) {
        out->verdict = SIPHON_SCHEMA_INCOMPATIBLE;
        out->minor = latest->minor;
    } else {
        out->verdict = SIPHON_SCHEMA_COMPATIBLE;
        out->minor = latest->minor + 1;
        if (record)
            rc = record_version(hist, st, out->stream, out->minor, mode, errbuf, errsize);
    }
out:
    siphon_avro_compat_schema_destroy(next);
    for (int i = 0; prev && i < nprev; i++)
        siphon_avro_compat_schema_destroy(prev[i]);
    free(prev);
    free(labels);
    free(labelp);
    return rc;
}

int siphon_schema_history_sync(const char *path, const char *connector,
                               siphon_avro_compat_mode_t mode,
                               const siphon_avro_stream_t *const *streams, int nstreams,
                               int record, siphon_schema_outcome_t *outcomes, char *errbuf,
                               size_t errsize)
{
    siphon_schema_history_t *hist = NULL;
    siphon_schema_outcome_t *oc = outcomes;
    siphon_buf_t msg = {0};
    int rc, nbad = 0, nadd = 0;

    if (!path || !connector || (nstreams > 0 && !streams))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not check schemas: no history path, connector or streams");
    if (!oc && nstreams > 0 && !(oc = calloc((size_t)nstreams, sizeof(*oc))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    if (outcomes)
        memset(outcomes, 0, (size_t)nstreams * sizeof(*outcomes));
    if ((rc = siphon_schema_history_load(&hist, path, connector, errbuf, errsize)) < 0)
        goto out;
    for (int i = 0; i < nstreams; i++) {
        if ((rc = siphon_schema_history_check(hist, streams[i], mode, 0, &oc[i], errbuf,
                                              errsize)) < 0)
            goto out;
        nbad += oc[i].verdict == SIPHON_SCHEMA_INCOMPATIBLE;
    }
    if (nbad) {
        siphon_buf_printf(&msg, "could not publish the schemas: %d stream%s changed "
                                "incompatibly (compatibility mode %s, history %s)",
                          nbad, nbad > 1 ? "s" : "", siphon_avro_compat_mode_name(mode), path);
        for (int i = 0; i < nstreams; i++) {
            if (oc[i].verdict != SIPHON_SCHEMA_INCOMPATIBLE)
                continue;
            siphon_buf_printf(&msg, "\nschema %s (%s) is not %s compatible with its published "
                                    "version %d.%d:\n",
                              oc[i].stream, streams[i]->sch->path,
                              siphon_avro_compat_mode_name(mode), oc[i].major, oc[i].minor);
            siphon_avro_compat_result_format(&msg, &oc[i].issues, "  ");
            if (msg.len && msg.data[msg.len - 1] == '\n')
                msg.len--;
        }
        const char *tail =
            "\nmake the change compatible (docs/schemas.md lists what is: for example give an "
            "added field a default), undo it, or publish it as a new major version: "
            "schemas/<entity>.v<next major>.avsc with a mapping of that version, which gets its "
            "own topic while the old version keeps flowing";
        size_t tl = strlen(tail);
        if (siphon_buf_appendc(&msg, '\0') < 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
            goto out;
        }
        if (errbuf && errsize) {
            const char *m = (const char *)msg.data;
            size_t ml = strlen(m);
            const char *more = "\n  ... (more: run `siphon schema check` to see them all)";
            if (ml + tl < errsize) {
                snprintf(errbuf, errsize, "%s%s", m, tail);
            } else if (errsize > strlen(more) + tl + 1) {
                size_t keep = errsize - strlen(more) - tl - 1;
                while (keep > 0 && m[keep] != '\n')
                    keep--; /* cut at a line */
                snprintf(errbuf, errsize, "%.*s%s%s", (int)keep, m, more, tail);
            } else {
                snprintf(errbuf, errsize, "%s", m);
            }
        }
        rc = SIPHON_EINVAL;
        goto out;
    }
    for (int i = 0; i < nstreams && record; i++) {
        const siphon_schema_outcome_t *o = &oc[i];
        switch (o->verdict) {
        case SIPHON_SCHEMA_NEW:
        case SIPHON_SCHEMA_COMPATIBLE:
            if ((rc = record_version(hist, streams[i], o->stream, o->minor, mode, errbuf,
                                     errsize)) < 0)
                goto out;
            nadd++;
            siphon_log(SIPHON_LOG_NOTICE, "schema", "%s: %s, published as version %d.%d%s%s",
                       o->stream,
                       o->verdict == SIPHON_SCHEMA_NEW ? "new stream" : "compatible change",
                       o->major, o->minor,
                       o->verdict == SIPHON_SCHEMA_COMPATIBLE ? " under " : "",
                       o->verdict == SIPHON_SCHEMA_COMPATIBLE ? siphon_avro_compat_mode_name(mode)
                                                              : "");
            break;
        case SIPHON_SCHEMA_UNCHANGED:
            siphon_log(SIPHON_LOG_INFO, "schema", "%s: unchanged since version %d.%d", o->stream,
                       o->major, o->minor);
            break;
        default: break;
        }
    }
    if (nadd && (rc = siphon_schema_history_save(hist, errbuf, errsize)) < 0)
        goto out;
    rc = 0;
out:
    if (!outcomes && oc) {
        for (int i = 0; i < nstreams; i++)
            siphon_schema_outcome_free(&oc[i]);
        free(oc);
    }
    siphon_buf_free(&msg);
    siphon_schema_history_destroy(hist);
    return rc;
}
