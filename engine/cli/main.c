/* SPDX-License-Identifier: MIT */
/*
 * tsguard: command line and main loop (docs/cli.md "Running").
 *
 *   tsguard -r PATH [-r PATH ...] [options]   live (needs root and BPF)
 *   tsguard --check [--explain] -r PATH        validate, print the plan
 *   tsguard --replay FILE [--until S] -r PATH  evaluate an event file
 *   tsguard test FILE...                       rule tests
 *   tsguard ctl COMMAND                        ask a running tsguard (ctl.c)
 */
#include "control.h"
#include "ctl.h"
#include "engine.h"
#include "eventio.h"
#include "log.h"
#include "options.h"
#include "plan.h"
#include "ruletest.h"
#include "ruleset.h"
#include "action.h"
#ifdef TSG_HAVE_CAPTURE
#include "capture.h"
#endif
#ifdef TSG_HAVE_METRICS
#include "metrics.h"
#endif

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

struct ctx {
	struct opts *o;
	struct tsg_ruleset *rs;
	struct tsg_engine *engine;
	struct tsg_actions *actions;
	FILE *record;
	uint64_t record_errors;
	uint64_t reloads_ok, reloads_failed;
	double last_reload_ok, start_time;
	struct tsg_control *control;
	void *cap; /* the live capture, for the control socket's status and reload */
#ifdef TSG_HAVE_METRICS
	struct tsg_metrics *metrics;
#endif
};

static double unix_now(void)
{
	return (double)tsg_wall_ns() / 1e9;
}

static volatile sig_atomic_t sig_stop, sig_reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		sig_reload = 1;
	else
		sig_stop = 1;
}


/* Diagnostics go to standard error, and to `also` (a ctl reload) if given. */
static int load_rules(const struct opts *o, bool as_root, struct tsg_ruleset **out, FILE *also)
{
	struct tsg_diags d;
	int rc;

	tsg_diags_init(&d);
	rc = tsg_ruleset_load(o->rules, o->nrules, as_root, &d, out);
	for (FILE *f = stderr; f; f = f == stderr ? also : NULL) {
		tsg_diags_print(&d, f);
		if (rc < 0 && !d.nerrors)
			fprintf(f, "tsguard: error: cannot load rules: %s\n", strerror(-rc));
	}
	tsg_diags_fini(&d);
	return rc;
}

/* ---- notifications ------------------------------------------------------------ */

static void on_alert(void *vctx, const struct tsg_alert *a)
{
	struct ctx *c = vctx;

	if (c->o->json) {
		char *s = tsg_alert_json_dumps(a);

		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
			free(s);
		}
	} else {
		char line[2048];

		puts(tsg_alert_to_text(a, line, sizeof(line)));
	}
	if (c->actions)
		tsg_actions_fire(c->actions, a);
	fflush(stdout);
}

static __attribute__((unused)) void on_event(void *vctx, const struct tsg_event *ev)
{
	struct ctx *c = vctx;

	if (c->record && !ev->snapshot) {
		if (tsg_event_write(c->record, ev) < 0 && !c->record_errors++)
			log_err("--record: cannot write: %s", strerror(errno));
	}
	tsg_engine_feed(c->engine, ev);
}

#ifdef TSG_HAVE_CAPTURE
/* The destroy action's callback: the live capture closes the socket. */
static int destroy_sock(void *vctx, uint64_t cookie, uint32_t netns,
			const struct tsg_sockinfo *expect)
{
	struct ctx *c = vctx;

	(void)expect;
	return c->cap ? tsg_capture_destroy(c->cap, cookie, netns) : -ENXIO;
}
#endif

