/*
 * compat_test.h - what the files of unit_compat share: the golden-case runners (golden.c) and
 * small file helpers.
 */
#ifndef SIPHON_TEST_COMPAT_H
#define SIPHON_TEST_COMPAT_H

#include <stddef.h>

/* Folders of one kind of golden case under $SIPHON_SOURCE_DIR/tests/golden/compat/<kind>,
 * sorted, with test names ("compat/resolve/arrays"). Returns how many, -1 when the folder
 * cannot be read. The arrays live until exit. */
int tc_golden_cases(const char *kind, char ***dirs, char ***names);

/* cmocka bodies; *state is the case folder. */
void tc_run_resolve(void **state);
void tc_run_modes(void **state);
void tc_run_history(void **state);
void tc_run_diff(void **state);

/* The whole file as a NUL-terminated string (caller frees), NULL when it cannot be read. */
char *tc_read_file(const char *path, size_t *len);
/* Write text to path; 0 or -1. */
int tc_write_file(const char *path, const char *text);
/* $SIPHON_SOURCE_DIR or ".". */
const char *tc_source_dir(void);
/* A fresh temporary folder (mkdtemp) into buf; removed with tc_rmtree(). */
void tc_tmpdir(char *buf, size_t size);
void tc_rmtree(const char *dir);

/* The test lists of the other files (main.c runs them). */
int tc_history_tests(void);
int tc_side_by_side_tests(void);
int tc_cli_tests(void);

#endif
