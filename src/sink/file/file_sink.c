/*
 * file_sink.c - the file sink: each stream (topic) is written to a series of Avro container
 * files under sink.path, and an event is reported delivered only once it is on disk.
 *
 * States of one stream's file, with the function that moves between them:
 *
 *   NONE --[first event: fs_file_open (header written, fsynced; folder fsynced)]--> OPEN
 *   OPEN --[fs_append]--> OPEN, dirty (events appended, opaques pending)
 *   OPEN, dirty --[fs_file_sync: avro-c flush, fsync, file end checked]--> OPEN (opaques ready)
 *   OPEN --[fs_file_close: size or age past the roll limits, a new schema, close(): flush,
 *           fsync, rename .avro.tmp -> .avro, folder fsynced]--> NONE (opaques ready)
 *
 * Invariant (the acknowledgement rule, DESIGN.md): an opaque moves to `ready`, and so is
 * reported delivered from poll()/flush(), only after an fsync of the file holding its event
 * succeeded and the file was seen to end with a complete block. fsync is amortized: pending
 * events are synced together at most every sync.interval.ms (or sooner past sync.records). A
 * failed write or fsync fails every pending event (fatal: the pipeline stops without
 * acknowledging them) and the sink refuses further events.
 *
 * avro-c writes the blocks: we write the header ourselves (to keep the schema's logical types)
 * and open the file with avro_file_writer_open_bs(), which appends. avro-c hides its FILE and
 * ignores fflush errors, so durability is checked on our own descriptor of the same file: fsync,
 * then the last 16 bytes must be the sync marker (a full disk shows up there).
 *
 * Options (sink.properties, all optional): codec (null | deflate | snappy | lzma, as avro-c was
 * built; default null), sync.interval.ms (default 100), sync.records (default 50000).
 */
#include "sink/file/file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>

#include "avro/siphon_avro.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "mapping/mapping.h"

#define FS_BLOCK_SIZE (64 * 1024)
#define FS_DEFAULT_SYNC_MS 100
#define FS_DEFAULT_SYNC_RECORDS 50000

/* The schemas of one stream, by fingerprint pair. */
typedef struct fs_schema {
    uint64_t key_fp, value_fp;
    char *key_json, *value_json;
    char *file_json; /* the file record schema, built on first use */
    char *topic;     /* as registered, NULL when loaded from the config's mappings */
} fs_schema_t;

typedef struct fs_stream {
    char *topic;
    char *dir;
    unsigned long long next_seq;
    /* the open file (w != NULL) */
    avro_file_writer_t w;
    int fd;                     /* our own descriptor of it: fsync and the end check */
    char *tmp_path, *final_path;
    const fs_schema_t *sch;
    uint8_t sync[SIPHON_FILE_SYNC_LEN];
    size_t block_size;
    long long bytes;            /* record bytes appended (the size that rolls the file) */
    long long records;
    long long synced_size;      /* file size at the last successful sync */
    int64_t opened_ms;
    int dirty;
    void **pending;             /* opaques of events appended, not yet synced */
    long npending, cap;
} fs_stream_t;