static int setup_actions(struct ctx *c)
{
	/* with -o json, what each action would run is printed as JSON objects
	 * too, so that standard output stays one object per line */
	struct tsg_actions_opts ao = { .dry_run = c->o->dry_run, .dry_out = stdout,
				       .dry_json = c->o->json };
	int rc;

#ifdef TSG_HAVE_CAPTURE
	if (!c->o->replay) { /* replay has no kernel sockets to close */
		ao.destroy = destroy_sock;
		ao.destroy_ctx = c;
	}
#endif
	rc = tsg_actions_new(c->rs, &ao, &c->actions);

	if (rc < 0) {
		log_err("cannot set up actions: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void teardown(struct ctx *c)
{
	tsg_control_free(c->control);
	c->control = NULL;
#ifdef TSG_HAVE_METRICS
	tsg_metrics_free(c->metrics);
	c->metrics = NULL;
#endif
	tsg_actions_free(c->actions);
	c->actions = NULL;
	tsg_engine_free(c->engine);
	c->engine = NULL;
	tsg_ruleset_free(c->rs);
	c->rs = NULL;
}

/*
 * SIGHUP: the new rule set is loaded and validated first; with any error the
 * errors are logged and the old rules keep running with their alert state.
 * `capv` is the live capture (its kernel filter is swapped and the snapshot
 * taken again), NULL in replay. `errs` (a ctl reload) gets the errors too.
 * 0, -EINVAL (rejected), or -errno (not applied).
 */
static int reload(struct ctx *c, void *capv, FILE *errs)
{
	struct tsg_ruleset *nrs = NULL;
	int rc, applied;

	log_info("%s: reloading rules", errs ? "tsguard ctl" : "SIGHUP");
	if (load_rules(c->o, geteuid() == 0, &nrs, errs) < 0) {
		log_err("reload rejected: the new rules have errors; the old rules keep running");
		c->reloads_failed++;
		return -EINVAL;
	}
#ifdef TSG_HAVE_CAPTURE
	if (capv) {
		struct tsg_plan *plan = NULL;

		rc = tsg_plan_build(nrs, c->record != NULL, &plan);
		if (rc == 0)
			rc = tsg_capture_update_plan(capv, plan);
		tsg_plan_free(plan);
		if (rc < 0) {
			log_err("reload failed: cannot update the kernel filter: %s; the old "
				"rules keep running", strerror(-rc));
			if (errs)
				fprintf(errs,
					"tsguard: error: cannot update the kernel filter: "
					"%s; the old rules keep running\n",
					strerror(-rc));
			tsg_ruleset_free(nrs);
			c->reloads_failed++;
			return rc;
		}
	}
#endif
	rc = tsg_engine_swap_rules(c->engine, nrs);
	if (rc == 0)
		rc = tsg_actions_swap(c->actions, nrs);
	applied = rc;
	if (rc < 0) {
		/* the engine already runs the new set: keep it, and keep it alive */
		log_err("reload: could not switch everything to the new rules: %s",
			strerror(-rc));
		if (errs)
			fprintf(errs,
				"tsguard: error: could not switch everything to the new "
				"rules: %s\n",
				strerror(-rc));
		c->reloads_failed++;
	} else {
		c->reloads_ok++;
		c->last_reload_ok = unix_now();
	}
	tsg_ruleset_free(c->rs);
	c->rs = nrs;
#ifdef TSG_HAVE_CAPTURE
	/* new rules see the sockets that exist now, as at start: the snapshot
	 * is taken again (sockets already known keep their age and alerts) */
	if (capv) {
		rc = tsg_capture_snapshot(capv, on_event, c);
		if (rc < 0)
			log_warn("reload: snapshot failed: %s; new rules see only new sockets",
				 strerror(-rc));
	}
#endif
	log_info("reloaded: %zu rules", nrs->nrules);
	return applied;
}

/* ---- control socket: control.c serves it, these answer its questions ------------ */

static void ctl_view(void *vctx, struct tsg_control_view *v)
{
	struct ctx *c = vctx;

	v->rs = c->rs;
	v->engine = c->engine;
	v->actions = c->actions;
	v->source = c->o->replay ? "replay" : "live";
	v->start_time = c->start_time;
	v->reloads_ok = c->reloads_ok;
	v->reloads_failed = c->reloads_failed;
#ifdef TSG_HAVE_CAPTURE
	if (c->cap) {
		struct tsg_capture_stats cs;

		tsg_capture_get_stats(c->cap, &cs);
		v->have_capture = true;
		v->seen = cs.seen;
		v->filtered = cs.filtered;
		v->sent = cs.sent;
		v->lost = cs.lost;
	}
#endif
}

static int ctl_reload(void *vctx, FILE *errs, size_t *nrules)
{
	struct ctx *c = vctx;
	int rc = reload(c, c->cap, errs); /* the SIGHUP path */

	*nrules = c->rs->nrules;
	return rc;
}

static bool ctl_stopping(void *vctx)
{
	return sig_stop;
}

static int start_control(struct ctx *c)
{
	const struct tsg_control_ops ops = {
	    .view = ctl_view, .reload = ctl_reload, .stopping = ctl_stopping, .ctx = c};

	int rc;

	if (c->o->control && !strcmp(c->o->control, "none"))
		return 0;
	rc = tsg_control_new(c->o->control ? c->o->control : TSG_CONTROL_DEFAULT, !c->o->control,
			     &ops, &c->control);
	/* a replay beside the running daemon: that one keeps the default socket */
	if (rc == -EADDRINUSE && !c->o->control && c->o->replay) {
		log_warn("control: replaying without a control socket (give --control PATH)");
		return 0;
	}
	return rc;
}

/* ---- replay ---------------------------------------------------------------------- */

static int run_replay(struct ctx *c)
{
	const struct opts *o = c->o;
	FILE *f = strcmp(o->replay, "-") ? fopen(o->replay, "r") : stdin;
	const char *name = strcmp(o->replay, "-") ? o->replay : "<stdin>";
	struct tsg_event_reader rd = { 0 };
	uint64_t last;
	struct stat st;
	int rc = 0, n;

	if (!f || fstat(fileno(f), &st) < 0 || S_ISDIR(st.st_mode) ||
	    tsg_event_reader_init(&rd, f, name) < 0) {
		log_err("cannot read %s: %s", o->replay,
			f && S_ISDIR(st.st_mode) ? strerror(EISDIR) : strerror(errno));
		tsg_event_reader_fini(&rd);
		if (f && f != stdin)
			fclose(f);
		return EXIT_RUNTIME;
	}
	/* while it waits for input, the replay serves the control socket */
	if (c->control && !(rd.f = tsg_control_wrap_input(c->control, f))) {
		log_err("cannot read %s: %s", o->replay, strerror(errno));
		rd.f = f;
		rc = EXIT_RUNTIME;
	}
	while (!sig_stop && !rc) {
		struct tsg_event ev;

		if (sig_reload) {
			sig_reload = 0;
			reload(c, NULL, NULL);
		}
		n = tsg_event_reader_next(&rd, &ev);
		if (n == 0)
			break;
		if (n == -EINTR)
			continue; /* a signal while waiting for input (a pipe) */
		if (n < 0) {
			log_err("cannot read %s: %s", name, strerror(-n));
			rc = EXIT_RUNTIME;
			break;
		}
		tsg_engine_feed(c->engine, &ev);
	}
	if (rd.f != f)
		fclose(rd.f);
	tsg_event_reader_fini(&rd);
	if (f != stdin)
		fclose(f);
	if (!sig_stop) {
		last = rd.last;
		if (o->has_until && (uint64_t)llround(o->until * 1e9) > last)
			last = (uint64_t)llround(o->until * 1e9);
		tsg_engine_advance(c->engine, last);
	}
	if (rc)
		return rc;
	if (rd.bad) {
		fprintf(stderr, "tsguard: %zu bad line(s) in %s\n", rd.bad, name);
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- live ------------------------------------------------------------------------ */

#ifdef TSG_HAVE_CAPTURE
#ifdef TSG_HAVE_METRICS
/* snap->urls: every URL of every webhook action, with its own counters. */
static void snapshot_urls(struct ctx *c, struct tsg_metrics_snapshot *snap)
{
	size_t n = 0;

	for (size_t i = 0; i < c->rs->nactions; i++)
		if (c->rs->actions[i].type == TSG_ACT_WEBHOOK)
			n += c->rs->actions[i].webhook.nurls;
	if (!n || !(snap->urls = calloc(n, sizeof(*snap->urls))))
		return;
	for (size_t i = 0; i < c->rs->nactions; i++) {
		const struct tsg_action_def *a = &c->rs->actions[i];

		for (size_t j = 0; a->type == TSG_ACT_WEBHOOK && j < a->webhook.nurls; j++) {
			struct tsg_metrics_url *u = &snap->urls[snap->nurls];

			snprintf(u->action, sizeof(u->action), "%s", a->name);
			snprintf(u->url, sizeof(u->url), "%s", a->webhook.urls[j]);
			if (tsg_actions_get_url_stats(c->actions, a->name, a->webhook.urls[j],
						      &u->st) == 0)
				snap->nurls++;
		}
	}
}

static void publish_metrics(struct ctx *c, struct tsg_capture *cap)
{
	struct tsg_metrics_snapshot snap = { 0 };
	static uint64_t last;
	uint64_t now = tsg_mono_ns();

	if (!c->metrics || now - last < 500 * TSG_NSEC_PER_MSEC)
		return;
	last = now;
	tsg_engine_get_stats(c->engine, &snap.engine);
	if (cap) {
		snap.have_capture = true;
		tsg_capture_get_stats(cap, &snap.capture);
	}
	snap.rules = calloc(c->rs->nrules ? c->rs->nrules : 1, sizeof(*snap.rules));
	snap.actions = calloc(c->rs->nactions ? c->rs->nactions : 1, sizeof(*snap.actions));
	if (!snap.rules || !snap.actions)
		goto out;
	for (size_t i = 0; i < c->rs->nrules; i++) {
		const struct tsg_rule *r = &c->rs->rules[i];

		snprintf(snap.rules[i].name, sizeof(snap.rules[i].name), "%s", r->name);
		snprintf(snap.rules[i].kind, sizeof(snap.rules[i].kind), "%s",
			 tsg_kind_name(r->kind));
		tsg_engine_rule_stats(c->engine, i, &snap.rules[i].st);
	}
	snap.nrules = c->rs->nrules;
	for (size_t i = 0; i < c->rs->nactions; i++) {
		const struct tsg_action_def *a = &c->rs->actions[i];

		snprintf(snap.actions[i].name, sizeof(snap.actions[i].name), "%s", a->name);
		snprintf(snap.actions[i].type, sizeof(snap.actions[i].type), "%s",
			 tsg_action_type_name(a->type));
		tsg_actions_get_stats(c->actions, a->name, &snap.actions[i].st);
	}
	snap.nactions = c->rs->nactions;
	snapshot_urls(c, &snap);
	snap.reloads_ok = c->reloads_ok;
	snap.reloads_failed = c->reloads_failed;
	snap.last_reload_ok_time = c->last_reload_ok;
	snap.start_time = c->start_time;
	snap.dry_run = c->o->dry_run;
	tsg_metrics_publish(c->metrics, &snap);
out:
	free(snap.rules);
	free(snap.actions);
	free(snap.urls);
}
#endif

/* The resync after a loss asks what the engine holds (tsg_capture_set_held). */
struct held_walk {
	tsg_held_fn fn;
	void *arg;
};

static void held_one(void *vctx, uint64_t sk, uint8_t state, uint64_t since_ns,
		     const struct tsg_sockinfo *info)
{
	struct held_walk *w = vctx;

	(void)since_ns;
	(void)info;
	w->fn(w->arg, sk, state);
}

static void held_foreach(void *vctx, tsg_held_fn fn, void *arg)
{
	struct ctx *c = vctx;
	struct held_walk w = { fn, arg };

	tsg_engine_foreach_socket(c->engine, held_one, &w);
}

static int run_live(struct ctx *c)
{
	struct tsg_capture_opts co = { .verbose = c->o->verbose > 0,
				       .netns_host = c->o->netns_host };
	struct tsg_capture *cap = NULL;
	struct tsg_plan *plan = NULL;
	struct tsg_capture_stats cs;
	int rc;

	rc = tsg_plan_build(c->rs, c->record != NULL, &plan);
	if (rc < 0) {
		log_err("cannot build the kernel plan: %s", strerror(-rc));
		return EXIT_RUNTIME;
	}
	rc = tsg_capture_new(plan, &co, &cap);
	tsg_plan_free(plan);
	if (rc < 0)
		return EXIT_RUNTIME; /* the capture logged why */
	c->cap = cap;
	tsg_capture_set_held(cap, held_foreach, c);
	tsg_engine_advance(c->engine, tsg_mono_ns());
	rc = tsg_capture_snapshot(cap, on_event, c);
	if (rc < 0)
		log_warn("startup snapshot failed: %s; sockets that exist now are unknown",
			 strerror(-rc));
	log_info("watching: %zu rules%s", c->rs->nrules, c->o->dry_run ? " (dry run)" : "");

	while (!sig_stop) {
		uint64_t now = tsg_mono_ns(), next = tsg_engine_next_deadline(c->engine);
		int timeout = 1000;

		if (next != UINT64_MAX) {
			uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
			if (ms < (uint64_t)timeout)
				timeout = (int)ms;
		}
		if (c->control) { /* served while waiting; then the events, at once */
			tsg_control_wait(c->control, tsg_capture_fd(cap),
					 tsg_capture_timeout(cap, timeout));
			timeout = 0;
		}
		rc = tsg_capture_poll(cap, timeout, on_event, c);
		if (rc < 0 && rc != -EINTR) {
			log_err("capture failed: %s", strerror(-rc));
			break;
		}
		/* timers run up to a time all of whose events have been read:
		 * take the time, then drain what was submitted before it */
		now = tsg_mono_ns();
		rc = tsg_capture_poll(cap, 0, on_event, c);
		if (rc < 0 && rc != -EINTR) {
			log_err("capture failed: %s", strerror(-rc));
			break;
		}
		tsg_engine_advance(c->engine, now);
		/* a recording is readable as it grows (tail -f), and a crash
		 * loses at most the last loop's events */
		if (c->record && fflush(c->record) != 0 && !c->record_errors++)
			log_err("--record: cannot write: %s", strerror(errno));
		if (sig_reload) {
			sig_reload = 0;
			reload(c, cap, NULL);
		}
		/* the capture logs lost events itself; main only keeps the tally */
#ifdef TSG_HAVE_METRICS
		publish_metrics(c, cap);
#endif
	}
	tsg_capture_get_stats(cap, &cs);
	log_info("stopping: %llu transitions seen, %llu filtered in the kernel, %llu sent, %llu lost",
		 (unsigned long long)cs.seen, (unsigned long long)cs.filtered,
		 (unsigned long long)cs.sent, (unsigned long long)cs.lost);
	c->cap = NULL;
	tsg_capture_free(cap);
	return rc < 0 && rc != -EINTR ? EXIT_RUNTIME : 0;
}
#endif

/* --check [--explain]: load, print the plan, exit. */
static int run_check(struct ctx *c)
{
	struct tsg_plan *plan = NULL;

	if (load_rules(c->o, false, &c->rs, NULL) < 0)
		return EXIT_USAGE;
	if (c->o->explain) {
		if (tsg_plan_build(c->rs, false, &plan) < 0) {
			log_err("cannot build the plan");
			tsg_ruleset_free(c->rs);
			return EXIT_RUNTIME;
		}
		tsg_plan_explain(plan, c->rs, stdout);
		tsg_plan_free(plan);
	}
	if (!c->o->quiet)
		fprintf(stderr, "tsguard: %zu rule(s), %zu action(s): OK\n", c->rs->nrules,
			c->rs->nactions);
	tsg_ruleset_free(c->rs);
	return 0;
}

/* Handlers first: a SIGHUP that comes while the rules load must not kill the
 * process (its default action); it reloads once running. */
static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_flags = SA_RESTART; /* a reload interrupts no read; the live loop's
				     epoll_wait returns on it all the same */
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The rules, the engine, the actions and --metrics: 0 or an exit status. */
static int start(struct ctx *c)
{
	struct tsg_engine_opts eo = { 0 };
	int rc;

	/* live runs as root refuse rule files others can write; replay runs no
	 * kernel code but may run actions, so it applies the same check as root */
	if (load_rules(c->o, geteuid() == 0, &c->rs, NULL) < 0)
		return EXIT_USAGE;
	eo.dry_run = c->o->dry_run;
	eo.keep_idle_sockets = c->o->replay != NULL;
	eo.max_sockets = c->o->max_sockets;
	rc = tsg_engine_new(c->rs, &eo, on_alert, c, &c->engine);
	if (rc < 0) {
		log_err("cannot start the engine: %s", strerror(-rc));
		return EXIT_RUNTIME;
	}
	/* before the actions start their threads: the socket is made under a umask */
	if (start_control(c) < 0)
		return EXIT_RUNTIME;
	if (setup_actions(c) < 0)
		return EXIT_RUNTIME;
	c->start_time = unix_now();
	if (!c->o->metrics)
		return 0;
#ifdef TSG_HAVE_METRICS
	rc = tsg_metrics_new(c->o->metrics, &c->metrics);
	/* a malformed ADDR:PORT is a usage error; a busy port is not */
	if (rc < 0)
		return rc == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	return 0;
#else
	log_err("this build has no metrics support (libmicrohttpd missing)");
	return EXIT_RUNTIME;
#endif
}

/* The live capture, with --record. */
static int run_capture(struct ctx *c)
{
#ifdef TSG_HAVE_CAPTURE
	int rc;

	if (c->o->record) {
		c->record = strcmp(c->o->record, "-") ? fopen(c->o->record, "w") : stdout;
		if (!c->record) {
			log_err("cannot open %s: %s", c->o->record, strerror(errno));
			return EXIT_RUNTIME;
		}
	}
	rc = run_live(c);
	if (c->record && c->record != stdout && fclose(c->record) != 0) {
		log_err("--record: %s", strerror(errno));
		rc = EXIT_RUNTIME;
	}
	return rc;
#else
	(void)c;
	log_err("this build has no live capture (built without BPF); use --replay");
	return EXIT_RUNTIME;
#endif
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct ctx c = { .o = &o };
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "ctl"))
		return tsg_ctl_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "test")) {
		if (argc < 3) {
			fprintf(stderr, "usage: tsguard test FILE...\n");
			return EXIT_USAGE;
		}
		return tsg_ruletest_run((const char *const *)argv + 2, (size_t)argc - 2, stdout);
	}
	if (tsg_cli_parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	tsg_log_set_level(o.quiet ? LOG_WARNING : o.verbose ? LOG_DEBUG : LOG_INFO);
	if (o.check)
		return run_check(&c);
	install_signals();
	rc = start(&c);
	if (rc == 0)
		rc = o.replay ? run_replay(&c) : run_capture(&c);
	teardown(&c); /* NULL-safe: also after a failed start */
	return rc;
}
