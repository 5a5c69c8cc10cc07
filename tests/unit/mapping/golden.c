/*
 * golden.c - the data-driven half of the mapping tests: every folder under
 * tests/golden/mapping/ is a case with
 *     mappings/, schemas/                the .yaml and .avsc files siphon_mapset_load() reads
 *     input.yaml (optional)              synthetic relations and changes (format below)
 *     expected.txt                       what the run prints: the loaded mappings, each bind,
 *                                        each change's mapped output, or the error where it
 *                                        stopped, with the exact file:line:column
 *
 * input.yaml:
 *     relations:
 *       - version: 1                     # siphon_relation_t.version (unique)
 *         table: public.oehdr
 *         bind: false                    # optional: leave binding to the first apply
 *         columns:                       # [name, type name, value type, "key"?]
 *           - [hdcomp, bpchar, text, key]
 *     changes:
 *       - rel: 1                         # the relation's version
 *         op: c                          # c u d r t
 *         before: [...]                  # one value per column: ~ is null, (unchanged) is
 *         after: [...]                   # a TOAST-unchanged column, else text parsed per type
 *                                        # (bytes and rawtext also as hex: "\\x4dfc")
 *
 * The run is done with the case folder as the current directory, so messages show
 * "mappings/x.yaml:12:5". A new case is a new folder; SIPHON_GOLDEN_UPDATE=1 writes the actual
 * output as expected.txt (review it before committing).
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "mapping/mapping.h"
#include "mapping/mapping_int.h"
#include "test_mapping.h"

#define MAX_RELS 16
#define MAX_COLS 64
#define MAX_CHANGES 64

typedef struct g_input {
    siphon_arena_t mem;
    int nrels;
    siphon_relation_t rels[MAX_RELS];
    int bind[MAX_RELS];
    int nchg;
    siphon_change_t chg[MAX_CHANGES];
} g_input_t;

/* ---- values from text ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* "HH:MM:SS[.ffffff]" -> microseconds; returns the bytes consumed, 0 on error */
static size_t parse_time(const char *s, int64_t *us)
{
    int h, mi, se, n = 0;
    if (sscanf(s, "%2d:%2d:%2d%n", &h, &mi, &se, &n) != 3)
        return 0;
    int64_t frac = 0;
    size_t i = (size_t)n;
    if (s[i] == '.') {
        int digits = 0;
        for (i++; isdigit((unsigned char)s[i]); i++, digits++)
            if (digits < 6)
                frac = frac * 10 + (s[i] - '0');
        for (; digits < 6; digits++)
            frac *= 10;
    }
    *us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000 + frac;
    return i;
}

static void parse_value(g_input_t *in, const char *s, size_t len, siphon_vtype_t vt,
                        siphon_value_t *v)
{
    memset(v, 0, sizeof(*v));
    v->type = vt;
    switch (vt) {
    case SIPHON_V_BOOL:
        v->u.b = strcmp(s, "true") == 0 || strcmp(s, "t") == 0;
        break;
    case SIPHON_V_INT:
        v->u.i = strtoll(s, NULL, 10);
        break;
    case SIPHON_V_FLOAT:
        v->u.f = strtod(s, NULL);
        break;
    case SIPHON_V_DECIMAL: {
        char *out = siphon_arena_alloc(&in->mem, len + 2);
        assert_int_equal(siphon_value_decimal_parse(v, s, len, out, len + 2), 0);
        break;
    }
    case SIPHON_V_DATE: {
        int y, m, d;
        assert_int_equal(sscanf(s, "%d-%d-%d", &y, &m, &d), 3);
        v->u.date = (int32_t)days_from_civil(y, (unsigned)m, (unsigned)d);
        break;
    }
    case SIPHON_V_TIME:
        assert_true(parse_time(s, &v->u.time_us) > 0);
        break;
    case SIPHON_V_TIMESTAMP: {
        int y, m, d, n = 0;
        int64_t us;
        assert_int_equal(sscanf(s, "%d-%d-%d%n", &y, &m, &d, &n), 3);
        assert_true(s[n] == ' ' || s[n] == 'T');
        size_t t = parse_time(s + n + 1, &us);
        assert_true(t > 0);
        v->u.ts.us = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400000000LL + us;
        v->u.ts.tz = s[n + 1 + t] == 'Z';
        break;
    }
    case SIPHON_V_UUID: {
        int k = 0;
        for (size_t i = 0; i < len && k < 32; i++) {
            if (s[i] == '-')
                continue;
            int h = isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10;
            v->u.uuid[k / 2] = (uint8_t)(k % 2 ? v->u.uuid[k / 2] | h : h << 4);
            k++;
        }
        assert_int_equal(k, 32);
        break;
    }
    case SIPHON_V_BYTES:
    case SIPHON_V_RAWTEXT:
        if (len >= 2 && s[0] == '\\' && s[1] == 'x') { /* \x4dfc: hex, as bytea prints */
            char *b = siphon_arena_alloc(&in->mem, len / 2 + 1);
            size_t n = 0;
            for (size_t i = 2; i + 1 < len; i += 2) {
                unsigned hi, lo;
                assert_int_equal(sscanf(s + i, "%1x%1x", &hi, &lo), 2);
                b[n++] = (char)(hi << 4 | lo);
            }
            v->u.s.ptr = b;
            v->u.s.len = n;
            break;
        }
        /* fall through */
    default: /* TEXT, JSON, and bytes written as text */
        v->u.s.ptr = siphon_arena_strndup(&in->mem, s, len);
        v->u.s.len = len;
        break;
    }
}

