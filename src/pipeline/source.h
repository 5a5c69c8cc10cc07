/*
 * source.h - the interface every connector implements (Postgres, MySQL, ODBC).
 *
 * A connector is a table of callbacks, like a PostgreSQL output plugin's callbacks: the
 * pipeline calls them and never includes a connector's header. Only the registry beside the CLI
 * names concrete connectors.
 *
 * Contract:
 *  - next() returns a batch of records in source commit order: BEGIN, CHANGE..., COMMIT, and
 *    POSITION records when the source reports progress outside any transaction. The records, and
 *    the relations and rows they point to, stay valid until the next call to next() or close().
 *  - A connector reconnects by itself, with backoff, when its server goes away: meanwhile next()
 *    returns empty batches (so the pipeline keeps serving deliveries and signals). When it drops
 *    a connection in the middle of a transaction it emits a RESET record first: that open
 *    transaction will be sent again from its start and must not be acknowledged.
 *  - ack() is called only with a position whose every earlier event has been delivered. It tells
 *    the server (Postgres: flush_lsn) and must never move the server further than that.
 */
#ifndef SIPHON_PIPELINE_SOURCE_H
#define SIPHON_PIPELINE_SOURCE_H

#include <stddef.h>

#include "config/config.h"
#include "core/value.h"

/* In addition to the kinds in value.h: the open transaction was abandoned (see above). */
#define SIPHON_REC_RESET ((siphon_rec_kind_t)100)

typedef struct siphon_source siphon_source_t;

typedef struct siphon_batch {
    siphon_change_t *recs; /* owned by the connector */
    int n;
} siphon_batch_t;

/* A table the mappings read, given to open() so the connector can publish/filter it. */
typedef struct siphon_table_ref {
    const char *schema;
    const char *table;
} siphon_table_ref_t;

typedef struct siphon_source_ops {
    const char *type; /* "postgres" */

    /* Connect, check (and where allowed create) what the source needs for these tables, and
     * position the stream after resume_pos (NULL: from the slot's/server's own position).
     * Errors: SIPHON_EINVAL (fix the config or the server: message says what), SIPHON_ECONN
     * (server unreachable: the caller retries with backoff). Caller frees with close(). */
    int (*open)(siphon_source_t **out, const siphon_config_t *cfg,
                const siphon_table_ref_t *tables, int ntables, const char *resume_pos,
                char *errbuf, size_t errsize);

    /* Describe a table as the source sees it now (for validation before streaming). *rel is
     * owned by the connector, valid until close(). SIPHON_ENOTFOUND when the table is missing. */
    int (*describe)(siphon_source_t *src, const char *schema, const char *table,
                    const siphon_relation_t **rel, char *errbuf, size_t errsize);

    /* Wait up to timeout_ms for records and fill *batch. 0 (possibly n == 0) or a negative code:
     * retriable codes are handled inside (reconnect); a returned error is fatal. */
    int (*next)(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms, char *errbuf,
                size_t errsize);

    /* Everything up to and including pos has been delivered: confirm it to the server. */
    int (*ack)(siphon_source_t *src, const siphon_pos_t *pos, char *errbuf, size_t errsize);

    /* Position <-> text, for the offsets file and event sources ("0/16B3748"). */
    int (*pos_format)(const siphon_pos_t *pos, char *buf, size_t size);
    int (*pos_parse)(siphon_pos_t *pos, const char *text, char *errbuf, size_t errsize);

    /* Flush what can be flushed (a final status update) and disconnect. Accepts NULL. */
    void (*close)(siphon_source_t *src);

    /* Optional (NULL when the connector has none): connect for catalog work only, describe()
     * and sample(), creating nothing on the server (no slot, no publication) and needing no
     * replication privilege (siphon validate, siphon preview). next() and ack() must not be
     * called on such a source. Errors as open(); caller frees with close(). */
    int (*open_catalog)(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                        size_t errsize);

    /* Optional: read up to `limit` rows of a table with a plain query (no ordering promised),
     * decoded exactly as next() decodes changes of it. *rel and *rows (nrows of them) are
     * owned by the connector, valid until the next sample() or close(). SIPHON_ENOTFOUND when
     * the table is missing. */
    int (*sample)(siphon_source_t *src, const char *schema, const char *table, int limit,
                  const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                  char *errbuf, size_t errsize);

    /* Optional (siphon snapshot): ask the connector running with this config (`siphon run`)
     * to read one of its tables again while it keeps streaming, in a way that never lets an
     * older row overwrite a newer change of the same key. Connects on its own (no source
     * object), checks what it can (the table, that a connector is running, privileges) and
     * sends the request; token (tokensize bytes) gets a text naming the request, for
     * snapshot_status(). Errors: SIPHON_EINVAL / SIPHON_ENOTFOUND (the message says what to
     * do), SIPHON_ECONN (server unreachable). */
    int (*signal_snapshot)(const siphon_config_t *cfg, const char *schema, const char *table,
                           char *token, size_t tokensize, char *errbuf, size_t errsize);

    /* Optional, with signal_snapshot: how far that request is, judged from the position text
     * stored in the offsets file (stored_pos, NULL when there is none yet). Returns 0 not
     * acknowledged yet, 1 running (*rows and *chunks read so far), 2 done, or a negative
     * code. */
    int (*snapshot_status)(const char *stored_pos, const char *token, uint64_t *rows,
                           uint64_t *chunks, char *errbuf, size_t errsize);
} siphon_source_ops_t;

#endif
