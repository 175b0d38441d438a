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

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
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

/* ---- YAML helpers ---------------------------------------------------------- */

struct tfile {
	const char *path;
	char dir[PATH_MAX];
	yaml_document_t doc;
	int errors;
};

static void terr(struct tfile *tf, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void terr(struct tfile *tf, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n)
		fprintf(stderr, "%s:%zu:%zu: error: %s\n", tf->path, n->start_mark.line + 1,
			n->start_mark.column + 1, msg);
	else
		fprintf(stderr, "%s: error: %s\n", tf->path, msg);
	tf->errors++;
}

static yaml_node_t *node(struct tfile *tf, int id)
{
	return yaml_document_get_node(&tf->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
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
	const char *s = scalar(n);
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
	static const char *const sf[] = { "sk",	   "family", "laddr", "raddr", "from",
					  "to",	   "comm",   "cgroup", NULL };

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
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(tf, p->key), *v = node(tf, p->value);

		if (!scalar(k) || !scalar(v)) {
			terr(tf, v ? v : k, "event fields must be scalars");
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, scalar(k), scalar_json(v, is_string_field(scalar(k))));
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
	for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(node(tf, p->key)), *want = scalar(node(tf, p->value));
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
	for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top;
	     p++)
		fprintf(out, "%s%s: %s", p == x->data.mapping.pairs.start ? "" : ", ",
			scalar(node(tf, p->key)) ?: "?", scalar(node(tf, p->value)) ?: "?");
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

static int feed_events_file(struct tfile *tf, yaml_node_t *n, struct tsg_engine *e,
			    uint64_t *last)
{
	struct tsg_event_reader rd;
	char path[PATH_MAX * 2];
	struct tsg_event ev;
	size_t bad = 0;
	FILE *f;
	int rc;

	if (scalar(n)[0] == '/')
		snprintf(path, sizeof(path), "%s", scalar(n));
	else
		snprintf(path, sizeof(path), "%s/%s", tf->dir, scalar(n));
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
			fprintf(stderr, "%s: error: cannot read: %s\n", path, strerror(-rc));
			bad++;
			break;
		}
		tsg_engine_feed(e, &ev);
	}
	*last = rd.last;
	bad += rd.bad;
	tsg_event_reader_fini(&rd);
	fclose(f);
	/* a test whose events cannot all be read is invalid, not passed */
	tf->errors += bad;
	return bad ? -1 : 0;
}

/* The keys of one test, as written (rule tests in docs/cli.md "Rule tests"). */
struct test_keys {
	yaml_node_t *name, *events, *until, *expect;
};

static void test_read_keys(struct tfile *tf, yaml_node_t *t, struct test_keys *tk)
{
	for (yaml_node_pair_t *p = t->data.mapping.pairs.start; p < t->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(tf, p->key), *v = node(tf, p->value);
		const char *ks = scalar(k);

		if (!ks)
			terr(tf, k, "expected a key");
		else if ((!strcmp(ks, "name") && tk->name) || (!strcmp(ks, "events") && tk->events) ||
			 (!strcmp(ks, "until") && tk->until) || (!strcmp(ks, "expect") && tk->expect))
			terr(tf, k, "duplicate key \"%s\"", ks);
		else if (!strcmp(ks, "name"))
			tk->name = v;
		else if (!strcmp(ks, "events"))
			tk->events = v;
		else if (!strcmp(ks, "until"))
			tk->until = v;
		else if (!strcmp(ks, "expect"))
			tk->expect = v;
		else
			terr(tf, k, "unknown test field \"%s\" (expected name, events, until, expect)", ks);
	}
}

