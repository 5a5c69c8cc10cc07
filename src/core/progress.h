/*
 * progress.h - the progress display of long-running work over named items (a snapshot's
 * tables): rows done, rate, percent of an estimate and ETA, as a live line on a terminal or as
 * log lines otherwise.
 *
 * On a terminal (tty) the line of the item that moved last is redrawn in place (at most every
 * 200 ms) and ended with a newline when that item finishes, so finished items stay on screen:
 *
 *     snapshot oehdr                               41200 rows      90498 rows/s   21% ETA 2s
 *
 * Off a terminal, an INFO log line (facility of the caller) at most every 5 seconds, and one
 * when an item finishes. The caller owns the counters and calls siphon_progress_show() after
 * each step; nothing here allocates, and nothing is thread-safe: one thread shows.
 */
#ifndef SIPHON_CORE_PROGRESS_H
#define SIPHON_CORE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct siphon_progress {
    const char *facility;  /* log facility ("pg", "mysql"); borrowed */
    const char *what;      /* the work, first word of every line ("snapshot"); borrowed */
    const char *unit;      /* what is counted ("rows"); borrowed */
    int tty;               /* 1: live line on stderr; 0: log lines */
    int64_t last_ms;       /* when a line was last shown */
} siphon_progress_t;

/* One item's state, as the caller keeps it. */
typedef struct siphon_progress_item {
    const char *name;       /* "oehdr", "erp.oehdr" */
    uint64_t done;          /* units done so far */
    uint64_t done_before;   /* of those, done before started_ms (resumed work): not in the rate */
    double estimate;        /* expected total units; <= 0: unknown (no percent, no ETA) */
    int64_t started_ms;     /* monotonic ms when the item started */
    int finished;           /* the item is complete */
    const char *no_estimate_hint; /* appended to log lines when there is no estimate, or NULL
                                     ("the table was never analyzed") */
} siphon_progress_item_t;

/* Set up: tty < 0 asks isatty(stderr). Strings are borrowed and must outlive p. */
void siphon_progress_init(siphon_progress_t *p, const char *facility, const char *what,
                          const char *unit, int tty);

/* Format the item's line as of now_ms into buf, counting `unit` (NULL: "rows") (always NUL-terminated): the terminal form when
 * tty (without the leading "\r\033[K" and trailing newline), else the log form. Returns buf. */
const char *siphon_progress_format(const siphon_progress_item_t *it, const char *unit, int tty,
                                   int64_t now_ms, char *buf, size_t size);

/* Show the item when due (tty: 200 ms since the last line; log: 5 s), or always when force or
 * when the item has finished. 1 when a line was shown, else 0. */
int siphon_progress_show(siphon_progress_t *p, const siphon_progress_item_t *it, int force);

#endif
