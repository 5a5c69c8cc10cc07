/*
 * test_odbc.c - the unit_odbc executable: runs the groups of the ODBC connector's unit tests
 * (kinds, text parsers, UTF-16, hashes and keys in test_odbc_value.c; dialects and query texts
 * in test_odbc_sql.c; watermarks, key sets and their files in test_odbc_state.c). None needs a
 * driver or a server: the connector against real drivers is tested in tests/it/02xx-odbc-*.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

int odbc_value_tests(void);
int odbc_sql_tests(void);
int odbc_state_tests(void);

int main(void)
{
    int failed = 0;
    failed += odbc_value_tests();
    failed += odbc_sql_tests();
    failed += odbc_state_tests();
    return failed ? 1 : 0;
}
