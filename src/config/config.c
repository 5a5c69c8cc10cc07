/*
 * config.c - siphon.yaml: parse with libyaml's document API, check every key against the
 * layout documented in config.h, fill the defaults, resolve relative paths against the config
 * file's folder and interpolate ${VAR} / ${file:path} secrets.
 *
 * The whole file is parsed first, so every node keeps its libyaml marks; values are then read
 * key by key, and interpolation runs on the parsed string (never on the raw text), so an error
 * points at the exact line and column of the key, the value or the failing ${...}. The first
 * error wins: the message is "file:line:column: what is wrong (expected what to write)".
 * Nothing here logs a value: a conninfo or a property may hold a secret once interpolated.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config_int.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "yamlx/yamlx.h"

#define CFG_MAX_KEYS 16
#define CFG_DEFAULT_INTERVAL_MS 1000
#define CFG_DEFAULT_INFLIGHT (64LL * 1024 * 1024)
#define PG_NAMEDATALEN 63

/* One parse: where messages point and what the nodes belong to. */
typedef struct cfg_ctx {
    const char *name;    /* file name for messages */
    const char *basedir; /* folder for relative paths; NULL keeps them relative */
    const char *text;    /* the source text, for positions inside scalars */
    size_t textlen;
    yaml_document_t *doc;
    char *errbuf;
    size_t errsize;
} cfg_ctx_t;

/* A key a section accepts (yamlx.h). */
typedef siphon_yamlx_key_t cfg_key_t;

/* ---- messages ---- */

static int cfg_fail(cfg_ctx_t *cx, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cfg_fail(cfg_ctx_t *cx, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return siphon_err(cx->errbuf, cx->errsize, SIPHON_EINVAL, "%s:%zu:%zu: %s", cx->name,
                      mark.line + 1, mark.column + 1, msg);
}

static yaml_node_t *cfg_node(cfg_ctx_t *cx, int id)
{
    return yaml_document_get_node(cx->doc, id);
}

/* A scalar's text for a message, cut at 40 characters. Only used for values that hold no
 * secret (integers, booleans, enumerations, key names). */
static const char *cfg_show(const yaml_node_t *n, char *buf, size_t size)
{
    size_t len = n->data.scalar.length;
    if (len > 40)
        snprintf(buf, size, "%.40s...", (const char *)n->data.scalar.value);
    else
        snprintf(buf, size, "%s", (const char *)n->data.scalar.value);
    return buf;
}

/* The next ${ reference (not a $${ escape) at or after byte i of s, or len when none. */
static size_t next_ref(const char *s, size_t len, size_t i)
{
    while (i + 1 < len) {
        if (s[i] == '$' && s[i + 1] == '$' && i + 2 < len && s[i + 2] == '{')
            i += 3;
        else if (s[i] == '$' && s[i + 1] == '{')
            return i;
        else
            i++;
    }
    return len;
}

/* The mark of the ${ at byte `off` of a scalar's value. The scalar's source text is scanned for
 * the same reference (folding, quoting and indentation never touch a "${NAME}"), counting lines
 * and characters as libyaml does; when the source does not show it (escapes), the scalar's
 * start is still the right place to look. */
static yaml_mark_t cfg_ref_mark(cfg_ctx_t *cx, const yaml_node_t *v, size_t off)
{
    yaml_mark_t m = v->start_mark;
    const char *val = (const char *)v->data.scalar.value;
    size_t vlen = v->data.scalar.length, nth = 0;
    for (size_t i = next_ref(val, vlen, 0); i < off; i = next_ref(val, vlen, i + 2))
        nth++;

    /* marks count characters: find the bytes of the scalar in the source */
    const char *p = cx->text, *end = cx->text + cx->textlen;
    for (size_t c = 0; p < end && c < v->start_mark.index; c++)
        do
            p++;
        while (p < end && ((unsigned char)*p & 0xC0) == 0x80);
    const char *q = p;
    for (size_t c = v->start_mark.index; q < end && c < v->end_mark.index; c++)
        do
            q++;
        while (q < end && ((unsigned char)*q & 0xC0) == 0x80);

    size_t rawlen = (size_t)(q - p), at = next_ref(p, rawlen, 0);
    for (size_t k = 0; k < nth && at < rawlen; k++)
        at = next_ref(p, rawlen, at + 2);
    if (at >= rawlen)
        return m;
    for (const char *r = p; r < p + at; r++) {
        if (*r == '\r' && r + 1 < p + at && r[1] == '\n')
            continue;
        if (*r == '\n' || *r == '\r') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)*r & 0xC0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

/* ---- walking mappings ---- */

/* Check every key of mapping node `map` against `keys`: unknown, non-scalar and duplicate keys
 * are errors, then missing required ones. vals[i] receives the value node of keys[i] or NULL.
 * `where` completes the messages ("in source", "at the top level"). */
static int cfg_walk(cfg_ctx_t *cx, yaml_node_t *map, const char *where, const cfg_key_t *keys,
                    int nkeys, yaml_node_t **vals)
{
    siphon_yamlx_err_t err;
    if (siphon_yamlx_walk(cx->doc, map, where, keys, nkeys, vals, NULL, &err) < 0)
        return cfg_fail(cx, err.mark, "%s", err.msg);
    return 0;
}

/* A section: must be a mapping. */
static int cfg_section(cfg_ctx_t *cx, yaml_node_t *v, const char *path, const char *what)
{
    if (v->type == YAML_MAPPING_NODE)
        return 0;
    if (siphon_yamlx_is_null(v))
        return cfg_fail(cx, v->start_mark, "%s has no value (expected a mapping of %s)", path,
                        what);
    return cfg_fail(cx, v->start_mark, "wrong type for %s: found %s (expected a mapping of %s)",
                    path, siphon_yamlx_kind(v), what);
}

/* A scalar that is neither null nor a collection. */
static int cfg_scalar(cfg_ctx_t *cx, yaml_node_t *v, const char *path, const char *expected,
                      int optional)
{
    const char *tail = optional ? ", or remove the key to use the default" : "";
    if (v->type != YAML_SCALAR_NODE)
        return cfg_fail(cx, v->start_mark, "wrong type for %s: found %s (expected %s%s)", path,
                        siphon_yamlx_kind(v), expected, tail);
    if (siphon_yamlx_is_null(v))
        return cfg_fail(cx, v->start_mark, "%s has no value (expected %s%s)", path, expected,
                        tail);
    return 0;
}

/* Read a string value and interpolate it. *out (caller frees) replaces any previous value.
 * An empty result is an error unless allow_empty. */
static int cfg_str(cfg_ctx_t *cx, yaml_node_t *v, const char *path, int optional,
                   int allow_empty, char **out)
{
    int rc = cfg_scalar(cx, v, path, "a string", optional);
    if (rc)
        return rc;
    const char *s = (const char *)v->data.scalar.value;
    size_t len = v->data.scalar.length;
    if (memchr(s, '\0', len))
        return cfg_fail(cx, v->start_mark, "%s contains a NUL character (expected text)", path);

    char reason[512];
    size_t off = 0;
    char *val = NULL;
    rc = siphon_config__interpolate(&val, s, len, cx->basedir, &off, reason, sizeof(reason));
    if (rc == SIPHON_ENOMEM)
        return siphon_err(cx->errbuf, cx->errsize, rc, "out of memory while loading %s",
                          cx->name);
    if (rc)
        return cfg_fail(cx, cfg_ref_mark(cx, v, off), "could not interpolate %s: %s", path,
                        reason);
    if (!allow_empty && val[0] == '\0') {
        free(val);
        return cfg_fail(cx, v->start_mark, "%s is empty (expected a non-empty string)", path);
    }
    free(*out);
    *out = val;
    return 0;
}

/* Parse a YAML integer: optional sign, digits, single '_' between digits (YAML 1.1). */
static int parse_int(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long acc = 0;
    int digits = 0;

    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < len; i++) {
        if (s[i] == '_' && digits && i + 1 < len && isdigit((unsigned char)s[i + 1]))
            continue;
        if (!isdigit((unsigned char)s[i]))
            return -1;
        acc = acc * 10 + (unsigned)(s[i] - '0');
        if (acc > (unsigned long long)LLONG_MAX)
            return -2;
        digits++;
    }
    if (!digits)
        return -1;
    *out = neg ? -(long long)acc : (long long)acc;
    return 0;
}

static int cfg_llong(cfg_ctx_t *cx, yaml_node_t *v, const char *path, long long min,
                     long long max, const char *expected, long long *out)
{
    char shown[64];
    int rc = cfg_scalar(cx, v, path, expected, 1);
    if (rc)
        return rc;
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cfg_fail(cx, v->start_mark,
                        "wrong type for %s: found a quoted string '%s' (expected %s, without "
                        "quotes)",
                        path, cfg_show(v, shown, sizeof(shown)), expected);
    long long n = 0;
    rc = parse_int((const char *)v->data.scalar.value, v->data.scalar.length, &n);
    if (rc == -1)
        return cfg_fail(cx, v->start_mark, "wrong value for %s: '%s' is not an integer "
                        "(expected %s)", path, cfg_show(v, shown, sizeof(shown)), expected);
    if (rc || n < min || n > max)
        return cfg_fail(cx, v->start_mark, "wrong value for %s: %s is out of range "
                        "(expected %s)", path, cfg_show(v, shown, sizeof(shown)), expected);
    *out = n;
    return 0;
}

static int cfg_int(cfg_ctx_t *cx, yaml_node_t *v, const char *path, int min, int max,
                   const char *expected, int *out)
{
    long long n = 0;
    int rc = cfg_llong(cx, v, path, min, max, expected, &n);
    if (rc == 0)
        *out = (int)n;
    return rc;
}

/* true/false, and YAML 1.1's yes/no, on/off, y/n in their usual capitalizations. */
static int cfg_bool(cfg_ctx_t *cx, yaml_node_t *v, const char *path, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    char shown[64];
    int rc = cfg_scalar(cx, v, path, "true or false", 1);
    if (rc)
        return rc;
    const char *s = (const char *)v->data.scalar.value;
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cfg_fail(cx, v->start_mark,
                        "wrong type for %s: found a quoted string '%s' (expected true or false, "
                        "without quotes)",
                        path, cfg_show(v, shown, sizeof(shown)));
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return cfg_fail(cx, v->start_mark,
                    "wrong value for %s: '%s' is not a boolean (expected true or false)", path,
                    cfg_show(v, shown, sizeof(shown)));
}

/* A string among `choices` (NULL-terminated); *idx receives its index. */
static int cfg_choice(cfg_ctx_t *cx, yaml_node_t *v, const char *path, int optional,
                      const char *const *choices, int *idx)
{
    char *s = NULL;
    char list[256] = "";
    size_t o = 0;
    int rc = cfg_str(cx, v, path, optional, 1, &s);
    if (rc)
        return rc;
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) {
            free(s);
            *idx = i;
            return 0;
        }
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", choices[i]);
        if (o >= sizeof(list))
            o = sizeof(list) - 1;
    }
    rc = cfg_fail(cx, v->start_mark, "wrong value for %s: '%.40s' (expected one of: %s)", path,
                  s, list);
    free(s);
    return rc;
}

