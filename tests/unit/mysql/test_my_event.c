/*
 * test_my_event.c - the binlog event parser fed hand-built events: a MySQL 8 transaction (GTID,
 * BEGIN, TABLE_MAP with full optional metadata, v2 rows with extra data, XID), the same GTID
 * skipped when resuming from a set that holds it, a row image without some columns
 * (binlog_row_image=MINIMAL: UNCHANGED), a MariaDB stream (artificial ROTATE, GTID events, v1
 * rows, unmapped tables collapsing into one POSITION, a standalone DDL, TRUNCATE, a RESET when
 * the connection drops mid-transaction), file:offset positions for anonymous GTIDs, checksums,
 * and the events and settings that must stop the stream with a message naming the fix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

int my_event_tests(void);

#define U1 "3e11fa47-71ca-11e1-9e33-c80aa9429562"

/* ---- event builders ---- */

typedef struct eb {
    uint8_t b[4096];
    size_t n;
} eb_t;

static void put(eb_t *e, const void *p, size_t n)
{
    memcpy(e->b + e->n, p, n);
    e->n += n;
}
static void u8(eb_t *e, unsigned v) { e->b[e->n++] = (uint8_t)v; }
static void le(eb_t *e, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        e->b[e->n++] = (uint8_t)(v >> (8 * i));
}
static void lenenc(eb_t *e, uint64_t v)
{
    if (v < 251)
        u8(e, (unsigned)v);
    else {
        u8(e, 0xfc);
        le(e, v, 2);
    }
}
static void tlv(eb_t *e, uint8_t type, const eb_t *val)
{
    u8(e, type);
    lenenc(e, val->n);
    put(e, val->b, val->n);
}

static int checksum_mode;

/* Header + body (+ a fake CRC when checksum_mode). Returns the event length. */
static size_t event(uint8_t *out, uint8_t type, uint32_t server, uint32_t log_pos, uint16_t flags,
                    const eb_t *body)
{
    size_t len = 19 + body->n + (checksum_mode ? 4 : 0);
    uint32_t ts = 1700000000;
    eb_t h = {.n = 0};
    le(&h, ts, 4);
    u8(&h, type);
    le(&h, server, 4);
    le(&h, len, 4);
    le(&h, log_pos, 4);
    le(&h, flags, 2);
    memcpy(out, h.b, 19);
    memcpy(out + 19, body->b, body->n);
    if (checksum_mode)
        memcpy(out + 19 + body->n, "\xde\xad\xbe\xef", 4);
    return len;
}

static my_stream_t st;
static my_batch_t batch;
static my_table_t tables[] = {{"shop", "orders"}};

static int feed(uint8_t type, uint32_t server, uint32_t log_pos, uint16_t flags, const eb_t *body,
                char *err, size_t errsize)
{
    uint8_t ev[8192];
    size_t n = event(ev, type, server, log_pos, flags, body);
    return siphon_my__stream_event(&st, ev, n, err, errsize);
}

static void ok(uint8_t type, uint32_t log_pos, const eb_t *body)
{
    char err[512];
    if (feed(type, 1, log_pos, 0, body, err, sizeof(err)))
        fail_msg("event %u: %s", type, err);
}

static void stream_start(my_flavor_t flavor, my_posmode_t mode, const char *state)
{
    memset(&st, 0, sizeof(st));
    siphon_my__batch_init(&batch);
    st.flavor = flavor;
    st.mode = mode;
    st.database = "";
    st.tables = tables;
    st.ntables = 1;
    st.batch = &batch;
    siphon_my__stream_init(&st);
    char err[256];
    assert_int_equal(siphon_my__gtid_parse(&st.state, state, flavor == MY_FLAVOR_MYSQL
                                                                 ? MY_GTID_MYSQL
                                                                 : MY_GTID_MARIADB,
                                           err, sizeof(err)), 0);
    snprintf(st.file, sizeof(st.file), "binlog.000001");
}

static void stream_end(void)
{
    siphon_my__stream_destroy(&st);
    siphon_my__batch_destroy(&batch);
}

/* TABLE_MAP of db.table: id BIGINT UNSIGNED, name VARCHAR(20) utf8mb4, price DECIMAL(8,2),
 * doc JSON, st ENUM('new','paid'); with full optional metadata when names is set. */
