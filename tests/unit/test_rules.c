/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the rule loader (the C files of engine/load/).
 *
 * The one-file error cases are the table rules_errors.h (YAML text, the
 * expected "LINE:COL" of the first error and words its message must hold),
 * all run by err_table, each asserting that nothing was loaded.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsg_test_main.h"

#include "match.h"
#include "ruleset.h"
#include "tsg_test_yaml.h"

#include "rules_errors.h"

#ifndef RULES_CASES
#error RULES_CASES must name tests/unit/rules_cases
#endif

/* ---- helpers --------------------------------------------------------------- */

struct tmp {
	char dir[256];
	char path[8][512];
	int n;
};

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/tsg-rules-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	chmod(t->dir, 0755);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	for (int i = 0; i < t->n; i++)
		unlink(t->path[i]);
	rmdir(t->dir);
	free(t);
	return 0;
}

static const char *tmp_write(struct tmp *t, const char *name, const char *text)
{
	char *p = t->path[t->n++];
	char buf[512];
	FILE *f;

	snprintf(buf, sizeof(buf), "%.200s/%.200s", t->dir, name);
	memcpy(p, buf, sizeof(buf));
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, 0644);
	return p;
}

static void dump(const struct tsg_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  | %s\n", d->msg[i]);
}

/* The message that starts with `prefix` and holds every word, or NULL. */
static const char *find_msg(const struct tsg_diags *d, const char *prefix,
			    const char *const *words)
{
	for (size_t i = 0; i < d->n; i++) {
		bool ok = !strncmp(d->msg[i], prefix, strlen(prefix));

		for (size_t w = 0; ok && words && words[w]; w++)
			ok = strstr(d->msg[i], words[w]) != NULL;
		if (ok)
			return d->msg[i];
	}
	return NULL;
}

static int load1(const char *path, bool as_root, struct tsg_diags *d, struct tsg_ruleset **rs)
{
	const char *paths[] = { path };

	return tsg_ruleset_load(paths, 1, as_root, d, rs);
}

/* ---- error cases: the table rules_errors.h -------------------------------- */

/* One case: 0 when it fails to load as it should, else 1 (with what went wrong). */
static int run_ecase(const struct ecase *c)
{
	struct tsg_ruleset *rs = (void *)0x1;
	struct tsg_diags d;
	char path[TSG_TEST_YAML_PATH], prefix[TSG_TEST_YAML_PATH + 64];
	int r, bad = 0;

	tsg_diags_init(&d);
	r = tsg_test_yaml_load(c->yaml, false, &d, &rs, path);
	if (c->loc[0])
		snprintf(prefix, sizeof(prefix), "%s:%s: error: ", path, c->loc);
	else
		snprintf(prefix, sizeof(prefix), "%s: error: ", path);
	if (!find_msg(&d, prefix, c->words)) {
		fprintf(stderr, "%s: expected \"%s\" with", c->name, prefix);
		for (size_t w = 0; c->words[w]; w++)
			fprintf(stderr, " [%s]", c->words[w]);
		fprintf(stderr, "\ngot:\n");
		dump(&d);
		bad = 1;
	}
	if (r != -EINVAL) {
		fprintf(stderr, "%s: load returned %d, not -EINVAL\n", c->name, r);
		bad = 1;
	}
	if (rs != (void *)0x1) { /* must stay untouched: nothing loaded */
		fprintf(stderr, "%s: a rule set was loaded\n", c->name);
		if (r == 0)
			tsg_ruleset_free(rs);
		bad = 1;
	}
	if (d.nerrors < 1) {
		fprintf(stderr, "%s: no error counted\n", c->name);
		bad = 1;
	}
	tsg_diags_fini(&d);
	return bad;
}

/* Every case of the table, each reported by name when it fails. */
static void err_table(void **state)
{
	size_t n = sizeof(rules_errors) / sizeof(rules_errors[0]), failed = 0;

	for (size_t i = 0; i < n; i++)
		failed += (size_t)run_ecase(&rules_errors[i]);
	if (failed)
		fail_msg("%zu of %zu error cases failed", failed, n);
	print_message("%zu error cases\n", n);
}

/* ---- errors that need more than one file ------------------------------------ */

/* Loading path (as_root or not) fails with err and loads nothing; the
 * diagnostics are left in *d (the caller finishes them). */
static void load_fails(const char *path, bool as_root, int err, struct tsg_diags *d)
{
	struct tsg_ruleset *rs = NULL;

	tsg_diags_init(d);
	assert_int_equal(load1(path, as_root, d, &rs), err);
	assert_null(rs);
}

