// SPDX-License-Identifier: MIT
/*
 * tsguard: the plan's lookups (engine/plan/plan.h): the kernel decision
 * tsg_plan_eval() and the map lookups it is made of, as the BPF program
 * makes them; copying and freeing a plan.
 */
#include "plan_priv.h"
#include "match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Does prefix (oa, ol) contain prefix (ia, il)? (An address is a /128.) */
static bool prefix_contains(const uint8_t oa[16], unsigned ol, const uint8_t ia[16],
			    unsigned il)
{
	if (ol > il)
		return false;
	unsigned full = ol / 8, rem = ol % 8;
	if (memcmp(oa, ia, full))
		return false;
	if (rem) {
		uint8_t m = (uint8_t)(0xff00u >> rem);
		if ((oa[full] & m) != (ia[full] & m))
			return false;
	}
	return true;
}

/*
 * Would the set match an address whose longest match among the collected
 * prefixes is P? Such an address lies in P, and every collected prefix
 * that contains it also contains P: two prefixes that share an address are
 * nested, and a containing prefix longer than P would be a longer match.
 * The set's items are among the collected prefixes, so the items that
 * contain the address are exactly the items that contain P - which is what
 * is evaluated here (empty set: all-match; only exclusions: match unless
 * excluded). Hence every address gets, through the kernel's LPM lookup,
 * exactly the bits user space would compute: the LPM maps are exact.
 */
bool tsg_plan_cidrset_match_prefix(const struct tsg_cidrset *s, const uint8_t pa[16],
				   unsigned pl)
{
	bool has_pos = false, pos_hit = false;

	for (size_t i = 0; i < s->n; i++) {
		const struct tsg_cidr *c = &s->v[i];
		bool in = prefix_contains(c->addr, c->plen > 128 ? 128 : c->plen, pa, pl);
		if (c->neg) {
			if (in)
				return false;
		} else {
			has_pos = true;
			pos_hit |= in;
		}
	}
	return !has_pos || pos_hit;
}

/* Longest-prefix match, as BPF_MAP_TYPE_LPM_TRIE does. ::/0 is always there. */
uint64_t tsg_plan_lpm_bits(const struct tsg_plan_lpm *e, size_t n, const uint8_t a[16],
			   unsigned plen)
{
	int best = -1;
	uint64_t bits = 0;

	for (size_t i = 0; i < n; i++)
		if ((int)e[i].plen > best && prefix_contains(e[i].addr, e[i].plen, a, plen)) {
			best = e[i].plen;
			bits = e[i].bits;
		}
	return bits;
}

uint64_t tsg_plan_comm_bits(const struct tsg_plan *p, const char *comm)
{
	char key[TSG_COMM_LEN] = {0};

	memcpy(key, comm, strnlen(comm, TSG_COMM_LEN - 1));
	for (size_t i = 0; i < p->ncomm; i++)
		if (memcmp(p->comm[i].comm, key, TSG_COMM_LEN) == 0)
			return p->comm[i].bits;
	return p->comm_default;
}

