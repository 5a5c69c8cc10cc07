/*
 * main.c - the `siphon` command line: subcommands, help texts, signal handling, exit codes.
 * The only place that calls exit(). Exit codes: 0 success, 1 failure (message on stderr says
 * what to do next), 2 wrong usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "registry.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    if (stop_requested) {
        /* a second signal: the operator insists; nothing unacknowledged is lost anyway */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_requested = 1;
}

static const char *usage_main =
    "siphon - stream changes of legacy ERP databases as canonical Avro change events\n"
    "\n"
    "Usage: siphon <command> [options]\n"
    "\n"
    "Commands:\n"
    "  run        stream changes from the source to the sink until stopped (Ctrl-C)\n"
    "  validate   check a config, its mappings and schemas without connecting\n"
    "  version    print the version\n"
    "\n"
    "Run 'siphon <command> --help' for a command's options.\n"
    "\n"
    "Example:\n"
    "  siphon validate --config /etc/siphon/siphon.yaml && siphon run --config /etc/siphon/siphon.yaml\n"
    "\n"
    "Docs: docs/operations.md (running), docs/configuration.md, docs/mappings.md, docs/events.md\n";

static const char *usage_run =
    "Usage: siphon run --config FILE [--log-level LEVEL]\n"
    "\n"
    "Streams every change of the mapped tables to the sink. SIGINT/SIGTERM stop it cleanly:\n"
    "in-flight events are drained, the last delivered position is acknowledged to the source\n"
    "and written to the offsets file, and siphon exits 0. A restart resumes from that position;\n"
    "events after it may be delivered again (de-duplicate on event_id), none is skipped.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the siphon.yaml to use (required)\n"
    "  -l, --log-level LEVEL error, warning, notice, info or debug (overrides log.level)\n"
    "  -h, --help            this help\n"
    "\n"
    "Example:\n"
    "  ERP_PASSWORD=secret siphon run --config siphon.yaml\n";

static const char *usage_validate =
    "Usage: siphon validate --config FILE\n"
    "\n"
    "Checks the config file, every mapping file and every schema it uses, without connecting to\n"
    "any server. Exits 0 when all is well, 1 with file:line:column and what was expected when not.\n"
    "(Columns and their types are checked against the live tables when `siphon run` starts.)\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the siphon.yaml to check (required)\n"
    "  -h, --help            this help\n"
    "\n"
    "Example:\n"
    "  siphon validate --config siphon.yaml && echo ok\n";

static const char *usage_version =
    "Usage: siphon version\n"
    "\n"
    "Prints the version of siphon and of the libraries it was built with.\n"
    "\n"
    "Example:\n"
    "  siphon version\n";

/* Parse --config/--log-level; returns 0, 1 (help shown) or 2 (usage error). */
static int parse_opts(int argc, char **argv, const char *usage, const char **config,
                      const char **level)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config = optarg; break;
        case 'l':
            if (!level)
                goto bad;
            *level = optarg;
            break;
        case 'h': fputs(usage, stdout); return 1;
        default:
        bad:
            fprintf(stderr, "siphon %s: unknown or incomplete option '%s'\n\n%s", argv[0],
                    argv[optind - 1], usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siphon %s: unexpected argument '%s'\n\n%s", argv[0], argv[optind], usage);
        return 2;
    }
    if (!*config) {
        fprintf(stderr, "siphon %s: --config FILE is required\n\n%s", argv[0], usage);
        return 2;
    }
    return 0;
}

static int cmd_validate(int argc, char **argv)
{
    const char *config = NULL;
    int r = parse_opts(argc, argv, usage_validate, &config, NULL);
    if (r)
        return r == 1 ? 0 : 2;
    char err[2048];
    siphon_config_t *cfg = NULL;
    if (siphon_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon validate: %s\n", err);
        return 1;
    }
    int rc = 1;
    if (!siphon_registry_source(cfg->source.type)) {
        fprintf(stderr, "siphon validate: %s: unknown source type '%s' (expected one of: %s)\n",
                config, cfg->source.type, siphon_registry_source_types());
        goto out;
    }
    if (!siphon_registry_sink(cfg->sink.type)) {
        fprintf(stderr, "siphon validate: %s: unknown sink type '%s' (expected one of: %s)\n",
                config, cfg->sink.type, siphon_registry_sink_types());
        goto out;
    }
    if (siphon_pipeline_validate(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon validate: %s\n", err);
        goto out;
    }
    printf("%s: ok (connector '%s', %s -> %s)\n", config, cfg->name, cfg->source.type,
           cfg->sink.type);
    rc = 0;
out:
    siphon_config_destroy(cfg);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    const char *config = NULL, *level = NULL;
    int r = parse_opts(argc, argv, usage_run, &config, &level);
    if (r)
        return r == 1 ? 0 : 2;
    char err[2048];
    siphon_config_t *cfg = NULL;
    if (siphon_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon run: %s\n", err);
        return 1;
    }
    int lvl = cfg->log.level;
    if (level && (lvl = siphon_log_level_parse(level)) < 0) {
        fprintf(stderr, "siphon run: unknown log level '%s' (expected error, warning, notice, "
                        "info or debug)\n", level);
        siphon_config_destroy(cfg);
        return 2;
    }
    siphon_log_setup(lvl, cfg->log.json);

    int rc = 1;
    const siphon_source_ops_t *src = siphon_registry_source(cfg->source.type);
    const siphon_sink_ops_t *snk = siphon_registry_sink(cfg->sink.type);
    if (!src || !snk) {
        fprintf(stderr, "siphon run: %s: unknown %s type '%s' (expected one of: %s)\n", config,
                src ? "sink" : "source", src ? cfg->sink.type : cfg->source.type,
                src ? siphon_registry_sink_types() : siphon_registry_source_types());
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    siphon_log(SIPHON_LOG_INFO, "main", "siphon %s starting connector '%s' (%s -> %s)",
               SIPHON_VERSION, cfg->name, cfg->source.type, cfg->sink.type);
    siphon_pipeline_stats_t stats;
    if (siphon_pipeline_run(cfg, src, snk, &stop_requested, &stats, err, sizeof(err)) < 0) {
        siphon_log(SIPHON_LOG_ERR, "main", "%s", err);
        goto out;
    }
    siphon_log(SIPHON_LOG_INFO, "main",
               "stopped cleanly: %llu events delivered, acknowledged position %s",
               (unsigned long long)stats.delivered, stats.acked_pos[0] ? stats.acked_pos : "(none)");
    rc = 0;
out:
    siphon_config_destroy(cfg);
    return rc;
}

#include <avro.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_version, stdout);
        return 0;
    }
    int pq = PQlibVersion();
    printf("siphon %s (librdkafka %s, libpq %d.%d)\n", SIPHON_VERSION, rd_kafka_version_str(),
           pq / 10000, pq % 10000);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate"))
        return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version"))
        return cmd_version(argc - 1, argv + 1);
    fprintf(stderr, "siphon: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
