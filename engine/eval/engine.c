/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the evaluation engine.
 *
 * Data:
 *   - sockets: open-addressing table sk -> struct sock_ent (state, since,
 *     attributes, memberships). A membership ties a socket to a time rule
 *     (its alert and timer) or to a count rule's key (its contribution).
 *   - per rule: a hash of keys (struct key_ent): count, rate window (rate.h),
 *     alert state, cooldown bookkeeping, one timer.
 *   - timers: an indexed binary min-heap; cancelled timers leave the heap.
 *   - index: rules by transition (transition, rate) and by state (time,
 *     count), so an event costs the rules that can match it.
 *
 * All tables are bounded (max_sockets, max_keys_per_rule); what does not fit
 * is counted.
 */
#include "engine.h"
#include "log.h"
#include "match.h"
#include "rate.h"
#include "sockpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { A_INACTIVE = 0, A_PENDING, A_FIRING };
enum { M_TIME = 1, M_COUNT, M_CD };

/*
 * Timers: a binary min-heap of (deadline, owner). The owner is a key
 * (struct key_ent *, even) or a time-rule membership (MREF: socket and
 * record index, odd); it keeps its heap position (UINT32_MAX: not armed).
 */
struct hent {
	uint64_t deadline;
	uint64_t ref;
};
#define MREF(sock, memb) (((uint64_t)(sock) << 32) | ((uint64_t)(memb) << 1) | 1u)
#define MEMB_MAX (1u << 31) /* record indices that fit in an MREF */
#define RULES_MAX (1u << 27) /* rule indices that fit in struct memb */

struct key_ent;

/*
 * A record of a socket (16 bytes, in e->membp, chained by index):
 *   M_TIME  its membership in a time rule: alert state, timer, and the
 *           socket as the firing notification described it (e->firedp), so
 *           that the resolved one carries the same key (a port learnt
 *           later must not make it another alert, e.g. in Alertmanager);
 *   M_COUNT its contribution to a count rule's key;
 *   M_CD    the per-socket cooldown of a time rule (outlives memberships).
 */
struct sock_cd {
	uint64_t last_fire;
	uint64_t suppressed;
};

struct memb {
	uint32_t next;
	uint32_t rule : 27;
	uint32_t type : 2;
	uint32_t astate : 2; /* M_TIME: A_INACTIVE / A_FIRING */
	uint32_t silenced : 1; /* M_TIME: firing suppressed by cooldown */
	union {
		struct key_ent *key; /* M_COUNT */
		struct {
			uint32_t heap_idx;
			uint32_t fired; /* index in e->firedp, 0: none */
		} t;                 /* M_TIME */
		struct sock_cd *cd; /* M_CD */
	} u;
};

struct key_ent {
	struct key_ent *next; /* hash chain */
	uint32_t heap_idx;    /* timer: `for` deadline and rate window expiry */
	uint64_t hash;
	struct tsg_sockinfo key; /* the `by` fields (key.have) */
	uint32_t rule;
	uint64_t count;       /* count rules: sockets in the state now */
	struct tsg_rate_win win; /* rate rules: O(1) per event, bounded buckets */
	uint8_t astate;
	bool silenced;
	bool fired_once;
	uint64_t pending_since; /* the condition holds since */
	uint64_t last_fire;
	uint64_t suppressed;
	uint64_t sk;                /* queue rules: the listener (key = the socket); else 0 */
	struct tsg_queue_sample q;  /* queue rules: its last sample */
};

struct rule_rt {
	const struct tsg_rule *r;
	struct key_ent **buckets;
	size_t nbuckets, nkeys;
	struct tsg_rule_stats st;
	bool overflow_logged;
	bool coarsen_logged;
};

/* A rule keyed by one port of its match (secondary index). */
struct port_ent {
	uint16_t port;
	uint32_t rule;
};

/*
 * Rules that can match one transition (or entry into one state). Rules whose
 * rport (else lport) set is a few positive ports are found by the event's
 * port (binary search); the rest are checked one by one. So an event costs
 * the rules that can match it, not every rule loaded.
 */
struct idx_list {
	uint32_t *v; /* generic */
	size_t n;
	struct port_ent *rp, *lp; /* sorted by port */
	size_t nrp, nlp;
	size_t total; /* rules in this list */
};

struct tsg_engine {
	const struct tsg_ruleset *rs;
	struct tsg_engine_opts opts;
	tsg_notify_fn notify;
	void *ctx;
	uint64_t now;

	struct rule_rt *rules;
	size_t nrules;
	struct idx_list trans_idx[TSG_NSTATES][TSG_NSTATES]; /* transition + rate rules */
	struct idx_list state_idx[TSG_NSTATES];              /* time + count rules */
	struct idx_list queue_idx;                           /* queue rules */

	uint32_t *socks; /* open addressing of sockp indices, linear probing; 0: empty */
	size_t scap, nsocks;
	struct pool sockp;  /* struct sock_ent */
	struct pool membp;  /* struct memb */
	struct sock_side side; /* IPv6 addresses; cgroup, netns name, container, pod */
	struct pool firedp; /* struct tsg_sockinfo */

	struct hent *heap;
	size_t nheap, heapcap;

	struct tsg_engine_stats st;
	bool keep_idle;
};

/* ---- records ------------------------------------------------------------- */

static struct sock_ent *sock_at(const struct tsg_engine *e, uint32_t i)
{
	return pool_at(&e->sockp, i);
}

static struct memb *memb_at(const struct tsg_engine *e, uint32_t i)
{
	return pool_at(&e->membp, i);
}

/* ---- timer heap ---------------------------------------------------------- */

/* Where the owner of a heap entry keeps its position. */
static uint32_t *ref_idx(const struct tsg_engine *e, uint64_t ref)
{
	if (ref & 1)
		return &memb_at(e, (uint32_t)ref >> 1)->u.t.heap_idx;
	return &((struct key_ent *)(uintptr_t)ref)->heap_idx;
}

static void heap_swap(struct tsg_engine *e, size_t a, size_t b)
{
	struct hent t = e->heap[a];

	e->heap[a] = e->heap[b];
	e->heap[b] = t;
	*ref_idx(e, e->heap[a].ref) = (uint32_t)a;
	*ref_idx(e, e->heap[b].ref) = (uint32_t)b;
}

static void heap_up(struct tsg_engine *e, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (e->heap[p].deadline <= e->heap[i].deadline)
			break;
		heap_swap(e, i, p);
		i = p;
	}
}

static void heap_down(struct tsg_engine *e, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < e->nheap && e->heap[l].deadline < e->heap[m].deadline)
			m = l;
		if (r < e->nheap && e->heap[r].deadline < e->heap[m].deadline)
			m = r;
		if (m == i)
			break;
		heap_swap(e, i, m);
		i = m;
	}
}

/* hidx: the owner's heap position. */
static void timer_cancel(struct tsg_engine *e, uint32_t *hidx)
{
	size_t i = *hidx;

	if (i == UINT32_MAX)
		return;
	*hidx = UINT32_MAX;
	e->nheap--;
	if (i == e->nheap)
		return;
	e->heap[i] = e->heap[e->nheap];
	*ref_idx(e, e->heap[i].ref) = (uint32_t)i;
	heap_up(e, i);
	heap_down(e, *ref_idx(e, e->heap[i].ref));
}

