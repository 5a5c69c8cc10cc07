/*
 * my_int.h - private declarations of the MySQL/MariaDB binlog connector, shared by its .c files
 * and its unit tests (tests/unit/mysql/).
 *
 * The connector has five layers; the first four need no server and are unit-tested with bytes
 * built from the binlog format's documentation:
 *   my_value.c    one column of a row image -> siphon_value_t (integers, packed DECIMAL,
 *                 temporal types, strings in their character set, ENUM/SET, BIT), and the
 *                 column plans built from a TABLE_MAP's type codes and metadata
 *   my_json.c     MySQL's binary JSON -> JSON text
 *   my_gtid.c     positions: MariaDB GTID lists, MySQL GTID sets, file:offset; text forms
 *   my_event.c    the event parser: one binlog event at a time (header, body, no checksum) into
 *                 the records of the current batch, with the table-map cache and the relations
 *   my_catalog.c  the regular connection: server checks, describe(), table definitions when
 *                 the binlog does not name columns, the start position
 *   my_source.c   the siphon_source_ops_t table: the reader thread (libmariadb's replication
 *                 API), reconnection with backoff, heartbeats, batches handed to next()
 *   my_snapshot.c the initial snapshot: consistent-snapshot transactions at a known binlog
 *                 position, key-ordered chunks read by worker threads, resumable progress
 *   my_sample.c   the catalog-only source (validate, preview) and the text -> value decoding
 *                 the snapshot shares
 *
 * Positions (the rule to remember). A transaction's BEGIN position is its own GTID
 * ("0-1-42" on MariaDB, "3e11fa47-...:42" on MySQL; "binlog.000003:1234", the offset of its
 * first event, when the server has no GTIDs): deterministic, so event ids are the same after
 * a restart. Its COMMIT position is where to resume after it: the GTID state that includes it
 * (MariaDB: the last GTID of every replication domain, "0-1-42,1-7-9"; MySQL: the executed
 * GTID set, "3e11fa47-...:1-42") or "binlog.000003:1500", the end of its XID event. Positions
 * move only at a transaction's end (XID, COMMIT, or the end of a DDL statement).
 */
#ifndef SIPHON_MY_INT_H
#define SIPHON_MY_INT_H

#include <iconv.h>
#include <pthread.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/value.h"
#include "pipeline/source.h"

/* ---- binlog type codes (MySQL's enum_field_types, as written in TABLE_MAP events) ---- */
enum {
    MYT_DECIMAL = 0, /* pre-5.0 DECIMAL: not supported */
    MYT_TINY = 1,
    MYT_SHORT = 2,
    MYT_LONG = 3,
    MYT_FLOAT = 4,
    MYT_DOUBLE = 5,
    MYT_NULL = 6,
    MYT_TIMESTAMP = 7,
    MYT_LONGLONG = 8,
    MYT_INT24 = 9,
    MYT_DATE = 10,
    MYT_TIME = 11,
    MYT_DATETIME = 12,
    MYT_YEAR = 13,
    MYT_NEWDATE = 14,
    MYT_VARCHAR = 15,
    MYT_BIT = 16,
    MYT_TIMESTAMP2 = 17,
    MYT_DATETIME2 = 18,
    MYT_TIME2 = 19,
    MYT_JSON = 245,
    MYT_NEWDECIMAL = 246,
    MYT_ENUM = 247,
    MYT_SET = 248,
    MYT_TINY_BLOB = 249,
    MYT_MEDIUM_BLOB = 250,
    MYT_LONG_BLOB = 251,
    MYT_BLOB = 252,
    MYT_VAR_STRING = 253,
    MYT_STRING = 254,
    MYT_GEOMETRY = 255
};

