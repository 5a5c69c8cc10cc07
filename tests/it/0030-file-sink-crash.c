/*
 * 0030-file-sink-crash - the file sink under SIGKILL: siphon streams oehdr changes into Avro
 * container files (small roll_bytes, so a run writes many files) and is killed 3 times at seeded
 * random moments while a writer commits transactions, restarted each time. Then the writer
 * stops, the slot's confirmed position reaches the end of the WAL (everything was acknowledged,
 * so it must all be in fsynced files), siphon is killed once more, and one last run recovers the
 * leftover .avro.tmp files and is stopped with SIGTERM.
 *
 * Every closed file is then read with avro-c's own file reader (th_file_read, not Siphon's
 * reader) and checked by th_collector: every committed version is there at least once, per-key
 * order holds, duplicates are re-deliveries across restarts with the same event id. Finally
 * `siphon tail --dir` prints the same number of events, one JSON line each. Rerun a failure
 * with TH_SEED=<seed>.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_check.h"

#define KILLS 3

static int setup(void **state)
{
    th_fx_t *fx = th_fx_new();
    *state = fx;
    return fx ? 0 : -1;
}

static int teardown(void **state)
{
    th_fx_destroy(*state);
    return 0;
}

static int count_suffix(const char *dir, const char *suffix)
{
    int n = 0;
    char **files = th_file_list(dir, suffix, &n); /* n is set by the call */
    th_file_list_free(files, n);
    return n;
}

