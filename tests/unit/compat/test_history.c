/*
 * test_history.c - the schema history and the compatibility API beyond the golden cases: mode
 * names, the history file's path, a round trip of every recorded field, refusing damaged or
 * foreign files, refusing an incompatible start without recording anything (and the message
 * listing every incompatibility, cut at a line when errbuf is small), the entity in focus when
 * envelopes are compared, recursive types, and argument checks.
 */
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

/* A schema file <dir>/<entity>.v<major>.avsc with `fields` (JSON array text), loaded, and its
 * stream keyed by "id". */
typedef struct ent {
    siphon_schema_t *sch;
    siphon_avro_stream_t *st;
} ent_t;

static ent_t make_ent(const char *dir, const char *entity, int major, const char *fields)
{
    char path[PATH_MAX], text[8192], err[1024];
    ent_t e = {0};
    static const char *const key[] = {"id"};
    snprintf(path, sizeof(path), "%s/%s.v%d.avsc", dir, entity, major);
    snprintf(text, sizeof(text),
             "{\"type\": \"record\", \"name\": \"SalesOrder\", \"namespace\": \"t\", "
             "\"fields\": %s}\n", fields);
    assert_int_equal(tc_write_file(path, text), 0);
    if (siphon_schema_load(&e.sch, path, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    if (siphon_avro_stream_new(&e.st, e.sch, key, 1, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return e;
}

static void free_ent(ent_t *e)
{
    siphon_avro_stream_destroy(e->st);
    siphon_schema_destroy(e->sch);
}

static void test_mode_names(void **state)
{
    static const char *const names[] = {"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                                        "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"};
    char err[512];
    siphon_avro_compat_mode_t m;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(siphon_avro_compat_mode_parse(&m, names[i], err, sizeof(err)), 0);
        assert_string_equal(siphon_avro_compat_mode_name(m), names[i]);
    }
    assert_int_equal(siphon_avro_compat_mode_parse(&m, "full-transitive", err, sizeof(err)), 0);
    assert_int_equal(m, SIPHON_COMPAT_FULL_TRANSITIVE);
    assert_int_equal(siphon_avro_compat_mode_parse(&m, "backward", err, sizeof(err)), 0);
    assert_int_equal(m, SIPHON_COMPAT_BACKWARD);
    assert_int_equal(siphon_avro_compat_mode_parse(&m, "SIDEWAYS", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "'SIDEWAYS'"));
    assert_non_null(strstr(err, "FULL_TRANSITIVE"));
    assert_int_equal(siphon_avro_compat_mode_parse(&m, NULL, err, sizeof(err)), SIPHON_EINVAL);
    assert_string_equal(siphon_avro_compat_mode_name((siphon_avro_compat_mode_t)99), "?");
}

static void test_history_path(void **state)
{
    char buf[256];
    assert_int_equal(siphon_schema_history_path(buf, sizeof(buf),
                                                "/var/lib/siphon/erp.offsets.json", "erp-orders"),
                     0);
    assert_string_equal(buf, "/var/lib/siphon/erp-orders.schemas.json");
    assert_int_equal(siphon_schema_history_path(buf, sizeof(buf), "erp.offsets.json",
                                                "erp orders/../x"),
                     0);
    assert_string_equal(buf, "erp_orders_.._x.schemas.json");
    assert_int_equal(siphon_schema_history_path(buf, sizeof(buf), "/o.json", ".hidden"), 0);
    assert_string_equal(buf, "/_hidden.schemas.json");
    assert_int_equal(siphon_schema_history_path(buf, 10, "/var/lib/siphon/o.json", "erp"),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_schema_history_path(buf, sizeof(buf), "/o.json", ""), SIPHON_EINVAL);
}

static void test_round_trip(void **state)
{
    char dir[PATH_MAX], hpath[PATH_MAX + 32], tmp[PATH_MAX + 40], err[4096];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(hpath, sizeof(hpath), "%s/erp.schemas.json", dir);
    ent_t e = make_ent(dir, "sales_order", 1,
                       "[{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"note\", "
                       "\"type\": [\"null\", \"string\"], \"default\": null, "
                       "\"doc\": \"free \\\"text\\\"\"}]");
    const siphon_avro_stream_t *st[] = {e.st};
    siphon_schema_outcome_t oc[1];

    /* nothing yet: an empty history */
    siphon_schema_history_t *hist = NULL;
    assert_int_equal(siphon_schema_history_load(&hist, hpath, "erp", err, sizeof(err)), 0);
    assert_int_equal(siphon_schema_history_stream_count(hist), 0);
    assert_null(siphon_schema_history_stream_name(hist, 0));
    assert_int_equal(siphon_schema_history_version_count(hist, "sales_order.v1"), 0);
    assert_null(siphon_schema_history_version(hist, "sales_order.v1", 0));
    siphon_schema_history_destroy(hist);

    /* a check records nothing */
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st, 1, 0,
                                                oc, err, sizeof(err)),
                     0);
    assert_int_equal(oc[0].verdict, SIPHON_SCHEMA_NEW);
    assert_string_equal(oc[0].stream, "sales_order.v1");
    siphon_schema_outcome_free(&oc[0]);
    assert_int_equal(access(hpath, F_OK), -1);

    /* a start records version 1.0 */
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_FULL, st, 1, 1, oc,
                                                err, sizeof(err)),
                     0);
    assert_int_equal(oc[0].verdict, SIPHON_SCHEMA_NEW);
    assert_int_equal(oc[0].major, 1);
    assert_int_equal(oc[0].minor, 0);
    siphon_schema_outcome_free(&oc[0]);
    snprintf(tmp, sizeof(tmp), "%s.tmp", hpath);
    assert_int_equal(access(hpath, F_OK), 0);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */

    assert_int_equal(siphon_schema_history_load(&hist, hpath, "erp", err, sizeof(err)), 0);
    assert_int_equal(siphon_schema_history_stream_count(hist), 1);
    assert_string_equal(siphon_schema_history_stream_name(hist, 0), "sales_order.v1");
    assert_int_equal(siphon_schema_history_version_count(hist, "sales_order.v1"), 1);
    const siphon_schema_version_t *v = siphon_schema_history_version(hist, "sales_order.v1", 0);
    assert_non_null(v);
    assert_null(siphon_schema_history_version(hist, "sales_order.v1", 1));
    assert_null(siphon_schema_history_version(hist, "sales_order.v1", -1));
    assert_int_equal(v->major, 1);
    assert_int_equal(v->minor, 0);
    assert_string_equal(v->schema_json, e.sch->json);
    assert_string_equal(v->value_json, siphon_avro_stream_value_schema_json(e.st));
    assert_string_equal(v->key_json, siphon_avro_stream_key_schema_json(e.st));
    assert_true(v->fingerprint == siphon_avro_stream_value_fingerprint(e.st));
    assert_true(v->key_fingerprint == siphon_avro_stream_key_fingerprint(e.st));
    assert_true(v->fingerprint == siphon_avro_fingerprint64(v->canonical, strlen(v->canonical)));
    assert_string_equal(v->mode, "FULL");
    assert_int_equal(strlen(v->published_at), 20);
    assert_int_equal(v->published_at[10], 'T');
    assert_int_equal(v->published_at[19], 'Z');
    siphon_schema_history_destroy(hist);

    /* the same schemas again: unchanged, and the file is not rewritten */
    struct stat s1, s2;
    assert_int_equal(stat(hpath, &s1), 0);
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st, 1, 1,
                                                oc, err, sizeof(err)),
                     0);
    assert_int_equal(oc[0].verdict, SIPHON_SCHEMA_UNCHANGED);
    assert_int_equal(oc[0].minor, 0);
    siphon_schema_outcome_free(&oc[0]);
    assert_int_equal(stat(hpath, &s2), 0);
    assert_true(s1.st_ino == s2.st_ino); /* a save would have renamed a new file into place */

    /* another connector's history is refused */
    assert_int_equal(siphon_schema_history_load(&hist, hpath, "crm", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_null(hist);
    assert_non_null(strstr(err, "belongs to connector 'erp', not 'crm'"));
    assert_non_null(strstr(err, hpath));
    free_ent(&e);
    tc_rmtree(dir);
}

/* Load a history file holding `text`; returns the code and leaves the message in err. */
static int load_text(const char *dir, const char *text, char *err, size_t errsize)
{
    char path[PATH_MAX + 16];
    siphon_schema_history_t *hist = NULL;
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    assert_int_equal(tc_write_file(path, text), 0);
    int rc = siphon_schema_history_load(&hist, path, "erp", err, errsize);
    if (rc < 0)
        assert_null(hist);
    siphon_schema_history_destroy(hist);
    return rc;
}

/* Replace the first `from` in s by `to` (result malloc'ed). */
static char *subst(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return o;
}

static void test_damaged_files(void **state)
{
    char dir[PATH_MAX], hpath[PATH_MAX + 32], err[4096];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(hpath, sizeof(hpath), "%s/erp.schemas.json", dir);
    ent_t e = make_ent(dir, "sales_order", 1, "[{\"name\": \"id\", \"type\": \"long\"}]");
    const siphon_avro_stream_t *st[] = {e.st};
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st, 1, 1,
                                                NULL, err, sizeof(err)),
                     0);
    char *good = tc_read_file(hpath, NULL);
    assert_non_null(good);
    assert_int_equal(load_text(dir, good, err, sizeof(err)), 0);

    assert_int_equal(load_text(dir, "{\"format\": 1,\n \"connector\": }", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "restore it from a backup"));

    assert_int_equal(load_text(dir, "{\"format\": 2, \"connector\": \"erp\", \"streams\": {}}",
                               err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "\"format\": 1"));

    /* a fingerprint that is not its schema's */
    char fp[20];
    snprintf(fp, sizeof(fp), "%016llx",
             (unsigned long long)siphon_avro_stream_value_fingerprint(e.st));
    char other[20];
    snprintf(other, sizeof(other), "%016llx",
             (unsigned long long)(siphon_avro_stream_value_fingerprint(e.st) ^ 1));
    char *t = subst(good, fp, other);
    assert_int_equal(load_text(dir, t, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "version 1.0 of stream sales_order.v1"));
    assert_non_null(strstr(err, "does not match"));
    free(t);

    /* a hand-edited schema (field renamed) no longer matches its canonical form */
    t = subst(good, "\\\"id\\\"", "\\\"ident\\\"");
    assert_int_equal(load_text(dir, t, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "does not match"));
    free(t);

    /* minor numbers must count from 0 */
    t = subst(good, "\"minor\": 0", "\"minor\": 1");
    assert_int_equal(load_text(dir, t, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "is incomplete (expected minor 0"));
    free(t);

    /* a stream whose name is not <entity>.v<major> */
    t = subst(good, "\"sales_order.v1\"", "\"sales_order.v7\"");
    assert_int_equal(load_text(dir, t, err, sizeof(err)), SIPHON_EINVAL);
    assert_non_null(strstr(err, "stream sales_order.v7"));
    free(t);

    free(good);
    free_ent(&e);
    tc_rmtree(dir);
}

