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

/* The loader's view: a small map per table name, rebuilt from the files as the source does
 * (odbc_source.c load_cb): an unacknowledged put makes a MAYBE key, an unacknowledged delete or
 * reconciliation time is ignored. */
typedef struct loaded {
    odbc_keys_t a, b;
    uint64_t recon_a;
    int records, maybes;
} loaded_t;

static int load_cb(void *opaque, const char *table, size_t tlen, int op, int maybe,
                   const uint8_t *key, size_t klen, uint64_t val)
{
    loaded_t *l = opaque;
    odbc_keys_t *ks = tlen == 1 && table[0] == 'a' ? &l->a : &l->b;
    uint64_t kh = key ? siphon_odbc__hash(0, key, klen) : 0;
    long e;
    l->records++;
    l->maybes += maybe;
    switch (op) {
    case ODBC_REC_PUT:
        if (!maybe)
            return siphon_odbc__keys_put(ks, key, klen, kh, val) < 0 ? -1 : 0;
        if ((e = siphon_odbc__keys_find(ks, key, klen, kh)) >= 0) {
            if (ks->ents[e].live == ODBC_KEY_SENT)
                ks->ents[e].live = ODBC_KEY_MAYBE_CHANGED;
            return 0;
        }
        op = ODBC_REC_MAYBE_NEW;
        /* fall through */
    case ODBC_REC_MAYBE_NEW:
    case ODBC_REC_MAYBE_CHANGED:
        if ((e = siphon_odbc__keys_put(ks, key, klen, kh, 0)) < 0)
            return -1;
        ks->ents[e].live = op == ODBC_REC_MAYBE_NEW ? ODBC_KEY_MAYBE_NEW : ODBC_KEY_MAYBE_CHANGED;
        return 0;
    case ODBC_REC_DEL:
        if (!maybe)
            siphon_odbc__keys_del(ks, key, klen, kh);
        return 0;
    case ODBC_REC_RECON:
        if (!maybe && ks == &l->a)
            l->recon_a = val;
        return 0;
    }
    return 0;
}

static void loaded_free(loaded_t *l)
{
    siphon_odbc__keys_free(&l->a);
    siphon_odbc__keys_free(&l->b);
    memset(l, 0, sizeof(*l));
}

/* The content hash of a key, -1 when absent; -2 - state for a MAYBE key. */
static long chash_of(odbc_keys_t *ks, const char *k)
{
    long e = siphon_odbc__keys_find(ks, (const uint8_t *)k, strlen(k), kh(k));
    if (e < 0)
        return -1;
    if (ks->ents[e].live != ODBC_KEY_SENT)
        return -2 - (long)ks->ents[e].live;
    return (long)ks->ents[e].chash;
}
#define MAYBE_NEW (-2 - ODBC_KEY_MAYBE_NEW)
#define MAYBE_CHANGED (-2 - ODBC_KEY_MAYBE_CHANGED)

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

static void intent(odbc_store_t *st, uint64_t seq, siphon_buf_t *b)
{
    char err[512];
    assert_int_equal(siphon_odbc__store_intent(st, seq, b, err, sizeof(err)), 0);
    siphon_buf_reset(b);
}

static void reopen(odbc_store_t *st, const char *dir, loaded_t *l)
{
    char err[512];
    siphon_odbc__store_close(st);
    loaded_free(l);
    assert_int_equal(siphon_odbc__store_open(st, dir, load_cb, l, err, sizeof(err)), 0);
}