struct siphon_sink {
    char *root;
    char *connector;
    char *mappings_dir, *schemas_dir;
    int lockfd;
    siphon_sink_delivery_cb cb;
    void *cb_opaque;
    char codec[16];
    int sync_ms;
    long sync_records;
    long long roll_bytes;
    int roll_ms;
    fs_schema_t *schemas;
    int nschemas;
    int loaded;                 /* the config's mappings were read for schemas */
    fs_stream_t **streams;
    int nstreams;
    void **ready;               /* synced (or tombstones): reported at the next poll */
    long nready, rcap;
    long npending;              /* across streams */
    int64_t first_pending_ms;
    siphon_buf_t rec;
    int failed;
    char fail_msg[768];
};

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int push(void ***v, long *n, long *cap, void *p)
{
    if (*n == *cap) {
        long ncap = *cap ? *cap * 2 : 256;
        void **nv = realloc(*v, (size_t)ncap * sizeof(*nv));
        if (!nv)
            return SIPHON_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return 0;
}

/* Write all of p to fd. 0 or -errno. */
static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- failure: every pending event fails, the sink refuses new ones ---- */

static void fs_fail(siphon_sink_t *snk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fs_fail(siphon_sink_t *snk, const char *fmt, ...)
{
    if (!snk->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(snk->fail_msg, sizeof(snk->fail_msg), fmt, ap);
        va_end(ap);
        snk->failed = 1;
        siphon_log(SIPHON_LOG_ERR, "file", "%s", snk->fail_msg);
    }
    for (int i = 0; i < snk->nstreams; i++) {
        fs_stream_t *st = snk->streams[i];
        for (long j = 0; j < st->npending; j++)
            snk->cb(st->pending[j], SIPHON_EIO, snk->fail_msg, snk->cb_opaque);
        st->npending = 0;
    }
    snk->npending = 0;
}

/* ---- schemas ---- */

static fs_schema_t *fs_schema_find(siphon_sink_t *snk, int has_key, uint64_t key_fp,
                                   uint64_t value_fp)
{
    for (int i = 0; i < snk->nschemas; i++)
        if (snk->schemas[i].value_fp == value_fp && (!has_key || snk->schemas[i].key_fp == key_fp))
            return &snk->schemas[i];
    return NULL;
}

static int fs_register(siphon_sink_t *snk, const char *topic, uint64_t key_fp,
                       const char *key_json, uint64_t value_fp, const char *value_json,
                       char *errbuf, size_t errsize)
{
    if (!snk || !key_json || !value_json)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not register schemas for topic %s: missing schema",
                          topic ? topic : "?");
    if (fs_schema_find(snk, 1, key_fp, value_fp))
        return 0;
    fs_schema_t *v = realloc(snk->schemas, (size_t)(snk->nschemas + 1) * sizeof(*v));
    if (!v)
        return SIPHON_ENOMEM;
    snk->schemas = v;
    fs_schema_t *s = &v[snk->nschemas];
    memset(s, 0, sizeof(*s));
    s->key_fp = key_fp;
    s->value_fp = value_fp;
    s->key_json = strdup(key_json);
    s->value_json = strdup(value_json);
    s->topic = topic ? strdup(topic) : NULL;
    if (!s->key_json || !s->value_json || (topic && !s->topic)) {
        free(s->key_json);
        free(s->value_json);
        free(s->topic);
        return siphon_err(errbuf, errsize, SIPHON_ENOMEM, "out of memory");
    }
    snk->nschemas++;
    return 0;
}

/* Without register_schemas from the pipeline, the schemas come from the config's mappings
 * (what the pipeline loads itself): every mapped stream's key and envelope. */
static int fs_load_config_schemas(siphon_sink_t *snk, char *errbuf, size_t errsize)
{
    siphon_mapset_t *ms = NULL;
    snk->loaded = 1;
    if (!snk->mappings_dir || !snk->schemas_dir)
        return 0;
    int rc = siphon_mapset_load(&ms, snk->mappings_dir, snk->schemas_dir, errbuf, errsize);
    for (int i = 0; rc == 0 && i < siphon_mapset_count(ms); i++) {
        siphon_avro_stream_t *st = siphon_mapping_stream(siphon_mapset_get(ms, i));
        rc = fs_register(snk, NULL, siphon_avro_stream_key_fingerprint(st),
                         siphon_avro_stream_key_schema_json(st),
                         siphon_avro_stream_value_fingerprint(st),
                         siphon_avro_stream_value_schema_json(st), errbuf, errsize);
    }
    siphon_mapset_destroy(ms);
    return rc;
}

/* ---- streams and their files ---- */

static int topic_ok(const char *t)
{
    if (!t || !*t || t[0] == '.' || strlen(t) > 200)
        return 0;
    for (const char *p = t; *p; p++)
        if (*p == '/' || (unsigned char)*p < 0x20)
            return 0;
    return 1;
}

/* The sequence number of a file name of this topic, or 0 when it is not one. */
static unsigned long long seq_of(const char *name, const char *topic)
{
    size_t tl = strlen(topic);
    if (strncmp(name, topic, tl) != 0 || name[tl] != '-')
        return 0;
    const char *d = name + tl + 1;
    char *end;
    if (*d < '0' || *d > '9')
        return 0;
    unsigned long long s = strtoull(d, &end, 10);
    if (strncmp(end, SIPHON_FILE_SUFFIX, strlen(SIPHON_FILE_SUFFIX)) != 0)
        return 0;
    return s;
}

static void fs_stream_free(fs_stream_t *st)
{
    if (!st)
        return;
    free(st->topic);
    free(st->dir);
    free(st->tmp_path);
    free(st->final_path);
    free(st->pending);
    free(st);
}

static int fs_stream_get(siphon_sink_t *snk, const char *topic, fs_stream_t **out, char *errbuf,
                         size_t errsize)
{
    for (int i = 0; i < snk->nstreams; i++)
        if (strcmp(snk->streams[i]->topic, topic) == 0) {
            *out = snk->streams[i];
            return 0;
        }
    if (!topic_ok(topic))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not write topic '%s' to files: a topic name must not be empty, "
                          "start with '.' or contain '/'", topic ? topic : "");
    fs_stream_t *st = calloc(1, sizeof(*st));
    fs_stream_t **v = realloc(snk->streams, (size_t)(snk->nstreams + 1) * sizeof(*v));
    if (!st || !v) {
        free(st);
        if (v)
            snk->streams = v;
        return SIPHON_ENOMEM;
    }
    snk->streams = v;
    st->fd = -1;
    st->block_size = FS_BLOCK_SIZE;
    size_t n = strlen(snk->root) + strlen(topic) + 2;
    st->topic = strdup(topic);
    st->dir = malloc(n);
    if (!st->topic || !st->dir) {
        fs_stream_free(st);
        return SIPHON_ENOMEM;
    }
    snprintf(st->dir, n, "%s/%s", snk->root, topic);
    struct stat sb;
    int created = stat(st->dir, &sb) != 0;
    if (created && mkdir(st->dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        fs_stream_free(st);
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not create folder %s/%s: %s",
                          snk->root, topic, strerror(e));
    }
    if (created && siphon_file__fsync_dir(snk->root) < 0) {
        int e = errno;
        fs_stream_free(st);
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync folder %s: %s",
                          snk->root, strerror(e));
    }
    /* continue the numbering after every file already there */
    DIR *d = opendir(st->dir);
    if (!d) {
        int e = errno;
        fs_stream_free(st);
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not open folder %s/%s: %s",
                          snk->root, topic, strerror(e));
    }
    struct dirent *de;
    unsigned long long max = 0;
    while ((de = readdir(d)) != NULL) {
        unsigned long long s = seq_of(de->d_name, topic);
        if (s > max)
            max = s;
    }
    closedir(d);
    st->next_seq = max + 1;
    snk->streams[snk->nstreams++] = st;
    *out = st;
    return 0;
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016" PRIx64, v);
}

