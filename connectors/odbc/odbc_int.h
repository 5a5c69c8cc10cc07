/*
 * odbc_int.h - private declarations of the ODBC polling connector, shared by its .c files and
 * its unit tests (tests/unit/odbc/).
 *
 * The connector has five layers, each testable on its own:
 *   odbc_value.c   a column's ODBC type -> how it is fetched ("kind") and what value it becomes;
 *                  text parsers (dates, times, timestamps, UUIDs), UTF-16 <-> UTF-8, the row
 *                  content hash and the compact key encoding (no driver needed)
 *   odbc_sql.c     dialects (row limit clause, clock query) and the text of every query the
 *                  connector runs, with the meaning of each parameter marker (no driver needed)
 *   odbc_wm.c      per-table watermarks and the position text: compact JSON holding every
 *                  table's watermark (no driver needed)
 *   odbc_keys.c    the keys Siphon has seen, per table, with each row's content hash: an
 *                  in-memory hash map, and its on-disk form (base file + journal) that only ever
 *                  holds what was delivered (no driver needed)
 *   odbc_conn.c    ODBC handles: connect, diagnostics, describe, prepared statements, block
 *                  fetches (row-array binding) with long values read in pieces
 *   odbc_source.c  the siphon_source_ops_t table: scheduling of polls and reconciliations per
 *                  table, change detection, records, reconnection, ack()
 *
 * Positions (the rule to remember): every poll of a table is one "transaction": BEGIN, its
 * changes, COMMIT. The COMMIT position's text is the JSON of every table's watermark *after*
 * that poll (other tables at their latest read state, which earlier polls already carry), and
 * its number is the poll's sequence number (continued across restarts). The key-set changes of
 * a poll are written to the journal and fsynced before its records leave next() ("intent");
 * the tracker acknowledges the poll only when every event up to it was delivered, and ack()
 * then appends an acknowledgement, before the pipeline stores the position in the offsets
 * file. So a restart resumes from the stored watermarks knowing every key that may have been
 * sent: acknowledged ones with their content hash (a row read again unchanged is not sent
 * again), the others as "maybe" (sent again when read, deleted when gone). BEGIN positions are
 * short and deterministic ("<table>:<hash of the watermark it starts from and the rows it
 * carries>") so that event ids ("<BEGIN pos>:<index>") are the same when the same rows are read
 * again after a restart.
 */
#ifndef SIPHON_ODBC_INT_H
#define SIPHON_ODBC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sql.h>
#include <sqlext.h>

#include "core/buf.h"
#include "core/value.h"
#include "pipeline/source.h"

/* ---- values (odbc_value.c) ---- */

/* How one column is fetched (SQL_C_* type) and what value it becomes; chosen once per column
 * from SQLDescribeCol's type, the driver's type name and the column's signedness. */
typedef enum odbc_kind {
    ODBC_K_TEXT = 1, /* SQL_C_WCHAR, converted to UTF-8: every character type and the unknown */
    ODBC_K_JSON,     /* the same, for json/jsonb columns */
    ODBC_K_INT,      /* SQL_C_SBIGINT: TINYINT .. BIGINT (signed) */
    ODBC_K_UBIG,     /* SQL_C_CHAR -> DECIMAL scale 0: unsigned BIGINT (beyond int64) */
    ODBC_K_FLOAT,    /* SQL_C_DOUBLE: REAL, FLOAT, DOUBLE */
    ODBC_K_DECIMAL,  /* SQL_C_CHAR -> DECIMAL: DECIMAL, NUMERIC (TEXT when not a number: NaN) */
    ODBC_K_BOOL,     /* SQL_C_BIT: BIT */
    ODBC_K_DATE,     /* SQL_C_CHAR "YYYY-MM-DD" -> DATE */
    ODBC_K_TIME,     /* SQL_C_CHAR "HH:MM:SS[.ffffff]" -> TIME (SQL_C_TYPE_TIME drops fractions) */
    ODBC_K_TS,       /* SQL_C_CHAR "YYYY-MM-DD HH:MM:SS[.f]" -> TIMESTAMP (the driver's own text
                        is kept for watermarks: SQLite compares text, sqliteodbc binds only ms) */
    ODBC_K_UUID,     /* SQL_C_CHAR -> UUID: SQL_GUID */
    ODBC_K_BYTES     /* SQL_C_BINARY: BINARY, VARBINARY, LONGVARBINARY */
} odbc_kind_t;

