/*
 * 0301-transactions - transaction metadata (pipeline.transactions: true).
 *
 * The pipeline runs in this process on a thread, with the real Postgres source and Kafka sink
 * wrapped: the source's ack() records every acknowledged position, and the sink can hold back
 * the delivery reports of END events (a broker that is slow for the transactions topic only).
 * Two mappings read public.oehdr (the fixture's sales_order v1 and an order_status v1 written
 * here), so one source transaction has events on two streams.
 *
 * Checked:
 *  - a transaction with events gets BEGIN and END on it._transactions, keyed by its id, BEGIN
 *    first; both carry its id (= source.pos of its events), txid, commit time; END counts its
 *    change events in all and per topic, and no dead letters;
 *  - every change event's envelope carries transaction {id, total_order 1..n without gaps over
 *    all streams, data_collection_order 1..k per stream, in commit order per key};
 *  - a transaction whose rows no mapping reads publishes nothing on it._transactions;
 *  - the position waits for END: with END's delivery held, every change event and the BEGIN
 *    are on Kafka and yet the source is not acknowledged past the transaction; once END is
 *    delivered, it is.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_check.h"

#include "avro/siphon_avro.h"
#include "config/config.h"
#include "connectors/postgres/postgres.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "sink/kafka/kafka.h"

#define TXN_TOPIC "it._transactions"

/* ---- the wrapped source: records acknowledgements ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_acked;     /* highest LSN acknowledged to the source */
static volatile int g_hold;  /* hold END delivery reports */

static int w_ack(siphon_source_t *src, const siphon_pos_t *pos, char *errbuf, size_t errsize)
{
    pthread_mutex_lock(&g_mu);
    if (pos && pos->num > g_acked)
        g_acked = pos->num;
    pthread_mutex_unlock(&g_mu);
    return siphon_postgres_source.ack(src, pos, errbuf, errsize);
}

static uint64_t acked(void)
{
    pthread_mutex_lock(&g_mu);
    uint64_t a = g_acked;
    pthread_mutex_unlock(&g_mu);
    return a;
}

/* ---- the wrapped sink: can hold the delivery reports of END events ---- */

typedef struct held {
    void *orig;
    int end;
} held_t;

/* The Kafka sink reports deliveries on its own thread (src/sink/kafka/kafka.c) while the
 * pipeline thread produces and polls and the test thread reads the counters: W.mu guards
 * held, nheld and ends_produced. */
static struct {
    pthread_mutex_t mu;
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    void **held;   /* original opaques of END reports held back */
    int nheld;
    long ends_produced;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void w_delivery(void *msg_opaque, int err, const char *errstr, void *cbo)
{
    held_t *h = msg_opaque;
    void *orig = h->orig;
    int hold = 0;
    (void)cbo;
    pthread_mutex_lock(&W.mu);
    if (h->end && !err && g_hold) {
        void **n = realloc(W.held, (size_t)(W.nheld + 1) * sizeof(*W.held));
        if (!n)
            abort();
        W.held = n;
        W.held[W.nheld++] = orig;
        hold = 1;
    }
    pthread_mutex_unlock(&W.mu);
    free(h);
    if (!hold)
        W.cb(orig, err, errstr, W.cb_opaque);
}

static int w_open(siphon_sink_t **out, const siphon_config_t *cfg, siphon_sink_delivery_cb cb,
                  void *cb_opaque, char *errbuf, size_t errsize)
{
    W.cb = cb;
    W.cb_opaque = cb_opaque;
    return siphon_kafka_sink.open(out, cfg, w_delivery, NULL, errbuf, errsize);
}

static int w_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                     size_t errsize)
{
    held_t *h = calloc(1, sizeof(*h));
    if (!h)
        abort();
    siphon_sink_msg_t m = *msg;
    const uint8_t *v = msg->value;
    h->orig = msg->opaque;
    /* a TransactionEvent starts with its status string: zigzag length 3, "END" */
    int end = !strcmp(msg->topic, TXN_TOPIC) && v && msg->vlen > 14 &&
              memcmp(v + SIPHON_AVRO_SOE_HEADER_LEN, "\x06" "END", 4) == 0;
    h->end = end;
    m.opaque = h;
    /* once produced, h belongs to the delivery report (which may come at once) */
    int rc = siphon_kafka_sink.produce(snk, &m, errbuf, errsize);
    if (rc < 0) {
        free(h);
    } else if (end) {
        pthread_mutex_lock(&W.mu);
        W.ends_produced++;
        pthread_mutex_unlock(&W.mu);
    }
    return rc;
}

