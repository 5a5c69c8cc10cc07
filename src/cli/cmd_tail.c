/*
 * cmd_tail.c - `siphon tail`: print change events as JSON lines, one per event, from a Kafka
 * topic or from a folder of Avro container files written by the file sink.
 *
 * Kafka: a librdkafka consumer assigned every partition of the topic (no group, nothing
 * committed), or a member of a consumer group with --group. Each message's key and value are
 * single-object encoded: the fingerprint after C3 01 picks the stream among the config's
 * mappings, whose schemas decode it (logical types rendered: decimals "12.50", dates, ISO
 * timestamps); Confluent-framed ones are decoded with the same schemas (decode_part()). Files:
 * each record carries key and event and the file header its schemas, so no
 * config is needed (siphon_file_reader_*).
 *
 * Output, compact and in a fixed field order so that grep and jq both work:
 *   {"topic":"erp.sales_order.v1","partition":2,"offset":17,"key":{...},"event":{...}}
 *   {"topic":"erp.sales_order.v1","file":"erp.sales_order.v1-0000000003.avro","record":5,
 *    "key":{...},"event":{...}}
 * A tombstone has "event":null; a message that cannot be decoded has "error":"..." and is not
 * fatal. Like tail(1): the last 10 events of each partition (or topic folder) by default,
 * --from-beginning for all, --last N, --follow to keep waiting. Ends quietly when the reader of
 * stdout goes away (| head).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "avro/siphon_avro.h"
#include "cli/cli.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"
#include "sink/file/file.h"

static const char *usage_tail =
    "Usage: siphon tail --config FILE --topic TOPIC [options]       (Kafka)\n"
    "       siphon tail --dir DIR [--topic TOPIC] [options]          (Avro container files)\n"
    "\n"
    "Prints change events as JSON lines, one per event, decoded with their schemas:\n"
    "  {\"topic\":..,\"partition\":..,\"offset\":..,\"key\":{..},\"event\":{..}}\n"
    "  {\"topic\":..,\"file\":..,\"record\":..,\"key\":{..},\"event\":{..}}      (--dir)\n"
    "A tombstone prints \"event\":null. Like tail(1), it starts with the last 10 events of each\n"
    "partition (or topic folder) and stops at the end unless --follow is given.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE       siphon.yaml: brokers and client properties from sink.properties,\n"
    "                          schemas from its mappings (needed for Kafka)\n"
    "  -b, --brokers LIST      bootstrap servers, overriding the config's\n"
    "  -t, --topic TOPIC       the topic to read; with --dir, the topic folder under DIR\n"
    "  -d, --dir DIR           read the file sink's folder (sink.path) or one topic folder of it\n"
    "      --from-beginning    start at the oldest event\n"
    "  -n, --last N            start N events before the end of each partition/folder (10)\n"
    "  -f, --follow            keep printing new events until Ctrl-C\n"
    "  -k, --key K             only events of key K: its JSON ({\"order_id\":42}) or its field\n"
    "                          values joined by '/' (01/SO-1001)\n"
    "  -g, --group ID          consume as member ID of a consumer group (offsets committed;\n"
    "                          --from-beginning applies when the group has no offsets yet)\n"
    "  -X, --property K=V      a librdkafka consumer property (repeatable)\n"
    "  -p, --pretty            indented JSON instead of one line per event\n"
    "  -l, --log-level LEVEL   error, warning (default), notice, info or debug\n"
    "  -h, --help              this help\n"
    "\n"
    "Examples:\n"
    "  siphon tail --config siphon.yaml --topic erp.sales_order.v1 --from-beginning | jq .event.op\n"
    "  siphon tail --config siphon.yaml --topic erp.sales_order.v1 --key 01/SO-1001 --follow\n"
    "  siphon tail --dir /var/lib/siphon/out --topic erp.sales_order.v1 --last 3\n";

typedef struct tail {
    const char *config_path, *brokers, *topic, *dir, *key, *group;
    int from_beginning, follow, pretty;
    long last;
    char **props;           /* "k=v" from -X, borrowed from argv */
    int nprops;
    siphon_config_t *cfg;
    siphon_mapset_t *ms;
    siphon_buf_t line;
    int out_closed;         /* stdout's reader went away */
    long printed;
} tail_t;

/* ---- output ---- */

