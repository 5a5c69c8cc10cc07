/*
 * 0103-mysql-server-checks - what the MySQL connector refuses and why, against a throwaway
 * MariaDB driven in-process: binlog_format, binlog_row_image and binlog_row_metadata that make
 * the stream unusable (each refusal names the setting to change), the grants it needs
 * (REPLICATION CLIENT / BINLOG MONITOR, then REPLICATION SLAVE), a server id clash, a wrong
 * password (never echoed), an unreachable server (retriable), a stored GTID the server does not
 * have. And source.names_from_catalog: with binlog_row_metadata=MINIMAL, column names, ENUM
 * values and signedness come from the table definition, re-read after an ALTER TABLE seen in
 * the binlog; resuming into rows logged before a later ALTER is refused with the fix named.
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

typedef struct state {
    th_my_t *my;
    char *dir;
} state_t;

static unsigned server_id = 4303; /* ours as a replica */

/* Open a source with this conninfo (NULL: the server's) and extra source lines. */
static int open_src(state_t *s, const char *conninfo, const char *extra, const char *resume,
                    siphon_source_t **src, siphon_config_t **cfg, char *err, size_t errsize)
{
    char *text = th_strf("name: checks\nsource:\n  type: mysql\n  conninfo: \"%s\"\n"
                         "  server_id: %u\n  heartbeat_interval_ms: 1000\n  snapshot: never\n%s"
                         "sink: {type: stdout}\noffsets: {path: %s/offsets.json}\n",
                         conninfo ? conninfo : th_my_conninfo(s->my), server_id,
                         extra ? extra : "", s->dir);
    int rc = siphon_config_parse(cfg, text, strlen(text), "siphon.yaml", s->dir, err, errsize);
    free(text);
    IT_CHECK(NULL, rc == 0, "config: %s", err);
    siphon_table_ref_t t[] = {{"it", "t"}};
    *src = NULL;
    /* every open here starts fresh: no pinned first-start position from an earlier test */
    char *pin = th_strf("%s/offsets.json.mysql-start", s->dir);
    unlink(pin);
    free(pin);
    rc = siphon_mysql_source.open(src, *cfg, t, 1, resume, err, errsize);
    return rc;
}

static void close_src(siphon_source_t *src, siphon_config_t *cfg)
{
    siphon_mysql_source.close(src);
    siphon_config_destroy(cfg);
}

/* open() must fail with code and a message holding every needle. */
static void expect_refused(state_t *s, const char *conninfo, const char *extra, const char *resume,
                           int code, const char *n1, const char *n2)
{
    siphon_source_t *src;
    siphon_config_t *cfg;
    char err[2048] = "";
    int rc = open_src(s, conninfo, extra, resume, &src, &cfg, err, sizeof(err));
    close_src(src, cfg);
    IT_CHECK(NULL, rc == code, "open() returned %d (%s), expected %d: %s", rc,
             siphon_err_name(rc), code, err);
    IT_CHECK(NULL, strstr(err, n1) && (!n2 || strstr(err, n2)),
             "the message should name \"%s\"%s%s: %s", n1, n2 ? " and " : "", n2 ? n2 : "", err);
    th_log("  refused as expected: %.200s%s", err, strlen(err) > 200 ? "..." : "");
}

static int setup(void **st)
{
    state_t *s = calloc(1, sizeof(*s));
    *st = s;
    siphon_log_setup(SIPHON_LOG_ERR, 0);
    if (!(s->my = th_my_start(NULL)) || !(s->dir = th_tempdir()))
        return -1;
    return th_my_exec(s->my, "CREATE DATABASE it; CREATE TABLE it.t (id int PRIMARY KEY, "
                             "a varchar(10), n int unsigned, e enum('x','y','ü'))");
}

static int teardown(void **st)
{
    state_t *s = *st;
    if (s) {
        th_my_destroy(s->my);
        if (s->dir)
            th_tempdir_remove(s->dir);
        free(s->dir);
        free(s);
    }
    return 0;
}

