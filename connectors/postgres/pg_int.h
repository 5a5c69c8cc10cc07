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
 *   pg_snapshot.c the initial snapshot (key-ordered chunks, parallel, resumable)
 *   pg_incremental.c  on-demand snapshots while streaming (watermarks in the stream, through
 *                 the stream's hooks), and `siphon snapshot`'s request and status
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
#include "core/progress.h"
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

struct pg_stream;

/* What the on-demand snapshot (pg_incremental.c) watches in the stream. Each hook runs while
 * the message is parsed, after the stream appended its record, so it sees changes, messages
 * and commits in exactly the stream's order; a hook may append records of its own
 * (siphon_pg__stream_push()) to the open transaction. Not called for a transaction that is
 * skipped (already returned before a reconnect). A negative return fails the message. */
typedef struct pg_stream_hooks {
    /* A logical decoding message (pg_logical_emit_message()); content is not NUL-terminated. */
    int (*message)(void *opaque, struct pg_stream *st, int transactional, uint64_t lsn,
                   const char *prefix, const char *content, size_t len, char *errbuf,
                   size_t errsize);
    /* The CHANGE record just appended (insert, update, delete, truncate). */
    int (*change)(void *opaque, struct pg_stream *st, const siphon_change_t *rec, char *errbuf,
                  size_t errsize);
    /* The COMMIT record just appended (st->txn_pos is its position). */
    int (*commit)(void *opaque, struct pg_stream *st, char *errbuf, size_t errsize);
} pg_stream_hooks_t;

/* The parser's state. Zero-initialize and call siphon_pg__stream_init(). Not thread-safe. */
typedef struct pg_stream {
    /* set by the owner */
    int sql_ascii;              /* text values become RAWTEXT */
    const char *database;       /* borrowed: put on every record */
    pg_enrich_fn enrich;        /* may be NULL (unit tests) */
    void *enrich_opaque;
    const pg_stream_hooks_t *hooks; /* may be NULL */
    void *hooks_opaque;
    /* Appended to the position text of every COMMIT and POSITION record (pos.text; the LSN is
     * put before it by pos_format), e.g. " isnap public.oehdr=0,3,300,01,A300" while an
     * on-demand snapshot runs; NULL: plain positions. Borrowed: the owner keeps it valid until
     * the batch is reset. */
    const char *pos_suffix;

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
    uint32_t txn_msgs;          /* data messages (I U D T, transactional M) of it handled */

    /* a transaction cut by a lost connection, resumed where it stopped (see pg_stream.c) */
    uint64_t resume_pos;        /* its pos, 0: none */
    uint64_t resume_xid;
    int64_t resume_ts;
    uint32_t resume_msgs;       /* data messages of it already returned */
    uint32_t resume_left;       /* of those, still to pass over in the resent transaction */

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

/* Append a record of this kind to the batch (zeroed but for kind and database). NULL when out
 * of memory. Valid until the next push or batch reset. */
siphon_change_t *siphon_pg__stream_push(pg_stream_t *st, siphon_rec_kind_t kind);

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
    struct pg_inc *inc;      /* on-demand snapshots (pg_incremental.c), or NULL (server < 14) */
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

/* One table a snapshot reads (pg_snapshot.c, pg_incremental.c). */
typedef struct pg_snap_table {
    char *schema, *table;
    const pg_rel_t *rel;     /* from describe(), owned by the stream */
    int *keycols;            /* column indexes of the chunk key; nkeys 0: ctid */
    int nkeys;
    char **last;             /* last key values read (nkeys, or 1 for ctid), NULL: none yet */
    int done;
    uint64_t chunks, rows;
    double estimate;         /* pg_class.reltuples (-1 or 0: unknown) */
    int64_t started_ms;
} pg_snap_table_t;

/* The live progress display (src/core/progress.h): a line per table on a terminal, else a log
 * line every 5 s. */
typedef siphon_progress_t pg_snap_progress_t;

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
/* Helpers shared with pg_incremental.c.
 * table_init: t->schema/t->table from a table reference (copied); 0 or SIPHON_ENOMEM.
 * plan: describe t on src->cat, choose its chunk key (primary key, else replica identity, else
 * ctid: nkeys 0) and read its row estimate. table_free: what plan and progress allocated.
 * chunk_sql: "SELECT <every column>[, ctid] FROM t [WHERE (key) > (last)] ORDER BY key LIMIT n"
 * into sql (NUL-terminated); the last key as parameters $1.. or, with literal_keys, inlined as
 * escaped literals (for a multi-statement query string). 0 or SIPHON_ENOMEM.
 * decode_row: row i of a chunk result, decoded as streamed values are, into memory from a
 * (the row and its values live as long as a). set_last: remember row i's key as t->last.
 * show: one progress update of t (its display's `what`: "snapshot", "on-demand snapshot").
 * progress_entry: " <schema.table>=<done>,<chunks>,<rows>[,<key>...]" (escaped) into b.
 * apply_progress: the entries of a stored progress text into the matching tables. */
int siphon_pg__snap_table_init(pg_snap_table_t *t, const char *schema, const char *table);
int siphon_pg__snap_plan(siphon_source_t *src, pg_snap_table_t *t, char *errbuf, size_t errsize);
void siphon_pg__snap_table_free(pg_snap_table_t *t);
int siphon_pg__snap_chunk_sql(siphon_buf_t *sql, PGconn *c, const pg_snap_table_t *t,
                              int chunk_rows, int literal_keys);
int siphon_pg__snap_decode_row(siphon_arena_t *a, const pg_snap_table_t *t, PGresult *res, int i,
                               siphon_row_t **out, char *errbuf, size_t errsize);
int siphon_pg__snap_set_last(pg_snap_table_t *t, PGresult *res, int i);
void siphon_pg__snap_show(pg_snap_progress_t *pr, const pg_snap_table_t *t, int force);
int siphon_pg__snap_progress_entry(siphon_buf_t *b, const pg_snap_table_t *t);
void siphon_pg__snap_apply_progress(pg_snap_table_t *tables, int nt, const char *progress);
/* A regular connection with the replication session's settings (snapshot work). NULL with
 * errbuf set (SIPHON_ECONN in *rc) when it fails. Caller frees with PQfinish(). */
PGconn *siphon_pg__snap_connect(siphon_source_t *src, int *rc, char *errbuf, size_t errsize);
/* Run one command; 0, or SIPHON_EINVAL / SIPHON_ECONN with "could not <what>: <reason>". */
int siphon_pg__exec_ok(PGconn *c, const char *sql, const char *what, char *errbuf,
                       size_t errsize);
/* A server message without its trailing newline, into buf ("connection lost" when empty). */
const char *siphon_pg__trim(const char *msg, char *buf, size_t size);

/* pg_incremental.c: on-demand snapshots while streaming (docs/snapshots.md, "On demand").
 * setup: in open(), after the server checks (PostgreSQL 14 or later; otherwise nothing is set
 * up): remember the streamed tables, install the stream hooks, and resume the on-demand
 * snapshot in progress when the stored position carries one (progress: the text after
 * " isnap", or NULL). tick: at the start of next(), before records are read: start the next
 * chunk when none is in flight. poll: in next()'s loop: collect a chunk's results without
 * blocking; *fd (or -1) is the socket to wait on. free: in close().
 * signal: siphon snapshot: ask the connector streaming from cfg's slot to snapshot one table
 * (checks, then pg_logical_emit_message()); *token gets "<signal LSN> <schema.table>".
 * status: from a stored position text and a token, 0 not received yet, 1 running (*rows,
 * *chunks), 2 done. */
int siphon_pg__inc_setup(siphon_source_t *src, const siphon_config_t *cfg,
                         const siphon_table_ref_t *tables, int ntables, const char *progress,
                         char *errbuf, size_t errsize);
int siphon_pg__inc_tick(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_pg__inc_poll(siphon_source_t *src, int *fd, char *errbuf, size_t errsize);
void siphon_pg__inc_free(siphon_source_t *src);
int siphon_pg__inc_signal(const siphon_config_t *cfg, const char *schema, const char *table,
                          char *token, size_t tokensize, char *errbuf, size_t errsize);
int siphon_pg__inc_status(const char *stored_pos, const char *token, uint64_t *rows,
                          uint64_t *chunks, char *errbuf, size_t errsize);
/* Whether transaction xid is visible in the snapshot (xmin, xmax, xip) of
 * pg_current_snapshot(): committed before it (below xmin, or below xmax and not in progress).
 * xid32: xid is a 32-bit xid (pgoutput's), put in the epoch nearest to xmax's. */
int siphon_pg__xid_visible(uint64_t xmin, uint64_t xmax, const uint64_t *xip, int nxip,
                           uint64_t xid, int xid32);
/* Parse pg_current_snapshot()'s text "xmin:xmax:xip,...". *xip (caller frees with free())
 * gets *nxip ids. 0, SIPHON_EINVAL (malformed) or SIPHON_ENOMEM. */
int siphon_pg__snapshot_parse(const char *text, uint64_t *xmin, uint64_t *xmax, uint64_t **xip,
                              int *nxip);

/* Escape / unescape a value for the stored progress text (percent-encoding). */
int siphon_pg__snap_escape(siphon_buf_t *out, const char *s, size_t len);
/* In place; returns the new length, or -1 on a malformed escape. */
long siphon_pg__snap_unescape(char *s);

/* Options forced on the replication session so text output is predictable. */
#define PG_SESSION_OPTIONS                                                                   \
    "-c datestyle=ISO,YMD -c intervalstyle=postgres -c extra_float_digits=3 -c TimeZone=UTC " \
    "-c bytea_output=hex"

#endif