static void table_map(eb_t *e, uint64_t id, const char *db, const char *table, int names)
{
    e->n = 0;
    le(e, id, 6);
    le(e, 1, 2);
    u8(e, (unsigned)strlen(db));
    put(e, db, strlen(db) + 1);
    u8(e, (unsigned)strlen(table));
    put(e, table, strlen(table) + 1);
    lenenc(e, 5);
    uint8_t types[] = {MYT_LONGLONG, MYT_VARCHAR, MYT_NEWDECIMAL, MYT_JSON, MYT_STRING};
    put(e, types, 5);
    uint8_t meta[] = {80, 0, 8, 2, 4, MYT_ENUM, 1};
    lenenc(e, sizeof(meta));
    put(e, meta, sizeof(meta));
    u8(e, 0x1e); /* nullability */
    eb_t v = {.n = 0};
    u8(&v, 0x80); /* SIGNEDNESS: id unsigned, price signed */
    tlv(e, 1, &v);
    v.n = 0;
    lenenc(&v, 255); /* DEFAULT_CHARSET utf8mb4_0900_ai_ci */
    tlv(e, 2, &v);
    if (names) {
        v.n = 0;
        const char *nm[] = {"id", "name", "price", "doc", "st"};
        for (int i = 0; i < 5; i++) {
            lenenc(&v, strlen(nm[i]));
            put(&v, nm[i], strlen(nm[i]));
        }
        tlv(e, 4, &v);
        v.n = 0;
        lenenc(&v, 2);
        lenenc(&v, 3);
        put(&v, "new", 3);
        lenenc(&v, 4);
        put(&v, "paid", 4);
        tlv(e, 6, &v);
        v.n = 0;
        lenenc(&v, 0);
        tlv(e, 8, &v); /* SIMPLE_PRIMARY_KEY: id */
        v.n = 0;
        lenenc(&v, 255);
        tlv(e, 10, &v);
    }
    v.n = 0;
    put(&v, "\x01\x02", 2);
    tlv(e, 12, &v); /* a kind this parser does not know (COLUMN_VISIBILITY): skipped */
}

/* Rows event body. v2: with extra data; kind 0 write, 1 update, 2 delete. */
static void rows_head(eb_t *e, uint64_t id, int v2, int kind, uint8_t present1, uint8_t present2)
{
    e->n = 0;
    le(e, id, 6);
    le(e, 1, 2);
    if (v2) {
        le(e, 2 + 3, 2); /* extra data: 3 bytes the parser must skip */
        put(e, "\x00\x01\x00", 3);
    }
    lenenc(e, 5);
    u8(e, present1);
    if (kind == 1)
        u8(e, present2);
}

/* A whole row: id, name, price, doc (JSON true), st. */
static void row_full(eb_t *e, uint64_t id, const char *name, int neg_price)
{
    u8(e, name ? 0x00 : 0x0a); /* name and doc null when name is NULL */
    le(e, id, 8);
    if (name) {
        u8(e, (unsigned)strlen(name));
        put(e, name, strlen(name));
    }
    if (neg_price)
        put(e, "\x7f\xff\xf3\xdd", 4); /* -12.34 */
    else
        put(e, "\x80\x00\x0c\x22", 4); /* 12.34 */
    if (name)
        put(e, "\x02\x00\x00\x00\x04\x01", 6);
    u8(e, 2); /* paid */
}

static void gtid_mysql(eb_t *e, uint64_t gno, uint64_t commit_us)
{
    e->n = 0;
    u8(e, 1);
    uint8_t u[16];
    siphon_my__uuid_parse(u, U1, 36);
    put(e, u, 16);
    le(e, gno, 8);
    u8(e, 2);
    le(e, 0, 8);
    le(e, 0, 8);
    le(e, commit_us, 7);
}

static void query(eb_t *e, const char *db, const char *sql)
{
    e->n = 0;
    le(e, 1, 4);
    le(e, 0, 4);
    u8(e, (unsigned)strlen(db));
    le(e, 0, 2);
    le(e, 0, 2);
    put(e, db, strlen(db) + 1);
    put(e, sql, strlen(sql));
}

static void xid(eb_t *e)
{
    e->n = 0;
    le(e, 12345, 8);
}

