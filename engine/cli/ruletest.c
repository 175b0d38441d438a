/* SPDX-License-Identifier: MIT */
/*
 * tsguard: rule tests (`tsguard test FILE...`, docs/cli.md "Rule tests").
 *
 * A test file names rule paths (relative to the file) and a list of tests:
 * events (inline or an event file), an optional `until`, and the exact list
 * of notifications expected, in time order.
 */
#include "ruletest.h"

#include "engine.h"
#include "eventio.h"
#include "log.h"
#include "yamlnode.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct got {
	json_t **v; /* alert objects */
	size_t n, cap;
};

static void got_notify(void *ctx, const struct tsg_alert *a)
{
	struct got *g = ctx;
	json_t *o;

	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 16;
		json_t **nv = realloc(g->v, ncap * sizeof(*nv));

		if (!nv)
			return;
		g->v = nv;
		g->cap = ncap;
	}
	o = tsg_alert_to_json(a);
	if (o)
		g->v[g->n++] = o;
}

static void got_clear(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		json_decref(g->v[i]);
	free(g->v);
	memset(g, 0, sizeof(*g));
}

/* ---- the test file (the loader's YAML helpers and diagnostics) ------------- */

struct tfile {
	struct ld L;	  /* only L.d: the loader's diagnostics */
	struct ld_file f; /* path and document */
	struct tsg_diags d;
	char dir[PATH_MAX];
	size_t bad; /* event lines the event reader refused (it reports them) */
};

/* Errors so far; each is printed (stderr) as soon as it is found. */
static size_t nerr(const struct tfile *tf)
{
	return tf->d.nerrors + tf->bad;
}

static void terr(struct tfile *tf, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void terr(struct tfile *tf, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int line, col;

	ld_pos(n, &line, &col);
	va_start(ap, fmt);
	tsg_diag_vadd(&tf->d, true, tf->f.path, line, col, fmt, ap);
	va_end(ap);
	tsg_diags_flush(&tf->d, stderr);
}

static yaml_node_t *node(struct tfile *tf, int id)
{
	return ld_node(&tf->f, id);
}

static bool scalar_is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool parse_number(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	*out = strtod(s, &end);
	return *end == 0 && isfinite(*out);
}

/* A YAML scalar as JSON: plain scalars that read as numbers or booleans become
 * numbers and booleans, everything else a string. */
static json_t *scalar_json(const yaml_node_t *n, bool force_string)
{
	const char *s = ld_str(n);
	double d;

	if (!force_string && scalar_is_plain(n)) {
		char *end;
		long long ll = strtoll(s, &end, 10);

		if (*s && !*end)
			return json_integer(ll);
		if (parse_number(s, &d))
			return json_real(d);
		if (!strcmp(s, "true"))
			return json_true();
		if (!strcmp(s, "false"))
			return json_false();
		if (!strcmp(s, "null") || !strcmp(s, "~"))
			return json_null();
	}
	return json_string(s);
}

static bool is_string_field(const char *k)
{
	static const char *const sf[] = {"sk", "family", "laddr",  "raddr", "from",
					 "to", "comm",	 "cgroup", NULL};

	for (size_t i = 0; sf[i]; i++)
		if (!strcmp(k, sf[i]))
			return true;
	return false;
}

/* A flow mapping of an inline event -> JSON object; NULL on error (reported). */
static json_t *event_json(struct tfile *tf, yaml_node_t *n)
{
	json_t *o;

	if (n->type != YAML_MAPPING_NODE) {
		terr(tf, n, "an event must be a mapping like {ts: 0.0, sk: s1, to: SYN_SENT}");
		return NULL;
	}
	o = json_object();
	LD_FOR_PAIRS(n, p)
	{
		yaml_node_t *k = node(tf, p->key), *v = node(tf, p->value);

		if (!ld_str(k) || !ld_str(v)) {
			terr(tf, v ? v : k, "event fields must be scalars");
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, ld_str(k), scalar_json(v, is_string_field(ld_str(k))));
	}
	return o;
}

/* ---- comparing notifications -------------------------------------------------- */

static const char *json_text(json_t *v, char *buf, size_t len)
{
	if (!v)
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.15g", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, len, "true");
	else if (json_is_false(v))
		snprintf(buf, len, "false");
	else if (json_is_null(v))
		snprintf(buf, len, "null");
	else
		return NULL;
	return buf;
}

static json_t *alert_get(json_t *a, const char *field)
{
	if (!strncmp(field, "labels.", 7))
		return json_object_get(json_object_get(a, "labels"), field + 7);
	if (!strncmp(field, "key.", 4))
		return json_object_get(json_object_get(a, "key"), field + 4);
	return json_object_get(a, field);
}

static bool values_equal(const char *want, const char *have)
{
	double a, b;

	if (!have)
		return false;
	if (!strcmp(want, have))
		return true;
	return parse_number(want, &a) && parse_number(have, &b) && fabs(a - b) < 1e-9;
}

/* Does notification `a` match expectation `x` (a YAML mapping)? */
static bool expect_match(struct tfile *tf, yaml_node_t *x, json_t *a)
{
	LD_FOR_PAIRS(x, p)
	{
		const char *k = ld_str(node(tf, p->key)), *want = ld_str(node(tf, p->value));
		char buf[64];

		if (!k || !want)
			return false;
		if (!strcmp(k, "at")) {
			double at, ts;

			if (!parse_number(want, &at))
				return false;
			ts = json_number_value(json_object_get(a, "ts"));
			if (fabs(ts - at) > 0.001 + 1e-9)
				return false;
			continue;
		}
		if (!values_equal(want, json_text(alert_get(a, k), buf, sizeof(buf))))
			return false;
	}
	return true;
}

static void print_expect(struct tfile *tf, yaml_node_t *x, FILE *out)
{
	fprintf(out, "{");
	for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top; p++)
		fprintf(out, "%s%s: %s", p == x->data.mapping.pairs.start ? "" : ", ",
			ld_str(node(tf, p->key)) ?: "?", ld_str(node(tf, p->value)) ?: "?");
	fprintf(out, "}");
}

