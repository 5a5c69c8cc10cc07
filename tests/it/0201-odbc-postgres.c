/*
 * 0201-odbc-postgres - the ODBC polling connector through psqlODBC against a throwaway
 * PostgreSQL 15, end to end to a mock Kafka cluster through a mapping of the test's own
 * (entity odbc_order; table public.odbc_ord, composite key, timestamptz last-change column).
 *
 * Checked:
 *  - every common type (and uuid, jsonb, timestamptz, bytea, NaN), NULLs, a 100 KB text read
 *    in pieces and a jsonb longer than the size psqlODBC reports for it (read again whole),
 *    with their ODBC types, by the source alone;
 *  - new, updated and deleted rows (deletes found by reconciliation, key only, tombstones);
 *  - the case JDBC polling loses: a transaction that wrote its row (hdupdt = now(), its start
 *    time) before another one, and commits after that other row was delivered, i.e. with a
 *    timestamp earlier than the watermark of what was delivered. It arrives.
 *  - the connection dropped mid-read, several times (pg_terminate_backend), while 6000 rows
 *    with one and the same timestamp are read in pages of 150 (the cursor runs over the
 *    composite key): every row arrives exactly once, and the source reconnected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

typedef struct st {
    th_pg_t *pg;
    th_kafka_t *kafka;
    th_decoder_t *dec;
    char *dir, *connstr, *offsets, *mdir, *sdir;
    th_consumer_t *cons;
    th_odbc_events_t evs;
    th_odbc_conf_t conf;
    th_odbc_run_t *run;
} st_t;

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0 || !(st->pg = th_pg_start()) ||
        th_pg_exec(st->pg, "CREATE TABLE public.odbc_ord (hdcomp char(2) NOT NULL,"
                           " hdordn char(10) NOT NULL, hdcust char(8) NOT NULL, hdodat date,"
                           " hdamt numeric(12,2) NOT NULL DEFAULT 0, hdstat char(1) NOT NULL"
                           " DEFAULT 'O', hdnote text, hdupdt timestamptz DEFAULT now(),"
                           " PRIMARY KEY (hdcomp, hdordn))") != 0)
        return -1;
    st->connstr = th_odbc_pg_connstr(st->pg);
    st->offsets = th_path(st->dir, "offsets.json");
    if (th_odbc_order_files(st->dir, &st->mdir, &st->sdir) != 0 ||
        !(st->kafka = th_kafka_start(1)) ||
        th_kafka_create_topic(st->kafka, "it.odbc_order.v1", 4) != 0 ||
        !(st->dec = th_decoder_new(st->mdir, st->sdir)) ||
        !(st->cons = th_consumer_new(st->kafka, "it.odbc_order.v1")))
        return -1;
    th_odbc_conf_t *c = &st->conf;
    c->mappings_dir = st->mdir;
    c->schemas_dir = st->sdir;
    c->dsn = st->connstr;
    c->bootstraps = th_kafka_bootstraps(st->kafka);
    c->offsets_path = st->offsets;
    c->poll_interval_ms = 100;
    c->max_rows_per_poll = 150;
    c->safety_lag_ms = 1000;
    c->reconcile_interval_s = 1;
    c->reconcile_chunk = 1000;
    c->tables[0] = (th_odbc_table_t){"public.odbc_ord", "timestamp", "hdupdt", NULL, NULL};
    c->ntables = 1;
    char *yaml = th_path(st->dir, "siphon-odbc.yaml");
    int rc = th_odbc_yaml_write(yaml, c);
    free(yaml);
    return rc;
}

static int teardown(void **state)
{
    st_t *st = *state;
    if (st->run)
        th_odbc_run_stop(st->run, NULL, 0);
    th_odbc_events_free(&st->evs);
    th_consumer_destroy(st->cons);
    th_decoder_destroy(st->dec);
    th_kafka_destroy(st->kafka);
    th_pg_destroy(st->pg);
    free(st->connstr);
    free(st->offsets);
    free(st->mdir);
    free(st->sdir);
    free(st->dir);
    free(st);
    return 0;
}

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            th_pg_dump_log(st->pg, 30);                                                      \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

#define EXPECT_FIELD(ev, path, want)                                                          \
    do {                                                                                      \
        char b_[512];                                                                         \
        const char *g_ = th_json_text((ev)->value, path, b_, sizeof(b_));                     \
        CHECK(strcmp(g_, want) == 0, "%s: expected \"%s\", got \"%s\"", path, want, g_);   \
    } while (0)

static void test_types(void **state)
{
    st_t *st = *state;
    th_pg_t *pg = st->pg;
    assert_int_equal(th_pg_exec(pg, "CREATE TABLE it_ty (id bigint PRIMARY KEY, b boolean,"
                                    " i16 smallint, i64 bigint, f64 double precision,"
                                    " dec numeric(12,2), nn numeric, txt text, vc varchar(20),"
                                    " ch char(5), d date, tm time, ts timestamp, tz timestamptz,"
                                    " bin bytea, u uuid, j jsonb)"),
                     0);
    assert_int_equal(th_pg_exec(pg, "SET timezone = 'UTC';"
                                    "INSERT INTO it_ty VALUES (1, true, -32768,"
                                    " -9223372036854775808, 2.5, -1234.56,"
                                    " 123456789012345678901234567890.123456789,"
                                    " 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80', 'abc', 'ab',"
                                    " '2024-02-29', '12:34:56.789', '2024-01-01 10:00:00.123456',"
                                    " '2024-01-01 10:00:00+00', '\\x00ff10',"
                                    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1]}');"
                                    "INSERT INTO it_ty (id) VALUES (2);"
                                    "INSERT INTO it_ty VALUES (3, false, 0, -1, -0.5, 0, 'NaN',"
                                    " repeat('abcdefghij', 10000), '', '', '1969-12-31',"
                                    " '00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00',"
                                    " '\\x', '00000000-0000-0000-0000-000000000000',"
                                    " to_jsonb(repeat('x', 1000)))"),
                     0);
    th_odbc_conf_t c = st->conf;
    char *sd = th_path(st->dir, "types-state");
    c.state_dir = sd;
    c.tables[0] = (th_odbc_table_t){"public.it_ty", "incrementing", NULL, "id", NULL};
    char **rows;
    int n;
    int rc = th_odbc_read_changes(&c, "public", "it_ty", 3, 10000, &rows, &n);
    free(sd);
    CHECK(rc == 0 && n == 3, "read %d rows of it_ty", n);
    char big[100001];
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 10);
    big[100000] = 0;
    /* a jsonb longer than the 255 characters psqlODBC reports for it: read again whole */
    char xs[1001];
    memset(xs, 'x', 1000);
    xs[1000] = 0;
    char *want[3];
    want[0] = th_strf(
        "c id=1:int b=true:bool i16=-32768:int i64=-9223372036854775808:int f64=2.5:float "
        "dec=-1234.56:decimal nn=123456789012345678901234567890.123456789:decimal "
        "txt=h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80:text vc=abc:text ch=ab   :text "
        "d=2024-02-29:date tm=12:34:56.789000:time ts=2024-01-01T10:00:00.123456:timestamp "
        "tz=2024-01-01T10:00:00.000000:timestamp bin=\\x00ff10:bytes "
        "u=a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11:uuid j={\"a\": [1]}:text");
    want[1] = th_strf("c id=2:int b=null:null i16=null:null i64=null:null f64=null:null "
                      "dec=null:null nn=null:null txt=null:null vc=null:null ch=null:null "
                      "d=null:null tm=null:null ts=null:null tz=null:null bin=null:null "
                      "u=null:null j=null:null");
    want[2] = th_strf("c id=3:int b=false:bool i16=0:int i64=-1:int f64=-0.5:float dec=0.00:decimal "
                      "nn=NaN:text txt=%s:text vc=:text ch=     :text d=1969-12-31:date "
                      "tm=00:00:00.000000:time ts=1970-01-01T00:00:00.000000:timestamp "
                      "tz=1970-01-01T00:00:00.000000:timestamp bin=\\x:bytes "
                      "u=00000000-0000-0000-0000-000000000000:uuid j=\"%s\":text",
                      big, xs);
    for (int i = 0; i < 3 && i < n; i++)
        CHECK(strcmp(rows[i], want[i]) == 0, "row %d:\n got  %.600s\n want %.600s",
                 i + 1, rows[i], want[i]);
    th_log("3 rows of every common type read through psqlODBC, NULLs and a 100 KB text included");

    /* Only bound columns: rows come in blocks; a value longer than its buffer makes the page
     * be read again, one row per fetch. */
    assert_int_equal(th_pg_exec(pg, "CREATE TABLE it_js (id int PRIMARY KEY, j jsonb);"
                                    "INSERT INTO it_js VALUES (1, '{}'), (2, to_jsonb(repeat('y', 700))),"
                                    " (3, '[true]')"),
                     0);
    char **jrows;
    int jn;
    c.tables[0] = (th_odbc_table_t){"public.it_js", "incrementing", NULL, "id", NULL};
    char *sd2 = th_path(st->dir, "js-state");
    c.state_dir = sd2;
    rc = th_odbc_read_changes(&c, "public", "it_js", 3, 10000, &jrows, &jn);
    free(sd2);
    CHECK(rc == 0 && jn == 3, "read %d rows of it_js", jn);
    char ys[701];
    memset(ys, 'y', 700);
    ys[700] = 0;
    char *jw = th_strf("c id=2:int j=\"%s\":text", ys);
    CHECK(strcmp(jrows[0], "c id=1:int j={}:text") == 0 && strcmp(jrows[1], jw) == 0 &&
              strcmp(jrows[2], "c id=3:int j=[true]:text") == 0,
          "it_js rows:\n %.100s\n %.100s\n %.100s", jrows[0], jrows[1], jrows[2]);
    free(jw);
    for (int i = 0; i < jn; i++)
        free(jrows[i]);
    free(jrows);
    for (int i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    for (int i = 0; i < 3; i++)
        free(want[i]);
}

