/*
 * th_writer.c - a thread that keeps committing transactions into the sample table while a test
 * kills, restarts and disconnects things around it, and remembers exactly which row versions
 * committed (see th_writer_start() in harness.h for the row/version scheme).
 *
 * States: RUNNING --[pause]--> PAUSED (no transaction in progress) --[resume]--> RUNNING;
 * any --[stop]--> joined. A broken connection (server restarted, backend terminated) moves it
 * through RECONNECT: reconnect with a short backoff, then re-read every row's version from the
 * table (hdamt), which settles any commit whose outcome was lost with the connection.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

struct th_writer {
    const th_pg_t *pg;
    th_writer_opts_t o;
    pthread_t thr;
    int running;     /* the thread was started and not yet joined */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pause_req;   /* guarded by mu */
    int paused;      /* guarded by mu: the thread is parked between transactions */
    atomic_int stop;
    atomic_long txns;
    int failed;
    int *ver;        /* committed version per row; owned by the thread until joined */
    unsigned rnd;
};

static unsigned th__rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* Re-read every row's version after a reconnect. 0 or -1. */
static int th__resync(th_writer_t *w, PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT hdordn, hdamt::bigint FROM public.oehdr "
                            "WHERE hdcomp = '01' AND hdordn LIKE 'W%'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        th_err("writer: could not re-read row versions: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    for (int k = 0; k < w->o.nkeys; k++)
        w->ver[k] = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int k = atoi(PQgetvalue(r, i, 0) + 1) - 1;
        if (k >= 0 && k < w->o.nkeys)
            w->ver[k] = atoi(PQgetvalue(r, i, 1));
    }
    PQclear(r);
    return 0;
}

static PGconn *th__writer_connect(th_writer_t *w)
{
    int64_t deadline = th_now_ms() + 60000;
    for (;;) {
        PGconn *c = PQconnectdb(th_pg_conninfo(w->pg));
        if (PQstatus(c) == CONNECTION_OK) {
            PQclear(PQexec(c, "SET client_min_messages = warning"));
            if (th__resync(w, c) == 0)
                return c;
        }
        PQfinish(c);
        if (atomic_load(&w->stop) || th_now_ms() > deadline)
            return NULL;
        th_sleep_ms(100);
    }
}

/* Build and run one transaction. 1 committed, 0 broken connection (outcome unknown), -1 error. */
static int th__one_txn(th_writer_t *w, PGconn *c)
{
    int n = 1 + (int)(th__rand(&w->rnd) % (unsigned)w->o.max_rows);
    if (n > w->o.nkeys)
        n = w->o.nkeys;
    int keys[64];
    int nk = 0;
    while (nk < n) {
        int k = (int)(th__rand(&w->rnd) % (unsigned)w->o.nkeys);
        int dup = 0;
        for (int i = 0; i < nk; i++)
            dup |= keys[i] == k;
        if (!dup)
            keys[nk++] = k;
    }
    int all_exist = 1;
    for (int i = 0; i < nk; i++)
        all_exist &= w->ver[keys[i]] > 0;

    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        abort();
    fputs("BEGIN;", f);
    if (nk > 1 && all_exist && th__rand(&w->rnd) % 3 == 0) {
        /* one statement, several rows */
        fputs("UPDATE public.oehdr SET hdamt = hdamt + 1, hdupdt = now() "
              "WHERE hdcomp = '01' AND hdordn IN (",
              f);
        for (int i = 0; i < nk; i++)
            fprintf(f, "%s'W%05d'", i ? "," : "", keys[i] + 1);
        fputs(");", f);
    } else {
        for (int i = 0; i < nk; i++) {
            int k = keys[i], v = w->ver[k] + 1;
            if (v == 1)
                fprintf(f,
                        "INSERT INTO public.oehdr (hdcomp, hdordn, hdcust, hdodat, hdamt, hdstat, "
                        "hdnote, hdupdt) VALUES ('01', 'W%05d', 'C%05d', "
                        "date '2024-01-01' + %d, %d, 'O', 'writer', now());",
                        k + 1, k % 97, k, v);
            else
                fprintf(f,
                        "UPDATE public.oehdr SET hdamt = %d, hdupdt = now() "
                        "WHERE hdcomp = '01' AND hdordn = 'W%05d';",
                        v, k + 1);
        }
    }
    fputs("COMMIT;", f);
    fclose(f);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    int rc;
    if (ok) {
        for (int i = 0; i < nk; i++)
            w->ver[keys[i]]++;
        atomic_fetch_add(&w->txns, 1);
        rc = 1;
    } else if (PQstatus(c) != CONNECTION_OK) {
        rc = 0;
    } else {
        th_err("writer: transaction failed: %s\n  %s", PQresultErrorMessage(r), sql);
        rc = -1;
    }
    PQclear(r);
    free(sql);
    return rc;
}

