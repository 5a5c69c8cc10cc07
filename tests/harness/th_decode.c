/*
 * th_decode.c - turns consumed Kafka messages back into JSON with Siphon's own modules, so the
 * tests check what a consumer would see: the single-object header (C3 01 + CRC-64-AVRO
 * fingerprint, little-endian), the fingerprint header, and the decoded key and envelope.
 *
 * The mappings and schemas are loaded with siphon_mapset_load(); a message is matched to its
 * stream by the fingerprint in its value (or, for a tombstone, its key).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/siphon_avro.h"
#include "harness_int.h"
#include "mapping/mapping.h"

#include <yaml.h>

typedef struct th_colfield {
    char *entity, *column, *field;
} th_colfield_t;

typedef struct th_stream {
    const char *entity;
    const char *path; /* the mapping file */
    siphon_avro_stream_t *st; /* borrowed from the mapset */
    uint64_t kfp, vfp;
} th_stream_t;

struct th_decoder {
    siphon_mapset_t *ms;
    th_stream_t *streams;
    int n;
    th_colfield_t *cf; /* column -> field, read from the mapping files */
    int ncf;
};

static int th__load_fields(th_decoder_t *d, const char *entity, const char *path);

th_decoder_t *th_decoder_new(const char *mappings_dir, const char *schemas_dir)
{
    char *mdir = mappings_dir ? strdup(mappings_dir) : th_path(th_source_dir(), "mappings");
    char *sdir = schemas_dir ? strdup(schemas_dir) : th_path(th_source_dir(), "schemas");
    char errbuf[1024] = "";
    siphon_mapset_t *ms = NULL;
    int rc = siphon_mapset_load(&ms, mdir, sdir, errbuf, sizeof(errbuf));
    if (rc != 0) {
        th_err("could not load the mappings in \"%s\" with schemas in \"%s\": %s", mdir, sdir,
               errbuf);
        free(mdir);
        free(sdir);
        return NULL;
    }
    free(mdir);
    free(sdir);
    th_decoder_t *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->ms = ms;
    d->n = siphon_mapset_count(ms);
    d->streams = calloc((size_t)(d->n ? d->n : 1), sizeof(*d->streams));
    if (!d->streams)
        abort();
    for (int i = 0; i < d->n; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(ms, i);
        th_stream_t *s = &d->streams[i];
        s->entity = siphon_mapping_entity(map);
        s->path = siphon_mapping_path(map);
        s->st = siphon_mapping_stream(map);
        s->kfp = siphon_avro_stream_key_fingerprint(s->st);
        s->vfp = siphon_avro_stream_value_fingerprint(s->st);
        if (th__load_fields(d, s->entity, s->path) != 0) {
            th_decoder_destroy(d);
            return NULL;
        }
    }
    return d;
}

void th_decoder_destroy(th_decoder_t *d)
{
    if (!d)
        return;
    siphon_mapset_destroy(d->ms);
    free(d->streams);
    for (int i = 0; i < d->ncf; i++) {
        free(d->cf[i].entity);
        free(d->cf[i].column);
        free(d->cf[i].field);
    }
    free(d->cf);
    free(d);
}