/* Order numbers are char(10): PostgreSQL keeps the padding. */
static const char *pad(const char *ordn)
{
    static char buf[4][16];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 16, "%-10s", ordn);
    return b;
}

static const th_event_t *wait_for(st_t *st, const char *ordn, char op, int from)
{
    const th_event_t *ev = th_odbc_events_wait(st->cons, st->dec, &st->evs, "order_number",
                                               pad(ordn), op, from, 20000);
    CHECK(ev != NULL, "no '%c' event for order %s within 20 s (%d messages consumed)", op, ordn, st->evs.n);
    return ev;
}

static void test_flow(void **state)
{
    st_t *st = *state;
    th_pg_t *pg = st->pg;
    st->run = th_odbc_run_start(&st->conf);
    assert_non_null(st->run);

    assert_int_equal(th_pg_exec(pg, "INSERT INTO odbc_ord VALUES"
                                    " ('01', 'A1', 'C1', '2024-03-01', 12.34, 'O', NULL, now()),"
                                    " ('01', 'A2', 'C2', NULL, 0.5, 'O', '', now()),"
                                    " ('02', 'A1', 'C3', '2024-03-02', 100, 'C', 'caf\xc3\xa9', now())"),
                     0);
    wait_for(st, "A2", 'c', 0);
    const th_event_t *ev = th_odbc_events_find(&st->evs, "order_number", pad("A2"), 'c', 0);
    EXPECT_FIELD(ev, "after.note", "");
    EXPECT_FIELD(ev, "after.order_date", "null");
    EXPECT_FIELD(ev, "after.total_amount", "0.50");
    EXPECT_FIELD(ev, "source.db", "postgres");
    int n1 = 0;
    for (int tries = 0; tries < 100 && n1 < 2; tries++) {
        n1 = th_odbc_events_count(&st->evs, "order_number", pad("A1"), 'c', 0);
        if (n1 < 2)
            th_odbc_events_poll(st->cons, st->dec, &st->evs, st->evs.n + 1, 200);
    }
    CHECK(n1 == 2, "%d creates for order number A1 (companies 01 and 02)", n1);
    th_log("3 new rows (two share an order number: the key is composite) arrived as creates");

    int mark = st->evs.n;
    assert_int_equal(th_pg_exec(pg, "UPDATE odbc_ord SET hdamt = 99.99, hdupdt = now()"
                                    " WHERE hdcomp = '01' AND hdordn = 'A1'"),
                     0);
    ev = wait_for(st, "A1", 'u', mark);
    EXPECT_FIELD(ev, "after.company", "01");
    EXPECT_FIELD(ev, "after.total_amount", "99.99");

    /* The JDBC hole: L writes its row first (now() = its start), B commits later and is
     * delivered; then L commits, with a timestamp older than B's. */
    mark = st->evs.n;
    PGconn *late = th_pg_connect(pg);
    assert_non_null(late);
    PGresult *r = PQexec(late, "BEGIN; INSERT INTO odbc_ord VALUES ('01', 'L1', 'C9', NULL, 1, 'O',"
                               " NULL, now())");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "late insert: %s",
             PQerrorMessage(late));
    PQclear(r);
    th_sleep_ms(100);
    assert_int_equal(th_pg_exec(pg, "INSERT INTO odbc_ord VALUES ('01', 'B1', 'C8', NULL, 2, 'O',"
                                    " NULL, now())"),
                     0);
    wait_for(st, "B1", 'c', mark);
    r = PQexec(late, "COMMIT");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "late commit: %s",
             PQerrorMessage(late));
    PQclear(r);
    PQfinish(late);
    char *older = th_pg_value(pg, NULL, "SELECT (SELECT hdupdt FROM odbc_ord WHERE hdordn = 'L1') <"
                                        " (SELECT hdupdt FROM odbc_ord WHERE hdordn = 'B1')");
    CHECK(older && strcmp(older, "t") == 0,
             "the late row's timestamp is not older than the delivered row's");
    free(older);
    ev = wait_for(st, "L1", 'c', mark);
    EXPECT_FIELD(ev, "after.customer_number", "C9      ");
    th_log("a transaction that committed after a newer row was delivered, with an older "
           "timestamp, arrived");

    mark = st->evs.n;
    assert_int_equal(th_pg_exec(pg, "DELETE FROM odbc_ord WHERE hdcomp = '02'"), 0);
    ev = wait_for(st, "A1", 'd', mark);
    char b[64];
    CHECK(strcmp(th_json_text(ev->key, "company", b, sizeof(b)), "02") == 0,
             "the delete is for company %s", b);
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 2000);
    CHECK(th_odbc_events_count(&st->evs, "order_number", pad("A1"), 0, mark) == 1,
             "%d events for A1 after the delete of 02/A1",
             th_odbc_events_count(&st->evs, "order_number", pad("A1"), 0, mark));
    th_log("a deleted row arrived as a delete of its (company, order) key");
}

