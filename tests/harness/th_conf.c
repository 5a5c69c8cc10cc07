/*
 * th_conf.c - writes the siphon.yaml a test runs with, and reads back the position siphon
 * stored in its offsets file.
 *
 * The YAML follows the layout documented at the top of src/config/config.h. Every string is
 * written double-quoted and escaped, so conninfos with spaces and '=' survive as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_int.h"

/* Write s as a YAML double-quoted scalar. */
static void th__yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Write each non-empty line of text (may be NULL) with the indent before it. */
static void th__indented(FILE *f, const char *text, const char *indent)
{
    for (const char *s = text; s && *s;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (n > 0)
            fprintf(f, "%s%.*s\n", indent, (int)n, s);
        s += n + (nl ? 1 : 0);
    }
}

int th_siphon_conf_write(const char *path, const th_siphon_conf_t *conf)
{
    if (!conf->conninfo || !conf->offsets_path)
        return th_err("could not write %s: conninfo and offsets_path are required", path);
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not create \"%s\"", path);
    char *mappings = conf->mappings_dir ? strdup(conf->mappings_dir)
                                        : th_path(th_source_dir(), "mappings");
    char *schemas = conf->schemas_dir ? strdup(conf->schemas_dir)
                                      : th_path(th_source_dir(), "schemas");
    fprintf(f, "# written by the siphon test harness\nname: ");
    th__yq(f, conf->name ? conf->name : "it");
    fprintf(f, "\nsource:\n  type: postgres\n  conninfo: ");
    th__yq(f, conf->conninfo);
    if (conf->slot) {
        fprintf(f, "\n  slot: ");
        th__yq(f, conf->slot);
    }
    if (conf->publication) {
        fprintf(f, "\n  publication: ");
        th__yq(f, conf->publication);
    }
    if (conf->status_interval_ms > 0)
        fprintf(f, "\n  status_interval_ms: %d", conf->status_interval_ms);
    fputc('\n', f);
    th__indented(f, conf->extra_source, "  ");
    fprintf(f, "mappings: ");
    th__yq(f, mappings);
    fprintf(f, "\nschemas: ");
    th__yq(f, schemas);
    fprintf(f, "\nsink:\n  type: kafka\n  topic_prefix: ");
    th__yq(f, conf->topic_prefix ? conf->topic_prefix : "erp");
    fprintf(f, "\n  tombstones: true\n  properties:\n    bootstrap.servers: ");
    th__yq(f, conf->bootstraps ? conf->bootstraps : "");
    fputc('\n', f);
    th__indented(f, conf->extra_props, "    ");
    fprintf(f, "offsets:\n  path: ");
    th__yq(f, conf->offsets_path);
    if (conf->flush_interval_ms > 0)
        fprintf(f, "\n  flush_interval_ms: %d", conf->flush_interval_ms);
    fprintf(f, "\nlog:\n  level: %s\n", conf->log_level ? conf->log_level : "info");
    if (conf->extra_yaml)
        fprintf(f, "%s\n", conf->extra_yaml);
    free(mappings);
    free(schemas);
    if (fclose(f) != 0)
        return th_err("could not write \"%s\"", path);
    return 0;
}

/* Depth-first: the first string that parses as an LSN; else the first integer >= 0. */
static int th__find_lsn(json_t *j, uint64_t *lsn, int want_string)
{
    if (json_is_string(j))
        return want_string && th_lsn_parse(json_string_value(j), lsn) == 0 ? 0 : -1;
    if (json_is_integer(j)) {
        if (!want_string && json_integer_value(j) >= 0) {
            *lsn = (uint64_t)json_integer_value(j);
            return 0;
        }
        return -1;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (th__find_lsn(v, lsn, want_string) == 0)
                return 0;
        }
        return -1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (th__find_lsn(v, lsn, want_string) == 0)
                return 0;
        }
    }
    return -1;
}

int th_offsets_lsn(const char *path, uint64_t *lsn)
{
    size_t len;
    char *s = th_read_file(path, &len, 1);
    if (!s)
        return -1;
    int rc = -1;
    json_error_t je;
    json_t *j = json_loadb(s, len, 0, &je);
    if (j) {
        /* siphon's offsets file: {"version":1,"connector":...,"position":"0/16B3748",...} */
        json_t *pos = json_object_get(j, "position");
        if (pos)
            rc = th__find_lsn(pos, lsn, 1);
        if (rc != 0)
            rc = th__find_lsn(j, lsn, 1);
        if (rc != 0)
            rc = th__find_lsn(j, lsn, 0);
        json_decref(j);
    } else {
        /* not JSON: maybe the LSN as plain text */
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        rc = th_lsn_parse(s, lsn);
    }
    free(s);
    return rc;
}
