/*
 * 0021-erp-validate-preview - `siphon validate` and `siphon preview` against a live legacy
 * database, as a DBA uses them while writing mappings.
 *
 * A throwaway PostgreSQL 15 with the sample ERP (SQL_ASCII database "erp", generated data and
 * the four bad rows). Checked:
 *  - validate with the shipped mappings: offline checks, then every mapped table against the
 *    live catalog: exit 0; against a server that is not there: the live part is skipped and
 *    said so, exit 0 from the offline checks; without the PII key: exit 1 naming the mapping
 *    file:line:column of each hash;
 *  - validate with broken copies: a column that does not exist, a transform that does not take
 *    the column's type, a filter comparing a code with a number, a table that does not exist;
 *    every problem reported (not only the first), each with the mapping file:line:column and
 *    what was expected; exit 1;
 *  - preview of live rows: one JSON line per row with the canonical record exactly as a
 *    consumer decodes it; the bad rows as per-row errors naming field, column and reason, with
 *    the raw row; filtered rows said so; exit 0;
 *  - preview of rows from a JSON file with column types;
 *  - neither command creates a replication slot or a publication, or touches Kafka.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_check.h"

#define PII_KEY "it-0021-key"

static th_pg_t *pg;
static char *dir, *conninfo, *good_conf;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

/* siphon with up to 8 args; the caller frees out and err; returns the exit code. */
static int siphon(char **out, char **err, char *const extra_env[], const char *a1,
                  const char *a2, const char *a3, const char *a4, const char *a5,
                  const char *a6, const char *a7, const char *a8)
{
    const char *bin = th_siphon_bin();
    assert_non_null(bin);
    char *argv[] = {(char *)bin, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    (char *)a5,  (char *)a6, (char *)a7, (char *)a8, NULL};
    int code = -1;
    assert_int_equal(th_run(argv, extra_env, 60000, &code, out, err), 0);
    return code;
}

static char *write_conf(const char *name, const char *conn, const char *maps)
{
    char *path = th_path(dir, name);
    char *offsets = th_path(dir, "offsets.json");
    th_siphon_conf_t conf = {.name = "erp", .conninfo = conn, .slot = "siphon_erp",
                             .publication = "siphon_erp", .bootstraps = "127.0.0.1:1",
                             .topic_prefix = "erp", .offsets_path = offsets,
                             .mappings_dir = maps};
    assert_int_equal(th_siphon_conf_write(path, &conf), 0);
    free(offsets);
    return path;
}

static int setup(void **state)
{
    (void)state;
    th_log("setup: PostgreSQL 15, SQL_ASCII database erp with the sample ERP, generated data and "
           "bad rows (no siphon run, no Kafka)");
    setenv("SIPHON_PII_KEY", PII_KEY, 1);
    if (!(dir = th_tempdir()) || !(pg = th_pg_start()))
        return -1;
    PGconn *c = th_erp_create(pg, &conninfo);
    if (!c)
        return -1;
    PGresult *r = PQexec(c, "SELECT erp_generate(1); SELECT erp_bad_rows()");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    if (!ok)
        return th_err("could not generate the data");
    good_conf = write_conf("siphon.yaml", conninfo, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    th_pg_destroy(pg);
    if (dir)
        th_tempdir_remove(dir);
    free(dir);
    free(conninfo);
    free(good_conf);
    return 0;
}

/* Nothing of replication was created by validate or preview. */
static void expect_no_slot(void)
{
    char *s = th_pg_value(pg, NULL, "SELECT count(*) FROM pg_replication_slots");
    CHECK(s && !strcmp(s, "0"), "%s replication slot(s) exist", s ? s : "?");
    free(s);
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_publication");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 0), "0"),
          "a publication exists in erp");
    PQclear(r);
    PQfinish(c);
}

/* stderr names file:<line>:<col> (line 0: any) and mentions the text. */
static void expect_problem(const char *err, const char *file, int line, const char *mention)
{
    int found = 0;
    for (const char *p = strstr(err, file); p && !found; p = strstr(p + 1, file)) {
        int l = 0, c = 0;
        if (sscanf(p + strlen(file), ":%d:%d:", &l, &c) == 2 && c > 0 && (!line || l == line)) {
            const char *eol = strchr(p, '\n');
            size_t n = eol ? (size_t)(eol - p) : strlen(p);
            char *ln = strndup(p, n);
            found = strstr(ln, mention) != NULL;
            free(ln);
        }
    }
    CHECK(found, "stderr has no %s:%d:<col>: ... %s:\n%s", file, line, mention, err);
}

