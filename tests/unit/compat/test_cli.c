/*
 * test_cli.c - `siphon schema check | history | diff` (src/cli/cmd_schema.c), called in-process
 * with stdout and stderr captured: exit codes, what they print, and that check records nothing.
 */
#include <fcntl.h>
#include <limits.h>
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

#include "avro/siphon_avro.h"
#include "cli/cli.h"
#include "compat_test.h"
#include "core/error.h"
#include "mapping/mapping.h"

typedef struct ran {
    int rc;
    char *out, *err;
} ran_t;

/* Run `siphon schema <args...>` (NULL-terminated) with stdout/stderr captured. */
static ran_t run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = "schema";
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    char dir[PATH_MAX], po[PATH_MAX + 8], pe[PATH_MAX + 8];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(po, sizeof(po), "%s/out", dir);
    snprintf(pe, sizeof(pe), "%s/err", dir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    ran_t r;
    r.rc = siphon_cmd_schema(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    r.out = tc_read_file(po, NULL);
    r.err = tc_read_file(pe, NULL);
    tc_rmtree(dir);
    return r;
}

static void done(ran_t *r)
{
    free(r->out);
    free(r->err);
}

#define HAS(s, sub)                                                                            \
    do {                                                                                       \
        if (!strstr((s), (sub)))                                                               \
            fail_msg("expected \"%s\" in:\n%s", (sub), (s));                                   \
    } while (0)

static void test_diff(void **state)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s/tests/golden/compat/diff/order-changes/a.avsc", tc_source_dir());
    snprintf(b, sizeof(b), "%s/tests/golden/compat/diff/order-changes/b.avsc", tc_source_dir());
    ran_t r = run("diff", a, b, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "changes from ");
    HAS(r.out, "  ~ Order.id: type int -> long\n");
    HAS(r.out, "  + Order.channel: added, string, no default\n");
    HAS(r.out, "B reads data written with A (backward): no\n"
               "  Order.amount: the writer's decimal(12,2) cannot be read as decimal(14,3)");
    HAS(r.out, "A reads data written with B (forward): no\n  Order.id: the writer's long "
               "cannot be read as int\n");
    HAS(r.out, "both (full): no\n");
    assert_string_equal(r.err, "");
    done(&r);

    r = run("diff", "--mode", "forward", a, b, NULL);
    assert_int_equal(r.rc, 1);
    HAS(r.err, "is not FORWARD compatible with");
    done(&r);
    r = run("diff", "--mode", "NONE", a, b, NULL);
    assert_int_equal(r.rc, 0);
    done(&r);

    /* a schema against itself */
    r = run("diff", "-m", "FULL_TRANSITIVE", a, a, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "  none (apart from docs)\n");
    HAS(r.out, "B reads data written with A (backward): yes\n");
    HAS(r.out, "both (full): yes\n");
    done(&r);

    r = run("diff", a, NULL);
    assert_int_equal(r.rc, 2);
    HAS(r.err, "expected two schema files");
    done(&r);
    r = run("diff", a, "/nonexistent/x.avsc", NULL);
    assert_int_equal(r.rc, 1);
    HAS(r.err, "could not read /nonexistent/x.avsc");
    done(&r);
    r = run("diff", "--mode", "SIDEWAYS", a, b, NULL);
    assert_int_equal(r.rc, 2);
    HAS(r.err, "unknown compatibility mode 'SIDEWAYS'");
    done(&r);
    r = run("frobnicate", NULL);
    assert_int_equal(r.rc, 2);
    HAS(r.err, "unknown subcommand 'frobnicate'");
    done(&r);
    r = run("--help", NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "siphon schema check --config FILE");
    done(&r);
}

/* A config whose mappings and schemas are copies of the side-by-side fixture in dir. */
static void make_config(const char *dir, char *cfg, size_t size)
{
    const char *files[] = {"mappings/sales_order.yaml", "mappings/sales_order_v2.yaml",
                           "schemas/sales_order.v1.avsc", "schemas/sales_order.v2.avsc"};
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/mappings", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/schemas", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/tests/golden/compat/fixtures/side-by-side/%s",
                 tc_source_dir(), files[i]);
        char *text = tc_read_file(p, NULL);
        assert_non_null(text);
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        assert_int_equal(tc_write_file(p, text), 0);
        free(text);
    }
    snprintf(cfg, size, "%s/siphon.yaml", dir);
    assert_int_equal(tc_write_file(cfg, "name: erp-orders\n"
                                        "source:\n"
                                        "  type: postgres\n"
                                        "  conninfo: \"dbname=erp\"\n"
                                        "mappings: mappings\n"
                                        "schemas: schemas\n"
                                        "sink:\n"
                                        "  type: stdout\n"
                                        "offsets:\n"
                                        "  path: erp.offsets.json\n"),
                     0);
}

