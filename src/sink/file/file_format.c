/*
 * file_format.c - the parts of the Avro Object Container File format the file sink does itself
 * (file_int.h says why): the header, walking blocks to find where the last complete one ends,
 * recovering files a crash left behind, and the file record schema.
 *
 * Container file (Avro specification 1.11, "Object Container Files"):
 *   "Obj" 0x01, metadata map<bytes> (avro.schema, avro.codec, ...), 16-byte sync marker,
 *   then blocks: record count (long), byte size (long), the records (after the codec), sync.
 * A block is complete when its size bytes and its sync marker are all there: that is what
 * makes a crash-truncated file safe to cut.
 */
#include "sink/file/file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"

/* Keys and values of a header above this are taken as garbage, not allocated. */
#define META_MAX_LEN (64L << 20)

int siphon_file__put_long(siphon_buf_t *b, int64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z & ~(uint64_t)0x7f) {
        tmp[n++] = (uint8_t)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    tmp[n++] = (uint8_t)z;
    return siphon_buf_append(b, tmp, n);
}

int siphon_file__put_bytes(siphon_buf_t *b, const void *p, size_t n)
{
    if (siphon_file__put_long(b, (int64_t)n) < 0)
        return SIPHON_ENOMEM;
    return siphon_buf_append(b, p, n);
}

int siphon_file__header_build(siphon_buf_t *out, const char *schema_json, const char *codec,
                              const char *const *extra, const uint8_t sync[SIPHON_FILE_SYNC_LEN])
{
    int npairs = 2;
    for (const char *const *e = extra; e && e[0] && e[1]; e += 2)
        npairs++;
    if (siphon_buf_append(out, "Obj\x01", 4) < 0 || siphon_file__put_long(out, npairs) < 0 ||
        siphon_file__put_bytes(out, "avro.schema", 11) < 0 ||
        siphon_file__put_bytes(out, schema_json, strlen(schema_json)) < 0 ||
        siphon_file__put_bytes(out, "avro.codec", 10) < 0 ||
        siphon_file__put_bytes(out, codec, strlen(codec)) < 0)
        return SIPHON_ENOMEM;
    for (const char *const *e = extra; e && e[0] && e[1]; e += 2)
        if (siphon_file__put_bytes(out, e[0], strlen(e[0])) < 0 ||
            siphon_file__put_bytes(out, e[1], strlen(e[1])) < 0)
            return SIPHON_ENOMEM;
    if (siphon_file__put_long(out, 0) < 0 || siphon_buf_append(out, sync, SIPHON_FILE_SYNC_LEN) < 0)
        return SIPHON_ENOMEM;
    return 0;
}

/* Read a long; 0, or -1 at end of file / a varint longer than 10 bytes. */
static int get_long(FILE *f, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        int c = getc(f);
        if (c == EOF)
            return -1;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

/* Read length-prefixed bytes into a malloc'd NUL-terminated copy. */
static int get_bytes(FILE *f, char **out, size_t *len)
{
    int64_t n;
    if (get_long(f, &n) < 0 || n < 0 || n > META_MAX_LEN)
        return -1;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return -1;
    if (n && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        return -1;
    }
    p[n] = '\0';
    *out = p;
    *len = (size_t)n;
    return 0;
}

void siphon_file__header_free(siphon_file_header_t *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nmeta; i++) {
        free(h->meta[i].key);
        free(h->meta[i].value);
    }
    free(h->meta);
    memset(h, 0, sizeof(*h));
}

