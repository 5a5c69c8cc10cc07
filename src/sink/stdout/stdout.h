/*
 * stdout.h - the stdout sink: one JSON line per event, for debugging and the demo.
 */
#ifndef SIPHON_SINK_STDOUT_H
#define SIPHON_SINK_STDOUT_H

#include "sink/sink.h"

extern const siphon_sink_ops_t siphon_stdout_sink;

#endif