static int put_json_string(siphon_buf_t *b, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    int rc = t ? siphon_buf_append(b, t, strlen(t)) : SIPHON_ENOMEM;
    free(t);
    json_decref(j);
    return rc;
}

/* The key's field values joined by '/' ("01/SO-1001"), or NULL. Caller frees. */
static char *key_joined(json_t *key)
{
    siphon_buf_t b = {0};
    const char *k;
    json_t *v;
    int first = 1;
    if (!json_is_object(key))
        return NULL;
    json_object_foreach(key, k, v) {
        if (!first)
            siphon_buf_appendc(&b, '/');
        first = 0;
        if (json_is_string(v)) {
            siphon_buf_append(&b, json_string_value(v), strlen(json_string_value(v)));
        } else {
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            if (t)
                siphon_buf_append(&b, t, strlen(t));
            free(t);
        }
    }
    siphon_buf_appendc(&b, '\0');
    return (char *)b.data;
}

static int key_matches(const tail_t *t, const char *key_json)
{
    if (!t->key)
        return 1;
    if (!key_json)
        return 0;
    if (strcmp(key_json, t->key) == 0)
        return 1;
    json_t *kj = json_loads(key_json, 0, NULL);
    json_t *want = json_loads(t->key, JSON_DECODE_ANY, NULL);
    char *joined = key_joined(kj);
    int ok = (want && json_equal(kj, want)) || (joined && strcmp(joined, t->key) == 0);
    free(joined);
    json_decref(kj);
    json_decref(want);
    return ok;
}

/* Print the line in t->line (without newline). 0, or -1 when stdout is gone. */
static int emit_line(tail_t *t)
{
    if (siphon_buf_appendc(&t->line, '\0') < 0)
        return -1;
    const char *s = (const char *)t->line.data;
    int rc;
    if (t->pretty) {
        json_t *j = json_loads(s, 0, NULL);
        char *p = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        rc = fprintf(stdout, "%s\n", p ? p : s);
        free(p);
        json_decref(j);
    } else {
        rc = fprintf(stdout, "%s\n", s);
    }
    if (rc < 0 || fflush(stdout) != 0) {
        t->out_closed = 1;
        return -1;
    }
    t->printed++;
    return 0;
}

/* ---- Kafka ---- */

static const siphon_mapping_t *find_stream(const tail_t *t, uint64_t fp, int is_key)
{
    for (int i = 0; t->ms && i < siphon_mapset_count(t->ms); i++) {
        const siphon_mapping_t *map = siphon_mapset_get(t->ms, i);
        siphon_avro_stream_t *st = siphon_mapping_stream(map);
        if ((is_key ? siphon_avro_stream_key_fingerprint(st)
                    : siphon_avro_stream_value_fingerprint(st)) == fp)
            return map;
    }
    return NULL;
}

/* The stream whose topic is `topic` (<topic_prefix>.<entity>.v<major>), or NULL. */
static const siphon_mapping_t *find_topic_stream(const tail_t *t, const char *topic)
{
    const char *prefix = t->cfg ? t->cfg->sink.topic_prefix : NULL;
    char name[512];
    for (int i = 0; topic && t->ms && i < siphon_mapset_count(t->ms); i++) {
        const siphon_mapping_t *map = siphon_mapset_get(t->ms, i);
        snprintf(name, sizeof(name), "%s%s%s.v%d", prefix ? prefix : "",
                 prefix && *prefix ? "." : "", siphon_mapping_entity(map),
                 siphon_mapping_major(map));
        if (strcmp(name, topic) == 0)
            return map;
    }
    return NULL;
}

/* Decode a key or value into *out (caller frees); on failure *why says what went wrong.
 * Single-object encoded parts name their schema by fingerprint. Confluent-framed ones
 * (sink.format: confluent) name it by a registry id: the value's schema is the one its
 * siphon.schema_fingerprint header names (value_fp, 0 when absent), the key's is the key schema
 * of the topic's stream; the part is re-framed and decoded like a single-object one, so no
 * registry is needed. */
