/*
 * avro_test.h - shared helpers of the Avro module's unit tests (tests/unit/avro/). Every
 * test_*.c file exports one group runner; main.c runs them all in one cmocka executable.
 */
#ifndef SIPHON_AVRO_TEST_H
#define SIPHON_AVRO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "avro/siphon_avro.h"

int avro_test_canonical(void);
int avro_test_schema(void);
int avro_test_decimal(void);
int avro_test_stream(void);
int avro_test_framing(void);
int avro_test_binenc(void);

/* The repository root: $SIPHON_SOURCE_DIR (set by ctest), else derived from this file's path.
 * Returns a static string. */
const char *avro_test_source_dir(void);

/* Read a whole file; caller frees. NULL when it cannot be read. */
char *avro_test_read_file(const char *path, size_t *len);

#endif
