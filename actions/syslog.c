/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the syslog action: syslog(3) to the local daemon from a worker
 * thread, so that a stalled daemon (a full /dev/log queue) never blocks the
 * event side. openlog() state is process-wide, so one thread owns it and
 * re-opens when the ident changes.
 */
#include "action_impl.h"

#include <inttypes.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

struct sl_job {
	struct tsg_act_link link; /* first: queued in a tsg_act_fifo */
	struct tsg_act_job h;
	char *ident;
	int prio; /* facility | level */
	char *line;
};

struct tsg_syslog_runner {
	struct tsg_act_runner base; /* first; its cond wakes the worker */
	struct tsg_act_fifo q;
	char *ident; /* what openlog() holds (worker thread only) */
};

static const char *level_name(int lvl)
{
	static const char *const n[] = { "emerg", "alert", "crit",   "err",
					 "warning", "notice", "info", "debug" };
	return n[lvl & 7];
}

static int sl_priority(const struct tsg_action_def *d, const struct tsg_alert *a)
{
	/* the loader fills in daemon when none is given; 0 is kern */
	return (d->syslog.facility & LOG_FACMASK) | (a->rule->severity & LOG_PRIMASK);
}

static const char *sl_ident(const struct tsg_action_def *d)
{
	return d->syslog.ident && d->syslog.ident[0] ? d->syslog.ident : "tsguard";
}

/* The message: one readable line, or the alert object. */
static char *sl_line(struct tsg_act_ctx *c, const struct tsg_action_def *d)
{
	char buf[2048];

	if (d->syslog.format == TSG_SYSLOG_JSON)
		return strdup(tsg_act_ctx_json(c));
	return strdup(tsg_alert_to_text(c->a, buf, sizeof(buf)));
}

void tsg_syslog_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d)
{
	int prio = sl_priority(d, c->a);
	char *line = sl_line(c, d);
	char *ql = tsg_act_quote(line), *qi = tsg_act_quote(sl_ident(d));

	char *v = NULL;

	if (asprintf(&v, "%s.%s (%d) ident: %s line: %s", tsg_facility_name(prio & LOG_FACMASK),
		     level_name(prio & LOG_PRIMASK), prio, qi ? qi : "?", ql ? ql : "?") < 0)
		v = NULL;
	tsg_act_dry(c, d, "priority", v, false);
	free(v);
	free(ql);
	free(qi);
	free(line);
}

static void job_free(struct sl_job *j)
{
	if (!j)
		return;
	tsg_act_job_fini(&j->h);
	free(j->ident);
	free(j->line);
	free(j);
}

static void cleanup_job(void *p)
{
	job_free(p);
}

/* syslog(3) may block on a stalled daemon: the only place a shutdown may
 * cancel the worker (then j is freed). */
static void sl_send(struct sl_job *j)
{
	pthread_cleanup_push(cleanup_job, j);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	syslog(j->prio, "%s", j->line);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_pop(0);
}

static void *sl_main(void *arg)
{
	struct tsg_syslog_runner *r = arg;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		struct sl_job *j;

		pthread_mutex_lock(&r->base.lock);
		while (!r->q.head && !r->base.stop)
			pthread_cond_wait(&r->base.cond, &r->base.lock);
		j = tsg_act_fifo_pop(&r->q);
		pthread_mutex_unlock(&r->base.lock);
		if (!j)
			break;
		if (!r->ident || strcmp(r->ident, j->ident)) {
			char *id = j->ident;

			closelog();
			free(r->ident);
			r->ident = id; /* openlog() keeps the pointer */
			j->ident = NULL;
			openlog(r->ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		}
		sl_send(j);
		/* syslog(3) reports nothing: handed to the daemon is all we know */
		atomic_fetch_add(&j->h.st->sent, 1);
		atomic_fetch_sub(&j->h.st->queued_now, 1);
		job_free(j);
	}
	return NULL;
}

/* After the join: what the daemon never took is dropped. */
static void sl_fini(struct tsg_act_runner *base)
{
	struct tsg_syslog_runner *r = (struct tsg_syslog_runner *)base;
	struct sl_job *j;

	while ((j = tsg_act_fifo_pop(&r->q))) {
		atomic_fetch_add(&j->h.st->dropped, 1);
		atomic_fetch_sub(&j->h.st->queued_now, 1);
		job_free(j);
	}
	closelog();
	free(r->ident);
}

static const struct tsg_act_runner_def sl_def = {
	"syslog", "worker", 1024, sl_main, .fini = sl_fini,
	.stuck = "syslog: the daemon does not take messages; giving up on the queue",
};

int tsg_syslog_runner_new(size_t cap, struct tsg_syslog_runner **out)
{
	return tsg_act_runner_new(sizeof(**out), &sl_def, cap, NULL, out);
}

void tsg_syslog_fire(struct tsg_syslog_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	struct sl_job *j = calloc(1, sizeof(*j));
	bool full, ok = false;

	if (j) {
		ok = tsg_act_job_init(&j->h, d->name, c->a->rule->name, st);
		j->ident = strdup(sl_ident(d));
		j->line = sl_line(c, d);
		j->prio = sl_priority(d, c->a);
	}
	if (!ok || !j->ident || !j->line) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: out of memory", c->a->rule->name, d->name);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&r->base.lock);
	full = r->q.n >= r->base.cap || r->base.stop;
	if (!full) {
		tsg_act_fifo_push(&r->q, &j->link);
		atomic_fetch_add(&st->queued_now, 1);
		tsg_act_runner_wake(&r->base);
	}
	pthread_mutex_unlock(&r->base.lock);
	if (full) {
		uint64_t n;

		if (tsg_act_count_drop(st, &n))
			act_warn("rule %s action %s: syslog queue full (%zu), notification "
				 "dropped (%" PRIu64 " dropped so far)",
				 c->a->rule->name, d->name, r->base.cap, n);
		job_free(j);
	}
}
