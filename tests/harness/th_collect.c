/*
 * th_collect.c - checks a consumed stream of sales_order events against what th_writer
 * committed: at-least-once, per-key order, re-deliveries only across restarts, stable event ids.
 * The rules are listed with th_collector_new() in harness.h.
 *
 * A row's events all land in one partition (same key bytes, same partition), so the consumer's
 * per-partition order is the order siphon produced them in; a row seen in two partitions is
 * itself a violation.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness_int.h"

typedef struct th_seen {
    char *event_id;
    int64_t ts_ms;
} th_seen_t;

typedef struct th_row {
    int max_v;         /* highest version seen */
    int partition;     /* -1 until seen */
    th_seen_t *v;      /* [1..max_v] first copies (index v-1) */
    int cap;
} th_row_t;

struct th_collector {
    th_decoder_t *dec;
    char *amount_field;
    th_row_t *rows;
    int nrows;
    int64_t *restarts; /* wall-clock ms */
    int nrestarts;
    char first_violation[1024];
    th_collector_stats_t st;
};

static int64_t th__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

th_collector_t *th_collector_new(th_decoder_t *d, const char *amount_field)
{
    if (!amount_field) {
        th_err("could not create a collector: no entity field is mapped from hdamt");
        return NULL;
    }
    th_collector_t *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->dec = d;
    c->amount_field = strdup(amount_field);
    if (!c->amount_field)
        abort();
    return c;
}

void th_collector_restart(th_collector_t *c)
{
    c->restarts = realloc(c->restarts, (size_t)(c->nrestarts + 1) * sizeof(*c->restarts));
    if (!c->restarts)
        abort();
    c->restarts[c->nrestarts++] = th__wall_ms();
}

static th_row_t *th__row(th_collector_t *c, int k)
{
    if (k >= c->nrows) {
        int n = k + 1 > c->nrows * 2 ? k + 1 : c->nrows * 2;
        c->rows = realloc(c->rows, (size_t)n * sizeof(*c->rows));
        if (!c->rows)
            abort();
        for (int i = c->nrows; i < n; i++) {
            memset(&c->rows[i], 0, sizeof(c->rows[i]));
            c->rows[i].partition = -1;
        }
        c->nrows = n;
    }
    return &c->rows[k];
}

/* The writer's row number in a decoded key: the first "W" followed by 5 digits. -1 if none. */
static int th__row_of_key(json_t *key)
{
    char *s = json_dumps(key, JSON_COMPACT);
    int k = -1;
    for (const char *p = s; p && *p; p++) {
        if (p[0] == 'W' && strspn(p + 1, "0123456789") >= 5) {
            k = atoi(p + 1) - 1;
            break;
        }
    }
    free(s);
    return k;
}

static int th__violation(th_collector_t *c, char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int th__violation(th_collector_t *c, char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!c->first_violation[0])
        snprintf(c->first_violation, sizeof(c->first_violation), "%s", msg);
    if (why && size)
        snprintf(why, size, "%s", c->first_violation);
    return -1;
}

/* Is there a restart between a first copy produced at t1 and a re-delivery produced at t2? */
static int th__restart_between(const th_collector_t *c, int64_t t1, int64_t t2)
{
    for (int i = 0; i < c->nrestarts; i++)
        if (c->restarts[i] >= t1 && c->restarts[i] <= t2)
            return 1;
    return 0;
}

