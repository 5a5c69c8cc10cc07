/*
 * test_postgres.c - the unit_postgres executable: runs the groups of the PostgreSQL
 * connector's unit tests (value decoding and LSNs in test_pg_value.c, the pgoutput parser in
 * test_pg_stream.c, the snapshot progress text in test_pg_snapshot.c). None needs a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

int pg_value_tests(void);
int pg_stream_tests(void);
int pg_snapshot_tests(void);

int main(void)
{
    int failed = 0;
    failed += pg_value_tests();
    failed += pg_stream_tests();
    failed += pg_snapshot_tests();
    return failed ? 1 : 0;
}