/* Create the next file of st for schema sch: header written and fsynced, folder fsynced, avro-c
 * writer opened for append. On error nothing stays open (a created file is removed). */
static int fs_file_open(siphon_sink_t *snk, fs_stream_t *st, fs_schema_t *sch, char *errbuf,
                        size_t errsize)
{
    siphon_buf_t hdr = {0};
    char name[600], kfp[17], vfp[17];
    int rc, created = 0;

    if (!sch->file_json &&
        (rc = siphon_file__record_schema(&sch->file_json, sch->key_json, sch->value_json, errbuf,
                                         errsize)) < 0)
        return rc;
    unsigned long long seq = st->next_seq++;
    snprintf(name, sizeof(name), "%s-%010llu", st->topic, seq);
    size_t n = strlen(st->dir) + strlen(name) + 16;
    free(st->tmp_path);
    free(st->final_path);
    st->tmp_path = malloc(n);
    st->final_path = malloc(n);
    if (!st->tmp_path || !st->final_path)
        return SIPHON_ENOMEM;
    snprintf(st->tmp_path, n, "%s/%s%s", st->dir, name, SIPHON_FILE_TMP_SUFFIX);
    snprintf(st->final_path, n, "%s/%s%s", st->dir, name, SIPHON_FILE_SUFFIX);

    if (getrandom(st->sync, sizeof(st->sync), 0) != (ssize_t)sizeof(st->sync)) {
        /* no entropy source: still unique enough to tell blocks apart */
        uint64_t x = (uint64_t)siphon_clock_now_ms() ^ ((uint64_t)getpid() << 32) ^ seq;
        for (size_t i = 0; i < sizeof(st->sync); i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            st->sync[i] = (uint8_t)(x >> 56);
        }
    }
    hex64(kfp, sch->key_fp);
    hex64(vfp, sch->value_fp);
    const char *extra[] = {SIPHON_FILE_META_TOPIC, st->topic,
                           SIPHON_FILE_META_KEY_SCHEMA, sch->key_json,
                           SIPHON_FILE_META_VALUE_SCHEMA, sch->value_json,
                           SIPHON_FILE_META_KEY_FP, kfp,
                           SIPHON_FILE_META_VALUE_FP, vfp,
                           SIPHON_FILE_META_CONNECTOR, snk->connector ? snk->connector : "",
                           SIPHON_FILE_META_VERSION, SIPHON_VERSION,
                           NULL, NULL};
    if (siphon_file__header_build(&hdr, sch->file_json, snk->codec, extra, st->sync) < 0) {
        rc = SIPHON_ENOMEM;
        goto err;
    }
    st->fd = open(st->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (st->fd < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not create %s: %s", st->tmp_path,
                        strerror(errno));
        goto err;
    }
    created = 1;
    if ((rc = write_all(st->fd, hdr.data, hdr.len)) < 0 || fsync(st->fd) != 0 ||
        siphon_file__fsync_dir(st->dir) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not write %s: %s", st->tmp_path,
                        strerror(rc < 0 ? -rc : errno));
        goto err;
    }
    if (avro_file_writer_open_bs(st->tmp_path, &st->w, st->block_size) != 0) {
        st->w = NULL;
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s with avro-c: %s",
                        st->tmp_path, avro_strerror());
        goto err;
    }
    st->sch = sch;
    st->bytes = 0;
    st->records = 0;
    st->synced_size = (long long)hdr.len;
    st->opened_ms = siphon_clock_now_ms();
    st->dirty = 0;
    siphon_buf_free(&hdr);
    siphon_log(SIPHON_LOG_DEBUG, "file", "writing %s", st->tmp_path);
    return 0;
