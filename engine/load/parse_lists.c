/* SPDX-License-Identifier: MIT */
/*
 * tsguard: `lists:` and the items of match fields.
 *
 * A list is untyped: its items are checked where they are used (a port list
 * used by `rport`, an address list by `raddr`). Items:
 *   X          a value (port, "A-B", address/CIDR, name, uid, path)
 *   "!X"       excludes X (quote it: a bare !X is a YAML tag)
 *   $name      every item of list `name` (lists may refer to lists)
 *   "!$name"   excludes every item of list `name`; that list must then hold
 *              only positive items (an exclusion of an exclusion is refused)
 *   {regex: P} a PCRE2 pattern (comm only); {regex: P, exclude: true} excludes
 */
#include "load_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 65536 /* items of one field or list after expansion */

static int push(struct ld *L, struct ritems *out, const struct ritem *it)
{
	if (out->n >= MAX_ITEMS) {
		ld_err(L, it->f, it->node, "too many items (at most %d after expanding lists)",
		       MAX_ITEMS);
		return -EINVAL;
	}
	if (out->n == out->cap) {
		size_t ncap = out->cap ? out->cap * 2 : 8;
		struct ritem *nv = realloc(out->v, ncap * sizeof(*nv));

		if (!nv) {
			L->oom = true;
			return -ENOMEM;
		}
		out->v = nv;
		out->cap = ncap;
	}
	out->v[out->n++] = *it;
	return 0;
}

static struct list_def *find_list(struct ld *L, const char *name)
{
	for (size_t i = 0; i < L->nlists; i++)
		if (!strcmp(L->lists[i].name, name))
			return &L->lists[i];
	return NULL;
}

static int resolve(struct ld *L, struct list_def *ld);

static void undefined_list(struct ld *L, struct ld_file *f, yaml_node_t *n, size_t off,
			   const char *name)
{
	const char **cands = calloc(L->nlists + 1, sizeof(*cands));
	char dym[128] = "";

	if (cands) {
		for (size_t i = 0; i < L->nlists; i++)
			cands[i] = L->lists[i].name;
		ld_dym(name, cands, dym, sizeof(dym));
		if (dym[0]) /* suggest it with its "$" */
			snprintf(dym, sizeof(dym), " (did you mean \"$%s\"?)",
				 tsg_nearest_word(name, cands));
	}
	ld_err_at(L, f, n, off, "undefined list \"$%s\"%s", name, dym);
	free(cands);
}

static int add_item(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *inlist,
		    struct ritems *out)
{
	struct ritem it = { .node = n, .f = f, .list = inlist };
	const char *s;

