/* SPDX-License-Identifier: MIT */
/*
 * tsguard: internals shared by the action runners (not a public API).
 *
 * action.c owns the tsg_actions object, the per-action counters, logging and
 * the rendering helpers; syslog.c, exec.c and webhook.c each own one runner
 * (a worker thread with a bounded queue). A job owns every byte it needs: no
 * pointer into an alert or a ruleset survives tsg_actions_fire().
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

/* Blocks every signal while creating a thread, so workers never take the
 * main program's signals (SIGHUP, SIGTERM, SIGPIPE ...). */
int tsg_act_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

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

/* ---- runners ------------------------------------------------------------ *
 * _stop asks a runner to finish (non-blocking); _free joins and frees it
 * (bounded: pending work gets its timeout, then it is abandoned). */

struct tsg_syslog_runner;
struct tsg_exec_runner;
struct tsg_webhook_runner;

int tsg_syslog_runner_new(size_t cap, struct tsg_syslog_runner **out);
void tsg_syslog_fire(struct tsg_syslog_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d, struct tsg_act_stat *st);
void tsg_syslog_runner_stop(struct tsg_syslog_runner *r);
void tsg_syslog_runner_free(struct tsg_syslog_runner *r);

int tsg_exec_runner_new(size_t queue_cap, struct tsg_exec_runner **out);
void tsg_exec_fire(struct tsg_exec_runner *r, struct tsg_act_ctx *c,
		   const struct tsg_action_def *d, struct tsg_act_stat *st);
void tsg_exec_runner_stop(struct tsg_exec_runner *r);
void tsg_exec_runner_free(struct tsg_exec_runner *r);

int tsg_webhook_runner_new(size_t queue_cap, uint64_t am_resend_ns,
			   struct tsg_webhook_runner **out);
void tsg_webhook_fire(struct tsg_webhook_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st);
/* Reload: forget Alertmanager re-sends of actions/rules that no longer exist. */
void tsg_webhook_swap(struct tsg_webhook_runner *r, const struct tsg_ruleset *rs);
void tsg_webhook_runner_stop(struct tsg_webhook_runner *r);
void tsg_webhook_runner_free(struct tsg_webhook_runner *r);

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

#endif