static void test_settings(void **st)
{
    state_t *s = *st;
    th_log("binlog_format=STATEMENT, binlog_row_image=MINIMAL, binlog_row_metadata=MINIMAL");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_format = 'STATEMENT'") == 0, "set");
    expect_refused(s, NULL, NULL, NULL, SIPHON_EINVAL, "binlog_format is STATEMENT",
                   "set binlog_format=ROW");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_format = 'ROW'; "
                                     "SET GLOBAL binlog_row_image = 'MINIMAL'") == 0, "set");
    expect_refused(s, NULL, NULL, NULL, SIPHON_EINVAL, "binlog_row_image is MINIMAL",
                   "set binlog_row_image=FULL");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_row_image = 'FULL'; "
                                     "SET GLOBAL binlog_row_metadata = 'MINIMAL'") == 0, "set");
    expect_refused(s, NULL, NULL, NULL, SIPHON_EINVAL, "set binlog_row_metadata=FULL",
                   "names_from_catalog");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_row_metadata = 'FULL'") == 0, "set");
    th_log("server_id equal to the server's own");
    server_id = 1;
    expect_refused(s, NULL, NULL, NULL, SIPHON_EINVAL, "server's own server_id", NULL);
    server_id = 4303;
}

static void test_grants_and_connection(void **st)
{
    state_t *s = *st;
    char *ci = th_strf("host=127.0.0.1 port=%d user=ro password=s3cret-pw connect_timeout=3",
                       th_my_port(s->my));
    IT_CHECK(NULL, th_my_exec(s->my, "CREATE USER 'ro'@'%%' IDENTIFIED BY 's3cret-pw'; "
                                     "GRANT SELECT ON it.* TO 'ro'@'%%'") == 0, "user");
    th_log("SELECT only: SHOW MASTER STATUS is denied");
    expect_refused(s, ci, NULL, NULL, SIPHON_EINVAL, "REPLICATION CLIENT", "docs/mysql.md");
    th_log("plus BINLOG MONITOR: the binlog dump is denied (REPLICATION SLAVE)");
    IT_CHECK(NULL, th_my_exec(s->my, "GRANT BINLOG MONITOR ON *.* TO 'ro'@'%%'") == 0, "grant");
    expect_refused(s, ci, NULL, NULL, SIPHON_EINVAL, "REPLICATION SLAVE", "register");
    th_log("plus REPLICATION SLAVE: streams");
    IT_CHECK(NULL, th_my_exec(s->my, "GRANT REPLICATION SLAVE ON *.* TO 'ro'@'%%'") == 0, "gr");
    siphon_source_t *src;
    siphon_config_t *cfg;
    char err[2048];
    int rc = open_src(s, ci, NULL, NULL, &src, &cfg, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open with all grants: %s", err);
    close_src(src, cfg);
    free(ci);

    th_log("a wrong password: refused, and the password is not in the message");
    ci = th_strf("host=127.0.0.1 port=%d user=ro password=wrong-pw-xyz", th_my_port(s->my));
    expect_refused(s, ci, NULL, NULL, SIPHON_EINVAL, "check user and password", "********");
    rc = open_src(s, ci, NULL, NULL, &src, &cfg, err, sizeof(err));
    close_src(src, cfg);
    IT_CHECK(NULL, !strstr(err, "wrong-pw-xyz"), "the password leaked into: %s", err);
    free(ci);

    th_log("nothing listening: a retriable error");
    ci = th_strf("host=127.0.0.1 port=1 user=root connect_timeout=2");
    expect_refused(s, ci, NULL, NULL, SIPHON_ECONN, "could not connect", NULL);
    free(ci);
}

static void test_unknown_position(void **st)
{
    state_t *s = *st;
    th_log("a stored GTID the server never logged, a binlog file it does not have");
    expect_refused(s, NULL, NULL, "0-1-999999", SIPHON_EINVAL, "0-1-999999", "offsets file");
    expect_refused(s, NULL, NULL, "binlog.999999:4", SIPHON_EINVAL, "no such binlog position",
                   NULL);
    expect_refused(s, NULL, NULL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", SIPHON_EINVAL,
                   "MySQL GTID set", "MariaDB");
}

/* Read CHANGE records until n arrived: "op id a n e [extra columns...]" each. */
static int read_changes(siphon_source_t *src, char out[][256], int n, int timeout_ms, char *err,
                        size_t errsize)
{
    int got = 0;
    int64_t until = th_now_ms() + timeout_ms;
    while (got < n && th_now_ms() < until) {
        siphon_batch_t b;
        int rc = siphon_mysql_source.next(src, &b, 200, err, errsize);
        if (rc < 0)
            return rc;
        for (int i = 0; i < b.n && got < n; i++) {
            const siphon_change_t *c = &b.recs[i];
            if (c->kind != SIPHON_REC_CHANGE)
                continue;
            size_t o = (size_t)snprintf(out[got], 256, "%c", (char)c->op);
            for (int k = 0; k < c->rel->ncols; k++) {
                char v[64];
                siphon_value_format(&c->after->vals[k], v, sizeof(v));
                o += (size_t)snprintf(out[got] + o, 256 - o, " %s=%s", c->rel->cols[k].name, v);
            }
            got++;
        }
    }
    return got;
}

static void test_names_from_catalog(void **st)
{
    state_t *s = *st;
    siphon_source_t *src;
    siphon_config_t *cfg;
    char err[2048], got[4][256];
    th_log("binlog_row_metadata=MINIMAL with source.names_from_catalog: true");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_row_metadata = 'MINIMAL'") == 0, "set");
    int rc = open_src(s, NULL, "  names_from_catalog: true\n", NULL, &src, &cfg, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open: %s", err);
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.t VALUES (1, 'one', 4294967295, 'ü')") == 0,
             "insert");
    IT_CHECK(NULL, read_changes(src, got, 1, 10000, err, sizeof(err)) == 1, "no change: %s",
             err);
    IT_CHECK(NULL, strcmp(got[0], "c id=1 a=one n=4294967295 e=ü") == 0,
             "decoded with catalog names: %s", got[0]);
    th_log("  %s", got[0]);
    IT_CHECK(NULL, th_my_exec(s->my, "ALTER TABLE it.t ADD COLUMN b decimal(5,2) AFTER a; "
                                     "INSERT INTO it.t VALUES (2, 'two', 1.25, 7, 'x')") == 0,
             "alter");
    IT_CHECK(NULL, read_changes(src, got, 1, 10000, err, sizeof(err)) == 1, "no change: %s",
             err);
    IT_CHECK(NULL, strcmp(got[0], "c id=2 a=two b=1.25 n=7 e=x") == 0,
             "after the ALTER the definition is read again: %s", got[0]);
    th_log("  %s", got[0]);
    close_src(src, cfg);

    th_log("resuming into rows logged before a later ALTER: refused, naming the fix");
    char *before = th_my_value(s->my, NULL, "SELECT @@GLOBAL.gtid_binlog_pos");
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.t VALUES (3, 'three', 2.5, 8, 'y'); "
                                     "ALTER TABLE it.t ADD COLUMN z int") == 0, "alter");
    rc = open_src(s, NULL, "  names_from_catalog: true\n", before, &src, &cfg, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open: %s", err);
    rc = read_changes(src, got, 1, 10000, err, sizeof(err));
    close_src(src, cfg);
    IT_CHECK(NULL, rc == SIPHON_EINVAL && strstr(err, "binlog_row_metadata=FULL") &&
                       strstr(err, "it.t"),
             "expected a refusal naming binlog_row_metadata=FULL, got %d: %s", rc, err);
    th_log("  %.160s...", err);
    free(before);
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_row_metadata = 'FULL'") == 0, "set");
}

