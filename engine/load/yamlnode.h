/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the loader's YAML helpers, shared with `tsguard test`
 * (engine/cli/ruletest.c): a file read into one YAML document with marks
 * (size and nesting bounded), node accessors, a checked mapping, and
 * "FILE:LINE:COL: error: ..." diagnostics into a struct tsg_diags.
 */
#ifndef TSG_YAMLNODE_H
#define TSG_YAMLNODE_H

#include "ruleset.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <yaml.h>

struct ld_file {
	char *path;	   /* as given / built from the directory */
	const char *ipath; /* interned (or the ruleset's copy) */
	dev_t dev;
	ino_t ino;
	bool loaded; /* doc holds a document (yaml_document_delete it) */
	yaml_document_t doc;
	yaml_node_t *lists, *actions, *rules; /* top-level values or NULL */
};

struct list_def;

/* The state of one load; a user of the YAML helpers alone needs only d. */
struct ld {
	struct tsg_diags *d;
	struct tsg_ruleset *rs;
	bool as_root;
	bool oom;
	int io_err;
	struct ld_file *files;
	size_t nfiles;
	struct list_def *lists;
	size_t nlists;
};

/* Reads f->path into f->doc: one document, at most 16 MiB, nested at most 64
 * deep. Every problem is diagnosed ("<what>: <strerror>" when the file does
 * not open) and leaves f->loaded false unless a document was read. 0, or
 * -ENOMEM. */
int ld_read_yaml(struct ld *L, struct ld_file *f, const char *what);

yaml_node_t *ld_node(const struct ld_file *f, int idx);
/* 1-based line and column of n; 0, 0 for NULL. */
void ld_pos(const yaml_node_t *n, int *line, int *col);
void ld_err(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ld_warn(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* " (did you mean "X"?)" or "" */
const char *ld_dym(const char *word, const char *const *cands, char *buf, size_t len);
/* "a, b or c" */
const char *ld_join(const char *const *words, char *buf, size_t len);
bool ld_is_null(const yaml_node_t *n);
/* The text of a scalar node (a null one too), or NULL; reports nothing. */
const char *ld_str(const yaml_node_t *n);
/* The text of a non-null scalar, or NULL with "expected <what>". */
const char *ld_scalar(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		      const char *what);
/*
 * Checks that n is a mapping whose keys are among the NULL-terminated keys
 * (unknown, duplicate and non-scalar keys are reported, with "did you mean");
 * kn[i]/vn[i] get the key and value node of keys[i] (NULL when absent).
 * False (reported) when n is not a mapping.
 */
bool ld_map(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    const char *const *keys, yaml_node_t **kn, yaml_node_t **vn);

/* Each key/value pair of a mapping node, each item of a sequence node. */
#define LD_FOR_PAIRS(n, p)                                                                         \
	for (yaml_node_pair_t *p = (n)->data.mapping.pairs.start; p < (n)->data.mapping.pairs.top; \
	     p++)
#define LD_FOR_ITEMS(n, i)                                                                         \
	for (yaml_node_item_t *i = (n)->data.sequence.items.start;                                 \
	     i < (n)->data.sequence.items.top; i++)

#endif