/* Binlog event types the parser knows (log_event.h of both servers). */
enum {
    MYE_QUERY = 2,
    MYE_STOP = 3,
    MYE_ROTATE = 4,
    MYE_FORMAT_DESCRIPTION = 15,
    MYE_XID = 16,
    MYE_TABLE_MAP = 19,
    MYE_WRITE_ROWS_V1 = 23,
    MYE_UPDATE_ROWS_V1 = 24,
    MYE_DELETE_ROWS_V1 = 25,
    MYE_HEARTBEAT = 27,
    MYE_WRITE_ROWS_V2 = 30,
    MYE_UPDATE_ROWS_V2 = 31,
    MYE_DELETE_ROWS_V2 = 32,
    MYE_MYSQL_GTID = 33,
    MYE_ANONYMOUS_GTID = 34,
    MYE_PREVIOUS_GTIDS = 35,
    MYE_XA_PREPARE = 38,
    MYE_PARTIAL_UPDATE_ROWS = 39,
    MYE_TRANSACTION_PAYLOAD = 40,
    MYE_HEARTBEAT_V2 = 41,
    MYE_ANNOTATE_ROWS = 160,
    MYE_BINLOG_CHECKPOINT = 161,
    MYE_MARIADB_GTID = 162,
    MYE_GTID_LIST = 163,
    MYE_START_ENCRYPTION = 164,
    MYE_QUERY_COMPRESSED = 165,
    MYE_WRITE_ROWS_COMPRESSED_V1 = 166,
    MYE_DELETE_ROWS_COMPRESSED_V2 = 171
};

#define MY_EVENT_HEADER_LEN 19
#define MY_BINARY_COLLATION 63

/* ---- character sets (my_value.c) ---- */

typedef enum my_cs_kind {
    MY_CS_UTF8 = 0, /* utf8mb3, utf8mb4, ascii: the bytes are UTF-8 already */
    MY_CS_BINARY,   /* binary: BYTES */
    MY_CS_LATIN1,   /* MySQL's latin1, which is Windows-1252: converted by a table */
    MY_CS_ICONV,    /* converted to UTF-8 with iconv(3) */
    MY_CS_UNKNOWN   /* a charset iconv cannot read: RAWTEXT for the mapping to convert */
} my_cs_kind_t;

/* How text in charset `csname` ("latin1", "utf8mb4", "cp1250") becomes UTF-8. *iconv_name
 * receives iconv's name for MY_CS_ICONV (static string), else NULL. */
my_cs_kind_t siphon_my__cs_kind(const char *csname, const char **iconv_name);

/* One iconv descriptor per charset, opened on first use (never shared between threads). */
typedef struct my_iconv {
    const char *name; /* iconv's name (static) */
    iconv_t cd;
    struct my_iconv *next;
} my_iconv_t;

/* Latin-1 (Windows-1252 as MySQL defines it) to UTF-8. out needs 3 * n bytes. Returns the
 * number of bytes written. */
size_t siphon_my__latin1_to_utf8(char *out, const uint8_t *in, size_t n);

/* ---- column plans (my_value.c) ---- */

/* How one column's values are decoded: chosen once per table shape, so rows are decoded with a
 * switch and no lookup. */
typedef struct my_col {
    uint8_t type;        /* binlog type; for MYT_STRING the real type (MYT_ENUM, MYT_SET) */
    uint8_t is_unsigned; /* numeric columns */
    uint8_t fsp;         /* TIME2/DATETIME2/TIMESTAMP2: fractional digits 0..6 */
    uint8_t prec, scale; /* NEWDECIMAL */
    uint32_t len;        /* STRING/VARCHAR: max bytes; BLOB/JSON/GEOMETRY: length bytes (1-4);
                            ENUM/SET: pack length; BIT: bytes; FLOAT/DOUBLE: 4/8 */
    uint32_t bits;       /* BIT: number of bits */
    int collation;       /* character columns: collation id, 0 when unknown */
    my_cs_kind_t cs;     /* character columns (and ENUM/SET values) */
    const char *iconv_name;
    int json;            /* MariaDB: a LONGTEXT holding JSON (CHECK json_valid): JSON values */
    int nsyms;           /* ENUM/SET: values, converted to UTF-8 */
    char **syms;
    size_t *symlens;
    siphon_vtype_t vtype;/* what values of this column decode to (see my_value.c) */
} my_col_t;

