/*
 * 0107-mysql-snapshot-resume - a MySQL snapshot killed (SIGKILL) halfway resumes at its last
 * acknowledged chunk, and nothing is lost.
 *
 * public.oehdr holds 80,000 orders; siphon snapshots it in chunks of 1000 rows. As soon as
 * the offsets file holds snapshot progress past 20,000 rows, siphon is killed. While it is
 * down, orders are updated (before and after the stored last key), deleted and inserted. The
 * second run must:
 *  - say it resumes, and read only chunks numbered from the stored chunk count on (it does not
 *    start over: its 'r' events are at most the rows after the stored key, plus what the first
 *    run had read but not acknowledged is not read again from the start);
 *  - leave every order in its current state: replaying every event in topic order (r/c/u put
 *    the row, d removes it) gives exactly the table, hdamt included;
 *  - end with a plain GTID as the stored position once the snapshot is done.
 *
 * Then snapshot: when_needed on a server whose binlog no longer holds the stored position
 * (PURGE BINARY LOGS after it): instead of stopping, siphon says so, takes a new snapshot and
 * streams from its position. And snapshot: initial_only: the rows, then siphon exits 0 with
 * the snapshot's plain position stored, and a second run with it exits at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#define ROWS 80000
#define STR(x) #x
#define XSTR(x) STR(x)

/* The stored position's text (in the offsets file), or NULL. Caller frees. */
static char *stored_position(const char *offsets)
{
    char *text = th_read_file(offsets, NULL, 1);
    if (!text)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    free(text);
    const char *p = j ? json_string_value(json_object_get(j, "position")) : NULL;
    char *out = p ? strdup(p) : NULL;
    json_decref(j);
    return out;
}

/* "... public.oehdr=0,<chunks>,<rows>,..." -> chunks and rows; 0 when there is no entry. */
static int progress_of(const char *pos, long *chunks, long *rows)
{
    const char *e = pos ? strstr(pos, " public.oehdr=0,") : NULL;
    return e && sscanf(e + 16, "%ld,%ld", chunks, rows) == 2;
}