static int decode_part(const tail_t *t, const char *topic, const void *p, size_t len,
                       int is_key, uint64_t value_fp, char **out, char *why, size_t whysize)
{
    const siphon_mapping_t *map = NULL;
    siphon_buf_t soe = {0};
    uint64_t fp = 0;
    int rc = -1;
    *out = NULL;
    if (siphon_avro_confluent_id(p, len, NULL)) {
        if (!is_key && value_fp)
            map = find_stream(t, value_fp, 0);
        if (!map)
            map = find_topic_stream(t, topic);
        if (!map) {
            snprintf(why, whysize,
                     "the %s is in the Confluent wire format and no mapping of %s publishes "
                     "topic %s (is this the config that produced the topic?)",
                     is_key ? "key" : "value", t->config_path, topic ? topic : "?");
            return -1;
        }
        siphon_avro_stream_t *st = siphon_mapping_stream(map);
        fp = is_key ? siphon_avro_stream_key_fingerprint(st)
                    : siphon_avro_stream_value_fingerprint(st);
        if (siphon_avro_confluent_to_soe(&soe, p, len, fp) < 0) {
            snprintf(why, whysize, "out of memory");
            return -1;
        }
        p = soe.data;
        len = soe.len;
    } else if (!siphon_avro_soe_fingerprint(p, len, &fp)) {
        snprintf(why, whysize,
                 "the %s is neither Avro single-object encoded nor in the Confluent wire format",
                 is_key ? "key" : "value");
        return -1;
    } else if (!(map = find_stream(t, fp, is_key))) {
        snprintf(why, whysize,
                 "no mapping of %s has a %s schema with fingerprint %016" PRIx64
                 " (is this the config that produced the topic?)",
                 t->config_path, is_key ? "key" : "value", fp);
        return -1;
    }
    rc = siphon_avro_stream_decode_json(out, siphon_mapping_stream(map), is_key, p, len, why,
                                        whysize) < 0 ? -1 : 0;
    siphon_buf_free(&soe);
    return rc;
}

/* The value's siphon.schema_fingerprint header (16 hex digits), or 0. */
static uint64_t header_fingerprint(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t n = 0;
    char hex[17];
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, "siphon.schema_fingerprint", &v, &n) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        n != 16)
        return 0;
    memcpy(hex, v, 16);
    hex[16] = '\0';
    return strtoull(hex, NULL, 16);
}

static int print_kafka_message(tail_t *t, const rd_kafka_message_t *m)
{
    char why[512] = "", *key = NULL, *ev = NULL;
    int bad = 0;
    const char *topic = rd_kafka_topic_name(m->rkt);
    uint64_t vfp = header_fingerprint(m);
    if (m->key &&
        decode_part(t, topic, m->key, m->key_len, 1, 0, &key, why, sizeof(why)) < 0)
        bad = 1;
    if (!bad && m->payload &&
        decode_part(t, topic, m->payload, m->len, 0, vfp, &ev, why, sizeof(why)) < 0)
        bad = 1;
    int rc = 0;
    if (key_matches(t, key) || (bad && !t->key)) {
        siphon_buf_reset(&t->line);
        siphon_buf_append(&t->line, "{\"topic\":", 9);
        put_json_string(&t->line, rd_kafka_topic_name(m->rkt));
        siphon_buf_printf(&t->line, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key\":%s,\"event\":%s",
                          m->partition, m->offset, key ? key : "null", ev ? ev : "null");
        if (bad) {
            siphon_buf_append(&t->line, ",\"error\":", 9);
            put_json_string(&t->line, why);
        }
        siphon_buf_appendc(&t->line, '}');
        rc = emit_line(t);
    }
    free(key);
    free(ev);
    return rc;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    siphon_log(level <= 3 ? SIPHON_LOG_ERR : level == 4 ? SIPHON_LOG_WARNING : SIPHON_LOG_DEBUG,
               "kafka", "%s: %s", fac, buf);
}

static int set_prop(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char why[512];
    if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "siphon tail: could not set Kafka property '%s': %s\n", k, why);
        return -1;
    }
    return 0;
}

/* Properties that only make sense for a producer: not passed from the config to the consumer. */
static int producer_only(const char *k)
{
    static const char *const names[] = {"enable.idempotence", "message.timeout.ms", "linger.ms",
                                        "queue.buffering.max.messages",
                                        "queue.buffering.max.kbytes", "acks", "compression.type",
                                        "compression.codec", "batch.num.messages", "batch.size",
                                        "retries", "delivery.timeout.ms", "request.required.acks",
                                        "transactional.id", "partitioner", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], k) == 0)
            return 1;
    return 0;
}

