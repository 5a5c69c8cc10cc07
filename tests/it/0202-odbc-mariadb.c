/*
 * 0202-odbc-mariadb - `siphon run` with an ODBC source through MariaDB Connector/ODBC against a
 * throwaway MariaDB 10.11, to a mock Kafka cluster through the test's own mappings (database
 * `public`: odbc_ord with a composite key and a timestamp(6) last-change column, it_ty with one
 * column of every common type).
 *
 * Checked, with the binary and its siphon.yaml:
 *  - every common type (bit(1), unsigned bigint beyond int64, datetime vs timestamp, time(6),
 *    longblob, json), NULLs, a 100 KB text and a 70 KB blob read in pieces, through a mapping
 *    with the Avro type of each column;
 *  - the shared change flow (th_odbc_flow): new rows with a composite key, an update, a
 *    transaction that wrote its row (NOW(6)) before another row was written and delivered and
 *    commits after that (a timestamp older than what was delivered), a delete;
 *  - the connection killed mid-read several times (KILL <id>) while 4000 rows with one
 *    timestamp are read in pages of 100: every row arrives exactly once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

static const th_odbc_col_t COLS[] = {TH_ODBC_TYPE_COLS, {"u64", TH_AVRO_DECIMAL(20, 0)},
                                        {"ch", "\"string\""}, {"tz", TH_AVRO_TS},
                                        {"blb", "\"bytes\""}};
#define NCOLS ((int)(sizeof(COLS) / sizeof(COLS[0])))
static const th_odbc_entity_t TYPES = {"odbc_types", "public.it_ty", "incrementing", NULL, "id",
                                       "id", COLS, NCOLS};
static const th_odbc_entity_t *const ENTITIES[] = {&TYPES};

typedef struct st {
    th_my_t *my;
    th_odbc_fx_t *fx;
} st_t;

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (th_odbc_env() != 0 || !(st->my = th_my_start(NULL)) ||
        th_my_exec(st->my,
                   "CREATE DATABASE public;"
                   "CREATE TABLE public.odbc_ord (hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL,"
                   " hdcust char(8) NOT NULL, hdodat date, hdamt decimal(12,2) NOT NULL DEFAULT 0,"
                   " hdstat char(1) NOT NULL DEFAULT 'O', hdnote text, hdupdt timestamp(6) NULL,"
                   " PRIMARY KEY (hdcomp, hdordn)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"
                   "CREATE TABLE public.it_ty (id bigint PRIMARY KEY, b bit(1),"
                   " i16 smallint, i64 bigint, u64 bigint unsigned, f64 double,"
                   " amt decimal(12,2), txt longtext, vc varchar(20), ch char(5),"
                   " d date, tm time(6), ts datetime(6), tz timestamp(6) NULL,"
                   " bin varbinary(64), blb longblob, j json) DEFAULT CHARSET=utf8mb4;"
                   "INSERT INTO public.it_ty VALUES (1, 1, -32768,"
                   " -9223372036854775808, 18446744073709551615, 2.5, -1234.56,"
                   " 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80', 'abc', 'ab',"
                   " '2024-02-29', '12:34:56.789', '2024-01-01 10:00:00.123456',"
                   " '2024-01-01 10:00:00', 0x00ff10, 0x0102, '{\"a\": [1]}');"
                   "INSERT INTO public.it_ty (id) VALUES (2);"
                   "INSERT INTO public.it_ty VALUES (3, 0, 0, -1, 0, -0.5, 0,"
                   " repeat('abcdefghij', 10000), '', '', '1969-12-31', '00:00:00',"
                   " '1970-01-01 00:00:00', NULL, '', repeat('z', 70000), '[]')") != 0)
        return -1;
    char *connstr = th_odbc_my_connstr(st->my, "public");
    st->fx = th_odbc_fx_new(connstr, "public.odbc_ord", ENTITIES, 1);
    free(connstr);
    if (!st->fx)
        return -1;
    return th_odbc_fx_start(st->fx);
}

static int teardown(void **state)
{
    st_t *st = *state;
    th_odbc_fx_destroy(st->fx);
    th_my_destroy(st->my);
    free(st);
    return 0;
}

static void test_types(void **state)
{
    st_t *st = *state;
    char big[100001];
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 10);
    big[100000] = 0;
    char *zhex = malloc(140003);
    assert_non_null(zhex);
    memcpy(zhex, "\\x", 2);
    for (int i = 0; i < 70000; i++)
        memcpy(zhex + 2 + 2 * i, "7a", 2); /* 'z' */
    zhex[140002] = 0;
    const char *want[3 * NCOLS] = {
        "1", "true", "-32768", "-9223372036854775808", "2.5", "-1234.56",
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "abc", "2024-02-29", "12:34:56.789000",
        "2024-01-01T10:00:00.123456Z", "\\x00ff10", "{\"a\": [1]}",
        "18446744073709551615", "ab", "2024-01-01T10:00:00.000000Z", "\\x0102",
        "2", "null", "null", "null", "null", "null", "null", "null", "null", "null", "null",
        "null", "null", "null", "null", "null", "null",
        "3", "false", "0", "-1", "-0.5", "0.00", big, "", "1969-12-31", "00:00:00.000000",
        "1970-01-01T00:00:00.000000Z", "\\x", "[]",
        "0", "", "null", zhex,
    };
    int rc = th_odbc_fx_expect_rows(st->fx, 0, want, 3, 20000);
    free(zhex);
    TH_ODBC_CHECK(st->fx, rc == 0, "the types table's events differ (see above)");
    th_log("3 rows of every common type arrived through MariaDB Connector/ODBC and the mapping, "
           "NULLs, a 100 KB text and a 70 KB blob included");
}