uint64_t tsg_plan_uid_bits(const struct tsg_plan *p, uint32_t uid)
{
	size_t lo = 0, hi = p->nuid;

	while (lo < hi) { /* entries are sorted */
		size_t mid = lo + (hi - lo) / 2;
		if (p->uid[mid].uid == uid)
			return p->uid[mid].bits;
		if (p->uid[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return p->uid_default;
}

void tsg_plan_free(struct tsg_plan *p)
{
	if (!p)
		return;
	free(p->lport);
	free(p->rport);
	free(p->laddr);
	free(p->raddr);
	free(p->comm);
	free(p->uid);
	free(p->slot_of_rule);
	free(p->user_fields_of_rule);
	tsg_plan_netns_fini(&p->netns);
	tsg_plan_cgroups_fini(&p->cgroups);
	free(p);
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *d = malloc(n ? n * size : 1);

	if (d && n)
		memcpy(d, src, n * size);
	return d;
}

int tsg_plan_dup(const struct tsg_plan *p, struct tsg_plan **out)
{
	struct tsg_plan *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	*d = *p;
	d->lport = dup_array(p->lport, NPORTS, sizeof(*p->lport));
	d->rport = dup_array(p->rport, NPORTS, sizeof(*p->rport));
	d->laddr = dup_array(p->laddr, p->nladdr, sizeof(*p->laddr));
	d->raddr = dup_array(p->raddr, p->nraddr, sizeof(*p->raddr));
	d->comm = dup_array(p->comm, p->ncomm, sizeof(*p->comm));
	d->uid = dup_array(p->uid, p->nuid, sizeof(*p->uid));
	d->slot_of_rule = dup_array(p->slot_of_rule, p->nrules, sizeof(*p->slot_of_rule));
	d->user_fields_of_rule =
		dup_array(p->user_fields_of_rule, p->nrules, sizeof(*p->user_fields_of_rule));
	memset(&d->netns, 0, sizeof(d->netns));
	memset(&d->cgroups, 0, sizeof(d->cgroups));
	if (!d->lport || !d->rport || !d->laddr || !d->raddr || !d->comm || !d->uid ||
	    !d->slot_of_rule || !d->user_fields_of_rule ||
	    tsg_plan_netns_dup(&p->netns, &d->netns) < 0 ||
	    tsg_plan_cgroups_dup(&p->cgroups, &d->cgroups) < 0) {
		tsg_plan_free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

/* Does some rule want sockets in this state (into it or out of it)? */
bool tsg_plan_wants_state(const struct tsg_plan *p, uint8_t state)
{
	if (!p || state >= TSG_NSTATES)
		return false;
	if (p->record_all)
		return true;
	for (int s = 0; s < TSG_NSTATES; s++)
		if (p->trans[s][state] || p->trans[state][s])
			return true;
	return false;
}

/*
 * The kernel decision, as the BPF program computes it:
 *
 *   bits = trans[from][to]
 *        & family[ipv4 ? 0 : 1]
 *        & lport[lport] & rport[rport]          (lport is 0 at connect)
 *        & lpm(laddr) & lpm(raddr)              (v4 as ::ffff:a.b.c.d)
 *        & (comm in comm[] ? comm[c] : comm_default)
 *        & (uid in uid[] ? uid[u] : uid_default)
 *
 * The kernel always knows family, ports and addresses. A socket without
 * owner storage (it predates tsguard) has no comm and uid: the defaults
 * apply. Here a field missing from info->have is treated the same way:
 * comm/uid -> the default; lport -> lport[0] (what a connect reports);
 * family, rport, addresses -> no restriction (replay only).
 */
uint64_t tsg_plan_eval(const struct tsg_plan *p, uint8_t from, uint8_t to,
		       const struct tsg_sockinfo *info)
{
	uint32_t have = info->have;
	uint64_t bits;

	if (from >= TSG_NSTATES || to >= TSG_NSTATES)
		return p->record_all ? ALL_BITS : 0;
	bits = p->trans[from][to];
	if (have & TSG_HAVE(TSG_SF_FAMILY)) {
		if (info->family == TSG_FAM_IPV4)
			bits &= p->family[0];
		else if (info->family == TSG_FAM_IPV6)
			bits &= p->family[1];
		else
			bits = 0;
	}
	bits &= p->lport[(have & TSG_HAVE(TSG_SF_LPORT)) ? info->lport : 0];
	if (have & TSG_HAVE(TSG_SF_RPORT))
		bits &= p->rport[info->rport];
	if (have & TSG_HAVE(TSG_SF_LADDR))
		bits &= tsg_plan_lpm_bits(p->laddr, p->nladdr, info->laddr, 128);
	if (have & TSG_HAVE(TSG_SF_RADDR))
		bits &= tsg_plan_lpm_bits(p->raddr, p->nraddr, info->raddr, 128);
	bits &=
	    (have & TSG_HAVE(TSG_SF_COMM)) ? tsg_plan_comm_bits(p, info->comm) : p->comm_default;
	bits &= (have & TSG_HAVE(TSG_SF_UID)) ? tsg_plan_uid_bits(p, info->uid) : p->uid_default;
	return bits;
}

bool tsg_plan_wants_queue(const struct tsg_plan *p)
{
	return p && p->wants_queue;
}