/* One expected notification: a mapping of scalars with rule and status. */
static void test_check_expected(struct tfile *tf, yaml_node_t *x)
{
	bool has_rule = false, has_status = false;

	if (x->type != YAML_MAPPING_NODE) {
		terr(tf, x, "an expected notification must be a mapping like "
			    "{rule: R, status: firing, at: 0.5}");
		return;
	}
	for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(node(tf, p->key));
		double d;

		if (!k || !scalar(node(tf, p->value))) {
			terr(tf, node(tf, p->value), "expected a scalar value");
			continue;
		}
		has_rule |= !strcmp(k, "rule");
		has_status |= !strcmp(k, "status");
		if (!strcmp(k, "at") && !parse_number(scalar(node(tf, p->value)), &d))
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

	if (!tk->name || !scalar(tk->name))
		terr(tf, t, "a test needs a name");
	if (!tk->events)
		terr(tf, t, "a test needs events (a list, or the path of an event file)");
	if (!tk->expect)
		terr(tf, t, "a test needs expect (a list; [] for none)");
	else if (tk->expect->type != YAML_SEQUENCE_NODE)
		terr(tf, tk->expect, "expect must be a list");
	else
		for (yaml_node_item_t *i = tk->expect->data.sequence.items.start;
		     i < tk->expect->data.sequence.items.top; i++) {
			test_check_expected(tf, node(tf, *i));
			nexp++;
		}
	if (tk->until &&
	    (!scalar(tk->until) || !parse_number(scalar(tk->until), &u) || u < 0 || u > 1e9))
		terr(tf, tk->until, "until must be a number of seconds (0 or more)");
	return nexp;
}