static void print_got(json_t *a, FILE *out)
{
	json_t *o = json_object();
	char *s;

	/* every field but the wall-clock ones, which no test can expect */
	json_object_update(o, a);
	json_object_del(o, "time");
	json_object_del(o, "host");
	s = json_dumps(o, TSG_JSON_FLAGS);
	fprintf(out, "%s", s ? s : "?");
	free(s);
	json_decref(o);
}

/* ---- running one test ----------------------------------------------------------- */

static int feed_events_file(struct tfile *tf, yaml_node_t *n, struct tsg_engine *e, uint64_t *last)
{
	struct tsg_event_reader rd;
	char path[PATH_MAX * 2];
	struct tsg_event ev;
	size_t errs = nerr(tf);
	FILE *f;
	int rc;

	if (ld_str(n)[0] == '/')
		snprintf(path, sizeof(path), "%s", ld_str(n));
	else
		snprintf(path, sizeof(path), "%s/%s", tf->dir, ld_str(n));
	f = fopen(path, "r");
	if (!f) {
		terr(tf, n, "cannot open event file %s: %s", path, strerror(errno));
		return -1;
	}
	if (tsg_event_reader_init(&rd, f, path) < 0) {
		fclose(f);
		return -1;
	}
	while ((rc = tsg_event_reader_next(&rd, &ev)) != 0) {
		if (rc == -EINTR)
			continue;
		if (rc < 0) {
			tsg_diag_error(&tf->d, path, 0, 0, "cannot read: %s", strerror(-rc));
			tsg_diags_flush(&tf->d, stderr);
			break;
		}
		tsg_engine_feed(e, &ev);
	}
	*last = rd.last;
	/* a test whose events cannot all be read is invalid, not passed */
	tf->bad += rd.bad;
	tsg_event_reader_fini(&rd);
	fclose(f);
	return nerr(tf) > errs ? -1 : 0;
}

