/*
 * cmd_preview.c - `siphon preview`: what a mapping makes of real rows, for the DBA writing it.
 *
 * Reads a few rows of the mapping's source table (a plain SELECT through the connector's
 * catalog connection: no slot, no publication, no Kafka) or rows from a JSON file, runs them
 * through the compiled mapping exactly as `siphon run` would (filter, soft-delete flag,
 * transforms, the checks of the field types), encodes each record with the entity's Avro
 * schema and decodes it back, and prints one JSON line per row:
 *
 *   {"row":1,"op":"r","key":{...},"record":{...}}
 *   {"row":2,"op":"r","error":{"field":"order_date","columns":"hdodat","reason":"...",
 *    "message":"mappings/sales_order.yaml:14:45: ..."},"source":{"hdodat":"20260231",...}}
 *   {"row":3,"skipped":"filtered out (filter: hdcomp <> '99')"}
 *
 * A summary goes to stderr. Conversion errors are what a preview is for: they do not change
 * the exit code (0); a mapping that does not load, a table that does not fit, or a database
 * that cannot be reached exit 1.
 *
 * Rows from a file (--rows): a JSON array of objects ({"hdcomp": "01", "hdodat": 20240131}),
 * or {"types": {"hdamt": "numeric", ...}, "rows": [...]} to say what the columns are: text,
 * rawtext (a SQL_ASCII database: the string's bytes, or \x-hex), integer, numeric, float,
 * boolean, date, time, timestamp, timestamptz, bytea (\x-hex), uuid, json. Without a type, a
 * JSON string is text, a whole number integer, another number numeric (write decimals as
 * strings with type numeric to keep every digit), true/false boolean.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "avro/siphon_avro.h"
#include "cli/cli.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "registry.h"

static const char *usage_preview =
    "Usage: siphon preview --config FILE --mapping NAME [--limit N] [--rows FILE]\n"
    "\n"
    "Runs rows of the mapping's source table through the mapping and prints the canonical\n"
    "records as JSON lines, with any per-row conversion error (field, column, reason), without\n"
    "touching Kafka or the replication slot. Rows are read from the live table (a plain SELECT)\n"
    "or, with --rows, from a JSON file.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the siphon.yaml (source connection, mappings and schemas folders)\n"
    "  -m, --mapping NAME    the mapping: its entity (sales_order), entity.vN, or file name\n"
    "  -n, --limit N         rows to read (default 10)\n"
    "  -r, --rows FILE       rows from a JSON file instead of the database: [{\"col\": value}]\n"
    "                        or {\"types\": {\"col\": \"numeric\"}, \"rows\": [...]}\n"
    "  -l, --log-level LEVEL error, warning (default), notice, info or debug\n"
    "  -h, --help            this help\n"
    "\n"
    "Examples:\n"
    "  siphon preview --config siphon.yaml --mapping sales_order --limit 5\n"
    "  siphon preview --config siphon.yaml --mapping sales_order --rows bad-rows.json | jq .error\n";

typedef struct preview {
    const siphon_config_t *cfg;
    const siphon_mapping_t *map;
    const siphon_relation_t *rel;
    const siphon_row_t *row;
    int rowno;
    int produced;          /* outputs for the current row */
    long records, errors, skipped, warnings;
    siphon_buf_t kb, vb;
} preview_t;

/* ---- printing ---- */

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(j);
}

/* A source value as JSON: text as it is (bytes that are not UTF-8 as \x-hex), numbers and
 * dates in their text form. */
static json_t *value_json(const siphon_value_t *v)
{
    static const char hex[] = "0123456789abcdef";
    char buf[128];
    switch (v->type) {
    case SIPHON_V_NULL: return json_null();
    case SIPHON_V_UNCHANGED: return json_string("(not sent)");
    case SIPHON_V_BOOL: return json_boolean(v->u.b);
    case SIPHON_V_INT: return json_integer(v->u.i);
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_BYTES: {
        json_t *j = v->type != SIPHON_V_BYTES ? json_stringn(v->u.s.ptr, v->u.s.len) : NULL;
        if (j)
            return j;
        siphon_buf_t b = {0};
        siphon_buf_append(&b, "\\x", 2);
        for (size_t i = 0; i < v->u.s.len; i++) {
            siphon_buf_appendc(&b, (uint8_t)hex[(unsigned char)v->u.s.ptr[i] >> 4]);
            siphon_buf_appendc(&b, (uint8_t)hex[(unsigned char)v->u.s.ptr[i] & 15]);
        }
        j = json_stringn(b.data ? (const char *)b.data : "", b.len);
        siphon_buf_free(&b);
        return j;
    }
    default:
        siphon_value_format(v, buf, sizeof(buf));
        return json_string(buf);
    }
}

