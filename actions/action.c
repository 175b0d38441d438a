/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the actions object: dispatch of a notification to the rule's
 * actions, dry run, per action counters, logging and rendering helpers.
 */
#include "action_impl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tsg_actions {
	struct tsg_actions_opts opts;
	const struct tsg_ruleset *rs;
	pthread_mutex_t stats_lock;
	pthread_mutex_t runner_lock; /* lazy runner start */
	struct tsg_act_stat *stats; /* list; entries live until tsg_actions_free */
	size_t nstats;
	/* runners start on first use; dry run never starts any */
	struct tsg_syslog_runner *sl;
	struct tsg_exec_runner *ex;
	struct tsg_webhook_runner *wh;
	struct tsg_destroy_runner *dz;
	bool sl_failed, ex_failed, wh_failed, dz_failed;
};

/* Messages waiting for the syslog daemon. */
#define TSG_SYSLOG_QUEUE 1024
/* Bound on distinct action names counted (a reload may bring new ones). */
#define TSG_ACT_MAX_STATS 4096

char *tsg_act_render(const struct tsg_template *t, const struct tsg_alert *a)
{
	char small[512];
	size_t n = tsg_template_render(t, a, small, sizeof(small));
	char *s;

	if (n < sizeof(small))
		return strdup(small);
	if (n >= TSG_ACT_RENDER_MAX)
		n = TSG_ACT_RENDER_MAX - 1;
	s = malloc(n + 1);
	if (s)
		tsg_template_render(t, a, s, n + 1);
	return s;
}

char *tsg_act_quote(const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *out;

	if (!j) /* not UTF-8: keep the bytes, escaped by jansson as far as it can */
		j = json_stringn_nocheck(s, strlen(s));
	if (!j)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(j);
	return out;
}

char *tsg_act_quote_vec(char *const *v)
{
	json_t *arr = json_array();
	char *out;

	if (!arr)
		return NULL;
	for (size_t i = 0; v && v[i]; i++) {
		json_t *j = json_string(v[i]);
		if (!j)
			j = json_stringn_nocheck(v[i], strlen(v[i]));
		json_array_append_new(arr, j);
	}
	out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return out;
}

const char *tsg_act_ctx_json(struct tsg_act_ctx *c)
{
	if (!c->json)
		c->json = tsg_alert_json_dumps(c->a);
	return c->json ? c->json : "{}";
}

/* Finds or adds the counters of `name`. NULL only on ENOMEM or at the bound. */
static struct tsg_act_stat *stat_get(struct tsg_actions *acts, const char *name)
{
	struct tsg_act_stat *s;

	pthread_mutex_lock(&acts->stats_lock);
	s = TSG_ACT_NAMED_GET(struct tsg_act_stat, acts->stats, acts->nstats, TSG_ACT_MAX_STATS,
			      name);
	pthread_mutex_unlock(&acts->stats_lock);
	return s;
}

static void stats_add_set(struct tsg_actions *acts, const struct tsg_ruleset *rs)
{
	for (size_t i = 0; rs && i < rs->nactions; i++)
		stat_get(acts, rs->actions[i].name);
}

int tsg_actions_new(const struct tsg_ruleset *rs, const struct tsg_actions_opts *opts,
		    struct tsg_actions **out)
{
	struct tsg_actions *acts = calloc(1, sizeof(*acts));

	if (!acts)
		return -ENOMEM;
	if (opts)
		acts->opts = *opts;
	if (!acts->opts.dry_out)
		acts->opts.dry_out = stdout;
	if (!acts->opts.webhook_queue)
		acts->opts.webhook_queue = 1024;
	if (!acts->opts.exec_queue)
		acts->opts.exec_queue = 256;
	if (!acts->opts.am_resend_ns)
		acts->opts.am_resend_ns = 60 * TSG_NSEC_PER_SEC;
	pthread_mutex_init(&acts->stats_lock, NULL);
	pthread_mutex_init(&acts->runner_lock, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		pthread_mutex_destroy(&acts->stats_lock);
		pthread_mutex_destroy(&acts->runner_lock);
		free(acts);
		return -ENOMEM;
	}
	acts->rs = rs;
	stats_add_set(acts, rs);
	*out = acts;
	return 0;
}

int tsg_actions_swap(struct tsg_actions *acts, const struct tsg_ruleset *rs)
{
	if (!acts)
		return -EINVAL;
	acts->rs = rs;
	stats_add_set(acts, rs);
	if (acts->wh)
		tsg_webhook_swap(acts->wh, rs);
	return 0;
}