/* A message of d that starts "FILE:LOC: KIND: " (loc NULL: "FILE: KIND: ")
 * and holds every word (NULL-terminated); fails with the messages shown. */
static void expect_msg(const struct tsg_diags *d, const char *file, const char *loc,
		       const char *kind, const char *const *words)
{
	char prefix[PATH_MAX + 96];

	if (loc)
		snprintf(prefix, sizeof(prefix), "%s:%s: %s: ", file, loc, kind);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s: ", file, kind);
	if (!find_msg(d, prefix, words)) {
		dump(d);
		fail_msg("no message \"%s\" holding \"%s\"", prefix, words[0]);
	}
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* load_fails, with an error "FILE: error: " holding every word. */
static void expect_file_error(const char *path, bool as_root, int err, const char *file,
			      const char *const *words)
{
	struct tsg_diags d;

	load_fails(path, as_root, err, &d);
	expect_msg(&d, file, NULL, "error", words);
	tsg_diags_fini(&d);
}

static void err_duplicate_across_files(void **state)
{
	struct tmp *t = *state;
	struct tsg_diags d;
	char first[PATH_MAX + 64];
	const char *a, *b;

	a = tmp_write(t, "a.yaml", "rules:\n  - name: x\n    when: {to: CLOSE}\n");
	b = tmp_write(t, "b.yml", "rules:\n  - name: y\n    when: {to: CLOSE}\n"
				  "  - name: x\n    when: {from: SYN_SENT}\n");
	snprintf(first, sizeof(first), "first defined at %s:2:5", a);
	load_fails(t->dir, false, -EINVAL, &d);
	expect_msg(&d, b, "4:11", "error", WORDS("duplicate rule name \"x\"", first));
	tsg_diags_fini(&d);
}

static void err_duplicate_action_and_list(void **state)
{
	struct tmp *t = *state;
	struct tsg_diags d;
	const char *b;

	tmp_write(t, "a.yaml", "lists:\n  ports: [1]\nactions:\n  - {name: log, type: syslog}\n");
	b = tmp_write(t, "b.yaml", "lists:\n  ports: [2]\nactions:\n  - {name: log, type: syslog}\n");
	load_fails(t->dir, false, -EINVAL, &d);
	expect_msg(&d, b, "4:12", "error", WORDS("duplicate action name \"log\"", "first defined at"));
	expect_msg(&d, b, "2:3", "error", WORDS("duplicate list name \"ports\"", "first defined at"));
	tsg_diags_fini(&d);
}

static void err_permissions_as_root(void **state)
{
	struct tmp *t = *state;
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	const char *const *words = WORDS("writable by group or others", "refusing it");
	const char *p = tmp_write(t, "open.yaml", "rules:\n  - name: x\n    when: {to: CLOSE}\n");

	chmod(p, 0666);

	/* as root: an error, nothing loaded */
	expect_file_error(p, true, -EINVAL, p, words);

	/* not as root: a warning, and it loads */
	tsg_diags_init(&d);
	assert_int_equal(load1(p, false, &d, &rs), 0);
	assert_non_null(rs);
	assert_int_equal(d.nerrors, 0);
	assert_true(d.nwarnings >= 1);
	expect_msg(&d, p, NULL, "warning", WORDS("writable"));
	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);

	/* the directory itself is checked too */
	chmod(p, 0644);
	chmod(t->dir, 0777);
	expect_file_error(t->dir, true, -EINVAL, t->dir, words);
	chmod(t->dir, 0755);

	/* owned by someone else than root */
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		expect_file_error(p, true, -EINVAL, p, WORDS("owned by uid 65534"));
	}
}

static void err_missing_path(void **state)
{
	struct tmp *t = *state;
	char p[PATH_MAX + 16];

	snprintf(p, sizeof(p), "%s/nope.yaml", t->dir);
	expect_file_error(p, false, -ENOENT, p, WORDS("No such file"));
}

/* every error of a file is reported, not only the first */
static void err_all_collected(void **state)
{
	struct tmp *t = *state;
	struct tsg_diags d;
	const char *p = tmp_write(t, "many.yaml",
				  "rules:\n"
				  "  - name: a\n"
				  "    severity: loud\n"
				  "    when: {to: CLOSEE}\n"
				  "  - name: b\n"
				  "    when: {state: SYN_SENT, longer_than: 3x}\n"
				  "    actions: [nope]\n");
	static const struct {
		const char *loc, *word;
	} want[] = {
		{ "3:15", "severity" },
		{ "4:16", "did you mean \"CLOSE\"?" },
		{ "6:42", "bad duration" },
		{ "7:15", "undefined action" },
	};

	load_fails(p, false, -EINVAL, &d);
	assert_int_equal(d.nerrors, 4);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		expect_msg(&d, p, want[i].loc, "error", WORDS(want[i].word));
	tsg_diags_fini(&d);
}

