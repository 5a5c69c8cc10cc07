/*
 * txn.c - the transaction metadata stream: BEGIN and END events of source transactions on
 * <topic_prefix>._transactions (pipeline.transactions: true; docs/events.md).
 *
 * Its schemas are fixed and versioned with Siphon, not with a mapping: the key is record
 * siphon.TransactionKey {id}, so both events of a transaction land on one partition in order;
 * the value is record siphon.TransactionEvent (status BEGIN or END, id, connector, source
 * position, txid, commit time, when Siphon produced it, and in END the counts: change events in
 * all, per stream, and dead letters). Every field added later must have a default, so the
 * schema keeps the same compatibility promise as an entity envelope.
 *
 * Encoding uses avro-c generic values (one reusable value per schema, like stream.c) and writes
 * single-object-encoded messages; the Kafka sink re-frames them for the Confluent format like
 * any other message.
 */
#include "avro/avro_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char txn_key_json[] =
    "{\"type\":\"record\",\"name\":\"TransactionKey\",\"namespace\":\"siphon\","
    "\"doc\":\"the Kafka key of a transaction event: the transaction's id\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\",\"doc\":\"the transaction's id (its "
    "source position)\"}]}";

static const char txn_value_json[] =
    "{\"type\":\"record\",\"name\":\"TransactionEvent\",\"namespace\":\"siphon\","
    "\"doc\":\"the BEGIN or the END of a source transaction whose changes Siphon published\","
    "\"fields\":["
    "{\"name\":\"status\",\"type\":\"string\",\"doc\":\"BEGIN or END\"},"
    "{\"name\":\"id\",\"type\":\"string\",\"doc\":\"the transaction's id: its source position, "
    "the same text as source.pos and transaction.id in its change events\"},"
    "{\"name\":\"connector\",\"type\":\"string\",\"doc\":\"the Siphon connector (config "
    "name)\"},"
    "{\"name\":\"pos\",\"type\":\"string\",\"doc\":\"the source position of the transaction "
    "(Postgres: commit LSN; MySQL: GTID or file:position)\"},"
    "{\"name\":\"txid\",\"type\":[\"null\",\"long\"],\"default\":null,\"doc\":\"the source "
    "transaction id, when the source has one\"},"
    "{\"name\":\"commit_ts_us\",\"type\":{\"type\":\"long\",\"logicalType\":"
    "\"timestamp-micros\"},\"doc\":\"when the source transaction committed\"},"
    "{\"name\":\"ts_us\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"},"
    "\"doc\":\"when Siphon produced this event\"},"
    "{\"name\":\"event_count\",\"type\":[\"null\",\"long\"],\"default\":null,\"doc\":\"END: "
    "the transaction's change events on entity streams (tombstones and dead letters not "
    "counted); null in BEGIN\"},"
    "{\"name\":\"data_collections\",\"type\":[\"null\",{\"type\":\"array\",\"items\":"
    "{\"type\":\"record\",\"name\":\"DataCollection\",\"fields\":["
    "{\"name\":\"data_collection\",\"type\":\"string\",\"doc\":\"a topic\"},"
    "{\"name\":\"event_count\",\"type\":\"long\",\"doc\":\"the transaction's change events on "
    "it\"}]}}],\"default\":null,\"doc\":\"END: the change events per topic (topics with at "
    "least one); null in BEGIN\"},"
    "{\"name\":\"dead_letter_count\",\"type\":[\"null\",\"long\"],\"default\":null,\"doc\":"
    "\"END: rows of the transaction sent to the dead-letter topic instead; null in BEGIN\"}"
    "]}";

enum { TX_STATUS = 0, TX_ID, TX_CONNECTOR, TX_POS, TX_TXID, TX_COMMIT, TX_TS, TX_COUNT,
       TX_COLLECTIONS, TX_DEAD, TX_NFIELDS };

struct siphon_avro_txn_stream {
    uint64_t key_fp, value_fp;
    uint8_t key_hdr[SIPHON_AVRO_SOE_HEADER_LEN], value_hdr[SIPHON_AVRO_SOE_HEADER_LEN];
    avro_schema_t key_schema, value_schema;
    avro_value_iface_t *key_iface, *value_iface;
    avro_value_t key_value, value;
    int have_key_value, have_value;
    avro_writer_t writer;
    char writer_dummy[8];
};