/* Starts a runner on first use; a runner that cannot start is reported once. */
static bool runner_ready_locked(struct tsg_actions *acts, int type)
{
	const struct tsg_actions_opts *o = &acts->opts;

	switch (type) {
	case TSG_ACT_SYSLOG:
		if (!acts->sl && !acts->sl_failed)
			acts->sl_failed = tsg_syslog_runner_new(TSG_SYSLOG_QUEUE, &acts->sl) < 0;
		return acts->sl;
	case TSG_ACT_EXEC:
		if (!acts->ex && !acts->ex_failed)
			acts->ex_failed = tsg_exec_runner_new(o->exec_queue, &acts->ex) < 0;
		return acts->ex;
	case TSG_ACT_WEBHOOK:
		if (!acts->wh && !acts->wh_failed)
			acts->wh_failed =
				tsg_webhook_runner_new(o->webhook_queue, o->am_resend_ns, &acts->wh) < 0;
		return acts->wh;
	case TSG_ACT_DESTROY:
		if (!acts->dz && !acts->dz_failed)
			acts->dz_failed =
				tsg_destroy_runner_new(o->destroy, o->destroy_ctx, &acts->dz) < 0;
		return acts->dz;
	}
	return false;
}

static bool runner_ready(struct tsg_actions *acts, int type)
{
	bool ok;

	pthread_mutex_lock(&acts->runner_lock);
	ok = runner_ready_locked(acts, type);
	pthread_mutex_unlock(&acts->runner_lock);
	return ok;
}

void tsg_actions_fire(struct tsg_actions *acts, const struct tsg_alert *a)
{
	const struct tsg_ruleset *rs;
	struct tsg_act_ctx c = { 0 };

	if (!acts || !a || !a->rule)
		return;
	rs = a->rs ? a->rs : acts->rs;
	c.a = a;
	c.dry = acts->opts.dry_run || a->dry_run;
	c.out = acts->opts.dry_out;
	c.out_json = acts->opts.dry_json;
	for (size_t i = 0; i < a->rule->nactions; i++) {
		const struct tsg_action_def *d;
		struct tsg_act_stat *st;
		size_t idx = a->rule->actions[i];

		if (!rs || idx >= rs->nactions) {
			act_err("rule %s: action #%zu is not defined; skipped", a->rule->name, idx);
			continue;
		}
		d = &rs->actions[idx];
		if (c.dry) {
			switch (d->type) {
			case TSG_ACT_SYSLOG: tsg_syslog_dry(&c, d); break;
			case TSG_ACT_EXEC: tsg_exec_dry(&c, d); break;
			case TSG_ACT_WEBHOOK: tsg_webhook_dry(&c, d, acts->opts.am_resend_ns); break;
			case TSG_ACT_DESTROY:
				tsg_destroy_dry(runner_ready(acts, d->type) ? acts->dz : NULL, &c, d);
				break;
			}
			continue;
		}
		st = stat_get(acts, d->name);
		if (!st) {
			act_err("rule %s action %s: cannot count results (out of memory or too many "
				"actions); skipped", a->rule->name, d->name);
			continue;
		}
		if (!runner_ready(acts, d->type)) {
			atomic_fetch_add(&st->failed, 1);
			act_err("rule %s action %s: the %s runner could not start", a->rule->name,
				d->name, tsg_action_type_name(d->type));
			continue;
		}
		switch (d->type) {
		case TSG_ACT_SYSLOG: tsg_syslog_fire(acts->sl, &c, d, st); break;
		case TSG_ACT_EXEC: tsg_exec_fire(acts->ex, &c, d, st); break;
		case TSG_ACT_WEBHOOK: tsg_webhook_fire(acts->wh, &c, d, st); break;
		case TSG_ACT_DESTROY: tsg_destroy_fire(acts->dz, &c, d, st); break;
		}
	}
	if (c.dry && c.out)
		fflush(c.out);
	free(c.json);
}

static void stat_read(const struct tsg_act_stat *s, struct tsg_action_stats *st)
{
	int64_t q = atomic_load(&s->queued_now);

	st->sent = atomic_load(&s->sent);
	st->failed = atomic_load(&s->failed);
	st->timed_out = atomic_load(&s->timed_out);
	st->retried = atomic_load(&s->retried);
	st->dropped = atomic_load(&s->dropped);
	st->skipped = atomic_load(&s->skipped);
	st->queued_now = q > 0 ? (uint64_t)q : 0;
}