static siphon_vtype_t vtype_from_name(const char *s)
{
    for (int t = SIPHON_V_NULL; t <= SIPHON_V_UNCHANGED; t++)
        if (strcmp(siphon_vtype_name((siphon_vtype_t)t), s) == 0)
            return (siphon_vtype_t)t;
    fail_msg("unknown value type '%s' in input.yaml", s);
    return SIPHON_V_NULL;
}

/* ---- input.yaml ---- */

static yaml_node_t *g_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static const char *g_str(yaml_node_t *n)
{
    assert_non_null(n);
    assert_int_equal(n->type, YAML_SCALAR_NODE);
    return (const char *)n->data.scalar.value;
}

static int g_nitems(yaml_node_t *n)
{
    assert_non_null(n);
    assert_int_equal(n->type, YAML_SEQUENCE_NODE);
    return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *g_item(yaml_document_t *doc, yaml_node_t *n, int i)
{
    return yaml_document_get_node(doc, n->data.sequence.items.start[i]);
}

static const siphon_row_t *g_row(g_input_t *in, yaml_document_t *doc, yaml_node_t *n,
                                 const siphon_relation_t *rel)
{
    if (!n)
        return NULL;
    int nv = g_nitems(n);
    assert_int_equal(nv, rel->ncols);
    siphon_row_t *row = siphon_arena_alloc(&in->mem, sizeof(*row));
    row->ncols = nv;
    row->vals = siphon_arena_alloc(&in->mem, sizeof(siphon_value_t) * (size_t)(nv ? nv : 1));
    for (int i = 0; i < nv; i++) {
        yaml_node_t *it = g_item(doc, n, i);
        const char *s = g_str(it);
        size_t len = it->data.scalar.length;
        siphon_value_t *v = &row->vals[i];
        if (it->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (len == 0 || strcmp(s, "~") == 0)) {
            memset(v, 0, sizeof(*v));
            v->type = SIPHON_V_NULL;
        } else if (strcmp(s, "(unchanged)") == 0) {
            memset(v, 0, sizeof(*v));
            v->type = SIPHON_V_UNCHANGED;
        } else {
            parse_value(in, s, len, rel->cols[i].vtype, v);
        }
    }
    return row;
}

static void g_load_input(g_input_t *in, const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    yaml_parser_t parser;
    yaml_document_t doc;
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc))
        fail_msg("%s:%zu: %s", path, parser.problem_mark.line + 1, parser.problem);
    yaml_node_t *root = yaml_document_get_root_node(&doc);

    yaml_node_t *rels = g_get(&doc, root, "relations");
    in->nrels = g_nitems(rels);
    assert_true(in->nrels <= MAX_RELS);
    for (int r = 0; r < in->nrels; r++) {
        yaml_node_t *rn = g_item(&doc, rels, r);
        siphon_relation_t *rel = &in->rels[r];
        const char *table = g_str(g_get(&doc, rn, "table"));
        const char *dot = strchr(table, '.');
        rel->id = (uint32_t)(16384 + r);
        rel->version = (uint64_t)strtoull(g_str(g_get(&doc, rn, "version")), NULL, 10);
        rel->schema = siphon_arena_strndup(&in->mem, table, (size_t)(dot - table));
        rel->name = siphon_arena_strndup(&in->mem, dot + 1, strlen(dot + 1));
        yaml_node_t *bn = g_get(&doc, rn, "bind");
        in->bind[r] = !(bn && strcmp(g_str(bn), "false") == 0);
        yaml_node_t *cols = g_get(&doc, rn, "columns");
        rel->ncols = g_nitems(cols);
        rel->cols = siphon_arena_alloc(&in->mem, sizeof(siphon_column_t) * (size_t)(rel->ncols + 1));
        for (int c = 0; c < rel->ncols; c++) {
            yaml_node_t *cn = g_item(&doc, cols, c);
            int parts = g_nitems(cn);
            assert_true(parts == 3 || parts == 4);
            siphon_column_t *col = &rel->cols[c];
            memset(col, 0, sizeof(*col));
            const char *nm = g_str(g_item(&doc, cn, 0)), *tn = g_str(g_item(&doc, cn, 1));
            col->name = siphon_arena_strndup(&in->mem, nm, strlen(nm));
            col->type_name = siphon_arena_strndup(&in->mem, tn, strlen(tn));
            col->vtype = vtype_from_name(g_str(g_item(&doc, cn, 2)));
            col->typmod = -1;
            col->is_key = parts == 4 && strcmp(g_str(g_item(&doc, cn, 3)), "key") == 0;
            col->is_pkey = col->is_key;
        }
    }
    yaml_node_t *chs = g_get(&doc, root, "changes");
    in->nchg = chs ? g_nitems(chs) : 0;
    assert_true(in->nchg <= MAX_CHANGES);
    for (int i = 0; i < in->nchg; i++) {
        yaml_node_t *cn = g_item(&doc, chs, i);
        siphon_change_t *chg = &in->chg[i];
        memset(chg, 0, sizeof(*chg));
        uint64_t ver = strtoull(g_str(g_get(&doc, cn, "rel")), NULL, 10);
        for (int r = 0; r < in->nrels; r++)
            if (in->rels[r].version == ver)
                chg->rel = &in->rels[r];
        assert_non_null(chg->rel);
        chg->kind = SIPHON_REC_CHANGE;
        chg->op = (siphon_op_t)g_str(g_get(&doc, cn, "op"))[0];
        chg->snapshot = chg->op == SIPHON_OP_READ;
        chg->txid = 1000 + (uint64_t)i;
        chg->pos.num = 0x16B3748 + (uint64_t)i;
        chg->database = "erp";
        chg->before = g_row(in, &doc, g_get(&doc, cn, "before"), chg->rel);
        chg->after = g_row(in, &doc, g_get(&doc, cn, "after"), chg->rel);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}

