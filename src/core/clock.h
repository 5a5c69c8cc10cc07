/*
 * clock.h - the one monotonic clock every module measures intervals with (timeouts, backoffs,
 * progress rates), and condition variables whose timed waits use the same clock, so that a
 * change of the wall clock never shortens or stretches a wait.
 */
#ifndef SIPHON_CLOCK_H
#define SIPHON_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC (an arbitrary origin: only differences mean anything). */
int64_t siphon_clock_now_ms(void);

/* The CLOCK_MONOTONIC instant ms milliseconds from now, for pthread_cond_timedwait on a
 * condition variable made by siphon_clock_cond_init(). */
struct timespec siphon_clock_abs_after(int64_t ms);

/* pthread_cond_init with CLOCK_MONOTONIC for timed waits. 0, or the pthread error. The caller
 * destroys it with pthread_cond_destroy(). */
int siphon_clock_cond_init(pthread_cond_t *cv);

#endif