/* Bytes of TABLE_MAP metadata for a column of this type (0, 1 or 2). */
size_t siphon_my__meta_len(uint8_t type);
/* Fill type, len, prec/scale, fsp, bits of c from the binlog type and its metadata bytes.
 * Returns 0, or SIPHON_EPROTO for a type the connector cannot decode (message in errbuf). */
int siphon_my__col_from_meta(my_col_t *c, uint8_t type, const uint8_t *meta, char *errbuf,
                             size_t errsize);
/* Derive vtype (and the charset kind from collation, when set) once everything is known. */
void siphon_my__col_finish(my_col_t *c);
/* A SQL name for messages ("int unsigned", "decimal(12,2)", "varchar(40)"), into buf. */
const char *siphon_my__col_type_name(const my_col_t *c, char *buf, size_t size);
/* Copy the ENUM/SET values (each converted to UTF-8 from the column's charset). 0 or ENOMEM. */
int siphon_my__col_set_syms(my_col_t *c, int n, const char *const *syms, const size_t *lens);
void siphon_my__col_free(my_col_t *c);
int siphon_my__col_copy(my_col_t *dst, const my_col_t *src);

/* What a row decoder needs besides the column: where decoded bytes go and the iconv cache. */
typedef struct my_vctx {
    siphon_arena_t *arena; /* converted text, decimal digits, JSON text */
    my_iconv_t **iconvs;   /* cache, may point at NULL */
    int zero_date_null;    /* reserved: zero dates are TEXT today (see my_value.c) */
} my_vctx_t;

/* Decode one non-null value of column c from p (avail bytes). *used receives the bytes read.
 * Text and bytes point into p when no conversion is needed, so p must live as long as the
 * value. Returns 0, or SIPHON_EPROTO with errbuf saying what did not fit. */
int siphon_my__decode(const my_vctx_t *vx, const my_col_t *c, const uint8_t *p, size_t avail,
                      size_t *used, siphon_value_t *v, char *errbuf, size_t errsize);

/* Packed DECIMAL(prec, scale) at p (siphon_my__decimal_size(prec, scale) bytes) into digits
 * ("-" and at most prec digits, no point; out needs prec + 3 bytes). */
size_t siphon_my__decimal_size(int prec, int scale);
int siphon_my__decimal_decode(const uint8_t *p, int prec, int scale, char *out, size_t outsize,
                              size_t *outlen);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t siphon_my__days_from_civil(int64_t y, unsigned m, unsigned d);

/* ---- binary JSON (my_json.c) ---- */

/* Append the JSON text of a MySQL binary JSON document (n bytes at p; n == 0 is the JSON null
 * MySQL writes for an empty value) to b, formatted as MySQL prints it ({"a": 1, "b": [2, 3]}).
 * 0, SIPHON_EPROTO (errbuf says where it is malformed) or SIPHON_ENOMEM. */
int siphon_my__json_to_text(siphon_buf_t *b, const uint8_t *p, size_t n, char *errbuf,
                            size_t errsize);

/* ---- positions (my_gtid.c) ---- */

/* A MariaDB GTID: domain-server-sequence. */
typedef struct my_mgtid {
    uint32_t domain;
    uint32_t server;
    uint64_t seq;
} my_mgtid_t;

/* MySQL: the transactions of one source server, as closed intervals [start, end]. */
typedef struct my_sid {
    uint8_t uuid[16];
    uint64_t (*iv)[2];
    int niv, capiv;
} my_sid_t;

typedef enum my_gtid_kind {
    MY_GTID_NONE = 0,
    MY_GTID_MARIADB, /* list of per-domain GTIDs */
    MY_GTID_MYSQL    /* set of uuid:intervals */
} my_gtid_kind_t;

