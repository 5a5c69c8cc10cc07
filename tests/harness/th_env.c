/*
 * th_env.c - one integration-test environment for the pipeline tests' order table: a throwaway
 * PostgreSQL with public.oehdr (tests/it/fixtures/orders-basic/oehdr.sql), a 3-broker mock
 * Kafka cluster with the entity topic, the decoder for the fixture's mapping and schema, a
 * siphon.yaml pointing at them, and the siphon runs made against them (each run logs to its
 * own file, printed when a test fails). The sample legacy ERP and the shipped mappings have
 * their own test (tests/it/0020-*).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

/* The pipeline tests' table, mapping and schema (relative to the source tree). */
#define TH_ENV_FIXTURE "tests/it/fixtures/orders-basic"

/* <source>/TH_ENV_FIXTURE/<sub>: the same for the whole process, so a static buffer. */
static const char *th__fixture_dir(const char *sub)
{
    static char maps[4096], schemas[4096];
    char *buf = strcmp(sub, "mappings") == 0 ? maps : schemas;
    if (!buf[0])
        snprintf(buf, sizeof(maps), "%s/%s/%s", th_source_dir(), TH_ENV_FIXTURE, sub);
    return buf;
}

th_env_t *th_env_new(void)
{
    th_env_t *env = calloc(1, sizeof(*env));
    if (!env)
        abort();
    env->dir = th_tempdir();
    if (!env->dir)
        goto fail;
    env->pg = th_pg_start();
    if (!env->pg)
        goto fail;
    char *ddl = th_path(th_source_dir(), TH_ENV_FIXTURE "/oehdr.sql");
    int rc = th_pg_exec_file(env->pg, ddl);
    free(ddl);
    if (rc != 0)
        goto fail;
    env->kafka = th_kafka_start(3);
    if (!env->kafka)
        goto fail;
    env->topic = strdup("it.sales_order.v1");
    if (th_kafka_create_topic(env->kafka, env->topic, TH_TOPIC_PARTITIONS) != 0)
        goto fail;
    env->dec = th_decoder_new(th__fixture_dir("mappings"), th__fixture_dir("schemas"));
    if (!env->dec)
        goto fail;
    env->config_path = th_path(env->dir, "siphon.yaml");
    env->offsets_path = th_path(env->dir, "offsets.json");
    env->conf.name = "it";
    env->conf.conninfo = th_pg_conninfo(env->pg);
    env->conf.slot = "siphon_it";
    env->conf.publication = "siphon_it";
    env->conf.bootstraps = th_kafka_bootstraps(env->kafka);
    env->conf.topic_prefix = "it";
    env->conf.offsets_path = env->offsets_path;
    env->conf.status_interval_ms = 500;
    env->conf.flush_interval_ms = 200;
    env->conf.log_level = "info";
    env->conf.mappings_dir = th__fixture_dir("mappings");
    env->conf.schemas_dir = th__fixture_dir("schemas");
    if (th_env_write_conf(env) != 0)
        goto fail;
    return env;

fail:
    th_env_destroy(env);
    return NULL;
}

int th_env_write_conf(th_env_t *env)
{
    return th_siphon_conf_write(env->config_path, &env->conf);
}

int th_env_siphon_start(th_env_t *env)
{
    if (env->siphon && th_proc_running(env->siphon))
        return th_err("siphon (pid %d) is still running", (int)th_proc_pid(env->siphon));
    char name[64];
    snprintf(name, sizeof(name), "siphon-%d.log", env->nruns + 1);
    char *log = th_path(env->dir, name);
    th_proc_t *p = th_siphon_start(env->config_path, log);
    free(log);
    if (!p)
        return -1;
    env->runs = realloc(env->runs, (size_t)(env->nruns + 1) * sizeof(*env->runs));
    if (!env->runs)
        abort();
    env->runs[env->nruns++] = p;
    env->siphon = p;
    return 0;
}

int th_env_siphon_stop(th_env_t *env, int sig, int timeout_ms)
{
    th_proc_t *p = env->siphon;
    if (!p)
        return th_err("no siphon run to stop");
    env->siphon = NULL;
    th_proc_signal(p, sig);
    if (!th_proc_wait(p, timeout_ms)) {
        th_err("siphon (pid %d) did not exit within %d ms of signal %d; killing it",
               (int)th_proc_pid(p), timeout_ms, sig);
        th_proc_signal(p, SIGKILL);
        th_proc_wait(p, 5000);
        return -1;
    }
    return th_proc_exit_code(p);
}

