/* SPDX-License-Identifier: MIT */
/*
 * tsguard: TIME_WAIT tracking (capture_priv.h). The kernel reports the entry
 * into TIME_WAIT (derived from ->CLOSE); the exit has no tracepoint. A
 * socket that entered TIME_WAIT is followed here by its 4-tuple, and a
 * periodic iter/tcp scan over the timewait sockets reports TIME_WAIT ->
 * CLOSE for those that no longer exist. docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A socket in TIME_WAIT, followed until its timewait socket disappears. */
struct tw_entry {
	struct tw_entry *next;
	uint64_t cookie;	  /* the socket id used for its events */
	uint64_t since_ns;	  /* entered TIME_WAIT */
	uint32_t seen;		  /* scan generation that last saw it */
	struct tsg_sockinfo info; /* its 4-tuple, and all its events knew */
};

uint64_t cap_tuple_hash(uint32_t netns, const uint8_t la[16], const uint8_t ra[16], uint16_t lp,
			uint16_t rp)
{
	uint64_t w[5], h = 0;

	memcpy(&w[0], la, 16);
	memcpy(&w[2], ra, 16);
	w[4] = (uint64_t)netns << 32 | (uint64_t)lp << 16 | rp;
	for (int i = 0; i < 5; i++)
		h = tsg_hash64(h ^ w[i]);
	return h;
}

static uint64_t tw_bucket(const struct tsg_capture *c, uint32_t ns, const uint8_t *la,
			  const uint8_t *ra, uint16_t lp, uint16_t rp)
{
	return cap_tuple_hash(ns, la, ra, lp, rp) & (c->tw_nbuckets - 1);
}

/* The link to the entry of the 4-tuple in bucket b (or the chain's end).
 * The same 4-tuple in two namespaces is two sockets: netns is in the key. */
static struct tw_entry **tw_find_in(struct tsg_capture *c, uint64_t b, uint32_t ns,
				    const uint8_t *la, const uint8_t *ra, uint16_t lp, uint16_t rp)
{
	struct tw_entry **pp = &c->tw[b];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->info.lport == lp && (*pp)->info.rport == rp && (*pp)->info.netns == ns &&
		    !memcmp((*pp)->info.laddr, la, 16) && !memcmp((*pp)->info.raddr, ra, 16))
			return pp;
	return pp;
}

static struct tw_entry **tw_find(struct tsg_capture *c, uint32_t ns, const uint8_t *la,
				 const uint8_t *ra, uint16_t lp, uint16_t rp)
{
	return tw_find_in(c, tw_bucket(c, ns, la, ra, lp, rp), ns, la, ra, lp, rp);
}

static struct tw_entry **tw_find_info(struct tsg_capture *c, const struct tsg_sockinfo *in)
{
	return tw_find(c, in->netns, in->laddr, in->raddr, in->lport, in->rport);
}

int cap_tw_init(struct tsg_capture *c)
{
	c->tw_nbuckets = cap_pow2_at_least(c->opts.max_sockets / 2, 1024);
	c->tw = calloc(c->tw_nbuckets, sizeof(*c->tw));
	return c->tw ? 0 : -ENOMEM;
}

void cap_tw_free(struct tsg_capture *c)
{
	if (c->tw)
		for (size_t b = 0; b < c->tw_nbuckets; b++)
			for (struct tw_entry *e = c->tw[b], *n; e; e = n) {
				n = e->next;
				free(e);
			}
	free(c->tw);
	c->tw = NULL;
	c->tw_n = 0;
}

/* Unlinks *pp and reports its socket's TIME_WAIT -> CLOSE at ts. */
static void tw_exit(struct tsg_capture *c, struct tw_entry **pp, uint64_t ts)
{
	struct tw_entry *e = *pp;
	struct tsg_event ev = {0};

	*pp = e->next;
	c->tw_n--;
	ev.ts_ns = ts;
	ev.sk = e->cookie;
	ev.from = TSG_TIME_WAIT;
	ev.to = TSG_CLOSE;
	ev.since_ns = e->since_ns;
	ev.info = e->info;
	c->tw_exited++;
	cap_deliver(c, &ev);
	free(e);
}

