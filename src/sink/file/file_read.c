/*
 * file_read.c - reading container files back (siphon tail --dir): records through avro-c's file
 * reader, rendered as JSON with Siphon's own decoder so logical types read as they were meant.
 *
 * A file the file sink wrote carries its stream's key and envelope schemas in the header
 * (siphon.key.schema, siphon.value.schema) with their fingerprints. The reader rebuilds the
 * stream from them: the entity record is the `before` branch of the envelope, the key fields
 * are the key record's fields; the rebuilt stream's fingerprints must equal the header's, else
 * (or for any other Avro file) avro-c renders the records itself. Each record's key and event
 * are re-serialized from avro-c's value and decoded by siphon_avro_stream_decode_json().
 */
#include "sink/file/file_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "avro/siphon_avro.h"
#include "core/error.h"
#include "core/log.h"

struct siphon_file_reader {
    char *path;
    char *topic;
    long long nrecords, index;
    avro_file_reader_t ar;
    avro_schema_t wschema;
    avro_value_iface_t *iface;
    avro_value_t rec;
    int have_rec;
    siphon_schema_t *entity;
    siphon_avro_stream_t *stream; /* NULL: avro-c renders records */
    uint64_t key_fp, value_fp;
    siphon_buf_t buf;
};

static int parse_fp(const siphon_file_meta_t *m, uint64_t *out)
{
    char *end;
    if (!m || m->len != 16)
        return -1;
    errno = 0;
    *out = strtoull(m->value, &end, 16);
    return errno || *end ? -1 : 0;
}

/* Rebuild the stream from the header's schemas. 0 when done; -1 to fall back to avro-c. */
static int rebuild_stream(siphon_file_reader_t *rd, const siphon_file_header_t *h)
{
    const siphon_file_meta_t *ks = siphon_file__meta(h, SIPHON_FILE_META_KEY_SCHEMA);
    const siphon_file_meta_t *vs = siphon_file__meta(h, SIPHON_FILE_META_VALUE_SCHEMA);
    json_t *kj = NULL, *vj = NULL;
    char *entity_json = NULL, err[512];
    const char **keys = NULL;
    int rc = -1;
    if (!ks || !vs || parse_fp(siphon_file__meta(h, SIPHON_FILE_META_KEY_FP), &rd->key_fp) < 0 ||
        parse_fp(siphon_file__meta(h, SIPHON_FILE_META_VALUE_FP), &rd->value_fp) < 0)
        return -1;
    json_error_t jerr;
    kj = json_loadb(ks->value, ks->len, 0, &jerr);
    vj = json_loadb(vs->value, vs->len, 0, &jerr);
    json_t *before = json_object_get(json_array_get(json_object_get(vj, "fields"), 0), "type");
    json_t *ent = NULL;
    size_t i;
    json_t *br;
    json_array_foreach(before, i, br) {
        if (json_is_object(br))
            ent = br;
    }
    json_t *kf = json_object_get(kj, "fields");
    size_t nkey = json_array_size(kf);
    if (!ent || nkey == 0 || !(keys = calloc(nkey, sizeof(*keys))))
        goto out;
    for (i = 0; i < nkey; i++)
        if (!(keys[i] = json_string_value(json_object_get(json_array_get(kf, i), "name"))))
            goto out;
    if (!(entity_json = json_dumps(ent, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        goto out;
    if (siphon_schema_parse(&rd->entity, entity_json, strlen(entity_json), err, sizeof(err)) < 0 ||
        siphon_avro_stream_new(&rd->stream, rd->entity, keys, (int)nkey, err, sizeof(err)) < 0) {
        siphon_log(SIPHON_LOG_DEBUG, "file", "%s: could not rebuild the stream: %s", rd->path,
                   err);
        goto out;
    }
    if (siphon_avro_stream_key_fingerprint(rd->stream) != rd->key_fp ||
        siphon_avro_stream_value_fingerprint(rd->stream) != rd->value_fp) {
        siphon_log(SIPHON_LOG_DEBUG, "file",
                   "%s: the rebuilt stream's fingerprints differ from the header's", rd->path);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0) {
        siphon_avro_stream_destroy(rd->stream);
        rd->stream = NULL;
        siphon_schema_destroy(rd->entity);
        rd->entity = NULL;
    }
    free(keys);
    free(entity_json);
    json_decref(kj);
    json_decref(vj);
    return rc;
}

int siphon_file_reader_open(siphon_file_reader_t **out, const char *path, char *errbuf,
                            size_t errsize)
{
    siphon_file_header_t h;
    long long good_end, nblocks, tail;
    int rc;
    *out = NULL;
    if (!path)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not open a container file: no path");
    siphon_file_reader_t *rd = calloc(1, sizeof(*rd));
    if (!rd || !(rd->path = strdup(path))) {
        free(rd);
        return SIPHON_ENOMEM;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s: %s", path,
                        strerror(errno));
        goto err;
    }
    char why[256];
    if ((rc = siphon_file__header_read(f, &h, why, sizeof(why))) < 0) {
        fclose(f);
        rc = siphon_err(errbuf, errsize, rc, "could not read %s: %s", path, why);
        goto err;
    }
    rc = siphon_file__scan(f, &h, &good_end, &nblocks, &rd->nrecords, &tail);
    fclose(f);
    if (rc < 0) {
        siphon_file__header_free(&h);
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not read %s: %s", path,
                        strerror(errno));
        goto err;
    }
    const siphon_file_meta_t *t = siphon_file__meta(&h, SIPHON_FILE_META_TOPIC);
    if (t && !(rd->topic = strdup(t->value))) {
        siphon_file__header_free(&h);
        rc = SIPHON_ENOMEM;
        goto err;
    }
    rebuild_stream(rd, &h);
    siphon_file__header_free(&h);
    if (rd->nrecords > 0) {
        if (avro_file_reader(path, &rd->ar) != 0) {
            rd->ar = NULL;
            rc = siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not read %s with avro-c: %s",
                            path, avro_strerror());
            goto err;
        }
        rd->wschema = avro_file_reader_get_writer_schema(rd->ar);
        if (!(rd->iface = avro_generic_class_from_schema(rd->wschema)) ||
            avro_generic_value_new(rd->iface, &rd->rec) != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not read %s with avro-c: %s",
                            path, avro_strerror());
            goto err;
        }
        rd->have_rec = 1;
    }
    *out = rd;
    return 0;
