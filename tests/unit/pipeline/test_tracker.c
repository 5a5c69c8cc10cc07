/*
 * test_tracker.c - the position tracker and the offsets store: the acknowledgement rule.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "pipeline/pipeline.h"

static siphon_pos_t P(uint64_t n) { return (siphon_pos_t){n, NULL}; }

static void test_in_order(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    uint64_t a = siphon_tracker_begin(t);
    siphon_tracker_add(t, a);
    siphon_tracker_add(t, a);
    siphon_pos_t pa = P(100);
    siphon_tracker_commit(t, a, &pa);
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_tracker_delivered(t, a);
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_tracker_delivered(t, a);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 100);
    assert_int_equal(siphon_tracker_entries(t), 0);
    siphon_tracker_destroy(t);
}

static void test_out_of_order_deliveries(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    uint64_t seq[3];
    for (int i = 0; i < 3; i++) {
        seq[i] = siphon_tracker_begin(t);
        siphon_tracker_add(t, seq[i]);
        siphon_pos_t p = P(100 + (uint64_t)i);
        siphon_tracker_commit(t, seq[i], &p);
    }
    /* the last and middle are delivered first: nothing may be acknowledged */
    siphon_tracker_delivered(t, seq[2]);
    siphon_tracker_delivered(t, seq[1]);
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_tracker_delivered(t, seq[0]);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 102);
    siphon_tracker_destroy(t);
}

static void test_open_transaction_blocks(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    uint64_t a = siphon_tracker_begin(t); /* still arriving: no commit yet */
    siphon_tracker_add(t, a);
    siphon_tracker_delivered(t, a);
    siphon_pos_t p = P(500);
    siphon_tracker_position(t, &p); /* idle progress after it */
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_pos_t pa = P(400);
    siphon_tracker_commit(t, a, &pa);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 500);
    siphon_tracker_destroy(t);
}

static void test_empty_transaction_and_position_ack_at_once(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    uint64_t a = siphon_tracker_begin(t); /* all rows filtered out */
    siphon_pos_t pa = P(10);
    siphon_tracker_commit(t, a, &pa);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 10);
    siphon_pos_t pb = P(20);
    siphon_tracker_position(t, &pb);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 20);
    siphon_tracker_destroy(t);
}

static void test_abandoned_is_never_acknowledged(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    uint64_t a = siphon_tracker_begin(t);
    siphon_tracker_add(t, a);
    siphon_tracker_abandon(t, a); /* connection dropped mid-transaction */
    uint64_t b = siphon_tracker_begin(t); /* the same transaction, sent again */
    siphon_tracker_add(t, b);
    siphon_pos_t pb = P(77);
    siphon_tracker_commit(t, b, &pb);
    siphon_tracker_delivered(t, a);
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_tracker_delivered(t, b);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, 77);
    siphon_tracker_destroy(t);
}

static void test_ring_growth_keeps_seqs(void **state)
{
    siphon_tracker_t *t = siphon_tracker_new();
    siphon_pos_t out = {0};
    enum { N = 5000 };
    uint64_t *seq = malloc(N * sizeof(*seq));
    for (int i = 0; i < N; i++) {
        seq[i] = siphon_tracker_begin(t);
        siphon_tracker_add(t, seq[i]);
        char text[32];
        snprintf(text, sizeof(text), "pos-%d", i);
        siphon_pos_t p = {(uint64_t)i + 1, text};
        siphon_tracker_commit(t, seq[i], &p); /* copies text */
    }
    assert_int_equal(siphon_tracker_pending(t), N);
    /* deliver in reverse: the position moves only at the very end */
    for (int i = N - 1; i >= 1; i--)
        siphon_tracker_delivered(t, seq[i]);
    assert_int_equal(siphon_tracker_advance(t, &out), 0);
    siphon_tracker_delivered(t, seq[0]);
    assert_int_equal(siphon_tracker_advance(t, &out), 1);
    assert_int_equal(out.num, N);
    assert_string_equal(out.text, "pos-4999");
    siphon_pos_free(&out);
    free(seq);
    siphon_tracker_destroy(t);
}

