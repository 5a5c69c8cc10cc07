/*
 * 0101-mysql-kafka - the MariaDB-to-Kafka path end to end: `siphon run` with a mysql source
 * streams public.oehdr of a throwaway MariaDB 10.11 (database `public`, so the repository's
 * mappings/sales_order.yaml reads it unchanged) to it.sales_order.v1 of a mock Kafka cluster.
 *
 * Checks, for inserts (several rows and an unmapped table in one transaction), an update with
 * its full before image (binlog_row_image=FULL), a delete and its tombstone, a key change: every
 * field of every event, the key, the source block (schema/table, pos = the transaction's
 * MariaDB GTID, txid = its sequence number, commit time within the transaction's second),
 * event_id = "<GTID>:<index>" in header and envelope. Then a binlog rotation mid-stream, the
 * offsets file reaching @@gtid_binlog_pos, and a clean stop and restart that resumes from the
 * stored GTID: changes made while siphon was down arrive, nothing before them again.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "it_check.h"

static const char *F_COMP, *F_ORDN, *F_CUST, *F_ODAT, *F_AMT, *F_STAT, *F_NOTE, *F_UPDT;

typedef struct state {
    th_my_t *my;
    th_env_t *env;
    th_consumer_t *cons;
    th_msgs_t msgs;
    int checked;
} state_t;

typedef struct txinfo {
    char gtid[64];   /* @@gtid_binlog_pos after the transaction (one domain: its own GTID) */
    long long seq;
    long long t0, t1; /* UNIX_TIMESTAMP() before and after it */
} txinfo_t;

