/*
 * test_my_gtid.c - positions: MariaDB GTID lists and MySQL GTID sets (parse, format, add,
 * contains, subset, merge of intervals), stored-position parsing (the three text forms and
 * what is refused), binlog file sequence numbers, and the choice of the binlog file a MySQL
 * GTID set resumes in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql/my_int.h"
#include "core/error.h"

int my_gtid_tests(void);

#define U1 "3e11fa47-71ca-11e1-9e33-c80aa9429562"
#define U2 "a0000000-0000-0000-0000-000000000001"

static void roundtrip(const char *in, const char *want)
{
    my_gtidset_t g = {0};
    char err[256], out[512];
    if (siphon_my__gtid_parse(&g, in, MY_GTID_NONE, err, sizeof(err)))
        fail_msg("parse %s: %s", in, err);
    siphon_my__gtid_format(&g, out, sizeof(out));
    assert_string_equal(out, want);
    siphon_my__gtid_free(&g);
}

static void test_mariadb(void **state)
{
    (void)state;
    roundtrip("0-1-42", "0-1-42");
    roundtrip(" 1-7-9, 0-1-42 ", "0-1-42,1-7-9"); /* sorted by domain */
    roundtrip("4294967295-4294967295-18446744073709551615",
              "4294967295-4294967295-18446744073709551615");
    my_gtidset_t g = {0};
    char err[256], out[128];
    assert_int_equal(siphon_my__gtid_parse(&g, "0-1-42,0-2-43", MY_GTID_NONE, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "domain 0 appears twice"));
    assert_int_equal(siphon_my__gtid_parse(&g, "0-1", MY_GTID_NONE, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__gtid_parse(&g, "0-1-99999999999999999999", MY_GTID_NONE, err,
                                           sizeof(err)), SIPHON_EINVAL);
    assert_int_equal(siphon_my__gtid_parse(&g, "", MY_GTID_MARIADB, err, sizeof(err)), 0);
    assert_int_equal(g.kind, MY_GTID_MARIADB);
    assert_int_equal(siphon_my__gtid_format(&g, out, sizeof(out)), 0);
    /* a domain's GTID is replaced, new domains are inserted in order */
    assert_int_equal(siphon_my__gtid_set_mariadb(&g, (my_mgtid_t){5, 1, 10}), 0);
    assert_int_equal(siphon_my__gtid_set_mariadb(&g, (my_mgtid_t){0, 1, 3}), 0);
    assert_int_equal(siphon_my__gtid_set_mariadb(&g, (my_mgtid_t){5, 2, 11}), 0);
    siphon_my__gtid_format(&g, out, sizeof(out));
    assert_string_equal(out, "0-1-3,5-2-11");
    /* a buffer too small reports the length it needs */
    char tiny[4];
    assert_int_equal(siphon_my__gtid_format(&g, tiny, sizeof(tiny)), strlen("0-1-3,5-2-11"));
    my_gtidset_t c = {0};
    assert_int_equal(siphon_my__gtid_copy(&c, &g), 0);
    siphon_my__gtid_format(&c, out, sizeof(out));
    assert_string_equal(out, "0-1-3,5-2-11");
    siphon_my__gtid_free(&c);
    siphon_my__gtid_free(&g);
}