static void test_connection_dropped(void **state)
{
    st_t *st = *state;
    th_pg_t *pg = st->pg;
    int mark = st->evs.n;
    /* one timestamp for all: the cursor walks (hdupdt, hdcomp, hdordn) */
    assert_int_equal(th_pg_exec(pg, "INSERT INTO odbc_ord SELECT '03', 'M' || lpad(g::text, 6, '0'),"
                                    " 'C', NULL, g, 'O', repeat('x', 200), now()"
                                    " FROM generate_series(1, 6000) g"),
                     0);
    int killed = 0;
    int64_t end = th_now_ms() + 30000;
    while (th_now_ms() < end) {
        int got = 0;
        for (int i = mark; i < st->evs.n; i++)
            got += st->evs.ev[i].value && st->evs.ev[i].op == 'c';
        if (got >= 6000)
            break;
        if (got > 0 && killed < 4) {
            char *n = th_pg_value(pg, NULL,
                                  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
            killed += n && atoi(n) > 0;
            free(n);
        }
        th_odbc_events_poll(st->cons, st->dec, &st->evs, st->evs.n + 500, 150);
    }
    CHECK(killed >= 2, "the connection was dropped only %d times during the read",
             killed);
    static int seen[6001];
    int missing = 0, dup = 0;
    char key[32];
    for (int i = mark; i < st->evs.n; i++) {
        const th_event_t *ev = &st->evs.ev[i];
        int g = 0;
        if (ev->value && ev->op == 'c' &&
            sscanf(th_json_text(ev->key, "order_number", key, sizeof(key)), "M%d", &g) == 1 &&
            g >= 1 && g <= 6000)
            seen[g]++;
    }
    for (int g = 1; g <= 6000; g++) {
        missing += seen[g] == 0;
        dup += seen[g] > 1;
    }
    CHECK(missing == 0 && dup == 0,
             "after %d dropped connections: %d rows missing, %d sent twice", killed, missing, dup);
    CHECK(th_odbc_run_alive(st->run), "the pipeline stopped");
    th_log("6000 rows read in pages of 150 while the connection was dropped %d times: each "
           "arrived exactly once",
           killed);
    char err[1024];
    int rc = th_odbc_run_stop(st->run, err, sizeof(err));
    st->run = NULL;
    CHECK(rc == 0, "the pipeline failed: %s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_connection_dropped),
    };
    return cmocka_run_group_tests_name("0201-odbc-postgres", tests, setup, teardown);
}
