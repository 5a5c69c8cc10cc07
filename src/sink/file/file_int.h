/*
 * file_int.h - private declarations shared by the files of the file sink: the container format
 * pieces we do ourselves (file_format.c), the sink (file_sink.c) and the reader (file_read.c).
 *
 * What avro-c does for us: the blocks (record count, size, codec, sync marker) through its file
 * writer, opened for append on a file whose header we wrote; and reading records back. What we
 * do: the header (avro-c's writer prints the schema with avro_schema_to_json, which drops
 * logicalType, so a decimal would become plain bytes for every reader), walking the blocks to
 * find the end of the last complete one (crash recovery, and counting records), and composing
 * the file's schema from a stream's key and envelope schemas.
 */
#ifndef SIPHON_SINK_FILE_INT_H
#define SIPHON_SINK_FILE_INT_H

#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "sink/file/file.h"

#define SIPHON_FILE_SYNC_LEN 16
#define SIPHON_FILE_SUFFIX ".avro"
#define SIPHON_FILE_TMP_SUFFIX ".avro.tmp"
#define SIPHON_FILE_LOCK ".siphon.lock"

/* Metadata keys of the header. */
#define SIPHON_FILE_META_TOPIC "siphon.topic"
#define SIPHON_FILE_META_KEY_SCHEMA "siphon.key.schema"
#define SIPHON_FILE_META_VALUE_SCHEMA "siphon.value.schema"
#define SIPHON_FILE_META_KEY_FP "siphon.key.fingerprint"
#define SIPHON_FILE_META_VALUE_FP "siphon.value.fingerprint"
#define SIPHON_FILE_META_CONNECTOR "siphon.connector"
#define SIPHON_FILE_META_VERSION "siphon.version"

/* Append an Avro long (zig-zag varint) / bytes (length + data) to b. 0 or SIPHON_ENOMEM. */
int siphon_file__put_long(siphon_buf_t *b, int64_t v);
int siphon_file__put_bytes(siphon_buf_t *b, const void *p, size_t n);

typedef struct siphon_file_meta {
    char *key;
    char *value; /* NUL-terminated copy (len excludes the NUL) */
    size_t len;
} siphon_file_meta_t;

/* A parsed header. */
typedef struct siphon_file_header {
    siphon_file_meta_t *meta;
    int nmeta;
    uint8_t sync[SIPHON_FILE_SYNC_LEN];
    long long data_offset; /* where the first block starts */
} siphon_file_header_t;

/* Build a header: magic, the metadata map (avro.schema, avro.codec, then the pairs of extra,
 * a NULL-terminated key, value, key, value... list), the sync marker. Appended to out. */
int siphon_file__header_build(siphon_buf_t *out, const char *schema_json, const char *codec,
                              const char *const *extra, const uint8_t sync[SIPHON_FILE_SYNC_LEN]);

/* Read the header at the start of f. 0; SIPHON_EPROTO when f is not a container file or the
 * header is incomplete (errbuf says which). Free with siphon_file__header_free(). */
int siphon_file__header_read(FILE *f, siphon_file_header_t *h, char *errbuf, size_t errsize);
void siphon_file__header_free(siphon_file_header_t *h);
/* The value of a metadata key, or NULL. Borrowed from h. */
const siphon_file_meta_t *siphon_file__meta(const siphon_file_header_t *h, const char *key);

/* Walk the blocks from h->data_offset: *good_end is the offset just past the last complete block
 * (its sync marker matching), *nblocks and *nrecords what the complete blocks hold, *tail the
 * bytes after good_end (an incomplete block, or garbage). 0 or SIPHON_EIO. */
int siphon_file__scan(FILE *f, const siphon_file_header_t *h, long long *good_end,
                      long long *nblocks, long long *nrecords, long long *tail);

/* The file schema for a stream: record <Entity>FileRecord {key: ["null", Key], event: Envelope}
 * in the envelope's namespace; named types the key defines are referenced, not redefined, in
 * the envelope. Caller frees *out with free(). SIPHON_EINVAL when either JSON is not a record
 * schema. */
int siphon_file__record_schema(char **out, const char *key_json, const char *value_json,
                               char *errbuf, size_t errsize);

/* Recover every *.avro.tmp in the topic folders under root (see file.h). *recovered counts the
 * files kept (renamed to .avro), *removed those holding no complete block. 0 or SIPHON_EIO. */
int siphon_file__recover(const char *root, int *recovered, int *removed, char *errbuf,
                         size_t errsize);

/* fsync a folder (so a created or renamed entry survives a power loss). 0 or -errno. */
int siphon_file__fsync_dir(const char *dir);

#endif
