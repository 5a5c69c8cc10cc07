/*
 * test_odbc_state.c - unit tests of the ODBC connector's state: watermarks and the position
 * text (odbc_wm.c), the in-memory key set and its files (odbc_keys.c). The file tests check the
 * rule the no-loss argument rests on: only acknowledged deltas reach the journal, a torn last
 * frame is ignored, and compaction never loses a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

int odbc_state_tests(void);

static void test_watermarks(void **state)
{
    (void)state;
    odbc_wm_t a = {0}, b = {0}, c = {0};
    char err[512];
    a.base = strdup("2024-01-01 10:00:00.000000");
    a.ncur = 2;
    a.cur = calloc(2, sizeof(char *));
    a.cur[0] = strdup("2024-01-01 10:00:01");
    a.cur[1] = NULL; /* an SQL NULL cursor value */
    b.cur = calloc(1, sizeof(char *));
    b.ncur = 1;
    b.cur[0] = strdup("4\"2"); /* JSON escaping */
    assert_int_equal(siphon_odbc__wm_copy(&c, &a), 0);
    assert_true(siphon_odbc__wm_equal(&a, &c));
    assert_false(siphon_odbc__wm_equal(&a, &b));
    free(c.cur[0]);
    c.cur[0] = strdup("x");
    assert_false(siphon_odbc__wm_equal(&a, &c));

    const char *names[] = {"public.oehdr", "erp.items"};
    const odbc_wm_t *wms[] = {&a, &b};
    char *text = siphon_odbc__pos_text(names, wms, 2);
    assert_non_null(text);
    assert_string_equal(text, "{\"public.oehdr\":{\"b\":\"2024-01-01 10:00:00.000000\",\"c\":["
                              "\"2024-01-01 10:00:01\",null]},\"erp.items\":{\"c\":[\"4\\\"2\"]}}");
    assert_int_equal(siphon_odbc__pos_check(text, err, sizeof(err)), 0);
    odbc_wm_t r;
    int found;
    assert_int_equal(siphon_odbc__pos_lookup(text, "public.oehdr", &r, &found, err, sizeof(err)), 0);
    assert_true(found);
    assert_true(siphon_odbc__wm_equal(&r, &a));
    siphon_odbc__wm_clear(&r);
    assert_int_equal(siphon_odbc__pos_lookup(text, "erp.items", &r, &found, err, sizeof(err)), 0);
    assert_true(siphon_odbc__wm_equal(&r, &b));
    siphon_odbc__wm_clear(&r);
    assert_int_equal(siphon_odbc__pos_lookup(text, "other.t", &r, &found, err, sizeof(err)), 0);
    assert_false(found);
    assert_null(r.base);
    free(text);

    /* what a position text must not be */
    assert_int_equal(siphon_odbc__pos_check("0/16B3748", err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "another source type"));
    assert_int_equal(siphon_odbc__pos_check("{\"t\":{\"x\":1}}", err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "table t"));
    assert_int_equal(siphon_odbc__pos_check("{\"t\":{\"c\":[1]}}", err, sizeof(err)), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__pos_check("{\"t\":[]}", err, sizeof(err)), SIPHON_EINVAL);
    assert_int_equal(siphon_odbc__pos_check("{}", err, sizeof(err)), 0);
    siphon_odbc__wm_clear(&a);
    siphon_odbc__wm_clear(&b);
    siphon_odbc__wm_clear(&c);
}

static uint64_t kh(const char *k) { return siphon_odbc__hash(0, k, strlen(k)); }

