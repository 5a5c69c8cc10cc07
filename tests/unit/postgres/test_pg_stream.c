/*
 * test_pg_stream.c - unit tests of the pgoutput v1 parser (pg_stream.c) with hand-built
 * CopyData payloads, laid out as the protocol documentation ("Logical Replication Message
 * Formats", "Streaming Replication Protocol") describes them. No server involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/postgres/pg_int.h"
#include "core/error.h"
#include "pipeline/source.h"

int pg_stream_tests(void);

/* ---- building messages ---- */

typedef struct mb {
    uint8_t *p;
    size_t len, cap;
} mb_t;

static void mb_put(mb_t *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2 + 64;
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
}

static void mb_u8(mb_t *m, uint8_t v) { mb_put(m, &v, 1); }
static void mb_u16(mb_t *m, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    mb_put(m, b, 2);
}
static void mb_u32(mb_t *m, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    mb_put(m, b, 4);
}
static void mb_u64(mb_t *m, uint64_t v)
{
    mb_u32(m, (uint32_t)(v >> 32));
    mb_u32(m, (uint32_t)v);
}
static void mb_str(mb_t *m, const char *s) { mb_put(m, s, strlen(s) + 1); }

/* TupleData column values */
static void col_text(mb_t *m, const char *s)
{
    mb_u8(m, 't');
    mb_u32(m, (uint32_t)strlen(s));
    mb_put(m, s, strlen(s));
}
static void col_null(mb_t *m) { mb_u8(m, 'n'); }
static void col_unchanged(mb_t *m) { mb_u8(m, 'u'); }

/* A test's stream and every payload it fed (payloads must outlive the batch). */
typedef struct fx {
    pg_stream_t st;
    void *bufs[256];
    int nbufs;
    char err[512];
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    siphon_pg__stream_init(&fx->st);
    fx->st.database = "erp";
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    siphon_pg__stream_destroy(&fx->st);
    for (int i = 0; i < fx->nbufs; i++)
        free(fx->bufs[i]);
    free(fx);
    return 0;
}

/* Wrap a pgoutput message in an XLogData header and feed it. The builder's buffer is handed
 * over (freed at teardown). */
static int feed_w(fx_t *fx, uint64_t lsn, mb_t *msg)
{
    mb_t w = {0};
    mb_u8(&w, 'w');
    mb_u64(&w, lsn);
    mb_u64(&w, lsn);
    mb_u64(&w, 0);
    mb_put(&w, msg->p, msg->len);
    free(msg->p);
    memset(msg, 0, sizeof(*msg));
    assert_true(fx->nbufs < 256);
    fx->bufs[fx->nbufs++] = w.p;
    fx->err[0] = '\0';
    return siphon_pg__stream_copydata(&fx->st, (char *)w.p, w.len, fx->err, sizeof(fx->err));
}

static int feed_keepalive(fx_t *fx, uint64_t wal_end, int reply)
{
    mb_t k = {0};
    mb_u8(&k, 'k');
    mb_u64(&k, wal_end);
    mb_u64(&k, 0);
    mb_u8(&k, (uint8_t)reply);
    fx->bufs[fx->nbufs++] = k.p;
    return siphon_pg__stream_copydata(&fx->st, (char *)k.p, k.len, fx->err, sizeof(fx->err));
}

typedef struct colspec {
    const char *name;
    uint32_t oid;
    int32_t typmod;
    int key;
} colspec_t;

static void msg_relation(fx_t *fx, uint64_t lsn, uint32_t oid, const char *schema,
                         const char *name, char replident, const colspec_t *cols, int ncols)
{
    mb_t m = {0};
    mb_u8(&m, 'R');
    mb_u32(&m, oid);
    mb_str(&m, schema);
    mb_str(&m, name);
    mb_u8(&m, (uint8_t)replident);
    mb_u16(&m, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++) {
        mb_u8(&m, (uint8_t)(cols[i].key ? 1 : 0));
        mb_str(&m, cols[i].name);
        mb_u32(&m, cols[i].oid);
        mb_u32(&m, (uint32_t)cols[i].typmod);
    }
    assert_int_equal(feed_w(fx, lsn, &m), 0);
}

static void msg_begin(fx_t *fx, uint64_t lsn, uint64_t final_lsn, int64_t pg_ts, uint32_t xid)
{
    mb_t m = {0};
    mb_u8(&m, 'B');
    mb_u64(&m, final_lsn);
    mb_u64(&m, (uint64_t)pg_ts);
    mb_u32(&m, xid);
    assert_int_equal(feed_w(fx, lsn, &m), 0);
}

static void msg_commit(fx_t *fx, uint64_t commit_lsn, uint64_t end_lsn, int64_t pg_ts)
{
    mb_t m = {0};
    mb_u8(&m, 'C');
    mb_u8(&m, 0);
    mb_u64(&m, commit_lsn);
    mb_u64(&m, end_lsn);
    mb_u64(&m, (uint64_t)pg_ts);
    assert_int_equal(feed_w(fx, end_lsn, &m), 0);
}