void cap_tw_enter(struct tsg_capture *c, const struct tsg_event *ev)
{
	const struct tsg_sockinfo *in = &ev->info;
	struct tw_entry **pp = tw_find_info(c, in), *e = *pp;

	c->tw_entered++;
	if (e) {
		/* the 4-tuple was reused: the old timewait socket is gone */
		tw_exit(c, pp, ev->ts_ns);
		pp = tw_find_info(c, in);
	}
	if (c->tw_n >= c->opts.max_sockets || !(e = calloc(1, sizeof(*e)))) {
		c->tw_full++;
		if (c->tw_full == 1 || c->tw_full % 10000 == 0)
			log_warn("capture: TIME_WAIT table full (%u sockets): exits of %" PRIu64
				 " sockets will not be reported",
				 c->opts.max_sockets, c->tw_full);
		return;
	}
	e->cookie = ev->sk;
	e->since_ns = ev->ts_ns;
	e->seen = c->scan_gen;
	e->info = *in;
	*pp = e;
	c->tw_n++;
}

const struct tsg_sockinfo *cap_tw_followed(struct tsg_capture *c, const struct tsg_event *ev)
{
	const struct tsg_sockinfo *in = &ev->info;
	struct tw_entry *e = *tw_find_info(c, in);

	return e && e->cookie == ev->sk ? &e->info : NULL;
}

/*
 * The scan looks every timewait socket of the host up in the follow table,
 * which is larger than the caches: look-ups go in batches, each step of a
 * batch (bucket, then first entry) prefetched for all its records before
 * the next step, so that their cache misses overlap.
 */
#define SCAN_BATCH 16

struct scan_batch {
	struct tsg_bpf_iter_rec r[SCAN_BATCH];
	uint64_t bucket[SCAN_BATCH];
	unsigned n;
};

static void scan_mark_one(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t b)
{
	struct tw_entry *e = *tw_find_in(c, b, r->netns, r->laddr, r->raddr, r->lport, r->rport);

	if (!r->timewait || !e)
		return;
	if (r->cookie && e->cookie != r->cookie && !(e->cookie >> 62))
		return; /* another socket's timewait on the same 4-tuple */
	e->seen = c->scan_gen;
}

static void scan_flush(struct tsg_capture *c, struct scan_batch *b)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct tw_entry *e = c->tw[b->bucket[i]];

		if (e)
			__builtin_prefetch(e);
	}
	for (unsigned i = 0; i < b->n; i++)
		scan_mark_one(c, &b->r[i], b->bucket[i]);
	b->n = 0;
}

static void scan_mark(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg)
{
	struct scan_batch *b = arg;
	uint64_t k = tw_bucket(c, r->netns, r->laddr, r->raddr, r->lport, r->rport);

	__builtin_prefetch(&c->tw[k]);
	b->r[b->n] = *r;
	b->bucket[b->n++] = k;
	if (b->n == SCAN_BATCH)
		scan_flush(c, b);
}

#define NS_SET (2 * TSG_BPF_NETNS_MAX) /* open addressing, at most half full */

/* The namespaces of the followed sockets (distinct, at most TSG_BPF_NETNS_MAX). */
static size_t tw_namespaces(struct tsg_capture *c, uint32_t *out)
{
	static uint32_t set[NS_SET];
	size_t n = 0;

	memset(set, 0, sizeof(set));
	for (size_t b = 0; b < c->tw_nbuckets; b++)
		for (struct tw_entry *e = c->tw[b]; e; e = e->next) {
			uint32_t ino = e->info.netns;
			size_t i = tsg_hash64(ino) & (NS_SET - 1);

			while (set[i] && set[i] != ino)
				i = (i + 1) & (NS_SET - 1);
			if (set[i] || n >= TSG_BPF_NETNS_MAX)
				continue;
			set[i] = ino;
			out[n++] = ino;
		}
	return n;
}