static int cfg_path(cfg_ctx_t *cx, yaml_node_t *v, const char *path, char **out)
{
    char *s = NULL;
    int rc = cfg_str(cx, v, path, 1, 0, &s);
    if (rc)
        return rc;
    char *abs = siphon_config__resolve(cx->basedir, s);
    free(s);
    if (!abs)
        return siphon_err(cx->errbuf, cx->errsize, SIPHON_ENOMEM,
                          "out of memory while loading %s", cx->name);
    free(*out);
    *out = abs;
    return 0;
}

/* ---- sections ---- */

static int valid_slot_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PG_NAMEDATALEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* The plain scalar value of `key` in mapping node sec, or NULL (used to choose a source
 * section's keys by its type before walking them). */
static const char *cfg_peek(cfg_ctx_t *cx, yaml_node_t *sec, const char *key)
{
    for (yaml_node_pair_t *p = sec->data.mapping.pairs.start; p < sec->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = cfg_node(cx, p->key), *v = cfg_node(cx, p->value);
        if (k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return (const char *)v->data.scalar.value;
    }
    return NULL;
}

/* source.snapshot, snapshot_connections, snapshot_chunk_rows (v[0..2], any may be NULL): the
 * same keys and meaning for every log-reading source (docs/snapshots.md). */
static int cfg_snapshot_keys(cfg_ctx_t *cx, yaml_node_t *const *v, siphon_config_t *cfg)
{
    static const char *const snaps[] = {"never", "initial", "always", "initial_only",
                                        "when_needed", NULL};
    int rc;

    if (v[0] && (rc = cfg_choice(cx, v[0], "source.snapshot", 1, snaps, &cfg->source.snapshot)))
        return rc;
    if (v[1] && (rc = cfg_int(cx, v[1], "source.snapshot_connections", 1, 64,
                              "a number of connections from 1 to 64, e.g. 2",
                              &cfg->source.snapshot_connections)))
        return rc;
    if (v[2] && (rc = cfg_int(cx, v[2], "source.snapshot_chunk_rows", 1, 10000000,
                              "a number of rows from 1 to 10000000, e.g. 10000",
                              &cfg->source.snapshot_chunk_rows)))
        return rc;
    return 0;
}

/* source.type mysql: a MySQL or MariaDB server read as a replica (connectors/mysql). */
static int cfg_source_mysql(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"type", "type: mysql"},
        {"conninfo", "conninfo: \"host=... port=3306 user=... password=${PASSWORD} "
                     "dbname=...\" for type mysql"},
        {"server_id", "server_id: <a number from 1 to 4294967295 no other replica of the "
                      "server uses> for type mysql"},
        {"heartbeat_interval_ms", NULL},
        {"names_from_catalog", NULL},
        {"snapshot", NULL},
        {"snapshot_connections", NULL},
        {"snapshot_chunk_rows", NULL},
    };
    yaml_node_t *v[CFG_MAX_KEYS];
    long long id = 0;
    int rc;

    if ((rc = cfg_walk(cx, sec, "in source", keys, 8, v)))
        return rc;
    if (!(cfg->source.type = strdup("mysql")))
        return SIPHON_ENOMEM;
    cfg->mysql.heartbeat_interval_ms = 5000;
    cfg->mysql.names_from_catalog = 0;
    if ((rc = cfg_str(cx, v[1], "source.conninfo", 0, 1, &cfg->source.conninfo)) ||
        (rc = cfg_llong(cx, v[2], "source.server_id", 1, 4294967295LL,
                        "a number from 1 to 4294967295 that no server or other replica uses",
                        &id)))
        return rc;
    cfg->mysql.server_id = (unsigned long)id;
    if (v[3] && (rc = cfg_int(cx, v[3], "source.heartbeat_interval_ms", 100, 3600000,
                              "a whole number of milliseconds from 100 to 3600000, e.g. 5000",
                              &cfg->mysql.heartbeat_interval_ms)))
        return rc;
    if (v[4] && (rc = cfg_bool(cx, v[4], "source.names_from_catalog",
                               &cfg->mysql.names_from_catalog)))
        return rc;
    return cfg_snapshot_keys(cx, v + 5, cfg);
}

