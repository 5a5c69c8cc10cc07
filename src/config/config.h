/*
 * config.h - siphon.yaml: loading, ${VAR} and ${file:/path} interpolation, validation.
 *
 * Every error names file:line:column and what was expected ("siphon.yaml:7:3: unknown key
 * 'slott' in source (expected one of: type, conninfo, slot, ...)"). Secrets are interpolated
 * after parsing and never logged: siphon_config_redact() gives a printable form of a conninfo.
 *
 * Layout:
 *   name: erp-orders                      # connector name, required
 *   source:
 *     type: postgres                      # required
 *     conninfo: "host=... dbname=erp user=siphon password=${ERP_PASSWORD}"
 *     slot: siphon_erp                    # default: siphon_<name> (non-alnum -> _)
 *     publication: siphon_erp             # default: same as slot
 *     create_slot: true                   # may Siphon create the slot? default true
 *     create_publication: true            # may Siphon create the publication? default true
 *     status_interval_ms: 1000            # standby status update period, default 1000
 *     snapshot: initial                   # never|initial|always|initial_only|when_needed
 *     snapshot_connections: 2             # tables read at once, default 2 (docs/snapshots.md)
 *     snapshot_chunk_rows: 10000          # rows per key-ordered chunk, default 10000
 *   source:                               # or: MySQL / MariaDB (connectors/mysql, docs/mysql.md)
 *     type: mysql
 *     conninfo: "host=db port=3306 user=siphon password=${ERP_PASSWORD} dbname=erp"
 *     server_id: 4201                     # required: unique among the server's replicas
 *     heartbeat_interval_ms: 5000         # default 5000
 *     names_from_catalog: false           # default false (requires binlog_row_metadata=FULL)
 *   mappings: mappings                    # folder of mapping files (relative to the config file)
 *   schemas: schemas                      # folder of .avsc files (relative to the config file)
 *   sink:
 *     type: kafka                         # kafka | file | stdout
 *     topic_prefix: erp                   # required for kafka
 *     tombstones: true                    # follow a delete with a null-value message
 *     properties: { bootstrap.servers: "broker:9092", ... }   # passed verbatim to librdkafka
 *     path: /var/lib/siphon/out           # file: folder of Avro container files (required)
 *     roll_bytes: 67108864                # file: new file past this size
 *     roll_ms: 60000                      # file: new file after this long
 *     format: single_object               # kafka: single_object (default) | confluent
 *     schema_registry:                    # kafka + format confluent (docs/events.md)
 *       url: https://registry:8081        # required; several, comma-separated, are tried in turn
 *       username: siphon                  # HTTP basic auth, with password
 *       password: ${REGISTRY_PASSWORD}
 *       ca_location: /etc/ssl/registry-ca.pem      # CA bundle that signed the registry
 *       cert_location: ...  key_location: ...  key_password: ${...}   # client certificate
 *       ssl_verify: true                  # check the registry's certificate and host name
 *       timeout_ms: 5000                  # one request, connect included
 *       retry_backoff_ms: 500             # first wait after a failed request, doubling...
 *       retry_backoff_max_ms: 10000       # ...up to this
 *   offsets:
 *     path: /var/lib/siphon/erp.offsets.json   # required
 *     flush_interval_ms: 1000
 *   pipeline:
 *     max_inflight_bytes: 67108864        # stop reading the source past this, default 64 MiB
 *     transactions: false                 # BEGIN/END events on <prefix>._transactions and a
 *                                         # transaction block in every change event
 *   schema_compatibility: BACKWARD        # NONE | BACKWARD | FORWARD | FULL, or *_TRANSITIVE
 *   log:
 *     level: info                         # error | warning | notice | info | debug
 *     format: text                        # text | json
 */
#ifndef SIPHON_CONFIG_H
#define SIPHON_CONFIG_H

#include <stddef.h>

typedef struct siphon_kv {
    char *key;
    char *value;
} siphon_kv_t;

/* source.snapshot */
enum {
    SIPHON_SNAPSHOT_NEVER = 0,    /* stream only (a zeroed config, as in-process tests build) */
    SIPHON_SNAPSHOT_INITIAL,      /* on the first start, and to finish an interrupted one;
                                     the loader's default */
    SIPHON_SNAPSHOT_ALWAYS,       /* at every start, then stream from the stored position */
    SIPHON_SNAPSHOT_INITIAL_ONLY, /* like initial, then stop (no streaming) */
    SIPHON_SNAPSHOT_WHEN_NEEDED   /* like initial, and again when the slot is gone */
};

/* sink.format: how a Kafka message says which schema wrote it (docs/events.md). */
enum {
    SIPHON_SINK_FORMAT_SOE = 0,   /* Avro single-object encoding: C3 01 + fingerprint */
    SIPHON_SINK_FORMAT_CONFLUENT  /* magic 0 + Schema Registry id (sink.schema_registry) */
};

