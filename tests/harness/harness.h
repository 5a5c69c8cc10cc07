/*
 * harness.h - the integration-test harness: throwaway servers, the siphon binary as a child
 * process, a Kafka consumer and an event decoder, shared by tests/it/ and bench/.
 *
 * Everything a test starts here is torn down by the test, and also by the harness itself when
 * the process ends in any other way (a failed assertion that exits, a crash, SIGINT/SIGTERM):
 * an atexit handler and signal handlers stop every PostgreSQL it started, SIGKILL every child
 * process, and remove every temporary directory. A dead test run that could not clean up (a
 * SIGKILL from ctest's timeout) leaves /tmp/siphon-it-* directories with an owner.pid file; the
 * next harness use removes those whose owner is gone. Set TH_KEEP=1 to keep the directories
 * for a post-mortem.
 *
 * Pieces:
 *  - th_pg_*: a PostgreSQL 15 cluster initdb'ed into a temp dir (run as the `postgres` user when
 *    the test runs as root), on a free TCP port, wal_level=logical, fsync=off; SQL through libpq.
 *  - th_kafka_*: librdkafka's mock cluster inside the test process (3 brokers by default),
 *    brokers set down/up, and th_consumer_* reading a topic from the beginning (all partitions).
 *  - th_proc_* / th_run: child processes with stdout+stderr captured to a file; th_siphon_start
 *    runs `$SIPHON_BIN run --config FILE`.
 *  - th_siphon_conf_write: a siphon.yaml for a conninfo, bootstraps, prefix, offsets path...
 *  - th_decoder_*: Kafka messages decoded back into JSON (jansson) with Siphon's own mapping and
 *    Avro modules; the stream is recognised by the fingerprint in the single-object header.
 *  - th_env_*: all of the above wired together for the sample legacy table (public.oehdr).
 *
 * Error convention (a test harness, not product code): a function that can fail prints
 * "harness: could not <verb> <object>: <reason>" to stderr and returns -1 (or NULL). Tests
 * assert on the return value. Functions are not thread-safe unless they say so; th_pg_connect()
 * gives a thread its own connection.
 */
#ifndef SIPHON_TEST_HARNESS_H
#define SIPHON_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <libpq-fe.h>

/* ---- general ---- */

/* Monotonic milliseconds. */
int64_t th_now_ms(void);
void th_sleep_ms(int ms);

/* A progress line on stdout, "[  1.234s] message", flushed (tests say what they check). */
void th_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error line on stderr, "harness: message"; always returns -1. */
int th_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $SIPHON_SOURCE_DIR (set by ctest), else the source dir this harness was built from. */
const char *th_source_dir(void);
/* $SIPHON_BIN (set by ctest), else NULL with an error printed. */
const char *th_siphon_bin(void);

/* A seed for randomized tests: $TH_SEED when set, else derived from the time. Printed. */
unsigned th_seed(void);

/* Read a whole file (NUL-terminated; *len without the NUL when len is not NULL). Caller frees
 * with free(). NULL (error printed unless quiet) when unreadable. */
char *th_read_file(const char *path, size_t *len, int quiet);
/* Write text to a file (created or truncated). 0 or -1. */
int th_write_file(const char *path, const char *text);
/* 1 when the file holds the substring, 0 otherwise (also when unreadable). */
int th_file_contains(const char *path, const char *needle);

/* Create /tmp/siphon-it-XXXXXX (mode 0700), registered for removal at exit. Caller frees the
 * returned path with free(); th_tempdir_remove() removes it earlier. NULL on error. */
char *th_tempdir(void);
void th_tempdir_remove(const char *dir);

/* "%s/%s" into a malloc'd string. Never NULL (aborts on out-of-memory). */
char *th_path(const char *dir, const char *name);
/* printf into a malloc'd string. Never NULL (aborts on out-of-memory). */
char *th_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 while a process exists and is not a zombie (for processes that are not our children). */
int th_pid_alive(pid_t pid);

/* LSN text "16/B374D848" <-> number. Parse returns 0 or -1. */
int th_lsn_parse(const char *text, uint64_t *out);
void th_lsn_format(uint64_t lsn, char *buf, size_t size);

/* ---- child processes ---- */

typedef struct th_proc th_proc_t;

/* Start argv[0] (a path, or a name looked up in PATH) with stdin from /dev/null and stdout and
 * stderr appended to log_path (created). The child gets SIGKILL if the test process dies, and
 * inherits no file descriptor beyond 0-2. Caller frees with th_proc_destroy(). */
th_proc_t *th_proc_spawn(char *const argv[], const char *log_path);
/* `$SIPHON_BIN run --config config_path`, logging to log_path. */
th_proc_t *th_siphon_start(const char *config_path, const char *log_path);

pid_t th_proc_pid(const th_proc_t *p);
const char *th_proc_log_path(const th_proc_t *p);
/* Send a signal (no-op once the child was reaped). 0 or -1. */
int th_proc_signal(th_proc_t *p, int sig);
/* Wait up to timeout_ms for the child to exit. 1 when it has exited (now or before), 0 on
 * timeout. Never blocks longer than the timeout. */
int th_proc_wait(th_proc_t *p, int timeout_ms);
/* 1 while the child runs (reaps it when it has exited). */
int th_proc_running(th_proc_t *p);
/* After exit: the exit code, or 128+signal when a signal killed it; -1 while it runs. */
int th_proc_exit_code(const th_proc_t *p);
/* Wait up to timeout_ms until the child's log contains needle. 1 found, 0 not (timeout, or the
 * child exited without writing it). */
int th_proc_wait_log(th_proc_t *p, const char *needle, int timeout_ms);
/* Print the log (its last max_lines lines; 0 = all) to stderr between markers. */
void th_proc_dump_log(const th_proc_t *p, int max_lines);
/* SIGKILL the child when it still runs, reap it, free. Accepts NULL. */
void th_proc_destroy(th_proc_t *p);

/* Run a command to completion with stdin from /dev/null. *out and *err (either may be NULL)
 * receive its stdout and stderr (caller frees with free()), *exit_code its exit code (128+sig
 * when killed). A child running longer than timeout_ms is killed and -1 returned. extra_env
 * (NULL-terminated "K=V" list, or NULL) is added to the environment. */
