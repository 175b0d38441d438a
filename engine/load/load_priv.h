/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals of the rule loader, shared by the files of engine/load/ only.
 */
#ifndef TSG_LOAD_PRIV_H
#define TSG_LOAD_PRIV_H

#include "match.h"
#include "ruleset.h"
#include "yamlnode.h"

#define TSG_NAME_MAX 64

/* One list or match item as written, after $list references are expanded. */
struct ritem {
	const char *text;  /* scalar value without "!" (borrowed from the YAML doc) */
	bool regex;        /* a {regex: P} item; text = P */
	bool neg;          /* exclusion */
	yaml_node_t *node; /* where it is written */
	struct ld_file *f;
	size_t text_off;   /* offset of text in the node's value ("!" skipped) */
	const char *list;  /* name of the list it comes from, or NULL */
};

struct ritems {
	struct ritem *v;
	size_t n, cap;
};

struct list_def {
	const char *name; /* borrowed from the YAML doc */
	struct ld_file *f;
	yaml_node_t *key, *val;
	int state; /* 0 unresolved, 1 resolving, 2 resolved, 3 failed */
	struct ritem *items;
	size_t nitems;
};

/* helpers (yamlnode.c; the YAML ones are declared in yamlnode.h) */
void ld_off_pos(const yaml_node_t *n, size_t off, int *line, int *col);
void ld_err_at(struct ld *L, const struct ld_file *f, const yaml_node_t *n, size_t off,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool ld_name_ok(const char *s);
const char *ld_name(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		    const char *what);
int ld_uint(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    uint64_t max, uint64_t *out);
int ld_bool(struct ld *L, const struct ld_file *f, const yaml_node_t *n, const char *what,
	    bool *out);
int ld_duration(struct ld *L, const struct ld_file *f, const yaml_node_t *n,
		const char *what, bool positive, uint64_t *out);
/* Absent keys that an unknown key of the mapping is close to (bit i: keys[i]);
 * the errors that only follow from their absence are not reported. */
uint64_t ld_guess(const struct ld_file *f, const yaml_node_t *n, const char *const *keys);
#define LD_GUESSED(mask, i) (((mask) >> (i)) & 1u)

/* fn on each item of the sequence at `section` (offsetof(struct ld_file,
 * rules) or actions) of every file; a section that is not a sequence is an
 * error. 0, or -ENOMEM (L->oom set) when fn returns it. */
int ld_each_item(struct ld *L, size_t section, const char *what,
		 int (*fn)(struct ld *L, struct ld_file *f, yaml_node_t *n));
/* lists (parse_lists.c) */
int ld_lists(struct ld *L);
/* Items of a match field value (scalar, sequence, {regex:} mapping) with
 * $list references expanded. -EINVAL (diagnosed) or -ENOMEM. */
int ld_items(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
	     struct ritems *out);
/* "FILE:LINE:COL" of where a list item came from, for notes. */

/* match sets (parse_match.c: YAML to match sets; match.c runs them) */
int ld_match(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *rule,
	     struct tsg_match *m);

/* Errors at a match item (its list named), and the check that it is no
 * {regex: ...} (only comm has those) (parse_match.c). */
void ld_item_err(struct ld *L, const struct ritem *it, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool ld_no_regex(struct ld *L, const struct ritem *it, const char *field);
/* netns, container, pod (parse_ident.c) */
int ld_conv_netns(struct ld *L, const struct ritems *in, struct tsg_netnsset *ns);
int ld_conv_ids(struct ld *L, const struct ritems *in, const char *field, struct tsg_idset *ids);

/* the digest of a rule (digest.c) */
uint64_t ld_rule_digest(const struct tsg_rule *r, const struct tsg_ruleset *rs);

/* actions (parse_actions.c), rules (parse_rules.c) */
int ld_actions(struct ld *L);
int ld_rules(struct ld *L);
/* the when of rule r (parse_when.c): kind and condition; 0 or -EINVAL */
int ld_when(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r);
int ld_template(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
		struct tsg_template *t);

/* shared with the rest of the loader */
void tsg_rule_fini(struct tsg_rule *r);
void tsg_action_def_fini(struct tsg_action_def *a);

#endif
