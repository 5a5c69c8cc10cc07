/*
 * main.c - unit_compat: Avro schema compatibility (src/avro/compat.c), the schema history
 * (src/avro/history.c), `siphon schema` (src/cli/cmd_schema.c), and two majors of one entity
 * mapped side by side. The golden cases under tests/golden/compat/ come first (golden.c), then
 * what data files cannot show (test_history.c, test_cli.c, test_side_by_side.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "compat_test.h"

int main(void)
{
    static const struct {
        const char *kind;
        void (*run)(void **);
    } kinds[] = {{"resolve", tc_run_resolve},
                 {"modes", tc_run_modes},
                 {"history", tc_run_history},
                 {"diff", tc_run_diff}};
    struct CMUnitTest tests[512];
    char **lists[8];
    int nlists = 0, n = 0, failed = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        char **dirs, **names;
        int m = tc_golden_cases(kinds[k].kind, &dirs, &names);
        if (m <= 0) {
            fprintf(stderr, "no golden cases in %s/tests/golden/compat/%s (set "
                            "SIPHON_SOURCE_DIR)\n", tc_source_dir(), kinds[k].kind);
            return 1;
        }
        lists[nlists++] = dirs;
        lists[nlists++] = names;
        for (int i = 0; i < m && n < 512; i++) {
            tests[n] = (struct CMUnitTest){names[i], kinds[k].run, NULL, NULL, dirs[i]};
            n++;
        }
    }
    failed += _cmocka_run_group_tests("compat_golden", tests, (size_t)n, NULL, NULL);
    failed += tc_history_tests();
    failed += tc_cli_tests();
    failed += tc_side_by_side_tests();
    for (int i = 0; i < nlists; i++) {
        for (char **p = lists[i]; *p; p++)
            free(*p);
        free(lists[i]);
    }
    return failed ? 1 : 0;
}
