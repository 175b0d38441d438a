/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the capture acting on sockets (capture.h): closing one socket
 * (tsg_capture_destroy) and sampling the accept queues of listening sockets
 * (queue rules). Both are iter/tcp programs (tsguard_act.bpf.h) run in the
 * socket's network namespace through capture_netns.c. docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct tsg_bpf_queue_rec) == 88, "tsg_bpf_queue_rec layout");

#define QUEUE_EVERY_NS	(TSG_NSEC_PER_SEC / 2) /* "at least every second" */
#define QUEUE_BASES_MAX 65536u		       /* listeners whose first drop count is kept */
#define QUEUE_BUCKETS	1024u

/* A listener's drop count when tsguard first sampled it. */
struct q_base {
	struct q_base *next;
	uint64_t cookie;
	uint32_t drops0;
	uint32_t seen; /* the pass that last saw it */
};

struct cap_queue {
	struct q_base *b[QUEUE_BUCKETS];
	size_t n;
	uint32_t pass;
	uint64_t next_ns;
	uint64_t samples, full; /* delivered; listeners beyond QUEUE_BASES_MAX */
	bool full_logged;
	bool primed; /* a pass has run: a listener first seen later is new */
};

/* ---- destroy --------------------------------------------------------------------- */

static void destroy_none(struct tsg_capture *c, const void *rec, void *arg)
{
	(void)c;
	(void)rec;
	(void)arg;
}

int tsg_capture_destroy(struct tsg_capture *c, uint64_t cookie, uint32_t netns)
{
	struct cap_iter_spec sp = {.link = c ? c->destroy_link : NULL, .fn = destroy_none};
	int err, res;

	if (!c || !cookie)
		return -EINVAL;
	if (!c->destroy_link)
		return -EOPNOTSUPP;
	if (!netns)
		netns = cap_netns_self(c);
	if (!cap_netns_known(c, netns)) {
		cap_netns_discover(c); /* a namespace made since the last discovery */
		if (!cap_netns_known(c, netns))
			return -ENOENT; /* gone, and its sockets with it */
	}
	c->skel->bss->destroy_result = TSG_BPF_DESTROY_NONE;
	c->skel->bss->destroy_cookie = cookie;
	err = cap_netns_iter_spec(c, &netns, 1, &sp);
	c->skel->bss->destroy_cookie = 0;
	res = c->skel->bss->destroy_result;
	if (res == TSG_BPF_DESTROY_DONE)
		return 0;
	if (res < 0)
		return res; /* bpf_sock_destroy's error, or no such kfunc */
	return err ? err : -ENOENT;
}

/* ---- queue samples ------------------------------------------------------------------ */

/* The drops of listener `cookie` since it was first sampled. */
static uint64_t queue_drops(struct tsg_capture *c, uint64_t cookie, uint32_t drops)
{
	struct cap_queue *q = c->queue;
	struct q_base **pp = &q->b[tsg_hash64(cookie) & (QUEUE_BUCKETS - 1)], *e;

	for (e = *pp; e; e = e->next)
		if (e->cookie == cookie)
			break;
	if (!e) {
		if (q->n >= QUEUE_BASES_MAX || !(e = calloc(1, sizeof(*e)))) {
			q->full++;
			log_warn_once(q->full_logged,
				      "capture: more than %u listening sockets: the drops of "
				      "the others are reported as 0",
				      QUEUE_BASES_MAX);
			return 0;
		}
		e->cookie = cookie;
		/* a listener made since the last pass counted its drops (sk_drops
		 * starts at 0) while tsguard watched: all of them are its own;
		 * one that predates the first pass counts from now */
		e->drops0 = q->primed ? 0 : drops;
		e->next = *pp;
		*pp = e;
		q->n++;
	}
	e->seen = q->pass;
	return (uint32_t)(drops - e->drops0); /* sk_drops wraps at 2^32 */
}

/* Listeners not seen in this pass are closed: forget their base (all of
 * them with `all`: no queue rule any more, the next pass starts afresh). */
static void queue_sweep(struct cap_queue *q, bool all)
{
	for (size_t b = 0; b < QUEUE_BUCKETS; b++)
		for (struct q_base **pp = &q->b[b]; *pp;) {
			struct q_base *e = *pp;

			if (!all && e->seen == q->pass) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e);
			q->n--;
		}
}