static void test_file_sink_crash(void **state)
{
    th_fx_t *fx = *state;
    th_env_t *env = fx->env;
    unsigned seed = th_seed();
    srand(seed);
    char *out = th_path(env->dir, "out");
    char *topic_dir = th_path(out, env->topic);
    IT_CHECK(env, th_file_conf_write(env, out, 64 * 1024, 0, NULL) == 0,
             "could not write the file sink config");
    const char *amount = th_decoder_field(env->dec, "sales_order", "hdamt");
    IT_CHECK(env, amount, "no entity field is mapped from hdamt");
    fx->col = th_collector_new(env->dec, amount);
    assert_non_null(fx->col);

    th_log("start siphon (file sink, 64 KiB files) and a writer (30 rows, 1-5 rows per txn)");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    th_writer_opts_t wo = {.nkeys = 30, .max_rows = 5, .pause_ms = 3, .seed = seed};
    fx->w = th_writer_start(env->pg, &wo);
    assert_non_null(fx->w);

    for (int kill_no = 1; kill_no <= KILLS; kill_no++) {
        int run_ms = rand() % 4 == 0 ? 300 + rand() % 500 : 1500 + rand() % 2000;
        th_sleep_ms(run_ms);
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited on its own (code %d)",
                 th_proc_exit_code(env->siphon));
        th_log("kill %d/%d: SIGKILL after %d ms (writer: %ld transactions; %d closed files, "
               "%d being written)", kill_no, KILLS, run_ms, th_writer_txns(fx->w),
               count_suffix(topic_dir, ".avro"), count_suffix(topic_dir, ".avro.tmp"));
        th_collector_restart(fx->col);
        int code = th_env_siphon_stop(env, SIGKILL, 10000);
        IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
        th_sleep_ms(rand() % 500);
        IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    }

    th_log("let the last run stream for 2 s, then stop the writer");
    th_sleep_ms(2000);
    IT_CHECK(env, th_writer_stop(fx->w) == 0, "the writer failed");
    long txns = th_writer_txns(fx->w), versions = 0;
    for (int k = 0; k < th_writer_nkeys(fx->w); k++)
        versions += th_writer_version(fx->w, k);
    IT_CHECK(env, txns > 100, "too few transactions committed (%ld) to prove anything", txns);
    uint64_t end = 0, confirmed = 0;
    IT_CHECK(env, th_pg_current_lsn(env->pg, &end) == 0, "could not read the WAL position");
    th_log("writer committed %ld transactions, %ld row versions; waiting for the slot to "
           "confirm the end of the WAL", txns, versions);
    int64_t deadline = th_now_ms() + 60000;
    while (th_now_ms() < deadline) {
        if (th_pg_slot_confirmed(env->pg, "siphon_it", &confirmed) == 0 && confirmed >= end)
            break;
        IT_CHECK(env, th_proc_running(env->siphon), "siphon exited (code %d)",
                 th_proc_exit_code(env->siphon));
        th_sleep_ms(100);
    }
    char lsn[32], want[32];
    th_lsn_format(confirmed, lsn, sizeof(lsn));
    th_lsn_format(end, want, sizeof(want));
    IT_CHECK(env, confirmed >= end, "the slot confirmed only %s of %s", lsn, want);

    th_log("everything acknowledged (%s): SIGKILL once more", lsn);
    th_collector_restart(fx->col);
    int code = th_env_siphon_stop(env, SIGKILL, 10000);
    IT_CHECK(env, code == 128 + SIGKILL, "siphon did not die of SIGKILL (code %d)", code);
    int leftovers = count_suffix(topic_dir, ".avro.tmp");
    th_log("%d closed files, %d .avro.tmp left by the kill; a last run recovers them",
           count_suffix(topic_dir, ".avro"), leftovers);
    IT_CHECK(env, leftovers <= 1, "%d files were being written at once for one topic",
             leftovers);

    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not restart");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not start streaming");
    if (leftovers)
        IT_CHECK(env, th_proc_wait_log(env->siphon, "recovered", 5000),
                 "the last run did not report recovering the leftover file");
    th_sleep_ms(500);
    code = th_env_siphon_stop(env, SIGTERM, 30000);
    IT_CHECK(env, code == 0, "siphon exited with %d after SIGTERM", code);
    IT_CHECK(env, count_suffix(topic_dir, ".avro.tmp") == 0,
             "a clean stop left a file being written");

    int nfiles = 0;
    char **files = th_file_list(topic_dir, ".avro", &nfiles);
    long records = 0;
    for (int i = 0; i < nfiles; i++) {
        long n = th_file_read(files[i], &fx->msgs);
        IT_CHECK(env, n > 0, "avro-c could not read %s (or it is empty)", files[i]);
        records += n;
    }
    th_file_list_free(files, nfiles);
    th_log("read %ld records from %d files with avro-c", records, nfiles);
    IT_CHECK(env, nfiles >= 3, "only %d files: roll_bytes did not roll", nfiles);
    char why[1024];
    IT_CHECK(env, th_collector_add(fx->col, &fx->msgs, 0, why, sizeof(why)) == 0,
             "the files break the delivery rules: %s", why);
    th_collector_missing(fx->col, fx->w, why, sizeof(why));
    IT_CHECK(env, th_collector_complete(fx->col, fx->w), "committed changes are missing: %s",
             why);
    th_collector_stats_t cs = th_collector_stats(fx->col);
    th_log("checked %ld records: %ld distinct changes, %ld re-deliveries after %d kills",
           cs.messages, cs.events, cs.duplicates, KILLS + 1);
    IT_CHECK(env, cs.events == versions, "%ld distinct changes in the files, %ld committed",
             cs.events, versions);
    IT_CHECK(env, cs.foreign == 0, "%ld records for rows the writer never touched", cs.foreign);

    th_log("siphon tail --dir prints every record as one JSON line");
    char *argv[] = {(char *)th_siphon_bin(), "tail", "--dir", out, "--from-beginning", NULL};
    char *sout = NULL, *serr = NULL;
    int ec = -1;
    IT_CHECK(env, th_run(argv, NULL, 60000, &ec, &sout, &serr) == 0 && ec == 0,
             "siphon tail failed (%d): %s", ec, serr ? serr : "");
    long lines = 0;
    for (char *p = sout, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        IT_CHECK(env, nl, "the last line of siphon tail has no newline");
        *nl = '\0';
        json_t *j = json_loads(p, 0, NULL);
        IT_CHECK(env, j && json_is_object(json_object_get(j, "key")) &&
                          json_is_string(json_object_get(json_object_get(j, "event"), "op")),
                 "not an event line: %s", p);
        json_decref(j);
        lines++;
    }
    IT_CHECK(env, lines == records, "siphon tail printed %ld lines for %ld records", lines,
             records);
    free(sout);
    free(serr);
    free(topic_dir);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_sink_crash, setup, teardown),
    };
    return cmocka_run_group_tests_name("0030-file-sink-crash", tests, NULL, NULL);
}