/* A GTID position: MariaDB's state (last GTID per domain, sorted by domain) or MySQL's set
 * (sorted by uuid, intervals sorted and merged). Zero-initialized is empty. */
typedef struct my_gtidset {
    my_gtid_kind_t kind;
    my_mgtid_t *m;
    int nm, capm;
    my_sid_t *s;
    int ns, caps;
} my_gtidset_t;

void siphon_my__gtid_free(my_gtidset_t *g);
int siphon_my__gtid_copy(my_gtidset_t *dst, const my_gtidset_t *src);
/* Parse "0-1-42,1-2-7" (MariaDB) or "uuid:1-5:7,uuid2:3" (MySQL, whitespace and newlines
 * after commas allowed, as SHOW MASTER STATUS prints them). An empty text is an empty set of
 * `kind_if_empty`. 0 or SIPHON_EINVAL (errbuf says what is wrong) / ENOMEM. */
int siphon_my__gtid_parse(my_gtidset_t *g, const char *text, my_gtid_kind_t kind_if_empty,
                          char *errbuf, size_t errsize);
/* Text form; returns the length needed (like snprintf; the text is complete when < size). */
size_t siphon_my__gtid_format(const my_gtidset_t *g, char *buf, size_t size);
/* MariaDB: the domain's GTID becomes this one. 0 or ENOMEM. */
int siphon_my__gtid_set_mariadb(my_gtidset_t *g, my_mgtid_t gtid);
/* MySQL: add gno to uuid's intervals. 0 or ENOMEM. */
int siphon_my__gtid_add_mysql(my_gtidset_t *g, const uint8_t uuid[16], uint64_t gno);
int siphon_my__gtid_contains_mysql(const my_gtidset_t *g, const uint8_t uuid[16], uint64_t gno);
/* MySQL: every transaction of a is in b. */
int siphon_my__gtid_subset(const my_gtidset_t *a, const my_gtidset_t *b);
/* Parse/format a uuid (36 characters, lower-case when formatted). */
int siphon_my__uuid_parse(uint8_t out[16], const char *s, size_t n);
void siphon_my__uuid_format(const uint8_t u[16], char out[37]);

/* A resume position as stored in the offsets file. */
typedef enum my_pos_kind {
    MY_POS_NONE = 0,
    MY_POS_GTID,  /* gtid holds a MariaDB list or a MySQL set */
    MY_POS_FILE   /* file:offset */
} my_pos_kind_t;

typedef struct my_pos {
    my_pos_kind_t kind;
    my_gtidset_t gtid;
    char file[256];
    uint64_t offset;
} my_pos_t;

/* Parse a stored position. 0 or SIPHON_EINVAL with errbuf saying which forms are accepted. */
int siphon_my__pos_parse(my_pos_t *pos, const char *text, char *errbuf, size_t errsize);
void siphon_my__pos_free(my_pos_t *pos);

/* Binlog file name -> its sequence number ("binlog.000012" -> 12), 0 when it has none. */
uint64_t siphon_my__file_seq(const char *name);

/* MySQL resume by GTID: given each binlog file's Previous_gtids set (oldest first), the index
 * of the newest file whose previous set is contained in `have` (start reading there and skip
 * what `have` holds); -1 when even the oldest file needs transactions `have` lacks (purged). */
int siphon_my__choose_start_file(const my_gtidset_t *prev_sets, int nfiles,
                                 const my_gtidset_t *have);

/* ---- relations and the table-map cache (my_event.c) ---- */

/* One shape of one table. Every version ever built stays alive until the stream is destroyed
 * (records of a batch may point at an older version). */
typedef struct my_rel {
    siphon_relation_t rel; /* what the rest of Siphon sees; strings owned here */
    my_col_t *cols;
    int names_from_binlog; /* the TABLE_MAP carried the column names */
    struct my_rel *next;   /* all versions, newest first */
} my_rel_t;

