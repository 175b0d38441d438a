/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the evaluation engine's private data (engine.c describes it),
 * shared by engine.c (records, timer heap, notifications, sockets,
 * transition rules, timers, events), engine_keys.c (key tables, count, rate
 * and queue rules) and engine_setup.c (setup, reload, stats, alerts now).
 */
#ifndef TSG_ENGINE_PRIV_H
#define TSG_ENGINE_PRIV_H

#include "engine.h"
#include "rate.h"
#include "sockpack.h"

#include <string.h>

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

	/* keys freed, kept for the next new key (a count key of a passing
	 * state comes and goes with each socket): at most KEY_SPARE_MAX */
	struct key_ent *spare_keys;
	size_t nspare;
};
#define KEY_SPARE_MAX 64

/* ---- records ------------------------------------------------------------- */

static inline struct sock_ent *sock_at(const struct tsg_engine *e, uint32_t i)
{
	return pool_at(&e->sockp, i);
}

static inline struct memb *memb_at(const struct tsg_engine *e, uint32_t i)
{
	return pool_at(&e->membp, i);
}

/* ---- timer heap ---------------------------------------------------------- */

/* Where the owner of a heap entry keeps its position. */
static inline uint32_t *ref_idx(const struct tsg_engine *e, uint64_t ref)
{
	if (ref & 1)
		return &memb_at(e, (uint32_t)ref >> 1)->u.t.heap_idx;
	return &((struct key_ent *)(uintptr_t)ref)->heap_idx;
}

/* ---- notifications ------------------------------------------------------- */

static inline void alert_init(struct tsg_alert *a, const struct tsg_rule *r, int status)
{
	memset(a, 0, sizeof(*a));
	a->rule = r;
	a->status = status;
}

/* ---- sockets -------------------------------------------------------------- */

/* First entry with this port in a sorted array, or end. */
static inline const struct port_ent *port_lower(const struct port_ent *v, size_t n, uint16_t port)
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

/* IDX_FOREACH's part for one port index: the rules of the entries for key */
#define IDX_PORT_FOREACH_(v, n, key, ri, body)                                               \
	do {                                                                                 \
		const struct port_ent *p_ = port_lower((v), (n), (key));                     \
		for (; p_ < (v) + (n) && p_->port == (key); p_++) {                          \
			uint32_t ri = p_->rule;                                              \
			body;                                                                \
		}                                                                            \
	} while (0)

/* Calls fn for every rule of l that may match info (each at most once). */
#define IDX_FOREACH(l, info, ri, body)                                                       \
	do {                                                                                 \
		const struct idx_list *l_ = (l);                                             \
		const struct tsg_sockinfo *i_ = (info);                                      \
		for (size_t k_ = 0; k_ < l_->n; k_++) {                                      \
			uint32_t ri = l_->v[k_];                                             \
			body;                                                                \
		}                                                                            \
		if (l_->nrp && (i_->have & TSG_HAVE(TSG_SF_RPORT)))                          \
			IDX_PORT_FOREACH_(l_->rp, l_->nrp, i_->rport, ri, body);             \
		if (l_->nlp && (i_->have & TSG_HAVE(TSG_SF_LPORT)))                          \
			IDX_PORT_FOREACH_(l_->lp, l_->nlp, i_->lport, ri, body);             \
	} while (0)

/* ---- engine.c: timer heap, notifications, sockets ---------------------- */

void eng_timer_cancel(struct tsg_engine *e, uint32_t *hidx);
int eng_timer_arm(struct tsg_engine *e, uint64_t ref, uint64_t deadline);
void eng_notify(struct tsg_engine *e, struct tsg_alert *a);
uint32_t eng_sock_find(const struct tsg_engine *e, uint64_t sk, size_t *slot);
void eng_memb_release(struct tsg_engine *e, uint32_t mi);
void eng_time_alert_info(const struct tsg_engine *e, const struct sock_ent *s,
			 const struct memb *m, bool resolved, struct tsg_sockinfo *out);
void eng_sock_records_free(struct tsg_engine *e, struct sock_ent *s);

/* ---- engine_keys.c: key tables, count, rate and queue rules ------------ */

void eng_key_free(struct tsg_engine *e, struct key_ent *k);
/* Frees the keys kept for reuse. */
void eng_key_spares_free(struct tsg_engine *e);
void eng_key_unlink_free(struct tsg_engine *e, struct rule_rt *rt, struct key_ent *k);
bool eng_key_idle(const struct tsg_engine *e, const struct rule_rt *rt, const struct key_ent *k);
struct key_ent *eng_key_get(struct tsg_engine *e, struct rule_rt *rt,
			    const struct tsg_sockinfo *info);
bool eng_cooldown_pass(struct tsg_engine *e, const struct tsg_rule *r, bool *fired_once,
		       uint64_t *last_fire, uint64_t *suppressed, struct tsg_alert *a);
uint64_t eng_rate_reported(const struct tsg_rule *r, const struct key_ent *k);
void eng_queue_fill(struct tsg_alert *a, const struct key_ent *k);
void eng_key_eval(struct tsg_engine *e, struct key_ent *k);
void eng_rate_push(struct tsg_engine *e, struct rule_rt *rt, const struct tsg_sockinfo *info);
void eng_queue_sample(struct tsg_engine *e, const struct tsg_event *ev);
void eng_queue_listener_gone(struct tsg_engine *e, uint64_t sk);

#endif /* TSG_ENGINE_PRIV_H */