static int w_poll(siphon_sink_t *snk, int timeout_ms)
{
    int n = siphon_kafka_sink.poll(snk, timeout_ms);
    void **rel = NULL;
    int nrel = 0;
    pthread_mutex_lock(&W.mu);
    if (!g_hold && W.nheld) { /* released: report them now, on the pipeline thread */
        rel = W.held;
        nrel = W.nheld;
        W.held = NULL;
        W.nheld = 0;
    }
    pthread_mutex_unlock(&W.mu);
    for (int i = 0; i < nrel; i++)
        W.cb(rel[i], 0, NULL, W.cb_opaque);
    free(rel);
    return n + nrel;
}

static long w_inflight(siphon_sink_t *snk)
{
    pthread_mutex_lock(&W.mu);
    long held = W.nheld;
    pthread_mutex_unlock(&W.mu);
    return siphon_kafka_sink.inflight(snk) + held;
}

static long ends_produced(void)
{
    pthread_mutex_lock(&W.mu);
    long n = W.ends_produced;
    pthread_mutex_unlock(&W.mu);
    return n;
}

/* ---- the run ---- */

typedef struct state {
    th_env_t *env;
    char *mdir, *sdir;
    th_decoder_t *dec;
    siphon_config_t *cfg;
    siphon_source_ops_t sops;
    siphon_sink_ops_t kops;
    pthread_t thr;
    volatile sig_atomic_t stop;
    int rc;
    char err[2048];
    th_consumer_t *c_so, *c_os, *c_tx;
    th_msgs_t so, os, tx;
    siphon_avro_txn_stream_t *ts;
} state_t;

static void *run_main(void *arg)
{
    state_t *st = arg;
    st->rc = siphon_pipeline_run(st->cfg, &st->sops, &st->kops, &st->stop, NULL, st->err,
                                 sizeof(st->err));
    if (st->rc)
        th_err("the pipeline stopped: %s", st->err);
    return NULL;
}

static const char status_mapping[] =
    "entity: order_status\nversion: 1\nsource:\n  table: public.oehdr\n"
    "key: [company, order_number]\nfields:\n  company: hdcomp\n  order_number: hdordn\n"
    "  status: hdstat\n";
static const char status_schema[] =
    "{\"type\":\"record\",\"name\":\"OrderStatus\",\"namespace\":\"siphon.erp\",\"fields\":["
    "{\"name\":\"company\",\"type\":\"string\"},{\"name\":\"order_number\",\"type\":\"string\"},"
    "{\"name\":\"status\",\"type\":\"string\"}]}";

static int copy_file(const char *from, const char *to)
{
    char *t = th_read_file(from, NULL, 0);
    int rc = t ? th_write_file(to, t) : -1;
    free(t);
    return rc;
}