static int line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (!p)
        return 0;
    int l = 1;
    for (const char *q = text; q < p; q++)
        l += *q == '\n';
    return l;
}

static void test_validate(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    th_log("validate with the shipped mappings against the live database: exit 0");
    int code = siphon(&out, &err, NULL, "validate", "--config", good_conf, NULL, NULL, NULL,
                      NULL, NULL);
    CHECK(code == 0, "exit %d:\n%s%s", code, out, err);
    CHECK(strstr(out, "9 mapping(s)") && strstr(out, "8 table(s) checked"),
          "the output does not say what was checked:\n%s", out);
    free(out);
    free(err);

    th_log("against a server that is not there: the live part is skipped and said so, exit 0");
    char *down = write_conf("down.yaml", "host=127.0.0.1 port=1 user=postgres dbname=erp", NULL);
    code = siphon(&out, &err, NULL, "validate", "--config", down, NULL, NULL, NULL, NULL, NULL);
    CHECK(code == 0 && strstr(out, "not checked, could not connect"), "exit %d:\n%s%s", code,
          out, err);
    free(out);
    free(err);
    free(down);

    th_log("without the PII key in the environment: exit 1, each hash named");
    char *noenv[] = {"SIPHON_PII_KEY=", NULL};
    code = siphon(&out, &err, noenv, "validate", "--config", good_conf, NULL, NULL, NULL, NULL,
                  NULL);
    CHECK(code == 1, "exit %d:\n%s%s", code, out, err);
    expect_problem(err, "mappings/customer.yaml", 0, "SIPHON_PII_KEY");
    CHECK(strstr(err, "2 problem(s)"), "two hashes expected:\n%s", err);
    free(out);
    free(err);

    th_log("broken copies of the mappings: every problem, each at file:line:column");
    char *maps = th_path(dir, "broken");
    assert_int_equal(mkdir(maps, 0755), 0);
    static const char *const names[] = {"customer.yaml", "inventory_position.yaml", "invoice.yaml",
                                        "product.yaml", "return.yaml", "sales_order.yaml",
                                        "sales_order_line.yaml", "shipment.yaml"};
    char *so_text = NULL, *sol_text = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *src = th_strf("%s/mappings/%s", th_source_dir(), names[i]);
        char *text = th_read_file(src, NULL, 0);
        assert_non_null(text);
        char *dst = th_path(maps, names[i]);
        if (!strcmp(names[i], "sales_order.yaml")) {
            /* a column that does not exist, a filter comparing a code with a number */
            char *t1 = th_strf("%s", text);
            char *p = strstr(t1, "column: hdodat,");
            assert_non_null(p);
            char *fixed = th_strf("%.*scolumn: hdodte,%s", (int)(p - t1), t1,
                                  p + strlen("column: hdodat,"));
            char *q = strstr(fixed, "hdcomp <> '99'");
            assert_non_null(q);
            char *fixed2 = th_strf("%.*shdcomp <> 99%s", (int)(q - fixed), fixed,
                                   q + strlen("hdcomp <> '99'"));
            so_text = fixed2;
            assert_int_equal(th_write_file(dst, fixed2), 0);
            free(t1);
            free(fixed);
        } else if (!strcmp(names[i], "sales_order_line.yaml")) {
            /* a transform that does not take the column's type: trim of an integer column */
            const char *from = "column: olrqdt, transforms: [{null_if: [0]}";
            char *p = strstr(text, from);
            assert_non_null(p);
            sol_text = th_strf("%.*scolumn: olrqdt, transforms: [trim, {null_if: [0]}%s",
                               (int)(p - text), text, p + strlen(from));
            assert_int_equal(th_write_file(dst, sol_text), 0);
        } else {
            assert_int_equal(th_write_file(dst, text), 0);
        }
        free(text);
        free(src);
        free(dst);
    }
    char *broken = write_conf("broken.yaml", conninfo, maps);
    code = siphon(&out, &err, NULL, "validate", "--config", broken, NULL, NULL, NULL, NULL, NULL);
    th_log("  -> exit %d:\n%s", code, err);
    CHECK(code == 1, "exit %d:\n%s%s", code, out, err);
    expect_problem(err, "broken/sales_order.yaml", line_of(so_text, "hdodte"), "hdodte");
    expect_problem(err, "broken/sales_order.yaml", line_of(so_text, "hdcomp <> 99"),
                   "compare it with quoted text");
    CHECK(strstr(err, "expected one of: hdcomp, hdordn"), "the missing column's message does "
                                                          "not list the table's columns:\n%s", err);
    expect_problem(err, "broken/sales_order_line.yaml", line_of(sol_text, "[trim, {null_if"),
                   "transform 'trim' takes text, got integer");
    CHECK(strstr(err, "3 problem(s)"), "expected exactly 3 problems:\n%s", err);
    free(out);
    free(err);

    th_log("a table that does not exist: the mapping's source.table is named");
    PGconn *c = PQconnectdb(conninfo);
    PQclear(PQexec(c, "ALTER TABLE rmhdr RENAME TO rmhdr_old"));
    code = siphon(&out, &err, NULL, "validate", "--config", good_conf, NULL, NULL, NULL, NULL,
                  NULL);
    PQclear(PQexec(c, "ALTER TABLE rmhdr_old RENAME TO rmhdr"));
    PQfinish(c);
    CHECK(code == 1, "exit %d:\n%s%s", code, out, err);
    expect_problem(err, "mappings/return.yaml", 0, "could not find table \"public.rmhdr\"");
    free(out);
    free(err);
    free(broken);
    free(maps);
    free(so_text);
    free(sol_text);
    expect_no_slot();
}