/* A fetched value in its source form, the "datum": what is hashed, stored in the key set,
 * written in watermarks and bound back as a parameter. Bytes: INT 8 bytes (int64, little
 * endian), FLOAT 8 bytes (IEEE double, little endian), BOOL 1 byte (0/1), TEXT/JSON UTF-8,
 * the SQL_C_CHAR kinds the driver's text, BYTES raw. p is borrowed (an arena or a key set). */
typedef struct odbc_datum {
    const uint8_t *p;
    uint32_t len;
    int null;
} odbc_datum_t;

odbc_kind_t siphon_odbc__kind_for(int sqltype, const char *type_name, int is_unsigned);
siphon_vtype_t siphon_odbc__kind_vtype(odbc_kind_t k);
/* The SQL_C_* type the kind is fetched and bound with. */
int siphon_odbc__kind_ctype(odbc_kind_t k);
const char *siphon_odbc__kind_name(odbc_kind_t k);

/* The value of a datum. TEXT/JSON/BYTES point into the datum; DECIMAL digits are written to
 * the arena. A text that does not parse as its kind (PostgreSQL's NaN, 'infinity', a SQLite
 * column holding text in a date column) becomes TEXT, as the Postgres connector does. Returns
 * 0 or SIPHON_ENOMEM. */
int siphon_odbc__decode(siphon_value_t *v, odbc_kind_t k, const odbc_datum_t *d,
                        siphon_arena_t *a);

/* Text parsers for the ODBC character forms of dates and times (ODBC appendix D:
 * "yyyy-mm-dd", "hh:mm:ss[.f...]", "yyyy-mm-dd hh:mm:ss[.f...]"; a 'T' separator and a
 * trailing 'Z' or +hh[:mm] offset are accepted too). 0, or SIPHON_EINVAL when the text is not
 * one (out-parameters then undefined). Timestamps are microseconds since 1970-01-01 00:00:00
 * of the same wall clock (tz 0), or UTC when the text carries an offset (tz 1); digits past
 * the microsecond are truncated. */
int siphon_odbc__parse_date(const char *s, size_t len, int32_t *days);
int siphon_odbc__parse_time(const char *s, size_t len, int64_t *us);
int siphon_odbc__parse_ts(const char *s, size_t len, int64_t *us, int *tz);
int siphon_odbc__parse_uuid(const char *s, size_t len, uint8_t out[16]);
/* "YYYY-MM-DD HH:MM:SS.ffffff" (always six fraction digits), NUL-terminated. size >= 27. */
void siphon_odbc__format_ts(int64_t us, char *buf, size_t size);
int64_t siphon_odbc__days_from_civil(int64_t y, unsigned m, unsigned d);

/* UTF-16 (host order, as unixODBC's SQLWCHAR) to UTF-8: out needs 3 bytes per input unit.
 * Unpaired surrogates become U+FFFD. Returns the bytes written. */
size_t siphon_odbc__utf16_to_utf8(const SQLWCHAR *in, size_t n, char *out);
/* UTF-8 to UTF-16: out needs one unit per input byte. Invalid bytes become U+FFFD. Returns the
 * units written. */
size_t siphon_odbc__utf8_to_utf16(const char *in, size_t len, SQLWCHAR *out);

/* A 64-bit hash (FNV-1a with a final avalanche), chained through seed. */
uint64_t siphon_odbc__hash(uint64_t seed, const void *p, size_t n);
/* The content hash of a row: every datum with its null flag and length. */
uint64_t siphon_odbc__row_hash(const odbc_datum_t *d, int n);

/* The compact key encoding: per key column, a length (varint, 0 = NULL, else len + 1) and the
 * datum's bytes. key_encode appends row[idx[0..n-1]] to out (0 or SIPHON_ENOMEM); key_decode
 * splits p back into n datums pointing into p (0, or SIPHON_EINVAL when p is not n values). */
int siphon_odbc__key_encode(siphon_buf_t *out, const odbc_datum_t *row, const int *idx, int n);
int siphon_odbc__key_decode(odbc_datum_t *out, int n, const uint8_t *p, size_t len);

