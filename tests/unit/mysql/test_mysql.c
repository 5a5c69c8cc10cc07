/*
 * test_mysql.c - the unit_mysql executable: runs the groups of the MySQL connector's unit
 * tests (column values in test_my_value.c, binary JSON in test_my_json.c, positions and GTID
 * sets in test_my_gtid.c, the event parser in test_my_event.c, the config section and
 * conninfo in test_my_config.c, the snapshot's position text and progress display in
 * test_my_snapshot.c). None needs a server: events and row images are built by hand
 * from the binlog format's documentation, in MariaDB's and MySQL 8's variants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

int my_value_tests(void);
int my_json_tests(void);
int my_gtid_tests(void);
int my_event_tests(void);
int my_config_tests(void);
int my_snapshot_tests(void);

int main(void)
{
    int failed = 0;
    failed += my_value_tests();
    failed += my_json_tests();
    failed += my_gtid_tests();
    failed += my_event_tests();
    failed += my_config_tests();
    failed += my_snapshot_tests();
    return failed ? 1 : 0;
}
