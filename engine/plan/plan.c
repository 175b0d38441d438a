// SPDX-License-Identifier: MIT
/*
 * tsguard: compiles a rule set into the plan (engine/plan/plan.h): the contents
 * of the kernel filter maps, and what is left to user space.
 *
 * The one property everything here keeps: for every socket and transition,
 * if a rule matches in user space, the kernel decision has that rule's slot
 * bit set (the kernel filter is a superset). Where a field is decided
 * exactly in the kernel it is said so; where it is not, the field is
 * recorded in user_fields_of_rule[] and user space re-checks it.
 *
 * tsg_plan_eval() (plan_lookup.c) is the reference of the kernel computation;
 * the BPF program mirrors it line by line. docs/kernel-filter.md explains the
 * shape. plan_explain.c prints the plan for --explain.
 */
#include "plan_priv.h"
#include "match.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- transitions ------------------------------------------------------ */

/*
 * rows[f] = the `to` states t such that (f, t) is wanted by rule r. A mask
 * of 0 ("any") covers every state, TSG_STATE_NONE included (snapshot
 * events come from NONE). Time and count rules want every transition into
 * and out of their state.
 */
void tsg_plan_trans_rows(const struct tsg_rule *r, uint16_t rows[TSG_NSTATES])
{
	memset(rows, 0, sizeof(uint16_t) * TSG_NSTATES);
	if (r->kind == TSG_KIND_QUEUE) {
		/* samples come from the listener sampler (with the owner the
		 * listener's socket storage holds); only a listener's close (out of
		 * LISTEN) crosses, so that its alert ends */
		rows[TSG_LISTEN] = ALL_STATES;
		return;
	}
	if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT) {
		if (r->state >= TSG_NSTATES)
			return;
		for (int f = 0; f < TSG_NSTATES; f++)
			rows[f] |= (uint16_t)(1u << r->state); /* into S */
		rows[r->state] = ALL_STATES;                   /* out of S */
		return;
	}
	uint16_t fm = r->from ? (uint16_t)(r->from & ALL_STATES) : ALL_STATES;
	uint16_t tm = r->to ? (uint16_t)(r->to & ALL_STATES) : ALL_STATES;
	for (int f = 0; f < TSG_NSTATES; f++)
		if (fm & (1u << f))
			rows[f] = tm;
}

/* ---- ports ------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * ORs `bit` into map[p] for every port p the set matches. The match is
 * piecewise constant between item boundaries (lo and hi+1), so it is
 * evaluated once per segment with the real matcher - exclusions and ranges
 * come out exactly as user space sees them.
 */
static int ports_fill(uint64_t *map, const struct tsg_portset *s, uint64_t bit)
{
	size_t nb = 0;
	uint32_t *b = malloc(sizeof(*b) * (2 * s->n + 1));

	if (!b)
		return -ENOMEM;
	b[nb++] = 0;
	for (size_t i = 0; i < s->n; i++) {
		b[nb++] = s->v[i].lo;
		if ((uint32_t)s->v[i].hi + 1 < NPORTS)
			b[nb++] = (uint32_t)s->v[i].hi + 1;
	}
	qsort(b, nb, sizeof(*b), cmp_u32);
	for (size_t i = 0; i < nb; i++) {
		if (i > 0 && b[i] == b[i - 1])
			continue;
		uint32_t lo = b[i], hi = NPORTS; /* [lo, hi) */
		for (size_t j = i + 1; j < nb; j++)
			if (b[j] != lo) {
				hi = b[j];
				break;
			}
		if (!tsg_portset_match(s, (uint16_t)lo))
			continue;
		for (uint32_t p = lo; p < hi; p++)
			map[p] |= bit;
	}
	free(b);
	return 0;
}

/* ---- address prefixes -------------------------------------------------- */

static void prefix_mask(uint8_t a[16], unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;
		if (plen >= lo + 8)
			continue;
		a[i] &= plen <= lo ? 0 : (uint8_t)(0xff00u >> (plen - lo));
	}
}

