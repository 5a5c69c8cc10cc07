/*
 * test_framing.c - the two framings (single-object encoding and the Confluent wire format:
 * headers, re-framing both ways, refusing the wrong one) and the transaction metadata stream
 * (its published schemas and fingerprints, BEGIN and END encoded and read back).
 */
#include "avro_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"

static void test_confluent_header_and_reframing(void **state)
{
    (void)state;
    uint8_t h[SIPHON_AVRO_CONFLUENT_HEADER_LEN];
    siphon_avro_confluent_header(h, 0x01020304u);
    const uint8_t want[] = {0, 1, 2, 3, 4};
    assert_memory_equal(h, want, 5);
    uint32_t id = 0;
    assert_int_equal(siphon_avro_confluent_id(h, 5, &id), 1);
    assert_int_equal(id, 0x01020304u);
    assert_int_equal(siphon_avro_confluent_id(h, 4, &id), 0);

    /* an SOE message: header + body "\x02ab" */
    uint8_t soe[SIPHON_AVRO_SOE_HEADER_LEN + 3];
    siphon_avro_soe_header(soe, 0x1122334455667788ull);
    memcpy(soe + SIPHON_AVRO_SOE_HEADER_LEN, "\x04" "ab", 3);
    uint64_t fp = 0;
    assert_int_equal(siphon_avro_soe_fingerprint(soe, sizeof(soe), &fp), 1);
    assert_true(fp == 0x1122334455667788ull);
    assert_int_equal(siphon_avro_soe_fingerprint(soe, 9, &fp), 0);

    siphon_buf_t c = {0}, back = {0};
    assert_int_equal(siphon_avro_soe_to_confluent(&c, soe, sizeof(soe), 42), 0);
    assert_int_equal(c.len, 5 + 3);
    assert_memory_equal(c.data, "\x00\x00\x00\x00\x2a\x04" "ab", 8);
    assert_int_equal(siphon_avro_confluent_to_soe(&back, c.data, c.len, fp), 0);
    assert_int_equal(back.len, sizeof(soe));
    assert_memory_equal(back.data, soe, sizeof(soe));

    /* the wrong framing is refused and nothing is appended */
    size_t n = c.len;
    assert_int_equal(siphon_avro_soe_to_confluent(&c, c.data, c.len, 1), SIPHON_EINVAL);
    assert_int_equal(siphon_avro_confluent_to_soe(&c, soe, sizeof(soe), 1), SIPHON_EINVAL);
    assert_int_equal(c.len, n);
    siphon_buf_free(&c);
    siphon_buf_free(&back);
}

