/*
 * pg_int.h - private declarations of the PostgreSQL connector, shared by its .c files and its
 * unit tests (tests/unit/postgres/).
 *
 * The connector has three layers, each testable on its own:
 *   pg_value.c    text output of one column -> siphon_value_t, by type (no server needed);
 *                 LSN text <-> number
 *   pg_stream.c   the pgoutput v1 parser: one CopyData payload at a time ('w' XLogData with a
 *                 pgoutput message inside, 'k' keepalive) into the records of the current batch,
 *                 with the relation cache (no server needed)
 *   pg_catalog.c  catalog work on the regular connection: server checks, publication and slot,
 *                 describe(), and the catalog details a Relation message lacks
 *   pg_source.c   the siphon_source_ops_t table: connections, the replication state machine,
 *                 reconnection with backoff, standby status updates, ack()
 *
 * Positions (the one rule to remember): a transaction's position is its commit LSN + 1, put on
 * both its BEGIN and its COMMIT record. pgoutput's Begin message already carries the commit
 * LSN, so the value is known before the first change arrives, and "+ 1" gives it the meaning
 * every Postgres LSN confirmation has: everything that committed *before* this LSN has been
 * delivered. Confirming it to the server (flush_lsn) is therefore equivalent to confirming the
 * end LSN of the commit record, as Postgres' own clients do: no commit can start inside the
 * commit record itself. A POSITION record carries the walEnd of a keepalive, with that same
 * meaning. Restarting from a position P (START_REPLICATION ... LOGICAL P) makes the server skip
 * exactly the transactions that committed before P.
 */
#ifndef SIPHON_PG_INT_H
#define SIPHON_PG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/buf.h"
#include "core/value.h"
#include "pipeline/source.h"

/* ---- types and values (pg_value.c) ---- */

/* Built-in type OIDs (pg_type.dat) the connector decodes. */
enum {
    PG_OID_BOOL = 16,
    PG_OID_BYTEA = 17,
    PG_OID_CHAR = 18,
    PG_OID_NAME = 19,
    PG_OID_INT8 = 20,
    PG_OID_INT2 = 21,
    PG_OID_INT4 = 23,
    PG_OID_TEXT = 25,
    PG_OID_OID = 26,
    PG_OID_JSON = 114,
    PG_OID_XML = 142,
    PG_OID_FLOAT4 = 700,
    PG_OID_FLOAT8 = 701,
    PG_OID_MONEY = 790,
    PG_OID_BPCHAR = 1042,
    PG_OID_VARCHAR = 1043,
    PG_OID_DATE = 1082,
    PG_OID_TIME = 1083,
    PG_OID_TIMESTAMP = 1114,
    PG_OID_TIMESTAMPTZ = 1184,
    PG_OID_INTERVAL = 1186,
    PG_OID_TIMETZ = 1266,
    PG_OID_NUMERIC = 1700,
    PG_OID_UUID = 2950,
    PG_OID_JSONB = 3802
};

/* How one column's text output is decoded: chosen once per relation column from its (base)
 * type OID, so rows are decoded with a switch and no lookup. */
typedef enum pg_kind {
    PG_K_TEXT = 0, /* text, varchar, bpchar (padding kept), name, and every type not below */
    PG_K_RAWTEXT,  /* the same in a SQL_ASCII database: bytes of unknown charset */
    PG_K_INT,      /* int2, int4, int8 */
    PG_K_FLOAT,    /* float4, float8 (NaN, Infinity and -Infinity included) */
    PG_K_DECIMAL,  /* numeric; NaN, Infinity, -Infinity become TEXT (see pg_value.c) */
    PG_K_BOOL,
    PG_K_DATE,     /* infinity/-infinity become TEXT */
    PG_K_TIME,
    PG_K_TS,       /* timestamp without time zone (tz 0); infinities become TEXT */
    PG_K_TSTZ,     /* timestamp with time zone (tz 1, normalized to UTC) */
    PG_K_BYTES,    /* bytea, hex ("\x...") or escape output */
    PG_K_UUID,
    PG_K_JSON      /* json, jsonb */
} pg_kind_t;