/* Random interleavings: the acknowledged position is always the greatest committed position all
 * of whose predecessors (and itself) are fully delivered. */
static void test_random_against_model(void **state)
{
    srand(12345);
    for (int round = 0; round < 200; round++) {
        siphon_tracker_t *t = siphon_tracker_new();
        enum { N = 40 };
        uint64_t seq[N];
        int left[N];
        for (int i = 0; i < N; i++) {
            seq[i] = siphon_tracker_begin(t);
            left[i] = rand() % 4;
            for (int k = 0; k < left[i]; k++)
                siphon_tracker_add(t, seq[i]);
            siphon_pos_t p = P((uint64_t)i + 1);
            siphon_tracker_commit(t, seq[i], &p);
        }
        uint64_t acked = 0;
        for (;;) {
            int cand[N * 4], nc = 0;
            for (int i = 0; i < N; i++)
                for (int k = 0; k < left[i]; k++)
                    cand[nc++] = i;
            siphon_pos_t out = {0};
            if (siphon_tracker_advance(t, &out))
                acked = out.num;
            uint64_t expect = 0;
            for (int i = 0; i < N && left[i] == 0; i++)
                expect = (uint64_t)i + 1;
            assert_int_equal(acked, expect);
            if (nc == 0)
                break;
            int pick = cand[rand() % nc];
            left[pick]--;
            siphon_tracker_delivered(t, seq[pick]);
        }
        assert_int_equal(acked, N);
        siphon_tracker_destroy(t);
    }
}

static void test_offsets_roundtrip(void **state)
{
    char dir[] = "/tmp/siphon-offsets-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/o.json", dir);
    char *pos = (char *)1;
    assert_int_equal(siphon_offsets_load(&pos, path, "c1", err, sizeof(err)), 0);
    assert_null(pos);
    assert_int_equal(siphon_offsets_store(path, "c1", "postgres", "0/16B3748", err, sizeof(err)), 0);
    assert_int_equal(siphon_offsets_load(&pos, path, "c1", err, sizeof(err)), 0);
    assert_string_equal(pos, "0/16B3748");
    free(pos);
    /* another connector's file is refused */
    assert_int_equal(siphon_offsets_load(&pos, path, "c2", err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "belongs to connector 'c1'"));
    /* no temp file is left behind */
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* a torn/garbage file is an error naming the file, never silently a fresh start */
    FILE *f = fopen(path, "w");
    fputs("{\"connector\": \"c1\", \"posi", f);
    fclose(f);
    assert_int_equal(siphon_offsets_load(&pos, path, "c1", err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, path));
    unlink(path);
    rmdir(dir);
}

/* Deliveries on another thread, as the Kafka sink reports them (src/sink/kafka/kafka.c): the
 * pipeline thread opens entries, counts events and adds them in bulk (sometimes after their
 * deliveries), commits or abandons, advances; a second thread delivers the queued messages in
 * random order while the ring grows. Every advance must only acknowledge transactions whose
 * events were all delivered, and never go back. */
enum { MT_NTX = 30000 };

typedef struct mt {
    siphon_tracker_t *trk;
    pthread_mutex_t mu;
    struct {
        uint64_t seq;
        int tx;
    } *q;
    long qn;
    atomic_int finished;
    atomic_int total[MT_NTX + 1], done[MT_NTX + 1];
} mt_t;