/* The sample table: public.oehdr (id int4 key, name varchar(30), amount numeric(12,2),
 * note text, created timestamptz). */
#define OEHDR 16384u
static const colspec_t oehdr_cols[] = {
    {"id", PG_OID_INT4, -1, 1},
    {"name", PG_OID_VARCHAR, 34, 0},
    {"amount", PG_OID_NUMERIC, (12 << 16 | 2) + 4, 0},
    {"note", PG_OID_TEXT, -1, 0},
    {"created", PG_OID_TIMESTAMPTZ, -1, 0},
};

static void oehdr_relation(fx_t *fx, char replident)
{
    colspec_t cols[5];
    memcpy(cols, oehdr_cols, sizeof(cols));
    if (replident == 'f')
        for (int i = 0; i < 5; i++)
            cols[i].key = 1;
    msg_relation(fx, 0x1000, OEHDR, "public", "oehdr", replident, cols, 5);
}

static const siphon_value_t *val(const siphon_row_t *row, int i)
{
    assert_non_null(row);
    assert_true(i < row->ncols);
    return &row->vals[i];
}

static void assert_text(const siphon_value_t *v, const char *want)
{
    assert_int_equal(v->type, SIPHON_V_TEXT);
    assert_int_equal(v->u.s.len, strlen(want));
    assert_memory_equal(v->u.s.ptr, want, strlen(want));
}

/* An Insert into oehdr of the row (1, null, null, null, null). */
static void mb_insert_id1(mb_t *m)
{
    mb_u8(m, 'I');
    mb_u32(m, OEHDR);
    mb_u8(m, 'N');
    mb_u16(m, 5);
    col_text(m, "1");
    for (int i = 0; i < 4; i++)
        col_null(m);
}

/* ---- tests ---- */

static void test_insert_txn(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x2000, 0x2100, 0, 77); /* commit time 2000-01-01 00:00:00 UTC */
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    col_text(&m, "1");
    col_text(&m, ""); /* empty string: TEXT of length 0, not NULL */
    col_text(&m, "-12.50");
    col_null(&m);
    col_text(&m, "2024-01-02 03:04:05.123456+00");
    assert_int_equal(feed_w(fx, 0x2010, &m), 0);
    msg_commit(fx, 0x2100, 0x2130, 1000000);

    pg_stream_t *st = &fx->st;
    assert_int_equal(st->nrecs, 3);
    const siphon_change_t *b = &st->recs[0], *c = &st->recs[1], *e = &st->recs[2];
    assert_int_equal(b->kind, SIPHON_REC_BEGIN);
    assert_true(b->pos.num == 0x2101);
    assert_null(b->pos.text);
    assert_true(b->txid == 77);
    assert_true(b->commit_ts_us == INT64_C(946684800000000));
    assert_string_equal(b->database, "erp");

    assert_int_equal(c->kind, SIPHON_REC_CHANGE);
    assert_int_equal(c->op, SIPHON_OP_CREATE);
    assert_true(c->pos.num == 0x2010);
    assert_true(c->txid == 77);
    assert_null(c->before);
    assert_non_null(c->rel);
    assert_string_equal(c->rel->schema, "public");
    assert_string_equal(c->rel->name, "oehdr");
    assert_int_equal(c->rel->id, OEHDR);
    assert_int_equal(c->rel->ncols, 5);
    assert_int_equal(c->rel->cols[0].is_key, 1);
    assert_int_equal(c->rel->cols[0].is_pkey, 1); /* DEFAULT identity: the primary key */
    assert_int_equal(c->rel->cols[1].is_key, 0);
    assert_int_equal(c->rel->cols[2].vtype, SIPHON_V_DECIMAL);
    assert_int_equal(c->rel->cols[4].vtype, SIPHON_V_TIMESTAMP);
    assert_int_equal(c->rel->cols[1].typmod, 34);
    assert_string_equal(c->rel->cols[0].type_name, "integer");

    assert_int_equal(val(c->after, 0)->type, SIPHON_V_INT);
    assert_true(val(c->after, 0)->u.i == 1);
    assert_text(val(c->after, 1), "");
    assert_int_equal(val(c->after, 2)->type, SIPHON_V_DECIMAL);
    assert_int_equal(val(c->after, 2)->u.dec.len, 5);
    assert_memory_equal(val(c->after, 2)->u.dec.digits, "-1250", 5);
    assert_int_equal(val(c->after, 2)->u.dec.scale, 2);
    assert_int_equal(val(c->after, 3)->type, SIPHON_V_NULL);
    assert_int_equal(val(c->after, 4)->type, SIPHON_V_TIMESTAMP);
    assert_true(val(c->after, 4)->u.ts.us == INT64_C(1704164645123456));
    assert_int_equal(val(c->after, 4)->u.ts.tz, 1);

    assert_int_equal(e->kind, SIPHON_REC_COMMIT);
    assert_true(e->pos.num == b->pos.num); /* BEGIN and COMMIT carry the same position */
    assert_true(e->txid == 77);
    assert_true(st->last_pos == 0x2101);
    assert_true(st->commits == 1);
    assert_int_equal(st->in_txn, 0);
    assert_true(st->received >= 0x2130);
}

