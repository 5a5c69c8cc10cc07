/*
 * cmd_schema.c - `siphon schema`: the published-schema history and compatibility, from the
 * command line.
 *
 *   siphon schema check --config FILE [--mode MODE]    what `siphon run` checks at startup
 *   siphon schema history --config FILE [STREAM [VERSION]]   what has been published
 *   siphon schema diff [--mode MODE] A.avsc B.avsc      what changed and who can read whom
 *
 * check loads the mappings and schemas like `siphon run`, builds each stream's envelope and key,
 * and compares them with the history file beside the offsets file (src/avro/history.c) without
 * writing it. The rules are in src/avro/compat.c and docs/schemas.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/siphon_avro.h"
#include "cli/cli.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"

static const char *usage_schema =
    "Usage: siphon schema check --config FILE [--mode MODE]\n"
    "       siphon schema history --config FILE [STREAM [VERSION]] [--envelope | --key]\n"
    "       siphon schema diff [--mode MODE] A.avsc B.avsc\n"
    "\n"
    "Siphon records every version of every schema it publishes in a history file next to the\n"
    "offsets file (<offsets folder>/<name>.schemas.json). Within a major version (a stream,\n"
    "e.g. sales_order.v1) a changed schema must stay compatible with what was published; a\n"
    "breaking change is a new major version (schemas/sales_order.v2.avsc with its mapping),\n"
    "published to its own topic while the old one keeps flowing. See docs/schemas.md.\n"
    "\n"
    "  check    compare the schemas the mappings use with the history, as `siphon run` does at\n"
    "           startup, without recording anything. Exits 0 when every stream is new,\n"
    "           unchanged or compatibly changed, 1 (with every incompatibility: field path and\n"
    "           why) when not.\n"
    "  history  list the recorded versions; with STREAM and VERSION (\"1.2\") print that\n"
    "           version's entity schema (--envelope: the envelope, --key: the key schema).\n"
    "  diff     explain what changed from A to B field by field, and whether B reads data\n"
    "           written with A (backward) and A reads data written with B (forward). With\n"
    "           --mode, exits 1 unless B is compatible with A under MODE.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the siphon.yaml (check, history)\n"
    "  -m, --mode MODE       BACKWARD (default, or the config's schema_compatibility),\n"
    "                        BACKWARD_TRANSITIVE, FORWARD,\n"
    "                        FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE (as the\n"
    "                        Confluent Schema Registry means them)\n"
    "  -h, --help            this help\n"
    "\n"
    "Examples:\n"
    "  siphon schema check --config siphon.yaml --mode FULL\n"
    "  siphon schema history --config siphon.yaml sales_order.v1 1.0\n"
    "  siphon schema diff schemas/sales_order.v1.avsc /tmp/sales_order.v1.avsc\n";

typedef struct opts {
    const char *config;
    const char *mode_name;
    siphon_avro_compat_mode_t mode;
    int envelope, key;
    int nargs;
    char **args;
} opts_t;

/* Parse the options after `siphon schema <sub>`. 0, 1 (help shown) or 2 (usage error). */
static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option lopts[] = {{"config", required_argument, NULL, 'c'},
                                          {"mode", required_argument, NULL, 'm'},
                                          {"envelope", no_argument, NULL, 'e'},
                                          {"key", no_argument, NULL, 'k'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    char err[512];
    int c;
    memset(o, 0, sizeof(*o));
    o->mode = SIPHON_COMPAT_BACKWARD;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:m:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'm':
            o->mode_name = optarg;
            if (siphon_avro_compat_mode_parse(&o->mode, optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "siphon schema %s: %s\n", argv[0], err);
                return 2;
            }
            break;
        case 'e': o->envelope = 1; break;
        case 'k': o->key = 1; break;
        case 'h': fputs(usage_schema, stdout); return 1;
        default:
            fprintf(stderr, "siphon schema %s: unknown or incomplete option '%s'\n\n%s", argv[0],
                    argv[optind - 1], usage_schema);
            return 2;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

static int need_config(const opts_t *o, const char *sub)
{
    if (o->config)
        return 0;
    fprintf(stderr, "siphon schema %s: --config FILE is required\n\n%s", sub, usage_schema);
    return 2;
}

static int history_path(char *buf, size_t size, const siphon_config_t *cfg, const char *sub)
{
    if (siphon_schema_history_path(buf, size, cfg->offsets.path, cfg->name) < 0) {
        fprintf(stderr, "siphon schema %s: %s: the schema history path (next to offsets.path %s) "
                        "is too long\n", sub, cfg->path, cfg->offsets.path);
        return -1;
    }
    return 0;
}

/* ---- check ---- */

static int schema_check(const opts_t *o)
{
    char err[4096], path[4096];
    siphon_config_t *cfg = NULL;
    siphon_mapset_t *ms = NULL;
    const siphon_avro_stream_t **streams = NULL;
    siphon_schema_outcome_t *oc = NULL;
    int n = 0, rc = 1;

    if (o->nargs) {
        fprintf(stderr, "siphon schema check: unexpected argument '%s'\n\n%s", o->args[0],
                usage_schema);
        return 2;
    }
    if (siphon_config_load(&cfg, o->config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon schema check: %s\n", err);
        return 1;
    }
    /* no --mode: the config's schema_compatibility */
    siphon_avro_compat_mode_t mode =
        o->mode_name ? o->mode : (siphon_avro_compat_mode_t)cfg->schema_compatibility;
    if (history_path(path, sizeof(path), cfg, "check") < 0)
        goto out;
    if (siphon_mapset_load(&ms, cfg->mappings_dir, cfg->schemas_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon schema check: %s\n", err);
        goto out;
    }
    n = siphon_mapset_count(ms);
    if (n == 0) {
        fprintf(stderr, "siphon schema check: no mapping files in %s (add one <entity>.yaml per "
                        "entity; see docs/mappings.md)\n", cfg->mappings_dir);
        goto out;
    }
    streams = calloc((size_t)n, sizeof(*streams));
    oc = calloc((size_t)n, sizeof(*oc));
    if (!streams || !oc) {
        fprintf(stderr, "siphon schema check: out of memory\n");
        goto out;
    }
    for (int i = 0; i < n; i++)
        streams[i] = siphon_mapping_stream(siphon_mapset_get(ms, i));
    int r = siphon_schema_history_sync(path, cfg->name, mode, streams, n, 0, oc, err,
                                       sizeof(err));
    int nbad = 0;
    for (int i = 0; i < n; i++)
        nbad += oc[i].verdict == SIPHON_SCHEMA_INCOMPATIBLE;
    if (r < 0 && !nbad) {
        fprintf(stderr, "siphon schema check: %s\n", err);
        goto out;
    }
    printf("history %s, compatibility %s\n", path, siphon_avro_compat_mode_name(mode));
    for (int i = 0; i < n; i++) {
        const siphon_schema_outcome_t *x = &oc[i];
        switch (x->verdict) {
        case SIPHON_SCHEMA_NEW:
            printf("%s: new stream, would be published as version %d.%d\n", x->stream, x->major,
                   x->minor);
            break;
        case SIPHON_SCHEMA_UNCHANGED:
            printf("%s: unchanged since version %d.%d\n", x->stream, x->major, x->minor);
            break;
        case SIPHON_SCHEMA_COMPATIBLE:
            printf("%s: compatible change, would be published as version %d.%d\n", x->stream,
                   x->major, x->minor);
            break;
        case SIPHON_SCHEMA_INCOMPATIBLE: {
            siphon_buf_t b = {0};
            siphon_avro_compat_result_format(&b, &x->issues, "  ");
            siphon_buf_appendc(&b, '\0');
            printf("%s: INCOMPATIBLE with version %d.%d (%s):\n%s", x->stream, x->major,
                   x->minor, siphon_mapping_schema(siphon_mapset_get(ms, i))->path,
                   b.data ? (const char *)b.data : "");
            siphon_buf_free(&b);
            break;
        }
        }
    }
    if (nbad) {
        fprintf(stderr,
                "siphon schema check: %d stream%s changed incompatibly under %s. Make the change "
                "compatible (docs/schemas.md lists what is: for example give an added field a "
                "default), undo it, or publish it as a new major version "
                "(schemas/<entity>.v<next major>.avsc with a mapping of that version).\n",
                nbad, nbad > 1 ? "s" : "", siphon_avro_compat_mode_name(mode));
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; oc && i < n; i++)
        siphon_schema_outcome_free(&oc[i]);
    free(oc);
    free(streams);
    siphon_mapset_destroy(ms);
    siphon_config_destroy(cfg);
    return rc;
}

/* ---- history ---- */

static int schema_history(const opts_t *o)
{
    char err[4096], path[4096];
    siphon_config_t *cfg = NULL;
    siphon_schema_history_t *hist = NULL;
    int rc = 1;

    if (o->nargs > 2) {
        fprintf(stderr, "siphon schema history: unexpected argument '%s'\n\n%s", o->args[2],
                usage_schema);
        return 2;
    }
    if (siphon_config_load(&cfg, o->config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon schema history: %s\n", err);
        return 1;
    }
    if (history_path(path, sizeof(path), cfg, "history") < 0)
        goto out;
    if (siphon_schema_history_load(&hist, path, cfg->name, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon schema history: %s\n", err);
        goto out;
    }
    if (o->nargs == 2) {
        const char *stream = o->args[0], *want = o->args[1];
        int nv = siphon_schema_history_version_count(hist, stream);
        for (int k = 0; k < nv; k++) {
            const siphon_schema_version_t *v = siphon_schema_history_version(hist, stream, k);
            char label[32];
            snprintf(label, sizeof(label), "%d.%d", v->major, v->minor);
            if (strcmp(label, want) != 0)
                continue;
            const char *text = o->key ? v->key_json : o->envelope ? v->value_json
                                                                  : v->schema_json;
            size_t tl = strlen(text);
            fputs(text, stdout);
            if (tl == 0 || text[tl - 1] != '\n')
                fputc('\n', stdout);
            rc = 0;
            goto out;
        }
        fprintf(stderr, "siphon schema history: %s has no version %s of stream %s (run "
                        "`siphon schema history --config %s %s` to list them)\n",
                path, want, stream, o->config, stream);
        goto out;
    }
    int ns = siphon_schema_history_stream_count(hist);
    printf("history %s (connector %s)\n", path, cfg->name);
    if (ns == 0)
        printf("nothing recorded yet: `siphon run` records each stream's schemas when it "
               "starts\n");
    int shown = 0;
    for (int i = 0; i < ns; i++) {
        const char *stream = siphon_schema_history_stream_name(hist, i);
        if (o->nargs == 1 && strcmp(stream, o->args[0]) != 0)
            continue;
        shown++;
        printf("%s\n", stream);
        int nv = siphon_schema_history_version_count(hist, stream);
        for (int k = 0; k < nv; k++) {
            const siphon_schema_version_t *v = siphon_schema_history_version(hist, stream, k);
            printf("  %d.%d  %s  fingerprint %016llx  key %016llx  checked %s\n", v->major,
                   v->minor, v->published_at, (unsigned long long)v->fingerprint,
                   (unsigned long long)v->key_fingerprint, v->mode);
        }
    }
    if (o->nargs == 1 && !shown) {
        fprintf(stderr, "siphon schema history: no stream %s in %s\n", o->args[0], path);
        goto out;
    }
    rc = 0;
out:
    siphon_schema_history_destroy(hist);
    siphon_config_destroy(cfg);
    return rc;
}

/* ---- diff ---- */

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    siphon_buf_t b = {0};
    char chunk[8192];
    size_t n;
    if (!f)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (siphon_buf_append(&b, chunk, n) < 0)
            break;
    int bad = ferror(f) || siphon_buf_appendc(&b, '\0') < 0;
    fclose(f);
    if (bad) {
        siphon_buf_free(&b);
        return -1;
    }
    *text = (char *)b.data;
    *len = b.len - 1;
    return 0;
}

static int load_schema(siphon_avro_compat_schema_t **out, const char *path)
{
    char err[2048];
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len) < 0) {
        fprintf(stderr, "siphon schema diff: could not read %s: %m\n", path);
        return -1;
    }
    int rc = siphon_avro_compat_schema_new(out, text, len, path, err, sizeof(err));
    free(text);
    if (rc < 0) {
        fprintf(stderr, "siphon schema diff: %s\n", err);
        return -1;
    }
    return 0;
}

/* Print whether reader reads writer's data, with the issues. Returns the count of issues. */
static int print_direction(const char *title, const siphon_avro_compat_schema_t *reader,
                           const siphon_avro_compat_schema_t *writer)
{
    siphon_avro_compat_result_t res = {0};
    siphon_buf_t b = {0};
    if (siphon_avro_compat_check(&res, reader, writer, NULL, NULL) < 0) {
        fprintf(stderr, "siphon schema diff: out of memory\n");
        return -1;
    }
    int n = res.nissues;
    siphon_avro_compat_result_format(&b, &res, "  ");
    siphon_buf_appendc(&b, '\0');
    printf("%s: %s\n%s", title, n ? "no" : "yes", n ? (const char *)b.data : "");
    siphon_buf_free(&b);
    siphon_avro_compat_result_free(&res);
    return n;
}

static int schema_diff(const opts_t *o)
{
    siphon_avro_compat_schema_t *a = NULL, *b = NULL;
    siphon_buf_t out = {0};
    int rc = 1;
    if (o->nargs != 2) {
        fprintf(stderr, "siphon schema diff: expected two schema files, A (the old) and B (the "
                        "new)\n\n%s", usage_schema);
        return 2;
    }
    if (load_schema(&a, o->args[0]) < 0 || load_schema(&b, o->args[1]) < 0)
        goto out;
    if (siphon_avro_compat_diff(&out, a, b) < 0 || siphon_buf_appendc(&out, '\0') < 0) {
        fprintf(stderr, "siphon schema diff: out of memory\n");
        goto out;
    }
    printf("changes from %s to %s:\n", o->args[0], o->args[1]);
    if (out.len > 1) {
        for (char *line = (char *)out.data; *line;) {
            char *nl = strchr(line, '\n');
            printf("  %.*s\n", (int)(nl ? nl - line : (long)strlen(line)), line);
            line = nl ? nl + 1 : line + strlen(line);
        }
    } else {
        printf("  none (apart from docs)\n");
    }
    printf("\n");
    int back = print_direction("B reads data written with A (backward)", b, a);
    int fwd = print_direction("A reads data written with B (forward)", a, b);
    if (back < 0 || fwd < 0)
        goto out;
    printf("both (full): %s\n", back || fwd ? "no" : "yes");
    rc = 0;
    if (o->mode_name) {
        siphon_avro_compat_mode_t m = o->mode;
        int bad = 0;
        if (m == SIPHON_COMPAT_BACKWARD || m == SIPHON_COMPAT_BACKWARD_TRANSITIVE)
            bad = back;
        else if (m == SIPHON_COMPAT_FORWARD || m == SIPHON_COMPAT_FORWARD_TRANSITIVE)
            bad = fwd;
        else if (m != SIPHON_COMPAT_NONE)
            bad = back + fwd;
        if (bad) {
            fprintf(stderr, "siphon schema diff: %s is not %s compatible with %s\n", o->args[1],
                    siphon_avro_compat_mode_name(m), o->args[0]);
            rc = 1;
        }
    }
out:
    siphon_buf_free(&out);
    siphon_avro_compat_schema_destroy(a);
    siphon_avro_compat_schema_destroy(b);
    return rc;
}

int siphon_cmd_schema(int argc, char **argv)
{
    opts_t o;
    if (argc < 2) {
        fputs(usage_schema, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage_schema, stdout);
        return 0;
    }
    int r = parse_opts(argc - 1, argv + 1, &o);
    if (r)
        return r == 1 ? 0 : 2;
    if (!strcmp(sub, "check"))
        return need_config(&o, sub) ? 2 : schema_check(&o);
    if (!strcmp(sub, "history"))
        return need_config(&o, sub) ? 2 : schema_history(&o);
    if (!strcmp(sub, "diff"))
        return schema_diff(&o);
    fprintf(stderr, "siphon schema: unknown subcommand '%s' (expected check, history or "
                    "diff)\n\n%s", sub, usage_schema);
    return 2;
}
