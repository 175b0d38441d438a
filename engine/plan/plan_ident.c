/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the namespaces a rule set names (the kernel's netns filter reads
 * them: tsg_plan_netns), and the user-space part of netns, container and pod
 * in `--check --explain`.
 */
#include "plan_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void tsg_plan_netns_fini(struct tsg_plan_netns *ns)
{
	for (size_t i = 0; i < ns->nnames; i++)
		free(ns->names[i]);
	free(ns->names);
	free(ns->inodes);
	memset(ns, 0, sizeof(*ns));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool has_name(const struct tsg_plan_netns *ns, const char *name)
{
	for (size_t i = 0; i < ns->nnames; i++)
		if (!strcmp(ns->names[i], name))
			return true;
	return false;
}

/* Adds the positive items of one rule's netns set; false when the rule can
 * match a namespace outside any set (no netns item, or only exclusions). */
static int add_rule(struct tsg_plan_netns *ns, const struct tsg_netnsset *s, size_t cap,
		    bool *bounded)
{
	*bounded = false;
	for (size_t i = 0; i < s->n; i++) {
		const struct tsg_netnsitem *it = &s->v[i];

		if (it->neg)
			continue;
		*bounded = true;
		if (it->inode && ns->ninodes < cap)
			ns->inodes[ns->ninodes++] = it->inode;
		if (it->name && !has_name(ns, it->name)) {
			if (!(ns->names[ns->nnames] = strdup(it->name)))
				return -ENOMEM;
			ns->nnames++;
		}
	}
	return 0;
}

int tsg_plan_netns_build(const struct tsg_ruleset *rs, bool record_all, struct tsg_plan_netns *ns)
{
	size_t cap = 0, n = 0;

	memset(ns, 0, sizeof(*ns));
	ns->any = record_all;
	for (size_t i = 0; rs && i < rs->nrules; i++)
		cap += rs->rules[i].match.netns.n;
	ns->inodes = calloc(cap ? cap : 1, sizeof(*ns->inodes));
	ns->names = calloc(cap ? cap : 1, sizeof(*ns->names));
	if (!ns->inodes || !ns->names) {
		tsg_plan_netns_fini(ns);
		return -ENOMEM;
	}
	for (size_t i = 0; rs && i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		bool bounded;

		if (!r->enabled)
			continue;
		if (add_rule(ns, &r->match.netns, cap, &bounded) < 0) {
			tsg_plan_netns_fini(ns);
			return -ENOMEM;
		}
		ns->any |= !bounded;
	}
	qsort(ns->inodes, ns->ninodes, sizeof(*ns->inodes), cmp_u32);
	for (size_t i = 0; i < ns->ninodes; i++)
		if (!n || ns->inodes[n - 1] != ns->inodes[i])
			ns->inodes[n++] = ns->inodes[i];
	ns->ninodes = n;
	return 0;
}

int tsg_plan_netns_dup(const struct tsg_plan_netns *src, struct tsg_plan_netns *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->any = src->any;
	dst->inodes = calloc(src->ninodes ? src->ninodes : 1, sizeof(*dst->inodes));
	dst->names = calloc(src->nnames ? src->nnames : 1, sizeof(*dst->names));
	if (!dst->inodes || !dst->names)
		goto fail;
	memcpy(dst->inodes, src->inodes, src->ninodes * sizeof(*dst->inodes));
	dst->ninodes = src->ninodes;
	for (size_t i = 0; i < src->nnames; i++) {
		if (!(dst->names[i] = strdup(src->names[i])))
			goto fail;
		dst->nnames++;
	}
	return 0;
fail:
	tsg_plan_netns_fini(dst);
	return -ENOMEM;
}

const struct tsg_plan_netns *tsg_plan_netns(const struct tsg_plan *p)
{
	return &p->netns;
}

uint32_t tsg_plan_ident_fields(const struct tsg_match *m)
{
	return (m->netns.n ? TSG_HAVE(TSG_SF_NETNS) : 0) |
	       (m->container.n ? TSG_HAVE(TSG_SF_CONTAINER) : 0) |
	       (m->pod.n ? TSG_HAVE(TSG_SF_POD) : 0);
}

static void explain_ids(FILE *out, const char *field, const struct tsg_idset *s)
{
	if (!s->n)
		return;
	fprintf(out, "    %-9s ", field);
	for (size_t j = 0; j < s->n; j++)
		fprintf(out, "%s%s%s", j ? ", " : "", s->v[j].neg ? "!" : "",
			s->v[j].s ? s->v[j].s : "none");
	fputs(!strcmp(field, "container") ? " (id or id prefix)\n" : "\n", out);
}

bool tsg_plan_explain_ident(FILE *out, const struct tsg_match *m)
{
	if (m->netns.n) {
		fputs("    netns     ", out);
		for (size_t j = 0; j < m->netns.n; j++) {
			const struct tsg_netnsitem *it = &m->netns.v[j];

			fprintf(out, "%s%s", j ? ", " : "", it->neg ? "!" : "");
			if (it->host)
				fprintf(out, "host (%" PRIu32 ")", it->inode);
			else if (it->name && it->inode)
				fprintf(out, "%s (%" PRIu32 ", or by name)", it->name, it->inode);
			else if (it->name)
				fprintf(out, "%s (not present at load: by name)", it->name);
			else
				fprintf(out, "%" PRIu32, it->inode);
		}
		fputc('\n', out);
	}
	explain_ids(out, "container", &m->container);
	explain_ids(out, "pod", &m->pod);
	if (m->netns.n || m->container.n || m->pod.n) {
		fputs("    netns/container/pod: matched in user space\n", out);
		return true;
	}
	return false;
}
