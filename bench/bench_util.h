/*
 * bench_util.h - small helpers shared by the benchmarks in bench/ (each bench .c file is its own
 * executable, so shared code lives here as static inline functions).
 */
#ifndef SIPHON_BENCH_UTIL_H
#define SIPHON_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Seconds of CLOCK_MONOTONIC. */
static inline double bench_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of getrusage(who): RUSAGE_SELF, RUSAGE_CHILDREN. */
static inline double bench_rusage_s(int who)
{
    struct rusage r;
    getrusage(who, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* Two tick counts of /proc/<pid>/stat that follow each other, from field first_field (fields
 * counted as in proc(5): 14 utime + 15 stime, the process's own CPU; 16 cutime + 17 cstime,
 * its reaped children's), added up as seconds of CPU. -1 when unreadable. */
static inline double bench_stat_ticks_s(pid_t pid, int first_field)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *text = th_read_file(path, NULL, 1);
    char *p = text ? strrchr(text, ')') : NULL; /* the command name may hold spaces */
    double out = -1;
    if (p) {
        /* fields from 3 (state) on, separated by spaces */
        int field = 3;
        char *s = p + 2;
        while (*s && field < first_field) {
            if (*s++ == ' ')
                field++;
        }
        unsigned long long a = 0, b = 0;
        if (sscanf(s, "%llu %llu", &a, &b) == 2)
            out = (double)(a + b) / (double)sysconf(_SC_CLK_TCK);
    }
    free(text);
    return out;
}

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