/* The keys of one test, as written (rule tests in docs/cli.md "Rule tests"). */
static const char *const test_keys[] = {"name", "events", "until", "expect", NULL};
enum { TK_NAME, TK_EVENTS, TK_UNTIL, TK_EXPECT, TK_N };

struct test_keys {
	yaml_node_t *name, *events, *until, *expect;
};

static void test_read_keys(struct tfile *tf, yaml_node_t *t, struct test_keys *tk)
{
	yaml_node_t *kn[TK_N], *vn[TK_N];

	ld_map(&tf->L, &tf->f, t, "a test", test_keys, kn, vn);
	tsg_diags_flush(&tf->d, stderr);
	tk->name = vn[TK_NAME];
	tk->events = vn[TK_EVENTS];
	tk->until = vn[TK_UNTIL];
	tk->expect = vn[TK_EXPECT];
}

/* One expected notification: a mapping of scalars with rule and status. */
static void test_check_expected(struct tfile *tf, yaml_node_t *x)
{
	bool has_rule = false, has_status = false;

	if (x->type != YAML_MAPPING_NODE) {
		terr(tf, x,
		     "an expected notification must be a mapping like "
		     "{rule: R, status: firing, at: 0.5}");
		return;
	}
	LD_FOR_PAIRS(x, p)
	{
		const char *k = ld_str(node(tf, p->key));
		double d;

		if (!k || !ld_str(node(tf, p->value))) {
			terr(tf, node(tf, p->value), "expected a scalar value");
			continue;
		}
		has_rule |= !strcmp(k, "rule");
		has_status |= !strcmp(k, "status");
		if (!strcmp(k, "at") && !parse_number(ld_str(node(tf, p->value)), &d))
			terr(tf, node(tf, p->value), "at must be a number of seconds");
	}
	if (!has_rule || !has_status)
		terr(tf, x, "an expected notification needs rule and status");
}

/* The test's shape; the number of expected notifications. */
static size_t test_check(struct tfile *tf, yaml_node_t *t, const struct test_keys *tk)
{
	size_t nexp = 0;
	double u;

	if (!tk->name || !ld_str(tk->name))
		terr(tf, t, "a test needs a name");
	if (!tk->events)
		terr(tf, t, "a test needs events (a list, or the path of an event file)");
	if (!tk->expect)
		terr(tf, t, "a test needs expect (a list; [] for none)");
	else if (tk->expect->type != YAML_SEQUENCE_NODE)
		terr(tf, tk->expect, "expect must be a list");
	else
		LD_FOR_ITEMS(tk->expect, i)
		{
			test_check_expected(tf, node(tf, *i));
			nexp++;
		}
	if (tk->until &&
	    (!ld_str(tk->until) || !parse_number(ld_str(tk->until), &u) || u < 0 || u > 1e9))
		terr(tf, tk->until, "until must be a number of seconds (0 or more)");
	return nexp;
}

/* Feeds the test's events (inline list or event file); *last: the last ts. */
static void test_feed(struct tfile *tf, yaml_node_t *events, struct tsg_engine *e, uint64_t *last)
{
	if (ld_str(events)) {
		feed_events_file(tf, events, e, last);
		return;
	}
	if (events->type != YAML_SEQUENCE_NODE) {
		terr(tf, events, "events must be a list or the path of an event file");
		return;
	}
	LD_FOR_ITEMS(events, i)
	{
		yaml_node_t *n = node(tf, *i);
		json_t *o = event_json(tf, n);
		struct tsg_event ev;
		char err[256];

		if (!o)
			continue;
		if (tsg_event_from_json(o, &ev, err, sizeof(err)) < 0) {
			terr(tf, n, "bad event: %s", err);
		} else if (ev.ts_ns < *last) {
			terr(tf, n, "events must be in non-decreasing ts");
		} else {
			tsg_engine_feed(e, &ev);
			*last = ev.ts_ns;
		}
		json_decref(o);
	}
}