int th_collector_add(th_collector_t *c, const th_msgs_t *msgs, int from, char *why, size_t size)
{
    int rc = c->first_violation[0] ? -1 : 0;
    if (rc && why && size)
        snprintf(why, size, "%s", c->first_violation);
    char path[160];
    snprintf(path, sizeof(path), "after.%s", c->amount_field);
    for (int i = from; i < msgs->n; i++) {
        const th_msg_t *m = &msgs->v[i];
        c->st.messages++;
        th_event_t ev;
        if (th_decode(c->dec, m, &ev) != 0) {
            rc = th__violation(c, why, size, "message p%d@%" PRId64 " could not be decoded",
                               m->partition, m->offset);
            continue;
        }
        int k = th__row_of_key(ev.key);
        if (k < 0 || !ev.value) {
            c->st.foreign++;
            th_event_clear(&ev);
            continue;
        }
        char buf[64];
        th_json_text(ev.value, path, buf, sizeof(buf));
        char *end;
        double dv = strtod(buf, &end);
        int v = (int)dv;
        if (end == buf || *end || (double)v != dv || v < 1) {
            rc = th__violation(c, why, size, "row W%05d: %s is \"%s\", expected a version >= 1",
                               k + 1, path, buf);
            th_event_clear(&ev);
            continue;
        }
        th_row_t *row = th__row(c, k);
        if (row->partition >= 0 && row->partition != m->partition)
            rc = th__violation(c, why, size,
                               "row W%05d arrived in partitions %d and %d: its order is lost",
                               k + 1, row->partition, m->partition);
        row->partition = m->partition;
        const char *id = ev.event_id ? ev.event_id : "";
        if (v > row->max_v) {
            if (v != row->max_v + 1)
                rc = th__violation(c, why, size,
                                   "row W%05d: version %d arrived (p%d@%" PRId64 ") right after "
                                   "version %d: versions %d..%d were skipped or reordered",
                                   k + 1, v, m->partition, m->offset, row->max_v,
                                   row->max_v + 1, v - 1);
            char want = v == 1 ? 'c' : 'u';
            if (ev.op != want)
                rc = th__violation(c, why, size, "row W%05d version %d: op '%c', expected '%c'",
                                   k + 1, v, ev.op ? ev.op : '?', want);
            if (v > row->cap) {
                int n = v * 2 > 16 ? v * 2 : 16;
                row->v = realloc(row->v, (size_t)n * sizeof(*row->v));
                if (!row->v)
                    abort();
                memset(row->v + row->cap, 0, (size_t)(n - row->cap) * sizeof(*row->v));
                row->cap = n;
            }
            for (int x = row->max_v + 1; x < v; x++) /* fill skipped ones so lookups work */
                row->v[x - 1].event_id = NULL;
            row->v[v - 1].event_id = strdup(id);
            row->v[v - 1].ts_ms = m->timestamp_ms;
            row->max_v = v;
            c->st.events++;
        } else {
            c->st.duplicates++;
            th_seen_t *first = &row->v[v - 1];
            if (!first->event_id) {
                rc = th__violation(c, why, size,
                                   "row W%05d: version %d arrived after version %d (reordered)",
                                   k + 1, v, row->max_v);
            } else if (strcmp(first->event_id, id) != 0) {
                rc = th__violation(c, why, size,
                                   "row W%05d version %d was delivered twice with different "
                                   "event ids: \"%s\" then \"%s\" (ids must be deterministic)",
                                   k + 1, v, first->event_id, id);
            } else if (!th__restart_between(c, first->ts_ms, m->timestamp_ms)) {
                rc = th__violation(c, why, size,
                                   "row W%05d version %d (event %s) was delivered twice, at "
                                   "%" PRId64 " and %" PRId64 " ms, with no restart between",
                                   k + 1, v, id, first->ts_ms, m->timestamp_ms);
            }
        }
        th_event_clear(&ev);
    }
    return rc;
}

int th_collector_complete(const th_collector_t *c, const th_writer_t *w)
{
    for (int k = 0; k < th_writer_nkeys(w); k++) {
        int want = th_writer_version(w, k);
        int have = k < c->nrows ? c->rows[k].max_v : 0;
        if (have < want)
            return 0;
    }
    return 1;
}

void th_collector_missing(const th_collector_t *c, const th_writer_t *w, char *buf, size_t size)
{
    size_t off = 0;
    int shown = 0, missing_rows = 0;
    long missing = 0;
    buf[0] = '\0';
    for (int k = 0; k < th_writer_nkeys(w); k++) {
        int want = th_writer_version(w, k);
        int have = k < c->nrows ? c->rows[k].max_v : 0;
        if (have > want && off < size)
            off += (size_t)snprintf(buf + off, size - off,
                                    "row W%05d: version %d arrived but only %d committed; ",
                                    k + 1, have, want);
        if (have >= want)
            continue;
        missing_rows++;
        missing += want - have;
        if (shown++ < 5 && off < size)
            off += (size_t)snprintf(buf + off, size - off, "row W%05d has %d of %d; ", k + 1,
                                    have, want);
    }
    if (off < size)
        snprintf(buf + off, size - off, "%ld versions missing in %d rows", missing, missing_rows);
}

th_collector_stats_t th_collector_stats(const th_collector_t *c)
{
    return c->st;
}

void th_collector_destroy(th_collector_t *c)
{
    if (!c)
        return;
    for (int k = 0; k < c->nrows; k++) {
        for (int v = 0; v < c->rows[k].max_v; v++)
            free(c->rows[k].v[v].event_id);
        free(c->rows[k].v);
    }
    free(c->rows);
    free(c->restarts);
    free(c->amount_field);
    free(c);
}

int th_collect_until_complete(th_consumer_t *cons, th_msgs_t *msgs, th_collector_t *c,
                              const th_writer_t *w, th_proc_t *watch, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    char why[1024];
    for (;;) {
        int from = msgs->n;
        if (th_consumer_poll(cons, msgs, msgs->n + 100000, 200) < 0)
            return th_err("consumer failed");
        if (th_collector_add(c, msgs, from, why, sizeof(why)) != 0)
            return th_err("delivery check failed: %s", why);
        if (th_collector_complete(c, w))
            return 0;
        if (watch && !th_proc_running(watch)) {
            th_collector_missing(c, w, why, sizeof(why));
            return th_err("siphon (pid %d) exited with code %d before everything arrived: %s",
                          (int)th_proc_pid(watch), th_proc_exit_code(watch), why);
        }
        if (th_now_ms() >= deadline) {
            th_collector_missing(c, w, why, sizeof(why));
            return th_err("not every committed version arrived within %d ms: %s", timeout_ms,
                          why);
        }
    }
}