/* A MariaDB with public.oehdr and the rows (and whatever else) sql writes. */
static th_my_t *server_with(const char *sql)
{
    th_my_t *my = th_my_start(NULL);
    assert_non_null(my);
    IT_CHECK(NULL, th_my_exec(my, "%s", th_my_oehdr_ddl()) == 0, "DDL");
    IT_CHECK(NULL, th_my_exec(my, "%s", sql) == 0, "rows");
    return my;
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    th_my_t *my = server_with("INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                              "SELECT '01', CONCAT('S', LPAD(seq, 7, '0')), 'C0000001', 0 "
                              "FROM public.seq_1_to_" XSTR(ROWS));
    th_my_conf_t conf = {.server_id = 4307, .heartbeat_ms = 1000, .snapshot = "initial",
                         .snapshot_chunk_rows = 1000, .flush_interval_ms = 20};
    th_env_t *env = th_my_env_new(my, &conf);
    IT_CHECK(NULL, env != NULL, "env");

    th_log("first run: killed once the stored progress passes 20,000 rows");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon start");
    long chunks = 0, rows = 0;
    char *pos = NULL;
    for (int64_t until = th_now_ms() + 25000; th_now_ms() < until; th_sleep_ms(5)) {
        free(pos);
        pos = stored_position(env->offsets_path);
        if (progress_of(pos, &chunks, &rows) && rows >= 20000)
            break;
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited during the snapshot");
    }
    th_proc_signal(env->siphon, SIGKILL);
    th_env_siphon_stop(env, SIGKILL, 5000);
    free(pos);
    pos = stored_position(env->offsets_path);
    IT_CHECK(env, progress_of(pos, &chunks, &rows) && rows > 0 && rows < ROWS,
             "the stored position holds no half-done snapshot: %s", pos ? pos : "(none)");
    th_log("  killed; stored: %.120s (%ld chunks, %ld rows)", pos, chunks, rows);
    IT_CHECK(env, rows == chunks * 1000, "stored rows %ld for %ld chunks of 1000", rows, chunks);

    th_log("while siphon is down: updates before and after the stored key, deletes, inserts");
    IT_CHECK(env, th_my_exec(my,
                             "UPDATE public.oehdr SET hdamt = 7 WHERE hdordn IN ('S0000005', "
                             "'S0070000'); DELETE FROM public.oehdr WHERE hdordn IN ('S0000010', "
                             "'S0075000'); INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, "
                             "hdamt) VALUES ('01', 'N0000001', 'C0000002', 3)") == 0,
             "changes while down");

    th_consumer_t *cons = th_consumer_new(env->kafka, env->topic);
    th_msgs_t msgs = {0};
    int first_run = th_my_drain(cons, &msgs, 1000);

    th_log("second run: resumes the snapshot, then streams");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon restart");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "resuming the interrupted snapshot", 15000),
             "the second run did not say it resumes the snapshot");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "snapshot done", 25000),
             "the resumed snapshot did not end within 25 s");
    char *gtid = th_my_value(my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    int64_t until = th_now_ms() + 15000;
    char *final = NULL;
    do {
        free(final);
        final = stored_position(env->offsets_path);
        if (final && gtid && !strcmp(final, gtid))
            break;
        th_sleep_ms(50);
    } while (th_now_ms() < until);
    IT_CHECK(env, final && gtid && !strcmp(final, gtid),
             "the stored position is \"%s\", not the plain GTID %s", final ? final : "(none)",
             gtid ? gtid : "?");
    th_my_drain(cons, &msgs, 1500);

    th_my_order_ev_t *evs = NULL;
    int nev = 0;
    IT_CHECK(env, th_my_order_events(env->dec, &msgs, 0, &evs, &nev) == 0, "decode");
    int nev1 = 0;
    th_my_order_ev_t *evs1 = NULL;
    th_msgs_t first = msgs;
    first.n = first_run;
    IT_CHECK(env, th_my_order_events(env->dec, &first, 0, &evs1, &nev1) == 0, "decode");
    free(evs1);
    long r2 = 0, minchunk = -1;
    for (int i = nev1; i < nev; i++) {
        if (evs[i].op != 'r')
            continue;
        r2++;
        long ch = atol(evs[i].event_id + strlen("snap:public.oehdr:"));
        if (minchunk < 0 || ch < minchunk)
            minchunk = ch;
    }
    th_log("  first run %d events, second run %d events (%ld 'r', first chunk %ld)", nev1,
           nev - nev1, r2, minchunk);
    IT_CHECK(env, minchunk == chunks, "the second run's first chunk is %ld, the stored progress "
                                      "said %ld chunks were done", minchunk, chunks);
    IT_CHECK(env, r2 <= ROWS - rows + 1, "the second run read %ld rows, more than the %ld after "
                                         "the stored key: it started over", r2, ROWS - rows + 1);

    th_log("replaying every event gives exactly the table");
    /* index: S keys 1..ROWS, N0000001 at ROWS + 1; amount -1 = absent */
    long *amt = malloc(sizeof(long) * (ROWS + 2));
    for (int k = 0; k < ROWS + 2; k++)
        amt[k] = -1;
    for (int i = 0; i < nev; i++) {
        int k = evs[i].order[0] == 'S' ? atoi(evs[i].order + 1) : ROWS + 1;
        IT_CHECK(env, k >= 1 && k <= ROWS + 1, "unknown order %s", evs[i].order);
        amt[k] = evs[i].op == 'd' ? -1 : evs[i].amount;
    }
    long present = 0;
    for (int k = 1; k <= ROWS + 1; k++) {
        long want = k == 5 || k == 70000 ? 7 : k == 10 || k == 75000 ? -1 : k == ROWS + 1 ? 3 : 0;
        IT_CHECK(env, amt[k] == want, "order %s%07d: replayed hdamt %ld, the table %ld",
                 k == ROWS + 1 ? "N" : "S", k == ROWS + 1 ? 1 : k, amt[k], want);
        present += amt[k] >= 0;
    }
    char *count = th_my_value(my, NULL, "SELECT COUNT(*) FROM public.oehdr");
    IT_CHECK(env, count && atol(count) == present, "%ld orders replayed, %s in the table",
             present, count ? count : "?");
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 20000) == 0, "siphon did not exit 0");

    free(count);
    free(amt);
    free(evs);
    free(gtid);
    free(final);
    free(pos);
    th_msgs_free(&msgs);
    th_consumer_destroy(cons);
    th_env_destroy(env);
    th_my_destroy(my);
}

static int by_order(const void *a, const void *b)
{
    return strcmp(((const th_my_order_ev_t *)a)->order, ((const th_my_order_ev_t *)b)->order);
}