/* The counters of action `name` and, with `url`, of that URL of it. */
static int stats_find(const struct tsg_actions *acts, const char *name, const char *url,
		      struct tsg_action_stats *st)
{
	struct tsg_actions *m = (struct tsg_actions *)acts; /* the lock only */
	const struct tsg_act_stat *s;
	int ret = -ENOENT;

	if (!acts || !name)
		return -EINVAL;
	pthread_mutex_lock(&m->stats_lock);
	for (s = acts->stats; s; s = s->next) {
		if (strcmp(s->name, name))
			continue;
		if (url)
			for (s = atomic_load(&s->urls); s && strcmp(s->name, url); s = s->next)
				;
		if (s && st)
			stat_read(s, st);
		ret = s ? 0 : -ENOENT;
		break;
	}
	pthread_mutex_unlock(&m->stats_lock);
	return ret;
}

int tsg_actions_get_stats(const struct tsg_actions *acts, const char *name,
			  struct tsg_action_stats *st)
{
	return stats_find(acts, name, NULL, st);
}

int tsg_actions_get_url_stats(const struct tsg_actions *acts, const char *name, const char *url,
			      struct tsg_action_stats *st)
{
	return url ? stats_find(acts, name, url, st) : -EINVAL;
}

struct tsg_act_stat *tsg_act_url_stat(struct tsg_act_stat *st, const char *url)
{
	struct tsg_act_stat *u;

	for (u = atomic_load(&st->urls); u; u = u->next)
		if (!strcmp(u->name, url))
			return u;
	if (st->nurls >= TSG_ACT_MAX_URL_STATS ||
	    !(u = TSG_ACT_NAMED_NEW(struct tsg_act_stat, name, url)))
		return NULL;
	u->next = atomic_load(&st->urls);
	atomic_store(&st->urls, u); /* published whole */
	st->nurls++;
	return u;
}

static void stat_free(struct tsg_act_stat *s)
{
	struct tsg_act_stat *u, *n;

	for (u = atomic_load(&s->urls); u; u = n) {
		n = u->next;
		free(u->name);
		free(u);
	}
	free(s->name);
	free(s);
}

void tsg_actions_free(struct tsg_actions *acts)
{
	struct tsg_act_stat *s, *n;

	if (!acts)
		return;
	struct tsg_act_runner *runners[] = { tsg_act_runner_of(acts->ex),
					     tsg_act_runner_of(acts->wh),
					     tsg_act_runner_of(acts->sl) };

	/* all runners drain in parallel, each bounded by its own deadline */
	for (size_t i = 0; i < sizeof(runners) / sizeof(runners[0]); i++)
		tsg_act_runner_stop(runners[i]);
	for (size_t i = 0; i < sizeof(runners) / sizeof(runners[0]); i++)
		tsg_act_runner_free(runners[i]);
	tsg_destroy_runner_free(acts->dz);
	for (s = acts->stats; s; s = n) {
		n = s->next;
		stat_free(s);
	}
	pthread_mutex_destroy(&acts->stats_lock);
	pthread_mutex_destroy(&acts->runner_lock);
	curl_global_cleanup();
	free(acts);
}

void *tsg_act_named_new(size_t size, size_t name_off, const char *name)
{
	char *p = calloc(1, size), *copy = p ? strdup(name) : NULL;

	if (!copy) {
		free(p);
		return NULL;
	}
	memcpy(p + name_off, &copy, sizeof(copy));
	return p;
}

void tsg_act_free_vec(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void tsg_act_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d, const char *what,
		 const char *value, bool value_is_json)
{
	const char *type = tsg_action_type_name(d->type);
	json_t *o, *dr, *v = NULL;
	char *s;

	if (!value)
		value = "?";
	if (!c->out_json) {
		fprintf(c->out, "dry-run: action %s (%s) %s: %s\n", d->name, type, what, value);
		return;
	}
	if (value_is_json)
		v = json_loads(value, JSON_DECODE_ANY, NULL);
	if (!v)
		v = json_string(value);
	dr = json_pack("{s:s, s:s, s:s, s:o}", "action", d->name, "type", type, "what", what,
		       "value", v);
	o = dr ? json_pack("{s:o}", "dry_run", dr) : NULL;
	s = o ? json_dumps(o, TSG_JSON_FLAGS) : NULL;
	if (s)
		fprintf(c->out, "%s\n", s);
	free(s);
	json_decref(o);
}
