/*
 * cmd_validate.c - `siphon validate`: config, mappings and schemas; then, when the source can be
 * reached, every mapped table against its mappings (columns exist, transform chains fit the
 * column types, filters and soft-delete flags compare with their columns). The live part opens
 * the connector for catalog work only (open_catalog: no slot, no publication); when the server
 * cannot be reached it says so and the exit code comes from the offline checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "pipeline/pipeline.h"
#include "registry.h"

static const char *usage_validate =
    "Usage: siphon validate --config FILE\n"
    "\n"
    "Checks the config file, every mapping file and every schema it uses; then, when it can\n"
    "connect to the source (catalog queries only: no slot or publication is created), every\n"
    "mapped table: its columns exist and every transform chain fits their types. Exits 0 when\n"
    "all is well, 1 with file:line:column and what was expected when not. When the source\n"
    "cannot be reached it says so, and the exit code comes from the offline checks.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the siphon.yaml to check (required)\n"
    "  -h, --help            this help\n"
    "\n"
    "Example:\n"
    "  siphon validate --config siphon.yaml && echo ok\n";

static void print_problem(const char *message, void *opaque)
{
    int *n = opaque;
    (*n)++;
    fprintf(stderr, "siphon validate: %s\n", message);
}

/* After the offline checks of the files: the secrets the mappings need from the environment,
 * then the live tables against the mappings. Prints "ok" and returns 0 when all is well (the
 * live part is skipped, and said so, when the server cannot be reached), 1 after printing
 * every problem. */
static int validate_more(const siphon_config_t *cfg, const char *config,
                         const siphon_source_ops_t *ops)
{
    char err[2048], live[2400];
    siphon_mapset_t *ms = NULL;
    siphon_source_t *src = NULL;
    int problems = 0, tables = 0;
    if (siphon_mapset_load(&ms, cfg->mappings_dir, cfg->schemas_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon validate: %s\n", err);
        return 1;
    }
    siphon_mapset_check_secrets(ms, print_problem, &problems);
    if (!ops->open_catalog || !ops->describe) {
        snprintf(live, sizeof(live), "live tables: not checked (the %s connector cannot "
                 "describe tables)", cfg->source.type);
        goto done;
    }
    if (ops->open_catalog(&src, cfg, err, sizeof(err)) < 0) {
        snprintf(live, sizeof(live), "live tables: not checked, could not connect (%.2000s); "
                 "only the offline checks were made", err);
        goto done;
    }
    for (int i = 0; i < siphon_mapset_count(ms); i++) {
        const siphon_mapping_t *map = siphon_mapset_get(ms, i);
        const char *schema = siphon_mapping_source_schema(map);
        const char *table = siphon_mapping_source_table(map);
        int seen = 0;
        for (int j = 0; j < i; j++) {
            const siphon_mapping_t *o = siphon_mapset_get(ms, j);
            seen |= !strcmp(siphon_mapping_source_schema(o), schema) &&
                    !strcmp(siphon_mapping_source_table(o), table);
        }
        if (seen)
            continue;
        tables++;
        const siphon_relation_t *rel = NULL;
        if (ops->describe(src, schema, table, &rel, err, sizeof(err)) < 0) {
            int line, col;
            siphon_mapping_source_position(map, &line, &col);
            fprintf(stderr, "siphon validate: %s:%d:%d: %s\n", siphon_mapping_path(map), line,
                    col, err);
            problems++;
            continue;
        }
        if (siphon_mapset_check(ms, rel, print_problem, &problems) < 0) {
            fprintf(stderr, "siphon validate: out of memory\n");
            problems++;
        }
    }
    snprintf(live, sizeof(live), "live tables: %d table(s) checked in the source", tables);
done:
    if (problems)
        fprintf(stderr, "siphon validate: %s: %d problem(s) (%s)\n", config, problems, live);
    else
        printf("%s: ok (connector '%s', %s -> %s, %d mapping(s))\n%s\n", config, cfg->name,
               cfg->source.type, cfg->sink.type, siphon_mapset_count(ms), live);
    if (src)
        ops->close(src);
    siphon_mapset_destroy(ms);
    return problems ? 1 : 0;
}

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
    rc = validate_more(cfg, config, siphon_registry_source(cfg->source.type));
out:
    siphon_config_destroy(cfg);
    return rc;
}