/* A list of non-empty strings (source.tables[i].key_columns). */
static int cfg_str_list(cfg_ctx_t *cx, yaml_node_t *v, const char *path, char ***out, int *nout)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_fail(cx, v->start_mark, "%s is %s (expected a list of column names, e.g. "
                        "[CMCOMP, CMCUST])", path, siphon_yamlx_kind(v));
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return cfg_fail(cx, v->start_mark, "%s is an empty list (expected at least one column "
                        "name, or leave the key out to use the primary key)", path);
    if (!(*out = calloc((size_t)n, sizeof(char *))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        char item[160];
        snprintf(item, sizeof(item), "%s[%d]", path, i);
        (*nout)++;
        int rc = cfg_str(cx, cfg_node(cx, v->data.sequence.items.start[i]), item, 0, 0,
                         &(*out)[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* source.type odbc: a database polled through unixODBC (connectors/odbc, docs/odbc.md). */
static int cfg_source_odbc(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"type", "type: odbc"},
        {"dsn", "dsn: \"DSN=erp;UID=siphon;PWD=${ERP_PASSWORD}\" (a unixODBC DSN or connection "
                "string) for type odbc"},
        {"poll_interval_ms", NULL},
        {"max_rows_per_poll", NULL},
        {"safety_lag_ms", NULL},
        {"reconcile_interval_s", NULL},
        {"reconcile_chunk", NULL},
        {"state_dir", NULL},
        {"tables", "tables: a list of {table, mode, ...}, one per mapped table, for type odbc"},
    };
    static const cfg_key_t tkeys[] = {
        {"table", "table: <schema.table as in the mapping>"},
        {"mode", "mode: incrementing, timestamp, timestamp+incrementing or snapshot"},
        {"timestamp_column", NULL},
        {"incrementing_column", NULL},
        {"key_columns", NULL},
    };
    static const char *const modes[] = {"incrementing", "timestamp", "timestamp+incrementing",
                                        "snapshot", NULL};
    yaml_node_t *v[CFG_MAX_KEYS];
    struct siphon_config_odbc *o = &cfg->odbc;
    int rc;

    if ((rc = cfg_walk(cx, sec, "in source", keys, 9, v)))
        return rc;
    if (!(cfg->source.type = strdup("odbc")))
        return SIPHON_ENOMEM;
    o->poll_interval_ms = 1000;
    o->max_rows_per_poll = 10000;
    o->safety_lag_ms = 5000;
    o->reconcile_interval_s = 3600;
    o->reconcile_chunk = 10000;
    if ((rc = cfg_str(cx, v[1], "source.dsn", 0, 0, &o->dsn)))
        return rc;
    if ((v[2] && (rc = cfg_int(cx, v[2], "source.poll_interval_ms", 1, INT_MAX,
                               "a whole number of milliseconds, at least 1, e.g. 1000",
                               &o->poll_interval_ms))) ||
        (v[3] && (rc = cfg_int(cx, v[3], "source.max_rows_per_poll", 1, INT_MAX,
                               "a number of rows, at least 1, e.g. 10000",
                               &o->max_rows_per_poll))) ||
        (v[4] && (rc = cfg_int(cx, v[4], "source.safety_lag_ms", 0, INT_MAX,
                               "a whole number of milliseconds, 0 or more, e.g. 5000",
                               &o->safety_lag_ms))) ||
        (v[5] && (rc = cfg_int(cx, v[5], "source.reconcile_interval_s", 0, INT_MAX,
                               "a whole number of seconds, 0 (no delete detection) or more, "
                               "e.g. 3600",
                               &o->reconcile_interval_s))) ||
        (v[6] && (rc = cfg_int(cx, v[6], "source.reconcile_chunk", 1, INT_MAX,
                               "a number of keys, at least 1, e.g. 10000",
                               &o->reconcile_chunk))) ||
        (v[7] && (rc = cfg_path(cx, v[7], "source.state_dir", &o->state_dir))))
        return rc;

    yaml_node_t *tl = v[8];
    if (tl->type != YAML_SEQUENCE_NODE ||
        tl->data.sequence.items.top == tl->data.sequence.items.start)
        return cfg_fail(cx, tl->start_mark,
                        "source.tables is %s (expected a non-empty list of {table, mode, ...}, "
                        "one per mapped table)",
                        tl->type == YAML_SEQUENCE_NODE ? "an empty list" : siphon_yamlx_kind(tl));
    int n = (int)(tl->data.sequence.items.top - tl->data.sequence.items.start);
    if (!(o->tables = calloc((size_t)n, sizeof(*o->tables))))
        return SIPHON_ENOMEM;
    for (int i = 0; i < n; i++) {
        yaml_node_t *t = cfg_node(cx, tl->data.sequence.items.start[i]), *tv[CFG_MAX_KEYS];
        struct siphon_config_odbc_table *ot = &o->tables[i];
        char where[64], path[96];
        int mode = 0;
        o->ntables++;
        snprintf(where, sizeof(where), "in source.tables[%d]", i);
        snprintf(path, sizeof(path), "source.tables[%d]", i);
        if ((rc = cfg_section(cx, t, path, "table settings: table, mode, ...")) ||
            (rc = cfg_walk(cx, t, where, tkeys, 5, tv)))
            return rc;
        snprintf(path, sizeof(path), "source.tables[%d].table", i);
        if ((rc = cfg_str(cx, tv[0], path, 0, 0, &ot->table)))
            return rc;
        for (int j = 0; j < i; j++)
            if (strcmp(o->tables[j].table, ot->table) == 0)
                return cfg_fail(cx, tv[0]->start_mark,
                                "source.tables[%d] repeats table '%.64s' of source.tables[%d] "
                                "(expected each table once)", i, ot->table, j);
        snprintf(path, sizeof(path), "source.tables[%d].mode", i);
        if ((rc = cfg_choice(cx, tv[1], path, 0, modes, &mode)))
            return rc;
        if (!(ot->mode = strdup(modes[mode])))
            return SIPHON_ENOMEM;
        snprintf(path, sizeof(path), "source.tables[%d].timestamp_column", i);
        if (tv[2] && (rc = cfg_str(cx, tv[2], path, 0, 0, &ot->timestamp_column)))
            return rc;
        snprintf(path, sizeof(path), "source.tables[%d].incrementing_column", i);
        if (tv[3] && (rc = cfg_str(cx, tv[3], path, 0, 0, &ot->incrementing_column)))
            return rc;
        snprintf(path, sizeof(path), "source.tables[%d].key_columns", i);
        if (tv[4] && (rc = cfg_str_list(cx, tv[4], path, &ot->key_columns, &ot->nkey_columns)))
            return rc;
        int need_ts = mode == 1 || mode == 2, need_inc = mode == 0 || mode == 2;
        if (need_ts && !ot->timestamp_column)
            return cfg_fail(cx, t->start_mark,
                            "missing required key 'timestamp_column' in source.tables[%d] "
                            "(expected the last-modified column for mode %s)", i, modes[mode]);
        if (need_inc && !ot->incrementing_column)
            return cfg_fail(cx, t->start_mark,
                            "missing required key 'incrementing_column' in source.tables[%d] "
                            "(expected a strictly increasing column for mode %s)", i,
                            modes[mode]);
    }
    return 0;
}

static int cfg_source(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"type", "type: postgres, type: mysql or type: odbc"},
        {"conninfo", NULL},
        {"slot", NULL},
        {"publication", NULL},
        {"create_slot", NULL},
        {"create_publication", NULL},
        {"status_interval_ms", NULL},
        {"snapshot", NULL},
        {"snapshot_connections", NULL},
        {"snapshot_chunk_rows", NULL},
    };
    static const char *const types[] = {"postgres", "mysql", "odbc", NULL};
    yaml_node_t *v[CFG_MAX_KEYS];
    int type = 0, rc;

    if ((rc = cfg_section(cx, sec, "source", "source settings: type, conninfo, ...")))
        return rc;
    const char *peek = cfg_peek(cx, sec, "type");
    if (peek && strcmp(peek, "mysql") == 0)
        return cfg_source_mysql(cx, sec, cfg);
    if (peek && strcmp(peek, "odbc") == 0)
        return cfg_source_odbc(cx, sec, cfg);
    if ((rc = cfg_walk(cx, sec, "in source", keys, 10, v)) ||
        (rc = cfg_choice(cx, v[0], "source.type", 0, types, &type)))
        return rc;
    if (!(cfg->source.type = strdup(types[type])))
        return SIPHON_ENOMEM;
    if (!v[1])
        return cfg_fail(cx, sec->start_mark,
                        "missing required key 'conninfo' in source (expected conninfo: "
                        "\"host=... dbname=... user=... password=${PASSWORD}\" for type %s)",
                        types[type]);
    if ((rc = cfg_str(cx, v[1], "source.conninfo", 0, 1, &cfg->source.conninfo)))
        return rc;
    if (v[2]) {
        if ((rc = cfg_str(cx, v[2], "source.slot", 1, 0, &cfg->source.slot)))
            return rc;
        if (!valid_slot_name(cfg->source.slot))
            return cfg_fail(cx, v[2]->start_mark,
                            "wrong value for source.slot: '%.64s' is not a valid replication "
                            "slot name (expected lower-case letters, digits and _, at most 63)",
                            cfg->source.slot);
    }
    if (v[3]) {
        if ((rc = cfg_str(cx, v[3], "source.publication", 1, 0, &cfg->source.publication)))
            return rc;
        if (strlen(cfg->source.publication) > PG_NAMEDATALEN)
            return cfg_fail(cx, v[3]->start_mark,
                            "wrong value for source.publication: the name is longer than 63 "
                            "bytes (expected a Postgres identifier)");
    }
    if (v[4] && (rc = cfg_bool(cx, v[4], "source.create_slot", &cfg->source.create_slot)))
        return rc;
    if (v[5] && (rc = cfg_bool(cx, v[5], "source.create_publication",
                               &cfg->source.create_publication)))
        return rc;
    if (v[6] && (rc = cfg_int(cx, v[6], "source.status_interval_ms", 1, INT_MAX,
                              "a whole number of milliseconds, at least 1, e.g. 1000",
                              &cfg->source.status_interval_ms)))
        return rc;
    return cfg_snapshot_keys(cx, v + 7, cfg);
}