static void update_msg(mb_t *m, char old_tag, int with_new_toast)
{
    mb_u8(m, 'U');
    mb_u32(m, OEHDR);
    if (old_tag == 'K') {
        mb_u8(m, 'K');
        mb_u16(m, 5);
        col_text(m, "5");
        col_null(m);
        col_null(m);
        col_null(m);
        col_null(m);
    } else if (old_tag == 'O') {
        mb_u8(m, 'O');
        mb_u16(m, 5);
        col_text(m, "5");
        col_text(m, "old name");
        col_text(m, "1.00");
        col_text(m, "a long note that was toasted");
        col_null(m);
    }
    mb_u8(m, 'N');
    mb_u16(m, 5);
    col_text(m, "6");
    col_text(m, "new name");
    col_text(m, "2.00");
    if (with_new_toast)
        col_unchanged(m);
    else
        col_text(m, "short");
    col_null(m);
}

static void test_update_old_key_and_toast(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x3000, 0x3100, 0, 1);
    update_msg(&m, 'K', 1);
    assert_int_equal(feed_w(fx, 0x3010, &m), 0);
    msg_commit(fx, 0x3100, 0x3130, 0);

    const siphon_change_t *c = &fx->st.recs[1];
    assert_int_equal(c->op, SIPHON_OP_UPDATE);
    /* Key-only old image: the key is data, the rest is not sent. */
    assert_int_equal(val(c->before, 0)->type, SIPHON_V_INT);
    assert_true(val(c->before, 0)->u.i == 5);
    for (int i = 1; i < 5; i++)
        assert_int_equal(val(c->before, i)->type, SIPHON_V_UNCHANGED);
    assert_true(val(c->after, 0)->u.i == 6);
    assert_text(val(c->after, 1), "new name");
    /* Unchanged TOAST value without a full old row: stays unchanged. */
    assert_int_equal(val(c->after, 3)->type, SIPHON_V_UNCHANGED);
    assert_int_equal(val(c->after, 4)->type, SIPHON_V_NULL);
}

static void test_update_full_old_fills_toast(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'f');
    msg_begin(fx, 0x3000, 0x3100, 0, 1);
    update_msg(&m, 'O', 1);
    assert_int_equal(feed_w(fx, 0x3010, &m), 0);
    msg_commit(fx, 0x3100, 0x3130, 0);

    const siphon_change_t *c = &fx->st.recs[1];
    assert_int_equal(c->op, SIPHON_OP_UPDATE);
    for (int i = 0; i < 5; i++)
        assert_int_equal(c->rel->cols[i].is_key, 1);
    /* FULL identity without the catalog: no column is known to be the primary key */
    assert_int_equal(c->rel->cols[0].is_pkey, 0);
    assert_text(val(c->before, 1), "old name");
    assert_int_equal(val(c->before, 4)->type, SIPHON_V_NULL); /* a real NULL in a full row */
    assert_text(val(c->before, 3), "a long note that was toasted");
    /* filled from the old row */
    assert_text(val(c->after, 3), "a long note that was toasted");
    assert_text(val(c->after, 1), "new name");
}

static void test_update_without_old(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x3000, 0x3100, 0, 1);
    update_msg(&m, 0, 0);
    assert_int_equal(feed_w(fx, 0x3010, &m), 0);
    msg_commit(fx, 0x3100, 0x3130, 0);
    const siphon_change_t *c = &fx->st.recs[1];
    assert_int_equal(c->op, SIPHON_OP_UPDATE);
    assert_null(c->before);
    assert_text(val(c->after, 3), "short");
}

static void test_delete_key_and_full(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x4000, 0x4100, 0, 9);
    mb_u8(&m, 'D');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'K');
    mb_u16(&m, 5);
    col_text(&m, "42");
    col_null(&m);
    col_null(&m);
    col_null(&m);
    col_null(&m);
    assert_int_equal(feed_w(fx, 0x4010, &m), 0);
    msg_commit(fx, 0x4100, 0x4130, 0);
    const siphon_change_t *c = &fx->st.recs[1];
    assert_int_equal(c->op, SIPHON_OP_DELETE);
    assert_null(c->after);
    assert_true(val(c->before, 0)->u.i == 42);
    assert_int_equal(val(c->before, 2)->type, SIPHON_V_UNCHANGED);

    /* REPLICA IDENTITY FULL: the whole old row, nulls included */
    oehdr_relation(fx, 'f');
    msg_begin(fx, 0x5000, 0x5100, 0, 10);
    mb_u8(&m, 'D');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'O');
    mb_u16(&m, 5);
    col_text(&m, "43");
    col_text(&m, "x");
    col_text(&m, "0.00");
    col_null(&m);
    col_text(&m, "1969-12-31 23:59:59.999999+00");
    assert_int_equal(feed_w(fx, 0x5010, &m), 0);
    msg_commit(fx, 0x5100, 0x5130, 0);
    c = &fx->st.recs[fx->st.nrecs - 2];
    assert_int_equal(c->op, SIPHON_OP_DELETE);
    assert_int_equal(val(c->before, 3)->type, SIPHON_V_NULL);
    assert_memory_equal(val(c->before, 2)->u.dec.digits, "0", 1);
    assert_true(val(c->before, 4)->u.ts.us == -1);
    assert_true(c->rel != fx->st.recs[1].rel); /* another shape: another version */
}