	if (n && n->type == YAML_MAPPING_NODE) {
		static const char *const keys[] = { "regex", "exclude", NULL };
		yaml_node_t *kn[2], *vn[2];
		bool ex = false;

		ld_map(L, f, n, "a regex item", keys, kn, vn);
		if (vn[1] && ld_bool(L, f, vn[1], "exclude", &ex) < 0)
			return -EINVAL;
		if (!kn[0]) {
			ld_err(L, f, n, "a mapping item needs \"regex\": {regex: \"PCRE2 pattern\"}");
			return -EINVAL;
		}
		s = ld_scalar(L, f, vn[0], "a PCRE2 pattern for regex");
		if (!s)
			return -EINVAL;
		it.text = s;
		it.regex = true;
		it.neg = ex;
		it.node = vn[0];
		return push(L, out, &it);
	}
	if (!n || n->type != YAML_SCALAR_NODE) {
		ld_err(L, f, n,
		       "expected an item (a value, \"!value\", $list or {regex: ...}), not a nested list");
		return -EINVAL;
	}
	if (ld_is_null(n)) {
		ld_err(L, f, n, "empty item: expected a value, \"!value\" or $list");
		return -EINVAL;
	}
	s = (const char *)n->data.scalar.value;
	if (s[0] == '!') {
		it.neg = true;
		it.text_off = 1;
		s++;
	}
	if (s[0] == '$') {
		struct list_def *ld = find_list(L, s + 1);
		int r;

		if (!ld) {
			undefined_list(L, f, n, it.text_off, s + 1);
			return -EINVAL;
		}
		r = resolve(L, ld);
		if (r < 0)
			return r;
		for (size_t i = 0; i < ld->nitems; i++) {
			struct ritem c = ld->items[i];

			if (it.neg && c.neg) {
				ld_err(L, f, n,
				       "\"!$%s\": list \"%s\" holds exclusions; only a list of positive items can be excluded",
				       ld->name, ld->name);
				return -EINVAL;
			}
			c.neg = c.neg || it.neg;
			r = push(L, out, &c);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (!s[0]) {
		ld_err(L, f, n, "empty item after \"!\"");
		return -EINVAL;
	}
	it.text = s;
	return push(L, out, &it);
}

int ld_items(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
	     struct ritems *out)
{
	int r = 0;

	if (n && n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top) {
			ld_err(L, f, n, "empty list for %s: leave the field out to match anything",
			       what);
			return -EINVAL;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			int r1 = add_item(L, f, ld_node(f, *i), NULL, out);

			if (r1 == -ENOMEM)
				return r1;
			if (r1 < 0)
				r = r1;
		}
		return r;
	}
	return add_item(L, f, n, NULL, out);
}

static int resolve(struct ld *L, struct list_def *ld)
{
	struct ritems items = { 0 };
	yaml_node_t *n = ld->val;
	int r = 0;

	if (ld->state == 2)
		return 0;
	if (ld->state == 3)
		return -EINVAL;
	if (ld->state == 1) {
		ld_err(L, ld->f, ld->key, "list \"%s\" refers to itself (through $ references)",
		       ld->name);
		ld->state = 3;
		return -EINVAL;
	}
	ld->state = 1;
	if (n && n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			int r1 = add_item(L, ld->f, ld_node(ld->f, *i), ld->name, &items);

			if (r1 < 0)
				r = r1;
			if (r1 == -ENOMEM)
				break;
		}
	} else if (n && n->type == YAML_SCALAR_NODE && !ld_is_null(n)) {
		r = add_item(L, ld->f, n, ld->name, &items);
	} else {
		ld_err(L, ld->f, n, "expected the items of list \"%s\" (e.g. [80, 443, \"8000-8999\"])",
		       ld->name);
		r = -EINVAL;
	}
	if (ld->state == 3) /* a cycle was found below us */
		r = -EINVAL;
	if (r < 0) {
		free(items.v);
		ld->state = 3;
		return r;
	}
	ld->items = items.v;
	ld->nitems = items.n;
	ld->state = 2;
	return 0;
}

int ld_lists(struct ld *L)
{
	for (size_t fi = 0; fi < L->nfiles; fi++) {
		struct ld_file *f = &L->files[fi];
		yaml_node_t *n = f->lists;

		if (!n || ld_is_null(n))
			continue;
		if (n->type != YAML_MAPPING_NODE) {
			ld_err(L, f, n,
			       "expected a mapping of list names to items for lists (e.g. web_ports: [80, 443])");
			continue;
		}
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = ld_node(f, p->key), *v = ld_node(f, p->value);
			const char *name = ld_name(L, f, k, "list");
			struct list_def *prev, *nl;

			if (!name)
				continue;
			prev = find_list(L, name);
			if (prev) {
				int line, col;

				ld_pos(prev->key, &line, &col);
				ld_err(L, f, k, "duplicate list name \"%s\" (first defined at %s:%d:%d)",
				       name, prev->f->path, line, col);
				continue;
			}
			nl = realloc(L->lists, (L->nlists + 1) * sizeof(*nl));
			if (!nl) {
				L->oom = true;
				return -ENOMEM;
			}
			L->lists = nl;
			L->lists[L->nlists++] = (struct list_def){ .name = name, .f = f,
								   .key = k, .val = v };
		}
	}
	/* resolve all of them, so that errors in unused lists show too */
	for (size_t i = 0; i < L->nlists; i++)
		resolve(L, &L->lists[i]);
	return L->oom ? -ENOMEM : 0;
}