pg_kind_t siphon_pg__kind_for_oid(uint32_t oid, int sql_ascii);
siphon_vtype_t siphon_pg__kind_vtype(pg_kind_t kind);
/* A built-in type's SQL name ("integer"), or NULL when the OID is not one we know. */
const char *siphon_pg__builtin_type_name(uint32_t oid);

/* Decode the text output of one value into *v. p points at len writable bytes that must stay
 * valid as long as the value is used: TEXT/JSON/BYTES/DECIMAL values point into them, and
 * DECIMAL digits and BYTES are rewritten in place (never longer than the input). Returns 0, or
 * SIPHON_EPROTO with errbuf saying what the text was expected to look like; *v is then
 * undefined. */
int siphon_pg__decode(siphon_value_t *v, pg_kind_t kind, char *p, size_t len, char *errbuf,
                      size_t errsize);

/* Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is year 0). */
int64_t siphon_pg__days_from_civil(int64_t y, unsigned m, unsigned d);

/* LSN text "16/B374D848" (upper-case hex, as Postgres prints it). Returns 0, or SIPHON_EINVAL
 * when buf is too small. */
int siphon_pg__lsn_format(uint64_t lsn, char *buf, size_t size);
/* Parse "X/X" (1 to 8 hex digits each side, nothing else). 0 or SIPHON_EINVAL. */
int siphon_pg__lsn_parse(uint64_t *lsn, const char *text);

/* Microseconds between 1970-01-01 and 2000-01-01 (Postgres' epoch). */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

/* ---- relations (pg_stream.c) ---- */

/* One shape of one table. Every version ever built stays alive until the stream is destroyed
 * (shapes change rarely; records of a batch may point at an older version). */
typedef struct pg_rel {
    siphon_relation_t rel;   /* what the rest of Siphon sees; strings owned here */
    pg_kind_t *kinds;        /* per column: how its values are decoded */
    uint32_t *base_oids;     /* per column: the type OID, or a domain's base type OID */
    char replident;          /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    struct pg_rel *next;     /* all versions, newest first */
} pg_rel_t;

/* Fills what the Relation message does not carry (type names, domain base types, primary key
 * flags) from the catalog. Called once per new shape with rel->rel.cols[i].name, type_oid,
 * typmod and is_key set, type_name set to a fallback and base_oids[i] = type_oid. Must leave
 * the relation usable even when it fails (the caller logs and continues). */
typedef int (*pg_enrich_fn)(void *opaque, pg_rel_t *rel, char *errbuf, size_t errsize);

/* Build a relation (all fields copied). kinds are derived from base_oids (may be NULL: the
 * type OIDs). NULL when out of memory. Free with siphon_pg__rel_free(). */
pg_rel_t *siphon_pg__rel_new(uint32_t oid, const char *schema, const char *name, char replident,
                             int ncols, const char *const *names, const uint32_t *oids,
                             const int32_t *typmods, const int *is_key, const int *is_pkey,
                             const char *const *type_names, const uint32_t *base_oids,
                             int sql_ascii);
void siphon_pg__rel_free(pg_rel_t *r);
/* Recompute kinds and vtypes from base_oids (after enrichment). */
void siphon_pg__rel_set_kinds(pg_rel_t *r, int sql_ascii);
/* Replace one column's type name (copied). 0 or SIPHON_ENOMEM. */
int siphon_pg__rel_set_type_name(pg_rel_t *r, int col, const char *type_name);

/* ---- the stream parser (pg_stream.c) ---- */

#define PG_BATCH_MAX_RECS 4096
#define PG_BATCH_MAX_BYTES ((size_t)8 << 20)
/* next() returns as soon as it has this many records, or PG_BATCH_LINGER_MS after the first. */
#define PG_BATCH_LINGER_RECS 512
#define PG_BATCH_LINGER_MS 2

typedef struct pg_relmap_slot {
    uint32_t oid;
    pg_rel_t *rel;
} pg_relmap_slot_t;

typedef struct pg_typename {
    uint32_t oid;
    char *name;
    struct pg_typename *next;
} pg_typename_t;

