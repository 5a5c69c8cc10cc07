/*
 * file.h - the file sink: change events written to Avro Object Container Files, one series of
 * files per stream (topic), and the reader `siphon tail --dir` uses to print them back.
 *
 * Layout under sink.path (docs/events.md, "Avro container files"):
 *
 *   <path>/.siphon.lock                        held (flock) by the one siphon writing here
 *   <path>/<topic>/<topic>-0000000001.avro     closed files: complete, readable by any Avro tool
 *   <path>/<topic>/<topic>-0000000002.avro.tmp the file being written (renamed when closed)
 *
 * A file holds one schema, the record <Entity>FileRecord {key: ["null", <Entity>Key], event:
 * <Entity>Envelope}: the Kafka message's key and value side by side (the key matters: a delete
 * under the default replica identity has no `before`, so the key is all that says what was
 * deleted). The header's metadata keeps the exact schema JSON (with logical types; avro-c's own
 * header writer would drop them) and siphon.topic, siphon.key.schema, siphon.value.schema,
 * siphon.key.fingerprint, siphon.value.fingerprint, siphon.connector, siphon.version.
 *
 * Acknowledgement: an event is reported delivered only once the file holding it has been flushed
 * and fsynced (and the file's directory entry fsynced when it was created), so the pipeline
 * never acknowledges a source position whose events could vanish in a crash. Tombstones are not
 * written (they are a Kafka compaction device; the 'd' event is the delete) but are reported
 * delivered. A .avro.tmp left by a crash is recovered when the sink next opens: cut after its
 * last complete block (everything acknowledged is before that), fsynced and renamed to .avro,
 * or removed when it holds no complete block.
 */
#ifndef SIPHON_SINK_FILE_H
#define SIPHON_SINK_FILE_H

#include <stddef.h>

#include "sink/sink.h"

extern const siphon_sink_ops_t siphon_file_sink;

/* ---- reading the files back ---- */

typedef struct siphon_file_reader siphon_file_reader_t;

/* Open a container file. A file written by the file sink is decoded with the schemas in its
 * header (logical types rendered as siphon_avro_stream_decode_json does: decimals "12.50", dates
 * "2024-01-31", timestamps ISO-8601); any other Avro container file is rendered by avro-c (no key,
 * logical types not applied). The file's blocks are checked first: a file whose last block is
 * incomplete (a .tmp being written, or damaged) yields the records of its complete blocks.
 * Caller frees with siphon_file_reader_close(). SIPHON_EIO when unreadable, SIPHON_EPROTO when
 * not a container file. */
int siphon_file_reader_open(siphon_file_reader_t **out, const char *path, char *errbuf,
                            size_t errsize);

/* The next record: returns 1 with *key_json (NULL when the record has no key) and *event_json
 * set (caller frees both with free()), 0 at the end, or a negative code (SIPHON_EPROTO: the
 * record does not decode) with errbuf naming the file and record. */
int siphon_file_reader_next(siphon_file_reader_t *rd, char **key_json, char **event_json,
                            char *errbuf, size_t errsize);

/* The topic in the header (siphon.topic), or NULL for a file siphon did not write. Borrowed. */
const char *siphon_file_reader_topic(const siphon_file_reader_t *rd);
/* Records in the file's complete blocks. */
long long siphon_file_reader_count(const siphon_file_reader_t *rd);
void siphon_file_reader_close(siphon_file_reader_t *rd); /* accepts NULL */

/* The closed container files (*.avro) directly in dir, sorted by name (the sink's names sort by
 * sequence). *names is NULL and *n 0 for a folder without any. Caller frees with
 * siphon_file_list_free(). SIPHON_EIO naming dir when it cannot be read. */
int siphon_file_list(char ***names, int *n, const char *dir, char *errbuf, size_t errsize);
void siphon_file_list_free(char **names, int n);

#endif
