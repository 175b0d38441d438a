/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the reconcile scan (capture_priv.h). Every tw_scan_ms (at most
 * 1 s), when some rule needs what it finds, one iter/tcp pass:
 *   - light (the usual case): timewait and request sockets only. Followed
 *     sockets that are gone exit (-> CLOSE), an orphan's FIN_WAIT2 that got
 *     the peer's FIN becomes TIME_WAIT, new request sockets enter
 *     (CLOSE -> NEW_SYN_RECV) and gone ones leave (NEW_SYN_RECV -> CLOSE);
 *   - resync, the pass right after a loss (ring buffer or map full): every
 *     socket, compared with what the engine holds (tsg_capture_set_held):
 *     held sockets that are gone exit, those in another state are moved to
 *     the kernel's, and sockets in states rules want that the engine lacks
 *     enter as in the snapshot (owners from /proc). These corrections are
 *     marked snapshot = 1: they change what is held (count and time rules
 *     follow) but are not transitions (no transition or rate rule runs).
 * A pass runs iter/tcp in each network namespace it needs (capture_netns.c):
 * the light pass in those holding followed sockets (every namespace when a
 * rule wants NEW_SYN_RECV: a new request socket may be in any), the resync
 * in every one. rc_record takes each namespace's records in turn (they come
 * one namespace after the other); rc_finish runs once, after the last
 * namespace, since what the engine holds is not split by namespace.
 * docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_MS 1000

/* What the engine holds, during a resync: open addressing by socket id. */
struct held_ent {
	uint64_t sk; /* 0: empty slot */
	uint8_t state;
	bool seen;
};

struct held {
	struct held_ent *v;
	size_t cap, n;
	bool oom;
};

#define PASS_LISTENERS_MAX 4096

/* A listener of the pass with its owner: the owner of its request sockets. */
struct rc_listener {
	uint8_t laddr[16];
	uint16_t lport;
	struct tsg_sockinfo owner;
};

/* One scan pass. */
struct rc_pass {
	uint64_t t;
	bool resync;
	bool tw;     /* timewait sockets listed (always, unless the kernel reports their ends) */
	uint32_t ns; /* the namespace of the records being read */
	struct rc_listener *l; /* PASS_LISTENERS_MAX, of namespace ns */
	size_t nl;
	struct held h;
	struct cap_snap missing; /* sockets the engine lacks (resync) */
	uint64_t corrected, exits, entries;
	size_t records;
};

bool cap_plan_wants(const struct tsg_capture *c, uint8_t state)
{
	return tsg_plan_wants_state(c->maps_plan, state);
}

void tsg_capture_set_held(struct tsg_capture *c, tsg_held_foreach_fn foreach, void *ctx)
{
	if (!c)
		return;
	c->held_foreach = foreach;
	c->held_ctx = ctx;
}

/* ---- the engine's sockets ------------------------------------------------------ */

static struct held_ent *held_slot(struct held *h, uint64_t sk)
{
	size_t j = tsg_hash64(sk) & (h->cap - 1);

	while (h->v[j].sk && h->v[j].sk != sk)
		j = (j + 1) & (h->cap - 1);
	return &h->v[j];
}

static int held_grow(struct held *h)
{
	size_t ncap = h->cap ? h->cap * 2 : 4096;
	struct held_ent *old = h->v, *nv = calloc(ncap, sizeof(*nv));
	size_t ocap = h->cap;

	if (!nv)
		return -ENOMEM;
	h->v = nv;
	h->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].sk)
			*held_slot(h, old[i].sk) = old[i];
	free(old);
	return 0;
}

static void held_add(void *arg, uint64_t sk, uint8_t state)
{
	struct held *h = arg;
	struct held_ent *e;

	if (!sk || h->oom)
		return;
	if ((h->n + 1) * 2 > h->cap && held_grow(h)) {
		h->oom = true;
		return;
	}
	e = held_slot(h, sk);
	if (!e->sk)
		h->n++;
	e->sk = sk;
	e->state = state;
	e->seen = false;
}