static json_t *row_json(const siphon_relation_t *rel, const siphon_row_t *row)
{
    json_t *o = json_object();
    for (int c = 0; row && c < rel->ncols && c < row->ncols; c++)
        json_object_set_new(o, rel->cols[c].name, value_json(&row->vals[c]));
    return o;
}

static int on_mapped(const siphon_mapped_t *m, void *opaque)
{
    preview_t *pv = opaque;
    char errbuf[1024], *txt = NULL;
    json_error_t je;
    if (m->map != pv->map)
        return 0;
    pv->produced++;
    json_t *o = json_object();
    json_object_set_new(o, "row", json_integer(pv->rowno));
    json_object_set_new(o, "op", json_stringn(&m->op, 1));
    if (m->error) {
        pv->errors++;
        json_t *e = json_object();
        json_object_set_new(e, "field", m->error->field ? json_string(m->error->field) : json_null());
        json_object_set_new(e, "columns",
                            m->error->columns ? json_string(m->error->columns) : json_null());
        json_object_set_new(e, "reason", json_string(m->error->reason));
        json_object_set_new(e, "message", json_string(m->error->message));
        json_object_set_new(o, "error", e);
        json_object_set_new(o, "source", row_json(pv->rel, m->row));
        print_json(o);
        return 0;
    }
    /* through the encoder and back: exactly what a consumer would read */
    siphon_avro_stream_t *st = siphon_mapping_stream(m->map);
    siphon_buf_reset(&pv->kb);
    siphon_buf_reset(&pv->vb);
    char event_id[32];
    snprintf(event_id, sizeof(event_id), "preview:%d", pv->rowno);
    siphon_avro_event_t ev = {
        .op = m->op,
        .before = m->before,
        .after = m->after,
        .source = {.connector = pv->cfg->name, .db = "", .schema = pv->rel->schema,
                   .table = pv->rel->name, .pos = "preview", .snapshot = 1},
        .event_id = event_id,
    };
    if (siphon_avro_stream_encode_key(st, m->key, &pv->kb, errbuf, sizeof(errbuf)) < 0 ||
        siphon_avro_stream_encode_value(st, &ev, &pv->vb, errbuf, sizeof(errbuf)) < 0) {
        pv->errors++;
        json_t *e = json_object();
        json_object_set_new(e, "reason", json_string(errbuf));
        json_object_set_new(o, "error", e);
        json_object_set_new(o, "source", row_json(pv->rel, pv->row));
        print_json(o);
        return 0;
    }
    pv->records++;
    json_t *key = NULL, *env = NULL;
    if (siphon_avro_stream_decode_json(&txt, st, 1, pv->kb.data, pv->kb.len, errbuf,
                                       sizeof(errbuf)) == 0)
        key = json_loads(txt, 0, &je);
    free(txt);
    txt = NULL;
    if (siphon_avro_stream_decode_json(&txt, st, 0, pv->vb.data, pv->vb.len, errbuf,
                                       sizeof(errbuf)) == 0)
        env = json_loads(txt, 0, &je);
    free(txt);
    json_object_set_new(o, "key", key ? key : json_null());
    json_t *img = env ? json_object_get(env, m->op == 'd' ? "before" : "after") : NULL;
    json_object_set(o, "record", img ? img : json_null());
    json_decref(env);
    if (m->nwarnings) {
        json_t *w = json_array();
        for (int i = 0; i < m->nwarnings; i++) {
            json_t *x = json_object();
            json_object_set_new(x, "field", json_string(m->warnings[i].field));
            json_object_set_new(x, "reason", json_string(m->warnings[i].reason));
            json_array_append_new(w, x);
        }
        pv->warnings += m->nwarnings;
        json_object_set_new(o, "warnings", w);
    }
    print_json(o);
    return 0;
}

/* ---- rows from a file ---- */

typedef struct file_rows {
    siphon_relation_t rel;
    siphon_column_t *cols;
    siphon_row_t *rows;
    int nrows;
    siphon_arena_t mem;
    json_t *root;
} file_rows_t;