err:
    siphon_buf_free(&hdr);
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    if (created)
        unlink(st->tmp_path);
    return rc;
}

/* After avro-c flushed: fsync our descriptor and check the file ends with a complete block
 * (its sync marker) past where the last sync left it. 0, or -1 with snk failed. */
static int fs_file_durable(siphon_sink_t *snk, fs_stream_t *st)
{
    struct stat sb;
    uint8_t end[SIPHON_FILE_SYNC_LEN];
    if (fsync(st->fd) != 0) {
        fs_fail(snk, "could not fsync %s: %s", st->tmp_path, strerror(errno));
        return -1;
    }
    if (fstat(st->fd, &sb) != 0 || sb.st_size < st->synced_size + (long long)sizeof(end) ||
        pread(st->fd, end, sizeof(end), sb.st_size - (off_t)sizeof(end)) != (ssize_t)sizeof(end) ||
        memcmp(end, st->sync, sizeof(end)) != 0) {
        fs_fail(snk, "could not write %s: the file does not end with a complete block after "
                     "flushing (disk full?)", st->tmp_path);
        return -1;
    }
    st->synced_size = (long long)sb.st_size;
    return 0;
}

static int fs_ready_pending(siphon_sink_t *snk, fs_stream_t *st)
{
    for (long i = 0; i < st->npending; i++)
        if (push(&snk->ready, &snk->nready, &snk->rcap, st->pending[i]) < 0) {
            fs_fail(snk, "could not report deliveries: out of memory");
            return -1;
        }
    snk->npending -= st->npending;
    st->npending = 0;
    return 0;
}