static void test_refusal(void **state)
{
    char dir[PATH_MAX], hpath[PATH_MAX + 32], err[8192], small[700];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(hpath, sizeof(hpath), "%s/erp.schemas.json", dir);
    ent_t a1 = make_ent(dir, "sales_order", 1,
                        "[{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"qty\", \"type\": "
                        "\"long\"}, {\"name\": \"status\", \"type\": \"string\"}]");
    ent_t b1 = make_ent(dir, "invoice", 1, "[{\"name\": \"id\", \"type\": \"long\"}]");
    const siphon_avro_stream_t *st1[] = {a1.st, b1.st};
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st1, 2, 1,
                                                NULL, err, sizeof(err)),
                     0);
    size_t l1 = 0, l2 = 0;
    char *before = tc_read_file(hpath, &l1);

    /* both change incompatibly, and a third stream is new */
    ent_t a2 = make_ent(dir, "sales_order", 1,
                        "[{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"qty\", \"type\": "
                        "\"int\"}, {\"name\": \"status\", \"type\": \"boolean\"}, {\"name\": "
                        "\"region\", \"type\": \"string\"}]");
    ent_t b2 = make_ent(dir, "invoice", 1,
                        "[{\"name\": \"id\", \"type\": \"string\"}]");
    ent_t c2 = make_ent(dir, "customer", 1, "[{\"name\": \"id\", \"type\": \"long\"}]");
    const siphon_avro_stream_t *st2[] = {a2.st, b2.st, c2.st};
    siphon_schema_outcome_t oc[3];
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st2, 3, 1,
                                                oc, err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(oc[0].verdict, SIPHON_SCHEMA_INCOMPATIBLE);
    assert_int_equal(oc[0].issues.nissues, 3);
    assert_int_equal(oc[1].verdict, SIPHON_SCHEMA_INCOMPATIBLE);
    assert_int_equal(oc[1].issues.nissues, 2); /* the field and the key */
    assert_int_equal(oc[2].verdict, SIPHON_SCHEMA_NEW);
    assert_non_null(strstr(err, "2 streams changed incompatibly"));
    assert_non_null(strstr(err, "SalesOrder.qty: the writer's long cannot be read as int"));
    assert_non_null(
        strstr(err, "SalesOrder.status: the writer's string cannot be read as boolean"));
    assert_non_null(strstr(err, "SalesOrder.region: the reader requires field region"));
    assert_non_null(strstr(err, "schema invoice.v1 ("));
    assert_non_null(strstr(err, "SalesOrder.id: the writer's long cannot be read as string"));
    assert_non_null(strstr(err, "key of 1.0: SalesOrderKey: the key schema changed"));
    assert_non_null(strstr(err, "new major version"));
    for (int i = 0; i < 3; i++)
        siphon_schema_outcome_free(&oc[i]);
    char *after = tc_read_file(hpath, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(before, after, l1); /* nothing recorded, not even the new stream */
    free(after);

    /* a small errbuf: cut at a line, says there is more, keeps the advice */
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st2, 3, 1,
                                                NULL, small, sizeof(small)),
                     SIPHON_EINVAL);
    assert_true(strlen(small) < sizeof(small));
    assert_non_null(strstr(small, "... (more: run `siphon schema check` to see them all)"));
    assert_non_null(strstr(small, "new major version"));
    const char *more = strstr(small, "\n  ... (more");
    assert_non_null(more);

    /* NONE accepts anything and records the next minor versions */
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_NONE, st2, 3, 1, oc,
                                                err, sizeof(err)),
                     0);
    assert_int_equal(oc[0].verdict, SIPHON_SCHEMA_COMPATIBLE);
    assert_int_equal(oc[0].minor, 1);
    assert_int_equal(oc[2].verdict, SIPHON_SCHEMA_NEW);
    for (int i = 0; i < 3; i++)
        siphon_schema_outcome_free(&oc[i]);
    siphon_schema_history_t *hist = NULL;
    assert_int_equal(siphon_schema_history_load(&hist, hpath, "erp", err, sizeof(err)), 0);
    assert_int_equal(siphon_schema_history_stream_count(hist), 3);
    assert_string_equal(siphon_schema_history_stream_name(hist, 0), "customer.v1");
    assert_string_equal(siphon_schema_history_stream_name(hist, 1), "invoice.v1");
    assert_string_equal(siphon_schema_history_stream_name(hist, 2), "sales_order.v1");
    assert_int_equal(siphon_schema_history_version_count(hist, "sales_order.v1"), 2);
    assert_string_equal(siphon_schema_history_version(hist, "sales_order.v1", 1)->mode, "NONE");
    siphon_schema_history_destroy(hist);

    free(before);
    free_ent(&a1);
    free_ent(&b1);
    free_ent(&a2);
    free_ent(&b2);
    free_ent(&c2);
    tc_rmtree(dir);
}