/* ---- output ---- */

void tm_format_value(siphon_buf_t *out, const siphon_value_t *v)
{
    char buf[256];
    switch (v->type) {
    case SIPHON_V_NULL:
        siphon_buf_printf(out, "null");
        return;
    case SIPHON_V_UNCHANGED:
        siphon_buf_printf(out, "(unchanged)");
        return;
    case SIPHON_V_TEXT:
    case SIPHON_V_JSON:
        siphon_buf_printf(out, "%s:\"%.*s\"", siphon_vtype_name(v->type), (int)v->u.s.len,
                          v->u.s.ptr);
        return;
    default:
        siphon_value_format(v, buf, sizeof(buf));
        siphon_buf_printf(out, "%s:%s", siphon_vtype_name(v->type), buf);
        if (v->type == SIPHON_V_DECIMAL) { /* the raw form too: the encoder rescales it */
            char ibuf[SIPHON_DEC_I64_CHARS];
            const char *d;
            size_t n = siphon_value_dec_digits(v, ibuf, &d);
            siphon_buf_printf(out, "(%.*s,%d)", (int)n, d, v->u.dec.scale);
        }
    }
}

static void format_image(siphon_buf_t *out, const char *label, const siphon_mapping_t *map,
                         const siphon_value_t *vals)
{
    const siphon_schema_t *sch = siphon_mapping_schema(map);
    siphon_buf_printf(out, "  %s:", label);
    if (!vals) {
        siphon_buf_printf(out, " none\n");
        return;
    }
    siphon_buf_printf(out, "\n");
    for (int i = 0; i < sch->record->nfields; i++) {
        siphon_buf_printf(out, "    %s = ", sch->record->fields[i].name);
        tm_format_value(out, &vals[i]);
        siphon_buf_printf(out, "\n");
    }
}