/* A datum as watermark text (integers and floats in decimal, BOOL "0"/"1", BYTES in hex, the
 * others as they are), appended to out with no NUL. datum_parse is the inverse, the bytes in
 * the arena. 0, SIPHON_ENOMEM, or SIPHON_EINVAL for a text that is not a value of the kind. */
int siphon_odbc__datum_text(siphon_buf_t *out, odbc_kind_t k, const odbc_datum_t *d);
int siphon_odbc__datum_parse(odbc_datum_t *out, odbc_kind_t k, const char *text, size_t len,
                             siphon_arena_t *a);

/* ---- dialects and queries (odbc_sql.c) ---- */

typedef enum odbc_limit {
    ODBC_LIMIT_NONE = 0, /* no clause: SQL_ATTR_MAX_ROWS only */
    ODBC_LIMIT_LIMIT,    /* ... ORDER BY x LIMIT n        PostgreSQL, MySQL/MariaDB, SQLite */
    ODBC_LIMIT_TOP,      /* SELECT TOP n ...               SQL Server, Progress OpenEdge */
    ODBC_LIMIT_FETCH,    /* ... FETCH FIRST n ROWS ONLY    DB2 (incl. DB2 for i), Oracle 12c+ */
    ODBC_LIMIT_FIRST     /* SELECT FIRST n ...             Informix */
} odbc_limit_t;

typedef struct odbc_dialect {
    char name[32];         /* "PostgreSQL", as SQL_DBMS_NAME said (truncated) */
    odbc_limit_t limit;
    const char *clock_sql; /* static: one row, one column, the database's current timestamp */
    char quote[4];         /* SQL_IDENTIFIER_QUOTE_CHAR; "" when the driver has none */
} odbc_dialect_t;

/* Pick the dialect from SQL_DBMS_NAME and SQL_IDENTIFIER_QUOTE_CHAR (" " means none). Unknown
 * databases get no limit clause (SQL_ATTR_MAX_ROWS) and the ODBC escape {fn NOW()}. */
void siphon_odbc__dialect(odbc_dialect_t *d, const char *dbms_name, const char *quote);

/* Append ident quoted (quote characters inside doubled); a dotted "schema.table" is quoted part
 * by part. With an empty quote, appended as it is. 0 or SIPHON_ENOMEM. */
int siphon_odbc__quote(siphon_buf_t *out, const char *ident, const char *quote);

typedef enum odbc_qkind {
    ODBC_Q_FIRST = 0,  /* a page with no cursor: incrementing and snapshot from the start;
                          timestamp modes: ts <= hi (the first sweep) */
    ODBC_Q_FIRST_BASE, /* timestamp modes: a sweep's first page, base < ts <= hi */
    ODBC_Q_NEXT,       /* the page after the cursor (timestamp modes: and ts <= hi) */
    ODBC_Q_KEYS_FIRST, /* reconciliation: the first chunk of keys */
    ODBC_Q_KEYS_NEXT,  /* reconciliation: the chunk of keys after the cursor */
    ODBC_Q_BY_KEY,     /* one row by its key (rows reconciliation found unseen) */
    ODBC_Q_SAMPLE,     /* the first `page` rows in key order (siphon preview), no parameter */
    ODBC_Q_COUNT
} odbc_qkind_t;

/* What a parameter marker is bound to: the sweep's upper or lower bound (timestamp column), or
 * value i (>= 0) of the cursor (ordering columns; key columns for the KEYS and BY_KEY queries). */
enum { ODBC_P_HI = -1, ODBC_P_BASE = -2 };

/* The parts of a table's queries, every identifier already quoted. */
typedef struct odbc_qspec {
    const char *table;
    const char *const *select; /* the columns read by polls */
    int nselect;
    const char *const *order;  /* ordering columns of polls (their cursor) */
    int norder;
    const char *const *keys;   /* key columns (reconciliation, by-key) */
    int nkeys;
    const char *ts;            /* the timestamp column, or NULL (incrementing, snapshot) */
    const char *not_null;      /* a column the first page requires non-null, or NULL */
    long page;                 /* rows per poll */
    long chunk;                /* keys per reconciliation query */
} odbc_qspec_t;

typedef struct odbc_query {
    char *sql;
    int nparams;
    int *params; /* per marker: ODBC_P_HI, ODBC_P_BASE or a cursor/key index */
} odbc_query_t;