static void test_truncate_several(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    static const colspec_t c1[] = {{"a", PG_OID_INT8, -1, 1}};
    oehdr_relation(fx, 'd');
    msg_relation(fx, 0x1001, 20000, "public", "oeline", 'd', c1, 1);
    msg_relation(fx, 0x1002, 20001, "sales", "oenote", 'd', c1, 1);
    msg_begin(fx, 0x6000, 0x6100, 0, 11);
    mb_u8(&m, 'T');
    mb_u32(&m, 3);
    mb_u8(&m, 1); /* CASCADE */
    mb_u32(&m, OEHDR);
    mb_u32(&m, 20000);
    mb_u32(&m, 20001);
    assert_int_equal(feed_w(fx, 0x6010, &m), 0);
    msg_commit(fx, 0x6100, 0x6130, 0);

    pg_stream_t *st = &fx->st;
    assert_int_equal(st->nrecs, 5);
    const char *names[] = {"oehdr", "oeline", "oenote"};
    for (int i = 0; i < 3; i++) {
        const siphon_change_t *c = &st->recs[1 + i];
        assert_int_equal(c->kind, SIPHON_REC_CHANGE);
        assert_int_equal(c->op, SIPHON_OP_TRUNCATE);
        assert_null(c->before);
        assert_null(c->after);
        assert_string_equal(c->rel->name, names[i]);
        assert_true(c->txid == 11);
    }
    assert_string_equal(st->recs[3].rel->schema, "sales");
}

static void test_relation_versions(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    oehdr_relation(fx, 'd');
    const pg_rel_t *v1 = siphon_pg__stream_rel(&fx->st, OEHDR);
    assert_non_null(v1);
    uint64_t ver1 = v1->rel.version;

    msg_begin(fx, 0x7000, 0x7100, 0, 12);
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    for (int i = 0; i < 5; i++)
        col_null(&m);
    assert_int_equal(feed_w(fx, 0x7010, &m), 0);

    /* The same shape again (as after every reconnect): same version, same object. */
    oehdr_relation(fx, 'd');
    assert_ptr_equal(siphon_pg__stream_rel(&fx->st, OEHDR), v1);
    assert_true(fx->st.rel_versions == 1);

    /* ALTER TABLE ADD COLUMN: a new version; the change already read keeps the old one. */
    colspec_t cols[6];
    memcpy(cols, oehdr_cols, sizeof(oehdr_cols));
    cols[5] = (colspec_t){"region", PG_OID_BPCHAR, 7, 0};
    msg_relation(fx, 0x7020, OEHDR, "public", "oehdr", 'd', cols, 6);
    const pg_rel_t *v2 = siphon_pg__stream_rel(&fx->st, OEHDR);
    assert_true(v2 != v1);
    assert_true(v2->rel.version != ver1);
    assert_int_equal(v2->rel.ncols, 6);
    assert_string_equal(v2->rel.cols[5].type_name, "character");

    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 6);
    for (int i = 0; i < 5; i++)
        col_null(&m);
    col_text(&m, "EU   "); /* bpchar padding kept */
    assert_int_equal(feed_w(fx, 0x7030, &m), 0);
    msg_commit(fx, 0x7100, 0x7130, 0);

    const siphon_change_t *a = &fx->st.recs[1], *b = &fx->st.recs[2];
    assert_ptr_equal(a->rel, &v1->rel);
    assert_int_equal(a->rel->ncols, 5);
    assert_int_equal(a->after->ncols, 5);
    assert_ptr_equal(b->rel, &v2->rel);
    assert_int_equal(b->after->ncols, 6);
    assert_text(val(b->after, 5), "EU   ");

    /* A row with the old column count against the new shape is a protocol error. */
    msg_begin(fx, 0x8000, 0x8100, 0, 13);
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    for (int i = 0; i < 5; i++)
        col_null(&m);
    assert_int_equal(feed_w(fx, 0x8010, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "oehdr"));

    /* The relations survive a batch reset; records do not. */
    siphon_pg__stream_reset_batch(&fx->st);
    assert_int_equal(fx->st.nrecs, 0);
    assert_ptr_equal(siphon_pg__stream_rel(&fx->st, OEHDR), v2);
    assert_int_equal(v1->rel.ncols, 5);
}

