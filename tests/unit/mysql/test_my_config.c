/*
 * test_my_config.c - the `source: {type: mysql, ...}` section of siphon.yaml (keys, defaults,
 * errors with file:line:column and what to write) and source.conninfo's keyword=value form
 * (quoting, the keywords it knows, ranges; a password never echoed in a message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "connectors/mysql/my_int.h"
#include "core/error.h"

int my_config_tests(void);

static int load(const char *source, siphon_config_t **cfg, char *err, size_t errsize)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "name: erp\nsource:\n%ssink: {type: stdout}\noffsets: {path: /tmp/x.json}\n",
             source);
    return siphon_config_parse(cfg, text, strlen(text), "siphon.yaml", "/tmp", err, errsize);
}

static void test_section(void **state)
{
    (void)state;
    siphon_config_t *cfg = NULL;
    char err[1024];
    assert_int_equal(load("  type: mysql\n  conninfo: \"host=db user=siphon\"\n"
                          "  server_id: 4294967295\n",
                          &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg->source.type, "mysql");
    assert_string_equal(cfg->source.conninfo, "host=db user=siphon");
    assert_true(cfg->mysql.server_id == 4294967295UL);
    assert_int_equal(cfg->mysql.heartbeat_interval_ms, 5000);
    assert_int_equal(cfg->mysql.names_from_catalog, 0);
    siphon_config_destroy(cfg);

    assert_int_equal(load("  type: mysql\n  conninfo: x\n  server_id: 7\n"
                          "  heartbeat_interval_ms: 250\n  names_from_catalog: yes\n",
                          &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg->mysql.heartbeat_interval_ms, 250);
    assert_int_equal(cfg->mysql.names_from_catalog, 1);
    siphon_config_destroy(cfg);

    struct {
        const char *src, *msg;
    } bad[] = {
        {"  type: mysql\n  conninfo: x\n",
         "siphon.yaml:3:3: missing required key 'server_id' in source (expected server_id:"},
        {"  type: mysql\n  server_id: 1\n",
         "siphon.yaml:3:3: missing required key 'conninfo' in source"},
        {"  type: mysql\n  conninfo: x\n  server_id: 0\n",
         "siphon.yaml:5:14: wrong value for source.server_id: 0 is out of range"},
        {"  type: mysql\n  conninfo: x\n  server_id: 4294967296\n", "is out of range"},
        {"  type: mysql\n  conninfo: x\n  server_id: 1\n  slot: s\n",
         "siphon.yaml:6:3: unknown key 'slot' in source (expected one of: type, conninfo, "
         "server_id, heartbeat_interval_ms, names_from_catalog, snapshot, snapshot_connections, "
         "snapshot_chunk_rows)"},
        {"  type: mysql\n  conninfo: x\n  server_id: 1\n  snapshot: sometimes\n",
         "siphon.yaml:6:13: wrong value for source.snapshot"},
        {"  type: mysql\n  conninfo: x\n  server_id: 1\n  heartbeat_interval_ms: 10\n",
         "source.heartbeat_interval_ms: 10 is out of range"},
        {"  type: mysql\n  conninfo: x\n  server_id: 1\n  names_from_catalg: true\n",
         "did you mean 'names_from_catalog'?"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = NULL;
        assert_int_equal(load(bad[i].src, &cfg, err, sizeof(err)), SIPHON_EINVAL);
        assert_null(cfg);
        if (!strstr(err, bad[i].msg))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, bad[i].msg, err);
    }
    /* postgres sections are untouched */
    assert_int_equal(load("  type: postgres\n  conninfo: x\n", &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->source.type, "postgres");
    assert_true(cfg->mysql.server_id == 0);
    siphon_config_destroy(cfg);
}

static void test_conninfo(void **state)
{
    (void)state;
    my_conninfo_t ci;
    char err[512];
    assert_int_equal(siphon_my__conninfo_parse(&ci,
                                               "host=db.example port=3307 user=siphon "
                                               "password='p w\\'x' dbname=erp "
                                               "connect_timeout=4 sslmode=require",
                                               err, sizeof(err)),
                     0);
    assert_string_equal(ci.host, "db.example");
    assert_int_equal(ci.port, 3307);
    assert_string_equal(ci.user, "siphon");
    assert_string_equal(ci.password, "p w'x");
    assert_string_equal(ci.dbname, "erp");
    assert_int_equal(ci.connect_timeout_s, 4);
    assert_string_equal(ci.ssl_mode, "require");
    siphon_my__conninfo_free(&ci);
    assert_int_equal(siphon_my__conninfo_parse(&ci, "socket=/run/mysqld/mysqld.sock", err,
                                               sizeof(err)),
                     0);
    assert_string_equal(ci.socket, "/run/mysqld/mysqld.sock");
    assert_null(ci.host);
    assert_int_equal(ci.connect_timeout_s, 10);
    siphon_my__conninfo_free(&ci);

    assert_int_equal(siphon_my__conninfo_parse(&ci, "host=x colour=red password=topsecret", err,
                                               sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "unknown keyword \"colour\""));
    assert_null(strstr(err, "topsecret"));
    assert_int_equal(siphon_my__conninfo_parse(&ci, "port=70000", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__conninfo_parse(&ci, "password='open", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__conninfo_parse(&ci, "sslmode=maybe", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_my__conninfo_parse(&ci, "hostonly", err, sizeof(err)),
                     SIPHON_EINVAL);
}

int my_config_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section),
        cmocka_unit_test(test_conninfo),
    };
    return cmocka_run_group_tests_name("mysql/config", tests, NULL, NULL);
}