static int setup(void **state)
{
    state_t *st = calloc(1, sizeof(*st));
    char err[1024];
    *state = st;
    th_log("setup: PostgreSQL, mock Kafka, two mappings of oehdr, transactions on, the "
           "pipeline on a thread with a recording source and a holding sink");
    if (!(st->env = th_env_new()))
        return -1;
    th_env_t *env = st->env;
    st->mdir = th_path(env->dir, "mappings");
    st->sdir = th_path(env->dir, "schemas");
    if (mkdir(st->mdir, 0700) || mkdir(st->sdir, 0700))
        return th_err("mkdir");
    char *a = th_path(env->conf.mappings_dir, "sales_order.yaml");
    char *b = th_path(st->mdir, "sales_order.yaml");
    char *c = th_path(env->conf.schemas_dir, "sales_order.v1.avsc");
    char *d = th_path(st->sdir, "sales_order.v1.avsc");
    char *e = th_path(st->mdir, "order_status.yaml");
    char *f = th_path(st->sdir, "order_status.v1.avsc");
    int rc = copy_file(a, b) || copy_file(c, d) || th_write_file(e, status_mapping) ||
             th_write_file(f, status_schema);
    free(a), free(b), free(c), free(d), free(e), free(f);
    if (rc)
        return -1;
    if (th_pg_exec(env->pg, "CREATE TABLE other (id int PRIMARY KEY)") != 0)
        return -1;
    const char *topics[] = {"it.order_status.v1", TXN_TOPIC, "it._dlq"};
    for (int i = 0; i < 3; i++)
        if (th_kafka_create_topic(env->kafka, topics[i], 4) != 0)
            return -1;
    env->conf.mappings_dir = st->mdir;
    env->conf.schemas_dir = st->sdir;
    env->conf.extra_yaml = "pipeline:\n  transactions: true";
    if (th_env_write_conf(env) != 0 || !(st->dec = th_decoder_new(st->mdir, st->sdir)))
        return -1;
    if (siphon_config_load(&st->cfg, env->config_path, err, sizeof(err)) < 0)
        return th_err("%s", err);
    if (siphon_avro_txn_stream_new(&st->ts, err, sizeof(err)) < 0)
        return th_err("%s", err);
    siphon_log_setup(getenv("TH_DEBUG") ? SIPHON_LOG_DEBUG : SIPHON_LOG_INFO, 0);
    st->sops = siphon_postgres_source;
    st->sops.ack = w_ack;
    st->kops = siphon_kafka_sink;
    st->kops.open = w_open;
    st->kops.produce = w_produce;
    st->kops.poll = w_poll;
    st->kops.inflight = w_inflight;
    if (pthread_create(&st->thr, NULL, run_main, st) != 0)
        return th_err("could not start the pipeline thread");
    if (th_env_wait_streaming(env, 30000) != 0)
        return -1;
    if (!(st->c_so = th_consumer_new(env->kafka, env->topic)) ||
        !(st->c_os = th_consumer_new(env->kafka, "it.order_status.v1")) ||
        !(st->c_tx = th_consumer_new(env->kafka, TXN_TOPIC)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    state_t *st = *state;
    g_hold = 0;
    st->stop = 1;
    if (st->thr)
        pthread_join(st->thr, NULL);
    th_consumer_destroy(st->c_so);
    th_consumer_destroy(st->c_os);
    th_consumer_destroy(st->c_tx);
    th_msgs_free(&st->so);
    th_msgs_free(&st->os);
    th_msgs_free(&st->tx);
    th_decoder_destroy(st->dec);
    siphon_avro_txn_stream_destroy(st->ts);
    siphon_config_destroy(st->cfg);
    th_env_destroy(st->env);
    free(st->mdir);
    free(st->sdir);
    free(W.held);
    free(st);
    return 0;
}

/* A transaction event decoded (Avro JSON encoding: optional longs as {"long": n}). */
static json_t *txn_value(state_t *st, const th_msg_t *m)
{
    char *text = NULL, err[512];
    IT_CHECK(st->env, siphon_avro_txn_decode_json(&text, st->ts, 0, m->value, m->vlen, err,
                                                  sizeof(err)) == 0, "%s", err);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    IT_CHECK(st->env, j, "transaction event is not JSON");
    char *ktext = NULL;
    IT_CHECK(st->env, siphon_avro_txn_decode_json(&ktext, st->ts, 1, m->key, m->klen, err,
                                                  sizeof(err)) == 0, "key: %s", err);
    json_t *k = json_loads(ktext, 0, NULL);
    free(ktext);
    IT_CHECK(st->env, k && !strcmp(json_string_value(json_object_get(k, "id")),
                                   json_string_value(json_object_get(j, "id"))),
             "the key's id is not the event's");
    json_decref(k);
    return j;
}

static long long opt_long(json_t *o, const char *f)
{
    json_t *v = json_object_get(o, f);
    return json_is_object(v) ? json_integer_value(json_object_get(v, "long")) : -1;
}

static void poll_until(state_t *st, th_consumer_t *c, th_msgs_t *m, int n, const char *what)
{
    int got = th_env_consume(st->env, c, m, n, 20000);
    IT_CHECK(st->env, got >= n, "%s: %d messages, expected %d", what, got, n);
}

static void test_begin_end_and_blocks(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("one transaction: 3 inserts and an update on oehdr, read by two mappings");
    IT_CHECK(env, th_pg_exec(env->pg,
                             "BEGIN; INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt) VALUES"
                             " ('01','T1','K',1), ('01','T2','K',2), ('01','T3','K',3);"
                             " UPDATE oehdr SET hdstat = 'C' WHERE hdordn = 'T2'; COMMIT;") == 0,
             "SQL");
    char *xid = th_pg_value(env->pg, NULL, "SELECT xmin::text FROM oehdr WHERE hdordn = 'T1'");
    th_log("a transaction on a table no mapping reads, then one more insert");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO other VALUES (1), (2)") == 0 &&
                      th_pg_exec(env->pg, "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt)"
                                          " VALUES ('01','T4','K',4)") == 0, "SQL");
    poll_until(st, st->c_so, &st->so, 5, "it.sales_order.v1");
    poll_until(st, st->c_os, &st->os, 5, "it.order_status.v1");
    poll_until(st, st->c_tx, &st->tx, 4, TXN_TOPIC);
    th_msgs_t more = {0};
    th_consumer_poll(st->c_tx, &more, 1, 1000); /* nothing for the unmapped table */
    IT_CHECK(env, more.n == 0 && st->tx.n == 4, "%d transaction events, expected 4 (2 BEGIN, "
             "2 END)", st->tx.n + more.n);
    th_msgs_free(&more);

    /* the change events of the first transaction, by its id */
    const char *id1 = NULL;
    int total_seen[9] = {0}, nfirst = 0;
    for (int s = 0; s < 2; s++) {
        th_msgs_t *m = s ? &st->os : &st->so;
        long long t2c = 0, t2u = 0;
        for (int i = 0; i < m->n; i++) {
            th_event_t ev = {0};
            if (!m->v[i].value)
                continue;
            IT_CHECK(env, th_decode(st->dec, &m->v[i], &ev) == 0, "decode");
            json_t *tx = json_object_get(ev.value, "transaction");
            char buf[64], pos[64];
            th_json_text(ev.value, "source.pos", pos, sizeof(pos));
            IT_CHECK(env, json_is_object(tx), "event %s has no transaction block", ev.event_id);
            const char *id = json_string_value(json_object_get(tx, "id"));
            IT_CHECK(env, id && !strcmp(id, pos), "transaction.id %s is not source.pos %s",
                     id ? id : "-", pos);
            if (strstr(th_json_text(ev.value, "after.order_number", buf, sizeof(buf)), "T4")) {
                IT_CHECK(env, json_integer_value(json_object_get(tx, "total_order")) <= 2 &&
                                  json_integer_value(json_object_get(tx,
                                                     "data_collection_order")) == 1,
                         "T4's transaction block is not the start of its own transaction");
                th_event_clear(&ev);
                continue;
            }
            if (!id1)
                id1 = strdup(id);
            IT_CHECK(env, !strcmp(id, id1), "two ids in the first transaction");
            long long to = json_integer_value(json_object_get(tx, "total_order"));
            long long dco = json_integer_value(json_object_get(tx, "data_collection_order"));
            IT_CHECK(env, to >= 1 && to <= 8 && !total_seen[to], "total_order %lld repeated or "
                     "out of 1..8", to);
            total_seen[to] = 1;
            IT_CHECK(env, dco >= 1 && dco <= 4, "data_collection_order %lld out of 1..4", dco);
            if (strstr(buf, "T2"))
                *(ev.op == 'c' ? &t2c : &t2u) = dco;
            nfirst++;
            th_event_clear(&ev);
        }
        /* the update of T2 was the transaction's last statement: last in each stream */
        IT_CHECK(env, t2c >= 1 && t2c <= 3 && t2u == 4, "stream %d: T2's insert has "
                 "data_collection_order %lld, its update %lld (expected 1..3 and 4)", s, t2c,
                 t2u);
    }
    IT_CHECK(env, nfirst == 8, "%d events in the first transaction, expected 8", nfirst);
    for (int i = 1; i <= 8; i++)
        IT_CHECK(env, total_seen[i], "total_order %d missing", i);

    th_log("BEGIN and END of the first transaction: same key, BEGIN first, counts in END");
    json_t *begin = NULL, *end = NULL;
    int32_t pb = -1, pe = -1;
    int64_t ob = -1, oe = -1;
    for (int i = 0; i < st->tx.n; i++) {
        json_t *j = txn_value(st, &st->tx.v[i]);
        if (strcmp(json_string_value(json_object_get(j, "id")), id1) != 0) {
            json_decref(j);
            continue;
        }
        const char *status = json_string_value(json_object_get(j, "status"));
        if (!strcmp(status, "BEGIN")) {
            begin = j;
            pb = st->tx.v[i].partition;
            ob = st->tx.v[i].offset;
        } else {
            end = j;
            pe = st->tx.v[i].partition;
            oe = st->tx.v[i].offset;
        }
    }
    IT_CHECK(env, begin && end, "no BEGIN or END for transaction %s", id1);
    IT_CHECK(env, pb == pe && ob < oe, "BEGIN (partition %d offset %lld) does not precede END "
             "(%d, %lld) in one partition", pb, (long long)ob, pe, (long long)oe);
    IT_CHECK(env, xid && opt_long(begin, "txid") == atoll(xid) &&
                      opt_long(end, "txid") == atoll(xid), "txid is not %s", xid);
    IT_CHECK(env, !strcmp(json_string_value(json_object_get(end, "pos")), id1), "END.pos");
    IT_CHECK(env, json_integer_value(json_object_get(begin, "commit_ts_us")) ==
                      json_integer_value(json_object_get(end, "commit_ts_us")) &&
                      json_integer_value(json_object_get(end, "commit_ts_us")) > 0,
             "commit_ts_us differs or is missing");
    IT_CHECK(env, json_is_null(json_object_get(begin, "event_count")) &&
                      json_is_null(json_object_get(begin, "data_collections")),
             "BEGIN has counts");
    IT_CHECK(env, opt_long(end, "event_count") == 8 && opt_long(end, "dead_letter_count") == 0,
             "END counts %lld events, %lld dead letters", opt_long(end, "event_count"),
             opt_long(end, "dead_letter_count"));
    json_t *dcs = json_object_get(json_object_get(end, "data_collections"), "array");
    IT_CHECK(env, json_array_size(dcs) == 2, "END has %zu data collections",
             json_array_size(dcs));
    for (size_t i = 0; i < 2; i++) {
        json_t *dc = json_array_get(dcs, i);
        const char *t = json_string_value(json_object_get(dc, "data_collection"));
        IT_CHECK(env, t && (!strcmp(t, "it.sales_order.v1") || !strcmp(t, "it.order_status.v1"))
                          && json_integer_value(json_object_get(dc, "event_count")) == 4,
                 "END data collection %zu: %s with %lld", i, t ? t : "-",
                 (long long)json_integer_value(json_object_get(dc, "event_count")));
    }
    json_decref(begin);
    json_decref(end);
    free((char *)id1);
    free(xid);
}

static void test_end_holds_the_position(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("END's delivery held: change events and BEGIN arrive, the position does not move");
    g_hold = 1;
    long ends0 = ends_produced();
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO oehdr (hdcomp, hdordn, hdcust, hdamt) VALUES"
                                      " ('02','E1','K',1), ('02','E2','K',2)") == 0, "SQL");
    int so0 = st->so.n, tx0 = st->tx.n;
    poll_until(st, st->c_so, &st->so, so0 + 2, "it.sales_order.v1");
    /* the transaction's position, from its first event */
    th_event_t ev = {0};
    char pos[64];
    uint64_t txpos = 0;
    IT_CHECK(env, th_decode(st->dec, &st->so.v[so0], &ev) == 0, "decode");
    IT_CHECK(env, th_lsn_parse(th_json_text(ev.value, "source.pos", pos, sizeof(pos)),
                               &txpos) == 0, "source.pos %s", pos);
    th_event_clear(&ev);
    poll_until(st, st->c_tx, &st->tx, tx0 + 2, TXN_TOPIC); /* BEGIN, and END reached Kafka */
    int64_t until = th_now_ms() + 5000;
    while (ends_produced() == ends0 && th_now_ms() < until)
        th_sleep_ms(50);
    IT_CHECK(env, ends_produced() == ends0 + 1, "END was not produced");
    th_sleep_ms(1500); /* status updates go out every 500 ms */
    IT_CHECK(env, acked() < txpos, "acknowledged %" PRIx64 ", the transaction's position %"
             PRIx64 ", with END's delivery held", acked(), txpos);
    th_log("END delivered: the position moves past the transaction");
    g_hold = 0;
    until = th_now_ms() + 10000;
    while (acked() < txpos && th_now_ms() < until)
        th_sleep_ms(50);
    IT_CHECK(env, acked() >= txpos, "acknowledged %" PRIx64 ", not the transaction's %" PRIx64,
             acked(), txpos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_end_and_blocks),
        cmocka_unit_test(test_end_holds_the_position),
    };
    return cmocka_run_group_tests_name("0301-transactions", tests, setup, teardown);
}