static void gtid_mariadb(eb_t *e, uint64_t seq, uint32_t domain, uint8_t flags)
{
    e->n = 0;
    le(e, seq, 8);
    le(e, domain, 4);
    u8(e, flags);
}

static char *val(const siphon_value_t *v)
{
    static char s[128];
    siphon_value_format(v, s, sizeof(s));
    return s;
}

/* ---- tests ---- */

static void test_mysql_transaction(void **state)
{
    (void)state;
    eb_t e;
    stream_start(MY_FLAVOR_MYSQL, MY_MODE_GTID, U1 ":1-41");
    gtid_mysql(&e, 42, 1700000000123456ULL);
    ok(MYE_MYSQL_GTID, 300, &e);
    query(&e, "shop", "BEGIN");
    ok(MYE_QUERY, 400, &e);
    table_map(&e, 77, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 500, &e);
    rows_head(&e, 77, 1, 0, 0x1f, 0);
    row_full(&e, UINT64_MAX, "h\xC3\xA9llo", 1);
    row_full(&e, 1, NULL, 0);
    ok(MYE_WRITE_ROWS_V2, 600, &e);
    /* an update logged with a minimal after image: only id and price */
    rows_head(&e, 77, 1, 1, 0x1f, 0x05);
    row_full(&e, 1, NULL, 0);
    u8(&e, 0x00);
    le(&e, 1, 8);
    put(&e, "\x7f\xff\xf3\xdd", 4);
    ok(MYE_UPDATE_ROWS_V2, 700, &e);
    xid(&e);
    ok(MYE_XID, 800, &e);

    assert_int_equal(batch.n, 5);
    siphon_change_t *b = &batch.recs[0], *c1 = &batch.recs[1], *c2 = &batch.recs[2],
                    *u = &batch.recs[3], *cm = &batch.recs[4];
    assert_int_equal(b->kind, SIPHON_REC_BEGIN);
    assert_string_equal(b->pos.text, U1 ":42");
    assert_int_equal(b->txid, 42);
    assert_true(b->commit_ts_us == 1700000000123456LL);
    assert_int_equal(c1->kind, SIPHON_REC_CHANGE);
    assert_int_equal(c1->op, SIPHON_OP_CREATE);
    assert_string_equal(c1->pos.text, U1 ":42");
    assert_string_equal(c1->database, "shop");
    const siphon_relation_t *r = c1->rel;
    assert_string_equal(r->schema, "shop");
    assert_string_equal(r->name, "orders");
    assert_int_equal(r->ncols, 5);
    assert_string_equal(r->cols[0].name, "id");
    assert_string_equal(r->cols[4].name, "st");
    assert_true(r->cols[0].is_pkey && !r->cols[1].is_pkey);
    assert_string_equal(r->cols[0].type_name, "bigint unsigned");
    assert_int_equal(r->cols[3].vtype, SIPHON_V_JSON);
    assert_int_equal(r->cols[1].vtype, SIPHON_V_TEXT);
    assert_null(c1->before);
    assert_string_equal(val(&c1->after->vals[0]), "18446744073709551615");
    assert_string_equal(val(&c1->after->vals[1]), "h\xC3\xA9llo");
    assert_string_equal(val(&c1->after->vals[2]), "-12.34");
    assert_string_equal(val(&c1->after->vals[3]), "true");
    assert_string_equal(val(&c1->after->vals[4]), "paid");
    assert_int_equal(c2->after->vals[1].type, SIPHON_V_NULL);
    assert_int_equal(c2->after->vals[3].type, SIPHON_V_NULL);
    assert_string_equal(val(&c2->after->vals[2]), "12.34");
    assert_int_equal(u->op, SIPHON_OP_UPDATE);
    assert_non_null(u->before);
    assert_string_equal(val(&u->before->vals[2]), "12.34");
    assert_string_equal(val(&u->after->vals[2]), "-12.34");
    assert_int_equal(u->after->vals[1].type, SIPHON_V_UNCHANGED);
    assert_int_equal(u->after->vals[4].type, SIPHON_V_UNCHANGED);
    assert_true(u->rel == c1->rel); /* the repeated map keeps its relation */
    assert_int_equal(cm->kind, SIPHON_REC_COMMIT);
    assert_string_equal(cm->pos.text, U1 ":1-42");
    assert_string_equal(st.last_commit_pos, U1 ":1-42");
    assert_string_equal(st.resume_file, "binlog.000001");
    assert_int_equal(st.resume_offset, 800);
    stream_end();
}