/* Build the text of one query. 0, SIPHON_ENOMEM, or SIPHON_EINVAL when the kind makes no sense
 * for the spec (FIRST_BASE without a timestamp column). Free with siphon_odbc__query_free(). */
int siphon_odbc__query_build(odbc_query_t *q, odbc_qkind_t kind, const odbc_qspec_t *s,
                             const odbc_dialect_t *d);
void siphon_odbc__query_free(odbc_query_t *q);

/* ---- watermarks and the position text (odbc_wm.c) ---- */

/* One table's read state. Timestamp modes sweep (base, hi] in pages ordered by the ordering
 * columns; incrementing and snapshot modes have no bounds. States:
 *     {}                       nothing read yet
 *     {b}                      between sweeps: the next one reads ts > b
 *     {b?, h, c[...]}          inside a sweep (h fixed for the sweep), after the row c
 *     {c[...]}                 incrementing: after inc c; snapshot: inside a sweep after key c
 * All strings are malloc'd and owned by the watermark. */
typedef struct odbc_wm {
    char *base; /* timestamp text, exclusive lower bound, or NULL */
    char *hi;   /* timestamp text, inclusive upper bound of the current sweep, or NULL */
    int ncur;
    char **cur; /* cursor texts (siphon_odbc__datum_text), NULL for SQL NULL */
} odbc_wm_t;

void siphon_odbc__wm_clear(odbc_wm_t *wm);
/* dst is cleared first. 0 or SIPHON_ENOMEM (dst then empty). */
int siphon_odbc__wm_copy(odbc_wm_t *dst, const odbc_wm_t *src);
int siphon_odbc__wm_equal(const odbc_wm_t *a, const odbc_wm_t *b);

/* The longest position text: the pipeline formats the acknowledged position into a 4096-byte
 * buffer (siphon_pipeline_stats_t.acked_pos) before storing it in the offsets file. A longer
 * one is refused (the source stops with a message) rather than stored cut. */
#define ODBC_POS_MAX 4095

/* The position text: {"<table>":{"b":..,"h":..,"c":[..]},...} in the order given, compact.
 * Caller frees with free(). NULL when out of memory. */
char *siphon_odbc__pos_text(const char *const *tables, const odbc_wm_t *const *wms, int n);
/* Find one table's watermark in a position text. *found 0 (and *wm empty) when the text has no
 * entry for the table. 0, or SIPHON_EINVAL with errbuf saying what is wrong with the text. */
int siphon_odbc__pos_lookup(const char *text, const char *table, odbc_wm_t *wm, int *found,
                            char *errbuf, size_t errsize);
/* 0 when text is a position text this connector wrote, else SIPHON_EINVAL with errbuf. */
int siphon_odbc__pos_check(const char *text, char *errbuf, size_t errsize);

/* ---- the key set (odbc_keys.c) ---- */

/* What is known of a key (odbc_kent_t.live). A "maybe" key comes from a poll whose events may or
 * may not have been delivered before a crash (written ahead, never acknowledged): it counts as
 * present for delete detection (so a row deleted meanwhile still gets its delete), and the next
 * read of the row sends it again whatever its content (a create for MAYBE_NEW, an update for
 * MAYBE_CHANGED). */
enum {
    ODBC_KEY_DEAD = 0,
    ODBC_KEY_SENT = 1,          /* delivered, with this content hash */
    ODBC_KEY_MAYBE_NEW = 2,     /* its create may not have been delivered */
    ODBC_KEY_MAYBE_CHANGED = 3  /* its last update may not have been delivered */
};

/* One key Siphon has seen. Entries are addressed by index (the array grows). A deleted key
 * stays as a dead entry until the map is rebuilt, and comes back to life if the key returns. */
typedef struct odbc_kent {
    uint64_t khash;  /* siphon_odbc__hash of the key bytes */
    uint64_t chash;  /* content hash of the row last emitted for the key */
    uint32_t koff;   /* key bytes in keys->kbytes */
    uint32_t klen;
    uint32_t mark;   /* reconciliation: the pass that last saw the key */
    uint32_t live;   /* ODBC_KEY_* */
} odbc_kent_t;

typedef struct odbc_keys {
    odbc_kent_t *ents;
    size_t nents, capents;
    uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
    size_t nslots;   /* a power of two, or 0 */
    siphon_buf_t kbytes;
    size_t live;     /* entries not DEAD */
} odbc_keys_t;