static const struct {
    const char *name;
    siphon_vtype_t vt;
} type_names[] = {
    {"text", SIPHON_V_TEXT},           {"varchar", SIPHON_V_TEXT},     {"char", SIPHON_V_TEXT},
    {"bpchar", SIPHON_V_TEXT},         {"rawtext", SIPHON_V_RAWTEXT},  {"integer", SIPHON_V_INT},
    {"int", SIPHON_V_INT},             {"bigint", SIPHON_V_INT},       {"smallint", SIPHON_V_INT},
    {"numeric", SIPHON_V_DECIMAL},     {"decimal", SIPHON_V_DECIMAL},  {"float", SIPHON_V_FLOAT},
    {"double precision", SIPHON_V_FLOAT}, {"boolean", SIPHON_V_BOOL},  {"bool", SIPHON_V_BOOL},
    {"date", SIPHON_V_DATE},           {"time", SIPHON_V_TIME},        {"timestamp", SIPHON_V_TIMESTAMP},
    {"timestamptz", SIPHON_V_TIMESTAMP}, {"bytea", SIPHON_V_BYTES},    {"uuid", SIPHON_V_UUID},
    {"json", SIPHON_V_JSON},           {"jsonb", SIPHON_V_JSON},
};

static int64_t civil_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* A JSON value as a value of type vt (bytes in mem). 0 or -1 with why set. */
static int file_value(siphon_arena_t *mem, json_t *j, siphon_vtype_t vt, int tz,
                      siphon_value_t *v, const char **why)
{
    memset(v, 0, sizeof(*v));
    if (json_is_null(j)) {
        v->type = SIPHON_V_NULL;
        return 0;
    }
    char num[64];
    const char *s = NULL;
    size_t n = 0;
    if (json_is_string(j)) {
        s = json_string_value(j);
        n = json_string_length(j);
    } else if (json_is_integer(j)) {
        n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        s = num;
    } else if (json_is_real(j)) {
        n = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(j));
        s = num;
    } else if (json_is_boolean(j)) {
        s = json_is_true(j) ? "true" : "false";
        n = strlen(s);
    } else {
        *why = "a string, number, boolean or null";
        return -1;
    }
    v->type = vt;
    switch (vt) {
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
        v->u.s.ptr = siphon_arena_strndup(mem, s, n);
        v->u.s.len = n;
        return 0;
    case SIPHON_V_RAWTEXT:
    case SIPHON_V_BYTES:
        if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
            char *b = siphon_arena_alloc(mem, n / 2 + 1);
            size_t o = 0;
            for (size_t i = 2; i + 1 < n; i += 2) {
                unsigned hi, lo;
                if (sscanf(s + i, "%1x%1x", &hi, &lo) != 2) {
                    *why = "\\x followed by pairs of hex digits";
                    return -1;
                }
                b[o++] = (char)(hi << 4 | lo);
            }
            v->u.s.ptr = b;
            v->u.s.len = o;
        } else {
            v->u.s.ptr = siphon_arena_strndup(mem, s, n);
            v->u.s.len = n;
        }
        return 0;
    case SIPHON_V_INT: {
        char *end;
        v->u.i = strtoll(s, &end, 10);
        if (end == s || *end) {
            *why = "a whole number";
            return -1;
        }
        return 0;
    }
    case SIPHON_V_FLOAT:
        v->u.f = strtod(s, NULL);
        return 0;
    case SIPHON_V_DECIMAL: {
        char *d = siphon_arena_alloc(mem, n + 2);
        if (siphon_value_decimal_parse(v, s, n, d, n + 2) != 0) {
            *why = "a number such as \"12.50\"";
            return -1;
        }
        return 0;
    }
    case SIPHON_V_BOOL:
        v->u.b = !strcmp(s, "true") || !strcmp(s, "t");
        return 0;
    case SIPHON_V_DATE: {
        int y, m, d;
        if (sscanf(s, "%d-%d-%d", &y, &m, &d) != 3) {
            *why = "a date \"YYYY-MM-DD\"";
            return -1;
        }
        v->u.date = (int32_t)civil_days(y, (unsigned)m, (unsigned)d);
        return 0;
    }
    case SIPHON_V_TIME: {
        int h, mi, se;
        if (sscanf(s, "%d:%d:%d", &h, &mi, &se) != 3) {
            *why = "a time \"HH:MM:SS\"";
            return -1;
        }
        v->u.time_us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000;
        return 0;
    }
    case SIPHON_V_TIMESTAMP: {
        int y, m, d, h, mi, se;
        if (sscanf(s, "%d-%d-%d%*1[ T]%d:%d:%d", &y, &m, &d, &h, &mi, &se) != 6) {
            *why = "a timestamp \"YYYY-MM-DD HH:MM:SS\" (UTC)";
            return -1;
        }
        v->u.ts.us = (civil_days(y, (unsigned)m, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) *
                     1000000LL;
        v->u.ts.tz = tz;
        return 0;
    }
    case SIPHON_V_UUID: {
        int k = 0;
        for (size_t i = 0; i < n && k < 32; i++) {
            if (s[i] == '-')
                continue;
            unsigned h;
            if (sscanf(s + i, "%1x", &h) != 1)
                break;
            v->u.uuid[k / 2] = (uint8_t)(k % 2 ? v->u.uuid[k / 2] | h : h << 4);
            k++;
        }
        if (k != 32) {
            *why = "a uuid";
            return -1;
        }
        return 0;
    }
    default:
        *why = "a supported type";
        return -1;
    }
}