/* messages come in file order, although lists, actions and rules are
 * checked in separate passes */
static void err_messages_in_file_order(void **state)
{
	struct tmp *t = *state;
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	const char *p = tmp_write(t, "order.yaml",
				  "rules:\n"
				  "  - name: a\n"
				  "    when: {to: CLOSED}\n"
				  "actions:\n"
				  "  - {name: l, type: syslog, facility: nope}\n"
				  "lists:\n"
				  "  x: [[1]]\n");
	char l3[600], l5[600], l7[600];

	tsg_diags_init(&d);
	assert_int_equal(load1(p, false, &d, &rs), -EINVAL);
	assert_int_equal(d.n, 3);
	snprintf(l3, sizeof(l3), "%s:3:", p);
	snprintf(l5, sizeof(l5), "%s:5:", p);
	snprintf(l7, sizeof(l7), "%s:7:", p);
	assert_true(!strncmp(d.msg[0], l3, strlen(l3)));
	assert_true(!strncmp(d.msg[1], l5, strlen(l5)));
	assert_true(!strncmp(d.msg[2], l7, strlen(l7)));
	tsg_diags_fini(&d);
}

/* ---- positive: the examples of docs/rules.md ------------------------------- */

/* The entry called key of the n entries of v (rules or actions); the test fails without one. */
#define BY_NAME(v, n, what, key)                                                                   \
	({                                                                                         \
		size_t i_ = 0;                                                                     \
		while (i_ < (n) && strcmp((v)[i_].name, (key)))                                    \
			i_++;                                                                      \
		if (i_ == (n))                                                                     \
			fail_msg("no " what " %s", (key));                                         \
		&(v)[i_];                                                                          \
	})

static const struct tsg_rule *rule(const struct tsg_ruleset *rs, const char *name)
{
	return BY_NAME(rs->rules, rs->nrules, "rule", name);
}

static const struct tsg_action_def *action(const struct tsg_ruleset *rs, const char *name)
{
	return BY_NAME(rs->actions, rs->nactions, "action", name);
}

static struct tsg_ruleset *load_examples(struct tsg_diags *d)
{
	struct tsg_ruleset *rs = NULL;
	int r;

	tsg_diags_init(d);
	r = load1(RULES_CASES "/example", false, d, &rs);
	if (r) {
		dump(d);
		fail();
	}
	assert_int_equal(d->nerrors, 0);
	return rs;
}