static struct held_ent *held_find(struct held *h, uint64_t sk)
{
	struct held_ent *e;

	if (!h->cap)
		return NULL;
	e = held_slot(h, sk);
	return e->sk ? e : NULL;
}

/* ---- one pass: records ------------------------------------------------------------ */

/* Listeners come first in an iter/tcp pass (the listening hash, then the
 * established one, where request sockets are): keep their owners. */
static void rc_listener(struct tsg_capture *c, struct rc_pass *p, const struct tsg_bpf_iter_rec *r)
{
	struct rc_listener *l;

	if (!r->owner || p->nl >= PASS_LISTENERS_MAX ||
	    (!p->l && !(p->l = calloc(PASS_LISTENERS_MAX, sizeof(*p->l)))))
		return;
	l = &p->l[p->nl++];
	memcpy(l->laddr, r->laddr, 16);
	l->lport = r->lport;
	memset(&l->owner, 0, sizeof(l->owner));
	l->owner.have = TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
	l->owner.pid = r->pid;
	memcpy(l->owner.comm, r->comm, TSG_COMM_LEN);
	l->owner.comm[TSG_COMM_LEN - 1] = 0;
	l->owner.cgroup = cap_cgroup_path(c, r->cgroup_id);
	if (l->owner.cgroup)
		l->owner.have |= TSG_HAVE(TSG_SF_CGROUP);
}

static bool addr_any(const uint8_t a[16])
{
	static const uint8_t v4any[16] = {[10] = 0xff, [11] = 0xff};
	static const uint8_t v6any[16];

	return !memcmp(a, v4any, 16) || !memcmp(a, v6any, 16);
}

/* The owner of the listener a request socket came to (same port and address,
 * or a listener on any address), NULL when unknown. */
static const struct tsg_sockinfo *rc_listener_owner(const struct rc_pass *p,
						    const struct tsg_bpf_iter_rec *r)
{
	const struct tsg_sockinfo *any = NULL;

	for (size_t i = 0; i < p->nl; i++) {
		if (p->l[i].lport != r->lport)
			continue;
		if (!memcmp(p->l[i].laddr, r->laddr, 16))
			return &p->l[i].owner;
		if (addr_any(p->l[i].laddr))
			any = &p->l[i].owner;
	}
	return any;
}

/* A request socket not followed yet: it entered NEW_SYN_RECV. */
static bool rc_new_request(struct tsg_capture *c, const struct rc_pass *p,
			   const struct tsg_bpf_iter_rec *r)
{
	const struct tsg_sockinfo *owner;
	struct tsg_event ev;

	if (!cap_plan_wants(c, TSG_NEW_SYN_RECV))
		return false;
	cap_rec_event(c, r, p->t, &ev);
	ev.from = TSG_CLOSE;
	if (!(ev.info.have & TSG_HAVE(TSG_SF_PID)) && (owner = rc_listener_owner(p, r)))
		cap_owner_fill(&ev.info, owner);
	if (!c->maps_plan->record_all &&
	    !tsg_plan_eval(c->maps_plan, TSG_CLOSE, TSG_NEW_SYN_RECV, &ev.info))
		return false; /* no rule wants this one (port, address, listener's owner) */
	ev.since_ns = 0;      /* when it entered is known to within a scan period only */
	cap_deliver(c, &ev);
	cap_req_enter(c, &ev);
	return true;
}

/* Resync: the engine holds r's socket in another state: move it. */
static void rc_correct(struct tsg_capture *c, struct rc_pass *p, const struct tsg_bpf_iter_rec *r,
		       struct held_ent *h, bool followed)
{
	struct tsg_event ev;

	cap_rec_event(c, r, p->t, &ev);
	ev.from = h->state;
	ev.snapshot = 1;
	h->state = r->state;
	p->corrected++;
	cap_deliver(c, &ev);
	if (!followed && r->kind == TSG_BPF_ITER_TIMEWAIT)
		cap_tw_enter(c, &ev);
}