static int cmp_lpm(const void *a, const void *b)
{
	const struct tsg_plan_lpm *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);
	if (c)
		return c;
	return (int)x->plen - (int)y->plen;
}

static int lpm_build(const struct tsg_ruleset *rs, const uint8_t *slot, bool laddr,
		     struct tsg_plan_lpm **out, size_t *nout)
{
	size_t n = 1, k = 0;

	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		if (r->enabled)
			n += laddr ? r->match.laddr.n : r->match.raddr.n;
	}
	struct tsg_plan_lpm *e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	k = 1; /* e[0] = ::/0 */
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		const struct tsg_cidrset *s = laddr ? &r->match.laddr : &r->match.raddr;
		if (!r->enabled)
			continue;
		for (size_t j = 0; j < s->n; j++) {
			memcpy(e[k].addr, s->v[j].addr, 16);
			e[k].plen = s->v[j].plen > 128 ? 128 : s->v[j].plen;
			prefix_mask(e[k].addr, e[k].plen);
			k++;
		}
	}
	qsort(e, k, sizeof(*e), cmp_lpm);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || cmp_lpm(&e[u - 1], &e[i]))
			e[u++] = e[i];
	for (size_t i = 0; i < u; i++)
		for (size_t j = 0; j < rs->nrules; j++) {
			const struct tsg_rule *r = &rs->rules[j];
			const struct tsg_cidrset *s = laddr ? &r->match.laddr : &r->match.raddr;
			if (r->enabled && tsg_plan_cidrset_match_prefix(s, e[i].addr, e[i].plen))
				e[i].bits |= slot_bit(slot[j]);
		}
	*out = e;
	*nout = u;
	return 0;
}

/* ---- comm ------------------------------------------------------------- */

/*
 * A comm set the kernel decides exactly: exact strings short enough to be
 * a kernel comm. A regex, or a string of TSG_COMM_LEN bytes or more (which
 * a fixed-size key would truncate), makes the whole set user-space only:
 * its slot passes every comm in the kernel.
 */
bool tsg_plan_comm_in_kernel(const struct tsg_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].re || !s->v[i].s || strlen(s->v[i].s) >= TSG_COMM_LEN)
			return false;
	return true;
}

bool tsg_plan_strset_has_pos(const struct tsg_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].neg)
			return true;
	return false;
}

static int cmp_comm(const void *a, const void *b)
{
	const struct tsg_plan_comm *x = a, *y = b;
	return strncmp(x->comm, y->comm, TSG_COMM_LEN);
}

static int comm_build(const struct tsg_ruleset *rs, const uint8_t *slot, struct tsg_plan *p)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		if (r->enabled && tsg_plan_comm_in_kernel(&r->match.comm))
			n += r->match.comm.n;
	}
	p->comm = calloc(n ? n : 1, sizeof(*p->comm));
	if (!p->comm)
		return -ENOMEM;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		if (!r->enabled || !tsg_plan_comm_in_kernel(&r->match.comm))
			continue;
		for (size_t j = 0; j < r->match.comm.n; j++)
			memcpy(p->comm[k++].comm, r->match.comm.v[j].s,
			       strlen(r->match.comm.v[j].s)); /* < TSG_COMM_LEN */
	}
	qsort(p->comm, k, sizeof(*p->comm), cmp_comm);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || cmp_comm(&p->comm[u - 1], &p->comm[i]))
			p->comm[u++] = p->comm[i];
	p->ncomm = u;

	p->comm_default = 0;
	for (size_t j = 0; j < rs->nrules; j++) {
		const struct tsg_rule *r = &rs->rules[j];
		const struct tsg_strset *s = &r->match.comm;
		uint64_t bit = slot_bit(slot[j]);
		if (!r->enabled)
			continue;
		if (s->n == 0 || !tsg_plan_comm_in_kernel(s)) {
			p->comm_default |= bit;
			for (size_t i = 0; i < u; i++)
				p->comm[i].bits |= bit;
			continue;
		}
		if (!tsg_plan_strset_has_pos(s))
			p->comm_default |= bit;
		for (size_t i = 0; i < u; i++)
			if (tsg_commset_match(s, p->comm[i].comm))
				p->comm[i].bits |= bit;
	}
	return 0;
}