/* The parser's state. Zero-initialize and call siphon_pg__stream_init(). Not thread-safe. */
typedef struct pg_stream {
    /* set by the owner */
    int sql_ascii;              /* text values become RAWTEXT */
    const char *database;       /* borrowed: put on every record */
    pg_enrich_fn enrich;        /* may be NULL (unit tests) */
    void *enrich_opaque;

    /* relations */
    pg_rel_t *rels;             /* every version, newest first */
    pg_relmap_slot_t *map;      /* open addressing, OID -> current version on this stream */
    size_t map_cap, map_used;
    pg_typename_t *types;       /* names from Type messages (custom types), for messages */
    uint64_t rel_versions;      /* how many shapes this stream built (for tests and logs) */

    /* the current batch: records, and the rows they point to (arena) */
    siphon_arena_t arena;
    siphon_change_t *recs;
    int nrecs, caprecs;
    size_t batch_bytes;         /* CopyData bytes consumed into this batch */

    /* the transaction being received */
    int in_txn;
    int skip_txn;               /* already returned before a reconnect: drop it */
    uint64_t txn_pos;           /* commit LSN + 1 */
    uint64_t txn_commit_lsn;
    uint64_t txn_xid;
    int64_t txn_commit_ts;      /* µs since 1970 */

    /* progress */
    uint64_t last_pos;          /* highest BEGIN/COMMIT/POSITION pos ever returned */
    uint64_t received;          /* highest LSN the server said it sent (status "write") */
    int reply_requested;        /* a keepalive asked for a status update now */
    uint64_t commits;           /* COMMIT records returned (for tests and logs) */
} pg_stream_t;

void siphon_pg__stream_init(pg_stream_t *st);
/* Frees relations, records and arena. Accepts a zeroed stream. */
void siphon_pg__stream_destroy(pg_stream_t *st);
/* Start a new batch: forget its records and rows (the relations stay). */
void siphon_pg__stream_reset_batch(pg_stream_t *st);

/* Consume one CopyData payload from the replication connection: 'w' (XLogData: header and one
 * pgoutput message) or 'k' (primary keepalive). The payload is modified in place and must stay
 * valid until the next siphon_pg__stream_reset_batch(): values point into it. Records are
 * appended to st->recs. Returns 0, or SIPHON_EPROTO (unparsable message, change for an unknown
 * relation) / SIPHON_ENOMEM with errbuf naming the message, LSN, table and column. The source
 * treats an error as fatal; the parser's own state stays consistent (a failed message adds no
 * record), which the unit tests rely on to check several errors in a row. */
int siphon_pg__stream_copydata(pg_stream_t *st, char *buf, size_t len, char *errbuf,
                               size_t errsize);

/* One pgoutput message (the XLogData payload) whose XLogData dataStart was lsn. */
int siphon_pg__stream_message(pg_stream_t *st, char *msg, size_t len, uint64_t lsn,
                              char *errbuf, size_t errsize);

/* The replication connection is gone: emit a RESET record when a transaction was open (it will
 * be sent again from its Begin). Returns 0 or SIPHON_ENOMEM. */
int siphon_pg__stream_disconnected(pg_stream_t *st);

/* The current version of a relation on this stream, or NULL. */
pg_rel_t *siphon_pg__stream_rel(const pg_stream_t *st, uint32_t oid);
/* Find a version of oid with exactly this shape (any version, described or streamed), or
 * NULL. Used by describe() too, so one shape keeps one version. */
pg_rel_t *siphon_pg__stream_find_shape(const pg_stream_t *st, const pg_rel_t *like);
/* Take ownership of a new relation version (prepended to st->rels; gets a process-wide unique
 * version number). Does not make it current. */
void siphon_pg__stream_adopt(pg_stream_t *st, pg_rel_t *r);

/* ---- the source (pg_source.c, pg_catalog.c) ---- */

typedef enum pg_state {
    PG_S_DOWN = 0,  /* no replication connection; next attempt at retry_at_ms */
    PG_S_CONNECTING,/* PQconnectPoll in progress */
    PG_S_STARTING,  /* START_REPLICATION sent, waiting for CopyBoth */
    PG_S_STREAMING  /* CopyBoth: reading changes, sending status updates */
} pg_state_t;

