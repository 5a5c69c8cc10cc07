/*
 * 0010-pg-types.c - the PostgreSQL connector against a real PostgreSQL 15, in process (no Kafka):
 * every supported type decoded from pgoutput, checked against what the server itself computes
 * for the same row (epoch microseconds, days since 1970, hex, text); and the connector's
 * behaviours around it: forced session settings (the database's own DateStyle, TimeZone,
 * bytea_output and extra_float_digits are hostile on purpose), TOAST with REPLICA IDENTITY
 * DEFAULT and FULL, primary key vs identity flags, TRUNCATE of several tables, a relation
 * version bump on ALTER TABLE, acknowledgement (the slot's confirmed_flush_lsn equals what was
 * acknowledged, never more), the slot advancing on filtered traffic, a killed walsender (no
 * loss, no duplicates), the DBA-facing errors (missing table, publication not allowed, table
 * without replica identity), and wal_level checked at open.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "it_check.h"

#include "connectors/postgres/postgres.h"
#include "core/error.h"
#include "core/log.h"
#include "core/value.h"

static const siphon_source_ops_t *ops = &siphon_postgres_source;

typedef struct fx {
    th_pg_t *pg;
    siphon_config_t cfg;
    char conninfo[256];
} fx_t;

#define CHECK(fx, cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            th_pg_dump_log((fx)->pg, 40);                                                    \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

static void cfg_init(fx_t *fx, const char *slot)
{
    memset(&fx->cfg, 0, sizeof(fx->cfg));
    fx->cfg.name = "it0010";
    fx->cfg.source.type = "postgres";
    fx->cfg.source.conninfo = fx->conninfo;
    fx->cfg.source.slot = (char *)slot;
    fx->cfg.source.publication = (char *)slot;
    fx->cfg.source.create_slot = 1;
    fx->cfg.source.create_publication = 1;
    fx->cfg.source.status_interval_ms = 200;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    siphon_log_setup(SIPHON_LOG_INFO, 0);
    fx->pg = th_pg_start();
    assert_non_null(fx->pg);
    /* A password in the conninfo must never be printed (trust auth ignores it). */
    snprintf(fx->conninfo, sizeof(fx->conninfo), "%s password=not-printed-anywhere",
             th_pg_conninfo(fx->pg));
    /* Hostile database defaults: the connector must override every one of them. */
    assert_int_equal(th_pg_exec(fx->pg,
                                "ALTER DATABASE postgres SET datestyle = 'SQL, DMY';"
                                "ALTER DATABASE postgres SET timezone = 'America/New_York';"
                                "ALTER DATABASE postgres SET extra_float_digits = 0;"
                                "ALTER DATABASE postgres SET bytea_output = 'escape';"
                                "ALTER DATABASE postgres SET intervalstyle = 'sql_standard';"),
                     0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    th_pg_destroy(fx->pg);
    free(fx);
    return 0;
}

/* Call next() until cb returns 1 (0: keep going) or timeout_ms passes. 0 when cb stopped. */
typedef int (*rec_cb)(fx_t *fx, const siphon_change_t *rec, void *arg);

static int read_until(fx_t *fx, siphon_source_t *src, int timeout_ms, rec_cb cb, void *arg)
{
    char err[512];
    int64_t end = th_now_ms() + timeout_ms;
    while (th_now_ms() < end) {
        siphon_batch_t b;
        int rc = ops->next(src, &b, 100, err, sizeof(err));
        CHECK(fx, rc == 0, "next() failed: %s", err);
        for (int i = 0; i < b.n; i++)
            if (cb(fx, &b.recs[i], arg))
                return 0;
    }
    return -1;
}

static siphon_source_t *open_src(fx_t *fx, const siphon_table_ref_t *t, int nt)
{
    siphon_source_t *src = NULL;
    char err[1024];
    int rc = ops->open(&src, &fx->cfg, t, nt, NULL, err, sizeof(err));
    CHECK(fx, rc == 0, "open failed: %s", err);
    return src;
}

/* ---- types ---- */

#define NCOLS 21
static const char *type_cols[NCOLS] = {"id", "i2", "i4", "i8", "n",  "nf", "f4",
                                       "f8", "b",  "t",  "vc", "bp", "d",  "tm",
                                       "ts", "tstz", "by", "u", "j",  "jb", "iv"};