/* What `siphon run` does at startup (the pipeline calls the same function). */
static void record_like_run(const char *dir)
{
    char maps[PATH_MAX + 16], schemas[PATH_MAX + 16], hpath[PATH_MAX + 32], err[4096];
    siphon_mapset_t *ms = NULL;
    snprintf(maps, sizeof(maps), "%s/mappings", dir);
    snprintf(schemas, sizeof(schemas), "%s/schemas", dir);
    snprintf(hpath, sizeof(hpath), "%s/erp-orders.schemas.json", dir);
    if (siphon_mapset_load(&ms, maps, schemas, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    const siphon_avro_stream_t *st[2] = {siphon_mapping_stream(siphon_mapset_get(ms, 0)),
                                         siphon_mapping_stream(siphon_mapset_get(ms, 1))};
    if (siphon_schema_history_sync(hpath, "erp-orders", SIPHON_COMPAT_BACKWARD, st, 2, 1, NULL,
                                   err, sizeof(err)) < 0)
        fail_msg("%s", err);
    siphon_mapset_destroy(ms);
}

static void test_check_and_history(void **state)
{
    char dir[PATH_MAX], cfg[PATH_MAX + 16], hpath[PATH_MAX + 32], v1[PATH_MAX + 40];
    tc_tmpdir(dir, sizeof(dir));
    make_config(dir, cfg, sizeof(cfg));
    snprintf(hpath, sizeof(hpath), "%s/erp-orders.schemas.json", dir);
    snprintf(v1, sizeof(v1), "%s/schemas/sales_order.v1.avsc", dir);

    ran_t r = run("check", "--config", cfg, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "compatibility BACKWARD");
    HAS(r.out, "sales_order.v1: new stream, would be published as version 1.0\n");
    HAS(r.out, "sales_order.v2: new stream, would be published as version 2.0\n");
    assert_int_equal(access(hpath, F_OK), -1); /* a check records nothing */
    done(&r);

    r = run("history", "-c", cfg, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "nothing recorded yet");
    done(&r);

    record_like_run(dir);
    r = run("check", "--config", cfg, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "sales_order.v1: unchanged since version 1.0\n");
    HAS(r.out, "sales_order.v2: unchanged since version 2.0\n");
    done(&r);

    r = run("history", "--config", cfg, NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "(connector erp-orders)");
    HAS(r.out, "sales_order.v1\n  1.0  ");
    HAS(r.out, "sales_order.v2\n  2.0  ");
    HAS(r.out, "checked BACKWARD");
    done(&r);

    char *text = tc_read_file(v1, NULL);
    r = run("history", "--config", cfg, "sales_order.v1", "1.0", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, text);
    done(&r);
    r = run("history", "--config", cfg, "--key", "sales_order.v1", "1.0", NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "SalesOrderKey");
    done(&r);
    r = run("history", "--config", cfg, "--envelope", "sales_order.v2", "2.0", NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "SalesOrderEnvelope");
    HAS(r.out, "customer_id");
    done(&r);
    r = run("history", "--config", cfg, "sales_order.v1", "1.7", NULL);
    assert_int_equal(r.rc, 1);
    HAS(r.err, "has no version 1.7 of stream sales_order.v1");
    done(&r);
    r = run("history", "--config", cfg, "invoice.v1", NULL);
    assert_int_equal(r.rc, 1);
    HAS(r.err, "no stream invoice.v1");
    done(&r);

    /* v1 gains a field without a default: not backward compatible, but forward */
    char *changed = NULL;
    const char *at = strstr(text, "{\"name\": \"customer_number\"");
    assert_non_null(at);
    size_t n = strlen(text) + 64;
    changed = malloc(n);
    snprintf(changed, n, "%.*s{\"name\": \"region\", \"type\": \"string\"},\n    %s",
             (int)(at - text), text, at);
    assert_int_equal(tc_write_file(v1, changed), 0);
    char map1[PATH_MAX + 40];
    snprintf(map1, sizeof(map1), "%s/mappings/sales_order.yaml", dir);
    char *mtext = tc_read_file(map1, NULL);
    assert_non_null(mtext);
    size_t ml = strlen(mtext) + 32;
    char *mnew = malloc(ml);
    snprintf(mnew, ml, "%s  region: hdcust\n", mtext); /* an unmapped field must be nullable */
    assert_int_equal(tc_write_file(map1, mnew), 0);
    free(mtext);
    free(mnew);
    r = run("check", "--config", cfg, NULL);
    assert_int_equal(r.rc, 1);
    HAS(r.out, "sales_order.v1: INCOMPATIBLE with version 1.0 (");
    HAS(r.out, "  new schema reading data written with 1.0: SalesOrder.region: the reader "
               "requires field region (it has no default) but the writer does not write it\n");
    HAS(r.out, "sales_order.v2: unchanged since version 2.0\n");
    HAS(r.err, "1 stream changed incompatibly under BACKWARD");
    done(&r);
    r = run("check", "--config", cfg, "--mode", "FORWARD", NULL);
    assert_int_equal(r.rc, 0);
    HAS(r.out, "sales_order.v1: compatible change, would be published as version 1.1\n");
    done(&r);

    r = run("check", NULL);
    assert_int_equal(r.rc, 2);
    HAS(r.err, "--config FILE is required");
    done(&r);
    r = run("check", "--config", "/nonexistent/siphon.yaml", NULL);
    assert_int_equal(r.rc, 1);
    done(&r);
    r = run("check", "--config", cfg, "extra", NULL);
    assert_int_equal(r.rc, 2);
    done(&r);

    free(changed);
    free(text);
    tc_rmtree(dir);
}

int tc_cli_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_check_and_history),
    };
    return cmocka_run_group_tests_name("compat_cli", tests, NULL, NULL);
}