static void ok_examples(void **state)
{
	struct tsg_diags d;
	struct tsg_ruleset *rs = load_examples(&d);
	const struct tsg_rule *r;
	const struct tsg_action_def *a;

	assert_int_equal(rs->nfiles, 3);
	assert_non_null(strstr(rs->files[0], "10-lists.yaml"));
	assert_non_null(strstr(rs->files[1], "20-actions.yml"));
	assert_int_equal(rs->nrules, 5);
	assert_int_equal(rs->nactions, 5); /* 4 + built-in syslog */

	r = rule(rs, "slow-https-connect");
	assert_int_equal(r->kind, TSG_KIND_TIME);
	assert_string_equal(r->description, "outbound connect to 443 stuck in SYN_SENT");
	assert_string_equal(r->summary.src,
			    "{{comm}} ({{pid}}) waits {{duration}} for {{raddr}}:{{rport}}");
	assert_int_equal(r->severity, LOG_WARNING);
	assert_true(r->enabled);
	assert_int_equal(r->nlabels, 1);
	assert_string_equal(r->labels[0].name, "team");
	assert_string_equal(r->labels[0].value, "edge");
	assert_int_equal(r->match.rport.n, 1);
	assert_int_equal(r->match.rport.v[0].lo, 443);
	assert_int_equal(r->state, TSG_SYN_SENT);
	assert_int_equal(r->longer_than_ns, 500 * TSG_NSEC_PER_MSEC);
	assert_int_equal(r->cooldown_ns, 60 * TSG_NSEC_PER_SEC);
	assert_int_equal(r->nactions, 2);
	assert_string_equal(rs->actions[r->actions[0]].name, "ops-log");
	assert_string_equal(rs->actions[r->actions[1]].name, "alertmanager");
	assert_int_equal(r->line, 3);
	assert_int_equal(r->col, 5);
	assert_non_null(strstr(r->file, "30-rules.yaml"));
	assert_int_equal(r->index, 0);

	r = rule(rs, "failed-connect");
	assert_int_equal(r->kind, TSG_KIND_TRANSITION);
	assert_int_equal(r->from, 1u << TSG_SYN_SENT);
	assert_int_equal(r->to, 1u << TSG_CLOSE);
	assert_int_equal(r->match.rport.n, 3);
	assert_int_equal(r->match.rport.v[2].lo, 8000);
	assert_int_equal(r->match.rport.v[2].hi, 8999);
	assert_int_equal(r->match.raddr.n, 4);
	assert_int_equal(r->match.raddr.v[0].plen, 96 + 8);
	assert_int_equal(r->match.raddr.v[2].plen, 8);
	assert_true(r->match.raddr.v[3].neg);
	assert_int_equal(r->match.raddr.v[3].plen, 96 + 16);
	assert_string_equal(r->summary.src, "{{comm}} ({{pid}}) {{laddr}}:{{lport}} -> "
					    "{{raddr}}:{{rport}} {{from}} -> {{to}}");
	assert_int_equal(r->by, 0);

	r = rule(rs, "timewait-pileup");
	assert_int_equal(r->kind, TSG_KIND_COUNT);
	assert_int_equal(r->state, TSG_TIME_WAIT);
	assert_int_equal(r->threshold, 500);
	assert_int_equal(r->resolve_below, 500);
	assert_int_equal(r->by, TSG_HAVE(TSG_SF_COMM));
	assert_int_equal(r->nactions, 1);
	assert_string_equal(rs->actions[r->actions[0]].name, "syslog");
	assert_string_equal(r->summary.src, "{{count}} sockets in {{state}} for {{key}}");
	assert_true(r->fields_avail & (1u << TSG_TF_COMM));
	assert_false(r->fields_avail & (1u << TSG_TF_RADDR));

	r = rule(rs, "connect-failure-rate");
	assert_int_equal(r->kind, TSG_KIND_RATE);
	assert_int_equal(r->severity, LOG_ERR);
	assert_int_equal(r->threshold, 50);
	assert_int_equal(r->per_ns, 10 * TSG_NSEC_PER_SEC);
	assert_int_equal(r->by, TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_RPORT));
	assert_string_equal(r->summary.src,
			    "{{count}} transitions SYN_SENT -> CLOSE within 10s for {{key}}");

	r = rule(rs, "many-established");
	assert_int_equal(r->threshold, 1000);
	assert_int_equal(r->resolve_below, 800);
	assert_int_equal(r->for_ns, 30 * TSG_NSEC_PER_SEC);
	assert_int_equal(r->match.family_mask, 1);
	assert_int_equal(r->match.comm.n, 2);
	assert_null(r->match.comm.v[0].re);
	assert_non_null(r->match.comm.v[1].re);
	assert_string_equal(r->match.comm.v[1].s, "^php-fpm");
	assert_int_equal(r->match.uid.n, 2);
	assert_true(r->match.uid.v[1].neg);
	assert_int_equal(r->match.uid.v[1].uid, 0);
	assert_string_equal(r->match.cgroup.v[0].s, "/system.slice/nginx.service");

	a = action(rs, "ops-log");
	assert_int_equal(a->type, TSG_ACT_SYSLOG);
	assert_int_equal(a->syslog.facility, LOG_DAEMON);
	assert_string_equal(a->syslog.ident, "tsguard");
	assert_int_equal(a->syslog.format, TSG_SYSLOG_TEXT);
	assert_false(a->builtin);
	assert_int_equal(a->line, 4);
	assert_int_equal(a->col, 11);

	a = action(rs, "alertmanager");
	assert_int_equal(a->type, TSG_ACT_WEBHOOK);
	assert_int_equal(a->webhook.nurls, 1);
	assert_string_equal(a->webhook.urls[0], "http://127.0.0.1:9093/api/v2/alerts");
	assert_int_equal(a->webhook.format, TSG_WH_ALERTMANAGER);
	assert_int_equal(a->webhook.nheaders, 1);
	assert_string_equal(a->webhook.headers[0].name, "X-Scope");
	assert_string_equal(a->webhook.headers[0].value.src, "edge");
	assert_int_equal(a->webhook.timeout_ns, 2 * TSG_NSEC_PER_SEC);
	assert_int_equal(a->webhook.retries, 3);

	a = action(rs, "chat");
	assert_int_equal(a->webhook.format, TSG_WH_TEMPLATE);
	assert_int_equal(a->webhook.timeout_ns, 5 * TSG_NSEC_PER_SEC);
	assert_int_equal(a->fields_used, 1u << TSG_TF_SUMMARY);

	a = action(rs, "kick");
	assert_int_equal(a->type, TSG_ACT_EXEC);
	assert_int_equal(a->exec.argc, 3);
	assert_string_equal(a->exec.argv[0].src, "/usr/local/sbin/kick-peer");
	assert_int_equal(a->exec.argv[1].nseg, 1);
	assert_int_equal(a->exec.argv[1].seg[0].field, TSG_TF_RADDR);
	assert_int_equal(a->exec.timeout_ns, 10 * TSG_NSEC_PER_SEC);
	assert_int_equal(a->exec.max_concurrent, 4);
	assert_string_equal(a->exec.user, "nobody");
	assert_int_equal(a->fields_used, 1u << TSG_TF_RADDR | 1u << TSG_TF_RPORT);

	a = action(rs, "syslog");
	assert_true(a->builtin);
	assert_int_equal(a->type, TSG_ACT_SYSLOG);
	assert_int_equal(a->syslog.facility, LOG_DAEMON);
	assert_string_equal(a->syslog.ident, "tsguard");

	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);
}

