/*
 * 0200-odbc-sqlite - `siphon run`, `siphon validate` and `siphon preview` with an ODBC source
 * through sqliteodbc (SQLite's ODBC driver) on a throwaway database file, to a mock Kafka
 * cluster through the test's own mappings (config tables "odbc_ord" and "it_ty": SQLite has no
 * schemas; the mappings read public.odbc_ord and public.it_ty).
 *
 * Checked, with the binary and its siphon.yaml (source: type: odbc), pages of 2 rows, a 1 s
 * safety lag and a reconciliation every second:
 *  - every common type, NULLs and a 100 KB text (read in pieces) arrive through a mapping with
 *    the Avro type of each column (incrementing mode);
 *  - the shared change flow (th_odbc_flow): new rows with a composite key, an update, a row
 *    with a timestamp earlier than rows already delivered, a delete and its tombstone;
 *  - a stop (SIGTERM) and a restart from the offsets file: no row delivered before is sent
 *    again, changes made while stopped arrive; the offsets file holds the table's watermark;
 *  - `siphon validate` checks the mapped tables through the ODBC source (and names the mapping
 *    file:line of a column that does not exist); `siphon preview` prints live rows through the
 *    mapping; neither creates the key-set folder.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_check.h"

/* the database clock, as an argument of th_odbc_exec() (not inside its format) */
#define NOW_SQL "strftime('%Y-%m-%d %H:%M:%f', 'now')"

static const th_odbc_col_t COLS[] = {TH_ODBC_TYPE_COLS};
#define NCOLS ((int)(sizeof(COLS) / sizeof(COLS[0])))
static const th_odbc_col_t SNAP_COLS[] = {{"co", "\"string\""}, {"no", "\"long\""},
                                          {"name", "\"string\""}};
static const th_odbc_col_t TSI_COLS[] = {
    {"id", "\"long\""},
    {"upd", TH_AVRO_TS},
    {"v", "\"string\""}};
static const th_odbc_entity_t TYPES = {"odbc_types", "it_ty", "incrementing", NULL, "id", "id",
                                       COLS, NCOLS};
static const th_odbc_entity_t SNAP = {"odbc_snap", "it_snap", "snapshot", NULL, NULL, "co, no",
                                      SNAP_COLS, 3};
static const th_odbc_entity_t TSI = {"odbc_tsi", "it_tsi", "timestamp+incrementing", "upd", "id",
                                     "id", TSI_COLS, 3};
static const th_odbc_entity_t *const ENTITIES[] = {&TYPES, &SNAP, &TSI};
enum { X_TYPES, X_SNAP, X_TSI };

typedef struct st {
    char *dir, *db;
    th_odbc_fx_t *fx;
    char big[100001];
} st_t;

static int setup(void **state)
{
    st_t *st = calloc(1, sizeof(*st));
    *state = st;
    for (int i = 0; i < 100000; i++)
        st->big[i] = (char)('a' + i % 26);
    if (!(st->dir = th_tempdir()) || th_odbc_env() != 0)
        return -1;
    st->db = th_path(st->dir, "erp.db");
    /* a DSN of odbc.ini, which siphon names by its name alone */
    char *ini = th_path(th_odbc_env_dir(), "odbc.ini");
    char *dsn = th_strf("[it_erp]\nDriver=SQLite3\nDatabase=%s\nTimeout=10000\n", st->db);
    int rc = th_write_file(ini, dsn);
    free(ini);
    free(dsn);
    const char *connstr = "DSN=it_erp";
    static const char *const sql[] = {
        "CREATE TABLE odbc_ord (hdcomp char(2) NOT NULL, hdordn char(10) NOT NULL,"
        " hdcust char(8) NOT NULL, hdodat date, hdamt numeric(12,2) NOT NULL DEFAULT 0,"
        " hdstat char(1) NOT NULL DEFAULT 'O', hdnote text, hdupdt timestamp,"
        " PRIMARY KEY (hdcomp, hdordn))",
        "CREATE TABLE it_ty (id integer PRIMARY KEY, b boolean, i16 smallint, i64 bigint,"
        " f64 double, amt numeric(12,2), txt text, vc varchar(20), d date, tm time,"
        " ts timestamp, bin blob, j json)",
        "CREATE TABLE it_snap (co char(2) NOT NULL, no integer NOT NULL, name text,"
        " PRIMARY KEY (co, no))",
        "CREATE TABLE it_tsi (id integer PRIMARY KEY, upd timestamp, v text)",
        "INSERT INTO it_ty VALUES (1, 1, -32768, 9007199254740993, 2.5, -1234.56,"
        " 'h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80', 'abc', '2024-02-29', '12:34:56.789',"
        " '2024-01-01 10:00:00.123456', x'00ff10', '{\"a\":1}')",
        "INSERT INTO it_ty (id) VALUES (2)",
    };
    th_odbc_t *c = rc == 0 ? th_odbc_connect(connstr) : NULL;
    rc = c ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < sizeof(sql) / sizeof(sql[0]); i++)
        rc = th_odbc_exec(c, "%s", sql[i]);
    if (rc == 0)
        rc = th_odbc_exec(c, "INSERT INTO it_ty VALUES (3, 0, 0, -1, -0.5, 0, '%s', '',"
                             " '1969-12-31', '00:00:00', '1970-01-01 00:00:00', x'', '[]')",
                          st->big);
    th_odbc_close(c);
    if (rc == 0 && !(st->fx = th_odbc_fx_new(connstr, "odbc_ord", ENTITIES, 3)))
        rc = -1;
    if (rc != 0)
        return -1;
    st->fx->conf.dsn = "it_erp";
    st->fx->conf.max_rows_per_poll = 2; /* several pages per sweep */
    st->fx->conf.reconcile_chunk = 3;
    return 0;
}