static rd_kafka_t *kafka_consumer(tail_t *t)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    int have_brokers = t->brokers != NULL;
    if (t->cfg && t->cfg->sink.type && strcmp(t->cfg->sink.type, "kafka") == 0)
        for (int i = 0; i < t->cfg->sink.nprops; i++) {
            const char *k = t->cfg->sink.props[i].key;
            if (producer_only(k) || (t->brokers && (!strcmp(k, "bootstrap.servers") ||
                                                    !strcmp(k, "metadata.broker.list"))))
                continue;
            have_brokers |= !strcmp(k, "bootstrap.servers") || !strcmp(k, "metadata.broker.list");
            if (set_prop(conf, k, t->cfg->sink.props[i].value) < 0)
                goto err;
        }
    if (!have_brokers) {
        fprintf(stderr, "siphon tail: no brokers: give --brokers HOST:PORT, or a config whose "
                        "sink.properties has bootstrap.servers\n");
        goto err;
    }
    if ((t->brokers && set_prop(conf, "bootstrap.servers", t->brokers) < 0) ||
        set_prop(conf, "enable.partition.eof", "true") < 0 ||
        set_prop(conf, "client.id", "siphon-tail") < 0)
        goto err;
    if (t->group) {
        if (set_prop(conf, "group.id", t->group) < 0 ||
            set_prop(conf, "auto.offset.reset", t->from_beginning ? "earliest" : "latest") < 0)
            goto err;
    } else {
        /* assign() needs a group id even though no group is joined and nothing is committed */
        char gid[64];
        snprintf(gid, sizeof(gid), "siphon-tail-%ld", (long)getpid());
        if (set_prop(conf, "group.id", gid) < 0 ||
            set_prop(conf, "enable.auto.commit", "false") < 0 ||
            set_prop(conf, "enable.auto.offset.store", "false") < 0)
            goto err;
    }
    for (int i = 0; i < t->nprops; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s", t->props[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "siphon tail: -X %s: expected KEY=VALUE\n", t->props[i]);
            goto err;
        }
        *eq = '\0';
        if (set_prop(conf, kv, eq + 1) < 0)
            goto err;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        fprintf(stderr, "siphon tail: could not create a Kafka consumer: %s\n", why);
        goto err;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Assign every partition at its start offset. Returns the partition count, or -1. */
static int kafka_assign(tail_t *t, rd_kafka_t *rk)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int n = -1;
    /* a fresh cluster may still be electing leaders: retry briefly (10 s in all) */
    int64_t t0 = siphon_clock_now_ms();
    for (int attempt = 0; attempt < 30 && !siphon_cli_stop; attempt++) {
        long left = 10000 - (long)(siphon_clock_now_ms() - t0);
        if (left <= 0)
            break;
        err = rd_kafka_metadata(rk, 0, rkt, &md, (int)left);
        if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
            break;
        if (!err) {
            err = md->topics[0].err ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!md) {
        fprintf(stderr, "siphon tail: could not look up topic %s: %s (check the topic name and "
                        "the brokers)\n", t->topic, rd_kafka_err2str(err));
        goto out;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t start = RD_KAFKA_OFFSET_BEGINNING;
        if (!t->from_beginning) {
            int64_t lo = 0, hi = 0;
            err = rd_kafka_query_watermark_offsets(rk, t->topic, p, &lo, &hi, 5000);
            if (err) {
                fprintf(stderr, "siphon tail: could not read the offsets of %s [%" PRId32 "]: %s\n",
                        t->topic, p, rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(parts);
                goto out;
            }
            start = hi - t->last > lo ? hi - t->last : lo;
        }
        rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset = start;
    }
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "siphon tail: could not assign the partitions of %s: %s\n", t->topic,
                rd_kafka_err2str(err));
        goto out;
    }
    n = np;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static int tail_kafka(tail_t *t)
{
    rd_kafka_t *rk = kafka_consumer(t);
    int rc = 1, nparts = 0, neof = 0;
    int32_t *eof = NULL; /* per partition id: reached the end */
    if (!rk)
        return 1;
    if (t->group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, t->topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
            fprintf(stderr, "siphon tail: could not subscribe to %s: %s\n", t->topic,
                    rd_kafka_err2str(err));
            goto out;
        }
    } else if ((nparts = kafka_assign(t, rk)) < 0) {
        goto out;
    }
    int cap = 64;
    eof = calloc((size_t)cap, sizeof(*eof));
    if (!eof)
        goto out;
    while (!siphon_cli_stop && !t->out_closed) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition >= cap) {
                int ncap = m->partition + 64;
                int32_t *ne = realloc(eof, (size_t)ncap * sizeof(*ne));
                if (!ne) {
                    rd_kafka_message_destroy(m);
                    goto out;
                }
                memset(ne + cap, 0, (size_t)(ncap - cap) * sizeof(*ne));
                eof = ne;
                cap = ncap;
            }
            if (m->partition >= 0 && !eof[m->partition]) {
                eof[m->partition] = 1;
                neof++;
            }
            rd_kafka_message_destroy(m);
            if (!t->follow) {
                if (t->group) {
                    rd_kafka_topic_partition_list_t *as = NULL;
                    if (!rd_kafka_assignment(rk, &as) && as) {
                        nparts = as->cnt;
                        rd_kafka_topic_partition_list_destroy(as);
                    }
                }
                if (nparts > 0 && neof >= nparts)
                    break;
            }
            continue;
        }
        if (m->err) {
            fprintf(stderr, "siphon tail: %s: %s\n", t->topic, rd_kafka_message_errstr(m));
            int fatal = m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            rd_kafka_message_destroy(m);
            if (fatal)
                goto out;
            continue;
        }
        if (m->partition >= 0 && m->partition < cap && eof[m->partition]) {
            eof[m->partition] = 0; /* more arrived after its end */
            neof--;
        }
        print_kafka_message(t, m);
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    free(eof);
    if (t->group)
        rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- container files ---- */

