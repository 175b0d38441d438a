/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the engine's keys: key tables (hash, lookup, sweep, growth,
 * cooldowns), count and rate alerts, queue rules. engine_priv.h has the data.
 */
#include "engine_priv.h"
#include "log.h"
#include "match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- key tables ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

/* Projects a socket's info onto the `by` fields (a new key's fields); a
 * comm is zero-padded after its NUL, as key_probe_init() takes it. */
static void key_project(uint32_t by, const struct tsg_sockinfo *in, struct tsg_sockinfo *k)
{
	memset(k, 0, sizeof(*k));
	tsg_sockinfo_copy(k, in, by);
	if (k->have & TSG_HAVE(TSG_SF_COMM)) {
		size_t n = strnlen(k->comm, sizeof(k->comm));

		memset(k->comm + n, 0, sizeof(k->comm) - n);
	}
}

/*
 * A look-up of a socket's key without projecting it first (an event looks
 * a key up per keyed rule it feeds): the fields the key has (`by` that the
 * socket knows) and its comm as two words, zero after the NUL.
 */
struct key_probe {
	uint32_t have;
	uint64_t comm[2];
};

static void key_probe_init(struct key_probe *p, uint32_t by, const struct tsg_sockinfo *in)
{
	p->have = in->have & by;
	p->comm[0] = p->comm[1] = 0;
	if (!(p->have & TSG_HAVE(TSG_SF_COMM)))
		return;
	memcpy(p->comm, in->comm, sizeof(p->comm));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (int i = 0; i < 2; i++) {
		/* the lowest byte that is zero (bytes above it may show too) */
		uint64_t z =
		    (p->comm[i] - 0x0101010101010101ull) & ~p->comm[i] & 0x8080808080808080ull;

		if (z) {
			unsigned keep = (unsigned)__builtin_ctzll(z) / 8; /* bytes before the NUL */

			p->comm[i] &= keep ? ~0ull >> (64 - 8 * keep) : 0;
			if (i == 0)
				p->comm[1] = 0;
			break;
		}
	}
#else
	{
		char c[TSG_COMM_LEN] = {0};

		memcpy(c, in->comm, strnlen(in->comm, sizeof(c)));
		memcpy(p->comm, c, sizeof(c));
	}
#endif
}

/* Word at a time: the fields the key lacks count as zero, the addresses
 * only when one is known. */
static uint64_t key_hash(const struct key_probe *p, const struct tsg_sockinfo *in)
{
	uint32_t m = p->have;
	uint64_t w[4] = {0}, h = mix(1469598103934665603ull, m);

#define KF(f, v) ((m & TSG_HAVE(TSG_SF_##f)) ? (uint64_t)(v) : 0)
	if (m & TSG_HAVE(TSG_SF_COMM))
		h = mix(mix(h, p->comm[0]), p->comm[1]);
	h = mix(h, (KF(PID, in->pid) << 32) | KF(UID, in->uid));
	h = mix(h, KF(CGROUP, (uintptr_t)in->cgroup)); /* interned: pointer identity */
	if (m & (TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_RADDR))) {
		if (m & TSG_HAVE(TSG_SF_LADDR))
			memcpy(w, in->laddr, 16);
		if (m & TSG_HAVE(TSG_SF_RADDR))
			memcpy(w + 2, in->raddr, 16);
		for (int i = 0; i < 4; i++)
			h = mix(h, w[i]);
	}
	h = mix(h, (KF(LPORT, in->lport) << 24) | (KF(RPORT, in->rport) << 8) |
		       KF(FAMILY, in->family));
	/* netns, and the interned container and pod (pointer identity) */
	h = mix(h, KF(NETNS, in->netns));
	h = mix(h, KF(CONTAINER, (uintptr_t)in->container) ^ (KF(POD, (uintptr_t)in->pod) << 1));
#undef KF
	return tsg_hash64(h); /* the bucket is the low bits: bring the high ones down */
}