static void test_when_needed(void **state)
{
    (void)state;
    th_my_t *my = server_with("INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                              "VALUES ('01', 'S0000001', 'C1', 1), ('01', 'S0000002', 'C1', 2), "
                              "('01', 'S0000003', 'C1', 3); FLUSH BINARY LOGS; FLUSH BINARY LOGS");
    /* MariaDB keeps a binlog until its binlog checkpoint has moved on: purge until it is gone */
    char *oldest = NULL;
    for (int64_t until = th_now_ms() + 10000; th_now_ms() < until; th_sleep_ms(100)) {
        free(oldest);
        th_my_exec(my, "PURGE BINARY LOGS TO 'binlog.000003'");
        oldest = th_my_value(my, NULL, "SHOW BINARY LOGS");
        if (oldest && !strcmp(oldest, "binlog.000003"))
            break;
    }
    IT_CHECK(NULL, oldest && !strcmp(oldest, "binlog.000003"),
             "the binlog of 0-1-1 was not purged (oldest: %s)", oldest ? oldest : "?");
    free(oldest);
    th_my_conf_t conf = {.server_id = 4317, .heartbeat_ms = 1000, .snapshot = "when_needed"};
    th_env_t *env = th_my_env_new(my, &conf);
    IT_CHECK(NULL, env != NULL, "env");
    IT_CHECK(env, th_write_file(env->offsets_path,
                                "{\"version\": 1, \"connector\": \"it\", \"source_type\": "
                                "\"mysql\", \"position\": \"0-1-1\"}\n") == 0,
             "offsets");
    th_log("stored position 0-1-1, purged from the binlog: a new snapshot, then the stream");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon start");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "no longer available", 15000),
             "siphon did not say the stored position is gone");
    IT_CHECK(env, th_proc_wait_log(env->siphon, "snapshot done", 15000), "no snapshot");
    IT_CHECK(env, th_my_env_wait_streaming(env, my, 15000) == 0, "not streaming");
    IT_CHECK(env, th_my_exec(my, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                 "VALUES ('01', 'S0000004', 'C1', 4)") == 0,
             "insert");
    th_consumer_t *cons = th_consumer_new(env->kafka, env->topic);
    th_msgs_t msgs = {0};
    th_consumer_poll(cons, &msgs, 4, 15000);
    th_my_order_ev_t *evs = NULL;
    int nev = 0;
    IT_CHECK(env, th_my_order_events(env->dec, &msgs, 0, &evs, &nev) == 0 && nev == 4,
             "%d events, expected 4", nev);
    qsort(evs, (size_t)nev, sizeof(*evs), by_order); /* partitions interleave */
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof(want), "S%07d", i + 1);
        IT_CHECK(env, evs[i].op == (i < 3 ? 'r' : 'c') && !strcmp(evs[i].order, want) &&
                          evs[i].amount == i + 1,
                 "event %d: '%c' %s %ld", i, evs[i].op, evs[i].order, evs[i].amount);
    }
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 20000) == 0, "siphon did not exit 0");
    free(evs);
    th_msgs_free(&msgs);
    th_consumer_destroy(cons);
    th_env_destroy(env);
    th_my_destroy(my);
}

static void test_initial_only(void **state)
{
    (void)state;
    th_my_t *my = server_with("INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                              "VALUES ('01', 'S0000001', 'C1', 1), ('01', 'S0000002', 'C1', 2)");
    th_my_conf_t conf = {.server_id = 4327, .heartbeat_ms = 1000, .snapshot = "initial_only"};
    th_env_t *env = th_my_env_new(my, &conf);
    IT_CHECK(NULL, env != NULL, "env");
    th_log("snapshot: initial_only: the rows, then exit 0 with the plain position stored");
    char *gtid = th_my_value(my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    for (int run = 0; run < 2; run++) {
        IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon start");
        IT_CHECK(env, th_proc_wait(env->siphon, 20000) && th_proc_exit_code(env->siphon) == 0,
                 "run %d did not exit 0 by itself", run + 1);
        char *pos = stored_position(env->offsets_path);
        IT_CHECK(env, pos && gtid && !strcmp(pos, gtid), "stored \"%s\", expected %s",
                 pos ? pos : "(none)", gtid ? gtid : "?");
        free(pos);
    }
    IT_CHECK(env, th_my_dump_threads(my) == 0, "initial_only must not register a replica");
    th_consumer_t *cons = th_consumer_new(env->kafka, env->topic);
    th_msgs_t msgs = {0};
    th_my_drain(cons, &msgs, 500);
    th_my_order_ev_t *evs = NULL;
    int nev = 0;
    IT_CHECK(env, th_my_order_events(env->dec, &msgs, 0, &evs, &nev) == 0 && nev == 2 &&
                      evs[0].op == 'r' && evs[1].op == 'r',
             "%d events, expected 2 'r' (the second run reads nothing)", nev);
    free(evs);
    free(gtid);
    th_msgs_free(&msgs);
    th_consumer_destroy(cons);
    th_env_destroy(env);
    th_my_destroy(my);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_and_resume),
                                       cmocka_unit_test(test_when_needed),
                                       cmocka_unit_test(test_initial_only)};
    return cmocka_run_group_tests_name("0107-mysql-snapshot-resume", tests, NULL, NULL);
}