static void test_mysql(void **state)
{
    (void)state;
    roundtrip(U1 ":1-5:7", U1 ":1-5:7");
    roundtrip(U2 ":3,\n" U1 ":1-2", U1 ":1-2," U2 ":3");            /* sorted by uuid */
    roundtrip(U1 ":1-5:3-9:11:10", U1 ":1-11");                      /* merged */
    roundtrip("3E11FA47-71CA-11E1-9E33-C80AA9429562:4", U1 ":4");    /* lower-cased */
    my_gtidset_t g = {0};
    char err[256], out[512];
    assert_int_equal(siphon_my__gtid_parse(&g, U1 ":5-3", MY_GTID_NONE, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__gtid_parse(&g, U1 ":0", MY_GTID_NONE, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__gtid_parse(&g, "not-a-uuid:1", MY_GTID_NONE, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "uuid"));

    uint8_t u[16];
    assert_int_equal(siphon_my__uuid_parse(u, U1, 36), 0);
    assert_int_equal(siphon_my__gtid_add_mysql(&g, u, 5), 0);
    assert_int_equal(siphon_my__gtid_add_mysql(&g, u, 3), 0);
    assert_int_equal(siphon_my__gtid_add_mysql(&g, u, 4), 0); /* joins 3 and 5 */
    siphon_my__gtid_format(&g, out, sizeof(out));
    assert_string_equal(out, U1 ":3-5");
    assert_true(siphon_my__gtid_contains_mysql(&g, u, 4));
    assert_false(siphon_my__gtid_contains_mysql(&g, u, 6));
    for (uint64_t k = 7; k <= 20; k += 2)
        siphon_my__gtid_add_mysql(&g, u, k);
    siphon_my__gtid_add_mysql(&g, u, 1);
    siphon_my__gtid_format(&g, out, sizeof(out));
    assert_string_equal(out, U1 ":1:3-5:7:9:11:13:15:17:19");
    for (uint64_t k = 2; k <= 20; k += 2)
        siphon_my__gtid_add_mysql(&g, u, k);
    siphon_my__gtid_format(&g, out, sizeof(out));
    assert_string_equal(out, U1 ":1-20");
    uint8_t u2[16];
    siphon_my__uuid_parse(u2, U2, 36);
    assert_false(siphon_my__gtid_contains_mysql(&g, u2, 1));

    my_gtidset_t a = {0}, b = {0};
    siphon_my__gtid_parse(&a, U1 ":2-4", MY_GTID_NONE, err, sizeof(err));
    siphon_my__gtid_parse(&b, U1 ":1-10," U2 ":1", MY_GTID_NONE, err, sizeof(err));
    assert_true(siphon_my__gtid_subset(&a, &b));
    assert_false(siphon_my__gtid_subset(&b, &a));
    assert_true(siphon_my__gtid_subset(&a, &a));
    siphon_my__gtid_free(&a);
    siphon_my__gtid_free(&b);
    siphon_my__gtid_free(&g);
}

static void test_positions(void **state)
{
    (void)state;
    my_pos_t p;
    char err[256];
    assert_int_equal(siphon_my__pos_parse(&p, "binlog.000003:1234", err, sizeof(err)), 0);
    assert_int_equal(p.kind, MY_POS_FILE);
    assert_string_equal(p.file, "binlog.000003");
    assert_int_equal(p.offset, 1234);
    siphon_my__pos_free(&p);
    assert_int_equal(siphon_my__pos_parse(&p, "0-1-42,1-1-1", err, sizeof(err)), 0);
    assert_int_equal(p.kind, MY_POS_GTID);
    assert_int_equal(p.gtid.kind, MY_GTID_MARIADB);
    siphon_my__pos_free(&p);
    assert_int_equal(siphon_my__pos_parse(&p, U1 ":1-42", err, sizeof(err)), 0);
    assert_int_equal(p.gtid.kind, MY_GTID_MYSQL);
    siphon_my__pos_free(&p);
    const char *bad[] = {"", "0/16B3748", "binlog.000003:", "binlog.000003:x", ":12",
                         "a/b:12", "0-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(siphon_my__pos_parse(&p, bad[i], err, sizeof(err)), SIPHON_EINVAL);
        siphon_my__pos_free(&p);
    }
    assert_int_equal(siphon_my__file_seq("binlog.000012"), 12);
    assert_int_equal(siphon_my__file_seq("mysql-bin.1"), 1);
    assert_int_equal(siphon_my__file_seq("nodot"), 0);
}

static void test_choose_start_file(void **state)
{
    (void)state;
    char err[256];
    my_gtidset_t prev[4] = {{0}}, have = {0};
    const char *texts[] = {"", U1 ":1-10", U1 ":1-20", U1 ":1-30," U2 ":1-2"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(siphon_my__gtid_parse(&prev[i], texts[i], MY_GTID_MYSQL, err,
                                               sizeof(err)), 0);
    siphon_my__gtid_parse(&have, U1 ":1-25", MY_GTID_NONE, err, sizeof(err));
    /* the newest file whose earlier transactions are all in `have` */
    assert_int_equal(siphon_my__choose_start_file(prev, 4, &have), 2);
    siphon_my__gtid_parse(&have, U1 ":1-40," U2 ":1-2", MY_GTID_NONE, err, sizeof(err));
    assert_int_equal(siphon_my__choose_start_file(prev, 4, &have), 3);
    /* the oldest file needs transactions we never saw (purged): nowhere to start */
    siphon_my__gtid_parse(&prev[0], U1 ":1-5", MY_GTID_NONE, err, sizeof(err));
    siphon_my__gtid_parse(&have, U1 ":3-40", MY_GTID_NONE, err, sizeof(err));
    assert_int_equal(siphon_my__choose_start_file(prev, 1, &have), -1);
    for (int i = 0; i < 4; i++)
        siphon_my__gtid_free(&prev[i]);
    siphon_my__gtid_free(&have);
}

int my_gtid_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mariadb),
        cmocka_unit_test(test_mysql),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_choose_start_file),
    };
    return cmocka_run_group_tests_name("mysql/gtid", tests, NULL, NULL);
}
