/*
 * config_int.h - private declarations of the config module: the interpolation engine behind
 * siphon_config_interpolate(), with what the loader needs to point at the exact column of a
 * failing ${...} reference and to resolve ${file:relative} against the config file's folder.
 */
#ifndef SIPHON_CONFIG_INT_H
#define SIPHON_CONFIG_INT_H

#include <stddef.h>

/* Largest file ${file:...} reads, so a mistaken path (a disk image, /dev/zero) fails clearly. */
#define SIPHON_CONFIG_FILE_MAX (1024 * 1024)

/* Interpolate `len` bytes of `in` (see siphon_config_interpolate()). A relative ${file:path} is
 * read from `basedir` (NULL: the current directory). On error returns SIPHON_EINVAL (or
 * SIPHON_ENOMEM), *out is NULL, *erroff (when not NULL) is the byte offset in `in` of the "${"
 * that failed, and errbuf holds the reason without any position, ending in "(expected ...)".
 * The message names the variable or the file, never a value. Caller frees *out with free(). */
int siphon_config__interpolate(char **out, const char *in, size_t len, const char *basedir,
                               size_t *erroff, char *errbuf, size_t errsize);

/* "siphon_" + name with every byte that is not an ASCII letter or digit replaced by '_',
 * lower-cased, cut to 63 bytes (the longest Postgres identifier). Caller frees with free();
 * NULL when out of memory. */
char *siphon_config__default_slot(const char *name);

/* Join `rel` to `basedir` unless it is absolute (or basedir is NULL). Caller frees; NULL when
 * out of memory. */
char *siphon_config__resolve(const char *basedir, const char *rel);

#endif
