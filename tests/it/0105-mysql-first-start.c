/*
 * 0105-mysql-first-start - the first start of a MySQL source, on a brand-new MariaDB that has
 * never logged a transaction (its GTID position is empty). Without an offsets file the
 * connector starts at the server's current position and pins it, before anything streams, in
 * <offsets.path>.mysql-start (here a binlog file:offset, there being no GTID yet); a start
 * that ends before any position was acknowledged resumes at the pin, so what was committed in
 * between is read, not skipped. Once positions exist they are GTIDs, and a start with an
 * offsets file removes the pin. (snapshot: never: with a snapshot mode a start without a
 * stored position snapshots afresh instead, see 0106/0107.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "connectors/mysql/mysql.h"
#include "core/error.h"
#include "core/log.h"
#include "it_check.h"

static siphon_source_t *open_src(th_my_t *my, const char *dir, siphon_config_t **cfg,
                                 const char *resume)
{
    char err[1024];
    char *text = th_strf("name: first\nsource:\n  type: mysql\n  conninfo: \"%s\"\n"
                         "  server_id: 4305\n  snapshot: never\nsink: {type: stdout}\n"
                         "offsets: {path: %s/offsets.json}\n",
                         th_my_conninfo(my), dir);
    int rc = siphon_config_parse(cfg, text, strlen(text), "siphon.yaml", dir, err, sizeof(err));
    free(text);
    IT_CHECK(NULL, rc == 0, "config: %s", err);
    siphon_table_ref_t t[] = {{"shop", "orders"}};
    siphon_source_t *src = NULL;
    rc = siphon_mysql_source.open(&src, *cfg, t, 1, resume, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open: %s", err);
    return src;
}

/* Read until n CHANGE records arrived; the last COMMIT position goes to commit_pos. */
static int read_ids(siphon_source_t *src, int *ids, int n, char *commit_pos, size_t size)
{
    int got = 0;
    char err[1024];
    int64_t until = th_now_ms() + 10000;
    while (got < n && th_now_ms() < until) {
        siphon_batch_t b;
        IT_CHECK(NULL, siphon_mysql_source.next(src, &b, 200, err, sizeof(err)) == 0,
                 "next: %s", err);
        for (int i = 0; i < b.n; i++) {
            if (b.recs[i].kind == SIPHON_REC_CHANGE && got < n)
                ids[got++] = (int)b.recs[i].after->vals[0].u.i;
            if (b.recs[i].kind == SIPHON_REC_COMMIT)
                snprintf(commit_pos, size, "%s", b.recs[i].pos.text);
        }
    }
    return got;
}

static void test_first_start(void **state)
{
    (void)state;
    siphon_log_setup(SIPHON_LOG_WARNING, 0);
    th_my_t *my = th_my_start(NULL);
    assert_non_null(my);
    char *dir = th_tempdir();
    char *pin = th_path(dir, "offsets.json.mysql-start");
    char *gtid = th_my_value(my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(NULL, gtid && !gtid[0], "a fresh server should have no GTID yet, has \"%s\"",
             gtid ? gtid : "(null)");
    free(gtid);

    th_log("first start on a server without any GTID: the pin is a file:offset");
    siphon_config_t *cfg = NULL;
    siphon_source_t *src = open_src(my, dir, &cfg, NULL);
    char *pinned = th_read_file(pin, NULL, 0);
    IT_CHECK(NULL, pinned && strstr(pinned, "binlog.000001:"), "pin: %s",
             pinned ? pinned : "(none)");
    siphon_mysql_source.close(src);
    siphon_config_destroy(cfg);
    IT_CHECK(NULL, access(pin, F_OK) == 0, "the pin must stay while there is no offsets file");

    th_log("writes while stopped, then a start without an offsets file: resumes at the pin");
    IT_CHECK(NULL, th_my_exec(my, "CREATE DATABASE shop; CREATE TABLE shop.orders (id int "
                                  "PRIMARY KEY); INSERT INTO shop.orders VALUES (1); "
                                  "INSERT INTO shop.orders VALUES (2)") == 0,
             "writes");
    src = open_src(my, dir, &cfg, NULL);
    int ids[2] = {0, 0};
    char commit[256] = "";
    IT_CHECK(NULL, read_ids(src, ids, 2, commit, sizeof(commit)) == 2 && ids[0] == 1 &&
                       ids[1] == 2,
             "the rows written while stopped should arrive (got %d, %d)", ids[0], ids[1]);
    int64_t until = th_now_ms() + 3000;
    while (strcmp(commit, "0-1-4") != 0 && th_now_ms() < until)
        read_ids(src, ids, 0, commit, sizeof(commit));
    IT_CHECK(NULL, strcmp(commit, "0-1-4") == 0, "positions are GTIDs now, got \"%s\"", commit);
    siphon_mysql_source.close(src);
    siphon_config_destroy(cfg);

    th_log("a start with a stored position removes the pin");
    src = open_src(my, dir, &cfg, "0-1-4");
    IT_CHECK(NULL, access(pin, F_OK) != 0, "the pin should be gone");
    siphon_mysql_source.close(src);
    siphon_config_destroy(cfg);
    free(pinned);
    free(pin);
    th_tempdir_remove(dir);
    free(dir);
    th_my_destroy(my);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_first_start)};
    return cmocka_run_group_tests_name("0105-mysql-first-start", tests, NULL, NULL);
}
