/*
 * test_config.c - siphon.yaml loading: the golden cases under tests/golden/config/ (one folder
 * per case: siphon.yaml, an optional `env` file of NAME=value lines set for the case, and either
 * expected.txt, the loaded config dumped as `key: value` lines, or error.txt, the exact error
 * message), then interpolation, defaults and redaction tested directly.
 *
 * SIPHON_GOLDEN_UPDATE=1 writes the actual results into the case folders instead of comparing
 * (for a new case; review the files before committing them).
 */
#include <dirent.h>
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

#include "config/config.h"
#include "config/config_int.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

#define MAX_CASES 128

static char golden_root[2048];

/* ---- small file helpers ---- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    siphon_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(siphon_buf_append(&b, chunk, n), 0);
    fclose(f);
    assert_int_equal(siphon_buf_appendc(&b, '\0'), 0);
    char *s = (char *)b.data;
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '\n')
        s[--len] = '\0';
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
}

/* Replace every occurrence of `from` in `s` by `to`; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    siphon_buf_t b = {0};
    size_t fl = strlen(from);
    const char *p = s, *q;
    while (fl && (q = strstr(p, from))) {
        assert_int_equal(siphon_buf_append(&b, p, (size_t)(q - p)), 0);
        assert_int_equal(siphon_buf_append(&b, to, strlen(to)), 0);
        p = q + fl;
    }
    assert_int_equal(siphon_buf_append(&b, p, strlen(p) + 1), 0);
    return (char *)b.data;
}

/* The config as `key: value` lines, in config.h order; NULL strings as (null). */
static char *dump_config(const siphon_config_t *cfg)
{
    siphon_buf_t b = {0};
#define S(k, v) siphon_buf_printf(&b, "%s: %s\n", k, (v) ? (v) : "(null)")
#define I(k, v) siphon_buf_printf(&b, "%s: %lld\n", k, (long long)(v))
    S("path", cfg->path);
    S("name", cfg->name);
    S("source.type", cfg->source.type);
    S("source.conninfo", cfg->source.conninfo);
    S("source.slot", cfg->source.slot);
    S("source.publication", cfg->source.publication);
    I("source.create_slot", cfg->source.create_slot);
    I("source.create_publication", cfg->source.create_publication);
    I("source.status_interval_ms", cfg->source.status_interval_ms);
    I("source.snapshot", cfg->source.snapshot);
    I("source.snapshot_connections", cfg->source.snapshot_connections);
    I("source.snapshot_chunk_rows", cfg->source.snapshot_chunk_rows);
    if (cfg->source.type && strcmp(cfg->source.type, "odbc") == 0) {
        S("odbc.dsn", cfg->odbc.dsn);
        I("odbc.poll_interval_ms", cfg->odbc.poll_interval_ms);
        I("odbc.max_rows_per_poll", cfg->odbc.max_rows_per_poll);
        I("odbc.safety_lag_ms", cfg->odbc.safety_lag_ms);
        I("odbc.reconcile_interval_s", cfg->odbc.reconcile_interval_s);
        I("odbc.reconcile_chunk", cfg->odbc.reconcile_chunk);
        S("odbc.state_dir", cfg->odbc.state_dir);
        for (int i = 0; i < cfg->odbc.ntables; i++) {
            const struct siphon_config_odbc_table *t = &cfg->odbc.tables[i];
            siphon_buf_printf(&b, "odbc.tables[%d]: %s mode=%s ts=%s inc=%s keys=", i, t->table,
                              t->mode, t->timestamp_column ? t->timestamp_column : "(null)",
                              t->incrementing_column ? t->incrementing_column : "(null)");
            for (int j = 0; j < t->nkey_columns; j++)
                siphon_buf_printf(&b, "%s%s", j ? "," : "", t->key_columns[j]);
            siphon_buf_printf(&b, "\n");
        }
    }
    S("mappings", cfg->mappings_dir);
    S("schemas", cfg->schemas_dir);
    S("sink.type", cfg->sink.type);
    S("sink.topic_prefix", cfg->sink.topic_prefix);
    I("sink.tombstones", cfg->sink.tombstones);
    for (int i = 0; i < cfg->sink.nprops; i++)
        siphon_buf_printf(&b, "sink.properties[%d]: %s = %s\n", i, cfg->sink.props[i].key,
                          cfg->sink.props[i].value);
    S("offsets.path", cfg->offsets.path);
    I("offsets.flush_interval_ms", cfg->offsets.flush_interval_ms);
    I("pipeline.max_inflight_bytes", cfg->pipeline.max_inflight_bytes);
    I("log.level", cfg->log.level);
    I("log.json", cfg->log.json);
    I("schema_compatibility", cfg->schema_compatibility);
    if (cfg->sink.path) {
        S("sink.path", cfg->sink.path);
        I("sink.roll_bytes", cfg->sink.roll_bytes);
        I("sink.roll_ms", cfg->sink.roll_ms);
    }
#undef S
#undef I
    siphon_buf_appendc(&b, '\0');
    char *s = (char *)b.data;
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '\n')
        s[--len] = '\0';
    return s;
}