static int timer_arm(struct tsg_engine *e, uint64_t ref, uint64_t deadline)
{
	uint32_t *hidx = ref_idx(e, ref);

	if (*hidx != UINT32_MAX) {
		uint64_t old = e->heap[*hidx].deadline;

		e->heap[*hidx].deadline = deadline;
		if (deadline < old)
			heap_up(e, *hidx);
		else
			heap_down(e, *hidx);
		return 0;
	}
	if (e->nheap == e->heapcap) {
		size_t ncap = e->heapcap ? e->heapcap * 2 : 1024;
		struct hent *nh = realloc(e->heap, ncap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		e->heap = nh;
		e->heapcap = ncap;
	}
	*hidx = (uint32_t)e->nheap;
	e->heap[e->nheap++] = (struct hent){.deadline = deadline, .ref = ref};
	heap_up(e, e->nheap - 1);
	return 0;
}

/* ---- notifications ------------------------------------------------------- */

static void notify(struct tsg_engine *e, struct tsg_alert *a)
{
	struct rule_rt *rt = &e->rules[a->rule->index];

	a->rs = e->rs;
	a->ts_ns = e->now;
	a->wall_ns = tsg_wall_ns();
	a->host = e->opts.host;
	a->dry_run = e->opts.dry_run;
	if (a->status == TSG_FIRING)
		rt->st.fired++;
	else
		rt->st.resolved++;
	e->st.notifications++;
	if (e->notify)
		e->notify(e->ctx, a);
}

static void alert_init(struct tsg_alert *a, const struct tsg_rule *r, int status)
{
	memset(a, 0, sizeof(*a));
	a->rule = r;
	a->status = status;
}

/* ---- key tables ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Projects a socket's info onto the `by` fields. */
static void key_project(uint32_t by, const struct tsg_sockinfo *in, struct tsg_sockinfo *k)
{
	memset(k, 0, sizeof(*k));
	tsg_sockinfo_copy(k, in, by);
}

static uint64_t key_hash(const struct tsg_sockinfo *k)
{
	uint64_t h = mix(1469598103934665603ull, k->have);

	if (k->have & TSG_HAVE(TSG_SF_COMM))
		h = hash_bytes(h, k->comm, strnlen(k->comm, sizeof(k->comm)));
	h = mix(h, ((uint64_t)k->pid << 32) | k->uid);
	h = mix(h, (uint64_t)(uintptr_t)k->cgroup); /* interned: pointer identity */
	h = hash_bytes(h, k->laddr, 16);
	h = hash_bytes(h, k->raddr, 16);
	h = mix(h, ((uint64_t)k->lport << 24) | ((uint64_t)k->rport << 8) | k->family);
	/* netns, and the interned container and pod (pointer identity) */
	h = mix(h, k->netns);
	h = mix(h, (uint64_t)(uintptr_t)k->container ^ ((uint64_t)(uintptr_t)k->pod << 1));
	return h;
}

static bool key_equal(const struct tsg_sockinfo *a, const struct tsg_sockinfo *b)
{
	return a->have == b->have && !strncmp(a->comm, b->comm, sizeof(a->comm)) &&
	       a->pid == b->pid && a->uid == b->uid && a->cgroup == b->cgroup &&
	       !memcmp(a->laddr, b->laddr, 16) && !memcmp(a->raddr, b->raddr, 16) &&
	       a->lport == b->lport && a->rport == b->rport && a->family == b->family &&
	       a->netns == b->netns && a->netns_name == b->netns_name &&
	       a->container == b->container && a->pod == b->pod;
}

static void key_free(struct tsg_engine *e, struct key_ent *k)
{
	timer_cancel(e, &k->heap_idx);
	tsg_rate_fini(&k->win);
	free(k);
}

static void key_unlink_free(struct tsg_engine *e, struct rule_rt *rt, struct key_ent *k)
{
	struct key_ent **pp = &rt->buckets[k->hash & (rt->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	rt->nkeys--;
	key_free(e, k);
}

/* Can this key be forgotten without losing anything a user would notice? */
static bool key_idle(const struct tsg_engine *e, const struct rule_rt *rt, const struct key_ent *k)
{
	const struct tsg_rule *r = rt->r;

	/* a queue key holds its listener's fields until the listener closes */
	if (k->astate != A_INACTIVE || k->count || r->kind == TSG_KIND_QUEUE)
		return false;
	if (tsg_rate_live(&k->win, e->now, r->per_ns))
		return false;
	if (r->cooldown_ns && k->fired_once && e->now - k->last_fire < r->cooldown_ns)
		return false;
	if (k->suppressed)
		return false;
	return true;
}

static size_t key_sweep(struct tsg_engine *e, struct rule_rt *rt)
{
	size_t freed = 0;

	for (size_t b = 0; b < rt->nbuckets; b++) {
		struct key_ent **pp = &rt->buckets[b];

		while (*pp) {
			struct key_ent *k = *pp;

			if (key_idle(e, rt, k)) {
				*pp = k->next;
				rt->nkeys--;
				key_free(e, k);
				freed++;
			} else {
				pp = &k->next;
			}
		}
	}
	return freed;
}

static int key_grow(struct rule_rt *rt)
{
	size_t nb = rt->nbuckets ? rt->nbuckets * 2 : 64;
	struct key_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < rt->nbuckets; i++) {
		struct key_ent *k = rt->buckets[i], *n;

		for (; k; k = n) {
			n = k->next;
			k->next = b[k->hash & (nb - 1)];
			b[k->hash & (nb - 1)] = k;
		}
	}
	free(rt->buckets);
	rt->buckets = b;
	rt->nbuckets = nb;
	return 0;
}

/* The key of hash h: `k` (by fields) or, with sk != 0, the socket sk (queue
 * rules). Added with k as its fields when absent and `add`; NULL when not. */
static struct key_ent *key_lookup(struct tsg_engine *e, struct rule_rt *rt, uint64_t h,
				  const struct tsg_sockinfo *k, uint64_t sk, bool add)
{
	struct key_ent *ke;

	if (rt->nbuckets) {
		for (ke = rt->buckets[h & (rt->nbuckets - 1)]; ke; ke = ke->next)
			if (ke->hash == h && ke->sk == sk && (sk || key_equal(&ke->key, k)))
				return ke;
	}
	if (!add)
		return NULL;
	if (rt->nkeys >= e->opts.max_keys_per_rule && !key_sweep(e, rt)) {
		rt->st.keys_dropped++;
		e->st.keys_dropped++;
		if (!rt->overflow_logged) {
			log_warn("rule %s: more than %zu keys; new keys are not tracked "
				 "(counted in keys_dropped)",
				 rt->r->name, e->opts.max_keys_per_rule);
			rt->overflow_logged = true;
		}
		return NULL;
	}
	if ((rt->nkeys >= rt->nbuckets && key_grow(rt) < 0) || !(ke = calloc(1, sizeof(*ke)))) {
		/* out of memory: not tracked, and counted like the key limit */
		rt->st.keys_dropped++;
		e->st.keys_dropped++;
		return NULL;
	}
	ke->heap_idx = UINT32_MAX;
	ke->hash = h;
	ke->key = *k;
	ke->sk = sk;
	ke->rule = rt->r->index;
	ke->next = rt->buckets[h & (rt->nbuckets - 1)];
	rt->buckets[h & (rt->nbuckets - 1)] = ke;
	rt->nkeys++;
	return ke;
}

static struct key_ent *key_get(struct tsg_engine *e, struct rule_rt *rt,
			       const struct tsg_sockinfo *info)
{
	struct tsg_sockinfo k;

	key_project(rt->r->by, info, &k);
	return key_lookup(e, rt, key_hash(&k), &k, 0, true);
}

/* Cooldown gate for a firing notification. Returns true to send it. */
static bool cooldown_pass(struct tsg_engine *e, const struct tsg_rule *r, bool *fired_once,
			  uint64_t *last_fire, uint64_t *suppressed, struct tsg_alert *a)
{
	if (r->cooldown_ns && *fired_once && e->now - *last_fire < r->cooldown_ns) {
		(*suppressed)++;
		e->st.suppressed++;
		e->rules[r->index].st.suppressed++;
		return false;
	}
	*fired_once = true;
	*last_fire = e->now;
	a->suppressed = *suppressed;
	*suppressed = 0;
	return true;
}

/* ---- count and rate alerts ------------------------------------------------ */

/*
 * Rate: the events in the window, as the alert reports them. The window holds
 * the newest buckets with threshold+1 events (rate.h), so more than that is
 * reported as threshold+1, as it always was.
 */
static uint64_t rate_reported(const struct tsg_rule *r, const struct key_ent *k)
{
	uint64_t keep = r->threshold == UINT64_MAX ? UINT64_MAX : r->threshold + 1;

	return k->win.total < keep ? k->win.total : keep;
}

/* Is the listener's queue above the rule's threshold (a number, or a
 * percentage of its backlog)? */
static bool queue_above(const struct tsg_rule *r, const struct tsg_queue_sample *q)
{
	if (r->queue_pct_x100)
		return (uint64_t)q->queue * 10000 > (uint64_t)r->queue_pct_x100 * q->backlog;
	return q->queue > r->threshold;
}

/* A queue alert: its key is the listening socket, with its last sample. */
static void queue_fill(struct tsg_alert *a, const struct key_ent *k)
{
	a->key_is_sock = true;
	a->sk = k->sk;
	a->state = TSG_LISTEN;
	a->has_queue = true;
	a->q = k->q;
}

static void key_alert(struct tsg_engine *e, struct key_ent *k, int status)
{
	struct rule_rt *rt = &e->rules[k->rule];
	const struct tsg_rule *r = rt->r;
	struct tsg_alert a;

	alert_init(&a, r, status);
	a.info = k->key;
	a.has_count = r->kind != TSG_KIND_QUEUE;
	if (r->kind == TSG_KIND_QUEUE) {
		queue_fill(&a, k);
	} else if (r->kind == TSG_KIND_COUNT) {
		a.state = r->state;
		a.count = k->count;
	} else {
		uint64_t n = rate_reported(r, k);

		a.count = n;
		/* {{from}} / {{to}}: the rule's own states when it names one */
		if (r->from && !(r->from & (r->from - 1)))
			a.from = (uint8_t)__builtin_ctz(r->from);
		if (r->to && !(r->to & (r->to - 1)))
			a.to = (uint8_t)__builtin_ctz(r->to);
		a.has_rate = true;
		a.rate = (double)n / ((double)r->per_ns / 1e9);
	}
	if (status == TSG_FIRING) {
		if (!cooldown_pass(e, r, &k->fired_once, &k->last_fire, &k->suppressed, &a)) {
			k->silenced = true;
			return;
		}
		k->silenced = false;
		rt->st.firing_now++;
	} else {
		if (k->silenced) {
			k->suppressed++;
			e->st.suppressed++;
			rt->st.suppressed++;
			return;
		}
		rt->st.firing_now--;
		a.suppressed = k->suppressed;
		k->suppressed = 0;
	}
	notify(e, &a);
}

/*
 * Re-evaluates a count or rate key at e->now: lifecycle transitions and the
 * key's timer (the earlier of the `for` deadline and, for rate rules, the
 * moment the window next loses an event while that matters).
 */
static void key_eval(struct tsg_engine *e, struct key_ent *k)
{
	const struct tsg_rule *r = e->rules[k->rule].r;
	uint64_t n, expiry = UINT64_MAX, deadline = UINT64_MAX;
	bool cond;

	if (r->kind == TSG_KIND_COUNT || r->kind == TSG_KIND_QUEUE)
		n = k->count;
	else {
		n = tsg_rate_count(&k->win, e->now, r->per_ns);
		expiry = tsg_rate_next_expiry(&k->win, r->per_ns);
	}
	cond = r->kind == TSG_KIND_QUEUE ? queue_above(r, &k->q) : n > r->threshold;

	switch (k->astate) {
	case A_INACTIVE:
		if (!cond)
			break;
		k->pending_since = e->now; /* also when firing at once (ctl alerts) */
		if (r->for_ns) {
			k->astate = A_PENDING;
		} else {
			k->astate = A_FIRING;
			key_alert(e, k, TSG_FIRING);
		}
		break;
	case A_PENDING:
		if (!cond) {
			k->astate = A_INACTIVE;
		} else if (e->now >= k->pending_since + r->for_ns) {
			k->astate = A_FIRING;
			key_alert(e, k, TSG_FIRING);
		}
		break;
	case A_FIRING: {
		uint64_t below = r->kind == TSG_KIND_COUNT ? r->resolve_below : r->threshold;

		if (r->kind == TSG_KIND_QUEUE ? !cond : n <= below) {
			k->astate = A_INACTIVE;
			key_alert(e, k, TSG_RESOLVED);
		}
		break;
	}
	}

	if (k->astate == A_PENDING)
		deadline = k->pending_since + r->for_ns;
	if (r->kind == TSG_KIND_RATE && k->astate != A_INACTIVE && expiry < deadline)
		deadline = expiry;
	if (deadline == UINT64_MAX)
		timer_cancel(e, &k->heap_idx);
	else
		timer_arm(e, (uint64_t)(uintptr_t)k, deadline);
}

static void rate_push(struct tsg_engine *e, struct rule_rt *rt, const struct tsg_sockinfo *info)
{
	const struct tsg_rule *r = rt->r;
	struct key_ent *k = key_get(e, rt, info);
	uint64_t keep = r->threshold == UINT64_MAX ? UINT64_MAX : r->threshold + 1;
	int rc;

	if (!k)
		return;
	rc = tsg_rate_push(&k->win, e->now, r->per_ns, keep);
	if (rc < 0) {
		/* out of memory with nothing held: the event is lost, counted */
		rt->st.keys_dropped++;
		e->st.keys_dropped++;
		return;
	}
	if (rc > 0) {
		e->st.rate_coarsened++;
		if (!rt->coarsen_logged) {
			char res[32];

			log_warn("rule %s: a key's window holds events in more than %u distinct "
				 "milliseconds; its resolution is now %s (counted in "
				 "rate_coarsened)",
				 r->name, TSG_RATE_MAX_BUCKETS,
				 tsg_duration_format(tsg_rate_resolution(&k->win), res,
						     sizeof(res)));
			rt->coarsen_logged = true;
		}
	}
	key_eval(e, k);
}

/* ---- sockets -------------------------------------------------------------- */

static int socks_grow(struct tsg_engine *e)
{
	size_t ncap = e->scap ? e->scap * 2 : 4096;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < e->scap; i++) {
		uint32_t si = e->socks[i];
		size_t j;

		if (!si)
			continue;
		for (j = tsg_hash64(sock_at(e, si)->sk) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
			;
		ns[j] = si;
	}
	free(e->socks);
	e->socks = ns;
	e->scap = ncap;
	return 0;
}

/* The socket's index, 0: not tracked. */
static uint32_t sock_find(const struct tsg_engine *e, uint64_t sk, size_t *slot)
{
	size_t j;

	if (!e->scap)
		return 0;
	for (j = tsg_hash64(sk) & (e->scap - 1); e->socks[j]; j = (j + 1) & (e->scap - 1))
		if (sock_at(e, e->socks[j])->sk == sk) {
			if (slot)
				*slot = j;
			return e->socks[j];
		}
	return 0;
}

/* Counts a socket (an event of it) not tracked; logs the 1st, 2nd, 4th, 8th... */
static void sock_dropped(struct tsg_engine *e, const char *why)
{
	uint64_t n = ++e->st.sockets_dropped;

	if (!(n & (n - 1)))
		log_warn("%s: a new socket is not tracked (%llu so far, counted in "
			 "sockets_dropped; --max-sockets is %zu)",
			 why, (unsigned long long)n, e->opts.max_sockets);
}

_Static_assert(sizeof(struct memb) == 16, "a membership is 16 bytes");

static uint32_t sock_add(struct tsg_engine *e, uint64_t sk)
{
	uint32_t si;
	size_t j;

	if (e->nsocks >= e->opts.max_sockets) {
		sock_dropped(e, "socket table full");
		return 0;
	}
	if (((e->nsocks + 1) * 2 > e->scap && socks_grow(e) < 0) || !(si = pool_get(&e->sockp))) {
		sock_dropped(e, "out of memory"); /* counted like the limit */
		return 0;
	}
	sock_at(e, si)->sk = sk;
	for (j = tsg_hash64(sk) & (e->scap - 1); e->socks[j]; j = (j + 1) & (e->scap - 1))
		;
	e->socks[j] = si;
	e->nsocks++;
	return si;
}

/* Removes slot j with backward-shift deletion (no tombstones). */
static void sock_remove_slot(struct tsg_engine *e, size_t j)
{
	size_t mask = e->scap - 1, i = j;

	e->socks[j] = 0;
	for (;;) {
		size_t h;

		i = (i + 1) & mask;
		if (!e->socks[i])
			break;
		h = tsg_hash64(sock_at(e, e->socks[i])->sk) & mask;
		/* move it back if its home is not in (j, i] cyclically */
		if ((j < i) ? (h <= j || h > i) : (h <= j && h > i)) {
			e->socks[j] = e->socks[i];
			e->socks[i] = 0;
			j = i;
		}
	}
	e->nsocks--;
}

/* A new record of socket s, linked first; 0 when out of memory. */
static uint32_t memb_new(struct tsg_engine *e, struct sock_ent *s, uint32_t rule, int type)
{
	uint32_t mi = pool_get(&e->membp);
	struct memb *m;

	if (mi >= MEMB_MAX) {
		pool_put(&e->membp, mi);
		return 0;
	}
	if (!mi)
		return 0;
	m = memb_at(e, mi);
	m->rule = rule & (RULES_MAX - 1);
	m->type = type & 3;
	if (type == M_TIME)
		m->u.t.heap_idx = UINT32_MAX;
	m->next = s->memb;
	s->memb = mi;
	return mi;
}

/* Frees record mi (unlinked by the caller). */
static void memb_release(struct tsg_engine *e, uint32_t mi)
{
	struct memb *m = memb_at(e, mi);

	if (m->type == M_TIME) {
		timer_cancel(e, &m->u.t.heap_idx);
		pool_put(&e->firedp, m->u.t.fired);
	} else if (m->type == M_CD) {
		free(m->u.cd);
	}
	pool_put(&e->membp, mi);
}

static struct sock_cd *sock_cd_get(struct tsg_engine *e, struct sock_ent *s, uint32_t rule)
{
	struct sock_cd *cd;
	uint32_t mi;

	for (mi = s->memb; mi; mi = memb_at(e, mi)->next)
		if (memb_at(e, mi)->type == M_CD && memb_at(e, mi)->rule == rule)
			return memb_at(e, mi)->u.cd;
	cd = calloc(1, sizeof(*cd));
	if (!cd || !(mi = memb_new(e, s, rule, M_CD))) {
		free(cd);
		return NULL;
	}
	memb_at(e, mi)->u.cd = cd;
	return cd;
}

/* The socket as a time alert of membership m reports it. */
static void time_alert_info(const struct tsg_engine *e, const struct sock_ent *s,
			    const struct memb *m, bool resolved, struct tsg_sockinfo *out)
{
	if (resolved && m->u.t.fired)
		*out = *(const struct tsg_sockinfo *)pool_at(&e->firedp, m->u.t.fired);
	else
		sock_unpack(&e->side, s, out);
}

static void time_alert(struct tsg_engine *e, uint32_t si, struct memb *m, int status)
{
	struct rule_rt *rt = &e->rules[m->rule];
	const struct tsg_rule *r = rt->r;
	struct sock_ent *s = sock_at(e, si);
	struct tsg_alert a;

	alert_init(&a, r, status);
	time_alert_info(e, s, m, status == TSG_RESOLVED, &a.info);
	a.key_is_sock = true;
	a.sk = s->sk;
	a.state = r->state;
	a.has_duration = true;
	a.duration_ns = e->now - s->since;
	if (status == TSG_FIRING) {
		struct sock_cd *cd = r->cooldown_ns ? sock_cd_get(e, s, m->rule) : NULL;

		if (cd) {
			bool once = cd->last_fire || cd->suppressed;

			if (!cooldown_pass(e, r, &once, &cd->last_fire, &cd->suppressed, &a)) {
				m->silenced = true;
				m->astate = A_FIRING;
				return;
			}
		}
		m->astate = A_FIRING;
		rt->st.firing_now++;
		if (!m->u.t.fired)
			m->u.t.fired = pool_get(&e->firedp);
		if (m->u.t.fired)
			*(struct tsg_sockinfo *)pool_at(&e->firedp, m->u.t.fired) = a.info;
	} else {
		m->astate = A_INACTIVE;
		if (m->silenced) {
			struct sock_cd *cd = sock_cd_get(e, s, m->rule);

			if (cd)
				cd->suppressed++;
			e->st.suppressed++;
			rt->st.suppressed++;
			return;
		}
		rt->st.firing_now--;
		if (r->cooldown_ns) {
			struct sock_cd *cd = sock_cd_get(e, s, m->rule);

			if (cd) {
				a.suppressed = cd->suppressed;
				cd->suppressed = 0;
			}
		}
	}
	notify(e, &a);
}

/* The socket leaves its state: every membership ends (cooldowns stay). */
static void sock_leave(struct tsg_engine *e, uint32_t si)
{
	struct sock_ent *s = sock_at(e, si);
	uint32_t mi = s->memb, next, *keep = &s->memb;

	for (; mi; mi = next) {
		struct memb *m = memb_at(e, mi);

		next = m->next;
		if (m->type == M_CD) {
			*keep = mi;
			keep = &m->next;
			continue;
		}
		if (m->type == M_TIME) {
			if (m->astate == A_FIRING)
				time_alert(e, si, m, TSG_RESOLVED);
		} else if (m->u.key) {
			struct rule_rt *rt = &e->rules[m->rule];

			if (m->u.key->count)
				m->u.key->count--;
			key_eval(e, m->u.key);
			if (key_idle(e, rt, m->u.key))
				key_unlink_free(e, rt, m->u.key);
		}
		memb_release(e, mi);
	}
	*keep = 0;
}

/* The socket (index si, attributes info) enters rule ri. */
static void enter_rule(struct tsg_engine *e, uint32_t si, const struct tsg_sockinfo *info,
		       uint32_t ri, uint64_t since)
{
	struct rule_rt *rt = &e->rules[ri];
	const struct tsg_rule *r = rt->r;
	struct sock_ent *s = sock_at(e, si);
	struct key_ent *k = NULL;
	uint32_t mi;

	if (!tsg_match_sock(&r->match, info))
		return;
	e->st.events_matched++;
	if (r->kind != TSG_KIND_TIME && !(k = key_get(e, rt, info)))
		return;
	mi = memb_new(e, s, ri, r->kind == TSG_KIND_TIME ? M_TIME : M_COUNT);
	if (!mi) {
		sock_dropped(e, "out of memory"); /* this rule loses the socket */
		return;
	}
	if (r->kind == TSG_KIND_TIME) {
		uint64_t deadline = since + r->longer_than_ns;

		if (deadline <= e->now)
			time_alert(e, si, memb_at(e, mi), TSG_FIRING);
		else
			timer_arm(e, MREF(si, mi), deadline);
	} else {
		memb_at(e, mi)->u.key = k;
		k->count++;
		key_eval(e, k);
	}
}

/* First entry with this port in a sorted array, or end. */
static const struct port_ent *port_lower(const struct port_ent *v, size_t n, uint16_t port)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].port < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return v + lo;
}

