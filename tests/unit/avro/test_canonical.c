/*
 * test_canonical.c - Parsing Canonical Form and CRC-64-AVRO fingerprints against the Avro
 * specification's published vectors (tests/golden/avro/canonical/<case>/: schema.avsc, the
 * expected canonical form, and for most cases the expected fingerprint as a signed 64-bit
 * decimal, as in the specification's share/test/data/schema-tests.txt), and the single-object
 * header.
 */
#include "avro_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden_vectors(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/golden/avro/canonical", avro_test_source_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md") != 0)
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_names);

    int ncanon = 0, nfp = 0;
    for (int i = 0; i < n; i++) {
        char path[8192];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s/schema.avsc", dir, names[i]);
        char *input = avro_test_read_file(path, &len);
        snprintf(path, sizeof(path), "%s/%s/canonical", dir, names[i]);
        char *expect = avro_test_read_file(path, NULL);
        if (!input || !expect)
            fail_msg("case %s: missing schema.avsc or canonical", names[i]);
        chomp(expect);

        char *canon = NULL;
        char err[512] = "";
        int rc = siphon_avro_canonical_form(&canon, input, len, err, sizeof(err));
        if (rc != 0)
            fail_msg("case %s: canonical form failed: %s", names[i], err);
        if (strcmp(canon, expect) != 0)
            fail_msg("case %s:\n  got      %s\n  expected %s", names[i], canon, expect);
        ncanon++;

        snprintf(path, sizeof(path), "%s/%s/fingerprint", dir, names[i]);
        char *fptext = avro_test_read_file(path, NULL);
        if (fptext) {
            uint64_t want = (uint64_t)strtoll(fptext, NULL, 10);
            uint64_t got = siphon_avro_fingerprint64(canon, strlen(canon));
            if (got != want)
                fail_msg("case %s: fingerprint %016llx, expected %016llx", names[i],
                         (unsigned long long)got, (unsigned long long)want);
            nfp++;
            free(fptext);
        }
        free(canon);
        free(input);
        free(expect);
        free(names[i]);
    }
    /* the folder holds 34 specification vectors (26 with fingerprints) and 11 more forms */
    assert_true(ncanon >= 45);
    assert_true(nfp >= 26);
}

static void test_fingerprint_empty_is_the_constant(void **state)
{
    (void)state;
    /* the fingerprint starts from EMPTY, so an empty input leaves it unchanged */
    assert_true(siphon_avro_fingerprint64("", 0) == 0xc15d213aa4d7a795ULL);
    /* and any byte changes it */
    assert_true(siphon_avro_fingerprint64("\0", 1) != 0xc15d213aa4d7a795ULL);
}

static void test_soe_header(void **state)
{
    (void)state;
    uint8_t h[SIPHON_AVRO_SOE_HEADER_LEN];
    /* the fingerprint of "null" from the specification's vectors: 0x63dd24e7cc258f8a */
    uint64_t fp = siphon_avro_fingerprint64("\"null\"", 6);
    assert_true(fp == 0x63dd24e7cc258f8aULL);
    siphon_avro_soe_header(h, fp);
    const uint8_t want[10] = {0xC3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63};
    assert_memory_equal(h, want, 10);
}

static void test_canonical_resolves_names(void **state)
{
    (void)state;
    /* a reference by short name inside a namespace becomes the full name; a nested
     * definition inherits the namespace of the enclosing named type, even one given by a
     * dotted name; "namespace": "" puts a type in the null namespace */
    const char *in =
        "{\"type\":\"record\",\"name\":\"a.b.Outer\",\"namespace\":\"ignored\",\"fields\":["
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
        "{\"name\":\"e2\",\"type\":\"E\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"\","
        "\"size\":\"04\"}},"
        "{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
        "\"precision\":4,\"scale\":2}},"
        "{\"name\":\"s\",\"type\":\"\\u00e9t\\u00e9\",\"doc\":\"x\"}]}";
    /* the last field references an undefined name: an error */
    char *canon = NULL;
    char err[512] = "";
    assert_int_not_equal(siphon_avro_canonical_form(&canon, in, strlen(in), err, sizeof(err)), 0);
    assert_non_null(strstr(err, "unknown type"));
    assert_null(canon);

    const char *ok =
        "{\"type\":\"record\",\"name\":\"a.b.Outer\",\"namespace\":\"ignored\",\"fields\":["
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
        "{\"name\":\"e2\",\"type\":\"E\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"\","
        "\"size\":\"04\"}},"
        "{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
        "\"precision\":4,\"scale\":2}},"
        "{\"name\":\"f2\",\"type\":\"F\"},"
        "{\"name\":\"s\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"},"
        "\"doc\":\"\\u00e9t\\u00e9\"}]}";
    assert_int_equal(siphon_avro_canonical_form(&canon, ok, strlen(ok), err, sizeof(err)), 0);
    assert_string_equal(canon,
                        "{\"name\":\"a.b.Outer\",\"type\":\"record\",\"fields\":["
                        "{\"name\":\"e\",\"type\":{\"name\":\"a.b.E\",\"type\":\"enum\","
                        "\"symbols\":[\"X\"]}},"
                        "{\"name\":\"e2\",\"type\":\"a.b.E\"},"
                        "{\"name\":\"f\",\"type\":{\"name\":\"F\",\"type\":\"fixed\",\"size\":4}},"
                        "{\"name\":\"d\",\"type\":\"bytes\"},"
                        "{\"name\":\"f2\",\"type\":\"F\"},"
                        "{\"name\":\"s\",\"type\":\"string\"}]}");
    free(canon);
}

static void test_canonical_strings_unescaped(void **state)
{
    (void)state;
    /* [STRINGS]: escapes become UTF-8 (symbols and names are ASCII, so use an escaped ASCII
     * letter) */
    const char *in = "{\"type\":\"enum\",\"name\":\"\\u0045n\",\"symbols\":[\"\\u0041\",\"B\"]}";
    char *canon = NULL;
    char err[256];
    assert_int_equal(siphon_avro_canonical_form(&canon, in, strlen(in), err, sizeof(err)), 0);
    assert_string_equal(canon, "{\"name\":\"En\",\"type\":\"enum\",\"symbols\":[\"A\",\"B\"]}");
    free(canon);
}

int avro_test_canonical(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_vectors),
        cmocka_unit_test(test_fingerprint_empty_is_the_constant),
        cmocka_unit_test(test_soe_header),
        cmocka_unit_test(test_canonical_resolves_names),
        cmocka_unit_test(test_canonical_strings_unescaped),
    };
    return cmocka_run_group_tests_name("avro_canonical", tests, NULL, NULL);
}