/* ---- uid -------------------------------------------------------------- */

static int cmp_uid(const void *a, const void *b)
{
	const struct tsg_plan_uid *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int uid_build(const struct tsg_ruleset *rs, const uint8_t *slot, struct tsg_plan *p)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < rs->nrules; i++)
		if (rs->rules[i].enabled)
			n += rs->rules[i].match.uid.n;
	p->uid = calloc(n ? n : 1, sizeof(*p->uid));
	if (!p->uid)
		return -ENOMEM;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		if (!r->enabled)
			continue;
		for (size_t j = 0; j < r->match.uid.n; j++)
			p->uid[k++].uid = r->match.uid.v[j].uid;
	}
	qsort(p->uid, k, sizeof(*p->uid), cmp_uid);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || p->uid[u - 1].uid != p->uid[i].uid)
			p->uid[u++] = p->uid[i];
	p->nuid = u;

	p->uid_default = 0;
	for (size_t j = 0; j < rs->nrules; j++) {
		const struct tsg_rule *r = &rs->rules[j];
		const struct tsg_uidset *s = &r->match.uid;
		uint64_t bit = slot_bit(slot[j]);
		bool has_pos = false;
		if (!r->enabled)
			continue;
		for (size_t i = 0; i < s->n; i++)
			has_pos |= !s->v[i].neg;
		if (!has_pos)
			p->uid_default |= bit;
		for (size_t i = 0; i < u; i++)
			if (tsg_uidset_match(s, p->uid[i].uid))
				p->uid[i].bits |= bit;
	}
	return 0;
}

/* ---- the plan --------------------------------------------------------- */

/* Fields the rule constrains at all (TSG_HAVE bits). */
uint32_t tsg_plan_rule_fields(const struct tsg_rule *r)
{
	const struct tsg_match *m = &r->match;

#define HAVE_IF(cond, sf) ((cond) ? TSG_HAVE(sf) : 0u)
	return HAVE_IF(m->family_mask, TSG_SF_FAMILY) | HAVE_IF(m->lport.n, TSG_SF_LPORT) |
	       HAVE_IF(m->rport.n, TSG_SF_RPORT) | HAVE_IF(m->laddr.n, TSG_SF_LADDR) |
	       HAVE_IF(m->raddr.n, TSG_SF_RADDR) | HAVE_IF(m->comm.n, TSG_SF_COMM) |
	       HAVE_IF(m->uid.n, TSG_SF_UID) | HAVE_IF(m->cgroup.n, TSG_SF_CGROUP) |
	       tsg_plan_ident_fields(m);
#undef HAVE_IF
}

static void plan_set_all(struct tsg_plan *p)
{
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			p->trans[f][t] = ALL_BITS;
	p->family[0] = p->family[1] = ALL_BITS;
	for (size_t i = 0; i < NPORTS; i++)
		p->lport[i] = p->rport[i] = ALL_BITS;
	for (size_t i = 0; i < p->nladdr; i++)
		p->laddr[i].bits = ALL_BITS;
	for (size_t i = 0; i < p->nraddr; i++)
		p->raddr[i].bits = ALL_BITS;
	for (size_t i = 0; i < p->ncomm; i++)
		p->comm[i].bits = ALL_BITS;
	for (size_t i = 0; i < p->nuid; i++)
		p->uid[i].bits = ALL_BITS;
	p->comm_default = p->uid_default = ALL_BITS;
}

/* What user space must still check for rule r (TSG_HAVE bits); `shared`: its
 * slot holds other rules too, so every field it constrains. */