static int cfg_props(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    int rc = cfg_section(cx, sec, "sink.properties",
                         "librdkafka properties, e.g. bootstrap.servers: \"broker:9092\"");
    if (rc)
        return rc;
    int n = (int)(sec->data.mapping.pairs.top - sec->data.mapping.pairs.start);
    if (n == 0)
        return 0;
    if (!(cfg->sink.props = calloc((size_t)n, sizeof(siphon_kv_t))))
        return SIPHON_ENOMEM;
    for (yaml_node_pair_t *p = sec->data.mapping.pairs.start; p < sec->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = cfg_node(cx, p->key), *v = cfg_node(cx, p->value);
        char shown[64], path[160];
        if (k->type != YAML_SCALAR_NODE || siphon_yamlx_is_null(k))
            return cfg_fail(cx, k->start_mark,
                            "a key in sink.properties is %s (expected a librdkafka property "
                            "name such as bootstrap.servers)",
                            siphon_yamlx_kind(k));
        const char *ks = (const char *)k->data.scalar.value;
        for (int i = 0; i < cfg->sink.nprops; i++)
            if (strcmp(cfg->sink.props[i].key, ks) == 0)
                return cfg_fail(cx, k->start_mark,
                                "duplicate key '%s' in sink.properties (expected each property "
                                "once)",
                                cfg_show(k, shown, sizeof(shown)));
        snprintf(path, sizeof(path), "sink.properties.%s", cfg_show(k, shown, sizeof(shown)));
        siphon_kv_t *kv = &cfg->sink.props[cfg->sink.nprops];
        if (!(kv->key = strdup(ks)))
            return SIPHON_ENOMEM;
        cfg->sink.nprops++;
        if ((rc = cfg_str(cx, v, path, 0, 1, &kv->value)))
            return rc;
    }
    return 0;
}

