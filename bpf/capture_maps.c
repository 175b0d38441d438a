/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the plan -> the kernel filter maps (capture_priv.h). At startup
 * the maps get exactly the plan; a reload (tsg_capture_update_plan) goes
 * superset first: old|new everywhere, then exactly new. docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NPORTS	65536u
#define NTRANS	(TSG_NSTATES * TSG_NSTATES)
#define KEY_MAX 32 /* the largest key of a keyed map */

static int map_put(int fd, const void *key, const void *val, const char *what)
{
	if (bpf_map_update_elem(fd, key, val, BPF_ANY)) {
		int err = -errno;

		log_err("capture: cannot write BPF map %s: %s%s", what, strerror(-err),
			err == -E2BIG || err == -ENOSPC ? " (plan too large for the map)" : "");
		return err;
	}
	return 0;
}

static int array_put_all(int fd, const uint64_t *v, uint32_t n, const char *what)
{
	uint32_t *keys = malloc(n * sizeof(*keys));
	uint32_t count = n;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		keys[i] = i;
	if (bpf_map_update_batch(fd, keys, v, &count, NULL)) {
		/* older kernels: one by one */
		for (uint32_t i = 0; i < n && !err; i++)
			err = map_put(fd, &keys[i], &v[i], what);
	}
	free(keys);
	return err;
}

/* An array map: w[i] (| old[i] when old is given) at every index. */
static int array_write(int fd, const uint64_t *w, const uint64_t *old, uint32_t n, uint64_t *tmp,
		       const char *what)
{
	for (uint32_t i = 0; i < n; i++)
		tmp[i] = w[i] | (old ? old[i] : 0);
	return array_put_all(fd, tmp, n, what);
}

/*
 * A hash or LPM map: the keys a plan writes into it (key i of count), and
 * the value the kernel yields for a key in a plan (an LPM key: the bits of
 * its longest match, so old|new keeps every lookup a superset of both).
 */
struct keyed_map {
	const char *what;
	int fd;
	size_t key_size; /* <= KEY_MAX */
	bool raddr;	 /* LPM: the raddr side, else laddr */
	size_t (*count)(const struct keyed_map *m, const struct tsg_plan *p);
	void (*key)(const struct keyed_map *m, const struct tsg_plan *p, size_t i, void *key);
	uint64_t (*value)(const struct keyed_map *m, const struct tsg_plan *p, const void *key);
};

static void keyed_key(const struct keyed_map *m, const struct tsg_plan *p, size_t i, void *key)
{
	memset(key, 0, KEY_MAX);
	m->key(m, p, i, key);
}

static bool keyed_has(const struct keyed_map *m, const struct tsg_plan *p, const void *key)
{
	unsigned char k[KEY_MAX];

	for (size_t i = 0; i < m->count(m, p); i++) {
		keyed_key(m, p, i, k);
		if (!memcmp(k, key, m->key_size))
			return true;
	}
	return false;
}

/*
 * Writes every key of `w` (and in union mode of `old`) with its value in w
 * (| in old); in exact mode then deletes the keys of `old` that w has not.
 */
static int keyed_write(const struct keyed_map *m, const struct tsg_plan *w,
		       const struct tsg_plan *old, bool union_with)
{
	unsigned char key[KEY_MAX];
	int err;

	for (int pass = 0; pass < (union_with ? 2 : 1); pass++) {
		const struct tsg_plan *src = pass ? old : w;

		for (size_t i = 0; i < m->count(m, src); i++) {
			uint64_t v;

			keyed_key(m, src, i, key);
			v = m->value(m, w, key) | (union_with ? m->value(m, old, key) : 0);
			err = map_put(m->fd, key, &v, m->what);
			if (err)
				return err;
		}
	}
	if (union_with || !old)
		return 0;
	for (size_t i = 0; i < m->count(m, old); i++) {
		keyed_key(m, old, i, key);
		if (!keyed_has(m, w, key))
			bpf_map_delete_elem(m->fd, key);
	}
	return 0;
}

static size_t lpm_count(const struct keyed_map *m, const struct tsg_plan *p)
{
	return m->raddr ? p->nraddr : p->nladdr;
}

