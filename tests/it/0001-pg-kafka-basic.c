/*
 * 0001-pg-kafka-basic - the Postgres-to-Kafka path end to end on the sample legacy table.
 *
 * One siphon run streams public.oehdr (examples/legacy-erp/oehdr.sql) through
 * mappings/sales_order.yaml to the topic it.sales_order.v1 of a mock Kafka cluster; the test
 * commits inserts (CHAR-padded codes, numeric amounts, dates, NULL vs '' notes, non-ASCII
 * text), updates, deletes and a truncate, consumes the topic from the beginning and decodes every
 * message with Siphon's own mapping and Avro modules. For each event it checks the op, every
 * before/after field, the key, the source block (connector, db, schema, table, position between
 * the LSNs around the commit, txid, commit timestamp from pg_xact_commit_timestamp), the headers
 * (siphon.event_id equal to the envelope's, siphon.schema_fingerprint equal to the value's) and
 * the tombstone after a delete; across events: unique event ids, per-key order. Rows of a table
 * no mapping reads never appear.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

/* Entity fields, resolved from the mapping by source column. */
static const char *F_COMP, *F_ORDN, *F_CUST, *F_ODAT, *F_AMT, *F_STAT, *F_NOTE, *F_UPDT;

typedef struct txinfo {
    uint64_t lsn_before, lsn_after;
    long long xid;
    char commit_ts[64]; /* ISO-8601 UTC with microseconds, as the decoder renders it */
} txinfo_t;

typedef struct state {
    th_env_t *env;
    th_consumer_t *cons;
    th_msgs_t msgs;     /* everything consumed, in arrival order */
    int checked;        /* messages already checked by earlier tests */
} state_t;

/* Run statements in one transaction on the harness connection and note its txid, the LSNs
 * around it and its commit timestamp. */
