/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the destroy action: closes the alert's socket in the kernel, as
 * `ss -K` does, through the destroy callback of tsg_actions_opts (the live
 * capture's tsg_capture_destroy). The socket is named by its cookie (the
 * alert's sk), so a socket that reuses the 4-tuple is never touched.
 *
 * Runs in the caller's thread (the engine's), at most max_per_minute times a
 * minute per action: a sliding window over the event clock (CLOCK_MONOTONIC
 * live). Firing notifications only: a resolved one has nothing to close.
 * Skipped and failed runs are counted on every run and logged at most once a
 * minute per action, with how many there were since the last line.
 */
#include "action_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_NS (60 * TSG_NSEC_PER_SEC)

/* A log line at most once a minute, carrying how many it stands for. */
struct minute_log {
	uint64_t last_ns; /* event clock of the last line */
	uint64_t pending; /* occurrences since that line */
	bool logged;
};

/* The limiter and log state of one destroy action (by name: survives reloads). */
struct dz_action {
	char *name;
	uint64_t *ring; /* times of the last runs, up to max_per_minute */
	uint32_t cap, head, n;
	struct minute_log skipped, failed;
	struct dz_action *next;
};

struct tsg_destroy_runner {
	tsg_destroy_fn destroy; /* NULL: no live capture */
	void *ctx;
	struct dz_action *acts;
	size_t nacts;
};

#define DZ_MAX_ACTIONS 4096

int tsg_destroy_runner_new(tsg_destroy_fn fn, void *ctx, struct tsg_destroy_runner **out)
{
	struct tsg_destroy_runner *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->destroy = fn;
	r->ctx = ctx;
	*out = r;
	return 0;
}

static struct dz_action *dz_get(struct tsg_destroy_runner *r, const char *name)
{
	return TSG_ACT_NAMED_GET(struct dz_action, r->acts, r->nacts, DZ_MAX_ACTIONS, name);
}

/* May one more socket be closed at now_ns? Then it is counted in the window. */
static bool dz_admit(struct dz_action *a, uint32_t max, uint64_t now_ns)
{
	if (a->n == max && a->cap == max) {
		uint64_t oldest = a->ring[a->head]; /* the ring is full: head is the oldest */

		if (now_ns - oldest < MINUTE_NS)
			return false;
	} else if (a->n == a->cap) {
		uint32_t ncap = a->cap ? a->cap * 2 : 16;
		uint64_t *nr;

		if (ncap > max)
			ncap = max;
		nr = malloc(ncap * sizeof(*nr));
		if (!nr)
			return false; /* cannot count it: do not run it */
		for (uint32_t i = 0; i < a->n; i++)
			nr[i] = a->ring[(a->head + i) % a->cap];
		free(a->ring);
		a->ring = nr;
		a->cap = ncap;
		a->head = 0;
	}
	if (a->n < a->cap) {
		a->ring[(a->head + a->n) % a->cap] = now_ns;
		a->n++;
	} else {
		a->ring[a->head] = now_ns;
		a->head = (a->head + 1) % a->cap;
	}
	return true;
}

/* Counts one occurrence; true when a line is due now (then `pending` holds
 * how many it reports, and the count starts again). */
static bool minute_due(struct minute_log *l, uint64_t now_ns, uint64_t *pending)
{
	l->pending++;
	if (l->logged && now_ns - l->last_ns < MINUTE_NS)
		return false;
	*pending = l->pending;
	l->pending = 0;
	l->last_ns = now_ns;
	l->logged = true;
	return true;
}

/*
 * The network namespace of the alert's socket, as tsg_capture_destroy takes
 * it: 0 when the socket's namespace is not known (tsguard's own).
 */
static uint32_t alert_netns(const struct tsg_alert *a)
{
	return (a->info.have & TSG_HAVE(TSG_SF_NETNS)) ? a->info.netns : 0;
}

/* "10.0.0.2:5000-10.0.0.9:443 cookie 1234 netns host" */
static const char *sock_desc(const struct tsg_alert *a, char *buf, size_t len)
{
	char key[256], id[32], ns[16] = "host";
	uint32_t netns = alert_netns(a);

	if (netns)
		snprintf(ns, sizeof(ns), "%" PRIu32, netns);
	snprintf(buf, len, "%s cookie %s netns %s", tsg_alert_key_string(a, key, sizeof(key)),
		 tsg_sk_to_string(a->sk, id, sizeof(id)), ns);
	return buf;
}

void tsg_destroy_fire(struct tsg_destroy_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	const struct tsg_alert *a = c->a;
	struct dz_action *z;
	uint64_t n;
	char desc[400];
	int rc;

	if (a->status != TSG_FIRING)
		return; /* nothing to close on a resolved notification */
	z = dz_get(r, d->name);
	if (!z || !dz_admit(z, d->destroy.max_per_minute, a->ts_ns)) {
		atomic_fetch_add(&st->skipped, 1);
		if (z && minute_due(&z->skipped, a->ts_ns, &n))
			act_warn("action %s (destroy): %" PRIu64 " socket(s) not closed: more than "
				 "%u a minute (max_per_minute); counted in skipped",
				 d->name, n, d->destroy.max_per_minute);
		return;
	}
	sock_desc(a, desc, sizeof(desc));
	if (!r->destroy)
		rc = -ENXIO;
	else if (!a->sk)
		rc = -EINVAL;
	else
		rc = r->destroy(r->ctx, a->sk, alert_netns(a), &a->info);
	if (!rc) {
		atomic_fetch_add(&st->sent, 1);
		act_info("action %s (destroy): rule %s: closed socket %s", d->name, a->rule->name,
			 desc);
		return;
	}
	atomic_fetch_add(&st->failed, 1);
	if (minute_due(&z->failed, a->ts_ns, &n))
		act_warn("action %s (destroy): rule %s: cannot close socket %s: %s "
			 "(%" PRIu64 " failure(s) since the last such line)",
			 d->name, a->rule->name, desc,
			 rc == -ENXIO	 ? "no live capture (replay)"
			 : rc == -ENOENT ? "no such socket (already closed)"
					 : strerror(-rc),
			 n);
}

void tsg_destroy_dry(struct tsg_destroy_runner *r, struct tsg_act_ctx *c,
		     const struct tsg_action_def *d)
{
	const struct tsg_alert *a = c->a;
	struct dz_action *z;
	char desc[400], v[480];

	if (a->status != TSG_FIRING)
		return;
	sock_desc(a, desc, sizeof(desc));
	z = r ? dz_get(r, d->name) : NULL;
	if (z && !dz_admit(z, d->destroy.max_per_minute, a->ts_ns)) {
		snprintf(v, sizeof(v), "%s skipped: more than %u a minute (max_per_minute)", desc,
			 d->destroy.max_per_minute);
		tsg_act_dry(c, d, "socket", v, false);
		return;
	}
	tsg_act_dry(c, d, "socket", desc, false);
}

void tsg_destroy_runner_free(struct tsg_destroy_runner *r)
{
	struct dz_action *a, *n;

	if (!r)
		return;
	for (a = r->acts; a; a = n) {
		n = a->next;
		if (a->skipped.pending)
			act_warn("action %s (destroy): %" PRIu64 " more socket(s) not closed "
				 "(max_per_minute)",
				 a->name, a->skipped.pending);
		free(a->ring);
		free(a->name);
		free(a);
	}
	free(r);
}
