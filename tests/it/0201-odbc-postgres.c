/*
 * 0201-odbc-postgres - `siphon run` with an ODBC source through psqlODBC against a throwaway
 * PostgreSQL 15, to a mock Kafka cluster through the test's own mappings (public.odbc_ord:
 * composite key, timestamptz last-change column, a varchar(200) note so that rows are fetched
 * in blocks (psqlODBC reports a varchar above 255 characters as a long column, which is read
 * row by row); public.it_ty: one column of every common type).
 *
 * Checked, with the binary and its siphon.yaml:
 *  - every common type (and uuid, jsonb, timestamptz, bytea, an unconstrained numeric with 39
 *    digits and NaN), NULLs, a 100 KB text read in pieces and a jsonb longer than the size
 *    psqlODBC reports for it (read again whole), through a mapping with the Avro type of each
 *    column;
 *  - the shared change flow (th_odbc_flow): new rows with a composite key, an update, a
 *    transaction that wrote its row before another one and commits after that other row was
 *    delivered (a timestamp earlier than the watermark: the row JDBC polling loses), a delete;
 *  - the connection dropped mid-read, several times (pg_terminate_backend), while 6000 rows with
 *    one and the same timestamp are read in pages of 150 (the cursor runs over the composite
 *    key): every row arrives exactly once, and siphon keeps running.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

static const th_odbc_col_t COLS[] = {TH_ODBC_TYPE_COLS, {"nn", "\"string\""},
                                        {"ch", "\"string\""}, {"tz", TH_AVRO_TS},
                                        {"u", TH_AVRO_UUID}};
#define NCOLS ((int)(sizeof(COLS) / sizeof(COLS[0])))
static const th_odbc_entity_t TYPES = {"odbc_types", "public.it_ty", "incrementing", NULL, "id",
                                       "id", COLS, NCOLS};
static const th_odbc_entity_t *const ENTITIES[] = {&TYPES};

typedef struct st {
    th_pg_t *pg;
    th_odbc_fx_t *fx;
} st_t;

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    if (th_odbc_env() != 0 || !(st->pg = th_pg_start()) ||
        th_pg_exec(st->pg, "CREATE TABLE public.odbc_ord (hdcomp char(2) NOT NULL,"
                           " hdordn char(10) NOT NULL, hdcust char(8) NOT NULL, hdodat date,"
                           " hdamt numeric(12,2) NOT NULL DEFAULT 0, hdstat char(1) NOT NULL"
                           " DEFAULT 'O', hdnote varchar(200), hdupdt timestamptz DEFAULT now(),"
                           " PRIMARY KEY (hdcomp, hdordn))") != 0 ||
        th_pg_exec(st->pg, "CREATE TABLE it_ty (id bigint PRIMARY KEY, b boolean,"
                           " i16 smallint, i64 bigint, f64 double precision,"
                           " amt numeric(12,2), nn numeric, txt text, vc varchar(20),"
                           " ch char(5), d date, tm time, ts timestamp, tz timestamptz,"
                           " bin bytea, u uuid, j jsonb);"
                           "SET timezone = 'UTC';"
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
                           " to_jsonb(repeat('x', 1000)))") != 0)
        return -1;
    /* the server's time zone is the session's: timestamptz arrives as UTC wall clock */
    if (th_pg_exec(st->pg, "ALTER SYSTEM SET timezone = 'UTC'") != 0 ||
        th_pg_exec(st->pg, "SELECT pg_reload_conf()") != 0)
        return -1;
    char *connstr = th_odbc_pg_connstr(st->pg);
    st->fx = th_odbc_fx_new(connstr, "public.odbc_ord", ENTITIES, 1);
    free(connstr);
    if (!st->fx)
        return -1;
    st->fx->conf.max_rows_per_poll = 150;
    return th_odbc_fx_start(st->fx);
}

static int teardown(void **state)
{
    st_t *st = *state;
    th_odbc_fx_destroy(st->fx);
    th_pg_destroy(st->pg);
    free(st);
    return 0;
}