static void test_store(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    odbc_store_t st;
    loaded_t l = {0};
    siphon_buf_t b = {0};

    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(l.records, 0);
    assert_int_equal(st.last_seq, 0);
    assert_true(siphon_odbc__store_idle(&st));

    /* poll 1 (table a: k1, k2), poll 2 (b: k1; a: delete k1, a pass done), poll 3 (a: k3),
     * each written ahead and fsynced; only 1 and 2 acknowledged */
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k1", 2, 11), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k2", 2, 12), 0);
    intent(&st, 1, &b);
    assert_int_equal(siphon_odbc__rec_table(&b, "b"), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k1", 2, 21), 0);
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_del(&b, (uint8_t *)"k1", 2), 0);
    assert_int_equal(siphon_odbc__rec_recon(&b, 1700000000), 0);
    intent(&st, 2, &b);
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k3", 2, 13), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k2", 2, 99), 0);
    intent(&st, 3, &b);
    assert_int_equal(st.fsyncs, 3);
    assert_int_equal(siphon_odbc__store_ack(&st, 2, err, sizeof(err)), 0);
    assert_int_equal(siphon_odbc__store_ack(&st, 2, err, sizeof(err)), 0); /* nothing new */
    assert_int_equal(st.fsyncs, 3); /* acknowledgements are not fsynced */
    assert_false(siphon_odbc__store_idle(&st));

    /* a crash: poll 3 was written ahead but never acknowledged */
    reopen(&st, dir, &l);
    assert_int_equal(st.last_seq, 3);
    assert_int_equal(st.acked_seq, 2);
    assert_int_equal(chash_of(&l.a, "k1"), -1);
    assert_int_equal(chash_of(&l.b, "k1"), 21);
    assert_int_equal(l.recon_a, 1700000000);
    /* poll 3's keys may have been delivered: k3 a maybe-create, k2 a maybe-update */
    assert_int_equal(chash_of(&l.a, "k3"), MAYBE_NEW);
    assert_int_equal(chash_of(&l.a, "k2"), MAYBE_CHANGED);
    assert_int_equal(l.maybes, 2);

    /* an unacknowledged delete and pass are ignored: the key stays, to be deleted again */
    assert_int_equal(siphon_odbc__rec_table(&b, "b"), 0);
    assert_int_equal(siphon_odbc__rec_del(&b, (uint8_t *)"k1", 2), 0);
    intent(&st, 4, &b);
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_put(&b, (uint8_t *)"k4", 2, 14), 0);
    assert_int_equal(siphon_odbc__rec_recon(&b, 1800000000), 0);
    intent(&st, 5, &b);
    reopen(&st, dir, &l);
    assert_int_equal(chash_of(&l.b, "k1"), 21);
    assert_int_equal(chash_of(&l.a, "k4"), MAYBE_NEW);
    assert_int_equal(l.recon_a, 1700000000);

    /* acknowledged, they are facts */
    assert_int_equal(siphon_odbc__store_ack(&st, 5, err, sizeof(err)), 0);
    reopen(&st, dir, &l);
    assert_int_equal(chash_of(&l.b, "k1"), -1);
    assert_int_equal(chash_of(&l.a, "k4"), 14);
    assert_int_equal(chash_of(&l.a, "k2"), 99);
    assert_int_equal(l.recon_a, 1800000000);
    assert_true(siphon_odbc__store_idle(&st));

    /* a torn frame at the end (a crash while writing) is ignored, and cut */
    char *jp = strdup(st.journal_path);
    uint64_t good = st.journal_bytes;
    siphon_odbc__store_close(&st);
    FILE *f = fopen(jp, "ab");
    assert_non_null(f);
    uint8_t torn[] = {200, 0, 0, 0, 1, 2, 3, 4, 'S', 1};
    fwrite(torn, 1, sizeof(torn), f);
    fclose(f);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.a, "k4"), 14);
    assert_int_equal(st.journal_bytes, good);
    struct stat sb;
    assert_int_equal(stat(jp, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, good);

    /* compaction: the base gets everything (MAYBE keys as such), the journal starts over with
     * the last acknowledgement so that poll numbers keep growing */
    int fd;
    assert_int_equal(siphon_odbc__store_compact_begin(&st, &fd, err, sizeof(err)), 0);
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_recon(&b, 1800000000), 0);
    for (size_t i = 0; i < l.a.nents; i++)
        if (l.a.ents[i].live)
            assert_int_equal(siphon_odbc__rec_put(&b, siphon_odbc__keys_bytes(&l.a, &l.a.ents[i]),
                                                  l.a.ents[i].klen, l.a.ents[i].chash), 0);
    assert_int_equal(siphon_odbc__rec_maybe(&b, ODBC_REC_MAYBE_NEW, (uint8_t *)"k9", 2), 0);
    assert_int_equal(siphon_odbc__store_compact_frame(fd, &b), 0);
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__rec_table(&b, "b"), 0);
    assert_int_equal(siphon_odbc__rec_maybe(&b, ODBC_REC_MAYBE_CHANGED, (uint8_t *)"k8", 2), 0);
    assert_int_equal(siphon_odbc__store_compact_frame(fd, &b), 0);
    siphon_buf_reset(&b);
    assert_int_equal(siphon_odbc__store_compact_end(&st, fd, 1, err, sizeof(err)), 0);
    assert_int_equal(st.gen, 1);
    assert_true(siphon_odbc__store_idle(&st));
    /* a change after compaction goes to the new journal */
    assert_int_equal(siphon_odbc__rec_table(&b, "a"), 0);
    assert_int_equal(siphon_odbc__rec_del(&b, (uint8_t *)"k2", 2), 0);
    intent(&st, 6, &b);
    assert_int_equal(siphon_odbc__store_ack(&st, 6, err, sizeof(err)), 0);
    reopen(&st, dir, &l);
    assert_int_equal(st.last_seq, 6);
    assert_int_equal(chash_of(&l.a, "k2"), -1);
    assert_int_equal(chash_of(&l.a, "k4"), 14);
    assert_int_equal(chash_of(&l.a, "k9"), MAYBE_NEW);
    assert_int_equal(chash_of(&l.b, "k8"), MAYBE_CHANGED);
    assert_int_equal(l.recon_a, 1800000000);
    siphon_odbc__store_close(&st);

    /* a journal of an older generation (a crash right after the base was renamed) is already
     * in the base: not replayed over it */
    f = fopen(jp, "r+b");
    assert_non_null(f);
    uint8_t zero[8] = {0};
    fseek(f, 8, SEEK_SET);
    fwrite(zero, 1, 8, f); /* generation 0 < 1 */
    fclose(f);
    loaded_free(&l);
    assert_int_equal(siphon_odbc__store_open(&st, dir, load_cb, &l, err, sizeof(err)), 0);
    assert_int_equal(chash_of(&l.a, "k2"), 99); /* the delete lived in the ignored journal */
    siphon_odbc__store_close(&st);

    /* a file that is not ours is an error naming it */
    char *bp = malloc(strlen(dir) + 32);
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