static const char *th__scalar(yaml_document_t *doc, yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Read the `fields` of a mapping file into d->cf (entity field <- column). */
static int th__load_fields(th_decoder_t *d, const char *entity, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return th_err("could not open mapping \"%s\"", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        th_err("could not parse mapping \"%s\": %s", path, parser.problem ? parser.problem : "?");
        goto out_parser;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        goto out_doc;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const char *k = th__scalar(&doc, yaml_document_get_node(&doc, p->key));
        yaml_node_t *fields = yaml_document_get_node(&doc, p->value);
        if (!k || strcmp(k, "fields") != 0 || fields->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *q = fields->data.mapping.pairs.start;
             q < fields->data.mapping.pairs.top; q++) {
            const char *field = th__scalar(&doc, yaml_document_get_node(&doc, q->key));
            yaml_node_t *v = yaml_document_get_node(&doc, q->value);
            const char *column = th__scalar(&doc, v);
            if (!column && v->type == YAML_MAPPING_NODE) {
                for (yaml_node_pair_t *r = v->data.mapping.pairs.start;
                     r < v->data.mapping.pairs.top; r++) {
                    const char *rk = th__scalar(&doc, yaml_document_get_node(&doc, r->key));
                    if (rk && strcmp(rk, "column") == 0)
                        column = th__scalar(&doc, yaml_document_get_node(&doc, r->value));
                }
            }
            if (!field || !column)
                continue;
            d->cf = realloc(d->cf, (size_t)(d->ncf + 1) * sizeof(*d->cf));
            if (!d->cf)
                abort();
            th_colfield_t *cf = &d->cf[d->ncf++];
            cf->entity = strdup(entity);
            cf->column = strdup(column);
            cf->field = strdup(field);
            if (!cf->entity || !cf->column || !cf->field)
                abort();
        }
    }
    rc = 0;
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

const char *th_decoder_field(th_decoder_t *d, const char *entity, const char *column)
{
    for (int i = 0; i < d->ncf; i++)
        if (!strcmp(d->cf[i].entity, entity) && !strcmp(d->cf[i].column, column))
            return d->cf[i].field;
    return NULL;
}

static int th__soe_fp(const void *buf, size_t len, uint64_t *fp, const char *what)
{
    const uint8_t *b = buf;
    if (len < SIPHON_AVRO_SOE_HEADER_LEN)
        return th_err("%s is %zu bytes: too short for a single-object encoding header", what, len);
    if (b[0] != 0xC3 || b[1] != 0x01)
        return th_err("%s does not start with the single-object marker C3 01 (got %02X %02X)",
                      what, b[0], b[1]);
    uint64_t v = 0;
    for (int i = 9; i >= 2; i--)
        v = (v << 8) | b[i];
    *fp = v;
    return 0;
}

/* The siphon.schema_fingerprint header may carry the fingerprint as 8 raw bytes (either byte
 * order) or as text (hex with or without 0x, or decimal). 1 when it equals fp. */
static int th__header_matches(const th_header_t *h, uint64_t fp)
{
    if (!h->value)
        return 0;
    const uint8_t *b = h->value;
    if (h->len == 8) {
        uint64_t le = 0, be = 0;
        for (int i = 7; i >= 0; i--)
            le = (le << 8) | b[i];
        for (int i = 0; i < 8; i++)
            be = (be << 8) | b[i];
        if (le == fp || be == fp)
            return 1;
    }
    char txt[64];
    if (h->len == 0 || h->len >= sizeof(txt))
        return 0;
    memcpy(txt, h->value, h->len);
    txt[h->len] = '\0';
    char *end;
    const char *p = txt;
    if (strncmp(p, "0x", 2) == 0 || strncmp(p, "0X", 2) == 0)
        p += 2;
    uint64_t hex = strtoull(p, &end, 16);
    if (*end == '\0' && hex == fp)
        return 1;
    uint64_t dec = strtoull(txt, &end, 10);
    if (*end == '\0' && dec == fp)
        return 1;
    return 0;
}

int th_decode(th_decoder_t *d, const th_msg_t *m, th_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->msg = m;
    char what[96];
    snprintf(what, sizeof(what), "the key of message p%d@%" PRId64, m->partition, m->offset);
    uint64_t kfp = 0, vfp = 0;
    if (!m->key && !m->value)
        return th_err("message p%d@%" PRId64 " has neither key nor value", m->partition,
                      m->offset);
    if (m->key && th__soe_fp(m->key, m->klen, &kfp, what) != 0)
        return -1;
    if (m->value) {
        snprintf(what, sizeof(what), "the value of message p%d@%" PRId64, m->partition,
                 m->offset);
        if (th__soe_fp(m->value, m->vlen, &vfp, what) != 0)
            return -1;
    }
    const th_stream_t *s = NULL;
    for (int i = 0; i < d->n && !s; i++) {
        if ((!m->key || d->streams[i].kfp == kfp) && (!m->value || d->streams[i].vfp == vfp))
            s = &d->streams[i];
    }
    if (!s)
        return th_err("message p%d@%" PRId64 ": key fingerprint %016" PRIx64
                      " / value fingerprint %016" PRIx64 " match no mapped stream",
                      m->partition, m->offset, kfp, vfp);
    ev->entity = s->entity;
    if (m->value) {
        const th_header_t *h = th_msg_header(m, "siphon.schema_fingerprint");
        if (!h)
            return th_err("message p%d@%" PRId64 " has no siphon.schema_fingerprint header",
                          m->partition, m->offset);
        if (!th__header_matches(h, vfp))
            return th_err("message p%d@%" PRId64 ": siphon.schema_fingerprint header (%zu bytes)"
                          " does not match the value's fingerprint %016" PRIx64,
                          m->partition, m->offset, h->len, vfp);
    }
    char errbuf[512] = "";
    char *json = NULL;
    json_error_t je;
    if (m->key) {
        if (siphon_avro_stream_decode_json(&json, s->st, 1, m->key, m->klen, errbuf,
                                           sizeof(errbuf)) != 0)
            return th_err("could not decode the key of p%d@%" PRId64 ": %s", m->partition,
                          m->offset, errbuf);
        ev->key = json_loads(json, 0, &je);
        if (!ev->key) {
            th_err("decoded key is not JSON (%s): %s", je.text, json);
            free(json);
            return -1;
        }
        free(json);
        json = NULL;
    }
    if (m->value) {
        if (siphon_avro_stream_decode_json(&json, s->st, 0, m->value, m->vlen, errbuf,
                                           sizeof(errbuf)) != 0) {
            th_event_clear(ev);
            return th_err("could not decode the value of p%d@%" PRId64 ": %s", m->partition,
                          m->offset, errbuf);
        }
        ev->value = json_loads(json, 0, &je);
        if (!ev->value) {
            th_err("decoded value is not JSON (%s): %s", je.text, json);
            free(json);
            th_event_clear(ev);
            return -1;
        }
        free(json);
        json_t *op = th_json_path(ev->value, "op");
        if (json_is_string(op) && json_string_length(op) >= 1)
            ev->op = json_string_value(op)[0];
        json_t *id = th_json_path(ev->value, "event_id");
        if (json_is_string(id))
            ev->event_id = json_string_value(id);
    }
    return 0;
}

void th_event_clear(th_event_t *ev)
{
    json_decref(ev->key);
    json_decref(ev->value);
    memset(ev, 0, sizeof(*ev));
}

json_t *th_json_path(json_t *root, const char *path)
{
    json_t *cur = root;
    char seg[128];
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(seg) || !json_is_object(cur))
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        path += n + (dot ? 1 : 0);
        cur = json_object_get(cur, seg);
    }
    return cur;
}

const char *th_json_text(json_t *root, const char *path, char *buf, size_t size)
{
    json_t *v = th_json_path(root, path);
    if (!v)
        snprintf(buf, size, "<missing>");
    else if (json_is_string(v))
        snprintf(buf, size, "%s", json_string_value(v));
    else if (json_is_null(v))
        snprintf(buf, size, "null");
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, size, "%s", s ? s : "?");
        free(s);
    }
    return buf;
}