/* The entry of a key that is not DEAD, or -1. */
long siphon_odbc__keys_find(const odbc_keys_t *ks, const uint8_t *key, size_t klen,
                            uint64_t khash);
/* Insert or update (and revive) a key as SENT with this hash; returns its entry index, or
 * SIPHON_ENOMEM / SIPHON_EINVAL (key bytes past 4 GiB). */
long siphon_odbc__keys_put(odbc_keys_t *ks, const uint8_t *key, size_t klen, uint64_t khash,
                           uint64_t chash);
/* Forget a key (no-op when absent). */
void siphon_odbc__keys_del(odbc_keys_t *ks, const uint8_t *key, size_t klen, uint64_t khash);
static inline const uint8_t *siphon_odbc__keys_bytes(const odbc_keys_t *ks, const odbc_kent_t *e)
{
    return ks->kbytes.data + e->koff;
}
/* Drop dead entries and their bytes (entry indexes change). 0 or SIPHON_ENOMEM. */
int siphon_odbc__keys_rebuild(odbc_keys_t *ks);
void siphon_odbc__keys_free(odbc_keys_t *ks);

/* The on-disk key sets of a connector, in its state folder:
 *   keys.base     every table's keys as of the last compaction
 *   keys.journal  what happened since: the changes of each poll, written and fsynced before its
 *                 events are handed to the pipeline ("intent" frames), and acknowledgements
 * Both are a 16-byte header ("SIPHONKB"/"SIPHONKJ" + generation, little endian) then frames:
 * [u32 length][u32 check][records]; a torn last frame is ignored (and cut). Records: 'S' seq
 * (first in an intent frame: the poll), 'A' seq (an acknowledgement frame: every poll up to seq
 * was delivered), 'T' len name (the table the next records are about), 'P' len key chash (sent),
 * 'D' len key (deleted), 'N' len key / 'U' len key (MAYBE_NEW / MAYBE_CHANGED, in a base), 'R'
 * time (a reconciliation pass completed at this Unix time). Integers are little endian, lengths
 * varints. A journal whose generation is older than the base's was already folded into it.
 *
 * The rule: the intent of a poll is on disk before any of its events can be delivered, so a
 * restart knows every key that may have been sent. On load, intents up to the last
 * acknowledgement are replayed as they are; later ones are replayed as "maybe": their puts make
 * MAYBE keys, their deletes and reconciliation times are ignored (the keys stay, the next pass
 * deletes them again). Poll numbers (seq) continue across restarts (store_open gives the last). */
enum {
    ODBC_REC_TABLE = 'T',
    ODBC_REC_PUT = 'P',
    ODBC_REC_DEL = 'D',
    ODBC_REC_RECON = 'R',
    ODBC_REC_MAYBE_NEW = 'N',
    ODBC_REC_MAYBE_CHANGED = 'U',
    ODBC_REC_SEQ = 'S',
    ODBC_REC_ACK = 'A'
};

typedef struct odbc_store {
    char *dir;
    char *base_path, *journal_path;
    int jfd;              /* journal, open for writing at its end, or -1 */
    uint64_t gen;
    uint64_t base_bytes, journal_bytes;
    uint64_t last_seq;    /* highest poll number written (intent or acknowledgement) */
    uint64_t acked_seq;   /* highest acknowledgement written */
    uint64_t fsyncs;      /* for tests and the benchmark */
} odbc_store_t;

/* Called for every record while loading: op is an ODBC_REC_* (PUT, DEL, RECON, MAYBE_NEW,
 * MAYBE_CHANGED), maybe is 1 for the records of an intent never acknowledged, table is the
 * current table (length tlen, not NUL-terminated); PUT has key and val (chash), DEL and MAYBE_*
 * a key, RECON val (the time). */
typedef int (*odbc_store_cb)(void *opaque, const char *table, size_t tlen, int op, int maybe,
                             const uint8_t *key, size_t klen, uint64_t val);

/* Create the folder when missing, read base and journal through cb, open the journal for
 * appending; st->last_seq is the highest poll number used so far. 0, or SIPHON_EIO /
 * SIPHON_EINVAL (a damaged file: the message names it and says to remove the folder, which
 * makes the next start read every table again). Free with siphon_odbc__store_close() (also
 * after a failure). */
int siphon_odbc__store_open(odbc_store_t *st, const char *dir, odbc_store_cb cb, void *opaque,
                            char *errbuf, size_t errsize);