static void run_txn(state_t *st, txinfo_t *ti, const char *sql)
{
    char *t = th_my_value(st->my, NULL, "SELECT UNIX_TIMESTAMP()");
    ti->t0 = t ? atoll(t) : 0;
    free(t);
    IT_CHECK(st->env, th_my_exec(st->my, "BEGIN; %s; COMMIT", sql) == 0, "transaction: %s", sql);
    char *g = th_my_value(st->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(st->env, g && strlen(g) < sizeof(ti->gtid), "no GTID position");
    snprintf(ti->gtid, sizeof(ti->gtid), "%s", g);
    const char *dash = strrchr(g, '-');
    ti->seq = dash ? atoll(dash + 1) : -1;
    free(g);
    t = th_my_value(st->my, NULL, "SELECT UNIX_TIMESTAMP()");
    ti->t1 = t ? atoll(t) : 0;
    free(t);
}

static void consume(state_t *st, int more)
{
    int want = st->checked + more;
    int got = th_env_consume(st->env, st->cons, &st->msgs, want, 30000);
    IT_CHECK(st->env, got >= want, "expected %d messages on %s, got %d within 30 s", want,
             st->env->topic, got);
}

static void decode_next(state_t *st, th_event_t *evs, int n)
{
    for (int i = 0; i < n; i++) {
        const th_msg_t *m = &st->msgs.v[st->checked + i];
        IT_CHECK(st->env, th_decode(st->env->dec, m, &evs[i]) == 0,
                 "message p%d@%lld could not be decoded", m->partition, (long long)m->offset);
    }
    st->checked += n;
}

static th_event_t *find(th_event_t *evs, int n, char op, const char *comp, const char *ordn)
{
    for (int i = 0; i < n; i++) {
        if (evs[i].op != op || !evs[i].key)
            continue;
        json_t *o = json_object_get(evs[i].key, F_ORDN), *c = json_object_get(evs[i].key, F_COMP);
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

/* "2024-03-01T08:00:00.000000Z" -> seconds since the epoch, or -1 */
static long long iso_seconds(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

/* Source block, event id and headers of an event of transaction ti. */
static void expect_source(th_env_t *env, const th_event_t *ev, const txinfo_t *ti)
{
    json_t *v = ev->value;
    char buf[128];
    expect_text(env, v, "source", "connector", "it");
    expect_text(env, v, "source", "db", "public");
    expect_text(env, v, "source", "schema", "public");
    expect_text(env, v, "source", "table", "oehdr");
    expect_text(env, v, "source", "pos", ti->gtid);
    json_t *txid = th_json_path(v, "source.txid");
    IT_CHECK(env, json_is_integer(txid) && json_integer_value(txid) == ti->seq,
             "source.txid: expected %lld, got %s", ti->seq,
             th_json_text(v, "source.txid", buf, sizeof(buf)));
    long long ts = iso_seconds(th_json_text(v, "source.commit_ts_us", buf, sizeof(buf)));
    IT_CHECK(env, ts >= ti->t0 && ts <= ti->t1,
             "source.commit_ts_us %s is not within the transaction's seconds [%lld, %lld]", buf,
             ti->t0, ti->t1);
    IT_CHECK(env, json_is_false(th_json_path(v, "source.snapshot")), "snapshot should be false");
    IT_CHECK(env, ev->event_id && strncmp(ev->event_id, ti->gtid, strlen(ti->gtid)) == 0 &&
                      ev->event_id[strlen(ti->gtid)] == ':',
             "event_id %s should be <GTID %s>:<index>", ev->event_id ? ev->event_id : "-",
             ti->gtid);
    const th_header_t *h = th_msg_header(ev->msg, "siphon.event_id");
    IT_CHECK(env, h && h->value && strlen(ev->event_id) == h->len &&
                      !memcmp(ev->event_id, h->value, h->len),
             "siphon.event_id header differs from the envelope's");
}

static int group_setup(void **state)
{
    state_t *st = calloc(1, sizeof(*st));
    *state = st;
    th_log("setup: MariaDB 10.11, mock Kafka (3 brokers), public.oehdr, siphon run");
    st->my = th_my_start(NULL);
    if (!st->my)
        return -1;
    if (th_my_exec(st->my, "%s; CREATE TABLE public.oeaudit (id int PRIMARY KEY, what text)",
                   th_my_oehdr_ddl()) != 0)
        return -1;
    th_my_conf_t conf = {.server_id = 4301, .heartbeat_ms = 1000};
    st->env = th_my_env_new(st->my, &conf);
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
    if (!F_COMP || !F_ORDN || !F_CUST || !F_ODAT || !F_AMT || !F_STAT || !F_NOTE || !F_UPDT)
        return th_err("mappings/sales_order.yaml does not map every column of oehdr");
    if (th_env_siphon_start(st->env) != 0 || th_my_env_wait_streaming(st->env, st->my, 30000)) {
        th_env_dump_logs(st->env);
        return -1;
    }
    st->cons = th_consumer_new(st->env->kafka, st->env->topic);
    return st->cons ? 0 : -1;
}

static int group_teardown(void **state)
{
    state_t *st = *state;
    if (!st)
        return 0;
    if (st->env && st->env->siphon)
        th_env_siphon_stop(st->env, SIGTERM, 20000);
    th_msgs_free(&st->msgs);
    th_consumer_destroy(st->cons);
    th_env_destroy(st->env);
    th_my_destroy(st->my);
    free(st);
    return 0;
}

static txinfo_t tx_ins;

static void test_insert(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    th_log("insert 3 rows in one transaction (and a row of an unmapped table): 3 'c' events");
    run_txn(st, &tx_ins,
            "INSERT INTO public.oehdr VALUES "
            "('01', 'SO1', 'C1', '2024-02-29', 1234.5, 'O', NULL, '2024-03-01 08:00:00.123456'),"
            "('01', 'SO2', 'C2', '1999-12-31', -0.01, 'O', '', '1999-12-31 23:59:59'),"
            "('02', 'SO1', 'CUST0003', '2038-01-19', 9999999999.99, 'H', 'Grüße, 東京 \"q\"', "
            "'2038-01-19 03:14:07'); "
            "INSERT INTO public.oeaudit VALUES (1, 'unmapped table: must not appear')");
    consume(st, 3);
    th_event_t evs[3];
    decode_next(st, evs, 3);
    const row_t r1 = {"01", "SO1", "C1", "2024-02-29", "1234.50", "O", NULL,
                      "2024-03-01T08:00:00.123456Z"};
    const row_t r2 = {"01", "SO2", "C2", "1999-12-31", "-0.01", "O", "",
                      "1999-12-31T23:59:59.000000Z"};
    const row_t r3 = {"02", "SO1", "CUST0003", "2038-01-19", "9999999999.99", "H",
                      "Grüße, 東京 \"q\"", "2038-01-19T03:14:07.000000Z"};
    const row_t *rows[] = {&r1, &r2, &r3};
    char ids[3][96];
    for (int i = 0; i < 3; i++) {
        th_event_t *ev = find(evs, 3, 'c', rows[i]->comp, rows[i]->ordn);
        IT_CHECK(env, ev, "no 'c' event for (%s, %s)", rows[i]->comp, rows[i]->ordn);
        expect_row(env, ev->value, "after", rows[i]);
        IT_CHECK(env, json_is_null(th_json_path(ev->value, "before")), "before of 'c' not null");
        expect_source(env, ev, &tx_ins);
        snprintf(ids[i], sizeof(ids[i]), "%s", ev->event_id);
    }
    IT_CHECK(env, strcmp(ids[0], ids[1]) && strcmp(ids[1], ids[2]) && strcmp(ids[0], ids[2]),
             "event ids of one transaction must differ");
    clear_all(evs, 3);
}

static void test_update_delete(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    txinfo_t tu, td;
    th_log("update (01,SO1), delete (02,SO1): full before images, a tombstone");
    run_txn(st, &tu, "UPDATE public.oehdr SET hdamt = 0, hdstat = 'C', hdnote = 'shipped', "
                     "hdupdt = '2024-03-02 00:00:00' WHERE hdcomp = '01' AND hdordn = 'SO1'");
    run_txn(st, &td, "DELETE FROM public.oehdr WHERE hdcomp = '02' AND hdordn = 'SO1'");
    consume(st, 3);
    th_event_t evs[3];
    decode_next(st, evs, 3);
    th_event_t *u = find(evs, 3, 'u', "01", "SO1");
    IT_CHECK(env, u, "no 'u' event");
    const row_t old1 = {"01", "SO1", "C1", "2024-02-29", "1234.50", "O", NULL,
                        "2024-03-01T08:00:00.123456Z"};
    const row_t new1 = {"01", "SO1", "C1", "2024-02-29", "0.00", "C", "shipped",
                        "2024-03-02T00:00:00.000000Z"};
    expect_row(env, u->value, "before", &old1);
    expect_row(env, u->value, "after", &new1);
    expect_source(env, u, &tu);
    th_event_t *d = find(evs, 3, 'd', "02", "SO1");
    IT_CHECK(env, d, "no 'd' event");
    const row_t old3 = {"02", "SO1", "CUST0003", "2038-01-19", "9999999999.99", "H",
                        "Grüße, 東京 \"q\"", "2038-01-19T03:14:07.000000Z"};
    expect_row(env, d->value, "before", &old3);
    IT_CHECK(env, json_is_null(th_json_path(d->value, "after")), "after of 'd' not null");
    expect_source(env, d, &td);
    int tomb = 0;
    for (int i = 0; i < 3; i++)
        tomb += !evs[i].value && evs[i].msg->klen == d->msg->klen &&
                !memcmp(evs[i].msg->key, d->msg->key, d->msg->klen);
    IT_CHECK(env, tomb == 1, "expected one tombstone with the deleted key");
    clear_all(evs, 3);
}

static void test_key_change(void **state)
{
    state_t *st = *state;
    txinfo_t tk;
    th_log("a primary key change: 'd' of the old key, its tombstone, 'c' of the new key");
    run_txn(st, &tk, "UPDATE public.oehdr SET hdordn = 'SO9' WHERE hdcomp = '01' AND "
                     "hdordn = 'SO2'");
    consume(st, 3);
    th_event_t evs[3];
    decode_next(st, evs, 3);
    th_event_t *d = find(evs, 3, 'd', "01", "SO2"), *c = find(evs, 3, 'c', "01", "SO9");
    IT_CHECK(st->env, d && c, "expected 'd' of (01,SO2) and 'c' of (01,SO9)");
    IT_CHECK(st->env, strcmp(d->event_id, c->event_id) != 0, "the two events share an id");
    expect_source(st->env, c, &tk);
    clear_all(evs, 3);
}

static void test_rotation(void **state)
{
    state_t *st = *state;
    txinfo_t t1, t2, t3;
    th_log("FLUSH BINARY LOGS between transactions; an unmapped-only transaction in between");
    run_txn(st, &t1, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust) VALUES ('03','R1','X')");
    IT_CHECK(st->env, th_my_exec(st->my, "FLUSH BINARY LOGS") == 0, "flush");
    run_txn(st, &t2, "INSERT INTO public.oeaudit VALUES (2, 'unmapped')");
    IT_CHECK(st->env, th_my_exec(st->my, "FLUSH BINARY LOGS") == 0, "flush");
    run_txn(st, &t3, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust) VALUES ('03','R2','X')");
    consume(st, 2);
    th_event_t evs[2];
    decode_next(st, evs, 2);
    th_event_t *a = find(evs, 2, 'c', "03", "R1"), *b = find(evs, 2, 'c', "03", "R2");
    IT_CHECK(st->env, a && b, "expected the inserts before and after the rotations");
    expect_source(st->env, a, &t1);
    expect_source(st->env, b, &t3);
    clear_all(evs, 2);
}

/* The offsets file holds the GTID position once everything is delivered; a clean stop and a
 * restart resume from it. */
static void test_offsets_and_restart(void **state)
{
    state_t *st = *state;
    th_env_t *env = st->env;
    char *want = th_my_value(st->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    th_log("offsets file reaches %s; stop, write while down, restart", want);
    int64_t until = th_now_ms() + 15000;
    char *pos = NULL;
    while (th_now_ms() < until) {
        char *txt = th_read_file(env->offsets_path, NULL, 1);
        json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
        free(pos);
        pos = j && json_is_string(json_object_get(j, "position"))
                  ? strdup(json_string_value(json_object_get(j, "position")))
                  : NULL;
        IT_CHECK(env, !j || strcmp(json_string_value(json_object_get(j, "source_type")),
                                   "mysql") == 0, "source_type in the offsets file");
        json_decref(j);
        free(txt);
        if (pos && strcmp(pos, want) == 0)
            break;
        th_sleep_ms(100);
    }
    IT_CHECK(env, pos && strcmp(pos, want) == 0, "offsets position %s, expected %s",
             pos ? pos : "(none)", want);
    free(pos);
    free(want);
    int code = th_env_siphon_stop(env, SIGTERM, 20000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);

    txinfo_t t1;
    run_txn(st, &t1, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust) VALUES ('04','D1','X'),"
                     "('04','D2','Y')");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "restart");
    IT_CHECK(env, th_my_env_wait_streaming(env, st->my, 30000) == 0, "streaming again");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "resuming from stored position", 5000),
             "the restart should resume from the offsets file");
    consume(st, 2);
    th_event_t evs[2];
    decode_next(st, evs, 2);
    IT_CHECK(env, find(evs, 2, 'c', "04", "D1") && find(evs, 2, 'c', "04", "D2"),
             "the rows written while siphon was down should arrive");
    for (int i = 0; i < 2; i++)
        expect_source(env, &evs[i], &t1);
    clear_all(evs, 2);
    /* nothing from before the stop comes again */
    int n = th_consumer_poll(st->cons, &st->msgs, st->checked + 1, 2000);
    IT_CHECK(env, n == st->checked, "%d unexpected messages after the restart", n - st->checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_update_delete),
        cmocka_unit_test(test_key_change),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_offsets_and_restart),
    };
    return cmocka_run_group_tests_name("0101-mysql-kafka", tests, group_setup, group_teardown);
}
