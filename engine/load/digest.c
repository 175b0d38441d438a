/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the digest of a rule's effective definition: a reload keeps the
 * alert state of the rules whose digest is unchanged.
 */
#include "load_priv.h"

#include <string.h>

/* ---- digest -------------------------------------------------------------------- */

struct hasher {
	uint64_t h;
};

static void h_bytes(struct hasher *h, const void *p, size_t n)
{
	h->h = tsg_hash_bytes(h->h, p, n);
}

static void h_u64(struct hasher *h, uint64_t v)
{
	h_bytes(h, &v, sizeof(v));
}

static void h_str(struct hasher *h, const char *s)
{
	if (!s) {
		h_u64(h, UINT64_MAX);
		return;
	}
	h_u64(h, strlen(s));
	h_bytes(h, s, strlen(s));
}

/* netns (with the inode each item resolved to: a name that now denotes
 * another namespace is another rule), container, pod */
static void digest_ident(struct hasher *h, const struct tsg_match *m)
{
	h_u64(h, m->netns.n);
	for (size_t i = 0; i < m->netns.n; i++) {
		h_str(h, m->netns.v[i].name);
		h_u64(h, (uint64_t)m->netns.v[i].inode << 1 | m->netns.v[i].neg);
	}
	h_u64(h, m->container.n);
	for (size_t i = 0; i < m->container.n; i++) {
		h_str(h, m->container.v[i].s);
		h_u64(h, m->container.v[i].neg);
	}
	h_u64(h, m->pod.n);
	for (size_t i = 0; i < m->pod.n; i++) {
		h_str(h, m->pod.v[i].s);
		h_u64(h, m->pod.v[i].neg);
	}
}

uint64_t ld_rule_digest(const struct tsg_rule *r, const struct tsg_ruleset *rs)
{
	struct hasher h = {TSG_HASH_SEED};
	const struct tsg_match *m = &r->match;

	h_str(&h, r->name);
	h_str(&h, r->description);
	h_str(&h, r->summary.src);
	h_u64(&h, (uint64_t)r->severity);
	h_u64(&h, r->enabled);
	h_u64(&h, r->nlabels);
	for (size_t i = 0; i < r->nlabels; i++) {
		h_str(&h, r->labels[i].name);
		h_str(&h, r->labels[i].value);
	}
	h_u64(&h, m->family_mask);
	h_u64(&h, m->lport.n);
	for (size_t i = 0; i < m->lport.n; i++)
		h_u64(&h, (uint64_t)m->lport.v[i].lo << 32 | (uint64_t)m->lport.v[i].hi << 1 |
			      m->lport.v[i].neg);
	h_u64(&h, m->rport.n);
	for (size_t i = 0; i < m->rport.n; i++)
		h_u64(&h, (uint64_t)m->rport.v[i].lo << 32 | (uint64_t)m->rport.v[i].hi << 1 |
			      m->rport.v[i].neg);
	h_u64(&h, m->laddr.n);
	for (size_t i = 0; i < m->laddr.n; i++) {
		h_bytes(&h, m->laddr.v[i].addr, 16);
		h_u64(&h, (uint64_t)m->laddr.v[i].plen << 1 | m->laddr.v[i].neg);
	}
	h_u64(&h, m->raddr.n);
	for (size_t i = 0; i < m->raddr.n; i++) {
		h_bytes(&h, m->raddr.v[i].addr, 16);
		h_u64(&h, (uint64_t)m->raddr.v[i].plen << 1 | m->raddr.v[i].neg);
	}
	h_u64(&h, m->comm.n);
	for (size_t i = 0; i < m->comm.n; i++) {
		h_str(&h, m->comm.v[i].s);
		h_u64(&h, (uint64_t)(m->comm.v[i].re != NULL) << 1 | m->comm.v[i].neg);
	}
	h_u64(&h, m->uid.n);
	for (size_t i = 0; i < m->uid.n; i++)
		h_u64(&h, (uint64_t)m->uid.v[i].uid << 1 | m->uid.v[i].neg);
	h_u64(&h, m->cgroup.n);
	for (size_t i = 0; i < m->cgroup.n; i++) {
		h_str(&h, m->cgroup.v[i].s);
		h_u64(&h, m->cgroup.v[i].neg);
	}
	digest_ident(&h, m);
	const uint64_t when[] = {
	    (uint64_t)r->kind, r->from,		 r->to,	     r->state, r->longer_than_ns,
	    r->threshold,      r->resolve_below, r->per_ns,  r->by,    r->for_ns,
	    r->queue_pct_x100, r->cooldown_ns,	 r->nactions};

	for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++)
		h_u64(&h, when[i]);
	for (size_t i = 0; i < r->nactions; i++)
		h_str(&h, rs->actions[r->actions[i]].name);
	return h.h;
}
