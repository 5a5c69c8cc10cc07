/*
 * main.c - the `siphon` command line: the table of subcommands and the top-level help. Each
 * command is in src/cli/cmd_<name>.c. The only place that calls exit() (by returning from main).
 * Exit codes: 0 success, 1 failure (the message on stderr says what to do next), 2 wrong usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const siphon_cmd_t commands[] = {
    {"run", "stream changes from the source to the sink until stopped (Ctrl-C)", siphon_cmd_run},
    {"schema", "check, list and compare published schema versions", siphon_cmd_schema},
    {"validate", "check a config, its mappings and schemas without connecting", siphon_cmd_validate},
    {"preview", "run rows of a table (or a JSON file) through a mapping, print the records", siphon_cmd_preview},
    {"tail", "print the events of a topic or of Avro files as JSON lines", siphon_cmd_tail},
    {"snapshot", "read one table again while `siphon run` streams (on demand)", siphon_cmd_snapshot},
    {"version", "print the version", siphon_cmd_version},
};

static void usage(FILE *out)
{
    fputs("siphon - stream changes of legacy ERP databases as canonical Avro change events\n"
          "\n"
          "Usage: siphon <command> [options]\n"
          "\n"
          "Commands:\n", out);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Run 'siphon <command> --help' for a command's options.\n"
          "\n"
          "Example:\n"
          "  siphon validate --config /etc/siphon/siphon.yaml && siphon run --config /etc/siphon/siphon.yaml\n"
          "\n"
          "Docs: docs/operations.md (running), docs/configuration.md, docs/mappings.md,\n"
          "      docs/snapshots.md, docs/events.md, docs/schemas.md, docs/tail.md\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version"))
        cmd = "version";
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "siphon: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
