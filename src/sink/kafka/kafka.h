/*
 * kafka.h - the Kafka sink (librdkafka producer). Only the registry includes this.
 */
#ifndef SIPHON_SINK_KAFKA_H
#define SIPHON_SINK_KAFKA_H

#include "sink/sink.h"

extern const siphon_sink_ops_t siphon_kafka_sink;

#endif