int th_run(char *const argv[], char *const extra_env[], int timeout_ms, int *exit_code,
           char **out, char **err);

/* ---- PostgreSQL ---- */

typedef struct th_pg th_pg_t;

/* initdb a fresh cluster into its own temp dir and start it. NULL on error (the server log is
 * printed). Caller frees with th_pg_destroy(). */
th_pg_t *th_pg_start(void);
/* "host=127.0.0.1 port=N user=postgres dbname=postgres" (a superuser; trust auth). Borrowed. */
const char *th_pg_conninfo(const th_pg_t *pg);
int th_pg_port(const th_pg_t *pg);
/* The cluster's temp dir (data/ and server.log are inside). Borrowed. */
const char *th_pg_dir(const th_pg_t *pg);
/* The postmaster's pid while the server runs, else 0. */
pid_t th_pg_postmaster_pid(const th_pg_t *pg);
/* Stop (fast), start, restart (fast) the server. 0 or -1. Connections made before are dead. */
int th_pg_stop(th_pg_t *pg);
int th_pg_start_again(th_pg_t *pg);
int th_pg_restart(th_pg_t *pg);
/* A new connection (any thread). NULL on error. Caller frees with PQfinish(). */
PGconn *th_pg_connect(const th_pg_t *pg);
/* Run SQL (one or more statements) on the harness's own connection, reconnecting when it is
 * broken. 0 or -1 (error printed). Not thread-safe. */