static int load_rows(file_rows_t *fr, const char *path, const siphon_mapping_t *map, int limit)
{
    json_error_t je;
    json_t *types = NULL, *rows;
    fr->root = json_load_file(path, JSON_DECODE_ANY, &je);
    if (!fr->root) {
        fprintf(stderr, "siphon preview: could not read rows from %s:%d:%d: %s (expected a JSON "
                        "array of row objects)\n", path, je.line, je.column, je.text);
        return -1;
    }
    rows = fr->root;
    if (json_is_object(fr->root)) {
        types = json_object_get(fr->root, "types");
        rows = json_object_get(fr->root, "rows");
    }
    if (!json_is_array(rows)) {
        fprintf(stderr, "siphon preview: %s: expected a JSON array of row objects, or an object "
                        "with \"rows\" (and \"types\")\n", path);
        return -1;
    }
    siphon_arena_init(&fr->mem, 0);
    /* the columns: every key of every row, in order of first appearance */
    int cap = 16, n = 0;
    fr->cols = calloc((size_t)cap, sizeof(siphon_column_t));
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *k;
        json_t *v;
        if (!json_is_object(r)) {
            fprintf(stderr, "siphon preview: %s: row %zu is not an object\n", path, i + 1);
            return -1;
        }
        json_object_foreach(r, k, v) {
            int found = 0;
            for (int c = 0; c < n && !found; c++)
                found = !strcmp(fr->cols[c].name, k);
            if (found)
                continue;
            if (n == cap) {
                cap *= 2;
                fr->cols = realloc(fr->cols, (size_t)cap * sizeof(siphon_column_t));
            }
            siphon_column_t *col = &fr->cols[n++];
            memset(col, 0, sizeof(*col));
            col->name = siphon_arena_strndup(&fr->mem, k, strlen(k));
            col->typmod = -1;
            json_t *t = types ? json_object_get(types, k) : NULL;
            const char *tn = json_string_value(t);
            col->vtype = SIPHON_V_NULL;
            if (tn) {
                for (size_t x = 0; x < sizeof(type_names) / sizeof(type_names[0]); x++)
                    if (!strcmp(type_names[x].name, tn))
                        col->vtype = type_names[x].vt;
                if (col->vtype == SIPHON_V_NULL) {
                    fprintf(stderr, "siphon preview: %s: unknown type \"%s\" for column %s "
                                    "(expected text, rawtext, integer, numeric, float, boolean, "
                                    "date, time, timestamp, timestamptz, bytea, uuid or json)\n",
                            path, tn, k);
                    return -1;
                }
                col->type_name = siphon_arena_strndup(&fr->mem, tn, strlen(tn));
            }
        }
    }
    /* untyped columns: from the first non-null value */
    for (int c = 0; c < n; c++) {
        siphon_column_t *col = &fr->cols[c];
        if (col->vtype != SIPHON_V_NULL)
            continue;
        col->vtype = SIPHON_V_TEXT;
        json_array_foreach(rows, i, r) {
            json_t *v = json_object_get(r, col->name);
            if (!v || json_is_null(v))
                continue;
            col->vtype = json_is_integer(v)   ? SIPHON_V_INT
                         : json_is_real(v)    ? SIPHON_V_DECIMAL
                         : json_is_boolean(v) ? SIPHON_V_BOOL
                                              : SIPHON_V_TEXT;
            break;
        }
        const char *tn = col->vtype == SIPHON_V_INT       ? "integer"
                         : col->vtype == SIPHON_V_DECIMAL ? "numeric"
                         : col->vtype == SIPHON_V_BOOL    ? "boolean"
                                                          : "text";
        col->type_name = (char *)tn;
    }
    fr->rel.id = 1;
    fr->rel.version = 1;
    fr->rel.schema = (char *)siphon_mapping_source_schema(map);
    fr->rel.name = (char *)siphon_mapping_source_table(map);
    fr->rel.ncols = n;
    fr->rel.cols = fr->cols;
    size_t total = json_array_size(rows);
    fr->nrows = (int)(limit >= 0 && (size_t)limit < total ? (size_t)limit : total);
    fr->rows = calloc((size_t)(fr->nrows ? fr->nrows : 1), sizeof(siphon_row_t));
    for (int ri = 0; ri < fr->nrows; ri++) {
        r = json_array_get(rows, (size_t)ri);
        fr->rows[ri].ncols = n;
        fr->rows[ri].vals = siphon_arena_alloc(&fr->mem, sizeof(siphon_value_t) * (size_t)(n ? n : 1));
        for (int c = 0; c < n; c++) {
            json_t *v = json_object_get(r, fr->cols[c].name);
            const char *why = "";
            const char *tn = fr->cols[c].type_name;
            if (!v) {
                fr->rows[ri].vals[c].type = SIPHON_V_NULL;
                continue;
            }
            if (file_value(&fr->mem, v, fr->cols[c].vtype, !tn || strcmp(tn, "timestamp") != 0,
                           &fr->rows[ri].vals[c], &why) < 0) {
                fprintf(stderr, "siphon preview: %s: row %d, column %s: expected %s\n", path,
                        ri + 1, fr->cols[c].name, why);
                return -1;
            }
        }
    }
    return 0;
}