static void lpm_key(const struct keyed_map *m, const struct tsg_plan *p, size_t i, void *key)
{
	const struct tsg_plan_lpm *e = m->raddr ? &p->raddr[i] : &p->laddr[i];
	struct tsg_bpf_lpm_key k = {.prefixlen = e->plen};

	memcpy(k.addr, e->addr, 16);
	memcpy(key, &k, sizeof(k));
}

static uint64_t lpm_value(const struct keyed_map *m, const struct tsg_plan *p, const void *key)
{
	struct tsg_bpf_lpm_key k;

	memcpy(&k, key, sizeof(k));
	return m->raddr ? tsg_plan_lpm_bits(p->raddr, p->nraddr, k.addr, k.prefixlen)
			: tsg_plan_lpm_bits(p->laddr, p->nladdr, k.addr, k.prefixlen);
}

static size_t comm_count(const struct keyed_map *m, const struct tsg_plan *p)
{
	(void)m;
	return p->ncomm;
}

static void comm_key(const struct keyed_map *m, const struct tsg_plan *p, size_t i, void *key)
{
	(void)m;
	memcpy(key, p->comm[i].comm, strnlen(p->comm[i].comm, TSG_COMM_LEN - 1));
}

static uint64_t comm_value(const struct keyed_map *m, const struct tsg_plan *p, const void *key)
{
	(void)m;
	return tsg_plan_comm_bits(p, key);
}

static size_t uid_count(const struct keyed_map *m, const struct tsg_plan *p)
{
	(void)m;
	return p->nuid;
}

static void uid_key(const struct keyed_map *m, const struct tsg_plan *p, size_t i, void *key)
{
	(void)m;
	memcpy(key, &p->uid[i].uid, sizeof(uint32_t));
}

static uint64_t uid_value(const struct keyed_map *m, const struct tsg_plan *p, const void *key)
{
	uint32_t u;

	(void)m;
	memcpy(&u, key, sizeof(u));
	return tsg_plan_uid_bits(p, u);
}

static int arrays_write(struct tsguard_bpf *s, const struct tsg_plan *w, const struct tsg_plan *o)
{
	uint64_t *tmp = malloc(NPORTS * sizeof(uint64_t));
	int err;

	if (!tmp)
		return -ENOMEM;
	err = array_write(bpf_map__fd(s->maps.trans), &w->trans[0][0], o ? &o->trans[0][0] : NULL,
			  NTRANS, tmp, "trans");
	if (!err)
		err = array_write(bpf_map__fd(s->maps.family), w->family, o ? o->family : NULL, 2,
				  tmp, "family");
	if (!err)
		err = array_write(bpf_map__fd(s->maps.lport), w->lport, o ? o->lport : NULL, NPORTS,
				  tmp, "lport");
	if (!err)
		err = array_write(bpf_map__fd(s->maps.rport), w->rport, o ? o->rport : NULL, NPORTS,
				  tmp, "rport");
	free(tmp);
	return err;
}

/* Every port has the bits of port 0: no rule names a port (a look-up of a
 * 512 KiB array, a cache miss at a random port, saved per transition). */
static bool ports_uniform(const uint64_t *bits)
{
	for (size_t i = 1; i < NPORTS; i++)
		if (bits[i] != bits[0])
			return false;
	return true;
}

/* The maps of a plan the kernel need not look up (TSG_BPF_SKIP_*): a trie
 * holding only ::/0 (the plan always has it), an empty comm or uid map, a
 * port array whose entries are all the same. */
static uint32_t plan_skips(const struct tsg_plan *p)
{
	uint32_t skip = 0;

	if (p->nladdr == 1 && p->laddr[0].plen == 0)
		skip |= TSG_BPF_SKIP_LADDR;
	if (p->nraddr == 1 && p->raddr[0].plen == 0)
		skip |= TSG_BPF_SKIP_RADDR;
	if (!p->ncomm)
		skip |= TSG_BPF_SKIP_COMM;
	if (!p->nuid)
		skip |= TSG_BPF_SKIP_UID;
	if (ports_uniform(p->lport))
		skip |= TSG_BPF_SKIP_LPORT;
	if (ports_uniform(p->rport))
		skip |= TSG_BPF_SKIP_RPORT;
	return skip;
}