static int cfg_registry(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"url", "url: <base URL of the Schema Registry>, e.g. url: https://registry:8081"},
        {"username", NULL},
        {"password", NULL},
        {"ca_location", NULL},
        {"cert_location", NULL},
        {"key_location", NULL},
        {"key_password", NULL},
        {"ssl_verify", NULL},
        {"timeout_ms", NULL},
        {"retry_backoff_ms", NULL},
        {"retry_backoff_max_ms", NULL},
    };
    struct siphon_config_registry *r = &cfg->sink.registry;
    yaml_node_t *v[CFG_MAX_KEYS];
    int rc;
    if ((rc = cfg_section(cx, sec, "sink.schema_registry",
                          "Schema Registry settings: url, username, password, ...")) ||
        (rc = cfg_walk(cx, sec, "in sink.schema_registry", keys, 11, v)) ||
        (rc = cfg_str(cx, v[0], "sink.schema_registry.url", 0, 0, &r->url)))
        return rc;
    if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0)
        return cfg_fail(cx, v[0]->start_mark,
                        "wrong value for sink.schema_registry.url: it does not start with "
                        "http:// or https:// (expected a base URL such as "
                        "https://registry:8081)");
    if ((v[1] && (rc = cfg_str(cx, v[1], "sink.schema_registry.username", 0, 0,
                               &r->username))) ||
        (v[2] && (rc = cfg_str(cx, v[2], "sink.schema_registry.password", 0, 1,
                               &r->password))) ||
        (v[3] && (rc = cfg_path(cx, v[3], "sink.schema_registry.ca_location",
                                &r->ca_location))) ||
        (v[4] && (rc = cfg_path(cx, v[4], "sink.schema_registry.cert_location",
                                &r->cert_location))) ||
        (v[5] && (rc = cfg_path(cx, v[5], "sink.schema_registry.key_location",
                                &r->key_location))) ||
        (v[6] && (rc = cfg_str(cx, v[6], "sink.schema_registry.key_password", 0, 1,
                               &r->key_password))) ||
        (v[7] && (rc = cfg_bool(cx, v[7], "sink.schema_registry.ssl_verify", &r->ssl_verify))) ||
        (v[8] && (rc = cfg_int(cx, v[8], "sink.schema_registry.timeout_ms", 100, 600000,
                               "milliseconds from 100 to 600000, e.g. 5000",
                               &r->timeout_ms))) ||
        (v[9] && (rc = cfg_int(cx, v[9], "sink.schema_registry.retry_backoff_ms", 10, 600000,
                               "milliseconds from 10 to 600000, e.g. 500",
                               &r->retry_backoff_ms))) ||
        (v[10] && (rc = cfg_int(cx, v[10], "sink.schema_registry.retry_backoff_max_ms", 10,
                                3600000, "milliseconds from 10 to 3600000, e.g. 10000",
                                &r->retry_backoff_max_ms))))
        return rc;
    if (!!r->username != !!r->password)
        return cfg_fail(cx, sec->start_mark,
                        "sink.schema_registry has a %s without a %s (expected both for HTTP "
                        "basic authentication, or neither)",
                        r->username ? "username" : "password",
                        r->username ? "password" : "username");
    if (!!r->cert_location != !!r->key_location)
        return cfg_fail(cx, sec->start_mark,
                        "sink.schema_registry has a %s without a %s (expected both for a client "
                        "certificate, or neither)",
                        r->cert_location ? "cert_location" : "key_location",
                        r->cert_location ? "key_location" : "cert_location");
    if (r->retry_backoff_max_ms < r->retry_backoff_ms)
        r->retry_backoff_max_ms = r->retry_backoff_ms;
    return 0;
}

static int cfg_sink(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"type", "type: kafka, type: file or type: stdout"},
        {"topic_prefix", NULL},
        {"tombstones", NULL},
        {"properties", NULL},
        {"path", NULL},
        {"roll_bytes", NULL},
        {"roll_ms", NULL},
        {"format", NULL},
        {"schema_registry", NULL},
    };
    static const char *const types[] = {"kafka", "stdout", "file", NULL};
    /* in the order of SIPHON_SINK_FORMAT_* */
    static const char *const formats[] = {"single_object", "confluent", NULL};
    yaml_node_t *v[CFG_MAX_KEYS];
    int type = 0, rc;

    if ((rc = cfg_section(cx, sec, "sink", "sink settings: type, topic_prefix, ...")) ||
        (rc = cfg_walk(cx, sec, "in sink", keys, 9, v)) ||
        (rc = cfg_choice(cx, v[0], "sink.type", 0, types, &type)))
        return rc;
    if (!(cfg->sink.type = strdup(types[type])))
        return SIPHON_ENOMEM;
    if (v[1]) {
        if ((rc = cfg_str(cx, v[1], "sink.topic_prefix", 1, 0, &cfg->sink.topic_prefix)))
            return rc;
    } else if (type == 0) {
        return cfg_fail(cx, sec->start_mark,
                        "missing required key 'topic_prefix' in sink (expected topic_prefix: "
                        "<prefix> for type kafka; topics are <prefix>.<entity>.v<version>)");
    } else if (!(cfg->sink.topic_prefix = strdup(cfg->name))) {
        return SIPHON_ENOMEM;
    }
    if (v[2] && (rc = cfg_bool(cx, v[2], "sink.tombstones", &cfg->sink.tombstones)))
        return rc;
    if (v[3] && (rc = cfg_props(cx, v[3], cfg)))
        return rc;
    if (v[4]) {
        if ((rc = cfg_path(cx, v[4], "sink.path", &cfg->sink.path)))
            return rc;
    } else if (type == 2) {
        return cfg_fail(cx, sec->start_mark,
                        "missing required key 'path' in sink (expected path: <folder> for type "
                        "file; one Avro container file series per stream is written there)");
    }
    if (v[5] && (rc = cfg_llong(cx, v[5], "sink.roll_bytes", 4096, LLONG_MAX,
                                "a size in bytes, at least 4096, e.g. 67108864",
                                &cfg->sink.roll_bytes)))
        return rc;
    if (v[6] && (rc = cfg_int(cx, v[6], "sink.roll_ms", 100, INT_MAX,
                              "a whole number of milliseconds, at least 100, e.g. 60000",
                              &cfg->sink.roll_ms)))
        return rc;
    if (v[7] && (rc = cfg_choice(cx, v[7], "sink.format", 0, formats, &cfg->sink.format)))
        return rc;
    if (cfg->sink.format == SIPHON_SINK_FORMAT_CONFLUENT && type != 0)
        return cfg_fail(cx, v[7]->start_mark,
                        "sink.format confluent is for type kafka (expected format: "
                        "single_object, or leave it out, for type %s)", types[type]);
    if (v[8]) {
        if (cfg->sink.format != SIPHON_SINK_FORMAT_CONFLUENT)
            return cfg_fail(cx, v[8]->start_mark,
                            "sink.schema_registry is set but sink.format is not confluent "
                            "(expected format: confluent beside it, or no schema_registry)");
        if ((rc = cfg_registry(cx, v[8], cfg)))
            return rc;
    } else if (cfg->sink.format == SIPHON_SINK_FORMAT_CONFLUENT) {
        return cfg_fail(cx, v[7]->start_mark,
                        "sink.format is confluent but there is no sink.schema_registry "
                        "(expected schema_registry: {url: https://registry:8081, ...})");
    }
    return 0;
}

