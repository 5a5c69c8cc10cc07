/*
 * registry.h - the one place that names concrete connectors and sinks. The CLI looks them up
 * by the config's `type`; nothing below the CLI includes a connector's or sink's header.
 */
#ifndef SIPHON_REGISTRY_H
#define SIPHON_REGISTRY_H

#include "pipeline/source.h"
#include "sink/sink.h"

/* NULL when no connector/sink has that type. Borrowed, static. */
const siphon_source_ops_t *siphon_registry_source(const char *type);
const siphon_sink_ops_t *siphon_registry_sink(const char *type);

/* Comma-separated list of known types, for messages. */
const char *siphon_registry_source_types(void);
const char *siphon_registry_sink_types(void);

#endif