int siphon_file__header_read(FILE *f, siphon_file_header_t *h, char *errbuf, size_t errsize)
{
    char magic[4];
    memset(h, 0, sizeof(*h));
    if (fseeko(f, 0, SEEK_SET) != 0 || fread(magic, 1, 4, f) != 4 ||
        memcmp(magic, "Obj\x01", 4) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "not an Avro container file (it does not start with \"Obj\" 1)");
    for (;;) {
        int64_t count, size;
        if (get_long(f, &count) < 0)
            goto incomplete;
        if (count == 0)
            break;
        if (count < 0) {
            count = -count;
            if (get_long(f, &size) < 0)
                goto incomplete;
        }
        if (count > 4096)
            goto incomplete;
        siphon_file_meta_t *m = realloc(h->meta, (size_t)(h->nmeta + count) * sizeof(*m));
        if (!m)
            goto incomplete;
        h->meta = m;
        for (int64_t i = 0; i < count; i++) {
            siphon_file_meta_t *e = &h->meta[h->nmeta];
            size_t klen;
            if (get_bytes(f, &e->key, &klen) < 0)
                goto incomplete;
            if (get_bytes(f, &e->value, &e->len) < 0) {
                free(e->key);
                goto incomplete;
            }
            h->nmeta++;
        }
    }
    if (fread(h->sync, 1, SIPHON_FILE_SYNC_LEN, f) != SIPHON_FILE_SYNC_LEN)
        goto incomplete;
    h->data_offset = ftello(f);
    if (!siphon_file__meta(h, "avro.schema")) {
        siphon_file__header_free(h);
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "the container file header has no avro.schema");
    }
    return 0;
incomplete:
    siphon_file__header_free(h);
    return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                      "the container file header is incomplete or damaged");
}

const siphon_file_meta_t *siphon_file__meta(const siphon_file_header_t *h, const char *key)
{
    for (int i = 0; i < h->nmeta; i++)
        if (strcmp(h->meta[i].key, key) == 0)
            return &h->meta[i];
    return NULL;
}

int siphon_file__scan(FILE *f, const siphon_file_header_t *h, long long *good_end,
                      long long *nblocks, long long *nrecords, long long *tail)
{
    struct stat stt;
    if (fstat(fileno(f), &stt) != 0)
        return SIPHON_EIO;
    long long size = (long long)stt.st_size, end = h->data_offset;
    *nblocks = *nrecords = 0;
    if (fseeko(f, end, SEEK_SET) != 0)
        return SIPHON_EIO;
    while (end < size) {
        int64_t count, len;
        uint8_t sync[SIPHON_FILE_SYNC_LEN];
        if (get_long(f, &count) < 0 || get_long(f, &len) < 0 || count < 0 || len < 0)
            break;
        long long data = ftello(f);
        if (data < 0 || len > size - data || fseeko(f, len, SEEK_CUR) != 0 ||
            fread(sync, 1, sizeof(sync), f) != sizeof(sync) ||
            memcmp(sync, h->sync, sizeof(sync)) != 0)
            break;
        end = ftello(f);
        (*nblocks)++;
        *nrecords += count;
    }
    *good_end = end;
    *tail = size - end;
    clearerr(f);
    return 0;
}

int siphon_file__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* ---- recovery ---- */

/* Recover one leftover file: 1 kept (renamed), 0 removed, or a negative code. */
static int recover_one(const char *dir, const char *name, char *errbuf, size_t errsize)
{
    char tmp[4096], fin[4096];
    siphon_file_header_t h;
    long long good_end = 0, nblocks = 0, nrecords = 0, tail = 0;
    int rc, keep = 0;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(fin, sizeof(fin), "%s/%.*s", dir,
                         (int)(strlen(name) - strlen(SIPHON_FILE_TMP_SUFFIX) +
                               strlen(SIPHON_FILE_SUFFIX)),
                         name) >= sizeof(fin))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not recover %s/%s: the path is too long", dir, name);
    FILE *f = fopen(tmp, "r+b");
    if (!f)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s to recover it: %s", tmp,
                          strerror(errno));
    char why[256];
    if (siphon_file__header_read(f, &h, why, sizeof(why)) == 0) {
        rc = siphon_file__scan(f, &h, &good_end, &nblocks, &nrecords, &tail);
        siphon_file__header_free(&h);
        if (rc < 0) {
            fclose(f);
            return siphon_err(errbuf, errsize, SIPHON_EIO, "could not read %s to recover it: %s",
                              tmp, strerror(errno));
        }
        keep = nblocks > 0;
    }
    if (keep && (ftruncate(fileno(f), (off_t)good_end) != 0 || fsync(fileno(f)) != 0)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                        "could not cut %s after its last complete block (offset %lld): %s", tmp,
                        good_end, strerror(errno));
        fclose(f);
        return rc;
    }
    fclose(f);
    if (keep) {
        if (rename(tmp, fin) != 0)
            return siphon_err(errbuf, errsize, SIPHON_EIO, "could not rename %s to %s: %s", tmp,
                              fin, strerror(errno));
        siphon_log(SIPHON_LOG_NOTICE, "file",
                   "recovered %s left by an earlier run: kept %lld records in %lld complete "
                   "blocks as %s, dropped %lld bytes of an incomplete block (none of them had been "
                   "acknowledged)", tmp, nrecords, nblocks, fin, tail);
    } else {
        if (unlink(tmp) != 0)
            return siphon_err(errbuf, errsize, SIPHON_EIO, "could not remove %s: %s", tmp,
                              strerror(errno));
        siphon_log(SIPHON_LOG_NOTICE, "file",
                   "removed %s left by an earlier run: it held no complete block (nothing in it "
                   "had been acknowledged)", tmp);
    }
    return keep;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int recover_dir(const char *dir, int *recovered, int *removed, char *errbuf,
                       size_t errsize)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* not a folder (or gone): nothing of ours */
    struct dirent *de;
    int rc = 0, changed = 0;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, SIPHON_FILE_TMP_SUFFIX))
            continue;
        if ((rc = recover_one(dir, de->d_name, errbuf, errsize)) < 0)
            break;
        if (rc == 1)
            (*recovered)++;
        else
            (*removed)++;
        changed = 1;
        rc = 0;
    }
    closedir(d);
    if (rc == 0 && changed && siphon_file__fsync_dir(dir) < 0)
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync folder %s: %s", dir,
                        strerror(errno));
    return rc;
}