static void test_mysql_skip_resumed(void **state)
{
    (void)state;
    eb_t e;
    char err[256];
    stream_start(MY_FLAVOR_MYSQL, MY_MODE_GTID, U1 ":1-42");
    assert_int_equal(siphon_my__gtid_parse(&st.skip, U1 ":1-42", MY_GTID_MYSQL, err,
                                           sizeof(err)), 0);
    for (uint64_t gno = 41; gno <= 43; gno++) {
        gtid_mysql(&e, gno, 0);
        ok(MYE_MYSQL_GTID, 300, &e);
        query(&e, "shop", "BEGIN");
        ok(MYE_QUERY, 400, &e);
        table_map(&e, 77, "shop", "orders", 1);
        ok(MYE_TABLE_MAP, 500, &e);
        rows_head(&e, 77, 1, 0, 0x1f, 0);
        row_full(&e, gno, "x", 0);
        ok(MYE_WRITE_ROWS_V2, 600, &e);
        xid(&e);
        ok(MYE_XID, 700, &e);
    }
    /* 41 and 42 were delivered before the restart: only 43 comes */
    assert_int_equal(batch.n, 3);
    assert_string_equal(batch.recs[0].pos.text, U1 ":43");
    assert_string_equal(val(&batch.recs[1].after->vals[0]), "43");
    assert_string_equal(batch.recs[2].pos.text, U1 ":1-43");
    stream_end();
}