/* ---- golden cases ---- */

typedef struct golden_case {
    char name[256];
    char dir[PATH_MAX];
} golden_case_t;

static void apply_env(const char *dir, int set)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/env", dir);
    char *env = read_text(path);
    if (!env)
        return;
    char *save = NULL;
    for (char *line = strtok_r(env, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        assert_non_null(eq);
        *eq = '\0';
        if (set)
            assert_int_equal(setenv(line, eq + 1, 1), 0);
        else
            unsetenv(line);
    }
    free(env);
}

static void run_golden(void **state)
{
    const golden_case_t *gc = *state;
    char cwd[PATH_MAX], path[PATH_MAX + 32], errbuf[1024] = "";
    siphon_config_t *cfg = NULL;
    const char *update = getenv("SIPHON_GOLDEN_UPDATE");

    unsetenv("SIPHON_TEST_UNSET_VAR");
    apply_env(gc->dir, 1);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(gc->dir), 0);
    int rc = siphon_config_load(&cfg, "siphon.yaml", errbuf, sizeof(errbuf));
    assert_int_equal(chdir(cwd), 0);
    apply_env(gc->dir, 0);

    char *actual;
    if (rc == 0) {
        assert_non_null(cfg);
        char *raw = dump_config(cfg);
        actual = replace_all(raw, gc->dir, "<dir>");
        free(raw);
        siphon_config_destroy(cfg);
    } else {
        assert_null(cfg);
        assert_true(rc < 0);
        assert_true(errbuf[0] != '\0');
        /* a message naming a file of the case shows it under <dir>, so cases move freely */
        actual = replace_all(errbuf, gc->dir, "<dir>");
    }
    if (update && strcmp(update, "1") == 0) {
        snprintf(path, sizeof(path), "%s/%s", gc->dir, rc == 0 ? "expected.txt" : "error.txt");
        write_text(path, actual);
        free(actual);
        return;
    }
    snprintf(path, sizeof(path), "%s/expected.txt", gc->dir);
    char *expected = read_text(path);
    snprintf(path, sizeof(path), "%s/error.txt", gc->dir);
    char *experr = read_text(path);
    if (!expected && !experr)
        fail_msg("case %s has neither expected.txt nor error.txt", gc->name);
    if (expected) {
        if (rc != 0)
            fail_msg("case %s: expected success, got error: %s", gc->name, actual);
        assert_string_equal(actual, expected);
    } else {
        if (rc == 0)
            fail_msg("case %s: expected error '%s', but it loaded", gc->name, experr);
        assert_int_equal(rc, SIPHON_EINVAL);
        assert_string_equal(actual, experr);
    }
    free(expected);
    free(experr);
    free(actual);
}

static int cmp_case(const void *a, const void *b)
{
    return strcmp(((const golden_case_t *)a)->name, ((const golden_case_t *)b)->name);
}

/* ---- interpolation ---- */

static char *interp_ok(const char *in)
{
    char *out = NULL, errbuf[256] = "";
    int rc = siphon_config_interpolate(&out, in, errbuf, sizeof(errbuf));
    if (rc)
        fail_msg("interpolating '%s' failed: %s", in, errbuf);
    return out;
}

