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
 *
 * This file: records, the timer heap, notifications, sockets, transition
 * rules, timers, events. engine_keys.c: key tables, count, rate and queue
 * rules. engine_setup.c: setup, reload, stats, alerts now. engine_priv.h:
 * the data they share.
 */
#include "engine_priv.h"
#include "log.h"
#include "match.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- timer heap ---------------------------------------------------------- */

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
void eng_timer_cancel(struct tsg_engine *e, uint32_t *hidx)
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

int eng_timer_arm(struct tsg_engine *e, uint64_t ref, uint64_t deadline)
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

void eng_notify(struct tsg_engine *e, struct tsg_alert *a)
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
uint32_t eng_sock_find(const struct tsg_engine *e, uint64_t sk, size_t *slot)
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
void eng_memb_release(struct tsg_engine *e, uint32_t mi)
{
	struct memb *m = memb_at(e, mi);

	if (m->type == M_TIME) {
		eng_timer_cancel(e, &m->u.t.heap_idx);
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
void eng_time_alert_info(const struct tsg_engine *e, const struct sock_ent *s,
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
	eng_time_alert_info(e, s, m, status == TSG_RESOLVED, &a.info);
	a.key_is_sock = true;
	a.sk = s->sk;
	a.state = r->state;
	a.has_duration = true;
	a.duration_ns = e->now - s->since;
	if (status == TSG_FIRING) {
		struct sock_cd *cd = r->cooldown_ns ? sock_cd_get(e, s, m->rule) : NULL;

		if (cd) {
			bool once = cd->last_fire || cd->suppressed;

			if (!eng_cooldown_pass(e, r, &once, &cd->last_fire, &cd->suppressed, &a)) {
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
	eng_notify(e, &a);
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
			eng_key_eval(e, m->u.key);
			if (eng_key_idle(e, rt, m->u.key))
				eng_key_unlink_free(e, rt, m->u.key);
		}
		eng_memb_release(e, mi);
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
	if (r->kind != TSG_KIND_TIME && !(k = eng_key_get(e, rt, info)))
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
			eng_timer_arm(e, MREF(si, mi), deadline);
	} else {
		memb_at(e, mi)->u.key = k;
		k->count++;
		eng_key_eval(e, k);
	}
}

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
void eng_sock_records_free(struct tsg_engine *e, struct sock_ent *s)
{
	uint32_t mi = s->memb, next;

	for (; mi; mi = next) {
		next = memb_at(e, mi)->next;
		eng_memb_release(e, mi);
	}
	s->memb = 0;
	sock_pack_release(&e->side, s);
}

static void sock_free(struct tsg_engine *e, uint32_t si)
{
	struct sock_ent *s = sock_at(e, si);
	size_t slot = 0;

	if (eng_sock_find(e, s->sk, &slot) == si)
		sock_remove_slot(e, slot);
	eng_sock_records_free(e, s);
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
		struct key_ent *k = eng_key_get(e, rt, info);

		if (k && !eng_cooldown_pass(e, r, &k->fired_once, &k->last_fire, &k->suppressed, &a))
			return;
	}
	eng_notify(e, &a);
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
		eng_timer_cancel(e, ref_idx(e, t.ref));
		if (t.ref & 1) {
			struct memb *m = memb_at(e, (uint32_t)t.ref >> 1);

			if (m->astate == A_INACTIVE)
				time_alert(e, (uint32_t)(t.ref >> 32), m, TSG_FIRING);
		} else {
			struct key_ent *k = (struct key_ent *)(uintptr_t)t.ref;
			struct rule_rt *rt = &e->rules[k->rule];

			eng_key_eval(e, k);
			if (eng_key_idle(e, rt, k))
				eng_key_unlink_free(e, rt, k);
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
				eng_rate_push(e, rt, info);
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
		eng_queue_sample(e, ev);
		return;
	}
	if (to == TSG_STATE_NONE || to >= TSG_NSTATES)
		return;

	si = eng_sock_find(e, ev->sk, NULL);
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
		eng_queue_listener_gone(e, ev->sk);

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