static void test_mariadb_stream(void **state)
{
    (void)state;
    eb_t e;
    char err[512];
    stream_start(MY_FLAVOR_MARIADB, MY_MODE_GTID, "0-1-6");
    /* the artificial ROTATE a dump starts with */
    e.n = 0;
    le(&e, 4, 8);
    put(&e, "binlog.000007", 13);
    assert_int_equal(feed(MYE_ROTATE, 1, 0, 0x20, &e, err, sizeof(err)), 0);
    assert_string_equal(st.file, "binlog.000007");
    assert_int_equal(st.file_seq, 7);

    gtid_mariadb(&e, 7, 0, 0x08);
    ok(MYE_MARIADB_GTID, 100, &e);
    table_map(&e, 20, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 200, &e);
    rows_head(&e, 20, 0, 0, 0x1f, 0);
    row_full(&e, 5, "five", 0);
    ok(MYE_WRITE_ROWS_V1, 300, &e);
    xid(&e);
    ok(MYE_XID, 400, &e);
    assert_int_equal(batch.n, 3);
    assert_string_equal(batch.recs[0].pos.text, "0-1-7");
    assert_int_equal(batch.recs[0].txid, 7);
    assert_string_equal(batch.recs[2].pos.text, "0-1-7");
    assert_true(batch.recs[2].pos.num == ((uint64_t)7 << 32 | 400));

    /* two transactions on a table no mapping reads: one POSITION, the newest */
    for (uint64_t seq = 8; seq <= 9; seq++) {
        gtid_mariadb(&e, seq, 0, 0x08);
        ok(MYE_MARIADB_GTID, 500, &e);
        table_map(&e, 21, "shop", "other", 1);
        ok(MYE_TABLE_MAP, 600, &e);
        rows_head(&e, 21, 0, 0, 0x1f, 0);
        row_full(&e, 1, "x", 0);
        ok(MYE_WRITE_ROWS_V1, 700, &e);
        xid(&e);
        ok(MYE_XID, 800, &e);
    }
    assert_int_equal(batch.n, 4);
    assert_int_equal(batch.recs[3].kind, SIPHON_REC_POSITION);
    assert_string_equal(batch.recs[3].pos.text, "0-1-9");

    /* a DDL statement in a group of its own (FL_STANDALONE): definitions go stale */
    int gen = st.ddl_gen;
    gtid_mariadb(&e, 10, 0, 0x01 | 0x20);
    ok(MYE_MARIADB_GTID, 900, &e);
    query(&e, "shop", "ALTER TABLE orders ADD COLUMN x int");
    ok(MYE_QUERY, 1000, &e);
    assert_int_equal(st.ddl_gen, gen + 1);
    assert_int_equal(batch.n, 4); /* collapsed into the same POSITION */
    assert_string_equal(batch.recs[3].pos.text, "0-1-10");

    /* TRUNCATE of a mapped table: a change with op 't' */
    gtid_mariadb(&e, 11, 0, 0x01 | 0x20);
    ok(MYE_MARIADB_GTID, 1100, &e);
    query(&e, "shop", " /* app */ TRUNCATE TABLE `orders`;");
    ok(MYE_QUERY, 1200, &e);
    assert_int_equal(batch.n, 7);
    assert_int_equal(batch.recs[4].kind, SIPHON_REC_BEGIN);
    assert_int_equal(batch.recs[5].op, SIPHON_OP_TRUNCATE);
    assert_string_equal(batch.recs[5].rel->name, "orders");
    assert_string_equal(batch.recs[6].pos.text, "0-1-11");
    /* TRUNCATE of another table: only the position */
    gtid_mariadb(&e, 12, 0, 0x01);
    ok(MYE_MARIADB_GTID, 1300, &e);
    query(&e, "shop", "truncate shop.other");
    ok(MYE_QUERY, 1400, &e);
    assert_int_equal(batch.n, 8);
    assert_int_equal(batch.recs[7].kind, SIPHON_REC_POSITION);

    /* another domain joins the state */
    gtid_mariadb(&e, 3, 5, 0x08);
    ok(MYE_MARIADB_GTID, 1500, &e);
    xid(&e);
    ok(MYE_XID, 1600, &e);
    assert_string_equal(batch.recs[batch.n - 1].pos.text, "0-1-12,5-1-3");

    /* the connection drops inside a transaction: no record now (it is resumed when it comes
     * again; test_cut_transaction below) */
    siphon_my__batch_reset(&batch);
    gtid_mariadb(&e, 13, 0, 0x08);
    ok(MYE_MARIADB_GTID, 1700, &e);
    table_map(&e, 20, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 1800, &e);
    rows_head(&e, 20, 0, 2, 0x1f, 0);
    row_full(&e, 5, "five", 0);
    ok(MYE_DELETE_ROWS_V1, 1900, &e);
    assert_int_equal(siphon_my__stream_disconnected(&st), 0);
    assert_int_equal(batch.n, 2);
    assert_int_equal(batch.recs[1].op, SIPHON_OP_DELETE);
    assert_non_null(batch.recs[1].before);
    assert_null(batch.recs[1].after);
    assert_string_equal(st.cut_pos, "0-1-13");
    assert_int_equal(st.cut_changes, 1);
    assert_string_equal(st.last_commit_pos, "0-1-12,5-1-3");
    stream_end();
}

static void test_file_positions_and_checksums(void **state)
{
    (void)state;
    eb_t e;
    char err[256];
    for (checksum_mode = 0; checksum_mode <= 1; checksum_mode++) {
        stream_start(MY_FLAVOR_MYSQL, MY_MODE_FILE, "");
        st.checksum = checksum_mode;
        e.n = 0;
        le(&e, 4, 8);
        put(&e, "binlog.000002", 13);
        assert_int_equal(feed(MYE_ROTATE, 1, 0, 0x20, &e, err, sizeof(err)), 0);
        gtid_mysql(&e, 0, 0);
        /* an anonymous GTID event of 65 bytes ending at 200: the group starts at 135 */
        size_t len = 19 + e.n + (checksum_mode ? 4 : 0);
        ok(MYE_ANONYMOUS_GTID, 135 + (uint32_t)len, &e);
        query(&e, "shop", "BEGIN");
        ok(MYE_QUERY, 300, &e);
        table_map(&e, 77, "shop", "orders", 1);
        ok(MYE_TABLE_MAP, 400, &e);
        rows_head(&e, 77, 1, 0, 0x1f, 0);
        row_full(&e, 9, "nine", 0);
        ok(MYE_WRITE_ROWS_V2, 450, &e);
        xid(&e);
        ok(MYE_XID, 500, &e);
        assert_int_equal(batch.n, 3);
        assert_string_equal(batch.recs[0].pos.text, "binlog.000002:135");
        assert_string_equal(val(&batch.recs[1].after->vals[1]), "nine");
        assert_string_equal(batch.recs[2].pos.text, "binlog.000002:500");
        stream_end();
    }
    checksum_mode = 0;
}