static void test_unsaved_folder(void **state)
{
    char dir[PATH_MAX], hpath[PATH_MAX + 32], err[2048];
    tc_tmpdir(dir, sizeof(dir));
    snprintf(hpath, sizeof(hpath), "%s/missing/erp.schemas.json", dir);
    ent_t e = make_ent(dir, "sales_order", 1, "[{\"name\": \"id\", \"type\": \"long\"}]");
    const siphon_avro_stream_t *st[] = {e.st};
    assert_int_equal(siphon_schema_history_sync(hpath, "erp", SIPHON_COMPAT_BACKWARD, st, 1, 1,
                                                NULL, err, sizeof(err)),
                     SIPHON_EIO);
    assert_non_null(strstr(err, "could not create schema history file"));
    assert_non_null(strstr(err, "check the folder exists"));
    free_ent(&e);
    tc_rmtree(dir);
}

static void test_needs_file_schema(void **state)
{
    char err[1024];
    static const char *const key[] = {"id"};
    const char *json = "{\"type\": \"record\", \"name\": \"X\", \"fields\": [{\"name\": \"id\", "
                       "\"type\": \"long\"}]}";
    siphon_schema_t *sch = NULL;
    siphon_avro_stream_t *st = NULL;
    siphon_schema_history_t *hist = NULL;
    siphon_schema_outcome_t oc;
    assert_int_equal(siphon_schema_parse(&sch, json, strlen(json), err, sizeof(err)), 0);
    assert_int_equal(siphon_avro_stream_new(&st, sch, key, 1, err, sizeof(err)), 0);
    assert_int_equal(siphon_schema_history_load(&hist, "/nonexistent/h.json", "erp", err,
                                                sizeof(err)),
                     0);
    assert_int_equal(siphon_schema_history_check(hist, st, SIPHON_COMPAT_BACKWARD, 1, &oc, err,
                                                 sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "<entity>.v<major>.avsc"));
    assert_int_equal(siphon_schema_history_check(NULL, st, SIPHON_COMPAT_BACKWARD, 1, &oc, err,
                                                 sizeof(err)),
                     SIPHON_EINVAL);
    assert_int_equal(siphon_schema_history_sync(NULL, "erp", SIPHON_COMPAT_BACKWARD, NULL, 0, 1,
                                                NULL, err, sizeof(err)),
                     SIPHON_EINVAL);
    siphon_schema_history_destroy(hist);
    siphon_avro_stream_destroy(st);
    siphon_schema_destroy(sch);
}