static void expect_interp(const char *in, const char *want)
{
    char *out = interp_ok(in);
    assert_string_equal(out, want);
    free(out);
}

static void test_interpolate_env(void **state)
{
    setenv("SIPHON_T_A", "alpha", 1);
    setenv("SIPHON_T_EMPTY", "", 1);
    setenv("SIPHON_T_DOLLAR", "x${SIPHON_T_A}y", 1);
    expect_interp("plain text", "plain text");
    expect_interp("${SIPHON_T_A}", "alpha");
    expect_interp("pre ${SIPHON_T_A} mid ${SIPHON_T_A}post", "pre alpha mid alphapost");
    expect_interp("[${SIPHON_T_EMPTY}]", "[]");
    /* a value is inserted as is, never interpolated again */
    expect_interp("${SIPHON_T_DOLLAR}", "x${SIPHON_T_A}y");
    /* escapes and lone dollars */
    expect_interp("$${SIPHON_T_A}", "${SIPHON_T_A}");
    /* "$${" always means a literal "${", wherever the scan meets it */
    expect_interp("a$$${SIPHON_T_A}", "a$${SIPHON_T_A}");
    expect_interp("cost $5 and $$ and $", "cost $5 and $$ and $");
    expect_interp("$ ${SIPHON_T_A}$${", "$ alpha${");
    expect_interp("", "");
    unsetenv("SIPHON_T_A");
    unsetenv("SIPHON_T_EMPTY");
    unsetenv("SIPHON_T_DOLLAR");
}

