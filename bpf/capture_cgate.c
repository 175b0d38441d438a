// SPDX-License-Identifier: MIT
/*
 * tsguard: the cgroup gate (docs/kernel.md, "The cgroup gate"). While every
 * enabled rule names containers or pods (tsg_plan_cgroup_gate), the kernel
 * drops the transitions of sockets whose cgroup user space denied. The
 * kernel asks about each cgroup it meets without a verdict of the current
 * generation (a TSG_BPF_F_CGROUP record; the cgroup passes meanwhile), and
 * the answer is decided here once: the container and pod its path names
 * (the same the matcher sees), and whether some rule can match them.
 */
#include "capture_priv.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define RETRY_NS    TSG_NSEC_PER_SEC
#define RETRY_TRIES 5 /* a path unknown after that many walks: the cgroup is gone */

static uint32_t gen_now(const struct tsg_capture *c)
{
	return __atomic_load_n(&c->skel->bss->cg_gen, __ATOMIC_SEQ_CST);
}

void cap_cgate_init(struct tsg_capture *c)
{
	memset(&c->cgate, 0, sizeof(c->cgate));
	__atomic_store_n(&c->skel->bss->cg_gen, 1, __ATOMIC_SEQ_CST);
	cap_cgate_apply(c);
}

void cap_cgate_begin(struct tsg_capture *c, const struct tsg_plan *next)
{
	/* every verdict stale: every cgroup passes until decided for `next` */
	__atomic_store_n(&c->skel->bss->cg_gen, gen_now(c) + 1, __ATOMIC_SEQ_CST);
	if (!tsg_plan_cgroup_gate(next))
		__atomic_store_n(&c->skel->bss->cg_filter, 0, __ATOMIC_SEQ_CST);
	c->cgate.nretry = 0;
}

void cap_cgate_apply(struct tsg_capture *c)
{
	__atomic_store_n(&c->skel->bss->cg_filter, tsg_plan_cgroup_gate(c->maps_plan) ? 1 : 0,
			 __ATOMIC_SEQ_CST);
}

/*
 * The verdict on cgroup id, written into cg_verdict: the container and pod
 * of its path as the matcher sees them (cap_cgroup_ident, parsed once per
 * cgroup). False when they are not known (yet): it stays pending.
 */
static bool decide(struct tsg_capture *c, uint64_t id, uint32_t gen)
{
	struct tsg_bpf_cg_verdict v = {.gen = gen};
	struct tsg_sockinfo in = {0};
	bool allow;

	if (!cap_cgroup_ident(c, id, &in) || !(in.have & TSG_HAVE(TSG_SF_CONTAINER)))
		return false;
	allow = tsg_plan_cgroup_allows(c->maps_plan, in.container, in.pod);
	v.verdict = allow ? TSG_BPF_CG_ALLOW : TSG_BPF_CG_DENY;
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.cg_verdict), &id, &v, BPF_ANY) < 0) {
		c->cgate.write_failed++; /* stays pending: it passes */
		return true;
	}
	if (allow)
		c->cgate.allowed++;
	else
		c->cgate.denied++;
	if (c->verbose)
		log_debug("capture: cgroup %" PRIu64 " (%s): %s", id, in.cgroup,
			  allow ? "watched" : "no rule names its container or pod");
	return true;
}

void cap_cgate_ask(struct tsg_capture *c, uint64_t id, uint32_t gen)
{
	/* another generation: the kernel asks again; no gate: nothing to say */
	if (!id || gen != gen_now(c) || !tsg_plan_cgroup_gate(c->maps_plan))
		return;
	if (decide(c, id, gen))
		return;
	/* made after the last walk of the cgroup tree: retried (it passes) */
	if (c->cgate.nretry < CAP_CG_RETRY_MAX) {
		c->cgate.retry[c->cgate.nretry].id = id;
		c->cgate.retry[c->cgate.nretry].tries = 0;
		c->cgate.nretry++;
		if (!c->cgate.next_retry_ns)
			c->cgate.next_retry_ns = tsg_mono_ns() + RETRY_NS;
	} else {
		c->cgate.unresolved++;
	}
}

void cap_cgate_tick(struct tsg_capture *c)
{
	size_t keep = 0;
	uint32_t gen;

	if (!c->cgate.nretry || tsg_mono_ns() < c->cgate.next_retry_ns)
		return;
	gen = gen_now(c);
	for (size_t i = 0; i < c->cgate.nretry; i++) {
		struct cap_cg_retry r = c->cgate.retry[i];

		if (decide(c, r.id, gen))
			continue;
		if (++r.tries < RETRY_TRIES)
			c->cgate.retry[keep++] = r;
		else
			c->cgate.unresolved++; /* gone: its entry stays pending, it passes */
	}
	c->cgate.nretry = keep;
	c->cgate.next_retry_ns = keep ? tsg_mono_ns() + RETRY_NS : 0;
}
