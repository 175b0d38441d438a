/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the engine's setup (rule index, tsg_engine_new, free), reload
 * (tsg_engine_swap_rules), stats and the alerts now (tsguard ctl).
 * engine_priv.h has the data.
 */
#include "engine_priv.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
			eng_key_free(e, k);
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
			eng_sock_records_free(e, sock_at(e, e->socks[i]));
	free(e->socks);
	if (e->rules)
		rules_rt_free(e, e->rules, e->nrules);
	eng_key_spares_free(e);
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
				eng_memb_release(e, mi);
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
			eng_time_alert_info(e, s, m, true, &v.alert.info);
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
					eng_queue_fill(&v.alert, k);
				else
					v.alert.count = rt->r->kind == TSG_KIND_COUNT
								? k->count
								: eng_rate_reported(rt->r, k);
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
