/*
 * main.c - runs every test group of the Avro module (canonical form and fingerprints, schema
 * parsing, decimals, streams) and provides the helpers in avro_test.h.
 */
#include "avro_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *avro_test_source_dir(void)
{
    static char dir[4096];
    const char *env = getenv("SIPHON_SOURCE_DIR");
    if (env && *env)
        return env;
    /* __FILE__ is <root>/tests/unit/avro/main.c when CMake compiles with absolute paths */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *p = strstr(dir, "/tests/unit/avro/");
    if (p)
        *p = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    return dir;
}

char *avro_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf)
            break;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        char *p = realloc(buf, cap + 1);
        if (!p) {
            free(buf);
            buf = NULL;
        }
        buf = p;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

int main(void)
{
    int failed = 0;
    failed += avro_test_canonical();
    failed += avro_test_schema();
    failed += avro_test_decimal();
    failed += avro_test_stream();
    failed += avro_test_framing();
    failed += avro_test_binenc();
    return failed ? 1 : 0;
}