static void queue_rec(struct tsg_capture *c, const void *rec, void *arg)
{
	static const uint8_t none[16];
	struct tsg_bpf_queue_rec r;
	struct tsg_event ev = {0};

	memcpy(&r, rec, sizeof(r));
	ev.ts_ns = *(const uint64_t *)arg;
	ev.kind = TSG_EV_QUEUE;
	ev.from = ev.to = TSG_LISTEN;
	ev.sk = r.cookie;
	cap_info_from_bpf(&ev.info, r.laddr, none, r.lport, 0, r.family);
	/* a listener has no peer: raddr/rport are not fields of it */
	ev.info.have &= ~(TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_RPORT));
	ev.info.uid = r.uid;
	ev.info.have |= TSG_HAVE(TSG_SF_UID);
	cap_info_netns(c, &ev.info, r.netns);
	if (r.pid) { /* a listener made while tsguard watches: its storage's owner */
		ev.info.pid = r.pid;
		memcpy(ev.info.comm, r.comm, TSG_COMM_LEN);
		ev.info.comm[TSG_COMM_LEN - 1] = 0;
		ev.info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
	}
	cap_owners_apply(c, &ev);
	cap_info_cgroup(c, &ev.info, r.sk_cgroup);
	ev.q.queue = r.backlog;
	ev.q.backlog = r.max_backlog;
	ev.q.drops = queue_drops(c, r.cookie, r.drops);
	c->queue->samples++;
	cap_deliver(c, &ev);
}

/* One pass over the listeners of every namespace, when due and wanted. */
void cap_queue_tick(struct tsg_capture *c)
{
	struct cap_queue *q = c->queue;
	uint64_t t = tsg_mono_ns();
	struct cap_iter_spec sp = {.link = c->queue_link,
				   .rec_size = sizeof(struct tsg_bpf_queue_rec),
				   .fn = queue_rec,
				   .arg = &t,
				   .stops = true};

	if (!q || !c->queue_link)
		return;
	if (!tsg_plan_wants_queue(c->maps_plan)) {
		if (q->primed)
			queue_sweep(q, true);
		q->primed = false;
		return;
	}
	if (t < q->next_ns)
		return;
	sp.tail = &c->skel->bss->queue_last;
	sp.tail_ok = &c->skel->bss->queue_last_ok;
	q->next_ns = t + QUEUE_EVERY_NS;
	q->pass++;
	cap_twend_lis_stop(c, true);
	(void)cap_netns_iter_spec(c, NULL, 0, &sp);
	cap_twend_lis_stop(c, false);
	queue_sweep(q, false);
	q->primed = true;
}

int cap_queue_timeout(const struct tsg_capture *c, int timeout_ms)
{
	const struct cap_queue *q = c->queue;
	uint64_t t, left;

	if (!q || !c->queue_link || !tsg_plan_wants_queue(c->maps_plan))
		return timeout_ms;
	t = tsg_mono_ns();
	left = q->next_ns > t ? (q->next_ns - t) / 1000000 + 1 : 0;
	return timeout_ms < 0 || (uint64_t)timeout_ms > left ? (int)left : timeout_ms;
}

/* ---- life ---------------------------------------------------------------------------- */

int cap_act_init(struct tsg_capture *c)
{
	c->destroy_link = bpf_program__attach_iter(c->skel->progs.tsg_iter_destroy, NULL);
	if (!c->destroy_link)
		log_warn("capture: the socket-closing iterator did not attach (%s): the destroy "
			 "action fails",
			 strerror(errno));
	c->queue_link = bpf_program__attach_iter(c->skel->progs.tsg_iter_queue, NULL);
	if (!c->queue_link)
		log_warn("capture: the listener iterator did not attach (%s): queue rules get "
			 "no samples",
			 strerror(errno));
	c->queue = calloc(1, sizeof(*c->queue));
	return c->queue ? 0 : -ENOMEM;
}

void cap_act_free(struct tsg_capture *c)
{
	struct cap_queue *q = c->queue;

	bpf_link__destroy(c->destroy_link);
	bpf_link__destroy(c->queue_link);
	c->destroy_link = c->queue_link = NULL;
	if (!q)
		return;
	for (size_t b = 0; b < QUEUE_BUCKETS; b++)
		for (struct q_base *e = q->b[b], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(q);
	c->queue = NULL;
}