/* Followed sockets of namespace `ns` (any when all) that the scan did not
 * see have left TIME_WAIT; how many. */
static size_t tw_exit_unseen(struct tsg_capture *c, bool all, uint32_t ns, uint64_t t)
{
	size_t n = 0;

	for (size_t b = 0; b < c->tw_nbuckets; b++) {
		struct tw_entry **pp = &c->tw[b];

		while (*pp) {
			if ((*pp)->seen == c->scan_gen || (!all && (*pp)->info.netns != ns)) {
				pp = &(*pp)->next;
			} else {
				tw_exit(c, pp, t);
				n++;
			}
		}
	}
	return n;
}

/*
 * TIME_WAIT sockets we follow that no longer exist have left TIME_WAIT. Only
 * the namespaces that hold followed sockets are entered; a socket of a
 * namespace that is not known (gone before it could be found) has ended.
 */
static int tw_scan(struct tsg_capture *c)
{
	static uint32_t ns[TSG_BPF_NETNS_MAX];
	struct scan_batch batch = {0};
	uint64_t t0 = tsg_mono_ns();
	size_t nns = tw_namespaces(c, ns), n = c->tw_n, gone;
	int err;

	c->scan_gen++;
	err = cap_netns_iter(c, ns, nns, true, scan_mark, &batch);
	if (err)
		return err;
	scan_flush(c, &batch);
	gone = tw_exit_unseen(c, true, 0, tsg_mono_ns());
	c->tw_scan_last_ns = tsg_mono_ns() - t0;
	if (c->verbose)
		log_debug(
		    "capture: TIME_WAIT scan: %zu sockets in %zu namespaces, %zu ended, %.1f ms", n,
		    nns, gone, (double)(tsg_mono_ns() - t0) / 1e6);
	return 0;
}

size_t cap_tw_forget_netns(struct tsg_capture *c, uint32_t netns)
{
	c->scan_gen++; /* nothing of that namespace is seen in this generation */
	return tw_exit_unseen(c, false, netns, tsg_mono_ns());
}

/*
 * The scan costs about (namespaces scanned) x (TCP sockets of the whole host):
 * iter/tcp walks the host's socket hash for each namespace and keeps that
 * namespace's sockets. So the next scan is due after the period, or after
 * TW_SCAN_BUDGET times as long as the last scan took, whichever is later: the
 * scans take at most 1/TW_SCAN_BUDGET of one core, and exits are reported
 * later on a host with many namespaces and sockets (docs/performance.md).
 */
#define TW_SCAN_BUDGET 10

void cap_tw_schedule(struct tsg_capture *c)
{
	uint64_t period = (uint64_t)c->opts.tw_scan_ms * TSG_NSEC_PER_MSEC;

	if (c->tw_scan_last_ns * TW_SCAN_BUDGET > period)
		period = c->tw_scan_last_ns * TW_SCAN_BUDGET;
	c->next_scan_ns = tsg_mono_ns() + period;
}

int cap_tw_timeout(const struct tsg_capture *c, int timeout_ms)
{
	uint64_t t;
	int left;

	if (!c->tw_n)
		return timeout_ms;
	t = tsg_mono_ns();
	left = t >= c->next_scan_ns ? 0 : (int)((c->next_scan_ns - t) / TSG_NSEC_PER_MSEC) + 1;
	return timeout_ms < 0 || left < timeout_ms ? left : timeout_ms;
}

void cap_tw_scan_if_due(struct tsg_capture *c)
{
	if (!c->tw_n || tsg_mono_ns() < c->next_scan_ns)
		return;
	/* drain first: an entry delivered now is in the iterator's view */
	ring_buffer__consume(c->rb);
	tw_scan(c);
	cap_tw_schedule(c);
}
