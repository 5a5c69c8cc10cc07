/*
 * pipeline.h - the loop that moves changes from a source to a sink, and the two pieces that make
 * "nothing is lost" true: the position tracker and the offsets store.
 *
 * The pipeline owns the loop (one thread): it asks the connector for a batch, maps each change
 * through the compiled mappings, encodes key and envelope, hands them to the sink with the
 * tracker entry of their transaction as opaque, and moves the acknowledged position forward: to
 * the source (ack) and to the offsets file (atomically, at most every flush_interval_ms and on
 * shutdown). Delivery reports reach the tracker from whichever thread the sink reports on (the
 * Kafka sink: its own sink thread; see sink.h). It never includes a connector's or sink's header:
 * it gets their callback tables from the caller (the CLI's registry).
 */
#ifndef SIPHON_PIPELINE_H
#define SIPHON_PIPELINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/value.h"
#include "pipeline/source.h"
#include "sink/sink.h"

/* ---- position tracker ----
 *
 * Design: one entry per source transaction, in source commit order, in a ring indexed by a
 * monotonically increasing sequence number (the opaque a message carries is its entry's seq, so
 * ring growth never invalidates it). Entry states:
 *
 *     OPEN --[commit]--> CLOSED(pos) --[pending reaches 0, all before it done]--> popped, pos acked
 *     OPEN --[abandon]--> CLOSED(no pos) --[pending reaches 0 ...]--> popped, nothing acked
 *     POSITION records enter directly as CLOSED(pos) with pending 0.
 *
 * Invariant: the acknowledged position is the pos of the last entry of the unbroken prefix of
 * CLOSED entries whose pending count is 0. An OPEN entry (a transaction still arriving) blocks
 * everything after it. A failed delivery never decrements: the caller stops.
 *
 * Every function may be called from any thread (one mutex inside): deliveries come from the
 * sink's reporting thread while the pipeline thread opens and pops entries. Events may be added
 * to an OPEN entry after some of them were already reported delivered (the pipeline counts them
 * itself and adds them in bulk, before it closes the entry): pending may dip below zero while
 * the entry is OPEN and is exact from its close on.
 */
typedef struct siphon_tracker siphon_tracker_t;

/* Caller frees with siphon_tracker_destroy(). NULL when out of memory. */
siphon_tracker_t *siphon_tracker_new(void);
void siphon_tracker_destroy(siphon_tracker_t *trk);

/* Open an entry for a transaction; returns its seq. 0 is never a valid seq. Returns 0 on ENOMEM. */
uint64_t siphon_tracker_begin(siphon_tracker_t *trk);
/* One more event (n more events) of entry seq is in flight. Only while seq is OPEN. */
void siphon_tracker_add(siphon_tracker_t *trk, uint64_t seq);
void siphon_tracker_add_n(siphon_tracker_t *trk, uint64_t seq, uint64_t n);
/* Close entry seq with its commit position (copied). 0 or SIPHON_ENOMEM. */
int siphon_tracker_commit(siphon_tracker_t *trk, uint64_t seq, const siphon_pos_t *pos);
/* Close entry seq with no position: it will be sent again and must not be acknowledged. */
void siphon_tracker_abandon(siphon_tracker_t *trk, uint64_t seq);
/* Append a closed, empty entry at pos (idle progress). 0 or SIPHON_ENOMEM. */
int siphon_tracker_position(siphon_tracker_t *trk, const siphon_pos_t *pos);
/* One event of entry seq was delivered. */
void siphon_tracker_delivered(siphon_tracker_t *trk, uint64_t seq);
/* Pop the completed prefix. Returns 1 and moves the newest acknowledged position into *out (the
 * caller then owns out->text; free with siphon_pos_free) when it moved, else 0. */
int siphon_tracker_advance(siphon_tracker_t *trk, siphon_pos_t *out);
/* Entries not yet popped, and events in flight across them (events added and not yet
 * delivered; 0 while deliveries are ahead of the adds). */
size_t siphon_tracker_entries(const siphon_tracker_t *trk);
uint64_t siphon_tracker_pending(const siphon_tracker_t *trk);

/* ---- offsets store ----
 * A small JSON file: {"version":1,"connector":NAME,"source_type":TYPE,"position":TEXT,
 * "updated_at":ISO}. Written atomically: temp file, fsync, rename, fsync of the folder. */

/* Read the stored position. *pos_text is NULL (and 0 returned) when the file does not exist.
 * A file for another connector name is an error (SIPHON_EINVAL). Caller frees *pos_text. */
int siphon_offsets_load(char **pos_text, const char *path, const char *connector, char *errbuf,
                        size_t errsize);
int siphon_offsets_store(const char *path, const char *connector, const char *source_type,
                         const char *pos_text, char *errbuf, size_t errsize);

/* ---- the pipeline ---- */

typedef struct siphon_pipeline_stats {
    uint64_t changes;      /* source change records seen */
    uint64_t events;       /* events produced (tombstones excluded) */
    uint64_t delivered;    /* messages acknowledged by the sink */
    uint64_t txns;         /* transactions committed by the source */
    uint64_t dead_letters; /* rows sent to <topic_prefix>._dlq instead (not in events) */
    uint64_t warnings;     /* fields nulled by on_error: null */
    char acked_pos[4096];  /* last acknowledged position, as text (stored in the offsets file:
                              ODBC's holds every table's watermark) */
    uint64_t txn_events;   /* BEGIN and END events produced (pipeline.transactions) */
} siphon_pipeline_stats_t;

/* Run until *stop becomes non-zero (SIGINT/SIGTERM), then drain: stop reading, wait for the sink
 * to report every queued message (bounded), acknowledge and store the final position. Returns 0
 * after a clean stop, or a negative code with errbuf saying what failed and what to do (nothing
 * past the last delivered position is ever acknowledged). stats may be NULL. */
int siphon_pipeline_run(const siphon_config_t *cfg, const siphon_source_ops_t *src_ops,
                        const siphon_sink_ops_t *sink_ops, volatile sig_atomic_t *stop,
                        siphon_pipeline_stats_t *stats, char *errbuf, size_t errsize);

/* Load and check mappings and schemas against the config, without connecting (siphon validate).
 * 0 or SIPHON_EINVAL with file:line in errbuf. */
int siphon_pipeline_validate(const siphon_config_t *cfg, char *errbuf, size_t errsize);

#endif