/* Feeds the test's events (inline list or event file); *last: the last ts. */
static void test_feed(struct tfile *tf, yaml_node_t *events, struct tsg_engine *e, uint64_t *last)
{
	if (scalar(events)) {
		feed_events_file(tf, events, e, last);
		return;
	}
	if (events->type != YAML_SEQUENCE_NODE) {
		terr(tf, events, "events must be a list or the path of an event file");
		return;
	}
	for (yaml_node_item_t *i = events->data.sequence.items.start;
	     i < events->data.sequence.items.top; i++) {
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
	fprintf(out, "%s - %s\n", ok ? "ok" : "FAIL", scalar(tk->name));
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
	struct tsg_engine_opts eo = { .keep_idle_sockets = true };
	struct test_keys tk = { 0 };
	struct tsg_engine *e = NULL;
	struct got g = { 0 };
	uint64_t last = 0;
	int errs = tf->errors;
	size_t nexp;

	*passed = false;
	if (t->type != YAML_MAPPING_NODE) {
		terr(tf, t, "a test must be a mapping with name, events, expect");
		return -1;
	}
	test_read_keys(tf, t, &tk);
	nexp = test_check(tf, t, &tk);
	if (tf->errors > errs)
		return -1;
	if (tsg_engine_new(rs, &eo, got_notify, &g, &e) < 0)
		return -ENOMEM;
	test_feed(tf, tk.events, e, &last);
	if (tf->errors == errs) {
		double u = 0;

		if (tk.until) {
			parse_number(scalar(tk.until), &u); /* checked above */
			if ((uint64_t)llround(u * 1e9) > last)
				last = (uint64_t)llround(u * 1e9);
		}
		tsg_engine_advance(e, last);
		*passed = test_report(tf, &tk, nexp, &g, out);
	}
	tsg_engine_free(e);
	got_clear(&g);
	return tf->errors > errs ? -1 : 0;
}

#define MAX_TEST_RULE_PATHS 64

/* A rule path of a test file, relative to the file; returns the new count. */
static size_t add_rule_path(struct tfile *tf, yaml_node_t *n, char **paths, size_t npaths)
{
	const char *s = scalar(n);

	if (!s) {
		terr(tf, n, "a rule path must be a string");
		return npaths;
	}
	if (npaths == MAX_TEST_RULE_PATHS) {
		terr(tf, n, "more than %d rule paths", MAX_TEST_RULE_PATHS);
		return npaths;
	}
	if (asprintf(&paths[npaths], "%s%s%s", s[0] == '/' ? "" : tf->dir,
		     s[0] == '/' ? "" : "/", s) < 0) {
		paths[npaths] = NULL;
		terr(tf, n, "out of memory");
		return npaths;
	}
	return npaths + 1;
}

/* Runs one test file. Adds to *npass / *nfail; returns -1 when the file itself
 * is unusable (counted as one failure). */
/* Parses the file into tf->doc: 0, or -1 (printed, or counted in tf->errors). */
static int test_read_doc(struct tfile *tf)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	FILE *f = fopen(tf->path, "r");

	if (!f) {
		fprintf(stderr, "%s: error: %s\n", tf->path, strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &tf->doc)) {
		fprintf(stderr, "%s:%zu:%zu: error: %s\n", tf->path, parser.problem_mark.line + 1,
			parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	/* one document per test file, as for rule files */
	if (yaml_parser_load(&parser, &extra)) {
		yaml_node_t *r2 = yaml_document_get_root_node(&extra);

		if (r2)
			terr(tf, r2, "a second YAML document: expected one document per file");
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return tf->errors ? -1 : 0;
}

/* The top level: `rules` (paths, made relative to the file) and `tests`. */
static int test_read_top(struct tfile *tf, char **paths, size_t *npaths, yaml_node_t **tests_out)
{
	yaml_node_t *root = yaml_document_get_root_node(&tf->doc), *rules = NULL, *tests = NULL;

	if (!root || root->type != YAML_MAPPING_NODE) {
		terr(tf, root, "a rule test file is a mapping with rules and tests");
		return -1;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(tf, p->key);
		const char *ks = scalar(k);

		if (ks && ((!strcmp(ks, "rules") && rules) || (!strcmp(ks, "tests") && tests)))
			terr(tf, k, "duplicate key \"%s\"", ks);
		else if (ks && !strcmp(ks, "rules"))
			rules = node(tf, p->value);
		else if (ks && !strcmp(ks, "tests"))
			tests = node(tf, p->value);
		else
			terr(tf, k, "unknown key \"%s\" (expected rules or tests)", ks ? ks : "?");
	}
	if (!rules) {
		terr(tf, root, "missing rules: the rule paths to test, relative to this file");
		return -1;
	}
	if (!tests || tests->type != YAML_SEQUENCE_NODE) {
		terr(tf, tests ? tests : root, "tests must be a list");
		return -1;
	}
	if (scalar(rules)) {
		*npaths = add_rule_path(tf, rules, paths, *npaths);
	} else if (rules->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = rules->data.sequence.items.start;
		     i < rules->data.sequence.items.top; i++)
			*npaths = add_rule_path(tf, node(tf, *i), paths, *npaths);
	} else {
		terr(tf, rules, "rules must be a path or a list of paths");
	}
	*tests_out = tests;
	return tf->errors ? -1 : 0;
}

static int test_load_rules(struct tfile *tf, char **paths, size_t npaths,
			   struct tsg_ruleset **rs)
{
	struct tsg_diags diags;
	int r;

	tsg_diags_init(&diags);
	r = tsg_ruleset_load((const char *const *)paths, npaths, false, &diags, rs);
	if (r < 0) {
		tsg_diags_print(&diags, stderr);
		fprintf(stderr, "%s: error: the rules under test do not load\n", tf->path);
		tf->errors++;
	}
	tsg_diags_fini(&diags);
	return r < 0 ? -1 : 0;
}

static void run_tests(struct tfile *tf, const struct tsg_ruleset *rs, yaml_node_t *tests,
		      FILE *out, size_t *npass, size_t *nfail)
{
	for (yaml_node_item_t *i = tests->data.sequence.items.start; i < tests->data.sequence.items.top;
	     i++) {
		yaml_node_t *t = node(tf, *i);
		bool passed;

		if (run_test(tf, rs, t, out, &passed) < 0) {
			fprintf(out, "FAIL - %s:%zu: invalid test\n", tf->path, t->start_mark.line + 1);
			(*nfail)++;
		} else if (passed) {
			(*npass)++;
		} else {
			(*nfail)++;
		}
	}
}

static int run_file(const char *path, FILE *out, size_t *npass, size_t *nfail)
{
	struct tfile tf = { .path = path };
	struct tsg_ruleset *rs = NULL;
	yaml_node_t *tests = NULL;
	char *paths[MAX_TEST_RULE_PATHS] = { 0 };
	char tmp[PATH_MAX];
	size_t npaths = 0;
	int rc = -1;

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(tf.dir, sizeof(tf.dir), "%s", dirname(tmp));
	if (test_read_doc(&tf) < 0) {
		(*nfail)++;
		if (tf.errors) /* a document was read: a second one followed */
			yaml_document_delete(&tf.doc);
		return -1;
	}
	if (test_read_top(&tf, paths, &npaths, &tests) == 0 &&
	    test_load_rules(&tf, paths, npaths, &rs) == 0) {
		run_tests(&tf, rs, tests, out, npass, nfail);
		rc = 0;
	}
	if (rc < 0)
		(*nfail)++;
	tsg_ruleset_free(rs);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	yaml_document_delete(&tf.doc);
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
