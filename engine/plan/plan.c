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
 * tsg_plan_eval() is the reference of the kernel computation; the BPF
 * program mirrors it line by line. docs/kernel-filter.md explains the shape.
 */
#include "plan_priv.h"
#include "match.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NPORTS 65536u
#define ALL_STATES ((uint16_t)((1u << TSG_NSTATES) - 1)) /* NONE included */
#define ALL_BITS (~(uint64_t)0)

static inline uint64_t slot_bit(unsigned slot)
{
	return (uint64_t)1 << slot;
}

/* ---- transitions ------------------------------------------------------ */

/*
 * rows[f] = the `to` states t such that (f, t) is wanted by rule r. A mask
 * of 0 ("any") covers every state, TSG_STATE_NONE included (snapshot
 * events come from NONE). Time and count rules want every transition into
 * and out of their state.
 */
static void rule_trans_rows(const struct tsg_rule *r, uint16_t rows[TSG_NSTATES])
{
	memset(rows, 0, sizeof(uint16_t) * TSG_NSTATES);
	if (r->kind == TSG_KIND_QUEUE) {
		/* samples come from the listener sampler; a listener's listen()
		 * (CLOSE->LISTEN, in its owner's process: comm, pid) and its close
		 * (out of LISTEN, so that its alert ends) cross */
		rows[TSG_CLOSE] |= (uint16_t)(1u << TSG_LISTEN);
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
static bool cidrset_match_prefix(const struct tsg_cidrset *s, const uint8_t pa[16],
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
			if (r->enabled && cidrset_match_prefix(s, e[i].addr, e[i].plen))
				e[i].bits |= slot_bit(slot[j]);
		}
	*out = e;
	*nout = u;
	return 0;
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

/* ---- comm ------------------------------------------------------------- */

/*
 * A comm set the kernel decides exactly: exact strings short enough to be
 * a kernel comm. A regex, or a string of TSG_COMM_LEN bytes or more (which
 * a fixed-size key would truncate), makes the whole set user-space only:
 * its slot passes every comm in the kernel.
 */
static bool comm_in_kernel(const struct tsg_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].re || !s->v[i].s || strlen(s->v[i].s) >= TSG_COMM_LEN)
			return false;
	return true;
}

static bool set_has_pos_str(const struct tsg_strset *s)
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
		if (r->enabled && comm_in_kernel(&r->match.comm))
			n += r->match.comm.n;
	}
	p->comm = calloc(n ? n : 1, sizeof(*p->comm));
	if (!p->comm)
		return -ENOMEM;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct tsg_rule *r = &rs->rules[i];
		if (!r->enabled || !comm_in_kernel(&r->match.comm))
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
		if (s->n == 0 || !comm_in_kernel(s)) {
			p->comm_default |= bit;
			for (size_t i = 0; i < u; i++)
				p->comm[i].bits |= bit;
			continue;
		}
		if (!set_has_pos_str(s))
			p->comm_default |= bit;
		for (size_t i = 0; i < u; i++)
			if (tsg_commset_match(s, p->comm[i].comm))
				p->comm[i].bits |= bit;
	}
	return 0;
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

/* ---- the plan --------------------------------------------------------- */