/* Flush + fsync the open file of st when it has unsynced events; its events become ready. */
static int fs_file_sync(siphon_sink_t *snk, fs_stream_t *st)
{
    if (!st->w || !st->dirty)
        return 0;
    if (avro_file_writer_flush(st->w) != 0) {
        fs_fail(snk, "could not write %s: %s", st->tmp_path, avro_strerror());
        return -1;
    }
    if (fs_file_durable(snk, st) < 0)
        return -1;
    st->dirty = 0;
    return fs_ready_pending(snk, st);
}

/* Close the open file of st: flush, fsync, rename to .avro, fsync the folder. */
static int fs_file_close(siphon_sink_t *snk, fs_stream_t *st)
{
    if (!st->w)
        return 0;
    int rc = avro_file_writer_close(st->w);
    st->w = NULL;
    if (rc != 0) {
        fs_fail(snk, "could not write %s: %s", st->tmp_path, avro_strerror());
        goto out;
    }
    if (st->dirty && (rc = fs_file_durable(snk, st)) < 0)
        goto out;
    st->dirty = 0;
    if ((rc = fs_ready_pending(snk, st)) < 0)
        goto out;
    if (st->records == 0) {
        unlink(st->tmp_path);
    } else if (rename(st->tmp_path, st->final_path) != 0 ||
               siphon_file__fsync_dir(st->dir) < 0) {
        /* the events are safe in the .tmp (recovered at the next start) */
        fs_fail(snk, "could not rename %s to %s: %s", st->tmp_path, st->final_path,
                strerror(errno));
        rc = -1;
        goto out;
    } else {
        siphon_log(SIPHON_LOG_DEBUG, "file", "closed %s (%lld events)", st->final_path,
                   st->records);
    }
out:
    close(st->fd);
    st->fd = -1;
    return rc < 0 ? -1 : 0;
}

static int fs_sync_all(siphon_sink_t *snk)
{
    int rc = 0;
    for (int i = 0; i < snk->nstreams && !snk->failed; i++)
        if (fs_file_sync(snk, snk->streams[i]) < 0)
            rc = -1;
    if (snk->npending == 0)
        snk->first_pending_ms = 0;
    return snk->failed ? -1 : rc;
}

/* Append one record (already in snk->rec); grows the block when the record does not fit. */
static int fs_append(siphon_sink_t *snk, fs_stream_t *st, char *errbuf, size_t errsize)
{
    if (avro_file_writer_append_encoded(st->w, snk->rec.data, (int64_t)snk->rec.len) == 0)
        return 0;
    /* larger than a block: write what is buffered, reopen with a block that holds it */
    if (avro_file_writer_close(st->w) != 0) {
        st->w = NULL;
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not write %s: %s", st->tmp_path,
                          avro_strerror());
    }
    st->w = NULL;
    while (st->block_size < snk->rec.len + 1024)
        st->block_size *= 2;
    if (avro_file_writer_open_bs(st->tmp_path, &st->w, st->block_size) != 0 ||
        avro_file_writer_append_encoded(st->w, snk->rec.data, (int64_t)snk->rec.len) != 0)
        return siphon_err(errbuf, errsize, SIPHON_EIO,
                          "could not append an event of %zu bytes to %s: %s", snk->rec.len,
                          st->tmp_path, avro_strerror());
    return 0;
}

static int soe_fingerprint(const void *p, size_t len, uint64_t *fp)
{
    const uint8_t *b = p;
    if (!b || len < SIPHON_AVRO_SOE_HEADER_LEN || b[0] != 0xC3 || b[1] != 0x01)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[2 + i] << (8 * i);
    *fp = v;
    return 0;
}

/* ---- the sink operations ---- */

