/*
 * 0006-cli - the `siphon` command line as an operator meets it: every help exits 0 and shows an
 * example, `siphon version` prints a version, usage errors exit 2, and `siphon validate` exits 0
 * on a good config and 1 on bad ones (unknown key, wrong type, missing key, a mapping to a field
 * the schema lacks, a missing schema) with file:line:column in stderr. A password in the
 * conninfo (literal or through ${VAR}) never appears in any output, including the logs of a
 * `siphon run` at debug level that streams a change, and of one that cannot reach its server.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_check.h"

#define PASSWORD "Pw-5ecret-0f-the-ERP"

/* everything any siphon invocation printed, for the password check */
static char *all_output;

static void keep_output(const char *what, const char *out, const char *err)
{
    char *s = th_strf("%s=== %s\n%s%s", all_output ? all_output : "", what, out ? out : "",
                      err ? err : "");
    free(all_output);
    all_output = s;
}

/* Run siphon with args; returns the exit code; the caller frees *out and *err. */
static int siphon(char **out, char **err, const char *a1, const char *a2, const char *a3,
                  const char *a4)
{
    const char *bin = th_siphon_bin();
    assert_non_null(bin);
    char *argv[] = {(char *)bin, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    int code = -1;
    assert_int_equal(th_run(argv, NULL, 20000, &code, out, err), 0);
    char what[256];
    snprintf(what, sizeof(what), "siphon %s %s %s %s", a1 ? a1 : "", a2 ? a2 : "",
             a3 ? a3 : "", a4 ? a4 : "");
    keep_output(what, *out, *err);
    return code;
}

static void test_help_version(void **state)
{
    (void)state;
    const char *helps[][2] = {{"--help", NULL}, {"-h", NULL},         {"help", NULL},
                              {"run", "--help"}, {"validate", "--help"}, {"version", "--help"},
                              {"run", "-h"}};
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
        char *out = NULL, *err = NULL;
        th_log("siphon %s %s: exit 0, usage and an example", helps[i][0],
               helps[i][1] ? helps[i][1] : "");
        int code = siphon(&out, &err, helps[i][0], helps[i][1], NULL, NULL);
        char *both = th_strf("%s%s", out, err);
        IT_CHECK(NULL, code == 0, "exit code %d", code);
        IT_CHECK(NULL, strstr(both, "Usage") && strstr(both, "Example"),
                 "no usage/example in:\n%s", both);
        IT_CHECK(NULL, strstr(both, "siphon "), "the example does not show a siphon command");
        free(both);
        free(out);
        free(err);
    }
    th_log("siphon version: exit 0, a version number");
    char *out = NULL, *err = NULL;
    int code = siphon(&out, &err, "version", NULL, NULL, NULL);
    IT_CHECK(NULL, code == 0, "exit code %d", code);
    int a, b, c;
    const char *v = strstr(out, "siphon ");
    IT_CHECK(NULL, v && sscanf(v, "siphon %d.%d.%d", &a, &b, &c) == 3,
             "no \"siphon X.Y.Z\" in: %s", out);
    free(out);
    free(err);

    th_log("usage errors exit 2 with a message: no command, unknown command, no --config, "
           "unknown option");
    const char *bad[][2] = {{NULL, NULL}, {"frobnicate", NULL}, {"run", NULL},
                            {"validate", "--bogus"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        code = siphon(&out, &err, bad[i][0], bad[i][1], NULL, NULL);
        IT_CHECK(NULL, code == 2, "siphon %s %s: exit code %d, expected 2",
                 bad[i][0] ? bad[i][0] : "", bad[i][1] ? bad[i][1] : "", code);
        IT_CHECK(NULL, strlen(err) > 0, "usage error without a message on stderr");
        free(out);
        free(err);
    }
}

/* ---- validate ---- */

static char *dir, *good_path, *good_text;

/* Line number (1-based) of the first line starting with prefix, or 0. */
static int line_of(const char *text, const char *prefix)
{
    int line = 1;
    for (const char *p = text; *p;) {
        if (!strncmp(p, prefix, strlen(prefix)))
            return line;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    return 0;
}

/* text with `insert` placed before line `line` (1-based) and `drop` lines removed there. */
static char *edit_lines(const char *text, int line, int drop, const char *insert)
{
    size_t n = strlen(text);
    char *out = malloc(n + strlen(insert) + 2);
    size_t o = 0;
    int cur = 1;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (cur == line) {
            memcpy(out + o, insert, strlen(insert));
            o += strlen(insert);
        }
        if (!(cur >= line && cur < line + drop)) {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        cur++;
    }
    out[o] = '\0';
    return out;
}

/* Validate a config file: expect exit 1 and "<file>:<line>:<col>" in stderr (line 0: any). */
static void expect_invalid(const char *what, const char *path, const char *file_in_msg,
                           int line, const char *mention)
{
    char *out = NULL, *err = NULL;
    int code = siphon(&out, &err, "validate", "--config", path, NULL);
    th_log("  %s -> exit %d: %.*s", what, code, (int)strcspn(err, "\n"), err);
    IT_CHECK(NULL, code == 1, "%s: exit code %d, expected 1 (stderr: %s)", what, code, err);
    int found = 0;
    for (const char *p = strstr(err, file_in_msg); p && !found;
         p = strstr(p + 1, file_in_msg)) {
        int l = 0, c = 0;
        if (sscanf(p + strlen(file_in_msg), ":%d:%d", &l, &c) == 2 && l > 0 && c > 0 &&
            (line == 0 || l == line))
            found = 1;
    }
    if (line)
        IT_CHECK(NULL, found, "%s: stderr does not name %s:%d:<column>:\n%s", what, file_in_msg,
                 line, err);
    else
        IT_CHECK(NULL, found, "%s: stderr does not name %s:<line>:<column>:\n%s", what,
                 file_in_msg, err);
    if (mention)
        IT_CHECK(NULL, strstr(err, mention), "%s: stderr does not mention '%s':\n%s", what,
                 mention, err);
    free(out);
    free(err);
}

static void write_variant(const char *name, const char *text, char **path)
{
    *path = th_path(dir, name);
    assert_int_equal(th_write_file(*path, text), 0);
}

static void test_validate(void **state)
{
    (void)state;
    dir = th_tempdir();
    assert_non_null(dir);
    good_path = th_path(dir, "siphon.yaml");
    char *offsets = th_path(dir, "offsets.json");
    th_siphon_conf_t conf = {
        .conninfo = "host=127.0.0.1 port=1 user=siphon password=" PASSWORD " dbname=erp",
        .slot = "siphon_cli",
        .bootstraps = "127.0.0.1:1",
        .topic_prefix = "erp",
        .offsets_path = offsets,
        .status_interval_ms = 500,
    };
    assert_int_equal(th_siphon_conf_write(good_path, &conf), 0);
    good_text = th_read_file(good_path, NULL, 0);

    /* the shipped customer mapping hashes PII with a key from the environment */
    setenv("SIPHON_PII_KEY", "it-0006-pii-key", 1);
    th_log("validate a good config (the repository's mappings and schemas): exit 0");
    char *out = NULL, *err = NULL;
    int code = siphon(&out, &err, "validate", "--config", good_path, NULL);
    IT_CHECK(NULL, code == 0, "exit code %d: %s%s", code, out, err);
    free(out);
    free(err);

    th_log("validate bad configs: exit 1 with file:line:column");
    char *p;
    int src_line = line_of(good_text, "source:");
    assert_true(src_line > 0);
    char *t = edit_lines(good_text, src_line + 1, 0, "  slott: siphon_cli\n");
    write_variant("unknown-key.yaml", t, &p);
    expect_invalid("unknown key 'slott' in source", p, "unknown-key.yaml", src_line + 1, "slott");
    free(t);
    free(p);

    int si_line = line_of(good_text, "  status_interval_ms:");
    assert_true(si_line > 0);
    t = edit_lines(good_text, si_line, 1, "  status_interval_ms: soon\n");
    write_variant("wrong-type.yaml", t, &p);
    expect_invalid("status_interval_ms: soon (wrong type)", p, "wrong-type.yaml", si_line,
                   "status_interval_ms");
    free(t);
    free(p);

    int off_line = line_of(good_text, "offsets:");
    assert_true(off_line > 0);
    t = edit_lines(good_text, off_line, 2, "offsets:\n  flush_interval_ms: 100\n");
    write_variant("missing-key.yaml", t, &p);
    expect_invalid("offsets without path (missing key)", p, "missing-key.yaml", 0, "path");
    free(t);
    free(p);

    int type_line = line_of(good_text, "  type: postgres");
    assert_true(type_line > 0);
    t = edit_lines(good_text, type_line, 1, "  type: [postgres]\n");
    write_variant("type-list.yaml", t, &p);
    expect_invalid("source type as a list (wrong type)", p, "type-list.yaml", type_line, NULL);
    free(t);
    free(p);

    t = edit_lines(good_text, src_line + 1, 0, "  conninfo_extra: \"password=" PASSWORD "\"\n");
    write_variant("secret-near-error.yaml", t, &p);
    expect_invalid("unknown key next to a password", p, "secret-near-error.yaml", src_line + 1,
                   NULL);
    free(t);
    free(p);

    /* mappings: a copy of the repository's sales_order mapping with a field the schema lacks */
    char *mapdir = th_path(dir, "mappings");
    char *emptyschemas = th_path(dir, "no-schemas");
    assert_int_equal(mkdir(mapdir, 0755), 0);
    assert_int_equal(mkdir(emptyschemas, 0755), 0);
    char *repo_map = th_path(th_source_dir(), "mappings/sales_order.yaml");
    char *map_text = th_read_file(repo_map, NULL, 0);
    assert_non_null(map_text);
    int fields_line = line_of(map_text, "fields:");
    IT_CHECK(NULL, fields_line > 0, "no 'fields:' line in %s", repo_map);
    /* indent like the line after fields: */
    const char *after_fields = map_text;
    for (int l = 1; l <= fields_line; l++)
        after_fields = strchr(after_fields, '\n') + 1;
    int indent = (int)strspn(after_fields, " ");
    char *bad_field = th_strf("%*sno_such_field: hdcust\n", indent, "");
    char *bad_map = edit_lines(map_text, fields_line + 1, 0, bad_field);
    char *bad_map_path = th_path(mapdir, "sales_order.yaml");
    assert_int_equal(th_write_file(bad_map_path, bad_map), 0);
    int mline = line_of(good_text, "mappings:");
    int sline = line_of(good_text, "schemas:");
    assert_true(mline > 0 && sline > 0);
    char *with_mapdir = th_strf("mappings: \"%s\"\n", mapdir);
    char *with_schemas = th_strf("schemas: \"%s\"\n", emptyschemas);
    t = edit_lines(good_text, mline, 1, with_mapdir);
    write_variant("bad-mapping.yaml", t, &p);
    expect_invalid("mapping to a field the schema lacks", p, "mappings/sales_order.yaml",
                   fields_line + 1, "no_such_field");
    free(p);

    assert_int_equal(th_write_file(bad_map_path, map_text), 0); /* the good mapping again */
    char *t3 = edit_lines(t, sline, 1, with_schemas);
    write_variant("missing-schema.yaml", t3, &p);
    expect_invalid("no schema file for the mapping", p, "sales_order.yaml", 0,
                   "sales_order.v1.avsc");
    free(p);
    free(t3);
    free(t);
    free(with_schemas);
    free(with_mapdir);

    th_log("  a config file that does not exist");
    char *missing = th_path(dir, "nope.yaml");
    code = siphon(&out, &err, "validate", "--config", missing, NULL);
    IT_CHECK(NULL, code == 1 && strstr(err, "nope.yaml"), "exit %d, stderr: %s", code, err);
    free(out);
    free(err);
    free(missing);

    free(bad_map_path);
    free(bad_map);
    free(bad_field);
    free(map_text);
    free(repo_map);
    free(mapdir);
    free(emptyschemas);
    free(offsets);
}

/* ---- secrets ---- */

static void test_password_never_printed(void **state)
{
    (void)state;
    th_log("siphon run at debug level, password through ${IT_PG_PASSWORD}, one change streamed");
    th_env_t *env = th_env_new();
    assert_non_null(env);
    setenv("IT_PG_PASSWORD", PASSWORD, 1);
    char *conninfo = th_strf("%s password=${IT_PG_PASSWORD}", th_pg_conninfo(env->pg));
    env->conf.conninfo = conninfo;
    env->conf.log_level = "debug";
    IT_CHECK(env, th_env_write_conf(env) == 0, "write conf");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    IT_CHECK(env, th_env_wait_streaming(env, 30000) == 0, "siphon did not stream");
    IT_CHECK(env, th_pg_exec(env->pg, "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdamt) "
                                      "VALUES ('01', 'PW1', 'C1', 1)") == 0, "insert");
    th_consumer_t *cons = th_consumer_new(env->kafka, env->topic);
    th_msgs_t msgs = {0};
    IT_CHECK(env, th_env_consume(env, cons, &msgs, 1, 20000) == 1, "the change did not arrive");
    th_msgs_free(&msgs);
    th_consumer_destroy(cons);
    IT_CHECK(env, th_env_siphon_stop(env, SIGTERM, 30000) == 0, "exit code after SIGTERM");

    th_log("siphon run with a literal password against a server that is not there");
    char *conninfo2 = th_strf("host=127.0.0.1 port=1 user=postgres password=%s "
                              "dbname=postgres connect_timeout=2", PASSWORD);
    env->conf.conninfo = conninfo2;
    IT_CHECK(env, th_env_write_conf(env) == 0, "write conf");
    IT_CHECK(env, th_env_siphon_start(env) == 0, "siphon did not start");
    th_sleep_ms(2500);
    int code = th_env_siphon_stop(env, SIGTERM, 15000);
    th_log("  it exited with %d", code);
    IT_CHECK(env, code >= 0, "siphon did not exit within 15 s of SIGTERM");

    th_log("no output of any siphon invocation contains the password");
    for (int i = 0; i < env->nruns; i++) {
        const char *log = th_proc_log_path(env->runs[i]);
        char *text = th_read_file(log, NULL, 0);
        IT_CHECK(env, text && strlen(text) > 0, "siphon run %d printed nothing at debug level",
                 i + 1);
        IT_CHECK(env, !strstr(text, PASSWORD), "the password appears in the log of run %d",
                 i + 1);
        free(text);
    }
    IT_CHECK(NULL, all_output && !strstr(all_output, PASSWORD),
             "the password appears in the output of a siphon command:\n%s", all_output);
    free(conninfo);
    free(conninfo2);
    th_env_destroy(env);
}

static int group_teardown(void **state)
{
    (void)state;
    if (dir)
        th_tempdir_remove(dir);
    free(dir);
    free(good_path);
    free(good_text);
    free(all_output);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_password_never_printed),
    };
    return cmocka_run_group_tests_name("0006-cli", tests, NULL, group_teardown);
}