static void test_type_and_origin(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    /* Type message for an enum, then a relation using it. */
    mb_u8(&m, 'Y');
    mb_u32(&m, 50001);
    mb_str(&m, "public");
    mb_str(&m, "order_status");
    assert_int_equal(feed_w(fx, 0x1000, &m), 0);
    static const colspec_t cols[] = {{"id", PG_OID_INT4, -1, 1}, {"st", 50001, -1, 0}};
    msg_relation(fx, 0x1001, 30000, "public", "orders", 'd', cols, 2);
    const pg_rel_t *r = siphon_pg__stream_rel(&fx->st, 30000);
    assert_string_equal(r->rel.cols[1].type_name, "public.order_status");
    assert_int_equal(r->rel.cols[1].vtype, SIPHON_V_TEXT);

    msg_begin(fx, 0x2000, 0x2100, 0, 5);
    mb_u8(&m, 'O'); /* Origin: ignored */
    mb_u64(&m, 0x1234);
    mb_str(&m, "pg_16399");
    assert_int_equal(feed_w(fx, 0x2001, &m), 0);
    mb_u8(&m, 'M'); /* logical decoding message: ignored */
    mb_u8(&m, 1);
    mb_u64(&m, 0x2002);
    mb_str(&m, "prefix");
    mb_u32(&m, 3);
    mb_put(&m, "abc", 3);
    assert_int_equal(feed_w(fx, 0x2002, &m), 0);
    mb_u8(&m, 'I');
    mb_u32(&m, 30000);
    mb_u8(&m, 'N');
    mb_u16(&m, 2);
    col_text(&m, "1");
    col_text(&m, "shipped");
    assert_int_equal(feed_w(fx, 0x2010, &m), 0);
    msg_commit(fx, 0x2100, 0x2130, 0);
    assert_int_equal(fx->st.nrecs, 3);
    assert_text(val(fx->st.recs[1].after, 1), "shipped");
}

/* What the on-demand snapshot's hooks see: messages with their prefix and content inside the
 * transaction being returned (not inside one skipped after a reconnect), each change, each
 * commit; a hook may append records to the open transaction; COMMIT and POSITION records carry
 * the position suffix. */
typedef struct hook_log {
    int messages, changes, commits;
    char prefix[32], content[64];
    int transactional;
    uint64_t lsn;
} hook_log_t;

static int hk_message(void *opaque, pg_stream_t *st, int transactional, uint64_t lsn,
                      const char *prefix, const char *content, size_t len, char *errbuf,
                      size_t errsize)
{
    hook_log_t *h = opaque;
    (void)errbuf;
    (void)errsize;
    h->messages++;
    h->transactional = transactional;
    h->lsn = lsn;
    snprintf(h->prefix, sizeof(h->prefix), "%s", prefix);
    snprintf(h->content, sizeof(h->content), "%.*s", (int)len, content);
    /* like the high watermark: a record of our own inside the transaction */
    siphon_change_t *c = siphon_pg__stream_push(st, SIPHON_REC_CHANGE);
    assert_non_null(c);
    c->op = SIPHON_OP_READ;
    c->snapshot = 1;
    c->pos.num = st->txn_pos;
    return 0;
}

static int hk_change(void *opaque, pg_stream_t *st, const siphon_change_t *rec, char *errbuf,
                     size_t errsize)
{
    hook_log_t *h = opaque;
    (void)st;
    (void)errbuf;
    (void)errsize;
    assert_int_equal(rec->kind, SIPHON_REC_CHANGE);
    h->changes++;
    return 0;
}

static int hk_commit(void *opaque, pg_stream_t *st, char *errbuf, size_t errsize)
{
    hook_log_t *h = opaque;
    (void)errbuf;
    (void)errsize;
    assert_int_equal(st->recs[st->nrecs - 1].kind, SIPHON_REC_COMMIT);
    h->commits++;
    return 0;
}

static void feed_message(fx_t *fx, uint64_t lsn, uint8_t flags, const char *prefix,
                         const char *content)
{
    mb_t m = {0};
    mb_u8(&m, 'M');
    mb_u8(&m, flags);
    mb_u64(&m, lsn);
    mb_str(&m, prefix);
    mb_u32(&m, (uint32_t)strlen(content));
    mb_put(&m, content, strlen(content));
    assert_int_equal(feed_w(fx, lsn, &m), 0);
}