static void test_interpolate_file(void **state)
{
    char dir[] = "/tmp/siphon-config-test-XXXXXX";
    char path[PATH_MAX], ref[PATH_MAX + 16];
    assert_non_null(mkdtemp(dir));

    static const struct {
        const char *content;
        const char *want;
    } cases[] = {
        {"hunter2\n", "hunter2"},
        {"hunter2", "hunter2"},
        {"hunter2\r\n", "hunter2"},
        {"two\n\n", "two\n"},
        {"multi\nline\n", "multi\nline"},
        {"", ""},
    };
    snprintf(path, sizeof(path), "%s/secret", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(cases[i].content, f);
        fclose(f);
        snprintf(ref, sizeof(ref), "<${file:%s}>", path);
        char *out = interp_ok(ref);
        char want[64];
        snprintf(want, sizeof(want), "<%s>", cases[i].want);
        assert_string_equal(out, want);
        free(out);
    }

    /* relative to the base folder (the config file's folder) */
    char *out = NULL, errbuf[256];
    size_t off = 99;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("rel-secret\n", f);
    fclose(f);
    assert_int_equal(siphon_config__interpolate(&out, "pw=${file:secret}", 17, dir, &off, errbuf,
                                                sizeof(errbuf)),
                     0);
    assert_string_equal(out, "pw=rel-secret");
    free(out);

    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("abc\0def", 1, 7, f);
    fclose(f);
    assert_int_equal(siphon_config__interpolate(&out, "${file:secret}", 14, dir, &off, errbuf,
                                                sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_null(out);
    assert_non_null(strstr(errbuf, "contains a NUL byte"));
    assert_non_null(strstr(errbuf, path));

    unlink(path);
    rmdir(dir);
}

static void expect_interp_error(const char *in, size_t want_off, const char *want)
{
    char *out = (char *)"untouched", errbuf[512] = "";
    size_t off = 999;
    int rc = siphon_config__interpolate(&out, in, strlen(in), "/nonexistent-siphon-dir", &off,
                                        errbuf, sizeof(errbuf));
    assert_int_equal(rc, SIPHON_EINVAL);
    assert_null(out);
    assert_int_equal(off, want_off);
    assert_string_equal(errbuf, want);
}

static void test_interpolate_errors(void **state)
{
    unsetenv("SIPHON_T_UNSET");
    setenv("SIPHON_T_SET", "v", 1);
    expect_interp_error("a=${SIPHON_T_SET} b=${SIPHON_T_UNSET}", 20,
                        "environment variable 'SIPHON_T_UNSET' is not set (expected it in "
                        "Siphon's environment; write $${ for a literal ${)");
    expect_interp_error("x ${SIPHON_T_SET", 2,
                        "'${' is not closed (expected ${NAME} or ${file:/path}; write $${ for a "
                        "literal ${)");
    expect_interp_error("${BAD-NAME}", 0,
                        "'${BAD-NAME}' is not a valid reference (expected ${NAME} with letters, "
                        "digits and _, or ${file:/path}; write $${ for a literal ${)");
    expect_interp_error("${}", 0,
                        "'${}' is not a valid reference (expected ${NAME} with letters, digits "
                        "and _, or ${file:/path}; write $${ for a literal ${)");
    expect_interp_error("${1X}", 0,
                        "'${1X}' is not a valid reference (expected ${NAME} with letters, digits "
                        "and _, or ${file:/path}; write $${ for a literal ${)");
    expect_interp_error("k=${file:}", 2,
                        "'${file:}' names no file (expected ${file:/path/to/secret})");
    expect_interp_error("k=${file:pw.txt}", 2,
                        "could not read file '/nonexistent-siphon-dir/pw.txt' named in "
                        "${file:...}: No such file or directory (expected a readable file "
                        "holding the value)");

    /* the public wrapper prefixes what failed and keeps the variable's name */
    char *out = NULL, errbuf[512];
    assert_int_equal(siphon_config_interpolate(&out, "p=${SIPHON_T_UNSET}", errbuf,
                                               sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_null(out);
    assert_string_equal(errbuf, "could not interpolate value: environment variable "
                                "'SIPHON_T_UNSET' is not set (expected it in Siphon's "
                                "environment; write $${ for a literal ${)");
    assert_int_equal(siphon_config_interpolate(NULL, "x", errbuf, sizeof(errbuf)),
                     SIPHON_EINVAL);
    unsetenv("SIPHON_T_SET");
}

/* ---- defaults, paths, booleans ---- */

static void test_default_slot(void **state)
{
    char *s = siphon_config__default_slot("ERP Orders-01");
    assert_string_equal(s, "siphon_erp_orders_01");
    free(s);
    s = siphon_config__default_slot("b\xc3\xbc" "cher"); /* "bücher": 2 bytes -> 2 underscores */
    assert_string_equal(s, "siphon_b__cher");
    free(s);
    char longname[200];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    s = siphon_config__default_slot(longname);
    assert_int_equal(strlen(s), 63);
    assert_memory_equal(s, "siphon_aaaa", 11);
    free(s);
}

static void test_resolve(void **state)
{
    char *s;
    s = siphon_config__resolve("/etc/siphon", "mappings");
    assert_string_equal(s, "/etc/siphon/mappings");
    free(s);
    s = siphon_config__resolve("/etc/siphon/", "./schemas");
    assert_string_equal(s, "/etc/siphon/schemas");
    free(s);
    s = siphon_config__resolve("/etc/siphon", "/var/lib/x.json");
    assert_string_equal(s, "/var/lib/x.json");
    free(s);
    s = siphon_config__resolve("/", "x");
    assert_string_equal(s, "/x");
    free(s);
    s = siphon_config__resolve(NULL, "rel/x");
    assert_string_equal(s, "rel/x");
    free(s);
}

static const char minimal_head[] = "name: erp\n"
                                   "source:\n"
                                   "  type: postgres\n"
                                   "  conninfo: dbname=erp\n";

static siphon_config_t *parse_ok(const char *text, const char *basedir)
{
    siphon_config_t *cfg = NULL;
    char errbuf[1024] = "";
    int rc = siphon_config_parse(&cfg, text, strlen(text), "inline.yaml", basedir, errbuf,
                                 sizeof(errbuf));
    if (rc)
        fail_msg("parse failed: %s", errbuf);
    return cfg;
}

static void test_booleans(void **state)
{
    static const struct {
        const char *word;
        int value;
    } words[] = {{"true", 1}, {"True", 1}, {"TRUE", 1}, {"yes", 1},   {"Yes", 1},
                 {"on", 1},   {"ON", 1},   {"y", 1},    {"false", 0}, {"False", 0},
                 {"no", 0},   {"NO", 0},   {"off", 0},  {"Off", 0},   {"n", 0}};
    char text[512];
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        snprintf(text, sizeof(text),
                 "%s  create_slot: %s\nsink: {type: stdout, tombstones: %s}\n"
                 "offsets: {path: x}\n",
                 minimal_head, words[i].word, words[i].word);
        siphon_config_t *cfg = parse_ok(text, NULL);
        assert_int_equal(cfg->source.create_slot, words[i].value);
        assert_int_equal(cfg->sink.tombstones, words[i].value);
        assert_int_equal(cfg->source.create_publication, 1);
        siphon_config_destroy(cfg);
    }
}

static void test_parse_paths(void **state)
{
    char text[512];
    snprintf(text, sizeof(text), "%ssink: {type: stdout}\noffsets: {path: state/o.json}\n",
             minimal_head);
    siphon_config_t *cfg = parse_ok(text, NULL);
    assert_string_equal(cfg->path, "inline.yaml");
    assert_string_equal(cfg->mappings_dir, "mappings");
    assert_string_equal(cfg->schemas_dir, "schemas");
    assert_string_equal(cfg->offsets.path, "state/o.json");
    assert_string_equal(cfg->sink.topic_prefix, "erp"); /* stdout: defaults to the name */
    siphon_config_destroy(cfg);

    cfg = parse_ok(text, "/etc/siphon");
    assert_string_equal(cfg->mappings_dir, "/etc/siphon/mappings");
    assert_string_equal(cfg->schemas_dir, "/etc/siphon/schemas");
    assert_string_equal(cfg->offsets.path, "/etc/siphon/state/o.json");
    siphon_config_destroy(cfg);
}

/* Loading by a path with folders resolves against that folder, whatever the cwd. */
static void test_load_from_elsewhere(void **state)
{
    char path[PATH_MAX + 64], want[PATH_MAX + 64], real[PATH_MAX], errbuf[1024];
    siphon_config_t *cfg = NULL;
    snprintf(path, sizeof(path), "%s/valid-minimal/siphon.yaml", golden_root);
    assert_int_equal(siphon_config_load(&cfg, path, errbuf, sizeof(errbuf)), 0);
    snprintf(path, sizeof(path), "%s/valid-minimal", golden_root);
    assert_non_null(realpath(path, real));
    snprintf(want, sizeof(want), "%s/mappings", real);
    assert_string_equal(cfg->mappings_dir, want);
    snprintf(want, sizeof(want), "%s/erp.offsets.json", real);
    assert_string_equal(cfg->offsets.path, want);
    siphon_config_destroy(cfg);

    cfg = (siphon_config_t *)1;
    assert_int_equal(siphon_config_load(&cfg, "/nonexistent/siphon.yaml", errbuf,
                                        sizeof(errbuf)),
                     SIPHON_ENOTFOUND);
    assert_null(cfg);
    assert_string_equal(errbuf, "could not open configuration file '/nonexistent/siphon.yaml': "
                                "No such file or directory (expected a readable siphon.yaml; "
                                "pass its path with --config)");
}

static void test_parse_errors_inline(void **state)
{
    char errbuf[1024];
    siphon_config_t *cfg = (siphon_config_t *)1;
    /* the message names the file name given, and the mark is 1-based */
    const char *text = "name: erp\nsource: {type: postgres, conninfo: x, slot: [a]}\n"
                       "sink: {type: stdout}\noffsets: {path: x}\n";
    assert_int_equal(siphon_config_parse(&cfg, text, strlen(text), "erp.yaml", NULL, errbuf,
                                         sizeof(errbuf)),
                     SIPHON_EINVAL);
    assert_null(cfg);
    assert_string_equal(errbuf, "erp.yaml:2:45: wrong type for source.slot: found a list "
                                "(expected a string, or remove the key to use the default)");
    /* a tiny errbuf is truncated, not overrun */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_int_equal(siphon_config_parse(&cfg, text, strlen(text), "erp.yaml", NULL, small,
                                         sizeof(small)),
                     SIPHON_EINVAL);
    assert_string_equal(small, "erp.yam");
}

/* ---- redaction ---- */

static void expect_redact(const char *in, const char *want)
{
    char buf[512];
    memset(buf, 'x', sizeof(buf));
    siphon_config_redact(in, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_redact(void **state)
{
    expect_redact("host=db dbname=erp user=siphon password=hunter2",
                  "host=db dbname=erp user=siphon password=********");
    expect_redact("password=hunter2 host=db", "password=******** host=db");
    expect_redact("host=db password = 'it\\'s a secret' user=x",
                  "host=db password = ******** user=x");
    expect_redact("  host=db\tPASSWORD=pw\\ with\\ space  sslmode=require ",
                  "  host=db\tPASSWORD=********  sslmode=require ");
    expect_redact("sslpassword=keypw host=db", "sslpassword=******** host=db");
    expect_redact("host=db user=password", "host=db user=password");
    expect_redact("host=db password=''", "host=db password=********");
    expect_redact("host=db password", "host=db password ********");
    expect_redact("host=db password hunter2", "host=db password ********");
    expect_redact("dbname=erp", "dbname=erp");
    expect_redact("", "");
    expect_redact(NULL, "");

    expect_redact("postgresql://siphon:hunter2@db.example:5432/erp",
                  "postgresql://siphon:********@db.example:5432/erp");
    expect_redact("postgres://siphon@db/erp?password=hunter2&sslmode=require",
                  "postgres://siphon@db/erp?password=********&sslmode=require");
    expect_redact("postgresql://u:p%40ss@h1:5432,h2:5433/erp?sslpassword=x&password=y",
                  "postgresql://u:********@h1:5432,h2:5433/erp?sslpassword=********"
                  "&password=********");
    expect_redact("postgresql://db.example/erp?user=siphon", "postgresql://db.example/erp?user=siphon");
    expect_redact("postgresql:///erp?host=/var/run/postgresql",
                  "postgresql:///erp?host=/var/run/postgresql");

    /* truncation keeps the buffer terminated and never shows more of the secret */
    char small[16];
    siphon_config_redact("password=hunter2", small, sizeof(small));
    assert_string_equal(small, "password=******");
    siphon_config_redact("password=hunter2", small, 0); /* no write at all */
}

int main(void)
{
    const char *srcdir = getenv("SIPHON_SOURCE_DIR");
    snprintf(golden_root, sizeof(golden_root), "%s/tests/golden/config",
             srcdir ? srcdir : ".");

    static golden_case_t cases[MAX_CASES];
    int ncases = 0;
    DIR *d = opendir(golden_root);
    if (!d) {
        fprintf(stderr, "cannot open %s (set SIPHON_SOURCE_DIR)\n", golden_root);
        return 1;
    }
    struct dirent *de;
    while ((de = readdir(d)) && ncases < MAX_CASES) {
        if (de->d_name[0] == '.')
            continue;
        golden_case_t *gc = &cases[ncases];
        snprintf(gc->name, sizeof(gc->name), "%s", de->d_name);
        snprintf(gc->dir, sizeof(gc->dir), "%s/%s", golden_root, de->d_name);
        struct stat st;
        if (stat(gc->dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            /* the dump shows paths relative to the case folder: compare with its real path */
            char real[PATH_MAX];
            if (realpath(gc->dir, real))
                snprintf(gc->dir, sizeof(gc->dir), "%s", real);
            ncases++;
        }
    }
    closedir(d);
    qsort(cases, (size_t)ncases, sizeof(cases[0]), cmp_case);

    static struct CMUnitTest tests[MAX_CASES + 16];
    static char names[MAX_CASES][300];
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        snprintf(names[i], sizeof(names[i]), "golden/config/%.200s", cases[i].name);
        tests[n] = (struct CMUnitTest){names[i], run_golden, NULL, NULL, &cases[i]};
        n++;
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_interpolate_env),
        cmocka_unit_test(test_interpolate_file),
        cmocka_unit_test(test_interpolate_errors),
        cmocka_unit_test(test_default_slot),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_parse_paths),
        cmocka_unit_test(test_load_from_elsewhere),
        cmocka_unit_test(test_parse_errors_inline),
        cmocka_unit_test(test_redact),
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        tests[n++] = fixed[i];
    if (ncases < 10) {
        fprintf(stderr, "only %d golden config cases found under %s\n", ncases, golden_root);
        return 1;
    }
    return _cmocka_run_group_tests("config", tests, (size_t)n, NULL, NULL);
}