/* Canonical form -> fingerprint -> header; avro-c schema and a reusable value. */
static int prepare(const char *json, const char *what, uint64_t *fp,
                   uint8_t hdr[SIPHON_AVRO_SOE_HEADER_LEN], avro_schema_t *schema,
                   avro_value_iface_t **iface, avro_value_t *value, int *have, char *errbuf,
                   size_t errsize)
{
    char *canon = NULL;
    int rc = siphon_avro_canonical_form(&canon, json, strlen(json), errbuf, errsize);
    if (rc < 0)
        return rc;
    *fp = siphon_avro_fingerprint64(canon, strlen(canon));
    free(canon);
    siphon_avro_soe_header(hdr, *fp);
    if (avro_schema_from_json_length(json, strlen(json), schema) != 0) {
        *schema = NULL;
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not build the transaction %s schema: avro-c: %s", what,
                          avro_strerror());
    }
    if (!(*iface = avro_generic_class_from_schema(*schema)) ||
        avro_generic_value_new(*iface, value) != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                          "could not build the transaction %s schema: avro-c: %s", what,
                          avro_strerror());
    *have = 1;
    return 0;
}

void siphon_avro_txn_stream_destroy(siphon_avro_txn_stream_t *ts)
{
    if (!ts)
        return;
    if (ts->have_key_value)
        avro_value_decref(&ts->key_value);
    if (ts->have_value)
        avro_value_decref(&ts->value);
    if (ts->key_iface)
        avro_value_iface_decref(ts->key_iface);
    if (ts->value_iface)
        avro_value_iface_decref(ts->value_iface);
    if (ts->key_schema)
        avro_schema_decref(ts->key_schema);
    if (ts->value_schema)
        avro_schema_decref(ts->value_schema);
    if (ts->writer)
        avro_writer_free(ts->writer);
    free(ts);
}

int siphon_avro_txn_stream_new(siphon_avro_txn_stream_t **out, char *errbuf, size_t errsize)
{
    siphon_avro_txn_stream_t *ts = calloc(1, sizeof(*ts));
    int rc;
    *out = NULL;
    if (!ts)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    if ((rc = prepare(txn_key_json, "key", &ts->key_fp, ts->key_hdr, &ts->key_schema,
                      &ts->key_iface, &ts->key_value, &ts->have_key_value, errbuf,
                      errsize)) < 0 ||
        (rc = prepare(txn_value_json, "event", &ts->value_fp, ts->value_hdr, &ts->value_schema,
                      &ts->value_iface, &ts->value, &ts->have_value, errbuf, errsize)) < 0)
        goto err;
    if (!(ts->writer = avro_writer_memory(ts->writer_dummy, sizeof(ts->writer_dummy)))) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
        goto err;
    }
    *out = ts;
    return 0;
err:
    siphon_avro_txn_stream_destroy(ts);
    return rc;
}

const char *siphon_avro_txn_key_schema_json(void) { return txn_key_json; }
const char *siphon_avro_txn_value_schema_json(void) { return txn_value_json; }
uint64_t siphon_avro_txn_key_fingerprint(const siphon_avro_txn_stream_t *ts)
{
    return ts ? ts->key_fp : 0;
}
uint64_t siphon_avro_txn_value_fingerprint(const siphon_avro_txn_stream_t *ts)
{
    return ts ? ts->value_fp : 0;
}

/* avro-c copies strings set with set_string_len (len counts a NUL it does not write). */
static int set_str(avro_value_t *v, const char *s)
{
    s = s ? s : "";
    return avro_value_set_string_len(v, s, strlen(s) + 1);
}

static int set_opt_long(avro_value_t *u, int present, int64_t x)
{
    avro_value_t br;
    if (avro_value_set_branch(u, present ? 1 : 0, &br) != 0)
        return -1;
    return present ? avro_value_set_long(&br, x) : avro_value_set_null(&br);
}