static void test_preview_live(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    th_log("preview of 5 live order headers: 5 JSON lines with the canonical record");
    int code = siphon(&out, &err, NULL, "preview", "--config", good_conf, "--mapping",
                      "sales_order", "--limit", "5", NULL);
    CHECK(code == 0, "exit %d:\n%s%s", code, out, err);
    int lines = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        CHECK(j, "not JSON: %s", l);
        char b[128], ordn[32];
        th_json_text(j, "record.order_number", ordn, sizeof(ordn));
        CHECK(ordn[0] >= '1' && ordn[0] <= '9', "order number %s kept its zeros", ordn);
        CHECK(!strcmp(th_json_text(j, "record.currency", b, sizeof(b)), "USD"), "currency %s", b);
        CHECK(strlen(th_json_text(j, "record.created_at", b, sizeof(b))) == 27 && b[26] == 'Z',
              "created_at %s", b);
        CHECK(!strcmp(th_json_text(j, "key.order_number", b, sizeof(b)), ordn), "key %s", b);
        json_decref(j);
        lines++;
    }
    CHECK(lines == 5, "%d lines, expected 5", lines);
    CHECK(strstr(err, "5 row(s) of public.oehdr"), "no summary on stderr:\n%s", err);
    free(out);
    free(err);

    th_log("preview of every header: the bad rows are per-row errors, the quotes and the "
           "training company are skipped, exit 0");
    code = siphon(&out, &err, NULL, "preview", "--config", good_conf, "--mapping",
                  "sales_order.v1", "--limit", "1000", NULL);
    CHECK(code == 0, "exit %d:\n%s%s", code, out, err);
    int errors = 0, skipped = 0, records = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        CHECK(j, "not JSON: %s", l);
        char f[64], b[256];
        if (json_object_get(j, "error")) {
            errors++;
            th_json_text(j, "error.field", f, sizeof(f));
            CHECK(!strcmp(f, "order_date") || !strcmp(f, "status"), "error in field %s: %s", f, l);
            th_json_text(j, "error.message", b, sizeof(b));
            CHECK(strstr(b, "mappings/sales_order.yaml:"), "error message %s", b);
            CHECK(json_is_object(th_json_path(j, "source")) &&
                      !strcmp(th_json_text(j, "source.hdcomp", b, sizeof(b)), "01"),
                  "the raw row is missing: %s", l);
        } else if (json_object_get(j, "skipped")) {
            skipped++;
        } else {
            records++;
        }
        json_decref(j);
    }
    th_log("  %d records, %d errors, %d skipped", records, errors, skipped);
    CHECK(errors == 2, "%d errors, expected 2", errors);
    CHECK(skipped == 37, "%d skipped, expected 37 (company 99: 30 and a bad row; quotes of "
                         "01 and 02: 6)", skipped);
    CHECK(records == 54, "%d records, expected 54", records);
    free(out);
    free(err);

    th_log("an unknown mapping: exit 1, the mappings listed");
    code = siphon(&out, &err, NULL, "preview", "--config", good_conf, "--mapping", "orders", NULL,
                  NULL, NULL);
    CHECK(code == 1 && strstr(err, "sales_order_line"), "exit %d:\n%s", code, err);
    free(out);
    free(err);
    code = siphon(&out, &err, NULL, "preview", "--help", NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK(code == 0 && strstr(out, "Usage") && strstr(out, "Example"), "help: %s", out);
    free(out);
    free(err);
    code = siphon(&out, &err, NULL, "preview", "--config", good_conf, NULL, NULL, NULL, NULL,
                  NULL);
    CHECK(code == 2 && strstr(err, "--mapping"), "usage error: exit %d, %s", code, err);
    free(out);
    free(err);
    expect_no_slot();
}

