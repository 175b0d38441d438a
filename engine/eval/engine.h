/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the evaluation engine. Feeds normalised transitions (live or
 * replay) through the rules, keeps per-socket and per-key state, runs the
 * alert lifecycle on the event clock, and hands notifications to a callback.
 *
 * Single-threaded. Timers (time in state, `for`, rate windows) fire from
 * tsg_engine_advance(); a live loop sleeps until tsg_engine_next_deadline().
 * At one instant, events are applied before timers due at that instant (a
 * socket leaving exactly at its threshold has not been there "longer than").
 */
#ifndef TSG_ENGINE_H
#define TSG_ENGINE_H

#include "alert.h"
#include "ruleset.h"

struct tsg_engine;

typedef void (*tsg_notify_fn)(void *ctx, const struct tsg_alert *alert);

/* Tracked sockets by default (tsguard --max-sockets). The table grows with
 * the sockets tracked; nothing is allocated for the bound itself. */
#define TSG_ENGINE_MAX_SOCKETS (4u << 20)
#define TSG_ENGINE_SOCKETS_LIMIT (1u << 31) /* the largest bound (32-bit indices) */

struct tsg_engine_opts {
	size_t max_sockets;       /* tracked sockets; default TSG_ENGINE_MAX_SOCKETS */
	size_t max_keys_per_rule; /* count/rate/cooldown keys per rule; default 65536 */
	bool dry_run;             /* copied into alerts */
	const char *host;         /* default tsg_hostname() */
	/* Keep an entry for every socket until it closes, so that later events
	 * may omit its fields (replay). Live capture sends full attributes on
	 * every event, so it keeps only sockets that a time or count rule holds. */
	bool keep_idle_sockets;
};

struct tsg_engine_stats {
	uint64_t events;          /* fed */
	uint64_t events_matched;  /* reached at least one rule */
	uint64_t sockets;         /* tracked now */
	uint64_t sockets_dropped; /* not tracked: socket table full (or out of memory) */
	uint64_t keys_dropped;    /* per-rule key limit hit */
	uint64_t notifications;
	uint64_t suppressed;      /* by cooldown */
	uint64_t out_of_order;    /* events older than the clock (clamped) */
	uint64_t rate_coarsened;  /* times a rate window widened its cells (rate.h) */
	uint64_t per_state[TSG_NSTATES]; /* tracked sockets per state */
	uint64_t queue_samples;  /* queue samples fed */
	uint64_t queue_unknown;  /* of them: a listener of which no field is known */
};

/* The ruleset must outlive the engine (or until tsg_engine_swap_rules). */
int tsg_engine_new(const struct tsg_ruleset *rs, const struct tsg_engine_opts *opts,
		   tsg_notify_fn notify, void *ctx, struct tsg_engine **out);
void tsg_engine_free(struct tsg_engine *e);

/* Applies an event (a transition, or a queue sample: ev->kind TSG_EV_QUEUE):
 * first runs timers due strictly before ev->ts_ns. */
void tsg_engine_feed(struct tsg_engine *e, const struct tsg_event *ev);
/* Runs the clock to now_ns, firing every timer due at or before it. */
void tsg_engine_advance(struct tsg_engine *e, uint64_t now_ns);
/* Earliest pending timer, UINT64_MAX when none. */
uint64_t tsg_engine_next_deadline(const struct tsg_engine *e);
uint64_t tsg_engine_now(const struct tsg_engine *e);

/*
 * Reload: switches to `rs`. Alerts and counters of rules whose digest is
 * unchanged keep their state; removed or changed rules are dropped (a firing
 * alert of a removed rule gets no resolved notification; it is logged).
 */
int tsg_engine_swap_rules(struct tsg_engine *e, const struct tsg_ruleset *rs);

void tsg_engine_get_stats(const struct tsg_engine *e, struct tsg_engine_stats *st);

/* Per-rule alert counts for metrics: firing now, notifications sent. */
struct tsg_rule_stats {
	uint64_t firing_now, fired, resolved, suppressed, keys, keys_dropped;
};
void tsg_engine_rule_stats(const struct tsg_engine *e, size_t rule_index,
			   struct tsg_rule_stats *st);

/*
 * An alert now pending (during `for`) or firing, as `tsguard ctl alerts`
 * lists it. `alert` is filled as a notification of it would be (rule, key or
 * socket, count or duration, suppressed so far) with status firing.
 */
struct tsg_alert_view {
	struct tsg_alert alert;
	bool pending;	   /* the condition holds, `for` has not elapsed */
	bool silenced;	   /* firing, its notification suppressed by cooldown */
	uint64_t since_ns; /* event clock: when it became pending, or firing */
};
typedef void (*tsg_alert_view_fn)(void *ctx, const struct tsg_alert_view *v);
/* Calls fn for every alert pending or firing now (time rules: by socket;
 * count and rate rules: by key; queue rules: by listener). Returns how many there are. */
size_t tsg_engine_foreach_alert(const struct tsg_engine *e, tsg_alert_view_fn fn, void *ctx);

/*
 * Calls fn for every socket the engine tracks now (its id, the state events
 * gave it, since when, what it knows of it); the live capture's resync
 * compares them with the kernel's. Returns how many there are.
 */
typedef void (*tsg_socket_fn)(void *ctx, uint64_t sk, uint8_t state, uint64_t since_ns,
			      const struct tsg_sockinfo *info);
size_t tsg_engine_foreach_socket(const struct tsg_engine *e, tsg_socket_fn fn, void *ctx);

#endif