/* Calls fn for every rule of l that may match info (each at most once). */
#define IDX_FOREACH(l, info, ri, body)                                                       \
	do {                                                                                 \
		const struct idx_list *l_ = (l);                                             \
		const struct tsg_sockinfo *i_ = (info);                                      \
		for (size_t k_ = 0; k_ < l_->n; k_++) {                                      \
			uint32_t ri = l_->v[k_];                                             \
			body;                                                                \
		}                                                                            \
		if (l_->nrp && (i_->have & TSG_HAVE(TSG_SF_RPORT))) {                        \
			const struct port_ent *p_ = port_lower(l_->rp, l_->nrp, i_->rport);  \
			for (; p_ < l_->rp + l_->nrp && p_->port == i_->rport; p_++) {       \
				uint32_t ri = p_->rule;                                      \
				body;                                                        \
			}                                                                    \
		}                                                                            \
		if (l_->nlp && (i_->have & TSG_HAVE(TSG_SF_LPORT))) {                        \
			const struct port_ent *p_ = port_lower(l_->lp, l_->nlp, i_->lport);  \
			for (; p_ < l_->lp + l_->nlp && p_->port == i_->lport; p_++) {       \
				uint32_t ri = p_->rule;                                      \
				body;                                                        \
			}                                                                    \
		}                                                                            \
	} while (0)

