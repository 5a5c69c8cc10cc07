/*
 * 0200-odbc-sqlite - the ODBC polling connector through sqliteodbc (SQLite's ODBC driver) on a
 * throwaway database file, end to end to a mock Kafka cluster through a mapping of the test's
 * own (entity odbc_order; config table "odbc_ord", the mapping's public.odbc_ord).
 *
 * Checked, on a table in timestamp mode with a composite key (hdcomp, hdordn), pages of 2 rows
 * and a 1 s safety lag:
 *  - every common type, NULLs and a 100 KB text (read in pieces) with their ODBC types, read by
 *    the source alone (incrementing mode);
 *  - new rows arrive once each as creates with their values; NULL and '' stay apart;
 *  - updated rows arrive as updates, untouched rows are not sent again though the re-read window
 *    reads them again;
 *  - a row written with a timestamp earlier than rows already delivered (the row JDBC polling
 *    loses) arrives;
 *  - deleted rows arrive as deletes (key only) followed by tombstones, after a reconciliation;
 *  - a stop and a restart from the offsets file: no row delivered before is sent again, new
 *    changes made while stopped arrive; the offsets file holds the table's watermark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

typedef struct st {
    char *dir, *db, *connstr, *offsets, *mdir, *sdir;
    th_odbc_t *conn;
    th_kafka_t *kafka;
    th_decoder_t *dec;
    th_consumer_t *cons;
    th_odbc_events_t evs;
    th_odbc_conf_t conf;
    th_odbc_run_t *run;
} st_t;

/* inside th_odbc_exec() formats */
#define NOW_SQL "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0)
        return -1;
    st->db = th_path(st->dir, "erp.db");
    char *cs = th_odbc_sqlite_connstr(st->db);
    st->connstr = th_strf("%s;Timeout=10000", cs);
    free(cs);
    st->offsets = th_path(st->dir, "offsets.json");
    if (!(st->conn = th_odbc_connect(st->connstr)))
        return -1;
    if (th_odbc_exec(st->conn,
                     "CREATE TABLE odbc_ord (hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL,"
                     " hdcust char(8) NOT NULL, hdodat date, hdamt numeric(12,2) NOT NULL DEFAULT 0,"
                     " hdstat char(1) NOT NULL DEFAULT 'O', hdnote text, hdupdt timestamp,"
                     " PRIMARY KEY (hdcomp, hdordn))") != 0)
        return -1;
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
    c->max_rows_per_poll = 2; /* several pages per sweep */
    c->safety_lag_ms = 1000;
    c->reconcile_interval_s = 1;
    c->reconcile_chunk = 3;
    c->tables[0] = (th_odbc_table_t){"odbc_ord", "timestamp", "hdupdt", NULL, NULL};
    c->ntables = 1;
    char *yaml = th_path(st->dir, "siphon.yaml");
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
    th_odbc_close(st->conn);
    free(st->db);
    free(st->connstr);
    free(st->offsets);
    free(st->mdir);
    free(st->sdir);
    free(st->dir);
    free(st);
    return 0;
}

static const char *text_at(const th_event_t *ev, const char *path, char *buf, size_t size)
{
    return th_json_text(ev->value, path, buf, size);
}

#define EXPECT_FIELD(ev, path, want)                                                          \
    do {                                                                                      \
        char b_[512];                                                                         \
        const char *g_ = text_at(ev, path, b_, sizeof(b_));                                   \
        IT_CHECK(NULL, strcmp(g_, want) == 0, "%s: expected \"%s\", got \"%s\"", path, want, g_); \
    } while (0)