/* binlog_checksum=NONE: events without a CRC (a binlog file of their own after the switch),
 * then CRC32 again, read by one source across both files. */
static void test_checksum_none(void **st)
{
    state_t *s = *st;
    siphon_source_t *src;
    siphon_config_t *cfg;
    char err[2048], got[4][256];
    th_log("binlog_checksum=NONE, then CRC32 again, in one stream");
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_checksum = 'NONE'") == 0, "set");
    int rc = open_src(s, NULL, NULL, NULL, &src, &cfg, err, sizeof(err));
    IT_CHECK(NULL, rc == 0, "open: %s", err);
    IT_CHECK(NULL, th_my_exec(s->my, "INSERT INTO it.t (id, a, n, e) VALUES (10, 'no crc', 1, "
                                     "'x')") == 0, "insert");
    IT_CHECK(NULL, read_changes(src, got, 1, 10000, err, sizeof(err)) == 1, "no change: %s",
             err);
    IT_CHECK(NULL, strstr(got[0], "id=10 a=no crc"), "decoded: %s", got[0]);
    IT_CHECK(NULL, th_my_exec(s->my, "SET GLOBAL binlog_checksum = 'CRC32'; "
                                     "INSERT INTO it.t (id, a, n, e) VALUES (11, 'crc', 2, 'y')") == 0,
             "insert");
    IT_CHECK(NULL, read_changes(src, got, 1, 10000, err, sizeof(err)) == 1, "no change: %s",
             err);
    IT_CHECK(NULL, strstr(got[0], "id=11 a=crc"), "decoded: %s", got[0]);
    close_src(src, cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_grants_and_connection),
        cmocka_unit_test(test_unknown_position),
        cmocka_unit_test(test_names_from_catalog),
        cmocka_unit_test(test_checksum_none),
    };
    return cmocka_run_group_tests_name("0103-mysql-server-checks", tests, setup, teardown);
}