static void sock_enter(struct tsg_engine *e, uint32_t si, const struct tsg_sockinfo *info,
		       uint8_t state, uint64_t since)
{
	struct sock_ent *s = sock_at(e, si);

	s->state = state;
	s->since = since;
	e->st.per_state[state]++;
	IDX_FOREACH(&e->state_idx[state], info, ri, enter_rule(e, si, info, ri, since));
}

/* Is the socket in rule ri (UINT32_MAX: in any rule)? */
static bool sock_in_rule(const struct tsg_engine *e, const struct sock_ent *s, uint32_t ri)
{
	for (uint32_t mi = s->memb; mi; mi = memb_at(e, mi)->next)
		if (memb_at(e, mi)->type != M_CD &&
		    (ri == UINT32_MAX || memb_at(e, mi)->rule == ri))
			return true;
	return false;
}

static void sock_join_new_rules(struct tsg_engine *e, uint32_t si, const struct tsg_sockinfo *info)
{
	struct sock_ent *s = sock_at(e, si);

	IDX_FOREACH(&e->state_idx[s->state], info, ri, {
		if (!sock_in_rule(e, s, ri))
			enter_rule(e, si, info, ri, s->since);
	});
}

/* Frees every record of the socket (their timers leave the heap). */
static void sock_records_free(struct tsg_engine *e, struct sock_ent *s)
{
	uint32_t mi = s->memb, next;

	for (; mi; mi = next) {
		next = memb_at(e, mi)->next;
		memb_release(e, mi);
	}
	s->memb = 0;
	sock_pack_release(&e->side, s);
}