/* Fields the rule constrains at all (TSG_HAVE bits). */
static uint32_t rule_fields(const struct tsg_rule *r)
{
	const struct tsg_match *m = &r->match;
	uint32_t f = 0;

	if (m->family_mask)
		f |= TSG_HAVE(TSG_SF_FAMILY);
	if (m->lport.n)
		f |= TSG_HAVE(TSG_SF_LPORT);
	if (m->rport.n)
		f |= TSG_HAVE(TSG_SF_RPORT);
	if (m->laddr.n)
		f |= TSG_HAVE(TSG_SF_LADDR);
	if (m->raddr.n)
		f |= TSG_HAVE(TSG_SF_RADDR);
	if (m->comm.n)
		f |= TSG_HAVE(TSG_SF_COMM);
	if (m->uid.n)
		f |= TSG_HAVE(TSG_SF_UID);
	if (m->cgroup.n)
		f |= TSG_HAVE(TSG_SF_CGROUP);
	return f | tsg_plan_ident_fields(m);
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
	if (!d->lport || !d->rport || !d->laddr || !d->raddr || !d->comm || !d->uid ||
	    !d->slot_of_rule || !d->user_fields_of_rule ||
	    tsg_plan_netns_dup(&p->netns, &d->netns) < 0) {
		tsg_plan_free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
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
		uint32_t uf = 0;

		if (!r->enabled)
			continue;
		rule_trans_rows(r, rows);
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

		/* What user space must still check for this rule. */
		if (m->comm.n && !comm_in_kernel(&m->comm))
			uf |= TSG_HAVE(TSG_SF_COMM);
		if (m->cgroup.n)
			uf |= TSG_HAVE(TSG_SF_CGROUP);
		uf |= tsg_plan_ident_fields(m);
		if (m->lport.n && !tsg_portset_match(&m->lport, 0))
			uf |= TSG_HAVE(TSG_SF_LPORT); /* lport[0] passes every slot */
		if (users[p->slot_of_rule[i]] > 1)
			uf |= rule_fields(r);
		p->user_fields_of_rule[i] = uf;
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

/* ---- explain ---------------------------------------------------------- */

#define EXPLAIN_MAX_LIST 16 /* entries listed per field before "... N more" */

static const char *state_name(int s)
{
	const char *n = tsg_state_name(s);
	return n ? n : "?";
}

static void print_statemask(FILE *out, tsg_statemask m)
{
	bool first = true;

	if (!m) {
		fputs("ANY", out);
		return;
	}
	for (int s = 0; s < TSG_NSTATES; s++)
		if (m & (1u << s)) {
			fprintf(out, "%s%s", first ? "" : "|", state_name(s));
			first = false;
		}
}

static void print_fields(FILE *out, uint32_t f)
{
	bool first = true;

	for (int i = 0; i < TSG_SF_N; i++)
		if (f & TSG_HAVE(i)) {
			const char *n = tsg_sfield_name(i);
			fprintf(out, "%s%s", first ? "" : ",", n ? n : "?");
			first = false;
		}
	if (first)
		fputs("-", out);
}

static void print_cidr(FILE *out, const uint8_t a[16], unsigned plen, bool neg)
{
	char buf[64];
	bool v4 = tsg_addr_is_v4mapped(a) && plen >= 96;

	tsg_addr_format(a, buf, sizeof(buf));
	fprintf(out, "%s%s/%u", neg ? "!" : "", buf, v4 ? plen - 96 : plen);
}

static void explain_trans(FILE *out, const struct tsg_rule *r)
{
	uint16_t rows[TSG_NSTATES];
	unsigned npairs = 0;
	bool first = true, tw = false;

	rule_trans_rows(r, rows);
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			if (rows[f] & (1u << t)) {
				npairs++;
				tw |= f == TSG_TIME_WAIT || t == TSG_TIME_WAIT;
			}
	fputs("    trans     ", out);
	if (r->kind == TSG_KIND_QUEUE) {
		fputs("CLOSE->LISTEN (the listener's owner), LISTEN->ANY (its close); its queue is "
		      "sampled, not traced",
		      out);
	} else if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT) {
		fprintf(out, "ANY->%s, %s->ANY", state_name(r->state), state_name(r->state));
		tw = r->state == TSG_TIME_WAIT;
	} else if (!r->from || !r->to) {
		/* one side is "any": FROM->ANY or ANY->TO per named state */
		tsg_statemask named = r->from ? r->from : r->to;
		if (!named)
			fputs("ANY->ANY", out);
		for (int s = 0; named && s < TSG_NSTATES; s++) {
			if (!(named & (1u << s)))
				continue;
			if (r->from)
				fprintf(out, "%s%s->ANY", first ? "" : ", ", state_name(s));
			else
				fprintf(out, "%sANY->%s", first ? "" : ", ", state_name(s));
			first = false;
		}
		tw = (r->from & (1u << TSG_TIME_WAIT)) || (r->to & (1u << TSG_TIME_WAIT));
	} else {
		for (int f = 0; f < TSG_NSTATES; f++)
			for (int t = 0; t < TSG_NSTATES; t++)
				if (rows[f] & (1u << t)) {
					fprintf(out, "%s%s->%s", first ? "" : ", ", state_name(f),
						state_name(t));
					first = false;
				}
	}
	fprintf(out, "  (%u pair%s of trans[from][to]; ANY includes NONE = snapshot)\n", npairs,
		npairs == 1 ? "" : "s");
	if (tw)
		fputs("              TIME_WAIT pairs are derived by the capture: FIN_WAIT2->TIME_WAIT,"
		      " CLOSING->TIME_WAIT, TIME_WAIT->CLOSE\n",
		      out);
}

static void explain_ports(FILE *out, const char *name, const struct tsg_portset *s, bool lport)
{
	unsigned npass = 0;

	fprintf(out, "    %-9s ", name);
	if (!s->n) {
		fprintf(out, "any (slot bit in all 65536 %s[] entries)\n", name);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct tsg_portrange *pr = &s->v[i];
		fprintf(out, "%s%s%u", i ? ", " : "", pr->neg ? "!" : "", pr->lo);
		if (pr->hi != pr->lo)
			fprintf(out, "-%u", pr->hi);
	}
	for (uint32_t p = 0; p < NPORTS; p++)
		npass += tsg_portset_match(s, (uint16_t)p);
	fprintf(out, "  (slot bit in %u of 65536 %s[] entries", npass, name);
	if (lport && !tsg_portset_match(s, 0))
		fputs(", plus lport[0]: connects report lport 0", out);
	fputs(")\n", out);
}

static void explain_lpm(FILE *out, const char *name, const struct tsg_cidrset *s,
			const struct tsg_plan_lpm *e, size_t n)
{
	size_t shown = 0, total = 0;

	fprintf(out, "    %-9s ", name);
	if (!s->n) {
		fprintf(out, "any (slot bit in all %zu %s LPM entries)\n", n, name);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		fputs(i ? ", " : "", out);
		print_cidr(out, s->v[i].addr, s->v[i].plen, s->v[i].neg);
	}
	fprintf(out, "\n              LPM entries with the slot bit: ");
	for (size_t i = 0; i < n; i++) {
		if (!cidrset_match_prefix(s, e[i].addr, e[i].plen))
			continue;
		if (total++ < EXPLAIN_MAX_LIST) {
			fputs(shown++ ? ", " : "", out);
			print_cidr(out, e[i].addr, e[i].plen, false);
		}
	}
	if (!total)
		fputs("none", out);
	if (total > shown)
		fprintf(out, " ... and %zu more", total - shown);
	fprintf(out, " (of %zu)\n", n);
}

static void explain_comm(FILE *out, const struct tsg_strset *s, const struct tsg_plan *p)
{
	fputs("    comm      ", out);
	if (!s->n) {
		fputs("any (comm_default and every comm entry)\n", out);
		return;
	}
	if (!comm_in_kernel(s)) {
		fputs("user space (regex or over-long name): slot bit in comm_default and every"
		      " comm entry\n",
		      out);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		fprintf(out, "%s%s\"%s\"", i ? ", " : "", s->v[i].neg ? "!" : "", s->v[i].s);
	fputs("\n              entries:", out);
	for (size_t i = 0; i < p->ncomm; i++) {
		bool used = false;
		for (size_t j = 0; j < s->n; j++)
			used |= strncmp(s->v[j].s, p->comm[i].comm, TSG_COMM_LEN) == 0;
		if (used)
			fprintf(out, " \"%s\"=%s", p->comm[i].comm,
				tsg_commset_match(s, p->comm[i].comm) ? "pass" : "drop");
	}
	fprintf(out, "; other comms (comm_default): %s\n",
		set_has_pos_str(s) ? "drop" : "pass");
}

static void explain_uid(FILE *out, const struct tsg_uidset *s)
{
	bool has_pos = false;

	fputs("    uid       ", out);
	if (!s->n) {
		fputs("any (uid_default and every uid entry)\n", out);
		return;
	}
	fputs("entries:", out);
	for (size_t i = 0; i < s->n; i++) {
		fprintf(out, " %" PRIu32 "=%s", s->v[i].uid,
			tsg_uidset_match(s, s->v[i].uid) ? "pass" : "drop");
		has_pos |= !s->v[i].neg;
	}
	fprintf(out, "; other uids (uid_default): %s\n", has_pos ? "drop" : "pass");
}

static void explain_condition(FILE *out, const struct tsg_rule *r)
{
	char b1[32], b2[32];

	fputs("    condition ", out);
	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		fputs("fires on each matching transition (from ", out);
		print_statemask(out, r->from);
		fputs(" to ", out);
		print_statemask(out, r->to);
		fputs(")", out);
		break;
	case TSG_KIND_TIME:
		fprintf(out, "timer at longer_than %s after entering %s, per socket;"
			     " resolves when it leaves",
			tsg_duration_format(r->longer_than_ns, b1, sizeof(b1)),
			state_name(r->state));
		break;
	case TSG_KIND_COUNT:
		fprintf(out, "count per key by ");
		print_fields(out, r->by);
		fprintf(out, " of sockets in %s; fires above %" PRIu64 ", resolves at <= %" PRIu64,
			state_name(r->state), r->threshold, r->resolve_below);
		break;
	case TSG_KIND_RATE:
		fprintf(out, "window %s per key by ",
			tsg_duration_format(r->per_ns, b1, sizeof(b1)));
		print_fields(out, r->by);
		fputs(" of transitions ", out);
		print_statemask(out, r->from);
		fputs("->", out);
		print_statemask(out, r->to);
		fprintf(out, "; fires above %" PRIu64, r->threshold);
		break;
	case TSG_KIND_QUEUE:
		if (r->queue_pct_x100)
			fprintf(out, "accept queue per listening socket, sampled; fires above "
				     "%u.%02u%% of its backlog",
				r->queue_pct_x100 / 100, r->queue_pct_x100 % 100);
		else
			fprintf(out, "accept queue per listening socket, sampled; fires above %" PRIu64,
				r->threshold);
		fputs(", resolves at or below", out);
		break;
	}
	if ((r->kind == TSG_KIND_COUNT || r->kind == TSG_KIND_RATE || r->kind == TSG_KIND_QUEUE) &&
	    r->for_ns)
		fprintf(out, "; for %s", tsg_duration_format(r->for_ns, b2, sizeof(b2)));
	if (r->cooldown_ns) {
		fprintf(out, "; cooldown %s", tsg_duration_format(r->cooldown_ns, b2, sizeof(b2)));
		if (r->kind == TSG_KIND_TRANSITION && r->by) {
			fputs(" by ", out);
			print_fields(out, r->by);
		}
	}
	fputc('\n', out);
}

static void explain_rule(FILE *out, const struct tsg_plan *p, const struct tsg_ruleset *rs,
			 size_t i)
{
	const struct tsg_rule *r = &rs->rules[i];
	const struct tsg_match *m = &r->match;
	unsigned slot = p->slot_of_rule[i];
	uint32_t uf = p->user_fields_of_rule[i];
	bool any_user = false;

	fprintf(out, "rule %zu \"%s\"", i, r->name ? r->name : "?");
	if (r->file)
		fprintf(out, " (%s:%d)", r->file, r->line);
	fputc('\n', out);
	if (!r->enabled) {
		fputs("  disabled: no slot bits, never evaluated\n\n", out);
		return;
	}
	fprintf(out, "  slot %u (bit 0x%016" PRIx64 "), %s rule\n", slot, slot_bit(slot),
		tsg_kind_title(r->kind));
	fputs("  kernel:\n", out);
	explain_trans(out, r);
	fputs("    family    ", out);
	if (!m->family_mask)
		fputs("any (family[0] and family[1])\n", out);
	else
		fprintf(out, "%s%s%s\n", (m->family_mask & 1) ? "ipv4 (family[0])" : "",
			(m->family_mask & 3) == 3 ? ", " : "",
			(m->family_mask & 2) ? "ipv6 (family[1])" : "");
	explain_ports(out, "lport", &m->lport, true);
	explain_ports(out, "rport", &m->rport, false);
	explain_lpm(out, "laddr", &m->laddr, p->laddr, p->nladdr);
	explain_lpm(out, "raddr", &m->raddr, p->raddr, p->nraddr);
	explain_comm(out, &m->comm, p);
	explain_uid(out, &m->uid);
	fputs("    cgroup    not in the kernel (all slots pass)\n", out);

	fputs("  user space:\n", out);
	if (m->comm.n && !comm_in_kernel(&m->comm)) {
		fputs("    comm      ", out);
		for (size_t j = 0; j < m->comm.n; j++) {
			const struct tsg_stritem *it = &m->comm.v[j];
			fprintf(out, "%s%s%s\"%s\"", j ? ", " : "", it->neg ? "!" : "",
				it->re ? "regex " : "", it->s ? it->s : "");
		}
		fputc('\n', out);
		any_user = true;
	}
	if (m->cgroup.n) {
		fputs("    cgroup    prefix ", out);
		for (size_t j = 0; j < m->cgroup.n; j++)
			fprintf(out, "%s%s%s", j ? ", " : "", m->cgroup.v[j].neg ? "!" : "",
				m->cgroup.v[j].s ? m->cgroup.v[j].s : "");
		fputc('\n', out);
		any_user = true;
	}
	any_user |= tsg_plan_explain_ident(out, m);
	if (m->lport.n && !tsg_portset_match(&m->lport, 0)) {
		fputs("    lport     re-checked (lport[0] passes every slot)\n", out);
		any_user = true;
	}
	{
		size_t nshare = 0;
		for (size_t j = 0; j < rs->nrules; j++)
			if (j != i && rs->rules[j].enabled && p->slot_of_rule[j] == slot)
				nshare++;
		if (nshare) {
			fprintf(out, "    shared    slot %u shared with %zu other rule%s:", slot,
				nshare, nshare > 1 ? "s" : "");
			size_t shown = 0;
			for (size_t j = 0; j < rs->nrules; j++)
				if (j != i && rs->rules[j].enabled && p->slot_of_rule[j] == slot &&
				    shown++ < EXPLAIN_MAX_LIST)
					fprintf(out, " %zu", j);
			if (shown > EXPLAIN_MAX_LIST)
				fputs(" ...", out);
			fputs("; transition and fields re-checked: ", out);
			print_fields(out, rule_fields(r));
			fputc('\n', out);
			any_user = true;
		}
	}
	if (!any_user)
		fputs("    match     decided in the kernel\n", out);
	fputs("    re-check  fields ", out);
	print_fields(out, uf);
	fputc('\n', out);
	explain_condition(out, r);
	fputc('\n', out);
}

void tsg_plan_explain(const struct tsg_plan *p, const struct tsg_ruleset *rs, FILE *out)
{
	size_t nen = 0, ntrans = 0, nlport = 0, nrport = 0;
	unsigned nslots = 0;

	fputs("# tsguard plan: kernel filter maps and user-space matching\n", out);
	fputs("# kernel bits = trans[from][to] & family & lport & rport & laddr(LPM) &"
	      " raddr(LPM) & comm & uid; an event crosses when bits != 0\n",
	      out);
	if (p->record_all)
		fputs("# --record: every bit is set in every map, every transition crosses\n", out);
	fputc('\n', out);
	for (size_t i = 0; rs && i < rs->nrules && i < p->nrules; i++) {
		explain_rule(out, p, rs, i);
		nen += rs->rules[i].enabled;
	}
	for (int s = 0; s < TSG_PLAN_SLOTS; s++)
		nslots += (p->all_slots >> s) & 1;
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			ntrans += p->trans[f][t] != 0;
	for (uint32_t i = 0; i < NPORTS; i++) {
		nlport += p->lport[i] != 0;
		nrport += p->rport[i] != 0;
	}
	fputs("summary:\n", out);
	fprintf(out, "  rules     %zu (%zu enabled) in %u slot%s, slots 0x%016" PRIx64 "\n",
		p->nrules, nen, nslots, nslots == 1 ? "" : "s", p->all_slots);
	fprintf(out, "  trans     array %dx%d, %zu non-zero pairs\n", TSG_NSTATES, TSG_NSTATES,
		ntrans);
	fprintf(out, "  family    array 2: ipv4 0x%016" PRIx64 ", ipv6 0x%016" PRIx64 "\n",
		p->family[0], p->family[1]);
	fprintf(out, "  lport     array 65536, %zu non-zero; lport[0] = 0x%016" PRIx64
		     " (connects report lport 0 at CLOSE->SYN_SENT: every slot)\n",
		nlport, p->lport[0]);
	fprintf(out, "  rport     array 65536, %zu non-zero\n", nrport);
	fprintf(out, "  laddr     LPM trie, %zu entries (incl. ::/0)\n", p->nladdr);
	fprintf(out, "  raddr     LPM trie, %zu entries (incl. ::/0)\n", p->nraddr);
	fprintf(out, "  comm      hash, %zu entries, default 0x%016" PRIx64 "\n", p->ncomm,
		p->comm_default);
	fprintf(out, "  uid       hash, %zu entries, default 0x%016" PRIx64 "\n", p->nuid,
		p->uid_default);
	fputs("  cgroup    user space only\n", out);
	fprintf(out, "  netns     user space; the rules name %zu inode%s and %zu name%s%s\n",
		p->netns.ninodes, p->netns.ninodes == 1 ? "" : "s", p->netns.nnames,
		p->netns.nnames == 1 ? "" : "s",
		p->netns.any ? ", and some rule matches any namespace" : "");
	fputs("  container, pod  user space only\n", out);
}

bool tsg_plan_wants_queue(const struct tsg_plan *p)
{
	return p && p->wants_queue;
}
