/*
 * mapping_dlq.c - the dead-letter record: what Siphon publishes on <topic_prefix>._dlq for a
 * source row it could not map (an invalid date, an unknown code, a number too large for its
 * field, bytes that are not valid in the declared charset...).
 *
 * The record has a fixed schema, siphon.DeadLetter, kept here as text (so a deployment never
 * depends on a schemas folder for it) and shipped, identical, as
 * schemas/_siphon/dead_letter.v1.avsc for consumers (a unit test keeps the two equal). It says
 * where the row came from (connector, database, table, the transaction's position, txid,
 * commit time), which mapping, field and column(s) failed and why, and the row's raw column
 * values as text, so the row can be fixed at the source or replayed. Messages are
 * single-object encoded like every event (C3 01 + the schema's CRC-64-AVRO fingerprint), and
 * keyed by the source table and its key columns as text, so dead letters of one row stay in
 * order in one partition.
 *
 * Encoding goes through avro-c's generic value (built once per siphon_dlq_t); dead letters are
 * rare, so the simpler path is the right one here.
 */
#include <avro.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"

static const char dlq_schema_json[] =
    "{\n"
    "  \"type\": \"record\",\n"
    "  \"name\": \"DeadLetter\",\n"
    "  \"namespace\": \"siphon\",\n"
    "  \"doc\": \"A source row Siphon could not map to its canonical entity, published on "
    "<topic_prefix>._dlq instead of the entity's event. Its position is acknowledged only once "
    "this record is delivered. Keyed by the source table and its key columns as text.\",\n"
    "  \"fields\": [\n"
    "    {\"name\": \"event_id\", \"type\": \"string\", \"doc\": \"The id the entity event would "
    "have had (source position and index in the transaction): re-deliveries after a restart "
    "repeat it.\"},\n"
    "    {\"name\": \"ts_us\", \"type\": {\"type\": \"long\", \"logicalType\": "
    "\"timestamp-micros\"}, \"doc\": \"When Siphon wrote the dead letter.\"},\n"
    "    {\"name\": \"connector\", \"type\": \"string\", \"doc\": \"The connector name from the "
    "configuration.\"},\n"
    "    {\"name\": \"db\", \"type\": \"string\", \"doc\": \"The source database.\"},\n"
    "    {\"name\": \"schema\", \"type\": \"string\", \"doc\": \"The source table's schema.\"},\n"
    "    {\"name\": \"table\", \"type\": \"string\", \"doc\": \"The source table.\"},\n"
    "    {\"name\": \"pos\", \"type\": \"string\", \"doc\": \"The source position of the row's "
    "transaction (Postgres: its commit LSN).\"},\n"
    "    {\"name\": \"txid\", \"type\": \"long\", \"doc\": \"The source transaction id (0 when "
    "none).\"},\n"
    "    {\"name\": \"commit_ts_us\", \"type\": {\"type\": \"long\", \"logicalType\": "
    "\"timestamp-micros\"}, \"doc\": \"When the transaction committed.\"},\n"
    "    {\"name\": \"snapshot\", \"type\": \"boolean\", \"doc\": \"True for a snapshot row.\"},\n"
    "    {\"name\": \"op\", \"type\": \"string\", \"doc\": \"The event the row would have given: "
    "c, u, d or r.\"},\n"
    "    {\"name\": \"mapping\", \"type\": \"string\", \"doc\": \"The mapping file.\"},\n"
    "    {\"name\": \"entity\", \"type\": \"string\", \"doc\": \"The entity it maps to.\"},\n"
    "    {\"name\": \"entity_version\", \"type\": \"int\", \"doc\": \"The entity's major "
    "version.\"},\n"
    "    {\"name\": \"field\", \"type\": [\"null\", \"string\"], \"default\": null, \"doc\": \"The "
    "entity field whose value could not be made; null when the row as a whole failed.\"},\n"
    "    {\"name\": \"columns\", \"type\": [\"null\", \"string\"], \"default\": null, \"doc\": "
    "\"The source column(s) that field reads, comma-separated.\"},\n"
    "    {\"name\": \"reason\", \"type\": \"string\", \"doc\": \"What was wrong with the value, "
    "and what was expected.\"},\n"
    "    {\"name\": \"message\", \"type\": \"string\", \"doc\": \"The whole message, with the "
    "mapping file:line:column of the field or transform.\"},\n"
    "    {\"name\": \"row\", \"type\": {\"type\": \"map\", \"values\": [\"null\", \"string\"]}, "
    "\"doc\": \"The source row's column values as text (null for SQL NULL; bytes that are not "
    "UTF-8 as \\\\x followed by hex; columns the source did not send are left out).\"}\n"
    "  ]\n"
    "}\n";