static void test_types(void **state)
{
    st_t *st = *state;
    char big[100001], xs[1003];
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 10);
    big[100000] = 0;
    /* a jsonb longer than the 255 characters psqlODBC reports for it: read again whole */
    xs[0] = '"';
    memset(xs + 1, 'x', 1000);
    xs[1001] = '"';
    xs[1002] = 0;
    const char *want[3 * NCOLS] = {
        "1", "true", "-32768", "-9223372036854775808", "2.5", "-1234.56",
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "abc", "2024-02-29", "12:34:56.789000",
        "2024-01-01T10:00:00.123456Z", "\\x00ff10", "{\"a\": [1]}",
        "123456789012345678901234567890.123456789", "ab   ", "2024-01-01T10:00:00.000000Z",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "2", "null", "null", "null", "null", "null", "null", "null", "null", "null", "null",
        "null", "null", "null", "null", "null", "null",
        "3", "false", "0", "-1", "-0.5", "0.00", big, "", "1969-12-31", "00:00:00.000000",
        "1970-01-01T00:00:00.000000Z", "\\x", xs,
        "NaN", "     ", "1970-01-01T00:00:00.000000Z", "00000000-0000-0000-0000-000000000000",
    };
    TH_ODBC_CHECK(st->fx, th_odbc_fx_expect_rows(st->fx, 0, want, 3, 20000) == 0,
                  "the types table's events differ (see above)");
    th_log("3 rows of every common type arrived through psqlODBC and the mapping, NULLs, a "
           "100 KB text and a 1000-character jsonb included");
}

static void test_flow(void **state)
{
    st_t *st = *state;
    th_odbc_flow_t f = {"public.odbc_ord", "now()", NULL};
    TH_ODBC_CHECK(st->fx, th_odbc_flow(st->fx, &f) == 0, "the change flow failed (see above)");
}

static void test_connection_dropped(void **state)
{
    st_t *st = *state;
    th_odbc_fx_t *fx = st->fx;
    int mark = fx->evs.n;
    /* the test's own ODBC connection stays: only siphon's is terminated */
    char *own = th_odbc_value(fx->db, "SELECT pg_backend_pid()");
    TH_ODBC_CHECK(fx, own != NULL, "no backend pid");
    /* one timestamp for all: the cursor walks (hdupdt, hdcomp, hdordn) */
    assert_int_equal(th_pg_exec(st->pg, "INSERT INTO odbc_ord SELECT '03', 'M' || lpad(g::text, 6, '0'),"
                                        " 'C', NULL, g, 'O', repeat('x', 200), now()"
                                        " FROM generate_series(1, 6000) g"),
                     0);
    int killed = 0, got = 0;
    int64_t end = th_now_ms() + 30000;
    while (th_now_ms() < end && got < 6000) {
        if (got > 0 && killed < 4) {
            char *n = th_pg_value(st->pg, NULL,
                                  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                                  " AND pid <> %s",
                                  own);
            killed += n && atoi(n) > 0;
            free(n);
        }
        th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, fx->evs.n + 500, 150);
        got = 0;
        for (int i = mark; i < fx->evs.n; i++)
            got += fx->evs.ev[i].value && fx->evs.ev[i].op == 'c';
    }
    free(own);
    TH_ODBC_CHECK(fx, killed >= 2, "the connection was dropped only %d times during the read",
                  killed);
    static int seen[6001];
    int missing = 0, dup = 0;
    char key[32];
    for (int i = mark; i < fx->evs.n; i++) {
        const th_event_t *ev = &fx->evs.ev[i];
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
    TH_ODBC_CHECK(fx, missing == 0 && dup == 0,
                  "after %d dropped connections: %d rows missing, %d sent twice", killed, missing,
                  dup);
    TH_ODBC_CHECK(fx, th_proc_running(th_odbc_fx_run(fx)), "siphon stopped");
    TH_ODBC_CHECK(fx, th_proc_wait_log(th_odbc_fx_run(fx), "odbc: reconnected to", 1000),
                  "siphon did not log a reconnection");
    th_log("6000 rows read in pages of 150 while the connection was dropped %d times: each "
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
        cmocka_unit_test(test_connection_dropped),
    };
    return cmocka_run_group_tests_name("0201-odbc-postgres", tests, setup, teardown);
}