static void file_rows_free(file_rows_t *fr)
{
    free(fr->cols);
    free(fr->rows);
    siphon_arena_destroy(&fr->mem);
    json_decref(fr->root);
}

/* ---- the command ---- */

static const siphon_mapping_t *find_mapping(const siphon_mapset_t *ms, const char *name)
{
    for (int i = 0; i < siphon_mapset_count(ms); i++) {
        const siphon_mapping_t *map = siphon_mapset_get(ms, i);
        char ev[256];
        snprintf(ev, sizeof(ev), "%s.v%d", siphon_mapping_entity(map), siphon_mapping_major(map));
        const char *path = siphon_mapping_path(map);
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t bl = strcspn(base, ".");
        if (!strcmp(name, siphon_mapping_entity(map)) || !strcmp(name, ev) ||
            !strcmp(name, base) || !strcmp(name, path) ||
            (strlen(name) == bl && !strncmp(name, base, bl)))
            return map;
    }
    return NULL;
}

int siphon_cmd_preview(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"mapping", required_argument, NULL, 'm'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"rows", required_argument, NULL, 'r'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *mapping = NULL, *rows_path = NULL, *level = "warning";
    long limit = 10;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:m:n:r:l:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c': config = optarg; break;
        case 'm': mapping = optarg; break;
        case 'r': rows_path = optarg; break;
        case 'l': level = optarg; break;
        case 'n':
            limit = strtol(optarg, &end, 10);
            if (*end || limit < 0 || limit > 1000000) {
                fprintf(stderr, "siphon preview: --limit '%s' is not a number of rows (0 to "
                                "1000000)\n\n%s", optarg, usage_preview);
                return 2;
            }
            break;
        case 'h': fputs(usage_preview, stdout); return 0;
        default:
            fprintf(stderr, "siphon preview: unknown or incomplete option '%s'\n\n%s",
                    argv[optind - 1], usage_preview);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siphon preview: unexpected argument '%s'\n\n%s", argv[optind],
                usage_preview);
        return 2;
    }
    if (!config || !mapping) {
        fprintf(stderr, "siphon preview: --config FILE and --mapping NAME are required\n\n%s",
                usage_preview);
        return 2;
    }
    int lvl = siphon_log_level_parse(level);
    if (lvl < 0) {
        fprintf(stderr, "siphon preview: unknown log level '%s' (expected error, warning, "
                        "notice, info or debug)\n", level);
        return 2;
    }
    siphon_log_setup(lvl, 0);

    char err[2048];
    int rc = 1;
    siphon_config_t *cfg = NULL;
    siphon_mapset_t *ms = NULL;
    siphon_source_t *src = NULL;
    const siphon_source_ops_t *ops = NULL;
    file_rows_t fr;
    int have_fr = 0;
    preview_t pv;
    memset(&pv, 0, sizeof(pv));
    memset(&fr, 0, sizeof(fr));

    if (siphon_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon preview: %s\n", err);
        return 1;
    }
    pv.cfg = cfg;
    if (siphon_mapset_load(&ms, cfg->mappings_dir, cfg->schemas_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon preview: %s\n", err);
        goto out;
    }
    if (!(pv.map = find_mapping(ms, mapping))) {
        fprintf(stderr, "siphon preview: no mapping '%s' in %s (expected an entity name, "
                        "entity.vN or a mapping file name; there are:", mapping,
                cfg->mappings_dir);
        for (int i = 0; i < siphon_mapset_count(ms); i++)
            fprintf(stderr, "%s %s", i ? "," : "", siphon_mapping_entity(siphon_mapset_get(ms, i)));
        fprintf(stderr, ")\n");
        goto out;
    }
    const char *schema = siphon_mapping_source_schema(pv.map);
    const char *table = siphon_mapping_source_table(pv.map);
    const siphon_row_t *rows = NULL;
    int nrows = 0;
    if (rows_path) {
        have_fr = 1;
        if (load_rows(&fr, rows_path, pv.map, (int)limit) < 0)
            goto out;
        pv.rel = &fr.rel;
        rows = fr.rows;
        nrows = fr.nrows;
    } else {
        ops = siphon_registry_source(cfg->source.type);
        if (!ops || !ops->open_catalog || !ops->sample) {
            fprintf(stderr, "siphon preview: the %s connector cannot read rows for a preview "
                            "(use --rows FILE)\n", cfg->source.type);
            goto out;
        }
        if (ops->open_catalog(&src, cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "siphon preview: %s (use --rows FILE to preview without the "
                            "database)\n", err);
            goto out;
        }
        if (ops->sample(src, schema, table, (int)limit, &pv.rel, &rows, &nrows, err,
                        sizeof(err)) < 0) {
            fprintf(stderr, "siphon preview: %s\n", err);
            goto out;
        }
    }
    if (siphon_mapset_bind(ms, pv.rel, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon preview: %s\n", err);
        goto out;
    }
    for (int i = 0; i < nrows; i++) {
        siphon_change_t chg = {.kind = SIPHON_REC_CHANGE, .op = SIPHON_OP_READ, .rel = pv.rel,
                               .after = &rows[i], .snapshot = 1};
        pv.rowno = i + 1;
        pv.row = &rows[i];
        pv.produced = 0;
        int arc = siphon_mapset_apply(ms, &chg, err, sizeof(err), on_mapped, &pv);
        if (arc < 0) {
            /* on_error: fail, or a structural error: report it and go on */
            json_t *o = json_object();
            json_object_set_new(o, "row", json_integer(pv.rowno));
            json_t *e = json_object();
            json_object_set_new(e, "message", json_string(err));
            json_object_set_new(o, "error", e);
            json_object_set_new(o, "source", row_json(pv.rel, pv.row));
            print_json(o);
            pv.errors++;
        } else if (pv.produced == 0) {
            json_t *o = json_object();
            json_object_set_new(o, "row", json_integer(pv.rowno));
            json_object_set_new(o, "skipped",
                                json_string("filtered out, or flagged deleted (soft_delete)"));
            print_json(o);
            pv.skipped++;
        }
    }
    fflush(stdout);
    fprintf(stderr, "preview: %d row(s) of %s.%s through %s: %ld record(s), %ld with errors, "
                    "%ld skipped, %ld field(s) nulled\n",
            nrows, schema, table, siphon_mapping_path(pv.map), pv.records, pv.errors,
            pv.skipped, pv.warnings);
    rc = 0;
out:
    if (src)
        ops->close(src);
    if (have_fr)
        file_rows_free(&fr);
    siphon_buf_free(&pv.kb);
    siphon_buf_free(&pv.vb);
    siphon_mapset_destroy(ms);
    siphon_config_destroy(cfg);
    return rc;
}