int th_env_wait_streaming(th_env_t *env, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    const char *slot = env->conf.slot ? env->conf.slot : "siphon_it";
    for (;;) {
        /* the slot is also "active" while it is being created: wait for the walsender that
         * holds it to report state 'streaming' */
        char *v = th_pg_value(env->pg, NULL,
                              "SELECT count(*) FROM pg_replication_slots s "
                              "JOIN pg_stat_replication r ON r.pid = s.active_pid "
                              "WHERE s.slot_name = '%s' AND r.state = 'streaming'",
                              slot);
        int active = v ? atoi(v) : 0;
        free(v);
        if (active > 0)
            return 0;
        if (env->siphon && !th_proc_running(env->siphon))
            return th_err("siphon exited (code %d) before streaming from slot %s",
                          th_proc_exit_code(env->siphon), slot);
        if (th_now_ms() >= deadline)
            return th_err("slot %s was not active within %d ms of starting siphon", slot,
                          timeout_ms);
        th_sleep_ms(50);
    }
}

void th_env_dump_logs(th_env_t *env)
{
    if (!env || env->dumped)
        return;
    env->dumped = 1;
    for (int i = 0; i < env->nruns; i++)
        th_proc_dump_log(env->runs[i], 60);
    if (env->pg)
        th_pg_dump_log(env->pg, 30);
}

void th_env_destroy(th_env_t *env)
{
    if (!env)
        return;
    for (int i = 0; i < env->nruns; i++)
        th_proc_destroy(env->runs[i]);
    free(env->runs);
    th_decoder_destroy(env->dec);
    th_kafka_destroy(env->kafka);
    th_pg_destroy(env->pg);
    if (env->dir)
        th_tempdir_remove(env->dir);
    free(env->dir);
    free(env->topic);
    free(env->config_path);
    free(env->offsets_path);
    free(env);
}

th_fx_t *th_fx_new(void)
{
    th_fx_t *fx = calloc(1, sizeof(*fx));
    if (!fx)
        abort();
    fx->env = th_env_new();
    if (!fx->env) {
        free(fx);
        return NULL;
    }
    return fx;
}

void th_fx_destroy(th_fx_t *fx)
{
    if (!fx)
        return;
    if (fx->w)
        th_writer_stop(fx->w);
    th_writer_destroy(fx->w);
    th_collector_destroy(fx->col);
    th_consumer_destroy(fx->cons);
    th_msgs_free(&fx->msgs);
    th_env_destroy(fx->env);
    free(fx);
}

int th_fx_pump(th_fx_t *fx, int ms)
{
    int64_t until = th_now_ms() + ms;
    char why[1024];
    do {
        int from = fx->msgs.n;
        int64_t left = until - th_now_ms();
        if (th_consumer_poll(fx->cons, &fx->msgs, fx->msgs.n + 100000,
                             left < 100 ? (left > 0 ? (int)left : 0) : 100) < 0)
            return -1;
        if (fx->col && th_collector_add(fx->col, &fx->msgs, from, why, sizeof(why)) != 0)
            return th_err("delivery check failed: %s", why);
        if (fx->env->siphon && !th_proc_running(fx->env->siphon))
            return th_err("siphon (pid %d) exited unexpectedly with code %d",
                          (int)th_proc_pid(fx->env->siphon),
                          th_proc_exit_code(fx->env->siphon));
    } while (th_now_ms() < until);
    return 0;
}

int th_env_consume(th_env_t *env, th_consumer_t *cons, th_msgs_t *msgs, int until_n,
                   int timeout_ms)
{
    int64_t until = th_now_ms() + timeout_ms;
    while (msgs->n < until_n && th_now_ms() < until) {
        th_consumer_poll(cons, msgs, until_n, 200);
        if (msgs->n < until_n && env->siphon && !th_proc_running(env->siphon)) {
            th_consumer_poll(cons, msgs, until_n, 500); /* what it sent before dying */
            if (msgs->n < until_n)
                th_err("siphon (pid %d) exited with code %d while %d more messages were "
                       "expected", (int)th_proc_pid(env->siphon),
                       th_proc_exit_code(env->siphon), until_n - msgs->n);
            break;
        }
    }
    return msgs->n;
}