static int fs_options(siphon_sink_t *snk, const siphon_config_t *cfg, char *errbuf,
                      size_t errsize)
{
    snprintf(snk->codec, sizeof(snk->codec), "null");
    snk->sync_ms = FS_DEFAULT_SYNC_MS;
    snk->sync_records = FS_DEFAULT_SYNC_RECORDS;
    for (int i = 0; i < cfg->sink.nprops; i++) {
        const char *k = cfg->sink.props[i].key, *v = cfg->sink.props[i].value;
        char *end = NULL;
        long n = 0;
        if (strcmp(k, "codec") == 0) {
            if (strcmp(v, "null") && strcmp(v, "deflate") && strcmp(v, "snappy") &&
                strcmp(v, "lzma"))
                return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                  "%s: sink.properties.codec is '%s' (expected null, deflate, "
                                  "snappy or lzma)", cfg->path ? cfg->path : "config", v);
            snprintf(snk->codec, sizeof(snk->codec), "%s", v);
            continue;
        }
        if (strcmp(k, "sync.interval.ms") == 0 || strcmp(k, "sync.records") == 0) {
            errno = 0;
            n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < (k[5] == 'i' ? 0 : 1) || n > 100000000)
                return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                                  "%s: sink.properties.%s is '%s' (expected a whole number%s)",
                                  cfg->path ? cfg->path : "config", k, v,
                                  k[5] == 'i' ? " of milliseconds, e.g. 100" : " >= 1, e.g. 50000");
            if (k[5] == 'i')
                snk->sync_ms = (int)n;
            else
                snk->sync_records = n;
            continue;
        }
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s: unknown key '%s' in sink.properties for sink type file (expected "
                          "codec, sync.interval.ms or sync.records)",
                          cfg->path ? cfg->path : "config", k);
    }
    return 0;
}

static void fs_close(siphon_sink_t *snk);

static int fs_open(siphon_sink_t **out, const siphon_config_t *cfg, siphon_sink_delivery_cb cb,
                   void *cb_opaque, char *errbuf, size_t errsize)
{
    int rc;
    *out = NULL;
    if (!cfg || !cb)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "could not open the file sink: %s",
                          cfg ? "no delivery callback" : "no config");
    if (!cfg->sink.path || !*cfg->sink.path)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "%s: sink type file needs sink.path (the folder to write Avro container "
                          "files to)", cfg->path ? cfg->path : "config");
    siphon_sink_t *snk = calloc(1, sizeof(*snk));
    if (!snk)
        return SIPHON_ENOMEM;
    snk->lockfd = -1;
    snk->cb = cb;
    snk->cb_opaque = cb_opaque;
    snk->roll_bytes = cfg->sink.roll_bytes > 0 ? cfg->sink.roll_bytes : 64LL << 20;
    snk->roll_ms = cfg->sink.roll_ms > 0 ? cfg->sink.roll_ms : 60000;
    if ((rc = fs_options(snk, cfg, errbuf, errsize)) < 0)
        goto err;
    snk->root = strdup(cfg->sink.path);
    snk->connector = cfg->name ? strdup(cfg->name) : NULL;
    snk->mappings_dir = cfg->mappings_dir ? strdup(cfg->mappings_dir) : NULL;
    snk->schemas_dir = cfg->schemas_dir ? strdup(cfg->schemas_dir) : NULL;
    if (!snk->root || (cfg->name && !snk->connector) ||
        (cfg->mappings_dir && !snk->mappings_dir) || (cfg->schemas_dir && !snk->schemas_dir)) {
        rc = SIPHON_ENOMEM;
        goto err;
    }
    size_t rl = strlen(snk->root);
    while (rl > 1 && snk->root[rl - 1] == '/')
        snk->root[--rl] = '\0';
    if ((rc = mkdir_p(snk->root)) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                        "could not create folder %s (sink.path): %s", snk->root, strerror(-rc));
        goto err;
    }
    char lock[4200];
    snprintf(lock, sizeof(lock), "%s/%s", snk->root, SIPHON_FILE_LOCK);
    snk->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (snk->lockfd < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s: %s", lock,
                        strerror(errno));
        goto err;
    }
    if (flock(snk->lockfd, LOCK_EX | LOCK_NB) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not lock %s: %s (another siphon process is writing to %s; give "
                        "each connector its own sink.path)", lock,
                        errno == EWOULDBLOCK ? "it is locked" : strerror(errno), snk->root);
        goto err;
    }
    int recovered = 0, removed = 0;
    if ((rc = siphon_file__recover(snk->root, &recovered, &removed, errbuf, errsize)) < 0)
        goto err;
    if (recovered || removed)
        siphon_log(SIPHON_LOG_NOTICE, "file",
                   "%d file(s) left by an earlier run recovered, %d removed, under %s",
                   recovered, removed, snk->root);
    siphon_log(SIPHON_LOG_INFO, "file",
               "writing Avro container files under %s (codec %s, new file past %lld bytes or "
               "%d ms, fsync at most every %d ms)", snk->root, snk->codec, snk->roll_bytes,
               snk->roll_ms, snk->sync_ms);
    *out = snk;
    return 0;
