/* SPDX-License-Identifier: MIT */
/*
 * tsguard: sockets no tracepoint reports on (capture_priv.h). The kernel
 * reports the entry into TIME_WAIT (derived from ->CLOSE; an orphan goes on
 * in FIN_WAIT2); the scan (capture_reconcile.c) finds half-open connections
 * (request sockets, NEW_SYN_RECV). Each is followed here by its 4-tuple, and
 * every scan pass reports what changed: FIN_WAIT2 -> TIME_WAIT, and the exit
 * (-> CLOSE) of those that no longer exist. docs/kernel.md.
 */
#include "capture_priv.h"
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A timewait or request socket, followed until it disappears. */
struct tw_entry {
	struct tw_entry *next;
	uint64_t hash;		  /* cap_tuple_hash of its netns and 4-tuple: compared first */
	uint64_t cookie;	  /* the socket id used for its events */
	uint64_t since_ns;	  /* entered its state */
	uint32_t seen;		  /* scan generation that last saw it */
	uint8_t state;		  /* TIME_WAIT or FIN_WAIT2 (timewait), NEW_SYN_RECV */
	uint8_t kind;		  /* TSG_BPF_ITER_TIMEWAIT or _REQUEST */
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

/* The bucket of hash h: mixed once more, so that the low bits depend on
 * every bit of the tuple (cap_tuple_hash ends in half a mixer). */
static size_t tw_bucket(const struct tsg_capture *c, uint64_t h)
{
	h *= 0xc4ceb9fe1a85ec53ull;
	return (size_t)((h ^ (h >> 29)) & (c->tw_nbuckets - 1));
}

/* The same 4-tuple in two namespaces is two sockets: netns is in the key
 * (h: its cap_tuple_hash). */
static struct tw_entry **tw_find_h(struct tsg_capture *c, uint64_t h, uint8_t kind, uint32_t ns,
				   const uint8_t *la, const uint8_t *ra, uint16_t lp, uint16_t rp)
{
	struct tw_entry **pp = &c->tw[tw_bucket(c, h)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->kind == kind && (*pp)->info.lport == lp &&
		    (*pp)->info.rport == rp && (*pp)->info.netns == ns &&
		    !memcmp((*pp)->info.laddr, la, 16) && !memcmp((*pp)->info.raddr, ra, 16))
			return pp;
	return pp;
}

static struct tw_entry **tw_find(struct tsg_capture *c, uint8_t kind, uint32_t ns,
				 const uint8_t *la, const uint8_t *ra, uint16_t lp, uint16_t rp)
{
	return tw_find_h(c, cap_tuple_hash(ns, la, ra, lp, rp), kind, ns, la, ra, lp, rp);
}

static struct tw_entry **tw_find_info(struct tsg_capture *c, uint8_t kind,
				      const struct tsg_sockinfo *in)
{
	return tw_find(c, kind, in->netns, in->laddr, in->raddr, in->lport, in->rport);
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
	c->req_n = 0;
	c->tw_seen_n = 0;
}

/* Reports e's socket going from its state to `to` at ts. */
static void tw_report(struct tsg_capture *c, const struct tw_entry *e, uint64_t ts, uint8_t to)
{
	struct tsg_event ev = {0};

	ev.ts_ns = ts;
	ev.sk = e->cookie;
	ev.from = e->state;
	ev.to = to;
	ev.since_ns = e->since_ns;
	ev.info = e->info;
	cap_deliver(c, &ev);
}

/* Unlinks *pp and reports its socket's exit (-> CLOSE) at ts. */
static void tw_exit(struct tsg_capture *c, struct tw_entry **pp, uint64_t ts)
{
	struct tw_entry *e = *pp;

	*pp = e->next;
	c->tw_seen_n -= e->seen == c->scan_gen;
	if (e->kind == TSG_BPF_ITER_REQUEST) {
		c->req_n--;
		c->req_exited++;
	} else {
		c->tw_n--;
		c->tw_exited += e->state == TSG_TIME_WAIT;
	}
	tw_report(c, e, ts, TSG_CLOSE);
	free(e);
}

/* A new entry for ev's socket (ev->to: its state) in the table of `kind`. */
static void tw_add(struct tsg_capture *c, uint8_t kind, const struct tsg_event *ev, uint64_t since)
{
	const struct tsg_sockinfo *in = &ev->info;
	uint64_t h = cap_tuple_hash(in->netns, in->laddr, in->raddr, in->lport, in->rport);
	struct tw_entry **pp = tw_find_h(c, h, kind, in->netns, in->laddr, in->raddr, in->lport,
					 in->rport),
			*e = *pp;
	bool req = kind == TSG_BPF_ITER_REQUEST;
	size_t n = req ? c->req_n : c->tw_n;
	uint64_t *full = req ? &c->req_full : &c->tw_full;

	if (e) {
		/* the 4-tuple was reused: the old socket is gone */
		tw_exit(c, pp, ev->ts_ns);
		pp = tw_find_h(c, h, kind, in->netns, in->laddr, in->raddr, in->lport, in->rport);
	}
	if (n >= c->opts.max_sockets || !(e = calloc(1, sizeof(*e)))) {
		if (++*full == 1 || *full % 10000 == 0)
			log_warn("capture: %s table full (%u sockets): exits of %" PRIu64
				 " sockets will not be reported",
				 req ? "NEW_SYN_RECV" : "TIME_WAIT", c->opts.max_sockets, *full);
		return;
	}
	e->hash = h;
	e->cookie = ev->sk;
	e->since_ns = since;
	e->seen = c->scan_gen;
	c->tw_seen_n++;
	e->state = ev->to;
	e->kind = kind;
	e->info = *in;
	*pp = e;
	if (req)
		c->req_n++;
	else
		c->tw_n++;
}

void cap_tw_enter(struct tsg_capture *c, const struct tsg_event *ev)
{
	/* an orphan followed in FIN_WAIT2 (from == to) has been there since
	 * the event's since_ns */
	uint64_t since = ev->from == ev->to && ev->since_ns ? ev->since_ns : ev->ts_ns;

	c->tw_entered += ev->to == TSG_TIME_WAIT;
	tw_add(c, TSG_BPF_ITER_TIMEWAIT, ev, since);
}

void cap_req_enter(struct tsg_capture *c, const struct tsg_event *ev)
{
	c->req_entered++;
	tw_add(c, TSG_BPF_ITER_REQUEST, ev, ev->ts_ns);
}

const struct tsg_sockinfo *cap_tw_followed(struct tsg_capture *c, const struct tsg_event *ev)
{
	const struct tsg_sockinfo *in = &ev->info;
	struct tw_entry *e = *tw_find_info(c, TSG_BPF_ITER_TIMEWAIT, in);

	if (!e)
		e = *tw_find_info(c, TSG_BPF_ITER_REQUEST, in);
	return e && e->cookie == ev->sk ? &e->info : NULL;
}

/*
 * A scan pass looks every timewait and request socket it meets up in the
 * follow table, which is larger than the caches: the reader calls this for
 * the records ahead of the one it hands over (cap_iter_spec.ahead), stage 0
 * far ahead (the bucket), stage 1 nearer (the bucket's first entry, now in
 * the cache), so that the cache misses of many look-ups overlap.
 */
void cap_tw_prefetch(const struct tsg_capture *c, const void *rec, int stage)
{
	struct tsg_bpf_iter_rec r;
	struct tw_entry *const *b;
	const struct tw_entry *e;

	memcpy(&r, rec, sizeof(r));
	if (r.kind == TSG_BPF_ITER_FULL)
		return;
	b = &c->tw[tw_bucket(c, cap_tuple_hash(r.netns, r.laddr, r.raddr, r.lport, r.rport))];
	if (stage == 0) {
		__builtin_prefetch(b);
		return;
	}
	if (!(e = *b))
		return;
	/* the fields compared: up to info.netns */
	__builtin_prefetch(e);
	__builtin_prefetch((const char *)e + 64);
	__builtin_prefetch((const char *)&e->info.netns);
}

/*
 * One record of a scan pass: marks the followed socket it is seen and
 * reports FIN_WAIT2 -> TIME_WAIT when an orphan's timewait socket got the
 * peer's FIN. True when the record's socket is followed here.
 */
bool cap_tw_record(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t t)
{
	struct tw_entry *e;

	if (r->kind == TSG_BPF_ITER_FULL)
		return false;
	e = *tw_find(c, r->kind, r->netns, r->laddr, r->raddr, r->lport, r->rport);
	if (!e)
		return false;
	if (r->kind == TSG_BPF_ITER_TIMEWAIT && r->cookie && e->cookie != r->cookie &&
	    !(e->cookie >> 62))
		return false; /* another socket's timewait on the same 4-tuple */
	if (e->seen != c->scan_gen) {
		e->seen = c->scan_gen;
		c->tw_seen_n++;
	}
	if (e->state == r->state || r->state != TSG_TIME_WAIT)
		return true;
	tw_report(c, e, t, TSG_TIME_WAIT);
	e->state = TSG_TIME_WAIT;
	e->since_ns = t;
	c->tw_entered++;
	return true;
}

void cap_tw_kernel(struct tsg_capture *c, const struct tsg_sockinfo *in, uint64_t cookie,
		   uint8_t to, uint64_t ts)
{
	struct tw_entry **pp = tw_find_info(c, TSG_BPF_ITER_TIMEWAIT, in), *e = *pp;

	/* not followed, or another socket's timewait on the same 4-tuple (a
	 * cookie the kernel made before the timewait socket was) */
	if (!e || (cookie && e->cookie != cookie && !(e->cookie >> 62)))
		return;
	if (to == TSG_CLOSE) {
		c->tw_kernel_ends++;
		tw_exit(c, pp, ts);
	} else if (e->state == TSG_FIN_WAIT2) {
		tw_report(c, e, ts, TSG_TIME_WAIT);
		e->state = TSG_TIME_WAIT;
		e->since_ns = ts;
		c->tw_entered++;
	}
}

void cap_tw_taken_over(struct tsg_capture *c, const struct tsg_event *ev)
{
	struct tw_entry **pp = tw_find_info(c, TSG_BPF_ITER_TIMEWAIT, &ev->info);

	if (*pp && (*pp)->cookie != ev->sk) {
		c->tw_taken++;
		tw_exit(c, pp, ev->ts_ns);
	}
}

#define NS_SET (2 * TSG_BPF_NETNS_MAX) /* open addressing, at most half full */

size_t cap_tw_namespaces(struct tsg_capture *c, uint32_t *out)
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

/* Followed sockets of namespace `ns` (any when all), of `kind` (-1: both),
 * that the scan did not see are gone; how many. */
static size_t tw_exit_unseen(struct tsg_capture *c, bool all, uint32_t ns, int kind, uint64_t t)
{
	size_t n = 0;

	for (size_t b = 0; b < c->tw_nbuckets; b++) {
		struct tw_entry **pp = &c->tw[b];

		while (*pp) {
			if ((*pp)->seen == c->scan_gen || (!all && (*pp)->info.netns != ns) ||
			    (kind >= 0 && (*pp)->kind != kind)) {
				pp = &(*pp)->next;
			} else {
				tw_exit(c, pp, t);
				n++;
			}
		}
	}
	return n;
}

void cap_tw_new_gen(struct tsg_capture *c)
{
	c->scan_gen++;
	c->tw_seen_n = 0;
}

size_t cap_tw_finish(struct tsg_capture *c, uint64_t t, bool timewait)
{
	/* every followed socket seen (the usual pass): no walk of the table */
	if (c->tw_seen_n == (timewait ? c->tw_n : 0) + c->req_n)
		return 0;
	return tw_exit_unseen(c, true, 0, timewait ? -1 : TSG_BPF_ITER_REQUEST, t);
}

size_t cap_tw_forget_netns(struct tsg_capture *c, uint32_t netns)
{
	cap_tw_new_gen(c); /* nothing of that namespace is seen in this generation */
	return tw_exit_unseen(c, false, netns, -1, tsg_mono_ns());
}
