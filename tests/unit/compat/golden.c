/*
 * golden.c - the data-driven half of the compatibility tests: every folder under
 * tests/golden/compat/ is a case (tests/golden/compat/README.md describes the four kinds).
 *   resolve/<case>  reader.avsc reads writer.avsc's data -> expected.txt, and the other way
 *                   round -> expected-reverse.txt ("path: reason" lines, or "compatible")
 *   modes/<case>    new.avsc against v1.avsc, v2.avsc... under each of the seven modes
 *   history/<case>  steps/NN-<what>/: the schema files of one start, recorded in order in one
 *                   history file (reloaded from disk at every step); what each start decided,
 *                   then what the file holds
 *   diff/<case>     a.avsc -> b.avsc, field by field
 * SIPHON_GOLDEN_UPDATE=1 rewrites the expected files from what the code does (review the diff).
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

#include "avro/siphon_avro.h"
#include "compat_test.h"
#include "core/buf.h"
#include "core/error.h"

/* ---- helpers ---- */

const char *tc_source_dir(void)
{
    const char *s = getenv("SIPHON_SOURCE_DIR");
    return s && *s ? s : ".";
}

char *tc_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    siphon_buf_t b = {0};
    char chunk[4096];
    size_t n;
    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        siphon_buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    siphon_buf_appendc(&b, '\0');
    return (char *)b.data;
}

int tc_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

void tc_tmpdir(char *buf, size_t size)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, size, "%s/siphon-compat-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(buf));
}

void tc_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        char p[PATH_MAX];
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            tc_rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir (no dot files) ending with suffix ("" for all). *n set; caller frees
 * each and the array. NULL when the folder cannot be read. */