/* A TABLE_MAP seen on this stream: table_id -> relation version (NULL: a table no mapping
 * reads, skipped). The event body is kept to recognize the same map cheaply. */
typedef struct my_tmap {
    uint64_t table_id;
    my_rel_t *rel;
    uint8_t *body;
    size_t bodylen;
    int version; /* catalog generation it was built with (see my_stream_t.ddl_gen) */
} my_tmap_t;

/* The catalog's view of a table (column names, types, keys, charsets, ENUM/SET values), used
 * when the binlog does not carry them (binlog_row_metadata other than FULL) and to enrich what
 * it does carry (type names, MariaDB's JSON columns). */
typedef struct my_tabledef {
    int ncols;
    char **names;
    char **type_names;  /* COLUMN_TYPE: "int(10) unsigned" */
    char **data_types;  /* DATA_TYPE: "int" */
    int *octets;        /* CHARACTER_OCTET_LENGTH (0 when none) */
    int *prec;          /* NUMERIC_PRECISION (DECIMAL, BIT) */
    int *scale;         /* NUMERIC_SCALE, or DATETIME_PRECISION for temporal types */
    int *is_unsigned;
    int *is_pkey;
    int *nullable;
    char **csnames;     /* CHARACTER_SET_NAME or NULL */
    int *json;
    int *nsyms;         /* ENUM/SET values from COLUMN_TYPE */
    char ***syms;
    size_t **symlens;
} my_tabledef_t;

void siphon_my__tabledef_free(my_tabledef_t *td);

/* Read a table's definition: 0 (td filled), SIPHON_ENOTFOUND, or another error. */
typedef int (*my_tabledef_fn)(void *opaque, const char *db, const char *table,
                              my_tabledef_t *td, char *errbuf, size_t errsize);

/* A table the mappings read. */
typedef struct my_table {
    char *db;
    char *table;
} my_table_t;

/* ---- the stream (my_event.c) ---- */

#define MY_BATCH_MAX_RECS 4096
#define MY_BATCH_MAX_BYTES ((size_t)8 << 20)

/* One batch of records and the memory their rows, values and positions live in. */
typedef struct my_batch {
    siphon_arena_t arena;
    siphon_change_t *recs;
    int n, cap;
    size_t bytes; /* event bytes consumed into this batch */
    uint64_t gen; /* bumped by every reset */
} my_batch_t;

void siphon_my__batch_init(my_batch_t *b);
/* A new zeroed record at the end of b (its recs grow), or NULL when out of memory. */
siphon_change_t *siphon_my__batch_add(my_batch_t *b);
void siphon_my__batch_reset(my_batch_t *b);
void siphon_my__batch_destroy(my_batch_t *b);

typedef enum my_flavor {
    MY_FLAVOR_MARIADB = 0,
    MY_FLAVOR_MYSQL
} my_flavor_t;

typedef enum my_posmode {
    MY_MODE_GTID = 0, /* positions are GTIDs (MariaDB always; MySQL with gtid_mode=ON) */
    MY_MODE_FILE      /* positions are file:offset */
} my_posmode_t;

/* The parser's state. Zero-initialize, set the fields marked "set by the owner", call
 * siphon_my__stream_init(). Not thread-safe: the owner serializes access. */