/* "ok - NAME" or "FAIL - NAME" with what was expected and what happened. */
static bool test_report(struct tfile *tf, const struct test_keys *tk, size_t nexp,
			const struct got *g, FILE *out)
{
	yaml_node_item_t *x = nexp ? tk->expect->data.sequence.items.start : NULL;
	bool ok = g->n == nexp;

	for (size_t i = 0; ok && i < nexp; i++)
		ok = expect_match(tf, node(tf, x[i]), g->v[i]);
	fprintf(out, "%s - %s\n", ok ? "ok" : "FAIL", ld_str(tk->name));
	if (ok)
		return true;
	fprintf(out, "  expected %zu notification(s):\n", nexp);
	for (size_t i = 0; i < nexp; i++) {
		fprintf(out, "    ");
		print_expect(tf, node(tf, x[i]), out);
		fprintf(out, "\n");
	}
	fprintf(out, "  got %zu:\n", g->n);
	for (size_t i = 0; i < g->n; i++) {
		fprintf(out, "    ");
		print_got(g->v[i], out);
		fprintf(out, "\n");
	}
	return false;
}

static int run_test(struct tfile *tf, const struct tsg_ruleset *rs, yaml_node_t *t, FILE *out,
		    bool *passed)
{
	struct tsg_engine_opts eo = {.keep_idle_sockets = true};
	struct test_keys tk = {0};
	struct tsg_engine *e = NULL;
	struct got g = {0};
	uint64_t last = 0;
	size_t errs = nerr(tf);
	size_t nexp;

	*passed = false;
	if (t->type != YAML_MAPPING_NODE) {
		terr(tf, t, "a test must be a mapping with name, events, expect");
		return -1;
	}
	test_read_keys(tf, t, &tk);
	nexp = test_check(tf, t, &tk);
	if (nerr(tf) > errs)
		return -1;
	if (tsg_engine_new(rs, &eo, got_notify, &g, &e) < 0)
		return -ENOMEM;
	test_feed(tf, tk.events, e, &last);
	if (nerr(tf) == errs) {
		double u = 0;

		if (tk.until) {
			parse_number(ld_str(tk.until), &u); /* checked above */
			if ((uint64_t)llround(u * 1e9) > last)
				last = (uint64_t)llround(u * 1e9);
		}
		tsg_engine_advance(e, last);
		*passed = test_report(tf, &tk, nexp, &g, out);
	}
	tsg_engine_free(e);
	got_clear(&g);
	return nerr(tf) > errs ? -1 : 0;
}

#define MAX_TEST_RULE_PATHS 64

/* A rule path of a test file, relative to the file; returns the new count. */
static size_t add_rule_path(struct tfile *tf, yaml_node_t *n, char **paths, size_t npaths)
{
	const char *s = ld_str(n);

	if (!s) {
		terr(tf, n, "a rule path must be a string");
		return npaths;
	}
	if (npaths == MAX_TEST_RULE_PATHS) {
		terr(tf, n, "more than %d rule paths", MAX_TEST_RULE_PATHS);
		return npaths;
	}
	if (asprintf(&paths[npaths], "%s%s%s", s[0] == '/' ? "" : tf->dir, s[0] == '/' ? "" : "/",
		     s) < 0) {
		paths[npaths] = NULL;
		terr(tf, n, "out of memory");
		return npaths;
	}
	return npaths + 1;
}

static const char *const top_keys[] = {"rules", "tests", NULL};