/* One group of a cut transaction test: the anonymous GTID event (65 bytes ending at 200, so
 * the group starts at binlog.000002:135), BEGIN, the map, then rows events [ids from, to]
 * of `per` rows each, up to `upto` (not ending the group). */
static void cut_group_rows(uint64_t from, uint64_t upto, int per)
{
    eb_t e;
    for (uint64_t id = from; id <= upto; id += (uint64_t)per) {
        rows_head(&e, 77, 1, 0, 0x1f, 0);
        for (uint64_t k = id; k < id + (uint64_t)per && k <= upto; k++)
            row_full(&e, k, "r", 0);
        ok(MYE_WRITE_ROWS_V2, 1000 + (uint32_t)id, &e);
    }
}

static void cut_group_start(void)
{
    eb_t e;
    char err[256];
    e.n = 0;
    le(&e, 4, 8);
    put(&e, "binlog.000002", 13);
    assert_int_equal(feed(MYE_ROTATE, 1, 0, 0x20, &e, err, sizeof(err)), 0);
    gtid_mysql(&e, 0, 0);
    ok(MYE_ANONYMOUS_GTID, 135 + 19 + (uint32_t)e.n, &e);
    query(&e, "shop", "BEGIN");
    ok(MYE_QUERY, 300, &e);
    table_map(&e, 77, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 400, &e);
}

/* A connection lost inside a transaction (MySQL, file positions): the transaction comes again
 * from its start on the next connection and continues after the changes already added to
 * batches, without a second BEGIN; twice cut, the count holds; another group first: RESET. */
static void test_cut_transaction(void **state)
{
    (void)state;
    eb_t e;
    stream_start(MY_FLAVOR_MYSQL, MY_MODE_FILE, "");
    cut_group_start();
    cut_group_rows(1, 5, 2); /* 3 events: 1-2, 3-4, 5 */
    assert_int_equal(batch.n, 6);
    assert_int_equal(siphon_my__stream_disconnected(&st), 0);
    assert_int_equal(batch.n, 6); /* no RESET: these records are still delivered */
    assert_string_equal(st.cut_pos, "binlog.000002:135");
    assert_int_equal(st.cut_changes, 5);
    siphon_my__batch_reset(&batch); /* next() took them */

    /* read again; cut again after the first event (2 of the 5 passed over so far) */
    cut_group_start();
    assert_int_equal(st.resume_left, 5);
    cut_group_rows(1, 2, 2);
    assert_int_equal(batch.n, 0);
    assert_int_equal(st.pass_over.n, 0);
    assert_int_equal(siphon_my__stream_disconnected(&st), 0);
    assert_int_equal(st.cut_changes, 5);

    /* read again: 1..5 passed over, 6..8 new, then the COMMIT */
    cut_group_start();
    cut_group_rows(1, 8, 2); /* 1-2, 3-4, 5-6 (5 passed over, 6 kept), 7-8 */
    xid(&e);
    ok(MYE_XID, 2000, &e);
    assert_int_equal(batch.n, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(batch.recs[i].kind, SIPHON_REC_CHANGE);
        assert_string_equal(batch.recs[i].pos.text, "binlog.000002:135");
        char want[8];
        snprintf(want, sizeof(want), "%d", 6 + i);
        assert_string_equal(val(&batch.recs[i].after->vals[0]), want);
    }
    assert_int_equal(batch.recs[3].kind, SIPHON_REC_COMMIT);
    assert_string_equal(batch.recs[3].pos.text, "binlog.000002:2000");
    assert_int_equal(st.change_seq, 8);
    assert_int_equal(st.resumed, 2);
    assert_int_equal(st.cut_pos[0], '\0');

    /* cut again, and a different group comes first: RESET before its records */
    siphon_my__batch_reset(&batch);
    gtid_mysql(&e, 0, 0);
    ok(MYE_ANONYMOUS_GTID, 2100, &e);
    query(&e, "shop", "BEGIN");
    ok(MYE_QUERY, 2200, &e);
    table_map(&e, 77, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 2300, &e);
    cut_group_rows(9, 9, 1);
    assert_int_equal(siphon_my__stream_disconnected(&st), 0);
    cut_group_start(); /* a group at 135: not the cut one (it began at 2032) */
    cut_group_rows(1, 1, 1);
    assert_int_equal(batch.n, 5);
    assert_int_equal(batch.recs[2].kind, SIPHON_REC_RESET);
    assert_int_equal(batch.recs[3].kind, SIPHON_REC_BEGIN);
    assert_string_equal(batch.recs[3].pos.text, "binlog.000002:135");
    assert_int_equal(st.resume_left, 0);
    stream_end();
}

