/*
 * odbc_keys.c - the keys Siphon has seen: per table, every key with the content hash of the
 * row last emitted for it. It is what tells an update from an insert, suppresses rows read again
 * in the re-read window, and what reconciliation compares the table's key set against to find
 * deletes.
 *
 * In memory: an open-addressing hash map (entry indexes in a power-of-two slot array, linear
 * probing) over an array of entries, with the key bytes in one growing buffer. About 32 bytes
 * per key plus the key bytes (an integer key: 9).
 *
 * On disk (state folder, layout in odbc_int.h): keys.base + keys.journal, written ahead. The
 * source writes a poll's key changes as an intent frame and fsyncs it before the poll's events
 * leave the connector, and appends an acknowledgement frame when the pipeline acknowledges the
 * poll. A crash at any instant leaves a journal that names every key whose event may have been
 * delivered: acknowledged intents are facts, later ones "maybe" (see odbc_int.h for how they
 * load). Compaction rewrites the base (temp file, fsync, rename, fsync of the folder) when
 * every intent is acknowledged, then starts a new journal generation that holds only the last
 * acknowledgement, so poll numbers keep growing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/odbc/odbc_int.h"
#include "core/error.h"

/* ---- the in-memory map ---- */

static int key_eq(const odbc_keys_t *ks, const odbc_kent_t *e, const uint8_t *key, size_t klen,
                  uint64_t khash)
{
    return e->khash == khash && e->klen == klen &&
           memcmp(ks->kbytes.data + e->koff, key, klen) == 0;
}

/* The slot of key (live or dead entry), or the empty slot where it would go. */
static size_t probe(const odbc_keys_t *ks, const uint8_t *key, size_t klen, uint64_t khash)
{
    size_t mask = ks->nslots - 1, i = (size_t)khash & mask;
    while (ks->slots[i] && !key_eq(ks, &ks->ents[ks->slots[i] - 1], key, klen, khash))
        i = (i + 1) & mask;
    return i;
}

static int grow_slots(odbc_keys_t *ks, size_t want)
{
    size_t n = ks->nslots ? ks->nslots : 1024;
    while (n < want * 2)
        n *= 2;
    uint32_t *slots = calloc(n, sizeof(uint32_t));
    if (!slots)
        return SIPHON_ENOMEM;
    free(ks->slots);
    ks->slots = slots;
    ks->nslots = n;
    for (size_t e = 0; e < ks->nents; e++) {
        size_t i = (size_t)ks->ents[e].khash & (n - 1);
        while (slots[i])
            i = (i + 1) & (n - 1);
        slots[i] = (uint32_t)(e + 1);
    }
    return 0;
}

long siphon_odbc__keys_find(const odbc_keys_t *ks, const uint8_t *key, size_t klen,
                            uint64_t khash)
{
    if (!ks->nslots)
        return -1;
    size_t i = probe(ks, key, klen, khash);
    if (!ks->slots[i] || !ks->ents[ks->slots[i] - 1].live)
        return -1;
    return (long)ks->slots[i] - 1;
}

long siphon_odbc__keys_put(odbc_keys_t *ks, const uint8_t *key, size_t klen, uint64_t khash,
                           uint64_t chash)
{
    if ((ks->nents + 1) * 10 >= ks->nslots * 7 && grow_slots(ks, ks->nents + 1) < 0)
        return SIPHON_ENOMEM;
    size_t i = probe(ks, key, klen, khash);
    if (ks->slots[i]) {
        odbc_kent_t *e = &ks->ents[ks->slots[i] - 1];
        if (e->live == ODBC_KEY_DEAD)
            ks->live++;
        e->live = ODBC_KEY_SENT;
        e->chash = chash;
        return (long)ks->slots[i] - 1;
    }
    if (ks->kbytes.len + klen > UINT32_MAX || ks->nents >= UINT32_MAX - 1)
        return SIPHON_EINVAL;
    if (ks->nents == ks->capents) {
        size_t cap = ks->capents ? ks->capents * 2 : 1024;
        odbc_kent_t *ents = realloc(ks->ents, cap * sizeof(*ents));
        if (!ents)
            return SIPHON_ENOMEM;
        ks->ents = ents;
        ks->capents = cap;
    }
    size_t off = ks->kbytes.len;
    if (siphon_buf_append(&ks->kbytes, key, klen) < 0)
        return SIPHON_ENOMEM;
    ks->ents[ks->nents] =
        (odbc_kent_t){khash, chash, (uint32_t)off, (uint32_t)klen, 0, ODBC_KEY_SENT};
    ks->slots[i] = (uint32_t)(++ks->nents);
    ks->live++;
    return (long)ks->nents - 1;
}