/* The top level: `rules` (paths, made relative to the file) and `tests`. */
static int test_read_top(struct tfile *tf, char **paths, size_t *npaths, yaml_node_t **tests_out)
{
	yaml_node_t *root = yaml_document_get_root_node(&tf->f.doc), *kn[2], *vn[2];
	yaml_node_t *rules, *tests;

	if (!root || root->type != YAML_MAPPING_NODE) {
		terr(tf, root, "a rule test file is a mapping with rules and tests");
		return -1;
	}
	ld_map(&tf->L, &tf->f, root, "a rule test file", top_keys, kn, vn);
	tsg_diags_flush(&tf->d, stderr);
	rules = vn[0];
	tests = vn[1];
	if (!rules) {
		terr(tf, root, "missing rules: the rule paths to test, relative to this file");
		return -1;
	}
	if (!tests || tests->type != YAML_SEQUENCE_NODE) {
		terr(tf, tests ? tests : root, "tests must be a list");
		return -1;
	}
	if (ld_str(rules)) {
		*npaths = add_rule_path(tf, rules, paths, *npaths);
	} else if (rules->type == YAML_SEQUENCE_NODE) {
		LD_FOR_ITEMS(rules, i)
		*npaths = add_rule_path(tf, node(tf, *i), paths, *npaths);
	} else {
		terr(tf, rules, "rules must be a path or a list of paths");
	}
	*tests_out = tests;
	return nerr(tf) ? -1 : 0;
}

static int test_load_rules(struct tfile *tf, char **paths, size_t npaths, struct tsg_ruleset **rs)
{
	struct tsg_diags diags;
	int r;

	tsg_diags_init(&diags);
	r = tsg_ruleset_load((const char *const *)paths, npaths, false, &diags, rs);
	if (r < 0) {
		tsg_diags_print(&diags, stderr);
		terr(tf, NULL, "the rules under test do not load");
	}
	tsg_diags_fini(&diags);
	return r < 0 ? -1 : 0;
}

static void run_tests(struct tfile *tf, const struct tsg_ruleset *rs, yaml_node_t *tests, FILE *out,
		      size_t *npass, size_t *nfail)
{
	LD_FOR_ITEMS(tests, i)
	{
		yaml_node_t *t = node(tf, *i);
		bool passed;

		if (run_test(tf, rs, t, out, &passed) < 0) {
			fprintf(out, "FAIL - %s:%zu: invalid test\n", tf->f.path,
				t->start_mark.line + 1);
			(*nfail)++;
		} else if (passed) {
			(*npass)++;
		} else {
			(*nfail)++;
		}
	}
}

/* Runs one test file. Adds to *npass / *nfail; returns -1 when the file itself
 * is unusable (counted as one failure). */
static int run_file(const char *path, FILE *out, size_t *npass, size_t *nfail)
{
	struct tfile tf = {.f.path = (char *)path}; /* ld_read_yaml only reads it */
	struct tsg_ruleset *rs = NULL;
	yaml_node_t *tests = NULL;
	char *paths[MAX_TEST_RULE_PATHS] = {0};
	char tmp[PATH_MAX];
	size_t npaths = 0;
	int rc = -1;

	tsg_diags_init(&tf.d);
	tf.L.d = &tf.d;
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(tf.dir, sizeof(tf.dir), "%s", dirname(tmp));
	if (ld_read_yaml(&tf.L, &tf.f, "cannot open the rule test file") < 0)
		terr(&tf, NULL, "out of memory");
	tsg_diags_flush(&tf.d, stderr);
	if (!nerr(&tf) && test_read_top(&tf, paths, &npaths, &tests) == 0 &&
	    test_load_rules(&tf, paths, npaths, &rs) == 0) {
		run_tests(&tf, rs, tests, out, npass, nfail);
		rc = 0;
	}
	if (rc < 0)
		(*nfail)++;
	tsg_ruleset_free(rs);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	if (tf.f.loaded)
		yaml_document_delete(&tf.f.doc);
	tsg_diags_fini(&tf.d);
	return rc;
}

int tsg_ruletest_run(const char *const *files, size_t nfiles, FILE *out)
{
	size_t npass = 0, nfail = 0;

	for (size_t i = 0; i < nfiles; i++)
		run_file(files[i], out, &npass, &nfail);
	fprintf(out, "%zu passed, %zu failed\n", npass, nfail);
	fflush(out);
	return nfail ? 1 : 0;
}