static void test_key_map(void **state)
{
    (void)state;
    odbc_keys_t ks = {0};
    char k[32];
    /* enough keys to grow the slot array several times */
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        assert_true(siphon_odbc__keys_put(&ks, (uint8_t *)k, strlen(k), kh(k), (uint64_t)i) >= 0);
    }
    assert_int_equal(ks.live, 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        long e = siphon_odbc__keys_find(&ks, (uint8_t *)k, strlen(k), kh(k));
        assert_true(e >= 0);
        assert_int_equal(ks.ents[e].chash, (uint64_t)i);
    }
    assert_int_equal(siphon_odbc__keys_find(&ks, (uint8_t *)"nope", 4, kh("nope")), -1);
    /* update keeps one entry */
    long e1 = siphon_odbc__keys_put(&ks, (uint8_t *)"key-7", 5, kh("key-7"), 99);
    assert_int_equal(ks.ents[e1].chash, 99);
    assert_int_equal(ks.live, 5000);
    /* delete, then revive the same entry */
    for (int i = 0; i < 5000; i += 2) {
        snprintf(k, sizeof(k), "key-%d", i);
        siphon_odbc__keys_del(&ks, (uint8_t *)k, strlen(k), kh(k));
    }
    assert_int_equal(ks.live, 2500);
    assert_int_equal(siphon_odbc__keys_find(&ks, (uint8_t *)"key-4", 5, kh("key-4")), -1);
    long e2 = siphon_odbc__keys_put(&ks, (uint8_t *)"key-4", 5, kh("key-4"), 4);
    assert_true(e2 >= 0);
    assert_int_equal(ks.live, 2501);
    assert_int_equal(ks.nents, 5000);
    /* a rebuild drops the dead entries and keeps everything else */
    assert_int_equal(siphon_odbc__keys_rebuild(&ks), 0);
    assert_int_equal(ks.nents, 2501);
    assert_int_equal(ks.live, 2501);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        long e = siphon_odbc__keys_find(&ks, (uint8_t *)k, strlen(k), kh(k));
        assert_int_equal(e >= 0, i % 2 == 1 || i == 4);
    }
    /* a colliding hash with other bytes is another key */
    assert_true(siphon_odbc__keys_put(&ks, (uint8_t *)"zz", 2, kh("key-5"), 1) >= 0);
    long e3 = siphon_odbc__keys_find(&ks, (uint8_t *)"key-5", 5, kh("key-5"));
    assert_true(e3 >= 0);
    assert_int_equal(ks.ents[e3].chash, 5);
    siphon_odbc__keys_free(&ks);
}

/* The loader's view: a small map per table name, rebuilt from the files. */
typedef struct loaded {
    odbc_keys_t a, b;
    uint64_t recon_a;
    int records;
} loaded_t;

static int load_cb(void *opaque, const char *table, size_t tlen, int op, const uint8_t *key,
                   size_t klen, uint64_t val)
{
    loaded_t *l = opaque;
    odbc_keys_t *ks = tlen == 1 && table[0] == 'a' ? &l->a : &l->b;
    l->records++;
    if (op == ODBC_REC_PUT)
        return siphon_odbc__keys_put(ks, key, klen, siphon_odbc__hash(0, key, klen), val) < 0 ? -1
                                                                                            : 0;
    if (op == ODBC_REC_DEL)
        siphon_odbc__keys_del(ks, key, klen, siphon_odbc__hash(0, key, klen));
    if (op == ODBC_REC_RECON && ks == &l->a)
        l->recon_a = val;
    return 0;
}

static void loaded_free(loaded_t *l)
{
    siphon_odbc__keys_free(&l->a);
    siphon_odbc__keys_free(&l->b);
    memset(l, 0, sizeof(*l));
}

static long chash_of(odbc_keys_t *ks, const char *k)
{
    long e = siphon_odbc__keys_find(ks, (const uint8_t *)k, strlen(k), kh(k));
    return e < 0 ? -1 : (long)ks->ents[e].chash;
}

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/siphon-unit-odbc-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *dir = malloc(strlen(d) + 16);
    sprintf(dir, "%s/state", d); /* a folder the store has to create */
    return dir;
}