static int on_mapped(const siphon_mapped_t *m, void *opaque)
{
    siphon_buf_t *out = opaque;
    if (m->error) {
        siphon_buf_printf(out, "  -> %s v%d op=%c: dead letter\n", siphon_mapping_entity(m->map),
                          siphon_mapping_major(m->map), m->op);
        siphon_buf_printf(out, "  field: %s, columns: %s, at %d:%d\n",
                          m->error->field ? m->error->field : "(row)",
                          m->error->columns ? m->error->columns : "(none)", m->error->line,
                          m->error->col);
        siphon_buf_printf(out, "  reason: %s\n", m->error->reason);
        siphon_buf_printf(out, "  message: %s\n", m->error->message);
        return 0;
    }
    siphon_buf_printf(out, "  -> %s v%d op=%c\n", siphon_mapping_entity(m->map),
                      siphon_mapping_major(m->map), m->op);
    for (int w = 0; w < m->nwarnings; w++)
        siphon_buf_printf(out, "  warning: field %s nulled: %s\n", m->warnings[w].field,
                          m->warnings[w].reason);
    siphon_buf_printf(out, "  key:");
    for (int k = 0; k < siphon_mapping_key_count(m->map); k++) {
        siphon_buf_printf(out, " %s=", siphon_mapping_key_field(m->map, k));
        tm_format_value(out, &m->key[k]);
    }
    siphon_buf_printf(out, "\n");
    format_image(out, "before", m->map, m->before);
    format_image(out, "after", m->map, m->after);
    return 0;
}

static void describe_set(siphon_buf_t *out, siphon_mapset_t *ms)
{
    siphon_buf_printf(out, "loaded %d mapping(s)\n", siphon_mapset_count(ms));
    for (int i = 0; i < siphon_mapset_count(ms); i++) {
        const siphon_mapping_t *map = siphon_mapset_get(ms, i);
        const siphon_schema_t *sch = siphon_mapping_schema(map);
        siphon_buf_printf(out, "mapping %s: %s v%d <- %s.%s, schema %s, key [",
                          siphon_mapping_path(map), siphon_mapping_entity(map),
                          siphon_mapping_major(map), siphon_mapping_source_schema(map),
                          siphon_mapping_source_table(map), sch->path);
        for (int k = 0; k < siphon_mapping_key_count(map); k++)
            siphon_buf_printf(out, "%s%s", k ? ", " : "", siphon_mapping_key_field(map, k));
        siphon_buf_printf(out, "]\n");
        assert_non_null(siphon_mapping_stream(map));
        for (int f = 0; f < sch->record->nfields; f++) {
            const map_field_t *mf = &map->fields[f];
            siphon_buf_printf(out, "  %s <- ", sch->record->fields[f].name);
            if (!mf->mapped)
                siphon_buf_printf(out, "(not mapped)");
            for (int j = 0; j < mf->nin; j++) {
                const map_input_t *in = &mf->in[j];
                if (in->column)
                    siphon_buf_printf(out, "%s%s", j ? ", " : "", in->column);
                else
                    siphon_buf_printf(out, "%sconst '%s'", j ? ", " : "", in->cst.text);
                for (int k = 0; k < in->nops; k++)
                    siphon_buf_printf(out, "%s%s%s", k ? " " : " (",
                                      siphon_mapping__op_name(in->ops[k].kind),
                                      k == in->nops - 1 ? ")" : "");
            }
            for (int k = 0; k < mf->nops; k++)
                siphon_buf_printf(out, "%s%s", k ? " " : " | ",
                                  siphon_mapping__op_name(mf->ops[k].kind));
            siphon_buf_printf(out, "\n");
        }
    }
}