/*
 * After the maps hold `w` (| `old`): a skip is set only when it holds for
 * what the maps hold (both plans in union mode), its value first; the maps
 * were written before, so a skip cleared here was a superset until now.
 */
static void skips_write(struct tsguard_bpf *s, const struct tsg_plan *w, const struct tsg_plan *old)
{
	uint32_t skip = plan_skips(w) & (old ? plan_skips(old) : ~0u);

	if (skip & TSG_BPF_SKIP_LADDR)
		s->bss->cfg.laddr_all = w->laddr[0].bits | (old ? old->laddr[0].bits : 0);
	if (skip & TSG_BPF_SKIP_RADDR)
		s->bss->cfg.raddr_all = w->raddr[0].bits | (old ? old->raddr[0].bits : 0);
	if (skip & TSG_BPF_SKIP_LPORT)
		s->bss->cfg.lport_all = w->lport[0] | (old ? old->lport[0] : 0);
	if (skip & TSG_BPF_SKIP_RPORT)
		s->bss->cfg.rport_all = w->rport[0] | (old ? old->rport[0] : 0);
	__atomic_store_n(&s->bss->cfg.skip, skip, __ATOMIC_SEQ_CST);
}

/*
 * Writes `w` into the maps. In `union_with` mode (phase 1 of an update) each
 * entry gets old|new so that every intermediate state is a superset of both
 * plans; `old` keys missing from `w` are deleted only in the exact phase.
 */
static int maps_write(struct tsg_capture *c, const struct tsg_plan *w, const struct tsg_plan *old,
		      bool union_with)
{
	struct tsguard_bpf *s = c->skel;
	const size_t lpm_size = sizeof(struct tsg_bpf_lpm_key);
	const struct keyed_map keyed[] = {
	    {"laddr", bpf_map__fd(s->maps.laddr), lpm_size, false, lpm_count, lpm_key, lpm_value},
	    {"raddr", bpf_map__fd(s->maps.raddr), lpm_size, true, lpm_count, lpm_key, lpm_value},
	    {"comm", bpf_map__fd(s->maps.comm), TSG_COMM_LEN, false, comm_count, comm_key,
	     comm_value},
	    {"uid", bpf_map__fd(s->maps.uid), sizeof(uint32_t), false, uid_count, uid_key,
	     uid_value},
	};
	int err = arrays_write(s, w, union_with ? old : NULL);

	for (size_t i = 0; i < sizeof(keyed) / sizeof(keyed[0]) && !err; i++)
		err = keyed_write(&keyed[i], w, old, union_with);
	if (err)
		return err;
	s->bss->cfg.comm_default = w->comm_default | (union_with ? old->comm_default : 0);
	s->bss->cfg.uid_default = w->uid_default | (union_with ? old->uid_default : 0);
	s->bss->cfg.record_all = w->record_all || (union_with && old->record_all);
	skips_write(s, w, union_with ? old : NULL);
	return 0;
}

_Static_assert(sizeof(struct tsg_bpf_lpm_key) <= KEY_MAX && TSG_COMM_LEN <= KEY_MAX, "key size");

static void bump_gen(struct tsg_capture *c)
{
	__atomic_store_n(&c->skel->bss->cfg.gen, c->skel->bss->cfg.gen + 1, __ATOMIC_SEQ_CST);
}

static bool gate_open(const struct tsg_plan *p);

int cap_maps_init(struct tsg_capture *c, const struct tsg_plan *plan)
{
	int err = tsg_plan_dup(plan, &c->maps_plan);

	if (err)
		return err;
	err = maps_write(c, c->maps_plan, NULL, false);
	if (err)
		return err;
	bump_gen(c); /* gen 1: cached verdicts (gen 0) are stale */
	cap_netns_allow_refresh(c);
	cap_cgate_init(c);
	return 0;
}