enum {
    D_EVENT_ID = 0,
    D_TS_US,
    D_CONNECTOR,
    D_DB,
    D_SCHEMA,
    D_TABLE,
    D_POS,
    D_TXID,
    D_COMMIT_TS,
    D_SNAPSHOT,
    D_OP,
    D_MAPPING,
    D_ENTITY,
    D_ENTITY_VERSION,
    D_FIELD,
    D_COLUMNS,
    D_REASON,
    D_MESSAGE,
    D_ROW,
    D_NFIELDS
};

struct siphon_dlq {
    siphon_schema_t *sch;      /* parsed, with canonical form and fingerprint */
    uint8_t hdr[SIPHON_AVRO_SOE_HEADER_LEN];
    uint64_t key_fp;           /* of the key schema "string" */
    uint8_t key_hdr[SIPHON_AVRO_SOE_HEADER_LEN];
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t rec;
    int have_rec;
    siphon_buf_t tmp;          /* NUL-terminated copies for avro-c */
};

void siphon_dlq_destroy(siphon_dlq_t *dlq)
{
    if (!dlq)
        return;
    if (dlq->have_rec)
        avro_value_decref(&dlq->rec);
    if (dlq->iface)
        avro_value_iface_decref(dlq->iface);
    if (dlq->schema)
        avro_schema_decref(dlq->schema);
    siphon_schema_destroy(dlq->sch);
    siphon_buf_free(&dlq->tmp);
    free(dlq);
}

