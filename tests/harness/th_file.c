/*
 * th_file.c - the file sink in integration tests: a siphon.yaml whose sink is `type: file`, and
 * reading the container files back with avro-c's own file reader (independently of Siphon's
 * reader) into th_msg_t messages, so th_decode() and th_collector check them as they check
 * Kafka messages.
 *
 * A record of a file is {key: ["null", Key], event: Envelope}. It becomes a message whose key
 * and value are single-object encoded again: the fingerprints are computed here from the
 * file's own writer schema (avro-c's JSON of the key and event parts -> Parsing Canonical Form
 * -> CRC-64-AVRO; the canonical form ignores the logical types avro-c drops), so a file written
 * with a schema other than the mapped stream's fails th_decode(). Messages get partition 0,
 * offsets in reading order, and as timestamp the envelope's ts_us (when siphon produced the
 * event), which th_collector compares with restart times.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <avro.h>

#include "avro/siphon_avro.h"
#include "harness_int.h"

int th_file_conf_write(const th_env_t *env, const char *out_dir, long long roll_bytes,
                       int roll_ms, const char *extra_props)
{
    char *kafka = th_strf("%s.kafka", env->config_path);
    if (th_siphon_conf_write(kafka, &env->conf) != 0) {
        free(kafka);
        return -1;
    }
    /* the same config with the sink section replaced */
    char *text = th_read_file(kafka, NULL, 0);
    remove(kafka);
    free(kafka);
    if (!text)
        return -1;
    char *sink = strstr(text, "\nsink:\n"), *after = sink ? strstr(sink, "\noffsets:") : NULL;
    if (!sink || !after) {
        free(text);
        return th_err("could not find the sink section in the harness's siphon.yaml");
    }
    FILE *f = fopen(env->config_path, "w");
    if (!f) {
        free(text);
        return th_err("could not create \"%s\"", env->config_path);
    }
    fprintf(f, "%.*s\nsink:\n  type: file\n  topic_prefix: \"%s\"\n  path: \"%s\"\n",
            (int)(sink - text), text, env->conf.topic_prefix ? env->conf.topic_prefix : "erp",
            out_dir);
    if (roll_bytes > 0)
        fprintf(f, "  roll_bytes: %lld\n", roll_bytes);
    if (roll_ms > 0)
        fprintf(f, "  roll_ms: %d\n", roll_ms);
    if (extra_props)
        fprintf(f, "  properties:\n    %s\n", extra_props);
    fputs(after + 1, f);
    free(text);
    if (fclose(f) != 0)
        return th_err("could not write \"%s\"", env->config_path);
    return 0;
}

static int th__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **th_file_list(const char *dir, const char *suffix, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *de;
    size_t sl = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, (size_t)cap * sizeof(*v));
            if (!v)
                abort();
        }
        v[(*n)++] = th_path(dir, de->d_name);
    }
    closedir(d);
    if (*n)
        qsort(v, (size_t)*n, sizeof(*v), th__cmp);
    return v;
}

void th_file_list_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* CRC-64-AVRO of the canonical form of an avro-c schema's JSON. 0 or -1. */
static int th__fingerprint(avro_schema_t s, uint64_t *fp)
{
    static char buf[65536]; /* the harness is single-threaded here */
    char err[512];
    buf[0] = '\0';
    avro_writer_t w = avro_writer_memory(buf, sizeof(buf) - 1);
    if (!w)
        return -1;
    int rc = avro_schema_to_json(s, w);
    size_t len = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    if (rc != 0)
        return th_err("could not print a file schema: %s", avro_strerror());
    buf[len] = '\0';
    char *canon = NULL;
    if (siphon_avro_canonical_form(&canon, buf, len, err, sizeof(err)) < 0)
        return th_err("could not compute the canonical form of %s: %s", buf, err);
    *fp = siphon_avro_fingerprint64(canon, strlen(canon));
    free(canon);
    return 0;
}

/* Serialize v behind a single-object header. Caller frees. */
static void *th__soe(avro_value_t *v, uint64_t fp, size_t *len)
{
    size_t size = 0;
    if (avro_value_sizeof(v, &size) != 0)
        return NULL;
    uint8_t *p = malloc(size + SIPHON_AVRO_SOE_HEADER_LEN + 1);
    if (!p)
        abort();
    siphon_avro_soe_header(p, fp);
    avro_writer_t w = avro_writer_memory((char *)p + SIPHON_AVRO_SOE_HEADER_LEN, (int64_t)size);
    int rc = avro_value_write(w, v);
    avro_writer_free(w);
    if (rc != 0) {
        free(p);
        return NULL;
    }
    p[size + SIPHON_AVRO_SOE_HEADER_LEN] = '\0';
    *len = size + SIPHON_AVRO_SOE_HEADER_LEN;
    return p;
}

long th_file_read(const char *path, th_msgs_t *out)
{
    avro_file_reader_t r;
    if (avro_file_reader(path, &r) != 0)
        return th_err("avro-c could not open \"%s\": %s", path, avro_strerror());
    avro_schema_t ws = avro_file_reader_get_writer_schema(r);
    avro_schema_t ks = avro_schema_record_field_get(ws, "key");
    avro_schema_t es = avro_schema_record_field_get(ws, "event");
    uint64_t kfp = 0, vfp = 0;
    if (!ks || !es || avro_typeof(ks) != AVRO_UNION || th__fingerprint(es, &vfp) != 0 ||
        th__fingerprint(avro_schema_union_branch(ks, 1), &kfp) != 0) {
        avro_file_reader_close(r);
        return th_err("\"%s\" is not a file of the file sink (no key and event fields)", path);
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t rec;
    avro_generic_value_new(iface, &rec);
    long n = 0;
    char fp_hex[17];
    snprintf(fp_hex, sizeof(fp_hex), "%016" PRIx64, vfp);
    while (avro_file_reader_read_value(r, &rec) == 0) {
        avro_value_t key, keyb, ev, ts;
        int disc = 0;
        int64_t ts_us = 0;
        if (avro_value_get_by_name(&rec, "key", &key, NULL) != 0 ||
            avro_value_get_discriminant(&key, &disc) != 0 ||
            avro_value_get_by_name(&rec, "event", &ev, NULL) != 0 ||
            avro_value_get_by_name(&ev, "ts_us", &ts, NULL) != 0 ||
            avro_value_get_long(&ts, &ts_us) != 0) {
            n = th_err("record %ld of \"%s\" does not have the file sink's shape", n + 1, path);
            break;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 256;
            out->v = realloc(out->v, (size_t)out->cap * sizeof(*out->v));
            if (!out->v)
                abort();
        }
        th_msg_t *m = &out->v[out->n];
        memset(m, 0, sizeof(*m));
        m->partition = 0;
        m->offset = out->n;
        m->timestamp_ms = ts_us / 1000;
        if (disc == 1 && avro_value_get_current_branch(&key, &keyb) == 0)
            m->key = th__soe(&keyb, kfp, &m->klen);
        m->value = th__soe(&ev, vfp, &m->vlen);
        m->hdrs = calloc(1, sizeof(*m->hdrs));
        if (!m->hdrs)
            abort();
        m->hdrs[0].name = strdup("siphon.schema_fingerprint");
        m->hdrs[0].value = strdup(fp_hex);
        m->hdrs[0].len = 16;
        m->nhdrs = 1;
        out->n++;
        if (!m->value) {
            n = th_err("record %ld of \"%s\" could not be re-encoded", n + 1, path);
            break;
        }
        n++;
    }
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_file_reader_close(r);
    return n;
}