static void test_flow(void **state)
{
    st_t *st = *state;
    th_odbc_flow_t f = {"public.odbc_ord", "NOW(6)", NULL};
    TH_ODBC_CHECK(st->fx, th_odbc_flow(st->fx, &f) == 0, "the change flow failed (see above)");
}

/* KILL every client connection but the harness's own two. How many, or -1. */
static int kill_clients(st_t *st, const char *own)
{
    char *ids = th_my_value(st->my, NULL,
                            "SELECT GROUP_CONCAT(id) FROM information_schema.processlist"
                            " WHERE id <> CONNECTION_ID() AND id <> %s AND user = 'root'"
                            " AND command NOT IN ('Daemon', 'Binlog Dump')",
                            own);
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
    th_odbc_fx_t *fx = st->fx;
    int mark = fx->evs.n;
    char *own = th_odbc_value(fx->db, "SELECT CONNECTION_ID()");
    TH_ODBC_CHECK(fx, own != NULL, "no connection id");
    assert_int_equal(th_my_exec(st->my,
                                "INSERT INTO public.odbc_ord SELECT '03', CONCAT('M', LPAD(seq, 6, '0')),"
                                " 'C', NULL, seq, 'O', REPEAT('x', 200), NOW(6)"
                                " FROM public.seq_1_to_4000"),
                     0);
    int killed = 0, got = 0;
    static int seen[4001];
    int64_t end = th_now_ms() + 30000;
    char key[32];
    while (th_now_ms() < end && got < 4000) {
        if (got > 0 && killed < 4 && kill_clients(st, own) > 0)
            killed++;
        th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, fx->evs.n + 400, 150);
        got = 0;
        for (int i = mark; i < fx->evs.n; i++)
            got += fx->evs.ev[i].value && fx->evs.ev[i].op == 'c';
    }
    free(own);
    TH_ODBC_CHECK(fx, killed >= 2, "the connection was killed only %d times during the read",
                  killed);
    for (int i = mark; i < fx->evs.n; i++) {
        const th_event_t *ev = &fx->evs.ev[i];
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
    TH_ODBC_CHECK(fx, missing == 0 && dup == 0, "after %d kills: %d rows missing, %d sent twice",
                  killed, missing, dup);
    TH_ODBC_CHECK(fx, th_proc_running(th_odbc_fx_run(fx)), "siphon stopped");
    TH_ODBC_CHECK(fx, th_proc_wait_log(th_odbc_fx_run(fx), "odbc: reconnected to", 1000),
                  "siphon did not log a reconnection");
    th_log("4000 rows read in pages of 100 while the connection was killed %d times: each "
           "arrived exactly once",
           killed);
    int code = th_odbc_fx_stop(fx, SIGTERM, 20000);
    TH_ODBC_CHECK(fx, code == 0, "siphon exited with %d on SIGTERM", code);
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