static void test_hooks_messages_suffix(void **state)
{
    fx_t *fx = *state;
    hook_log_t h = {0};
    static const pg_stream_hooks_t hooks = {hk_message, hk_change, hk_commit};
    fx->st.hooks = &hooks;
    fx->st.hooks_opaque = &h;
    fx->st.pos_suffix = " isnap public.oehdr=0,1,20,20";
    oehdr_relation(fx, 'd');

    msg_begin(fx, 0x2000, 0x2100, 0, 7);
    feed_message(fx, 0x2010, 1, "siphon", "{\"siphon\":\"high\"}");
    mb_t m = {0};
    mb_insert_id1(&m);
    assert_int_equal(feed_w(fx, 0x2020, &m), 0);
    msg_commit(fx, 0x2100, 0x2130, 0);
    assert_int_equal(h.messages, 1);
    assert_int_equal(h.transactional, 1);
    assert_int_equal(h.lsn, 0x2010);
    assert_string_equal(h.prefix, "siphon");
    assert_string_equal(h.content, "{\"siphon\":\"high\"}");
    assert_int_equal(h.changes, 1); /* the insert; not the record the hook added */
    assert_int_equal(h.commits, 1);
    /* BEGIN, the hook's 'r', the insert, COMMIT with the suffix (BEGIN has none: event ids) */
    assert_int_equal(fx->st.nrecs, 4);
    assert_int_equal(fx->st.recs[1].op, SIPHON_OP_READ);
    assert_int_equal(fx->st.recs[1].pos.num, 0x2101);
    assert_null(fx->st.recs[0].pos.text);
    assert_string_equal(fx->st.recs[3].pos.text, " isnap public.oehdr=0,1,20,20");

    /* a non-transactional message outside a transaction reaches the hook too */
    feed_message(fx, 0x2200, 0, "other", "x");
    assert_int_equal(h.messages, 2);
    assert_int_equal(h.transactional, 0);

    /* a keepalive POSITION carries the suffix; a reset batch forgets it */
    assert_int_equal(feed_keepalive(fx, 0x3000, 0), 0);
    assert_string_equal(fx->st.recs[fx->st.nrecs - 1].pos.text, " isnap public.oehdr=0,1,20,20");
    siphon_pg__stream_reset_batch(&fx->st);
    assert_null(fx->st.pos_suffix);

    /* a transaction returned before a reconnect is skipped whole: no hook sees it again */
    assert_int_equal(siphon_pg__stream_disconnected(&fx->st), 0);
    msg_begin(fx, 0x2000, 0x2100, 0, 7);
    feed_message(fx, 0x2010, 1, "siphon", "again");
    msg_commit(fx, 0x2100, 0x2130, 0);
    assert_int_equal(h.messages, 2);
    assert_int_equal(h.commits, 1);
    assert_int_equal(fx->st.nrecs, 0);

    /* a truncated message is a protocol error */
    mb_u8(&m, 'M');
    mb_u8(&m, 1);
    mb_u64(&m, 0x4000);
    mb_str(&m, "siphon");
    mb_u32(&m, 100);
    mb_put(&m, "short", 5);
    msg_begin(fx, 0x4000, 0x4100, 0, 9);
    assert_int_equal(feed_w(fx, 0x4010, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "'M'"));
    fx->st.hooks = NULL;
}

static void test_keepalive_position(void **state)
{
    fx_t *fx = *state;
    pg_stream_t *st = &fx->st;
    assert_int_equal(feed_keepalive(fx, 0x500, 1), 0);
    assert_int_equal(st->nrecs, 1);
    assert_int_equal(st->recs[0].kind, SIPHON_REC_POSITION);
    assert_true(st->recs[0].pos.num == 0x500);
    assert_int_equal(st->reply_requested, 1);
    assert_true(st->received == 0x500);

    /* Not past the last position: nothing. */
    st->reply_requested = 0;
    assert_int_equal(feed_keepalive(fx, 0x500, 0), 0);
    assert_int_equal(st->nrecs, 1);
    assert_int_equal(st->reply_requested, 0);

    /* Inside a transaction: its commit will carry the position. */
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x600, 0x700, 0, 3);
    assert_int_equal(feed_keepalive(fx, 0x650, 0), 0);
    assert_int_equal(st->recs[st->nrecs - 1].kind, SIPHON_REC_BEGIN);
    msg_commit(fx, 0x700, 0x730, 0);
    assert_true(st->last_pos == 0x701);

    /* After the commit: walEnd past it becomes a POSITION. */
    assert_int_equal(feed_keepalive(fx, 0x730, 0), 0);
    assert_int_equal(st->recs[st->nrecs - 1].kind, SIPHON_REC_POSITION);
    assert_true(st->recs[st->nrecs - 1].pos.num == 0x730);
    assert_true(st->last_pos == 0x730);
}

static void insert_one(fx_t *fx, uint64_t lsn, const char *id)
{
    mb_t m = {0};
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    col_text(&m, id);
    for (int i = 0; i < 4; i++)
        col_null(&m);
    assert_int_equal(feed_w(fx, lsn, &m), 0);
}

