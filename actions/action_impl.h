/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals shared by the action runners (not a public API).
 *
 * action.c owns the tsg_actions object, the per-action counters, logging and
 * the rendering helpers; syslog.c, exec.c and webhook.c each own one runner
 * (a worker thread with a bounded queue) built on runner.c. A job owns every
 * byte it needs: no pointer into an alert or a ruleset survives
 * tsg_actions_fire().
 */
#ifndef TSG_ACTION_IMPL_H
#define TSG_ACTION_IMPL_H

#include "action.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

/* ---- logging: the engine's log API (engine/core/log.h), all in this one place -- */

#include "log.h"
#define act_err(...) tsg_log(LOG_ERR, __VA_ARGS__)
#define act_warn(...) tsg_log(LOG_WARNING, __VA_ARGS__)
#define act_info(...) tsg_log(LOG_INFO, __VA_ARGS__)

/* ---- per action counters ---------------------------------------------- */

struct tsg_act_stat {
	char *name;
	atomic_uint_least64_t sent, failed, timed_out, retried, dropped;
	atomic_int_least64_t queued_now;
	atomic_uint_least64_t skipped;
	/* a webhook's counters per URL (name: the URL), TSG_ACT_MAX_URL_STATS at most:
	 * added by the one webhook runner under its lock, read lock-free, freed
	 * with the action's counters */
	_Atomic(struct tsg_act_stat *) urls;
	size_t nurls;
	struct tsg_act_stat *next;
};

#define TSG_ACT_MAX_URL_STATS 64

/* The counters of `url` under the action's `st`: found or added. NULL on ENOMEM
 * or past the bound. One writer only (the webhook runner, under its lock). */
struct tsg_act_stat *tsg_act_url_stat(struct tsg_act_stat *st, const char *url);

/*
 * Dropped notifications are always counted (metrics); the log line is
 * written for the 1st, 2nd, 4th, 8th ... drop of an action, so that a flood
 * of drops cannot flood the log. `n` is the action's drop count after this one.
 */
static inline bool tsg_act_log_drop(uint64_t n)
{
	return n && !(n & (n - 1));
}

/* ---- time --------------------------------------------------------------- */

/* clocks: tsg_mono_ns(), tsg_wall_ns() (engine/core/tsg.h) */

/* ---- rendering ------------------------------------------------------------ */

/* Bound on one rendered template (argv element, header value, body). */
#define TSG_ACT_RENDER_MAX (64 * 1024)

/* A template rendered into a new string (truncated at TSG_ACT_RENDER_MAX). */
char *tsg_act_render(const struct tsg_template *t, const struct tsg_alert *a);
/* `s` as a JSON string literal (malloc'd), for unambiguous printing. */
char *tsg_act_quote(const char *s);
/* NULL-terminated string vector as a JSON array (malloc'd). */
char *tsg_act_quote_vec(char *const *v);

/* What one tsg_actions_fire() call computes once for all its actions. */
struct tsg_act_ctx {
	const struct tsg_alert *a;
	bool dry;
	FILE *out;       /* dry run output */
	bool out_json;   /* dry run output as JSON objects */
	char *json;      /* the alert object, compact, lazily made */
};
const char *tsg_act_ctx_json(struct tsg_act_ctx *c);
/*
 * One dry-run line: "dry-run: action NAME (TYPE) WHAT: VALUE", or with
 * out_json {"dry_run": {"action": NAME, "type": TYPE, "what": WHAT,
 * "value": VALUE}} where VALUE is JSON when `value_is_json`, else a string.
 */
void tsg_act_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d, const char *what,
		 const char *value, bool value_is_json);

/* ---- the runner each queued action type embeds (runner.c) ---------------- *
 * One worker thread (started with every signal blocked), the lock over what
 * it shares with fire(), the queue bound, the stop flag, and how fire() and
 * stop wake the worker: the condition variable, or the runner's own wake. */

struct tsg_act_runner;

struct tsg_act_runner_def {
	const char *name;   /* "syslog", for the log */
	const char *thread; /* "worker", "supervisor" */
	size_t default_cap; /* the queue bound when none is asked for */
	void *(*main)(void *runner);
	void (*wake)(struct tsg_act_runner *r); /* NULL: signal cond */
	/* before the thread starts: what the runner needs besides (NULL: nothing) */
	int (*init)(struct tsg_act_runner *r, const void *arg);
	/* after the join: what is still queued, and what init made */
	void (*fini)(struct tsg_act_runner *r);
	/* set: the join waits TSG_ACT_GRACE_NS, then logs this and cancels the
	 * worker (which must allow it only where it may block) */
	const char *stuck;
};

struct tsg_act_runner {
	const struct tsg_act_runner_def *def;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t cap;
	bool stop; /* under lock: take no more, finish, leave */
};

/*
 * A zeroed runner of `size` bytes (a struct whose first member is the struct
 * tsg_act_runner) into *out: def->init(r, arg), then def->main(r) on its own
 * thread, with the queue bound cap (0: def->default_cap). 0, or -errno
 * (a thread that does not start is logged) with nothing left over.
 */
int tsg_act_runner_new(size_t size, const struct tsg_act_runner_def *def, size_t cap,
		       const void *arg, void *out);