static int cfg_offsets(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"path", "path: <file where Siphon keeps its position>"},
        {"flush_interval_ms", NULL},
    };
    yaml_node_t *v[CFG_MAX_KEYS];
    int rc;
    if ((rc = cfg_section(cx, sec, "offsets", "offsets settings: path, flush_interval_ms")) ||
        (rc = cfg_walk(cx, sec, "in offsets", keys, 2, v)) ||
        (rc = cfg_path(cx, v[0], "offsets.path", &cfg->offsets.path)))
        return rc;
    if (v[1] && (rc = cfg_int(cx, v[1], "offsets.flush_interval_ms", 1, INT_MAX,
                              "a whole number of milliseconds, at least 1, e.g. 1000",
                              &cfg->offsets.flush_interval_ms)))
        return rc;
    return 0;
}

static int cfg_pipeline(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {{"max_inflight_bytes", NULL}, {"transactions", NULL}};
    yaml_node_t *v[CFG_MAX_KEYS];
    int rc;
    if ((rc = cfg_section(cx, sec, "pipeline",
                          "pipeline settings: max_inflight_bytes, transactions")) ||
        (rc = cfg_walk(cx, sec, "in pipeline", keys, 2, v)))
        return rc;
    if (v[1] && (rc = cfg_bool(cx, v[1], "pipeline.transactions", &cfg->pipeline.transactions)))
        return rc;
    if (v[0] && (rc = cfg_llong(cx, v[0], "pipeline.max_inflight_bytes", 1, LLONG_MAX,
                                "a number of bytes, at least 1, e.g. 67108864 for 64 MiB",
                                &cfg->pipeline.max_inflight_bytes)))
        return rc;
    return 0;
}

static int cfg_log(cfg_ctx_t *cx, yaml_node_t *sec, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {{"level", NULL}, {"format", NULL}};
    static const char *const levels[] = {"error", "warning", "notice", "info", "debug", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    yaml_node_t *v[CFG_MAX_KEYS];
    int rc, idx = 0;
    if ((rc = cfg_section(cx, sec, "log", "log settings: level, format")) ||
        (rc = cfg_walk(cx, sec, "in log", keys, 2, v)))
        return rc;
    if (v[0]) {
        if ((rc = cfg_choice(cx, v[0], "log.level", 1, levels, &idx)))
            return rc;
        cfg->log.level = siphon_log_level_parse(levels[idx]);
    }
    if (v[1]) {
        if ((rc = cfg_choice(cx, v[1], "log.format", 1, formats, &idx)))
            return rc;
        cfg->log.json = idx == 1;
    }
    return 0;
}

static int cfg_root(cfg_ctx_t *cx, yaml_node_t *root, siphon_config_t *cfg)
{
    static const cfg_key_t keys[] = {
        {"name", "name: <connector name>, e.g. name: erp-orders"},
        {"source", "a source: section with type: postgres and conninfo"},
        {"mappings", NULL},
        {"schemas", NULL},
        {"sink", "a sink: section with type: kafka, type: file or type: stdout"},
        {"offsets", "an offsets: section with path: <file>"},
        {"pipeline", NULL},
        {"log", NULL},
        {"schema_compatibility", NULL},
    };
    /* in the order of siphon_avro_compat_mode_t (src/avro/siphon_avro.h) */
    static const char *const compat[] = {"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                                         "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE",
                                         "NONE", NULL};
    yaml_node_t *v[CFG_MAX_KEYS];
    int rc;

    if (root->type != YAML_MAPPING_NODE)
        return cfg_fail(cx, root->start_mark,
                        "the configuration is %s (expected a mapping with name, source, sink "
                        "and offsets)",
                        siphon_yamlx_kind(root));
    if ((rc = cfg_walk(cx, root, "at the top level", keys, 9, v)) ||
        (rc = cfg_str(cx, v[0], "name", 0, 0, &cfg->name)) ||
        (rc = cfg_source(cx, v[1], cfg)))
        return rc;
    if (v[2]) {
        if ((rc = cfg_path(cx, v[2], "mappings", &cfg->mappings_dir)))
            return rc;
    } else if (!(cfg->mappings_dir = siphon_config__resolve(cx->basedir, "mappings"))) {
        return SIPHON_ENOMEM;
    }
    if (v[3]) {
        if ((rc = cfg_path(cx, v[3], "schemas", &cfg->schemas_dir)))
            return rc;
    } else if (!(cfg->schemas_dir = siphon_config__resolve(cx->basedir, "schemas"))) {
        return SIPHON_ENOMEM;
    }
    if ((rc = cfg_sink(cx, v[4], cfg)) || (rc = cfg_offsets(cx, v[5], cfg)))
        return rc;
    if (v[6] && (rc = cfg_pipeline(cx, v[6], cfg)))
        return rc;
    if (v[7] && (rc = cfg_log(cx, v[7], cfg)))
        return rc;
    if (v[8] && (rc = cfg_choice(cx, v[8], "schema_compatibility", 0, compat,
                                 &cfg->schema_compatibility)))
        return rc;

    if (!cfg->source.slot && !(cfg->source.slot = siphon_config__default_slot(cfg->name)))
        return SIPHON_ENOMEM;
    if (!cfg->source.publication && !(cfg->source.publication = strdup(cfg->source.slot)))
        return SIPHON_ENOMEM;
    return 0;
}

/* ---- public entry points ---- */

int siphon_config_parse(siphon_config_t **out, const char *text, size_t len, const char *name,
                        const char *basedir, char *errbuf, size_t errsize)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int have_parser = 0, have_doc = 0, rc = 0;
    siphon_config_t *cfg = NULL;
    cfg_ctx_t cx = {name ? name : "siphon.yaml", basedir, text, len, &doc, errbuf, errsize};

    if (!out || !text)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not load configuration: no text given");
    *out = NULL;
    if (errbuf && errsize)
        errbuf[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory while loading %s",
                        cx.name);
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_mark_t m = parser.problem_mark;
        if (parser.error == YAML_MEMORY_ERROR) {
            rc = siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory while loading %s",
                            cx.name);
            goto out;
        }
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s:%zu:%zu: could not parse the configuration: %s%s%s (expected valid "
                        "YAML: check the indentation, use spaces not tabs, quote values with "
                        "': ' or '#')",
                        cx.name, m.line + 1, m.column + 1,
                        parser.problem ? parser.problem : "syntax error",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s:1:1: the configuration is empty (expected a mapping with name, "
                        "source, sink and offsets)",
                        cx.name);
        goto out;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        yaml_mark_t m = parser.problem_mark;
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "%s:%zu:%zu: could not parse the configuration: %s (expected a single "
                        "YAML document)",
                        cx.name, m.line + 1, m.column + 1,
                        parser.problem ? parser.problem : "syntax error");
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second) {
        yaml_mark_t m = second->start_mark;
        yaml_document_delete(&extra);
        rc = cfg_fail(&cx, m, "a second YAML document (expected a single document: remove "
                              "the '---' line)");
        goto out;
    }
    yaml_document_delete(&extra);

    if (!(cfg = calloc(1, sizeof(*cfg))) || !(cfg->path = strdup(cx.name))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    cfg->source.create_slot = 1;
    cfg->source.create_publication = 1;
    cfg->source.status_interval_ms = CFG_DEFAULT_INTERVAL_MS;
    cfg->source.snapshot = SIPHON_SNAPSHOT_INITIAL;
    cfg->source.snapshot_connections = 2;
    cfg->source.snapshot_chunk_rows = 10000;
    cfg->sink.tombstones = 1;
    cfg->sink.roll_bytes = 64LL << 20;
    cfg->sink.roll_ms = 60000;
    cfg->sink.registry.ssl_verify = 1;
    cfg->sink.registry.timeout_ms = 5000;
    cfg->sink.registry.retry_backoff_ms = 500;
    cfg->sink.registry.retry_backoff_max_ms = 10000;
    cfg->offsets.flush_interval_ms = CFG_DEFAULT_INTERVAL_MS;
    cfg->pipeline.max_inflight_bytes = CFG_DEFAULT_INFLIGHT;
    cfg->log.level = SIPHON_LOG_INFO;
    cfg->log.json = 0;
    rc = cfg_root(&cx, root, cfg);

out:
    if (rc == SIPHON_ENOMEM && errbuf && errsize && !errbuf[0])
        siphon_err(errbuf, errsize, rc, "out of memory while loading %s", cx.name);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    if (rc) {
        siphon_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int siphon_config_load(siphon_config_t **out, const char *path, char *errbuf, size_t errsize)
{
    siphon_buf_t text = {0};
    char *dir = NULL, *absdir = NULL;
    FILE *f = NULL;
    int rc = 0;

    if (!out || !path)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not load configuration: no file given");
    *out = NULL;
    if (errbuf && errsize)
        errbuf[0] = '\0';
    if (!(f = fopen(path, "rb"))) {
        rc = siphon_err(errbuf, errsize, errno == ENOENT ? SIPHON_ENOTFOUND : SIPHON_EIO,
                        "could not open configuration file '%s': %s (expected a readable "
                        "siphon.yaml; pass its path with --config)",
                        path, strerror(errno));
        goto out;
    }
    for (;;) {
        if ((rc = siphon_buf_reserve(&text, 65536)))
            goto out;
        size_t n = fread(text.data + text.len, 1, text.cap - text.len, f);
        text.len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not read configuration file '%s': %s",
                        path, strerror(errno));
        goto out;
    }

    const char *slash = strrchr(path, '/');
    if (slash)
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    else
        dir = strdup(".");
    if (!dir) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    /* Absolute, so the paths stay right if the process changes directory later. */
    absdir = realpath(dir, NULL);
    rc = siphon_config_parse(out, text.len ? (const char *)text.data : "", text.len, path,
                             absdir ? absdir : dir, errbuf, errsize);

out:
    if (rc == SIPHON_ENOMEM && errbuf && errsize && !errbuf[0])
        siphon_err(errbuf, errsize, rc, "out of memory while loading %s", path);
    if (f)
        fclose(f);
    siphon_buf_free(&text);
    free(dir);
    free(absdir);
    return rc;
}

void siphon_config_destroy(siphon_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->name);
    free(cfg->source.type);
    free(cfg->source.conninfo);
    free(cfg->source.slot);
    free(cfg->source.publication);
    free(cfg->odbc.dsn);
    free(cfg->odbc.state_dir);
    for (int i = 0; i < cfg->odbc.ntables; i++) {
        struct siphon_config_odbc_table *t = &cfg->odbc.tables[i];
        free(t->table);
        free(t->mode);
        free(t->timestamp_column);
        free(t->incrementing_column);
        for (int j = 0; j < t->nkey_columns; j++)
            free(t->key_columns[j]);
        free(t->key_columns);
    }
    free(cfg->odbc.tables);
    free(cfg->mappings_dir);
    free(cfg->schemas_dir);
    free(cfg->sink.type);
    free(cfg->sink.topic_prefix);
    for (int i = 0; i < cfg->sink.nprops; i++) {
        free(cfg->sink.props[i].key);
        free(cfg->sink.props[i].value);
    }
    free(cfg->sink.props);
    free(cfg->sink.path);
    free(cfg->sink.registry.url);
    free(cfg->sink.registry.username);
    free(cfg->sink.registry.password);
    free(cfg->sink.registry.ca_location);
    free(cfg->sink.registry.cert_location);
    free(cfg->sink.registry.key_location);
    free(cfg->sink.registry.key_password);
    free(cfg->offsets.path);
    free(cfg);
}