int siphon_file__recover(const char *root, int *recovered, int *removed, char *errbuf,
                         size_t errsize)
{
    *recovered = *removed = 0;
    DIR *d = opendir(root);
    if (!d)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not open folder %s: %s", root,
                          strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", root, de->d_name);
        struct stat st;
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if ((rc = recover_dir(sub, recovered, removed, errbuf, errsize)) < 0)
            break;
    }
    closedir(d);
    return rc;
}

/* ---- the file record schema ---- */

typedef struct names {
    char **v;
    int n;
} names_t;

static int names_has(const names_t *nm, const char *s)
{
    for (int i = 0; i < nm->n; i++)
        if (strcmp(nm->v[i], s) == 0)
            return 1;
    return 0;
}

static int names_add(names_t *nm, const char *s)
{
    char **v = realloc(nm->v, (size_t)(nm->n + 1) * sizeof(*v));
    if (!v)
        return SIPHON_ENOMEM;
    nm->v = v;
    if (!(nm->v[nm->n] = strdup(s)))
        return SIPHON_ENOMEM;
    nm->n++;
    return 0;
}

static void names_free(names_t *nm)
{
    for (int i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
}

static void full_name(char *out, size_t size, const char *name, const char *ns)
{
    if (strchr(name, '.') || !ns || !*ns)
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "%s.%s", ns, name);
}

/* Walk a schema node. collect: record the full names of the named types defined. Otherwise:
 * a definition of a name already in nm is replaced by a reference (its full name). Returns the
 * replacement for node (a new reference) or NULL to keep it; *rc gets SIPHON_ENOMEM on failure. */
