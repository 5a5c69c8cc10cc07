/*
 * cli.h - the subcommands of `siphon`. Each command lives in its own file (src/cli/cmd_*.c) and
 * is listed in the table in src/main.c. A command returns the process exit code: 0 success,
 * 1 failure (its message on stderr says what to do next), 2 wrong usage. Only main() exits.
 */
#ifndef SIPHON_CLI_H
#define SIPHON_CLI_H

#include <signal.h>

typedef struct siphon_cmd {
    const char *name;
    const char *summary; /* one line for `siphon --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} siphon_cmd_t;

/* Set by SIGINT/SIGTERM once siphon_cli_signals_install() ran; long-running commands poll it. */
extern volatile sig_atomic_t siphon_cli_stop;
/* Install SIGINT/SIGTERM handlers that set siphon_cli_stop (a second signal kills at once), and
 * ignore SIGPIPE. */
void siphon_cli_signals_install(void);

/* Parse the common options: -c/--config FILE (required), -l/--log-level LEVEL (only when level is
 * not NULL), -h/--help (prints usage to stdout). Returns 0, 1 when help was shown, 2 on a usage
 * error (message printed). */
int siphon_cli_parse_config_opts(int argc, char **argv, const char *usage, const char **config,
                                 const char **level);

int siphon_cmd_run(int argc, char **argv);
int siphon_cmd_tail(int argc, char **argv);
int siphon_cmd_schema(int argc, char **argv);
int siphon_cmd_validate(int argc, char **argv);
int siphon_cmd_preview(int argc, char **argv);
int siphon_cmd_snapshot(int argc, char **argv);
int siphon_cmd_version(int argc, char **argv);

#endif