int th_pg_exec(th_pg_t *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run one query; the result (TUPLES_OK or COMMAND_OK) or NULL. Caller frees with PQclear(). */
PGresult *th_pg_query(th_pg_t *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first column of the first row as a malloc'd string (caller frees). NULL on error, when
 * there is no row, or for an SQL NULL; *found (when not NULL) says whether a row came back. */
char *th_pg_value(th_pg_t *pg, int *found, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Run a file of SQL (e.g. the sample DDL). 0 or -1. */
int th_pg_exec_file(th_pg_t *pg, const char *path);
/* The sample legacy ERP (examples/legacy-erp/): create the SQL_ASCII database "erp" on pg, as
 * old ERPs had it, and load erp.sql and generate.sql into it (no rows generated yet). Returns a
 * connection to it (caller frees with PQfinish()) and, when conninfo is not NULL, its
 * conninfo in *conninfo (caller frees). NULL on error (printed). */
PGconn *th_erp_create(th_pg_t *pg, char **conninfo);
/* pg_terminate_backend() every walsender. Returns how many were terminated, or -1. */
int th_pg_terminate_walsenders(th_pg_t *pg);
/* Number of active walsenders (pg_stat_replication rows), or -1. */
int th_pg_walsenders(th_pg_t *pg);
/* The pid of the walsender in state 'streaming' (the lowest if several), 0 when none, -1 on
 * error. */
int th_pg_streaming_walsender(th_pg_t *pg);
/* The slot's confirmed_flush_lsn (0 when the slot has none yet), or -1 on error / no slot. */
int th_pg_slot_confirmed(th_pg_t *pg, const char *slot, uint64_t *lsn);
/* pg_current_wal_lsn(), or -1. */
int th_pg_current_lsn(th_pg_t *pg, uint64_t *lsn);
/* Print the server log (last max_lines lines; 0 = all) to stderr. */
void th_pg_dump_log(const th_pg_t *pg, int max_lines);
/* Stop the server (immediate), remove its directory, free. Accepts NULL. */
void th_pg_destroy(th_pg_t *pg);

/* ---- Kafka (mock cluster) ---- */

typedef struct th_kafka th_kafka_t;

/* A mock cluster of nbrokers brokers (ids 1..n) in this process. NULL on error. */
th_kafka_t *th_kafka_start(int nbrokers);
/* "127.0.0.1:port,..." Borrowed. */
const char *th_kafka_bootstraps(const th_kafka_t *k);
/* Create a topic with this many partitions (replication factor min(3, brokers)). 0 or -1. */
/* Partitions of the env's change topic. librdkafka's mock cluster keeps at most 5 MB and
 * 100,000 messages per partition and silently drops the oldest beyond that, so a topic that
 * a test fills faster than its consumer reads needs enough partitions to hold everything. */
#define TH_TOPIC_PARTITIONS 16
int th_kafka_create_topic(th_kafka_t *k, const char *topic, int partitions);
/* Broker down/up; broker_id -1 means all. 0 or -1. */
int th_kafka_broker_down(th_kafka_t *k, int broker_id);
int th_kafka_broker_up(th_kafka_t *k, int broker_id);
void th_kafka_destroy(th_kafka_t *k);

typedef struct th_header {
    char *name;
    void *value; /* NULL for a null header value */
    size_t len;
} th_header_t;

/* A consumed message. key, value and header values are copies followed by a NUL byte that
 * their lengths do not count, so text can be read as a C string. */
typedef struct th_msg {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    void *key;   /* NULL when the message has no key */
    size_t klen;
    void *value; /* NULL for a tombstone */
    size_t vlen;
    th_header_t *hdrs;
    int nhdrs;
} th_msg_t;

typedef struct th_msgs {
    th_msg_t *v;
    int n;
    int cap;
} th_msgs_t;

/* Frees every message and resets the list (it may be reused). */
void th_msgs_free(th_msgs_t *msgs);
/* The first header of that name, or NULL. Borrowed from the message. */
const th_header_t *th_msg_header(const th_msg_t *m, const char *name);

typedef struct th_consumer th_consumer_t;

/* A consumer of every partition of topic, from the beginning. Waits up to 10 s for the topic to
 * exist. NULL on error. Caller frees with th_consumer_destroy(). */
th_consumer_t *th_consumer_new(th_kafka_t *k, const char *topic);
/* Append messages to out until out->n >= until_n or timeout_ms passes. Returns out->n, or -1 on
 * a consumer error. until_n <= 0 reads for the whole timeout (to prove nothing more comes). */
int th_consumer_poll(th_consumer_t *c, th_msgs_t *out, int until_n, int timeout_ms);
void th_consumer_destroy(th_consumer_t *c);

/* ---- siphon.yaml ---- */

typedef struct th_siphon_conf {
    const char *name;          /* connector name; default "it" */
    const char *conninfo;      /* required */
    const char *slot;          /* NULL: leave to the default */
    const char *publication;   /* NULL: leave to the default */
    const char *bootstraps;    /* required for the kafka sink */
    const char *topic_prefix;  /* default "erp" */
    const char *offsets_path;  /* required */
    const char *mappings_dir;  /* default <source>/mappings */
    const char *schemas_dir;   /* default <source>/schemas */
    int status_interval_ms;    /* 0: leave to the default */
    const char *extra_source;  /* more keys of `source:`, YAML "key: value" lines, or NULL */
    int flush_interval_ms;     /* 0: leave to the default */
    const char *log_level;     /* default "info" */
    const char *extra_props;   /* more librdkafka properties, YAML "key: value" lines, or NULL */
    const char *extra_yaml;    /* appended verbatim at top level, or NULL */
} th_siphon_conf_t;

/* Write a siphon.yaml. 0 or -1. */
int th_siphon_conf_write(const char *path, const th_siphon_conf_t *conf);

/* Parse an offsets file written by siphon: the first string value that parses as an LSN, or,
 * if none, the first unsigned number. 0 with *lsn set, -1 when missing/unparsable (quietly). */
int th_offsets_lsn(const char *path, uint64_t *lsn);

/* ---- decoding events ---- */

typedef struct th_decoder th_decoder_t;

/* Load the mappings and schemas (NULL: the repository's mappings/ and schemas/). */
th_decoder_t *th_decoder_new(const char *mappings_dir, const char *schemas_dir);
void th_decoder_destroy(th_decoder_t *d);

typedef struct th_event {
    const th_msg_t *msg;  /* borrowed */
    const char *entity;   /* borrowed from the decoder */
    json_t *key;          /* owned: the decoded key record, NULL for a message without a
                             key (a truncate event) */
    json_t *value;        /* owned: the decoded envelope, NULL for a tombstone */
    char op;              /* envelope op ('c','u','d','r','t'...), 0 for a tombstone */
    const char *event_id; /* borrowed from value, NULL for a tombstone */
} th_event_t;

/* Decode one message: key and value (either may be absent, not both) must be single-object
 * encoded (C3 01 + fingerprint) with fingerprints of the same mapped stream, and the
 * siphon.schema_fingerprint header must match the value's (when the message has a value).
 * 0 or -1 with the reason printed. */
int th_decode(th_decoder_t *d, const th_msg_t *m, th_event_t *ev);
void th_event_clear(th_event_t *ev);

/* The entity field of `entity` that the mapping fills from source column `column` (read from
 * the mapping's YAML `fields`), or NULL when no field reads that column. Borrowed from d. */
const char *th_decoder_field(th_decoder_t *d, const char *entity, const char *column);

/* Look up a dotted path ("after.order_id", "source.table") in a decoded event (unions are
 * rendered as their branch's value, so a path goes straight through them). NULL when a step is
 * missing or not an object. Borrowed. */
json_t *th_json_path(json_t *root, const char *path);
/* The value at path as text: strings as they are, numbers/booleans printed, null -> "null",
 * missing -> "<missing>". Writes into buf and returns it. */
const char *th_json_text(json_t *root, const char *path, char *buf, size_t size);

/* ---- a steady writer of sample-table transactions ---- */

/* A thread committing transactions into public.oehdr on its own connection. Row k (0-based) is
 * hdcomp '01', hdordn 'W%05d' (k+1); its hdamt is its version v: the first transaction touching
 * it inserts it with v = 1, each later one sets v + 1. A transaction touches 1..max_rows distinct
 * rows (by separate statements, or by one multi-row UPDATE). Because hdamt holds v, the database
 * itself says which versions committed: when a connection breaks mid-commit (server restart) the
 * writer reconnects and re-reads the versions, so its record of committed versions is exact. */
typedef struct th_writer_opts {
    int nkeys;       /* rows in play (default 20) */
    int max_rows;    /* rows per transaction, at most (default 4) */
    int pause_ms;    /* sleep between transactions (default 5) */
    unsigned seed;   /* for the row choice */
} th_writer_opts_t;

typedef struct th_writer th_writer_t;

/* Start the thread. NULL on error. Caller stops it with th_writer_stop() and frees it with
 * th_writer_destroy(). */
th_writer_t *th_writer_start(const th_pg_t *pg, const th_writer_opts_t *opts);
/* Block new transactions and wait for the one in progress to finish (for a server restart), or
 * let them go on again. */
void th_writer_pause(th_writer_t *w);
void th_writer_resume(th_writer_t *w);
/* Transactions committed so far (any thread). */
long th_writer_txns(const th_writer_t *w);
/* Stop and join the thread. 0, or -1 when it met an error it could not get past (printed). */
int th_writer_stop(th_writer_t *w);
int th_writer_nkeys(const th_writer_t *w);
/* After stop: the last committed version of row k (0 when never inserted). */
int th_writer_version(const th_writer_t *w, int k);
void th_writer_destroy(th_writer_t *w);

/* ---- checking what arrived against what the writer committed ---- */

/* Collects the events of the writer's rows as they arrive and checks, per row, the rules of
 * at-least-once delivery with order:
 *  - a version arriving for the first time is exactly one more than the highest seen so far
 *    (nothing skipped, nothing reordered: first-arrival order follows commit order);
 *  - v = 1 is a create ('c'), later versions updates ('u');
 *  - a repeated version is a re-delivery: same event_id as its first copy, and produced after
 *    a restart that came after the first copy (restart times given by th_collector_restart());
 *  - different versions never share an event_id.
 * Rows not written by th_writer (other keys) are counted and otherwise ignored. */
typedef struct th_collector th_collector_t;

/* amount_field: the entity field mapped from hdamt. */
th_collector_t *th_collector_new(th_decoder_t *d, const char *amount_field);
/* Record that siphon is being restarted (call it just before killing/stopping it) or its
 * replication connection is being cut: duplicates produced after this instant are legitimate
 * re-deliveries of what came before. */
void th_collector_restart(th_collector_t *c);
/* Decode and check msgs->v[from..n-1]. 0, or -1 with the first violation in why. Keeps going
 * after a violation (later calls report the first one again). */
int th_collector_add(th_collector_t *c, const th_msgs_t *msgs, int from, char *why, size_t size);
/* 1 when every version the writer committed has arrived (call after th_writer_stop()). */
int th_collector_complete(const th_collector_t *c, const th_writer_t *w);
/* Describe what is missing (first few rows), for a failure message. */
void th_collector_missing(const th_collector_t *c, const th_writer_t *w, char *buf, size_t size);
/* Counters. */
typedef struct th_collector_stats {
    long messages;    /* messages added */
    long events;      /* writer-row events (first copies) */
    long duplicates;  /* re-delivered copies */
    long foreign;     /* messages for other rows */
} th_collector_stats_t;
th_collector_stats_t th_collector_stats(const th_collector_t *c);
void th_collector_destroy(th_collector_t *c);

/* Poll the consumer into msgs and feed the collector until the writer's versions have all
 * arrived or timeout_ms passes. 0 when complete; -1 on a violation, on timeout, or as soon as
 * `watch` (a siphon run, or NULL) has exited (printed). */
int th_collect_until_complete(th_consumer_t *cons, th_msgs_t *msgs, th_collector_t *c,
                              const th_writer_t *w, th_proc_t *watch, int timeout_ms);

/* ---- an environment for the sample table ---- */

typedef struct th_env {
    char *dir;            /* temp dir for configs, offsets, logs */
    th_pg_t *pg;
    th_kafka_t *kafka;
    th_decoder_t *dec;
    char *topic;          /* "<prefix>.sales_order.v1" */
    char *config_path;    /* <dir>/siphon.yaml */
    char *offsets_path;   /* <dir>/offsets.json */
    th_siphon_conf_t conf;/* what was written (strings borrowed from this env) */
    th_proc_t *siphon;    /* the current run, or NULL */
    th_proc_t **runs;     /* every run (for logs), owned */
    int nruns;
    int dumped;           /* logs already printed */
} th_env_t;

/* Start PostgreSQL and the mock cluster, create public.oehdr from examples/legacy-erp/oehdr.sql,
 * create the topic (4 partitions), load the decoder and write siphon.yaml (slot and
 * publication "siphon_it"). NULL on error. Caller frees with th_env_destroy(). */
th_env_t *th_env_new(void);
/* Rewrite siphon.yaml from env->conf (after changing it). 0 or -1. */
int th_env_write_conf(th_env_t *env);
/* Start a siphon run (log <dir>/siphon-<n>.log). 0 or -1. */
int th_env_siphon_start(th_env_t *env);
/* Send sig to the current run and wait up to timeout_ms for it to exit; returns its exit code,
 * or -1 when it did not exit in time (it is then SIGKILLed). The run is kept for its log. */
int th_env_siphon_stop(th_env_t *env, int sig, int timeout_ms);
/* Wait until a walsender holding the slot reports state 'streaming' (siphon is ready), up to
 * timeout_ms. 0/-1 (also as soon as the current run exits). */
int th_env_wait_streaming(th_env_t *env, int timeout_ms);
/* Print every run's log (tail) and the server log to stderr, once. */
void th_env_dump_logs(th_env_t *env);
/* Stop everything and remove every file. Accepts NULL. */
void th_env_destroy(th_env_t *env);

/* ---- a test fixture: what one test holds, freed in one call from its teardown ---- */

typedef struct th_fx {
    th_env_t *env;
    th_consumer_t *cons;
    th_writer_t *w;
    th_collector_t *col;
    th_msgs_t msgs;
} th_fx_t;

/* A fixture with a fresh environment (th_env_new()). NULL on error. */
th_fx_t *th_fx_new(void);
/* Stop the writer, then free everything. Accepts NULL. */
void th_fx_destroy(th_fx_t *fx);
/* Poll the consumer for up to ms and feed the collector (when there is one). 0, or -1 with the
 * first violation printed, or when the current siphon run (env->siphon) has exited. */
int th_fx_pump(th_fx_t *fx, int ms);
/* Poll until msgs->n >= until_n. Returns msgs->n; stops early (with a message) when the
 * current siphon run has exited. */
int th_env_consume(th_env_t *env, th_consumer_t *cons, th_msgs_t *msgs, int until_n,
                   int timeout_ms);

/* ---- the file sink (th_file.c) ---- */

/* Rewrite env->config_path from env->conf with `sink: {type: file, path: out_dir}` instead of
 * Kafka; roll_bytes/roll_ms <= 0 leave the defaults; extra_props (one "key: value" line, or
 * NULL) goes under sink.properties. 0 or -1. */
int th_file_conf_write(const th_env_t *env, const char *out_dir, long long roll_bytes,
                       int roll_ms, const char *extra_props);
/* The paths of the files in dir whose names end with suffix, sorted by name (NULL and *n 0 when
 * none). Caller frees with th_file_list_free(). */
char **th_file_list(const char *dir, const char *suffix, int *n);
void th_file_list_free(char **v, int n);
/* Read a container file written by the file sink with avro-c's reader and append one message
 * per record to out: key and value single-object encoded with fingerprints computed from the
 * file's writer schema, header siphon.schema_fingerprint, partition 0, offset = index in out,
 * timestamp = the envelope's ts_us in ms (for th_collector). Returns the records read, or -1
 * (printed) when avro-c cannot read the file or a record is not of the file sink's shape. */
long th_file_read(const char *path, th_msgs_t *out);

/* ---- MySQL / MariaDB (th_mysql.c) ---- */

typedef struct th_my th_my_t;

typedef struct th_my_opts {
    const char *row_metadata; /* binlog_row_metadata: NULL means FULL */
    const char *extra_args;   /* more mariadbd options, space-separated, or NULL */
} th_my_opts_t;

/* A throwaway MariaDB 10.11: mariadb-install-db into its own temp dir, the binary log on
 * (ROW format, FULL row image and metadata), a free TCP port on 127.0.0.1 and a socket in the
 * temp dir, so tests can run side by side. The user is root without a password. NULL on error
 * (the server log is printed). Caller frees with th_my_destroy(). opts may be NULL. */
th_my_t *th_my_start(const th_my_opts_t *opts);
/* "host=127.0.0.1 port=N user=root" (source.conninfo for type mysql). Borrowed. */
const char *th_my_conninfo(const th_my_t *my);
int th_my_port(const th_my_t *my);
const char *th_my_dir(const th_my_t *my);
const char *th_my_socket(const th_my_t *my);
/* Run SQL (several statements allowed) on the harness's connection (session time zone UTC,
 * utf8mb4). 0 or -1 (error printed). Not thread-safe. */
int th_my_exec(th_my_t *my, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first row of a query: *vals[i] is column i as a malloc'd NUL-terminated copy (NULL for
 * SQL NULL), *lens (when not NULL) the byte lengths. Returns 1 with a row, 0 without, -1 on
 * error. Free with th_my_row_free(). */
int th_my_row(th_my_t *my, char ***vals, unsigned long **lens, int *ncols, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
void th_my_row_free(char **vals, unsigned long *lens, int ncols);
/* The first column of the first row (caller frees), NULL for none / SQL NULL / error. */
char *th_my_value(th_my_t *my, int *found, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Binlog dump threads (replicas connected), or -1; KILL them all (how many, or -1). */
int th_my_dump_threads(th_my_t *my);
int th_my_kill_dump_threads(th_my_t *my);
void th_my_dump_log(const th_my_t *my, int max_lines);
/* Send a signal to mariadbd (SIGSTOP/SIGCONT freeze and thaw it: a silent dead peer). */
int th_my_signal(th_my_t *my, int sig);
/* Stop the server, remove its directory, free. Accepts NULL. */
void th_my_destroy(th_my_t *my);

/* The sample order table public.oehdr in MariaDB form (database `public`, so the repository's
 * mapping reads it unchanged). Static text of two statements. */
const char *th_my_oehdr_ddl(void);

typedef struct th_my_conf {
    const char *name;          /* default "it" */
    const char *conninfo;      /* required */
    unsigned server_id;        /* default 4201 */
    int heartbeat_ms;          /* 0: default */
    const char *bootstraps;
    const char *topic_prefix;  /* default "it" */
    const char *offsets_path;  /* required */
    const char *mappings_dir;  /* default <source>/mappings */
    const char *schemas_dir;   /* default <source>/schemas */
    int flush_interval_ms;     /* 0: default */
    const char *log_level;     /* default "info" */
    const char *extra_source;  /* more `source:` lines, indented by the caller, or NULL */
    const char *snapshot;      /* source.snapshot; NULL writes "never" (the tests written
                                  before snapshots existed stream only) */
    int snapshot_connections;  /* 0: leave to the default */
    int snapshot_chunk_rows;   /* 0: leave to the default */
} th_my_conf_t;

/* Write a siphon.yaml with a mysql source and the Kafka sink. 0 or -1. */
int th_my_conf_write(const char *path, const th_my_conf_t *conf);

/* th_writer's twin for MariaDB: commits versioned rows into public.oehdr (same rows, versions
 * in hdamt, same options), on its own connection. */
typedef struct th_my_writer th_my_writer_t;
th_my_writer_t *th_my_writer_start(th_my_t *my, const th_writer_opts_t *opts);
void th_my_writer_pause(th_my_writer_t *w);
void th_my_writer_resume(th_my_writer_t *w);
long th_my_writer_txns(th_my_writer_t *w);
int th_my_writer_stop(th_my_writer_t *w);
int th_my_writer_nkeys(const th_my_writer_t *w);
int th_my_writer_version(const th_my_writer_t *w, int k);
void th_my_writer_destroy(th_my_writer_t *w);

/* A th_env_t for a MySQL source (so the th_env_* and IT_CHECK helpers work): the mock
 * cluster (3 brokers), topic "<prefix>.sales_order.v1" (4 partitions), a decoder, and
 * siphon.yaml written from conf (conninfo, bootstraps and offsets_path filled in when NULL) at
 * env->config_path. Without conf->mappings_dir the env gets its own mapping and schema of
 * entity sales_order v1 (one field per column of th_my_oehdr_ddl()'s table: company,
 * order_number, customer_number, order_date, total_amount decimal(12,2), status, note,
 * updated_at), independent of the repository's sample ERP. env->pg stays NULL; the server stays the caller's. NULL on
 * error. Free with th_env_destroy(). */
th_env_t *th_my_env_new(th_my_t *my, const th_my_conf_t *conf);
/* Wait until the current run logs that it streams the binlog and the server shows its dump
 * thread. 0/-1 (also as soon as the run exits). */
int th_my_env_wait_streaming(th_env_t *env, th_my_t *my, int timeout_ms);

/* ==== ODBC polling connector (th_odbc.c) ================================================
 * Everything below, to the end of this block, is the ODBC tests' harness (tests/it/020x and
 * bench/odbc_poll.c). */

/* Point unixODBC at the process's own files: the first call makes a temp dir (removed at exit)
 * with odbcinst.ini naming the three Debian drivers "PostgreSQL" (psqlODBC), "MariaDB"
 * (MariaDB Connector/ODBC) and "SQLite3" (sqliteodbc) and an empty odbc.ini, and sets
 * ODBCSYSINI and ODBCINI (children, siphon included, inherit them); later calls do nothing
 * (unixODBC reads ODBCSYSINI once per process). 0/-1. th_odbc_env_dir(): that dir (NULL
 * before). */
int th_odbc_env(void);
const char *th_odbc_env_dir(void);
/* Connection strings for the throwaway databases. Caller frees with free(). */
char *th_odbc_pg_connstr(const th_pg_t *pg);                 /* BoolsAsChar=0 */
char *th_odbc_my_connstr(const th_my_t *my, const char *db); /* CHARSET=utf8mb4 */
char *th_odbc_sqlite_connstr(const char *path);

/* The test's own ODBC connection (autocommit unless turned off). NULL on error (printed). */
typedef struct th_odbc th_odbc_t;
th_odbc_t *th_odbc_connect(const char *connstr);
/* Run SQL (one statement). 0 or -1 (printed). */
int th_odbc_exec(th_odbc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first column of the first row as text (caller frees); NULL on error, no row or NULL. */
char *th_odbc_value(th_odbc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int th_odbc_autocommit(th_odbc_t *c, int on);
int th_odbc_commit(th_odbc_t *c);
void th_odbc_close(th_odbc_t *c);

/* A run with an ODBC source and the Kafka sink (strings borrowed). */
#define TH_ODBC_MAX_TABLES 8
typedef struct th_odbc_table {
    const char *table;               /* "public.oehdr" */
    const char *mode;                /* incrementing | timestamp | timestamp+incrementing | snapshot */
    const char *timestamp_column;
    const char *incrementing_column;
    const char *key_columns;         /* "a, b" or NULL: the primary key */
} th_odbc_table_t;

typedef struct th_odbc_conf {
    const char *name;                /* default "it" */
    const char *dsn;                 /* required */
    const char *bootstraps;          /* required */
    const char *topic_prefix;        /* default "it" */
    const char *offsets_path;        /* required */
    const char *state_dir;           /* NULL: beside the offsets file */
    const char *mappings_dir;        /* default <source>/mappings */
    const char *schemas_dir;         /* default <source>/schemas */
    int poll_interval_ms;            /* 0: 100 */
    int max_rows_per_poll;           /* 0: 10000 */
    int safety_lag_ms;               /* as given (0 is no lag) */
    int reconcile_interval_s;        /* as given (0 is off) */
    int reconcile_chunk;             /* 0: 10000 */
    int flush_interval_ms;           /* 0: 200 */
    th_odbc_table_t tables[TH_ODBC_MAX_TABLES];
    int ntables;
} th_odbc_conf_t;

/* The run as a siphon.yaml in the layout of docs/odbc.md (log level info, debug with
 * TH_DEBUG=1). 0 or -1. */
int th_odbc_yaml_write(const char *path, const th_odbc_conf_t *c);

/* For the benchmark: the config struct the loader builds from that file (caller frees with
 * th_odbc_config_free(); never NULL), and siphon_pipeline_run() on a thread of this process
 * (TH_DEBUG=1 logs at debug level; NULL on error). th_odbc_run_stop() asks it to stop, joins it
 * and returns the pipeline's result (err gets its message). */
struct siphon_config *th_odbc_config(const th_odbc_conf_t *c);
void th_odbc_config_free(struct siphon_config *cfg);
typedef struct th_odbc_run th_odbc_run_t;
th_odbc_run_t *th_odbc_run_start(const th_odbc_conf_t *c);
int th_odbc_run_alive(const th_odbc_run_t *r);
int th_odbc_run_stop(th_odbc_run_t *r, char *err, size_t size);

/* Consumed messages, decoded in arrival order (ev[i] decodes msgs.v[i]; ev[i].msg is NULL:
 * the message array moves as it grows). */
typedef struct th_odbc_events {
    th_msgs_t msgs;
    th_event_t *ev;
    int n, cap;
} th_odbc_events_t;
/* Poll until evs->n >= until_n (until_n <= 0: for the whole timeout). evs->n, or -1 when a
 * message does not decode (printed). */
int th_odbc_events_poll(th_consumer_t *c, th_decoder_t *d, th_odbc_events_t *evs, int until_n,
                        int timeout_ms);
void th_odbc_events_free(th_odbc_events_t *evs);

/* The tests' own order entity, independent of the repository's sample mappings: writes
 * dir/mappings/odbc_order.yaml (table public.odbc_ord -> entity odbc_order v1: key company,
 * order_number; columns hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, hdnote, hdupdt; the
 * char columns trimmed, so the three databases' CHAR padding does not matter) and
 * dir/schemas/odbc_order.v1.avsc. *mdir and *sdir get the folders (caller frees). 0 or -1. */
int th_odbc_order_files(const char *dir, char **mdir, char **sdir);

/* A column of a table the tests map one to one, and the Avro type of its field (a JSON type,
 * e.g. "\"long\"" or "{\"type\": \"int\", \"logicalType\": \"date\"}"). */
typedef struct th_odbc_col {
    const char *column;
    const char *avro;
} th_odbc_col_t;
/* The Avro types of th_odbc_col_t with a logical type. */
#define TH_AVRO_DATE "{\"type\": \"int\", \"logicalType\": \"date\"}"
#define TH_AVRO_TIME "{\"type\": \"long\", \"logicalType\": \"time-micros\"}"
#define TH_AVRO_TS "{\"type\": \"long\", \"logicalType\": \"timestamp-micros\"}"
#define TH_AVRO_UUID "{\"type\": \"string\", \"logicalType\": \"uuid\"}"
#define TH_AVRO_DECIMAL(p, s)                                                                  \
    "{\"type\": \"bytes\", \"logicalType\": \"decimal\", \"precision\": " #p ", \"scale\": " #s "}"
/* The columns every driver's types table starts with, and their fields' types: id bigint key,
 * b boolean, i16 smallint, i64 bigint, f64 double, amt decimal(12,2), txt text (long), vc
 * varchar(20), d date, tm time, ts timestamp, bin binary, j json. */
#define TH_ODBC_TYPE_COLS                                                                     \
    {"id", "\"long\""}, {"b", "\"boolean\""}, {"i16", "\"int\""}, {"i64", "\"long\""},         \
        {"f64", "\"double\""}, {"amt", TH_AVRO_DECIMAL(12, 2)}, {"txt", "\"string\""},          \
        {"vc", "\"string\""}, {"d", TH_AVRO_DATE}, {"tm", TH_AVRO_TIME}, {"ts", TH_AVRO_TS},      \
        {"bin", "\"bytes\""}, {"j", "\"string\""}

/* A table mapped one to one: entity <entity> v1, one field per column (named after it, nullable
 * but for the key), read from public.<the table's bare name>, on topic it.<entity>.v1 (one
 * partition), polled in the given mode. */
typedef struct th_odbc_entity {
    const char *entity;              /* "odbc_types" */
    const char *table;               /* as source.tables names it: "public.it_ty" or "it_ty" */
    const char *mode;
    const char *timestamp_column;    /* or NULL */
    const char *incrementing_column; /* or NULL */
    const char *key;                 /* the key columns, "id" or "co, no" */
    const th_odbc_col_t *cols;
    int ncols;
} th_odbc_entity_t;
/* Write mdir/<entity>.yaml and sdir/<entity>.v1.avsc. 0 or -1. */
int th_odbc_entity_files(const char *mdir, const char *sdir, const th_odbc_entity_t *x);

/* ---- the shared fixture of the ODBC integration tests: siphon itself ---- */

#define TH_ODBC_MAX_RUNS 8
#define TH_ODBC_MAX_ENTITIES 4
typedef struct th_odbc_fx {
    th_odbc_conf_t conf;     /* the run's settings (defaults below); change before starting */
    char *dir;               /* temp dir: siphon.yaml, offsets.json, key sets, run logs */
    char *yaml, *offsets, *mdir, *sdir, *connstr;
    th_kafka_t *kafka;       /* one broker; it.odbc_order.v1 (4 partitions) */
    th_decoder_t *dec;
    th_consumer_t *cons;     /* it.odbc_order.v1 */
    th_odbc_events_t evs;
    const th_odbc_entity_t *x[TH_ODBC_MAX_ENTITIES]; /* the other tables (borrowed) */
    th_consumer_t *xcons[TH_ODBC_MAX_ENTITIES];      /* it.<entity>.v1 */
    th_odbc_events_t xevs[TH_ODBC_MAX_ENTITIES];
    int nx;
    th_odbc_t *db;           /* the test's own connection */
    th_proc_t *runs[TH_ODBC_MAX_RUNS]; /* every run (logs kept), the last is the current one */
    int nruns;
    int dumped;
} th_odbc_fx_t;

/* The fixture for a database that already holds the order table (order_table as
 * source.tables names it: "public.odbc_ord", or "odbc_ord" where there are no schemas) and the
 * tables of the nx entities x (borrowed: they must outlive the fixture). The run: the order
 * table in mode timestamp on hdupdt, the others in their modes; poll every 100 ms, pages of 100
 * rows, safety lag 1000 ms, reconciliation every second in chunks of 1000, offsets flushed
 * every 100 ms. NULL on error. Caller frees with th_odbc_fx_destroy(). */
th_odbc_fx_t *th_odbc_fx_new(const char *connstr, const char *order_table,
                             const th_odbc_entity_t *const *x, int nx);
/* Write siphon.yaml from fx->conf and start `siphon run --config` on it (log
 * <dir>/siphon-<n>.log); wait until it logs that it polls. 0 or -1 (logs printed). */
int th_odbc_fx_start(th_odbc_fx_t *fx);
/* The current run (NULL before the first start). */
th_proc_t *th_odbc_fx_run(const th_odbc_fx_t *fx);
/* Send sig to the current run and wait up to timeout_ms: its exit code, or -1 when it did not
 * exit (it is then SIGKILLed). */
int th_odbc_fx_stop(th_odbc_fx_t *fx, int sig, int timeout_ms);
/* Print every run's log (last 40 lines), once. */
void th_odbc_fx_dump_logs(th_odbc_fx_t *fx);
/* Wait for an odbc_order event (tombstones skipped) of order_number ordn (company: any when
 * NULL) and op (any when 0), from event index `from` on. NULL on timeout. */
const th_event_t *th_odbc_fx_wait(th_odbc_fx_t *fx, const char *company, const char *ordn,
                                  char op, int from, int timeout_ms);
/* Events of odbc_order with that company (any when NULL) and order number (tombstones not
 * counted) from index `from` on. */
int th_odbc_fx_count(const th_odbc_fx_t *fx, const char *company, const char *ordn, char op,
                     int from);
/* The same for entity xi: key field f1 has the text v1 and, when f2 is not NULL, f2 has v2. */
const th_event_t *th_odbc_fx_xwait(th_odbc_fx_t *fx, int xi, const char *f1, const char *v1,
                                   const char *f2, const char *v2, char op, int from,
                                   int timeout_ms);
int th_odbc_fx_xcount(const th_odbc_fx_t *fx, int xi, const char *f1, const char *v1,
                      const char *f2, const char *v2, char op, int from);
/* Compare the `after` image of an event of entity xi with want[0..ncols-1], the text of each
 * column's field (th_json_text's form: "null" for null; long values compared whole). 0, or
 * -1 with every difference printed. */
int th_odbc_fx_xexpect(const th_odbc_fx_t *fx, int xi, const th_event_t *ev,
                       const char *const *want);
/* Stop the runs (SIGKILL), free everything, remove the temp dir. Accepts NULL. */
void th_odbc_fx_destroy(th_odbc_fx_t *fx);

/* A check in an ODBC test (include it_check.h first): on failure, where and what, every run's
 * log, then fail the test. */
#define TH_ODBC_CHECK(fx, cond, ...)                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                     \
            th_odbc_fx_dump_logs(fx);                                                         \
            fail_msg(__VA_ARGS__);                                                            \
        }                                                                                     \
    } while (0)

/* The change flow every driver must get right, through a running siphon (th_odbc_fx_start()
 * first) on the fixture's order table, written on fx->db:
 *  - new rows: three, two of them sharing an order number (the key is composite), with NULLs,
 *    an empty string and non-ASCII text: creates with every field as written;
 *  - an updated row: an update; rows read again by the re-read window are not sent again;
 *  - a row committed late with a timestamp earlier than a row already delivered (the row
 *    JDBC polling loses): a create;
 *  - a deleted row: a delete of its (company, order number) key, key only, and a tombstone.
 * The late row is written by a transaction held open on a second connection while another row
 * is written and delivered (late_ts_sql NULL), or, where a held write transaction would block
 * every other writer (SQLite), by a plain insert whose timestamp is the expression late_ts_sql,
 * earlier than every row delivered. now_sql: the database's current timestamp. 0, or -1 with
 * what went wrong printed. */
typedef struct th_odbc_flow {
    const char *table;       /* the order table as SQL names it */
    const char *now_sql;
    const char *late_ts_sql;
} th_odbc_flow_t;
int th_odbc_flow(th_odbc_fx_t *fx, const th_odbc_flow_t *f);

/* The types check of the three drivers: rows id 1..nrows of entity xi arrive as creates with
 * the fields want[(id - 1) * ncols + c]. 0, or -1 with every difference printed. */
int th_odbc_fx_expect_rows(th_odbc_fx_t *fx, int xi, const char *const *want, int nrows,
                           int timeout_ms);
/* ==== end of the ODBC block ==== */

/* ---- MySQL / MariaDB, continued: SQL files and comparing entity topics (th_mysql.c) ---- */

/* Run a file of SQL as the `mariadb` client would: statements end with the current delimiter
 * (`;`, changed by `DELIMITER //` lines, so stored procedures load), quotes and `--`/`#`
 * comments respected; `USE db` switches the harness's connection. 0 or -1 (printed). */
int th_my_exec_file(th_my_t *my, const char *path);

/* Poll c into msgs until quiet_ms pass without a new message, once any came (10 s at most
 * for the first). Returns msgs->n, or -1 on a consumer error. */
int th_my_drain(th_consumer_t *c, th_msgs_t *msgs, int quiet_ms);

/* The events of one entity topic, grouped by key: for each key (its decoded key record as
 * sorted compact JSON) the events in topic order as "<op> <after as sorted compact JSON>"
 * (tombstones skipped; `before` is left out: it depends on the source's row images). Read
 * until quiet_ms pass without a message once messages came (at most 10 s for the first).
 * NULL on a consumer or decode error (printed). */
typedef struct th_keyseq th_keyseq_t;
th_keyseq_t *th_keyseq_read(th_kafka_t *k, th_decoder_t *d, const char *topic, int quiet_ms);
int th_keyseq_keys(const th_keyseq_t *s);
long th_keyseq_events(const th_keyseq_t *s);
/* 0 when a and b hold the same keys with the same event sequences; else -1 with the first
 * difference (key, index, both events) in why. */
int th_keyseq_compare(const th_keyseq_t *a, const th_keyseq_t *b, char *why, size_t size);
void th_keyseq_destroy(th_keyseq_t *s);

/* ==== the stand-in Confluent Schema Registry (th_registry.c) ====
 * Owned by the schemas-as-contracts work (issue 7); a separate block so that it merges cleanly.
 * An HTTP server on 127.0.0.1 implementing the registry endpoints Siphon and our consumers use
 * (POST /subjects/{subject}/versions, GET /schemas/ids/{id},
 * GET /subjects/{subject}/versions/latest), with test controls. No real registry is installable
 * on the test machines; docs/events.md says so. */
typedef struct th_registry th_registry_t;

/* One request as the stand-in saw it (strings NULL when absent). */
typedef struct th_registry_req {
    char method[8];
    char *url;           /* path, e.g. "/subjects/erp.sales_order.v1-value/versions" */
    char *authorization; /* the Authorization header as sent ("Basic ...") */
    char *content_type;
    char *body;
    int status;          /* what it answered */
    int64_t at_ms;       /* th_now_ms() when it was answered */
} th_registry_req_t;

/* Start on a free port. NULL on error. Caller frees with th_registry_destroy(). */
th_registry_t *th_registry_start(void);
/* "http://127.0.0.1:PORT". Borrowed. */
const char *th_registry_url(const th_registry_t *r);
/* Demand HTTP basic auth with these credentials (user NULL: none), 401 otherwise. */
void th_registry_set_auth(th_registry_t *r, const char *user, const char *pass);
/* Answer the next n requests with status (e.g. 503, 409) and an error body. */
void th_registry_fail(th_registry_t *r, int status, int n);
/* Answer 503 (error_code 50003) to every request for the next ms milliseconds (0: stop). */
void th_registry_unavailable_for(th_registry_t *r, int ms);
/* Close the listener (connections refused) / listen again on the same port; schemas and ids
 * are kept. 0 or -1. */
int th_registry_stop(th_registry_t *r);
int th_registry_restart(th_registry_t *r);
/* A copy of every request so far, oldest first: returns how many (or -1); free the copy with
 * th_registry_requests_free(v, n). */
int th_registry_requests(th_registry_t *r, th_registry_req_t **out);
void th_registry_requests_free(th_registry_req_t *v, int n);
/* The schema text registered with this id (caller frees), NULL when none. */
char *th_registry_schema(th_registry_t *r, uint32_t id);
/* The id of the latest version of subject and (versions, may be NULL) how many it has. 0 or -1
 * when the subject is unknown. */
int th_registry_subject_id(th_registry_t *r, const char *subject, uint32_t *id, int *versions);
/* Re-frame a consumed Confluent-framed message in place as single-object encoding, with the
 * fingerprint of the schema the registry holds under its id (so th_decode() reads it, and a
 * wrong id or a schema that is not the one Siphon wrote fails there). key_id / value_id (may be
 * NULL) receive the ids. 0 or -1 (printed). */
int th_registry_to_soe(th_registry_t *r, th_msg_t *m, uint32_t *key_id, uint32_t *value_id);
void th_registry_destroy(th_registry_t *r);
/* Insert YAML lines (indented by two spaces, each ending in a newline) into the sink section of
 * a siphon.yaml written by th_siphon_conf_write() (e.g. "  format: confluent\n"). 0 or -1. */
int th_conf_add_sink_keys(const char *config_path, const char *lines);
/* ==== end of the stand-in Schema Registry ==== */

/* th_my_env_new()'s own mapping and schema (one field per column of th_my_oehdr_ddl()'s
 * table) for public.<table> as entity `entity`, written to dir/mappings/<entity>.yaml and
 * dir/schemas/<entity>.v1.avsc (folders created). 0 or -1. */
int th_my_order_mapping(const char *dir, const char *entity, const char *table);

/* The events of entities mapped by th_my_order_mapping() (th_my_env_new()'s sales_order of
 * public.oehdr...), decoded in topic order: messages msgs->v[from..n-1] with a value
 * (tombstones skipped). */
typedef struct th_my_order_ev {
    char entity[32];      /* the mapping's entity ("sales_order") */
    char op;              /* 'r', 'c', 'u', 'd' */
    char order[16];       /* order_number (hdordn) */
    long amount;          /* total_amount (hdamt) in whole units, of after (before for 'd') */
    int snapshot;         /* source.snapshot */
    char event_id[160];
} th_my_order_ev_t;
/* *out (caller frees with free()) gets *n events. 0, or -1 when a message does not decode. */
int th_my_order_events(th_decoder_t *d, const th_msgs_t *msgs, int from, th_my_order_ev_t **out,
                       int *n);

#endif
