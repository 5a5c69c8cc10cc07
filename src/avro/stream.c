/*
 * stream.c - the key and envelope schemas of one entity, and encoding change events with them.
 *
 * siphon_avro_stream_new() generates two schemas as JSON (jansson) from the entity schema:
 *   key       record <Entity>Key in the entity's namespace, the key fields in key order;
 *   envelope  record <Entity>Envelope, Debezium's shape: before/after ["null", Entity],
 *             source (record siphon.Source), op, ts_us, event_id, unchanged_fields,
 *             transaction (["null", siphon.Transaction], null unless transaction metadata
 *             is on; appended last so that the change stays compatible both ways).
 * The published text is what the canonical form and the fingerprint are derived from (by
 * parsing it back), and what avro-c builds its schema from, so the three can never disagree.
 *
 * Encoding goes through binenc (binenc.c), compiled from the two parsed schemas: the values are
 * written straight into the caller's buffer after the 10-byte single-object header, about five
 * times faster than avro-c's generic value writer, which is kept below as the reference
 * (siphon_avro__stream_encode_*_avroc: one reusable avro-c generic value per schema, written
 * with avro_value_write(); tests/unit/avro/test_binenc.c checks both give the same bytes).
 * Logical types are ours (avro-c ignores them): decimals become two's-complement bytes at the
 * schema's scale, dates int days, times and timestamps longs in the schema's unit, uuids
 * canonical lowercase text. Text and bytes are handed to avro-c without copying (a wrapped
 * buffer valid for the call), so an event costs no allocation once the buffers have grown.
 *
 * Value rules: a field whose value cannot become its type fails with SIPHON_ECONVERT and
 * "field 'x': cannot write <value type> as <avro type>[: why]" in errbuf; nothing is appended to
 * the output then. In `after`, SIPHON_V_UNCHANGED (a TOAST value Postgres did not send) is
 * written as null and the field is listed in unchanged_fields; the field must be nullable.
 * `before` is written only when the source sent the complete old row: an image holding any
 * SIPHON_V_UNCHANGED value (REPLICA IDENTITY DEFAULT sends only the key) is written as null,
 * since the key already travels in the message key and a half-null row would be ambiguous.
 */
#include "avro/avro_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- building the schemas ---- */

static int set_new(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *field_json(const char *name, json_t *type, const char *doc)
{
    json_t *f = json_object();
    if (!f || !type || set_new(f, "name", json_string(name)) < 0 ||
        json_object_set_new(f, "type", type) < 0 || (doc && set_new(f, "doc", json_string(doc)) < 0)) {
        if (f)
            json_decref(f);
        else
            json_decref(type);
        return NULL;
    }
    return f;
}

static json_t *logical_long(const char *lt)
{
    return json_pack("{s:s, s:s}", "type", "long", "logicalType", lt);
}

static json_t *source_json(void)
{
    json_t *fields = json_pack(
        "[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s},"
        " {s:s, s:s, s:s}, {s:s, s:[s,s], s:n, s:s}, {s:s, s:o, s:s}, {s:s, s:s, s:s}]",
        "name", "connector", "type", "string", "doc", "the Siphon connector (config name)",
        "name", "db", "type", "string", "doc", "the source database",
        "name", "schema", "type", "string", "doc", "the source schema",
        "name", "table", "type", "string", "doc", "the source table",
        "name", "pos", "type", "string", "doc",
        "the source position of the transaction (Postgres: commit LSN)",
        "name", "txid", "type", "null", "long", "default", "doc", "the source transaction id",
        "name", "commit_ts_us", "type", logical_long("timestamp-micros"), "doc",
        "when the source transaction committed",
        "name", "snapshot", "type", "boolean", "doc", "true for rows read by a snapshot");
    if (!fields)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:o}", "type", "record", "name", "Source", "namespace",
                     "siphon", "fields", fields);
}

/* siphon.Transaction: where a change sits in its source transaction (Debezium's block). */
static json_t *transaction_json(void)
{
    json_t *fields = json_pack(
        "[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]",
        "name", "id", "type", "string", "doc",
        "the transaction's id: its source position (the same as source.pos), also the key of "
        "its BEGIN and END events",
        "name", "total_order", "type", "long", "doc",
        "1-based position of this event among the transaction's change events, all streams",
        "name", "data_collection_order", "type", "long", "doc",
        "1-based position of this event among the transaction's events of this stream");
    if (!fields)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:o}", "type", "record", "name", "Transaction",
                     "namespace", "siphon", "fields", fields);
}

/* The short name of a full name (after the last dot). */
static const char *short_name(const char *full)
{
    const char *dot = strrchr(full, '.');
    return dot ? dot + 1 : full;
}

