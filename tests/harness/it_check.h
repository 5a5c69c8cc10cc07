/*
 * it_check.h - cmocka glue for the integration tests: a check that, when it fails, says what
 * was expected, prints every siphon log and the server log of the environment, then fails the
 * test (cmocka runs the teardown, which stops the servers).
 *
 * Include it instead of <cmocka.h> in the tests under tests/it/.
 */
#ifndef SIPHON_TEST_IT_CHECK_H
#define SIPHON_TEST_IT_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"

/* IT_CHECK(env, cond, "printf format", args...): env may be NULL (no logs to print). */
#define IT_CHECK(env, cond, ...)                                                             \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            th_err("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                    \
            th_env_dump_logs(env);                                                           \
            fail_msg(__VA_ARGS__);                                                           \
        }                                                                                    \
    } while (0)

#endif