static void *th__writer_main(void *arg)
{
    th_writer_t *w = arg;
    PGconn *c = th__writer_connect(w);
    if (!c) {
        th_err("writer: could not connect to %s", th_pg_conninfo(w->pg));
        w->failed = 1;
        return NULL;
    }
    while (!atomic_load(&w->stop)) {
        pthread_mutex_lock(&w->mu);
        while (w->pause_req && !atomic_load(&w->stop)) {
            w->paused = 1;
            pthread_cond_broadcast(&w->cv);
            pthread_cond_wait(&w->cv, &w->mu);
        }
        w->paused = 0;
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->stop))
            break;
        int rc = th__one_txn(w, c);
        if (rc < 0) {
            w->failed = 1;
            break;
        }
        if (rc == 0) {
            PQfinish(c);
            c = th__writer_connect(w);
            if (!c) {
                if (!atomic_load(&w->stop)) {
                    th_err("writer: could not reconnect within 60 s");
                    w->failed = 1;
                }
                break;
            }
            continue;
        }
        if (w->o.pause_ms > 0)
            th_sleep_ms(w->o.pause_ms);
    }
    /* settle the versions once more: exact even if the last commit's outcome was lost */
    if (c && PQstatus(c) == CONNECTION_OK && th__resync(w, c) != 0)
        w->failed = 1;
    PQfinish(c);
    pthread_mutex_lock(&w->mu);
    w->paused = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

th_writer_t *th_writer_start(const th_pg_t *pg, const th_writer_opts_t *opts)
{
    th_writer_t *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->pg = pg;
    if (opts)
        w->o = *opts;
    if (w->o.nkeys <= 0)
        w->o.nkeys = 20;
    if (w->o.max_rows <= 0)
        w->o.max_rows = 4;
    if (w->o.max_rows > 64)
        w->o.max_rows = 64;
    if (w->o.pause_ms < 0)
        w->o.pause_ms = 0;
    else if (w->o.pause_ms == 0)
        w->o.pause_ms = 5;
    w->rnd = w->o.seed ? w->o.seed : 1;
    w->ver = calloc((size_t)w->o.nkeys, sizeof(*w->ver));
    if (!w->ver)
        abort();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thr, NULL, th__writer_main, w) != 0) {
        th_err("could not start the writer thread");
        free(w->ver);
        free(w);
        return NULL;
    }
    w->running = 1;
    return w;
}

void th_writer_pause(th_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->pause_req = 1;
    while (!w->paused)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void th_writer_resume(th_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->pause_req = 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

long th_writer_txns(const th_writer_t *w)
{
    return atomic_load(&((th_writer_t *)w)->txns);
}

int th_writer_stop(th_writer_t *w)
{
    if (!w->running)
        return w->failed ? -1 : 0;
    atomic_store(&w->stop, 1);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thr, NULL);
    w->running = 0;
    return w->failed ? -1 : 0;
}

int th_writer_nkeys(const th_writer_t *w)
{
    return w->o.nkeys;
}

int th_writer_version(const th_writer_t *w, int k)
{
    return k >= 0 && k < w->o.nkeys ? w->ver[k] : 0;
}

void th_writer_destroy(th_writer_t *w)
{
    if (!w)
        return;
    th_writer_stop(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->ver);
    free(w);
}