static void *mt_deliverer(void *arg)
{
    mt_t *m = arg;
    unsigned r = 7;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int fin = atomic_load(&m->finished);
        if (m->qn == 0 || (!fin && m->qn < 500 && rand_r(&r) % 4)) {
            pthread_mutex_unlock(&m->mu);
            if (fin && m->qn == 0)
                break;
            sched_yield();
            continue;
        }
        long i = (long)(rand_r(&r) % (unsigned)m->qn);
        uint64_t seq = m->q[i].seq;
        int tx = m->q[i].tx;
        m->q[i] = m->q[--m->qn];
        pthread_mutex_unlock(&m->mu);
        atomic_fetch_add(&m->done[tx], 1); /* before the tracker hears of it */
        siphon_tracker_delivered(m->trk, seq);
    }
    return NULL;
}

static void test_deliveries_from_another_thread(void **state)
{
    (void)state;
    mt_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->trk = siphon_tracker_new();
    m->q = malloc((size_t)MT_NTX * 4 * sizeof(*m->q));
    assert_true(m->trk && m->q);
    pthread_mutex_init(&m->mu, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, mt_deliverer, m), 0);
    unsigned r = 1;
    uint64_t last = 0;
    long advances = 0;
    for (int tx = 1; tx <= MT_NTX; tx++) {
        uint64_t seq = siphon_tracker_begin(m->trk);
        int k = (int)(rand_r(&r) % 4), unadded = 0;
        for (int e = 0; e < k; e++) {
            atomic_fetch_add(&m->total[tx], 1);
            pthread_mutex_lock(&m->mu);
            m->q[m->qn].seq = seq;
            m->q[m->qn].tx = tx;
            m->qn++;
            pthread_mutex_unlock(&m->mu);
            unadded++; /* the delivery may come before the add, as in pipeline.c */
            if (rand_r(&r) % 3 == 0) {
                siphon_tracker_add_n(m->trk, seq, (uint64_t)unadded);
                unadded = 0;
            }
        }
        if (unadded)
            siphon_tracker_add_n(m->trk, seq, (uint64_t)unadded);
        siphon_pos_t pos = P((uint64_t)tx);
        if (rand_r(&r) % 50 == 0)
            siphon_tracker_abandon(m->trk, seq);
        else
            assert_int_equal(siphon_tracker_commit(m->trk, seq, &pos), 0);
        if (tx % 100 == 0) /* let the deliverer catch up now and then, so advances happen */
            for (;;) {
                pthread_mutex_lock(&m->mu);
                long qn = m->qn;
                pthread_mutex_unlock(&m->mu);
                if (qn < 300)
                    break;
                sched_yield();
            }
        siphon_pos_t out = {0};
        if (tx % 7 == 0 && siphon_tracker_advance(m->trk, &out)) {
            advances++;
            assert_true(out.num > last);
            for (uint64_t j = last + 1; j <= out.num; j++)
                if (atomic_load(&m->done[j]) != atomic_load(&m->total[j]))
                    fail_msg("acknowledged %llu, but transaction %llu has %d of %d delivered",
                             (unsigned long long)out.num, (unsigned long long)j,
                             atomic_load(&m->done[j]), atomic_load(&m->total[j]));
            last = out.num;
            siphon_pos_free(&out);
        }
    }
    atomic_store(&m->finished, 1);
    pthread_join(th, NULL);
    siphon_pos_t out = {0};
    if (siphon_tracker_advance(m->trk, &out)) {
        last = out.num;
        siphon_pos_free(&out);
    }
    assert_true(advances > 50);
    assert_int_equal(siphon_tracker_entries(m->trk), 0);
    assert_int_equal(siphon_tracker_pending(m->trk), 0);
    assert_true(last >= MT_NTX - 50); /* the last transactions may be abandoned ones */
    siphon_tracker_destroy(m->trk);
    pthread_mutex_destroy(&m->mu);
    free(m->q);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order_deliveries),
        cmocka_unit_test(test_open_transaction_blocks),
        cmocka_unit_test(test_empty_transaction_and_position_ack_at_once),
        cmocka_unit_test(test_abandoned_is_never_acknowledged),
        cmocka_unit_test(test_ring_growth_keeps_seqs),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_deliveries_from_another_thread),
        cmocka_unit_test(test_offsets_roundtrip),
    };
    return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