/* Write v after the single-object header hdr, appending to out. */
static int write_soe(siphon_avro_txn_stream_t *ts, avro_value_t *v, const uint8_t *hdr,
                     siphon_buf_t *out, char *errbuf, size_t errsize)
{
    size_t size = 0, start = out->len;
    if (avro_value_sizeof(v, &size) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode transaction event: avro-c: %s", avro_strerror());
    if (siphon_buf_reserve(out, SIPHON_AVRO_SOE_HEADER_LEN + size) < 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM,
                          "could not encode transaction event: out of memory");
    memcpy(out->data + start, hdr, SIPHON_AVRO_SOE_HEADER_LEN);
    avro_writer_memory_set_dest(ts->writer,
                                (const char *)out->data + start + SIPHON_AVRO_SOE_HEADER_LEN,
                                (int64_t)size);
    if (avro_value_write(ts->writer, v) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode transaction event: avro-c: %s", avro_strerror());
    out->len = start + SIPHON_AVRO_SOE_HEADER_LEN + size;
    return 0;
}

int siphon_avro_txn_encode(siphon_avro_txn_stream_t *ts, const siphon_avro_txn_event_t *ev,
                           siphon_buf_t *key, siphon_buf_t *value, char *errbuf, size_t errsize)
{
    avro_value_t f[TX_NFIELDS], kid, br, item, cf;
    if (!ts || !ev || !ev->id || !key || !value)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not encode transaction event: no %s",
                          !ts ? "stream" : !ev ? "event" : !ev->id ? "id" : "output buffer");
    for (int i = 0; i < TX_NFIELDS; i++)
        if (avro_value_get_by_index(&ts->value, (size_t)i, &f[i], NULL) != 0)
            goto avro_err;
    if (avro_value_get_by_index(&ts->key_value, 0, &kid, NULL) != 0 || set_str(&kid, ev->id) ||
        set_str(&f[TX_STATUS], ev->end ? "END" : "BEGIN") || set_str(&f[TX_ID], ev->id) ||
        set_str(&f[TX_CONNECTOR], ev->connector) || set_str(&f[TX_POS], ev->pos) ||
        set_opt_long(&f[TX_TXID], ev->txid != 0, (int64_t)ev->txid) ||
        avro_value_set_long(&f[TX_COMMIT], ev->commit_ts_us) ||
        avro_value_set_long(&f[TX_TS], ev->ts_us) ||
        set_opt_long(&f[TX_COUNT], ev->end, ev->event_count) ||
        set_opt_long(&f[TX_DEAD], ev->end, ev->dead_letter_count))
        goto avro_err;
    if (!ev->end) {
        if (avro_value_set_branch(&f[TX_COLLECTIONS], 0, &br) || avro_value_set_null(&br))
            goto avro_err;
    } else {
        if (avro_value_set_branch(&f[TX_COLLECTIONS], 1, &br) || avro_value_reset(&br))
            goto avro_err;
        for (int i = 0; i < ev->ncounts; i++) {
            if (avro_value_append(&br, &item, NULL) ||
                avro_value_get_by_index(&item, 0, &cf, NULL) ||
                set_str(&cf, ev->counts[i].data_collection) ||
                avro_value_get_by_index(&item, 1, &cf, NULL) ||
                avro_value_set_long(&cf, ev->counts[i].event_count))
                goto avro_err;
        }
    }
    size_t klen = key->len, vlen = value->len;
    int rc;
    if ((rc = write_soe(ts, &ts->key_value, ts->key_hdr, key, errbuf, errsize)) < 0 ||
        (rc = write_soe(ts, &ts->value, ts->value_hdr, value, errbuf, errsize)) < 0) {
        key->len = klen;
        value->len = vlen;
        return rc;
    }
    return 0;
avro_err:
    return siphon_err(errbuf, errsize, errno == ENOMEM ? SIPHON_ENOMEM : SIPHON_EINVAL,
                      "could not encode transaction event %s: avro-c: %s", ev->id,
                      avro_strerror());
}

int siphon_avro_txn_decode_json(char **out, const siphon_avro_txn_stream_t *ts, int is_key,
                                const void *msg, size_t len, char *errbuf, size_t errsize)
{
    uint64_t fp = 0;
    avro_reader_t reader = NULL;
    avro_value_t v;
    char *json = NULL;
    int rc = 0;
    if (!out || !ts)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not decode message: no %s",
                          !out ? "output" : "stream");
    *out = NULL;
    if (!siphon_avro_soe_fingerprint(msg, len, &fp) ||
        fp != (is_key ? ts->key_fp : ts->value_fp))
        return siphon_err(errbuf, errsize, SIPHON_EPROTO,
                          "could not decode message: not a single-object-encoded transaction "
                          "%s (siphon.Transaction%s)", is_key ? "key" : "event",
                          is_key ? "Key" : "Event");
    if (avro_generic_value_new(is_key ? ts->key_iface : ts->value_iface, &v) != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    size_t body = len - SIPHON_AVRO_SOE_HEADER_LEN;
    if (!(reader = avro_reader_memory((const char *)msg + SIPHON_AVRO_SOE_HEADER_LEN,
                                      (int64_t)body)) ||
        avro_value_read(reader, &v) != 0 || avro_value_to_json(&v, 1, &json) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EPROTO,
                        "could not decode transaction %s: %s", is_key ? "key" : "event",
                        avro_strerror());
        goto done;
    }
    *out = json;
done:
    if (reader)
        avro_reader_free(reader);
    avro_value_decref(&v);
    return rc;
}