/* cap_iter_fn: one record of the pass. */
static void rc_record(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg)
{
	struct rc_pass *p = arg;
	bool followed = cap_tw_record(c, r, p->t);
	struct held_ent *h;

	p->records++;
	if (r->netns != p->ns) {
		/* the next namespace: its own listeners */
		p->ns = r->netns;
		p->nl = 0;
	}
	if (r->state == 0 || r->state >= TSG_NSTATES)
		return;
	if (r->kind == TSG_BPF_ITER_FULL && r->state == TSG_LISTEN)
		rc_listener(c, p, r);
	if (!followed && r->kind == TSG_BPF_ITER_REQUEST)
		followed = rc_new_request(c, p, r);
	if (!p->resync)
		return;
	h = held_find(&p->h, cap_rec_id(r));
	if (h) {
		h->seen = true;
		if (h->state != r->state)
			rc_correct(c, p, r, h, followed);
	} else if (!followed && cap_plan_wants(c, r->state)) {
		cap_snap_collect(c, r, &p->missing);
	}
}

/* End of the pass: what was not seen is gone; what was missing enters. */
static size_t rc_finish(struct tsg_capture *c, struct rc_pass *p)
{
	size_t gone = cap_tw_finish(c, p->t, p->tw);

	if (!p->resync)
		return gone;
	for (size_t i = 0; i < p->h.cap; i++) {
		struct held_ent *h = &p->h.v[i];
		struct tsg_event ev = {0};

		if (!h->sk || h->seen || h->state == TSG_CLOSE)
			continue;
		ev.ts_ns = p->t;
		ev.sk = h->sk;
		ev.from = h->state;
		ev.to = TSG_CLOSE;
		ev.snapshot = 1;
		p->exits++;
		cap_deliver(c, &ev);
	}
	p->entries = p->missing.n;
	cap_snap_deliver(c, &p->missing, p->t);
	return gone;
}

/* ---- scheduling ------------------------------------------------------------------ */

static bool rc_needed(const struct tsg_capture *c)
{
	return c->resync_pending || c->tw_n || c->req_n || cap_plan_wants(c, TSG_NEW_SYN_RECV);
}

/* A pass each period, not only each TW_PASS_MS: for request sockets, a
 * resync, or timewait sockets whose ends the kernel does not report. */
static bool rc_every_period(const struct tsg_capture *c)
{
	return c->resync_pending || c->req_n || cap_plan_wants(c, TSG_NEW_SYN_RECV) ||
	       (c->tw_n && !cap_twend_active(c));
}

/*
 * Where the kernel reports the ends of timewait sockets (capture_twend.c),
 * a pass lists them only this often, for what the kernel does not report:
 * a timewait socket taken over by a connection whose events do not cross,
 * one followed under rules the kernel filter no longer passes.
 */
#define TW_PASS_MS 10000

static uint64_t rc_period_ns(const struct tsg_capture *c)
{
	uint32_t ms = c->opts.tw_scan_ms && c->opts.tw_scan_ms < SCAN_MAX_MS ? c->opts.tw_scan_ms
									     : SCAN_MAX_MS;

	return (uint64_t)ms * TSG_NSEC_PER_MSEC;
}

/*
 * A pass costs about (namespaces scanned) x (TCP sockets of the whole host):
 * iter/tcp walks the host's socket hash for each namespace and keeps that
 * namespace's sockets. So the next pass is due after the period, or after
 * SCAN_BUDGET times as long as the last pass took, whichever is later: the
 * passes take at most 1/SCAN_BUDGET of one core, and what they find is
 * reported later on a host with many namespaces and sockets
 * (docs/performance.md). A loss still resyncs at once (cap_rc_lost).
 */
#define SCAN_BUDGET 40

void cap_rc_schedule(struct tsg_capture *c)
{
	uint64_t period = rc_period_ns(c);

	if (c->tw_scan_last_ns * SCAN_BUDGET > period)
		period = c->tw_scan_last_ns * SCAN_BUDGET;
	c->next_scan_ns = tsg_mono_ns() + period;
	if (!rc_every_period(c) && c->next_tw_pass_ns > c->next_scan_ns)
		c->next_scan_ns = c->next_tw_pass_ns;
}