void siphon_odbc__keys_del(odbc_keys_t *ks, const uint8_t *key, size_t klen, uint64_t khash)
{
    long e = siphon_odbc__keys_find(ks, key, klen, khash);
    if (e >= 0) {
        ks->ents[e].live = 0;
        ks->live--;
    }
}

int siphon_odbc__keys_rebuild(odbc_keys_t *ks)
{
    odbc_keys_t nk = {0};
    for (size_t e = 0; e < ks->nents; e++) {
        const odbc_kent_t *old = &ks->ents[e];
        if (!old->live)
            continue;
        long ne = siphon_odbc__keys_put(&nk, ks->kbytes.data + old->koff, old->klen, old->khash,
                                        old->chash);
        if (ne < 0) {
            siphon_odbc__keys_free(&nk);
            return SIPHON_ENOMEM;
        }
        nk.ents[ne].mark = old->mark;
        nk.ents[ne].live = old->live;
    }
    siphon_odbc__keys_free(ks);
    *ks = nk;
    return 0;
}

void siphon_odbc__keys_free(odbc_keys_t *ks)
{
    if (!ks)
        return;
    free(ks->ents);
    free(ks->slots);
    siphon_buf_free(&ks->kbytes);
    memset(ks, 0, sizeof(*ks));
}

/* ---- records ---- */

static int put_varint(siphon_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return siphon_buf_append(b, tmp, (size_t)n);
}

static int get_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return -1;
        uint8_t c = p[(*i)++];
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int rec_u64(siphon_buf_t *b, int op, uint64_t v)
{
    uint8_t h[8];
    le64(h, v);
    if (siphon_buf_appendc(b, (uint8_t)op) < 0 || siphon_buf_append(b, h, 8) < 0)
        return SIPHON_ENOMEM;
    return 0;
}

static int rec_key(siphon_buf_t *b, int op, const uint8_t *key, size_t klen)
{
    if (siphon_buf_appendc(b, (uint8_t)op) < 0 || put_varint(b, klen) < 0 ||
        siphon_buf_append(b, key, klen) < 0)
        return SIPHON_ENOMEM;
    return 0;
}

int siphon_odbc__rec_table(siphon_buf_t *b, const char *name)
{
    return rec_key(b, ODBC_REC_TABLE, (const uint8_t *)name, strlen(name));
}

int siphon_odbc__rec_put(siphon_buf_t *b, const uint8_t *key, size_t klen, uint64_t chash)
{
    uint8_t h[8];
    le64(h, chash);
    if (rec_key(b, ODBC_REC_PUT, key, klen) < 0 || siphon_buf_append(b, h, 8) < 0)
        return SIPHON_ENOMEM;
    return 0;
}

int siphon_odbc__rec_del(siphon_buf_t *b, const uint8_t *key, size_t klen)
{
    return rec_key(b, ODBC_REC_DEL, key, klen);
}

int siphon_odbc__rec_maybe(siphon_buf_t *b, int op, const uint8_t *key, size_t klen)
{
    return rec_key(b, op, key, klen);
}

int siphon_odbc__rec_recon(siphon_buf_t *b, uint64_t unix_time)
{
    return rec_u64(b, ODBC_REC_RECON, unix_time);
}