static void sock_free(struct tsg_engine *e, uint32_t si)
{
	struct sock_ent *s = sock_at(e, si);
	size_t slot = 0;

	if (sock_find(e, s->sk, &slot) == si)
		sock_remove_slot(e, slot);
	sock_records_free(e, s);
	pool_put(&e->sockp, si);
}

/* ---- transition rules ------------------------------------------------------ */

static void transition_fire(struct tsg_engine *e, struct rule_rt *rt, const struct tsg_sockinfo *info,
			    uint64_t sk, uint8_t from, uint8_t to, bool has_since, uint64_t since)
{
	const struct tsg_rule *r = rt->r;
	struct tsg_alert a;

	alert_init(&a, r, TSG_FIRING);
	a.info = *info;
	a.key_is_sock = !r->by;
	a.sk = sk;
	a.from = from;
	a.to = to;
	a.state = to;
	if (has_since && since <= e->now) {
		a.has_duration = true;
		a.duration_ns = e->now - since;
	}
	if (r->cooldown_ns) {
		struct key_ent *k = key_get(e, rt, info);

		if (k && !cooldown_pass(e, r, &k->fired_once, &k->last_fire, &k->suppressed, &a))
			return;
	}
	notify(e, &a);
}

/* ---- queue rules -------------------------------------------------------------- */

/* The key of listener sk in a queue rule (found, or added when `add`). */
static struct key_ent *queue_key(struct tsg_engine *e, struct rule_rt *rt, uint64_t sk,
				 const struct tsg_sockinfo *info, bool add)
{
	return key_lookup(e, rt, tsg_hash64(sk), info, sk, add);
}