typedef struct my_stream {
    /* set by the owner */
    my_flavor_t flavor;
    my_posmode_t mode;
    int checksum;              /* events end in a CRC32 the caller did NOT strip (FDE updates) */
    const char *database;      /* borrowed: put on every record ("" for MySQL: many dbs) */
    my_table_t *tables;        /* borrowed: the mapped tables */
    int ntables;
    int names_from_catalog;    /* allowed to read names from the catalog when not in the map */
    my_tabledef_fn tabledef;   /* may be NULL (unit tests: only FULL metadata works then) */
    void *tabledef_opaque;
    void *tabledef_opaque_cache; /* my_event.c's cache of catalog definitions */
    my_batch_t *batch;         /* where records go (the owner swaps batches) */

    /* position */
    char file[256];            /* current binlog file */
    uint64_t file_seq;
    uint64_t offset;           /* end of the last event read in file */
    my_gtidset_t state;        /* GTID mode: the position after the last complete group */
    my_gtidset_t skip;         /* MySQL resume: groups whose GTID is in here are dropped */
    int skipping;              /* the current group is being dropped */

    /* the group (transaction) being read */
    int in_group;
    int group_began;           /* a BEGIN record was emitted for it */
    int group_standalone;      /* MariaDB FL_STANDALONE: ends after its one statement */
    int group_has_begin_query; /* MySQL: "BEGIN" seen, so the group ends at XID/COMMIT */
    int group_gtid_kind;       /* 0 none (file mode/anonymous), 1 MariaDB, 2 MySQL */
    my_mgtid_t group_mgtid;
    uint8_t group_uuid[16];
    uint64_t group_gno;
    char group_pos[288];       /* BEGIN position text */
    uint64_t group_txid;
    int64_t group_commit_us;
    uint32_t change_seq;       /* changes in the group so far (passed-over ones included) */
    const my_batch_t *group_pos_batch; /* group_pos copied into this batch (generation gen) */
    uint64_t group_pos_gen;
    const char *group_pos_copy;

    /* a group cut by a lost connection (siphon_my__stream_disconnected) after its BEGIN went
     * into a batch: the next connection reads it again from its start (the end of the last
     * complete group), and the next group to start settles it */
    char cut_pos[288];         /* its BEGIN position text; "" when no cut group is pending */
    uint32_t cut_changes;      /* its CHANGE records already added to batches */
    uint32_t resume_left;      /* the cut group, read again: changes still to pass over */
    my_batch_t pass_over;      /* rows passed over are decoded here (to count them), then
                                  dropped; reset after every event */
    uint64_t resumed;          /* cut groups resumed (tests and logs) */

    /* relations */
    my_rel_t *rels;            /* every version, newest first */
    my_tmap_t *tmaps;
    int ntmaps, captmaps;
    char **relnames;           /* "db.table" per relation id - 1 */
    int nrelnames, caprelnames;
    int ddl_gen;               /* bumped by every DDL statement: catalog definitions are stale */
    uint64_t rel_versions;     /* shapes built on this stream (tests and logs) */
    my_iconv_t *iconvs;

    /* progress (tests and logs) */
    uint64_t events;
    uint64_t commits;
    uint64_t heartbeats;
    uint64_t last_commit_num;  /* num of the last COMMIT/POSITION emitted */
    char last_commit_pos[1024];/* text of the last COMMIT/POSITION emitted */
    char resume_file[256];     /* file:offset just after the last complete group */
    uint64_t resume_offset;
    int have_commit_pos;
    int64_t last_event_ms;     /* monotonic time of the last event (heartbeats included) */
    int warned_xa;
    int warned_anon;
} my_stream_t;

void siphon_my__stream_init(my_stream_t *st);
void siphon_my__stream_destroy(my_stream_t *st);

/* Consume one event: the 19-byte header and the body, with the checksum when st->checksum
 * (it is stripped here). Records go to st->batch. The event bytes are copied when a record
 * needs them, so the caller may reuse its buffer at once. Returns 0, or SIPHON_EPROTO (a
 * malformed or unsupported event: the message names the event type, file:offset, table and
 * column, and what to change) / SIPHON_EINVAL (a server setting that makes the stream
 * unusable) / SIPHON_ENOMEM. A failed event adds no record. */
int siphon_my__stream_event(my_stream_t *st, const uint8_t *ev, size_t len, char *errbuf,
                            size_t errsize);

/* The connection is gone: forget the open group. When its BEGIN record was already added to
 * a batch (the pipeline will see it and the changes after it: a batch not yet taken by next()
 * is still delivered), remember its position and how many changes were added. The next
 * connection resumes at the group's start, and when the same group starts again its BEGIN and
 * those changes are passed over (same change numbering), so the pipeline sees one unbroken
 * transaction; if another group starts first, a RESET record before it abandons the cut one.
 * Adds no record; 0. */