void siphon_odbc__store_close(odbc_store_t *st);
/* Record appenders (0 or SIPHON_ENOMEM). */
int siphon_odbc__rec_table(siphon_buf_t *b, const char *name);
int siphon_odbc__rec_put(siphon_buf_t *b, const uint8_t *key, size_t klen, uint64_t chash);
int siphon_odbc__rec_del(siphon_buf_t *b, const uint8_t *key, size_t klen);
int siphon_odbc__rec_maybe(siphon_buf_t *b, int op, const uint8_t *key, size_t klen);
int siphon_odbc__rec_recon(siphon_buf_t *b, uint64_t unix_time);
/* Write the intent of poll seq (its records: table, puts, deletes...) and fsync it, before its
 * events go anywhere. seq must be above every seq written before. 0 or SIPHON_EIO (the journal
 * is cut back: the caller must not hand the events on). */
int siphon_odbc__store_intent(odbc_store_t *st, uint64_t seq, const siphon_buf_t *recs,
                              char *errbuf, size_t errsize);
/* Every poll up to seq was delivered: append an acknowledgement (not fsynced: losing it only
 * makes keys MAYBE). 0 or SIPHON_EIO. */
int siphon_odbc__store_ack(odbc_store_t *st, uint64_t seq, char *errbuf, size_t errsize);
/* 1 when every intent written is acknowledged (the key sets in memory are the delivered ones). */
int siphon_odbc__store_idle(const odbc_store_t *st);
/* Rewrite the base from scratch (records written by the caller between begin and end, one
 * frame per call of compact_frame) and start a journal that holds only the acknowledgement of
 * last_seq. Only when idle. 0 or SIPHON_EIO (the old files stay valid). */
int siphon_odbc__store_compact_begin(odbc_store_t *st, int *fd, char *errbuf, size_t errsize);
int siphon_odbc__store_compact_frame(int fd, const siphon_buf_t *recs);
int siphon_odbc__store_compact_end(odbc_store_t *st, int fd, int ok, char *errbuf,
                                   size_t errsize);

/* ---- ODBC (odbc_conn.c) ---- */

/* One column of a table as the driver describes it. Strings owned. */
typedef struct odbc_col {
    char *name;
    char *qname;      /* quoted for SQL */
    char *type_name;  /* SQL_DESC_TYPE_NAME ("int4", "decimal(12,2)"), or the SQL type */
    int sqltype;      /* SQL_INTEGER, SQL_TYPE_TIMESTAMP, ... */
    SQLULEN size;     /* column size (0 when the driver does not know) */
    int digits;       /* decimal digits */
    int nullable;     /* SQL_NULLABLE, SQL_NO_NULLS or SQL_NULLABLE_UNKNOWN */
    int is_unsigned;
    odbc_kind_t kind;
} odbc_col_t;

typedef struct odbc_conn {
    SQLHENV env;
    SQLHDBC dbc;
    int connected;
    odbc_dialect_t dia;
    int gd_any_column;  /* SQLGetData before a bound column (SQL_GD_ANY_COLUMN) */
    int gd_bound;       /* SQLGetData on a bound column (SQL_GD_BOUND) */
    char dbms[64];
    char database[128];
    uint64_t queries;   /* statements executed (counters for docs/performance.md) */
    uint64_t rows;      /* rows fetched */
} odbc_conn_t;

/* A prepared statement with its result binding. */
typedef struct odbc_stmt {
    SQLHSTMT h;
    odbc_query_t q;
    const odbc_col_t **pcols; /* per parameter marker: the column it is compared with */
    int ncols;                /* result columns */
    const odbc_col_t **rcols; /* their descriptions (borrowed from the table) */
    SQLULEN rowset;           /* rows per SQLFetch */
    uint8_t **buf;            /* per result column: rowset elements of elem[c] bytes (NULL and
                                 elem 0: a long column, unbound, read with SQLGetData) */
    SQLLEN **ind;
    size_t *elem;
    SQLULEN fetched;
    SQLUSMALLINT *rstat;
    siphon_arena_t parena;    /* parameter buffers of the current execution */
    SQLLEN *pind;
    char what[160];           /* "poll of public.oehdr", for messages */
} odbc_stmt_t;

