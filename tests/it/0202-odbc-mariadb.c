/*
 * 0202-odbc-mariadb - the ODBC polling connector through MariaDB Connector/ODBC against a
 * throwaway MariaDB 10.11, end to end to a mock Kafka cluster through a mapping of the test's
 * own (entity odbc_order; database `public`, table odbc_ord, composite key, timestamp(6)).
 *
 * Checked:
 *  - every common type (bit, unsigned bigint beyond int64, datetime vs timestamp, time(6),
 *    longblob, json), NULLs and a 100 KB text read in pieces, by the source alone;
 *  - new, updated and deleted rows (deletes found by reconciliation, tombstones);
 *  - a transaction that wrote its row (NOW(6)) before another row was written and delivered,
 *    and commits after that: its timestamp is older than what was delivered. It arrives;
 *  - the connection killed mid-read several times (KILL <id>) while 4000 rows with one
 *    timestamp are read in pages of 100: every row arrives exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

typedef struct st {
    char *dir, *connstr, *offsets, *mdir, *sdir;
    th_my_t *my;
    th_kafka_t *kafka;
    th_decoder_t *dec;
    th_consumer_t *cons;
    th_odbc_events_t evs;
    th_odbc_conf_t conf;
    th_odbc_run_t *run;
} st_t;

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0)
        return -1;
    if (!(st->my = th_my_start(NULL)) ||
        th_my_exec(st->my,
                   "CREATE DATABASE public;"
                   "CREATE TABLE public.odbc_ord (hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL,"
                   " hdcust char(8) NOT NULL, hdodat date, hdamt decimal(12,2) NOT NULL DEFAULT 0,"
                   " hdstat char(1) NOT NULL DEFAULT 'O', hdnote text, hdupdt timestamp(6) NULL,"
                   " PRIMARY KEY (hdcomp, hdordn)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4") != 0)
        return -1;
    st->connstr = th_odbc_my_connstr(st->my, "public");
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
    c->max_rows_per_poll = 100;
    c->safety_lag_ms = 1000;
    c->reconcile_interval_s = 1;
    c->reconcile_chunk = 1000;
    c->tables[0] = (th_odbc_table_t){"public.odbc_ord", "timestamp", "hdupdt", NULL, NULL};
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
    th_my_destroy(st->my);
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
            th_my_dump_log(st->my, 30);                                                      \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

#define EXPECT_FIELD(ev, path, want)                                                          \
    do {                                                                                      \
        char b_[512];                                                                         \
        const char *g_ = th_json_text((ev)->value, path, b_, sizeof(b_));                     \
        CHECK(strcmp(g_, want) == 0, "%s: expected \"%s\", got \"%s\"", path, want, g_);      \
    } while (0)

static void test_types(void **state)
{
    st_t *st = *state;
    assert_int_equal(th_my_exec(st->my,
                                "CREATE TABLE public.it_ty (id bigint PRIMARY KEY, b bit(1),"
                                " i16 smallint, i64 bigint, u64 bigint unsigned, f64 double,"
                                " amt decimal(12,2), txt longtext, vc varchar(20), ch char(5),"
                                " d date, tm time(6), ts datetime(6), tz timestamp(6) NULL,"
                                " bin varbinary(64), blb longblob, j json)"
                                " DEFAULT CHARSET=utf8mb4;"
                                "INSERT INTO public.it_ty VALUES (1, 1, -32768,"
                                " -9223372036854775808, 18446744073709551615, 2.5, -1234.56,"
                                " 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80', 'abc', 'ab',"
                                " '2024-02-29', '12:34:56.789', '2024-01-01 10:00:00.123456',"
                                " '2024-01-01 10:00:00', 0x00ff10, 0x0102, '{\"a\": [1]}');"
                                "INSERT INTO public.it_ty (id) VALUES (2);"
                                "INSERT INTO public.it_ty VALUES (3, 0, 0, -1, 0, -0.5, 0,"
                                " repeat('abcdefghij', 10000), '', '', '1969-12-31', '00:00:00',"
                                " '1970-01-01 00:00:00', NULL, '', repeat('z', 70000), '[]')"),
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
    char *zhex = malloc(140001);
    for (int i = 0; i < 70000; i++)
        memcpy(zhex + 2 * i, "7a", 2); /* 'z' */
    zhex[140000] = 0;
    char *want[3];
    want[0] = th_strf(
        "c id=1:int b=true:bool i16=-32768:int i64=-9223372036854775808:int "
        "u64=18446744073709551615:decimal f64=2.5:float amt=-1234.56:decimal "
        "txt=h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80:text vc=abc:text ch=ab:text "
        "d=2024-02-29:date tm=12:34:56.789000:time ts=2024-01-01T10:00:00.123456:timestamp "
        "tz=2024-01-01T10:00:00.000000:timestamp bin=\\x00ff10:bytes blb=\\x0102:bytes "
        "j={\"a\": [1]}:text");
    want[1] = th_strf("c id=2:int b=null:null i16=null:null i64=null:null u64=null:null "
                      "f64=null:null amt=null:null txt=null:null vc=null:null ch=null:null "
                      "d=null:null tm=null:null ts=null:null tz=null:null bin=null:null "
                      "blb=null:null j=null:null");
    want[2] = th_strf("c id=3:int b=false:bool i16=0:int i64=-1:int u64=0:decimal f64=-0.5:float "
                      "amt=0.00:decimal txt=%s:text vc=:text ch=:text d=1969-12-31:date "
                      "tm=00:00:00.000000:time ts=1970-01-01T00:00:00.000000:timestamp "
                      "tz=null:null bin=\\x:bytes blb=\\x%s:bytes j=[]:text",
                      big, zhex);
    for (int i = 0; i < 3 && i < n; i++)
        CHECK(strcmp(rows[i], want[i]) == 0, "row %d:\n got  %.700s\n want %.700s", i + 1,
              rows[i], want[i]);
    th_log("3 rows of every common type read through MariaDB Connector/ODBC, NULLs, a 100 KB "
           "text and a 70 KB blob included");
    for (int i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    for (int i = 0; i < 3; i++)
        free(want[i]);
    free(zhex);
}

