/*
 * test_pg_snapshot.c - the snapshot progress text's escaping (pg_snapshot.c): key values of any
 * bytes survive a round trip through the stored position, and the escaped form never holds the
 * separators of the progress text (space, comma, '=').
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/postgres/pg_int.h"

static void round_trip(const char *s, size_t len)
{
    siphon_buf_t b = {0};
    assert_int_equal(siphon_pg__snap_escape(&b, s, len), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    char *e = (char *)b.data;
    for (const char *p = e; *p; p++) {
        assert_true(*p > ' ' && *p < 127);
        assert_true(*p != ',' && *p != '=');
    }
    assert_int_equal(siphon_pg__snap_unescape(e), (long)len);
    assert_memory_equal(e, s, len);
    siphon_buf_free(&b);
}

static void test_escape_round_trip(void **state)
{
    (void)state;
    round_trip("S00042    ", 10);
    round_trip("public.oehdr", 12);
    round_trip("a,b=c d%e", 9);
    round_trip("(0,17)", 6);
    round_trip("caf\xc3\xa9\n\t\x01", 8);
    round_trip("", 0);
}

static void test_escape_exact(void **state)
{
    (void)state;
    siphon_buf_t b = {0};
    assert_int_equal(siphon_pg__snap_escape(&b, "a b,c", 5), 0);
    assert_int_equal(siphon_buf_appendc(&b, 0), 0);
    assert_string_equal((char *)b.data, "a%20b%2Cc");
    siphon_buf_free(&b);
}

static void test_unescape_malformed(void **state)
{
    (void)state;
    char a[] = "abc%2", b[] = "%zz", c[] = "ok%41";
    assert_int_equal(siphon_pg__snap_unescape(a), -1);
    assert_int_equal(siphon_pg__snap_unescape(b), -1);
    assert_int_equal(siphon_pg__snap_unescape(c), 3);
    assert_string_equal(c, "okA");
}

int pg_snapshot_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_round_trip),
        cmocka_unit_test(test_escape_exact),
        cmocka_unit_test(test_unescape_malformed),
    };
    return cmocka_run_group_tests_name("pg_snapshot", tests, NULL, NULL);
}