/* SQLDriverConnect with a DSN name ("erp": becomes "DSN=erp") or a connection string (anything
 * with '='), then the driver's dialect and capabilities. 0, SIPHON_ECONN (unreachable: retry)
 * or SIPHON_EINVAL (no such DSN or driver, bad credentials: fix the config). redacted names the
 * data source in messages. */
int siphon_odbc__connect(odbc_conn_t *c, const char *dsn, const char *redacted, char *errbuf,
                         size_t errsize);
void siphon_odbc__disconnect(odbc_conn_t *c);

/* Format "[SQLSTATE] message" of a handle's first diagnostics into buf; *retriable is set when
 * the failure is one reconnecting can cure (connection exceptions 08xxx, serialization and
 * deadlock 40xxx, timeouts HYT0x, PostgreSQL's 57P0x shutdowns, MySQL 2006/2013, or a connection
 * the driver reports dead). */
void siphon_odbc__diag(odbc_conn_t *c, SQLSMALLINT htype, SQLHANDLE h, char *buf, size_t size,
                       int *retriable);

/* Describe "SELECT * FROM <qtable> WHERE 1=0": the columns, in table order. *cols is an array of
 * *ncols owned columns (free with siphon_odbc__cols_free). SIPHON_ENOTFOUND when the table does
 * not exist, SIPHON_ECONN when the connection failed. */
int siphon_odbc__describe(odbc_conn_t *c, const char *qtable, const char *display,
                          odbc_col_t **cols, int *ncols, char *errbuf, size_t errsize);
void siphon_odbc__cols_free(odbc_col_t *cols, int ncols);
/* The primary key columns (SQLPrimaryKeys), in key order, as malloc'd names in *names (free each
 * and the array). *n 0 when the table has none or the driver cannot say. */
int siphon_odbc__primary_key(odbc_conn_t *c, const char *schema, const char *table,
                             char ***names, int *n, char *errbuf, size_t errsize);

/* Prepare q (taken over by the statement) and bind the result columns rcols (borrowed), a block
 * of rows per fetch; long columns are left unbound (read with SQLGetData), and then one row per
 * fetch (also from the first bound value longer than its buffer on: see stmt_run). pcols gives the column each parameter marker compares with. 0 or a negative code
 * (the statement is then freed). */
int siphon_odbc__stmt_prepare(odbc_conn_t *c, odbc_stmt_t **out, odbc_query_t *q,
                              const odbc_col_t **rcols, int ncols, const odbc_col_t **pcols,
                              long max_rows, const char *what, char *errbuf, size_t errsize);
void siphon_odbc__stmt_free(odbc_stmt_t *st);

/* Execute with params[i] bound to marker i (as its column's kind), and fetch at most max_rows
 * rows into cells (max_rows * ncols datums, bytes in the arena). Values longer than their
 * buffer are read again whole with SQLGetData, in pieces (a block meeting one is read again,
 * one row per fetch). *nrows is the count. 0, SIPHON_ECONN
 * (retriable: reconnect and run again), or another negative code with errbuf. The cursor is
 * closed in every case. */
int siphon_odbc__stmt_run(odbc_conn_t *c, odbc_stmt_t *st, const odbc_datum_t *params,
                          long max_rows, odbc_datum_t *cells, long *nrows, siphon_arena_t *a,
                          char *errbuf, size_t errsize);

/* Run a one-row, one-column query and return its text (caller frees). 0 or negative. */
int siphon_odbc__query_text(odbc_conn_t *c, const char *sql, char **out, char *errbuf,
                            size_t errsize);

/* ---- the source (odbc_source.c) ---- */

/* Counters of a running source, for tests and the benchmark. */
typedef struct odbc_stats {
    uint64_t queries;      /* statements executed (polls, reconciliation, clock, describe) */
    uint64_t rows;         /* rows fetched */
    uint64_t polls;        /* poll pages and reconciliation passes completed */
    uint64_t changes;      /* creates and updates emitted */
    uint64_t deletes;      /* deletes emitted */
    uint64_t recon_passes; /* reconciliation passes completed */
    uint64_t reconnects;   /* connections lost */
    uint64_t fsyncs;       /* journal frames written (one per acknowledgement with changes) */
    uint64_t acked_seq;    /* last poll acknowledged */
} odbc_stats_t;

void siphon_odbc__stats(const siphon_source_t *src, odbc_stats_t *out);

#endif