/*
 * A queue sample: per queue rule that may match the listener, one key lookup
 * and one evaluation. The listener's fields are what the sample brings over
 * what was known (its socket entry, its key); a listener of which nothing is
 * known cannot be named by an alert, and its sample is only counted.
 */
static void queue_sample(struct tsg_engine *e, const struct tsg_event *ev)
{
	uint32_t si = sock_find(e, ev->sk, NULL);
	struct tsg_sockinfo info = { 0 };

	e->st.queue_samples++;
	if (si)
		sock_unpack(&e->side, sock_at(e, si), &info);
	/* a sample without the listener's port (replay: its fields came on an
	 * earlier line): what a queue rule's key of it holds */
	for (size_t i = 0; !(ev->info.have & TSG_HAVE(TSG_SF_LPORT)) && i < e->nrules; i++) {
		struct key_ent *k = e->rules[i].r->kind == TSG_KIND_QUEUE
					    ? queue_key(e, &e->rules[i], ev->sk, NULL, false)
					    : NULL;

		if (k)
			tsg_sockinfo_copy(&info, &k->key, TSG_HAVE_ALL);
	}
	tsg_sockinfo_copy(&info, &ev->info, TSG_HAVE_ALL);
	if (!info.have) {
		e->st.queue_unknown++;
		return;
	}
	IDX_FOREACH(&e->queue_idx, &info, ri, {
		struct rule_rt *rt = &e->rules[ri];
		struct key_ent *k;

		if (tsg_match_sock(&rt->r->match, &info) &&
		    (k = queue_key(e, rt, ev->sk, &info, true))) {
			e->st.events_matched++;
			k->key = info;
			k->q = ev->q;
			k->count = ev->q.queue;
			key_eval(e, k);
		}
	});
}

/* A listener left LISTEN (closed): its queue alerts resolve and end. Costs
 * the rules only on a listener's close, and only when queue rules exist. */
static void queue_listener_gone(struct tsg_engine *e, uint64_t sk)
{
	if (!e->queue_idx.total)
		return;
	for (size_t ri = 0; ri < e->nrules; ri++) {
		struct rule_rt *rt = &e->rules[ri];
		struct key_ent *k;

		if (rt->r->kind != TSG_KIND_QUEUE || !(k = queue_key(e, rt, sk, NULL, false)))
			continue;
		if (k->astate == A_FIRING)
			key_alert(e, k, TSG_RESOLVED);
		key_unlink_free(e, rt, k);
	}
}

/* ---- timers ------------------------------------------------------------------ */

static void run_timers(struct tsg_engine *e, uint64_t until, bool inclusive)
{
	while (e->nheap) {
		struct hent t = e->heap[0];

		if (inclusive ? t.deadline > until : t.deadline >= until)
			break;
		if (t.deadline > e->now)
			e->now = t.deadline;
		timer_cancel(e, ref_idx(e, t.ref));
		if (t.ref & 1) {
			struct memb *m = memb_at(e, (uint32_t)t.ref >> 1);

			if (m->astate == A_INACTIVE)
				time_alert(e, (uint32_t)(t.ref >> 32), m, TSG_FIRING);
		} else {
			struct key_ent *k = (struct key_ent *)(uintptr_t)t.ref;
			struct rule_rt *rt = &e->rules[k->rule];

			key_eval(e, k);
			if (key_idle(e, rt, k))
				key_unlink_free(e, rt, k);
		}
	}
}

void tsg_engine_advance(struct tsg_engine *e, uint64_t now_ns)
{
	run_timers(e, now_ns, true);
	if (now_ns > e->now)
		e->now = now_ns;
}

uint64_t tsg_engine_next_deadline(const struct tsg_engine *e)
{
	return e->nheap ? e->heap[0].deadline : UINT64_MAX;
}

uint64_t tsg_engine_now(const struct tsg_engine *e)
{
	return e->now;
}

/* ---- events ------------------------------------------------------------------ */

/* Rules on the transition itself: transition and rate rules. */
static void feed_transition(struct tsg_engine *e, const struct tsg_event *ev,
			    const struct tsg_sockinfo *info, uint8_t from, bool has_since,
			    uint64_t since)
{
	IDX_FOREACH(&e->trans_idx[from < TSG_NSTATES ? from : 0][ev->to], info, ri, {
		struct rule_rt *rt = &e->rules[ri];

		if (tsg_match_sock(&rt->r->match, info)) {
			e->st.events_matched++;
			if (rt->r->kind == TSG_KIND_RATE)
				rate_push(e, rt, info);
			else
				transition_fire(e, rt, info, ev->sk, from, ev->to, has_since,
						since);
		}
	});
}

void tsg_engine_feed(struct tsg_engine *e, const struct tsg_event *ev)
{
	struct sock_ent *s = NULL;
	struct tsg_sockinfo cur;
	const struct tsg_sockinfo *info;
	uint8_t from, to = ev->to;
	uint64_t since = 0;
	bool has_since = false;
	uint32_t si;

	e->st.events++;
	if (ev->ts_ns < e->now) {
		e->st.out_of_order++;
	} else {
		run_timers(e, ev->ts_ns, false);
		e->now = ev->ts_ns;
	}
	if (ev->kind == TSG_EV_QUEUE) {
		queue_sample(e, ev);
		return;
	}
	if (to == TSG_STATE_NONE || to >= TSG_NSTATES)
		return;

	si = sock_find(e, ev->sk, NULL);
	if (si) {
		s = sock_at(e, si);
		sock_pack_merge(&e->side, s, &ev->info);
		sock_unpack(&e->side, s, &cur);
		info = &cur;
		/* the event's own `from` is the truth (live); else what we saw */
		from = ev->from ? ev->from : s->state;
		if (ev->since_ns) {
			since = ev->since_ns;
			has_since = true;
		} else if (s->state && s->state == from) {
			since = s->since; /* may be 0: a socket seen at ts 0 */
			has_since = true;
		}
	} else {
		info = &ev->info;
		from = ev->from;
		since = ev->since_ns;
		has_since = ev->since_ns != 0;
	}

	/* transition and rate rules: real transitions only, not the snapshot,
	 * nor an update of a socket's fields (from == to: a connect's port) */
	if (!ev->snapshot && from != to)
		feed_transition(e, ev, info, from, has_since, since);

	if (from == TSG_LISTEN && to != TSG_LISTEN)
		queue_listener_gone(e, ev->sk);

	if (s && s->state == to) {
		/* a snapshot taken again (after a reload) of a socket already
		 * known: it joins the rules it is not in yet, keeping its age */
		if (ev->snapshot)
			sock_join_new_rules(e, si, info);
		return; /* no state change (a duplicate) */
	}
	if (s) {
		sock_leave(e, si);
		if (e->st.per_state[s->state])
			e->st.per_state[s->state]--;
		s->state = TSG_STATE_NONE;
	}
	if (to == TSG_CLOSE) {
		if (s)
			sock_free(e, si);
		return;
	}
	if (!s) {
		/* live: only sockets that some time or count rule watches need an entry */
		if (!e->keep_idle && !e->state_idx[to].total)
			return;
		si = sock_add(e, ev->sk);
		if (!si)
			return;
		s = sock_at(e, si);
		sock_pack_merge(&e->side, s, &ev->info);
		sock_unpack(&e->side, s, &cur);
		info = &cur;
	}
	/* the state began at the event's own time, also when it is read late */
	sock_enter(e, si, info, to, ev->snapshot && ev->since_ns ? ev->since_ns :
			     ev->ts_ns < e->now ? ev->ts_ns : e->now);
	if (!e->keep_idle && !sock_in_rule(e, s, UINT32_MAX)) {
		e->st.per_state[s->state]--;
		sock_free(e, si);
	}
}

