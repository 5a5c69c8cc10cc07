/*
 * yamlx.h - what the two YAML readers (the config file, config/config.c, and the mapping files,
 * mapping/mapping_load.c) share on top of libyaml's document API: what a node reads as, and the
 * check of a mapping node's keys against the keys a section accepts (unknown keys with a
 * "did you mean" hint, duplicates, keys that are not scalars, missing required keys).
 *
 * Messages are returned, not formatted into a file:line: each reader puts the mark in front in
 * its own way (siphon_yamlx_err_t carries the node's mark and the text).
 */
#ifndef SIPHON_YAMLX_H
#define SIPHON_YAMLX_H

#include <stddef.h>

#include <yaml.h>

/* The most keys one section may accept. */
#define SIPHON_YAMLX_MAX_KEYS 32

/* A key a section accepts. `required` is NULL for an optional key, else what to write (shown
 * in the message when it is missing: "missing required key 'table' in source (expected
 * table: <schema.table>)"). */
typedef struct siphon_yamlx_key {
    const char *key;
    const char *required;
} siphon_yamlx_key_t;

/* Where a check failed and why (the message has no position in it). */
typedef struct siphon_yamlx_err {
    yaml_mark_t mark;
    char msg[1024];
} siphon_yamlx_err_t;

/* 1 for a plain scalar YAML reads as null: `key:`, `key: ~`, `key: null` (Null, NULL). */
int siphon_yamlx_is_null(const yaml_node_t *n);

/* What a node is, for "found ..." in messages: "nothing", "a string", "a quoted string",
 * "a list", "a mapping". A static string. */
const char *siphon_yamlx_kind(const yaml_node_t *n);

/* Levenshtein distance of two short strings (99 when either is longer than 63 bytes). */
size_t siphon_yamlx_distance(const char *a, const char *b);

/* Check every key of mapping node `map` of doc against keys[0..nkeys) (nkeys at most
 * SIPHON_YAMLX_MAX_KEYS). vals[i] receives the value node of keys[i] or NULL; knodes (may be
 * NULL) the key node. `where` completes the messages ("in source", "at the top level").
 * Returns 0, or -1 with *err filled: a key that is not a scalar, an unknown key (with the
 * nearest accepted one when it is 1-2 edits away), a duplicate key (naming the line of the
 * first), then a missing required key (at the mapping's own mark). */
int siphon_yamlx_walk(yaml_document_t *doc, yaml_node_t *map, const char *where,
                      const siphon_yamlx_key_t *keys, int nkeys, yaml_node_t **vals,
                      yaml_node_t **knodes, siphon_yamlx_err_t *err);

#endif
