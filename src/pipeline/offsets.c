/*
 * offsets.c - the offsets store: the one file that says where a restarted Siphon resumes.
 *
 * Written only with a position the tracker has acknowledged, atomically: the new content goes to
 * "<path>.tmp", is fsynced, renamed over <path>, and the folder is fsynced, so a crash at any
 * instant leaves either the old or the new file, never a torn one.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "pipeline/pipeline.h"

int siphon_offsets_load(char **pos_text, const char *path, const char *connector, char *errbuf,
                        size_t errsize)
{
    *pos_text = NULL;
    if (access(path, F_OK) != 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return siphon_err(errbuf, errsize, SIPHON_EINVAL,
                          "could not read offsets file %s:%d:%d: %s (fix or remove the file; "
                          "removing it resumes from the replication slot's own position)",
                          path, jerr.line, jerr.column, jerr.text);
    int rc = 0;
    const char *name = json_string_value(json_object_get(root, "connector"));
    const char *pos = json_string_value(json_object_get(root, "position"));
    if (!name || !pos) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "offsets file %s lacks \"connector\" or \"position\" (expected the file "
                        "Siphon writes; fix or remove it)", path);
        goto out;
    }
    if (strcmp(name, connector) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EINVAL,
                        "offsets file %s belongs to connector '%s', not '%s' (give each "
                        "connector its own offsets.path)", path, name, connector);
        goto out;
    }
    if (!(*pos_text = strdup(pos)))
        rc = SIPHON_ENOMEM;
out:
    json_decref(root);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int siphon_offsets_store(const char *path, const char *connector, const char *source_type,
                         const char *pos_text, char *errbuf, size_t errsize)
{
    char tmp[4096];
    int fd = -1, rc = 0;
    char *text = NULL;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return siphon_err(errbuf, errsize, SIPHON_EINVAL, "offsets path too long: %s", path);

    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *root = json_pack("{s:i,s:s,s:s,s:s,s:s}", "version", 1, "connector", connector,
                             "source_type", source_type, "position", pos_text, "updated_at", when);
    if (!root || !(text = json_dumps(root, JSON_INDENT(2)))) {
        rc = SIPHON_ENOMEM;
        goto out;
    }
    size_t len = strlen(text);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO,
                        "could not create offsets file %s: %s (check the folder exists and is "
                        "writable)", tmp, strerror(errno));
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not write offsets file %s: %s",
                            tmp, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync offsets file %s: %s", tmp,
                        strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not rename %s to %s: %s", tmp, path,
                        strerror(errno));
        goto out;
    }
    if (fsync_dir_of(path) != 0) {
        rc = siphon_err(errbuf, errsize, SIPHON_EIO, "could not fsync the folder of %s: %s", path,
                        strerror(errno));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    free(text);
    json_decref(root);
    return rc;
}