static int teardown(void **state)
{
    st_t *st = *state;
    th_odbc_fx_destroy(st->fx);
    if (st->dir)
        th_tempdir_remove(st->dir);
    free(st->dir);
    free(st->db);
    free(st);
    return 0;
}

/* `siphon <cmd> --config <yaml> [more]`: its exit code; *out and *err (caller frees). */
static int siphon(st_t *st, const char *cmd, const char *yaml, const char *more, char **out,
                  char **err)
{
    const char *bin = th_siphon_bin();
    assert_non_null(bin);
    char *argv[] = {(char *)bin, (char *)cmd, "--config", (char *)yaml,
                    more ? "--mapping" : NULL, (char *)more, NULL};
    int code = -1;
    TH_ODBC_CHECK(st->fx, th_run(argv, NULL, 30000, &code, out, err) == 0, "siphon %s did not run",
                  cmd);
    return code;
}

/* Before any run: validate and preview read the live tables through the ODBC source. */
static void test_validate_preview(void **state)
{
    st_t *st = *state;
    th_odbc_fx_t *fx = st->fx;
    assert_int_equal(th_odbc_exec(fx->db, "INSERT INTO odbc_ord VALUES ('07', 'P1', 'C7', '2024-05-06',"
                                          " 5.5, 'O', NULL, '2024-05-06 07:08:09.123')"),
                     0);
    assert_int_equal(th_odbc_yaml_write(fx->yaml, &fx->conf), 0);
    char *out = NULL, *err = NULL;
    int code = siphon(st, "validate", fx->yaml, NULL, &out, &err);
    TH_ODBC_CHECK(fx, code == 0 && strstr(out, ": ok (connector 'it', odbc -> kafka, 4 mapping(s))") &&
                          strstr(out, "live tables: 4 table(s) checked in the source"),
                  "validate: exit %d\n%s%s", code, out, err);
    free(out);
    free(err);

    code = siphon(st, "preview", fx->yaml, "odbc_order", &out, &err);
    TH_ODBC_CHECK(fx, code == 0 &&
                          strstr(out, "{\"row\":1,\"op\":\"r\",\"key\":{\"company\":\"07\","
                                      "\"order_number\":\"P1\"},\"record\":{\"company\":\"07\","
                                      "\"order_number\":\"P1\",\"customer_number\":\"C7\","
                                      "\"order_date\":\"2024-05-06\",\"total_amount\":\"5.50\","
                                      "\"status\":\"O\",\"note\":null,\"updated_at\":"
                                      "\"2024-05-06T07:08:09.123000Z\"}}\n") &&
                          strstr(err, "preview: 1 row(s) of public.odbc_ord"),
                  "preview: exit %d\n%s%s", code, out, err);
    free(out);
    free(err);
    code = siphon(st, "preview", fx->yaml, "odbc_types", &out, &err);
    TH_ODBC_CHECK(fx, code == 0 && strstr(out, "\"row\":3") && !strstr(out, "\"error\"") &&
                          strstr(out, "\"d\":\"1969-12-31\""),
                  "preview of odbc_types: exit %d\n%.2000s%s", code, out, err);
    free(out);
    free(err);
    th_log("validate checked 4 tables through sqliteodbc (DSN it_erp); preview printed live rows "
           "through the mappings");

    /* a mapping that reads a column the table does not have: file:line of the field */
    char *bad_m = th_path(st->dir, "bad-mappings");
    assert_int_equal(mkdir(bad_m, 0700), 0);
    char *src = th_path(fx->mdir, "odbc_order.yaml"), *dst = th_path(bad_m, "odbc_order.yaml");
    char *text = th_read_file(src, NULL, 0);
    assert_non_null(text);
    char *at = strstr(text, "note: hdnote");
    assert_non_null(at);
    memcpy(at, "note: hdnoet", 12);
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    assert_int_equal(th_write_file(dst, text), 0);
    th_odbc_conf_t bad = fx->conf;
    bad.mappings_dir = bad_m;
    bad.ntables = 1; /* only the order mapping in that folder */
    char *bad_yaml = th_path(st->dir, "bad.yaml");
    assert_int_equal(th_odbc_yaml_write(bad_yaml, &bad), 0);
    code = siphon(st, "validate", bad_yaml, NULL, &out, &err);
    char *want = th_strf("%s:%d:", dst, line);
    TH_ODBC_CHECK(fx, code == 1 && strstr(err, want) &&
                          strstr(err, "column 'hdnoet' of field 'note' is not in table "
                                      "public.odbc_ord"),
                  "validate of a mapping with a missing column: exit %d, expected %s...\n%s%s",
                  code, want, out, err);
    th_log("validate named %s:%d for a column that the table does not have", dst, line);
    free(out);
    free(err);
    code = siphon(st, "preview", bad_yaml, "odbc_order", &out, &err);
    TH_ODBC_CHECK(fx, code == 1 && strstr(err, want), "preview: exit %d\n%s%s", code, out, err);
    free(out);
    free(err);
    free(want);
    free(bad_yaml);
    free(text);
    free(src);
    free(dst);
    free(bad_m);

    char *state_dir = th_path(fx->dir, "it.odbc");
    struct stat sb;
    TH_ODBC_CHECK(fx, stat(state_dir, &sb) != 0, "validate or preview created %s", state_dir);
    free(state_dir);
    assert_int_equal(th_odbc_exec(fx->db, "DELETE FROM odbc_ord"), 0);
}