/* ---- helpers shared with tests ---- */

char *siphon_config__default_slot(const char *name)
{
    static const char prefix[] = "siphon_";
    size_t n = strlen(name);
    size_t max = PG_NAMEDATALEN - (sizeof(prefix) - 1);
    if (n > max)
        n = max;
    char *s = malloc(sizeof(prefix) + n);
    if (!s)
        return NULL;
    memcpy(s, prefix, sizeof(prefix) - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        s[sizeof(prefix) - 1 + i] = (c < 0x80 && isalnum(c)) ? (char)tolower(c) : '_';
    }
    s[sizeof(prefix) - 1 + n] = '\0';
    return s;
}

char *siphon_config__resolve(const char *basedir, const char *rel)
{
    if (!basedir || rel[0] == '/')
        return strdup(rel);
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    size_t bl = strlen(basedir);
    while (bl > 1 && basedir[bl - 1] == '/')
        bl--;
    size_t rl = strlen(rel);
    char *s = malloc(bl + 1 + rl + 1);
    if (!s)
        return NULL;
    memcpy(s, basedir, bl);
    size_t o = bl;
    if (!(bl == 1 && basedir[0] == '/'))
        s[o++] = '/';
    memcpy(s + o, rel, rl + 1);
    if (rl == 0 || (rl == 1 && rel[0] == '.'))
        s[bl] = '\0';
    return s;
}

/* ---- interpolation ---- */

/* Read a whole (small) file into b, dropping one trailing newline. */
static int interp_file(siphon_buf_t *b, const char *path, const char *basedir, char *errbuf,
                       size_t errsize)
{
    char *full = siphon_config__resolve(basedir, path);
    FILE *f = NULL;
    int rc = 0;
    size_t start = b->len;

    if (!full)
        return SIPHON_ENOMEM;
    if (!(f = fopen(full, "rb"))) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not read file '%s' named in ${file:...}: %s (expected a readable "
                        "file holding the value)",
                        full, strerror(errno));
        goto out;
    }
    for (;;) {
        if ((rc = siphon_buf_reserve(b, 4096)))
            goto out;
        size_t n = fread(b->data + b->len, 1, b->cap - b->len, f);
        b->len += n;
        if (b->len - start > SIPHON_CONFIG_FILE_MAX) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "file '%s' named in ${file:...} is larger than 1 MiB (expected a "
                            "small file holding the value)",
                            full);
            goto out;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not read file '%s' named in ${file:...}: %s (expected a readable "
                        "file holding the value)",
                        full, strerror(errno));
        goto out;
    }
    if (memchr(b->data + start, '\0', b->len - start)) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "file '%s' named in ${file:...} contains a NUL byte (expected text)",
                        full);
        goto out;
    }
    if (b->len > start && b->data[b->len - 1] == '\n') {
        b->len--;
        if (b->len > start && b->data[b->len - 1] == '\r')
            b->len--;
    }