int siphon_dlq_new(siphon_dlq_t **out, char *errbuf, size_t errsize)
{
    siphon_dlq_t *dlq = calloc(1, sizeof(*dlq));
    int rc;
    if (!out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not build the dead-letter schema");
    *out = NULL;
    if (!dlq)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    if ((rc = siphon_schema_parse(&dlq->sch, dlq_schema_json, sizeof(dlq_schema_json) - 1,
                                  errbuf, errsize)) < 0)
        goto fail;
    siphon_avro_soe_header(dlq->hdr, dlq->sch->fingerprint);
    /* the key is an Avro string: its Parsing Canonical Form is "string" */
    dlq->key_fp = siphon_avro_fingerprint64("\"string\"", 8);
    siphon_avro_soe_header(dlq->key_hdr, dlq->key_fp);
    if (avro_schema_from_json_length(dlq_schema_json, sizeof(dlq_schema_json) - 1,
                                     &dlq->schema) != 0 ||
        !(dlq->iface = avro_generic_class_from_schema(dlq->schema)) ||
        avro_generic_value_new(dlq->iface, &dlq->rec) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not build the dead-letter schema with avro-c: %s", avro_strerror());
        goto fail;
    }
    dlq->have_rec = 1;
    *out = dlq;
    return 0;
fail:
    siphon_dlq_destroy(dlq);
    return rc;
}

const char *siphon_dlq_schema_json(const siphon_dlq_t *dlq)
{
    (void)dlq;
    return dlq_schema_json;
}

uint64_t siphon_dlq_fingerprint(const siphon_dlq_t *dlq) { return dlq->sch->fingerprint; }

const char *siphon_dlq_key_schema_json(const siphon_dlq_t *dlq)
{
    (void)dlq;
    return "\"string\"";
}

uint64_t siphon_dlq_key_fingerprint(const siphon_dlq_t *dlq) { return dlq->key_fp; }

/* A NUL-terminated copy (avro-c strings carry their NUL). Valid until the next reset of tmp. */
static const char *cstr(siphon_dlq_t *dlq, const char *s, size_t n, size_t *off)
{
    *off = dlq->tmp.len;
    if (siphon_buf_append(&dlq->tmp, s, n) < 0 || siphon_buf_appendc(&dlq->tmp, 0) < 0)
        return NULL;
    return "";
}

/* The text of a raw value for the record: UTF-8 as is, other bytes as \x + hex. Appended to
 * dlq->tmp with a NUL; *off is where it starts. 0 or SIPHON_ENOMEM. */
static int raw_text(siphon_dlq_t *dlq, const siphon_value_t *v, size_t *off)
{
    static const char hex[] = "0123456789abcdef";
    *off = dlq->tmp.len;
    switch (v->type) {
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_BYTES: {
        const unsigned char *s = (const unsigned char *)v->u.s.ptr;
        size_t n = v->u.s.len;
        if (v->type != SIPHON_V_BYTES && siphon_mapping__utf8_invalid_at(s, n) == n &&
            !memchr(s, 0, n)) {
            if (siphon_buf_append(&dlq->tmp, s, n) < 0)
                return SIPHON_ENOMEM;
        } else {
            if (siphon_buf_append(&dlq->tmp, "\\x", 2) < 0)
                return SIPHON_ENOMEM;
            for (size_t i = 0; i < n; i++)
                if (siphon_buf_appendc(&dlq->tmp, (uint8_t)hex[s[i] >> 4]) < 0 ||
                    siphon_buf_appendc(&dlq->tmp, (uint8_t)hex[s[i] & 15]) < 0)
                    return SIPHON_ENOMEM;
        }
        break;
    }
    default: {
        char buf[128];
        size_t n = siphon_value_format(v, buf, sizeof(buf));
        if (siphon_buf_append(&dlq->tmp, buf, n < sizeof(buf) ? n : sizeof(buf) - 1) < 0)
            return SIPHON_ENOMEM;
    }
    }
    return siphon_buf_appendc(&dlq->tmp, 0) < 0 ? SIPHON_ENOMEM : 0;
}

int siphon_dlq_encode(siphon_dlq_t *dlq, const siphon_dlq_record_t *rec, siphon_buf_t *key,
                      siphon_buf_t *value, char *errbuf, size_t errsize)
{
    const siphon_mapped_t *m = rec->mapped;
    const siphon_mapping_t *map = m->map;
    const siphon_map_error_t *e = m->error;
    const siphon_relation_t *rel = rec->rel;
    const siphon_row_t *row = m->row;
    avro_value_t f, br, elem;
    size_t offs[D_NFIELDS];
    char op[2] = {rec->op, 0};
    int rc = 0;
    size_t klen0 = key->len, vlen0 = value->len;

    if (!dlq || !rec || !m || !e || !rel)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode a dead letter: "
                                                          "nothing to encode");
    siphon_buf_reset(&dlq->tmp);
    const char *strs[D_NFIELDS] = {0};
    strs[D_EVENT_ID] = rec->event_id ? rec->event_id : "";
    strs[D_CONNECTOR] = rec->connector ? rec->connector : "";
    strs[D_DB] = rec->db ? rec->db : "";
    strs[D_SCHEMA] = rel->schema ? rel->schema : "";
    strs[D_TABLE] = rel->name ? rel->name : "";
    strs[D_POS] = rec->pos ? rec->pos : "";
    strs[D_OP] = op;
    strs[D_MAPPING] = siphon_mapping_path(map);
    strs[D_ENTITY] = siphon_mapping_entity(map);
    strs[D_FIELD] = e->field;
    strs[D_COLUMNS] = e->columns;
    strs[D_REASON] = e->reason ? e->reason : "";
    strs[D_MESSAGE] = e->message ? e->message : "";
    /* copy every string: avro-c wants them NUL-terminated and valid UTF-8 */
    for (int i = 0; i < D_NFIELDS; i++) {
        if (!strs[i])
            continue;
        siphon_value_t tv = {.type = SIPHON_V_TEXT};
        tv.u.s.ptr = strs[i];
        tv.u.s.len = strlen(strs[i]);
        if (raw_text(dlq, &tv, &offs[i]) < 0)
            goto nomem;
    }
    size_t rowoff = dlq->tmp.len;
    int nrow = 0;
    if (row) {
        for (int c = 0; c < rel->ncols && c < row->ncols; c++) {
            const siphon_value_t *v = &row->vals[c];
            if (v->type == SIPHON_V_UNCHANGED)
                continue;
            size_t o1, o2;
            if (!cstr(dlq, rel->cols[c].name, strlen(rel->cols[c].name), &o1))
                goto nomem;
            if (v->type == SIPHON_V_NULL) {
                if (siphon_buf_appendc(&dlq->tmp, 1) < 0) /* marker: null */
                    goto nomem;
            } else {
                if (siphon_buf_appendc(&dlq->tmp, 2) < 0 || raw_text(dlq, v, &o2) < 0)
                    goto nomem;
            }
            nrow++;
        }
    }
    const char *T = (const char *)dlq->tmp.data;

    avro_value_reset(&dlq->rec);
    static const int str_fields[] = {D_EVENT_ID, D_CONNECTOR, D_DB,     D_SCHEMA, D_TABLE,
                                     D_POS,      D_OP,        D_MAPPING, D_ENTITY, D_REASON,
                                     D_MESSAGE};
    for (size_t i = 0; i < sizeof(str_fields) / sizeof(str_fields[0]); i++) {
        int fi = str_fields[i];
        if (avro_value_get_by_index(&dlq->rec, (size_t)fi, &f, NULL) ||
            avro_value_set_string(&f, T + offs[fi]))
            goto avro_fail;
    }
    for (int fi = D_FIELD; fi <= D_COLUMNS; fi++) {
        if (avro_value_get_by_index(&dlq->rec, (size_t)fi, &f, NULL))
            goto avro_fail;
        if (strs[fi]) {
            if (avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, T + offs[fi]))
                goto avro_fail;
        } else if (avro_value_set_branch(&f, 0, &br) || avro_value_set_null(&br)) {
            goto avro_fail;
        }
    }
    if (avro_value_get_by_index(&dlq->rec, D_TS_US, &f, NULL) ||
        avro_value_set_long(&f, rec->ts_us) ||
        avro_value_get_by_index(&dlq->rec, D_TXID, &f, NULL) ||
        avro_value_set_long(&f, (int64_t)rec->txid) ||
        avro_value_get_by_index(&dlq->rec, D_COMMIT_TS, &f, NULL) ||
        avro_value_set_long(&f, rec->commit_ts_us) ||
        avro_value_get_by_index(&dlq->rec, D_SNAPSHOT, &f, NULL) ||
        avro_value_set_boolean(&f, rec->snapshot ? 1 : 0) ||
        avro_value_get_by_index(&dlq->rec, D_ENTITY_VERSION, &f, NULL) ||
        avro_value_set_int(&f, siphon_mapping_major(map)) ||
        avro_value_get_by_index(&dlq->rec, D_ROW, &f, NULL))
        goto avro_fail;
    {
        const char *p = T + rowoff;
        for (int i = 0; i < nrow; i++) {
            const char *name = p;
            p += strlen(p) + 1;
            char kind = *p++;
            if (avro_value_add(&f, name, &elem, NULL, NULL))
                goto avro_fail;
            if (kind == 1) {
                if (avro_value_set_branch(&elem, 0, &br) || avro_value_set_null(&br))
                    goto avro_fail;
            } else {
                if (avro_value_set_branch(&elem, 1, &br) || avro_value_set_string(&br, p))
                    goto avro_fail;
                p += strlen(p) + 1;
            }
        }
    }
    size_t size = 0;
    if (avro_value_sizeof(&dlq->rec, &size))
        goto avro_fail;
    if (siphon_buf_reserve(value, SIPHON_AVRO_SOE_HEADER_LEN + size) < 0)
        goto nomem;
    memcpy(value->data + value->len, dlq->hdr, SIPHON_AVRO_SOE_HEADER_LEN);
    {
        avro_writer_t w = avro_writer_memory((char *)value->data + value->len +
                                                 SIPHON_AVRO_SOE_HEADER_LEN,
                                             (int64_t)size);
        if (!w)
            goto nomem;
        int wrc = avro_value_write(w, &dlq->rec);
        avro_writer_free(w);
        if (wrc)
            goto avro_fail;
    }
    value->len += SIPHON_AVRO_SOE_HEADER_LEN + size;

    /* the key: an Avro string "schema.table|key|values", single-object encoded */
    {
        size_t kstart = dlq->tmp.len;
        if (siphon_buf_printf(&dlq->tmp, "%s.%s", strs[D_SCHEMA], strs[D_TABLE]) < 0)
            goto nomem;
        for (int c = 0; row && c < rel->ncols && c < row->ncols; c++) {
            if (!rel->cols[c].is_key)
                continue;
            const siphon_value_t *v = &row->vals[c];
            size_t o, at = dlq->tmp.len;
            if (v->type == SIPHON_V_NULL || v->type == SIPHON_V_UNCHANGED) {
                if (siphon_buf_appendc(&dlq->tmp, '|') < 0)
                    goto nomem;
                continue;
            }
            if (raw_text(dlq, v, &o) < 0)
                goto nomem;
            /* raw_text wrote "text\0" at `at`: make it "|text" */
            memmove(dlq->tmp.data + at + 1, dlq->tmp.data + at, dlq->tmp.len - at - 1);
            dlq->tmp.data[at] = '|';
        }
        size_t klen = dlq->tmp.len - kstart;
        uint8_t zz[10];
        int nz = 0;
        uint64_t u = (uint64_t)klen << 1; /* zigzag of a non-negative length */
        do {
            zz[nz++] = (uint8_t)((u & 0x7f) | (u > 0x7f ? 0x80 : 0));
            u >>= 7;
        } while (u);
        if (siphon_buf_append(key, dlq->key_hdr, SIPHON_AVRO_SOE_HEADER_LEN) < 0 ||
            siphon_buf_append(key, zz, (size_t)nz) < 0 ||
            siphon_buf_append(key, dlq->tmp.data + kstart, klen) < 0)
            goto nomem;
    }
    return 0;