static json_t *walk(json_t *node, const char *ns, names_t *nm, int collect, int *rc, int depth)
{
    if (depth > 64 || *rc)
        return NULL;
    if (json_is_array(node)) {
        size_t i;
        json_t *el;
        json_array_foreach(node, i, el) {
            json_t *r = walk(el, ns, nm, collect, rc, depth + 1);
            if (r && json_array_set_new(node, i, r) < 0)
                *rc = SIPHON_ENOMEM;
        }
        return NULL;
    }
    if (!json_is_object(node))
        return NULL;
    json_t *type = json_object_get(node, "type");
    if (!json_is_string(type)) {
        json_t *r = walk(type, ns, nm, collect, rc, depth + 1);
        if (r && json_object_set_new(node, "type", r) < 0)
            *rc = SIPHON_ENOMEM;
        return NULL;
    }
    const char *t = json_string_value(type);
    char inner_ns[1024];
    snprintf(inner_ns, sizeof(inner_ns), "%s", ns ? ns : "");
    if (!strcmp(t, "record") || !strcmp(t, "error") || !strcmp(t, "enum") || !strcmp(t, "fixed")) {
        const char *name = json_string_value(json_object_get(node, "name"));
        json_t *nsv = json_object_get(node, "namespace");
        const char *own_ns = json_is_string(nsv) ? json_string_value(nsv) : ns;
        char full[1024];
        if (!name)
            return NULL;
        full_name(full, sizeof(full), name, own_ns);
        if (!collect && names_has(nm, full))
            return json_string(full);
        if (collect && (*rc = names_add(nm, full)) < 0)
            return NULL;
        char *dot = strrchr(full, '.');
        snprintf(inner_ns, sizeof(inner_ns), "%.*s", dot ? (int)(dot - full) : 0, full);
    }
    if (!strcmp(t, "record") || !strcmp(t, "error")) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(node, "fields"), i, f) {
            json_t *r = walk(json_object_get(f, "type"), inner_ns, nm, collect, rc, depth + 1);
            if (r && json_object_set_new(f, "type", r) < 0)
                *rc = SIPHON_ENOMEM;
        }
    } else if (!strcmp(t, "array") || !strcmp(t, "map")) {
        const char *k = t[0] == 'a' ? "items" : "values";
        json_t *r = walk(json_object_get(node, k), ns, nm, collect, rc, depth + 1);
        if (r && json_object_set_new(node, k, r) < 0)
            *rc = SIPHON_ENOMEM;
    }
    return NULL;
}

int siphon_file__record_schema(char **out, const char *key_json, const char *value_json,
                               char *errbuf, size_t errsize)
{
    json_error_t jerr;
    names_t nm = {0};
    json_t *key = NULL, *val = NULL, *rec = NULL;
    int rc = 0;
    *out = NULL;
    key = json_loads(key_json, 0, &jerr);
    val = json_loads(value_json, 0, &jerr);
    const char *vname = val ? json_string_value(json_object_get(val, "name")) : NULL;
    if (!key || !val || !json_is_object(key) || !vname ||
        !json_is_string(json_object_get(key, "name"))) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not build the file schema: the %s schema is not an Avro record",
                        !key || !json_is_object(key) || !json_object_get(key, "name") ? "key"
                                                                                      : "value");
        goto out;
    }
    /* the envelope's namespace and short name */
    json_t *vnsj = json_object_get(val, "namespace");
    char vfull[1024], ns[1024], shortn[1024];
    full_name(vfull, sizeof(vfull), vname, json_is_string(vnsj) ? json_string_value(vnsj) : "");
    const char *dot = strrchr(vfull, '.');
    snprintf(ns, sizeof(ns), "%.*s", dot ? (int)(dot - vfull) : 0, vfull);
    snprintf(shortn, sizeof(shortn), "%s", dot ? dot + 1 : vfull);
    size_t sl = strlen(shortn);
    if (sl > 8 && strcmp(shortn + sl - 8, "Envelope") == 0)
        shortn[sl - 8] = '\0';

    walk(key, "", &nm, 1, &rc, 0);
    if (rc < 0)
        goto nomem;
    json_t *r = walk(val, "", &nm, 0, &rc, 0);
    if (rc < 0)
        goto nomem;
    if (r) { /* the key defines the envelope itself: not a siphon stream */
        json_decref(r);
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not build the file schema: the key and value schemas are the same "
                        "record %s", vfull);
        goto out;
    }
    char name[1100];
    snprintf(name, sizeof(name), "%sFileRecord", shortn);
    rec = json_pack("{s:s, s:s, s:s, s:[{s:s, s:[s,O], s:s}, {s:s, s:O, s:s}]}", "type", "record",
                    "name", name, "doc",
                    "one event as written by Siphon's file sink: the Kafka message key and value",
                    "fields", "name", "key", "type", "null", key, "doc",
                    "the entity key (null only for a truncate event)", "name", "event", "type",
                    val, "doc", "the change event (envelope)");
    if (!rec || (*ns && json_object_set_new(rec, "namespace", json_string(ns)) < 0))
        goto nomem;
    if (!(*out = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        goto nomem;
    rc = 0;
    goto out;
nomem:
    rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not build the file schema: out of memory");
out:
    names_free(&nm);
    json_decref(rec);
    json_decref(key);
    json_decref(val);
    return rc;
}