static void test_types(void **state)
{
    st_t *st = *state;
    TH_ODBC_CHECK(st->fx, th_odbc_fx_start(st->fx) == 0, "siphon did not start");
    const char *want[3 * NCOLS] = {
        "1", "true", "-32768", "9007199254740993", "2.5", "-1234.56",
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "abc", "2024-02-29", "12:34:56.789000",
        "2024-01-01T10:00:00.123456Z", "\\x00ff10", "{\"a\":1}",
        "2", "null", "null", "null", "null", "null", "null", "null", "null", "null", "null",
        "null", "null",
        "3", "false", "0", "-1", "-0.5", "0.00", st->big, "", "1969-12-31", "00:00:00.000000",
        "1970-01-01T00:00:00.000000Z", "\\x", "[]",
    };
    TH_ODBC_CHECK(st->fx, th_odbc_fx_expect_rows(st->fx, X_TYPES, want, 3, 20000) == 0,
                  "the types table's events differ (see above)");
    th_log("3 rows of every common type arrived through sqliteodbc and the mapping, NULLs and a "
           "100 KB text included");
    /* incrementing: a new row after the first read */
    assert_int_equal(th_odbc_exec(st->fx->db, "INSERT INTO it_ty (id, vc) VALUES (4, 'four')"), 0);
    const th_event_t *ev = th_odbc_fx_xwait(st->fx, X_TYPES, "id", "4", NULL, NULL, 'c', 0, 20000);
    char b[64];
    TH_ODBC_CHECK(st->fx, ev && !strcmp(th_json_text(ev->value, "after.vc", b, sizeof(b)), "four"),
                  "no create of it_ty row 4 with vc 'four'");
}