static void rmrf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_store(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    odbc_store_t st;
    loaded_t l = {0};

    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(l.records, 0);
    /* poll 1 (table a: k1, k2), poll 2 (table b: k1; table a: delete k1), poll 3 (a: k3) */
    siphon_buf_t *d = siphon_odbc__store_delta(&st, 1);
    assert_int_equal(siphon_odbc__rec_table(d, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(d, (uint8_t *)"k1", 2, 11), 0);
    assert_int_equal(siphon_odbc__rec_put(d, (uint8_t *)"k2", 2, 12), 0);
    d = siphon_odbc__store_delta(&st, 2);
    assert_int_equal(siphon_odbc__rec_table(d, "b"), 0);
    assert_int_equal(siphon_odbc__rec_put(d, (uint8_t *)"k1", 2, 21), 0);
    assert_int_equal(siphon_odbc__rec_table(d, "a"), 0);
    assert_int_equal(siphon_odbc__rec_del(d, (uint8_t *)"k1", 2), 0);
    assert_int_equal(siphon_odbc__rec_recon(d, 1700000000), 0);
    d = siphon_odbc__store_delta(&st, 3);
    assert_int_equal(siphon_odbc__rec_table(d, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(d, (uint8_t *)"k3", 2, 13), 0);
    assert_false(siphon_odbc__store_idle(&st));

    /* only polls 1 and 2 are acknowledged */
    assert_int_equal(siphon_odbc__store_ack(&st, 2, err, sizeof(err)), 0);
    assert_int_equal(st.fsyncs, 1);
    assert_false(siphon_odbc__store_idle(&st));
    assert_int_equal(siphon_odbc__store_ack(&st, 2, err, sizeof(err)), 0); /* nothing new */
    assert_int_equal(st.fsyncs, 1);
    siphon_odbc__store_close(&st); /* a crash: poll 3 never acknowledged */

    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.a, "k1"), -1);
    assert_int_equal(chash_of(&l.a, "k2"), 12);
    assert_int_equal(chash_of(&l.a, "k3"), -1);
    assert_int_equal(chash_of(&l.b, "k1"), 21);
    assert_int_equal(l.recon_a, 1700000000);

    /* a torn frame at the end (a crash while writing) is ignored, and cut off */
    d = siphon_odbc__store_delta(&st, 4);
    assert_int_equal(siphon_odbc__rec_table(d, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(d, (uint8_t *)"k4", 2, 14), 0);
    assert_int_equal(siphon_odbc__store_ack(&st, 4, err, sizeof(err)), 0);
    char *jp = strdup(st.journal_path);
    uint64_t good = st.journal_bytes;
    siphon_odbc__store_close(&st);
    FILE *f = fopen(jp, "ab");
    assert_non_null(f);
    uint8_t torn[] = {200, 0, 0, 0, 1, 2, 3, 4, 'T', 1};
    fwrite(torn, 1, sizeof(torn), f);
    fclose(f);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.a, "k4"), 14);
    assert_int_equal(chash_of(&l.a, "k2"), 12);
    assert_int_equal(st.journal_bytes, good);
    struct stat sb;
    assert_int_equal(stat(jp, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, good);

    /* compaction: the base gets everything, the journal starts over */
    assert_true(siphon_odbc__store_idle(&st));
    int fd;
    siphon_buf_t b = {0};
    assert_int_equal(siphon_odbc__store_compact_begin(&st, &fd, err, sizeof(err)), 0);
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_recon(&b, 1700000000), 0);
    for (size_t i = 0; i < l.a.nents; i++)
        if (l.a.ents[i].live)
            assert_int_equal(siphon_odbc__rec_put(&b, siphon_odbc__keys_bytes(&l.a, &l.a.ents[i]),
                                                  l.a.ents[i].klen, l.a.ents[i].chash), 0);
    assert_int_equal(siphon_odbc__store_compact_frame(fd, &b), 0);
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__rec_table(&b, "b"), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k1", 2, 21), 0);
    assert_int_equal(siphon_odbc__store_compact_frame(fd, &b), 0);
    assert_int_equal(siphon_odbc__store_compact_end(&st, fd, 1, err, sizeof(err)), 0);
    assert_int_equal(st.gen, 1);
    assert_int_equal(st.journal_bytes, 16);
    /* a change after compaction goes to the new journal */
    d = siphon_odbc__store_delta(&st, 5);
    assert_int_equal(siphon_odbc__rec_table(d, "b"), 0);
    assert_int_equal(siphon_odbc__rec_del(d, (uint8_t *)"k1", 2), 0);
    assert_int_equal(siphon_odbc__store_ack(&st, 5, err, sizeof(err)), 0);
    siphon_odbc__store_close(&st);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.a, "k2"), 12);
    assert_int_equal(chash_of(&l.a, "k4"), 14);
    assert_int_equal(chash_of(&l.b, "k1"), -1);
    assert_int_equal(l.recon_a, 1700000000);
    siphon_odbc__store_close(&st);

    /* a journal of an older generation (a crash right after the base was renamed) is already
     * in the base: not replayed over it */
    char *bp = malloc(strlen(dir) + 32);
    sprintf(bp, "%s/keys.journal", dir);
    f = fopen(bp, "r+b");
    assert_non_null(f);
    uint8_t zero[8] = {0};
    fseek(f, 8, SEEK_SET);
    fwrite(zero, 1, 8, f); /* generation 0 < 1 */
    fclose(f);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.b, "k1"), 21); /* the delete lived in the ignored journal */
    siphon_odbc__store_close(&st);

    /* a file that is not ours is an error naming it */
    sprintf(bp, "%s/keys.base", dir);
    f = fopen(bp, "wb");
    fputs("this is not a key file", f);
    fclose(f);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "keys.base"));
    siphon_odbc__store_close(&st);

    loaded_free(&l);
    siphon_buf_free(&b);
    free(bp);
    free(jp);
    char *parent = strdup(dir);
    *strrchr(parent, '/') = 0;
    rmrf(parent);
    free(parent);
    free(dir);
}

int odbc_state_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermarks),
        cmocka_unit_test(test_key_map),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests_name("odbc_state", tests, NULL, NULL);
}