/* the same definitions give the same digest; any change changes it */
/* url as a list: every URL, in order; one item is the same as the scalar. */
static void ok_webhook_url_list(void **state)
{
	struct tmp *t = *state;
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	const struct tsg_action_def *a;
	const char *path = tmp_write(t, "urls.yaml",
				     "actions:\n"
				     "  - name: am\n"
				     "    type: webhook\n"
				     "    format: alertmanager\n"
				     "    url: [http://am-1:9093/api/v2/alerts, http://am-2:9093/api/v2/alerts]\n"
				     "  - {name: one, type: webhook, url: [https://h/x]}\n");

	tsg_diags_init(&d);
	if (load1(path, false, &d, &rs) < 0)
		dump(&d);
	assert_non_null(rs);
	a = action(rs, "am");
	assert_int_equal(a->webhook.nurls, 2);
	assert_string_equal(a->webhook.urls[0], "http://am-1:9093/api/v2/alerts");
	assert_string_equal(a->webhook.urls[1], "http://am-2:9093/api/v2/alerts");
	assert_int_equal(a->webhook.format, TSG_WH_ALERTMANAGER);
	a = action(rs, "one");
	assert_int_equal(a->webhook.nurls, 1);
	assert_string_equal(a->webhook.urls[0], "https://h/x");
	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);
}

static void ok_digest(void **state)
{
	struct tmp *t = *state;
	struct tsg_ruleset *a = NULL, *b = NULL;
	struct tsg_diags d;
	const char *p;

	tsg_diags_init(&d);
	p = tmp_write(t, "d.yaml", "rules:\n  - name: x\n    match: {rport: 443}\n"
				   "    when: {state: SYN_SENT, longer_than: 1s}\n"
				   "  - name: y\n    when: {to: CLOSE}\n");
	assert_int_equal(load1(p, false, &d, &a), 0);
	p = tmp_write(t, "d.yaml", "rules:\n  - name: x\n    match: {rport: 443}\n"
				   "    when: {state: SYN_SENT, longer_than: 2s}\n"
				   "  - name: y\n    when: {to: CLOSE}\n");
	assert_int_equal(load1(p, false, &d, &b), 0);
	assert_int_not_equal(a->rules[0].digest, b->rules[0].digest);
	assert_int_equal(a->rules[1].digest, b->rules[1].digest);
	tsg_ruleset_free(a);
	tsg_ruleset_free(b);
	t->n--; /* written twice under one name */
	tsg_diags_fini(&d);
}

/* a file that defines `syslog` replaces the built-in; empty files are fine */
static void ok_syslog_override_and_empty(void **state)
{
	struct tmp *t = *state;
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;

	tmp_write(t, "0-empty.yaml", "# nothing\n");
	tmp_write(t, "1-log.yaml", "actions:\n  - {name: syslog, type: syslog, facility: local3, format: json}\n"
				   "rules:\n  - name: x\n    when: {to: CLOSE}\n");
	tmp_write(t, "2-ignored.txt", "not: yaml: at: all\n");
	tsg_diags_init(&d);
	assert_int_equal(load1(t->dir, false, &d, &rs), 0);
	assert_int_equal(rs->nfiles, 2);
	assert_int_equal(rs->nactions, 1);
	assert_false(rs->actions[0].builtin);
	assert_int_equal(rs->actions[0].syslog.facility, LOG_LOCAL3);
	assert_int_equal(rs->actions[0].syslog.format, TSG_SYSLOG_JSON);
	assert_int_equal(rs->rules[0].nactions, 1);
	assert_int_equal(rs->rules[0].actions[0], 0);
	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);
}

/* ---- templates, words, severities ------------------------------------------ */

