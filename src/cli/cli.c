/*
 * cli.c - what the subcommands share: signal handling and the --config/--log-level options.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

volatile sig_atomic_t siphon_cli_stop = 0;

static void on_signal(int sig)
{
    if (siphon_cli_stop) {
        /* a second signal: the operator insists; nothing unacknowledged is lost anyway */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    siphon_cli_stop = 1;
}

void siphon_cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Parse --config/--log-level; returns 0, 1 (help shown) or 2 (usage error). */
int siphon_cli_parse_config_opts(int argc, char **argv, const char *usage, const char **config,
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