static void test_types(void **state)
{
    st_t *st = *state;
    char big[100001];
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 26);
    big[100000] = 0;
    assert_int_equal(th_odbc_exec(st->conn,
                                  "CREATE TABLE ty (id integer PRIMARY KEY, b boolean, i16 smallint,"
                                  " i64 bigint, f64 double, dec numeric(12,2), txt text,"
                                  " vc varchar(20), d date, tm time, ts timestamp, bin blob, j json)"),
                     0);
    assert_int_equal(th_odbc_exec(st->conn,
                                  "INSERT INTO ty VALUES (1, 1, -32768, 9007199254740993, 2.5,"
                                  " -1234.56, 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80', 'abc',"
                                  " '2024-02-29', '12:34:56.789', '2024-01-01 10:00:00.123456',"
                                  " x'00ff10', '{\"a\":1}')"),
                     0);
    assert_int_equal(th_odbc_exec(st->conn, "INSERT INTO ty (id) VALUES (2)"), 0);
    assert_int_equal(th_odbc_exec(st->conn,
                                  "INSERT INTO ty VALUES (3, 0, 0, -1, -0.5, 0, '%s', '',"
                                  " '1969-12-31', '00:00:00', '1970-01-01 00:00:00', x'', '[]')",
                                  big),
                     0);
    th_odbc_conf_t c = st->conf;
    char *sd = th_path(st->dir, "types-state");
    c.state_dir = sd;
    c.max_rows_per_poll = 10;
    c.tables[0] = (th_odbc_table_t){"ty", "incrementing", NULL, "id", NULL};
    char **rows;
    int n;
    int rc = th_odbc_read_changes(&c, "public", "ty", 3, 10000, &rows, &n);
    free(sd);
    IT_CHECK(NULL, rc == 0 && n == 3, "read %d rows of ty", n);
    const char *want[3] = {
        "c id=1:int b=true:bool i16=-32768:int i64=9007199254740993:int f64=2.5:float "
        "dec=-1234.56:decimal txt=h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80:text vc=abc:text "
        "d=2024-02-29:date tm=12:34:56.789000:time ts=2024-01-01T10:00:00.123456:timestamp "
        "bin=\\x00ff10:bytes j={\"a\":1}:json",
        "c id=2:int b=null:null i16=null:null i64=null:null f64=null:null dec=null:null "
        "txt=null:null vc=null:null d=null:null tm=null:null ts=null:null bin=null:null "
        "j=null:null",
        NULL,
    };
    char *w3 = th_strf("c id=3:int b=false:bool i16=0:int i64=-1:int f64=-0.5:float "
                       "dec=0:decimal txt=%s:text vc=:text d=1969-12-31:date tm=00:00:00.000000:time "
                       "ts=1970-01-01T00:00:00.000000:timestamp bin=\\x:bytes j=[]:json", big);
    want[2] = w3;
    for (int i = 0; i < 3; i++)
        IT_CHECK(NULL, strcmp(rows[i], want[i]) == 0, "row %d:\n got  %.400s\n want %.400s", i + 1,
                 rows[i], want[i]);
    th_log("3 rows of every common type read through sqliteodbc, NULLs and a 100 KB text included");
    for (int i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    free(w3);
}

static const th_event_t *wait_for(st_t *st, const char *ordn, char op, int from)
{
    const th_event_t *ev = th_odbc_events_wait(st->cons, st->dec, &st->evs, "order_number", ordn,
                                               op, from, 20000);
    IT_CHECK(NULL, ev != NULL, "no '%c' event for order %s within 20 s", op, ordn);
    return ev;
}

static void insert(st_t *st, const char *ordn, const char *cust, const char *amt,
                   const char *note_sql)
{
    assert_int_equal(th_odbc_exec(st->conn,
                                  "INSERT INTO odbc_ord VALUES ('01', '%s', '%s', '2024-03-01', %s,"
                                  " 'O', %s, " NOW_SQL ")",
                                  ordn, cust, amt, note_sql),
                     0);
}