/* What the server says each value is, in forms the value model can be compared with. */
static const char *expect_sql =
    "SELECT id, i2::text, i4::text, i8::text, n::text, nf::text, f4::text, f8::text,"
    " b::text, t, vc, CASE WHEN bp IS NOT NULL THEN format('%s', bp) END,"
    " CASE WHEN isfinite(d) THEN (d - '1970-01-01'::date)::text ELSE d::text END,"
    " (extract(epoch from tm) * 1000000)::bigint::text,"
    " CASE WHEN isfinite(ts) THEN (extract(epoch from ts) * 1000000)::bigint::text"
    "  ELSE ts::text END,"
    " CASE WHEN isfinite(tstz) THEN (extract(epoch from tstz) * 1000000)::bigint::text"
    "  ELSE tstz::text END,"
    " encode(by, 'hex'), replace(u::text, '-', ''), j::text, jb::text, iv::text"
    " FROM it_types ORDER BY id";

typedef struct types_arg {
    PGresult *want;
    int seen;
    int begin, commit;
    uint64_t pos;
    const siphon_relation_t *rel;
} types_arg_t;

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[p[i] >> 4];
        out[2 * i + 1] = h[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void check_value(fx_t *fx, int id, int col, const siphon_value_t *v, PGresult *want,
                        int row)
{
    const char *name = type_cols[col];
    char got[16384];
    if (PQgetisnull(want, row, col)) {
        CHECK(fx, v->type == SIPHON_V_NULL, "id %d column %s: expected NULL, got %s", id, name,
              siphon_vtype_name(v->type));
        return;
    }
    const char *w = PQgetvalue(want, row, col);
    switch (v->type) {
    case SIPHON_V_INT:
        CHECK(fx, v->u.i == strtoll(w, NULL, 10), "id %d %s: %" PRId64 " != %s", id, name,
              v->u.i, w);
        break;
    case SIPHON_V_FLOAT: {
        /* the server's text (shortest exact, extra_float_digits 3 in this session) */
        double d = strtod(w, NULL);
        CHECK(fx, (isnan(d) && isnan(v->u.f)) || d == v->u.f, "id %d %s: %.17g != %s", id, name,
              v->u.f, w);
        break;
    }
    case SIPHON_V_DATE:
        CHECK(fx, v->u.date == atoi(w), "id %d %s: %d != %s", id, name, v->u.date, w);
        break;
    case SIPHON_V_TIME:
        CHECK(fx, v->u.time_us == strtoll(w, NULL, 10), "id %d %s: %" PRId64 " != %s", id, name,
              v->u.time_us, w);
        break;
    case SIPHON_V_TIMESTAMP:
        CHECK(fx, v->u.ts.us == strtoll(w, NULL, 10), "id %d %s: %" PRId64 " != %s", id, name,
              v->u.ts.us, w);
        CHECK(fx, v->u.ts.tz == (strcmp(name, "tstz") == 0), "id %d %s: tz flag %d", id, name,
              v->u.ts.tz);
        break;
    case SIPHON_V_BYTES:
        CHECK(fx, v->u.s.len * 2 < sizeof(got), "too long");
        hex((const uint8_t *)v->u.s.ptr, v->u.s.len, got);
        CHECK(fx, strcmp(got, w) == 0, "id %d %s: %s != %s", id, name, got, w);
        break;
    case SIPHON_V_UUID:
        hex(v->u.uuid, 16, got);
        CHECK(fx, strcmp(got, w) == 0, "id %d %s: %s != %s", id, name, got, w);
        break;
    case SIPHON_V_DECIMAL:
    case SIPHON_V_BOOL:
        siphon_value_format(v, got, sizeof(got));
        CHECK(fx, strcmp(got, w) == 0, "id %d %s: %s != %s", id, name, got, w);
        break;
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
        CHECK(fx, v->u.s.len == strlen(w) && memcmp(v->u.s.ptr, w, v->u.s.len) == 0,
              "id %d %s: \"%.*s\" != \"%s\"", id, name, (int)v->u.s.len, v->u.s.ptr, w);
        break;
    default:
        CHECK(fx, 0, "id %d %s: unexpected value type %s", id, name, siphon_vtype_name(v->type));
    }
}

static int types_cb(fx_t *fx, const siphon_change_t *rec, void *arg)
{
    types_arg_t *a = arg;
    if (rec->kind == SIPHON_REC_BEGIN) {
        a->begin++;
        a->pos = rec->pos.num;
        CHECK(fx, rec->txid != 0, "BEGIN without txid");
        /* commit time within a minute of now */
        int64_t now_us = (int64_t)time(NULL) * 1000000;
        CHECK(fx, llabs(rec->commit_ts_us - now_us) < INT64_C(60000000),
              "commit time %" PRId64 " far from now %" PRId64, rec->commit_ts_us, now_us);
    } else if (rec->kind == SIPHON_REC_CHANGE) {
        CHECK(fx, rec->op == SIPHON_OP_CREATE, "op %c", rec->op);
        CHECK(fx, strcmp(rec->rel->name, "it_types") == 0, "table %s", rec->rel->name);
        CHECK(fx, rec->rel->ncols == NCOLS && rec->after && rec->after->ncols == NCOLS,
              "%d columns", rec->rel->ncols);
        CHECK(fx, rec->before == NULL, "insert with a before image");
        CHECK(fx, rec->database && strcmp(rec->database, "postgres") == 0, "database");
        a->rel = rec->rel;
        int row = a->seen++;
        int id = atoi(PQgetvalue(a->want, row, 0));
        CHECK(fx, rec->after->vals[0].type == SIPHON_V_INT && rec->after->vals[0].u.i == id,
              "row %d is not id %d", row, id);
        for (int c = 1; c < NCOLS; c++)
            check_value(fx, id, c, &rec->after->vals[c], a->want, row);
    } else if (rec->kind == SIPHON_REC_COMMIT) {
        a->commit++;
        CHECK(fx, rec->pos.num == a->pos, "COMMIT pos differs from BEGIN pos");
        return 1;
    }
    return 0;
}

static void test_types(void **state)
{
    fx_t *fx = *state;
    char err[512];
    assert_int_equal(
        th_pg_exec(fx->pg,
                   "CREATE TABLE it_types (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8,"
                   " n numeric(12,2), nf numeric, f4 real, f8 float8, b bool, t text,"
                   " vc varchar(20), bp char(5), d date, tm time, ts timestamp, tstz timestamptz,"
                   " by bytea, u uuid, j json, jb jsonb, iv interval)"),
        0);
    cfg_init(fx, "it_types");
    siphon_table_ref_t t[] = {{"public", "it_types"}};
    siphon_source_t *src = open_src(fx, t, 1);

    const siphon_relation_t *rel = NULL;
    CHECK(fx, ops->describe(src, "public", "it_types", &rel, err, sizeof(err)) == 0, "%s", err);
    static const siphon_vtype_t vt[NCOLS] = {
        SIPHON_V_INT,  SIPHON_V_INT,       SIPHON_V_INT,       SIPHON_V_INT,   SIPHON_V_DECIMAL,
        SIPHON_V_DECIMAL, SIPHON_V_FLOAT,  SIPHON_V_FLOAT,     SIPHON_V_BOOL,  SIPHON_V_TEXT,
        SIPHON_V_TEXT, SIPHON_V_TEXT,      SIPHON_V_DATE,      SIPHON_V_TIME,  SIPHON_V_TIMESTAMP,
        SIPHON_V_TIMESTAMP, SIPHON_V_BYTES, SIPHON_V_UUID,     SIPHON_V_JSON,  SIPHON_V_JSON,
        SIPHON_V_TEXT};
    CHECK(fx, rel->ncols == NCOLS, "describe: %d columns", rel->ncols);
    for (int i = 0; i < NCOLS; i++) {
        CHECK(fx, strcmp(rel->cols[i].name, type_cols[i]) == 0, "column %d is %s", i,
              rel->cols[i].name);
        CHECK(fx, rel->cols[i].vtype == vt[i], "column %s: vtype %s", type_cols[i],
              siphon_vtype_name(rel->cols[i].vtype));
        CHECK(fx, rel->cols[i].is_key == (i == 0) && rel->cols[i].is_pkey == (i == 0),
              "column %s key flags", type_cols[i]);
    }
    CHECK(fx, strcmp(rel->cols[4].type_name, "numeric(12,2)") == 0, "type name %s",
          rel->cols[4].type_name);
    CHECK(fx, strcmp(rel->cols[11].type_name, "character(5)") == 0, "type name %s",
          rel->cols[11].type_name);
    CHECK(fx, ops->describe(src, "public", "no_such_table", &rel, err, sizeof(err)) ==
                  SIPHON_ENOTFOUND && strstr(err, "no_such_table"),
          "describe of a missing table: %s", err);

    /* Edge values in one transaction, written by a session whose settings differ from the
     * connector's forced ones. */
    assert_int_equal(
        th_pg_exec(fx->pg,
                   "SET timezone = 'Asia/Kolkata'; SET datestyle = 'ISO, YMD'; BEGIN;"
                   "INSERT INTO it_types (id) VALUES (1);"
                   "INSERT INTO it_types VALUES (2, -32768, 2147483647, -9223372036854775808,"
                   " -9999999999.99,"
                   " 123456789012345678901234567890.123456789012345678901234567890,"
                   " 3.4028235e38, -1.7976931348623157e308, true, '', 'h\u00e9llo w\u00f6rld',"
                   " 'ab', '0044-03-15 BC', '00:00:00', '1969-12-31 23:59:59.999999',"
                   " '2024-02-29 23:59:59.999999+05:30', '\\x00ff10',"
                   " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, \"x\"]}',"
                   " '{\"k\": null}', '1 year 2 mons -3 days 04:05:06.789');"
                   "INSERT INTO it_types VALUES (3, 32767, -2147483648, 9223372036854775807,"
                   " -0.00, 'NaN', '-Infinity', 'NaN', false,"
                   " E'line1\\nline2\\t\"quoted\" \\\\ back', '', '', 'infinity', '24:00:00',"
                   " '-infinity', 'infinity', '\\x', '00000000-0000-0000-0000-000000000000',"
                   " '[]', '[1, 2.50, \"x\"]', '-1 days');"
                   "INSERT INTO it_types VALUES (4, 0, 0, 0, 0.01, '-0.000001', 'Infinity', 0.1,"
                   " true, repeat('long ', 2000), 'x', 'abcde', '1900-02-28', '12:34:56.123456',"
                   " '0001-01-01 00:00:00', '1850-01-01 00:00:00+00', decode(repeat('ab', 500),"
                   " 'hex'), 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', 'null', '\"s\"', '0');"
                   "INSERT INTO it_types VALUES (5, 1, 1, 1, 1234567890.12, '1e-20', 1.5, 1e-300,"
                   " false, 'x', 'y', 'z', '2000-02-29', '23:59:59.999999',"
                   " '2038-01-19 03:14:08', '1970-01-01 00:00:00.000001+00', '\\xdeadbeef',"
                   " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '{}', '{}', '00:00:00.000001');"
                   "COMMIT"),
        0);

    types_arg_t a = {0};
    a.want = th_pg_query(fx->pg, "SET extra_float_digits = 3; SET datestyle = 'ISO, YMD';"
                                 "SET bytea_output = 'hex'; SET intervalstyle = 'postgres';"
                                 "SET timezone = 'UTC'; %s", expect_sql);
    CHECK(fx, a.want && PQntuples(a.want) == 5, "expected rows");
    CHECK(fx, read_until(fx, src, 15000, types_cb, &a) == 0, "no COMMIT within 15 s");
    CHECK(fx, a.seen == 5 && a.begin == 1 && a.commit == 1, "seen %d rows, %d BEGIN, %d COMMIT",
          a.seen, a.begin, a.commit);
    /* The relation the stream used is the shape describe() returned (same version). */
    const siphon_relation_t *drel = NULL;
    CHECK(fx, ops->describe(src, "public", "it_types", &drel, err, sizeof(err)) == 0, "%s", err);
    CHECK(fx, a.rel->version == drel->version, "stream version %" PRIu64 " != described %" PRIu64,
          a.rel->version, drel->version);
    PQclear(a.want);
    ops->close(src);
}

/* ---- TOAST, identity, truncate, versions ---- */

typedef struct seq_arg {
    const siphon_change_t *last;   /* valid only inside the callback */
    int nchanges, ncommits;
    int want_changes;
    /* copies of what the test checks afterwards */
    char op[16];
    siphon_vtype_t after_big[16], before_big[16];
    size_t after_big_len[16];
    uint64_t version[16];
    int ncols[16], key_all[16], pkey_id_only[16];
    char table[16][32];
    uint64_t commit_pos;
} seq_arg_t;

static int seq_cb(fx_t *fx, const siphon_change_t *rec, void *arg)
{
    seq_arg_t *a = arg;
    if (rec->kind == SIPHON_REC_CHANGE) {
        int i = a->nchanges++;
        CHECK(fx, i < 16, "too many changes");
        a->op[i] = (char)rec->op;
        snprintf(a->table[i], sizeof(a->table[i]), "%s", rec->rel->name);
        a->version[i] = rec->rel->version;
        a->ncols[i] = rec->rel->ncols;
        a->key_all[i] = 1;
        a->pkey_id_only[i] = 1;
        for (int c = 0; c < rec->rel->ncols; c++) {
            a->key_all[i] &= rec->rel->cols[c].is_key;
            a->pkey_id_only[i] &= rec->rel->cols[c].is_pkey == (c == 0);
        }
        a->after_big[i] = rec->after && rec->after->ncols > 1 ? rec->after->vals[1].type : SIPHON_V_NULL;
        a->after_big_len[i] = rec->after && rec->after->ncols > 1 ? rec->after->vals[1].u.s.len : 0;
        a->before_big[i] = rec->before ? rec->before->vals[1].type : SIPHON_V_NULL;
    } else if (rec->kind == SIPHON_REC_COMMIT) {
        a->ncommits++;
        a->commit_pos = rec->pos.num;
        if (a->nchanges >= a->want_changes)
            return 1;
    }
    return 0;
}

static void test_toast_identity_truncate(void **state)
{
    fx_t *fx = *state;
    char err[512];
    assert_int_equal(th_pg_exec(fx->pg,
                                "CREATE TABLE it_toast (id int PRIMARY KEY, big text, small int);"
                                "CREATE TABLE it_other (id int PRIMARY KEY, v text)"),
                     0);
    cfg_init(fx, "it_toast");
    siphon_table_ref_t t[] = {{"public", "it_toast"}, {NULL, "it_other"}};
    siphon_source_t *src = open_src(fx, t, 2);

    /* An incompressible value big enough to be stored out of line. */
    assert_int_equal(
        th_pg_exec(fx->pg,
                   "INSERT INTO it_toast SELECT 1, string_agg(md5(g::text), ''), 0"
                   " FROM generate_series(1, 1000) g;"
                   "UPDATE it_toast SET small = 1 WHERE id = 1;"
                   "ALTER TABLE it_toast REPLICA IDENTITY FULL;"
                   "UPDATE it_toast SET small = 2 WHERE id = 1;"
                   "ALTER TABLE it_toast REPLICA IDENTITY DEFAULT;"
                   "ALTER TABLE it_toast ADD COLUMN extra int;"
                   "INSERT INTO it_toast (id, big) VALUES (2, 'short');"
                   "INSERT INTO it_other VALUES (1, 'x');"
                   "TRUNCATE it_toast, it_other;"),
        0);
    seq_arg_t a = {.want_changes = 7};
    CHECK(fx, read_until(fx, src, 15000, seq_cb, &a) == 0, "only %d changes arrived", a.nchanges);
    CHECK(fx, a.nchanges == 7, "%d changes", a.nchanges);
    CHECK(fx, strcmp(a.op, "cuucctt") == 0, "ops \"%s\"", a.op);
    /* insert: the whole value */
    CHECK(fx, a.after_big[0] == SIPHON_V_TEXT && a.after_big_len[0] == 32000, "insert big %s %zu",
          siphon_vtype_name(a.after_big[0]), a.after_big_len[0]);
    /* DEFAULT identity: unchanged TOAST is not sent, and there is no before image */
    CHECK(fx, a.after_big[1] == SIPHON_V_UNCHANGED, "update 1 big is %s",
          siphon_vtype_name(a.after_big[1]));
    CHECK(fx, a.before_big[1] == SIPHON_V_NULL, "update 1 has a before image");
    CHECK(fx, a.key_all[1] == 0 && a.pkey_id_only[1], "DEFAULT identity key flags");
    /* FULL identity: filled from the old row; every column is identity, id alone the pkey */
    CHECK(fx, a.after_big[2] == SIPHON_V_TEXT && a.after_big_len[2] == 32000,
          "update 2 big is %s (%zu)", siphon_vtype_name(a.after_big[2]), a.after_big_len[2]);
    CHECK(fx, a.before_big[2] == SIPHON_V_TEXT, "update 2 before big %s",
          siphon_vtype_name(a.before_big[2]));
    CHECK(fx, a.key_all[2] == 1 && a.pkey_id_only[2] == 1, "FULL identity key/pkey flags");
    CHECK(fx, a.version[2] != a.version[1], "identity change kept version %" PRIu64, a.version[2]);
    /* ADD COLUMN: a new version with one more column */
    CHECK(fx, a.ncols[3] == 4 && a.ncols[1] == 3 && a.version[3] != a.version[2] &&
                  a.version[3] != a.version[1],
          "after ADD COLUMN: %d columns, version %" PRIu64, a.ncols[3], a.version[3]);
    CHECK(fx, strcmp(a.table[5], "it_toast") == 0 && strcmp(a.table[6], "it_other") == 0,
          "truncated %s and %s", a.table[5], a.table[6]);

    /* Acknowledge the last commit: the slot confirms exactly that, never more. */
    siphon_pos_t pos = {.num = a.commit_pos};
    CHECK(fx, ops->ack(src, &pos, err, sizeof(err)) == 0, "%s", err);
    uint64_t confirmed = 0;
    int64_t end = th_now_ms() + 5000;
    while (th_now_ms() < end) {
        siphon_batch_t b;
        CHECK(fx, ops->next(src, &b, 100, err, sizeof(err)) == 0, "%s", err);
        for (int i = 0; i < b.n; i++) /* nothing acknowledged beyond pos while we wait */
            CHECK(fx, b.recs[i].kind == SIPHON_REC_POSITION, "unexpected record %d", b.recs[i].kind);
        CHECK(fx, th_pg_slot_confirmed(fx->pg, "it_toast", &confirmed) == 0, "slot");
        if (confirmed == a.commit_pos)
            break;
        CHECK(fx, confirmed < a.commit_pos, "slot confirmed %" PRIx64 " past ack %" PRIx64,
              confirmed, a.commit_pos);
    }
    CHECK(fx, confirmed == a.commit_pos, "slot confirmed %" PRIx64 ", acknowledged %" PRIx64,
          confirmed, a.commit_pos);
    ops->close(src);
}

/* ---- idle progress, reconnect ---- */

typedef struct recon_arg {
    int ids[64];
    int n;
    int want;
    int resets;
    uint64_t last_position;
    uint64_t max_commit;
} recon_arg_t;

static int recon_cb(fx_t *fx, const siphon_change_t *rec, void *arg)
{
    recon_arg_t *a = arg;
    if (rec->kind == SIPHON_REC_CHANGE) {
        CHECK(fx, a->n < 64, "too many rows");
        a->ids[a->n++] = (int)rec->after->vals[0].u.i;
    } else if (rec->kind == SIPHON_REC_RESET) {
        a->resets++;
    } else if (rec->kind == SIPHON_REC_POSITION) {
        CHECK(fx, rec->pos.num >= a->last_position && rec->pos.num > a->max_commit,
              "POSITION went backwards");
        a->last_position = rec->pos.num;
    } else if (rec->kind == SIPHON_REC_COMMIT) {
        CHECK(fx, rec->pos.num > a->max_commit, "COMMIT position went backwards");
        a->max_commit = rec->pos.num;
    }
    if (a->want && a->n >= a->want && rec->kind == SIPHON_REC_COMMIT)
        return 1;
    if (!a->want && a->last_position && rec->kind == SIPHON_REC_POSITION)
        return 1;
    return 0;
}

static void test_idle_and_reconnect(void **state)
{
    fx_t *fx = *state;
    char err[512];
    assert_int_equal(th_pg_exec(fx->pg, "CREATE TABLE it_rc (id int PRIMARY KEY);"
                                        "CREATE TABLE it_unpublished (id int PRIMARY KEY)"),
                     0);
    cfg_init(fx, "it_rc");
    siphon_table_ref_t t[] = {{"public", "it_rc"}};
    siphon_source_t *src = open_src(fx, t, 1);

    /* Filtered traffic only: a POSITION record moves past it, and acknowledging it moves the
     * slot (no WAL pile-up on an idle or filtered source). */
    uint64_t before = 0, cur = 0, confirmed = 0;
    CHECK(fx, th_pg_slot_confirmed(fx->pg, "it_rc", &before) == 0, "slot");
    assert_int_equal(th_pg_exec(fx->pg, "INSERT INTO it_unpublished SELECT generate_series(1, 100)"), 0);
    CHECK(fx, th_pg_current_lsn(fx->pg, &cur) == 0, "current lsn");
    recon_arg_t a = {0};
    int64_t end = th_now_ms() + 15000;
    th_log("filtered traffic up to %" PRIx64 ": waiting for a POSITION past it", cur);
    while (th_now_ms() < end && a.last_position < cur) {
        /* keepalives come when the walsender is idle and we are behind */
        read_until(fx, src, 500, recon_cb, &a);
        th_log("last POSITION %" PRIx64, a.last_position);
    }
    CHECK(fx, a.last_position >= cur, "no POSITION past %" PRIx64 " (last %" PRIx64 ")", cur,
          a.last_position);
    CHECK(fx, a.n == 0, "filtered rows were returned");
    siphon_pos_t pos = {.num = a.last_position};
    CHECK(fx, ops->ack(src, &pos, err, sizeof(err)) == 0, "%s", err);
    end = th_now_ms() + 5000;
    while (th_now_ms() < end) {
        siphon_batch_t b;
        CHECK(fx, ops->next(src, &b, 100, err, sizeof(err)) == 0, "%s", err);
        CHECK(fx, th_pg_slot_confirmed(fx->pg, "it_rc", &confirmed) == 0, "slot");
        if (confirmed == a.last_position)
            break;
    }
    CHECK(fx, confirmed == a.last_position && confirmed > before,
          "slot confirmed %" PRIx64 ", acknowledged %" PRIx64 ", before %" PRIx64, confirmed,
          a.last_position, before);

    /* Rows before and after a killed walsender: each arrives exactly once. */
    a.want = 5;
    assert_int_equal(th_pg_exec(fx->pg, "INSERT INTO it_rc SELECT generate_series(1, 5)"), 0);
    CHECK(fx, read_until(fx, src, 10000, recon_cb, &a) == 0, "only %d of the first rows", a.n);
    CHECK(fx, th_pg_terminate_walsenders(fx->pg) >= 1, "no walsender to terminate");
    a.want = 10;
    for (int i = 6; i <= 10; i++)
        assert_int_equal(th_pg_exec(fx->pg, "INSERT INTO it_rc VALUES (%d)", i), 0);
    CHECK(fx, read_until(fx, src, 20000, recon_cb, &a) == 0, "only %d rows after reconnect", a.n);
    /* A second kill while idle, then more rows. */
    CHECK(fx, th_pg_terminate_walsenders(fx->pg) >= 0, "terminate");
    a.want = 12;
    assert_int_equal(th_pg_exec(fx->pg, "INSERT INTO it_rc VALUES (11), (12)"), 0);
    CHECK(fx, read_until(fx, src, 20000, recon_cb, &a) == 0, "only %d rows after 2nd kill", a.n);
    int seen[13] = {0};
    for (int i = 0; i < a.n; i++) {
        CHECK(fx, a.ids[i] >= 1 && a.ids[i] <= 12, "unexpected id %d", a.ids[i]);
        seen[a.ids[i]]++;
    }
    for (int i = 1; i <= 12; i++)
        CHECK(fx, seen[i] == 1, "id %d seen %d times", i, seen[i]);
    CHECK(fx, a.resets == 0, "RESET outside a transaction");
    ops->close(src);
}

/* ---- what the DBA is told ---- */

static void test_dba_errors(void **state)
{
    fx_t *fx = *state;
    char err[1024];
    siphon_source_t *src = NULL;
    assert_int_equal(th_pg_exec(fx->pg, "CREATE TABLE it_nokey (a int, b text);"
                                        "CREATE TABLE it_ok (id int PRIMARY KEY)"),
                     0);

    /* a missing table */
    cfg_init(fx, "it_err");
    siphon_table_ref_t missing[] = {{"public", "nope"}};
    int rc = ops->open(&src, &fx->cfg, missing, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "nope") && !src, "missing table: %d %s", rc, err);
    CHECK(fx, !strstr(err, "not-printed-anywhere"), "password in a message: %s", err);

    /* a table without replica identity is never published by Siphon */
    siphon_table_ref_t nokey[] = {{"public", "it_nokey"}};
    rc = ops->open(&src, &fx->cfg, nokey, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "REPLICA IDENTITY FULL") && !src,
          "table without key: %d %s", rc, err);
    char *n = th_pg_value(fx->pg, NULL,
                          "SELECT count(*) FROM pg_publication_tables WHERE tablename = 'it_nokey'");
    CHECK(fx, n && strcmp(n, "0") == 0, "it_nokey was published");
    free(n);

    /* publication creation not allowed: the message says what to run */
    fx->cfg.source.create_publication = 0;
    siphon_table_ref_t ok[] = {{"public", "it_ok"}};
    rc = ops->open(&src, &fx->cfg, ok, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "CREATE PUBLICATION \"it_err\" FOR TABLE "
                                                 "\"public\".\"it_ok\""),
          "no publication: %d %s", rc, err);
    /* slot creation not allowed */
    fx->cfg.source.create_publication = 1;
    fx->cfg.source.create_slot = 0;
    rc = ops->open(&src, &fx->cfg, ok, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "pg_create_logical_replication_slot('it_err'"),
          "no slot: %d %s", rc, err);
    /* a bad stored position */
    fx->cfg.source.create_slot = 1;
    rc = ops->open(&src, &fx->cfg, ok, 1, "12/zz", err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "12/zz"), "bad position: %d %s", rc, err);
    /* a stored position from the future (another server) */
    rc = ops->open(&src, &fx->cfg, ok, 1, "FF/0", err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "FF/0"), "future position: %d %s", rc, err);
    /* a bad slot name */
    fx->cfg.source.slot = "Bad-Slot";
    rc = ops->open(&src, &fx->cfg, ok, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "Bad-Slot"), "bad slot name: %d %s", rc, err);

    /* a role without the REPLICATION attribute (trust auth: any role logs in) */
    assert_int_equal(th_pg_exec(fx->pg, "CREATE ROLE it_norepl LOGIN"), 0);
    char norepl[300];
    snprintf(norepl, sizeof(norepl), "%s user=it_norepl", th_pg_conninfo(fx->pg));
    fx->cfg.source.conninfo = norepl;
    fx->cfg.source.slot = "it_err";
    rc = ops->open(&src, &fx->cfg, ok, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "ALTER ROLE \"it_norepl\" REPLICATION"),
          "role without REPLICATION: %d %s", rc, err);
    fx->cfg.source.conninfo = fx->conninfo;

    /* wal_level: logical slots must go before the server accepts wal_level = replica */
    assert_int_equal(th_pg_exec(fx->pg, "SELECT pg_drop_replication_slot(slot_name)"
                                        " FROM pg_replication_slots"),
                     0);
    assert_int_equal(th_pg_exec(fx->pg, "ALTER SYSTEM SET wal_level = replica"), 0);
    CHECK(fx, th_pg_restart(fx->pg) == 0, "restart");
    cfg_init(fx, "it_err");
    rc = ops->open(&src, &fx->cfg, ok, 1, NULL, err, sizeof(err));
    CHECK(fx, rc == SIPHON_EINVAL && strstr(err, "wal_level = logical") && strstr(err, "restart"),
          "wal_level: %d %s", rc, err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_toast_identity_truncate),
        cmocka_unit_test(test_idle_and_reconnect),
        cmocka_unit_test(test_dba_errors),
    };
    return cmocka_run_group_tests_name("0010-pg-types", tests, setup, teardown);
}