/* Is k the projection of `in` that p describes? (A key's fields it lacks
 * are zero.) */
static bool key_equal(const struct tsg_sockinfo *k, const struct key_probe *p,
		      const struct tsg_sockinfo *in)
{
	uint32_t m = p->have;
	uint64_t c[2];

	if (k->have != m)
		return false;
	memcpy(c, k->comm, sizeof(c));
#define KNE(f, x) ((m & TSG_HAVE(TSG_SF_##f)) && (x))
	return !(
	    KNE(COMM, c[0] != p->comm[0] || c[1] != p->comm[1]) || KNE(PID, k->pid != in->pid) ||
	    KNE(UID, k->uid != in->uid) || KNE(CGROUP, k->cgroup != in->cgroup) ||
	    KNE(LADDR, memcmp(k->laddr, in->laddr, 16)) ||
	    KNE(RADDR, memcmp(k->raddr, in->raddr, 16)) || KNE(LPORT, k->lport != in->lport) ||
	    KNE(RPORT, k->rport != in->rport) || KNE(FAMILY, k->family != in->family) ||
	    KNE(NETNS, k->netns != in->netns) || KNE(NETNS_NAME, k->netns_name != in->netns_name) ||
	    KNE(CONTAINER, k->container != in->container) || KNE(POD, k->pod != in->pod));
#undef KNE
}

void eng_key_free(struct tsg_engine *e, struct key_ent *k)
{
	eng_timer_cancel(e, &k->heap_idx);
	tsg_rate_fini(&k->win);
	if (e->nspare >= KEY_SPARE_MAX) {
		free(k);
		return;
	}
	k->next = e->spare_keys;
	e->spare_keys = k;
	e->nspare++;
}

void eng_key_spares_free(struct tsg_engine *e)
{
	for (struct key_ent *k = e->spare_keys, *n; k; k = n) {
		n = k->next;
		free(k);
	}
	e->spare_keys = NULL;
	e->nspare = 0;
}

/* A zeroed key: a spare one, else a new one (NULL when out of memory). */
static struct key_ent *key_alloc(struct tsg_engine *e)
{
	struct key_ent *k = e->spare_keys;

	if (!k)
		return calloc(1, sizeof(*k));
	e->spare_keys = k->next;
	e->nspare--;
	memset(k, 0, sizeof(*k));
	return k;
}