static siphon_avro_compat_schema_t *cs_of(const char *json)
{
    char err[1024];
    siphon_avro_compat_schema_t *cs = NULL;
    if (siphon_avro_compat_schema_new(&cs, json, strlen(json), "<test>", err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return cs;
}

/* Envelopes differ only inside the entity: with the entity in focus, paths start at it and
 * each incompatibility is reported once although the entity appears in before and after. */
static void test_focus(void **state)
{
    char dir[PATH_MAX];
    tc_tmpdir(dir, sizeof(dir));
    ent_t a = make_ent(dir, "sales_order", 1,
                       "[{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"qty\", \"type\": "
                       "\"long\"}]");
    ent_t b = make_ent(dir, "sales_order", 1,
                       "[{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"qty\", \"type\": "
                       "\"int\"}]");
    siphon_avro_compat_schema_t *ea = cs_of(siphon_avro_stream_value_schema_json(a.st));
    siphon_avro_compat_schema_t *eb = cs_of(siphon_avro_stream_value_schema_json(b.st));
    siphon_avro_compat_result_t res = {0};

    assert_int_equal(siphon_avro_compat_check(&res, eb, ea, NULL, "ctx"), 0);
    assert_int_equal(res.nissues, 1);
    assert_string_equal(res.issues[0].path, "SalesOrderEnvelope.before.qty");
    assert_string_equal(res.issues[0].context, "ctx");
    siphon_avro_compat_result_free(&res);

    assert_int_equal(siphon_avro_compat_check(&res, eb, ea, "t.SalesOrder", NULL), 0);
    assert_int_equal(res.nissues, 1);
    assert_string_equal(res.issues[0].path, "SalesOrder.qty");
    assert_string_equal(res.issues[0].reason, "the writer's long cannot be read as int");
    assert_null(res.issues[0].context);
    siphon_avro_compat_result_free(&res);

    /* a focus the schemas do not have changes nothing */
    assert_int_equal(siphon_avro_compat_check(&res, eb, ea, "t.Nothing", NULL), 0);
    assert_int_equal(res.nissues, 1);
    assert_string_equal(res.issues[0].path, "SalesOrderEnvelope.before.qty");
    siphon_avro_compat_result_free(&res);

    /* the other way round is compatible (int widens to long) */
    assert_int_equal(siphon_avro_compat_check(&res, ea, eb, "t.SalesOrder", NULL), 0);
    assert_int_equal(res.nissues, 0);

    siphon_avro_compat_schema_destroy(ea);
    siphon_avro_compat_schema_destroy(eb);
    free_ent(&a);
    free_ent(&b);
    tc_rmtree(dir);
}

/* Mutually recursive records through unions, arrays and maps: the check ends, and reports
 * each incompatible pair once. */
static void test_recursion(void **state)
{
    const char *r = "{\"type\": \"record\", \"name\": \"A\", \"fields\": ["
                    "{\"name\": \"v\", \"type\": \"long\"},"
                    "{\"name\": \"b\", \"type\": [\"null\", {\"type\": \"record\", \"name\": "
                    "\"B\", \"fields\": [{\"name\": \"w\", \"type\": \"double\"}, {\"name\": "
                    "\"as\", \"type\": {\"type\": \"array\", \"items\": \"A\"}}, {\"name\": "
                    "\"m\", \"type\": {\"type\": \"map\", \"values\": \"B\"}}]}]}]}";
    const char *w = "{\"type\": \"record\", \"name\": \"A\", \"fields\": ["
                    "{\"name\": \"v\", \"type\": \"int\"},"
                    "{\"name\": \"b\", \"type\": [\"null\", {\"type\": \"record\", \"name\": "
                    "\"B\", \"fields\": [{\"name\": \"w\", \"type\": \"float\"}, {\"name\": "
                    "\"as\", \"type\": {\"type\": \"array\", \"items\": \"A\"}}, {\"name\": "
                    "\"m\", \"type\": {\"type\": \"map\", \"values\": \"B\"}}]}]}]}";
    siphon_avro_compat_schema_t *rs = cs_of(r), *ws = cs_of(w);
    siphon_avro_compat_result_t res = {0};
    siphon_buf_t out = {0};
    assert_int_equal(siphon_avro_compat_check(&res, rs, ws, NULL, NULL), 0);
    assert_int_equal(res.nissues, 0); /* int -> long, float -> double */
    assert_int_equal(siphon_avro_compat_check(&res, ws, rs, NULL, NULL), 0);
    assert_int_equal(res.nissues, 2);
    assert_int_equal(siphon_avro_compat_result_format(&out, &res, "> "), 0);
    siphon_buf_appendc(&out, '\0');
    assert_string_equal((const char *)out.data,
                        "> A.v: the writer's long cannot be read as int\n"
                        "> A.b.w: the writer's double cannot be read as float\n");
    siphon_buf_free(&out);
    siphon_avro_compat_result_free(&res);
    siphon_avro_compat_schema_destroy(rs);
    siphon_avro_compat_schema_destroy(ws);
}

static void test_bad_input(void **state)
{
    char err[1024];
    siphon_avro_compat_schema_t *cs = (siphon_avro_compat_schema_t *)&err; /* must be reset */
    const char *bad = "{\"type\": \"record\",\n \"name\": \"X\", \"fields\": [{\"name\": "
                      "\"a\", \"type\": \"nope\"}]}";
    assert_int_equal(siphon_avro_compat_schema_new(&cs, bad, strlen(bad), "x.avsc", err,
                                                   sizeof(err)),
                     SIPHON_EINVAL);
    assert_null(cs);
    assert_non_null(strstr(err, "x.avsc:2:"));
    assert_non_null(strstr(err, "unknown type \"nope\""));
    assert_int_equal(siphon_avro_compat_schema_new(&cs, "{", 1, "y.avsc", err, sizeof(err)),
                     SIPHON_EINVAL);
    assert_non_null(strstr(err, "y.avsc:1:"));
    assert_int_equal(siphon_avro_compat_schema_new(&cs, NULL, 0, NULL, err, sizeof(err)),
                     SIPHON_EINVAL);
    siphon_avro_compat_schema_destroy(NULL);
    siphon_avro_compat_result_free(NULL);
    assert_int_equal(siphon_avro_compat_check(NULL, NULL, NULL, NULL, NULL), SIPHON_EINVAL);
    siphon_avro_compat_result_t res = {0};
    assert_int_equal(siphon_avro_compat_check_mode(&res, SIPHON_COMPAT_FULL, NULL, NULL, NULL,
                                                   0, NULL),
                     SIPHON_EINVAL);
    /* lenient like the specification: an unknown logical type is its base type */
    cs = cs_of("{\"type\": \"long\", \"logicalType\": \"nanos\"}");
    siphon_avro_compat_schema_t *plain = cs_of("\"long\"");
    assert_int_equal(siphon_avro_compat_check(&res, cs, plain, NULL, NULL), 0);
    assert_int_equal(res.nissues, 0);
    /* and no earlier versions means nothing to check */
    assert_int_equal(siphon_avro_compat_check_mode(&res, SIPHON_COMPAT_FULL_TRANSITIVE, cs, NULL,
                                                   NULL, 0, NULL),
                     0);
    assert_int_equal(res.nissues, 0);
    siphon_avro_compat_schema_destroy(cs);
    siphon_avro_compat_schema_destroy(plain);
}

int tc_history_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_names),     cmocka_unit_test(test_history_path),
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_refusal),        cmocka_unit_test(test_unsaved_folder),
        cmocka_unit_test(test_needs_file_schema), cmocka_unit_test(test_focus),
        cmocka_unit_test(test_recursion),      cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("compat_history", tests, NULL, NULL);
}