err:
    fs_close(snk);
    return rc;
}

static int fs_produce(siphon_sink_t *snk, const siphon_sink_msg_t *msg, char *errbuf,
                      size_t errsize)
{
    uint64_t kfp = 0, vfp = 0;
    fs_stream_t *st = NULL;
    int rc;
    if (snk->failed)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "%s", snk->fail_msg);
    if (!msg->value) {
        /* a tombstone: nothing to write, delivered as soon as it is reported */
        return push(&snk->ready, &snk->nready, &snk->rcap, msg->opaque);
    }
    int bad_value = soe_fingerprint(msg->value, msg->vlen, &vfp) < 0;
    if (bad_value || (msg->key && soe_fingerprint(msg->key, msg->klen, &kfp) < 0))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not write an event of topic %s to a file: its %s is not Avro "
                          "single-object encoded", msg->topic, bad_value ? "value" : "key");
    fs_schema_t *sch = fs_schema_find(snk, msg->key != NULL, kfp, vfp);
    if (!sch && !snk->loaded) {
        if ((rc = fs_load_config_schemas(snk, errbuf, errsize)) < 0)
            return rc;
        sch = fs_schema_find(snk, msg->key != NULL, kfp, vfp);
    }
    if (!sch)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not write an event of topic %s to a file: no schema is known for "
                          "its fingerprints (key %016" PRIx64 ", value %016" PRIx64 ")",
                          msg->topic, kfp, vfp);
    if ((rc = fs_stream_get(snk, msg->topic, &st, errbuf, errsize)) < 0)
        return rc;

    /* one schema per file; a file is also closed when it is old enough */
    if (st->w && (st->sch != sch || siphon_clock_now_ms() - st->opened_ms >= snk->roll_ms) &&
        fs_file_close(snk, st) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "%s", snk->fail_msg);
    if (!st->w && (rc = fs_file_open(snk, st, sch, errbuf, errsize)) < 0)
        return rc;

    /* the record: key union branch, key body, envelope body */
    siphon_buf_reset(&snk->rec);
    size_t need = 1 + msg->vlen + msg->klen;
    if (siphon_buf_reserve(&snk->rec, need) < 0 ||
        siphon_buf_appendc(&snk->rec, msg->key ? 2 : 0) < 0 ||
        (msg->key && siphon_buf_append(&snk->rec, (const uint8_t *)msg->key + SIPHON_AVRO_SOE_HEADER_LEN,
                                       msg->klen - SIPHON_AVRO_SOE_HEADER_LEN) < 0) ||
        siphon_buf_append(&snk->rec, (const uint8_t *)msg->value + SIPHON_AVRO_SOE_HEADER_LEN,
                          msg->vlen - SIPHON_AVRO_SOE_HEADER_LEN) < 0)
        return SIPHON_ENOMEM;
    if (push(&st->pending, &st->npending, &st->cap, msg->opaque) < 0)
        return SIPHON_ENOMEM;
    if ((rc = fs_append(snk, st, errbuf, errsize)) < 0) {
        st->npending--; /* not queued: the caller stops on this error */
        fs_fail(snk, "%s", errbuf);
        return rc;
    }
    st->dirty = 1;
    st->bytes += (long long)snk->rec.len;
    st->records++;
    if (snk->npending++ == 0)
        snk->first_pending_ms = siphon_clock_now_ms();

    if (st->bytes >= snk->roll_bytes && fs_file_close(snk, st) < 0)
        return 0; /* the pending events were failed through the callback */
    if (snk->npending >= snk->sync_records)
        fs_sync_all(snk);
    return 0;
}

