/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the namespaces, containers and pods a rule set names (the
 * kernel's namespace and cgroup gates read them: tsg_plan_netns,
 * tsg_plan_cgroup_allows), and netns, container and pod in `--check --explain`.
 */
#include "match.h"
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

/* ---- the cgroup gate: containers and pods ---------------------------------- */

static void idset_fini(struct tsg_idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].s);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int idset_dup(const struct tsg_idset *src, struct tsg_idset *dst)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return 0;
	if (!(dst->v = calloc(src->n, sizeof(*dst->v))))
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++, dst->n++) {
		dst->v[i].neg = src->v[i].neg;
		if (src->v[i].s && !(dst->v[i].s = strdup(src->v[i].s)))
			return -ENOMEM; /* the caller frees what was copied */
	}
	return 0;
}

/* Does the set only match sockets in some container (pod) it names? It has
 * a positive item, and no positive `none`. */
static bool idset_bounded(const struct tsg_idset *s)
{
	bool pos = false;

	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].neg)
			continue;
		if (!s->v[i].s)
			return false;
		pos = true;
	}
	return pos;
}

void tsg_plan_cgroups_fini(struct tsg_plan_cgroups *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		idset_fini(&cg->v[i].container);
		idset_fini(&cg->v[i].pod);
	}
	free(cg->v);
	memset(cg, 0, sizeof(*cg));
}

static int cgrule_add(struct tsg_plan_cgroups *cg, const struct tsg_idset *container,
		      const struct tsg_idset *pod)
{
	struct tsg_plan_cgrule *r = &cg->v[cg->n++];

	if (idset_dup(container, &r->container) < 0 || idset_dup(pod, &r->pod) < 0)
		return -ENOMEM;
	return 0;
}

int tsg_plan_cgroups_build(const struct tsg_ruleset *rs, bool record_all,
			   struct tsg_plan_cgroups *cg)
{
	memset(cg, 0, sizeof(*cg));
	cg->any = record_all;
	for (size_t i = 0; rs && i < rs->nrules && !cg->any; i++) {
		const struct tsg_match *m = &rs->rules[i].match;

		if (rs->rules[i].enabled && !idset_bounded(&m->container) &&
		    !idset_bounded(&m->pod))
			cg->any = true;
	}
	if (cg->any || !rs || !rs->nrules)
		return 0;
	if (!(cg->v = calloc(rs->nrules, sizeof(*cg->v))))
		return -ENOMEM;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_match *m = &rs->rules[i].match;

		if (rs->rules[i].enabled && cgrule_add(cg, &m->container, &m->pod) < 0) {
			tsg_plan_cgroups_fini(cg);
			return -ENOMEM;
		}
	}
	return 0;
}

int tsg_plan_cgroups_dup(const struct tsg_plan_cgroups *src, struct tsg_plan_cgroups *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->any = src->any;
	if (!src->n)
		return 0;
	if (!(dst->v = calloc(src->n, sizeof(*dst->v))))
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		if (cgrule_add(dst, &src->v[i].container, &src->v[i].pod) < 0) {
			tsg_plan_cgroups_fini(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

bool tsg_plan_cgroup_gate(const struct tsg_plan *p)
{
	return p && !p->cgroups.any && p->cgroups.n;
}

bool tsg_plan_cgroup_allows(const struct tsg_plan *p, const char *container, const char *pod)
{
	if (!tsg_plan_cgroup_gate(p))
		return true;
	for (size_t i = 0; i < p->cgroups.n; i++) {
		const struct tsg_plan_cgrule *r = &p->cgroups.v[i];

		if ((!r->container.n || tsg_idset_match(&r->container, container, true)) &&
		    (!r->pod.n || tsg_idset_match(&r->pod, pod, false)))
			return true;
	}
	return false;
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