static uint32_t user_fields(const struct tsg_rule *r, bool shared)
{
	const struct tsg_match *m = &r->match;
	uint32_t uf = tsg_plan_ident_fields(m);

	if (m->comm.n && !tsg_plan_comm_in_kernel(&m->comm))
		uf |= TSG_HAVE(TSG_SF_COMM);
	if (m->cgroup.n)
		uf |= TSG_HAVE(TSG_SF_CGROUP);
	if (m->lport.n && !tsg_portset_match(&m->lport, 0))
		uf |= TSG_HAVE(TSG_SF_LPORT); /* lport[0] passes every slot */
	if (shared)
		uf |= tsg_plan_rule_fields(r);
	return uf;
}

int tsg_plan_build(const struct tsg_ruleset *rs, bool record_all, struct tsg_plan **out)
{
	struct tsg_plan *p = calloc(1, sizeof(*p));
	unsigned users[TSG_PLAN_SLOTS] = {0};
	uint64_t lport_any = 0, rport_any = 0;
	size_t n = rs ? rs->nrules : 0;
	int err = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->nrules = n;
	p->record_all = record_all;
	p->lport = calloc(NPORTS, sizeof(uint64_t));
	p->rport = calloc(NPORTS, sizeof(uint64_t));
	p->slot_of_rule = calloc(n ? n : 1, sizeof(*p->slot_of_rule));
	p->user_fields_of_rule = calloc(n ? n : 1, sizeof(*p->user_fields_of_rule));
	if (!p->lport || !p->rport || !p->slot_of_rule || !p->user_fields_of_rule)
		goto fail;

	/* Slots: rule i -> i % 64. A disabled rule keeps its slot number but
	 * contributes no bit anywhere. */
	for (size_t i = 0; i < n; i++) {
		p->slot_of_rule[i] = (uint8_t)(i % TSG_PLAN_SLOTS);
		if (rs->rules[i].enabled) {
			p->wants_queue |= rs->rules[i].kind == TSG_KIND_QUEUE;
			users[i % TSG_PLAN_SLOTS]++;
			p->all_slots |= slot_bit(i % TSG_PLAN_SLOTS);
		}
	}

	for (size_t i = 0; i < n; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		const struct tsg_match *m = &r->match;
		uint64_t bit = slot_bit(p->slot_of_rule[i]);
		uint16_t rows[TSG_NSTATES];

		if (!r->enabled)
			continue;
		tsg_plan_trans_rows(r, rows);
		for (int f = 0; f < TSG_NSTATES; f++)
			for (int t = 0; t < TSG_NSTATES; t++)
				if (rows[f] & (1u << t))
					p->trans[f][t] |= bit;

		if (!m->family_mask || (m->family_mask & 1))
			p->family[0] |= bit;
		if (!m->family_mask || (m->family_mask & 2))
			p->family[1] |= bit;

		if (m->lport.n == 0)
			lport_any |= bit;
		else if ((err = ports_fill(p->lport, &m->lport, bit)) < 0)
			goto fail;
		if (m->rport.n == 0)
			rport_any |= bit;
		else if ((err = ports_fill(p->rport, &m->rport, bit)) < 0)
			goto fail;

		p->user_fields_of_rule[i] = user_fields(r, users[p->slot_of_rule[i]] > 1);
	}
	for (size_t i = 0; i < NPORTS; i++) {
		p->lport[i] |= lport_any;
		p->rport[i] |= rport_any;
	}
	/* CLOSE->SYN_SENT is reported before the source port is chosen: lport 0
	 * must pass every slot (user space re-checks lport). */
	p->lport[0] |= p->all_slots;

	err = lpm_build(rs, p->slot_of_rule, true, &p->laddr, &p->nladdr);
	if (!err)
		err = lpm_build(rs, p->slot_of_rule, false, &p->raddr, &p->nraddr);
	if (!err)
		err = comm_build(rs, p->slot_of_rule, p);
	if (!err)
		err = uid_build(rs, p->slot_of_rule, p);
	if (!err)
		err = tsg_plan_netns_build(rs, record_all, &p->netns);
	if (!err)
		err = tsg_plan_cgroups_build(rs, record_all, &p->cgroups);
	if (err)
		goto fail;

	if (record_all)
		plan_set_all(p);
	*out = p;
	return 0;
fail:
	tsg_plan_free(p);
	return err;
}
