/*
 * test_pg_snapshot.c - the snapshot progress text (pg_snapshot.c, pg_incremental.c): escaping
 * (key values of any bytes survive a round trip through the stored position, and the escaped
 * form never holds the separators of the progress text: space, comma, '='), a table's entry
 * read back on resume, the state of an on-demand request judged from a stored position, and
 * positions printed with an on-demand suffix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/postgres/pg_int.h"
#include "connectors/postgres/postgres.h"
#include "core/error.h"

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

/* A table's progress entry, read back into a table of the same name (resume). */
static void test_progress_entry_round_trip(void **state)
{
    (void)state;
    pg_snap_table_t t = {0}, back[2] = {{0}, {0}};
    assert_int_equal(siphon_pg__snap_table_init(&t, "sales", "order lines"), 0);
    t.nkeys = 2;
    t.chunks = 12;
    t.rows = 1200;
    t.last = calloc(2, sizeof(char *));
    t.last[0] = strdup("02");
    t.last[1] = strdup("S,01 200");
    siphon_buf_t b = {0};
    assert_int_equal(siphon_pg__snap_progress_entry(&b, &t), 0);
    assert_string_equal((char *)b.data, " sales.order%20lines=0,12,1200,02,S%2C01%20200");
    assert_int_equal(siphon_pg__snap_table_init(&back[0], "public", "other"), 0);
    assert_int_equal(siphon_pg__snap_table_init(&back[1], "sales", "order lines"), 0);
    back[1].nkeys = 2;
    siphon_pg__snap_apply_progress(back, 2, (char *)b.data);
    assert_null(back[0].last);
    assert_int_equal(back[1].chunks, 12);
    assert_int_equal(back[1].rows, 1200);
    assert_int_equal(back[1].done, 0);
    assert_non_null(back[1].last);
    assert_string_equal(back[1].last[1], "S,01 200");
    siphon_buf_free(&b);
    siphon_pg__snap_table_free(&t);
    siphon_pg__snap_table_free(&back[0]);
    siphon_pg__snap_table_free(&back[1]);
}

/* siphon snapshot --wait: the state of a request, from the stored position text. */
static void test_on_demand_status(void **state)
{
    (void)state;
    uint64_t rows = 9, chunks = 9;
    char err[256];
    const char *tok = "0/1A00 public.oehdr";
    assert_int_equal(siphon_pg__inc_status(NULL, tok, &rows, &chunks, err, sizeof(err)), 0);
    assert_int_equal(rows, 0);
    /* not acknowledged yet: the stored position is before the request */
    assert_int_equal(siphon_pg__inc_status("0/19FF", tok, &rows, &chunks, err, sizeof(err)), 0);
    assert_int_equal(siphon_pg__inc_status("0/1B00 isnap public.oehdr=0,3,300,02,S00300", tok,
                                           &rows, &chunks, err, sizeof(err)), 1);
    assert_int_equal(chunks, 3);
    assert_int_equal(rows, 300);
    /* queued behind another table */
    assert_int_equal(siphon_pg__inc_status("0/1B00 isnap public.a=0,1,5,x public.oehdr=0,0,0",
                                           tok, &rows, &chunks, err, sizeof(err)), 1);
    assert_int_equal(rows, 0);
    /* a table whose name ends like ours is not ours */
    assert_int_equal(siphon_pg__inc_status("0/1B00 isnap xpublic.oehdr=0,1,5,x", tok, &rows,
                                           &chunks, err, sizeof(err)), 2);
    assert_int_equal(siphon_pg__inc_status("0/1B00", tok, &rows, &chunks, err, sizeof(err)), 2);
    assert_int_equal(siphon_pg__inc_status("0/1B00", "garbage", &rows, &chunks, err, sizeof(err)),
                     SIPHON_EINVAL);
}

/* Visibility of a streamed transaction in a chunk's snapshot (pg_current_snapshot()). */
static void test_xid_visible(void **state)
{
    (void)state;
    uint64_t xmin, xmax, *xip = NULL;
    int nxip = 0;
    assert_int_equal(siphon_pg__snapshot_parse("700:742:705,731", &xmin, &xmax, &xip, &nxip), 0);
    assert_int_equal(xmin, 700);
    assert_int_equal(xmax, 742);
    assert_int_equal(nxip, 2);
    assert_true(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 699, 1));  /* below xmin */
    assert_true(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 706, 1));  /* done, not in xip */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 705, 1)); /* in progress */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 742, 1)); /* at xmax */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 900, 1)); /* after it */
    free(xip);
    /* an empty in-progress list */
    assert_int_equal(siphon_pg__snapshot_parse("742:742:", &xmin, &xmax, &xip, &nxip), 0);
    assert_int_equal(nxip, 0);
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 742, 1));
    assert_true(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 741, 1));
    free(xip);
    /* 32-bit xids of the stream across an epoch boundary: xmax is in epoch 1 */
    uint64_t e1 = UINT64_C(1) << 32;
    assert_int_equal(siphon_pg__snapshot_parse("4294967290:4294967301:4294967299", &xmin, &xmax,
                                               &xip, &nxip), 0);
    assert_true(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 4294967294u, 1)); /* epoch 0 */
    assert_true(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 2, 1));    /* epoch 1: 2^32 + 2 */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 3, 1));   /* 2^32 + 3 in xip */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, 6, 1));   /* 2^32 + 6: xmax+1 */
    assert_false(siphon_pg__xid_visible(xmin, xmax, xip, nxip, e1 + 5, 0)); /* full xid */
    free(xip);
    assert_int_equal(siphon_pg__snapshot_parse("1:2", &xmin, &xmax, &xip, &nxip), SIPHON_EINVAL);
    assert_int_equal(siphon_pg__snapshot_parse("1:2:3,x", &xmin, &xmax, &xip, &nxip),
                     SIPHON_EINVAL);
    assert_null(xip);
}

/* A position with an on-demand suffix prints as "<LSN><suffix>"; a chunk's text as itself. */
static void test_pos_format_suffix(void **state)
{
    (void)state;
    char buf[128];
    siphon_pos_t pos = {.num = 0x1C487F8, .text = (char *)" isnap public.oehdr=0,1,20,7"};
    assert_int_equal(siphon_postgres_source.pos_format(&pos, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "0/1C487F8 isnap public.oehdr=0,1,20,7");
    assert_int_equal(siphon_postgres_source.pos_format(&pos, buf, 12), SIPHON_EINVAL);
    pos.text = (char *)"snap:oehdr:3";
    assert_int_equal(siphon_postgres_source.pos_format(&pos, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "snap:oehdr:3");
    pos.text = NULL;
    assert_int_equal(siphon_postgres_source.pos_format(&pos, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "0/1C487F8");
}

int pg_snapshot_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_round_trip),
        cmocka_unit_test(test_escape_exact),
        cmocka_unit_test(test_unescape_malformed),
        cmocka_unit_test(test_progress_entry_round_trip),
        cmocka_unit_test(test_on_demand_status),
        cmocka_unit_test(test_pos_format_suffix),
        cmocka_unit_test(test_xid_visible),
    };
    return cmocka_run_group_tests_name("pg_snapshot", tests, NULL, NULL);
}