static void test_refusals(void **state)
{
    (void)state;
    eb_t e;
    char err[512];
    stream_start(MY_FLAVOR_MARIADB, MY_MODE_GTID, "0-1-1");
    e.n = 0;
    le(&e, 0, 8);
    assert_int_equal(feed(MYE_WRITE_ROWS_COMPRESSED_V1, 1, 10, 0, &e, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "log_bin_compress=OFF"));
    assert_int_equal(feed(MYE_TRANSACTION_PAYLOAD, 1, 10, 0, &e, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "binlog_transaction_compression=OFF"));
    assert_int_equal(feed(MYE_PARTIAL_UPDATE_ROWS, 1, 10, 0, &e, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "binlog_row_value_options"));
    query(&e, "shop", "BEGIN");
    assert_int_equal(feed(MYE_QUERY_COMPRESSED, 1, 10, 0, &e, err, sizeof(err)), SIPHON_EINVAL);

    /* rows of a table id no TABLE_MAP announced */
    gtid_mariadb(&e, 2, 0, 0x08);
    ok(MYE_MARIADB_GTID, 100, &e);
    rows_head(&e, 99, 0, 0, 0x1f, 0);
    row_full(&e, 1, "x", 0);
    assert_int_equal(feed(MYE_WRITE_ROWS_V1, 1, 200, 0, &e, err, sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "table id 99"));

    /* without column names and no catalog to ask: refuse, naming the setting */
    table_map(&e, 30, "shop", "orders", 0);
    assert_int_equal(feed(MYE_TABLE_MAP, 1, 300, 0, &e, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "binlog_row_metadata=FULL"));
    assert_non_null(strstr(err, "shop.orders"));

    /* a row cut short adds no record; a column count that differs from the map's */
    table_map(&e, 31, "shop", "orders", 1);
    ok(MYE_TABLE_MAP, 400, &e);
    int before = batch.n;
    rows_head(&e, 31, 0, 0, 0x1f, 0);
    row_full(&e, 1, "abc", 0);
    e.n -= 3;
    assert_int_equal(feed(MYE_WRITE_ROWS_V1, 1, 500, 0, &e, err, sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "shop.orders"));
    assert_true(batch.n <= before + 1); /* at most the BEGIN, which is valid */
    for (int i = before; i < batch.n; i++)
        assert_int_not_equal(batch.recs[i].kind, SIPHON_REC_CHANGE);
    rows_head(&e, 31, 0, 0, 0x1f, 0);
    e.b[8] = 4; /* the column count (v1: right after table id and flags) */
    assert_int_equal(feed(MYE_WRITE_ROWS_V1, 1, 600, 0, &e, err, sizeof(err)), SIPHON_EPROTO);
    assert_non_null(strstr(err, "4 columns"));
    /* an event shorter than a header */
    uint8_t shorty[5] = {0};
    assert_int_equal(siphon_my__stream_event(&st, shorty, 5, err, sizeof(err)), SIPHON_EPROTO);
    stream_end();
}

static void test_catalog_names(void **state);

int my_event_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mysql_transaction),
        cmocka_unit_test(test_mysql_skip_resumed),
        cmocka_unit_test(test_mariadb_stream),
        cmocka_unit_test(test_file_positions_and_checksums),
        cmocka_unit_test(test_cut_transaction),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_catalog_names),
    };
    return cmocka_run_group_tests_name("mysql/event", tests, NULL, NULL);
}

/* ---- names from a catalog definition ---- */

static int calls;

