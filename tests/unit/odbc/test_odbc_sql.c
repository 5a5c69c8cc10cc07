/*
 * test_odbc_sql.c - unit tests of odbc_sql.c: the dialect chosen from SQL_DBMS_NAME, quoting,
 * and the exact text of every query with the meaning of each parameter marker (docs/odbc.md
 * lists these same queries for the DBA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

int odbc_sql_tests(void);

static const char *SEL[] = {"\"id\"", "\"ts\"", "\"v\""};

static odbc_qspec_t spec_ts(void)
{
    static const char *order[] = {"\"ts\"", "\"id\""};
    static const char *keys[] = {"\"id\""};
    odbc_qspec_t s = {.table = "public.t", .select = SEL, .nselect = 3, .order = order,
                      .norder = 2, .keys = keys, .nkeys = 1, .ts = "\"ts\"", .page = 500,
                      .chunk = 1000};
    return s;
}

static void check(odbc_qkind_t k, const odbc_qspec_t *s, const odbc_dialect_t *d,
                  const char *sql, int np, const int *params)
{
    odbc_query_t q;
    assert_int_equal(siphon_odbc__query_build(&q, k, s, d), 0);
    assert_string_equal(q.sql, sql);
    assert_int_equal(q.nparams, np);
    for (int i = 0; i < np; i++)
        assert_int_equal(q.params[i], params[i]);
    siphon_odbc__query_free(&q);
}

static void test_dialects(void **state)
{
    (void)state;
    odbc_dialect_t d;
    siphon_odbc__dialect(&d, "PostgreSQL", "\"");
    assert_int_equal(d.limit, ODBC_LIMIT_LIMIT);
    assert_string_equal(d.quote, "\"");
    assert_string_equal(d.clock_sql, "SELECT CURRENT_TIMESTAMP");
    siphon_odbc__dialect(&d, "MariaDB", "`");
    assert_int_equal(d.limit, ODBC_LIMIT_LIMIT);
    assert_string_equal(d.clock_sql, "SELECT CURRENT_TIMESTAMP(6)");
    siphon_odbc__dialect(&d, "SQLite", "\"");
    assert_non_null(strstr(d.clock_sql, "strftime"));
    siphon_odbc__dialect(&d, "Microsoft SQL Server", "\"");
    assert_int_equal(d.limit, ODBC_LIMIT_TOP);
    siphon_odbc__dialect(&d, "DB2/400 SQL", "\"");
    assert_int_equal(d.limit, ODBC_LIMIT_FETCH);
    siphon_odbc__dialect(&d, "Informix", "\"");
    assert_int_equal(d.limit, ODBC_LIMIT_FIRST);
    siphon_odbc__dialect(&d, "OpenEdge", "\"");
    assert_int_equal(d.limit, ODBC_LIMIT_TOP);
    siphon_odbc__dialect(&d, "SomethingElse", " ");
    assert_int_equal(d.limit, ODBC_LIMIT_NONE);
    assert_string_equal(d.quote, "");
    assert_string_equal(d.clock_sql, "SELECT {fn NOW()}");
}

static void test_quote(void **state)
{
    (void)state;
    siphon_buf_t b = {0};
    assert_int_equal(siphon_odbc__quote(&b, "public.oehdr", "\""), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    assert_string_equal((char *)b.data, "\"public\".\"oehdr\"");
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__quote(&b, "we\"ird", "\""), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    assert_string_equal((char *)b.data, "\"we\"\"ird\"");
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__quote(&b, "a`b", "`"), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    assert_string_equal((char *)b.data, "`a``b`");
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__quote(&b, "plain", ""), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    assert_string_equal((char *)b.data, "plain");
    siphon_buf_free(&b);
}

static void test_timestamp_queries(void **state)
{
    (void)state;
    odbc_dialect_t d;
    siphon_odbc__dialect(&d, "PostgreSQL", "\"");
    odbc_qspec_t s = spec_ts();
    int p_hi[] = {ODBC_P_HI};
    check(ODBC_Q_FIRST, &s, &d,
          "SELECT \"id\", \"ts\", \"v\" FROM public.t WHERE \"ts\" <= ? ORDER BY \"ts\", \"id\" "
          "LIMIT 500",
          1, p_hi);
    int p_base[] = {ODBC_P_BASE, ODBC_P_HI};
    check(ODBC_Q_FIRST_BASE, &s, &d,
          "SELECT \"id\", \"ts\", \"v\" FROM public.t WHERE \"ts\" > ? AND \"ts\" <= ? ORDER BY "
          "\"ts\", \"id\" LIMIT 500",
          2, p_base);
    int p_next[] = {ODBC_P_HI, 0, 0, 0, 1};
    check(ODBC_Q_NEXT, &s, &d,
          "SELECT \"id\", \"ts\", \"v\" FROM public.t WHERE \"ts\" <= ? AND \"ts\" >= ? AND "
          "(\"ts\" > ? OR (\"ts\" = ? AND (\"id\" > ?))) ORDER BY \"ts\", \"id\" LIMIT 500",
          5, p_next);
}

static void test_other_queries(void **state)
{
    (void)state;
    odbc_dialect_t d;
    siphon_odbc__dialect(&d, "MariaDB", "`");
    static const char *order[] = {"`id`"};
    static const char *keys[] = {"`co`", "`no`", "`ln`"};
    odbc_qspec_t s = {.table = "erp.t", .select = SEL, .nselect = 1, .order = order,
                      .norder = 1, .keys = keys, .nkeys = 3, .not_null = "`id`", .page = 10,
                      .chunk = 20};
    /* incrementing */
    check(ODBC_Q_FIRST, &s, &d,
          "SELECT \"id\" FROM erp.t WHERE `id` IS NOT NULL ORDER BY `id` LIMIT 10", 0, NULL);
    int p1[] = {0};
    check(ODBC_Q_NEXT, &s, &d, "SELECT \"id\" FROM erp.t WHERE (`id` > ?) ORDER BY `id` LIMIT 10",
          1, p1);
    /* reconciliation over a three-column key: nested comparisons, chunk size */
    check(ODBC_Q_KEYS_FIRST, &s, &d, "SELECT `co`, `no`, `ln` FROM erp.t ORDER BY `co`, `no`, `ln` LIMIT 20",
          0, NULL);
    int p3[] = {0, 0, 0, 1, 1, 2};
    check(ODBC_Q_KEYS_NEXT, &s, &d,
          "SELECT `co`, `no`, `ln` FROM erp.t WHERE `co` >= ? AND (`co` > ? OR (`co` = ? AND "
          "(`no` > ? OR (`no` = ? AND (`ln` > ?))))) ORDER BY `co`, `no`, `ln` LIMIT 20",
          6, p3);
    int pk[] = {0, 1, 2};
    check(ODBC_Q_BY_KEY, &s, &d,
          "SELECT \"id\" FROM erp.t WHERE `co` = ? AND `no` = ? AND `ln` = ?", 3, pk);
    /* siphon preview's sample: every column, key order, the page as its limit, no marker */
    check(ODBC_Q_SAMPLE, &s, &d, "SELECT \"id\" FROM erp.t ORDER BY `co`, `no`, `ln` LIMIT 10", 0,
          NULL);
    /* a timestamp-less spec has no FIRST_BASE */
    odbc_query_t q;
    assert_int_equal(siphon_odbc__query_build(&q, ODBC_Q_FIRST_BASE, &s, &d), SIPHON_EINVAL);

    /* the other limit clauses */
    siphon_odbc__dialect(&d, "Microsoft SQL Server", "\"");
    check(ODBC_Q_KEYS_FIRST, &s, &d, "SELECT TOP 20 `co`, `no`, `ln` FROM erp.t ORDER BY `co`, `no`, `ln`",
          0, NULL);
    siphon_odbc__dialect(&d, "DB2/400 SQL", "\"");
    check(ODBC_Q_KEYS_FIRST, &s, &d,
          "SELECT `co`, `no`, `ln` FROM erp.t ORDER BY `co`, `no`, `ln` FETCH FIRST 20 ROWS ONLY",
          0, NULL);
    siphon_odbc__dialect(&d, "Informix", "\"");
    check(ODBC_Q_KEYS_FIRST, &s, &d, "SELECT FIRST 20 `co`, `no`, `ln` FROM erp.t ORDER BY `co`, `no`, `ln`",
          0, NULL);
    siphon_odbc__dialect(&d, "Unknown", "\"");
    check(ODBC_Q_KEYS_FIRST, &s, &d, "SELECT `co`, `no`, `ln` FROM erp.t ORDER BY `co`, `no`, `ln`",
          0, NULL);
    /* the by-key read never has a limit clause */
    siphon_odbc__dialect(&d, "Microsoft SQL Server", "\"");
    check(ODBC_Q_BY_KEY, &s, &d,
          "SELECT \"id\" FROM erp.t WHERE `co` = ? AND `no` = ? AND `ln` = ?", 3, pk);
    check(ODBC_Q_SAMPLE, &s, &d, "SELECT TOP 10 \"id\" FROM erp.t ORDER BY `co`, `no`, `ln`", 0,
          NULL);
}

int odbc_sql_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialects),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_timestamp_queries),
        cmocka_unit_test(test_other_queries),
    };
    return cmocka_run_group_tests_name("odbc_sql", tests, NULL, NULL);
}