int cap_rc_timeout(const struct tsg_capture *c, int timeout_ms)
{
	uint64_t t;
	int left;

	if (!rc_needed(c))
		return timeout_ms;
	t = tsg_mono_ns();
	left = t >= c->next_scan_ns ? 0 : (int)((c->next_scan_ns - t) / TSG_NSEC_PER_MSEC) + 1;
	return timeout_ms < 0 || left < timeout_ms ? left : timeout_ms;
}

void cap_rc_lost(struct tsg_capture *c)
{
	if (!c->held_foreach)
		return; /* nothing to compare with */
	c->resync_pending = true;
	c->next_scan_ns = 0;
}

static void rc_log_resync(const struct tsg_capture *c, const struct rc_pass *p, size_t nns,
			  uint64_t ns)
{
	log_warn("capture: resync after a loss (%" PRIu64 " so far): %zu sockets held, %" PRIu64
		 " moved to their state, %" PRIu64 " gone, %" PRIu64
		 " found in %zu network namespaces (%.1f ms)",
		 c->resyncs, p->h.n, p->corrected, p->exits, p->entries, nns, (double)ns / 1e6);
}

/* The pass over the namespaces it needs (see the top); how many. */
static int rc_iter(struct tsg_capture *c, struct rc_pass *p, size_t *nns)
{
	static uint32_t ns[TSG_BPF_NETNS_MAX];
	int err;

	cap_twend_iter_skip(c, !p->tw);
	if (p->resync || cap_plan_wants(c, TSG_NEW_SYN_RECV)) {
		*nns = (size_t)cap_netns_count(c);
		if (!*nns)
			*nns = 1; /* --netns host: ours */
		err = cap_netns_iter(c, NULL, 0, !p->resync, rc_record, p);
	} else {
		*nns = cap_tw_namespaces(c, ns);
		err = cap_netns_iter(c, ns, *nns, true, rc_record, p);
	}
	cap_twend_iter_skip(c, false);
	return err;
}

/* One pass; a resync when one is pending. */
static int rc_pass_run(struct tsg_capture *c)
{
	struct rc_pass p = {0};
	uint64_t t0 = tsg_mono_ns();
	size_t nns = 0, gone = 0;
	int err;

	p.resync = c->resync_pending;
	if (p.resync) {
		c->held_foreach(c->held_ctx, held_add, &p.h);
		if (p.h.oom) {
			log_err("capture: resync: out of memory; states stay as they are");
			p.resync = false;
		}
	}
	c->resync_pending = false;
	p.tw = !cap_twend_active(c) || p.resync || t0 >= c->next_tw_pass_ns;
	if (p.tw)
		c->next_tw_pass_ns = t0 + (uint64_t)TW_PASS_MS * TSG_NSEC_PER_MSEC;
	cap_tw_new_gen(c);
	p.t = tsg_mono_ns();
	err = rc_iter(c, &p, &nns);
	if (!err && p.missing.oom)
		err = -ENOMEM;
	if (!err) {
		gone = rc_finish(c, &p);
		c->tw_scan_last_ns = tsg_mono_ns() - t0;
		if (p.resync) {
			c->resyncs++;
			rc_log_resync(c, &p, nns, c->tw_scan_last_ns);
		} else {
			log_debug("capture: scan pass%s: %zu records in %zu network namespaces, "
				  "%zu followed sockets ended, %.2f ms",
				  p.tw ? "" : " (no timewait sockets)", p.records, nns, gone,
				  (double)c->tw_scan_last_ns / 1e6);
		}
	}
	free(p.l);
	free(p.h.v);
	free(p.missing.v);
	return err;
}

void cap_rc_scan_if_due(struct tsg_capture *c)
{
	if (!rc_needed(c) || tsg_mono_ns() < c->next_scan_ns)
		return;
	/* drain first: what was submitted before the pass is in the engine */
	ring_buffer__consume(c->rb);
	rc_pass_run(c);
	cap_rc_schedule(c);
}