/* The two modes the order and types tables do not use: snapshot and timestamp+incrementing. */
static void test_other_modes(void **state)
{
    st_t *st = *state;
    th_odbc_fx_t *fx = st->fx;
    const th_event_t *ev;
    char b[64];
    /* snapshot: no usable column; changes and deletes found by comparing full sweeps */
    assert_int_equal(th_odbc_exec(fx->db, "INSERT INTO it_snap VALUES ('01', 1, 'a'), ('01', 2, 'b'),"
                                          " ('02', 1, 'c')"),
                     0);
    const char *keys[3][3] = {{"01", "1", "a"}, {"01", "2", "b"}, {"02", "1", "c"}};
    for (int i = 0; i < 3; i++) {
        ev = th_odbc_fx_xwait(fx, X_SNAP, "co", keys[i][0], "no", keys[i][1], 'c', 0, 20000);
        TH_ODBC_CHECK(fx, ev && th_odbc_fx_xexpect(fx, X_SNAP, ev, keys[i]) == 0,
                      "no create of it_snap (%s, %s) as written", keys[i][0], keys[i][1]);
    }
    int mark = fx->xevs[X_SNAP].n;
    assert_int_equal(th_odbc_exec(fx->db, "UPDATE it_snap SET name = 'B' WHERE co = '01' AND no = 2"), 0);
    assert_int_equal(th_odbc_exec(fx->db, "DELETE FROM it_snap WHERE co = '02'"), 0);
    ev = th_odbc_fx_xwait(fx, X_SNAP, "co", "01", "no", "2", 'u', mark, 20000);
    TH_ODBC_CHECK(fx, ev && !strcmp(th_json_text(ev->value, "after.name", b, sizeof(b)), "B"),
                  "no update of it_snap (01, 2) to name B");
    TH_ODBC_CHECK(fx, th_odbc_fx_xwait(fx, X_SNAP, "co", "02", "no", "1", 'd', mark, 20000),
                  "no delete of it_snap (02, 1)");
    th_odbc_events_poll(fx->xcons[X_SNAP], fx->dec, &fx->xevs[X_SNAP], 0, 500);
    TH_ODBC_CHECK(fx, th_odbc_fx_xcount(fx, X_SNAP, "co", "01", "no", "1", 0, mark) == 0 &&
                          th_odbc_fx_xcount(fx, X_SNAP, "co", "01", "no", "2", 0, mark) == 1,
                  "snapshot sweeps sent unchanged rows again");
    th_log("snapshot mode: 3 creates, then an update and a delete found by the next sweep; "
           "unchanged rows not sent again");

    /* timestamp+incrementing: three rows with one timestamp, pages of 2 (the incrementing
     * column breaks the tie), an update, a row with a NULL timestamp (found by reconciliation),
     * a delete */
    char *ts = th_odbc_value(fx->db, "SELECT %s", NOW_SQL);
    assert_non_null(ts);
    assert_int_equal(th_odbc_exec(fx->db, "INSERT INTO it_tsi VALUES (1, '%s', 'x'), (2, '%s', 'y'),"
                                          " (3, '%s', 'z')",
                                  ts, ts, ts),
                     0);
    free(ts);
    const char *ids[] = {"1", "2", "3"}, *vs[] = {"x", "y", "z"};
    for (int i = 0; i < 3; i++) {
        ev = th_odbc_fx_xwait(fx, X_TSI, "id", ids[i], NULL, NULL, 'c', 0, 20000);
        TH_ODBC_CHECK(fx, ev && !strcmp(th_json_text(ev->value, "after.v", b, sizeof(b)), vs[i]),
                      "no create of it_tsi %s", ids[i]);
    }
    mark = fx->xevs[X_TSI].n;
    assert_int_equal(th_odbc_exec(fx->db, "UPDATE it_tsi SET v = 'Y', upd = %s WHERE id = 2", NOW_SQL), 0);
    assert_int_equal(th_odbc_exec(fx->db, "INSERT INTO it_tsi VALUES (4, NULL, 'null ts')"), 0);
    assert_int_equal(th_odbc_exec(fx->db, "DELETE FROM it_tsi WHERE id = 3"), 0);
    ev = th_odbc_fx_xwait(fx, X_TSI, "id", "2", NULL, NULL, 'u', mark, 20000);
    TH_ODBC_CHECK(fx, ev && !strcmp(th_json_text(ev->value, "after.v", b, sizeof(b)), "Y"),
                  "no update of it_tsi 2");
    ev = th_odbc_fx_xwait(fx, X_TSI, "id", "4", NULL, NULL, 'c', mark, 20000);
    TH_ODBC_CHECK(fx, ev && !strcmp(th_json_text(ev->value, "after.upd", b, sizeof(b)), "null"),
                  "no create of it_tsi 4 (NULL timestamp)");
    TH_ODBC_CHECK(fx, th_odbc_fx_xwait(fx, X_TSI, "id", "3", NULL, NULL, 'd', mark, 20000),
                  "no delete of it_tsi 3");
    TH_ODBC_CHECK(fx, th_odbc_fx_xcount(fx, X_TSI, "id", "1", NULL, NULL, 0, mark) == 0,
                  "it_tsi 1 was sent again");
    th_log("timestamp+incrementing mode: 3 rows of one timestamp over pages of 2, an update, a "
           "row with a NULL timestamp (found by reconciliation) and a delete");
}