static json_t *key_schema_json(const siphon_schema_t *sch, const int *key_index, int nkey,
                               const char *ns, siphon_arena_t *arena)
{
    /* A record node whose fields are the key fields: one walk, so a named type shared by two
     * key fields is defined once. */
    siphon_avro_type_t *rec = siphon_arena_alloc(arena, sizeof(*rec));
    siphon_avro_field_t *fields = siphon_arena_alloc(arena, (size_t)nkey * sizeof(*fields));
    const char *sname = short_name(sch->record->name);
    size_t nl = strlen(ns), sl = strlen(sname);
    char *name = siphon_arena_alloc(arena, nl + sl + 6);
    if (!rec || !fields || !name)
        return NULL;
    if (nl)
        snprintf(name, nl + sl + 6, "%s.%sKey", ns, sname);
    else
        snprintf(name, nl + sl + 6, "%sKey", sname);
    memset(rec, 0, sizeof(*rec));
    rec->kind = SIPHON_AVRO_RECORD;
    rec->name = name;
    rec->nfields = nkey;
    rec->fields = fields;
    for (int i = 0; i < nkey; i++)
        fields[i] = sch->record->fields[key_index[i]];
    json_t *j = siphon_avro__type_to_json(rec, "");
    if (j && json_object_set_new(j, "doc", json_string("the Kafka key: the entity's key fields")) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *envelope_build(const siphon_schema_t *sch, const char *ns, char *errbuf,
                              size_t errsize);

/* The envelope schema as JSON into *out (caller decrefs). 0, SIPHON_EINVAL or SIPHON_ENOMEM. */
static int envelope_json(json_t **out, const siphon_schema_t *sch, const char *ns, char *errbuf,
                         size_t errsize)
{
    if (errbuf && errsize)
        errbuf[0] = '\0';
    *out = envelope_build(sch, ns, errbuf, errsize);
    if (*out)
        return 0;
    if (errbuf && errsize && errbuf[0])
        return SIPHON_EINVAL;
    return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
}

static json_t *envelope_build(const siphon_schema_t *sch, const char *ns, char *errbuf,
                              size_t errsize)
{
    json_error_t jerr;
    json_t *entity = json_loadb(sch->json, strlen(sch->json), JSON_DECODE_ANY, &jerr);
    json_t *env = NULL, *fields = NULL;
    char name[512];
    if (!entity) {
        siphon_err(errbuf, errsize, SIPHON_EINVAL, "%s: could not re-read the schema JSON: %s",
                   sch->path ? sch->path : "<schema>", jerr.text);
        return NULL;
    }
    snprintf(name, sizeof(name), "%sEnvelope", short_name(sch->record->name));
    fields = json_array();
    if (!fields ||
        json_array_append_new(
            fields,
            field_json("before", json_pack("[s,o]", "null", entity),
                       "the entity before the change: set for u and d when the source sent the "
                       "complete old row (Postgres REPLICA IDENTITY FULL), else null")) < 0) {
        json_decref(fields);
        return NULL;
    }
    if (json_array_append_new(fields,
                              field_json("after", json_pack("[s,s]", "null", sch->record->name),
                                         "the entity after the change: set for c, u and r, "
                                         "null for d")) < 0 ||
        json_array_append_new(fields, field_json("source", source_json(),
                                                 "where and when the change happened")) < 0 ||
        json_array_append_new(fields, field_json("op", json_string("string"),
                                                 "c create, u update, d delete, r snapshot "
                                                 "read, t truncate (the source table was "
                                                 "emptied; no before, no after, no key)")) < 0 ||
        json_array_append_new(fields, field_json("ts_us", logical_long("timestamp-micros"),
                                                 "when Siphon produced the event")) < 0 ||
        json_array_append_new(fields, field_json("event_id", json_string("string"),
                                                 "deterministic id of the change: the same "
                                                 "change always has the same id; de-duplicate "
                                                 "on it")) < 0) {
        json_decref(fields);
        return NULL;
    }
    json_t *unch = field_json("unchanged_fields",
                              json_pack("{s:s, s:s}", "type", "array", "items", "string"),
                              "fields of after that the source did not send because they did "
                              "not change (Postgres TOAST): they are null in after, keep the "
                              "previous value");
    if (!unch || json_object_set_new(unch, "default", json_array()) < 0 ||
        json_array_append_new(fields, unch) < 0) {
        json_decref(fields);
        return NULL;
    }
    /* Appended last, as a ["null", ...] union defaulting to null: readers of the envelope
     * without it resolve it away (BACKWARD and FORWARD compatible, checked by compat.c in
     * tests/unit/avro/test_stream.c). Null unless pipeline.transactions is on. */
    json_t *txn = field_json("transaction", json_pack("[s,o]", "null", transaction_json()),
                             "the source transaction of the change, when pipeline.transactions "
                             "is on (the BEGIN and END events are on <prefix>._transactions); "
                             "null otherwise, and for snapshot reads");
    if (!txn || json_object_set_new(txn, "default", json_null()) < 0 ||
        json_array_append_new(fields, txn) < 0) {
        json_decref(fields);
        return NULL;
    }
    json_t *before_f = json_array_get(fields, 0), *after_f = json_array_get(fields, 1);
    if (json_object_set_new(before_f, "default", json_null()) < 0 ||
        json_object_set_new(after_f, "default", json_null()) < 0) {
        json_decref(fields);
        return NULL;
    }
    env = json_object();
    if (!env || set_new(env, "type", json_string("record")) < 0 ||
        set_new(env, "name", json_string(name)) < 0 ||
        (*ns && set_new(env, "namespace", json_string(ns)) < 0) ||
        set_new(env, "doc", json_string("a change event of the entity (Siphon envelope)")) < 0 ||
        json_object_set_new(env, "fields", fields) < 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

/* Parse generated JSON back into types (strict), canonical form, fingerprint, avro-c schema. */
static int finish_schema(siphon_avro_stream_t *st, const char *json, const char *what,
                         const siphon_avro_type_t **type, uint64_t *fp,
                         uint8_t hdr[SIPHON_AVRO_SOE_HEADER_LEN], avro_schema_t *avsc,
                         char *errbuf, size_t errsize)
{
    json_error_t jerr;
    siphon_buf_t canon = {0};
    siphon_avro_type_t *t;
    size_t len = strlen(json);
    char origin[600];
    int rc;
    snprintf(origin, sizeof(origin), "<%s schema of %s>", what, st->sch->record->name);
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "%s: %s", origin, jerr.text);
    rc = siphon_avro__parse(&t, root, &st->arena, 1, json, len, origin, errbuf, errsize);
    json_decref(root);
    if (rc < 0)
        return rc;
    if (siphon_avro__canonical_append(&canon, t) < 0) {
        siphon_buf_free(&canon);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    *fp = siphon_avro_fingerprint64(canon.data, canon.len);
    siphon_buf_free(&canon);
    siphon_avro_soe_header(hdr, *fp);
    *type = t;
    if (avro_schema_from_json_length(json, len, avsc) != 0) {
        *avsc = NULL;
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not build the %s schema of %s: avro-c: %s", what,
                          st->sch->record->name, avro_strerror());
    }
    return 0;
}

void siphon_avro_stream_destroy(siphon_avro_stream_t *st)
{
    if (!st)
        return;
    if (st->have_key_value)
        avro_value_decref(&st->key_value);
    if (st->have_env_value)
        avro_value_decref(&st->env_value);
    if (st->key_iface)
        avro_value_iface_decref(st->key_iface);
    if (st->value_iface)
        avro_value_iface_decref(st->value_iface);
    if (st->key_schema)
        avro_schema_decref(st->key_schema);
    if (st->value_schema)
        avro_schema_decref(st->value_schema);
    if (st->writer)
        avro_writer_free(st->writer);
    siphon_binenc_destroy(st->key_enc);
    siphon_binenc_destroy(st->env_enc);
    siphon_buf_free(&st->scratch);
    siphon_arena_destroy(&st->arena);
    free(st->key_json);
    free(st->value_json);
    free(st->key_index);
    free(st);
}

static int key_type_ok(const siphon_avro_type_t *t)
{
    if (t->kind == SIPHON_AVRO_UNION) {
        for (int i = 0; i < t->nbranches; i++)
            if (!key_type_ok(t->branches[i]))
                return 0;
        return 1;
    }
    return t->kind != SIPHON_AVRO_RECORD && t->kind != SIPHON_AVRO_ARRAY &&
           t->kind != SIPHON_AVRO_MAP;
}

int siphon_avro_stream_new(siphon_avro_stream_t **out, const siphon_schema_t *sch,
                           const char *const *key_fields, int nkey, char *errbuf, size_t errsize)
{
    siphon_avro_stream_t *st = NULL;
    json_t *kj = NULL, *vj = NULL;
    char ns[512];
    int rc;

    if (!out || !sch || !sch->record || sch->record->kind != SIPHON_AVRO_RECORD || !sch->json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not build stream: no entity schema");
    *out = NULL;
    const char *where = sch->path ? sch->path : sch->record->name;
    if (nkey <= 0 || !key_fields)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not build stream for %s: no key fields (the mapping's key "
                          "names the entity fields that identify a row)", where);
    if (!(st = calloc(1, sizeof(*st))))
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    st->sch = sch;
    siphon_arena_init(&st->arena, 16 * 1024);
    st->nkey = nkey;
    if (!(st->key_index = calloc((size_t)nkey, sizeof(int)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto err;
    }
    for (int i = 0; i < nkey; i++) {
        int idx = key_fields[i] ? siphon_schema_field_index(sch, key_fields[i]) : -1;
        if (idx < 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not build stream for %s: key field '%s' is not a field of "
                            "record %s", where, key_fields[i] ? key_fields[i] : "(null)",
                            sch->record->name);
            goto err;
        }
        for (int k = 0; k < i; k++)
            if (st->key_index[k] == idx) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "could not build stream for %s: key field '%s' is listed twice",
                                where, key_fields[i]);
                goto err;
            }
        if (!key_type_ok(sch->record->fields[idx].type)) {
            char desc[160];
            siphon_avro__type_describe(sch->record->fields[idx].type, desc, sizeof(desc));
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "could not build stream for %s: key field '%s' has type %s; a key "
                            "field must be a primitive, enum, fixed or logical type",
                            where, key_fields[i], desc);
            goto err;
        }
        st->key_index[i] = idx;
    }

    siphon_avro__namespace_of(sch->record->name, ns, sizeof(ns));
    if (!(kj = key_schema_json(sch, st->key_index, nkey, ns, &st->arena)) ||
        !(st->key_json = json_dumps(kj, JSON_COMPACT))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto err;
    }
    if ((rc = envelope_json(&vj, sch, ns, errbuf, errsize)) < 0)
        goto err;
    if (!(st->value_json = json_dumps(vj, JSON_COMPACT))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto err;
    }
    if ((rc = finish_schema(st, st->key_json, "key", &st->key_type, &st->key_fp, st->key_hdr,
                            &st->key_schema, errbuf, errsize)) < 0 ||
        (rc = finish_schema(st, st->value_json, "envelope", &st->env_type, &st->value_fp,
                            st->value_hdr, &st->value_schema, errbuf, errsize)) < 0)
        goto err;
    if ((rc = siphon_binenc_new(&st->key_enc, st->key_type, errbuf, errsize)) < 0 ||
        (rc = siphon_binenc_new(&st->env_enc, st->env_type, errbuf, errsize)) < 0)
        goto err;
    st->env_txn = siphon_binenc_field_index(st->env_enc, "transaction");
    st->entity = st->env_type->fields[ENV_BEFORE].type->branches[1];
    if (st->env_type->nfields != ENV_NFIELDS || st->entity->nfields != sch->record->nfields ||
        st->env_type->fields[ENV_SOURCE].type->nfields != SRC_NFIELDS) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not build stream for %s: the generated envelope does not match "
                        "the entity (a bug)", where);
        goto err;
    }

    if (!(st->key_iface = avro_generic_class_from_schema(st->key_schema)) ||
        !(st->value_iface = avro_generic_class_from_schema(st->value_schema))) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not build stream for %s: avro-c: %s",
                        where, avro_strerror());
        goto err;
    }
    if (avro_generic_value_new(st->key_iface, &st->key_value) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not build stream for %s: avro-c: %s",
                        where, avro_strerror());
        goto err;
    }
    st->have_key_value = 1;
    if (avro_generic_value_new(st->value_iface, &st->env_value) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not build stream for %s: avro-c: %s",
                        where, avro_strerror());
        goto err;
    }
    st->have_env_value = 1;
    for (int i = 0; i < ENV_NFIELDS; i++)
        if (avro_value_get_by_index(&st->env_value, (size_t)i, &st->env_field[i], NULL) != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "avro-c: %s", avro_strerror());
            goto err;
        }
    for (int i = 0; i < SRC_NFIELDS; i++)
        if (avro_value_get_by_index(&st->env_field[ENV_SOURCE], (size_t)i, &st->src_field[i],
                                    NULL) != 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL, "avro-c: %s", avro_strerror());
            goto err;
        }
    if (!(st->writer = avro_writer_memory(st->writer_dummy, sizeof(st->writer_dummy)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto err;
    }
    st->key_hint = 64;
    st->value_hint = 512;
    json_decref(kj);
    json_decref(vj);
    *out = st;
    return 0;

err:
    json_decref(kj);
    json_decref(vj);
    siphon_avro_stream_destroy(st);
    return rc;
}

const char *siphon_avro_stream_key_schema_json(const siphon_avro_stream_t *st)
{
    return st ? st->key_json : NULL;
}

const char *siphon_avro_stream_value_schema_json(const siphon_avro_stream_t *st)
{
    return st ? st->value_json : NULL;
}

uint64_t siphon_avro_stream_key_fingerprint(const siphon_avro_stream_t *st)
{
    return st ? st->key_fp : 0;
}

uint64_t siphon_avro_stream_value_fingerprint(const siphon_avro_stream_t *st)
{
    return st ? st->value_fp : 0;
}

/* ---- encoding values ---- */

static int avro_failed(char *errbuf, size_t errsize, const char *fname)
{
    return siphon_err(errbuf, errsize, errno == ENOMEM ? SIPHON_ENOMEM : SIPHON_EINVAL,
                      "field '%s': the Avro library (avro-c) failed: %s", fname, avro_strerror());
}

/* Hand text to avro-c without copying. avro-c's string length counts a terminating NUL that
 * it never writes (it writes size - 1 bytes), so the wrapped size is len + 1 while only len
 * bytes are ever read: the text needs no NUL. Valid until the value is written. */
static int give_string(avro_value_t *dst, const char *p, size_t len)
{
    avro_wrapped_buffer_t wb;
    if (!p || len == 0) {
        p = "";
        len = 0;
    }
    if (avro_wrapped_buffer_new(&wb, p, len + 1) != 0)
        return -1;
    return avro_value_give_string_len(dst, &wb) != 0 ? -1 : 0;
}

static int give_bytes(avro_value_t *dst, const void *p, size_t len)
{
    avro_wrapped_buffer_t wb;
    if (!p || len == 0) {
        p = "";
        len = 0;
    }
    if (avro_wrapped_buffer_new(&wb, p, len) != 0)
        return -1;
    return avro_value_give_bytes(dst, &wb) != 0 ? -1 : 0;
}

static int write_decimal(siphon_avro_stream_t *st, const siphon_avro_type_t *t, avro_value_t *dst,
                         const siphon_value_t *v, const char *fname, char *errbuf,
                         size_t errsize)
{
    const uint8_t *bytes;
    size_t n;
    int rc = siphon_avro__decimal_of(&st->scratch, v, t, fname, &bytes, &n, errbuf, errsize);
    if (rc < 0)
        return rc;
    if (t->kind == SIPHON_AVRO_FIXED)
        rc = avro_value_set_fixed(dst, (void *)bytes, n);
    else
        rc = avro_value_set_bytes(dst, (void *)bytes, n);
    return rc ? avro_failed(errbuf, errsize, fname) : 0;
}

static int write_value(siphon_avro_stream_t *st, const siphon_avro_type_t *t, avro_value_t *dst,
                       const siphon_value_t *v, const char *fname, char *errbuf, size_t errsize)
{
    siphon_vtype_t vt = v ? v->type : SIPHON_V_NULL;
    int rc = 0;

    if (t->kind == SIPHON_AVRO_UNION) {
        /* the common ["null", T]: no search */
        if (t->nbranches == 2 && t->branches[0]->kind == SIPHON_AVRO_NULL) {
            int i = vt == SIPHON_V_NULL ? 0 : siphon_avro__accepts(t->branches[1], vt) ? 1 : -1;
            if (i >= 0) {
                avro_value_t br;
                if (avro_value_set_branch(dst, i, &br) != 0)
                    return avro_failed(errbuf, errsize, fname);
                if (i == 0)
                    return avro_value_set_null(&br) ? avro_failed(errbuf, errsize, fname) : 0;
                return write_value(st, t->branches[1], &br, v, fname, errbuf, errsize);
            }
        }
        for (int i = 0; i < t->nbranches; i++) {
            if (siphon_avro__accepts(t->branches[i], vt)) {
                avro_value_t br;
                if (avro_value_set_branch(dst, i, &br) != 0)
                    return avro_failed(errbuf, errsize, fname);
                return write_value(st, t->branches[i], &br, v, fname, errbuf, errsize);
            }
        }
        return siphon_avro__cannot(errbuf, errsize, fname, vt, t, NULL);
    }
    if (!siphon_avro__accepts(t, vt))
        return siphon_avro__cannot(errbuf, errsize, fname, vt, t,
                      vt == SIPHON_V_NULL ? "the field is not nullable" : NULL);

    switch (t->kind) {
    case SIPHON_AVRO_NULL:
        rc = avro_value_set_null(dst);
        break;
    case SIPHON_AVRO_BOOLEAN:
        rc = avro_value_set_boolean(dst, v->u.b != 0);
        break;
    case SIPHON_AVRO_INT: {
        int64_t x;
        if (vt == SIPHON_V_DATE)
            x = v->u.date;
        else if (vt == SIPHON_V_TIME)
            x = siphon_avro__floor_div(v->u.time_us, 1000);
        else
            x = v->u.i;
        if (x < INT32_MIN || x > INT32_MAX)
            return siphon_avro__cannot(errbuf, errsize, fname, vt, t,
                          "out of range for a 32-bit int (-2147483648..2147483647)");
        rc = avro_value_set_int(dst, (int32_t)x);
        break;
    }
    case SIPHON_AVRO_LONG: {
        int64_t x;
        int millis = t->logical == SIPHON_AVRO_LT_TIMESTAMP_MILLIS ||
                     t->logical == SIPHON_AVRO_LT_LOCAL_TIMESTAMP_MILLIS;
        if (vt == SIPHON_V_TIMESTAMP)
            x = millis ? siphon_avro__floor_div(v->u.ts.us, 1000) : v->u.ts.us;
        else if (vt == SIPHON_V_TIME)
            x = v->u.time_us;
        else
            x = v->u.i;
        rc = avro_value_set_long(dst, x);
        break;
    }
    case SIPHON_AVRO_FLOAT:
        rc = avro_value_set_float(dst, vt == SIPHON_V_INT ? (float)v->u.i : (float)v->u.f);
        break;
    case SIPHON_AVRO_DOUBLE:
        rc = avro_value_set_double(dst, vt == SIPHON_V_INT ? (double)v->u.i : v->u.f);
        break;
    case SIPHON_AVRO_BYTES:
    case SIPHON_AVRO_FIXED:
        if (t->logical == SIPHON_AVRO_LT_DECIMAL)
            return write_decimal(st, t, dst, v, fname, errbuf, errsize);
        if (t->kind == SIPHON_AVRO_FIXED) {
            if (v->u.s.len != (size_t)t->size) {
                char why[96];
                snprintf(why, sizeof(why), "%zu bytes, the fixed size is %d", v->u.s.len, t->size);
                return siphon_avro__cannot(errbuf, errsize, fname, vt, t, why);
            }
            rc = avro_value_set_fixed(dst, (void *)(v->u.s.len ? v->u.s.ptr : ""), v->u.s.len);
        } else {
            rc = give_bytes(dst, v->u.s.ptr, v->u.s.len);
        }
        break;
    case SIPHON_AVRO_STRING:
        if (t->logical == SIPHON_AVRO_LT_UUID) {
            char *u = st->uuid;
            if ((rc = siphon_avro__uuid_text(u, v, t, fname, errbuf, errsize)) < 0)
                return rc;
            u[36] = '\0';
            rc = avro_value_set_string_len(dst, u, 37);
        } else {
            rc = give_string(dst, v->u.s.ptr, v->u.s.len);
        }
        break;
    case SIPHON_AVRO_ENUM:
        for (int i = 0; i < t->nsymbols; i++) {
            const char *sym = t->symbols[i];
            if (strlen(sym) == v->u.s.len && memcmp(sym, v->u.s.ptr, v->u.s.len) == 0) {
                rc = avro_value_set_enum(dst, i);
                return rc ? avro_failed(errbuf, errsize, fname) : 0;
            }
        }
        return siphon_avro__not_symbol(errbuf, errsize, fname, v, t);
    default:
        return siphon_avro__cannot(errbuf, errsize, fname, vt, t, NULL);
    }
    return rc ? avro_failed(errbuf, errsize, fname) : 0;
}

/* Write one entity image into the ["null", Entity] union `u`. For `after`, UNCHANGED values
 * become null and are listed in unchanged_fields; a `before` holding any is written as null. */
static int write_image(siphon_avro_stream_t *st, avro_value_t *u, const siphon_value_t *vals,
                       int is_after, char *errbuf, size_t errsize)
{
    const siphon_avro_type_t *ent = st->entity;
    avro_value_t rec, fv;
    int rc;

    if (vals && !is_after)
        for (int i = 0; i < ent->nfields; i++)
            if (vals[i].type == SIPHON_V_UNCHANGED) {
                vals = NULL;
                break;
            }
    if (!vals) {
        avro_value_t nb;
        if (avro_value_set_branch(u, 0, &nb) != 0 || avro_value_set_null(&nb) != 0)
            return avro_failed(errbuf, errsize, is_after ? "after" : "before");
        return 0;
    }
    if (avro_value_set_branch(u, 1, &rec) != 0)
        return avro_failed(errbuf, errsize, is_after ? "after" : "before");
    for (int i = 0; i < ent->nfields; i++) {
        const siphon_avro_field_t *f = &ent->fields[i];
        const siphon_value_t *v = &vals[i];
        if (avro_value_get_by_index(&rec, (size_t)i, &fv, NULL) != 0)
            return avro_failed(errbuf, errsize, f->name);
        if (v->type == SIPHON_V_UNCHANGED) {
            if (!f->nullable)
                return siphon_avro__cannot(errbuf, errsize, f->name, v->type, f->type,
                              "the source did not send this value (a PostgreSQL TOAST value "
                              "that did not change); make the field nullable or set REPLICA "
                              "IDENTITY FULL on the table");
            avro_value_t item;
            if ((rc = write_value(st, f->type, &fv, NULL, f->name, errbuf, errsize)) < 0)
                return rc;
            if (avro_value_append(&st->env_field[ENV_UNCHANGED], &item, NULL) != 0 ||
                give_string(&item, f->name, strlen(f->name)) < 0)
                return avro_failed(errbuf, errsize, f->name);
            continue;
        }
        if ((rc = write_value(st, f->type, &fv, v, f->name, errbuf, errsize)) < 0)
            return rc;
    }
    return 0;
}

/* The envelope's transaction union: null, or the block of a change inside a transaction. */
static int write_transaction(avro_value_t *u, const siphon_avro_txn_ref_t *tx, char *errbuf,
                             size_t errsize)
{
    avro_value_t br, f;
    if (!tx) {
        if (avro_value_set_branch(u, 0, &br) != 0 || avro_value_set_null(&br) != 0)
            return avro_failed(errbuf, errsize, "transaction");
        return 0;
    }
    if (!tx->id)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode event: a transaction block without an id");
    if (avro_value_set_branch(u, 1, &br) != 0 ||
        avro_value_get_by_index(&br, 0, &f, NULL) != 0 ||
        give_string(&f, tx->id, strlen(tx->id)) < 0 ||
        avro_value_get_by_index(&br, 1, &f, NULL) != 0 ||
        avro_value_set_long(&f, tx->total_order) != 0 ||
        avro_value_get_by_index(&br, 2, &f, NULL) != 0 ||
        avro_value_set_long(&f, tx->data_collection_order) != 0)
        return avro_failed(errbuf, errsize, "transaction");
    return 0;
}

/* Write value v after the single-object header into out (appending). */
static int serialize(siphon_avro_stream_t *st, avro_value_t *v, const uint8_t *hdr,
                     size_t *hint, siphon_buf_t *out, char *errbuf, size_t errsize)
{
    size_t start = out->len;
    size_t want = SIPHON_AVRO_SOE_HEADER_LEN + *hint + 64;
    for (;;) {
        if (siphon_buf_reserve(out, want) < 0)
            return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not encode event: out of "
                              "memory");
        memcpy(out->data + start, hdr, SIPHON_AVRO_SOE_HEADER_LEN);
        size_t room = out->cap - start - SIPHON_AVRO_SOE_HEADER_LEN;
        avro_writer_memory_set_dest(st->writer, (const char *)out->data + start +
                                    SIPHON_AVRO_SOE_HEADER_LEN, (int64_t)room);
        int rc = avro_value_write(st->writer, v);
        if (rc == 0)
            break;
        if (rc != ENOSPC || want > ((size_t)1 << 31))
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not encode event: avro-c: %s", avro_strerror());
        want = 2 * (out->cap - start);
    }
    size_t n = (size_t)avro_writer_tell(st->writer);
    out->len = start + SIPHON_AVRO_SOE_HEADER_LEN + n;
    if (n > *hint)
        *hint = n;
    return 0;
}