avro_fail:
    rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                    "could not encode the dead letter of %s.%s for %s: %s", strs[D_SCHEMA],
                    strs[D_TABLE], siphon_mapping_path(map), avro_strerror());
    key->len = klen0;
    value->len = vlen0;
    return rc;
nomem:
    key->len = klen0;
    value->len = vlen0;
    return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory encoding a dead letter");
}

int siphon_dlq_decode_json(char **out, const siphon_dlq_t *dlq, const void *msg, size_t len,
                           char *errbuf, size_t errsize)
{
    const uint8_t *b = msg;
    avro_value_t rec, f, br, elem;
    avro_reader_t r = NULL;
    json_t *o = NULL;
    int rc = SIPHON_EPROTO, have_rec = 0;

    *out = NULL;
    if (len < SIPHON_AVRO_SOE_HEADER_LEN || memcmp(b, dlq->hdr, SIPHON_AVRO_SOE_HEADER_LEN) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not decode a dead letter: the message does not start with the "
                          "dead-letter schema's single-object header");
    if (avro_generic_value_new(dlq->iface, &rec) != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    have_rec = 1;
    r = avro_reader_memory((const char *)b + SIPHON_AVRO_SOE_HEADER_LEN,
                           (int64_t)(len - SIPHON_AVRO_SOE_HEADER_LEN));
    if (!r || avro_value_read(r, &rec) != 0) {
        siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not decode a dead letter: %s",
                   avro_strerror());
        goto out;
    }
    o = json_object();
    for (size_t i = 0; i < D_NFIELDS; i++) {
        const char *name;
        if (avro_value_get_by_index(&rec, i, &f, &name))
            goto bad;
        avro_type_t t = avro_value_get_type(&f);
        json_t *j = NULL;
        const char *s;
        size_t sz;
        int64_t l;
        int32_t n32;
        int bo;
        switch (t) {
        case AVRO_STRING:
            avro_value_get_string(&f, &s, &sz);
            j = json_stringn(s, sz ? sz - 1 : 0);
            break;
        case AVRO_INT64:
            avro_value_get_long(&f, &l);
            j = json_integer(l);
            break;
        case AVRO_INT32:
            avro_value_get_int(&f, &n32);
            j = json_integer(n32);
            break;
        case AVRO_BOOLEAN:
            avro_value_get_boolean(&f, &bo);
            j = json_boolean(bo);
            break;
        case AVRO_UNION: {
            int disc;
            avro_value_get_discriminant(&f, &disc);
            avro_value_get_current_branch(&f, &br);
            if (disc == 0) {
                j = json_null();
            } else {
                avro_value_get_string(&br, &s, &sz);
                j = json_stringn(s, sz ? sz - 1 : 0);
            }
            break;
        }
        case AVRO_MAP: {
            size_t cnt;
            avro_value_get_size(&f, &cnt);
            j = json_object();
            for (size_t k = 0; k < cnt; k++) {
                const char *kname;
                int disc;
                avro_value_get_by_index(&f, k, &elem, &kname);
                avro_value_get_discriminant(&elem, &disc);
                avro_value_get_current_branch(&elem, &br);
                if (disc == 0) {
                    json_object_set_new(j, kname, json_null());
                } else {
                    avro_value_get_string(&br, &s, &sz);
                    json_object_set_new(j, kname, json_stringn(s, sz ? sz - 1 : 0));
                }
            }
            break;
        }
        default:
            goto bad;
        }
        if (!j)
            goto bad;
        json_object_set_new(o, name, j);
    }
    if (!(*out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto out;
    }
    rc = 0;
    goto out;
bad:
    siphon_err(errbuf, errsize, SIPHON_EPROTO, "could not decode a dead letter: unexpected data");
out:
    json_decref(o);
    if (r)
        avro_reader_free(r);
    if (have_rec)
        avro_value_decref(&rec);
    return rc;
}