void eng_key_unlink_free(struct tsg_engine *e, struct rule_rt *rt, struct key_ent *k)
{
	struct key_ent **pp = &rt->buckets[k->hash & (rt->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	rt->nkeys--;
	eng_key_free(e, k);
}

/* Can this key be forgotten without losing anything a user would notice? */
bool eng_key_idle(const struct tsg_engine *e, const struct rule_rt *rt, const struct key_ent *k)
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

			if (eng_key_idle(e, rt, k)) {
				*pp = k->next;
				rt->nkeys--;
				eng_key_free(e, k);
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

/* The key of hash h: the projection of `k` that p describes or, with sk != 0
 * (p NULL), the socket sk (queue rules). Added when absent and `add`, with
 * that projection (sk: k) as its fields; NULL when not. */
static struct key_ent *key_lookup(struct tsg_engine *e, struct rule_rt *rt, uint64_t h,
				  const struct tsg_sockinfo *k, const struct key_probe *p,
				  uint64_t sk, bool add)
{
	struct key_ent *ke;

	if (rt->nbuckets) {
		for (ke = rt->buckets[h & (rt->nbuckets - 1)]; ke; ke = ke->next)
			if (ke->hash == h && ke->sk == sk && (sk || key_equal(&ke->key, p, k)))
				return ke;
	}
	if (!add)
		return NULL;
	if (rt->nkeys >= e->opts.max_keys_per_rule && !key_sweep(e, rt)) {
		rt->st.keys_dropped++;
		e->st.keys_dropped++;
		log_warn_once(rt->overflow_logged,
			      "rule %s: more than %zu keys; new keys are not tracked "
			      "(counted in keys_dropped)",
			      rt->r->name, e->opts.max_keys_per_rule);
		return NULL;
	}
	if ((rt->nkeys >= rt->nbuckets && key_grow(rt) < 0) || !(ke = key_alloc(e))) {
		/* out of memory: not tracked, and counted like the key limit */
		rt->st.keys_dropped++;
		e->st.keys_dropped++;
		return NULL;
	}
	ke->heap_idx = UINT32_MAX;
	ke->hash = h;
	if (sk)
		ke->key = *k;
	else
		key_project(rt->r->by, k, &ke->key);
	ke->sk = sk;
	ke->rule = rt->r->index;
	ke->next = rt->buckets[h & (rt->nbuckets - 1)];
	rt->buckets[h & (rt->nbuckets - 1)] = ke;
	rt->nkeys++;
	return ke;
}

struct key_ent *eng_key_get(struct tsg_engine *e, struct rule_rt *rt,
			    const struct tsg_sockinfo *info)
{
	struct key_probe p;

	key_probe_init(&p, rt->r->by, info);
	return key_lookup(e, rt, key_hash(&p, info), info, &p, 0, true);
}

/* Cooldown gate for a firing notification. Returns true to send it. */
bool eng_cooldown_pass(struct tsg_engine *e, const struct tsg_rule *r, bool *fired_once,
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
uint64_t eng_rate_reported(const struct tsg_rule *r, const struct key_ent *k)
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
void eng_queue_fill(struct tsg_alert *a, const struct key_ent *k)
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
		eng_queue_fill(&a, k);
	} else if (r->kind == TSG_KIND_COUNT) {
		a.state = r->state;
		a.count = k->count;
	} else {
		uint64_t n = eng_rate_reported(r, k);

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
		if (!eng_cooldown_pass(e, r, &k->fired_once, &k->last_fire, &k->suppressed, &a)) {
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
	eng_notify(e, &a);
}

/*
 * Re-evaluates a count or rate key at e->now: lifecycle transitions and the
 * key's timer (the earlier of the `for` deadline and, for rate rules, the
 * moment the window next loses an event while that matters).
 */
void eng_key_eval(struct tsg_engine *e, struct key_ent *k)
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
		eng_timer_cancel(e, &k->heap_idx);
	else
		eng_timer_arm(e, (uint64_t)(uintptr_t)k, deadline);
}

void eng_rate_push(struct tsg_engine *e, struct rule_rt *rt, const struct tsg_sockinfo *info)
{
	const struct tsg_rule *r = rt->r;
	struct key_ent *k = eng_key_get(e, rt, info);
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
	eng_key_eval(e, k);
}

/* ---- queue rules -------------------------------------------------------------- */

/* The key of listener sk in a queue rule (found, or added when `add`). */
static struct key_ent *queue_key(struct tsg_engine *e, struct rule_rt *rt, uint64_t sk,
				 const struct tsg_sockinfo *info, bool add)
{
	return key_lookup(e, rt, tsg_hash64(sk), info, NULL, sk, add);
}

/*
 * A queue sample: per queue rule that may match the listener, one key lookup
 * and one evaluation. The listener's fields are what the sample brings over
 * what was known (its socket entry, its key); a listener of which nothing is
 * known cannot be named by an alert, and its sample is only counted.
 */
void eng_queue_sample(struct tsg_engine *e, const struct tsg_event *ev)
{
	uint32_t si = eng_sock_find(e, ev->sk, NULL);
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
			eng_key_eval(e, k);
		}
	});
}

/* A listener left LISTEN (closed): its queue alerts resolve and end. Costs
 * the rules only on a listener's close, and only when queue rules exist. */
void eng_queue_listener_gone(struct tsg_engine *e, uint64_t sk)
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
		eng_key_unlink_free(e, rt, k);
	}
}