typedef struct folder {
    char *path;
    char *name;       /* topic folder name */
    char *last_file;  /* the last file printed, NULL before the first */
    int started;
} folder_t;

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_container_files(const char *dir)
{
    char **names = NULL;
    int n = 0;
    if (siphon_file_list(&names, &n, dir, NULL, 0) < 0)
        return 0;
    siphon_file_list_free(names, n);
    return n > 0;
}

/* Print the records of one file from record `skip` on. 0, or -1 when output stopped. */
static int print_file(tail_t *t, const folder_t *fo, const char *name, long long skip)
{
    char path[4096], err[1024];
    siphon_file_reader_t *rd = NULL;
    snprintf(path, sizeof(path), "%s/%s", fo->path, name);
    if (siphon_file_reader_open(&rd, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon tail: %s\n", err);
        return 0; /* one unreadable file does not stop the others */
    }
    const char *topic = siphon_file_reader_topic(rd) ? siphon_file_reader_topic(rd) : fo->name;
    long long idx = 0;
    int rc = 0;
    for (;;) {
        char *key = NULL, *ev = NULL;
        int r = siphon_file_reader_next(rd, &key, &ev, err, sizeof(err));
        if (r == 0)
            break;
        if (r < 0) {
            fprintf(stderr, "siphon tail: %s\n", err);
            break;
        }
        idx++;
        if (idx > skip && key_matches(t, key)) {
            siphon_buf_reset(&t->line);
            siphon_buf_append(&t->line, "{\"topic\":", 9);
            put_json_string(&t->line, topic);
            siphon_buf_append(&t->line, ",\"file\":", 8);
            put_json_string(&t->line, name);
            siphon_buf_printf(&t->line, ",\"record\":%lld,\"key\":%s,\"event\":%s}", idx,
                              key ? key : "null", ev);
            rc = emit_line(t);
        }
        free(key);
        free(ev);
        if (rc < 0 || siphon_cli_stop)
            break;
    }
    siphon_file_reader_close(rd);
    return rc;
}

/* Print the files of a folder not printed yet (the first time: the last N events only). */
static int scan_folder(tail_t *t, folder_t *fo)
{
    char **names = NULL, err[1024];
    int n = 0, rc = 0;
    if (siphon_file_list(&names, &n, fo->path, err, sizeof(err)) < 0) {
        fprintf(stderr, "siphon tail: %s\n", err);
        return 0;
    }
    int from = 0;
    long long skip = 0;
    if (fo->last_file) {
        while (from < n && strcmp(names[from], fo->last_file) <= 0)
            from++;
    } else if (!fo->started && !t->from_beginning) {
        /* walk back from the newest file until it holds the last N events */
        long long want = t->last, have = 0;
        from = n;
        while (from > 0 && have < want) {
            char path[4096];
            siphon_file_reader_t *rd = NULL;
            snprintf(path, sizeof(path), "%s/%s", fo->path, names[from - 1]);
            long long c = 0;
            if (siphon_file_reader_open(&rd, path, NULL, 0) == 0)
                c = siphon_file_reader_count(rd);
            siphon_file_reader_close(rd);
            from--;
            have += c;
        }
        skip = have > want ? have - want : 0;
    }
    fo->started = 1;
    if (from > 0 && from <= n && !fo->last_file)
        fo->last_file = strdup(names[from - 1]); /* what --follow goes on after */
    for (int i = from; i < n && rc == 0 && !siphon_cli_stop; i++) {
        rc = print_file(t, fo, names[i], i == from ? skip : 0);
        free(fo->last_file);
        fo->last_file = strdup(names[i]);
    }
    siphon_file_list_free(names, n);
    return rc;
}

/* The folders to read: DIR/TOPIC, DIR itself when it holds container files, else every
 * subfolder (a sink.path); new subfolders are picked up on later calls. */
static int find_folders(tail_t *t, folder_t **fos, int *nfo)
{
    char path[4096];
    if (t->topic) {
        if (*nfo)
            return 0;
        snprintf(path, sizeof(path), "%s/%s", t->dir, t->topic);
        if (!is_dir(path) && !t->follow) {
            fprintf(stderr, "siphon tail: %s: no such topic folder (the file sink writes one "
                            "folder per topic under sink.path)\n", path);
            return -1;
        }
        *fos = calloc(1, sizeof(**fos));
        if (!*fos)
            return -1;
        (*fos)[0].path = strdup(path);
        (*fos)[0].name = strdup(t->topic);
        *nfo = 1;
        return 0;
    }
    if (*nfo == 0 && has_container_files(t->dir)) {
        *fos = calloc(1, sizeof(**fos));
        if (!*fos)
            return -1;
        const char *slash = strrchr(t->dir, '/');
        (*fos)[0].path = strdup(t->dir);
        (*fos)[0].name = strdup(slash && slash[1] ? slash + 1 : t->dir);
        *nfo = 1;
        return 0;
    }
    if (*nfo == 1 && strcmp((*fos)[0].path, t->dir) == 0)
        return 0; /* reading DIR itself */
    struct dirent **list = NULL;
    int n = scandir(t->dir, &list, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "siphon tail: could not open folder %s: %s\n", t->dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        int known = 0;
        snprintf(path, sizeof(path), "%s/%s", t->dir, name);
        for (int j = 0; j < *nfo; j++)
            known |= strcmp((*fos)[j].name, name) == 0;
        if (rc == 0 && name[0] != '.' && !known && is_dir(path)) {
            folder_t *v = realloc(*fos, (size_t)(*nfo + 1) * sizeof(*v));
            if (!v) {
                rc = -1;
            } else {
                *fos = v;
                memset(&v[*nfo], 0, sizeof(v[*nfo]));
                v[*nfo].path = strdup(path);
                v[*nfo].name = strdup(name);
                (*nfo)++;
            }
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

static int tail_dir(tail_t *t)
{
    folder_t *fos = NULL;
    int nfo = 0, rc = 0;
    if (!is_dir(t->dir)) {
        fprintf(stderr, "siphon tail: %s is not a folder (expected the file sink's sink.path, or "
                        "one of its topic folders)\n", t->dir);
        return 1;
    }
    for (;;) {
        if (find_folders(t, &fos, &nfo) < 0) {
            rc = 1;
            break;
        }
        for (int i = 0; i < nfo && !t->out_closed && !siphon_cli_stop; i++)
            if (is_dir(fos[i].path))
                scan_folder(t, &fos[i]);
        if (!t->follow || t->out_closed || siphon_cli_stop)
            break;
        /* closed files appear when the sink rolls them (sink.roll_ms at the latest) */
        for (int waited = 0; waited < 500 && !siphon_cli_stop; waited += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rc == 0 && nfo == 0 && !t->follow)
        fprintf(stderr, "siphon tail: no topic folders under %s yet\n", t->dir);
    for (int i = 0; i < nfo; i++) {
        free(fos[i].path);
        free(fos[i].name);
        free(fos[i].last_file);
    }
    free(fos);
    return rc;
}

/* The topics a config's mappings produce, for a message. */
static void list_topics(const tail_t *t, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    const char *prefix = t->cfg ? t->cfg->sink.topic_prefix : NULL;
    for (int i = 0; t->ms && i < siphon_mapset_count(t->ms) && off < size; i++) {
        const siphon_mapping_t *map = siphon_mapset_get(t->ms, i);
        off += (size_t)snprintf(buf + off, size - off, "%s%s%s%s.v%d", i ? ", " : "",
                                prefix ? prefix : "", prefix && *prefix ? "." : "",
                                siphon_mapping_entity(map), siphon_mapping_major(map));
    }
}

int siphon_cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},   {"dir", required_argument, NULL, 'd'},
        {"from-beginning", no_argument, NULL, 'B'}, {"last", required_argument, NULL, 'n'},
        {"follow", no_argument, NULL, 'f'},        {"key", required_argument, NULL, 'k'},
        {"group", required_argument, NULL, 'g'},   {"property", required_argument, NULL, 'X'},
        {"pretty", no_argument, NULL, 'p'},        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    tail_t t;
    const char *level = NULL;
    char err[2048];
    int c, rc = 1;
    memset(&t, 0, sizeof(t));
    t.last = 10;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:b:t:d:n:fk:g:X:pl:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c': t.config_path = optarg; break;
        case 'b': t.brokers = optarg; break;
        case 't': t.topic = optarg; break;
        case 'd': t.dir = optarg; break;
        case 'B': t.from_beginning = 1; break;
        case 'n':
            errno = 0;
            t.last = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || t.last < 0) {
                fprintf(stderr, "siphon tail: --last '%s': expected a number of events >= 0\n",
                        optarg);
                return 2;
            }
            break;
        case 'f': t.follow = 1; break;
        case 'k': t.key = optarg; break;
        case 'g': t.group = optarg; break;
        case 'X': {
            char **v = realloc(t.props, (size_t)(t.nprops + 1) * sizeof(*v));
            if (!v)
                return 1;
            t.props = v;
            t.props[t.nprops++] = optarg;
            break;
        }
        case 'p': t.pretty = 1; break;
        case 'l': level = optarg; break;
        case 'h': fputs(usage_tail, stdout); free(t.props); return 0;
        default:
            fprintf(stderr, "siphon tail: unknown or incomplete option '%s'\n\n%s",
                    argv[optind - 1], usage_tail);
            free(t.props);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siphon tail: unexpected argument '%s'\n\n%s", argv[optind], usage_tail);
        free(t.props);
        return 2;
    }
    int lvl = SIPHON_LOG_WARNING;
    if (level && (lvl = siphon_log_level_parse(level)) < 0) {
        fprintf(stderr, "siphon tail: unknown log level '%s' (expected error, warning, notice, "
                        "info or debug)\n", level);
        free(t.props);
        return 2;
    }
    siphon_log_setup(lvl, 0);
    if (!t.dir && !t.config_path) {
        fprintf(stderr, "siphon tail: give --config FILE (Kafka) or --dir DIR (files)\n\n%s",
                usage_tail);
        free(t.props);
        return 2;
    }
    if (t.dir && (t.brokers || t.group || t.nprops)) {
        fprintf(stderr, "siphon tail: --brokers, --group and -X are for Kafka, not --dir\n");
        free(t.props);
        return 2;
    }
    if (t.config_path && !t.dir) {
        if (siphon_config_load(&t.cfg, t.config_path, err, sizeof(err)) < 0) {
            fprintf(stderr, "siphon tail: %s\n", err);
            goto out;
        }
        if (siphon_mapset_load(&t.ms, t.cfg->mappings_dir, t.cfg->schemas_dir, err,
                               sizeof(err)) < 0) {
            fprintf(stderr, "siphon tail: %s\n", err);
            goto out;
        }
        if (!t.topic) {
            char topics[1024];
            list_topics(&t, topics, sizeof(topics));
            fprintf(stderr, "siphon tail: --topic TOPIC is required (this config's topics: %s)\n",
                    topics[0] ? topics : "none");
            rc = 2;
            goto out;
        }
    }
    siphon_cli_signals_install();
    rc = t.dir ? tail_dir(&t) : tail_kafka(&t);
out:
    siphon_buf_free(&t.line);
    siphon_mapset_destroy(t.ms);
    siphon_config_destroy(t.cfg);
    free(t.props);
    return rc;
}
