/*
 * test_my_snapshot.c - the pieces of the MySQL snapshot that need no server: the stored
 * position's split into stream position and snapshot progress, the percent-encoding of table
 * names and key values in the progress, the pos_parse callback on a position with progress,
 * and the shared progress display (src/core/progress.c) it shows rows, rates and ETAs with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql/my_int.h"
#include "connectors/mysql/mysql.h"
#include "core/clock.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/progress.h"

int my_snapshot_tests(void);

static void test_split(void **state)
{
    (void)state;
    char *pos = NULL;
    const char *progress = NULL;
    assert_int_equal(siphon_my__snap_split("0-1-42", &pos, &progress), 0);
    assert_string_equal(pos, "0-1-42");
    assert_null(progress);
    free(pos);
    assert_int_equal(siphon_my__snap_split("0-1-42,1-2-3 snapshot erp.oehdr=0,3,3000,01,S1 "
                                           "erp.arcust=1",
                                           &pos, &progress),
                     0);
    assert_string_equal(pos, "0-1-42,1-2-3");
    assert_string_equal(progress, " erp.oehdr=0,3,3000,01,S1 erp.arcust=1");
    free(pos);
    assert_int_equal(siphon_my__snap_split("binlog.000003:1500 snapshot", &pos, &progress), 0);
    assert_string_equal(pos, "binlog.000003:1500");
    assert_string_equal(progress, "");
    free(pos);
    assert_int_equal(siphon_my__snap_split("", &pos, &progress), 0);
    assert_null(pos);
    assert_null(progress);
    assert_int_equal(siphon_my__snap_split(NULL, &pos, &progress), 0);
    assert_null(pos);
    /* " snapshotx" is not the marker */
    assert_int_equal(siphon_my__snap_split("a:1 snapshotx", &pos, &progress), 0);
    assert_null(progress);
    free(pos);
}

static void escape_roundtrip(const char *in, size_t n, const char *want)
{
    siphon_buf_t b = {0};
    assert_int_equal(siphon_my__snap_escape(&b, in, n), 0);
    siphon_buf_appendc(&b, 0);
    assert_string_equal((const char *)b.data, want);
    char *copy = strdup((const char *)b.data);
    assert_int_equal(siphon_my__snap_unescape(copy), (long)n);
    assert_memory_equal(copy, in, n);
    free(copy);
    siphon_buf_free(&b);
}

static void test_escape(void **state)
{
    (void)state;
    escape_roundtrip("erp.oehdr", 9, "erp.oehdr");
    escape_roundtrip("S 1,2=3%", 8, "S%201%2C2%3D3%25");
    escape_roundtrip("Gr\xc3\xbc\xc3\x9f" "e", 7, "Gr%C3%BC%C3%9Fe");
    escape_roundtrip("a\0b", 3, "a%00b");
    escape_roundtrip("", 0, "");
    char bad1[] = "ab%4", bad2[] = "%zz", ok[] = "%4a%4A";
    assert_true(siphon_my__snap_unescape(bad1) < 0);
    assert_true(siphon_my__snap_unescape(bad2) < 0);
    assert_int_equal(siphon_my__snap_unescape(ok), 2);
    assert_string_equal(ok, "JJ");
}

static void test_pos_parse(void **state)
{
    (void)state;
    siphon_pos_t pos;
    char err[256], buf[512];
    const char *text = "binlog.000003:1500 snapshot public.oehdr=0,1,10,01,S%2001";
    assert_int_equal(siphon_mysql_source.pos_parse(&pos, text, err, sizeof(err)), 0);
    assert_int_equal(pos.num, ((uint64_t)3 << 32) | 1500);
    assert_int_equal(siphon_mysql_source.pos_format(&pos, buf, sizeof(buf)), 0);
    assert_string_equal(buf, text);
    siphon_pos_free(&pos);
    assert_int_equal(siphon_mysql_source.pos_parse(&pos, "nonsense snapshot x=1", err,
                                                   sizeof(err)),
                     SIPHON_EINVAL);
}

static void test_progress_format(void **state)
{
    (void)state;
    char buf[512];
    siphon_progress_item_t it = {.name = "erp.oehdr", .done = 20000, .estimate = 100000,
                                 .started_ms = 1000};
    /* 20000 rows in 2 s: 10000 rows/s, 20%, 8 s to go */
    siphon_progress_format(&it, NULL, 1, 3000, buf, sizeof(buf));
    assert_non_null(strstr(buf, "erp.oehdr"));
    assert_non_null(strstr(buf, "20000 rows"));
    assert_non_null(strstr(buf, "10000 rows/s"));
    assert_non_null(strstr(buf, "20% ETA 8s"));
    siphon_progress_format(&it, NULL, 0, 3000, buf, sizeof(buf));
    assert_string_equal(buf, "erp.oehdr: 20000 rows, 10000 rows/s, 20% of about 100000, ETA 8s");
    /* resumed work is not in the rate */
    it.done_before = 10000;
    siphon_progress_format(&it, NULL, 0, 3000, buf, sizeof(buf));
    assert_non_null(strstr(buf, "5000 rows/s"));
    /* no estimate: no percent; the hint says why */
    it.estimate = -1;
    it.done_before = 0;
    it.no_estimate_hint = "the table was never analyzed";
    siphon_progress_format(&it, "rows", 0, 3000, buf, sizeof(buf));
    assert_string_equal(buf, "erp.oehdr: 20000 rows, 10000 rows/s (no estimate: the table was "
                             "never analyzed)");
    it.finished = 1;
    siphon_progress_format(&it, NULL, 1, 3000, buf, sizeof(buf));
    assert_non_null(strstr(buf, "100% ETA done"));
    /* an estimate below what was read caps at 100% */
    it.finished = 0;
    it.estimate = 10;
    siphon_progress_format(&it, NULL, 1, 3000, buf, sizeof(buf));
    assert_non_null(strstr(buf, "100% ETA ?"));
}

static void test_progress_pacing(void **state)
{
    (void)state;
    siphon_progress_t p;
    siphon_progress_init(&p, "mysql", "snapshot", "rows", 0);
    siphon_progress_item_t it = {.name = "t", .done = 1, .estimate = 10,
                                 .started_ms = siphon_clock_now_ms()};
    assert_int_equal(siphon_progress_show(&p, &it, 0), 1); /* the first line */
    assert_int_equal(siphon_progress_show(&p, &it, 0), 0); /* not due (5 s off a terminal) */
    assert_int_equal(siphon_progress_show(&p, &it, 1), 1); /* forced */
    it.finished = 1;
    assert_int_equal(siphon_progress_show(&p, &it, 0), 1); /* an item's end always shows */
}

int my_snapshot_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_pos_parse),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_progress_pacing),
    };
    return cmocka_run_group_tests_name("mysql/snapshot", tests, NULL, NULL);
}
