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
	char *ident;
	int prio; /* facility | level */
	char *line;
	char *rule;
	struct tsg_act_stat *st;
	struct sl_job *next;
};

struct tsg_syslog_runner {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sl_job *head, *tail;
	size_t n, cap;
	bool stop;
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
	free(j->ident);
	free(j->line);
	free(j->rule);
	free(j);
}

static void cleanup_job(void *p)
{
	job_free(p);
}

static void *sl_main(void *arg)
{
	struct tsg_syslog_runner *r = arg;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		struct sl_job *j;

		pthread_mutex_lock(&r->lock);
		while (!r->head && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		j = r->head;
		if (j) {
			r->head = j->next;
			if (!r->head)
				r->tail = NULL;
			r->n--;
		}
		pthread_mutex_unlock(&r->lock);
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
		/* syslog(3) may block on a stalled daemon: the only place a
		 * shutdown may cancel this thread */
		pthread_cleanup_push(cleanup_job, j);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		syslog(j->prio, "%s", j->line);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_cleanup_pop(0);
		/* syslog(3) reports nothing: handed to the daemon is all we know */
		atomic_fetch_add(&j->st->sent, 1);
		atomic_fetch_sub(&j->st->queued_now, 1);
		job_free(j);
	}
	return NULL;
}

int tsg_syslog_runner_new(size_t cap, struct tsg_syslog_runner **out)
{
	struct tsg_syslog_runner *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->cap = cap ? cap : 1024;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	err = tsg_act_thread_start(&r->thread, sl_main, r);
	if (err < 0) {
		act_err("syslog: cannot start the worker thread: %s", strerror(-err));
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void tsg_syslog_fire(struct tsg_syslog_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	struct sl_job *j = calloc(1, sizeof(*j));
	bool full;

	if (j) {
		j->ident = strdup(sl_ident(d));
		j->line = sl_line(c, d);
		j->rule = strdup(c->a->rule->name);
		j->prio = sl_priority(d, c->a);
		j->st = st;
	}
	if (!j || !j->ident || !j->line || !j->rule) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: out of memory", c->a->rule->name, d->name);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&r->lock);
	full = r->n >= r->cap || r->stop;
	if (!full) {
		if (r->tail)
			r->tail->next = j;
		else
			r->head = j;
		r->tail = j;
		r->n++;
		atomic_fetch_add(&st->queued_now, 1);
		pthread_cond_signal(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	if (full) {
		uint64_t n = atomic_fetch_add(&st->dropped, 1) + 1;

		if (tsg_act_log_drop(n))
			act_warn("rule %s action %s: syslog queue full (%zu), notification "
				 "dropped (%" PRIu64 " dropped so far)",
				 c->a->rule->name, d->name, r->cap, n);
		job_free(j);
	}
}

void tsg_syslog_runner_stop(struct tsg_syslog_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void tsg_syslog_runner_free(struct tsg_syslog_runner *r)
{
	struct timespec dl;
	struct sl_job *j, *n;

	if (!r)
		return;
	tsg_syslog_runner_stop(r);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += TSG_ACT_GRACE_NS / TSG_NSEC_PER_SEC;
	if (pthread_timedjoin_np(r->thread, NULL, &dl)) {
		act_warn("syslog: the daemon does not take messages; giving up on the queue");
		pthread_cancel(r->thread);
		pthread_join(r->thread, NULL);
	}
	for (j = r->head; j; j = n) {
		n = j->next;
		atomic_fetch_add(&j->st->dropped, 1);
		atomic_fetch_sub(&j->st->queued_now, 1);
		job_free(j);
	}
	closelog();
	free(r->ident);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