static const th_event_t *wait_for(st_t *st, const char *ordn, char op, int from)
{
    const th_event_t *ev = th_odbc_events_wait(st->cons, st->dec, &st->evs, "order_number", ordn,
                                               op, from, 20000);
    CHECK(ev != NULL, "no '%c' event for order %s within 20 s (%d messages)", op, ordn,
          st->evs.n);
    return ev;
}

static void test_flow(void **state)
{
    st_t *st = *state;
    st->run = th_odbc_run_start(&st->conf);
    assert_non_null(st->run);
    assert_int_equal(th_my_exec(st->my,
                                "INSERT INTO public.odbc_ord VALUES"
                                " ('01', 'A1', 'C1', '2024-03-01', 12.34, 'O', NULL, NOW(6)),"
                                " ('01', 'A2', 'C2', NULL, 0.5, 'O', '', NOW(6)),"
                                " ('02', 'A1', 'C3', '2024-03-02', 100, 'C', 'caf\xc3\xa9', NOW(6))"),
                     0);
    const th_event_t *ev = wait_for(st, "A2", 'c', 0);
    EXPECT_FIELD(ev, "after.note", "");
    EXPECT_FIELD(ev, "after.total_amount", "0.50");
    EXPECT_FIELD(ev, "source.db", "public");
    int n1 = 0;
    for (int tries = 0; tries < 100 && n1 < 2; tries++) {
        n1 = th_odbc_events_count(&st->evs, "order_number", "A1", 'c', 0);
        if (n1 < 2)
            th_odbc_events_poll(st->cons, st->dec, &st->evs, st->evs.n + 1, 200);
    }
    CHECK(n1 == 2, "%d creates for order number A1 (companies 01 and 02)", n1);
    ev = th_odbc_events_find(&st->evs, "order_number", "A1", 'c', 0);
    th_log("3 new rows (two share an order number: the key is composite) arrived as creates");

    int mark = st->evs.n;
    assert_int_equal(th_my_exec(st->my, "UPDATE public.odbc_ord SET hdamt = 99.99, hdupdt = NOW(6)"
                                        " WHERE hdcomp = '02' AND hdordn = 'A1'"),
                     0);
    ev = wait_for(st, "A1", 'u', mark);
    EXPECT_FIELD(ev, "after.company", "02");
    EXPECT_FIELD(ev, "after.total_amount", "99.99");
    EXPECT_FIELD(ev, "after.note", "caf\xc3\xa9");

    /* the late commit: L writes first, B writes and is delivered, then L commits */
    mark = st->evs.n;
    th_odbc_t *late = th_odbc_connect(st->connstr);
    assert_non_null(late);
    assert_int_equal(th_odbc_autocommit(late, 0), 0);
    assert_int_equal(th_odbc_exec(late, "INSERT INTO public.odbc_ord VALUES ('01', 'L1', 'C9', NULL,"
                                        " 1, 'O', NULL, NOW(6))"),
                     0);
    th_sleep_ms(100);
    assert_int_equal(th_my_exec(st->my, "INSERT INTO public.odbc_ord VALUES ('01', 'B1', 'C8', NULL,"
                                        " 2, 'O', NULL, NOW(6))"),
                     0);
    wait_for(st, "B1", 'c', mark);
    assert_int_equal(th_odbc_commit(late), 0);
    th_odbc_close(late);
    char *older = th_my_value(st->my, NULL,
                              "SELECT (SELECT hdupdt FROM public.odbc_ord WHERE hdordn = 'L1') <"
                              " (SELECT hdupdt FROM public.odbc_ord WHERE hdordn = 'B1')");
    CHECK(older && strcmp(older, "1") == 0,
          "the late row's timestamp is not older than the delivered row's");
    free(older);
    ev = wait_for(st, "L1", 'c', mark);
    EXPECT_FIELD(ev, "after.customer_number", "C9");
    th_log("a transaction that committed after a newer row was delivered, with an older "
           "timestamp, arrived");

    mark = st->evs.n;
    assert_int_equal(th_my_exec(st->my, "DELETE FROM public.odbc_ord WHERE hdcomp = '02'"), 0);
    ev = wait_for(st, "A1", 'd', mark);
    char b[64];
    CHECK(strcmp(th_json_text(ev->key, "company", b, sizeof(b)), "02") == 0,
          "the delete is for company %s", b);
    th_odbc_events_poll(st->cons, st->dec, &st->evs, 0, 2000);
    int tomb = 0;
    for (int i = mark; i < st->evs.n; i++)
        tomb += st->evs.ev[i].value == NULL;
    CHECK(th_odbc_events_count(&st->evs, "order_number", "A1", 0, mark) == 1 && tomb == 1,
          "after the delete of 02/A1: %d events for A1, %d tombstones",
          th_odbc_events_count(&st->evs, "order_number", "A1", 0, mark), tomb);
    th_log("a deleted row arrived as a delete of its (company, order) key and a tombstone");
}