static void ok_template_parse(void **state)
{
	struct tsg_template t;
	size_t off = 99;
	const char *msg = NULL;

	assert_int_equal(tsg_template_parse("a {{ comm }}-{{labels.team}}}} z", &t, &off, &msg), 0);
	assert_int_equal(t.nseg, 5);
	assert_int_equal(t.seg[0].field, -1);
	assert_string_equal(t.seg[0].text, "a ");
	assert_int_equal(t.seg[1].field, TSG_TF_COMM);
	assert_int_equal(t.seg[3].field, TSG_TF_LABEL);
	assert_string_equal(t.seg[3].text, "team");
	assert_string_equal(t.seg[4].text, "}} z");
	assert_int_equal(t.fields_used, 1u << TSG_TF_COMM | 1u << TSG_TF_LABEL);
	assert_int_equal(t.nlabels_used, 1);
	assert_string_equal(t.labels_used[0], "team");
	tsg_template_fini(&t);

	assert_int_equal(tsg_template_parse("x {{comm", &t, &off, &msg), -EINVAL);
	assert_int_equal(off, 2);
	assert_non_null(strstr(msg, "closing"));
	assert_int_equal(tsg_template_parse("x {{ nope }}", &t, &off, &msg), -EINVAL);
	assert_int_equal(off, 5);
	assert_int_equal(tsg_template_parse("{{}}", &t, &off, &msg), -EINVAL);
	assert_int_equal(tsg_template_parse("{{labels}}", &t, &off, &msg), -EINVAL);
	assert_int_equal(tsg_template_parse("plain", &t, &off, &msg), 0);
	assert_int_equal(t.nseg, 1);
	assert_int_equal(t.fields_used, 0);
	tsg_template_fini(&t);

	assert_int_equal(tsg_tfield_parse("duration_ms"), TSG_TF_DURATION_MS);
	assert_int_equal(tsg_tfield_parse("labels.x"), TSG_TF_LABEL);
	assert_int_equal(tsg_tfield_parse("labels."), -EINVAL);
	assert_int_equal(tsg_tfield_parse("bogus"), -EINVAL);
	assert_string_equal(tsg_tfield_name(TSG_TF_KEY), "key");
}

static void ok_nearest_word(void **state)
{
	const char *const w[] = { "lists", "actions", "rules", NULL };
	const char *const st[] = { "SYN_SENT", "SYN_RECV", "CLOSE", NULL };

	assert_string_equal(tsg_nearest_word("rule", w), "rules");
	assert_string_equal(tsg_nearest_word("acitons", w), "actions");
	assert_string_equal(tsg_nearest_word("syn_snet", st), "SYN_SENT");
	assert_string_equal(tsg_nearest_word("act", w), "actions"); /* prefix */
	assert_null(tsg_nearest_word("zzzzzz", w));
	assert_null(tsg_nearest_word("ab", w));
	assert_null(tsg_nearest_word("", w));
}

static void ok_severity(void **state)
{
	assert_int_equal(tsg_severity_parse("emergency"), LOG_EMERG);
	assert_int_equal(tsg_severity_parse("alert"), LOG_ALERT);
	assert_int_equal(tsg_severity_parse("critical"), LOG_CRIT);
	assert_int_equal(tsg_severity_parse("error"), LOG_ERR);
	assert_int_equal(tsg_severity_parse("warning"), LOG_WARNING);
	assert_int_equal(tsg_severity_parse("notice"), LOG_NOTICE);
	assert_int_equal(tsg_severity_parse("info"), LOG_INFO);
	assert_int_equal(tsg_severity_parse("debug"), LOG_DEBUG);
	assert_int_equal(tsg_severity_parse("warn"), LOG_WARNING);
	assert_int_equal(tsg_severity_parse("loud"), -EINVAL);
	assert_string_equal(tsg_severity_name(LOG_CRIT), "critical");
	assert_null(tsg_severity_name(8));
}

