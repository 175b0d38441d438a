/* SPDX-License-Identifier: MIT */
/*
 * tsguard: actions (syslog, exec, webhook, destroy) behind one small interface.
 *
 * tsg_actions_fire() never blocks the event side: it renders everything an
 * action needs at once (argv, environment, body: no pointer into the alert
 * or the ruleset is kept, so a reload may free the old ruleset) and queues
 * it. Queues are bounded; overflow is counted and logged.
 */
#ifndef TSG_ACTION_H
#define TSG_ACTION_H

#include "alert.h"
#include <stdio.h>

struct tsg_actions;

/*
 * Closes one socket in the kernel (the destroy action): its cookie, its
 * network namespace (inode; 0: tsguard's own) and the fields the alert knows
 * of it. 0, or -errno (-ENOENT: no such socket).
 */
typedef int (*tsg_destroy_fn)(void *ctx, uint64_t cookie, uint32_t netns,
			      const struct tsg_sockinfo *expect);

struct tsg_actions_opts {
	bool dry_run;      /* print what would run to dry_out; run nothing */
	FILE *dry_out;     /* default stdout */
	bool dry_json;     /* dry run lines as {"dry_run": {...}} JSON objects */
	size_t webhook_queue; /* default 1024 */
	size_t exec_queue;    /* per action; default 256 */
	uint64_t am_resend_ns; /* Alertmanager re-send period while firing; default 60s */
	/* destroy actions run this (the live capture); NULL: there is none
	 * (replay), and each destroy run fails, counted and logged */
	tsg_destroy_fn destroy;
	void *destroy_ctx;
};

/* Per action results, for metrics and logs. */
struct tsg_action_stats {
	uint64_t sent, failed, timed_out, retried, dropped;
	uint64_t queued_now;
	uint64_t skipped; /* not run: a bound of the action (destroy: max_per_minute) */
};

int tsg_actions_new(const struct tsg_ruleset *rs, const struct tsg_actions_opts *opts,
		    struct tsg_actions **out);
/* Runs (or, in dry run, prints) every action of a->rule for this notification. */
void tsg_actions_fire(struct tsg_actions *acts, const struct tsg_alert *a);
/* Reload: new action definitions; in-flight work finishes under the old ones. */
int tsg_actions_swap(struct tsg_actions *acts, const struct tsg_ruleset *rs);
/* Stats of the action named `name` (0 or -ENOENT). */
int tsg_actions_get_stats(const struct tsg_actions *acts, const char *name,
			  struct tsg_action_stats *st);
/* Stats of one URL of the webhook action `name` (0 or -ENOENT): every URL
 * counts its own deliveries; the action's stats are their sums. */
int tsg_actions_get_url_stats(const struct tsg_actions *acts, const char *name, const char *url,
			      struct tsg_action_stats *st);
/* Stops: pending work gets its timeout to finish, then everything is freed. */
void tsg_actions_free(struct tsg_actions *acts);

#endif
