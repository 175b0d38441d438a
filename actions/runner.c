/* SPDX-License-Identifier: MIT */
/*
 * tsguard: what the syslog, exec and webhook runners share (action_impl.h):
 * the worker thread, the lock, the queue bound, the stop flag and the wake.
 */
#include "action_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Blocks every signal while creating the thread, so workers never take the
 * main program's signals (SIGHUP, SIGTERM, SIGPIPE ...). */
static int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

int tsg_act_runner_new(size_t size, const struct tsg_act_runner_def *def, size_t cap,
		       const void *arg, void *out)
{
	struct tsg_act_runner *r = calloc(1, size);
	int err;

	if (!r)
		return -ENOMEM;
	r->def = def;
	r->cap = cap ? cap : def->default_cap;
	err = def->init ? def->init(r, arg) : 0;
	if (err < 0) {
		free(r);
		return err;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	err = thread_start(&r->thread, def->main, r);
	if (err < 0) {
		act_err("%s: cannot start the %s thread: %s", def->name, def->thread,
			strerror(-err));
		if (def->fini)
			def->fini(r);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		free(r);
		return err;
	}
	*(struct tsg_act_runner **)out = r;
	return 0;
}

void tsg_act_runner_wake(struct tsg_act_runner *r)
{
	if (r->def->wake)
		r->def->wake(r);
	else
		pthread_cond_signal(&r->cond);
}

void tsg_act_runner_stop(struct tsg_act_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (r->def->wake)
		r->def->wake(r);
}

static void join(struct tsg_act_runner *r)
{
	struct timespec dl;

	if (!r->def->stuck) { /* bounded by the worker: it leaves by its stop deadline */
		pthread_join(r->thread, NULL);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += TSG_ACT_GRACE_NS / TSG_NSEC_PER_SEC;
	if (pthread_timedjoin_np(r->thread, NULL, &dl)) {
		act_warn("%s", r->def->stuck);
		pthread_cancel(r->thread);
		pthread_join(r->thread, NULL);
	}
}

void tsg_act_runner_free(struct tsg_act_runner *r)
{
	if (!r)
		return;
	tsg_act_runner_stop(r);
	join(r);
	if (r->def->fini)
		r->def->fini(r);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

bool tsg_act_job_init(struct tsg_act_job *h, const char *action, const char *rule,
		      struct tsg_act_stat *st)
{
	h->action = strdup(action);
	h->rule = strdup(rule);
	h->st = st;
	return h->action && h->rule;
}

void tsg_act_job_fini(struct tsg_act_job *h)
{
	free(h->action);
	free(h->rule);
}

bool tsg_act_count_drop(struct tsg_act_stat *st, uint64_t *n)
{
	*n = atomic_fetch_add(&st->dropped, 1) + 1;
	return tsg_act_log_drop(*n);
}