out:
    if (rc)
        b->len = start;
    if (f)
        fclose(f);
    free(full);
    return rc;
}

static int valid_var_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

int siphon_config__interpolate(char **out, const char *in, size_t len, const char *basedir,
                               size_t *erroff, char *errbuf, size_t errsize)
{
    siphon_buf_t b = {0};
    char name[256];
    size_t i = 0;
    int rc = 0;

    *out = NULL;
    while (i < len) {
        if (in[i] != '$') {
            const char *d = memchr(in + i, '$', len - i);
            size_t n = d ? (size_t)(d - (in + i)) : len - i;
            if ((rc = siphon_buf_append(&b, in + i, n)))
                goto out;
            i += n;
            continue;
        }
        if (i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') {
            if ((rc = siphon_buf_append(&b, "${", 2)))
                goto out;
            i += 3;
            continue;
        }
        if (!(i + 1 < len && in[i + 1] == '{')) {
            if ((rc = siphon_buf_appendc(&b, '$')))
                goto out;
            i++;
            continue;
        }
        const char *ref = in + i + 2;
        const char *end = memchr(ref, '}', len - (i + 2));
        if (erroff)
            *erroff = i;
        if (!end) {
            rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                            "'${' is not closed (expected ${NAME} or ${file:/path}; write $${ "
                            "for a literal ${)");
            goto out;
        }
        size_t rn = (size_t)(end - ref);
        if (rn >= 5 && memcmp(ref, "file:", 5) == 0) {
            if (rn == 5 || rn - 5 >= sizeof(name)) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "'${file:}' names no file (expected ${file:/path/to/secret})");
                goto out;
            }
            memcpy(name, ref + 5, rn - 5);
            name[rn - 5] = '\0';
            if ((rc = interp_file(&b, name, basedir, errbuf, errsize)))
                goto out;
        } else {
            if (!valid_var_name(ref, rn) || rn >= sizeof(name)) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "'${%.*s}' is not a valid reference (expected ${NAME} with "
                                "letters, digits and _, or ${file:/path}; write $${ for a "
                                "literal ${)",
                                (int)(rn > 64 ? 64 : rn), ref);
                goto out;
            }
            memcpy(name, ref, rn);
            name[rn] = '\0';
            const char *val = getenv(name);
            if (!val) {
                rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                "environment variable '%s' is not set (expected it in Siphon's "
                                "environment; write $${ for a literal ${)",
                                name);
                goto out;
            }
            if ((rc = siphon_buf_append(&b, val, strlen(val))))
                goto out;
        }
        i = (size_t)(end - in) + 1;
    }
    if ((rc = siphon_buf_appendc(&b, '\0')))
        goto out;
    *out = (char *)b.data;
    b.data = NULL;
out:
    if (rc == SIPHON_ENOMEM)
        siphon_err(errbuf, errsize, rc, "out of memory while interpolating");
    siphon_buf_free(&b);
    return rc;
}

int siphon_config_interpolate(char **out, const char *in, char *errbuf, size_t errsize)
{
    char reason[512];
    if (!out || !in)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not interpolate value: no text given");
    int rc = siphon_config__interpolate(out, in, strlen(in), NULL, NULL, reason, sizeof(reason));
    if (rc)
        return siphon_err(errbuf, errsize, rc, "could not interpolate value: %s", reason);
    return 0;
}

/* ---- redaction ---- */

typedef struct redact_out {
    char *buf;
    size_t size, len;
} redact_out_t;

static void rd_put(redact_out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->size; i++)
        o->buf[o->len++] = s[i];
}

static int is_secret_key(const char *k, size_t n)
{
    return (n == 8 && strncasecmp(k, "password", 8) == 0) ||
           (n == 11 && strncasecmp(k, "sslpassword", 11) == 0);
}

static const char stars[] = "********";

/* postgresql://user:secret@host/db?password=x&sslmode=require */
static void redact_uri(redact_out_t *o, const char *s, size_t plen)
{
    rd_put(o, s, plen);
    const char *p = s + plen;
    const char *q = p;
    /* libpq: user credentials end at the first '@' before any '/' */
    while (*q && *q != '@' && *q != '/')
        q++;
    if (*q == '@') {
        const char *colon = memchr(p, ':', (size_t)(q - p));
        if (colon) {
            rd_put(o, p, (size_t)(colon - p) + 1);
            rd_put(o, stars, 8);
            p = q;
        }
    }
    const char *qm = strchr(p, '?');
    if (!qm) {
        rd_put(o, p, strlen(p));
        return;
    }
    rd_put(o, p, (size_t)(qm - p) + 1);
    p = qm + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq && is_secret_key(p, (size_t)(eq - p))) {
            rd_put(o, p, (size_t)(eq - p) + 1);
            rd_put(o, stars, 8);
        } else {
            rd_put(o, p, n);
        }
        p += n;
        if (*p == '&')
            rd_put(o, p++, 1);
    }
}

/* host=db password='se cret' user=x : keyword = value, values optionally single-quoted with
 * backslash escapes, as libpq reads them. */
static void redact_kv(redact_out_t *o, const char *s)
{
    const char *p = s;
    while (*p) {
        const char *start = p;
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *kw = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kwlen = (size_t)(p - kw);
        while (*p && isspace((unsigned char)*p))
            p++;
        int secret = is_secret_key(kw, kwlen);
        if (*p != '=') {
            /* malformed: libpq would refuse it; never print what may follow a password */
            if (secret) {
                rd_put(o, start, (size_t)(kw - start) + kwlen);
                rd_put(o, " ", 1);
                rd_put(o, stars, 8);
            } else {
                rd_put(o, start, strlen(start));
            }
            return;
        }
        p++;
        while (*p && isspace((unsigned char)*p))
            p++;
        rd_put(o, start, (size_t)(p - start));
        const char *val = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p == '\'')
                p++;
        } else {
            while (*p && !isspace((unsigned char)*p)) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
        }
        if (secret)
            rd_put(o, stars, 8);
        else
            rd_put(o, val, (size_t)(p - val));
    }
}

void siphon_config_redact(const char *conninfo, char *buf, size_t size)
{
    redact_out_t o = {buf, size, 0};
    if (!buf || size == 0)
        return;
    if (conninfo) {
        if (strncmp(conninfo, "postgresql://", 13) == 0)
            redact_uri(&o, conninfo, 13);
        else if (strncmp(conninfo, "postgres://", 11) == 0)
            redact_uri(&o, conninfo, 11);
        else
            redact_kv(&o, conninfo);
    }
    buf[o.len] = '\0';
}
