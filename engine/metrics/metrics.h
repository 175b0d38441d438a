/* SPDX-License-Identifier: MIT */
/*
 * tsguard: Prometheus metrics (`--metrics ADDR:PORT`): /metrics in the text
 * exposition format and /healthz, served by libmicrohttpd from its own
 * thread. The main loop publishes a snapshot (deep copy under a mutex); the
 * HTTP thread renders the latest snapshot. Nothing blocks the event side.
 */
#ifndef TSG_METRICS_H
#define TSG_METRICS_H

#include "action.h"
#include "capture.h"
#include "engine.h"

struct tsg_metrics;

struct tsg_metrics_rule {
	char name[72];
	char kind[16]; /* transition, time, count, rate */
	struct tsg_rule_stats st;
};

struct tsg_metrics_action {
	char name[72];
	char type[16]; /* syslog, exec, webhook */
	struct tsg_action_stats st;
};

/* One URL of a webhook action (tsg_actions_get_url_stats). */
struct tsg_metrics_url {
	char action[72];
	char url[512]; /* as configured; shown without user:password@ */
	struct tsg_action_stats st;
};

struct tsg_metrics_snapshot {
	struct tsg_engine_stats engine;
	bool have_capture;
	struct tsg_capture_stats capture;
	struct tsg_metrics_rule *rules;
	size_t nrules;
	struct tsg_metrics_action *actions;
	size_t nactions;
	struct tsg_metrics_url *urls; /* every URL of every webhook action */
	size_t nurls;
	uint64_t reloads_ok, reloads_failed;
	double last_reload_ok_time; /* unix seconds, 0 if never */
	double start_time;          /* unix seconds */
	bool dry_run;
};

/* "127.0.0.1:9464", "[::1]:9464", ":9464" (all addresses). 0 or -errno
 * (-EINVAL bad address, -EADDRINUSE ...), with a logged message. */
int tsg_metrics_new(const char *listen, struct tsg_metrics **out);
/* Copies the snapshot for the HTTP thread. */
void tsg_metrics_publish(struct tsg_metrics *m, const struct tsg_metrics_snapshot *s);
void tsg_metrics_free(struct tsg_metrics *m);
/* Renders the exposition text (malloc'd into *out). 0 or -ENOMEM. Pure: tests call it. */
int tsg_metrics_render(const struct tsg_metrics_snapshot *s, char **out, size_t *len);

#endif