/* Walk the records of one frame (its 'S' record already consumed by the caller). */
static int replay(const uint8_t *p, size_t len, int maybe, odbc_store_cb cb, void *opaque)
{
    size_t i = 0;
    const char *table = NULL;
    size_t tlen = 0;
    while (i < len) {
        int op = p[i++];
        uint64_t n = 0;
        int rc = 0;
        switch (op) {
        case ODBC_REC_TABLE:
            if (get_varint(p, len, &i, &n) < 0 || n > len - i)
                return SIPHON_EINVAL;
            table = (const char *)p + i;
            tlen = (size_t)n;
            i += n;
            break;
        case ODBC_REC_PUT:
        case ODBC_REC_DEL:
        case ODBC_REC_MAYBE_NEW:
        case ODBC_REC_MAYBE_CHANGED:
            if (!table || get_varint(p, len, &i, &n) < 0 || n > len - i ||
                (op == ODBC_REC_PUT && len - i - n < 8))
                return SIPHON_EINVAL;
            rc = cb(opaque, table, tlen, op, maybe, p + i, (size_t)n,
                    op == ODBC_REC_PUT ? rd64(p + i + n) : 0);
            i += n + (op == ODBC_REC_PUT ? 8 : 0);
            break;
        case ODBC_REC_RECON:
            if (!table || len - i < 8)
                return SIPHON_EINVAL;
            rc = cb(opaque, table, tlen, op, maybe, NULL, 0, rd64(p + i));
            i += 8;
            break;
        default:
            return SIPHON_EINVAL;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

#define HDR_LEN 16
static const char MAGIC_BASE[8] = {'S', 'I', 'P', 'H', 'O', 'N', 'K', 'B'};
static const char MAGIC_JOURNAL[8] = {'S', 'I', 'P', 'H', 'O', 'N', 'K', 'J'};

/* A file read whole: its generation, and where its whole frames end. */
typedef struct kfile {
    uint8_t *data;
    size_t size;
    uint64_t gen;
    size_t valid; /* bytes of header and whole, checked frames */
} kfile_t;

/* Read a file and check its frames. data NULL (and 0 returned) when the file is missing or
 * shorter than a header (torn while being created). */
static int kfile_read(kfile_t *f, const char *path, const char magic[8], char *errbuf,
                      size_t errsize)
{
    memset(f, 0, sizeof(*f));
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s: %s", path,
                          strerror(errno));
    }
    struct stat stt;
    if (fstat(fd, &stt) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not stat %s: %s", path,
                        strerror(errno));
        goto out;
    }
    size_t size = (size_t)stt.st_size;
    if (size < HDR_LEN)
        goto out;
    if (!(f->data = malloc(size))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    for (size_t got = 0; got < size;) {
        ssize_t r = read(fd, f->data + got, size - got);
        if (r <= 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not read %s: %s", path,
                            r < 0 ? strerror(errno) : "unexpected end of file");
            goto out;
        }
        got += (size_t)r;
    }
    if (memcmp(f->data, magic, 8) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "could not load key set %s: not a Siphon key file (remove the state "
                        "folder to read every table again)", path);
        goto out;
    }
    f->size = size;
    f->gen = rd64(f->data + 8);
    size_t i = HDR_LEN;
    while (size - i >= 8) {
        uint32_t flen = rd32(f->data + i), check = rd32(f->data + i + 4);
        /* torn or corrupt: what follows was never acknowledged, nor its events sent */
        if (flen > size - i - 8 || (uint32_t)siphon_odbc__hash(0, f->data + i + 8, flen) != check)
            break;
        i += 8 + flen;
    }
    f->valid = i;
out:
    close(fd);
    if (rc < 0) {
        free(f->data);
        f->data = NULL;
    }
    return rc;
}

/* The frames of a checked file, one at a time: *p, *n the payload. 0 at the end. */
static int kfile_next(const kfile_t *f, size_t *at, const uint8_t **p, size_t *n)
{
    if (*at < HDR_LEN)
        *at = HDR_LEN;
    if (*at + 8 > f->valid)
        return 0;
    *n = rd32(f->data + *at);
    *p = f->data + *at + 8;
    *at += 8 + *n;
    return 1;
}

static int bad_record(const char *path, size_t at, char *errbuf, size_t errsize)
{
    return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                      "could not load key set %s: malformed record in the frame at offset %zu "
                      "(remove the state folder to read every table again)", path, at);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One frame: header and payload in a single write. */
static int write_frame(int fd, const uint8_t *p, size_t n)
{
    uint8_t *f = malloc(n + 8);
    if (!f || n > UINT32_MAX) {
        free(f);
        return -1;
    }
    le32(f, (uint32_t)n);
    le32(f + 4, (uint32_t)siphon_odbc__hash(0, p, n));
    memcpy(f + 8, p, n);
    int rc = write_all(fd, f, n + 8);
    free(f);
    return rc;
}

