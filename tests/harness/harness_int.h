/*
 * harness_int.h - declarations shared by the harness's own files (not for tests).
 *
 * The cleanup registry: every temp dir, PostgreSQL postmaster and child process the harness
 * creates is recorded here so that an atexit handler and the signal handlers can stop and
 * remove them when a test ends without cleaning up. The registry is fixed-size arrays (the
 * signal handler must not touch malloc'd memory) guarded by a mutex for normal callers.
 */
#ifndef SIPHON_TEST_HARNESS_INT_H
#define SIPHON_TEST_HARNESS_INT_H

#include <sys/types.h>

#include "harness.h"

#define TH_PG_BIN "/usr/lib/postgresql/15/bin"

enum { TH_PID_CHILD = 1, TH_PID_POSTMASTER = 2 };

/* Install the atexit and signal handlers (once) and sweep dead runs' temp dirs. */
void th__cleanup_init(void);
void th__register_dir(const char *dir);
void th__unregister_dir(const char *dir);
void th__register_pid(pid_t pid, int kind);
void th__unregister_pid(pid_t pid);

/* Stop a postmaster that is not our child: SIGQUIT (immediate shutdown), wait up to wait_ms
 * for it to go, then SIGKILL. Async-signal-safe. */
void th__kill_postmaster(pid_t pid, int wait_ms);
/* rm -rf dir through /bin/rm (async-signal-safe: fork, execv, waitpid). */
void th__rmrf(const char *dir);

/* th_run with a working directory for the child (NULL: unchanged). */
int th__run_full(char *const argv[], char *const extra_env[], const char *cwd, int timeout_ms,
                 int *exit_code, char **out, char **err);

/* Print a file (its last max_lines lines; 0 = all) to stderr between markers. */
void th__dump_path(const char *title, const char *path, int max_lines);

/* Close every descriptor >= 3 (in a child after fork). */
void th__close_from(int lowfd);

#endif
