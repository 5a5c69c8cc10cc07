/*
 * 0100-mysql-types - the MySQL connector against a throwaway MariaDB 10.11, driven in-process
 * through its callback table (open, describe, next): every column type decoded from the binlog
 * (v1 row events, binlog_row_metadata=FULL) and compared, value by value, with what the server
 * returns for a SELECT of the same row.
 *
 * The table has one column of every type the connector decodes, filled with edge values:
 * negative and maximal integers, unsigned maxima, DECIMAL(65,30), fractional seconds of every
 * precision, negative and >24 h TIMEs, zero dates, YEAR 0, NULLs, empty strings, multi-byte
 * UTF-8, latin1 (Windows-1252: the euro sign), BINARY padding, ENUM, SET, BIT(1), BIT(64) and
 * JSON. Then: an update's before and after images, a delete's before image, a transaction over
 * two mapped tables and an unmapped one (boundaries, GTID positions, the unmapped rows absent),
 * a binlog rotation (FLUSH BINARY LOGS) between transactions, and an ALTER TABLE ADD COLUMN
 * mid-stream (rows before and after it decoded with their own shapes).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "connectors/mysql/mysql.h"
#include "core/error.h"
#include "core/log.h"
#include "it_check.h"

/* How a column is compared: the SELECT expression and how our value is printed. */
typedef enum kind {
    K_PLAIN,  /* SELECT col: integers, decimals, text, dates, ENUM, SET, JSON */
    K_HEX,    /* SELECT HEX(col): binary strings */
    K_NUM,    /* SELECT col+0: BIT, YEAR */
    K_FLOAT,  /* SELECT CAST(col AS DOUBLE), compared as a double that is a float */
    K_DOUBLE, /* SELECT col, compared as a double */
    K_TIME,   /* SELECT col: [-]HH:MM:SS[.f], fsp digits */
    K_DT      /* SELECT col: YYYY-MM-DD HH:MM:SS[.f], fsp digits (DATETIME, TIMESTAMP) */
} kind_t;

typedef struct colspec {
    const char *name;
    const char *sqltype;
    kind_t kind;
    int fsp;
} colspec_t;