static void test_reconnect_reset_and_skip(void **state)
{
    fx_t *fx = *state;
    pg_stream_t *st = &fx->st;
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x1100, 0x1200, 0, 20);
    insert_one(fx, 0x1110, "1");
    msg_commit(fx, 0x1200, 0x1230, 0);
    msg_begin(fx, 0x1300, 0x1400, 0, 21);
    insert_one(fx, 0x1310, "2");
    /* the connection drops inside transaction 21: nothing is abandoned */
    assert_int_equal(siphon_pg__stream_disconnected(st), 0);
    assert_int_equal(st->nrecs, 5);
    assert_int_equal(st->recs[4].kind, SIPHON_REC_CHANGE);
    assert_int_equal(st->in_txn, 0);

    /* Reconnected from an older acknowledged position: transaction 20 comes again and is
     * dropped whole; 21 comes again from its start: its BEGIN and the change returned before
     * are passed over, the rest follows as if the connection had never dropped. */
    siphon_pg__stream_reset_batch(st);
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x1100, 0x1200, 0, 20);
    insert_one(fx, 0x1110, "1");
    assert_int_equal(feed_keepalive(fx, 0x1150, 0), 0); /* inside: no POSITION */
    msg_commit(fx, 0x1200, 0x1230, 0);
    assert_int_equal(st->nrecs, 0);
    msg_begin(fx, 0x1300, 0x1400, 0, 21);
    insert_one(fx, 0x1310, "2");
    assert_int_equal(st->nrecs, 0);
    /* a second loss while passing over: the count of returned messages stays */
    assert_int_equal(siphon_pg__stream_disconnected(st), 0);
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x1300, 0x1400, 0, 21);
    insert_one(fx, 0x1310, "2");
    insert_one(fx, 0x1320, "3");
    msg_commit(fx, 0x1400, 0x1430, 0);
    assert_int_equal(st->nrecs, 2);
    assert_int_equal(st->recs[0].kind, SIPHON_REC_CHANGE);
    assert_true(val(st->recs[0].after, 0)->u.i == 3);
    assert_int_equal(st->recs[1].kind, SIPHON_REC_COMMIT);
    assert_true(st->recs[1].pos.num == 0x1401);

    /* No RESET when nothing was open. */
    siphon_pg__stream_reset_batch(st);
    assert_int_equal(siphon_pg__stream_disconnected(st), 0);
    assert_int_equal(st->nrecs, 0);

    /* Should another transaction come first, the cut one is abandoned (RESET) and the other
     * returned whole. */
    msg_begin(fx, 0x1500, 0x1600, 0, 22);
    insert_one(fx, 0x1510, "4");
    assert_int_equal(siphon_pg__stream_disconnected(st), 0);
    siphon_pg__stream_reset_batch(st);
    oehdr_relation(fx, 'd');
    msg_begin(fx, 0x1700, 0x1800, 0, 23);
    insert_one(fx, 0x1710, "5");
    msg_commit(fx, 0x1800, 0x1830, 0);
    assert_int_equal(st->nrecs, 4);
    assert_int_equal(st->recs[0].kind, SIPHON_REC_RESET);
    assert_true(st->recs[0].txid == 22);
    assert_true(st->recs[0].pos.num == 0x1601);
    assert_int_equal(st->recs[1].kind, SIPHON_REC_BEGIN);
    assert_true(st->recs[1].txid == 23);
    assert_true(val(st->recs[2].after, 0)->u.i == 5);
}

static void test_sql_ascii_rawtext(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};
    fx->st.sql_ascii = 1;
    oehdr_relation(fx, 'd');
    const pg_rel_t *r = siphon_pg__stream_rel(&fx->st, OEHDR);
    assert_int_equal(r->rel.cols[1].vtype, SIPHON_V_RAWTEXT);
    assert_int_equal(r->rel.cols[3].vtype, SIPHON_V_RAWTEXT);
    assert_int_equal(r->rel.cols[0].vtype, SIPHON_V_INT);
    msg_begin(fx, 0x2000, 0x2100, 0, 1);
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    col_text(&m, "1");
    col_text(&m, "M\xfcller"); /* Latin-1 bytes in a SQL_ASCII database */
    col_null(&m);
    col_text(&m, "");
    col_null(&m);
    assert_int_equal(feed_w(fx, 0x2010, &m), 0);
    const siphon_value_t *v = val(fx->st.recs[1].after, 1);
    assert_int_equal(v->type, SIPHON_V_RAWTEXT);
    assert_int_equal(v->u.s.len, 6);
    assert_memory_equal(v->u.s.ptr, "M\xfcller", 6);
    assert_int_equal(val(fx->st.recs[1].after, 3)->type, SIPHON_V_RAWTEXT);
    assert_int_equal(val(fx->st.recs[1].after, 3)->u.s.len, 0);
}

