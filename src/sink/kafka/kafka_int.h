/*
 * kafka_int.h - private declarations of the Kafka sink: the Schema Registry client that
 * registry.c implements and kafka.c uses when sink.format is confluent.
 */
#ifndef SIPHON_SINK_KAFKA_INT_H
#define SIPHON_SINK_KAFKA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A client of the Confluent Schema Registry's REST API (the one endpoint Siphon needs:
 * POST /subjects/{subject}/versions), over libcurl with basic auth and TLS options from
 * sink.schema_registry. One connection, reused; one thread at a time. */
typedef struct siphon_registry siphon_registry_t;

/* Borrows cfg (it must outlive the client). Caller frees with siphon_registry_destroy(), which
 * accepts NULL. SIPHON_EINVAL / SIPHON_ENOMEM with errbuf set. */
int siphon_registry_new(siphon_registry_t **out, const struct siphon_config_registry *cfg,
                        char *errbuf, size_t errsize);
void siphon_registry_destroy(siphon_registry_t *reg);

/* Register schema_json (Avro, as published) under subject and return its id: the registry
 * answers with the existing id when the subject already has the same schema, so this is
 * idempotent. Returns 0 with *id set, or
 *   SIPHON_ECONN   retriable: the registry could not be reached, timed out, or answered 5xx,
 *                  408 or 429 (the next call tries the next URL of the list);
 *   SIPHON_EINVAL  refused: another 4xx (401/403 credentials, 409 incompatible with the
 *                  subject's earlier versions, 422 not a valid schema), or an answer without
 *                  an id; fix the registry or the schema.
 * errbuf names the subject, the URL and the registry's own message. */
int siphon_registry_register(siphon_registry_t *reg, const char *subject,
                             const char *schema_json, uint32_t *id, char *errbuf,
                             size_t errsize);

/* The URL the next request goes to (borrowed), for messages. */
const char *siphon_registry_url(const siphon_registry_t *reg);

#endif