/* A journal with its header and one acknowledgement frame, atomically (temp, fsync, rename). */
static int new_journal(const char *path, uint64_t gen, uint64_t acked)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    uint8_t hdr[HDR_LEN];
    memcpy(hdr, MAGIC_JOURNAL, 8);
    le64(hdr + 8, gen);
    siphon_buf_t a = {0};
    int rc = rec_u64(&a, ODBC_REC_ACK, acked) < 0 || write_all(fd, hdr, HDR_LEN) < 0 ||
                     write_frame(fd, a.data, a.len) < 0 || fsync(fd) < 0
                 ? -1
                 : 0;
    siphon_buf_free(&a);
    close(fd);
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int siphon_odbc__store_open(odbc_store_t *st, const char *dir, odbc_store_cb cb, void *opaque,
                            char *errbuf, size_t errsize)
{
    kfile_t base = {0}, jr = {0};
    const uint8_t *p;
    size_t n, at;
    int rc;
    memset(st, 0, sizeof(*st));
    st->jfd = -1;
    if (!(st->dir = strdup(dir)) || !(st->base_path = path_in(dir, "keys.base")) ||
        !(st->journal_path = path_in(dir, "keys.journal")))
        return SIPHON_ENOMEM;
    if (mkdirs(dir) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EIO,
                          "could not create the ODBC state folder %s: %s (set source.state_dir "
                          "to a writable folder)", dir, strerror(errno));
    if ((rc = kfile_read(&base, st->base_path, MAGIC_BASE, errbuf, errsize)) < 0 ||
        (rc = kfile_read(&jr, st->journal_path, MAGIC_JOURNAL, errbuf, errsize)) < 0)
        goto out;

    /* the base: facts, and MAYBE keys carried over by a compaction */
    for (at = 0; base.data && kfile_next(&base, &at, &p, &n);) {
        if ((rc = replay(p, n, 0, cb, opaque)) < 0) {
            if (rc == SIPHON_EINVAL)
                rc = bad_record(st->base_path, at - n - 8, errbuf, errsize);
            goto out;
        }
    }
    st->gen = base.data ? base.gen : 0;
    st->base_bytes = base.data ? base.valid : 0;

    /* the journal of the same generation (an older one was folded into the base) */
    int use = jr.data && jr.gen == st->gen;
    for (at = 0; use && kfile_next(&jr, &at, &p, &n);) {
        if (n >= 9 && (p[0] == ODBC_REC_ACK || p[0] == ODBC_REC_SEQ)) {
            uint64_t seq = rd64(p + 1);
            if (p[0] == ODBC_REC_ACK && seq > st->acked_seq)
                st->acked_seq = seq;
            if (seq > st->last_seq)
                st->last_seq = seq;
        }
    }
    for (at = 0; use && kfile_next(&jr, &at, &p, &n);) {
        if (n < 9 || (p[0] != ODBC_REC_ACK && p[0] != ODBC_REC_SEQ)) {
            rc = bad_record(st->journal_path, at - n - 8, errbuf, errsize);
            goto out;
        }
        if (p[0] == ODBC_REC_ACK)
            continue;
        uint64_t seq = rd64(p + 1);
        if ((rc = replay(p + 9, n - 9, seq > st->acked_seq, cb, opaque)) < 0) {
            if (rc == SIPHON_EINVAL)
                rc = bad_record(st->journal_path, at - n - 8, errbuf, errsize);
            goto out;
        }
    }

    size_t jlen = use ? jr.valid : 0;
    if (!use) {
        if (new_journal(st->journal_path, st->gen, st->last_seq) < 0 || fsync_dir(dir) < 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not create %s: %s",
                            st->journal_path, strerror(errno));
            goto out;
        }
        jlen = HDR_LEN + 8 + 9;
    }
    st->jfd = open(st->journal_path, O_WRONLY | O_CLOEXEC);
    /* a torn frame at the end is cut: new frames go right after the last whole one */
    if (st->jfd < 0 || ftruncate(st->jfd, (off_t)jlen) < 0 ||
        lseek(st->jfd, (off_t)jlen, SEEK_SET) < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not open %s for writing: %s",
                        st->journal_path, strerror(errno));
        goto out;
    }
    st->journal_bytes = jlen;
    rc = 0;
out:
    free(base.data);
    free(jr.data);
    return rc;
}

void siphon_odbc__store_close(odbc_store_t *st)
{
    if (!st)
        return;
    if (st->jfd >= 0)
        close(st->jfd);
    free(st->dir);
    free(st->base_path);
    free(st->journal_path);
    memset(st, 0, sizeof(*st));
    st->jfd = -1;
}