static void test_errors(void **state)
{
    fx_t *fx = *state;
    mb_t m = {0};

    /* change outside a transaction */
    oehdr_relation(fx, 'd');
    mb_insert_id1(&m);
    assert_int_equal(feed_w(fx, 0x10, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "outside a transaction"));

    /* unknown relation */
    msg_begin(fx, 0x20, 0x100, 0, 1);
    mb_u8(&m, 'I');
    mb_u32(&m, 99);
    mb_u8(&m, 'N');
    mb_u16(&m, 0);
    assert_int_equal(feed_w(fx, 0x30, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "OID 99"));

    /* a value that does not parse names the column, the table and the LSN */
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    col_text(&m, "one");
    for (int i = 0; i < 4; i++)
        col_null(&m);
    assert_int_equal(feed_w(fx, 0x40, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "\"id\""));
    assert_non_null(strstr(fx->err, "public.oehdr"));
    assert_non_null(strstr(fx->err, "0/40"));

    /* truncated tuple */
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    mb_u8(&m, 't');
    mb_u32(&m, 100);
    mb_put(&m, "12", 2);
    assert_int_equal(feed_w(fx, 0x50, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "truncated"));

    /* binary values were not asked for */
    mb_u8(&m, 'I');
    mb_u32(&m, OEHDR);
    mb_u8(&m, 'N');
    mb_u16(&m, 5);
    mb_u8(&m, 'b');
    assert_int_equal(feed_w(fx, 0x60, &m), SIPHON_EPROTO);

    /* a commit that is not the open transaction's */
    mb_u8(&m, 'C');
    mb_u8(&m, 0);
    mb_u64(&m, 0x999);
    mb_u64(&m, 0x9a0);
    mb_u64(&m, 0);
    assert_int_equal(feed_w(fx, 0x9a0, &m), SIPHON_EPROTO);

    /* a Begin inside a transaction */
    mb_u8(&m, 'B');
    mb_u64(&m, 0x200);
    mb_u64(&m, 0);
    mb_u32(&m, 2);
    assert_int_equal(feed_w(fx, 0x70, &m), SIPHON_EPROTO);

    /* unknown message and CopyData types */
    mb_u8(&m, 'S');
    mb_u32(&m, 1);
    assert_int_equal(feed_w(fx, 0x80, &m), SIPHON_EPROTO);
    assert_non_null(strstr(fx->err, "unknown message type 'S'"));
    char bad[] = "x";
    assert_int_equal(siphon_pg__stream_copydata(&fx->st, bad, 1, fx->err, sizeof(fx->err)),
                     SIPHON_EPROTO);
    char shortw[] = {'w', 0, 0};
    assert_int_equal(siphon_pg__stream_copydata(&fx->st, shortw, 3, fx->err, sizeof(fx->err)),
                     SIPHON_EPROTO);
    /* a Relation message cut short */
    mb_u8(&m, 'R');
    mb_u32(&m, 5);
    mb_str(&m, "public");
    assert_int_equal(feed_w(fx, 0x90, &m), SIPHON_EPROTO);
}

static void test_many_rows_one_txn(void **state)
{
    /* A large transaction: every row decoded, values intact after many arena blocks. */
    fx_t *fx = *state;
    pg_stream_t *st = &fx->st;
    oehdr_relation(fx, 'd');
    char *bufs[200];
    int n = 0;
    msg_begin(fx, 0x10000, 0x90000, 0, 99);
    for (int i = 0; i < 200; i++) {
        mb_t m = {0}, w = {0};
        char id[16], amount[32];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(amount, sizeof(amount), "%d.%02d", i * 3, i % 100);
        mb_u8(&m, 'I');
        mb_u32(&m, OEHDR);
        mb_u8(&m, 'N');
        mb_u16(&m, 5);
        col_text(&m, id);
        col_text(&m, "customer name");
        col_text(&m, amount);
        col_text(&m, "note");
        col_text(&m, "2020-02-29 12:00:00+00");
        mb_u8(&w, 'w');
        mb_u64(&w, 0x10010 + (uint64_t)i);
        mb_u64(&w, 0x10010 + (uint64_t)i);
        mb_u64(&w, 0);
        mb_put(&w, m.p, m.len);
        free(m.p);
        bufs[n++] = (char *)w.p;
        assert_int_equal(siphon_pg__stream_copydata(st, (char *)w.p, w.len, fx->err, sizeof(fx->err)), 0);
    }
    msg_commit(fx, 0x90000, 0x90030, 0);
    assert_int_equal(st->nrecs, 202);
    for (int i = 0; i < 200; i++) {
        const siphon_change_t *c = &st->recs[1 + i];
        char want[32];
        assert_true(val(c->after, 0)->u.i == i);
        assert_true(c->pos.num == 0x10010 + (uint64_t)i);
        snprintf(want, sizeof(want), "%d%02d", i * 3, i % 100);
        const char *d = want;
        while (d[0] == '0' && d[1])
            d++;
        assert_int_equal(val(c->after, 2)->u.dec.len, strlen(d));
        assert_memory_equal(val(c->after, 2)->u.dec.digits, d, strlen(d));
    }
    assert_true(st->batch_bytes > 200 * 60);
    for (int i = 0; i < n; i++)
        free(bufs[i]);
}

int pg_stream_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_old_key_and_toast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_full_old_fills_toast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_without_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_key_and_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relation_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_and_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_messages_suffix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_reset_and_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_ascii_rawtext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows_one_txn, setup, teardown),
    };
    return cmocka_run_group_tests_name("pg_stream", tests, NULL, NULL);
}