static json_t *decode(siphon_avro_txn_stream_t *ts, int is_key, const siphon_buf_t *b)
{
    char *text = NULL, err[512];
    if (siphon_avro_txn_decode_json(&text, ts, is_key, b->data, b->len, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static void test_transaction_events(void **state)
{
    (void)state;
    siphon_avro_txn_stream_t *ts = NULL;
    char err[512];
    assert_int_equal(siphon_avro_txn_stream_new(&ts, err, sizeof(err)), 0);

    /* fingerprints are those of the published schemas' canonical forms */
    const char *js[2] = {siphon_avro_txn_key_schema_json(), siphon_avro_txn_value_schema_json()};
    uint64_t fps[2] = {siphon_avro_txn_key_fingerprint(ts),
                       siphon_avro_txn_value_fingerprint(ts)};
    for (int i = 0; i < 2; i++) {
        char *canon = NULL;
        assert_int_equal(siphon_avro_canonical_form(&canon, js[i], strlen(js[i]), err,
                                                    sizeof(err)), 0);
        assert_true(fps[i] == siphon_avro_fingerprint64(canon, strlen(canon)));
        free(canon);
        /* and the published text is a strict, valid Avro schema with its logical types */
        siphon_schema_t *sch = NULL;
        assert_int_equal(siphon_schema_parse(&sch, js[i], strlen(js[i]), err, sizeof(err)), 0);
        siphon_schema_destroy(sch);
    }
    assert_non_null(strstr(js[1], "\"logicalType\":\"timestamp-micros\""));

    siphon_buf_t k = {0}, v = {0};
    siphon_avro_txn_event_t begin = {.id = "0/16B3748", .connector = "erp", .pos = "0/16B3748",
                                     .txid = 771, .commit_ts_us = 1709214306000000,
                                     .ts_us = 1709214307000001};
    assert_int_equal(siphon_avro_txn_encode(ts, &begin, &k, &v, err, sizeof(err)), 0);
    uint64_t fp = 0;
    assert_int_equal(siphon_avro_soe_fingerprint(k.data, k.len, &fp), 1);
    assert_true(fp == fps[0]);
    assert_int_equal(siphon_avro_soe_fingerprint(v.data, v.len, &fp), 1);
    assert_true(fp == fps[1]);
    json_t *kj = decode(ts, 1, &k), *vj = decode(ts, 0, &v);
    assert_string_equal(json_string_value(json_object_get(kj, "id")), "0/16B3748");
    assert_string_equal(json_string_value(json_object_get(vj, "status")), "BEGIN");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(vj, "txid"), "long")),
                     771);
    assert_int_equal(json_integer_value(json_object_get(vj, "commit_ts_us")), 1709214306000000);
    assert_true(json_is_null(json_object_get(vj, "event_count")));
    assert_true(json_is_null(json_object_get(vj, "data_collections")));
    assert_true(json_is_null(json_object_get(vj, "dead_letter_count")));
    json_decref(kj);
    json_decref(vj);

    siphon_avro_txn_count_t counts[2] = {{"erp.sales_order.v1", 1},
                                         {"erp.sales_order_line.v1", 2}};
    siphon_avro_txn_event_t end = begin;
    end.end = 1;
    end.txid = 0;
    end.event_count = 3;
    end.counts = counts;
    end.ncounts = 2;
    end.dead_letter_count = 1;
    siphon_buf_reset(&k);
    siphon_buf_reset(&v);
    assert_int_equal(siphon_avro_txn_encode(ts, &end, &k, &v, err, sizeof(err)), 0);
    vj = decode(ts, 0, &v);
    assert_string_equal(json_string_value(json_object_get(vj, "status")), "END");
    assert_true(json_is_null(json_object_get(vj, "txid")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(vj, "event_count"),
                                                        "long")), 3);
    json_t *dcs = json_object_get(json_object_get(vj, "data_collections"), "array");
    assert_int_equal(json_array_size(dcs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dcs, 1),
                                                          "data_collection")),
                        "erp.sales_order_line.v1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(dcs, 1), "event_count")),
                     2);
    json_decref(vj);

    /* an END after a bigger one: the array is rebuilt, not appended to */
    end.ncounts = 1;
    siphon_buf_reset(&v);
    siphon_buf_reset(&k);
    assert_int_equal(siphon_avro_txn_encode(ts, &end, &k, &v, err, sizeof(err)), 0);
    vj = decode(ts, 0, &v);
    assert_int_equal(json_array_size(json_object_get(json_object_get(vj, "data_collections"),
                                                     "array")), 1);
    json_decref(vj);

    /* no id: refused, buffers unchanged; a key is not an event */
    size_t kl = k.len, vl = v.len;
    end.id = NULL;
    assert_int_equal(siphon_avro_txn_encode(ts, &end, &k, &v, err, sizeof(err)), SIPHON_EINVAL);
    assert_int_equal(k.len, kl);
    assert_int_equal(v.len, vl);
    char *text = NULL;
    assert_int_equal(siphon_avro_txn_decode_json(&text, ts, 0, k.data, k.len, err, sizeof(err)),
                     SIPHON_EPROTO);
    assert_null(text);
    siphon_buf_free(&k);
    siphon_buf_free(&v);
    siphon_avro_txn_stream_destroy(ts);
}

int avro_test_framing(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confluent_header_and_reframing),
        cmocka_unit_test(test_transaction_events),
    };
    return cmocka_run_group_tests_name("avro framing and transactions", tests, NULL, NULL);
}