struct siphon_source {
    /* configuration (owned copies) */
    char *name;
    char *conninfo;          /* secret: never logged; see redacted */
    char redacted[512];      /* siphon_config_redact(conninfo) */
    char *slot;
    char *publication;
    int create_slot, create_publication;
    int status_interval_ms;
    char *dbname;            /* current_database() */
    char *app_name;          /* fallback_application_name */
    char *options;           /* the user's options + ours */
    int server_version;

    PGconn *cat;             /* regular connection for catalog work */
    PGconn *repl;            /* replication=database connection */
    pg_state_t state;
    int poll_write;          /* CONNECTING: waiting for writability, else readability */
    int64_t retry_at_ms;     /* DOWN: when to try again */
    int64_t attempt_deadline_ms; /* CONNECTING/STARTING: give up after this */
    int backoff_ms;
    int broken;              /* ack() could not write: next() drops the connection */
    char broken_reason[256];
    int flush_pending;       /* libpq holds unsent output */

    pg_stream_t st;

    /* sample() (siphon preview): the rows of the last sample, in their own memory */
    siphon_arena_t sample_mem;
    siphon_row_t *sample_rows;
    int sample_session;      /* the decoding settings were applied to the catalog session */

    struct pg_snap *snap;    /* initial snapshot in progress (pg_snapshot.c), or NULL */
    int stop_after_snapshot; /* initial_only: next() returns SIPHON_ESTOP once it ended */

    uint64_t start_pos;      /* where START_REPLICATION starts (resume or last ack) */
    uint64_t acked;          /* last position given to ack() (flush/apply) */
    uint64_t sent_flush;     /* flush value of the last status update sent */
    int64_t last_status_ms;
};

/* pg_catalog.c: all run on src->cat; return 0 or a negative code with errbuf set. */
int siphon_pg__cat_connect(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_pg__cat_check_server(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_pg__cat_ensure_publication(siphon_source_t *src, const siphon_table_ref_t *tables,
                                      int ntables, char *errbuf, size_t errsize);
int siphon_pg__cat_ensure_slot(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_pg__cat_describe(siphon_source_t *src, const char *schema, const char *table,
                            const siphon_relation_t **rel, char *errbuf, size_t errsize);
int siphon_pg__cat_enrich(void *opaque, pg_rel_t *rel, char *errbuf, size_t errsize);

/* pg_sample.c: the catalog-only source (siphon validate, siphon preview). */
int siphon_pg__open_catalog(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                            size_t errsize);
int siphon_pg__sample(siphon_source_t *src, const char *schema, const char *table, int limit,
                      const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                      char *errbuf, size_t errsize);

/* pg_snapshot.c: the initial snapshot (docs/snapshots.md).
 * setup: decide from cfg->source.snapshot, the stored progress (the text after the LSN in the
 * stored position, or NULL) and whether a position was stored, whether to snapshot; when the
 * slot must be created for it, create it with an exported snapshot (exact seam). Runs in open()
 * after the server checks and the publication, before siphon_pg__cat_ensure_slot().
 * next: while src->snap is set, fill src->st with one key-ordered chunk (BEGIN, 'r' CHANGEs,
 * COMMIT). Returns 0, 1 when the snapshot has ended (src->snap freed; streaming may start),
 * or a negative code. */
int siphon_pg__snap_setup(siphon_source_t *src, const siphon_config_t *cfg,
                          const siphon_table_ref_t *tables, int ntables, const char *progress,
                          int have_resume, char *errbuf, size_t errsize);
int siphon_pg__snap_next(siphon_source_t *src, char *errbuf, size_t errsize);
void siphon_pg__snap_free(siphon_source_t *src);
/* Escape / unescape a value for the stored progress text (percent-encoding). */
int siphon_pg__snap_escape(siphon_buf_t *out, const char *s, size_t len);
/* In place; returns the new length, or -1 on a malformed escape. */
long siphon_pg__snap_unescape(char *s);

/* Options forced on the replication session so text output is predictable. */
#define PG_SESSION_OPTIONS                                                                   \
    "-c datestyle=ISO,YMD -c intervalstyle=postgres -c extra_float_digits=3 -c TimeZone=UTC " \
    "-c bytea_output=hex"

/* Monotonic milliseconds. */
int64_t siphon_pg__now_ms(void);

#endif
