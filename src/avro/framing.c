/*
 * framing.c - the two ways a Kafka message says which schema wrote it.
 *
 * Siphon encodes every key and value as Avro single-object encoding (SOE: C3 01 + the 8-byte
 * little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the Avro
 * binary). The Confluent wire format puts a magic byte 0 and the 4-byte big-endian id the
 * Schema Registry gave the schema in front of the same Avro binary. The Kafka sink turns the
 * first into the second when sink.format is confluent: the Avro body is the same bytes in both,
 * so re-framing is a header swap, never a re-encoding.
 */
#include "avro/avro_int.h"

#include <string.h>

#include "core/error.h"

void siphon_avro_confluent_header(uint8_t out[SIPHON_AVRO_CONFLUENT_HEADER_LEN],
                                  uint32_t schema_id)
{
    out[0] = 0;
    out[1] = (uint8_t)(schema_id >> 24);
    out[2] = (uint8_t)(schema_id >> 16);
    out[3] = (uint8_t)(schema_id >> 8);
    out[4] = (uint8_t)schema_id;
}

int siphon_avro_soe_fingerprint(const void *msg, size_t len, uint64_t *fingerprint)
{
    const uint8_t *p = msg;
    if (!p || len < SIPHON_AVRO_SOE_HEADER_LEN || p[0] != 0xC3 || p[1] != 0x01)
        return 0;
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp |= (uint64_t)p[2 + i] << (8 * i);
    if (fingerprint)
        *fingerprint = fp;
    return 1;
}

int siphon_avro_confluent_id(const void *msg, size_t len, uint32_t *schema_id)
{
    const uint8_t *p = msg;
    if (!p || len < SIPHON_AVRO_CONFLUENT_HEADER_LEN || p[0] != 0)
        return 0;
    if (schema_id)
        *schema_id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                     (uint32_t)p[4];
    return 1;
}

/* Append header + the Avro body of msg (after its old header of skip bytes) to out. */
static int reframe(siphon_buf_t *out, const uint8_t *hdr, size_t hlen, const void *msg,
                   size_t len, size_t skip)
{
    if (siphon_buf_reserve(out, hlen + len - skip) < 0)
        return SIPHON_ENOMEM;
    siphon_buf_append(out, hdr, hlen);
    siphon_buf_append(out, (const uint8_t *)msg + skip, len - skip);
    return 0;
}

int siphon_avro_soe_to_confluent(siphon_buf_t *out, const void *msg, size_t len,
                                 uint32_t schema_id)
{
    uint8_t hdr[SIPHON_AVRO_CONFLUENT_HEADER_LEN];
    if (!siphon_avro_soe_fingerprint(msg, len, NULL))
        return SIPHON_EINVAL;
    siphon_avro_confluent_header(hdr, schema_id);
    return reframe(out, hdr, sizeof(hdr), msg, len, SIPHON_AVRO_SOE_HEADER_LEN);
}

int siphon_avro_confluent_to_soe(siphon_buf_t *out, const void *msg, size_t len,
                                 uint64_t fingerprint)
{
    uint8_t hdr[SIPHON_AVRO_SOE_HEADER_LEN];
    if (!siphon_avro_confluent_id(msg, len, NULL))
        return SIPHON_EINVAL;
    siphon_avro_soe_header(hdr, fingerprint);
    return reframe(out, hdr, sizeof(hdr), msg, len, SIPHON_AVRO_CONFLUENT_HEADER_LEN);
}