int siphon_avro__stream_encode_key_avroc(siphon_avro_stream_t *st, const siphon_value_t *key,
                                         siphon_buf_t *out, char *errbuf, size_t errsize)
{
    int rc;
    if (!st || !key || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode key: no %s",
                          !st ? "stream" : !key ? "key values" : "output buffer");
    for (int i = 0; i < st->nkey; i++) {
        const siphon_avro_field_t *f = &st->key_type->fields[i];
        avro_value_t fv;
        if (key[i].type == SIPHON_V_UNCHANGED)
            return siphon_avro__cannot(errbuf, errsize, f->name, key[i].type, f->type,
                          "a key field must have a value");
        if (avro_value_get_by_index(&st->key_value, (size_t)i, &fv, NULL) != 0)
            return avro_failed(errbuf, errsize, f->name);
        if ((rc = write_value(st, f->type, &fv, &key[i], f->name, errbuf, errsize)) < 0)
            return rc;
    }
    return serialize(st, &st->key_value, st->key_hdr, &st->key_hint, out, errbuf, errsize);
}

/* The checks both envelope encoders make before writing anything. */
static int check_event(const siphon_avro_stream_t *st, const siphon_avro_event_t *ev,
                       const siphon_buf_t *out, char *errbuf, size_t errsize)
{
    if (!st || !ev || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode event: no %s",
                          !st ? "stream" : !ev ? "event" : "output buffer");
    if (!ev->op || !strchr("cudrt", ev->op))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode event: op '%c' is not one of c, u, d, r, t",
                          ev->op ? ev->op : '?');
    if (ev->op == 't' && (ev->before || ev->after))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode event: a truncate event (op 't') has neither before "
                          "nor after");
    if (!ev->event_id)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode event: no event_id");
    return 0;
}

