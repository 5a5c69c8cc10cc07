/*
 * test_mapping.h - what the mapping test files share: the golden-case runner (golden.c) and a
 * value printer.
 */
#ifndef SIPHON_TEST_MAPPING_H
#define SIPHON_TEST_MAPPING_H

#include "core/buf.h"
#include "core/value.h"

/* cmocka test body for one golden case; *state is the case folder. */
void tm_run_golden(void **state);

/* The case folders under $SIPHON_SOURCE_DIR/tests/golden/mapping, sorted, with test names.
 * Returns how many, or -1 when the folder cannot be read. The arrays live until exit. */
int tm_golden_cases(char ***dirs, char ***names);

/* "text:\"01\"", "decimal:123.45(12345,2)", "date:2024-01-31", "null", "(unchanged)". */
void tm_format_value(siphon_buf_t *out, const siphon_value_t *v);

/* test_parts.c */
void tm_test_sha256(void **state);
void tm_test_hmac(void **state);
void tm_test_timezones(void **state);
void tm_test_calendar(void **state);
void tm_test_charsets(void **state);
void tm_test_filters(void **state);
void tm_test_dead_letter(void **state);

/* test_fast.c: the fast paths of evaluation against the general ones */
void tm_test_fast_decimals(void **state);
void tm_test_fast_text(void **state);

/* test_erp.c: the shipped mappings of the sample legacy ERP */
void tm_test_erp_sample(void **state);
void tm_test_erp_no_allocation(void **state);

#endif
