/*
 * cmd_validate.c - `siphon validate`: config, mappings and schemas, without connecting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "registry.h"

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

int siphon_cmd_validate(int argc, char **argv)
{
    const char *config = NULL;
    int r = siphon_cli_parse_config_opts(argc, argv, usage_validate, &config, NULL);
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