typedef struct siphon_config {
    char *path;        /* the file it was loaded from */
    char *name;

    struct {
        char *type;    /* "postgres" */
        char *conninfo;
        char *slot;
        char *publication;
        int create_slot;
        int create_publication;
        int status_interval_ms;
        /* Initial snapshot (docs/snapshots.md): SIPHON_SNAPSHOT_* below; default initial. */
        int snapshot;
        int snapshot_connections;  /* default 2 */
        int snapshot_chunk_rows;   /* rows per key-ordered chunk, default 10000 */
    } source;

    /* source.type odbc (filled by the ODBC source section of the loader). */
    struct siphon_config_odbc {
        char *dsn;                  /* unixODBC DSN or connection string (secrets via ${VAR}) */
        int poll_interval_ms;       /* between polls of one table, default 1000 */
        int max_rows_per_poll;      /* default 10000 */
        int safety_lag_ms;          /* timestamp modes: stay this far behind the DB clock, 5000 */
        int reconcile_interval_s;   /* delete detection period, default 3600; 0 = off */
        int reconcile_chunk;        /* keys per reconciliation query, default 10000 */
        char *state_dir;            /* key sets and hashes; default <offsets dir>/<name>.odbc */
        struct siphon_config_odbc_table {
            char *table;            /* schema.table as in the mapping's source.table */
            char *mode;             /* incrementing | timestamp | timestamp+incrementing | snapshot */
            char *timestamp_column;
            char *incrementing_column;
            char **key_columns;     /* default: the table's primary key */
            int nkey_columns;
        } *tables;
        int ntables;
    } odbc;

    /* source.type mysql (filled by the MySQL source section of the loader); the connection is
     * source.conninfo: "host=... port=3306 user=... password=${PW} dbname=..." */
    struct siphon_config_mysql {
        unsigned long server_id;    /* required: our id as a replica, unique among the server's
                                       replicas and servers, 1 to 4294967295 */
        int heartbeat_interval_ms;  /* server heartbeat when idle, default 5000; the connection
                                       is dead after 3 periods of silence */
        int names_from_catalog;     /* without binlog_row_metadata=FULL, read column names from
                                       the table definition (default false: refuse to start) */
    } mysql;

    char *mappings_dir; /* resolved against the config file's folder */
    char *schemas_dir;

    struct {
        char *type;    /* "kafka" | "stdout" */
        char *topic_prefix;
        int tombstones;
        siphon_kv_t *props; /* librdkafka properties, in file order */
        int nprops;
        char *path;    /* file: the folder of container files (resolved like other paths) */
        long long roll_bytes; /* file: start a new file past this size (default 64 MiB) */
        int roll_ms;   /* file: start a new file after this long (default 60000) */
        int format;    /* kafka: SIPHON_SINK_FORMAT_* (default single_object) */
        struct siphon_config_registry {  /* format confluent: the Schema Registry */
            char *url;            /* one or more base URLs, comma-separated */
            char *username;       /* basic auth (NULL: none) */
            char *password;
            char *ca_location;    /* PEM bundle of CAs to trust (NULL: the system's) */
            char *cert_location;  /* client certificate (PEM), with key_location */
            char *key_location;
            char *key_password;
            int ssl_verify;       /* default 1 */
            int timeout_ms;       /* per request, default 5000 */
            int retry_backoff_ms; /* first retry delay, default 500 */
            int retry_backoff_max_ms; /* default 10000 */
        } registry;
    } sink;

    struct {
        char *path;    /* resolved against the config file's folder */
        int flush_interval_ms;
    } offsets;

    struct {
        long long max_inflight_bytes;
        int transactions; /* transaction metadata (docs/events.md), default 0 */
    } pipeline;

    /* Who must read whom when a schema changes within a major version, with the Confluent
     * Schema Registry's meanings (docs/schemas.md): a siphon_avro_compat_mode_t value,
     * default 0 = BACKWARD. */
    int schema_compatibility;

    struct {
        int level;     /* SIPHON_LOG_* */
        int json;
    } log;
} siphon_config_t;

/* Load and validate a config file. On error returns a negative code, *out is NULL and errbuf
 * holds "file:line:column: message" followed by what to do. Caller frees with
 * siphon_config_destroy(). */
int siphon_config_load(siphon_config_t **out, const char *path, char *errbuf, size_t errsize);

/* Same from text in memory; `name` stands for the file name in messages and relative paths
 * are resolved against `basedir` (NULL: the current directory). */
int siphon_config_parse(siphon_config_t **out, const char *text, size_t len, const char *name,
                        const char *basedir, char *errbuf, size_t errsize);

void siphon_config_destroy(siphon_config_t *cfg);

/* Interpolate ${VAR} (environment) and ${file:/path} (file contents, one trailing newline
 * removed) in `in`. "$${" stands for a literal "${". Caller frees *out with free(). On error
 * (unset variable, unreadable file) returns SIPHON_EINVAL with the variable or file named. */
int siphon_config_interpolate(char **out, const char *in, char *errbuf, size_t errsize);

/* Copy a libpq conninfo into buf with any password value replaced by "********", for logs. */
void siphon_config_redact(const char *conninfo, char *buf, size_t size);

#endif