/* A fake catalog: orders with the five columns, st's ENUM values in UTF-8. */
static int fake_def(void *opaque, const char *db, const char *table, my_tabledef_t *td,
                    char *errbuf, size_t errsize)
{
    (void)opaque;
    calls++;
    if (strcmp(table, "orders") != 0)
        return siphon_err(errbuf, errsize, SIPHON_ENOTFOUND, "no %s.%s", db, table);
    int n = 5;
    memset(td, 0, sizeof(*td));
    td->ncols = n;
    td->names = calloc(n, sizeof(char *));
    td->type_names = calloc(n, sizeof(char *));
    td->data_types = calloc(n, sizeof(char *));
    td->is_unsigned = calloc(n, sizeof(int));
    td->is_pkey = calloc(n, sizeof(int));
    td->nullable = calloc(n, sizeof(int));
    td->csnames = calloc(n, sizeof(char *));
    td->json = calloc(n, sizeof(int));
    td->nsyms = calloc(n, sizeof(int));
    td->syms = calloc(n, sizeof(char **));
    td->symlens = calloc(n, sizeof(size_t *));
    td->octets = calloc(n, sizeof(int));
    td->prec = calloc(n, sizeof(int));
    td->scale = calloc(n, sizeof(int));
    const char *nm[] = {"ID", "NAME", "PRICE", "DOC", "ST"};
    const char *dt[] = {"bigint", "varchar", "decimal", "json", "enum"};
    for (int i = 0; i < n; i++) {
        td->names[i] = strdup(nm[i]);
        td->data_types[i] = strdup(dt[i]);
        td->type_names[i] = strdup(dt[i]);
    }
    td->is_unsigned[0] = 1;
    td->is_pkey[0] = 1;
    td->csnames[1] = strdup("utf8mb4");
    td->csnames[4] = strdup("utf8mb4");
    td->nsyms[4] = 2;
    td->syms[4] = calloc(2, sizeof(char *));
    td->symlens[4] = calloc(2, sizeof(size_t));
    td->syms[4][0] = strdup("NEW");
    td->syms[4][1] = strdup("PAID");
    td->symlens[4][0] = 3;
    td->symlens[4][1] = 4;
    return 0;
}

static void test_catalog_names(void **state)
{
    (void)state;
    eb_t e;
    char err[512];
    stream_start(MY_FLAVOR_MARIADB, MY_MODE_GTID, "0-1-1");
    st.names_from_catalog = 1;
    st.tabledef = fake_def;
    calls = 0;
    for (int i = 0; i < 2; i++) {
        gtid_mariadb(&e, 2 + (uint64_t)i, 0, 0x08);
        ok(MYE_MARIADB_GTID, 100, &e);
        table_map(&e, 40, "shop", "orders", 0);
        ok(MYE_TABLE_MAP, 200, &e);
        rows_head(&e, 40, 0, 0, 0x1f, 0);
        row_full(&e, 7, "seven", 0);
        ok(MYE_WRITE_ROWS_V1, 300, &e);
        xid(&e);
        ok(MYE_XID, 400, &e);
    }
    assert_int_equal(calls, 1); /* read once, cached until a DDL statement */
    const siphon_change_t *c = &batch.recs[1];
    assert_string_equal(c->rel->cols[0].name, "ID");
    assert_string_equal(c->rel->cols[4].name, "ST");
    assert_true(c->rel->cols[0].is_pkey);
    assert_string_equal(val(&c->after->vals[4]), "PAID");
    /* a DDL statement: read again at the next map */
    gtid_mariadb(&e, 4, 0, 0x01);
    ok(MYE_MARIADB_GTID, 500, &e);
    query(&e, "shop", "ALTER TABLE orders COMMENT 'x'");
    ok(MYE_QUERY, 600, &e);
    gtid_mariadb(&e, 5, 0, 0x08);
    ok(MYE_MARIADB_GTID, 700, &e);
    table_map(&e, 41, "shop", "orders", 0);
    ok(MYE_TABLE_MAP, 800, &e);
    assert_int_equal(calls, 2);
    /* a table whose definition no longer matches the map: refused */
    table_map(&e, 42, "shop", "orders", 0);
    e.b[6 + 2 + 1 + 5 + 1 + 7] = 6; /* claim 6 columns: the types that follow no longer fit */
    assert_true(feed(MYE_TABLE_MAP, 1, 900, 0, &e, err, sizeof(err)) < 0);
    stream_end();
}