/* Wakes the worker (after queueing, under the lock or not). */
void tsg_act_runner_wake(struct tsg_act_runner *r);
/* Sets stop and wakes the worker; does not wait. NULL-safe. */
void tsg_act_runner_stop(struct tsg_act_runner *r);
/* Stops, joins (bounded: def->stuck), def->fini, frees. NULL-safe. */
void tsg_act_runner_free(struct tsg_act_runner *r);

/* A queue of jobs, each with a struct tsg_act_link as its first member. */
struct tsg_act_link {
	struct tsg_act_link *next;
};

struct tsg_act_fifo {
	struct tsg_act_link *head, *tail;
	size_t n;
};

static inline void tsg_act_fifo_push(struct tsg_act_fifo *q, struct tsg_act_link *l)
{
	l->next = NULL;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
	q->n++;
}

/* The oldest job, or NULL. */
static inline void *tsg_act_fifo_pop(struct tsg_act_fifo *q)
{
	struct tsg_act_link *l = q->head;

	if (l) {
		q->head = l->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		l->next = NULL;
	}
	return l;
}

/* What every job carries: the names of its action and rule (for the log)
 * and its action's counters. */
struct tsg_act_job {
	char *action, *rule;
	struct tsg_act_stat *st;
};

/* Copies both names: true, or false on ENOMEM (then tsg_act_job_fini frees
 * what was copied). */
bool tsg_act_job_init(struct tsg_act_job *h, const char *action, const char *rule,
		      struct tsg_act_stat *st);
void tsg_act_job_fini(struct tsg_act_job *h);

/* Counts one dropped notification of st; true when this one is logged
 * (tsg_act_log_drop), with *n the drops so far. */
bool tsg_act_count_drop(struct tsg_act_stat *st, uint64_t *n);

/* ---- runners ------------------------------------------------------------ *
 * Each begins with its struct tsg_act_runner: tsg_act_runner_of() of one is
 * stopped (non-blocking) and freed (joined, bounded: pending work gets its
 * timeout, then it is abandoned) by tsg_act_runner_stop/_free. */
#define tsg_act_runner_of(runner) ((struct tsg_act_runner *)(runner))

struct tsg_syslog_runner;
struct tsg_exec_runner;
struct tsg_webhook_runner;

int tsg_syslog_runner_new(size_t cap, struct tsg_syslog_runner **out);
void tsg_syslog_fire(struct tsg_syslog_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d, struct tsg_act_stat *st);

int tsg_exec_runner_new(size_t queue_cap, struct tsg_exec_runner **out);
void tsg_exec_fire(struct tsg_exec_runner *r, struct tsg_act_ctx *c,
		   const struct tsg_action_def *d, struct tsg_act_stat *st);

int tsg_webhook_runner_new(size_t queue_cap, uint64_t am_resend_ns,
			   struct tsg_webhook_runner **out);
void tsg_webhook_fire(struct tsg_webhook_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st);
/* Reload: forget Alertmanager re-sends of actions/rules that no longer exist. */
void tsg_webhook_swap(struct tsg_webhook_runner *r, const struct tsg_ruleset *rs);

/* destroy: runs in the caller's thread (no queue); see destroy.c. */
struct tsg_destroy_runner;
int tsg_destroy_runner_new(tsg_destroy_fn fn, void *ctx, struct tsg_destroy_runner **out);
void tsg_destroy_fire(struct tsg_destroy_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st);
/* Prints what it would close (r: its rate limit; NULL: none applied). */
void tsg_destroy_dry(struct tsg_destroy_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d);
void tsg_destroy_runner_free(struct tsg_destroy_runner *r);

/* Dry run printers (no runner needed). */
void tsg_syslog_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d);
void tsg_exec_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d);
void tsg_webhook_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d, uint64_t am_resend_ns);

/* Grace between SIGTERM and SIGKILL, and for joins at shutdown. */
#define TSG_ACT_GRACE_NS (2 * TSG_NSEC_PER_SEC)

/* Frees a NULL-terminated vector of strings (argv, envp, headers). */
void tsg_act_free_vec(char **v);

/* A zeroed object of `size` bytes whose char * at name_off is a copy of name
 * (the node of a list found by name); NULL on ENOMEM. */
void *tsg_act_named_new(size_t size, size_t name_off, const char *name);
#define TSG_ACT_NAMED_NEW(type, field, name)                                                       \
	((type *)tsg_act_named_new(sizeof(type), offsetof(type, field), (name)))

/* The node called key of the list at head (type: char *name, type *next) that
 * counts n nodes, added at the front when there is none and n < max; NULL on
 * ENOMEM or at the bound. */
#define TSG_ACT_NAMED_GET(type, head, n, max, key)                                                 \
	({                                                                                         \
		type *n_ = (head);                                                                 \
		while (n_ && strcmp(n_->name, (key)))                                              \
			n_ = n_->next;                                                             \
		if (!n_ && (n) < (max) && (n_ = TSG_ACT_NAMED_NEW(type, name, (key)))) {           \
			n_->next = (head);                                                         \
			(head) = n_;                                                               \
			(n)++;                                                                     \
		}                                                                                  \
		n_;                                                                                \
	})

#endif