/* Run one case in its folder; returns the output (caller frees). */
static char *run_case(const char *dir)
{
    siphon_buf_t out = {0};
    siphon_mapset_t *ms = NULL;
    char errbuf[2048] = "", cwd[PATH_MAX];
    g_input_t *in = calloc(1, sizeof(*in));
    assert_non_null(in);
    siphon_arena_init(&in->mem, 0);

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    /* the key of the hash transform in the golden cases (key_env: SIPHON_GOLDEN_KEY) */
    setenv("SIPHON_GOLDEN_KEY", "golden-secret", 1);
    int rc = siphon_mapset_load(&ms, "mappings", "schemas", errbuf, sizeof(errbuf));
    if (rc) {
        assert_null(ms);
        siphon_buf_printf(&out, "load: error %s: %s\n", siphon_err_name(rc), errbuf);
        goto done;
    }
    describe_set(&out, ms);
    struct stat st;
    if (stat("input.yaml", &st) != 0)
        goto done;
    g_load_input(in, "input.yaml");
    for (int r = 0; r < in->nrels; r++) {
        const siphon_relation_t *rel = &in->rels[r];
        if (!in->bind[r])
            continue;
        rc = siphon_mapset_bind(ms, rel, errbuf, sizeof(errbuf));
        siphon_buf_printf(&out, "bind %s.%s (version %llu, mapped: %s): ", rel->schema,
                          rel->name, (unsigned long long)rel->version,
                          siphon_mapset_has_table(ms, rel->schema, rel->name) ? "yes" : "no");
        if (rc) {
            siphon_buf_printf(&out, "error %s: %s\n", siphon_err_name(rc), errbuf);
            goto done;
        }
        siphon_buf_printf(&out, "ok\n");
    }
    for (int i = 0; i < in->nchg; i++) {
        const siphon_change_t *chg = &in->chg[i];
        size_t mark = out.len;
        siphon_buf_printf(&out, "change %d: %c on %s.%s (version %llu)\n", i + 1, chg->op,
                          chg->rel->schema, chg->rel->name,
                          (unsigned long long)chg->rel->version);
        size_t before = out.len;
        rc = siphon_mapset_apply(ms, chg, errbuf, sizeof(errbuf), on_mapped, &out);
        if (rc) {
            out.len = before; /* drop any partial output of this change */
            siphon_buf_printf(&out, "  error %s: %s\n", siphon_err_name(rc), errbuf);
        } else if (out.len == before) {
            siphon_buf_printf(&out, "  (nothing)\n");
        }
        (void)mark;
    }
done:
    assert_int_equal(chdir(cwd), 0);
    siphon_mapset_destroy(ms);
    siphon_arena_destroy(&in->mem);
    free(in);
    siphon_buf_appendc(&out, '\0');
    return (char *)out.data;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    siphon_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        siphon_buf_append(&b, chunk, n);
    fclose(f);
    siphon_buf_appendc(&b, '\0');
    return (char *)b.data;
}

void tm_run_golden(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 16];
    char *actual = run_case(dir);
    snprintf(path, sizeof(path), "%s/expected.txt", dir);
    const char *update = getenv("SIPHON_GOLDEN_UPDATE");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(actual, f);
        fclose(f);
        free(actual);
        return;
    }
    char *expected = read_text(path);
    if (!expected)
        fail_msg("%s has no expected.txt", dir);
    assert_string_equal(actual, expected);
    free(expected);
    free(actual);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tm_golden_cases(char ***dirs, char ***names)
{
    const char *src = getenv("SIPHON_SOURCE_DIR");
    char root[2048];
    snprintf(root, sizeof(root), "%s/tests/golden/mapping", src ? src : ".");
    DIR *d = opendir(root);
    if (!d)
        return -1;
    int n = 0, cap = 64;
    char **list = calloc((size_t)cap, sizeof(char *));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap *= 2;
            list = realloc(list, (size_t)cap * sizeof(char *));
        }
        list[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(list, (size_t)n, sizeof(char *), cmp_names);
    *dirs = calloc((size_t)n + 1, sizeof(char *));
    *names = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s/%s", root, list[i]);
        (*dirs)[i] = strdup(buf);
        snprintf(buf, sizeof(buf), "golden/mapping/%s", list[i]);
        (*names)[i] = strdup(buf);
        free(list[i]);
    }
    free(list);
    return n;
}