/* Append a frame to the journal (fsynced when sync), or cut it back on failure. */
static int journal_append(odbc_store_t *st, const siphon_buf_t *frame, int sync, char *errbuf,
                          size_t errsize, const char *what)
{
    if (st->jfd < 0 || write_frame(st->jfd, frame->data, frame->len) < 0 ||
        (sync && fdatasync(st->jfd) < 0)) {
        int e = errno;
        if (st->jfd >= 0 && ftruncate(st->jfd, (off_t)st->journal_bytes) == 0)
            lseek(st->jfd, (off_t)st->journal_bytes, SEEK_SET);
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not write %s to %s: %s", what,
                          st->journal_path, strerror(e));
    }
    st->journal_bytes += 8 + frame->len;
    if (sync)
        st->fsyncs++;
    return 0;
}

int siphon_odbc__store_intent(odbc_store_t *st, uint64_t seq, const siphon_buf_t *recs,
                              char *errbuf, size_t errsize)
{
    siphon_buf_t f = {0};
    int rc = rec_u64(&f, ODBC_REC_SEQ, seq);
    if (rc == 0 && recs->len && siphon_buf_append(&f, recs->data, recs->len) < 0)
        rc = SIPHON_ENOMEM;
    if (rc == 0)
        rc = journal_append(st, &f, 1, errbuf, errsize, "the key changes of a poll");
    if (rc == 0 && seq > st->last_seq)
        st->last_seq = seq;
    siphon_buf_free(&f);
    return rc;
}

int siphon_odbc__store_ack(odbc_store_t *st, uint64_t seq, char *errbuf, size_t errsize)
{
    if (seq <= st->acked_seq)
        return 0;
    siphon_buf_t f = {0};
    int rc = rec_u64(&f, ODBC_REC_ACK, seq);
    if (rc == 0)
        rc = journal_append(st, &f, 0, errbuf, errsize, "an acknowledgement");
    if (rc == 0) {
        st->acked_seq = seq;
        if (seq > st->last_seq)
            st->last_seq = seq;
    }
    siphon_buf_free(&f);
    return rc;
}

int siphon_odbc__store_idle(const odbc_store_t *st)
{
    return st->acked_seq >= st->last_seq;
}

int siphon_odbc__store_compact_begin(odbc_store_t *st, int *fd, char *errbuf, size_t errsize)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", st->base_path);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint8_t hdr[HDR_LEN];
    memcpy(hdr, MAGIC_BASE, 8);
    le64(hdr + 8, st->gen + 1);
    if (*fd < 0 || write_all(*fd, hdr, HDR_LEN) < 0) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not write %s: %s", tmp,
                          strerror(errno));
    }
    return 0;
}

int siphon_odbc__store_compact_frame(int fd, const siphon_buf_t *recs)
{
    if (!recs->len)
        return 0;
    return write_frame(fd, recs->data, recs->len) < 0 ? SIPHON_EIO : 0;
}

int siphon_odbc__store_compact_end(odbc_store_t *st, int fd, int ok, char *errbuf,
                                   size_t errsize)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", st->base_path);
    struct stat stt;
    if (ok && (fsync(fd) < 0 || fstat(fd, &stt) < 0))
        ok = 0;
    close(fd);
    if (!ok || rename(tmp, st->base_path) < 0 || fsync_dir(st->dir) < 0) {
        int e = errno;
        unlink(tmp);
        return siphon_err(errbuf, errsize, SIPHON_EIO,
                          "could not rewrite the key set %s: %s (the old one stays in use)",
                          st->base_path, strerror(e));
    }
    /* The new base holds everything: a crash from here on ignores the old journal (older
     * generation) until the new one exists. */
    st->gen++;
    st->base_bytes = (uint64_t)stt.st_size;
    if (st->jfd >= 0)
        close(st->jfd);
    st->jfd = -1;
    if (new_journal(st->journal_path, st->gen, st->last_seq) < 0 || fsync_dir(st->dir) < 0 ||
        (st->jfd = open(st->journal_path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
        return siphon_err(errbuf, errsize, SIPHON_EIO, "could not start a new journal %s: %s",
                          st->journal_path, strerror(errno));
    st->journal_bytes = HDR_LEN + 8 + 9;
    st->acked_seq = st->last_seq;
    return 0;
}