static void run_txn(th_env_t *env, txinfo_t *ti, const char *sql)
{
    th_pg_t *pg = env->pg;
    assert_int_equal(th_pg_current_lsn(pg, &ti->lsn_before), 0);
    assert_int_equal(th_pg_exec(pg, "BEGIN"), 0);
    char *x = th_pg_value(pg, NULL, "SELECT txid_current()");
    assert_non_null(x);
    ti->xid = atoll(x);
    free(x);
    IT_CHECK(env, th_pg_exec(pg, "%s", sql) == 0, "statements failed: %s", sql);
    assert_int_equal(th_pg_exec(pg, "COMMIT"), 0);
    assert_int_equal(th_pg_current_lsn(pg, &ti->lsn_after), 0);
    char *ts = th_pg_value(pg, NULL,
                           "SELECT to_char(pg_xact_commit_timestamp('%lld'::text::xid) "
                           "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                           ti->xid);
    assert_non_null(ts);
    snprintf(ti->commit_ts, sizeof(ti->commit_ts), "%s", ts);
    free(ts);
}

/* Consume until `more` new messages have arrived (beyond st->checked). */
static void consume(state_t *st, int more)
{
    int want = st->checked + more;
    int got = th_env_consume(st->env, st->cons, &st->msgs, want, 30000);
    IT_CHECK(st->env, got >= want, "expected %d messages on %s, got %d within 30 s", want,
             st->env->topic, got);
}

static void expect_text(th_env_t *env, json_t *obj, const char *where, const char *field,
                        const char *want)
{
    char path[128], buf[256];
    snprintf(path, sizeof(path), "%s.%s", where, field);
    json_t *v = th_json_path(obj, path);
    if (!want) {
        IT_CHECK(env, v && json_is_null(v), "%s: expected null, got %s", path,
                 th_json_text(obj, path, buf, sizeof(buf)));
        return;
    }
    IT_CHECK(env, v && json_is_string(v) && strcmp(json_string_value(v), want) == 0,
             "%s: expected \"%s\", got %s", path, want, th_json_text(obj, path, buf, sizeof(buf)));
}

typedef struct row {
    const char *comp, *ordn, *cust, *odat, *amt, *stat, *note, *updt;
} row_t;

/* An entity image ("after" or "before") holds exactly this row, CHAR padding included. */
static void expect_row(th_env_t *env, json_t *val, const char *where, const row_t *r)
{
    IT_CHECK(env, json_is_object(th_json_path(val, where)), "%s is not a record", where);
    expect_text(env, val, where, F_COMP, r->comp);
    expect_text(env, val, where, F_ORDN, r->ordn);
    expect_text(env, val, where, F_CUST, r->cust);
    expect_text(env, val, where, F_ODAT, r->odat);
    expect_text(env, val, where, F_AMT, r->amt);
    expect_text(env, val, where, F_STAT, r->stat);
    expect_text(env, val, where, F_NOTE, r->note);
    expect_text(env, val, where, F_UPDT, r->updt);
}

/* The key record holds the row's key fields (and nothing else). */
static void expect_key(th_env_t *env, const th_event_t *ev, const char *comp, const char *ordn)
{
    IT_CHECK(env, ev->key && json_is_object(ev->key), "message has no key record");
    IT_CHECK(env, json_object_size(ev->key) == 2, "key has %zu fields, expected 2 (%s, %s)",
             json_object_size(ev->key), F_COMP, F_ORDN);
    char buf[64];
    json_t *c = json_object_get(ev->key, F_COMP), *o = json_object_get(ev->key, F_ORDN);
    IT_CHECK(env, json_is_string(c) && !strcmp(json_string_value(c), comp),
             "key.%s: expected \"%s\", got %s", F_COMP, comp,
             th_json_text(ev->key, F_COMP, buf, sizeof(buf)));
    IT_CHECK(env, json_is_string(o) && !strcmp(json_string_value(o), ordn),
             "key.%s: expected \"%s\", got %s", F_ORDN, ordn,
             th_json_text(ev->key, F_ORDN, buf, sizeof(buf)));
}

/* The source block matches the transaction; returns the event's position. */
static uint64_t expect_source(th_env_t *env, const th_event_t *ev, const txinfo_t *ti)
{
    json_t *v = ev->value;
    char buf[128];
    expect_text(env, v, "source", "connector", "it");
    expect_text(env, v, "source", "db", "postgres");
    expect_text(env, v, "source", "schema", "public");
    expect_text(env, v, "source", "table", "oehdr");
    uint64_t pos = 0;
    const char *postxt = th_json_text(v, "source.pos", buf, sizeof(buf));
    IT_CHECK(env, th_lsn_parse(postxt, &pos) == 0, "source.pos \"%s\" is not an LSN", postxt);
    char lb[32], la[32];
    th_lsn_format(ti->lsn_before, lb, sizeof(lb));
    th_lsn_format(ti->lsn_after, la, sizeof(la));
    IT_CHECK(env, pos > ti->lsn_before && pos <= ti->lsn_after + 1,
             "source.pos %s is not within the transaction's WAL (%s .. %s]", postxt, lb, la);
    json_t *txid = th_json_path(v, "source.txid");
    IT_CHECK(env, json_is_integer(txid) && json_integer_value(txid) == ti->xid,
             "source.txid: expected %lld, got %s", ti->xid,
             th_json_text(v, "source.txid", buf, sizeof(buf)));
    expect_text(env, v, "source", "commit_ts_us", ti->commit_ts);
    json_t *snap = th_json_path(v, "source.snapshot");
    IT_CHECK(env, json_is_false(snap), "source.snapshot should be false for streamed changes");
    return pos;
}

/* Headers: siphon.event_id equals the envelope's event_id (the decoder already checked
 * siphon.schema_fingerprint against the value). */
static void expect_headers(th_env_t *env, const th_event_t *ev)
{
    const th_header_t *h = th_msg_header(ev->msg, "siphon.event_id");
    IT_CHECK(env, h && h->value, "message p%d@%lld has no siphon.event_id header",
             ev->msg->partition, (long long)ev->msg->offset);
    IT_CHECK(env, ev->event_id && *ev->event_id, "envelope has no event_id");
    IT_CHECK(env, strlen(ev->event_id) == h->len && !memcmp(ev->event_id, h->value, h->len),
             "siphon.event_id header \"%.*s\" differs from the envelope's \"%s\"", (int)h->len,
             (const char *)h->value, ev->event_id);
    json_t *ts = th_json_path(ev->value, "ts_us");
    IT_CHECK(env, json_is_string(ts) && json_string_length(ts) >= 20, "ts_us missing");
}

/* Decode messages [st->checked, st->checked + n) into evs (in arrival order). */
static void decode_next(state_t *st, th_event_t *evs, int n)
{
    for (int i = 0; i < n; i++) {
        const th_msg_t *m = &st->msgs.v[st->checked + i];
        IT_CHECK(st->env, th_decode(st->env->dec, m, &evs[i]) == 0,
                 "message p%d@%lld could not be decoded (see above)", m->partition,
                 (long long)m->offset);
    }
    st->checked += n;
}

/* Find the event with this op and key order number among evs (messages of one step may arrive
 * in any order across partitions). */
static th_event_t *find(th_event_t *evs, int n, char op, const char *ordn, const char *comp)
{
    for (int i = 0; i < n; i++) {
        if (evs[i].op != op || !evs[i].key)
            continue;
        json_t *o = json_object_get(evs[i].key, F_ORDN);
        json_t *c = json_object_get(evs[i].key, F_COMP);
        if (json_is_string(o) && !strcmp(json_string_value(o), ordn) && json_is_string(c) &&
            !strcmp(json_string_value(c), comp))
            return &evs[i];
    }
    return NULL;
}

static void clear_all(th_event_t *evs, int n)
{
    for (int i = 0; i < n; i++)
        th_event_clear(&evs[i]);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    state_t *st = calloc(1, sizeof(*st));
    *state = st;
    th_log("setup: PostgreSQL 15, mock Kafka (3 brokers), oehdr, siphon run");
    st->env = th_env_new();
    if (!st->env)
        return -1;
    th_decoder_t *d = st->env->dec;
    F_COMP = th_decoder_field(d, "sales_order", "hdcomp");
    F_ORDN = th_decoder_field(d, "sales_order", "hdordn");
    F_CUST = th_decoder_field(d, "sales_order", "hdcust");
    F_ODAT = th_decoder_field(d, "sales_order", "hdodat");
    F_AMT = th_decoder_field(d, "sales_order", "hdamt");
    F_STAT = th_decoder_field(d, "sales_order", "hdstat");
    F_NOTE = th_decoder_field(d, "sales_order", "hdnote");
    F_UPDT = th_decoder_field(d, "sales_order", "hdupdt");
    if (!F_COMP || !F_ORDN || !F_CUST || !F_ODAT || !F_AMT || !F_STAT || !F_NOTE || !F_UPDT) {
        th_err("mappings/sales_order.yaml does not map every column of oehdr");
        return -1;
    }
    if (th_pg_exec(st->env->pg, "CREATE TABLE public.oeaudit (id int PRIMARY KEY, what text); "
                                "ALTER TABLE public.oehdr REPLICA IDENTITY DEFAULT") != 0)
        return -1;
    if (th_env_siphon_start(st->env) != 0 || th_env_wait_streaming(st->env, 30000) != 0) {
        th_env_dump_logs(st->env);
        return -1;
    }
    st->cons = th_consumer_new(st->env->kafka, st->env->topic);
    return st->cons ? 0 : -1;
}

static int group_teardown(void **state)
{
    state_t *st = *state;
    if (st) {
        th_msgs_free(&st->msgs);
        th_consumer_destroy(st->cons);
        th_env_destroy(st->env);
        free(st);
    }
    return 0;
}

/* ---- tests, in order ---- */

static txinfo_t tx_ins;
static uint64_t pos_ins;

static void test_insert(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("insert 3 rows in one transaction (plus one row of an unmapped table): 3 'c' events");
    run_txn(env, &tx_ins,
            "INSERT INTO public.oehdr VALUES "
            "('01', 'SO1', 'C1', '2024-02-29', 1234.5, 'O', NULL, "
            "   '2024-03-01 10:00:00.123456+02'),"
            "('01', 'SO2', 'C2', '1999-12-31', -0.01, 'O', '', '1999-12-31 23:59:59+00'),"
            "('02', 'SO1', 'CUST0003', '2038-01-19', 9999999999.99, 'H', 'Grüße, 東京 \"q\"', "
            "   '2038-01-19 03:14:08+00');"
            "INSERT INTO public.oeaudit VALUES (1, 'unmapped table: must not appear')");
    consume(st, 3);
    th_event_t evs[3];
    decode_next(st, evs, 3);
    const row_t r1 = {"01", "SO1       ", "C1      ", "2024-02-29", "1234.50", "O", NULL,
                      "2024-03-01T08:00:00.123456Z"};
    const row_t r2 = {"01", "SO2       ", "C2      ", "1999-12-31", "-0.01", "O", "",
                      "1999-12-31T23:59:59.000000Z"};
    const row_t r3 = {"02", "SO1       ", "CUST0003", "2038-01-19", "9999999999.99", "H",
                      "Grüße, 東京 \"q\"", "2038-01-19T03:14:08.000000Z"};
    const row_t *rows[] = {&r1, &r2, &r3};
    for (int i = 0; i < 3; i++) {
        th_log("  check 'c' event of (%s, %s): after, key, source, headers", rows[i]->comp,
               rows[i]->ordn);
        th_event_t *ev = find(evs, 3, 'c', rows[i]->ordn, rows[i]->comp);
        IT_CHECK(env, ev, "no 'c' event for (%s, '%s')", rows[i]->comp, rows[i]->ordn);
        expect_row(env, ev->value, "after", rows[i]);
        IT_CHECK(env, json_is_null(th_json_path(ev->value, "before")), "before of 'c' not null");
        expect_key(env, ev, rows[i]->comp, rows[i]->ordn);
        uint64_t pos = expect_source(env, ev, &tx_ins);
        if (i == 0)
            pos_ins = pos;
        IT_CHECK(env, pos == pos_ins, "events of one transaction carry different positions");
        expect_headers(env, ev);
    }
    th_log("  NULL note is null, '' note is \"\": checked above");
    clear_all(evs, 3);
}

static txinfo_t tx_upd, tx_del;

static void test_update_delete(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("update (01,SO1) then delete (02,SO1) in two transactions (REPLICA IDENTITY DEFAULT)");
    run_txn(env, &tx_upd,
            "UPDATE public.oehdr SET hdamt = 0, hdstat = 'C', hdnote = 'shipped', "
            "hdupdt = '2024-03-02 00:00:00+00' WHERE hdcomp = '01' AND hdordn = 'SO1'");
    run_txn(env, &tx_del, "DELETE FROM public.oehdr WHERE hdcomp = '02' AND hdordn = 'SO1'");
    consume(st, 3);
    th_event_t evs[3];
    int first = st->checked;
    decode_next(st, evs, 3);

    th_log("  check 'u': after holds the new row, before is null (old row not sent by DEFAULT)");
    th_event_t *u = find(evs, 3, 'u', "SO1       ", "01");
    IT_CHECK(env, u, "no 'u' event for (01, 'SO1')");
    const row_t r1 = {"01", "SO1       ", "C1      ", "2024-02-29", "0.00", "C", "shipped",
                      "2024-03-02T00:00:00.000000Z"};
    expect_row(env, u->value, "after", &r1);
    IT_CHECK(env, json_is_null(th_json_path(u->value, "before")),
             "before of 'u' should be null without REPLICA IDENTITY FULL");
    expect_key(env, u, "01", "SO1       ");
    uint64_t pu = expect_source(env, u, &tx_upd);
    IT_CHECK(env, pu > pos_ins, "update position not after the insert's");
    expect_headers(env, u);

    th_log("  check 'd': after null, key of the deleted row, then a tombstone with that key");
    th_event_t *d = find(evs, 3, 'd', "SO1       ", "02");
    IT_CHECK(env, d, "no 'd' event for (02, 'SO1')");
    IT_CHECK(env, json_is_null(th_json_path(d->value, "after")), "after of 'd' not null");
    expect_key(env, d, "02", "SO1       ");
    uint64_t pd = expect_source(env, d, &tx_del);
    IT_CHECK(env, pd > pu, "delete position not after the update's");
    expect_headers(env, d);
    th_event_t *tomb = NULL;
    for (int i = 0; i < 3; i++)
        if (!evs[i].value)
            tomb = &evs[i];
    IT_CHECK(env, tomb, "no tombstone after the delete");
    IT_CHECK(env, tomb->msg->klen == d->msg->klen && !memcmp(tomb->msg->key, d->msg->key,
                                                             d->msg->klen),
             "the tombstone's key differs from the delete's");
    IT_CHECK(env, tomb->msg->partition == d->msg->partition &&
                      tomb->msg->offset > d->msg->offset,
             "the tombstone (p%d@%lld) does not follow the delete (p%d@%lld)",
             tomb->msg->partition, (long long)tomb->msg->offset, d->msg->partition,
             (long long)d->msg->offset);
    const th_header_t *th = th_msg_header(tomb->msg, "siphon.event_id");
    IT_CHECK(env, th && th->len == strlen(d->event_id) && !memcmp(th->value, d->event_id, th->len),
             "the tombstone's siphon.event_id header should be the delete's (%s)", d->event_id);
    (void)first;
    clear_all(evs, 3);
}

static txinfo_t tx_full;

static void test_replica_identity_full(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("REPLICA IDENTITY FULL: update and delete carry the complete old row in before");
    assert_int_equal(th_pg_exec(env->pg, "ALTER TABLE public.oehdr REPLICA IDENTITY FULL"), 0);
    run_txn(env, &tx_full,
            "UPDATE public.oehdr SET hdnote = NULL, hdamt = 12.3 "
            "WHERE hdcomp = '01' AND hdordn = 'SO2';"
            "DELETE FROM public.oehdr WHERE hdcomp = '01' AND hdordn = 'SO1'");
    consume(st, 3); /* u, d, tombstone */
    th_event_t evs[3];
    decode_next(st, evs, 3);
    th_event_t *u = find(evs, 3, 'u', "SO2       ", "01");
    IT_CHECK(env, u, "no 'u' event for (01, 'SO2')");
    const row_t before = {"01", "SO2       ", "C2      ", "1999-12-31", "-0.01", "O", "",
                          "1999-12-31T23:59:59.000000Z"};
    const row_t after = {"01", "SO2       ", "C2      ", "1999-12-31", "12.30", "O", NULL,
                         "1999-12-31T23:59:59.000000Z"};
    th_log("  check 'u' before (note '') and after (note NULL)");
    expect_row(env, u->value, "before", &before);
    expect_row(env, u->value, "after", &after);
    uint64_t pu = expect_source(env, u, &tx_full);
    th_event_t *d = find(evs, 3, 'd', "SO1       ", "01");
    IT_CHECK(env, d, "no 'd' event for (01, 'SO1')");
    const row_t gone = {"01", "SO1       ", "C1      ", "2024-02-29", "0.00", "C", "shipped",
                        "2024-03-02T00:00:00.000000Z"};
    th_log("  check 'd' before holds the deleted row");
    expect_row(env, d->value, "before", &gone);
    uint64_t pd = expect_source(env, d, &tx_full);
    IT_CHECK(env, pu == pd, "two changes of one transaction carry different positions");
    IT_CHECK(env, strcmp(u->event_id, d->event_id) != 0,
             "two changes of one transaction share event_id %s", u->event_id);
    clear_all(evs, 3);
}

static void test_key_change(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("an update that changes the key (REPLICA IDENTITY DEFAULT): 'd' of the old key, its "
           "tombstone, 'c' of the new key, with distinct event ids");
    assert_int_equal(th_pg_exec(env->pg, "ALTER TABLE public.oehdr REPLICA IDENTITY DEFAULT"), 0);
    txinfo_t tx;
    run_txn(env, &tx, "UPDATE public.oehdr SET hdordn = 'SO2B' "
                      "WHERE hdcomp = '01' AND hdordn = 'SO2'");
    consume(st, 3);
    th_event_t evs[3];
    decode_next(st, evs, 3);
    th_event_t *d = find(evs, 3, 'd', "SO2       ", "01");
    th_event_t *c = find(evs, 3, 'c', "SO2B      ", "01");
    IT_CHECK(env, d, "no 'd' event for the old key (01, 'SO2')");
    IT_CHECK(env, c, "no 'c' event for the new key (01, 'SO2B')");
    th_event_t *tomb = NULL;
    for (int i = 0; i < 3; i++)
        if (!evs[i].value)
            tomb = &evs[i];
    IT_CHECK(env, tomb && tomb->msg->klen == d->msg->klen &&
                      !memcmp(tomb->msg->key, d->msg->key, d->msg->klen),
             "no tombstone for the old key");
    const row_t moved = {"01", "SO2B      ", "C2      ", "1999-12-31", "12.30", "O", NULL,
                         "1999-12-31T23:59:59.000000Z"};
    expect_row(env, c->value, "after", &moved);
    IT_CHECK(env, json_is_null(th_json_path(d->value, "after")), "after of 'd' not null");
    uint64_t pd = expect_source(env, d, &tx), pc = expect_source(env, c, &tx);
    IT_CHECK(env, pd == pc, "one update, two positions");
    expect_headers(env, d);
    expect_headers(env, c);
    IT_CHECK(env, strcmp(d->event_id, c->event_id) != 0,
             "the 'd' and the 'c' made of one key-changing update share event_id %s: a consumer "
             "de-duplicating on event_id would drop one of them", d->event_id);
    clear_all(evs, 3);
}

static void test_truncate(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("truncate oehdr: one 't' event with neither before nor after");
    txinfo_t tx;
    run_txn(env, &tx, "INSERT INTO public.oeaudit VALUES (2, 'still unmapped'); "
                      "TRUNCATE public.oehdr");
    consume(st, 1);
    th_event_t ev;
    decode_next(st, &ev, 1);
    IT_CHECK(env, ev.op == 't', "expected op 't', got '%c'", ev.op ? ev.op : '?');
    IT_CHECK(env, json_is_null(th_json_path(ev.value, "before")) &&
                      json_is_null(th_json_path(ev.value, "after")),
             "a truncate event has neither before nor after");
    expect_source(env, &ev, &tx);
    expect_headers(env, &ev);
    th_event_clear(&ev);
}

static void test_whole_stream(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("unmapped-only transaction, then: nothing more arrives (oeaudit rows never do)");
    assert_int_equal(th_pg_exec(env->pg, "INSERT INTO public.oeaudit "
                                         "SELECT g, 'bulk' FROM generate_series(3, 100) g"),
                     0);
    int n = th_consumer_poll(st->cons, &st->msgs, 0, 2000);
    IT_CHECK(env, n == st->checked, "%d unexpected messages arrived", n - st->checked);

    th_log("across all %d messages: event ids unique, per-key order c < u < d < tombstone", n);
    th_event_t *evs = calloc((size_t)n, sizeof(*evs));
    for (int i = 0; i < n; i++)
        IT_CHECK(env, th_decode(env->dec, &st->msgs.v[i], &evs[i]) == 0, "decode %d", i);
    for (int i = 0; i < n; i++) {
        if (!evs[i].value)
            continue;
        for (int j = i + 1; j < n; j++)
            if (evs[j].value)
                IT_CHECK(env, strcmp(evs[i].event_id, evs[j].event_id) != 0,
                         "event_id %s appears twice", evs[i].event_id);
    }
    /* per key (same key bytes): same partition, offsets in the order of the operations */
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            const th_msg_t *a = &st->msgs.v[i], *b = &st->msgs.v[j];
            if (!a->key || !b->key || a->klen != b->klen || memcmp(a->key, b->key, a->klen))
                continue;
            IT_CHECK(env, a->partition == b->partition,
                     "one key in partitions %d and %d", a->partition, b->partition);
            IT_CHECK(env, a->offset < b->offset, "same-key messages out of order");
        }
    }
    const char *ops_so1 = "cud"; /* (01,SO1): insert, update, delete (+ tombstone) */
    int k = 0;
    for (int i = 0; i < n; i++) {
        th_event_t *ev = &evs[i];
        if (!ev->value || !ev->key)
            continue;
        json_t *o = json_object_get(ev->key, F_ORDN), *c = json_object_get(ev->key, F_COMP);
        if (strcmp(json_string_value(o), "SO1       ") || strcmp(json_string_value(c), "01"))
            continue;
        IT_CHECK(env, ops_so1[k] == ev->op, "(01,SO1): event %d is '%c', expected '%c'", k,
                 ev->op, ops_so1[k]);
        k++;
    }
    IT_CHECK(env, k == 3, "(01,SO1) had %d events, expected 3", k);
    for (int i = 0; i < n; i++)
        th_event_clear(&evs[i]);
    free(evs);

    th_log("SIGTERM: siphon drains and exits 0");
    int code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_update_delete),
        cmocka_unit_test(test_replica_identity_full),
        cmocka_unit_test(test_key_change),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_whole_stream),
    };
    return cmocka_run_group_tests_name("0001-pg-kafka-basic", tests, group_setup,
                                       group_teardown);
}
