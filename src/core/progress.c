/*
 * progress.c - the progress display of long-running work over named items (progress.h): one
 * formatting function shared by the terminal and log forms, and the pacing that keeps a busy
 * loop from flooding either.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/progress.h"

#define PROGRESS_TTY_MS 200
#define PROGRESS_LOG_MS 5000

void siphon_progress_init(siphon_progress_t *p, const char *facility, const char *what,
                          const char *unit, int tty)
{
    p->facility = facility ? facility : "progress";
    p->what = what ? what : "work";
    p->unit = unit ? unit : "rows";
    p->tty = tty < 0 ? isatty(STDERR_FILENO) : tty != 0;
    p->last_ms = 0;
}

const char *siphon_progress_format(const siphon_progress_item_t *it, const char *unit, int tty,
                                   int64_t now_ms, char *buf, size_t size)
{
    const char *u = unit ? unit : "rows";
    double secs = (double)(now_ms - it->started_ms) / 1000.0;
    uint64_t now_done = it->done > it->done_before ? it->done - it->done_before : 0;
    double rate = secs > 0 ? (double)now_done / secs : 0;
    char pct[16] = "?", eta[32] = "?";
    if (it->finished) {
        snprintf(pct, sizeof(pct), "100%%");
        snprintf(eta, sizeof(eta), "done");
    } else if (it->estimate > 0) {
        double p = 100.0 * (double)it->done / it->estimate;
        snprintf(pct, sizeof(pct), "%.0f%%", p > 100 ? 100 : p);
        if (rate > 0 && it->estimate > (double)it->done)
            snprintf(eta, sizeof(eta), "%.0fs", (it->estimate - (double)it->done) / rate);
    }
    const char *name = it->name ? it->name : "?";
    if (tty)
        snprintf(buf, size, "%-30s %12" PRIu64 " %s %10.0f %s/s %5s ETA %s", name, it->done, u,
                 rate, u, pct, eta);
    else if (it->estimate > 0)
        snprintf(buf, size, "%s: %" PRIu64 " %s, %.0f %s/s, %s of about %.0f, ETA %s", name,
                 it->done, u, rate, u, pct, it->estimate, eta);
    else
        snprintf(buf, size, "%s: %" PRIu64 " %s, %.0f %s/s%s%s%s%s", name, it->done, u, rate, u,
                 it->finished ? ", done" : "", it->no_estimate_hint ? " (no estimate: " : "",
                 it->no_estimate_hint ? it->no_estimate_hint : "",
                 it->no_estimate_hint ? ")" : "");
    return buf;
}

int siphon_progress_show(siphon_progress_t *p, const siphon_progress_item_t *it, int force)
{
    int64_t now = siphon_clock_now_ms();
    if (!force && !it->finished &&
        now - p->last_ms < (p->tty ? PROGRESS_TTY_MS : PROGRESS_LOG_MS))
        return 0;
    p->last_ms = now;
    char line[768];
    siphon_progress_format(it, p->unit, p->tty, now, line, sizeof(line));
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s %s%s", p->what, line, it->finished ? "\n" : "");
        fflush(stderr);
    } else {
        siphon_log(SIPHON_LOG_INFO, p->facility, "%s of %s", p->what, line);
    }
    return 1;
}