/* KILL every client connection but the harness's own. How many, or -1. */
static int kill_clients(st_t *st)
{
    char *ids = th_my_value(st->my, NULL,
                            "SELECT GROUP_CONCAT(id) FROM information_schema.processlist"
                            " WHERE id <> CONNECTION_ID() AND user = 'root'"
                            " AND command NOT IN ('Daemon', 'Binlog Dump')");
    int n = 0;
    char *save = NULL;
    for (char *tok = ids ? strtok_r(ids, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
        if (th_my_exec(st->my, "KILL %s", tok) == 0)
            n++;
    free(ids);
    return n;
}

static void test_connection_killed(void **state)
{
    st_t *st = *state;
    int mark = st->evs.n;
    assert_int_equal(th_my_exec(st->my,
                                "INSERT INTO public.odbc_ord SELECT '03', CONCAT('M', LPAD(seq, 6, '0')),"
                                " 'C', NULL, seq, 'O', REPEAT('x', 200), NOW(6)"
                                " FROM public.seq_1_to_4000"),
                     0);
    int killed = 0;
    static int seen[4001];
    int64_t end = th_now_ms() + 30000;
    char key[32];
    int got = 0;
    while (th_now_ms() < end && got < 4000) {
        if (got > 0 && killed < 4 && kill_clients(st) > 0)
            killed++;
        th_odbc_events_poll(st->cons, st->dec, &st->evs, st->evs.n + 400, 150);
        got = 0;
        for (int i = mark; i < st->evs.n; i++)
            got += st->evs.ev[i].value && st->evs.ev[i].op == 'c';
    }
    CHECK(killed >= 2, "the connection was killed only %d times during the read", killed);
    for (int i = mark; i < st->evs.n; i++) {
        const th_event_t *ev = &st->evs.ev[i];
        int g = 0;
        if (ev->value && ev->op == 'c' &&
            sscanf(th_json_text(ev->key, "order_number", key, sizeof(key)), "M%d", &g) == 1 &&
            g >= 1 && g <= 4000)
            seen[g]++;
    }
    int missing = 0, dup = 0;
    for (int g = 1; g <= 4000; g++) {
        missing += seen[g] == 0;
        dup += seen[g] > 1;
    }
    CHECK(missing == 0 && dup == 0, "after %d kills: %d rows missing, %d sent twice", killed,
          missing, dup);
    CHECK(th_odbc_run_alive(st->run), "the pipeline stopped");
    th_log("4000 rows read in pages of 100 while the connection was killed %d times: each "
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
        cmocka_unit_test(test_connection_killed),
    };
    return cmocka_run_group_tests_name("0202-odbc-mariadb", tests, setup, teardown);
}