static void test_flow(void **state)
{
    st_t *st = *state;
    th_odbc_flow_t f = {
        "odbc_ord", NOW_SQL,
        /* 200 ms before the newest row's timestamp */
        "strftime('%Y-%m-%d %H:%M:%f', (SELECT max(hdupdt) FROM odbc_ord), '-0.2 seconds')"};
    TH_ODBC_CHECK(st->fx, th_odbc_flow(st->fx, &f) == 0, "the change flow failed (see above)");
}

static void test_restart(void **state)
{
    st_t *st = *state;
    th_odbc_fx_t *fx = st->fx;
    int n[3];
    for (int i = 0; i < 3; i++) {
        th_odbc_events_poll(fx->xcons[i], fx->dec, &fx->xevs[i], 0, 200);
        n[i] = fx->xevs[i].n;
    }
    int code = th_odbc_fx_stop(fx, SIGTERM, 20000);
    TH_ODBC_CHECK(fx, code == 0, "siphon exited with %d on SIGTERM", code);
    char *off = th_read_file(fx->offsets, NULL, 0);
    TH_ODBC_CHECK(fx, off && strstr(off, "\\\"public.odbc_ord\\\":{\\\"b\\\":\\\"") &&
                          strstr(off, "\\\"public.it_ty\\\":{\\\"c\\\":[\\\"4\\\"]}"),
                  "offsets file: %s", off ? off : "(none)");
    free(off);
    th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 300);
    int mark = fx->evs.n;

    /* while stopped: a new row, an update */
    assert_int_equal(th_odbc_exec(fx->db, "INSERT INTO odbc_ord VALUES ('01', 'R1', 'C7', NULL, 3, 'O',"
                                          " NULL, %s)", NOW_SQL),
                     0);
    assert_int_equal(th_odbc_exec(fx->db, "UPDATE odbc_ord SET hdcust = 'NEW', hdupdt = %s"
                                          " WHERE hdordn = 'A2'", NOW_SQL),
                     0);
    TH_ODBC_CHECK(fx, th_odbc_fx_start(fx) == 0, "siphon did not start again");
    TH_ODBC_CHECK(fx, th_odbc_fx_wait(fx, "01", "R1", 'c', mark, 20000), "no create of R1");
    const th_event_t *ev = th_odbc_fx_wait(fx, "01", "A2", 'u', mark, 20000);
    char b[64];
    TH_ODBC_CHECK(fx, ev && !strcmp(th_json_text(ev->value, "after.customer_number", b, sizeof(b)), "NEW"),
                  "no update of A2 to customer NEW");
    th_odbc_events_poll(fx->cons, fx->dec, &fx->evs, 0, 2500);
    const char *old[] = {"A1", "L1", "B1"};
    for (int i = 0; i < 3; i++)
        TH_ODBC_CHECK(fx, th_odbc_fx_count(fx, NULL, old[i], 0, mark) == 0,
                      "row %s, delivered before the restart, was sent again", old[i]);
    TH_ODBC_CHECK(fx, th_odbc_fx_count(fx, NULL, "R1", 0, mark) == 1 &&
                          th_odbc_fx_count(fx, NULL, "A2", 0, mark) == 1,
                  "R1 sent %d times, A2 %d times", th_odbc_fx_count(fx, NULL, "R1", 0, mark),
                  th_odbc_fx_count(fx, NULL, "A2", 0, mark));
    for (int i = 0; i < 3; i++)
        th_odbc_events_poll(fx->xcons[i], fx->dec, &fx->xevs[i], 0, 100);
    TH_ODBC_CHECK(fx, fx->xevs[X_TYPES].n == n[X_TYPES] && fx->xevs[X_SNAP].n == n[X_SNAP] &&
                          fx->xevs[X_TSI].n == n[X_TSI],
                  "rows of the other tables were sent again after the restart");
    TH_ODBC_CHECK(fx, th_proc_running(th_odbc_fx_run(fx)), "siphon stopped");
    th_log("after a restart: the changes made while stopped arrived, nothing was sent twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_preview),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_other_modes),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests_name("0200-odbc-sqlite", tests, setup, teardown);
}