/* Sync when due, close files past roll_ms. */
static void fs_maintain(siphon_sink_t *snk, int force_sync)
{
    if (snk->failed)
        return;
    int64_t t = siphon_clock_now_ms();
    if (snk->npending > 0 &&
        (force_sync || t - snk->first_pending_ms >= snk->sync_ms ||
         snk->npending >= snk->sync_records))
        fs_sync_all(snk);
    for (int i = 0; i < snk->nstreams && !snk->failed; i++) {
        fs_stream_t *st = snk->streams[i];
        if (st->w && t - st->opened_ms >= snk->roll_ms)
            fs_file_close(snk, st);
    }
}

static int fs_report(siphon_sink_t *snk)
{
    long n = snk->nready;
    snk->nready = 0;
    for (long i = 0; i < n; i++)
        snk->cb(snk->ready[i], 0, NULL, snk->cb_opaque);
    return (int)n;
}

static int fs_poll(siphon_sink_t *snk, int timeout_ms)
{
    if (snk->npending > 0 && snk->nready == 0 && timeout_ms > 0) {
        /* wait for the next sync, as a producer waits for its next delivery report */
        int64_t wait = snk->first_pending_ms + snk->sync_ms - siphon_clock_now_ms();
        if (wait > 0)
            sleep_ms(wait < timeout_ms ? wait : timeout_ms);
    }
    fs_maintain(snk, 0);
    return fs_report(snk);
}

static int fs_flush(siphon_sink_t *snk, int timeout_ms)
{
    fs_maintain(snk, 1);
    fs_report(snk);
    return snk->npending || snk->nready ? SIPHON_ETIMEDOUT : 0;
}

static long fs_inflight(siphon_sink_t *snk) { return snk->npending + snk->nready; }

static void fs_close(siphon_sink_t *snk)
{
    if (!snk)
        return;
    /* Nothing is reported from here (close does not flush): events not yet reported are read
     * from the source again after a restart. Files are still closed complete. */
    for (int i = 0; i < snk->nstreams; i++)
        snk->streams[i]->npending = 0;
    snk->npending = 0;
    for (int i = 0; i < snk->nstreams; i++) {
        fs_stream_t *st = snk->streams[i];
        if (st->w && !snk->failed) {
            fs_file_close(snk, st);
        } else if (st->w) {
            avro_file_writer_close(st->w); /* the .tmp is recovered at the next start */
            st->w = NULL;
        }
        if (st->fd >= 0)
            close(st->fd);
        fs_stream_free(st);
    }
    free(snk->streams);
    for (int i = 0; i < snk->nschemas; i++) {
        free(snk->schemas[i].key_json);
        free(snk->schemas[i].value_json);
        free(snk->schemas[i].file_json);
        free(snk->schemas[i].topic);
    }
    free(snk->schemas);
    free(snk->ready);
    siphon_buf_free(&snk->rec);
    if (snk->lockfd >= 0)
        close(snk->lockfd); /* releases the lock */
    free(snk->root);
    free(snk->connector);
    free(snk->mappings_dir);
    free(snk->schemas_dir);
    free(snk);
}

const siphon_sink_ops_t siphon_file_sink = {
    .type = "file",
    .wants_json = 0,
    .open = fs_open,
    .register_schemas = fs_register,
    .produce = fs_produce,
    .poll = fs_poll,
    .flush = fs_flush,
    .inflight = fs_inflight,
    .close = fs_close,
};