int siphon_avro__stream_encode_value_avroc(siphon_avro_stream_t *st,
                                           const siphon_avro_event_t *ev, siphon_buf_t *out,
                                           char *errbuf, size_t errsize)
{
    static const char *const ops = "cudrt";
    int rc;
    if ((rc = check_event(st, ev, out, errbuf, errsize)) < 0)
        return rc;
    const char *op = strchr(ops, ev->op);

    avro_value_t *ef = st->env_field, *sf = st->src_field, br;
    if (avro_value_reset(&ef[ENV_UNCHANGED]) != 0)
        return avro_failed(errbuf, errsize, "unchanged_fields");
    if ((rc = write_image(st, &ef[ENV_BEFORE], ev->before, 0, errbuf, errsize)) < 0 ||
        (rc = write_image(st, &ef[ENV_AFTER], ev->after, 1, errbuf, errsize)) < 0)
        return rc;

    const siphon_avro_source_t *s = &ev->source;
    if (give_string(&sf[SRC_CONNECTOR], s->connector, s->connector ? strlen(s->connector) : 0) ||
        give_string(&sf[SRC_DB], s->db, s->db ? strlen(s->db) : 0) ||
        give_string(&sf[SRC_SCHEMA], s->schema, s->schema ? strlen(s->schema) : 0) ||
        give_string(&sf[SRC_TABLE], s->table, s->table ? strlen(s->table) : 0) ||
        give_string(&sf[SRC_POS], s->pos, s->pos ? strlen(s->pos) : 0))
        return avro_failed(errbuf, errsize, "source");
    if (s->txid) {
        if (avro_value_set_branch(&sf[SRC_TXID], 1, &br) != 0 ||
            avro_value_set_long(&br, (int64_t)s->txid) != 0)
            return avro_failed(errbuf, errsize, "source.txid");
    } else if (avro_value_set_branch(&sf[SRC_TXID], 0, &br) != 0 || avro_value_set_null(&br)) {
        return avro_failed(errbuf, errsize, "source.txid");
    }
    if (avro_value_set_long(&sf[SRC_COMMIT_TS_US], s->commit_ts_us) != 0 ||
        avro_value_set_boolean(&sf[SRC_SNAPSHOT], s->snapshot != 0) != 0 ||
        give_string(&ef[ENV_OP], op, 1) < 0 ||
        avro_value_set_long(&ef[ENV_TS_US], ev->ts_us) != 0 ||
        give_string(&ef[ENV_EVENT_ID], ev->event_id, strlen(ev->event_id)) < 0)
        return avro_failed(errbuf, errsize, "envelope");
    if ((rc = write_transaction(&ef[ENV_TRANSACTION], ev->transaction, errbuf, errsize)) < 0)
        return rc;

    return serialize(st, &st->env_value, st->value_hdr, &st->value_hint, out, errbuf, errsize);
}