/* ---- setup ------------------------------------------------------------------------ */

/* Up to this many ports of one rule go into a port index. */
#define IDX_MAX_PORTS 256

/* The ports of a set made of positive items only and few ports, else 0. */
static size_t small_portset(const struct tsg_portset *ps)
{
	size_t n = 0;

	if (!ps->n)
		return 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->v[i].neg)
			return 0;
		n += (size_t)ps->v[i].hi - ps->v[i].lo + 1;
		if (n > IDX_MAX_PORTS)
			return 0;
	}
	return n;
}

static int port_push(struct port_ent **v, size_t *n, const struct tsg_portset *ps, uint32_t rule)
{
	size_t add = small_portset(ps);
	struct port_ent *nv = realloc(*v, (*n + add) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	for (size_t i = 0; i < ps->n; i++)
		for (uint32_t p = ps->v[i].lo; p <= ps->v[i].hi; p++)
			nv[(*n)++] = (struct port_ent){ .port = (uint16_t)p, .rule = rule };
	return 0;
}

static int idx_push(struct idx_list *l, const struct tsg_rule *r, uint32_t v)
{
	uint32_t *n;

	l->total++;
	if (small_portset(&r->match.rport))
		return port_push(&l->rp, &l->nrp, &r->match.rport, v);
	if (small_portset(&r->match.lport))
		return port_push(&l->lp, &l->nlp, &r->match.lport, v);
	n = realloc(l->v, (l->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	l->v = n;
	l->v[l->n++] = v;
	return 0;
}

static int port_cmp(const void *a, const void *b)
{
	const struct port_ent *x = a, *y = b;

	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static void idx_sort(struct idx_list *l)
{
	if (l->nrp)
		qsort(l->rp, l->nrp, sizeof(*l->rp), port_cmp);
	if (l->nlp)
		qsort(l->lp, l->nlp, sizeof(*l->lp), port_cmp);
}

static void idx_free(struct idx_list *l)
{
	free(l->v);
	free(l->rp);
	free(l->lp);
	memset(l, 0, sizeof(*l));
}

static void index_free(struct tsg_engine *e)
{
	for (int f = 0; f < TSG_NSTATES; f++) {
		for (int t = 0; t < TSG_NSTATES; t++)
			idx_free(&e->trans_idx[f][t]);
		idx_free(&e->state_idx[f]);
	}
	idx_free(&e->queue_idx);
}

static int index_build(struct tsg_engine *e)
{
	for (size_t i = 0; i < e->nrules; i++) {
		const struct tsg_rule *r = e->rules[i].r;

		if (!r->enabled)
			continue;
		if (r->kind == TSG_KIND_QUEUE) {
			if (idx_push(&e->queue_idx, r, (uint32_t)i) < 0)
				return -ENOMEM;
			continue;
		}
		if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT) {
			if (idx_push(&e->state_idx[r->state], r, (uint32_t)i) < 0)
				return -ENOMEM;
			continue;
		}
		for (int f = 0; f < TSG_NSTATES; f++) {
			/* from unknown (0) matches only rules without a from */
			if (f == 0 ? r->from != 0 : (r->from && !(r->from & (1u << f))))
				continue;
			for (int t = 1; t < TSG_NSTATES; t++) {
				if (r->to && !(r->to & (1u << t)))
					continue;
				if (idx_push(&e->trans_idx[f][t], r, (uint32_t)i) < 0)
					return -ENOMEM;
			}
		}
	}
	for (int f = 0; f < TSG_NSTATES; f++) {
		for (int t = 0; t < TSG_NSTATES; t++)
			idx_sort(&e->trans_idx[f][t]);
		idx_sort(&e->state_idx[f]);
	}
	idx_sort(&e->queue_idx);
	return 0;
}

int tsg_engine_new(const struct tsg_ruleset *rs, const struct tsg_engine_opts *opts,
		   tsg_notify_fn notify_fn, void *ctx, struct tsg_engine **out)
{
	struct tsg_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	if (opts)
		e->opts = *opts;
	if (!e->opts.max_sockets)
		e->opts.max_sockets = TSG_ENGINE_MAX_SOCKETS;
	if (e->opts.max_sockets > TSG_ENGINE_SOCKETS_LIMIT)
		e->opts.max_sockets = TSG_ENGINE_SOCKETS_LIMIT;
	pool_init(&e->sockp, sizeof(struct sock_ent));
	pool_init(&e->membp, sizeof(struct memb));
	sock_side_init(&e->side);
	pool_init(&e->firedp, sizeof(struct tsg_sockinfo));
	if (rs->nrules >= RULES_MAX) {
		free(e);
		return -E2BIG;
	}
	if (!e->opts.max_keys_per_rule)
		e->opts.max_keys_per_rule = 65536;
	if (!e->opts.host)
		e->opts.host = tsg_hostname();
	e->keep_idle = opts && opts->keep_idle_sockets;
	e->notify = notify_fn;
	e->ctx = ctx;
	e->rs = rs;
	e->nrules = rs->nrules;
	e->rules = calloc(rs->nrules ? rs->nrules : 1, sizeof(*e->rules));
	if (!e->rules)
		goto fail;
	for (size_t i = 0; i < rs->nrules; i++)
		e->rules[i].r = &rs->rules[i];
	if (index_build(e) < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	tsg_engine_free(e);
	return -ENOMEM;
}

/* Frees a rule's key table (its timers leave the heap). */
static void rule_rt_fini(struct tsg_engine *e, struct rule_rt *rt)
{
	for (size_t b = 0; b < rt->nbuckets; b++) {
		struct key_ent *k = rt->buckets[b], *nx;

		for (; k; k = nx) {
			nx = k->next;
			key_free(e, k);
		}
	}
	free(rt->buckets);
	rt->buckets = NULL;
	rt->nbuckets = rt->nkeys = 0;
}

static void rules_rt_free(struct tsg_engine *e, struct rule_rt *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_rt_fini(e, &rules[i]);
	free(rules);
}

void tsg_engine_free(struct tsg_engine *e)
{
	if (!e)
		return;
	/* disarm every timer first, while their owners are all alive */
	for (size_t i = 0; i < e->nheap; i++)
		*ref_idx(e, e->heap[i].ref) = UINT32_MAX;
	e->nheap = 0;
	for (size_t i = 0; i < e->scap; i++)
		if (e->socks[i])
			sock_records_free(e, sock_at(e, e->socks[i]));
	free(e->socks);
	if (e->rules)
		rules_rt_free(e, e->rules, e->nrules);
	index_free(e);
	pool_fini(&e->sockp);
	pool_fini(&e->membp);
	sock_side_fini(&e->side);
	pool_fini(&e->firedp);
	free(e->heap);
	free(e);
}

/* ---- reload --------------------------------------------------------------------- */

int tsg_engine_swap_rules(struct tsg_engine *e, const struct tsg_ruleset *rs)
{
	struct rule_rt *nr;
	uint32_t *map; /* old rule index -> new index, UINT32_MAX: gone */

	if (rs->nrules >= RULES_MAX)
		return -E2BIG;
	nr = calloc(rs->nrules ? rs->nrules : 1, sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	map = malloc((e->nrules ? e->nrules : 1) * sizeof(*map));
	if (!map) {
		free(nr);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rs->nrules; i++)
		nr[i].r = &rs->rules[i];
	for (size_t o = 0; o < e->nrules; o++) {
		const struct tsg_rule *or = e->rules[o].r;

		map[o] = UINT32_MAX;
		for (size_t i = 0; i < rs->nrules; i++) {
			const struct tsg_rule *r = &rs->rules[i];

			if (!strcmp(r->name, or->name) && r->digest == or->digest &&
			    r->enabled == or->enabled && !nr[i].buckets) {
				map[o] = (uint32_t)i;
				break;
			}
		}
	}

	/* sockets: remap memberships and cooldowns, end those of rules that went away */
	for (size_t i = 0; i < e->scap; i++) {
		struct sock_ent *s = e->socks[i] ? sock_at(e, e->socks[i]) : NULL;
		uint32_t *pp = s ? &s->memb : NULL;

		while (pp && *pp) {
			uint32_t mi = *pp;
			struct memb *m = memb_at(e, mi);

			if (map[m->rule] == UINT32_MAX) {
				*pp = m->next;
				if (m->type == M_COUNT && m->u.key && m->u.key->count)
					m->u.key->count--;
				memb_release(e, mi);
				continue;
			}
			m->rule = map[m->rule] & (RULES_MAX - 1);
			pp = &m->next;
		}
	}
	/* key tables move with unchanged rules; the others are dropped */
	for (size_t o = 0; o < e->nrules; o++) {
		struct rule_rt *ort = &e->rules[o];

		if (map[o] == UINT32_MAX) {
			if (ort->st.firing_now)
				log_info("rule %s changed or removed on reload: %llu firing "
					 "alert(s) dropped without a resolved notification",
					 ort->r->name, (unsigned long long)ort->st.firing_now);
			rule_rt_fini(e, ort);
			continue;
		}
		nr[map[o]].buckets = ort->buckets;
		nr[map[o]].nbuckets = ort->nbuckets;
		nr[map[o]].nkeys = ort->nkeys;
		nr[map[o]].st = ort->st;
		for (size_t b = 0; b < ort->nbuckets; b++)
			for (struct key_ent *k = ort->buckets[b]; k; k = k->next)
				k->rule = map[o];
	}
	free(e->rules);
	free(map);
	index_free(e);
	e->rules = nr;
	e->nrules = rs->nrules;
	e->rs = rs;
	return index_build(e);
}

void tsg_engine_get_stats(const struct tsg_engine *e, struct tsg_engine_stats *st)
{
	*st = e->st;
	st->sockets = e->nsocks;
}

void tsg_engine_rule_stats(const struct tsg_engine *e, size_t rule_index,
			   struct tsg_rule_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (rule_index >= e->nrules)
		return;
	*st = e->rules[rule_index].st;
	st->keys = e->rules[rule_index].nkeys;
}

/* ---- alerts now (tsguard ctl) ------------------------------------------------ */

static uint64_t sock_suppressed(const struct tsg_engine *e, const struct sock_ent *s,
				uint32_t rule)
{
	for (uint32_t mi = s->memb; mi; mi = memb_at(e, mi)->next)
		if (memb_at(e, mi)->type == M_CD && memb_at(e, mi)->rule == rule)
			return memb_at(e, mi)->u.cd->suppressed;
	return 0;
}

static void view_init(const struct tsg_engine *e, struct tsg_alert_view *v,
		      const struct tsg_rule *r)
{
	memset(v, 0, sizeof(*v));
	alert_init(&v->alert, r, TSG_FIRING);
	v->alert.rs = e->rs;
	v->alert.ts_ns = e->now;
	v->alert.wall_ns = tsg_wall_ns();
	v->alert.host = e->opts.host;
	v->alert.dry_run = e->opts.dry_run;
}

size_t tsg_engine_foreach_alert(const struct tsg_engine *e, tsg_alert_view_fn fn, void *ctx)
{
	struct tsg_alert_view v;
	size_t n = 0;

	for (size_t i = 0; i < e->scap; i++) {
		const struct sock_ent *s = e->socks[i] ? sock_at(e, e->socks[i]) : NULL;

		for (uint32_t mi = s ? s->memb : 0; mi; mi = memb_at(e, mi)->next) {
			const struct memb *m = memb_at(e, mi);
			const struct tsg_rule *r = e->rules[m->rule].r;

			if (m->type != M_TIME || m->astate != A_FIRING)
				continue;
			view_init(e, &v, r);
			time_alert_info(e, s, m, true, &v.alert.info);
			v.alert.key_is_sock = true;
			v.alert.sk = s->sk;
			v.alert.state = r->state;
			v.alert.has_duration = true;
			v.alert.duration_ns = e->now - s->since;
			v.alert.suppressed = sock_suppressed(e, s, m->rule);
			v.silenced = m->silenced;
			v.since_ns = s->since + r->longer_than_ns;
			n++;
			fn(ctx, &v);
		}
	}
	for (size_t ri = 0; ri < e->nrules; ri++) {
		const struct rule_rt *rt = &e->rules[ri];

		for (size_t b = 0; b < rt->nbuckets; b++)
			for (const struct key_ent *k = rt->buckets[b]; k; k = k->next) {
				if (k->astate == A_INACTIVE)
					continue;
				view_init(e, &v, rt->r);
				v.alert.state = rt->r->kind == TSG_KIND_COUNT ? rt->r->state : 0;
				v.alert.info = k->key;
				v.alert.has_count = rt->r->kind != TSG_KIND_QUEUE;
				if (rt->r->kind == TSG_KIND_QUEUE)
					queue_fill(&v.alert, k);
				else
					v.alert.count = rt->r->kind == TSG_KIND_COUNT
								? k->count
								: rate_reported(rt->r, k);
				v.alert.suppressed = k->suppressed;
				v.pending = k->astate == A_PENDING;
				v.silenced = k->silenced;
				v.since_ns = k->pending_since;
				if (k->astate == A_FIRING)
					v.since_ns += rt->r->for_ns;
				n++;
				fn(ctx, &v);
			}
	}
	return n;
}

/* ---- tracked sockets --------------------------------------------------------------- */

size_t tsg_engine_foreach_socket(const struct tsg_engine *e, tsg_socket_fn fn, void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; e && i < e->scap; i++) {
		const struct sock_ent *s = e->socks[i] ? sock_at(e, e->socks[i]) : NULL;
		struct tsg_sockinfo info;

		if (!s)
			continue;
		n++;
		if (!fn)
			continue;
		sock_unpack(&e->side, s, &info);
		fn(ctx, s->sk, s->state, s->since, &info);
	}
	return n;
}