int tsg_capture_update_plan(struct tsg_capture *c, const struct tsg_plan *plan)
{
	struct tsg_plan *nk;
	int err;

	if (!c || !plan)
		return -EINVAL;
	err = tsg_plan_dup(plan, &nk);
	if (err)
		return err;
	/* the namespace gate: open now if the new plan wants every namespace;
	 * else its namespaces are added below, after the other maps */
	if (gate_open(nk))
		__atomic_store_n(&c->skel->bss->netns_filter, 0, __ATOMIC_SEQ_CST);
	cap_cgate_begin(c, nk); /* the cgroup gate: every verdict stale */
	/* phase 1: old|new everywhere, then invalidate cached verdicts */
	err = maps_write(c, nk, c->maps_plan, true);
	if (!err) {
		bump_gen(c);
		/* phase 2: exactly new (each step still a superset of new) */
		err = maps_write(c, nk, c->maps_plan, false);
	}
	if (err) {
		/* the maps hold a superset of the old plan: still correct for it */
		log_err("capture: kernel filter update failed (%s); keeping a superset filter",
			strerror(-err));
		tsg_plan_free(nk);
		return err;
	}
	bump_gen(c);
	tsg_plan_free(c->maps_plan);
	c->maps_plan = nk;
	cap_netns_allow_refresh(c);
	cap_cgate_apply(c);
	log_debug("capture: kernel filter updated (generation %u)", c->skel->bss->cfg.gen);
	return 0;
}

/* ---- the namespace gate ---------------------------------------------------- */

/* Every namespace passes: some rule names none (or --record wants all). */
static bool gate_open(const struct tsg_plan *p)
{
	const struct tsg_plan_netns *ns = p ? tsg_plan_netns(p) : NULL;

	return !ns || ns->any || (!ns->ninodes && !ns->nnames);
}

static void add_inode(uint32_t *out, size_t *n, uint32_t ino)
{
	for (size_t j = 0; j < *n; j++)
		if (out[j] == ino)
			return;
	if (ino && *n < TSG_BPF_NETNS_MAX)
		out[(*n)++] = ino;
}

/* The inodes the plan's namespaces have now (a NAME: by /run/netns now). */
static size_t gate_inodes(struct tsg_capture *c, const struct tsg_plan *p, uint32_t *out)
{
	const struct tsg_plan_netns *ns = tsg_plan_netns(p);
	size_t n = 0;

	for (size_t i = 0; i < ns->ninodes; i++)
		add_inode(out, &n, ns->inodes[i]);
	for (size_t i = 0; i < ns->nnames; i++)
		add_inode(out, &n, cap_netns_lookup_name(c, ns->names[i]));
	return n;
}

static bool in_set(const uint32_t *v, size_t n, uint32_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/*
 * The gate netns_allow from the plan the maps hold, superset first: new
 * entries are written before the gate is closed and stale ones deleted only
 * after, so no state of the map drops what the old or the new plan wants.
 */
void cap_netns_allow_refresh(struct tsg_capture *c)
{
	static uint32_t want[TSG_BPF_NETNS_MAX];
	const uint64_t one = 1;
	size_t n = 0, keep = 0;
	int fd;

	if (!c->skel)
		return;
	fd = bpf_map__fd(c->skel->maps.netns_allow);
	if (gate_open(c->maps_plan)) {
		__atomic_store_n(&c->skel->bss->netns_filter, 0, __ATOMIC_SEQ_CST);
	} else {
		n = gate_inodes(c, c->maps_plan, want);
		for (size_t i = 0; i < n; i++)
			if (!in_set(c->netns_allowed, c->netns_allowed_n, want[i]) &&
			    map_put(fd, &want[i], &one, "netns_allow") == 0 &&
			    c->netns_allowed_n < TSG_BPF_NETNS_MAX)
				c->netns_allowed[c->netns_allowed_n++] = want[i];
		__atomic_store_n(&c->skel->bss->netns_filter, 1, __ATOMIC_SEQ_CST);
	}
	for (size_t i = 0; i < c->netns_allowed_n; i++) {
		if (in_set(want, n, c->netns_allowed[i]))
			c->netns_allowed[keep++] = c->netns_allowed[i];
		else
			bpf_map_delete_elem(fd, &c->netns_allowed[i]);
	}
	c->netns_allowed_n = keep;
}