static void test_preview_file(void **state)
{
    (void)state;
    th_log("preview of rows from a JSON file with column types (no database needed)");
    char *rows = th_path(dir, "rows.json");
    assert_int_equal(
        th_write_file(rows,
                      "{\"types\": {\"hdamt\": \"bigint\", \"hdnote\": \"rawtext\"},\n"
                      " \"rows\": [\n"
                      "  {\"hdcomp\": \"01\", \"hdordn\": \"0000104711\", \"hddoct\": \"SO\", "
                      "\"hdcust\": \"00004711\", \"hdodat\": 20240229, \"hdrqdt\": 0, "
                      "\"hdamt\": \"125050\", \"hdtaxa\": 0, \"hdcurr\": \"usd\", \"hdstat\": \"C\", "
                      "\"hdpono\": \"  \", \"hdslsp\": \"JDK\", \"hdnote\": \"\\\\x4dfc6c6c6572\", "
                      "\"hdcrdt\": 20240229, \"hdcrtm\": 235959, \"hdchgd\": 0, \"hdchgt\": 0},\n"
                      "  {\"hdcomp\": \"01\", \"hdordn\": \"0000104712\", \"hddoct\": \"SO\", "
                      "\"hdcust\": \"00004711\", \"hdodat\": 20240230, \"hdrqdt\": 0, "
                      "\"hdamt\": \"1\", \"hdtaxa\": 0, \"hdcurr\": \"USD\", \"hdstat\": \"O\", "
                      "\"hdpono\": \"\", \"hdslsp\": \"\", \"hdnote\": null, "
                      "\"hdcrdt\": 20240229, \"hdcrtm\": 0, \"hdchgd\": 0, \"hdchgt\": 0},\n"
                      "  {\"hdcomp\": \"99\", \"hdordn\": \"1\", \"hddoct\": \"SO\", "
                      "\"hdcust\": \"1\", \"hdodat\": 0, \"hdrqdt\": 0, \"hdamt\": \"1\", "
                      "\"hdtaxa\": 0, \"hdcurr\": \"\", \"hdstat\": \"\", \"hdpono\": \"\", "
                      "\"hdslsp\": \"\", \"hdnote\": null, \"hdcrdt\": 0, \"hdcrtm\": 0, "
                      "\"hdchgd\": 0, \"hdchgt\": 0}]}\n"),
        0);
    char *out = NULL, *err = NULL;
    char *nodb = write_conf("nodb.yaml", "host=127.0.0.1 port=1 user=postgres dbname=erp", NULL);
    int code = siphon(&out, &err, NULL, "preview", "--config", nodb, "--mapping", "sales_order",
                      "--rows", rows, NULL);
    CHECK(code == 0, "exit %d:\n%s%s", code, out, err);
    th_log("  ->\n%s", out);
    CHECK(strstr(out, "\"order_number\":\"104711\"") && strstr(out, "\"order_date\":\"2024-02-29\"") &&
              strstr(out, "\"total_amount\":\"1250.50\"") && strstr(out, "\"currency\":\"USD\"") &&
              strstr(out, "\"status\":\"CLOSED\"") && strstr(out, "\"note\":\"Müller\"") &&
              strstr(out, "\"customer_po\":null") &&
              strstr(out, "\"created_at\":\"2024-03-01T05:59:59.000000Z\""),
          "the first row's record is not right:\n%s", out);
    CHECK(strstr(out, "{\"row\":2,\"op\":\"r\",\"error\":{\"field\":\"order_date\""),
          "the second row's error is missing:\n%s", out);
    CHECK(strstr(out, "{\"row\":3,\"skipped\""), "the third row (company 99) is not skipped:\n%s",
          out);
    free(out);
    free(err);
    free(rows);
    free(nodb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_preview_live),
        cmocka_unit_test(test_preview_file),
    };
    return cmocka_run_group_tests_name("0021-erp-validate-preview", tests, setup, teardown);
}