int siphon_my__stream_disconnected(my_stream_t *st);

/* The current resume position as text (GTID state or file:offset) into buf; "" when there is
 * none yet. */
void siphon_my__stream_position(const my_stream_t *st, char *buf, size_t size);

/* Build (or find, when the same shape exists) the relation of db.table from a catalog
 * definition; used by describe(). *out is owned by the stream. 0 or an error. */
int siphon_my__stream_rel_from_def(my_stream_t *st, const char *db, const char *table,
                                   const my_tabledef_t *td, const uint8_t *types,
                                   my_rel_t **out, char *errbuf, size_t errsize);

/* ---- the source (my_source.c, my_catalog.c) ---- */

/* Parsed source.conninfo: "host=... port=... user=... password=... dbname=... socket=...". */
typedef struct my_conninfo {
    char *host;
    unsigned port;
    char *user;
    char *password; /* secret: never logged */
    char *dbname;
    char *socket;
    int connect_timeout_s;
    char *ssl_mode; /* disable | require | verify_ca | verify_full (default: libmariadb's) */
    char *ssl_ca;
} my_conninfo_t;

int siphon_my__conninfo_parse(my_conninfo_t *ci, const char *text, char *errbuf,
                              size_t errsize);
void siphon_my__conninfo_free(my_conninfo_t *ci);

/* What the reader thread is doing (for open() and logs). */
typedef enum my_rstate {
    MY_R_CONNECTING = 0, /* a connection attempt is under way */
    MY_R_STREAMING,      /* events arrive */
    MY_R_RETRYING,       /* an attempt failed; the next one comes after the backoff */
    MY_R_FAILED          /* a fatal error: next() returns it */
} my_rstate_t;

struct siphon_source {
    /* configuration (owned copies) */
    char *name;
    my_conninfo_t ci;
    char redacted[512];        /* source.conninfo with the password masked, for messages */
    uint32_t server_id;        /* ours, as a replica */
    int heartbeat_ms;
    int names_from_catalog;
    my_table_t *tables;
    int ntables;

    /* the server (my_catalog.c) */
    my_flavor_t flavor;
    char server_version[128];
    uint32_t server_server_id;
    int checksum;              /* binlog_checksum=CRC32 */
    int full_metadata;         /* binlog_row_metadata=FULL */
    int gtid;                  /* MariaDB, or MySQL with gtid_mode=ON */
    MYSQL *cat;                /* catalog connection; every use holds cat_mu */
    pthread_mutex_t cat_mu;

    /* where the reader starts (my_catalog.c: siphon_my__cat_start_position) */
    my_posmode_t mode;
    my_gtidset_t start_state;  /* GTID mode: the position to resume after */
    my_gtidset_t skip;         /* MySQL GTID resume: transactions to drop */
    char start_file[256];      /* file:offset start (file mode, MySQL, or an empty state) */
    uint64_t start_offset;

    /* the reader thread and what it shares with next(): all under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_data;    /* records arrived, or the reader's state changed */
    pthread_cond_t cv_space;   /* next() took a batch, or stop */
    pthread_t thr;
    int thr_started;
    int stop;
    my_stream_t st;            /* st.batch == fill */
    my_batch_t batches[2];
    my_batch_t *fill, *out;
    my_rstate_t rstate;
    int attempts;              /* connection attempts so far */
    int fatal_code;
    char fatal_msg[1024];
    int repl_fd;               /* the replication socket, for shutdown() at close; -1 */
    int backoff_ms;
    char acked[1024];          /* last position given to ack() */
    char *pin;                 /* <offsets.path>.mysql-start (my_source.c) */
    char *offsets_path;
    siphon_arena_t sample_mem; /* the rows of the last sample() (my_sample.c) */
    unsigned last_errno;       /* the server's error code of the reader's last failure */

