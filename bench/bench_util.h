/*
 * bench_util.h - small helpers shared by the benchmarks in bench/ (each bench .c file is its own
 * executable, so shared code lives here as static inline functions).
 */
#ifndef SIPHON_BENCH_UTIL_H
#define SIPHON_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness.h"

/* The postmaster's pid: the parent of our own backend (its reaped children's CPU, cutime +
 * cstime in /proc/<pid>/stat, is what backends and walsenders have used). 0 when unknown. */
static inline pid_t bench_postmaster_pid(th_pg_t *pg)
{
    pid_t pm = 0;
    char *bp = th_pg_value(pg, NULL, "SELECT pg_backend_pid()");
    if (bp) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%s/stat", bp);
        char *stat = th_read_file(path, NULL, 1);
        char *p = stat ? strrchr(stat, ')') : NULL;
        int ppid = 0;
        if (p && sscanf(p + 2, "%*c %d", &ppid) == 1)
            pm = (pid_t)ppid;
        free(stat);
        free(bp);
    }
    return pm;
}

/* A throwaway PostgreSQL 15 (the harness's) with autovacuum off and the benchmark's order-line
 * table and generator (bench/sql/oeline.sql). NULL on error (the harness printed why). */
static inline th_pg_t *bench_pg_oeline(void)
{
    th_pg_t *pg = th_pg_start();
    if (!pg)
        return NULL;
    char *ddl = th_path(th_source_dir(), "bench/sql/oeline.sql");
    int rc = th_pg_exec(pg, "ALTER SYSTEM SET autovacuum = off") ||
             th_pg_exec(pg, "SELECT pg_reload_conf()") || th_pg_exec_file(pg, ddl);
    free(ddl);
    if (rc) {
        th_pg_destroy(pg);
        return NULL;
    }
    return pg;
}

#endif