static void ok_diags(void **state)
{
	struct tsg_diags d;
	char buf[512] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	tsg_diags_init(&d);
	tsg_diag_error(&d, "a.yaml", 3, 7, "bad %s", "thing");
	tsg_diag_warn(&d, "a.yaml", 0, 0, "careful");
	tsg_diag_error(&d, "b.yaml", 2, 0, "no column");
	assert_int_equal(d.nerrors, 2);
	assert_int_equal(d.nwarnings, 1);
	assert_string_equal(d.msg[0], "a.yaml:3:7: error: bad thing");
	assert_string_equal(d.msg[1], "a.yaml: warning: careful");
	assert_string_equal(d.msg[2], "b.yaml:2: error: no column");
	tsg_diags_print(&d, f);
	fclose(f);
	assert_string_equal(buf, "a.yaml:3:7: error: bad thing\na.yaml: warning: careful\n"
				 "b.yaml:2: error: no column\n");
	tsg_diags_fini(&d);
	tsg_diags_fini(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)



/* ---- one mistake, one error ---------------------------------------------- */

/*
 * A misspelt key close to a key its mapping lacks is the one error reported:
 * what only follows from that key being absent is not. One entry per case:
 * the file, and exactly the lines --check prints for it (after "FILE:").
 * Adding a case is adding an entry.
 */
static const struct {
	const char *what, *yaml;
	const char *lines[4];
} root_cases[] = {
	{ "a misspelt longer_than",
	  "rules:\n  - name: slow\n    when: {state: SYN_SENT, longer_then: 500ms}\n",
	  { "3:29: error: unknown field \"longer_then\" in when of rule \"slow\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"longer_than\"?)" } },
	{ "a misspelt state (time)",
	  "rules:\n  - name: tm\n    when: {stat: SYN_SENT, longer_than: 1s}\n",
	  { "3:12: error: unknown field \"stat\" in when of rule \"tm\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"state\"?)" } },
	{ "a misspelt count_above",
	  "rules:\n  - name: cnt\n    when: {state: TIME_WAIT, count_abve: 500, by: comm}\n",
	  { "3:30: error: unknown field \"count_abve\" in when of rule \"cnt\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"count_above\"?)" } },
	{ "a misspelt state (count)",
	  "rules:\n  - name: cnt\n    when: {sate: TIME_WAIT, count_above: 500, by: comm}\n",
	  { "3:12: error: unknown field \"sate\" in when of rule \"cnt\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"state\"?)" } },
	{ "a misspelt by (count)",
	  "rules:\n  - name: cnt\n    when: {state: TIME_WAIT, count_above: 500, bye: comm}\n",
	  { "3:48: error: unknown field \"bye\" in when of rule \"cnt\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"by\"?)" } },
	{ "a misspelt resolve_below",
	  "rules:\n  - name: cnt\n    when: {state: TIME_WAIT, count_above: 500, resolve_bellow: 400, by: comm}\n",
	  { "3:48: error: unknown field \"resolve_bellow\" in when of rule \"cnt\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"resolve_below\"?)" } },
	{ "a misspelt for",
	  "rules:\n  - name: cnt\n    when: {state: TIME_WAIT, count_above: 500, by: comm, forr: 30s}\n",
	  { "3:58: error: unknown field \"forr\" in when of rule \"cnt\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"for\"?)" } },
	{ "a misspelt rate_above",
	  "rules:\n  - name: rate\n    when: {from: SYN_SENT, to: CLOSE, rate_abov: 5, per: 10s, by: raddr}\n",
	  { "3:39: error: unknown field \"rate_abov\" in when of rule \"rate\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"rate_above\"?)" } },
	{ "a misspelt per",
	  "rules:\n  - name: rate\n    when: {to: CLOSE, rate_above: 5, pre: 10s, by: raddr}\n",
	  { "3:38: error: unknown field \"pre\" in when of rule \"rate\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"per\"?)" } },
	{ "a misspelt by (rate)",
	  "rules:\n  - name: rate\n    when: {to: CLOSE, rate_above: 5, per: 10s, bi: raddr}\n",
	  { "3:48: error: unknown field \"bi\" in when of rule \"rate\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"by\"?)" } },
	{ "a misspelt from (rate)",
	  "rules:\n  - name: rate\n    when: {form: SYN_SENT, rate_above: 5, per: 10s, by: raddr}\n",
	  { "3:12: error: unknown field \"form\" in when of rule \"rate\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"from\"?)" } },
	{ "a misspelt from (transition)",
	  "rules:\n  - name: tr\n    when: {form: SYN_SENT}\n",
	  { "3:12: error: unknown field \"form\" in when of rule \"tr\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"from\"?)" } },
	{ "a misspelt to (transition)",
	  "rules:\n  - name: tr\n    when: {tp: CLOSE}\n",
	  { "3:12: error: unknown field \"tp\" in when of rule \"tr\" (expected from, to, state, longer_than, count_above, resolve_below, by, for, rate_above, per or queue_above) (did you mean \"to\"?)" } },
	{ "a misspelt when",
	  "rules:\n  - name: nw\n    wehn: {to: CLOSE}\n",
	  { "3:5: error: unknown field \"wehn\" in rule \"nw\" (expected name, description, summary, severity, enabled, labels, match, when, cooldown or actions) (did you mean \"when\"?)" } },
	{ "a misspelt argv",
	  "actions:\n  - name: kick\n    type: exec\n    agrv: [/bin/true]\n",
	  { "4:5: error: unknown field \"agrv\" in exec action \"kick\" (expected name, type, argv, timeout, max_concurrent or user) (did you mean \"argv\"?)" } },
	{ "a misspelt url",
	  "actions:\n  - name: am\n    type: webhook\n    ulr: http://127.0.0.1:9/\n",
	  { "4:5: error: unknown field \"ulr\" in webhook action \"am\" (expected name, type, url, format, body, headers, timeout or retries) (did you mean \"url\"?)" } },
	{ "a misspelt format",
	  "actions:\n  - name: am\n    type: webhook\n    url: http://127.0.0.1:9/\n    formt: template\n    body: hi\n",
	  { "5:5: error: unknown field \"formt\" in webhook action \"am\" (expected name, type, url, format, body, headers, timeout or retries) (did you mean \"format\"?)" } },
	{ "a misspelt body",
	  "actions:\n  - name: am\n    type: webhook\n    url: http://127.0.0.1:9/\n    format: template\n    bdy: hi\n",
	  { "6:5: error: unknown field \"bdy\" in webhook action \"am\" (expected name, type, url, format, body, headers, timeout or retries) (did you mean \"body\"?)" } },
	{ "a misspelt type",
	  "actions:\n  - name: t\n    tpye: exec\n",
	  { "3:5: error: unknown field \"tpye\" in action \"t\" (expected name, type, facility, ident, format, argv, timeout, max_concurrent, user, url, body, headers or retries) (did you mean \"type\"?)" } },
	{ "a misspelt action name",
	  "actions:\n  - nmae: t\n    type: syslog\n",
	  { "2:5: error: unknown field \"nmae\" in action (expected name, type, facility, ident, format, argv, timeout, max_concurrent, user, url, body, headers or retries) (did you mean \"name\"?)" } },
	{ "a state without longer_than is still reported",
	  "rules:\n  - name: st\n    when: {state: SYN_SENT}\n",
	  { "3:12: error: \"state\" needs longer_than (time in state: {state: SYN_SENT, longer_than: 500ms}) or count_above (count: {state: TIME_WAIT, count_above: 500, by: comm})" } },
	{ "a missing argv without a misspelling is still reported",
	  "actions:\n  - name: kick\n    type: exec\n    timeout: 1s\n",
	  { "2:5: error: exec action \"kick\" needs argv: [/absolute/program, args...]" } },
};

static bool root_case_ok(const char *path, const char *const *lines, const struct tsg_diags *d)
{
	size_t n = 0;
	char want[2048];

	while (n < 4 && lines[n])
		n++;
	if (d->n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s:%s", path, lines[i]);
		if (strcmp(d->msg[i], want))
			return false;
	}
	return true;
}

static void err_root_cause_only(void **state)
{
	struct tmp *t = *state;
	char path[600];
	size_t failed = 0;

	snprintf(path, sizeof(path), "%s/root.yaml", t->dir);
	for (size_t c = 0; c < sizeof(root_cases) / sizeof(root_cases[0]); c++) {
		struct tsg_ruleset *rs = NULL;
		struct tsg_diags d;
		FILE *fp = fopen(path, "w");
		int r;

		assert_non_null(fp);
		fputs(root_cases[c].yaml, fp);
		fclose(fp);
		chmod(path, 0644);
		tsg_diags_init(&d);
		r = load1(path, false, &d, &rs);
		if (r != -EINVAL || rs || !root_case_ok(path, root_cases[c].lines, &d)) {
			fprintf(stderr, "case \"%s\": want (rc -EINVAL)\n", root_cases[c].what);
			for (size_t i = 0; i < 4 && root_cases[c].lines[i]; i++)
				fprintf(stderr, "  | %s:%s\n", path, root_cases[c].lines[i]);
			fprintf(stderr, "got (rc %d):\n", r);
			dump(&d);
			failed++;
		}
		tsg_ruleset_free(rs);
		tsg_diags_fini(&d);
	}
	unlink(path);
	assert_int_equal(failed, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(err_table),
    T(err_root_cause_only),
    T(err_duplicate_across_files),
    T(err_duplicate_action_and_list),
    T(ok_webhook_url_list),
    T(err_permissions_as_root),
    T(err_missing_path),
    T(err_all_collected),
    T(err_messages_in_file_order),
    T(ok_examples),
    T(ok_digest),
    T(ok_syslog_override_and_empty),
    cmocka_unit_test(ok_template_parse),
    cmocka_unit_test(ok_nearest_word),
    cmocka_unit_test(ok_severity),
    cmocka_unit_test(ok_diags),
};

TSG_TEST_MAIN(tests)