    /* the initial snapshot (my_snapshot.c): read by next() before the stream, NULL when none
     * or once it has ended */
    struct my_snap *snap;
    int stop_after_snapshot;   /* snapshot: initial_only (no stream) */
};

/* my_catalog.c */
int siphon_my__connect(MYSQL **out, const siphon_source_t *src, int read_timeout_s,
                       char *errbuf, size_t errsize);
int siphon_my__err_fatal(unsigned err);
const char *siphon_my__err_hint(unsigned err);
int siphon_my__cat_connect(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_my__cat_check_server(siphon_source_t *src, char *errbuf, size_t errsize);
int siphon_my__cat_start_position(siphon_source_t *src, const char *resume, char *errbuf,
                                  size_t errsize);
int siphon_my__cat_tabledef(void *opaque, const char *db, const char *table, my_tabledef_t *td,
                            char *errbuf, size_t errsize);
int siphon_my__cat_describe(siphon_source_t *src, const char *db, const char *table,
                            const siphon_relation_t **rel, char *errbuf, size_t errsize);

/* my_sample.c: "SELECT <every column of mr> FROM `db`.`table`" into b, with FLOAT and BIT
 * selected through an expression whose text is exact; identifiers quoted with backquotes. */
void siphon_my__select_from(siphon_buf_t *b, const my_rel_t *mr, const char *db,
                            const char *table);
void siphon_my__quote_ident(siphon_buf_t *b, const char *s);
/* One column's text (text protocol, session in UTC and utf8mb4) -> the value my_value.c
 * decodes from a row image of the same column; bytes copied into a. 0, SIPHON_ENOMEM, or
 * SIPHON_EPROTO with why saying what did not parse. */
int siphon_my__text_value(siphon_arena_t *a, const my_col_t *c, const char *s, size_t n,
                          siphon_value_t *v, char *why, size_t whysize);

/* my_snapshot.c: the initial snapshot (docs/mysql.md#snapshots).
 *
 * siphon_my__snap_setup(): decide from the mode and the stored position whether to snapshot;
 * when so, open the snapshot connections and their consistent-snapshot transactions, and
 * return in *stream_from the position the stream must start from (malloc'd; NULL: keep the
 * stored one). `progress` is the stored progress after " snapshot " (or NULL), have_resume
 * whether a stored position exists. 0 or an error (nothing left behind). */
int siphon_my__snap_setup(siphon_source_t *src, const siphon_config_t *cfg, const char *stored,
                          const char *progress, char **stream_from, char *errbuf,
                          size_t errsize);
/* The next chunk into *batch (possibly empty after timeout_ms): 0; 1 when the snapshot has
 * ended (src->snap is gone, nothing in batch); or a fatal error. */
int siphon_my__snap_next(siphon_source_t *src, siphon_batch_t *batch, int timeout_ms,
                         char *errbuf, size_t errsize);
void siphon_my__snap_free(siphon_source_t *src);
/* Split a stored position "<pos>[ snapshot <progress>]": *pos gets the position (malloc'd,
 * NULL when text is empty), *progress points into text (NULL when none). 0 or ENOMEM. */
int siphon_my__snap_split(const char *text, char **pos, const char **progress);
/* Percent-encoding of the progress text (names and key values may hold spaces, commas...):
 * escape appends s to b; unescape decodes s in place, -1 when malformed. */
int siphon_my__snap_escape(siphon_buf_t *b, const char *s, size_t n);
long siphon_my__snap_unescape(char *s);

/* my_sample.c: the catalog-only source (siphon validate, siphon preview) and its rows. */
int siphon_my__open_catalog(siphon_source_t **out, const siphon_config_t *cfg, char *errbuf,
                            size_t errsize);
int siphon_my__sample(siphon_source_t *src, const char *schema, const char *table, int limit,
                      const siphon_relation_t **rel, const siphon_row_t **rows, int *nrows,
                      char *errbuf, size_t errsize);

#endif