static const colspec_t cols[] = {
    {"id", "int NOT NULL PRIMARY KEY", K_PLAIN, 0},
    {"ti", "tinyint", K_PLAIN, 0},
    {"tiu", "tinyint unsigned", K_PLAIN, 0},
    {"si", "smallint", K_PLAIN, 0},
    {"siu", "smallint unsigned", K_PLAIN, 0},
    {"mi", "mediumint", K_PLAIN, 0},
    {"miu", "mediumint unsigned", K_PLAIN, 0},
    {"i", "int", K_PLAIN, 0},
    {"iu", "int unsigned", K_PLAIN, 0},
    {"bi", "bigint", K_PLAIN, 0},
    {"biu", "bigint unsigned", K_PLAIN, 0},
    {"d1", "decimal(10,2)", K_PLAIN, 0},
    {"d2", "decimal(65,30)", K_PLAIN, 0},
    {"d3", "decimal(18,0) unsigned", K_PLAIN, 0},
    {"d4", "decimal(5,5)", K_PLAIN, 0},
    {"f", "float", K_FLOAT, 0},
    {"db", "double", K_DOUBLE, 0},
    {"dt", "date", K_PLAIN, 0},
    {"tm", "time", K_TIME, 0},
    {"tm3", "time(3)", K_TIME, 3},
    {"tm6", "time(6)", K_TIME, 6},
    {"dtt", "datetime", K_DT, 0},
    {"dtt1", "datetime(1)", K_DT, 1},
    {"dtt4", "datetime(4)", K_DT, 4},
    {"dtt6", "datetime(6)", K_DT, 6},
    {"ts", "timestamp NULL DEFAULT NULL", K_DT, 0},
    {"ts2", "timestamp(2) NULL DEFAULT NULL", K_DT, 2},
    {"ts6", "timestamp(6) NULL DEFAULT NULL", K_DT, 6},
    {"yr", "year", K_NUM, 0},
    {"ch", "char(10) CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"chl", "char(5) CHARACTER SET latin1", K_PLAIN, 0},
    {"chw", "char(100) CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"vc", "varchar(20) CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"vcl", "varchar(300) CHARACTER SET latin1", K_PLAIN, 0},
    {"vcw", "varchar(2000) CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"tx", "text CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"ttx", "tinytext CHARACTER SET latin1", K_PLAIN, 0},
    {"mtx", "mediumtext CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"ltx", "longtext CHARACTER SET utf8mb4", K_PLAIN, 0},
    {"bn", "binary(4)", K_HEX, 0},
    {"vb", "varbinary(10)", K_HEX, 0},
    {"bl", "blob", K_HEX, 0},
    {"tbl", "tinyblob", K_HEX, 0},
    {"lbl", "longblob", K_HEX, 0},
    {"en", "enum('small','medium','large','é')", K_PLAIN, 0},
    {"st", "set('a','b','c','d','e','f','g','h','i')", K_PLAIN, 0},
    {"b1", "bit(1)", K_NUM, 0},
    {"b10", "bit(10)", K_NUM, 0},
    {"b64", "bit(64)", K_NUM, 0},
    {"js", "json", K_PLAIN, 0},
};
#define NCOLS ((int)(sizeof(cols) / sizeof(cols[0])))

/* Rows: SQL value lists in column order. */
static const char *const rows[] = {
    /* 1: minima and negative edges */
    "1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, "
    "-99999999.99, -99999999999999999999999999999999999.999999999999999999999999999999, 0, "
    "-0.99999, -3.4028234e38, -1.7976931348623157e308, '1000-01-01', '-838:59:59', "
    "'-838:59:59.999', '-00:00:01.500000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.1', "
    "'1000-01-01 00:00:00.0001', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', "
    "'1970-01-01 00:00:01.01', '1970-01-01 00:00:01.000001', 1901, '', '', '', '', '', '', "
    "'', '', '', '', x'00', x'', x'', x'', x'', 'small', '', b'0', b'0', b'0', '[]'",
    /* 2: maxima and unsigned maxima */
    "2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, "
    "9223372036854775807, 18446744073709551615, 99999999.99, "
    "99999999999999999999999999999999999.999999999999999999999999999999, "
    "999999999999999999, 0.99999, 3.4028234e38, 1.7976931348623157e308, '9999-12-31', "
    "'838:59:59', '838:59:59.999', '838:59:59.999999', '9999-12-31 23:59:59', "
    "'9999-12-31 23:59:59.9', '9999-12-31 23:59:59.9999', '9999-12-31 23:59:59.999999', "
    "'2038-01-19 03:14:07', '2038-01-19 03:14:07.99', '2038-01-19 03:14:07.999999', 2155, "
    "'ZZZZZZZZZZ', 'ÿÿÿÿÿ', REPEAT('漢', 100), REPEAT('z', 20), REPEAT('€', 300), "
    "REPEAT('ü', 2000), REPEAT('x', 65535), REPEAT('é', 255), REPEAT('m', 70000), "
    "REPEAT('l', 300000), x'FFFFFFFF', x'FFFFFFFFFFFFFFFFFFFF', REPEAT(x'AB', 65535), "
    "REPEAT(x'CD', 255), REPEAT(x'EF', 100000), 'é', 'a,b,c,d,e,f,g,h,i', b'1', "
    "b'1111111111', b'1111111111111111111111111111111111111111111111111111111111111111', "
    "'{\"k\": [1, 2.5, \"é\", null, true], \"n\": {\"m\": \"x\"}}'",
    /* 3: ordinary values, multi-byte text, zero dates, padding */
    "3, 0, 1, -1, 1, -1, 1, -1, 1, -1, 9223372036854775808, -0.01, "
    "0.000000000000000000000000000001, 1, 0.00001, 1.5, 0.1, '0000-00-00', '00:00:00', "
    "'12:34:56.789', '-00:00:00.000001', '0000-00-00 00:00:00', '2024-02-29 12:00:00.5', "
    "'0000-00-00 00:00:00.0000', '2024-02-29 23:59:59.123456', '0000-00-00 00:00:00', "
    "'2024-06-30 12:00:00.5', '2024-02-29 12:34:56.654321', 0, 'ßü漢字🙂', 'é€', "
    "'  lead', 'trail  ', 'Ǆ€‰', '🙂 emoji', 'line\\nbreak\\ttab', 'café', '', 'x', "
    "x'6100', x'00FF00', x'0102', x'', x'00', 'large', 'b,d', b'1', b'1000000001', "
    "b'1000000000000000000000000000000000000000000000000000000000000000', "
    "'{\"a\": \"\\\\u00e9\", \"b\": 1e300, \"c\": -0}'",
};
#define NROWS ((int)(sizeof(rows) / sizeof(rows[0])))

typedef struct state {
    th_my_t *my;
    siphon_config_t *cfg;
    siphon_source_t *src;
    char *dir;
} state_t;

/* One CHANGE record, copied out of its batch. */
typedef struct got {
    char op;
    uint64_t version;
    int ncols;
    char *names[80];
    char *before[80], *after[80]; /* printed values, NULL for SQL NULL; "(none)" image absent */
    double fb[80], fa[80];
    int has_before, has_after;
    char *table;
    char *pos;      /* BEGIN position of its transaction */
} got_t;

typedef struct rec {
    int kind; /* SIPHON_REC_* */
    char *pos;
    got_t *chg;
} rec_t;

static void got_free(got_t *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->ncols; i++) {
        free(g->names[i]);
        free(g->before[i]);
        free(g->after[i]);
    }
    free(g->table);
    free(g->pos);
    free(g);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* Our value printed the way the server prints the column (see kind_t). */
static char *print_value(const siphon_value_t *v, const colspec_t *cs, double *f)
{
    char buf[512];
    static const char hex[] = "0123456789ABCDEF";
    *f = 0;
    switch (v->type) {
    case SIPHON_V_NULL:
        return NULL;
    case SIPHON_V_BYTES: {
        char *s = malloc(2 * v->u.s.len + 1);
        for (size_t i = 0; i < v->u.s.len; i++) {
            s[2 * i] = hex[(unsigned char)v->u.s.ptr[i] >> 4];
            s[2 * i + 1] = hex[(unsigned char)v->u.s.ptr[i] & 15];
        }
        s[2 * v->u.s.len] = '\0';
        return s;
    }
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
        return strndup(v->u.s.ptr, v->u.s.len);
    case SIPHON_V_BOOL:
        return strdup(v->u.b ? "1" : "0");
    case SIPHON_V_FLOAT:
        *f = v->u.f;
        snprintf(buf, sizeof(buf), "%.17g", v->u.f);
        return strdup(buf);
    case SIPHON_V_TIME: {
        int64_t us = v->u.time_us;
        const char *sign = us < 0 ? "-" : "";
        if (us < 0)
            us = -us;
        int n = snprintf(buf, sizeof(buf), "%s%02" PRId64 ":%02" PRId64 ":%02" PRId64, sign,
                         us / 3600000000, us / 60000000 % 60, us / 1000000 % 60);
        if (cs->fsp) {
            char fr[8];
            snprintf(fr, sizeof(fr), "%06" PRId64, us % 1000000);
            snprintf(buf + n, sizeof(buf) - (size_t)n, ".%.*s", cs->fsp, fr);
        }
        return strdup(buf);
    }
    case SIPHON_V_TIMESTAMP: {
        int64_t us = v->u.ts.us, days = us / 86400000000LL, rem = us % 86400000000LL;
        if (rem < 0) {
            rem += 86400000000LL;
            days--;
        }
        int64_t y;
        unsigned m, d;
        civil(days, &y, &m, &d);
        int n = snprintf(buf, sizeof(buf), "%04" PRId64 "-%02u-%02u %02" PRId64 ":%02" PRId64
                         ":%02" PRId64, y, m, d, rem / 3600000000, rem / 60000000 % 60,
                         rem / 1000000 % 60);
        if (cs->fsp) {
            char fr[8];
            snprintf(fr, sizeof(fr), "%06" PRId64, rem % 1000000);
            snprintf(buf + n, sizeof(buf) - (size_t)n, ".%.*s", cs->fsp, fr);
        }
        return strdup(buf);
    }
    default: {
        char *s = malloc(1024);
        siphon_value_format(v, s, 1024);
        return s;
    }
    }
}

static const colspec_t *spec_of(const char *name)
{
    for (int i = 0; i < NCOLS; i++)
        if (strcmp(cols[i].name, name) == 0)
            return &cols[i];
    static const colspec_t plain = {"?", "?", K_PLAIN, 0};
    return &plain;
}

static got_t *copy_change(const siphon_change_t *c)
{
    got_t *g = calloc(1, sizeof(*g));
    g->op = (char)c->op;
    g->version = c->rel->version;
    g->ncols = c->rel->ncols;
    g->table = strdup(c->rel->name);
    g->pos = strdup(c->pos.text ? c->pos.text : "");
    assert_true(g->ncols <= 80);
    for (int i = 0; i < g->ncols; i++) {
        g->names[i] = strdup(c->rel->cols[i].name);
        const colspec_t *cs = spec_of(c->rel->cols[i].name);
        if (c->before) {
            g->has_before = 1;
            g->before[i] = print_value(&c->before->vals[i], cs, &g->fb[i]);
        }
        if (c->after) {
            g->has_after = 1;
            g->after[i] = print_value(&c->after->vals[i], cs, &g->fa[i]);
        }
    }
    return g;
}

/* Read records until `nchanges` CHANGE records arrived and the last record is of kind
 * `last` (a COMMIT, or the POSITION of a filtered transaction), or 20 s. Returns how many
 * records went into out. */
static int collect_until(state_t *s, rec_t *out, int cap, int nchanges, int last)
{
    int n = 0, changes = 0;
    int64_t until = th_now_ms() + 20000;
    char err[1024];
    while (th_now_ms() < until && n < cap) {
        siphon_batch_t b;
        int rc = siphon_mysql_source.next(s->src, &b, 200, err, sizeof(err));
        IT_CHECK(NULL, rc == 0, "next() failed: %s", err);
        for (int i = 0; i < b.n && n < cap; i++) {
            const siphon_change_t *c = &b.recs[i];
            rec_t *r = &out[n++];
            memset(r, 0, sizeof(*r));
            r->kind = (int)c->kind;
            r->pos = c->pos.text ? strdup(c->pos.text) : NULL;
            if (c->kind == SIPHON_REC_CHANGE) {
                r->chg = copy_change(c);
                changes++;
            }
        }
        if (changes >= nchanges && n > 0 && out[n - 1].kind == last)
            break;
    }
    return n;
}

static int collect(state_t *s, rec_t *out, int cap, int nchanges)
{
    return collect_until(s, out, cap, nchanges, SIPHON_REC_COMMIT);
}

static void recs_free(rec_t *r, int n)
{
    for (int i = 0; i < n; i++) {
        free(r[i].pos);
        got_free(r[i].chg);
    }
}

static char *select_list(void)
{
    size_t cap = 8192, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < NCOLS; i++) {
        const char *c = cols[i].name;
        if (cols[i].kind == K_HEX)
            o += (size_t)snprintf(s + o, cap - o, "%sHEX(`%s`)", i ? ", " : "", c);
        else if (cols[i].kind == K_FLOAT) /* a FLOAT prints with 6 digits: widen it exactly */
            o += (size_t)snprintf(s + o, cap - o, "%sCAST(`%s` AS DOUBLE)", i ? ", " : "", c);
        else if (cols[i].kind == K_NUM)
            o += (size_t)snprintf(s + o, cap - o, "%s`%s`+0", i ? ", " : "", c);
        else
            o += (size_t)snprintf(s + o, cap - o, "%s`%s`", i ? ", " : "", c);
    }
    return s;
}

/* The server's view of row id, one string per column (NULL for SQL NULL). */
static char **select_row(state_t *s, const char *table, int id, int *n)
{
    char *list = select_list();
    char **vals = NULL;
    int rc = th_my_row(s->my, &vals, NULL, n, "SELECT %s FROM it.%s WHERE id = %d", list, table,
                       id);
    free(list);
    IT_CHECK(NULL, rc == 1, "row %d of it.%s not found", id, table);
    return vals;
}

/* Compare an image with the server's row. */
static void expect_image(char **want, int nwant, const got_t *g, int after, const char *what)
{
    char **have = after ? (char **)g->after : (char **)g->before;
    const double *fv = after ? g->fa : g->fb;
    IT_CHECK(NULL, g->ncols == nwant, "%s: %d columns decoded, the server has %d", what,
             g->ncols, nwant);
    for (int i = 0; i < nwant; i++) {
        const colspec_t *cs = &cols[i];
        IT_CHECK(NULL, strcmp(g->names[i], cs->name) == 0, "%s: column %d is named \"%s\", "
                 "expected \"%s\"", what, i, g->names[i], cs->name);
        if (!want[i] || !have[i]) {
            IT_CHECK(NULL, !want[i] && !have[i], "%s: column %s: server %s, decoded %.80s",
                     what, cs->name, want[i] ? want[i] : "NULL", have[i] ? have[i] : "NULL");
            continue;
        }
        if (cs->kind == K_FLOAT) {
            double sw = strtod(want[i], NULL);
            IT_CHECK(NULL, fv[i] == sw && (double)(float)fv[i] == fv[i],
                     "%s: column %s: server %s, decoded %.9g", what, cs->name, want[i], fv[i]);
        } else if (cs->kind == K_DOUBLE) {
            double dw = strtod(want[i], NULL);
            IT_CHECK(NULL, fv[i] == dw, "%s: column %s: server %s, decoded %.17g", what,
                     cs->name, want[i], fv[i]);
        } else {
            IT_CHECK(NULL, strcmp(want[i], have[i]) == 0,
                     "%s: column %s (%s): server \"%.120s\" (%zu bytes), decoded \"%.120s\" "
                     "(%zu bytes)",
                     what, cs->name, cs->sqltype, want[i], strlen(want[i]), have[i],
                     strlen(have[i]));
        }
    }
}

static char *conf_text(state_t *s, const char *extra)
{
    return th_strf("name: it-types\n"
                   "source:\n  type: mysql\n  conninfo: \"%s\"\n  server_id: 4242\n"
                   "  heartbeat_interval_ms: 1000\n  snapshot: never\n%s"
                   "sink: {type: stdout}\n"
                   "offsets: {path: %s/offsets.json}\n",
                   th_my_conninfo(s->my), extra ? extra : "", s->dir);
}

static int setup(void **st)
{
    state_t *s = calloc(1, sizeof(*s));
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    s->my = th_my_start(NULL);
    if (!s->my)
        return -1;
    s->dir = th_tempdir();
    char *cols_sql = calloc(1, 8192);
    size_t o = 0;
    for (int i = 0; i < NCOLS; i++)
        o += (size_t)snprintf(cols_sql + o, 8192 - o, "%s`%s` %s", i ? ", " : "", cols[i].name,
                              cols[i].sqltype);
    int rc = th_my_exec(s->my,
                        "SET GLOBAL max_allowed_packet = 67108864; CREATE DATABASE it; "
                        "CREATE TABLE it.types (%s) ENGINE=InnoDB; "
                        "CREATE TABLE it.other (id int PRIMARY KEY, v varchar(10)); "
                        "CREATE TABLE it.unmapped (id int PRIMARY KEY, v varchar(10))",
                        cols_sql);
    free(cols_sql);
    if (rc != 0)
        return -1;
    char *text = conf_text(s, NULL), err[1024];
    rc = siphon_config_parse(&s->cfg, text, strlen(text), "siphon.yaml", s->dir, err, sizeof(err));
    free(text);
    if (rc != 0) {
        th_err("config: %s", err);
        return -1;
    }
    siphon_table_ref_t tables[] = {{"it", "types"}, {"it", "other"}};
    rc = siphon_mysql_source.open(&s->src, s->cfg, tables, 2, NULL, err, sizeof(err));
    if (rc != 0) {
        th_err("open: %s", err);
        th_my_dump_log(s->my, 30);
        return -1;
    }
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    state_t *s = *st;
    if (!s)
        return 0;
    siphon_mysql_source.close(s->src);
    siphon_config_destroy(s->cfg);
    th_my_destroy(s->my);
    if (s->dir)
        th_tempdir_remove(s->dir);
    free(s->dir);
    free(s);
    return 0;
}

/* The replica registered under its server id, and describe() sees the table's columns. */
static void test_registered_and_described(void **st)
{
    state_t *s = *st;
    char *v = th_my_value(s->my, NULL, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                       "WHERE COMMAND LIKE 'Binlog Dump%%'");
    IT_CHECK(NULL, v && atoi(v) == 1, "expected one binlog dump thread, got %s", v ? v : "?");
    free(v);
    char **row = NULL;
    int n = 0;
    int rc = th_my_row(s->my, &row, NULL, &n, "SHOW SLAVE HOSTS");
    IT_CHECK(NULL, rc == 1 && row[0] && strcmp(row[0], "4242") == 0 && row[1] &&
                       strcmp(row[1], "siphon-it-types") == 0,
             "SHOW SLAVE HOSTS: expected server id 4242 host siphon-it-types, got %s %s",
             rc == 1 && row[0] ? row[0] : "-", rc == 1 && row[1] ? row[1] : "-");
    th_my_row_free(row, NULL, n);

    const siphon_relation_t *rel = NULL;
    char err[1024];
    rc = siphon_mysql_source.describe(s->src, "it", "types", &rel, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "describe: %s", err);
    IT_CHECK(NULL, rel->ncols == NCOLS, "describe: %d columns, expected %d", rel->ncols, NCOLS);
    for (int i = 0; i < NCOLS; i++)
        IT_CHECK(NULL, strcmp(rel->cols[i].name, cols[i].name) == 0,
                 "describe: column %d is %s, expected %s", i, rel->cols[i].name, cols[i].name);
    IT_CHECK(NULL, rel->cols[0].is_pkey && !rel->cols[1].is_pkey, "describe: primary key flags");
    rc = siphon_mysql_source.describe(s->src, "it", "missing", &rel, err, sizeof(err));
    IT_CHECK(NULL, rc == SIPHON_ENOTFOUND, "describe of a missing table returned %d", rc);
}

/* Every type, every edge value, as the server SELECTs it. */
static void test_insert_every_type(void **st)
{
    state_t *s = *st;
    for (int r = 0; r < NROWS; r++)
        IT_CHECK(NULL, th_my_exec(s->my, "SET sql_mode = ''; INSERT INTO it.types VALUES (%s)",
                                  rows[r]) == 0, "insert row %d", r + 1);
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.types (id) VALUES (4)") == 0, "insert");
    rec_t recs[64];
    int n = collect(s, recs, 64, NROWS + 1), seen = 0;
    for (int i = 0; i < n; i++) {
        if (recs[i].kind != SIPHON_REC_CHANGE)
            continue;
        got_t *g = recs[i].chg;
        IT_CHECK(NULL, g->op == 'c' && g->has_after && !g->has_before,
                 "insert decoded as op %c", g->op);
        int id = atoi(g->after[0]);
        int nw = 0;
        char **want = select_row(s, "types", id, &nw);
        char what[64];
        snprintf(what, sizeof(what), "row %d (insert)", id);
        expect_image(want, nw, g, 1, what);
        th_my_row_free(want, NULL, nw);
        seen++;
    }
    recs_free(recs, n);
    IT_CHECK(NULL, seen == NROWS + 1, "decoded %d inserts, expected %d", seen, NROWS + 1);
}

/* Before and after images of updates, before image of deletes. */
static void test_update_delete(void **st)
{
    state_t *s = *st;
    int nb = 0;
    char **before = select_row(s, "types", 2, &nb);
    IT_CHECK(NULL, th_my_exec(s->my, "UPDATE it.types SET ti = -5, d2 = -0.5, ch = 'é', "
                                     "js = '{\"x\": 1}', ts6 = '2001-02-03 04:05:06.7', "
                                     "b64 = b'101' WHERE id = 2") == 0, "update");
    int na = 0;
    char **after = select_row(s, "types", 2, &na);
    int nd = 0;
    char **gone = select_row(s, "types", 3, &nd);
    IT_CHECK(NULL, th_my_exec(s->my, "DELETE FROM it.types WHERE id = 3") == 0, "delete");
    rec_t recs[16];
    int n = collect(s, recs, 16, 2);
    int u = 0, d = 0;
    for (int i = 0; i < n; i++) {
        got_t *g = recs[i].chg;
        if (!g)
            continue;
        if (g->op == 'u') {
            IT_CHECK(NULL, g->has_before && g->has_after, "update without both images");
            expect_image(before, nb, g, 0, "row 2 (update, before)");
            expect_image(after, na, g, 1, "row 2 (update, after)");
            u++;
        } else if (g->op == 'd') {
            IT_CHECK(NULL, g->has_before && !g->has_after, "delete images");
            expect_image(gone, nd, g, 0, "row 3 (delete, before)");
            d++;
        }
    }
    recs_free(recs, n);
    th_my_row_free(before, NULL, nb);
    th_my_row_free(after, NULL, na);
    th_my_row_free(gone, NULL, nd);
    IT_CHECK(NULL, u == 1 && d == 1, "expected one update and one delete, got %d and %d", u, d);
}

/* One transaction over two mapped tables and an unmapped one: one BEGIN/COMMIT pair whose
 * positions are the transaction's GTID and the GTID state after it. */
static void test_multi_table_transaction(void **st)
{
    state_t *s = *st;
    IT_CHECK(NULL, th_my_exec(s->my, "BEGIN; INSERT INTO it.other VALUES (1, 'a'); "
                                     "INSERT INTO it.unmapped VALUES (1, 'u'); "
                                     "INSERT INTO it.types (id, vc) VALUES (10, 'in txn'); "
                                     "UPDATE it.other SET v = 'b' WHERE id = 1; COMMIT") == 0,
             "transaction");
    char *gtid = th_my_value(s->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(NULL, gtid != NULL, "no gtid_binlog_pos");
    /* a transaction on the unmapped table only: a position, no BEGIN */
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.unmapped VALUES (2, 'u')") == 0, "insert");
    char *gtid2 = th_my_value(s->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    rec_t recs[32];
    /* the changes, their COMMIT, then the POSITION of the unmapped transaction */
    int n = collect_until(s, recs, 32, 3, SIPHON_REC_POSITION);
    int begins = 0, commits = 0, changes = 0, positions = 0;
    const char *begin_pos = NULL, *commit_pos = NULL, *last_pos = NULL;
    for (int i = 0; i < n; i++) {
        switch (recs[i].kind) {
        case SIPHON_REC_BEGIN: begins++; begin_pos = recs[i].pos; break;
        case SIPHON_REC_COMMIT: commits++; commit_pos = recs[i].pos; break;
        case SIPHON_REC_POSITION: positions++; last_pos = recs[i].pos; break;
        case SIPHON_REC_CHANGE:
            changes++;
            IT_CHECK(NULL, strcmp(recs[i].chg->table, "unmapped") != 0,
                     "a row of the unmapped table was streamed");
            IT_CHECK(NULL, begin_pos && strcmp(recs[i].chg->pos, begin_pos) == 0,
                     "change position %s differs from its BEGIN's %s", recs[i].chg->pos,
                     begin_pos ? begin_pos : "-");
            break;
        }
    }
    IT_CHECK(NULL, begins == 1 && commits == 1 && changes == 3,
             "expected BEGIN, 3 changes, COMMIT; got %d begins, %d changes, %d commits", begins,
             changes, commits);
    IT_CHECK(NULL, begin_pos && commit_pos && strcmp(begin_pos, gtid) == 0 &&
                       strcmp(commit_pos, gtid) == 0,
             "BEGIN position %s and COMMIT position %s should both be the GTID %s (one domain)",
             begin_pos ? begin_pos : "-", commit_pos ? commit_pos : "-", gtid);
    IT_CHECK(NULL, positions >= 1 && last_pos && strcmp(last_pos, gtid2) == 0,
             "the unmapped transaction should move the position to %s, got %s", gtid2,
             last_pos ? last_pos : "nothing");
    recs_free(recs, n);
    free(gtid);
    free(gtid2);
}

/* FLUSH BINARY LOGS between transactions: the stream follows into the next file. */
static void test_rotation(void **st)
{
    state_t *s = *st;
    char *f1 = th_my_value(s->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.other VALUES (2, 'before')") == 0, "ins");
    IT_CHECK(NULL, th_my_exec(s->my, "FLUSH BINARY LOGS") == 0, "flush");
    IT_CHECK(NULL, th_my_exec(s->my, "FLUSH BINARY LOGS") == 0, "flush");
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.other VALUES (3, 'after')") == 0, "ins");
    char **row = NULL;
    int nr = 0;
    th_my_row(s->my, &row, NULL, &nr, "SHOW MASTER STATUS");
    IT_CHECK(NULL, nr > 0 && row[0] && strcmp(row[0], "binlog.000001") != 0,
             "the binlog did not rotate (%s)", nr > 0 && row[0] ? row[0] : "-");
    th_my_row_free(row, NULL, nr);
    rec_t recs[16];
    int n = collect(s, recs, 16, 2), ins = 0;
    for (int i = 0; i < n; i++)
        if (recs[i].chg && recs[i].chg->op == 'c')
            ins += atoi(recs[i].chg->after[0]);
    IT_CHECK(NULL, ins == 5, "expected the inserts of rows 2 and 3 across the rotation");
    recs_free(recs, n);
    free(f1);
}

/* ALTER TABLE ADD COLUMN mid-stream: a new relation version with the new column; rows logged
 * before it keep the old shape. */
static void test_alter_add_column(void **st)
{
    state_t *s = *st;
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.other VALUES (4, 'old shape'); "
                                     "ALTER TABLE it.other ADD COLUMN extra decimal(6,3) "
                                     "DEFAULT 1.5, ADD COLUMN label varchar(5) AFTER id; "
                                     "INSERT INTO it.other VALUES (5, 'lbl', 'new shape', "
                                     "-2.25)") == 0,
             "alter");
    rec_t recs[16];
    int n = collect(s, recs, 16, 2);
    got_t *a = NULL, *b = NULL;
    for (int i = 0; i < n; i++)
        if (recs[i].chg && recs[i].chg->op == 'c')
            *(a ? &b : &a) = recs[i].chg;
    IT_CHECK(NULL, a && b, "expected two inserts");
    IT_CHECK(NULL, a->ncols == 2 && strcmp(a->after[0], "4") == 0 &&
                       strcmp(a->after[1], "old shape") == 0,
             "the insert before the ALTER should have 2 columns (id, v)");
    IT_CHECK(NULL, b->ncols == 4 && strcmp(b->names[1], "label") == 0 &&
                       strcmp(b->names[3], "extra") == 0 && strcmp(b->after[1], "lbl") == 0 &&
                       strcmp(b->after[2], "new shape") == 0 &&
                       strcmp(b->after[3], "-2.250") == 0,
             "the insert after the ALTER: %d columns, %s=%s, %s=%s", b->ncols,
             b->ncols > 1 ? b->names[1] : "-", b->ncols > 1 ? b->after[1] : "-",
             b->ncols > 3 ? b->names[3] : "-", b->ncols > 3 ? b->after[3] : "-");
    IT_CHECK(NULL, a->version != b->version, "the new shape should have a new version");
    recs_free(recs, n);
}

/* sample() (siphon preview) reads the same rows with a SELECT and decodes them into the same
 * values the binlog gives; open_catalog() needs no replication and starts no reader. */
static void test_sample(void **st)
{
    state_t *s = *st;
    siphon_source_t *cat = NULL;
    char err[1024];
    int rc = siphon_mysql_source.open_catalog(&cat, s->cfg, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open_catalog: %s", err);
    const siphon_relation_t *rel = NULL;
    const siphon_row_t *rows = NULL;
    int n = 0;
    rc = siphon_mysql_source.sample(cat, "it", "types", 100, &rel, &rows, &n, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "sample: %s", err);
    IT_CHECK(NULL, n >= 3, "sample returned %d rows", n);
    for (int r = 0; r < n; r++) {
        siphon_change_t c = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_CREATE, .rel = rel,
                             .after = &rows[r]};
        got_t *g = copy_change(&c);
        int id = atoi(g->after[0]), nw = 0;
        char **want = select_row(s, "types", id, &nw);
        char what[64];
        snprintf(what, sizeof(what), "row %d (sample)", id);
        expect_image(want, nw, g, 1, what);
        th_my_row_free(want, NULL, nw);
        got_free(g);
    }
    rc = siphon_mysql_source.sample(cat, "it", "missing", 10, &rel, &rows, &n, err, sizeof(err));
    IT_CHECK(NULL, rc == SIPHON_ENOTFOUND, "sample of a missing table returned %d", rc);
    siphon_mysql_source.close(cat);
}

/* pos_parse/pos_format round trip the positions the stream produces. */
static void test_positions_text(void **st)
{
    (void)st;
    const char *ok[] = {"0-1-42", "0-1-42,1-2-7", "binlog.000003:1234",
                        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:50"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        siphon_pos_t p;
        char err[256], buf[256];
        IT_CHECK(NULL, siphon_mysql_source.pos_parse(&p, ok[i], err, sizeof(err)) == 0,
                 "pos_parse(%s): %s", ok[i], err);
        IT_CHECK(NULL, siphon_mysql_source.pos_format(&p, buf, sizeof(buf)) == 0 &&
                           strcmp(buf, ok[i]) == 0,
                 "pos_format gave %s for %s", buf, ok[i]);
        siphon_pos_free(&p);
    }
    siphon_pos_t p;
    char err[256];
    IT_CHECK(NULL, siphon_mysql_source.pos_parse(&p, "0/16B3748", err, sizeof(err)) < 0,
             "an LSN is not a binlog position");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registered_and_described),
        cmocka_unit_test(test_insert_every_type),
        cmocka_unit_test(test_update_delete),
        cmocka_unit_test(test_multi_table_transaction),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_alter_add_column),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_positions_text),
    };
    (void)days_from_civil;
    return cmocka_run_group_tests_name("0100-mysql-types", tests, setup, teardown);
}