err:
    siphon_file_reader_close(rd);
    return rc;
}

/* Serialize v behind the single-object header of fp and decode it with the stream. */
static int decode_part(siphon_file_reader_t *rd, avro_value_t *v, int is_key, uint64_t fp,
                       char **out, char *errbuf, size_t errsize)
{
    size_t size = 0;
    if (avro_value_sizeof(v, &size) != 0)
        return SIPHON_EPROTO;
    siphon_buf_reset(&rd->buf);
    if (siphon_buf_reserve(&rd->buf, size + SIPHON_AVRO_SOE_HEADER_LEN) < 0)
        return SIPHON_ENOMEM;
    siphon_avro_soe_header(rd->buf.data, fp);
    avro_writer_t w = avro_writer_memory((char *)rd->buf.data + SIPHON_AVRO_SOE_HEADER_LEN,
                                         (int64_t)size);
    if (!w)
        return SIPHON_ENOMEM;
    int rc = avro_value_write(w, v);
    avro_writer_free(w);
    if (rc != 0)
        return SIPHON_EPROTO;
    rd->buf.len = size + SIPHON_AVRO_SOE_HEADER_LEN;
    return siphon_avro_stream_decode_json(out, rd->stream, is_key, rd->buf.data, rd->buf.len,
                                          errbuf, errsize);
}

int siphon_file_reader_next(siphon_file_reader_t *rd, char **key_json, char **event_json,
                            char *errbuf, size_t errsize)
{
    char why[512] = "";
    int rc = 0;
    *key_json = *event_json = NULL;
    if (!rd || rd->index >= rd->nrecords)
        return 0;
    if (avro_file_reader_read_value(rd->ar, &rd->rec) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not read record %lld of %s: %s",
                          rd->index + 1, rd->path, avro_strerror());
    rd->index++;
    if (!rd->stream) {
        char *json = NULL;
        if (avro_value_to_json(&rd->rec, 1, &json) != 0)
            return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                              "could not render record %lld of %s: %s", rd->index, rd->path,
                              avro_strerror());
        *event_json = json;
        return 1;
    }
    avro_value_t key, keyb, ev;
    int disc = 0;
    if (avro_value_get_by_index(&rd->rec, 0, &key, NULL) != 0 ||
        avro_value_get_by_index(&rd->rec, 1, &ev, NULL) != 0 ||
        avro_value_get_discriminant(&key, &disc) != 0) {
        rc = SIPHON_EPROTO;
        goto bad;
    }
    if (disc == 1 && (avro_value_get_current_branch(&key, &keyb) != 0 ||
                      (rc = decode_part(rd, &keyb, 1, rd->key_fp, key_json, why, sizeof(why))) < 0)) {
        rc = rc < 0 ? rc : SIPHON_EPROTO;
        goto bad;
    }
    if ((rc = decode_part(rd, &ev, 0, rd->value_fp, event_json, why, sizeof(why))) < 0)
        goto bad;
    return 1;
bad:
    free(*key_json);
    *key_json = NULL;
    return siphon_err(errbuf, errsize, rc, "could not decode record %lld of %s: %s", rd->index,
                      rd->path, why[0] ? why : avro_strerror());
}

const char *siphon_file_reader_topic(const siphon_file_reader_t *rd)
{
    return rd ? rd->topic : NULL;
}

long long siphon_file_reader_count(const siphon_file_reader_t *rd)
{
    return rd ? rd->nrecords : 0;
}

void siphon_file_reader_close(siphon_file_reader_t *rd)
{
    if (!rd)
        return;
    if (rd->have_rec)
        avro_value_decref(&rd->rec);
    if (rd->iface)
        avro_value_iface_decref(rd->iface);
    if (rd->ar)
        avro_file_reader_close(rd->ar);
    siphon_avro_stream_destroy(rd->stream);
    siphon_schema_destroy(rd->entity);
    siphon_buf_free(&rd->buf);
    free(rd->topic);
    free(rd->path);
    free(rd);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void siphon_file_list_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int siphon_file_list(char ***names, int *n, const char *dir, char *errbuf, size_t errsize)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not open folder %s: %s", dir,
                          strerror(errno));
    struct dirent *de;
    char **v = NULL;
    int cnt = 0, cap = 0;
    size_t sl = strlen(SIPHON_FILE_SUFFIX);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= sl || de->d_name[0] == '.' || strcmp(de->d_name + l - sl, SIPHON_FILE_SUFFIX))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, (size_t)cap * sizeof(*nv));
            if (!nv)
                goto nomem;
            v = nv;
        }
        if (!(v[cnt] = strdup(de->d_name)))
            goto nomem;
        cnt++;
    }
    closedir(d);
    if (cnt)
        qsort(v, (size_t)cnt, sizeof(*v), cmp_names);
    *names = v;
    *n = cnt;
    return 0;
nomem:
    closedir(d);
    siphon_file_list_free(v, cnt);
    return SIPHON_ENOMEM;
}