/* ---- the hot path: binenc ---- */

int siphon_avro_stream_encode_key(siphon_avro_stream_t *st, const siphon_value_t *key,
                                  siphon_buf_t *out, char *errbuf, size_t errsize)
{
    if (!st || !key || !out)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not encode key: no %s",
                          !st ? "stream" : !key ? "key values" : "output buffer");
    for (int i = 0; i < st->nkey; i++)
        if (key[i].type == SIPHON_V_UNCHANGED)
            return siphon_avro__cannot(errbuf, errsize, st->key_type->fields[i].name, key[i].type,
                          st->key_type->fields[i].type, "a key field must have a value");
    size_t start = out->len;
    if (siphon_buf_append(out, st->key_hdr, SIPHON_AVRO_SOE_HEADER_LEN) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not encode key: out of memory");
    int rc = siphon_binenc_write_row(st->key_enc, key, out, errbuf, errsize);
    if (rc < 0)
        out->len = start; /* out unchanged on any error */
    return rc;
}

int siphon_avro_stream_encode_value(siphon_avro_stream_t *st, const siphon_avro_event_t *ev,
                                    siphon_buf_t *out, char *errbuf, size_t errsize)
{
    int rc;
    if ((rc = check_event(st, ev, out, errbuf, errsize)) < 0)
        return rc;

    /* the transaction block (record siphon.Transaction: id, total_order, data_collection_order) */
    siphon_value_t txv[3];
    siphon_binenc_in_t txin[3];
    siphon_binenc_extra_t extra = {st->env_txn, {.kind = SIPHON_BINENC_NULL}};
    if (ev->transaction) {
        const siphon_avro_txn_ref_t *tx = ev->transaction;
        if (!tx->id)
            return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                              "could not encode event: a transaction block without an id");
        txv[0] = (siphon_value_t){.type = SIPHON_V_TEXT, .u.s = {tx->id, strlen(tx->id)}};
        txv[1] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = tx->total_order};
        txv[2] = (siphon_value_t){.type = SIPHON_V_INT, .u.i = tx->data_collection_order};
        for (int i = 0; i < 3; i++)
            txin[i] = (siphon_binenc_in_t){.kind = SIPHON_BINENC_VALUE, .u.value = &txv[i]};
        extra.in = (siphon_binenc_in_t){.kind = SIPHON_BINENC_RECORD, .u.rec = txin};
    }
    size_t start = out->len;
    if (siphon_buf_append(out, st->value_hdr, SIPHON_AVRO_SOE_HEADER_LEN) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "could not encode event: out of "
                          "memory");
    rc = siphon_binenc_write_event(st->env_enc, ev, &extra, st->env_txn >= 0, out, errbuf,
                                   errsize);
    if (rc < 0)
        out->len = start; /* out unchanged on any error */
    return rc;
}