static char **list_dir(const char *dir, const char *suffix, int *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int cap = 16;
    char **v;
    *n = 0;
    if (!d)
        return NULL;
    v = calloc((size_t)cap, sizeof(char *));
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (de->d_name[0] == '.' || l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        if (*n == cap) {
            cap *= 2;
            v = realloc(v, (size_t)cap * sizeof(char *));
        }
        v[(*n)++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(v, (size_t)*n, sizeof(char *), cmp_names);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int tc_golden_cases(const char *kind, char ***dirs, char ***names)
{
    char root[PATH_MAX];
    int n;
    snprintf(root, sizeof(root), "%s/tests/golden/compat/%s", tc_source_dir(), kind);
    char **list = list_dir(root, "", &n);
    if (!list)
        return -1;
    *dirs = calloc((size_t)n + 1, sizeof(char *));
    *names = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char buf[PATH_MAX + 64];
        snprintf(buf, sizeof(buf), "%s/%s", root, list[i]);
        (*dirs)[i] = strdup(buf);
        snprintf(buf, sizeof(buf), "compat/%s/%s", kind, list[i]);
        (*names)[i] = strdup(buf);
    }
    free_list(list, n);
    return n;
}

/* Compare actual with dir/file, or rewrite it under SIPHON_GOLDEN_UPDATE=1. */
static void expect_file(const char *dir, const char *file, const char *actual)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    const char *update = getenv("SIPHON_GOLDEN_UPDATE");
    if (update && !strcmp(update, "1")) {
        assert_int_equal(tc_write_file(path, actual), 0);
        return;
    }
    char *expected = tc_read_file(path, NULL);
    if (!expected)
        fail_msg("%s is missing", path);
    if (strcmp(expected, actual) != 0)
        print_error("%s differs.\n--- expected\n%s--- actual\n%s", path, expected, actual);
    assert_string_equal(actual, expected);
    free(expected);
}

static siphon_avro_compat_schema_t *load_avsc(const char *dir, const char *file)
{
    char path[PATH_MAX], err[1024];
    size_t len = 0;
    siphon_avro_compat_schema_t *cs = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *text = tc_read_file(path, &len);
    if (!text)
        fail_msg("cannot read %s", path);
    if (siphon_avro_compat_schema_new(&cs, text, len, path, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    free(text);
    return cs;
}

/* Issues as "path: reason" lines (contexts shown when set), or "compatible". */
static void append_issues(siphon_buf_t *out, const char *prefix,
                          const siphon_avro_compat_result_t *res)
{
    if (res->nissues == 0) {
        siphon_buf_printf(out, "%scompatible\n", prefix);
        return;
    }
    for (int i = 0; i < res->nissues; i++)
        siphon_buf_printf(out, "%s%s%s%s: %s\n", prefix, res->issues[i].context
                                                             ? res->issues[i].context
                                                             : "",
                          res->issues[i].context ? ": " : "", res->issues[i].path,
                          res->issues[i].reason);
}

/* ---- resolve ---- */

static char *resolve_text(const siphon_avro_compat_schema_t *r,
                          const siphon_avro_compat_schema_t *w)
{
    siphon_avro_compat_result_t res = {0};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_compat_check(&res, r, w, NULL, NULL), 0);
    append_issues(&out, "", &res);
    siphon_avro_compat_result_free(&res);
    assert_int_equal(res.nissues, 0); /* free leaves it empty */
    siphon_buf_appendc(&out, '\0');
    return (char *)out.data;
}

void tc_run_resolve(void **state)
{
    const char *dir = *state;
    siphon_avro_compat_schema_t *r = load_avsc(dir, "reader.avsc");
    siphon_avro_compat_schema_t *w = load_avsc(dir, "writer.avsc");
    char *fwd = resolve_text(r, w);
    char *rev = resolve_text(w, r);
    expect_file(dir, "expected.txt", fwd);
    expect_file(dir, "expected-reverse.txt", rev);
    /* a schema always reads its own data */
    char *self_r = resolve_text(r, r), *self_w = resolve_text(w, w);
    assert_string_equal(self_r, "compatible\n");
    assert_string_equal(self_w, "compatible\n");
    free(self_r);
    free(self_w);
    free(fwd);
    free(rev);
    siphon_avro_compat_schema_destroy(r);
    siphon_avro_compat_schema_destroy(w);
}

/* ---- modes ---- */

void tc_run_modes(void **state)
{
    const char *dir = *state;
    static const siphon_avro_compat_mode_t modes[] = {
        SIPHON_COMPAT_BACKWARD, SIPHON_COMPAT_BACKWARD_TRANSITIVE, SIPHON_COMPAT_FORWARD,
        SIPHON_COMPAT_FORWARD_TRANSITIVE, SIPHON_COMPAT_FULL, SIPHON_COMPAT_FULL_TRANSITIVE,
        SIPHON_COMPAT_NONE};
    int n;
    char **files = list_dir(dir, ".avsc", &n);
    assert_non_null(files);
    siphon_avro_compat_schema_t *prev[16];
    char *labels[16];
    int nprev = 0;
    siphon_avro_compat_schema_t *next = NULL;
    for (int i = 0; i < n; i++) {
        if (!strcmp(files[i], "new.avsc")) {
            next = load_avsc(dir, files[i]);
            continue;
        }
        assert_true(nprev < 16);
        labels[nprev] = strndup(files[i], strlen(files[i]) - 5); /* "v1" */
        prev[nprev++] = load_avsc(dir, files[i]);
    }
    assert_non_null(next);
    assert_true(nprev > 0);
    siphon_buf_t out = {0};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        siphon_avro_compat_result_t res = {0};
        char prefix[64];
        assert_int_equal(siphon_avro_compat_check_mode(
                             &res, modes[m], next, (const siphon_avro_compat_schema_t *const *)prev,
                             (const char *const *)labels, nprev, NULL),
                         0);
        snprintf(prefix, sizeof(prefix), "%s: ", siphon_avro_compat_mode_name(modes[m]));
        append_issues(&out, prefix, &res);
        siphon_avro_compat_result_free(&res);
    }
    siphon_buf_appendc(&out, '\0');
    expect_file(dir, "expected.txt", (const char *)out.data);
    siphon_buf_free(&out);
    for (int i = 0; i < nprev; i++) {
        siphon_avro_compat_schema_destroy(prev[i]);
        free(labels[i]);
    }
    siphon_avro_compat_schema_destroy(next);
    free_list(files, n);
}

/* ---- history ---- */

/* Replace every occurrence of `from` in the NUL-terminated buffer by `to` (in place, grows). */
static void replace_all(siphon_buf_t *b, const char *from, const char *to)
{
    siphon_buf_t o = {0};
    const char *s = (const char *)b->data;
    size_t fl = strlen(from);
    const char *p;
    while ((p = strstr(s, from))) {
        siphon_buf_append(&o, s, (size_t)(p - s));
        siphon_buf_append(&o, to, strlen(to));
        s = p + fl;
    }
    siphon_buf_append(&o, s, strlen(s) + 1);
    siphon_buf_free(b);
    *b = o;
}

/* 16 hex digits in a row -> "<fp>" (fingerprints depend on generated key schemas). */
static void mask_fingerprints(char *s)
{
    char *w = s;
    for (char *p = s; *p;) {
        int k = 0;
        while (k < 16 && ((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'f')))
            k++;
        if (k == 16 && !((p[16] >= '0' && p[16] <= '9') || (p[16] >= 'a' && p[16] <= 'f'))) {
            memcpy(w, "<fp>", 4);
            w += 4;
            p += 16;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

static char **read_key_fields(const char *dir, int *n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/key", dir);
    char *text = tc_read_file(path, NULL);
    char **v = calloc(8, sizeof(char *));
    *n = 0;
    if (!text)
        fail_msg("%s is missing", path);
    for (char *tok = strtok(text, " \t\r\n,"); tok && *n < 8; tok = strtok(NULL, " \t\r\n,"))
        v[(*n)++] = strdup(tok);
    free(text);
    return v;
}

static siphon_avro_compat_mode_t step_mode(const char *sdir)
{
    char path[PATH_MAX * 2], err[256];
    siphon_avro_compat_mode_t mode = SIPHON_COMPAT_BACKWARD;
    snprintf(path, sizeof(path), "%s/mode", sdir);
    char *text = tc_read_file(path, NULL);
    if (text) {
        text[strcspn(text, "\r\n")] = '\0';
        if (siphon_avro_compat_mode_parse(&mode, text, err, sizeof(err)) < 0)
            fail_msg("%s: %s", path, err);
        free(text);
    }
    return mode;
}

static const char *verdict_name(siphon_schema_verdict_t v)
{
    switch (v) {
    case SIPHON_SCHEMA_NEW: return "new";
    case SIPHON_SCHEMA_UNCHANGED: return "unchanged";
    case SIPHON_SCHEMA_COMPATIBLE: return "compatible";
    case SIPHON_SCHEMA_INCOMPATIBLE: return "incompatible";
    }
    return "?";
}

void tc_run_history(void **state)
{
    const char *dir = *state;
    char tmp[PATH_MAX], hpath[PATH_MAX + 32], stepsdir[PATH_MAX], err[8192];
    int nkey, nsteps;
    char **keys = read_key_fields(dir, &nkey);
    siphon_buf_t out = {0};

    tc_tmpdir(tmp, sizeof(tmp));
    snprintf(hpath, sizeof(hpath), "%s/golden.schemas.json", tmp);
    snprintf(stepsdir, sizeof(stepsdir), "%s/steps", dir);
    char **steps = list_dir(stepsdir, "", &nsteps);
    assert_non_null(steps);
    assert_true(nsteps > 0);
    for (int s = 0; s < nsteps; s++) {
        char sdir[PATH_MAX + 300];
        int nfiles;
        snprintf(sdir, sizeof(sdir), "%s/%s", stepsdir, steps[s]);
        siphon_avro_compat_mode_t mode = step_mode(sdir);
        char **files = list_dir(sdir, ".avsc", &nfiles);
        siphon_schema_t *sch[8];
        siphon_avro_stream_t *st[8];
        siphon_schema_outcome_t oc[8];
        assert_true(nfiles > 0 && nfiles <= 8);
        for (int i = 0; i < nfiles; i++) {
            char p[PATH_MAX + 600];
            snprintf(p, sizeof(p), "%s/%s", sdir, files[i]);
            if (siphon_schema_load(&sch[i], p, err, sizeof(err)) < 0)
                fail_msg("%s", err);
            if (siphon_avro_stream_new(&st[i], sch[i], (const char *const *)keys, nkey, err,
                                       sizeof(err)) < 0)
                fail_msg("%s", err);
        }
        siphon_buf_printf(&out, "== %s (%s)\n", steps[s], siphon_avro_compat_mode_name(mode));
        size_t before_len = 0, after_len = 0;
        char *before = tc_read_file(hpath, &before_len);
        int rc = siphon_schema_history_sync(hpath, "golden", mode,
                                            (const siphon_avro_stream_t *const *)st, nfiles, 1,
                                            oc, err, sizeof(err));
        for (int i = 0; i < nfiles; i++) {
            if (oc[i].verdict == SIPHON_SCHEMA_INCOMPATIBLE)
                siphon_buf_printf(&out, "%s: incompatible with version %d.%d\n", oc[i].stream,
                                  oc[i].major, oc[i].minor);
            else
                siphon_buf_printf(&out, "%s: %s, version %d.%d\n", oc[i].stream,
                                  verdict_name(oc[i].verdict), oc[i].major, oc[i].minor);
        }
        if (rc < 0) {
            char *after = tc_read_file(hpath, &after_len);
            int same = (!before && !after) ||
                       (before && after && before_len == after_len &&
                        memcmp(before, after, before_len) == 0);
            assert_int_equal(rc, SIPHON_EINVAL);
            siphon_buf_printf(&out, "refused (history file %s):\n%s\n",
                              same ? "unchanged" : "CHANGED", err);
            free(after);
        }
        free(before);
        for (int i = 0; i < nfiles; i++) {
            siphon_schema_outcome_free(&oc[i]);
            siphon_avro_stream_destroy(st[i]);
            siphon_schema_destroy(sch[i]);
        }
        free_list(files, nfiles);
    }

    /* what the file holds, read back; and saving what was read gives the same bytes */
    siphon_schema_history_t *hist = NULL;
    if (siphon_schema_history_load(&hist, hpath, "golden", err, sizeof(err)) < 0)
        fail_msg("%s", err);
    siphon_buf_printf(&out, "== history\n");
    for (int i = 0; i < siphon_schema_history_stream_count(hist); i++) {
        const char *name = siphon_schema_history_stream_name(hist, i);
        siphon_buf_printf(&out, "%s\n", name);
        for (int k = 0; k < siphon_schema_history_version_count(hist, name); k++) {
            const siphon_schema_version_t *v = siphon_schema_history_version(hist, name, k);
            siphon_schema_t *sch = NULL;
            if (siphon_schema_parse(&sch, v->schema_json, strlen(v->schema_json), err,
                                    sizeof(err)) < 0)
                fail_msg("recorded schema does not parse: %s", err);
            assert_int_equal(v->minor, k);
            assert_int_equal(v->fingerprint,
                             siphon_avro_fingerprint64(v->canonical, strlen(v->canonical)));
            siphon_buf_printf(&out, "  %d.%d %s:", v->major, v->minor, v->mode);
            for (int f = 0; f < sch->record->nfields; f++)
                siphon_buf_printf(&out, "%s %s", f ? "," : "", sch->record->fields[f].name);
            siphon_buf_printf(&out, "\n");
            siphon_schema_destroy(sch);
        }
    }
    size_t l1 = 0, l2 = 0;
    char *b1 = tc_read_file(hpath, &l1);
    assert_int_equal(siphon_schema_history_save(hist, err, sizeof(err)), 0);
    char *b2 = tc_read_file(hpath, &l2);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_string_equal(b1, b2);
    free(b1);
    free(b2);
    siphon_schema_history_destroy(hist);

    siphon_buf_appendc(&out, '\0');
    replace_all(&out, hpath, "$HISTORY");
    replace_all(&out, dir, "$CASE");
    mask_fingerprints((char *)out.data);
    expect_file(dir, "expected.txt", (const char *)out.data);
    siphon_buf_free(&out);
    free_list(steps, nsteps);
    for (int i = 0; i < nkey; i++)
        free(keys[i]);
    free(keys);
    tc_rmtree(tmp);
}

/* ---- diff ---- */

void tc_run_diff(void **state)
{
    const char *dir = *state;
    siphon_avro_compat_schema_t *a = load_avsc(dir, "a.avsc");
    siphon_avro_compat_schema_t *b = load_avsc(dir, "b.avsc");
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_compat_diff(&out, a, b), 0);
    if (out.len == 0)
        siphon_buf_printf(&out, "(no changes)\n");
    siphon_buf_appendc(&out, '\0');
    expect_file(dir, "expected.txt", (const char *)out.data);
    /* nothing changes from a schema to itself */
    siphon_buf_reset(&out);
    assert_int_equal(siphon_avro_compat_diff(&out, b, b), 0);
    assert_int_equal(out.len, 0);
    siphon_buf_free(&out);
    siphon_avro_compat_schema_destroy(a);
    siphon_avro_compat_schema_destroy(b);
}