static void test_new_updated_late_deleted(void **state)
{
    st_t *st = *state;
    st->run = th_odbc_run_start(&st->conf);
    assert_non_null(st->run);

    /* new rows */
    insert(st, "A1", "C1", "12.34", "NULL");
    insert(st, "A2", "C2", "0.5", "''");
    insert(st, "A3", "C3", "100", "'caf\xc3\xa9'");
    insert(st, "A4", "C4", "7", "NULL");
    insert(st, "A5", "C5", "8", "NULL");
    const char *ordns[] = {"A1", "A2", "A3", "A4", "A5"};
    for (int i = 0; i < 5; i++)
        wait_for(st, ordns[i], 'c', 0);
    const th_event_t *ev = th_odbc_events_find(&st->evs, "order_number", "A1", 'c', 0);
    EXPECT_FIELD(ev, "after.company", "01");
    EXPECT_FIELD(ev, "after.customer_number", "C1");
    EXPECT_FIELD(ev, "after.total_amount", "12.34");
    EXPECT_FIELD(ev, "after.order_date", "2024-03-01");
    EXPECT_FIELD(ev, "after.note", "null");
    EXPECT_FIELD(ev, "source.table", "odbc_ord");
    ev = th_odbc_events_find(&st->evs, "order_number", "A2", 'c', 0);
    EXPECT_FIELD(ev, "after.note", "");
    EXPECT_FIELD(ev, "after.total_amount", "0.50");
    ev = th_odbc_events_find(&st->evs, "order_number", "A3", 'c', 0);
    EXPECT_FIELD(ev, "after.note", "caf\xc3\xa9");
    th_log("5 new rows arrived as creates (pages of 2)");

    /* updates: two rows change, the others are re-read by the window but not sent */
    int mark = st->evs.n;
    assert_int_equal(th_odbc_exec(st->conn, "UPDATE odbc_ord SET hdamt = 99.99, hdstat = 'C',"
                                            " hdupdt = " NOW_SQL " WHERE hdordn IN ('A2', 'A4')"),
                     0);
    ev = wait_for(st, "A2", 'u', mark);
    EXPECT_FIELD(ev, "after.total_amount", "99.99");
    EXPECT_FIELD(ev, "after.status", "C");
    char a4ts[64];
    ev = wait_for(st, "A4", 'u', mark);
    text_at(ev, "after.updated_at", a4ts, sizeof(a4ts));

    /* a row whose timestamp is earlier than the rows just delivered: it commits "late" */
    assert_int_equal(th_odbc_exec(st->conn,
                                  "INSERT INTO odbc_ord VALUES ('01', 'L1', 'C9', NULL, 1, 'O', NULL,"
                                  " strftime('%%Y-%%m-%%d %%H:%%M:%%f', (SELECT max(hdupdt) FROM"
                                  " odbc_ord), '-0.2 seconds'))"),
                     0);
    char *lts = th_odbc_value(st->conn, "SELECT hdupdt FROM odbc_ord WHERE hdordn = 'L1'");
    char *uts = th_odbc_value(st->conn, "SELECT max(hdupdt) FROM odbc_ord WHERE hdordn <> 'L1'");
    IT_CHECK(NULL, lts && uts && strcmp(lts, uts) < 0,
             "the late row's timestamp %s is not earlier than the delivered rows' %s", lts, uts);
    ev = wait_for(st, "L1", 'c', mark);
    EXPECT_FIELD(ev, "after.order_date", "null");
    th_log("a row written at %s, after rows of %s were delivered, arrived", lts, uts);
    free(lts);
    free(uts);
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 1500);
    IT_CHECK(NULL, th_odbc_events_count(&st->evs, "order_number", "A1", 0, mark) == 0 &&
                       th_odbc_events_count(&st->evs, "order_number", "A3", 0, mark) == 0 &&
                       th_odbc_events_count(&st->evs, "order_number", "A2", 0, mark) == 1,
             "rows re-read by the window were sent again");

    /* deletes */
    mark = st->evs.n;
    assert_int_equal(th_odbc_exec(st->conn, "DELETE FROM odbc_ord WHERE hdordn IN ('A1', 'A5')"), 0);
    ev = wait_for(st, "A1", 'd', mark);
    EXPECT_FIELD(ev, "before", "null");
    IT_CHECK(NULL, ev->key && json_object_size(ev->key) == 2, "delete without its full key");
    wait_for(st, "A5", 'd', mark);
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 2500);
    int tomb = 0, others = 0;
    for (int i = mark; i < st->evs.n; i++) {
        if (!st->evs.ev[i].value)
            tomb++;
        else if (st->evs.ev[i].op != 'd')
            others++;
    }
    IT_CHECK(NULL, tomb == 2 && others == 0, "%d tombstones, %d other events after the deletes",
             tomb, others);
    IT_CHECK(NULL, th_odbc_events_count(&st->evs, "order_number", "A1", 'd', mark) == 1,
             "the delete was sent twice");
    th_log("2 deleted rows arrived as deletes and tombstones after a reconciliation");
}

static void test_restart(void **state)
{
    st_t *st = *state;
    char err[1024];
    int rc = th_odbc_run_stop(st->run, err, sizeof(err));
    st->run = NULL;
    IT_CHECK(NULL, rc == 0, "the pipeline failed: %s", err);
    char *off = th_read_file(st->offsets, NULL, 0);
    IT_CHECK(NULL, off && strstr(off, "\\\"public.odbc_ord\\\":{\\\"b\\\":"), "offsets file: %s", off ? off : "(none)");
    free(off);
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 500);
    int mark = st->evs.n;

    /* while stopped: one new row, one update */
    insert(st, "R1", "C7", "3", "NULL");
    assert_int_equal(th_odbc_exec(st->conn, "UPDATE odbc_ord SET hdcust = 'NEW', hdupdt = " NOW_SQL
                                            " WHERE hdordn = 'A3'"),
                     0);
    st->run = th_odbc_run_start(&st->conf);
    assert_non_null(st->run);
    wait_for(st, "R1", 'c', mark);
    const th_event_t *ev = wait_for(st, "A3", 'u', mark);
    EXPECT_FIELD(ev, "after.customer_number", "NEW");
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 2500);
    const char *old[] = {"A2", "A4", "L1"};
    for (int i = 0; i < 3; i++)
        IT_CHECK(NULL, th_odbc_events_count(&st->evs, "order_number", old[i], 0, mark) == 0,
                 "row %s, delivered before the restart, was sent again", old[i]);
    IT_CHECK(NULL, th_odbc_events_count(&st->evs, "order_number", "R1", 0, mark) == 1,
             "the new row was sent %d times",
             th_odbc_events_count(&st->evs, "order_number", "R1", 0, mark));
    IT_CHECK(NULL, th_odbc_run_alive(st->run), "the pipeline stopped");
    th_log("after a restart: the changes made while stopped arrived, nothing was sent twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_new_updated_late_deleted),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests_name("0200-odbc-sqlite", tests, setup, teardown);
}
